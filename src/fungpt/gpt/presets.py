"""Training presets past the toy models: GPT-2 124M / 350M from scratch and nanoGPT's Shakespeare fine-tune.

Each preset is a dict of `TrainConfig` fields, merged into the run presets (``fungpt train --preset gpt2``).
The hyperparameters are nanoGPT's (``train.py`` defaults + ``config/train_gpt2.py`` and
``config/finetune_shakespeare.py``):

    gpt2          12 layers, 12 heads, C = 768,  T = 1024, V = 50257  (124M parameters)
    gpt2-medium   24 layers, 16 heads, C = 1024, T = 1024, V = 50257  (350M parameters)
    AdamW lr 6e-4 → 6e-5 (cosine over 600k steps, 2000 warmup), β = (0.9, 0.95), weight decay 0.1,
    clip 1.0; 491,520 tokens per step: nanoGPT's 12 rows × 5 accumulation steps × 8 GPUs is one global
    batch of B = 96 rows (divisible by 8, 16, 32 data devices) × A = 5 here.
    finetune      lr 3e-5 constant, B = 1 × A = 32 rows of 1024 tokens, 20 steps, eval every 5 (40 batches);
                  the model comes from ``--init-from`` (GPT-2 weights), so no shape fields are set.

Differences from nanoGPT, on purpose: biases on (nanoGPT's from-scratch default is bias=False) so that the
weights keep GPT-2's layout and export to Hugging Face; the vocabulary is GPT-2's 50257, not padded to 50304
(padding would need the model to mask the extra logits).  nanoGPT's bfloat16 autocast is ``dtype="bfloat16"``.
"""
from __future__ import annotations

_NANOGPT_OPT = dict(learning_rate=6e-4, min_lr=6e-5, warmup_iters=2000, max_iters=600_000, lr_decay_iters=600_000,
                    beta1=0.9, beta2=0.95, weight_decay=0.1, grad_clip=1.0, dropout=0.0, bias=True)
_NANOGPT_RUN = dict(batch_size=96, grad_accum=5, block_size=1024, eval_interval=1000, eval_iters=200,
                    log_interval=10, ckpt_interval=1000, dtype="bfloat16", tokenizer="bpe", vocab_size=50257)

GPT2_PRESETS: dict[str, dict] = {
    "gpt2": dict(n_layer=12, n_head=12, n_embd=768, **_NANOGPT_OPT, **_NANOGPT_RUN, out_dir="runs/gpt2"),
    "gpt2-medium": dict(n_layer=24, n_head=16, n_embd=1024, **_NANOGPT_OPT, **_NANOGPT_RUN,
                        out_dir="runs/gpt2-medium"),
}

# Presets that only make sense from trained weights: `config_from` refuses them without init_from.
NEEDS_INIT_FROM = frozenset({"finetune"})

FINETUNE_PRESET: dict = dict(
    batch_size=1, grad_accum=32, max_iters=20, learning_rate=3e-5, min_lr=3e-5, warmup_iters=0, lr_decay_iters=20,
    beta1=0.9, beta2=0.95, weight_decay=0.1, grad_clip=1.0, dropout=0.0, eval_interval=5, eval_iters=40,
    log_interval=1, ckpt_interval=20, out_dir="runs/finetune",
)
