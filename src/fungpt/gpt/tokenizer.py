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

# Unicode's numbers that are not decimal digits (categories Nl and No: '²', '½', 'Ⅻ', '①' ...), Unicode 14.
# Python's `re` has no \p{N}: its \w is exactly letters + numbers + '_' and its \d exactly the decimal
# digits (Nd), so \p{L} = [^\W\d_<these>] and \p{N} = [\d<these>].  Without them 'x²' was one "letter"
# piece where GPT-2 splits 'x' | '²'.  (tests/gpt/test_tokenizer.py checks the list against unicodedata.)
_NUMBERS_NOT_DECIMAL = (
    r"\u00b2-\u00b3\u00b9\u00bc-\u00be\u09f4-\u09f9\u0b72-\u0b77\u0bf0-\u0bf2\u0c78-\u0c7e\u0d58-\u0d5e"
    r"\u0d70-\u0d78\u0f2a-\u0f33\u1369-\u137c\u16ee-\u16f0\u17f0-\u17f9\u19da\u2070\u2074-\u2079"
    r"\u2080-\u2089\u2150-\u2182\u2185-\u2189\u2460-\u249b\u24ea-\u24ff\u2776-\u2793\u2cfd\u3007"
    r"\u3021-\u3029\u3038-\u303a\u3192-\u3195\u3220-\u3229\u3248-\u324f\u3251-\u325f\u3280-\u3289"
    r"\u32b1-\u32bf\ua6e6-\ua6ef\ua830-\ua835\U00010107-\U00010133\U00010140-\U00010178"
    r"\U0001018a-\U0001018b\U000102e1-\U000102fb\U00010320-\U00010323\U00010341\U0001034a"
    r"\U000103d1-\U000103d5\U00010858-\U0001085f\U00010879-\U0001087f\U000108a7-\U000108af"
    r"\U000108fb-\U000108ff\U00010916-\U0001091b\U000109bc-\U000109bd\U000109c0-\U000109cf"
    r"\U000109d2-\U000109ff\U00010a40-\U00010a48\U00010a7d-\U00010a7e\U00010a9d-\U00010a9f"
    r"\U00010aeb-\U00010aef\U00010b58-\U00010b5f\U00010b78-\U00010b7f\U00010ba9-\U00010baf"
    r"\U00010cfa-\U00010cff\U00010e60-\U00010e7e\U00010f1d-\U00010f26\U00010f51-\U00010f54"
    r"\U00010fc5-\U00010fcb\U00011052-\U00011065\U000111e1-\U000111f4\U0001173a-\U0001173b"
    r"\U000118ea-\U000118f2\U00011c5a-\U00011c6c\U00011fc0-\U00011fd4\U00012400-\U0001246e"
    r"\U00016b5b-\U00016b61\U00016e80-\U00016e96\U0001d2e0-\U0001d2f3\U0001d360-\U0001d378"
    r"\U0001e8c7-\U0001e8cf\U0001ec71-\U0001ecab\U0001ecad-\U0001ecaf\U0001ecb1-\U0001ecb4"
    r"\U0001ed01-\U0001ed2d\U0001ed2f-\U0001ed3d\U0001f100-\U0001f10c"
)
# GPT-2's pre-split  's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+  in Python `re`
# classes; every character is whitespace, \w or neither, so every character lands in some piece.
GPT2_SPLIT = (r"'s|'t|'re|'ve|'m|'ll|'d| ?[^\W\d_" + _NUMBERS_NOT_DECIMAL + r"]+| ?[\d" + _NUMBERS_NOT_DECIMAL
              + r"]+| ?(?:[^\s\w]|_)+|\s+(?!\S)|\s+")


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
        if not isinstance(d, dict) or not isinstance(d.get("chars"), str):
            raise ValueError(f"a char tokenizer needs {{'chars': str}}, got {str(d)[:80]}")
        return cls(d["chars"])

    def save(self, path):
        _write_json(path, self.to_dict())


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
        out, end = [], 0
        for m in self._regex.finditer(text):
            if m.start() != end:
                break
            end = m.end()
            out.extend(self._bpe(m.group().encode("utf-8")))
        if end != len(text):  # a custom pattern that skips characters would drop them from the ids
            raise ValueError(f"the pre-split pattern does not cover {text[end]!r} at position {end}: "
                             "every character must fall in some match, or the round trip is lost")
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
        if not isinstance(d, dict) or not isinstance(d.get("vocab"), list) or not isinstance(d.get("merges"), list):
            raise ValueError(f"a BPE tokenizer needs lists 'vocab' and 'merges', got {str(d)[:80]}")
        pattern = d.get("pattern", GPT2_SPLIT)
        try:
            re.compile(pattern)
        except (re.error, TypeError) as e:
            raise ValueError(f"BPE tokenizer pattern {str(pattern)[:80]!r} is not a regular expression: {e}") from None
        return cls(tuple(_str_to_bytes(s) for s in d["vocab"]),
                   tuple(_parse_merge(m, f"merge {r}") for r, m in enumerate(d["merges"])), pattern)

    def save(self, path):
        _write_json(path, self.to_dict())

    def to_gpt2_files(self, directory) -> tuple[pathlib.Path, pathlib.Path]:
        """Write GPT-2's `vocab.json` + `merges.txt` (readable by `transformers.GPT2Tokenizer`)."""
        d = pathlib.Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        table = {_bytes_to_str(b): i for i, b in enumerate(self.vocab)}
        _write_json(d / "vocab.json", table)
        lines = ["#version: 0.2", *(f"{_bytes_to_str(a)} {_bytes_to_str(b)}" for a, b in self.merges)]
        (d / "merges.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
        return d / "vocab.json", d / "merges.txt"

    @classmethod
    def from_gpt2_files(cls, vocab_json, merges_txt, pattern: str = GPT2_SPLIT) -> BPETokenizer:
        """Read GPT-2's `vocab.json` (token string -> id) and `merges.txt` ("#version" line, then "a b"
        per rank).  Special tokens such as <|endoftext|> keep their id; their bytes are the literal text
        (it is never produced by encode).  Our pre-split is GPT-2's regex with \\p{L}/\\p{N} spelled in Python's
        `re` classes (same Unicode categories; `re`'s \\s also counts U+001C..U+001F as spaces)."""
        table = _read_json(vocab_json)
        if not isinstance(table, dict):
            raise ValueError(f"{vocab_json}: vocab.json must map token strings to ids, got a {type(table).__name__}")
        vocab = [b""] * len(table)
        for s, i in table.items():
            if isinstance(i, bool) or not isinstance(i, int) or not 0 <= i < len(table):
                raise ValueError(f"{vocab_json}: ids must be 0..{len(table) - 1}, got {i!r} for {s!r}")
            try:
                vocab[i] = _str_to_bytes(s)
            except ValueError:
                vocab[i] = s.encode("utf-8")  # a special token such as <|endoftext|>
        lines = _read_text(merges_txt).splitlines()
        merges = tuple(_parse_merge(ln, f"{merges_txt}: line {n}") for n, ln in enumerate(lines, 1)
                       if ln and not ln.startswith("#version"))
        return cls(tuple(vocab), merges, pattern)


def _parse_merge(line, where) -> tuple[bytes, bytes]:
    parts = line.split(" ") if isinstance(line, str) else None
    if parts is None or len(parts) != 2 or not all(parts):
        raise ValueError(f"{where}: a merge is two tokens separated by one space, got {line!r}")
    try:
        return _str_to_bytes(parts[0]), _str_to_bytes(parts[1])
    except ValueError as e:
        raise ValueError(f"{where}: {e}") from None


def _read_text(path) -> str:
    try:
        return pathlib.Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise FileNotFoundError(f"tokenizer file {path} does not exist") from None
    except UnicodeDecodeError as e:
        raise ValueError(f"tokenizer file {path} is not UTF-8 text (byte {e.start}: {e.reason})") from None


def _read_json(path):
    try:
        return json.loads(_read_text(path))
    except json.JSONDecodeError as e:
        raise ValueError(f"tokenizer file {path} is not valid JSON (truncated or corrupt?): {e}") from None


def _write_json(path, obj):
    # UTF-8 whatever the locale (load reads UTF-8); ensure_ascii=False keeps the characters readable.
    pathlib.Path(path).write_text(json.dumps(obj, ensure_ascii=False), encoding="utf-8")


def train_bpe(text: str, vocab_size: int, pattern: str = GPT2_SPLIT) -> BPETokenizer:
    """Learn vocab_size - 256 merges from text: repeatedly merge the most frequent adjacent pair of
    tokens inside the pre-split pieces (ties: the smallest pair of ids).  Stops early when no pair
    occurs twice.  Cost: O(total piece length) to count, then per merge O(pieces containing the pair)."""
    if not isinstance(text, str):
        raise TypeError(f"train_bpe expects a str, got {type(text).__name__}")
    if isinstance(vocab_size, bool) or not isinstance(vocab_size, int) or vocab_size < 256:
        raise ValueError(f"vocab_size must be an int >= 256 (the byte alphabet), got {vocab_size!r}")
    counts = collections.Counter(m.group() for m in re.finditer(pattern, text))  # whole matches, not groups
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
    d = _read_json(path)
    kinds = {"char": CharTokenizer, "bpe": BPETokenizer}
    kind = d.get("type") if isinstance(d, dict) else None
    if kind not in kinds:
        raise ValueError(f"{path}: unknown tokenizer type {kind!r}; expected one of {sorted(kinds)}")
    try:
        return kinds[kind].from_dict(d)
    except ValueError as e:
        raise ValueError(f"{path}: {e}") from None
