"""Chapter 5: what does composition cost? The GPT train step's optimizer, timed.

`ours` is the chain the GPT trainer uses (fungpt.optim, one tree_map per small transform):
    chain(clip_by_global_norm(1.0), adamw(warmup_cosine(1e-3, 100, 2000, 1e-4), b2=0.99,
                                          weight_decay=0.1, mask=ndim_mask))
`fused` is the same update hand-written as one function with a single tree_map (the reference).
Both are jitted; the script checks they agree, then times them interleaved in one process on the
baby-GPT parameter shapes (4 layers, 128 dims, vocab 80, block 64: 0.80M parameters) and reports
medians, their ratio, and the number of XLA fusions in each compiled step.

Run: .venv/bin/python experiments/optim_bench.py [--quick]
Writes experiments/out/optim_bench.json.

On an accelerator: the times and the ratio become the accelerator's; the fusion counts are the compiler's for
that backend.
"""
import argparse
import json
import math
import os
import pathlib
import platform
import time

import jax
import jax.numpy as jnp
import numpy as np

from fungpt import optim

OUT = pathlib.Path(__file__).resolve().parent / "out"
B1, B2, EPS, WD, CLIP = 0.9, 0.99, 1e-8, 0.1, 1.0
SCHED = optim.warmup_cosine(1e-3, 100, 2000, 1e-4)


def baby_gpt_shapes(n_layer=4, c=128, vocab=80, block=64):
    layer = {"ln_1": {"w": (c,), "b": (c,)}, "attn": {"c_attn": {"w": (c, 3 * c), "b": (3 * c,)},
             "c_proj": {"w": (c, c), "b": (c,)}}, "ln_2": {"w": (c,), "b": (c,)},
             "mlp": {"c_fc": {"w": (c, 4 * c), "b": (4 * c,)}, "c_proj": {"w": (4 * c, c), "b": (c,)}}}
    return {"wte": (vocab, c), "wpe": (block, c), "h": [layer] * n_layer, "ln_f": {"w": (c,), "b": (c,)}}


def make_tree(shapes, rng):
    return jax.tree.map(lambda s: jnp.asarray(rng.standard_normal(s), jnp.float32), shapes,
                        is_leaf=lambda s: isinstance(s, tuple))


OURS = optim.chain(optim.clip_by_global_norm(CLIP),
                   optim.adamw(SCHED, b1=B1, b2=B2, eps=EPS, weight_decay=WD, mask=optim.ndim_mask))


def ours_step(params, state, grads):
    updates, state = OURS.update(grads, state, params)
    return optim.apply_updates(params, updates), state


def fused_init(params):
    zeros = jax.tree.map(jnp.zeros_like, params)
    return jnp.zeros((), jnp.int32), zeros, zeros


def fused_step(params, state, grads):
    count, mu, nu = state
    norm = jnp.sqrt(sum(jnp.sum(g * g) for g in jax.tree.leaves(grads)))
    scale = CLIP / jnp.maximum(norm, CLIP)
    lr = SCHED(count).astype(jnp.float32)
    t = (count + 1).astype(jnp.float32)
    c1, c2 = 1 - B1**t, 1 - B2**t

    def leaf(p, g, m, v):
        g = g * scale
        m = B1 * m + (1 - B1) * g
        v = B2 * v + (1 - B2) * g * g
        u = (m / c1) / (jnp.sqrt(v / c2) + EPS) + (WD * p if p.ndim >= 2 else 0.0)
        return p - lr * u, m, v

    out = jax.tree.map(leaf, params, grads, mu, nu)
    pick = lambda i: jax.tree.map(lambda _, o: o[i], params, out)
    return pick(0), (count + 1, pick(1), pick(2))




def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="no transformer blocks, few timing repeats")
    ap.add_argument("--out", type=pathlib.Path, default=OUT)
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    shapes = baby_gpt_shapes(n_layer=0 if args.quick else 4)  # quick: embeddings and ln_f only
    params = make_tree(shapes, rng)
    n_params = sum(math.prod(x.shape) for x in jax.tree.leaves(params))
    grads = [make_tree(shapes, rng) for _ in range(3)]

    p1, s1, p2, s2 = params, OURS.init(params), params, fused_init(params)
    # Compile once, ahead of time: the compiled executables are what we time and inspect.
    ours = jax.jit(ours_step).lower(p1, s1, grads[0]).compile()
    fused = jax.jit(fused_step).lower(p2, s2, grads[0]).compile()
    for g in grads:  # same results (and warm-up/compile)
        p1, s1 = ours(p1, s1, g)
        p2, s2 = fused(p2, s2, g)
    err = max(float(jnp.max(jnp.abs(a - b))) for a, b in zip(jax.tree.leaves(p1), jax.tree.leaves(p2), strict=True))
    assert err < 1e-6, f"ours and fused disagree by {err}"

    repeats = 20 if args.quick else 300
    times = {"ours": [], "fused": []}
    g = grads[0]
    for _ in range(repeats):  # interleaved, so machine noise hits both alike
        for name, fn, st in (("ours", ours, s1), ("fused", fused, s2)):
            t0 = time.perf_counter()
            jax.block_until_ready(fn(p1, st, g))
            times[name].append(time.perf_counter() - t0)
    med = {k: float(np.median(v)) * 1e3 for k, v in times.items()}
    report = {
        "machine": f"{platform.machine()} {jax.default_backend()}, {os.cpu_count()} cores, jax {jax.__version__}",
        "n_params": n_params, "repeats": repeats, "max_abs_param_diff": err,
        "median_ms": med, "ratio_ours_over_fused": med["ours"] / med["fused"],
        "xla_fusions": {"ours": ours.as_text().count(" fusion("), "fused": fused.as_text().count(" fusion(")},
    }
    (args.out / "optim_bench.json").write_text(json.dumps(report, indent=1))
    print(json.dumps(report, indent=1))
    return report


if __name__ == "__main__":
    main()
