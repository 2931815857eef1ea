"""Bayes, LLN/CLT, MLE and MAP against grid posteriors, scipy fits and numerical posterior modes."""
import math

import hypothesis.strategies as st
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.linalg
import scipy.optimize
import scipy.stats as ss
from hypothesis import given, settings

import fungpt
from fungpt import probability as P
from tests.helpers import F32, F64, close

Z = 5.0                          # statistical tolerance: 5 standard errors (two-sided p ≈ 6e-7)


ALPHA = 1e-6                     # significance for KS / χ² goodness-of-fit checks


def _ks_critical(n):
    # P(√n D_n > t) ≤ 2 exp(-2t²) (Dvoretzky-Kiefer-Wolfowitz): the α-level bound on D_n
    return math.sqrt(math.log(2 / ALPHA) / (2 * n))


_bayes = jax.jit(lambda prior, table, o, obs: (P.bayes_posterior(prior, table[:, o]),
                                              P.bayes_update_sequence(prior, table, obs)))


def _map_by_scipy(neg_log_post, bounds):
    res = scipy.optimize.minimize_scalar(neg_log_post, bounds=bounds, method="bounded",
                                         options={"xatol": 1e-12})
    return res.x


def _gauss_nll(params, data):
    mu, log_sigma = params["mu"], params["log_sigma"]
    return -jnp.mean(P.gaussian.log_prob(data, mu, jnp.exp(log_sigma)))


def _bern_neg_log_post(params, data):  # MAP of p = sigmoid(logit) under Beta(3, 2), in p's own density
    p = jax.nn.sigmoid(params)
    return -(jnp.sum(P.bernoulli.log_prob(data, p)) + P.beta.log_prob(p, 3.0, 2.0))


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**31 - 1))
def test_bayes_posterior_normalizes_and_equals_table_conditional(seed):
    rng = np.random.default_rng(seed)
    prior = rng.dirichlet(np.ones(4))
    lik_table = rng.dirichlet(np.ones(3), size=4)  # P(o | h), rows sum to 1
    obs = rng.integers(0, 3, size=6)
    (post, evidence), seq = _bayes(prior, lik_table, 1, obs)
    close(np.sum(post), 1.0, 1e-12, 0.0)
    joint = prior[:, None] * lik_table  # P(h, o)
    close(post, joint[:, 1] / joint[:, 1].sum(), 1e-12, 0.0)
    close(evidence, joint[:, 1].sum(), 1e-12, 0.0)
    batch = prior * np.prod(lik_table[:, obs], axis=1)
    close(seq[-1], batch / batch.sum(), 1e-10, 0.0)


def test_conjugate_updates_match_grid_posteriors():
    xs = np.array([1, 0, 1, 1, 1, 0, 1, 1, 0, 1], np.float64)
    a, b = P.beta_bernoulli_update(2.0, 3.0, xs)
    grid = np.linspace(1e-6, 1 - 1e-6, 200_001)
    post = ss.beta(2, 3).pdf(grid) * grid ** xs.sum() * (1 - grid) ** (xs.size - xs.sum())
    post /= post.sum()
    close(ss.beta(float(a), float(b)).mean(), (grid * post).sum(), 1e-8, 0.0)
    close(ss.beta(float(a), float(b)).var(), ((grid - (grid * post).sum()) ** 2 * post).sum(), 1e-6, 0.0)
    ys = np.array([2.1, 1.7, 2.9, 2.4])
    mu_n, tau_n = P.normal_normal_update(0.0, 2.0, 0.8, ys)
    g = np.linspace(-5, 8, 400_001)
    logp = ss.norm(0, 2).logpdf(g) + ss.norm(g[:, None], 0.8).logpdf(ys[None]).sum(1)
    w = np.exp(logp - logp.max())
    w /= w.sum()
    m = (g * w).sum()
    close(mu_n, m, 1e-8, 0.0)
    close(tau_n, math.sqrt(((g - m) ** 2 * w).sum()), 1e-7, 0.0)


def test_law_of_large_numbers(key):
    rate = 2.0
    x = jax.jit(lambda k: P.exponential.sample(k, rate, (100_000,)))(key)
    path = np.asarray(jax.jit(P.running_mean)(x))
    x64 = np.asarray(x, np.float64)
    close(path, np.cumsum(x64) / np.arange(1, x64.size + 1), 1e-10, 0.0)
    for n in (100, 10_000, 100_000):  # |x̄_n - μ| ≤ 5 σ/√n, σ = μ = 1/rate
        assert abs(path[n - 1] - 1 / rate) < Z * (1 / rate) / math.sqrt(n)


def test_central_limit_theorem(key):
    n, m = 30, 4000
    means = jax.jit(lambda k: P.sample_means(k, lambda kk, s: P.uniform.sample(kk, 0.0, 1.0, s), n, m))(key)
    z = np.sqrt(n) * (np.asarray(means) - 0.5) / math.sqrt(1 / 12)
    assert abs(z.mean()) < Z / math.sqrt(m)
    assert abs(z.var(ddof=1) - 1) < Z * math.sqrt(2 / m) * 1.1  # Var(s²) = σ⁴(2/(m-1) + κ/m), κ ≈ -1.2/n
    d = float(jax.jit(lambda v: P.ks_statistic(v, lambda t: P.gaussian.cdf(t, 0.0, 1.0)))(jnp.asarray(z)))
    close(d, ss.kstest(z, ss.norm.cdf).statistic, 1e-10, 0.0)
    # sampling error (DKW at α) plus Berry-Esseen's bound on |F_n - Φ|: C ρ / (σ³ √n), ρ = E|U - ½|³ = 1/32
    berry_esseen = 0.4748 * (1 / 32) / (1 / 12) ** 1.5 / math.sqrt(n)
    assert d < _ks_critical(m) + berry_esseen
    # skewed parent: exponential means have skewness 2/√n, shrinking as the CLT says
    for n_exp in (4, 64):
        me = np.asarray(jax.jit(lambda k, n_exp=n_exp: P.sample_means(
            k, lambda kk, s: P.exponential.sample(kk, 1.0, s), n_exp, m))(key), np.float64)
        skew = ss.skew(me)
        assert abs(skew - 2 / math.sqrt(n_exp)) < Z * math.sqrt(6 / m) * 2  # SE of skewness ~√(6/m)·(heavier tail)


def test_closed_form_mle_matches_scipy_fit():
    rng = np.random.default_rng(0)  # data from numpy: the estimators, not our samplers, are under test
    g = rng.normal(2.0, 1.5, 500)
    mu, sigma = P.mle_gaussian(g)
    ref_mu, ref_sigma = ss.norm.fit(g)
    close([mu, sigma], [ref_mu, ref_sigma], 1e-10, 0.0)
    e = rng.exponential(1 / 0.7, 500)
    _, scale = ss.expon.fit(e, floc=0)
    close(P.mle_exponential(e), 1 / scale, 1e-10, 0.0)
    c = rng.poisson(4.0, 500)
    res = scipy.optimize.minimize_scalar(lambda lam: -ss.poisson(lam).logpmf(c).sum(), bounds=(0.1, 20),
                                         method="bounded", options={"xatol": 1e-10})
    close(P.mle_poisson(c), res.x, 1e-7, 0.0)
    xs = np.array([0, 1, 1, 0, 1, 1, 1, 0])
    close(P.mle_bernoulli(xs), 5 / 8, 1e-15, 0.0)
    close(P.mle_categorical(np.array([0, 2, 2, 1, 2, 0]), 4), [2 / 6, 1 / 6, 3 / 6, 0.0], 1e-15, 0.0)


def test_closed_form_map_matches_numerical_posterior_mode():
    xs = np.array([1, 0, 1, 1, 1, 0, 1], np.float64)
    want = _map_by_scipy(lambda p: -(ss.beta(3, 2).logpdf(p) + ss.bernoulli(p).logpmf(xs).sum()), (1e-9, 1 - 1e-9))
    close(P.map_bernoulli(xs, 3.0, 2.0), want, 1e-7, 0.0)
    ys = np.array([2.1, 1.7, 2.9, 2.4])
    want = _map_by_scipy(lambda m: -(ss.norm(0, 2).logpdf(m) + ss.norm(m, 0.8).logpdf(ys).sum()), (-10, 10))
    close(P.map_gaussian_mean(ys, 0.8, 0.0, 2.0), want, 1e-7, 0.0)
    cs = np.array([3, 5, 2, 4, 6], np.float64)
    want = _map_by_scipy(lambda lam: -(ss.gamma(2.0, scale=1 / 0.5).logpdf(lam) + ss.poisson(lam).logpmf(cs).sum()),
                         (1e-6, 50))
    close(P.map_poisson(cs, 2.0, 0.5), want, 1e-7, 0.0)


@pytest.mark.parametrize("dtype", [pytest.param(F32, marks=pytest.mark.slow), F64], ids=str)
def test_numerical_mle_and_map_with_fungpt_grad_match_closed_forms(dtype, key):
    from fungpt import optim

    data = np.asarray(P.gaussian.sample(key, 2.0, 1.5, (200,)), dtype)
    params0 = {"mu": jnp.zeros((), dtype), "log_sigma": jnp.zeros((), dtype)}
    fit = jax.jit(lambda p, d: P.fit_numeric(_gauss_nll, p, d, steps=300, optimizer=optim.sgd(0.5)))
    params, losses = fit(params0, data)
    mu, sigma = P.mle_gaussian(data)
    tol = 1e-4 if dtype == F32 else 1e-9  # sgd converges linearly; 300 steps reach rounding level
    close(params["mu"], mu, tol, 0.0)
    close(jnp.exp(params["log_sigma"]), sigma, tol, 0.0)
    assert float(losses[-1]) <= float(losses[0])
    xs = np.array([1, 0, 1, 1, 1, 0, 1], dtype)
    logit, _ = jax.jit(lambda p, d: P.fit_numeric(_bern_neg_log_post, p, d, steps=400,
                                                  optimizer=optim.sgd(0.3)))(jnp.zeros((), dtype), xs)
    close(jax.nn.sigmoid(logit), P.map_bernoulli(xs, 3.0, 2.0), tol, 0.0)


_intervals = jax.jit(lambda a, b, mu, s, lv: (P.beta_credible_interval(a, b, lv),
                                              P.gaussian_credible_interval(mu, s, lv)))


@pytest.mark.parametrize("dtype", [pytest.param(F32, marks=pytest.mark.slow), F64], ids=str)  # a betainc compile each
def test_credible_intervals_match_scipy_quantiles(dtype):
    rng = np.random.default_rng(11)
    a, b = np.exp(rng.uniform(-1.5, 4, 24)), np.exp(rng.uniform(-1.5, 4, 24))  # Beta(0.2..55, 0.2..55)
    mu, s, lv = rng.standard_normal(24), np.exp(rng.uniform(-3, 3, 24)), rng.uniform(0.5, 0.999, 24)
    (blo, bhi), (glo, ghi) = _intervals(*(np.asarray(v, dtype) for v in (a, b, mu, s, lv)))
    assert blo.dtype == dtype and ghi.dtype == dtype
    ref = ss.beta(a, b).ppf(np.stack([(1 - lv) / 2, (1 + lv) / 2]))
    rtol = 5e-5 if dtype == F32 else 1e-9                              # I⁻¹ is ill-conditioned in the thin tails
    close(np.stack([blo, bhi]), ref, rtol, 1e-30)
    close(np.stack([glo, ghi]), ss.norm(mu, s).ppf(np.stack([(1 - lv) / 2, (1 + lv) / 2])), rtol * 10, 1e-12)


def test_credible_interval_derivative_in_level_is_the_inverse_density():
    # d/dq I⁻¹(q) = 1 / pdf(I⁻¹(q)); the upper end moves at q = (1 + level)/2, so d hi/d level = ½ / pdf(hi)
    hi = lambda lv: P.beta_credible_interval(3.0, 7.0, lv)[1]
    d = jax.jit(lambda lv: jnp.stack([jax.grad(hi)(lv), fungpt.grad(hi)(lv)]))(0.9)
    close(d, 0.5 / ss.beta(3, 7).pdf(ss.beta(3, 7).ppf(0.95)) * np.ones(2), 1e-9, 0.0)


def test_map_moves_from_the_prior_to_the_mle_as_n_grows():
    # MAP = argmax of the log posterior (scipy) for Beta–Bernoulli, always between the MLE and the prior mode,
    # with the prior's pull shrinking like (a + b - 2)/(n + a + b - 2)
    rng = np.random.default_rng(12)
    a, b = 8.0, 2.0
    for n in (1, 10, 100, 1000):
        xs = (rng.uniform(size=n) < 0.3).astype(np.float64)
        want = _map_by_scipy(lambda p, xs=xs: -(ss.beta(a, b).logpdf(p) + ss.binom(len(xs), p).logpmf(xs.sum())),
                             (1e-9, 1 - 1e-9))
        got, mle = float(P.map_bernoulli(xs, a, b)), xs.mean()
        close(got, want, 1e-7, 0.0)
        prior_mode = (a - 1) / (a + b - 2)
        close((got - mle) / (prior_mode - mle), (a + b - 2) / (n + a + b - 2), 1e-9, 0.0)
    with pytest.raises(ValueError, match="must be >= 1"):
        P.map_bernoulli(np.zeros(3), 0.5, 2.0)
    with pytest.raises(ValueError, match="level"):
        P.beta_credible_interval(1.0, 1.0, 1.0)
