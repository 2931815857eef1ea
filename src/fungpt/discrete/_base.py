"""Argument checks shared by the discrete package."""
from __future__ import annotations

import jax.numpy as jnp
import numpy as np

__all__ = ["as_float", "nonneg_int"]


def nonneg_int(name, v):
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 0:
        raise ValueError(f"{name} must be a non-negative int, got {v!r}")
    return int(v)

def as_float(n):
    n = jnp.asarray(n)
    return n if jnp.issubdtype(n.dtype, jnp.floating) else n.astype(jnp.asarray(0.0).dtype)
