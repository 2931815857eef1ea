"""Chapter 7, information theory: what a learner should see.

1. Entropy as a coding bound: Bernoulli(p) bits compressed by Huffman codes on blocks of k = 1, 2, 4, 8 bits
   (encoded, decoded, checked): the measured bits per source bit approach the binary entropy H(p) from above
   (within 1/k); KL between two Gaussians both ways (it is not symmetric).
2. Mutual information: the histogram estimator against the Gaussian closed form −½ log(1 − ρ²), for several
   sample sizes — the estimator's upward bias shrinks with N.
3. Shakespeare, character by character: entropy H(X_t), conditional entropy H(X_t | X_{t−1}) from the
   joint table (the chain rule checked), and the validation cross-entropy / perplexity of unigram and
   bigram models, scored with the GPT's own loss function (`cross_entropy_from_logits`), next to the
   baby GPT's validation loss from docs/baselines.md.
4. Speed of the GPT's loss: `cross_entropy_from_logits` (and its gradient by fungpt.grad and jax.grad) vs
   the textbook log_softmax + take_along_axis, jitted, medians over interleaved rounds.
5. Perplexity against context length (`strided_perplexity`): bits per character on the validation split of
   unigram and bigram models (flat: they cannot use more history) and of a baby GPT trained here (--gpt-steps
   of the baby preset, default 1000; --quick: a 1-layer model, 5 steps), with sliding windows (stride =
   context/4: every token sees at least 3/4 of the context) and with disjoint windows (stride = context: half
   the context on average).

Run: .venv/bin/python experiments/ch07_information.py [--quick] [--out experiments/out]
Writes ch07_information.json and ch07_entropy_kl.png, ch07_mutual_information.png, ch07_perplexity_context.png.

On an accelerator: the entropies and losses do not change beyond float32 rounding; the loss-speed timings
become the accelerator's.
"""
from __future__ import annotations

import argparse
import json
import math
import pathlib
import shutil
import statistics
import tempfile
import time

import jax
import jax.numpy as jnp
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

import fungpt
from fungpt import information as info
from fungpt.gpt import data as gpt_data
from fungpt.gpt import model as gpt_model
from fungpt.gpt import train as gpt_train

BABY_GPT_VAL_LOSS = 1.9443  # nats/char, nanoGPT baby config after 2,000 iters (docs/baselines.md)


@jax.jit
def _entropy_and_kl(p, covs):
    one, zero = jnp.ones((1, 1), covs.dtype), jnp.zeros(1, covs.dtype)
    forward = jax.vmap(info.kl_gaussian, in_axes=(None, None, None, 0))(zero, one, zero, covs)  # KL(N(0,1) ‖ N(0,σ²))
    backward = jax.vmap(info.kl_gaussian, in_axes=(None, 0, None, None))(zero, covs, zero, one)
    return info.binary_entropy(p, "bits"), forward, backward


def entropy_and_kl():
    p = np.linspace(0.0, 1.0, 201)
    sigmas = np.linspace(0.3, 3.0, 55)
    hb, forward, backward = map(np.asarray, _entropy_and_kl(jnp.asarray(p), jnp.asarray(sigmas**2)[:, None, None]))
    return p, hb, sigmas, forward, backward


def coding_rates(quick, seed=0):
    """Bits per source bit of Huffman codes on k-bit blocks of Bernoulli(p) bits, measured on a sample."""
    ps = np.linspace(0.02, 0.5, 9 if quick else 25)
    n_bits = 2_048 if quick else 65_536  # a multiple of every k
    rng = np.random.default_rng(seed)
    rates = {k: [] for k in (1, 2, 4, 8)}
    for p in ps:
        bits = (rng.uniform(size=n_bits) < p).astype(np.int64)
        for k, r in rates.items():
            blocks = bits.reshape(-1, k) @ (1 << np.arange(k)[::-1])  # each k-bit block as one symbol
            ones = np.asarray([bin(s).count("1") for s in range(2**k)])
            code = info.huffman_code(p**ones * (1 - p) ** (k - ones))
            encoded = info.huffman_encode(blocks, code)
            assert np.array_equal(info.huffman_decode(encoded, code), blocks)  # a real, lossless code
            r.append(len(encoded) / n_bits)
    return ps, rates


def mutual_information_bias(quick, seed=0):
    rhos = np.linspace(0.0, 0.95, 6 if quick else 12)
    sizes = (500, 5000) if quick else (500, 5_000, 50_000)
    rng = np.random.default_rng(seed)
    est = {}
    f = jax.jit(info.mutual_information_histogram, static_argnums=2)
    for n in sizes:
        vals = []
        for rho in rhos:
            x = rng.standard_normal(n)
            y = rho * x + math.sqrt(1 - rho**2) * rng.standard_normal(n)
            vals.append(float(f(jnp.asarray(x, jnp.float32), jnp.asarray(y, jnp.float32), 16)))
        est[n] = vals
    exact = [-0.5 * math.log(1 - r**2) for r in rhos]
    return rhos, est, exact


@jax.jit
def _table_stats(pxy):
    px, py = info.marginals(pxy)
    return (info.entropy(py, "bits"), info.entropy(px, "bits"), info.joint_entropy(pxy, "bits"),
            info.conditional_entropy(pxy, "bits"), info.mutual_information(pxy, "bits"))


def shakespeare(quick):
    text = gpt_data.load_text()
    if quick:
        text = text[:100_000]
    chars = sorted(set(text))
    lut = np.zeros(256, np.int64)
    lut[[ord(c) for c in chars]] = np.arange(len(chars))
    ids = lut[np.frombuffer(text.encode("ascii"), np.uint8)]  # the corpus is plain ASCII
    V = len(chars)
    cut = int(0.9 * len(ids))
    train, val = ids[:cut], ids[cut:]
    joint = np.zeros((V, V))
    np.add.at(joint, (train[:-1], train[1:]), 1.0)
    H1, Hx, H_joint, H_cond, mi = map(float, _table_stats(jnp.asarray(joint / joint.sum(), jnp.float32)))
    # add-one smoothed models, scored on the validation text by the GPT's loss function (nats)
    uni_logits = jnp.log(jnp.asarray(np.bincount(train, minlength=V) + 1.0, jnp.float32))
    bi_logits = jnp.log(jnp.asarray(joint + 1.0, jnp.float32))
    loss = jax.jit(lambda logits, y: jnp.mean(info.cross_entropy_from_logits(logits, y)))
    val_uni = float(loss(jnp.broadcast_to(uni_logits, (len(val), V)), jnp.asarray(val)))
    val_bi = float(loss(bi_logits[val[:-1]], jnp.asarray(val[1:])))
    return {
        "characters": len(text), "vocab": V,
        "H(X_t) bits": H1, "H(X_t-1, X_t) bits": H_joint, "H(X_t | X_t-1) bits": H_cond,
        "chain rule gap H(X,Y) - H(X) - H(Y|X) bits": H_joint - Hx - H_cond,
        "I(X_t-1; X_t) bits": mi,
        "val loss nats": {"unigram": val_uni, "bigram": val_bi, "baby GPT (baselines.md)": BABY_GPT_VAL_LOSS},
        "val perplexity": {"unigram": float(info.perplexity(val_uni)), "bigram": float(info.perplexity(val_bi)),
                           "baby GPT (baselines.md)": float(info.perplexity(BABY_GPT_VAL_LOSS))},
    }


def _median_ms(fn, args, reps):
    jax.block_until_ready(fn(*args))  # compile outside the timing
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        jax.block_until_ready(fn(*args))
        times.append((time.perf_counter() - t) * 1e3)
    return statistics.median(times)


def loss_benchmark(quick):
    """The GPT's loss and its gradient: `cross_entropy_from_logits` vs the textbook
    −mean(take_along_axis(jax.nn.log_softmax(z), y)), jitted, same process, interleaved."""
    rng = np.random.default_rng(0)
    rows = []
    for N, V in ([(768, 80)] if quick else [(768, 80), (4096, 80), (1024, 50257)]):
        z = jnp.asarray(rng.standard_normal((N, V)), jnp.float32)
        y = jnp.asarray(rng.integers(0, V, N), jnp.int32)
        ours = lambda z, y: jnp.mean(info.cross_entropy_from_logits(z, y))
        ref = lambda z, y: -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(z), y[:, None], axis=1))
        fns = {"ours": jax.jit(ours), "reference": jax.jit(ref),
               "ours, fungpt.grad": jax.jit(fungpt.grad(ours)), "ours, jax.grad": jax.jit(jax.grad(ours)),
               "reference, jax.grad": jax.jit(jax.grad(ref))}
        if quick:  # the smoke test only checks that the timing path runs
            fns = {k: fns[k] for k in ("ours", "reference", "ours, fungpt.grad")}
        assert abs(float(fns["ours"](z, y)) - float(fns["reference"](z, y))) < 1e-4
        reps = 3 if quick else (50 if N * V < 10**6 else 5)
        ms = {k: [] for k in fns}
        for _ in range(1 if quick else 3):  # rounds, so machine noise hits every variant alike
            for k, f in fns.items():
                ms[k].append(_median_ms(f, (z, y), reps))
        rows.append({"N": N, "V": V, **{k + " ms": statistics.median(v) for k, v in ms.items()}})
    return rows


def perplexity_vs_context(quick, steps=1000):
    """Bits/char of unigram, bigram and a freshly trained baby GPT on the validation split, by context length."""
    tiny = dict(n_layer=1, n_head=2, n_embd=16, block_size=16, batch_size=8, max_iters=5, warmup_iters=1,
                lr_decay_iters=5)
    cfg = gpt_train.config_from("baby", **(tiny if quick else dict(max_iters=steps, lr_decay_iters=steps)),
                                eval_interval=10_000, eval_iters=1, ckpt_interval=10_000, sample_tokens=0,
                                out_dir=tempfile.mkdtemp(prefix="ch07_gpt_"))
    res = gpt_train.train(cfg, progress=False, print_fn=None)
    run = gpt_train.load_run(res.run_dir)
    shutil.rmtree(res.run_dir)
    _, train_ids, val_ids = gpt_train.prepare_data(run.config, run.tokenizer.to_dict())
    V, T = run.model_config.vocab_size, run.model_config.block_size
    val = jnp.asarray(val_ids[: 2_000 if quick else 20_000])
    counts = np.zeros((V, V))
    np.add.at(counts, (train_ids[:-1], train_ids[1:]), 1.0)
    uni = jnp.log(jnp.asarray(counts.sum(0) + 1.0, jnp.float32))  # add-one smoothed
    bi = jnp.log(jnp.asarray(counts + 1.0, jnp.float32))
    models = {"unigram": lambda x: jnp.broadcast_to(uni, (*x.shape, V)), "bigram": lambda x: bi[x],
              "GPT": lambda x: gpt_model.forward(run.params, x, run.model_config)}
    contexts = [c for c in (1, 2, 4, 8, 16, 32, 64) if c <= T]
    bits = {name: [] for name in (*models, "GPT, disjoint windows")}
    for c in contexts:
        for name, f in models.items():
            score = info.strided_perplexity(f, val, c, max(1, c // 4), batch_size=64)
            bits[name].append(float(score.nll) / math.log(2))  # a character tokenizer: bits/char = nats/token / ln 2
        score = info.strided_perplexity(models["GPT"], val, c, c, batch_size=64)
        bits["GPT, disjoint windows"].append(float(score.nll) / math.log(2))
    return {"contexts": contexts, "bits_per_char": bits, "gpt_steps": res.step, "val_chars": int(val.shape[0]),
            "block_size": T}


def plot_entropy_kl(curves, coding, path):
    p, hb, sigmas, fwd, bwd = curves
    ps, rates = coding
    fig, ax = plt.subplots(1, 2, figsize=(9, 3.4))
    half = p <= 0.5  # H(p) = H(1 − p): the other half mirrors this one
    ax[0].plot(p[half], hb[half], "k-", label="H(p): the bound")
    for k, r in rates.items():
        ax[0].plot(ps, r, "o--", ms=3, lw=0.8, label=f"Huffman, {k}-bit blocks")
    ax[0].set(xlabel="p = P(1) of the source bits", ylabel="bits per source bit",
              title="Coding Bernoulli(p) bits: H(p) is the limit")
    ax[0].legend(fontsize=7)
    ax[1].plot(sigmas, fwd, label="KL(N(0,1) ‖ N(0,σ²))")
    ax[1].plot(sigmas, bwd, label="KL(N(0,σ²) ‖ N(0,1))")
    ax[1].set(xlabel="σ", ylabel="nats", title="KL is not symmetric", ylim=(0, 3))
    ax[1].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def plot_context(context, path):
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    styles = {"unigram": "k:", "bigram": "k--", "GPT": "o-", "GPT, disjoint windows": "s--"}
    for name, vals in context["bits_per_char"].items():
        label = f"baby GPT, {context['gpt_steps']} steps" + (", disjoint windows" if "disjoint" in name else
                                                            ", sliding (stride c/4)") if "GPT" in name else name
        ax.plot(context["contexts"], vals, styles[name], ms=3, label=label)
    ax.set(xscale="log", xlabel="context length c (characters of history, at most)", ylabel="bits per character",
           title=f"Validation split, {context['val_chars']:,} characters")
    ax.set_xticks(context["contexts"], [str(c) for c in context["contexts"]])
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small sizes, for the smoke test")
    ap.add_argument("--out", default=str(pathlib.Path(__file__).resolve().parent / "out"))
    ap.add_argument("--gpt-steps", type=int, default=1000, help="training steps of the baby GPT (full mode)")
    args = ap.parse_args(argv)
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    p, hb, sigmas, fwd, bwd = entropy_and_kl()
    ps, rates = coding_rates(args.quick)
    rhos, est, exact = mutual_information_bias(args.quick)
    corpus = shakespeare(args.quick)
    bench = loss_benchmark(args.quick)
    context = perplexity_vs_context(args.quick, args.gpt_steps)

    plot_entropy_kl((p, hb, sigmas, fwd, bwd), (ps, rates), out / "ch07_entropy_kl.png")

    fig, ax = plt.subplots(figsize=(5, 3.4))
    ax.plot(rhos, exact, "k-", label="exact −½ log(1−ρ²)")
    for n, vals in est.items():
        ax.plot(rhos, vals, "o--", ms=3, label=f"histogram, N={n:,}")
    ax.set(xlabel="correlation ρ", ylabel="I(X;Y)  [nats]", title="Mutual information: 16×16-bin plug-in")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "ch07_mutual_information.png", dpi=90)
    plt.close(fig)

    plot_context(context, out / "ch07_perplexity_context.png")

    mi = {"rho": rhos.tolist(), "exact": exact, "histogram": {str(k): v for k, v in est.items()}}
    result = {"mutual_information": mi,
              "huffman_bits_per_bit": {"p": ps.tolist(), **{str(k): r for k, r in rates.items()},
                                       "entropy": [float(x) for x in info.binary_entropy(jnp.asarray(ps), "bits")]},
              "kl_gaussian_sigma_2": {"forward": float(np.interp(2.0, sigmas, fwd)),
                                      "backward": float(np.interp(2.0, sigmas, bwd))},
              "shakespeare": corpus, "loss_benchmark": bench, "perplexity_vs_context": context}
    (out / "ch07_information.json").write_text(json.dumps(result, indent=1))
    print(json.dumps({"shakespeare": corpus, "loss_benchmark": bench}, indent=1))
    return result


if __name__ == "__main__":
    main()
