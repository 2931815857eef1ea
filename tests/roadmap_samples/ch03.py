"""Sample inputs for chapter 3 (calculus): see tests/roadmap_samples/__init__.py."""
import jax
import jax.numpy as jnp

from tests.roadmap_samples import Sample


def _f(v):
    return jnp.sin(v[0]) * jnp.exp(v[1] / 3) + v[0] * v[1] ** 2


def _g(v):
    return jnp.stack([jnp.sin(v[0] * v[1]), v[0] ** 2 + v[1], jnp.exp(v[1] / 4)])


def _x(key):
    return jax.random.uniform(key, (2,), minval=-1.0, maxval=1.0)


def _scalar(key):
    return jax.random.uniform(key, (), minval=0.2, maxval=1.0)


STAGES = (jnp.sin, lambda v: v * v + 1.0, jnp.tanh)
_box = lambda key: (_f, 0.5 * _x(key) - 1.0, 0.5 * _x(key) + 1.0)

SAMPLES = {
    "fungpt.calculus.limit": Sample(lambda key: (jnp.exp, _scalar(key)), static=(0,), argnum=1, rtol=1e-5),
    "fungpt.calculus.derivative": Sample(lambda key: (jnp.sin, _scalar(key)), static=(0,), argnum=1),
    "fungpt.calculus.partial_derivative": Sample(lambda key: (_f, _x(key), 1), static=(0, 2), argnum=1),
    "fungpt.calculus.numerical_gradient": Sample(lambda key: (_f, _x(key)), static=(0,), argnum=1),
    "fungpt.calculus.numerical_jacobian": Sample(lambda key: (_g, _x(key)), static=(0,), argnum=1),
    "fungpt.calculus.chain_rule_vjp": Sample(lambda key: (STAGES, _x(key), jnp.ones(2)), static=(0,), argnum=1),
    "fungpt.calculus.chain_rule_jvp": Sample(lambda key: (STAGES, _x(key), jnp.ones(2)), static=(0,), argnum=1),
    "fungpt.calculus.chain_rule_jacobian": Sample(lambda key: (STAGES, _x(key)), static=(0,), argnum=1),
    "fungpt.calculus.gradient": Sample(lambda key: (_f, _x(key)), static=(0,), argnum=1),
    "fungpt.calculus.directional_derivative": Sample(lambda key: (_f, _x(key), jnp.ones(2)), static=(0,), argnum=1),
    "fungpt.calculus.jacobian": Sample(lambda key: (_g, _x(key)), static=(0,), argnum=1),
    "fungpt.calculus.hessian": Sample(lambda key: (_f, _x(key)), static=(0,), argnum=1),
    "fungpt.calculus.hessian_vector_product": Sample(lambda key: (_f, _x(key), jnp.ones(2)), static=(0,), argnum=1),
    "fungpt.calculus.newton_critical_point": Sample(lambda key: (_f, _x(key)), static=(0,), argnum=1),
    "fungpt.calculus.newton_path": Sample(lambda key: (_f, _x(key), 5), static=(0, 2), argnum=1),
    "fungpt.calculus.newton_step": Sample(lambda key: (_f, _x(key)), static=(0,), argnum=1),
    "fungpt.calculus.classify_critical_point": Sample(lambda key: (_f, _x(key)), static=(0,), argnum=1),
    "fungpt.calculus.extrema_on_interval": Sample(lambda key: (jnp.sin, _scalar(key) - 2.0, _scalar(key) + 2.0),
                                                  static=(0,), argnum=1),
    "fungpt.calculus.trapezoid": Sample(lambda key: (jnp.exp, -_scalar(key), _scalar(key), 16), static=(0, 3),
                                        argnum=2),
    "fungpt.calculus.simpson": Sample(lambda key: (jnp.exp, -_scalar(key), _scalar(key), 16), static=(0, 3),
                                      argnum=2),
    "fungpt.calculus.gauss_legendre": Sample(lambda key: (jnp.exp, -_scalar(key), _scalar(key), 8), static=(0, 3),
                                             argnum=2),
    "fungpt.calculus.tensor_product_rule": Sample(lambda key: (*_box(key), 6), static=(0, 3), argnum=2),
    "fungpt.calculus.monte_carlo": Sample(lambda key: (_f, key, *_box(key)[1:], 256), static=(0, 4), argnum=3),
    "fungpt.calculus.quasi_monte_carlo": Sample(lambda key: (_f, key, *_box(key)[1:], 256), static=(0, 4), argnum=3),
    "fungpt.calculus.taylor_coefficients": Sample(lambda key: (jnp.sin, _scalar(key), 4), static=(0, 2), argnum=1),
    "fungpt.calculus.taylor_polynomial": Sample(lambda key: (_x(key), _scalar(key), 0.3), static=(2,), argnum=0),
    "fungpt.calculus.taylor_remainder_bound": Sample(lambda key: (jnp.sin, 0.0, 3, _scalar(key)), static=(0, 1, 2),
                                                     argnum=3),
}
