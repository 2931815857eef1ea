"""Sample inputs for chapter 9 (discrete): see tests/roadmap_samples/__init__.py."""
import jax
import jax.numpy as jnp

from fungpt import discrete as dm
from tests.roadmap_samples import Sample

D = "fungpt.discrete."


def _n(lo=2.0, hi=60.0):
    return lambda key: (jax.random.uniform(key, (4,), minval=lo, maxval=hi),)


def _nk(key):
    n = jax.random.uniform(key, (4,), minval=10.0, maxval=1e4)
    return n, n * jax.random.uniform(jax.random.fold_in(key, 1), (4,), minval=0.1, maxval=0.9)


def _rec(key):
    return jnp.asarray([1.0, 1.0]) + 0.1 * jax.random.normal(key, (2,)), jnp.asarray([0.0, 1.0])


def _heap(key):
    return dm.heapify(jax.random.normal(key, (6,)), 8)


X = dm.Var("x")
EXPR = dm.tanh(X) * X**2 + dm.exp(dm.sin(X)) / (1 + X * X)

SAMPLES = {
    D + "log_factorial": Sample(_n()),
    D + "log_perm": Sample(_nk),
    D + "log_comb": Sample(_nk),
    D + "stirling": Sample(_n(1.0, 30.0), rtol=1e-5),
    D + "stirling_log_error": Sample(_n(1.0, 100.0)),
    D + "binet": Sample(_n(1.0, 30.0), rtol=1e-5),
    D + "linear_recurrence": Sample(lambda key: (*_rec(key), 12), static=(2,)),
    D + "linear_recurrence_nth": Sample(lambda key: (*_rec(key), 12), static=(2,), rtol=1e-5),
    D + "companion_matrix": Sample(lambda key: (jax.random.normal(key, (3,)),)),
    D + "heapify": Sample(lambda key: (jax.random.normal(key, (7,)), 9), static=(1,)),
    D + "heap_push": Sample(lambda key: (_heap(key), jax.random.normal(key, ()))),
    D + "heap_pop": Sample(lambda key: (_heap(key),)),
    D + "heap_sort": Sample(lambda key: (jax.random.normal(key, (7,)),)),
    D + "heap_is_valid": Sample(lambda key: (_heap(key),)),
    D + "evaluate": Sample(lambda key: (EXPR, {"x": jax.random.normal(key, (5,))}), static=(0,), argnum=1),
}
