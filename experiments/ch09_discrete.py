"""Chapter 9, combinatorics & discrete math: what a learner should see.

1. Stirling's formula: the error of log n! ≈ n log n − n + ½ log 2πn against n, inside Robbins' bounds
   1/(12n+1) < error < 1/(12n) (reference: mpmath's loggamma at 40 digits).
2. Recursion: Fibonacci numbers exactly by naive iteration (O(n) big-int additions) vs fast doubling
   (O(log n) recursive calls), timed; Binet's closed form in float32/float64 and where it stops being exact.
3. Symbolic representations: symbolic differentiation copies shared subexpressions, so the derivative tree of
   f_k = sin(f_{k−1})·f_{k−1} grows like 2^k nodes (before and after `simplify`), while the same derivative
   hash-consed into a DAG, and the jaxpr of `fungpt.grad` of the same function, grow linearly.  Values are
   checked against each other.
4. Sets and logic: the power-set lattice with a formula's models; DPLL against truth-table enumeration on the
   same random 3-SAT instances (time and work against n, measured); the satisfiability phase transition near
   4.26 clauses per variable; CNF size by distribution (exponential) against Tseitin (linear).

Run: .venv/bin/python experiments/ch09_discrete.py [--quick] [--out experiments/out]
5. Trees: a binary heap drawn as a tree and as its array; heapify (O(n)) vs n pushes (O(n log n)) vs heap_sort vs
   XLA's sort, jitted and timed per key; a parameter pytree drawn as the tree that `tree_graph` returns.

Writes ch09_discrete.json, ch09_discrete.png (Stirling, Binet), ch09_swell.png, ch09_sat.png and ch09_trees.png.

On an accelerator: nothing that matters changes: the big-integer and symbolic parts run on the host; Binet's
float64 column needs a CPU or GPU.
"""
from __future__ import annotations

import argparse
import json
import pathlib
import statistics
import time

import jax
import jax.numpy as jnp
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import mpmath
import numpy as np

import fungpt
from fungpt import discrete as dm


def stirling(quick):
    n = np.unique(np.logspace(0, 6 if not quick else 3, 25 if not quick else 8).round())
    err = np.asarray(dm.stirling_log_error(jnp.asarray(n, jnp.float64)))
    mpmath.mp.dps = 40
    ref = np.array([float(mpmath.loggamma(v + 1) - (v * mpmath.log(v) - v + mpmath.log(2 * mpmath.pi * v) / 2))
                    for v in n])
    return n, err, ref


def _median_ms(fn, reps):
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1e3)
    return statistics.median(times)


def _fib_iter(n):
    a, b = 0, 1
    for _ in range(n):
        a, b = b, a + b
    return a


def fibonacci(quick):
    rows = []
    for n in ((1_000, 10_000) if quick else (1_000, 10_000, 100_000, 300_000)):
        assert dm.fibonacci(n) == _fib_iter(n)
        fast = _median_ms(lambda n=n: dm.fibonacci(n), 3)
        rows.append({"n": n, "digits": len(str(dm.fibonacci(n))) if n <= 10_000 else None,
                     "iteration ms": _median_ms(lambda n=n: _fib_iter(n), 3), "fast doubling ms": fast})
    n = np.arange(1, 91)
    exact = np.array([dm.fibonacci(int(v)) for v in n], dtype=np.float64)
    binet = {}
    for dt in (jnp.float32, jnp.float64):
        b = np.asarray(dm.binet(jnp.asarray(n, dt)), np.float64)
        wrong = [int(v) for v, x in zip(n, b, strict=True) if round(x) != dm.fibonacci(int(v))]
        binet[jnp.dtype(dt).name] = {"rel_error": np.abs(b - exact) / exact,
                                     "first n where rounding fails": wrong[0] if wrong else None}
    return rows, n, binet


def expression_swell(kmax):
    """The same f_k = sin(f_{k-1})·f_{k-1}, its derivative as a tree, as a hash-consed DAG, and as the jaxpr of
    fungpt.grad (and jax.grad): sizes against k, with the values checked against each other."""
    x = dm.Var("x")
    f, rows = x, []
    for k in range(kmax + 1):
        if k:
            f = dm.sin(f) * f
        g = lambda v, f=f: dm.evaluate(f, {"x": v})
        d_raw, d = dm.diff(f, "x", simplified=False), dm.diff(f, "x")
        v = jnp.asarray(0.7, jnp.float64)
        sym, auto = float(dm.evaluate(d, {"x": v})), float(fungpt.grad(g)(v))
        assert abs(sym - auto) <= 1e-9 * max(1.0, abs(auto)), (k, sym, auto)
        rows.append({"k": k, "f nodes": dm.expr_size(f), "f DAG nodes": dm.dag_size(f),
                     "d/dx tree": dm.expr_size(d_raw), "d/dx tree, simplified": dm.expr_size(d),
                     "d/dx DAG": dm.dag_size(d_raw), "d/dx DAG, simplified": dm.dag_size(d),
                     "fungpt.grad jaxpr equations": len(jax.make_jaxpr(fungpt.grad(g))(v).jaxpr.eqns),
                     "jax.grad jaxpr equations": len(jax.make_jaxpr(jax.grad(g))(v).jaxpr.eqns),
                     "symbolic - autodiff": sym - auto})
    return rows


def swell_figure(swell, path):
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    swell = [r for r in swell if r["k"] >= 1]  # k = 0 (f = x) has an empty jaxpr: no point on a log axis
    ks = [r["k"] for r in swell]
    styles = {"d/dx tree": "o-", "d/dx tree, simplified": "s--", "d/dx DAG": "^-", "d/dx DAG, simplified": "v--",
              "fungpt.grad jaxpr equations": "D-", "jax.grad jaxpr equations": "x:", "f nodes": "k.-"}
    for key, st in styles.items():
        ax.semilogy(ks, [r[key] for r in swell], st, ms=4, lw=1.2, label=key)
    last = swell[-1]
    ax.set(xlabel="nesting depth k   (f_k = sin(f_{k−1})·f_{k−1},  f_0 = x)", ylabel="nodes / equations",
           title=f"The same derivative at k = {last['k']}: tree {last['d/dx tree']:,} nodes, "
                 f"DAG {last['d/dx DAG']}, jaxpr {last['fungpt.grad jaxpr equations']}")
    ax.title.set_fontsize(9)
    ax.legend(fontsize=7, ncol=2)
    ax.text(0.02, 0.97, "a tree copies every shared subexpression (×~2.2 per level);\nhash-consing it into a DAG, "
            "or reverse-mode autodiff,\nadds a constant number of nodes per level", transform=ax.transAxes,
            va="top", fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _timed(fn):
    t = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t


def sat_scaling(quick):
    """Random 3-SAT at clause/variable ratio 4.26: DPLL and enumeration on the same instances, interleaved."""
    rng = np.random.default_rng(0)
    brute_ns = set(range(6, 15, 2) if quick else range(6, 23, 2))
    all_ns = sorted(brute_ns | set(range(10, 31, 10) if quick else range(10, 91, 10)))
    reps, rows = (3 if quick else 9), []
    for n in all_ns:
        r = {"n": n, "dpll s": [], "dpll nodes": [], "brute s": [], "brute tested": [], "sat": []}
        for _ in range(reps):
            cnf = dm.random_cnf(rng, n, round(4.26 * n))
            (model, nodes), t = _timed(lambda cnf=cnf: dm.dpll(cnf, n))
            assert model is None or bool(dm.cnf_holds(cnf, np.array([[model[v] for v in range(1, n + 1)]]))[0])
            r["dpll s"].append(t)
            r["dpll nodes"].append(nodes)
            r["sat"].append(model is not None)
            if n in brute_ns:
                (bmodel, tested), t = _timed(lambda cnf=cnf: dm.brute_force_sat(cnf, n))
                assert (bmodel is None) == (model is None), n
                r["brute s"].append(t)
                r["brute tested"].append(tested)
        rows.append({k: (float(np.median(v)) if v else None) if k != "n" and k != "sat" else
                     (float(np.mean(v)) if k == "sat" else v) for k, v in r.items()})
    return rows


def sat_phase(quick):
    """Fraction satisfiable and DPLL's search-tree size against the clause/variable ratio m/n."""
    rng = np.random.default_rng(1)
    ns, reps = ((10, 20), 8) if quick else ((20, 40, 60), 40)
    ratios = np.arange(2.0, 7.01, 0.5 if quick else 0.25)
    out = {}
    for n in ns:
        runs = [[dm.dpll(dm.random_cnf(rng, n, round(a * n)), n) for _ in range(reps)] for a in ratios]
        out[n] = {"sat": [float(np.mean([m is not None for m, _ in r])) for r in runs],
                  "nodes": [float(np.median([k for _, k in r])) for r in runs]}
    return ratios, out


def cnf_sizes(kmax):
    """(x1 ∧ y1) ∨ ... ∨ (xk ∧ yk): clauses of the distributed CNF against Tseitin's."""
    rows = []
    for k in range(1, kmax + 1):
        xs = dm.atoms(2 * k)
        f = xs[0] & xs[1]
        for i in range(1, k):
            f = f | (xs[2 * i] & xs[2 * i + 1])
        t_cnf, t_vars = dm.tseitin(f)
        rows.append({"k": k, "distribution clauses": len(dm.to_cnf(f)), "tseitin clauses": len(t_cnf),
                     "tseitin variables": t_vars})
    return rows


def _lattice(ax):
    """The Hasse diagram of P({1,2,3,4}); filled: the assignments (sets of true variables) satisfying a formula."""
    n = 4
    x1, x2, x3, x4 = dm.atoms(n)
    formula = (x1 >> x2) & (x3 | x4)
    masks = np.asarray(dm.power_set_masks(n))
    sat = np.asarray(dm.holds(formula, [masks[:, i] for i in range(n)]))
    size = masks.sum(1)
    pos = {}
    for m in range(2**n):
        level = [j for j in range(2**n) if size[j] == size[m]]
        pos[m] = (level.index(m) - (len(level) - 1) / 2, size[m])
    for m in range(2**n):
        for i in range(n):
            if not m >> i & 1:
                (a, b), (c, d) = pos[m], pos[m | 1 << i]
                ax.plot([a, c], [b, d], color="0.75", lw=0.8, zorder=1)
    xy = np.array([pos[m] for m in range(2**n)])
    ax.scatter(xy[:, 0], xy[:, 1], s=520, c=["C2" if v else "white" for v in sat], edgecolors="k", zorder=2)
    for m, (a, b) in pos.items():
        ax.text(a, b, "{" + ",".join(str(e + 1) for e in dm.bits(m)) + "}", ha="center", va="center", fontsize=6)
    ax.set(title="P({1,2,3,4}) ordered by ⊆; green: the models of\n(x1 → x2) ∧ (x3 ∨ x4), as sets of true variables",
           xticks=[], ylabel="|S|")
    ax.title.set_fontsize(8)


def sat_figure(scaling, ratios, phase, sizes, path):
    fig, ax = plt.subplots(2, 3, figsize=(14, 7.6))
    _lattice(ax[0, 0])
    b = [r for r in scaling if r["brute s"] is not None]
    ax[0, 1].semilogy([r["n"] for r in scaling], [r["dpll s"] for r in scaling], "o-", label="DPLL")
    ax[0, 1].semilogy([r["n"] for r in b], [r["brute s"] for r in b], "s-", label="enumeration (numpy, vectorized)")
    ax[0, 1].set(xlabel="variables n  (random 3-SAT, m = 4.26 n clauses)", ylabel="median seconds",
                 title="time to decide satisfiability")
    ax[0, 2].semilogy([r["n"] for r in scaling], [r["dpll nodes"] for r in scaling], "o-", label="DPLL: search nodes")
    ax[0, 2].semilogy([r["n"] for r in b], [r["brute tested"] for r in b], "s-", label="enumeration: assignments")
    ax[0, 2].semilogy([r["n"] for r in b], [2.0 ** r["n"] for r in b], "k:", label="2ⁿ")
    ax[0, 2].set(xlabel="variables n", ylabel="median count", title="work: propagation prunes the 2ⁿ tree")
    for n, v in phase.items():
        ax[1, 0].plot(ratios, v["sat"], "o-", ms=3, label=f"n = {n}")
        ax[1, 1].semilogy(ratios, v["nodes"], "o-", ms=3, label=f"n = {n}")
    for a in (ax[1, 0], ax[1, 1]):
        a.axvline(4.26, color="k", ls=":", lw=1)
    ax[1, 0].set(xlabel="clauses / variables", ylabel="fraction satisfiable", title="the phase transition near 4.26")
    ax[1, 1].set(xlabel="clauses / variables", ylabel="median DPLL nodes", title="hardest at the transition")
    ks = [r["k"] for r in sizes]
    for key, st in (("distribution clauses", "o-"), ("tseitin clauses", "s-"), ("tseitin variables", "^--")):
        ax[1, 2].semilogy(ks, [r[key] for r in sizes], st, label=key)
    ax[1, 2].set(xlabel="k  in  (x₁ ∧ y₁) ∨ … ∨ (x_k ∧ y_k)", ylabel="count",
                 title="CNF size: distribution 2ᵏ, Tseitin linear")
    for a in ax.flat[1:]:
        a.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def _draw_heap(ax, keys):
    """A heap as a tree (slot i has children 2i+1, 2i+2) over the same keys as the array that stores it."""
    n = len(keys)
    pos = {}
    for i in range(n):
        d = int(np.log2(i + 1))
        pos[i] = ((i + 1 - 2**d + 0.5) / 2**d, -d)
    for i in range(1, n):
        (a, b), (c, d) = pos[(i - 1) // 2], pos[i]
        ax.plot([a, c], [b, d], "0.6", lw=1, zorder=1)
    xy = np.array([pos[i] for i in range(n)])
    ax.scatter(xy[:, 0], xy[:, 1], s=380, c=["C3"] + ["C0"] * (n - 1), zorder=2)
    for i, (a, b) in pos.items():
        ax.text(a, b, f"{keys[i]:g}", ha="center", va="center", color="white", fontsize=8, zorder=3)
        ax.text(a, b - 0.32, f"[{i}]", ha="center", fontsize=6, color="0.4")
    y = -int(np.log2(n)) - 1.3
    for i, k in enumerate(keys):
        ax.text((i + 0.5) / n, y, f"{k:g}", ha="center", va="center", fontsize=8,
                bbox=dict(boxstyle="square", fc="C3" if i == 0 else "white"))
    ax.text(0.5, y - 0.55, "the same heap as its array: children of slot i at 2i+1, 2i+2", ha="center", fontsize=7)
    ax.set(xlim=(0, 1), ylim=(y - 0.9, 0.6), xticks=[], yticks=[],
           title="heapify([9, 4, 7, 1, 8, 2, 6, 3, 5, 0]): every parent <= its children")
    ax.title.set_fontsize(9)


def _draw_pytree(ax, tree):
    """A pytree as a rooted tree: containers are nodes, arrays are leaves; numbers give the pre-order."""
    g, post, pre = dm.tree_graph(tree), dm.traverse(tree, "post"), dm.traverse(tree, "pre")
    leaves = [p for p in pre if not g[p]]
    x = {p: float(leaves.index(p)) for p in leaves}
    for p in post:
        if g[p]:
            x[p] = float(np.mean([x[c] for c in g[p]]))
    for p, kids in g.items():
        for c in kids:
            ax.plot([x[p], x[c]], [-len(p), -len(c)], "0.6", lw=1, zorder=1)
    ax.scatter([x[p] for p in pre], [-len(p) for p in pre], s=300, c=["C2" if g[p] else "C1" for p in pre], zorder=2)
    for i, p in enumerate(pre):
        ax.text(x[p], -len(p), str(i), ha="center", va="center", fontsize=7, zorder=3)
        label = jax.tree_util.keystr(p[-1:]) if p else "params"
        ax.text(x[p], -len(p) + 0.3, label, ha="center", fontsize=6)
    ax.set(xticks=[], yticks=[], ylim=(-dm.tree_depth(tree) - 0.5, 0.7),
           title=f"a pytree is a tree: depth {dm.tree_depth(tree)}, {dm.tree_leaf_count(tree)} leaves "
                 "(numbers: traverse(tree, 'pre'))")
    ax.title.set_fontsize(9)


def heap_timing(quick):
    """Jitted, per key, best of the repeats: Floyd's heapify (O(n)) vs n pushes (O(n log n)) vs heap_sort vs
    jnp.sort, interleaved."""
    pushes = jax.jit(lambda x: jax.lax.fori_loop(0, x.shape[0], lambda i, h: dm.heap_push(h, x[i]),
                                                 dm.heap_init(x.shape[0], x.dtype)))
    fns = {"heapify (Floyd, bottom-up)": jax.jit(dm.heapify), "n × heap_push": pushes,
           "heap_sort": jax.jit(dm.heap_sort), "jnp.sort (XLA)": jax.jit(jnp.sort)}
    rows = []
    for e in (6,) if quick else range(6, 16):
        x = jnp.asarray(np.random.default_rng(e).permutation(2**e), jnp.float32)
        for f in fns.values():
            jax.block_until_ready(f(x))  # compile outside the timing
        times = {k: [] for k in fns}
        for _ in range(2 if quick else 7):
            for k, f in fns.items():
                t = time.perf_counter()
                jax.block_until_ready(f(x))
                times[k].append(time.perf_counter() - t)
        # best of the repeats: the least disturbed run on a shared machine
        rows.append({"n": 2**e, **{k: float(np.min(v)) / 2**e * 1e9 for k, v in times.items()}})
    return rows


def trees_figure(rows, path):
    fig, ax = plt.subplots(1, 3, figsize=(15, 4.2))
    h = dm.heapify(jnp.asarray([9, 4, 7, 1, 8, 2, 6, 3, 5, 0], jnp.float32))
    _draw_heap(ax[0], np.asarray(h.keys).tolist())
    for k, st in zip([k for k in rows[0] if k != "n"], ["o-", "s-", "^-", "x:"], strict=True):
        ax[1].loglog([r["n"] for r in rows], [r[k] for r in rows], st, label=k)
    ax[1].set(xlabel="n keys", ylabel="ns per key (jitted, CPU, best of the repeats)",
              title="heapify O(n); n pushes O(n log n) worst case, O(n) on\n"
                    "average for random keys; heap_sort O(n log n): pops sift to the bottom")
    ax[1].title.set_fontsize(9)
    ax[1].set_xscale("log", base=2)
    ax[1].legend(fontsize=7)
    params = {"wte": jnp.zeros((4, 2)), "h": [{"attn": {"w": 0.0, "b": 0.0}, "mlp": {"w": 0.0}},
                                             {"attn": {"w": 0.0, "b": 0.0}, "mlp": {"w": 0.0}}], "ln_f": {"g": 0.0}}
    _draw_pytree(ax[2], params)
    fig.tight_layout()
    fig.savefig(path, dpi=85)
    plt.close(fig)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small sizes, for the smoke test")
    ap.add_argument("--out", default=str(pathlib.Path(__file__).resolve().parent / "out"))
    args = ap.parse_args(argv)
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    n, err, ref = stirling(args.quick)
    fib_rows, fn, binet = fibonacci(args.quick)
    swell = expression_swell(4 if args.quick else 10)
    swell_figure(swell, out / "ch09_swell.png")
    scaling, (ratios, phase), sizes = sat_scaling(args.quick), sat_phase(args.quick), cnf_sizes(6 if args.quick else 12)
    sat_figure(scaling, ratios, phase, sizes, out / "ch09_sat.png")
    heap_rows = heap_timing(args.quick)
    trees_figure(heap_rows, out / "ch09_trees.png")

    fig, ax = plt.subplots(1, 2, figsize=(9, 3.6))
    ax[0].loglog(n, err, "o", ms=3, label="ours (float64)")
    ax[0].loglog(n, np.abs(ref), "-", lw=1, label="mpmath, 40 digits")
    ax[0].loglog(n, 1 / (12 * n), "k--", lw=1, label="1/(12n)")
    ax[0].set(xlabel="n", ylabel="log n! − log Stirling(n)", title="Stirling's approximation error")
    ax[0].legend(fontsize=8)
    for name, b in binet.items():
        ax[1].semilogy(fn, np.maximum(b["rel_error"], 1e-20), label=name)
    ax[1].set(xlabel="n", ylabel="|Binet(n) − F(n)| / F(n)", title="Binet's closed form in floating point")
    ax[1].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "ch09_discrete.png", dpi=80)
    plt.close(fig)

    result = {"stirling": {"n": n.tolist(), "ours": err.tolist(), "mpmath": ref.tolist(),
                           "max |ours - mpmath|": float(np.max(np.abs(err - ref)))},
              "fibonacci": fib_rows,
              "binet": {k: v["first n where rounding fails"] for k, v in binet.items()},
              "expression_swell": swell, "sat_scaling": scaling,
              "sat_phase": {"ratios": ratios.tolist(), **{str(n): v for n, v in phase.items()}}, "cnf_sizes": sizes,
              "heap_ns_per_key": heap_rows}
    (out / "ch09_discrete.json").write_text(json.dumps(result, indent=1))
    print(json.dumps({k: result[k] for k in ("fibonacci", "binet")}, indent=1))
    for r in swell + scaling + sizes + heap_rows:
        print(r)
    return result


if __name__ == "__main__":
    jax.config.update("jax_enable_x64", True)  # log n! to ~1e-16 and float64 Binet
    main()
