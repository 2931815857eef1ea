"""Sample inputs for chapter 6 (numerics): see tests/roadmap_samples/__init__.py."""
import jax
import jax.numpy as jnp

from tests.roadmap_samples import Sample


def _vec(n=6):
    return lambda key: (jax.random.normal(key, (n,)),)


def _well(key, n=4):
    return jax.random.normal(key, (n, n)) + 4 * jnp.eye(n)


def _spd(key, n=4):
    a = jax.random.normal(key, (n, n))
    return (a @ a.T + n * jnp.eye(n),)


def _triangular(key):
    ka, kb = jax.random.split(key)
    return jnp.tril(_well(ka)), jax.random.normal(kb, (4,))


def _pair(key, shapes=((5, 6), (6, 3))):
    ka, kb = jax.random.split(key)
    return jax.random.normal(ka, shapes[0]), jax.random.normal(kb, shapes[1])


def _csr(key):
    # a fixed sparsity pattern (so two keys give the same shapes) with random values
    from fungpt import numerics
    pattern = numerics.csr_from_dense(jnp.eye(5) + jnp.eye(5, k=2))
    kd, kx = jax.random.split(key)
    m = numerics.CSR(jax.random.normal(kd, pattern.data.shape), pattern.indices, pattern.indptr, pattern.shape)
    return m, jax.random.normal(kx, (5,))


SAMPLES = {
    "fungpt.numerics.nextafter": Sample(lambda key: (jax.random.normal(key, (4,)), jnp.ones(4))),
    "fungpt.numerics.ulp": Sample(_vec()),
    "fungpt.numerics.relative_error": Sample(lambda key: (jax.random.normal(key, (4,)), jnp.arange(1.0, 5.0))),
    "fungpt.numerics.one_minus_cos_over_x2": Sample(_vec()),
    "fungpt.numerics.naive_sum": Sample(_vec()),
    "fungpt.numerics.pairwise_sum": Sample(_vec()),
    "fungpt.numerics.kahan_sum": Sample(_vec()),
    "fungpt.numerics.finite_difference": Sample(lambda key: (jnp.sin, jax.random.normal(key, (3,)), 1e-4, "central"),
                                                static=(0, 2, 3), argnum=1, rtol=1e-5),
    "fungpt.numerics.lu": Sample(lambda key: (_well(key),)),
    "fungpt.numerics.lu_factor": Sample(lambda key: (_well(key),)),
    "fungpt.numerics.solve_triangular": Sample(_triangular),
    "fungpt.numerics.qr_householder": Sample(lambda key: (jax.random.normal(key, (5, 3)),)),
    "fungpt.numerics.qr_givens": Sample(lambda key: (jax.random.normal(key, (5, 3)),)),
    "fungpt.numerics.cholesky": Sample(_spd),
    "fungpt.numerics.blocked_matmul": Sample(lambda key: (*_pair(key), 4), static=(2,)),
    "fungpt.numerics.multi_dot": Sample(lambda key: (*_pair(key), jax.random.normal(key, (3, 2)))),
    "fungpt.numerics.csr_matvec": Sample(_csr, argnum=1),
    "fungpt.numerics.einsum": Sample(lambda key: ("ij,jk->ik", *_pair(key)), static=(0,), argnum=1),
}
