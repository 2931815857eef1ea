"""`fungpt train` past one device and from trained weights, through the real `train()` and CLI.

Oracles: the 1-device run (losses within 1e-5 on other meshes; bit for bit where a resumed run keeps its
mesh), the arrays' own shardings (device 0 holds 1/(D·M) of each weight and Adam moment), a single process
with the same 4 devices for a 2-process run, and `fungpt.gpt.loss` on the weights `from_hf` reads for
fine-tuning (tests/gpt/test_finetune.py ties that loss to transformers' within 1e-4).
"""
import json
import os
import pathlib
import shutil
import socket
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fungpt import gpt
from fungpt.gpt import checkpoint as ckpt_lib
from fungpt.gpt import train as T
from fungpt.gpt.data import get_batch, load_text

HERE = pathlib.Path(__file__).parent
TINY_BPE = HERE / "fixtures" / "tiny_bpe"
CFG = dict(n_layer=1, n_head=2, n_embd=16, block_size=8, batch_size=8, max_iters=5, warmup_iters=2,
           lr_decay_iters=6, eval_interval=5, eval_iters=2, ckpt_interval=100, log_interval=1, sample_tokens=0)


@pytest.fixture(scope="module")
def tiny_text(tmp_path_factory):
    path = tmp_path_factory.mktemp("text") / "tiny.txt"
    path.write_text(load_text()[:20_000], encoding="utf-8")
    return str(path)


def _env(devices):
    return {**os.environ, "XLA_FLAGS": f"--xla_force_host_platform_device_count={devices}", "JAX_PLATFORMS": "cpu"}


def _check(proc: subprocess.CompletedProcess):
    assert proc.returncode == 0, (proc.stdout[-2000:], proc.stderr[-3000:])
    return proc


def _close(a, b, tol=1e-5):
    return len(a) == len(b) and max(abs(x - y) for x, y in zip(a, b, strict=True)) <= tol


@pytest.mark.slow
def test_train_shards_the_state_and_resumes_on_other_meshes(tiny_text, tmp_path):
    proc = _check(subprocess.run([sys.executable, str(HERE / "train_worker.py"), json.dumps({**CFG, "data": tiny_text}),
                                  str(tmp_path)], env=_env(8), capture_output=True, text=True, timeout=900))
    [line] = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT")]
    out = json.loads(line.removeprefix("RESULT"))
    one = out["one"]
    assert len(one) == CFG["max_iters"]
    assert _close(out["default"], one) and _close(out["full"], one), out
    assert out["resumed"]["part"] == out["full"][-2:]  # saved and resumed on (4,2): bit for bit
    for name in ("part1", "part22"):  # saved on (4,2), resumed on 1 device and on (2,2)
        assert _close(out["resumed"][name], out["full"][-2:]), (name, out)
    for mesh, fractions in out["fractions"].items():  # (4,2) and the default (8,1): 1/8 of every weight
        large = {p: f for p, f in fractions.items() if p.endswith("['weight']") and "ln_" not in p}
        assert len(large) == 3 * 6 and set(large.values()) == {1 / 8}, (mesh, large)  # params, mu, nu
    assert out["saved_equal"]


def _port():
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def _losses(run_dir):
    return [r["loss"] for r in map(json.loads, (run_dir / "metrics.jsonl").read_text().splitlines()) if "loss" in r]


@pytest.mark.slow
def test_two_processes_through_the_cli_train_like_one_and_resume_in_one(tiny_text, tmp_path):
    cli = [sys.executable, "-m", "fungpt.cli", "train", "--no-progress", "--data", tiny_text,
           *[a for k, v in CFG.items() for a in (f"--{k.replace('_', '-')}", str(v))]]
    coord = f"localhost:{_port()}"
    procs = [subprocess.Popen([*cli, "--max-iters", "4", "--mesh", "data=2,model=2", "--coordinator", coord,
                               "--num-processes", "2", "--process-id", str(i), "--out-dir", str(tmp_path / f"p{i}")],
                              env=_env(2), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for i in range(2)]
    try:
        outs = [p.communicate(timeout=600) for p in procs]
    finally:  # one process failing leaves the other waiting for its peer
        for p in procs:
            if p.poll() is None:
                p.kill()
    assert [p.returncode for p in procs] == [0, 0], [o[1][-2000:] for o in outs]
    assert not (tmp_path / "p1").exists()  # only process 0 writes (and locks)
    _check(subprocess.run([*cli, "--max-iters", "6", "--mesh", "data=2,model=2", "--out-dir", str(tmp_path / "single")],
                          env=_env(4), capture_output=True, text=True, timeout=600))
    single = _losses(tmp_path / "single")
    assert len(single) == 6 and _close(_losses(tmp_path / "p0"), single[:4])
    # the 2-process run's checkpoint resumes in 1 process on 1 device
    resume = [sys.executable, "-m", "fungpt.cli", "train", "--no-progress", "--resume", str(tmp_path / "p0")]
    _check(subprocess.run([*resume, "--max-iters", "6"], env=_env(1), capture_output=True, text=True, timeout=600))
    assert _close(_losses(tmp_path / "p0"), single)


@pytest.fixture(scope="module")
def hf_dir(tmp_path_factory):
    # a random GPT-2 whose vocabulary is the tiny 400-token BPE, in the Hugging Face layout with tokenizer files
    d = tmp_path_factory.mktemp("hf400")
    config = gpt.GPTConfig(vocab_size=400, block_size=16, n_layer=1, n_head=2, n_embd=16)
    gpt.to_hf(gpt.init_params(config, jax.random.key(3)), config, d)
    for f in ("vocab.json", "merges.txt"):
        shutil.copy(TINY_BPE / f, d / f)
    return d


def test_finetune_from_a_hugging_face_folder_lowers_the_loss_and_resumes(hf_dir, tiny_text, tmp_path):
    # the finetune preset, shortened to 8 steps at a rate that moves a 1-layer random model that far
    kw = dict(init_from=str(hf_dir), data=tiny_text, batch_size=4, grad_accum=2, learning_rate=1e-2, min_lr=1e-2,
              max_iters=8, lr_decay_iters=8, eval_interval=4, eval_iters=4, sample_tokens=0,
              out_dir=str(tmp_path / "ft"))
    cfg = T.config_from("finetune", **kw)
    res = T.train(cfg, progress=False, print_fn=None)
    assert res.step == 8 and len(res.losses) == 8
    # step 0 trains on the weights as loaded, on the run's own first batch: x, y = get_batch(fold_in(k_data, 0))
    config, params = gpt.from_hf(hf_dir)
    tok = gpt.BPETokenizer.from_gpt2_files(hf_dir / "vocab.json", hf_dir / "merges.txt")
    train_np, _ = T.prepare_data(cfg.replace(n_layer=1, n_head=2, n_embd=16, block_size=16, tokenizer="bpe",
                                             vocab_size=400), tok.to_dict())[1:]
    x, y = get_batch(jax.random.fold_in(T.run_keys(cfg.seed)[1], 0), jnp.asarray(train_np), 8, 16)
    first = np.mean([float(gpt.loss(params, x[a * 4:(a + 1) * 4], y[a * 4:(a + 1) * 4], config)) for a in range(2)])
    assert abs(res.losses[0] - first) <= 1e-5, (res.losses[0], first)
    assert res.evals[-1][2] < res.evals[0][2] - 0.3, res.evals  # validation loss, step 8 vs step 0
    meta = ckpt_lib.read_meta(ckpt_lib.find_checkpoint(tmp_path / "ft"))
    assert meta["config"]["init_from"] == str(hf_dir.resolve())
    assert meta["extra"]["init_from"] == {"init_from": str(hf_dir.resolve()), "kind": "hf"}
    assert meta["config"]["model"]["n_embd"] == 16 and meta["tokenizer"] == tok.to_dict()
    # resuming continues the fine-tune from its checkpoint, like the uninterrupted run
    more = T.train(T.resume_config(tmp_path / "ft", max_iters=10), resume=tmp_path / "ft", progress=False,
                   print_fn=None)
    whole = T.train(cfg.replace(max_iters=10, lr_decay_iters=10, out_dir=str(tmp_path / "whole")), progress=False,
                    print_fn=None)
    assert more.losses == whole.losses[8:]
    assert ckpt_lib.read_meta(ckpt_lib.find_checkpoint(tmp_path / "ft"))["extra"]["init_from"]["kind"] == "hf"


def test_init_from_needs_the_tokenizer(tmp_path, tiny_text):
    with pytest.raises(ValueError, match="needs the checkpoint's tokenizer"):
        T.train(T.config_from("finetune", init_from=str(HERE / "fixtures" / "tiny_gpt2"), data=tiny_text,
                              out_dir=str(tmp_path / "r")), progress=False, print_fn=None)
    assert not (tmp_path / "r").exists()  # refused before anything was written


def test_presets_come_from_presets_py():
    from fungpt.gpt.presets import FINETUNE_PRESET, GPT2_PRESETS

    for name, fields in {**GPT2_PRESETS, "finetune": FINETUNE_PRESET}.items():
        cfg = T.PRESETS[name]
        for k, v in fields.items():
            k = {"dtype": "compute_dtype"}.get(k, k)
            got = getattr(cfg.model, k) if hasattr(cfg.model, k) and not hasattr(cfg, k) else getattr(cfg, k)
            assert got == v, (name, k, got, v)


def test_init_from_a_fungpt_run_starts_from_its_weights(tiny_text, tmp_path):
    small = {**CFG, "max_iters": 2, "batch_size": 4, "data": tiny_text}
    T.train(T.config_from("baby", **small, out_dir=str(tmp_path / "src")), progress=False, print_fn=None)
    src = T.load_run(tmp_path / "src")
    # a new run of another width: the source's shape and tokenizer win (init_from fixes the model)
    cfg = T.config_from("baby", **{**small, "n_embd": 32}, init_from=str(tmp_path / "src"),
                        out_dir=str(tmp_path / "ft"))
    res = T.train(cfg, progress=False, print_fn=None)
    ft = T.load_run(tmp_path / "ft")
    assert ft.model_config.n_embd == 16 and ft.tokenizer.to_dict() == src.tokenizer.to_dict()
    _, train_np, _ = T.prepare_data(src.config, src.tokenizer.to_dict())
    x, y = get_batch(jax.random.fold_in(T.run_keys(cfg.seed)[1], 0), jnp.asarray(train_np), 4, 8)
    assert abs(res.losses[0] - float(gpt.loss(src.params, x, y, src.model_config))) <= 1e-5
    meta = ckpt_lib.read_meta(ckpt_lib.find_checkpoint(tmp_path / "ft"))
    assert meta["extra"]["init_from"] == {"init_from": str((tmp_path / "src").resolve()), "kind": "run"}
