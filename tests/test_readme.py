"""The README's "Our autodiff in one screen" snippet runs as printed, so the front page cannot rot.

It runs under a user's default JAX settings (float32, standard dtype promotion, rank promotion allowed),
not under conftest's strict harness: that is what someone pasting it sees.
"""
import pathlib
import re

import jax
import numpy as np

from tests._user_defaults import user_defaults

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"


def python_block(heading: str) -> str:
    """The ```python block that follows the Markdown heading `heading` (before any other heading)."""
    text = README.read_text(encoding="utf-8")
    m = re.search(rf"^#+ {re.escape(heading)}\n(.*?)^```python\n(.*?)^```", text, re.S | re.M)
    assert m, f"README.md: no heading {heading!r} followed by a ```python block"
    assert not re.search(r"^#+ ", m.group(1), re.M), f"README.md: no ```python block right under {heading!r}"
    return m.group(2)


def test_autodiff_in_one_screen(capsys):
    code = python_block("Our autodiff in one screen")
    ns = {"__name__": "__readme__"}
    with user_defaults():
        exec(compile(code, "README.md: Our autodiff in one screen", "exec"), ns)
        # the snippet's first claim: the same pytree as jax.grad
        ours = ns["fungpt"].grad(ns["loss"])(ns["params"], ns["x"])
        ref = jax.grad(ns["loss"])(ns["params"], ns["x"])
    assert jax.tree.structure(ours) == jax.tree.structure(ref)
    for a, b in zip(jax.tree.leaves(ours), jax.tree.leaves(ref), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    out = capsys.readouterr().out
    assert re.match(r"\d+ equations; reverse mode keeps \d+ residuals, [\d,]+ bytes:", out), out
