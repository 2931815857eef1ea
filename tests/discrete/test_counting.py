"""Counting against math/itertools (exact integers) and mpmath (log-counts)."""
import functools
import itertools
import math

import jax
import jax.numpy as jnp
import mpmath
import numpy as np
import pytest
from sympy.combinatorics import Permutation

from fungpt import discrete as dm
from tests.helpers import GRAD as TOL  # f32 2e-3, f64 1e-9: relative


def test_exact_counts_match_math():
    for n in (0, 1, 5, 30, 200):
        assert dm.factorial(n) == math.factorial(n)
        for k in (0, 1, 3, n, n + 2):
            assert dm.comb(n, k) == math.comb(n, k)
            assert dm.perm(n, k) == math.perm(n, k)
    with pytest.raises(ValueError, match="non-negative int"):
        dm.comb(-1, 2)
    with pytest.raises(ValueError, match="non-negative int"):
        dm.factorial(2.5)


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_log_counts_match_mpmath(dtype):
    n = jnp.array([1.0, 10.0, 1e3, 1e6, 1e15], dtype)
    k = jnp.floor(n / 3)
    lf = jax.jit(dm.log_factorial)(n)
    lc, lp = dm.log_comb(n, k), dm.log_perm(n, k)
    mpmath.mp.dps = 40
    for i, (ni, ki) in enumerate(zip(np.asarray(n, np.float64), np.asarray(k, np.float64), strict=True)):
        ni, ki = mpmath.mpf(ni), mpmath.mpf(ki)
        want_f = mpmath.loggamma(ni + 1)
        want_c = mpmath.log(mpmath.binomial(ni, ki))
        want_p = want_f - mpmath.loggamma(ni - ki + 1)
        rtol = TOL[np.dtype(dtype)]
        np.testing.assert_allclose(float(lf[i]), float(want_f), rtol=rtol)
        np.testing.assert_allclose(float(lc[i]), float(want_c), rtol=rtol, atol=rtol)
        np.testing.assert_allclose(float(lp[i]), float(want_p), rtol=rtol, atol=rtol)


def test_stirling_error_is_within_robbins_bounds():
    n = jnp.arange(1, 60, dtype=jnp.float64)
    err = dm.stirling_log_error(n)
    nn = np.asarray(n)
    assert np.all(1 / (12 * nn + 1) < np.asarray(err)) and np.all(np.asarray(err) < 1 / (12 * nn))
    exact = np.array([float(math.factorial(int(v))) for v in nn[:20]])
    rel = 1 - np.asarray(dm.stirling(n[:20])) / exact
    np.testing.assert_allclose(rel, -np.expm1(-np.asarray(err[:20])), rtol=1e-6)


@pytest.mark.parametrize("n", [0, 1, 4])
def test_enumerations_match_itertools(n):
    assert dm.permutations(n).tolist() == [list(p) for p in itertools.permutations(range(n))]
    for k in range(n + 2):
        assert dm.combinations(n, k).tolist() == [list(c) for c in itertools.combinations(range(n), k)]
        assert len(dm.combinations(n, k)) == dm.comb(n, k)


def test_nth_permutation_and_rank_are_inverse_bijections():
    n = 5
    perms = jax.jit(jax.vmap(functools.partial(dm.nth_permutation, n)))(jnp.arange(math.factorial(n)))
    assert perms.tolist() == [list(p) for p in itertools.permutations(range(n))]
    ranks = jax.jit(jax.vmap(dm.permutation_rank))(perms)
    assert ranks.tolist() == list(range(math.factorial(n)))
    p = [int(v) for v in np.random.default_rng(0).permutation(12)]
    # sympy's Permutation.rank() is the same lexicographic index
    assert int(dm.permutation_rank(jnp.array(p))) == Permutation(p).rank()
