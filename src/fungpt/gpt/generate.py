"""Autoregressive sampling: one jitted `lax.scan` over the new tokens, with a static-shape KV cache.

Within the block, step t feeds only the newest token: its keys/values go into the cache at slot t and
its query attends to slots 0..t, so a step costs O(block_size·C) attention plus one token's dense
layers instead of a forward pass over the whole context.

Past block_size we follow nanoGPT: the context is cropped to the last block_size tokens and positions
restart at 0 for the cropped window.  Every cached key/value then belongs to a different position, so
the cache would have to be rebuilt from scratch at every step: those steps run one full forward pass
over the window (what nanoGPT does at every step) and keep only the last position's logits.
`crop="half"` is the fast alternative: keep the last block_size // 2 tokens, rebuild the cache once,
continue incrementally (the context then varies between block_size // 2 and block_size tokens).
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from fungpt import nn
from fungpt.gpt.config import GPTConfig
from fungpt.gpt.model import _causal, _check_range, _logits, _trunk, check_params, forward_cached, init_cache


def filter_logits(logits, top_k=None, top_p=None):
    """Keep the top-k logits and/or the nucleus (smallest set of largest probabilities with mass >= top_p);
    the rest become finfo.min, so softmax gives them probability 0.  logits (..., V) -> (..., V)."""
    low = jnp.asarray(jnp.finfo(logits.dtype).min, logits.dtype)
    if top_k is not None:
        kth = lax.top_k(logits, top_k)[0][..., -1:]  # (..., 1) the k-th largest
        logits = jnp.where(logits < kth, low, logits)
    if top_p is not None:
        desc = -jnp.sort(-logits, axis=-1)  # (..., V) descending
        p = nn.softmax(desc)
        # keep sorted entry i if the mass strictly before it is < top_p (the first one always stays)
        keep = (jnp.cumsum(p, axis=-1) - p) < jnp.asarray(top_p, p.dtype)
        thresh = jnp.min(jnp.where(keep, desc, jnp.asarray(jnp.inf, desc.dtype)), axis=-1, keepdims=True)
        logits = jnp.where(logits < thresh, low, logits)
    return logits


def sample_logits(logits, key, temperature=1.0, top_k=None, top_p=None):
    """One token per row from softmax(filter(logits) / temperature); argmax when temperature == 0.

    logits (B, V), temperature a (traced) scalar -> int32 (B,)."""
    logits = logits.astype(nn._wide(logits.dtype))
    t = jnp.asarray(temperature, logits.dtype)
    greedy = jnp.argmax(logits, axis=-1).astype(jnp.int32)
    z = filter_logits(logits / jnp.where(t > 0, t, jnp.ones((), t.dtype)), top_k, top_p)
    return jnp.where(t > 0, jax.random.categorical(key, z, axis=-1).astype(jnp.int32), greedy)


def _window_logits(params, buf, n, config):
    # Logits after the first n tokens of buf (B, W >= block_size): the model sees the last
    # min(n, block_size) of them at positions 0.. (nanoGPT's crop).  Causality makes the tokens to the
    # right of position n-1 in the window irrelevant.  Only the last position's logits are needed, so
    # the last block runs its keys/values over the window but its query, projection and MLP for that
    # one position (a fifth fewer FLOPs on the baby model).
    B, S, C, L = buf.shape[0], config.block_size, config.n_embd, config.n_layer
    n = jnp.asarray(n, jnp.int32)
    start = jnp.maximum(n - S, jnp.zeros((), jnp.int32))
    window = lax.dynamic_slice(buf, (jnp.zeros((), jnp.int32), start), (B, S))  # (B, S)
    i = n - start - 1  # the last position inside the window
    h = params["h"]
    if L > 1:
        below = {**params, "h": jax.tree.map(lambda a: a[:-1], h)}
        # Layers unrolled: a scan would slice every layer's weights out of the stack at every step (~10% of
        # a baby-model step); unrolled, the slices are loop-invariant.
        x, _ = _trunk(below, window, config.replace(n_layer=L - 1, scan_unroll=L - 1), _causal(config),
                      final_norm=False)  # (B*S, C)
    else:
        x = (nn.embedding(params["wte"], window) + nn.embedding(params["wpe"], lax.iota(jnp.int32, S))[None]
             ).reshape(B * S, C)
    x = _last_block_at(jax.tree.map(lambda a: a[-1], h), x, i, config, B, S)  # (B, C)
    return _logits(params, nn.layer_norm(params["ln_f"], x, config.layer_norm_epsilon), config)  # (B, V)


def _last_block_at(p, x, i, config, B, S):
    # One pre-LN block (as model._block, without dropout) evaluated at position i only: keys and values
    # for all S positions of x (B*S, C), query/projection/MLP for row i.  -> (B, C)
    c, cd, C, eps = config, config.compute_dtype, config.n_embd, config.layer_norm_epsilon
    cols = lambda lin, a, b: {k: (v[:, a:b] if k == "weight" else v[a:b]) for k, v in lin.items()}
    h = nn.layer_norm(p["ln_1"], x, eps)  # (B*S, C)
    kv = nn.linear(cols(p["attn"]["c_attn"], C, 3 * C), h, cd).reshape(B, S, 2, c.n_head, c.head_size)
    h_i = lax.dynamic_index_in_dim(h.reshape(B, S, C), i, axis=1, keepdims=False)  # (B, C)
    q = nn.linear(cols(p["attn"]["c_attn"], 0, C), h_i, cd).reshape(B, 1, c.n_head, c.head_size)
    mask = (lax.iota(jnp.int32, S) <= i)[None, None, None]  # (1, 1, 1, S): keys 0..i
    y = nn.attention(q, kv[:, :, 0], kv[:, :, 1], mask, cd).reshape(B, C)
    x_i = lax.dynamic_index_in_dim(x.reshape(B, S, C), i, axis=1, keepdims=False) + nn.linear(
        p["attn"]["c_proj"], y, cd)
    return x_i + nn.mlp(p["mlp"], nn.layer_norm(p["ln_2"], x_i, eps), approximate=c.activation == "gelu_tanh",
                        compute_dtype=cd)


@functools.partial(jax.jit, static_argnames=("config", "max_new_tokens", "top_k", "top_p", "use_cache", "crop"))
def _generate(params, prompt, key, temperature, *, config, max_new_tokens, top_k, top_p, use_cache, crop):
    B, T0 = prompt.shape
    S, n_total = config.block_size, T0 + max_new_tokens
    buf = jnp.zeros((B, max(n_total, S)), jnp.int32).at[:, :T0].set(prompt.astype(jnp.int32))
    keys = jax.random.split(key, max_new_tokens)
    ns = T0 + jnp.arange(max_new_tokens, dtype=jnp.int32)
    if crop == "half":
        return _generate_half(params, buf, keys, ns, temperature, config, T0, top_k, top_p)[:, :n_total]
    # steps whose context (prompt + sampled so far + the new token) still fits the block use the cache
    n_inc = min(max(S - T0, 0), max_new_tokens) if use_cache else 0
    cache = init_cache(config, B) if n_inc else None
    if n_inc:
        logits, cache = forward_cached(params, prompt, cache, 0, config)
    else:
        logits = _window_logits(params, buf, T0, config)

    def sample_into(buf, logits, k, n):
        tok = sample_logits(logits, k, temperature, top_k, top_p)  # (B,)
        return lax.dynamic_update_slice(buf, tok[:, None], (jnp.zeros_like(n), n)), tok

    def cached_step(carry, xs):
        buf, cache, logits = carry
        k, n = xs
        buf, tok = sample_into(buf, logits, k, n)
        logits, cache = forward_cached(params, tok[:, None], cache, n, config)
        return (buf, cache, logits), None

    def window_step(carry, xs):
        buf, logits = carry
        k, n = xs
        buf, _ = sample_into(buf, logits, k, n)
        return (buf, _window_logits(params, buf, n + 1, config)), None

    if n_inc:
        (buf, _, logits), _ = lax.scan(cached_step, (buf, cache, logits), (keys[:n_inc], ns[:n_inc]))
    if n_inc < max_new_tokens:
        (buf, logits), _ = lax.scan(window_step, (buf, logits), (keys[n_inc:], ns[n_inc:]))
    return buf[:, :n_total]


def _generate_half(params, buf, keys, ns, temperature, config, T0, top_k, top_p):
    # crop="half": the context is buf[start : n+1]; when it would exceed block_size, start jumps so that the
    # last block_size // 2 tokens remain, and the cache is rebuilt once from them (positions from 0).
    B, S = buf.shape[0], config.block_size
    keep = max(S // 2, 1)
    start = max(T0 - S, 0)
    logits, cache = forward_cached(params, buf[:, start:T0], init_cache(config, B), 0, config)
    zero = jnp.zeros((), jnp.int32)

    def step(carry, xs):
        buf, cache, logits, start = carry
        k, n = xs
        tok = sample_logits(logits, k, temperature, top_k, top_p)  # (B,)
        buf = lax.dynamic_update_slice(buf, tok[:, None], (zero, n))

        def incremental(cache):
            return (*forward_cached(params, tok[:, None], cache, n - start, config), start)

        def rebuild(cache):
            s2 = n + 1 - keep
            window = lax.dynamic_slice(buf, (zero, s2), (B, keep))  # (B, keep)
            return (*forward_cached(params, window, cache, 0, config), s2)

        logits, cache, start = lax.cond(n + 1 - start > S, rebuild, incremental, cache)
        return (buf, cache, logits, start), None

    (buf, *_), _ = lax.scan(step, (buf, cache, logits, jnp.asarray(start, jnp.int32)), (keys, ns))
    return buf


def generate(params, config: GPTConfig, prompt_tokens, max_new_tokens: int, key, temperature=1.0,
             top_k: int | None = None, top_p: float | None = None, *, use_cache: bool = True,
             crop: str = "sliding"):
    """Sample max_new_tokens continuations of prompt_tokens, (T0,) or (B, T0) int -> (T0 + max_new_tokens,)
    or (B, T0 + max_new_tokens) int32, prompt included (nanoGPT's convention).

    Each step draws x_{t+1} ~ softmax(filter(logits_t) / temperature), filter = top-k then top-p
    (nucleus); temperature 0 is greedy argmax.  Prompts longer than block_size and generation past it
    use the last block_size tokens as context (positions restart: see the module docstring).  One
    compile per (config, shapes, max_new_tokens, top_k, top_p, use_cache, crop); temperature is traced.

    crop="sliding" (default) is nanoGPT's rule: every token past the block sees exactly the last
    block_size tokens, so each such step is a full forward over the window.  crop="half" trades that for
    speed: when the context is full it keeps the last block_size // 2 tokens, rebuilds the cache from them
    once, and continues incrementally, so each token sees between block_size // 2 and block_size tokens
    (always with the cache; use_cache is ignored).

    >>> cfg = GPTConfig(vocab_size=80, block_size=64, n_layer=2, n_head=2, n_embd=32)
    >>> out = generate(init_params(cfg, jax.random.key(0)), cfg, jnp.array([1, 2]), 5, jax.random.key(1))
    >>> out.shape
    (7,)
    """
    if not hasattr(prompt_tokens, "dtype"):
        prompt_tokens = np.asarray(prompt_tokens)
    if not jnp.issubdtype(prompt_tokens.dtype, jnp.integer):
        raise TypeError(f"prompt_tokens must be integer token ids, got dtype {prompt_tokens.dtype}")
    if prompt_tokens.ndim not in (1, 2) or prompt_tokens.shape[-1] == 0:
        raise ValueError(f"prompt_tokens must have shape (T0,) or (B, T0) with T0 >= 1, got {prompt_tokens.shape}")
    check_params(params, config)
    if not isinstance(prompt_tokens, jax.core.Tracer):
        _check_range(np.asarray(prompt_tokens), config.vocab_size, "prompt_tokens")
    if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, (int, np.integer)) or max_new_tokens < 0:
        raise ValueError(f"max_new_tokens must be a non-negative int, got {max_new_tokens!r}")
    if isinstance(temperature, (str, bool)) or np.ndim(temperature) != 0:
        raise TypeError(f"temperature must be a scalar >= 0 (0 = greedy), got {temperature!r}")
    if not isinstance(temperature, jax.core.Tracer) and not float(temperature) >= 0:
        raise ValueError(f"temperature must be >= 0 (0 = greedy), got {temperature!r}")
    if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, (int, np.integer))
                              or not 1 <= top_k <= config.vocab_size):
        raise ValueError(f"top_k must be None or an int in [1, vocab_size={config.vocab_size}], got {top_k!r}")
    if crop not in ("sliding", "half"):
        raise ValueError(f"crop must be 'sliding' (nanoGPT) or 'half', got {crop!r}")
    if top_p is not None and (isinstance(top_p, bool) or not isinstance(top_p, (int, float, np.integer, np.floating))
                              or not 0.0 < float(top_p) <= 1.0):
        raise ValueError(f"top_p must be None or a number in (0, 1], got {top_p!r}")
    single = prompt_tokens.ndim == 1
    prompt = jnp.asarray(prompt_tokens)[None] if single else jnp.asarray(prompt_tokens)
    if max_new_tokens == 0:
        out = prompt.astype(jnp.int32)
    else:
        out = _generate(params, prompt, key, jnp.asarray(temperature, jnp.float32), config=config,
                        max_new_tokens=int(max_new_tokens), top_k=None if top_k is None else int(top_k),
                        top_p=None if top_p is None else float(top_p), use_cache=use_cache, crop=crop)
    return out[0] if single else out
