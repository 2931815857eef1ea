"""Chapter 10: the Gibbs phenomenon, our FFT against jnp.fft (accuracy and speed), and denoising a signal
with frequency-domain filters.

    .venv/bin/python experiments/ch10_fourier.py [--quick] [--out experiments/out]

Writes ch10_gibbs.png, ch10_fft_bench.png, ch10_denoise.png and ch10_fourier.json to --out.
Timings: median over repeats of the jitted transform, both sides in this process.

On an accelerator: the Gibbs overshoot and the filters do not change; the FFT timings become the accelerator's
(our FFT against jnp.fft, which calls the vendor's FFT there), and the accuracy column reflects its float32
arithmetic.
"""
import argparse
import json
import pathlib
import platform
import time

import jax
import jax.numpy as jnp
import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from fungpt import fourier as F


def square(t):
    return jnp.sign(np.pi - t) * (t > 0).astype(t.dtype)


def gibbs(out):
    t = jnp.linspace(-np.pi, np.pi, 2001)
    fig, ax = plt.subplots(figsize=(6, 3.2))
    peaks = {}
    for k in [5, 21, 101]:
        c = F.fourier_coefficients(square, k, n_samples=4096)
        s = np.asarray(F.fourier_series(c, t).real)
        peaks[k] = float(s.max())
        ax.plot(t, s, lw=1, label=f"K = {k} (peak {s.max():.4f})")
    ax.plot(t, np.sign(np.sin(np.asarray(t))), "k", lw=0.8, label="square wave")
    ax.axhline(1.0 + 0.0895 * 2, color="gray", ls=":", lw=0.8)
    ax.set_xlim(-0.6, 0.6)
    ax.set_title("Gibbs: partial sums overshoot by ~9% of the jump for every K")
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(out / "ch10_gibbs.png", dpi=110)
    plt.close(fig)
    return peaks


def _median_time(f, x, repeats):
    f(x).block_until_ready()  # compile
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        f(x).block_until_ready()
        ts.append(time.perf_counter() - t0)
    return float(np.median(ts))


def bench(out, quick):
    sizes = [512, 100] if quick else [64, 256, 1024, 1000, 4096, 10000, 16384, 65536, 100003, 262144]
    repeats = 3 if quick else 30
    rows = []
    rng = np.random.default_rng(0)
    ours, ref = jax.jit(F.fft), jax.jit(jnp.fft.fft)
    for n in sizes:
        x = jnp.asarray((rng.standard_normal((8, n)) + 1j * rng.standard_normal((8, n))).astype(np.complex64))
        err = float(jnp.linalg.norm(ours(x) - ref(x)) / jnp.linalg.norm(ref(x)))
        t_ours, t_ref = _median_time(ours, x, repeats), _median_time(ref, x, repeats)
        rows.append({"n": n, "batch": 8, "ours_ms": 1e3 * t_ours, "jnp_ms": 1e3 * t_ref,
                     "ratio": t_ours / t_ref, "rel_err_f32": err, "pow2": n & (n - 1) == 0})
        print(f"n={n:>7} ours {1e3 * t_ours:8.3f} ms  jnp.fft {1e3 * t_ref:8.3f} ms  "
              f"ratio {t_ours / t_ref:6.2f}  rel err {err:.1e}")
    fig, ax = plt.subplots(figsize=(5, 3.2))
    for pow2, mark in [(True, "o-"), (False, "s--")]:
        r = [row for row in rows if row["pow2"] == pow2]
        if r:
            ns = [q["n"] for q in r]
            ax.loglog(ns, [q["ours_ms"] for q in r], mark, label="ours " + ("radix-2" if pow2 else "Bluestein"))
            ax.loglog(ns, [q["jnp_ms"] for q in r], mark, alpha=0.5, label="jnp.fft " + ("2^k" if pow2 else "other n"))
    ax.set_xlabel("n (batch of 8, complex64)")
    ax.set_ylabel("ms (median, jitted)")
    ax.set_title("FFT time, 2-core CPU")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "ch10_fft_bench.png", dpi=110)
    plt.close(fig)
    return rows


def denoise(out, quick):
    fs, n = 512.0, 1024 if quick else 4096
    t = np.arange(n) / fs
    clean = np.sin(2 * np.pi * 5 * t) + 0.5 * np.sin(2 * np.pi * 12 * t + 1.0)
    noisy = clean + 0.8 * np.random.default_rng(1).standard_normal(n)
    ideal = np.asarray(F.lowpass(noisy, 20.0, fs))
    butter = np.asarray(F.lowpass(noisy, 20.0, fs, order=4))
    snr = lambda y: float(10 * np.log10(np.sum(clean**2) / np.sum((y - clean) ** 2)))
    res = {"snr_noisy_db": snr(noisy), "snr_ideal_lowpass_db": snr(ideal), "snr_butterworth4_db": snr(butter)}
    f, p_noisy = F.periodogram(noisy, fs)
    _, p_clean = F.periodogram(ideal, fs)
    fig, axs = plt.subplots(2, 1, figsize=(6.4, 5))
    m = int(fs)  # first second
    axs[0].plot(t[:m], noisy[:m], color="0.7", lw=0.6, label=f"noisy ({res['snr_noisy_db']:.1f} dB)")
    axs[0].plot(t[:m], ideal[:m], lw=1.2, label=f"ideal low-pass 20 Hz ({res['snr_ideal_lowpass_db']:.1f} dB)")
    axs[0].plot(t[:m], clean[:m], "k--", lw=0.8, label="clean")
    axs[0].set_xlabel("t (s)")
    axs[0].legend(fontsize=7, loc="upper right")
    axs[1].semilogy(f, p_noisy, color="0.6", lw=0.6, label="noisy")
    axs[1].semilogy(f, np.maximum(p_clean, 1e-12), lw=1, label="filtered")
    axs[1].axvline(20.0, color="k", ls=":", lw=0.8)
    axs[1].set_xlim(0, 100)
    axs[1].set_ylim(1e-6, None)
    axs[1].set_xlabel("frequency (Hz)")
    axs[1].set_ylabel("PSD")
    axs[1].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "ch10_denoise.png", dpi=110)
    plt.close(fig)
    print("denoising:", {k: round(v, 2) for k, v in res.items()})
    return res


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small sizes, few repeats (a smoke run)")
    ap.add_argument("--out", default="experiments/out")
    args = ap.parse_args(argv)
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    result = {
        "machine": f"{platform.machine()} {jax.devices()[0].device_kind}, jax {jax.__version__}",
        "quick": args.quick,
        "gibbs_peaks": gibbs(out),
        "gibbs_limit": 1.178979744,  # (2/π)·Si(π)
        "fft_bench": bench(out, args.quick),
        "denoise": denoise(out, args.quick),
    }
    (out / "ch10_fourier.json").write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
