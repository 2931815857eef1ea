"""Sample inputs for chapter 11 (topology): see tests/roadmap_samples/__init__.py."""
import jax
import jax.numpy as jnp

from tests.roadmap_samples import Sample


def _pair(key, d=3):
    return tuple(jax.random.normal(key, (2, d)))


def _points(key, n=12, d=3):
    return jax.random.normal(key, (n, d))


def _unit(v):
    return v / jnp.sqrt(jnp.sum(v * v))


def _sphere_pair(key):
    p, q = jax.random.normal(key, (2, 3))
    return _unit(p), _unit(q)


def _tangent(key):
    p, v = jax.random.normal(key, (2, 3))
    p = _unit(p)
    return p, 0.5 * (v - (v @ p) * p)


def _uv(key):
    return (jax.random.uniform(key, (2,), minval=0.3, maxval=1.2),)


def _mlp(x):
    return jnp.tanh(jnp.array([[1.0, -0.5, 0.2], [0.3, 0.8, -1.0]]) @ x)


SAMPLES = {
    "fungpt.topology.euclidean": Sample(_pair),
    "fungpt.topology.manhattan": Sample(_pair),
    "fungpt.topology.chebyshev": Sample(_pair),
    "fungpt.topology.minkowski": Sample(lambda key: (*_pair(key), 3.0), static=(2,)),
    "fungpt.topology.cosine_distance": Sample(_pair),
    "fungpt.topology.sphere_geodesic": Sample(_pair),
    "fungpt.topology.pairwise_distances": Sample(lambda key: (_points(key, 4), _points(key, 5))),
    "fungpt.topology.metric_axiom_violations": Sample(lambda key: (__import__("fungpt").topology.euclidean,
                                                                   _points(key, 5)), static=(0,), argnum=1),
    "fungpt.topology.continuity_delta": Sample(lambda key: (jnp.sin, jax.random.normal(key, (2,)), 0.1, key),
                                               static=(0, 2), argnum=1),
    "fungpt.topology.pca": Sample(lambda key: (_points(key), 2), static=(1,)),
    "fungpt.topology.classical_mds": Sample(lambda key: (__import__("fungpt").topology.pairwise_distances(
        _points(key), _points(key)), 2), static=(1,)),
    "fungpt.topology.knn_graph": Sample(lambda key: (_points(key), 3), static=(1,)),
    "fungpt.topology.shortest_paths": Sample(lambda key: (jnp.abs(jax.random.normal(key, (5, 5))),)),
    "fungpt.topology.isomap": Sample(lambda key: (_points(key, 16), 2, 5), static=(1, 2)),
    "fungpt.topology.swiss_roll": Sample(lambda key: (key, 8), static=(1,)),
    "fungpt.topology.sphere": Sample(_uv),
    "fungpt.topology.torus": Sample(_uv),
    "fungpt.topology.metric_tensor": Sample(lambda key: (__import__("fungpt").topology.torus, *_uv(key)), static=(0,),
                                            argnum=1),
    "fungpt.topology.sphere_exp": Sample(_tangent),
    "fungpt.topology.sphere_log": Sample(_sphere_pair),
    "fungpt.topology.spectral_norm": Sample(lambda key: (jax.random.normal(key, (4, 3)), key)),
    "fungpt.topology.spectral_normalize": Sample(lambda key: (jax.random.normal(key, (4, 3)), key)),
    "fungpt.topology.lipschitz_upper_bound": Sample(lambda key: ([jax.random.normal(key, (4, 3)),
                                                                  jax.random.normal(key, (2, 4))],)),
    "fungpt.topology.empirical_lipschitz": Sample(lambda key: (_mlp, _points(key, 6)), static=(0,), argnum=1),
    "fungpt.generalization.rademacher_linear": Sample(lambda key: (_points(key), 1.0, key, 64), static=(1, 3)),
    "fungpt.generalization.rademacher_linear_bound": Sample(lambda key: (_points(key), 1.0), static=(1,)),
    "fungpt.generalization.empirical_rademacher": Sample(lambda key: (jax.random.normal(key, (5, 14)),)),
    "fungpt.generalization.massart_bound": Sample(lambda key: (jax.random.normal(key, (5, 14)),)),
    "fungpt.generalization.path_norm": Sample(lambda key: (jax.random.normal(key, (7, 3)),
                                                           jax.random.normal(key, (7,)))),
    "fungpt.generalization.two_layer_rademacher_bound": Sample(lambda key: (
        jax.random.normal(key, (7, 3)), jax.random.normal(key, (7,)), _points(key, 9)), argnum=0),
    "fungpt.generalization.margin_bound": Sample(lambda key: (jax.random.normal(key, (20,)), 0.5,
                                                              jnp.abs(jax.random.normal(key, ())), 0.05),
                                                 static=(3,)),
    "fungpt.generalization.bias_variance": Sample(lambda key: (jax.random.normal(key, (6, 5)),
                                                               jax.random.normal(key, (5,)), 0.09)),
}
