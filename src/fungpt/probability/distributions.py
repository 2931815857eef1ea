"""Distribution families as pure functions (`Family`), and the discrete ones: Bernoulli, binomial, categorical,
Poisson. Log-pmfs follow Loader (2000): saddle-point form from the Stirling correction and the deviance bd0, so
log P(X = k) keeps its digits where log C(n, k) and k log p nearly cancel."""
from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.scipy import special

import fungpt._special as _special
from fungpt.probability._base import (
    as_float,
    check_n,
    check_positive,
    check_probs,
    floats,
    full_shape,
    is_integer,
    uniform_bits,
    xlogy,
)
from fungpt.probability.moments import variance

__all__ = ["Family", "bernoulli", "binomial", "categorical", "poisson"]


# ------------------------------------------------------------------------------------ distributions

@dataclasses.dataclass(frozen=True)
class Family:
    """A distribution family as pure functions of its parameters (``params`` names them, in order):
    log_prob(x, *params), sample(key, *params, shape=()) -> shape + params' broadcast shape,
    mean(*params), variance(*params), entropy(*params) in nats, cdf(x, *params) (None when there is no
    closed form)."""
    name: str
    params: tuple[str, ...]
    log_prob: Callable
    sample: Callable
    mean: Callable
    variance: Callable
    entropy: Callable
    cdf: Callable | None = None


# Bernoulli(p): P(X=1) = p, P(X=0) = 1-p.

def _bernoulli_log_prob(x, p):
    x, p = floats(x, p)
    check_probs("p", p)
    # Each log sees a safe argument where it is not selected: d/dp at p = 0 (x = 0) is -1, not NaN.
    one = x == 1
    lp = jnp.where(one, jnp.log(jnp.where(one, p, 1)), jnp.log1p(-jnp.where(one, 0, p)))
    return jnp.where((x == 0) | one, lp, -jnp.inf)


def _bernoulli_sample(key, p, shape=()):
    p = as_float(p)
    check_probs("p", p)
    full = full_shape(shape, p)
    return (uniform_bits(key, full, p.dtype) < jnp.broadcast_to(p, full)).astype(jnp.int32)


def _bernoulli_cdf(x, p):
    x, p = floats(x, p)
    check_probs("p", p)
    return jnp.where(x < 0, 0, jnp.where(x < 1, 1 - p, 1)).astype(p.dtype)


def _bernoulli_entropy(p):
    """H = −p log p − (1−p) log(1−p), the second term by log1p so p ~ 1e-20 keeps its digits."""
    p = as_float(p)
    return -xlogy(p, p) - _special.xlog1py(1 - p, -p)


bernoulli = Family(
    "bernoulli", ("p",), _bernoulli_log_prob, _bernoulli_sample,
    mean=lambda p: as_float(p), variance=lambda p: as_float(p) * (1 - as_float(p)), entropy=_bernoulli_entropy,
    cdf=_bernoulli_cdf)


# Binomial(n, p): number of successes in n independent Bernoulli(p) trials.

def _binomial_log_prob(k, n, p):
    """log C(n, k) + k log p + (n−k) log(1−p), in Loader's saddle-point form for 0 < k < n:
    δ(n) − δ(k) − δ(n−k) − bd0(k, np) − bd0(n−k, n(1−p)) − ½ log(2π k (n − k)/n); n log1p(−p) at k = 0 and
    n log p at k = n. Accurate to a few ulps of the result for every n a float holds."""
    k, n, p = floats(k, n, p)
    check_n(n)
    check_probs("p", p)
    ok = (k >= 0) & (k <= n) & is_integer(k) & (k < jnp.inf)
    inner = ok & (k > 0) & (k < n) & (p > 0) & (p < 1)
    nan = jnp.isnan(k) | jnp.isnan(n) | jnp.isnan(p)  # NaN in, NaN out (as scipy), not "outside the support"
    # safe stand-ins where a branch is not selected, so no branch (or its gradient) sees log 0 or 0/0
    ki, ni, pi = jnp.where(inner, k, 1), jnp.where(inner, n, 2), jnp.where(inner, p, 0.5)
    sc = _special.stirling_correction
    lc = (sc(ni) - sc(ki) - sc(ni - ki) - _special.bd0(ki, ni * pi) - _special.bd0(ni - ki, ni * (1 - pi))
          - 0.5 * (2 * _special.HALF_LOG_2PI + jnp.log(ki) + jnp.log(ni - ki) - jnp.log(ni)))
    edge = jnp.where(k == 0, _special.xlog1py(n, -p), xlogy(n, p))
    # 0 < k < n with p ∈ {0, 1} is impossible: -inf, as xlogy gives
    edge = jnp.where((k > 0) & (k < n), -jnp.inf, edge)
    return jnp.where(nan, jnp.nan, jnp.where(inner, lc, jnp.where(ok, edge, -jnp.inf)))


def _static_n(n, what):
    if not isinstance(n, (int, np.integer)) or n < 0:
        raise TypeError(f"binomial {what} needs n as a Python int >= 0 (it sets an array size), got {n!r}")
    return int(n)


def _binomial_pmf_table(n, p):
    """pmf(k) for k = 0..n, shape p.shape + (n+1,)."""
    k = jnp.arange(n + 1, dtype=p.dtype)
    return jnp.exp(_binomial_log_prob(k, n, p[..., None]))


def _binomial_sample(key, n, p, shape=()):
    """Inverse CDF: X = #{k : F(k) ≤ U}, U ~ U[0,1), from the cumulative table F(0..n). O(n) per draw."""
    n = _static_n(n, "sample")
    p = as_float(p)
    check_probs("p", p)
    full = full_shape(shape, p)
    cdf = jnp.cumsum(_binomial_pmf_table(n, p), axis=-1)
    u = uniform_bits(key, full, p.dtype)
    k = jnp.sum(jnp.broadcast_to(cdf, (*full, n + 1)) <= u[..., None], axis=-1)
    return jnp.minimum(k, n).astype(jnp.int32)  # F(n) may round below 1: cap at n


def _binomial_entropy(n, p):
    """H = -Σ_k pmf(k) log pmf(k), an exact finite sum over k = 0..n (n a Python int)."""
    n = _static_n(n, "entropy")
    p = as_float(p)
    pmf = _binomial_pmf_table(n, p)
    return -jnp.sum(xlogy(pmf, pmf), axis=-1)


def _binomial_cdf(k, n, p):
    """P(X ≤ k) = I_{1-p}(n - ⌊k⌋, ⌊k⌋ + 1) (regularized incomplete beta) for 0 ≤ k < n."""
    k, n, p = floats(k, n, p)
    check_n(n)
    check_probs("p", p)
    k = jnp.floor(k)
    inside = (k >= 0) & (k < n)
    a = jnp.where(inside, n - k, 1)
    b = jnp.where(inside, k + 1, 1)
    return jnp.where(k < 0, 0, jnp.where(k >= n, 1, special.betainc(a, b, 1 - p))).astype(p.dtype)


def _binomial_moments(n, p):
    n, p = floats(n, p)
    return n * p, n * p * (1 - p)


binomial = Family(
    "binomial", ("n", "p"), _binomial_log_prob, _binomial_sample,
    mean=lambda n, p: _binomial_moments(n, p)[0], variance=lambda n, p: _binomial_moments(n, p)[1],
    entropy=_binomial_entropy, cdf=_binomial_cdf)


# Categorical(probs): P(X = k) = probs[k], k = 0..K-1.

def _check_categorical(probs):
    probs = as_float(probs)
    if probs.ndim != 1:
        raise ValueError(f"categorical probs must be a vector (K,), got shape {probs.shape}")
    check_probs("probs", probs, axis=-1)
    return probs


def _categorical_log_prob(x, probs):
    probs = _check_categorical(probs)
    x = jnp.asarray(x)
    k = probs.shape[0]
    ok = (x >= 0) & (x < k) & is_integer(x)
    idx = jnp.clip(x, 0, k - 1).astype(jnp.int32)
    return jnp.where(ok, jnp.log(probs[idx]), -jnp.inf)


def _categorical_sample(key, probs, shape=()):
    """Inverse CDF: X = #{k : F(k) ≤ U}, U ~ U[0,1), so P(X = k) = F(k) - F(k-1). O(K) per draw."""
    probs = _check_categorical(probs)
    u = uniform_bits(key, tuple(shape), probs.dtype)
    cdf = jnp.cumsum(probs)
    idx = jnp.sum(u[..., None] >= jnp.broadcast_to(cdf, (*u.shape, probs.shape[0])), axis=-1)
    return jnp.minimum(idx, probs.shape[0] - 1).astype(jnp.int32)  # F(K-1) may round below 1


def _categorical_mean(probs):
    probs = _check_categorical(probs)
    return jnp.sum(jnp.arange(probs.shape[0], dtype=probs.dtype) * probs)


def _categorical_variance(probs):
    probs = _check_categorical(probs)
    return variance(jnp.arange(probs.shape[0], dtype=probs.dtype), probs)


def _categorical_cdf(x, probs):
    probs = _check_categorical(probs)
    x = jnp.floor(as_float(x, probs.dtype))
    cdf = jnp.cumsum(probs)
    idx = jnp.clip(x, 0, probs.shape[0] - 1).astype(jnp.int32)
    return jnp.where(x < 0, 0, jnp.where(x >= probs.shape[0] - 1, 1, cdf[idx])).astype(probs.dtype)


categorical = Family(
    "categorical", ("probs",), _categorical_log_prob, _categorical_sample, _categorical_mean,
    _categorical_variance, entropy=lambda probs: -jnp.sum(xlogy(as_float(probs), as_float(probs))),
    cdf=_categorical_cdf)


# Poisson(rate): P(X = k) = rate^k e^{-rate} / k!.

def _poisson_log_prob(k, rate):
    """k log λ − λ − log k!, in Loader's form −δ(k) − bd0(k, λ) − ½ log(2π k) for k ≥ 1 (no cancellation of
    k log λ against log k! at k ≈ λ ~ 1e10), −λ at k = 0; rate 0 is the point mass at 0."""
    k, rate = floats(k, rate)
    check_positive("rate", rate, strict=False)
    ok = (k >= 0) & is_integer(k) & (k < jnp.inf)
    inner = ok & (k > 0) & (rate > 0)
    ki, ri = jnp.where(inner, k, 1), jnp.where(inner, rate, 1)
    lp = -_special.stirling_correction(ki) - _special.bd0(ki, ri) - 0.5 * jnp.log(ki) - _special.HALF_LOG_2PI
    edge = jnp.where(k == 0, -rate, -jnp.inf)  # k ≥ 1 at rate 0: impossible
    nan = jnp.isnan(k) | jnp.isnan(rate)
    return jnp.where(nan, jnp.nan, jnp.where(inner, lp, jnp.where(ok, edge, -jnp.inf)))


def _poisson_small(u, rate):
    """Inverse CDF by sequential search from 0: p_0 = e^{-rate}, p_{k+1} = p_k rate/(k+1), stop at the first
    F(k) ≥ u. Expected rate + 1 steps: used for rate < 10."""
    def body(s):
        k, p, f = s
        p = p * rate / (k + 1)
        return k + 1, p, f + p

    e = jnp.exp(-rate)
    return lax.while_loop(lambda s: (u > s[2]) & (s[1] > 0), body, (jnp.zeros_like(rate), e, e))[0]


def _poisson_ptrs(key, rate):
    """Hörmann's transformed rejection with squeeze (PTRS, 1993), exact for rate ≥ 10 with acceptance
    > 89%: k = ⌊(2a/u_s + b) U + rate + 0.43⌋, accepted by a squeeze test or the exact pmf test."""
    slam, loglam = jnp.sqrt(rate), jnp.log(rate)
    b = 0.931 + 2.53 * slam
    a = -0.059 + 0.02483 * b
    inv_alpha = 1.1239 + 1.1328 / (b - 3.4)
    vr = 0.9277 - 3.6224 / (b - 2)

    def body(s):
        key, _, _ = s
        key, ku, kv = jax.random.split(key, 3)
        u = uniform_bits(ku, (), rate.dtype) - 0.5
        v = uniform_bits(kv, (), rate.dtype)
        us = 0.5 - jnp.abs(u)
        k = jnp.floor((2 * a / us + b) * u + rate + 0.43)
        squeeze = (us >= 0.07) & (v <= vr)
        exact = (jnp.log(v) + jnp.log(inv_alpha) - jnp.log(a / (us * us) + b)
                 <= -rate + k * loglam - special.gammaln(k + 1))
        reject = (k < 0) | ((us < 0.013) & (v > us))
        return key, squeeze | (~reject & exact), k

    return lax.while_loop(lambda s: ~s[1], body, (key, jnp.asarray(False), jnp.zeros_like(rate)))[2]


def _poisson_one(key, rate):
    small = rate < 10
    # Both branches run under vmap, so each gets a harmless rate where it does not apply.
    k_small = _poisson_small(uniform_bits(jax.random.fold_in(key, 0), (), rate.dtype), jnp.where(small, rate, 0))
    k_large = _poisson_ptrs(jax.random.fold_in(key, 1), jnp.where(small, 10, rate))
    return jnp.where(small, k_small, k_large)


def _poisson_sample(key, rate, shape=()):
    """Sequential inverse CDF below rate 10, Hörmann's PTRS rejection sampler above."""
    rate = as_float(rate)
    check_positive("rate", rate)
    return _poisson_draw(key, rate, full_shape(shape, rate))


@functools.partial(jax.jit, static_argnums=2)
def _poisson_draw(key, rate, full):
    keys = jax.random.split(key, math.prod(full))
    k = jax.vmap(_poisson_one)(keys, jnp.broadcast_to(rate, full).ravel())
    return k.reshape(full).astype(jnp.int32)


def _poisson_entropy(rate):
    """H = -Σ_k pmf(k) log pmf(k): the sum over a 1024-term window around the mean (±8σ) below rate 1000,
    the asymptotic series ½log(2πe·rate) - 1/(12 rate) - 1/(24 rate²) - 19/(360 rate³) above it."""
    rate = as_float(rate)
    check_positive("rate", rate, strict=False)
    base = jnp.maximum(0, jnp.floor(rate - 8 * jnp.sqrt(rate) - 8))
    k = base[..., None] + jnp.arange(1024, dtype=rate.dtype).reshape((1,) * rate.ndim + (1024,))
    pos = rate > 0  # rate 0: the point mass at 0, entropy 0
    lp = _poisson_log_prob(k, jnp.where(pos, jnp.minimum(rate, 1000), 1)[..., None])
    exact = jnp.where(pos, -jnp.sum(jnp.exp(lp) * lp, axis=-1), 0)
    r = jnp.maximum(rate, 1000)
    asym = 0.5 * jnp.log(2 * math.pi * math.e * r) - 1 / (12 * r) - 1 / (24 * r**2) - 19 / (360 * r**3)
    return jnp.where(rate < 1000, exact, asym)


def _poisson_cdf(k, rate):
    """P(X ≤ k) = Q(⌊k⌋ + 1, rate), the regularized upper incomplete gamma function."""
    k, rate = floats(k, rate)
    check_positive("rate", rate, strict=False)
    k = jnp.floor(k)
    return jnp.where(k < 0, 0, special.gammaincc(jnp.maximum(k, 0) + 1, rate)).astype(rate.dtype)


poisson = Family("poisson", ("rate",), _poisson_log_prob, _poisson_sample, mean=lambda r: as_float(r),
                 variance=lambda r: as_float(r), entropy=_poisson_entropy, cdf=_poisson_cdf)


# Uniform(low, high): density 1/(high - low) on [low, high].
