"""Sample inputs for chapter 10 (fourier): see tests/roadmap_samples/__init__.py."""
import jax
import jax.numpy as jnp

from fungpt import fourier as F
from tests.roadmap_samples import Sample

F_ = "fungpt.fourier."


def _x(shape=(12,)):
    return lambda key: (jax.random.normal(key, shape),)


def _c(shape=(12,)):
    return lambda key: (jax.lax.complex(*jax.random.normal(key, (2, *shape))),)


def _xk(key):
    k1, k2 = jax.random.split(key)
    return jax.random.normal(k1, (16,)), jax.random.normal(k2, (5,))


def _xk2(key):
    k1, k2 = jax.random.split(key)
    return jax.random.normal(k1, (6, 7)), jax.random.normal(k2, (3, 2))


SAMPLES = {
    F_ + "fourier_series": Sample(lambda key: (_c((7,))(key)[0], jnp.linspace(0, 6, 9)), rtol=1e-5),
    F_ + "fourier_transform": Sample(lambda key: (_x((16,))(key)[0], 0.1), static=(1,), rtol=1e-5),
    F_ + "dft": Sample(_c(), rtol=1e-5),
    F_ + "fft": Sample(_c(), rtol=1e-5),
    F_ + "ifft": Sample(_c((16,)), rtol=1e-5),
    F_ + "rfft": Sample(_x(), rtol=1e-5),
    F_ + "irfft": Sample(_c((7,)), rtol=1e-5),
    F_ + "fft2": Sample(_c((4, 6)), rtol=1e-5),
    F_ + "ifft2": Sample(_c((4, 8)), rtol=1e-5),
    F_ + "convolve": Sample(_xk, kwargs={"method": "fft"}, rtol=1e-5),
    F_ + "convolve2d": Sample(_xk2, kwargs={"mode": "same"}, rtol=1e-5),
    F_ + "circular_convolve": Sample(lambda key: tuple(jax.random.normal(key, (2, 10))), rtol=1e-5),
    F_ + "frequency_filter": Sample(lambda key: (_x((32,))(key)[0], lambda f: F.butterworth_gain(f, 0.2, 2)),
                                    static=(1,), rtol=1e-5),
    F_ + "lowpass": Sample(lambda key: (_x((32,))(key)[0], 5.0, 50.0), static=(1, 2), rtol=1e-5),
    F_ + "highpass": Sample(lambda key: (_x((32,))(key)[0], 5.0, 50.0), static=(1, 2), kwargs={"order": 3},
                            rtol=1e-5),
    F_ + "bandpass": Sample(lambda key: (_x((32,))(key)[0], 4.0, 12.0, 50.0), static=(1, 2, 3), rtol=1e-5),
    F_ + "butterworth_gain": Sample(lambda key: (jax.random.uniform(key, (6,), maxval=3.0), 1.2, 3), static=(1, 2)),
    F_ + "periodogram": Sample(_x((20,)), rtol=1e-5),
}
