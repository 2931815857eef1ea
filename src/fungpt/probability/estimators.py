"""Bayes' theorem (discrete and conjugate updates), the law of large numbers and the CLT, and point estimates:
MLE, MAP, and numeric fitting with ``fungpt.grad``."""
from __future__ import annotations

import math

import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.scipy import special

from fungpt import autodiff
from fungpt.probability._base import as_float, check_positive, check_probs, concrete, floats
from fungpt.probability.densities import beta
from fungpt.probability.moments import sample_mean, sample_variance

__all__ = ["bayes_posterior", "bayes_update_sequence", "beta_bernoulli_update", "beta_credible_interval",
           "fit_numeric", "gaussian_credible_interval", "ks_statistic",
           "map_bernoulli", "map_gaussian_mean", "map_poisson", "mle_bernoulli", "mle_categorical",
           "mle_exponential", "mle_gaussian", "mle_poisson", "normal_normal_update", "running_mean",
           "sample_means"]


# ------------------------------------------------------------------------------------------ Bayes

def bayes_posterior(prior, likelihood):
    """Bayes' theorem on a discrete hypothesis space: P(h | D) = P(D | h) P(h) / P(D), with evidence
    P(D) = Σ_h P(D | h) P(h). prior, likelihood: (K,). Returns (posterior (K,), evidence)."""
    prior, likelihood = floats(prior, likelihood)
    if prior.shape != likelihood.shape or prior.ndim != 1:
        raise ValueError(f"prior and likelihood must both be (K,), got {prior.shape} and {likelihood.shape}")
    check_probs("prior", prior, axis=-1)
    joint = prior * likelihood
    evidence = jnp.sum(joint)
    return joint / evidence, evidence


def bayes_update_sequence(prior, likelihood_table, observations):
    """Sequential Bayes: the posterior after each observation becomes the next prior.
    likelihood_table[h, o] = P(o | h) (K, M); observations: int (T,). Returns posteriors (T, K);
    the last row equals the batch posterior ∝ prior · Π_t P(o_t | h). Normalizing each step avoids the
    underflow of the product."""
    prior, table = floats(prior, likelihood_table)
    if table.ndim != 2 or table.shape[0] != prior.shape[0]:
        raise ValueError(f"likelihood_table must be (K, M) with K = {prior.shape[0]}, got {table.shape}")
    step = lambda p, o: (lambda post: (post, post))(bayes_posterior(p, table[:, o])[0])
    return lax.scan(step, prior, jnp.asarray(observations))[1]


def beta_bernoulli_update(a, b, xs):
    """Beta(a, b) prior on a coin's p, Bernoulli data xs ∈ {0,1}^n: posterior Beta(a + Σx, b + n - Σx)."""
    a, b, xs = floats(a, b, xs)
    k = jnp.sum(xs)
    return a + k, b + xs.shape[0] - k


def normal_normal_update(mu0, tau0, sigma, xs):
    """N(μ0, τ0²) prior on the mean of N(μ, σ²) data with known σ: the posterior is N(μ_n, τ_n²) with
    1/τ_n² = 1/τ0² + n/σ² and μ_n = τ_n² (μ0/τ0² + Σx/σ²). Returns (μ_n, τ_n)."""
    mu0, tau0, sigma, xs = floats(mu0, tau0, sigma, xs)
    precision = 1 / tau0**2 + xs.shape[0] / sigma**2
    mean = (mu0 / tau0**2 + jnp.sum(xs) / sigma**2) / precision
    return mean, 1 / jnp.sqrt(precision)


# ------------------------------------------------------------------- law of large numbers, CLT

def running_mean(xs):
    """x̄_n = x̄_{n-1} + (x_n - x̄_{n-1}) / n for n = 1..N (the law of large numbers' path), shape like xs
    along axis 0. The incremental form keeps float32 accurate where cumsum/n drifts."""
    xs = as_float(xs)
    step = lambda m, nx: (lambda new: (new, new))(m + (nx[1] - m) / nx[0])
    n = jnp.arange(1, xs.shape[0] + 1, dtype=xs.dtype)
    return lax.scan(step, jnp.zeros(xs.shape[1:], xs.dtype), (n, xs))[1]


def sample_means(key, sampler, n, m):
    """m independent sample means of n draws each: sampler(key, (m, n)).mean(axis=1), shape (m,).
    By the CLT, √n (x̄ - μ)/σ → N(0, 1) as n grows."""
    return jnp.mean(sampler(key, (m, n)), axis=1)


def ks_statistic(samples, cdf):
    """Kolmogorov-Smirnov distance D_n = sup_x |F_n(x) - F(x)| between the empirical CDF of samples (n,)
    and a model CDF (vectorized callable): max over the sorted points of F - (i-1)/n and i/n - F."""
    x = jnp.sort(as_float(samples))
    n = x.shape[0]
    f = cdf(x)
    i = jnp.arange(1, n + 1, dtype=x.dtype)
    return jnp.maximum(jnp.max(i / n - f), jnp.max(f - (i - 1) / n))


# ------------------------------------------------------------------------------------------ MLE, MAP

def mle_bernoulli(xs):
    """argmax_p Π p^x (1-p)^{1-x} = mean(xs)."""
    return sample_mean(xs)


def mle_gaussian(xs):
    """argmax_{μ,σ} Π N(x; μ, σ²) = (x̄, √(Σ(x - x̄)²/n)): the variance MLE divides by n (biased)."""
    return sample_mean(xs), jnp.sqrt(sample_variance(xs, ddof=0))


def mle_poisson(xs):
    """argmax_λ Π λ^x e^{-λ} / x! = mean(xs)."""
    return sample_mean(xs)


def mle_exponential(xs):
    """argmax_λ Π λ e^{-λx} = 1 / mean(xs)."""
    return 1 / sample_mean(xs)


def mle_categorical(xs, k):
    """argmax_p Π p_{x_i} subject to Σp = 1 (Lagrange): p_j = count_j / n. xs: int (n,); returns (k,)."""
    xs = jnp.asarray(xs)
    counts = jnp.sum(xs[:, None] == jnp.arange(k)[None, :], axis=0)
    dtype = jnp.asarray(0.0).dtype
    return counts.astype(dtype) / xs.shape[0]


def _check_at_least_one(name, **kw):
    for k, v in kw.items():
        c = concrete(v)
        if c is not None and not np.all(c >= 1):
            raise ValueError(f"{name}: {k} must be >= 1 (below 1 the posterior density is unbounded at the "
                             f"boundary and has no interior mode), got {c}")


def map_bernoulli(xs, a, b):
    """MAP of p under a Beta(a, b) prior (the posterior's mode): (Σx + a - 1) / (n + a + b - 2), a, b ≥ 1
    (a = b = 1, the uniform prior, gives the MLE). Between the MLE Σx/n and the prior mode (a-1)/(a+b-2),
    weighted n : a + b - 2: the prior counts as a + b - 2 earlier flips."""
    _check_at_least_one("map_bernoulli", a=a, b=b)
    a, b, xs = floats(a, b, xs)
    return (jnp.sum(xs) + a - 1) / (xs.shape[0] + a + b - 2)


def map_gaussian_mean(xs, sigma, mu0, tau0):
    """MAP of μ for N(μ, σ²) data (σ known) under a N(μ0, τ0²) prior: the posterior mean μ_n of
    `normal_normal_update` (a Gaussian's mode is its mean); shrinks x̄ towards μ0."""
    return normal_normal_update(mu0, tau0, sigma, xs)[0]


def map_poisson(xs, alpha, beta_):
    """MAP of λ under a Gamma(α, β) prior (rate β): (Σx + α - 1) / (n + β), α ≥ 1."""
    _check_at_least_one("map_poisson", alpha=alpha)
    alpha, beta_, xs = floats(alpha, beta_, xs)
    return (jnp.sum(xs) + alpha - 1) / (xs.shape[0] + beta_)


def _check_level(name, level):
    c = concrete(level)
    if c is not None and not np.all((c > 0) & (c < 1)):
        raise ValueError(f"{name}: level must lie in (0, 1), got {c}")


def gaussian_credible_interval(mu, sigma, level=0.95):
    """The equal-tailed (central) interval holding `level` of N(μ, σ²): ``μ ± z σ``, z = √2·erfinv(level)
    (1.95996 for 95%). With (μ_n, τ_n) from `normal_normal_update` it is the posterior credible interval of a
    Gaussian mean. Returns (lo, hi)."""
    _check_level("gaussian_credible_interval", level)
    check_positive("sigma", sigma)
    mu, sigma, level = floats(mu, sigma, level)
    half = math.sqrt(2) * special.erfinv(level) * sigma
    return mu - half, mu + half


def beta_credible_interval(a, b, level=0.95):
    """The equal-tailed interval holding `level` of Beta(a, b): ``[I⁻¹((1-level)/2), I⁻¹((1+level)/2)]``,
    I_x(a, b) the regularized incomplete beta function (`beta.cdf`). With (a, b) from `beta_bernoulli_update`
    it is the posterior credible interval of a coin's p. I⁻¹ by bisection on [0, 1] (one halving per bit of
    the dtype) and one Newton step ``x - (I_x - q)/pdf(x)``, which also carries the derivative in `level`
    (JAX's betainc has no derivative in a and b). Returns (lo, hi)."""
    _check_level("beta_credible_interval", level)
    check_positive("a", a)
    check_positive("b", b)
    a, b, level = jnp.broadcast_arrays(*floats(a, b, level))
    two = lambda u, v: jnp.stack([u, v])  # both ends in one call: one compiled betainc, not two
    ends = _beta_quantile(two(a, a), two(b, b), two((1 - level) / 2, (1 + level) / 2))
    return ends[0], ends[1]


def _beta_quantile(a, b, q):
    bits = jnp.finfo(q.dtype).nmant + 2

    def halve(_, lohi):
        lo, hi = lohi
        mid = (lo + hi) / 2
        below = special.betainc(a, b, mid) < q
        return jnp.where(below, mid, lo), jnp.where(below, hi, mid)

    zero = jnp.zeros_like(q)
    lo, hi = lax.fori_loop(0, bits, halve, (zero, zero + 1))
    x = lax.stop_gradient((lo + hi) / 2)
    pdf = jnp.exp(beta.log_prob(x, a, b))
    return jnp.clip(x - (special.betainc(a, b, x) - q) / pdf, 0, 1)


def fit_numeric(neg_log_posterior, params, data, *, steps=500, optimizer=None):
    """Minimize a negative log-likelihood (MLE) or negative log-posterior (MAP), `neg_log_posterior(params,
    data) -> scalar`, by gradient steps with ``fungpt.grad`` and a `fungpt.optim` optimizer (default: Adam,
    learning rate 0.05), as a ``lax.scan`` of `steps` updates. Parametrize constrained parameters
    unconstrained (log σ, logit p). Returns (params, losses (steps,))."""
    from fungpt import optim

    opt = optim.adam(0.05) if optimizer is None else optimizer
    grad = autodiff.value_and_grad(neg_log_posterior)

    def step(carry, _):
        p, state = carry
        loss, g = grad(p, data)
        updates, state = opt.update(g, state, p)
        return (optim.apply_updates(p, updates), state), loss

    (params, _), losses = lax.scan(step, (params, opt.init(params)), None, length=steps)
    return params, losses

