"""The loss landscape: convexity, critical points, line search (constraints: `constrained.py`).

Every derivative here comes from fungpt's own autodiff (`fungpt.grad`, `fungpt.hessian`). Functions
take ``f: R^n -> R`` on a 1-D array ``x`` (n,), are pure, and work under `jax.jit`.
"""
from typing import NamedTuple

import jax
import jax.numpy as jnp

import fungpt
from fungpt import calculus

# Re-exported: critical points are owned by chapter 3 (one Newton solver, one classification).
from fungpt.calculus import DEGENERATE as DEGENERATE
from fungpt.calculus import MAXIMUM as MAXIMUM
from fungpt.calculus import MINIMUM as MINIMUM
from fungpt.calculus import SADDLE as SADDLE

# --- convexity ---------------------------------------------------------------------------------


class ConvexityReport(NamedTuple):
    midpoint_gap: jax.Array  # max over pairs of f((x+y)/2) - (f(x)+f(y))/2; > 0 disproves convexity
    min_hessian_eig: jax.Array  # min over samples of λ_min(∇²f(x)); < 0 disproves convexity
    value_scale: jax.Array  # max |f| over the points evaluated: the scale of the gap's rounding error
    curvature_scale: jax.Array  # max over samples of max |λ(∇²f(x))|: the scale of λ_min's rounding error


def convexity(f, key, dim: int, n: int = 64, radius: float = 2.0, dtype=None) -> ConvexityReport:
    """Sample-based convexity evidence for ``f: R^dim -> R`` on the box ``[-radius, radius]^dim``.

    Convex ⇔ ``f((x+y)/2) <= (f(x)+f(y))/2`` for all x, y (for continuous f) ⇔ ``∇²f ⪰ 0`` (for C²
    f). Both are checked on `n` random pairs/points in `dtype` (default: JAX's float). Samples can
    disprove convexity, never prove it; `is_convex` weighs the evidence against rounding.
    """
    if dim < 1 or n < 1:
        raise ValueError(f"convexity: need dim >= 1 and n >= 1, got dim={dim}, n={n}")
    kx, ky = jax.random.split(key)
    dt = jnp.result_type(float) if dtype is None else jnp.dtype(dtype)
    x = jax.random.uniform(kx, (n, dim), dt, -radius, radius)
    y = jax.random.uniform(ky, (n, dim), dt, -radius, radius)
    fv = jax.vmap(f)
    fx, fy, fm = fv(x), fv(y), fv(0.5 * (x + y))
    gap = jnp.max(fm - 0.5 * (fx + fy))
    eigs = jax.vmap(lambda p: jnp.linalg.eigvalsh(fungpt.hessian(f)(p)))(x)  # (n, dim), ascending
    scale = jnp.max(jnp.abs(jnp.stack([fx, fy, fm])))
    return ConvexityReport(gap, jnp.min(eigs[:, 0]), scale, jnp.max(jnp.abs(eigs[:, jnp.array([0, -1])])))


def is_convex(report: ConvexityReport, rtol: float | None = None) -> jax.Array:
    """True when no sample disproved convexity beyond rounding:
    ``gap <= rtol · value_scale`` and ``λ_min >= -rtol · curvature_scale``.

    Both tolerances are relative (a function scaled by 1e-9 is judged like the original) and `rtol`
    defaults to ``1024·eps`` of the report's dtype (1.2e-4 in float32, 2.3e-13 in float64): violations
    smaller than that fraction of f's (or its Hessian's) magnitude are indistinguishable from rounding.
    """
    dt = jnp.result_type(report.midpoint_gap)
    tol = 1024 * jnp.finfo(dt).eps if rtol is None else rtol
    return (report.midpoint_gap <= tol * report.value_scale) & (report.min_hessian_eig >= -tol * report.curvature_scale)


# --- critical points ---------------------------------------------------------------------------

CRITICAL_KINDS = ("minimum", "maximum", "saddle", "degenerate")


newton = calculus.newton_path  # Newton on ∇f = 0, the path (steps + 1, n)


def classify_critical_point(f, x: jax.Array, tol: float | None = None) -> jax.Array:
    """Kind of the critical point x: `fungpt.calculus.classify_critical_point`'s kind alone, an int
    MINIMUM (0), MAXIMUM (1), SADDLE (2) or DEGENERATE (3); names in CRITICAL_KINDS."""
    return calculus.classify_critical_point(f, x, tol=tol)[0]


# --- line search and gradient descent ----------------------------------------------------------


def armijo(f, x, g, direction=None, t0: float = 1.0, beta: float = 0.5, c: float = 1e-4, max_iter: int = 50):
    """Backtracking line search: the first ``t = t0·β^k`` with ``f(x + t d) <= f(x) + c·t·(g·d)``.

    `g` is ∇f(x); `direction` d defaults to ``-g``. Returns t (after `max_iter` halvings, the last t).
    """
    if not (0 < beta < 1 and 0 < c < 1):
        raise ValueError(f"armijo: need 0 < beta < 1 and 0 < c < 1, got beta={beta}, c={c}")
    d = -g if direction is None else direction
    fx, slope = f(x), jnp.vdot(g, d)

    def too_long(state):
        t, k = state
        return (f(x + t * d) > fx + c * t * slope) & (k < max_iter)

    t, _ = jax.lax.while_loop(too_long, lambda s: (s[0] * beta, s[1] + 1), (jnp.asarray(t0, x.dtype), 0))
    return t


def gradient_descent(f, x0: jax.Array, steps: int, learning_rate: float | None = None):
    """Plain gradient descent ``x ← x - t ∇f(x)``; t from Armijo backtracking when `learning_rate` is None.

    Returns ``(x_final, losses)`` with losses (steps,) = f at each iterate before its step.
    """
    vg = fungpt.value_and_grad(f)

    def step(x, _):
        fx, g = vg(x)
        t = armijo(f, x, g) if learning_rate is None else jnp.asarray(learning_rate, x.dtype)
        return x - t * g, fx

    return jax.lax.scan(step, x0, None, length=steps)
