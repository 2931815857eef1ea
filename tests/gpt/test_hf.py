"""GPT-2 interop against a fixture written by transformers itself (tests/gpt/fixtures/make_fixture.py):
our logits on its weights must match transformers' logits; to_hf must write the same keys and shapes."""
import json
import pathlib

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

from fungpt import gpt

FIX = pathlib.Path(__file__).parent / "fixtures"
TINY = FIX / "tiny_gpt2"


@pytest.fixture(scope="module")
def tiny():
    return gpt.from_hf(TINY)


def test_logits_match_transformers(tiny):
    config, params = tiny
    ref = np.load(FIX / "tiny_gpt2_logits.npz")
    assert (config.n_layer, config.n_embd, config.n_head, config.vocab_size) == (2, 32, 2, 97)
    logits = gpt.forward(params, jnp.asarray(ref["tokens"]), config)
    chex.assert_type(logits, jnp.float32)
    np.testing.assert_allclose(logits, ref["logits"], atol=1e-4, rtol=0)


def test_to_hf_writes_what_transformers_writes(tiny, tmp_path):
    config, params = tiny
    gpt.to_hf(params, config, tmp_path)
    ours, theirs = load_file(tmp_path / "model.safetensors"), load_file(TINY / "model.safetensors")
    assert sorted(ours) == sorted(theirs)
    for k in theirs:
        assert ours[k].shape == theirs[k].shape and ours[k].dtype == theirs[k].dtype, k
        np.testing.assert_array_equal(ours[k], theirs[k], err_msg=k)
    ours_cfg, theirs_cfg = (json.loads((d / "config.json").read_text()) for d in (tmp_path, TINY))
    for field in ("model_type", "vocab_size", "n_positions", "n_embd", "n_layer", "n_head",
                  "activation_function", "layer_norm_epsilon", "tie_word_embeddings"):
        assert ours_cfg[field] == theirs_cfg[field], field
    config2, params2 = gpt.from_hf(tmp_path)
    assert config2 == config
    chex.assert_trees_all_equal(params2, params)


def test_round_trip_of_random_model(tmp_path, key):
    config = gpt.GPTConfig(vocab_size=11, block_size=8, n_layer=3, n_head=2, n_embd=8, activation="gelu")
    params = gpt.init_params(config, key)
    config2, params2 = gpt.from_hf(gpt.to_hf(params, config, tmp_path))
    assert config2 == config
    chex.assert_trees_all_equal(params2, params)


def test_original_gpt2_key_layout_loads(tiny, tmp_path):
    # The original `gpt2` upload: no "transformer." prefix, old attn.bias buffers, a tied lm_head.
    config, params = tiny
    sd = {k.removeprefix("transformer."): v for k, v in load_file(TINY / "model.safetensors").items()}
    sd["lm_head.weight"] = sd["wte.weight"]
    for i in range(config.n_layer):
        sd[f"h.{i}.attn.bias"] = np.tril(np.ones((1, 1, 24, 24), np.float32))
    save_file(sd, str(tmp_path / "model.safetensors"), metadata={"format": "pt"})
    (tmp_path / "config.json").write_text((TINY / "config.json").read_text())
    chex.assert_trees_all_equal(gpt.from_hf(tmp_path)[1], params)


def test_bad_checkpoints_are_refused(tiny, tmp_path):
    with pytest.raises(FileNotFoundError, match=r"config\.json"):
        gpt.from_hf(tmp_path)
    cfg = json.loads((TINY / "config.json").read_text())
    sd = load_file(TINY / "model.safetensors")
    (tmp_path / "config.json").write_text(json.dumps({**cfg, "model_type": "llama"}))
    save_file(sd, str(tmp_path / "model.safetensors"))
    with pytest.raises(ValueError, match="gpt2"):
        gpt.from_hf(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    save_file({**sd, "lm_head.weight": sd["transformer.wte.weight"] + 1}, str(tmp_path / "model.safetensors"))
    with pytest.raises(ValueError, match="untied"):
        gpt.from_hf(tmp_path)
    save_file({k: v for k, v in sd.items() if "h.1.mlp" not in k}, str(tmp_path / "model.safetensors"))
    with pytest.raises(ValueError, match="missing"):
        gpt.from_hf(tmp_path)
    config, params = tiny
    with pytest.raises(ValueError, match="do not fit the config"):
        gpt.to_hf(params, config.replace(n_embd=16), tmp_path / "x")


def test_bias_free_model_exports_zero_biases(tmp_path, key):
    config = gpt.GPTConfig(vocab_size=11, block_size=8, n_layer=1, n_head=2, n_embd=8, bias=False,
                           param_dtype="float32")
    params = gpt.init_params(config, key)
    config2, params2 = gpt.from_hf(gpt.to_hf(params, config, tmp_path))
    tokens = jnp.arange(8) % 11
    np.testing.assert_allclose(gpt.forward(params2, tokens, config2), gpt.forward(params, tokens, config),
                               rtol=1e-6, atol=1e-6)
    assert jax.tree_util.tree_structure(params2) != jax.tree_util.tree_structure(params)


def test_corrupt_or_mismatched_files_name_the_file_and_the_tensor(tmp_path):
    # Every refusal names the file; shapes are checked per tensor against config.json before stacking.
    cfg = json.loads((TINY / "config.json").read_text())
    sd = load_file(TINY / "model.safetensors")
    raw = (TINY / "model.safetensors").read_bytes()

    def refused(match, config=None, tensors=None, data=None):
        (tmp_path / "config.json").write_text(config if isinstance(config, str) else json.dumps(config or cfg))
        if data is not None:
            (tmp_path / "model.safetensors").write_bytes(data)
        else:
            save_file(tensors or sd, str(tmp_path / "model.safetensors"))
        with pytest.raises(ValueError, match=match) as e:
            gpt.from_hf(tmp_path)
        return str(e.value)

    assert "model.safetensors is corrupt or truncated" in refused("truncated", data=raw[: len(raw) // 2])
    assert "config.json" in refused("config.json", config="{not json")
    assert "config.json" in refused(r"lacks the GPT-2 fields \['n_embd'\]",
                                    config={k: v for k, v in cfg.items() if k != "n_embd"})
    key = "transformer.h.1.attn.c_attn.weight"
    flipped = {**sd, key: np.ascontiguousarray(sd[key].T)}
    refused(r"h\.1\.attn\.c_attn\.weight has shape \(96, 32\), config\.json implies \(32, 96\).*nn\.Linear",
            tensors=flipped)
    refused(r"wte\.weight has shape \(97, 32\), config\.json implies \(98, 32\)$", config={**cfg, "vocab_size": 98})
    # gelu_fast is the same function as gelu_new
    (tmp_path / "config.json").write_text(json.dumps({**cfg, "activation_function": "gelu_fast"}))
    save_file(sd, str(tmp_path / "model.safetensors"))
    assert gpt.from_hf(tmp_path)[0].activation == "gelu_tanh"


def _bpe():
    return gpt.BPETokenizer.from_gpt2_files(FIX / "tiny_bpe" / "vocab.json", FIX / "tiny_bpe" / "merges.txt")


def test_to_hf_writes_the_bpe_tokenizer_transformers_read(tmp_path, key):
    # tiny_bpe_ids.json holds transformers' GPT2Tokenizer ids on tiny_bpe's two files: the exported folder
    # must hold those very files, and reading them back must give transformers' ids.
    tok = _bpe()
    config = gpt.GPTConfig(vocab_size=tok.vocab_size, block_size=8, n_layer=1, n_head=2, n_embd=8)
    out = gpt.to_hf(gpt.init_params(config, key), config, tmp_path, tokenizer=tok)
    for name in ("vocab.json", "merges.txt"):
        assert (out / name).read_bytes() == (FIX / "tiny_bpe" / name).read_bytes(), name
    back = gpt.BPETokenizer.from_gpt2_files(out / "vocab.json", out / "merges.txt")
    for text, ids in json.loads((FIX / "tiny_bpe_ids.json").read_text(encoding="utf-8")).items():
        assert back.encode(text).tolist() == ids, text
    assert "GPT2TokenizerFast.from_pretrained" in (out / "README.md").read_text()
    with pytest.raises(ValueError, match="more than the model's vocab_size"):
        gpt.to_hf(gpt.init_params(config.replace(vocab_size=300), key), config.replace(vocab_size=300),
                  tmp_path / "small", tokenizer=tok)
    with pytest.raises(ValueError, match="pattern"):
        gpt.to_hf(gpt.init_params(config, key), config, tmp_path / "p",
                  tokenizer=gpt.BPETokenizer(tok.vocab, tok.merges, r"\S+"))


def test_to_hf_names_the_end_of_text_token_only_where_the_vocabulary_has_one(tmp_path, key):
    tok = _bpe()
    tok = gpt.BPETokenizer((*tok.vocab, b"<|endoftext|>"), tok.merges, tok.pattern)
    config = gpt.GPTConfig(vocab_size=tok.vocab_size, block_size=8, n_layer=1, n_head=2, n_embd=8)
    params = gpt.init_params(config, key)
    hf_config = json.loads((gpt.to_hf(params, config, tmp_path / "bpe", tokenizer=tok) / "config.json").read_text())
    assert hf_config["eos_token_id"] == hf_config["bos_token_id"] == tok.vocab_size - 1
    hf_config = json.loads((gpt.to_hf(params, config, tmp_path / "bare") / "config.json").read_text())
    assert hf_config["eos_token_id"] is None  # no tokenizer and not GPT-2's 50257 tokens: no such token


def test_to_hf_writes_a_char_tokenizer_and_says_how_to_load_it(tmp_path, key):
    tok = gpt.CharTokenizer.from_text("hello, world\n")
    config = gpt.GPTConfig(vocab_size=tok.vocab_size, block_size=8, n_layer=1, n_head=2, n_embd=8)
    out = gpt.to_hf(gpt.init_params(config, key), config, tmp_path, tokenizer=tok)
    assert gpt.load_tokenizer(out / "fungpt_tokenizer.json") == tok
    hf_config = json.loads((out / "config.json").read_text())
    assert hf_config["eos_token_id"] is None is hf_config["bos_token_id"]  # a char vocabulary has no <|endoftext|>
    assert not (out / "vocab.json").exists()  # GPT-2's byte-level reader would misread a char table
    readme = (out / "README.md").read_text()
    assert "fungpt_tokenizer.json" in readme and "load_tokenizer" in readme
    # the README's recipe without fungpt: chars[i] is token i
    chars = json.loads((out / "fungpt_tokenizer.json").read_text())["chars"]
    assert [chars.index(c) for c in "hello"] == tok.encode("hello").tolist()


def test_exported_folder_loads_in_transformers(tmp_path, key):
    # Only where transformers and torch are installed (not test dependencies): the fixture's logits check
    # and the tokenizer ids check above cover the same files without them.
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    tok = _bpe()
    config = gpt.GPTConfig(vocab_size=tok.vocab_size, block_size=16, n_layer=2, n_head=2, n_embd=16)
    params = gpt.init_params(config, key)
    gpt.to_hf(params, config, tmp_path, tokenizer=tok)
    model = transformers.GPT2LMHeadModel.from_pretrained(tmp_path).eval()
    # tiny_bpe has no <|endoftext|>: not GPT2Config's default 50256, which is outside this vocabulary
    assert model.config.eos_token_id is None is model.config.bos_token_id
    hf_tok = transformers.GPT2TokenizerFast.from_pretrained(tmp_path)
    text = "To be, or not to be: that is the question."
    ids = tok.encode(text)
    assert hf_tok(text)["input_ids"] == ids.tolist()
    with torch.no_grad():
        theirs = model(torch.tensor(ids[None, :16].astype(np.int64))).logits.numpy()
    np.testing.assert_allclose(gpt.forward(params, ids[None, :16], config), theirs, atol=1e-4, rtol=0)


def test_fungpt_export_and_sample_commands(tmp_path, key, capsys):
    # `fungpt export RUN_DIR --hf OUT` on a run folder written by the training code
    from fungpt import cli
    from fungpt.gpt import train

    run_dir = tmp_path / "run"
    cfg = train.config_from("baby", n_layer=1, n_head=2, n_embd=16, block_size=16, batch_size=2, max_iters=1,
                            eval_interval=1, eval_iters=1, sample_tokens=0, out_dir=str(run_dir))
    train.train(cfg, progress=False)
    capsys.readouterr()
    assert cli.main(["export", str(run_dir), "--hf", str(tmp_path / "hf")]) == 0
    assert "config.json" in capsys.readouterr().out
    run = train.load_run(run_dir)
    config, params = gpt.from_hf(tmp_path / "hf")
    chex.assert_trees_all_equal(params, run.params)
    assert config == run.model_config.replace(dropout=0.0, compute_dtype=None)  # HF has no compute dtype
    assert gpt.load_tokenizer(tmp_path / "hf" / "fungpt_tokenizer.json") == run.tokenizer
    assert cli.main(["export", str(tmp_path / "nothing"), "--hf", str(tmp_path / "x")]) == 2
    # and `fungpt sample --prompt-file --stop --top-k 0` is generate_text with those arguments
    (tmp_path / "prompt.txt").write_text("ROMEO:\nO", encoding="utf-8")
    capsys.readouterr()
    argv = ["sample", str(run_dir), "--prompt-file", str(tmp_path / "prompt.txt"), "--max-new-tokens", "20",
            "--stop", "e", "--stop", "th", "--top-k", "0", "--seed", "1"]
    assert cli.main(argv) == 0
    want = gpt.generate_text(run.params, run.model_config, run.tokenizer, "ROMEO:\nO", 20,
                             jax.random.fold_in(jax.random.key(1), 0), 0.8, None, stop=["e", "th"])
    assert capsys.readouterr().out == want + "\n"
