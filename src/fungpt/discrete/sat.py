"""Propositional formulas as trees, conversion to CNF (by distribution and by Tseitin's encoding) and a DPLL
SAT solver.

Conventions (DIMACS).  Variables are numbered 1..n; a *literal* is a nonzero int, +v for "v is true" and −v for
"v is false"; a *clause* is a tuple of literals (their disjunction); a *CNF* is a list of clauses (their
conjunction).  The empty CNF is true, a CNF holding the empty clause is false.  A *model* is a dict {v: bool}
for every v in 1..n.
"""
from __future__ import annotations

import dataclasses
import functools
import operator
from collections.abc import Callable, Iterable, Sequence

import jax.numpy as jnp
import numpy as np

from fungpt.discrete._base import nonneg_int

__all__ = ["And", "Atom", "Formula", "Iff", "Implies", "Not", "Or", "atoms", "brute_force_sat", "cnf_holds", "dpll",
           "formula_of", "holds", "nnf", "num_vars", "random_cnf", "sat_solve", "to_cnf", "tseitin"]

Clause = tuple[int, ...]


class Formula:
    """A propositional formula: an immutable tree of Atom, Not, And, Or, Implies and Iff nodes.

    Build with Python operators: ``a & b``, ``a | b``, ``~a``, ``a >> b`` (a → b); `fungpt.discrete.implies` and
    `iff` also build nodes when given formulas.  Nodes are frozen dataclasses: hashable, compared by structure.
    """

    def __and__(self, o):
        return And(self, _formula(o))

    def __or__(self, o):
        return Or(self, _formula(o))

    def __invert__(self):
        return Not(self)

    def __rshift__(self, o):
        return Implies(self, _formula(o))


@dataclasses.dataclass(frozen=True)
class Atom(Formula):
    index: int  # 1-based, as in DIMACS

    def __post_init__(self):
        if isinstance(self.index, bool) or not isinstance(self.index, (int, np.integer)) or self.index < 1:
            raise ValueError(f"an Atom's index must be an int >= 1 (DIMACS numbering), got {self.index!r}")


@dataclasses.dataclass(frozen=True)
class Not(Formula):
    arg: Formula


@dataclasses.dataclass(frozen=True)
class And(Formula):
    a: Formula
    b: Formula


@dataclasses.dataclass(frozen=True)
class Or(Formula):
    a: Formula
    b: Formula


@dataclasses.dataclass(frozen=True)
class Implies(Formula):
    a: Formula
    b: Formula


@dataclasses.dataclass(frozen=True)
class Iff(Formula):
    a: Formula
    b: Formula


_BINARY = (And, Or, Implies, Iff)


def _formula(x) -> Formula:
    if not isinstance(x, Formula):
        raise TypeError(f"expected a Formula, got {type(x).__name__}")
    return x


def atoms(n: int) -> list[Atom]:
    """[Atom(1), ..., Atom(n)]."""
    return [Atom(i) for i in range(1, nonneg_int("n", n) + 1)]


def formula_of(f: Callable, n: int) -> Formula:
    """The formula that the Python function f(v_1, ..., v_n) builds from atoms: the same function that
    `truth_table` evaluates on arrays (if it uses only &, |, ~, `implies` and `iff`)."""
    return _formula(f(*atoms(n)))


def num_vars(f: Formula) -> int:
    """The largest atom index in f (0 if none)."""
    if isinstance(f, Atom):
        return f.index
    if isinstance(f, Not):
        return num_vars(f.arg)
    return max(num_vars(f.a), num_vars(f.b))


def holds(f: Formula, values: Sequence):
    """The truth value of f when Atom(i) has the value values[i − 1] (bools or bool arrays, broadcast
    elementwise: pass the columns of a truth table to evaluate every row at once).  Pure jnp: jittable."""
    if isinstance(f, Atom):
        if f.index > len(values):
            raise ValueError(f"no value for Atom({f.index}): only {len(values)} values given")
        return jnp.asarray(values[f.index - 1], bool)
    if isinstance(f, Not):
        return jnp.logical_not(holds(f.arg, values))
    a, b = holds(f.a, values), holds(f.b, values)
    op = {And: jnp.logical_and, Or: jnp.logical_or, Iff: jnp.equal,
          Implies: lambda x, y: jnp.logical_or(jnp.logical_not(x), y)}[type(f)]
    return op(a, b)


def nnf(f: Formula) -> Formula:
    """Negation normal form: → and ↔ rewritten (a → b ≡ ¬a ∨ b, a ↔ b ≡ (¬a ∨ b) ∧ (a ∨ ¬b)) and negations pushed
    to the atoms by De Morgan (¬(a ∧ b) ≡ ¬a ∨ ¬b, ¬(a ∨ b) ≡ ¬a ∧ ¬b) and ¬¬a ≡ a.  ↔ duplicates its
    arguments, so nested ↔ grow exponentially."""
    return _nnf(f, True)


def _nnf(f, positive):
    if isinstance(f, Atom):
        return f if positive else Not(f)
    if isinstance(f, Not):
        return _nnf(f.arg, not positive)
    if isinstance(f, Implies):
        return _nnf(Or(Not(f.a), f.b), positive)
    if isinstance(f, Iff):
        return _nnf(And(Or(Not(f.a), f.b), Or(f.a, Not(f.b))), positive)
    a, b = _nnf(f.a, positive), _nnf(f.b, positive)
    return (And if isinstance(f, And) == positive else Or)(a, b)


def to_cnf(f: Formula) -> list[Clause]:
    """An *equivalent* CNF by distribution: `nnf`, then a ∨ (b ∧ c) ≡ (a ∨ b) ∧ (a ∨ c) bottom-up (the clauses
    of A ∨ B are all unions of a clause of A with a clause of B).  Tautological clauses (v ∨ ¬v ∨ …) and
    duplicates are dropped.  No new variables, but the size can be exponential: the DNF
    (x₁ ∧ y₁) ∨ … ∨ (x_k ∧ y_k) has 2^k clauses.  Use `tseitin` for a linear-size, equisatisfiable CNF."""
    clauses = _distribute(nnf(_formula(f)))
    return sorted({tuple(sorted(c, key=lambda l: (abs(l), l))) for c in clauses}, key=lambda c: (len(c), c))


def _distribute(f) -> list[frozenset]:
    if isinstance(f, Atom):
        return [frozenset([f.index])]
    if isinstance(f, Not):  # in NNF the argument is an atom
        return [frozenset([-f.arg.index])]
    a, b = _distribute(f.a), _distribute(f.b)
    if isinstance(f, And):
        return a + b
    return [c for c in (ca | cb for ca in a for cb in b) if not any(-l in c for l in c)]


def tseitin(f: Formula) -> tuple[list[Clause], int]:
    """An *equisatisfiable* CNF by Tseitin's encoding: (clauses, number of variables).

    Each distinct connective node gets a new variable g (numbered after f's atoms) and clauses that say
    g ↔ (node), e.g. for g ↔ (a ∧ b): (¬g ∨ a), (¬g ∨ b), (g ∨ ¬a ∨ ¬b); plus the unit clause of the root.
    Negations cost nothing (a literal's sign).  Size: at most 4 clauses of at most 3 literals per connective,
    linear in |f|.  Every model of f extends to exactly one model of the CNF, so satisfiability and the number
    of models are kept; the first num_vars(f) variables of a CNF model are a model of f.
    """
    f = _formula(f)
    clauses: list[Clause] = []
    memo: dict[Formula, int] = {}  # equal subformulas share one variable (hash-consing)
    counter = [num_vars(f)]

    def lit(g) -> int:
        if isinstance(g, Atom):
            return g.index
        if isinstance(g, Not):
            return -lit(g.arg)
        if g not in memo:
            a, b = lit(g.a), lit(g.b)
            counter[0] += 1
            v = memo[g] = counter[0]
            if isinstance(g, Implies):
                a, g_type = -a, Or  # a → b ≡ ¬a ∨ b
            else:
                g_type = type(g)
            clauses.extend({And: [(-v, a), (-v, b), (v, -a, -b)],
                            Or: [(v, -a), (v, -b), (-v, a, b)],
                            Iff: [(-v, -a, b), (-v, a, -b), (v, a, b), (v, -a, -b)]}[g_type])
        return memo[g]

    clauses.append((lit(f),))
    return clauses, counter[0]


def _check_cnf(cnf, n_vars) -> tuple[list[frozenset], int]:
    cnf = [tuple(int(l) for l in c) for c in cnf]
    top = max((abs(l) for c in cnf for l in c), default=0)
    n = top if n_vars is None else nonneg_int("n_vars", n_vars)
    if any(l == 0 for c in cnf for l in c) or top > n:
        raise ValueError(f"literals must be nonzero ints with |literal| <= n_vars = {n} (DIMACS), got {cnf}")
    return [frozenset(c) for c in cnf], n


def cnf_holds(cnf: Iterable[Clause], values):
    """The truth value of a CNF at assignments ``values`` bool (..., n) (column v − 1 is variable v): bool (...).
    Works on numpy arrays (eager) and jnp arrays (jittable)."""
    out = values[..., 0:0].all(axis=-1)  # all-true of the batch shape, in values' own array type
    for c in cnf:
        cols = [values[..., abs(l) - 1] if l > 0 else ~values[..., abs(l) - 1] for l in c]
        out = out & functools.reduce(operator.or_, cols, values[..., 0:0].any(axis=-1))
    return out


def brute_force_sat(cnf: Sequence[Clause], n_vars: int | None = None, chunk: int = 1 << 16):
    """Satisfiability by enumeration: test the assignments 0, 1, 2, … (bit v − 1 of the row number is variable
    v) in vectorized chunks until one satisfies the CNF.  Returns (model or None, assignments tested):
    2ⁿ work on an unsatisfiable CNF, the baseline DPLL is measured against."""
    cnf, n = _check_cnf(cnf, n_vars)
    tested = 0
    for start in range(0, 2**n, chunk):
        rows = np.arange(start, min(start + chunk, 2**n), dtype=np.int64)
        values = (rows[:, None] >> np.arange(n)) & 1 == 1
        ok = np.flatnonzero(cnf_holds([tuple(c) for c in cnf], values))
        if ok.size:
            return {v + 1: bool(b) for v, b in enumerate(values[ok[0]])}, tested + int(ok[0]) + 1
        tested += rows.size
    return None, tested


def dpll(cnf: Sequence[Clause], n_vars: int | None = None):
    """The Davis–Putnam–Logemann–Loveland procedure.  Returns (model or None, nodes of the search tree).

    At each node: repeat until nothing changes — an empty clause means conflict (backtrack); a *unit clause*
    (l) forces l; a *pure literal* (l occurs, ¬l does not) can be set true without losing any model — then,
    if clauses remain, *branch* on a literal of a shortest clause, trying l, then ¬l.  Setting l true deletes
    the clauses holding l and removes ¬l from the others.  Worst case O(2ⁿ) nodes (SAT is NP-complete);
    propagation makes random 3-SAT far cheaper than enumeration.  Variables left free are set False.
    """
    clauses, n = _check_cnf(cnf, n_vars)
    stats = {"nodes": 0}
    model = _search(clauses, {}, stats)
    if model is None:
        return None, stats["nodes"]
    return {v: model.get(v, False) for v in range(1, n + 1)}, stats["nodes"]


def _assign(clauses, lit):
    # clauses satisfied by lit vanish; ¬lit is deleted from the others (an emptied clause is a conflict)
    return [c - {-lit} if -lit in c else c for c in clauses if lit not in c]


def _propagate(clauses, model):
    while True:
        if any(not c for c in clauses):
            return None, model
        lit = next((next(iter(c)) for c in clauses if len(c) == 1), None)  # unit clause
        if lit is None:
            lits = set().union(*clauses)
            lit = min((l for l in lits if -l not in lits), default=None, key=abs)  # pure literal
        if lit is None:
            return clauses, model
        clauses, model = _assign(clauses, lit), {**model, abs(lit): lit > 0}


def _search(clauses, model, stats):
    stats["nodes"] += 1
    clauses, model = _propagate(clauses, model)
    if clauses is None:
        return None
    if not clauses:
        return model
    lit = min(min(clauses, key=len), key=abs)  # a literal of a shortest clause: most constrained
    for choice in (lit, -lit):
        found = _search(_assign(clauses, choice), {**model, abs(choice): choice > 0}, stats)
        if found is not None:
            return found
    return None


def sat_solve(f: Formula):
    """A model of the formula f ({i: bool} for its atoms 1..num_vars(f)) or None if it is unsatisfiable:
    `tseitin`, then `dpll`, then the model restricted to f's own atoms."""
    cnf, n = tseitin(f)
    model, _ = dpll(cnf, n)
    return None if model is None else {v: model[v] for v in range(1, num_vars(f) + 1)}


def random_cnf(seed, n_vars: int, n_clauses: int, k: int = 3) -> list[Clause]:
    """A random k-SAT instance: n_clauses clauses, each k distinct variables drawn uniformly from 1..n_vars,
    each negated with probability ½.  Near n_clauses / n_vars ≈ 4.26 (k = 3) about half are satisfiable and
    they are hardest for DPLL (the phase transition).  seed: an int or a numpy Generator."""
    n_vars, n_clauses, k = nonneg_int("n_vars", n_vars), nonneg_int("n_clauses", n_clauses), nonneg_int("k", k)
    if not 1 <= k <= n_vars:
        raise ValueError(f"need 1 <= k <= n_vars, got k={k}, n_vars={n_vars}")
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n_clauses):
        v = rng.choice(n_vars, size=k, replace=False) + 1
        out.append(tuple(int(x) for x in np.where(rng.random(k) < 0.5, -v, v)))
    return out
