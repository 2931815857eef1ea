"""Elementwise primitives: a table of derivatives. Each partial is d(ans)/d(x_i) as a function of
(ans, *xs); the family helpers turn it into a VJP (ct * d, summed back over broadcast axes) and a
JVP (t * d)."""
import math

import jax.numpy as jnp
import numpy as np
from jax import lax

from fungpt.autodiff.rules import bcast, defelementwise, deflinear, defnograd, register, unbroadcast


def _one(ans, *xs, **_):
    return jnp.ones((), ans.dtype)


# --- linear and bilinear ------------------------------------------------------------------------
def _t_add(ct, x, y, **_):
    return unbroadcast(ct, x), unbroadcast(ct, y)


def _t_sub(ct, x, y, **_):
    return unbroadcast(ct, x), unbroadcast(-ct, y)


deflinear("add", _t_add)
deflinear("add_any", _t_add)
deflinear("add_jaxvals", _t_add)
deflinear("sub", _t_sub)
deflinear("neg", lambda ct, x, **_: (-ct,))
deflinear("real", lambda ct, x, **_: (lax.complex(ct, jnp.zeros_like(ct)),))
deflinear("imag", lambda ct, x, **_: (lax.complex(jnp.zeros_like(ct), -ct),))
deflinear("complex", lambda ct, x, y, **_: (unbroadcast(jnp.real(ct), x), unbroadcast(-jnp.imag(ct), y)))
deflinear("conj", lambda ct, x, **_: (jnp.conj(ct) if jnp.iscomplexobj(x) else jnp.real(ct),))
deflinear("reduce_precision", lambda ct, x, **p: (lax.reduce_precision(ct, **p),))


def _t_convert(ct, x, *, new_dtype, **_):
    dtype = np.result_type(x) if not hasattr(x, "dtype") else x.dtype
    if jnp.iscomplexobj(ct) and not jnp.issubdtype(dtype, jnp.complexfloating):
        ct = jnp.real(ct)
    return (ct.astype(dtype),)


deflinear("convert_element_type", _t_convert)

# mul is bilinear: d/dx = y, d/dy = x.
defelementwise("mul", lambda ans, x, y, **_: y, lambda ans, x, y, **_: x)
# div: d/dx = 1/y, d/dy = -x/y^2 = -ans/y.
defelementwise("div", lambda ans, x, y, **_: 1 / y, lambda ans, x, y, **_: -ans / y)

# --- transcendental ---------------------------------------------------------------------------
defelementwise("exp", lambda ans, x, **_: ans)
defelementwise("exp2", lambda ans, x, **_: ans * np.log(2).astype(ans.dtype))
defelementwise("log", lambda ans, x, **_: 1 / x)
defelementwise("log1p", lambda ans, x, **_: 1 / (1 + x))
defelementwise("expm1", lambda ans, x, **_: ans + 1)
defelementwise("tanh", lambda ans, x, **_: 1 - ans * ans)
defelementwise("logistic", lambda ans, x, **_: ans * (1 - ans))
defelementwise("sin", lambda ans, x, **_: jnp.cos(x))
defelementwise("cos", lambda ans, x, **_: -jnp.sin(x))
defelementwise("tan", lambda ans, x, **_: 1 + ans * ans)
defelementwise("asin", lambda ans, x, **_: lax.rsqrt(1 - x * x))
defelementwise("acos", lambda ans, x, **_: -lax.rsqrt(1 - x * x))
defelementwise("atan", lambda ans, x, **_: 1 / (1 + x * x))
defelementwise("sinh", lambda ans, x, **_: jnp.cosh(x))
defelementwise("cosh", lambda ans, x, **_: jnp.sinh(x))
defelementwise("asinh", lambda ans, x, **_: lax.rsqrt(x * x + 1))
defelementwise("acosh", lambda ans, x, **_: lax.rsqrt((x - 1) * (x + 1)))
defelementwise("atanh", lambda ans, x, **_: 1 / ((1 - x) * (1 + x)))
# atan2(x, y) = atan(x / y): d/dx = y / (x^2 + y^2), d/dy = -x / (x^2 + y^2).
defelementwise("atan2", lambda ans, x, y, **_: y / (x * x + y * y),
               lambda ans, x, y, **_: -x / (x * x + y * y))
defelementwise("sqrt", lambda ans, x, **_: 0.5 / ans)
defelementwise("rsqrt", lambda ans, x, **_: -0.5 * ans / x)
defelementwise("cbrt", lambda ans, x, **_: ans / (3 * x))
defelementwise("square", lambda ans, x, **_: 2 * x)
defelementwise("erf", lambda ans, x, **_: (2 / math.sqrt(math.pi)) * jnp.exp(-x * x))
defelementwise("erfc", lambda ans, x, **_: (-2 / math.sqrt(math.pi)) * jnp.exp(-x * x))
defelementwise("erf_inv", lambda ans, x, **_: (math.sqrt(math.pi) / 2) * jnp.exp(ans * ans))
defelementwise("lgamma", lambda ans, x, **_: lax.digamma(x))
defelementwise("digamma", lambda ans, x, **_: lax.polygamma(jnp.ones((), x.dtype), x))
defelementwise("bessel_i0e", lambda ans, x, **_: lax.bessel_i1e(x) - jnp.sign(x) * ans)
defelementwise("bessel_i1e", lambda ans, x, **_: _bessel_i1e_deriv(ans, x))


def _bessel_i1e_deriv(ans, x):
    # d/dx i1e(x) = i0e(x) - i1e(x) * (sign(x) + 1/x), with the x -> 0 limit 1/2.
    safe = jnp.where(x == 0, jnp.ones_like(x), x)
    d = lax.bessel_i0e(x) - ans * (jnp.sign(x) + 1 / safe)
    return jnp.where(x == 0, jnp.full_like(x, 0.5), d)


def _integer_pow_deriv(ans, x, *, y):
    # d/dx x^y = y x^(y-1)
    return jnp.zeros_like(x) if y == 0 else y * lax.integer_pow(x, y - 1) if y != 1 else jnp.ones_like(x)


defelementwise("integer_pow", _integer_pow_deriv)


def _pow_dx(ans, x, y, **_):
    # d/dx x^y = y x^(y-1). For an integer y, 0 where y = 0; for a float y JAX leaves 0 * inf = nan at
    # x = y = 0, and so do we (a drop-in matches, even there).
    if jnp.issubdtype(y.dtype, jnp.integer):
        return jnp.where(y == 0, jnp.zeros_like(ans), y.astype(ans.dtype) * lax.pow(x, y - 1))
    return y * lax.pow(x, y - 1)


def _pow_dy(ans, x, y, **_):
    # d/dy x^y = log(x) x^y, taken as 0 where x = 0 (JAX's convention).
    return ans * jnp.log(jnp.where(x == 0, jnp.ones_like(x), x))


def _pow_vjp(ct, ans, x, y, **_):
    dy = unbroadcast(ct * _pow_dy(ans, x, y), y) if jnp.issubdtype(y.dtype, jnp.inexact) else None
    return unbroadcast(ct * _pow_dx(ans, x, y), x), dy


def _pow_jvp(xs, ts, **_):
    (x, y), ans = xs, lax.pow(*xs)
    terms = [bcast(t * d(ans, x, y), ans.shape) for t, d in zip(ts, (_pow_dx, _pow_dy), strict=True)
             if t is not None]
    return ans, (sum(terms[1:], terms[0]) if terms else None)


register("pow", vjp=_pow_vjp, jvp=_pow_jvp)

# abs: +1 for x >= 0 and -1 below (JAX's choice at 0) for real x. For complex x the tangent map is
# t -> Re(t conj(x) / |x|) (|x| = 0 read as 1), and its transpose ct -> ct conj(x) / |x|.
def _abs_scale(ans, x):
    safe = jnp.where(ans == 0, jnp.ones_like(ans), ans).astype(x.dtype)
    return jnp.conj(x) / safe


def _abs_vjp(ct, ans, x, **_):
    if jnp.iscomplexobj(x):
        return (ct.astype(x.dtype) * _abs_scale(ans, x),)
    return (jnp.where(x >= 0, ct, -ct),)


def _abs_jvp(xs, ts, **_):
    (x,), (t,) = xs, ts
    ans = jnp.abs(x)
    if t is None:
        return ans, None
    if jnp.iscomplexobj(x):
        return ans, jnp.real(t * _abs_scale(ans, x))
    return ans, jnp.where(x >= 0, t, -t)


register("abs", vjp=_abs_vjp, jvp=_abs_jvp)


# max/min: the gradient goes to the larger (smaller) operand; ties split it in half, as JAX does.
def _select_deriv(cmp, other):
    def d(ans, x, y, **_):
        mine, theirs = (x, y) if other == 1 else (y, x)
        return jnp.where(cmp(mine, theirs), 1.0, jnp.where(mine == theirs, 0.5, 0.0)).astype(ans.dtype)
    return d


defelementwise("max", _select_deriv(jnp.greater, 1), _select_deriv(jnp.greater, 0))
defelementwise("min", _select_deriv(jnp.less, 1), _select_deriv(jnp.less, 0))

# --- selection ---------------------------------------------------------------------------------


def _select_n_vjp(ct, ans, which, *cases, **_):
    zero = jnp.zeros_like(ct)
    if len(cases) == 1:
        return [None, ct]
    return [None] + [unbroadcast(lax.select_n(which, *[ct if j == i else zero for j in range(len(cases))]), c)
                     for i, c in enumerate(cases)]


def _select_n_jvp(xs, ts, **_):
    which, *cases = xs
    ans = lax.select_n(which, *cases)
    if all(t is None for t in ts[1:]):
        return ans, None
    tcases = [jnp.zeros(ans.shape, ans.dtype) if t is None else bcast(t, ans.shape) for t in ts[1:]]
    return ans, lax.select_n(which, *tcases)


register("select_n", vjp=_select_n_vjp, jvp=_select_n_jvp)


def _clamp_masks(lo, x, hi, shape):
    # Who receives the gradient of clamp(lo, x, hi), exactly as JAX assigns it (ties: nobody).
    lo, x, hi = (jnp.broadcast_to(v, shape) for v in (lo, x, hi))
    return (lo > x) & (lo < hi), (x > lo) & (x < hi), hi < x


def _clamp_vjp(ct, ans, lo, x, hi, **_):
    zero = jnp.zeros_like(ct)
    return [unbroadcast(jnp.where(m, ct, zero), v)
            for m, v in zip(_clamp_masks(lo, x, hi, ans.shape), (lo, x, hi), strict=True)]


def _clamp_jvp(xs, ts, **_):
    ans = lax.clamp(*xs)
    masks = _clamp_masks(*xs, ans.shape)
    terms = [jnp.where(m, bcast(t, ans.shape), jnp.zeros_like(ans)) for m, t in zip(masks, ts, strict=True)
             if t is not None]
    return ans, (sum(terms[1:], terms[0]) if terms else None)


register("clamp", vjp=_clamp_vjp, jvp=_clamp_jvp)

# stop_gradient blocks cotangents and tangents alike.
defnograd("stop_gradient")

# No derivative: comparisons, rounding, sign, integer and bit operations, predicates.
for _name in ["sign", "floor", "ceil", "round", "is_finite", "eq", "ne", "lt", "le", "gt", "ge",
              "and", "or", "not", "xor", "shift_left", "shift_right_arithmetic", "shift_right_logical",
              "population_count", "clz", "nextafter", "iota", "random_bits", "random_seed",
              "random_split", "random_fold_in", "random_wrap", "random_unwrap", "threefry2x32",
              "argmax", "argmin", "eq_to", "le_to", "lt_to", "reduce_and", "reduce_or", "reduce_xor",
              "bitcast_convert_type", "rng_bit_generator", "rng_uniform", "create_token", "after_all"]:
    defnograd(_name)


# rem(x, y) = x - y * trunc(x / y): d/dx = 1, d/dy = -trunc(x / y).
defelementwise("rem", _one, lambda ans, x, y, **_: -lax.round((x - ans) / y))


# --- special functions ---------------------------------------------------------------------------
def _refuse(message):
    def d(*_, **__):
        raise ValueError(message)  # JAX refuses these partials with the same message
    return d


def _igamma_dx(ans, a, x, **_):
    # d/dx P(a, x) = x^(a-1) e^(-x) / Gamma(a)
    return jnp.exp(-x + (a - 1) * jnp.log(x) - lax.lgamma(a))


defelementwise("igamma", lambda ans, a, x, **_: lax.igamma_grad_a(a, x), _igamma_dx)
defelementwise("igammac", lambda ans, a, x, **_: -lax.igamma_grad_a(a, x),
               lambda ans, a, x, **_: -_igamma_dx(ans, a, x))
defelementwise("polygamma", _refuse("polygamma gradient with respect to m is not supported"),
               lambda ans, m, x, **_: lax.polygamma(m + 1, x))
defelementwise("regularized_incomplete_beta",
               _refuse("Betainc gradient with respect to a and b not supported."),
               _refuse("Betainc gradient with respect to a and b not supported."),
               # d/dx I_x(a, b) = x^(a-1) (1-x)^(b-1) / B(a, b)
               lambda ans, a, b, x, **_: jnp.exp((b - 1) * jnp.log1p(-x) + (a - 1) * jnp.log(x)
                                                 - (lax.lgamma(a) + lax.lgamma(b) - lax.lgamma(a + b))))
