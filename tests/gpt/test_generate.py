"""Generation: KV-cached vs recomputed tokens, greedy vs argmax of a float64 numpy reference model,
top-k / top-p support by many draws, batching, crop past block_size, validation."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.special import softmax
from test_model import _randomize, naive_forward, run_experiment

from fungpt import gpt
from fungpt.gpt.generate import filter_logits, generate, sample_logits

CFG = gpt.GPTConfig(vocab_size=19, block_size=12, n_layer=2, n_head=2, n_embd=16, param_dtype="float64")


@pytest.fixture(scope="module")
def params():
    return _randomize(gpt.init_params(CFG, jax.random.key(3)), 5, 0.2)


PROMPTS = np.array([[1, 2, 3, 4, 5], [6, 7, 8, 9, 10]])
NEW = 20  # 5 + 20 > block_size 12: the last 13 steps run on the cropped window


def _reference(params, prompt, new):
    # nanoGPT's loop on the float64 numpy model: crop to the last block_size tokens, argmax of the last logits
    seq = [int(t) for t in prompt]
    for _ in range(new):
        seq.append(int(np.argmax(naive_forward(params, seq[-CFG.block_size:], CFG)[-1])))
    return seq


def test_cached_and_uncached_give_identical_tokens(params, key):
    a = generate(params, CFG, PROMPTS, NEW, key, temperature=1.0, use_cache=True)
    b = generate(params, CFG, PROMPTS, NEW, key, temperature=1.0, use_cache=False)
    assert a.shape == (2, 25) and a.dtype == jnp.int32
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a[:, :5], PROMPTS)
    assert ((np.asarray(a) >= 0) & (np.asarray(a) < CFG.vocab_size)).all()


def test_greedy_matches_argmax_of_reference_model(params, key):
    out = generate(params, CFG, PROMPTS[0], NEW, key, temperature=0.0)
    np.testing.assert_array_equal(out, _reference(params, PROMPTS[0], NEW))


def test_batched_greedy_equals_one_prompt_at_a_time(params, key):
    batched = generate(params, CFG, PROMPTS, NEW, key, temperature=0.0)  # temperature is traced: no compile
    for row, p in zip(np.asarray(batched), PROMPTS, strict=True):
        np.testing.assert_array_equal(row, generate(params, CFG, p, NEW, key, temperature=0.0))


def test_long_prompt_is_cropped(params, key):
    prompt = np.arange(17) % CFG.vocab_size  # longer than block_size 12
    out = generate(params, CFG, prompt, 4, key, temperature=0.0)
    np.testing.assert_array_equal(out, _reference(params, prompt, 4))


@pytest.mark.parametrize("top_k, top_p", [(5, None), (None, 0.7), (8, 0.5)])
def test_top_k_top_p_never_leave_their_support(top_k, top_p, key):
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(1, 30)) * 2
    n = 4000
    draws = np.asarray(jax.jit(jax.vmap(lambda k: sample_logits(jnp.asarray(logits), k, 1.0, top_k, top_p)))(
        jax.random.split(key, n)))[:, 0]
    # the support, computed independently in numpy
    order = np.argsort(-logits[0])
    keep = np.zeros(30, bool)
    keep[order[:top_k or 30]] = True
    if top_p is not None:
        p = softmax(np.where(keep, logits[0], -np.inf))[order]
        nucleus = order[: int(np.searchsorted(np.cumsum(p), top_p) + 1)]
        keep = np.isin(np.arange(30), nucleus) & keep
    assert keep[draws].all(), f"sampled outside the support: {sorted(set(draws[~keep[draws]]))}"
    # and within it, frequencies follow the renormalized softmax (5-sigma band)
    want = softmax(np.where(keep, logits[0], -np.inf))
    freq = np.bincount(draws, minlength=30) / n
    assert (np.abs(freq - want) <= 5 * np.sqrt(want * (1 - want) / n) + 1e-12).all()


def test_filter_logits_matches_numpy():
    logits = jnp.asarray(np.random.default_rng(1).normal(size=(3, 10)))
    out = np.asarray(filter_logits(logits, top_k=3))
    for row, o in zip(np.asarray(logits), out, strict=True):
        top = np.argsort(-row)[:3]
        np.testing.assert_array_equal(o[top], row[top])
        assert (np.delete(o, top) == np.finfo(np.float64).min).all()


def test_temperature_zero_is_argmax():
    logits = jnp.asarray(np.random.default_rng(2).normal(size=(4, 9)))
    got = sample_logits(logits, jax.random.key(0), 0.0)
    np.testing.assert_array_equal(got, np.argmax(np.asarray(logits), -1))


@pytest.mark.parametrize("kw, err, match", [
    (dict(prompt_tokens=np.array([1.0])), TypeError, "integer"),
    (dict(prompt_tokens=np.array([1, 99])), ValueError, "vocab_size"),
    (dict(max_new_tokens=-1), ValueError, "max_new_tokens"),
    (dict(temperature=-0.5), ValueError, "temperature"),
    (dict(top_k=-1), ValueError, "top_k"),
    (dict(top_k=20), ValueError, "top_k"),
    (dict(eos_token_id=19), ValueError, "eos_token_id"),
    (dict(eos_token_id=[1, "a"]), ValueError, "eos_token_id"),
    (dict(pad_token_id=-1), ValueError, "pad_token_id"),
    (dict(prompt_mask=np.array([True, False])), ValueError, "left padding"),
    (dict(prompt_mask=np.array([1, 1])), ValueError, "bool"),
    (dict(top_p=1.5), ValueError, "top_p"),
    (dict(top_p="0.5"), ValueError, "top_p"),
    (dict(temperature=np.ones(2)), TypeError, "temperature must be a scalar"),
    (dict(crop="left"), ValueError, "crop"),
])
def test_bad_arguments_are_refused(params, key, kw, err, match):
    args = dict(prompt_tokens=np.array([1, 2]), max_new_tokens=3, temperature=1.0)
    with pytest.raises(err, match=match):
        generate(params, CFG, key=key, **{**args, **kw})


@pytest.mark.slow
def test_generate_bench_experiment_quick():
    [row] = run_experiment("gpt_generate_bench", "--quick")
    assert row["cached"] > 0 and row["uncached"] > 0


def test_half_crop_matches_its_reference_loop(params, key):
    # crop="half": context = seq[start:]; when it would exceed block_size, start jumps to keep the last 6
    out = generate(params, CFG, PROMPTS[0], NEW, key, temperature=0.0, crop="half")
    seq, start, keep = [int(t) for t in PROMPTS[0]], 0, CFG.block_size // 2
    for _ in range(NEW):
        seq.append(int(np.argmax(naive_forward(params, seq[start:], CFG)[-1])))
        if len(seq) - start > CFG.block_size:
            start = len(seq) - keep
    np.testing.assert_array_equal(out, seq)


@pytest.mark.parametrize("n_layer, bias", [(1, True), (2, False), (3, True)])
def test_window_logits_equal_the_last_row_of_the_numpy_model(n_layer, bias):
    # The sliding-crop step runs its last block for the last position only: compare its logits with the
    # float64 numpy model's last row on the cropped window, inside and past the block.
    from fungpt.gpt.generate import _window_logits

    cfg = CFG.replace(n_layer=n_layer, bias=bias)
    p = _randomize(gpt.init_params(cfg, jax.random.key(n_layer)), 6, 0.2)
    buf = np.random.default_rng(n_layer).integers(0, cfg.vocab_size, (2, 30))
    window_logits = jax.jit(_window_logits, static_argnums=3)  # n traced: one compile for all n
    for n in (1, 7, cfg.block_size, cfg.block_size + 9):
        got = np.asarray(window_logits(p, jnp.asarray(buf), n, cfg, None))
        for b in range(2):
            want = naive_forward(_zero_biases(p), list(buf[b, max(0, n - cfg.block_size):n]), cfg)[-1]
            np.testing.assert_allclose(got[b], want, rtol=1e-10, atol=1e-10)


def _zero_biases(tree, name=""):
    # The numpy model reads every bias: a bias-free model is the same model with zero biases.
    if not isinstance(tree, dict):
        return tree
    out = {k: _zero_biases(v, k) for k, v in tree.items()}
    if "weight" in out and "bias" not in out and name not in ("wte", "wpe"):
        w = out["weight"]
        out["bias"] = jnp.zeros(w.shape if name.startswith("ln") else (*w.shape[:-2], w.shape[-1]), w.dtype)
    return out


def test_top_k_none_and_zero_both_mean_off(params, key):
    a = generate(params, CFG, PROMPTS, 6, key, temperature=1.0, top_k=None)
    np.testing.assert_array_equal(generate(params, CFG, PROMPTS, 6, key, temperature=1.0, top_k=0), a)
    logits = jnp.asarray(np.random.default_rng(4).normal(size=(2, 9)))
    np.testing.assert_array_equal(filter_logits(logits, top_k=0), logits)
    assert not np.array_equal(generate(params, CFG, PROMPTS, 6, key, temperature=1.0, top_k=1), a)


def test_each_row_stops_at_its_first_stop_token(params, key):
    alone = [np.asarray(_reference(params, p, NEW)) for p in PROMPTS]  # each prompt's greedy tokens alone
    eos = int(alone[0][7])  # a token row 0 emits at step 3 (and maybe later): it must stop there
    out = np.asarray(generate(params, CFG, PROMPTS, NEW, key, temperature=0.0, eos_token_id=[eos], pad_token_id=0))
    for row, ref in zip(out, alone, strict=True):
        gen = list(ref[5:])
        stop = 5 + gen.index(eos) + 1 if eos in gen else len(ref)
        np.testing.assert_array_equal(row[:stop], ref[:stop])
        assert (row[stop:] == 0).all()
    stop0 = 5 + list(alone[0][5:]).index(eos) + 1
    assert stop0 <= 8 and (out[0, stop0:] == 0).all()
    # pad defaults to the stop id; with every row stopped, the rest is all padding
    one = np.asarray(generate(params, CFG, PROMPTS[:1], NEW, key, temperature=0.0, eos_token_id=eos))
    np.testing.assert_array_equal(one[0, :stop0], alone[0][:stop0])
    assert (one[0, stop0:] == eos).all()


@pytest.mark.parametrize("new, use_cache", [(6, True), (6, False), (NEW, True)])
def test_prompts_of_different_lengths_give_the_tokens_they_give_alone(params, new, use_cache):
    # Left padding with a mask: the pad slots are never attended to and positions start at each row's first
    # real token.  new=NEW runs past block_size (the sliding window with padding).
    prompts = [[3, 1, 4], [1, 5, 9, 2, 6, 5, 3], [5], [8, 9, 7, 9, 3]]
    tokens, mask = gpt.pad_prompts(prompts, pad_token_id=11)
    np.testing.assert_array_equal(mask.sum(1), [3, 7, 1, 5])
    assert (tokens[~mask] == 11).all() and tokens[1].tolist() == prompts[1]
    out = np.asarray(generate(params, CFG, tokens, new, jax.random.key(0), temperature=0.0, prompt_mask=mask,
                              pad_token_id=11, use_cache=use_cache))
    for row, m, p in zip(out, mask, prompts, strict=True):
        np.testing.assert_array_equal(row[~np.concatenate([m, np.ones(new, bool)])], 11)
        # alone, generate is nanoGPT's greedy loop (test_greedy_matches_argmax_of_reference_model): compare with
        # that float64 numpy loop directly rather than compiling generate for each prompt length
        np.testing.assert_array_equal(row[(~m).sum():], _reference(params, p, new))


def test_half_crop_with_padding_matches_its_reference_loop(params):
    # crop="half" with padding: the crop points follow the padded length, and each row sees its real tokens
    # of the kept window at positions from 0.
    prompts = [[3, 1, 4], [1, 5, 9, 2, 6]]
    tokens, mask = gpt.pad_prompts(prompts)
    out = np.asarray(generate(params, CFG, tokens, 10, jax.random.key(0), temperature=0.0, prompt_mask=mask,
                              crop="half"))
    for b, p in enumerate(prompts):
        seq, start, pad, keep = list(tokens[b]), 0, 5 - len(p), CFG.block_size // 2
        for _ in range(10):
            seq.append(int(np.argmax(naive_forward(params, seq[max(start, pad):], CFG)[-1])))
            if len(seq) - start > CFG.block_size:
                start = len(seq) - keep
        np.testing.assert_array_equal(out[b], seq)


def test_traced_bad_values_give_the_error_token_not_a_silent_fallback(params, key):
    # Under jit the values cannot be refused eagerly: a temperature < 0 or NaN, a top_p outside (0, 1]
    # or a bad prompt id makes the row's tokens -1 (an id outside every vocabulary), never greedy output.
    f = jax.jit(lambda t, p, prompt: generate(params, CFG, prompt, 4, key, t, None, p))
    ok = np.asarray(f(0.8, 0.9, jnp.asarray(PROMPTS)))
    assert (ok[:, 5:] >= 0).all()
    for t, p in ((-1.0, 0.9), (np.nan, 0.9), (0.8, 1.5), (0.8, 0.0), (0.8, np.nan), (0.0, 1.5)):
        out = np.asarray(f(t, p, jnp.asarray(PROMPTS)))
        np.testing.assert_array_equal(out[:, 5:], -1, err_msg=f"temperature {t}, top_p {p}")
        np.testing.assert_array_equal(out[:, :5], PROMPTS)
    bad = np.asarray(f(0.8, 0.9, jnp.asarray(PROMPTS).at[1, 2].set(CFG.vocab_size)))
    np.testing.assert_array_equal(bad[1, 5:], -1)
    np.testing.assert_array_equal(bad[0], ok[0])  # the other row is untouched
    assert (np.asarray(sample_logits(jnp.array([[0.0, jnp.nan]]), key, 0.0)) == -1).all()
    z = np.asarray(filter_logits(jnp.ones((1, 4)), top_p=jnp.asarray(1.5)))
    assert np.isnan(z).all()


def test_generate_text_cuts_before_the_first_stop(params):
    # Oracle: the same generation without stops, decoded and cut by hand at the first stop in the new text.
    tok = gpt.CharTokenizer("abcdefghijklmnopqrs")  # 19 characters = CFG.vocab_size
    key = jax.random.key(4)
    full = gpt.generate_text(params, CFG, tok, "abc", 15, key, temperature=1.0)
    new = full[3:]
    one, two = new[4], new[6:8]  # a one-token stop (ends generation) and a two-token one (cut afterwards)
    for stop, at in ((one, new.index(one)), (two, new.index(two)), ([tok.encode(one)[0]], new.index(one)),
                     ([two, one], min(new.index(two), new.index(one)))):
        got = gpt.generate_text(params, CFG, tok, "abc", 15, key, temperature=1.0, stop=stop)
        assert got == full[:3 + at], stop
    assert gpt.generate_text(params, CFG, tok, "abc", 15, key, temperature=1.0, top_k=19) == full  # k >= V: off
    with pytest.raises(ValueError, match="stop"):
        gpt.generate_text(params, CFG, tok, "abc", 3, key, stop=[""])


def test_padded_window_and_cache_logits_equal_the_numpy_model_on_the_real_tokens(params):
    # Logits, not just greedy tokens (a tiny random model's argmax hardly depends on far context): with
    # left padding, each row's logits are the float64 numpy model's on its real tokens in the window/cache.
    from fungpt.gpt.generate import _window_logits

    S = CFG.block_size
    pad = np.array([3, 0, 8])
    buf = np.random.default_rng(9).integers(0, CFG.vocab_size, (3, 30))
    window_logits = jax.jit(_window_logits, static_argnums=3)
    for n in (9, S, S + 5, S + 11):
        got = np.asarray(window_logits(params, jnp.asarray(buf), n, CFG, jnp.asarray(pad, jnp.int32)))
        for b in range(3):
            real = list(buf[b, max(n - S, 0, pad[b]):n])
            np.testing.assert_allclose(got[b], naive_forward(params, real, CFG)[-1], rtol=1e-10, atol=1e-10)
    step = jax.jit(gpt.forward_cached, static_argnums=4)
    logits, cache = step(params, jnp.asarray(buf[:, :9]), gpt.init_cache(CFG, 3), 0, CFG, pad=pad)
    for t in range(9, S):
        for b in range(3):
            want = naive_forward(params, list(buf[b, pad[b]:t]), CFG)[-1]
            np.testing.assert_allclose(logits[b], want, rtol=1e-10, atol=1e-10)
        logits, cache = step(params, jnp.asarray(buf[:, t:t + 1]), cache, t, CFG, pad=pad)
