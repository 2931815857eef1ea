"""Chapter 5: convex vs non-convex, seen. Gradient descent from many starts: on a convex function every run
ends at the one minimum; on a non-convex one, where a run ends depends on where it starts.

Left: f(x, y) = logsumexp(x + y/2, -x, y - 1) + 0.1(x² + y²) (convex). Right: Himmelblau's function (four minima,
a maximum and four saddles). Each start runs gradient descent with a small fixed step, so the paths trace
the gradient flow (fungpt.optim.gradient_descent, gradients from fungpt.grad), all starts at once under
jax.vmap; paths are coloured by the minimum they reach. Titles carry fungpt.optim.convexity's verdict.

Run: .venv/bin/python experiments/optim_convexity.py [--quick]
Writes experiments/out/optim_convexity.png and .json.

On an accelerator: nothing changes beyond float32 rounding: 2-D problems, all starts in one vmap.
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


def convex(p):
    x, y = p[0], p[1]
    return jax.nn.logsumexp(jnp.stack([x + 0.5 * y, -x, y - 1.0])) + 0.1 * (x * x + y * y)


def himmelblau(p):
    return (p[0] ** 2 + p[1] - 11) ** 2 + (p[0] + p[1] ** 2 - 7) ** 2


def runs(f, starts, steps, lr):
    """Iterates (starts, steps+1, 2) of gradient descent from every start, in one vmapped program."""
    def one(x0):
        def step(x, _):
            x, _ = optim.gradient_descent(f, x, 1, learning_rate=lr)
            return x, x

        _, xs = jax.lax.scan(step, x0, None, length=steps)
        return jnp.concatenate([x0[None], xs])

    return np.asarray(jax.jit(jax.vmap(one))(starts))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer starts and steps, coarse contours")
    ap.add_argument("--out", type=pathlib.Path, default=OUT)
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    n_side, steps, grid = (5, 300, 60) if args.quick else (9, 3000, 250)
    box = 5.0
    g = np.linspace(-box + 0.4, box - 0.4, n_side)
    starts = jnp.asarray(np.stack(np.meshgrid(g, g), -1).reshape(-1, 2))
    fig, axes = plt.subplots(1, 2, figsize=(12, 5.6))
    report = {}
    problems = (("convex", convex, 0.5), ("Himmelblau (non-convex)", himmelblau, 2e-3))
    for ax, (name, f, lr) in zip(axes, problems, strict=True):
        report_c = jax.jit(lambda k, f=f: optim.convexity(f, k, 2, radius=box))(jax.random.key(0))
        verdict = bool(optim.is_convex(report_c))
        paths = runs(f, starts, steps, lr)
        ends = paths[:, -1]
        minima, labels = [], []
        for e in ends:  # group end points that agree to 1e-2: the distinct minima reached
            for i, m in enumerate(minima):
                if np.linalg.norm(e - m) < 1e-2:
                    labels.append(i)
                    break
            else:
                minima.append(e)
                labels.append(len(minima) - 1)
        gx, gy = np.meshgrid(np.linspace(-box, box, grid), np.linspace(-box, box, grid))
        z = np.asarray(jax.vmap(f)(jnp.asarray(np.stack([gx.ravel(), gy.ravel()], 1)))).reshape(gx.shape)
        ax.contour(gx, gy, np.log1p(z - z.min()), levels=25, cmap="Greys", linewidths=0.6)
        colors = plt.cm.tab10(np.asarray(labels) % 10)
        for path, col in zip(paths, colors, strict=True):
            ax.plot(path[:, 0], path[:, 1], color=col, lw=0.8, alpha=0.8)
            ax.plot(*path[0], "o", color=col, ms=3)
        for m in minima:
            ax.plot(*m, "k*", ms=14)
        ax.set(xlim=(-box, box), ylim=(-box, box), aspect="equal",
               title=f"{name}: convexity says {'convex' if verdict else 'NOT convex'}\n"
                     f"{len(starts)} starts → {len(minima)} distinct minim{'um' if len(minima) == 1 else 'a'}")
        report[name] = {"is_convex": verdict, "learning_rate": lr, "steps": steps, "starts": len(starts),
                        "distinct_minima": [m.tolist() for m in minima],
                        "final_values": sorted({round(float(f(jnp.asarray(m))), 6) for m in minima})}
    fig.tight_layout()
    fig.savefig(args.out / "optim_convexity.png", dpi=70)
    (args.out / "optim_convexity.json").write_text(json.dumps(report, indent=1))
    print(json.dumps(report, indent=1))
    return report


if __name__ == "__main__":
    main()
