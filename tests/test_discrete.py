"""Chapter 9 (discrete math) against Python's sets, itertools, math, sympy, mpmath, networkx, jax.tree_util
and jax.grad."""
import functools
import importlib.util
import itertools
import math
import pathlib

import jax
import jax.numpy as jnp
import mpmath
import networkx as nx
import numpy as np
import pytest
import sympy
from conftest import TOL
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from sympy.combinatorics import Permutation

import fungpt
from fungpt import discrete as dm
from fungpt import graphs

SETTINGS = settings(max_examples=12, deadline=None, derandomize=True)
small_sets = st.lists(st.integers(0, 9), min_size=6, max_size=6)  # one shape: one compilation


# ------------------------------------------------------------------------------------------------- sets

@SETTINGS
@given(small_sets, small_sets)
def test_set_operations_match_python_sets(a, b):
    A, B = set(a), set(b)
    a, b = np.array(a, np.int64), np.array(b, np.int32)  # different dtypes on purpose
    assert dm.as_set(a).tolist() == sorted(A)
    assert dm.union(a, b).tolist() == sorted(A | B)
    assert dm.intersection(a, b).tolist() == sorted(A & B)
    assert dm.difference(a, b).tolist() == sorted(A - B)
    assert bool(dm.is_subset(a, b)) == (A <= B)
    assert dm.contains(dm.as_set(b), np.arange(10)).tolist() == [x in B for x in range(10)]
    ma, mb = dm.bitmask(a), dm.bitmask(b)
    assert dm.bits(ma | mb) == sorted(A | B) and dm.bits(ma & mb) == sorted(A & B)
    assert dm.bits(ma & ~mb) == sorted(A - B)
    assert dm.bits(~(ma | mb) & 1023) == sorted(set(range(10)) - A - B)  # De Morgan, complement in 0..9


def test_empty_sets_and_as_set_with_size_is_jittable():
    empty = np.zeros(0, np.int64)
    assert dm.union(empty, [2, 1]).tolist() == [1, 2] and dm.intersection(empty, [1]).tolist() == []
    assert dm.difference([3], empty).tolist() == [3] and bool(dm.is_subset(empty, [1]))
    x = jnp.array([5, 1, 5, 3, 1])
    got = jax.jit(functools.partial(dm.as_set, size=4, fill_value=-1))(x)
    assert got.tolist() == [1, 3, 5, -1]


@pytest.mark.parametrize("n", [0, 4])
def test_power_set_matches_sympy(n):
    elems = [2, 3, 5, 7][:n]
    ours = {tuple(s.tolist()) for s in dm.power_set(np.array(elems, int))}
    theirs = {tuple(sorted(s)) for s in sympy.FiniteSet(*elems).powerset()}
    assert ours == theirs and len(ours) == 2**n
    masks = np.asarray(dm.power_set_masks(n))
    assert masks.shape == (2**n, n)
    assert [dm.bitmask(np.flatnonzero(r)) for r in masks] == list(range(2**n))


# ---------------------------------------------------------------------------------------------- logic

A, B, C = sympy.symbols("a b c")
FORMULAS = [  # (ours, sympy's) — the same formula written twice, independently
    (lambda a, b, c: dm.implies(a & b, c), sympy.Implies(A & B, C)),
    (lambda a, b, c: (a | b) & ~(a & b) & dm.iff(b, c), (A ^ B) & sympy.Equivalent(B, C)),
    (lambda a, b, c: (a | ~a) & (b | c), (A | ~A) & (B | C)),
    (lambda a, b, c: a & ~a & (b | c), A & ~A & (B | C)),
    (lambda a, b, c: dm.implies(dm.implies(a, b), a) | c, sympy.Implies(sympy.Implies(A, B), A) | C),
]


@pytest.mark.parametrize("i", range(len(FORMULAS)))
def test_truth_tables_and_satisfiability_match_sympy(i):
    ours, theirs = FORMULAS[i]
    rows, vals = dm.truth_table(ours, 3)
    want = list(sympy.logic.boolalg.truth_table(theirs, [A, B, C]))
    assert rows.astype(int).tolist() == [list(r) for r, _ in want]
    assert vals.tolist() == [bool(v) for _, v in want]
    assert bool(dm.satisfiable(ours, 3)) == bool(sympy.satisfiable(theirs))
    assert bool(dm.is_tautology(ours, 3)) == (not sympy.satisfiable(~theirs))
    models = {tuple(m) for m in dm.models(ours, 3).tolist()}
    want_models = {tuple(bool(m[s]) for s in (A, B, C))
                   for m in sympy.satisfiable(theirs, all_models=True) if m}
    if sympy.satisfiable(theirs):  # sympy leaves out variables that do not matter; expand them
        want_models = {r for r in itertools.product([False, True], repeat=3)
                       if theirs.subs(dict(zip((A, B, C), r, strict=True)))}
    assert models == want_models


def test_equivalence_by_enumeration():
    de_morgan = dm.equivalent(lambda a, b: ~(a & b), lambda a, b: ~a | ~b, 2)
    contrapositive = dm.equivalent(lambda a, b: dm.implies(a, b), lambda a, b: dm.implies(~b, ~a), 2)
    converse = dm.equivalent(lambda a, b: dm.implies(a, b), lambda a, b: dm.implies(b, a), 2)
    assert bool(de_morgan) and bool(contrapositive) and not bool(converse)
    assert sympy.simplify_logic(sympy.Equivalent(sympy.Implies(A, B), sympy.Implies(B, A))) != sympy.true
    with pytest.raises(TypeError, match="bool"):
        dm.truth_table(lambda a: jnp.where(a, 1, 0), 1)


# ------------------------------------------------------------------------------------------- counting

def test_exact_counts_match_math():
    for n in (0, 1, 5, 30, 200):
        assert dm.factorial(n) == math.factorial(n)
        for k in (0, 1, 3, n, n + 2):
            assert dm.comb(n, k) == math.comb(n, k)
            assert dm.perm(n, k) == math.perm(n, k)
    with pytest.raises(ValueError, match="non-negative int"):
        dm.comb(-1, 2)
    with pytest.raises(ValueError, match="non-negative int"):
        dm.factorial(2.5)


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_log_counts_match_mpmath(dtype):
    n = jnp.array([1.0, 10.0, 1e3, 1e6, 1e15], dtype)
    k = jnp.floor(n / 3)
    lf = jax.jit(dm.log_factorial)(n)
    lc, lp = dm.log_comb(n, k), dm.log_perm(n, k)
    mpmath.mp.dps = 40
    for i, (ni, ki) in enumerate(zip(np.asarray(n, np.float64), np.asarray(k, np.float64), strict=True)):
        ni, ki = mpmath.mpf(ni), mpmath.mpf(ki)
        want_f = mpmath.loggamma(ni + 1)
        want_c = mpmath.log(mpmath.binomial(ni, ki))
        want_p = want_f - mpmath.loggamma(ni - ki + 1)
        rtol = TOL[np.dtype(dtype)]
        np.testing.assert_allclose(float(lf[i]), float(want_f), rtol=rtol)
        np.testing.assert_allclose(float(lc[i]), float(want_c), rtol=rtol, atol=rtol)
        np.testing.assert_allclose(float(lp[i]), float(want_p), rtol=rtol, atol=rtol)


def test_stirling_error_is_within_robbins_bounds():
    n = jnp.arange(1, 60, dtype=jnp.float64)
    err = dm.stirling_log_error(n)
    nn = np.asarray(n)
    assert np.all(1 / (12 * nn + 1) < np.asarray(err)) and np.all(np.asarray(err) < 1 / (12 * nn))
    exact = np.array([float(math.factorial(int(v))) for v in nn[:20]])
    rel = 1 - np.asarray(dm.stirling(n[:20])) / exact
    np.testing.assert_allclose(rel, -np.expm1(-np.asarray(err[:20])), rtol=1e-6)


@pytest.mark.parametrize("n", [0, 1, 4])
def test_enumerations_match_itertools(n):
    assert dm.permutations(n).tolist() == [list(p) for p in itertools.permutations(range(n))]
    for k in range(n + 2):
        assert dm.combinations(n, k).tolist() == [list(c) for c in itertools.combinations(range(n), k)]
        assert len(dm.combinations(n, k)) == dm.comb(n, k)


def test_nth_permutation_and_rank_are_inverse_bijections():
    n = 5
    perms = jax.jit(jax.vmap(functools.partial(dm.nth_permutation, n)))(jnp.arange(math.factorial(n)))
    assert perms.tolist() == [list(p) for p in itertools.permutations(range(n))]
    ranks = jax.jit(jax.vmap(dm.permutation_rank))(perms)
    assert ranks.tolist() == list(range(math.factorial(n)))
    p = [int(v) for v in np.random.default_rng(0).permutation(12)]
    # sympy's Permutation.rank() is the same lexicographic index
    assert int(dm.permutation_rank(jnp.array(p))) == Permutation(p).rank()


# ------------------------------------------------------------------------- recursion and recurrences

def test_fibonacci_and_catalan_match_sympy():
    for n in (0, 1, 2, 10, 93, 1000):
        assert dm.fibonacci(n) == sympy.fibonacci(n)
    for n in (0, 1, 5, 30):
        assert dm.catalan(n) == sympy.catalan(n) == math.comb(2 * n, n) // (n + 1)
    n = jnp.arange(71, dtype=jnp.float64)
    assert np.rint(np.asarray(dm.binet(n))).astype(np.int64).tolist() == [dm.fibonacci(i) for i in range(71)]


def _binary_trees(n):
    # all binary-tree shapes with n internal nodes, as nested tuples (leaves are None)
    if n == 0:
        return [None]
    return [(l, r) for i in range(n) for l in _binary_trees(i) for r in _binary_trees(n - 1 - i)]


def test_catalan_counts_binary_trees():
    for n in range(7):
        assert len(_binary_trees(n)) == dm.catalan(n)


@pytest.mark.parametrize("coeffs,init", [
    ([1, 1], [0, 1]),                    # Fibonacci
    ([0, 1, 1], [3, 0, 2]),              # Perrin
    ([6, -11, 6], [1, 2, 5]),            # characteristic roots 1, 2, 3
])
def test_linear_recurrences_three_ways(coeffs, init):
    n = 40
    naive = list(init)  # explicit loop with Python ints: exact
    while len(naive) < n:
        naive.append(sum(c * naive[-1 - i] for i, c in enumerate(coeffs)))
    c, a = jnp.array(coeffs, jnp.int64), jnp.array(init, jnp.int64)
    assert dm.linear_recurrence(c, a, n).tolist() == naive
    step = jax.jit(dm.linear_recurrence_nth, static_argnums=2)
    assert [int(step(c, a, t)) for t in (1, 39)] == [naive[t] for t in (1, 39)]
    roots, w = dm.recurrence_closed_form(c.astype(jnp.float64), a.astype(jnp.float64))
    want_roots = sympy.Poly([1, *[-v for v in coeffs]], sympy.Symbol("x")).nroots()
    np.testing.assert_allclose(np.sort_complex(np.asarray(roots)),
                               np.sort_complex(np.array(want_roots, complex)), rtol=1e-9, atol=1e-12)
    t = jnp.arange(25, dtype=jnp.float64)
    closed = jnp.real(jnp.sum(w[None, :] * roots[None, :] ** t[:, None].astype(roots.dtype), axis=1))
    np.testing.assert_allclose(closed, naive[:25], rtol=1e-8, atol=1e-6)


def test_repeated_roots_are_refused():
    with pytest.raises(ValueError, match="repeat"):
        dm.recurrence_closed_form(jnp.array([2.0, -1.0]), jnp.array([0.0, 1.0]))  # (x − 1)²


# --------------------------------------------------------------------------------------- trees (pytrees)

TREES = [
    {"wte": jnp.zeros(2), "h": [{"w": 1.0, "b": 2.0}, {"w": 3.0, "b": (4.0, 5.0)}], "ln_f": {"g": 6.0}},
    [1.0, [2.0, [3.0, [4.0]]]],
    (jnp.ones(3),),
    7.0,
]


def _nx_tree(tree):
    """The same tree built independently from JAX's leaf key paths: every prefix of a leaf path is a node."""
    G = nx.DiGraph()
    G.add_node(())
    for path, _ in jax.tree_util.tree_flatten_with_path(tree)[0]:
        for i in range(len(path)):
            G.add_edge(tuple(path[:i]), tuple(path[: i + 1]))
    return G


@pytest.mark.parametrize("i", range(len(TREES)))
def test_pytree_measures_and_traversals_match_networkx(i):
    tree = TREES[i]
    G = _nx_tree(tree)
    assert dm.tree_leaf_count(tree) == len(jax.tree_util.tree_leaves(tree))
    assert dm.tree_paths(tree) == [p for p, _ in jax.tree_util.tree_flatten_with_path(tree)[0]]
    assert dm.tree_depth(tree) == nx.dag_longest_path_length(G)
    assert dm.traverse(tree, "pre") == list(nx.dfs_preorder_nodes(G, ()))
    assert dm.traverse(tree, "post") == list(nx.dfs_postorder_nodes(G, ()))
    assert dm.traverse(tree, "level") == [(), *(v for _, v in nx.bfs_edges(G, ()))]
    g = dm.tree_graph(tree)
    H = nx.DiGraph([(u, v) for u in g for v in g[u]])
    H.add_nodes_from(g)
    assert nx.is_arborescence(H) and nx.utils.graphs_equal(H, G)
    assert graphs.topological_sort(g, "dfs")[0] == ()  # the root comes first


def test_empty_containers_are_nodes_without_leaves():
    tree = {"a": None, "b": [], "c": (1.0, {})}
    assert dm.tree_leaf_count(tree) == len(jax.tree_util.tree_leaves(tree)) == 1
    assert dm.tree_depth(tree) == 2
    assert len(dm.traverse(tree)) == 6  # root, a, b, c, c[0], c[1]


# ------------------------------------------------------------------------------ symbolic representations

x, y = dm.Var("x"), dm.Var("y")
SYM = {"x": sympy.Symbol("x", real=True), "y": sympy.Symbol("y", real=True)}


def to_sympy(e):
    """Test-only translation of our expression tree into sympy's."""
    if isinstance(e, dm.Const):
        return sympy.Float(e.value, 30) if not float(e.value).is_integer() else sympy.Integer(int(e.value))
    if isinstance(e, dm.Var):
        return SYM[e.name]
    if isinstance(e, dm.Add):
        return to_sympy(e.a) + to_sympy(e.b)
    if isinstance(e, dm.Mul):
        return to_sympy(e.a) * to_sympy(e.b)
    if isinstance(e, dm.Pow):
        return to_sympy(e.base) ** to_sympy(e.exponent)
    return getattr(sympy, e.fn)(to_sympy(e.arg))


@st.composite
def exprs(draw, depth=3):
    """Random expressions in x and y that are finite on the real line (log and division only of 1 + u²)."""
    if depth == 0 or draw(st.integers(0, 3)) == 0:
        return draw(st.sampled_from([x, y, dm.Const(2.0), dm.Const(-0.5), dm.Const(0.0), dm.Const(1.0)]))
    u = draw(exprs(depth=depth - 1))
    kind = draw(st.sampled_from(["add", "sub", "mul", "pow", "div", "sin", "cos", "tanh", "exp", "log"]))
    if kind in ("add", "sub", "mul"):
        v = draw(exprs(depth=depth - 1))
        return {"add": u + v, "sub": u - v, "mul": u * v}[kind]
    if kind == "pow":
        return u ** draw(st.sampled_from([0, 1, 2, 3]))
    if kind == "div":
        return u / (1 + u * u)
    if kind == "exp":
        return dm.exp(dm.tanh(u))
    if kind == "log":
        return dm.log(1 + u**2)
    return getattr(dm, kind)(u)


POINTS = np.array([[0.7, -1.3], [-0.4, 0.9]])


@SETTINGS
@given(exprs())
def test_symbolic_diff_matches_sympy_and_autodiff(e):
    f = lambda p: dm.evaluate(e, {"x": p[0], "y": p[1]})
    for p in POINTS:
        val = float(f(jnp.asarray(p)))
        assume(np.isfinite(val))
        s = to_sympy(e)
        subs = {SYM["x"]: p[0], SYM["y"]: p[1]}
        np.testing.assert_allclose(val, float(s.evalf(30, subs=subs)), rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(float(dm.evaluate(dm.simplify(e), {"x": p[0], "y": p[1]})), val,
                                   rtol=1e-10, atol=1e-12)
        ours = [float(dm.evaluate(dm.diff(e, v), {"x": p[0], "y": p[1]})) for v in ("x", "y")]
        theirs = [float(sympy.diff(s, SYM[v]).evalf(30, subs=subs)) for v in ("x", "y")]
        np.testing.assert_allclose(ours, theirs, rtol=1e-9, atol=1e-10)
        np.testing.assert_allclose(ours, fungpt.grad(f)(jnp.asarray(p)), rtol=1e-9, atol=1e-10)
        np.testing.assert_allclose(ours, jax.grad(f)(jnp.asarray(p)), rtol=1e-9, atol=1e-10)


def test_simplify_rules_and_printing():
    e = (x + 0) * 1 + 0 * y + x ** 1 + 2 * (3 * x) + dm.log(dm.exp(y)) + dm.Const(2.0) ** 3
    s = dm.simplify(e)
    assert sympy.simplify(to_sympy(s) - to_sympy(e)) == 0
    assert str(dm.simplify(x * x)) == "x**2"
    assert str(dm.simplify((x**2) ** 3)) == "x**6"
    assert dm.simplify(x + x) == dm.Mul(dm.Const(2.0), x)
    assert str(dm.diff(x**3 + dm.sin(x) * y, "x")) == "3*x**2 + cos(x)*y"
    assert dm.diff(dm.exp(x * y), "y") == dm.Mul(dm.Call("exp", dm.Mul(x, y)), x)
    assert str(dm.Const(-2.0) * (x + 1)) == "(-2)*(x + 1)"
    # x^y with a variable exponent: d/dx = y x^(y−1) and d/dy = x^y log x
    z = x**y
    p = {"x": 1.7, "y": 0.6}
    np.testing.assert_allclose(dm.evaluate(dm.diff(z, "x"), p), 0.6 * 1.7 ** -0.4, rtol=1e-12)
    np.testing.assert_allclose(dm.evaluate(dm.diff(z, "y"), p), 1.7**0.6 * math.log(1.7), rtol=1e-12)


def test_expression_size_and_sharing():
    f = x
    for k in range(1, 7):
        f = dm.sin(f) * f  # |f_k| = 2|f_{k−1}| + 2 with |f_0| = 1: |f_k| = 3·2^k − 2
        assert dm.expr_size(f) == 3 * 2**k - 2
    # evaluation shares the repeated subtree: the traced program grows linearly, not like 2^k
    n_eqns = len(jax.make_jaxpr(lambda v: dm.evaluate(f, {"x": v}))(0.5).jaxpr.eqns)
    assert n_eqns == 2 * 6
    np.testing.assert_allclose(dm.evaluate(dm.diff(f, "x", simplified=False), {"x": 0.5}),
                               dm.evaluate(dm.diff(f, "x"), {"x": 0.5}), rtol=1e-12)


def test_symbolic_evaluation_jits_vmaps_and_keeps_float32():
    e = dm.tanh(x) * y**2 + dm.Const(0.5)
    f = jax.jit(jax.vmap(lambda a, b: dm.evaluate(e, {"x": a, "y": b})))
    a = jnp.linspace(-1, 1, 5, dtype=jnp.float32)
    out = f(a, a)
    assert out.dtype == jnp.float32
    np.testing.assert_allclose(out, np.tanh(np.asarray(a)) * np.asarray(a) ** 2 + 0.5, rtol=TOL[np.dtype("float32")])
    with pytest.raises(KeyError, match="'y'"):
        dm.evaluate(e, {"x": 1.0})
    with pytest.raises(TypeError, match="Expr or a number"):
        x + "1"


# ----------------------------------------------------------------------------------------- experiment

def test_experiment_runs_quick(tmp_path):
    """Smoke test: the chapter's experiment in --quick mode, in this process (no second jax import)."""
    path = pathlib.Path(__file__).resolve().parents[1] / "experiments" / "ch09_discrete.py"
    spec = importlib.util.spec_from_file_location("ch09_discrete", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.main(["--quick", "--out", str(tmp_path)])
    assert (tmp_path / "ch09_discrete.json").exists()
