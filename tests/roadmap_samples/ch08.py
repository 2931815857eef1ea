"""Sample inputs for chapter 8 (graphs): see tests/roadmap_samples/__init__.py."""
import jax
import jax.numpy as jnp

from tests.roadmap_samples import Sample

G = "fungpt.graphs."


def _dag(key, n=6):
    return jnp.triu(jax.random.bernoulli(key, 0.5, (n, n)), 1)


def _weighted(key, n=5):
    return jax.random.uniform(key, (n, n)) * jax.random.bernoulli(jax.random.fold_in(key, 1), 0.6, (n, n)).astype(float)


def _sym(key, n=5):
    w = _weighted(key, n)
    return w + w.T


def _edges(key):
    return jax.random.randint(key, (7, 2), 0, 5), 5, jax.random.uniform(jax.random.fold_in(key, 1), (7,))


def _attention(key):
    k1, k2 = jax.random.split(key)
    return jax.random.normal(k1, (5, 4)), jax.random.normal(k2, (6, 4)), jnp.tril(jnp.ones((5, 6), bool), 1)


SAMPLES = {
    G + "adjacency_matrix": Sample(_edges, static=(1,), argnum=2),
    G + "is_dag": Sample(lambda key: (_dag(key),)),
    G + "has_cycle": Sample(lambda key: (jax.random.bernoulli(key, 0.3, (6, 6)),)),
    G + "topological_order": Sample(lambda key: (_dag(key),)),
    G + "walk_counts": Sample(lambda key: (_weighted(key), 3), static=(1,)),
    G + "matrix_power": Sample(lambda key: (_weighted(key), 5), static=(1,), rtol=1e-5),
    G + "transitive_closure": Sample(lambda key: (jax.random.bernoulli(key, 0.3, (7, 7)),)),
    G + "degrees": Sample(lambda key: (_weighted(key),)),
    G + "laplacian": Sample(lambda key: (_sym(key),), kwargs={"normalized": True}, rtol=1e-5),
    G + "attention_weights": Sample(_attention),
    G + "attention_rollout": Sample(lambda key: (jax.nn.softmax(jax.random.normal(key, (3, 2, 5, 5)), axis=-1),),
                                    rtol=1e-5),
}
