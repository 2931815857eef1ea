"""Contraction, shape, slicing, indexing and reduction rules against jax.vjp / jax.jvp, the transpose
identity and float64 central differences."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jax import lax

import fungpt
from tests.autodiff.oracle import assert_trees_close, check_all, check_jvp, check_vjp

DTYPES = [np.float32, np.float64]


def _args(key, dtype, *shapes):
    keys = jax.random.split(key, len(shapes))
    return tuple(jax.random.normal(k, s, dtype) for k, s in zip(keys, shapes, strict=True))


# (name, function, argument shapes)
SPECS = [
    ("matmul", lambda a, b: a @ b, [(3, 4), (4, 5)]),
    ("matvec", lambda a, b: a @ b, [(3, 4), (4,)]),
    ("vecmat", lambda a, b: a @ b, [(4,), (4, 5)]),
    ("dot", jnp.dot, [(4,), (4,)]),
    ("batched", lambda a, b: jnp.einsum("bij,bjk->bik", a, b), [(2, 3, 4), (2, 4, 5)]),
    ("batch_last", lambda a, b: jnp.einsum("ijb,jkb->bik", a, b), [(3, 4, 2), (4, 5, 2)]),
    ("two_contract", lambda a, b: jnp.einsum("ijk,kjl->il", a, b), [(2, 3, 4), (4, 3, 5)]),
    ("outer", jnp.outer, [(3,), (4,)]),
    ("attention_scores", lambda q, k: jnp.einsum("bhtd,bhsd->bhts", q, k), [(2, 2, 3, 4), (2, 2, 5, 4)]),
    ("dense_3d", lambda x, w: jnp.einsum("btc,cd->btd", x, w), [(2, 3, 4), (4, 5)]),
    ("size0_contract", lambda a, b: a @ b, [(3, 0), (0, 2)]),
    ("transpose", lambda x: jnp.transpose(x, (2, 0, 1)) * 2, [(2, 3, 4)]),
    ("reshape", lambda x: jnp.reshape(x, (4, 6)) ** 2, [(2, 3, 4)]),
    ("squeeze", lambda x: jnp.squeeze(x, (0, 2)) * 3, [(1, 3, 1)]),
    ("expand_dims", lambda x: jnp.expand_dims(x, (0, 2)) * 3, [(3, 4)]),
    ("broadcast", lambda x: jnp.broadcast_to(x, (2, 3, 4)) * jnp.arange(24.0).reshape(2, 3, 4).astype(x.dtype),
     [(3, 1)]),
    ("rev", lambda x: jnp.flip(x, (0, 1)) * jnp.arange(6.0).reshape(2, 3).astype(x.dtype), [(2, 3)]),
    ("concatenate", lambda a, b, c: jnp.concatenate([a, b, c], axis=1) ** 2, [(2, 3), (2, 1), (2, 0)]),
    ("stack", lambda a, b: jnp.stack([a, b * 2]) ** 2, [(3,), (3,)]),
    ("pad", lambda x, v: lax.pad(x, v, [(1, 2, 0), (0, 1, 1)]) ** 2, [(2, 3), ()]),
    ("pad_negative", lambda x: lax.pad(x, jnp.zeros((), x.dtype), [(-1, 2, 1), (1, -2, 0)]) ** 2, [(3, 4)]),
    ("jnp_pad", lambda x: jnp.pad(x, ((1, 1), (2, 0))) ** 2, [(2, 3)]),
    ("slice", lambda x: x[1:3, ::2] ** 2, [(4, 5)]),
    ("slice_strided", lambda x: lax.slice(x, (0, 1), (5, 5), (2, 3)) ** 2, [(5, 5)]),
    ("dynamic_slice", lambda x: lax.dynamic_slice(x, (jnp.int32(1), jnp.int32(2)), (2, 2)) ** 2, [(4, 5)]),
    ("dynamic_slice_clamped", lambda x: lax.dynamic_slice(x, (jnp.int32(3), jnp.int32(9)), (2, 2)) ** 2,
     [(4, 5)]),
    ("dynamic_update_slice", lambda x, u: lax.dynamic_update_slice(x, u * 3, (jnp.int32(1), jnp.int32(0))) ** 2,
     [(4, 5), (2, 3)]),
    ("getitem_int", lambda x: x[jnp.array([0, 2, 2])] ** 2, [(4, 3)]),
    ("getitem_2d", lambda x: x[jnp.array([0, 3, 0]), jnp.array([1, 1, 2])] ** 2, [(4, 3)]),
    ("take_along_axis", lambda x: jnp.take_along_axis(x, jnp.array([[1], [0], [2]]), axis=1) ** 2, [(3, 4)]),
    ("take_along_axis_3d", lambda x: jnp.take_along_axis(x, jnp.array([[[1, 0]], [[2, 2]]]), axis=2) ** 2,
     [(2, 1, 3)]),
    ("embedding", lambda w: w[jnp.array([[1, 2], [0, 1]])] ** 2, [(3, 4)]),
    ("at_set", lambda x, u: x.at[jnp.array([0, 2])].set(u) ** 2, [(4, 3), (2, 3)]),
    ("at_set_duplicates", lambda x, u: x.at[jnp.array([1, 1, 3])].set(u) ** 2, [(4,), (3,)]),
    ("at_add", lambda x, u: x.at[jnp.array([0, 0, 2])].add(u) ** 2, [(4,), (3,)]),
    ("at_add_2d", lambda x, u: x.at[:, jnp.array([1, 1])].add(u) ** 2, [(3, 4), (3, 2)]),
    ("at_set_slice", lambda x, u: x.at[1:3].set(u) ** 2, [(4, 2), (2, 2)]),
    ("reduce_sum", lambda x: jnp.sum(x ** 2, axis=(0, 2)), [(2, 3, 4)]),
    ("mean_keepdims", lambda x: jnp.mean(x ** 2, axis=1, keepdims=True), [(3, 4)]),
    ("reduce_max", lambda x: jnp.max(x, axis=1), [(3, 4)]),
    ("reduce_min", lambda x: jnp.min(x, axis=(0, 1)), [(3, 4)]),
    ("reduce_prod", lambda x: jnp.prod(x, axis=1), [(3, 4)]),
    ("cumsum", lambda x: jnp.cumsum(x, axis=1) ** 2, [(3, 4)]),
    ("cumsum_reverse", lambda x: lax.cumsum(x, axis=0, reverse=True) ** 2, [(3, 4)]),
    ("logsumexp", lambda x: jax.nn.logsumexp(x, axis=-1), [(3, 4)]),
    ("softmax", lambda x: jax.nn.softmax(x, axis=-1) ** 2, [(3, 4)]),
    ("layer_norm", lambda x: ((x - x.mean(-1, keepdims=True)) / jnp.sqrt(x.var(-1, keepdims=True) + 1e-5)) ** 3,
     [(3, 5)]),
    ("argmax_gather", lambda x: jnp.take_along_axis(x, jnp.argmax(x, axis=1)[:, None], axis=1), [(3, 4)]),
    ("sizeone_axes", lambda x, y: x * y + x / (1.0 + y * y), [(1, 4), (3, 1)]),
]


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("name,f,shapes", SPECS, ids=[s[0] for s in SPECS])
def test_structural(name, f, shapes, dtype, key):
    check_all(f, _args(key, dtype, *shapes), jax.random.fold_in(key, 1))


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_reductions_with_ties(dtype, key):
    x = jnp.array([[1.0, 3.0, 3.0, 0.0], [2.0, 2.0, 2.0, 2.0]], dtype)
    for f in (lambda x: jnp.max(x, axis=1), lambda x: jnp.min(x, axis=1), lambda x: jnp.prod(x, axis=1),
              lambda x: jnp.max(x)):
        check_vjp(f, (x,), key)
        check_jvp(f, (x,), key)
    # zeros inside a product: the gradient is still exact (no division by zero)
    z = jnp.array([[0.0, 2.0, 3.0], [0.0, 0.0, 5.0]], dtype)
    check_all(lambda z: jnp.prod(z, axis=1), (z,), key, fd=False)


@pytest.mark.parametrize("mode", ["clip", "fill", "promise_in_bounds"])
def test_gather_modes(mode, key):
    x = jax.random.normal(key, (5, 3), jnp.float64)
    idx = jnp.array([0, 4, 2, 4]) if mode == "promise_in_bounds" else jnp.array([0, 7, -9, 4])
    kw = {"fill_value": 0.0} if mode == "fill" else {}  # the default NaN fill would poison every oracle
    check_all(lambda x: x.at[idx].get(mode=mode, **kw) ** 2, (x,), key)
    u = jax.random.normal(key, (4, 3), jnp.float64)
    check_all(lambda x, u: x.at[idx].add(u, mode=mode) ** 2, (x, u), key)


def test_mixed_precision_matmul(key):
    # bf16 operands, f32 accumulation: cotangents come back in each operand's dtype.
    x, w = _args(key, jnp.float32, (4, 8), (8, 3))
    x, w = x.astype(jnp.bfloat16), w.astype(jnp.bfloat16)
    f = lambda x, w: jnp.dot(x, w, preferred_element_type=jnp.float32)
    check_vjp(f, (x, w), key, rtol=2e-2)
    check_jvp(f, (x, w), key, rtol=2e-2)


@settings(max_examples=6, deadline=None)
@given(b=st.integers(0, 2), m=st.integers(1, 3), k=st.integers(0, 3), n=st.integers(1, 3),
       seed=st.integers(0, 2**16), order=st.permutations([0, 1, 2]))
def test_property_dot_general_any_dims(b, m, k, n, seed, order):
    """Random batch/contracting layouts, including transposed operands."""
    key = jax.random.key(seed)
    k1, k2 = jax.random.split(key)
    x = jax.random.normal(k1, (b + 1, m, k), jnp.float64)
    y = jax.random.normal(k2, (b + 1, k, n), jnp.float64)
    x = jnp.transpose(x, order)
    inv = np.argsort(order)
    dims = (((int(inv[2]),), (1,)), ((int(inv[0]),), (0,)))
    check_all(lambda x, y: lax.dot_general(x, y, dims), (x, y), key)


@settings(max_examples=6, deadline=None)
@given(shape=st.lists(st.integers(1, 4), min_size=1, max_size=3), seed=st.integers(0, 2**16),
       data=st.data())
def test_property_reductions_and_reshapes(shape, seed, data):
    axes = tuple(sorted(data.draw(st.sets(st.integers(0, len(shape) - 1), min_size=1))))
    x = jax.random.normal(jax.random.key(seed), tuple(shape), jnp.float64)
    check_all(lambda x: jnp.sum(jnp.sin(x), axis=axes) + jnp.max(x, axis=axes) * 0.5, (x,), jax.random.key(seed))
    check_all(lambda x: jnp.reshape(x, (-1,))[::-1] ** 2, (x,), jax.random.key(seed))


@pytest.mark.parametrize("op", ["min", "max"])
def test_scatter_min_max(op, key):
    # x.at[i].min/max and segment_min/max (scatter-min/max): ties between the old value and the updates,
    # and among the updates, share the derivative as JAX does; a dropped out-of-bounds update gets none.
    x = jnp.array([3.0, 1.0, 4.0, 1.0, 5.0, 9.0], jnp.float64)
    idx = jnp.array([0, 2, 2, 5, 9])
    for u in (jnp.array([10.0, 0.0, 30.0, 1.0, 2.0], jnp.float64), jnp.array([3.0, 4.0, 4.0, 9.0, 2.0], jnp.float64)):
        check_all(lambda x, u: getattr(x.at[idx], op)(u, mode="drop") ** 2, (x, u), key, fd=False)
    seg = getattr(jax.ops, f"segment_{op}")
    check_all(lambda x: seg(x, jnp.array([0, 0, 1, 2, 2, 2]), 3), (x * jnp.arange(6.0),), key)


def test_scatter_mul(key):
    # Linear in x for any indices; the updates' derivative needs unique indices (JAX refuses otherwise).
    x, u = _args(key, jnp.float64, (5, 2), (3, 2))
    check_all(lambda x: x.at[jnp.array([0, 3, 3])].mul(3.0) ** 2, (x,), key)
    check_all(lambda x, u: x.at[jnp.array([4, 0, 2])].mul(u, unique_indices=True) ** 2, (x, u), key)
    with pytest.raises(NotImplementedError, match="unique_indices=True"):
        fungpt.grad(lambda u: x.at[jnp.array([0, 0, 2])].mul(u).sum())(u)


def test_reshape_with_dimensions(key):
    # reshape[dimensions=p] reshapes transpose(x, p) (lax.reshape's `dimensions`, also what the reduce rule
    # below emits): its cotangent must be transposed back, not just reshaped.
    x = jnp.arange(24.0).reshape(2, 3, 4)
    check_all(lambda x: lax.reshape(x, (4, 6), dimensions=(2, 0, 1)), (x,), key)


def _select_first(p, q):  # an argmax-style reducer on (value, payload) pairs: keep the larger value's pair
    return jax.tree_util.tree_map(lambda s, t: jnp.where(p[0] >= q[0], s, t), p, q)


def test_reduce_with_a_user_defined_reducer(key):
    # lax.reduce with a reducer that is no add/mul/max/min monoid stays the generic `reduce` primitive;
    # JAX differentiates it through a balanced tree of the reducer, and so do we (both modes).
    x = jnp.array([[0.5, 1.5, -0.3], [0.2, 0.7, 2.0], [1.1, -0.4, 0.3]], jnp.float64)
    specs = [lambda a: lax.reduce(a, 0.0, lambda u, v: u * v + u + v, (0,)),  # (1+u)(1+v)-1: a monoid
             lambda a: lax.reduce((a, a * a), (-jnp.inf, 0.0), _select_first, (1,)),  # max-like, two operands
             lambda a: lax.reduce(a[:, :0], 1.0, lambda u, v: u * v + u + v, (1,))]  # nothing to reduce
    assert all(jax.make_jaxpr(f)(x).eqns[-1].primitive.name == "reduce" for f in specs)
    # All in one jitted function: one compile per transform, not one per eager op (fast).
    check_all(jax.jit(lambda a: [f(a) for f in specs]), (x,), key)


def test_reduce_with_an_integer_operand_and_a_differentiated_init():
    x = jnp.array([[0.5, 1.5, -0.3], [0.2, 0.7, 2.0], [1.1, -0.4, 0.3]], jnp.float64)
    # An argmax-style (value, int index) reducer: JAX 0.10's rule fails on the integer operand (a symbolic
    # zero it cannot reshape), so the oracle is jnp.max: the value's derivative is its, the index's float0.
    iota = lax.broadcasted_iota(jnp.int32, x.shape, 1)
    f = jax.jit(lambda a: lax.reduce((a, iota), (-jnp.inf, jnp.int32(0)), _select_first, (1,)))
    ct = (jnp.arange(1.0, 4.0), np.zeros(3, jax.dtypes.float0))
    out, pull = fungpt.vjp(f, x)
    assert_trees_close(out, (jnp.max(x, 1), jnp.argmax(x, 1).astype(jnp.int32)), 1e-12)
    assert_trees_close(pull(ct), jax.vjp(lambda a: jnp.max(a, 1), x)[1](ct[0]), 1e-12)
    _, t = fungpt.jvp(f, (x,), (x * 3,))
    assert_trees_close(t, (jax.jvp(lambda a: jnp.max(a, 1), (x,), (x * 3,))[1], ct[1]), 1e-12)
    # A derivative through the init value is refused, as in JAX (with JAX's message).
    g = lambda a: lax.reduce(a, a[0, 0] * 0, lambda u, v: u * v + u + v, (0,))
    for grad in (jax.grad, fungpt.grad):
        with pytest.raises(NotImplementedError, match="non-zero tangents for initial values"):
            grad(lambda a: g(a).sum())(x)
    with pytest.raises(NotImplementedError, match="non-zero tangents for initial values"):
        fungpt.jvp(g, (x,), (x,))
