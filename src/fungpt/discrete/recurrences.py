"""Recursion and linear recurrences: Fibonacci by fast doubling, Binet, Catalan, a_t = Σ c_i a_{t-i} by
iteration, by companion-matrix powers and in closed form."""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from fungpt.discrete._base import as_float, nonneg_int
from fungpt.graphs import matrix_power

__all__ = ["binet", "catalan", "characteristic_roots", "companion_matrix", "fibonacci", "linear_recurrence",
           "linear_recurrence_nth", "recurrence_closed_form"]


def _fib_pair(n):
    # (F(n), F(n+1)) by fast doubling: F(2k) = F(k)(2F(k+1) − F(k)), F(2k+1) = F(k)² + F(k+1)².
    if n == 0:
        return 0, 1
    a, b = _fib_pair(n // 2)
    c, d = a * (2 * b - a), a * a + b * b
    return (d, c + d) if n % 2 else (c, d)


def fibonacci(n: int) -> int:
    """F(n) exactly (F(0) = 0, F(1) = 1, F(n) = F(n−1) + F(n−2)) by recursive fast doubling:
    O(log n) recursive calls instead of the naive recursion's O(φⁿ)."""
    return _fib_pair(nonneg_int("n", n))[0]


def binet(n):
    """Binet's closed form F(n) = (φⁿ − ψⁿ)/√5, φ = (1+√5)/2, ψ = (1−√5)/2 = −1/φ: the characteristic-root
    solution of the Fibonacci recurrence.  Elementwise floats (exact after rounding up to n ≈ 70 in
    float64)."""
    n = as_float(n)
    s5 = math.sqrt(5.0)
    phi, psi = (1 + s5) / 2, (1 - s5) / 2
    # ψⁿ = (−1)ⁿ |ψ|ⁿ: a negative base with a real exponent would be NaN
    sign = 1 - 2 * jnp.mod(n, 2)
    return (phi**n - sign * abs(psi) ** n) / s5


def catalan(n: int) -> int:
    """The Catalan number C_n by its recursion C_0 = 1, C_{m+1} = Σ_{i=0..m} C_i C_{m−i} (a binary tree with
    m+1 internal nodes is a root with a left subtree of i and a right subtree of m−i nodes).  Exact, filled
    bottom-up (dynamic programming: no recursion depth limit, C_600 included): O(n²) big-int products.
    Closed form: C(2n, n)/(n+1)."""
    n = nonneg_int("n", n)
    c = [1]
    for m in range(n):
        c.append(sum(c[i] * c[m - i] for i in range(m + 1)))
    return c[n]


def _coeffs_init(coeffs, init):
    c, a = jnp.asarray(coeffs), jnp.asarray(init)
    if c.ndim != 1 or a.shape != c.shape or c.size == 0:
        raise ValueError(f"coeffs and init must be 1-D of the same length k >= 1, got {c.shape} and {a.shape}")
    if c.dtype != a.dtype:
        raise TypeError(f"coeffs and init must share a dtype, got {c.dtype} and {a.dtype}")
    return c, a


def linear_recurrence(coeffs, init, n: int):
    """The first n terms of a_t = c_1 a_{t−1} + c_2 a_{t−2} + … + c_k a_{t−k}, from a_0..a_{k−1} = init.

    coeffs (k,) = (c_1..c_k), init (k,) -> (n,), by iteration (`lax.scan` over a sliding window).  O(n k).
    """
    c, a = _coeffs_init(coeffs, init)
    n = nonneg_int("n", n)
    k = c.shape[0]

    def step(window, _):  # window = (a_{t−k}, ..., a_{t−1})
        nxt = jnp.dot(c[::-1], window)
        return jnp.concatenate([window[1:], nxt[None]]), nxt

    _, rest = lax.scan(step, a, None, length=max(n - k, 0))
    return jnp.concatenate([a, rest])[:n]


def companion_matrix(coeffs):
    """The k×k matrix M with (a_{t+1}, ..., a_{t+k})ᵀ = M (a_t, ..., a_{t+k−1})ᵀ: ones on the
    superdiagonal, last row (c_k, ..., c_1).  Its eigenvalues are the characteristic roots."""
    c = jnp.asarray(coeffs)
    k = c.shape[0]
    return jnp.eye(k, k, 1, dtype=c.dtype).at[-1].set(c[::-1])


def linear_recurrence_nth(coeffs, init, n: int):
    """a_n = first entry of Mⁿ (a_0, ..., a_{k−1})ᵀ with the companion matrix M, by repeated squaring:
    O(k³ log n) instead of O(n k).  Integer dtypes give exact terms until they overflow."""
    c, a = _coeffs_init(coeffs, init)
    return (matrix_power(companion_matrix(c), nonneg_int("n", n)) @ a)[0]


def characteristic_roots(coeffs):
    """Roots r_i of xᵏ − c_1 x^{k−1} − … − c_k = 0 (complex), the eigenvalues of the companion matrix."""
    c = jnp.asarray(coeffs)
    if not jnp.issubdtype(c.dtype, jnp.floating):
        c = c.astype(jnp.asarray(0.0).dtype)
    return jnp.linalg.eigvals(companion_matrix(c))


def recurrence_closed_form(coeffs, init):
    """Closed form a_n = Σ_i w_i r_iⁿ for distinct characteristic roots r_i, with the weights w solving
    the Vandermonde system Σ_i w_i r_iᵗ = a_t, t = 0..k−1.  Returns (roots, weights), complex (k,); a
    function of n is then `jnp.real(jnp.sum(weights * roots**n))`.  Repeated roots raise ValueError
    (their terms are n^j rⁿ, not covered here)."""
    c, a = _coeffs_init(coeffs, init)
    r = characteristic_roots(c)
    if not isinstance(r, jax.core.Tracer):
        gaps = np.abs(np.subtract.outer(np.asarray(r), np.asarray(r))) + np.eye(r.shape[0])
        if np.min(gaps) < 1e-8 * max(1.0, float(np.max(np.abs(r)))):
            raise ValueError(f"characteristic roots {np.asarray(r)} repeat: the closed form needs distinct roots")
    rows = [jnp.ones_like(r)]
    for _ in range(1, r.shape[0]):
        rows.append(rows[-1] * r)
    V = jnp.stack(rows)  # V[t, i] = r_iᵗ
    return r, jnp.linalg.solve(V, a.astype(r.dtype))
