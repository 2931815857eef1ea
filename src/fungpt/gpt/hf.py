"""GPT-2 checkpoints in the Hugging Face layout: a directory with config.json + model.safetensors.

Our parameter tree uses GPT-2's own names, so the mapping is mechanical: `transformer.h.{i}.<path>` is
layer i of our stacked `h.<path>`, and `transformer.{wte,wpe,ln_f}` map one to one.  HF's Conv1D stores
weights (in, out), the same layout as ours, so nothing is transposed.  The output layer is tied to wte.

    config, params = from_hf("path/to/gpt2")   # e.g. an `hf download gpt2` directory
    to_hf(params, config, "out_dir")           # loads with GPT2LMHeadModel.from_pretrained("out_dir")
"""
from __future__ import annotations

import json
import os
import pathlib
import tempfile

import jax.numpy as jnp
import numpy as np
from safetensors import SafetensorError
from safetensors.numpy import load_file, save_file

from fungpt.gpt.config import FLOAT_DTYPES, GPTConfig
from fungpt.gpt.model import check_params, param_table, tree_from_paths
from fungpt.gpt.tokenizer import GPT2_SPLIT, BPETokenizer, CharTokenizer

# gelu_fast is x/2 (1 + tanh(√(2/π) x (1 + 0.044715 x²))): the same function as gelu_new.
_ACT = {"gelu_new": "gelu_tanh", "gelu_pytorch_tanh": "gelu_tanh", "gelu_fast": "gelu_tanh", "gelu": "gelu"}


def _hf_table(config):
    # (our path, HF name without "transformer." (layer entries: the part after "h.{i}."), HF tensor shape)
    # from the model's one parameter table; a GPT-2 checkpoint always has biases.
    return [(path, ".".join(path[1:] if path[0] == "h" else path), shape[1:] if path[0] == "h" else shape)
            for path, shape, _ in param_table(config.replace(bias=True))]


def _hf_names(config):
    return {f"h.{i}.{name}" if path[0] == "h" else name: shape
            for path, name, shape in _hf_table(config) for i in (range(config.n_layer) if path[0] == "h" else [0])}


def _config_from_hf(d: dict, param_dtype: str) -> GPTConfig:
    if not isinstance(d, dict):
        raise ValueError(f"config.json must hold a JSON object, got {type(d).__name__}")
    if d.get("model_type", "gpt2") != "gpt2":
        raise ValueError(f"expected a GPT-2 checkpoint (model_type 'gpt2'), got {d.get('model_type')!r}")
    act = d.get("activation_function", "gelu_new")
    if act not in _ACT:
        raise ValueError(f"unsupported activation_function {act!r}; supported: {sorted(_ACT)}")
    if "n_positions" not in d and "max_position_embeddings" in d:
        d = {**d, "n_positions": d["max_position_embeddings"]}
    missing = [k for k in ("vocab_size", "n_positions", "n_layer", "n_head", "n_embd") if k not in d]
    if missing:
        raise ValueError(f"config.json lacks the GPT-2 fields {missing}")
    if d.get("n_inner") not in (None, 4 * d["n_embd"]):
        raise ValueError(f"n_inner={d['n_inner']} is not supported (only 4 * n_embd)")
    if d.get("scale_attn_by_inverse_layer_idx") or d.get("scale_attn_weights") is False:
        raise ValueError("only GPT-2's standard attention scaling 1/sqrt(head_size) is supported")
    return GPTConfig(vocab_size=d["vocab_size"], block_size=d["n_positions"], n_layer=d["n_layer"],
                     n_head=d["n_head"], n_embd=d["n_embd"], dropout=0.0, bias=True, activation=_ACT[act],
                     layer_norm_epsilon=float(d.get("layer_norm_epsilon", 1e-5)), param_dtype=param_dtype)


def from_hf(path, *, param_dtype: str = "float32"):
    """Load a GPT-2 checkpoint directory (config.json + model.safetensors, Hugging Face layout) as
    (GPTConfig, params).  Keys may carry the `transformer.` prefix (save_pretrained) or not (the
    original `gpt2` upload); `lm_head.weight` must equal wte if present (tied embeddings)."""
    if param_dtype not in FLOAT_DTYPES:
        raise ValueError(f"param_dtype must be one of {FLOAT_DTYPES}, got {param_dtype!r}")
    path = pathlib.Path(path)
    for f in ("config.json", "model.safetensors"):
        if not (path / f).is_file():
            raise FileNotFoundError(f"{path} is not a GPT-2 checkpoint directory: {f} is missing")
    try:
        config = _config_from_hf(json.loads((path / "config.json").read_text(encoding="utf-8")), param_dtype)
    except (ValueError, TypeError) as e:  # JSONDecodeError is a ValueError
        raise ValueError(f"{path / 'config.json'}: {e}") from None
    try:
        raw = load_file(path / "model.safetensors")
    except (SafetensorError, ValueError, TypeError) as e:
        raise ValueError(f"{path / 'model.safetensors'} is corrupt or truncated: {e}") from None
    sd = {k.removeprefix("transformer."): v for k, v in raw.items()}
    if "lm_head.weight" in sd and not np.array_equal(sd.pop("lm_head.weight"), sd["wte.weight"]):
        raise ValueError("lm_head.weight differs from wte.weight: untied output layers are not supported")
    sd = {k: v for k, v in sd.items() if not k.endswith((".attn.bias", ".attn.masked_bias"))}  # old buffers
    L = config.n_layer
    want = _hf_names(config)
    if set(sd) != set(want):
        raise ValueError(f"{path}/model.safetensors: missing {sorted(want.keys() - set(sd))[:5]}, "
                         f"unexpected {sorted(set(sd) - want.keys())[:5]}")
    for k in sorted(sd):
        expect, got = want[k], tuple(sd[k].shape)
        if got != expect:
            hint = (" (GPT-2's Conv1D weights are stored (in, out); this one looks like a torch nn.Linear's "
                    "(out, in))" if got == expect[::-1] else "")
            raise ValueError(f"{path}/model.safetensors: {k} has shape {got}, config.json implies {expect}{hint}")
    params = tree_from_paths(
        (p, jnp.asarray(np.stack([sd[f"h.{i}.{name}"] for i in range(L)]) if p[0] == "h" else sd[name],
                        config.dtype))
        for p, name, _ in _hf_table(config))
    check_params(params, config)
    return config, params


def _end_of_text_id(tokenizer, vocab_size: int) -> int | None:
    """The id of GPT-2's <|endoftext|>: its place in a BPE vocabulary, GPT-2's 50256 for a GPT-2-sized model
    without a tokenizer, else None (a char vocabulary has no such token)."""
    vocab = getattr(tokenizer, "vocab", None)
    if isinstance(vocab, tuple) and b"<|endoftext|>" in vocab:
        return vocab.index(b"<|endoftext|>")
    return 50256 if tokenizer is None and vocab_size == 50257 else None


def to_hf(params, config: GPTConfig, path, tokenizer=None) -> pathlib.Path:
    """Write params as a GPT-2 checkpoint directory that `transformers.GPT2LMHeadModel.from_pretrained`
    loads: config.json + model.safetensors (float32, keys `transformer.*`, tied lm_head omitted).
    Models without biases get zero biases (the same function).  The write is atomic per file.

    With a tokenizer, its files go beside the weights: a `BPETokenizer` (GPT-2's split pattern) as GPT-2's
    vocab.json + merges.txt, which `transformers.GPT2TokenizerFast.from_pretrained(path)` reads; a
    `CharTokenizer` as fungpt_tokenizer.json (its characters, id i = character i), with a README.md
    saying how to load it.  Returns path."""
    if config.dropout:
        config = config.replace(dropout=0.0)  # a saved model has no training-time state
    check_params(params, config)
    if tokenizer is not None and not isinstance(tokenizer, (BPETokenizer, CharTokenizer)):
        raise TypeError(f"tokenizer must be a BPETokenizer or CharTokenizer, got {type(tokenizer).__name__}")
    if tokenizer is not None and tokenizer.vocab_size > config.vocab_size:
        raise ValueError(f"the tokenizer has {tokenizer.vocab_size} tokens, more than the model's "
                         f"vocab_size={config.vocab_size}")
    if isinstance(tokenizer, BPETokenizer) and tokenizer.pattern != GPT2_SPLIT:
        raise ValueError("transformers' GPT-2 tokenizer splits text with GPT-2's pattern; this BPETokenizer uses "
                         "another one, so its ids would differ")
    path = pathlib.Path(path)
    path.mkdir(parents=True, exist_ok=True)
    sd = {}
    for p, name, shape in _hf_table(config):
        node = params
        for k in p:
            node = node.get(k) if isinstance(node, dict) else None
        a = np.zeros(((config.n_layer,) if p[0] == "h" else ()) + shape, np.float32) if node is None else \
            np.asarray(node, np.float32)
        if p[0] == "h":
            sd.update({f"transformer.h.{i}.{name}": np.ascontiguousarray(a[i]) for i in range(config.n_layer)})
        else:
            sd[f"transformer.{name}"] = a
    hf_config = {
        "architectures": ["GPT2LMHeadModel"], "model_type": "gpt2", "vocab_size": config.vocab_size,
        "n_positions": config.block_size, "n_ctx": config.block_size, "n_embd": config.n_embd,
        "n_layer": config.n_layer, "n_head": config.n_head, "n_inner": None,
        "activation_function": {"gelu_tanh": "gelu_new", "gelu": "gelu"}[config.activation],
        "layer_norm_epsilon": config.layer_norm_epsilon, "resid_pdrop": 0.0, "embd_pdrop": 0.0,
        "attn_pdrop": 0.0, "initializer_range": 0.02, "scale_attn_weights": True,
        "tie_word_embeddings": True, "torch_dtype": "float32",
        # GPT2Config's default (50256) would name a token this vocabulary may not have
        "bos_token_id": _end_of_text_id(tokenizer, config.vocab_size),
        "eos_token_id": _end_of_text_id(tokenizer, config.vocab_size),
    }
    _atomic_write(path / "config.json", lambda f: f.write_text(json.dumps(hf_config, indent=2) + "\n"))
    _atomic_write(path / "model.safetensors", lambda f: save_file(sd, str(f), metadata={"format": "pt"}))
    if tokenizer is not None:
        _write_tokenizer(tokenizer, path)
    return path


def _write_tokenizer(tokenizer, path):
    if isinstance(tokenizer, BPETokenizer):
        tokenizer.to_gpt2_files(path)
        how = ("GPT-2 byte-level BPE in vocab.json + merges.txt:\n\n"
               "    transformers.GPT2TokenizerFast.from_pretrained(THIS_FOLDER)\n"
               "    fungpt.gpt.BPETokenizer.from_gpt2_files(THIS_FOLDER / 'vocab.json', THIS_FOLDER / 'merges.txt')\n")
    else:
        tokenizer.save(path / "fungpt_tokenizer.json")
        how = ("character-level: fungpt_tokenizer.json holds the characters, token id i = chars[i]:\n\n"
               "    fungpt.gpt.load_tokenizer(THIS_FOLDER / 'fungpt_tokenizer.json')\n"
               "    # without fungpt: chars = json.load(open('fungpt_tokenizer.json'))['chars']\n"
               "    #                 ids = [chars.index(c) for c in text]; text = ''.join(chars[i] for i in ids)\n")
    readme = ("# A GPT-2 model exported by fungpt\n\n"
              "Weights (config.json + model.safetensors):\n\n"
              "    transformers.GPT2LMHeadModel.from_pretrained(THIS_FOLDER)\n"
              f"\nTokenizer: {how}")
    _atomic_write(path / "README.md", lambda f: f.write_text(readme, encoding="utf-8"))


def _atomic_write(target: pathlib.Path, write):
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    os.close(fd)
    try:
        write(pathlib.Path(tmp))
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
