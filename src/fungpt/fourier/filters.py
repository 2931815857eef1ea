"""Convolution (direct, by FFT, by lax.conv; 1-D, 2-D, circular) and frequency-domain filtering."""
from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from fungpt.fourier._core import (
    const,
    dft_pairs,
    fit,
    irfft_pairs,
    jit_static,
    next_pow2,
    rfft_pairs,
)

__all__ = ["bandpass", "butterworth_gain", "circular_convolve", "convolve", "convolve2d", "frequency_filter",
           "highpass", "lowpass", "periodogram"]


# ---------------------------------------------------------------------------------------------------
# Convolution: direct, via FFT, via lax.conv — all the same numbers.

_METHODS = ("direct", "fft", "lax")
_MODES = ("full", "same", "valid")


def _check_conv(x, k, ndim, name, mode, method):
    x, k = jnp.asarray(x), jnp.asarray(k)
    if x.ndim != ndim or k.ndim != ndim:
        raise ValueError(f"{name}: expected {ndim}-D signal and kernel, got shapes {x.shape} and {k.shape} "
                         f"(vmap over batch dimensions)")
    if x.dtype != k.dtype or not jnp.issubdtype(x.dtype, jnp.floating):
        raise TypeError(f"{name}: signal and kernel must share one real float dtype, "
                        f"got {x.dtype} and {k.dtype}")
    if 0 in x.shape or 0 in k.shape:
        raise ValueError(f"{name}: empty signal or kernel, shapes {x.shape} and {k.shape}")
    if mode not in _MODES:
        raise ValueError(f"{name}: mode must be one of {_MODES}, got {mode!r}")
    if method not in _METHODS:
        raise ValueError(f"{name}: method must be one of {_METHODS}, got {method!r}")
    if mode == "valid" and any(b > a for a, b in zip(x.shape, k.shape, strict=True)):
        raise ValueError(f"{name}: mode='valid' needs the kernel no larger than the signal, "
                         f"got {k.shape} > {x.shape}")
    return x, k


def _crop(full, xs, ks, mode):
    # scipy.signal.convolve's modes: 'same' is the centre of 'full' with x's shape.
    for ax, (nx, nk) in enumerate(zip(xs, ks, strict=True)):
        if mode == "same":
            start, size = (nk - 1) // 2, nx
        elif mode == "valid":
            start, size = nk - 1, nx - nk + 1
        else:
            continue
        full = lax.slice_in_dim(full, start, start + size, axis=ax)
    return full


def _conv_direct(x, k):
    # full[n] = Σ_a k[a]·x[n-a]: one shifted, scaled copy of the zero-padded signal per kernel tap.
    ks = k.shape
    xp = jnp.pad(x, [(s - 1, s - 1) for s in ks])
    out = jnp.zeros([a + b - 1 for a, b in zip(x.shape, ks, strict=True)], x.dtype)
    for tap in np.ndindex(*ks):
        window = tuple(slice(s - 1 - t, s - 1 - t + o) for s, t, o in zip(ks, tap, out.shape, strict=True))
        out = out + k[tap] * xp[window]
    return out


def _conv_fft(x, k):
    # Convolution theorem: DFT(x * k) = DFT(x)·DFT(k) once both are zero-padded past the full length.
    full = [a + b - 1 for a, b in zip(x.shape, k.shape, strict=True)]
    sizes = [next_pow2(s) for s in full]
    if x.ndim == 1:
        xr, xi = rfft_pairs(x, sizes[0])
        kr, ki = rfft_pairs(k, sizes[0])
        return irfft_pairs(xr * kr - xi * ki, xr * ki + xi * kr, sizes[0])[: full[0]]
    # 2-D: real FFT along the last axis, complex FFT along the first.
    xr, xi = rfft_pairs(fit(x, sizes[0], 0), sizes[1])
    kr, ki = rfft_pairs(fit(k, sizes[0], 0), sizes[1])
    xr, xi = (a.T for a in dft_pairs(xr.T, xi.T, -1))
    kr, ki = (a.T for a in dft_pairs(kr.T, ki.T, -1))
    pr, pi = xr * kr - xi * ki, xr * ki + xi * kr
    qr, qi = dft_pairs(pr.T, pi.T, 1)
    inv = jnp.asarray(1.0 / sizes[0], x.dtype)
    out = irfft_pairs((qr * inv).T, (qi * inv).T, sizes[1])
    return out[: full[0], : full[1]]


def _conv_lax(x, k):
    # lax.conv is cross-correlation: flip the kernel; pad by K-1 on both sides for the full output.
    spatial = "HW"[: x.ndim] if x.ndim == 2 else "H"
    dn = lax.conv_dimension_numbers((1, 1, *x.shape), (1, 1, *k.shape),
                                    (f"NC{spatial}", f"OI{spatial}", f"NC{spatial}"))
    flipped = jnp.flip(k)
    out = lax.conv_general_dilated(x[None, None], flipped[None, None], (1,) * x.ndim,
                                   [(s - 1, s - 1) for s in k.shape], dimension_numbers=dn,
                                   precision=lax.Precision.HIGHEST)
    return out[0, 0]


_CONV = {"direct": _conv_direct, "fft": _conv_fft, "lax": _conv_lax}


@jit_static("mode", "method")
def convolve(x, k, mode: str = "full", method: str = "direct") -> jax.Array:
    """1-D linear convolution ``(x * k)[n] = Σ_m x[m]·k[n-m]``, like `scipy.signal.convolve`.

    x (N,), k (K,), one float dtype. mode "full" → (N+K-1,), "same" → (N,) centred, "valid" → (N-K+1,).
    method "direct" (O(NK)), "fft" (our FFT, O((N+K) log(N+K))) or "lax" (`lax.conv_general_dilated`):
    the same numbers up to rounding. vmap for batches.
    """
    x, k = _check_conv(x, k, 1, "convolve", mode, method)
    return _crop(_CONV[method](x, k), x.shape, k.shape, mode)


@jit_static("mode", "method")
def convolve2d(x, k, mode: str = "full", method: str = "direct") -> jax.Array:
    """2-D linear convolution ``(x * k)[i, j] = Σ_{a,b} x[a, b]·k[i-a, j-b]``, like `scipy.signal.convolve`.

    x (H, W), k (Kh, Kw); modes and methods as in `convolve`.
    """
    x, k = _check_conv(x, k, 2, "convolve2d", mode, method)
    return _crop(_CONV[method](x, k), x.shape, k.shape, mode)


@jit_static()
def circular_convolve(x, y) -> jax.Array:
    """Circular convolution ``(x ⊛ y)[n] = Σ_m x[m]·y[(n-m) mod N]`` of two length-N signals, from the
    definition (O(N²)). The convolution theorem: ``DFT(x ⊛ y) = DFT(x)·DFT(y)``."""
    x, y = jnp.asarray(x), jnp.asarray(y)
    if x.ndim != 1 or x.shape != y.shape:
        raise ValueError(f"circular_convolve: expected two 1-D signals of one length, "
                         f"got {x.shape} and {y.shape}")
    if x.dtype != y.dtype:
        raise TypeError(f"circular_convolve: dtypes differ, {x.dtype} and {y.dtype}")
    n = x.shape[0]
    idx = (np.arange(n)[:, None] - np.arange(n)[None, :]) % n  # circulant: C[n, m] = y[(n-m) mod N]
    return jnp.matmul(y[idx], x, precision=lax.Precision.HIGHEST)


# ---------------------------------------------------------------------------------------------------
# Frequency-domain filtering.


def butterworth_gain(freqs, cutoff: float, order: int) -> jax.Array:
    """Magnitude response of an order-n Butterworth low-pass: ``|H(f)| = 1 / sqrt(1 + (f/f_c)^{2n})``.

    Maximally flat in the passband, -3 dB at f_c, rolling off at 20·n dB per decade.  Integer freqs are
    promoted to the default float (the gain is real); (f/f_c)^{2n} overflowing gives the exact limit 0.
    """
    freqs = jnp.asarray(freqs)
    if not jnp.issubdtype(freqs.dtype, jnp.inexact):  # integer bins: the ratio f/f_c is real, not truncated
        freqs = freqs.astype(jnp.result_type(float))
    if cutoff <= 0 or not isinstance(order, int | np.integer) or order < 1:
        raise ValueError(f"butterworth_gain: need cutoff > 0 and an int order >= 1, "
                         f"got {cutoff!r}, {order!r}")
    r = jnp.abs(freqs) / jnp.asarray(cutoff, freqs.dtype)
    # above the cutoff use s = f_c/f: s^n / sqrt(1 + s^{2n}), so r^{2n} cannot overflow to a gain of 0 where
    # the true gain (f_c/f)^n is still a normal float (1e-30 at r = 1e10, n = 3 in float32)
    big = r > 1
    s = jnp.where(big, 1 / jnp.where(big, r, 1), r)
    g = lax.rsqrt(1 + s ** (2 * int(order)))
    return jnp.where(big, s ** int(order) * g, g)


def frequency_filter(x, gain: Callable) -> jax.Array:
    """Zero-phase filtering of a real signal: ``y = irfft(H(f) · rfft(x))`` with real gain ``H = gain(f)``.

    x (N,); `gain` maps the rfft bin frequencies (cycles per sample, 0..1/2) to gains. vmap for batches.
    """
    x = jnp.asarray(x)
    if x.ndim != 1 or not jnp.issubdtype(x.dtype, jnp.floating):
        raise ValueError(f"frequency_filter: expected a 1-D real float signal, "
                         f"got shape {x.shape}, {x.dtype}")
    n = x.shape[0]
    re, im = rfft_pairs(x, n)
    h = jnp.asarray(gain(const(np.arange(n // 2 + 1) / n, x.dtype))).astype(x.dtype)
    return irfft_pairs(re * h, im * h, n)


def _check_band(name, fs, *cuts):
    if fs <= 0:
        raise ValueError(f"{name}: sample rate fs must be > 0, got {fs!r}")
    for c in cuts:
        if not 0 < c < fs / 2:
            raise ValueError(f"{name}: cutoff {c!r} must lie strictly between 0 and "
                             f"the Nyquist frequency {fs / 2}")


@jit_static("cutoff", "fs", "order")
def lowpass(x, cutoff: float, fs: float = 1.0, order: int | None = None) -> jax.Array:
    """Keep frequencies below `cutoff` (same units as the sample rate fs).

    order=None: the ideal brick wall ``H = [|f| ≤ f_c]``; an int: Butterworth magnitude (no phase shift).
    """
    _check_band("lowpass", fs, cutoff)
    c = cutoff / fs
    if order is None:
        gain = lambda f: (f <= c).astype(f.dtype)
    else:
        gain = lambda f: butterworth_gain(f, c, order)
    return frequency_filter(x, gain)


@jit_static("cutoff", "fs", "order")
def highpass(x, cutoff: float, fs: float = 1.0, order: int | None = None) -> jax.Array:
    """Keep frequencies above `cutoff`: ``H = [|f| > f_c]`` (ideal) or the Butterworth high-pass
    magnitude ``(f/f_c)^n / sqrt(1 + (f/f_c)^{2n})``."""
    _check_band("highpass", fs, cutoff)
    c = cutoff / fs
    if order is None:
        gain = lambda f: (f > c).astype(f.dtype)
    else:
        # |H_hp(f)| = |H_lp(f_c²/f)|; f = 0 maps to infinity, gain 0.
        gain = lambda f: butterworth_gain(jnp.asarray(c * c, f.dtype) / f, c, order)
    return frequency_filter(x, gain)


@jit_static("low", "high", "fs", "order")
def bandpass(x, low: float, high: float, fs: float = 1.0, order: int | None = None) -> jax.Array:
    """Keep frequencies in [low, high]: a low-pass at `high` times a high-pass at `low`."""
    _check_band("bandpass", fs, low, high)
    if not low < high:
        raise ValueError(f"bandpass: need low < high, got {low!r} >= {high!r}")
    return highpass(lowpass(x, high, fs, order), low, fs, order)


@jit_static("fs")
def periodogram(x, fs: float = 1.0) -> tuple[jax.Array, jax.Array]:
    """One-sided power spectral density of a real signal, like `scipy.signal.periodogram` (boxcar window,
    no detrending): ``P_k = c_k |X_k|² / (fs·N)`` with c_k = 2 except at DC (and Nyquist, N even).

    Returns (frequencies (N//2+1,), P (N//2+1,)); Σ_k P_k · fs/N = mean(x²) (Parseval).
    """
    x = jnp.asarray(x)
    if x.ndim != 1 or not jnp.issubdtype(x.dtype, jnp.floating):
        raise ValueError(f"periodogram: expected a 1-D real float signal, got shape {x.shape}, {x.dtype}")
    n = x.shape[0]
    re, im = rfft_pairs(x, n)
    c = np.full(n // 2 + 1, 2.0)
    c[0] = 1.0
    if n % 2 == 0:
        c[-1] = 1.0
    power = (re * re + im * im) * const(c / (fs * n), x.dtype)
    return const(np.arange(n // 2 + 1) * fs / n, x.dtype), power
