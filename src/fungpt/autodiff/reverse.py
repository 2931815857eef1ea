"""Reverse mode: a forward sweep that keeps residuals, and a backward sweep that pulls cotangents
through the equations in reverse order (a jaxpr is already a topological order of its DAG)."""
import numpy as np
from jax.extend.core import Literal

from fungpt.autodiff.jaxpr import (
    bind,
    differentiable,
    is_drop,
    literal_value,
    no_rule_error,
    read,
    source_line,
    zeros_like,
)
from fungpt.autodiff.rules import fwd_rules, nograd, vjp_rules


def linearize(jaxpr, consts, args, active_in):
    """Forward sweep of `jaxpr` on `args`.

    Returns (outs, out_active, residuals, backward) where backward(residuals, cts_out) -> cts_in,
    one per invar (None where inactive or zero). `backward` closes over no array: everything the
    backward sweep reads is in `residuals`, a flat list."""
    env, active, residuals, tape = {}, set(), [], []
    for v, x in zip(jaxpr.constvars, consts, strict=True):
        env[v] = x
    for v, x, a in zip(jaxpr.invars, args, active_in, strict=True):
        env[v] = x
        if a and differentiable(v.aval):
            active.add(v)
    is_active = lambda v: not isinstance(v, Literal) and v in active
    for eqn in jaxpr.eqns:
        ins = [read(env, v) for v in eqn.invars]
        ins_active = [is_active(v) for v in eqn.invars]
        if any(ins_active) and eqn.primitive not in nograd:
            outs, res, bwd, outs_active = _fwd(eqn, ins, ins_active)
            tape.append((eqn, len(residuals), len(residuals) + len(res), bwd, ins_active))
            residuals.extend(res)
            active.update(v for v, a in zip(eqn.outvars, outs_active, strict=True)
                          if a and not is_drop(v) and differentiable(v.aval))
        else:  # no active input: plain primal code, no rule needed, nothing kept
            outs = bind(eqn, ins)
        for v, x in zip(eqn.outvars, outs, strict=True):
            if not is_drop(v):
                env[v] = x
    outs = [read(env, v) for v in jaxpr.outvars]
    out_active = [is_active(v) for v in jaxpr.outvars]

    def backward(residuals, cts_out):
        ct_env = {}

        def add(v, ct):
            ct_env[v] = ct if v not in ct_env else ct_env[v] + ct

        for v, ct, a in zip(jaxpr.outvars, cts_out, out_active, strict=True):
            if a and ct is not None:
                add(v, ct)
        for eqn, start, stop, bwd, ins_active in reversed(tape):
            cts = [None if is_drop(v) else ct_env.pop(v, None) for v in eqn.outvars]
            if all(ct is None for ct in cts):
                continue  # a symbolic zero: nothing flows back through this equation
            cts_in = bwd(residuals[start:stop], cts)
            for v, a, ct in zip(eqn.invars, ins_active, cts_in, strict=True):
                if a and ct is not None:
                    add(v, _checked(ct, v, eqn))
        return [ct_env.pop(v, None) if a else None for v, a in
                zip(jaxpr.invars, [is_active(v) for v in jaxpr.invars], strict=True)]

    backward.tape = tape  # static: read by graph() to name the residuals
    return outs, out_active, residuals, backward


def _checked(ct, v, eqn):
    shape, dtype = v.aval.shape, v.aval.dtype
    if np.shape(ct) != shape or ct.dtype != dtype:
        raise ValueError(
            f"fungpt: the VJP rule of '{eqn.primitive.name}' returned a cotangent of "
            f"{ct.dtype}{list(np.shape(ct))} for an input of {dtype}{list(shape)} "
            f"(at {source_line(eqn)}); this is a bug in the rule.")
    return ct


def _fwd(eqn, ins, ins_active):
    p = eqn.primitive
    if p in fwd_rules:
        outs, res, bwd, *outs_active = fwd_rules[p](ins, ins_active, **eqn.params)
        return outs, res, bwd, (outs_active[0] if outs_active else [True] * len(eqn.outvars))
    if p not in vjp_rules:
        raise no_rule_error(eqn, "reverse-mode (VJP)")
    rule, params, multiple = vjp_rules[p], eqn.params, p.multiple_results
    if getattr(rule, "takes_active", False):
        params = {**params, "_active": list(ins_active)}
    out_avals = [v.aval for v in eqn.outvars]
    outs = bind(eqn, ins)
    # Literals are static: captured by value; everything else travels as a residual.
    statics = [literal_value(v) if isinstance(v, Literal) else None for v in eqn.invars]
    is_lit = [isinstance(v, Literal) for v in eqn.invars]
    res = [x for x, lit in zip(ins, is_lit, strict=True) if not lit] + outs

    def bwd(res, cts):
        it = iter(res)
        primals = [s if lit else next(it) for s, lit in zip(statics, is_lit, strict=True)]
        ans = list(it)
        if multiple:
            cts = [zeros_like(a) if c is None else c for c, a in zip(cts, out_avals, strict=True)]
            return rule(cts, ans, *primals, **params)
        return rule(cts[0], ans[0], *primals, **params)

    return outs, res, bwd, [True] * len(outs)
