"""Sets and propositional logic against Python sets, sympy's power sets and satisfiability."""
import functools
import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import sympy
from hypothesis import given, settings
from hypothesis import strategies as st

from fungpt import discrete as dm

SETTINGS = settings(max_examples=12, deadline=None, derandomize=True)


small_sets = st.lists(st.integers(0, 9), min_size=6, max_size=6)  # one shape: one compilation


A, B, C = sympy.symbols("a b c")


FORMULAS = [  # (ours, sympy's) — the same formula written twice, independently
    (lambda a, b, c: dm.implies(a & b, c), sympy.Implies(A & B, C)),
    (lambda a, b, c: (a | b) & ~(a & b) & dm.iff(b, c), (A ^ B) & sympy.Equivalent(B, C)),
    (lambda a, b, c: (a | ~a) & (b | c), (A | ~A) & (B | C)),
    (lambda a, b, c: a & ~a & (b | c), A & ~A & (B | C)),
    (lambda a, b, c: dm.implies(dm.implies(a, b), a) | c, sympy.Implies(sympy.Implies(A, B), A) | C),
]


x, y = dm.Var("x"), dm.Var("y")


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
