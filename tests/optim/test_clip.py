"""fungpt.optim.clip against numpy in float64, and at the extremes of float32's range."""
import math

import hypothesis.extra.numpy as hnp
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fungpt import optim
from tests.helpers import EXACT, close

F32, F64 = np.dtype(np.float32), np.dtype(np.float64)


@settings(max_examples=15, deadline=None)
@given(
    hnp.arrays(np.float64, (5,), elements=st.floats(-5, 5)),
    hnp.arrays(np.float64, (2, 2), elements=st.floats(-5, 5)),
    st.floats(0.1, 10.0),
)
def test_clip_by_global_norm(a, b, max_norm):
    g = {"a": jnp.asarray(a), "b": jnp.asarray(b)}
    norm = np.sqrt(np.sum(a**2) + np.sum(b**2))
    close(optim.global_norm(g), norm, rtol=EXACT[F64])
    t = optim.clip_by_global_norm(max_norm)
    out, state = t.update(g, t.init(g))
    # logged as float32 (XLA:CPU flushes float32 subnormals to zero, hence the absolute tolerance)
    close(state.norm, np.float32(norm), rtol=1e-6, atol=float(np.finfo(np.float32).tiny))
    scale = 1.0 if norm <= max_norm else max_norm / norm
    close(out["a"], a * scale, rtol=EXACT[F64], atol=1e-300)
    close(out["b"], b * scale, rtol=EXACT[F64], atol=1e-300)


@pytest.mark.parametrize("magnitude", [1e-30, 1e-20, 1e-3, 1e20, 1e30, 3e38])
def test_clip_by_global_norm_across_float32s_range(magnitude):
    # Squares of 1e20 overflow float32 and of 1e-20 underflow: the norm must still be right (a scaled sum of
    # squares), so a gradient of 1e20s becomes a unit vector, not zeros with norm inf. Reference: float64.
    rng = np.random.default_rng(0)
    a = (rng.uniform(0.5, 1.0, (3, 4)) * rng.choice([-1, 1], (3, 4)) * magnitude).astype(np.float32)
    b = (rng.uniform(0.5, 1.0, 5) * magnitude).astype(np.float32)
    g = {"a": jnp.asarray(a), "b": jnp.asarray(b)}
    norm = np.sqrt(np.sum(a.astype(np.float64) ** 2) + np.sum(b.astype(np.float64) ** 2))
    t = optim.clip_by_global_norm(1.0)
    out, state = jax.jit(t.update)(g, t.init(g))
    want_norm = np.float32(norm) if norm < np.finfo(np.float32).max else np.inf  # 3e38·√17 overflows float32
    close(state.norm, want_norm, rtol=1e-6, atol=0)
    if norm < np.finfo(np.float32).max:
        close(optim.global_norm(g), norm, rtol=1e-6, atol=0)
    scale = min(1.0, 1.0 / norm)
    close(out["a"], a * scale, rtol=1e-6, atol=0)
    close(out["b"], b * scale, rtol=1e-6, atol=0)


def test_clip_of_zero_and_nonfinite_gradients():
    t = optim.clip_by_global_norm(1.0)
    zeros = {"a": jnp.zeros(3, jnp.float32)}
    out, state = t.update(zeros, t.init(zeros))
    np.testing.assert_array_equal(np.asarray(out["a"]), 0.0)
    assert float(state.norm) == 0.0
    bad = {"a": jnp.asarray([1.0, jnp.nan, 2.0], jnp.float32)}
    out, state = t.update(bad, t.init(bad))
    # NaN in, NaN out: never a plausible number
    assert np.isnan(float(state.norm)) and np.isnan(np.asarray(out["a"])).any()
    with pytest.raises(ValueError, match="max_norm"):
        optim.clip_by_global_norm(0.0)


def test_clip_by_value_and_leaf_norm():
    rng = np.random.default_rng(3)
    g = {"a": rng.standard_normal(6) * 3, "b": rng.standard_normal((2, 3)) * 0.01}
    gj = jax.tree.map(jnp.asarray, g)
    out, _ = optim.clip(0.5).update(gj, optim.EmptyState())
    for k in g:
        np.testing.assert_array_equal(np.asarray(out[k]), np.clip(g[k], -0.5, 0.5))
    out, _ = optim.clip_by_leaf_norm(1.0).update(gj, optim.EmptyState())
    for k in g:
        close(out[k], g[k] * min(1.0, 1.0 / np.linalg.norm(g[k])), rtol=EXACT[F64])


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
def test_global_norm_extremes(dtype):
    # Empty trees, size-0 leaves, 1x1, the largest and smallest normal numbers of the dtype; float64 reference.
    fi = np.finfo(dtype)
    assert float(optim.global_norm({})) == 0.0
    assert float(optim.global_norm({"a": jnp.zeros((0, 3), dtype)})) == 0.0
    for x in ([[fi.max / 4]], [[-fi.tiny] * 3], [fi.max / 8, fi.max / 8], [3.0, 4.0]):
        x = np.asarray(x, dtype)
        want = math.hypot(*map(float, x.ravel()))  # exact scaling in Python's hypot
        close(optim.global_norm({"x": jnp.asarray(x)}), want, rtol=1e-6, atol=0)
    assert np.isinf(float(optim.global_norm({"x": jnp.asarray([np.inf, 1.0], dtype)})))
    t = optim.clip_by_global_norm(1.0)
    assert t.update({}, t.init({}))[0] == {}
