"""Chapter 5: sharpness (the Hessian's top eigenvalue) while gradient descent trains a small MLP.

Full-batch GD at learning rate η is stable on a quadratic only while λ_max(∇²L) < 2/η. Training a
tanh MLP, the sharpness first rises ("progressive sharpening") and then hovers at 2/η while the loss
keeps falling non-monotonically: the edge of stability (Cohen et al. 2021). λ_max is computed with
fungpt.optim.hessian_top_eigenvalue: power iteration on Hessian-vector products (fungpt.jvp over
fungpt.grad), never a dense Hessian; Lanczos checks it at the end.

Run: .venv/bin/python experiments/optim_sharpness.py [--quick]
Writes experiments/out/optim_sharpness.png and .json.

On an accelerator: the edge-of-stability picture does not change; the numbers move within rounding (TPU matrix
products default to bfloat16 precision, which shows in λ_max's last digits).
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
X = jnp.linspace(-2.0, 2.0, 64, dtype=jnp.float32)[:, None]
Y = jnp.sin(2.0 * X) + 0.3 * X


def init(key, width=32):
    k1, k2, k3 = jax.random.split(key, 3)
    f32 = jnp.float32
    return {"w1": jax.random.normal(k1, (1, width), f32), "b1": jnp.zeros(width, f32),
            "w2": jax.random.normal(k2, (width, width), f32) / jnp.sqrt(f32(width)), "b2": jnp.zeros(width, f32),
            "w3": jax.random.normal(k3, (width, 1), f32) / jnp.sqrt(f32(width))}


def loss(p):
    h = jnp.tanh(X @ p["w1"] + p["b1"][None, :])  # (N, W)
    h = jnp.tanh(h @ p["w2"] + p["b2"][None, :])  # (N, W)
    return jnp.mean(optim.mse(h @ p["w3"], Y))


def train(lr, steps, every, key, lanczos=True):
    opt = optim.sgd(lr)
    grad = fungpt.grad(loss)

    def gd_step(carry, _):
        p, s = carry
        u, s = opt.update(grad(p), s, p)
        return (optim.apply_updates(p, u), s), None

    def chunk(carry, k):
        carry, _ = jax.lax.scan(gd_step, carry, None, length=every)
        p = carry[0]
        return carry, (loss(p), optim.hessian_top_eigenvalue(loss, p, k, iters=30))

    p0 = init(key)
    keys = jax.random.split(jax.random.fold_in(key, 1), steps // every)
    (p, _), (losses, sharp) = jax.jit(lambda p0: jax.lax.scan(chunk, (p0, opt.init(p0)), keys))(p0)
    if not lanczos:
        return np.asarray(losses), np.asarray(sharp), None
    ritz = jax.jit(lambda p: optim.hessian_eigenvalues_lanczos(loss, p, key, k=30))(p)
    return np.asarray(losses), np.asarray(sharp), float(ritz[-1])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="one learning rate, 100 steps, no Lanczos check")
    ap.add_argument("--out", type=pathlib.Path, default=OUT)
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    steps, every = (100, 20) if args.quick else (4000, 20)
    lrs = (0.05,) if args.quick else (0.01, 0.02, 0.05)
    key = jax.random.key(0)
    fig, (ax_l, ax_s) = plt.subplots(1, 2, figsize=(12, 4.5))
    report = {}
    for i, lr in enumerate(lrs):
        losses, sharp, lanczos_top = train(lr, steps, every, key, lanczos=not args.quick)
        t = np.arange(1, len(losses) + 1) * every
        c = f"C{i}"
        ax_l.semilogy(t, losses, color=c, label=f"η = {lr}")
        ax_s.plot(t, sharp, color=c, label=f"λ_max, η = {lr}")
        ax_s.axhline(2 / lr, color=c, ls="--", lw=1)
        report[str(lr)] = {"two_over_lr": 2 / lr, "final_loss": float(losses[-1]),
                           "max_sharpness": float(sharp.max()), "final_sharpness": float(sharp[-1]),
                           "final_sharpness_lanczos": lanczos_top}
    ax_l.set(xlabel="GD step", ylabel="training loss", title="loss (full-batch GD, tanh MLP)")
    ax_s.set(xlabel="GD step", ylabel="top Hessian eigenvalue", title="sharpness vs 2/η (dashed)")
    ax_l.legend()
    ax_s.legend()
    fig.tight_layout()
    fig.savefig(args.out / "optim_sharpness.png", dpi=80)
    (args.out / "optim_sharpness.json").write_text(json.dumps(report, indent=1))
    print(json.dumps(report, indent=1))
    return report


if __name__ == "__main__":
    main()
