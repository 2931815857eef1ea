"""Markov chains against numpy matrix powers, scipy.linalg eigenvectors and empirical transition counts."""

import hypothesis.strategies as st
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.linalg
import scipy.optimize
from hypothesis import given, settings

from fungpt import probability as P
from tests.helpers import F32, F64, FORMULA, close

DTYPES = [F32, F64]


TOL = FORMULA  # relative, for exact formulas (f64: summed terms)


Z = 5.0                          # statistical tolerance: 5 standard errors (two-sided p ≈ 6e-7)


def _chain(seed, k=4):
    return np.random.default_rng(seed).dirichlet(np.ones(k) * 0.7, size=k)


_n_step = jax.jit(lambda p0, p, n: (P.n_step(p, n), P.distribution_after(p0, p, n)))


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), n=st.integers(0, 40))
def test_n_step_is_matrix_power(seed, n):
    p = _chain(seed)
    p0 = np.random.default_rng(seed + 1).dirichlet(np.ones(4))
    pn, dist = _n_step(p0, p, n)
    close(pn, np.linalg.matrix_power(p, n), 1e-10, atol=1e-14)
    close(dist, p0 @ np.linalg.matrix_power(p, n), 1e-10, atol=1e-14)
    close(P.n_step(p, int(n)), np.linalg.matrix_power(p, n), 1e-10, atol=1e-14)  # the unrolled path


def test_n_step_gradient_with_fungpt_grad():
    import fungpt

    f = lambda a: P.n_step(jnp.asarray([[1.0, 0.0], [0.5, 0.5]]) + a * jnp.asarray([[-1.0, 1.0], [0.0, 0.0]]), 7)[0, 0]
    close(jax.jit(fungpt.grad(f))(0.1), jax.grad(f)(0.1), 1e-12, 0.0)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_stationary_distribution_eigenvector_and_power_iteration(dtype):
    p = _chain(7, 5)
    w, vl = scipy.linalg.eig(p, left=True, right=False)
    v = np.real(vl[:, np.argmin(np.abs(w - 1))])
    want = v / v.sum()
    pi, (pi_pow, iters) = jax.jit(lambda q: (P.stationary_distribution(q), P.stationary_power(q)))(
        p.astype(dtype))
    assert pi.dtype == dtype
    close(pi, want, 20 * TOL[dtype], 0.0)
    close(pi_pow, want, 100 * TOL[dtype], 0.0)
    assert 0 < int(iters) < 10_000


def test_sample_path_transitions_and_mixing(key):
    p = np.array([[0.9, 0.1, 0.0], [0.2, 0.7, 0.1], [0.1, 0.2, 0.7]])
    path = np.asarray(jax.jit(P.sample_path, static_argnums=3)(key, p, 0, 30_000))
    assert path.shape == (30_001,) and path[0] == 0
    est = np.asarray(P.estimate_transition_matrix(path, 3))
    visits = np.bincount(path[:-1], minlength=3)
    # given the visits, row i's transition counts are multinomial(N_i, P[i]): SE = √(p(1-p)/N_i)
    se = np.sqrt(p * (1 - p) / visits[:, None])
    assert np.all(np.abs(est - p) <= Z * se + 1e-12)
    # worst-start TV distance to π, against a naive numpy loop
    pi, curve, t_mix = jax.jit(lambda q: (P.stationary_distribution(q), P.mixing_curve(q, 30),
                                          P.mixing_time(q, 0.25, 30)))(p)
    pi, curve = np.asarray(pi), np.asarray(curve)
    naive, pt = [], np.eye(3)
    for _ in range(30):
        naive.append(max(0.5 * np.abs(pt[i] - pi).sum() for i in range(3)))
        pt = pt @ p
    close(curve, naive, 1e-10, atol=1e-14)
    assert int(t_mix) == int(np.argmax(np.array(naive) <= 0.25))
    # asymptotic decay rate = second largest |eigenvalue|
    lam2 = sorted(np.abs(np.linalg.eigvals(p)))[-2]
    close(curve[29] / curve[28], lam2, 1e-3, 0.0)
