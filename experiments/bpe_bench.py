"""Byte-level BPE training speed and compression on Shakespeare.

    .venv/bin/python experiments/bpe_bench.py [--quick]

Trains `fungpt.gpt.train_bpe` on the first 1,000,000 characters of the shipped corpus to a 1,024-token
vocabulary, then reports training time, encode/decode throughput, and compression (UTF-8 bytes per
token) on the training text and on the held-out rest of the corpus; checks the exact round trip.
The figure: compression against vocabulary size — the first k merges of the one trained tokenizer are the
tokenizer of vocabulary 256 + k, so one training gives the whole curve — on (a sample of) the training text
and on held-out text: each merge saves less than the one before, and the held-out curve falls below the
training one (merges fitted to the training text).  Writes experiments/out/bpe_bench.{json,png}.

On an accelerator: nothing changes: BPE training, encoding and decoding run on the host (Python and NumPy),
not in JAX.
"""
import argparse
import gzip
import json
import pathlib
import time

import fungpt
from fungpt.gpt.tokenizer import BPETokenizer, train_bpe

OUT = pathlib.Path(__file__).parent / "out"
CORPUS = pathlib.Path(fungpt.__file__).parent / "data" / "shakespeare_tiny.txt.gz"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out", type=pathlib.Path, default=OUT, help="folder for the JSON and PNG files")
    args = ap.parse_args(argv)
    text = gzip.decompress(CORPUS.read_bytes()).decode("utf-8")
    n, vocab = (30_000, 300) if args.quick else (1_000_000, 1024)
    train, held = text[:n], text[n:n + (10_000 if args.quick else len(text))]
    t = time.perf_counter()
    tok = train_bpe(train, vocab)
    train_s = time.perf_counter() - t
    res = {"train_chars": len(train), "train_bytes": len(train.encode()), "vocab_size": tok.vocab_size,
           "train_seconds": train_s}
    for name, s in (("train", train), ("held_out", held)):
        tok._cache.clear()  # time encoding from a cold piece cache
        t = time.perf_counter()
        ids = tok.encode(s)
        enc = time.perf_counter() - t
        t = time.perf_counter()
        back = tok.decode(ids, errors="strict")
        dec = time.perf_counter() - t
        assert back == s, "round trip failed"
        res[name] = {"chars": len(s), "tokens": len(ids), "bytes_per_token": len(s.encode()) / len(ids),
                     "encode_MB_s": len(s.encode()) / enc / 1e6, "decode_MB_s": len(s.encode()) / dec / 1e6}
    print(f"trained on {len(train):,} chars to {tok.vocab_size} tokens in {train_s:.2f} s; "
          f"bytes/token: train {res['train']['bytes_per_token']:.3f}, "
          f"held-out {res['held_out']['bytes_per_token']:.3f}; encode {res['held_out']['encode_MB_s']:.2f} MB/s")
    res["curve"] = compression_curve(tok, train[:20_000 if args.quick else 200_000], held[:200_000])
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "bpe_bench.json").write_text(json.dumps(res, indent=1))
    plot(res, args.out / "bpe_bench.png")
    return res


def compression_curve(tok: BPETokenizer, train: str, held: str, points: int = 8) -> dict:
    """UTF-8 bytes per token of ``train`` and ``held`` for the tokenizers of the first k merges of ``tok``."""
    n = len(tok.merges)
    ks = sorted({round(n * i / (points - 1)) for i in range(points)})
    curve = {"vocab_size": [], "train": [], "held_out": []}
    for k in ks:
        # merge r made token 256 + r: the first k merges and the tokens they made are a tokenizer themselves
        sub = BPETokenizer(tok.vocab[:256 + k], tok.merges[:k], tok.pattern)
        curve["vocab_size"].append(256 + k)
        for name, s in (("train", train), ("held_out", held)):
            curve[name].append(len(s.encode()) / len(sub.encode(s)))
    return curve


def plot(res: dict, path: pathlib.Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    c = res["curve"]
    fig, ax = plt.subplots(figsize=(5, 3.2), dpi=100)
    ax.plot(c["vocab_size"], c["train"], "o-", ms=3, label="training text")
    ax.plot(c["vocab_size"], c["held_out"], "s--", ms=3, label="held-out text")
    ax.set(xlabel="vocabulary size (256 bytes + merges)", ylabel="UTF-8 bytes per token",
           title=f"byte-level BPE trained on {res['train_chars']:,} characters")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


if __name__ == "__main__":
    main()
