"""Chapter 2 at the extremes: magnitudes across each dtype's range, empty, 1x1, singular,
rank-deficient and NaN/inf inputs. Each function matches numpy in float64 (on the unscaled
matrix: singular values, eigenvalues and norms are homogeneous, so f(c A) = c f(A) exactly) or
refuses clearly. Issue 17's reproducers are the first cases of each test."""
import jax
import numpy as np
import pytest

from fungpt import linalg as la
from fungpt import numerics
from fungpt import topology as topo
from tests.helpers import ALG, F32, F64, close

DTYPES = [F32, F64]
# Scales spanning each dtype's range: squares of all but the middle one under- or overflow.
SCALES = {F32: [1e-30, 1e-20, 1e-10, 1.0, 1e10, 1e19, 1e30], F64: [1e-250, 1e-160, 1.0, 1e160, 1e250]}


def _matrix(dtype, shape=(5, 4), seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_svd_eigh_norm_rank_are_scale_free(dtype):
    a = _matrix(dtype)
    s_ref = np.linalg.svd(a.astype(F64), compute_uv=False)
    w_ref = np.linalg.eigvalsh((a.T @ a).astype(F64))
    # one compiled program for every scale (the scale is data, not a new program)
    funcs = jax.jit(lambda x, sym: (la.svd(x, compute_uv=False), la.rank(x), la.matrix_norm(x, 2), la.svd(x),
                                    la.eigvalsh(sym), la.eigvals(sym)))
    for c in SCALES[dtype]:
        ca = (a.astype(F64) * c).astype(dtype)
        sym = ((a.T @ a).astype(F64) * c).astype(dtype)
        s, rank, norm, (u, s2, vt), w, w_c = funcs(ca, sym)
        close(np.asarray(s, F64) / c, s_ref, 10 * ALG[dtype])
        assert int(rank) == 4, c
        close(float(norm) / c, s_ref[0], 10 * ALG[dtype])
        close(np.asarray((u * s2[None, :]) @ vt, F64) / c, a, 100 * ALG[dtype])
        close(np.asarray(w, F64) / c, w_ref, 100 * ALG[dtype])
        close(np.sort(np.real(np.asarray(w_c, np.complex128))) / c, w_ref, 100 * ALG[dtype])


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_qr_and_lstsq_are_scale_free(dtype):
    a = _matrix(dtype)
    b = _matrix(dtype, (5,), seed=1)
    x_ref = np.linalg.lstsq(a.astype(F64), b.astype(F64), rcond=None)[0]
    for c in SCALES[dtype]:
        ca = (a.astype(F64) * c).astype(dtype)
        for qr in (la.qr_householder, la.qr_givens):
            q, r = qr(ca)
            close(np.asarray(q @ r, F64) / c, a, 100 * ALG[dtype])
            close(np.asarray(q.T @ q, F64), np.eye(4), 100 * ALG[dtype])
        cb = (b.astype(F64) * c).astype(dtype)
        close(np.asarray(la.lstsq(ca, cb), F64), x_ref, 1000 * ALG[dtype])


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_vector_norms_projections_and_distances_across_the_range(dtype):
    tiny_pair = np.array([3, 4], dtype) * (1e-25 if dtype == F32 else 1e-170)
    assert float(la.vector_norm(tiny_pair)) == pytest.approx(5 * float(tiny_pair[0]) / 3, rel=1e-6)
    assert float(topo.euclidean(tiny_pair, np.zeros(2, dtype))) == pytest.approx(float(tiny_pair[0]) * 5 / 3, rel=1e-6)
    for c in SCALES[dtype]:
        u = np.array([c, c], dtype)
        b = np.array([c, 0], dtype)
        close(np.asarray(la.project_onto_vector(b, u), F64) / c, [0.5, 0.5], ALG[dtype])
        close(float(topo.cosine_distance(b, u)), 1 - np.sqrt(0.5), ALG[dtype])
        close(float(la.angle(b, u)), np.pi / 4, ALG[dtype])
        close(float(la.vector_norm(b - u)) / c, 1.0, ALG[dtype])
    assert float(la.vector_norm(np.array([np.inf, 1], dtype))) == np.inf
    assert float(la.vector_norm(np.array([np.inf, 1], dtype), 3)) == np.inf
    assert np.isnan(float(la.vector_norm(np.array([np.nan, 1], dtype))))
    assert float(la.vector_norm(np.zeros(0, dtype))) == 0.0
    tiny = 1e-30 if dtype == F32 else 1e-200
    g = jax.grad(lambda x: la.vector_norm(x))(np.array([3 * tiny, 4 * tiny], dtype))
    close(np.asarray(g, F64), [0.6, 0.8], ALG[dtype])


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_spectral_norm_is_one_function_and_zero_on_zero(dtype, key):
    from fungpt import optim
    assert topo.spectral_norm is la.spectral_norm is optim.spectral_norm
    assert float(la.spectral_norm(np.zeros((3, 2), dtype), key)) == 0.0
    a = _matrix(dtype, (4, 3))
    s_ref = np.linalg.norm(a.astype(F64), 2)
    for c in SCALES[dtype]:
        got = float(la.spectral_norm((a.astype(F64) * c).astype(dtype), key, iters=300))
        close(got / c, s_ref, 10 * ALG[dtype])


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_empty_inputs_follow_numpy(dtype):
    e0, e03 = np.zeros((0, 0), dtype), np.zeros((0, 3), dtype)
    w, v = la.eigh(e0)
    assert w.shape == (0,) and v.shape == (0, 0)
    assert la.solve(e0, np.zeros(0, dtype)).shape == (0,)
    assert la.cholesky(e0).shape == (0, 0) and la.inverse(e0).shape == (0, 0)
    assert float(la.det(e0)) == 1.0                              # the empty product
    assert [x.shape for x in la.svd(e03)] == [x.shape for x in np.linalg.svd(e03, full_matrices=False)]
    assert la.svd(e03, compute_uv=False).shape == (0,)
    for qr in (la.qr_householder, la.qr_givens):
        assert [x.shape for x in qr(e03)] == [x.shape for x in np.linalg.qr(e03)]
        assert [x.shape for x in qr(e03.T)] == [x.shape for x in np.linalg.qr(e03.T)]
        assert [x.shape for x in qr(e03.T, mode="complete")] == [x.shape for x in np.linalg.qr(e03.T, mode="complete")]
    assert la.eigvals(e0).shape == (0,)
    assert [x.shape for x in la.hessenberg(e0)] == [(0, 0), (0, 0)]
    r, piv, rank = la.rref(e03)
    assert r.shape == (0, 3) and piv.shape == (3,) and not np.any(piv) and int(rank) == 0
    assert int(la.rank(e03)) == np.linalg.matrix_rank(e03) == 0


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_one_by_one_singular_and_rank_deficient(dtype):
    a11 = np.array([[-3.0]], dtype)
    close(np.asarray(la.svd(a11, compute_uv=False)), [3.0], ALG[dtype])
    close(np.asarray(la.inverse(a11)), [[-1 / 3]], ALG[dtype])
    close(np.asarray(la.eigvals(a11)), [-3.0], ALG[dtype])
    close(np.asarray(la.eigvalsh(a11)), [-3.0], ALG[dtype])
    rng = np.random.default_rng(3)
    low = (rng.standard_normal((6, 2)) @ rng.standard_normal((2, 5))).astype(dtype)   # rank 2
    for c in SCALES[dtype]:
        assert int(la.rank((low.astype(F64) * c).astype(dtype))) == 2, c
    sing = np.array([[1, 2], [2, 4]], dtype)
    assert bool(la.gaussian_elimination(sing, np.ones(2, dtype)).singular)
    assert float(la.det(sing)) == 0.0
    assert int(la.rank(sing)) == 1 and int(la.rank(sing, method="echelon")) == 1


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_nan_and_inf_entries_refuse_or_propagate(dtype):
    bad = np.array([[1, np.nan], [0, 1]], dtype)
    with pytest.raises(ValueError, match="NaN or inf"):
        la.rank(bad)
    assert int(jax.jit(la.rank)(bad)) == -1                     # under jit: a value no rank takes
    assert int(jax.jit(la.rank)(np.where(np.isnan(bad), np.inf, bad))) == -1
    assert np.all(np.isnan(np.asarray(la.svd(bad, compute_uv=False))))
    assert np.all(np.isnan(np.asarray(la.eigvalsh(bad))))
    assert np.isnan(float(la.vector_norm(bad.ravel())))


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_compensated_dot_is_accurate_to_cond_one_over_eps_vs_mpmath(dtype):
    import mpmath
    mpmath.mp.prec = 4000                   # every product and partial sum of these floats is exact
    rng = np.random.default_rng(0)
    eps = float(np.finfo(dtype).eps)
    dot2 = jax.jit(lambda x, y: la.dot(x, y, compensated=True))
    worst_naive = 0.0
    for log2_cond in ([10, 30, 45] if dtype == F32 else [20, 60, 100]):
        x, y, exact_gen, cond_gen = numerics.ill_conditioned_dot(24, log2_cond, rng, dtype)  # GenDot
        exact = mpmath.fsum(mpmath.mpf(float(a)) * mpmath.mpf(float(b)) for a, b in zip(x, y, strict=True))
        cond = float(2 * mpmath.fsum(abs(mpmath.mpf(float(a)) * float(b)) for a, b in zip(x, y, strict=True))
                     / abs(exact))
        assert x.dtype == y.dtype == dtype and exact_gen == float(exact) and cond_gen == pytest.approx(cond, rel=1e-12)
        assert 2.0 ** (log2_cond - 8) < cond < 2.0 ** (log2_cond + 8)   # the condition number it was asked for
        err = abs(float(dot2(x, y)) - float(exact)) / abs(float(exact))
        assert err <= 2 * eps + 24**2 * eps**2 * cond, (cond, err)       # the Dot2 error bound
        worst_naive = max(worst_naive, abs(float(la.dot(x, y)) - float(exact)) / abs(float(exact)))
    assert worst_naive > 1e3 * eps                                       # the plain sum really fails here
    x, y = np.array([1e8, 1.0, -1e8], dtype), np.array([1.0, 1.0, 1.0], dtype)
    assert float(dot2(x, y)) == 1.0
    assert float(la.dot(x, y)) == (0.0 if dtype == F32 else 1.0)       # 1e8 + 1 rounds to 1e8 in float32
    with pytest.raises(TypeError, match="real"):
        la.dot(np.ones(2, np.complex64), np.ones(2, np.complex64), compensated=True)


def test_triple_product_is_the_signed_volume_and_complex_dot_does_not_conjugate():
    rng = np.random.default_rng(4)
    u, v, w = rng.standard_normal((3, 3))
    close(float(la.triple_product(u, v, w)), np.linalg.det(np.stack([u, v, w])), ALG[F64])
    close(float(la.triple_product(v, u, w)), -np.linalg.det(np.stack([u, v, w])), ALG[F64])   # orientation
    assert float(la.triple_product(u, v, u + 2 * v)) == pytest.approx(0.0, abs=1e-12)          # coplanar
    a, b = rng.standard_normal((2, 4)) + 1j * rng.standard_normal((2, 4))
    close(complex(la.dot(a, b)), complex(np.dot(a, b)), ALG[F64])                # bilinear, as numpy.dot
    close(complex(la.dot(np.conj(a), b)), complex(np.vdot(a, b)), ALG[F64])      # the Hermitian product
