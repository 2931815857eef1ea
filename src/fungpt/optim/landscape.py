"""The loss landscape: convexity, critical points, Lagrange multipliers, line search.

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


def convexity(f, key, dim: int, n: int = 64, radius: float = 2.0) -> ConvexityReport:
    """Sample-based convexity evidence for ``f: R^dim -> R`` on the box ``[-radius, radius]^dim``.

    Convex ⇔ ``f((x+y)/2) <= (f(x)+f(y))/2`` for all x, y (for continuous f) ⇔ ``∇²f ⪰ 0`` (for C²
    f). Both are checked on `n` random pairs/points. Samples can disprove convexity, never prove it.
    """
    if dim < 1 or n < 1:
        raise ValueError(f"convexity: need dim >= 1 and n >= 1, got dim={dim}, n={n}")
    kx, ky = jax.random.split(key)
    dt = jnp.result_type(float)
    x = jax.random.uniform(kx, (n, dim), dt, -radius, radius)
    y = jax.random.uniform(ky, (n, dim), dt, -radius, radius)
    fv = jax.vmap(f)
    gap = jnp.max(fv(0.5 * (x + y)) - 0.5 * (fv(x) + fv(y)))
    eig = jnp.min(jax.vmap(lambda p: jnp.linalg.eigvalsh(fungpt.hessian(f)(p))[0])(x))
    return ConvexityReport(gap, eig)


def is_convex(report: ConvexityReport, tol: float = 1e-8) -> jax.Array:
    """True when no sample disproved convexity (both tests within `tol`)."""
    return (report.midpoint_gap <= tol) & (report.min_hessian_eig >= -tol)


# --- critical points ---------------------------------------------------------------------------

CRITICAL_KINDS = ("minimum", "maximum", "saddle", "degenerate")


newton = calculus.newton_path  # Newton on ∇f = 0, the path (steps + 1, n)


def classify_critical_point(f, x: jax.Array, tol: float | None = None) -> jax.Array:
    """Kind of the critical point x: `fungpt.calculus.classify_critical_point`'s kind alone, an int
    MINIMUM (0), MAXIMUM (1), SADDLE (2) or DEGENERATE (3); names in CRITICAL_KINDS."""
    return calculus.classify_critical_point(f, x, tol=tol)[0]


# --- Lagrange multipliers ----------------------------------------------------------------------


def lagrange_newton(f, h, x0: jax.Array, lam0: jax.Array | None = None, steps: int = 30):
    """Stationary points of f subject to ``h(x) = 0`` (h: R^n -> R^m) by Newton on the KKT system.

    With ``L(x, λ) = f(x) + λ·h(x)``, solve ``∇L = [∇f + J_hᵀλ; h] = 0``; the Newton matrix is the
    KKT matrix ``∇²L = [[∇²_x L, J_hᵀ], [J_h, 0]]``, both from our autodiff on z = (x, λ).
    Returns ``(x, λ)``. Maxima and minima alike (it solves stationarity); O((n+m)³) per step.
    """
    n = x0.shape[0]
    m = jnp.atleast_1d(h(x0)).shape[0]
    lam0 = jnp.zeros(m, x0.dtype) if lam0 is None else lam0.astype(x0.dtype)
    if lam0.shape != (m,):
        raise ValueError(f"lagrange_newton: h returns {m} constraints, so lam0 must have shape ({m},)")

    def lagrangian(z):
        return f(z[:n]) + z[n:] @ jnp.atleast_1d(h(z[:n]))

    g, H = fungpt.grad(lagrangian), fungpt.hessian(lagrangian)
    z = jax.lax.fori_loop(0, steps, lambda _, z: z - jnp.linalg.solve(H(z), g(z)), jnp.concatenate([x0, lam0]))
    return z[:n], z[n:]


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
