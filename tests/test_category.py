"""Chapter 12: category, functor, monoid and naturality laws as property tests; the lens-composed MLP's
update against gradient descent with fungpt.grad and jax.grad."""
import importlib.util
import itertools
import json
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fungpt
from fungpt import category as C
from fungpt import optim
from tests.helpers import EXACT, assert_trees_close

ROOT = pathlib.Path(__file__).resolve().parents[1]
DTYPES = [np.float32, np.float64]


# --- categories --------------------------------------------------------------------------------------

def test_typed_morphisms_compose_associatively_with_identities():
    rng = np.random.default_rng(0)
    A, B = rng.standard_normal((4, 3)), rng.standard_normal((2, 4))
    x = jnp.asarray(rng.standard_normal(3))
    f = C.morphism(lambda v: A @ v, x)  # R³ → R⁴
    g = C.morphism(jnp.tanh, f.cod)  # R⁴ → R⁴
    h = C.morphism(lambda v: {"y": B @ v, "n": jnp.sum(v * v)}, g.cod)  # R⁴ → pytree
    assert h.cod["y"].shape == (2,) and h.cod["n"].shape == ()
    want = {"y": B @ np.tanh(A @ x), "n": np.sum(np.tanh(A @ x) ** 2)}
    for m in [C.compose(h, g, f), C.compose(C.compose(h, g), f), C.compose(h, C.compose(g, f))]:
        assert_trees_close(m(x), want, 1e-14)
    for m in [C.compose(f, C.identity(x)), C.compose(C.identity(f.cod), f)]:
        np.testing.assert_allclose(m(x), f(x), rtol=0)
    with pytest.raises(TypeError, match="codomain"):
        C.compose(f, g)  # R⁴ → R⁴ then R³ → R⁴: types do not meet
    with pytest.raises(TypeError, match="argument of type"):
        f(jnp.ones(4))


def test_finset_category():
    n, m, k = 3, 2, 4
    homs = np.asarray(C.finset_hom(n, m))
    assert homs.shape == (m**n, n) and len({tuple(r) for r in homs}) == m**n  # every function, once
    assert {tuple(r) for r in homs} == set(itertools.product(range(m), repeat=n))
    assert C.finset_hom(0, 3).shape == (1, 0) and C.finset_hom(2, 0).shape == (0, 2)
    rng = np.random.default_rng(1)
    f, g, h = rng.integers(0, m, n), rng.integers(0, k, m), rng.integers(0, 2, k)
    np.testing.assert_array_equal(C.finset_compose(h, C.finset_compose(g, f)),
                                  C.finset_compose(C.finset_compose(h, g), f))
    np.testing.assert_array_equal(C.finset_compose(g, f), [g[f[i]] for i in range(n)])
    np.testing.assert_array_equal(C.finset_compose(f, C.finset_identity(n)), f)
    np.testing.assert_array_equal(C.finset_compose(C.finset_identity(m), f), f)


# --- functors and natural transformations ------------------------------------------------------------

FUNCS = [lambda x: 2 * x + 1, lambda x: x * x, lambda x: -x, lambda x: x // 3]
trees = st.recursive(st.integers(-50, 50), lambda kids: st.lists(kids, max_size=3) | st.dictionaries(
    st.sampled_from("abc"), kids, max_size=3), max_leaves=8)


@settings(max_examples=25, deadline=None)
@given(t=trees, i=st.integers(0, 3), j=st.integers(0, 3))
def test_functor_laws(t, i, j):
    f, g = FUNCS[i], FUNCS[j]
    gf = lambda x: g(f(x))
    assert C.TREE.fmap(lambda x: x, t) == t
    assert C.TREE.fmap(gf, t) == C.TREE.fmap(g, C.TREE.fmap(f, t))
    xs = jax.tree.leaves(t)
    assert C.LIST.fmap(lambda x: x, xs) == xs and C.LIST.fmap(gf, xs) == C.LIST.fmap(g, C.LIST.fmap(f, xs))
    for o in [None, xs[0] if xs else None, 7]:
        assert C.OPTION.fmap(gf, o) == C.OPTION.fmap(g, C.OPTION.fmap(f, o))
    # ... and a naive fmap written out in the test agrees with TREE on these nested lists and dicts.
    naive = lambda h, u: ([naive(h, v) for v in u] if isinstance(u, list) else
                          {k: naive(h, v) for k, v in u.items()} if isinstance(u, dict) else h(u))
    assert C.TREE.fmap(f, t) == naive(f, t)


@settings(max_examples=25, deadline=None)
@given(t=trees, i=st.integers(0, 3), o=st.none() | st.integers(-9, 9))
def test_naturality_squares(t, i, o):
    f = FUNCS[i]
    assert C.naturality_holds(C.leaves, C.TREE, C.LIST, f, t)
    assert C.naturality_holds(C.option_to_list, C.OPTION, C.LIST, f, o)
    # With arrays at the leaves (a GPT's parameters are such a tree).
    arrays = jax.tree.map(lambda v: jnp.full((2,), v, jnp.int32), t)
    assert C.naturality_holds(C.leaves, C.TREE, C.LIST, lambda x: x * 3, arrays)


def test_a_non_natural_transformation_fails_the_square():
    # "Leaves sorted by value" is not natural: sorting does not commute with a non-monotone f.
    sorted_leaves = lambda t: sorted(jax.tree.leaves(t))
    assert not C.naturality_holds(sorted_leaves, C.TREE, C.LIST, lambda x: -x, {"a": 1, "b": 2})
    assert C.naturality_holds(sorted_leaves, C.TREE, C.LIST, lambda x: 2 * x, {"a": 1, "b": 2})  # monotone: fine


# --- monoids -----------------------------------------------------------------------------------------

@settings(max_examples=25, deadline=None)
@given(xs=st.lists(st.integers(-10**6, 10**6), max_size=17), words=st.lists(st.text(max_size=3), max_size=9))
def test_monoid_folds_sequential_equals_parallel(xs, words):
    assert C.fold(C.SUM, xs) == C.tree_fold(C.SUM, xs) == sum(xs)
    assert C.fold(C.PRODUCT, xs[:6]) == C.tree_fold(C.PRODUCT, xs[:6]) == int(np.prod(xs[:6], dtype=object))
    assert C.fold(C.STRING, words) == C.tree_fold(C.STRING, words) == "".join(words)
    assert float(C.fold(C.MAX, xs)) == float(C.tree_fold(C.MAX, xs) if xs else -np.inf) == max(xs, default=-np.inf)
    for a, b, c in [(1, 2, 3), ("x", "yz", "")]:
        M = C.SUM if isinstance(a, int) else C.STRING
        assert M.combine(M.combine(a, b), c) == M.combine(a, M.combine(b, c))
        assert M.combine(M.unit, a) == a == M.combine(a, M.unit)


def test_non_associative_operation_breaks_the_parallel_fold():
    minus = C.Monoid(lambda a, b: a - b, 0)  # not a monoid: (a - b) - c ≠ a - (b - c)
    xs = [5, 3, 2, 1]
    assert C.fold(minus, xs) == (((0 - 5) - 3) - 2) - 1 and C.tree_fold(minus, xs) == (5 - 3) - (2 - 1)
    assert C.fold(minus, xs) != C.tree_fold(minus, xs)


def test_prefix_scan_against_sequential_loops():
    rng = np.random.default_rng(2)
    xs = rng.integers(-100, 100, 37)
    np.testing.assert_array_equal(C.prefix_scan(jnp.add, xs), np.cumsum(xs))
    np.testing.assert_array_equal(C.prefix_scan(jnp.maximum, xs), np.maximum.accumulate(xs))
    # 2×2 matrix products (associative, not commutative): Fibonacci numbers as prefix products.
    Q = np.tile(np.array([[1, 1], [1, 0]]), (10, 1, 1))
    P = C.prefix_scan(lambda a, b: jnp.einsum("...ij,...jk->...ik", a, b), Q)
    fib = [1, 1]
    for _ in range(10):
        fib.append(fib[-1] + fib[-2])
    np.testing.assert_array_equal(np.asarray(P)[:, 0, 1], fib[:10])  # Qᵏ[0, 1] = F_k


def _transforms():
    return [optim.scale(0.5), optim.trace(0.9), optim.clip_by_global_norm(1.0), optim.scale_by_adam()]


def _run(tx, grads_seq, params):
    state, outs = tx.init(params), []
    for g in grads_seq:
        u, state = tx.update(g, state, params)
        outs.append(u)
    return outs


def test_optimizer_chain_is_a_monoid(key):
    params = {"w": jnp.ones((3, 2)), "b": jnp.zeros((2,))}
    keys = jax.random.split(key, 4)
    grads_seq = [jax.tree.map(lambda p, k=k: jax.random.normal(k, p.shape), params) for k in keys]
    a, b, c, d = _transforms()
    ch = C.CHAIN.combine
    left, right = ch(ch(a, b), c), ch(a, ch(b, c))
    for u, v in zip(_run(left, grads_seq, params), _run(right, grads_seq, params), strict=True):
        assert_trees_close(u, v, 1e-14)
    for u, v in zip(_run(ch(C.CHAIN.unit, d), grads_seq, params), _run(d, grads_seq, params), strict=True):
        assert_trees_close(u, v, 0)
    for u, v in zip(_run(ch(d, C.CHAIN.unit), grads_seq, params), _run(d, grads_seq, params), strict=True):
        assert_trees_close(u, v, 0)
    # Folding a list of transforms, sequentially or as a tree, gives the same optimizer.
    for u, v in zip(_run(C.fold(C.CHAIN, [a, b, c, d]), grads_seq, params),
                    _run(C.tree_fold(C.CHAIN, [a, b, c, d]), grads_seq, params), strict=True):
        assert_trees_close(u, v, 1e-14)
    # A monoid, not a commutative one: clipping before or after scaling by 0.5 differs.
    u1, u2 = _run(ch(a, c), grads_seq, params)[0], _run(ch(c, a), grads_seq, params)[0]
    assert not np.allclose(u1["w"], u2["w"])


@pytest.mark.parametrize("dtype", DTYPES)
def test_data_parallel_gradient_sum(dtype, key):
    k1, k2, k3 = jax.random.split(key, 3)
    params = {"w": jax.random.normal(k1, (3,), dtype), "b": jnp.zeros((), dtype)}
    batch = {"x": jax.random.normal(k2, (12, 3), dtype), "y": jax.random.normal(k3, (12,), dtype)}
    loss = lambda p, bt: jnp.sum(jnp.log1p(jnp.exp(-bt["y"] * (bt["x"] @ p["w"] + p["b"]))))
    want = jax.grad(loss)(params, batch)
    for shards in [1, 3, 4, 12]:
        got = jax.jit(lambda p, bt, s=shards: C.data_parallel_grad(loss, p, bt, s))(params, batch)
        assert_trees_close(got, want, EXACT[np.dtype(dtype)], atol=EXACT[np.dtype(dtype)])
    with pytest.raises(ValueError, match="divide"):
        C.data_parallel_grad(loss, params, batch, 5)


# --- learners as lenses ------------------------------------------------------------------------------

def _gd(loss, params, lr, grad):
    return jax.jit(lambda p: jax.tree.map(lambda w, g: w - lr * g, p, grad(loss)(p)))(params)


@pytest.mark.parametrize("dtype", DTYPES)
def test_lens_mlp_update_equals_gradient_descent(dtype, key):
    k1, k2, k3 = jax.random.split(key, 3)
    sizes, lr = [3, 5, 4, 2], 0.1
    L = C.mlp_learner(len(sizes) - 1, lr)
    p = C.mlp_init(k1, sizes, dtype)
    a, b = jax.random.normal(k2, (3,), dtype), jax.random.normal(k3, (2,), dtype)
    loss = lambda p: 0.5 * jnp.sum((L.implement(p, a) - b) ** 2)
    got = jax.jit(L.update)(p, a, b)
    tol = EXACT[np.dtype(dtype)]
    assert_trees_close(got, _gd(loss, p, lr, fungpt.grad), tol, atol=tol)
    if dtype == np.float64:  # the same against JAX's own gradient, and the request: a - ∇_a E
        assert_trees_close(got, _gd(loss, p, lr, jax.grad), tol, atol=tol)
        ga = jax.jit(jax.grad(lambda a: 0.5 * jnp.sum((L.implement(p, a) - b) ** 2)))(a)
        np.testing.assert_allclose(jax.jit(L.request)(p, a, b), a - ga, rtol=tol, atol=tol)
    # implement is an independent forward pass written out here.
    h = jnp.tanh(p[0]["w"] @ a + p[0]["b"])
    h = jnp.tanh(p[2]["w"] @ h + p[2]["b"])
    np.testing.assert_allclose(L.implement(p, a), p[4]["w"] @ h + p[4]["b"], rtol=tol)


def test_backprop_as_functor_composition_laws(key):
    # L(g ∘ f) = L(g) ∘ L(f): the learner of the composite map equals the composite of the learners.
    k1, k2, k3, k4 = jax.random.split(key, 4)
    f = lambda p, x: jnp.tanh(p @ x)
    g = lambda q, y: jnp.sin(q * y)
    lr = 0.05
    p, q = jax.random.normal(k1, (4, 3)), jax.random.normal(k2, (4,))
    a, c = jax.random.normal(k3, (3,)), jax.random.normal(k4, (4,))
    whole = C.gradient_learner(C.para_then(f, g), lr)
    parts = C.then(C.gradient_learner(f, lr), C.gradient_learner(g, lr))
    seq = C.sequence(C.gradient_learner(f, lr), C.gradient_learner(g, lr))
    for L in [parts, seq]:
        assert_trees_close(L.update((p, q), a, c), whole.update((p, q), a, c), 1e-12, atol=1e-14)
        np.testing.assert_allclose(L.request((p, q), a, c), whole.request((p, q), a, c), rtol=1e-12, atol=1e-14)
    # Identity learner is a unit; `then` is associative (up to regrouping the parameters).
    h = C.gradient_learner(lambda r, z: r * z, lr)
    r = jnp.full((4,), 0.7)
    unit = C.then(C.identity_learner(), C.then(parts, C.identity_learner()))
    np.testing.assert_allclose(unit.update(((), ((p, q), ())), a, c)[1][0][1], parts.update((p, q), a, c)[1])
    left = C.then(C.then(C.gradient_learner(f, lr), C.gradient_learner(g, lr)), h)
    right = C.then(C.gradient_learner(f, lr), C.then(C.gradient_learner(g, lr), h))
    (pl, ql), rl = left.update(((p, q), r), a, c)
    pr, (qr, rr) = right.update((p, (q, r)), a, c)
    assert_trees_close((pl, ql, rl), (pr, qr, rr), 1e-12, atol=1e-14)


def test_parallel_learners_equal_gradient_descent_on_the_summed_error(key):
    k1, k2, k3 = jax.random.split(key, 3)
    f, lr = C.dense, 0.2
    par = C.tensor(C.gradient_learner(f, lr), C.gradient_learner(lambda p, x: jnp.tanh(p * x), lr))
    ps = ({"w": jax.random.normal(k1, (2, 3)), "b": jnp.zeros(2)}, jnp.ones(3))
    a = (jax.random.normal(k2, (3,)), jnp.arange(3.0))
    b = (jax.random.normal(k3, (2,)), jnp.zeros(3))
    loss = lambda ps: sum(0.5 * jnp.sum((o - t) ** 2) for o, t in zip(par.implement(ps, a), b, strict=True))
    assert_trees_close(par.update(ps, a, b), _gd(loss, ps, lr, jax.grad), 1e-12, atol=1e-14)


def test_batch_update_is_gradient_descent_on_the_mean_error(key):
    k1, k2, k3 = jax.random.split(key, 3)
    L, lr = C.mlp_learner(2, 0.3), 0.3
    p = C.mlp_init(k1, [2, 6, 1], jnp.float64)
    A, B = jax.random.normal(k2, (16, 2), jnp.float64), jax.random.normal(k3, (16, 1), jnp.float64)
    loss = lambda p: jnp.mean(jax.vmap(lambda a, b: 0.5 * jnp.sum((L.implement(p, a) - b) ** 2))(A, B))
    assert_trees_close(jax.jit(lambda p: C.batch_update(L, p, A, B))(p), _gd(loss, p, lr, fungpt.grad), 1e-12,
                       atol=1e-14)


def test_bad_input_errors():
    with pytest.raises(ValueError, match="n_layers"):
        C.mlp_learner(0, 0.1)
    with pytest.raises(ValueError, match="at least one"):
        C.compose()
    with pytest.raises(ValueError, match="m\\^n"):
        C.finset_hom(30, 30)


@pytest.mark.slow
def test_experiment_runs_quick(tmp_path):
    # In-process (import + main) under this strict harness: no second JAX start-up, shared compile caches.
    spec = importlib.util.spec_from_file_location("ch12_category", ROOT / "experiments" / "ch12_category.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.main(["--quick", "--out", str(tmp_path)])
    for png in ("ch12_lens_training.png", "ch12_finset.png", "ch12_monoid_fold.png"):
        assert (tmp_path / png).exists(), png
    res = json.loads((tmp_path / "ch12_category.json").read_text())
    assert res["finset"]["assoc_failures"] == res["finset"]["identity_failures"] == 0
    assert res["finset"]["triples_checked"] == 4 * 9 * 8  # |Hom(2,2)| |Hom(2,3)| |Hom(3,2)|
    assert all(r["tree_fold (pairwise)"] < 1e-6 for r in res["folds"])  # float32 pairwise: O(log n) eps


# --------------------------------------------------------------------------- extremes (issue 17)

def test_finset_compose_refuses_a_codomain_that_is_not_the_domain():
    g = jnp.asarray([2, 0, 1])
    np.testing.assert_array_equal(C.finset_compose(g, jnp.asarray([0, 2, 1, 1])), [2, 1, 0, 0])  # g[f[i]] by hand
    with pytest.raises(ValueError, match="outside g's domain"):
        C.finset_compose(g, jnp.asarray([0, 3]))  # used to clamp to g[2] silently
    np.testing.assert_array_equal(jax.jit(C.finset_compose)(g, jnp.asarray([0, 3, -1])), [2, -1, -1])


def test_empty_folds_and_scans_give_the_unit_and_the_empty_scan():
    # the unit of a monoid is the fold of nothing (Python's sum([]) = 0, max over nothing = -inf)
    assert C.fold(C.SUM, []) == sum([]) and C.tree_fold(C.SUM, []) == 0
    assert C.fold(C.MAX, []) == -np.inf and C.tree_fold(C.STRING, []) == ""
    assert C.prefix_scan(jnp.add, jnp.zeros(0)).shape == np.cumsum(np.zeros(0)).shape
    big = jnp.asarray([1e30, 1e30, -1e30, -1e30], jnp.float32)  # float32 near its top: the scan keeps the order
    np.testing.assert_array_equal(C.prefix_scan(jnp.maximum, big), np.maximum.accumulate(np.asarray(big)))
