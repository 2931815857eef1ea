"""Tracing functions of pytrees to jaxprs, and the small helpers both interpreters share."""
import jax
import jax.numpy as jnp
import numpy as np
from jax import tree_util
from jax.extend.core import ClosedJaxpr, Literal

try:  # DropVar moved between JAX releases.
    from jax.extend.core import DropVar
except ImportError:  # pragma: no cover
    from jax._src.core import DropVar


def trace(fun, args_flat, in_tree):
    """Trace `fun(*unflatten(in_tree, args_flat))` to (closed_jaxpr, out_tree)."""
    store = {}

    def flat_fun(*flat):
        out = fun(*tree_util.tree_unflatten(in_tree, flat))
        out_flat, store["tree"] = tree_util.tree_flatten(out)
        return out_flat

    closed = jax.make_jaxpr(flat_fun)(*args_flat)
    return closed, store["tree"]


def literal_value(v):
    """A literal's value with exactly the dtype the jaxpr gave it (never a float64 numpy scalar)."""
    return np.asarray(v.val, dtype=v.aval.dtype) if hasattr(v.aval, "dtype") else v.val


def read(env, v):
    return literal_value(v) if isinstance(v, Literal) else env[v]


def is_drop(v):
    return isinstance(v, DropVar)


def dtype_of(x):
    """The dtype of an array, aval, ShapeDtypeStruct or Python/numpy scalar."""
    return x.dtype if hasattr(x, "dtype") else jnp.result_type(x)


def is_float(dtype) -> bool:
    """Whether values of `dtype` carry derivatives (real or complex floating point)."""
    return jnp.issubdtype(dtype, jnp.inexact)


def differentiable(aval) -> bool:
    dtype = getattr(aval, "dtype", None)
    return dtype is not None and is_float(dtype)


def zeros_like(x):
    """Zeros with the shape and dtype of an array, aval or ShapeDtypeStruct (a JAX array)."""
    return jnp.zeros(np.shape(x) if not hasattr(x, "shape") else x.shape, dtype_of(x))


def bind_params(primitive, params):
    """(subfuns, params) to bind `primitive` with: older JAX returns the pair, newer JAX a dict
    holding the subfunctions under 'subfuns' (passed to bind as a keyword)."""
    got = primitive.get_bind_params(params)
    if isinstance(got, tuple):
        return list(got[0]), got[1]
    got = dict(got)
    return list(got.get("subfuns", ())), got


def bind(eqn, args):
    """Evaluate one equation as `jax.core.eval_jaxpr` does; always returns a list."""
    subfuns, params = bind_params(eqn.primitive, eqn.params)
    positional = [] if "subfuns" in params else subfuns  # newer JAX takes them as a keyword
    out = eqn.primitive.bind(*positional, *args, **params)
    return list(out) if eqn.primitive.multiple_results else [out]


def eval_jaxpr(jaxpr, consts, args):
    env = {}
    for v, x in zip(jaxpr.constvars, consts, strict=True):
        env[v] = x
    for v, x in zip(jaxpr.invars, args, strict=True):
        env[v] = x
    for eqn in jaxpr.eqns:
        outs = bind(eqn, [read(env, v) for v in eqn.invars])
        for v, x in zip(eqn.outvars, outs, strict=True):
            if not is_drop(v):
                env[v] = x
    return [read(env, v) for v in jaxpr.outvars]


def open_jaxpr(j):
    """(jaxpr, consts) for a ClosedJaxpr or an open Jaxpr."""
    return (j.jaxpr, list(j.consts)) if isinstance(j, ClosedJaxpr) else (j, [])


def no_rule_error(eqn, mode):
    """The error for a primitive without a rule in `mode`, naming the user's source line."""
    return NotImplementedError(
        f"fungpt has no {mode} rule for primitive '{eqn.primitive.name}' (used at {source_line(eqn)}). "
        f"Add one with `register` in fungpt/autodiff/rules/ (see its module docstring), "
        f"or stop differentiating through it with jax.lax.stop_gradient.")


def source_line(eqn) -> str:
    """The user's source line that produced this equation (best effort)."""
    try:
        from jax._src import source_info_util
        return source_info_util.summarize(eqn.source_info) or "<unknown source>"
    except Exception:
        return "<unknown source>"
