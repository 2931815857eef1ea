"""Chapter 2 — linear algebra, written out: vectors, products, Gaussian elimination, inverse,
determinant, rank, eigenvalues (power / inverse iteration, Jacobi, shifted QR), diagonalisation,
SVD (one-sided Jacobi), norms, projections and Gram-Schmidt.

Every function takes one matrix (batch with `jax.vmap`), works in float32 and float64, and jits.
Loops are `lax.fori_loop`/`lax.scan` with static trip counts wherever a gradient makes sense
(det, solve, inverse, eigh, svd), so `fungpt.grad` and `jax.grad` differentiate through the
algorithm itself. Only the nonsymmetric QR algorithm (`schur`, `eig`) iterates to convergence
with `lax.while_loop` (forward-mode and values only). The LU/QR/Cholesky factorizations live in
`fungpt.numerics` (chapter 6) and are used here.
"""
from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from fungpt.numerics import (
    _as_float,
    _as_matrix,
    _as_vector,
    _householder,
    _jit,
    _safe_sqrt,
    _set_col,
    _set_row,
    lu_factor,
    qr_householder,
    solve_triangular,
)

__all__ = [
    "Eigenpair", "Solution", "angle", "coordinates", "cross", "det", "diagonalize", "dot", "eig",
    "eigh", "eigvals", "eigvalsh", "gaussian_elimination", "gram_schmidt", "hessenberg", "in_span",
    "inverse", "inverse_iteration", "linearly_independent", "lstsq", "matmul", "matrix_norm",
    "orthogonality_loss", "power_iteration", "project_onto_subspace", "project_onto_vector", "rank",
    "rref", "schur", "slogdet", "solve", "svd", "trace", "transpose", "vector_norm",
]


def _eps(dtype):
    return jnp.finfo(dtype).eps


def _complex_of(dtype):
    return {jnp.dtype("float32"): jnp.complex64, jnp.dtype("float64"): jnp.complex128}.get(
        jnp.dtype(dtype), dtype)


# --------------------------------------------------------------------------------------------
# Vectors and products
# --------------------------------------------------------------------------------------------

def _same(u, v, what):
    if u.shape != v.shape or u.dtype != v.dtype:
        raise ValueError(f"{what} needs equal shapes and dtypes, got {u.shape} {u.dtype}, {v.shape} {v.dtype}")


@_jit()
def dot(u, v):
    """u . v = sum_i u_i v_i for vectors of one shape (n,)."""
    u, v = _as_vector(u, "u"), _as_vector(v, "v")
    _same(u, v, "dot")
    return jnp.sum(u * v)


@_jit()
def cross(u, v):
    """u x v = (u1 v2 - u2 v1, u2 v0 - u0 v2, u0 v1 - u1 v0) for 3-vectors; orthogonal to both,
    with length |u||v| sin(angle)."""
    u, v = _as_vector(u, "u"), _as_vector(v, "v")
    _same(u, v, "cross")
    if u.shape != (3,):
        raise ValueError(f"cross needs 3-vectors, got shape {u.shape}")
    return jnp.stack([u[1] * v[2] - u[2] * v[1], u[2] * v[0] - u[0] * v[2], u[0] * v[1] - u[1] * v[0]])


@_jit('ord')
def vector_norm(x, ord=2):
    """||x||_p = (sum |x_i|^p)^(1/p) for p >= 1; ord inf / -inf: max / min |x_i|; ord 0: count of
    nonzeros. The 1 < p < inf norms scale by max|x_i| first, so they neither overflow nor underflow."""
    x = _as_float(x).ravel()
    ax = jnp.abs(x)
    if ord == jnp.inf:
        return jnp.max(ax)
    if ord == -jnp.inf:
        return jnp.min(ax)
    if ord == 0:
        return jnp.sum(ax != 0).astype(ax.dtype)
    if ord == 1:
        return jnp.sum(ax)
    if not isinstance(ord, (int, float)) or ord < 1:
        raise ValueError(f"ord must be 0, inf, -inf or a number >= 1, got {ord!r}")
    # The norm is homogeneous, so the scale s needs no gradient of its own.
    s = lax.stop_gradient(jnp.max(ax))
    safe = jnp.where(s == 0, 1, s)
    if ord == 2:
        return safe * _safe_sqrt(jnp.sum((ax / safe) ** 2))
    total = jnp.sum((ax / safe) ** ord)
    return jnp.where(s == 0, 0, safe * jnp.where(s == 0, 1, total) ** (1.0 / ord))


@_jit()
def angle(u, v):
    """Angle between u and v in [0, pi], by Kahan's stable form
    2 atan2(|| u/|u| - v/|v| ||, || u/|u| + v/|v| ||) (accurate near 0 and pi, unlike arccos)."""
    u, v = _as_vector(u, "u"), _as_vector(v, "v")
    _same(u, v, "angle")
    a, b = u / vector_norm(u), v / vector_norm(v)
    return 2 * jnp.arctan2(vector_norm(a - b), vector_norm(a + b))


@_jit()
def project_onto_vector(b, u):
    """Orthogonal projection of b onto the line through u: (u . b / u . u) u."""
    b, u = _as_vector(b, "b"), _as_vector(u, "u")
    _same(b, u, "project_onto_vector")
    return (dot(u, b) / dot(u, u)) * u


@_jit()
def matmul(a, b):
    """C = A B with C_ij = sum_k A_ik B_kj (the definition, as row-times-column sums); (m, k) @ (k, n).
    For speed see `fungpt.numerics.blocked_matmul` and `@`."""
    a, b = _as_matrix(a, "a"), _as_matrix(b, "b")
    if a.shape[1] != b.shape[0] or a.dtype != b.dtype:
        raise ValueError(f"cannot multiply {a.shape} {a.dtype} by {b.shape} {b.dtype}")
    return jnp.sum(a[:, :, None] * b[None, :, :], axis=1)


@_jit()
def transpose(a):
    """(A^T)_ij = A_ji; (m, n) -> (n, m)."""
    return _as_matrix(a, "a").T


@_jit()
def trace(a):
    """tr A = sum_i A_ii (= the sum of the eigenvalues) for square A."""
    return jnp.sum(jnp.diagonal(_as_matrix(a, "a", square=True)))


# --------------------------------------------------------------------------------------------
# Gaussian elimination: solve, determinant, inverse
# --------------------------------------------------------------------------------------------

class Solution(NamedTuple):
    x: jax.Array         # the solution, shape of b
    singular: jax.Array  # bool: some pivot |u_ii| <= rtol * max|u_ij| (x is then meaningless)


def _check_rhs(a, b):
    b = _as_float(b, "b")
    if b.ndim not in (1, 2) or b.shape[0] != a.shape[0]:
        raise ValueError(f"b must have shape ({a.shape[0]},) or ({a.shape[0]}, k), got {b.shape}")
    if b.dtype != a.dtype:
        raise TypeError(f"a and b must share a dtype, got {a.dtype} and {b.dtype}")
    return b


def gaussian_elimination(a, b, rtol=None):
    """Solve A x = b by Gaussian elimination with partial pivoting (P A = L U), then
    L y = P b and U x = y. Flags `singular` when min|u_ii| <= rtol max|u_ij|, rtol = n eps by
    default. a (n, n), b (n,) or (n, k). 2n^3/3 + 2n^2 k flops."""
    a = _as_matrix(a, "a", square=True)
    b = _check_rhs(a, b)
    packed, perm, _ = lu_factor(a)
    lower, upper = jnp.tril(packed, -1), jnp.triu(packed)
    y = solve_triangular(lower, b[perm], lower=True, unit_diagonal=True)
    x = solve_triangular(upper, y, lower=False)
    rtol = a.shape[0] * _eps(a.dtype) if rtol is None else rtol
    piv = jnp.abs(jnp.diagonal(upper))
    return Solution(x, jnp.min(piv) <= rtol * jnp.max(jnp.abs(upper)))


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


@_jit()
def inverse(a):
    """A^-1 by Gauss-Jordan elimination with partial pivoting on [A | I] -> [I | A^-1]:
    for each column pick the largest pivot, scale its row to 1, clear the column above and below.
    2n^3 flops. Real or complex. Singular A gives inf/NaN entries (as jnp.linalg.inv)."""
    a = _as_matrix(a, "a", square=True)
    n = a.shape[0]
    rows = jnp.arange(n)
    aug = jnp.concatenate([a, jnp.eye(n, dtype=a.dtype)], axis=1)

    def step(k, aug):
        p = jnp.argmax(jnp.where(rows >= k, jnp.abs(aug[:, k]), -1))
        aug = aug[jnp.where(rows == k, p, jnp.where(rows == p, k, rows))]
        pivot_row = aug[k] / aug[k, k]
        factors = jnp.where(rows == k, 0, aug[:, k])
        aug = aug - factors[:, None] * pivot_row[None, :]
        return _set_row(aug, k, pivot_row)

    return lax.fori_loop(0, n, step, aug)[:, n:]


# --------------------------------------------------------------------------------------------
# Row echelon form, rank, vector spaces
# --------------------------------------------------------------------------------------------

def _default_tol(a):
    return max(a.shape) * _eps(a.dtype) * jnp.max(jnp.abs(a))


@_jit()
def rref(a, tol=None):
    """Reduced row echelon form by Gauss-Jordan with partial pivoting: a column whose best
    remaining pivot is <= tol (default max(m, n) eps max|a_ij|) has no pivot.
    Returns (R (m, n), pivot_columns bool (n,), rank int)."""
    a = _as_matrix(a, "a")
    m, n = a.shape
    tol = _default_tol(a) if tol is None else tol
    rows = jnp.arange(m)

    def step(j, carry):
        r, piv, k = carry
        cand = jnp.where(rows >= k, jnp.abs(r[:, j]), -1)
        p = jnp.argmax(cand)
        ok = cand[p] > tol
        swapped = r[jnp.where(rows == k, p, jnp.where(rows == p, k, rows))]
        pivot_row = swapped[k] / jnp.where(ok, swapped[k, j], 1)
        cleared = swapped - jnp.where(rows == k, 0, swapped[:, j])[:, None] * pivot_row[None, :]
        cleared = _set_row(cleared, k, pivot_row)
        r = jnp.where(ok, cleared, r)
        return r, piv.at[j].set(ok), k + ok.astype(k.dtype)

    init = (a, jnp.zeros(n, bool), jnp.zeros((), rows.dtype))
    return lax.fori_loop(0, n, step, init)


def rank(a, tol=None, method="svd"):
    """Number of linearly independent columns. method "svd": #{sigma_i > tol}, default tol
    sigma_max max(m, n) eps (robust); "echelon": number of pivots of `rref` (cheaper, but
    rounding in ill-conditioned matrices can create or hide pivots)."""
    a = _as_matrix(a, "a")
    if method == "echelon":
        return rref(a, tol)[2]
    if method != "svd":
        raise ValueError(f"method must be 'svd' or 'echelon', got {method!r}")
    s = svd(a, compute_uv=False)
    tol = s[0] * max(a.shape) * _eps(a.dtype) if tol is None else tol
    return jnp.sum(s > tol)


def linearly_independent(a, tol=None):
    """True when the columns of a (d, k) are linearly independent: rank(a) == k."""
    return rank(a, tol) == _as_matrix(a, "a").shape[1]


def in_span(a, v, tol=None):
    """True when v (d,) lies in the span of the columns of a (d, k): rank([a v]) == rank(a)."""
    a, v = _as_matrix(a, "a"), _as_vector(v, "v")
    if v.shape[0] != a.shape[0] or v.dtype != a.dtype:
        raise ValueError(f"v must be ({a.shape[0]},) {a.dtype}, got {v.shape} {v.dtype}")
    aug = jnp.concatenate([a, v[:, None]], axis=1)
    tol = _default_tol(aug) if tol is None else tol
    return rank(aug, tol) == rank(a, tol)


def coordinates(a, v):
    """Coordinates c of v in the basis formed by the columns of a: a c = v (least squares)."""
    return lstsq(a, v)


# --------------------------------------------------------------------------------------------
# Eigenvalues: power and inverse iteration
# --------------------------------------------------------------------------------------------

class Eigenpair(NamedTuple):
    value: jax.Array    # the eigenvalue estimate (Rayleigh quotient v^T A v)
    vector: jax.Array   # (n,) unit eigenvector estimate
    history: jax.Array  # (iters,) the estimate after each iteration


def _unit(v):
    return v / vector_norm(v)


@_jit('iters')
def power_iteration(a, v0, iters=100):
    """Dominant eigenpair: v <- A v / ||A v||, lambda = v^T A v. Converges like |l2 / l1|^k for
    the largest-|l| eigenvalue l1 (v0 must not be orthogonal to its eigenvector)."""
    a = _as_matrix(a, "a", square=True)
    v0 = _as_vector(v0, "v0")

    def step(v, _):
        w = a @ v
        v = _unit(w)
        return v, v @ (a @ v)

    v, hist = lax.scan(step, _unit(v0), None, length=iters)
    return Eigenpair(v @ (a @ v), v, hist)


@_jit('iters')
def inverse_iteration(a, shift, v0, iters=20):
    """Eigenpair nearest `shift`: power iteration with (A - shift I)^-1, factored once by LU.
    Converges like |(l1 - shift) / (l2 - shift)|^k for the two eigenvalues nearest the shift."""
    a = _as_matrix(a, "a", square=True)
    v0 = _as_vector(v0, "v0")
    n = a.shape[0]
    packed, perm, _ = lu_factor(a - shift * jnp.eye(n, dtype=a.dtype))
    lower, upper = jnp.tril(packed, -1), jnp.triu(packed)

    def step(v, _):
        y = solve_triangular(lower, v[perm], lower=True, unit_diagonal=True)
        v = _unit(solve_triangular(upper, y, lower=False))
        return v, v @ (a @ v)

    v, hist = lax.scan(step, _unit(v0), None, length=iters)
    return Eigenpair(v @ (a @ v), v, hist)


# --------------------------------------------------------------------------------------------
# Symmetric eigenproblem and SVD: Jacobi rotations in round-robin order
# --------------------------------------------------------------------------------------------

def _round_robin(m):
    """Circle-method tournament on m (even) indices: m - 1 rounds of m/2 disjoint pairs that
    together meet every pair once. Returns pairs (m-1, m/2, 2) and each round's inverse order."""
    players, rounds = list(range(m)), []
    for _ in range(m - 1):
        rounds.append([(players[i], players[m - 1 - i]) for i in range(m // 2)])
        players = [players[0], players[-1], *players[1:-1]]
    pairs = np.array(rounds, dtype=np.int32).reshape(m - 1, m // 2, 2)
    order = np.concatenate([pairs[:, :, 0], pairs[:, :, 1]], axis=1)
    return pairs, np.argsort(order, axis=1).astype(np.int32)


def _jacobi_rotation(app, aqq, apq):
    # The rotation (c, s) that zeroes apq in [[app, apq], [apq, aqq]] (Golub & Van Loan 8.5.2):
    # t = tan(theta) = sign(d) 2 apq / (|d| + sqrt(d^2 + 4 apq^2)), d = aqq - app, the smaller root;
    # written without dividing by apq so converged (apq = 0) pairs give exactly c = 1, s = 0.
    d = aqq - app
    den = jnp.abs(d) + _safe_sqrt(d * d + 4 * apq * apq)
    t = jnp.where(den == 0, 0, jnp.where(d >= 0, 2, -2) * apq / jnp.where(den == 0, 1, den))
    c = 1 / jnp.sqrt(1 + t * t)
    return c, t * c


def _rotate_cols(x, p, q, inv, c, s):
    xp, xq = x[:, p], x[:, q]
    c, s = c[None, :], s[None, :]
    return jnp.concatenate([c * xp - s * xq, s * xp + c * xq], axis=1)[:, inv]


def _pad_even(n):
    return n + n % 2


@_jit('sweeps')
def eigh(a, sweeps=10):
    """Eigenvalues (ascending) and orthonormal eigenvectors of a symmetric matrix, A = V diag(w) V^T,
    by the cyclic Jacobi method: rotations J_pq zero A_pq one pair at a time,
    A <- J^T A J, V <- V J. Pairs run in round-robin order (n/2 disjoint rotations at once,
    n - 1 rounds per sweep, O(n^3) per sweep); convergence is quadratic, so a fixed number of
    `sweeps` (static, hence differentiable) reaches rounding level. Uses (A + A^T)/2.
    Returns (w (n,), V (n, n))."""
    a = _as_matrix(a, "a", square=True)
    if jnp.issubdtype(a.dtype, jnp.complexfloating):
        raise TypeError("eigh takes real symmetric matrices")
    n = a.shape[0]
    m = _pad_even(n)
    a = jnp.pad((a + a.T) / 2, ((0, m - n), (0, m - n)))   # a zero row/column makes n even
    pairs, inv = _round_robin(m)
    pairs = jnp.asarray(np.tile(pairs, (sweeps, 1, 1)))
    inv = jnp.asarray(np.tile(inv, (sweeps, 1)))

    def round_(carry, sched):
        x, v = carry
        pq, iv = sched
        p, q = pq[:, 0], pq[:, 1]
        c, s = _jacobi_rotation(x[p, p], x[q, q], x[p, q])
        x = _rotate_cols(x, p, q, iv, c, s)                  # A J
        x = _rotate_cols(x.T, p, q, iv, c, s).T              # J^T (A J)
        return (x, _rotate_cols(v, p, q, iv, c, s)), None

    (x, v), _ = lax.scan(round_, (a, jnp.eye(m, dtype=a.dtype)), (pairs, inv))
    w, v = jnp.diagonal(x)[:n], v[:n, :n]
    order = jnp.argsort(w)
    return w[order], v[:, order]


def eigvalsh(a, sweeps=10):
    """Eigenvalues of a symmetric matrix, ascending (see `eigh`)."""
    return eigh(a, sweeps)[0]


@_jit('compute_uv', 'sweeps')
def svd(a, compute_uv=True, sweeps=10):
    """Thin SVD A = U diag(s) V^T by one-sided Jacobi (Hestenes): rotate pairs of columns of
    U = A V until all are orthogonal, [[a, g], [g, b]] = Gram matrix of the pair; then
    s_j = ||u_j||, u_j /= s_j. s descending. a (m, n), k = min(m, n): U (m, k), s (k,), V^T (k, n).
    Columns with s_j = 0 are completed to an orthonormal U by a Householder QR."""
    a = _as_matrix(a, "a")
    if jnp.issubdtype(a.dtype, jnp.complexfloating):
        raise TypeError("svd takes real matrices")
    if a.shape[0] < a.shape[1]:
        res = svd(a.T, compute_uv, sweeps)
        return (res[2].T, res[1], res[0].T) if compute_uv else res
    n = a.shape[1]
    m = _pad_even(n)
    u = jnp.pad(a, ((0, 0), (0, m - n)))
    pairs, inv = _round_robin(m)
    pairs = jnp.asarray(np.tile(pairs, (sweeps, 1, 1)))
    inv = jnp.asarray(np.tile(inv, (sweeps, 1)))

    def round_(carry, sched):
        u, v = carry
        pq, iv = sched
        p, q = pq[:, 0], pq[:, 1]
        up, uq = u[:, p], u[:, q]
        c, s = _jacobi_rotation(jnp.sum(up * up, 0), jnp.sum(uq * uq, 0), jnp.sum(up * uq, 0))
        return (_rotate_cols(u, p, q, iv, c, s), _rotate_cols(v, p, q, iv, c, s)), None

    (u, v), _ = lax.scan(round_, (u, jnp.eye(m, dtype=a.dtype)), (pairs, inv))
    u, v = u[:, :n], v[:n, :n]
    s = _safe_sqrt(jnp.sum(u * u, axis=0))
    order = jnp.argsort(-s)
    s = s[order]
    if not compute_uv:
        return s
    u, v = u[:, order], v[:, order]
    u = u / jnp.where(s == 0, 1, s)[None, :]
    q, r = qr_householder(u)
    u = q * jnp.where(jnp.diagonal(r) < 0, -1, 1)[None, :]
    return u, s, v.T


# --------------------------------------------------------------------------------------------
# Nonsymmetric eigenproblem: Hessenberg form + shifted QR algorithm (complex Schur form)
# --------------------------------------------------------------------------------------------

@_jit()
def hessenberg(a):
    """A = Q H Q^* with H upper Hessenberg (zero below the first subdiagonal), by n - 2
    Householder reflections applied on both sides. Returns (H, Q); 10n^3/3 flops."""
    a = _as_matrix(a, "a", square=True)
    n = a.shape[0]
    rows = jnp.arange(n)

    def step(j, carry):
        h, q = carry
        v, beta = _householder(jnp.where(rows > j, h[:, j], 0), j + 1)
        h = h - beta * v[:, None] * (jnp.conj(v) @ h)[None, :]
        h = h - beta * (h @ v)[:, None] * jnp.conj(v)[None, :]
        q = q - beta * (q @ v)[:, None] * jnp.conj(v)[None, :]
        return h, q

    h, q = lax.fori_loop(0, max(n - 2, 0), step, (a, jnp.eye(n, dtype=a.dtype)))
    return jnp.triu(h, -1), q


def _givens_c(x, y):
    # Unitary G = [[conj(x), conj(y)], [-y, x]] / r with G [x, y]^T = [r, 0]^T, r = sqrt(|x|^2 + |y|^2).
    r = jnp.sqrt(jnp.abs(x) ** 2 + jnp.abs(y) ** 2).astype(x.dtype)
    ok = r != 0
    x, y = jnp.where(ok, x / jnp.where(ok, r, 1), 1), jnp.where(ok, y / jnp.where(ok, r, 1), 0)
    return jnp.stack([jnp.stack([jnp.conj(x), jnp.conj(y)]), jnp.stack([-y, x])])


@_jit('max_iter')
def schur(a, max_iter=None):
    """Complex Schur form A = Z T Z^* (T upper triangular, Z unitary) by the shifted QR algorithm:
    reduce to Hessenberg form, then repeat H - mu I = QR, H <- RQ + mu I (via n - 1 Givens
    rotations, O(n^2) each step) on the active unreduced block, with the Wilkinson shift mu (the
    eigenvalue of the trailing 2 x 2 nearest H_kk), an exceptional shift every 10th step, and
    deflation when |h_{k,k-1}| <= eps (|h_kk| + |h_{k-1,k-1}|). Converges quadratically;
    `lax.while_loop` (at most max_iter = 30 n steps), so not reverse-differentiable.
    Returns (T, Z), complex."""
    a = _as_matrix(a, "a", square=True)
    n = a.shape[0]
    a = a.astype(_complex_of(a.dtype))
    h, z = hessenberg(a)
    if n == 1:
        return h, z
    max_iter = 30 * n if max_iter is None else max_iter
    eps = _eps(a.dtype)
    tiny = jnp.finfo(a.dtype).tiny
    idx = jnp.arange(n - 1)
    eye = jnp.eye(n, dtype=a.dtype)

    def live(h):
        d = jnp.abs(jnp.diagonal(h))
        sub = jnp.abs(jnp.diagonal(h, -1))
        return sub > jnp.maximum(eps * (d[:-1] + d[1:]), tiny)

    def cond(carry):
        h, _, it = carry
        return (it < max_iter) & jnp.any(live(h))

    def body(carry):
        h, z, it = carry
        alive = live(h)
        # Deflate: set negligible subdiagonal entries to exactly zero.
        h = jnp.where((jnp.arange(n)[:, None] == jnp.arange(n)[None, :] + 1)
                      & ~jnp.concatenate([alive, jnp.ones(1, bool)])[None, :], 0, h)
        bottom = jnp.max(jnp.where(alive, idx, -1))           # last live subdiagonal: rows k-1, k
        k = bottom + 1
        lo = jnp.max(jnp.where(~alive & (idx < bottom), idx, -1)) + 1
        a11, a12, a21, a22 = h[k - 1, k - 1], h[k - 1, k], h[k, k - 1], h[k, k]
        half = (a11 - a22) / 2
        root = jnp.sqrt(half * half + a12 * a21)
        mu1, mu2 = (a11 + a22) / 2 + root, (a11 + a22) / 2 - root
        mu = jnp.where(jnp.abs(mu1 - a22) < jnp.abs(mu2 - a22), mu1, mu2)
        mu = jnp.where(it % 10 == 9, a22 + 0.75 * jnp.abs(a21).astype(mu.dtype), mu)   # breaks cycles
        h = h - mu * eye

        def left(i, carry):
            h, gs = carry
            active = (i >= lo) & (i < k)
            g = _givens_c(h[i, i], jnp.where(active, h[i + 1, i], 0))
            rows2 = lax.dynamic_slice(h, (i, 0), (2, n))
            h = lax.dynamic_update_slice(h, g @ rows2, (i, 0))
            return h, gs.at[i].set(g)

        h, gs = lax.fori_loop(0, n - 1, left, (h, jnp.zeros((n - 1, 2, 2), a.dtype)))

        def right(i, carry):
            h, z = carry
            gh = jnp.conj(gs[i]).T
            h = lax.dynamic_update_slice(h, lax.dynamic_slice(h, (0, i), (n, 2)) @ gh, (0, i))
            z = lax.dynamic_update_slice(z, lax.dynamic_slice(z, (0, i), (n, 2)) @ gh, (0, i))
            return h, z

        h, z = lax.fori_loop(0, n - 1, right, (h, z))
        return h + mu * eye, z, it + 1

    h, z, _ = lax.while_loop(cond, body, (h, z, jnp.zeros((), jnp.int32)))
    return jnp.triu(h), z


def eigvals(a):
    """Eigenvalues of a general square matrix (complex, in Schur order), the diagonal of T."""
    return jnp.diagonal(schur(a)[0])


def eig(a):
    """Eigenvalues w and unit eigenvectors V (columns) of a general square matrix, A V = V diag(w):
    the Schur form A = Z T Z^*, then eigenvectors of the triangular T by back substitution
    (T - w_i I) y_i = 0 with y_ii = 1, and V = Z Y. Complex results. O(n^3) after `schur`."""
    return _triangular_eigenvectors(*schur(a))


@_jit()
def _triangular_eigenvectors(t, z):
    n = t.shape[0]
    w = jnp.diagonal(t)
    smin = jnp.maximum(_eps(t.dtype) * jnp.sqrt(jnp.sum(jnp.abs(t) ** 2)), jnp.finfo(t.dtype).tiny)
    cols = jnp.arange(n)

    def step(k, y):
        j = n - 1 - k
        den = t[j, j] - w
        den = jnp.where(jnp.abs(den) < smin, smin.astype(den.dtype), den)    # repeated eigenvalues: perturb
        yj = jnp.where(cols > j, -(t[j] @ y) / den, jnp.where(cols == j, 1, 0))
        return _set_row(y, j, yj.astype(y.dtype))

    y = lax.fori_loop(0, n, step, jnp.zeros_like(t))
    v = z @ y
    return w, v / _safe_sqrt(jnp.sum(jnp.abs(v) ** 2, axis=0)).astype(v.dtype)[None, :]


def diagonalize(a):
    """A = V diag(w) V^-1 for a diagonalisable matrix: returns (w, V, V^-1), complex, V^-1 by
    Gauss-Jordan (`inverse`). A defective matrix gives an ill-conditioned or singular V."""
    w, v = eig(a)
    return w, v, inverse(v)


# --------------------------------------------------------------------------------------------
# Norms, projections, orthogonality
# --------------------------------------------------------------------------------------------

def matrix_norm(a, ord="fro"):
    """Matrix norms: "fro" sqrt(sum a_ij^2); "nuc" sum of singular values; 2 the spectral norm
    sigma_max; -2 sigma_min; 1 the max column sum of |a_ij|; inf the max row sum."""
    a = _as_matrix(a, "a")
    if ord == "fro":
        return vector_norm(a.ravel())
    if ord == "nuc":
        return jnp.sum(svd(a, compute_uv=False))
    if ord == 2:
        return svd(a, compute_uv=False)[0]
    if ord == -2:
        return svd(a, compute_uv=False)[-1]
    if ord == 1:
        return jnp.max(jnp.sum(jnp.abs(a), axis=0))
    if ord == jnp.inf:
        return jnp.max(jnp.sum(jnp.abs(a), axis=1))
    raise ValueError(f"ord must be 'fro', 'nuc', 1, 2, -2 or inf, got {ord!r}")


def lstsq(a, b):
    """Least squares min_x ||A x - b||_2 for A (m, n), m >= n, full column rank: A = QR,
    x = R^-1 Q^T b (no normal equations, whose condition number is cond(A)^2)."""
    a = _as_matrix(a, "a")
    b = _check_rhs(a, b)
    if a.shape[0] < a.shape[1]:
        raise ValueError(f"lstsq needs m >= n (an overdetermined system), got {a.shape}")
    q, r = qr_householder(a)
    return solve_triangular(r, q.T @ b, lower=False)


def project_onto_subspace(a, b):
    """Orthogonal projection of b onto the column space of A (m, n), full column rank:
    P b = Q Q^T b with A = QR (equal to A (A^T A)^-1 A^T b). b (m,) or (m, k)."""
    a = _as_matrix(a, "a")
    b = _check_rhs(a, b)
    q, _ = qr_householder(a)
    return q @ (q.T @ b)


@_jit('modified')
def gram_schmidt(a, modified=True):
    """Orthonormalise the columns of A (m, n), m >= n: A = Q R, R upper triangular.
    Classical: q_j ∝ a_j - sum_{i<j} (q_i . a_j) q_i, all projections from the original a_j;
    modified: subtract each q_i from the *updated* remaining columns as soon as it is known.
    Same in exact arithmetic; in floating point ||Q^T Q - I|| grows like eps cond(A)^2 (classical)
    versus eps cond(A) (modified)."""
    a = _as_matrix(a, "a")
    m, n = a.shape
    if m < n:
        raise ValueError(f"gram_schmidt needs m >= n, got {a.shape}")
    cols = jnp.arange(n)

    def step(j, carry):
        w, q, r = carry                                   # w: columns still being reduced
        if modified:
            v = w[:, j]
            coeff = jnp.zeros(n, a.dtype)
        else:
            coeff = q.T @ a[:, j]                         # q columns >= j are still 0
            v = a[:, j] - q @ coeff
        norm = vector_norm(v)
        qj = v / norm
        q = _set_col(q, j, qj)
        if modified:
            coeff = jnp.where(cols > j, qj @ w, 0)
            w = w - qj[:, None] * coeff[None, :]
            r = _set_row(r, j, jnp.where(cols == j, norm, coeff))      # row j: q_j . w_k, k > j
        else:
            r = _set_col(r, j, jnp.where(cols == j, norm, coeff))      # column j: q_i . a_j, i < j
        return w, q, r

    zeros = jnp.zeros((m, n), a.dtype)
    _, q, r = lax.fori_loop(0, n, step, (a, zeros, jnp.zeros((n, n), a.dtype)))
    return q, r


@_jit()
def orthogonality_loss(q):
    """||Q^* Q - I||_F: 0 for orthonormal columns; the measure of lost orthogonality."""
    q = _as_matrix(q, "q")
    g = jnp.conj(q).T @ q - jnp.eye(q.shape[1], dtype=q.dtype)
    return vector_norm(g.ravel())
