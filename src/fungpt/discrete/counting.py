"""Counting: exact factorials, permutations and combinations (Python ints), their logarithms (jnp floats,
accurate far beyond any float's range of n!), Stirling's formula, and permutations by rank."""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

import fungpt._special as _special
from fungpt.discrete._base import as_float, nonneg_int

__all__ = ["comb", "combinations", "factorial", "log_comb", "log_factorial", "log_perm", "nth_permutation", "perm",
           "permutation_rank", "permutations", "stirling", "stirling_log_error"]


def factorial(n: int) -> int:
    """n! = 1·2·…·n exactly (a Python int)."""
    return math.prod(range(2, nonneg_int("n", n) + 1))


def perm(n: int, k: int) -> int:
    """P(n, k) = n! / (n−k)! = n(n−1)…(n−k+1): ordered selections of k of n (0 if k > n).  Exact."""
    n, k = nonneg_int("n", n), nonneg_int("k", k)
    return math.prod(range(n - k + 1, n + 1)) if k <= n else 0


def comb(n: int, k: int) -> int:
    """C(n, k) = n! / (k!(n−k)!): k-subsets of n (0 if k > n).  Exact, by c ← c·(n−i)/(i+1), each step an
    integer (it is C(n, i+1))."""
    n, k = nonneg_int("n", n), nonneg_int("k", k)
    if k > n:
        return 0
    c = 1
    for i in range(min(k, n - k)):
        c = c * (n - i) // (i + 1)
    return c

def log_factorial(n):
    """log n! = log Γ(n+1), elementwise, for n up to ~1e300 (n! itself overflows float64 at n = 171)."""
    return lax.lgamma(as_float(n) + 1)


def log_comb(n, k):
    """log C(n, k) = log Γ(n+1) − log Γ(k+1) − log Γ(n−k+1), elementwise (0 <= k <= n), computed as
    −log(n+1) − log B(n−k+1, k+1) with the Stirling correction (`fungpt._special`): the three lgammas of the
    textbook formula cancel, so log C(1e5, 1) would keep only 3 float32 digits of log 1e5."""
    n, k = as_float(n), as_float(k)
    return _special.log_comb(n, k)


def log_perm(n, k):
    """log P(n, k) = log Γ(n+1) − log Γ(n−k+1), elementwise (0 <= k <= n), as −(log Γ(n−k+1) − log Γ(n+1)) by
    the cancellation-free log-gamma difference."""
    n, k = as_float(n), as_float(k)
    return -_special.log_gamma_difference(k, n - k + 1)


def stirling(n):
    """Stirling's approximation n! ≈ √(2πn) (n/e)ⁿ (elementwise, n >= 1)."""
    n = as_float(n)
    return jnp.sqrt(2 * math.pi * n) * (n / math.e) ** n


def stirling_log_error(n):
    """log n! − log(√(2πn)(n/e)ⁿ), which lies in (1/(12n+1), 1/(12n)) (Robbins, 1955): the relative error
    of Stirling's formula is about 1/(12n).  Computed by the Stirling series for n >= 8 (the difference of
    log n! and its approximation, ~2e7 at n = 1e6, would keep only 10 of float64's 16 digits)."""
    return _special.stirling_correction(as_float(n))


def permutations(n: int):
    """All n! permutations of 0..n−1 in lexicographic order: int (n!, n).

    Each is the previous one's successor: find the last ascent p_i < p_{i+1}, swap p_i with the last
    p_j > p_i, reverse the tail (Narayana Pandita).  O(n!·n).
    """
    n = nonneg_int("n", n)
    p, out = list(range(n)), []
    while True:
        out.append(p[:])
        i = n - 2
        while i >= 0 and p[i] > p[i + 1]:
            i -= 1
        if i < 0:
            return np.array(out, dtype=np.int64).reshape(len(out), n)
        j = n - 1
        while p[j] < p[i]:
            j -= 1
        p[i], p[j] = p[j], p[i]
        p[i + 1:] = p[i + 1:][::-1]


def combinations(n: int, k: int):
    """All C(n, k) k-subsets of 0..n−1 as increasing rows, lexicographic: int (C(n, k), k).

    Successor: bump the last position that can still grow, and reset the ones after it to a run.
    """
    n, k = nonneg_int("n", n), nonneg_int("k", k)
    if k > n:
        return np.zeros((0, k), np.int64)
    c, out = list(range(k)), []
    while True:
        out.append(c[:])
        i = k - 1
        while i >= 0 and c[i] == n - k + i:
            i -= 1
        if i < 0:
            return np.array(out, dtype=np.int64).reshape(len(out), k)
        c[i] += 1
        for j in range(i + 1, k):
            c[j] = c[j - 1] + 1


def _max_rank_n():
    """The largest n whose n! − 1 fits the index dtype: 12 in int32, 20 in int64 (jax_enable_x64)."""
    wide = jnp.asarray(0).dtype == jnp.int64
    return 20 if wide else 12, wide


def nth_permutation(n: int, index):
    """The index-th permutation of 0..n−1 in lexicographic order, by the factorial number system:
    index = Σ_i d_i (n−1−i)!, and d_i picks the d_i-th smallest unused element.  Jittable and vmappable
    in index (so `vmap(partial(nth_permutation, n))(arange(n!))` enumerates them).

    n <= 12 (int32 indices) or n <= 20 (with jax_enable_x64).  index outside [0, n!) raises ValueError when
    concrete; under jit such an index gives all −1 (checkable), never another permutation."""
    n = nonneg_int("n", n)
    limit, _ = _max_rank_n()
    if n > limit:
        raise ValueError(f"nth_permutation needs n <= {limit} (n! − 1 must fit the index dtype), got n = {n}")
    index = jnp.asarray(index)
    bad = (index < 0) | (index >= math.factorial(n))
    if not isinstance(index, jax.core.Tracer) and np.any(np.asarray(bad)):
        raise ValueError(f"index must be in [0, {n}!) = [0, {math.factorial(n)}), got {index}")
    used = jnp.zeros(n, bool)
    out = []
    for i in range(n):
        f = math.factorial(n - 1 - i)
        d = ((index // f) % (n - i)).astype(jnp.int32)
        # the d-th unused element: the first unused position with d unused elements before it
        rank = jnp.cumsum(~used, dtype=jnp.int32) - 1
        e = jnp.argmax((rank == d) & ~used).astype(jnp.int32)
        out.append(e)
        used = used.at[e].set(True)
    perm_ = jnp.stack(out) if out else jnp.zeros(0, jnp.int32)
    return jnp.where(bad, -1, perm_)


def permutation_rank(p):
    """Lexicographic index of a permutation: Σ_i (#{j > i : p_j < p_i}) · (n−1−i)!  (the inverse of
    `nth_permutation`).  p: int (n,) -> int.  Jittable.  The rank reaches n! − 1: n <= 12 in int32,
    n <= 20 with jax_enable_x64 (a larger n raises instead of overflowing)."""
    p = jnp.asarray(p)
    n = p.shape[0]
    limit, wide = _max_rank_n()
    if n > limit:
        raise ValueError(f"permutation_rank of n = {n} items reaches {n}! − 1, beyond the "
                         f"{'int64' if wide else 'int32 (enable jax_enable_x64 for n <= 20)'} range")
    smaller_later = jnp.sum(jnp.triu(p[None, :] < p[:, None], 1), axis=1)  # Lehmer code
    dtype = jnp.int64 if wide else jnp.int32
    weights = jnp.asarray([math.factorial(n - 1 - i) for i in range(n)], dtype)
    return jnp.sum(smaller_later.astype(dtype) * weights)
