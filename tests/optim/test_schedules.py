"""fungpt.optim.schedules against closed forms: optax's documented formulas for the schedules that share
optax's names and arguments, nanoGPT's get_lr verbatim; and the first update of every optimizer uses
schedule(0)."""
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fungpt import optim
from tests.helpers import ALG, EXACT, close
from tests.optim._refs import ref_adamw

F64 = np.dtype(np.float64)


def nanogpt_get_lr(it, learning_rate, warmup_iters, lr_decay_iters, min_lr):
    # Verbatim from nanoGPT's train.py.
    if it < warmup_iters:
        return learning_rate * (it + 1) / (warmup_iters + 1)
    if it > lr_decay_iters:
        return min_lr
    decay_ratio = (it - warmup_iters) / (lr_decay_iters - warmup_iters)
    assert 0 <= decay_ratio <= 1
    coeff = 0.5 * (1.0 + math.cos(math.pi * decay_ratio))
    return min_lr + coeff * (learning_rate - min_lr)


def optax_cosine(init_value, decay_steps, alpha=0.0, exponent=1.0):
    # optax.cosine_decay_schedule's documented formula: α·I + (1-α)·I·[½(1 + cos(π t/T))]^p, t clipped at T.
    def f(t):
        c = 0.5 * (1 + math.cos(math.pi * min(t, decay_steps) / decay_steps))
        return alpha * init_value + (1 - alpha) * init_value * c**exponent
    return f


def optax_exponential(init_value, transition_steps, decay_rate, transition_begin=0, staircase=False, end_value=None):
    # optax.exponential_decay's documented formula: init·rate^((t - begin)/T) once t > begin, init before;
    # integer division when staircase; end_value a lower bound when rate < 1, an upper bound otherwise.
    def f(t):
        if t <= transition_begin:
            v = init_value
        else:
            k = t - transition_begin
            v = init_value * decay_rate ** ((k // transition_steps) if staircase else k / transition_steps)
        if end_value is not None:
            v = max(v, end_value) if decay_rate < 1 else min(v, end_value)
        return v
    return f


SCHEDULES = {
    "constant": (optim.constant(0.3), lambda t: 0.3),
    "linear": (optim.linear(1.0, 0.1, 50, 10), lambda t: 1.0 + (0.1 - 1.0) * min(max((t - 10) / 50, 0), 1)),
    "exponential": (optim.exponential_decay(0.5, 7, 0.9), optax_exponential(0.5, 7, 0.9)),
    "exponential_begin_staircase": (optim.exponential_decay(0.5, 7, 0.9, 12, True),
                                    optax_exponential(0.5, 7, 0.9, 12, True)),
    "exponential_end_value": (optim.exponential_decay(0.5, 7, 0.8, end_value=0.1),
                              optax_exponential(0.5, 7, 0.8, end_value=0.1)),
    "exponential_growth_capped": (optim.exponential_decay(0.1, 10, 1.5, end_value=0.6),
                                  optax_exponential(0.1, 10, 1.5, end_value=0.6)),
    "piecewise": (
        optim.piecewise_constant([20, 60], [1.0, 0.1, 0.01]),
        lambda t: 1.0 if t < 20 else 0.1 if t < 60 else 0.01,
    ),
    "cosine": (optim.cosine_decay(2.0, 80, 0.1), optax_cosine(2.0, 80, 0.1)),
    "cosine_exponent": (optim.cosine_decay(2.0, 80, 0.25, exponent=2.0), optax_cosine(2.0, 80, 0.25, 2.0)),
    "warmup_cosine": (optim.warmup_cosine(1e-3, 10, 90, 1e-4), lambda t: nanogpt_get_lr(t, 1e-3, 10, 90, 1e-4)),
    "inverse_sqrt": (optim.inverse_sqrt(1.0, 16), lambda t: min((t + 1) / 16, math.sqrt(16 / (t + 1)))),
}


@pytest.mark.parametrize("name", sorted(SCHEDULES))
def test_schedule_matches_closed_form_eager_jit_and_vmap(name):
    sched, ref = SCHEDULES[name]
    steps = np.arange(120)
    want = np.array([ref(int(t)) for t in steps])
    close(jax.jit(jax.vmap(sched))(jnp.asarray(steps, jnp.int32)), want, rtol=EXACT[F64], atol=1e-15)
    for t in (0, 9, 10, 37, 90, 119):
        close(float(sched(t)), want[t], rtol=EXACT[F64])


def test_optax_named_calls_end_where_optax_ends():
    # The reproducer: cosine_decay(1e-2, 1000, 0.1) ends at 1e-3 (alpha is a fraction), and
    # exponential_decay takes (init, transition_steps, rate): 1.0 halves every 10 steps.
    close(float(optim.cosine_decay(1e-2, 1000, 0.1)(1000)), 1e-3, rtol=EXACT[F64])
    close(float(optim.cosine_decay(1e-2, 1000, 0.1)(5000)), 1e-3, rtol=EXACT[F64])
    close(float(optim.exponential_decay(1.0, 10, 0.5)(20)), 0.25, rtol=EXACT[F64])


def test_schedules_agree_with_optax_when_installed():
    optax = pytest.importorskip("optax")
    t = jnp.arange(120, dtype=jnp.int32)
    pairs = [(optim.cosine_decay(2.0, 80, 0.1, 2.0), optax.cosine_decay_schedule(2.0, 80, 0.1, 2.0)),
             (optim.exponential_decay(0.5, 7, 0.9, 12, True, 0.2), optax.exponential_decay(0.5, 7, 0.9, 12, True, 0.2)),
             (optim.linear(1.0, 0.1, 50, 10), optax.linear_schedule(1.0, 0.1, 50, 10))]
    with jax.numpy_dtype_promotion("standard"):
        for ours, theirs in pairs:
            close(jax.vmap(ours)(t), jax.vmap(theirs)(t), rtol=1e-6)


@pytest.mark.parametrize("bad", [
    lambda: optim.warmup_cosine(1e-3, 100, 50),
    lambda: optim.piecewise_constant([10, 5], [1.0, 0.5, 0.1]),
    lambda: optim.cosine_decay(1.0, 0),
    lambda: optim.exponential_decay(1.0, 10, 0.0),
    lambda: optim.exponential_decay(1.0, 10, 0.5, transition_begin=-1),
])
def test_bad_schedules_raise(bad):
    with pytest.raises(ValueError):
        bad()


# --- the first update sees schedule(0) -----------------------------------------------------------

LR = optim.piecewise_constant([1, 2], [0.5, 2.0, 8.0])  # a different value at each of the first steps


@pytest.mark.parametrize("name", ["sgd", "adam", "adamw", "lion", "rmsprop", "injected_sgd"])
def test_first_update_uses_schedule_at_step_zero(name):
    # An off-by-one between the step count and the schedule passes every constant-lr test; here the k-th
    # update must be -LR(k-1)·direction, with the direction from the paper's equations at lr = 1.
    make = {"sgd": lambda: optim.sgd(LR), "adam": lambda: optim.adam(LR),
            "adamw": lambda: optim.adamw(LR, weight_decay=0.0), "lion": lambda: optim.lion(LR),
            "rmsprop": lambda: optim.rmsprop(LR),
            "injected_sgd": lambda: optim.inject_hyperparams(optim.sgd)(learning_rate=LR)}[name]
    rng = np.random.default_rng(3)
    p0, gs = rng.standard_normal(4), [rng.standard_normal(4) for _ in range(3)]
    opt = make()
    s = opt.init(jnp.asarray(p0))
    unit = {"adam": ref_adamw(p0, gs, lr=1.0), "adamw": ref_adamw(p0, gs, lr=1.0)}.get(name)
    for k, g in enumerate(gs):
        u, s = opt.update(jnp.asarray(g), s, jnp.asarray(p0))
        if unit is not None:
            direction = unit[k]
        elif name == "lion":
            direction = -np.sign(0.1 * g + 0.9 * 0.01 * sum(0.99 ** (k - 1 - j) * gs[j] for j in range(k)))
        elif name == "rmsprop":
            v = sum(0.9 ** (k - j) * 0.1 * gs[j] ** 2 for j in range(k + 1))
            direction = -g / (np.sqrt(v) + 1e-8)
        else:
            direction = -g
        close(u, float(LR(k)) * direction, rtol=ALG[F64], atol=1e-12)
