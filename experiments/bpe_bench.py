"""Byte-level BPE training speed and compression on Shakespeare.

    .venv/bin/python experiments/bpe_bench.py [--quick]

Trains `fungpt.gpt.train_bpe` on the first 1,000,000 characters of the shipped corpus to a 1,024-token
vocabulary, then reports training time, encode/decode throughput, and compression (UTF-8 bytes per
token) on the training text and on the held-out rest of the corpus; checks the exact round trip.
Writes experiments/out/bpe_bench.json.

On an accelerator: nothing changes: BPE training, encoding and decoding run on the host (Python and NumPy),
not in JAX.
"""
import argparse
import gzip
import json
import pathlib
import time

import fungpt
from fungpt.gpt.tokenizer import train_bpe

OUT = pathlib.Path(__file__).parent / "out"
CORPUS = pathlib.Path(fungpt.__file__).parent / "data" / "shakespeare_tiny.txt.gz"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
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
    OUT.mkdir(exist_ok=True)
    (OUT / f"bpe_bench{'_quick' if args.quick else ''}.json").write_text(json.dumps(res, indent=1))
    return res


if __name__ == "__main__":
    main()
