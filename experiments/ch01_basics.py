"""Chapter 1 — what a learner should see about basic math on a computer.

1. log(1 - e^x) and softplus: the textbook formulas lose every digit (or overflow) at one end;
   fungpt.basics.log1mexp / softplus stay within a few ulps of mpmath everywhere.
2. Root finding: error per iteration of bisection (linear), secant (order 1.618) and Newton
   (quadratic) on Wallis's cubic x^3 - 2x - 5.
3. The quadratic formula: the textbook small root of x^2 + b x + 1 vs the stable one, as b grows.
4. Functions and their inverses (ch01_inverses.png): each graph and its inverse from
   `basics.invert` (bisection, then Newton polish) are mirror images about y = x; the error of the
   inverse with and without the Newton polish.

    .venv/bin/python experiments/ch01_basics.py [--quick] [--out experiments/out]

On an accelerator: the curves are the same on a GPU; the float64 references need float64 hardware, which TPUs
lack (run this chapter on a CPU or GPU if a TPU refuses it).
"""
import argparse
import json
import pathlib

import jax
import jax.numpy as jnp
import matplotlib
import mpmath
import numpy as np

jax.config.update("jax_enable_x64", True)         # references and plots in float64
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from fungpt import basics  # noqa: E402

mpmath.mp.dps = 50


def _rel(got, want):
    return np.abs(np.asarray(got, np.float64) - want) / np.abs(want)


def log_space(n):
    x = -np.logspace(-18, 1.5, n)
    want = np.array([float(mpmath.log(1 - mpmath.exp(mpmath.mpf(float(v))))) for v in x])
    with np.errstate(divide="ignore", invalid="ignore"):
        forms = {
            "log(1 - exp(x))": np.log(1 - np.exp(x)),
            "log(-expm1(x))": np.log(-np.expm1(x)),
            "log1p(-exp(x))": np.log1p(-np.exp(x)),
            "fungpt log1mexp": np.asarray(basics.log1mexp(jnp.asarray(x))),
        }
        errs = {k: np.where(np.isfinite(v), _rel(v, want), 1.0) for k, v in forms.items()}
    xs = np.linspace(-50, 800, n)
    with np.errstate(over="ignore"):
        naive_sp = np.log(1 + np.exp(xs))
    ours_sp = np.asarray(basics.softplus(jnp.asarray(xs)))
    return x, errs, naive_sp, ours_sp


def root_histories(iters):
    f = lambda x: x**3 - 2 * x - 5
    root = float(mpmath.findroot(lambda x: x**3 - 2 * x - 5, 2.1))
    runs = {
        "bisection": jax.jit(lambda m: basics.bisect(f, 2.0, 3.0, xtol=0.0, maxiter=m).root),
        "secant": jax.jit(lambda m: basics.secant(f, 2.0, 3.0, xtol=0.0, maxiter=m).root),
        "newton": jax.jit(lambda m: basics.newton(f, 2.0, xtol=0.0, maxiter=m).root),
    }
    hist = {k: [max(abs(float(g(m)) - root), 1e-17) for m in range(1, iters + 1)] for k, g in runs.items()}
    return hist


def quadratic(bs):
    naive, stable = [], []
    for b in bs:
        exact = float((-b + mpmath.sqrt(mpmath.mpf(b) ** 2 - 4)) / 2)          # the small root
        naive.append(abs((-b + np.sqrt(b * b - 4.0)) / 2 - exact) / abs(exact))
        r = np.asarray(basics.quadratic_roots(1.0, float(b), 1.0))
        small = r[np.argmin(np.abs(r))].real
        stable.append(abs(small - exact) / abs(exact))
    return np.array(naive), np.array(stable)


INVERTIBLE = {  # name: (f, [lo, hi], closed-form inverse)
    "exp": (jnp.exp, (-2.0, 1.5), np.log),
    "x^3 + x": (lambda x: x**3 + x, (-1.5, 1.5), None),
    "tanh": (jnp.tanh, (-2.5, 2.5), np.arctanh),
    "softplus": (basics.softplus, (-3.0, 2.0), lambda y: np.log(np.expm1(y))),
}


def inverses_figure(out, n):
    fig, ax = plt.subplots(1, 2, figsize=(10, 4.2))
    errors = {}
    for (name, (f, (lo, hi), inv)), c in zip(INVERTIBLE.items(), plt.rcParams["axes.prop_cycle"].by_key()["color"],
                                              strict=False):
        x, y = basics.graph(f, lo, hi, n)
        y = np.asarray(y)
        ys = jnp.asarray(np.linspace(y.min(), y.max(), n)[1:-1])
        xs = np.asarray(jax.vmap(lambda v, f=f, lo=lo, hi=hi: basics.invert(f, v, lo, hi))(ys))
        ax[0].plot(x, y, color=c, lw=1.5, label=name)
        ax[0].plot(ys, xs, color=c, lw=1.5, ls="--")
        if inv is not None:
            ref = inv(np.asarray(ys))
            coarse = np.asarray(jax.vmap(lambda v, f=f, lo=lo, hi=hi: basics.invert(f, v, lo, hi, xtol=1e-5,
                                                                                     polish=0))(ys))
            polished = np.asarray(jax.vmap(lambda v, f=f, lo=lo, hi=hi: basics.invert(f, v, lo, hi, xtol=1e-5,
                                                                                       polish=2))(ys))
            ax[1].semilogy(ys, np.maximum(np.abs(coarse - ref), 1e-18), ":", color=c, label=f"{name}: bisection")
            ax[1].semilogy(ys, np.maximum(np.abs(polished - ref), 1e-18), "-", color=c,
                           label=f"{name}: + 2 Newton steps")
            errors[name] = {"bisection_xtol_1e-5": float(np.max(np.abs(coarse - ref))),
                            "polished": float(np.max(np.abs(polished - ref)))}
    lim = (-3.2, 4.7)
    ax[0].plot(lim, lim, color="gray", lw=0.8, ls=":")
    ax[0].set(xlim=lim, ylim=lim, aspect="equal",
              title="f (solid) and invert(f) (dashed):\nmirror images about y = x")
    ax[0].legend(fontsize=7, loc="lower right")
    ax[1].set(xlabel="y", ylabel="|invert(f)(y) - f^-1(y)| (closed form)", ylim=(1e-18, 1e-3),
              title="the bracket gives xtol, Newton the last digits")
    ax[1].legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(out / "ch01_inverses.png", dpi=80)
    plt.close(fig)
    return errors


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer points (a few seconds)")
    ap.add_argument("--out", default="experiments/out")
    args = ap.parse_args(argv)
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    n = 60 if args.quick else 400

    x, errs, naive_sp, ours_sp = log_space(n)
    hist = root_histories(8 if args.quick else 40)
    bs = np.logspace(1, 8, 8 if args.quick else 29)
    q_naive, q_stable = quadratic(bs)

    fig, ax = plt.subplots(1, 3, figsize=(13, 3.6))
    for k, e in errs.items():
        ax[0].loglog(-x, np.maximum(e, 1e-18), label=k, lw=1.5 if "fungpt" in k else 1)
    ax[0].axvline(np.log(2), color="gray", ls=":", lw=0.8)
    ax[0].set(xlabel="-x", ylabel="relative error vs mpmath", title="log(1 - e^x)")
    ax[0].legend(fontsize=7)
    for k, h in hist.items():
        ax[1].semilogy(np.arange(1, len(h) + 1), h, "o-", ms=3, label=k)
    ax[1].set(xlabel="iteration", ylabel="|x_k - root|", title="root finding on x^3 - 2x - 5")
    ax[1].legend(fontsize=8)
    ax[2].loglog(bs, np.maximum(q_naive, 1e-18), "o-", ms=3, label="(-b + sqrt(b^2 - 4)) / 2")
    ax[2].loglog(bs, np.maximum(q_stable, 1e-18), "s-", ms=3, label="fungpt quadratic_roots")
    ax[2].set(xlabel="b", ylabel="relative error of the small root", title="x^2 + b x + 1 = 0")
    ax[2].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "ch01_basics.png", dpi=80)
    plt.close(fig)

    summary = {
        "log1mexp": {
            "stable_max_rel_error": float(np.max(errs["fungpt log1mexp"])),
            "naive_max_rel_error": float(np.max(errs["log(1 - exp(x))"])),
        },
        "softplus": {"naive_overflows": bool(np.isinf(naive_sp).any()),
                     "ours_finite": bool(np.isfinite(ours_sp).all())},
        "roots_abs_error_after_5_iterations": {k: h[4] for k, h in hist.items()},
        "quadratic_small_root_rel_error_at_b_1e8": {"naive": float(q_naive[-1]), "stable": float(q_stable[-1])},
        "inverse_max_abs_error": inverses_figure(out, 40 if args.quick else 200),
    }
    (out / "ch01_basics.json").write_text(json.dumps(summary, indent=2))
    print(json.dumps(summary, indent=2))
    return summary


if __name__ == "__main__":
    main()
