"""Sample inputs for chapter 7 (information): see tests/roadmap_samples/__init__.py."""
import jax
import jax.numpy as jnp

from tests.roadmap_samples import Sample

I = "fungpt.information."


def _probs(key, shape=(6,)):
    return jax.nn.softmax(jax.random.normal(key, shape), axis=-1)


def _pair(key):
    return _probs(key), _probs(jax.random.fold_in(key, 1))


def _table(key):
    return _probs(key, (12,)).reshape(3, 4)


def _spd(key, d=3):
    a = jax.random.normal(key, (d, d))
    return a @ a.T + d * jnp.eye(d)


def _gaussians(key):
    k1, k2, k3, k4 = jax.random.split(key, 4)
    return jax.random.normal(k1, (3,)), _spd(k2), jax.random.normal(k3, (3,)), _spd(k4)


SAMPLES = {
    I + "entropy": Sample(lambda key: (_probs(key),)),
    I + "binary_entropy": Sample(lambda key: (jax.random.uniform(key, (5,), minval=0.01, maxval=0.99),)),
    I + "gaussian_entropy": Sample(lambda key: (_spd(key),), rtol=1e-5),
    I + "joint_entropy": Sample(lambda key: (_table(key),)),
    I + "marginals": Sample(lambda key: (_table(key),)),
    I + "conditional_entropy": Sample(lambda key: (_table(key),)),
    I + "cross_entropy": Sample(_pair, argnum=1),
    I + "cross_entropy_from_logits": Sample(lambda key: (jax.random.normal(key, (4, 7)), jnp.asarray([0, 6, 3, 3]))),
    I + "log_softmax": Sample(lambda key: (jax.random.normal(key, (4, 7)),)),
    I + "kl_divergence": Sample(_pair),
    I + "kl_gaussian": Sample(_gaussians, argnum=1, rtol=1e-5),
    I + "mutual_information": Sample(lambda key: (_table(key),)),
    I + "gaussian_mutual_information": Sample(lambda key: (_spd(key, 4), 2), static=(1,), rtol=1e-5),
    I + "mutual_information_histogram": Sample(lambda key: tuple(jax.random.normal(key, (2, 64))), kwargs={"bins": 4}),
    I + "perplexity": Sample(lambda key: (jnp.abs(jax.random.normal(key, (3,))),)),
    I + "perplexity_from_probs": Sample(lambda key: (jax.random.uniform(key, (8,), minval=0.05, maxval=1.0),)),
    I + "bits_per_character": Sample(lambda key: (jnp.abs(jax.random.normal(key, (3,))), 100, 350), static=(1, 2)),
}
