"""Fourier series (coefficients, partial sums) and the continuous Fourier transform from samples."""
from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from fungpt.fourier._core import (
    const,
    jit_static,
    merge,
    real_dtype,
    split,
)
from fungpt.fourier.transforms import fft

__all__ = ["fourier_coefficients", "fourier_series", "fourier_transform"]


# ---------------------------------------------------------------------------------------------------
# Fourier series and the continuous transform.


def fourier_coefficients(f: Callable, n_terms: int, period: float = 2 * np.pi, n_samples: int = 4096,
                         dtype=None) -> jax.Array:
    """Complex Fourier-series coefficients ``c_k = (1/T)∫₀ᵀ f(t) e^{-2πikt/T} dt`` for k = -K..K.

    Returns shape (2K+1,), index K + k. Computed with our FFT of N equispaced samples (the trapezoid
    rule, spectrally accurate for smooth periodic f, exact for trigonometric polynomials of degree < N/2).
    `f` maps an array of times to values (real or complex).
    """
    if not isinstance(n_terms, int | np.integer) or n_terms < 0:
        raise ValueError(f"fourier_coefficients: n_terms must be an int >= 0, got {n_terms!r}")
    if n_samples < 2 * n_terms + 1:
        raise ValueError(f"fourier_coefficients: n_samples={n_samples} must be >= 2·n_terms + 1 = "
                         f"{2 * n_terms + 1} to resolve every requested coefficient")
    dtype = dtype or jax.dtypes.canonicalize_dtype(np.float64)
    t = jnp.asarray(np.arange(n_samples) * (period / n_samples), dtype)
    re, im = split(fft(f(t)))
    inv = jnp.asarray(1.0 / n_samples, re.dtype)
    c = merge(re * inv, im * inv)
    return jnp.concatenate([c[n_samples - n_terms:], c[: n_terms + 1]])


@jit_static("period")
def fourier_series(coeffs, t, period: float = 2 * np.pi) -> jax.Array:
    """The partial sum ``S_K(t) = Σ_{k=-K}^{K} c_k e^{2πikt/T}`` (complex; real f gives a real sum).

    `coeffs` shape (2K+1,) as from `fourier_coefficients`; `t` any shape; result has t's shape.
    """
    coeffs, t = jnp.asarray(coeffs), jnp.asarray(t)
    if coeffs.ndim != 1 or coeffs.shape[0] % 2 != 1:
        raise ValueError(f"fourier_series: coeffs must have shape (2K+1,), got {coeffs.shape}")
    kk = coeffs.shape[0] // 2
    k = jnp.arange(-kk, kk + 1).astype(t.dtype).reshape((1,) * t.ndim + (2 * kk + 1,))
    phase = (2 * np.pi / period) * t[..., None] * k
    cr, ci = (c.reshape(k.shape) for c in split(coeffs))
    cos, sin = jnp.cos(phase).astype(cr.dtype), jnp.sin(phase).astype(cr.dtype)
    return merge(jnp.sum(cr * cos - ci * sin, -1), jnp.sum(cr * sin + ci * cos, -1))


@jit_static("dt", "t0")
def fourier_transform(samples, dt: float, t0: float = 0.0) -> tuple[jax.Array, jax.Array]:
    """Approximate ``F(ξ) = ∫ f(t) e^{-2πiξt} dt`` from samples f(t₀ + j·dt), j = 0..n-1.

    Riemann sum at ξ_k = fftfreq(n, dt): ``F(ξ_k) ≈ dt · e^{-2πiξ_k t₀} · FFT(f)_k``. Returns
    (frequencies, F) in FFT order; accurate when f decays within the window and is band-limited
    below the Nyquist frequency 1/(2dt).
    """
    samples = jnp.asarray(samples)
    if samples.ndim != 1:
        raise ValueError(f"fourier_transform: expected 1-D samples, got shape {samples.shape}")
    n = samples.shape[0]
    rdt = real_dtype(samples.dtype)
    xi = np.concatenate([np.arange((n + 1) // 2), np.arange(-(n // 2), 0)]) / (n * dt)
    fr, fi = split(fft(samples))
    ang = -2 * np.pi * xi * t0
    pr, pi = const(dt * np.cos(ang), rdt), const(dt * np.sin(ang), rdt)
    return const(xi, rdt), merge(fr * pr - fi * pi, fr * pi + fi * pr)


