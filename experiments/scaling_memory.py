"""Per-device memory of one GPT-2 training step on 2-D meshes, from XLA's own analysis of the compiled step.

    .venv/bin/python experiments/scaling_memory.py [--preset gpt2] [--devices 8] [--batch 96 --accum 5]

Lowers and compiles (does not run) the sharded step of `fungpt.gpt.sharding` on virtual CPU devices for every
(data, model) mesh of the device count, and prints a markdown table of XLA's per-device sizes: arguments
(parameters + AdamW moments + the scalars), temporaries (activations kept for the backward pass, gathered
weights, logits) and the replicated figure for comparison.  Writes experiments/out/scaling_memory.json.
The sizes are XLA:CPU's; a GPU or TPU compiler schedules temporaries differently.
On an accelerator: runs on JAX's default backend with at most its device count, and reports that compiler's sizes.
"""
import argparse
import json
import os
import pathlib
import time

OUT = pathlib.Path(__file__).parent / "out"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--preset", default="gpt2", choices=("gpt2", "gpt2-medium"))
    ap.add_argument("--devices", type=int, default=8)
    ap.add_argument("--batch", type=int, default=None, help="rows per micro-batch (default: the preset's)")
    ap.add_argument("--accum", type=int, default=None, help="micro-batches per step (default: the preset's)")
    ap.add_argument("--quick", action="store_true", help="only the (D/2, 2) mesh, batch 8, accum 1")
    args = ap.parse_args()
    os.environ.setdefault("XLA_FLAGS", f"--xla_force_host_platform_device_count={args.devices}")
    import jax
    import jax.numpy as jnp
    from jax.sharding import NamedSharding
    from jax.sharding import PartitionSpec as P

    from fungpt.gpt import sharding as S
    from fungpt.gpt import train as T
    from fungpt.gpt.presets import GPT2_PRESETS

    fields = dict(GPT2_PRESETS[args.preset])
    if args.quick:
        args.batch, args.accum = 8, 1
    fields.update({k: v for k, v in (("batch_size", args.batch), ("grad_accum", args.accum)) if v is not None})
    cfg = T.TrainConfig(**fields)
    model, _ = T.gpt_model(cfg, cfg.vocab_size)
    optimizer, _ = T.make_optimizer(cfg)
    k = jax.random.key(0)
    like = jax.eval_shape(lambda: T.TrainState(p := model.init(k), optimizer.init(p)))
    full = sum(x.size * x.dtype.itemsize for x in jax.tree.leaves(like))
    n = min(args.devices, jax.device_count())  # on CPU, XLA_FLAGS above makes the virtual devices
    m2 = min(2, n)
    meshes = [(n // m2, m2)] if args.quick else [(n // m, m) for m in (1, 2, 4, 8) if n % m == 0 and m <= n]
    rows = []
    for D, M in meshes:
        mesh = S.make_mesh(D, M)
        specs = S.state_specs(like, mesh)
        abstract = jax.tree.map(lambda x, sh: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=sh), like,
                                S.named(specs, mesh))
        ids = jax.ShapeDtypeStruct((4096,), jnp.int32, sharding=NamedSharding(mesh, P()))
        step = S.make_sharded_train_step(model.loss, optimizer, mesh, specs, batch_size=cfg.batch_size,
                                         block_size=cfg.block_size, grad_accum=cfg.grad_accum)
        t = time.perf_counter()
        mem = step.lower(abstract, jnp.int32(0), ids, k, k).compile().memory_analysis()
        rows.append({"mesh": [D, M], "state_mb": (mem.argument_size_in_bytes - 4096 * 4) / 1e6,
                     "temp_mb": mem.temp_size_in_bytes / 1e6, "replicated_state_mb": full / 1e6,
                     "compile_s": time.perf_counter() - t})
        print(rows[-1], flush=True)
    print(f"\n{args.preset}, B = {cfg.batch_size} rows x A = {cfg.grad_accum} micro-batches x T = {cfg.block_size}, "
          f"dtype {cfg.dtype}, {n} devices\n")
    print("| mesh (data, model) | params + AdamW per device | temporaries per device | replicated params + AdamW |")
    print("|---|---|---|---|")
    for r in rows:
        print(f"| ({r['mesh'][0]}, {r['mesh'][1]}) | {r['state_mb']:,.1f} MB | {r['temp_mb']:,.0f} MB "
              f"| {r['replicated_state_mb']:,.1f} MB |")
    OUT.mkdir(exist_ok=True)
    (OUT / "scaling_memory.json").write_text(json.dumps({"preset": args.preset, "config": fields, "rows": rows},
                                                        indent=1))


if __name__ == "__main__":
    main()
