"""Higher-order primitives: calls, custom rules, checkpointing and control flow recurse into their
sub-jaxprs with the same two interpreters."""
import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.extend.core import Literal

from fungpt.autodiff.forward import jvp_jaxpr
from fungpt.autodiff.jaxpr import (
    bind,
    bind_params,
    differentiable,
    eval_jaxpr,
    is_drop,
    open_jaxpr,
    read,
    zeros_like,
)
from fungpt.autodiff.reverse import linearize
from fungpt.autodiff.rules import nograd, prim, register


def propagate(jaxpr, in_active):
    """Which outputs of `jaxpr` can depend on an active input (a static, conservative pass)."""
    active = {v for v, a in zip(jaxpr.invars, in_active, strict=True) if a}
    for eqn in jaxpr.eqns:
        if eqn.primitive not in nograd and any(not isinstance(v, Literal) and v in active for v in eqn.invars):
            active.update(v for v in eqn.outvars if not is_drop(v) and differentiable(v.aval))
    return [not isinstance(v, Literal) and v in active for v in jaxpr.outvars]


# --- calls: jit / pjit / closed_call -----------------------------------------------------------
_COMPILED = {}  # (call jaxpr, active pattern) -> (jaxpr kept alive, jitted forward, jitted backward)


def call_fwd(ins, active, **params):
    """Reverse mode through a call (jit, closed_call, ...): its jaxpr is linearized like the caller's."""
    closed = params.get("jaxpr", params.get("call_jaxpr"))
    jaxpr, consts = open_jaxpr(closed)
    if any(isinstance(x, jax.core.Tracer) for x in [*ins, *consts]):
        # Inside someone's trace (jit, vmap, an outer grad): inline, and let the outer trace compile.
        outs, out_active, res, backward = linearize(jaxpr, consts, ins, active)
        return outs, res, backward, out_active
    # Called eagerly: compile the forward sweep and the backward sweep of this call once each, as
    # differentiating a jitted function should, instead of dispatching its equations one by one.
    key = (id(closed), tuple(active))
    if key not in _COMPILED:
        plan = {}

        def fwd(ins):
            outs, plan["out_active"], res, plan["backward"] = linearize(jaxpr, consts, ins, active)
            return outs, res

        if len(_COMPILED) > 256:
            _COMPILED.pop(next(iter(_COMPILED)))
        _COMPILED[key] = (closed, jax.jit(fwd), jax.jit(lambda res, cts: plan["backward"](res, cts)), plan)
    _, fwd, bwd, plan = _COMPILED[key]
    outs, res = fwd(list(ins))
    return outs, res, bwd, plan["out_active"]


def _call_jvp(xs, ts, **params):
    jaxpr, consts = open_jaxpr(params.get("jaxpr", params.get("call_jaxpr")))
    return jvp_jaxpr(jaxpr, consts, xs, ts)


for _name in ["jit", "pjit", "closed_call", "core_call", "composite"]:
    register(_name, fwd=call_fwd, jvp=_call_jvp)


# --- checkpoint (remat): keep only the inputs, recompute the rest in the backward sweep ----------
def _remat_fwd(ins, active, *, jaxpr, prevent_cse=True, **_):
    jaxpr, consts = open_jaxpr(jaxpr)
    outs = eval_jaxpr(jaxpr, consts, ins)

    def bwd(res, cts):
        if prevent_cse:  # stop XLA from merging the recomputation with the forward pass
            res = list(lax.optimization_barrier(list(res)))
        _, _, residuals, backward = linearize(jaxpr, consts, res, active)
        return backward(residuals, cts)

    return outs, list(ins), bwd


def _remat_jvp(xs, ts, *, jaxpr, **_):
    jaxpr, consts = open_jaxpr(jaxpr)
    return jvp_jaxpr(jaxpr, consts, xs, ts)


register("remat", fwd=_remat_fwd, jvp=_remat_jvp)  # jax.checkpoint; the primitive prints as remat2


# --- custom_jvp: honour the user's JVP rule; reverse mode transposes it ------------------------
def _custom_jvp_rule(params, nonzero):
    # Without symbolic_zeros the user's rule sees instantiated zeros for every tangent (as in JAX).
    if not params.get("symbolic_zeros", False):
        nonzero = [True] * len(nonzero)
    jvp_jaxpr_, jvp_consts, out_zeros = params["jvp_jaxpr_fun"].call_wrapped(*[not nz for nz in nonzero])
    jaxpr, consts = open_jaxpr(jvp_jaxpr_)
    return jaxpr, list(consts) + list(jvp_consts), list(out_zeros)


def _custom_jvp_jvp(xs, ts, *, num_consts, **params):
    if any(t is not None for t in ts[:num_consts]):
        raise NotImplementedError("fungpt: differentiating a custom_jvp function with respect to a "
                                  "closed-over value is not supported (JAX refuses it too).")
    primals, tangents = xs[num_consts:], ts[num_consts:]
    if not params.get("symbolic_zeros", False):
        tangents = [zeros_like(x) if t is None else t for x, t in zip(primals, tangents, strict=True)]
    nonzero = [t is not None for t in tangents]
    jaxpr, consts, out_zeros = _custom_jvp_rule(params, nonzero)
    out = eval_jaxpr(jaxpr, consts, [*primals, *[t for t in tangents if t is not None]])
    outs, nz = out[:len(out_zeros)], iter(out[len(out_zeros):])
    return outs, [None if z else next(nz) for z in out_zeros]


def _custom_jvp_fwd(ins, active, *, num_consts, **params):
    if any(active[:num_consts]):
        raise NotImplementedError("fungpt: differentiating a custom_jvp function with respect to a "
                                  "closed-over value is not supported (JAX refuses it too).")
    primals, act = ins[num_consts:], active[num_consts:]
    if not params.get("symbolic_zeros", False):
        act = [True] * len(act)  # the rule takes every tangent; inactive ones are zeros
    jaxpr, consts, out_zeros = _custom_jvp_rule(params, act)
    n, n_out = len(primals), len(out_zeros)
    # The JVP rule is linear in its tangent inputs: linearizing it at zero tangents and running
    # our backward sweep over the tangent part is its transpose.
    tangents = [zeros_like(x) for x, a in zip(primals, act, strict=True) if a]
    outs, _, res, backward = linearize(jaxpr, consts, [*primals, *tangents],
                                       [False] * n + [True] * len(tangents))
    nz_out = [i for i, z in enumerate(out_zeros) if not z]

    def bwd(res, cts):
        ct_t = [None] * n_out
        for k, i in enumerate(nz_out):
            ct_t[k] = cts[i]
        cts_in = backward(res, [None] * n_out + ct_t[:len(nz_out)])
        it = iter(cts_in[n:])
        return [None] * num_consts + [next(it) if a else None for a in act]

    return outs[:n_out], res, bwd


register("custom_jvp_call", fwd=_custom_jvp_fwd, jvp=_custom_jvp_jvp)


# --- custom_vjp: run the user's fwd, keep its residuals, call the user's bwd --------------------
def _is_symbolic_zero(x):
    return type(x).__name__ in ("Zero", "SymbolicZero")


def _custom_vjp_fwd(ins, active, *, call_jaxpr, num_consts, out_trees, symbolic_zeros, **params):
    p = prim("custom_vjp_call")
    if any(active[:num_consts]):
        raise NotImplementedError("fungpt: differentiating a custom_vjp function with respect to a "
                                  "closed-over value is not supported (JAX refuses it too).")
    subfuns, _ = bind_params(p, dict(call_jaxpr=call_jaxpr, num_consts=num_consts, out_trees=out_trees,
                                     symbolic_zeros=symbolic_zeros, **params))
    _, fwd, bwd_fun = subfuns
    res_and_outs = fwd.call_wrapped(*[v for x, a in zip(ins, active, strict=True) for v in (x, a)])
    _, res_tree, input_fwds = out_trees()
    n_res_out = res_tree.num_leaves - sum(f is not None for f in input_fwds)
    res_out, outs = res_and_outs[:n_res_out], res_and_outs[n_res_out:]
    it = iter(res_out)
    primals = ins[num_consts:]
    res = [next(it) if f is None else primals[f] for f in input_fwds]
    out_avals = [jax.typeof(o) if hasattr(jax, "typeof") else jax.core.get_aval(o) for o in outs]
    n_in = len(ins)

    def bwd(res, cts):
        if not symbolic_zeros:
            cts = [zeros_like(a) if c is None else c for c, a in zip(cts, out_avals, strict=True)]
        cts_in = list(bwd_fun.call_wrapped(*res, *cts))
        cts_in = cts_in[-n_in:] if len(cts_in) >= n_in else cts_in
        return [None if (c is None or _is_symbolic_zero(c)) else c for c in cts_in]

    return list(outs), res, bwd


def _custom_vjp_jvp(xs, ts, **params):
    raise NotImplementedError("fungpt: forward mode through a jax.custom_vjp function is not defined "
                              "(JAX refuses it too: a custom_vjp rule gives no JVP).")


register("custom_vjp_call", fwd=_custom_vjp_fwd, jvp=_custom_vjp_jvp)


# --- cond / switch -------------------------------------------------------------------------------
def _cond_fwd(ins, active, *, branches, **params):
    index, ops, op_act = ins[0], ins[1:], active[1:]
    outs = prim("cond").bind(index, *ops, branches=branches, **params)
    out_avals = [jax.ShapeDtypeStruct(jnp.shape(o), o.dtype) for o in outs]

    def bwd(res, cts):
        # Residuals are the operands: the taken branch is linearized again inside a switch.
        index, ops = res[0], res[1:]
        cts = [None if c is None or not differentiable(a) else c for c, a in zip(cts, out_avals, strict=True)]

        def branch(b):
            def run(ops, cts):
                jaxpr, consts = open_jaxpr(b)
                _, _, residuals, backward = linearize(jaxpr, consts, ops, op_act)
                cts_in = backward(residuals, cts)
                return [zeros_like(o) if c is None else c for o, c, a in zip(ops, cts_in, op_act, strict=True) if a]
            return run

        got = iter(lax.switch(index, [branch(b) for b in branches], list(ops), cts))
        return [None] + [next(got) if a else None for a in op_act]

    out_active = [any(col) for col in zip(*[propagate(open_jaxpr(b)[0], op_act) for b in branches], strict=True)]
    return list(outs), [index, *ops], bwd, out_active


def _cond_jvp(xs, ts, *, branches, **params):
    index, ops, tops = xs[0], xs[1:], ts[1:]
    nz = [t is not None for t in tops]
    tin = [t for t in tops if t is not None]

    def branch(b):
        def run(ops, tin):
            it = iter(tin)
            jaxpr, consts = open_jaxpr(b)
            outs, touts = jvp_jaxpr(jaxpr, consts, ops, [next(it) if z else None for z in nz])
            return outs, [zeros_like(o) if t is None else t if differentiable(jax.typeof(o)) else None
                          for o, t in zip(outs, touts, strict=True)]
        return run

    return lax.switch(index, [branch(b) for b in branches], list(ops), tin)


register("cond", fwd=_cond_fwd, jvp=_cond_jvp)


def _carry_active(body, consts_active, carry_active, xs_active=()):
    """Fixed point: a carry is active if it starts active or an active value flows into it."""
    while True:
        out = propagate(body, [*consts_active, *carry_active, *xs_active])
        new = [a or o for a, o in zip(carry_active, out[:len(carry_active)], strict=True)]
        if new == carry_active:
            return carry_active
        carry_active = new


# --- scan ----------------------------------------------------------------------------------------
_REMAT_SCAN = True  # recompute elementwise residuals in the backward loop (`_remat_body`); False: stack all


def _scan_fwd(ins, active, *, jaxpr, num_consts, num_carry, length, reverse, unroll, **params):
    body, body_consts = open_jaxpr(jaxpr)
    consts, init, xs = ins[:num_consts], ins[num_consts:num_consts + num_carry], ins[num_consts + num_carry:]
    c_act, x_act = active[:num_consts], active[num_consts + num_carry:]
    carry_act = [a and differentiable(v.aval) for a, v in
                 zip(active[num_consts:num_consts + num_carry], body.invars[num_consts:], strict=False)]
    carry_act = _carry_active(body, c_act, carry_act, x_act)
    out_act = propagate(body, c_act + carry_act + x_act)
    in_act = c_act + carry_act + x_act
    plan = {}
    if _REMAT_SCAN and not (unroll is True or unroll >= length):
        fwd_body = _remat_body(body, body_consts, consts, init, xs, in_act, num_carry, plan)
    else:
        def fwd_body(carry, x):
            args = [*consts, *carry, *x]
            outs, out_active, res, bwd = linearize(body, body_consts, args, in_act)
            kinds, stacked = _residual_kinds(res, consts, x, body_consts)
            used = _used_residuals(bwd, kinds, stacked, consts, x, outs, out_active)
            plan.update(kinds=kinds, bwd=bwd, used=used,
                        stacked_avals=[jax.ShapeDtypeStruct(jnp.shape(s), s.dtype) for s in stacked])
            return outs[:num_carry], (outs[num_carry:], [s for s, u in zip(stacked, used, strict=True) if u])

    carry_out, (ys, stacked) = lax.scan(fwd_body, list(init), list(xs), length=length, reverse=reverse,
                                        unroll=unroll)
    kinds, body_bwd, used = plan["kinds"], plan["bwd"], plan["used"]
    stacked_avals = plan["stacked_avals"]
    n_stk = len(stacked)
    carry_avals = [jax.ShapeDtypeStruct(jnp.shape(c), c.dtype) for c in init]
    const_avals = [jax.ShapeDtypeStruct(jnp.shape(c), c.dtype) for c in consts]

    def bwd(res, cts):
        stk, consts_v, xs_v = res[:n_stk], res[n_stk:n_stk + num_consts], res[n_stk + num_consts:]
        ct_carry = [(zeros_like(a) if c is None else c) if act else None
                    for c, a, act in zip(cts[:num_carry], carry_avals, carry_act, strict=True)]
        ct_ys = cts[num_carry:]
        has_ct_y = [c is not None for c in ct_ys]
        ct_consts = [zeros_like(a) if act else None for a, act in zip(const_avals, c_act, strict=True)]

        def bwd_body(state, inp):
            ct_c, ct_k = state
            stk_i, x_i, ct_y = inp
            if "recompute" in plan:
                stk_i = plan["recompute"](consts_v, x_i, stk_i)
            stk_it, cty_it = iter(stk_i), iter(ct_y)
            stk_full = [next(stk_it) if u else jnp.zeros(a.shape, a.dtype)
                        for u, a in zip(used, stacked_avals, strict=True)]
            r = [_assemble(k, stk_full, consts_v, x_i) for k in kinds]
            cts_in = body_bwd(r, [*ct_c, *[next(cty_it) if h else None for h in has_ct_y]])
            k_in, c_in, x_in = (cts_in[:num_consts], cts_in[num_consts:num_consts + num_carry],
                                cts_in[num_consts + num_carry:])
            ct_k = [None if acc is None else acc if c is None else acc + c for acc, c in
                    zip(ct_k, k_in, strict=True)]
            ct_c = [None if act is None else (zeros_like(a) if c is None else c) for act, c, a in
                    zip(ct_c, c_in, carry_avals, strict=True)]
            ct_x = [(zeros_like(xv) if c is None else c) if a else None for xv, c, a in
                    zip(x_i, x_in, x_act, strict=True)]
            return (ct_c, ct_k), ct_x

        (ct_c, ct_k), ct_xs = lax.scan(
            bwd_body, (ct_carry, ct_consts), (list(stk), list(xs_v), [c for c in ct_ys if c is not None]),
            length=length, reverse=not reverse, unroll=unroll)
        return [*ct_k, *ct_c, *ct_xs]

    return [*carry_out, *ys], [*stacked, *consts, *xs], bwd, carry_act + out_act[num_carry:]


# Elementwise and layout primitives: a residual computed from kept values by these alone is recomputed
# in the backward loop instead of being stacked (see `_remat_body`).
_CHEAP = frozenset("""add sub mul div neg max min abs sign exp exp2 log log1p expm1 tanh logistic sin cos sqrt
    rsqrt cbrt erf erfc integer_pow square select_n convert_element_type broadcast_in_dim reshape squeeze
    expand_dims transpose copy eq ne lt le gt ge and or not is_finite clamp""".split())


def _remat_body(body, body_consts, consts, init, xs, in_act, num_carry, plan):
    """The forward loop body of a scan that stacks fewer residuals (a remat policy for loops).

    The body's linearization is traced once to a jaxpr J(consts, carry, x) -> (outs, residuals).
    A residual that elementwise/layout equations compute from values the backward loop has anyway
    (consts, the x slice, residuals it keeps) is not stacked but recomputed there; a group of
    residuals computed so from one more value (e.g. GELU's output and slope from its input) is
    replaced by that value when it is smaller. Stacked residuals cost a zero-filled buffer, a
    write and a read per iteration; a recomputation is a fused elementwise pass."""
    aval = lambda a, lead=0: jax.ShapeDtypeStruct(jnp.shape(a)[lead:], a.dtype)

    def traced(c, k, x):
        outs, out_active, res, bwd = linearize(body, body_consts, [*c, *k, *x], in_act)
        kinds, stacked = _residual_kinds(res, c, x, body_consts)
        used = _used_residuals(bwd, kinds, stacked, c, x, outs, out_active)
        plan.update(kinds=kinds, bwd=bwd, used=used, stacked_avals=[aval(s) for s in stacked], n_outs=len(outs))
        return outs, stacked

    closed = jax.make_jaxpr(traced)([aval(c) for c in consts], [aval(c) for c in init], [aval(x, 1) for x in xs])
    J, n_c, n_k = closed.jaxpr, len(consts), len(init)
    s_vars = [v for v, u in zip(J.outvars[plan["n_outs"]:], plan["used"], strict=True) if u]
    avail = {*J.invars[:n_c], *J.invars[n_c + n_k:]}
    keep, eqns = _remat_plan(J, avail, s_vars)
    c_in, x_in = J.invars[:n_c], J.invars[n_c + n_k:]

    def fwd_body(carry, x):
        env = _eval_env(J, closed.consts, [*consts, *carry, *x], J.eqns)
        outs = [read(env, v) for v in J.outvars[:plan["n_outs"]]]
        return outs[:num_carry], (outs[num_carry:], [read(env, v) for v in keep])

    def recompute(consts_v, x_i, kept):
        env = dict(zip([*J.constvars, *c_in, *x_in, *keep], [*closed.consts, *consts_v, *x_i, *kept],
                       strict=True))
        env = _eval_env(J, None, None, eqns, env)
        return [read(env, v) for v in s_vars]

    if eqns:
        plan["recompute"] = recompute
    return fwd_body


def _is_cheap(eqn):
    """An elementwise/layout equation, or a jit call made only of those (jnp helpers such as where)."""
    if eqn.effects:
        return False
    if eqn.primitive.name in ("jit", "pjit"):
        return all(_is_cheap(e) for e in open_jaxpr(eqn.params["jaxpr"])[0].eqns)
    return eqn.primitive.name in _CHEAP


def _nbytes(v):
    return int(np.prod(v.aval.shape)) * np.dtype(v.aval.dtype).itemsize


def _remat_plan(J, avail, s_vars):
    """(vars to stack, equations recomputing the other residuals from them) for the residuals
    `s_vars` of J, given the values `avail` the backward loop has anyway."""
    producer = {v: e for e in J.eqns for v in e.outvars}
    cheap = lambda e: e is not None and _is_cheap(e)
    avail = set(avail) | set(J.constvars)
    all_vars, s_vars = s_vars, [v for v in s_vars if not isinstance(v, Literal)]  # literals stay as they are
    known = avail | set(s_vars)

    def frontier(v, known):  # what cheap equations compute `v` from, stopping at known values; None: not cheap
        if not cheap(producer.get(v)):
            return None
        leaves, todo, seen = set(), list(producer[v].invars), set()
        while todo:
            u = todo.pop()
            if isinstance(u, Literal) or u in seen:
                continue
            seen.add(u)
            if u in known or not cheap(producer.get(u)):
                leaves.add(u)
            else:
                todo.extend(producer[u].invars)
        return leaves

    for v in sorted(s_vars, key=_nbytes, reverse=True):  # residuals recomputable from the others
        f = frontier(v, known - {v})
        if f is not None and f <= known - {v}:
            known.discard(v)
    groups = {}  # residuals recomputable from the kept values and one more value
    for v in s_vars:
        f = frontier(v, known - {v}) if v in known else None
        if f is not None and len(f - known) == 1:
            groups.setdefault(next(iter(f - known)), []).append(v)
    for leaf, vs in groups.items():
        if sum(map(_nbytes, vs)) > _nbytes(leaf):
            known.difference_update(vs)
            known.add(leaf)
    order = [*J.invars, *(v for e in J.eqns for v in e.outvars)]
    keep = [v for v in all_vars if isinstance(v, Literal) or v in known]
    keep += [v for v in order if v in known - avail and v not in set(s_vars)]
    need, eqns = {v for v in s_vars if v not in known}, []
    for e in reversed(J.eqns):  # the equations between the kept values and the dropped residuals
        if any(o in need for o in e.outvars):
            eqns.append(e)
            need.update(u for u in e.invars if not isinstance(u, Literal) and u not in known)
    return keep, eqns[::-1]


def _eval_env(J, consts, args, eqns, env=None):
    env = dict(zip([*J.constvars, *J.invars], [*consts, *args], strict=True)) if env is None else env
    for e in eqns:
        for v, x in zip(e.outvars, bind(e, [read(env, u) for u in e.invars]), strict=True):
            if not is_drop(v):
                env[v] = x
    return env


def _residual_kinds(res, consts, x, body_consts):
    """Where each residual of a scan body comes from: a loop-invariant const, a slice of xs, a static
    value, or a value computed in this iteration (stacked along the scan axis, once however many
    rules read it). Returns (kinds, values to stack)."""
    kinds, stacked, where = [], [], {}
    for r in res:
        ci = next((i for i, c in enumerate(consts) if r is c), None)
        xi = next((i for i, c in enumerate(x) if r is c), None)
        if ci is not None:
            kinds.append(("const", ci))
        elif xi is not None:
            kinds.append(("x", xi))
        elif not isinstance(r, jax.core.Tracer) or any(r is c for c in body_consts):
            kinds.append(("static", r))
        else:
            if id(r) not in where:
                where[id(r)] = len(stacked)
                stacked.append(r)
            kinds.append(("stack", where[id(r)]))
    return kinds, stacked


def _assemble(kind, stk, consts, x):
    tag, v = kind
    return {"stack": lambda: stk[v], "const": lambda: consts[v], "x": lambda: x[v], "static": lambda: v}[tag]()


def _used_residuals(bwd, kinds, stacked, consts, x, outs, out_active):
    """Which stacked residuals the backward sweep reads: trace it once and look."""
    if not stacked:
        return []
    cts = [jax.ShapeDtypeStruct(jnp.shape(o), o.dtype) if a else None for o, a in zip(outs, out_active,
                                                                                        strict=True)]
    stk_avals = [jax.ShapeDtypeStruct(jnp.shape(s), s.dtype) for s in stacked]

    def probe(stk, cts):
        return bwd([_assemble(k, stk, consts, x) for k in kinds], cts)

    closed = jax.make_jaxpr(probe)(stk_avals, cts)
    live = _live_vars(closed.jaxpr)
    return [v in live for v in closed.jaxpr.invars[:len(stacked)]]


def _live_vars(jaxpr):
    """Variables that reach an output (dead-code elimination by a backward sweep): rules compute
    cotangents for inactive operands too, which the interpreter drops, so reading is not using."""
    live = {v for v in jaxpr.outvars if not isinstance(v, Literal)}
    for eqn in reversed(jaxpr.eqns):
        if eqn.effects or any(not is_drop(v) and v in live for v in eqn.outvars):
            live.update(v for v in eqn.invars if not isinstance(v, Literal))
    return live


def _scan_jvp(xs, ts, *, jaxpr, num_consts, num_carry, length, reverse, unroll, **params):
    body, body_consts = open_jaxpr(jaxpr)
    consts, init, xs_ = xs[:num_consts], xs[num_consts:num_consts + num_carry], xs[num_consts + num_carry:]
    tc, ti, tx = ts[:num_consts], ts[num_consts:num_consts + num_carry], ts[num_consts + num_carry:]
    tx_nz = [t is not None for t in tx]
    carry_nz = _carry_active(body, [t is not None for t in tc], [t is not None for t in ti], tx_nz)
    out_nz = propagate(body, [t is not None for t in tc] + carry_nz + tx_nz)
    t_init = [(zeros_like(c) if t is None else t) if nz else None for c, t, nz in zip(init, ti, carry_nz, strict=True)]

    def body_fn(carry, x):
        c, tcar = carry
        xv, txv = x
        it = iter(txv)
        outs, touts = jvp_jaxpr(body, body_consts, [*consts, *c, *xv],
                                [*tc, *tcar, *[next(it) if nz else None for nz in tx_nz]])
        tcar_out = [(zeros_like(o) if t is None else t) if nz else None
                    for o, t, nz in zip(outs[:num_carry], touts[:num_carry], carry_nz, strict=True)]
        ty = [(zeros_like(o) if t is None else t) if nz else None
              for o, t, nz in zip(outs[num_carry:], touts[num_carry:], out_nz[num_carry:], strict=True)]
        return (outs[:num_carry], tcar_out), (outs[num_carry:], ty)

    (c, tcar), (ys, tys) = lax.scan(body_fn, (list(init), t_init), (list(xs_), [t for t in tx if t is not None]),
                                    length=length, reverse=reverse, unroll=unroll)
    return [*c, *ys], [*tcar, *tys]


register("scan", fwd=_scan_fwd, jvp=_scan_jvp)


# --- while: forward mode; reverse mode raises only when a cotangent reaches the loop, as in JAX ---
def _while_fwd(ins, active, *, cond_nconsts, body_nconsts, body_jaxpr, **params):
    outs = prim("while").bind(*ins, cond_nconsts=cond_nconsts, body_nconsts=body_nconsts, body_jaxpr=body_jaxpr,
                              **params)
    body, _ = open_jaxpr(body_jaxpr)
    consts_act = list(active[cond_nconsts:cond_nconsts + body_nconsts])
    carry_act = [a and differentiable(v.aval) for a, v in
                 zip(active[cond_nconsts + body_nconsts:], body.invars[body_nconsts:], strict=True)]
    out_active = _carry_active(body, consts_act, carry_act)

    def bwd(res, cts):
        raise ValueError("Reverse-mode differentiation does not work for lax.while_loop or lax.fori_loop "
                         "with dynamic start/stop values. Try using lax.scan, or lax.fori_loop with static "
                         "start/stop (fungpt follows JAX here).")

    return list(outs), [], bwd, out_active


def _while_jvp(xs, ts, *, cond_jaxpr, body_jaxpr, cond_nconsts, body_nconsts, **params):
    cj, cc = open_jaxpr(cond_jaxpr)
    bj, bc = open_jaxpr(body_jaxpr)
    cconsts, bconsts, init = xs[:cond_nconsts], xs[cond_nconsts:cond_nconsts + body_nconsts], \
        xs[cond_nconsts + body_nconsts:]
    tb, ti = ts[cond_nconsts:cond_nconsts + body_nconsts], ts[cond_nconsts + body_nconsts:]
    nz = _carry_active(bj, [t is not None for t in tb], [t is not None for t in ti])
    t0 = [(zeros_like(c) if t is None else t) if z else None for c, t, z in zip(init, ti, nz, strict=True)]

    def cond_fn(carry):
        return eval_jaxpr(cj, cc, [*cconsts, *carry[0]])[0]

    def body_fn(carry):
        c, tcar = carry
        outs, touts = jvp_jaxpr(bj, bc, [*bconsts, *c], [*tb, *tcar])
        return outs, [(zeros_like(o) if t is None else t) if z else None
                      for o, t, z in zip(outs, touts, nz, strict=True)]

    c, tc = lax.while_loop(cond_fn, body_fn, (list(init), t0))
    return c, tc


register("while", fwd=_while_fwd, jvp=_while_jvp)
