"""Markov chains: n-step transitions by repeated squaring, the stationary distribution (solve and power
iteration), sampled paths, the transition MLE, total variation and mixing."""
from __future__ import annotations

import jax.numpy as jnp
import numpy as np
from jax import lax

from fungpt import linalg
from fungpt.probability._base import as_float, check_probs, concrete, floats, uniform_bits

__all__ = ["distribution_after", "estimate_transition_matrix", "mixing_curve", "mixing_time", "n_step",
           "sample_path", "stationary_distribution", "stationary_power", "total_variation"]


# ---------------------------------------------------------------------------------------- Markov chains

def _check_transition(p):
    p = as_float(p)
    if p.ndim != 2 or p.shape[0] != p.shape[1]:
        raise ValueError(f"transition matrix must be square (K, K), got {p.shape}")
    check_probs("transition matrix rows", p, axis=1)
    return p


def n_step(p, n):
    """P^n, the n-step transition probabilities P(X_{t+n} = j | X_t = i), by repeated squaring:
    O(K³ log n). n: int >= 0. A Python int unrolls the ⌊log₂ n⌋ squarings (differentiable in P); a traced
    integer runs them in a ``lax.while_loop`` (jittable in n, not reverse-differentiable)."""
    p = _check_transition(p)
    if isinstance(n, (int, np.integer)):
        if n < 0:
            raise ValueError(f"n must be >= 0, got {n}")
        acc, base = jnp.eye(p.shape[0], dtype=p.dtype), p
        while n:
            acc, base, n = (acc @ base if n % 2 else acc), base @ base, n // 2
        return acc
    n = jnp.asarray(n)
    if not jnp.issubdtype(n.dtype, jnp.integer):
        raise TypeError(f"n must be an integer, got dtype {n.dtype}")

    def body(s):
        acc, base, k = s
        acc = jnp.where(k % 2 == 1, acc @ base, acc)
        return acc, base @ base, k // 2

    eye = jnp.eye(p.shape[0], dtype=p.dtype)
    return lax.while_loop(lambda s: s[2] > 0, body, (eye, p, n))[0]


def distribution_after(p0, p, n):
    """The state distribution after n steps from p0: p_n = p0 P^n (row vector), shape (K,)."""
    p0, p = floats(p0, p)
    return p0 @ n_step(p, n)


def stationary_distribution(p):
    """The stationary π with π P = π, Σπ = 1: the left eigenvector of P for its eigenvalue 1, i.e. the null
    vector of (P^T - I). One of its K equations is redundant (the columns of P^T - I sum to 0), so it is
    replaced by Σπ = 1 and the system solved by Gaussian elimination (`fungpt.linalg.solve`).
    Unique for an irreducible chain; a reducible one (e.g. the identity) raises ValueError, or gives NaN
    under jit. O(K³)."""
    p = _check_transition(p)
    k = p.shape[0]
    a = (p.T - jnp.eye(k, dtype=p.dtype)).at[-1].set(1)
    rhs = jnp.zeros(k, p.dtype).at[-1].set(1)
    pi = linalg.solve(a, rhs)
    v = concrete(pi)
    if v is not None and not np.all(np.isfinite(v)):
        raise ValueError("the chain is reducible (P^T - I has a null space of dimension > 1): its stationary "
                         "distribution is not unique; use stationary_power from a chosen start")
    return pi


def stationary_power(p, p0=None, *, tol=None, max_iter=10_000):
    """π by power iteration: p_{t+1} = p_t P until ½|p_{t+1} - p_t|_1 ≤ tol (default 10·eps) or max_iter.
    Converges like |λ_2|^t for an irreducible aperiodic chain. Returns (π, iterations)."""
    p = _check_transition(p)
    k = p.shape[0]
    p0 = jnp.full(k, 1 / k, p.dtype) if p0 is None else as_float(p0, p.dtype)
    tol = 10 * float(jnp.finfo(p.dtype).eps) if tol is None else tol

    def cond(s):
        _, delta, it = s
        return (delta > tol) & (it < max_iter)

    def body(s):
        x, _, it = s
        nx = x @ p
        return nx, 0.5 * jnp.sum(jnp.abs(nx - x)), it + 1

    x, _, it = lax.while_loop(cond, body, (p0, jnp.asarray(jnp.inf, p.dtype), jnp.asarray(0, jnp.int32)))
    return x, it


def sample_path(key, p, x0, n_steps):
    """A path X_0 = x0, X_{t+1} ~ Categorical(P[X_t]) of length n_steps + 1, by ``lax.scan`` over inverse-CDF
    draws from the current row. Returns int32 (n_steps + 1,)."""
    p = _check_transition(p)
    cdf = jnp.cumsum(p, axis=1)
    us = uniform_bits(key, (n_steps,), p.dtype)
    k = p.shape[0]

    def step(x, u):
        nx = jnp.minimum(jnp.sum(u >= cdf[x]), k - 1).astype(jnp.int32)
        return nx, nx

    x0 = jnp.asarray(x0, jnp.int32)
    return jnp.concatenate([x0[None], lax.scan(step, x0, us)[1]])


def estimate_transition_matrix(path, k):
    """MLE of P from one path: P̂_ij = N_ij / Σ_j N_ij with N_ij the number of i → j transitions
    (rows never left stay nan)."""
    path = jnp.asarray(path)
    counts = jnp.zeros((k, k), jnp.asarray(0.0).dtype).at[path[:-1], path[1:]].add(1)
    return counts / counts.sum(axis=1, keepdims=True)


def total_variation(p, q):
    """d_TV(p, q) = ½ Σ |p_i - q_i| = max over events |p(A) - q(A)|, in [0, 1]."""
    p, q = floats(p, q)
    return 0.5 * jnp.sum(jnp.abs(p - q), axis=-1)


def mixing_curve(p, steps):
    """d(t) = max_i d_TV(P^t[i], π) for t = 0..steps-1 (worst start), shape (steps,). For an irreducible
    aperiodic chain d(t) → 0, asymptotically like |λ_2|^t."""
    p = _check_transition(p)
    pi = stationary_distribution(p)

    def step(pt, _):
        return pt @ p, jnp.max(total_variation(pt, pi[None]))

    return lax.scan(step, jnp.eye(p.shape[0], dtype=p.dtype), None, length=steps)[1]


def mixing_time(p, eps=0.25, max_steps=1000):
    """t_mix(ε) = min{t : d(t) ≤ ε} (`mixing_curve`); returns max_steps when not reached."""
    d = mixing_curve(p, max_steps)
    hit = d <= eps
    return jnp.where(jnp.any(hit), jnp.argmax(hit), max_steps)
