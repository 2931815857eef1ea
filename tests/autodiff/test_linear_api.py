"""fungpt.linearize and fungpt.linear_transpose against JAX's; duplicate argnums refused; every
output is a JAX array (never numpy), even one that does not depend on the inputs."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import fungpt
from tests.autodiff.oracle import TOL64, assert_trees_close


def _model(p, x):
    h = jnp.tanh(x @ p["w"]) * p["s"]
    return {"y": jnp.sin(h).sum(-1), "n": jnp.sum(h ** 2)}


def _args(key):
    k1, k2, k3 = jax.random.split(key, 3)
    p = {"w": jax.random.normal(k1, (3, 4)), "s": jnp.float64(1.5)}
    return p, jax.random.normal(k2, (5, 3)), k3


def test_linearize_matches_jax(key):
    p, x, k = _args(key)
    out, f_jvp = fungpt.linearize(_model, p, x)
    ref_out, ref_jvp = jax.linearize(_model, p, x)
    assert_trees_close(out, ref_out, TOL64, "primal")
    for i in range(2):  # the same linear map, applied to several tangents, jitted too
        ki = jax.random.fold_in(k, i)
        t = jax.tree.map(lambda a, ki=ki: jax.random.normal(ki, a.shape, a.dtype), (p, x))
        assert_trees_close(f_jvp(*t), ref_jvp(*t), TOL64, "tangent")
        assert_trees_close(jax.jit(f_jvp)(*t), ref_jvp(*t), TOL64, "jit(f_jvp)")


def test_linearize_evaluates_the_primal_once():
    calls = []

    def f(x):
        jax.debug.callback(lambda: calls.append(1))  # runs when the primal part runs
        return jnp.sin(x) * x

    x = jnp.arange(3.0)
    _, f_jvp = fungpt.linearize(f, x)
    f_jvp(x)
    f_jvp(2 * x)
    assert len(calls) == 1


def test_linearize_has_aux_integer_inputs_and_bad_tangents():
    f = lambda x, n: (jnp.sum(x ** 2) * n.astype(x.dtype), {"n": n})
    x, n = jnp.arange(3.0), jnp.int32(4)
    out, f_jvp, aux = fungpt.linearize(f, x, n, has_aux=True)
    rout, rjvp, raux = jax.linearize(f, x, n, has_aux=True)
    t = (jnp.ones(3), np.zeros((), jax.dtypes.float0))
    assert_trees_close((out, aux, f_jvp(*t)), (rout, raux, rjvp(*t)), TOL64)
    for bad in ((jnp.ones(2), t[1]), (jnp.ones(3, jnp.float32), t[1])):
        with pytest.raises(ValueError, match="inconsistent with the original primal"):
            rjvp(*bad)
        with pytest.raises(ValueError, match="inconsistent with the original primal"):
            f_jvp(*bad)


def test_linear_transpose_matches_jax(key):
    p, x, k = _args(key)
    lin = lambda w, v: {"a": v @ p["w"] + w[:1] / 3.0, "b": 2.0 * jnp.cumsum(w[::-1], axis=0), "c": jnp.zeros(2)}
    avals = (jax.ShapeDtypeStruct((3, 4), jnp.float64), x)  # shapes only, or arrays
    ours, theirs = fungpt.linear_transpose(lin, *avals), jax.linear_transpose(lin, *avals)
    ct = jax.tree.map(lambda a: jax.random.normal(k, a.shape, a.dtype), jax.eval_shape(lin, *avals))
    assert_trees_close(ours(ct), theirs(ct), TOL64, "transpose")
    assert_trees_close(jax.jit(ours)(ct), theirs(ct), TOL64, "jit")
    # the transpose of the transpose is the map itself: <lin(w, v), ct> = <(w, v), lin^T(ct)>
    w, v = jax.random.normal(k, (3, 4)), x
    lhs = sum(jnp.vdot(a, b) for a, b in zip(jax.tree.leaves(lin(w, v)), jax.tree.leaves(ct), strict=True))
    rhs = sum(jnp.vdot(a, b) for a, b in zip(jax.tree.leaves((w, v)), jax.tree.leaves(ours(ct)), strict=True))
    assert_trees_close(lhs, rhs, TOL64, "<lin(w, v), ct> vs <(w, v), lin^T(ct)>")


def test_linear_transpose_errors_as_jax():
    f = lambda x: 2.0 * x
    s = jax.ShapeDtypeStruct((2,), jnp.float64)
    for t in (fungpt.linear_transpose(f, s), jax.linear_transpose(f, s)):
        with pytest.raises(TypeError, match="cotangent tree does not match function output"):
            t((jnp.ones(2),))
        with pytest.raises(TypeError, match="cotangent type does not match function output"):
            t(jnp.ones(3))
    with pytest.raises(TypeError, match="only supports"):
        fungpt.linear_transpose(lambda x: x.astype(jnp.int32), s)


# (name, function of x (3,)): linear or affine ones JAX transposes, non-linear ones it refuses.
_LINEARITY_CASES = [
    ("sin", jnp.sin), ("x*x", lambda x: x * x), ("x@x", lambda x: x @ x), ("1/x", lambda x: 1.0 / x),
    ("x/x", lambda x: x / x), ("x**2", lambda x: x ** 2), ("abs", jnp.abs), ("max", jnp.max),
    ("where(x>0)", lambda x: jnp.where(x > 0, x, 0.0)), ("stop_gradient", jax.lax.stop_gradient),
    ("sort", jnp.sort), ("jit(sin)", jax.jit(jnp.sin)), ("relu", jax.nn.relu),
    ("scan x*x", lambda x: jax.lax.scan(lambda c, a: (c * c + a, c), x[0], x)[0]),
    ("cond(x, ...)", lambda x: jax.lax.cond(x[0] > 0, lambda x: x, lambda x: -x, x)),
    ("x+1", lambda x: x + 1.0), ("2x", lambda x: 2.0 * x), ("x/2", lambda x: x / 2.0), ("sum", jnp.sum),
    ("cumsum", jnp.cumsum), ("x*sin(2)", lambda x: x * jnp.sin(2.0)), ("int round trip", lambda x: x.astype(int)
                                                                           .astype(x.dtype)),
    ("scan 2c+a", lambda x: jax.lax.scan(lambda c, a: (2.0 * c + a, c), x[0], x)[0]),
    ("cond linear", lambda x: jax.lax.cond(True, lambda x: 2 * x, lambda x: 3 * x, x)),
    ("jit(2x)[::-1]", jax.jit(lambda x: (2 * x)[::-1])),
    ("where(c, x, 0)", lambda x: jnp.where(x.shape[0] > 2, x, 0.0)),
]


@pytest.mark.parametrize("name,f", _LINEARITY_CASES, ids=[c[0] for c in _LINEARITY_CASES])
def test_linear_transpose_refuses_what_jax_refuses(name, f):
    s = jax.ShapeDtypeStruct((3,), jnp.float64)
    ct = jax.tree.map(lambda a: jnp.linspace(1.0, 2.0, a.size, dtype=a.dtype).reshape(a.shape), jax.eval_shape(f, s))
    try:
        ref = jax.linear_transpose(f, s)(ct)
    except Exception:  # JAX's error type varies with the primitive (NotImplementedError, AssertionError, ...)
        with pytest.raises(NotImplementedError, match="not linear: primitive"):
            fungpt.linear_transpose(f, s)(ct)
        return
    assert_trees_close(fungpt.linear_transpose(f, s)(ct), ref, TOL64, name)


@pytest.mark.parametrize("transform", ["grad", "value_and_grad", "jacrev", "jacfwd", "hessian"])
def test_duplicate_argnums_refused(transform):
    f = lambda x, y: x * y
    with pytest.raises(TypeError):  # JAX fails too: the repeated argument reaches f as None
        getattr(jax, transform)(f, argnums=(0, 0))(1.0, 2.0)
    with pytest.raises(TypeError, match="same argument twice"):
        getattr(fungpt, transform)(f, argnums=(0, -2))(1.0, 2.0)


def test_outputs_are_jax_arrays_even_when_constant():
    const = np.arange(3.0)
    f = lambda x: (jnp.sum(x), const, 1.0 * np.float64(2.0))
    x = jnp.arange(3.0)
    out, pull = fungpt.vjp(f, x)
    outs = [out, fungpt.jvp(f, (x,), (x,)), fungpt.linearize(f, x), pull(out)]
    outs.append(fungpt.grad(lambda x: jnp.sum(const))(x))
    outs.append(fungpt.value_and_grad(lambda x: 3.0)(x))
    outs.append(fungpt.jacrev(lambda x: const)(x))
    for leaf in jax.tree.leaves([*outs[:2], outs[2][0], *outs[3:]]):
        assert isinstance(leaf, jax.Array), type(leaf)


def test_linearize_composes_with_jit_vmap_and_grad():
    f = lambda x: jnp.sin(x) * jnp.sum(x ** 2)
    ours = lambda x: fungpt.linearize(f, x)[1](x)
    ref = lambda x: jax.linearize(f, x)[1](x)
    x = jnp.linspace(0.1, 1.0, 3)
    assert_trees_close(jax.jit(ours)(x), ref(x), TOL64, "jit")
    xs = jnp.stack([x, 2 * x])
    assert_trees_close(jax.vmap(ours)(xs), jax.vmap(ref)(xs), TOL64, "vmap")
    assert_trees_close(fungpt.grad(lambda x: jnp.sum(ours(x)))(x), jax.grad(lambda x: jnp.sum(ref(x)))(x), TOL64,
                       "grad of linearize")
