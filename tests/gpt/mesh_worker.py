"""Subprocess side of tests/gpt/test_sharding.py: runs with N virtual CPU devices (XLA_FLAGS set by the test),
JAX's defaults (float32, x64 off) as a user's script would, and prints one line ``RESULT{json}``.

    python tests/gpt/mesh_worker.py MODE CONFIG_JSON OUT_DIR [extra...]

Modes: ``meshes`` (losses of several meshes and 1 device, per-device bytes), ``checkpoint`` (save gathered
arrays on (4,2), resume on other meshes), ``process`` (one process of a multi-process run), ``resume``
(resume a multi-process run's arrays in one process), ``gpt2`` (compile one gpt2 step on a (4,2) mesh).
"""
import json
import sys

import jax
import jax.numpy as jnp
import numpy as np

from fungpt.gpt import sharding as S
from fungpt.gpt import train as T


def setup(cfg):
    tok, train_np, _ = T.prepare_data(cfg)
    model, mcfg = T.gpt_model(cfg, tok.vocab_size)
    optimizer, _ = T.make_optimizer(cfg)
    k_init, k_data, k_drop, _, _ = T.run_keys(cfg.seed)
    params = jax.jit(model.init)(k_init)
    state = T.TrainState(params, jax.jit(optimizer.init)(params))
    return dict(model=model, mcfg=mcfg, vocab=tok.vocab_size, optimizer=optimizer, k_data=k_data, k_drop=k_drop,
                host_state=S.gather(state), train_np=train_np)


def run_steps(env, cfg, mesh, state, s0, n, sharded=True):
    """n steps from host (numpy) ``state`` on ``mesh``; returns (losses, final device state)."""
    specs = S.state_specs(state, mesh) if sharded else None
    rep = jax.sharding.PartitionSpec()
    state = S.shard(state, specs if sharded else jax.tree.map(lambda _: rep, state), mesh)
    step = S.make_sharded_train_step(env["model"].loss, env["optimizer"], mesh, specs, batch_size=cfg.batch_size,
                                     block_size=cfg.model.block_size, grad_accum=cfg.grad_accum)
    ids = S.shard(env["train_np"], jax.sharding.PartitionSpec(), mesh)
    losses = []
    for s in range(s0, s0 + n):
        state, loss, _, ok = step(state, jnp.int32(s), ids, env["k_data"], env["k_drop"])
        assert bool(ok)
        losses.append(float(loss))
    return losses, state, step, ids


def meshes(cfg, out_dir):
    devices = jax.devices()
    ref = T.train(cfg.replace(out_dir=f"{out_dir}/one"), devices=devices[:1], progress=False, print_fn=None)
    env = setup(cfg)
    out = {"train1": ref.losses, "losses": {}, "bytes": {}, "leaf_fraction": {}}
    full = sum(x.nbytes for x in jax.tree.leaves(env["host_state"]))
    out["full_bytes"], out["vocab"] = full, env["vocab"]
    for D, M in ((1, 1), (8, 1), (4, 2), (2, 4), (1, 8)):
        mesh = S.make_mesh(D, M, devices[:D * M])
        losses, state, step, ids = run_steps(env, cfg, mesh, env["host_state"], 0, cfg.max_iters)
        out["losses"][f"{D},{M}"] = losses
        out["bytes"][f"{D},{M}"] = S.per_device_bytes(state)
        # each leaf's fraction held by device 0, by path (params and Adam moments alike)
        out["leaf_fraction"][f"{D},{M}"] = {
            jax.tree_util.keystr(p): x.addressable_shards[0].data.size / x.size
            for p, x in jax.tree_util.tree_flatten_with_path(state)[0]}
        if (D, M) == (4, 2):
            text = step.lower(state, jnp.int32(0), ids, env["k_data"], env["k_drop"]).compile().as_text()
            out["collectives"] = sorted({c for c in ("all-gather", "reduce-scatter", "all-reduce") if c in text})
    out["replicated_losses"] = run_steps(env, cfg, S.make_mesh(8, 1), env["host_state"], 0, cfg.max_iters,
                                         sharded=False)[0]
    return out


def checkpoint(cfg, out_dir):
    devices = jax.devices()
    env = setup(cfg)
    m42 = S.make_mesh(4, 2, devices)
    _, state, _, _ = run_steps(env, cfg, m42, env["host_state"], 0, 3)
    saved = S.gather(state)  # what a checkpoint writes: full numpy arrays
    leaves, treedef = jax.tree.flatten(saved)
    np.savez(f"{out_dir}/ckpt.npz", *leaves)
    cont, _, _, _ = run_steps(env, cfg, m42, saved, 3, 2)  # the uninterrupted run, from the live values
    with np.load(f"{out_dir}/ckpt.npz") as f:
        loaded = jax.tree.unflatten(treedef, [f[f"arr_{i}"] for i in range(len(leaves))])
    out = {"continued": cont, "resumed": {}}
    for name, mesh in (("4,2", m42), ("1,1", S.make_mesh(1, 1, devices[:1])), ("2,2", S.make_mesh(2, 2, devices[:4]))):
        out["resumed"][name] = run_steps(env, cfg, mesh, loaded, 3, 2)[0]
    return out


def process(cfg, out_dir, coordinator, n_proc, pid):
    S.initialize_distributed(coordinator, int(n_proc), int(pid))
    assert jax.process_count() == int(n_proc) and len(jax.devices()) == 4, jax.devices()
    env = setup(cfg)
    mesh = S.make_mesh(2, 2)
    losses, state, _, _ = run_steps(env, cfg, mesh, env["host_state"], 0, 3)
    saved = S.gather(state)
    if S.is_writer():
        leaves = jax.tree.leaves(saved)
        np.savez(f"{out_dir}/mp_ckpt.npz", *leaves)
    cont = run_steps(env, cfg, mesh, saved, 3, 2)[0]
    return {"losses": losses, "continued": cont, "writer": S.is_writer(), "process": jax.process_index()}


def single(cfg, out_dir):
    # The single-process 4-device reference of the multi-process run, and its resume from their file.
    env = setup(cfg)
    mesh = S.make_mesh(2, 2)
    losses = run_steps(env, cfg, mesh, env["host_state"], 0, 5)[0]
    treedef = jax.tree.structure(env["host_state"])
    with np.load(f"{out_dir}/mp_ckpt.npz") as f:
        loaded = jax.tree.unflatten(treedef, [f[f"arr_{i}"] for i in range(len(f.files))])
    return {"losses": losses, "resumed": run_steps(env, cfg, S.make_mesh(1, 1, jax.devices()[:1]), loaded, 3, 2)[0]}


def gpt2(cfg, out_dir):
    # Lower and compile (no run) one step of the gpt2 preset on a (4,2) mesh; report XLA's per-device sizes.
    from fungpt.gpt.presets import GPT2_PRESETS

    cfg = T.config_from("baby", **{**GPT2_PRESETS["gpt2"], "batch_size": 8, "grad_accum": 1})
    model, _ = T.gpt_model(cfg, 50257)
    optimizer, _ = T.make_optimizer(cfg)
    mesh = S.make_mesh(4, 2)
    k = jax.random.key(0)
    like = jax.eval_shape(lambda: T.TrainState(p := model.init(k), optimizer.init(p)))
    specs = S.state_specs(like, mesh)
    abstract = jax.tree.map(lambda x, sh: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=sh), like,
                            S.named(specs, mesh))
    rep = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec())
    ids = jax.ShapeDtypeStruct((4096,), jnp.int32, sharding=rep)
    step = S.make_sharded_train_step(model.loss, optimizer, mesh, specs, batch_size=cfg.batch_size,
                                     block_size=cfg.model.block_size)
    compiled = step.lower(abstract, jnp.int32(0), ids, k, k).compile()
    mem = compiled.memory_analysis()
    leaves = {jax.tree_util.keystr(p): [list(x.shape), jnp.dtype(x.dtype).itemsize]
              for p, x in jax.tree_util.tree_flatten_with_path(like.params)[0]}
    return {"argument_bytes": mem.argument_size_in_bytes, "output_bytes": mem.output_size_in_bytes,
            "temp_bytes": mem.temp_size_in_bytes, "alias_bytes": mem.alias_size_in_bytes, "params": leaves,
            "ids_bytes": 4096 * 4}


def main():
    mode, cfg_json, out_dir, *extra = sys.argv[1:]
    cfg = T.config_from("baby", **json.loads(cfg_json))
    out = {"meshes": meshes, "checkpoint": checkpoint, "process": process, "single": single, "gpt2": gpt2}[mode](
        cfg, out_dir, *extra)
    print("RESULT" + json.dumps(out))


if __name__ == "__main__":
    main()
