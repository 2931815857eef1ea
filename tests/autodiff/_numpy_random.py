"""Random tangents and cotangents from numpy instead of jax.random, for the rule tests.

Each new shape and dtype costs jax.random one XLA compile (~0.3 s of CPU); the rule suites draw
dozens of shapes. The draws stay deterministic per key; the oracle's checks are unchanged."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import tree_util

from tests.autodiff import oracle


def numpy_random_like(key, tree):
    rng = np.random.default_rng(np.asarray(jax.random.key_data(key)).ravel().tolist())
    leaves, treedef = tree_util.tree_flatten(tree)
    out = []
    for x in leaves:
        shape, dtype = np.shape(x), np.dtype(jnp.asarray(x).dtype)
        if jnp.issubdtype(dtype, jnp.complexfloating):
            out.append(jnp.asarray(rng.normal(size=shape) + 1j * rng.normal(size=shape), dtype))
        elif jnp.issubdtype(dtype, jnp.inexact):
            out.append(jnp.asarray(rng.normal(size=shape), dtype))
        else:
            out.append(np.zeros(shape, jax.dtypes.float0))
    return tree_util.tree_unflatten(treedef, out)


@pytest.fixture(autouse=True)
def numpy_random(monkeypatch):
    monkeypatch.setattr(oracle, "_random_like", numpy_random_like)
