"""Curvature without dense Hessians, and Lipschitz constants.

Hessian-vector products are forward-over-reverse with fungpt's own autodiff,
``Hv = d/dε ∇f(x + εv)|₀ = jvp(grad f, x, v)``: one gradient's cost, O(n) memory, on any pytree.
"""
import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

import fungpt
from fungpt.calculus import hessian_vector_product as hvp  # one HVP, owned by chapter 3
from fungpt.linalg import power_iteration, spectral_norm  # owned by chapter 2

__all__ = ["hessian_eigenvalues_lanczos", "hessian_top_eigenvalue", "hvp", "lanczos", "lipschitz_lower_bound",
           "mlp_lipschitz_bound", "power_iteration", "spectral_norm"]


def _flat(f, x):
    flat, unravel = ravel_pytree(x)
    return flat, lambda v: ravel_pytree(hvp(f, x, unravel(v)))[0]


def _unit(key, n, dtype):
    v = jax.random.normal(key, (n,), dtype)
    return v / jnp.linalg.norm(v)


def hessian_top_eigenvalue(f, x, key, iters: int = 100):
    """Largest-magnitude eigenvalue of ∇²f(x) ("sharpness") by power iteration on `hvp`; x a pytree."""
    flat, mv = _flat(f, x)
    return power_iteration(mv, _unit(key, flat.size, flat.dtype), iters).value


def lanczos(matvec, v0: jax.Array, k: int):
    """k steps of Lanczos with full reorthogonalisation: ``A V_k ≈ V_k T_k``, T tridiagonal.

    Returns the Ritz values ``eigvalsh(T_k)`` (k,), ascending: the extremes converge to A's extreme
    eigenvalues much faster than power iteration. k matvecs plus O(k²n) for reorthogonalisation.
    """
    n = v0.shape[0]
    if not 1 <= k <= n:
        raise ValueError(f"lanczos: need 1 <= k <= n={n}, got k={k}")
    V = jnp.zeros((k, n), v0.dtype).at[0].set(v0 / jnp.linalg.norm(v0))
    alpha, beta = jnp.zeros(k, v0.dtype), jnp.zeros(k, v0.dtype)

    def step(i, carry):
        V, alpha, beta = carry
        w = matvec(V[i])
        a = jnp.vdot(w, V[i])
        # Gram-Schmidt against every previous vector (twice; rows not yet filled are zero): plain
        # 3-term Lanczos loses orthogonality in floating point and repeats eigenvalues.
        for _ in range(2):
            w = w - V.T @ (V @ w)
        b = jnp.linalg.norm(w)
        tiny = jnp.finfo(v0.dtype).tiny
        V = V.at[jnp.minimum(i + 1, k - 1)].set(jnp.where(i + 1 < k, w / jnp.maximum(b, tiny), V[k - 1]))
        return V, alpha.at[i].set(a), beta.at[i].set(b)

    _, alpha, beta = jax.lax.fori_loop(0, k, step, (V, alpha, beta))
    off = beta[: k - 1]
    T = jnp.diag(alpha) + jnp.diag(off, 1) + jnp.diag(off, -1)
    return jnp.linalg.eigvalsh(T)


def hessian_eigenvalues_lanczos(f, x, key, k: int = 20):
    """Ritz values (k,) of ∇²f(x) by `lanczos` on `hvp`: ``[-1]`` estimates λ_max, ``[0]`` λ_min."""
    flat, mv = _flat(f, x)
    return lanczos(mv, _unit(key, flat.size, flat.dtype), min(k, flat.size))


# --- Lipschitz continuity ----------------------------------------------------------------------


def mlp_lipschitz_bound(weights, key, iters: int = 100) -> jax.Array:
    """Upper bound ``Π_l ‖W_l‖₂`` on the Lipschitz constant (in ‖·‖₂) of an MLP
    ``x ↦ W_L σ(... σ(W_1 x + b_1) ...) + b_L`` with 1-Lipschitz σ (ReLU, tanh). weights: [(m, n), ...].
    """
    keys = jax.random.split(key, len(weights))
    return jnp.prod(jnp.stack([spectral_norm(w, k, iters) for w, k in zip(weights, keys, strict=True)]))


def lipschitz_lower_bound(f, xs: jax.Array) -> jax.Array:
    """``max_i ‖J_f(x_i)‖₂`` over samples xs (N, n): every value is ≤ the true Lipschitz constant.

    For scalar f this is the largest gradient norm; the Jacobian comes from `fungpt.jacrev`.
    """

    def local(x):
        J = fungpt.jacrev(f)(x).reshape(-1, x.size)
        return jnp.linalg.norm(J, 2)

    return jnp.max(jax.vmap(local)(xs))
