"""Chapter 5: Lagrange multipliers, seen. At a constrained optimum the level set of f touches the
constraint curve, so ∇f and ∇h are parallel: ∇f + λ∇h = 0.

Left: the nearest point on the unit circle to a = (1.6, 0.9) (min ‖x - a‖² s.t. ‖x‖² = 1, closed
form a/‖a‖, λ = ‖a‖ - 1). Right: max xy s.t. x + y = 3 (closed form x = y = 1.5, λ = 1.5).
Both solved by fungpt.optim.lagrange_newton (Newton on the KKT system, our autodiff's Hessian).

Second figure (optim_sensitivity.png), multipliers as sensitivities: min ‖x - a‖² s.t. ‖x‖² <= b, solved
by fungpt.optim.augmented_lagrangian for a sweep of budgets b (vmapped). The optimal value f*(b) falls as
the budget grows, with slope df*/db = -μ(b): the multiplier prices the constraint. Closed form:
f* = (‖a‖ - √b)², μ = ‖a‖/√b - 1 while b < ‖a‖², and f* = μ = 0 once the constraint is slack.

Run: .venv/bin/python experiments/optim_lagrange.py [--quick]
Writes experiments/out/optim_lagrange.png and .json.

On an accelerator: nothing changes beyond float32 rounding: a 2-variable Newton solve.
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
A = np.array([1.6, 0.9])


def problems():
    a = jnp.asarray(A, jnp.float32)
    return {
        "nearest point on the circle": dict(
            f=lambda x: jnp.sum((x - a) ** 2), h=lambda x: x @ x - 1.0, x0=[1.0, 0.0],
            exact=(A / np.linalg.norm(A), np.linalg.norm(A) - 1), box=(-1.5, 2.5, -1.5, 2.0)),
        "max xy on x + y = 3": dict(
            f=lambda x: -x[0] * x[1], h=lambda x: x[0] + x[1] - 3.0, x0=[2.0, 0.5],
            exact=(np.array([1.5, 1.5]), 1.5), box=(-0.5, 3.5, -0.5, 3.5)),
    }


def sensitivity(out, n):
    """f*(b) and μ(b) for min ‖x - a‖² s.t. ‖x‖² <= b, over n budgets; figure optim_sensitivity.png."""
    a = jnp.asarray(A)
    budgets = np.linspace(0.25, 1.4 * float(A @ A), n)

    @jax.jit
    def solve(b):
        r = optim.augmented_lagrangian(lambda x: jnp.sum((x - a) ** 2), jnp.zeros(2), ineq=lambda x: x @ x - b)
        return jnp.sum((r.x - a) ** 2), r.ineq_multipliers[0], r.converged

    fstar, mu, ok = (np.asarray(v) for v in jax.vmap(solve)(jnp.asarray(budgets)))
    na = np.linalg.norm(A)
    exact_f = np.where(budgets < na**2, (na - np.sqrt(budgets)) ** 2, 0.0)
    exact_mu = np.where(budgets < na**2, na / np.sqrt(budgets) - 1, 0.0)
    fd = np.gradient(fstar, budgets)
    fig, (ax, axm) = plt.subplots(1, 2, figsize=(11, 4.5))
    ax.plot(budgets, fstar, lw=2, label="f*(b), augmented Lagrangian")
    ax.plot(budgets, exact_f, "k:", label="closed form (‖a‖ - √b)²")
    for b0 in budgets[[n // 10, n // 4, n // 2]]:
        i = int(np.argmin(np.abs(budgets - b0)))
        xs = np.linspace(budgets[i] - 0.4, budgets[i] + 0.4, 2)
        ax.plot(xs, fstar[i] - mu[i] * (xs - budgets[i]), "r-", lw=1.5)
    ax.plot([], [], "r-", label="tangent of slope -μ(b)")
    ax.axvline(na**2, color="grey", ls="--", lw=1)
    ax.set(xlabel="budget b in ‖x‖² <= b", ylabel="optimal value f*", title="min ‖x - a‖² s.t. ‖x‖² <= b")
    ax.legend(fontsize=8)
    axm.plot(budgets, mu, lw=2, label="μ(b) from the solver")
    axm.plot(budgets, -fd, "o", ms=3, label="-df*/db, finite differences")
    axm.plot(budgets, exact_mu, "k:", label="closed form ‖a‖/√b - 1")
    axm.set(xlabel="budget b", ylabel="multiplier", title="the multiplier is the price of the constraint")
    axm.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "optim_sensitivity.png", dpi=70)
    inner = slice(1, -1)  # np.gradient is one-sided at the ends
    return {"all_converged": bool(ok.all()), "max_abs_error_mu": float(np.max(np.abs(mu - exact_mu))),
            "max_abs_error_fstar": float(np.max(np.abs(fstar - exact_f))),
            "max_abs_mu_minus_fd_slope": float(np.max(np.abs(mu[inner] + fd[inner])))}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="coarser contour grid")
    ap.add_argument("--out", type=pathlib.Path, default=OUT)
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    n = 60 if args.quick else 300
    fig, axes = plt.subplots(1, 2, figsize=(11, 5))
    report = {}
    for ax, (name, p) in zip(axes, problems().items(), strict=True):
        @jax.jit
        def solve(x0, pts, f=p["f"], h=p["h"]):
            # One compiled program per problem: the solve, both gradients at x*, and the contour grids.
            x, lam = optim.lagrange_newton(f, h, x0, steps=20)
            return x, lam, fungpt.grad(f)(x), fungpt.grad(h)(x), jax.vmap(f)(pts), jax.vmap(h)(pts)

        x0, x1, y0, y1 = p["box"]
        gx, gy = np.meshgrid(np.linspace(x0, x1, n), np.linspace(y0, y1, n))
        pts = jnp.asarray(np.stack([gx.ravel(), gy.ravel()], 1), jnp.float32)
        x, lam, gf, gh, fz, hz = solve(jnp.asarray(p["x0"], jnp.float32), pts)
        fz, hz = np.asarray(fz).reshape(gx.shape), np.asarray(hz).reshape(gx.shape)
        x_np = np.asarray(x, np.float64)
        report[name] = {"x": x_np.tolist(), "lambda": float(lam[0]), "exact_x": p["exact"][0].tolist(),
                        "exact_lambda": float(p["exact"][1]),
                        "max_abs_error_x": float(np.max(np.abs(x_np - p["exact"][0])))}
        ax.contour(gx, gy, fz, levels=20, cmap="viridis", linewidths=0.7)
        ax.contour(gx, gy, fz, levels=[float(p["f"](x))], colors="tab:blue", linewidths=1.8)
        ax.contour(gx, gy, hz, levels=[0.0], colors="tab:red", linewidths=2.0)
        gf, gh = np.asarray(gf), np.asarray(gh)
        for g, color, label in ((gf, "tab:blue", "∇f"), (gh, "tab:red", "∇h")):
            g = 0.6 * g / np.linalg.norm(g)
            ax.annotate("", xy=x_np + g, xytext=x_np, arrowprops=dict(arrowstyle="->", color=color, lw=2))
            ax.text(*(x_np + 1.1 * g), label, color=color, fontsize=12)
        ax.plot(*x_np, "k*", ms=14)
        ax.set(title=f"{name}\nx* = ({x_np[0]:.4f}, {x_np[1]:.4f}), λ = {float(lam[0]):.4f}",
               xlim=(x0, x1), ylim=(y0, y1), aspect="equal")
    fig.tight_layout()
    fig.savefig(args.out / "optim_lagrange.png", dpi=70)
    report["sensitivity"] = sensitivity(args.out, 25 if args.quick else 200)
    (args.out / "optim_lagrange.json").write_text(json.dumps(report, indent=1))
    print(json.dumps(report, indent=1))
    return report


if __name__ == "__main__":
    main()
