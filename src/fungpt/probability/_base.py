"""Shared argument handling for the probability package: float conversion, value checks on concrete inputs
(skipped while tracing, so every function still jits), and sample shapes."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from fungpt._arrays import concrete
from fungpt._special import xlogy

__all__ = ["as_float", "bcast", "check_n", "check_positive", "check_probs", "concrete", "floats", "full_shape",
           "is_integer", "uniform_bits", "xlogy"]


def as_float(x, dtype=None):
    x = jnp.asarray(x)
    if dtype is not None:
        return x.astype(dtype)
    return x if jnp.issubdtype(x.dtype, jnp.floating) else x.astype(jnp.asarray(0.0).dtype)


def floats(*xs):
    """All of xs in one float dtype: the promotion of the floating inputs (Python floats are weak, so
    they follow the arrays), or the default float when none is floating (ints, bools)."""
    fl = [x for x in xs if isinstance(x, float) or jnp.issubdtype(jnp.result_type(x), jnp.floating)]
    dtype = jnp.result_type(*fl) if fl else jnp.asarray(0.0).dtype
    return [jnp.asarray(x).astype(dtype) for x in xs]


def check_probs(name, p, axis=None, atol=1e-6):
    v = concrete(p)
    if v is None:
        return
    if np.any(~np.isfinite(v)) or np.any(v < 0) or np.any(v > 1):
        raise ValueError(f"{name} must hold probabilities in [0, 1], got values in [{v.min()}, {v.max()}]")
    if axis is not None:
        s = v.sum(axis=axis)
        if np.any(np.abs(s - 1) > atol * max(1, v.shape[-1] if v.ndim else 1)):
            raise ValueError(f"{name} must sum to 1 along axis {axis}, got sums {s}")


def check_positive(name, x, strict=True):
    v = concrete(x)
    if v is not None and (np.any(~np.isfinite(v)) or np.any(v <= 0 if strict else v < 0)):
        raise ValueError(f"{name} must be {'> 0' if strict else '>= 0'} and finite, got {v}")


def check_n(n):
    v = concrete(n)
    if v is not None and (np.any(~np.isfinite(v)) or np.any(v < 0) or np.any(v != np.floor(v))):
        raise ValueError(f"binomial n must be an integer >= 0, got {v}")


def full_shape(shape, *params):
    """The sample shape: `shape` followed by the parameters' broadcast shape."""
    return tuple(shape) + jnp.broadcast_shapes(*(jnp.shape(p) for p in params))


def bcast(shape, *arrays):
    return [jnp.broadcast_to(a, shape) for a in arrays]


def uniform_bits(key, shape, dtype):
    return jax.random.uniform(key, shape, dtype)


def is_integer(x):
    return x == jnp.floor(x)
