"""Linearity check: does a jaxpr apply only linear maps to the values that depend on its linear inputs?

`fungpt.linear_transpose(fun, ...)` needs `fun` linear in its inputs. JAX refuses a non-linear one
when it transposes: a primitive such as `sin`, `x * x` or a division by a linear value meets a linear
input and has no transpose. This module runs the same test as a forward pass over the jaxpr: a value
is *linear* when it depends on a linear input; each equation with a linear input must be linear in
those operands. Affine pieces (adding a constant) pass, as in JAX.
"""
from jax.extend.core import Literal

from fungpt.autodiff.jaxpr import differentiable, is_drop, open_jaxpr, source_line
from fungpt.autodiff.rules import linear

ALL, ONE = "all", "one"  # linear in every operand jointly; bilinear (at most one operand linear)

# Primitives linear in some operands only (operand positions), besides those registered with
# `deflinear` (linear in all operands jointly, e.g. add, reshape, reduce_sum).
_PARTLY = {
    "mul": ONE, "dot_general": ONE, "conv_general_dilated": ONE, "div": {0},
    "dynamic_slice": {0}, "dynamic_update_slice": {0, 1}, "gather": {0},
    "scatter_add": {0, 2}, "scatter_sub": {0, 2}, "scatter": {0, 2},
    "triangular_solve": {1}, "broadcast_in_dim": {0},
    "select_n": ALL,  # the predicate is boolean, never linear
    "split": ALL, "unstack": ALL, "name": ALL, "tie": ALL, "device_put": ALL, "optimization_barrier": ALL,
}
_CALLS = ("jit", "pjit", "closed_call", "core_call", "remat", "custom_jvp_call", "custom_vjp_call")


def _allowed(eqn, lin):
    """Whether `eqn` is linear in its operands marked in `lin` (a bool per operand)."""
    name = eqn.primitive.name
    spec = ALL if eqn.primitive in linear else _PARTLY.get(name)
    if name == "linear_solve":  # linear in the right-hand side b, after the solver's constants
        spec = set(range(sum(eqn.params["const_lengths"]), len(lin)))
    if spec is None:
        return False
    if spec == ONE:
        return sum(lin) <= 1
    return spec == ALL or all(i in spec for i, a in enumerate(lin) if a)


def _sub_outs(eqn, lin):
    """Linear flags of a call-like or control-flow equation's outputs, checking its body; None if
    the primitive is not one of those."""
    name, p = eqn.primitive.name, eqn.params
    if name in _CALLS:
        return check(open_jaxpr(p.get("jaxpr", p.get("call_jaxpr")))[0], lin)
    if name == "cond":
        if lin[0]:
            return None
        outs = [check(open_jaxpr(b)[0], lin[1:]) for b in p["branches"]]
        return [any(col) for col in zip(*outs, strict=True)]
    if name == "scan":
        body = open_jaxpr(p["jaxpr"])[0]
        nc, nk = p["num_consts"], p["num_carry"]
        carry = list(lin[nc:nc + nk])
        while True:  # fixed point: a carry is linear once a linear value flows into it
            outs = check(body, [*lin[:nc], *carry, *lin[nc + nk:]])
            new = [a or o for a, o in zip(carry, outs[:nk], strict=True)]
            if new == carry:
                return outs
            carry = new
    return None


def check(jaxpr, lin_in):
    """Linear flags of `jaxpr`'s outputs given those of its inputs; raises NotImplementedError (as
    JAX's transpose does) at the first equation that is not linear in its linear operands."""
    lin = {v for v, a in zip(jaxpr.invars, lin_in, strict=True) if a and differentiable(v.aval)}
    is_lin = lambda v: not isinstance(v, Literal) and v in lin
    for eqn in jaxpr.eqns:
        flags = [is_lin(v) for v in eqn.invars]
        if not any(flags):
            continue
        outs = _sub_outs(eqn, flags)
        if outs is None:
            if not _allowed(eqn, flags):
                raise NotImplementedError(
                    f"fungpt.linear_transpose: the function is not linear: primitive '{eqn.primitive.name}' "
                    f"is applied to a value that depends on the linear inputs (at {source_line(eqn)}), and "
                    f"it has no transpose there (JAX raises here too).")
            outs = [True] * len(eqn.outvars)
        lin.update(v for v, o in zip(eqn.outvars, outs, strict=True)
                   if o and not is_drop(v) and differentiable(v.aval))
    return [is_lin(v) for v in jaxpr.outvars]
