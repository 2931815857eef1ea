"""Gradient clipping: by value, by global norm (the norm is kept in the state for logging), per leaf."""
import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from fungpt.optim.base import EmptyState, GradientTransformation, acc_dtype, cast, wider_dtype

PyTree = Any


def global_norm(tree: PyTree) -> jax.Array:
    """``sqrt(Σ_leaves Σ_i x_i²)``, accumulated in at least float32 (the widest leaf dtype)."""
    leaves = jax.tree.leaves(tree)
    if not leaves:
        return jnp.zeros((), jnp.float32)
    dt = functools.reduce(wider_dtype, (acc_dtype(x.dtype) for x in leaves))
    return jnp.sqrt(sum(jnp.sum(jnp.square(x.astype(dt))) for x in leaves))


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
        norm = global_norm(updates)
        # Divide by max(norm, max_norm), not norm: a zero gradient stays zero instead of 0/0.
        factor = cast(max_norm, norm.dtype) / jnp.maximum(norm, cast(max_norm, norm.dtype))
        clipped = jax.tree.map(lambda g: (g.astype(factor.dtype) * factor).astype(g.dtype), updates)
        return clipped, ClipByGlobalNormState(norm.astype(jnp.float32))

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
