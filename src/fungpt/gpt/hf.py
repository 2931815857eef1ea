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

import jax
import jax.numpy as jnp
import numpy as np
from safetensors import SafetensorError
from safetensors.numpy import load_file, save_file

from fungpt.gpt.config import _FLOATS, GPTConfig

# gelu_fast is x/2 (1 + tanh(√(2/π) x (1 + 0.044715 x²))): the same function as gelu_new.
_ACT = {"gelu_new": "gelu_tanh", "gelu_pytorch_tanh": "gelu_tanh", "gelu_fast": "gelu_tanh", "gelu": "gelu"}
_LAYER_KEYS = ("ln_1.weight", "ln_1.bias", "attn.c_attn.weight", "attn.c_attn.bias", "attn.c_proj.weight",
               "attn.c_proj.bias", "ln_2.weight", "ln_2.bias", "mlp.c_fc.weight", "mlp.c_fc.bias",
               "mlp.c_proj.weight", "mlp.c_proj.bias")


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
    if param_dtype not in _FLOATS:
        raise ValueError(f"param_dtype must be one of {_FLOATS}, got {param_dtype!r}")
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
    want = {"wte.weight", "wpe.weight", "ln_f.weight", "ln_f.bias"} | {
        f"h.{i}.{k}" for i in range(L) for k in _LAYER_KEYS}
    if set(sd) != want:
        raise ValueError(f"{path}/model.safetensors: missing {sorted(want - set(sd))[:5]}, "
                         f"unexpected {sorted(set(sd) - want)[:5]}")
    shapes = _hf_shapes(config)
    for k in sorted(sd):
        expect = shapes[k if not k.startswith("h.") else k.split(".", 2)[2]]
        got = tuple(sd[k].shape)
        if got != expect:
            hint = (" (GPT-2's Conv1D weights are stored (in, out); this one looks like a torch nn.Linear's "
                    "(out, in))" if got == expect[::-1] else "")
            raise ValueError(f"{path}/model.safetensors: {k} has shape {got}, config.json implies {expect}{hint}")
    dt = config.dtype
    params = {"wte": {"weight": sd["wte.weight"]}, "wpe": {"weight": sd["wpe.weight"]},
              "ln_f": {"weight": sd["ln_f.weight"], "bias": sd["ln_f.bias"]}, "h": {}}
    for k in _LAYER_KEYS:
        *parents, leaf = k.split(".")
        node = params["h"]
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = np.stack([sd[f"h.{i}.{k}"] for i in range(L)])  # (L, ...)
    params = jax.tree_util.tree_map(lambda a: jnp.asarray(a, dt), params)
    _check_shapes(params, config)
    return config, params


def _hf_shapes(config) -> dict[str, tuple[int, ...]]:
    # The per-tensor shapes of a GPT-2 checkpoint (layer keys without their "h.{i}." prefix).
    V, S, C = config.vocab_size, config.block_size, config.n_embd
    return {"wte.weight": (V, C), "wpe.weight": (S, C), "ln_f.weight": (C,), "ln_f.bias": (C,),
            "ln_1.weight": (C,), "ln_1.bias": (C,), "ln_2.weight": (C,), "ln_2.bias": (C,),
            "attn.c_attn.weight": (C, 3 * C), "attn.c_attn.bias": (3 * C,), "attn.c_proj.weight": (C, C),
            "attn.c_proj.bias": (C,), "mlp.c_fc.weight": (C, 4 * C), "mlp.c_fc.bias": (4 * C,),
            "mlp.c_proj.weight": (4 * C, C), "mlp.c_proj.bias": (C,)}


def _check_shapes(params, config):
    from fungpt.gpt.model import init_params

    want = jax.eval_shape(lambda: init_params(config, jax.random.key(0)))
    got = jax.tree_util.tree_map(lambda a: a.shape, params)
    if jax.tree_util.tree_map(lambda a: a.shape, want) != got:
        raise ValueError(f"parameter shapes {got} do not match config {config}")


def to_hf(params, config: GPTConfig, path) -> pathlib.Path:
    """Write params as a GPT-2 checkpoint directory that `transformers.GPT2LMHeadModel.from_pretrained`
    loads: config.json + model.safetensors (float32, keys `transformer.*`, tied lm_head omitted).
    Models without biases get zero biases (the same function).  The write is atomic per file."""
    if config.dropout:
        config = config.replace(dropout=0.0)  # a saved model has no training-time state
    _check_shapes(params, config)
    path = pathlib.Path(path)
    path.mkdir(parents=True, exist_ok=True)
    p = jax.tree_util.tree_map(lambda a: np.asarray(a, np.float32), params)
    zeros = lambda n: np.zeros((n,), np.float32)
    C = config.n_embd
    sd = {"transformer.wte.weight": p["wte"]["weight"], "transformer.wpe.weight": p["wpe"]["weight"],
          "transformer.ln_f.weight": p["ln_f"]["weight"],
          "transformer.ln_f.bias": p["ln_f"].get("bias", zeros(C))}
    for k in _LAYER_KEYS:
        *parents, leaf = k.split(".")
        node = p["h"]
        for q in parents:
            node = node[q]
        for i in range(config.n_layer):
            if leaf in node:
                sd[f"transformer.h.{i}.{k}"] = np.ascontiguousarray(node[leaf][i])
            else:
                sd[f"transformer.h.{i}.{k}"] = zeros(node["weight"].shape[-1])
    hf_config = {
        "architectures": ["GPT2LMHeadModel"], "model_type": "gpt2", "vocab_size": config.vocab_size,
        "n_positions": config.block_size, "n_ctx": config.block_size, "n_embd": C,
        "n_layer": config.n_layer, "n_head": config.n_head, "n_inner": None,
        "activation_function": {"gelu_tanh": "gelu_new", "gelu": "gelu"}[config.activation],
        "layer_norm_epsilon": config.layer_norm_epsilon, "resid_pdrop": 0.0, "embd_pdrop": 0.0,
        "attn_pdrop": 0.0, "initializer_range": 0.02, "scale_attn_weights": True,
        "tie_word_embeddings": True, "torch_dtype": "float32",
    }
    _atomic_write(path / "config.json", lambda f: f.write_text(json.dumps(hf_config, indent=2) + "\n"))
    _atomic_write(path / "model.safetensors", lambda f: save_file(sd, str(f), metadata={"format": "pt"}))
    return path


def _atomic_write(target: pathlib.Path, write):
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    os.close(fd)
    try:
        write(pathlib.Path(tmp))
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
