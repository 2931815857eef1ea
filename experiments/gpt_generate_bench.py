"""Generation speed: tokens/s with and without the KV cache, batch 1 and 16.

    .venv/bin/python experiments/gpt_generate_bench.py [--quick]

Models (random weights: speed does not depend on them): "baby" (4 layers, 4 heads, 128 dims, block 64,
vocab 80), 500 new tokens from a 1-token prompt, so 436 of them past the block (nanoGPT's crop: each of
those steps is a full forward over the 64-token window; also crop="half", which rebuilds the cache once
per 32 tokens instead, and the exact crop with bfloat16 matrix products, compute_dtype="bfloat16"); and
"384" (6 layers, 6 heads, 384 dims, block 256), 255 new tokens, all inside the block, where the cache
replaces recomputation (the uncached rate there is measured on 8 steps, once: each step recomputes the
full padded block, so its cost is constant, and all 255 steps would take minutes).  Sampling with
temperature 0.8 and top_k 200 (clipped to the vocabulary), as nanoGPT's sample.py.  Times exclude
compilation (first call); median of 3 runs.  Writes experiments/out/gpt_generate_bench.{json,png}.

On an accelerator: tokens/s become the accelerator's: the KV cache's gain over recomputation is the result to
compare.
"""
import argparse
import json
import pathlib
import time

import jax
import jax.numpy as jnp
import numpy as np

from fungpt import gpt
from fungpt.runtime import tune_malloc

OUT = pathlib.Path(__file__).parent / "out"
TORCH_BABY_TOK_S = 234  # nanoGPT sample.py, no cache, batch 1 (docs/baselines.md)


def bench(cfg, batch, new, use_cache, reps=3, crop="sliding"):
    params = gpt.init_params(cfg, jax.random.key(0))
    prompt = jnp.zeros((batch, 1), jnp.int32)
    run = lambda k: gpt.generate(params, cfg, prompt, new, jax.random.key(k), 0.8, min(200, cfg.vocab_size),
                                 use_cache=use_cache, crop=crop)
    t = time.perf_counter()
    jax.block_until_ready(run(0))
    compile_s = time.perf_counter() - t
    ts = []
    for k in range(reps):
        t = time.perf_counter()
        jax.block_until_ready(run(k + 1))
        ts.append(time.perf_counter() - t)
    return batch * new / float(np.median(ts)), compile_s


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out", type=pathlib.Path, default=OUT, help="folder for the JSON and PNG files")
    args = ap.parse_args(argv)
    tune_malloc()  # as `fungpt train` does: XLA:CPU temporaries stop page-faulting
    if args.quick:
        models = {"tiny": (gpt.GPTConfig(vocab_size=80, block_size=16, n_layer=1, n_head=2, n_embd=16), 12)}
        batches, reps = (1,), 1
    else:
        models = {"baby": (gpt.baby(80), 500),
                  "384": (gpt.GPTConfig(vocab_size=80, block_size=256, n_layer=6, n_head=6, n_embd=384), 255)}
        batches, reps = (1, 16), 3
    res = []
    for name, (cfg, new) in models.items():
        for B in batches:
            row = {"model": name, "batch": B, "new_tokens": new}
            for use_cache in (True, False):
                # Without the cache every step is a forward over the full (padded) block, the same cost at
                # every step, so 8 steps measure its rate on the 384 model (all 255 take minutes).
                slow = not use_cache and name == "384"
                tps, cs = bench(cfg, B, 8 if slow else new, use_cache, 1 if slow else reps)
                row["cached" if use_cache else "uncached"] = tps
                row[f"compile_s_{'cached' if use_cache else 'uncached'}"] = cs
            row["speedup"] = row["cached"] / row["uncached"]
            if new > cfg.block_size:  # past the block: also the crop="half" variant and bf16 products
                row["cached_half"], row["compile_s_half"] = bench(cfg, B, new, True, reps, crop="half")
                row["cached_bf16"], _ = bench(cfg.replace(compute_dtype="bfloat16"), B, new, True, reps)
            res.append(row)
            half = (f", crop='half' {row['cached_half']:9.0f} tok/s, bf16 products {row['cached_bf16']:6.0f} tok/s"
                    if "cached_half" in row else "")
            print(f"{name:5s} batch {B:2d}, {new} new tokens: cached {row['cached']:9.0f} tok/s, "
                  f"uncached {row['uncached']:9.0f} tok/s, cache speedup {row['speedup']:.2f}x{half}", flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "gpt_generate_bench.json").write_text(json.dumps({"torch_baby_tok_s": TORCH_BABY_TOK_S, "rows": res},
                                                                 indent=1))
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 3), dpi=90)
    labels = [f"{r['model']}\nbatch {r['batch']}" for r in res]
    xs = np.arange(len(res))
    ax.bar(xs - 0.27, [r["uncached"] for r in res], 0.27, label="recompute")
    ax.bar(xs, [r["cached"] for r in res], 0.27, label="KV cache (nanoGPT crop)")
    ax.bar(xs + 0.27, [r.get("cached_half", 0) for r in res], 0.27, label="KV cache, crop='half'")
    if not args.quick:
        ax.axhline(TORCH_BABY_TOK_S, color="gray", ls=":", label="nanoGPT (PyTorch) baby, batch 1")
    ax.set(xticks=xs, xticklabels=labels, yscale="log", ylabel="tokens / s", title="fungpt.gpt.generate")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(args.out / "gpt_generate_bench.png")
    return res


if __name__ == "__main__":
    main()
