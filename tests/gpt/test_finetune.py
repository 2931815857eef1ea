"""Fine-tuning from GPT-2 weights (fungpt.gpt.finetune) and the GPT-2 presets (fungpt.gpt.presets).

Oracles: transformers' own logits on the tiny random GPT-2 fixture (tests/gpt/fixtures, written by
transformers' save_pretrained), turned into a cross-entropy in float64 numpy; Hugging Face's published
parameter counts of gpt2 / gpt2-medium; nanoGPT's tokens per step.
"""
import pathlib
import shutil

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fungpt import gpt
from fungpt.gpt import finetune
from fungpt.gpt import sharding as S
from fungpt.gpt import train as T
from fungpt.gpt.data import get_batch, load_text
from fungpt.gpt.presets import FINETUNE_PRESET, GPT2_PRESETS

FIX = pathlib.Path(__file__).parent / "fixtures"
TINY, TINY_BPE = FIX / "tiny_gpt2", FIX / "tiny_bpe"
LR = 1e-2  # a constant rate that moves a 1-layer random model in 8 steps (the 0.3-nat drop below is 0.64)


def _hf_loss(logits, tokens):
    # transformers' GPT2LMHeadModel(labels=tokens).loss: mean CE of logits[:, :-1] against tokens[:, 1:], float64
    z = np.asarray(logits, np.float64)[:, :-1]
    y = np.asarray(tokens)[:, 1:]
    m = z.max(-1, keepdims=True)
    lse = (m + np.log(np.exp(z - m).sum(-1, keepdims=True)))[..., 0]
    return float(np.mean(lse - np.take_along_axis(z, y[..., None], -1)[..., 0]))


def test_loss_at_step_zero_equals_transformers_loss():
    config, params, tok = finetune.init_from(TINY)
    assert tok is None  # the fixture has no tokenizer files
    cfg = T.config_from("baby", **finetune.train_fields(config), dropout=0.0)
    model, mcfg = T.gpt_model(cfg, config.vocab_size)  # the loss the training step differentiates
    assert (mcfg.n_layer, mcfg.n_head, mcfg.n_embd, mcfg.block_size, mcfg.activation, mcfg.layer_norm_epsilon) == (
        config.n_layer, config.n_head, config.n_embd, config.block_size, config.activation, config.layer_norm_epsilon)
    ref = np.load(FIX / "tiny_gpt2_logits.npz")
    tokens = ref["tokens"].astype(np.int32)
    ours = float(model.loss(params, jnp.asarray(tokens[:, :-1]), jnp.asarray(tokens[:, 1:]), None))
    theirs = _hf_loss(ref["logits"], tokens)
    assert abs(ours - theirs) <= 1e-4, (ours, theirs)
    assert 3.0 < theirs < 8.0  # a real loss on 97 tokens, not a degenerate zero


@pytest.fixture(scope="module")
def hf_dir(tmp_path_factory):
    # A random GPT-2 whose vocabulary is the tiny 400-token BPE: the HF layout with tokenizer files.
    d = tmp_path_factory.mktemp("hf400")
    config = gpt.GPTConfig(vocab_size=400, block_size=16, n_layer=1, n_head=2, n_embd=16)
    gpt.to_hf(gpt.init_params(config, jax.random.key(3)), config, d)
    for f in ("vocab.json", "merges.txt"):
        shutil.copy(TINY_BPE / f, d / f)
    return d


def test_eight_finetune_steps_lower_the_loss(hf_dir):
    config, params, tok = finetune.init_from(hf_dir)
    assert isinstance(tok, gpt.BPETokenizer) and tok.vocab_size == 400
    ids = np.asarray(tok.encode(load_text()[:30_000]), np.int32)
    fields = finetune.train_fields(config, tok)
    assert fields["tokenizer"] == "bpe" and fields["vocab_size"] == 400
    # the finetune preset, with a batch and rate a 1-layer random model moves in 8 steps
    cfg = T.config_from("baby", **{**FINETUNE_PRESET, **fields, "batch_size": 4, "grad_accum": 2, "learning_rate": LR,
                           "min_lr": LR})
    model, _ = T.gpt_model(cfg, config.vocab_size)
    optimizer, schedule = T.make_optimizer(cfg)
    assert float(schedule(0)) == float(schedule(19)) == LR  # constant rate, as nanoGPT's decay_lr=False
    mesh = S.make_mesh(1, 1, jax.devices()[:1])
    step = S.make_sharded_train_step(model.loss, optimizer, mesh, batch_size=cfg.batch_size,
                                     block_size=cfg.model.block_size, grad_accum=cfg.grad_accum)
    train_ids, (xv, yv) = jnp.asarray(ids[:-2000]), get_batch(jax.random.key(9), jnp.asarray(ids[-2000:]), 16, 16)
    k_data, k_drop = jax.random.key(1), jax.random.key(2)
    state = T.TrainState(params, optimizer.init(params))
    before = float(model.loss(params, xv, yv, None))
    x0, y0 = get_batch(jax.random.fold_in(k_data, 0), train_ids, 8, 16)
    first_batch = float(np.mean([model.loss(params, x0[a * 4:(a + 1) * 4], y0[a * 4:(a + 1) * 4], None)
                                 for a in range(2)]))
    losses = []
    for s in range(8):
        state, loss, _, ok = step(state, jnp.int32(s), train_ids, k_data, k_drop)
        assert bool(ok)
        losses.append(float(loss))
    assert abs(losses[0] - first_batch) <= 1e-5  # step 0 trains on the weights as loaded
    after = float(model.loss(state.params, xv, yv, None))
    assert after < before - 0.3, (before, after, losses)


def test_init_from_refuses_what_does_not_fit(tmp_path, hf_dir):
    mixed = tmp_path / "mixed"
    shutil.copytree(TINY, mixed)
    shutil.copy(TINY_BPE / "vocab.json", mixed / "vocab.json")
    with pytest.raises(FileNotFoundError, match=r"merges\.txt is missing"):
        finetune.init_from(mixed)
    shutil.copy(TINY_BPE / "merges.txt", mixed / "merges.txt")
    with pytest.raises(ValueError, match="400 tokens but the model only 97"):
        finetune.init_from(mixed)
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="neither a GPT-2 checkpoint"):
        finetune.init_from(tmp_path / "empty")
    with pytest.raises(FileNotFoundError, match="no such folder"):
        finetune.init_from(tmp_path / "nope")
    with pytest.raises(ValueError, match="activation"):
        finetune.train_fields(gpt.GPTConfig(activation="gelu"))
    assert finetune.source_record(hf_dir) == {"init_from": str(hf_dir.resolve()), "kind": "hf"}


def test_init_from_a_fungpt_run(tmp_path):
    data = tmp_path / "tiny.txt"
    data.write_text(load_text()[:5000], encoding="utf-8")
    cfg = T.config_from("baby", n_layer=1, n_head=2, n_embd=16, block_size=8, batch_size=2, max_iters=2,
                        warmup_iters=0, lr_decay_iters=3, eval_interval=2, eval_iters=1, sample_tokens=0,
                        data=str(data), out_dir=str(tmp_path / "run"))
    T.train(cfg, progress=False, print_fn=None)
    config, params, tok = finetune.init_from(tmp_path / "run")
    run = T.load_run(tmp_path / "run")
    assert (config.n_layer, config.n_embd, config.vocab_size) == (1, 16, run.tokenizer.vocab_size)
    jax.tree.map(np.testing.assert_array_equal, params, run.params)
    assert tok.to_dict() == run.tokenizer.to_dict()
    assert finetune.train_fields(config, tok)["tokenizer"] == "char"
    assert finetune.source_record(tmp_path / "run")["kind"] == "run"


@pytest.mark.parametrize("name, n_params", [("gpt2", 124_439_808), ("gpt2-medium", 354_823_168)])
def test_gpt2_presets_are_gpt2(name, n_params):
    # Hugging Face's model cards: gpt2 has 124,439,808 parameters, gpt2-medium 354,823,168 (tied lm_head).
    cfg = T.config_from("baby", **GPT2_PRESETS[name])
    _, mcfg = T.gpt_model(cfg, cfg.model.vocab_size)
    shapes = jax.eval_shape(lambda: gpt.init_params(mcfg, jax.random.key(0)))
    assert sum(int(np.prod(x.shape)) for x in jax.tree.leaves(shapes)) == n_params
    assert cfg.batch_size * cfg.grad_accum * cfg.model.block_size == 12 * 5 * 8 * 1024  # nanoGPT's 491,520 tokens/step
    assert (cfg.learning_rate, cfg.min_lr, cfg.beta2, cfg.warmup_iters, cfg.max_iters) == (6e-4, 6e-5, 0.95, 2000,
                                                                                         600_000)


def test_finetune_preset_without_init_from_is_refused_by_the_api_and_the_cli(tmp_path, capsys):
    from fungpt import cli

    msg = "the finetune preset starts from trained weights: give init_from (--init-from DIR)"
    with pytest.raises(ValueError, match=msg.replace("(", r"\(").replace(")", r"\)")):
        T.config_from("finetune", max_iters=3)
    config_file = tmp_path / "run.json"  # a config file without init_from does not supply it either
    config_file.write_text('{"max_iters": 3}')
    with pytest.raises(ValueError, match="finetune preset starts from trained weights"):
        T.config_from("finetune", config_file)
    out = tmp_path / "ft"
    assert cli.main(["train", "--preset", "finetune", "--out-dir", str(out), "--no-progress"]) == 2
    assert capsys.readouterr().err.strip() == f"fungpt train: error: {msg}, a GPT-2 folder in the Hugging Face " \
                                              f"layout or a fungpt run folder"
    assert not out.exists()  # refused before anything was written
    # with the weights named (flag or config file), the preset is what it always was
    assert T.config_from("finetune", init_from=str(TINY)).replace(init_from=None) == T.PRESETS["finetune"]
    config_file.write_text(f'{{"init_from": "{TINY}"}}')
    assert T.config_from("finetune", config_file).init_from == str(TINY)
