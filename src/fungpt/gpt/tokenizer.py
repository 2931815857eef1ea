"""Tokenizers: text <-> int32 token ids.

- `CharTokenizer`: one id per distinct character of a training text (nanoGPT's shakespeare_char).
- `BPETokenizer`: byte-level byte-pair encoding (Sennrich et al. 2016; GPT-2's byte-level variant).
  Text is pre-split by a GPT-2-style regex into words, numbers, punctuation runs and spaces; each piece
  is UTF-8 bytes (ids 0..255, so any string is representable and the round trip is exact, even for
  characters never seen in training), and learned merges (a, b) -> ab are applied in the order they
  were learned.  Training repeatedly merges the most frequent adjacent pair (counted over distinct
  pieces weighted by frequency; counts are updated incrementally, so a merge costs time proportional
  to the pieces that contain the pair, not to the corpus).

Both serialize to JSON (`to_dict`/`from_dict`, `save`/`load_tokenizer`); `BPETokenizer.from_gpt2_files`
reads GPT-2's `vocab.json` + `merges.txt`.
"""
from __future__ import annotations

import collections
import dataclasses
import functools
import heapq
import itertools
import json
import pathlib
import re

import numpy as np

# GPT-2's pre-split, with Python `re` classes for \p{L} (letters: [^\W\d_]) and \p{N} (decimal digits: \d);
# the final `[\s\S]` catches what neither covers (e.g. '²'), so every character lands in some piece.
GPT2_SPLIT = (r"""'s|'t|'re|'ve|'m|'ll|'d| ?[^\W\d_]+| ?\d+| ?(?:[^\s\w]|_)+|\s+(?!\S)|\s+|[\s\S]""")


def _check_ids(ids, vocab_size):
    a = np.asarray(ids)
    if a.size and not np.issubdtype(a.dtype, np.integer):
        raise TypeError(f"token ids must be integers, got dtype {a.dtype}")
    a = a.reshape(-1).astype(np.int64)
    bad = (a < 0) | (a >= vocab_size)
    if bad.any():
        raise ValueError(f"token ids must lie in [0, vocab_size={vocab_size}); got {a[bad][:5].tolist()}")
    return a


@dataclasses.dataclass(frozen=True)
class CharTokenizer:
    """Character-level tokenizer: id i <-> chars[i] (chars sorted).

    >>> tok = CharTokenizer.from_text("hello")
    >>> tok.decode(tok.encode("hole"))
    'hole'
    """

    chars: str

    def __post_init__(self):
        if len(set(self.chars)) != len(self.chars) or not self.chars:
            raise ValueError("CharTokenizer.chars must be a non-empty string of distinct characters")

    @classmethod
    def from_text(cls, text: str) -> CharTokenizer:
        if not isinstance(text, str) or not text:
            raise ValueError("CharTokenizer.from_text needs a non-empty str")
        return cls("".join(sorted(set(text))))

    @property
    def vocab_size(self) -> int:
        return len(self.chars)

    @functools.cached_property
    def _index(self):
        return {c: i for i, c in enumerate(self.chars)}

    def encode(self, text: str) -> np.ndarray:
        """text -> int32 (len(text),); characters outside the vocabulary raise ValueError naming them."""
        if not isinstance(text, str):
            raise TypeError(f"encode expects a str, got {type(text).__name__}")
        idx = self._index
        unknown = sorted(set(text) - idx.keys())
        if unknown:
            raise ValueError(f"characters not in the vocabulary: {unknown[:10]!r}"
                             f"{' ...' if len(unknown) > 10 else ''}")
        return np.fromiter((idx[c] for c in text), np.int32, len(text))

    def decode(self, ids) -> str:
        return "".join(self.chars[i] for i in _check_ids(ids, self.vocab_size))

    def to_dict(self) -> dict:
        return {"type": "char", "chars": self.chars}

    @classmethod
    def from_dict(cls, d: dict) -> CharTokenizer:
        return cls(d["chars"])

    def save(self, path):
        pathlib.Path(path).write_text(json.dumps(self.to_dict(), ensure_ascii=False))


@functools.cache
def _byte_alphabet():
    # GPT-2's bytes_to_unicode: printable bytes map to themselves, the other 68 to chr(256 + n), so every
    # token's bytes read as a printable string (used by vocab.json / merges.txt and by our JSON).
    bs = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    cs, n = list(bs), 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    to_str = {b: chr(c) for b, c in zip(bs, cs, strict=True)}
    return to_str, {v: k for k, v in to_str.items()}


def _bytes_to_str(b: bytes) -> str:
    to_str, _ = _byte_alphabet()
    return "".join(to_str[x] for x in b)


def _str_to_bytes(s: str) -> bytes:
    _, to_byte = _byte_alphabet()
    try:
        return bytes(to_byte[c] for c in s)
    except KeyError as e:
        raise ValueError(f"{s!r} is not in GPT-2's byte alphabet") from e


@dataclasses.dataclass(frozen=True)
class BPETokenizer:
    """Byte-level BPE.  vocab[i] is token i's bytes; merges[r] = (a, b) is the merge of rank r (earlier
    merges apply first); pattern is the pre-split regex.

    >>> tok = train_bpe("low lower lowest " * 50, 270)
    >>> tok.decode(tok.encode("lowest flower ☃"))
    'lowest flower ☃'
    """

    vocab: tuple[bytes, ...]
    merges: tuple[tuple[bytes, bytes], ...]
    pattern: str = GPT2_SPLIT

    def __post_init__(self):
        missing = {bytes([b]) for b in range(256)} - set(self.vocab)
        if missing:
            raise ValueError(f"a byte-level vocabulary needs all 256 single bytes; missing {len(missing)}")
        if len(set(self.vocab)) != len(self.vocab):
            raise ValueError("BPETokenizer.vocab has duplicate entries")
        ids = self._ids
        for a, b in self.merges:
            if a not in ids or b not in ids or a + b not in ids:
                raise ValueError(f"merge {(a, b)!r} refers to tokens not in the vocabulary")

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    @functools.cached_property
    def _ids(self):
        return {b: i for i, b in enumerate(self.vocab)}

    @functools.cached_property
    def _ranks(self):
        return {m: r for r, m in enumerate(self.merges)}

    @functools.cached_property
    def _regex(self):
        return re.compile(self.pattern)

    @functools.cached_property
    def _cache(self):
        return {}

    def _bpe(self, piece: bytes) -> list[int]:
        # Repeatedly merge the adjacent pair of lowest rank (GPT-2's `bpe`).
        hit = self._cache.get(piece)
        if hit is not None:
            return hit
        parts, ranks = [bytes([b]) for b in piece], self._ranks
        while len(parts) > 1:
            pairs = [(ranks.get(p, len(ranks)), i) for i, p in enumerate(itertools.pairwise(parts))]
            r, _ = min(pairs)
            if r == len(ranks):
                break
            a, b = self.merges[r]
            out, i = [], 0
            while i < len(parts):
                if i + 1 < len(parts) and parts[i] == a and parts[i + 1] == b:
                    out.append(a + b)
                    i += 2
                else:
                    out.append(parts[i])
                    i += 1
            parts = out
        ids = [self._ids[p] for p in parts]
        if len(self._cache) < 200_000:
            self._cache[piece] = ids
        return ids

    def encode(self, text: str) -> np.ndarray:
        """text -> int32 token ids; every str is encodable (bytes are the fallback)."""
        if not isinstance(text, str):
            raise TypeError(f"encode expects a str, got {type(text).__name__}")
        out = []
        for piece in self._regex.findall(text):
            out.extend(self._bpe(piece.encode("utf-8")))
        return np.asarray(out, np.int32)

    def decode(self, ids, errors="replace") -> str:
        """ids -> text.  Any id sequence decodes (invalid UTF-8 from a sampled sequence becomes U+FFFD
        with errors="replace"; pass "strict" to raise)."""
        return b"".join(self.vocab[i] for i in _check_ids(ids, self.vocab_size)).decode("utf-8", errors)

    def to_dict(self) -> dict:
        return {"type": "bpe", "pattern": self.pattern, "vocab": [_bytes_to_str(b) for b in self.vocab],
                "merges": [f"{_bytes_to_str(a)} {_bytes_to_str(b)}" for a, b in self.merges]}

    @classmethod
    def from_dict(cls, d: dict) -> BPETokenizer:
        return cls(tuple(_str_to_bytes(s) for s in d["vocab"]),
                   tuple(tuple(_str_to_bytes(x) for x in m.split(" ")) for m in d["merges"]),
                   d.get("pattern", GPT2_SPLIT))

    def save(self, path):
        pathlib.Path(path).write_text(json.dumps(self.to_dict(), ensure_ascii=False))

    def to_gpt2_files(self, directory) -> tuple[pathlib.Path, pathlib.Path]:
        """Write GPT-2's `vocab.json` + `merges.txt` (readable by `transformers.GPT2Tokenizer`)."""
        d = pathlib.Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        table = {_bytes_to_str(b): i for i, b in enumerate(self.vocab)}
        (d / "vocab.json").write_text(json.dumps(table, ensure_ascii=False), encoding="utf-8")
        lines = ["#version: 0.2", *(f"{_bytes_to_str(a)} {_bytes_to_str(b)}" for a, b in self.merges)]
        (d / "merges.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
        return d / "vocab.json", d / "merges.txt"

    @classmethod
    def from_gpt2_files(cls, vocab_json, merges_txt, pattern: str = GPT2_SPLIT) -> BPETokenizer:
        """Read GPT-2's `vocab.json` (token string -> id) and `merges.txt` ("#version" line, then "a b"
        per rank).  Special tokens such as <|endoftext|> keep their id; their bytes are the literal text
        (it is never produced by encode).  Our pre-split approximates \\p{L}/\\p{N} with Python's classes,
        so rare scripts may split differently from GPT-2's; ids always decode the same."""
        table = json.loads(pathlib.Path(vocab_json).read_text(encoding="utf-8"))
        vocab = [b""] * len(table)
        for s, i in table.items():
            if not 0 <= i < len(table):
                raise ValueError(f"vocab.json ids must be 0..{len(table) - 1}, got {i} for {s!r}")
            try:
                vocab[i] = _str_to_bytes(s)
            except ValueError:
                vocab[i] = s.encode("utf-8")  # a special token such as <|endoftext|>
        lines = pathlib.Path(merges_txt).read_text(encoding="utf-8").splitlines()
        merges = tuple(tuple(_str_to_bytes(x) for x in ln.split(" ")) for ln in lines
                       if ln and not ln.startswith("#version"))
        return cls(tuple(vocab), merges, pattern)


def train_bpe(text: str, vocab_size: int, pattern: str = GPT2_SPLIT) -> BPETokenizer:
    """Learn vocab_size - 256 merges from text: repeatedly merge the most frequent adjacent pair of
    tokens inside the pre-split pieces (ties: the smallest pair of ids).  Stops early when no pair
    occurs twice.  Cost: O(total piece length) to count, then per merge O(pieces containing the pair)."""
    if not isinstance(text, str):
        raise TypeError(f"train_bpe expects a str, got {type(text).__name__}")
    if isinstance(vocab_size, bool) or not isinstance(vocab_size, int) or vocab_size < 256:
        raise ValueError(f"vocab_size must be an int >= 256 (the byte alphabet), got {vocab_size!r}")
    counts = collections.Counter(re.findall(pattern, text))
    words = [list(w.encode("utf-8")) for w in counts]
    freq = list(counts.values())
    pair_count = collections.defaultdict(int)
    where = collections.defaultdict(set)  # pair -> indices of words that contain it
    for wi, w in enumerate(words):
        for p in itertools.pairwise(w):
            pair_count[p] += freq[wi]
            where[p].add(wi)
    heap = [(-c, p) for p, c in pair_count.items()]
    heapq.heapify(heap)
    vocab = [bytes([b]) for b in range(256)]
    merges = []
    while len(vocab) < vocab_size and heap:
        negc, pair = heapq.heappop(heap)
        if pair_count.get(pair, 0) != -negc:
            continue  # stale heap entry: its count changed after it was pushed
        if -negc < 2:
            break
        new = len(vocab)
        vocab.append(vocab[pair[0]] + vocab[pair[1]])
        merges.append((vocab[pair[0]], vocab[pair[1]]))
        changed = set()
        for wi in where.pop(pair):
            w, f = words[wi], freq[wi]
            for p in itertools.pairwise(w):
                pair_count[p] -= f
                changed.add(p)
            out, i = [], 0
            while i < len(w):
                if i + 1 < len(w) and w[i] == pair[0] and w[i + 1] == pair[1]:
                    out.append(new)
                    i += 2
                else:
                    out.append(w[i])
                    i += 1
            words[wi] = out
            for p in itertools.pairwise(out):
                pair_count[p] += f
                where[p].add(wi)
                changed.add(p)
        pair_count.pop(pair, None)
        for p in changed:
            c = pair_count.get(p, 0)
            if c > 0:
                heapq.heappush(heap, (-c, p))
            else:
                pair_count.pop(p, None)
    return BPETokenizer(tuple(vocab), tuple(merges), pattern)


def load_tokenizer(path) -> CharTokenizer | BPETokenizer:
    """Read a tokenizer saved with `.save(path)` (JSON with a "type" field)."""
    d = json.loads(pathlib.Path(path).read_text(encoding="utf-8"))
    kinds = {"char": CharTokenizer, "bpe": BPETokenizer}
    if d.get("type") not in kinds:
        raise ValueError(f"{path}: unknown tokenizer type {d.get('type')!r}; expected one of {sorted(kinds)}")
    return kinds[d["type"]].from_dict(d)
