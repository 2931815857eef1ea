"""CNF conversion and DPLL against sympy (`to_cnf`, `satisfiable`), exhaustive enumeration and a model check."""
import itertools

import jax
import numpy as np
import pytest
import sympy
from hypothesis import given, settings
from hypothesis import strategies as st

from fungpt import discrete as dm

SETTINGS = settings(max_examples=30, deadline=None, derandomize=True)
N = 4  # atoms in the random formulas
SYMS = sympy.symbols(f"v1:{N + 1}")


def naive(f, row):
    """Test-only truth value of a formula tree on one assignment tuple, in plain Python bools."""
    if isinstance(f, dm.Atom):
        return row[f.index - 1]
    if isinstance(f, dm.Not):
        return not naive(f.arg, row)
    a, b = naive(f.a, row), naive(f.b, row)
    return {dm.And: a and b, dm.Or: a or b, dm.Implies: (not a) or b, dm.Iff: a == b}[type(f)]


def to_sympy(f):
    if isinstance(f, dm.Atom):
        return SYMS[f.index - 1]
    if isinstance(f, dm.Not):
        return sympy.Not(to_sympy(f.arg))
    op = {dm.And: sympy.And, dm.Or: sympy.Or, dm.Implies: sympy.Implies, dm.Iff: sympy.Equivalent}[type(f)]
    return op(to_sympy(f.a), to_sympy(f.b))


def cnf_to_sympy(cnf):
    lit = lambda l: SYMS[l - 1] if l > 0 else sympy.Not(SYMS[-l - 1])
    return sympy.And(*[sympy.Or(*[lit(l) for l in c]) for c in cnf])


def cnf_value(cnf, row):
    return all(any(row[abs(l) - 1] == (l > 0) for l in c) for c in cnf)


def rows(n):
    return list(itertools.product([False, True], repeat=n))


@st.composite
def formulas(draw, depth=3):
    if depth == 0 or draw(st.integers(0, 4)) == 0:
        return dm.Atom(draw(st.integers(1, N)))
    kind = draw(st.sampled_from(["not", "and", "or", "implies", "iff"]))
    a = draw(formulas(depth=depth - 1))
    if kind == "not":
        return ~a
    b = draw(formulas(depth=depth - 1))
    return {"and": a & b, "or": a | b, "implies": a >> b, "iff": dm.iff(a, b)}[kind]


@SETTINGS
@given(formulas())
def test_cnf_by_distribution_is_equivalent(f):
    cnf = dm.to_cnf(f)
    # every row of the truth table: the naive evaluator, our vectorized `holds`, the CNF
    table = np.array(rows(N))
    want = [naive(f, r) for r in map(tuple, table)]
    assert np.asarray(dm.holds(f, [table[:, i] for i in range(N)])).tolist() == want
    assert np.asarray(dm.cnf_holds(cnf, table)).tolist() == want
    # sympy: our CNF is equivalent to sympy's to_cnf of the same formula (their xor is unsatisfiable)
    assert sympy.satisfiable(sympy.Xor(cnf_to_sympy(cnf), sympy.to_cnf(to_sympy(f)))) is False
    assert all(c and not any(-l in c for l in c) and len(set(c)) == len(c) for c in cnf)  # no tautology, no dup


@SETTINGS
@given(formulas())
def test_tseitin_keeps_models_and_dpll_agrees_with_sympy(f):
    cnf, n = dm.tseitin(f)
    nf = dm.num_vars(f)
    models_f = [r for r in rows(nf) if naive(f, r)]
    # each model of f extends to exactly one model of the Tseitin CNF, and its first nf variables are f's model
    table = np.array(rows(n))
    ok = table[np.asarray(dm.cnf_holds(cnf, table))]
    assert sorted(map(tuple, ok[:, :nf].tolist())) == sorted(models_f)
    assert len(cnf) <= 4 * (n - dm.num_vars(f)) + 1 and all(len(c) <= 3 for c in cnf)  # linear size
    for solve_cnf in (dm.to_cnf(f), cnf):
        model, nodes = dm.dpll(solve_cnf)
        assert (model is not None) == bool(sympy.satisfiable(to_sympy(f))) == bool(models_f)
        if model is not None:  # the model check: the assignment satisfies the CNF (and hence f)
            assert cnf_value(solve_cnf, [model[v] for v in range(1, len(model) + 1)]) and nodes >= 1
    model = dm.sat_solve(f)
    assert (model is None) == (not models_f)
    if model is not None:
        assert naive(f, tuple(model[v] for v in range(1, nf + 1)))


@pytest.mark.parametrize("seed", range(6))
def test_dpll_on_random_3sat_matches_enumeration_and_sympy(seed):
    n = 12
    cnf = dm.random_cnf(seed, n, round(4.26 * n))
    model, _ = dm.dpll(cnf, n)
    brute, tested = dm.brute_force_sat(cnf, n, chunk=1000)
    exhaustive = any(cnf_value(cnf, r) for r in rows(n))
    assert (model is not None) == (brute is not None) == exhaustive
    assert bool(sympy.satisfiable(cnf_to_sympy_n(cnf, n))) == exhaustive
    if model is not None:
        assert cnf_value(cnf, [model[v] for v in range(1, n + 1)])
        assert cnf_value(cnf, [brute[v] for v in range(1, n + 1)])
        # the first model in counting order is found after testing exactly its row number + 1 rows
        assert tested == 1 + sum(brute[v] << (v - 1) for v in range(1, n + 1))
    else:
        assert tested == 2**n


def cnf_to_sympy_n(cnf, n):
    s = sympy.symbols(f"w1:{n + 1}")
    return sympy.And(*[sympy.Or(*[s[l - 1] if l > 0 else ~s[-l - 1] for l in c]) for c in cnf])


def test_each_dpll_rule_does_its_job():
    # unit propagation alone solves an implication chain x1, x1 → x2, ..., x_{n-1} → x_n (no branching)
    chain = [(1,)] + [(-i, i + 1) for i in range(1, 30)]
    assert dm.dpll(chain) == ({v: True for v in range(1, 31)}, 1)
    # the pure-literal rule alone solves a CNF without units whose literals are all positive
    # (x1 pure: clauses 1 and 3 go; then x2 pure; x3, x4 are left free and set False)
    assert dm.dpll([(1, 2), (2, 3), (3, 4, 1)]) == ({1: True, 2: True, 3: False, 4: False}, 1)
    # branching: x ∨ y, ¬x ∨ y, x ∨ ¬y, ¬x ∨ ¬y is unsatisfiable, refuted after trying both values of x
    model, nodes = dm.dpll([(1, 2), (-1, 2), (1, -2), (-1, -2)])
    assert model is None and nodes == 3
    assert dm.dpll([]) == ({}, 1) and dm.dpll([()], 2) == (None, 1)
    assert dm.dpll([(3,)], 5)[0] == {1: False, 2: False, 3: True, 4: False, 5: False}  # free variables: False


def test_distribution_blows_up_where_tseitin_stays_linear():
    for k in range(1, 7):
        xs = dm.atoms(2 * k)
        dnf = xs[0] & xs[1]
        for i in range(1, k):
            dnf = dnf | (xs[2 * i] & xs[2 * i + 1])
        assert len(dm.to_cnf(dnf)) == 2**k  # one clause per choice of one atom from each term
        cnf, n = dm.tseitin(dnf)
        assert n == 2 * k + (2 * k - 1) and len(cnf) == 3 * (2 * k - 1) + 1  # one variable, 3 clauses per ∧/∨


def test_python_functions_become_formulas_and_truth_tables_agree():
    f = lambda a, b, c: dm.implies(a & b, c) | ~dm.iff(a, c)
    g = dm.formula_of(f, 3)
    rows_, vals = dm.truth_table(f, 3)
    assert np.asarray(vals).tolist() == [naive(g, tuple(r)) for r in np.asarray(rows_).tolist()]
    holds = jax.jit(lambda cols: dm.holds(g, cols))
    assert np.asarray(holds([rows_[:, i] for i in range(3)])).tolist() == np.asarray(vals).tolist()
    cnf = dm.to_cnf(g)  # the CNF on jnp arrays under jit, on numpy arrays eagerly: the same truth table
    assert np.asarray(jax.jit(lambda r: dm.cnf_holds(cnf, r))(rows_)).tolist() == np.asarray(vals).tolist()
    assert dm.cnf_holds(cnf, np.asarray(rows_)).tolist() == np.asarray(vals).tolist()


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="DIMACS"):
        dm.Atom(0)
    with pytest.raises(ValueError, match="nonzero"):
        dm.dpll([(1, 0)])
    with pytest.raises(ValueError, match="n_vars"):
        dm.dpll([(3,)], 2)
    with pytest.raises(TypeError, match="Formula"):
        dm.Atom(1) & True
    with pytest.raises(ValueError, match="k <= n_vars"):
        dm.random_cnf(0, 2, 5, 3)
    with pytest.raises(ValueError, match="no value for Atom"):
        dm.holds(dm.Atom(3), [True])
