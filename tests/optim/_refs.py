"""Shared references for the optimizer tests: the papers' update equations in float64 numpy, one leaf
at a time, a pytree with matrix, vector and scalar leaves, and a strongly convex quadratic."""
import jax
import jax.numpy as jnp
import numpy as np

from fungpt import optim

DTYPES = [np.float32, np.float64]


def tree(rng, dtype):
    # A matrix, a vector and a scalar leaf: masks and per-leaf rules see all three.
    return {
        "w": rng.standard_normal((3, 4)).astype(dtype),
        "h": [{"b": rng.standard_normal(4).astype(dtype)}],
        "s": np.asarray(rng.standard_normal(), dtype),
    }


def ref_sgd(p, gs, lr=0.1, mu=0.0, nesterov=False):
    b, out = np.zeros_like(p), []
    for g in gs:
        b = mu * b + g
        out.append(-lr * ((g + mu * b) if nesterov else (b if mu else g)))
    return out


def ref_adagrad(p, gs, lr=0.1, eps=1e-10):
    G, out = np.zeros_like(p), []
    for g in gs:
        G = G + g * g
        out.append(-lr * g / (np.sqrt(G) + eps))
    return out


def ref_rmsprop(p, gs, lr=0.01, rho=0.9, eps=1e-8, mu=0.0, centered=False):
    v, m, b, out = np.zeros_like(p), np.zeros_like(p), np.zeros_like(p), []
    for g in gs:
        v = rho * v + (1 - rho) * g * g
        m = rho * m + (1 - rho) * g
        denom = np.sqrt(v - m * m if centered else v) + eps
        b = mu * b + g / denom
        out.append(-lr * (b if mu else g / denom))
    return out


def ref_adamw(p, gs, lr=0.01, b1=0.9, b2=0.999, eps=1e-8, wd=0.0):
    # Kingma & Ba (2015) Algorithm 1; Loshchilov & Hutter (2019) Algorithm 2 with α = 1, η_t = lr.
    m, v, out = np.zeros_like(p), np.zeros_like(p), []
    for t, g in enumerate(gs, start=1):
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        m_hat, v_hat = m / (1 - b1**t), v / (1 - b2**t)
        u = -lr * (m_hat / (np.sqrt(v_hat) + eps) + wd * p)
        out.append(u)
        p = p + u
    return out


def ref_lion(p, gs, lr=0.01, b1=0.9, b2=0.99, wd=0.0):
    # Chen et al. (2023) Algorithm 2.
    m, out = np.zeros_like(p), []
    for g in gs:
        c = b1 * m + (1 - b1) * g
        u = -lr * (np.sign(c) + wd * p)
        m = b2 * m + (1 - b2) * g
        out.append(u)
        p = p + u
    return out


def _quadratic():
    rng = np.random.default_rng(2)
    Q = np.linalg.qr(rng.standard_normal((5, 5)))[0]
    A = Q @ np.diag(np.linspace(1.0, 10.0, 5)) @ Q.T
    x_star = rng.standard_normal(5)
    return jnp.asarray(A), jnp.asarray(x_star)


A_Q, X_STAR = _quadratic()


def quad_loss(params):
    d = params["x"] - X_STAR
    return 0.5 * d @ A_Q @ d


def run(opt, loss, params, steps, grad_fn):
    """`steps` updates of `opt` on `loss` as one `lax.scan`; returns the final params."""
    def body(carry, _):
        p, s = carry
        u, s = opt.update(grad_fn(loss)(p), s, p)
        return (optim.apply_updates(p, u), s), None

    (p, _), _ = jax.lax.scan(body, (params, opt.init(params)), None, length=steps)
    return p
