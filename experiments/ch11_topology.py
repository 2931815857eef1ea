"""Chapter 11: Isomap unrolls a Swiss roll that PCA cannot; Lipschitz bounds of MLPs (empirical vs spectral,
before and after spectral normalization); generalization: the train/test gap against model size
(random-features regression, with the double-descent peak at #features = #samples) and Rademacher
complexity shrinking like 1/√n.

    .venv/bin/python experiments/ch11_topology.py [--quick] [--out experiments/out]

Writes ch11_swiss_roll.png, ch11_generalization.png and ch11_topology.json to --out.

On an accelerator: the shapes of the curves do not change; the values move within float32 rounding (TPU matrix
products default to bfloat16 precision).
"""
import argparse
import functools
import json
import math
import pathlib

import jax
import jax.numpy as jnp
import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from fungpt import topology as T


def swiss(out, quick):
    n = 200 if quick else 1000
    X, t = T.swiss_roll(jax.random.key(0), n, dtype=jnp.float32)
    emb_iso = np.asarray(T.isomap(X, 2, n_neighbors=10 if quick else 8))
    emb_pca = np.asarray(T.pca(X, 2)[0])
    t = np.asarray(t)
    arc = (t * np.sqrt(1 + t * t) + np.arcsinh(t)) / 2
    corr = {"isomap": float(abs(np.corrcoef(emb_iso[:, 0], arc)[0, 1])),
            "pca": float(abs(np.corrcoef(emb_pca[:, 0], arc)[0, 1]))}
    fig = plt.figure(figsize=(9, 3))
    ax = fig.add_subplot(1, 3, 1, projection="3d")
    ax.scatter(X[:, 0], X[:, 1], X[:, 2], c=t, s=3, cmap="viridis")
    ax.set_title("Swiss roll in R³", fontsize=9)
    for i, (name, E) in enumerate([("PCA", emb_pca), ("Isomap", emb_iso)]):
        a = fig.add_subplot(1, 3, i + 2)
        a.scatter(E[:, 0], E[:, 1], c=t, s=3, cmap="viridis")
        a.set_title(f"{name}: |corr(coord 1, arc length)| = {corr[name.lower()]:.3f}", fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "ch11_swiss_roll.png", dpi=100)
    plt.close(fig)
    print("swiss roll |corr| with arc length:", corr)
    return corr


def lipschitz(quick):
    rows = []
    key = jax.random.key(1)
    for width in [16] if quick else [8, 32, 128, 512]:
        ks = jax.random.split(key, 5)
        key = ks[0]
        sizes = [4, width, width, 1]
        Ws = [jax.random.normal(k, (b, a), jnp.float32) / math.sqrt(a) for k, a, b in
              zip(ks[1:], sizes[:-1], sizes[1:], strict=False)]
        X = jax.random.normal(ks[4], (256, 4), jnp.float32)
        row = {"width": width}
        for tag, ws in [("plain", Ws), ("spectral_normalized", [T.spectral_normalize(W, k) for W, k in
                                                                 zip(Ws, ks[1:4], strict=True)])]:
            f = lambda x, ws=ws: ws[2] @ jnp.tanh(ws[1] @ jnp.tanh(ws[0] @ x))
            row[tag] = {"upper_bound": float(T.lipschitz_upper_bound(ws)),
                        "empirical_jacobian": float(T.empirical_lipschitz(f, X)),
                        "empirical_pairs": float(T.empirical_lipschitz(f, X, "pairs"))}
        rows.append(row)
        print(f"width {width}: {row}")
    return rows


def random_features(quick):
    """Min-norm least squares on ReLU random features: test error peaks where #features = #samples."""
    n_train, d, n_test = 60, 8, 2000
    widths = [20, 60, 240] if quick else \
        [5, 10, 20, 30, 40, 50, 55, 58, 60, 62, 65, 70, 80, 100, 150, 240, 400, 800, 1600]
    seeds = 2 if quick else 10
    rng = np.random.default_rng(0)
    w_star = rng.standard_normal(d) / np.sqrt(d)
    train, test = np.zeros((seeds, len(widths))), np.zeros((seeds, len(widths)))
    for s in range(seeds):
        Xtr, Xte = rng.standard_normal((n_train, d)), rng.standard_normal((n_test, d))
        ytr = np.tanh(2 * Xtr @ w_star) + 0.1 * rng.standard_normal(n_train)
        yte = np.tanh(2 * Xte @ w_star)
        for j, p in enumerate(widths):
            V = rng.standard_normal((d, p)) / np.sqrt(d)
            Ftr, Fte = np.maximum(Xtr @ V, 0.0), np.maximum(Xte @ V, 0.0)
            # Minimum-norm least squares (an interpolant once p ≥ n); numpy: one shape per width,
            # nothing worth compiling.
            a = np.linalg.pinv(Ftr) @ ytr
            train[s, j] = np.mean((Ftr @ a - ytr) ** 2)
            test[s, j] = np.mean((Fte @ a - yte) ** 2)
    return {"n_train": n_train, "widths": widths, "train_mse": np.median(train, 0).tolist(),
            "test_mse": np.median(test, 0).tolist()}


def rademacher(quick):
    ns = [10, 100, 1000] if quick else [10, 30, 100, 300, 1000, 3000]
    rng = np.random.default_rng(2)
    est, bound = [], []
    for n in ns:
        X = jnp.asarray(rng.standard_normal((n, 5)))
        est.append(float(T.rademacher_linear(X, 1.0, jax.random.key(n), n_draws=500 if quick else 4000)))
        bound.append(float(T.rademacher_linear_bound(X, 1.0)))
    return {"n": ns, "estimate": est, "bound": bound}


def metrics(out, quick):
    """Unit balls {x : d(x, 0) <= 1} of the Minkowski distances (p < 1 is not a metric: its ball is not
    convex and the triangle inequality fails), and the worst triangle violation against p on random points."""
    g = np.linspace(-1.3, 1.3, 121 if quick else 301)
    grid = jnp.asarray(np.stack(np.meshgrid(g, g), -1).reshape(-1, 2))
    zero = jnp.zeros((1, 2), grid.dtype)
    ps = [0.5, 1.0, 2.0, 4.0]
    fig, ax = plt.subplots(1, 2, figsize=(9.5, 4))
    for p, c in zip(ps, ["tab:red", "tab:blue", "tab:green", "tab:purple"], strict=True):
        d = np.asarray(T.pairwise_distances(grid, zero, functools.partial(T.minkowski, p=p))).reshape(len(g), len(g))
        ax[0].contour(g, g, d, levels=[1.0], colors=c)
        ax[0].plot([], [], color=c, label=f"p = {p}" + (" (not a metric)" if p < 1 else ""))
    d = np.asarray(T.pairwise_distances(grid, zero, T.chebyshev)).reshape(len(g), len(g))
    ax[0].contour(g, g, d, levels=[1.0], colors="k")
    ax[0].plot([], [], color="k", label="p = inf (Chebyshev)")
    ax[0].set(aspect="equal", title="unit balls of the Minkowski distances d_p")
    ax[0].legend(fontsize=7, loc="lower left")
    pts = jax.random.normal(jax.random.key(0), (24 if quick else 60, 3))
    pgrid = np.linspace(0.25, 3.0, 12 if quick else 45)
    tri = [float(T.metric_axiom_violations(functools.partial(T.minkowski, p=float(p)), pts)["triangle"]) for p in pgrid]
    ax[1].plot(pgrid, tri, "o-", ms=3)
    ax[1].axvline(1.0, color="gray", ls=":")
    ax[1].set(xlabel="p", ylabel="max d(x,z) - d(x,y) - d(y,z)",
              title="triangle inequality on random points:\nbroken exactly for p < 1")
    fig.tight_layout()
    fig.savefig(out / "ch11_metrics.png", dpi=90)
    plt.close(fig)
    return {"max_triangle_violation_p_ge_1": max(t for p, t in zip(pgrid, tri, strict=True) if p >= 1)}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small sizes (a smoke run)")
    ap.add_argument("--out", default="experiments/out")
    args = ap.parse_args(argv)
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    res = {"quick": args.quick, "swiss_roll_corr": swiss(out, args.quick), "lipschitz": lipschitz(args.quick),
           "metrics": metrics(out, args.quick)}
    rf, rad = random_features(args.quick), rademacher(args.quick)
    res["random_features"], res["rademacher"] = rf, rad
    res["pac_sample_size_eps0.05_delta0.05_H1e6"] = T.pac_sample_size(0.05, 0.05, 1e6)
    fig, axs = plt.subplots(1, 2, figsize=(9, 3.3))
    axs[0].loglog(rf["widths"], rf["test_mse"], "o-", label="test")
    axs[0].loglog(rf["widths"], np.maximum(rf["train_mse"], 1e-12), "s--", label="train")
    axs[0].axvline(rf["n_train"], color="gray", ls=":", label="#features = #samples")
    axs[0].set_xlabel("random ReLU features (model size)")
    axs[0].set_ylabel("MSE (median over seeds)")
    axs[0].set_title("train/test gap vs model size: double descent", fontsize=9)
    axs[0].legend(fontsize=7)
    axs[1].loglog(rad["n"], rad["estimate"], "o-", label="Rademacher complexity (Monte Carlo)")
    axs[1].loglog(rad["n"], rad["bound"], "s--", label="bound B·sqrt(Σ‖x‖²)/n")
    axs[1].set_xlabel("n samples")
    axs[1].set_title("linear class, ‖w‖ ≤ 1: R̂ ∝ 1/√n", fontsize=9)
    axs[1].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "ch11_generalization.png", dpi=100)
    plt.close(fig)
    (out / "ch11_topology.json").write_text(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
