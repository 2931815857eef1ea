"""Continuous distribution families: uniform, Gaussian, multivariate Gaussian, exponential, Beta (samplers from
uniform bits: inverse CDF, Box-Muller, Marsaglia-Tsang), and a Monte Carlo KL estimate."""
from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.scipy import special

import fungpt._special as _special
from fungpt import numerics
from fungpt.probability._base import as_float, bcast, check_positive, concrete, floats, full_shape, uniform_bits, xlogy
from fungpt.probability.distributions import Family

__all__ = ["beta", "exponential", "gaussian", "kl_monte_carlo", "multivariate_gaussian", "uniform"]


def _uniform_log_prob(x, low, high):
    x, low, high = floats(x, low, high)
    check_positive("high - low", high - low)
    return jnp.where((x >= low) & (x <= high), -jnp.log(high - low), -jnp.inf)


def _uniform_sample(key, low, high, shape=()):
    low, high = floats(low, high)
    check_positive("high - low", high - low)
    full = full_shape(shape, low, high)
    low, high = bcast(full, low, high)
    return low + (high - low) * uniform_bits(key, full, low.dtype)


def _uniform_cdf(x, low, high):
    x, low, high = floats(x, low, high)
    check_positive("high - low", high - low)
    return jnp.clip((x - low) / (high - low), 0, 1)


def _uniform_moments(low, high):
    low, high = floats(low, high)
    return (low + high) / 2, (high - low) ** 2 / 12, jnp.log(high - low)


uniform = Family(
    "uniform", ("low", "high"), _uniform_log_prob, _uniform_sample,
    mean=lambda a, b: _uniform_moments(a, b)[0], variance=lambda a, b: _uniform_moments(a, b)[1],
    entropy=lambda a, b: _uniform_moments(a, b)[2], cdf=_uniform_cdf)


# Gaussian(mu, sigma): density exp(-(x-mu)²/(2 sigma²)) / (sigma √(2π)).

_LOG_SQRT_2PI = 0.5 * math.log(2 * math.pi)


def _gaussian_log_prob(x, mu, sigma):
    x, mu, sigma = floats(x, mu, sigma)
    check_positive("sigma", sigma)
    z = (x - mu) / sigma
    return -0.5 * z * z - jnp.log(sigma) - _LOG_SQRT_2PI


def _standard_normal(key, shape, dtype):
    """Box-Muller: Z = √(-2 log U₁) cos(2π U₂) is N(0, 1) for independent U₁, U₂ ~ U(0, 1]."""
    k1, k2 = jax.random.split(key)
    u1 = 1 - uniform_bits(k1, shape, dtype)  # in (0, 1]: log(u1) is finite
    u2 = uniform_bits(k2, shape, dtype)
    return jnp.sqrt(-2 * jnp.log(u1)) * jnp.cos(2 * math.pi * u2)


def _gaussian_sample(key, mu, sigma, shape=()):
    mu, sigma = floats(mu, sigma)
    check_positive("sigma", sigma)
    full = full_shape(shape, mu, sigma)
    mu, sigma = bcast(full, mu, sigma)
    return mu + sigma * _standard_normal(key, full, mu.dtype)


def _gaussian_cdf(x, mu, sigma):
    x, mu, sigma = floats(x, mu, sigma)
    check_positive("sigma", sigma)
    return 0.5 * special.erfc(-(x - mu) / (sigma * math.sqrt(2)))


def _gaussian_moments(mu, sigma):
    mu, sigma = jnp.broadcast_arrays(*floats(mu, sigma))
    return mu, sigma**2, 0.5 * jnp.log(2 * math.pi * math.e * sigma**2)


gaussian = Family(
    "gaussian", ("mu", "sigma"), _gaussian_log_prob, _gaussian_sample,
    mean=lambda mu, sigma: _gaussian_moments(mu, sigma)[0],
    variance=lambda mu, sigma: _gaussian_moments(mu, sigma)[1],
    entropy=lambda mu, sigma: _gaussian_moments(mu, sigma)[2], cdf=_gaussian_cdf)


# Multivariate Gaussian(mean (d,), cov (d, d)), via the Cholesky factor cov = L L^T (chapter 6).

def _mvn_check(mean, cov):
    mean, cov = floats(mean, cov)
    if mean.ndim != 1 or cov.shape != (mean.shape[0], mean.shape[0]):
        raise ValueError(f"mean must be (d,) and cov (d, d), got {mean.shape} and {cov.shape}")
    chol = numerics.cholesky(cov)
    # Not positive definite: NaN (or a zero pivot) in L. Eagerly that is an error; under jit the NaN propagates
    # to every result (log_prob, sample, entropy), never a plausible number.
    pivots = concrete(jnp.diagonal(chol))
    if pivots is not None and not np.all(pivots > 0):
        raise ValueError(f"cov must be symmetric positive definite; its Cholesky pivots are {pivots}")
    bad = jnp.any(~(jnp.diagonal(chol) > 0))
    return mean, cov, jnp.where(bad, jnp.nan, chol)


def _mvn_log_prob(x, mean, cov):
    """log N(x; μ, Σ) = -½|z|² - Σ_i log L_ii - (d/2) log 2π with L z = x - μ. x: (d,) or (n, d)."""
    mean, cov, chol = _mvn_check(mean, cov)
    x = as_float(x, mean.dtype)
    if x.shape[-1] != mean.shape[0] or x.ndim > 2:
        raise ValueError(f"x must be (d,) or (n, d) with d = {mean.shape[0]}, got {x.shape}")
    z = numerics.solve_triangular(chol, (x - jnp.broadcast_to(mean, x.shape)).T, lower=True)
    d = mean.shape[0]
    return -0.5 * jnp.sum(z * z, axis=0) - jnp.sum(jnp.log(jnp.diagonal(chol))) - d * _LOG_SQRT_2PI


def _mvn_sample(key, mean, cov, shape=()):
    """X = μ + L Z with Z ~ N(0, I): Cov X = L L^T = Σ. Returns shape + (d,)."""
    mean, cov, chol = _mvn_check(mean, cov)
    z = _standard_normal(key, (*shape, mean.shape[0]), mean.dtype)
    return jnp.broadcast_to(mean, z.shape) + z @ chol.T


def _mvn_entropy(mean, cov):
    mean, cov, chol = _mvn_check(mean, cov)
    return 0.5 * mean.shape[0] * (1 + math.log(2 * math.pi)) + jnp.sum(jnp.log(jnp.diagonal(chol)))


multivariate_gaussian = Family(
    "multivariate_gaussian", ("mean", "cov"), _mvn_log_prob, _mvn_sample,
    mean=lambda mean, cov: _mvn_check(mean, cov)[0], variance=lambda mean, cov: _mvn_check(mean, cov)[1],
    entropy=_mvn_entropy, cdf=None)


# Exponential(rate): density rate e^{-rate x} on x ≥ 0.

def _exponential_log_prob(x, rate):
    x, rate = floats(x, rate)
    check_positive("rate", rate)
    return jnp.where(x >= 0, jnp.log(rate) - rate * x, -jnp.inf)


def _exponential_sample(key, rate, shape=()):
    """Inverse CDF: X = -log(1 - U) / rate."""
    rate = as_float(rate)
    check_positive("rate", rate)
    full = full_shape(shape, rate)
    return -jnp.log1p(-uniform_bits(key, full, rate.dtype)) / jnp.broadcast_to(rate, full)


def _exponential_cdf(x, rate):
    x, rate = floats(x, rate)
    check_positive("rate", rate)
    return jnp.where(x < 0, 0, -jnp.expm1(-rate * x)).astype(rate.dtype)


exponential = Family(
    "exponential", ("rate",), _exponential_log_prob, _exponential_sample,
    mean=lambda r: 1 / as_float(r), variance=lambda r: 1 / as_float(r) ** 2, entropy=lambda r: 1 - jnp.log(as_float(r)),
    cdf=_exponential_cdf)


# Beta(a, b): density x^{a-1} (1-x)^{b-1} / B(a, b) on [0, 1].

def _beta_log_prob(x, a, b):
    x, a, b = floats(x, a, b)
    check_positive("a", a)
    check_positive("b", b)
    inside = (x >= 0) & (x <= 1)
    xx = jnp.clip(x, 0, 1)
    lp = xlogy(a - 1, xx) + xlogy(b - 1, 1 - xx) - _special.log_beta(a, b)
    return jnp.where(inside, lp, -jnp.inf)


def _log_gamma_one(key, alpha):
    """log of one Gamma(α, 1) draw by Marsaglia-Tsang (2000): d = α' − 1/3, c = 1/√(9d); repeat
    Z ~ N(0,1), V = (1 + cZ)^3 until V > 0 and log U < Z²/2 + d − dV + d log V; return log dV.
    For α < 1, boost: Gamma(α) = Gamma(α + 1) · U^{1/α}, i.e. + log(U)/α in log space, where a draw far
    below the smallest float stays finite (Beta(0.01, 0.01) needs it). Acceptance rate > 95%."""
    boost = alpha < 1
    a1 = jnp.where(boost, alpha + 1, alpha)
    d = a1 - 1 / 3
    c = 1 / jnp.sqrt(9 * d)

    def body(s):
        key, _, _ = s
        key, kz, ku = jax.random.split(key, 3)
        z = _standard_normal(kz, (), alpha.dtype)
        v = (1 + c * z) ** 3
        u = uniform_bits(ku, (), alpha.dtype)
        ok = (v > 0) & (jnp.log(u) < 0.5 * z * z + d - d * v + d * jnp.log(jnp.where(v > 0, v, 1)))
        return key, ok, d * v

    key, _, g = lax.while_loop(lambda s: ~s[1], body, (key, jnp.asarray(False), jnp.zeros_like(alpha)))
    log_u = jnp.log1p(-uniform_bits(jax.random.fold_in(key, 1), (), alpha.dtype))  # log of U in (0, 1]
    return jnp.log(g) + jnp.where(boost, log_u / alpha, 0)


def _beta_sample(key, a, b, shape=()):
    """X = G_a / (G_a + G_b) = 1 / (1 + exp(log G_b − log G_a)) with independent Gamma(a, 1), Gamma(b, 1)
    draws (Marsaglia-Tsang), in log space: no 0/0 when both draws underflow."""
    a, b = floats(a, b)
    check_positive("a", a)
    check_positive("b", b)
    return _beta_draw(key, a, b, full_shape(shape, a, b))


@functools.partial(jax.jit, static_argnums=3)
def _beta_draw(key, a, b, full):
    a, b = bcast(full, a, b)
    size = math.prod(full)
    keys = jax.random.split(key, 2 * size).reshape(2, size)
    la = jax.vmap(_log_gamma_one)(keys[0], a.ravel())
    lb = jax.vmap(_log_gamma_one)(keys[1], b.ravel())
    return (1 / (1 + jnp.exp(lb - la))).reshape(full)


def _beta_entropy(a, b):
    """H = log B(a,b) - (a-1)ψ(a) - (b-1)ψ(b) + (a+b-2)ψ(a+b), ψ the digamma function."""
    a, b = floats(a, b)
    return (_special.log_beta(a, b) - (a - 1) * special.digamma(a) - (b - 1) * special.digamma(b)
            + (a + b - 2) * special.digamma(a + b))


def _beta_moments(a, b):
    a, b = floats(a, b)
    return a / (a + b), a * b / ((a + b) ** 2 * (a + b + 1))


def _beta_cdf(x, a, b):
    """P(X ≤ x) = I_x(a, b), the regularized incomplete beta function."""
    x, a, b = floats(x, a, b)
    check_positive("a", a)
    check_positive("b", b)
    return special.betainc(a, b, jnp.clip(x, 0, 1))


beta = Family(
    "beta", ("a", "b"), _beta_log_prob, _beta_sample, mean=lambda a, b: _beta_moments(a, b)[0],
    variance=lambda a, b: _beta_moments(a, b)[1], entropy=_beta_entropy, cdf=_beta_cdf)


def kl_monte_carlo(key, sample_p, log_p, log_q, n=4096):
    """KL(p‖q) = E_p[log p(X) - log q(X)] ≈ mean over n draws X_i ~ p, with its standard error s/√n.
    sample_p(key, shape) draws; log_p, log_q are elementwise log densities. Returns (estimate, stderr).
    (Closed forms: `fungpt.information.kl_divergence`, `kl_gaussian`.)"""
    x = sample_p(key, (n,))
    r = log_p(x) - log_q(x)
    return jnp.mean(r), jnp.std(r, ddof=1) / math.sqrt(n)

