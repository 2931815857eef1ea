"""Chapter 10, Fourier analysis & signal processing: series, the DFT, our FFT, convolution, filtering.

Conventions are numpy's: ``X_k = Σ_j x_j e^{-2πi jk/n}`` (forward, unscaled), the inverse divides by n.

Our FFT works on (real, imaginary) pairs of real arrays inside, so every step is real arithmetic
(adds, multiplies, reshapes, transposes) that any reverse-mode engine — ours included — differentiates;
the public functions take and return complex arrays like `jnp.fft`. Differentiate a real-valued function
of the output, e.g. ``fungpt.grad(lambda x: jnp.sum(jnp.abs(fft(x)) ** 2))``.

    X = fft(x)                     # any length: radix-2 Cooley-Tukey, Bluestein for other n
    y = convolve(x, k, method="fft")
    clean = lowpass(noisy, cutoff=5.0, fs=100.0)
Every public name lives at ``fungpt.fourier.NAME``; the modules are `transforms`, `series` and `filters`.
"""
from fungpt.fourier.filters import (
    bandpass,
    butterworth_gain,
    circular_convolve,
    convolve,
    convolve2d,
    frequency_filter,
    highpass,
    lowpass,
    periodogram,
)
from fungpt.fourier.series import fourier_coefficients, fourier_series, fourier_transform
from fungpt.fourier.transforms import dft, dft_matrix, fft, fft2, fftfreq, ifft, ifft2, irfft, rfft, rfftfreq

__all__ = ["bandpass", "butterworth_gain", "circular_convolve", "convolve", "convolve2d", "dft", "dft_matrix", "fft",
           "fft2", "fftfreq", "fourier_coefficients", "fourier_series", "fourier_transform", "frequency_filter",
           "highpass", "ifft", "ifft2", "irfft", "lowpass", "periodogram", "rfft", "rfftfreq"]
