"""Constrained optimization: Lagrange multipliers for equality constraints, and the augmented Lagrangian
method for equality and inequality constraints, with KKT residuals and a convergence status.

Convention: ``min f(x)`` subject to ``h(x) = 0`` (h: R^n -> R^m) and ``g(x) <= 0`` (g: R^n -> R^p), with the
Lagrangian ``L = f + λ·h + μ·g``, ``μ >= 0``. The multipliers are sensitivities: relaxing ``g_i(x) <= 0`` to
``g_i(x) <= ε`` changes the optimal value by ``-μ_i ε`` to first order (and ``h_j = ε``: by ``-λ_j ε``).
Every derivative comes from fungpt's own autodiff.
"""
from typing import NamedTuple

import jax
import jax.numpy as jnp

import fungpt
from fungpt.optim.landscape import armijo


def _lstsq(a, b):
    # Minimum-norm least squares: a singular KKT matrix (a linear objective at λ = 0, a degenerate
    # constraint) gives the smallest step that reduces the residual instead of inf/NaN.
    return jnp.linalg.lstsq(a, b)[0]


def lagrange_newton(f, h, x0: jax.Array, lam0: jax.Array | None = None, steps: int = 30):
    """Stationary points of f subject to ``h(x) = 0`` (h: R^n -> R^m) by Newton on the KKT system.

    With ``L(x, λ) = f(x) + λ·h(x)``, solve ``∇L = [∇f + J_hᵀλ; h] = 0``; the Newton matrix is the
    KKT matrix ``∇²L = [[∇²_x L, J_hᵀ], [J_h, 0]]``, both from our autodiff on z = (x, λ); each step is the
    minimum-norm least-squares solution, so a singular KKT matrix does not produce NaN. `lam0` defaults
    to the least-squares multiplier ``argmin_λ ‖∇f(x0) + J_h(x0)ᵀλ‖``. Returns ``(x, λ)``.

    Newton solves stationarity, not minimality: from a start near a constrained maximum or saddle it
    converges there. Check the reduced Hessian (∇²_x L on the null space of J_h) to tell which; use
    `augmented_lagrangian` to minimize. O((n+m)³) per step.
    """
    n = x0.shape[0]
    m = jnp.atleast_1d(h(x0)).shape[0]
    if lam0 is None:
        J = fungpt.jacrev(lambda x: jnp.atleast_1d(h(x)))(x0)  # (m, n)
        lam0 = _lstsq(J.T, -fungpt.grad(f)(x0))
    lam0 = lam0.astype(x0.dtype)
    if lam0.shape != (m,):
        raise ValueError(f"lagrange_newton: h returns {m} constraints, so lam0 must have shape ({m},)")

    def lagrangian(z):
        return f(z[:n]) + z[n:] @ jnp.atleast_1d(h(z[:n]))

    g, H = fungpt.grad(lagrangian), fungpt.hessian(lagrangian)
    z = jax.lax.fori_loop(0, steps, lambda _, z: z - _lstsq(H(z), g(z)), jnp.concatenate([x0, lam0]))
    return z[:n], z[n:]


class ConstrainedResult(NamedTuple):
    x: jax.Array  # (n,) the solution
    eq_multipliers: jax.Array  # λ (m,)
    ineq_multipliers: jax.Array  # μ (p,), >= 0
    kkt: jax.Array  # (4,) max-abs residuals: stationarity ‖∇f + J_hᵀλ + J_gᵀμ‖, ‖h‖, ‖max(g, 0)‖, ‖μ∘g‖
    converged: jax.Array  # bool: every KKT residual <= tol
    iterations: jax.Array  # int32: outer (multiplier) iterations used


def _constraints(fn, x):
    return jnp.zeros((0,), x.dtype) if fn is None else jnp.atleast_1d(fn(x)).astype(x.dtype)


def kkt_residuals(f, x, lam, mu, eq=None, ineq=None) -> jax.Array:
    """``[‖∇_x L‖∞, ‖h‖∞, ‖max(g, 0)‖∞, ‖μ∘g‖∞]`` for ``L = f + λ·h + μ·g``; all zero at a KKT point
    (with μ >= 0)."""
    lag = lambda x: f(x) + lam @ _constraints(eq, x) + mu @ _constraints(ineq, x)
    h, g = _constraints(eq, x), _constraints(ineq, x)
    top = lambda v: jnp.max(jnp.abs(v), initial=0)
    return jnp.stack([top(fungpt.grad(lag)(x)), top(h), top(jnp.maximum(g, 0)), top(mu * g)])


def _minimize_newton(phi, x, tol, max_iter):
    """Damped Newton on a C¹, piecewise-C² function: the Hessian shifted to be positive definite, then an
    Armijo backtracking step; stops when ‖∇φ‖∞ <= tol."""
    grad, hess = fungpt.grad(phi), fungpt.hessian(phi)
    n = x.shape[0]

    def step(state):
        x, k = state
        g, H = grad(x), hess(x)
        lo = jnp.linalg.eigvalsh(H)[0]
        # Shift by just enough to make H safely positive definite (modified Newton: always a descent
        # direction); a positive definite H is left alone, so Newton keeps its quadratic convergence.
        floor = 100 * jnp.finfo(x.dtype).eps * (1 + jnp.max(jnp.abs(H)))
        shift = jnp.maximum(0, floor - lo)
        d = jnp.linalg.solve(H + shift * jnp.eye(n, dtype=x.dtype), -g)
        t = _step_length(phi, grad, x, g, d)
        return x + t * d, k + 1

    def going(state):
        x, k = state
        return (jnp.max(jnp.abs(grad(x))) > tol) & (k < max_iter)

    return jax.lax.while_loop(going, step, (x, jnp.zeros((), jnp.int32)))[0]


def _step_length(phi, grad, x, g, d):
    # Armijo backtracking on φ, except that a full Newton step that shrinks the gradient is always taken:
    # near the minimum the decrease in φ (~‖g‖²/‖H‖) is below φ's rounding and Armijo alone would stall.
    top = lambda v: jnp.max(jnp.abs(v))
    return jnp.where(top(grad(x + d)) < top(g), jnp.ones((), x.dtype), armijo(phi, x, g, d, max_iter=60))


def augmented_lagrangian(
    f, x0: jax.Array, eq=None, ineq=None, *, tol: float | None = None, penalty: float = 10.0,
    max_penalty: float = 1e4, max_outer: int = 60, max_inner: int = 50,
) -> ConstrainedResult:
    """``min f(x)`` s.t. ``eq(x) = 0`` and ``ineq(x) <= 0`` by the augmented Lagrangian method
    (Hestenes–Powell–Rockafellar). Each outer iteration minimizes, by damped Newton from x,

        φ(x) = f + λ·h + ρ/2 ‖h‖² + 1/(2ρ) Σ_i (max(0, μ_i + ρ g_i)² - μ_i²),

    then updates ``λ ← λ + ρ h(x)``, ``μ ← max(0, μ + ρ g(x))`` and multiplies ρ by 10 (up to
    `max_penalty`) when the constraint violation did not fall below a quarter of the previous one. The
    multipliers, not ρ → ∞, bring feasibility: a huge ρ would put rounding of size eps·ρ into ∇φ.
    Stops when every KKT residual (`kkt_residuals`) is <= `tol` (default ``sqrt(eps)``: 3.5e-4 in
    float32, 1.5e-8 in float64) or after `max_outer` iterations; ``converged`` says which. x0 (n,) need
    not be feasible. Local method: for non-convex f it finds a KKT point near the path from x0.
    """
    dt = x0.dtype
    tol = jnp.sqrt(jnp.finfo(dt).eps) if tol is None else tol
    h0, g0 = _constraints(eq, x0), _constraints(ineq, x0)

    def violation(x):
        top = lambda v: jnp.max(jnp.abs(v), initial=0)
        return jnp.maximum(top(_constraints(eq, x)), top(jnp.maximum(_constraints(ineq, x), 0)))

    def outer(state):
        x, lam, mu, rho, k, _, viol = state

        def phi(z):
            h, g = _constraints(eq, z), _constraints(ineq, z)
            return (f(z) + lam @ h + 0.5 * rho * (h @ h)
                    + (jnp.sum(jnp.square(jnp.maximum(0, mu + rho * g))) - mu @ mu) / (2 * rho))

        x = _minimize_newton(phi, x, 0.1 * tol, max_inner)
        lam = lam + rho * _constraints(eq, x)
        mu = jnp.maximum(0, mu + rho * _constraints(ineq, x))
        new_viol = violation(x)
        # A larger ρ only where feasibility stalls: ρ beyond need ill-conditions φ for the inner Newton.
        rho = jnp.where((new_viol > tol) & (new_viol > 0.25 * viol), jnp.minimum(10 * rho, max_penalty), rho)
        return x, lam, mu, rho, k + 1, kkt_residuals(f, x, lam, mu, eq, ineq), new_viol

    def going(state):
        return jnp.any(state[5] > tol) & (state[4] < max_outer)

    inf4 = jnp.full((4,), jnp.inf, dt)
    init = (x0, jnp.zeros_like(h0), jnp.zeros_like(g0), jnp.asarray(penalty, dt), jnp.zeros((), jnp.int32),
            inf4, jnp.asarray(jnp.inf, dt))
    x, lam, mu, _, k, kkt, _ = jax.lax.while_loop(going, outer, init)
    return ConstrainedResult(x, lam, mu, kkt, jnp.all(kkt <= tol), k)
