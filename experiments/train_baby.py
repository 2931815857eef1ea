"""The headline run: `fungpt train` on the baby preset vs the nanoGPT/PyTorch reference (baselines.md).

Runs the real command (`python -m fungpt.cli train ...`) in a subprocess per variant, so the wall time
counts start-up, compilation, 2,000 iterations, 8 evals, the final checkpoint and the sample. Reads the
run's metrics.jsonl for the median ms/iter (over 10-step logging windows) and the validation losses,
and plots our validation curve against nanoGPT's. Writes experiments/out/train_baby.{json,png} and
the runs under experiments/out/train_baby/.

    .venv/bin/python experiments/train_baby.py                      # float32 with fungpt.grad (~1-2 min)
    .venv/bin/python experiments/train_baby.py --variants float32:fungpt,float32:jax,bfloat16:fungpt
    .venv/bin/python experiments/train_baby.py --quick              # a tiny model, 6 steps (smoke test)
    .venv/bin/python experiments/train_baby.py --from-runs runs/baby   # table and figure of finished runs

On an accelerator: the losses match the CPU run to float32 rounding on a GPU (bfloat16 matrix products by
default on a TPU move them slightly); ms/iter becomes the accelerator's.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import pathlib
import shutil
import statistics
import subprocess
import sys
import time

OUT = pathlib.Path(__file__).resolve().parent / "out"

# nanoGPT (PyTorch 2.13 eager float32, 2 threads) on this machine, from docs/baselines.md.
REFERENCE = {
    "ms_per_iter": 28.5, "tokens_per_s": 26_975, "whole_run_s": 63.0, "val_loss_2000": 1.9443,
    "val_curve": {250: 2.5085, 500: 2.3533, 750: 2.2179, 1000: 2.1337, 1250: 2.0174, 1500: 2.0048,
                  1750: 1.9491, 2000: 1.9443},
}
# The tiny model of the test suite (so the smoke test reuses its compiled step).
QUICK = ["--n-layer", "1", "--n-head", "2", "--n-embd", "16", "--block-size", "8", "--batch-size", "4",
         "--grad-accum", "1", "--dropout", "0.0", "--max-iters", "6", "--warmup-iters", "2",
         "--lr-decay-iters", "6", "--eval-interval", "3", "--eval-iters", "2", "--ckpt-interval", "100",
         "--log-interval", "2", "--sample-tokens", "0"]


def run_variant(dtype: str, grad: str, quick: bool, data: str | None = None, out: pathlib.Path = OUT) -> dict:
    """One `fungpt train` run; its summary plus the wall time of the whole command and the printed sample."""
    run_dir = out / "train_baby" / f"{dtype}-{grad}{'-quick' if quick else ''}"
    shutil.rmtree(run_dir, ignore_errors=True)
    argv = ["train", "--dtype", dtype, "--grad", grad, "--out-dir", str(run_dir), "--no-progress",
            *(QUICK if quick else []), *(["--data", data] if data else [])]
    t = time.perf_counter()
    if quick:  # in-process: a smoke test of the pipeline, not a timing
        from fungpt import cli

        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            rc = cli.main(argv)
        proc = subprocess.CompletedProcess(argv, rc, buf.getvalue(), "")
    else:  # a fresh interpreter: the wall time counts start-up and imports, like the user's command
        proc = subprocess.run([sys.executable, "-m", "fungpt.cli", *argv], capture_output=True, text=True)
    wall = time.perf_counter() - t
    if proc.returncode != 0:
        raise RuntimeError(f"fungpt {' '.join(argv)} failed:\n{proc.stderr[-3000:]}")
    return {**summarize(run_dir), "whole_run_s": wall, "sample": _sample(proc.stdout)}


def summarize(run_dir: pathlib.Path) -> dict:
    """Speed and validation curve of a finished run, from its metrics.jsonl and checkpoint config."""
    run_dir = pathlib.Path(run_dir)
    cfg = json.loads((run_dir / (run_dir / "latest").read_text().strip() / "state.json").read_text())["config"]
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    tps = [r["tokens_per_s"] for r in rows if "tokens_per_s" in r][1:]  # the first window includes compile
    evals = {r["step"]: r["val_loss"] for r in rows if "val_loss" in r}
    last = max(evals)
    tps_med = statistics.median(tps) if tps else float("nan")
    tok_per_step = cfg["batch_size"] * cfg["model"]["block_size"] * cfg["grad_accum"]
    return {"dtype": cfg["model"]["compute_dtype"] or "float32", "grad": cfg["grad"], "tokens_per_s": tps_med,
            "ms_per_iter": 1e3 * tok_per_step / tps_med, "val_loss_final": evals[last], "final_step": last,
            "val_curve": evals, "run_dir": str(run_dir),
            "train_loop_s": max((r["elapsed_s"] for r in rows if "elapsed_s" in r), default=None)}


def _sample(stdout: str) -> str:
    # `fungpt train --no-progress` prints eval lines, then the sample, then a "done:" line
    lines = stdout.rstrip("\n").split("\n")
    last_eval = max((i for i, ln in enumerate(lines) if ln.startswith("step ")), default=-1)
    return "\n".join(lines[last_eval + 1 : -1])


def plot(results: list[dict], path: pathlib.Path, quick: bool) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 3.4), dpi=100)
    if not quick:
        ref = REFERENCE["val_curve"]
        ax.plot(list(ref), list(ref.values()), "k--", marker="s", ms=3,
                label=f"nanoGPT (PyTorch) reference: {REFERENCE['val_loss_2000']:.4f} at 2000")
    for r in results:
        curve = r["val_curve"]
        ax.plot(list(curve), list(curve.values()), marker="o", ms=3,
                label=f"fungpt {r['dtype']}, grad={r['grad']}: {r['val_loss_final']:.4f} at {r['final_step']}")
    ax.set_xlabel("iteration")
    ax.set_ylabel("validation loss (nats/char)")
    ax.set_title("baby GPT on shakespeare_tiny, 2-core CPU" if not quick else "quick smoke run")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--variants", default="float32:fungpt", help="comma-separated dtype:grad pairs")
    ap.add_argument("--quick", action="store_true", help="a tiny model, 6 steps, in-process")
    ap.add_argument("--data", help="a text file instead of the shipped corpus")
    ap.add_argument("--out", type=pathlib.Path, default=OUT, help="folder for the JSON and PNG files")
    ap.add_argument("--from-runs", nargs="+", metavar="RUN_DIR", help="only summarize and plot finished runs")
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    if args.from_runs:
        results = [{**summarize(d), "whole_run_s": None} for d in args.from_runs]
    else:
        results = [run_variant(*v.split(":"), args.quick, args.data, args.out) for v in args.variants.split(",")]
    plot(results, args.out / "train_baby.png", args.quick)
    (args.out / "train_baby.json").write_text(json.dumps({"reference": REFERENCE, "results": results}, indent=1))
    print(f"{'variant':18} {'ms/iter':>8} {'tokens/s':>9} {'val loss':>9} {'whole run s':>11}")
    if not args.quick:
        print(f"{'nanoGPT reference':18} {REFERENCE['ms_per_iter']:8.1f} {REFERENCE['tokens_per_s']:9,.0f} "
              f"{REFERENCE['val_loss_2000']:9.4f} {REFERENCE['whole_run_s']:11.1f}")
    for r in results:
        print(f"{r['dtype'] + ':' + r['grad']:18} {r['ms_per_iter']:8.1f} {r['tokens_per_s']:9,.0f} "
              f"{r['val_loss_final']:9.4f} {r['whole_run_s'] or float('nan'):11.1f}")
    return results


if __name__ == "__main__":
    main()
