"""Chapter 4 against independent oracles: scipy.stats (densities, CDFs, moments, entropies, fits, tests),
numpy naive loops over tables, grid posteriors, scipy.linalg eigenvectors, and statistical tolerances taken
from each estimator's own sampling distribution (5 standard errors, or a KS/χ² critical value at α = 1e-6)."""
import importlib.util
import math
import pathlib

import chex
import hypothesis.strategies as st
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.linalg
import scipy.optimize
import scipy.stats as ss
from hypothesis import given, settings

from fungpt import probability as P

F32, F64 = np.dtype("float32"), np.dtype("float64")
DTYPES = [F32, F64]
TOL = {F32: 2e-5, F64: 1e-11}   # relative, for exact formulas
Z = 5.0                          # statistical tolerance: 5 standard errors (two-sided p ≈ 6e-7)
ALPHA = 1e-6                     # significance for KS / χ² goodness-of-fit checks


def _close(actual, expected, rtol, atol=0.0):
    np.testing.assert_allclose(np.asarray(actual, np.float64), np.asarray(expected, np.float64),
                               rtol=rtol, atol=atol)


def _table(seed, shape):
    return np.random.default_rng(seed).dirichlet(np.ones(math.prod(shape))).reshape(shape)


# ------------------------------------------------------------------------------- probability rules

@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**31 - 1))
def test_probability_rules_on_random_tables(seed):
    rng = np.random.default_rng(seed)
    p = _table(seed, (3, 4))
    a, b = rng.random((3, 4)) < 0.5, rng.random((3, 4)) < 0.5
    naive = lambda mask: sum(p[i, j] for i in range(3) for j in range(4) if mask[i, j])
    _close(P.probability(p, a), naive(a), 1e-12)
    _close(P.intersection(p, a, b), naive(a & b), 1e-12, atol=1e-15)
    _close(P.union(p, a, b), naive(a | b), 1e-12, atol=1e-15)
    if naive(b) > 0 and naive(a) > 0:
        _close(P.conditional_probability(p, a, b), naive(a & b) / naive(b), 1e-12, atol=1e-15)
        # Bayes' rule: P(A|B) P(B) = P(B|A) P(A)
        _close(P.conditional_probability(p, a, b) * naive(b), P.conditional_probability(p, b, a) * naive(a),
               1e-12, atol=1e-15)
    _close(P.marginal(p, 0), p.sum(1), 1e-12)
    _close(P.marginal(p, 1), p.sum(0), 1e-12)
    cond = np.asarray(P.conditional(p, 1))  # P(X | Y): columns sum to 1
    _close(cond.sum(0), np.ones(4), 1e-12)
    _close(cond * p.sum(0)[None], p, 1e-12)
    p3 = _table(seed, (2, 3, 2))
    _close(P.marginal(p3, (0, 2)), p3.sum(1), 1e-12)


def test_independence_gap_and_chi_square_match_scipy(key):
    px, py = np.array([0.2, 0.5, 0.3]), np.array([0.6, 0.1, 0.3])
    assert float(P.independence_gap(np.outer(px, py))) < 1e-15
    dep = _table(3, (3, 3))
    want = np.abs(dep - np.outer(dep.sum(1), dep.sum(0))).max()
    _close(P.independence_gap(dep), want, 1e-12)
    counts = np.random.default_rng(0).integers(5, 40, size=(3, 4)).astype(np.float64)
    stat, pval, dof = P.chi_square_independence(counts)
    ref = ss.chi2_contingency(counts, correction=False)
    _close(stat, ref.statistic, 1e-12)
    _close(pval, ref.pvalue, 1e-9)
    assert dof == ref.dof


# ---------------------------------------------------------------------- random variables and moments

@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_exact_moments_of_tables(dtype):
    values, probs = np.array([-1.0, 0.5, 2.0, 4.0]), np.array([0.1, 0.4, 0.3, 0.2])
    mu = sum(v * p for v, p in zip(values, probs, strict=True))
    var = sum((v - mu) ** 2 * p for v, p in zip(values, probs, strict=True))
    _close(P.expectation(values.astype(dtype), probs.astype(dtype)), mu, TOL[dtype])
    _close(P.variance(values.astype(dtype), probs.astype(dtype)), var, TOL[dtype])
    _close(P.expectation(values.astype(dtype), probs.astype(dtype), jnp.exp),
           (np.exp(values) * probs).sum(), TOL[dtype])
    joint, xv, yv = _table(1, (3, 2)), np.array([0.0, 1.0, 3.0]), np.array([-2.0, 5.0])
    mx, my = (joint.sum(1) * xv).sum(), (joint.sum(0) * yv).sum()
    cov = sum(joint[i, j] * (xv[i] - mx) * (yv[j] - my) for i in range(3) for j in range(2))
    _close(P.covariance(joint.astype(dtype), xv.astype(dtype), yv.astype(dtype)), cov, TOL[dtype])
    sx = math.sqrt(sum(joint.sum(1)[i] * (xv[i] - mx) ** 2 for i in range(3)))
    sy = math.sqrt(sum(joint.sum(0)[j] * (yv[j] - my) ** 2 for j in range(2)))
    _close(P.correlation(joint.astype(dtype), xv.astype(dtype), yv.astype(dtype)), cov / (sx * sy), TOL[dtype])


def test_continuous_expectation_by_quadrature_matches_scipy():
    a, b = 2.0, 5.0
    lp = lambda x: P.beta.log_prob(x, a, b)
    lg = lambda x: P.gaussian.log_prob(x, 1.0, 0.5)
    m1, m2, ecos = jax.jit(lambda lo, hi: (
        P.expectation_continuous(lp, lo, hi), P.expectation_continuous(lp, lo, hi, lambda x: x**2),
        P.expectation_continuous(lg, lo - 9, hi + 10, jnp.cos, n=96)))(jnp.asarray(0.0), jnp.asarray(1.0))
    _close(m1, ss.beta(a, b).mean(), 1e-12)
    _close(m2, ss.beta(a, b).moment(2), 1e-12)
    _close(ecos, math.exp(-0.5 * 0.5**2) * math.cos(1.0), 1e-9)  # E cos X = e^{-σ²/2} cos μ


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_sample_estimates_and_welford_match_numpy(dtype, key):
    x = np.asarray(jax.random.normal(key, (500, 3), dtype)) * np.array([1.0, 2.0, 0.5], dtype) + 3
    x64 = x.astype(np.float64)
    _close(P.sample_mean(x), x64.mean(0), TOL[dtype])
    _close(P.sample_variance(x), x64.var(0, ddof=1), 10 * TOL[dtype])
    _close(P.sample_variance(x, ddof=0), x64.var(0), 10 * TOL[dtype])
    _close(P.sample_covariance(x), np.cov(x64.T), 10 * TOL[dtype], atol=10 * TOL[dtype])
    mean, var = jax.jit(P.welford)(x)
    chex.assert_type([mean, var], dtype)
    _close(mean, x64.mean(0), 10 * TOL[dtype])
    _close(var, x64.var(0, ddof=1), 10 * TOL[dtype])


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
    _close(mean, x.mean(0), 1e-12)
    _close(var, x.var(0, ddof=1), 1e-12)


# ------------------------------------------------------------------------------------- distributions

# (family, parameters, scipy distribution, points for log_prob / cdf)
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
    _close(lp, want_lp, tol, atol=tol)
    _close(cdf, ref.cdf(xs), 50 * TOL[dtype], atol=50 * TOL[dtype])
    _close(mean, ref.mean(), TOL[dtype])
    _close(var, ref.var(), TOL[dtype])
    _close(ent, ref.entropy(), 10 * TOL[dtype], atol=10 * TOL[dtype])


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
    _close(P.poisson.entropy(rate), -np.sum(np.exp(lp) * lp), 1e-11)  # the plain sum over ±30σ


def test_multivariate_gaussian_matches_scipy(key):
    mean = np.array([1.0, -1.0, 0.5])
    a = np.random.default_rng(0).normal(size=(3, 3))
    cov = a @ a.T + np.eye(3)
    ref = ss.multivariate_normal(mean, cov)
    x = np.random.default_rng(1).normal(size=(5, 3))
    _close(P.multivariate_gaussian.log_prob(x, mean, cov), ref.logpdf(x), 1e-12)
    _close(P.multivariate_gaussian.log_prob(x[0], mean, cov), ref.logpdf(x[0]), 1e-12)
    _close(P.multivariate_gaussian.entropy(mean, cov), ref.entropy(), 1e-12)
    n = 20000
    s = np.asarray(jax.jit(lambda k: P.multivariate_gaussian.sample(k, mean, cov, (n,)))(key))
    chex.assert_shape(s, (n, 3))
    se_mean = np.sqrt(np.diag(cov) / n)
    assert np.all(np.abs(s.mean(0) - mean) < Z * se_mean)
    # Var of a sample covariance entry: (Σ_ij² + Σ_ii Σ_jj) / n for Gaussian data
    se_cov = np.sqrt((cov**2 + np.outer(np.diag(cov), np.diag(cov))) / n)
    assert np.all(np.abs(np.cov(s.T) - cov) < Z * se_cov)


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


# ----------------------------------------------------------------------------------------------- Bayes

_bayes = jax.jit(lambda prior, table, o, obs: (P.bayes_posterior(prior, table[:, o]),
                                              P.bayes_update_sequence(prior, table, obs)))


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**31 - 1))
def test_bayes_posterior_normalizes_and_equals_table_conditional(seed):
    rng = np.random.default_rng(seed)
    prior = rng.dirichlet(np.ones(4))
    lik_table = rng.dirichlet(np.ones(3), size=4)  # P(o | h), rows sum to 1
    obs = rng.integers(0, 3, size=6)
    (post, evidence), seq = _bayes(prior, lik_table, 1, obs)
    _close(np.sum(post), 1.0, 1e-12)
    joint = prior[:, None] * lik_table  # P(h, o)
    _close(post, joint[:, 1] / joint[:, 1].sum(), 1e-12)
    _close(evidence, joint[:, 1].sum(), 1e-12)
    batch = prior * np.prod(lik_table[:, obs], axis=1)
    _close(seq[-1], batch / batch.sum(), 1e-10)


def test_conjugate_updates_match_grid_posteriors():
    xs = np.array([1, 0, 1, 1, 1, 0, 1, 1, 0, 1], np.float64)
    a, b = P.beta_bernoulli_update(2.0, 3.0, xs)
    grid = np.linspace(1e-6, 1 - 1e-6, 200_001)
    post = ss.beta(2, 3).pdf(grid) * grid ** xs.sum() * (1 - grid) ** (xs.size - xs.sum())
    post /= post.sum()
    _close(ss.beta(float(a), float(b)).mean(), (grid * post).sum(), 1e-8)
    _close(ss.beta(float(a), float(b)).var(), ((grid - (grid * post).sum()) ** 2 * post).sum(), 1e-6)
    ys = np.array([2.1, 1.7, 2.9, 2.4])
    mu_n, tau_n = P.normal_normal_update(0.0, 2.0, 0.8, ys)
    g = np.linspace(-5, 8, 400_001)
    logp = ss.norm(0, 2).logpdf(g) + ss.norm(g[:, None], 0.8).logpdf(ys[None]).sum(1)
    w = np.exp(logp - logp.max())
    w /= w.sum()
    m = (g * w).sum()
    _close(mu_n, m, 1e-8)
    _close(tau_n, math.sqrt(((g - m) ** 2 * w).sum()), 1e-7)


# ------------------------------------------------------------------------------------------- LLN, CLT

def test_law_of_large_numbers(key):
    rate = 2.0
    x = jax.jit(lambda k: P.exponential.sample(k, rate, (100_000,)))(key)
    path = np.asarray(jax.jit(P.running_mean)(x))
    x64 = np.asarray(x, np.float64)
    _close(path, np.cumsum(x64) / np.arange(1, x64.size + 1), 1e-10)
    for n in (100, 10_000, 100_000):  # |x̄_n - μ| ≤ 5 σ/√n, σ = μ = 1/rate
        assert abs(path[n - 1] - 1 / rate) < Z * (1 / rate) / math.sqrt(n)


def test_central_limit_theorem(key):
    n, m = 30, 4000
    means = jax.jit(lambda k: P.sample_means(k, lambda kk, s: P.uniform.sample(kk, 0.0, 1.0, s), n, m))(key)
    z = np.sqrt(n) * (np.asarray(means) - 0.5) / math.sqrt(1 / 12)
    assert abs(z.mean()) < Z / math.sqrt(m)
    assert abs(z.var(ddof=1) - 1) < Z * math.sqrt(2 / m) * 1.1  # Var(s²) = σ⁴(2/(m-1) + κ/m), κ ≈ -1.2/n
    d = float(jax.jit(lambda v: P.ks_statistic(v, lambda t: P.gaussian.cdf(t, 0.0, 1.0)))(jnp.asarray(z)))
    _close(d, ss.kstest(z, ss.norm.cdf).statistic, 1e-10)
    # sampling error (DKW at α) plus Berry-Esseen's bound on |F_n - Φ|: C ρ / (σ³ √n), ρ = E|U - ½|³ = 1/32
    berry_esseen = 0.4748 * (1 / 32) / (1 / 12) ** 1.5 / math.sqrt(n)
    assert d < _ks_critical(m) + berry_esseen
    # skewed parent: exponential means have skewness 2/√n, shrinking as the CLT says
    for n_exp in (4, 64):
        me = np.asarray(jax.jit(lambda k, n_exp=n_exp: P.sample_means(
            k, lambda kk, s: P.exponential.sample(kk, 1.0, s), n_exp, m))(key), np.float64)
        skew = ss.skew(me)
        assert abs(skew - 2 / math.sqrt(n_exp)) < Z * math.sqrt(6 / m) * 2  # SE of skewness ~√(6/m)·(heavier tail)


# ------------------------------------------------------------------------------------------- MLE, MAP

def test_closed_form_mle_matches_scipy_fit():
    rng = np.random.default_rng(0)  # data from numpy: the estimators, not our samplers, are under test
    g = rng.normal(2.0, 1.5, 500)
    mu, sigma = P.mle_gaussian(g)
    ref_mu, ref_sigma = ss.norm.fit(g)
    _close([mu, sigma], [ref_mu, ref_sigma], 1e-10)
    e = rng.exponential(1 / 0.7, 500)
    _, scale = ss.expon.fit(e, floc=0)
    _close(P.mle_exponential(e), 1 / scale, 1e-10)
    c = rng.poisson(4.0, 500)
    res = scipy.optimize.minimize_scalar(lambda lam: -ss.poisson(lam).logpmf(c).sum(), bounds=(0.1, 20),
                                         method="bounded", options={"xatol": 1e-10})
    _close(P.mle_poisson(c), res.x, 1e-7)
    xs = np.array([0, 1, 1, 0, 1, 1, 1, 0])
    _close(P.mle_bernoulli(xs), 5 / 8, 1e-15)
    _close(P.mle_categorical(np.array([0, 2, 2, 1, 2, 0]), 4), [2 / 6, 1 / 6, 3 / 6, 0.0], 1e-15)


def _map_by_scipy(neg_log_post, bounds):
    res = scipy.optimize.minimize_scalar(neg_log_post, bounds=bounds, method="bounded",
                                         options={"xatol": 1e-12})
    return res.x


def test_closed_form_map_matches_numerical_posterior_mode():
    xs = np.array([1, 0, 1, 1, 1, 0, 1], np.float64)
    want = _map_by_scipy(lambda p: -(ss.beta(3, 2).logpdf(p) + ss.bernoulli(p).logpmf(xs).sum()), (1e-9, 1 - 1e-9))
    _close(P.map_bernoulli(xs, 3.0, 2.0), want, 1e-7)
    ys = np.array([2.1, 1.7, 2.9, 2.4])
    want = _map_by_scipy(lambda m: -(ss.norm(0, 2).logpdf(m) + ss.norm(m, 0.8).logpdf(ys).sum()), (-10, 10))
    _close(P.map_gaussian_mean(ys, 0.8, 0.0, 2.0), want, 1e-7)
    cs = np.array([3, 5, 2, 4, 6], np.float64)
    want = _map_by_scipy(lambda lam: -(ss.gamma(2.0, scale=1 / 0.5).logpdf(lam) + ss.poisson(lam).logpmf(cs).sum()),
                         (1e-6, 50))
    _close(P.map_poisson(cs, 2.0, 0.5), want, 1e-7)


def _gauss_nll(params, data):
    mu, log_sigma = params["mu"], params["log_sigma"]
    return -jnp.mean(P.gaussian.log_prob(data, mu, jnp.exp(log_sigma)))


def _bern_neg_log_post(params, data):  # MAP of p = sigmoid(logit) under Beta(3, 2), in p's own density
    p = jax.nn.sigmoid(params)
    return -(jnp.sum(P.bernoulli.log_prob(data, p)) + P.beta.log_prob(p, 3.0, 2.0))


@pytest.mark.parametrize("dtype", [pytest.param(F32, marks=pytest.mark.slow), F64], ids=str)
def test_numerical_mle_and_map_with_fungpt_grad_match_closed_forms(dtype, key):
    from fungpt import optim

    data = np.asarray(P.gaussian.sample(key, 2.0, 1.5, (200,)), dtype)
    params0 = {"mu": jnp.zeros((), dtype), "log_sigma": jnp.zeros((), dtype)}
    fit = jax.jit(lambda p, d: P.fit_numeric(_gauss_nll, p, d, steps=300, optimizer=optim.sgd(0.5)))
    params, losses = fit(params0, data)
    mu, sigma = P.mle_gaussian(data)
    tol = 1e-4 if dtype == F32 else 1e-9  # sgd converges linearly; 300 steps reach rounding level
    _close(params["mu"], mu, tol)
    _close(jnp.exp(params["log_sigma"]), sigma, tol)
    assert float(losses[-1]) <= float(losses[0])
    xs = np.array([1, 0, 1, 1, 1, 0, 1], dtype)
    logit, _ = jax.jit(lambda p, d: P.fit_numeric(_bern_neg_log_post, p, d, steps=400,
                                                  optimizer=optim.sgd(0.3)))(jnp.zeros((), dtype), xs)
    _close(jax.nn.sigmoid(logit), P.map_bernoulli(xs, 3.0, 2.0), tol)


# --------------------------------------------------------------------------------------- Markov chains

def _chain(seed, k=4):
    return np.random.default_rng(seed).dirichlet(np.ones(k) * 0.7, size=k)


_n_step = jax.jit(lambda p0, p, n: (P.n_step(p, n), P.distribution_after(p0, p, n)))


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), n=st.integers(0, 40))
def test_n_step_is_matrix_power(seed, n):
    p = _chain(seed)
    p0 = np.random.default_rng(seed + 1).dirichlet(np.ones(4))
    pn, dist = _n_step(p0, p, n)
    _close(pn, np.linalg.matrix_power(p, n), 1e-10, atol=1e-14)
    _close(dist, p0 @ np.linalg.matrix_power(p, n), 1e-10, atol=1e-14)
    _close(P.n_step(p, int(n)), np.linalg.matrix_power(p, n), 1e-10, atol=1e-14)  # the unrolled path


def test_n_step_gradient_with_fungpt_grad():
    import fungpt

    f = lambda a: P.n_step(jnp.asarray([[1.0, 0.0], [0.5, 0.5]]) + a * jnp.asarray([[-1.0, 1.0], [0.0, 0.0]]), 7)[0, 0]
    _close(jax.jit(fungpt.grad(f))(0.1), jax.grad(f)(0.1), 1e-12)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_stationary_distribution_eigenvector_and_power_iteration(dtype):
    p = _chain(7, 5)
    w, vl = scipy.linalg.eig(p, left=True, right=False)
    v = np.real(vl[:, np.argmin(np.abs(w - 1))])
    want = v / v.sum()
    pi, (pi_pow, iters) = jax.jit(lambda q: (P.stationary_distribution(q), P.stationary_power(q)))(
        p.astype(dtype))
    assert pi.dtype == dtype
    _close(pi, want, 20 * TOL[dtype])
    _close(pi_pow, want, 100 * TOL[dtype])
    assert 0 < int(iters) < 10_000


def test_sample_path_transitions_and_mixing(key):
    p = np.array([[0.9, 0.1, 0.0], [0.2, 0.7, 0.1], [0.1, 0.2, 0.7]])
    path = np.asarray(jax.jit(P.sample_path, static_argnums=3)(key, p, 0, 30_000))
    assert path.shape == (30_001,) and path[0] == 0
    est = np.asarray(P.estimate_transition_matrix(path, 3))
    visits = np.bincount(path[:-1], minlength=3)
    # given the visits, row i's transition counts are multinomial(N_i, P[i]): SE = √(p(1-p)/N_i)
    se = np.sqrt(p * (1 - p) / visits[:, None])
    assert np.all(np.abs(est - p) <= Z * se + 1e-12)
    # worst-start TV distance to π, against a naive numpy loop
    pi, curve, t_mix = jax.jit(lambda q: (P.stationary_distribution(q), P.mixing_curve(q, 30),
                                          P.mixing_time(q, 0.25, 30)))(p)
    pi, curve = np.asarray(pi), np.asarray(curve)
    naive, pt = [], np.eye(3)
    for _ in range(30):
        naive.append(max(0.5 * np.abs(pt[i] - pi).sum() for i in range(3)))
        pt = pt @ p
    _close(curve, naive, 1e-10, atol=1e-14)
    assert int(t_mix) == int(np.argmax(np.array(naive) <= 0.25))
    # asymptotic decay rate = second largest |eigenvalue|
    lam2 = sorted(np.abs(np.linalg.eigvals(p)))[-2]
    _close(curve[29] / curve[28], lam2, 1e-3)


# ----------------------------------------------------------------------------------------- bad inputs

def test_bad_inputs_raise_clear_errors():
    with pytest.raises(ValueError, match="probabilities"):
        P.bernoulli.sample(jax.random.key(0), 1.3)
    with pytest.raises(ValueError, match="sum to 1"):
        P.categorical.sample(jax.random.key(0), np.array([0.5, 0.6]))
    with pytest.raises(TypeError, match="Python int"):
        P.binomial.sample(jax.random.key(0), 10.0, 0.5)
    with pytest.raises(ValueError, match="sigma"):
        P.gaussian.sample(jax.random.key(0), 0.0, -1.0)
    with pytest.raises(ValueError, match="square"):
        P.n_step(np.ones((2, 3)) / 3, 2)
    with pytest.raises(ValueError, match="rows"):
        P.stationary_distribution(np.array([[0.5, 0.6], [0.5, 0.5]]))
    with pytest.raises(ValueError, match=r"\(K,\)"):
        P.bayes_posterior(np.array([0.5, 0.5]), np.array([0.1, 0.2, 0.3]))
    with pytest.raises(ValueError, match="mean must be"):
        P.multivariate_gaussian.log_prob(np.zeros(2), np.zeros(2), np.eye(3))
    with pytest.raises(ValueError, match="ddof"):
        P.sample_variance(np.ones(1))


def test_experiment_runs_quick(tmp_path):
    # in-process (import + main) under the strict harness: no second interpreter and jax import to pay for
    path = pathlib.Path(__file__).resolve().parents[1] / "experiments" / "ch04_probability.py"
    spec = importlib.util.spec_from_file_location("ch04_probability", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.main(["--quick", "--out", str(tmp_path)])
    assert (tmp_path / "ch04_probability.json").exists()


def test_vmap_over_parameters_and_no_retrace(key):
    @jax.jit
    @chex.assert_max_traces(n=1)
    def log_probs(x, mus, sigmas):  # one compiled function for a batch of Gaussians
        return jax.vmap(lambda m, s: P.gaussian.log_prob(x, m, s))(mus, sigmas)

    x = np.asarray(0.3)
    for shift in (0.0, 1.0):  # new values, same shapes and dtypes: no second trace
        mus, sigmas = np.array([0.0, 1.0, -2.0]) + shift, np.array([1.0, 0.5, 2.0])
        _close(log_probs(x, mus, sigmas), ss.norm(mus, sigmas).logpdf(0.3), 1e-12)
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
        _close(got, math.log(x) - sps.digamma(a) + sps.digamma(a + b), 1e-12)
        got_b = jax.grad(lambda b: P.beta.log_prob(x, 2.0, b))(1.0)
        _close(got_b, math.log(1 - x) - sps.digamma(1.0) + sps.digamma(3.0), 1e-12)
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
    _close(P.bernoulli.log_prob(np.array([0.0, 1.0]), 0.0), ss.bernoulli.logpmf([0, 1], 0.0), 1e-12)
    _close(P.binomial.log_prob(np.array([0.0, 3.0]), 3, 1.0), ss.binom.logpmf([0, 3], 3, 1.0), 1e-12)
    _close(P.poisson.log_prob(np.array([0.0, 1.0]), 0.0), ss.poisson.logpmf([0, 1], 0.0), 1e-12)
    assert np.isnan(float(jax.jit(P.gaussian.log_prob)(0.0, 0.0, -1.0)))
