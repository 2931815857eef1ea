"""Chapter 2 — linear algebra you can watch.

1. Power iteration: the eigenvalue error falls like |l2/l1|^(2k) (symmetric A), so the gap decides.
2. SVD image compression: rank-k approximations of a generated image with our one-sided Jacobi
   SVD; the error is exactly sqrt(sum_{i>k} s_i^2) (Eckart-Young).
3. Gram-Schmidt: loss of orthogonality ||Q^T Q - I|| against cond(A) — classical ~ eps cond^2,
   modified ~ eps cond, Householder ~ eps.
4. Accuracy of our det / solve / inverse / eigh / svd against jnp.linalg on random matrices.
5. At the extremes (ch02_extremes.png): norms and singular values of c x, c A across float32's whole
   range — scaled (ours) vs squaring first (sum of squares, Gram matrix) — and dot products against
   their condition number: the plain sum loses digits like eps cond, compensated Dot2 holds to
   cond ~ 1/eps (mpmath is the reference).

    .venv/bin/python experiments/ch02_linalg.py [--quick] [--out experiments/out]

On an accelerator: the error laws are the same on a GPU; on a TPU, float32 matrix products run at bfloat16
precision by default, which raises the measured errors, and the float64 references need a CPU or GPU.
"""
import argparse
import json
import pathlib

import jax
import jax.numpy as jnp
import matplotlib
import numpy as np

jax.config.update("jax_enable_x64", True)         # float64 references
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from fungpt import linalg, numerics  # noqa: E402


def scale_errors(cs):
    """Relative error of ||c x|| and sigma_max(c A) in float32 for each scale c: ours vs squaring first."""
    rng = np.random.default_rng(0)
    x, a = rng.standard_normal(6), rng.standard_normal((5, 4))
    ref_n, ref_s = np.linalg.norm(x), np.linalg.norm(a, 2)
    out = {k: [] for k in ("norm (ours)", "sqrt(sum x^2)", "svd (ours)", "sqrt(eig(A^T A))")}
    for c in cs:
        cx, ca = jnp.asarray(x * c, jnp.float32), jnp.asarray(a * c, jnp.float32)
        rel = lambda v, ref: min(abs(float(v) / c - ref) / ref, 1.0) if np.isfinite(float(v)) else 1.0
        out["norm (ours)"].append(rel(linalg.vector_norm(cx), ref_n))
        out["sqrt(sum x^2)"].append(rel(jnp.sqrt(jnp.sum(cx * cx)), ref_n))
        out["svd (ours)"].append(rel(linalg.svd(ca, compute_uv=False)[0], ref_s))
        out["sqrt(eig(A^T A))"].append(rel(jnp.sqrt(jnp.max(jnp.linalg.eigvalsh(ca.T @ ca))), ref_s))
    return out


def dot_errors(log2_conds, dtype, n=24):
    rng = np.random.default_rng(1)
    rows = []
    for lc in log2_conds:
        x, y, exact, cond = numerics.ill_conditioned_dot(n, lc, rng, dtype)
        plain = abs(float(linalg.dot(jnp.asarray(x), jnp.asarray(y))) - exact) / abs(exact)
        dot2 = abs(float(linalg.dot(jnp.asarray(x), jnp.asarray(y), compensated=True)) - exact) / abs(exact)
        rows.append((cond, plain, dot2))
    return np.array(rows)


def extremes_figure(out, q):
    cs = np.logspace(-37, 37, 12 if q else 75)    # below ~1e-38 float32 is subnormal: XLA on CPU flushes it
    errs = scale_errors(cs)
    dots = {d: dot_errors(np.linspace(5, 50 if d == np.float32 else 110, 6 if q else 24), d)
            for d in (np.float32, np.float64)}
    fig, ax = plt.subplots(1, 2, figsize=(11, 3.8))
    for k, v in errs.items():
        ax[0].loglog(cs, np.maximum(v, 1e-9), "o-" if "ours" in k else "x--", ms=3, label=k)
    ax[0].axvspan(1e-19, 1e19, color="0.93", zorder=0)
    ax[0].set(xlabel="scale c", ylabel="relative error (clipped at 1)", ylim=(1e-9, 3),
              title="float32: ||c x|| and sigma_max(c A)\n(shaded: where squaring first is safe)")
    ax[0].legend(fontsize=7)
    for d, rows in dots.items():
        eps = float(np.finfo(d).eps)
        name = np.dtype(d).name
        ax[1].loglog(rows[:, 0], np.clip(rows[:, 1], 1e-18, 1), "x", label=f"plain dot, {name} (clipped at 1)")
        ax[1].loglog(rows[:, 0], np.maximum(rows[:, 2], 1e-18), "o", ms=4, label=f"Dot2, {name}")
        cgrid = np.logspace(0, np.log10(rows[:, 0].max()), 50)
        ax[1].loglog(cgrid, np.minimum(eps * cgrid, 10), ":", color="gray", lw=0.8)
        ax[1].loglog(cgrid, np.minimum(eps + eps**2 * cgrid, 10), "-", color="gray", lw=0.6)
    ax[1].set(xlabel="condition number 2 sum|x_i y_i| / |x . y|", ylabel="relative error", ylim=(1e-18, 10),
              title="dot products vs mpmath (dotted: eps cond;\nsolid: eps + eps^2 cond, the Dot2 bound)")
    ax[1].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "ch02_extremes.png", dpi=80)
    plt.close(fig)
    return {"max_rel_error_ours_norm_svd": max(max(errs["norm (ours)"]), max(errs["svd (ours)"])),
            "dot2_worst_error_over_bound": {np.dtype(d).name: _worst_over_bound(r, d) for d, r in dots.items()}}


def _worst_over_bound(rows, dtype):
    eps = float(np.finfo(dtype).eps)
    return float(np.max(rows[:, 2] / (eps + eps**2 * rows[:, 0])))


def power_iteration_curves(n, iters, ratios):
    rng = np.random.default_rng(0)
    q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    v0 = rng.standard_normal(n)
    curves = {}
    for r in ratios:
        vals = np.concatenate([[1.0, r], rng.uniform(-0.9 * r, 0.9 * r, n - 2)])
        a = q @ np.diag(vals) @ q.T
        hist = np.asarray(linalg.power_iteration(jnp.asarray(a), jnp.asarray(v0), iters=iters).history)
        curves[r] = np.maximum(np.abs(hist - 1.0), 1e-17)
    return curves


def test_image(h, w):
    y, x = np.mgrid[0:h, 0:w] / np.array([h, w])[:, None, None]
    img = 0.5 + 0.3 * np.sin(6 * x) * np.cos(4 * y)
    img += 0.4 * (((x - 0.35) ** 2 + (y - 0.4) ** 2) < 0.04)              # a disc
    img += 0.3 * ((np.abs(x - 0.72) < 0.12) & (np.abs(y - 0.65) < 0.2))   # a box
    return img


def compress(img, ranks):
    u, s, vt = (np.asarray(t) for t in linalg.svd(jnp.asarray(img)))
    errs = {}
    recon = {}
    for k in ranks:
        approx = (u[:, :k] * s[None, :k]) @ vt[:k]
        errs[k] = (float(np.linalg.norm(img - approx) / np.linalg.norm(img)),
                   float(np.sqrt(np.sum(s[k:] ** 2)) / np.linalg.norm(img)))
        recon[k] = approx
    return s, errs, recon


def orthogonality(m, n, conds):
    rng = np.random.default_rng(1)
    u, _ = np.linalg.qr(rng.standard_normal((m, n)))
    v, _ = np.linalg.qr(rng.standard_normal((n, n)))
    rows = {"classical": [], "modified": [], "householder": []}
    for c in conds:
        a = jnp.asarray(u @ np.diag(np.logspace(0, -np.log10(c), n)) @ v.T)
        rows["classical"].append(float(linalg.orthogonality_loss(linalg.gram_schmidt(a, modified=False)[0])))
        rows["modified"].append(float(linalg.orthogonality_loss(linalg.gram_schmidt(a, modified=True)[0])))
        rows["householder"].append(float(linalg.orthogonality_loss(numerics.qr_householder(a)[0])))
    return rows


def accuracy(n):
    rng = np.random.default_rng(2)
    a = jnp.asarray(rng.standard_normal((n, n)))
    b = jnp.asarray(rng.standard_normal(n))
    s = (a + a.T) / 2
    rel = lambda x, y: float(jnp.max(jnp.abs(x - y)) / jnp.max(jnp.abs(y)))
    return {
        "det": rel(linalg.det(a), jnp.linalg.det(a)),
        "solve": rel(linalg.solve(a, b), jnp.linalg.solve(a, b)),
        "inverse": rel(linalg.inverse(a), jnp.linalg.inv(a)),
        "eigvalsh": rel(linalg.eigvalsh(s), jnp.linalg.eigvalsh(s)),
        "singular values": rel(linalg.svd(a, compute_uv=False), jnp.linalg.svd(a, compute_uv=False)),
    }


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small sizes (a few seconds)")
    ap.add_argument("--out", default="experiments/out")
    args = ap.parse_args(argv)
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    q = args.quick

    ratios = (0.5, 0.9, 0.99)
    # --quick reuses the shapes the tests compile (5 x 5, 6 x 4), so the smoke test stays cheap.
    curves = power_iteration_curves(5 if q else 20, 200 if q else 300, ratios)
    img = test_image(*((6, 4) if q else (96, 96)))
    ranks = (1, 2, 3) if q else (1, 5, 20)
    s, errs, recon = compress(img, ranks)
    conds = np.logspace(0, 12, 5 if q else 13)
    ortho = orthogonality(6 if q else 40, 4 if q else 10, conds)
    acc = accuracy(5 if q else 32)

    fig, ax = plt.subplots(1, 3, figsize=(13, 3.6))
    for r, c in curves.items():
        k = np.arange(1, len(c) + 1)
        ax[0].semilogy(k, c, label=f"|l2/l1| = {r}")
        ax[0].semilogy(k, c[0] * r ** (2 * (k - 1)), ":", color="gray", lw=0.8)
    ax[0].set(xlabel="iteration", ylabel="|lambda_k - lambda_1|", title="power iteration (dotted: r^2k)",
              ylim=(1e-17, 10))
    ax[0].legend(fontsize=8)
    ax[1].semilogy(np.arange(1, len(s) + 1), s, ".-")
    ax[1].set(xlabel="i", ylabel="singular value s_i", title="SVD of the test image")
    for name, vals in ortho.items():
        ax[2].loglog(conds, np.maximum(vals, 1e-17), "o-", ms=3, label=name)
    ax[2].loglog(conds, 1e-16 * conds**2, ":", color="gray", lw=0.8, label="eps cond^2, eps cond")
    ax[2].loglog(conds, 1e-16 * conds, ":", color="gray", lw=0.8)
    ax[2].set(xlabel="cond(A)", ylabel="||Q^T Q - I||_F", title="loss of orthogonality", ylim=(1e-17, 10))
    ax[2].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "ch02_linalg.png", dpi=80)
    plt.close(fig)

    fig, ax = plt.subplots(1, len(ranks) + 1, figsize=(3 * (len(ranks) + 1), 3.4))
    ax[0].imshow(img, cmap="gray")
    ax[0].set_title(f"original ({img.shape[0]}x{img.shape[1]})")
    for a_, k in zip(ax[1:], ranks, strict=True):
        a_.imshow(recon[k], cmap="gray")
        a_.set_title(f"rank {k}: error {errs[k][0]:.3f}")
    for a_ in ax:
        a_.axis("off")
    fig.tight_layout(pad=1.5)
    fig.savefig(out / "ch02_svd_compression.png", dpi=70)
    plt.close(fig)

    summary = {
        "power_iteration": {"final_error": float(curves[0.5][-1]), "n": 5 if q else 20,
                            "errors_after_20": {str(r): float(c[min(19, len(c) - 1)]) for r, c in curves.items()}},
        "svd_compression": {str(k): {"rel_error": e, "eckart_young": ey} for k, (e, ey) in errs.items()},
        "orthogonality_loss_at_max_cond": {k: v[-1] for k, v in ortho.items()} | {"cond": float(conds[-1])},
        "max_rel_diff_vs_jnp_linalg": acc,
        "extremes": extremes_figure(out, q),
    }
    (out / "ch02_linalg.json").write_text(json.dumps(summary, indent=2))
    print(json.dumps(summary, indent=2))
    return summary


if __name__ == "__main__":
    main()
