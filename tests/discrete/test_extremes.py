"""Chapter 9 at the extremes (issue 17): log-counts across float32's and float64's range against mpmath on the
exact float inputs, ranks at the edge of the integer dtype against exact Python integers, empty and out-of-range
inputs refused clearly (or -1 under jit)."""
import functools
import math

import jax
import jax.numpy as jnp
import mpmath as mp
import numpy as np
import pytest
from sympy.combinatorics import Permutation

from fungpt import discrete as dm
from tests.helpers import F32, F64, ULPS, close

mp.mp.dps = 40
TOL = ULPS  # relative to max(1, |ref|): a few ulps of the result
PAIRS = [(1e5, 1), (1e6, 1), (1e6, 2), (50, 25), (10, 3), (1e4, 9_999), (3e7, 1e3), (7.5, 2.5)]


def _rel(got, want, tol):
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    assert np.all(np.abs(got - want) <= tol * np.maximum(1, np.abs(want))), (got, want, np.abs(got - want))


@pytest.mark.parametrize("dtype", [F32, F64], ids=str)
def test_log_comb_and_log_perm_vs_mpmath(dtype):
    n, k = (np.asarray(c, dtype) for c in zip(*PAIRS, strict=True))
    lg = lambda v: mp.loggamma(mp.mpf(float(v)))
    want_c = [float(lg(a + 1) - lg(b + 1) - lg(a - b + 1)) for a, b in zip(n, k, strict=True)]
    want_p = [float(lg(a + 1) - lg(a - b + 1)) for a, b in zip(n, k, strict=True)]
    _rel(jax.jit(dm.log_comb)(n, k), want_c, TOL[dtype])
    _rel(jax.jit(dm.log_perm)(n, k), want_p, TOL[dtype])
    # issue 17's reproducer: 11.5 before (three lgammas near 1.05e6 cancel), log(1e5) = 11.5129...
    _rel(dm.log_comb(np.float32(1e5), np.float32(1)), math.log(1e5), TOL[F32])


def test_log_comb_at_float64_scale_and_exact_edges():
    n = np.array([1e15, 1e300, 1e10])
    k = np.array([3.0, 1.0, 1e10])
    lg = mp.loggamma
    with mp.workdps(340):  # n + 1 must not round to n: 300 digits for 1e300
        big = [(mp.mpf(float(a)), mp.mpf(float(b))) for a, b in zip(n, k, strict=True)]
        want = [float(lg(a + 1) - lg(b + 1) - lg(a - b + 1)) for a, b in big]
    _rel(dm.log_comb(n, k), want, 4e-15)
    close(dm.log_comb(np.array([7.0, 7.0]), np.array([0.0, 7.0])), [0.0, 0.0], 0.0, 0.0)


@pytest.mark.parametrize("n", [1.0, 7.0, 8.0, 100.0, 1e6, 1e10, 1e100])
def test_stirling_log_error_keeps_its_digits(n):
    with mp.workdps(260):  # n log n ~ 2e102 must keep 1e-115 absolute
        want = mp.loggamma(mp.mpf(n) + 1) - (n * mp.log(n) - n + mp.log(2 * mp.pi * n) / 2)
    close(dm.stirling_log_error(np.float64(n)), float(want), 1e-13, 0.0)
    if n <= 1e6:  # Robbins (1955): 1/(12n+1) < error < 1/(12n) (the bounds round together beyond)
        assert 1 / (12 * n + 1) < float(dm.stirling_log_error(np.float64(n))) < 1 / (12 * n)


def test_nth_permutation_refuses_an_index_outside_the_range():
    with pytest.raises(ValueError, match=r"\[0, 3!\)"):
        dm.nth_permutation(3, 6)  # used to wrap around to the identity
    with pytest.raises(ValueError, match=r"\[0, 3!\)"):
        dm.nth_permutation(3, -1)
    out = jax.jit(jax.vmap(functools.partial(dm.nth_permutation, 3)))(jnp.asarray([5, 6, -1]))
    np.testing.assert_array_equal(out, [[2, 1, 0], [-1, -1, -1], [-1, -1, -1]])
    with pytest.raises(ValueError, match="n <= 20"):
        dm.nth_permutation(21, 0)


@pytest.mark.parametrize("n", [12, 13, 20])
def test_permutation_rank_at_the_edge_of_int64(n):
    p = np.arange(n)[::-1].copy()
    r = dm.permutation_rank(p)
    assert r.dtype == jnp.int64 and int(r) == math.factorial(n) - 1 == Permutation(list(p)).rank()
    np.testing.assert_array_equal(dm.nth_permutation(n, r), p)


def test_permutation_rank_beyond_the_integer_range_raises():
    with pytest.raises(ValueError, match="int64"):
        dm.permutation_rank(np.arange(21)[::-1].copy())
    with jax.enable_x64(False):
        assert int(dm.permutation_rank(np.arange(12)[::-1].copy())) == math.factorial(12) - 1
        with pytest.raises(ValueError, match="int32"):
            dm.permutation_rank(np.arange(13)[::-1].copy())  # 13! - 1 overflowed int32 before


def test_catalan_far_beyond_the_recursion_limit():
    assert dm.catalan(600) == math.comb(1200, 600) // 601
    assert [dm.catalan(n) for n in range(8)] == [1, 1, 2, 5, 14, 42, 132, 429]


def test_as_set_of_an_empty_array_with_a_size():
    np.testing.assert_array_equal(dm.as_set(jnp.zeros(0, jnp.int32), size=3, fill_value=7), [7, 7, 7])
    assert dm.as_set(jnp.zeros(0, jnp.int32), size=3, fill_value=7).shape == (3,)
    with pytest.raises(ValueError, match="fill_value"):
        dm.as_set(jnp.zeros(0, jnp.int32), size=3)
    assert dm.as_set(jnp.zeros(0, jnp.int32)).shape == (0,)


def test_empty_and_nan_log_counts():
    assert dm.log_comb(jnp.zeros(0), jnp.zeros(0)).shape == (0,)
    assert np.isnan(dm.log_comb(np.float64(np.nan), np.float64(1.0)))
    assert np.isnan(dm.stirling_log_error(np.float64(np.nan)))


def test_simplify_is_exact_where_the_input_is_finite_and_the_docs_say_so():
    x = dm.Var("x")
    e = dm.log(x) * 0.0
    assert dm.simplify(e) == dm.Const(0.0)
    # the input is NaN at x = -1 (log of a negative number), its simplification is 0: documented
    assert np.isnan(dm.evaluate(e, {"x": -1.0})) and float(dm.evaluate(dm.simplify(e), {"x": -1.0})) == 0.0
    assert "wherever the input is finite" in dm.simplify.__doc__
