"""fungpt.gpt: a GPT-2-style model as pure functions (config, model, tokenizers, generation, HF interop)."""
from fungpt.gpt.config import GPTConfig, TrainConfig, baby, config_from, gpt2, small
from fungpt.gpt.generate import filter_logits, generate, generate_text, pad_prompts, sample_logits
from fungpt.gpt.hf import from_hf, to_hf
from fungpt.gpt.model import (
    block,
    check_finite,
    check_params,
    check_tokens,
    embed,
    forward,
    forward_cached,
    init_cache,
    init_params,
    lm_head,
    loss,
    num_params,
    param_table,
    trunk,
)
from fungpt.gpt.run import load_run, sample_text
from fungpt.gpt.tokenizer import BPETokenizer, CharTokenizer, load_tokenizer, train_bpe

__all__ = [
    "BPETokenizer", "CharTokenizer", "GPTConfig", "TrainConfig", "baby", "block", "check_finite", "check_params",
    "check_tokens", "config_from", "embed", "filter_logits", "forward", "forward_cached", "from_hf", "generate",
    "generate_text", "gpt2", "init_cache", "init_params", "lm_head", "load_run", "load_tokenizer", "loss",
    "num_params", "pad_prompts", "param_table", "sample_logits", "sample_text", "small", "to_hf", "train_bpe", "trunk",
]
