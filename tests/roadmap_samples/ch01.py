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


def _coeffs(key, n=4):
    # a nonzero leading coefficient (companion and polyroots refuse c[0] = 0)
    c = jax.random.normal(key, (n,))
    return c.at[0].set(1.0 + jnp.abs(c[0]))


def _poly_pair(key):
    ka, kb = jax.random.split(key)
    return _coeffs(ka, 5), _coeffs(kb, 3)


def _cubic(x):
    return x**3 - 2.0 * x - 5.0


def _shifted(x):
    return jnp.tanh(x) - 0.3


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
    "fungpt.basics.bisect": Sample(lambda key: (_cubic, 1.0 + jax.random.uniform(key), 3.0), static=(0,), argnum=1),
    "fungpt.basics.newton": Sample(lambda key: (_cubic, 2.0 + jax.random.uniform(key)), static=(0,), argnum=1),
    "fungpt.basics.secant": Sample(lambda key: (_cubic, 2.0 + jax.random.uniform(key), 3.0), static=(0,), argnum=1),
    "fungpt.basics.quadratic_roots": Sample(lambda key: (1.0 + jax.random.uniform(key), -5.0, 2.0)),
    "fungpt.basics.polyval": Sample(lambda key: (_coeffs(key), jax.random.normal(key, (3,)))),
    "fungpt.basics.polyder": Sample(lambda key: (_coeffs(key),)),
    "fungpt.basics.polymul": Sample(_poly_pair),
    "fungpt.basics.polydiv": Sample(_poly_pair),
    "fungpt.basics.companion": Sample(lambda key: (_coeffs(key),)),
    "fungpt.basics.polyroots": Sample(lambda key: (_coeffs(key),)),
    "fungpt.basics.polyfactor": Sample(lambda key: (_coeffs(key),)),
    "fungpt.basics.graph": Sample(lambda key: (jnp.sin, -1.0 - jax.random.uniform(key), 2.0, 16), static=(0, 3),
                                  argnum=1),
    "fungpt.basics.invert": Sample(lambda key: (jnp.tanh, 0.5 * jax.random.uniform(key), -3.0, 3.0), static=(0,),
                                   argnum=1),
    "fungpt.basics.is_monotone": Sample(lambda key: (jnp.tanh, -1.0 - jax.random.uniform(key), 2.0), static=(0,),
                                        argnum=1),
    "fungpt.basics.power_mean": Sample(lambda key: (jnp.exp(jax.random.normal(key, (5,))), 2.0), static=(1,)),
    "fungpt.basics.solve_abs_inequality": Sample(lambda key: (1.0 + jax.random.uniform(key), 0.5, 2.0)),
    "fungpt.linalg.vector_norm": Sample(_normal()),
    "fungpt.linalg.dot": Sample(_pair),
}
