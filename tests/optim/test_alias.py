"""fungpt.optim.alias: each named optimizer against its paper's update equations in float64 numpy,
convergence to known optima, dtypes, and a jitted train step with both gradient sources."""
import zlib

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import fungpt
from fungpt import optim
from tests.helpers import ALG, assert_trees_close, close
from tests.optim._refs import (
    A_Q,
    DTYPES,
    X_STAR,
    quad_loss,
    ref_adagrad,
    ref_adamw,
    ref_lion,
    ref_rmsprop,
    ref_sgd,
    run,
    tree,
)

STEPS = 4

CASES = {
    "sgd": (lambda: optim.sgd(0.1), lambda p, gs: ref_sgd(p, gs)),
    "momentum": (lambda: optim.sgd(0.1, momentum=0.9), lambda p, gs: ref_sgd(p, gs, mu=0.9)),
    "nesterov": (
        lambda: optim.sgd(0.1, momentum=0.9, nesterov=True),
        lambda p, gs: ref_sgd(p, gs, mu=0.9, nesterov=True),
    ),
    "adagrad": (lambda: optim.adagrad(0.1), lambda p, gs: ref_adagrad(p, gs)),
    "rmsprop": (lambda: optim.rmsprop(0.01), lambda p, gs: ref_rmsprop(p, gs)),
    "rmsprop_centered_momentum": (
        lambda: optim.rmsprop(0.01, momentum=0.5, centered=True),
        lambda p, gs: ref_rmsprop(p, gs, mu=0.5, centered=True),
    ),
    "adam": (lambda: optim.adam(0.01), lambda p, gs: ref_adamw(p, gs)),
    "adamw": (lambda: optim.adamw(0.01, weight_decay=0.1), lambda p, gs: ref_adamw(p, gs, wd=0.1)),
    "lion": (lambda: optim.lion(0.01, weight_decay=0.1), lambda p, gs: ref_lion(p, gs, wd=0.1)),
}


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("name", sorted(CASES))
def test_updates_match_paper_equations(name, dtype):
    make, ref = CASES[name]
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    params = tree(rng, dtype)
    grads = [tree(rng, dtype) for _ in range(STEPS)]
    opt = make()
    p = jax.tree.map(jnp.asarray, params)
    state = opt.init(p)
    got = []
    for g in grads:
        u, state = opt.update(jax.tree.map(jnp.asarray, g), state, p)
        got.append(u)
        p = optim.apply_updates(p, u)
    for i, p0 in enumerate(jax.tree.leaves(params)):
        want = ref(p0.astype(np.float64), [jax.tree.leaves(g)[i].astype(np.float64) for g in grads])
        for t in range(STEPS):
            u = np.asarray(jax.tree.leaves(got[t])[i])
            assert u.dtype == np.dtype(dtype), (name, u.dtype)
            close(u, want[t], rtol=ALG[np.dtype(dtype)], atol=1e-12)


def test_updates_match_paper_equations_under_jit():
    # The eager test above, compiled: all nine optimizers, two steps each, in one program.
    rng = np.random.default_rng(7)
    params = tree(rng, np.float64)
    grads = [tree(rng, np.float64) for _ in range(2)]

    @jax.jit
    def run_all(params, grads):
        out = {}
        for name, (make, _) in CASES.items():
            opt, p, us = make(), params, []
            s = opt.init(p)
            for g in grads:
                u, s = opt.update(g, s, p)
                p = optim.apply_updates(p, u)
                us.append(u)
            out[name] = us
        return out

    got = run_all(jax.tree.map(jnp.asarray, params), jax.tree.map(jnp.asarray, grads))
    for name, (_, ref) in CASES.items():
        for i, p0 in enumerate(jax.tree.leaves(params)):
            want = ref(p0, [jax.tree.leaves(g)[i] for g in grads])
            for t in range(2):
                close(jax.tree.leaves(got[name][t])[i], want[t], rtol=ALG[np.dtype(np.float64)], atol=1e-12)


def test_paper_check_catches_a_planted_error():
    # The comparison above is sharp enough to see a 0.1% error in one hyperparameter.
    rng = np.random.default_rng(8)
    p0, gs = rng.standard_normal(5), [rng.standard_normal(5) for _ in range(3)]
    opt = optim.adam(0.01, b2=0.999 * 1.001 - 0.001)  # β2 off by 0.1% of (1 - β2)
    s, p, got = opt.init(jnp.asarray(p0)), jnp.asarray(p0), []
    for g in gs:
        u, s = opt.update(jnp.asarray(g), s, p)
        p = optim.apply_updates(p, u)
        got.append(np.asarray(u))
    with pytest.raises(AssertionError):
        close(got[-1], ref_adamw(p0, gs)[-1], rtol=ALG[np.dtype(np.float64)])


# --- convergence -------------------------------------------------------------------------------

CONVERGE = {
    "sgd": lambda: optim.sgd(0.15),
    "momentum": lambda: optim.sgd(0.05, momentum=0.8),
    "nesterov": lambda: optim.sgd(0.05, momentum=0.8, nesterov=True),
    "adagrad": lambda: optim.adagrad(1.0),
    "rmsprop": lambda: optim.rmsprop(optim.cosine_decay(0.05, 1500, 2e-4)),
    "adam": lambda: optim.adam(optim.cosine_decay(0.1, 1500, 1e-4)),
    "adamw": lambda: optim.adamw(optim.cosine_decay(0.1, 1500, 1e-4), weight_decay=0.0),
    "lion": lambda: optim.lion(optim.cosine_decay(0.02, 1500)),
}


@pytest.mark.parametrize("name", sorted(CONVERGE))
def test_converges_on_strongly_convex_quadratic(name):
    grad_fn = fungpt.grad if name in ("adam", "sgd") else jax.grad  # both gradient sources
    p = jax.jit(lambda p: run(CONVERGE[name](), quad_loss, p, 1500, grad_fn))({"x": jnp.zeros(5)})
    close(p["x"], X_STAR, rtol=0, atol=1e-4)


def rosenbrock(p):
    x, y = p["xy"][0], p["xy"][1]
    return (1 - x) ** 2 + 100 * (y - x**2) ** 2


ROSEN = {
    "adam": lambda: optim.adam(0.1),
    # Decoupled decay moves the fixed point by O(λ): a small λ stays within the tolerance.
    "adamw": lambda: optim.adamw(0.1, weight_decay=1e-4),
    "rmsprop": lambda: optim.rmsprop(optim.cosine_decay(1e-3, 2000, 1e-3), momentum=0.9),
}


@pytest.mark.parametrize("name", sorted(ROSEN))
def test_reaches_rosenbrock_minimum(name):
    p = jax.jit(lambda p: run(ROSEN[name](), rosenbrock, p, 2000, jax.grad))({"xy": jnp.asarray([-1.2, 1.0])})
    close(p["xy"], [1.0, 1.0], rtol=0, atol=1e-3)


# --- hyperparameters, dtypes, the train step ---------------------------------------------------

@pytest.mark.parametrize(
    "bad",
    [
        lambda: optim.adam(-1e-3),
        lambda: optim.adam(1e-3, b1=1.0),
        lambda: optim.sgd(0.1, nesterov=True),
        lambda: optim.rmsprop(0.1, decay=1.0),
        lambda: optim.lion(0.1, b2=-0.1),
    ],
)
def test_bad_hyperparameters_raise(bad):
    with pytest.raises(ValueError):
        bad()


@pytest.mark.parametrize("name", sorted(CASES))
def test_bf16_params_keep_f32_state_and_zero_grads_give_no_nan(name):
    params = {"w": jnp.ones((2, 3), jnp.bfloat16), "b": jnp.zeros(3, jnp.bfloat16)}
    opt = CASES[name][0]()
    state = opt.init(params)
    for leaf in jax.tree.leaves(state):
        assert leaf.dtype in (np.int32, np.float32), (name, leaf.dtype)
    zeros = jax.tree.map(jnp.zeros_like, params)
    u, state2 = opt.update(zeros, state, params)
    chex.assert_trees_all_equal_structs(state, state2)
    chex.assert_trees_all_equal_dtypes(state, state2)
    chex.assert_trees_all_equal_dtypes(optim.apply_updates(params, u), params)
    assert all(np.isfinite(np.asarray(x, np.float32)).all() for x in jax.tree.leaves((u, state2))), name


def mlp_loss(params, x, y):
    h = jnp.tanh(x @ params["w1"] + params["b1"][None, :])
    return jnp.mean((h @ params["w2"] - y) ** 2)


def test_train_step_jit_fungpt_grad_equals_jax_grad():
    rng = np.random.default_rng(6)
    params = {"w1": jnp.asarray(rng.standard_normal((3, 8))), "b1": jnp.zeros(8),
              "w2": jnp.asarray(rng.standard_normal((8, 1)))}
    x = jnp.asarray(rng.standard_normal((16, 3)))
    y = jnp.sin(x[:, :1])
    opt = optim.chain(optim.clip_by_global_norm(1.0),
                      optim.adamw(optim.warmup_cosine(1e-2, 3, 20, 1e-3), b2=0.99, weight_decay=0.1,
                                  mask=optim.ndim_mask))

    def train(grad_fn):
        traces = []

        @jax.jit
        def step(p, s):
            traces.append(1)  # runs only while tracing
            u, s = opt.update(grad_fn(mlp_loss)(p, x, y), s, p)
            return optim.apply_updates(p, u), s

        p, s = params, opt.init(params)
        for _ in range(4):
            p, s = step(p, s)
        assert len(traces) == 1, "the train step retraced: a state dtype or structure drifted"
        return p, s

    (p_ours, s_ours), (p_jax, s_jax) = train(fungpt.grad), train(jax.grad)
    assert_trees_close(p_ours, p_jax, rtol=1e-10)
    assert_trees_close(s_ours, s_jax, rtol=1e-10)
    assert mlp_loss(p_ours, x, y) < mlp_loss(params, x, y)


def test_quadratic_reference_is_the_one_the_tests_assume():
    # The convergence tests' optimum: ∇ = A(x - x*) vanishes at x* (A from numpy, independent of optim).
    g = jax.grad(quad_loss)({"x": X_STAR})["x"]
    close(g, np.zeros(5), rtol=0, atol=1e-14)
    assert np.all(np.linalg.eigvalsh(np.asarray(A_Q)) > 0.99)
