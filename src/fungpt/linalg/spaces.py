"""Chapter 2 — vector spaces: rank, span, coordinates, least squares, projections, matrix norms."""
from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from fungpt._arrays import (
    as_matrix,
    as_vector,
    check_rhs,
    concrete,
    default_rank_tol,
    eps,
)
from fungpt.linalg.eigen import svd
from fungpt.linalg.elimination import rref
from fungpt.linalg.factor import qr_householder, solve_triangular
from fungpt.linalg.vectors import vector_norm


def rank(a, tol=None, method="svd"):
    """Number of linearly independent columns. method "svd": #{sigma_i > tol}, default tol
    sigma_max max(m, n) eps (robust); "echelon": number of pivots of `rref` (cheaper, but
    rounding in ill-conditioned matrices can create or hide pivots). Scale-free: rank(c A) =
    rank(A) for any finite c != 0 across the dtype's range; an empty matrix has rank 0.
    A matrix with a NaN or inf entry has no rank: a ValueError on concrete input, -1 under
    jit/vmap (a value no rank can take, so it cannot pass for a count)."""
    a = as_matrix(a, "a")
    if method not in ("svd", "echelon"):
        raise ValueError(f"method must be 'svd' or 'echelon', got {method!r}")
    value = concrete(a)
    if value is not None and not np.all(np.isfinite(value)):
        raise ValueError("rank: the matrix has NaN or inf entries")
    if min(a.shape) == 0:
        return jnp.zeros((), jnp.int32)
    if method == "echelon":
        r = rref(a, tol)[2]
    else:
        s = svd(a, compute_uv=False)
        tol = s[0] * max(a.shape) * eps(a.dtype) if tol is None else tol
        r = jnp.sum(s > tol)
    return jnp.where(jnp.all(jnp.isfinite(a)), r, -1).astype(r.dtype)


def linearly_independent(a, tol=None):
    """True when the columns of a (d, k) are linearly independent: rank(a) == k."""
    return rank(a, tol) == as_matrix(a, "a").shape[1]


def in_span(a, v, tol=None):
    """True when v (d,) lies in the span of the columns of a (d, k): rank([a v]) == rank(a)."""
    a, v = as_matrix(a, "a"), as_vector(v, "v")
    if v.shape[0] != a.shape[0] or v.dtype != a.dtype:
        raise ValueError(f"v must be ({a.shape[0]},) {a.dtype}, got {v.shape} {v.dtype}")
    aug = jnp.concatenate([a, v[:, None]], axis=1)
    tol = default_rank_tol(aug) if tol is None else tol
    return rank(aug, tol) == rank(a, tol)


def coordinates(a, v):
    """Coordinates c of v in the basis formed by the columns of a: a c = v (least squares)."""
    return lstsq(a, v)


# --------------------------------------------------------------------------------------------
# Norms, projections, orthogonality
# --------------------------------------------------------------------------------------------

def matrix_norm(a, ord="fro"):
    """Matrix norms: "fro" sqrt(sum a_ij^2); "nuc" sum of singular values; 2 the spectral norm
    sigma_max; -2 sigma_min; 1 the max column sum of |a_ij|; inf the max row sum."""
    a = as_matrix(a, "a")
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
    a = as_matrix(a, "a")
    b = check_rhs(a, b)
    if a.shape[0] < a.shape[1]:
        raise ValueError(f"lstsq needs m >= n (an overdetermined system), got {a.shape}")
    q, r = qr_householder(a)
    return solve_triangular(r, q.T @ b, lower=False)


def project_onto_subspace(a, b):
    """Orthogonal projection of b onto the column space of A (m, n), full column rank:
    P b = Q Q^T b with A = QR (equal to A (A^T A)^-1 A^T b). b (m,) or (m, k)."""
    a = as_matrix(a, "a")
    b = check_rhs(a, b)
    q, _ = qr_householder(a)
    return q @ (q.T @ b)


