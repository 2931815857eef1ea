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
import math

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from fungpt import nn
from fungpt.gpt.config import GPTConfig


def param_table(config: GPTConfig) -> list[tuple[tuple[str, ...], tuple[int, ...], float | str]]:
    """The model's parameters, once: [(path, shape, init)] in a fixed order, with GPT-2's names.

    path is the key path in the nested dict (("h", "attn", "c_attn", "weight"), ...); the per-layer
    entries under "h" carry a leading n_layer axis; init is a std (N(0, std²)), "zeros" or "ones".
    `init_params`, `check_params` and the Hugging Face import/export (`fungpt.gpt.hf`) all read it."""
    V, S, L, C = config.vocab_size, config.block_size, config.n_layer, config.n_embd
    res = nn.residual_std(L)
    bias = lambda path, shape: [((*path, "bias"), shape, "zeros")] if config.bias else []
    lin = lambda path, n_in, n_out, std: [(("h", *path, "weight"), (L, n_in, n_out), std),
                                          *bias(("h", *path), (L, n_out))]
    ln = lambda path, *lead: [((*path, "weight"), (*lead, C), "ones"), *bias(path, (*lead, C))]
    return [(("wte", "weight"), (V, C), 0.02), (("wpe", "weight"), (S, C), 0.02),
            *ln(("h", "ln_1"), L), *lin(("attn", "c_attn"), C, 3 * C, 0.02), *lin(("attn", "c_proj"), C, C, res),
            *ln(("h", "ln_2"), L), *lin(("mlp", "c_fc"), C, 4 * C, 0.02), *lin(("mlp", "c_proj"), 4 * C, C, res),
            *ln(("ln_f",), )]


def tree_from_paths(items) -> dict:
    """A nested dict from (path tuple, value) pairs: the inverse of flattening with key paths."""
    tree: dict = {}
    for path, value in items:
        node = tree
        for k in path[:-1]:
            node = node.setdefault(k, {})
        node[path[-1]] = value
    return tree


@functools.partial(jax.jit, static_argnums=0)
def _init(config, key):
    # One normal draw for all the weights, carved up afterwards: each separate jax.random call costs a
    # threefry compile (~0.3 s on a CPU).
    dt, table = config.dtype, param_table(config)
    normal = [(path, shape, std) for path, shape, std in table if not isinstance(std, str)]
    sizes = [math.prod(shape) for _, shape, _ in normal]
    z = jax.random.normal(key, (sum(sizes),), dt)
    w = {path: jnp.asarray(std, dt) * z[a:a + n].reshape(shape)
         for (path, shape, std), a, n in zip(normal, np.cumsum([0, *sizes[:-1]]), sizes, strict=True)}
    fill = {"zeros": jnp.zeros, "ones": jnp.ones}
    return tree_from_paths((path, w[path] if path in w else fill[init](shape, dt)) for path, shape, init in table)


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


def check_tokens(tokens, config: GPTConfig, name="tokens", *, debug=False, any_length=False):
    """Refuse bad token arrays at the boundary: integer dtype, shape (T,) or (B, T), 1 <= T <= block_size
    (T >= 1 with any_length=True), and, on concrete inputs, every value in [0, vocab_size): a ValueError
    naming the bad ids and their positions.

    Under `jax.jit` the values are tracers and cannot be inspected: an out-of-range id then reads a NaN
    embedding (`fungpt.nn.embedding`), so the logits and the loss come out NaN.  debug=True also inserts a
    host callback that raises at run time (slower; for debugging)."""
    if not hasattr(tokens, "dtype"):
        tokens = np.asarray(tokens)
    if not jnp.issubdtype(tokens.dtype, jnp.integer):
        raise TypeError(f"{name} must be an integer array of token ids, got dtype {tokens.dtype}")
    if tokens.ndim not in (1, 2):
        raise ValueError(f"{name} must have shape (T,) or (B, T), got shape {tokens.shape}")
    T = tokens.shape[-1]
    if not (T >= 1 if any_length else 1 <= T <= config.block_size):
        raise ValueError(f"{name} length T={T} must be in [1, block_size={config.block_size}]")
    if not isinstance(tokens, jax.core.Tracer):
        _check_range(np.asarray(tokens), config.vocab_size, name)
    elif debug:
        jax.debug.callback(lambda t: _check_range(np.asarray(t), config.vocab_size, name), tokens)
    return jnp.asarray(tokens)


def _check_range(t, vocab_size, name):
    bad = (t < 0) | (t >= vocab_size)
    if bad.any():
        where = np.argwhere(bad)[:5].tolist()
        raise ValueError(f"{name} must lie in [0, vocab_size={vocab_size}); got {t[bad][:5].tolist()} "
                         f"at positions {where}")


@functools.cache
def _param_shapes(config):
    return {jax.tree_util.keystr(tuple(jax.tree_util.DictKey(k) for k in path)): shape
            for path, shape, _ in param_table(config)}


def check_params(params, config: GPTConfig):
    """Refuse a parameter tree that does not fit the config (`param_table`): missing or extra leaves,
    wrong shapes (e.g. a checkpoint of another size, or an (out, in) weight).  Shapes only; any float
    dtype passes.  Works on tracers too: shapes are static.  Values: see `check_finite`."""
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


@jax.jit
def _nonfinite_counts(leaves):
    return jnp.stack([jnp.sum(~jnp.isfinite(a)) for a in leaves])


def check_finite(params, name="params"):
    """Refuse parameters holding NaN or ±inf: a ValueError naming each such leaf and its count of bad
    entries.  Eager calls only (one small device reduction); while tracing (under jit) it checks nothing,
    since values are unknown there."""
    flat = jax.tree_util.tree_flatten_with_path(params)[0]
    if not flat or any(isinstance(a, jax.core.Tracer) for _, a in flat):
        return
    counts = _nonfinite_counts([a for _, a in flat])
    if isinstance(counts, jax.core.Tracer):  # concrete params closed over inside a user's jit: unknowable
        return
    counts = np.asarray(counts)
    bad = [f"{jax.tree_util.keystr(p)} ({n} of {np.size(a)})" for (p, a), n in zip(flat, counts, strict=True) if n]
    if bad:
        raise ValueError(f"{name} hold NaN or inf values in {len(bad)} leaves: {', '.join(bad[:6])}"
                         + (" ..." if len(bad) > 6 else ""))


# ---------------------------------------------------------------------------------------------------
# The model, once: block (one layer), trunk (the stack), lm_head (the tied output layer).  Training,
# evaluation and generation (KV cache, window) all run these three.


def block(p, x, config: GPTConfig, attend=None, *, key=None):
    """One layer: `fungpt.nn.transformer_block` with this config's heads, layer-norm epsilon, activation,
    dropout rate and compute dtype.  p: one layer's parameters (`params["h"]` sliced at index l),
    x (B, T, C); attend: see `nn.self_attention` (None: causal over x); a key turns dropout on.
    Returns (x (B, T, C), aux)."""
    return nn.transformer_block(p, x, config.n_head, attend, key=key, rate=config.dropout,
                                eps=config.layer_norm_epsilon, approximate=config.activation == "gelu_tanh",
                                compute_dtype=config.compute_dtype)


def _layer_keys(key, config, train):
    if not train or config.dropout == 0.0:
        return None, None
    if key is None:
        raise ValueError(f"train=True with dropout={config.dropout} needs a PRNG key")
    k_emb, k_h = jax.random.split(key)
    return k_emb, jax.random.split(k_h, config.n_layer)


def embed(params, tokens, positions=None):
    """h_0 = wte[tokens] + wpe[positions]: tokens (B, T) int, positions (T,) or (B, T) int (default
    0..T-1) -> (B, T, C).  Out-of-range ids or positions read NaN (`fungpt.nn.embedding`)."""
    positions = lax.iota(jnp.int32, tokens.shape[-1]) if positions is None else positions
    pos = nn.embedding(params["wpe"], positions)
    return nn.embedding(params["wte"], tokens) + (pos if pos.ndim == 3 else pos[None])  # (B, T, C)


def trunk(params, tokens, config: GPTConfig, attend=None, *, positions=None, key=None, train=False, state=None,
          final_norm=True):
    """The stacked layers:  h_0 = wte[tokens] + wpe[positions],  h_l = block_l(h_{l-1}),  LN_f(h_L).

    tokens (B, T) int; positions (T,) or (B, T) int (default 0..T-1) -> (hidden (B, T, C), state).
    attend(q, k, v, state, layer) -> (a, state) may read and update a state carried through the layers
    (the KV cache: carried, not scanned over, so XLA updates it in place); None is causal attention.
    The layers run as one `lax.scan` over the stacked parameters (compile time flat in depth)."""
    k_emb, k_layers = _layer_keys(key, config, train)
    x = nn.dropout(k_emb, embed(params, tokens, positions), config.dropout, train=k_emb is not None)

    def body(carry, layer):
        x, st = carry
        p, k, i = layer
        at = None if attend is None else (lambda q, kk, v: attend(q, kk, v, st, i))
        x, st = block(p, x, config, at, key=k)
        return (x, st), None

    layers = (params["h"], k_layers, lax.iota(jnp.int32, config.n_layer))
    (x, state), _ = lax.scan(body, (x, state), layers, unroll=min(config.scan_unroll, config.n_layer))
    return (nn.layer_norm(params["ln_f"], x, config.layer_norm_epsilon) if final_norm else x), state


def lm_head(params, x, config: GPTConfig):
    """Logits of the tied output layer: x (..., C) @ wteᵀ -> (..., V), in the parameter dtype, products in
    the compute dtype.  Contracts C with the table's second axis: no transposed copy of wte."""
    w = params["wte"]["weight"]
    cd, out = config.compute_dtype, w.dtype
    if jnp.dtype(cd) != w.dtype:
        x, w = nn.low_precision_operand(x, cd, out), nn.low_precision_operand(w, cd, out)
    *lead, C = x.shape
    y = lax.dot_general(x.reshape(math.prod(lead), C), w, (((1,), (1,)), ((), ())), preferred_element_type=out)
    return y.reshape(*lead, w.shape[0])  # (..., V)


def forward(params, tokens, config: GPTConfig, *, key=None, train=False, debug=False):
    """Logits of the next token at every position: tokens (T,) or (B, T) int -> (T, V) or (B, T, V).

    train=True applies dropout (needs `key`).  Token values are checked on concrete inputs (see
    `check_tokens`); under jit an out-of-range id gives NaN logits.

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
    x, _ = trunk(params, tokens, config, key=key, train=train)
    return lm_head(params, x, config)  # (B, T, V)


@functools.partial(jax.jit, static_argnums=(3, 5))
def _loss(params, tokens, targets, config, key, train):
    B, T = tokens.shape
    x, _ = trunk(params, tokens, config, key=key, train=train)
    return nn.cross_entropy(lm_head(params, x.reshape(B * T, config.n_embd), config), targets.reshape(-1))


def loss(params, tokens, targets, config: GPTConfig, *, key=None, train=False, debug=False):
    """Mean next-token cross-entropy  -1/(B·T) Σ log softmax(logits)[targets]  (nats), `nn.cross_entropy`.

    tokens, targets: int (T,) or (B, T) of the same shape (targets are usually tokens shifted by one).
    Concrete ids outside [0, vocab) raise ValueError (naming them); under jit they make the loss NaN,
    and its gradient NaN too, never a plausible number.
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


def forward_cached(params, tokens, cache, pos, config: GPTConfig, *, pad=None):
    """Run tokens (B, T) in cache slots pos..pos+T-1 (pos may be traced, pos + T <= block_size), writing
    their keys/values into the cache and attending to slots 0..pos+i.

    pad (B,) int, optional: row b's first pad[b] slots hold left padding; its keys there are masked and
    its positions count from its first real slot (slot - pad[b]), so a padded row computes what it
    would alone.  Returns (last-slot logits (B, V), new cache).  Slots beyond pos+T-1 are masked, so
    stale entries there never matter."""
    T, S = tokens.shape[1], config.block_size
    pos, zero = jnp.asarray(pos, jnp.int32), jnp.zeros((), jnp.int32)
    slots = pos + lax.iota(jnp.int32, T)  # (T,)
    mask = lax.broadcasted_iota(jnp.int32, (T, S), 1) <= slots[:, None]  # (T, S)
    if pad is None:
        positions, mask = slots, mask[None, None]  # (1, 1, T, S)
    else:
        pad = jnp.asarray(pad, jnp.int32)[:, None]  # (B, 1)
        positions = jnp.maximum(slots[None] - pad, zero)  # (B, T); pad slots' own rows are never read
        mask = (mask[None] & (lax.iota(jnp.int32, S)[None, None] >= pad[:, :, None]))[:, None]  # (B, 1, T, S)

    def attend(q, k, v, kv, layer):
        at = (layer, zero, pos, zero, zero)
        kv = {"k": lax.dynamic_update_slice(kv["k"], k.astype(kv["k"].dtype)[None], at),  # (L, B, S, H, D)
              "v": lax.dynamic_update_slice(kv["v"], v.astype(kv["v"].dtype)[None], at)}
        ck, cv = (lax.dynamic_index_in_dim(kv[n], layer, keepdims=False) for n in ("k", "v"))  # (B, S, H, D)
        return nn.attention(q, ck, cv, mask, config.compute_dtype), kv

    x, cache = trunk(params, tokens, config, attend, positions=positions, state=cache)
    return lm_head(params, x[:, -1], config), cache  # (B, V)
