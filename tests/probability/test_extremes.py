"""Chapter 4 at the extremes (issue 17): magnitudes across float32's and float64's range, empty, degenerate,
NaN/inf inputs. Each function matches an independent reference (mpmath at 40 digits on the exact float inputs,
scipy, numpy) or refuses with a clear error; under jit a bad value is NaN, never a plausible number."""
import jax
import jax.numpy as jnp
import mpmath as mp
import numpy as np
import pytest
import scipy.stats as ss

from fungpt import probability as P
from tests.helpers import F32, F64, LOGPMF, close

mp.mp.dps = 40
DTYPES = [F32, F64]
# float32 results that sum O(1) terms carry a few ulps of the largest term: relative to max(1, |ref|)
LOGPMF_TOL = LOGPMF


def _binom_ref(k, n, p):
    k, n, p = (mp.mpf(float(v)) for v in (k, n, p))
    return float(mp.loggamma(n + 1) - mp.loggamma(k + 1) - mp.loggamma(n - k + 1) + k * mp.log(p)
                 + (n - k) * mp.log1p(-p))


def _poisson_ref(k, rate):
    k, rate = mp.mpf(float(k)), mp.mpf(float(rate))
    return float(k * mp.log(rate) - rate - mp.loggamma(k + 1))


def _abs_close(got, want, tol):
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    assert np.all(np.abs(got - want) <= tol * np.maximum(1, np.abs(want))), (got, want)


BINOM = [(1, 1e6, 1e-6), (0, 1e6, 1e-6), (3, 10, 0.3), (500, 1000, 0.5), (999, 1000, 0.999), (1000, 1000, 0.999),
         (5, 1e5, 1e-4), (30_000, 100_000, 0.3)]


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_binomial_log_prob_keeps_its_digits_where_log_comb_and_k_log_p_cancel(dtype):
    k, n, p = (np.asarray(c, dtype) for c in zip(*BINOM, strict=True))
    got = jax.jit(P.binomial.log_prob)(k, n, p)
    want = [_binom_ref(*a) for a in zip(k, n, p, strict=True)]
    _abs_close(got, want, LOGPMF_TOL[dtype])
    # issue 17's reproducer: -1.829 before, scipy -1.0000
    _abs_close(P.binomial.log_prob(np.asarray(1, dtype), np.asarray(1e6, dtype), np.asarray(1e-6, dtype)),
               _binom_ref(1, dtype.type(1e6), dtype.type(1e-6)), LOGPMF_TOL[dtype])


def test_binomial_log_prob_at_float64_scale():
    k, n, p = np.array([5e9, 4e9, 1.0]), np.array([1e10, 1e10, 1e15]), np.array([0.5, 0.4, 1e-15])
    _abs_close(P.binomial.log_prob(k, n, p), [_binom_ref(*a) for a in zip(k, n, p, strict=True)], 1e-13)


POISSON = [(0, 3.0), (1, 1e-3), (10, 10.0), (100, 90.0), (1e4, 1e4), (1e6, 1e6 + 1e3), (3, 1e4)]


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_poisson_log_prob_vs_mpmath(dtype):
    k, rate = (np.asarray(c, dtype) for c in zip(*POISSON, strict=True))
    got = jax.jit(P.poisson.log_prob)(k, rate)
    _abs_close(got, [_poisson_ref(*a) for a in zip(k, rate, strict=True)], LOGPMF_TOL[dtype])


def test_poisson_log_prob_at_1e10_keeps_its_digits_in_float64():
    # k log λ − λ − log Γ(k+1) subtracts numbers near 2.2e11: the textbook formula keeps 6 digits of −12.43
    got = P.poisson.log_prob(np.float64(1e10), np.float64(1e10))
    close(got, _poisson_ref(1e10, 1e10), 1e-14, 0.0)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_bernoulli_entropy_at_tiny_p(dtype):
    p = np.asarray([1e-20, 1e-8, 0.5, 1 - 1e-7], dtype)
    want = [float(-mp.mpf(float(v)) * mp.log(mp.mpf(float(v))) - (1 - mp.mpf(float(v))) * mp.log1p(-mp.mpf(float(v))))
            for v in p]
    close(P.bernoulli.entropy(p), want, 4e-6 if dtype == F32 else 1e-14, 0.0)


def test_beta_sampler_with_tiny_shapes_has_no_nans_and_follows_scipy(key):
    x = np.asarray(P.beta.sample(key, 0.01, 0.01, (2000,)), np.float64)
    assert not np.isnan(x).any() and np.all((x >= 0) & (x <= 1))
    # Beta(0.01, 0.01) puts most mass within 1e-30 of 0 or 1; near 1 floats round to 1.0, so test the symmetry
    # (#{X < ½} ~ Binomial(n, ½), within 5σ) and KS on the lower half against F(x | X < ½) = 2 F(x)
    lower = x[x < 0.5]
    assert abs(lower.size - x.size / 2) < 5 * np.sqrt(x.size / 4)
    d = ss.kstest(lower, lambda v: 2 * ss.beta(0.01, 0.01).cdf(v)).statistic
    assert d < np.sqrt(-0.5 * np.log(1e-6 / 2) / lower.size), d


def test_poisson_entropy_at_rate_zero_and_tiny():
    close(P.poisson.entropy(0.0), 0.0, 0.0, 0.0)
    r = 1e-3
    close(P.poisson.entropy(np.float64(r)), ss.poisson(r).entropy(), 1e-12, 0.0)


def test_nan_and_inf_inputs():
    want = [np.nan, -np.inf, ss.binom.logpmf(3, 10, 0.5)]
    close(P.binomial.log_prob(np.array([np.nan, np.inf, 3.0]), 10.0, 0.5), want, 1e-6, 0.0)
    close(P.poisson.log_prob(np.array([np.nan, np.inf, 3.0]), 2.0), [np.nan, -np.inf, ss.poisson.logpmf(3, 2.0)],
          1e-6, 0.0)
    close(P.gaussian.log_prob(np.array([np.nan, np.inf]), 0.0, 1.0), ss.norm.logpdf([np.nan, np.inf]), 0.0, 0.0)


@pytest.mark.parametrize("scale", [1e-30, 1e-10, 1.0, 1e10, 1e30])
def test_continuous_log_densities_across_float32_magnitudes(scale):
    s = np.float32(scale)
    # a change of variables x = s·u: log p_X(x) = log p_U(u) − log s
    close(P.gaussian.log_prob(3 * s, s, 2 * s) + np.log(s), ss.norm.logpdf(3, 1, 2), 4e-6, 0.0)
    close(P.exponential.log_prob(2 * s, 1 / s) - np.log(1 / s), ss.expon.logpdf(2), 4e-6, 0.0)
    close(P.uniform.log_prob(s, 0, 4 * s) + np.log(s), ss.uniform(0, 4).logpdf(1), 4e-6, 0.0)


def test_empty_inputs_give_empty_outputs():
    for out in (P.binomial.log_prob(jnp.zeros(0), 10.0, 0.5), P.poisson.log_prob(jnp.zeros(0), 2.0),
                P.gaussian.log_prob(jnp.zeros(0), 0.0, 1.0), P.beta.log_prob(jnp.zeros(0), 2.0, 3.0)):
        assert out.shape == (0,)


def test_multivariate_gaussian_refuses_a_non_positive_definite_covariance():
    cov = jnp.array([[1.0, 2.0], [2.0, 1.0]])  # eigenvalues 3 and -1
    with pytest.raises(ValueError, match="positive definite"):
        P.multivariate_gaussian.log_prob(jnp.zeros(2), jnp.zeros(2), cov)
    with pytest.raises(np.linalg.LinAlgError):  # the reference refuses too
        np.linalg.cholesky(np.asarray(cov))
    assert np.isnan(jax.jit(P.multivariate_gaussian.log_prob)(jnp.zeros(2), jnp.zeros(2), cov))
    assert np.isnan(jax.jit(P.multivariate_gaussian.entropy)(jnp.zeros(2), cov))


def test_degenerate_statistics_refuse_or_give_numpys_nan():
    with pytest.raises(ValueError, match="reducible"):
        P.stationary_distribution(jnp.eye(2))
    assert np.isnan(jax.jit(P.stationary_distribution)(jnp.eye(2))).all()
    for xs in (jnp.zeros(0), jnp.ones(1)):
        with pytest.raises(ValueError, match="more than ddof"):
            P.welford(xs)
    # the streaming form under jit: numpy's nan for the mean of nothing and the ddof=1 variance of one value
    empty = P.welford_init()
    m, v = jax.jit(P.welford_finalize)(empty)
    assert np.isnan(m) and np.isnan(v)
    m1, v1 = P.welford_finalize(P.welford_update(empty, 2.5))
    with pytest.warns(RuntimeWarning):
        want = np.var([2.5], ddof=1)  # nan, with numpy's "degrees of freedom <= 0" warning
    close(m1, 2.5, 0.0, 0.0)
    close(v1, want, 0.0, 0.0)
    counts = np.array([[1.0, 2.0], [0.0, 0.0]])
    with pytest.raises(ValueError):
        ss.chi2_contingency(counts)  # the reference refuses a zero row
    with pytest.raises(ValueError, match="positive total"):
        P.chi_square_independence(counts)
