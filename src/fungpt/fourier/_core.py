"""The FFT's working parts, shared by the fourier modules: complex arrays as (re, im) pairs of one real
dtype, argument checks, and the pair kernels (radix-2 Cooley-Tukey, Bluestein, real-input packing)."""
from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

__all__ = ["NORMS", "bluestein", "check_axis_len", "check_norm", "const", "dft_pairs", "fft_pow2", "fit",
           "irfft_pairs", "jit_static", "merge", "next_pow2", "real_dtype", "rfft_pairs", "scale", "split"]


NORMS = ("backward", "ortho", "forward")


def jit_static(*static):
    # Public transforms are jitted (shape/option-keyed cache): eager calls compile once per shape
    # instead of dispatching dozens of tiny ops; inside an outer jit this is free.
    return functools.partial(jax.jit, static_argnames=static)

# ---------------------------------------------------------------------------------------------------
# dtype plumbing: complex arrays <-> (re, im) pairs of one real dtype.


def real_dtype(dtype) -> np.dtype:
    dtype = np.dtype(dtype)
    if jnp.issubdtype(dtype, jnp.complexfloating):
        return np.dtype(np.float32) if dtype == np.complex64 else np.dtype(np.float64)
    if jnp.issubdtype(dtype, jnp.floating):
        # half precision is too coarse for an FFT's twiddles; compute in float32 like jnp.fft.
        return np.dtype(np.float64) if dtype == np.float64 else np.dtype(np.float32)
    if jnp.issubdtype(dtype, jnp.integer) or dtype == np.bool_:
        return np.dtype(jax.dtypes.canonicalize_dtype(np.float64))
    raise TypeError(f"expected a real or complex numeric array, got dtype {dtype}")


def split(x) -> tuple[jax.Array, jax.Array]:
    x = jnp.asarray(x)
    rdt = real_dtype(x.dtype)
    if jnp.issubdtype(x.dtype, jnp.complexfloating):
        return jnp.real(x).astype(rdt), jnp.imag(x).astype(rdt)
    re = x.astype(rdt)
    return re, jnp.zeros_like(re)


def merge(re, im) -> jax.Array:
    return lax.complex(re, im)


def const(a, dtype, ndim=None) -> jax.Array:
    # Twiddles and chirps are computed once in float64 numpy, then rounded to the working dtype;
    # `ndim` adds leading size-1 axes so they meet batched operands without implicit rank promotion.
    a = np.asarray(a, np.float64).astype(dtype)
    return jnp.asarray(a if ndim is None else a.reshape((1,) * (ndim - a.ndim) + a.shape))


def check_axis_len(x, axis, n, name):
    if x.ndim == 0:
        raise ValueError(f"{name}: expected an array with at least one dimension, got a scalar")
    if not -x.ndim <= axis < x.ndim:
        raise ValueError(f"{name}: axis {axis} out of range for an array of shape {x.shape}")
    n = x.shape[axis] if n is None else n
    if not isinstance(n, int | np.integer) or n < 1:
        raise ValueError(f"{name}: the transform length n must be a positive int, got {n!r}")
    return int(n)


def fit(a, n, axis=-1):
    """Zero-pad or truncate `a` to length n along `axis` (numpy's `n=` argument)."""
    m = a.shape[axis]
    if m == n:
        return a
    if m > n:
        return lax.slice_in_dim(a, 0, n, axis=axis)
    pad = [(0, 0)] * a.ndim
    pad[axis] = (0, n - m)
    return jnp.pad(a, pad)


def check_norm(norm, name):
    norm = "backward" if norm is None else norm
    if norm not in NORMS:
        raise ValueError(f"{name}: norm must be one of {NORMS} or None, got {norm!r}")
    return norm


def scale(re, im, n, norm, inverse):
    if norm == "ortho":
        s = 1.0 / math.sqrt(n)
    elif (norm == "backward") == inverse:
        s = 1.0 / n
    else:
        return re, im
    s = jnp.asarray(s, re.dtype)
    return re * s, im * s




def fft_pow2(re, im, sign):
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
    cr, ci = const(np.cos(ang), re.dtype), const(np.sin(ang), re.dtype)
    mm = lambda w, x: jnp.einsum("ki,bic->bkc", w, x, precision=lax.Precision.HIGHEST)
    re, im = mm(cr, re) - mm(ci, im), mm(ci, re) + mm(cr, im)
    while r < n:
        c = re.shape[-1] // 2
        tw = np.exp(sign * 1j * np.pi * np.arange(r) / r)[:, None]
        wr, wi = const(tw.real, re.dtype, 3), const(tw.imag, re.dtype, 3)
        er, ei, odr, odi = re[..., :c], im[..., :c], re[..., c:], im[..., c:]
        tr, ti = odr * wr - odi * wi, odr * wi + odi * wr
        re = jnp.concatenate([er + tr, er - tr], axis=1)
        im = jnp.concatenate([ei + ti, ei - ti], axis=1)
        r *= 2
    return re.reshape(*lead, n), im.reshape(*lead, n)


def next_pow2(n: int) -> int:
    return 1 << max(n - 1, 0).bit_length()


def bluestein(re, im, sign):
    """Any n via Bluestein's chirp-z: jk = (j² + k² - (k-j)²)/2 turns the DFT into a convolution,
    done with radix-2 FFTs of length M = next_pow2(2n - 1)."""
    n = re.shape[-1]
    big = next_pow2(2 * n - 1)
    j = np.arange(n, dtype=np.int64)
    ang = np.pi * ((j * j) % (2 * n)) / n  # j² mod 2n keeps the phase exact for large n
    chirp = np.exp(sign * 1j * ang)  # c_j = e^{sign·iπ j²/n}
    kern = np.zeros(big, np.complex128)  # b_m = conj(c_m) for m = -(n-1) .. n-1, wrapped
    kern[:n] = np.conj(chirp)
    kern[big - n + 1:] = np.conj(chirp[1:])[::-1]
    # The kernel's spectrum is a constant: computed once in float64 (numpy) for accuracy.
    kspec = np.fft.fft(kern)
    cr, ci = const(chirp.real, re.dtype, re.ndim), const(chirp.imag, re.dtype, re.ndim)
    ar, ai = re * cr - im * ci, re * ci + im * cr
    pad = [(0, 0)] * (re.ndim - 1) + [(0, big - n)]
    fr, fi = fft_pow2(jnp.pad(ar, pad), jnp.pad(ai, pad), -1)
    kr, ki = const(kspec.real, re.dtype, re.ndim), const(kspec.imag, re.dtype, re.ndim)
    pr, pi = fr * kr - fi * ki, fr * ki + fi * kr
    # Inverse FFT as conj(FFT(conj(·)))/M.
    qr, qi = fft_pow2(pr, -pi, -1)
    inv = jnp.asarray(1.0 / big, re.dtype)
    qr, qi = (qr * inv)[..., :n], (-qi * inv)[..., :n]
    return qr * cr - qi * ci, qr * ci + qi * cr


def dft_pairs(re, im, sign):
    n = re.shape[-1]
    if n == 1:
        return re, im
    if n & (n - 1) == 0:
        return fft_pow2(re, im, sign)
    return bluestein(re, im, sign)




def rfft_pairs(x, n):
    """Half-spectrum (k = 0..n//2) of a real signal along the last axis, as a (re, im) pair.

    Even n packs the signal into a complex one of half the length, z_j = x_{2j} + i·x_{2j+1}: one FFT
    of n/2 points, then E_k = (Z_k + conj Z_{h-k})/2, O_k = (Z_k - conj Z_{h-k})/2i, X_k = E_k + w^k O_k.
    """
    x = fit(x, n)
    if n % 2 or n < 4:
        re, im = dft_pairs(x, jnp.zeros_like(x), -1)
        return re[..., : n // 2 + 1], im[..., : n // 2 + 1]
    h = n // 2
    pairs = x.reshape(*x.shape[:-1], h, 2)
    zr, zi = dft_pairs(pairs[..., 0], pairs[..., 1], -1)
    zr, zi = jnp.concatenate([zr, zr[..., :1]], -1), jnp.concatenate([zi, zi[..., :1]], -1)
    cr, ci = zr[..., ::-1], -zi[..., ::-1]  # conj(Z_{h-k}), k = 0..h
    half = jnp.asarray(0.5, x.dtype)
    er, ei = (zr + cr) * half, (zi + ci) * half
    odr, odi = (zi - ci) * half, (cr - zr) * half
    w = np.exp(-2j * np.pi * np.arange(h + 1) / n)
    wr, wi = const(w.real, x.dtype, x.ndim), const(w.imag, x.dtype, x.ndim)
    return er + odr * wr - odi * wi, ei + odr * wi + odi * wr




def irfft_pairs(re, im, n):
    """Real inverse of a half spectrum (re, im) of length ≥ 1 along the last axis, output length n."""
    m = n // 2 + 1
    re, im = fit(re, m), fit(im, m)
    # Hermitian completion: X_{n-k} = conj X_k for k = 1..ceil(n/2)-1.
    top = n - m
    fr = jnp.concatenate([re, re[..., 1:top + 1][..., ::-1]], -1)
    fi = jnp.concatenate([im, -im[..., 1:top + 1][..., ::-1]], -1)
    xr, _ = dft_pairs(fr, fi, 1)
    return xr * jnp.asarray(1.0 / n, xr.dtype)


