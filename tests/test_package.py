"""The package as a user installs it: sdist and wheel built from this checkout, the wheel installed into a fresh
virtual environment outside the repository (not editable, the repository not on sys.path), then the console
script, the public API and a 20-step training run there; and the Colab notebook's every cell, its install cell
included (installing the sdist), in the same environment.

Oracles: what the fresh environment itself reports (importlib.metadata, jax, sys.path, fungpt.__file__), the
package's __all__ lists read here, the corpus size stated in ARCHITECTURE.md, checkpoint files on disk.
Slow (minutes: a build and pip installs, from pip's cache after the first run); .ci/run runs it.
"""
import importlib.util
import inspect
import json
import os
import pathlib
import subprocess
import sys
import venv

import pytest

import fungpt
import fungpt.gpt

pytestmark = pytest.mark.slow
ROOT = pathlib.Path(__file__).resolve().parents[1]
CORPUS_CHARS = 1_148_333  # ARCHITECTURE.md: the shipped Shakespeare


def _bin(env_dir, name):
    return str(env_dir / ("Scripts" if os.name == "nt" else "bin") / name)


def _run(cmd, cwd, env_dir=None, **kw):
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    if env_dir is not None:
        env["PATH"] = os.pathsep.join([str(pathlib.Path(_bin(env_dir, "python")).parent), env.get("PATH", "")])
    env.update(kw.pop("extra_env", {}))
    r = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=kw.pop("timeout", 900), **kw)
    assert r.returncode == 0, f"{cmd} exited {r.returncode}\nstdout:\n{r.stdout[-4000:]}\nstderr:\n{r.stderr[-4000:]}"
    return r.stdout


@pytest.fixture(scope="module")
def dist(tmp_path_factory):
    out = tmp_path_factory.mktemp("dist")
    _run([sys.executable, "-m", "build", "--outdir", str(out), str(ROOT)], cwd=out)
    [wheel], [sdist] = sorted(out.glob("*.whl")), sorted(out.glob("*.tar.gz"))
    assert wheel.name.startswith(f"fungpt_jax-{fungpt.__version__}-")
    assert sdist.name == f"fungpt_jax-{fungpt.__version__}.tar.gz"
    return wheel, sdist


@pytest.fixture(scope="module")
def env_dir(dist, tmp_path_factory):
    home = tmp_path_factory.mktemp("user")  # outside the repository: cwd of every command below
    env_dir = home / "venv"
    venv.create(env_dir, with_pip=True)
    _run([_bin(env_dir, "python"), "-m", "pip", "install", "--disable-pip-version-check", str(dist[0])], cwd=home)
    return env_dir


def test_fungpt_version_names_versions_and_devices(env_dir):
    out = _run([_bin(env_dir, "fungpt"), "--version"], cwd=env_dir.parent).splitlines()
    facts = json.loads(_run([_bin(env_dir, "python"), "-c", (
        "import importlib.metadata as m, json, jax; print(json.dumps([jax.__version__, m.version('jaxlib'), "
        "jax.default_backend(), [str(d) for d in jax.devices()]]))")], cwd=env_dir.parent))
    assert out[0].startswith(f"fungpt {fungpt.__version__} ({env_dir}") and "site-packages" in out[0]
    assert out[1] == f"jax {facts[0]}, jaxlib {facts[1]}"
    assert out[2] == f"backend {facts[2]}: {len(facts[3])} device(s): {', '.join(facts[3])}"


def test_public_api_imports_from_the_installed_wheel(env_dir):
    script = f"""
import importlib.metadata, json, sys
import fungpt, fungpt.gpt
from fungpt.gpt import data
missing = [n for n in {fungpt.__all__!r} if not hasattr(fungpt, n)]
missing += ["gpt." + n for n in {fungpt.gpt.__all__!r} if not hasattr(fungpt.gpt, n)]
print(json.dumps(dict(file=fungpt.__file__, version=fungpt.__version__, missing=missing, path=sys.path,
                      dist=importlib.metadata.version("fungpt-jax"), corpus=len(data.load_text()),
                      grad=float(fungpt.grad(lambda x: x ** 3)(2.0)))))
"""
    got = json.loads(_run([_bin(env_dir, "python"), "-c", script], cwd=env_dir.parent))
    assert got["missing"] == []
    assert pathlib.Path(got["file"]).is_relative_to(env_dir)
    assert not any(p and pathlib.Path(p).resolve().is_relative_to(ROOT) for p in got["path"])
    assert got["version"] == got["dist"] == fungpt.__version__
    assert got["corpus"] == CORPUS_CHARS and got["grad"] == 12.0  # d/dx x^3 at 2


def test_twenty_steps_of_fungpt_train_on_the_packaged_corpus(env_dir):
    run_dir = env_dir.parent / "run"
    out = _run([_bin(env_dir, "fungpt"), "train", "--n-layer", "1", "--n-head", "2", "--n-embd", "16",
                "--block-size", "16", "--batch-size", "4", "--max-iters", "20", "--warmup-iters", "2",
                "--lr-decay-iters", "20", "--eval-interval", "10", "--eval-iters", "2", "--log-interval", "5",
                "--sample-tokens", "0", "--out-dir", str(run_dir), "--no-progress"], cwd=env_dir.parent)
    assert "done: 20 steps" in out
    steps = [json.loads(line)["step"] for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert steps[-1] == 20 and (run_dir / "latest").is_file()


def _generator():
    path = ROOT / "experiments" / "make_colab_notebook.py"
    spec = importlib.util.spec_from_file_location("make_colab_notebook", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_every_notebook_cell_runs_there_including_the_install(env_dir, dist):
    # The install cell must install fungpt itself: start from an environment without it.
    home = env_dir.parent
    _run([_bin(env_dir, "python"), "-m", "pip", "uninstall", "-y", "fungpt-jax"], cwd=home)
    nb = _generator()
    (home / "quick.ipynb").write_text(json.dumps(nb.notebook(quick=True)), encoding="utf-8")
    runner = (inspect.getsource(nb.run_cells) + "\nimport json\nns = run_cells(json.load(open('quick.ipynb')), "
              "twice={'train'})\nprint('RESULT', ns['result'].run_dir, ns['result'].step, ns['figures'])\n")
    out = _run([_bin(env_dir, "python"), "-c", runner], cwd=home, extra_env={"FUNGPT_SOURCE": str(dist[1])})
    assert "runtime: cpu" in out and "JAX backend cpu" in out
    assert "Successfully installed" in out and "fungpt-jax" in out  # pip's own output is shown
    result = out.split("RESULT ", 1)[1].split()
    assert result[0].endswith("small-1") and result[1] == "6"  # the second run took a fresh folder
    assert f"{nb.QUICK_EXPERIMENT}.png" in out.split("RESULT ", 1)[1]
    version = _run([_bin(env_dir, "python"), "-c", "import fungpt; print(fungpt.__version__, fungpt.__file__)"],
                   cwd=home).split()
    assert version[0] == fungpt.__version__ and pathlib.Path(version[1]).is_relative_to(env_dir)
