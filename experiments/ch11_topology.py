"""Chapter 11: Isomap unrolls a Swiss roll that PCA cannot; Lipschitz bounds of MLPs (empirical vs spectral,
before and after spectral normalization); generalization: the train/test gap against model size
(random-features regression, with the double-descent peak at #features = #samples) and Rademacher
complexity shrinking like 1/√n.

    .venv/bin/python experiments/ch11_topology.py [--quick] [--out experiments/out]

Generalization at depth 3 (ch11_bounds.png): growth functions by exact enumeration against Sauer–Shelah and
Cover's count; the VC bound and the margin bound against the measured test error as n grows, for a linear
classifier (its test error exact, from the Gaussian CDF) and a two-layer ReLU net trained with fungpt.grad;
bias², variance and noise of polynomial regression against the degree, summing to the measured test MSE.

ch11_generalization.png also plots the Lipschitz bounds against the empirical constants, by width.

Writes ch11_swiss_roll.png, ch11_metrics.png, ch11_generalization.png, ch11_bounds.png and ch11_topology.json
to --out.

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

import fungpt
from fungpt import generalization as G
from fungpt import optim
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
        est.append(float(G.rademacher_linear(X, 1.0, jax.random.key(n), n_draws=500 if quick else 4000)))
        bound.append(float(G.rademacher_linear_bound(X, 1.0)))
    return {"n": ns, "estimate": est, "bound": bound}


def growth(quick):
    """Labelings realized on n random points, counted by enumeration, against the closed forms."""
    rng = np.random.default_rng(3)
    ns = list(range(1, 9 if quick else 15))
    rows = {"n": ns, "2^n": [2**n for n in ns], "sauer_vc3": [G.sauer_shelah_bound(n, 3) for n in ns],
            "cover_halfplane": [G.growth_function("halfspace", n, 2) for n in ns]}
    for cls, pts in [("threshold", lambda n: rng.standard_normal(n)), ("interval", lambda n: rng.standard_normal(n)),
                     ("halfspace", lambda n: rng.standard_normal((n, 2)))]:
        rows[f"enumerated_{cls}"] = [len(G.dichotomies(cls, pts(n))) for n in ns]
    return rows


def _bayes_error_linear(w, mu):
    """Exact 0-1 error of x ↦ sign(⟨w[:2], x⟩ + w[2]) when x ~ N(y μ, I), y = ±1 equally likely."""
    a, b = w[:2], w[2]
    s = np.linalg.norm(a) * math.sqrt(2)
    return 0.25 * math.erfc((a @ mu + b) / s) + 0.25 * math.erfc((a @ mu - b) / s)  # Φ(-z) = erfc(z/√2)/2


def _fit(loss, params, data, steps, lr):
    """`steps` full-batch Adam steps on loss(params, *data), gradients by fungpt.grad."""
    opt = optim.adam(lr)
    grad = fungpt.grad(loss)

    def step(carry, _):
        p, st = carry
        upd, st = opt.update(grad(p, *data), st, p)
        return (optim.apply_updates(p, upd), st), None

    return jax.lax.scan(step, (params, opt.init(params)), None, length=steps)[0][0]


def _logistic(z, mask):
    # the first n of the padded rows are the sample: one compiled program serves every n
    return jnp.sum(mask * jnp.logaddexp(0.0, -z)) / jnp.sum(mask)


_GAMMAS = 2.0 ** -np.arange(20)


@jax.jit
def _best_margin_bound(margins, rad):
    """min over γ ∈ {2^-k : k = 0..19} of the margin bound at δ/20 each (a union bound over the grid)."""
    margins, rad = jnp.asarray(margins, jnp.float32), jnp.asarray(rad, jnp.float32)
    bound = jax.vmap(lambda g: G.margin_bound(margins, g, rad, 0.05 / _GAMMAS.size))
    return jnp.min(bound(jnp.asarray(_GAMMAS, jnp.float32)))


def _padded(X, y, n_max):
    n = X.shape[0]
    pad = lambda a: np.concatenate([a, np.zeros((n_max - n, *a.shape[1:]))])
    f32 = lambda a: jnp.asarray(a, jnp.float32)  # one dtype, with or without x64
    return f32(pad(X)), f32(pad(y)), f32(np.arange(n_max) < n)


def linear_bounds(quick):
    """Logistic regression on two Gaussian classes in R²: exact test error vs the VC and margin bounds."""
    mu, ns, seeds = np.array([1.0, 0.5]), [30, 300] if quick else [30, 100, 300, 1000, 3000, 10000], 3
    rng = np.random.default_rng(4)
    fit = jax.jit(jax.vmap(lambda X, y, m: _fit(lambda w, X, y, m: _logistic(y * (X @ w), m), jnp.zeros(3, jnp.float32),
                                                (X, y, m), 300, 0.1)))
    out = {k: [] for k in ("n", "test", "train", "vc_bound", "margin_bound")}
    for n in ns:
        ys = [rng.choice([-1.0, 1.0], n) for _ in range(seeds)]
        Xs = [np.concatenate([y[:, None] * mu + rng.standard_normal((n, 2)), np.ones((n, 1))], 1) for y in ys]
        batch = [_padded(X, y, ns[-1]) for X, y in zip(Xs, ys, strict=True)]
        ws = np.asarray(fit(*(jnp.stack(c) for c in zip(*batch, strict=True))))
        r = {k: [] for k in out if k != "n"}
        for w, X, y in zip(ws, Xs, ys, strict=True):
            margins = y * (X @ w) / np.linalg.norm(w)  # the class {‖w‖ ≤ 1} on x̃ = (x, 1)
            train = float(np.mean(margins <= 0))
            r["test"].append(_bayes_error_linear(w, mu))
            r["train"].append(train)
            r["vc_bound"].append(G.vc_bound(train, n, 3))
            r["margin_bound"].append(float(_best_margin_bound(margins, G.rademacher_linear_bound(X, 1.0))))
        out["n"].append(n)
        for k, v in r.items():
            out[k].append(float(np.mean(v)))
    out["bayes_error"] = float(_bayes_error_linear(np.array([*mu, 0.0]), mu))
    return out


def net_bounds(quick):
    """A 2-layer ReLU net (64 units) on a disc: inside ‖x‖ < 0.7 is class +1 (5% labels flipped); the margin
    bound with the path norm (width-free) against the measured test error."""
    ns = [100, 400] if quick else [100, 400, 1600, 6400, 25600, 102400]
    h, steps = 64, 150 if quick else 600
    rng = np.random.default_rng(5)

    def data(n):
        x = rng.uniform(-1, 1, (n, 2))
        y = np.where(np.linalg.norm(x, axis=1) < 0.7, 1.0, -1.0) * np.where(rng.uniform(size=n) < 0.05, -1, 1)
        return np.concatenate([x, np.ones((n, 1))], 1), y

    def f(p, X):
        return jnp.maximum(X @ p["W"].T, 0.0) @ p["v"]

    f_jit = jax.jit(f)
    fit = jax.jit(lambda p, X, y, m: _fit(lambda p, X, y, m: _logistic(y * f(p, X), m), p, (X, y, m), steps, 0.02))
    Xt, yt = data(20000)
    out = {k: [] for k in ("n", "test", "train", "margin_bound", "path_norm")}
    for n in ns:
        X, y = data(n)
        p = {"W": jnp.asarray(rng.standard_normal((h, 3)) / np.sqrt(3), jnp.float32),
             "v": jnp.asarray(rng.standard_normal(h) / np.sqrt(h), jnp.float32)}
        p = fit(p, *_padded(X, y, ns[-1]))
        C = float(G.path_norm(p["W"], p["v"]))
        margins = y * np.asarray(f_jit(p, jnp.asarray(X, jnp.float32))) / C  # f / C has path norm 1
        rad = float(G.two_layer_rademacher_bound(p["W"], p["v"], jnp.asarray(X, jnp.float32))) / C
        out["n"].append(n)
        out["test"].append(float(np.mean(yt * np.asarray(f_jit(p, jnp.asarray(Xt, jnp.float32))) <= 0)))
        out["train"].append(float(np.mean(margins <= 0)))
        out["margin_bound"].append(float(_best_margin_bound(margins, rad)))
        out["path_norm"].append(C)
    return out


def bias_variance(quick):
    """Least-squares polynomials (Legendre basis) on n = 30 noisy samples of sin(2πx), R training sets per degree."""
    n, sigma, R, m = 30, 0.3, 60 if quick else 1000, 200
    degrees = list(range(0, 8 if quick else 11))
    rng = np.random.default_rng(6)
    xt = np.linspace(0, 1, m)
    ft = np.sin(2 * np.pi * xt)
    out = {k: [] for k in ("degree", "bias2", "variance", "noise", "total", "measured_test_mse")}
    for deg in degrees:
        preds = np.empty((R, m))
        for r in range(R):
            x = rng.uniform(0, 1, n)
            y = np.sin(2 * np.pi * x) + sigma * rng.standard_normal(n)
            preds[r] = np.polynomial.legendre.legval(2 * xt - 1, np.polynomial.legendre.legfit(2 * x - 1, y, deg))
        d = {k: float(v) for k, v in G.bias_variance(jnp.asarray(preds), jnp.asarray(ft), sigma**2).items()}
        yt = ft + sigma * rng.standard_normal((R, m))  # fresh test labels: the directly measured error
        out["degree"].append(deg)
        out["measured_test_mse"].append(float(np.mean((preds - yt) ** 2)))
        for k, v in d.items():
            out[k].append(v)
    return out


def bounds_plot(out, gr, lin, net, bv):
    fig, ax = plt.subplots(1, 4, figsize=(18, 3.9))
    a = ax[0]
    a.semilogy(gr["n"], gr["2^n"], "k-", label="2^n (all labelings)")
    a.semilogy(gr["n"], gr["sauer_vc3"], "k--", label="Sauer–Shelah, VC 3")
    a.semilogy(gr["n"], gr["cover_halfplane"], "C2-", label="Cover: half-planes in R²")
    for cls, mk in [("threshold", "o"), ("interval", "s"), ("halfspace", "^")]:
        a.semilogy(gr["n"], gr[f"enumerated_{cls}"], mk, ms=4, mfc="none", label=f"enumerated: {cls}s")
    a.set(xlabel="n points", ylabel="labelings realized", title="growth functions: exponential until the VC dimension")
    a.legend(fontsize=6)
    for a, res, title in [(ax[1], lin, "linear classifier, 2 Gaussians in R²"),
                          (ax[2], net, "2-layer ReLU net (64 units), a disc")]:
        a.loglog(res["n"], res["test"], "o-", label="test error (measured)")
        a.loglog(res["n"], np.maximum(res["train"], 1e-3), "s:", label="train error")
        a.loglog(res["n"], res["margin_bound"], "^-", label="margin bound (Rademacher)")
        if "vc_bound" in res:
            a.loglog(res["n"], res["vc_bound"], "v-", label="VC bound (VC dim 3)")
            a.axhline(res["bayes_error"], color="gray", ls=":", label="Bayes error")
        a.axhline(1.0, color="k", lw=0.6)
        a.set(xlabel="n training samples", title=f"{title}\n(δ = 0.05; above 1 the bound says nothing)")
        a.legend(fontsize=6)
    a = ax[3]
    for k, st in [("bias2", "o-"), ("variance", "s-"), ("noise", "k:"), ("total", "C3-")]:
        label = {"bias2": "bias²", "total": "bias² + variance + noise"}.get(k, k)
        a.semilogy(bv["degree"], bv[k], st, ms=3, label=label)
    a.semilogy(bv["degree"], bv["measured_test_mse"], "kx", label="measured test MSE")
    a.set(xlabel="polynomial degree", ylim=(1e-3, 1e2), title="bias–variance: sin(2πx), n = 30, σ = 0.3")
    a.legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(out / "ch11_bounds.png", dpi=90)
    plt.close(fig)


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


def generalization_plot(out, rf, rad, lip):
    fig, axs = plt.subplots(1, 3, figsize=(13.5, 3.3))
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
    widths = [r["width"] for r in lip]
    for tag, ls in [("plain", "-"), ("spectral_normalized", "--")]:
        for key, mk in [("upper_bound", "o"), ("empirical_jacobian", "s"), ("empirical_pairs", "^")]:
            axs[2].loglog(widths, [r[tag][key] for r in lip], mk + ls, ms=4,
                          label=f"{tag.replace('_', ' ')}: {key.replace('_', ' ')}")
    axs[2].set_xlabel("width of a 3-layer tanh MLP")
    axs[2].set_title("Lipschitz: Π σ₁(W_i) bounds the samples' max σ₁(J)\nand pair ratios; "
                     "spectral normalization pins it to 1", fontsize=9)
    axs[2].legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(out / "ch11_generalization.png", dpi=100)
    plt.close(fig)


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
    res["pac_sample_size_eps0.05_delta0.05_H1e6"] = G.pac_sample_size(0.05, 0.05, 1e6)
    gr, lin, net, bv = growth(args.quick), linear_bounds(args.quick), net_bounds(args.quick), bias_variance(args.quick)
    res.update(growth=gr, linear_bounds=lin, net_bounds=net, bias_variance=bv)
    bounds_plot(out, gr, lin, net, bv)
    print("linear classifier (n, test, VC bound, margin bound):",
          [(n, round(t, 3), round(v, 2), round(m, 2)) for n, t, v, m in
           zip(lin["n"], lin["test"], lin["vc_bound"], lin["margin_bound"], strict=True)])
    print("2-layer net (n, test, train, margin bound):", [(n, round(t, 3), round(r, 3), round(m, 2)) for n, t, r, m in
                                                          zip(net["n"], net["test"], net["train"], net["margin_bound"],
                                                              strict=True)])
    generalization_plot(out, rf, rad, res["lipschitz"])
    (out / "ch11_topology.json").write_text(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
