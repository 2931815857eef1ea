#!/usr/bin/env python3
"""The README's quick start with nothing but python3 (3.10+); `make run` / `make test` call this too.

    python3 dev.py run         # train the default GPT on Shakespeare and print a sample (`fungpt train`)
    python3 dev.py test        # the default test suite, two workers
    python3 dev.py test-all    # the suite including the tests marked slow (CI: .ci/run)
    python3 dev.py lint        # ruff check
    python3 dev.py wheel       # build the sdist and the wheel into dist/
    python3 dev.py test-lower  # the default suite in .venv-lower, with the lowest JAX pyproject.toml allows

On first use, and again whenever pyproject.toml changes, it creates .venv next to this file and installs
the package into it (editable, with the dev and experiments extras); `test-lower` does the same in
.venv-lower with jax and jaxlib pinned to the lower bound of their range in pyproject.toml.  Extra
arguments go to the command: `python3 dev.py test -k autodiff`, `python3 dev.py run --dtype bfloat16`.
Standard library only.
"""
import hashlib
import os
import re
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
LOWER_VENV = ROOT / ".venv-lower"


def bin_dir(venv_dir: Path) -> Path:
    return venv_dir / ("Scripts" if os.name == "nt" else "bin")


BIN = bin_dir(VENV)

COMMANDS = {  # name -> (venv, argv inside it)
    "run": (VENV, [str(BIN / "fungpt"), "train"]),
    # worksteal: an idle worker takes queued tests from the busy one, so a few long tests cannot make the tail
    "test": (VENV, [str(BIN / "python"), "-m", "pytest", "-n", "2", "--dist", "worksteal"]),
    "test-all": (VENV, [str(BIN / "python"), "-m", "pytest", "-m", ""]),
    "lint": (VENV, [str(BIN / "ruff"), "check", "."]),
    "wheel": (VENV, [str(BIN / "python"), "-m", "build", "--outdir", str(ROOT / "dist"), str(ROOT)]),
    "test-lower": (LOWER_VENV, [str(bin_dir(LOWER_VENV) / "python"), "-m", "pytest", "-n", "2", "--dist", "worksteal"]),
}


def jax_lower_bound() -> str:
    """The lowest jax version pyproject.toml allows (its "jax>=X,<Y" requirement)."""
    m = re.search(r'"jax>=([0-9][0-9.]*)', (ROOT / "pyproject.toml").read_text())
    if not m:
        raise SystemExit("pyproject.toml: no 'jax>=X' requirement to take the lower bound from")
    return m.group(1)


def ensure_venv(venv_dir: Path = VENV, pins: tuple[str, ...] = ()):
    # The stamp holds a hash of pyproject.toml and the pins, so a changed dependency list reinstalls.
    stamp, py = venv_dir / ".installed", bin_dir(venv_dir) / "python"
    want = hashlib.sha256((ROOT / "pyproject.toml").read_bytes() + repr(pins).encode()).hexdigest()
    if stamp.exists() and stamp.read_text().strip() == want:
        return
    if not py.exists():
        print(f"creating {venv_dir} ...", flush=True)
        venv.create(venv_dir, with_pip=True)
    pip = [str(py), "-m", "pip", "install", "-q"]
    print(f"installing fungpt and its dependencies into {venv_dir.name} (first use: a few minutes) ...", flush=True)
    subprocess.run([*pip, "--upgrade", "pip"], check=True)
    # Until 0.1.0 the distribution was called "fungpt" (a name PyPI gives to another project): drop it, so
    # that one distribution provides the package and its console script.
    subprocess.run([str(py), "-m", "pip", "uninstall", "-y", "-q", "fungpt"], check=True)
    subprocess.run([*pip, "-e", f"{ROOT}[dev,experiments]", *pins], check=True)
    stamp.write_text(want + "\n")


def main(argv):
    if not argv or argv[0] not in COMMANDS:
        print(__doc__, file=sys.stderr)
        return 2
    venv_dir, cmd = COMMANDS[argv[0]]
    low = jax_lower_bound()
    ensure_venv(venv_dir, (f"jax=={low}", f"jaxlib=={low}") if venv_dir == LOWER_VENV else ())
    return subprocess.run([*cmd, *argv[1:]], cwd=ROOT).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
