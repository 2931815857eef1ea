"""Starting a run from trained weights (nanoGPT's ``init_from``): a GPT-2 checkpoint in the Hugging Face
layout, or another fungpt run.

    config, params, tok = init_from("path/to/gpt2")    # config.json, model.safetensors, vocab.json, merges.txt
    fields = train_fields(config)                       # the TrainConfig fields that fix the model's shape

Fine-tuning then is ordinary training from ``params`` (nanoGPT's finetune_shakespeare: `FINETUNE_PRESET`,
a constant learning rate of 3e-5 for 20 steps of 32 × 1024 tokens).
"""
from __future__ import annotations

import pathlib
from typing import Any, NamedTuple

from fungpt.gpt import checkpoint as ckpt_lib
from fungpt.gpt.config import GPTConfig
from fungpt.gpt.hf import from_hf
from fungpt.gpt.presets import FINETUNE_PRESET
from fungpt.gpt.run import load_run
from fungpt.gpt.tokenizer import BPETokenizer

__all__ = ["FINETUNE_PRESET", "Init", "init_from", "source_record", "train_fields"]

_HF_FILES = ("config.json", "model.safetensors")
_TOKENIZER_FILES = ("vocab.json", "merges.txt")


class Init(NamedTuple):
    config: GPTConfig
    params: Any
    tokenizer: Any  # BPETokenizer / CharTokenizer, or None (an HF folder without vocab.json + merges.txt)


def _kind(path: pathlib.Path) -> str:
    if all((path / f).is_file() for f in _HF_FILES):
        return "hf"
    if (path / ckpt_lib.LATEST).is_file() or (path / ckpt_lib.META_FILE).is_file():
        return "run"
    raise FileNotFoundError(
        f"{path} is neither a GPT-2 checkpoint in the Hugging Face layout ({', '.join(_HF_FILES + _TOKENIZER_FILES)}) "
        f"nor a fungpt run folder (a '{ckpt_lib.LATEST}' file and checkpoints)")


def init_from(path) -> Init:
    """(GPTConfig, params, tokenizer) to start training from: a Hugging Face GPT-2 folder or a fungpt run.

    HF folder: `fungpt.gpt.from_hf` reads config.json + model.safetensors (float32); vocab.json + merges.txt,
    when present, give GPT-2's byte-level BPE (their vocabulary must fit in the model's: ids < vocab_size).
    Run folder: the parameters and tokenizer of its latest checkpoint (verified).
    """
    path = pathlib.Path(path)
    if not path.is_dir():
        raise FileNotFoundError(f"--init-from {path}: no such folder")
    if _kind(path) == "run":
        run = load_run(path)
        # the model itself; how the new run computes (matmul dtype, layer unroll) is its own choice
        return Init(run.model_config.replace(compute_dtype=None, scan_unroll=1), run.params, run.tokenizer)
    config, params = from_hf(path)
    present = [(path / f).is_file() for f in _TOKENIZER_FILES]
    if any(present) and not all(present):
        missing = [f for f, p in zip(_TOKENIZER_FILES, present, strict=True) if not p]
        raise FileNotFoundError(f"{path}: GPT-2's tokenizer needs vocab.json and merges.txt; {missing[0]} is missing")
    tok = BPETokenizer.from_gpt2_files(path / "vocab.json", path / "merges.txt") if all(present) else None
    if tok is not None and tok.vocab_size > config.vocab_size:
        raise ValueError(f"{path}: the tokenizer has {tok.vocab_size} tokens but the model only "
                         f"{config.vocab_size} embeddings (vocab.json does not belong to model.safetensors?)")
    return Init(config, params, tok)


def train_fields(config: GPTConfig, tokenizer=None) -> dict:
    """The TrainConfig fields that rebuild ``config``'s model: ``n_layer, n_head, n_embd, block_size, bias``, and
    with a tokenizer its kind (and for BPE ``vocab_size``).  Refuses a config that TrainConfig cannot express
    (another activation or layer-norm epsilon than GPT-2's)."""
    default = GPTConfig()
    for name in ("activation", "layer_norm_epsilon"):
        if getattr(config, name) != getattr(default, name):
            raise ValueError(f"the checkpoint's {name}={getattr(config, name)!r} cannot be trained with fungpt train "
                             f"(it builds GPT-2's {name}={getattr(default, name)!r})")
    fields = dict(n_layer=config.n_layer, n_head=config.n_head, n_embd=config.n_embd, block_size=config.block_size,
                  bias=config.bias)
    if isinstance(tokenizer, BPETokenizer):
        fields.update(tokenizer="bpe", vocab_size=config.vocab_size)
    elif tokenizer is not None:
        fields.update(tokenizer="char")
    return fields


def source_record(path) -> dict:
    """What a run folder records about where it started: ``{"init_from": absolute path, "kind": "hf" | "run"}``."""
    path = pathlib.Path(path).resolve()
    return {"init_from": str(path), "kind": _kind(path)}
