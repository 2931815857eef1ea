"""Chapter 5: optimizer trajectories on Rosenbrock's valley and on a saddle, with loss vs step.

SGD, momentum (heavy ball), Nesterov, RMSProp and Adam, all from fungpt.optim, gradients from
fungpt.grad. The saddle is f(x, y) = x² - y² + y⁴/2: a saddle at 0, minima at (0, ±1); every run
starts next to the saddle's stable manifold (y = 1e-3), so the plot shows who escapes how fast.

Run: .venv/bin/python experiments/optim_trajectories.py [--quick]
Writes experiments/out/optim_trajectories.png and .json.

On an accelerator: nothing changes beyond float32 rounding: 2-D problems.
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

import fungpt
from fungpt import optim

OUT = pathlib.Path(__file__).resolve().parent / "out"


def rosenbrock(p):
    return (1 - p[0]) ** 2 + 100 * (p[1] - p[0] ** 2) ** 2


def saddle(p):
    return p[0] ** 2 - p[1] ** 2 + 0.5 * p[1] ** 4


PROBLEMS = {
    "rosenbrock": dict(f=rosenbrock, start=[-1.5, 2.0], steps=3000, box=(-2, 2, -1, 3), optimum=[1.0, 1.0],
                       opts={"SGD": lambda: optim.sgd(5e-4),
                             "momentum": lambda: optim.sgd(2e-4, momentum=0.9),
                             "Nesterov": lambda: optim.sgd(2e-4, momentum=0.9, nesterov=True),
                             "RMSProp": lambda: optim.rmsprop(2e-3),
                             "Adam": lambda: optim.adam(2e-2)}),
    "saddle": dict(f=saddle, start=[1.5, 1e-3], steps=300, box=(-2, 2, -1.6, 1.6), optimum=[0.0, 1.0],
                   opts={"SGD": lambda: optim.sgd(0.02),
                         "momentum": lambda: optim.sgd(0.02, momentum=0.9),
                         "Nesterov": lambda: optim.sgd(0.02, momentum=0.9, nesterov=True),
                         "RMSProp": lambda: optim.rmsprop(0.02),
                         "Adam": lambda: optim.adam(0.05)}),
}


def trajectory(opt, f, start, steps):
    """Iterates (steps+1, 2) and losses (steps+1,) of `opt` on f, jitted as one scan."""
    grad = fungpt.grad(f)

    def step(carry, _):
        x, s = carry
        u, s = opt.update(grad(x), s, x)
        x = optim.apply_updates(x, u)
        return (x, s), x

    @jax.jit
    def run(x0):
        _, xs = jax.lax.scan(step, (x0, opt.init(x0)), None, length=steps)
        xs = jnp.concatenate([x0[None], xs])
        return xs, jax.vmap(f)(xs)

    xs, losses = run(jnp.asarray(start, jnp.float32))
    return np.asarray(xs), np.asarray(losses)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="SGD and Adam only, 20 steps, coarse contours")
    ap.add_argument("--out", type=pathlib.Path, default=OUT)
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)

    fig, axes = plt.subplots(2, 2, figsize=(11, 9))
    summary = {}
    for row, (name, prob) in enumerate(PROBLEMS.items()):
        steps = 20 if args.quick else prob["steps"]
        x0, x1, y0, y1 = prob["box"]
        n = 40 if args.quick else 200
        gx, gy = np.meshgrid(np.linspace(x0, x1, n), np.linspace(y0, y1, n))
        z = prob["f"](np.stack([gx, gy]))  # numpy in, numpy out: f is plain arithmetic
        ax, axl = axes[row]
        levels = np.logspace(-1, 3.5, 25) if name == "rosenbrock" else np.linspace(-0.5, 3, 22)
        ax.contour(gx, gy, z, levels=levels, cmap="Greys", linewidths=0.6)
        ax.plot(*prob["optimum"], "k*", ms=12)
        ax.plot(*prob["start"], "ko", ms=5)
        summary[name] = {}
        for label, make in prob["opts"].items():
            if args.quick and label not in ("SGD", "Adam"):
                continue
            xs, losses = trajectory(make(), prob["f"], prob["start"], steps)
            ax.plot(xs[:, 0], xs[:, 1], lw=1.2, label=label)
            axl.semilogy(np.maximum(losses - (0.0 if name == "rosenbrock" else -0.5), 1e-12), label=label)
            summary[name][label] = {"final": xs[-1].tolist(), "final_loss": float(losses[-1]), "steps": steps}
        ax.set(xlim=(x0, x1), ylim=(y0, y1), title=f"{name}: trajectories", xlabel="x", ylabel="y")
        ax.legend(fontsize=8)
        axl.set(title=f"{name}: f - f* vs step", xlabel="step", ylabel="f - f*")
        axl.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(args.out / "optim_trajectories.png", dpi=70)
    (args.out / "optim_trajectories.json").write_text(json.dumps(summary, indent=1))
    print(json.dumps(summary, indent=1))
    return summary


if __name__ == "__main__":
    main()
