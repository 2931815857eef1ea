"""Higher-order primitives: nested jit, custom_jvp / custom_vjp (the user's rules are honoured),
cond / switch, scan, fori_loop, checkpoint, while, closed-over constants."""
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

import fungpt
from tests.autodiff.oracle import assert_trees_close, check_all, check_jvp, check_vjp

DTYPES = [np.float32, np.float64]


def _x(key, dtype, shape=(4,)):
    return jax.random.normal(key, shape, dtype)


@jax.custom_jvp
def deliberately_odd(x):
    return jnp.sin(x)


@deliberately_odd.defjvp
def _odd_jvp(primals, tangents):
    # Not sin's true derivative: a custom rule must win over differentiating the primal.
    (x,), (t,) = primals, tangents
    return jnp.sin(x), 2.0 * jnp.cos(x) * t + x * t


@jax.custom_vjp
def clip_gradient(x, y):
    return x * y


def _cg_fwd(x, y):
    return x * y, (x, y)


def _cg_bwd(res, g):
    x, y = res
    return jnp.clip(g * y, -0.1, 0.1), g * x * 3.0


clip_gradient.defvjp(_cg_fwd, _cg_bwd)


@functools.partial(jax.custom_jvp, nondiff_argnums=(1,))
def scaled(x, k):
    return x * k


@scaled.defjvp
def _scaled_jvp(k, primals, tangents):
    return scaled(primals[0], k), tangents[0] * (k + 1)


@jax.custom_jvp
def symbolic(x, y):
    return x * y


@symbolic.defjvp
def _symbolic_jvp(primals, tangents):
    (x, y), (tx, ty) = primals, tangents
    return x * y, tx * y + x * ty


def rnn(w, xs, h0):
    def step(h, x):
        h = jnp.tanh(w @ h + x)
        return h, jnp.sum(h ** 2)
    h, ys = lax.scan(step, h0, xs)
    return jnp.sum(h) + jnp.sum(ys)


SPECS = [
    ("nested_jit", lambda x: jax.jit(lambda y: jax.jit(jnp.sin)(y) * y)(x) ** 2),
    ("custom_jvp_user_rule", lambda x: deliberately_odd(x) * x),
    ("custom_jvp_nondiff", lambda x: scaled(x, 3.0) ** 2),
    ("custom_jvp_zero_tangent", lambda x: symbolic(x, jnp.ones_like(x)) ** 2),
    ("jax_nn", lambda x: jax.nn.relu(x) + jax.nn.softplus(x) + jax.nn.gelu(x) + jax.nn.silu(x)
     + jax.nn.log_softmax(x)),
    ("cond", lambda x: lax.cond(jnp.sum(x) > 0, lambda v: jnp.sin(v) * 2, lambda v: jnp.cos(v) ** 2, x)),
    ("cond_false", lambda x: lax.cond(jnp.sum(x) > 1e9, lambda v: jnp.sin(v) * 2, lambda v: jnp.cos(v) ** 2, x)),
    ("switch", lambda x: lax.switch(jnp.int32(2), [jnp.sin, jnp.cos, lambda v: v ** 3], x)),
    ("cond_closure", lambda x: lax.cond(x[0] > 0, lambda: x * 2, lambda: x * x)),
    ("scan_cumulative", lambda x: lax.scan(lambda c, v: (c * v + 1, c * 2), jnp.ones((), x.dtype), x)[1]),
    ("scan_reverse", lambda x: lax.scan(lambda c, v: (jnp.sin(c) + v, c * v), x[0], x, reverse=True)[1]),
    ("scan_consts", lambda x: lax.scan(lambda c, v: (c + jnp.sum(x) * v, c), jnp.zeros((), x.dtype), x)[0]),
    ("scan_int_counter", lambda x: lax.scan(lambda c, v: ((c[0] + 1, c[1] * v + c[0].astype(v.dtype)), c[1]),
                                            (jnp.int32(0), jnp.ones((), x.dtype)), x)[1]),
    ("nested_scan", lambda x: lax.scan(lambda c, v: (lax.scan(lambda d, u: (d * u + c, d), c, x)[0] + v, c),
                                       x[1], x)[1]),
    ("fori_static", lambda x: lax.fori_loop(0, 3, lambda i, c: jnp.sin(c) * x, x)),
    ("checkpoint", lambda x: jax.checkpoint(lambda v: jnp.sin(jnp.sin(v)) * v)(x) ** 2),
    ("checkpoint_policy", lambda x: jax.checkpoint(lambda v: jnp.tanh(v @ jnp.ones((4, 4), v.dtype)),
                                                   policy=jax.checkpoint_policies.dots_saveable)(x) ** 2),
    ("closed_over_constant", lambda x: x * jnp.asarray(np.arange(4.0), x.dtype) + np.float32(2).astype(x.dtype)),
]


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("name,f", SPECS, ids=[s[0] for s in SPECS])
def test_control(name, f, dtype, key):
    # A custom rule that is deliberately not the derivative: finite differences are no oracle there.
    check_all(f, (_x(key, dtype),), jax.random.fold_in(key, 1),
              fd=name not in ("custom_jvp_user_rule", "custom_jvp_nondiff"))


def test_custom_vjp_uses_users_bwd(key):
    x, y = _x(key, np.float64), _x(jax.random.fold_in(key, 1), np.float64)
    f = lambda x, y: jnp.sum(clip_gradient(x, y) * 5.0)
    assert_trees_close(fungpt.grad(f, argnums=(0, 1))(x, y), jax.grad(f, argnums=(0, 1))(x, y), 1e-12)
    check_vjp(lambda x: clip_gradient(x, y) ** 2, (x,), key)


def test_custom_vjp_in_scan_and_under_jit(key):
    x = _x(key, np.float64)
    f = lambda x: lax.scan(lambda c, v: (clip_gradient(c, v), c), jnp.ones((), x.dtype), x)[1]
    check_vjp(f, (x,), key)
    g = lambda x: jnp.sum(f(x))
    assert_trees_close(jax.jit(fungpt.grad(g))(x), jax.grad(g)(x), 1e-12)


def test_rnn_scan_with_pytrees(key):
    k1, k2, k3 = jax.random.split(key, 3)
    w, xs, h0 = _x(k1, np.float64, (3, 3)) * 0.5, _x(k2, np.float64, (5, 3)), _x(k3, np.float64, (3,))
    check_all(rnn, (w, xs, h0), key)
    assert_trees_close(fungpt.hessian(rnn)(w, xs, h0), jax.hessian(rnn)(w, xs, h0), 1e-9)
    # grad of grad through scan (the backward scan is differentiated in turn)
    g = lambda w: jnp.sum(fungpt.grad(rnn)(w, xs, h0) ** 2)
    assert_trees_close(fungpt.grad(g)(w), jax.grad(lambda w: jnp.sum(jax.grad(rnn)(w, xs, h0) ** 2))(w), 1e-9)


def test_while_loop_forward_works_reverse_raises(key):
    x = _x(key, np.float64)

    def f(x):
        return lax.while_loop(lambda c: c[0] < 4, lambda c: (c[0] + 1, jnp.sin(c[1]) * x), (0, x))[1]

    check_jvp(f, (x,), key)
    with pytest.raises(ValueError, match=r"Reverse-mode differentiation does not work for lax\.while_loop"):
        fungpt.grad(lambda x: jnp.sum(f(x)))(x)
    with pytest.raises(ValueError, match=r"Reverse-mode differentiation does not work for lax\.while_loop"):
        jax.grad(lambda x: jnp.sum(f(x)))(x)  # the same contract as JAX


def test_fori_loop_dynamic_bounds_forward_only(key):
    x = _x(key, np.float64)
    f = lambda x, n: lax.fori_loop(0, n, lambda i, c: c * x, x)
    check_jvp(lambda x: f(x, jnp.int32(3)), (x,), key)


def test_checkpoint_recomputes_in_backward_sweep(key):
    x = _x(key, np.float32, (8,))
    f = lambda x: jnp.sum(jax.checkpoint(lambda v: jnp.sin(jnp.exp(v)))(x))
    # The backward program evaluates exp again: count the exps in the jaxpr of our gradient.
    jaxpr = jax.make_jaxpr(fungpt.grad(f))(x)
    text = str(jaxpr)
    assert text.count("exp ") + text.count("exp[") >= 2, text
    assert_trees_close(fungpt.grad(f)(x), jax.grad(f)(x), 1e-6)


def _gelu_scan(w, xs):
    def body(c, x):
        h = x @ w  # the one value the backward loop needs: every residual below is elementwise in h
        y = 0.5 * h * (1 + jnp.tanh(0.8 * (h + 0.044715 * h ** 3)))
        return c + jnp.sum(jnp.sin(y)), None
    return lax.scan(body, jnp.zeros((), w.dtype), xs)[0]


@pytest.mark.parametrize("remat", [True, False])
def test_scan_recomputes_elementwise_residuals(remat, key, monkeypatch):
    from fungpt.autodiff.rules import control
    monkeypatch.setattr(control, "_REMAT_SCAN", remat)
    k1, k2 = jax.random.split(key)
    w, xs = _x(k1, np.float64, (3, 4)), _x(k2, np.float64, (6, 5, 3))
    assert_trees_close(fungpt.grad(_gelu_scan, argnums=(0, 1))(w, xs),
                       jax.grad(_gelu_scan, argnums=(0, 1))(w, xs), 1e-12)
    # Values the scan stacks per step: with the policy only h = x @ w (6 steps of (5, 4)); without it,
    # h, tanh(...), y and more. xs and w are kept as they are (not stacked again).
    stacked = [r for r in fungpt.autodiff.graph(_gelu_scan, w, xs).residuals if r.shape == (6, 5, 4)]
    assert (len(stacked) == 1) if remat else (len(stacked) > 1), stacked
