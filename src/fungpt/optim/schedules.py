"""Learning-rate schedules: pure functions ``step -> value`` (step an int or int32 array, 0-based).

Each returns a scalar in JAX's default float dtype (float32, or float64 with x64), works under
`jax.jit` and `jax.vmap` over steps, and can be passed wherever a learning rate is accepted.
A schedule that optax also has (`exponential_decay`, `cosine_decay` = optax's `cosine_decay_schedule`,
`linear` = `linear_schedule`) takes optax's arguments in optax's order with optax's meaning, so ported
code computes the same values; `warmup_cosine` (nanoGPT's `get_lr`) and `piecewise_constant` (values,
not optax's scales) have names optax does not use.
"""
import itertools
import math
from collections.abc import Callable, Sequence

import jax.numpy as jnp

Schedule = Callable


def _float(x):
    return jnp.asarray(x).astype(jnp.result_type(float))


def _check_steps(name, **steps):
    for k, v in steps.items():
        if not isinstance(v, int | jnp.integer) or isinstance(v, bool) or v <= 0:
            raise ValueError(f"{name}: {k} must be a positive int, got {v!r}")


def constant(value: float) -> Schedule:
    """``lr(t) = value``."""
    return lambda step: _float(value) + 0 * _float(step)


def linear(init_value: float, end_value: float, transition_steps: int, transition_begin: int = 0) -> Schedule:
    """``lr(t) = init + (end - init) · clip((t - begin) / transition_steps, 0, 1)`` (optax's `linear_schedule`)."""
    _check_steps("linear", transition_steps=transition_steps)

    def schedule(step):
        frac = jnp.clip((_float(step) - transition_begin) / transition_steps, 0.0, 1.0)
        return _float(init_value) + (_float(end_value) - _float(init_value)) * frac

    return schedule


def exponential_decay(
    init_value: float,
    transition_steps: int,
    decay_rate: float,
    transition_begin: int = 0,
    staircase: bool = False,
    end_value: float | None = None,
) -> Schedule:
    """optax's `exponential_decay`, same arguments in the same order:
    ``lr(t) = init · decay_rate^((t - begin) / transition_steps)`` for ``t > begin``, ``init`` before;
    the exponent is floored when `staircase`; `end_value` bounds the decay (below if decay_rate < 1).
    """
    _check_steps("exponential_decay", transition_steps=transition_steps)
    if not decay_rate > 0:
        raise ValueError(f"exponential_decay: decay_rate must be > 0, got {decay_rate}")
    if transition_begin < 0:
        raise ValueError(f"exponential_decay: transition_begin must be >= 0, got {transition_begin}")

    def schedule(step):
        t = _float(step) - transition_begin
        p = t / transition_steps
        p = jnp.floor(p) if staircase else p
        value = jnp.where(t <= 0, _float(init_value), _float(init_value) * _float(decay_rate) ** p)
        if end_value is None:
            return value
        bound = jnp.maximum if decay_rate < 1 else jnp.minimum
        return bound(value, _float(end_value))

    return schedule


def piecewise_constant(boundaries: Sequence[int], values: Sequence[float]) -> Schedule:
    """Step decay: ``lr(t) = values[i]`` with ``i = #{b in boundaries : t >= b}``.

    `boundaries` increasing, ``len(values) == len(boundaries) + 1``.
    """
    if len(values) != len(boundaries) + 1:
        raise ValueError(
            "piecewise_constant: need len(values) == len(boundaries) + 1, "
            f"got {len(values)} and {len(boundaries)}"
        )
    if any(b1 >= b2 for b1, b2 in itertools.pairwise(boundaries)):
        raise ValueError(f"piecewise_constant: boundaries must increase strictly, got {list(boundaries)}")
    b = jnp.asarray(boundaries, jnp.int32)
    v = jnp.asarray(values, jnp.result_type(float))

    def schedule(step):
        i = jnp.sum(jnp.asarray(step).astype(jnp.int32) >= b)
        return v[i]

    return schedule


def cosine_decay(init_value: float, decay_steps: int, alpha: float = 0.0, exponent: float = 1.0) -> Schedule:
    """optax's `cosine_decay_schedule`, same arguments: with ``c(t) = ½(1 + cos(π · min(t, T) / T))``,
    ``lr(t) = init · ((1 - alpha) · c(t)^exponent + alpha)``; `alpha` is a FRACTION: it ends at ``init · alpha``.
    """
    _check_steps("cosine_decay", decay_steps=decay_steps)

    def schedule(step):
        frac = jnp.minimum(_float(step), decay_steps) / decay_steps
        c = 0.5 * (1.0 + jnp.cos(math.pi * frac))
        return _float(init_value) * ((1.0 - _float(alpha)) * c ** _float(exponent) + _float(alpha))

    return schedule


def warmup_cosine(peak: float, warmup_steps: int, decay_steps: int, end: float = 0.0) -> Schedule:
    """nanoGPT's schedule: linear warmup, then cosine decay to `end` at step `decay_steps`, then `end`.

    ``lr(t) = peak · (t+1)/(W+1)`` for ``t < W``;
    ``end + ½(1 + cos(π (t-W)/(D-W))) (peak - end)`` for ``W <= t <= D``; ``end`` after.
    (W = warmup_steps, D = decay_steps counted from step 0, as nanoGPT's ``lr_decay_iters``.)
    """
    if not isinstance(warmup_steps, int) or warmup_steps < 0:
        raise ValueError(f"warmup_cosine: warmup_steps must be an int >= 0, got {warmup_steps!r}")
    if not isinstance(decay_steps, int) or decay_steps <= warmup_steps:
        raise ValueError(
            f"warmup_cosine: decay_steps must be an int > warmup_steps={warmup_steps}, got {decay_steps!r}"
        )

    def schedule(step):
        t = _float(step)
        warm = _float(peak) * (t + 1.0) / (warmup_steps + 1.0)
        frac = jnp.clip((t - warmup_steps) / (decay_steps - warmup_steps), 0.0, 1.0)
        cos = _float(end) + 0.5 * (1.0 + jnp.cos(math.pi * frac)) * (_float(peak) - _float(end))
        return jnp.where(t < warmup_steps, warm, cos)

    return schedule


def inverse_sqrt(peak: float, warmup_steps: int) -> Schedule:
    """Transformer ("Noam") schedule: ``lr(t) = peak · min((t+1)/W, sqrt(W/(t+1)))``, peaking at t+1 = W."""
    _check_steps("inverse_sqrt", warmup_steps=warmup_steps)

    def schedule(step):
        s = _float(step) + 1.0
        return _float(peak) * jnp.minimum(s / warmup_steps, jnp.sqrt(warmup_steps / s))

    return schedule
