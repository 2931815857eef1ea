"""Chapter 2 — vectors and products, norms, angles, projections onto a line, Gram-Schmidt."""
from __future__ import annotations

import math

import jax.numpy as jnp
from jax import lax

from fungpt._arrays import (
    as_float,
    as_matrix,
    as_vector,
    checked_jit,
    norm2,
    set_col,
    set_row,
)

# --------------------------------------------------------------------------------------------
# Vectors and products
# --------------------------------------------------------------------------------------------

def _same(u, v, what):
    if u.shape != v.shape or u.dtype != v.dtype:
        raise ValueError(f"{what} needs equal shapes and dtypes, got {u.shape} {u.dtype}, {v.shape} {v.dtype}")


def _two_sum(a, b):
    # Knuth: s + e = a + b exactly (s = fl(a + b)), no branch on |a| >= |b|.
    s = a + b
    z = s - a
    return s, (a - (s - z)) + (b - z)


def _two_product(a, b):
    # Dekker (no FMA): split each factor into halves of p/2 bits so every partial product is exact;
    # p + e = a b exactly while |a b| < max / 2^(p/2+1) (the split of a huge factor overflows).
    factor = 2.0 ** math.ceil(jnp.finfo(a.dtype).nmant / 2) + 1

    def split(x):
        c = factor * x
        hi = c - (c - x)
        return hi, x - hi

    (ah, al), (bh, bl) = split(a), split(b)
    p = a * b
    return p, al * bl - (((p - ah * bh) - al * bh) - ah * bl)


def _dot2(u, v):
    # Ogita, Rump & Oishi (2005), Dot2: error-free products, then a cascaded error-free sum.
    p, e = _two_product(u, v)

    def step(carry, pe):
        s, c = carry
        s, q = _two_sum(s, pe[0])
        return (s, c + (q + pe[1])), None

    zero = jnp.zeros((), u.dtype)
    (s, c), _ = lax.scan(step, (zero, zero), (p, e))
    return s + c


@checked_jit('compensated')
def dot(u, v, compensated=False):
    """u . v = sum_i u_i v_i for vectors of one shape (n,); complex vectors are not conjugated
    (use dot(conj(u), v) for the Hermitian product). Plain: error <= n eps sum |u_i v_i|, so the
    relative error grows with the condition number cond = 2 sum|u_i v_i| / |u . v|.
    compensated=True: Dot2 of Ogita, Rump & Oishi (2005), real vectors: each product split exactly
    into p_i + e_i (Dekker's TwoProduct) and summed with TwoSum, as if in twice the working
    precision: relative error <= eps + O(n^2 eps^2 cond), so accurate to cond ~ 1/eps. About
    25 flops per term; valid while no |u_i|, |v_i| is within 2^(p/2) of overflow."""
    u, v = as_vector(u, "u"), as_vector(v, "v")
    _same(u, v, "dot")
    if not compensated:
        return jnp.sum(u * v)
    if jnp.issubdtype(u.dtype, jnp.complexfloating):
        raise TypeError("dot(compensated=True) takes real vectors")
    return _dot2(u, v)


@checked_jit()
def cross(u, v):
    """u x v = (u1 v2 - u2 v1, u2 v0 - u0 v2, u0 v1 - u1 v0) for 3-vectors; orthogonal to both,
    with length |u||v| sin(angle)."""
    u, v = as_vector(u, "u"), as_vector(v, "v")
    _same(u, v, "cross")
    if u.shape != (3,):
        raise ValueError(f"cross needs 3-vectors, got shape {u.shape}")
    return jnp.stack([u[1] * v[2] - u[2] * v[1], u[2] * v[0] - u[0] * v[2], u[0] * v[1] - u[1] * v[0]])


@checked_jit()
def triple_product(u, v, w):
    """u . (v x w) = det [u v w]: the signed volume of the parallelepiped spanned by three 3-vectors
    (positive for a right-handed triple, 0 when they are coplanar)."""
    return dot(u, cross(v, w))


@checked_jit('ord')
def vector_norm(x, ord=2):
    """||x||_p = (sum |x_i|^p)^(1/p) for p >= 1; ord inf / -inf: max / min |x_i|; ord 0: count of
    nonzeros. The 1 < p < inf norms scale by max|x_i| first (the 2-norm is the shared `norm2`), so
    they neither overflow nor underflow: exact to a few ulps over the dtype's whole range; an inf
    entry gives inf, a NaN entry NaN. The empty vector has norm 0 (ord -inf: an error)."""
    x = as_float(x).ravel()
    ax = jnp.abs(x)
    if ord == jnp.inf:
        return jnp.max(ax, initial=0)
    if ord == -jnp.inf:
        if x.size == 0:
            raise ValueError("vector_norm(ord=-inf) of an empty vector is undefined (min of nothing)")
        return jnp.min(ax)
    if ord == 0:
        return jnp.sum(ax != 0).astype(ax.dtype)
    if ord == 1:
        return jnp.sum(ax)
    if not isinstance(ord, (int, float)) or ord < 1:
        raise ValueError(f"ord must be 0, inf, -inf or a number >= 1, got {ord!r}")
    if ord == 2:
        return norm2(x)
    # The norm is homogeneous, so the scale s needs no gradient of its own.
    s = lax.stop_gradient(jnp.max(ax, initial=0))
    ok = (s > 0) & jnp.isfinite(s)
    safe = jnp.where(ok, s, 1)
    total = jnp.sum((ax / safe) ** ord)
    return jnp.where(ok, safe * jnp.where(ok, total, 1) ** (1.0 / ord), s)


@checked_jit()
def angle(u, v):
    """Angle between u and v in [0, pi], by Kahan's stable form
    2 atan2(|| u/|u| - v/|v| ||, || u/|u| + v/|v| ||) (accurate near 0 and pi, unlike arccos)."""
    u, v = as_vector(u, "u"), as_vector(v, "v")
    _same(u, v, "angle")
    a, b = u / vector_norm(u), v / vector_norm(v)
    return 2 * jnp.arctan2(vector_norm(a - b), vector_norm(a + b))


@checked_jit()
def project_onto_vector(b, u):
    """Orthogonal projection of b onto the line through u: (u . b / u . u) u, computed as
    (û . b) û with û = u / ||u|| (scaled norm): nothing is squared, so it holds from the smallest
    to the largest float (u . u overflows at 1e20 in float32). u = 0 has no line: NaN."""
    b, u = as_vector(b, "b"), as_vector(u, "u")
    _same(b, u, "project_onto_vector")
    uh = u / norm2(u)
    return dot(uh, b) * uh


@checked_jit()
def matmul(a, b):
    """C = A B with C_ij = sum_k A_ik B_kj (the definition, as row-times-column sums); (m, k) @ (k, n).
    For speed see `fungpt.numerics.blocked_matmul` and `@`."""
    a, b = as_matrix(a, "a"), as_matrix(b, "b")
    if a.shape[1] != b.shape[0] or a.dtype != b.dtype:
        raise ValueError(f"cannot multiply {a.shape} {a.dtype} by {b.shape} {b.dtype}")
    return jnp.sum(a[:, :, None] * b[None, :, :], axis=1)


@checked_jit()
def transpose(a):
    """(A^T)_ij = A_ji; (m, n) -> (n, m)."""
    return as_matrix(a, "a").T


@checked_jit()
def trace(a):
    """tr A = sum_i A_ii (= the sum of the eigenvalues) for square A."""
    return jnp.sum(jnp.diagonal(as_matrix(a, "a", square=True)))


@checked_jit('modified')
def gram_schmidt(a, modified=True):
    """Orthonormalise the columns of A (m, n), m >= n: A = Q R, R upper triangular.
    Classical: q_j ∝ a_j - sum_{i<j} (q_i . a_j) q_i, all projections from the original a_j;
    modified: subtract each q_i from the *updated* remaining columns as soon as it is known.
    Same in exact arithmetic; in floating point ||Q^T Q - I|| grows like eps cond(A)^2 (classical)
    versus eps cond(A) (modified)."""
    a = as_matrix(a, "a")
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
        q = set_col(q, j, qj)
        if modified:
            coeff = jnp.where(cols > j, qj @ w, 0)
            w = w - qj[:, None] * coeff[None, :]
            r = set_row(r, j, jnp.where(cols == j, norm, coeff))      # row j: q_j . w_k, k > j
        else:
            r = set_col(r, j, jnp.where(cols == j, norm, coeff))      # column j: q_i . a_j, i < j
        return w, q, r

    zeros = jnp.zeros((m, n), a.dtype)
    _, q, r = lax.fori_loop(0, n, step, (a, zeros, jnp.zeros((n, n), a.dtype)))
    return q, r


@checked_jit()
def orthogonality_loss(q):
    """||Q^* Q - I||_F: 0 for orthonormal columns; the measure of lost orthogonality."""
    q = as_matrix(q, "q")
    g = jnp.conj(q).T @ q - jnp.eye(q.shape[1], dtype=q.dtype)
    return vector_norm(g.ravel())

