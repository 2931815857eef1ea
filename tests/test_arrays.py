"""fungpt/_arrays.py: the one scaled 2-norm, at the top of the dtype's range (float64 numpy as the oracle)."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fungpt import optim
from fungpt._arrays import norm2, unit_scale
from tests.helpers import assert_trees_close

F32_MAX = float(np.finfo(np.float32).max)

# largest entries above 2^126 (where 1/s is subnormal in float32), near 1, and tiny but normal
CASES = [[1e38, 1e38], [3e38, 1e37, -2e38], [2e38, 2e38], [1.0, -2.0, 2.0], [3e-25, 4e-25], [0.0, 0.0], [-1e30]]


def _ref(v):
    n = float(np.sqrt(np.sum(np.square(np.asarray(v, np.float64)))))
    return np.float32(n) if n <= F32_MAX else np.float32(np.inf)


@pytest.mark.parametrize("v", CASES, ids=str)
def test_norm2_matches_float64_over_the_float32_range(v):
    x = jnp.asarray(v, jnp.float32)
    for f in (norm2, jax.jit(norm2)):
        got, want = f(x), _ref(v)
        assert got.dtype == jnp.float32
        if np.isinf(want):  # the norm itself overflows: inf, never 0 or NaN
            assert got == np.inf
        else:
            assert_trees_close(got, want, 4e-7, what=f"norm2({v})")


def test_global_norm_and_clip_at_the_top_of_the_range():
    g = {"a": jnp.full((3,), 1e38, jnp.float32), "b": jnp.full((2,), -3e37, jnp.float32)}
    want = _ref([1e38] * 3 + [-3e37] * 2)
    assert_trees_close(jax.jit(optim.global_norm)(g), want, 4e-7, what="global_norm")
    clip = optim.clip_by_global_norm(1.0)
    u, state = jax.jit(clip.update)(g, clip.init(g))
    assert_trees_close(state.norm, want, 4e-7, what="clip's logged norm")
    # the clipped update is g / ‖g‖: a unit vector pointing the same way
    assert_trees_close(u, jax.tree.map(lambda a: (a.astype(np.float64) / float(want)).astype(np.float32), g), 1e-6)


def test_unit_scale_is_x_over_s_where_one_over_s_is_subnormal():
    x = jnp.asarray([3e38, -1e38, 1.0], jnp.float32)
    s = jnp.float32(3e38)
    assert_trees_close(jax.jit(unit_scale)(x, s), np.asarray([1.0, -1 / 3, 1 / 3e38], np.float32), 4e-7)
