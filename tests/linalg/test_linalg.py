"""Chapter 2: our linear algebra against numpy / jnp.linalg / sympy / mpmath, closed forms and
algebraic identities; gradients by fungpt.grad against jax.grad of jnp.linalg."""
import chex
import jax
import jax.numpy as jnp
import mpmath
import numpy as np
import pytest
import sympy
from hypothesis import given, settings
from hypothesis import strategies as st

import fungpt
from fungpt import linalg as la
from tests.helpers import ALG, F32, F64, GRAD, LAYER, close

DTYPES = [F32, F64]
SLOW_F32 = [pytest.param(F32, marks=pytest.mark.slow), F64]     # float32 twin runs with -m slow
# Backward-stable algorithms: error ~ n eps cond; on well-conditioned random 5x5 inputs:
SEEDS = st.integers(0, 2**31 - 1)
EPS64 = float(np.finfo(F64).eps)

# The chapter functions jit themselves (compiled once per shape and dtype, shared with the
# experiments' --quick mode); composition with an outer jit/vmap/grad is tested explicitly below.
det_j, solve_j, inv_j, eigh_j, svd_j, rank_j = la.det, la.solve, la.inverse, la.eigh, la.svd, la.rank


def _rand(seed, shape, dtype=F64):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def _well(seed, n, dtype=F64):
    # Diagonally shifted: cond ~ 10, so tolerances need not scale with an unlucky draw.
    return (_rand(seed, (n, n)) + 3 * np.eye(n)).astype(dtype)


# ---------------------------------------------------------------- vectors

@pytest.mark.parametrize("dtype", SLOW_F32)
def test_vectors_dot_cross_norm_angle(dtype):
    u, v = _rand(1, 3, dtype), _rand(2, 3, dtype)
    close(la.dot(u, v), np.dot(u, v), LAYER[dtype])
    w = la.cross(u, v)
    close(w, np.cross(u, v), LAYER[dtype])
    close([la.dot(w, u), la.dot(w, v)], [0, 0], LAYER[dtype])            # orthogonal to both
    for ord_ in (1, 2, 3, 0, np.inf, -np.inf):
        close(la.vector_norm(u, ord_), np.linalg.norm(u, ord_), LAYER[dtype])
    close(la.angle(u, v), np.arccos(np.dot(u, v) / np.linalg.norm(u) / np.linalg.norm(v)), LAYER[dtype])
    p = la.project_onto_vector(v, u)
    close(la.dot(v - p, u), 0, LAYER[dtype])


def test_norm_does_not_overflow_and_angle_is_accurate_when_tiny():
    big = jnp.array([3e200, 4e200])
    close(la.vector_norm(big), 5e200, 1e-15)
    assert jnp.isinf(jnp.sqrt(jnp.sum(big**2)))           # the naive formula overflows
    # Nearly parallel vectors: arccos of a rounded cosine loses half the digits; Kahan's form does not.
    u, v = jnp.array([1.0, 1e-9, 0.0]), jnp.array([1.0, 0.0, 0.0])
    exact = float(mpmath.atan2(mpmath.mpf("1e-9"), 1))
    assert abs(float(la.angle(u, v)) - exact) <= 1e-15 * exact
    assert abs(np.arccos(np.dot(u, v) / np.linalg.norm(u)) - exact) > 1e-3 * exact


def test_vector_spaces_span_independence_coordinates():
    a = _rand(3, (6, 3))
    assert la.linearly_independent(a)
    dep = np.concatenate([a, a[:, :1] + 2 * a[:, 1:2]], axis=1)
    assert not la.linearly_independent(dep)
    c = np.array([1.0, -2.0, 0.5])
    assert la.in_span(a, a @ c)
    assert not la.in_span(a, _rand(4, 6))
    close(la.coordinates(a, a @ c), c, 1e-12)


# ---------------------------------------------------------------- matrices

@pytest.mark.parametrize("dtype", DTYPES)
def test_matmul_transpose_trace(dtype):
    a, b = _rand(5, (4, 3), dtype), _rand(6, (3, 2), dtype)
    close(la.matmul(a, b), a @ b, LAYER[dtype])
    close(la.transpose(a), a.T, 0)
    close(la.trace(a @ a.T), np.trace(a @ a.T), LAYER[dtype])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", [pytest.param(1, marks=pytest.mark.slow), 5])
def test_det_inverse_solve_random(dtype, n):
    a = _well(7 + n, n, dtype)
    b = _rand(8, (n, 2), dtype)
    close(det_j(a), np.linalg.det(a.astype(F64)), ALG[dtype])
    close(inv_j(a), np.linalg.inv(a.astype(F64)), ALG[dtype])
    close(solve_j(a, b), np.linalg.solve(a.astype(F64), b.astype(F64)), ALG[dtype])
    close(solve_j(a, b[:, 0]), np.linalg.solve(a.astype(F64), b[:, 0].astype(F64)), ALG[dtype])
    sign, logdet = la.slogdet(a)
    ref_sign, ref_logdet = np.linalg.slogdet(a.astype(F64))
    assert float(sign) == ref_sign
    close(logdet, ref_logdet, ALG[dtype])


def test_ill_conditioned_and_singular():
    n = 5
    hilbert = 1.0 / (np.arange(n)[:, None] + np.arange(n)[None, :] + 1)
    cond = np.linalg.cond(hilbert)                                       # ~4.8e5
    x = np.ones(n)
    got = solve_j(hilbert, hilbert @ x)
    assert np.max(np.abs(got - x)) <= 50 * cond * np.finfo(F64).eps     # forward error <~ cond eps
    close(det_j(hilbert), np.linalg.det(hilbert), 1e-8)
    close(det_j(hilbert), float(mpmath.det(mpmath.hilbert(n))), 1e-8)
    assert not la.gaussian_elimination(hilbert, x).singular
    sing = _rand(9, (n, n))
    sing[2] = sing[0] - 2 * sing[1]                                      # rank n - 1
    sol = la.gaussian_elimination(sing, x)
    assert sol.singular
    assert abs(det_j(sing)) <= 1e-12 * np.prod(np.linalg.norm(sing, axis=1))
    zero_col = np.eye(n)
    zero_col[:, 1] = 0
    assert float(det_j(zero_col)) == 0.0
    assert not np.all(np.isfinite(np.asarray(inv_j(zero_col))))         # as jnp.linalg.inv: no silent garbage


@settings(max_examples=15, deadline=None)
@given(SEEDS, SEEDS)
def test_det_identities(s1, s2):
    a, b = _rand(s1, (5, 5)), _rand(s2, (5, 5))
    # LU's determinant is accurate to ~n eps cond relative: scale by the draw's condition numbers.
    ca, cb = np.linalg.cond(a), np.linalg.cond(b)
    close(det_j(a @ b), det_j(a) * det_j(b), 100 * EPS64 * ca * cb, atol=1e-13)
    close(det_j(a.T), det_j(a), 100 * EPS64 * ca, atol=1e-13)
    close(inv_j(a) @ a, np.eye(5), 1e-8, atol=1e-12 * np.linalg.cond(a))
    close(la.trace(a), np.sum(np.linalg.eigvals(a)).real, 1e-9, atol=1e-9)


def test_vmap_batches_and_jit_does_not_retrace():
    batch = np.stack([_well(s, 5) for s in range(3)])
    rhs = _rand(10, (3, 5))
    close(jax.vmap(la.det)(batch), np.linalg.det(batch), 1e-12)
    close(jax.vmap(la.solve)(batch, rhs), np.linalg.solve(batch, rhs[..., None])[..., 0], 1e-12)
    sym = batch + batch.transpose(0, 2, 1)
    close(jax.vmap(la.eigvalsh)(sym), np.linalg.eigvalsh(sym), 1e-12)

    @jax.jit
    @chex.assert_max_traces(n=1)
    def step(a):
        return la.det(a)

    step(batch[0])
    step(batch[1])


# ---------------------------------------------------------------- gradients (fungpt.grad vs jax.grad of jnp.linalg)

GRAD_TOL = GRAD


@pytest.mark.parametrize("dtype", [pytest.param(F32, marks=pytest.mark.slow), F64])
def test_gradients_of_det_solve_inverse(dtype):
    a = _well(11, 5, dtype)
    b = _rand(12, 5, dtype)
    w = _rand(13, (5, 5), dtype)
    batched = jax.jit(jax.vmap(fungpt.grad(la.det)))(np.stack([a, a.T]))  # jit(vmap(grad))
    close(batched[0], jax.grad(jnp.linalg.det)(a), GRAD_TOL[dtype])
    close(batched[1], jax.grad(jnp.linalg.det)(a.T), GRAD_TOL[dtype])
    f_ours = lambda a, b: jnp.sum(la.solve(a, b) * w[0])
    f_ref = lambda a, b: jnp.sum(jnp.linalg.solve(a, b) * w[0])
    got = jax.jit(fungpt.grad(f_ours, (0, 1)))(a, b)
    for g, want in zip(got, jax.grad(f_ref, (0, 1))(a, b), strict=True):
        close(g, want, GRAD_TOL[dtype])
    close(jax.jit(fungpt.grad(lambda a: jnp.sum(la.inverse(a) * w)))(a),
           jax.grad(lambda a: jnp.sum(jnp.linalg.inv(a) * w))(a), GRAD_TOL[dtype])


def test_gradient_of_eigenvalues_symmetric_distinct():
    x = _rand(14, (5, 5))
    w = np.arange(1.0, 6.0)

    def ours(x):
        return jnp.sum(la.eigvalsh((x + x.T) / 2) * w)

    def ref(x):
        return jnp.sum(jnp.linalg.eigvalsh((x + x.T) / 2) * w)

    got = jax.jit(fungpt.grad(ours))(x)
    close(got, jax.grad(ref)(x), 1e-9)
    # dl_i/dA = v_i v_i^T, so the gradient is V diag(w) V^T: a closed form independent of both.
    _, vecs = np.linalg.eigh((x + x.T) / 2)
    close(got, vecs @ np.diag(w) @ vecs.T, 1e-9)


# ---------------------------------------------------------------- rank, echelon form

@pytest.mark.parametrize("dtype", SLOW_F32)
@pytest.mark.parametrize("r", [0, 2, 4])
def test_rank_low_rank_products(dtype, r):
    a = (_rand(20 + r, (6, r)) @ _rand(30 + r, (r, 4))).astype(dtype) if r else np.zeros((6, 4), dtype)
    want = np.linalg.matrix_rank(a)
    assert want == r
    assert int(rank_j(a)) == want
    assert int(rank_j(a, method="echelon")) == want
    assert int(rank_j(a.T)) == want


def test_rref_matches_sympy_exactly():
    m = [[1, 2, -1, 3], [2, 4, 0, 2], [-1, -2, 3, -7]]
    want, pivots = sympy.Matrix(m).rref()
    r, piv, k = la.rref(np.array(m, dtype=F64))
    close(r, np.array(want, dtype=F64), 1e-14, atol=1e-14)
    assert list(np.flatnonzero(np.asarray(piv))) == list(pivots)
    assert int(k) == len(pivots)


# ---------------------------------------------------------------- eigenvalues

def _spectrum_matrix(seed, vals):
    q, _ = np.linalg.qr(_rand(seed, (len(vals), len(vals))))
    return q @ np.diag(vals) @ q.T


def test_power_and_inverse_iteration():
    vals = np.array([5.0, -2.0, 1.0, 0.5, 0.1])
    a = _spectrum_matrix(40, vals)
    v0 = _rand(41, 5)
    res = la.power_iteration(a, v0, iters=200)
    close(res.value, 5.0, 1e-12)
    close(abs(np.dot(res.vector, np.linalg.eigh(a)[1][:, -1])), 1.0, 1e-10)
    # Convergence rate |l2/l1| = 0.4 per step (for the eigenvalue, squared for symmetric A).
    err = np.abs(np.asarray(res.history[:12]) - 5.0)
    assert err[11] < err[1] * 0.4 ** 8
    inv = la.inverse_iteration(a, 0.9, v0, iters=30)
    close(inv.value, 1.0, 1e-12)
    close(np.linalg.norm(a @ inv.vector - inv.value * inv.vector), 0, 1e-10)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", [5, pytest.param(6, marks=pytest.mark.slow)])
def test_eigh_matches_jnp(dtype, n):
    x = _rand(50 + n, (n, n))
    a = ((x + x.T) / 2).astype(dtype)
    w, v = eigh_j(a)
    want_w, want_v = np.linalg.eigh(a.astype(F64))
    close(w, want_w, ALG[dtype])
    signs = np.sign(np.sum(np.asarray(v, F64) * want_v, axis=0))
    close(np.asarray(v) * signs[None, :], want_v, 10 * ALG[dtype])
    close(np.asarray(v).T @ np.asarray(v), np.eye(n), ALG[dtype])


def test_eigh_repeated_and_singular():
    a = _spectrum_matrix(60, np.array([2.0, 2.0, 0.0, -1.0, 3.0]))
    w, v = eigh_j(a)
    close(w, [-1.0, 0.0, 2.0, 2.0, 3.0], 1e-13, atol=1e-13)
    close(v @ np.diag(w) @ v.T, a, 1e-13, atol=1e-13)


def _match(got, want):
    # Greedy nearest matching of two complex spectra.
    got, want = list(np.asarray(got)), list(np.asarray(want))
    err = 0.0
    for z in got:
        i = int(np.argmin([abs(z - w) for w in want]))
        err = max(err, abs(z - want.pop(i)))
    return err


@pytest.mark.parametrize("n", [pytest.param(1, marks=pytest.mark.slow), 5])
def test_eig_and_diagonalize_general(n):
    a = _rand(70 + n, (n, n))
    w, v, vinv = la.diagonalize(a)
    assert _match(w, np.linalg.eigvals(a)) <= 1e-12
    close(np.asarray(a) @ np.asarray(v), np.asarray(v) * np.asarray(w)[None, :], 1e-12, atol=1e-12)
    close(np.asarray(v) @ np.diag(np.asarray(w)) @ np.asarray(vinv), a, 1e-12, atol=1e-12)
    close(np.linalg.norm(np.asarray(v), axis=0), np.ones(n), 1e-12)


def test_schur_form_and_hard_cases():
    a = _rand(80, (5, 5))
    t, z = la.schur(a)
    close(np.tril(np.asarray(t), -1), 0, 0)
    close(np.asarray(z) @ np.asarray(t) @ np.asarray(z).conj().T, a, 1e-12, atol=1e-12)
    close(np.asarray(z).conj().T @ np.asarray(z), np.eye(5), 1e-12, atol=1e-12)
    # A cyclic permutation: the unshifted QR algorithm stalls on it; eigenvalues are the 5th roots of 1.
    perm = np.roll(np.eye(5), 1, axis=0)
    assert _match(la.diagonalize(perm)[0], np.exp(2j * np.pi * np.arange(5) / 5)) <= 1e-12
    h, q = la.hessenberg(a)
    close(np.tril(np.asarray(h), -2), 0, 0)
    close(np.asarray(q) @ np.asarray(h) @ np.asarray(q).T, a, 1e-12, atol=1e-12)


# ---------------------------------------------------------------- SVD, norms, projections, orthogonality

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(6, 4), pytest.param((3, 5), marks=pytest.mark.slow)])
def test_svd_matches_numpy(dtype, shape):
    a = _rand(90, shape, dtype)
    u, s, vt = svd_j(a)
    k = min(shape)
    chex.assert_shape([u, s, vt], [(shape[0], k), (k,), (k, shape[1])])
    close(s, np.linalg.svd(a.astype(F64), compute_uv=False), ALG[dtype])
    close(np.asarray(u) * np.asarray(s)[None, :] @ np.asarray(vt), a, ALG[dtype], atol=ALG[dtype])
    close(np.asarray(u).T @ np.asarray(u), np.eye(k), ALG[dtype], atol=ALG[dtype])
    close(np.asarray(vt) @ np.asarray(vt).T, np.eye(k), ALG[dtype], atol=ALG[dtype])


def test_svd_rank_deficient_and_graded():
    a = _rand(91, (6, 2)) @ _rand(92, (2, 4))                            # rank 2, shares svd's (6, 4) compile
    u, s, vt = svd_j(a)
    close(s, np.linalg.svd(a, compute_uv=False), 1e-12, atol=1e-12)
    close(np.asarray(u).T @ np.asarray(u), np.eye(4), 1e-12, atol=1e-12)   # completed basis
    close(np.asarray(u) * np.asarray(s)[None, :] @ np.asarray(vt), a, 1e-12, atol=1e-12)
    graded = _rand(93, (6, 4)) @ np.diag([1.0, 1e-4, 1e-8, 1e-12]) @ np.linalg.qr(_rand(94, (4, 4)))[0]
    close(svd_j(graded)[1], np.linalg.svd(graded, compute_uv=False), 1e-6, atol=1e-15)


@pytest.mark.parametrize("dtype", SLOW_F32)
def test_matrix_norms(dtype):
    a = _rand(95, (6, 4), dtype)
    for ord_ in ("fro", "nuc", 1, 2, -2, np.inf):
        close(la.matrix_norm(a, ord_), np.linalg.norm(a.astype(F64), ord_), ALG[dtype])


@pytest.mark.parametrize("dtype", SLOW_F32)
def test_least_squares_and_projection(dtype):
    a, b = _rand(96, (6, 4), dtype), _rand(97, 6, dtype)
    x = la.lstsq(a, b)
    close(x, np.linalg.lstsq(a.astype(F64), b.astype(F64), rcond=None)[0], ALG[dtype])
    p = la.project_onto_subspace(a, b)
    close(p, a.astype(F64) @ np.linalg.pinv(a.astype(F64)) @ b, ALG[dtype])
    close(la.project_onto_subspace(a, p), p, ALG[dtype])                # idempotent
    close(a.T @ (b - np.asarray(p)), np.zeros(4), ALG[dtype], atol=ALG[dtype])   # residual ⟂ range


@settings(max_examples=10, deadline=None)
@given(SEEDS, st.sampled_from([False, True]))
def test_gram_schmidt_is_a_qr(seed, modified):
    a = _rand(seed, (6, 4))
    q, r = la.gram_schmidt(a, modified=modified)
    close(q @ r, a, 1e-12, atol=1e-12)
    close(np.triu(np.asarray(r)), r, 0)
    ref_q, ref_r = np.linalg.qr(a)
    signs = np.sign(np.diag(ref_r))
    close(q, ref_q * signs[None, :], 0, atol=100 * EPS64 * np.linalg.cond(a) ** 2)   # classical's bound


def test_gram_schmidt_loss_of_orthogonality():
    n = 4
    u, _ = np.linalg.qr(_rand(98, (6, n)))
    v, _ = np.linalg.qr(_rand(99, (n, n)))
    a = u @ np.diag(np.logspace(0, -7, n)) @ v.T                         # cond(A) = 1e7
    eps, kappa = np.finfo(F64).eps, 1e7
    classical = float(la.orthogonality_loss(la.gram_schmidt(a, modified=False)[0]))
    modified = float(la.orthogonality_loss(la.gram_schmidt(a, modified=True)[0]))
    householder = float(la.orthogonality_loss(fungpt.numerics.qr_householder(a)[0]))
    assert householder <= 10 * n * eps
    assert modified <= 10 * n * eps * kappa
    assert classical > 10 * modified                                     # ~eps kappa^2 vs ~eps kappa


# ---------------------------------------------------------------- bad input

def test_bad_input_raises_clear_errors():
    with pytest.raises(ValueError, match="square"):
        la.det(np.ones((2, 3)))
    with pytest.raises(ValueError, match="2-D"):
        la.inverse(np.ones((2, 2, 2)))
    with pytest.raises(ValueError, match="3-vectors"):
        la.cross(np.ones(2), np.ones(2))
    with pytest.raises(ValueError, match="ord"):
        la.vector_norm(np.ones(2), -1)
    with pytest.raises(ValueError, match="b must have shape"):
        la.solve(np.eye(2), np.ones(3))
    with pytest.raises(TypeError, match="share a dtype"):
        la.solve(np.eye(2), np.ones(2, np.float32))
    with pytest.raises(TypeError, match="numeric"):
        la.trace(np.array([["a"]]))
    with pytest.raises(ValueError, match="method"):
        la.rank(np.eye(2), method="qr")


@pytest.mark.slow
def test_experiment_runs_quick(tmp_path):
    import importlib.util
    import pathlib
    path = pathlib.Path(__file__).resolve().parents[2] / "experiments" / "ch02_linalg.py"
    spec = importlib.util.spec_from_file_location("ch02_linalg", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    summary = mod.main(["--quick", "--out", str(tmp_path)])
    assert (tmp_path / "ch02_linalg.json").exists()
    assert summary["power_iteration"]["final_error"] < 1e-6


@pytest.mark.slow
def test_more_derivatives_through_our_algorithms():
    a, m = _rand(15, (5, 5)), _rand(16, (6, 4))
    w = jnp.arange(1.0, 5.0)
    close(jax.jit(fungpt.grad(lambda m: jnp.sum(la.svd(m, compute_uv=False) * w)))(m),
           jax.grad(lambda m: jnp.sum(jnp.linalg.svd(m, compute_uv=False) * w))(m), 1e-9)
    close(jax.jit(fungpt.hessian(la.det))(a), jax.hessian(jnp.linalg.det)(a), 1e-9, atol=1e-12)
    vec4 = lambda eigh: lambda a: jnp.sum(eigh((a + a.T) / 2)[1][:, 0] ** 4)    # sign-invariant
    close(jax.jit(fungpt.grad(vec4(la.eigh)))(a), jax.grad(vec4(jnp.linalg.eigh))(a), 1e-8, atol=1e-10)
    t = jnp.ones_like(a)
    close(fungpt.jvp(lambda a: la.slogdet(a)[1], (a,), (t,))[1],
           jax.jvp(lambda a: jnp.linalg.slogdet(a)[1], (a,), (t,))[1], 1e-10)
