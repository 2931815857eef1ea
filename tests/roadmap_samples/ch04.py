"""Sample inputs for chapter 4 (probability): see tests/roadmap_samples/__init__.py."""
import jax
import jax.numpy as jnp

from tests.roadmap_samples import Sample

P = "fungpt.probability."


def _probs(key, shape=(6,)):
    return jax.nn.softmax(jax.random.normal(key, shape))


def _table(key):
    return _probs(key, (12,)).reshape(3, 4)


def _events(key):
    k1, k2, k3 = jax.random.split(key, 3)
    p = _table(k1)
    return p, jax.random.bernoulli(k2, 0.5, (3, 4)), jax.random.bernoulli(k3, 0.5, (3, 4))


def _support(key):
    k1, k2 = jax.random.split(key)
    return jax.random.normal(k1, (6,)), _probs(k2)


def _joint_xy(key):
    k1, k2, k3 = jax.random.split(key, 3)
    return _table(k1), jax.random.normal(k2, (3,)), jax.random.normal(k3, (4,))


def _xs(shape=(16,)):
    return lambda key: (jax.random.normal(key, shape),)


def _spd(key, d=3):
    a = jax.random.normal(key, (d, d))
    return a @ a.T + d * jnp.eye(d)


def _welford_state(key):
    from fungpt import probability as Pr
    xs = jax.random.normal(key, (5, 3))
    s = Pr.welford_update(Pr.welford_update(Pr.welford_init((3,)), xs[0]), xs[1])
    return s, xs[2]


def _two_states(key):
    from fungpt import probability as Pr
    xs = jax.random.normal(key, (4, 2))
    a = Pr.welford_update(Pr.welford_update(Pr.welford_init((2,)), xs[0]), xs[1])
    b = Pr.welford_update(Pr.welford_init((2,)), xs[2])
    return a, b


def _chain(key, k=4):
    return jax.nn.softmax(jax.random.normal(key, (k, k)), axis=1)


def _coin(key):
    return jax.random.bernoulli(key, 0.6, (12,)).astype(jnp.float64)


def _pos(key, shape=(5,)):
    return jnp.exp(jax.random.normal(key, shape) * 0.3) + 0.5


def _binom(key):
    return jnp.asarray([0.0, 3.0, 7.0, 10.0]), 10.0, jax.random.uniform(key, (4,), minval=0.1, maxval=0.9)


def _poisson(key):
    return jnp.asarray([0.0, 2.0, 5.0, 40.0]), _pos(key, (4,)) * 4


def _gauss(key):
    k1, k2 = jax.random.split(key)
    return jax.random.normal(k1, (4,)), 0.3, _pos(k2, (4,))


def _mvn(key):
    k1, k2 = jax.random.split(key)
    return jax.random.normal(k1, (3,)), jnp.zeros(3), _spd(k2)


def _beta(key):
    k1, k2 = jax.random.split(key)
    return jax.random.uniform(k1, (4,), minval=0.05, maxval=0.95), _pos(k2, (4,)), 2.0


SAMPLES = {
    P + "probability": Sample(lambda key: _events(key)[:2]),
    P + "union": Sample(_events),
    P + "intersection": Sample(_events),
    P + "conditional_probability": Sample(_events),
    P + "marginal": Sample(lambda key: (_table(key), 0), static=(1,)),
    P + "conditional": Sample(lambda key: (_table(key), 1), static=(1,)),
    P + "independence_gap": Sample(lambda key: (_table(key),)),
    P + "expectation": Sample(_support, kwargs={"g": jnp.sin}),
    P + "expectation_continuous": Sample(lambda key: (lambda x: -0.5 * x * x, -1.0 + jax.random.uniform(key), 2.0),
                                         static=(0,), argnum=1, rtol=1e-5),
    P + "categorical.sample": Sample(lambda key: (key, _probs(jax.random.fold_in(key, 1)), (5,)), static=(2,)),
    P + "variance": Sample(_support),
    P + "covariance": Sample(_joint_xy),
    P + "correlation": Sample(_joint_xy),
    P + "sample_mean": Sample(_xs()),
    P + "sample_variance": Sample(_xs()),
    P + "sample_covariance": Sample(_xs((10, 3))),
    P + "welford": Sample(_xs((10, 2)), rtol=1e-5),
    P + "welford_update": Sample(_welford_state, argnum=1),
    P + "welford_merge": Sample(_two_states),
    P + "bernoulli.log_prob": Sample(lambda key: (jnp.asarray([0.0, 1.0, 1.0]),
                                                  jax.random.uniform(key, (3,), minval=0.1, maxval=0.9)), argnum=1),
    P + "binomial.log_prob": Sample(_binom, static=(1,), argnum=2),
    P + "binomial.cdf": Sample(_binom, static=(1,), argnum=2, rtol=1e-5),
    P + "poisson.log_prob": Sample(_poisson, argnum=1),
    P + "gaussian.log_prob": Sample(_gauss),
    P + "gaussian.cdf": Sample(_gauss),
    P + "multivariate_gaussian.log_prob": Sample(_mvn, rtol=1e-5),
    P + "exponential.log_prob": Sample(lambda key: (_pos(key, (4,)), 1.5)),
    P + "beta.log_prob": Sample(_beta, argnum=1),
    P + "bayes_posterior": Sample(lambda key: (_probs(key), _probs(jax.random.fold_in(key, 1))), argnum=1),
    P + "bayes_update_sequence": Sample(lambda key: (_probs(key, (3,)), _chain(jax.random.fold_in(key, 1), 3),
                                                     jnp.asarray([0, 2, 1, 1])), argnum=1),
    P + "beta_bernoulli_update": Sample(lambda key: (2.0, 3.0, _coin(key))),
    P + "normal_normal_update": Sample(lambda key: (0.1, 1.5, 0.7, jax.random.normal(key, (8,))), argnum=3),
    P + "running_mean": Sample(_xs()),
    P + "ks_statistic": Sample(lambda key: (jax.random.normal(key, (32,)), jax.scipy.stats.norm.cdf), static=(1,)),
    P + "gaussian.entropy": Sample(lambda key: (jax.random.normal(key, (3,)), _pos(key, (3,))), argnum=1),
    P + "poisson.entropy": Sample(lambda key: (_pos(key, (3,)) * 3,), rtol=1e-5),
    P + "beta.entropy": Sample(lambda key: (_pos(key, (3,)), 2.5)),
    P + "mle_bernoulli": Sample(lambda key: (_coin(key),)),
    P + "mle_gaussian": Sample(_xs()),
    P + "mle_poisson": Sample(lambda key: (_pos(key, (10,)),)),
    P + "mle_exponential": Sample(lambda key: (_pos(key, (10,)),)),
    P + "map_bernoulli": Sample(lambda key: (_coin(key), 3.0, 2.0), argnum=1),
    P + "map_gaussian_mean": Sample(lambda key: (jax.random.normal(key, (8,)), 0.7, 0.1, 1.5)),
    P + "map_poisson": Sample(lambda key: (_pos(key, (10,)), 2.0, 1.0)),
    # differentiable in level (JAX's betainc has no derivative in a, b): argnum 2
    P + "beta_credible_interval": Sample(lambda key: (1.0 + _pos(key, ()), 2.0 + _pos(key, ()),
                                                      jax.random.uniform(key, (), minval=0.5, maxval=0.99)), argnum=2),
    P + "gaussian_credible_interval": Sample(lambda key: (jax.random.normal(key, ()), 0.5 + _pos(key, ()), 0.9)),
    P + "n_step": Sample(lambda key: (_chain(key), 5), static=(1,), rtol=1e-5),
    P + "distribution_after": Sample(lambda key: (_probs(key, (4,)), _chain(jax.random.fold_in(key, 1)), 3),
                                     static=(2,), rtol=1e-5),
    P + "stationary_distribution": Sample(lambda key: (_chain(key),), rtol=1e-5),
    P + "total_variation": Sample(lambda key: (_probs(key), _probs(jax.random.fold_in(key, 1)))),
    P + "mixing_curve": Sample(lambda key: (_chain(key), 6), static=(1,), rtol=1e-5, atol=1e-7),
}
