"""Chapter 5: loss functions and their minimization, seen.

Left: the regression losses (mse, mae, huber with δ = 1) against the residual, with their derivatives from
fungpt.grad (dashed): huber is quadratic near 0 and linear in the tails, so its gradient is clipped.
Middle: the classification losses against the margin y·s: logistic (binary cross-entropy with logits,
= 2-class softmax cross-entropy), hinge, and the 0-1 loss they are convex upper bounds of (up to scale).
Right: minimizing a logistic-regression loss (features on unequal scales) by gradient descent: fixed
steps 0.1/L and 1/L (L = λ_max of the Hessian at the start, the textbook safe step) against Armijo
backtracking, which tries a long step first and halves it until the decrease is sufficient
(fungpt.optim.gradient_descent with no learning rate), f - f* per iteration.

Run: .venv/bin/python experiments/optim_losses.py [--quick]
Writes experiments/out/optim_losses.png and .json.

On an accelerator: nothing changes beyond float32 rounding: small problems.
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


def logistic_problem(n=200, d=5, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d)) * np.array([3.0, 1.0, 1.0, 0.5, 0.2])  # unequal scales: ill-conditioned
    w = rng.standard_normal(d)
    y = (X @ w + 0.5 * rng.standard_normal(n) > 0).astype(np.float32)
    Xj, yj = jnp.asarray(X, jnp.float32), jnp.asarray(y)
    # A small ridge keeps the optimum finite even if the classes separate.
    return lambda w: jnp.mean(optim.binary_cross_entropy_with_logits(Xj @ w, yj)) + 1e-2 * (w @ w), d


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="60 descent steps instead of 400")
    ap.add_argument("--out", type=pathlib.Path, default=OUT)
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    steps = 60 if args.quick else 400
    fig, (ax_r, ax_c, ax_m) = plt.subplots(1, 3, figsize=(15, 4.5))

    r = jnp.linspace(-3, 3, 241, dtype=jnp.float32)
    zero = jnp.zeros((), jnp.float32)
    losses = {"mse": lambda p: optim.mse(p, zero), "mae": lambda p: optim.mae(p, zero),
              "huber (δ=1)": lambda p: optim.huber(p, zero, 1.0)}
    for (name, f), color in zip(losses.items(), ("C0", "C1", "C2"), strict=True):
        ax_r.plot(r, jax.vmap(f)(r), color=color, lw=2, label=name)
        ax_r.plot(r, jax.vmap(fungpt.grad(f))(r), color=color, ls="--", lw=1.2)
    ax_r.set(xlabel="residual pred - target", ylim=(-3.2, 4.5), title="regression losses (dashed: d/dpred)")
    ax_r.legend(fontsize=8)

    m = jnp.linspace(-3, 3, 241, dtype=jnp.float32)
    one = jnp.ones((), jnp.float32)
    ax_c.plot(m, jax.vmap(lambda s: optim.binary_cross_entropy_with_logits(s, one))(m), lw=2,
              label="logistic = -log σ(m)")
    ax_c.plot(m, jax.vmap(lambda s: optim.hinge(s, one))(m), lw=2, label="hinge max(0, 1 - m)")
    ax_c.plot(m, (m <= 0).astype(jnp.float32), "k", lw=1.5, label="0-1 loss")
    ax_c.set(xlabel="margin m = y·s", title="classification losses: convex upper bounds of 0-1")
    ax_c.legend(fontsize=8)

    f, d = logistic_problem()
    w0 = jnp.zeros(d, jnp.float32)
    # L = λ_max(∇²f) at w0, where the logistic curvature is largest: lr = 1/L is the textbook safe step.
    L = float(jnp.linalg.eigvalsh(fungpt.hessian(f)(w0))[-1])
    runs = {"Armijo backtracking": None, "lr = 0.1/L": 0.1 / L, "lr = 1/L": 1.0 / L}
    curves = {name: np.asarray(jax.jit(lambda w, lr=lr: optim.gradient_descent(f, w, steps, lr)[1])(w0))
              for name, lr in runs.items()}
    w_star, _ = jax.jit(lambda w: optim.gradient_descent(f, w, 2000))(w0)
    f_star = float(f(w_star))
    report = {"f_star": f_star, "L": L}
    for name, c in curves.items():
        gap = np.where(np.isfinite(c), np.maximum(c - f_star, 1e-8), np.nan)
        ax_m.semilogy(gap, lw=1.6, label=name)
        report[name] = {"final_gap": float(gap[-1]) if np.isfinite(gap[-1]) else None}
    ax_m.set(xlabel="iteration", ylabel="f - f*", ylim=(1e-8, 1e2), title="gradient descent on logistic regression")
    ax_m.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(args.out / "optim_losses.png", dpi=70)
    (args.out / "optim_losses.json").write_text(json.dumps(report, indent=1))
    print(json.dumps(report, indent=1))
    return report


if __name__ == "__main__":
    main()
