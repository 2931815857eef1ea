"""Every docstring example (`>>>`) in src/fungpt runs and prints what it claims (standard `doctest`).

The examples are written for a user's default JAX settings (float32, standard dtype promotion, rank
promotion allowed), so they run under those here, not under conftest's strict harness. They may use
jax, jnp, np, fungpt and the public names of their package (`GPTConfig`, `init_params`, ...) unimported.
"""
import doctest
import importlib
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import fungpt
import fungpt.gpt
from tests._user_defaults import user_defaults

SRC = pathlib.Path(fungpt.__file__).parent


def _modules_with_examples():
    names = []
    for path in sorted(SRC.rglob("*.py")):
        if ">>>" in path.read_text(encoding="utf-8"):
            rel = path.relative_to(SRC.parent).with_suffix("")
            names.append(".".join(rel.parts[:-1] if rel.name == "__init__" else rel.parts))
    return names


MODULES = _modules_with_examples()


def test_examples_were_found():
    assert "fungpt.graphs" in MODULES and "fungpt.gpt.model" in MODULES, MODULES


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name, tmp_path, monkeypatch):
    # import_module, not attribute access: fungpt.gpt.generate and fungpt.autodiff.graph are also the
    # names of functions that shadow their modules on the package.
    module = importlib.import_module(name)
    globs = {"jax": jax, "jnp": jnp, "np": np, "fungpt": fungpt}
    if name.startswith("fungpt.gpt."):
        globs.update({n: getattr(fungpt.gpt, n) for n in fungpt.gpt.__all__})
    monkeypatch.chdir(tmp_path)  # an example that writes a file writes it here
    finder = doctest.DocTestFinder(exclude_empty=True)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    tests = finder.find(module, name, extraglobs=globs)
    assert any(t.examples for t in tests), f"{name} contains '>>>' but doctest found no example"
    with user_defaults():
        for test in tests:
            runner.run(test)
    result = runner.summarize(verbose=False)
    assert result.failed == 0, f"{result.failed} of {result.attempted} docstring examples in {name} failed (above)"
