"""fungpt.optim.wrappers: hyperparameters in the state, accumulation, masked / multi_transform /
apply_if_finite with optax's semantics, each against a hand-written loop."""
import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fungpt import optim
from tests.helpers import ALG, EXACT, assert_trees_close, close
from tests.optim._refs import A_Q, X_STAR, quad_loss, ref_adamw, ref_sgd
from tests.optim.test_schedules import nanogpt_get_lr

F64 = np.dtype(np.float64)


def test_injected_learning_rate_changes_without_retrace():
    params = {"w": jnp.ones((2, 2)), "b": jnp.ones(2)}
    grads = {"w": jnp.full((2, 2), 0.5), "b": jnp.full(2, -2.0)}
    opt = optim.inject_hyperparams(optim.adamw)(learning_rate=0.1, weight_decay=0.01, mask=optim.ndim_mask)

    @jax.jit
    @chex.assert_max_traces(n=1)
    def step(p, s):
        u, s = opt.update(grads, s, p)
        return optim.apply_updates(p, u), s

    state = opt.init(params)
    p1, state = step(params, state)
    state = optim.set_hyperparams(state, learning_rate=0.01)
    p2, state = step(p1, state)
    assert float(state.hyperparams["learning_rate"]) == 0.01
    # The same two steps with plain adamw at lr 0.1 then a fresh-lr adamw sharing the state.
    ref = optim.adamw(0.1, weight_decay=0.01, mask=optim.ndim_mask)
    u, s = ref.update(grads, ref.init(params), params)
    q1 = optim.apply_updates(params, u)
    u, _ = optim.adamw(0.01, weight_decay=0.01, mask=optim.ndim_mask).update(grads, s, q1)
    assert_trees_close(p2, optim.apply_updates(q1, u), rtol=EXACT[F64])


def test_injected_schedule_is_logged():
    opt = optim.inject_hyperparams(optim.sgd)(learning_rate=optim.warmup_cosine(1.0, 5, 20, 0.1), momentum=0.9)
    p = jnp.zeros(3)
    s = opt.init(p)
    step = jax.jit(opt.update)
    for t in range(7):
        _, s = step(jnp.ones(3), s, p)
        close(s.hyperparams["learning_rate"], nanogpt_get_lr(t, 1.0, 5, 20, 0.1), rtol=EXACT[F64])


def test_accumulate_gradients_equals_step_on_mean():
    rng = np.random.default_rng(4)
    params = {"w": jnp.asarray(rng.standard_normal((2, 3)))}
    micro = [{"w": jnp.asarray(rng.standard_normal((2, 3)))} for _ in range(6)]
    inner = optim.adam(0.1)
    acc = optim.accumulate_gradients(inner, 3)
    s, p = acc.init(params), params
    update = jax.jit(acc.update)
    for i, g in enumerate(micro):
        u, s = update(g, s, p)
        if i % 3 != 2:
            np.testing.assert_array_equal(np.asarray(u["w"]), 0.0)
        p = optim.apply_updates(p, u)
    q, si = params, inner.init(params)
    for k in range(2):
        mean = jax.tree.map(lambda *gs: sum(gs) / 3, *micro[3 * k : 3 * k + 3])
        u, si = inner.update(mean, si, q)
        q = optim.apply_updates(q, u)
    assert_trees_close(p, q, rtol=EXACT[F64])
    with pytest.raises(ValueError, match="every_k"):
        optim.accumulate_gradients(optim.sgd(0.1), 0)


def test_vmap_over_learning_rates():
    # One optimizer state per learning rate, trained in parallel: states are pytrees of arrays.
    opt = optim.inject_hyperparams(optim.sgd)(learning_rate=0.1)

    def train(lr):
        p = {"x": jnp.zeros(5)}
        s = optim.set_hyperparams(opt.init(p), learning_rate=lr)
        for _ in range(3):
            u, s = opt.update(jax.grad(quad_loss)(p), s, p)
            p = optim.apply_updates(p, u)
        return p["x"]

    got = jax.jit(jax.vmap(train))(jnp.asarray([0.01, 0.1, 0.2]))
    for i, lr in enumerate([0.01, 0.1, 0.2]):
        x = np.zeros(5)
        for _ in range(3):
            x = x - lr * (np.asarray(A_Q) @ (x - np.asarray(X_STAR)))
        close(got[i], x, rtol=EXACT[F64])


# --- masked, multi_transform (optax's semantics) -------------------------------------------------

def _params_and_grads(rng, steps=3):
    shapes = {"w": (3, 2), "b": (2,), "emb": (4, 2)}
    params = {k: rng.standard_normal(s) for k, s in shapes.items()}
    grads = [{k: rng.standard_normal(s) for k, s in shapes.items()} for _ in range(steps)]
    return params, grads


@pytest.mark.parametrize("callable_mask", [False, True])
def test_masked_applies_inner_where_true_and_passes_the_rest_through(callable_mask):
    rng = np.random.default_rng(6)
    params, grads = _params_and_grads(rng)
    mask = {"w": True, "b": False, "emb": True}
    opt = optim.masked(optim.adam(0.01), (lambda tree: mask) if callable_mask else mask)
    p = jax.tree.map(jnp.asarray, params)
    s = opt.init(p)
    assert isinstance(s.inner_state[0].mu["b"], optim.MaskedNode)  # no moments kept for masked-out leaves
    outs = []
    for g in grads:
        u, s = jax.jit(opt.update)(jax.tree.map(jnp.asarray, g), s, p)
        outs.append(u)
    for k, keep in mask.items():
        want = ref_adamw(params[k], [g[k] for g in grads]) if keep else [g[k] for g in grads]
        for t in range(len(grads)):
            close(outs[t][k], want[t], rtol=ALG[F64], atol=1e-12)


def test_multi_transform_routes_each_leaf_to_its_optimizer():
    rng = np.random.default_rng(7)
    params, grads = _params_and_grads(rng)
    labels = {"w": "adam", "b": "sgd", "emb": "adam"}
    opt = optim.multi_transform({"adam": optim.adamw(0.01, weight_decay=0.1), "sgd": optim.sgd(0.1, momentum=0.9)},
                                lambda tree: labels)
    p = jax.tree.map(jnp.asarray, params)
    s = opt.init(p)
    step = jax.jit(opt.update)
    outs = []
    for g in grads:
        u, s = step(jax.tree.map(jnp.asarray, g), s, p)
        p = optim.apply_updates(p, u)
        outs.append(u)
    want = {"w": ref_adamw(params["w"], [g["w"] for g in grads], wd=0.1),
            "emb": ref_adamw(params["emb"], [g["emb"] for g in grads], wd=0.1),
            "b": ref_sgd(params["b"], [g["b"] for g in grads], mu=0.9)}
    for k in labels:
        for t in range(len(grads)):
            close(outs[t][k], want[k][t], rtol=ALG[F64], atol=1e-12)
    with pytest.raises(ValueError, match="no transformation"):
        optim.multi_transform({"adam": optim.adam(0.1)}, {"w": "adam", "b": "other"}).init({"w": p["w"], "b": p["b"]})


def test_masked_and_multi_transform_agree_with_optax_when_installed():
    optax = pytest.importorskip("optax")
    rng = np.random.default_rng(8)
    params, grads = _params_and_grads(rng)
    labels = {"w": "a", "b": "s", "emb": "a"}
    pairs = [(optim.masked(optim.adam(0.01), {"w": True, "b": False, "emb": True}),
              optax.masked(optax.adam(0.01), {"w": True, "b": False, "emb": True})),
             (optim.multi_transform({"a": optim.adam(0.01), "s": optim.sgd(0.1)}, labels),
              optax.multi_transform({"a": optax.adam(0.01), "s": optax.sgd(0.1)}, labels))]
    with jax.numpy_dtype_promotion("standard"):
        for ours, theirs in pairs:
            p = jax.tree.map(jnp.asarray, params)
            s1, s2 = ours.init(p), theirs.init(p)
            for g in grads:
                g = jax.tree.map(jnp.asarray, g)
                (u1, s1), (u2, s2) = ours.update(g, s1, p), theirs.update(g, s2, p)
                assert_trees_close(u1, u2, rtol=1e-12)


# --- apply_if_finite ----------------------------------------------------------------------------------

def test_apply_if_finite_skips_nonfinite_updates_until_too_many_in_a_row():
    # optax's rule: a non-finite update gives zeros and leaves the inner state alone, unless it is the
    # (max_consecutive_errors + 1)-th in a row; then it is applied. Hand-written run with max = 2.
    nan = np.nan
    seq = [[1.0, 2.0], [nan, 1.0], [3.0, 1.0], [np.inf, 0.0], [nan, 0.0], [nan, 0.0], [1.0, 1.0]]
    opt = optim.apply_if_finite(optim.sgd(0.5, momentum=0.5), 2)
    p = jnp.zeros(2)
    s = opt.init(p)
    step = jax.jit(opt.update)
    trace, consecutive, total = np.zeros(2), 0, 0  # the momentum buffer of the inner sgd
    for g in seq:
        g = np.asarray(g)
        u, s = step(jnp.asarray(g), s, p)
        finite = np.isfinite(g).all()
        consecutive = 0 if finite else consecutive + 1
        total += 0 if finite else 1
        if finite or consecutive > 2:
            trace = 0.5 * trace + g
            want = -0.5 * trace
        else:
            want = np.zeros(2)
        close(u, want, rtol=EXACT[F64])
        assert (int(s.notfinite_count), int(s.total_notfinite), bool(s.last_finite)) == (consecutive, total, finite)
    with pytest.raises(ValueError, match="max_consecutive_errors"):
        optim.apply_if_finite(optim.sgd(0.1), -1)


def test_apply_if_finite_keeps_inner_dtypes_for_bf16():
    params = {"w": jnp.ones((2, 2), jnp.bfloat16)}
    opt = optim.apply_if_finite(optim.adam(0.1), 3)
    s = opt.init(params)
    bad = {"w": jnp.full((2, 2), jnp.nan, jnp.bfloat16)}
    u, s2 = jax.jit(opt.update)(bad, s, params)
    chex.assert_trees_all_equal_dtypes(s, s2)
    assert u["w"].dtype == jnp.float32 and not np.asarray(u["w"]).any()
