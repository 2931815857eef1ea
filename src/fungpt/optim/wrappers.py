"""Wrappers around whole optimizers: hyperparameters held in the state, gradient accumulation."""
import functools
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from fungpt.optim.base import GradientTransformation, acc_dtype, safe_increment, zero_count

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
            # Zeros shaped like inner's output: trace inner once abstractly to learn its dtypes.
            shapes = jax.eval_shape(lambda: inner.update(updates, state.inner_state, params)[0])
            zeros = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), shapes)
            return zeros, AccumulateState(state.mini_step + 1, acc, state.inner_state)

        return jax.lax.cond(state.mini_step == every_k - 1, emit, hold, None)

    return GradientTransformation(init, update)
