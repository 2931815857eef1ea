"""Compile time and step time of the GPT loss gradient, by depth and by layer loop (scan vs unrolled).

    .venv/bin/python experiments/gpt_compile_time.py [--quick]

Part 1: for n_layer = 2, 6, 12 (128 dims, 4 heads, block 64, batch 12): seconds to trace + compile
`jax.jit(jax.value_and_grad(gpt.loss))` with the blocks in one `lax.scan` (scan_unroll=1) and fully
unrolled (scan_unroll=n_layer).  Part 2: the baby model's jitted value_and_grad time (median ms) for
float32 and bfloat16 matrix products, scan and unrolled, jax.grad and fungpt.grad, all in this process.
Writes experiments/out/gpt_compile_time.{json,png}.

On an accelerator: compile times and step times become the accelerator's; the scan-vs-unrolled and bfloat16
trade-offs can reverse there, which is what running it on one shows.
"""
import argparse
import json
import pathlib
import time

import jax
import numpy as np

import fungpt
from fungpt import gpt
from fungpt.runtime import tune_malloc

OUT = pathlib.Path(__file__).parent / "out"


def batch(cfg, B, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, cfg.vocab_size, (B, cfg.block_size)).astype(np.int32)
    return x, np.roll(x, -1, axis=1)


def compile_and_step(cfg, B, grad_fn=jax.value_and_grad, reps=0):
    """(seconds to trace + compile jit(grad_fn(loss)), median ms per call of the compiled step)."""
    params = gpt.init_params(cfg, jax.random.key(0))
    x, y = (jax.numpy.asarray(a) for a in batch(cfg, B))
    t = time.perf_counter()
    f = jax.jit(grad_fn(lambda p, x, y: gpt.loss(p, x, y, cfg))).lower(params, x, y).compile()
    compile_s = time.perf_counter() - t
    if not reps:
        return compile_s, None
    jax.block_until_ready(f(params, x, y))
    ts = []
    for _ in range(reps):
        t = time.perf_counter()
        jax.block_until_ready(f(params, x, y))
        ts.append(time.perf_counter() - t)
    return compile_s, 1e3 * float(np.median(ts))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out", type=pathlib.Path, default=OUT, help="folder for the JSON and PNG files")
    args = ap.parse_args(argv)
    tune_malloc()  # as `fungpt train` does: XLA:CPU temporaries stop page-faulting
    depths = (1,) if args.quick else (2, 6, 12)
    loops = (("scan", 1),) if args.quick else (("scan", 1), ("unrolled", None))
    base = gpt.GPTConfig(vocab_size=80, block_size=16 if args.quick else 64, n_layer=2, n_head=4,
                         n_embd=32 if args.quick else 128)
    B = 2 if args.quick else 12
    res = {"compile_s": {name: {} for name, _ in loops}, "step_ms": {}}
    baby = base.replace(n_layer=2 if args.quick else 4)
    reps = 2 if args.quick else 10
    for L in depths:
        for name, unroll in loops:
            s, ms = compile_and_step(base.replace(n_layer=L, scan_unroll=unroll or L), B,
                                     reps=reps if args.quick else 0)
            res["compile_s"][name][L] = s
            if args.quick:
                res["step_ms"][f"float32 {name} jax.grad"] = ms
            print(f"n_layer={L:2d} {name:8s}: compile {s:.2f} s", flush=True)

    grads = {"jax.grad": jax.value_and_grad, "fungpt.grad": fungpt.value_and_grad}
    for dt in () if args.quick else ("float32", "bfloat16"):
        for loop, unroll in loops:
            unroll = unroll or baby.n_layer
            for gname, g in grads.items():
                key = f"{dt} {loop} {gname}"
                try:
                    _, res["step_ms"][key] = compile_and_step(baby.replace(compute_dtype=dt, scan_unroll=unroll), B,
                                                              g, reps)
                    print(f"baby value_and_grad {key:32s}: {res['step_ms'][key]:7.1f} ms", flush=True)
                except (NotImplementedError, jax.errors.JaxRuntimeError) as e:  # report it, keep measuring
                    res["step_ms"][key] = None
                    print(f"baby value_and_grad {key:32s}: {str(e).splitlines()[0][:100]}", flush=True)

    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "gpt_compile_time.json").write_text(json.dumps(res, indent=1))
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4.5, 3), dpi=90)
    for name, d in res["compile_s"].items():
        ax.plot(list(d), list(d.values()), "o-", label=f"{name}")
    ax.set(xlabel="n_layer", ylabel="compile time of value_and_grad (s)", ylim=(0, None),
           title="lax.scan keeps compile time flat")
    ax.legend()
    fig.tight_layout()
    fig.savefig(args.out / "gpt_compile_time.png")
    return res


if __name__ == "__main__":
    main()
