"""Sample inputs for chapter 1 (basics): see tests/roadmap_samples/__init__.py."""
import jax
import jax.numpy as jnp

from tests.roadmap_samples import Sample


def _normal(shape=(5,)):
    return lambda key: (jax.random.normal(key, shape),)


def _pair(key):
    a, b = jax.random.normal(key, (2, 5))
    return a, b


def _ints(key):
    a, b = jax.random.randint(key, (2, 5), 1, 1000)
    return a, b


SAMPLES = {
    "fungpt.basics.ipow": Sample(lambda key: (jax.random.normal(key, (5,)), 7), static=(1,)),
    "fungpt.basics.log_base": Sample(lambda key: (jnp.exp(jax.random.normal(key, (5,))), 3.0), static=(1,)),
    "fungpt.basics.gcd": Sample(_ints),
    "fungpt.basics.lcm": Sample(_ints),
    "fungpt.basics.logsumexp": Sample(_normal((4, 3))),
    "fungpt.basics.log_add_exp": Sample(_pair),
    "fungpt.basics.softplus": Sample(_normal()),
    "fungpt.basics.sigmoid": Sample(_normal()),
    "fungpt.basics.log_sigmoid": Sample(_normal()),
    "fungpt.basics.log1mexp": Sample(lambda key: (-jnp.exp(jax.random.normal(key, (5,))),)),
}
