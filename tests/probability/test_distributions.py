"""Distribution families against scipy.stats (densities, CDFs, moments, entropies), samplers by KS/chi-square
tests at alpha = 1e-6, gradients against jax.grad."""
import math

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.stats as ss

from fungpt import probability as P
from tests.helpers import F32, F64, FORMULA, close

DTYPES = [F32, F64]


TOL = FORMULA  # relative, for exact formulas (f64: summed terms)


Z = 5.0                          # statistical tolerance: 5 standard errors (two-sided p ≈ 6e-7)


ALPHA = 1e-6                     # significance for KS / χ² goodness-of-fit checks


SPECS = [
    ("bernoulli", (0.3,), ss.bernoulli(0.3), [0, 1]),
    ("binomial", (12, 0.35), ss.binom(12, 0.35), [0, 3, 7, 12]),
    ("categorical", (np.array([0.1, 0.5, 0.15, 0.25]),), ss.rv_discrete(values=([0, 1, 2, 3],
                                                                                [0.1, 0.5, 0.15, 0.25])),
     [0, 1, 2, 3]),
    ("poisson", (3.5,), ss.poisson(3.5), [0, 2, 5, 11]),
    ("poisson", (250.0,), ss.poisson(250.0), [200, 250, 301]),
    ("uniform", (-1.0, 2.5), ss.uniform(-1.0, 3.5), [-0.5, 0.0, 2.0]),
    ("gaussian", (1.5, 0.7), ss.norm(1.5, 0.7), [-1.0, 1.5, 3.9]),
    ("exponential", (2.5,), ss.expon(scale=1 / 2.5), [0.01, 0.4, 3.0]),
    ("beta", (2.5, 0.8), ss.beta(2.5, 0.8), [0.05, 0.5, 0.97]),
]


DISCRETE = {"bernoulli", "binomial", "categorical", "poisson"}


def _params(params, dtype):
    # n of the binomial stays a Python int; float parameters take the test's dtype
    return tuple(p if isinstance(p, int) else np.asarray(p, dtype) for p in params)


def _function_cases():
    # every family in float64; float32 by default for the families with special functions (Poisson's
    # gammaincc and windowed entropy, Beta's betainc/digamma, the Gaussian's erfc), the rest under -m slow
    for spec in SPECS:
        for dtype in DTYPES:
            slow = dtype == F32 and spec[0] not in ("gaussian", "poisson", "beta")
            yield pytest.param(spec, dtype, id=f"{spec[0]}{spec[1]}-{dtype}",
                               marks=[pytest.mark.slow] if slow else [])


SAMPLE_N = 20_000


_samplers = {}


def _draw(name, ps, key):
    fam = getattr(P, name)
    fn = _samplers.setdefault(name, jax.jit(lambda k, *q: fam.sample(k, *q, shape=(SAMPLE_N,)),
                                            static_argnums=(1,) if name == "binomial" else ()))
    return np.asarray(fn(key, *ps))


def _ks_critical(n):
    # P(√n D_n > t) ≤ 2 exp(-2t²) (Dvoretzky-Kiefer-Wolfowitz): the α-level bound on D_n
    return math.sqrt(math.log(2 / ALPHA) / (2 * n))


def _sampler_cases():
    # float64 for every family by default; float32 repeats cost a compile each, so only the Gaussian's
    # runs by default and the rest under `-m slow` (make test-all)
    for spec in SPECS:
        for dtype in DTYPES:
            slow = dtype == F32 and spec[0] != "gaussian"
            yield pytest.param(spec, dtype, id=f"{spec[0]}{spec[1]}-{dtype}",
                               marks=[pytest.mark.slow] if slow else [])


@pytest.mark.parametrize(("spec", "dtype"), list(_function_cases()))
def test_distribution_functions_match_scipy(spec, dtype):
    name, params, ref, xs = spec
    fam = getattr(P, name)
    ps = _params(params, dtype)
    xs = np.asarray(xs, np.float64)
    ints = tuple(i for i, p in enumerate(ps) if isinstance(p, int))  # the binomial's n stays static
    everything = jax.jit(lambda x, *q: (fam.log_prob(x, *q), fam.cdf(x, *q), fam.mean(*q), fam.variance(*q),
                                        fam.entropy(*q)), static_argnums=tuple(i + 1 for i in ints))
    lp, cdf, mean, var, ent = everything(xs.astype(dtype), *ps)
    chex.assert_type([lp, cdf, mean, var, ent], dtype)
    want_lp = ref.logpmf(xs) if name in DISCRETE else ref.logpdf(xs)
    tol = TOL[dtype] * (10 if name == "poisson" else 1)
    close(lp, want_lp, tol, atol=tol)
    close(cdf, ref.cdf(xs), 50 * TOL[dtype], atol=50 * TOL[dtype])
    close(mean, ref.mean(), TOL[dtype], 0.0)
    close(var, ref.var(), TOL[dtype], 0.0)
    close(ent, ref.entropy(), 10 * TOL[dtype], atol=10 * TOL[dtype])


def test_log_prob_outside_support_is_minus_inf():
    assert float(P.bernoulli.log_prob(2.0, 0.3)) == -np.inf
    assert float(P.binomial.log_prob(13.0, 12, 0.3)) == -np.inf
    assert float(P.binomial.log_prob(2.5, 12, 0.3)) == -np.inf
    assert float(P.poisson.log_prob(-1.0, 2.0)) == -np.inf
    assert float(P.categorical.log_prob(4, np.array([0.5, 0.5]))) == -np.inf
    assert float(P.uniform.log_prob(3.0, 0.0, 1.0)) == -np.inf
    assert float(P.exponential.log_prob(-0.1, 1.0)) == -np.inf
    assert float(P.beta.log_prob(1.2, 2.0, 2.0)) == -np.inf


@pytest.mark.parametrize("rate", [1e3, 2e4])
def test_poisson_entropy_asymptotic_branch(rate):
    k = np.arange(max(0, int(rate - 30 * math.sqrt(rate))), int(rate + 30 * math.sqrt(rate)))
    lp = ss.poisson(rate).logpmf(k)
    close(P.poisson.entropy(rate), -np.sum(np.exp(lp) * lp), 1e-11, 0.0)  # the plain sum over ±30σ


def test_multivariate_gaussian_matches_scipy(key):
    mean = np.array([1.0, -1.0, 0.5])
    a = np.random.default_rng(0).normal(size=(3, 3))
    cov = a @ a.T + np.eye(3)
    ref = ss.multivariate_normal(mean, cov)
    x = np.random.default_rng(1).normal(size=(5, 3))
    close(P.multivariate_gaussian.log_prob(x, mean, cov), ref.logpdf(x), 1e-12, 0.0)
    close(P.multivariate_gaussian.log_prob(x[0], mean, cov), ref.logpdf(x[0]), 1e-12, 0.0)
    close(P.multivariate_gaussian.entropy(mean, cov), ref.entropy(), 1e-12, 0.0)
    n = 20000
    s = np.asarray(jax.jit(lambda k: P.multivariate_gaussian.sample(k, mean, cov, (n,)))(key))
    chex.assert_shape(s, (n, 3))
    se_mean = np.sqrt(np.diag(cov) / n)
    assert np.all(np.abs(s.mean(0) - mean) < Z * se_mean)
    # Var of a sample covariance entry: (Σ_ij² + Σ_ii Σ_jj) / n for Gaussian data
    se_cov = np.sqrt((cov**2 + np.outer(np.diag(cov), np.diag(cov))) / n)
    assert np.all(np.abs(np.cov(s.T) - cov) < Z * se_cov)


@pytest.mark.parametrize(("spec", "dtype"), list(_sampler_cases()))
def test_samplers_match_scipy(spec, dtype, key):
    name, params, ref, _ = spec
    x = _draw(name, _params(params, dtype), key).astype(np.float64)
    n = x.size
    mu, var = ref.mean(), ref.var()
    assert abs(x.mean() - mu) < Z * math.sqrt(var / n), "sample mean off by more than 5 standard errors"
    mu4 = (float(ref.stats(moments="k")) + 3) * var**2  # Var(s²) ≈ (μ₄ - σ⁴)/n
    assert abs(x.var() - var) < Z * math.sqrt((mu4 - var**2) / n) + 1e-12, "sample variance off by > 5 SE"
    if name in DISCRETE:  # χ² goodness of fit over the support, tails pooled to expected counts ≥ 5
        ks = np.arange(x.max() + 2 if name != "bernoulli" else 2)
        exp_counts = ref.pmf(ks) * n
        keep = exp_counts >= 5
        obs = np.bincount(x.astype(int), minlength=ks.size)[: ks.size]
        o = np.append(obs[keep], n - obs[keep].sum())
        e = np.append(exp_counts[keep], n - exp_counts[keep].sum())
        o, e = (o, e) if e[-1] >= 5 else (o[:-1], e[:-1] * o[:-1].sum() / e[:-1].sum())
        assert ss.chisquare(o, e).pvalue > ALPHA
    else:
        assert ss.kstest(x, ref.cdf).statistic < _ks_critical(n)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_log_prob_gradients_with_fungpt_grad(dtype):
    import fungpt

    x = np.asarray([0.2, 0.5, 0.9], dtype)
    def nll_beta(ab):
        return -jnp.sum(P.beta.log_prob(x, ab[0], ab[1]))

    def nll_gauss(ms):
        return -jnp.sum(P.gaussian.log_prob(x, ms[0], ms[1]))

    both = jax.jit(lambda p1, p2: ((fungpt.grad(nll_beta)(p1), fungpt.grad(nll_gauss)(p2)),
                                   (jax.grad(nll_beta)(p1), jax.grad(nll_gauss)(p2))))
    ours, oracle = both(np.asarray([2.0, 3.0], dtype), np.asarray([0.3, 0.8], dtype))
    chex.assert_type(ours, dtype)
    chex.assert_trees_all_close(ours, oracle, rtol=10 * TOL[dtype], atol=10 * TOL[dtype])


def test_kl_monte_carlo_within_standard_errors_of_closed_form(key):
    m1, s1, m2, s2 = 0.5, 1.2, -0.3, 0.7
    exact = math.log(s2 / s1) + (s1**2 + (m1 - m2) ** 2) / (2 * s2**2) - 0.5
    est, se = jax.jit(lambda k: P.kl_monte_carlo(
        k, lambda kk, shape: P.gaussian.sample(kk, m1, s1, shape),
        lambda t: P.gaussian.log_prob(t, m1, s1), lambda t: P.gaussian.log_prob(t, m2, s2), 20000))(key)
    assert abs(float(est) - exact) < Z * float(se)


def test_vmap_over_parameters_and_no_retrace(key):
    @jax.jit
    @chex.assert_max_traces(n=1)
    def log_probs(x, mus, sigmas):  # one compiled function for a batch of Gaussians
        return jax.vmap(lambda m, s: P.gaussian.log_prob(x, m, s))(mus, sigmas)

    x = np.asarray(0.3)
    for shift in (0.0, 1.0):  # new values, same shapes and dtypes: no second trace
        mus, sigmas = np.array([0.0, 1.0, -2.0]) + shift, np.array([1.0, 0.5, 2.0])
        close(log_probs(x, mus, sigmas), ss.norm(mus, sigmas).logpdf(0.3), 1e-12, 0.0)
    draws = jax.jit(jax.vmap(lambda k, r: P.poisson.sample(k, r, (2000,))))(jax.random.split(key, 3),
                                                                           jnp.asarray([0.5, 4.0, 40.0]))
    chex.assert_shape(draws, (3, 2000))
    for row, rate in zip(np.asarray(draws), (0.5, 4.0, 40.0), strict=True):
        assert abs(row.mean() - rate) < Z * math.sqrt(rate / row.size)


def test_log_prob_gradients_at_the_boundary_of_the_parameter_space():
    # Beta(1, b) (a uniform-like prior) and Bernoulli at p = 0 or 1: the derivatives are finite there.
    # d/da log Beta(x; a, b) = log x - ψ(a) + ψ(a + b); the 0·log 0 mask used to drop the log x term at a = 1.
    import scipy.special as sps
    x, b = 0.3, 2.5
    for a in (1.0, 2.0):
        got = jax.grad(lambda a: P.beta.log_prob(x, a, b))(a)
        close(got, math.log(x) - sps.digamma(a) + sps.digamma(a + b), 1e-12, 0.0)
        got_b = jax.grad(lambda b: P.beta.log_prob(x, 2.0, b))(1.0)
        close(got_b, math.log(1 - x) - sps.digamma(1.0) + sps.digamma(3.0), 1e-12, 0.0)
    # d/dp log(1 - p) = -1/(1 - p) at p = 0 (x = 0); d/dp log p = 1/p at p = 1 (x = 1): was NaN.
    assert float(jax.grad(lambda p: P.bernoulli.log_prob(0.0, p))(0.0)) == -1.0
    assert float(jax.grad(lambda p: P.bernoulli.log_prob(1.0, p))(1.0)) == 1.0
    assert float(P.beta.log_prob(0.0, 1.0, 2.0)) == pytest.approx(ss.beta.logpdf(0.0, 1.0, 2.0), rel=1e-12)


@pytest.mark.parametrize("call", [
    lambda: P.bernoulli.log_prob(1.0, 1.5),          # was log(1.5): a finite, wrong number
    lambda: P.bernoulli.cdf(0.0, -0.2),
    lambda: P.binomial.log_prob(1.0, 3, 1.5),
    lambda: P.binomial.cdf(1.0, 3, -0.5),
    lambda: P.binomial.log_prob(1.0, 2.5, 0.5),
    lambda: P.beta.log_prob(0.5, -1.0, 2.0),         # was -inf, as if x were outside the support
    lambda: P.beta.cdf(0.5, 1.0, 0.0),
    lambda: P.uniform.log_prob(0.0, 1.0, -1.0),      # high < low: was -inf
    lambda: P.uniform.cdf(0.0, 1.0, 1.0),
    lambda: P.gaussian.log_prob(0.0, 0.0, -1.0),
    lambda: P.gaussian.cdf(0.0, 0.0, -1.0),          # was 0.5
    lambda: P.exponential.log_prob(1.0, -2.0),
    lambda: P.exponential.cdf(1.0, 0.0),
    lambda: P.poisson.log_prob(1.0, -2.0),
    lambda: P.poisson.cdf(1.0, -2.0),
])
def test_invalid_parameters_given_concretely_raise(call):
    with pytest.raises(ValueError, match="must"):
        call()


def test_boundary_parameters_stay_valid_and_unchecked_under_jit():
    # p in {0, 1} and Poisson rate 0 are legal (scipy agrees); under jit the checks are skipped.
    close(P.bernoulli.log_prob(np.array([0.0, 1.0]), 0.0), ss.bernoulli.logpmf([0, 1], 0.0), 1e-12, 0.0)
    close(P.binomial.log_prob(np.array([0.0, 3.0]), 3, 1.0), ss.binom.logpmf([0, 3], 3, 1.0), 1e-12, 0.0)
    close(P.poisson.log_prob(np.array([0.0, 1.0]), 0.0), ss.poisson.logpmf([0, 1], 0.0), 1e-12, 0.0)
    assert np.isnan(float(jax.jit(P.gaussian.log_prob)(0.0, 0.0, -1.0)))
