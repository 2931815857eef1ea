"""Wrappers around whole optimizers: hyperparameters held in the state, gradient accumulation, masks,
per-parameter optimizers, skipping non-finite updates (optax's semantics for `masked`, `multi_transform`,
`apply_if_finite`)."""
import functools
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from fungpt.optim.base import (
    GradientTransformation,
    acc_dtype,
    check_transformation,
    resolve_mask,
    safe_increment,
    zero_count,
)

PyTree = Any


class InjectHyperparamsState(NamedTuple):
    count: jax.Array  # int32
    hyperparams: dict  # name -> scalar array (the value used by the last update; schedules fill it in)
    inner_state: PyTree


def inject_hyperparams(optimizer: Callable) -> Callable:
    """Make numeric hyperparameters of ``optimizer(**kwargs)`` live in the state as scalar arrays.

    ``inject_hyperparams(adamw)(learning_rate=1e-3, weight_decay=0.1)`` returns a transformation whose
    ``state.hyperparams["learning_rate"]`` can be read for logging, and replaced between steps with
    `set_hyperparams` without retracing a jitted step. A hyperparameter given as a schedule ``step -> value`` is
    evaluated at the 0-based step on each update and its value stored. Non-numeric keyword
    arguments (mask, nesterov, ...) stay static.
    """

    @functools.wraps(optimizer)
    def build(**kwargs) -> GradientTransformation:
        is_hp = lambda v: callable(v) or (isinstance(v, int | float) and not isinstance(v, bool))
        sched = {k: v for k, v in kwargs.items() if callable(v) and k != "mask"}
        numeric = {k: v for k, v in kwargs.items() if k not in sched and k != "mask" and is_hp(v)}
        static = {k: v for k, v in kwargs.items() if k not in sched and k not in numeric}
        fdt = jnp.result_type(float)

        def values(hps, count):
            return {**hps, **{k: jnp.asarray(f(count)).astype(fdt) for k, f in sched.items()}}

        def init(params):
            hps = values({k: jnp.asarray(v, fdt) for k, v in numeric.items()}, zero_count())
            return InjectHyperparamsState(zero_count(), hps, optimizer(**hps, **static).init(params))

        def update(updates, state, params=None):
            if not isinstance(state, InjectHyperparamsState):
                raise ValueError(
                    f"expected an InjectHyperparamsState (call init first), got {type(state).__name__}"
                )
            hps = values(state.hyperparams, state.count)
            updates, inner = optimizer(**hps, **static).update(updates, state.inner_state, params)
            return updates, InjectHyperparamsState(safe_increment(state.count), hps, inner)

        return GradientTransformation(init, update)

    return build


def set_hyperparams(state: InjectHyperparamsState, **values) -> InjectHyperparamsState:
    """A copy of `state` with new hyperparameter values, cast to the stored dtype and shape.

    Keeping dtype and weak-typedness identical is what lets a jitted step reuse its compiled code.
    """
    if not isinstance(state, InjectHyperparamsState):
        raise TypeError(f"set_hyperparams expects an InjectHyperparamsState, got {type(state).__name__}")
    unknown = set(values) - set(state.hyperparams)
    if unknown:
        raise ValueError(f"unknown hyperparameters {sorted(unknown)}; this state holds {sorted(state.hyperparams)}")
    new = {k: jnp.asarray(v).astype(state.hyperparams[k].dtype).reshape(()) for k, v in values.items()}
    return state._replace(hyperparams={**state.hyperparams, **new})


class AccumulateState(NamedTuple):
    mini_step: jax.Array  # int32 in [0, every_k)
    grad_sum: PyTree
    inner_state: PyTree


def accumulate_gradients(inner: GradientTransformation, every_k: int) -> GradientTransformation:
    """Gradient accumulation: sum `every_k` micro-step gradients, then apply `inner` to their mean.

    On micro-steps 1..k-1 the updates are zeros and `inner`'s state is untouched; on step k,
    ``inner.update(mean(g_1..g_k))`` runs (under `lax.cond`, so only then) and the sum resets.
    """
    check_transformation("accumulate_gradients: inner", inner)
    if not isinstance(every_k, int) or every_k < 1:
        raise ValueError(f"accumulate_gradients: every_k must be an int >= 1, got {every_k!r}")

    def init(params):
        zeros = jax.tree.map(lambda p: jnp.zeros(p.shape, acc_dtype(p.dtype)), params)
        return AccumulateState(zero_count(), zeros, inner.init(params))

    def update(updates, state, params=None):
        acc = jax.tree.map(lambda s, g: s + g.astype(s.dtype), state.grad_sum, updates)

        def emit(_):
            mean = jax.tree.map(lambda s, g: (s / every_k).astype(g.dtype), acc, updates)
            out, inner_state = inner.update(mean, state.inner_state, params)
            return out, AccumulateState(zero_count(), jax.tree.map(jnp.zeros_like, acc), inner_state)

        def hold(_):
            zeros = zeros_like_output(inner, updates, state.inner_state, params)
            return zeros, AccumulateState(state.mini_step + 1, acc, state.inner_state)

        return jax.lax.cond(state.mini_step == every_k - 1, emit, hold, None)

    return GradientTransformation(init, update)


def zeros_like_output(inner, updates, state, params):
    """Zeros shaped like ``inner.update(updates, state, params)[0]`` (traced abstractly, not run): the
    branch of a `lax.cond` that skips `inner` must return what `inner` returns (an f32 update of a bf16 grad)."""
    shapes = jax.eval_shape(lambda: inner.update(updates, state, params)[0])
    return jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), shapes)


# --- masks and per-parameter transformations (optax's semantics) -------------------------------

class MaskedNode(NamedTuple):
    """Stands in for a masked-out leaf: an empty pytree node, so inner transformations see no leaf there."""


class MaskedState(NamedTuple):
    inner_state: PyTree


def masked(inner, mask) -> GradientTransformation:
    """optax's `masked`: apply `inner` only where `mask` is True; other updates pass through unchanged.

    `mask` is a pytree of Python bools shaped like the params, or a function ``tree -> such a pytree``
    (called on the params in init and on the updates in update). `inner`'s state covers the masked-in
    leaves only (masked-out leaves are `MaskedNode`s), so its moments cost nothing for the others.
    """
    check_transformation("masked: inner", inner)

    def hide(tree, m):
        return None if tree is None else jax.tree.map(lambda x, keep: x if keep else MaskedNode(), tree, m)

    def init(params):
        return MaskedState(inner.init(hide(params, resolve_mask("masked", mask, params))))

    def update(updates, state, params=None):
        m = resolve_mask("masked", mask, updates)
        new, inner_state = inner.update(hide(updates, m), state.inner_state, hide(params, m))
        done = iter(jax.tree.leaves(new))
        leaves, treedef = jax.tree.flatten(updates)
        out = [next(done) if keep else u for u, keep in zip(leaves, jax.tree.leaves(m), strict=True)]
        return jax.tree.unflatten(treedef, out), MaskedState(inner_state)

    return GradientTransformation(init, update)


class MultiTransformState(NamedTuple):
    inner_states: dict  # label -> MaskedState


def multi_transform(transforms: dict, param_labels) -> GradientTransformation:
    """optax's `multi_transform`: each leaf is transformed by ``transforms[label]`` for its label.

    `param_labels` is a pytree of labels shaped like the params, or a function ``tree -> such a pytree``;
    e.g. ``multi_transform({"decay": adamw(1e-3), "frozen": set_to_zero()}, labels)``. Each transformation
    is `masked` to its leaves, so every leaf goes through exactly one of them.
    """
    for label, t in transforms.items():
        check_transformation(f"multi_transform: transforms[{label!r}]", t)

    def mask_for(label):
        def mask(tree):
            labels = param_labels(tree) if callable(param_labels) else param_labels
            unknown = set(jax.tree.leaves(labels)) - set(transforms)
            if unknown:
                raise ValueError(f"multi_transform: labels {sorted(map(str, unknown))} have no transformation "
                                 f"(transforms has {sorted(map(str, transforms))})")
            return jax.tree.map(lambda lab: lab == label, labels)

        return mask

    groups = {label: masked(t, mask_for(label)) for label, t in transforms.items()}

    def init(params):
        return MultiTransformState({label: g.init(params) for label, g in groups.items()})

    def update(updates, state, params=None):
        new_states = {}
        for label, g in groups.items():
            updates, new_states[label] = g.update(updates, state.inner_states[label], params)
        return updates, MultiTransformState(new_states)

    return GradientTransformation(init, update)


class ApplyIfFiniteState(NamedTuple):
    notfinite_count: jax.Array  # int32: consecutive non-finite updates so far
    last_finite: jax.Array  # bool: was the last incoming update finite
    total_notfinite: jax.Array  # int32: non-finite updates over the whole run
    inner_state: PyTree


def apply_if_finite(inner, max_consecutive_errors: int) -> GradientTransformation:
    """optax's `apply_if_finite`: skip (zero update, `inner`'s state untouched) any update with a NaN or
    inf, unless more than `max_consecutive_errors` came in a row; then apply it, so a run that is really
    diverging shows it instead of freezing.
    """
    check_transformation("apply_if_finite: inner", inner)
    if not isinstance(max_consecutive_errors, int) or max_consecutive_errors < 0:
        raise ValueError(f"apply_if_finite: max_consecutive_errors must be an int >= 0, got {max_consecutive_errors!r}")

    def init(params):
        false = jnp.zeros((), jnp.bool_)
        return ApplyIfFiniteState(zero_count(), ~false, zero_count(), inner.init(params))

    def update(updates, state, params=None):
        finite = jnp.all(jnp.stack([jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(updates)] or [jnp.asarray(True)]))
        count = jnp.where(finite, 0, safe_increment(state.notfinite_count)).astype(jnp.int32)
        out, inner_state = jax.lax.cond(
            finite | (count > max_consecutive_errors),
            lambda: inner.update(updates, state.inner_state, params),
            lambda: (zeros_like_output(inner, updates, state.inner_state, params), state.inner_state),
        )
        total = jnp.where(finite, state.total_notfinite, safe_increment(state.total_notfinite))
        return out, ApplyIfFiniteState(count, finite, total.astype(jnp.int32), inner_state)

    return GradientTransformation(init, update)
