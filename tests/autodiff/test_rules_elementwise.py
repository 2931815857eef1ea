"""Every elementwise rule against jax.vjp / jax.jvp, our own transpose identity and float64 central
differences: a table of specs (function, argument shapes, a sampler inside the domain) x dtypes."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jax import lax

import fungpt
from tests.autodiff.oracle import TOL, assert_trees_close, check_all, check_jvp, check_vjp

DTYPES = [np.float32, np.float64]


def normal(key, shape, dtype):
    return jax.random.normal(key, shape, dtype)


def positive(key, shape, dtype):
    return jax.random.uniform(key, shape, dtype, 0.5, 2.0)


def unit(key, shape, dtype):  # inside (-1, 1), away from the endpoints
    return jax.random.uniform(key, shape, dtype, -0.8, 0.8)


def above_one(key, shape, dtype):
    return jax.random.uniform(key, shape, dtype, 1.5, 3.0)


def nonzero(key, shape, dtype):
    x = jax.random.uniform(key, shape, dtype, 0.5, 2.0)
    return jnp.where(jax.random.bernoulli(jax.random.fold_in(key, 1), 0.5, shape), x, -x)


# (name, function, sampler per argument, shapes per argument)
UNARY = [
    ("neg", lax.neg, normal), ("exp", jnp.exp, normal), ("exp2", jnp.exp2, normal), ("log", jnp.log, positive),
    ("log1p", jnp.log1p, positive), ("expm1", jnp.expm1, normal), ("tanh", jnp.tanh, normal),
    ("logistic", jax.nn.sigmoid, normal), ("sin", jnp.sin, normal), ("cos", jnp.cos, normal),
    ("tan", jnp.tan, unit), ("asin", jnp.arcsin, unit), ("acos", jnp.arccos, unit), ("atan", jnp.arctan, normal),
    ("sinh", jnp.sinh, normal), ("cosh", jnp.cosh, normal), ("asinh", jnp.arcsinh, normal),
    ("acosh", jnp.arccosh, above_one), ("atanh", jnp.arctanh, unit), ("sqrt", jnp.sqrt, positive),
    ("rsqrt", lax.rsqrt, positive), ("cbrt", jnp.cbrt, nonzero), ("square", jnp.square, normal),
    ("erf", jax.scipy.special.erf, normal), ("erfc", jax.scipy.special.erfc, normal),
    ("erf_inv", jax.scipy.special.erfinv, unit), ("lgamma", jax.scipy.special.gammaln, positive),
    ("digamma", jax.scipy.special.digamma, positive), ("abs", jnp.abs, nonzero), ("sign", jnp.sign, nonzero),
    ("integer_pow3", lambda x: x ** 3, normal), ("integer_pow-2", lambda x: lax.integer_pow(x, -2), nonzero),
    ("integer_pow0", lambda x: lax.integer_pow(x, 0), normal), ("copy", lambda x: lax.copy_p.bind(x), normal),
    ("convert", lambda x: x.astype(jnp.float32) * 2, normal), ("stop_gradient", lambda x: lax.stop_gradient(x) * x,
                                                                normal),
    ("floor", jnp.floor, normal), ("round", jnp.round, normal), ("relu", jax.nn.relu, nonzero),
    ("gelu", jax.nn.gelu, normal), ("gelu_exact", lambda x: jax.nn.gelu(x, approximate=False), normal),
    ("softplus", jax.nn.softplus, normal), ("silu", jax.nn.silu, normal), ("log_sigmoid", jax.nn.log_sigmoid, normal),
    ("reduce_precision", lambda x: lax.reduce_precision(x, exponent_bits=8, mantissa_bits=7), normal),
]

BINARY = [
    ("add", lax.add), ("sub", lax.sub), ("mul", lax.mul), ("div", lax.div), ("max", lax.max), ("min", lax.min),
    ("atan2", lax.atan2), ("rem", lax.rem),
]

# Shapes for binary ops: equal, rank-0 operand, size-1 axes (implicit broadcasting in jaxprs), size 0.
BINARY_SHAPES = [((3, 4), (3, 4)), ((), (3, 4)), ((3, 4), ()), ((3, 1), (3, 4)), ((1, 4), (3, 1)), ((0, 2), (0, 2))]


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("name,f,sampler", UNARY, ids=[u[0] for u in UNARY])
@pytest.mark.parametrize("shape", [(), (2, 3)], ids=str)
def test_unary(name, f, sampler, shape, dtype, key):
    x = sampler(key, shape, dtype)
    k = jax.random.fold_in(key, 7)
    if name == "reduce_precision":  # rounding: JAX passes cotangents through a rounding too
        check_vjp(f, (x,), k)
        check_jvp(f, (x,), k)
    else:  # finite differences see through stop_gradient and across a float32 cast: not an oracle there
        check_all(f, (x,), k, fd=name not in ("stop_gradient", "convert"))


def _binary_sampler(name):
    return nonzero if name in ("div", "atan2", "rem") else normal


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("name,f", BINARY, ids=[b[0] for b in BINARY])
@pytest.mark.parametrize("shapes", BINARY_SHAPES, ids=str)
def test_binary(name, f, shapes, dtype, key):
    k1, k2, k3 = jax.random.split(key, 3)
    s = _binary_sampler(name)
    x, y = s(k1, shapes[0], dtype), s(k2, shapes[1], dtype)

    def g(x, y):  # the jaxpr broadcasts implicitly; lax refuses mismatched ranks, so go through jnp
        return f(*jnp.broadcast_arrays(x, y)) if jnp.shape(x) != jnp.shape(y) and min(x.ndim, y.ndim) > 0 \
            else (f(x, y) if jnp.shape(x) == jnp.shape(y) else _jnp_binary(name)(x, y))

    check_all(g, (x, y), k3)


def _jnp_binary(name):
    return {"add": jnp.add, "sub": jnp.subtract, "mul": jnp.multiply, "div": jnp.divide, "max": jnp.maximum,
            "min": jnp.minimum, "atan2": jnp.arctan2, "rem": jnp.remainder}[name]


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_implicit_broadcast_in_jaxpr(dtype, key):
    # jnp ops on equal-rank operands with size-1 axes keep the broadcast implicit in the jaxpr.
    x = jax.random.normal(key, (3, 4), dtype)
    y = jax.random.normal(jax.random.fold_in(key, 1), (3, 1), dtype)
    check_all(lambda x, y: x - y * x / (1 + y * y), (x, y), key)
    check_all(lambda x: x * dtype(2.0) + 1, (x,), key)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_pow(dtype, key):
    x, y = positive(key, (4,), dtype), normal(jax.random.fold_in(key, 1), (4,), dtype)
    check_all(lax.pow, (x, y), key)
    with jax.numpy_dtype_promotion("standard"):  # JAX's own pow rule mixes int and float dtypes
        check_all(lambda x: lax.pow(x, jnp.arange(4, dtype=jnp.int32)), (x,), key)
    # x = 0 and y = 0 follow JAX's conventions.
    z = jnp.array([0.0, 0.0, 1.0, 2.0], dtype)
    check_vjp(lax.pow, (z, jnp.array([0.0, 2.0, 0.0, 1.5], dtype)), key)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_ties_split_as_jax_does(dtype, key):
    x, y = jnp.array([1.0, 2.0, 3.0, 2.0], dtype), jnp.array([1.0, 5.0, 3.0, 0.0], dtype)
    check_vjp(lambda a, b: jnp.maximum(a, b), (x, y), key)
    check_vjp(lambda a, b: jnp.minimum(a, b), (x, y), key)
    check_vjp(lambda a: jnp.maximum(a, a), (x,), key)
    check_vjp(lambda a: jnp.abs(a), (jnp.array([0.0, -1.0, 1.0], dtype),), key)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_select_and_clamp(dtype, key):
    k1, k2, k3 = jax.random.split(key, 3)
    x, y = normal(k1, (6,), dtype), normal(k2, (6,), dtype)
    check_all(lambda x, y: jnp.where(x > y, x * y, jnp.sin(y)), (x, y), k3)
    check_all(lambda x, y: lax.select_n(jnp.array([0, 1, 2, 0, 1, 2]), x, y, x * y), (x, y), k3)
    check_all(lambda x: jnp.clip(x, -0.5, 0.5), (x,), k3)
    lo, hi = jnp.full_like(x, -0.3), jnp.full_like(x, 0.4)
    check_all(lambda lo, x, hi: lax.clamp(lo, x, hi), (lo, x, hi), k3)
    # scalar bounds (JAX's own clamp rule refuses them): against min(max(x, lo), hi), equal away from ties
    lo, hi = jnp.asarray(-0.3, dtype), jnp.asarray(0.4, dtype)
    ours = fungpt.grad(lambda lo, x, hi: jnp.sum(jnp.sin(lax.clamp(lo, x, hi))), argnums=(0, 1, 2))(lo, x, hi)
    ref = jax.grad(lambda lo, x, hi: jnp.sum(jnp.sin(jnp.minimum(jnp.maximum(x, lo), hi))), argnums=(0, 1, 2))(
        lo, x, hi)
    assert_trees_close(ours, ref, TOL[np.dtype(dtype)])
    # exact ties with the bounds: nobody receives the gradient, as in JAX
    check_vjp(lambda x: lax.clamp(jnp.asarray(-1.0, dtype), x, jnp.asarray(1.0, dtype)),
              (jnp.array([-1.0, 0.0, 1.0], dtype),), k3)


@pytest.mark.parametrize("dtype", [np.int32, np.bool_], ids=lambda d: np.dtype(d).name)
def test_integer_and_boolean_ops_carry_no_gradient(dtype, key):
    x = jnp.array([1.0, -2.0, 3.0])
    i = jnp.array([1, 0, 1], dtype)

    def f(x, i):
        mask = (i > 0) if dtype == np.int32 else i
        return jnp.sum(jnp.where(mask & (x > 0), x * 2, x)) + jnp.sum((i.astype(jnp.int32) * 3).astype(x.dtype))

    check_vjp(f, (x, i), key)
    check_jvp(f, (x, i), key)


@settings(max_examples=10, deadline=None)  # each example draws a new shape: a new program
@given(shape=st.lists(st.integers(1, 4), min_size=0, max_size=3), seed=st.integers(0, 2**16),
       which=st.sampled_from(["exp", "tanh", "sin", "logistic", "mul_self", "square"]))
def test_property_random_shapes(shape, seed, which):
    f = {"exp": jnp.exp, "tanh": jnp.tanh, "sin": jnp.sin, "logistic": jax.nn.sigmoid,
         "mul_self": lambda x: x * x * jnp.cos(x), "square": jnp.square}[which]
    key = jax.random.key(seed)
    x = jax.random.normal(key, tuple(shape), jnp.float64)
    check_all(lambda x: jnp.sum(f(x) ** 2), (x,), key)


@pytest.mark.parametrize("dtype", [np.complex64, np.complex128], ids=lambda d: np.dtype(d).name)
def test_abs_of_complex(dtype, key):
    re, im = jax.random.normal(key, (2, 5))
    z = jax.lax.complex(re, im).astype(dtype).at[0].set(0)  # |z| = 0 too, where JAX divides by 1
    check_vjp(jnp.abs, (z,), key)
    check_jvp(jnp.abs, (z,), key)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_special_functions(dtype, key):
    k1, k2, k3 = jax.random.split(key, 3)
    a, x = positive(k1, (4,), dtype), positive(k2, (4,), dtype)
    u = jax.random.uniform(k3, (4,), dtype, 0.2, 0.8)
    sp = jax.scipy.special
    check_all(sp.gammainc, (a, x), key)
    check_all(sp.gammaincc, (a, x), key)
    check_all(lambda x: sp.polygamma(2, x), (x,), key)
    check_all(lambda u: sp.betainc(a, x, u), (u,), key)
    with pytest.raises(ValueError, match="Betainc gradient with respect to a and b"):
        fungpt.grad(lambda a: jnp.sum(sp.betainc(a, x, u)))(a)
