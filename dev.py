#!/usr/bin/env python3
"""The README's quick start with nothing but python3 (3.10+); `make run` / `make test` call this too.

    python3 dev.py run        # train the default GPT on Shakespeare and print a sample (`fungpt train`)
    python3 dev.py test       # the default test suite, two workers (CI runs exactly this)
    python3 dev.py test-all   # the suite including the tests marked slow
    python3 dev.py lint       # ruff check

On first use, and again whenever pyproject.toml changes, it creates .venv next to this file and installs
the package into it (editable, with the dev and experiments extras).  Extra arguments go to the command:
`python3 dev.py test -k autodiff`, `python3 dev.py run --dtype bfloat16`.  Standard library only.
"""
import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
STAMP = VENV / ".installed"

COMMANDS = {  # name -> argv inside the venv
    "run": [str(BIN / "fungpt"), "train"],
    "test": [str(BIN / "python"), "-m", "pytest", "-n", "2"],
    "test-all": [str(BIN / "python"), "-m", "pytest", "-m", ""],
    "lint": [str(BIN / "ruff"), "check", "."],
}


def ensure_venv():
    # The stamp holds a hash of pyproject.toml, so a changed dependency list reinstalls.
    want = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if STAMP.exists() and STAMP.read_text().strip() == want:
        return
    if not (BIN / "python").exists():
        print(f"creating {VENV} ...", flush=True)
        venv.create(VENV, with_pip=True)
    pip = [str(BIN / "python"), "-m", "pip", "install", "-q"]
    print("installing fungpt and its dependencies into .venv (first use: a few minutes) ...", flush=True)
    subprocess.run([*pip, "--upgrade", "pip"], check=True)
    subprocess.run([*pip, "-e", f"{ROOT}[dev,experiments]"], check=True)
    STAMP.write_text(want + "\n")


def main(argv):
    if not argv or argv[0] not in COMMANDS:
        print(__doc__, file=sys.stderr)
        return 2
    ensure_venv()
    return subprocess.run([*COMMANDS[argv[0]], *argv[1:]], cwd=ROOT).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
