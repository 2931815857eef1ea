"""fungpt.gpt: a GPT-2-style model as pure functions (config, model, tokenizers, generation, HF interop)."""
from fungpt.gpt.config import GPTConfig, TrainConfig, baby, config_from, gpt2, small
from fungpt.gpt.generate import filter_logits, generate, sample_logits
from fungpt.gpt.hf import from_hf, to_hf
from fungpt.gpt.model import (
    check_params,
    check_tokens,
    forward,
    forward_cached,
    init_cache,
    init_params,
    loss,
    num_params,
)
from fungpt.gpt.run import load_run, sample_text
from fungpt.gpt.tokenizer import BPETokenizer, CharTokenizer, load_tokenizer, train_bpe

__all__ = [
    "BPETokenizer", "CharTokenizer", "GPTConfig", "TrainConfig", "baby", "check_params", "check_tokens",
    "config_from", "filter_logits", "forward", "forward_cached", "from_hf", "generate", "gpt2", "init_cache",
    "init_params", "load_run", "load_tokenizer", "loss", "num_params", "sample_logits", "sample_text", "small",
    "to_hf", "train_bpe",
]
