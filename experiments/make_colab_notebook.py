"""Generate experiments/colab_tpu.ipynb: install fungpt on a Colab TPU and train the `small` preset on all cores.

The notebook is written from the cells below, so it cannot drift from the code: the test suite runs
``main(["--quick", "--execute"])``, which executes the same cells (shell lines skipped) on CPU with a tiny
config, and checks that the committed notebook equals a fresh generation.

    .venv/bin/python experiments/make_colab_notebook.py                 # (re)write experiments/colab_tpu.ipynb
    .venv/bin/python experiments/make_colab_notebook.py --quick --execute   # run the cells here, tiny config
"""
from __future__ import annotations

import argparse
import json
import pathlib

HERE = pathlib.Path(__file__).resolve().parent
NOTEBOOK = HERE / "colab_tpu.ipynb"
REPO = "https://github.com/fungpt/fungpt"  # where the project is published; change for a fork

# The tiny CPU stand-in used by --quick (the same model as tests/gpt/test_train.py's runs).
QUICK_CONFIG = ('"small", n_layer=1, n_head=2, n_embd=16, block_size=8, batch_size=4, grad_accum=1, dropout=0.0, '
                'max_iters=6, warmup_iters=2, lr_decay_iters=6, eval_interval=3, eval_iters=2, ckpt_interval=100, '
                'log_interval=2, sample_tokens=0, data=DATA, out_dir=OUT_DIR')
FULL_CONFIG = '"small", dtype="bfloat16", out_dir="runs/small"'


def cells(quick: bool) -> list[tuple[str, str]]:
    """(cell_type, source) pairs of the notebook; ``quick`` swaps in a tiny config that runs on CPU."""
    setup = ("import pathlib\nimport tempfile\n\nfrom fungpt.gpt.data import load_text\n\n"
             "OUT_DIR = tempfile.mkdtemp() + '/run'\nDATA = str(pathlib.Path(tempfile.mkdtemp()) / 'tiny.txt')\n"
             "pathlib.Path(DATA).write_text(load_text()[:20_000], encoding='utf-8')\n") if quick else ""
    return [
        ("markdown", "# fungpt on a Colab TPU\n\nTrain the `small` GPT preset (6 layers, 6 heads, 384 dims, "
                     "block 256, batch 64, dropout 0.2) on the Shakespeare corpus that ships with fungpt, with "
                     "our own autodiff (`fungpt.grad`) and AdamW, data-parallel over every TPU core.\n\n"
                     "Runtime → Change runtime type → **TPU**. Then run the cells in order."),
        ("code", f"!pip install -q 'fungpt @ git+{REPO}'"),
        ("markdown", "One process sees all the TPU cores of this host. `fungpt.gpt.train` builds a 1-D `Mesh` "
                     "over `jax.devices()` with axis `data`: each step's batch is split across the cores, "
                     "parameters and optimizer state are replicated, and `jax.jit` inserts the gradient "
                     "all-reduce. On a multi-host pod slice, run the same script on every host after "
                     "`jax.distributed.initialize()`; only process 0 writes checkpoints."),
        ("code", "import jax\n\nprint(jax.__version__, jax.devices())\nassert 64 % jax.device_count() == 0, "
                 "'the batch (64) must split evenly over the cores'"),
        ("code", setup + "from fungpt.gpt import train as T\n\n"
                 f"cfg = T.config_from({QUICK_CONFIG if quick else FULL_CONFIG})\n"
                 "print(cfg)\nresult = T.train(cfg)  # progress bar, evals, checkpoints, loss.png, a sample"),
        ("code", "try:\n    from IPython.display import Image, display\n"
                 "    display(Image(filename=str(result.run_dir / 'loss.png')))\n"
                 "except ImportError:  # outside a notebook\n    print(result.run_dir / 'loss.png')\n"
                 "print('step, train loss, val loss:', result.evals[-1])"),
        ("code", "import jax\n\nrun = T.load_run(result.run_dir)\n"
                 "text = T.sample_text(run.params, run.model_config, run.tokenizer, 'ROMEO:',\n"
                 f"                     {12 if quick else 500}, jax.random.key(0), temperature=0.8, top_k=200, "
                 "top_p=0.9)\nprint(text)"),
        ("markdown", "Continue training later with `T.train(cfg.replace(max_iters=10_000), resume=result.run_dir)` "
                     "or, from a shell, `fungpt train --resume runs/small --max-iters 10000`."),
    ]


def notebook(quick: bool = False) -> dict:
    def cell(kind, src):
        lines = src.splitlines(keepends=True)
        base = {"cell_type": kind, "metadata": {}, "source": lines}
        return {**base, "execution_count": None, "outputs": []} if kind == "code" else base

    return {
        "cells": [cell(k, s) for k, s in cells(quick)],
        "metadata": {"accelerator": "TPU", "colab": {"provenance": []},
                     "kernelspec": {"display_name": "Python 3", "name": "python3"},
                     "language_info": {"name": "python"}},
        "nbformat": 4, "nbformat_minor": 0,
    }


def execute(quick: bool = True) -> dict:
    """Run the code cells in one namespace, as a kernel would; shell (``!``) lines are skipped."""
    ns: dict = {}
    for kind, src in cells(quick):
        if kind == "code":
            code = "\n".join(line for line in src.splitlines() if not line.lstrip().startswith(("!", "%")))
            exec(compile(code, "<colab cell>", "exec"), ns)
    return ns


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="the tiny CPU config (not written to the notebook)")
    ap.add_argument("--execute", action="store_true", help="run the cells here instead of writing the file")
    args = ap.parse_args(argv)
    if args.execute:
        return execute(args.quick)
    text = json.dumps(notebook(args.quick), indent=1) + "\n"
    out = HERE / "out" / "colab_tpu_quick.ipynb" if args.quick else NOTEBOOK
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    print(f"wrote {out}")
    return text


if __name__ == "__main__":
    main()
