"""Our own autodiff: reverse and forward mode by interpreting jaxprs with our own rules.

`fungpt.grad` and friends have JAX's signatures; JAX's own differentiation is never used here (it is
the oracle in the tests). The rule tables live in `fungpt.autodiff.rules`.
"""
from fungpt.autodiff.api import grad, hessian, jacfwd, jacrev, jvp, linear_transpose, linearize, value_and_grad, vjp
from fungpt.autodiff.graph import Graph, graph

# Importing the rule modules fills the rule tables (after the interpreters, which they recurse into).
from fungpt.autodiff.rules import control, conv, elementwise, identity, linalg, sorting, structural  # noqa: F401

__all__ = ["Graph", "grad", "graph", "hessian", "jacfwd", "jacrev", "jvp", "linear_transpose", "linearize",
           "value_and_grad", "vjp"]
