"""fungpt.nn layers against numpy/scipy formulas written here, initializer statistics against their
closed forms, and gradients with fungpt.grad against jax.grad."""
import math

import chex
import hypothesis.extra.numpy as hnp
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import erf
from scipy.special import log_softmax as sp_log_softmax
from scipy.special import softmax as sp_softmax

import fungpt
from fungpt import nn
from tests.helpers import LAYER

DTYPES = [np.dtype("float32"), np.dtype("float64")]


def _rng(seed=0):
    return np.random.default_rng(seed)


def _params(tree, seed=0, scale=0.5):
    # Random values for every leaf (init has zero biases and unit gains, which would hide terms).
    rng = _rng(seed)
    return jax.tree_util.tree_map(lambda a: jnp.asarray(scale * rng.standard_normal(a.shape), a.dtype), tree)


def _np_ln(x, w, b, eps=1e-5):
    mu = x.mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(((x - mu) ** 2).mean(-1, keepdims=True) + eps) * w + b


def _np_attention(q, k, v, mask):
    # q (T, H, D), k, v (S, H, D): one head at a time, masked entries removed from the softmax.
    out = np.zeros_like(q)
    for h in range(q.shape[1]):
        s = q[:, h] @ k[:, h].T / math.sqrt(q.shape[-1])
        s = np.where(mask, s, -np.inf)
        out[:, h] = sp_softmax(s, axis=-1) @ v[:, h]
    return out


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(5, 4), (2, 3, 4)])
def test_linear(dtype, shape, key):
    p = _params(nn.linear_init(key, 4, 6, dtype=dtype))
    x = _rng(1).standard_normal(shape).astype(dtype)
    y = jax.jit(nn.linear)(p, jnp.asarray(x))
    chex.assert_shape(y, (*shape[:-1], 6))
    chex.assert_type(y, dtype)
    np.testing.assert_allclose(y, x @ np.asarray(p["weight"]) + np.asarray(p["bias"]), rtol=LAYER[dtype])
    assert "bias" not in nn.linear_init(key, 4, 6, bias=False)


def test_linear_bfloat16_compute_accumulates_in_float32(key):
    p = _params(nn.linear_init(key, 64, 8, dtype=np.float32))
    x = jnp.asarray(_rng(2).standard_normal((3, 64)), jnp.float32)
    y = nn.linear(p, x, compute_dtype="bfloat16")
    chex.assert_type(y, jnp.float32)
    ref = np.asarray(x, np.float64) @ np.asarray(p["weight"], np.float64) + np.asarray(p["bias"])
    np.testing.assert_allclose(y, ref, rtol=3e-2, atol=3e-2)  # bf16 inputs: ~3 significant digits


@pytest.mark.parametrize("native", [False, *([True] if nn._native_mixed_products() else [])])
def test_mixed_precision_products_are_exact_bf16_products_accumulated_in_float32(native, monkeypatch):
    # Native bf16 x bf16 -> f32 products and the fallback for older XLA:CPU (bf16-rounded operands
    # multiplied in f32) both equal the float64 product of the bf16-rounded inputs up to f32 accumulation.
    monkeypatch.setattr(nn, "_native_mixed_products", lambda: native)
    x = jnp.asarray(_rng(30).standard_normal((5, 64)), jnp.float32)
    w = jnp.asarray(_rng(31).standard_normal((64, 7)), jnp.float32)
    rounded = lambda a: np.asarray(jnp.asarray(a, jnp.bfloat16), np.float64)
    y = jax.jit(lambda x, w: nn.matmul(x, w, "bfloat16"))(x, w)
    chex.assert_type(y, jnp.float32)
    np.testing.assert_allclose(y, rounded(x) @ rounded(w), rtol=1e-5, atol=1e-5)
    q, k, v = (jnp.asarray(_rng(32 + i).standard_normal((2, 6, 2, 8)), jnp.float32) for i in range(3))
    att = nn.attention(q, k, v, jnp.asarray(np.tril(np.ones((6, 6), bool))), "bfloat16")
    np.testing.assert_allclose(att, _np_attention_batched(q, k, v), rtol=3e-2, atol=3e-2)


def _np_attention_batched(q, k, v):
    mask = np.tril(np.ones((q.shape[1], q.shape[1]), bool))
    return np.stack([_np_attention(*(np.asarray(a[b], np.float64) for a in (q, k, v)), mask)
                     for b in range(q.shape[0])])


def test_embedding(key):
    p = nn.embedding_init(key, 10, 3)
    ids = np.array([[0, 9], [4, 4]])
    np.testing.assert_array_equal(nn.embedding(p, ids), np.asarray(p["weight"])[ids])


@pytest.mark.parametrize("jit", [False, True])
def test_embedding_of_an_out_of_range_id_is_nan_not_a_clamped_or_wrapped_row(jit, key):
    p = nn.embedding_init(key, 300, 3)
    f = jax.jit(nn.embedding) if jit else nn.embedding
    got = np.asarray(f(p, jnp.array([299, 300, -1, 5])))
    np.testing.assert_array_equal(got[[0, 3]], np.asarray(p["weight"])[[299, 5]])
    assert np.isnan(got[[1, 2]]).all()  # 300 is not clamped to 299, -1 does not wrap to 299
    small = nn.embedding_init(key, 200, 2)  # narrow dtypes: the table size does not fit int8
    got = np.asarray(f(small, jnp.array([-1, 127, 5], jnp.int8)))
    assert np.isnan(got[0]).all() and np.isfinite(got[1:]).all()


@pytest.mark.parametrize("dtype", DTYPES)
def test_layer_norm_and_rms_norm(dtype):
    x = (3 + 2 * _rng(3).standard_normal((4, 7, 16))).astype(dtype)
    p = _params(nn.layer_norm_init(16, dtype=dtype), 4)
    np.testing.assert_allclose(nn.layer_norm(p, jnp.asarray(x)),
                               _np_ln(x.astype(np.float64), np.asarray(p["weight"]), np.asarray(p["bias"])),
                               rtol=LAYER[dtype], atol=LAYER[dtype])
    r = _params(nn.rms_norm_init(16, dtype=dtype), 5)
    x64 = x.astype(np.float64)
    want = x64 / np.sqrt((x64**2).mean(-1, keepdims=True) + 1e-6) * np.asarray(r["weight"])
    np.testing.assert_allclose(nn.rms_norm(r, jnp.asarray(x)), want, rtol=LAYER[dtype], atol=LAYER[dtype])


@settings(max_examples=20, deadline=None)
@given(hnp.arrays(np.float64, (3, 8), elements=st.floats(-1e3, 1e3)))
def test_layer_norm_standardizes(x):
    y = np.asarray(nn.layer_norm(nn.layer_norm_init(8, dtype=jnp.float64), jnp.asarray(x), eps=1e-12))
    spread = x.std(-1) > 1e-3
    np.testing.assert_allclose(y.mean(-1)[spread], 0, atol=1e-6)
    np.testing.assert_allclose(y.std(-1)[spread], 1, rtol=1e-4)


def test_layer_norm_bfloat16_stats_in_float32():
    x = jnp.asarray(_rng(6).standard_normal((2, 128)) + 100, jnp.bfloat16)  # large mean, small spread
    y = nn.layer_norm(nn.layer_norm_init(128, dtype=jnp.bfloat16), x)
    chex.assert_type(y, jnp.bfloat16)
    xf = np.asarray(x, np.float64)
    np.testing.assert_allclose(np.asarray(y, np.float64), _np_ln(xf, 1.0, 0.0), atol=5e-2)


@pytest.mark.parametrize("dtype", DTYPES)
def test_gelu(dtype):
    x = np.linspace(-6, 6, 101).astype(dtype)
    x64 = x.astype(np.float64)
    exact = 0.5 * x64 * (1 + erf(x64 / math.sqrt(2)))
    tanh = 0.5 * x64 * (1 + np.tanh(math.sqrt(2 / math.pi) * (x64 + 0.044715 * x64**3)))
    np.testing.assert_allclose(nn.gelu(jnp.asarray(x), approximate=False), exact, rtol=LAYER[dtype], atol=LAYER[dtype])
    np.testing.assert_allclose(nn.gelu(jnp.asarray(x)), tanh, rtol=LAYER[dtype], atol=LAYER[dtype])


def _np_gelu_tanh_slope(x):
    # d/dx of x/2 (1 + tanh(u)), u = c (x + a x³), in float64 with tanh'(u) = 1 - tanh(u)²
    c, a = math.sqrt(2 / math.pi), 0.044715
    t = np.tanh(c * (x + a * x**3))
    return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * c * (1 + 3 * a * x * x)


@pytest.mark.parametrize("dtype", [np.float16, np.float32])
def test_gelu_tanh_gradient_is_finite_for_large_inputs(dtype):
    # x (1 + 3a x²) overflows (float16 from |x| = 256) while 1 - tanh² is 0: the slope was 0 · inf = NaN.
    x = np.array([-3e4, -300.0, -19.0, -3.0, 0.0, 2.5, 19.5, 300.0, 6e4], dtype)
    if dtype == np.float32:
        x = np.concatenate([x, np.array([1e20, -1e20, 3e38], dtype)])
    g = jax.vmap(jax.grad(lambda v: nn.gelu(v)))(jnp.asarray(x))
    with np.errstate(over="ignore", invalid="ignore"):
        want = np.where(np.abs(x.astype(np.float64)) > 20, (x > 0).astype(np.float64),
                        _np_gelu_tanh_slope(np.clip(x.astype(np.float64), -20, 20)))
    np.testing.assert_allclose(np.asarray(g, np.float64), want, rtol=2e-3, atol=2e-3)


def test_cross_entropy_with_narrow_integer_targets():
    # uint8 / int8 targets with V = 300 > 256: the class index must not wrap around in the targets' dtype
    # (an iota in uint8 made class 299 equal 43, so target 43 counted two classes).
    x = _rng(3).standard_normal((4, 300))
    t = np.array([43, 0, 127, 255])
    want = -np.mean(sp_log_softmax(x, -1)[np.arange(4), t])
    for dt in (np.uint8, np.int16, np.int32):
        np.testing.assert_allclose(nn.cross_entropy(jnp.asarray(x), jnp.asarray(t.astype(dt))), want,
                                   rtol=1e-12, err_msg=str(np.dtype(dt)))
    np.testing.assert_allclose(nn.cross_entropy(jnp.asarray(x[:3]), jnp.asarray(t[:3].astype(np.int8))),
                               -np.mean(sp_log_softmax(x[:3], -1)[np.arange(3), t[:3]]), rtol=1e-12)
    with pytest.raises(TypeError, match="integer"):
        nn.cross_entropy(jnp.asarray(x), jnp.asarray(t.astype(np.float64)))


@pytest.mark.parametrize("jit", [False, True])
def test_cross_entropy_with_a_bad_target_is_nan_and_so_is_its_gradient(jit):
    # The one contract (information.cross_entropy_from_logits): a target outside [0, V) is NaN, eager or
    # jitted; all targets bad is NaN too (not -0.0), and the gradient is NaN, not a silent 0.
    x = jnp.asarray(_rng(4).standard_normal((4, 7)))
    ce = jax.jit(nn.cross_entropy) if jit else nn.cross_entropy
    good = np.array([0, 6, 3, 2])
    want = -np.mean(sp_log_softmax(np.asarray(x), -1)[np.arange(4), good])
    np.testing.assert_allclose(ce(x, jnp.asarray(good)), want, rtol=1e-12)
    for bad in ([0, 7, 3, 2], [0, -1, 3, 2], [7, 7, -1, 99]):
        t = jnp.asarray(bad)
        assert np.isnan(ce(x, t)), bad
        for g in (jax.grad(nn.cross_entropy), fungpt.grad(nn.cross_entropy)):
            gx = np.asarray((jax.jit(g) if jit else g)(x, t))
            assert np.isnan(gx).any(), bad
    assert np.isnan(ce(x[:, :200], jnp.asarray(np.array([1, 200, 3, 4], np.uint8))))  # narrow dtype: 200 >= 7


def test_attention_refuses_an_additive_float_mask():
    q = k = v = jnp.ones((2, 1, 3))
    with pytest.raises(TypeError, match="bool"):
        nn.attention(q, k, v, jnp.zeros((2, 2)))  # 0 = "keep" in the additive convention, False as bool


def test_dropout(key):
    x = jnp.ones((200, 50))
    np.testing.assert_array_equal(nn.dropout(key, x, 0.3, train=False), x)
    np.testing.assert_array_equal(nn.dropout(None, x, 0.0), x)
    y = np.asarray(nn.dropout(key, x, 0.3))
    kept = y != 0
    np.testing.assert_allclose(y[kept], 1 / 0.7, rtol=1e-6)  # inverted dropout keeps E[y] = x
    n = kept.size  # kept ~ Binomial(n, 0.7): within 5 sigma
    assert abs(kept.sum() - 0.7 * n) < 5 * math.sqrt(n * 0.7 * 0.3)
    np.testing.assert_array_equal(nn.dropout(key, x, 0.3), y)
    with pytest.raises(ValueError, match="PRNG key"):
        nn.dropout(None, x, 0.3)
    with pytest.raises(ValueError, match="rate"):
        nn.dropout(key, x, 1.0)


def test_softmax_family_is_stable_and_matches_scipy():
    x = np.concatenate([_rng(7).standard_normal((3, 9)), [[1e4, -1e4, 0, 1, 2, 3, 4, 5, 6]]])
    np.testing.assert_allclose(nn.softmax(jnp.asarray(x)), sp_softmax(x, -1), rtol=1e-12, atol=1e-300)
    np.testing.assert_allclose(fungpt.information.log_softmax(jnp.asarray(x)), sp_log_softmax(x, -1), rtol=1e-12)
    np.testing.assert_allclose(fungpt.information.log_softmax(jnp.asarray(x.T), axis=0), sp_log_softmax(x.T, 0),
                               rtol=1e-12)
    t = np.array([0, 3, 8, 1])
    want = -np.mean(sp_log_softmax(x, -1)[np.arange(4), t])
    np.testing.assert_allclose(nn.cross_entropy(jnp.asarray(x), jnp.asarray(t)), want, rtol=1e-12)


def test_causal_mask_is_lower_triangular():
    # the one causal mask is the graphs chapter's; nn's attention uses its rectangular (KV cache) form
    np.testing.assert_array_equal(fungpt.graphs.causal_mask(5), np.tril(np.ones((5, 5), bool)))
    np.testing.assert_array_equal(fungpt.graphs.causal_mask(2, 4), np.tril(np.ones((4, 4), bool))[2:])
    with pytest.raises(ValueError, match="S must be"):
        fungpt.graphs.causal_mask(4, 2)
    assert not hasattr(nn, "causal_mask") and not hasattr(nn, "log_softmax")


@pytest.mark.parametrize("dtype", DTYPES)
def test_attention_matches_masked_softmax_formula(dtype):
    rng = _rng(8)
    q, k, v = (rng.standard_normal((6, 2, 4)).astype(dtype) for _ in range(3))
    mask = np.tril(np.ones((6, 6), bool))
    got = nn.attention(*map(jnp.asarray, (q, k, v)), jnp.asarray(mask))
    np.testing.assert_allclose(got, _np_attention(q, k, v, mask), rtol=LAYER[dtype], atol=LAYER[dtype])


def test_fully_masked_row_stays_finite():
    q = k = v = jnp.ones((2, 1, 3))
    y = nn.attention(q, k, v, jnp.zeros((2, 2), bool))
    assert np.isfinite(np.asarray(y)).all()  # a large finite bias, not -inf: no 0/0


def _chain_rule_standardize(h, eps):
    # The plain formula: its derivatives come from the chain rule through mean, var and rsqrt.
    d = h - jnp.mean(h, axis=-1, keepdims=True)
    return d / jnp.sqrt(jnp.mean(d * d, axis=-1, keepdims=True) + eps)


def _chain_rule_softmax(h, axis):
    e = jnp.exp(h - jnp.max(h, axis=axis, keepdims=True))
    return e / jnp.sum(e, axis=axis, keepdims=True)


@pytest.mark.parametrize("name, ours, plain", [
    ("standardize", lambda h: nn.standardize(h, 1e-3), lambda h: _chain_rule_standardize(h, 1e-3)),
    ("softmax last", nn.softmax, lambda h: _chain_rule_softmax(h, -1)),
    ("softmax axis 1", lambda h: nn.softmax(h, axis=1), lambda h: _chain_rule_softmax(h, 1)),
    ("softmax axes (0, -1)", lambda h: nn.softmax(h, axis=(0, -1)), lambda h: _chain_rule_softmax(h, (0, 2))),
    ("softmax all axes", lambda h: nn.softmax(h, axis=None), lambda h: _chain_rule_softmax(h, None)),
    ("gelu tanh", nn.gelu,
     lambda h: 0.5 * h * (1 + jnp.tanh(math.sqrt(2 / math.pi) * (h + 0.044715 * h**3)))),
    ("gelu exact", lambda h: nn.gelu(h, approximate=False),
     lambda h: 0.5 * h * (1 + jax.scipy.special.erf(h / math.sqrt(2)))),
])
def test_closed_form_derivatives_match_the_chain_rule(name, ours, plain):
    # standardize, softmax and gelu carry hand-written JVPs; JAX's derivatives of the plain formulas are the
    # independent oracle, to second order, through both engines.
    h = jnp.asarray(2 + 3 * _rng(20).standard_normal((3, 5, 16)))
    t = jnp.asarray(_rng(21).standard_normal(h.shape))
    w = jnp.asarray(_rng(22).standard_normal(h.shape))
    np.testing.assert_allclose(ours(h), plain(h), rtol=1e-12, atol=1e-12)
    want = jax.jvp(plain, (h,), (t,))[1]
    np.testing.assert_allclose(jax.jvp(ours, (h,), (t,))[1], want, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(jax.jit(lambda h, t: fungpt.jvp(ours, (h,), (t,))[1])(h, t), want, rtol=1e-10,
                               atol=1e-12)
    loss = lambda f: lambda h: jnp.sum(jnp.sin(f(h)) * w)
    want = jax.grad(loss(plain))(h)
    np.testing.assert_allclose(jax.grad(loss(ours))(h), want, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(jax.jit(fungpt.grad(loss(ours)))(h), want, rtol=1e-10, atol=1e-12)
    # second order: a Hessian-vector product (forward over reverse) of the closed-form rule
    hvp = lambda f: jax.jvp(jax.grad(loss(f)), (h,), (t,))[1]
    np.testing.assert_allclose(hvp(ours), hvp(plain), rtol=1e-8, atol=1e-10)
    ours_hvp = jax.jit(lambda h, t: fungpt.jvp(fungpt.grad(loss(ours)), (h,), (t,))[1])(h, t)
    np.testing.assert_allclose(ours_hvp, hvp(plain), rtol=1e-8, atol=1e-10)


def test_causal_self_attention_and_block(key):
    C, H, T = 8, 2, 5
    csa, block = jax.jit(nn.causal_self_attention, static_argnums=2), jax.jit(nn.block, static_argnums=2)
    p = _params(nn.block_init(key, C, H, n_layer=2, dtype=jnp.float64), 9, 0.3)
    x = _rng(10).standard_normal((T, C))
    a = p["attn"]
    qkv = x @ np.asarray(a["c_attn"]["weight"]) + np.asarray(a["c_attn"]["bias"])
    q, k, v = (z.reshape(T, H, C // H) for z in np.split(qkv, 3, axis=-1))
    att = _np_attention(q, k, v, np.tril(np.ones((T, T), bool))).reshape(T, C)
    att = att @ np.asarray(a["c_proj"]["weight"]) + np.asarray(a["c_proj"]["bias"])
    np.testing.assert_allclose(csa(a, jnp.asarray(x), H), att, rtol=1e-10)
    # the block: x + attn(ln1 x), then + mlp(ln2 x)
    ln = lambda name, z: _np_ln(z, np.asarray(p[name]["weight"]), np.asarray(p[name]["bias"]))
    m = p["mlp"]
    h1 = x + csa(a, jnp.asarray(ln("ln_1", x)), H)
    h1 = np.asarray(h1)
    hid = ln("ln_2", h1) @ np.asarray(m["c_fc"]["weight"]) + np.asarray(m["c_fc"]["bias"])
    hid = 0.5 * hid * (1 + np.tanh(math.sqrt(2 / math.pi) * (hid + 0.044715 * hid**3)))
    want = h1 + hid @ np.asarray(m["c_proj"]["weight"]) + np.asarray(m["c_proj"]["bias"])
    got = block(p, jnp.asarray(x), H)
    np.testing.assert_allclose(got, want, rtol=1e-10)
    # causality: changing the last token changes no earlier output
    x2 = x.copy()
    x2[-1] += 1.0
    got2 = block(p, jnp.asarray(x2), H)
    np.testing.assert_allclose(got2[:-1], got[:-1], rtol=1e-12)
    assert not np.allclose(got2[-1], got[-1])
    # batching: vmap of one sequence equals leading batch dims
    xb = jnp.asarray(_rng(11).standard_normal((3, T, C)))
    np.testing.assert_allclose(block(p, xb, H), jax.jit(jax.vmap(lambda z: nn.block(p, z, H)))(xb), rtol=1e-12)


def test_transformer_block_with_a_custom_attend_is_the_block(key):
    # The one block: a hand-written attend (causal softmax per head, in numpy-free jnp) and its aux pass
    # through; a KV-cache-like attend over the last T of S keys sees the same mask as the square one.
    C, H, T = 8, 2, 5
    p = _params(nn.block_init(key, C, H, dtype=jnp.float64), 21, 0.3)
    x = jnp.asarray(_rng(22).standard_normal((2, T, C)))

    def attend(q, k, v):
        s = jnp.einsum("bthd,bshd->bhts", q, k) / math.sqrt(C // H)
        s = jnp.where(jnp.tril(jnp.ones((T, T), bool)), s, -jnp.inf)
        return jnp.einsum("bhts,bshd->bthd", jax.nn.softmax(s, -1), v), "aux"

    y, aux = nn.transformer_block(p, x, H, attend)
    assert aux == "aux"
    np.testing.assert_allclose(y, nn.block(p, x, H), rtol=1e-12, atol=1e-12)
    y0, aux0 = nn.transformer_block(p, x, H)
    assert aux0 is None
    np.testing.assert_allclose(y0, y, rtol=1e-12, atol=1e-12)


def test_block_gradients_fungpt_vs_jax(key):
    p = _params(nn.block_init(key, 8, 2, dtype=jnp.float64), 12, 0.3)
    x = jnp.asarray(_rng(13).standard_normal((4, 8)))
    f = lambda p, x: jnp.sum(jnp.tanh(nn.block(p, x, 2)))
    ours = jax.jit(fungpt.grad(f, argnums=(0, 1)))(p, x)
    chex.assert_trees_all_close(ours, jax.jit(jax.grad(f, argnums=(0, 1)))(p, x), rtol=1e-6, atol=1e-12)


@pytest.mark.parametrize("init, var, bound", [
    (nn.xavier_uniform, lambda i, o: 2 / (i + o), lambda i, o: math.sqrt(6 / (i + o))),
    (nn.xavier_normal, lambda i, o: 2 / (i + o), None),
    (nn.kaiming_normal, lambda i, o: 2 / i, None),
    (nn.kaiming_uniform, lambda i, o: 2 / i, lambda i, o: math.sqrt(6 / i)),
])
def test_initializer_variances(init, var, bound, key):
    i, o = 300, 200
    w = np.asarray(init(key, (i, o), jnp.float64))
    # sample variance of n draws: relative standard error sqrt(2/n) for a normal, less for a uniform
    np.testing.assert_allclose(w.var(), var(i, o), rtol=5 * math.sqrt(2 / w.size))
    np.testing.assert_allclose(w.mean(), 0, atol=5 * math.sqrt(var(i, o) / w.size))
    if bound is not None:
        assert np.abs(w).max() <= bound(i, o)
    with pytest.raises(ValueError, match="rank"):
        init(key, (5,), jnp.float64)


def test_residual_std():
    assert nn.residual_std(12) == pytest.approx(0.02 / math.sqrt(24))
    p = nn.mlp_init(jax.random.key(0), 64, n_layer=8, dtype=jnp.float64)
    np.testing.assert_allclose(np.std(np.asarray(p["c_proj"]["weight"])), 0.02 / 4, rtol=0.05)
    with pytest.raises(ValueError, match="n_layer"):
        nn.residual_std(0)


def _experiment(name):
    import importlib.util
    import pathlib

    path = pathlib.Path(__file__).parents[1] / "experiments" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"experiments_{name}", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.slow
def test_mlp_digits_experiment_quick():
    exp = _experiment("mlp_digits")
    res = exp.main(["--quick"])
    assert res["grad_check_max_rel_diff"] < 1e-4
    assert res["test_acc"][-1] > 0.8  # after 2 epochs
    # the hand-derived backward pass, in float64 here, against jax.grad as a second oracle
    X = jnp.asarray(_rng(20).standard_normal((16, 64)))
    y = jnp.asarray(_rng(21).integers(0, 10, 16))
    p = jax.tree_util.tree_map(lambda a: a.astype(jnp.float64), exp.init(jax.random.key(0)))
    hand, ref = jax.jit(lambda p, X, y: (exp.manual_grad(p, X, y), jax.grad(exp.loss)(p, X, y)))(p, X, y)
    chex.assert_trees_all_close(hand, ref, rtol=1e-10, atol=1e-14)
