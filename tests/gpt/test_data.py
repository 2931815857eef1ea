"""The data pipeline against independent oracles: hashlib, plain Python slicing, numpy, naive loops."""
import gzip
import hashlib

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fungpt.gpt import data

# From /work/shared/data/README.md: the provenance of the shipped corpus.
CORPUS_SHA256 = "e0aa66b6d2aeb6ddd857c1402b56ef42238cd281cd59f1e8fcd311c84e741f92"


def test_shipped_corpus_is_the_documented_text():
    text = data.load_text()
    assert len(text) == 1_148_333
    assert hashlib.sha256(text.encode()).hexdigest() == CORPUS_SHA256
    assert len(set(text)) == 80


def test_load_file_folder_and_gzip(tmp_path):
    (tmp_path / "b.txt").write_text("second é\n", encoding="utf-8")
    (tmp_path / "a.txt").write_text("first\n", encoding="utf-8")
    (tmp_path / "skip.md").write_text("not text data")
    assert data.load_text(tmp_path / "a.txt") == "first\n"
    assert data.load_text(tmp_path) == "first\n" + "\n\n" + "second é\n"  # sorted by name, .txt only
    (tmp_path / "c.txt.gz").write_bytes(gzip.compress("zipped ü".encode()))
    assert data.load_text(tmp_path / "c.txt.gz") == "zipped ü"


@pytest.mark.parametrize(
    ("content", "error", "match"),
    [
        (None, FileNotFoundError, "does not exist"),
        (b"", ValueError, "empty"),
        (b"ok\xff\xfe", ValueError, "not UTF-8"),
    ],
    ids=["missing", "empty", "latin1"],
)
def test_bad_data_is_refused_clearly(tmp_path, content, error, match):
    path = tmp_path / "data.txt"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(error, match=match):
        data.load_text(path)


def test_folder_without_text_is_refused(tmp_path):
    with pytest.raises(ValueError, match=r"no \.txt files"):
        data.load_text(tmp_path)


@settings(max_examples=25, deadline=None)
@given(st.integers(2, 5000), st.floats(0.01, 0.5))
def test_split_is_positional_like_nanogpt(n, frac):
    ids = np.arange(n, dtype=np.int32)
    train, val = data.split(ids, frac)
    n_train = int(n * (1 - frac))  # nanoGPT: data[:int(n*0.9)], data[int(n*0.9):]
    np.testing.assert_array_equal(train, ids[:n_train])
    np.testing.assert_array_equal(val, ids[n_train:])


@pytest.mark.parametrize("frac", [0.0, 1.0, -0.1])
def test_split_fraction_must_be_inside_unit_interval(frac):
    with pytest.raises(ValueError, match="val_fraction"):
        data.split(np.arange(10), frac)


def test_too_short_data_is_refused():
    data.check_length(np.arange(9), 8)  # exactly one window fits
    with pytest.raises(ValueError, match="need at least 9"):
        data.check_length(np.arange(8), 8, "the validation split")


@pytest.mark.parametrize("jit", [False, True], ids=["eager", "jit"])
def test_batches_are_contiguous_shifted_windows(key, jit):
    n, B, T = 40, 64, 8
    ids = jnp.arange(n, dtype=jnp.int32) * 3 + 1  # distinct values: the window start is recoverable
    get = jax.jit(data.get_batch, static_argnums=(2, 3)) if jit else data.get_batch
    x, y = get(key, ids, B, T)
    chex.assert_shape((x, y), (B, T))
    chex.assert_type((x, y), jnp.int32)
    host = np.asarray(ids)
    for row_x, row_y in zip(np.asarray(x), np.asarray(y), strict=True):
        s = int(np.flatnonzero(host == row_x[0])[0])
        assert 0 <= s <= n - T - 1
        np.testing.assert_array_equal(row_x, host[s : s + T])
        np.testing.assert_array_equal(row_y, host[s + 1 : s + T + 1])


def test_batch_starts_cover_every_window_uniformly(key):
    # 11 possible starts; 22,000 draws: each count ~ Binomial(22000, 1/11), sd ≈ 45, so ±300 is > 6 sd.
    n, T = 19, 8
    x, _ = jax.jit(data.get_batch, static_argnums=(2, 3))(key, jnp.arange(n, dtype=jnp.int32), 22_000, T)
    counts = np.bincount(np.asarray(x[:, 0]), minlength=n)
    assert counts[n - T :].sum() == 0
    assert np.all(np.abs(counts[: n - T] - 2000) < 300), counts


def test_batches_are_a_function_of_the_key(key):
    ids = jnp.arange(1000, dtype=jnp.int32)
    get = jax.jit(data.get_batch, static_argnums=(2, 3))
    a, b = get(key, ids, 4, 16), get(key, ids, 4, 16)
    c = get(jax.random.fold_in(key, 1), ids, 4, 16)
    chex.assert_trees_all_equal(a, b)
    assert not np.array_equal(a[0], c[0])


def test_batches_vmap_over_keys(key):
    ids = jnp.arange(100, dtype=jnp.int32)
    keys = jax.random.split(key, 3)
    xs, ys = jax.jit(jax.vmap(lambda k: data.get_batch(k, ids, 2, 5)))(keys)
    chex.assert_shape((xs, ys), (3, 2, 5))
    chex.assert_trees_all_equal((xs[2], ys[2]), data.get_batch(keys[2], ids, 2, 5))
