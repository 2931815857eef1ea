"""Chapter 6: floating point vs jnp.finfo / np.nextafter / mpmath, summation vs math.fsum,
finite differences vs closed forms, gradient checking of fungpt.grad (and proof that it catches a
wrong gradient), LU/QR/Cholesky vs scipy/numpy, efficient matmul vs numpy and brute force."""
import math

import jax
import jax.numpy as jnp
import mpmath
import numpy as np
import pytest
import scipy.linalg
from hypothesis import given, settings
from hypothesis import strategies as st

import fungpt
from fungpt import linalg as la
from fungpt import numerics as nm
from tests.helpers import ALG, F32, F64, LAYER, close

DTYPES = [F32, F64]
SLOW_F32 = [pytest.param(F32, marks=pytest.mark.slow), F64]     # float32 twin runs with -m slow
SEEDS = st.integers(0, 2**31 - 1)


def _rand(seed, shape, dtype=F64):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


# ---------------------------------------------------------------- floating point

@pytest.mark.parametrize("dtype", [jnp.float16, jnp.bfloat16, jnp.float32, jnp.float64])
def test_float_info_matches_finfo(dtype):
    info, ref = nm.float_info(dtype), jnp.finfo(dtype)
    assert info.mantissa_bits == ref.nmant and info.exponent_bits == ref.nexp and info.bits == ref.bits
    assert info.eps == float(ref.eps) == float(nm.machine_epsilon(dtype))
    assert info.tiny == float(ref.smallest_normal)
    assert info.max == float(ref.max)
    assert info.smallest_subnormal == float(ref.smallest_subnormal)


@settings(max_examples=25, deadline=None)
@given(st.floats(allow_nan=False, width=32), st.floats(allow_nan=False, width=32))
def test_nextafter_is_bit_exact(x, y):
    for dtype, ut in ((F32, np.uint32), (F64, np.uint64)):
        xs = np.array([x, 0.0, -0.0, 1.0, -np.inf], dtype)
        ys = np.array([y, -1.0, 1.0, np.inf, 0.0], dtype)
        got = np.asarray(nm.nextafter(xs, ys))
        np.testing.assert_array_equal(got.view(ut), np.nextafter(xs, ys).view(ut))


@pytest.mark.parametrize("dtype", DTYPES)
def test_ulp_matches_spacing_and_cancellation(dtype):
    x = np.array([1.0, 3.0, 1e-3, 1e30, 123.456], dtype)
    np.testing.assert_array_equal(np.asarray(nm.ulp(x)), np.spacing(x))
    # (1 - cos x)/x^2 at small x: the naive form cancels to 0 or garbage; the stable form is exact.
    xs = np.array([1e-1, 1e-4, 1e-8], dtype)
    mpmath.mp.dps = 40
    exact = np.array([float((1 - mpmath.cos(mpmath.mpf(float(v)))) / mpmath.mpf(float(v)) ** 2) for v in xs])
    stable = np.asarray(nm.one_minus_cos_over_x2(xs), F64)
    naive = np.asarray(nm.one_minus_cos_over_x2(xs, stable=False), F64)
    close(stable, exact, 4 * np.finfo(dtype).eps)
    assert np.asarray(nm.relative_error(naive, exact))[-1] > 0.1


# ---------------------------------------------------------------- summation

@settings(max_examples=10, deadline=None)
@given(SEEDS)
def test_summation_errors_vs_fsum(seed):
    n = 4096
    x = np.random.default_rng(seed).uniform(0, 1, n).astype(F32)
    exact = math.fsum(x.astype(F64))
    eps, scale = float(np.finfo(F32).eps), float(np.sum(np.abs(x.astype(F64))))
    naive, pair, kahan = (abs(float(f(x)) - exact) for f in (nm.naive_sum, nm.pairwise_sum, nm.kahan_sum))
    assert kahan <= 2 * eps * scale                     # compensated: independent of n
    assert pair <= math.log2(n) * eps * scale           # tree: log2 n
    assert naive <= (n - 1) * eps * scale               # recursive: n


def test_kahan_beats_naive_on_a_hard_sum():
    x = np.full(100_000, 0.1, F32)
    exact = math.fsum(x.astype(F64))
    naive, kahan = float(nm.naive_sum(x)), float(nm.kahan_sum(x))
    assert abs(kahan - exact) <= 2 * np.finfo(F32).eps * exact
    assert abs(naive - exact) > 100 * abs(kahan - exact)
    close(nm.pairwise_sum(x[:5]), math.fsum(x[:5].astype(F64)), 1e-7)   # non power-of-two length


# ---------------------------------------------------------------- numerical differentiation

@pytest.mark.parametrize("dtype", DTYPES)
def test_finite_difference_error_vs_step(dtype):
    x = np.asarray(0.7, dtype)
    exact = np.cos(0.7)
    eps = float(np.finfo(dtype).eps)
    err = lambda h, s: abs(float(nm.finite_difference(jnp.sin, x, h, s)) - exact)
    h_c, h_f = nm.optimal_step(dtype, "central"), nm.optimal_step(dtype, "forward")
    close(h_c, eps ** (1 / 3), 1e-12)
    assert err(h_c, "central") <= 10 * eps ** (2 / 3)     # the bottom of the V
    assert err(h_f, "forward") <= 10 * eps ** (1 / 2)
    assert err(h_c, "central") < err(1e-1, "central")      # truncation dominates at large h
    assert err(h_c, "central") < err(eps, "central")       # rounding dominates at tiny h
    if dtype == F64:                                       # orders of accuracy: halve h, error / 2 or / 4
        close(err(1e-2, "forward") / err(5e-3, "forward"), 2, 0.05)
        close(err(1e-2, "central") / err(5e-3, "central"), 4, 0.05)
    with pytest.raises(ValueError, match="scheme"):
        nm.finite_difference(jnp.sin, x, 1e-3, "sideways")


# ---------------------------------------------------------------- gradient checking (on our autodiff)

def _loss(p):
    return jnp.sum(jnp.tanh(p["w"] @ p["x"]) ** 2) + jnp.sum(jnp.exp(-p["x"]) * p["b"])


def test_gradient_check_passes_fungpt_grad_and_catches_a_wrong_gradient():
    p = {"w": _rand(1, (3, 4)), "x": _rand(2, 4), "b": _rand(3, 4)}
    ok = nm.gradient_check(_loss, p, grad_fn=fungpt.grad)
    assert ok.rel_error < 1e-8, ok.rel_error
    close(ok.analytic, jax.flatten_util.ravel_pytree(jax.grad(_loss)(p))[0], 1e-12)
    # A gradient 0.1% wrong in one coordinate must fail loudly.
    def wrong(f):
        def g(p):
            out = fungpt.grad(f)(p)
            return {**out, "b": out["b"].at[0].multiply(1.001)}
        return g
    bad = nm.gradient_check(_loss, p, grad_fn=wrong)
    assert bad.rel_error > 1e-5, bad.rel_error


# ---------------------------------------------------------------- LU, triangular solves, Cholesky

@settings(max_examples=10, deadline=None)
@given(SEEDS)
def test_lu_pa_equals_lu(seed):
    a = _rand(seed, (5, 5))
    perm, l, u = nm.lu(a)
    close(a[np.asarray(perm)], np.asarray(l) @ np.asarray(u), 1e-12, atol=1e-12)
    _, l_ref, u_ref = scipy.linalg.lu(a)                # a = P L U
    atol = 1e-14 * np.linalg.cond(a)                        # same pivots; rounding may differ
    close(l, l_ref, 0, atol=atol)
    close(u, u_ref, 0, atol=atol * np.abs(a).max())
    assert np.all(np.abs(np.asarray(l)) <= 1 + 1e-15)       # partial pivoting bounds the multipliers
    close(np.triu(np.asarray(u)), u, 0)


@pytest.mark.parametrize("dtype", SLOW_F32)
def test_solve_triangular_and_cholesky(dtype):
    t = (np.tril(_rand(5, (5, 5))) + 4 * np.eye(5)).astype(dtype)
    b = _rand(6, (5, 2), dtype)
    for lower in (True, False):
        tt = t if lower else t.T
        close(nm.solve_triangular(tt, b, lower=lower),
               scipy.linalg.solve_triangular(tt.astype(F64), b.astype(F64), lower=lower), ALG[dtype])
    close(nm.solve_triangular(t, b[:, 0], unit_diagonal=True),
           scipy.linalg.solve_triangular(t.astype(F64), b[:, 0].astype(F64), lower=True, unit_diagonal=True),
           ALG[dtype])
    x = _rand(7, (5, 5))
    spd = (x @ x.T + 5 * np.eye(5)).astype(dtype)
    close(nm.cholesky(spd), np.linalg.cholesky(spd.astype(F64)), ALG[dtype])
    assert np.isnan(np.asarray(nm.cholesky(-spd))).any()    # not positive definite: NaN, as jnp


# ---------------------------------------------------------------- QR

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("qr", [nm.qr_householder, nm.qr_givens], ids=["householder", "givens"])
def test_qr_matches_numpy(dtype, qr):
    a = _rand(8, (6, 4), dtype)
    q, r = qr(a)
    q_ref, r_ref = np.linalg.qr(a.astype(F64))
    signs = np.sign(np.diag(np.asarray(r, F64))) * np.sign(np.diag(r_ref))
    close(np.asarray(q) * signs[None, :], q_ref, ALG[dtype], atol=ALG[dtype])
    close(np.asarray(r) * signs[:, None], r_ref, ALG[dtype], atol=ALG[dtype])
    qc, rc = qr(a, mode="complete")
    close(np.asarray(qc).T @ np.asarray(qc), np.eye(6), ALG[dtype], atol=ALG[dtype])
    close(np.asarray(qc) @ np.asarray(rc), a, ALG[dtype], atol=ALG[dtype])
    close(np.tril(np.asarray(rc), -1), 0, 0)


@settings(max_examples=10, deadline=None)
@given(SEEDS)
def test_qr_orthogonal_property(seed):
    a = _rand(seed, (6, 4))
    for qr in (nm.qr_householder, nm.qr_givens):
        q, r = qr(a)
        close(np.asarray(q).T @ np.asarray(q), np.eye(4), 1e-13, atol=1e-13)
        close(np.asarray(q) @ np.asarray(r), a, 1e-12, atol=1e-12)


def test_qr_householder_complex_and_wide():
    rng = np.random.default_rng(9)
    a = rng.standard_normal((5, 5)) + 1j * rng.standard_normal((5, 5))
    q, r = nm.qr_householder(a)
    close(np.asarray(q).conj().T @ np.asarray(q), np.eye(5), 1e-13, atol=1e-13)
    close(np.asarray(q) @ np.asarray(r), a, 1e-12, atol=1e-12)
    wide = _rand(10, (4, 6))
    q, r = nm.qr_householder(wide)
    close(np.asarray(q) @ np.asarray(r), wide, 1e-12, atol=1e-12)


# ---------------------------------------------------------------- efficient matrix operations

@pytest.mark.parametrize("dtype", SLOW_F32)
def test_blocked_matmul(dtype):
    a, b = _rand(11, (37, 20), dtype), _rand(12, (20, 29), dtype)
    close(nm.blocked_matmul(a, b, block=16), a.astype(F64) @ b.astype(F64), LAYER[dtype], atol=LAYER[dtype])
    assert nm.matmul_flops(37, 20, 29) == 2 * 37 * 20 * 29


def _all_chain_costs(dims):
    # Brute force: every full parenthesisation of the chain, by explicit recursion.
    def costs(i, j):
        if i == j:
            return [0]
        return [l + r + 2 * dims[i] * dims[k + 1] * dims[j + 1]
                for k in range(i, j) for l in costs(i, k) for r in costs(k + 1, j)]
    return costs(0, len(dims) - 2)


@settings(max_examples=15, deadline=None)
@given(st.lists(st.integers(1, 40), min_size=3, max_size=7))
def test_matrix_chain_order_is_optimal(dims):
    flops, _ = nm.matrix_chain_order(dims)
    assert flops == min(_all_chain_costs(dims))


def test_multi_dot_and_einsum_contraction_order():
    mats = [_rand(i, s) for i, s in enumerate([(10, 30), (30, 5), (5, 60), (60, 2)])]
    close(nm.multi_dot(*mats), np.linalg.multi_dot(mats), 1e-12)
    subs = "ij,jk,kl,lm->im"
    flops, _ = nm.contraction_path(subs, *(m.shape for m in mats))
    assert flops == nm.matrix_chain_order([10, 30, 5, 60, 2])[0]
    close(nm.einsum(subs, *mats), np.einsum(subs, *mats), 1e-12)
    # A general network: ours is no worse than numpy's optimal path under our cost model.
    shapes = [(4, 8, 3), (8, 5), (3, 5, 6), (6, 2)]
    ops = [_rand(20 + i, s) for i, s in enumerate(shapes)]
    subs = "abc,bd,cde,ef->af"
    ours, _ = nm.contraction_path(subs, *shapes)
    path, _ = np.einsum_path(subs, *ops, optimize="optimal")
    assert ours <= _numpy_path_cost(subs, shapes, path[1:])
    close(nm.einsum(subs, *ops), np.einsum(subs, *ops), 1e-12)


def _numpy_path_cost(subs, shapes, path):
    lhs, out = subs.split("->")
    terms = lhs.split(",")
    size = {c: d for t, s in zip(terms, shapes, strict=True) for c, d in zip(t, s, strict=True)}
    total = 0
    for pair in path:
        picked = [terms[i] for i in pair]
        rest = [t for i, t in enumerate(terms) if i not in pair]
        every = set("".join(picked))
        keep = "".join(c for c in dict.fromkeys("".join(picked)) if c in set(out).union(*rest))
        total += 2 * math.prod(size[c] for c in every)
        terms = [*rest, keep]
    return total


def test_bad_input_raises_clear_errors():
    with pytest.raises(TypeError, match="floating"):
        nm.machine_epsilon(jnp.int32)
    with pytest.raises(ValueError, match="square"):
        nm.lu(np.ones((2, 3)))
    with pytest.raises(ValueError, match="mode"):
        nm.qr_householder(np.eye(2), mode="full")
    with pytest.raises(ValueError, match="cannot multiply"):
        nm.blocked_matmul(np.ones((2, 3)), np.ones((2, 3)))
    with pytest.raises(ValueError, match="do not chain"):
        nm.multi_dot(np.ones((2, 3)), np.ones((2, 3)))
    with pytest.raises(ValueError, match="sizes"):
        nm.contraction_path("ij,jk->ik", (2, 3), (4, 5))
    with pytest.raises(TypeError, match="numeric"):
        nm.kahan_sum(np.array(["a", "b"]))


@pytest.mark.slow  # ~7 s of compiles; tests/test_roadmap.py runs ch06 in --quick mode too
def test_experiment_runs_quick(tmp_path):
    import importlib.util
    import pathlib
    path = pathlib.Path(__file__).resolve().parents[1] / "experiments" / "ch06_numerics.py"
    spec = importlib.util.spec_from_file_location("ch06_numerics", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    summary = mod.main(["--quick", "--out", str(tmp_path)])
    assert (tmp_path / "ch06_numerics.json").exists()
    assert summary["summation"]["kahan_max_rel_error"] < summary["summation"]["naive_max_rel_error"]


@pytest.mark.slow
def test_gradient_check_on_our_det_through_lu():
    a = _rand(4, (5, 5)) + 3 * np.eye(5)
    assert nm.gradient_check(la.det, a).rel_error < 1e-8      # grad_fn defaults to fungpt.grad


@pytest.mark.slow
def test_factorization_gradients_match_jnp_linalg():
    a, m = _rand(30, (5, 5)), _rand(31, (6, 4))
    spd = lambda a: a @ a.T + 5 * jnp.eye(5)
    close(jax.jit(fungpt.grad(lambda a: jnp.sum(nm.cholesky(spd(a)))))(a),
           jax.grad(lambda a: jnp.sum(jnp.linalg.cholesky(spd(a))))(a), 1e-10)
    for qr in (nm.qr_householder, nm.qr_givens):       # |R| is sign-convention free
        close(jax.jit(fungpt.grad(lambda m: jnp.sum(jnp.abs(qr(m)[1]))))(m),
               jax.grad(lambda m: jnp.sum(jnp.abs(jnp.linalg.qr(m)[1])))(m), 1e-10)
    close(jax.jit(fungpt.grad(lambda x: jnp.sum(nm.blocked_matmul(x, m, block=4))))(m.T),
           jax.grad(lambda x: jnp.sum(x @ m))(m.T), 1e-12)


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_ulp_is_np_spacing_including_zero_subnormals_and_max(dtype):
    fi = np.finfo(dtype)
    x = np.array([0.0, 1.0, -3.0, 1e-3, fi.tiny, fi.tiny / 8, fi.tiny * 3, fi.max / 3, fi.max,
                  fi.smallest_subnormal, np.inf, np.nan], dtype)
    with np.errstate(over="ignore", invalid="ignore"):
        want = np.spacing(np.abs(x))
    got = np.asarray(nm.ulp(jnp.asarray(x)))
    assert got.dtype == dtype
    # bit-exact: ulp(0) used to be 0 (the subnormal gap nextafter(0, inf) - 0 is flushed to 0 by XLA:CPU)
    np.testing.assert_array_equal(got, want)


def test_empty_inputs_follow_the_empty_sum_and_product():
    for s in (nm.naive_sum, nm.pairwise_sum, nm.kahan_sum):
        assert float(s(np.zeros(0))) == 0.0
    assert float(la.det(np.zeros((0, 0)))) == np.linalg.det(np.zeros((0, 0)))
    sign, logabs = la.slogdet(np.zeros((0, 0)))
    assert (float(sign), float(logabs)) == tuple(np.linalg.slogdet(np.zeros((0, 0))))


# ---------------------------------------------------------------- extremes (issue 17)

@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_one_minus_cos_over_x2_everywhere_vs_mpmath(dtype):
    fi = np.finfo(dtype)
    xs = np.array([0.0, float(fi.tiny), 1e-30 if dtype == np.float32 else 1e-300, 1e-8, 1e-3, 0.5, 1.0, 3.0,
                   100.0, 1e6], dtype)
    xs = np.concatenate([xs, -xs[1:]])
    def mp(x):  # 1 - cos x cancels ~2 |log10 x| digits: work with that many more
        if x == 0:
            return 0.5
        with mpmath.workdps(40 + int(2 * abs(math.log10(abs(x))))):
            return float((1 - mpmath.cos(mpmath.mpf(x))) / mpmath.mpf(x) ** 2)

    want = np.array([mp(float(x)) for x in xs])
    got = jax.jit(nm.one_minus_cos_over_x2)(xs)
    np.testing.assert_allclose(got, want, rtol=8 * fi.eps, atol=0)
    assert float(jax.grad(nm.one_minus_cos_over_x2)(dtype.type(0.0))) == 0.0    # even function: f'(0) = 0
    assert np.isnan(float(nm.one_minus_cos_over_x2(dtype.type(0.0), stable=False)))   # what the naive form gives


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_csr_matvec_matches_scipy_sparse(dtype):
    import scipy.sparse as sps
    rng = np.random.default_rng(11)
    a = (rng.standard_normal((9, 6)) * (rng.uniform(size=(9, 6)) < 0.3)).astype(dtype)
    a[4] = 0                                                    # an empty row
    a[:, 2] = 0                                                 # an empty column
    m, ref = nm.csr_from_dense(a), sps.csr_matrix(a)
    np.testing.assert_array_equal(m.indptr, ref.indptr)
    np.testing.assert_array_equal(m.indices, ref.indices)
    np.testing.assert_array_equal(m.data, ref.data)
    xs = rng.standard_normal((3, 6)).astype(dtype)
    got = jax.jit(jax.vmap(nm.csr_matvec, in_axes=(None, 0)))(m, xs)
    close(got, (ref @ xs.T).T, ALG[dtype])
    g = jax.grad(lambda x: jnp.sum(nm.csr_matvec(m, x) ** 2))(xs[0])       # d/dx |A x|^2 = 2 A^T A x
    close(g, 2 * a.T @ (a @ xs[0]), 10 * ALG[dtype])
    with pytest.raises(ValueError, match="shape"):
        nm.csr_matvec(m, np.ones(5, dtype))
