"""The data pipeline: text in, random contiguous (input, target) windows out.

    text --load_text--> str --tokenizer (fungpt.gpt.tokenizer)--> ids (N,) int32 --split--> train (0.9 N,), val (0.1 N,)
    get_batch(key, ids, B, T) -> x, y (B, T) with y[b, t] = ids[s_b + t + 1], s_b ~ U{0, ..., N - T - 1}

Sampling is a pure function of the key, so a run is reproducible from its seed, and it runs inside
the jitted train step (the token array lives on the device; no host round trip per step).
"""
from __future__ import annotations

import gzip
import importlib.resources
import pathlib

import jax
import jax.numpy as jnp
import numpy as np

from fungpt.gpt import tokenizer as tk
from fungpt.gpt.checkpoint import CheckpointError

SHIPPED_CORPUS = "shakespeare_tiny.txt.gz"

__all__ = ["SHIPPED_CORPUS", "check_length", "get_batch", "load_text", "prepare_data", "split", "tokenizer_from_dict"]


def load_text(path: str | pathlib.Path | None = None) -> str:
    """The training text: the shipped corpus (``path=None``), a UTF-8 file, or a folder of ``*.txt``.

    A folder's files are read in sorted name order and joined with a blank line.
    Raises FileNotFoundError for a missing path and ValueError for non-UTF-8 or empty text.
    """
    if path is None:
        raw = importlib.resources.files("fungpt").joinpath("data", SHIPPED_CORPUS).read_bytes()
        return gzip.decompress(raw).decode("utf-8")
    path = pathlib.Path(path)
    if path.is_dir():
        files = sorted(path.glob("*.txt"))
        if not files:
            raise ValueError(f"data folder {path} holds no .txt files; expected UTF-8 text files")
        text = "\n\n".join(_read_utf8(f) for f in files)
    elif path.is_file():
        text = _read_utf8(path)
    else:
        raise FileNotFoundError(f"data path {path} does not exist; expected a UTF-8 text file or folder")
    if not text:
        raise ValueError(f"data {path} is empty; expected some UTF-8 text")
    return text


def _read_utf8(path: pathlib.Path) -> str:
    data = path.read_bytes()
    if path.suffix == ".gz":
        data = gzip.decompress(data)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ValueError(f"data file {path} is not UTF-8 text (byte {e.start}: {e.reason})") from None


def split(ids: np.ndarray, val_fraction: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    """Split by position: the first ``n - floor(n·val_fraction)`` tokens train, the rest validate.

    With ``val_fraction=0.1`` this is nanoGPT's 90/10 split (``n_train = int(0.9 n)``).
    """
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}")
    n_train = int(len(ids) * (1.0 - val_fraction))
    return ids[:n_train], ids[n_train:]


def check_length(ids, block_size: int, name: str = "data") -> None:
    """Raise ValueError unless ``ids`` holds at least one window: ``len(ids) >= block_size + 1``."""
    if len(ids) < block_size + 1:
        raise ValueError(
            f"{name} has {len(ids)} tokens, too few for block_size {block_size}: need at least "
            f"{block_size + 1} (use more text or a smaller --block-size)"
        )


def get_batch(key: jax.Array, ids: jax.Array, batch_size: int, block_size: int) -> tuple[jax.Array, jax.Array]:
    """``batch_size`` random windows of ``ids`` (N,): x, y each (batch_size, block_size), y = x shifted by 1.

    Starts are uniform on {0, ..., N - block_size - 1}, as in nanoGPT. Jit- and vmap-safe.
    """
    n = ids.shape[0]
    if n < block_size + 1:
        raise ValueError(f"ids has {n} tokens, too few for block_size {block_size}: need {block_size + 1}")
    starts = jax.random.randint(key, (batch_size,), 0, n - block_size, dtype=jnp.int32)
    # One (T+1)-window per row, cut into input and shifted target.
    window = jax.vmap(lambda s: jax.lax.dynamic_slice_in_dim(ids, s, block_size + 1))(starts)  # (B, T+1)
    return window[:, :-1], window[:, 1:]


def tokenizer_from_dict(d: dict):
    """A `fungpt.gpt.tokenizer` CharTokenizer or BPETokenizer from its ``to_dict()`` (as in checkpoints)."""
    kinds = {"char": tk.CharTokenizer, "bpe": tk.BPETokenizer}
    if not isinstance(d, dict) or d.get("type") not in kinds:
        raise CheckpointError(f"unknown tokenizer in checkpoint: {str(d)[:80]}")
    return kinds[d["type"]].from_dict(d)


def prepare_data(cfg, tokenizer: dict | None = None):
    """Load, tokenize and split ``cfg.data`` (a TrainConfig's); check both splits hold a window.
    Returns (tokenizer, train ids, val ids).

    ``tokenizer`` (a ``to_dict()`` from a checkpoint) is reused as is; otherwise a char vocabulary is built
    from the text, or a BPE tokenizer of ``cfg.model.vocab_size`` is trained. All checks happen here, before
    anything compiles.
    """
    text = load_text(cfg.data)
    if tokenizer is not None:
        tok = tokenizer_from_dict(tokenizer)
    elif cfg.tokenizer == "char":
        tok = tk.CharTokenizer.from_text(text)
    else:
        tok = tk.train_bpe(text, cfg.model.vocab_size)
    ids = np.asarray(tok.encode(text), np.int32)
    train_ids, val_ids = split(ids, cfg.val_fraction)
    check_length(train_ids, cfg.model.block_size, "the training split")
    check_length(val_ids, cfg.model.block_size, "the validation split")
    return tok, train_ids, val_ids
