"""GPTConfig: the frozen, hashable description of a GPT-2-style model (a static argument of jax.jit)."""
from __future__ import annotations

import dataclasses
import math
import numbers

import jax.numpy as jnp
import numpy as np

_ACTIVATIONS = ("gelu_tanh", "gelu")
_FLOATS = ("float32", "float64", "bfloat16", "float16")


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
            if v not in _FLOATS and not (name == "compute_dtype" and v is None):
                raise ValueError(f"GPTConfig.{name} must be one of {_FLOATS}, got {v!r}")

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
