"""Data parallelism with JAX's own engine: 4 CPU devices (a subprocess with
XLA_FLAGS=--xla_force_host_platform_device_count=4) train exactly like 1 device, within 1e-5 over 5 steps.
The subprocess runs with JAX's defaults (float32, x64 off), as a user's script would.
"""
import json
import os
import subprocess
import sys

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

# What the 4-device step does: batch split over "data", state replicated, gradients all-reduced.
mesh = T.make_mesh()
tok, train_np, _ = T.prepare_data(cfg)
fns = T.compiled_functions(T.step_fields(cfg), tok.vocab_size, mesh)
params = fns.init(jax.random.key(0))
state = T.TrainState(params, fns.opt_init(params))
ids = T.put_ids(train_np, mesh)
k = jax.random.key(1)
compiled = fns.step.lower(state, jnp.int32(0), ids, k, k).compile()
new_state, loss, _, _ = compiled(state, jnp.int32(0), ids, k, k)
out["all_reduce"] = "all-reduce" in compiled.as_text()
out["replicated"] = all(x.sharding.is_fully_replicated and len(x.sharding.device_set) == 4
                        for x in jax.tree.leaves(new_state))
out["dtype"] = str(loss.dtype)
print("RESULT" + json.dumps(out))
"""

CFG = dict(n_layer=1, n_head=2, n_embd=16, block_size=8, batch_size=4, grad_accum=1, dropout=0.0, max_iters=5,
           warmup_iters=2, lr_decay_iters=6, eval_interval=5, eval_iters=2, ckpt_interval=100, log_interval=1,
           sample_tokens=0)


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
    assert out["all_reduce"], "the 4-device step should reduce gradients across devices"
    assert out["replicated"], "parameters and optimizer state should stay replicated on all 4 devices"
    assert out["dtype"] == "float32"
