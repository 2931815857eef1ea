"""sort (multi-operand, num_keys, stable), top_k and the cumulative reductions against jax.vjp /
jax.jvp, the transpose identity and float64 central differences. Ties are compared with JAX only
(a tie is a kink: central differences do not apply there)."""
import zlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jax import lax

import fungpt
from tests.autodiff._numpy_random import numpy_random  # noqa: F401 (autouse fixture)
from tests.autodiff.oracle import check_all

DTYPES = [np.float32, np.float64]


def _normal(name, dtype, *shapes):
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    return tuple(jnp.asarray(rng.normal(size=s), dtype) for s in shapes)


def _tied(x):  # the values of round(x) (many ties), the derivative of x
    return jnp.round(x) + (x - lax.stop_gradient(x))


def _w(x):  # distinct weights, so that a permuted cotangent cannot pass by symmetry
    return jnp.arange(1, x.size + 1, dtype=x.dtype).reshape(x.shape)


# (name, function, argument shapes, central differences apply)
SPECS = [
    ("sort_last", lambda x: jnp.sort(x) * _w(x), [(3, 5)], True),
    ("sort_axis0", lambda x: jnp.sort(x, axis=0) * _w(x), [(3, 5)], True),
    ("sort_descending", lambda x: jnp.sort(x, descending=True) * _w(x), [(5,)], True),
    ("sort_size1", lambda x: jnp.sort(x, axis=0) * _w(x), [(1, 5)], True),
    ("sort_size0", lambda x: jnp.sort(x, axis=1), [(3, 0)], True),
    ("sort_key_value", lambda k, v: lax.sort((k, v), num_keys=1)[1] * _w(v), [(5,), (5,)], True),
    ("sort_two_keys", lambda a, b: sum(o * _w(o) for o in lax.sort((a, b), num_keys=2)), [(5,), (5,)], True),
    ("sort_int_keys", lambda v: lax.sort((jnp.array([2, 0, 1, 0, 2]), v), num_keys=1)[1] * _w(v), [(5,)], True),
    ("argsort_gather", lambda x: x[jnp.argsort(x)] ** 2, [(5,)], True),
    ("top_k", lambda x: lax.top_k(x, 3)[0] * _w(lax.top_k(x, 3)[0]), [(3, 5)], True),
    ("top_k_all", lambda x: lax.top_k(x, 5)[0] ** 2, [(5,)], True),
    ("cumprod", lambda x: jnp.cumprod(x, axis=1), [(3, 5)], True),
    ("cumprod_reverse", lambda x: lax.cumprod(x, axis=1, reverse=True), [(3, 5)], True),
    ("cumprod_size1", lambda x: jnp.cumprod(x, axis=0), [(1, 5)], True),
    ("cummax", lambda x: lax.cummax(x, axis=1), [(3, 5)], True),
    ("cummin_reverse", lambda x: lax.cummin(x, axis=1, reverse=True), [(3, 5)], True),
    ("cumlogsumexp", lambda x: lax.cumlogsumexp(x, axis=1), [(3, 5)], True),
    # Ties (equal values: the derivative of x, the values of round(x)), compared with JAX only.
    ("sort_ties", lambda x: jnp.sort(_tied(x)) * _w(x), [(6,)], False),
    ("stable_sort_ties", lambda x: lax.sort((jnp.round(x), x), num_keys=1, is_stable=True)[1] * _w(x), [(6,)],
     False),
    ("top_k_ties", lambda x: lax.top_k(_tied(x), 3)[0] * _w(lax.top_k(x, 3)[0]), [(6,)], False),
    ("cummax_ties", lambda x: lax.cummax(_tied(x), axis=1), [(3, 5)], False),
]

# The default run checks these (both dtypes); the rest of the table runs with `-m slow` (make test-all).
CORE = {"sort_last", "sort_key_value", "top_k",
        "sort_ties", "cummax_ties"}


def _params(specs, core):
    return [pytest.param(*s, id=s[0], marks=() if s[0] in core else pytest.mark.slow) for s in specs]


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("name,f,shapes,fd", _params(SPECS, CORE))
def test_sorting(name, f, shapes, fd, dtype, key):
    check_all(f, _normal(name, dtype, *shapes), key, fd=fd)


def test_jit_and_grad_of_grad():
    x = jnp.asarray(np.random.default_rng(0).normal(size=6))

    def loss(x):
        s = jnp.sort(x)
        return (jnp.sum(s * s * jnp.arange(6.0)) + jnp.sum(lax.cumlogsumexp(x, 0)) + jnp.sum(lax.top_k(x, 2)[0] ** 3)
                + jnp.sum(jnp.cumprod(x) ** 2))

    np.testing.assert_allclose(jax.jit(fungpt.grad(loss))(x), jax.jit(jax.grad(loss))(x), rtol=1e-10)
    outer = lambda g: lambda x: jnp.sum(jnp.sin(g(loss)(x)))
    np.testing.assert_allclose(jax.jit(fungpt.grad(outer(fungpt.grad)))(x), jax.jit(jax.grad(outer(jax.grad)))(x),
                               rtol=1e-9)


@pytest.mark.slow
@settings(max_examples=2, deadline=None)
@given(shape=st.lists(st.integers(1, 4), min_size=1, max_size=3), seed=st.integers(0, 2**16), data=st.data())
def test_property_sort_and_cumulative_any_axis(shape, seed, data):
    axis = data.draw(st.integers(0, len(shape) - 1))
    reverse = data.draw(st.booleans())
    x = jnp.asarray(np.random.default_rng(seed).normal(size=shape))
    key = jax.random.key(seed)
    check_all(lambda x: jnp.sort(x, axis=axis) * _w(x), (x,), key)
    check_all(lambda x: lax.cumprod(x, axis=axis, reverse=reverse), (x,), key)
