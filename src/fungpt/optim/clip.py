"""Gradient clipping: by value, by global norm (the norm is kept in the state for logging), per leaf."""
import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from fungpt.optim.base import EmptyState, GradientTransformation, acc_dtype, cast, wider_dtype

PyTree = Any


def _scaled_norm(leaves, dt):
    """``(‖x‖, unit, ‖unit(x)‖)`` where ``unit(x) ≈ x / max|x_i|``. Squares of entries beyond ~1e19 overflow
    float32 and below ~1e-19 underflow, so the sum of squares is taken of ``unit(x)`` (entries in [-1, 1]);
    ‖x‖ = s·‖unit(x)‖ is then right across the dtype's range (inf only if ‖x‖ itself overflows). Where the
    plain sum of squares is safe it is used as is: ordinary gradients give the textbook formula's bits.
    """
    s = functools.reduce(jnp.maximum, [jnp.max(jnp.abs(x.astype(dt)), initial=0) for x in leaves])
    s = jnp.where((s > 0) & jnp.isfinite(s), s, 1).astype(dt)
    # x·q·q with q = 1/√s, not x/s: XLA divides by multiplying with the reciprocal, and 1/s is subnormal
    # (flushed to zero) for s > 2^126 in float32; 1/√s is always a normal number.
    q = jax.lax.rsqrt(s)
    unit = lambda x: (x.astype(dt) * q) * q
    ss = sum(jnp.sum(jnp.square(x.astype(dt))) for x in leaves)
    r = jnp.sqrt(sum(jnp.sum(jnp.square(unit(x))) for x in leaves))
    fi = jnp.finfo(dt)
    plain_ok = jnp.isfinite(ss) & (ss >= fi.tiny / fi.eps)
    norm = jnp.where(plain_ok | (r == 0) | ~jnp.isfinite(r), jnp.sqrt(ss), (r * jnp.sqrt(s)) * jnp.sqrt(s))
    return norm, unit, r


def global_norm(tree: PyTree) -> jax.Array:
    """``sqrt(Σ_leaves Σ_i x_i²)``, accumulated in at least float32 (the widest leaf dtype), scaled so that
    it neither overflows nor underflows for any finite input (1e20s give 1e20·sqrt(n), not inf)."""
    leaves = jax.tree.leaves(tree)
    if not leaves:
        return jnp.zeros((), jnp.float32)
    dt = functools.reduce(wider_dtype, (acc_dtype(x.dtype) for x in leaves))
    return _scaled_norm(leaves, dt)[0]


def _check_positive(name, value):
    if isinstance(value, int | float) and not value > 0:
        raise ValueError(f"{name} must be > 0, got {value}")


def clip(max_delta: float) -> GradientTransformation:
    """Clip by value: ``u_i = clip(g_i, -max_delta, max_delta)``."""
    _check_positive("clip: max_delta", max_delta)

    def init(params):
        del params
        return EmptyState()

    def update(updates, state, params=None):
        del params
        c = lambda g: cast(max_delta, g.dtype)
        return jax.tree.map(lambda g: jnp.clip(g, -c(g), c(g)), updates), state

    return GradientTransformation(init, update)


class ClipByGlobalNormState(NamedTuple):
    norm: jax.Array  # the global norm of the last incoming update, before clipping (for logging)


def clip_by_global_norm(max_norm: float) -> GradientTransformation:
    """``u = g · min(1, max_norm / ‖g‖)`` with ‖g‖ the global norm over all leaves (PyTorch's
    ``clip_grad_norm_``); ``state.norm`` holds ‖g‖ of the last call.
    """
    _check_positive("clip_by_global_norm: max_norm", max_norm)

    def init(params):
        del params
        return ClipByGlobalNormState(jnp.zeros((), jnp.float32))

    def update(updates, state, params=None):
        del params
        leaves = jax.tree.leaves(updates)
        if not leaves:
            return updates, ClipByGlobalNormState(jnp.zeros((), jnp.float32))
        dt = functools.reduce(wider_dtype, (acc_dtype(x.dtype) for x in leaves))
        norm, unit, r = _scaled_norm(leaves, dt)
        c = cast(max_norm, dt)
        # Where ‖g‖ overflows, g·c/‖g‖ is written unit(g)·(c/‖unit(g)‖), so a gradient of 1e38s keeps its
        # direction instead of becoming zeros; a zero gradient stays zero (norm <= c is the identity).
        big, finite = norm > c, jnp.isfinite(norm)

        def leaf(g):
            x = g.astype(dt)
            return jnp.where(big, jnp.where(finite, x * (c / norm), unit(x) * (c / r)), x).astype(g.dtype)

        return jax.tree.map(leaf, updates), ClipByGlobalNormState(norm.astype(jnp.float32))

    return GradientTransformation(init, update)


def clip_by_leaf_norm(max_norm: float) -> GradientTransformation:
    """Per-leaf clipping: each leaf ``g`` becomes ``g · min(1, max_norm / ‖g‖₂)``."""
    _check_positive("clip_by_leaf_norm: max_norm", max_norm)

    def init(params):
        del params
        return EmptyState()

    def update(updates, state, params=None):
        del params

        def leaf(g):
            dt = acc_dtype(g.dtype)
            n = jnp.sqrt(jnp.sum(jnp.square(g.astype(dt))))
            return (g.astype(dt) * (cast(max_norm, dt) / jnp.maximum(n, cast(max_norm, dt)))).astype(g.dtype)

        return jax.tree.map(leaf, updates), state

    return GradientTransformation(init, update)
