"""dev.py and .ci/run, the README's quick start and CI: the commands the README shows exist, unknown ones are
refused, the lower-bound venv pins what pyproject.toml declares, and CI runs the slow tests after the default
suite, where pytest's "no tests collected" (exit 5) is a pass. .ci/run is executed with a stand-in python3."""
import importlib.util
import os
import pathlib
import re
import shutil
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _dev():
    spec = importlib.util.spec_from_file_location("dev", ROOT / "dev.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_readme_quick_start_commands_are_dev_py_commands():
    readme = (ROOT / "README.md").read_text()
    block = readme.split("## Quick start", 1)[1].split("```bash", 1)[1].split("```", 1)[0]
    shown = re.findall(r"^python3 dev\.py (\S+)", block, flags=re.M)
    assert shown == ["run", "test"]  # exactly two commands: the main job and the tests
    dev = _dev()
    assert set(shown) <= set(dev.COMMANDS)
    assert dev.COMMANDS["run"][1][1:] == ["train"]
    for name in re.findall(r"python3 dev\.py ([\w-]+)", readme):  # every dev.py command the README names
        assert name in dev.COMMANDS, name
    assert dev.COMMANDS["wheel"][1][1:3] == ["-m", "build"]


def test_lower_bound_venv_pins_pyprojects_lower_bound():
    tomllib = pytest.importorskip("tomllib")  # the oracle: Python 3.11's TOML reader
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    bounds = {re.match(r"[\w-]+", d).group(0): d for d in deps}
    low = re.search(r">=([\d.]+)", bounds["jax"]).group(1)
    assert _dev().jax_lower_bound() == low
    assert bounds["jaxlib"].startswith(f"jaxlib>={low},<") and re.search(r",<[\d.]+$", bounds["jax"])


def test_unknown_command_prints_usage():
    r = subprocess.run([sys.executable, str(ROOT / "dev.py"), "no-such-command"], capture_output=True, text=True)
    assert r.returncode == 2 and "python3 dev.py run" in r.stderr


@pytest.mark.skipif(shutil.which("bash") is None, reason=".ci/run is a bash script")
@pytest.mark.parametrize(
    ("default_rc", "slow_rc", "want_rc", "want_calls"),
    [(0, 0, 0, 2), (0, 5, 0, 2), (0, 1, 1, 2), (1, 0, 1, 1), (0, 2, 2, 2)],
    ids=["both-pass", "no-slow-tests", "slow-fails", "default-fails", "slow-interrupted"],
)
def test_ci_runs_the_default_suite_then_the_slow_tests(tmp_path, default_rc, slow_rc, want_rc, want_calls):
    (tmp_path / ".ci").mkdir()
    shutil.copy(ROOT / ".ci" / "run", tmp_path / ".ci" / "run")
    fake = tmp_path / "bin" / "python3"  # records its arguments; "-m slow" answers slow_rc, else default_rc
    fake.parent.mkdir()
    fake.write_text(f'#!/bin/sh\necho "$*" >> "{tmp_path}/calls"\ncase "$*" in *"-m slow"*) exit {slow_rc};; '
                    f'esac\nexit {default_rc}\n')
    fake.chmod(0o755)
    env = {**os.environ, "PATH": f"{fake.parent}{os.pathsep}{os.environ['PATH']}"}
    r = subprocess.run(["bash", str(tmp_path / ".ci" / "run")], env=env, capture_output=True, text=True)
    calls = (tmp_path / "calls").read_text().splitlines()
    assert r.returncode == want_rc, r.stderr
    assert calls[0] == "dev.py test" and len(calls) == want_calls
    if want_calls == 2:
        assert calls[1].startswith("dev.py test -m slow")
