"""fungpt.optim.transforms: masks and decoupled decay, Nesterov against its look-ahead form, ema
against a hand-written loop."""
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import fungpt
from fungpt import optim
from tests.helpers import ALG, EXACT, close
from tests.optim._refs import ref_adamw, tree

F64 = np.dtype(np.float64)


def test_adamw_mask_decays_only_matrices():
    rng = np.random.default_rng(0)
    params, grads = tree(rng, np.float64), tree(rng, np.float64)
    opt = optim.adamw(0.01, weight_decay=0.5, mask=optim.ndim_mask)
    pj, gj = jax.tree.map(jnp.asarray, params), jax.tree.map(jnp.asarray, grads)
    u, _ = opt.update(gj, opt.init(pj), pj)
    for p0, g0, u0 in zip(jax.tree.leaves(params), jax.tree.leaves(grads), jax.tree.leaves(u), strict=True):
        close(u0, ref_adamw(p0, [g0], wd=0.5 if p0.ndim >= 2 else 0.0)[0], rtol=ALG[F64])


def test_ndim_mask_with_stacked_layers_is_the_gpts_decay_rule():
    # nanoGPT decays parameters with dim >= 2 of the per-layer model; the GPT stacks its layers under "h",
    # so a layer norm's gain is (L, C) there. The rule is written out here from the shapes alone.
    from fungpt import gpt
    from fungpt.gpt import train

    cfg = gpt.GPTConfig(vocab_size=11, block_size=8, n_layer=2, n_head=2, n_embd=16)
    shapes = jax.eval_shape(lambda: gpt.init_params(cfg, jax.random.key(0)))
    mask = optim.ndim_mask(shapes, stacked=("h",))
    flat = jax.tree_util.tree_flatten_with_path(shapes)[0]
    want = [leaf.ndim - (path[0].key == "h") >= 2 for path, leaf in flat]
    assert jax.tree.leaves(mask) == want
    assert jax.tree.leaves(mask) == jax.tree.leaves(train.decay_mask(shapes))  # the trainer's mask agrees
    # ...while the plain rank rule would decay the stacked layer-norm gains, which nanoGPT does not.
    plain = dict(zip([jax.tree_util.keystr(p) for p, _ in flat], jax.tree.leaves(optim.ndim_mask(shapes)),
                     strict=True))
    assert plain["['h']['ln_1']['weight']"] and not dict(
        zip(plain, jax.tree.leaves(mask), strict=True))["['h']['ln_1']['weight']"]
    opt = optim.adamw(0.1, mask=functools.partial(optim.ndim_mask, stacked=("h",)))
    params = jax.tree.map(lambda s: jnp.ones(s.shape, s.dtype), shapes)
    u, _ = opt.update(params, opt.init(params), params)
    assert np.asarray(u["h"]["ln_1"]["weight"]).shape == shapes["h"]["ln_1"]["weight"].shape


def test_weight_decay_needs_params_and_bool_mask():
    g = {"w": jnp.ones((2, 2))}
    with pytest.raises(ValueError, match="params"):
        optim.add_decayed_weights(0.1).update(g, optim.EmptyState())
    with pytest.raises(TypeError, match="bools"):
        optim.add_decayed_weights(0.1, mask={"w": jnp.asarray(True)}).update(g, optim.EmptyState(), g)


def test_nesterov_equals_lookahead_form():
    # Nesterov (1983) / Sutskever et al. (2013): v ← μv − lr∇f(θ + μv), θ ← θ + v. Our iterates
    # are the look-ahead points θ + μv.
    rng = np.random.default_rng(1)
    A = rng.standard_normal((4, 4))
    A = A @ A.T + np.eye(4)
    f = lambda x: 0.5 * x @ A @ x + jnp.sin(x).sum()
    grad_np = lambda x: A @ x + np.cos(x)
    lr, mu = 0.05, 0.8
    theta, v = rng.standard_normal(4), np.zeros(4)
    opt = optim.sgd(lr, momentum=mu, nesterov=True)
    phi = jnp.asarray(theta)
    state = opt.init(phi)
    for _ in range(10):
        v = mu * v - lr * grad_np(theta + mu * v)
        theta = theta + v
        u, state = opt.update(fungpt.grad(f)(phi), state)
        phi = optim.apply_updates(phi, u)
        close(phi, theta + mu * v, rtol=EXACT[F64])


@pytest.mark.parametrize("debias", [True, False])
def test_ema_matches_a_loop(debias):
    # optax's ema: e_t = δe_{t-1} + (1-δ)g_t from e_0 = 0; debiased e_t / (1 - δ^t).
    rng = np.random.default_rng(4)
    gs = [rng.standard_normal(3) for _ in range(5)]
    opt = optim.ema(0.7, debias=debias)
    s, e = opt.init(jnp.zeros(3)), np.zeros(3)
    step = jax.jit(opt.update)
    for t, g in enumerate(gs, start=1):
        u, s = step(jnp.asarray(g), s)
        e = 0.7 * e + 0.3 * g
        close(u, e / (1 - 0.7**t) if debias else e, rtol=EXACT[F64])
        close(s.ema, e, rtol=EXACT[F64])
    assert int(s.count) == len(gs)
    # bf16 inputs keep an f32 average (the default accumulator), as the moments of Adam do.
    assert optim.ema(0.9).init(jnp.zeros(2, jnp.bfloat16)).ema.dtype == jnp.float32
    with pytest.raises(ValueError, match="decay"):
        optim.ema(1.0)


def test_ema_agrees_with_optax_when_installed():
    optax = pytest.importorskip("optax")
    rng = np.random.default_rng(5)
    g = [jnp.asarray(rng.standard_normal(3)) for _ in range(4)]
    ours, theirs = optim.ema(0.8), optax.ema(0.8)
    s1, s2 = ours.init(g[0]), theirs.init(g[0])
    with jax.numpy_dtype_promotion("standard"):
        for x in g:
            u1, s1 = ours.update(x, s1)
            u2, s2 = theirs.update(x, s2)
            close(u1, u2, rtol=EXACT[F64])
