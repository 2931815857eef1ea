"""Sorting, selection and cumulative reductions.

sort and top_k permute their operands: the tangent follows the same permutation (a gather), the
cotangent goes back through its inverse (a gather by the inverse permutation, or a scatter-add).
Ties are broken exactly as the primal sort breaks them, because the permutation comes from the same
sort (with an iota riding along as an extra operand).

cumprod, cummax, cummin and cumlogsumexp are differentiated, as in JAX, through the parallel prefix
scan `lax.associative_scan(combine, x)`: our own interpreters run over its jaxpr, so ties in
cummax/cummin share the derivative exactly as `lax.max` does inside that scan."""
import functools

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from fungpt.autodiff.jaxpr import is_float
from fungpt.autodiff.rules import prim, register


# --- sort ------------------------------------------------------------------------------------------
def _sort_with_perm(xs, dimension, is_stable, num_keys):
    # The sorted operands and the permutation that sorted them (ties broken as the primal sort does).
    iota = lax.broadcasted_iota(jnp.int32, np.shape(xs[0]), dimension)
    *outs, perm = prim("sort").bind(*xs, iota, dimension=dimension, is_stable=is_stable, num_keys=num_keys)
    return outs, perm


def _inverse_perm(perm, dimension):
    iota = lax.broadcasted_iota(jnp.int32, perm.shape, dimension)
    return lax.sort((perm, iota), dimension=dimension, num_keys=1)[1]


def _sort_vjp(cts, ans, *xs, dimension, is_stable, num_keys):
    _, perm = _sort_with_perm(xs, dimension, is_stable, num_keys)
    inv = _inverse_perm(perm, dimension)
    # ct_x = ct[inverse permutation]: each input position reads the cotangent of where it landed.
    return [jnp.take_along_axis(ct, inv, axis=dimension) if is_float(x.dtype) else None
            for ct, x in zip(cts, xs, strict=True)]


def _sort_jvp(xs, ts, *, dimension, is_stable, num_keys):
    outs, perm = _sort_with_perm(xs, dimension, is_stable, num_keys)
    return outs, [None if t is None else jnp.take_along_axis(t, perm, axis=dimension) for t in ts]


register("sort", vjp=_sort_vjp, jvp=_sort_jvp, jit=True)


# --- top_k -------------------------------------------------------------------------------------------
def _top_k_axis(x, params):
    return params.get("axis", -1) % np.ndim(x)


def _top_k_vjp(cts, ans, x, **params):
    axis, idx = _top_k_axis(x, params), ans[1]
    # Scatter-add each selected value's cotangent back to the position it was taken from.
    where = tuple(idx if d == axis else lax.broadcasted_iota(jnp.int32, idx.shape, d) for d in range(idx.ndim))
    return (jnp.zeros(np.shape(x), cts[0].dtype).at[where].add(cts[0], unique_indices=True),)


def _top_k_jvp(xs, ts, **params):
    (x,), (t,) = xs, ts
    vals, idx = prim("top_k").bind(x, **params)
    tv = None if t is None else jnp.take_along_axis(t, idx, axis=_top_k_axis(x, params))
    return [vals, idx], [tv, None]


register("top_k", vjp=_top_k_vjp, jvp=_top_k_jvp, jit=True)


# --- cumulative reductions through the prefix scan -----------------------------------------------------
def _logaddexp(a, b):
    from jax._src.lax.other import logaddexp  # the custom_jvp JAX's cumlogsumexp differentiates
    return logaddexp(a, b)


_COMBINE = {"cumprod": lax.mul, "cummax": lax.max, "cummin": lax.min, "cumlogsumexp": _logaddexp}


@functools.lru_cache(maxsize=256)
def _scan_jaxpr(name, shape, dtype, axis, reverse):
    fn = functools.partial(lax.associative_scan, _COMBINE[name], axis=axis, reverse=reverse)
    return jax.make_jaxpr(fn)(jax.ShapeDtypeStruct(shape, dtype))


def _cumred_rules(name):
    from fungpt.autodiff.forward import jvp_jaxpr
    from fungpt.autodiff.reverse import linearize

    def vjp(ct, ans, x, *, axis, reverse):
        closed = _scan_jaxpr(name, tuple(np.shape(x)), np.dtype(x.dtype), axis, reverse)
        _, _, res, backward = linearize(closed.jaxpr, list(closed.consts), [x], [True])
        return backward(res, [ct])

    def jvp(xs, ts, *, axis, reverse):
        (x,), (t,) = xs, ts
        ans = prim(name).bind(x, axis=axis, reverse=reverse)
        if t is None:
            return ans, None
        closed = _scan_jaxpr(name, tuple(np.shape(x)), np.dtype(x.dtype), axis, reverse)
        _, (tout,) = jvp_jaxpr(closed.jaxpr, list(closed.consts), [x], [t])
        return ans, tout

    register(name, vjp=vjp, jvp=jvp, jit=True)


for _name in _COMBINE:
    _cumred_rules(_name)
