"""Learning-rate schedules: pure functions ``step -> value`` (step an int or int32 array, 0-based).

Each returns a scalar in JAX's default float dtype (float32, or float64 with x64), works under
`jax.jit` and `jax.vmap` over steps, and can be passed wherever a learning rate is accepted.
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


def linear(init: float, end: float, transition_steps: int, transition_begin: int = 0) -> Schedule:
    """``lr(t) = init + (end - init) · clip((t - begin) / transition_steps, 0, 1)``."""
    _check_steps("linear", transition_steps=transition_steps)

    def schedule(step):
        frac = jnp.clip((_float(step) - transition_begin) / transition_steps, 0.0, 1.0)
        return _float(init) + (_float(end) - _float(init)) * frac

    return schedule


def exponential(init: float, decay_rate: float, transition_steps: int, staircase: bool = False) -> Schedule:
    """``lr(t) = init · decay_rate^(t / transition_steps)`` (exponent floored when `staircase`)."""
    _check_steps("exponential", transition_steps=transition_steps)
    if decay_rate <= 0:
        raise ValueError(f"exponential: decay_rate must be > 0, got {decay_rate}")

    def schedule(step):
        p = _float(step) / transition_steps
        p = jnp.floor(p) if staircase else p
        return _float(init) * _float(decay_rate) ** p

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


def cosine_decay(init: float, decay_steps: int, end: float = 0.0) -> Schedule:
    """``lr(t) = end + (init - end) · ½(1 + cos(π · min(t, T) / T))`` with ``T = decay_steps``."""
    _check_steps("cosine_decay", decay_steps=decay_steps)

    def schedule(step):
        frac = jnp.minimum(_float(step), decay_steps) / decay_steps
        return _float(end) + (_float(init) - _float(end)) * 0.5 * (1.0 + jnp.cos(math.pi * frac))

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
