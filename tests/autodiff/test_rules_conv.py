"""Convolutions, pooling (reduce_window) and FFTs against jax.vjp / jax.jvp, the transpose identity
and float64 central differences."""
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
from tests.autodiff.oracle import check_all, check_jvp

DTYPES = [np.float32, np.float64]
NHWC = ("NHWC", "HWIO", "NHWC")
IMG, KER, SIG, KER1 = (1, 5, 5, 2), (3, 3, 2, 4), (2, 3, 8), (4, 3, 3)


def _args(name, dtype, *shapes):
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    cdtype = np.result_type(dtype, np.complex64)
    return tuple(jnp.asarray(rng.normal(size=s[1:]) + 1j * rng.normal(size=s[1:]), cdtype) if s[0] == "c"
                 else jnp.asarray(rng.normal(size=s), dtype) for s in shapes)


def _tied(x):  # the values of round(x) (many ties), the derivative of x
    return jnp.round(x) + (x - lax.stop_gradient(x))


def _conv2d(strides, padding, **kw):
    return lambda x, w: lax.conv_general_dilated(x, w, strides, padding, dimension_numbers=NHWC, **kw)


def _pool(op, init, window, strides, padding, **kw):
    return lambda x: lax.reduce_window(x, np.asarray(init, x.dtype), op, window, strides, padding, **kw)


# (name, function, argument shapes; ("c", *shape) is a complex argument, central differences apply)
SPECS = [
    ("conv2d_same", _conv2d((1, 1), "SAME"), [IMG, KER], True),
    ("conv2d_padding_dilations", _conv2d((1, 2), ((2, 1), (0, 1)), lhs_dilation=(2, 1), rhs_dilation=(1, 2)),
     [IMG, KER], True),
    ("conv2d_depthwise", _conv2d((1, 1), "SAME", feature_group_count=2), [IMG, (3, 3, 1, 4)], True),
    ("conv2d_1x1_size1", _conv2d((1, 1), "VALID"), [(1, 1, 1, 2), (1, 1, 2, 4)], True),
    ("conv1d_ncw_strided", lambda x, w: lax.conv_general_dilated(x, w, (2,), "SAME"), [SIG, KER1], True),
    ("conv1d_batch_groups", lambda x, w: lax.conv_general_dilated(x, w, (1,), "VALID", batch_group_count=2),
     [(2, 3, 8), (4, 3, 3)], True),
    ("avg_pool", _pool(lax.add, 0.0, (1, 2, 2, 1), (1, 2, 2, 1), "VALID"), [IMG], True),
    ("sum_pool_dilated", _pool(lax.add, 0.0, (1, 2, 2, 1), (1, 1, 2, 1), "SAME", base_dilation=(1, 2, 1, 1),
                               window_dilation=(1, 1, 2, 1)), [IMG], True),
    ("max_pool", _pool(lax.max, -np.inf, (1, 2, 2, 1), (1, 2, 2, 1), "VALID"), [IMG], True),
    ("max_pool_same", _pool(lax.max, -np.inf, (1, 3, 3, 1), (1, 1, 1, 1), "SAME"), [IMG], True),
    ("max_pool_base_dilation", _pool(lax.max, -np.inf, (1, 2, 2, 1), (1, 1, 1, 1), "VALID",
                                     base_dilation=(1, 2, 1, 1)), [IMG], True),
    ("min_pool", _pool(lax.min, np.inf, (1, 2, 2, 1), (1, 1, 1, 1), "VALID"), [IMG], True),
    ("max_pool_ties", lambda x: _pool(lax.max, -np.inf, (1, 2, 2, 1), (1, 1, 1, 1), "VALID")(_tied(x)), [IMG], False),
    ("fft", jnp.fft.fft, [("c", *SIG)], True),
    ("ifft2", jnp.fft.ifft2, [("c", *SIG)], True),
    ("rfft_even", jnp.fft.rfft, [SIG], True),
    ("rfft_odd", lambda x: jnp.fft.rfft(x[..., :7]), [SIG], True),
    ("rfft2", jnp.fft.rfft2, [SIG], True),
    ("irfft_even", jnp.fft.irfft, [("c", 2, 5)], True),
    ("irfft_odd", lambda x: jnp.fft.irfft(x, n=9), [("c", 2, 5)], True),
    ("irfft2", jnp.fft.irfft2, [("c", 3, 5)], True),
    ("fft_power_spectrum", lambda x: jnp.real(jnp.fft.rfft(x)) ** 2 + jnp.imag(jnp.fft.rfft(x)) ** 2, [SIG], True),
]

# The default run checks these (both dtypes); the rest of the table runs with `-m slow` (make test-all).
CORE = {"conv2d_padding_dilations", "conv2d_depthwise", "conv1d_batch_groups", "sum_pool_dilated",
        "max_pool", "max_pool_ties", "fft", "rfft_even", "irfft_odd"}


def _params(specs, core):
    return [pytest.param(*s, id=s[0], marks=() if s[0] in core else pytest.mark.slow) for s in specs]


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("name,f,shapes,fd", _params(SPECS, CORE))
def test_conv(name, f, shapes, fd, dtype, key):
    check_all(f, _args(name, dtype, *shapes), key, fd=fd)


def test_generic_reduce_window_forward_mode_and_clear_reverse_error(key):
    prod_pool = _pool(lax.mul, 1.0, (2,), (1,), "VALID")
    x = _args("generic", np.float64, (6,))
    check_jvp(prod_pool, x, key)
    with pytest.raises(NotImplementedError, match="reduce_window"):
        fungpt.grad(lambda x: jnp.sum(prod_pool(x)))(*x)


def test_pooling_gradient_primitives_pair(key):
    # JAX's own max-pool gradient (select_and_scatter_add) differentiated by us, both modes.
    x, ct = _args("pool_grad", np.float64, IMG, (1, 2, 2, 2))
    pool = _pool(lax.max, -np.inf, (1, 2, 2, 1), (1, 2, 2, 1), "VALID")
    jax_pool_vjp = lambda x, ct: jax.vjp(pool, x)[1](ct)[0] * x
    check_all(jax_pool_vjp, (x, ct), key)


def test_jit_and_grad_of_grad():
    x, w = _args("cnn", np.float64, IMG, (3, 3, 2, 2))

    def loss(x, w):
        h = jnp.tanh(_conv2d((1, 1), "SAME")(x, w))
        h = _pool(lax.max, -np.inf, (1, 2, 2, 1), (1, 2, 2, 1), "VALID")(h)
        return jnp.sum(jnp.real(jnp.fft.rfft(h.reshape(-1))) ** 2) + jnp.sum(h ** 3)

    for got, want in zip(jax.jit(fungpt.grad(loss, argnums=(0, 1)))(x, w),
                         jax.jit(jax.grad(loss, argnums=(0, 1)))(x, w), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)
    outer = lambda g: lambda w: jnp.sum(jnp.sin(g(loss, argnums=1)(x, w)))
    np.testing.assert_allclose(jax.jit(fungpt.grad(outer(fungpt.grad)))(w), jax.jit(jax.grad(outer(jax.grad)))(w),
                               rtol=1e-9)


@pytest.mark.slow
@settings(max_examples=2, deadline=None)
@given(length=st.integers(3, 9), width=st.integers(1, 3), stride=st.integers(1, 3), dilation=st.integers(1, 2),
       padding=st.sampled_from(["SAME", "VALID"]), seed=st.integers(0, 2**16))
def test_property_conv1d(length, width, stride, dilation, padding, seed):
    rng = np.random.default_rng(seed)
    x, w = jnp.asarray(rng.normal(size=(1, 2, length))), jnp.asarray(rng.normal(size=(3, 2, width)))
    check_all(lambda x, w: lax.conv_general_dilated(x, w, (stride,), padding, rhs_dilation=(dilation,)), (x, w),
              jax.random.key(seed))
