"""fungpt.gpt model: forward against a naive per-token float64 loop written from the equations, the loss
against numpy, gradients (fungpt.grad vs jax.grad), the KV-cached path, validation, init statistics."""
import functools
import math

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.special import erf
from scipy.special import log_softmax as np_log_softmax

import fungpt
from fungpt import gpt, nn
from tests.helpers import LAYER

CFG = gpt.GPTConfig(vocab_size=23, block_size=16, n_layer=2, n_head=2, n_embd=16)
CFG64 = CFG.replace(param_dtype="float64")


@pytest.fixture(scope="module")
def params64():
    return gpt.init_params(CFG64, jax.random.key(7))


def _randomize(params, seed, scale=0.3):
    # Init has zero biases and unit gains; random ones make the reference exercise every term.
    rng = np.random.default_rng(seed)
    return jax.tree_util.tree_map(lambda x: x + (scale * rng.standard_normal(x.shape)).astype(x.dtype), params)


def _tokens(shape, vocab_size, seed=0):
    return np.random.default_rng(seed).integers(0, vocab_size, shape).astype(np.int32)


# --- the reference: one token at a time, float64 numpy, straight from the equations ---------------------

def _ln(x, w, b, eps):
    mu = x.mean()
    return (x - mu) / math.sqrt(((x - mu) ** 2).mean() + eps) * w + b


def _gelu(x, approximate):
    if approximate:
        return 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3)))
    return 0.5 * x * (1 + erf(x / math.sqrt(2)))


def naive_forward(params, tokens, cfg):
    P = jax.tree_util.tree_map(lambda a: np.asarray(a, np.float64), params)
    C, H, D, eps = cfg.n_embd, cfg.n_head, cfg.head_size, cfg.layer_norm_epsilon
    xs = [P["wte"]["weight"][t] + P["wpe"]["weight"][i] for i, t in enumerate(np.asarray(tokens))]
    for l in range(cfg.n_layer):
        p = jax.tree_util.tree_map(lambda a, l=l: a[l], P["h"])
        keys, values, out = [], [], []
        for x in xs:
            qkv = _ln(x, p["ln_1"]["weight"], p["ln_1"]["bias"], eps) @ p["attn"]["c_attn"]["weight"]
            qkv = qkv + p["attn"]["c_attn"]["bias"]
            q, k, v = qkv[:C], qkv[C:2 * C], qkv[2 * C:]
            keys.append(k)
            values.append(v)
            heads = []
            for h in range(H):
                s = slice(h * D, (h + 1) * D)
                scores = np.array([q[s] @ kj[s] / math.sqrt(D) for kj in keys])  # only j <= i exist yet
                w = np.exp(scores - scores.max())
                w /= w.sum()
                heads.append(sum(wj * vj[s] for wj, vj in zip(w, values, strict=True)))
            x = x + np.concatenate(heads) @ p["attn"]["c_proj"]["weight"] + p["attn"]["c_proj"]["bias"]
            hid = _ln(x, p["ln_2"]["weight"], p["ln_2"]["bias"], eps) @ p["mlp"]["c_fc"]["weight"]
            hid = _gelu(hid + p["mlp"]["c_fc"]["bias"], cfg.activation == "gelu_tanh")
            out.append(x + hid @ p["mlp"]["c_proj"]["weight"] + p["mlp"]["c_proj"]["bias"])
        xs = out
    return np.stack([_ln(x, P["ln_f"]["weight"], P["ln_f"]["bias"], eps) @ P["wte"]["weight"].T for x in xs])


@pytest.mark.parametrize("dtype, activation", [("float32", "gelu_tanh"), ("float64", "gelu_tanh"),
                                               ("float64", "gelu")])
def test_forward_matches_naive_loop(dtype, activation, key):
    cfg = CFG.replace(param_dtype=dtype, activation=activation)
    params = _randomize(gpt.init_params(cfg, key), 1)
    tokens = _tokens((11,), cfg.vocab_size, 2)
    got = jax.jit(gpt.forward, static_argnums=2)(params, tokens, cfg)
    chex.assert_shape(got, (11, cfg.vocab_size))
    chex.assert_type(got, jnp.dtype(dtype))
    np.testing.assert_allclose(got, naive_forward(params, tokens, cfg), rtol=LAYER[np.dtype(dtype)],
                               atol=LAYER[np.dtype(dtype)])


def test_batch_is_vmap_of_single(params64, key):
    tokens = _tokens((2, 12), CFG64.vocab_size, 0)
    batched = gpt.forward(params64, tokens, CFG64)
    mapped = jax.vmap(lambda t: gpt.forward(params64, t, CFG64))(tokens)
    chex.assert_shape(batched, (2, 12, CFG64.vocab_size))
    np.testing.assert_allclose(batched, mapped, rtol=1e-12, atol=1e-12)


def test_loss_is_mean_cross_entropy(params64, key):
    tokens = _tokens((2, 12), CFG64.vocab_size, 0)
    targets = _tokens((2, 12), CFG64.vocab_size, 1)
    logp = np_log_softmax(np.asarray(gpt.forward(params64, tokens, CFG64)), axis=-1)
    want = -np.mean(np.take_along_axis(logp, np.asarray(targets)[..., None], -1))
    np.testing.assert_allclose(gpt.loss(params64, tokens, targets, CFG64), want, rtol=1e-12)
    # one sequence of shape (T,) is the same as a batch of one
    np.testing.assert_allclose(gpt.loss(params64, tokens[0], targets[0], CFG64),
                               -np.mean(np.take_along_axis(logp[0], np.asarray(targets)[0, :, None], -1)),
                               rtol=1e-12)


def test_fungpt_grad_matches_jax_grad_and_finite_differences(params64, key):
    params = _randomize(params64, 2, 0.1)
    tokens = _tokens((2, 12), CFG64.vocab_size, 1)
    targets = jnp.roll(tokens, -1, axis=1)
    f = lambda p: gpt.loss(p, tokens, targets, CFG64)
    ours, ref = jax.jit(fungpt.grad(f))(params), jax.grad(f)(params)
    chex.assert_trees_all_equal_structs(ours, ref)
    chex.assert_trees_all_close(ours, ref, rtol=1e-4, atol=1e-10)
    # a third oracle: central differences along a random direction in every leaf (float64)
    rng = np.random.default_rng(3)
    d = jax.tree_util.tree_map(lambda a: rng.standard_normal(a.shape), params)
    shift = lambda t: jax.tree_util.tree_map(lambda a, b: a + t * b, params, d)
    eps = 1e-5
    fd = (f(shift(eps)) - f(shift(-eps))) / (2 * eps)
    directional = sum(jnp.vdot(g, b) for g, b in zip(jax.tree_util.tree_leaves(ours),
                                                      jax.tree_util.tree_leaves(d), strict=True))
    np.testing.assert_allclose(directional, fd, rtol=1e-6)


def test_forward_cached_matches_forward(params64, key):
    tokens = _tokens((2, 13), CFG64.vocab_size, 0)
    full = gpt.forward(params64, tokens, CFG64)
    cache = gpt.init_cache(CFG64, 2)
    step = jax.jit(gpt.forward_cached, static_argnums=4)
    logits, cache = step(params64, tokens[:, :5], cache, 0, CFG64)  # a 5-token prefill
    np.testing.assert_allclose(logits, full[:, 4], rtol=1e-10, atol=1e-10)
    for t in range(5, 13):  # then one token at a time
        logits, cache = step(params64, tokens[:, t:t + 1], cache, t, CFG64)
        np.testing.assert_allclose(logits, full[:, t], rtol=1e-10, atol=1e-10)


def test_no_retrace_on_second_call(key):
    cfg = CFG
    params = gpt.init_params(cfg, key)

    @jax.jit
    @chex.assert_max_traces(n=1)
    def step(p, x, y):
        return jax.value_and_grad(gpt.loss)(p, x, y, cfg)

    x = _tokens((2, 12), cfg.vocab_size, 0)
    for _ in range(3):
        (_, g) = step(params, x, x)
    chex.assert_trees_all_equal_shapes_and_dtypes(g, params)


def test_dropout_train_vs_eval(params64, key):
    cfg, params = CFG64.replace(dropout=0.3), params64
    tokens = _tokens((2, 12), cfg.vocab_size, 0)
    ev = gpt.forward(params, tokens, cfg)
    np.testing.assert_allclose(ev, gpt.forward(params, tokens, CFG64), rtol=1e-12)  # dropout off at eval
    k1, k2 = jax.random.split(key)
    a = gpt.forward(params, tokens, cfg, key=k1, train=True)
    np.testing.assert_allclose(a, gpt.forward(params, tokens, cfg, key=k1, train=True), rtol=1e-12)
    assert not np.allclose(a, gpt.forward(params, tokens, cfg, key=k2, train=True))
    assert not np.allclose(a, ev)
    with pytest.raises(ValueError, match="PRNG key"):
        gpt.forward(params, tokens, cfg, train=True)


def test_bfloat16_compute_is_close_to_float32(key):
    cfg = CFG
    params = gpt.init_params(cfg, key)
    tokens = _tokens((2, 12), cfg.vocab_size, 0)
    f32 = gpt.loss(params, tokens, tokens, cfg)
    bf16 = gpt.loss(params, tokens, tokens, cfg.replace(compute_dtype="bfloat16"))
    chex.assert_type(bf16, jnp.float32)
    np.testing.assert_allclose(bf16, f32, rtol=1e-2)


def test_init_statistics_and_count(key):
    cfg = gpt.GPTConfig(vocab_size=500, block_size=64, n_layer=3, n_head=4, n_embd=64)
    p = gpt.init_params(cfg, key)
    np.testing.assert_allclose(np.std(p["wte"]["weight"]), 0.02, rtol=0.05)
    np.testing.assert_allclose(np.std(p["h"]["mlp"]["c_fc"]["weight"]), 0.02, rtol=0.05)
    np.testing.assert_allclose(np.std(p["h"]["mlp"]["c_proj"]["weight"]), 0.02 / math.sqrt(2 * 3), rtol=0.05)
    np.testing.assert_array_equal(p["h"]["ln_1"]["weight"], np.ones((3, 64)))
    C, L, V, T = 64, 3, 500, 64
    assert gpt.num_params(p) == V * C + T * C + L * (12 * C * C + 13 * C) + 2 * C
    assert gpt.num_params(p, non_embedding=True) == gpt.num_params(p) - T * C
    assert not any(jnp.dtype(x.dtype) != jnp.float32 for x in jax.tree_util.tree_leaves(p))


@pytest.mark.parametrize("bad, err, match", [
    (np.array([0, 23]), ValueError, "vocab_size=23"),
    (np.array([-1, 2]), ValueError, r"\[0, vocab_size"),
    (np.array([0.0, 1.0]), TypeError, "integer"),
    (np.zeros((17,), np.int32), ValueError, "block_size=16"),
    (np.zeros((1, 2, 3), np.int32), ValueError, "shape"),
    (np.zeros((0,), np.int32), ValueError, "length"),
])
def test_bad_tokens_are_refused(params64, bad, err, match):
    with pytest.raises(err, match=match):
        gpt.forward(params64, bad, CFG64)


def test_bad_targets_are_refused(params64):
    with pytest.raises(ValueError, match="targets"):
        gpt.loss(params64, np.zeros((2, 4), np.int32), np.zeros((2, 5), np.int32), CFG64)
    with pytest.raises(ValueError, match="targets"):
        gpt.loss(params64, np.zeros((4,), np.int32), np.array([0, 1, 99, 2]), CFG64)


def test_params_that_do_not_fit_the_config_are_refused(params64):
    # The expected shapes are written out here from the layout (wte (V, C), c_attn (L, C, 3C), ...).
    V, L, C = CFG64.vocab_size, CFG64.n_layer, CFG64.n_embd
    assert params64["wte"]["weight"].shape == (V, C)
    assert params64["h"]["attn"]["c_attn"]["weight"].shape == (L, C, 3 * C)
    tokens = np.array([1, 2, 3])
    cases = [
        ({**params64, "wte": {"weight": params64["wte"]["weight"].T}}, CFG64,
         rf"\['wte'\]\['weight'\] is \[{C}, {V}\], expected \[{V}, {C}\]"),
        ({k: v for k, v in params64.items() if k != "ln_f"}, CFG64, r"missing \['ln_f'\]"),
        ({**params64, "lm_head": {"weight": params64["wte"]["weight"]}}, CFG64, r"unexpected \['lm_head'\]"),
        (params64, CFG64.replace(n_layer=L + 1), rf"\['h'\]\['attn'\]\['c_attn'\]\['weight'\] is "
                                                 rf"\[{L}, {C}, {3 * C}\], expected \[{L + 1}, {C}, {3 * C}\]"),
        (params64, CFG64.replace(bias=False), r"unexpected \['h'\]\['attn'\]\['c_attn'\]\['bias'\]"),
    ]
    for p, cfg, match in cases:
        for call in (lambda: gpt.forward(p, tokens, cfg), lambda: gpt.loss(p, tokens, tokens, cfg),
                     lambda: gpt.generate(p, cfg, tokens, 1, jax.random.key(0))):
            with pytest.raises(ValueError, match=match):
                call()
    gpt.check_params(jax.tree.map(lambda a: a.astype(jnp.bfloat16), params64), CFG64)  # dtype is free


def test_debug_mode_checks_under_jit(params64):
    f = jax.jit(lambda t: gpt.forward(params64, t, CFG64, debug=True))
    f(jnp.array([1, 2]))  # fine
    with pytest.raises(Exception, match="vocab_size=23"):
        jax.block_until_ready(f(jnp.array([1, 99])))


@pytest.mark.parametrize("kw, match", [
    (dict(n_embd=10, n_head=3), "divisible"),
    (dict(n_layer=0), "n_layer"),
    (dict(vocab_size=2.5), "vocab_size"),
    (dict(dropout=1.0), "dropout"),
    (dict(activation="relu"), "activation"),
    (dict(compute_dtype="int8"), "compute_dtype"),
    (dict(layer_norm_epsilon=float("inf")), "layer_norm_epsilon"),
    (dict(layer_norm_epsilon="1e-5"), "layer_norm_epsilon"),
])
def test_config_validation(kw, match):
    with pytest.raises((ValueError, TypeError), match=match):
        gpt.GPTConfig(**kw)


def test_config_is_hashable_and_round_trips():
    assert hash(CFG) == hash(gpt.GPTConfig.from_dict(CFG.to_dict()))
    with pytest.raises(ValueError, match="unknown"):
        gpt.GPTConfig.from_dict({**CFG.to_dict(), "n_embed": 3})


def test_config_fields_are_canonical():
    # np.dtype("float32") == "float32" passed validation but hashed differently: equal configs with different
    # hashes (two jit compilations) and a to_dict() that json could not write.
    import json

    odd = gpt.GPTConfig(vocab_size=np.int64(23), block_size=np.int32(16), n_layer=2, n_head=2, n_embd=16,
                        param_dtype=np.dtype("float32"), compute_dtype=jnp.bfloat16)
    want = CFG.replace(compute_dtype="bfloat16")
    assert odd == want and hash(odd) == hash(want)
    assert json.loads(json.dumps(odd.to_dict())) == want.to_dict()
    assert type(odd.vocab_size) is int and odd.param_dtype == "float32"


def test_loss_with_narrow_integer_tokens(key):
    # uint8 ids with a 300-token vocabulary: every id < 256 is valid, and the loss must not wrap the class
    # index around in uint8 (it counted class 299 as target 43 too).
    cfg = gpt.GPTConfig(vocab_size=300, block_size=8, n_layer=1, n_head=2, n_embd=8, param_dtype="float64")
    params = gpt.init_params(cfg, key)
    params = {**params, "wte": {"weight": params["wte"]["weight"] * 50}}  # a peaked softmax shows the error
    tokens, targets = _tokens((2, 8), 256, 3).astype(np.uint8), _tokens((2, 8), 256, 4).astype(np.uint8)
    logp = np_log_softmax(np.asarray(gpt.forward(params, tokens, cfg)), axis=-1)
    want = -np.mean(np.take_along_axis(logp, targets.astype(np.int64)[..., None], -1))
    np.testing.assert_allclose(gpt.loss(params, tokens, targets, cfg), want, rtol=1e-12)


def test_stacked_model_block_is_nn_block_on_sliced_parameters(key):
    # The trunk scans `model.block` over the stacked layers; running `nn.block` layer by layer on the
    # parameters sliced at l (and embeddings, final norm, tied head by hand) must give the same logits.
    cfg = CFG64.replace(n_layer=3, activation="gelu")
    params = _randomize(gpt.init_params(cfg, key), 4)
    tokens = _tokens((2, 9), cfg.vocab_size, 5)
    P = jax.tree_util.tree_map(np.asarray, params)
    x = jnp.asarray(P["wte"]["weight"][tokens] + P["wpe"]["weight"][:9][None])
    for l in range(cfg.n_layer):
        p_l = jax.tree_util.tree_map(lambda a, l=l: a[l], params["h"])
        y = nn.block(p_l, x, cfg.n_head, eps=cfg.layer_norm_epsilon, approximate=False)
        np.testing.assert_allclose(gpt.block(p_l, x, cfg)[0], y, rtol=1e-12, atol=1e-12)
        x = y
    hidden, state = gpt.trunk(params, jnp.asarray(tokens), cfg, final_norm=False)
    assert state is None
    np.testing.assert_allclose(hidden, x, rtol=1e-12, atol=1e-12)
    want = nn.layer_norm(params["ln_f"], x, cfg.layer_norm_epsilon) @ P["wte"]["weight"].T
    np.testing.assert_allclose(gpt.forward(params, tokens, cfg), want, rtol=1e-12, atol=1e-12)


def test_one_parameter_table_for_init_check_and_gpt2_size(key):
    # GPT-2 small has 124,439,808 parameters (OpenAI's 124M, wpe included): the table must add up to it.
    shapes = [shape for _, shape, _ in gpt.param_table(gpt.gpt2())]
    assert sum(math.prod(s) for s in shapes) == 124_439_808
    for cfg in (CFG, CFG.replace(bias=False)):
        params = gpt.init_params(cfg, key)
        flat = {tuple(k.key for k in path): a.shape for path, a in jax.tree_util.tree_flatten_with_path(params)[0]}
        table = gpt.param_table(cfg)
        assert flat == {path: shape for path, shape, _ in table}
        for path, _, init in table:  # zeros / ones / N(0, std²) as the table says
            a = np.asarray(functools.reduce(lambda t, k: t[k], path, params))
            if init in ("zeros", "ones"):
                np.testing.assert_array_equal(a, np.full(a.shape, init == "ones", a.dtype), err_msg=str(path))
            else:
                assert abs(a.std() / init - 1) < 0.25, path


@pytest.mark.parametrize("jit", [False, True])
def test_bad_ids_under_jit_give_nan_never_a_plausible_number(params64, jit):
    tokens = jnp.asarray(_tokens((2, 6), CFG64.vocab_size, 0))
    fwd = jax.jit(gpt.forward, static_argnums=2)
    loss = jax.jit(gpt.loss, static_argnums=3)
    if not jit:  # eager: the boundary names the bad id and its position
        with pytest.raises(ValueError, match=r"got \[23\] at positions \[\[1, 4\]\]"):
            gpt.forward(params64, tokens.at[1, 4].set(23), CFG64)
        with pytest.raises(ValueError, match=r"targets must lie in .* got \[-1\]"):
            gpt.loss(params64, tokens, tokens.at[0, 0].set(-1), CFG64)
        return
    for bad in (23, -1, 10**6):
        logits = np.asarray(fwd(params64, tokens.at[1, 4].set(bad), CFG64))
        assert np.isnan(logits[1]).all() and np.isfinite(logits[0]).all(), bad  # the other row is untouched
        assert np.isnan(loss(params64, tokens.at[1, 4].set(bad), tokens, CFG64)), bad
        assert np.isnan(loss(params64, tokens, tokens.at[1, 4].set(bad), CFG64)), bad
    all_bad = jnp.full_like(tokens, CFG64.vocab_size)
    assert np.isnan(loss(params64, tokens, all_bad, CFG64))  # not -0.0
    for grad in (jax.grad, fungpt.grad):
        g = jax.jit(grad(lambda p: gpt.loss(p, tokens, all_bad.at[0, 0].set(0), CFG64)))(params64)
        assert all(np.isnan(a).any() for a in jax.tree_util.tree_leaves(g))  # not a silent zero


def test_check_finite_names_the_bad_leaves(params64):
    gpt.check_finite(params64)
    bad = {**params64, "wte": {"weight": params64["wte"]["weight"].at[3, 1].set(jnp.nan)},
           "h": {**params64["h"], "mlp": {**params64["h"]["mlp"], "c_fc": {
               **params64["h"]["mlp"]["c_fc"], "bias": params64["h"]["mlp"]["c_fc"]["bias"].at[1, 3].set(jnp.inf)}}}}
    with pytest.raises(ValueError, match=r"2 leaves: \['h'\]\['mlp'\]\['c_fc'\]\['bias'\] \(1 of 128\), "
                                         r"\['wte'\]\['weight'\] \(1 of 368\)"):
        gpt.check_finite(bad)
    with pytest.raises(ValueError, match=r"\['wte'\]\['weight'\]"):
        gpt.generate(bad, CFG64, np.array([1, 2]), 2, jax.random.key(0))
    jax.jit(gpt.check_finite)(bad)  # tracers: nothing to check, no error


def run_experiment(name, *args):
    """Import experiments/<name>.py and run its main(args) in this process (no second JAX start-up)."""
    import importlib.util
    import pathlib

    path = pathlib.Path(__file__).parents[2] / "experiments" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"experiments_{name}", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.main(list(args))


@pytest.mark.slow
def test_compile_time_experiment_quick():
    res = run_experiment("gpt_compile_time", "--quick")
    assert res["compile_s"]["scan"][1] > 0 and res["step_ms"]["float32 scan jax.grad"] > 0
