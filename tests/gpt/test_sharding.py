"""Parallel training with JAX's own engine, against the 1-device run.

Data parallelism: 4 CPU devices (a subprocess with XLA_FLAGS=--xla_force_host_platform_device_count=4) train
exactly like 1 device, within 1e-5 over 5 steps, each device holding 1/4 of every weight (FSDP, the default).
The 2-D mesh of fungpt.gpt.sharding (FSDP along "data",
Megatron along "model"): 8 virtual devices as (8,1), (4,2), (2,4), (1,8) train like 1 device, each holding
1/8 of every weight matrix and its Adam moments; arrays gathered on one mesh resume on another; 2 processes
× 2 devices (gloo collectives on localhost) train like 1 process × 4; a gpt2 step compiles on (4,2) with
XLA's per-device sizes equal to a figure from the shapes.  Subprocesses run with JAX's defaults (float32,
x64 off), as a user's script would (tests/gpt/mesh_worker.py).
"""
import json
import os
import socket
import subprocess
import sys

import jax
import numpy as np
import pytest
from jax.sharding import AbstractMesh
from jax.sharding import PartitionSpec as P

from fungpt import gpt, optim
from fungpt.gpt import sharding as S

SCRIPT = r"""
import json, sys
import jax, jax.numpy as jnp
from fungpt.gpt import train as T

cfg = T.config_from("baby", **json.loads(sys.argv[1]))
devices = jax.devices()
assert len(devices) == 4, devices
out = {}
for n in (1, 4):
    res = T.train(cfg.replace(out_dir=f"{sys.argv[2]}/devices{n}"), devices=devices[:n], progress=False)
    out[f"losses{n}"], out[f"evals{n}"] = res.losses, res.evals

# What the 4-device step does: batch split over "data", state FSDP-sharded, gradients reduced across devices.
mesh = T.make_mesh()
tok, train_np, _ = T.prepare_data(cfg)
fns = T.compiled_functions(T.step_fields(cfg), tok.vocab_size, mesh)
params = fns.init(jax.random.key(0))
state = T.TrainState(params, fns.opt_init(params))
ids = T.put_ids(train_np, mesh)
k = jax.random.key(1)
compiled = fns.step.lower(state, jnp.int32(0), ids, k, k).compile()
new_state, loss, _, _ = compiled(state, jnp.int32(0), ids, k, k)
text = compiled.as_text()
out["reduce"] = "all-reduce" in text or "reduce-scatter" in text
out["quarters"] = sorted({x.addressable_shards[0].data.size / x.size for p, x in
                          jax.tree_util.tree_flatten_with_path(new_state)[0]
                          if jax.tree_util.keystr(p).endswith("['weight']") and "ln_" not in jax.tree_util.keystr(p)})
out["devices"] = sorted({len(x.sharding.device_set) for x in jax.tree.leaves(new_state)})
out["dtype"] = str(loss.dtype)
print("RESULT" + json.dumps(out))
"""

CFG = dict(n_layer=1, n_head=2, n_embd=16, block_size=8, batch_size=4, grad_accum=1, dropout=0.0, max_iters=5,
           warmup_iters=2, lr_decay_iters=6, eval_interval=5, eval_iters=2, ckpt_interval=100, log_interval=1,
           sample_tokens=0)


@pytest.mark.slow
def test_four_devices_train_like_one(tmp_path):
    data = tmp_path / "tiny.txt"
    from fungpt.gpt.data import load_text

    data.write_text(load_text()[:20_000], encoding="utf-8")
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=4", "JAX_PLATFORMS": "cpu"}
    proc = subprocess.run([sys.executable, "-c", SCRIPT, json.dumps({**CFG, "data": str(data)}), str(tmp_path)],
                          env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    [line] = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT")]
    out = json.loads(line.removeprefix("RESULT"))
    assert len(out["losses1"]) == len(out["losses4"]) == 5
    for a, b in zip(out["losses1"], out["losses4"], strict=True):
        assert abs(a - b) <= 1e-5, (out["losses1"], out["losses4"])
    for (s1, t1, v1), (s4, t4, v4) in zip(out["evals1"], out["evals4"], strict=True):
        assert s1 == s4 and abs(t1 - t4) <= 1e-5 and abs(v1 - v4) <= 1e-5
    assert out["reduce"], "the 4-device step should reduce gradients across devices"
    # the default mesh puts every device on "data": FSDP keeps 1/4 of each weight matrix (and Adam moment) per device
    assert out["quarters"] == [0.25] and out["devices"] == [4], out
    assert out["dtype"] == "float32"


# --- the 2-D mesh: FSDP along "data", Megatron along "model" (fungpt.gpt.sharding) ---------------------------

WORKER = os.path.join(os.path.dirname(__file__), "mesh_worker.py")
CFG8 = {**CFG, "n_layer": 2, "batch_size": 8}  # every width (16, 32, 48, 64) divides 8


def _worker(mode, cfg, out_dir, *extra, devices=8, timeout=900, wait=True):
    env = {**os.environ, "XLA_FLAGS": f"--xla_force_host_platform_device_count={devices}", "JAX_PLATFORMS": "cpu"}
    proc = subprocess.Popen([sys.executable, WORKER, mode, json.dumps(cfg), str(out_dir), *map(str, extra)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return _result(proc, timeout) if wait else proc


def _result(proc, timeout=900):
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, err[-3000:]
    [line] = [ln for ln in out.splitlines() if ln.startswith("RESULT")]
    return json.loads(line.removeprefix("RESULT"))


@pytest.fixture(scope="module")
def tiny_text(tmp_path_factory):
    from fungpt.gpt.data import load_text

    path = tmp_path_factory.mktemp("text") / "tiny.txt"
    path.write_text(load_text()[:20_000], encoding="utf-8")
    return str(path)


def test_parse_mesh():
    assert S.parse_mesh("data=4,model=2") == (4, 2)
    assert S.parse_mesh(" model=2 , data=1") == (1, 2)
    assert S.parse_mesh("model=8") == (None, 8) and S.parse_mesh("") == (None, 1) == S.parse_mesh(None)
    for bad in ("data=0", "data=2,data=2", "pipe=2", "data=x", "data=2;model=2", "data=-1"):
        with pytest.raises(ValueError, match="bad mesh"):
            S.parse_mesh(bad)


def test_make_mesh_on_one_device():
    mesh = S.make_mesh()
    assert mesh.axis_names == ("data", "model") and dict(mesh.shape) == {"data": len(jax.devices()), "model": 1}
    with pytest.raises(ValueError, match="needs 2 devices"):
        S.make_mesh(2, 1, jax.devices()[:1])
    with pytest.raises(ValueError, match="does not divide"):
        S.make_mesh(model=2, devices=jax.devices()[:1])
    with pytest.raises(ValueError, match="positive int"):
        S.make_mesh(0)


def _gpt2_like():
    config = gpt.GPTConfig()  # GPT-2 124M: V = 50257 (prime to 2), C = 768, L = 12
    return jax.eval_shape(lambda: gpt.init_params(config, jax.random.key(0)))


def test_param_specs_of_gpt2_on_a_4x2_mesh():
    specs = S.param_specs(_gpt2_like(), AbstractMesh((4, 2), ("data", "model")))
    h = specs["h"]
    # Megatron: columns of c_attn / c_fc on "model", rows of the c_proj's; FSDP on the other (non-layer) axis.
    assert h["attn"]["c_attn"]["weight"] == P(None, "data", "model")
    assert h["mlp"]["c_fc"]["weight"] == P(None, "data", "model")
    assert h["attn"]["c_proj"]["weight"] == P(None, "model", "data")
    assert h["mlp"]["c_proj"]["weight"] == P(None, "model", "data")
    assert h["attn"]["c_attn"]["bias"] == P(None, ("model", "data"))  # the layer axis is never split
    assert h["attn"]["c_proj"]["bias"] == P(None, "data") == h["ln_1"]["weight"]
    # 50257 is odd: wte goes on its embedding axis, over both mesh axes
    assert specs["wte"]["weight"] == P(None, ("model", "data"))
    assert specs["wpe"]["weight"] == P("data", "model") and specs["ln_f"]["bias"] == P("data")


def test_param_specs_degenerate_meshes():
    like = _gpt2_like()
    one = S.param_specs(like, AbstractMesh((1, 1), ("data", "model")))
    assert all(all(a is None for a in s) for s in jax.tree.leaves(one, is_leaf=lambda s: isinstance(s, P)))
    tp = S.param_specs(like, AbstractMesh((1, 4), ("data", "model")))
    assert tp["h"]["mlp"]["c_fc"]["weight"] == P(None, None, "model") and tp["h"]["ln_2"]["bias"] == P(None, None)
    odd = S.param_specs(like, AbstractMesh((5, 1), ("data", "model")))  # 5 divides none of GPT-2's widths
    assert all(all(a is None for a in s) for s in jax.tree.leaves(odd, is_leaf=lambda s: isinstance(s, P)))


def test_opt_state_specs_follow_the_parameters():
    like = _gpt2_like()
    specs = S.param_specs(like, AbstractMesh((4, 2), ("data", "model")))
    opt = optim.chain(optim.clip_by_global_norm(1.0), optim.adamw(1e-3))
    opt_like = jax.eval_shape(opt.init, like)
    state_specs = S.opt_state_specs(opt_like, specs)
    clip, (adam, *rest) = state_specs
    assert clip.norm == P() and adam.count == P()
    assert adam.mu == specs and adam.nu == specs
    assert all(s == P() for s in jax.tree.leaves(rest, is_leaf=lambda s: isinstance(s, P)))
    from fungpt.gpt.train import TrainState

    both = S.state_specs(TrainState(like, opt_like), AbstractMesh((4, 2), ("data", "model")))
    assert type(both) is TrainState and both.params == specs and both.opt_state == state_specs


def test_initialize_distributed_refuses_bad_arguments():
    with pytest.raises(ValueError, match="together"):
        S.initialize_distributed("localhost:1234")
    with pytest.raises(ValueError, match="process_id"):
        S.initialize_distributed("localhost:1234", 2, 2)
    with pytest.raises(ValueError, match="HOST:PORT"):
        S.initialize_distributed("localhost", 2, 0)
    assert S.is_writer()


def test_sharded_step_refuses_a_batch_the_mesh_cannot_split():
    mesh = S.make_mesh(1, 1, jax.devices()[:1])
    S.make_sharded_train_step(lambda p, x, y, k: 0.0, optim.sgd(0.1), mesh, batch_size=3, block_size=4)
    with pytest.raises(ValueError, match="divisible by the mesh's data axis"):
        S.make_sharded_train_step(lambda p, x, y, k: 0.0, optim.sgd(0.1), AbstractMesh((2, 1), ("data", "model")),
                                  batch_size=3, block_size=4)


def _large(path):
    # the matrices FSDP and Megatron must split D·M ways: weights (not layer norms) and their Adam moments
    return path.endswith("['weight']") and "ln_" not in path


def _n_state_bytes(cfg, vocab):
    # closed form: params N = V·C + T·C + L(12C² + 13C) + 2C; state = params + Adam mu, nu (f32) + 3 scalars
    C, L, T_ = cfg["n_embd"], cfg["n_layer"], cfg["block_size"]
    n = vocab * C + T_ * C + L * (12 * C * C + 13 * C) + 2 * C
    return 3 * 4 * n + 12


@pytest.mark.slow
def test_2d_meshes_train_like_one_device(tiny_text, tmp_path):
    out = _worker("meshes", {**CFG8, "data": tiny_text}, tmp_path)
    ref = out["train1"]  # fungpt.gpt.train.train on 1 device
    assert len(ref) == 5
    for mesh, losses in {**out["losses"], "8,1 replicated": out["replicated_losses"]}.items():
        assert max(abs(a - b) for a, b in zip(losses, ref, strict=True)) <= 1e-5, (mesh, losses, ref)
    assert out["losses"]["1,1"] == ref  # the same step as train.py's, bit for bit
    assert out["full_bytes"] == _n_state_bytes(CFG8, out["vocab"])
    for mesh, fractions in out["leaf_fraction"].items():
        D, M = map(int, mesh.split(","))
        for path, frac in fractions.items():
            if _large(path):
                assert frac == 1 / (D * M), (mesh, path, frac)
        small = 3 * 4 * (CFG8["n_layer"] * 13 * 16 + 2 * 16) + 12  # all biases and norms, unsplit, + scalars
        assert out["bytes"][mesh] <= out["full_bytes"] / (D * M) + small, (mesh, out["bytes"][mesh])
    assert "all-gather" in out["collectives"]  # FSDP gathers the parameters where a product needs them


@pytest.mark.slow
def test_checkpoint_moves_between_meshes(tiny_text, tmp_path):
    out = _worker("checkpoint", {**CFG8, "data": tiny_text}, tmp_path)
    assert out["resumed"]["4,2"] == out["continued"]  # same mesh: bit-exact
    for mesh in ("1,1", "2,2"):
        assert max(abs(a - b) for a, b in zip(out["resumed"][mesh], out["continued"], strict=True)) <= 1e-5, mesh


def _free_port():
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_processes_train_like_one(tiny_text, tmp_path):
    cfg = {**CFG8, "batch_size": 4, "data": tiny_text}
    coord = f"localhost:{_free_port()}"
    procs = [_worker("process", cfg, tmp_path, coord, 2, i, devices=2, wait=False) for i in range(2)]
    try:
        outs = [_result(p, timeout=900) for p in procs]
    finally:  # one process failing leaves the other waiting for its peer
        for p in procs:
            if p.poll() is None:
                p.kill()
    single = _worker("single", cfg, tmp_path, devices=4)
    assert [o["writer"] for o in outs] == [True, False] and [o["process"] for o in outs] == [0, 1]
    for o in outs:
        got = o["losses"] + o["continued"]
        assert max(abs(a - b) for a, b in zip(got, single["losses"], strict=True)) <= 1e-5, (got, single)
    # the 2-process run's checkpoint (written by process 0 alone) resumes in one process on one device
    assert max(abs(a - b) for a, b in zip(single["resumed"], single["losses"][3:], strict=True)) <= 1e-5


@pytest.mark.slow
def test_gpt2_step_compiles_on_a_4x2_mesh_with_an_eighth_of_the_state(tmp_path):
    out = _worker("gpt2", {}, tmp_path)
    # from the shapes alone: weights and column-parallel biases split 8 ways, other vectors 4 ways (FSDP only);
    # params + Adam mu + nu, f32
    state = 0
    for path, (shape, itemsize) in out["params"].items():
        ways = 8 if _large(path) or "c_attn" in path or "c_fc" in path else 4
        state += 3 * int(np.prod(shape)) * itemsize // ways
    assert state == 186_744_960  # ≈ 3 · 4 B · 124,439,808 / 8
    args = out["argument_bytes"] - out["ids_bytes"]  # + the scalars: step, keys, counts, clip norm
    assert 0 <= args - state <= 64, (args, state)
    assert 0 <= out["output_bytes"] - state <= 1024 and out["alias_bytes"] >= state  # donated in place
