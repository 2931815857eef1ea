"""The training loop: a step against hand-written AdamW in float64 numpy, exact resume after Ctrl-C,
non-finite detection, refusal of bad checkpoints/configs/data, metrics, evaluation vs a naive loop.

All runs share one tiny config (1 layer, 16 dims, block 8, batch 4), so the jitted step compiles once per
process (tests/test_cli.py and the experiments' --quick modes use the same config); gradient accumulation
and dropout are checked against the equations in test_two_steps_match_hand_written_adamw.
"""
import hashlib
import json
import math
import os
import pathlib
import re
import signal

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fungpt.gpt import checkpoint as ck
from fungpt.gpt import data
from fungpt.gpt import model as gpt
from fungpt.gpt import train as T

TINY = dict(n_layer=1, n_head=2, n_embd=16, block_size=8, batch_size=4, grad_accum=1, dropout=0.0,
            max_iters=6, warmup_iters=2, lr_decay_iters=6, eval_interval=3, eval_iters=2, ckpt_interval=100,
            log_interval=2, sample_tokens=0)
TEXT_CHARS = 20_000


@pytest.fixture(scope="module")
def text_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "tiny.txt"
    path.write_text(data.load_text()[:TEXT_CHARS], encoding="utf-8")
    return str(path)


def tiny(text_file, out_dir, **kw):
    return T.config_from("baby", data=text_file, out_dir=str(out_dir), **{**TINY, **kw})


def _digest(folder: pathlib.Path) -> dict:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


# --- configuration ---------------------------------------------------------------------------


def test_presets_files_and_flags_in_order(tmp_path):
    assert T.config_from("baby") == T.TrainConfig()
    small = T.config_from("small")
    m = small.model
    assert (m.n_layer, m.n_head, m.n_embd, m.block_size, small.batch_size) == (6, 6, 384, 256, 64)
    (tmp_path / "a.toml").write_text('n_layer = 2\nlearning_rate = 3e-4\ngrad = "jax"\n')
    (tmp_path / "b.json").write_text(json.dumps({"n_layer": 3, "bias": False}))
    c = T.config_from("small", tmp_path / "a.toml", learning_rate=1e-2)
    assert (c.model.n_layer, c.learning_rate, c.grad, c.model.n_embd) == (2, 1e-2, "jax", 384)  # flags > file > preset
    assert T.config_from("baby", tmp_path / "b.json").replace(n_layer=4, bias=True) == T.TrainConfig()


@pytest.mark.parametrize(
    ("kw", "error", "match"),
    [(dict(n_layer=0), ValueError, "n_layer must be a positive int"),
     (dict(n_embd=100, n_head=3), ValueError, "divisible"),
     (dict(dtype="float16"), ValueError, r"dtype \(the model's compute_dtype\) must be one of"),
     (dict(grad="torch"), ValueError, "grad must be one of"),
     (dict(dropout=1.0), ValueError, "dropout"),
     (dict(warmup_iters=300, lr_decay_iters=200), ValueError, "lr_decay_iters"),
     (dict(batch_size=2.5), TypeError, "batch_size must be int"),
     (dict(bias="yes"), TypeError, "bias must be a bool"),
     (dict(n_layers=2), ValueError, r"unknown config fields \['n_layers'\] in the overrides \(did you mean: "
                                    r"n_layers -> n_layer\)"),
     # the optimizer's floats: refused by the config, before any data is read (a negative rate used to
     # train by gradient ascent; NaN/inf stopped at step 2 as a "non-finite loss")
     (dict(learning_rate=-1e-3), ValueError, "learning_rate must be a finite number > 0"),
     (dict(learning_rate=float("nan")), ValueError, "learning_rate must be a finite number > 0"),
     (dict(learning_rate=float("inf")), ValueError, "learning_rate must be a finite number > 0"),
     (dict(min_lr=-1e-4), ValueError, "min_lr must be a finite number >= 0"),
     (dict(beta2=1.0), ValueError, r"beta2 must be in \[0, 1\)"),
     (dict(beta1=float("nan")), ValueError, r"beta1 must be in \[0, 1\)"),
     (dict(weight_decay=-0.1), ValueError, "weight_decay must be a finite number >= 0"),
     (dict(grad_clip=0.0), ValueError, "grad_clip must be a finite number > 0"),
     (dict(tokenizer="bpe", vocab_size=100), ValueError, "vocab_size must be >= 256 for the bpe tokenizer")],
)
def test_bad_configs_are_refused(kw, error, match):
    with pytest.raises(error, match=match):
        T.config_from("baby", **kw)


def test_every_model_field_is_a_flag_and_a_config_key(tmp_path, monkeypatch, capsys):
    import dataclasses

    from fungpt import cli

    with pytest.raises(SystemExit):
        cli.main(["train", "--help"])
    help_text = capsys.readouterr().out
    for f in dataclasses.fields(gpt.GPTConfig):
        assert f"--{f.name.replace('_', '-')}" in help_text, f.name
    (tmp_path / "m.toml").write_text('batch_size = 3\n[model]\nactivation = "gelu"\nn_layer = 2\n')
    c = T.config_from("baby", tmp_path / "m.toml", layer_norm_epsilon=1e-6)
    assert (c.model.activation, c.model.n_layer, c.model.layer_norm_epsilon, c.batch_size) == ("gelu", 2, 1e-6, 3)
    assert c.model.scan_unroll == 2  # the preset unrolled all its layers: so does the new depth
    seen = {}

    def fake_train(cfg, resume=None, progress=True, mesh=None):
        seen["cfg"] = cfg
        return T.TrainResult(tmp_path, 1, [], [], False, None)

    monkeypatch.setattr(T, "train", fake_train)
    cli.main(["train", "--activation", "gelu", "--layer-norm-epsilon", "1e-6", "--dtype", "bfloat16",
              "--out-dir", str(tmp_path / "r")])
    m = seen["cfg"].model
    assert (m.activation, m.layer_norm_epsilon, m.compute_dtype) == ("gelu", 1e-6, "bfloat16")
    # a checkpoint's flat config (format 1) reads as the nested one
    flat = {k: v for k, v in c.to_dict().items() if k != "model"} | {
        k: v for k, v in c.model.to_dict().items() if k not in ("compute_dtype", "param_dtype")}
    assert T.config_from_dict(flat | {"dtype": "float32", "scan_unroll": 0}) == c.replace(dtype="float32")


def test_bad_config_files_are_refused(tmp_path):
    (tmp_path / "bad.toml").write_text("n_layer = = 2")
    with pytest.raises(ValueError, match="not valid TOML"):
        T.config_from("baby", tmp_path / "bad.toml")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        T.config_from("baby", tmp_path / "missing.json")
    with pytest.raises(ValueError, match="unknown preset"):
        T.config_from("huge")


def test_decay_mask_is_nanogpts_two_dimensional_rule():
    cfg = gpt.GPTConfig(vocab_size=11, block_size=8, n_layer=2, n_head=2, n_embd=16)
    shapes = jax.eval_shape(lambda: gpt.init_params(cfg, jax.random.key(0)))
    mask = T.decay_mask(shapes)
    # nanoGPT decays every parameter with dim >= 2 of the *per-layer* model; our blocks carry a layer axis.
    for path, leaf in jax.tree_util.tree_flatten_with_path(shapes)[0]:
        stacked = path[0].key == "h"
        want = leaf.ndim - stacked >= 2
        got = mask
        for k in path:
            got = got[k.key]
        assert got is want, jax.tree_util.keystr(path)


# --- one step against the equations ------------------------------------------------------------


def _nanogpt_lr(it, c):
    if it < c.warmup_iters:
        return c.learning_rate * (it + 1) / (c.warmup_iters + 1)
    if it > c.lr_decay_iters:
        return c.min_lr
    ratio = (it - c.warmup_iters) / (c.lr_decay_iters - c.warmup_iters)
    return c.min_lr + 0.5 * (1.0 + math.cos(math.pi * ratio)) * (c.learning_rate - c.min_lr)


@pytest.mark.parametrize(("grad", "extra"), [("fungpt", dict(grad_accum=2, dropout=0.1)), ("jax", {})],
                         ids=["fungpt-accumulate-dropout", "jax"])
def test_two_steps_match_hand_written_adamw(text_file, tmp_path, grad, extra):
    cfg = tiny(text_file, tmp_path, grad=grad, **extra)
    tok, train_np, _ = T.prepare_data(cfg)
    mesh = T.make_mesh(jax.devices()[:1])
    fns = T.compiled_functions(T.step_fields(cfg), tok.vocab_size, mesh)
    k_init, k_data, k_drop, _, _ = T.run_keys(cfg.seed)
    params = fns.init(k_init)
    ref = jax.tree.map(lambda p: np.asarray(p, np.float64), params)
    state = T.TrainState(params, fns.opt_init(params))
    ids = jnp.asarray(train_np)

    _, mcfg = T.gpt_model(cfg, tok.vocab_size)
    oracle = jax.jit(jax.value_and_grad(lambda p, x, y, k: gpt.loss(p, x, y, mcfg, key=k, train=mcfg.dropout > 0)))
    decay = {"wte", "wpe", "c_attn", "c_proj", "c_fc"}
    m = jax.tree.map(np.zeros_like, ref)
    v = jax.tree.map(np.zeros_like, ref)
    A, B = cfg.grad_accum, cfg.batch_size
    for s in range(2):
        x, y = data.get_batch(jax.random.fold_in(k_data, s), ids, A * B, cfg.model.block_size)
        keys = jax.random.split(jax.random.fold_in(k_drop, s), A)
        p32 = jax.tree.map(lambda a: jnp.asarray(a, jnp.float32), ref)
        outs = [oracle(p32, x[a * B:(a + 1) * B], y[a * B:(a + 1) * B], keys[a]) for a in range(A)]
        ref_loss = np.mean([float(o[0]) for o in outs])
        g = jax.tree.map(lambda *gs: np.mean([np.asarray(x, np.float64) for x in gs], axis=0), *[o[1] for o in outs])
        norm = math.sqrt(sum(float(np.sum(x * x)) for x in jax.tree.leaves(g)))
        g = jax.tree.map(lambda x: x * min(1.0, cfg.grad_clip / (norm + 1e-6)), g)  # torch clip_grad_norm_
        lr, t = _nanogpt_lr(s, cfg), s + 1
        m = jax.tree.map(lambda m_, g_: cfg.beta1 * m_ + (1 - cfg.beta1) * g_, m, g)
        v = jax.tree.map(lambda v_, g_: cfg.beta2 * v_ + (1 - cfg.beta2) * g_ * g_, v, g)

        def update(path, p, m_, v_, lr=lr, t=t):
            wd = cfg.weight_decay if path[-1].key == "weight" and path[-2].key in decay else 0.0
            adam = (m_ / (1 - cfg.beta1**t)) / (np.sqrt(v_ / (1 - cfg.beta2**t)) + 1e-8)
            return p * (1 - lr * wd) - lr * adam  # torch.optim.AdamW

        ref = jax.tree_util.tree_map_with_path(update, ref, m, v)
        state, loss, gnorm, ok = fns.step(state, jnp.int32(s), ids, k_data, k_drop)
        assert bool(ok)
        np.testing.assert_allclose(float(loss), ref_loss, rtol=1e-5)
        np.testing.assert_allclose(float(gnorm), norm, rtol=1e-4)
    chex.assert_trees_all_close(jax.tree.map(lambda a: np.asarray(a, np.float64), state.params), ref,
                                rtol=1e-4, atol=1e-6)
    chex.assert_trees_all_equal_dtypes(state.params, params)


# --- a whole run, interrupted and resumed ------------------------------------------------------


@pytest.fixture(scope="module")
def runs(text_file, tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    full = T.train(tiny(text_file, root / "full"), progress=False)
    stops = []

    def ctrl_c(step, loss):
        if step == 3:
            os.kill(os.getpid(), signal.SIGINT)  # the real signal: the handler must turn it into a clean stop
        stops.append(step)

    part = T.train(tiny(text_file, root / "split"), progress=False, callback=ctrl_c)
    rest = T.train(tiny(text_file, root / "split"), resume=root / "split", progress=False)
    return full, part, rest


def _templates(run_dir):
    # shape templates of a run's parameters and optimizer state, from its saved config
    meta = ck.read_meta(run_dir)
    cfg = T.config_from_dict(meta["config"])
    fns = T.compiled_functions(T.step_fields(cfg), T.tokenizer_from_dict(meta["tokenizer"]).vocab_size, T.make_mesh())
    like = jax.eval_shape(fns.init, jax.random.key(0))
    return like, jax.eval_shape(fns.opt_init, like), meta


def test_ctrl_c_saves_a_checkpoint_and_stops(runs):
    _, part, _ = runs
    assert part.interrupted
    assert 3 <= part.step < TINY["max_iters"]
    assert ck.read_meta(part.run_dir)["step"] >= part.step  # the resumed run has since moved on
    assert len(part.losses) == part.step


def test_resume_is_bit_exact(runs):
    full, part, rest = runs
    assert not full.interrupted and not rest.interrupted
    assert full.step == rest.step == TINY["max_iters"]
    assert part.losses + rest.losses == full.losses  # exact float equality, step by step
    assert [e for e in part.evals + rest.evals] == full.evals
    like, opt_like, _ = _templates(full.run_dir)
    a = ck.load_checkpoint(full.run_dir, like, opt_like)
    b = ck.load_checkpoint(rest.run_dir, like, opt_like)
    chex.assert_trees_all_equal(a.params, b.params)
    chex.assert_trees_all_equal(a.opt_state, b.opt_state)


def test_metrics_log_and_loss_curve(runs):
    full, _, _ = runs
    rows = [json.loads(line) for line in (full.run_dir / "metrics.jsonl").read_text().splitlines()]
    train_rows = [r for r in rows if "loss" in r]
    eval_rows = [r for r in rows if "val_loss" in r]
    assert [r["step"] for r in train_rows] == list(range(TINY["log_interval"], TINY["max_iters"] + 1, 2))
    assert [r["loss"] for r in train_rows] == full.losses[1::2]
    assert [(r["step"], r["train_loss"], r["val_loss"]) for r in eval_rows] == full.evals
    for r in eval_rows:
        assert r["val_ppl"] == pytest.approx(math.exp(r["val_loss"]), rel=1e-12)
    for r in train_rows:
        assert r["lr"] == pytest.approx(_nanogpt_lr(r["step"] - 1, T.config_from("baby", **TINY)), rel=1e-6)
    assert (full.run_dir / "loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert 2.5 < full.losses[-1] < full.losses[0] + 0.1  # it learns something, starting near log(vocab)


def test_evaluate_text_matches_a_naive_window_loop(runs):
    full, _, _ = runs
    run = T.load_run(full.run_dir)
    text = data.load_text()[50_000:50_500]
    loss, ppl, n, bpc = T.evaluate_text(run, text, batch_size=8)
    ids = run.tokenizer.encode(text)
    Tb = run.config.model.block_size
    # the default stride T: disjoint windows, then one ending at the text's end for the targets they left
    starts = [*range(0, len(ids) - 1 - Tb, Tb), len(ids) - 1 - Tb]
    one = jax.jit(lambda x: jax.nn.log_softmax(gpt.forward(run.params, x, run.model_config)))  # one window: (T, V)
    nll, done = [], 0
    for s in starts:
        logp = np.asarray(one(jnp.asarray(ids[s:s + Tb])), np.float64)
        nll += [-logp[j, ids[s + j + 1]] for j in range(Tb) if s + j + 1 > done]
        done = s + Tb
    assert n == len(ids) - 1 == len(nll)
    np.testing.assert_allclose(loss, np.mean(nll), rtol=1e-5)
    np.testing.assert_allclose(ppl, math.exp(np.mean(nll)), rtol=1e-5)
    np.testing.assert_allclose(bpc, np.mean(nll) / math.log(2), rtol=1e-5)  # a character model: tokens = chars
    # a sliding window, stride 2: target t is scored from the history ids[s(t):t], s(t) the first window start
    # (0, 2, ..., 50, then 51 to end at token 59) whose window holds t (read off a causal model's window at s(t))
    slid = T.evaluate_text(run, text[:60], batch_size=8, stride=2)
    starts = [*range(0, 51, 2), 51]
    s_of = [min(s for s in starts if s < t <= s + Tb) for t in range(1, 60)]
    hist = [np.asarray(one(jnp.asarray(ids[s:s + Tb])))[t - s - 1, ids[t]]
            for t, s in zip(range(1, 60), s_of, strict=True)]
    assert slid.tokens == 59 and min(t - s for t, s in zip(range(Tb + 1, 60), s_of[Tb:], strict=True)) == Tb - 1
    np.testing.assert_allclose(slid.loss, -np.mean(np.asarray(hist, np.float64)), rtol=1e-5)


# --- refusals --------------------------------------------------------------------------------


def test_non_finite_loss_stops_naming_the_step(runs, tmp_path, text_file):
    full, _, _ = runs
    run_dir = tmp_path / "nan"
    cfg = tiny(text_file, run_dir)
    like, opt_like, meta = _templates(full.run_dir)
    good = ck.load_checkpoint(full.run_dir, like, opt_like)
    bad = jax.tree.map(np.array, good.params)
    bad["ln_f"]["weight"][0] = np.nan
    ck.save_checkpoint(run_dir, 4, bad, good.opt_state, good.key, meta["config"] | {"out_dir": str(run_dir)},
                       meta["tokenizer"])
    before = _digest(run_dir / "ckpt-0000004")
    with pytest.raises(T.NonFiniteError, match="step 5: non-finite loss"):
        T.train(cfg, resume=run_dir, progress=False)
    assert (run_dir / "latest").read_text().strip() == "ckpt-0000004"
    assert _digest(run_dir / "ckpt-0000004") == before


def test_a_corrupt_latest_checkpoint_falls_back_to_the_previous_one(runs, tmp_path, text_file, capfd):
    # ckpt-0000006 truncated: resume warns (naming both) and replays from ckpt-0000000, bit for bit.
    import shutil

    full, _, _ = runs
    run_dir = tmp_path / "copy"
    shutil.copytree(full.run_dir, run_dir)
    assert sorted(p.name for p in run_dir.glob("ckpt-*")) == ["ckpt-0000000", "ckpt-0000006"]
    p = run_dir / "ckpt-0000006" / "model.safetensors"
    p.write_bytes(p.read_bytes()[:-10])
    res = T.train(tiny(text_file, run_dir, max_iters=6), resume=run_dir, progress=False, print_fn=None)
    err = capfd.readouterr().err
    assert re.search(r"warning: .*latest names ckpt-0000006, which is not a complete checkpoint .*corrupt or "
                     r"truncated.*; using .*ckpt-0000000, the newest complete checkpoint", err), err
    assert len(err.strip().splitlines()) == 1
    assert res.losses == full.losses and res.evals == full.evals
    assert ck.read_meta(run_dir)["step"] == 6 and (run_dir / "latest").read_text() == "ckpt-0000006\n"


def test_incompatible_config_and_existing_run_are_refused(runs, text_file):
    full, _, _ = runs
    with pytest.raises(ck.CheckpointError, match="n_embd: checkpoint 16 vs requested 32"):
        T.train(tiny(text_file, full.run_dir, n_embd=32), resume=full.run_dir, progress=False)
    with pytest.raises(ValueError, match="already holds a run"):
        T.train(tiny(text_file, full.run_dir), progress=False)


def test_min_lr_above_the_learning_rate_is_refused_by_train(tmp_path, text_file):
    # `--learning-rate 5e-5` alone kept min_lr 1e-4: the "decay" raised the rate from 5e-5 to 1e-4.
    with pytest.raises(ValueError, match=r"min_lr \(0.0001\) must not exceed learning_rate \(5e-05\)"):
        T.train(tiny(text_file, tmp_path / "r", learning_rate=5e-5), progress=False)
    assert not (tmp_path / "r").exists()


def test_resume_of_a_finished_run_is_refused_and_writes_nothing(runs, tmp_path, text_file):
    # It used to re-save the last checkpoint (with the new max_iters in its state.json), redraw loss.png and
    # print "done" without a step; max_iters below the saved step did the same.
    import shutil

    full, _, _ = runs
    run_dir = tmp_path / "done"
    shutil.copytree(full.run_dir, run_dir)
    before = _digest(run_dir)
    for max_iters in (TINY["max_iters"], 3):
        with pytest.raises(ValueError, match=f"already at step 6 \\(max_iters {max_iters}\\); pass a larger"):
            T.train(tiny(text_file, run_dir, max_iters=max_iters), resume=run_dir, progress=False)
    # The latest checkpoint folder names its run (same refusal, naming the run directory) ...
    with pytest.raises(ValueError, match=f"^{re.escape(str(run_dir))} is already at step 6"):
        T.train(tiny(text_file, run_dir), resume=run_dir / "ckpt-0000006", progress=False)
    # ... an older one is refused: continuing it in place wrote ckpt-*/latest inside the checkpoint folder.
    shutil.copytree(run_dir / "ckpt-0000006", run_dir / "ckpt-0000003")
    before = _digest(run_dir)
    with pytest.raises(ck.CheckpointError, match="not the latest of its run; --resume takes a run directory"):
        T.train(tiny(text_file, run_dir, max_iters=8), resume=run_dir / "ckpt-0000003", progress=False)
    assert _digest(run_dir) == before


def test_a_new_run_never_writes_into_a_non_empty_folder(tmp_path, text_file):
    # A run killed before its first checkpoint leaves metrics.jsonl and no `latest`; a user's folder holds
    # their own files. A new run used to append to / overwrite metrics.jsonl and loss.png there.
    for name, content in (("metrics.jsonl", b'{"step": 10, "loss": 4.0}\n'), ("loss.png", b"mine")):
        folder = tmp_path / name
        folder.mkdir()
        (folder / name).write_bytes(content)
        with pytest.raises(ValueError, match="already exists and is not an empty folder"):
            T.train(tiny(text_file, folder), progress=False)
        assert _digest(folder) == {name: hashlib.sha256(content).hexdigest()}
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match="not an empty folder"):
        T.train(tiny(text_file, tmp_path / "file"), progress=False)


def test_metrics_after_a_kill_and_resume_give_the_uninterrupted_curves(runs, tmp_path, text_file):
    # Killed after the checkpoint of step 3 (its later log lines written, the last one cut short), then
    # resumed: the replayed steps are logged again. The curves must be the uninterrupted run's, and the
    # resumed run's records must not be glued onto the cut line.
    import shutil

    full, part, _ = runs
    run_dir = tmp_path / "killed"
    shutil.copytree(part.run_dir, run_dir)  # ckpt-0000003 (Ctrl-C) and ckpt-0000006 (the resume)
    shutil.rmtree(run_dir / "ckpt-0000006")
    (run_dir / "latest").write_text("ckpt-0000003\n")
    with open(run_dir / "metrics.jsonl", "a") as f:
        f.write('{"step": 7, "lo')
    n_before = len((run_dir / "metrics.jsonl").read_text().splitlines())
    res = T.train(tiny(text_file, run_dir), resume=run_dir, progress=False)
    assert res.losses == full.losses[3:]
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == n_before + 3 and all(json.loads(x)["step"] in (4, 6) for x in lines[n_before:])
    rows = [json.loads(x) for x in (full.run_dir / "metrics.jsonl").read_text().splitlines()]
    want = ([(r["step"], r["loss"]) for r in rows if "loss" in r], [(r["step"], r["val_loss"]) for r in rows
                                                                    if "val_loss" in r])
    assert T.curves(run_dir / "metrics.jsonl") == want
    assert (run_dir / "loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_non_finite_first_step_names_the_step_0_checkpoint(tmp_path, text_file):
    # The message used to promise "the last good checkpoint in DIR is kept" when there was none; now the
    # initial state is checkpointed before the first step, and the message names that one.
    model = T.Model(lambda key: {"w": jnp.ones((2, 2), jnp.float32)},
                    lambda p, x, y, key: jnp.sum(p["w"]) * jnp.float32(np.nan))
    with pytest.raises(T.NonFiniteError, match=r"step 1: non-finite loss .*checkpoint \(step 0\) in .* is kept"):
        T.train(tiny(text_file, tmp_path / "r"), model=model, progress=False, print_fn=None)
    assert (tmp_path / "r" / "latest").read_text() == "ckpt-0000000\n"


def test_evaluate_text_refuses_a_bad_batch_size(runs):
    run = T.load_run(runs[0].run_dir)
    for bad in (0, -2, 2.5):  # -2 used to fail inside a reshape, 0 was taken as "all windows at once"
        with pytest.raises(ValueError, match=r"batch_size .* must be an int > 0"):
            T.evaluate_text(run, data.load_text()[:500], batch_size=bad)


def test_too_little_data_fails_before_compiling(tmp_path, monkeypatch):
    from fungpt.gpt import step

    def no_compile(*a, **k):
        raise AssertionError("compiled before checking the data")

    monkeypatch.setattr(step, "functions", no_compile)
    monkeypatch.setattr(step, "compiled_functions", no_compile)
    monkeypatch.chdir(tmp_path)  # the default out_dir is relative: never the repository's runs/
    short = tmp_path / "short.txt"
    short.write_text("x" * 60)  # 54 train / 6 val tokens: the validation split cannot hold a window of 9
    with pytest.raises(ValueError, match="the validation split has 6 tokens, too few for block_size 8"):
        T.train(T.config_from("baby", **TINY, data=str(short), out_dir=str(tmp_path / "r")), progress=False)
    (tmp_path / "bin.txt").write_bytes(b"\xff\xfe\x00")
    with pytest.raises(ValueError, match="not UTF-8"):
        T.train(T.config_from("baby", **TINY, data=str(tmp_path / "bin.txt")), progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bin.txt", "short.txt"]  # no run folder left


# --- the experiments, in their --quick mode ------------------------------------------------------


def _experiment(name):
    import importlib.util

    path = pathlib.Path(__file__).resolve().parents[2] / "experiments" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"experiment_{name}", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.slow
def test_experiments_run_in_quick_mode(text_file):
    rows = _experiment("train_step_bench").main(["--quick", "--dtypes", "float32", "--data", text_file])
    assert {r["grad"] for r in rows} == {"fungpt", "jax"} and all(r["ms_per_iter"] > 0 for r in rows)
    [res] = _experiment("train_baby").main(["--quick", "--data", text_file])
    assert res["final_step"] == TINY["max_iters"] and math.isfinite(res["val_loss_final"])
    nb = _experiment("make_colab_notebook")
    ns = nb.main(["--quick", "--execute"])  # the notebook's own cells, on CPU
    assert ns["result"].step == TINY["max_iters"] and ns["run"].step == TINY["max_iters"]
    assert json.loads(nb.NOTEBOOK.read_text()) == nb.notebook(), "regenerate: python experiments/make_colab_notebook.py"


def test_bpe_data_round_trips_through_the_checkpoint_dict(tmp_path):
    text = data.load_text()[:3000]
    (tmp_path / "t.txt").write_text(text, encoding="utf-8")
    cfg = T.config_from("baby", data=str(tmp_path / "t.txt"), tokenizer="bpe", vocab_size=300, block_size=16)
    tok, train_ids, val_ids = T.prepare_data(cfg)
    assert tok.vocab_size == 300
    assert tok.decode(np.concatenate([train_ids, val_ids])) == text
    again = T.tokenizer_from_dict(json.loads(json.dumps(tok.to_dict())))  # as stored in state.json
    np.testing.assert_array_equal(again.encode(text), np.concatenate([train_ids, val_ids]))
    with pytest.raises(ck.CheckpointError, match="unknown tokenizer"):
        T.tokenizer_from_dict({"type": "sentencepiece"})


def test_out_of_range_targets_stop_training_like_a_non_finite_loss(tmp_path, text_file):
    # A model whose targets leave [0, vocab) (e.g. data encoded with a larger vocabulary): under jit the real
    # gpt.loss is NaN, never a plausible number, and the loop stops naming the step.
    cfg = tiny(text_file, tmp_path / "bad")
    tok, _, _ = T.prepare_data(cfg)
    good, mcfg = T.gpt_model(cfg, tok.vocab_size)
    bad = T.Model(good.init, lambda p, x, y, key: good.loss(p, x, jnp.where(y == y[0, 0], mcfg.vocab_size, y), key))
    with pytest.raises(T.NonFiniteError, match="step 1: non-finite loss"):
        T.train(cfg, model=bad, progress=False)
