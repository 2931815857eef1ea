"""Chapter 9, combinatorics & discrete math: sets, propositional logic, counting, recurrences, trees
(pytrees are trees) and symbolic expressions with symbolic differentiation.

Conventions.  A *set* is either a sorted array of distinct values (`as_set`, `union`, ...) or, over a
universe {0, ..., n−1}, an indicator vector / integer bitmask (bit i set ⇔ i ∈ S), where ∪, ∩, ∖ are
|, &, &~.  A *propositional formula* on n variables is a Python function of n bool arrays built from
jnp's logical operators, so one call evaluates it on every row of the truth table.  Exact counts are
Python ints (unbounded); log-counts are jnp floats (jittable) for n far beyond any float's range.
Every public name lives at ``fungpt.discrete.NAME``; the modules are `sets_logic`, `counting`, `recurrences`,
`trees` and `symbolic`.
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
    "Add", "Call", "Const", "Expr", "Mul", "Pow", "Var", "as_set", "binet", "bitmask", "bits", "catalan",
    "characteristic_roots", "comb", "combinations", "companion_matrix", "contains", "cos", "diff",
    "difference", "equivalent", "evaluate", "exp", "expr_size", "factorial", "fibonacci", "iff", "implies",
    "intersection", "is_subset", "is_tautology", "linear_recurrence", "linear_recurrence_nth",
    "log", "log_comb", "log_factorial", "log_perm", "models", "nth_permutation", "perm",
    "permutation_rank", "permutations", "power_set", "power_set_masks", "recurrence_closed_form",
    "satisfiable", "simplify", "sin", "stirling", "stirling_log_error", "tanh", "traverse",
    "tree_children", "tree_depth", "tree_graph", "tree_leaf_count", "tree_paths", "truth_table", "union",
]

