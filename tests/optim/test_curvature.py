"""fungpt.optim.curvature: HVPs against jax.hessian, power iteration and Lanczos against numpy's
eigvalsh, Lipschitz bounds against numpy's SVD."""
import jax
import jax.flatten_util
import jax.numpy as jnp
import numpy as np
import pytest

from fungpt import optim
from tests.helpers import assert_trees_close, close


def test_spectral_norm_and_mlp_lipschitz_bound(key):
    rng = np.random.default_rng(5)
    ws = [jnp.asarray(rng.standard_normal(shape)) for shape in ((6, 3), (4, 6), (2, 4))]

    def mlp(x):
        return ws[2] @ jnp.tanh(ws[1] @ jnp.tanh(ws[0] @ x))

    @jax.jit
    def run(ws, k, xs):
        lower = optim.lipschitz_lower_bound(mlp, xs)
        # For a linear map the sampled bound is ‖W‖₂ exactly.
        lin = optim.lipschitz_lower_bound(lambda x: ws[0] @ x, xs[:2])
        return optim.mlp_lipschitz_bound(ws, k, iters=300), lower, lin

    bound, lower, lin = run(ws, key, jnp.asarray(rng.standard_normal((64, 3)) * 0.3))
    # The bound is the product of spectral norms; numpy's SVD gives each one independently.
    close(float(bound), np.prod([np.linalg.norm(np.asarray(w), 2) for w in ws]), rtol=1e-8, atol=0)
    assert 0 < float(lower) <= float(bound)
    close(float(lin), np.linalg.norm(np.asarray(ws[0]), 2), rtol=1e-10, atol=0)
    with pytest.raises(ValueError, match="matrix"):
        optim.spectral_norm(jnp.ones(3), key)


def tiny_mlp_loss(params):
    x = jnp.linspace(-1.0, 1.0, 6)[:, None]
    h = jnp.tanh(x @ params["w1"] + params["b1"][None, :])
    return jnp.mean((h @ params["w2"] - jnp.sin(3 * x)) ** 2)


def _tiny_params(seed):
    rng = np.random.default_rng(seed)
    return {k: jnp.asarray(rng.standard_normal(shape)) for k, shape in (("w1", (1, 4)), ("b1", (4,)), ("w2", (4, 1)))}


def test_hvp_matches_dense_hessian_on_a_pytree():
    params, v = _tiny_params(0), _tiny_params(1)
    got = jax.jit(lambda p, v: optim.hvp(tiny_mlp_loss, p, v))(params, v)
    flat, unravel = jax.flatten_util.ravel_pytree(params)
    H = jax.jit(jax.hessian(lambda z: tiny_mlp_loss(unravel(z))))(flat)
    want = unravel(H @ jax.flatten_util.ravel_pytree(v)[0])
    assert_trees_close(got, want, rtol=1e-10, atol=1e-12)


def test_top_eigenvalue_power_iteration_and_lanczos(key):
    params = _tiny_params(2)
    flat, unravel = jax.flatten_util.ravel_pytree(params)
    eigs = np.linalg.eigvalsh(np.asarray(jax.jit(jax.hessian(lambda z: tiny_mlp_loss(unravel(z))))(flat)))
    top = eigs[np.argmax(np.abs(eigs))]

    @jax.jit
    def run(params, key):
        return (optim.hessian_top_eigenvalue(tiny_mlp_loss, params, key, iters=300),
                optim.hessian_eigenvalues_lanczos(tiny_mlp_loss, params, key, k=flat.size))

    power, ritz = run(params, key)
    close(float(power), top, rtol=1e-6, atol=0)
    close(np.asarray(ritz), eigs, rtol=1e-7, atol=1e-9)
