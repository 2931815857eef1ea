"""Chapter 9, combinatorics & discrete math: sets, propositional logic and SAT, counting, recurrences, trees
(pytrees are trees; a jittable binary heap) and symbolic expressions with symbolic differentiation.

Conventions.  A *set* is either a sorted array of distinct values (`as_set`, `union`, ...) or, over a
universe {0, ..., n−1}, an indicator vector / integer bitmask (bit i set ⇔ i ∈ S), where ∪, ∩, ∖ are
|, &, &~.  A *propositional formula* on n variables is a Python function of n bool arrays built from
jnp's logical operators, so one call evaluates it on every row of the truth table.  Exact counts are
Python ints (unbounded); log-counts are jnp floats (jittable) for n far beyond any float's range.
Formulas can also be trees (`Atom`, `Not`, `And`, `Or`, `Implies`, `Iff`) converted to CNF and solved by DPLL
(`sat`).  Every public name lives at ``fungpt.discrete.NAME``; the modules are `sets_logic`, `sat`, `counting`,
`recurrences`, `trees`, `heap` and `symbolic`.
"""
from fungpt.discrete.counting import (
    comb,
    combinations,
    factorial,
    log_comb,
    log_factorial,
    log_perm,
    nth_permutation,
    perm,
    permutation_rank,
    permutations,
    stirling,
    stirling_log_error,
)
from fungpt.discrete.heap import Heap, heap_init, heap_is_valid, heap_pop, heap_push, heap_sort, heapify
from fungpt.discrete.recurrences import (
    binet,
    catalan,
    characteristic_roots,
    companion_matrix,
    fibonacci,
    linear_recurrence,
    linear_recurrence_nth,
    recurrence_closed_form,
)
from fungpt.discrete.sat import (
    And,
    Atom,
    Formula,
    Iff,
    Implies,
    Not,
    Or,
    atoms,
    brute_force_sat,
    cnf_holds,
    dpll,
    formula_of,
    holds,
    nnf,
    num_vars,
    random_cnf,
    sat_solve,
    to_cnf,
    tseitin,
)
from fungpt.discrete.sets_logic import (
    as_set,
    bitmask,
    bits,
    contains,
    difference,
    equivalent,
    iff,
    implies,
    intersection,
    is_subset,
    is_tautology,
    models,
    power_set,
    power_set_masks,
    satisfiable,
    truth_table,
    union,
)
from fungpt.discrete.symbolic import (
    Add,
    Call,
    Const,
    Expr,
    Mul,
    Pow,
    Var,
    cos,
    dag_size,
    diff,
    evaluate,
    exp,
    expr_size,
    log,
    simplify,
    sin,
    tanh,
)
from fungpt.discrete.trees import traverse, tree_children, tree_depth, tree_graph, tree_leaf_count, tree_paths

__all__ = [
    "Add", "And", "Atom", "Call", "Const", "Expr", "Formula", "Heap", "Iff", "Implies", "Mul", "Not", "Or", "Pow",
    "Var", "as_set", "atoms", "binet", "bitmask", "bits", "brute_force_sat", "catalan", "characteristic_roots",
    "cnf_holds", "comb", "combinations", "companion_matrix", "contains", "cos", "dag_size", "diff", "difference",
    "dpll", "equivalent", "evaluate", "exp", "expr_size", "factorial", "fibonacci", "formula_of", "heap_init",
    "heap_is_valid", "heap_pop", "heap_push", "heap_sort", "heapify", "holds", "iff", "implies", "intersection",
    "is_subset", "is_tautology", "linear_recurrence", "linear_recurrence_nth", "log", "log_comb", "log_factorial",
    "log_perm", "models", "nnf", "nth_permutation", "num_vars", "perm", "permutation_rank", "permutations",
    "power_set", "power_set_masks", "random_cnf", "recurrence_closed_form", "sat_solve", "satisfiable", "simplify",
    "sin", "stirling", "stirling_log_error", "tanh", "to_cnf", "traverse", "tree_children", "tree_depth",
    "tree_graph", "tree_leaf_count", "tree_paths", "truth_table", "tseitin", "union",
]

