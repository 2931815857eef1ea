"""Autoregressive sampling: one jitted loop over the new tokens, with a static-shape KV cache.

Within the block, step t feeds only the newest token: its keys/values go into the cache at slot t and
its query attends to slots 0..t, so a step costs O(block_size·C) attention plus one token's dense
layers instead of a forward pass over the whole context.

Past block_size we follow nanoGPT: the context is cropped to the last block_size tokens and positions
restart at 0 for the cropped window.  Every cached key/value then belongs to a different position, so
the cache would have to be rebuilt from scratch at every step: those steps run one full forward pass
over the window (what nanoGPT does at every step) and keep only the last position's logits.
`crop="half"` is the fast alternative: keep the last block_size // 2 tokens, rebuild the cache once,
continue incrementally (the context then varies between block_size // 2 and block_size tokens).

Every path runs the model's own pieces (`model.embed`, `model.trunk`, `model.block`, `model.lm_head`);
only the attention core (`attend`) differs.  Rows of different lengths are left-padded: `pad[b]` counts
row b's pad slots, which its keys never see and its positions skip, so each row computes what it
would alone.  A row stops after its first stop token (`eos_token_id`); the loop ends when all have.
"""
from __future__ import annotations

import functools
import numbers

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from fungpt import nn
from fungpt.gpt.config import GPTConfig
from fungpt.gpt.model import (
    block,
    check_finite,
    check_params,
    check_tokens,
    embed,
    forward_cached,
    init_cache,
    lm_head,
    trunk,
)


def filter_logits(logits, top_k=None, top_p=None):
    """Keep the top-k logits and/or the nucleus (smallest set of largest probabilities with mass >= top_p);
    the rest become finfo.min, so softmax gives them probability 0.  logits (..., V) -> (..., V).

    top_k None or 0 means no top-k filter.  top_p may be traced: outside (0, 1] (or NaN) the logits
    come back NaN, never silently unfiltered."""
    low = jnp.asarray(jnp.finfo(logits.dtype).min, logits.dtype)
    if top_k:
        kth = lax.top_k(logits, top_k)[0][..., -1:]  # (..., 1) the k-th largest
        logits = jnp.where(logits < kth, low, logits)
    if top_p is not None:
        p_top = jnp.asarray(top_p, logits.dtype)
        desc = -jnp.sort(-logits, axis=-1)  # (..., V) descending
        p = nn.softmax(desc)
        # keep sorted entry i if the mass strictly before it is < top_p (the first one always stays)
        keep = (jnp.cumsum(p, axis=-1) - p) < p_top.astype(p.dtype)
        thresh = jnp.min(jnp.where(keep, desc, jnp.asarray(jnp.inf, desc.dtype)), axis=-1, keepdims=True)
        logits = jnp.where(logits < thresh, low, logits)
        logits = jnp.where((p_top > 0) & (p_top <= 1), logits, jnp.asarray(jnp.nan, logits.dtype))
    return logits


def sample_logits(logits, key, temperature=1.0, top_k=None, top_p=None):
    """One token per row from softmax(filter(logits) / temperature); argmax when temperature == 0.

    logits (B, V), temperature a (traced) scalar -> int32 (B,).  The error value is -1, an id outside
    every vocabulary: a row gets it when its logits hold NaN (e.g. from a bad token id or a NaN
    parameter upstream) or when a traced temperature is < 0 or NaN or a traced top_p is outside (0, 1]."""
    logits = logits.astype(jnp.float32 if jnp.finfo(logits.dtype).bits < 32 else logits.dtype)  # >= float32
    t = jnp.asarray(temperature, logits.dtype)
    greedy = jnp.argmax(logits, axis=-1).astype(jnp.int32)
    z = filter_logits(logits / jnp.where(t > 0, t, jnp.ones((), t.dtype)), top_k, top_p)
    tok = jnp.where(t > 0, jax.random.categorical(key, z, axis=-1).astype(jnp.int32), greedy)
    bad = jnp.any(jnp.isnan(z), axis=-1) | ~(t >= 0)  # (B,); NaN fails every comparison
    return jnp.where(bad, jnp.full_like(tok, -1), tok)


def _last_layer_at(p, x, i, config, key_mask):
    # The last layer at one position i only: keys/values for all S positions of x (B, S, C), then
    # `block` on row i alone with an attend reading them (a fifth fewer FLOPs on the baby model).  -> (B, C)
    B, S, C = x.shape
    c_attn = p["attn"]["c_attn"]
    kv_proj = {k: (w[:, C:] if k == "weight" else w[C:]) for k, w in c_attn.items()}  # the k, v columns
    h = nn.layer_norm(p["ln_1"], x, config.layer_norm_epsilon)
    kv = nn.linear(kv_proj, h, config.compute_dtype).reshape(B, S, 2, config.n_head, config.head_size)

    def attend(q, k, v):  # q (B, 1, H, D); this row's own k, v are already in kv
        return nn.attention(q, kv[:, :, 0], kv[:, :, 1], key_mask, config.compute_dtype), None

    return block(p, lax.dynamic_slice_in_dim(x, i, 1, axis=1), config, attend)[0][:, 0]


def _window_logits(params, buf, n, config, pad):
    # Logits after the first n slots of buf (B, W >= block_size): the model sees the last
    # min(n, block_size) of them (nanoGPT's crop), a padded row only its real tokens, at positions 0..
    # Causality makes the slots right of n-1 in the window irrelevant.
    B, S, L = buf.shape[0], config.block_size, config.n_layer
    n = jnp.asarray(n, jnp.int32)
    zero = jnp.zeros((), jnp.int32)
    start = jnp.maximum(n - S, zero)
    window = lax.dynamic_slice(buf, (zero, start), (B, S))  # (B, S)
    i = n - start - 1  # the last position inside the window
    keys = lax.iota(jnp.int32, S)
    if pad is None:
        positions, causal, last = None, None, (keys <= i)[None, None, None]  # (1, 1, 1, S)
    else:
        off = jnp.maximum(pad - start, zero)[:, None]  # (B, 1): pad slots left in the window
        positions = jnp.maximum(keys[None] - off, zero)  # (B, S)
        seen = (keys[None] >= off)[:, None, None]  # (B, 1, 1, S)
        causal_mask = (keys[:, None] >= keys[None])[None, None] & seen  # (B, 1, S, S)
        causal = lambda q, k, v, st, l: (nn.attention(q, k, v, causal_mask, config.compute_dtype), st)
        last = (keys <= i)[None, None, None] & seen
    h = params["h"]
    if L > 1:
        below = {**params, "h": jax.tree.map(lambda a: a[:-1], h)}
        # Layers unrolled: a scan would slice every layer's weights out of the stack at every step (~10% of
        # a baby-model step); unrolled, the slices are loop-invariant.
        x, _ = trunk(below, window, config.replace(n_layer=L - 1, scan_unroll=L - 1), causal, positions=positions,
                     final_norm=False)  # (B, S, C)
    else:
        x = embed(params, window, positions)
    x = _last_layer_at(jax.tree.map(lambda a: a[-1], h), x, i, config, last)  # (B, C)
    return lm_head(params, nn.layer_norm(params["ln_f"], x, config.layer_norm_epsilon), config)  # (B, V)


def _sampler(temperature, top_p, stop_ids, pad_id, top_k):
    # (buf, done, logits, key, n) -> (buf with slot n written, done, tok): rows already done write pad_id.
    def sample_into(buf, done, logits, key, n):
        tok = sample_logits(logits, key, temperature, top_k, top_p)  # (B,)
        tok = jnp.where(done, jnp.full_like(tok, pad_id), tok)
        done = done | jnp.any(tok[:, None] == stop_ids[None], axis=-1)
        return lax.dynamic_update_slice(buf, tok[:, None], (jnp.zeros_like(n), n)), done, tok
    return sample_into


def _loop(step, carry, j0, j1, done_at, early):
    # Steps j0 <= j < j1 of `step` (carry[0] is j): a while loop that ends once every row is done when there
    # are stop tokens (early), else a scan, the loop XLA runs fastest.
    c0 = (jnp.asarray(j0, jnp.int32), *carry)
    if early:
        return lax.while_loop(lambda c: (c[0] < j1) & ~jnp.all(done_at(c)), step, c0)
    return lax.scan(lambda c, _: (step(c), None), c0, None, length=j1 - j0)[0]


@functools.partial(jax.jit, static_argnames=("config", "max_new_tokens", "top_k", "use_cache", "crop", "pad_id"))
def _generate(params, prompt, pad, key, temperature, top_p, stop_ids, *, config, max_new_tokens, top_k, use_cache,
              crop, pad_id):
    B, T0 = prompt.shape
    S, n_total = config.block_size, T0 + max_new_tokens
    if pad is not None:  # pad slots hold pad_id: whatever they held is never read, and must not be a bad id
        prompt = jnp.where(lax.broadcasted_iota(jnp.int32, prompt.shape, 1) < pad[:, None], pad_id, prompt)
    buf = jnp.full((B, max(n_total, S)), pad_id, jnp.int32).at[:, :T0].set(prompt.astype(jnp.int32))
    keys = jax.random.split(key, max_new_tokens)
    sample_into = _sampler(temperature, top_p, stop_ids, pad_id, top_k)
    done, early = jnp.zeros((B,), bool), stop_ids.shape[0] > 0
    if crop == "half":
        return _generate_half(params, buf, keys, done, sample_into, config, T0, pad, early)[:, :n_total]
    # steps whose context (prompt + sampled so far + the new token) still fits the block use the cache
    n_inc = min(max(S - T0, 0), max_new_tokens) if use_cache else 0
    if n_inc:
        logits, cache = forward_cached(params, prompt, init_cache(config, B), 0, config, pad=pad)

        def cached_step(c):
            j, buf, done, cache, logits = c
            buf, done, tok = sample_into(buf, done, logits, keys[j], T0 + j)
            logits, cache = forward_cached(params, tok[:, None], cache, T0 + j, config, pad=pad)
            return j + 1, buf, done, cache, logits

        _, buf, done, _, logits = _loop(cached_step, (buf, done, cache, logits), 0, n_inc, lambda c: c[2], early)
    else:
        logits = _window_logits(params, buf, T0, config, pad)
    if n_inc < max_new_tokens:
        def window_step(c):
            j, buf, done, logits = c
            buf, done, _ = sample_into(buf, done, logits, keys[j], T0 + j)
            return j + 1, buf, done, _window_logits(params, buf, T0 + j + 1, config, pad)

        _, buf, _, _ = _loop(window_step, (buf, done, logits), n_inc, max_new_tokens, lambda c: c[2], early)
    return buf[:, :n_total]


def _generate_half(params, buf, keys, done, sample_into, config, T0, pad, early):
    # crop="half": the context is buf[start : n+1]; when it would exceed block_size, start jumps so that the
    # last block_size // 2 tokens remain, and the cache is rebuilt once from them (positions from 0).
    B, S = buf.shape[0], config.block_size
    keep = max(S // 2, 1)
    start = max(T0 - S, 0)
    zero = jnp.zeros((), jnp.int32)
    pad_in = (lambda s: None) if pad is None else (lambda s: jnp.maximum(pad - s, zero))  # pad slots in a window
    logits, cache = forward_cached(params, buf[:, start:T0], init_cache(config, B), 0, config, pad=pad_in(start))

    def step(c):
        j, buf, done, cache, logits, start = c
        n = T0 + j
        buf, done, tok = sample_into(buf, done, logits, keys[j], n)

        def incremental(cache):
            return (*forward_cached(params, tok[:, None], cache, n - start, config, pad=pad_in(start)), start)

        def rebuild(cache):
            s2 = n + 1 - keep
            window = lax.dynamic_slice(buf, (zero, s2), (B, keep))  # (B, keep)
            return (*forward_cached(params, window, cache, 0, config, pad=pad_in(s2)), s2)

        logits, cache, start = lax.cond(n + 1 - start > S, rebuild, incremental, cache)
        return j + 1, buf, done, cache, logits, start

    carry = (buf, done, cache, logits, jnp.asarray(start, jnp.int32))
    return _loop(step, carry, 0, keys.shape[0], lambda c: c[2], early)[1]


def pad_prompts(prompts, pad_token_id: int = 0):
    """Left-pad prompts of different lengths into one batch: a list of 1-D int sequences ->
    (tokens (B, T0) int32, prompt_mask (B, T0) bool), T0 the longest length, mask True on real tokens."""
    rows = [np.asarray(r) for r in prompts]
    if not rows or any(r.ndim != 1 or r.size == 0 for r in rows):
        raise ValueError("prompts must be a non-empty list of non-empty 1-D token sequences")
    T0 = max(r.size for r in rows)
    mask = np.arange(T0)[None] >= np.array([T0 - r.size for r in rows])[:, None]
    tokens = np.full((len(rows), T0), pad_token_id, np.int32)
    tokens[mask] = np.concatenate(rows)
    return tokens, mask


def _stop_ids(eos_token_id, vocab_size):
    ids = [] if eos_token_id is None else [eos_token_id] if isinstance(eos_token_id, numbers.Integral) else \
        list(eos_token_id)
    for i in ids:
        if isinstance(i, bool) or not isinstance(i, numbers.Integral) or not 0 <= i < vocab_size:
            raise ValueError(f"eos_token_id must be None, an int or a list of ints in [0, vocab_size={vocab_size}), "
                             f"got {eos_token_id!r}")
    return [int(i) for i in ids]


def _prompt_pad(prompt_mask, prompt):
    # The number of left-pad slots per row (B,) int32, from a left-padded mask; None without a mask.
    if prompt_mask is None:
        return None
    mask = jnp.asarray(prompt_mask)
    if mask.dtype != jnp.bool_ or mask.shape != prompt.shape:
        raise ValueError(f"prompt_mask must be bool with the prompt's shape {prompt.shape}, got {mask.dtype} "
                         f"{mask.shape}")
    pad = prompt.shape[1] - jnp.sum(mask, axis=1, dtype=jnp.int32)
    if not isinstance(mask, jax.core.Tracer):
        m, p = np.asarray(mask), np.asarray(pad)
        if not np.array_equal(m, np.arange(m.shape[1])[None] >= p[:, None]) or (p >= m.shape[1]).any():
            raise ValueError("prompt_mask must be left padding: each row False then True, with at least one True")
    return pad


def _check_sampling(temperature, top_k, top_p, vocab_size):
    if isinstance(temperature, (str, bool)) or np.ndim(temperature) != 0:
        raise TypeError(f"temperature must be a scalar >= 0 (0 = greedy), got {temperature!r}")
    if not isinstance(temperature, jax.core.Tracer) and not float(temperature) >= 0:
        raise ValueError(f"temperature must be >= 0 (0 = greedy), got {temperature!r}")
    if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, numbers.Integral)
                              or not 0 <= top_k <= vocab_size):
        raise ValueError(f"top_k must be None or 0 (no filter) or an int in [1, vocab_size={vocab_size}], "
                         f"got {top_k!r}")
    if top_p is not None and not isinstance(top_p, jax.core.Tracer) and (
            isinstance(top_p, (bool, str)) or np.ndim(top_p) != 0 or not 0.0 < float(top_p) <= 1.0):
        raise ValueError(f"top_p must be None or a number in (0, 1], got {top_p!r}")


def generate(params, config: GPTConfig, prompt_tokens, max_new_tokens: int, key, temperature=1.0,
             top_k: int | None = None, top_p: float | None = None, *, eos_token_id=None, pad_token_id=None,
             prompt_mask=None, use_cache: bool = True, crop: str = "sliding"):
    """Sample max_new_tokens continuations of prompt_tokens, (T0,) or (B, T0) int -> (T0 + max_new_tokens,)
    or (B, T0 + max_new_tokens) int32, prompt included (nanoGPT's convention).

    Each step draws x_{t+1} ~ softmax(filter(logits_t) / temperature), filter = top-k then top-p
    (nucleus); temperature 0 is greedy argmax; top_k None or 0 is no top-k filter.  temperature and top_p
    are traced (no recompile when they change); a traced temperature < 0 or NaN, or top_p outside (0, 1],
    makes the row's tokens -1 (see `sample_logits`), and so does an out-of-range prompt id under jit.

    eos_token_id: an id or a list of ids; each row stops after its first one, and its later slots hold
    pad_token_id (default: the first stop id); the loop ends as soon as every row has stopped.
    Prompts of different lengths: pass `prompt_mask` (B, T0) bool, True on real tokens, left-padded
    (see `pad_prompts`); pad slots are never attended to and positions count from each row's first real
    token, so every row gets the tokens it would get alone (greedy; sampling draws other random numbers).

    Prompts longer than block_size and generation past it use the last block_size tokens as context
    (positions restart: see the module docstring).  crop="sliding" (default) is nanoGPT's rule: every token
    past the block sees exactly the last block_size tokens, so each such step is a full forward over the
    window.  crop="half" trades that for speed: when the context is full it keeps the last block_size // 2
    tokens, rebuilds the cache from them once, and continues incrementally (always with the cache;
    use_cache is ignored).  With padding, the crop points follow the padded length.

    >>> cfg = GPTConfig(vocab_size=80, block_size=64, n_layer=2, n_head=2, n_embd=32)
    >>> out = generate(init_params(cfg, jax.random.key(0)), cfg, jnp.array([1, 2]), 5, jax.random.key(1))
    >>> out.shape
    (7,)
    """
    if hasattr(prompt_tokens, "ndim") and prompt_tokens.ndim not in (1, 2):
        raise ValueError(f"prompt_tokens must have shape (T0,) or (B, T0) with T0 >= 1, got {prompt_tokens.shape}")
    prompt_tokens = check_tokens(prompt_tokens, config, "prompt_tokens", any_length=True)
    check_params(params, config)
    check_finite(params)
    if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, numbers.Integral) or max_new_tokens < 0:
        raise ValueError(f"max_new_tokens must be a non-negative int, got {max_new_tokens!r}")
    _check_sampling(temperature, top_k, top_p, config.vocab_size)
    if crop not in ("sliding", "half"):
        raise ValueError(f"crop must be 'sliding' (nanoGPT) or 'half', got {crop!r}")
    stops = _stop_ids(eos_token_id, config.vocab_size)
    pad_id = pad_token_id if pad_token_id is not None else stops[0] if stops else 0
    if isinstance(pad_id, bool) or not isinstance(pad_id, numbers.Integral) or not 0 <= pad_id < config.vocab_size:
        raise ValueError(f"pad_token_id must be None or an int in [0, vocab_size={config.vocab_size}), "
                         f"got {pad_token_id!r}")
    single = prompt_tokens.ndim == 1
    prompt = prompt_tokens[None] if single else prompt_tokens
    if single and prompt_mask is not None and np.ndim(prompt_mask) == 1:
        prompt_mask = jnp.asarray(prompt_mask)[None]
    pad = _prompt_pad(prompt_mask, prompt)
    if max_new_tokens == 0:
        out = prompt.astype(jnp.int32)
    else:
        out = _generate(params, prompt, pad, key, jnp.asarray(temperature, jnp.float32),
                        None if top_p is None else jnp.asarray(top_p, jnp.float32), jnp.asarray(stops, jnp.int32),
                        config=config, max_new_tokens=int(max_new_tokens), top_k=int(top_k) if top_k else None,
                        use_cache=use_cache, crop=crop, pad_id=int(pad_id))
    return out[0] if single else out


def generate_text(params, config: GPTConfig, tokenizer, prompt: str, max_new_tokens: int, key, temperature=0.8,
                  top_k: int | None = None, top_p: float | None = None, *, stop=()) -> str:
    """Prompt + up to max_new_tokens generated tokens, decoded: text in, text out (`fungpt sample`).

    top_k >= vocab_size filters nothing and is treated as off (nanoGPT's min(top_k, V)).  stop: strings
    and/or token ids; the generated part is cut before the first of them.  A stop id, or a string that is
    one token, also ends generation there (`eos_token_id`); longer strings are cut after generating."""
    ids = np.asarray(tokenizer.encode(prompt), np.int32)
    if len(ids) == 0:
        raise ValueError("the prompt must hold at least one token")
    if top_k is not None and top_k >= config.vocab_size:
        top_k = None
    stop = [stop] if isinstance(stop, (str, numbers.Integral)) else list(stop)
    for s in stop:
        if not (isinstance(s, str) and s) and not isinstance(s, numbers.Integral):
            raise ValueError(f"stop must hold non-empty strings or token ids, got {s!r}")
    texts = [s for s in stop if isinstance(s, str)]
    eos = [int(s) for s in stop if not isinstance(s, str)]
    eos += [int(t[0]) for t in (tokenizer.encode(s) for s in texts) if len(t) == 1]
    out = np.asarray(generate(params, config, ids, max_new_tokens, key, temperature, top_k, top_p,
                              eos_token_id=eos or None))[len(ids):]
    hit = np.flatnonzero(np.isin(out, eos)) if eos else []
    full = tokenizer.decode(np.concatenate([ids, out[:hit[0]] if len(hit) else out]))
    n = len(tokenizer.decode(ids))  # stop strings are searched in the generated part only
    return full[:min((i for i in (full.find(s, n) for s in texts) if i >= 0), default=len(full))]
