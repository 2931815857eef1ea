"""Sample inputs for chapter 5 (optim): see tests/roadmap_samples/__init__.py."""
import jax
import jax.numpy as jnp

from fungpt import optim
from tests.roadmap_samples import Sample


def _normal(*shapes):
    def make(key):
        keys = jax.random.split(key, len(shapes))
        return tuple(jax.random.normal(k, s) for k, s in zip(keys, shapes, strict=True))
    return make


def _tree(key):
    k1, k2 = jax.random.split(key)
    return {"w": jax.random.normal(k1, (3, 2)), "b": [jax.random.normal(k2, (2,))]}


def _quartic(x):
    # Smooth, non-quadratic, with a non-trivial Hessian everywhere: third derivatives exist for grad-of-HVP.
    return jnp.sum(x**4) / 4 + jnp.sum(x[:-1] * x[1:]) + jnp.sum(jnp.sin(x))


def _matvec(key):
    a = jax.random.normal(jax.random.key(7), (4, 4))
    sym = a @ a.T + jnp.diag(jnp.arange(4.0))
    return (lambda v: sym @ v), jax.random.normal(key, (4,))


def _labels(key):
    k1, k2 = jax.random.split(key)
    return jax.random.normal(k1, (4, 5)), jax.random.randint(k2, (4,), 0, 5)


def _state(key):
    opt = optim.inject_hyperparams(optim.sgd)(learning_rate=0.1, momentum=0.9)
    state = opt.init({"w": jax.random.normal(key, (3,))})
    return (optim.set_hyperparams(state, momentum=jax.random.uniform(key, ())),)


def _report(key):
    return (optim.ConvexityReport(*jax.random.normal(key, (4,))),)


def _tanh_layer(x):
    return jnp.tanh(_ROTATION[:2] @ x + 0.3)


_KEY = jax.random.key(3)  # closed over (static): the functions' own randomness, not what is checked
_ROTATION = jnp.linalg.qr(jax.random.normal(jax.random.key(5), (3, 3)))[0]
SAMPLES = {
    # gradient descent and its pieces
    "fungpt.optim.apply_updates": Sample(lambda key: (_tree(key), _tree(jax.random.fold_in(key, 1)))),
    "fungpt.optim.global_norm": Sample(lambda key: (_tree(key),)),
    # losses and minimization
    "fungpt.optim.mse": Sample(_normal((6,), (6,))),
    "fungpt.optim.mae": Sample(_normal((6,), (6,))),
    "fungpt.optim.huber": Sample(lambda key: (3 * jax.random.normal(key, (6,)), jnp.zeros(6))),
    "fungpt.optim.softmax_cross_entropy": Sample(_labels),
    "fungpt.optim.binary_cross_entropy_with_logits": Sample(
        lambda key: (jax.random.normal(key, (6,)), jax.random.uniform(jax.random.fold_in(key, 1), (6,)))),
    "fungpt.optim.hinge": Sample(
        lambda key: (jax.random.normal(key, (6,)), jnp.sign(jax.random.normal(jax.random.fold_in(key, 1), (6,))))),
    "fungpt.optim.gradient_descent": Sample(lambda key: (_quartic, jax.random.normal(key, (3,)), 5),
                                            static=(0, 2), kwargs={"learning_rate": 0.05}, argnum=1),
    # convexity
    "fungpt.optim.convexity": Sample(lambda key: (_quartic, key, 3), static=(0, 2), kwargs={"n": 8}),
    "fungpt.optim.is_convex": Sample(_report),
    # critical points and curvature
    "fungpt.optim.newton": Sample(lambda key: (_quartic, 2 + jax.random.uniform(key, (3,)), 4), static=(0, 2),
                                  argnum=1, rtol=1e-5),
    "fungpt.optim.hvp": Sample(lambda key: (_quartic, *_normal((3,), (3,))(key)), static=(0,), argnum=1),
    "fungpt.optim.hessian_top_eigenvalue": Sample(lambda key: (_quartic, jax.random.normal(key, (3,)), _KEY, 50),
                                                  static=(0, 2, 3), argnum=1, rtol=1e-5),
    "fungpt.optim.hessian_eigenvalues_lanczos": Sample(
        lambda key: (_quartic, jax.random.normal(key, (3,)), _KEY, 3), static=(0, 2, 3), argnum=1, rtol=1e-5),
    "fungpt.optim.lanczos": Sample(lambda key: (*_matvec(key), 3), static=(0, 2), argnum=1, rtol=1e-5),
    "fungpt.optim.power_iteration": Sample(lambda key: (*_matvec(key), 30), static=(0, 2), argnum=1, rtol=1e-5),
    # schedules and hyperparameters
    "fungpt.optim.set_hyperparams": Sample(_state, kwargs={"learning_rate": 0.5}),
    # constrained optimization: the sphere problem of tests/optim/test_constrained.py, rotated
    "fungpt.optim.lagrange_newton": Sample(
        lambda key: (lambda x: jnp.sum((x - 2.0) ** 2), lambda x: x @ x - 1.0, 1 + jax.random.uniform(key, (3,))),
        static=(0, 1)),
    "fungpt.optim.augmented_lagrangian": Sample(
        lambda key: (lambda x: jnp.sum((_ROTATION @ x - 2.0) ** 2), jax.random.normal(key, (3,)),
                     lambda x: jnp.sum(x) - 1.0, lambda x: x @ x - 1.0),
        static=(0, 2, 3), rtol=1e-5, atol=1e-7),
    "fungpt.optim.kkt_residuals": Sample(
        lambda key: (_quartic, *_normal((3,), (1,), (1,))(key), lambda x: jnp.sum(x) - 1.0, lambda x: x @ x - 1.0),
        static=(0, 4, 5), argnum=1),
    # Lipschitz
    "fungpt.optim.spectral_norm": Sample(lambda key: (jax.random.normal(key, (4, 3)), _KEY, 60), static=(1, 2),
                                         rtol=1e-5),
    "fungpt.optim.mlp_lipschitz_bound": Sample(
        lambda key: ([jax.random.normal(key, (4, 3)), jax.random.normal(jax.random.fold_in(key, 1), (2, 4))], _KEY, 60),
        static=(1, 2), rtol=1e-5),
    "fungpt.optim.lipschitz_lower_bound": Sample(lambda key: (_tanh_layer, jax.random.normal(key, (5, 3))),
                                                 static=(0,), argnum=1),
}
