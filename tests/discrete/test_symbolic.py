"""Symbolic expressions against sympy and autodiff."""
import dataclasses
import importlib.util
import math
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import sympy
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import fungpt
from fungpt import discrete as dm
from tests.helpers import GRAD as TOL  # f32 2e-3, f64 1e-9: relative

SETTINGS = settings(max_examples=12, deadline=None, derandomize=True)


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


def _distinct_subtrees(e, seen):
    """Test-only count of the DAG: every subtree put in a set (frozen dataclasses hash by structure)."""
    seen.add(e)
    for field in dataclasses.fields(e):
        if isinstance(child := getattr(e, field.name), dm.Expr):
            _distinct_subtrees(child, seen)
    return seen


def test_dag_size_counts_distinct_subtrees():
    f = x
    for k in range(1, 6):
        f = dm.sin(f) * f
        for e in (f, dm.diff(f, "x", simplified=False), dm.diff(f, "x"), dm.diff(f * y + y * f, "y")):
            assert dm.dag_size(e) == len(_distinct_subtrees(e, set()))
        # each level adds sin, mul and a constant number of derivative nodes: linear, where the tree doubles
        assert dm.dag_size(dm.diff(f, "x", simplified=False)) == 7 * k + 1
    # equal subtrees built as separate objects are still one node; Const(2) and Const(3) are two
    assert dm.dag_size(dm.sin(x + 1) * dm.sin(x + 1)) == 5 and dm.dag_size(x * 2 + x * 3) == 6
    # ... and nodes that differ only in child order, in type or in function are different nodes
    assert dm.dag_size((x + y) * (y + x)) == len(_distinct_subtrees((x + y) * (y + x), set())) == 5
    assert dm.dag_size((x + y) * (x * y)) == 5 and dm.dag_size(dm.sin(x) + dm.cos(x)) == 4
    # sympy's common-subexpression elimination finds the repeated subtrees too: f_2 = sin(sin(x)·x)·(sin(x)·x)
    f2 = dm.sin(dm.sin(x) * x) * (dm.sin(x) * x)
    replacements, _ = sympy.cse(to_sympy(f2))
    assert len(replacements) == 1 and dm.dag_size(f2) == 5 < dm.expr_size(f2) == 10


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


@pytest.mark.slow  # ~7 s of compiles; tests/test_roadmap.py runs ch09 in --quick mode too
def test_experiment_runs_quick(tmp_path):
    """Smoke test: the chapter's experiment in --quick mode, in this process (no second jax import)."""
    path = pathlib.Path(__file__).resolve().parents[2] / "experiments" / "ch09_discrete.py"
    spec = importlib.util.spec_from_file_location("ch09_discrete", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.main(["--quick", "--out", str(tmp_path)])
    assert (tmp_path / "ch09_discrete.json").exists()
