"""Sample inputs for chapter 2 (linalg): see tests/roadmap_samples/__init__.py."""
import jax
import jax.numpy as jnp

from tests.roadmap_samples import Sample


def _vec(n=4):
    return lambda key: (jax.random.normal(key, (n,)),)


def _vecs(n=4, k=2):
    return lambda key: tuple(jax.random.normal(key, (k, n)))


def _mat(shape=(4, 4)):
    return lambda key: (jax.random.normal(key, shape),)


def _well(key, n=4):
    # diagonally dominant: invertible with a margin, so pivoting choices are stable across the samples
    return jax.random.normal(key, (n, n)) + 4 * jnp.eye(n)


def _sym(key, n=4):
    a = jax.random.normal(key, (n, n))
    return a + a.T + jnp.diag(3.0 * jnp.arange(n, dtype=a.dtype))   # well-separated eigenvalues


def _mat_vec(key, shape=(5, 3)):
    ka, kv = jax.random.split(key)
    return jax.random.normal(ka, shape), jax.random.normal(kv, (shape[0],))


def _system(key):
    ka, kb = jax.random.split(key)
    return _well(ka), jax.random.normal(kb, (4,))


def _triangular(key):
    ka, kb = jax.random.split(key)
    return jnp.tril(_well(ka)), jax.random.normal(kb, (4,))


SAMPLES = {
    "fungpt.linalg.vector_norm": Sample(_vec()),
    "fungpt.linalg.angle": Sample(_vecs()),
    "fungpt.linalg.project_onto_vector": Sample(_vecs()),
    "fungpt.linalg.in_span": Sample(_mat_vec),
    "fungpt.linalg.linearly_independent": Sample(_mat((5, 3))),
    "fungpt.linalg.coordinates": Sample(_mat_vec),
    "fungpt.linalg.dot": Sample(_vecs()),
    "fungpt.linalg.cross": Sample(_vecs(3)),
    "fungpt.linalg.triple_product": Sample(_vecs(3, 3)),
    "fungpt.linalg.matmul": Sample(lambda key: (jax.random.normal(key, (3, 4)), jax.random.normal(key, (4, 2)))),
    "fungpt.linalg.inverse": Sample(lambda key: (_well(key),)),
    "fungpt.linalg.transpose": Sample(_mat((3, 4))),
    "fungpt.linalg.rank": Sample(_mat((5, 3))),
    "fungpt.linalg.rref": Sample(lambda key: (_well(key),)),
    "fungpt.linalg.det": Sample(lambda key: (_well(key),)),
    "fungpt.linalg.slogdet": Sample(lambda key: (_well(key),)),
    "fungpt.linalg.trace": Sample(_mat()),
    "fungpt.linalg.gaussian_elimination": Sample(_system),
    "fungpt.linalg.solve": Sample(_system),
    "fungpt.numerics.lu_factor": Sample(lambda key: (_well(key),)),
    "fungpt.numerics.solve_triangular": Sample(_triangular),
    "fungpt.linalg.power_iteration": Sample(lambda key: (_sym(key), jnp.ones(4), 60), static=(2,)),
    "fungpt.linalg.inverse_iteration": Sample(lambda key: (_sym(key), 0.3, jnp.ones(4)), static=(1,)),
    "fungpt.linalg.eigh": Sample(lambda key: (_sym(key),)),
    "fungpt.linalg.eigvalsh": Sample(lambda key: (_sym(key),)),
    "fungpt.linalg.hessenberg": Sample(lambda key: (_well(key),)),
    "fungpt.linalg.svd": Sample(_mat((5, 3))),
    "fungpt.linalg.matrix_norm": Sample(_mat((5, 3))),
    "fungpt.linalg.project_onto_subspace": Sample(_mat_vec),
    "fungpt.linalg.lstsq": Sample(_mat_vec),
    "fungpt.linalg.gram_schmidt": Sample(_mat((5, 3))),
    "fungpt.linalg.orthogonality_loss": Sample(_mat((5, 3))),
}
