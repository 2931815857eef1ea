"""Chapter 6 — numerical methods, measured.

1. Floating-point formats: eps, smallest normal, max for float16 / bfloat16 / float32 / float64.
2. Summation error vs n in float32: naive (~n eps), pairwise (~log n eps), Kahan (~eps), vs fsum.
3. Finite differences: error vs step h for forward and central differences — the V of truncation
   (h, h^2) against rounding (eps/h), with its minimum near eps^(1/2) and eps^(1/3).
4. Gradient checking of fungpt.grad against central differences on a few functions.
5. Efficient matrix products: naive loops vs the row-column definition vs blocked vs jnp.dot
   (jitted), and the matrix-chain order. Timings are medians in one process; they are noisy on a
   shared machine.

    .venv/bin/python experiments/ch06_numerics.py [--quick] [--out experiments/out]

On an accelerator: the floating-point tables and error curves are properties of the formats and do not change
(float64 needs a CPU or GPU); the matrix-product timings become the accelerator's, where jnp.dot wins by far
more.
"""
import argparse
import json
import math
import pathlib
import statistics
import time

import jax
import jax.numpy as jnp
import matplotlib
import numpy as np

jax.config.update("jax_enable_x64", True)         # float64 references
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

import fungpt  # noqa: E402
from fungpt import basics, linalg, numerics  # noqa: E402


def formats():
    return {str(jnp.dtype(d)): numerics.float_info(d).__dict__
            for d in (jnp.float16, jnp.bfloat16, jnp.float32, jnp.float64)}


def summation(ns):
    rng = np.random.default_rng(0)
    rows = {"naive": [], "pairwise": [], "kahan": [], "jnp.sum": []}
    fns = {"naive": numerics.naive_sum, "pairwise": numerics.pairwise_sum, "kahan": numerics.kahan_sum,
           "jnp.sum": jax.jit(jnp.sum)}
    for n in ns:
        x = rng.uniform(0, 1, n).astype(np.float32)
        exact = math.fsum(x.astype(np.float64))
        for k, f in fns.items():
            rows[k].append(abs(float(f(jnp.asarray(x))) - exact) / exact)
    return rows


def finite_differences(hs):
    curves = {}
    for dtype in (np.float32, np.float64):
        x = np.asarray(0.7, dtype)
        for scheme in ("forward", "central"):
            d = np.asarray(numerics.finite_difference(jnp.sin, jnp.asarray(x), jnp.asarray(hs.astype(dtype)), scheme))
            curves[f"{scheme} {np.dtype(dtype).name}"] = np.abs(d.astype(np.float64) - np.cos(0.7))
    return curves


def gradient_checks(quick):
    rng = np.random.default_rng(3)
    cases = {
        "tanh MLP loss": (lambda p: jnp.sum(jnp.tanh(p["w"] @ p["x"]) ** 2),
                          {"w": rng.standard_normal((4, 5)), "x": rng.standard_normal(5)}),
        "logsumexp": (basics.logsumexp, rng.standard_normal(7)),
        "det (our LU)": (linalg.det, rng.standard_normal((4, 4)) + 2 * np.eye(4)),
        "sum of eigvalsh^2 (our Jacobi)": (lambda a: jnp.sum(linalg.eigvalsh((a + a.T) / 2) ** 2),
                                          rng.standard_normal((4, 4))),
    }
    if quick:
        cases = dict(list(cases.items())[:1])
    return {k: float(numerics.gradient_check(f, jax.tree.map(jnp.asarray, p), grad_fn=fungpt.grad).rel_error)
            for k, (f, p) in cases.items()}


def _median_time(f, *args, reps):
    jax.block_until_ready(f(*args))
    ts = []
    for _ in range(reps):
        t = time.perf_counter()
        jax.block_until_ready(f(*args))
        ts.append(time.perf_counter() - t)
    return statistics.median(ts)


def _python_matmul(a, b):
    n, k, m = len(a), len(b), len(b[0])
    return [[sum(a[i][p] * b[p][j] for p in range(k)) for j in range(m)] for i in range(n)]


def matmul_timings(sizes, reps):
    rows = []
    for n in sizes:
        rng = np.random.default_rng(n)
        a = rng.standard_normal((n, n)).astype(np.float32)
        b = rng.standard_normal((n, n)).astype(np.float32)
        ja, jb = jnp.asarray(a), jnp.asarray(b)
        row = {"n": n}
        if n <= 64:
            al, bl = a.tolist(), b.tolist()
            row["python loops"] = _median_time(lambda: _python_matmul(al, bl), reps=1)
        row["row x column (linalg.matmul, jit)"] = _median_time(linalg.matmul, ja, jb, reps=reps)
        row["blocked 32 (jit)"] = _median_time(lambda x, y: numerics.blocked_matmul(x, y, block=32), ja, jb, reps=reps)
        row["jnp.dot (jit)"] = _median_time(jax.jit(jnp.dot), ja, jb, reps=reps)
        row["numpy @"] = _median_time(lambda x, y: x @ y, a, b, reps=reps)
        row["gflops jnp.dot"] = numerics.matmul_flops(n, n, n) / row["jnp.dot (jit)"] / 1e9
        rows.append(row)
    return rows


def roofline(sizes, densities, n_sparse, reps):
    """GFLOP/s of jitted jnp.dot and our blocked_matmul (float32) against n, with the best rate seen
    (the machine's measured peak for this library); and dense vs CSR matvec time against density."""
    rates = {"jnp.dot (XLA's GEMM)": [], "numerics.blocked_matmul (block 32)": []}
    for n in sizes:
        rng = np.random.default_rng(n)
        a, b = (jnp.asarray(rng.standard_normal((n, n)).astype(np.float32)) for _ in range(2))
        flops = numerics.matmul_flops(n, n, n)
        rates["jnp.dot (XLA's GEMM)"].append(flops / _median_time(jax.jit(jnp.dot), a, b, reps=reps) / 1e9)
        rates["numerics.blocked_matmul (block 32)"].append(
            flops / _median_time(lambda x, y: numerics.blocked_matmul(x, y, block=32), a, b, reps=reps) / 1e9)
    rng = np.random.default_rng(0)
    dense_mv = jax.jit(jnp.dot)
    sparse = {"dense matvec": [], "CSR matvec": []}
    x = jnp.asarray(rng.standard_normal(n_sparse).astype(np.float32))
    for d in densities:
        a = (rng.standard_normal((n_sparse, n_sparse)) * (rng.uniform(size=(n_sparse, n_sparse)) < d))
        a = a.astype(np.float32)
        csr = numerics.csr_from_dense(a)
        sparse["dense matvec"].append(_median_time(dense_mv, jnp.asarray(a), x, reps=reps))
        sparse["CSR matvec"].append(_median_time(jax.jit(numerics.csr_matvec), csr, x, reps=reps))
    return rates, sparse


def roofline_figure(out, sizes, densities, n_sparse, rates, sparse):
    fig, ax = plt.subplots(1, 2, figsize=(11, 3.8))
    peak = max(max(v) for v in rates.values())
    for k, v in rates.items():
        ax[0].semilogx(sizes, v, "o-", ms=3, label=k)
    ax[0].axhline(peak, color="gray", ls=":", label=f"best measured: {peak:.1f} GFLOP/s")
    ax[0].set(xlabel="n (n x n @ n x n, float32)", ylabel="GFLOP/s", ylim=(0, None),
              title="matmul GFLOP/s against n (median, jitted);\nmeasured on this machine, noisy when it is shared")
    ax[0].legend(fontsize=7)
    for k, v in sparse.items():
        ax[1].loglog(densities, np.asarray(v) * 1e6, "o-", ms=3, label=k)
    ax[1].set(xlabel="density nnz / n^2", ylabel="microseconds (median)",
              title=f"matvec time against density, n = {n_sparse}:\ndense does n^2 work, CSR ~nnz plus gather overhead")
    ax[1].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "ch06_roofline.png", dpi=80)
    plt.close(fig)


def chain(reps):
    dims = [400, 20, 400, 10, 300]
    rng = np.random.default_rng(5)
    mats = [jnp.asarray(rng.standard_normal((dims[i], dims[i + 1])).astype(np.float32)) for i in range(4)]
    best, tree = numerics.matrix_chain_order(dims)
    left = sum(numerics.matmul_flops(dims[0], dims[i], dims[i + 1]) for i in range(1, 4))
    t_left = _median_time(jax.jit(lambda *m: ((m[0] @ m[1]) @ m[2]) @ m[3]), *mats, reps=reps)
    t_best = _median_time(jax.jit(numerics.multi_dot), *mats, reps=reps)
    return {"dims": dims, "order": str(tree), "flops_left_to_right": left, "flops_optimal": best,
            "ms_left_to_right": 1e3 * t_left, "ms_optimal": 1e3 * t_best}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small sizes (a few seconds)")
    ap.add_argument("--out", default="experiments/out")
    args = ap.parse_args(argv)
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    q = args.quick

    fmt = formats()
    ns = [4096] if q else [2**k for k in range(6, 21)]
    sums = summation(ns)
    hs = np.logspace(-16, 0, 17 if q else 97)
    fd = finite_differences(hs)
    checks = gradient_checks(q)
    timings = matmul_timings([32] if q else [32, 64, 128, 256, 512], 3 if q else 15)
    ch = chain(3 if q else 15)
    sizes = [16, 64, 128] if q else [16, 32, 64, 128, 256, 512, 1024]
    densities = [0.01, 0.1, 0.5] if q else [0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0]
    n_sparse = 256 if q else 2048
    rates, sparse = roofline(sizes, densities, n_sparse, 3 if q else 9)
    roofline_figure(out, sizes, densities, n_sparse, rates, sparse)

    fig, ax = plt.subplots(1, 2, figsize=(10, 3.6))
    for k, v in sums.items():
        ax[0].loglog(ns, np.maximum(v, 1e-12), "o-", ms=3, label=k)
    eps32 = float(np.finfo(np.float32).eps)
    ax[0].loglog(ns, eps32 * np.asarray(ns, float) / 4, ":", color="gray", lw=0.8, label="n eps / 4")
    ax[0].set(xlabel="n", ylabel="relative error vs fsum", title="float32 summation of U(0, 1)")
    ax[0].legend(fontsize=7)
    for k, v in fd.items():
        ax[1].loglog(hs, np.maximum(v, 1e-18), label=k)
    ax[1].set(xlabel="step h", ylabel="|error| of d/dx sin at 0.7", title="finite differences: the V",
              ylim=(1e-13, 10))
    ax[1].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "ch06_numerics.png", dpi=80)
    plt.close(fig)

    best_h = {k: float(hs[int(np.argmin(v))]) for k, v in fd.items()}
    summary = {
        "formats": fmt,
        "summation": {"n": ns, **{f"{k}_rel_error": v for k, v in sums.items()},
                      "kahan_max_rel_error": max(sums["kahan"]), "naive_max_rel_error": max(sums["naive"])},
        "finite_differences_best_h": best_h,
        "gradient_check_rel_error_fungpt_grad": checks,
        "matmul_seconds_median": timings,
        "matrix_chain": ch,
        "roofline_gflops": {"sizes": sizes, **rates}, "csr_vs_dense_seconds": {"densities": densities, **sparse},
        "note": "timings: medians in one process on a shared 2-core CPU (jax 0.10.2); noisy",
    }
    (out / "ch06_numerics.json").write_text(json.dumps(summary, indent=2))
    print(json.dumps({k: v for k, v in summary.items() if k != "formats"}, indent=2))
    return summary


if __name__ == "__main__":
    main()
