"""Chapter 2 — eigenvalues and singular values: power and inverse iteration, the Jacobi
eigensolver and SVD, Hessenberg form and the shifted QR algorithm, the spectral norm."""
from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from fungpt._arrays import (
    as_matrix,
    as_vector,
    checked_jit,
    complex_of,
    eps,
    hypot,
    norm2,
    range_scale,
    set_row,
)
from fungpt.linalg.elimination import inverse
from fungpt.linalg.factor import householder, lu_factor, qr_householder, solve_triangular

# --------------------------------------------------------------------------------------------
# Eigenvalues: power and inverse iteration
# --------------------------------------------------------------------------------------------

class Eigenpair(NamedTuple):
    value: jax.Array    # the eigenvalue estimate (Rayleigh quotient v^T A v)
    vector: jax.Array   # (n,) unit eigenvector estimate
    history: jax.Array  # (iters,) the estimate after each iteration


def _unit(v):
    # v / ||v||, and v itself when ||v|| = 0 (A v = 0: the iteration stops where it is).
    n = norm2(v)
    return v / jnp.where(n == 0, 1, n).astype(v.dtype)


def _power(matvec, v0, iters):
    # Carry (v, A v): one matvec per step gives both the next iterate and its Rayleigh quotient.
    def step(carry, _):
        _, w = carry
        v = _unit(w)
        w = matvec(v)
        return (v, w), jnp.vdot(v, w)

    v = _unit(v0)
    (v, w), hist = lax.scan(step, (v, matvec(v)), None, length=iters)
    return Eigenpair(jnp.vdot(v, w), v, hist)


def power_iteration(a, v0, iters=100):
    """Dominant eigenpair: v <- A v / ||A v||, lambda = v^* A v (the Rayleigh quotient).
    Converges like |l2 / l1|^k for the largest-|l| eigenvalue l1 (v0 must not be orthogonal to its
    eigenvector). `a` is a square matrix (n, n) or a function v -> A v (a Hessian-vector product,
    W^T W v, ...); one matvec per step. A v = 0 stops the iteration (value 0, no NaN).
    Returns Eigenpair(value, vector (n,), history (iters,))."""
    if callable(a):
        return _power(a, as_vector(v0, "v0"), iters)
    return _power_matrix(a, v0, iters=iters)


@checked_jit('iters')
def _power_matrix(a, v0, iters):
    a = as_matrix(a, "a", square=True)
    v0 = as_vector(v0, "v0")
    if v0.shape != (a.shape[0],):
        raise ValueError(f"v0 must have shape ({a.shape[0]},), got {v0.shape}")
    return _power(lambda v: a @ v, v0, iters)


def spectral_norm(w, key, iters=100):
    """||W||_2 = sigma_max(W) = max ||W x|| / ||x|| by power iteration on W^T W from a random start
    (drawn with `key`): sigma = ||W v|| for the converged unit v. W (m, n). Converges from below
    like (sigma_2 / sigma_1)^(2 iters); `matrix_norm(W, 2)` is the SVD answer. W is range-scaled
    first, so the result holds over the dtype's whole range; a zero matrix gives 0. Jits, vmaps,
    differentiates (through the fixed number of iterations)."""
    w = as_matrix(w, "w")
    s = range_scale(w)
    ws = w / s
    v0 = jax.random.normal(key, (w.shape[1],), ws.real.dtype).astype(w.dtype)
    v = power_iteration(lambda v: jnp.conj(ws).T @ (ws @ v), v0, iters).vector
    return s * norm2(ws @ v)


@checked_jit('iters')
def inverse_iteration(a, shift, v0, iters=20):
    """Eigenpair nearest `shift`: power iteration with (A - shift I)^-1, factored once by LU.
    Converges like |(l1 - shift) / (l2 - shift)|^k for the two eigenvalues nearest the shift."""
    a = as_matrix(a, "a", square=True)
    v0 = as_vector(v0, "v0")
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
    # hypot, not sqrt(d^2 + 4 apq^2): in the SVD the entries are already squares (Gram entries).
    d = aqq - app
    den = jnp.abs(d) + hypot(d, 2 * apq)
    t = jnp.where(den == 0, 0, jnp.where(d >= 0, 2, -2) * apq / jnp.where(den == 0, 1, den))
    c = 1 / jnp.sqrt(1 + t * t)
    return c, t * c


def _rotate_cols(x, p, q, inv, c, s):
    xp, xq = x[:, p], x[:, q]
    c, s = c[None, :], s[None, :]
    return jnp.concatenate([c * xp - s * xq, s * xp + c * xq], axis=1)[:, inv]


def _pad_even(n):
    return n + n % 2


def _schedule(m, sweeps):
    # `sweeps` copies of the round-robin tournament on m (even) indices, as scan inputs.
    pairs, inv = _round_robin(m)
    return jnp.asarray(np.tile(pairs, (sweeps, 1, 1))), jnp.asarray(np.tile(inv, (sweeps, 1)))


@checked_jit('sweeps')
def eigh(a, sweeps=10):
    """Eigenvalues (ascending) and orthonormal eigenvectors of a symmetric matrix, A = V diag(w) V^T,
    by the cyclic Jacobi method: rotations J_pq zero A_pq one pair at a time,
    A <- J^T A J, V <- V J. Pairs run in round-robin order (n/2 disjoint rotations at once,
    n - 1 rounds per sweep, O(n^3) per sweep); convergence is quadratic, so a fixed number of
    `sweeps` (static, hence differentiable) reaches rounding level. Uses (A + A^T)/2, range-scaled
    (`range_scale`) so the squares inside the rotations neither overflow nor underflow: accurate
    for any finite float32/float64 matrix. Returns (w (n,), V (n, n)); 0 x 0 gives empty arrays."""
    a = as_matrix(a, "a", square=True)
    if jnp.issubdtype(a.dtype, jnp.complexfloating):
        raise TypeError("eigh takes real symmetric matrices")
    n = a.shape[0]
    if n == 0:
        return jnp.zeros(0, a.dtype), jnp.zeros((0, 0), a.dtype)
    m = _pad_even(n)
    scale = range_scale(a)
    a = jnp.pad((a + a.T) / (2 * scale), ((0, m - n), (0, m - n)))   # a zero row/column makes n even
    pairs, inv = _schedule(m, sweeps)

    def round_(carry, sched):
        x, v = carry
        pq, iv = sched
        p, q = pq[:, 0], pq[:, 1]
        c, s = _jacobi_rotation(x[p, p], x[q, q], x[p, q])
        x = _rotate_cols(x, p, q, iv, c, s)                  # A J
        x = _rotate_cols(x.T, p, q, iv, c, s).T              # J^T (A J)
        return (x, _rotate_cols(v, p, q, iv, c, s)), None

    (x, v), _ = lax.scan(round_, (a, jnp.eye(m, dtype=a.dtype)), (pairs, inv))
    w, v = jnp.diagonal(x)[:n] * scale, v[:n, :n]
    order = jnp.argsort(w)
    return w[order], v[:, order]


def eigvalsh(a, sweeps=10):
    """Eigenvalues of a symmetric matrix, ascending (see `eigh`)."""
    return eigh(a, sweeps)[0]


@checked_jit('compute_uv', 'sweeps')
def svd(a, compute_uv=True, sweeps=10):
    """Thin SVD A = U diag(s) V^T by one-sided Jacobi (Hestenes): rotate pairs of columns of
    U = A V until all are orthogonal, [[a, g], [g, b]] = Gram matrix of the pair; then
    s_j = ||u_j||, u_j /= s_j. s descending. a (m, n), k = min(m, n): U (m, k), s (k,), V^T (k, n).
    Columns with s_j = 0 are completed to an orthonormal U by a Householder QR. A is range-scaled
    (`range_scale`) and s_j is the scaled `norm2`, so the Gram entries neither overflow nor
    underflow: accurate for any finite float32/float64 matrix (1e-20 A or 1e20 A alike). Empty
    input gives k = 0 (empty U, s, V^T), as numpy."""
    a = as_matrix(a, "a")
    if jnp.issubdtype(a.dtype, jnp.complexfloating):
        raise TypeError("svd takes real matrices")
    if a.shape[0] < a.shape[1]:
        res = svd(a.T, compute_uv, sweeps)
        return (res[2].T, res[1], res[0].T) if compute_uv else res
    n = a.shape[1]
    if n == 0:
        s = jnp.zeros(0, a.dtype)
        return (jnp.zeros((a.shape[0], 0), a.dtype), s, jnp.zeros((0, 0), a.dtype)) if compute_uv else s
    m = _pad_even(n)
    scale = range_scale(a)
    u = jnp.pad(a / scale, ((0, 0), (0, m - n)))
    pairs, inv = _schedule(m, sweeps)

    def round_(carry, sched):
        u, v = carry
        pq, iv = sched
        p, q = pq[:, 0], pq[:, 1]
        up, uq = u[:, p], u[:, q]
        c, s = _jacobi_rotation(jnp.sum(up * up, 0), jnp.sum(uq * uq, 0), jnp.sum(up * uq, 0))
        return (_rotate_cols(u, p, q, iv, c, s), _rotate_cols(v, p, q, iv, c, s)), None

    (u, v), _ = lax.scan(round_, (u, jnp.eye(m, dtype=a.dtype)), (pairs, inv))
    u, v = u[:, :n], v[:n, :n]
    s = norm2(u, axis=0)
    order = jnp.argsort(-s)
    s = s[order]
    if not compute_uv:
        return s * scale
    u, v = u[:, order], v[:, order]
    u = u / jnp.where(s == 0, 1, s)[None, :]
    q, r = qr_householder(u)
    u = q * jnp.where(jnp.diagonal(r) < 0, -1, 1)[None, :]
    return u, s * scale, v.T


# --------------------------------------------------------------------------------------------
# Nonsymmetric eigenproblem: Hessenberg form + shifted QR algorithm (complex Schur form)
# --------------------------------------------------------------------------------------------

@checked_jit()
def hessenberg(a):
    """A = Q H Q^* with H upper Hessenberg (zero below the first subdiagonal), by n - 2
    Householder reflections applied on both sides. Returns (H, Q); 10n^3/3 flops."""
    a = as_matrix(a, "a", square=True)
    n = a.shape[0]
    rows = jnp.arange(n)
    if n <= 2:
        return a, jnp.eye(n, dtype=a.dtype)    # already Hessenberg (and 0 x 0 stays empty)

    def step(j, carry):
        h, q = carry
        v, beta = householder(jnp.where(rows > j, h[:, j], 0), j + 1)
        h = h - beta * v[:, None] * (jnp.conj(v) @ h)[None, :]
        h = h - beta * (h @ v)[:, None] * jnp.conj(v)[None, :]
        q = q - beta * (q @ v)[:, None] * jnp.conj(v)[None, :]
        return h, q

    h, q = lax.fori_loop(0, n - 2, step, (a, jnp.eye(n, dtype=a.dtype)))
    return jnp.triu(h, -1), q


def _givens_c(x, y):
    # Unitary G = [[conj(x), conj(y)], [-y, x]] / r with G [x, y]^T = [r, 0]^T, r = sqrt(|x|^2 + |y|^2).
    r = hypot(x, y).astype(x.dtype)
    ok = r != 0
    x, y = jnp.where(ok, x / jnp.where(ok, r, 1), 1), jnp.where(ok, y / jnp.where(ok, r, 1), 0)
    return jnp.stack([jnp.stack([jnp.conj(x), jnp.conj(y)]), jnp.stack([-y, x])])


def _qr_step(h, z, lo, k):
    """One QR step on the block lo..k of Hessenberg h (already shifted): h = QR by Givens rotations
    G_i on rows i, i+1 (i in [lo, k)), then h <- RQ = h G_i^* on columns i, i+1, and z <- z G_i^*."""
    n = h.shape[0]

    def left(i, carry):
        h, gs = carry
        active = (i >= lo) & (i < k)
        g = _givens_c(h[i, i], jnp.where(active, h[i + 1, i], 0))
        rows2 = lax.dynamic_slice(h, (i, 0), (2, n))
        h = lax.dynamic_update_slice(h, g @ rows2, (i, 0))
        return h, gs.at[i].set(g)

    h, gs = lax.fori_loop(0, n - 1, left, (h, jnp.zeros((n - 1, 2, 2), h.dtype)))

    def right(i, carry):
        h, z = carry
        gh = jnp.conj(gs[i]).T
        h = lax.dynamic_update_slice(h, lax.dynamic_slice(h, (0, i), (n, 2)) @ gh, (0, i))
        z = lax.dynamic_update_slice(z, lax.dynamic_slice(z, (0, i), (n, 2)) @ gh, (0, i))
        return h, z

    return lax.fori_loop(0, n - 1, right, (h, z))


@checked_jit('max_iter')
def schur(a, max_iter=None):
    """Complex Schur form A = Z T Z^* (T upper triangular, Z unitary) by the shifted QR algorithm:
    reduce to Hessenberg form, then repeat H - mu I = QR, H <- RQ + mu I (via n - 1 Givens
    rotations, O(n^2) each step) on the active unreduced block, with the Wilkinson shift mu (the
    eigenvalue of the trailing 2 x 2 nearest H_kk), an exceptional shift every 10th step, and
    deflation when |h_{k,k-1}| <= eps (|h_kk| + |h_{k-1,k-1}|). Converges quadratically;
    `lax.while_loop` (at most max_iter = 30 n steps), so not reverse-differentiable.
    A is range-scaled first (T = scale T', exact for any finite float32/float64 matrix).
    Returns (T, Z), complex; 0 x 0 gives empty ones."""
    a = as_matrix(a, "a", square=True)
    n = a.shape[0]
    scale = range_scale(a)
    a = (a / scale).astype(complex_of(a.dtype))
    h, z = hessenberg(a)
    if n <= 1:
        return h * scale.astype(h.dtype), z
    max_iter = 30 * n if max_iter is None else max_iter
    tol_eps = eps(a.dtype)
    tiny = jnp.finfo(a.dtype).tiny
    idx = jnp.arange(n - 1)
    eye = jnp.eye(n, dtype=a.dtype)

    def live(h):
        d = jnp.abs(jnp.diagonal(h))
        sub = jnp.abs(jnp.diagonal(h, -1))
        return sub > jnp.maximum(tol_eps * (d[:-1] + d[1:]), tiny)

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
        h, z = _qr_step(h - mu * eye, z, lo, k)
        return h + mu * eye, z, it + 1

    h, z, _ = lax.while_loop(cond, body, (h, z, jnp.zeros((), jnp.int32)))
    return jnp.triu(h) * scale.astype(h.dtype), z


def eigvals(a):
    """Eigenvalues of a general square matrix (complex, in Schur order), the diagonal of T."""
    return jnp.diagonal(schur(a)[0])


def eig(a):
    """Eigenvalues w and unit eigenvectors V (columns) of a general square matrix, A V = V diag(w):
    the Schur form A = Z T Z^*, then eigenvectors of the triangular T by back substitution
    (T - w_i I) y_i = 0 with y_ii = 1, and V = Z Y. Complex results. O(n^3) after `schur`."""
    return _triangular_eigenvectors(*schur(a))


@checked_jit()
def _triangular_eigenvectors(t, z):
    n = t.shape[0]
    w = jnp.diagonal(t)
    if n == 0:
        return w, t
    smin = jnp.maximum(eps(t.dtype) * norm2(t), jnp.finfo(t.dtype).tiny)
    cols = jnp.arange(n)

    def step(k, y):
        j = n - 1 - k
        den = t[j, j] - w
        den = jnp.where(jnp.abs(den) < smin, smin.astype(den.dtype), den)    # repeated eigenvalues: perturb
        yj = jnp.where(cols > j, -(t[j] @ y) / den, jnp.where(cols == j, 1, 0))
        return set_row(y, j, yj.astype(y.dtype))

    y = lax.fori_loop(0, n, step, jnp.zeros_like(t))
    v = z @ y
    return w, v / norm2(v, axis=0).astype(v.dtype)[None, :]


def diagonalize(a):
    """A = V diag(w) V^-1 for a diagonalisable matrix: returns (w, V, V^-1), complex, V^-1 by
    Gauss-Jordan (`inverse`). A defective matrix gives an ill-conditioned or singular V."""
    w, v = eig(a)
    return w, v, inverse(v)


