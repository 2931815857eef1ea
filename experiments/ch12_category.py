"""Chapter 12: the category of finite sets drawn and its laws checked; monoid folds as sequential chains and as
parallel reduction trees (equal in exact arithmetic, not in floating point); "Backprop as Functor" in practice: an
MLP built by composing learners (parametrised lenses: implement / update / request) trains exactly like gradient
descent with fungpt.grad, and a data-parallel gradient is a monoid sum of shard gradients.

    .venv/bin/python experiments/ch12_category.py [--quick] [--out experiments/out]

Writes ch12_finset.png, ch12_monoid_fold.png, ch12_lens_training.png and ch12_category.json to --out.

On an accelerator: the lens/gradient agreement holds on any backend; the step times become the accelerator's,
and the float64 check needs a CPU or GPU.
"""
import argparse
import json
import math
import pathlib
import time

import jax
import jax.numpy as jnp
import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt

import fungpt
from fungpt import category as C


def _draw_function(ax, f, x0, x1, n_dom, n_cod, color, label, **style):
    ys = lambda n: np.arange(n)[::-1] - (n - 1) / 2
    for i, j in enumerate(np.asarray(f)):
        ax.annotate("", (x1, ys(n_cod)[j]), (x0, ys(n_dom)[i]),
                    arrowprops=dict(arrowstyle="->", color=color, lw=1.3, shrinkA=6, shrinkB=6, **style))
    ax.text((x0 + x1) / 2, 2.3 if label != "g ∘ f" else -2.4, label, color=color, ha="center", fontsize=10)


def finset_figure(path):
    """FinSet: f: 3 → 2 and g: 2 → 4 drawn as arrows, g ∘ f computed by `finset_compose` and drawn below; the
    category laws checked on every composable triple of small hom-sets; |Hom(n, m)| = mⁿ."""
    f, g = jnp.asarray([1, 0, 1]), jnp.asarray([3, 0])
    gf = C.finset_compose(g, f)
    fig, ax = plt.subplots(1, 3, figsize=(13, 3.8), gridspec_kw={"width_ratios": [1.3, 1, 1]})
    for x, n in ((0, 3), (1, 2), (2, 4)):
        ys = np.arange(n)[::-1] - (n - 1) / 2
        ax[0].plot(np.full(n, x), ys, "ko", ms=7)
        for i, y in enumerate(ys):
            ax[0].text(x - 0.12, y, str(i), ha="right", va="center", fontsize=8)
    _draw_function(ax[0], f, 0, 1, 3, 2, "C0", "f")
    _draw_function(ax[0], g, 1, 2, 2, 4, "C1", "g")
    _draw_function(ax[0], gf, 0, 2, 3, 4, "C2", "g ∘ f", connectionstyle="arc3,rad=0.25", linestyle="--")
    ax[0].set(xlim=(-0.4, 2.4), ylim=(-2.7, 2.7), xticks=[0, 1, 2], xticklabels=["3", "2", "4"], yticks=[],
              title=f"FinSet: g ∘ f = finset_compose(g, f) = {np.asarray(gf).tolist()}  (i ↦ g[f[i]])")
    ax[0].title.set_fontsize(9)
    # every composable triple h ∘ (g ∘ f) vs (h ∘ g) ∘ f among all functions 2 → 2 → 3 → 2, and the identities:
    # all triples at once, finset_compose under jit and vmap
    F, G, H = (C.finset_hom(a, b) for a, b in ((2, 2), (2, 3), (3, 2)))
    i, j, k = (a.ravel() for a in np.meshgrid(np.arange(len(F)), np.arange(len(G)), np.arange(len(H)),
                                             indexing="ij"))
    comp = jax.jit(jax.vmap(C.finset_compose))
    bad_assoc = int(jnp.sum(jnp.any(comp(H[k], comp(G[j], F[i])) != comp(comp(H[k], G[j]), F[i]), axis=1)))
    ids2, ids3 = jnp.tile(C.finset_identity(2), (len(G), 1)), jnp.tile(C.finset_identity(3), (len(G), 1))
    bad_id = int(jnp.sum(jnp.any(comp(G, ids2) != G, axis=1)) + jnp.sum(jnp.any(comp(ids3, G) != G, axis=1)))
    homs = (F, G, H)
    n_triples = math.prod(len(h) for h in homs)
    ax[1].bar(["h∘(g∘f) = (h∘g)∘f", "f∘id = f = id∘f"], [n_triples - bad_assoc, 2 * len(homs[1]) - bad_id],
              color="C2", label="holds")
    ax[1].bar(["h∘(g∘f) = (h∘g)∘f", "f∘id = f = id∘f"], [bad_assoc, bad_id], color="C3", label="fails")
    ax[1].set(ylabel="checked cases", title=f"category laws on all {n_triples} composable triples 2→2→3→2")
    ax[1].title.set_fontsize(9)
    ax[1].legend(fontsize=8)
    n = np.arange(0, 5)
    for m in (1, 2, 3, 4):
        counts = [C.finset_hom(int(k), m).shape[0] for k in n]
        ax[2].semilogy(n, np.maximum(counts, 0.5), "o-", label=f"m = {m}: finset_hom rows")
        ax[2].semilogy(n, float(m) ** n, "k:", lw=0.8)
    ax[2].set(xlabel="n", ylabel="|Hom(n, m)|", title="functions n → m: mⁿ (dotted), counted by enumeration")
    ax[2].title.set_fontsize(9)
    ax[2].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return {"finset_g_after_f": np.asarray(gf).tolist(), "assoc_failures": bad_assoc, "identity_failures": bad_id,
            "triples_checked": n_triples}


def _draw_reduce_tree(ax, n):
    """The reduction tree of `tree_fold` on n leaves: ⌈log₂ n⌉ rounds of independent combines."""
    level = [(float(i), 0.0, f"x{i}") for i in range(n)]
    for x, y, t in level:
        ax.text(x, y, t, ha="center", va="center", fontsize=8, bbox=dict(boxstyle="round", fc="white"))
    depth = 0
    while len(level) > 1:
        depth += 1
        nxt = []
        for i in range(0, len(level), 2):
            pair = level[i:i + 2]
            x = float(np.mean([p[0] for p in pair]))
            nxt.append((x, depth, "·"))
            for px, py, _ in pair:
                ax.plot([px, x], [py, depth], "C0-", lw=1)
        level = nxt
        ax.plot([p[0] for p in level], [depth] * len(level), "o", color="C0", ms=9)
    ax.set(title=f"tree_fold: {n} leaves, {depth} rounds (fold: {n - 1} dependent steps)", xticks=[],
           ylabel="round")
    ax.title.set_fontsize(9)


def fold_figure(path, quick):
    """Sums of float32 values: the sequential fold and the pairwise tree fold are the same monoid expression
    bracketed differently; exact arithmetic can't tell them apart, float32 can (error ~n ε vs ~log n ε)."""
    rng = np.random.default_rng(0)
    ns = np.unique(np.logspace(1, 3.3 if quick else 5, 6 if quick else 12).astype(int))
    rows = []
    for n in ns:
        errs = {"fold (sequential)": [], "tree_fold (pairwise)": []}
        for _ in range(3 if quick else 10):
            xs = rng.uniform(0, 1, n).astype(np.float32)
            exact = math.fsum(xs.astype(np.float64))
            add32 = C.Monoid(lambda a, b: np.float32(a) + np.float32(b), np.float32(0))
            errs["fold (sequential)"].append(abs(float(C.fold(add32, list(xs))) - exact) / exact)
            errs["tree_fold (pairwise)"].append(abs(float(C.tree_fold(add32, list(xs))) - exact) / exact)
        rows.append({"n": int(n), **{k: float(np.median(v)) for k, v in errs.items()}})
    fig, ax = plt.subplots(1, 2, figsize=(11, 3.8))
    _draw_reduce_tree(ax[0], 8)
    eps = float(np.finfo(np.float32).eps)
    for key, st in (("fold (sequential)", "o-"), ("tree_fold (pairwise)", "s-")):
        ax[1].loglog(ns, [max(r[key], 1e-10) for r in rows], st, label=key)
    ax[1].loglog(ns, eps * ns / 4, "k:", lw=1, label="n·ε/4 (worst case grows ∝ n)")
    ax[1].loglog(ns, eps * np.log2(ns) / 4, "k--", lw=1, label="log₂n·ε/4 (pairwise: ∝ log n)")
    ax[1].set(xlabel="n float32 terms in [0, 1)", ylabel="relative error vs math.fsum",
              title="one monoid, two bracketings: equal in exact arithmetic, not in float32")
    ax[1].title.set_fontsize(9)
    ax[1].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="few steps (a smoke run)")
    ap.add_argument("--out", default="experiments/out")
    args = ap.parse_args(argv)
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    finset = finset_figure(out / "ch12_finset.png")
    folds = fold_figure(out / "ch12_monoid_fold.png", args.quick)

    # float64 and a stable step size: the identity lens update = GD step holds per step to rounding
    # (max_one_step_diff ~1e-15), but at lr = 0.2 training is chaotic and amplifies that rounding to
    # ~0.2 in the weights after 2,000 steps (float32 or float64 alike); at lr = 0.05 the whole
    # trajectories agree to ~1e-14.
    jax.config.update("jax_enable_x64", True)
    steps, lr, sizes = (20 if args.quick else 2000), 0.05, [1, 32, 32, 1]
    A = jnp.linspace(-3, 3, 64, dtype=jnp.float64)[:, None]
    B = jnp.sin(A) + 0.3 * jnp.cos(3 * A)
    learner = C.mlp_learner(len(sizes) - 1, lr)
    params0 = C.mlp_init(jax.random.key(0), sizes, jnp.float64)

    def mse(p):
        return jnp.mean(jax.vmap(lambda a, b: 0.5 * jnp.sum((learner.implement(p, a) - b) ** 2))(A, B))

    lens_step = jax.jit(lambda p: C.batch_update(learner, p, A, B))
    gd_step = jax.jit(lambda p: jax.tree.map(lambda w, g: w - lr * g, p, fungpt.grad(mse)(p)))
    mse_j = jax.jit(mse)
    p_lens, p_gd = params0, params0
    hist = {"lens": [], "gd": [], "max_param_diff": [], "one_step_diff": []}
    for _ in range(steps):
        hist["lens"].append(float(mse_j(p_lens)))
        hist["gd"].append(float(mse_j(p_gd)))
        # The functor identity is per step: both updates from the same parameters.
        hist["one_step_diff"].append(max(float(jnp.max(jnp.abs(x - y))) for x, y in
                                         zip(jax.tree.leaves(lens_step(p_gd)), jax.tree.leaves(gd_step(p_gd)),
                                             strict=True)))
        p_lens, p_gd = lens_step(p_lens), gd_step(p_gd)
        diff = max(float(jnp.max(jnp.abs(x - y))) for x, y in
                   zip(jax.tree.leaves(p_lens), jax.tree.leaves(p_gd), strict=True))
        hist["max_param_diff"].append(diff)

    def timeit(f, p, n=5 if args.quick else 200):
        jax.block_until_ready(f(p))
        ts = []
        for _ in range(n):
            t0 = time.perf_counter()
            jax.block_until_ready(f(p))
            ts.append(time.perf_counter() - t0)
        return 1e3 * float(np.median(ts))

    res = {"quick": args.quick, "steps": steps, "lr": lr, "sizes": sizes,
           "final_mse_lens": hist["lens"][-1], "final_mse_gd": hist["gd"][-1],
           "max_param_diff_over_training": max(hist["max_param_diff"]),
           "max_one_step_diff": max(hist["one_step_diff"]),
           "lens_step_ms": timeit(lens_step, params0), "fungpt_grad_step_ms": timeit(gd_step, params0)}

    # Data parallelism: the gradient of a summed loss is the (monoid) sum of shard gradients.
    loss_sum = lambda p, bt: jnp.sum(jax.vmap(lambda a, b: 0.5 * jnp.sum((learner.implement(p, a) - b) ** 2))(
        bt["a"], bt["b"]))
    full = jax.jit(fungpt.grad(loss_sum))(params0, {"a": A, "b": B})
    sharded = jax.jit(lambda p, bt: C.data_parallel_grad(loss_sum, p, bt, 8))(params0, {"a": A, "b": B})
    res["data_parallel_max_abs_diff"] = max(float(jnp.max(jnp.abs(x - y))) for x, y in
                                            zip(jax.tree.leaves(full), jax.tree.leaves(sharded), strict=True))
    print({k: v for k, v in res.items() if not isinstance(v, list)})

    fig, axs = plt.subplots(1, 2, figsize=(9, 3.2))
    axs[0].semilogy(hist["gd"], lw=3, alpha=0.4, label="gradient descent, fungpt.grad")
    axs[0].semilogy(hist["lens"], "k--", lw=1, label="composed learners (lenses)")
    axs[0].set_xlabel("step")
    axs[0].set_ylabel("training MSE")
    axs[0].set_title(f"the same trajectory (max |Δparam| = {res['max_param_diff_over_training']:.1e})",
                     fontsize=9)
    axs[0].legend(fontsize=7)
    axs[1].plot(A[:, 0], B[:, 0], "k.", ms=3, label="data")
    axs[1].plot(A[:, 0], jax.vmap(lambda a: learner.implement(p_lens, a))(A)[:, 0], label="lens MLP")
    axs[1].set_title("fit after training", fontsize=9)
    axs[1].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "ch12_lens_training.png", dpi=100)
    plt.close(fig)
    (out / "ch12_category.json").write_text(json.dumps({**res, "history": hist, "finset": finset, "folds": folds},
                                                       indent=1))


if __name__ == "__main__":
    main()
