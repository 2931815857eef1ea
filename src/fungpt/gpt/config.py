"""The configs: GPTConfig (the frozen, hashable description of a GPT-2-style model, a static argument of
jax.jit) and TrainConfig (a training run: the GPTConfig as ``model``, data, optimizer, loop), with presets,
config files and the one merge rule (preset < config file < flags; a resumed run starts from its saved config).
"""
from __future__ import annotations

import dataclasses
import json
import math
import numbers
import pathlib

import jax.numpy as jnp
import numpy as np

from fungpt._names import did_you_mean
from fungpt.gpt.presets import FINETUNE_PRESET, GPT2_PRESETS, NEEDS_INIT_FROM

_ACTIVATIONS = ("gelu_tanh", "gelu")
FLOAT_DTYPES = ("float32", "float64", "bfloat16", "float16")  # what GPTConfig and the HF import accept


@dataclasses.dataclass(frozen=True)
class GPTConfig:
    """Hyperparameters of a decoder-only transformer with GPT-2's layout.

    vocab_size, block_size (maximum context T), n_layer, n_head, n_embd (C; head size C / n_head),
    dropout (probability, used only when `forward(..., train=True)`), bias (biases in linear layers and
    layer norms), activation ("gelu_tanh" = GPT-2's gelu_new, or exact "gelu"), layer_norm_epsilon,
    param_dtype (what `init_params` creates), compute_dtype (dtype of the matrix-product inputs, None =
    param_dtype; products accumulate in the parameter dtype, and softmax, layer norm and the loss always run in at least
    float32, so "bfloat16" is a mixed-precision policy with float32 master weights), scan_unroll (layers
    per iteration of the `lax.scan` over blocks: 1 keeps compile time flat in depth; n_layer inlines them
    all, which lets XLA fuse across layers at the price of compile time growing with depth).

    >>> GPTConfig(vocab_size=80, block_size=64, n_layer=4, n_head=4, n_embd=128).head_size
    32
    """

    vocab_size: int = 50257
    block_size: int = 1024
    n_layer: int = 12
    n_head: int = 12
    n_embd: int = 768
    dropout: float = 0.0
    bias: bool = True
    activation: str = "gelu_tanh"
    layer_norm_epsilon: float = 1e-5
    param_dtype: str = "float32"
    compute_dtype: str | None = None
    scan_unroll: int = 1

    def __post_init__(self):
        # Canonical field values: a config is a jit static argument and is saved as JSON, so equal configs
        # must hash equal and serialize (np.int64(80) -> 80, np.dtype("float32") / jnp.float32 -> "float32").
        for name in ("vocab_size", "block_size", "n_layer", "n_head", "n_embd", "scan_unroll"):
            v = getattr(self, name)
            if isinstance(v, np.integer):
                object.__setattr__(self, name, int(v))
        for name in ("param_dtype", "compute_dtype"):
            v = getattr(self, name)
            if v is not None and not isinstance(v, str):
                try:
                    object.__setattr__(self, name, jnp.dtype(v).name)
                except TypeError:
                    pass  # refused below with the list of known names
        for name in ("vocab_size", "block_size", "n_layer", "n_head", "n_embd"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
                raise ValueError(f"GPTConfig.{name} must be a positive int, got {v!r}")
        if self.n_embd % self.n_head:
            raise ValueError(
                f"GPTConfig.n_embd ({self.n_embd}) must be divisible by n_head ({self.n_head})")
        if not isinstance(self.dropout, (int, float)) or not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"GPTConfig.dropout must be a float in [0, 1), got {self.dropout!r}")
        if not isinstance(self.bias, bool):
            raise TypeError(f"GPTConfig.bias must be a bool, got {self.bias!r}")
        if self.activation not in _ACTIVATIONS:
            raise ValueError(f"GPTConfig.activation must be one of {_ACTIVATIONS}, got {self.activation!r}")
        if isinstance(self.scan_unroll, bool) or not isinstance(self.scan_unroll, int) or self.scan_unroll < 1:
            raise ValueError(f"GPTConfig.scan_unroll must be a positive int, got {self.scan_unroll!r}")
        eps = self.layer_norm_epsilon
        if isinstance(eps, bool) or not isinstance(eps, numbers.Real) or not (eps > 0 and math.isfinite(eps)):
            raise ValueError(f"GPTConfig.layer_norm_epsilon must be a finite float > 0, got {eps!r}")
        object.__setattr__(self, "layer_norm_epsilon", float(eps))
        object.__setattr__(self, "dropout", float(self.dropout))
        for name in ("param_dtype", "compute_dtype"):
            v = getattr(self, name)
            if v not in FLOAT_DTYPES and not (name == "compute_dtype" and v is None):
                raise ValueError(f"GPTConfig.{name} must be one of {FLOAT_DTYPES}, got {v!r}")

    @property
    def head_size(self) -> int:
        return self.n_embd // self.n_head

    @property
    def dtype(self):
        """The parameter dtype as a numpy dtype."""
        return jnp.dtype(self.param_dtype)

    def replace(self, **changes) -> GPTConfig:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> GPTConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ValueError(f"unknown GPTConfig fields {sorted(unknown)}; known: {sorted(names)}")
        return cls(**d)


def baby(vocab_size: int = 80, **overrides) -> GPTConfig:
    """nanoGPT's shakespeare_char "baby" model: 4 layers, 4 heads, 128 dims, block 64 (0.8M params)."""
    kw = dict(vocab_size=vocab_size, block_size=64, n_layer=4, n_head=4, n_embd=128, dropout=0.0)
    return GPTConfig(**{**kw, **overrides})


def small(vocab_size: int = 80, **overrides) -> GPTConfig:
    """nanoGPT's shakespeare_char default: 6 layers, 6 heads, 384 dims, block 256, dropout 0.2."""
    kw = dict(vocab_size=vocab_size, block_size=256, n_layer=6, n_head=6, n_embd=384, dropout=0.2)
    return GPTConfig(**{**kw, **overrides})


def gpt2(**overrides) -> GPTConfig:
    """GPT-2 small (124M): 12 layers, 12 heads, 768 dims, block 1024, vocab 50257."""
    return GPTConfig(**overrides)


# --- the training run's configuration --------------------------------------------------------------

_TRAIN_DTYPES = (None, "float32", "bfloat16")  # compute dtypes a run may use (master weights stay float32)
_GRADS = ("fungpt", "jax")
_TOKENIZERS = ("char", "bpe")
# Flat keys of older config files and checkpoints, and their place in the nested config.
_ALIASES = {"dtype": "compute_dtype"}
# Model fields a resumed run must keep: they fix the parameters' shapes or what the parameters mean.
MODEL_FIELDS = ("n_layer", "n_head", "n_embd", "block_size", "bias", "vocab_size", "activation",
                "layer_norm_epsilon", "param_dtype")


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Everything a run needs; the defaults are the ``baby`` preset with nanoGPT's shakespeare_char settings.

    model: the `GPTConfig` (layers, heads, width, block_size T, dropout, bias, activation, layer_norm_epsilon,
    compute_dtype: None/"float32" or "bfloat16" matrix products with f32 accumulation and f32 master weights,
    scan_unroll). Its vocab_size is the vocabulary to train with tokenizer "bpe"; with "char" the text's
    alphabet sets it (`model_config`). Data: data (None = the shipped corpus, or a UTF-8 file / folder of
    .txt), tokenizer, val_fraction. Optimisation: batch_size (B, per micro-batch), grad_accum (A), max_iters,
    AdamW (learning_rate peak, min_lr, warmup_iters, lr_decay_iters, beta1, beta2, weight_decay on ≥2-D
    params), grad_clip (global norm). Run: eval_interval/eval_iters (val loss = mean over eval_iters
    batches), ckpt_interval, log_interval, seed, grad ("fungpt" or "jax"), out_dir, sample_tokens.
    init_from: a Hugging Face GPT-2 folder or a fungpt run folder whose weights and tokenizer a new run starts
    from (`fungpt.gpt.finetune.init_from`; the model's shape fields then come from it).
    Config files and flags may also name the model's fields flat (``n_layer = 6``, ``dtype``).
    """

    model: GPTConfig = GPTConfig(vocab_size=512, block_size=64, n_layer=4, n_head=4, n_embd=128, scan_unroll=4)
    data: str | None = None
    tokenizer: str = "char"
    val_fraction: float = 0.1
    batch_size: int = 12
    grad_accum: int = 1
    max_iters: int = 2000
    learning_rate: float = 1e-3
    min_lr: float = 1e-4
    warmup_iters: int = 100
    lr_decay_iters: int = 2000
    beta1: float = 0.9
    beta2: float = 0.99
    weight_decay: float = 0.1
    grad_clip: float = 1.0
    eval_interval: int = 250
    eval_iters: int = 20
    ckpt_interval: int = 1000
    log_interval: int = 10
    seed: int = 1337
    grad: str = "fungpt"
    out_dir: str = "runs/baby"
    sample_tokens: int = 300
    init_from: str | None = None

    def __post_init__(self):
        if isinstance(self.model, dict):
            object.__setattr__(self, "model", GPTConfig.from_dict(self.model))
        if not isinstance(self.model, GPTConfig):
            raise TypeError(f"TrainConfig.model must be a GPTConfig, got {self.model!r}")
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            want = {"int": int, "float": (int, float), "bool": bool, "str": str}.get(str(f.type))
            if want is not None and (not isinstance(v, want) or (want is not bool and isinstance(v, bool))):
                raise TypeError(f"TrainConfig.{f.name} must be {f.type}, got {v!r}")
        for name in ("batch_size", "grad_accum", "max_iters", "eval_interval", "eval_iters", "ckpt_interval",
                     "log_interval", "lr_decay_iters"):
            if getattr(self, name) <= 0:
                raise ValueError(f"TrainConfig.{name} must be > 0, got {getattr(self, name)}")
        for name in ("warmup_iters", "sample_tokens", "seed"):
            if getattr(self, name) < 0:
                raise ValueError(f"TrainConfig.{name} must be >= 0, got {getattr(self, name)}")
        if self.lr_decay_iters <= self.warmup_iters:
            raise ValueError(f"lr_decay_iters ({self.lr_decay_iters}) must exceed warmup_iters ({self.warmup_iters})")
        # The optimizer's floats, checked here so a bad value is refused before the data is read (a
        # negative or NaN learning rate would otherwise train, ascending or stopping at step 2).
        if not 0.0 < self.learning_rate < math.inf:
            raise ValueError(f"learning_rate must be a finite number > 0, got {self.learning_rate}")
        if not 0.0 <= self.min_lr < math.inf:  # min_lr <= learning_rate is checked by train()
            raise ValueError(f"min_lr must be a finite number >= 0, got {self.min_lr}")
        for name in ("beta1", "beta2"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {getattr(self, name)}")
        if not 0.0 <= self.weight_decay < math.inf:
            raise ValueError(f"weight_decay must be a finite number >= 0, got {self.weight_decay}")
        if not 0.0 < self.grad_clip < math.inf:
            raise ValueError(f"grad_clip must be a finite number > 0 (the global-norm bound), got {self.grad_clip}")
        if not 0.0 < self.val_fraction < 1.0:
            raise ValueError(f"val_fraction must be in (0, 1), got {self.val_fraction}")
        for name, allowed in (("grad", _GRADS), ("tokenizer", _TOKENIZERS)):
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {allowed}, got {getattr(self, name)!r}")
        if self.model.compute_dtype not in _TRAIN_DTYPES:
            raise ValueError(f"dtype (the model's compute_dtype) must be one of {_TRAIN_DTYPES[1:]} for training, "
                             f"got {self.model.compute_dtype!r}")
        if self.model.param_dtype != "float32":
            raise ValueError(f"param_dtype must be 'float32' for training (the master weights), "
                             f"got {self.model.param_dtype!r}")
        if self.tokenizer == "bpe" and self.model.vocab_size < 256:
            raise ValueError(f"vocab_size must be >= 256 for the bpe tokenizer (the byte alphabet), "
                             f"got {self.model.vocab_size}")

    def model_config(self, vocab_size: int) -> GPTConfig:
        """The GPTConfig trained: ``model`` with the tokenizer's vocabulary size."""
        return self.model.replace(vocab_size=vocab_size)

    def replace(self, **changes) -> TrainConfig:
        """A copy with ``changes``; the model's fields may be given flat (``n_layer=2``) or as ``model=``."""
        return _merged(self, changes, "replace()")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


_MODEL_NAMES = frozenset(f.name for f in dataclasses.fields(GPTConfig))
_TRAIN_NAMES = frozenset(f.name for f in dataclasses.fields(TrainConfig))

PRESETS: dict[str, TrainConfig] = {
    "baby": TrainConfig(),
    "small": TrainConfig(model=small(512, scan_unroll=6), batch_size=64, max_iters=5000, lr_decay_iters=5000,
                         eval_interval=500, eval_iters=200, out_dir="runs/small"),
}


def _add_presets() -> None:
    # GPT-2 124M / 350M and nanoGPT's finetune_shakespeare (`fungpt.gpt.presets`), over the baby defaults
    for name, fields in {**GPT2_PRESETS, "finetune": FINETUNE_PRESET}.items():
        PRESETS[name] = _merged(TrainConfig(), fields, f"the {name} preset")


def _nested(fields: dict, where: str) -> dict:
    # ``fields`` with flat model keys (and aliases) moved into the ``model`` table; unknown keys refused.
    fields = dict(fields)
    model = fields.pop("model", {})
    if isinstance(model, GPTConfig):
        model = model.to_dict()
    if not isinstance(model, dict):
        raise TypeError(f"{where}: model must be a table of GPTConfig fields, got {model!r}")
    flat = {_ALIASES.get(k, k): fields.pop(k) for k in list(fields) if _ALIASES.get(k, k) in _MODEL_NAMES}
    model = {_ALIASES.get(k, k): v for k, v in model.items()} | flat
    unknown = sorted(set(fields) - _TRAIN_NAMES) + sorted(f"model.{k}" for k in set(model) - _MODEL_NAMES)
    if unknown:
        hint = did_you_mean([u.removeprefix("model.") for u in unknown], _TRAIN_NAMES | _MODEL_NAMES)
        raise ValueError(f"unknown config fields {unknown} in {where}{hint}; known fields: "
                         f"{sorted((_TRAIN_NAMES - {'model'}) | _MODEL_NAMES)}")
    return fields | {"model": model}


def _merged(cfg: TrainConfig, fields: dict, where: str) -> TrainConfig:
    # ``fields`` (flat or nested) layered over ``cfg``; one validation of the result.
    fields = _nested(fields, where)
    model = fields.pop("model")
    n_layer = model.get("n_layer", cfg.model.n_layer)
    if model.get("scan_unroll") == 0:  # the flat format's "all layers"
        model["scan_unroll"] = n_layer
    elif "scan_unroll" not in model and cfg.model.scan_unroll >= cfg.model.n_layer:
        model["scan_unroll"] = n_layer  # a config that unrolled all its layers keeps doing so at a new depth
    return dataclasses.replace(cfg, model=cfg.model.replace(**model), **fields)


_add_presets()


def read_config_file(path: str | pathlib.Path) -> dict:
    """The table of a TOML (Python 3.11+) or JSON config file: TrainConfig fields, model fields flat or nested."""
    path = pathlib.Path(path)
    toml = path.suffix == ".toml"
    if toml:
        try:
            import tomllib
        except ModuleNotFoundError:  # Python 3.10
            raise ValueError(f"reading {path} needs Python 3.11+ (tomllib); use a JSON config file") from None
    try:
        text = path.read_text()
        loaded = tomllib.loads(text) if toml else json.loads(text)
    except FileNotFoundError:
        raise FileNotFoundError(f"config file {path} does not exist") from None
    except ValueError as e:  # TOMLDecodeError and JSONDecodeError are ValueErrors
        raise ValueError(f"config file {path} is not valid {'TOML' if toml else 'JSON'}: {e}") from None
    if not isinstance(loaded, dict):
        raise ValueError(f"config file {path} must hold a table/object of TrainConfig fields")
    return loaded


def config_from(preset: str | TrainConfig = "baby", file: str | pathlib.Path | None = None,
                **overrides) -> TrainConfig:
    """A TrainConfig from a preset (a name or a TrainConfig), then a config file's fields, then keyword
    overrides (later wins). Model fields may be given flat (``n_layer=2``) or as ``model={...}``.
    A preset meant to start from trained weights (``finetune``) is refused without ``init_from``.

    >>> config_from("small", n_layer=2).model.n_layer
    2
    """
    name = preset if isinstance(preset, str) else None
    if isinstance(preset, str):
        if preset not in PRESETS:
            raise ValueError(f"unknown preset {preset!r}; choose one of {sorted(PRESETS)}")
        preset = PRESETS[preset]
    layers = [_nested(read_config_file(file), str(file))] if file is not None else []
    layers.append(_nested(overrides, "the overrides"))
    fields = {k: v for layer in layers for k, v in layer.items()}
    fields["model"] = {k: v for layer in layers for k, v in layer["model"].items()}
    cfg = _merged(preset, fields, "the config")
    if name in NEEDS_INIT_FROM and cfg.init_from is None:
        raise ValueError(f"the {name} preset starts from trained weights: give init_from (--init-from DIR), a GPT-2 "
                         f"folder in the Hugging Face layout or a fungpt run folder")
    return cfg


def config_from_dict(d: dict, where: str = "the config") -> TrainConfig:
    """A TrainConfig from its ``to_dict()`` (nested) or from the flat layout of older checkpoints."""
    if not isinstance(d, dict):
        raise ValueError(f"{where} is not a table of TrainConfig fields: {str(d)[:80]}")
    return _merged(TrainConfig(), d, where)


def flag_fields() -> list[tuple[str, type, object, tuple | None]]:
    """``(name, type, default, choices)`` of every field settable by a flag or a flat config key: the
    TrainConfig fields, then the model's (defaults of the baby preset), then ``dtype`` (= compute_dtype)."""
    kinds = {"int": int, "float": float, "bool": bool}
    choices = {"grad": _GRADS, "tokenizer": _TOKENIZERS, "activation": _ACTIVATIONS,
               "compute_dtype": _TRAIN_DTYPES[1:], "dtype": _TRAIN_DTYPES[1:], "param_dtype": ("float32",)}
    base = PRESETS["baby"]
    out = [(f.name, kinds.get(str(f.type), str), getattr(base, f.name), choices.get(f.name))
           for f in dataclasses.fields(TrainConfig) if f.name != "model"]
    out += [(f.name, kinds.get(str(f.type), str), getattr(base.model, f.name), choices.get(f.name))
            for f in dataclasses.fields(GPTConfig)]
    return [*out, ("dtype", str, None, choices["dtype"])]
