"""Chapter 2 — linear algebra, written out: vectors, products, Gaussian elimination, inverse,
determinant, rank, the LU / QR / Cholesky factorizations, eigenvalues (power / inverse iteration,
Jacobi, shifted QR), diagonalisation, SVD (one-sided Jacobi), norms, projections, Gram-Schmidt.

Every function takes one matrix (batch with `jax.vmap`), works in float32 and float64, and jits.
Loops are `lax.fori_loop`/`lax.scan` with static trip counts wherever a gradient makes sense
(det, solve, inverse, eigh, svd), so `fungpt.grad` and `jax.grad` differentiate through the
algorithm itself. Only the nonsymmetric QR algorithm (`schur`, `eig`) iterates to convergence
with `lax.while_loop` (forward-mode and values only). Every 2-norm is scaled before squaring
(`fungpt._arrays.norm2`), and `eigh`/`svd` scale the matrix by a power of two, so results hold
across the dtype's whole range. Modules: `vectors`, `factor`, `elimination`, `eigen`, `spaces`.
"""
from fungpt.linalg.eigen import (
    Eigenpair,
    diagonalize,
    eig,
    eigh,
    eigvals,
    eigvalsh,
    hessenberg,
    inverse_iteration,
    power_iteration,
    schur,
    spectral_norm,
    svd,
)
from fungpt.linalg.elimination import Solution, det, gaussian_elimination, inverse, rref, slogdet, solve
from fungpt.linalg.factor import LU, cholesky, householder, lu, lu_factor, qr_givens, qr_householder, solve_triangular
from fungpt.linalg.spaces import (
    coordinates,
    in_span,
    linearly_independent,
    lstsq,
    matrix_norm,
    project_onto_subspace,
    rank,
)
from fungpt.linalg.vectors import (
    angle,
    cross,
    dot,
    gram_schmidt,
    matmul,
    orthogonality_loss,
    project_onto_vector,
    trace,
    transpose,
    triple_product,
    vector_norm,
)

__all__ = [
    "LU", "Eigenpair", "Solution", "angle", "cholesky", "coordinates", "cross", "det", "diagonalize", "dot",
    "eig", "eigh", "eigvals", "eigvalsh", "gaussian_elimination", "gram_schmidt", "hessenberg",
    "householder", "in_span", "inverse", "inverse_iteration", "linearly_independent", "lstsq", "lu",
    "lu_factor", "matmul", "matrix_norm", "orthogonality_loss", "power_iteration", "project_onto_subspace",
    "project_onto_vector", "qr_givens", "qr_householder", "rank", "rref", "schur", "slogdet", "solve",
    "solve_triangular", "spectral_norm", "svd", "trace", "transpose", "triple_product", "vector_norm",
]
