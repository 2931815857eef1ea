"""Gradient transformations: pairs of pure functions, composed by `chain`.

A transformation is ``init(params) -> state`` and ``update(updates, state, params) -> (updates, state)``.
States are pytrees of arrays (NamedTuples of arrays), so they jit, vmap, shard and checkpoint.
`chain` composes transformations left to right; with `identity` as unit it is a monoid.
"""
import inspect
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

PyTree = Any


class GradientTransformation(NamedTuple):
    """``init(params) -> state``; ``update(updates, state, params=None) -> (updates, state)``."""

    init: Callable
    update: Callable


class EmptyState(NamedTuple):
    """The state of a stateless transformation."""


def identity() -> GradientTransformation:
    """The unit of `chain`: updates pass through unchanged."""

    def init(params):
        del params
        return EmptyState()

    def update(updates, state, params=None):
        del params
        return updates, state

    return GradientTransformation(init, update)


def check_transformation(where: str, t) -> None:
    """Duck typing, as optax does: anything with ``init(params)`` and ``update(updates, state, params)``.

    optax's transformations (and ours inside optax's combinators) are accepted as they are.
    """
    init, update = getattr(t, "init", None), getattr(t, "update", None)
    if callable(init) and callable(update) and _accepts(init, 1) and _accepts(update, 3):
        return
    raise TypeError(
        f"{where} must have init(params) and update(updates, state, params) "
        f"(a GradientTransformation), got {type(t).__name__}"
    )


def _accepts(fn, n: int) -> bool:
    try:
        inspect.signature(fn).bind(*([None] * n))
    except TypeError:
        return False
    except ValueError:  # no signature to inspect (a builtin): trust the duck
        pass
    return True


def chain(*transforms) -> GradientTransformation:
    """Compose transformations: ``chain(a, b).update = b.update ∘ a.update``; the state is a tuple.

    Associative up to the nesting of states, with `identity()` as unit. Any object with
    ``init``/``update`` works (optax's transformations included).
    """
    for i, t in enumerate(transforms):
        check_transformation(f"chain: argument {i}", t)

    def init(params):
        return tuple(t.init(params) for t in transforms)

    def update(updates, state, params=None):
        if not isinstance(state, tuple) or len(state) != len(transforms):
            raise ValueError(
                f"chain of {len(transforms)} transformations got a state that is not a tuple of "
                f"{len(transforms)} states ({type(state).__name__}); call init(params) first and pass "
                "its result"
            )
        new_state = []
        for t, s in zip(transforms, state, strict=True):
            updates, s = t.update(updates, s, params)
            new_state.append(s)
        return updates, tuple(new_state)

    return GradientTransformation(init, update)


def resolve_mask(where: str, mask, tree: PyTree) -> PyTree:
    """A mask (pytree of Python bools shaped like `tree`, or a function ``tree -> such a pytree``) resolved
    and checked: masks are static, so masked-out leaves cost nothing and jit traces one program."""
    m = mask(tree) if callable(mask) else mask
    for leaf in jax.tree.leaves(m):
        if not isinstance(leaf, bool):
            raise TypeError(f"{where}: mask leaves must be Python bools, got {type(leaf).__name__}")
    return m


def apply_updates(params: PyTree, updates: PyTree) -> PyTree:
    """``params + updates`` leaf by leaf, added in the wider dtype and cast back to each param's dtype."""

    def add(p, u):
        dt = wider_dtype(p.dtype, u.dtype)
        return (p.astype(dt) + u.astype(dt)).astype(p.dtype)

    return jax.tree.map(add, params, updates)


# --- dtype helpers shared by the transforms (strict promotion: every mix of dtypes is explicit) ---

def wider_dtype(a, b) -> np.dtype:
    """The wider of two float dtypes; float32 for two different 16-bit ones (bfloat16 vs float16)."""
    a, b = np.dtype(a), np.dtype(b)
    if a == b:
        return a
    if a.itemsize != b.itemsize:
        return a if a.itemsize > b.itemsize else b
    return np.dtype(np.float32)


def acc_dtype(dtype) -> np.dtype:
    """Accumulator dtype for optimizer statistics: at least float32 (bf16 params keep f32 moments)."""
    return wider_dtype(dtype, np.float32)


def cast(x, dtype):
    """A hyperparameter (Python number or array) as an array of `dtype`."""
    return jnp.asarray(x).astype(dtype)


def safe_increment(count):
    """``count + 1`` for an int32 step counter, saturating instead of wrapping at 2**31 - 1."""
    top = jnp.iinfo(jnp.int32).max
    return jnp.where(count < top, count + 1, top).astype(jnp.int32)


def zero_count():
    return jnp.zeros((), jnp.int32)
