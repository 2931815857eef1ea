"""Chapter 2 — Gaussian elimination: solve, determinant, inverse, reduced row echelon form."""
from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax import lax

from fungpt._arrays import (
    as_matrix,
    check_rhs,
    checked_jit,
    default_rank_tol,
    eps,
    set_row,
)
from fungpt.linalg.factor import lu_factor, solve_triangular

# --------------------------------------------------------------------------------------------
# Gaussian elimination: solve, determinant, inverse
# --------------------------------------------------------------------------------------------

class Solution(NamedTuple):
    x: jax.Array         # the solution, shape of b
    singular: jax.Array  # bool: some pivot |u_ii| <= rtol * max|u_ij| (x is then meaningless)


def gaussian_elimination(a, b, rtol=None):
    """Solve A x = b by Gaussian elimination with partial pivoting (P A = L U), then
    L y = P b and U x = y. Flags `singular` when min|u_ii| <= rtol max|u_ij|, rtol = n eps by
    default. a (n, n), b (n,) or (n, k). 2n^3/3 + 2n^2 k flops."""
    a = as_matrix(a, "a", square=True)
    b = check_rhs(a, b)
    packed, perm, _ = lu_factor(a)
    lower, upper = jnp.tril(packed, -1), jnp.triu(packed)
    y = solve_triangular(lower, b[perm], lower=True, unit_diagonal=True)
    x = solve_triangular(upper, y, lower=False)
    rtol = a.shape[0] * eps(a.dtype) if rtol is None else rtol
    piv = jnp.abs(jnp.diagonal(upper))
    return Solution(x, jnp.min(piv, initial=jnp.inf) <= rtol * jnp.max(jnp.abs(upper), initial=0))


def solve(a, b):
    """x = A^-1 b by Gaussian elimination with partial pivoting (see `gaussian_elimination`)."""
    return gaussian_elimination(a, b).x


def det(a):
    """det A = det(P) prod_i u_ii from P A = L U (det P = ±1, the parity of the row swaps).
    n^3 flops instead of the n! of the Leibniz formula; exactly 0 when a pivot is 0."""
    packed, _, sign = lu_factor(a)
    return sign * jnp.prod(jnp.diagonal(packed))


def slogdet(a):
    """(sign, log|det A|) from the LU pivots, sum_i log|u_ii|: no overflow for large n."""
    packed, _, sign = lu_factor(a)
    d = jnp.diagonal(packed)
    return sign * jnp.prod(jnp.sign(d)), jnp.sum(jnp.log(jnp.abs(d)))


@checked_jit()
def inverse(a):
    """A^-1 by Gauss-Jordan elimination with partial pivoting on [A | I] -> [I | A^-1]:
    for each column pick the largest pivot, scale its row to 1, clear the column above and below.
    2n^3 flops. Real or complex. Singular A gives inf/NaN entries (as jnp.linalg.inv)."""
    a = as_matrix(a, "a", square=True)
    n = a.shape[0]
    rows = jnp.arange(n)
    if n == 0:
        return a                             # the inverse of the 0 x 0 matrix (numpy's value)
    aug = jnp.concatenate([a, jnp.eye(n, dtype=a.dtype)], axis=1)

    def step(k, aug):
        p = jnp.argmax(jnp.where(rows >= k, jnp.abs(aug[:, k]), -1))
        aug = aug[jnp.where(rows == k, p, jnp.where(rows == p, k, rows))]
        pivot_row = aug[k] / aug[k, k]
        factors = jnp.where(rows == k, 0, aug[:, k])
        aug = aug - factors[:, None] * pivot_row[None, :]
        return set_row(aug, k, pivot_row)

    return lax.fori_loop(0, n, step, aug)[:, n:]


# --------------------------------------------------------------------------------------------
# Row echelon form, rank, vector spaces
# --------------------------------------------------------------------------------------------


@checked_jit()
def rref(a, tol=None):
    """Reduced row echelon form by Gauss-Jordan with partial pivoting: a column whose best
    remaining pivot is <= tol (default max(m, n) eps max|a_ij|) has no pivot.
    Returns (R (m, n), pivot_columns bool (n,), rank int)."""
    a = as_matrix(a, "a")
    m, n = a.shape
    tol = default_rank_tol(a) if tol is None else tol
    rows = jnp.arange(m)
    if m == 0 or n == 0:
        return a, jnp.zeros(n, bool), jnp.zeros((), rows.dtype)

    def step(j, carry):
        r, piv, k = carry
        cand = jnp.where(rows >= k, jnp.abs(r[:, j]), -1)
        p = jnp.argmax(cand)
        ok = cand[p] > tol
        swapped = r[jnp.where(rows == k, p, jnp.where(rows == p, k, rows))]
        pivot_row = swapped[k] / jnp.where(ok, swapped[k, j], 1)
        cleared = swapped - jnp.where(rows == k, 0, swapped[:, j])[:, None] * pivot_row[None, :]
        cleared = set_row(cleared, k, pivot_row)
        r = jnp.where(ok, cleared, r)
        return r, piv.at[j].set(ok), k + ok.astype(k.dtype)

    init = (a, jnp.zeros(n, bool), jnp.zeros((), rows.dtype))
    return lax.fori_loop(0, n, step, init)


