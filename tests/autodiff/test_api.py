"""The public transforms behave like JAX's: argnums, has_aux, pytrees, integer inputs, errors, and
composition with jit, vmap and each other. Model-level losses: MLP, attention + layer norm, a small
GPT-style loss over nested dicts, an RNN via scan."""
import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

import fungpt
from fungpt.autodiff import rules
from tests.autodiff.oracle import TOL64, assert_trees_close, check_vjp


def mlp_loss(params, x, y):
    h = x
    for layer in params["layers"]:
        h = jnp.tanh(h @ layer["w"] + layer["b"][None])
    logits = h @ params["out"]["w"]
    return jnp.mean(jax.nn.logsumexp(logits, -1) - jnp.take_along_axis(logits, y[:, None], -1)[:, 0])


def init_mlp(key, sizes, n_out, dtype=jnp.float64):
    keys = jax.random.split(key, len(sizes) + 1)
    layers = [{"w": jax.random.normal(k, (a, b), dtype) / np.sqrt(a), "b": jnp.zeros((b,), dtype)}
              for k, a, b in zip(keys, sizes[:-1], sizes[1:], strict=False)]
    return {"layers": layers, "out": {"w": jax.random.normal(keys[-1], (sizes[-1], n_out), dtype)}}


def layer_norm(x, g, b):
    mu = jnp.mean(x, -1, keepdims=True)
    var = jnp.mean((x - mu) ** 2, -1, keepdims=True)
    return (x - mu) * lax.rsqrt(var + 1e-5) * g[None] + b[None]


def attention(p, x, n_head=2):
    t, c = x.shape
    h = layer_norm(x, p["ln"]["g"], p["ln"]["b"])
    q, k, v = jnp.split(h @ p["qkv"], 3, axis=-1)
    split = lambda z: z.reshape(t, n_head, c // n_head).transpose(1, 0, 2)  # (H, T, D)
    q, k, v = split(q), split(k), split(v)
    att = q @ k.transpose(0, 2, 1) / jnp.sqrt(jnp.asarray(c // n_head, x.dtype))
    mask = jnp.tril(jnp.ones((t, t), bool))
    att = jnp.where(mask, att, jnp.finfo(x.dtype).min)
    att = jax.nn.softmax(att, -1)
    y = (att @ v).transpose(1, 0, 2).reshape(t, c)
    return x + y @ p["proj"]


def gpt_loss(params, tokens, targets):
    x = params["wte"][tokens] + params["wpe"][: tokens.shape[0]]  # (T, C)

    def block(x, p):
        x = attention(p["attn"], x)
        h = layer_norm(x, p["ln2"]["g"], p["ln2"]["b"])
        return x + jax.nn.gelu(h @ p["fc"]) @ p["fc2"], None

    x, _ = lax.scan(block, x, params["h"])
    logits = layer_norm(x, params["ln_f"]["g"], params["ln_f"]["b"]) @ params["wte"].T
    logp = jax.nn.log_softmax(logits, -1)
    return -jnp.mean(jnp.take_along_axis(logp, targets[:, None], -1))


def init_gpt(key, vocab=11, t=6, c=8, n_layer=2, dtype=jnp.float64):
    ks = iter(jax.random.split(key, 16))
    n = lambda *s: 0.3 * jax.random.normal(next(ks), s, dtype)
    ln = lambda *lead: {"g": jnp.ones((*lead, c), dtype), "b": jnp.zeros((*lead, c), dtype)}
    return {"wte": n(vocab, c), "wpe": n(t, c), "ln_f": ln(),
            "h": {"attn": {"ln": ln(n_layer), "qkv": n(n_layer, c, 3 * c), "proj": n(n_layer, c, c)},
                  "ln2": ln(n_layer), "fc": n(n_layer, c, 4 * c), "fc2": n(n_layer, 4 * c, c)}}


@pytest.fixture(scope="module")
def mlp_case():
    key = jax.random.key(0)
    params = init_mlp(key, [5, 7, 6], 3)
    x = jax.random.normal(jax.random.key(1), (4, 5), jnp.float64)
    y = jnp.array([0, 2, 1, 2])
    return params, x, y


@pytest.fixture(scope="module")
def gpt_case():
    params = init_gpt(jax.random.key(2))
    tokens = jnp.array([1, 4, 2, 9, 0, 3])
    return params, tokens, jnp.roll(tokens, -1)


def test_mlp_grad_jit_vmap(mlp_case):
    params, x, y = mlp_case
    ref = jax.jit(jax.grad(mlp_loss))(params, x, y)
    assert_trees_close(fungpt.grad(mlp_loss)(params, x, y), ref, TOL64, "grad")
    assert_trees_close(jax.jit(fungpt.grad(mlp_loss))(params, x, y), ref, TOL64, "jit(grad)")
    assert_trees_close(fungpt.grad(jax.jit(mlp_loss))(params, x, y), ref, TOL64, "grad(jit)")
    per_example = lambda g: jax.jit(jax.vmap(g(lambda p, xi, yi: mlp_loss(p, xi[None], yi[None])), (None, 0, 0)))
    assert_trees_close(per_example(fungpt.grad)(params, x, y), per_example(jax.grad)(params, x, y), TOL64,
                       "vmap(grad)")


def test_mlp_second_order(mlp_case):
    params, x, y = mlp_case
    w = params["layers"][0]["w"]
    f = lambda w: mlp_loss({**params, "layers": [{**params["layers"][0], "w": w}, *params["layers"][1:]]}, x, y)
    # all jitted: op-by-op, a 35x35 Hessian dispatches thousands of tiny programs (eager first order is
    # test_mlp_grad_jit_vmap's)
    ref = jax.jit(jax.hessian(f))(w)
    assert_trees_close(jax.jit(fungpt.hessian(f))(w), ref, 1e-9, "hessian")
    g2 = lambda w: jnp.sum(fungpt.grad(f)(w) ** 2)
    r2 = lambda w: jnp.sum(jax.grad(f)(w) ** 2)
    ref2 = jax.jit(jax.grad(r2))(w)
    assert_trees_close(jax.jit(fungpt.grad(g2))(w), ref2, 1e-9, "grad(grad)")
    assert_trees_close(jax.jit(jax.grad(g2))(w), ref2, 1e-9, "jax.grad(fungpt.grad)")


def test_attention_with_layer_norm(key):
    c, t = 8, 5
    ks = jax.random.split(key, 4)
    p = {"ln": {"g": jnp.ones(c) + 0.1 * jax.random.normal(ks[0], (c,)), "b": jnp.zeros(c)},
         "qkv": 0.3 * jax.random.normal(ks[1], (c, 3 * c)), "proj": 0.3 * jax.random.normal(ks[2], (c, c))}
    x = jax.random.normal(ks[3], (t, c))
    check_vjp(lambda p, x: attention(p, x) ** 2, (p, x), key)
    f = lambda p, x: jnp.sum(jnp.sin(attention(p, x)))
    assert_trees_close(jax.jit(fungpt.grad(f, argnums=(0, 1)))(p, x), jax.jit(jax.grad(f, argnums=(0, 1)))(p, x),
                       TOL64)


def test_gpt_style_loss(gpt_case):
    params, tokens, targets = gpt_case
    ref = jax.jit(jax.grad(gpt_loss))(params, tokens, targets)  # jitted oracle: eager dispatch costs seconds
    assert_trees_close(jax.jit(fungpt.grad(gpt_loss))(params, tokens, targets), ref, TOL64, "gpt grad")
    batch = jnp.stack([tokens, tokens[::-1]])
    pe = lambda g: jax.jit(jax.vmap(g(gpt_loss), (None, 0, 0)))(params, batch, jnp.roll(batch, -1, axis=1))
    assert_trees_close(pe(fungpt.grad), pe(jax.grad), TOL64, "per-example")
    # float32: the same code, looser named tolerance
    p32 = jax.tree_util.tree_map(lambda a: a.astype(jnp.float32), params)
    ours, theirs = (jax.jit(g(gpt_loss))(p32, tokens, targets) for g in (fungpt.grad, jax.grad))
    assert_trees_close(ours, theirs, 2e-4, "gpt grad f32")


def test_gpt_grad_of_grad(gpt_case):
    params, tokens, targets = gpt_case
    f = lambda wte: gpt_loss({**params, "wte": wte}, tokens, targets)
    g = lambda wte: jnp.sum(fungpt.grad(f)(wte) ** 2)
    r = lambda wte: jnp.sum(jax.grad(f)(wte) ** 2)
    assert_trees_close(jax.jit(fungpt.grad(g))(params["wte"]), jax.jit(jax.grad(r))(params["wte"]), 1e-9)


def test_argnums_has_aux_value_and_grad(key):
    x = jax.random.normal(key, (3,))
    y = {"a": jnp.arange(2.0), "b": (jnp.ones(3), 2.0)}

    def f(x, y, scale):
        out = jnp.sum(x * y["b"][0]) * y["b"][1] + jnp.sum(y["a"] ** 2) * scale
        return out, {"aux": x * 2}

    for argnums in (0, 1, (0, 1), (1, 0), -2):
        ours = fungpt.grad(f, argnums=argnums, has_aux=True)(x, y, 3.0)
        theirs = jax.grad(f, argnums=argnums, has_aux=True)(x, y, 3.0)
        assert_trees_close(ours, theirs, TOL64, f"argnums={argnums}")
    (v, aux), g = fungpt.value_and_grad(f, argnums=(0, 1), has_aux=True)(x, y, 3.0)
    (rv, raux), rg = jax.value_and_grad(f, argnums=(0, 1), has_aux=True)(x, y, 3.0)
    assert_trees_close((v, aux, g), (rv, raux, rg), TOL64)


def test_jacobians_with_pytrees(key):
    x = {"u": jax.random.normal(key, (2, 3)), "v": jnp.arange(2.0)}
    f = lambda x: {"s": jnp.sin(x["u"]) * x["v"][:, None], "t": jnp.sum(x["u"] ** 2) * x["v"]}
    J = jax.jit  # one program per Jacobian instead of op-by-op dispatch
    assert_trees_close(J(fungpt.jacrev(f))(x), J(jax.jacrev(f))(x), TOL64, "jacrev")
    assert_trees_close(J(fungpt.jacfwd(f))(x), J(jax.jacfwd(f))(x), TOL64, "jacfwd")
    g = lambda a, b: jnp.sum(jnp.sin(a) * b ** 2)
    a, b = jnp.arange(3.0), jnp.ones(3) * 0.5
    assert_trees_close(J(fungpt.hessian(g, argnums=(0, 1)))(a, b), J(jax.hessian(g, argnums=(0, 1)))(a, b), TOL64)


def test_vjp_jvp_signatures_and_integers(key):
    x, n = jax.random.normal(key, (3,)), jnp.array([1, 2, 3])
    f = lambda x, n: x * n.astype(x.dtype)
    out, pull = fungpt.vjp(f, x, n)
    rout, rpull = jax.vjp(f, x, n)
    ct = jnp.ones(3)
    assert_trees_close((out, pull(ct)), (rout, rpull(ct)), TOL64)
    assert pull(ct)[1].dtype == jax.dtypes.float0
    t = (jnp.ones(3), np.zeros(3, jax.dtypes.float0))
    assert_trees_close(fungpt.jvp(f, (x, n), t), jax.jvp(f, (x, n), t), TOL64)
    with pytest.raises(TypeError, match="grad requires real- or complex-valued inputs"):
        fungpt.grad(lambda n: jnp.sum(n * 1.0))(n)
    g = fungpt.grad(lambda x, n: jnp.sum(f(x, n)), argnums=1, allow_int=True)(x, n)
    assert g.dtype == jax.dtypes.float0 and g.shape == (3,)


def test_errors_match_jax(key):
    x = jax.random.normal(key, (3,))
    with pytest.raises(TypeError, match="Gradient only defined for scalar-output functions"):
        fungpt.grad(jnp.sin)(x)
    with pytest.raises(TypeError, match="grad requires real-valued outputs"):
        fungpt.grad(lambda x: jnp.sum(x).astype(jnp.int32))(x)
    with pytest.raises(ValueError, match="argnums"):
        fungpt.grad(lambda x: jnp.sum(x), argnums=3)(x)
    _, pull = fungpt.vjp(jnp.sin, x)
    with pytest.raises(ValueError, match="unexpected JAX type"):
        pull(jnp.ones(4))


def _raised(fn):
    try:
        fn()
    except Exception as e:  # the oracle's exception, whatever it is
        return e
    return None


def test_wrong_cotangent_and_tangent_types_raise_like_jax():
    # Cotangents and tangents are never cast: a float16 cotangent for a float32 output, or a float64
    # tangent for a float32 primal, raises JAX's error type (jax.vjp: ValueError, jax.jvp: TypeError for
    # the dtype and ValueError for the shape) instead of computing something in another precision.
    x = jnp.arange(3.0, dtype=jnp.float32)
    f = lambda x, n: (jnp.sin(x), n * 2)
    n = jnp.arange(3)
    (_, pull), (_, ref_pull) = fungpt.vjp(f, x, n), jax.vjp(f, x, n)
    int_ct = np.zeros(3, jax.dtypes.float0)
    for ct in [(jnp.ones(3, jnp.float16), int_ct), (jnp.ones(3, jnp.float64), int_ct), (1.0, int_ct),
               (jnp.ones(4, jnp.float32), int_ct), (jnp.ones((3, 1), jnp.float32), int_ct),
               (jnp.ones(3, jnp.complex64), int_ct), (jnp.ones(3, jnp.float32), np.zeros(4, jax.dtypes.float0))]:
        want = _raised(lambda ct=ct: ref_pull(ct))
        assert isinstance(want, ValueError), want
        with pytest.raises(ValueError, match=r"unexpected JAX type .*got (float16|float64|float32|complex64|float0)"):
            pull(ct)
    # An integer output's cotangent needs only the right shape (float0 or any dtype), as in JAX.
    for ct in [(jnp.ones(3, jnp.float32), int_ct), (jnp.ones(3, jnp.float32), n)]:
        assert_trees_close(pull(ct), ref_pull(ct), TOL64)
    t_cases = [((x, n), (jnp.ones(3, jnp.float16), int_ct), TypeError, "dtypes must be equal"),
               ((x, n), (jnp.ones(3, jnp.float64), int_ct), TypeError, "expected tangent dtype float32"),
               ((x, n), (jnp.ones(3, jnp.float32), jnp.ones(3, jnp.float32)), TypeError, "tangent dtype float0"),
               ((x, n), (jnp.ones(4, jnp.float32), int_ct), ValueError, "different primal and tangent shapes")]
    for primals, tangents, err, msg in t_cases:
        assert type(_raised(lambda p=primals, t=tangents: jax.jvp(f, p, t))) is err
        with pytest.raises(err, match=msg):
            fungpt.jvp(f, primals, tangents)


def test_complex_inputs_and_dtype_checks_match_jax(key):
    # grad of a real function of complex inputs needs no holomorphic=True (JAX's convention for the
    # cotangent); holomorphic=True on real inputs, and jacrev/jacfwd on int or complex values, are refused.
    z = lax.complex(jax.random.normal(key, (3,)), jnp.arange(3.0))
    f = lambda z, r: jnp.sum(jnp.abs(z * z) * r)
    assert_trees_close(fungpt.grad(f, argnums=(0, 1))(z, 2.0), jax.grad(f, argnums=(0, 1))(z, 2.0), TOL64)
    x, n = jnp.real(z), jnp.arange(3)
    with pytest.raises(TypeError, match="grad with holomorphic=True requires inputs with complex dtype"):
        fungpt.grad(lambda x: jnp.sum(x * x), holomorphic=True)(x)
    with pytest.raises(TypeError, match="jacrev requires real- or complex-valued inputs"):
        fungpt.jacrev(lambda n: n * 2.0)(n)
    with pytest.raises(TypeError, match="jacrev requires real-valued outputs"):
        fungpt.jacrev(lambda x: lax.complex(x, x))(x)
    with pytest.raises(TypeError, match="jacfwd requires real-valued inputs"):
        fungpt.jacfwd(lambda n: n * 2.0)(n)
    with pytest.raises(TypeError, match="jacfwd requires real-valued inputs"):
        fungpt.jacfwd(jnp.abs)(z)
    h = lambda z: z ** 3
    assert_trees_close(fungpt.jacrev(h, holomorphic=True)(z), jax.jacrev(h, holomorphic=True)(z), TOL64)
    assert_trees_close(fungpt.jacfwd(h, holomorphic=True)(z), jax.jacfwd(h, holomorphic=True)(z), TOL64)


def test_jacobians_take_keyword_arguments_and_aux_keeps_python_values(key):
    x = jax.random.normal(key, (3,))
    f = lambda x, scale=1.0: jnp.sin(x) * scale
    for ours, theirs in [(fungpt.jacrev, jax.jacrev), (fungpt.jacfwd, jax.jacfwd)]:
        assert_trees_close(ours(f)(x, scale=3.0), theirs(f)(x, scale=3.0), TOL64, ours.__name__)
    # aux is any pytree (as in JAX): Python values and strings come back as they were, untraced.
    loss = lambda x: (jnp.sum(x ** 2), {"step": 3, "name": "mse", "mean": jnp.mean(x)})
    (_, aux), _ = fungpt.value_and_grad(loss, has_aux=True)(x)
    assert aux["step"] == 3 and type(aux["step"]) is int and aux["name"] == "mse"
    assert_trees_close(aux["mean"], jnp.mean(x), TOL64)
    _, _, aux = fungpt.jvp(loss, (x,), (x,), has_aux=True)
    assert aux["name"] == "mse" and type(aux["step"]) is int


def test_missing_rule_names_primitive_and_line(key):
    a = jnp.array([[2.0, 0.5, 0.1], [0.5, 3.0, 0.2], [0.1, 0.2, 4.0]])
    # the tridiagonal reduction of a symmetric matrix has no derivative rule here (nor in JAX)
    f = lambda a: jnp.sum(lax.linalg.tridiagonal(a)[1])
    with pytest.raises(NotImplementedError, match="'tridiagonal'"):
        jax.grad(f)(a)
    for transform in (fungpt.grad(f), lambda a: fungpt.jvp(f, (a,), (a,))):
        with pytest.raises(NotImplementedError, match=r"'tridiagonal'.*test_api\.py:\d+.*fungpt/autodiff/rules"):
            transform(a)


def test_no_retrace_in_a_jitted_step(mlp_case):
    params, x, y = mlp_case

    @jax.jit
    @chex.assert_max_traces(n=1)
    def step(params, x, y):
        g = fungpt.grad(mlp_loss)(params, x, y)
        return jax.tree_util.tree_map(lambda p, g: p - 0.1 * g, params, g)

    p = params
    for _ in range(3):
        p = step(p, x, y)
    chex.clear_trace_counter()


def test_planted_wrong_rule_is_caught(monkeypatch, key):
    """A rule that is 0.1% wrong must fail the checks, and only for the specs that use it."""
    from tests.autodiff.oracle import check_all
    sin_p = rules.prim("sin")
    monkeypatch.setitem(rules.vjp_rules, sin_p, lambda ct, ans, x, **_: (ct * jnp.cos(x) * 1.001,))
    x = jnp.linspace(0.1, 1.0, 5)
    failed = []
    for name, f in [("sin", jnp.sin), ("cos", jnp.cos), ("tanh", jnp.tanh), ("exp", jnp.exp)]:
        try:
            check_all(f, (x,), key)
        except AssertionError:
            failed.append(name)
    assert failed == ["sin"], failed
    report = fungpt.checking.check_grads(lambda x: jnp.sum(jnp.sin(x)), (x,), order=1, modes=("rev",))
    assert report["order 1"]["rev"]["vs_jax"] > 5e-4, report


def test_check_grads_reports_small_errors(key):
    x = jax.random.normal(key, (4,))
    w = jax.random.normal(jax.random.fold_in(key, 1), (4, 4))
    f = lambda x, w: jnp.sum(jnp.tanh(w @ x) ** 2)
    report = fungpt.checking.check_grads(f, (x, w), order=2, rtol=1e-8)
    for entry in (report["order 1"], report["order 2"]):
        for mode in ("fwd", "rev"):
            assert entry[mode]["vs_jax"] < 1e-10 and entry[mode]["vs_fd"] < 1e-6, report
    assert set(report["per_argument"]) == {0, 1}


def test_jacobian_blocks_of_integer_values_have_jax_dtypes():
    # JAX's jacrev casts each block to its input's dtype and jacfwd to its output's: an integer input
    # (allow_int=True) or output gets a block of integer zeros there, not float0 (a tangent-only dtype).
    x, n = jnp.arange(3.0, dtype=jnp.float32), jnp.arange(2)
    f = lambda x, n: x * n[0].astype(x.dtype)
    got = fungpt.jacrev(f, argnums=(0, 1), allow_int=True)(x, n)
    assert_trees_close(got, jax.jacrev(f, argnums=(0, 1), allow_int=True)(x, n), TOL64, "jacrev")
    h = lambda x: (x * 2, x.astype(jnp.int32))
    assert_trees_close(fungpt.jacfwd(h)(x), jax.jacfwd(h)(x), TOL64, "jacfwd")
    with pytest.raises(TypeError, match="jacfwd with holomorphic=True requires outputs with complex dtype"):
        fungpt.jacfwd(lambda z: z.real.astype(jnp.int32), holomorphic=True)(x.astype(jnp.complex64))
