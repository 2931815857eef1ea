"""Generate experiments/colab_tpu.ipynb: fungpt on a Colab TPU or GPU runtime — install, check, train, experiments.

Not an experiment: it writes the notebook (no figures, no measurement; an accelerator changes nothing here).
The notebook is written from the cells below, so it cannot drift from the code. The test suite runs the
same cells on CPU with a tiny config (``--quick``): tests/test_notebook.py in-process without the install
cell, tests/test_package.py every cell, the install cell included, in a fresh virtual environment that
installs the sdist the test built. It also checks that the committed notebook equals a fresh generation.

    python experiments/make_colab_notebook.py                    # (re)write experiments/colab_tpu.ipynb
    python experiments/make_colab_notebook.py --quick --execute  # run the cells here, tiny config, no install

On an accelerator: nothing changes: it writes a file.
"""
from __future__ import annotations

import argparse
import json
import os
import pathlib
import re
import shutil
import tempfile

HERE = pathlib.Path(__file__).resolve().parent
NOTEBOOK = HERE / "colab_tpu.ipynb"
QUICK_EXPERIMENT = "optim_schedules"  # ~5 s with --quick on a quiet 2-core CPU; keeps JAX's float32 default


def jax_range() -> str:
    """The JAX versions pyproject.toml declares, e.g. ">=0.7.2,<0.11"; the notebook installs within them."""
    m = re.search(r'"jax(>=[^"]+)"', (HERE.parent / "pyproject.toml").read_text())
    if not m:
        raise ValueError("pyproject.toml: no jax requirement with a lower bound")
    return m.group(1)


EXPERIMENT_NAMES = sorted(p.stem for p in HERE.glob("*.py") if p.stem != "make_colab_notebook")

INTRO = """# fungpt on a Colab TPU or GPU

Train the `small` GPT preset (6 layers, 6 heads, 384 dims, block 256, batch 64, dropout 0.2; 10.7M
parameters) on the Shakespeare corpus that ships with fungpt, with our own autodiff (`fungpt.grad`) and
AdamW, data-parallel over every device of the runtime; then run any of the repository's experiments on
the same accelerator.

Runtime → Change runtime type → **TPU** (or a **GPU**). Then run the cells in order.

**Expected wall time of the training cell (5,000 iterations) — an ESTIMATE, not a measurement**: no TPU
or GPU was available when this notebook was written. Basis: one iteration is ≈1.2 TFLOP (6 × 10.7M
parameters × 16,384 tokens, plus attention), the evals add ≈30%, so a run is ≈8 PFLOP; assuming 15–30% of
the chip's peak matrix throughput:

| runtime | dtype (`DTYPE = "auto"`) | estimate |
|---|---|---|
| TPU v5e-1 / v6e-1 / v2-8 | bfloat16 | 3–10 min, plus ~1 min of compilation |
| GPU A100 / L4 | bfloat16 | 3–15 min (nanoGPT reports ~3 min for this run on an A100) |
| GPU T4 (no bfloat16 units) | float32 | 30–60 min |
| CPU | float32 | hours: use the `baby` preset (79 s on a 2-core CPU, measured) |

If you time it, the progress bar's ms/iter and the backend line of the check cell are the numbers to keep."""

SOURCE_HELP = """Where to install fungpt from, typed into the **SOURCE** form field: the git URL of your copy of the
repository (e.g. your fork on GitHub), a folder holding a checkout, or the path of a wheel or sdist built
with `python3 dev.py wheel` and uploaded (Files pane → Upload: `/content/...`) or on Google Drive
(`/content/drive/MyDrive/...`, after mounting it). The distribution is called `fungpt-jax` (the name
`fungpt` on PyPI is someone else's); the import name is `fungpt`. Nothing is installed from an address
this notebook makes up, and pip's output, errors included, is shown in full."""

SETUP = '''#@title Where to install from; which runtime this is
import glob
import os
import pathlib
import shutil
import subprocess
import sys

SOURCE = ""  #@param {{type:"string"}}
SOURCE = os.environ.get("FUNGPT_SOURCE", SOURCE).strip()  # the test suite points this at what it built
JAX_RANGE = "{jax_range}"  # the JAX versions fungpt is tested with (pyproject.toml)


def run(cmd):
    """Run a command, streaming its output into the notebook; a failure stops the cell."""
    print("$", " ".join(cmd), flush=True)
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) as p:
        for line in p.stdout:
            print(line, end="")
    if p.returncode:
        raise RuntimeError(f"{{cmd[0]}} {{cmd[1:3]}} failed with exit {{p.returncode}}: see its output above")


def colab_runtime():
    # TPU VMs expose /dev/accel* or /dev/vfio/N; the older TPU runtime set COLAB_TPU_ADDR.
    if os.environ.get("COLAB_TPU_ADDR") or glob.glob("/dev/accel*") or glob.glob("/dev/vfio/[0-9]*"):
        return "tpu"
    return "gpu" if shutil.which("nvidia-smi") else "cpu"


RUNTIME = colab_runtime()
JAX_REQUIREMENT = {{"tpu": "jax[tpu]", "gpu": "jax[cuda12]", "cpu": "jax"}}[RUNTIME] + JAX_RANGE
if not SOURCE:
    raise ValueError("Type into the SOURCE field above where to install fungpt from: the git URL of your copy of "
                     "the repository, a folder holding a checkout, or the path of a wheel/sdist from "
                     "`python3 dev.py wheel` (uploaded to /content or on Google Drive); then run this cell again.")
if SOURCE.startswith("git@"):  # scp-like git@host:owner/repo, as pip wants it
    SOURCE = "ssh://" + SOURCE.replace(":", "/", 1)
IS_URL = SOURCE.startswith(("https://", "http://", "ssh://", "git+"))
if not IS_URL and not os.path.exists(SOURCE):
    raise FileNotFoundError(f"SOURCE {{SOURCE!r}} does not exist here (upload it, or mount Drive in the cell below)")
if IS_URL:
    PACKAGE = "fungpt-jax[experiments] @ " + (SOURCE if SOURCE.startswith("git+") else "git+" + SOURCE)
else:
    PACKAGE = "fungpt-jax[experiments] @ " + pathlib.Path(SOURCE).resolve().as_uri()
print(f"runtime: {{RUNTIME}}; will install {{JAX_REQUIREMENT!r}} and {{PACKAGE!r}}")'''

INSTALL = '''#@title Install JAX for this runtime and fungpt (pip's full output below)
# If JAX was imported in this session before, restart it afterwards (Runtime → Restart session).
run([sys.executable, "-m", "pip", "install", JAX_REQUIREMENT, PACKAGE])'''

CHECK = '''#@title Check that JAX sees the accelerator this runtime promises
import jax

import fungpt

backend = jax.default_backend()
print(f"fungpt {fungpt.__version__}, jax {jax.__version__}; runtime {RUNTIME}, JAX backend {backend}: {jax.devices()}")
assert backend == RUNTIME, (
    f"this is a {RUNTIME.upper()} runtime but JAX runs on {backend.upper()}: training would be far slower. "
    f"Fix: read the install cell's output for pip errors; Runtime → Restart session, then run the cells again "
    f"from the top (a JAX imported before the install keeps its old build); the install must end with "
    f"{JAX_REQUIREMENT!r}.")
assert 64 % jax.device_count() == 0, "the small preset's batch (64) must split evenly over the devices"'''

MESH = """One process sees all the devices of this host. `fungpt.gpt.train` builds a `Mesh` over
`jax.devices()` with axes `("data", "model")`, by default every device on `data`: each step's batch is split
across the devices, and parameters and optimizer state are stored sharded (FSDP: each device keeps 1/D of
every weight matrix; XLA gathers them for the products). `train(cfg, mesh="data=4,model=2")` adds Megatron
tensor parallelism (docs/training.md, "Scaling out")."""

DRIVE = '''#@title Optional: keep runs on Google Drive (a recycled runtime loses /content)
USE_DRIVE = False  #@param {{type:"boolean"}}
RUNS = "{runs}"
if USE_DRIVE:
    from google.colab import drive

    drive.mount("/content/drive")
    RUNS = "/content/drive/MyDrive/fungpt/runs"
print("runs go to", RUNS)'''

TRAIN = '''#@title Train (run it again: it continues an unfinished run, or starts the next free folder)
import itertools

from fungpt.gpt import checkpoint
from fungpt.gpt import train as T

PRESET = "small"  #@param ["small", "baby"]
MAX_ITERS = {max_iters}  #@param {{type:"integer"}}
DTYPE = "auto"  #@param ["auto", "bfloat16", "float32"]

if DTYPE == "auto":  # bfloat16 where there are bfloat16 matrix units: TPUs, GPUs from the A100 on (not the T4)
    cc = float(getattr(jax.devices()[0], "compute_capability", 0) or 0)
    DTYPE = "bfloat16" if RUNTIME == "tpu" or cc >= 8 else "float32"


def next_run(base, max_iters):
    """(folder, resume): the first of base, base-1, ... that holds an unfinished run, or nothing."""
    for i in itertools.count():
        d = base if i == 0 else base.with_name(f"{{base.name}}-{{i}}")
        if (d / checkpoint.LATEST).is_file() and checkpoint.read_meta(d)["step"] < max_iters:
            return d, True
        if not d.exists() or (d.is_dir() and not any(d.iterdir())):
            return d, False


cfg = T.config_from(PRESET, {overrides}max_iters=MAX_ITERS, lr_decay_iters=MAX_ITERS, dtype=DTYPE)
run_dir, resume = next_run(pathlib.Path(RUNS) / PRESET, MAX_ITERS)
print(("continuing" if resume else "starting"), "the run in", run_dir)
result = T.train(cfg.replace(out_dir=str(run_dir)), resume=run_dir if resume else None)
if result.interrupted:
    print(f"stopped at step {{result.step}}; run this cell again to continue")'''

SHOW = '''try:
    from IPython.display import Image, display
except ImportError:  # outside a notebook
    Image = display = None
loss_png = result.run_dir / "loss.png"
display(Image(filename=str(loss_png))) if display else print(loss_png)
print("step, train loss, val loss:", result.evals[-1] if result.evals else "no eval yet")'''

SAMPLE = '''run = T.load_run(result.run_dir)
text = T.sample_text(run.params, run.model_config, run.tokenizer, "ROMEO:", {tokens}, jax.random.key(0),
                     temperature=0.8, top_k=200, top_p=0.9)
print(text)'''

EXPERIMENTS_MD = """## Experiments on this accelerator

The repository's `experiments/` come from SOURCE: cloned from the git URL, taken from the checkout
folder, or unpacked from the sdist (a wheel holds only the package). Each line below is the experiment's
own summary; its docstring says what it measures and whether an accelerator changes the result. The
chosen one runs in this notebook's process, so on JAX's default backend — the TPU or GPU checked above."""

GET_EXPERIMENTS = '''#@title Get the experiments and list them
import ast
import tarfile
import tempfile

if IS_URL:
    EXPERIMENTS = pathlib.Path("{clone}") / "experiments"
    if not EXPERIMENTS.is_dir():
        run(["git", "clone", "--depth", "1", SOURCE.removeprefix("git+"), str(EXPERIMENTS.parent)])
elif os.path.isdir(SOURCE):
    EXPERIMENTS = pathlib.Path(SOURCE) / "experiments"
elif SOURCE.endswith(".tar.gz"):
    unpacked = pathlib.Path(tempfile.mkdtemp())
    with tarfile.open(SOURCE) as tf:
        tf.extractall(unpacked, **({{"filter": "data"}} if hasattr(tarfile, "data_filter") else {{}}))
    [EXPERIMENTS] = unpacked.glob("*/experiments")
else:
    raise ValueError("a wheel holds the package only: set SOURCE to the git URL, a checkout or the sdist (.tar.gz) "
                     "and run the first cell again to get the experiments")
for path in sorted(EXPERIMENTS.glob("*.py")):
    doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
    print(f"{{path.stem:22s}} {{doc.splitlines()[0] if doc else ''}}")'''

RUN_EXPERIMENT = '''#@title Run one; its figures appear below
import runpy
import shlex
import time

EXPERIMENT = "{experiment}"  #@param {names}
ARGS = "{args}"  #@param {{type:"string"}}

# In this process, so on the accelerator above (a second process could not open the TPU this one holds).
# Some experiments turn on jax_enable_x64 for their float64 references: it stays on in this session.
t0, argv = time.time(), sys.argv
sys.argv = [str(EXPERIMENTS / f"{{EXPERIMENT}}.py"), *shlex.split(ARGS)]
try:
    runpy.run_path(sys.argv[0], run_name="__main__")
finally:
    sys.argv = argv
figures = sorted(p for p in (EXPERIMENTS / "out").glob("*.png") if p.stat().st_mtime >= t0 - 1)
for p in figures:
    display(Image(filename=str(p))) if display else print("figure:", p)'''

RESUME_MD = """Continue a finished run for longer: raise `MAX_ITERS` and run the training cell again on the same
folder, or from a shell: `fungpt train --resume runs/small --max-iters 10000`. Runs on Drive survive the
runtime: mount it again and the training cell continues where the last checkpoint left off."""

# The tiny CPU stand-in used by --quick (the same model as tests/gpt/test_train.py's runs).
QUICK_OVERRIDES = ('n_layer=1, n_head=2, n_embd=16, block_size=8, batch_size=4, grad_accum=1, dropout=0.0, '
                   'warmup_iters=2, eval_interval=3, eval_iters=2, ckpt_interval=100, log_interval=2, '
                   'sample_tokens=0, data=DATA,\n                      ')
QUICK_SETUP = ("import tempfile\n\nfrom fungpt.gpt.data import load_text\n\n"
               "DATA = str(pathlib.Path(tempfile.mkdtemp()) / 'tiny.txt')  # --quick: 20,000 characters\n"
               "pathlib.Path(DATA).write_text(load_text()[:20_000], encoding='utf-8')\n")


def cells(quick: bool) -> list[tuple[str, str, str]]:
    """(cell_type, tag, source) triples; ``quick`` swaps in a tiny config, a temporary runs folder and a
    quick experiment, so that every cell runs on a CPU in seconds."""
    train = TRAIN.format(max_iters=6 if quick else 5000, overrides=QUICK_OVERRIDES if quick else "")
    if quick:
        anchor = "from fungpt.gpt import train as T\n"
        train = train.replace(anchor, anchor + QUICK_SETUP)
    return [
        ("markdown", "intro", INTRO),
        ("markdown", "source", SOURCE_HELP),
        ("code", "setup", SETUP.format(jax_range=jax_range())),
        ("code", "install", INSTALL),
        ("code", "check", CHECK),
        ("markdown", "mesh", MESH),
        ("code", "drive", DRIVE.format(runs=tempfile.mkdtemp() if quick else "/content/runs")),
        ("code", "train", train),
        ("code", "show", SHOW),
        ("code", "sample", SAMPLE.format(tokens=12 if quick else 500)),
        ("markdown", "resume", RESUME_MD),
        ("markdown", "experiments", EXPERIMENTS_MD),
        ("code", "get-experiments", GET_EXPERIMENTS.format(
            clone=tempfile.mkdtemp() + "/fungpt" if quick else "/content/fungpt")),
        ("code", "run-experiment", RUN_EXPERIMENT.format(
            experiment=QUICK_EXPERIMENT if quick else "autodiff_vs_jax", args="--quick" if quick else "",
            names=json.dumps(EXPERIMENT_NAMES))),
    ]


def notebook(quick: bool = False) -> dict:
    """The notebook as nbformat 4 JSON (each cell tagged, so tests can find the install and train cells)."""
    def cell(kind, tag, src):
        base = {"cell_type": kind, "metadata": {"tags": [tag]}, "source": src.splitlines(keepends=True)}
        return {**base, "execution_count": None, "outputs": []} if kind == "code" else base

    return {
        "cells": [cell(*c) for c in cells(quick)],
        "metadata": {"accelerator": "TPU", "colab": {"provenance": []},
                     "kernelspec": {"display_name": "Python 3", "name": "python3"},
                     "language_info": {"name": "python"}},
        "nbformat": 4, "nbformat_minor": 0,
    }


def run_cells(nb: dict, skip=(), twice=(), ns: dict | None = None) -> dict:
    """Execute the notebook's code cells in order in one namespace, as a kernel would; returns the namespace.

    Cells tagged in ``skip`` are left out, those in ``twice`` run twice; ``ns`` continues an earlier
    namespace. The cells hold no ``!``/``%`` lines, so plain Python runs them. Standard library only:
    the tests run it in a fresh environment too.
    """
    ns = {"__name__": "__main__"} if ns is None else ns
    for c in nb["cells"]:
        tag = c["metadata"]["tags"][0]
        if c["cell_type"] == "code" and tag not in skip:
            for _ in range(2 if tag in twice else 1):
                exec(compile("".join(c["source"]), f"<cell {tag}>", "exec"), ns)
    return ns


def execute(quick: bool = True) -> dict:
    """Run the cells here without the install cell (this environment has fungpt). SOURCE is a temporary
    checkout holding a copy of experiments/, so the experiment's figures land there, not in this one."""
    src = pathlib.Path(tempfile.mkdtemp())
    shutil.copytree(HERE, src / "experiments", ignore=shutil.ignore_patterns("out", "__pycache__"))
    before = os.environ.get("FUNGPT_SOURCE")
    os.environ["FUNGPT_SOURCE"] = str(src)
    try:
        return run_cells(notebook(quick), skip={"install"})
    finally:
        if before is None:
            del os.environ["FUNGPT_SOURCE"]
        else:
            os.environ["FUNGPT_SOURCE"] = before


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="the tiny CPU config (not written to the notebook)")
    ap.add_argument("--execute", action="store_true", help="run the cells here instead of writing the file")
    args = ap.parse_args(argv)
    if args.execute:
        return execute(args.quick)
    text = json.dumps(notebook(args.quick), indent=1, ensure_ascii=False) + "\n"
    out = HERE / "out" / "colab_tpu_quick.ipynb" if args.quick else NOTEBOOK
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    print(f"wrote {out}")
    return text


if __name__ == "__main__":
    main()
