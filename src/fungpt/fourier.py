"""Chapter 10, Fourier analysis & signal processing: series, the DFT, our FFT, convolution, filtering.

Conventions are numpy's: ``X_k = Σ_j x_j e^{-2πi jk/n}`` (forward, unscaled), the inverse divides by n.

Our FFT works on (real, imaginary) pairs of real arrays inside, so every step is real arithmetic
(adds, multiplies, reshapes, transposes) that any reverse-mode engine — ours included — differentiates;
the public functions take and return complex arrays like `jnp.fft`. Differentiate a real-valued function
of the output, e.g. ``fungpt.grad(lambda x: jnp.sum(jnp.abs(fft(x)) ** 2))``.

    X = fft(x)                     # any length: radix-2 Cooley-Tukey, Bluestein for other n
    y = convolve(x, k, method="fft")
    clean = lowpass(noisy, cutoff=5.0, fs=100.0)
"""
from __future__ import annotations

import functools
import math
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

_NORMS = ("backward", "ortho", "forward")


def _jit(*static):
    # Public transforms are jitted (shape/option-keyed cache): eager calls compile once per shape
    # instead of dispatching dozens of tiny ops; inside an outer jit this is free.
    return functools.partial(jax.jit, static_argnames=static)

# ---------------------------------------------------------------------------------------------------
# dtype plumbing: complex arrays <-> (re, im) pairs of one real dtype.


def _real_dtype(dtype) -> np.dtype:
    dtype = np.dtype(dtype)
    if jnp.issubdtype(dtype, jnp.complexfloating):
        return np.dtype(np.float32) if dtype == np.complex64 else np.dtype(np.float64)
    if jnp.issubdtype(dtype, jnp.floating):
        # half precision is too coarse for an FFT's twiddles; compute in float32 like jnp.fft.
        return np.dtype(np.float64) if dtype == np.float64 else np.dtype(np.float32)
    if jnp.issubdtype(dtype, jnp.integer) or dtype == np.bool_:
        return np.dtype(jax.dtypes.canonicalize_dtype(np.float64))
    raise TypeError(f"expected a real or complex numeric array, got dtype {dtype}")


def _split(x) -> tuple[jax.Array, jax.Array]:
    x = jnp.asarray(x)
    rdt = _real_dtype(x.dtype)
    if jnp.issubdtype(x.dtype, jnp.complexfloating):
        return jnp.real(x).astype(rdt), jnp.imag(x).astype(rdt)
    re = x.astype(rdt)
    return re, jnp.zeros_like(re)


def _merge(re, im) -> jax.Array:
    return lax.complex(re, im)


def _const(a, dtype, ndim=None) -> jax.Array:
    # Twiddles and chirps are computed once in float64 numpy, then rounded to the working dtype;
    # `ndim` adds leading size-1 axes so they meet batched operands without implicit rank promotion.
    a = np.asarray(a, np.float64).astype(dtype)
    return jnp.asarray(a if ndim is None else a.reshape((1,) * (ndim - a.ndim) + a.shape))


def _check_axis_len(x, axis, n, name):
    if x.ndim == 0:
        raise ValueError(f"{name}: expected an array with at least one dimension, got a scalar")
    if not -x.ndim <= axis < x.ndim:
        raise ValueError(f"{name}: axis {axis} out of range for an array of shape {x.shape}")
    n = x.shape[axis] if n is None else n
    if not isinstance(n, int | np.integer) or n < 1:
        raise ValueError(f"{name}: the transform length n must be a positive int, got {n!r}")
    return int(n)


def _fit(a, n, axis=-1):
    """Zero-pad or truncate `a` to length n along `axis` (numpy's `n=` argument)."""
    m = a.shape[axis]
    if m == n:
        return a
    if m > n:
        return lax.slice_in_dim(a, 0, n, axis=axis)
    pad = [(0, 0)] * a.ndim
    pad[axis] = (0, n - m)
    return jnp.pad(a, pad)


def _check_norm(norm, name):
    norm = "backward" if norm is None else norm
    if norm not in _NORMS:
        raise ValueError(f"{name}: norm must be one of {_NORMS} or None, got {norm!r}")
    return norm


def _scale(re, im, n, norm, inverse):
    if norm == "ortho":
        s = 1.0 / math.sqrt(n)
    elif (norm == "backward") == inverse:
        s = 1.0 / n
    else:
        return re, im
    s = jnp.asarray(s, re.dtype)
    return re * s, im * s


# ---------------------------------------------------------------------------------------------------
# The DFT as a matrix (O(n²), the definition) and our FFT (O(n log n)).


def dft_matrix(n: int, dtype=jnp.complex64) -> jax.Array:
    """``W[k, j] = exp(-2πi·jk/n)``, shape (n, n): ``dft(x) = W @ x``. Symmetric; ``W⁻¹ = conj(W)/n``."""
    if not isinstance(n, int | np.integer) or n < 1:
        raise ValueError(f"dft_matrix: n must be a positive int, got {n!r}")
    jk = np.outer(np.arange(n), np.arange(n)) % n  # reduce mod n first: exact phases for large n
    return jnp.asarray(np.exp(-2j * np.pi * jk / n).astype(dtype))


@_jit("axis")
def dft(x, axis: int = -1) -> jax.Array:
    """The DFT straight from its definition, ``X_k = Σ_j x_j e^{-2πi jk/n}``, as a matrix product: O(n²).

    The reference our FFT is checked against in the experiment; real arithmetic inside, like `fft`.
    """
    x = jnp.asarray(x)
    n = _check_axis_len(x, axis, None, "dft")
    re, im = _split(jnp.moveaxis(x, axis, -1))
    ang = 2 * np.pi * (np.outer(np.arange(n), np.arange(n)) % n) / n
    c, s = _const(np.cos(ang), re.dtype), _const(np.sin(ang), re.dtype)
    hi = lax.Precision.HIGHEST
    # (C - iS)(re + i·im) = (C·re + S·im) + i(C·im - S·re); W is symmetric so x @ W = (W x)ᵀ.
    xr = jnp.matmul(re, c, precision=hi) + jnp.matmul(im, s, precision=hi)
    xi = jnp.matmul(im, c, precision=hi) - jnp.matmul(re, s, precision=hi)
    return jnp.moveaxis(_merge(xr, xi), -1, axis)


def _fft_pow2(re, im, sign):
    """Iterative radix-2 Cooley-Tukey along the last axis, n = 2^L, in the self-sorting (Stockham) order.

    Start: view x as (B, r, c) with r = min(n, 32), x[b, i, j] = x_{ic+j}, and take the r-point DFT
    of every column, i.e. of each stride-c subsequence x_j, x_{j+c}, ... (one small matmul instead of
    five butterfly stages). Each stage then merges column pairs j and j + c/2 — the DFTs of the even
    and odd halves of a twice-longer subsequence — with the butterfly
    X_k = E_k + w^k O_k, X_{k+r} = E_k - w^k O_k, w = e^{sign·iπ/r}: (B, r, c) → (B, 2r, c/2).
    No bit-reversal permutation is needed; log2(n/r) stages, O(n log n).
    """
    n = re.shape[-1]
    lead = re.shape[:-1]
    r = min(n, 32)
    re, im = re.reshape(-1, r, n // r), im.reshape(-1, r, n // r)
    ang = sign * 2 * np.pi * (np.outer(np.arange(r), np.arange(r)) % r) / r
    cr, ci = _const(np.cos(ang), re.dtype), _const(np.sin(ang), re.dtype)
    mm = lambda w, x: jnp.einsum("ki,bic->bkc", w, x, precision=lax.Precision.HIGHEST)
    re, im = mm(cr, re) - mm(ci, im), mm(ci, re) + mm(cr, im)
    while r < n:
        c = re.shape[-1] // 2
        tw = np.exp(sign * 1j * np.pi * np.arange(r) / r)[:, None]
        wr, wi = _const(tw.real, re.dtype, 3), _const(tw.imag, re.dtype, 3)
        er, ei, odr, odi = re[..., :c], im[..., :c], re[..., c:], im[..., c:]
        tr, ti = odr * wr - odi * wi, odr * wi + odi * wr
        re = jnp.concatenate([er + tr, er - tr], axis=1)
        im = jnp.concatenate([ei + ti, ei - ti], axis=1)
        r *= 2
    return re.reshape(*lead, n), im.reshape(*lead, n)


def _next_pow2(n: int) -> int:
    return 1 << max(n - 1, 0).bit_length()


def _bluestein(re, im, sign):
    """Any n via Bluestein's chirp-z: jk = (j² + k² - (k-j)²)/2 turns the DFT into a convolution,
    done with radix-2 FFTs of length M = next_pow2(2n - 1)."""
    n = re.shape[-1]
    big = _next_pow2(2 * n - 1)
    j = np.arange(n, dtype=np.int64)
    ang = np.pi * ((j * j) % (2 * n)) / n  # j² mod 2n keeps the phase exact for large n
    chirp = np.exp(sign * 1j * ang)  # c_j = e^{sign·iπ j²/n}
    kern = np.zeros(big, np.complex128)  # b_m = conj(c_m) for m = -(n-1) .. n-1, wrapped
    kern[:n] = np.conj(chirp)
    kern[big - n + 1:] = np.conj(chirp[1:])[::-1]
    # The kernel's spectrum is a constant: computed once in float64 (numpy) for accuracy.
    kspec = np.fft.fft(kern)
    cr, ci = _const(chirp.real, re.dtype, re.ndim), _const(chirp.imag, re.dtype, re.ndim)
    ar, ai = re * cr - im * ci, re * ci + im * cr
    pad = [(0, 0)] * (re.ndim - 1) + [(0, big - n)]
    fr, fi = _fft_pow2(jnp.pad(ar, pad), jnp.pad(ai, pad), -1)
    kr, ki = _const(kspec.real, re.dtype, re.ndim), _const(kspec.imag, re.dtype, re.ndim)
    pr, pi = fr * kr - fi * ki, fr * ki + fi * kr
    # Inverse FFT as conj(FFT(conj(·)))/M.
    qr, qi = _fft_pow2(pr, -pi, -1)
    inv = jnp.asarray(1.0 / big, re.dtype)
    qr, qi = (qr * inv)[..., :n], (-qi * inv)[..., :n]
    return qr * cr - qi * ci, qr * ci + qi * cr


def _dft_pairs(re, im, sign):
    n = re.shape[-1]
    if n == 1:
        return re, im
    if n & (n - 1) == 0:
        return _fft_pow2(re, im, sign)
    return _bluestein(re, im, sign)


def _fft_along(x, n, axis, norm, inverse, name):
    x = jnp.asarray(x)
    n = _check_axis_len(x, axis, n, name)
    norm = _check_norm(norm, name)
    re, im = _split(jnp.moveaxis(x, axis, -1))
    re, im = _fit(re, n), _fit(im, n)
    re, im = _dft_pairs(re, im, 1 if inverse else -1)
    re, im = _scale(re, im, n, norm, inverse)
    return jnp.moveaxis(_merge(re, im), -1, axis)


@_jit("n", "axis", "norm")
def fft(x, n: int | None = None, axis: int = -1, norm: str | None = None) -> jax.Array:
    """Our FFT: ``X_k = Σ_j x_j e^{-2πi jk/n}`` along `axis`, same signature and result as `jnp.fft.fft`.

    Power-of-two n: iterative radix-2 Cooley-Tukey, O(n log n). Other n: Bluestein's algorithm, three
    radix-2 FFTs of length ≥ 2n-1, still O(n log n). `n` zero-pads or truncates; `norm` in
    {"backward", "ortho", "forward"}. Real input gives complex64 (float32) or complex128 (float64).
    """
    return _fft_along(x, n, axis, norm, False, "fft")


@_jit("n", "axis", "norm")
def ifft(x, n: int | None = None, axis: int = -1, norm: str | None = None) -> jax.Array:
    """Inverse DFT ``x_j = (1/n) Σ_k X_k e^{+2πi jk/n}``, like `jnp.fft.ifft`; ``ifft(fft(x)) = x``."""
    return _fft_along(x, n, axis, norm, True, "ifft")


def _rfft_pairs(x, n):
    """Half-spectrum (k = 0..n//2) of a real signal along the last axis, as a (re, im) pair.

    Even n packs the signal into a complex one of half the length, z_j = x_{2j} + i·x_{2j+1}: one FFT
    of n/2 points, then E_k = (Z_k + conj Z_{h-k})/2, O_k = (Z_k - conj Z_{h-k})/2i, X_k = E_k + w^k O_k.
    """
    x = _fit(x, n)
    if n % 2 or n < 4:
        re, im = _dft_pairs(x, jnp.zeros_like(x), -1)
        return re[..., : n // 2 + 1], im[..., : n // 2 + 1]
    h = n // 2
    pairs = x.reshape(*x.shape[:-1], h, 2)
    zr, zi = _dft_pairs(pairs[..., 0], pairs[..., 1], -1)
    zr, zi = jnp.concatenate([zr, zr[..., :1]], -1), jnp.concatenate([zi, zi[..., :1]], -1)
    cr, ci = zr[..., ::-1], -zi[..., ::-1]  # conj(Z_{h-k}), k = 0..h
    half = jnp.asarray(0.5, x.dtype)
    er, ei = (zr + cr) * half, (zi + ci) * half
    odr, odi = (zi - ci) * half, (cr - zr) * half
    w = np.exp(-2j * np.pi * np.arange(h + 1) / n)
    wr, wi = _const(w.real, x.dtype, x.ndim), _const(w.imag, x.dtype, x.ndim)
    return er + odr * wr - odi * wi, ei + odr * wi + odi * wr


@_jit("n", "axis", "norm")
def rfft(x, n: int | None = None, axis: int = -1, norm: str | None = None) -> jax.Array:
    """FFT of a real signal, keeping k = 0..n//2 (the rest is the conjugate mirror ``X_{n-k} = conj X_k``).

    Like `jnp.fft.rfft`; even n costs one complex FFT of n/2 points.
    """
    x = jnp.asarray(x)
    if jnp.issubdtype(x.dtype, jnp.complexfloating):
        raise TypeError(f"rfft: expected a real array, got {x.dtype}; use fft for complex input")
    n = _check_axis_len(x, axis, n, "rfft")
    norm = _check_norm(norm, "rfft")
    re, _ = _split(jnp.moveaxis(x, axis, -1))
    re, im = _scale(*_rfft_pairs(re, n), n, norm, False)
    return jnp.moveaxis(_merge(re, im), -1, axis)


def _irfft_pairs(re, im, n):
    """Real inverse of a half spectrum (re, im) of length ≥ 1 along the last axis, output length n."""
    m = n // 2 + 1
    re, im = _fit(re, m), _fit(im, m)
    # Hermitian completion: X_{n-k} = conj X_k for k = 1..ceil(n/2)-1.
    top = n - m
    fr = jnp.concatenate([re, re[..., 1:top + 1][..., ::-1]], -1)
    fi = jnp.concatenate([im, -im[..., 1:top + 1][..., ::-1]], -1)
    xr, _ = _dft_pairs(fr, fi, 1)
    return xr * jnp.asarray(1.0 / n, xr.dtype)


@_jit("n", "axis", "norm")
def irfft(x, n: int | None = None, axis: int = -1, norm: str | None = None) -> jax.Array:
    """Inverse of `rfft`: the real signal of length n (default ``2(m-1)``) whose half spectrum is x.

    Like `jnp.fft.irfft`; the imaginary parts of X_0 and (even n) X_{n/2} are ignored.
    """
    x = jnp.asarray(x)
    if x.ndim == 0:
        raise ValueError("irfft: expected an array with at least one dimension, got a scalar")
    m = x.shape[axis] if -x.ndim <= axis < x.ndim else None
    if m is None:
        raise ValueError(f"irfft: axis {axis} out of range for an array of shape {x.shape}")
    n = 2 * (m - 1) if n is None else n
    n = _check_axis_len(x, axis, n, "irfft")
    norm = _check_norm(norm, "irfft")
    re, im = _split(jnp.moveaxis(x, axis, -1))
    out = _irfft_pairs(re, im, n) * jnp.asarray(n, re.dtype)  # undo the 1/n, then apply the norm
    out, _ = _scale(out, out, n, norm, True)
    return jnp.moveaxis(out, -1, axis)


@_jit("axes", "norm")
def fft2(x, axes: tuple[int, int] = (-2, -1), norm: str | None = None) -> jax.Array:
    """2-D DFT ``X_{kl} = Σ_{ij} x_{ij} e^{-2πi(ik/n₁ + jl/n₂)}``: 1-D FFTs along each axis (separable)."""
    return fft(fft(x, axis=axes[1], norm=norm), axis=axes[0], norm=norm)


@_jit("axes", "norm")
def ifft2(x, axes: tuple[int, int] = (-2, -1), norm: str | None = None) -> jax.Array:
    """Inverse of `fft2`."""
    return ifft(ifft(x, axis=axes[1], norm=norm), axis=axes[0], norm=norm)


def fftfreq(n: int, d: float = 1.0, dtype=None) -> jax.Array:
    """Frequencies of the DFT bins: ``[0, 1, ..., ⌈n/2⌉-1, -⌊n/2⌋, ..., -1] / (n·d)`` (d = sample spacing)."""
    if not isinstance(n, int | np.integer) or n < 1:
        raise ValueError(f"fftfreq: n must be a positive int, got {n!r}")
    k = np.concatenate([np.arange((n + 1) // 2), np.arange(-(n // 2), 0)])
    return jnp.asarray(k / (n * d), dtype or jax.dtypes.canonicalize_dtype(np.float64))


def rfftfreq(n: int, d: float = 1.0, dtype=None) -> jax.Array:
    """Frequencies of the `rfft` bins: ``[0, 1, ..., n//2] / (n·d)``."""
    if not isinstance(n, int | np.integer) or n < 1:
        raise ValueError(f"rfftfreq: n must be a positive int, got {n!r}")
    return jnp.asarray(np.arange(n // 2 + 1) / (n * d), dtype or jax.dtypes.canonicalize_dtype(np.float64))


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
    re, im = _split(fft(f(t)))
    inv = jnp.asarray(1.0 / n_samples, re.dtype)
    c = _merge(re * inv, im * inv)
    return jnp.concatenate([c[n_samples - n_terms:], c[: n_terms + 1]])


@_jit("period")
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
    cr, ci = (c.reshape(k.shape) for c in _split(coeffs))
    cos, sin = jnp.cos(phase).astype(cr.dtype), jnp.sin(phase).astype(cr.dtype)
    return _merge(jnp.sum(cr * cos - ci * sin, -1), jnp.sum(cr * sin + ci * cos, -1))


@_jit("dt", "t0")
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
    rdt = _real_dtype(samples.dtype)
    xi = np.concatenate([np.arange((n + 1) // 2), np.arange(-(n // 2), 0)]) / (n * dt)
    fr, fi = _split(fft(samples))
    ang = -2 * np.pi * xi * t0
    pr, pi = _const(dt * np.cos(ang), rdt), _const(dt * np.sin(ang), rdt)
    return _const(xi, rdt), _merge(fr * pr - fi * pi, fr * pi + fi * pr)


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
    sizes = [_next_pow2(s) for s in full]
    if x.ndim == 1:
        xr, xi = _rfft_pairs(x, sizes[0])
        kr, ki = _rfft_pairs(k, sizes[0])
        return _irfft_pairs(xr * kr - xi * ki, xr * ki + xi * kr, sizes[0])[: full[0]]
    # 2-D: real FFT along the last axis, complex FFT along the first.
    xr, xi = _rfft_pairs(_fit(x, sizes[0], 0), sizes[1])
    kr, ki = _rfft_pairs(_fit(k, sizes[0], 0), sizes[1])
    xr, xi = (a.T for a in _dft_pairs(xr.T, xi.T, -1))
    kr, ki = (a.T for a in _dft_pairs(kr.T, ki.T, -1))
    pr, pi = xr * kr - xi * ki, xr * ki + xi * kr
    qr, qi = _dft_pairs(pr.T, pi.T, 1)
    inv = jnp.asarray(1.0 / sizes[0], x.dtype)
    out = _irfft_pairs((qr * inv).T, (qi * inv).T, sizes[1])
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


@_jit("mode", "method")
def convolve(x, k, mode: str = "full", method: str = "direct") -> jax.Array:
    """1-D linear convolution ``(x * k)[n] = Σ_m x[m]·k[n-m]``, like `scipy.signal.convolve`.

    x (N,), k (K,), one float dtype. mode "full" → (N+K-1,), "same" → (N,) centred, "valid" → (N-K+1,).
    method "direct" (O(NK)), "fft" (our FFT, O((N+K) log(N+K))) or "lax" (`lax.conv_general_dilated`):
    the same numbers up to rounding. vmap for batches.
    """
    x, k = _check_conv(x, k, 1, "convolve", mode, method)
    return _crop(_CONV[method](x, k), x.shape, k.shape, mode)


@_jit("mode", "method")
def convolve2d(x, k, mode: str = "full", method: str = "direct") -> jax.Array:
    """2-D linear convolution ``(x * k)[i, j] = Σ_{a,b} x[a, b]·k[i-a, j-b]``, like `scipy.signal.convolve`.

    x (H, W), k (Kh, Kw); modes and methods as in `convolve`.
    """
    x, k = _check_conv(x, k, 2, "convolve2d", mode, method)
    return _crop(_CONV[method](x, k), x.shape, k.shape, mode)


@_jit()
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

    Maximally flat in the passband, -3 dB at f_c, rolling off at 20·n dB per decade.
    """
    freqs = jnp.asarray(freqs)
    if cutoff <= 0 or not isinstance(order, int | np.integer) or order < 1:
        raise ValueError(f"butterworth_gain: need cutoff > 0 and an int order >= 1, "
                         f"got {cutoff!r}, {order!r}")
    r = jnp.abs(freqs) / jnp.asarray(cutoff, freqs.dtype)
    return lax.rsqrt(1 + r ** (2 * int(order)))


def frequency_filter(x, gain: Callable) -> jax.Array:
    """Zero-phase filtering of a real signal: ``y = irfft(H(f) · rfft(x))`` with real gain ``H = gain(f)``.

    x (N,); `gain` maps the rfft bin frequencies (cycles per sample, 0..1/2) to gains. vmap for batches.
    """
    x = jnp.asarray(x)
    if x.ndim != 1 or not jnp.issubdtype(x.dtype, jnp.floating):
        raise ValueError(f"frequency_filter: expected a 1-D real float signal, "
                         f"got shape {x.shape}, {x.dtype}")
    n = x.shape[0]
    re, im = _rfft_pairs(x, n)
    h = jnp.asarray(gain(_const(np.arange(n // 2 + 1) / n, x.dtype))).astype(x.dtype)
    return _irfft_pairs(re * h, im * h, n)


def _check_band(name, fs, *cuts):
    if fs <= 0:
        raise ValueError(f"{name}: sample rate fs must be > 0, got {fs!r}")
    for c in cuts:
        if not 0 < c < fs / 2:
            raise ValueError(f"{name}: cutoff {c!r} must lie strictly between 0 and "
                             f"the Nyquist frequency {fs / 2}")


@_jit("cutoff", "fs", "order")
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


@_jit("cutoff", "fs", "order")
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


@_jit("low", "high", "fs", "order")
def bandpass(x, low: float, high: float, fs: float = 1.0, order: int | None = None) -> jax.Array:
    """Keep frequencies in [low, high]: a low-pass at `high` times a high-pass at `low`."""
    _check_band("bandpass", fs, low, high)
    if not low < high:
        raise ValueError(f"bandpass: need low < high, got {low!r} >= {high!r}")
    return highpass(lowpass(x, high, fs, order), low, fs, order)


@_jit("fs")
def periodogram(x, fs: float = 1.0) -> tuple[jax.Array, jax.Array]:
    """One-sided power spectral density of a real signal, like `scipy.signal.periodogram` (boxcar window,
    no detrending): ``P_k = c_k |X_k|² / (fs·N)`` with c_k = 2 except at DC (and Nyquist, N even).

    Returns (frequencies (N//2+1,), P (N//2+1,)); Σ_k P_k · fs/N = mean(x²) (Parseval).
    """
    x = jnp.asarray(x)
    if x.ndim != 1 or not jnp.issubdtype(x.dtype, jnp.floating):
        raise ValueError(f"periodogram: expected a 1-D real float signal, got shape {x.shape}, {x.dtype}")
    n = x.shape[0]
    re, im = _rfft_pairs(x, n)
    c = np.full(n // 2 + 1, 2.0)
    c[0] = 1.0
    if n % 2 == 0:
        c[-1] = 1.0
    power = (re * re + im * im) * _const(c / (fs * n), x.dtype)
    return _const(np.arange(n // 2 + 1) * fs / n, x.dtype), power
