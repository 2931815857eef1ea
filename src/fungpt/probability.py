"""Chapter 4, probability & statistics as pure JAX functions: probability rules on joint tables, random
variables and their moments (exact, sampled, online), distributions, Bayes' theorem, the law of large
numbers and the central limit theorem, MLE and MAP, and Markov chains.

A distribution is a `Family` of pure functions over its parameters, e.g.
``gaussian.log_prob(x, mu, sigma)``, ``gaussian.sample(key, mu, sigma, shape)``, ``gaussian.mean(mu, sigma)``.
Samplers are written here from uniform bits (inverse CDF, Box-Muller, Marsaglia-Tsang), so every draw is
explained by this file. Input checks run on concrete values and are skipped under ``jit`` tracing.
"""
from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.scipy import special

from fungpt import autodiff, linalg, numerics

__all__ = [
    "Family", "WelfordState", "bayes_posterior", "bayes_update_sequence", "bernoulli", "beta",
    "beta_bernoulli_update", "binomial", "categorical", "chi_square_independence", "conditional",
    "conditional_probability", "correlation", "covariance", "distribution_after", "estimate_transition_matrix",
    "expectation", "expectation_continuous", "exponential", "fit_numeric", "gaussian", "independence_gap",
    "intersection", "kl_monte_carlo", "ks_statistic", "map_bernoulli", "map_gaussian_mean", "map_poisson",
    "marginal", "mixing_curve", "mixing_time", "mle_bernoulli", "mle_categorical", "mle_exponential",
    "mle_gaussian", "mle_poisson", "multivariate_gaussian", "n_step", "normal_normal_update", "poisson",
    "probability", "running_mean", "sample_covariance", "sample_mean", "sample_means", "sample_path",
    "sample_variance", "stationary_distribution", "stationary_power", "total_variation", "uniform",
    "union", "variance", "welford", "welford_finalize", "welford_init", "welford_merge", "welford_update",
]


# ------------------------------------------------------------------------------------------- helpers

def _float(x, dtype=None):
    x = jnp.asarray(x)
    if dtype is not None:
        return x.astype(dtype)
    return x if jnp.issubdtype(x.dtype, jnp.floating) else x.astype(jnp.asarray(0.0).dtype)


def _floats(*xs):
    """All of xs in one float dtype: the promotion of the floating inputs (Python floats are weak, so
    they follow the arrays), or the default float when none is floating (ints, bools)."""
    fl = [x for x in xs if isinstance(x, float) or jnp.issubdtype(jnp.result_type(x), jnp.floating)]
    dtype = jnp.result_type(*fl) if fl else jnp.asarray(0.0).dtype
    return [jnp.asarray(x).astype(dtype) for x in xs]


def _concrete(x):
    """x as a numpy array, or None while tracing (value checks then cannot run)."""
    try:
        return np.asarray(x)
    except (jax.errors.TracerArrayConversionError, jax.errors.ConcretizationTypeError):
        return None


def _check_probs(name, p, axis=None, atol=1e-6):
    v = _concrete(p)
    if v is None:
        return
    if np.any(~np.isfinite(v)) or np.any(v < 0) or np.any(v > 1):
        raise ValueError(f"{name} must hold probabilities in [0, 1], got values in [{v.min()}, {v.max()}]")
    if axis is not None:
        s = v.sum(axis=axis)
        if np.any(np.abs(s - 1) > atol * max(1, v.shape[-1] if v.ndim else 1)):
            raise ValueError(f"{name} must sum to 1 along axis {axis}, got sums {s}")


def _check_positive(name, x, strict=True):
    v = _concrete(x)
    if v is not None and (np.any(~np.isfinite(v)) or np.any(v <= 0 if strict else v < 0)):
        raise ValueError(f"{name} must be {'> 0' if strict else '>= 0'} and finite, got {v}")


def _check_n(n):
    v = _concrete(n)
    if v is not None and (np.any(~np.isfinite(v)) or np.any(v < 0) or np.any(v != np.floor(v))):
        raise ValueError(f"binomial n must be an integer >= 0, got {v}")


def _xlogy(x, y):
    """x log y with 0 log 0 = 0 (the limit), as entropies need. Only the 0·log 0 entries are masked, so
    d/dx = log y stays exact at x = 0 (Beta's (a-1) log x at a = 1), and no NaN reaches the gradient."""
    zero = (x == 0) & (y == 0)
    return x * jnp.log(jnp.where(zero, 1, y))


def _full(shape, *params):
    """The sample shape: `shape` followed by the parameters' broadcast shape."""
    return tuple(shape) + jnp.broadcast_shapes(*(jnp.shape(p) for p in params))


def _bcast(shape, *arrays):
    return [jnp.broadcast_to(a, shape) for a in arrays]


def _uniform(key, shape, dtype):
    return jax.random.uniform(key, shape, dtype)


def _is_integer(x):
    return x == jnp.floor(x)


# ------------------------------------------------------------------------ probability rules on tables

def probability(p, event):
    """P(A) = Σ_{ω ∈ A} p(ω) for a table p of outcome probabilities and a boolean mask `event` of the
    same shape."""
    p = _float(p)
    if jnp.shape(event) != p.shape:
        raise ValueError(f"event mask shape {jnp.shape(event)} must match the table's {p.shape}")
    return jnp.sum(jnp.where(event, p, 0))


def intersection(p, a, b):
    """P(A ∩ B) = Σ p(ω) over outcomes in both events (boolean masks a, b shaped like p)."""
    return probability(p, a & b)


def union(p, a, b):
    """P(A ∪ B) = P(A) + P(B) - P(A ∩ B) (inclusion-exclusion)."""
    return probability(p, a) + probability(p, b) - intersection(p, a, b)


def conditional_probability(p, a, b):
    """P(A | B) = P(A ∩ B) / P(B); nan when P(B) = 0 (the conditional is undefined)."""
    return intersection(p, a, b) / probability(p, b)


def _axes(joint, axes):
    axes = (axes,) if isinstance(axes, int) else tuple(axes)
    nd = jnp.ndim(joint)
    bad = [a for a in axes if not -nd <= a < nd]
    if bad:
        raise ValueError(f"axes {bad} out of range for a table with {nd} dimensions")
    return tuple(sorted(a % nd for a in axes))


def marginal(joint, keep):
    """P(X_keep) = Σ over the other variables of the joint table P(X_1, …, X_k); keep: axis or axes."""
    joint = _float(joint)
    keep = _axes(joint, keep)
    return jnp.sum(joint, axis=tuple(a for a in range(joint.ndim) if a not in keep))


def conditional(joint, given):
    """P(rest | X_given) = P(X_1, …, X_k) / P(X_given), same shape as the joint table; each slice with a
    fixed value of the given variables sums to 1 (nan where P(X_given) = 0)."""
    joint = _float(joint)
    given = _axes(joint, given)
    m = jnp.sum(joint, axis=tuple(a for a in range(joint.ndim) if a not in given), keepdims=True)
    return joint / m


def independence_gap(joint):
    """max_{x,y} |P(x, y) - P(x) P(y)| of a 2-D joint table: 0 iff X and Y are independent."""
    joint = _float(joint)
    if joint.ndim != 2:
        raise ValueError(f"independence_gap takes a 2-D joint table, got shape {joint.shape}")
    return jnp.max(jnp.abs(joint - jnp.outer(joint.sum(1), joint.sum(0))))


def chi_square_independence(counts):
    """Pearson's χ² test of independence on a 2-D contingency table of counts O:
    E_ij = (row_i)(col_j)/N, χ² = Σ (O - E)^2 / E with (r-1)(c-1) degrees of freedom, and the p-value
    P(χ²_dof ≥ χ²) = Q(dof/2, χ²/2) (regularized upper incomplete gamma). Returns (stat, p_value, dof)."""
    counts = _float(counts)
    if counts.ndim != 2 or min(counts.shape) < 2:
        raise ValueError(f"counts must be a 2-D table with at least 2 rows and columns, got {counts.shape}")
    _check_positive("counts", counts, strict=False)
    n = counts.sum()
    expected = jnp.outer(counts.sum(1), counts.sum(0)) / n
    stat = jnp.sum((counts - expected) ** 2 / expected)
    dof = (counts.shape[0] - 1) * (counts.shape[1] - 1)
    return stat, special.gammaincc(jnp.asarray(dof / 2, counts.dtype), stat / 2), dof


# ------------------------------------------------------------------------------ random variables

def expectation(values, probs, g=None):
    """E[g(X)] = Σ_i g(x_i) p_i for a discrete random variable with support `values` (n,) and
    probabilities `probs` (n,); g defaults to the identity (the mean)."""
    values, probs = _float(values), _float(probs)
    if values.shape != probs.shape or values.ndim != 1:
        raise ValueError(f"values and probs must both be (n,), got {values.shape} and {probs.shape}")
    _check_probs("probs", probs, axis=-1)
    gx = values if g is None else jax.vmap(g)(values)
    return jnp.sum(gx * probs)


def variance(values, probs):
    """Var X = E[(X - E X)^2] = Σ_i (x_i - μ)^2 p_i (two-pass: no cancellation as in E X² - (E X)²)."""
    mu = expectation(values, probs)
    return expectation(values, probs, lambda x: (x - mu) ** 2)


def covariance(joint, x_values, y_values):
    """Cov(X, Y) = Σ_ij (x_i - μ_X)(y_j - μ_Y) P(x_i, y_j) from a joint table (n, m) with supports
    x_values (n,), y_values (m,)."""
    joint, x, y = _float(joint), _float(x_values), _float(y_values)
    if joint.shape != (x.shape[0], y.shape[0]):
        raise ValueError(f"joint shape {joint.shape} must be (len(x_values), len(y_values)) = "
                         f"({x.shape[0]}, {y.shape[0]})")
    _check_probs("joint", joint.ravel(), axis=-1)
    dx = x - jnp.sum(x * joint.sum(1))
    dy = y - jnp.sum(y * joint.sum(0))
    return jnp.sum(jnp.outer(dx, dy) * joint)


def correlation(joint, x_values, y_values):
    """ρ = Cov(X, Y) / (σ_X σ_Y) ∈ [-1, 1] from a joint table."""
    joint = _float(joint)
    vx = variance(x_values, joint.sum(1))
    vy = variance(y_values, joint.sum(0))
    return covariance(joint, x_values, y_values) / jnp.sqrt(vx * vy)


def expectation_continuous(log_prob, a, b, g=None, n=64):
    """E[g(X)] = ∫_a^b g(x) p(x) dx for a continuous random variable with density exp(log_prob(x))
    supported in [a, b] (truncate infinite tails where their mass is negligible), by n-point
    Gauss-Legendre quadrature (chapter 3)."""
    from fungpt.calculus import gauss_legendre

    g = (lambda x: x) if g is None else g
    return gauss_legendre(lambda x: g(x) * jnp.exp(log_prob(x)), a, b, n)


def sample_mean(x, axis=0):
    """x̄ = (1/n) Σ x_i along `axis`; an unbiased estimate of E X with standard error σ/√n."""
    x = _float(x)
    return jnp.sum(x, axis=axis) / x.shape[axis]


def sample_variance(x, ddof=1, axis=0):
    """s² = Σ (x_i - x̄)^2 / (n - ddof) (two-pass); ddof=1 is unbiased, ddof=0 is the MLE."""
    x = _float(x)
    n = x.shape[axis]
    if n <= ddof:
        raise ValueError(f"need more than ddof={ddof} samples along axis {axis}, got {n}")
    d = x - jnp.expand_dims(sample_mean(x, axis), axis)
    return jnp.sum(d * d, axis=axis) / (n - ddof)


def sample_covariance(x, ddof=1):
    """S = (X - x̄)^T (X - x̄) / (n - ddof) for samples X of shape (n, d); shape (d, d)."""
    x = _float(x)
    if x.ndim != 2 or x.shape[0] <= ddof:
        raise ValueError(f"x must be (n, d) with n > ddof={ddof}, got {x.shape}")
    d = x - sample_mean(x)[None]
    return d.T @ d / (x.shape[0] - ddof)


class WelfordState(NamedTuple):
    """Running statistics: count n, mean x̄_n, and M2_n = Σ (x_i - x̄_n)^2."""
    count: jax.Array
    mean: jax.Array
    m2: jax.Array


def welford_init(shape=(), dtype=None):
    """An empty `WelfordState` for observations of the given shape."""
    dtype = jnp.asarray(0.0).dtype if dtype is None else dtype
    return WelfordState(jnp.zeros((), dtype), jnp.zeros(shape, dtype), jnp.zeros(shape, dtype))


def welford_update(state, x):
    """Welford's online update: n ← n+1, δ = x - x̄, x̄ ← x̄ + δ/n, M2 ← M2 + δ (x - x̄_new).
    One pass, O(1) memory, and no catastrophic cancellation (unlike Σx² - n x̄²)."""
    n = state.count + 1
    delta = x - state.mean
    mean = state.mean + delta / n
    return WelfordState(n, mean, state.m2 + delta * (x - mean))


def welford_merge(a, b):
    """Chan et al.'s parallel merge of two `WelfordState`s: n = n_a + n_b, δ = x̄_b - x̄_a,
    x̄ = x̄_a + δ n_b/n, M2 = M2_a + M2_b + δ² n_a n_b / n."""
    n = a.count + b.count
    safe = jnp.where(n == 0, 1, n)
    delta = b.mean - a.mean
    return WelfordState(n, a.mean + delta * b.count / safe, a.m2 + b.m2 + delta**2 * a.count * b.count / safe)


def welford_finalize(state, ddof=1):
    """(mean, variance) from a `WelfordState`: variance = M2 / (n - ddof)."""
    return state.mean, state.m2 / (state.count - ddof)


def welford(xs, ddof=1):
    """(mean, variance) of xs along axis 0 in one streaming pass (``lax.scan`` over `welford_update`)."""
    xs = _float(xs)
    state, _ = lax.scan(lambda s, x: (welford_update(s, x), None), welford_init(xs.shape[1:], xs.dtype), xs)
    return welford_finalize(state, ddof)


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
    x, p = _floats(x, p)
    _check_probs("p", p)
    # Each log sees a safe argument where it is not selected: d/dp at p = 0 (x = 0) is -1, not NaN.
    one = x == 1
    lp = jnp.where(one, jnp.log(jnp.where(one, p, 1)), jnp.log1p(-jnp.where(one, 0, p)))
    return jnp.where((x == 0) | one, lp, -jnp.inf)


def _bernoulli_sample(key, p, shape=()):
    p = _float(p)
    _check_probs("p", p)
    full = _full(shape, p)
    return (_uniform(key, full, p.dtype) < jnp.broadcast_to(p, full)).astype(jnp.int32)


def _bernoulli_cdf(x, p):
    x, p = _floats(x, p)
    _check_probs("p", p)
    return jnp.where(x < 0, 0, jnp.where(x < 1, 1 - p, 1)).astype(p.dtype)


def _bernoulli_entropy(p):
    p = _float(p)
    return -_xlogy(p, p) - _xlogy(1 - p, 1 - p)


bernoulli = Family(
    "bernoulli", ("p",), _bernoulli_log_prob, _bernoulli_sample,
    mean=lambda p: _float(p), variance=lambda p: _float(p) * (1 - _float(p)), entropy=_bernoulli_entropy,
    cdf=_bernoulli_cdf)


# Binomial(n, p): number of successes in n independent Bernoulli(p) trials.

def _log_choose(n, k):
    return special.gammaln(n + 1) - special.gammaln(k + 1) - special.gammaln(n - k + 1)


def _binomial_log_prob(k, n, p):
    k, n, p = _floats(k, n, p)
    _check_n(n)
    _check_probs("p", p)
    ok = (k >= 0) & (k <= n) & _is_integer(k)
    kk = jnp.clip(k, 0, n)  # keeps gammaln finite off the support; those entries become -inf below
    lp = _log_choose(n, kk) + _xlogy(kk, p) + _xlogy(n - kk, 1 - p)
    return jnp.where(ok, lp, -jnp.inf)


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
    p = _float(p)
    _check_probs("p", p)
    full = _full(shape, p)
    cdf = jnp.cumsum(_binomial_pmf_table(n, p), axis=-1)
    u = _uniform(key, full, p.dtype)
    k = jnp.sum(jnp.broadcast_to(cdf, (*full, n + 1)) <= u[..., None], axis=-1)
    return jnp.minimum(k, n).astype(jnp.int32)  # F(n) may round below 1: cap at n


def _binomial_entropy(n, p):
    """H = -Σ_k pmf(k) log pmf(k), an exact finite sum over k = 0..n (n a Python int)."""
    n = _static_n(n, "entropy")
    p = _float(p)
    pmf = _binomial_pmf_table(n, p)
    return -jnp.sum(_xlogy(pmf, pmf), axis=-1)


def _binomial_cdf(k, n, p):
    """P(X ≤ k) = I_{1-p}(n - ⌊k⌋, ⌊k⌋ + 1) (regularized incomplete beta) for 0 ≤ k < n."""
    k, n, p = _floats(k, n, p)
    _check_n(n)
    _check_probs("p", p)
    k = jnp.floor(k)
    inside = (k >= 0) & (k < n)
    a = jnp.where(inside, n - k, 1)
    b = jnp.where(inside, k + 1, 1)
    return jnp.where(k < 0, 0, jnp.where(k >= n, 1, special.betainc(a, b, 1 - p))).astype(p.dtype)


def _binomial_moments(n, p):
    n, p = _floats(n, p)
    return n * p, n * p * (1 - p)


binomial = Family(
    "binomial", ("n", "p"), _binomial_log_prob, _binomial_sample,
    mean=lambda n, p: _binomial_moments(n, p)[0], variance=lambda n, p: _binomial_moments(n, p)[1],
    entropy=_binomial_entropy, cdf=_binomial_cdf)


# Categorical(probs): P(X = k) = probs[k], k = 0..K-1.

def _check_categorical(probs):
    probs = _float(probs)
    if probs.ndim != 1:
        raise ValueError(f"categorical probs must be a vector (K,), got shape {probs.shape}")
    _check_probs("probs", probs, axis=-1)
    return probs


def _categorical_log_prob(x, probs):
    probs = _check_categorical(probs)
    x = jnp.asarray(x)
    k = probs.shape[0]
    ok = (x >= 0) & (x < k) & _is_integer(x)
    idx = jnp.clip(x, 0, k - 1).astype(jnp.int32)
    return jnp.where(ok, jnp.log(probs[idx]), -jnp.inf)


def _categorical_sample(key, probs, shape=()):
    """Inverse CDF: X = #{k : F(k) ≤ U}, U ~ U[0,1), so P(X = k) = F(k) - F(k-1). O(K) per draw."""
    probs = _check_categorical(probs)
    u = _uniform(key, tuple(shape), probs.dtype)
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
    x = jnp.floor(_float(x, probs.dtype))
    cdf = jnp.cumsum(probs)
    idx = jnp.clip(x, 0, probs.shape[0] - 1).astype(jnp.int32)
    return jnp.where(x < 0, 0, jnp.where(x >= probs.shape[0] - 1, 1, cdf[idx])).astype(probs.dtype)


categorical = Family(
    "categorical", ("probs",), _categorical_log_prob, _categorical_sample, _categorical_mean,
    _categorical_variance, entropy=lambda probs: -jnp.sum(_xlogy(_float(probs), _float(probs))),
    cdf=_categorical_cdf)


# Poisson(rate): P(X = k) = rate^k e^{-rate} / k!.

def _poisson_log_prob(k, rate):
    k, rate = _floats(k, rate)
    _check_positive("rate", rate, strict=False)  # rate 0 is the point mass at 0
    ok = (k >= 0) & _is_integer(k)
    kk = jnp.maximum(k, 0)
    return jnp.where(ok, _xlogy(kk, rate) - rate - special.gammaln(kk + 1), -jnp.inf)


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
        u = _uniform(ku, (), rate.dtype) - 0.5
        v = _uniform(kv, (), rate.dtype)
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
    k_small = _poisson_small(_uniform(jax.random.fold_in(key, 0), (), rate.dtype), jnp.where(small, rate, 0))
    k_large = _poisson_ptrs(jax.random.fold_in(key, 1), jnp.where(small, 10, rate))
    return jnp.where(small, k_small, k_large)


def _poisson_sample(key, rate, shape=()):
    """Sequential inverse CDF below rate 10, Hörmann's PTRS rejection sampler above."""
    rate = _float(rate)
    _check_positive("rate", rate)
    return _poisson_draw(key, rate, _full(shape, rate))


@functools.partial(jax.jit, static_argnums=2)
def _poisson_draw(key, rate, full):
    keys = jax.random.split(key, math.prod(full))
    k = jax.vmap(_poisson_one)(keys, jnp.broadcast_to(rate, full).ravel())
    return k.reshape(full).astype(jnp.int32)


def _poisson_entropy(rate):
    """H = -Σ_k pmf(k) log pmf(k): the sum over a 1024-term window around the mean (±8σ) below rate 1000,
    the asymptotic series ½log(2πe·rate) - 1/(12 rate) - 1/(24 rate²) - 19/(360 rate³) above it."""
    rate = _float(rate)
    base = jnp.maximum(0, jnp.floor(rate - 8 * jnp.sqrt(rate) - 8))
    k = base[..., None] + jnp.arange(1024, dtype=rate.dtype)
    lp = _poisson_log_prob(k, jnp.minimum(rate, 1000)[..., None])
    exact = -jnp.sum(jnp.exp(lp) * lp, axis=-1)
    r = jnp.maximum(rate, 1000)
    asym = 0.5 * jnp.log(2 * math.pi * math.e * r) - 1 / (12 * r) - 1 / (24 * r**2) - 19 / (360 * r**3)
    return jnp.where(rate < 1000, exact, asym)


def _poisson_cdf(k, rate):
    """P(X ≤ k) = Q(⌊k⌋ + 1, rate), the regularized upper incomplete gamma function."""
    k, rate = _floats(k, rate)
    _check_positive("rate", rate, strict=False)
    k = jnp.floor(k)
    return jnp.where(k < 0, 0, special.gammaincc(jnp.maximum(k, 0) + 1, rate)).astype(rate.dtype)


poisson = Family("poisson", ("rate",), _poisson_log_prob, _poisson_sample, mean=lambda r: _float(r),
                 variance=lambda r: _float(r), entropy=_poisson_entropy, cdf=_poisson_cdf)


# Uniform(low, high): density 1/(high - low) on [low, high].

def _uniform_log_prob(x, low, high):
    x, low, high = _floats(x, low, high)
    _check_positive("high - low", high - low)
    return jnp.where((x >= low) & (x <= high), -jnp.log(high - low), -jnp.inf)


def _uniform_sample(key, low, high, shape=()):
    low, high = _floats(low, high)
    _check_positive("high - low", high - low)
    full = _full(shape, low, high)
    low, high = _bcast(full, low, high)
    return low + (high - low) * _uniform(key, full, low.dtype)


def _uniform_cdf(x, low, high):
    x, low, high = _floats(x, low, high)
    _check_positive("high - low", high - low)
    return jnp.clip((x - low) / (high - low), 0, 1)


def _uniform_moments(low, high):
    low, high = _floats(low, high)
    return (low + high) / 2, (high - low) ** 2 / 12, jnp.log(high - low)


uniform = Family(
    "uniform", ("low", "high"), _uniform_log_prob, _uniform_sample,
    mean=lambda a, b: _uniform_moments(a, b)[0], variance=lambda a, b: _uniform_moments(a, b)[1],
    entropy=lambda a, b: _uniform_moments(a, b)[2], cdf=_uniform_cdf)


# Gaussian(mu, sigma): density exp(-(x-mu)²/(2 sigma²)) / (sigma √(2π)).

_LOG_SQRT_2PI = 0.5 * math.log(2 * math.pi)


def _gaussian_log_prob(x, mu, sigma):
    x, mu, sigma = _floats(x, mu, sigma)
    _check_positive("sigma", sigma)
    z = (x - mu) / sigma
    return -0.5 * z * z - jnp.log(sigma) - _LOG_SQRT_2PI


def _standard_normal(key, shape, dtype):
    """Box-Muller: Z = √(-2 log U₁) cos(2π U₂) is N(0, 1) for independent U₁, U₂ ~ U(0, 1]."""
    k1, k2 = jax.random.split(key)
    u1 = 1 - _uniform(k1, shape, dtype)  # in (0, 1]: log(u1) is finite
    u2 = _uniform(k2, shape, dtype)
    return jnp.sqrt(-2 * jnp.log(u1)) * jnp.cos(2 * math.pi * u2)


def _gaussian_sample(key, mu, sigma, shape=()):
    mu, sigma = _floats(mu, sigma)
    _check_positive("sigma", sigma)
    full = _full(shape, mu, sigma)
    mu, sigma = _bcast(full, mu, sigma)
    return mu + sigma * _standard_normal(key, full, mu.dtype)


def _gaussian_cdf(x, mu, sigma):
    x, mu, sigma = _floats(x, mu, sigma)
    _check_positive("sigma", sigma)
    return 0.5 * special.erfc(-(x - mu) / (sigma * math.sqrt(2)))


def _gaussian_moments(mu, sigma):
    mu, sigma = jnp.broadcast_arrays(*_floats(mu, sigma))
    return mu, sigma**2, 0.5 * jnp.log(2 * math.pi * math.e * sigma**2)


gaussian = Family(
    "gaussian", ("mu", "sigma"), _gaussian_log_prob, _gaussian_sample,
    mean=lambda mu, sigma: _gaussian_moments(mu, sigma)[0],
    variance=lambda mu, sigma: _gaussian_moments(mu, sigma)[1],
    entropy=lambda mu, sigma: _gaussian_moments(mu, sigma)[2], cdf=_gaussian_cdf)


# Multivariate Gaussian(mean (d,), cov (d, d)), via the Cholesky factor cov = L L^T (chapter 6).

def _mvn_check(mean, cov):
    mean, cov = _floats(mean, cov)
    if mean.ndim != 1 or cov.shape != (mean.shape[0], mean.shape[0]):
        raise ValueError(f"mean must be (d,) and cov (d, d), got {mean.shape} and {cov.shape}")
    return mean, cov, numerics.cholesky(cov)


def _mvn_log_prob(x, mean, cov):
    """log N(x; μ, Σ) = -½|z|² - Σ_i log L_ii - (d/2) log 2π with L z = x - μ. x: (d,) or (n, d)."""
    mean, cov, chol = _mvn_check(mean, cov)
    x = _float(x, mean.dtype)
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
    x, rate = _floats(x, rate)
    _check_positive("rate", rate)
    return jnp.where(x >= 0, jnp.log(rate) - rate * x, -jnp.inf)


def _exponential_sample(key, rate, shape=()):
    """Inverse CDF: X = -log(1 - U) / rate."""
    rate = _float(rate)
    _check_positive("rate", rate)
    full = _full(shape, rate)
    return -jnp.log1p(-_uniform(key, full, rate.dtype)) / jnp.broadcast_to(rate, full)


def _exponential_cdf(x, rate):
    x, rate = _floats(x, rate)
    _check_positive("rate", rate)
    return jnp.where(x < 0, 0, -jnp.expm1(-rate * x)).astype(rate.dtype)


exponential = Family(
    "exponential", ("rate",), _exponential_log_prob, _exponential_sample,
    mean=lambda r: 1 / _float(r), variance=lambda r: 1 / _float(r) ** 2, entropy=lambda r: 1 - jnp.log(_float(r)),
    cdf=_exponential_cdf)


# Beta(a, b): density x^{a-1} (1-x)^{b-1} / B(a, b) on [0, 1].

def _log_beta_fn(a, b):
    return special.gammaln(a) + special.gammaln(b) - special.gammaln(a + b)


def _beta_log_prob(x, a, b):
    x, a, b = _floats(x, a, b)
    _check_positive("a", a)
    _check_positive("b", b)
    inside = (x >= 0) & (x <= 1)
    xx = jnp.clip(x, 0, 1)
    lp = _xlogy(a - 1, xx) + _xlogy(b - 1, 1 - xx) - _log_beta_fn(a, b)
    return jnp.where(inside, lp, -jnp.inf)


def _gamma_one(key, alpha):
    """One Gamma(alpha, 1) draw by Marsaglia-Tsang (2000): d = α' - 1/3, c = 1/√(9d); repeat
    Z ~ N(0,1), V = (1 + cZ)^3 until V > 0 and log U < Z²/2 + d - dV + d log V; return dV.
    For α < 1, boost: Gamma(α) = Gamma(α + 1) · U^{1/α}. Acceptance rate > 95%."""
    boost = alpha < 1
    a1 = jnp.where(boost, alpha + 1, alpha)
    d = a1 - 1 / 3
    c = 1 / jnp.sqrt(9 * d)

    def body(s):
        key, _, _ = s
        key, kz, ku = jax.random.split(key, 3)
        z = _standard_normal(kz, (), alpha.dtype)
        v = (1 + c * z) ** 3
        u = _uniform(ku, (), alpha.dtype)
        ok = (v > 0) & (jnp.log(u) < 0.5 * z * z + d - d * v + d * jnp.log(jnp.where(v > 0, v, 1)))
        return key, ok, d * v

    key, _, g = lax.while_loop(lambda s: ~s[1], body, (key, jnp.asarray(False), jnp.zeros_like(alpha)))
    u = _uniform(jax.random.fold_in(key, 1), (), alpha.dtype)
    return jnp.where(boost, g * u ** (1 / alpha), g)


def _beta_sample(key, a, b, shape=()):
    """X = G_a / (G_a + G_b) with independent Gamma(a, 1), Gamma(b, 1) draws (Marsaglia-Tsang)."""
    a, b = _floats(a, b)
    _check_positive("a", a)
    _check_positive("b", b)
    return _beta_draw(key, a, b, _full(shape, a, b))


@functools.partial(jax.jit, static_argnums=3)
def _beta_draw(key, a, b, full):
    a, b = _bcast(full, a, b)
    size = math.prod(full)
    keys = jax.random.split(key, 2 * size).reshape(2, size)
    ga = jax.vmap(_gamma_one)(keys[0], a.ravel())
    gb = jax.vmap(_gamma_one)(keys[1], b.ravel())
    return (ga / (ga + gb)).reshape(full)


def _beta_entropy(a, b):
    """H = log B(a,b) - (a-1)ψ(a) - (b-1)ψ(b) + (a+b-2)ψ(a+b), ψ the digamma function."""
    a, b = _floats(a, b)
    return (_log_beta_fn(a, b) - (a - 1) * special.digamma(a) - (b - 1) * special.digamma(b)
            + (a + b - 2) * special.digamma(a + b))


def _beta_moments(a, b):
    a, b = _floats(a, b)
    return a / (a + b), a * b / ((a + b) ** 2 * (a + b + 1))


def _beta_cdf(x, a, b):
    """P(X ≤ x) = I_x(a, b), the regularized incomplete beta function."""
    x, a, b = _floats(x, a, b)
    _check_positive("a", a)
    _check_positive("b", b)
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


# ------------------------------------------------------------------------------------------ Bayes

def bayes_posterior(prior, likelihood):
    """Bayes' theorem on a discrete hypothesis space: P(h | D) = P(D | h) P(h) / P(D), with evidence
    P(D) = Σ_h P(D | h) P(h). prior, likelihood: (K,). Returns (posterior (K,), evidence)."""
    prior, likelihood = _floats(prior, likelihood)
    if prior.shape != likelihood.shape or prior.ndim != 1:
        raise ValueError(f"prior and likelihood must both be (K,), got {prior.shape} and {likelihood.shape}")
    _check_probs("prior", prior, axis=-1)
    joint = prior * likelihood
    evidence = jnp.sum(joint)
    return joint / evidence, evidence


def bayes_update_sequence(prior, likelihood_table, observations):
    """Sequential Bayes: the posterior after each observation becomes the next prior.
    likelihood_table[h, o] = P(o | h) (K, M); observations: int (T,). Returns posteriors (T, K);
    the last row equals the batch posterior ∝ prior · Π_t P(o_t | h). Normalizing each step avoids the
    underflow of the product."""
    prior, table = _floats(prior, likelihood_table)
    if table.ndim != 2 or table.shape[0] != prior.shape[0]:
        raise ValueError(f"likelihood_table must be (K, M) with K = {prior.shape[0]}, got {table.shape}")
    step = lambda p, o: (lambda post: (post, post))(bayes_posterior(p, table[:, o])[0])
    return lax.scan(step, prior, jnp.asarray(observations))[1]


def beta_bernoulli_update(a, b, xs):
    """Beta(a, b) prior on a coin's p, Bernoulli data xs ∈ {0,1}^n: posterior Beta(a + Σx, b + n - Σx)."""
    a, b, xs = _floats(a, b, xs)
    k = jnp.sum(xs)
    return a + k, b + xs.shape[0] - k


def normal_normal_update(mu0, tau0, sigma, xs):
    """N(μ0, τ0²) prior on the mean of N(μ, σ²) data with known σ: the posterior is N(μ_n, τ_n²) with
    1/τ_n² = 1/τ0² + n/σ² and μ_n = τ_n² (μ0/τ0² + Σx/σ²). Returns (μ_n, τ_n)."""
    mu0, tau0, sigma, xs = _floats(mu0, tau0, sigma, xs)
    precision = 1 / tau0**2 + xs.shape[0] / sigma**2
    mean = (mu0 / tau0**2 + jnp.sum(xs) / sigma**2) / precision
    return mean, 1 / jnp.sqrt(precision)


# ------------------------------------------------------------------- law of large numbers, CLT

def running_mean(xs):
    """x̄_n = x̄_{n-1} + (x_n - x̄_{n-1}) / n for n = 1..N (the law of large numbers' path), shape like xs
    along axis 0. The incremental form keeps float32 accurate where cumsum/n drifts."""
    xs = _float(xs)
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
    x = jnp.sort(_float(samples))
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


def map_bernoulli(xs, a, b):
    """MAP of p under a Beta(a, b) prior (the posterior's mode): (Σx + a - 1) / (n + a + b - 2), a, b > 1."""
    a, b, xs = _floats(a, b, xs)
    return (jnp.sum(xs) + a - 1) / (xs.shape[0] + a + b - 2)


def map_gaussian_mean(xs, sigma, mu0, tau0):
    """MAP of μ for N(μ, σ²) data (σ known) under a N(μ0, τ0²) prior: the posterior mean μ_n of
    `normal_normal_update` (a Gaussian's mode is its mean); shrinks x̄ towards μ0."""
    return normal_normal_update(mu0, tau0, sigma, xs)[0]


def map_poisson(xs, alpha, beta_):
    """MAP of λ under a Gamma(α, β) prior (rate β): (Σx + α - 1) / (n + β), α ≥ 1."""
    alpha, beta_, xs = _floats(alpha, beta_, xs)
    return (jnp.sum(xs) + alpha - 1) / (xs.shape[0] + beta_)


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


# ---------------------------------------------------------------------------------------- Markov chains

def _check_transition(p):
    p = _float(p)
    if p.ndim != 2 or p.shape[0] != p.shape[1]:
        raise ValueError(f"transition matrix must be square (K, K), got {p.shape}")
    _check_probs("transition matrix rows", p, axis=1)
    return p


def n_step(p, n):
    """P^n, the n-step transition probabilities P(X_{t+n} = j | X_t = i), by repeated squaring:
    O(K³ log n). n: int >= 0. A Python int unrolls the ⌊log₂ n⌋ squarings (differentiable in P); a traced
    integer runs them in a ``lax.while_loop`` (jittable in n, not reverse-differentiable)."""
    p = _check_transition(p)
    if isinstance(n, (int, np.integer)):
        if n < 0:
            raise ValueError(f"n must be >= 0, got {n}")
        acc, base = jnp.eye(p.shape[0], dtype=p.dtype), p
        while n:
            acc, base, n = (acc @ base if n % 2 else acc), base @ base, n // 2
        return acc
    n = jnp.asarray(n)
    if not jnp.issubdtype(n.dtype, jnp.integer):
        raise TypeError(f"n must be an integer, got dtype {n.dtype}")

    def body(s):
        acc, base, k = s
        acc = jnp.where(k % 2 == 1, acc @ base, acc)
        return acc, base @ base, k // 2

    eye = jnp.eye(p.shape[0], dtype=p.dtype)
    return lax.while_loop(lambda s: s[2] > 0, body, (eye, p, n))[0]


def distribution_after(p0, p, n):
    """The state distribution after n steps from p0: p_n = p0 P^n (row vector), shape (K,)."""
    p0, p = _floats(p0, p)
    return p0 @ n_step(p, n)


def stationary_distribution(p):
    """The stationary π with π P = π, Σπ = 1: the left eigenvector of P for its eigenvalue 1, i.e. the null
    vector of (P^T - I). One of its K equations is redundant (the columns of P^T - I sum to 0), so it is
    replaced by Σπ = 1 and the system solved by Gaussian elimination (`fungpt.linalg.solve`).
    Unique for an irreducible chain. O(K³)."""
    p = _check_transition(p)
    k = p.shape[0]
    a = (p.T - jnp.eye(k, dtype=p.dtype)).at[-1].set(1)
    rhs = jnp.zeros(k, p.dtype).at[-1].set(1)
    return linalg.solve(a, rhs)


def stationary_power(p, p0=None, *, tol=None, max_iter=10_000):
    """π by power iteration: p_{t+1} = p_t P until ½|p_{t+1} - p_t|_1 ≤ tol (default 10·eps) or max_iter.
    Converges like |λ_2|^t for an irreducible aperiodic chain. Returns (π, iterations)."""
    p = _check_transition(p)
    k = p.shape[0]
    p0 = jnp.full(k, 1 / k, p.dtype) if p0 is None else _float(p0, p.dtype)
    tol = 10 * float(jnp.finfo(p.dtype).eps) if tol is None else tol

    def cond(s):
        _, delta, it = s
        return (delta > tol) & (it < max_iter)

    def body(s):
        x, _, it = s
        nx = x @ p
        return nx, 0.5 * jnp.sum(jnp.abs(nx - x)), it + 1

    x, _, it = lax.while_loop(cond, body, (p0, jnp.asarray(jnp.inf, p.dtype), jnp.asarray(0, jnp.int32)))
    return x, it


def sample_path(key, p, x0, n_steps):
    """A path X_0 = x0, X_{t+1} ~ Categorical(P[X_t]) of length n_steps + 1, by ``lax.scan`` over inverse-CDF
    draws from the current row. Returns int32 (n_steps + 1,)."""
    p = _check_transition(p)
    cdf = jnp.cumsum(p, axis=1)
    us = _uniform(key, (n_steps,), p.dtype)
    k = p.shape[0]

    def step(x, u):
        nx = jnp.minimum(jnp.sum(u >= cdf[x]), k - 1).astype(jnp.int32)
        return nx, nx

    x0 = jnp.asarray(x0, jnp.int32)
    return jnp.concatenate([x0[None], lax.scan(step, x0, us)[1]])


def estimate_transition_matrix(path, k):
    """MLE of P from one path: P̂_ij = N_ij / Σ_j N_ij with N_ij the number of i → j transitions
    (rows never left stay nan)."""
    path = jnp.asarray(path)
    counts = jnp.zeros((k, k), jnp.asarray(0.0).dtype).at[path[:-1], path[1:]].add(1)
    return counts / counts.sum(axis=1, keepdims=True)


def total_variation(p, q):
    """d_TV(p, q) = ½ Σ |p_i - q_i| = max over events |p(A) - q(A)|, in [0, 1]."""
    p, q = _floats(p, q)
    return 0.5 * jnp.sum(jnp.abs(p - q), axis=-1)


def mixing_curve(p, steps):
    """d(t) = max_i d_TV(P^t[i], π) for t = 0..steps-1 (worst start), shape (steps,). For an irreducible
    aperiodic chain d(t) → 0, asymptotically like |λ_2|^t."""
    p = _check_transition(p)
    pi = stationary_distribution(p)

    def step(pt, _):
        return pt @ p, jnp.max(total_variation(pt, pi[None]))

    return lax.scan(step, jnp.eye(p.shape[0], dtype=p.dtype), None, length=steps)[1]


def mixing_time(p, eps=0.25, max_steps=1000):
    """t_mix(ε) = min{t : d(t) ≤ ε} (`mixing_curve`); returns max_steps when not reached."""
    d = mixing_curve(p, max_steps)
    hit = d <= eps
    return jnp.where(jnp.any(hit), jnp.argmax(hit), max_steps)
