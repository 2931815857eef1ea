"""Special-function helpers shared by probability (chapter 4), information (7) and discrete (9): the few
places where a textbook formula cancels catastrophically, written once so each caller stays accurate.

- ``xlogy``, ``xlog1py``: x·log y and x·log(1+y) with 0·log 0 = 0.
- ``stirling_correction``: δ(x) = log Γ(x) − [(x − ½) log x − x + ½ log 2π] (= log n! − log Stirling(n) at
  x = n), by its asymptotic series for x ≥ 8: lgamma differences of large arguments cancel all their digits.
- ``log_gamma_difference``, ``log_beta``, ``log_comb``: log Γ(b) − log Γ(a+b), log B(a, b), log C(n, k) from δ,
  log1p and one small lgamma, so log C(1e5, 1) = log 1e5 to the last float32 digit.
- ``bd0``: Loader's deviance x log(x/m) + m − x, accurate when x ≈ m (it is then ≈ (x−m)²/2m, not a difference
  of two numbers near x log x). Poisson and binomial log-pmfs are built from δ and bd0 (Loader, 2000).

All are elementwise, jit/vmap/grad-safe (each branch sees a harmless argument where it is not selected).
"""
from __future__ import annotations

import math

import jax.numpy as jnp
from jax import lax

__all__ = ["HALF_LOG_2PI", "bd0", "log_beta", "log_comb", "log_gamma_difference", "stirling_correction", "xlog1py",
           "xlogy"]

HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)
_SERIES_FROM = 8.0
# δ(x) ~ Σ_k B_2k / (2k(2k−1) x^{2k−1}): truncated after x^-13, the error at x = 8 is below 1e-15.
_STIRLING = (1 / 12, -1 / 360, 1 / 1260, -1 / 1680, 1 / 1188, -691 / 360360, 1 / 156)


def xlogy(x, y):
    """x log y with 0·log 0 = 0 (the limit); d/dx stays log y at x = 0 and no NaN reaches a gradient."""
    zero = (x == 0) & (y == 0)
    return x * jnp.log(jnp.where(zero, 1, y))


def xlog1py(x, y):
    """x log(1 + y) with 0·log 0 = 0 at y = −1; log1p keeps y ~ 1e-20 from rounding 1 + y to 1."""
    zero = (x == 0) & (y == -1)
    return x * jnp.log1p(jnp.where(zero, 0, y))


def stirling_correction(x):
    """δ(x) = log Γ(x) − (x − ½) log x + x − ½ log 2π for x > 0 (→ 1/(12x)); the series for x ≥ 8, the
    definition below (where its terms are small, so the difference keeps its absolute accuracy)."""
    big = x >= _SERIES_FROM
    xb = jnp.where(big, x, _SERIES_FROM)
    r2 = 1 / (xb * xb)
    s = jnp.zeros_like(xb)
    for c in reversed(_STIRLING):
        s = s * r2 + c
    xs = jnp.where(big, 1, x)
    direct = lax.lgamma(xs) - (xs - 0.5) * jnp.log(xs) + xs - HALF_LOG_2PI
    return jnp.where(big, s / xb, direct)


def log_gamma_difference(a, b):
    """log Γ(b) − log Γ(a + b) for a ≥ 0, b > 0, without the cancellation of two huge lgammas:
    for b ≥ 8 it is −(b − ½) log1p(a/b) − a log(a + b) + a + δ(b) − δ(a + b)."""
    big = b >= _SERIES_FROM
    bb = jnp.where(big, b, _SERIES_FROM)
    series = (-(bb - 0.5) * jnp.log1p(a / bb) - xlogy(a, a + bb) + a
              + stirling_correction(bb) - stirling_correction(a + bb))
    bs = jnp.where(big, 1, b)
    return jnp.where(big, series, lax.lgamma(bs) - lax.lgamma(a + bs))


def log_beta(a, b):
    """log B(a, b) = log Γ(a) + log Γ(b) − log Γ(a + b) for a, b > 0. Both ≥ 8: ½ log 2π − ½ log(a+b)
    + (a−½) log(a/(a+b)) + (b−½) log1p(−a/(a+b)) + δ(a) + δ(b) − δ(a+b); else log Γ(min) + log Γ(max) −
    log Γ(min + max) by `log_gamma_difference`."""
    lo, hi = jnp.minimum(a, b), jnp.maximum(a, b)
    both = lo >= _SERIES_FROM
    la, lb = jnp.where(both, lo, _SERIES_FROM), jnp.where(both, hi, _SERIES_FROM)
    s = la + lb
    sym = (HALF_LOG_2PI - 0.5 * jnp.log(s) + (la - 0.5) * jnp.log(la / s) + (lb - 0.5) * jnp.log1p(-la / s)
           + stirling_correction(la) + stirling_correction(lb) - stirling_correction(s))
    small = jnp.where(both, 1, lo)
    mixed = lax.lgamma(small) + log_gamma_difference(small, jnp.where(both, 1, hi))
    return jnp.where(both, sym, mixed)


def log_comb(n, k):
    """log C(n, k) = −log(n + 1) − log B(n − k + 1, k + 1) for 0 ≤ k ≤ n (real n, k allowed); exactly 0 at
    k = 0 and k = n."""
    edge = (k == 0) | (k == n)
    kk = jnp.where(edge, 1, k)
    nn = jnp.where(edge, 2, n)
    return jnp.where(edge, 0, -jnp.log1p(nn) - log_beta(nn - kk + 1, kk + 1))


def bd0(x, m):
    """Loader's deviance term x log(x/m) + m − x ≥ 0 for x ≥ 0, m > 0. Where |x − m| < 0.1 (x + m) it is
    (x−m)·v + 2x Σ_{j≥1} v^{2j+1}/(2j+1) with v = (x−m)/(x+m) (from log(x/m) = 2 atanh v), which keeps
    its relative accuracy as x → m."""
    d = x - m
    near = jnp.abs(d) < 0.1 * (x + m)
    v = jnp.where(near, d / jnp.where(near, x + m, 1), 0)
    v2 = v * v
    term, s = 2 * x * v, jnp.zeros_like(v)
    for j in range(1, 12):  # v² < 0.01: eleven terms reach 1e-22 relative
        term = term * v2
        s = s + term / (2 * j + 1)
    far = xlogy(x, x) - xlogy(x, m) + m - x  # x log(x/m), without overflowing x/m
    return jnp.where(near, d * v + s, far)
