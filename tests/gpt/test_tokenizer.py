"""Tokenizers: round trips (hypothesis text), BPE merges and encodings against naive reference
implementations written here, GPT-2 files against transformers' GPT2Tokenizer ids (fixture)."""
import collections
import itertools
import json
import pathlib
import re
import unicodedata

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fungpt.gpt import tokenizer as tokenizer_mod
from fungpt.gpt.tokenizer import GPT2_SPLIT, BPETokenizer, CharTokenizer, load_tokenizer, train_bpe

FIX = pathlib.Path(__file__).parent / "fixtures"
CORPUS = (pathlib.Path(__file__).parents[2] / "src" / "fungpt" / "data" / "shakespeare_tiny.txt.gz")


@pytest.fixture(scope="module")
def text():
    import gzip
    return gzip.decompress(CORPUS.read_bytes()).decode("utf-8")[:20_000]


@pytest.fixture(scope="module")
def bpe(text):
    return train_bpe(text, 330)


# --- character level --------------------------------------------------------------------------------

@settings(max_examples=25, deadline=None)
@given(st.text(min_size=1, max_size=60))
def test_char_round_trip(s):
    tok = CharTokenizer.from_text(s)
    ids = tok.encode(s)
    assert ids.dtype == np.int32 and len(ids) == len(s)
    assert tok.decode(ids) == s
    assert [tok.chars[i] for i in ids] == list(s)  # id i is the i-th sorted distinct char
    assert list(tok.chars) == sorted(set(s))


def test_char_errors_name_the_problem(tmp_path):
    tok = CharTokenizer.from_text("abc")
    with pytest.raises(ValueError, match=r"\['x', 'z'\]"):
        tok.encode("abzx")
    with pytest.raises(ValueError, match="vocab_size=3"):
        tok.decode([0, 3])
    tok.save(tmp_path / "t.json")
    assert load_tokenizer(tmp_path / "t.json") == tok


# --- byte-level BPE: references --------------------------------------------------------------------

def naive_train(text, vocab_size):
    # Recount every pair from scratch before each merge; most frequent, ties -> smallest pair.
    words = [list(w.encode()) for w in re.findall(GPT2_SPLIT, text)]
    vocab, merges = [bytes([b]) for b in range(256)], []
    while len(vocab) < vocab_size:
        counts = collections.Counter(p for w in words for p in itertools.pairwise(w))
        if not counts or max(counts.values()) < 2:
            break
        best = min(counts, key=lambda p: (-counts[p], p))
        new = len(vocab)
        vocab.append(vocab[best[0]] + vocab[best[1]])
        merges.append((vocab[best[0]], vocab[best[1]]))
        for k, w in enumerate(words):
            out, i = [], 0
            while i < len(w):
                if w[i:i + 2] == list(best):
                    out.append(new)
                    i += 2
                else:
                    out.append(w[i])
                    i += 1
            words[k] = out
    return vocab, merges


def naive_encode(tok, s):
    # Apply every merge, in rank order, to every piece (equivalent to GPT-2's lowest-rank-first loop).
    ids = {b: i for i, b in enumerate(tok.vocab)}
    out = []
    for piece in re.findall(GPT2_SPLIT, s):
        parts = [bytes([b]) for b in piece.encode()]
        for a, b in tok.merges:
            i, merged = 0, []
            while i < len(parts):
                if i + 1 < len(parts) and parts[i] == a and parts[i + 1] == b:
                    merged.append(a + b)
                    i += 2
                else:
                    merged.append(parts[i])
                    i += 1
            parts = merged
        out += [ids[p] for p in parts]
    return out


def test_merges_match_naive_trainer(text):
    tok = train_bpe(text[:5000], 300)
    vocab, merges = naive_train(text[:5000], 300)
    assert list(tok.vocab) == vocab
    assert list(tok.merges) == merges


def test_encoding_matches_naive_encoder(bpe, text):
    sample = text[10_000:12_000]
    assert bpe.encode(sample).tolist() == naive_encode(bpe, sample)


@settings(max_examples=25, deadline=None)
@given(st.text(max_size=80))
def test_bpe_round_trip_any_unicode(bpe, s):
    ids = bpe.encode(s)
    assert ids.dtype == np.int32
    assert bpe.decode(ids, errors="strict") == s
    assert "".join(re.findall(GPT2_SPLIT, s)) == s  # the pre-split drops nothing


def gpt2_split_reference(s):
    # GPT-2's  's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+  as an explicit
    # scan over Unicode categories (L*, N*), trying the alternatives in order at each position.
    letter = lambda c: unicodedata.category(c)[0] == "L"
    number = lambda c: unicodedata.category(c)[0] == "N"
    other = lambda c: not (c.isspace() or letter(c) or number(c))
    out, i, n = [], 0, len(s)
    while i < n:
        c = next((c for c in ("'s", "'t", "'re", "'ve", "'m", "'ll", "'d") if s.startswith(c, i)), None)
        if c:
            out.append(c)
            i += len(c)
            continue
        start = i + 1 if s[i] == " " else i  # ` ?`: a space (never in the classes) needs a class char after it
        for cls in (letter, number, other):
            k = start
            while k < n and cls(s[k]):
                k += 1
            if k > start:
                break
        else:  # whitespace: the run, less its last char when a non-space follows and the run is longer than 1
            k = i
            while k < n and s[k].isspace():
                k += 1
            if k < n and k - i > 1:
                k -= 1
        out.append(s[i:k])
        i = k
    return out


_SPLIT_ALPHABET = [*"ab Z9٣²³½Ⅻ①_'srtlvemd.,!-\t\n\r\xa0\x00é\u0301日😀", "'s", "'ll", "x²", "  "]


@pytest.mark.parametrize("s, want", [("x²", ["x", "²"]), ("10½ km²", ["10½", " km", "²"]),
                                     ("Ⅻ chapters", ["Ⅻ", " chapters"]), ("a①b", ["a", "①", "b"])])
def test_pre_split_numbers_are_gpt2s(s, want):
    # \p{N} is every number (Nd, Nl, No), not only decimal digits: '²' is no letter
    assert re.findall(GPT2_SPLIT, s) == want == gpt2_split_reference(s)


@settings(max_examples=60, deadline=None)
@given(st.one_of(st.lists(st.sampled_from(_SPLIT_ALPHABET), max_size=30).map("".join), st.text(max_size=40)))
def test_pre_split_matches_gpt2_regex_reference(s):
    assert re.findall(GPT2_SPLIT, s) == gpt2_split_reference(s)


def test_numbers_not_decimal_are_unicodes():
    # The hard-coded class is exactly the Nl and No characters of Unicode 14 (Python 3.11's database);
    # a newer database (Python 3.12+) adds characters, so there the class must be a subset of them.
    everything = "".join(map(chr, range(0x110000)))
    got = re.findall("[" + tokenizer_mod._NUMBERS_NOT_DECIMAL + "]", everything)
    want = [c for c in everything if c.isnumeric() and unicodedata.category(c) in ("Nl", "No")]
    if unicodedata.unidata_version == "14.0.0":
        assert got == want
    else:
        assert set(got) <= set(want) and len(got) > 1000


def test_a_pattern_that_skips_characters_is_refused():
    tok = BPETokenizer(tuple(bytes([b]) for b in range(256)), (), r"\w+")
    assert tok.decode(tok.encode("ab")) == "ab"
    with pytest.raises(ValueError, match=r"does not cover ' ' at position 2"):
        tok.encode("ab cd")  # silently encoding "abcd" would lose the space


def test_bpe_compresses_and_learns_words(bpe, text):
    ids = bpe.encode(text)
    assert len(text.encode()) / len(ids) > 1.4
    assert len(ids) < len(train_bpe(text, 300).encode(text))  # more merges, fewer tokens
    assert bpe.vocab_size == 330
    assert b" the" in bpe.vocab


def test_bpe_json_round_trip(bpe, tmp_path, text):
    bpe.save(tmp_path / "bpe.json")
    again = load_tokenizer(tmp_path / "bpe.json")
    assert again == bpe
    np.testing.assert_array_equal(again.encode(text[:3000]), bpe.encode(text[:3000]))
    assert BPETokenizer.from_dict(bpe.to_dict()) == bpe


# --- GPT-2's files -----------------------------------------------------------------------------------

def test_gpt2_files_match_transformers_ids():
    tok = BPETokenizer.from_gpt2_files(FIX / "tiny_bpe" / "vocab.json", FIX / "tiny_bpe" / "merges.txt")
    expected = json.loads((FIX / "tiny_bpe_ids.json").read_text(encoding="utf-8"))
    for s, ids in expected.items():
        assert tok.encode(s).tolist() == ids, s
        assert tok.decode(ids) == s


def test_gpt2_files_round_trip(bpe, tmp_path):
    again = BPETokenizer.from_gpt2_files(*bpe.to_gpt2_files(tmp_path))
    assert again == bpe


def test_gpt2_special_token_keeps_its_id(tmp_path):
    vocab_json, merges_txt = train_bpe("aaab", 257).to_gpt2_files(tmp_path)
    table = json.loads(vocab_json.read_text())
    (tmp_path / "vocab.json").write_text(json.dumps({**table, "<|endoftext|>": len(table)}))
    tok = BPETokenizer.from_gpt2_files(tmp_path / "vocab.json", merges_txt)
    assert tok.decode([len(table)]) == "<|endoftext|>"
    assert tok.encode("aa").tolist() == [256]


@pytest.mark.parametrize("args, err", [(("abc", 100), ValueError), ((b"abc", 300), TypeError),
                                       (("abc", True), ValueError)])
def test_train_bpe_refuses_bad_input(args, err):
    with pytest.raises(err):
        train_bpe(*args)


def test_bpe_decode_refuses_bad_ids(bpe, tmp_path):
    with pytest.raises(ValueError, match="vocab_size=330"):
        bpe.decode([1, 330])
    (tmp_path / "x.json").write_text('{"type": "sentencepiece"}')
    with pytest.raises(ValueError, match="unknown tokenizer type"):
        load_tokenizer(tmp_path / "x.json")


def test_corrupt_tokenizer_files_name_the_file_and_the_problem(bpe, tmp_path):
    bad = tmp_path / "bad.json"
    for content, match in [("{oops", "not valid JSON"), ("[1, 2]", "unknown tokenizer type"),
                           ('{"type": "char"}', "needs {'chars': str}"),
                           ('{"type": "bpe", "vocab": []}', "lists 'vocab' and 'merges'")]:
        bad.write_text(content)
        with pytest.raises(ValueError, match=match) as e:
            load_tokenizer(bad)
        assert "bad.json" in str(e.value)
    d = bpe.to_dict()
    bad.write_text(json.dumps({**d, "merges": [*d["merges"][:3], "a b c"]}))
    with pytest.raises(ValueError, match="merge 3: a merge is two tokens"):
        load_tokenizer(bad)
    with pytest.raises(FileNotFoundError, match=r"missing\.json"):
        load_tokenizer(tmp_path / "missing.json")
    vocab_json, merges_txt = bpe.to_gpt2_files(tmp_path)
    merges_txt.write_text(merges_txt.read_text() + "bogus\n")
    n = len(merges_txt.read_text().splitlines())
    with pytest.raises(ValueError, match=rf"merges\.txt: line {n}: a merge is two tokens"):
        BPETokenizer.from_gpt2_files(vocab_json, merges_txt)
    vocab_json.write_text('{"a": "0"}')
    with pytest.raises(ValueError, match=r"vocab\.json: ids must be"):
        BPETokenizer.from_gpt2_files(vocab_json, merges_txt)


@pytest.mark.slow
def test_bpe_bench_experiment_quick():
    from test_model import run_experiment

    res = run_experiment("bpe_bench", "--quick")
    assert res["vocab_size"] == 300 and res["held_out"]["bytes_per_token"] > 1.2
