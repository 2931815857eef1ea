"""fungpt.grad vs jax.grad: jitted gradient time, compile time, peak memory, un-jitted time, accuracy.

    python experiments/autodiff_vs_jax.py [--quick] [--runs 25]

For an MLP loss and the baby GPT loss (4 layers, 4 heads, 128 dims, block 64, batch 12; its layers run
by a `lax.scan`, and unrolled: scan_unroll = n_layer) it times the two jitted gradients interleaved
(median of --runs calls after warm-up; also the median of the per-pair ratios and the ratio of median
CPU times, steadier when other processes load the machine), compiles each three times (median), reads
XLA's memory analysis of the compiled gradient, times un-jitted calls, and reports the max relative
gradient difference. Prints a Markdown table; writes experiments/out/autodiff_vs_jax.{json,png}.
The figure: for each case, fungpt.grad's cost over jax.grad's (jitted time, compile time, memory, un-jitted
time) around the line 1 = "the same program", with the gradients' largest relative difference.

On an accelerator: the times, compile times and memory become the accelerator's: the fungpt/jax ratios are the
result to compare there. The gradient difference stays at float32 rounding on a GPU; on a TPU, float32 matrix
products run at bfloat16 precision by default, so it grows toward 1e-3.
"""
import argparse
import dataclasses
import functools
import json
import os
import pathlib
import platform
import statistics
import time

import jax
import jax.numpy as jnp

import fungpt
from fungpt import gpt
from fungpt.runtime import tune_malloc

OUT = pathlib.Path(__file__).resolve().parent / "out"


def mlp_case(key, quick):
    sizes = [64, 256, 256, 10] if not quick else [16, 32, 10]
    keys = jax.random.split(key, len(sizes) + 1)
    params = [{"w": jax.random.normal(k, (a, b), jnp.float32) / a**0.5, "b": jnp.zeros((b,), jnp.float32)}
              for k, a, b in zip(keys, sizes[:-1], sizes[1:], strict=False)]
    x = jax.random.normal(keys[-1], (256 if not quick else 16, sizes[0]), jnp.float32)
    y = jax.random.randint(keys[-2], (x.shape[0],), 0, sizes[-1])

    def loss(params, x, y):
        h = x
        for layer in params[:-1]:
            h = jax.nn.gelu(h @ layer["w"] + layer["b"][None])  # explicit broadcast: rank promotion may be off
        logits = h @ params[-1]["w"] + params[-1]["b"][None]
        logp = jax.nn.log_softmax(logits)
        return -jnp.mean(jnp.take_along_axis(logp, y[:, None], axis=1))

    return "MLP " + "-".join(map(str, sizes)) + f", batch {x.shape[0]}", loss, (params, x, y)


def gpt_case(key, quick, unrolled=False):
    cfg = gpt.config.baby(vocab_size=80) if not quick else gpt.GPTConfig(
        vocab_size=80, block_size=16, n_layer=2, n_head=2, n_embd=32)
    if unrolled:
        cfg = dataclasses.replace(cfg, scan_unroll=cfg.n_layer)
    batch = 12 if not quick else 2
    params = gpt.init_params(cfg, key)
    tokens = jax.random.randint(jax.random.fold_in(key, 1), (batch, cfg.block_size + 1), 0, cfg.vocab_size)
    x, y = tokens[:, :-1], tokens[:, 1:]
    loss = lambda params, x, y: gpt.loss(params, x, y, cfg)
    name = (f"GPT {cfg.n_layer}L {cfg.n_head}H {cfg.n_embd}d, block {cfg.block_size}, batch {batch}, "
            f"layers {'unrolled' if unrolled else 'scanned'}")
    return name, loss, (params, x, y)


def _block(tree):
    return jax.tree_util.tree_map(lambda a: a.block_until_ready(), tree)


def _compile(fn, args, repeats):
    times, compiled = [], None
    for _ in range(repeats):
        jax.clear_caches()
        t0 = time.perf_counter()
        compiled = jax.jit(fn).lower(*args).compile()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), compiled


def _memory(compiled):
    m = compiled.memory_analysis()
    return None if m is None else int(m.temp_size_in_bytes + m.output_size_in_bytes)


def _rel_diff(a, b):
    return max(float(jnp.max(jnp.abs(x - y)) / jnp.maximum(jnp.max(jnp.abs(y)), 1e-30))
               for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b), strict=True))


def measure(name, loss, args, runs, eager_runs, compile_repeats):
    ours, theirs = fungpt.grad(loss), jax.grad(loss)
    c_ours, comp_ours = _compile(ours, args, compile_repeats)
    c_jax, comp_jax = _compile(theirs, args, compile_repeats)
    _block(comp_ours(*args))
    _block(comp_jax(*args))
    t_ours, t_jax, pairs, cpu = [], [], [], {"ours": [], "jax": []}
    for i in range(runs):  # interleaved (alternating order) so drifts in machine load hit both alike
        for who in (("ours", "jax") if i % 2 == 0 else ("jax", "ours")):
            c0, t0 = time.process_time(), time.perf_counter()
            _block((comp_ours if who == "ours" else comp_jax)(*args))
            (t_ours if who == "ours" else t_jax).append(time.perf_counter() - t0)
            cpu[who].append(time.process_time() - c0)
        pairs.append(t_ours[-1] / t_jax[-1])
    e_ours, e_jax = [], []
    for _ in range(eager_runs):
        t0 = time.perf_counter()
        _block(ours(*args))
        e_ours.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        _block(theirs(*args))
        e_jax.append(time.perf_counter() - t0)
    m_ours, m_jax = _memory(comp_ours), _memory(comp_jax)
    ms = lambda ts: 1e3 * statistics.median(ts)
    return {
        "case": name,
        "jit_ms_fungpt": ms(t_ours), "jit_ms_jax": ms(t_jax), "jit_ratio": ms(t_ours) / ms(t_jax),
        "jit_ratio_median_of_pairs": statistics.median(pairs),
        "jit_cpu_ratio": statistics.median(cpu["ours"]) / statistics.median(cpu["jax"]),
        "compile_s_fungpt": c_ours, "compile_s_jax": c_jax, "compile_ratio": c_ours / c_jax,
        "mem_bytes_fungpt": m_ours, "mem_bytes_jax": m_jax,
        "mem_ratio": (m_ours / m_jax) if m_ours and m_jax else None,
        "eager_ms_fungpt": ms(e_ours), "eager_ms_jax": ms(e_jax), "eager_ratio": ms(e_ours) / ms(e_jax),
        "max_rel_diff": _rel_diff(comp_ours(*args), comp_jax(*args)),
    }


def table(rows):
    lines = ["| case | jit grad ms fungpt / jax (ratio) | pairs / CPU ratio | compile s (ratio) | "
             "peak temp+out MB (ratio) | un-jitted ms (ratio) | max rel diff |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        mem = (f"{r['mem_bytes_fungpt'] / 1e6:.1f} / {r['mem_bytes_jax'] / 1e6:.1f} ({r['mem_ratio']:.2f})"
               if r["mem_ratio"] else "n/a")
        lines.append(f"| {r['case']} | {r['jit_ms_fungpt']:.2f} / {r['jit_ms_jax']:.2f} (**{r['jit_ratio']:.2f}**) | "
                     f"{r['jit_ratio_median_of_pairs']:.2f} / {r['jit_cpu_ratio']:.2f} | "
                     f"{r['compile_s_fungpt']:.2f} / {r['compile_s_jax']:.2f} ({r['compile_ratio']:.2f}) | {mem} | "
                     f"{r['eager_ms_fungpt']:.0f} / {r['eager_ms_jax']:.0f} ({r['eager_ratio']:.2f}) | "
                     f"{r['max_rel_diff']:.1e} |")
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="tiny shapes, few runs (a smoke test)")
    ap.add_argument("--runs", type=int, default=25)
    ap.add_argument("--out", type=pathlib.Path, default=OUT)
    args = ap.parse_args(argv)
    tune_malloc()  # as `fungpt train` does: XLA:CPU temporaries stop page-faulting
    runs, eager, reps = (3, 1, 1) if args.quick else (max(20, args.runs), 5, 3)
    key = jax.random.key(0)
    cases = (mlp_case, gpt_case, functools.partial(gpt_case, unrolled=True))
    load = [os.getloadavg()[0]]
    rows = [measure(*case(key, args.quick), runs, eager, reps) for case in cases]
    load.append(os.getloadavg()[0])
    print(f"jax {jax.__version__}, {platform.machine()}, {os.cpu_count()} CPUs, {jax.devices()[0].device_kind}, "
          f"{len(jax.devices())} device(s); load average {load[0]:.1f} -> {load[1]:.1f}")
    print(table(rows))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "autodiff_vs_jax.json").write_text(json.dumps(
        {"jax": jax.__version__, "device": jax.devices()[0].device_kind, "cpus": os.cpu_count(),
         "load_average": load, "rows": rows}, indent=2))
    plot(rows, args.out / "autodiff_vs_jax.png", args.quick)
    return rows


def plot(rows, path, quick):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    kinds = [("jit_ratio", "jitted gradient time"), ("compile_ratio", "compile time"),
             ("mem_ratio", "temp + output memory"), ("eager_ratio", "un-jitted time")]
    fig, ax = plt.subplots(figsize=(7, 3.4), dpi=100)
    w = 0.8 / len(kinds)
    for i, (k, label) in enumerate(kinds):
        ax.bar([j + (i - 1.5) * w for j in range(len(rows))], [r[k] or 0.0 for r in rows], w, label=label)
    ax.axhline(1.0, color="k", lw=0.8, ls=":")
    ax.set_xticks(range(len(rows)), [f"{r['case'].split(',')[0]}{' (scanned)' if 'scanned' in r['case'] else ''}"
                                     f"{' (unrolled)' if 'unrolled' in r['case'] else ''}\n"
                                     f"max rel diff {r['max_rel_diff']:.0e}" for r in rows], fontsize=7)
    ax.set(ylabel="fungpt.grad / jax.grad", title="our autodiff vs JAX's on the same loss"
           + (" (quick: tiny shapes)" if quick else ""))
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


if __name__ == "__main__":
    main()
