"""The DFT (as a matrix product) and our FFT: fft/ifft/rfft/irfft/fft2/ifft2 with numpy's conventions."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from fungpt.fourier._core import (
    check_axis_len,
    check_norm,
    const,
    dft_pairs,
    fit,
    irfft_pairs,
    jit_static,
    merge,
    rfft_pairs,
    scale,
    split,
)

__all__ = ["dft", "dft_matrix", "fft", "fft2", "fftfreq", "ifft", "ifft2", "irfft", "rfft", "rfftfreq"]


# ---------------------------------------------------------------------------------------------------
# The DFT as a matrix (O(n²), the definition) and our FFT (O(n log n)).


def dft_matrix(n: int, dtype=jnp.complex64) -> jax.Array:
    """``W[k, j] = exp(-2πi·jk/n)``, shape (n, n): ``dft(x) = W @ x``. Symmetric; ``W⁻¹ = conj(W)/n``."""
    if not isinstance(n, int | np.integer) or n < 1:
        raise ValueError(f"dft_matrix: n must be a positive int, got {n!r}")
    jk = np.outer(np.arange(n), np.arange(n)) % n  # reduce mod n first: exact phases for large n
    return jnp.asarray(np.exp(-2j * np.pi * jk / n).astype(dtype))


@jit_static("axis")
def dft(x, axis: int = -1) -> jax.Array:
    """The DFT straight from its definition, ``X_k = Σ_j x_j e^{-2πi jk/n}``, as a matrix product: O(n²).

    The reference our FFT is checked against in the experiment; real arithmetic inside, like `fft`.
    """
    x = jnp.asarray(x)
    n = check_axis_len(x, axis, None, "dft")
    re, im = split(jnp.moveaxis(x, axis, -1))
    ang = 2 * np.pi * (np.outer(np.arange(n), np.arange(n)) % n) / n
    c, s = const(np.cos(ang), re.dtype), const(np.sin(ang), re.dtype)
    hi = lax.Precision.HIGHEST
    # (C - iS)(re + i·im) = (C·re + S·im) + i(C·im - S·re); W is symmetric so x @ W = (W x)ᵀ.
    xr = jnp.matmul(re, c, precision=hi) + jnp.matmul(im, s, precision=hi)
    xi = jnp.matmul(im, c, precision=hi) - jnp.matmul(re, s, precision=hi)
    return jnp.moveaxis(merge(xr, xi), -1, axis)




def _fft_along(x, n, axis, norm, inverse, name):
    x = jnp.asarray(x)
    n = check_axis_len(x, axis, n, name)
    norm = check_norm(norm, name)
    re, im = split(jnp.moveaxis(x, axis, -1))
    re, im = fit(re, n), fit(im, n)
    re, im = dft_pairs(re, im, 1 if inverse else -1)
    re, im = scale(re, im, n, norm, inverse)
    return jnp.moveaxis(merge(re, im), -1, axis)


@jit_static("n", "axis", "norm")
def fft(x, n: int | None = None, axis: int = -1, norm: str | None = None) -> jax.Array:
    """Our FFT: ``X_k = Σ_j x_j e^{-2πi jk/n}`` along `axis`, same signature and result as `jnp.fft.fft`.

    Power-of-two n: iterative radix-2 Cooley-Tukey, O(n log n). Other n: Bluestein's algorithm, three
    radix-2 FFTs of length ≥ 2n-1, still O(n log n). `n` zero-pads or truncates; `norm` in
    {"backward", "ortho", "forward"}. Real input gives complex64 (float32) or complex128 (float64).
    """
    return _fft_along(x, n, axis, norm, False, "fft")


@jit_static("n", "axis", "norm")
def ifft(x, n: int | None = None, axis: int = -1, norm: str | None = None) -> jax.Array:
    """Inverse DFT ``x_j = (1/n) Σ_k X_k e^{+2πi jk/n}``, like `jnp.fft.ifft`; ``ifft(fft(x)) = x``."""
    return _fft_along(x, n, axis, norm, True, "ifft")




@jit_static("n", "axis", "norm")
def rfft(x, n: int | None = None, axis: int = -1, norm: str | None = None) -> jax.Array:
    """FFT of a real signal, keeping k = 0..n//2 (the rest is the conjugate mirror ``X_{n-k} = conj X_k``).

    Like `jnp.fft.rfft`; even n costs one complex FFT of n/2 points.
    """
    x = jnp.asarray(x)
    if jnp.issubdtype(x.dtype, jnp.complexfloating):
        raise TypeError(f"rfft: expected a real array, got {x.dtype}; use fft for complex input")
    n = check_axis_len(x, axis, n, "rfft")
    norm = check_norm(norm, "rfft")
    re, _ = split(jnp.moveaxis(x, axis, -1))
    re, im = scale(*rfft_pairs(re, n), n, norm, False)
    return jnp.moveaxis(merge(re, im), -1, axis)




@jit_static("n", "axis", "norm")
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
    n = check_axis_len(x, axis, n, "irfft")
    norm = check_norm(norm, "irfft")
    re, im = split(jnp.moveaxis(x, axis, -1))
    out = irfft_pairs(re, im, n) * jnp.asarray(n, re.dtype)  # undo the 1/n, then apply the norm
    out, _ = scale(out, out, n, norm, True)
    return jnp.moveaxis(out, -1, axis)


@jit_static("axes", "norm")
def fft2(x, axes: tuple[int, int] = (-2, -1), norm: str | None = None) -> jax.Array:
    """2-D DFT ``X_{kl} = Σ_{ij} x_{ij} e^{-2πi(ik/n₁ + jl/n₂)}``: 1-D FFTs along each axis (separable)."""
    return fft(fft(x, axis=axes[1], norm=norm), axis=axes[0], norm=norm)


@jit_static("axes", "norm")
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


