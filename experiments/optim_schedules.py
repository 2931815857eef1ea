"""Chapter 5: learning-rate schedules from fungpt.optim, plotted over a 2,000-step run.

Each curve is the schedule evaluated with `jax.vmap` over steps 0..N-1 (the optimizer sees the
0-based step). warmup_cosine uses the baby-GPT settings of docs/baselines.md (nanoGPT's:
peak 1e-3, warmup 100, cosine to 1e-4 at step 2,000).

Run: .venv/bin/python experiments/optim_schedules.py [--quick]
Writes experiments/out/optim_schedules.png and .json.

On an accelerator: nothing changes: the schedules are closed forms evaluated in float32.
"""
import argparse
import json
import pathlib

import jax
import jax.numpy as jnp
import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from fungpt import optim

OUT = pathlib.Path(__file__).resolve().parent / "out"


def schedules(n):
    return {
        "constant(1e-3)": optim.constant(1e-3),
        "linear(1e-3 → 1e-4)": optim.linear(1e-3, 1e-4, n),
        "exponential_decay(×0.5 per n/4)": optim.exponential_decay(1e-3, n // 4, 0.5),
        "exponential_decay staircase": optim.exponential_decay(1e-3, n // 4, 0.5, staircase=True),
        "piecewise ×0.1 at n/2, 3n/4": optim.piecewise_constant([n // 2, 3 * n // 4], [1e-3, 1e-4, 1e-5]),
        "cosine_decay(alpha=0.1 → 1e-4)": optim.cosine_decay(1e-3, n, 0.1),
        "warmup_cosine (nanoGPT)": optim.warmup_cosine(1e-3, n // 20, n, 1e-4),
        "inverse_sqrt(warmup n/20)": optim.inverse_sqrt(1e-3, n // 20),
    }


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="200 steps instead of 2000")
    ap.add_argument("--out", type=pathlib.Path, default=OUT)
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    n = 200 if args.quick else 2000
    steps = jnp.arange(n, dtype=jnp.int32)
    fig, (ax, axlin) = plt.subplots(1, 2, figsize=(12, 4.5))
    table = {}
    for name, sched in schedules(n).items():
        lr = np.asarray(jax.jit(jax.vmap(sched))(steps))
        ax.plot(np.arange(n), lr, label=name, lw=1.4)
        axlin.plot(np.arange(n), lr, lw=1.4)
        table[name] = {str(t): float(lr[t]) for t in (0, n // 20, n // 2, n - 1)}
    ax.set(xlabel="step", ylabel="learning rate", yscale="log", title="fungpt.optim schedules (log scale)")
    axlin.set(xlabel="step", ylabel="learning rate", title="linear scale")
    ax.legend(fontsize=8, loc="lower left")
    fig.tight_layout()
    fig.savefig(args.out / "optim_schedules.png", dpi=80)
    (args.out / "optim_schedules.json").write_text(json.dumps(table, indent=1))
    print(json.dumps(table, indent=1))
    return table


if __name__ == "__main__":
    main()
