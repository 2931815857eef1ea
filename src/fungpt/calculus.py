"""Chapter 3, calculus: limits, derivatives, the chain rule, gradients/Jacobians/Hessians, critical points,
multivariable integrals and Taylor series, as pure JAX functions.

Functions of one variable take and return scalars; functions of several take a vector ``x`` of shape
``(d,)``. Derivatives that the chapter *explains* (limits, difference quotients) are computed from function
values; the exact ones (gradients, Jacobians, Hessians, Taylor coefficients) come from fungpt's own autodiff.
Everything jits and vmaps; step sizes and tolerances default from the input's dtype.
"""
from __future__ import annotations

import functools
import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from fungpt import autodiff, linalg

__all__ = [
    "DEGENERATE", "MAXIMUM", "MINIMUM", "SADDLE", "CriticalPoint", "chain_rule_jacobian", "chain_rule_jvp",
    "chain_rule_vjp", "classify_critical_point", "derivative", "directional_derivative",
    "extrema_on_interval", "gauss_legendre", "gauss_legendre_nodes", "gradient", "halton", "hessian",
    "hessian_vector_product", "is_continuous", "jacobian", "jacobian_chain_cost", "limit", "monte_carlo",
    "newton_critical_point", "newton_path", "newton_step", "numerical_gradient", "numerical_jacobian",
    "partial_derivative", "quasi_monte_carlo", "simpson",
    "taylor_coefficients", "taylor_polynomial", "taylor_remainder_bound", "tensor_product_rule", "trapezoid",
]

MINIMUM, MAXIMUM, SADDLE, DEGENERATE = 0, 1, 2, 3


def _float(x):
    x = jnp.asarray(x)
    return x if jnp.issubdtype(x.dtype, jnp.floating) else x.astype(jnp.asarray(0.0).dtype)


def _eps(x):
    return float(jnp.finfo(x.dtype).eps)


def _check_choice(name, value, choices):
    if value not in choices:
        raise ValueError(f"{name} must be one of {choices}, got {value!r}")


# ---------------------------------------------------------------------------------------------- limits

def _richardson(g, p):
    # Neville's table on samples g_k = g(h0 / 2^k); returns the last diagonal entry and |T[n,n] - T[n-1,n-1]|.
    row = [g[0]]
    for k in range(1, g.shape[0]):
        new = [g[k]]
        for j in range(1, k + 1):
            new.append(new[j - 1] + (new[j - 1] - row[j - 1]) / (2.0 ** (p * j) - 1))
        prev, row = row, new
    return row[-1], jnp.abs(row[-1] - prev[-1])


def limit(f, x0, *, side="both", h0=0.125, levels=8, rtol=None):
    """lim_{x→x0} f(x) by Richardson extrapolation of samples that approach x0, or NaN when the
    samples show that it does not exist.

    Samples g(h_k) at h_k = h0 / 2^k, k = 0..levels-1, with g(h) = f(x0 + h) (side="right") or
    f(x0 - h) ("left"), and removes the error terms g(h) = L + c_1 h + c_2 h^2 + ... with Neville's
    table T[k, j] = T[k, j-1] + (T[k, j-1] - T[k-1, j-1]) / (2^j - 1); err = |T[n,n] - T[n-1,n-1]|.
    A one-sided limit exists (numerically) when err <= rtol (1 + |L|), rtol = eps^(1/4) by default
    (f64 1.2e-4, f32 1.9e-2): sin(1/x) or 1/x at 0 fail it and give NaN. side="both" is the mean of
    the two one-sided limits, which must agree within rtol (1 + |L|) + their errors (sign(x) at 0:
    NaN, the jump has no limit). f is never evaluated at x0. The expansion assumes integer powers
    of h: a limit approached like h^(1/2) (sqrt at 0) or with damped oscillation (x sin(1/x) at 0)
    is outside its range (NaN, or a loose value with a large err): err is an estimate, not a proof.

    Args: f scalar -> scalar; x0 scalar. Returns (L, err), err the Richardson error estimate
    (kept when L is NaN, to show how far from converging the table was). Jits and vmaps.
    Cost: ``levels`` (one-sided) or 2·levels evaluations of f.
    """
    _check_choice("side", side, ("left", "right", "both"))
    if levels < 2:
        raise ValueError(f"levels must be >= 2, got {levels}")
    x0 = _float(x0)
    if x0.ndim != 0:
        raise ValueError(f"limit takes a scalar x0, got shape {x0.shape}")
    rtol = _eps(x0) ** 0.25 if rtol is None else rtol
    hs = jnp.asarray(h0 / 2.0 ** np.arange(levels), x0.dtype)

    def one_sided(sign):
        value, err = _richardson(jax.vmap(lambda h: f(x0 + sign * h))(hs), 1)
        return value, err, err <= rtol * (1 + jnp.abs(value))

    if side != "both":
        value, err, ok = one_sided(1 if side == "right" else -1)
        return jnp.where(ok, value, jnp.nan), err
    (lv, le, lok), (rv, re, rok) = one_sided(-1), one_sided(1)
    value = (lv + rv) / 2
    agree = jnp.abs(lv - rv) <= rtol * (1 + jnp.abs(value)) + le + re
    err = jnp.maximum(jnp.maximum(le, re), jnp.abs(lv - rv) / 2)
    return jnp.where(lok & rok & agree, value, jnp.nan), err


def is_continuous(f, x0, *, rtol=None, **limit_kw):
    """Whether f is continuous at x0: lim_{x→x0-} f = lim_{x→x0+} f = f(x0), to within
    rtol·(1 + |f(x0)|) plus the limits' own error estimates. rtol defaults to eps^(1/2).
    Returns a bool scalar: False when a one-sided limit does not exist (`limit` gives NaN:
    sin(1/x) at 0) or f(x0) is undefined (NaN)."""
    x0 = _float(x0)
    rtol = _eps(x0) ** 0.5 if rtol is None else rtol
    left, el = limit(f, x0, side="left", **limit_kw)
    right, er = limit(f, x0, side="right", **limit_kw)
    fx = f(x0)
    tol = rtol * (1 + jnp.abs(fx)) + el + er
    return (jnp.abs(left - fx) <= tol) & (jnp.abs(right - fx) <= tol)


# ----------------------------------------------------------------------------------------- derivatives

_DEFAULT_STEP = {"forward": lambda eps: eps ** 0.5, "backward": lambda eps: eps ** 0.5,
                 "central": lambda eps: eps ** (1 / 3), "complex": lambda eps: eps ** 2}


def derivative(f, x, *, method="central", h=None):
    """f'(x) of a scalar function by a difference quotient (the one finite-difference routine of
    fungpt; `fungpt.numerics.finite_difference` calls it).

    forward:  (f(x+h) - f(x)) / h              error O(h) + O(eps/h),   default h = eps^(1/2)·max(1,|x|)
    backward: (f(x) - f(x-h)) / h              error O(h) + O(eps/h),   default as forward
    central:  (f(x+h) - f(x-h)) / (2h)         error O(h^2) + O(eps/h), default h = eps^(1/3)·max(1,|x|)
    complex:  Im f(x + i h) / h                error O(h^2), no cancellation, default h = eps^2·max(1,|x|);
              needs f real-analytic and written with complex-safe operations.
    For the difference methods h is rounded so that x ± h is exactly representable. x is a scalar,
    or an array (broadcast with h) when f is elementwise: many points or many steps at once.
    """
    _check_choice("method", method, tuple(_DEFAULT_STEP))
    x = _float(x)
    if h is None:
        h = _DEFAULT_STEP[method](_eps(x)) * jnp.maximum(1, jnp.abs(x))
    h = jnp.asarray(h, x.dtype)
    if method == "complex":
        cdtype = jnp.complex128 if x.dtype == jnp.float64 else jnp.complex64
        return jnp.imag(f(x.astype(cdtype) + 1j * h.astype(cdtype))) / h
    if method == "backward":
        h = x - (x - h)
        return (f(x) - f(x - h)) / h
    h = (x + h) - x
    if method == "forward":
        return (f(x + h) - f(x)) / h
    return (f(x + h) - f(x - h)) / (2 * h)


def partial_derivative(f, x, i, *, method="central", h=None):
    """∂f/∂x_i at x (shape (d,)) for f: R^d -> R, by `derivative` of t ↦ f(x + t e_i) at t = x_i."""
    x = _float(x)
    if x.ndim != 1:
        raise ValueError(f"partial_derivative takes x of shape (d,), got {x.shape}")
    e = jnp.zeros_like(x).at[i].set(1)
    xi = x[i]
    # t is complex for the complex step: lift x and e to t's dtype so the path stays x + (t - x_i) e_i.
    return derivative(lambda t: f(x.astype(t.dtype) + (t - xi.astype(t.dtype)) * e.astype(t.dtype)), xi,
                      method=method, h=h)


def numerical_gradient(f, x, *, method="central", h=None):
    """∇f(x) = (∂f/∂x_1, …, ∂f/∂x_d) by difference quotients, shape (d,); 2d evaluations of f (central)."""
    x = _float(x)
    if x.ndim != 1:
        raise ValueError(f"numerical_gradient takes x of shape (d,), got {x.shape}")
    return jax.vmap(lambda i: partial_derivative(f, x, i, method=method, h=h))(jnp.arange(x.shape[0]))


def numerical_jacobian(f, x, *, method="central", h=None):
    """J[i, j] = ∂f_i/∂x_j for f: R^n -> R^m by difference quotients, shape (m, n)."""
    x = _float(x)
    if x.ndim != 1:
        raise ValueError(f"numerical_jacobian takes x of shape (n,), got {x.shape}")
    cols = jax.vmap(lambda i: partial_derivative(f, x, i, method=method, h=h))(jnp.arange(x.shape[0]))
    return cols.T


# ------------------------------------------------------------------------------------------ chain rule

def chain_rule_vjp(fns, x, ct):
    """Reverse-mode chain rule for y = f_n(…f_1(x)): x̄ = J_1(x_0)^T ⋯ J_n(x_{n-1})^T ȳ.

    Each stage's pullback comes from ``fungpt.vjp``; the forward pass stores them, the backward pass
    applies them in reverse order. Returns (y, x̄). Cost: one forward and one backward pass per stage."""
    pullbacks = []
    for fn in fns:
        x, pullback = autodiff.vjp(fn, x)
        pullbacks.append(pullback)
    for pullback in reversed(pullbacks):
        (ct,) = pullback(ct)
    return x, ct


def chain_rule_jvp(fns, x, t):
    """Forward-mode chain rule: ẏ = J_n(x_{n-1}) ⋯ J_1(x_0) ẋ, pushing (x, ẋ) through each stage with
    ``fungpt.jvp``. Returns (y, ẏ)."""
    for fn in fns:
        x, t = autodiff.jvp(fn, (x,), (t,))
    return x, t


def jacobian_chain_cost(dims):
    """Multiply-adds to form ``J = J_k ⋯ J_1`` from its factors J_i (n_i, n_{i-1}), dims = (n_0, …, n_k):

    - "forward" (from the input, as forward mode pushes n_0 tangents): ``Σ_{i=2..k} n_i n_{i-1} n_0``;
    - "reverse" (from the output, as reverse mode pulls n_k cotangents): ``Σ_{i=1..k-1} n_k n_i n_{i-1}``;
    - "optimal": the cheapest bracketing (mixed accumulation), by dynamic programming over sub-chains,
      ``c[i, j] = min_s c[i, s] + c[s+1, j] + n_j n_s n_{i-1}`` in O(k³); "tree" is that bracketing as nested
      pairs (left factor applied last) of stage indices 0..k-1. Exact Python integers."""
    n = [int(d) for d in dims]
    k = len(n) - 1
    if k < 1 or min(n) < 1:
        raise ValueError(f"jacobian_chain_cost: need dims (n_0, ..., n_k) with k >= 1 and sizes >= 1, got {dims}")
    cost, tree = {(i, i): 0 for i in range(1, k + 1)}, {(i, i): i - 1 for i in range(1, k + 1)}
    for span in range(1, k):
        for i in range(1, k - span + 1):
            j = i + span
            c, s = min((cost[i, s] + cost[s + 1, j] + n[j] * n[s] * n[i - 1], s) for s in range(i, j))
            cost[i, j], tree[i, j] = c, (tree[s + 1, j], tree[i, s])
    return {"forward": sum(n[i] * n[i - 1] * n[0] for i in range(2, k + 1)),
            "reverse": sum(n[k] * n[i] * n[i - 1] for i in range(1, k)), "optimal": cost[1, k], "tree": tree[1, k]}


def chain_rule_jacobian(fns, x, *, order="forward"):
    """J_{f_k∘…∘f_1}(x) = J_k(x_{k-1}) @ ⋯ @ J_1(x_0): each factor by our autodiff at its own input (``fungpt.jacrev``
    when the stage narrows, ``fungpt.jacfwd`` otherwise), multiplied in `order` "forward", "reverse" or "optimal"
    (the bracketing of `jacobian_chain_cost`: e.g. through a bottleneck, reverse before it, forward after it).
    x: (n_0,); returns (n_k, n_0)."""
    _check_choice("order", order, ("forward", "reverse", "optimal"))
    jacs = []
    for fn in fns:
        y = jax.eval_shape(fn, x)
        jacs.append((autodiff.jacrev if y.size < x.size else autodiff.jacfwd)(fn)(x).reshape(y.size, x.size))
        x = fn(x)
    if order == "optimal":
        tree = jacobian_chain_cost([jacs[0].shape[1]] + [j.shape[0] for j in jacs])["tree"]
        product = lambda t: jacs[t] if isinstance(t, int) else product(t[0]) @ product(t[1])
        return product(tree)
    if order == "reverse":
        jacs = jacs[::-1]
        return functools.reduce(lambda acc, j: acc @ j, jacs)
    return functools.reduce(lambda acc, j: j @ acc, jacs)


# ------------------------------------------------------------------------- gradients, Jacobians, Hessians

def gradient(f, x):
    """∇f(x) for f: R^d -> R by fungpt's reverse mode (one backward pass), shape like x."""
    return autodiff.grad(f)(x)


def directional_derivative(f, x, v):
    """D_v f(x) = ∇f(x)·v by one forward-mode pass (``fungpt.jvp``), without forming ∇f."""
    return autodiff.jvp(f, (x,), (v,))[1]


def jacobian(f, x, *, mode="reverse"):
    """J[i, j] = ∂f_i/∂x_j, shape (m, n): ``fungpt.jacrev`` (m backward passes, best when m < n) or
    ``fungpt.jacfwd`` (n forward passes, best when n < m)."""
    _check_choice("mode", mode, ("reverse", "forward"))
    return (autodiff.jacrev if mode == "reverse" else autodiff.jacfwd)(f)(x)


def hessian(f, x):
    """H[i, j] = ∂²f/∂x_i∂x_j, shape (d, d), by ``fungpt.hessian`` (forward over reverse)."""
    return autodiff.hessian(f)(x)


def hessian_vector_product(f, x, v):
    """H(x) v = d/dt ∇f(x + t v)|_{t=0}: one ``fungpt.jvp`` of ``fungpt.grad(f)`` (forward over
    reverse), O(cost of f) and O(n) memory, without forming H. x and v are pytrees of one structure
    (arrays, or a network's parameters); f returns a scalar. `fungpt.optim.hvp` is this function."""
    return autodiff.jvp(autodiff.grad(f), (x,), (v,))[1]


# ------------------------------------------------------------------------------------ critical points

class CriticalPoint(NamedTuple):
    """A point found by `newton_critical_point`: x, f(x), |∇f(x)|, Hessian eigenvalues (ascending), kind
    (MINIMUM, MAXIMUM, SADDLE or DEGENERATE), whether Newton converged, and its iteration count."""
    x: jax.Array
    value: jax.Array
    grad_norm: jax.Array
    eigenvalues: jax.Array
    kind: jax.Array
    converged: jax.Array
    iterations: jax.Array


def classify_critical_point(f, x, *, tol=None):
    """Second-derivative test at a critical point x (shape (d,)): the eigenvalues λ of the Hessian
    (``fungpt.hessian``) decide SADDLE (some λ > τ and some λ < -τ: directions of both curvatures,
    whatever the others are), MINIMUM (all λ > τ), MAXIMUM (all λ < -τ), otherwise DEGENERATE (the
    test is inconclusive). τ = tol·max(1, max|λ|), tol defaults to eps^(1/2). Returns (kind int32,
    eigenvalues ascending). `fungpt.optim.classify_critical_point` returns this kind alone."""
    x = _float(x)
    if x.ndim != 1:
        raise ValueError(f"classify_critical_point takes x of shape (d,), got {x.shape}")
    tol = _eps(x) ** 0.5 if tol is None else tol
    # The Hessian is symmetric: chapter 2's Jacobi eigensolver applies.
    lam = linalg.eigvalsh(autodiff.hessian(f)(x))
    tau = tol * jnp.maximum(1, jnp.max(jnp.abs(lam)))
    pos, neg = jnp.any(lam > tau), jnp.any(lam < -tau)
    small = jnp.any(jnp.abs(lam) <= tau)
    kind = jnp.where(pos & neg, SADDLE,
                     jnp.where(small, DEGENERATE, jnp.where(pos, MINIMUM, MAXIMUM)))
    return kind.astype(jnp.int32), lam


def _check_start(x0, name):
    x0 = _float(x0)
    if x0.ndim != 1:
        raise ValueError(f"{name} takes x0 of shape (d,), got {x0.shape}")
    return x0


def newton_step(f, x):
    """The Newton step for ∇f(x) = 0: Δ = H(x)^{-1} ∇f(x) (Gaussian elimination with partial
    pivoting, chapter 2), ∇f and H from fungpt's autodiff; the next iterate is x - Δ. x: (d,)."""
    return linalg.solve(autodiff.hessian(f)(x), autodiff.grad(f)(x))


def newton_path(f, x0, steps=20):
    """`steps` Newton steps x ← x - H(x)^{-1} ∇f(x) from x0 (d,); returns the path (steps + 1, d).
    A fixed trip count (``lax.scan``), so it also differentiates; `newton_critical_point` is the
    version that stops on convergence and classifies. `fungpt.optim.newton` is this function."""
    x0 = _check_start(x0, "newton_path")

    def step(x, _):
        x = x - newton_step(f, x)
        return x, x

    _, path = jax.lax.scan(step, x0, None, length=steps)
    return jnp.concatenate([x0[None], path])


def newton_critical_point(f, x0, *, tol=None, max_iter=50):
    """Solve ∇f(x) = 0 by Newton's method, x ← x - H(x)^{-1} ∇f(x), with ∇f and H from fungpt's autodiff,
    then classify the point with `classify_critical_point`.

    Converges quadratically near a non-degenerate critical point of any kind (min, max or saddle): Newton
    finds where the gradient vanishes, not where f is small. Stops when |Δx| ≤ tol·(1 + |x|) (tol defaults
    to eps^(1/2), after which one more step reaches ~eps), or after max_iter steps, or on a singular H.
    x0: (d,). Returns a `CriticalPoint`. Runs in a ``lax.while_loop``: jit- and vmap-friendly.
    """
    x0 = _check_start(x0, "newton_critical_point")
    tol = _eps(x0) ** 0.5 if tol is None else tol
    g = autodiff.grad(f)

    def step(x):
        return newton_step(f, x)

    def cond(state):
        x, dx, it = state
        small = jnp.linalg.norm(dx) <= tol * (1 + jnp.linalg.norm(x))
        return (it < max_iter) & ~small & jnp.all(jnp.isfinite(x))

    def body(state):
        x, _, it = state
        dx = step(x)
        return x - dx, dx, it + 1

    inf = jnp.full_like(x0, jnp.inf)
    x, dx, it = jax.lax.while_loop(cond, body, (x0, inf, jnp.asarray(0, jnp.int32)))
    converged = (jnp.linalg.norm(dx) <= tol * (1 + jnp.linalg.norm(x))) & jnp.all(jnp.isfinite(x))
    x = jnp.where(converged, x - step(x), x)  # the polish step: quadratic convergence takes ~tol to ~eps
    kind, lam = classify_critical_point(f, x)
    return CriticalPoint(x, f(x), jnp.linalg.norm(g(x)), lam, kind, converged, it)


def extrema_on_interval(f, a, b, *, n_starts=32):
    """Global min and max of a smooth f: R -> R on [a, b] by the closed-interval method: the extremes
    are among the endpoints and the interior critical points f'(x) = 0, found by Newton from n_starts
    equally spaced starts (``fungpt.grad`` for f', f''). Critical points closer together than the start
    spacing can be missed. Returns (x_min, f_min, x_max, f_max)."""
    a, b = _float(a), _float(b)
    if a.ndim or b.ndim:
        raise ValueError("extrema_on_interval takes scalar a and b")
    starts = jnp.linspace(a, b, n_starts)
    fv = lambda v: f(v[0])
    cps = jax.vmap(lambda s: newton_critical_point(fv, s[None]))(starts)
    xs = cps.x[:, 0]
    ok = cps.converged & (xs >= a) & (xs <= b)
    xs = jnp.concatenate([jnp.stack([a, b]), jnp.where(ok, xs, a)])
    vals = jax.vmap(f)(xs)
    imin, imax = jnp.argmin(vals), jnp.argmax(vals)
    return xs[imin], vals[imin], xs[imax], vals[imax]


# ----------------------------------------------------------------------------------------- integrals

def gauss_legendre_nodes(n, dtype=None):
    """Nodes x_i and weights w_i of the n-point Gauss-Legendre rule on [-1, 1] (exact for polynomials
    of degree ≤ 2n-1), by Golub-Welsch: the nodes are the eigenvalues of the symmetric tridiagonal Jacobi
    matrix of the Legendre recurrence, J_{k,k+1} = k / sqrt(4k^2 - 1), and w_i = 2·v_i[0]^2 for the
    unit eigenvectors v_i. Shapes (n,), (n,). Cost O(n^3) (a dense eigensolver)."""
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive int, got {n!r}")
    return _gauss_legendre_nodes(n, jnp.asarray(0.0).dtype if dtype is None else jnp.dtype(dtype))


@functools.partial(jax.jit, static_argnums=(0, 1))
def _gauss_legendre_nodes(n, dtype):
    k = jnp.arange(1, n, dtype=dtype)
    off = k / jnp.sqrt(4 * k * k - 1)
    jac = jnp.diag(off, 1) + jnp.diag(off, -1)
    nodes, vecs = jnp.linalg.eigh(jac)
    return nodes, 2 * vecs[0] ** 2


def _rule_1d(rule, n, lo, hi):
    """Nodes and weights of a composite 1-D rule on [lo, hi]."""
    dtype = lo.dtype
    if rule == "gauss":
        x, w = gauss_legendre_nodes(n, dtype)
        return (hi + lo) / 2 + (hi - lo) / 2 * x, (hi - lo) / 2 * w
    if rule == "simpson" and n % 2:
        raise ValueError(f"simpson needs an even number of intervals, got n={n}")
    h = (hi - lo) / n
    x = lo + h * jnp.arange(n + 1, dtype=dtype)
    if rule == "trapezoid":
        w = jnp.ones(n + 1, dtype).at[0].set(0.5).at[-1].set(0.5)
    else:
        w = jnp.asarray(np.r_[1, np.tile([4, 2], n // 2)[:-1], 1] / 3, dtype)
    return x, h * w


def _check_interval(a, b, n):
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive int, got {n!r}")
    a, b = _float(a), _float(b)
    if a.ndim or b.ndim:
        raise ValueError(f"a and b must be scalars, got shapes {a.shape}, {b.shape}")
    return a, b.astype(a.dtype)


def trapezoid(f, a, b, n=128):
    """∫_a^b f ≈ h [f_0/2 + f_1 + … + f_{n-1} + f_n/2], h = (b-a)/n; error -(b-a) h^2 f''(ξ)/12.
    f: scalar -> scalar (vmapped over the n+1 nodes)."""
    a, b = _check_interval(a, b, n)
    x, w = _rule_1d("trapezoid", n, a, b)
    return jnp.sum(w * jax.vmap(f)(x))


def simpson(f, a, b, n=128):
    """Composite Simpson: ∫_a^b f ≈ h/3 [f_0 + 4f_1 + 2f_2 + … + 4f_{n-1} + f_n], n even;
    error -(b-a) h^4 f''''(ξ)/180."""
    a, b = _check_interval(a, b, n)
    x, w = _rule_1d("simpson", n, a, b)
    return jnp.sum(w * jax.vmap(f)(x))


def gauss_legendre(f, a, b, n=16):
    """n-point Gauss-Legendre: ∫_a^b f ≈ (b-a)/2 Σ w_i f((a+b)/2 + (b-a)/2 x_i), exact for degree ≤ 2n-1
    (nodes from `gauss_legendre_nodes`)."""
    a, b = _check_interval(a, b, n)
    x, w = _rule_1d("gauss", n, a, b)
    return jnp.sum(w * jax.vmap(f)(x))


def _check_box(lows, highs):
    lows, highs = _float(lows), _float(highs)
    if lows.ndim != 1 or lows.shape != highs.shape:
        raise ValueError(f"lows and highs must both have shape (d,), got {lows.shape} and {highs.shape}")
    return lows, highs.astype(lows.dtype)


def tensor_product_rule(f, lows, highs, n=16, *, rule="gauss"):
    """∫_box f over the box Π_k [lows_k, highs_k] (d dims) by the tensor product of a 1-D rule:
    Σ_{i_1..i_d} w_{i_1}⋯w_{i_d} f(x_{i_1}, …, x_{i_d}). rule: "trapezoid", "simpson" (n intervals per
    axis) or "gauss" (n nodes per axis). f: (d,) -> scalar. Cost: ~n^d evaluations, so d ≤ 3 or 4."""
    _check_choice("rule", rule, ("trapezoid", "simpson", "gauss"))
    lows, highs = _check_box(lows, highs)
    xs, ws = zip(*(_rule_1d(rule, n, lows[k], highs[k]) for k in range(lows.shape[0])), strict=True)
    pts = jnp.stack([g.ravel() for g in jnp.meshgrid(*xs, indexing="ij")], axis=1)  # (n^d, d)
    wts = jnp.ones((1,), lows.dtype)
    for w in ws:  # outer product of the 1-D weights, in meshgrid's "ij" order
        wts = jnp.outer(wts, w).reshape(-1)
    return jnp.sum(wts * jax.vmap(f)(pts))


def monte_carlo(f, key, lows, highs, n=4096):
    """Plain Monte Carlo over a box: V·mean f(U_i) with U_i uniform in the box, V its volume, and the
    standard error V·s/sqrt(n) (s the sample std): the error shrinks like n^(-1/2) in any dimension.
    Returns (estimate, standard_error)."""
    lows, highs = _check_box(lows, highs)
    u = jax.random.uniform(key, (n, lows.shape[0]), lows.dtype)
    vals = jax.vmap(f)(lows[None] + (highs - lows)[None] * u)
    vol = jnp.prod(highs - lows)
    return vol * jnp.mean(vals), vol * jnp.std(vals, ddof=1) / math.sqrt(n)


_PRIMES = (2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47, 53)


def halton(n, d, *, dtype=None):
    """The first n points of the d-dimensional Halton sequence in [0, 1)^d, shape (n, d): coordinate k of
    point i is the radical inverse of i in base p_k (the k-th prime), φ_p(i) = Σ_j a_j p^{-(j+1)} for
    i = Σ_j a_j p^j. Low discrepancy: ~(log n)^d / n. Point 0 is the origin (as in scipy)."""
    if not isinstance(d, int) or not 1 <= d <= len(_PRIMES):
        raise ValueError(f"d must be an int in [1, {len(_PRIMES)}], got {d!r}")
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive int, got {n!r}")
    return _halton(n, d, jnp.asarray(0.0).dtype if dtype is None else jnp.dtype(dtype))


@functools.partial(jax.jit, static_argnums=(0, 1, 2))
def _halton(n, d, dtype):
    i0 = jnp.arange(n)
    cols = []
    for p in _PRIMES[:d]:
        i, r, scale = i0, jnp.zeros(n, dtype), 1.0 / p
        for _ in range(math.ceil(math.log(max(n, 2)) / math.log(p)) + 1):
            r = r + (i % p).astype(dtype) * scale
            i, scale = i // p, scale / p
        cols.append(r)
    return jnp.stack(cols, axis=1)


def quasi_monte_carlo(f, key, lows, highs, n=4096, *, n_shifts=8):
    """Randomized quasi-Monte Carlo: the Halton points shifted modulo 1 by n_shifts independent uniform
    vectors (Cranley-Patterson), each shift giving an unbiased estimate V·mean f; the estimate is their mean
    and the standard error their std / sqrt(n_shifts). Error ~ (log n)^d / n for smooth f, far below
    Monte Carlo's n^(-1/2). Returns (estimate, standard_error)."""
    lows, highs = _check_box(lows, highs)
    if n_shifts < 2:
        raise ValueError(f"n_shifts must be >= 2 to estimate an error, got {n_shifts}")
    d = lows.shape[0]
    pts = halton(n, d, dtype=lows.dtype)
    shifts = jax.random.uniform(key, (n_shifts, 1, d), lows.dtype)
    u = (pts[None] + shifts) % 1.0
    vals = jax.vmap(jax.vmap(f))(lows[None, None] + (highs - lows)[None, None] * u)
    est = jnp.prod(highs - lows) * jnp.mean(vals, axis=1)
    return jnp.mean(est), jnp.std(est, ddof=1) / math.sqrt(n_shifts)


# -------------------------------------------------------------------------------------- Taylor series

def _derivatives(f, order):
    """x ↦ [f(x), f'(x), …, f^(order)(x)] by nesting fungpt.jvp ``order`` times (cost ~2^order · f)."""
    g = lambda x: jnp.reshape(f(x), (1,))
    for _ in range(order):
        def g(x, g=g):
            y, dy = autodiff.jvp(g, (x,), (jnp.ones_like(x),))
            return jnp.concatenate([y[:1], dy])
    return g


def taylor_coefficients(f, x0, order):
    """Taylor coefficients c_k = f^(k)(x0) / k!, k = 0..order, of a scalar f, each derivative by one more
    level of forward-mode differentiation (``fungpt.jvp``). Returns shape (order+1,).
    f(x) = Σ_k c_k (x - x0)^k + R_order(x)."""
    if not isinstance(order, int) or order < 0:
        raise ValueError(f"order must be a non-negative int, got {order!r}")
    x0 = _float(x0)
    if x0.ndim:
        raise ValueError(f"taylor_coefficients takes a scalar x0, got shape {x0.shape}")
    fact = jnp.asarray([math.factorial(k) for k in range(order + 1)], x0.dtype)
    return _derivatives(f, order)(x0) / fact


def taylor_polynomial(coeffs, x0, x):
    """p(x) = Σ_k c_k (x - x0)^k by Horner's rule (n multiply-adds). coeffs: (n+1,); x any shape."""
    coeffs = _float(coeffs)
    if coeffs.ndim != 1:
        raise ValueError(f"coeffs must have shape (n+1,), got {coeffs.shape}")
    t = jnp.asarray(x, coeffs.dtype) - x0
    acc = jnp.zeros_like(t) + coeffs[-1]
    for c in coeffs[-2::-1]:
        acc = acc * t + c
    return acc


def taylor_remainder_bound(f, x0, order, x, *, n_grid=64):
    """Lagrange's bound on the Taylor error |f(x) - p_order(x)| ≤ max_ξ |f^(order+1)(ξ)| |x-x0|^(order+1)
    / (order+1)!, ξ between x0 and x; the max is taken over n_grid equally spaced ξ (so it is an estimate
    of the bound, exact when |f^(order+1)| is monotone between them). x scalar."""
    x0, x = _float(x0), _float(x)
    xi = x0 + (x - x0) * jnp.linspace(0, 1, n_grid, dtype=x0.dtype)
    top = jnp.max(jnp.abs(jax.vmap(_derivatives(f, order + 1))(xi)[:, -1]))
    return top * jnp.abs(x - x0) ** (order + 1) / math.factorial(order + 1)
