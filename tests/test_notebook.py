"""The Colab notebook (experiments/colab_tpu.ipynb) and the experiments it runs.

The notebook's cells run here on CPU in their tiny configuration, in this process and without the install
cell (tests/test_package.py runs every cell, the install cell included, in a fresh environment). Oracles:
the committed file against its generator, pyproject.toml's JAX range read with tomllib, checkpoints read
back with fungpt.gpt.checkpoint, the experiment files on disk and PNG signatures.
"""
import ast
import importlib.util
import json
import pathlib
import re
import shutil

import pytest

from fungpt.gpt import checkpoint
from tests._user_defaults import user_defaults

ROOT = pathlib.Path(__file__).resolve().parents[1]
EXPERIMENTS = ROOT / "experiments"


def _generator():
    spec = importlib.util.spec_from_file_location("make_colab_notebook", EXPERIMENTS / "make_colab_notebook.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


nb = _generator()


def _cell(notebook, tag):
    [c] = [c for c in notebook["cells"] if c["metadata"]["tags"] == [tag]]
    return "".join(c["source"])


def _only(source, tag="cell"):
    return {"cells": [{"cell_type": "code", "metadata": {"tags": [tag]}, "source": [source]}]}


def test_committed_notebook_is_the_generated_one():
    committed = json.loads(nb.NOTEBOOK.read_text(encoding="utf-8"))
    assert committed == nb.notebook(), "regenerate: python experiments/make_colab_notebook.py"


def test_install_cell_uses_the_users_source_and_the_declared_jax_range():
    text = nb.NOTEBOOK.read_text(encoding="utf-8")
    full = nb.notebook()
    setup, install = _cell(full, "setup"), _cell(full, "install")
    assert 'SOURCE = ""  #@param {type:"string"}' in setup  # a Colab form field, empty until the user fills it
    assert "github.com" not in text and "fungpt/fungpt" not in text  # no made-up address
    assert not re.search(r"pip.*(\s-q\b|--quiet)", text)  # pip's errors are shown
    assert "[experiments] @" in setup and "-m\", \"pip\", \"install\"" in install
    tomllib = pytest.importorskip("tomllib")  # the oracle: Python 3.11's TOML reader
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    [jax_dep] = [d for d in deps if re.match(r"jax\b(?!lib)", d)]
    assert f'JAX_RANGE = "{jax_dep[3:]}"' in setup and "<" in jax_dep  # an upper bound too
    for extra in ('"jax[tpu]"', '"jax[cuda12]"'):
        assert extra in setup
    assert "ESTIMATE" in _cell(full, "intro") and "Basis" in _cell(full, "intro")


@pytest.mark.parametrize(
    ("source", "package"),
    [("https://example.org/me/fungpt.git", "fungpt-jax[experiments] @ git+https://example.org/me/fungpt.git"),
     ("git+ssh://git@example.org/me/fungpt", "fungpt-jax[experiments] @ git+ssh://git@example.org/me/fungpt"),
     ("git@example.org:me/fungpt.git", "fungpt-jax[experiments] @ git+ssh://git@example.org/me/fungpt.git"),
     ("WHEEL", "fungpt-jax[experiments] @ file://WHEEL")],
    ids=["https", "git+ssh", "scp-like", "wheel"],
)
def test_setup_cell_turns_the_source_into_a_pip_requirement(source, package, tmp_path, monkeypatch):
    wheel = tmp_path / "fungpt_jax-0.1.0-py3-none-any.whl"
    wheel.write_bytes(b"")
    monkeypatch.setenv("FUNGPT_SOURCE", source.replace("WHEEL", str(wheel)))
    ns = nb.run_cells(_only(_cell(nb.notebook(), "setup")))
    assert ns["PACKAGE"] == package.replace("WHEEL", str(wheel))
    assert ns["RUNTIME"] == "cpu" and ns["JAX_REQUIREMENT"] == "jax" + nb.jax_range()


def test_setup_cell_says_what_to_type_and_detects_the_runtime(tmp_path, monkeypatch):
    setup = _only(_cell(nb.notebook(), "setup"))
    monkeypatch.setenv("FUNGPT_SOURCE", "")
    with pytest.raises(ValueError, match="Type into the SOURCE field"):
        nb.run_cells(setup)
    monkeypatch.setenv("FUNGPT_SOURCE", str(tmp_path / "missing.whl"))
    with pytest.raises(FileNotFoundError, match="does not exist here"):
        nb.run_cells(setup)
    monkeypatch.setenv("FUNGPT_SOURCE", str(tmp_path))
    monkeypatch.setattr(shutil, "which", lambda name: "/usr/bin/nvidia-smi" if name == "nvidia-smi" else None)
    ns = nb.run_cells(setup)
    assert ns["RUNTIME"] == "gpu" and ns["JAX_REQUIREMENT"].startswith("jax[cuda12]>=")
    monkeypatch.setenv("COLAB_TPU_ADDR", "10.0.0.2:8470")
    ns = nb.run_cells(setup)
    assert ns["RUNTIME"] == "tpu" and ns["JAX_REQUIREMENT"].startswith("jax[tpu]>=")


def test_backend_check_fails_with_the_fix_when_jax_misses_the_accelerator():
    with pytest.raises(AssertionError, match=r"TPU runtime but JAX runs on CPU.*Restart session"):
        nb.run_cells(_only(_cell(nb.notebook(), "check")), ns={"RUNTIME": "tpu", "JAX_REQUIREMENT": "jax[tpu]"})


@pytest.fixture(scope="module")
def executed():
    # SOURCE = a temporary checkout (a copy of experiments/): the experiment cell writes its figures there
    with user_defaults():
        return nb.notebook(quick=True), nb.execute(quick=True)


@pytest.mark.slow
def test_every_cell_runs_on_cpu_and_trains(executed):
    _, ns = executed
    assert ns["RUNTIME"] == "cpu" and ns["backend"] == "cpu"
    res = ns["result"]
    assert res.step == ns["MAX_ITERS"] == 6 and res.run_dir == pathlib.Path(ns["RUNS"]) / "small"
    assert checkpoint.read_meta(res.run_dir)["step"] == 6 and ns["run"].step == 6
    assert ns["text"].startswith("ROMEO:")


@pytest.mark.slow
def test_training_cell_run_again_continues_or_takes_a_fresh_folder(executed, tmp_path):
    quick, ns = executed
    from fungpt.gpt import train as T

    ns["RUNS"] = str(tmp_path)
    base = tmp_path / "small"
    with user_defaults():
        T.train(ns["cfg"].replace(max_iters=3, out_dir=str(base)), progress=False)  # stopped at step 3 of 6
        nb.run_cells(_only(_cell(quick, "train")), ns=ns)  # continued to 6
        assert ns["resume"] and ns["result"].run_dir == base and checkpoint.read_meta(base)["step"] == 6
        base.with_name("small-1").mkdir()
        (base.with_name("small-1") / "metrics.jsonl").write_text('{"step": 2, "loss": 4.1}\n')  # killed early
        nb.run_cells(_only(_cell(quick, "train")), ns=ns)  # a finished run and a dead one are left alone
    assert not ns["resume"] and ns["result"].run_dir == base.with_name("small-2")
    assert checkpoint.read_meta(base.with_name("small-2"))["step"] == 6 and checkpoint.read_meta(base)["step"] == 6


@pytest.mark.slow
def test_experiments_are_listed_and_the_chosen_one_shows_its_figures(executed, capsys):
    _, ns = executed
    src = pathlib.Path(ns["EXPERIMENTS"])
    assert ns["EXPERIMENT"] == nb.QUICK_EXPERIMENT and ns["ARGS"] == "--quick"
    assert ns["figures"] == [src / "out" / f"{nb.QUICK_EXPERIMENT}.png"]
    assert ns["figures"][0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # the listing: one line per experiment file, with its docstring's first line
    nb.run_cells(_only(_cell(nb.notebook(quick=True), "get-experiments")), ns=ns)
    lines = capsys.readouterr().out.splitlines()
    files = sorted(EXPERIMENTS.glob("*.py"))
    assert len(lines) == len(files)
    for line, path in zip(lines, files, strict=True):
        first = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))).splitlines()[0]
        assert line.split(None, 1) == [path.stem, first]


def test_experiments_use_the_default_backend_and_say_what_an_accelerator_changes():
    # The notebook runs them on the runtime's accelerator: none may pin JAX to the CPU.
    pinning = re.compile(r"jax_platforms|JAX_PLATFORMS|jax_platform_name|devices\(\s*['\"]cpu|default_device|"
                         r"CUDA_VISIBLE_DEVICES|local_devices\(\s*backend")
    for path in sorted(EXPERIMENTS.glob("*.py")):
        text = path.read_text(encoding="utf-8")
        assert not pinning.search(text), f"{path.name} pins a device: {pinning.search(text).group(0)}"
        doc = ast.get_docstring(ast.parse(text))
        assert re.search(r"^On an accelerator: ", doc, re.M), f"{path.name}: docstring lacks 'On an accelerator: '"
