"""Chapter 2 (used by chapter 6) — the factorizations: LU with partial pivoting, triangular
solves, Cholesky, Householder reflections, QR by Householder and by Givens rotations.

Written with `lax.fori_loop`/`lax.scan` over static trip counts and masked updates (static
shapes), so they jit, vmap and differentiate in reverse mode."""
from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from fungpt._arrays import as_float, as_matrix, checked_jit, hypot, norm2, set_col, set_row

# --------------------------------------------------------------------------------------------
# LU with partial pivoting, triangular solves, Cholesky
# --------------------------------------------------------------------------------------------

@checked_jit()
def lu_factor(a):
    """Packed LU with partial pivoting: a[perm] = L U, L unit lower (below the diagonal of `lu`),
    U upper (on and above it). Returns (lu (n, n), perm (n,) int, sign) where sign = det(P) = ±1.

    Step k picks the largest |a_ik| (i >= k) as pivot, swaps it to row k, and subtracts
    l_ik u_k from every row below: 2n^3/3 flops. A zero pivot (singular input) is kept as 0.
    """
    a = as_matrix(a, "a", square=True)
    n = a.shape[0]
    rows = jnp.arange(n)
    if n == 0:
        return a, rows, jnp.ones((), a.dtype)  # 0 x 0: det = 1 (the empty product)

    def step(k, carry):
        lu, perm, sign = carry
        p = jnp.argmax(jnp.where(rows >= k, jnp.abs(lu[:, k]), -1))
        swap = jnp.where(rows == k, p, jnp.where(rows == p, k, rows))
        lu, perm = lu[swap], perm[swap]
        sign = jnp.where(p == k, sign, -sign)
        pivot = lu[k, k]
        below = rows > k
        l = jnp.where(below, lu[:, k] / jnp.where(pivot == 0, 1, pivot), 0)
        lu = lu - l[:, None] * jnp.where(below, lu[k], 0)[None, :]
        lu = jnp.where(below[:, None] & (rows == k)[None, :], l[:, None], lu)
        return lu, perm, sign

    return lax.fori_loop(0, n, step, (a, rows, jnp.ones((), a.dtype)))


class LU(NamedTuple):
    perm: jax.Array  # (n,) rows of a in pivot order: a[perm] = l @ u
    l: jax.Array     # (n, n) unit lower triangular
    u: jax.Array     # (n, n) upper triangular


def lu(a):
    """PA = LU with partial pivoting, as (perm, L, U) with a[perm] = L @ U (P = eye[perm])."""
    packed, perm, _ = lu_factor(a)
    n = packed.shape[0]
    l = jnp.tril(packed, -1) + jnp.eye(n, dtype=packed.dtype)
    return LU(perm, l, jnp.triu(packed))


@checked_jit('lower', 'unit_diagonal')
def solve_triangular(t, b, lower=True, unit_diagonal=False):
    """Solve T x = b by forward (lower) or back (upper) substitution:
    x_i = (b_i - sum_{j != i} T_ij x_j) / T_ii in order. b is (n,) or (n, k); n^2 flops per column."""
    t = as_matrix(t, "t", square=True)
    b = as_float(b, "b")
    if b.ndim not in (1, 2) or b.shape[0] != t.shape[0]:
        raise ValueError(f"b must be ({t.shape[0]},) or ({t.shape[0]}, k), got {b.shape}")
    if b.dtype != t.dtype:
        raise TypeError(f"t and b must share a dtype, got {t.dtype} and {b.dtype}")
    n = t.shape[0]
    if n == 0:
        return b                                 # no unknowns: the empty solution
    bm = b[:, None] if b.ndim == 1 else b
    diag = jnp.ones(n, t.dtype) if unit_diagonal else jnp.diagonal(t)
    off = t - jnp.diag(jnp.diagonal(t))

    def step(k, x):
        i = k if lower else n - 1 - k
        # x is still 0 at the unknowns not yet solved, so off[i] @ x sums only the known ones.
        xi = (bm[i] - off[i] @ x) / diag[i]
        return set_row(x, i, xi)

    x = lax.fori_loop(0, n, step, jnp.zeros_like(bm))
    return x.reshape(b.shape)


@checked_jit()
def cholesky(a):
    """A = L L^T for symmetric positive definite A (Cholesky–Banachiewicz, column by column):
    L_jj = sqrt(A_jj - sum_k L_jk^2), L_ij = (A_ij - sum_k L_ik L_jk) / L_jj. n^3/3 flops.
    Not positive definite -> NaN in L (as jnp.linalg.cholesky); only the lower triangle is read."""
    a = as_matrix(a, "a", square=True)
    rows = jnp.arange(a.shape[0])
    if a.shape[0] == 0:
        return a                         # 0 x 0: the empty factor (numpy's value)

    def step(j, l):
        lj = l[j]                      # entries < j are done, the rest still 0
        d = jnp.sqrt(a[j, j] - lj @ lj)
        col = (a[:, j] - l @ lj) / d
        col = jnp.where(rows > j, col, jnp.where(rows == j, d, 0))
        return set_col(l, j, col)

    return lax.fori_loop(0, a.shape[0], step, jnp.zeros_like(a))


# --------------------------------------------------------------------------------------------
# QR: Householder reflections and Givens rotations
# --------------------------------------------------------------------------------------------

def householder(x, j):
    """Householder reflection that maps x (n,) onto a multiple of e_j: returns (v, tau) with
    H = I - tau v v^*, v_j = 1 and H x = -phase(x_j) ||x|| e_j (phase(z) = z / |z|, 1 at 0).

    v = (x + phase(x_j) ||x|| e_j) / (phase(x_j) (|x_j| + ||x||)), tau = 1 + |x_j| / ||x|| in
    [1, 2] (LAPACK's larfg normalisation): adding the norm avoids cancellation, and every
    quantity is a ratio of entries of x, so nothing is squared (||x|| is the scaled `norm2`);
    accurate from the smallest to the largest float. x = 0 gives tau = 0 (H = I).
    """
    alpha = norm2(x)
    axj = jnp.abs(x[j])
    phase = jnp.where(axj == 0, 1, x[j] / jnp.where(axj == 0, 1, axj).astype(x.dtype))
    ok = alpha > 0
    d = phase * jnp.where(ok, axj + alpha, 1).astype(x.dtype)
    v = jnp.where(jnp.arange(x.shape[0]) == j, 1, x / d).astype(x.dtype)
    tau = jnp.where(ok, 1 + axj / jnp.where(ok, alpha, 1), 0).astype(x.dtype)
    return v, tau


@checked_jit('mode')
def qr_householder(a, mode="reduced"):
    """A = Q R by Householder reflections H_k = I - tau v v^* (see `householder`), which map
    column k on and below the diagonal onto e_k. Real or complex; m x n input;
    mode "reduced": Q (m, k), R (k, n), k = min(m, n); "complete": Q (m, m), R (m, n).
    2mn^2 - 2n^3/3 flops for R (more to form Q)."""
    if mode not in ("reduced", "complete"):
        raise ValueError(f"mode must be 'reduced' or 'complete', got {mode!r}")
    a = as_matrix(a, "a")
    m, n = a.shape
    k = min(m, n)
    rows = jnp.arange(m)
    if k == 0:
        return _empty_qr(a, mode)

    def step(j, carry):
        r, q = carry
        v, beta = householder(jnp.where(rows >= j, r[:, j], 0), j)
        r = r - beta * v[:, None] * (jnp.conj(v) @ r)[None, :]
        q = q - beta * (q @ v)[:, None] * jnp.conj(v)[None, :]
        return r, q

    r, q = lax.fori_loop(0, k, step, (a, jnp.eye(m, dtype=a.dtype)))
    r = jnp.triu(r)
    if mode == "reduced":
        return q[:, :k], r[:k]
    return q, r


def _empty_qr(a, mode):
    # An empty A (m or n = 0) is already triangular: Q = I (complete) or its first 0 columns (numpy's value).
    m, n = a.shape
    if mode == "reduced":
        return jnp.zeros((m, 0), a.dtype), jnp.zeros((0, n), a.dtype)
    return jnp.eye(m, dtype=a.dtype), a


def _givens_schedule(m, n):
    # Zero column j from the bottom up: rotate rows (i-1, i) for i = m-1 .. j+1.
    pairs = [(i, j) for j in range(min(m - 1, n)) for i in range(m - 1, j, -1)]
    return np.array(pairs, dtype=np.int32).reshape(-1, 2)


@checked_jit('mode')
def qr_givens(a, mode="reduced"):
    """A = Q R by Givens rotations G = [[c, s], [-s, c]], c = a/r, s = b/r, r = hypot(a, b),
    applied to rows (i-1, i) to zero R_ij, column by column from the bottom. Real input;
    same shapes as `qr_householder`. 3mn^2 - n^3 flops for R: costlier than Householder but each
    rotation touches two rows only (the tool for sparse or Hessenberg matrices)."""
    if mode not in ("reduced", "complete"):
        raise ValueError(f"mode must be 'reduced' or 'complete', got {mode!r}")
    a = as_matrix(a, "a")
    if jnp.issubdtype(a.dtype, jnp.complexfloating):
        raise TypeError("qr_givens takes real matrices; use qr_householder for complex ones")
    m, n = a.shape
    rows = jnp.arange(m, dtype=jnp.int32)    # the schedule is int32 too
    if min(m, n) == 0:
        return _empty_qr(a, mode)

    def rotate(carry, ij):
        r, q = carry
        i, j = ij[0], ij[1]
        x, y = r[i - 1, j], r[i, j]
        rr = hypot(x, y)                    # scaled: x*x + y*y under/overflows
        c = jnp.where(rr == 0, 1, x / jnp.where(rr == 0, 1, rr))
        s = jnp.where(rr == 0, 0, y / jnp.where(rr == 0, 1, rr))
        ra, rb = r[i - 1], r[i]
        r = jnp.where((rows == i - 1)[:, None], (c * ra + s * rb)[None, :], r)
        r = jnp.where((rows == i)[:, None], (c * rb - s * ra)[None, :], r)
        qa, qb = q[:, i - 1], q[:, i]
        q = jnp.where((rows == i - 1)[None, :], (c * qa + s * qb)[:, None], q)
        q = jnp.where((rows == i)[None, :], (c * qb - s * qa)[:, None], q)
        return (r, q), None

    sched = jnp.asarray(_givens_schedule(m, n))
    (r, q), _ = lax.scan(rotate, (a, jnp.eye(m, dtype=a.dtype)), sched)
    r = jnp.triu(r)
    if mode == "reduced":
        k = min(m, n)
        return q[:, :k], r[:k]
    return q, r


