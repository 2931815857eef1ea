"""Chapter 3 against independent oracles: sympy (limits, series, critical points), jax's own
differentiation, numpy/scipy quadrature and Halton points, closed-form integrals, and the error laws."""
import functools
import importlib.util
import math
import pathlib

import chex
import hypothesis.strategies as st
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.integrate
import sympy as sp
from hypothesis import given, settings
from scipy.stats import qmc

from fungpt import calculus as C
from tests.helpers import EXACT, FD_RULES, LIMIT  # the named tolerance tables

F32, F64 = np.dtype("float32"), np.dtype("float64")
DTYPES = [F32, F64]
# float32 repeats of the costliest compiles run under `-m slow` (make test-all); float64 runs by default
DTYPES_F32_SLOW = [pytest.param(F32, marks=pytest.mark.slow), F64]
EPS = {F32: float(np.finfo(np.float32).eps), F64: float(np.finfo(np.float64).eps)}
# Relative tolerances, each from the method's error law with a safety factor of ~10-30.
LIMIT_TOL = LIMIT
FD_TOL = FD_RULES

x_sym = sp.Symbol("x")


def _close(actual, expected, rtol, atol=0.0):
    np.testing.assert_allclose(np.asarray(actual, np.float64), np.asarray(expected, np.float64),
                               rtol=rtol, atol=atol)


# ----------------------------------------------------------------------------------------------- limits

LIMITS = [  # (jax function, sympy expression, point, side)
    (lambda x: jnp.sin(x) / x, sp.sin(x_sym) / x_sym, 0.0, "both"),
    (lambda x: jnp.expm1(x) / x, (sp.exp(x_sym) - 1) / x_sym, 0.0, "both"),
    (lambda x: (1 - jnp.cos(x)) / x**2, (1 - sp.cos(x_sym)) / x_sym**2, 0.0, "both"),
    (lambda x: jnp.exp(jnp.log1p(x) / x), (1 + x_sym) ** (1 / x_sym), 0.0, "right"),
    (lambda x: (x**2 - 1) / (x - 1), (x_sym**2 - 1) / (x_sym - 1), 1.0, "left"),
    (lambda x: jnp.arctan(1 / x), sp.atan(1 / x_sym), 0.0, "right"),
    (lambda x: jnp.arctan(1 / x), sp.atan(1 / x_sym), 0.0, "left"),
]


@jax.jit
def _all_limits(x):  # x is a zero of the test's dtype: the cases' points are offsets from it
    return [C.limit(f, x + x0, side=side) for f, _, x0, side in LIMITS]


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_limit_matches_sympy(dtype):
    dirs = {"both": "+-", "right": "+", "left": "-"}
    for (_, expr, x0, side), (got, err) in zip(LIMITS, _all_limits(jnp.zeros((), dtype)), strict=True):
        want = float(sp.limit(expr, x_sym, x0, dirs[side]))
        assert got.dtype == dtype
        _close(got, want, LIMIT_TOL[dtype], atol=LIMIT_TOL[dtype])
        assert float(err) < 100 * LIMIT_TOL[dtype], (expr, side)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_is_continuous_on_known_functions(dtype):
    cases = [(jnp.cos, 0.3, True), (jnp.abs, 0.0, True),  # |x|: continuous, not differentiable
             (jnp.sign, 0.0, False), (jnp.floor, 2.0, False), (jnp.floor, 2.5, True),  # jumps
             (lambda x: jnp.sin(x) / x, 0.0, False)]  # removable singularity: f(0) is undefined
    got = jax.jit(lambda z: [C.is_continuous(f, z + x0) for f, x0, _ in cases])(jnp.zeros((), dtype))
    assert [bool(g) for g in got] == [want for _, _, want in cases]


# ------------------------------------------------------------------------------------------ derivatives

def _f1(x):
    return jnp.sin(x) * jnp.exp(x / 3) + x**3 / 10


_f1_prime = jax.jit(jax.grad(_f1))
_fd = {m: jax.jit(lambda x, m=m: C.derivative(_f1, x, method=m)) for m in FD_TOL}


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("method", ["forward", "central", "complex"])
@settings(max_examples=15, deadline=None)
@given(x=st.floats(-3, 3))
def test_derivative_error_law(method, dtype, x):
    want = _f1_prime(np.float64(x))  # jax's own derivative, float64: the oracle
    got = _fd[method](jnp.asarray(x, dtype))
    assert got.dtype == dtype
    _close(got, want, 0, atol=FD_TOL[method][dtype] * (1 + abs(float(want))))


def _f3(v):
    return jnp.sin(v[0] * v[1]) + v[2] ** 2 * jnp.exp(v[0]) - jnp.log1p(v[1] ** 2)


def _g3(v):
    return jnp.stack([v[0] * v[1] * v[2], jnp.tanh(v[0] - v[2]), v[1] ** 3])


@jax.jit
def _difference_derivatives(x):
    partials = jnp.stack([C.partial_derivative(_f3, x, i) for i in range(3)])
    return (partials, C.numerical_gradient(_f3, x), C.numerical_jacobian(_g3, x),
            C.numerical_gradient(_f3, x, method="complex"))


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_partials_gradient_and_jacobian_by_differences(dtype, key):
    x = jax.random.normal(key, (3,), dtype)
    x64 = np.asarray(x, np.float64)
    tol = FD_TOL["central"][dtype] * 10
    want_grad, want_jac = jax.grad(_f3)(x64), jax.jacrev(_g3)(x64)
    partials, grad, jac, cplx = _difference_derivatives(x)
    chex.assert_shape(jac, (3, 3))
    chex.assert_type([partials, grad, jac, cplx], dtype)
    _close(partials, want_grad, 0, atol=tol * (1 + np.abs(want_grad).max()))
    _close(grad, want_grad, 0, atol=tol * (1 + np.abs(want_grad).max()))
    _close(jac, want_jac, 0, atol=tol * (1 + np.abs(want_jac).max()))
    _close(cplx, want_grad, FD_TOL["complex"][dtype] * 10, atol=FD_TOL["complex"][dtype] * 10)


def test_derivative_vmaps_and_jits():
    xs = jnp.linspace(-2.0, 2.0, 7)
    batched = jax.jit(jax.vmap(lambda x: C.derivative(_f1, x, method="complex")))
    _close(batched(xs), jax.vmap(jax.grad(_f1))(xs), EXACT[F64])


# ------------------------------------------------------------------------------------------- chain rule

STAGES = [lambda v: jnp.sin(v) * v, lambda v: jnp.stack([v.sum(), v[0] ** 2, v[1] ** 2]), jnp.exp,
          lambda v: v[:2] * v[1:]]


def _composed(v):
    for f in STAGES:
        v = f(v)
    return v


@jax.jit
def _chain_both_ways(x, ct, t):
    ours = (C.chain_rule_vjp(STAGES, x, ct), C.chain_rule_jvp(STAGES, x, t)[1], C.chain_rule_jacobian(STAGES, x))
    y, pullback = jax.vjp(_composed, x)
    jax_ = ((y, pullback(ct)[0]), jax.jvp(_composed, (x,), (t,))[1], jax.jacrev(_composed)(x))
    return ours, jax_


@pytest.mark.parametrize("dtype", DTYPES_F32_SLOW, ids=str)
def test_chain_rule_composes_stage_derivatives(dtype, key):
    k1, k2, k3 = jax.random.split(key, 3)
    x = jax.random.normal(k1, (3,), dtype) / 2
    ct, t = jax.random.normal(k2, (2,), dtype), jax.random.normal(k3, (3,), dtype)
    ours, oracle = _chain_both_ways(x, ct, t)
    chex.assert_trees_all_equal_shapes_and_dtypes(ours, oracle)
    chex.assert_shape(ours[2], (2, 3))
    chex.assert_trees_all_close(ours, oracle, rtol=EXACT[dtype], atol=EXACT[dtype])


def _bracketings(i, j):
    # every way to multiply J_j ⋯ J_i (stages i..j, 0-based), as (cost function, tree); a naive recursion
    if i == j:
        yield i
        return
    for s in range(i, j):
        for left in _bracketings(s + 1, j):
            for right in _bracketings(i, s):
                yield (left, right)


def _tree_cost(tree, n):
    # (multiply-adds, rows, cols) of the product a tree describes; stage t is an (n[t+1], n[t]) matrix
    if isinstance(tree, int):
        return 0, n[tree + 1], n[tree]
    (cl, rl, kl), (cr, kr, col) = _tree_cost(tree[0], n), _tree_cost(tree[1], n)
    assert kl == kr
    return cl + cr + rl * kl * col, rl, col


@settings(max_examples=25, deadline=None)
@given(dims=st.lists(st.integers(1, 40), min_size=2, max_size=7))
def test_jacobian_chain_cost_is_the_cheapest_bracketing(dims):
    k = len(dims) - 1
    got = C.jacobian_chain_cost(dims)
    costs = {t: _tree_cost(t, dims)[0] for t in _bracketings(0, k - 1)}
    assert len(costs) == math.comb(2 * (k - 1), k - 1) // k               # Catalan(k - 1) bracketings
    assert got["optimal"] == min(costs.values()) == costs[got["tree"]]
    fwd, rev = 0, k - 1                                                    # left-nested from input / output
    for t in range(1, k):
        fwd = (t, fwd)
    for t in range(k - 2, -1, -1):
        rev = (rev, t)
    assert got["forward"] == costs[fwd] and got["reverse"] == costs[rev]


_HOURGLASS = [lambda v: jnp.tanh(v[::-1] * jnp.arange(1.0, 9.0)), lambda v: jnp.sum(jnp.sin(v))[None],
              lambda v: jnp.cos(v * jnp.arange(1.0, 9.0)), lambda v: v * v[::-1]]


@jax.jit
def _hourglass_jacobians(x):
    composed = functools.reduce(lambda f, g: lambda v: g(f(v)), _HOURGLASS)
    return [C.chain_rule_jacobian(_HOURGLASS, x, order=o) for o in ("forward", "reverse", "optimal")], \
        jax.jacfwd(composed)(x)


def test_chain_rule_jacobian_in_every_order_matches_jax():
    # 8 → 8 → 1 → 8 → 8: through the bottleneck, mixed accumulation costs 192 multiply-adds, either pure order 640
    cost = C.jacobian_chain_cost([8, 8, 1, 8, 8])
    assert (cost["forward"], cost["reverse"], cost["optimal"], cost["tree"]) == (640, 640, 192, ((3, 2), (1, 0)))
    ours, want = _hourglass_jacobians(jnp.linspace(-1.0, 1.0, 8))
    for J in ours:
        chex.assert_trees_all_close(J, want, rtol=EXACT[F64], atol=EXACT[F64])
    with pytest.raises(ValueError, match="order"):
        C.chain_rule_jacobian(_HOURGLASS, jnp.ones(8), order="sideways")
    with pytest.raises(ValueError, match="dims"):
        C.jacobian_chain_cost([3])


# -------------------------------------------------------------------------- gradients, Jacobians, Hessians

@jax.jit
def _derivatives_both_ways(x, v):
    ours = {"grad": C.gradient(_f3, x), "dir": C.directional_derivative(_f3, x, v),
            "jac_rev": C.jacobian(_g3, x, mode="reverse"), "jac_fwd": C.jacobian(_g3, x, mode="forward"),
            "hess": C.hessian(_f3, x), "hvp": C.hessian_vector_product(_f3, x, v)}
    h = jax.hessian(_f3)(x)
    oracle = {"grad": jax.grad(_f3)(x), "dir": jnp.dot(jax.grad(_f3)(x), v), "jac_rev": jax.jacfwd(_g3)(x),
              "jac_fwd": jax.jacfwd(_g3)(x), "hess": h, "hvp": h @ v}
    return ours, oracle


@pytest.mark.parametrize("dtype", DTYPES_F32_SLOW, ids=str)
def test_gradient_jacobian_hessian_match_jax(dtype, key):
    k1, k2 = jax.random.split(key)
    x, v = jax.random.normal(k1, (3,), dtype), jax.random.normal(k2, (3,), dtype)
    ours, oracle = _derivatives_both_ways(x, v)
    chex.assert_trees_all_equal_shapes_and_dtypes(ours, oracle)
    chex.assert_trees_all_close(ours, oracle, rtol=EXACT[dtype], atol=EXACT[dtype])
    # under vmap: a batch of points, one compiled function
    xs = jax.random.normal(k2, (4, 3), dtype)
    batched = jax.jit(jax.vmap(lambda p: (C.hessian(_f3, p), jax.hessian(_f3)(p))))
    chex.assert_trees_all_close(*batched(xs), rtol=EXACT[dtype], atol=EXACT[dtype])


# ------------------------------------------------------------------------------------- critical points

def _saddle_field(v):  # x^3 - 3x - y^3 + 3y: one min, one max, two saddles
    return v[0] ** 3 - 3 * v[0] - v[1] ** 3 + 3 * v[1]


def _sympy_critical_points():
    x, y = sp.symbols("x y")
    f = x**3 - 3 * x - y**3 + 3 * y
    points = sp.solve([sp.diff(f, x), sp.diff(f, y)], [x, y], dict=True)
    out = []
    for p in points:
        eig = [float(e) for e, mult in sp.hessian(f, (x, y)).subs(p).eigenvals().items() for _ in range(mult)]
        kind = (C.MINIMUM if min(eig) > 0 else C.MAXIMUM if max(eig) < 0 else C.SADDLE)
        out.append(((float(p[x]), float(p[y])), kind, sorted(eig)))
    return out


@pytest.mark.parametrize("dtype", DTYPES_F32_SLOW, ids=str)
def test_newton_finds_and_classifies_sympy_critical_points(dtype):
    newton = jax.jit(jax.vmap(lambda s: C.newton_critical_point(_saddle_field, s)))
    expected = _sympy_critical_points()
    assert len(expected) == 4
    starts = jnp.asarray([[p[0] + 0.3, p[1] - 0.2] for p, _, _ in expected], dtype)
    cp = newton(starts)
    assert cp.x.dtype == dtype and bool(jnp.all(cp.converged))
    for i, (point, kind, eig) in enumerate(expected):
        _close(cp.x[i], point, 0, atol=EXACT[dtype])
        assert int(cp.kind[i]) == kind
        _close(cp.eigenvalues[i], eig, EXACT[dtype] * 10)
        assert int(cp.iterations[i]) <= 8  # quadratic convergence from 0.3 away


def test_degenerate_critical_point_is_reported():
    kind, lam = jax.jit(lambda x: C.classify_critical_point(lambda v: v[0] ** 4 + v[1] ** 2, x))(jnp.zeros(2))
    assert int(kind) == C.DEGENERATE
    _close(lam, [0.0, 2.0], 0, atol=1e-12)


@pytest.mark.parametrize("dtype", DTYPES_F32_SLOW, ids=str)
def test_extrema_on_interval_vs_dense_grid(dtype):
    f = lambda x: jnp.sin(3 * x) + x / 2 - 0.1 * x**2
    a, b = -1.0, 3.0
    grid = np.linspace(a, b, 2_000_001)
    fg = np.sin(3 * grid) + grid / 2 - 0.1 * grid**2
    xmin, fmin, xmax, fmax = jax.jit(lambda lo, hi: C.extrema_on_interval(f, lo, hi))(
        jnp.asarray(a, dtype), jnp.asarray(b, dtype))
    # Grid spacing 2e-6 puts the grid's best value within ~f''·h^2 ≈ 1e-11 of the true extreme.
    _close(fmin, fg.min(), 0, atol=EXACT[dtype] + 1e-10)
    _close(fmax, fg.max(), 0, atol=EXACT[dtype] + 1e-10)
    _close(xmin, grid[fg.argmin()], 0, atol=1e-5 if dtype == F64 else 3e-3)
    _close(xmax, grid[fg.argmax()], 0, atol=1e-5 if dtype == F64 else 3e-3)


# ------------------------------------------------------------------------------------------- integrals

@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("n", [1, 2, 5, 20])
def test_gauss_legendre_nodes_match_numpy(n, dtype):
    x, w = C.gauss_legendre_nodes(n, dtype)
    want_x, want_w = np.polynomial.legendre.leggauss(n)
    assert x.dtype == dtype
    _close(x, want_x, 0, atol=10 * EXACT[dtype])
    _close(w, want_w, 10 * EXACT[dtype], atol=10 * EXACT[dtype])


_GL = {n: tuple(np.asarray(a) for a in C.gauss_legendre_nodes(n)) for n in range(1, 9)}


@settings(max_examples=25, deadline=None)
@given(n=st.integers(1, 8), seed=st.integers(0, 2**31 - 1))
def test_gauss_legendre_is_exact_to_degree_2n_minus_1(n, seed):
    coeffs = np.random.default_rng(seed).normal(size=2 * n)  # degree 2n-1
    x, w = _GL[n]
    anti = np.polyint(coeffs)
    want = np.polyval(anti, 1.0) - np.polyval(anti, -1.0)
    _close(np.sum(w * np.polyval(coeffs, x)), want, 0, atol=1e-13 * np.abs(coeffs).sum())


def test_gauss_legendre_maps_to_the_interval():
    got = jax.jit(lambda a, b: C.gauss_legendre(jnp.exp, a, b, 10))(jnp.asarray(-0.5), jnp.asarray(2.0))
    _close(got, math.exp(2.0) - math.exp(-0.5), 1e-14)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_trapezoid_and_simpson_match_scipy_and_their_error_laws(dtype):
    a, b, exact = 0.0, 1.0, math.e - 1
    ns = (8, 16, 32)
    rules = jax.jit(lambda lo: [(C.trapezoid(jnp.exp, lo, b, n), C.simpson(jnp.exp, lo, b, n)) for n in ns])
    got = rules(jnp.asarray(a, dtype))
    for n, (trap, simp) in zip(ns, got, strict=True):
        nodes = np.linspace(a, b, n + 1)
        _close(trap, scipy.integrate.trapezoid(np.exp(nodes), nodes), EXACT[dtype])
        _close(simp, scipy.integrate.simpson(np.exp(nodes), x=nodes), EXACT[dtype])
    if dtype == F64:  # halving h divides the error by 4 (trapezoid) and 16 (Simpson)
        (t16, s16), (t32, s32) = [(abs(float(t) - exact), abs(float(q) - exact)) for t, q in got[1:]]
        assert 3.9 < t16 / t32 < 4.1
        assert 15.5 < s16 / s32 < 16.5


@pytest.mark.parametrize("rule", ["trapezoid", "simpson", "gauss"])
def test_tensor_product_rules_in_2d_and_3d(rule):
    n = {"trapezoid": 128, "simpson": 32, "gauss": 24}[rule]
    # error laws: trapezoid ~h^2 f^(2)/12, Simpson ~h^4 f^(4)/180 (h <= 3/n), Gauss-Legendre spectral
    tol = {"trapezoid": 1e-4, "simpson": 1e-6, "gauss": 1e-12}[rule]
    f2 = lambda v: 1 / (1 + v[0] + v[1] ** 2)
    want2, _ = scipy.integrate.dblquad(lambda y, x: 1 / (1 + x + y**2), 0, 1, -1, 2, epsabs=1e-14, epsrel=1e-13)
    f3 = lambda v: jnp.exp(v[0] - v[1]) * jnp.cos(v[2])  # separable: closed form
    want3 = (math.e - 1) * (1 - math.exp(-0.5)) * math.sin(2.0)
    n3 = {"trapezoid": 24, "simpson": 12, "gauss": 10}[rule]
    got2, got3 = jax.jit(lambda lo2, hi2, lo3, hi3: (
        C.tensor_product_rule(f2, lo2, hi2, n, rule=rule), C.tensor_product_rule(f3, lo3, hi3, n3, rule=rule)))(
        jnp.asarray([0.0, -1.0]), jnp.asarray([1.0, 2.0]), jnp.zeros(3), jnp.asarray([1.0, 0.5, 2.0]))
    _close(got2, want2, tol)
    _close(got3, want3, {"trapezoid": 1e-3, "simpson": 1e-5, "gauss": 1e-12}[rule])


def _box_integrand(v):
    return jnp.exp(-jnp.sum(v**2)) * (1 + v[0])


def _quad1(g):
    return scipy.integrate.quad(g, 0, 1, epsabs=1e-14, epsrel=1e-12)[0]


def test_monte_carlo_and_qmc_within_their_standard_errors(key):
    lo, hi = jnp.zeros(3), jnp.ones(3)
    # f = e^{-|v|²}(1 + v_0) is a product of 1-D factors: E f and E f² by 1-D scipy quadrature
    gauss1, gauss2 = _quad1(lambda t: math.exp(-t * t)), _quad1(lambda t: math.exp(-2 * t * t))
    want = _quad1(lambda t: math.exp(-t * t) * (1 + t)) * gauss1**2
    sq = _quad1(lambda t: math.exp(-2 * t * t) * (1 + t) ** 2) * gauss2**2
    sigma = math.sqrt(sq - want**2)  # the true standard deviation of f(U)
    k1, k2 = jax.random.split(key)
    n = 4096
    (est, se), (qest, qse) = jax.jit(lambda a, b: (C.monte_carlo(_box_integrand, a, lo, hi, n),
                                                   C.quasi_monte_carlo(_box_integrand, b, lo, hi, n, n_shifts=8)))(
        k1, k2)
    assert abs(float(est) - want) < 5 * float(se)
    # s/σ has relative spread ~ sqrt((κ-1)/4n) < 0.02 here; 5 of those
    assert abs(float(se) / (sigma / math.sqrt(n)) - 1) < 0.1
    assert abs(float(qest) - want) < 5 * float(qse) * 1.5  # t with 7 dof: 5·1.5 SE ⇒ p < 1e-4
    assert float(qse) < float(se) / 10  # low discrepancy beats n^(-1/2)


def test_halton_matches_scipy():
    for d in (1, 2, 5):
        _close(C.halton(100, d), qmc.Halton(d=d, scramble=False).random(100), 1e-15)
    assert C.halton(10, 3, dtype=F32).dtype == F32


# ---------------------------------------------------------------------------------------- Taylor series

TAYLOR = [
    (jnp.exp, sp.exp(x_sym), 0.0),
    (lambda x: jnp.sin(x) * jnp.cos(2 * x), sp.sin(x_sym) * sp.cos(2 * x_sym), 0.4),
    (lambda x: jnp.log1p(x), sp.log(1 + x_sym), 0.5),
    (lambda x: 1 / (1 + x**2), 1 / (1 + x_sym**2), 1.0),
]


TAYLOR_ORDER = 6


@functools.cache
def _sympy_taylor(case):
    _, expr, x0 = TAYLOR[case]
    t = sp.Symbol("t")
    series = sp.series(expr.subs(x_sym, t + x0), t, 0, TAYLOR_ORDER + 1).removeO()
    return [float(sp.Poly(series, t).coeff_monomial(t**k)) for k in range(TAYLOR_ORDER + 1)]


@jax.jit
def _all_taylor(zero):  # zero carries the dtype; each case's point is an offset from it
    return [C.taylor_coefficients(f, zero + x0, TAYLOR_ORDER) for f, _, x0 in TAYLOR]


@pytest.mark.parametrize("dtype", DTYPES_F32_SLOW, ids=str)
def test_taylor_coefficients_match_sympy_series(dtype):
    for case, got in enumerate(_all_taylor(jnp.zeros((), dtype))):
        chex.assert_shape(got, (TAYLOR_ORDER + 1,))
        assert got.dtype == dtype
        _close(got, _sympy_taylor(case), 50 * EXACT[dtype], atol=50 * EXACT[dtype])


def test_taylor_polynomial_is_horner():
    c = np.random.default_rng(0).normal(size=6)
    xs = np.linspace(-1, 2, 11)
    _close(C.taylor_polynomial(jnp.asarray(c), 0.5, jnp.asarray(xs)), np.polyval(c[::-1], xs - 0.5), 1e-13)


@pytest.mark.parametrize("order", [1, 3, 5])
def test_taylor_error_obeys_lagrange_bound_and_order(order):
    f, x0 = jnp.sin, 0.3
    coeffs = jax.jit(lambda z: C.taylor_coefficients(f, z, order))(jnp.asarray(x0))
    dxs = (0.4, 0.2, 0.1)
    bounds = jax.jit(jax.vmap(lambda x: C.taylor_remainder_bound(f, jnp.asarray(x0), order, x)))(
        x0 + jnp.asarray(dxs))
    for dx, bound in zip(dxs, np.asarray(bounds), strict=True):
        x = x0 + dx
        err = abs(float(C.taylor_polynomial(coeffs, x0, x)) - math.sin(x))
        assert err <= bound * (1 + 1e-9)
        assert bound <= dx ** (order + 1) / math.factorial(order + 1) * (1 + 1e-12)  # |sin^(k)| ≤ 1
    # halving the distance divides the error by ~2^(order+1)
    e = [abs(float(C.taylor_polynomial(coeffs, x0, x0 + dx)) - math.sin(x0 + dx)) for dx in (0.02, 0.01)]
    assert abs(math.log2(e[0] / e[1]) - (order + 1)) < 0.2


# ------------------------------------------------------------------------------------------ bad inputs

def test_bad_inputs_raise_clear_errors():
    with pytest.raises(ValueError, match="side"):
        C.limit(jnp.sin, 0.0, side="up")
    with pytest.raises(ValueError, match="method"):
        C.derivative(jnp.sin, 1.0, method="sideways")
    with pytest.raises(ValueError, match=r"shape \(d,\)"):
        C.partial_derivative(jnp.sum, jnp.ones((2, 2)), 0)
    with pytest.raises(ValueError, match="even"):
        C.simpson(jnp.sin, 0.0, 1.0, 7)
    with pytest.raises(ValueError, match="positive int"):
        C.gauss_legendre_nodes(0)
    with pytest.raises(ValueError, match=r"shape \(d,\)"):
        C.tensor_product_rule(jnp.sum, jnp.zeros(2), jnp.ones(3))
    with pytest.raises(ValueError, match="shape"):
        C.newton_critical_point(jnp.sum, jnp.zeros((2, 2)))
    with pytest.raises(ValueError, match="order"):
        C.taylor_coefficients(jnp.sin, 0.0, -1)
    with pytest.raises(ValueError, match="n_shifts"):
        C.quasi_monte_carlo(jnp.sum, jax.random.key(0), jnp.zeros(2), jnp.ones(2), 16, n_shifts=1)


@pytest.mark.slow  # ~20 s of compiles; tests/test_roadmap.py runs ch03 in --quick mode too
def test_experiment_runs_quick(tmp_path):
    # in-process (import + main) under the strict harness: no second interpreter and jax import to pay for
    path = pathlib.Path(__file__).resolve().parents[1] / "experiments" / "ch03_calculus.py"
    spec = importlib.util.spec_from_file_location("ch03_calculus", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.main(["--quick", "--out", str(tmp_path)])
    assert (tmp_path / "ch03_calculus.json").exists()


# --------------------------------------------------------------------------- extremes and one owner (issues 13, 17)

NO_LIMIT = [  # (jax function, sympy expression, side): sympy says the limit at 0 does not exist
    (jnp.sign, sp.sign(x_sym), "both"),
    (lambda x: jnp.sin(1 / x), sp.sin(1 / x_sym), "both"),
    (lambda x: jnp.sin(1 / x), sp.sin(1 / x_sym), "right"),
    (lambda x: 1 / x, 1 / x_sym, "right"),
]


def _sympy_limit_exists(expr, side):
    try:
        value = sp.limit(expr, x_sym, 0, {"both": "+-", "right": "+", "left": "-"}[side])
    except ValueError:      # sympy: "The limit does not exist since left hand limit = ... "
        return False
    return value.is_finite and not isinstance(value, sp.AccumBounds)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_limits_that_do_not_exist_are_nan_not_a_number(dtype):
    z = jnp.zeros((), dtype)
    for f, expr, side in NO_LIMIT:
        assert not _sympy_limit_exists(expr, side)
        value, err = jax.jit(lambda z, f=f, side=side: C.limit(f, z, side=side))(z)
        assert np.isnan(float(value)) and float(err) > 0, (expr, side, value, err)
    # the one-sided limits of the jump do exist, exactly
    assert float(C.limit(jnp.sign, z, side="right")[0]) == 1.0
    assert float(C.limit(jnp.sign, z, side="left")[0]) == -1.0
    assert float(C.limit(jnp.abs, z)[0]) == 0.0                 # |x|: a kink, the limit exists
    assert not bool(C.is_continuous(lambda x: jnp.sin(1 / x), z))
    assert not bool(C.is_continuous(jnp.sign, z))


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_derivative_broadcasts_and_backward_differences(dtype):
    x = np.linspace(-2, 2, 7).astype(dtype)
    for method in ("forward", "backward", "central"):
        got = C.derivative(jnp.sin, x, method=method)
        assert got.shape == x.shape and got.dtype == dtype
        np.testing.assert_allclose(got, np.cos(x.astype(np.float64)), rtol=0, atol=FD_TOL["forward"][dtype])
    # backward really looks back: a kink at 0 gives the left slope
    assert float(C.derivative(jnp.abs, jnp.zeros((), dtype), method="backward")) == -1.0
    assert float(C.derivative(jnp.abs, jnp.zeros((), dtype), method="forward")) == 1.0


def test_one_owner_for_hvp_newton_and_critical_point_kinds():
    from fungpt import numerics, optim
    assert optim.hvp is C.hessian_vector_product and optim.newton is C.newton_path
    assert (optim.MINIMUM, optim.MAXIMUM, optim.SADDLE, optim.DEGENERATE) == (C.MINIMUM, C.MAXIMUM, C.SADDLE,
                                                                              C.DEGENERATE)
    # a saddle with a flat direction is a saddle (curvature of both signs), not "degenerate"
    f = lambda v: v[0] ** 2 - v[1] ** 2 + 0 * v[2]
    assert int(C.classify_critical_point(f, jnp.zeros(3))[0]) == C.SADDLE
    assert int(optim.classify_critical_point(f, jnp.zeros(3))) == C.SADDLE
    assert int(C.classify_critical_point(lambda v: v[0] ** 2 + v[1] ** 4, jnp.zeros(2))[0]) == C.DEGENERATE
    # the Newton path ends where newton_critical_point stops (Himmelblau's local maximum near (-0.27, -0.92))
    h = lambda v: (v[0] ** 2 + v[1] - 11) ** 2 + (v[0] + v[1] ** 2 - 7) ** 2
    path = C.newton_path(h, jnp.array([-0.3, -0.9]), steps=12)
    cp = C.newton_critical_point(h, jnp.array([-0.3, -0.9]))
    np.testing.assert_allclose(path[-1], cp.x, rtol=1e-12)
    assert int(cp.kind) == C.MAXIMUM and path.shape == (13, 2)
    np.testing.assert_allclose(path[-1], [-0.270845, -0.923039], atol=1e-6)     # the known maximum
    np.testing.assert_allclose(jax.grad(h)(path[-1]), 0, atol=1e-10)
    # numerics' finite difference is calculus.derivative
    x = jnp.linspace(0.1, 1.0, 4)
    np.testing.assert_array_equal(numerics.finite_difference(jnp.exp, x, 1e-4, "backward"),
                                  C.derivative(jnp.exp, x, method="backward", h=1e-4))
