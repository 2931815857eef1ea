"""fungpt.probability.moments against numpy (float64), scipy quadrature and one-pass/merge identities."""
import math

import chex
import hypothesis.strategies as st
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.stats as ss
from hypothesis import given, settings

from fungpt import probability as P
from tests.helpers import F32, F64, FORMULA, close

DTYPES = [F32, F64]


TOL = FORMULA  # relative, for exact formulas (f64: summed terms)


def _table(seed, shape):
    return np.random.default_rng(seed).dirichlet(np.ones(math.prod(shape))).reshape(shape)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_exact_moments_of_tables(dtype):
    values, probs = np.array([-1.0, 0.5, 2.0, 4.0]), np.array([0.1, 0.4, 0.3, 0.2])
    mu = sum(v * p for v, p in zip(values, probs, strict=True))
    var = sum((v - mu) ** 2 * p for v, p in zip(values, probs, strict=True))
    close(P.expectation(values.astype(dtype), probs.astype(dtype)), mu, TOL[dtype], 0.0)
    close(P.variance(values.astype(dtype), probs.astype(dtype)), var, TOL[dtype], 0.0)
    close(P.expectation(values.astype(dtype), probs.astype(dtype), jnp.exp),
           (np.exp(values) * probs).sum(), TOL[dtype], 0.0)
    joint, xv, yv = _table(1, (3, 2)), np.array([0.0, 1.0, 3.0]), np.array([-2.0, 5.0])
    mx, my = (joint.sum(1) * xv).sum(), (joint.sum(0) * yv).sum()
    cov = sum(joint[i, j] * (xv[i] - mx) * (yv[j] - my) for i in range(3) for j in range(2))
    close(P.covariance(joint.astype(dtype), xv.astype(dtype), yv.astype(dtype)), cov, TOL[dtype], 0.0)
    sx = math.sqrt(sum(joint.sum(1)[i] * (xv[i] - mx) ** 2 for i in range(3)))
    sy = math.sqrt(sum(joint.sum(0)[j] * (yv[j] - my) ** 2 for j in range(2)))
    close(P.correlation(joint.astype(dtype), xv.astype(dtype), yv.astype(dtype)), cov / (sx * sy), TOL[dtype], 0.0)


def test_continuous_expectation_by_quadrature_matches_scipy():
    a, b = 2.0, 5.0
    lp = lambda x: P.beta.log_prob(x, a, b)
    lg = lambda x: P.gaussian.log_prob(x, 1.0, 0.5)
    m1, m2, ecos = jax.jit(lambda lo, hi: (
        P.expectation_continuous(lp, lo, hi), P.expectation_continuous(lp, lo, hi, lambda x: x**2),
        P.expectation_continuous(lg, lo - 9, hi + 10, jnp.cos, n=96)))(jnp.asarray(0.0), jnp.asarray(1.0))
    close(m1, ss.beta(a, b).mean(), 1e-12, 0.0)
    close(m2, ss.beta(a, b).moment(2), 1e-12, 0.0)
    close(ecos, math.exp(-0.5 * 0.5**2) * math.cos(1.0), 1e-9, 0.0)  # E cos X = e^{-σ²/2} cos μ


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_sample_estimates_and_welford_match_numpy(dtype, key):
    x = np.asarray(jax.random.normal(key, (500, 3), dtype)) * np.array([1.0, 2.0, 0.5], dtype) + 3
    x64 = x.astype(np.float64)
    close(P.sample_mean(x), x64.mean(0), TOL[dtype], 0.0)
    close(P.sample_variance(x), x64.var(0, ddof=1), 10 * TOL[dtype], 0.0)
    close(P.sample_variance(x, ddof=0), x64.var(0), 10 * TOL[dtype], 0.0)
    close(P.sample_covariance(x), np.cov(x64.T), 10 * TOL[dtype], atol=10 * TOL[dtype])
    mean, var = jax.jit(P.welford)(x)
    chex.assert_type([mean, var], dtype)
    close(mean, x64.mean(0), 10 * TOL[dtype], 0.0)
    close(var, x64.var(0, ddof=1), 10 * TOL[dtype], 0.0)


def test_welford_is_stable_where_the_textbook_formula_cancels(key):
    # float32 data with a large offset: E[x²] - E[x]² loses every digit, Welford keeps them.
    x = (1e4 + jax.random.normal(key, (4096,), jnp.float64)).astype(jnp.float32)
    want = np.var(np.asarray(x, np.float64), ddof=1)
    _, var = jax.jit(P.welford)(x)
    assert abs(float(var) / want - 1) < 1e-3
    x32 = np.asarray(x)
    textbook = (np.mean(x32 * x32) - np.mean(x32) ** 2) * 4096 / 4095
    assert abs(textbook / want - 1) > 1e-2  # the failure Welford avoids, shown on the same data


@settings(max_examples=15, deadline=None)
@given(split=st.integers(0, 40), seed=st.integers(0, 1000))
def test_welford_merge_equals_one_pass(split, seed):
    x = np.random.default_rng(seed).normal(size=(40, 2)) * 3 + 1
    sa, sb = P.welford_init((2,)), P.welford_init((2,))
    for row in x[:split]:
        sa = P.welford_update(sa, row)
    for row in x[split:]:
        sb = P.welford_update(sb, row)
    mean, var = P.welford_finalize(P.welford_merge(sa, sb))
    close(mean, x.mean(0), 1e-12, 0.0)
    close(var, x.var(0, ddof=1), 1e-12, 0.0)
