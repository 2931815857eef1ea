"""Forward mode: tangents pushed alongside primals, one equation at a time (None: a symbolic zero)."""
from jax.extend.core import Literal

from fungpt.autodiff.jaxpr import bind, differentiable, is_drop, no_rule_error, read
from fungpt.autodiff.rules import jvp_rules, nograd


def jvp_jaxpr(jaxpr, consts, primals, tangents):
    """Evaluate `jaxpr` on primals and push tangents; returns (outs, tangent_outs)."""
    env, tenv = {}, {}
    for v, x in zip(jaxpr.constvars, consts, strict=True):
        env[v] = x
    for v, x, t in zip(jaxpr.invars, primals, tangents, strict=True):
        env[v] = x
        if t is not None and differentiable(v.aval):
            tenv[v] = t
    for eqn in jaxpr.eqns:
        ins = [read(env, v) for v in eqn.invars]
        tins = [None if isinstance(v, Literal) else tenv.get(v) for v in eqn.invars]
        if all(t is None for t in tins) or eqn.primitive in nograd:
            outs, touts = bind(eqn, ins), [None] * len(eqn.outvars)
        else:
            rule = jvp_rules.get(eqn.primitive)
            if rule is None:
                raise no_rule_error(eqn, "forward-mode (JVP)")
            outs, touts = rule(ins, tins, **eqn.params)
            if not eqn.primitive.multiple_results:
                outs, touts = [outs], [touts]
            outs, touts = list(outs), list(touts)
        for v, x, t in zip(eqn.outvars, outs, touts, strict=True):
            if not is_drop(v):
                env[v] = x
                if t is not None and differentiable(v.aval):
                    tenv[v] = t
    outs = [read(env, v) for v in jaxpr.outvars]
    touts = [None if isinstance(v, Literal) else tenv.get(v) for v in jaxpr.outvars]
    return outs, touts
