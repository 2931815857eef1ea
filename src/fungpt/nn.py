"""Neural-net layers as pure functions: each layer is `<name>_init(key, ...) -> params` plus
`<name>(params, x, ...) -> y`, with params a dict of arrays (GPT-2 / Hugging Face names: weight, bias).

Layers are written for one example: `x` has shape (..., features), so a (T, C) sequence, a (B*T, C)
matrix or any leading batch shape goes through unchanged, and `jax.vmap` batches anything else.
Normalizations, softmax and losses run in at least float32 whatever the input dtype.
"""
from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
from jax import lax

from fungpt import graphs, information

# ---------------------------------------------------------------------------------------------------
# Initializers: (key, shape, dtype) -> array.


def normal(key, shape, std=0.02, dtype=jnp.float32):
    """W ~ N(0, std²) elementwise (GPT-2 uses std 0.02)."""
    return std * jax.random.normal(key, shape, dtype)


def _fans(shape):
    if len(shape) < 2:
        raise ValueError(f"fan-in/fan-out need a weight of rank >= 2, got shape {shape}")
    receptive = math.prod(shape[:-2])
    return shape[-2] * receptive, shape[-1] * receptive


def xavier_uniform(key, shape, dtype=jnp.float32):
    """Glorot & Bengio (2010): W ~ U(-a, a), a = sqrt(6 / (fan_in + fan_out)); keeps Var(y) ≈ Var(x)
    forward and backward for linear layers. Weight layout (fan_in, fan_out)."""
    fan_in, fan_out = _fans(shape)
    a = math.sqrt(6.0 / (fan_in + fan_out))
    return jax.random.uniform(key, shape, dtype, -a, a)


def xavier_normal(key, shape, dtype=jnp.float32):
    """Glorot normal: W ~ N(0, 2 / (fan_in + fan_out))."""
    fan_in, fan_out = _fans(shape)
    return math.sqrt(2.0 / (fan_in + fan_out)) * jax.random.normal(key, shape, dtype)


def kaiming_normal(key, shape, dtype=jnp.float32):
    """He et al. (2015): W ~ N(0, 2 / fan_in); keeps the second moment through ReLU layers."""
    fan_in, _ = _fans(shape)
    return math.sqrt(2.0 / fan_in) * jax.random.normal(key, shape, dtype)


def kaiming_uniform(key, shape, dtype=jnp.float32):
    """He uniform: W ~ U(-a, a), a = sqrt(6 / fan_in) (same variance 2 / fan_in)."""
    fan_in, _ = _fans(shape)
    a = math.sqrt(6.0 / fan_in)
    return jax.random.uniform(key, shape, dtype, -a, a)


def residual_std(n_layer: int, std: float = 0.02) -> float:
    """GPT-2's scaled init of residual projections: std / sqrt(2·n_layer), since each of the n_layer
    blocks adds two branches to the residual stream and their variances add up."""
    if n_layer <= 0:
        raise ValueError(f"n_layer must be positive, got {n_layer}")
    return std / math.sqrt(2 * n_layer)


# ---------------------------------------------------------------------------------------------------
# Layers.


def low_precision_operand(a, compute_dtype, out_dtype):
    """`a` rounded to `compute_dtype`, as the operand of a product accumulated in `out_dtype`.

    Where the backend multiplies compute_dtype x compute_dtype -> out_dtype natively this is just the
    cast.  XLA:CPU before jax 0.9 raises UNIMPLEMENTED for bf16 x bf16 -> f32; there the rounded
    values are handed over in out_dtype instead: the same products (a bf16 x bf16 product is exact in
    float32) with the same float32 accumulation, at float32 speed."""
    a = a.astype(compute_dtype)
    if _native_mixed_products() or jnp.dtype(compute_dtype) == jnp.dtype(out_dtype):
        return a
    return a.astype(out_dtype)


@functools.cache
def _native_mixed_products():
    if jax.default_backend() != "cpu":
        return True
    major, minor = (int(v) for v in jax.__version__.split(".")[:2])
    return (major, minor) >= (0, 9)


def matmul(x, w, compute_dtype=None):
    """x @ w with inputs cast to `compute_dtype` (e.g. bfloat16) and the product accumulated and
    returned in w's dtype: the mixed-precision policy "low-precision products, float32 everything else".

    x: (..., n), w: (n, m) -> (..., m).
    """
    out = w.dtype
    if compute_dtype is not None and jnp.dtype(compute_dtype) != out:
        x, w = low_precision_operand(x, compute_dtype, out), low_precision_operand(w, compute_dtype, out)
    *lead, n = x.shape
    # As one (N, n) @ (n, m) product: two-dimensional products are what XLA:CPU's fast kernels take.
    y = lax.dot_general(x.reshape(math.prod(lead), n), w, (((1,), (0,)), ((), ())), preferred_element_type=out)
    return y.reshape(*lead, w.shape[-1])


def linear_init(key, in_features, out_features, *, bias=True, std=0.02, init=None, dtype=jnp.float32):
    """A dense layer's params {"weight": (in, out), "bias": (out,)}; weight ~ N(0, std²) unless an
    initializer `init(key, shape, dtype)` is given (e.g. `xavier_uniform`); bias starts at 0."""
    shape = (in_features, out_features)
    w = init(key, shape, dtype) if init is not None else normal(key, shape, std, dtype)
    return {"weight": w, "bias": jnp.zeros((out_features,), dtype)} if bias else {"weight": w}


def _lift(v, ndim):
    # Explicit rank broadcasting of a (C,) parameter against (..., C) (the harness forbids implicit).
    return lax.expand_dims(v, tuple(range(ndim - v.ndim)))


def linear(params, x, compute_dtype=None):
    """y = x W + b.  x: (..., in) -> (..., out).  (W is stored (in, out), GPT-2's Conv1D layout.)"""
    *lead, n = x.shape
    # On the (N, in) matrix, bias included: the bias gradient is then one sum over N rows, whatever the
    # leading shape (a (B, T) input sums in the same order as its (B·T) reshape: same bits).
    y = matmul(x.reshape(math.prod(lead), n), params["weight"], compute_dtype)  # (N, out)
    y = y + _lift(params["bias"], 2) if "bias" in params else y
    return y.reshape(*lead, y.shape[-1])


def embedding_init(key, num_embeddings, features, *, std=0.02, dtype=jnp.float32):
    """A lookup table {"weight": (num_embeddings, features)} ~ N(0, std²)."""
    return {"weight": normal(key, (num_embeddings, features), std, dtype)}


def embedding(params, ids):
    """Row lookup E[ids]: ids int (...) -> (..., features).  An id outside [0, num_embeddings) reads a row of
    NaN (eager or jitted; negative ids do not wrap): a bad id poisons what depends on it instead of
    silently becoming another token.  Boundaries that can check concrete ids (`fungpt.gpt.forward`) do."""
    w = params["weight"]
    ids = jnp.asarray(ids)
    if jnp.iinfo(ids.dtype).max < w.shape[0]:
        ids = ids.astype(jnp.int32)  # widened (values kept), so that the table size below fits the dtype
    ids = jnp.where(ids < 0, w.shape[0], ids)  # out of range on the high side, where "fill" catches it
    return w.at[ids].get(mode="fill", fill_value=jnp.nan)


def _wide(dtype):
    # At least float32: bfloat16's 8-bit mantissa loses the variance of a 128-vector.
    return jnp.dtype(jnp.float32) if jnp.finfo(dtype).bits < 32 else jnp.dtype(dtype)


def _f32(x):
    return x.astype(_wide(x.dtype))


def layer_norm_init(features, *, bias=True, dtype=jnp.float32):
    """{"weight": ones (features,), "bias": zeros (features,)}."""
    p = {"weight": jnp.ones((features,), dtype)}
    return {**p, "bias": jnp.zeros((features,), dtype)} if bias else p


def _standardize_parts(h, eps):
    d = h - jnp.mean(h, axis=-1, keepdims=True)
    r = lax.rsqrt(jnp.mean(d * d, axis=-1, keepdims=True) + jnp.asarray(eps, h.dtype))
    return d * r, r


@functools.partial(jax.custom_jvp, nondiff_argnums=(1,))
def standardize(h, eps=1e-5):
    """x̂ = (h - mean h) / sqrt(var h + eps) over the last axis (biased var).  h: (..., C) -> (..., C).

    Its derivative is given in closed form (a custom JVP, which reverse mode transposes):
        dx̂ = r (dh - mean(dh) - x̂ mean(x̂ dh)),   r = 1 / sqrt(var h + eps)
    i.e. r times the projection that removes the mean and the x̂ component.  Left to the chain rule
    through mean, variance and rsqrt the backward pass is correct but slow on XLA:CPU: the gradient of
    four residual LN + MLP blocks (768 x 128) took 23 ms that way and 16 ms with this rule."""
    return _standardize_parts(h, eps)[0]


@standardize.defjvp
def _standardize_jvp(eps, primals, tangents):
    (h,), (t,) = primals, tangents
    xh, r = _standardize_parts(h, eps)
    mean = lambda a: jnp.mean(a, axis=-1, keepdims=True)
    return xh, r * (t - mean(t) - xh * mean(xh * t))


def layer_norm(params, x, eps=1e-5):
    """LN(x) = (x - mean(x)) / sqrt(var(x) + eps) * weight + bias, over the last axis (biased var).

    x: (..., C) -> (..., C), computed in at least float32, returned in x's dtype.  The normalization
    is `standardize`, whose derivative is written in closed form."""
    y = standardize(_f32(x), float(eps)).astype(x.dtype) * _lift(params["weight"], x.ndim)
    return y + _lift(params["bias"], x.ndim) if "bias" in params else y


def rms_norm_init(features, *, dtype=jnp.float32):
    """{"weight": ones (features,)}."""
    return {"weight": jnp.ones((features,), dtype)}


def rms_norm(params, x, eps=1e-6):
    """RMSNorm(x) = x / sqrt(mean(x²) + eps) * weight (Zhang & Sennrich 2019).  x: (..., C)."""
    h = _f32(x)
    y = h * lax.rsqrt(jnp.mean(h * h, axis=-1, keepdims=True) + jnp.asarray(eps, h.dtype))
    return y.astype(x.dtype) * _lift(params["weight"], x.ndim)


def gelu(x, approximate=True):
    """GELU(x) = x Φ(x) = x/2 (1 + erf(x/√2)); approximate=True is GPT-2's "gelu_new":
    x/2 (1 + tanh(√(2/π) (x + 0.044715 x³))).

    Its derivative is given in closed form (a custom JVP):  GELU'(x) = Φ(x) + x φ(x), and for the tanh
    form  (1 + t)/2 + x/2 (1 - t²) √(2/π) (1 + 3·0.044715 x²)  with t the tanh above; the backward pass
    is then one multiply by a saved factor instead of the chain rule through tanh's expression."""
    return _gelu(x, bool(approximate))


def _gelu_parts(x, approximate):
    half = jnp.asarray(0.5, x.dtype)
    if approximate:
        c, a = jnp.asarray(math.sqrt(2.0 / math.pi), x.dtype), jnp.asarray(0.044715, x.dtype)
        t = jnp.tanh(c * (x + a * x * x * x))
        # For |x| >= 20, 1 - t² is exactly 0 in every float dtype (the tanh argument is >= 300), but
        # x (1 + 3a x²) overflows (float16 at |x| >= 256, float32 at 1e19) and 0 · inf is NaN: the
        # polynomial factor is evaluated at x clipped to ±20, which changes nothing where it counts.
        xc = jnp.clip(x, -20, 20)
        return half * x * (1 + t), lambda: half * (1 + t) + half * xc * (1 - t * t) * c * (1 + 3 * a * xc * xc)
    cdf = half * (1 + lax.erf(x * jnp.asarray(1 / math.sqrt(2.0), x.dtype)))
    pdf = lambda: jnp.exp(-half * x * x) * jnp.asarray(1 / math.sqrt(2 * math.pi), x.dtype)
    return x * cdf, lambda: cdf + x * pdf()


@functools.partial(jax.custom_jvp, nondiff_argnums=(1,))
def _gelu(x, approximate):
    return _gelu_parts(x, approximate)[0]


@_gelu.defjvp
def _gelu_jvp(approximate, primals, tangents):
    (x,), (t,) = primals, tangents
    y, slope = _gelu_parts(x, approximate)
    return y, slope() * t


def dropout(key, x, rate, train=True):
    """Inverted dropout: y = x · m / (1 - rate), m ~ Bernoulli(1 - rate); identity when not training
    or rate == 0.  The key is explicit: the same key drops the same units."""
    if not 0.0 <= rate < 1.0:
        raise ValueError(f"dropout rate must be in [0, 1), got {rate}")
    if not train or rate == 0.0:
        return x
    if key is None:
        raise ValueError("dropout with train=True and rate > 0 needs a PRNG key")
    keep = jax.random.bernoulli(key, 1.0 - rate, x.shape)
    return jnp.where(keep, x / jnp.asarray(1.0 - rate, x.dtype), jnp.zeros((), x.dtype))


def softmax(x, axis=-1):
    """softmax(x)_i = exp(x_i - max x) / Σ_j exp(x_j - max x), in at least float32 (the max shift
    changes nothing mathematically and keeps exp from overflowing).

    Its derivative is given in closed form, dy = y ⊙ (dx - Σ_j y_j dx_j) (a custom JVP that reverse
    mode transposes): one product and one sum instead of the chain rule through exp, sum and divide."""
    axes = tuple(range(x.ndim)) if axis is None else axis if isinstance(axis, tuple) else (axis,)
    return _softmax(_f32(x), tuple(a % x.ndim for a in axes))  # normalized: a hashable, static argument


def _softmax_value(h, axis):
    e = jnp.exp(h - lax.stop_gradient(jnp.max(h, axis=axis, keepdims=True)))
    return e / jnp.sum(e, axis=axis, keepdims=True)


@functools.partial(jax.custom_jvp, nondiff_argnums=(1,))
def _softmax(h, axis):
    return _softmax_value(h, axis)


@_softmax.defjvp
def _softmax_jvp(axis, primals, tangents):
    (h,), (t,) = primals, tangents
    y = _softmax_value(h, axis)
    return y, y * (t - jnp.sum(y * t, axis=axis, keepdims=True))


def cross_entropy(logits, targets):
    """Mean over positions of -log softmax(logits)[target]: `information.cross_entropy_from_logits`, mean.

    logits (..., V) float, targets int (...) -> scalar (in at least float32).  A target outside [0, V)
    makes the mean NaN, eager or jitted, and its gradient NaN too (that function's contract)."""
    return information.cross_entropy_from_logits(logits, targets, reduction="mean")


# ---------------------------------------------------------------------------------------------------
# Attention.


def attention(q, k, v, mask=None, compute_dtype=None, *, key=None, rate=0.0):
    """Scaled dot-product attention, per head:  softmax(q kᵀ / √D + M) v,  with M = -1e30 where mask is
    False (not -inf: a fully masked row stays finite, uniform, instead of becoming NaN).

    q: (..., T, H, D), k, v: (..., S, H, D), mask: bool broadcastable to (..., H, T, S) -> (..., T, H, D).
    Scores and softmax are in at least float32; `compute_dtype` sets the dtype of the two products.
    With a key and rate > 0, dropout is applied to the attention probabilities (training).
    """
    out = _wide(q.dtype)
    cd = compute_dtype or q.dtype
    scale = jnp.asarray(1.0 / math.sqrt(q.shape[-1]), cd)
    op = lambda a: low_precision_operand(a, cd, out)
    s = jnp.einsum("...thd,...shd->...hts", op(q) * scale.astype(op(q).dtype), op(k), preferred_element_type=out)
    if mask is not None:
        # Added, not selected: -1e30 underflows exp to exactly 0 like -inf, but a fully masked row stays
        # finite (uniform), and the backward pass has no select over the (T, S) scores.
        mask = jnp.asarray(mask)
        if jnp.issubdtype(mask.dtype, jnp.inexact):
            # An additive float mask (0 keep, -inf drop) would read as bool the other way round: 0 -> drop.
            raise TypeError(f"attention mask must be bool (True = attend), got dtype {mask.dtype}; "
                            "for an additive float mask M pass M == 0")
        s = s + jnp.where(mask, jnp.zeros((), out), jnp.asarray(-1e30, out)).reshape(
            (1,) * (s.ndim - mask.ndim) + mask.shape)
    p = dropout(key, softmax(s), rate, train=key is not None)
    y = jnp.einsum("...hts,...shd->...thd", op(p), op(v), preferred_element_type=out)
    return y.astype(q.dtype)


def causal_self_attention_init(key, n_embd, n_head, *, n_layer=1, bias=True, dtype=jnp.float32):
    """GPT-2 attention params: c_attn (C, 3C) for q, k, v together, c_proj (C, C) with the residual
    init std 0.02 / sqrt(2·n_layer)."""
    if n_embd % n_head:
        raise ValueError(f"n_embd ({n_embd}) must be divisible by n_head ({n_head})")
    k1, k2 = jax.random.split(key)
    return {"c_attn": linear_init(k1, n_embd, 3 * n_embd, bias=bias, dtype=dtype),
            "c_proj": linear_init(k2, n_embd, n_embd, bias=bias, std=residual_std(n_layer), dtype=dtype)}


def self_attention(params, x, n_head, attend, compute_dtype=None):
    """Multi-head self-attention with a pluggable core: [q, k, v] = x W_attn + b, split into n_head heads;
    (a, aux) = attend(q, k, v);  y = concat_heads(a) W_proj + b.

    x: (..., T, C); attend maps q, k, v (..., T, H, D) to (a (..., T, H, D), aux): causal attention over
    x's own positions for training, attention over a key/value cache for generation (aux = the updated
    cache).  Returns (y (..., T, C), aux)."""
    *lead, T, C = x.shape
    qkv = linear(params["c_attn"], x.reshape(-1, C), compute_dtype)  # (N, 3C), N = prod(lead)·T
    q, k, v = (a.reshape(*lead, T, n_head, C // n_head) for a in jnp.split(qkv, 3, axis=1))  # (..., T, H, D)
    a, aux = attend(q, k, v)
    return linear(params["c_proj"], a.reshape(-1, C), compute_dtype).reshape(*lead, T, C), aux  # (..., T, C)


def causal_attend(compute_dtype=None, *, key=None, rate=0.0):
    """The `attend` of training: q, k, v (..., T, H, D) -> (attention(q, k, v, causal_mask(T)), None), with
    dropout on the attention probabilities when a key is given.  causal_mask is `fungpt.graphs.causal_mask`."""
    def attend(q, k, v):
        mask = graphs.causal_mask(q.shape[-3], k.shape[-3])
        return attention(q, k, v, mask, compute_dtype, key=key, rate=rate), None
    return attend


def causal_self_attention(params, x, n_head, *, key=None, rate=0.0, train=False, compute_dtype=None):
    """Multi-head causal self-attention of one sequence x: (T, C) -> (T, C) (leading batch dims pass).

    [q, k, v] = x W_attn + b;  head h: A_h = softmax(q_h k_hᵀ/√D, causal) v_h;  y = concat_h(A_h) W_proj + b,
    with dropout (train=True, rate > 0, key split in two) on the probabilities and on y."""
    if train and rate > 0 and key is None:
        raise ValueError("causal_self_attention with train=True and rate > 0 needs a PRNG key")
    k1, k2 = jax.random.split(key) if train and rate > 0 else (None, None)
    y, _ = self_attention(params, x, n_head, causal_attend(compute_dtype, key=k1, rate=rate), compute_dtype)
    return dropout(k2, y, rate, train)


def mlp_init(key, n_embd, *, hidden=None, n_layer=1, bias=True, dtype=jnp.float32):
    """GPT-2 MLP params: c_fc (C, 4C), c_proj (4C, C) with the residual init."""
    hidden = hidden or 4 * n_embd
    k1, k2 = jax.random.split(key)
    return {"c_fc": linear_init(k1, n_embd, hidden, bias=bias, dtype=dtype),
            "c_proj": linear_init(k2, hidden, n_embd, bias=bias, std=residual_std(n_layer), dtype=dtype)}


def mlp(params, x, *, key=None, rate=0.0, train=False, approximate=True, compute_dtype=None):
    """MLP(x) = GELU(x W_fc + b_fc) W_proj + b_proj.  x: (..., C) -> (..., C)."""
    h = gelu(linear(params["c_fc"], x, compute_dtype), approximate)
    return dropout(key, linear(params["c_proj"], h, compute_dtype), rate, train)


def block_init(key, n_embd, n_head, *, n_layer=1, bias=True, dtype=jnp.float32):
    """A pre-LN transformer block's params: ln_1, attn, ln_2, mlp."""
    k1, k2 = jax.random.split(key)
    return {"ln_1": layer_norm_init(n_embd, bias=bias, dtype=dtype),
            "attn": causal_self_attention_init(k1, n_embd, n_head, n_layer=n_layer, bias=bias, dtype=dtype),
            "ln_2": layer_norm_init(n_embd, bias=bias, dtype=dtype),
            "mlp": mlp_init(k2, n_embd, n_layer=n_layer, bias=bias, dtype=dtype)}


def transformer_block(params, x, n_head, attend=None, *, key=None, rate=0.0, eps=1e-5, approximate=True,
                      compute_dtype=None):
    """The pre-LN residual block, written once for training, evaluation and generation:

        a, aux = SelfAttn(LN₁(x); attend);   x ← x + Dropout(a);   x ← x + Dropout(MLP(LN₂(x)))

    x: (..., T, C) -> (x (..., T, C), aux).  attend: see `self_attention` (None: causal attention over x's
    own positions, aux None).  A key turns dropout on at `rate`: split in three, for the attention
    probabilities, the attention output and the MLP output."""
    k1, k2, k3 = jax.random.split(key, 3) if key is not None else (None, None, None)
    train = key is not None
    if attend is None:
        attend = causal_attend(compute_dtype, key=k1, rate=rate)
    shape, C = x.shape, x.shape[-1]
    x = x.reshape(-1, C)  # (N, C): everything but the attention core sees one matrix, as XLA:CPU likes best
    h = layer_norm(params["ln_1"], x, eps).reshape(shape)
    y, aux = self_attention(params["attn"], h, n_head, attend, compute_dtype)
    x = x + dropout(k2, y.reshape(-1, C), rate, train=train)
    h = layer_norm(params["ln_2"], x, eps)
    x = x + mlp(params["mlp"], h, key=k3, rate=rate, train=train, approximate=approximate,
                compute_dtype=compute_dtype)
    return x.reshape(shape), aux


def block(params, x, n_head, *, key=None, rate=0.0, train=False, eps=1e-5, approximate=True,
          compute_dtype=None):
    """Pre-LN residual block:  x ← x + Attn(LN₁(x));  x ← x + MLP(LN₂(x)), causal.  x: (T, C) -> (T, C)
    (leading batch dims pass).  `transformer_block` with attend=None; dropout only with train=True."""
    if train and rate > 0 and key is None:
        raise ValueError("block with train=True and rate > 0 needs a PRNG key")
    key = key if train and rate > 0 else None
    return transformer_block(params, x, n_head, key=key, rate=rate, eps=eps, approximate=approximate,
                             compute_dtype=compute_dtype)[0]
