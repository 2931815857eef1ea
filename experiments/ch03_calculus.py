"""Chapter 3, calculus: what a learner should see.

1. Difference quotients: error vs step h on log-log axes — truncation (slope 1 or 2) meets rounding
   (slope -1); the complex step has no rounding wall.
2. Limits by Richardson extrapolation.
3. Critical points of x^3 - 3x - y^3 + 3y found by Newton with our Hessian, classified.
4. Quadrature: error vs evaluations for trapezoid (n^-2), Simpson (n^-4), Gauss-Legendre (spectral),
   and Monte Carlo (n^-1/2) vs quasi-Monte Carlo (~n^-1) in 3-D.
5. Taylor polynomials of sin and their error vs distance (slope order+1).
6. Forward vs reverse vs mixed accumulation of a Jacobian (ch03_jacobian_cost.png): jacfwd costs one pass
   per input, jacrev one per output, and through a bottleneck the mixed order beats both; time measured on the
   machine the experiment runs on (noisy when shared), temporary memory from XLA's memory_analysis() of the
   compiled programs (deterministic).

Run: .venv/bin/python experiments/ch03_calculus.py [--quick] [--out experiments/out]

On an accelerator: the error curves are properties of the methods and the same on a GPU; the float64 parts
need float64 hardware, which TPUs lack.
"""
import argparse
import json
import math
import pathlib
import time

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from fungpt import calculus as C  # noqa: E402


def f1(x):
    return jnp.sin(x) * jnp.exp(x / 3)


def f1_prime(x):
    return (math.cos(x) + math.sin(x) / 3) * math.exp(x / 3)


def difference_errors(quick):
    hs = np.logspace(-16, -1, 16 if quick else 61)
    x = jnp.asarray(0.7)
    errs = {}
    for method in ("forward", "central", "complex"):
        fn = jax.jit(jax.vmap(lambda h, m=method: C.derivative(f1, x, method=m, h=h)))
        errs[method] = np.abs(np.asarray(fn(jnp.asarray(hs))) - f1_prime(0.7))
    return hs, errs


def limits():
    cases = {"sin(x)/x at 0": (lambda x: jnp.sin(x) / x, 0.0, "both", 1.0),
             "(e^x - 1)/x at 0": (lambda x: jnp.expm1(x) / x, 0.0, "both", 1.0),
             "(1 + x)^(1/x) at 0+": (lambda x: jnp.exp(jnp.log1p(x) / x), 0.0, "right", math.e),
             "atan(1/x) at 0-": (lambda x: jnp.arctan(1 / x), 0.0, "left", -math.pi / 2)}
    rows = {}
    for name, (f, x0, side, exact) in cases.items():
        val, err = jax.jit(lambda z, f=f, side=side: C.limit(f, z, side=side))(jnp.asarray(x0))
        naive = float(f(jnp.asarray(x0 + (1e-3 if side != "left" else -1e-3))))
        rows[name] = {"richardson": float(val), "error_estimate": float(err), "actual_error": abs(float(val) - exact),
                      "naive_f(x0±1e-3)_error": abs(naive - exact)}
    return rows


def field(v):
    return v[0] ** 3 - 3 * v[0] - v[1] ** 3 + 3 * v[1]


def critical_points(quick):
    g = np.linspace(-2, 2, 5 if quick else 9)
    starts = jnp.asarray(np.stack(np.meshgrid(g, g), -1).reshape(-1, 2))
    cps = jax.jit(jax.vmap(lambda s: C.newton_critical_point(field, s)))(starts)
    names = {C.MINIMUM: "minimum", C.MAXIMUM: "maximum", C.SADDLE: "saddle", C.DEGENERATE: "degenerate"}
    found = {}
    for x, kind, ok, it in zip(np.asarray(cps.x), np.asarray(cps.kind), np.asarray(cps.converged),
                               np.asarray(cps.iterations), strict=True):
        if ok:
            found.setdefault(tuple(np.round(x, 8)), (names[int(kind)], int(it)))
    return {f"({x:+.6f}, {y:+.6f})": k for (x, y), k in sorted(found.items())}


def newton_paths(quick):
    """Newton paths (fixed steps, `newton_path`) from a grid of starts, and the classified end points."""
    g = np.linspace(-1.8, 1.8, 4 if quick else 7)
    starts = jnp.asarray(np.stack(np.meshgrid(g, g), -1).reshape(-1, 2))
    paths = jax.jit(jax.vmap(lambda s: C.newton_path(field, s, steps=8)))(starts)
    kinds = jax.jit(jax.vmap(lambda x: C.classify_critical_point(field, x)[0]))(paths[:, -1])
    return np.asarray(paths), np.asarray(kinds)


def richardson_tableau(f, x0, side, levels):
    """Neville's table T[k, j] for a one-sided limit (rows: h0/2^k; columns: extrapolation order)."""
    sign = 1.0 if side == "right" else -1.0
    hs = 0.125 / 2.0 ** np.arange(levels)
    g = np.asarray(jax.vmap(lambda h: f(x0 + sign * h))(jnp.asarray(hs)))
    t = np.full((levels, levels), np.nan)
    t[:, 0] = g
    for k in range(1, levels):
        for j in range(1, k + 1):
            t[k, j] = t[k, j - 1] + (t[k, j - 1] - t[k - 1, j - 1]) / (2.0**j - 1)
    return t


def quadrature_errors(quick):
    exact = math.e - 1
    ns = [2, 4, 8, 16, 32, 64, 128] if not quick else [4, 16]
    one_d = {}
    for rule, fn in (("trapezoid", C.trapezoid), ("simpson", C.simpson), ("gauss", C.gauss_legendre)):
        run = jax.jit(lambda a, b, n, fn=fn: fn(jnp.exp, a, b, n), static_argnums=2)
        one_d[rule] = [(n + (rule != "gauss"), abs(float(run(0.0, 1.0, n)) - exact))
                       for n in (ns if rule != "gauss" else range(1, 4 if quick else 12))]
    # 3-D: Monte Carlo vs quasi-Monte Carlo on a smooth integrand with known integral
    f3 = lambda v: jnp.exp(-jnp.sum(v**2))
    exact3 = (math.sqrt(math.pi) / 2 * math.erf(1.0)) ** 3
    lo, hi = jnp.zeros(3), jnp.ones(3)
    mc, qmc = [], []
    key = jax.random.key(0)
    run_mc = jax.jit(lambda k, n: C.monte_carlo(f3, k, lo, hi, n), static_argnums=1)
    run_qmc = jax.jit(lambda k, n: C.quasi_monte_carlo(f3, k, lo, hi, n // 8, n_shifts=8), static_argnums=1)
    for n in ([4096] if quick else [256, 1024, 4096, 16384, 65536]):
        k1, k2, key = jax.random.split(key, 3)
        est, se = run_mc(k1, n)
        mc.append((n, abs(float(est) - exact3), float(se)))
        est, se = run_qmc(k2, n)
        qmc.append((n, abs(float(est) - exact3), float(se)))
    run_gauss = jax.jit(lambda n: C.tensor_product_rule(f3, lo, hi, n, rule="gauss"), static_argnums=0)
    tensor = [(n**3, abs(float(run_gauss(n)) - exact3)) for n in ((2, 4) if quick else (2, 4, 6, 8))]
    return one_d, {"monte_carlo": mc, "quasi_monte_carlo": qmc, "gauss_tensor": tensor}


def taylor(quick):
    x0, orders = 0.0, ((1, 3) if quick else (1, 3, 5, 7))
    dxs = np.logspace(-2, 0, 5 if quick else 21)
    out = {}
    for k in orders:
        c = jax.jit(lambda z, k=k: C.taylor_coefficients(jnp.sin, z, k))(jnp.asarray(x0))
        err = np.abs(np.polyval(np.asarray(c)[::-1], dxs) - np.sin(dxs))
        ok = err > 1e-12  # below that, float64 rounding and not truncation sets the error
        slope = np.polyfit(np.log(dxs[ok]), np.log(err[ok]), 1)[0]
        out[k] = {"coefficients": np.asarray(c).tolist(), "errors": err.tolist(), "slope": float(slope)}
    return dxs, out


def _measure(fn, x, reps):
    """(median seconds, XLA's temp bytes, argument + output bytes) of the jitted fn at x."""
    import statistics

    compiled = jax.jit(fn).lower(x).compile()
    mem = compiled.memory_analysis()
    jax.block_until_ready(compiled(x))
    ts = []
    for _ in range(reps):
        t = time.perf_counter()
        jax.block_until_ready(compiled(x))
        ts.append(time.perf_counter() - t)
    return statistics.median(ts), int(mem.temp_size_in_bytes), int(mem.argument_size_in_bytes +
                                                                     mem.output_size_in_bytes)


def jacobian_costs(quick):
    """Time and memory of the full Jacobian by forward mode (one jvp per input, `fungpt.jacfwd`), reverse mode
    (one vjp per output, `fungpt.jacrev`) and mixed accumulation (`chain_rule_jacobian(order="optimal")`):

    - f(x) = tanh(W x), W (m, n): sweep n with m = 16, then m with n = 16;
    - an hourglass R^k → R^k → R^4 → R^k → R^k (a 4-wide bottleneck): both pure modes pay k passes, mixed
      accumulation pays 4 + 4 (reverse into the bottleneck, forward out of it), in time and in memory."""
    sizes, fixed, reps = ([4, 64] if quick else [4, 16, 64, 256, 1024]), 16, (3 if quick else 15)
    rows = {"vary n (inputs), m = 16": [], "vary m (outputs), n = 16": [], "hourglass k → 4 → k": []}
    modes = {"forward": lambda f, v: C.jacobian(f, v, mode="forward"),
             "reverse": lambda f, v: C.jacobian(f, v, mode="reverse")}
    for k in sizes:
        for label, (m, n) in (("vary n (inputs), m = 16", (fixed, k)), ("vary m (outputs), n = 16", (k, fixed))):
            w = jax.random.normal(jax.random.key(m * 7919 + n), (m, n)) / np.sqrt(n)
            f = lambda v, w=w: jnp.tanh(w @ v)
            x = jnp.linspace(-1.0, 1.0, n)
            rows[label].append((k, {name: _measure(lambda v, g=g, f=f: g(f, v), x, reps) for name, g in modes.items()}))
        ws = [jax.random.normal(jax.random.key(i), s) / np.sqrt(s[1]) for i, s in
              enumerate([(k, k), (4, k), (k, 4), (k, k)])]
        layer = [lambda v, w=w: jnp.tanh(w @ v) for w in ws]
        # two stages: into the bottleneck (narrows: our chain rule takes its Jacobian in reverse mode, 4 vjps)
        # and out of it (widens: forward mode, 4 jvps)
        stages = [lambda v, g=layer: g[1](g[0](v)), lambda v, g=layer: g[3](g[2](v))]
        whole = lambda v, stages=stages: stages[1](stages[0](v))
        x = jnp.linspace(-1.0, 1.0, k)
        res = {name: _measure(lambda v, g=g, f=whole: g(f, v), x, reps) for name, g in modes.items()}
        res["mixed"] = _measure(lambda v, st=stages: C.chain_rule_jacobian(st, v, order="optimal"), x, reps)
        rows["hourglass k → 4 → k"].append((k, res))
    return rows


def jacobian_plot(out, rows):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(2, 3, figsize=(14, 7))
    style = {"forward": ("o-", "forward (jacfwd: one jvp per input)"),
             "reverse": ("s-", "reverse (jacrev: one vjp per output)"),
             "mixed": ("^-", "mixed: reverse into the bottleneck, forward out")}
    for col, (label, pts) in enumerate(rows.items()):
        k = np.array([p[0] for p in pts])
        for name in pts[0][1]:
            t = np.array([p[1][name][0] for p in pts]) * 1e3
            mem = np.array([p[1][name][1] for p in pts]) / 2**10
            ax[0, col].loglog(k, t, style[name][0], ms=3, label=style[name][1])
            ax[1, col].loglog(k, np.maximum(mem, 1e-3), style[name][0], ms=3, label=style[name][1])
        io = np.array([p[1]["forward"][2] for p in pts]) / 2**10
        ax[1, col].loglog(k, io, "k:", label="arguments + the Jacobian itself")
        xl = label.split(",")[0].replace("vary ", "") if "hourglass" not in label else "k (inputs = outputs)"
        ax[0, col].set(title=f"J of {'tanh(W x)' if 'hourglass' not in label else 'an hourglass'}: {label}",
                       xlabel=xl)
        ax[1, col].set(xlabel=xl)
        ax[0, col].legend(fontsize=7)
        ax[1, col].legend(fontsize=7)
    ax[0, 0].set_ylabel("milliseconds (median, jitted)")
    ax[1, 0].set_ylabel("XLA temp memory, KiB (memory_analysis)")
    fig.tight_layout()
    fig.savefig(out / "ch03_jacobian_cost.png", dpi=80)
    plt.close(fig)


def limit_plots(out, levels):
    """The Richardson tableau |T[k, j] - L| for a limit that exists, and the error estimates of three
    that do not (where `limit` answers NaN)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = richardson_tableau(lambda x: jnp.expm1(x) / x, 0.0, "right", levels)
    fig, ax = plt.subplots(1, 2, figsize=(10, 3.8))
    im = ax[0].imshow(np.log10(np.maximum(np.abs(t - 1.0), 1e-17)), cmap="viridis", vmin=-17, vmax=0)
    ax[0].set(xlabel="extrapolation column j", ylabel="row k (h = 2^-k / 8)",
              title="Richardson tableau: log10 |T[k, j] - 1|\nfor (e^x - 1)/x as x -> 0+")
    fig.colorbar(im, ax=ax[0])
    cases = {"(e^x-1)/x (exists)": lambda x: jnp.expm1(x) / x, "sign(x), both sides": jnp.sign,
             "sin(1/x)": lambda x: jnp.sin(1 / x), "1/x": lambda x: 1 / x}
    for name, f in cases.items():
        errs, vals = [], []
        for n in range(2, levels + 1):
            side = "both" if "sign" in name else "right"
            v, e = C.limit(f, jnp.asarray(0.0), side=side, levels=n)
            errs.append(max(float(e), 1e-17))
            vals.append(float(v))
        ax[1].semilogy(range(2, levels + 1), errs, "o-", ms=3,
                       label=f"{name}: {'NaN (no limit)' if np.isnan(vals[-1]) else round(vals[-1], 12)}")
    ax[1].axhline(float(np.finfo(np.float64).eps) ** 0.25, color="gray", ls=":", lw=0.8)
    ax[1].set(xlabel="levels", ylabel="error estimate |T[n,n] - T[n-1,n-1]|",
              title="limit(): converging tables vs 'does not exist'\n(dotted: the eps^(1/4) threshold)")
    ax[1].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "ch03_limits.png", dpi=80)
    plt.close(fig)


def critical_point_plot(out, paths, kinds):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    g = np.linspace(-2.2, 2.2, 200)
    xx, yy = np.meshgrid(g, g)
    fig, ax = plt.subplots(figsize=(5.2, 4.6))
    ax.contour(xx, yy, xx**3 - 3 * xx - yy**3 + 3 * yy, levels=25, cmap="coolwarm", linewidths=0.7)
    colors = {C.MINIMUM: "tab:blue", C.MAXIMUM: "tab:red", C.SADDLE: "tab:green", C.DEGENERATE: "k"}
    for path, kind in zip(paths, kinds, strict=True):
        ok = np.all(np.isfinite(path)) and np.all(np.abs(path) < 3)
        if ok:
            ax.plot(path[:, 0], path[:, 1], "-", color="gray", lw=0.6)
            ax.plot(*path[-1], "o", color=colors[int(kind)], ms=7)
    for k, c in colors.items():
        ax.plot([], [], "o", color=c, label=["minimum", "maximum", "saddle", "degenerate"][k])
    ax.set(xlim=(-2.2, 2.2), ylim=(-2.2, 2.2), title="Newton on grad f = 0 finds every kind\n"
           "f = x^3 - 3x - y^3 + 3y (gray: paths; color: Hessian test)")
    ax.legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    fig.savefig(out / "ch03_critical_points.png", dpi=80)
    plt.close(fig)


def plots(out, hs, errs, one_d, nd, dxs, tay):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(1, 3, figsize=(13, 3.8))
    for m, e in errs.items():
        ax[0].loglog(hs, np.maximum(e, 1e-17), ".-", label=m)
    ax[0].set(xlabel="step h", ylabel="|error| of f'(0.7)", title="difference quotients (float64)")
    ax[0].legend()
    for rule, pts in one_d.items():
        n, e = zip(*pts, strict=True)
        ax[1].loglog(n, np.maximum(e, 1e-17), "o-", label=rule)
    ax[1].set(xlabel="evaluations", ylabel="|error|", title="∫₀¹ eˣ dx")
    ax[1].legend()
    for name, pts in nd.items():
        n, e = [p[0] for p in pts], [p[1] for p in pts]
        ax[2].loglog(n, np.maximum(e, 1e-17), "o-", label=name)
        if len(pts[0]) == 3:
            ax[2].loglog(n, [p[2] for p in pts], ":", color=ax[2].lines[-1].get_color())
    ax[2].set(xlabel="evaluations", ylabel="|error| (dotted: reported std. error)",
              title="3-D ∫ exp(-|x|²) over [0,1]³")
    ax[2].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "ch03_derivatives_quadrature.png", dpi=80)
    plt.close(fig)

    fig, ax = plt.subplots(1, 2, figsize=(9, 3.6))
    xs = np.linspace(-math.pi, math.pi, 200)
    ax[0].plot(xs, np.sin(xs), "k", lw=2, label="sin")
    for k, d in tay.items():
        ax[0].plot(xs, np.polyval(d["coefficients"][::-1], xs), label=f"order {k}")
        ax[1].loglog(dxs, np.maximum(d["errors"], 1e-17), "o-", label=f"order {k} (slope {d['slope']:.1f})")
    ax[0].set(ylim=(-1.5, 1.5), title="Taylor polynomials of sin at 0")
    ax[0].legend(fontsize=8)
    ax[1].set(xlabel="|x - x0|", ylabel="|error|", title="Taylor error ~ |x - x0|^(order+1)")
    ax[1].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "ch03_taylor.png", dpi=80)
    plt.close(fig)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer points, for the smoke test")
    ap.add_argument("--out", default="experiments/out")
    args = ap.parse_args(argv)
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    hs, errs = difference_errors(args.quick)
    best = {m: (float(hs[np.argmin(e)]), float(np.min(e))) for m, e in errs.items()}
    lims = limits()
    cps = critical_points(args.quick)
    one_d, nd = quadrature_errors(args.quick)
    dxs, tay = taylor(args.quick)
    plots(out, hs, errs, one_d, nd, dxs, tay)       # --quick: the same figures from fewer points
    limit_plots(out, 6 if args.quick else 10)
    critical_point_plot(out, *newton_paths(args.quick))
    jac = jacobian_costs(args.quick)
    jacobian_plot(out, jac)
    result = {"best_step_and_error": best, "limits": lims, "critical_points": cps, "quadrature_1d": one_d,
              "quadrature_3d": nd, "taylor_slopes": {k: v["slope"] for k, v in tay.items()},
              "jacobian_k_mode_seconds_temp_bytes_io_bytes": jac, "seconds": time.perf_counter() - t0}
    (out / "ch03_calculus.json").write_text(json.dumps(result, indent=1))
    print("best step and error per difference quotient:", json.dumps(best))
    print("limits:", json.dumps(lims, indent=1))
    print("critical points (Newton + Hessian test):", json.dumps(cps))
    print("Taylor error slopes (expect order+1):", {k: round(v["slope"], 2) for k, v in tay.items()})
    print("3-D MC vs QMC (n, |error|, std. error):", nd["monte_carlo"][-1], nd["quasi_monte_carlo"][-1])
    print(f"wrote {out}/ch03_*.png and ch03_calculus.json in {result['seconds']:.1f} s")


if __name__ == "__main__":
    main()
