"""Contraction, shape, slicing, indexing and reduction primitives.

Most are linear: their VJP is the transpose (reshape back, sum a broadcast, pad a slice, scatter a
gather) and their JVP applies the primitive to the tangent."""
import functools

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from fungpt.autodiff.forward import jvp_jaxpr
from fungpt.autodiff.jaxpr import eval_jaxpr
from fungpt.autodiff.rules import deflinear, prim, register
from fungpt.autodiff.rules.control import call_fwd


def _shape(x):
    return np.shape(x)


# --- dot_general ------------------------------------------------------------------------------
_CPU_LAYOUT = True  # emit dot cotangents in the layouts XLA:CPU runs fastest (`_weight_route`); False: plain


def _ranks(dims):
    order = sorted(dims)
    return {d: order.index(d) for d in dims}


_cpu = lambda: _CPU_LAYOUT and jax.default_backend() == "cpu"  # read at trace time


def _weight_route(ct_size, x_size, other, o_free, ob):
    """How to emit x̄ = otherᵀ ct for a right operand x (a weight) on XLA:CPU, whose fast kernels (YNNPACK)
    refuse a left operand contracted on its leading (token) axis (a generic dot, ~1.4x slower, is JAX's
    choice): "ct" transposes ct and then x̄ᵀ = ctᵀ other (when |ct| + |x| < |other|), "other" transposes
    other (the forward may keep it so, see `_dot_general_fwd`). None: the plain layout."""
    n = len(other.shape)
    if not _cpu() or ob or o_free == list(range(n - len(o_free), n)):
        return None
    return "ct" if ct_size + x_size < other.size else "other"


def _dot_ct(ct, other, other_is_rhs, x, dimension_numbers, precision, preferred_element_type, other_t=None):
    """Cotangent of operand `x` of dot_general: for x @ W, ct @ W^T for x and x^T @ ct for W, in layouts
    XLA:CPU's fast kernels take (`other_t`: `other` already transposed for `_weight_route` "other")."""
    (lc, rc), (lb, rb) = dimension_numbers
    xc, oc, xb, ob = (lc, rc, lb, rb) if other_is_rhs else (rc, lc, rb, lb)
    nb, x_nd, o_nd = len(xb), len(_shape(x)), len(other.shape)
    x_free = [d for d in range(x_nd) if d not in xc and d not in xb]
    o_free = [d for d in range(o_nd) if d not in oc and d not in ob]
    # ct's axes: batch, lhs free, rhs free.
    ct_o_free = list(range(nb + len(x_free), ct.ndim)) if other_is_rhs else list(range(nb, nb + len(o_free)))
    ct_b, dot = list(range(nb)), functools.partial(lax.dot_general, precision=precision,
                                                   preferred_element_type=preferred_element_type)
    ct = _mixed_precision_ct(ct, other, x, ob, preferred_element_type)
    rank = _ranks(oc)
    route = None if other_is_rhs else _weight_route(ct.size, int(np.prod(_shape(x))), other, o_free, ob)
    if other_is_rhs:
        # x_bar: [batch, x_free, other's contracting dims in ascending order]
        r = dot(ct, other, ((ct_o_free, o_free), (ct_b, list(ob))))
        pos = {**{d: i for i, d in enumerate(xb)}, **{d: nb + j for j, d in enumerate(x_free)},
               **{xd: nb + len(x_free) + rank[od] for xd, od in zip(xc, oc, strict=True)}}
    elif route == "ct":  # [x_free, other's contracting dims]
        ct_keep = [d for d in range(ct.ndim) if d not in ct_o_free]
        ct_t = lax.optimization_barrier(lax.transpose(ct, (*ct_keep, *ct_o_free)))
        r = dot(ct_t, other, ((list(range(len(ct_keep), ct.ndim)), o_free), ((), ())))
        pos = {**{d: j for j, d in enumerate(x_free)},
               **{xd: len(x_free) + rank[od] for xd, od in zip(xc, oc, strict=True)}}
    else:  # [batch, other's contracting dims in ascending order, x_free]
        if route == "other":  # the barrier stops XLA from folding the transpose back into the dot
            keep = [d for d in range(o_nd) if d not in o_free]
            other_t = lax.transpose(other, (*keep, *o_free)) if other_t is None else other_t
            r = dot(lax.optimization_barrier(other_t), ct, ((list(range(len(keep), o_nd)), ct_o_free), ((), ())))
        else:
            r = dot(other, ct, ((o_free, ct_o_free), (list(ob), ct_b)))
        pos = {**{d: i for i, d in enumerate(xb)}, **{xd: nb + rank[od] for xd, od in zip(xc, oc, strict=True)},
               **{d: nb + len(oc) + j for j, d in enumerate(x_free)}}
    perm = tuple(pos[d] for d in range(x_nd))
    if perm != tuple(range(x_nd)):  # the barrier stops XLA from swapping the operands into a generic dot
        r = lax.transpose(lax.optimization_barrier(r) if _cpu() else r, perm)
    x_dtype = getattr(x, "dtype", r.dtype)
    return r.astype(x_dtype) if r.dtype != x_dtype else r


def _mixed_precision_ct(ct, other, x, ob, out_dtype):
    """bf16 x bf16 -> f32 forward: JAX's rule multiplies the f32 cotangent with the bf16 operand (an f32
    product); for plain matrices on CPU we cast the cotangent to bf16, so the backward runs the fast bf16
    kernels (f32 accumulation). Batched products keep the mixed form (XLA:CPU's generic dot lacks it)."""
    if (_cpu() and out_dtype is not None and not ob and ct.ndim == len(other.shape) == len(_shape(x)) == 2
            and other.dtype == getattr(x, "dtype", None) and jnp.issubdtype(other.dtype, jnp.floating)
            and jnp.finfo(other.dtype).bits < jnp.finfo(ct.dtype).bits):
        return ct.astype(other.dtype)
    return ct


def _dot_general_vjp(ct, ans, x, y, *, dimension_numbers, precision=None, preferred_element_type=None,
                     _active=(True, True), **_):
    return (_dot_ct(ct, y, True, x, dimension_numbers, precision, preferred_element_type) if _active[0] else None,
            _dot_ct(ct, x, False, y, dimension_numbers, precision, preferred_element_type) if _active[1] else None)


_dot_general_vjp.takes_active = True


def _dot_general_fwd(ins, active, *, dimension_numbers, precision=None, preferred_element_type=None, **params):
    """Forward sweep of dot_general: when the weight cotangent needs the left operand transposed
    (`_weight_route` "other"), the forward keeps it transposed (a scan stacks it so, once)."""
    x, y = ins
    kw = dict(dimension_numbers=dimension_numbers, precision=precision, preferred_element_type=preferred_element_type)
    ans = prim("dot_general").bind(x, y, **kw, **params)
    (lc, _), (lb, _) = dimension_numbers
    x_free = [d for d in range(np.ndim(x)) if d not in lc and d not in lb]
    x_aval = jax.ShapeDtypeStruct(np.shape(x), x.dtype)
    transposed = bool(active[1]) and _weight_route(np.size(ans), np.size(y), x_aval, x_free, lb) == "other"
    x_keep = lax.transpose(x, (*[d for d in range(np.ndim(x)) if d not in x_free], *x_free)) if transposed else x

    def bwd(res, cts):
        xr, y = res
        if not transposed:
            return _dot_general_vjp(cts[0], None, xr, y, **kw, _active=active)
        return [_dot_ct(cts[0], y, True, x_aval, dimension_numbers, precision, preferred_element_type)
                if active[0] else None,
                _dot_ct(cts[0], x_aval, False, y, dimension_numbers, precision, preferred_element_type, other_t=xr)]

    bwd.residual_of = ((0, "ᵀ" if transposed else ""), (1, ""))  # for graph(): x or xᵀ, and y
    return [ans], [x_keep, y], bwd


def _dot_general_jvp(xs, ts, **params):
    p, (x, y) = prim("dot_general"), xs
    ans = p.bind(x, y, **params)
    terms = [p.bind(*([t, y] if i == 0 else [x, t]), **params) for i, t in enumerate(ts) if t is not None]
    return ans, (sum(terms[1:], terms[0]).astype(ans.dtype) if terms else None)


register("dot_general", vjp=_dot_general_vjp, jvp=_dot_general_jvp, fwd=_dot_general_fwd)

# --- shape -------------------------------------------------------------------------------------
deflinear("transpose", lambda ct, x, *, permutation, **_: (lax.transpose(ct, np.argsort(permutation)),))


def _t_reshape(ct, x, *dyn, dimensions=None, **_):
    # reshape[dimensions=p] reads x in the order transpose(x, p): undo the reshape, then the transpose.
    if dimensions is None:
        return (jnp.reshape(ct, _shape(x)), *[None] * len(dyn))
    ct = jnp.reshape(ct, [_shape(x)[d] for d in dimensions])
    return (lax.transpose(ct, np.argsort(dimensions)), *[None] * len(dyn))


deflinear("reshape", _t_reshape)
deflinear("squeeze", lambda ct, x, **_: (jnp.reshape(ct, _shape(x)),))
deflinear("rev", lambda ct, x, *, dimensions, **_: (lax.rev(ct, dimensions),))


def _t_broadcast_in_dim(ct, x, *dyn, shape, broadcast_dimensions, **_):
    # Sum over the new axes and over axes where x had size 1: the one place broadcasting is undone.
    x_shape = _shape(x)
    new_axes = [d for d in range(len(shape)) if d not in broadcast_dimensions]
    ones = [b for i, b in enumerate(broadcast_dimensions) if x_shape[i] == 1 and shape[b] != 1]
    summed = jnp.sum(ct, axis=tuple(new_axes + ones), keepdims=True) if new_axes or ones else ct
    return (jnp.reshape(summed, x_shape).astype(ct.dtype), *[None] * len(dyn))


def _broadcast_in_dim_jvp(xs, ts, **params):
    p = prim("broadcast_in_dim")
    ans = p.bind(*xs, **params)
    return ans, (None if ts[0] is None else p.bind(ts[0], *xs[1:], **params))


register("broadcast_in_dim", vjp=lambda ct, ans, *xs, **p: _t_broadcast_in_dim(ct, *xs, **p),
         jvp=_broadcast_in_dim_jvp)


def _t_concatenate(ct, *xs, dimension, **_):
    cuts = np.cumsum([_shape(x)[dimension] for x in xs])[:-1]
    return tuple(jnp.split(ct, cuts, axis=dimension))


deflinear("concatenate", _t_concatenate)


def _t_pad(ct, x, padding_value, *, padding_config, **_):
    lo, hi, interior = zip(*padding_config, strict=True)
    unpadded = lax.pad(ct, jnp.zeros((), ct.dtype), [(-a, -b, 0) for a, b in zip(lo, hi, strict=True)])
    ct_x = lax.slice(unpadded, [0] * ct.ndim, unpadded.shape, [i + 1 for i in interior])
    return ct_x, jnp.sum(ct) - jnp.sum(ct_x)


deflinear("pad", _t_pad)


def _t_slice(ct, x, *, start_indices, limit_indices, strides, **_):
    shape = _shape(x)
    if strides is None or all(s == 1 for s in strides):
        pads = [(s, n - l, 0) for s, n, l in zip(start_indices, shape, limit_indices, strict=True)]
    else:
        real_limits = [s + (0 if t == 0 else 1 + (t - 1) * st)
                       for s, t, st in zip(start_indices, ct.shape, strides, strict=True)]
        pads = [(s, n - l, st - 1) for s, n, l, st in zip(start_indices, shape, real_limits, strides, strict=True)]
    return (lax.pad(ct, jnp.zeros((), ct.dtype), pads),)


deflinear("slice", _t_slice)


# --- dynamic slicing (linear in the array, not in the integer start indices) ---------------------
def _dynamic_slice_vjp(ct, ans, x, *starts, slice_sizes, **_):
    zeros = jnp.zeros(_shape(x), ct.dtype)
    return (lax.dynamic_update_slice(zeros, ct, starts), *[None] * len(starts))


def _dynamic_slice_jvp(xs, ts, **params):
    p = prim("dynamic_slice")
    ans = p.bind(*xs, **params)
    return ans, (None if ts[0] is None else p.bind(ts[0], *xs[1:], **params))


register("dynamic_slice", vjp=_dynamic_slice_vjp, jvp=_dynamic_slice_jvp)


def _dynamic_update_slice_vjp(ct, ans, x, update, *starts, **_):
    ct_x = lax.dynamic_update_slice(ct, jnp.zeros(_shape(update), ct.dtype), starts)
    ct_u = lax.dynamic_slice(ct, starts, _shape(update))
    return (ct_x, ct_u, *[None] * len(starts))


def _dynamic_update_slice_jvp(xs, ts, **params):
    p = prim("dynamic_update_slice")
    x, u, *starts = xs
    ans = p.bind(*xs, **params)
    if ts[0] is None and ts[1] is None:
        return ans, None
    tx = jnp.zeros(_shape(x), ans.dtype) if ts[0] is None else ts[0]
    tu = jnp.zeros(_shape(u), ans.dtype) if ts[1] is None else ts[1]
    return ans, p.bind(tx, tu, *starts, **params)


register("dynamic_update_slice", vjp=_dynamic_update_slice_vjp, jvp=_dynamic_update_slice_jvp)


# --- gather / scatter ----------------------------------------------------------------------------
def _scatter_dnums(d):
    return lax.ScatterDimensionNumbers(
        update_window_dims=d.offset_dims, inserted_window_dims=d.collapsed_slice_dims,
        scatter_dims_to_operand_dims=d.start_index_map, operand_batching_dims=d.operand_batching_dims,
        scatter_indices_batching_dims=d.start_indices_batching_dims)


def _gather_dnums(d):
    return lax.GatherDimensionNumbers(
        offset_dims=d.update_window_dims, collapsed_slice_dims=d.inserted_window_dims,
        start_index_map=d.scatter_dims_to_operand_dims, operand_batching_dims=d.operand_batching_dims,
        start_indices_batching_dims=d.scatter_indices_batching_dims)


def _gather_vjp(ct, ans, x, indices, *, dimension_numbers, slice_sizes, indices_are_sorted,
                unique_indices, mode, fill_value=None, **_):
    # The transpose of a gather is a scatter-add of the cotangent into zeros (dropped where the
    # gather filled out-of-bounds rows).
    zeros = jnp.zeros(_shape(x), ct.dtype)
    ct_x = lax.scatter_add(zeros, indices, ct, _scatter_dnums(dimension_numbers),
                           indices_are_sorted=indices_are_sorted, unique_indices=unique_indices, mode=mode)
    return ct_x, None


def _gather_jvp(xs, ts, **params):
    p = prim("gather")
    ans = p.bind(*xs, **params)
    # Rows filled for out-of-bounds indices are constants: their tangent is 0 (not the NaN fill).
    return ans, (None if ts[0] is None else p.bind(ts[0], xs[1], **{**params, "fill_value": 0}))


register("gather", vjp=_gather_vjp, jvp=_gather_jvp)


def _scatter_gather(ct, indices, updates, dimension_numbers, indices_are_sorted, unique_indices, mode):
    """Gather the cotangent at the scattered positions: the transpose of scatter w.r.t. updates."""
    d = dimension_numbers
    slice_sizes, pos = [], 0
    for i in range(ct.ndim):
        if i in d.inserted_window_dims or i in d.operand_batching_dims:
            slice_sizes.append(1)
        else:
            slice_sizes.append(_shape(updates)[d.update_window_dims[pos]])
            pos += 1
    return lax.gather(ct, indices, _gather_dnums(d), tuple(slice_sizes), indices_are_sorted=indices_are_sorted,
                      unique_indices=unique_indices, mode=mode, fill_value=0)


def _scatter_add_vjp(ct, ans, x, indices, updates, *, dimension_numbers, indices_are_sorted, unique_indices,
                     mode, **_):
    ct_u = _scatter_gather(ct, indices, updates, dimension_numbers, indices_are_sorted, unique_indices, mode)
    return ct, None, ct_u


def _scatter_linear_jvp(name):
    def jvp(xs, ts, **params):
        p = prim(name)
        x, indices, updates = xs
        ans = p.bind(*xs, **params)
        if ts[0] is None and ts[2] is None:
            return ans, None
        tx = jnp.zeros(_shape(x), ans.dtype) if ts[0] is None else ts[0]
        tu = jnp.zeros(_shape(updates), ans.dtype) if ts[2] is None else ts[2]
        return ans, p.bind(tx, indices, tu, **params)
    return jvp


register("scatter_add", vjp=_scatter_add_vjp, jvp=_scatter_linear_jvp("scatter_add"))
register("scatter_sub", vjp=lambda ct, ans, x, i, u, **p: (lambda r: (r[0], None, -r[2]))(
    _scatter_add_vjp(ct, ans, x, i, u, **p)), jvp=_scatter_linear_jvp("scatter_sub"))


def _scatter_vjp(ct, ans, x, indices, updates, *, dimension_numbers, indices_are_sorted, unique_indices,
                 mode, update_jaxpr=None, update_consts=(), **_):
    # Overwrite: positions that were written get no cotangent in x; each update element gets the
    # cotangent of its position only if it is the one that landed there (duplicates: one winner).
    kw = dict(indices_are_sorted=indices_are_sorted, unique_indices=unique_indices, mode=mode)
    ct_x = lax.scatter(ct, indices, jnp.zeros(_shape(updates), ct.dtype), dimension_numbers, **kw)
    gathered = _scatter_gather(ct, indices, updates, dimension_numbers, **kw)
    if unique_indices:
        return ct_x, None, gathered
    ids = jnp.arange(1, int(np.prod(_shape(updates))) + 1, dtype=jnp.int32).reshape(_shape(updates))
    landed = lax.scatter(jnp.zeros(_shape(x), jnp.int32), indices, ids, dimension_numbers, **kw)
    winner = _scatter_gather(landed, indices, updates, dimension_numbers, **kw) == ids
    return ct_x, None, jnp.where(winner, gathered, jnp.zeros_like(gathered))


register("scatter", vjp=_scatter_vjp, jvp=_scatter_linear_jvp("scatter"))


# scatter_mul: out = x * (ones with each update multiplied in at its index). Linear in x, so the x
# cotangent is the same scatter_mul of ct. With unique indices, d out = x * scatter_add(0, i, du), whose
# transpose is gather(ct * x); with repeated indices JAX refuses the updates' derivative, and so do we.
_SCATTER_MUL_UNIQUE = "scatter_mul gradients are only implemented if `unique_indices=True`"


def _scatter_mul_vjp(ct, ans, x, indices, updates, *, dimension_numbers, indices_are_sorted, unique_indices,
                     mode, update_jaxpr=None, update_consts=(), _active=(True, False, True)):
    kw = dict(indices_are_sorted=indices_are_sorted, unique_indices=unique_indices, mode=mode)
    ct_x = lax.scatter_mul(ct, indices, updates, dimension_numbers, **kw) if _active[0] else None
    ct_u = None
    if _active[2]:
        if not unique_indices:
            raise NotImplementedError(_SCATTER_MUL_UNIQUE)
        ct_u = _scatter_gather(ct * x, indices, updates, dimension_numbers, **kw)
    return ct_x, None, ct_u


_scatter_mul_vjp.takes_active = True


def _scatter_mul_jvp(xs, ts, *, dimension_numbers, indices_are_sorted, unique_indices, mode, **params):
    x, indices, updates = xs
    kw = dict(indices_are_sorted=indices_are_sorted, unique_indices=unique_indices, mode=mode)
    ans = lax.scatter_mul(x, indices, updates, dimension_numbers, **kw)
    terms = [] if ts[0] is None else [lax.scatter_mul(ts[0], indices, updates, dimension_numbers, **kw)]
    if ts[2] is not None:
        if not unique_indices:
            raise NotImplementedError(_SCATTER_MUL_UNIQUE)
        terms.append(x * lax.scatter_add(jnp.zeros_like(x), indices, ts[2], dimension_numbers, **kw))
    return ans, (sum(terms[1:], terms[0]) if terms else None)


register("scatter_mul", vjp=_scatter_mul_vjp, jvp=_scatter_mul_jvp)


# scatter_min / scatter_max: each position keeps the extreme of its old value and the updates sent to
# it. As in JAX (and like lax.max), the derivative there is the average over everyone who attains the
# extreme (old value and winning updates alike); positions nobody wrote keep x's derivative. The JVP is
# t_out = t_x + scatter_add(0, i, G(t_x) * a + t_u * b), G a gather at the indices, with coefficients
# a = (kept x ? 1/n : 0) - 1 spread over the n_refs updates that hit the position (that undoes t_x there
# exactly once) and b = (winning update ? 1/n : 0), n the number of winners; the VJP is its transpose.
def _extremal_coefs(x, indices, updates, ans, dimension_numbers, kw):
    g = lambda v: _scatter_gather(v, indices, updates, dimension_numbers, **kw)
    add = lambda v: lax.scatter_add(jnp.zeros_like(x), indices, v, dimension_numbers, **kw)
    target = g(ans)
    won, kept = updates == target, g(x) == target
    one, zero = jnp.ones_like(updates), jnp.zeros_like(updates)
    n_won = g(add(jnp.where(won, one, zero))) + jnp.where(kept, one, zero)
    n_refs = g(add(one))
    safe = lambda d: jnp.where(d == 0, one, d)  # out-of-bounds updates (dropped) gather zeros
    coef_x = (jnp.where(kept, 1 / safe(n_won), zero) - 1) / safe(n_refs)
    coef_u = jnp.where(won, 1 / safe(n_won), zero)
    return g, add, coef_x, coef_u


def _scatter_extremal(name):
    def jvp(xs, ts, *, dimension_numbers, indices_are_sorted, unique_indices, mode, **params):
        x, indices, updates = xs
        kw = dict(indices_are_sorted=indices_are_sorted, unique_indices=unique_indices, mode=mode)
        ans = prim(name).bind(x, indices, updates, dimension_numbers=dimension_numbers, **kw, **params)
        if ts[0] is None and ts[2] is None:
            return ans, None
        g, add, coef_x, coef_u = _extremal_coefs(x, indices, updates, ans, dimension_numbers, kw)
        tx = jnp.zeros_like(x) if ts[0] is None else ts[0]
        tu = jnp.zeros_like(updates) if ts[2] is None else ts[2]
        return ans, tx + add(g(tx) * coef_x + tu * coef_u)

    def vjp(ct, ans, x, indices, updates, *, dimension_numbers, indices_are_sorted, unique_indices, mode, **_):
        kw = dict(indices_are_sorted=indices_are_sorted, unique_indices=unique_indices, mode=mode)
        g, add, coef_x, coef_u = _extremal_coefs(x, indices, updates, ans, dimension_numbers, kw)
        ct_at = g(ct)
        return ct + add(ct_at * coef_x), None, ct_at * coef_u

    register(name, vjp=vjp, jvp=jvp)


_scatter_extremal("scatter_max")
_scatter_extremal("scatter_min")


# --- reductions ----------------------------------------------------------------------------------
def _t_reduce_sum(ct, x, *, axes, **_):
    shape = _shape(x)
    kept = [d for d in range(len(shape)) if d not in axes]
    return (lax.broadcast_in_dim(ct, shape, kept),)


deflinear("reduce_sum", _t_reduce_sum)


def _chooser_mask(ans, x, axes):
    # Where x attains its max (min); ties share the cotangent equally, as in JAX.
    kept = [d for d in range(x.ndim) if d not in axes]
    hit = (x == lax.broadcast_in_dim(ans, x.shape, kept)).astype(ans.dtype)
    counts = jnp.sum(hit, axis=tuple(axes))
    return hit, counts, kept


def _chooser_vjp(ct, ans, x, *, axes, **_):
    hit, counts, kept = _chooser_mask(ans, x, axes)
    return (hit * lax.broadcast_in_dim(ct / counts, x.shape, kept),)


def _chooser_jvp(name):
    def jvp(xs, ts, **params):
        (x,), (t,) = xs, ts
        ans = prim(name).bind(x, **params)
        if t is None:
            return ans, None
        hit, counts, _ = _chooser_mask(ans, x, params["axes"])
        return ans, jnp.sum(t * hit, axis=tuple(params["axes"])) / counts
    return jvp


register("reduce_max", vjp=_chooser_vjp, jvp=_chooser_jvp("reduce_max"))
register("reduce_min", vjp=_chooser_vjp, jvp=_chooser_jvp("reduce_min"))


def _prod_others(x, axes):
    """For each element, the product of the other elements it is reduced with (zeros handled:
    exclusive cumulative products from both sides, no division)."""
    axes = tuple(sorted(axes))
    kept = [d for d in range(x.ndim) if d not in axes]
    perm = kept + list(axes)
    xt = lax.transpose(x, perm)
    lead = xt.shape[:len(kept)]
    flat = xt.reshape((*lead, -1))
    ones = jnp.ones((*lead, 1), x.dtype)
    left = jnp.cumprod(jnp.concatenate([ones, flat[..., :-1]], axis=-1), axis=-1)
    right = jnp.flip(jnp.cumprod(jnp.concatenate([ones, jnp.flip(flat, -1)[..., :-1]], axis=-1), axis=-1), -1)
    others = (left * right).reshape(xt.shape)
    return lax.transpose(others, np.argsort(perm)), kept


def _reduce_prod_vjp(ct, ans, x, *, axes, **_):
    others, kept = _prod_others(x, axes)
    return (others * lax.broadcast_in_dim(ct, x.shape, kept),)


def _reduce_prod_jvp(xs, ts, *, axes, **params):
    (x,), (t,) = xs, ts
    ans = prim("reduce_prod").bind(x, axes=axes, **params)
    if t is None:
        return ans, None
    others, _ = _prod_others(x, axes)
    return ans, jnp.sum(t * others, axis=tuple(axes))


register("reduce_prod", vjp=_reduce_prod_vjp, jvp=_reduce_prod_jvp)

# lax.reduce with a user-defined reducer (JAX turns add/mul/max/min monoids into reduce_sum etc.; the
# rest stay the generic `reduce`). As in JAX, the reduction is re-expressed as a balanced tree of the
# (vmapped) reducer: halve the reduced axis, pad an odd half with the init value, combine, repeat.
# That tree is an ordinary jaxpr, which both our interpreters differentiate; like JAX, derivatives with
# respect to the init values are refused. Valid for reducers XLA accepts: associative and commutative.
_REDUCE_INIT = ("Gradient of general lax.reduce with non-zero tangents for initial values to reduction not "
                "implemented (fungpt, like JAX). Pass init values that do not depend on the differentiated inputs, "
                "e.g. wrap them in jax.lax.stop_gradient.")


def _reduce_tree(reducer_jaxpr, dimensions, *args):
    n = len(args) // 2
    xs, inits = list(args[:n]), args[n:]
    shape = xs[0].shape
    kept = [d for d in range(len(shape)) if d not in dimensions]
    # (reduced elements, *kept axes): the reduced axes moved to the front and flattened.
    flat_shape = (int(np.prod([shape[d] for d in dimensions])), *[shape[d] for d in kept])
    xs = [lax.reshape(x, flat_shape, (*dimensions, *kept)) for x in xs]
    reducer = lambda *a: eval_jaxpr(reducer_jaxpr.jaxpr, reducer_jaxpr.consts, a)
    for _ in range(len(kept) + 1):
        reducer = jax.vmap(reducer)
    while xs[0].shape[0] > 1:
        m = xs[0].shape[0]
        half = (m + 1) // 2
        lo = [lax.slice_in_dim(x, 0, half) for x in xs]
        hi = [lax.slice_in_dim(x, half, None) for x in xs]
        if m - half != half:
            pads = [(0, 1, 0)] + [(0, 0, 0)] * len(kept)
            hi = [lax.pad(x, i, pads) for x, i in zip(hi, inits, strict=True)]
        xs = reducer(*lo, *hi)
    if xs[0].shape[0] == 0:
        return [lax.full(flat_shape[1:], i) for i in inits]
    return [lax.squeeze(x, (0,)) for x in xs]


@functools.lru_cache(maxsize=256)
def _reduce_tree_jaxpr(reducer_jaxpr, dimensions, avals):
    args = [jax.ShapeDtypeStruct(s, d) for s, d in avals]
    return jax.make_jaxpr(functools.partial(_reduce_tree, reducer_jaxpr, tuple(dimensions)))(*args)


def _tree_for(args, jaxpr, dimensions):
    return _reduce_tree_jaxpr(jaxpr, tuple(dimensions), tuple((np.shape(a), np.dtype(a.dtype)) for a in args))


def _reduce_fwd(ins, active, *, computation, jaxpr, dimensions):
    if any(active[len(ins) // 2:]):
        raise NotImplementedError(_REDUCE_INIT)
    # The tree is differentiated as a call: compiled once per shape when run eagerly, inlined under a trace.
    return call_fwd(list(ins), list(active), jaxpr=_tree_for(ins, jaxpr, dimensions))


def _reduce_jvp(xs, ts, *, computation, jaxpr, dimensions):
    if any(t is not None for t in ts[len(xs) // 2:]):
        raise NotImplementedError(_REDUCE_INIT)
    tree = _tree_for(xs, jaxpr, dimensions)
    if any(isinstance(a, jax.core.Tracer) for a in [*xs, *ts]):
        return jvp_jaxpr(tree.jaxpr, list(tree.consts), list(xs), list(ts))
    return _compiled_tree_jvp(tree, tuple(t is None for t in ts))(list(xs), [t for t in ts if t is not None])


@functools.lru_cache(maxsize=256)
def _compiled_tree_jvp(tree, zero):
    # Eagerly, one compiled program instead of one dispatch (and compile) per equation of the tree.
    def run(xs, ts):
        it = iter(ts)
        return jvp_jaxpr(tree.jaxpr, list(tree.consts), xs, [None if z else next(it) for z in zero])
    return jax.jit(run)


register("reduce", fwd=_reduce_fwd, jvp=_reduce_jvp)


# cumsum is linear; its transpose runs the sum the other way.
deflinear("cumsum", lambda ct, x, *, axis, reverse, **_: (lax.cumsum(ct, axis, reverse=not reverse),))


# --- split / stack / unstack / tile (recent JAX has them as primitives) ---------------------------
def _split_vjp(cts, ans, x, *, sizes, axis, **_):
    return (jnp.concatenate(cts, axis=axis),)


def _split_jvp(xs, ts, **params):
    outs = prim("split").bind(*xs, **params)
    return outs, (None if ts[0] is None else prim("split").bind(ts[0], **params))


register("split", vjp=_split_vjp, jvp=_split_jvp)


deflinear("stack", lambda ct, *xs, axis, **_: tuple(jnp.take(ct, i, axis=axis) for i in range(len(xs))))


def _unstack_vjp(cts, ans, x, *, axis, **_):
    return (jnp.stack(cts, axis=axis),)


def _unstack_jvp(xs, ts, **params):
    outs = prim("unstack").bind(*xs, **params)
    return outs, ([None] * len(outs) if ts[0] is None else prim("unstack").bind(ts[0], **params))


register("unstack", vjp=_unstack_vjp, jvp=_unstack_jvp)


def _t_tile(ct, x, *, reps, **_):
    # out[r_0*n_0 + i_0, ...] = x[i_0, ...]: sum the cotangent over the repetitions.
    shape = _shape(x)
    lead = len(reps) - len(shape)
    full = (1,) * lead + tuple(shape)
    split = ct.reshape([d for r, n in zip(reps, full, strict=True) for d in (r, n)])
    summed = jnp.sum(split, axis=tuple(range(0, 2 * len(reps), 2)))
    return (summed.reshape(shape),)


deflinear("tile", _t_tile)
