"""The public transforms, with JAX's signatures: grad, value_and_grad, vjp, jvp, linearize,
linear_transpose, jacrev, jacfwd, hessian. Each flattens pytrees, traces to a jaxpr, and runs our
interpreters on the flat lists."""
import functools

import jax
import jax.numpy as jnp
import numpy as np
from jax import tree_util
from jax.extend.core import Literal

from fungpt.autodiff import linearity
from fungpt.autodiff.forward import jvp_jaxpr
from fungpt.autodiff.jaxpr import bind, dtype_of, is_drop, is_float, read, trace, zeros_like
from fungpt.autodiff.reverse import linearize as reverse_linearize

__all__ = ["grad", "hessian", "jacfwd", "jacrev", "jvp", "linear_transpose", "linearize", "value_and_grad", "vjp"]


def _is_float(x):
    return is_float(dtype_of(x))


def _float0_zeros(x):
    return np.zeros(np.shape(x), dtype=jax.dtypes.float0)


def _given_dtype(x):
    # The dtype JAX sees for a user-supplied (co)tangent: canonical (float64 is float32 without x64).
    dt = dtype_of(x)
    return dt if dt == jax.dtypes.float0 else jax.dtypes.canonicalize_dtype(dt)


def _tangent_dtype(primal_dtype):
    # JAX's tangent (and cotangent) type: the primal's own for inexact dtypes, float0 for int/bool.
    return primal_dtype if jnp.issubdtype(primal_dtype, jnp.inexact) else np.dtype(jax.dtypes.float0)


def _dtype_name(dtype):
    return "float0" if dtype == jax.dtypes.float0 else np.dtype(dtype).name


def _type_str(dtype, shape):  # JAX's short form, e.g. float32[3,4]
    return f"{_dtype_name(dtype)}[{','.join(map(str, shape))}]"


def _check_cotangents(ct_flat, outs, out_paths):
    """JAX's check (JAX's vjp raises the same ValueError): each cotangent has its output's shape and
    tangent dtype; an integer output's cotangent only needs the shape (JAX accepts any dtype there)."""
    for c, o, path in zip(ct_flat, outs, out_paths, strict=True):
        want, got = _tangent_dtype(dtype_of(o)), _given_dtype(c)
        if np.shape(c) != np.shape(o) or (want != jax.dtypes.float0 and got != want):
            raise ValueError(
                f"unexpected JAX type (e.g. shape/dtype) for argument to VJP function: got "
                f"{_type_str(got, np.shape(c))}, but expected {_type_str(want, np.shape(o))} because the "
                f"corresponding output of the differentiated function (out{path}) had JAX type "
                f"{_type_str(dtype_of(o), np.shape(o))}. fungpt.vjp never casts a cotangent: build it with "
                f"the output's shape and dtype (e.g. jnp.ones_like(out)).")


def _check_tangents(flat, tflat, paths):
    """JAX's checks in its jvp: a tangent has its primal's dtype (float0 for int/bool primals; a
    TypeError otherwise) and its shape (a ValueError otherwise). Tangents are never cast."""
    for x, t, path in zip(flat, tflat, paths, strict=True):
        want, got = _tangent_dtype(dtype_of(x)), _given_dtype(t)
        if got != want:
            raise TypeError(
                f"primal and tangent arguments to fungpt.jvp do not match; dtypes must be equal, or in case "
                f"of int/bool primal dtype the tangent dtype must be float0. Got primal dtype "
                f"{_dtype_name(dtype_of(x))} and so expected tangent dtype {_dtype_name(want)}, but got tangent "
                f"dtype {_dtype_name(got)} instead (at primals{path}). fungpt.jvp never casts a tangent.")
        if np.shape(x) != np.shape(t):
            raise ValueError(f"fungpt.jvp called with different primal and tangent shapes; got primal shape "
                             f"{np.shape(x)} and tangent shape {np.shape(t)} (at primals{path}).")


def _argnums_tuple(argnums, nargs, name):
    nums = (argnums,) if isinstance(argnums, int) else tuple(argnums)
    for a in nums:
        if not isinstance(a, int) or not -nargs <= a < nargs:
            raise ValueError(f"{name}: argnums={argnums!r} is out of range for a function called with "
                             f"{nargs} positional arguments.")
    nums = tuple(a % nargs for a in nums)
    if len(set(nums)) != len(nums):
        # JAX has no check of its own: the repeated argument reaches the function as None and fails there.
        raise TypeError(f"{name}: argnums={argnums!r} names the same argument twice; pass each argument "
                        f"index once (JAX fails on this too).")
    return nums


def _vjp_flat(fun, primals, has_aux):
    """Trace fun(*primals) and run the forward sweep. Returns outputs, aux, and the pullback."""
    flat, in_tree = tree_util.tree_flatten(primals)
    flat = [jnp.asarray(x) for x in flat]  # Python scalars and numpy arrays become JAX's canonical dtypes
    f, rebuild_aux = _traced_fun(fun, has_aux)
    closed, out_tree = trace(f, flat, in_tree)
    active = [_is_float(x) for x in flat]
    outs, out_active, residuals, backward = reverse_linearize(closed.jaxpr, closed.consts, flat, active)
    outs = [jnp.asarray(o) for o in outs]  # a literal or constant output is a JAX array too
    return flat, in_tree, outs, out_tree, out_active, residuals, backward, rebuild_aux


def _split_aux(out):
    if not (isinstance(out, tuple | list) and len(out) == 2):
        raise TypeError("has_aux=True requires the function to return a pair (output, aux); got "
                        f"{type(out).__name__}.")
    return tuple(out)


def _traced_fun(fun, has_aux):
    """(f to trace, rebuild_aux). With has_aux, f returns (out, traced aux leaves): aux leaves that are
    not traced values (Python numbers, strings, arrays closed over) are kept aside and come back
    untouched, as in JAX, where aux is any pytree; rebuild_aux(traced leaves) -> the aux pytree."""
    if not has_aux:
        return (lambda *a: fun(*a)), None
    store = {}

    def f(*a):
        out, aux = _split_aux(fun(*a))
        leaves, store["tree"] = tree_util.tree_flatten(aux)
        store["static"] = [None if isinstance(x, jax.core.Tracer) else (x,) for x in leaves]
        return out, [x for x in leaves if isinstance(x, jax.core.Tracer)]

    def rebuild_aux(traced):
        it = iter(traced)
        return tree_util.tree_unflatten(store["tree"], [next(it) if s is None else s[0] for s in store["static"]])

    return f, rebuild_aux


def _check_input_rev(name, holomorphic, allow_int, tree):
    # JAX's checks for grad / jacrev inputs (same messages).
    for leaf in tree_util.tree_leaves(tree):
        dt = dtype_of(leaf)
        if holomorphic and not jnp.issubdtype(dt, jnp.complexfloating):
            raise TypeError(f"{name} with holomorphic=True requires inputs with complex dtype, but got {dt.name}.")
        if not jnp.issubdtype(dt, jnp.inexact) and not allow_int:
            raise TypeError(f"{name} requires real- or complex-valued inputs (input dtype that is a "
                            f"sub-dtype of np.inexact), but got {dt.name}. If you want to use Boolean- "
                            f"or integer-valued inputs, use vjp or set allow_int to True.")


def _check_output_rev(name, holomorphic, tree):
    for leaf in tree_util.tree_leaves(tree):
        dt = dtype_of(leaf)
        if holomorphic:
            if not jnp.issubdtype(dt, jnp.complexfloating):
                raise TypeError(f"{name} with holomorphic=True requires outputs with complex dtype, but got "
                                f"{dt.name}.")
        elif jnp.issubdtype(dt, jnp.complexfloating):
            raise TypeError(f"{name} requires real-valued outputs (output dtype that is a sub-dtype of "
                            f"np.floating), but got {dt.name}. For holomorphic differentiation, pass "
                            f"holomorphic=True. For differentiation of non-holomorphic functions involving "
                            f"complex outputs, use fungpt.vjp directly.")
        elif not jnp.issubdtype(dt, jnp.floating):
            raise TypeError(f"{name} requires real-valued outputs (output dtype that is a sub-dtype of "
                            f"np.floating), but got {dt.name}. For holomorphic differentiation, pass "
                            f"holomorphic=True. For differentiation of functions with integer outputs, use "
                            f"fungpt.vjp directly.")


def _check_jacfwd(holomorphic, tree, what):
    for leaf in tree_util.tree_leaves(tree):
        dt = dtype_of(leaf)
        if holomorphic:
            if not jnp.issubdtype(dt, jnp.complexfloating):
                raise TypeError(f"jacfwd with holomorphic=True requires {what}s with complex dtype, but got "
                                f"{dt.name}.")
        elif what == "input" and not jnp.issubdtype(dt, jnp.floating):
            raise TypeError(f"jacfwd requires real-valued inputs (input dtype that is a sub-dtype of "
                            f"np.floating), but got {dt.name}. For holomorphic differentiation, pass "
                            f"holomorphic=True. For differentiation of non-holomorphic functions involving "
                            f"complex inputs or integer inputs, use fungpt.jvp directly.")


def _partial_argnums(fun, args, kwargs, nums):
    """fun as a function of the arguments at `nums` only (the others and kwargs fixed)."""
    def f(*dyn):
        full = list(args)
        for i, a in zip(nums, dyn, strict=True):
            full[i] = a
        return fun(*full, **kwargs)
    return f


def vjp(fun, *primals, has_aux=False):
    """(out, pullback[, aux]) with pullback(ct) = ct^T J, one cotangent per primal (a tuple).

    As in JAX's vjp, integer/bool primals receive float0 cotangents, and the cotangent must have each
    output's shape and dtype (any dtype for integer outputs): it is never cast (ValueError otherwise)."""
    flat, in_tree, outs, out_tree, out_active, residuals, backward, rebuild_aux = _vjp_flat(fun, primals, has_aux)
    n_all = len(outs)
    if has_aux:
        out_tree, _ = out_tree.children()
        aux = rebuild_aux(outs[out_tree.num_leaves:])
    n = out_tree.num_leaves
    outs, out_active = outs[:n], out_active[:n]
    out = tree_util.tree_unflatten(out_tree, outs)
    out_paths = [tree_util.keystr(k) for k, _ in tree_util.tree_flatten_with_path(out)[0]]

    def pullback(ct):
        ct_flat, ct_tree = tree_util.tree_flatten(ct)
        if ct_tree != out_tree:
            raise ValueError(f"fungpt.vjp: the cotangent has tree structure {ct_tree}, but the function's "
                             f"output has {out_tree}.")
        _check_cotangents(ct_flat, outs, out_paths)
        cts = [jnp.asarray(c, dtype_of(o)) if a else None for c, o, a in zip(ct_flat, outs, out_active, strict=True)]
        cts_in = backward(residuals, cts + [None] * (n_all - n))
        res = [(zeros_like(x) if c is None else c) if _is_float(x) else _float0_zeros(x)
               for x, c in zip(flat, cts_in, strict=True)]
        return tree_util.tree_unflatten(in_tree, res)

    return (out, pullback, aux) if has_aux else (out, pullback)


def value_and_grad(fun, argnums=0, has_aux=False, holomorphic=False, allow_int=False, reduce_axes=()):
    """(f(x), df/dx) for a scalar-output f, like JAX's value_and_grad (same argnums/has_aux)."""
    del reduce_axes

    @functools.wraps(fun)
    def wrapped(*args, **kwargs):
        nums = _argnums_tuple(argnums, len(args), "fungpt.grad")
        dyn = tuple(args[i] for i in nums)
        # Complex inputs need no holomorphic=True: grad then gives JAX's cotangent convention.
        _check_input_rev("grad", holomorphic, allow_int, dyn)
        res = vjp(_partial_argnums(fun, args, kwargs, nums), *dyn, has_aux=has_aux)
        out, pullback = res[0], res[1]
        if not ((np.shape(out) == () and hasattr(out, "dtype")) or isinstance(out, float)):
            raise TypeError(f"Gradient only defined for scalar-output functions. Output had shape: "
                            f"{np.shape(out)}.")
        _check_output_rev("grad", holomorphic, out)
        g = pullback(jnp.ones((), dtype_of(out)))
        g = g[0] if isinstance(argnums, int) else g
        return ((out, res[2]), g) if has_aux else (out, g)

    return wrapped


def grad(fun, argnums=0, has_aux=False, holomorphic=False, allow_int=False, reduce_axes=()):
    """df/dx for a scalar-output f by our reverse mode; a drop-in for JAX's grad.

    >>> fungpt.grad(lambda x: (x ** 2).sum())(jnp.arange(3.0))   # 2x
    Array([0., 2., 4.], dtype=float32)
    """
    vg = value_and_grad(fun, argnums, has_aux, holomorphic, allow_int, reduce_axes)

    @functools.wraps(fun)
    def wrapped(*args, **kwargs):
        (out, g) = vg(*args, **kwargs)
        return (g, out[1]) if has_aux else g

    return wrapped


def jvp(fun, primals, tangents, has_aux=False):
    """(f(x), J t) by our forward mode; a drop-in for JAX's jvp (primals and tangents are tuples).

    Each tangent has its primal's shape and dtype (float0 for integer/bool primals), as JAX requires:
    tangents are never cast (TypeError for a dtype, ValueError for a shape)."""
    if not isinstance(primals, tuple | list) or not isinstance(tangents, tuple | list):
        raise TypeError("fungpt.jvp: primals and tangents must be tuples or lists, as in JAX's jvp.")
    flat, in_tree = tree_util.tree_flatten(tuple(primals))
    flat = [jnp.asarray(x) for x in flat]
    tflat, t_tree = tree_util.tree_flatten(tuple(tangents))
    if t_tree != in_tree:
        raise TypeError(f"fungpt.jvp: primal and tangent arguments must have the same tree structure; "
                        f"got {in_tree} and {t_tree}.")
    _check_tangents(flat, tflat, [tree_util.keystr(k) for k, _ in
                                  tree_util.tree_flatten_with_path(tuple(primals))[0]])
    f, rebuild_aux = _traced_fun(fun, has_aux)
    closed, out_tree = trace(f, flat, in_tree)
    ts = [jnp.asarray(t, dtype_of(x)) if _is_float(x) else None for x, t in zip(flat, tflat, strict=True)]
    outs, touts = jvp_jaxpr(closed.jaxpr, closed.consts, flat, ts)
    outs = [jnp.asarray(o) for o in outs]
    touts = [(zeros_like(o) if t is None else t) if _is_float(o) else _float0_zeros(o)
             for o, t in zip(outs, touts, strict=True)]
    if has_aux:
        out_tree, _ = out_tree.children()
        n = out_tree.num_leaves
        aux = rebuild_aux(outs[n:])
        return (tree_util.tree_unflatten(out_tree, outs[:n]), tree_util.tree_unflatten(out_tree, touts[:n]), aux)
    return tree_util.tree_unflatten(out_tree, outs), tree_util.tree_unflatten(out_tree, touts)


def linearize(fun, *primals, has_aux=False):
    """(f(x), f_jvp[, aux]) with f_jvp(*t) = J t, like JAX's linearize.

    Our forward mode is traced as a function of (primals, tangents); equations that read no tangent
    are evaluated once, here (partial evaluation), and f_jvp replays only the rest, which is linear in
    the tangents. Tangents must match the primals' shapes and dtypes, as in JAX (ValueError)."""
    flat, in_tree = tree_util.tree_flatten(primals)
    flat = [jnp.asarray(x) for x in flat]
    f, rebuild_aux = _traced_fun(fun, has_aux)
    closed, out_tree = trace(f, flat, in_tree)
    floats = [_is_float(x) for x in flat]

    def both(primal_flat, tangent_flat):
        it = iter(tangent_flat)
        outs, touts = jvp_jaxpr(closed.jaxpr, closed.consts, primal_flat, [next(it) if a else None for a in floats])
        return outs, [zeros_like(o) if t is None else t for o, t in zip(outs, touts, strict=True) if _is_float(o)]

    t_avals = [jax.ShapeDtypeStruct(x.shape, x.dtype) for x, a in zip(flat, floats, strict=True) if a]
    jvp_closed = jax.make_jaxpr(both)(flat, t_avals)
    outs, run_linear = _partial_eval(jvp_closed, flat, len(flat))
    n_out = len(closed.jaxpr.outvars)
    outs = [jnp.asarray(o) for o in outs[:n_out]]
    if has_aux:
        out_tree, _ = out_tree.children()
        aux = rebuild_aux(outs[out_tree.num_leaves:])
    n = out_tree.num_leaves
    out = tree_util.tree_unflatten(out_tree, outs[:n])

    def f_jvp(*tangents):
        tflat, t_tree = tree_util.tree_flatten(tangents)
        if t_tree != in_tree:
            raise ValueError(f"linearized function called on tangents of tree {t_tree}; the primals had {in_tree}.")
        for x, t in zip(flat, tflat, strict=True):
            want = _tangent_dtype(x.dtype)
            if np.shape(t) != x.shape or _given_dtype(t) != want:
                raise ValueError(
                    "linearized function called on tangent values inconsistent with the original primal "
                    f"values: got tangent {_type_str(_given_dtype(t), np.shape(t))} for primal "
                    f"{_type_str(x.dtype, x.shape)}, expected {_type_str(want, x.shape)}.")
        got = iter(run_linear([t for t, a in zip(tflat, floats, strict=True) if a])[n_out:])
        touts = [next(got) if _is_float(o) else _float0_zeros(o) for o in outs]
        return tree_util.tree_unflatten(out_tree, touts[:n])

    return (out, f_jvp, aux) if has_aux else (out, f_jvp)


def _partial_eval(closed, known_args, n_known):
    """Evaluate the equations of `closed` that depend only on its first `n_known` inputs (given), and
    (outputs, None where they need the other inputs; run(other_inputs) -> all outputs)."""
    jaxpr = closed.jaxpr
    env = dict(zip(jaxpr.constvars, closed.consts, strict=True))
    env.update(zip(jaxpr.invars[:n_known], known_args, strict=True))
    unknown, kept = set(jaxpr.invars[n_known:]), []
    for eqn in jaxpr.eqns:
        if any(not isinstance(v, Literal) and v in unknown for v in eqn.invars):
            kept.append(eqn)
            unknown.update(eqn.outvars)
        else:
            for v, x in zip(eqn.outvars, bind(eqn, [read(env, v) for v in eqn.invars]), strict=True):
                if not is_drop(v):
                    env[v] = x
    outs = [None if not isinstance(v, Literal) and v in unknown else read(env, v) for v in jaxpr.outvars]

    def run(rest):
        local = dict(env)
        local.update(zip(jaxpr.invars[n_known:], rest, strict=True))
        for eqn in kept:
            for v, x in zip(eqn.outvars, bind(eqn, [read(local, v) for v in eqn.invars]), strict=True):
                if not is_drop(v):
                    local[v] = x
        return [jnp.asarray(read(local, v)) for v in jaxpr.outvars]

    return outs, run


def linear_transpose(fun, *primals, reduce_axes=()):
    """The transpose of a linear `fun`, like JAX's linear_transpose: t(ct) = ct^T J, a tuple shaped
    like `primals` (arrays or ShapeDtypeStructs: only shapes and dtypes are read).

    Our reverse mode linearizes `fun` at zero and pulls `ct` back: for a linear `fun` its VJP at any
    point is the transpose. A non-linear `fun` is refused, as JAX does: NotImplementedError naming the
    first primitive that meets a linear input without being linear in it (sin, x * x, 1 / x, ...)."""
    if reduce_axes:
        raise NotImplementedError("reduce_axes argument to transpose is deprecated")
    flat, in_tree = tree_util.tree_flatten(primals)
    avals = [jax.ShapeDtypeStruct(np.shape(x), _given_dtype(x)) for x in flat]
    closed, out_tree = trace(fun, avals, in_tree)
    out_avals = [v.aval for v in closed.jaxpr.outvars]
    in_dtypes, out_dtypes = [a.dtype for a in avals], [a.dtype for a in out_avals]
    if not all(is_float(d) for d in in_dtypes + out_dtypes):
        raise TypeError("linear_transpose only supports [float or complex] -> [float or complex] functions "
                        f"in fungpt (JAX also takes integer -> integer), but got {in_dtypes} -> {out_dtypes}.")

    linearity.check(closed.jaxpr, [True] * len(avals))

    def transposed(out_cotangent):
        cts, ct_tree = tree_util.tree_flatten(out_cotangent)
        if ct_tree != out_tree:
            raise TypeError(f"cotangent tree does not match function output, expected {out_tree} but got {ct_tree}")
        if any(np.shape(c) != a.shape or _given_dtype(c) != a.dtype for c, a in zip(cts, out_avals, strict=True)):
            raise TypeError(f"cotangent type does not match function output, expected {out_avals} but got {cts}")
        zeros = [zeros_like(a) for a in avals]
        _, out_active, res, backward = reverse_linearize(closed.jaxpr, closed.consts, zeros, [True] * len(zeros))
        cts_in = backward(res, [jnp.asarray(c, a.dtype) if act else None
                                for c, a, act in zip(cts, out_avals, out_active, strict=True)])
        return tree_util.tree_unflatten(in_tree, [zeros_like(a) if c is None else jnp.asarray(c)
                                                  for c, a in zip(cts_in, avals, strict=True)])

    return transposed


def _as_block(block, dtype):
    # A Jacobian block of an integer/bool input (jacrev) or output (jacfwd) is zero, in that value's own
    # dtype as in JAX's jacrev/jacfwd; fungpt.vjp/jvp give float0 there, which only (co)tangents use.
    return jnp.zeros(block.shape, dtype) if block.dtype == jax.dtypes.float0 else block


def jacrev(fun, argnums=0, has_aux=False, holomorphic=False, allow_int=False):
    """The Jacobian by reverse mode: one pullback per output element (vmapped); like JAX's jacrev.
    Each output leaf of shape S gets, per argument leaf of shape A, a block of shape S + A."""
    @functools.wraps(fun)
    def wrapped(*args, **kwargs):
        nums = _argnums_tuple(argnums, len(args), "fungpt.jacrev")
        dyn = tuple(args[i] for i in nums)
        _check_input_rev("jacrev", holomorphic, allow_int, dyn)
        res = vjp(_partial_argnums(fun, args, kwargs, nums), *dyn, has_aux=has_aux)
        out, pullback = res[0], res[1]
        _check_output_rev("jacrev", holomorphic, out)
        out_flat, out_tree = tree_util.tree_flatten(out)
        sizes = [int(np.prod(np.shape(o))) for o in out_flat]
        # 0/1 entries, cast to each leaf's dtype below: mixed-dtype outputs need no common dtype.
        basis = jnp.eye(sum(sizes), dtype=jnp.int8)
        splits = np.cumsum(sizes)[:-1]

        def row(e):
            parts = jnp.split(e, splits)
            return pullback(tree_util.tree_unflatten(
                out_tree, [p.reshape(np.shape(o)).astype(dtype_of(o)) for p, o in zip(parts, out_flat, strict=True)]))

        rows = jax.vmap(row)(basis)  # tuple over argnums; leaves (n_out, *arg_shape)
        per_out = []
        for k, o in enumerate(out_flat):
            lo, hi = (0 if k == 0 else int(splits[k - 1])), int(np.cumsum(sizes)[k])
            per_out.append(tree_util.tree_map(lambda r, x, o=o, lo=lo, hi=hi: _as_block(r[lo:hi].reshape(
                (*np.shape(o), *r.shape[1:])), dtype_of(x)), rows, dyn))
        jac = tree_util.tree_unflatten(out_tree, [p[0] if isinstance(argnums, int) else p for p in per_out])
        return (jac, res[2]) if has_aux else jac

    return wrapped


def jacfwd(fun, argnums=0, has_aux=False, holomorphic=False):
    """The Jacobian by forward mode: one JVP per input element (vmapped); like JAX's jacfwd."""
    @functools.wraps(fun)
    def wrapped(*args, **kwargs):
        nums = _argnums_tuple(argnums, len(args), "fungpt.jacfwd")
        dyn = tuple(args[i] for i in nums)
        _check_jacfwd(holomorphic, dyn, "input")
        dyn_flat, dyn_tree = tree_util.tree_flatten(dyn)
        sizes = [int(np.prod(np.shape(x))) for x in dyn_flat]
        n = sum(sizes)
        f = _partial_argnums(fun, args, kwargs, nums)

        def column(e):
            parts = jnp.split(e, np.cumsum(sizes)[:-1])
            tangents = tree_util.tree_unflatten(
                dyn_tree, [p.reshape(np.shape(x)).astype(dtype_of(x)) for p, x in zip(parts, dyn_flat, strict=True)])
            r = jvp(f, dyn, tangents, has_aux=has_aux)
            out_dtypes[:] = [dtype_of(o) for o in tree_util.tree_leaves(r[0])]  # static: read after vmap
            return (r[1], r[2]) if has_aux else (r[1], None)

        out_dtypes = []
        cols, aux = jax.vmap(column, out_axes=(-1, None))(jnp.eye(n, dtype=jnp.int8))  # cast per leaf
        _check_jacfwd(holomorphic, [jax.ShapeDtypeStruct((), d) for d in out_dtypes], "output")
        cols_flat, cols_tree = tree_util.tree_flatten(cols)
        cols = tree_util.tree_unflatten(cols_tree, [_as_block(c, d) for c, d in
                                                    zip(cols_flat, out_dtypes, strict=True)])
        # cols leaves: (*out_shape, n) -> split n into the argument leaves' shapes.
        offsets = np.concatenate([[0], np.cumsum(sizes)])

        def split_cols(c):
            blocks = [c[..., offsets[k]:offsets[k + 1]].reshape((*c.shape[:-1], *np.shape(x)))
                      for k, x in enumerate(dyn_flat)]
            tree = tree_util.tree_unflatten(dyn_tree, blocks)
            return tree[0] if isinstance(argnums, int) else tree

        jac = tree_util.tree_map(split_cols, cols)
        return (jac, aux) if has_aux else jac

    return wrapped


def hessian(fun, argnums=0, has_aux=False, holomorphic=False):
    """The Hessian as forward-over-reverse, jacfwd(jacrev(f)), like JAX's hessian."""
    return jacfwd(jacrev(fun, argnums, has_aux=has_aux, holomorphic=holomorphic), argnums, has_aux=has_aux,
                  holomorphic=holomorphic)
