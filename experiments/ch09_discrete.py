"""Chapter 9, combinatorics & discrete math: what a learner should see.

1. Stirling's formula: the error of log n! ≈ n log n − n + ½ log 2πn against n, inside Robbins' bounds
   1/(12n+1) < error < 1/(12n) (reference: mpmath's loggamma at 40 digits).
2. Recursion: Fibonacci numbers exactly by naive iteration (O(n) big-int additions) vs fast doubling
   (O(log n) recursive calls), timed; Binet's closed form in float32/float64 and where it stops being exact.
3. Symbolic representations: symbolic differentiation copies shared subexpressions, so the derivative of
   f_k = sin(f_{k−1})·f_{k−1} grows like 2^k nodes (before and after `simplify`), while the jaxpr of
   `fungpt.grad` of the same function — a DAG that shares values — grows linearly.  Values are checked
   against each other.

Run: .venv/bin/python experiments/ch09_discrete.py [--quick] [--out experiments/out]
Writes ch09_discrete.json and ch09_discrete.png.

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
        rows.append({"k": k, "f nodes": dm.expr_size(f), "d/dx nodes": dm.expr_size(d_raw),
                     "d/dx nodes simplified": dm.expr_size(d),
                     "fungpt.grad jaxpr equations": len(jax.make_jaxpr(fungpt.grad(g))(v).jaxpr.eqns),
                     "symbolic - autodiff": sym - auto})
    return rows


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

    fig, ax = plt.subplots(1, 3, figsize=(13, 3.6))
    ax[0].loglog(n, err, "o", ms=3, label="ours (float64)")
    ax[0].loglog(n, np.abs(ref), "-", lw=1, label="mpmath, 40 digits")
    ax[0].loglog(n, 1 / (12 * n), "k--", lw=1, label="1/(12n)")
    ax[0].set(xlabel="n", ylabel="log n! − log Stirling(n)", title="Stirling's approximation error")
    ax[0].legend(fontsize=8)
    for name, b in binet.items():
        ax[1].semilogy(fn, np.maximum(b["rel_error"], 1e-20), label=name)
    ax[1].set(xlabel="n", ylabel="|Binet(n) − F(n)| / F(n)", title="Binet's closed form in floating point")
    ax[1].legend(fontsize=8)
    ks = [r["k"] for r in swell]
    for key in ("f nodes", "d/dx nodes", "d/dx nodes simplified", "fungpt.grad jaxpr equations"):
        ax[2].semilogy(ks, [r[key] for r in swell], "o-", ms=3, label=key)
    ax[2].set(xlabel="k  (f_k = sin(f_{k-1})·f_{k-1})", ylabel="size", title="Symbolic diff swells; autodiff shares")
    ax[2].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "ch09_discrete.png", dpi=80)
    plt.close(fig)

    result = {"stirling": {"n": n.tolist(), "ours": err.tolist(), "mpmath": ref.tolist(),
                           "max |ours - mpmath|": float(np.max(np.abs(err - ref)))},
              "fibonacci": fib_rows,
              "binet": {k: v["first n where rounding fails"] for k, v in binet.items()},
              "expression_swell": swell}
    (out / "ch09_discrete.json").write_text(json.dumps(result, indent=1))
    print(json.dumps({k: result[k] for k in ("fibonacci", "binet")}, indent=1))
    for r in swell:
        print(r)
    return result


if __name__ == "__main__":
    jax.config.update("jax_enable_x64", True)  # log n! to ~1e-16 and float64 Binet
    main()
