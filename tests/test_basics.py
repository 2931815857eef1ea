"""Chapter 1: exponents, logs and log-space arithmetic vs mpmath/scipy at extreme inputs; root
finding vs scipy.optimize; polynomials vs numpy; inequalities as property tests over our functions."""
import math

import jax
import jax.numpy as jnp
import mpmath
import numpy as np
import pytest
import scipy.optimize
import scipy.special
import scipy.stats
from hypothesis import given, settings
from hypothesis import strategies as st

import fungpt
from fungpt import basics as bm
from fungpt import linalg as la
from tests.helpers import F32, F64, LAYER, close

DTYPES = [F32, F64]
EPS = {F32: float(np.finfo(F32).eps), F64: float(np.finfo(F64).eps)}
mpmath.mp.dps = 50


def _mp(f, xs):
    return np.array([float(f(mpmath.mpf(float(x)))) for x in np.ravel(xs)])


# ---------------------------------------------------------------- arithmetic, exponents, logarithms

@settings(max_examples=20, deadline=None)
@given(st.floats(0.5, 2.0), st.integers(-200, 200))
def test_ipow_by_squaring(x, n):
    got = float(bm.ipow(jnp.float64(x), jnp.int32(n)))
    want = float(mpmath.mpf(x) ** n)
    # Squaring doubles a relative error, so the bound is ~|n| eps (as for |n| - 1 multiplies),
    # reached with only ~2 log2|n| multiplies.
    assert abs(got - want) <= (abs(n) + 1) * EPS[F64] * abs(want)


def test_ipow_gradient_log_base_gcd_lcm():
    g = jax.jit(fungpt.grad(bm.ipow))(jnp.float64(1.3), jnp.int32(7))
    close(g, 7 * 1.3**6, 1e-13)
    close(bm.log_base(jnp.array([8.0, 1000.0]), 2.0), [3.0, math.log2(1000.0)], 1e-15)
    a = np.array([12, 0, 17, -24, 0, 7919 * 104729], np.int64)
    b = np.array([18, 5, 0, 36, 0, 7919 * 3], np.int64)
    np.testing.assert_array_equal(bm.gcd(a, b), np.gcd(a, b))
    np.testing.assert_array_equal(bm.lcm(a[:4], b[:4]), np.lcm(a[:4], b[:4]))


# ---------------------------------------------------------------- stable log-space arithmetic

EXTREME = np.array([-1000.0, -40.0, -1.0, -1e-8, 0.0, 1e-8, 1.0, 40.0, 1000.0])


@pytest.mark.parametrize("dtype", DTYPES)
def test_softplus_sigmoid_logsigmoid_vs_mpmath(dtype):
    x = EXTREME.astype(dtype)
    tol = 4 * EPS[dtype]
    close(bm.softplus(x), _mp(lambda t: mpmath.log1p(mpmath.exp(t)), x), tol, atol=0)
    close(bm.sigmoid(x), _mp(lambda t: 1 / (1 + mpmath.exp(-t)), x), tol, atol=0)
    close(bm.log_sigmoid(x), _mp(lambda t: -mpmath.log1p(mpmath.exp(-t)), x), tol, atol=0)
    assert np.all(np.isfinite(np.asarray(bm.softplus(x))))


@pytest.mark.parametrize("dtype", DTYPES)
def test_log1mexp_vs_mpmath_and_naive_fails(dtype):
    x = -np.array([1e-20, 1e-8, 0.1, 0.5, 0.7, 1.0, 10.0, 50.0], dtype)
    want = _mp(lambda t: mpmath.log(1 - mpmath.exp(t)), x)
    close(bm.log1mexp(x), want, 8 * EPS[dtype], atol=0)
    with np.errstate(divide="ignore"):
        naive = np.log(1 - np.exp(x.astype(F64)))             # -inf at x = -1e-20: every digit lost
    assert not np.isfinite(naive[0])


@pytest.mark.parametrize("dtype", DTYPES)
def test_logsumexp_and_log_add_exp(dtype):
    x = np.array([[1000.0, 1000.0, -1000.0], [-np.inf, -np.inf, -np.inf], [0.0, -30.0, 5.0]], dtype)
    with np.errstate(divide="ignore"):
        close(bm.logsumexp(x, axis=1), scipy.special.logsumexp(x.astype(F64), axis=1), 4 * EPS[dtype])
    close(bm.logsumexp(x[0]), 1000 + math.log(2), 4 * EPS[dtype])
    close(bm.logsumexp(x[2:], axis=1, keepdims=True), scipy.special.logsumexp(x[2:], axis=1, keepdims=True),
           4 * EPS[dtype])
    a = np.array([1000.0, -np.inf, -np.inf, 3.0, np.inf], dtype)
    b = np.array([999.0, -np.inf, 2.0, 3.0, np.inf], dtype)
    close(bm.log_add_exp(a, b), np.logaddexp(a.astype(F64), b.astype(F64)), 4 * EPS[dtype])


def test_log_space_gradients_match_closed_forms():
    x = jnp.array([3.0, -1.0, 0.5, 2.0])
    close(jax.jit(fungpt.grad(bm.logsumexp))(x), scipy.special.softmax(np.asarray(x)), 1e-14)
    grid = jnp.array([-30.0, -1.0, 0.0, 1.0, 30.0])
    close(jax.jit(jax.vmap(fungpt.grad(bm.softplus)))(grid), scipy.special.expit(np.asarray(grid)), 1e-14)
    close(jax.vmap(jax.grad(bm.softplus))(grid), scipy.special.expit(np.asarray(grid)), 1e-14)
    # d/dx log(1 - e^x) = -e^x / (1 - e^x) = -1 / expm1(-x)
    xs = jnp.array([-1e-10, -0.5, -20.0])
    close(jax.jit(jax.vmap(fungpt.grad(bm.log1mexp)))(xs), -1 / np.expm1(-np.asarray(xs)), 1e-12)


# ---------------------------------------------------------------- solving equations

CUBIC = lambda x: x**3 - 2 * x - 5                                   # Wallis's example


def test_root_finders_agree_with_brentq():
    want = scipy.optimize.brentq(lambda x: x**3 - 2 * x - 5, 2, 3, xtol=1e-15)
    b = jax.jit(lambda lo, hi: bm.bisect(CUBIC, lo, hi))(2.0, 3.0)
    n = jax.jit(lambda x0: bm.newton(CUBIC, x0))(2.0)
    s = jax.jit(lambda x0, x1: bm.secant(CUBIC, x0, x1))(2.0, 3.0)
    for r in (b, n, s):
        assert bool(r.converged)
        close(r.root, want, 1e-14)
    assert int(n.iterations) < int(s.iterations) < int(b.iterations)   # order 2 < 1.618 < 1
    unbracketed = bm.bisect(CUBIC, 3.0, 4.0)
    assert not bool(unbracketed.converged) and np.isnan(float(unbracketed.root))


def test_newton_vmaps_over_parameters_and_invert():
    a = jnp.array([2.0, 9.0, 1e-6, 1e6])
    roots = jax.jit(jax.vmap(lambda a: bm.newton(lambda x: x * x - a, jnp.maximum(a, 1.0)).root))(a)
    close(roots, np.sqrt(np.asarray(a)), 1e-14)
    close(jax.vmap(lambda y: bm.invert(jnp.exp, y, -20.0, 20.0))(jnp.array([0.5, 2.0, 1e5])),
           np.log([0.5, 2.0, 1e5]), 1e-13)
    assert np.isnan(float(bm.invert(jnp.exp, -1.0, -20.0, 20.0)))    # outside the range


@pytest.mark.parametrize("dtype", DTYPES)
def test_quadratic_formula_without_cancellation(dtype):
    coeffs = [(1.0, 1e6, 1.0), (1.0, -3.0, 2.0), (2.0, 0.0, 8.0), (1.0, -1e4, 1e-4)]
    for a, b, c in coeffs:
        got = np.sort_complex(np.asarray(bm.quadratic_roots(*(np.asarray(v, dtype) for v in (a, b, c)))))
        sd = mpmath.sqrt(mpmath.mpf(b) ** 2 - 4 * mpmath.mpf(a) * c)
        want = np.sort_complex(np.array([complex((-b + s * sd) / (2 * mpmath.mpf(a))) for s in (1, -1)]))
        close(np.abs(got - want) / np.abs(want), 0, 0, atol=4 * EPS[dtype])
    # The textbook formula loses the small root of x^2 + 1e6 x + 1 to cancellation:
    small = (-1e6 + math.sqrt(1e12 - 4)) / 2
    assert abs(small - (-1e-6)) / 1e-6 > 1e-6


# ---------------------------------------------------------------- polynomials

@settings(max_examples=15, deadline=None)
@given(st.integers(0, 2**31 - 1))
def test_polynomial_arithmetic_vs_numpy(seed):
    rng = np.random.default_rng(seed)
    a, b = rng.standard_normal(6), rng.standard_normal(3)
    x = rng.standard_normal(4)
    # Horner is backward stable: |error| <= 2n eps sum |c_k| |x|^k (the condition of the sum).
    bound = 12 * 2.3e-16 * np.polyval(np.abs(a), np.abs(x))
    assert np.all(np.abs(np.asarray(bm.polyval(a, x)) - np.polyval(a, x)) <= bound)
    close(bm.polymul(a, b), np.polymul(a, b), 1e-13, atol=1e-13)
    close(bm.polyder(a), np.polyder(a), 1e-15)
    q, r = (np.asarray(v) for v in bm.polydiv(a, b))
    q_ref, r_ref = np.polydiv(a, b)
    # Long division subtracts q_i b from the remainder: rounding is relative to |q| |b|, which a
    # small leading b_0 makes large.
    atol = 1e-14 * np.abs(q).max() * np.abs(b).sum() + 1e-14
    close(q, q_ref, 1e-10, atol=atol)
    close(r, np.pad(r_ref, (2 - len(r_ref), 0)), 0, atol=atol)
    close(np.polyadd(np.polymul(q, b), r), a, 0, atol=atol)            # a = q b + r


def _match(got, want):
    got, want = list(np.asarray(got)), list(np.asarray(want))
    return max(abs(z - want.pop(int(np.argmin([abs(z - w) for w in want])))) for z in got)


def test_polyroots_companion_and_factorization():
    c = np.array([2.0, -3.0, 0.0, 5.0, -1.0, 4.0])                     # degree 5: real + complex roots
    assert _match(bm.polyroots(c), np.roots(c)) <= 1e-12
    close(np.poly(np.asarray(bm.companion(c))), c / c[0], 1e-12)       # charpoly of the companion
    lead, factors = bm.polyfactor(c)
    prod = np.array([float(lead)])
    for row in np.asarray(factors):
        prod = np.polymul(prod, row)
    close(np.trim_zeros(prod, "f"), c, 1e-10, atol=1e-10)
    for a2, a1, a0 in np.asarray(factors):                              # irreducible over the reals
        if a2 != 0:
            assert a1 * a1 - 4 * a2 * a0 < 0
    # x^5 - 1 = (x - 1)(x^2 - 2 cos(2 pi/5) x + 1)(x^2 - 2 cos(4 pi/5) x + 1)
    _, f = bm.polyfactor(np.array([1.0, 0, 0, 0, 0, -1]))
    used = sorted(tuple(r) for r in np.asarray(f) if tuple(r) != (0, 0, 1))
    want = sorted([(0, 1, -1), (1, -2 * math.cos(2 * math.pi / 5), 1), (1, -2 * math.cos(4 * math.pi / 5), 1)])
    close(used, want, 1e-12, atol=1e-12)


# ---------------------------------------------------------------- functions and graphs

def test_compose_graph_invert():
    f = bm.compose(jnp.exp, jnp.sin, lambda x: 2 * x)
    close(f(0.3), math.exp(math.sin(0.6)), 1e-15)
    x, y = bm.graph(bm.softplus, -3.0, 3.0, 7)
    close(x, np.linspace(-3, 3, 7), 1e-15)
    close(y, np.logaddexp(0, np.linspace(-3, 3, 7)), 1e-14)
    # An inverse function undoes the function on its range.
    xs = jnp.array([-2.0, 0.1, 1.5])
    close(jax.vmap(lambda v: bm.invert(bm.softplus, bm.softplus(v), -10.0, 10.0))(xs), xs, 1e-12)


# ---------------------------------------------------------------- inequalities, absolute value

POSITIVE = st.lists(st.floats(1e-3, 1e3), min_size=2, max_size=6)


@settings(max_examples=20, deadline=None)
@given(POSITIVE)
def test_power_means_am_gm_hm(xs):
    x = np.array(xs)
    hm, gm, am, qm = (float(bm.power_mean(x, p)) for p in (-1, 0, 1, 2))
    close([hm, gm, am], [scipy.stats.hmean(x), scipy.stats.gmean(x), np.mean(x)], 1e-12)
    slack = 1e-12 * am
    assert min(x) - slack <= hm <= gm + slack <= am + 2 * slack <= qm + 3 * slack <= max(x) + 4 * slack


@settings(max_examples=20, deadline=None)
@given(st.lists(st.floats(-50, 50), min_size=3, max_size=3), st.lists(st.floats(-50, 50), min_size=3, max_size=3))
def test_cauchy_schwarz_triangle_jensen(us, vs):
    u, v = np.array(us), np.array(vs)
    nu, nv = float(la.vector_norm(u)), float(la.vector_norm(v))
    slack = 1e-12 * (1 + nu * nv)
    assert abs(float(la.dot(u, v))) <= nu * nv + slack                             # Cauchy-Schwarz
    assert float(la.vector_norm(u + v)) <= nu + nv + 1e-12 * (1 + nu + nv)          # triangle
    assert abs(float(np.sum(u + v))) <= float(la.vector_norm(u, 1) + la.vector_norm(v, 1)) + 1e-12
    # Jensen for the convex softplus and logsumexp: f(mean) <= mean f.
    assert float(bm.softplus(np.mean(u))) <= float(np.mean(np.asarray(bm.softplus(u)))) + 1e-12
    w = np.stack([u, v])
    assert float(bm.logsumexp(w.mean(0))) <= float(np.mean(np.asarray(bm.logsumexp(w, axis=1)))) + 1e-9


@settings(max_examples=20, deadline=None)
@given(*(st.floats(lo, 5, allow_subnormal=False) for lo in (-5, -5, -2)))  # XLA CPU flushes subnormals
def test_abs_inequality_solution_set(a, b, c):
    lo, hi, nonempty = (np.asarray(v) for v in bm.solve_abs_inequality(a, b, c))
    xs = np.linspace(-50, 50, 2001)
    inside = np.abs(a * xs - b) <= c
    predicted = bool(nonempty) & (xs >= lo) & (xs <= hi)
    boundary = np.isclose(xs, lo) | np.isclose(xs, hi)
    np.testing.assert_array_equal(predicted[~boundary], inside[~boundary])


def test_bad_input_raises_clear_errors():
    with pytest.raises(TypeError, match="integer exponent"):
        bm.ipow(2.0, 1.5)
    with pytest.raises(TypeError, match="integer"):
        bm.gcd(np.array([1.0]), np.array([2.0]))
    with pytest.raises(ValueError, match="deg b"):
        bm.polydiv(np.ones(2), np.ones(4))
    with pytest.raises(ValueError, match="degree"):
        bm.companion(np.ones(1))
    with pytest.raises(ValueError, match="1-D"):
        bm.polyval(np.ones((2, 2)), 1.0)
    with pytest.raises(TypeError, match="callables"):
        bm.compose()
    with pytest.raises(ValueError, match="scalar"):
        bm.bisect(CUBIC, jnp.zeros(2), jnp.ones(2))


def test_float32_defaults_keep_dtype():
    x = np.array([-3.0, 0.0, 3.0], F32)
    for f in (bm.softplus, bm.sigmoid, bm.log_sigmoid):
        assert f(x).dtype == F32
    assert bm.logsumexp(x).dtype == F32
    assert bm.polyval(x, x).dtype == F32
    close(bm.polyval(x, x), np.polyval(x.astype(F64), x.astype(F64)), LAYER[F32])


@pytest.mark.slow
def test_experiment_runs_quick(tmp_path):
    import importlib.util
    import pathlib
    path = pathlib.Path(__file__).resolve().parents[1] / "experiments" / "ch01_basics.py"
    spec = importlib.util.spec_from_file_location("ch01_basics", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    summary = mod.main(["--quick", "--out", str(tmp_path)])
    assert (tmp_path / "ch01_basics.json").exists()
    assert summary["log1mexp"]["stable_max_rel_error"] < 1e-14


def test_zero_leading_coefficient_is_an_error_not_garbage():
    # numpy.roots drops leading zeros; with static shapes we cannot, and c[0] = 0 used to divide by 0
    # (roots [-inf, 0] for 0 x^2 + x - 3, whose one root is 3).
    assert np.allclose(np.roots([0.0, 1.0, -3.0]), [3.0])
    with pytest.raises(ValueError, match="leading coefficient"):
        bm.polyroots(np.array([0.0, 1.0, -3.0]))
    with pytest.raises(ValueError, match="leading coefficient"):
        bm.companion(np.array([0.0, 1.0]))
    with pytest.raises(ValueError, match="linear"):
        bm.quadratic_roots(0.0, 2.0, -4.0)   # was (-inf+nanj, 2)
    # valid input still works eagerly, under jit and under vmap
    close(np.sort(np.real(np.asarray(jax.jit(bm.polyroots)(jnp.array([1.0, -3.0, 2.0]))))), [1.0, 2.0], 1e-12)
    r1, r2 = jax.vmap(bm.quadratic_roots)(jnp.ones(2), jnp.array([-3.0, 2.0]), jnp.array([2.0, 1.0]))
    close(np.real(np.asarray(r1)), [2.0, -1.0], 1e-12)
    close(np.real(np.asarray(r2)), [1.0, -1.0], 1e-12)


# ---------------------------------------------------------------- extremes (issue 17)

def _mp_quadratic(a, b, c):
    # the textbook formula, at 1000 digits: its cancellation costs nothing there
    with mpmath.workdps(1000):
        a, b, c = (mpmath.mpf(float(v)) for v in (a, b, c))
        d = mpmath.sqrt(mpmath.mpc(b * b - 4 * a * c))
        roots = [(-b + d) / (2 * a), (-b - d) / (2 * a)]
        return sorted((complex(r) for r in roots), key=lambda z: (z.real, z.imag))


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_quadratic_roots_across_the_range_vs_mpmath(dtype):
    big = 2e19 if dtype == F32 else 1e200                 # b*b overflows: the textbook formula is NaN
    cases = [(1, big, 1), (1, -big, 1), (1, -3, 2), (1, 0, 1), (1, 2, 5)]
    cases += [(s, -3 * s, 2 * s) for s in ([1e-30, 1e30] if dtype == F32 else [1e-300, 1e300])]
    cases += [(1e-30, 0, 1e30)] if dtype == F32 else [(1e-200, 0, 1e200)]
    for a, b, c in cases:
        got = sorted((complex(r) for r in bm.quadratic_roots(*(np.asarray(v, dtype) for v in (a, b, c)))),
                     key=lambda z: (z.real, z.imag))
        want = _mp_quadratic(*(np.asarray(v, dtype) for v in (a, b, c)))
        for g, w in zip(got, want, strict=True):
            assert abs(g - w) <= 10 * EPS[dtype] * abs(w), ((a, b, c), got, want)


def test_newton_with_a_zero_derivative_is_not_converged():
    res = bm.newton(lambda x: x * x - 1, 0.0)
    assert not bool(res.converged) and np.isnan(float(res.root))
    res = jax.jit(lambda x: bm.newton(lambda y: y * y - 1, x))(jnp.float64(0.5))   # a good start still converges
    assert bool(res.converged) and float(res.root) == 1.0


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_empty_logsumexp_and_polyval_follow_scipy_and_numpy(dtype):
    assert float(bm.logsumexp(np.zeros(0, dtype))) == scipy.special.logsumexp(np.zeros(0)) == -np.inf
    got = bm.logsumexp(np.zeros((3, 0), dtype), axis=1)
    np.testing.assert_array_equal(got, scipy.special.logsumexp(np.zeros((3, 0)), axis=1))
    x = np.array([0.5, 2.0], dtype)
    np.testing.assert_array_equal(bm.polyval(np.zeros(0, dtype), x), np.polyval(np.zeros(0), x))
    close(bm.polyval(np.array([2.0], dtype), x), [2.0, 2.0], EPS[dtype])     # degree 0, 1 coefficient


def test_invert_is_a_checked_monotone_inverse_vs_sympy():
    import sympy as sp
    t = sp.Symbol("t", real=True)
    ys = [-5.25, -0.5, 0.0, 0.75, 3.0, 9.5]
    exact = [float(sp.real_roots(sp.Poly(t**3 + t - sp.Rational(y), t))[0].evalf(30)) for y in ys]
    cubic = lambda x: x**3 + x
    got = jax.jit(jax.vmap(lambda y: bm.invert(cubic, y, -3.0, 3.0)))(jnp.asarray(ys))
    close(got, exact, 4 * EPS[F64], atol=4 * EPS[F64])
    # the Newton polish adds the last digits: bisection alone to xtol = 1e-6 is ~1e-7 off
    coarse = jax.vmap(lambda y: bm.invert(cubic, y, -3.0, 3.0, xtol=1e-6, polish=0))(jnp.asarray(ys))
    polished = jax.vmap(lambda y: bm.invert(cubic, y, -3.0, 3.0, xtol=1e-6, polish=3))(jnp.asarray(ys))
    assert np.max(np.abs(np.asarray(coarse) - exact)) > 1e-9
    close(polished, exact, 4 * EPS[F64], atol=4 * EPS[F64])
    # a decreasing function, against sympy's closed-form inverse
    y = 0.3
    close(bm.invert(lambda x: jnp.exp(-x), y, -2.0, 5.0), float(-sp.log(sp.Rational(3, 10)).evalf(30)), 4 * EPS[F64])
    # not monotone on the interval, or y outside the range: NaN, not a plausible number
    assert np.isnan(float(bm.invert(jnp.sin, 0.5, -3.0, 3.0)))
    assert np.isnan(float(bm.invert(cubic, 40.0, -3.0, 3.0)))
    assert [int(bm.is_monotone(f, -1.0, 1.0)) for f in (jnp.tanh, lambda x: -x, jnp.cos)] == [1, -1, 0]
