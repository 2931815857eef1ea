"""The DFT and our FFT against numpy.fft / jnp.fft (float64 references) and jax.grad."""
import importlib.util
import json
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.linalg
import scipy.signal
import scipy.special

import fungpt
from fungpt import fourier as F
from tests.helpers import FFT, FFT_GRAD

# Relative error, ‖ours - ref‖ / ‖ref‖, against float64 numpy. float32: the 1e-4 the issue asks for.

ROOT = pathlib.Path(__file__).resolve().parents[2]


FFT_TOL = FFT


GRAD_TOL = FFT_GRAD


DTYPES = [np.float32, np.float64]


CPLX = {np.dtype("float32"): np.complex64, np.dtype("float64"): np.complex128}


LENGTHS = {np.dtype("float32"): [1024, 1000, 2], np.dtype("float64"): [1, 8, 64, 3, 12, 100]}


def rel(a, b):
    a, b = np.asarray(a, np.complex128), np.asarray(b, np.complex128)
    return np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-300)


def signal(rng, shape, dtype, complex_=False):
    x = rng.standard_normal(shape)
    if complex_:
        x = x + 1j * rng.standard_normal(shape)
        return x.astype(CPLX[np.dtype(dtype)])
    return x.astype(dtype)


def _power(X):
    return jnp.real(X) ** 2 + jnp.imag(X) ** 2


@pytest.mark.parametrize("dtype", DTYPES)
def test_fft_ifft_match_numpy_and_jnp_fft(dtype):
    rng = np.random.default_rng(0)
    tol = FFT_TOL[np.dtype(dtype)]
    for n in LENGTHS[np.dtype(dtype)]:
        x = signal(rng, (3, n), dtype, complex_=True)
        ours = F.fft(x)
        assert ours.dtype == CPLX[np.dtype(dtype)] and ours.shape == (3, n)
        assert rel(ours, np.fft.fft(x.astype(np.complex128))) < tol, n
        assert rel(ours, jnp.fft.fft(x)) < 2 * tol, n
        assert rel(F.ifft(x), np.fft.ifft(x.astype(np.complex128))) < tol, n
        assert rel(F.ifft(F.fft(x)), x) < tol, n


@pytest.mark.parametrize("dtype", DTYPES)
def test_rfft_irfft_match_numpy(dtype):
    rng = np.random.default_rng(1)
    tol = FFT_TOL[np.dtype(dtype)]
    lengths = [16, 15] if dtype == np.float32 else [1, 2, 3, 6, 32, 50]
    for n in lengths:
        x = signal(rng, (n, 2), dtype)
        ref = np.fft.rfft(x.astype(np.float64), axis=0)
        assert rel(F.rfft(x, axis=0), ref) < tol, n
        xs = F.irfft(ref.astype(CPLX[np.dtype(dtype)]), n, axis=0)
        assert xs.dtype == dtype and rel(xs, x) < tol, n


def test_n_axis_norm_and_2d_match_numpy():
    rng = np.random.default_rng(11)
    tol = FFT_TOL[np.dtype("float64")]
    x = signal(rng, (5, 12), np.float64, complex_=True)
    r = signal(rng, (13,), np.float64)
    for norm, n in [(None, 8), ("ortho", 20), ("forward", 9)]:  # truncate, pad, odd
        assert rel(F.fft(x, n, axis=0, norm=norm), np.fft.fft(x, n, axis=0, norm=norm)) < tol
        assert rel(F.ifft(x, n, norm=norm), np.fft.ifft(x, n, norm=norm)) < tol
        assert rel(F.rfft(r, n, norm=norm), np.fft.rfft(r, n, norm=norm)) < tol
        assert rel(F.irfft(x, n, norm=norm), np.fft.irfft(x, n, norm=norm)) < tol
    assert rel(F.fft2(x), np.fft.fft2(x)) < tol
    assert rel(F.ifft2(x), np.fft.ifft2(x)) < tol


def test_integer_input_and_frequencies():
    x = np.arange(10)
    assert rel(F.fft(x), np.fft.fft(x)) < FFT_TOL[np.dtype("float64")]
    for n, d in [(1, 1.0), (8, 0.1), (9, 2.0)]:
        np.testing.assert_allclose(F.fftfreq(n, d), np.fft.fftfreq(n, d), rtol=1e-15)
        np.testing.assert_allclose(F.rfftfreq(n, d), np.fft.rfftfreq(n, d), rtol=1e-15)


def test_dft_matrix_and_definition():
    for n in [1, 6, 16]:
        np.testing.assert_allclose(F.dft_matrix(n, jnp.complex128), scipy.linalg.dft(n), atol=1e-12)
    rng = np.random.default_rng(2)
    x = signal(rng, (7, 2), np.float64, complex_=True)
    assert rel(F.dft(x, axis=0), np.fft.fft(x, axis=0)) < 1e-13


def test_fft_jit_vmap_agree():
    rng = np.random.default_rng(3)
    for n in [12]:
        x = signal(rng, (4, n), np.float32, complex_=True)
        eager = F.fft(x)
        np.testing.assert_allclose(jax.jit(F.fft)(x), eager, rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(jax.vmap(F.fft)(x), eager, rtol=1e-6, atol=1e-6)
    # Signal-level functions take one signal; vmap batches them.
    X, k = rng.standard_normal((3, 16)), rng.standard_normal(4)
    for fn in [lambda s: F.convolve(s, k, "same", "fft"), lambda s: F.lowpass(s, 0.2)]:
        np.testing.assert_allclose(jax.vmap(fn)(X), np.stack([fn(s) for s in X]), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(("dtype", "n"), [(np.float32, 64), (np.float64, 12)])
def test_fft_differentiates_with_fungpt_grad(dtype, n, key):
    tol = GRAD_TOL[np.dtype(dtype)]
    kx, kw = jax.random.split(key)
    x = jax.random.normal(kx, (n,), dtype)
    w = jax.random.normal(kw, (n // 2 + 1,), dtype)
    # Parseval: Σ|X_k|² = n Σ x_j², so its gradient is 2n·x (a closed form).
    g = jax.jit(fungpt.grad(lambda x: jnp.sum(_power(F.fft(x)))))(x)
    np.testing.assert_allclose(g, 2 * n * x, rtol=tol, atol=tol * n)

    def ours(x):
        X = F.rfft(x)
        return jnp.sum(w * _power(X)) + jnp.sum(F.irfft(X * X, n) ** 2)

    def ref(x):
        X = jnp.fft.rfft(x)
        return jnp.sum(w * _power(X)) + jnp.sum(jnp.fft.irfft(X * X, n) ** 2)

    want = jax.grad(ref)(x)
    scale = np.abs(want).max()
    np.testing.assert_allclose(jax.jit(fungpt.grad(ours))(x), want, rtol=tol, atol=tol * scale)


def test_grad_of_abs_of_fft():
    x = jnp.linspace(-1.0, 1.0, 8)
    g = fungpt.grad(lambda x: jnp.sum(jnp.abs(F.fft(x)) ** 2))(x)
    np.testing.assert_allclose(g, 16 * x, rtol=1e-10)


def test_bad_input_errors():
    x = jnp.ones(8)
    with pytest.raises(ValueError, match="positive int"):
        F.fft(x, n=0)
    with pytest.raises(ValueError, match="axis"):
        F.fft(x, axis=1)
    with pytest.raises(ValueError, match="norm"):
        F.fft(x, norm="unitary")
    with pytest.raises(TypeError, match="real array"):
        F.rfft(x.astype(jnp.complex64))
    with pytest.raises(ValueError, match="scalar"):
        F.fft(jnp.ones(()))
    with pytest.raises(TypeError, match="dtype"):
        F.convolve(x, jnp.ones(3, jnp.float32))
    with pytest.raises(ValueError, match="valid"):
        F.convolve(jnp.ones(3), jnp.ones(5), mode="valid")
    with pytest.raises(ValueError, match="method"):
        F.convolve(x, x, method="winograd")
    with pytest.raises(ValueError, match="1-D"):
        F.convolve(jnp.ones((2, 3)), x)
    with pytest.raises(ValueError, match="Nyquist"):
        F.lowpass(x, 0.6)
    with pytest.raises(ValueError, match="low < high"):
        F.bandpass(x, 0.3, 0.2)
    with pytest.raises(ValueError, match="n_samples"):
        F.fourier_coefficients(jnp.sin, 10, n_samples=8)


@pytest.mark.slow
def test_experiment_runs_quick(tmp_path):
    # In-process (import + main) under this strict harness: no second JAX start-up, shared compile caches.
    spec = importlib.util.spec_from_file_location("ch10_fourier", ROOT / "experiments" / "ch10_fourier.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.main(["--quick", "--out", str(tmp_path)])
    assert (tmp_path / "ch10_denoise.png").exists()
    # The benchmark feeds complex64: our FFT in single precision against jnp.fft, within 1e-4.
    res = json.loads((tmp_path / "ch10_fourier.json").read_text())
    assert res["fft_bench"] and all(r["rel_err_f32"] < 1e-4 for r in res["fft_bench"])
    assert res["denoise"]["snr_ideal_lowpass_db"] > res["denoise"]["snr_noisy_db"] + 5


def test_empty_and_nan_signals():
    with pytest.raises(ValueError):
        np.fft.fft(np.zeros(0))  # the reference refuses an empty transform
    with pytest.raises(ValueError):
        F.fft(jnp.zeros(0))
    x = np.asarray([1.0, np.nan, 2.0, 3.0])
    np.testing.assert_array_equal(np.isnan(np.asarray(F.fft(x))), np.isnan(np.fft.fft(x)))
