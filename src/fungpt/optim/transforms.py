"""The small transformations that named optimizers are chains of.

Notation: g = incoming update (the gradient at the start of a chain), t = 1, 2, ... the step,
p = params. Statistics are kept in at least float32 (bf16 params get f32 moments); updates leave a
statistics-based transform in the statistics' dtype, and `apply_updates` casts back per parameter.
"""
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from fungpt.optim.base import (
    EmptyState,
    GradientTransformation,
    acc_dtype,
    cast,
    resolve_mask,
    safe_increment,
    wider_dtype,
    zero_count,
)

PyTree = Any


def _zeros_like_acc(params):
    return jax.tree.map(lambda p: jnp.zeros(p.shape, acc_dtype(p.dtype)), params)


def _need_params(name, params):
    if params is None:
        raise ValueError(f"{name} needs the current params: call update(updates, state, params)")


# --- scaling ----------------------------------------------------------------------------------

def scale(step_size) -> GradientTransformation:
    """``u = step_size · g`` (step_size a number or a scalar array)."""

    def init(params):
        del params
        return EmptyState()

    def update(updates, state, params=None):
        del params
        return jax.tree.map(lambda g: g * cast(step_size, g.dtype), updates), state

    return GradientTransformation(init, update)


class ScaleByScheduleState(NamedTuple):
    count: jax.Array  # int32, number of updates so far


def scale_by_schedule(schedule: Callable) -> GradientTransformation:
    """``u_t = schedule(t - 1) · g_t``: the schedule sees the 0-based step count."""

    def init(params):
        del params
        return ScaleByScheduleState(zero_count())

    def update(updates, state, params=None):
        del params
        s = schedule(state.count)
        return jax.tree.map(lambda g: g * cast(s, g.dtype), updates), ScaleByScheduleState(
            safe_increment(state.count)
        )

    return GradientTransformation(init, update)


def scale_by_learning_rate(learning_rate) -> GradientTransformation:
    """``u = -lr · g`` (descent); `learning_rate` is a number, scalar array or schedule ``step -> lr``."""
    if callable(learning_rate):
        return scale_by_schedule(lambda step: -learning_rate(step))
    return scale(-learning_rate if isinstance(learning_rate, int | float) else -jnp.asarray(learning_rate))


# --- momentum ---------------------------------------------------------------------------------

class TraceState(NamedTuple):
    trace: PyTree


def trace(decay: float, nesterov: bool = False) -> GradientTransformation:
    """Heavy-ball momentum: ``b_t = μ b_{t-1} + g_t``; ``u_t = b_t``, or ``g_t + μ b_t`` if `nesterov`.

    With a final ``-lr`` scale this is PyTorch's SGD; the Nesterov form equals Nesterov's
    look-ahead method (``v ← μv - lr ∇f(θ + μv)``) reparametrised at the look-ahead point.
    """

    def init(params):
        return TraceState(_zeros_like_acc(params))

    def update(updates, state, params=None):
        del params
        mu = lambda b: cast(decay, b.dtype)
        new = jax.tree.map(lambda g, b: mu(b) * b + g.astype(b.dtype), updates, state.trace)
        if nesterov:
            out = jax.tree.map(lambda g, b: g.astype(b.dtype) + mu(b) * b, updates, new)
        else:
            out = new
        return out, TraceState(new)

    return GradientTransformation(init, update)


# --- adaptive scalings ------------------------------------------------------------------------

class ScaleByRssState(NamedTuple):
    sum_of_squares: PyTree


def scale_by_rss(eps: float = 1e-10, initial_accumulator_value: float = 0.0) -> GradientTransformation:
    """Adagrad (Duchi et al. 2011): ``G_t = G_{t-1} + g_t²``; ``u_t = g_t / (sqrt(G_t) + ε)``."""

    def init(params):
        return ScaleByRssState(
            jax.tree.map(lambda p: jnp.full(p.shape, initial_accumulator_value, acc_dtype(p.dtype)), params)
        )

    def update(updates, state, params=None):
        del params
        acc = jax.tree.map(lambda g, s: s + jnp.square(g.astype(s.dtype)), updates, state.sum_of_squares)
        out = jax.tree.map(lambda g, s: g.astype(s.dtype) / (jnp.sqrt(s) + cast(eps, s.dtype)), updates, acc)
        return out, ScaleByRssState(acc)

    return GradientTransformation(init, update)


class ScaleByRmsState(NamedTuple):
    nu: PyTree  # running mean of g²
    mu: PyTree  # running mean of g (centered only; else an empty tuple)


def scale_by_rms(decay: float = 0.9, eps: float = 1e-8, centered: bool = False) -> GradientTransformation:
    """RMSProp (Tieleman & Hinton 2012): ``v_t = ρ v_{t-1} + (1-ρ) g_t²``; ``u_t = g_t / (sqrt(v_t) + ε)``.

    Centered (Graves 2013): also ``m_t = ρ m_{t-1} + (1-ρ) g_t`` and divide by ``sqrt(v_t - m_t²) + ε``.
    """

    def init(params):
        return ScaleByRmsState(_zeros_like_acc(params), _zeros_like_acc(params) if centered else ())

    def update(updates, state, params=None):
        del params
        ema = lambda x, s: cast(decay, s.dtype) * s + cast(1.0 - decay, s.dtype) * x
        nu = jax.tree.map(lambda g, v: ema(jnp.square(g.astype(v.dtype)), v), updates, state.nu)
        if centered:
            mu = jax.tree.map(lambda g, m: ema(g.astype(m.dtype), m), updates, state.mu)
            var = jax.tree.map(lambda v, m: v - jnp.square(m), nu, mu)
        else:
            mu, var = (), nu
        # max(., 0): v - m² can round below zero in the centered form.
        out = jax.tree.map(
            lambda g, v: g.astype(v.dtype) / (jnp.sqrt(jnp.maximum(v, 0)) + cast(eps, v.dtype)), updates, var
        )
        return out, ScaleByRmsState(nu, mu)

    return GradientTransformation(init, update)


class ScaleByAdamState(NamedTuple):
    count: jax.Array  # int32
    mu: PyTree
    nu: PyTree


def scale_by_adam(b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8) -> GradientTransformation:
    """Adam (Kingma & Ba 2015): ``m_t = β1 m + (1-β1) g``, ``v_t = β2 v + (1-β2) g²``,
    ``u_t = m̂_t / (sqrt(v̂_t) + ε)`` with ``m̂_t = m_t/(1-β1^t)``, ``v̂_t = v_t/(1-β2^t)``.
    """

    def init(params):
        return ScaleByAdamState(zero_count(), _zeros_like_acc(params), _zeros_like_acc(params))

    def update(updates, state, params=None):
        del params
        count = safe_increment(state.count)
        c = lambda x, a: cast(x, a.dtype)
        mu = jax.tree.map(lambda g, m: c(b1, m) * m + c(1.0 - b1, m) * g.astype(m.dtype), updates, state.mu)
        nu = jax.tree.map(
            lambda g, v: c(b2, v) * v + c(1.0 - b2, v) * jnp.square(g.astype(v.dtype)), updates, state.nu
        )

        def leaf(m, v):
            # Bias corrections are scalars: XLA computes them once and fuses the rest per element.
            t = count.astype(m.dtype)
            m_hat = m / (1 - c(b1, m) ** t)
            v_hat = v / (1 - c(b2, v) ** t)
            return m_hat / (jnp.sqrt(v_hat) + c(eps, v))

        u = jax.tree.map(leaf, mu, nu)
        return u, ScaleByAdamState(count, mu, nu)

    return GradientTransformation(init, update)


class ScaleByLionState(NamedTuple):
    mu: PyTree


def scale_by_lion(b1: float = 0.9, b2: float = 0.99) -> GradientTransformation:
    """Lion (Chen et al. 2023): ``u_t = sign(β1 m_{t-1} + (1-β1) g_t)``; ``m_t = β2 m_{t-1} + (1-β2) g_t``."""

    def init(params):
        return ScaleByLionState(_zeros_like_acc(params))

    def update(updates, state, params=None):
        del params
        mix = lambda b, x, m: cast(b, m.dtype) * m + cast(1.0 - b, m.dtype) * x.astype(m.dtype)
        out = jax.tree.map(lambda g, m: jnp.sign(mix(b1, g, m)), updates, state.mu)
        mu = jax.tree.map(lambda g, m: mix(b2, g, m), updates, state.mu)
        return out, ScaleByLionState(mu)

    return GradientTransformation(init, update)


class EmaState(NamedTuple):
    count: jax.Array  # int32
    ema: PyTree


def ema(decay: float, debias: bool = True, accumulator_dtype=None) -> GradientTransformation:
    """optax's `ema`: ``e_t = δ e_{t-1} + (1-δ) g_t`` (e_0 = 0); ``u_t = e_t / (1 - δ^t)`` if `debias`, else e_t.

    The state keeps the un-debiased e_t, in `accumulator_dtype` (default: at least float32).
    """
    _check_unit("ema: decay", decay)

    def init(params):
        dt = (lambda p: accumulator_dtype) if accumulator_dtype is not None else (lambda p: acc_dtype(p.dtype))
        return EmaState(zero_count(), jax.tree.map(lambda p: jnp.zeros(p.shape, dt(p)), params))

    def update(updates, state, params=None):
        del params
        count = safe_increment(state.count)
        d = lambda e: cast(decay, e.dtype)
        new = jax.tree.map(lambda g, e: d(e) * e + (1 - d(e)) * g.astype(e.dtype), updates, state.ema)
        out = new
        if debias:
            out = jax.tree.map(lambda e: e / (1 - d(e) ** count.astype(e.dtype)), new)
        return out, EmaState(count, new)

    return GradientTransformation(init, update)


def _check_unit(name, value):
    if isinstance(value, int | float) and not 0 <= value < 1:
        raise ValueError(f"{name} must be in [0, 1), got {value}")


# --- weight decay -----------------------------------------------------------------------------

def ndim_mask(params: PyTree, min_ndim: int = 2, stacked: tuple[str, ...] = ()) -> PyTree:
    """nanoGPT's weight-decay rule: ``True`` for leaves whose per-layer rank is ``>= min_ndim`` (matrices
    and embeddings), ``False`` for biases and layer-norm gains.

    Leaves under a dict key in `stacked` carry one leading layer axis (layers stacked for `lax.scan`, as
    ``"h"`` in `fungpt.gpt`), which does not count: there a layer norm's (L, C) gain is per-layer 1-D.
    ``ndim_mask(params, stacked=("h",))`` is the GPT's mask; plain ``ndim_mask`` suits unstacked models.
    """

    def keep(path, p):
        layer_axes = sum(1 for k in path if getattr(k, "key", None) in stacked)
        return p.ndim - layer_axes >= min_ndim

    return jax.tree_util.tree_map_with_path(keep, params)


def add_decayed_weights(weight_decay: float = 0.0, mask=None) -> GradientTransformation:
    """Decoupled weight decay (Loshchilov & Hutter 2019): ``u = g + λ p`` where the mask is True.

    `mask` is None (decay every leaf), a pytree of Python bools shaped like params, or a function
    ``params -> such a pytree`` (e.g. `ndim_mask`, or ``partial(ndim_mask, stacked=("h",))`` for the GPT).
    The mask is static, so masked-out leaves cost nothing.
    """

    def init(params):
        del params
        return EmptyState()

    def update(updates, state, params=None):
        _need_params("add_decayed_weights", params)
        m = resolve_mask("add_decayed_weights", mask, params)
        if m is None:
            m = jax.tree.map(lambda _: True, params)

        def leaf(u, p, keep):
            if not keep:
                return u
            dt = wider_dtype(u.dtype, p.dtype)
            return u.astype(dt) + cast(weight_decay, dt) * p.astype(dt)

        return jax.tree.map(leaf, updates, params, m), state

    return GradientTransformation(init, update)
