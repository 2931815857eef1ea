"""Random variables and their moments: exact expectations over a support, sample moments (two-pass), and
Welford's online mean/variance with Chan's parallel merge."""
from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax import lax

from fungpt.probability._base import as_float, check_probs

__all__ = ["WelfordState", "correlation", "covariance", "expectation", "expectation_continuous", "sample_covariance",
           "sample_mean", "sample_variance", "variance", "welford", "welford_finalize", "welford_init",
           "welford_merge", "welford_update"]


def expectation(values, probs, g=None):
    """E[g(X)] = Σ_i g(x_i) p_i for a discrete random variable with support `values` (n,) and
    probabilities `probs` (n,); g defaults to the identity (the mean)."""
    values, probs = as_float(values), as_float(probs)
    if values.shape != probs.shape or values.ndim != 1:
        raise ValueError(f"values and probs must both be (n,), got {values.shape} and {probs.shape}")
    check_probs("probs", probs, axis=-1)
    gx = values if g is None else jax.vmap(g)(values)
    return jnp.sum(gx * probs)


def variance(values, probs):
    """Var X = E[(X - E X)^2] = Σ_i (x_i - μ)^2 p_i (two-pass: no cancellation as in E X² - (E X)²)."""
    mu = expectation(values, probs)
    return expectation(values, probs, lambda x: (x - mu) ** 2)


def covariance(joint, x_values, y_values):
    """Cov(X, Y) = Σ_ij (x_i - μ_X)(y_j - μ_Y) P(x_i, y_j) from a joint table (n, m) with supports
    x_values (n,), y_values (m,)."""
    joint, x, y = as_float(joint), as_float(x_values), as_float(y_values)
    if joint.shape != (x.shape[0], y.shape[0]):
        raise ValueError(f"joint shape {joint.shape} must be (len(x_values), len(y_values)) = "
                         f"({x.shape[0]}, {y.shape[0]})")
    check_probs("joint", joint.ravel(), axis=-1)
    dx = x - jnp.sum(x * joint.sum(1))
    dy = y - jnp.sum(y * joint.sum(0))
    return jnp.sum(jnp.outer(dx, dy) * joint)


def correlation(joint, x_values, y_values):
    """ρ = Cov(X, Y) / (σ_X σ_Y) ∈ [-1, 1] from a joint table."""
    joint = as_float(joint)
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
    x = as_float(x)
    return jnp.sum(x, axis=axis) / x.shape[axis]


def sample_variance(x, ddof=1, axis=0):
    """s² = Σ (x_i - x̄)^2 / (n - ddof) (two-pass); ddof=1 is unbiased, ddof=0 is the MLE."""
    x = as_float(x)
    n = x.shape[axis]
    if n <= ddof:
        raise ValueError(f"need more than ddof={ddof} samples along axis {axis}, got {n}")
    d = x - jnp.expand_dims(sample_mean(x, axis), axis)
    return jnp.sum(d * d, axis=axis) / (n - ddof)


def sample_covariance(x, ddof=1):
    """S = (X - x̄)^T (X - x̄) / (n - ddof) for samples X of shape (n, d); shape (d, d)."""
    x = as_float(x)
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
    """(mean, variance) from a `WelfordState`: variance = M2 / (n - ddof). NaN mean for n = 0 and NaN variance
    for n <= ddof (as numpy), not the 0 that M2 = 0 would suggest."""
    mean = jnp.where(state.count > 0, state.mean, jnp.nan)
    dof = state.count - ddof
    return mean, jnp.where(dof > 0, state.m2 / jnp.where(dof > 0, dof, 1), jnp.nan)


def welford(xs, ddof=1):
    """(mean, variance) of xs along axis 0 in one streaming pass (``lax.scan`` over `welford_update`)."""
    xs = as_float(xs)
    if xs.ndim == 0 or xs.shape[0] <= ddof:
        raise ValueError(f"welford needs more than ddof={ddof} values along axis 0, got shape {xs.shape}")
    state, _ = lax.scan(lambda s, x: (welford_update(s, x), None), welford_init(xs.shape[1:], xs.dtype), xs)
    return welford_finalize(state, ddof)
