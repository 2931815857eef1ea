"""Gradient clipping: by value, by global norm (the norm is kept in the state for logging), per leaf."""
import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from fungpt._arrays import norm2, unit_scale
from fungpt.optim.base import EmptyState, GradientTransformation, acc_dtype, cast, wider_dtype

PyTree = Any


def _acc_dtype(leaves):
    return functools.reduce(wider_dtype, (acc_dtype(x.dtype) for x in leaves))


def _tree_norm(leaves, dt):
    # The norm of the leaves' norms: each `norm2` scales by its leaf's largest entry, so nothing overflows or
    # underflows before the result itself does (one scaled-norm owner: fungpt/_arrays.py).
    return norm2(jnp.stack([norm2(x.astype(dt)) for x in leaves]))


def global_norm(tree: PyTree) -> jax.Array:
    """``sqrt(Σ_leaves Σ_i x_i²)``, accumulated in at least float32 (the widest leaf dtype), scaled so that
    it neither overflows nor underflows for any finite input (1e20s give 1e20·sqrt(n), not inf)."""
    leaves = jax.tree.leaves(tree)
    if not leaves:
        return jnp.zeros((), jnp.float32)
    return _tree_norm(leaves, _acc_dtype(leaves))


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
        dt = _acc_dtype(leaves)
        norm = _tree_norm(leaves, dt)
        c = cast(max_norm, dt)
        # Where ‖g‖ itself overflows, g·c/‖g‖ is written unit(g)·(c/‖unit(g)‖) with unit(g) = g/max|g_i|, so a
        # gradient of 1e38s keeps its direction instead of becoming zeros; a zero gradient stays zero.
        s = functools.reduce(jnp.maximum, [jnp.max(jnp.abs(x.astype(dt)), initial=0) for x in leaves])
        s = jnp.where((s > 0) & jnp.isfinite(s), s, 1).astype(dt)
        unit = lambda x: unit_scale(x.astype(dt), s)
        r = _tree_norm([unit(x) for x in leaves], dt)
        # ... and so does one whose c/‖g‖ is below the smallest normal number (flushed to zero on CPU).
        big, plain = norm > c, jnp.isfinite(norm) & (c / norm >= jnp.finfo(dt).tiny)

        def leaf(g):
            x = g.astype(dt)
            return jnp.where(big, jnp.where(plain, x * (c / norm), unit(x) * (c / r)), x).astype(g.dtype)

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
