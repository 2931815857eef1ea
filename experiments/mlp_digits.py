"""Build a neural net from scratch: an MLP of fungpt.nn layers on scikit-learn's 8x8 digits, trained with
fungpt.grad (our autodiff) and fungpt.optim.adamw (our optimizer), with a hand-derived backward pass
checked against fungpt.grad.

    .venv/bin/python experiments/mlp_digits.py [--quick]

Writes experiments/out/mlp_digits.{json,png}.  Needs scikit-learn (the `experiments` extra).

On an accelerator: the accuracy is the same within float32 rounding; the step time becomes the accelerator's.
"""
import argparse
import json
import math
import pathlib
import time

import jax
import jax.numpy as jnp
import numpy as np

import fungpt
from fungpt import nn, optim

OUT = pathlib.Path(__file__).parent / "out"


def init(key, sizes=(64, 256, 10)):
    keys = jax.random.split(key, len(sizes) - 1)
    return [nn.linear_init(k, i, o, init=nn.kaiming_normal) for k, i, o in zip(keys, sizes, sizes[1:], strict=False)]


def forward(params, x):
    """logits = GELU(x W1 + b1) W2 + b2;  x (N, 64) -> (N, 10)."""
    return nn.linear(params[1], nn.gelu(nn.linear(params[0], x), approximate=False))


def loss(params, x, y):
    return nn.cross_entropy(forward(params, x), y)


def manual_grad(params, x, y):
    """The backward pass by hand (matrix calculus), for L = -1/N Σ_n log softmax(z_n)[y_n]:

        h = x W1 + b1,  a = GELU(h),  z = a W2 + b2
        ∂L/∂z  = (softmax(z) - onehot(y)) / N                 (N, 10)
        ∂L/∂W2 = aᵀ ∂L/∂z,   ∂L/∂b2 = Σ_n ∂L/∂z_n
        ∂L/∂a  = ∂L/∂z W2ᵀ
        ∂L/∂h  = ∂L/∂a ⊙ GELU'(h),   GELU'(h) = Φ(h) + h φ(h)
        ∂L/∂W1 = xᵀ ∂L/∂h,   ∂L/∂b1 = Σ_n ∂L/∂h_n
    """
    (p1, p2), n = params, x.shape[0]
    h = x @ p1["weight"] + p1["bias"][None]
    a = nn.gelu(h, approximate=False)
    z = a @ p2["weight"] + p2["bias"][None]
    dz = (nn.softmax(z) - jax.nn.one_hot(y, z.shape[-1], dtype=z.dtype)) / n
    da = dz @ p2["weight"].T
    phi = jnp.exp(-0.5 * h * h) / math.sqrt(2 * math.pi)
    dh = da * (0.5 * (1 + jax.lax.erf(h / math.sqrt(2))) + h * phi)
    return [{"weight": x.T @ dh, "bias": dh.sum(0)}, {"weight": a.T @ dz, "bias": dz.sum(0)}]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="a few epochs, for smoke tests")
    ap.add_argument("--epochs", type=int, default=60)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=pathlib.Path, default=OUT, help="folder for the JSON and PNG files")
    args = ap.parse_args(argv)
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    epochs = 2 if args.quick else args.epochs
    X, Y = load_digits(return_X_y=True)
    xtr, xte, ytr, yte = train_test_split((X / 16.0).astype(np.float32), Y.astype(np.int32), test_size=0.25,
                                          random_state=args.seed, stratify=Y)
    key = jax.random.key(args.seed)
    params = jax.jit(init)(key)  # one compiled program instead of op-by-op dispatch

    # 1. the hand-derived backward pass against our autodiff
    ours, hand = jax.device_get(jax.jit(lambda p, x, y: (fungpt.grad(loss)(p, x, y), manual_grad(p, x, y)))(
        params, xtr[:256], ytr[:256]))
    rel = max(float(np.max(np.abs(a - b)) / (np.max(np.abs(b)) + 1e-30))
              for a, b in zip(jax.tree_util.tree_leaves(ours), jax.tree_util.tree_leaves(hand), strict=True))
    print(f"hand-derived backward vs fungpt.grad: max relative difference {rel:.2e}")
    assert rel < 1e-4, rel

    # 2. training with fungpt.grad + our AdamW
    opt = optim.adamw(1e-3, weight_decay=1e-4)
    state = opt.init(params)

    @jax.jit
    def step(params, state, xb, yb):
        l, g = fungpt.value_and_grad(loss)(params, xb, yb)
        updates, state = opt.update(g, state, params)
        return optim.apply_updates(params, updates), state, l

    evaluate = jax.jit(lambda p, x, y: (loss(p, x, y), jnp.mean(jnp.argmax(forward(p, x), -1).astype(y.dtype) == y)))
    rng = np.random.default_rng(args.seed)
    hist = {"epoch": [], "train_loss": [], "test_loss": [], "test_acc": []}
    t0 = time.perf_counter()
    for epoch in range(1, epochs + 1):
        perm = rng.permutation(len(xtr))
        losses = []
        for i in range(0, len(perm) - 31, 32):
            b = perm[i:i + 32]
            params, state, l = step(params, state, xtr[b], ytr[b])
            losses.append(l)
        hist["epoch"].append(epoch)
        hist["train_loss"].append(float(np.mean(jax.device_get(losses))))
        test_loss, test_acc = evaluate(params, xte, yte)
        hist["test_loss"].append(float(test_loss))
        hist["test_acc"].append(float(test_acc))
    secs = time.perf_counter() - t0
    print(f"{epochs} epochs in {secs:.1f} s: train loss {hist['train_loss'][-1]:.4f}, "
          f"test loss {hist['test_loss'][-1]:.4f}, test accuracy {100 * hist['test_acc'][-1]:.2f}%")
    if not args.quick:
        assert hist["test_acc"][-1] >= 0.97, hist["test_acc"][-1]

    args.out.mkdir(parents=True, exist_ok=True)
    result = {"grad_check_max_rel_diff": rel, "seconds": secs, "n_train": len(xtr), "n_test": len(xte), **hist}
    (args.out / "mlp_digits.json").write_text(json.dumps(result, indent=1))
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a1, a2) = plt.subplots(1, 2, figsize=(8, 3), dpi=90)
    a1.plot(hist["epoch"], hist["train_loss"], label="train")
    a1.plot(hist["epoch"], hist["test_loss"], label="test")
    a1.set(xlabel="epoch", ylabel="cross-entropy", yscale="log", title="MLP 64-256-10 on digits")
    a1.legend()
    a2.plot(hist["epoch"], [100 * a for a in hist["test_acc"]])
    a2.axhline(97, color="gray", ls=":")
    a2.set(xlabel="epoch", ylabel="test accuracy (%)", ylim=(85, 100), title="fungpt.grad + our AdamW")
    fig.tight_layout()
    fig.savefig(args.out / "mlp_digits.png")
    return result


if __name__ == "__main__":
    main()
