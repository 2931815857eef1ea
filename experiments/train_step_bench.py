"""Time the whole jitted train step (batch sampling, forward, backward, clip, AdamW) of a preset.

Variants, each measured in one process and interleaved round by round so machine noise hits them alike:
gradient = fungpt.value_and_grad (our autodiff) vs jax.value_and_grad; dtype = float32 vs bfloat16
(bf16 matrix products, f32 accumulation, f32 master weights and elementwise work). Reports the median
ms/iter, the median process CPU time per step (steadier than wall time on a shared machine), tokens/s,
MFU against this machine's measured float32 matmul peak, compile time, and the fungpt/jax ratio.
Writes experiments/out/train_step_bench.{json,png}; the figure: ms per step of each variant, labelled with
its MFU (what fraction of the machine's measured matmul peak the step's model FLOPs reach).

    .venv/bin/python experiments/train_step_bench.py            # baby preset, 200 timed steps per variant
    .venv/bin/python experiments/train_step_bench.py --quick    # a tiny model, a few steps (smoke test)
    .venv/bin/python experiments/train_step_bench.py --compare-unroll --steps 64 --rounds 8

On an accelerator: ms/iter, tokens/s and MFU become the accelerator's (MFU is against the matmul peak measured
on the same device); the fungpt/jax ratio is the result to compare.
"""
from __future__ import annotations

import argparse
import json
import pathlib
import statistics
import time

import jax
import jax.numpy as jnp

from fungpt.gpt import model as gpt
from fungpt.gpt import train as T
from fungpt.runtime import tune_malloc

OUT = pathlib.Path(__file__).resolve().parent / "out"
# The tiny model of the test suite (so the smoke test reuses its compiled steps).
QUICK = dict(n_layer=1, n_head=2, n_embd=16, block_size=8, batch_size=4, grad_accum=1, dropout=0.0,
             warmup_iters=2, lr_decay_iters=6, eval_iters=2)


def matmul_peak_gflops(n: int = 2048, reps: int = 5) -> float:
    """Measured float32 n×n matmul throughput of jax.jit on this machine (GFLOP/s, best of reps)."""
    a = jax.random.normal(jax.random.key(0), (n, n), jnp.float32)
    f = jax.jit(lambda x: x @ x)
    f(a).block_until_ready()
    best = float("inf")
    for _ in range(reps):
        t = time.perf_counter()
        f(a).block_until_ready()
        best = min(best, time.perf_counter() - t)
    return 2 * n**3 / best / 1e9


def model_flops_per_step(cfg: T.TrainConfig, n_params: int) -> float:
    """nanoGPT's estimate: (6N + 12·L·C·T) FLOPs per token, times the tokens of one step."""
    m = cfg.model
    per_token = 6 * n_params + 12 * m.n_layer * m.n_embd * m.block_size
    return per_token * cfg.batch_size * m.block_size * cfg.grad_accum


def compare_unroll(preset: str, steps: int, rounds: int, quick: bool, data: str | None) -> list[dict]:
    """The fungpt.grad step with the layers in a lax.scan (scan_unroll=1) vs unrolled (0 = all), interleaved."""
    runs = {}
    for unroll in (0, 1):
        cfg = T.config_from(preset, scan_unroll=unroll, data=data, **(QUICK if quick else {}))
        tok, train_np, _ = T.prepare_data(cfg)
        mesh = T.make_mesh()
        ids = T.put_ids(train_np, mesh)
        k_init, k_data, k_drop, _, _ = T.run_keys(cfg.seed)
        fns = T.compiled_functions(T.step_fields(cfg), tok.vocab_size, mesh)
        params = fns.init(k_init)
        state, loss, _, _ = fns.step(T.TrainState(params, fns.opt_init(params)), jnp.int32(0), ids, k_data, k_drop)
        loss.block_until_ready()
        runs[unroll] = dict(step=fns.step, state=state, ids=ids, keys=(k_data, k_drop), wall=[], cpu=[])
    for _ in range(rounds):
        for r in runs.values():
            for s in range(max(1, steps // rounds)):
                t, c = time.perf_counter(), time.process_time()
                r["state"], loss, _, _ = r["step"](r["state"], jnp.int32(s + 1), r["ids"], *r["keys"])
                loss.block_until_ready()
                r["wall"].append(time.perf_counter() - t)
                r["cpu"].append(time.process_time() - c)
    rows = [dict(scan_unroll=u or "all", ms_per_iter=1e3 * statistics.median(r["wall"]),
                 cpu_ms_per_iter=1e3 * statistics.median(r["cpu"])) for u, r in runs.items()]
    for row in rows:
        print(f"scan_unroll={row['scan_unroll']}: {row['ms_per_iter']:.1f} ms/iter, "
              f"CPU {row['cpu_ms_per_iter']:.1f} ms")
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="baby")
    ap.add_argument("--steps", type=int, default=200, help="timed steps per variant")
    ap.add_argument("--rounds", type=int, default=5, help="interleaved rounds")
    ap.add_argument("--dtypes", default="float32,bfloat16", help="'float32' alone with --quick")
    ap.add_argument("--quick", action="store_true", help="tiny model, few steps")
    ap.add_argument("--data", help="a text file instead of the shipped corpus")
    ap.add_argument("--out", type=pathlib.Path, default=OUT, help="folder for the JSON and PNG files")
    ap.add_argument("--set", nargs="*", default=[], metavar="FIELD=VALUE",
                    help="TrainConfig overrides, e.g. --set scan_unroll=1 batch_size=24 (values parsed as JSON)")
    ap.add_argument("--compare-unroll", action="store_true",
                    help="instead: layers in a lax.scan vs unrolled (fungpt.grad, float32), interleaved")
    args = ap.parse_args(argv)
    tune_malloc()  # as `fungpt train` does: XLA:CPU temporaries stop page-faulting
    steps, rounds = (4, 2) if args.quick else (args.steps, args.rounds)
    if args.compare_unroll:
        return compare_unroll(args.preset, steps, rounds, args.quick, args.data)
    peak = matmul_peak_gflops(256 if args.quick else 2048)
    rows, failed = [], []
    for dtype in args.dtypes.split(","):
        sets = {k: json.loads(v) for k, v in (kv.split("=", 1) for kv in args.set)}
        cfg = T.config_from(args.preset, dtype=dtype, data=args.data, **(QUICK if args.quick else {}), **sets)
        tok, _, _ = T.prepare_data(cfg)
        _, mcfg = T.gpt_model(cfg, tok.vocab_size)
        n_params = gpt.num_params(jax.eval_shape(lambda mcfg=mcfg: gpt.init_params(mcfg, jax.random.key(0))))
        try:  # both gradients interleaved in one run, so noise hits them alike
            res = T.bench_step(cfg, steps=steps, rounds=rounds)
        except Exception:  # one engine failed: time each alone so the other's figures survive
            res = {}
            for grad in ("fungpt", "jax"):
                try:
                    res.update(T.bench_step(cfg, grads=(grad,), steps=steps, rounds=rounds))
                except Exception as e:  # reported in the table rather than losing the run
                    print(f"{dtype} {grad}: FAILED: {str(e).splitlines()[0][:160]}")
                    failed.append(dict(dtype=dtype, grad=grad, error=str(e).splitlines()[0]))
        for grad, r in res.items():
            rows.append(dict(dtype=dtype, grad=grad, ms_per_iter=r["ms_per_iter"], tokens_per_s=r["tokens_per_s"],
                             mfu=model_flops_per_step(cfg, n_params) / (r["ms_per_iter"] / 1e3) / (peak * 1e9),
                             compile_s=r["compile_s"], cpu_ms_per_iter=r["cpu_ms_per_iter"],
                             ratio_vs_jax=r["ms_per_iter"] / res["jax"]["ms_per_iter"] if "jax" in res else None))
    print(f"preset {args.preset}{' (quick)' if args.quick else ''}; jax {jax.__version__} on "
          f"{jax.devices()[0].platform}; measured float32 matmul peak {peak:.0f} GFLOP/s")
    print(f"{'dtype':9} {'grad':7} {'ms/iter':>8} {'CPU ms':>7} {'tokens/s':>9} {'MFU':>6} {'compile s':>9} "
          f"{'vs jax':>7}")
    for r in rows:
        print(f"{r['dtype']:9} {r['grad']:7} {r['ms_per_iter']:8.2f} {r['cpu_ms_per_iter']:7.1f} "
              f"{r['tokens_per_s']:9.0f} "
              f"{100 * r['mfu']:5.1f}% {r['compile_s']:9.2f} {r['ratio_vs_jax'] or float('nan'):7.3f}")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "train_step_bench.json").write_text(json.dumps(
        {"peak_gflops": peak, "jax": jax.__version__, "rows": rows, "failed": failed}, indent=1))
    title = f"{args.preset}{' (quick: a tiny model)' if args.quick else ''}"
    plot(rows, title, peak, args.out / "train_step_bench.png")
    return rows


def plot(rows: list[dict], title: str, peak: float, path: pathlib.Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    dtypes = list(dict.fromkeys(r["dtype"] for r in rows))
    fig, ax = plt.subplots(figsize=(5, 3.2), dpi=100)
    for i, grad in enumerate(("fungpt", "jax")):
        got = {r["dtype"]: r for r in rows if r["grad"] == grad}
        xs = [j + (i - 0.5) * 0.38 for j, d in enumerate(dtypes) if d in got]
        bars = ax.bar(xs, [got[d]["ms_per_iter"] for d in dtypes if d in got], 0.36, label=f"{grad}.grad")
        ax.bar_label(bars, [f"MFU {100 * got[d]['mfu']:.0f}%" for d in dtypes if d in got], fontsize=7)
    ax.set(xticks=range(len(dtypes)), xticklabels=[f"{d} products" for d in dtypes], ylabel="ms per train step",
           title=f"train step, preset {title}\nmatmul peak measured: {peak:.0f} GFLOP/s")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


if __name__ == "__main__":
    main()
