"""Array helpers shared by the chapter modules (private to fungpt): input checks, a checked
`jax.jit`, masked row/column updates, and the one scaled 2-norm every chapter uses.

The 2-norm is computed as LAPACK's nrm2 and C's hypot do: scale by the largest magnitude before
squaring, so ||x|| is exact to a few ulps from the smallest subnormal to the largest finite float
(sum(x*x) underflows to 0 below ~1e-19 and overflows to inf above ~1e19 in float32).
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

__all__ = ["as_float", "as_matrix", "as_vector", "check_rhs", "checked_jit", "complex_of", "concrete",
           "default_rank_tol", "eps", "hypot", "norm2", "range_scale", "safe_sqrt", "set_col", "set_row", "unit_scale"]


def checked_jit(*static):
    """jax.jit with `static` argument names, behind an up-front check that array arguments are
    numeric (so a bad dtype is reported by name, not as a tracing failure)."""
    def wrap(fn):
        jitted = jax.jit(fn, static_argnames=static)

        @functools.wraps(fn)
        def call(*args, **kwargs):
            for i, x in enumerate(args):
                if isinstance(x, (np.ndarray, list)) and np.asarray(x).dtype.kind not in "biufc":
                    raise TypeError(f"{fn.__name__}: argument {i} must be a numeric array, "
                                    f"got dtype {np.asarray(x).dtype}")
            return jitted(*args, **kwargs)

        return call

    return wrap


def as_float(x, name="x"):
    """`x` as an inexact array; integer/bool input becomes the default float dtype."""
    if isinstance(x, (np.ndarray, list)) and np.asarray(x).dtype.kind not in "biufc":
        raise TypeError(f"{name} must be a numeric array, got dtype {np.asarray(x).dtype}")
    x = jnp.asarray(x)
    if not jnp.issubdtype(x.dtype, jnp.inexact):
        if not (jnp.issubdtype(x.dtype, jnp.integer) or x.dtype == jnp.bool_):
            raise TypeError(f"{name} must be a numeric array, got dtype {x.dtype}")
        x = x.astype(jnp.result_type(float))
    return x


def as_vector(x, name="x"):
    x = as_float(x, name)
    if x.ndim != 1:
        raise ValueError(f"{name} must be a 1-D vector, got shape {x.shape}")
    return x


def as_matrix(a, name="a", square=False):
    a = as_float(a, name)
    if a.ndim != 2:
        raise ValueError(f"{name} must be a 2-D matrix, got shape {a.shape} (use jax.vmap for batches)")
    if square and a.shape[0] != a.shape[1]:
        raise ValueError(f"{name} must be square, got shape {a.shape}")
    return a


def concrete(x):
    """`x` as a numpy array when it has a value now, None under jit/vmap/grad tracing."""
    try:
        return np.asarray(x)
    except (jax.errors.TracerArrayConversionError, jax.errors.ConcretizationTypeError):
        return None


def safe_sqrt(s):
    """sqrt with a finite (zero) gradient at 0: the double-where keeps NaN out of the backward pass."""
    pos = s > 0
    return jnp.where(pos, jnp.sqrt(jnp.where(pos, s, 1)), 0)


def unit_scale(x, s):
    """x / s for s > 0.  XLA turns a division by a broadcast scalar into a product with its reciprocal,
    and 1/s is subnormal (flushed to zero on CPU) for s > 2^126 in float32 (2^1022 in float64): there
    it is (x·q)·q with q = 1/√s, always a normal number.  Below, x / s as written (scaling x by a power
    of two scales the result exactly)."""
    q = lax.rsqrt(s)
    return jnp.where(s < 1 / jnp.finfo(s.dtype).tiny, x / s, (x * q) * q)


def norm2(x, axis=None, keepdims=False):
    """||x||_2 = s sqrt(sum |x_i / s|^2), s = max |x_i| (real or complex x; real result).

    Accurate over the dtype's whole range (no overflow or underflow of the squares); any inf
    entry gives inf, otherwise a NaN gives NaN; the zero vector gives 0 with gradient 0. The
    norm is homogeneous of degree 1, so s is held constant for differentiation (exact gradient).
    """
    ax = jnp.abs(x)
    if ax.size == 0:
        return jnp.sum(ax, axis=axis, keepdims=keepdims)
    s = lax.stop_gradient(jnp.max(ax, axis=axis, keepdims=True))
    ok = (s > 0) & jnp.isfinite(s)
    safe = jnp.where(ok, s, 1)
    out = safe * safe_sqrt(jnp.sum(unit_scale(ax, safe) ** 2, axis=axis, keepdims=True))
    out = jnp.where(ok, out, s)                      # s = 0 -> 0, inf -> inf, NaN -> NaN
    return out if keepdims else (jnp.squeeze(out, axis) if axis is not None else out.reshape(()))


def hypot(x, y):
    """sqrt(|x|^2 + |y|^2) without overflow or underflow, elementwise (see `norm2`)."""
    x, y = jnp.broadcast_arrays(x, y)
    return norm2(jnp.stack([x, y]), axis=0)


def set_row(a, i, row):
    return jnp.where((jnp.arange(a.shape[0]) == i)[:, None], row[None, :], a)


def set_col(a, j, col):
    return jnp.where((jnp.arange(a.shape[1]) == j)[None, :], col[:, None], a)


def eps(dtype):
    return jnp.finfo(dtype).eps


def complex_of(dtype):
    """The complex dtype with the precision of a real one (float32 -> complex64)."""
    return {jnp.dtype("float32"): jnp.complex64, jnp.dtype("float64"): jnp.complex128}.get(
        jnp.dtype(dtype), dtype)


def check_rhs(a, b):
    """A right-hand side b (n,) or (n, k) for the (n, ...) matrix a, of a's dtype."""
    b = as_float(b, "b")
    if b.ndim not in (1, 2) or b.shape[0] != a.shape[0]:
        raise ValueError(f"b must have shape ({a.shape[0]},) or ({a.shape[0]}, k), got {b.shape}")
    if b.dtype != a.dtype:
        raise TypeError(f"a and b must share a dtype, got {a.dtype} and {b.dtype}")
    return b


def default_rank_tol(a):
    """max(m, n) eps max|a_ij|: entries below it are rounding noise (rref, in_span)."""
    return max(a.shape) * eps(a.dtype) * jnp.max(jnp.abs(a), initial=0)


def range_scale(x):
    """A constant s with x / s safe to square and sum: 1 when max|x| lies in
    [sqrt(tiny)/eps, eps sqrt(max)] (nearly every input, left bit-for-bit as it is), else max|x|.
    Zero, inf or NaN give 1 (their results come out 0, inf or NaN). No gradient (the callers
    are homogeneous: f(x) = s f(x / s))."""
    ax = jnp.abs(x)
    m = lax.stop_gradient(jnp.max(ax, initial=0)).astype(ax.dtype)
    fi = jnp.finfo(ax.dtype)
    lo, hi = float(np.sqrt(fi.tiny) / fi.eps), float(np.sqrt(fi.max) * fi.eps)
    scale = (m > 0) & jnp.isfinite(m) & ((m < lo) | (m > hi))
    return jnp.where(scale, m, 1)
