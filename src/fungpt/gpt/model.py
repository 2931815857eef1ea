"""A GPT-2-style decoder as pure functions over a nested-dict pytree with GPT-2's parameter names.

    h_0 = wte[tokens] + wpe[0..T-1]
    h_l = h_{l-1} + Attn_l(LN(h_{l-1}));  h_l = h_l + MLP_l(LN(h_l))        l = 1..n_layer
    logits = LN_f(h_L) wteᵀ                                                   (tied embeddings)

Shapes: tokens (T,) or (B, T) int -> logits (T, V) or (B, T, V).  The dense layers see the activations as
one (B·T, C) matrix (two-dimensional products are what XLA:CPU's fast kernels take), the blocks'
parameters are stacked along a leading layer axis and run by one `lax.scan`, so compile time does not
grow with depth.  Parameters:

    wte.weight (V, C)  wpe.weight (block_size, C)  ln_f.{weight,bias} (C,)
    h.ln_1 / h.ln_2 .{weight,bias} (L, C)
    h.attn.c_attn.{weight (L, C, 3C), bias (L, 3C)}   h.attn.c_proj.{weight (L, C, C), bias (L, C)}
    h.mlp.c_fc.{weight (L, C, 4C), bias (L, 4C)}      h.mlp.c_proj.{weight (L, 4C, C), bias (L, C)}
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from fungpt import nn
from fungpt.gpt.config import GPTConfig


@functools.partial(jax.jit, static_argnums=0)
def _init(config, key):
    c, dt, L, C = config, config.dtype, config.n_layer, config.n_embd
    # (path, shape, std): every weight ~ N(0, std²). One normal draw for all of them, carved up
    # afterwards: each separate jax.random call costs a threefry compile (~0.3 s on a CPU).
    res = nn.residual_std(L)
    spec = [(("wte", "weight"), (c.vocab_size, C), 0.02), (("wpe", "weight"), (c.block_size, C), 0.02),
            (("attn", "c_attn", "weight"), (L, C, 3 * C), 0.02), (("attn", "c_proj", "weight"), (L, C, C), res),
            (("mlp", "c_fc", "weight"), (L, C, 4 * C), 0.02), (("mlp", "c_proj", "weight"), (L, 4 * C, C), res)]
    sizes = [int(np.prod(shape)) for _, shape, _ in spec]
    z = jax.random.normal(key, (sum(sizes),), dt)
    w = {}
    for (path, shape, std), a, n in zip(spec, np.cumsum([0, *sizes[:-1]]), sizes, strict=True):
        w[path] = jnp.asarray(std, dt) * z[a:a + n].reshape(shape)
    zeros = lambda *s: jnp.zeros(s, dt)
    lin = lambda path, n: {"weight": w[path], "bias": zeros(L, n)} if c.bias else {"weight": w[path]}
    ln = lambda *lead: ({"weight": jnp.ones((*lead, C), dt), "bias": zeros(*lead, C)} if c.bias
                        else {"weight": jnp.ones((*lead, C), dt)})
    return {"wte": {"weight": w["wte", "weight"]}, "wpe": {"weight": w["wpe", "weight"]},
            "h": {"ln_1": ln(L),
                  "attn": {"c_attn": lin(("attn", "c_attn", "weight"), 3 * C),
                           "c_proj": lin(("attn", "c_proj", "weight"), C)},
                  "ln_2": ln(L),
                  "mlp": {"c_fc": lin(("mlp", "c_fc", "weight"), 4 * C),
                          "c_proj": lin(("mlp", "c_proj", "weight"), C)}},
            "ln_f": ln()}


def init_params(config: GPTConfig, key):
    """Random parameters: N(0, 0.02²) weights, residual projections N(0, (0.02/√(2L))²), zero biases,
    unit layer-norm gains (GPT-2 / nanoGPT init).  The per-layer trees are stacked on axis 0: the same
    tree as `jax.vmap(fungpt.nn.block_init)` over n_layer keys.

    >>> params = init_params(GPTConfig(vocab_size=80, block_size=64, n_layer=2, n_head=2, n_embd=32),
    ...                      jax.random.key(0))
    """
    if not isinstance(config, GPTConfig):
        raise TypeError(f"config must be a GPTConfig, got {type(config).__name__}")
    return _init(config, key)


def num_params(params, non_embedding=False) -> int:
    """Number of scalars in the pytree; with non_embedding=True the position table is left out
    (nanoGPT's convention; the token table is counted because it is also the output layer)."""
    n = sum(int(np.prod(x.shape)) for x in jax.tree_util.tree_leaves(params))
    return n - int(np.prod(params["wpe"]["weight"].shape)) if non_embedding else n


def check_tokens(tokens, config: GPTConfig, name="tokens", *, debug=False):
    """Refuse bad token arrays at the boundary: integer dtype, shape (T,) or (B, T), 1 <= T <= block_size,
    and, on concrete inputs, every value in [0, vocab_size) (JAX's gather would silently clamp).

    Under `jax.jit` the values are tracers and cannot be inspected; pass debug=True to insert a host
    callback that raises at run time instead (slower; for debugging)."""
    if not hasattr(tokens, "dtype"):
        tokens = np.asarray(tokens)
    if not jnp.issubdtype(tokens.dtype, jnp.integer):
        raise TypeError(f"{name} must be an integer array of token ids, got dtype {tokens.dtype}")
    if tokens.ndim not in (1, 2):
        raise ValueError(f"{name} must have shape (T,) or (B, T), got shape {tokens.shape}")
    T = tokens.shape[-1]
    if not 1 <= T <= config.block_size:
        raise ValueError(f"{name} length T={T} must be in [1, block_size={config.block_size}]")
    if not isinstance(tokens, jax.core.Tracer):
        _check_range(np.asarray(tokens), config.vocab_size, name)
    elif debug:
        jax.debug.callback(lambda t: _check_range(np.asarray(t), config.vocab_size, name), tokens)
    return jnp.asarray(tokens)


@functools.cache
def _param_shapes(config):
    # {path: shape} of init_params(config), from its abstract evaluation (no FLOPs, once per config).
    tree = jax.eval_shape(_init, config, jax.random.key(0))
    return {jax.tree_util.keystr(p): tuple(a.shape) for p, a in jax.tree_util.tree_flatten_with_path(tree)[0]}


def check_params(params, config: GPTConfig):
    """Refuse a parameter tree that does not fit the config: missing or extra leaves, wrong shapes
    (e.g. a checkpoint of another size, or an (out, in) weight).  Shapes only; any float dtype passes.
    Works on tracers too: shapes are static."""
    leaves = jax.tree_util.tree_flatten_with_path(params)[0]
    got = {jax.tree_util.keystr(p): tuple(np.shape(a)) for p, a in leaves}
    want = _param_shapes(config)
    if got == want:
        return
    missing, extra = sorted(want.keys() - got.keys()), sorted(got.keys() - want.keys())
    wrong = [f"{k} is {list(got[k])}, expected {list(want[k])}" for k in sorted(want.keys() & got.keys())
             if got[k] != want[k]]
    parts = ([f"missing {', '.join(missing[:4])}"] if missing else []) + (
        [f"unexpected {', '.join(extra[:4])}"] if extra else []) + wrong[:4] + (
        [f"... ({len(wrong) - 4} more shapes differ)"] if len(wrong) > 4 else [])
    raise ValueError(f"params do not fit the config ({config.n_layer} layers, n_embd {config.n_embd}, vocab "
                     f"{config.vocab_size}, block {config.block_size}, bias={config.bias}): " + "; ".join(parts))


def _check_range(t, vocab_size, name):
    bad = (t < 0) | (t >= vocab_size)
    if bad.any():
        where = np.argwhere(bad)[:5].tolist()
        raise ValueError(f"{name} must lie in [0, vocab_size={vocab_size}); got {t[bad][:5].tolist()} "
                         f"at positions {where}")


def _block(p, x, config, B, T, attend, key):
    # One pre-LN block on x: (B*T, C).  `attend(q, k, v, key)` -> ((B, T, H, D), state) hides whether the
    # keys come from this chunk alone (training) or from a KV cache (generation).
    c, cd = config, config.compute_dtype
    k1, k2, k3 = jax.random.split(key, 3) if key is not None else (None, None, None)
    h = nn.layer_norm(p["ln_1"], x, c.layer_norm_epsilon)
    qkv = nn.linear(p["attn"]["c_attn"], h, cd)  # (B*T, 3C)
    q, k, v = (a.reshape(B, T, c.n_head, c.head_size) for a in jnp.split(qkv, 3, axis=1))  # (B, T, H, D)
    y, state = attend(q, k, v, k1)
    y = nn.linear(p["attn"]["c_proj"], y.reshape(B * T, c.n_embd), cd)  # (B*T, C)
    x = x + nn.dropout(k2, y, c.dropout, train=key is not None)
    h = nn.layer_norm(p["ln_2"], x, c.layer_norm_epsilon)
    y = nn.mlp(p["mlp"], h, key=k3, rate=c.dropout, train=key is not None,
               approximate=c.activation == "gelu_tanh", compute_dtype=cd)
    return x + y, state


def _layer_keys(key, config, train):
    if not train or config.dropout == 0.0:
        return None, None
    if key is None:
        raise ValueError(f"train=True with dropout={config.dropout} needs a PRNG key")
    k_emb, k_h = jax.random.split(key)
    return k_emb, jax.random.split(k_h, config.n_layer)


def _trunk(params, tokens, config, attend, *, pos0=0, key=None, train=False, state=None, final_norm=True):
    # tokens (B, T) at positions pos0..pos0+T-1 -> final hidden (B*T, C) and the final state.  `attend(q, k,
    # v, key, state, layer)` may read and update a state carried through the layers (the KV cache: carried,
    # not scanned over, so XLA updates it in place instead of re-stacking it every step).
    B, T = tokens.shape
    k_emb, k_layers = _layer_keys(key, config, train)
    pos = pos0 + lax.iota(jnp.int32, T)
    x = nn.embedding(params["wte"], tokens) + nn.embedding(params["wpe"], pos)[None]  # (B, T, C)
    x = nn.dropout(k_emb, x.reshape(B * T, config.n_embd), config.dropout, train=k_emb is not None)

    def body(carry, layer):
        x, st = carry
        p, k, i = layer
        return _block(p, x, config, B, T, lambda q, kk, v, ka: attend(q, kk, v, ka, st, i), k), None

    layers = (params["h"], k_layers, lax.iota(jnp.int32, config.n_layer))
    (x, state), _ = lax.scan(body, (x, state), layers, unroll=min(config.scan_unroll, config.n_layer))
    return (nn.layer_norm(params["ln_f"], x, config.layer_norm_epsilon) if final_norm else x), state  # (B*T, C)


def _causal(config):
    def attend(q, k, v, key, state, layer):
        T = q.shape[1]
        return nn.attention(q, k, v, nn.causal_mask(T)[None, None], config.compute_dtype,
                            key=key, rate=config.dropout), None
    return attend


def _logits(params, x, config):
    # x (N, C) @ wteᵀ (C, V), contracting C with the table's second axis: no transposed copy of wte.
    w = params["wte"]["weight"]
    cd = config.compute_dtype
    if jnp.dtype(cd) != w.dtype:
        x, w = nn.low_precision_operand(x, cd, w.dtype), nn.low_precision_operand(w, cd, w.dtype)
    out = params["wte"]["weight"].dtype
    return lax.dot_general(x, w, (((1,), (1,)), ((), ())), preferred_element_type=out)


def forward(params, tokens, config: GPTConfig, *, key=None, train=False, debug=False):
    """Logits of the next token at every position: tokens (T,) or (B, T) int -> (T, V) or (B, T, V).

    train=True applies dropout (needs `key`).  Token values are checked on concrete inputs (see
    `check_tokens`; under jit only with debug=True).

    >>> cfg = GPTConfig(vocab_size=80, block_size=64, n_layer=2, n_head=2, n_embd=32)
    >>> forward(init_params(cfg, jax.random.key(0)), jnp.array([1, 2, 3]), cfg).shape
    (3, 80)
    """
    check_params(params, config)
    tokens = check_tokens(tokens, config, debug=debug)
    single = tokens.ndim == 1
    logits = _forward(params, tokens[None] if single else tokens, config, key, train)
    return logits[0] if single else logits


# Jitted cores: eager callers (scripts, tests) get one compiled program instead of op-by-op dispatch;
# inside a user's jit they are plain nested calls.
@functools.partial(jax.jit, static_argnums=(2, 4))
def _forward(params, tokens, config, key, train):
    B, T = tokens.shape
    x, _ = _trunk(params, tokens, config, _causal(config), key=key, train=train)
    return _logits(params, x, config).reshape(B, T, config.vocab_size)  # (B, T, V)


@functools.partial(jax.jit, static_argnums=(3, 5))
def _loss(params, tokens, targets, config, key, train):
    x, _ = _trunk(params, tokens, config, _causal(config), key=key, train=train)  # (B*T, C)
    return nn.cross_entropy(_logits(params, x, config), targets.reshape(-1))


def loss(params, tokens, targets, config: GPTConfig, *, key=None, train=False, debug=False):
    """Mean next-token cross-entropy  -1/(B·T) Σ log softmax(logits)[targets]  (nats).

    tokens, targets: int (T,) or (B, T) of the same shape (targets are usually tokens shifted by one).
    The log-softmax is computed stably in float32 and the target's entry is picked without a one-hot.
    """
    check_params(params, config)
    tokens = check_tokens(tokens, config, debug=debug)
    targets = check_tokens(targets, config, "targets", debug=debug)
    if targets.shape != tokens.shape:
        raise ValueError(f"targets shape {targets.shape} must equal tokens shape {tokens.shape}")
    return _loss(params, tokens.reshape(-1, tokens.shape[-1]), targets, config, key, train)


# ---------------------------------------------------------------------------------------------------
# KV-cached forward (used by generation).


def init_cache(config: GPTConfig, batch: int):
    """Empty key/value cache {"k", "v"}: (n_layer, B, block_size, n_head, head_size) each."""
    shape = (config.n_layer, batch, config.block_size, config.n_head, config.head_size)
    return {"k": jnp.zeros(shape, config.dtype), "v": jnp.zeros(shape, config.dtype)}


def forward_cached(params, tokens, cache, pos, config: GPTConfig):
    """Run tokens (B, T) at positions pos..pos+T-1 (pos may be traced, pos + T <= block_size), writing
    their keys/values into the cache and attending to cache slots 0..pos+i.

    Returns (last-position logits (B, V), new cache).  Slots beyond pos+T-1 are masked, so stale
    entries there never matter."""
    B, T = tokens.shape
    S = config.block_size
    pos, zero = jnp.asarray(pos, jnp.int32), jnp.zeros((), jnp.int32)
    mask = (lax.broadcasted_iota(jnp.int32, (T, S), 1)
            <= pos + lax.broadcasted_iota(jnp.int32, (T, S), 0))[None, None]  # (1, 1, T, S)

    def attend(q, k, v, key, kv, layer):
        at = (layer, zero, pos, zero, zero)
        kv = {"k": lax.dynamic_update_slice(kv["k"], k.astype(kv["k"].dtype)[None], at),  # (L, B, S, H, D)
              "v": lax.dynamic_update_slice(kv["v"], v.astype(kv["v"].dtype)[None], at)}
        ck, cv = (lax.dynamic_index_in_dim(kv[n], layer, keepdims=False) for n in ("k", "v"))  # (B, S, H, D)
        return nn.attention(q, ck, cv, mask, config.compute_dtype), kv

    x, cache = _trunk(params, tokens, config, attend, pos0=pos, state=cache)
    last = x.reshape(B, T, config.n_embd)[:, -1]  # (B, C)
    return _logits(params, last, config), cache
