"""Chapter 4, probability & statistics: what a learner should see.

1. Law of large numbers: running means of Exponential(2) draws settle inside the ±σ/√n band.
2. Central limit theorem: standardized means of a skewed parent (Exponential) approach N(0, 1) as n grows;
   KS distance and skewness 2/√n shrink.
3. Our samplers vs the densities (Gaussian/Box-Muller, Beta/Marsaglia-Tsang, Poisson/PTRS, Binomial).
4. Bayes: a Beta(2, 2) prior on a coin's bias, updated flip by flip.
5. MLE/MAP: closed forms vs gradient descent with fungpt.grad + fungpt.optim; and, as n grows
   (ch04_mle_map.png), the MLE, the MAP and the posterior mean with its 95% credible band converging on the
   truth, for Beta–Bernoulli and a Gaussian mean with known σ, each under a prior centred on the wrong value
   that pulls the MAP until the data outweigh it.
6. Markov chains: stationary distribution by eigenvector vs power iteration; mixing d(t) ~ |λ₂|^t.
7. Welford vs the textbook variance formula in float32.

Run: .venv/bin/python experiments/ch04_probability.py [--quick] [--out experiments/out]

On an accelerator: the laws shown do not change; the random bits are the same (JAX's threefry PRNG),
while their transforms to samples may differ in the last digits. The float64 parts need a CPU or GPU.
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

from fungpt import optim  # noqa: E402
from fungpt import probability as P  # noqa: E402


def lln(key, n):
    xs = jax.jit(lambda k: P.exponential.sample(k, 2.0, (3, n)))(key)
    return np.asarray(jax.jit(jax.vmap(P.running_mean))(xs))


def clt(key, m, ns):
    out = {}
    for n in ns:
        means = jax.jit(lambda k, n=n: P.sample_means(k, lambda kk, s: P.exponential.sample(kk, 1.0, s), n, m))(key)
        z = np.sqrt(n) * (np.asarray(means) - 1.0)
        d = float(P.ks_statistic(jnp.asarray(z), lambda t: P.gaussian.cdf(t, 0.0, 1.0)))
        skew = float(np.mean(z**3) / np.std(z) ** 3)
        out[n] = {"z": z, "ks": d, "skewness": skew, "skewness_theory": 2 / math.sqrt(n)}
    return out


def samplers(key, n, quick=False):
    keys = jax.random.split(key, 4)
    draws = {
        "gaussian(1, 0.5)": P.gaussian.sample(keys[0], 1.0, 0.5, (n,)),
        "beta(2.5, 0.8)": None if quick else P.beta.sample(keys[1], 2.5, 0.8, (n,)),
        "poisson(4.5)": None if quick else P.poisson.sample(keys[2], 4.5, (n,)),
        "binomial(20, 0.3)": P.binomial.sample(keys[3], 20, 0.3, (n,)),
    }
    dens = {
        "gaussian(1, 0.5)": lambda x: jnp.exp(P.gaussian.log_prob(x, 1.0, 0.5)),
        "beta(2.5, 0.8)": lambda x: jnp.exp(P.beta.log_prob(x, 2.5, 0.8)),
        "poisson(4.5)": lambda x: jnp.exp(P.poisson.log_prob(x, 4.5)),
        "binomial(20, 0.3)": lambda x: jnp.exp(P.binomial.log_prob(x, 20, 0.3)),
    }
    if quick:  # Beta and Poisson compile rejection loops: the tests cover them
        draws = {k: v for k, v in draws.items() if k.startswith(("gaussian", "binomial"))}
    return {k: np.asarray(v) for k, v in draws.items()}, dens


def bayes(key, n_flips):
    flips = np.asarray(P.bernoulli.sample(key, 0.7, (n_flips,)))
    curves = {}
    for n in sorted({0, 1, 5, 20, n_flips}):
        a, b = P.beta_bernoulli_update(2.0, 2.0, flips[:n].astype(np.float64))
        curves[n] = (float(a), float(b))
    return flips, curves


def _gauss_nll(params, data):
    return -jnp.mean(P.gaussian.log_prob(data, params["mu"], jnp.exp(params["log_sigma"])))


def _bern_neg_log_post(logit, data):
    p = jax.nn.sigmoid(logit)
    return -(jnp.sum(P.bernoulli.log_prob(data, p)) + P.beta.log_prob(p, 3.0, 2.0))


def estimation(key, steps):
    data = P.gaussian.sample(key, 2.0, 1.5, (200,))
    p0 = {"mu": jnp.zeros(()), "log_sigma": jnp.zeros(())}
    fitted, losses = jax.jit(lambda p, d: P.fit_numeric(_gauss_nll, p, d, steps=steps))(p0, data)
    mu, sigma = P.mle_gaussian(data)
    flips = jnp.asarray([1.0, 0, 1, 1, 1, 0, 1])
    logit, _ = jax.jit(lambda p, d: P.fit_numeric(_bern_neg_log_post, p, d, steps=steps,
                                                  optimizer=optim.sgd(0.3)))(jnp.zeros(()), flips)
    return {
        "gaussian_mle_closed_form": [float(mu), float(sigma)],
        "gaussian_mle_adam_fungpt_grad": [float(fitted["mu"]), float(jnp.exp(fitted["log_sigma"]))],
        "bernoulli_map_beta(3,2)_closed_form": float(P.map_bernoulli(flips, 3.0, 2.0)),
        "bernoulli_map_sgd_fungpt_grad": float(jax.nn.sigmoid(logit)),
        "bernoulli_mle": float(P.mle_bernoulli(flips)),
    }, np.asarray(losses)


def mle_map_paths(key, n_max):
    """Estimates after the first n observations, n = 1..n_max on a log grid, under priors centred on the wrong
    value: Bernoulli(0.3) data with a Beta(8, 2) prior (mode 7/8, worth 8 flips), N(2, 1) data with known σ = 1
    and a N(-1, 0.5²) prior (worth 4 observations)."""
    k1, k2 = jax.random.split(key)
    ns = np.unique(np.round(np.logspace(0, np.log10(n_max), 40)).astype(int))
    xs = P.gaussian.sample(k2, 2.0, 1.0, (n_max,))
    flips = P.bernoulli.sample(k1, 0.3, (n_max,)).astype(xs.dtype)

    @jax.jit
    def at(n):
        take = jnp.arange(n_max, dtype=n.dtype) < n  # the first n draws as a mask: one program for every n
        f = jnp.where(take, flips, 0.0)
        a, b = 8.0 + jnp.sum(f), 2.0 + n - jnp.sum(f)
        lo, hi = P.beta_credible_interval(a, b, 0.95)
        coin = jnp.stack([jnp.sum(f) / n, (a - 1) / (a + b - 2), P.beta.mean(a, b), lo, hi])
        x = jnp.where(take, xs, 0.0)
        prec = 1 / 0.5**2 + n  # posterior precision with σ = 1
        mu_n = (-1.0 / 0.5**2 + jnp.sum(x)) / prec
        glo, ghi = P.gaussian_credible_interval(mu_n, 1 / jnp.sqrt(prec), 0.95)
        gauss = jnp.stack([jnp.sum(x) / n, mu_n, mu_n, glo, ghi])
        return coin, gauss

    coin, gauss = (np.stack(c) for c in zip(*[at(jnp.asarray(float(n))) for n in ns], strict=True))
    # the closed forms the figure plots, checked against the library's estimators at n_max
    check = {"map_bernoulli": float(P.map_bernoulli(flips, 8.0, 2.0)), "figure_map_bernoulli": float(coin[-1, 1]),
             "map_gaussian_mean": float(P.map_gaussian_mean(xs, 1.0, -1.0, 0.5)),
             "figure_map_gaussian": float(gauss[-1, 1])}
    return ns, coin, gauss, check


def mle_map_plot(out, ns, coin, gauss):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(1, 2, figsize=(11, 3.8))
    for a, est, truth, prior, title in [
            (ax[0], coin, 0.3, 7 / 8, "coin p: Bernoulli(0.3) data, Beta(8, 2) prior"),
            (ax[1], gauss, 2.0, -1.0, "Gaussian mean: N(2, 1) data (σ known), N(-1, 0.5²) prior")]:
        a.fill_between(ns, est[:, 3], est[:, 4], color="C2", alpha=0.25, label="95% credible interval")
        a.semilogx(ns, est[:, 0], "k.", ms=4, label="MLE")
        a.semilogx(ns, est[:, 1], "C3-", label="MAP (posterior mode)")
        if not np.allclose(est[:, 1], est[:, 2]):
            a.semilogx(ns, est[:, 2], "C0--", label="posterior mean")
        a.axhline(truth, color="k", lw=0.8, label="truth")
        a.axhline(prior, color="C3", lw=0.8, ls=":", label="prior mode")
        a.set(xlabel="n observations", title=title)
        a.legend(fontsize=7)
    ax[1].text(0.98, 0.04, "Gaussian: MAP = posterior mean", transform=ax[1].transAxes, ha="right", fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "ch04_mle_map.png", dpi=90)
    plt.close(fig)


def markov(steps):
    p = jnp.asarray([[0.5, 0.5, 0.0, 0.0], [0.25, 0.5, 0.25, 0.0], [0.0, 0.25, 0.5, 0.25], [0.0, 0.0, 0.5, 0.5]])
    pi_eig, (pi_pow, iters), curve, t_mix = jax.jit(lambda q: (
        P.stationary_distribution(q), P.stationary_power(q), P.mixing_curve(q, steps), P.mixing_time(q, 0.25)))(p)
    curve = np.asarray(curve)
    lam2 = sorted(np.abs(np.linalg.eigvals(np.asarray(p))))[-2]
    return {"pi_eigenvector": np.asarray(pi_eig).tolist(), "pi_power_iteration": np.asarray(pi_pow).tolist(),
            "power_iterations": int(iters), "mixing_time_0.25": int(t_mix),
            "lambda_2": float(lam2)}, curve


def welford_vs_textbook(key, n):
    x = (1e4 + jax.random.normal(key, (n,), jnp.float64)).astype(jnp.float32)
    exact = float(np.var(np.asarray(x, np.float64), ddof=1))
    _, wv = jax.jit(P.welford)(x)
    x32 = np.asarray(x)
    textbook = float((np.mean(x32 * x32) - np.mean(x32) ** 2) * n / (n - 1))
    return {"exact_float64": exact, "welford_float32": float(wv), "textbook_float32": textbook,
            "welford_rel_error": abs(float(wv) / exact - 1), "textbook_rel_error": abs(textbook / exact - 1)}


def plots(out, path, clt_res, draws, dens, curves, losses, curve, lam2):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(1, 3, figsize=(13, 3.6))
    n = np.arange(1, path.shape[1] + 1)
    for row in path:
        ax[0].semilogx(n, row, lw=0.8)
    ax[0].fill_between(n, 0.5 - 0.5 / np.sqrt(n), 0.5 + 0.5 / np.sqrt(n), color="gray", alpha=0.3, label="μ ± σ/√n")
    ax[0].set(ylim=(0, 1), xlabel="n", ylabel="running mean", title="LLN: Exponential(2), μ = 0.5")
    ax[0].legend()
    t = np.linspace(-4, 4, 200)
    for nn, r in clt_res.items():
        ax[1].hist(r["z"], bins=60, range=(-4, 4), density=True, histtype="step", label=f"n={nn} (KS {r['ks']:.3f})")
    ax[1].plot(t, np.exp(-t * t / 2) / math.sqrt(2 * math.pi), "k", lw=2, label="N(0,1)")
    ax[1].set(title="CLT: √n(x̄ - 1), Exponential(1) parent")
    ax[1].legend(fontsize=7)
    g = np.linspace(0.001, 0.999, 300)
    for nn, (a, b) in curves.items():
        ax[2].plot(g, np.exp(np.asarray(P.beta.log_prob(jnp.asarray(g), a, b))), label=f"{nn} flips")
    ax[2].axvline(0.7, color="k", ls=":")
    ax[2].set(xlabel="p", title="Bayes: Beta(2,2) prior, coin with p = 0.7")
    ax[2].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "ch04_lln_clt_bayes.png", dpi=80)
    plt.close(fig)

    fig, ax = plt.subplots(1, 6, figsize=(19, 3.2))
    for i, (name, x) in enumerate(draws.items()):
        if x is None:  # --quick skips the rejection samplers (their compile time)
            ax[i].set(title=f"{name}: not drawn in --quick")
            continue
        if x.dtype.kind == "i":
            ks = np.arange(x.max() + 1)
            ax[i].bar(ks, np.bincount(x) / x.size, color="C0", alpha=0.6, label="samples")
            ax[i].plot(ks, np.asarray(dens[name](jnp.asarray(ks, jnp.float64))), "ko", ms=3, label="pmf")
        else:
            ax[i].hist(x, bins=60, density=True, alpha=0.6, label="samples")
            grid = np.linspace(x.min(), x.max(), 200)
            ax[i].plot(grid, np.asarray(dens[name](jnp.asarray(grid))), "k", label="density")
        ax[i].set(title=name)
        ax[i].legend(fontsize=7)
    ax[4].plot(losses)
    ax[4].set(xlabel="step", ylabel="mean NLL", title="Gaussian MLE by fungpt.grad + Adam")
    ax[5].semilogy(curve, "o-", ms=3, label="max TV to π")
    ax[5].semilogy(curve[1] * lam2 ** (np.arange(curve.size) - 1), "k:", label="|λ₂|^t")
    ax[5].set(xlabel="t", title="Markov chain mixing")
    ax[5].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "ch04_samplers_mle_markov.png", dpi=70)
    plt.close(fig)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer draws, for the smoke test")
    ap.add_argument("--out", default="experiments/out")
    args = ap.parse_args(argv)
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    q = args.quick
    t0 = time.perf_counter()
    keys = jax.random.split(jax.random.key(0), 6)
    path = lln(keys[0], 2_000 if q else 100_000)
    clt_res = clt(keys[1], 2_000 if q else 20_000, (1, 4, 32) if not q else (1, 32))
    draws, dens = samplers(keys[2], 2_000 if q else 50_000, quick=q)
    _, curves = bayes(keys[3], 20 if q else 200)
    est, losses = estimation(keys[4], 50 if q else 500)
    ns, coin, gauss, mm_check = mle_map_paths(keys[4], 300 if q else 10_000)
    mle_map_plot(out, ns, coin, gauss)
    mk, curve = markov(40)
    wf = welford_vs_textbook(keys[5], 4_096 if q else 1_000_000)
    plots(out, path, clt_res, draws, dens, curves, losses, curve, mk["lambda_2"])  # --quick: same figures, fewer draws
    result = {
        "lln_final_means": path[:, -1].tolist(),
        "clt": {n: {k: v for k, v in r.items() if k != "z"} for n, r in clt_res.items()},
        "sampler_mean_var": {k: [float(v.mean()), float(v.var())] for k, v in draws.items()},
        "bayes_posteriors_beta_a_b": curves, "estimation": est,
        "mle_map_at_n_max": {"n": int(ns[-1]), "coin_mle_map_mean_lo_hi": coin[-1].tolist(),
                             "gauss_mle_map_mean_lo_hi": gauss[-1].tolist(), "check": mm_check},
        "markov": mk, "welford": wf,
        "seconds": time.perf_counter() - t0,
    }
    (out / "ch04_probability.json").write_text(json.dumps(result, indent=1))
    print("LLN final running means (expect 0.5):", np.round(path[:, -1], 4).tolist())
    for n, r in result["clt"].items():
        print(f"CLT n={n:3d}: KS to N(0,1) {r['ks']:.4f}, skewness {r['skewness']:.3f}"
              f" (theory {r['skewness_theory']:.3f})")
    print("MLE/MAP:", json.dumps(est))
    print("Markov:", json.dumps(mk))
    print("variance in float32 with offset 1e4:", json.dumps(wf))
    print(f"wrote {out}/ch04_*.png and ch04_probability.json in {result['seconds']:.1f} s")


if __name__ == "__main__":
    main()
