"""What jnp.linalg lowers to (lu, triangular_solve, custom_linear_solve, cholesky, qr, eigh, svd and
det/slogdet's custom_jvp rules) against jax.vjp / jax.jvp, the transpose identity and float64 central
differences. Samplers stay inside each function's domain: SPD matrices for cholesky, well-separated
eigenvalues for eigh, distinct singular values for svd, well-conditioned matrices for solves."""
import zlib

import jax
import jax.numpy as jnp
import jax.scipy.linalg as jsl
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jax import lax

import fungpt
from tests.autodiff._numpy_random import numpy_random  # noqa: F401 (autouse fixture)
from tests.autodiff.oracle import (
    TOL64,
    assert_trees_close,
    check_all,
    check_finite_differences,
    check_jvp,
    check_transpose_identity,
    check_vjp,
)

DTYPES = [np.float32, np.float64]


# Samplers: (rng, batch shape) -> float64 numpy array.
def normal(*shape):
    return lambda rng: rng.normal(size=shape)


def well_conditioned(n, *batch):
    return lambda rng: rng.normal(size=(*batch, n, n)) + 3 * np.eye(n)


def spd(n, *batch):
    def sample(rng):
        a = rng.normal(size=(*batch, n, n))
        return a @ np.swapaxes(a, -1, -2) + n * np.eye(n)
    return sample


def orthogonal(rng, n):
    return np.linalg.qr(rng.normal(size=(n, n)))[0]


def symmetric_spread(n):  # eigenvalues 1, 2.5, 4, ...: gaps well away from zero
    def sample(rng):
        q = orthogonal(rng, n)
        return q @ np.diag(1 + 1.5 * np.arange(n)) @ q.T
    return sample


def distinct_singular(m, n):  # singular values 3, 2, 1, ...
    def sample(rng):
        k = min(m, n)
        return orthogonal(rng, m)[:, :k] @ np.diag(np.arange(k, 0, -1.0)) @ orthogonal(rng, n)[:k, :]
    return sample


def complex_of(sample):
    return lambda rng: sample(rng) + 1j * sample(rng)


def _sign_fixed(wv):
    # Each eigenvector times the sign of its first entry: a smooth function of A for distinct eigenvalues.
    w, v = wv
    return w, v * jnp.sign(v[..., :1, :]) * jnp.arange(1.0, 1.0 + v.shape[-1], dtype=v.dtype)[None, :]


def _lower(a):
    return jnp.tril(a) + 3 * jnp.eye(a.shape[-1], dtype=a.dtype)


# (name, function, samplers, central differences apply)
SPECS = [
    ("solve_matrix", jnp.linalg.solve, [well_conditioned(3), normal(3, 2)], True),
    ("inv", jnp.linalg.inv, [well_conditioned(3)], True),
    ("det_3x3", jnp.linalg.det, [well_conditioned(3)], True),  # JAX expands 2x2 and 3x3 by hand
    ("det_lu", jnp.linalg.det, [well_conditioned(4)], True),   # larger ones go through lu
    ("slogdet", lambda a: jnp.linalg.slogdet(a)[1], [well_conditioned(4)], True),
    ("cholesky", jnp.linalg.cholesky, [spd(3)], True),
    ("cholesky_batched", jnp.linalg.cholesky, [spd(3, 2)], True),
    ("cho_solve", lambda a, b: jsl.cho_solve((jnp.linalg.cholesky(a), True), b), [spd(3), normal(3)], True),
    ("solve_triangular_upper_trans", lambda a, b: jsl.solve_triangular(_lower(a).T, b, lower=False, trans=1),
     [normal(3, 3), normal(3, 2)], True),
    ("solve_triangular_unit", lambda a, b: jsl.solve_triangular(a, b, lower=True, unit_diagonal=True),
     [normal(3, 3), normal(3)], True),
    ("triangular_solve_right", lambda a, b: lax.linalg.triangular_solve(_lower(a), b, left_side=False, lower=True),
     [normal(3, 3), normal(2, 3)], True),
    ("lu", jsl.lu, [well_conditioned(3)], True),
    ("lu_wide", jsl.lu, [normal(3, 4)], True),
    ("qr_tall", jnp.linalg.qr, [normal(4, 3)], True),
    ("qr_wide", jnp.linalg.qr, [normal(3, 4)], True),
    ("qr_pivoting", lambda a: jsl.qr(a, pivoting=True, mode="economic")[:2], [normal(4, 3)], True),
    ("qr_full_tall", lambda a: jnp.linalg.qr(a, mode="complete"), [normal(5, 3)], True),
    ("qr_full_tall_batched", lambda a: jnp.linalg.qr(a, mode="complete"), [normal(2, 4, 2)], True),
    ("eigvalsh", jnp.linalg.eigvalsh, [symmetric_spread(3)], True),
    # eigenvectors (sign-normalised by a weighted sum so the sign convention cancels), symmetrized or not
    ("eigh_vectors", lambda a: _sign_fixed(jnp.linalg.eigh(a)), [symmetric_spread(4)], True),
    ("eigh_vectors_unsymmetrized", lambda a: _sign_fixed(lax.linalg.eigh(a, symmetrize_input=False)[::-1]),
     [symmetric_spread(4)], False),
    ("svd_tall", lambda a: jnp.linalg.svd(a, full_matrices=False), [distinct_singular(4, 3)], True),
    ("svd_wide", lambda a: jnp.linalg.svd(a, full_matrices=False), [distinct_singular(3, 4)], True),
    ("svdvals", lambda a: jnp.linalg.svd(a, compute_uv=False), [distinct_singular(4, 3)], True),
]

# Complex matrices: JAX's (unconjugated) transpose convention; compared with JAX only.
COMPLEX_SPECS = [
    ("solve", jnp.linalg.solve, [complex_of(well_conditioned(3)), complex_of(normal(3, 2))]),
    ("cholesky", jnp.linalg.cholesky, [lambda rng: (lambda a: a @ a.conj().T + 3 * np.eye(3))(
        complex_of(normal(3, 3))(rng))]),
    ("solve_triangular_conj", lambda a, b: jsl.solve_triangular(_lower(a), b, lower=True, trans="C"),
     [complex_of(normal(3, 3)), complex_of(normal(3, 2))]),
    ("lu", lambda a: jsl.lu_factor(a)[0], [complex_of(well_conditioned(3))]),
    ("eigvalsh", jnp.linalg.eigvalsh, [lambda rng: (lambda a: a + a.conj().T)(complex_of(normal(3, 3))(rng))]),
    ("svdvals", lambda a: jnp.linalg.svd(a, compute_uv=False), [complex_of(normal(3, 3))]),
]


def _sample(name, dtype, samplers):
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    return tuple(jnp.asarray(s(rng), dtype) for s in samplers)

# The default run checks these (both dtypes); the rest of the table runs with `-m slow` (make test-all).
CORE = {"solve_matrix", "cholesky", "solve_triangular_upper_trans", "lu", "qr_tall", "eigvalsh",
        "svd_tall", "qr_full_tall", "eigh_vectors", "eigh_vectors_unsymmetrized"}


def _params(specs, core):
    return [pytest.param(*s, id=s[0], marks=() if s[0] in core else pytest.mark.slow) for s in specs]


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("name,f,samplers,fd", _params(SPECS, CORE))
def test_linalg(name, f, samplers, fd, dtype, key):
    check_all(f, _sample(name, dtype, samplers), key, fd=fd)


@pytest.mark.parametrize("dtype", [np.complex128], ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("name,f,samplers", _params(COMPLEX_SPECS, {"solve", "qr"}))
def test_linalg_complex(name, f, samplers, dtype, key):
    check_all(f, _sample(name, dtype, samplers), key)


@pytest.mark.slow
def test_pivoted_wide_qr_matches_finite_differences(key):
    # JAX 0.10.2's JVP for a wide QR with column pivoting uses the unpivoted trailing columns of X
    # (R2 = Q^H X2 needs X P); ours uses X P. Central differences are the referee here.
    f = lambda a: jsl.qr(a, pivoting=True, mode="economic")[1]
    (a,) = _sample("qr_piv_wide", np.float64, [normal(3, 4)])
    check_transpose_identity(f, (a,), key)
    check_finite_differences(f, (a,), key)


def test_unsupported_cases_raise_clear_errors():
    a = jnp.asarray(np.random.default_rng(0).normal(size=(4, 3)))
    with pytest.raises(NotImplementedError, match="full_matrices"):
        fungpt.grad(lambda a: jnp.sum(jnp.linalg.svd(a)[1]))(a)


def test_eigh_vectors_unsymmetrized_input_catches_a_transposed_cotangent(key):
    # With symmetrize_input=False the rule sees A itself: d/dA of sum(C * V) for a nonsymmetric
    # perturbation direction tells V^T C apart from C^T V (jnp.linalg.eigh symmetrizes, hiding it).
    (a,) = _sample("eigh_ct", np.float64, [symmetric_spread(4)])
    c = jax.random.normal(key, (4, 4), jnp.float64)
    f = lambda a: jnp.sum(c * _sign_fixed(lax.linalg.eigh(a, symmetrize_input=False)[::-1])[1])
    assert_trees_close(fungpt.grad(f)(a), jax.grad(f)(a), TOL64, "grad")
    t = jax.random.normal(jax.random.fold_in(key, 1), (4, 4), jnp.float64)
    assert_trees_close(fungpt.jvp(f, (a,), (t,))[1], jax.jvp(f, (a,), (t,))[1], TOL64, "jvp")


def test_eig_eigenvectors_under_enable_eigvec_derivs(key):
    # JAX differentiates non-symmetric eigenvectors only when eig opts in; LAPACK's normalisation (unit
    # norm, real largest entry) makes them a function of A. Against jax.vjp/jvp, and central differences.
    a = jnp.asarray(np.random.default_rng(3).normal(size=(3, 3))) + jnp.diag(jnp.arange(1.0, 4.0) * 2)
    for left in (False, True):
        f = lambda a, left=left: [jnp.real(o) for o in lax.linalg.eig(
            a, compute_left_eigenvectors=left, enable_eigvec_derivs=True)] + [
            jnp.imag(o) for o in lax.linalg.eig(a, compute_left_eigenvectors=left, enable_eigvec_derivs=True)]
        check_all(f, (a,), key)
    with pytest.raises(NotImplementedError, match="enable_eigvec_derivs"):
        fungpt.grad(lambda a: jnp.sum(jnp.abs(jnp.linalg.eig(a)[1])))(a)


def _spd_matvec(x):
    m = jnp.diag(x + 3.0) + 0.1 * jnp.outer(x, x)
    return lambda v: m @ v


@pytest.mark.parametrize("maxiter", [2, 50])
def test_cg_differentiates_implicitly_like_jax(maxiter, key):
    # A while loop runs cg; reverse mode through it would raise. JAX transposes the solve (implicit
    # differentiation), which differs from unrolling when cg stops early (maxiter=2): so do we.
    x = jnp.linspace(0.5, 1.5, 4)
    f = lambda x: jax.scipy.sparse.linalg.cg(_spd_matvec(x), jnp.sin(x), maxiter=maxiter)[0]
    if maxiter == 50:
        check_all(f, (x,), key)
    else:  # an inexact solve: its JVP and VJP are not exact transposes of each other (in JAX neither)
        check_vjp(f, (x,), key)
        check_jvp(f, (x,), key)


def test_custom_root_differentiates_implicitly_like_jax(key):
    # sqrt(a) by Newton's method in a while loop; the derivative comes from the implicit function theorem.
    def newton(g, x0):
        step = lambda x: x - g(x) / jax.grad(g)(x)
        return lax.while_loop(lambda c: c[1] < 30, lambda c: (step(c[0]), c[1] + 1), (x0, 0))[0]

    def sqrt(a):
        g = lambda x: x ** 2 - a
        return lax.custom_root(g, jnp.ones_like(a), newton, lambda g, y: y / (2 * jnp.sqrt(a)))

    a = jnp.asarray(2.0)
    check_all(lambda a: sqrt(a) * jnp.sin(a), (a,), key)
    assert_trees_close(fungpt.grad(sqrt)(a), 0.5 / jnp.sqrt(a), TOL64, "d sqrt(a) / da = 1 / (2 sqrt(a))")

def test_jit_and_grad_of_grad():
    rng = np.random.default_rng(1)
    a = jnp.asarray(well_conditioned(3)(rng))
    b = jnp.asarray(rng.normal(size=(3,)))

    def loss(a):
        s = a @ a.T + 3 * jnp.eye(3)
        x = jnp.linalg.solve(a, b)
        return jnp.linalg.slogdet(s)[1] + jnp.sum(jnp.linalg.cholesky(s) ** 2) + x @ x

    np.testing.assert_allclose(jax.jit(fungpt.grad(loss))(a), jax.jit(jax.grad(loss))(a), rtol=1e-10)
    outer = lambda g: lambda a: jnp.sum(jnp.sin(g(loss)(a)))
    np.testing.assert_allclose(jax.jit(fungpt.grad(outer(fungpt.grad)))(a), jax.jit(jax.grad(outer(jax.grad)))(a),
                               rtol=1e-8)
    per_example = jnp.stack([a, a.T + jnp.eye(3)])
    np.testing.assert_allclose(jax.jit(jax.vmap(fungpt.grad(loss)))(per_example),
                               jax.jit(jax.vmap(jax.grad(loss)))(per_example), rtol=1e-10)


@pytest.mark.slow
@settings(max_examples=3, deadline=None)
@given(n=st.integers(1, 4), seed=st.integers(0, 2**16))
def test_property_cholesky_any_size(n, seed):
    a = jnp.asarray(spd(n)(np.random.default_rng(seed)))
    check_all(jnp.linalg.cholesky, (a,), jax.random.key(seed))


def test_eigvals_of_a_general_matrix(key):
    # jnp.linalg.eigvals lowers to the `eig` primitive: eigenvalue derivatives dw = diag(V^-1 dA V), as in
    # JAX; eigenvector derivatives are refused with a clear error (JAX refuses them by default too).
    a = jnp.asarray(np.random.default_rng(2).normal(size=(3, 3))) + 2 * jnp.eye(3)
    check_all(jnp.linalg.eigvals, (a,), key, fd=False)
    with pytest.raises(NotImplementedError, match="eigenvectors"):
        fungpt.grad(lambda a: jnp.sum(jnp.abs(jnp.linalg.eig(a)[1])))(a)
