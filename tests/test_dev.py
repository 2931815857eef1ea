"""dev.py, the README's quick start: the commands the README shows exist, and unknown ones are refused."""
import importlib.util
import pathlib
import re
import subprocess
import sys

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
    assert set(shown) <= set(_dev().COMMANDS)
    assert _dev().COMMANDS["run"][1:] == ["train"]
    ci = (ROOT / ".ci" / "run").read_text()
    assert "python3 dev.py test\n" in ci  # CI runs the README's test command


def test_unknown_command_prints_usage():
    r = subprocess.run([sys.executable, str(ROOT / "dev.py"), "no-such-command"], capture_output=True, text=True)
    assert r.returncode == 2 and "python3 dev.py run" in r.stderr
