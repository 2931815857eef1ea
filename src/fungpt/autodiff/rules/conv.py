"""Convolutions, windowed reductions (pooling) and FFTs.

conv_general_dilated is bilinear: its JVP convolves each tangent with the other operand, and each
operand's cotangent is again a convolution (of the cotangent with the flipped kernel for the input;
of the input with the cotangent for the kernel), with strides and dilations swapping roles.
reduce_window_sum and fft are linear. Max/min pooling routes the derivative to the element each
window selected, with XLA's select_and_gather_add / select_and_scatter_add, a transpose pair."""
import jax.numpy as jnp
import numpy as np
from jax import lax

from fungpt.autodiff.forward import jvp_jaxpr
from fungpt.autodiff.jaxpr import open_jaxpr
from fungpt.autodiff.rules import deflinear, prim, register


def _dilate(shape, dilation):
    # Size of an axis after inserting (dilation - 1) holes between its elements.
    return np.array([0 if d == 0 else 1 + r * (d - 1) for d, r in zip(shape, dilation, strict=True)])


def _ct_lhs_padding(in_shape, window, strides, out_shape, padding, lhs_dilation, rhs_dilation):
    # Padding that makes a stride-1 correlation of the (stride-dilated) cotangent with the flipped
    # window land exactly on the (lhs-dilated) input positions.
    lhs_d, rhs_d, out_d = _dilate(in_shape, lhs_dilation), _dilate(window, rhs_dilation), _dilate(out_shape, strides)
    before = rhs_d - np.array([lo for lo, _ in padding]) - 1
    after = lhs_d + rhs_d - 1 - out_d - before
    return [(int(a), int(b)) for a, b in zip(before, after, strict=True)]


def _ct_rhs_padding(in_shape, window, strides, out_shape, padding, lhs_dilation, rhs_dilation):
    lhs_d, rhs_d, out_d = _dilate(in_shape, lhs_dilation), _dilate(window, rhs_dilation), _dilate(out_shape, strides)
    lo = [p for p, _ in padding]
    hi = [int(o - i + r - p - 1) for o, i, r, p in zip(out_d, lhs_d, rhs_d, lo, strict=True)]
    return list(zip(lo, hi, strict=True))


# --- conv_general_dilated ---------------------------------------------------------------------------
def _swap01(spec):
    return (spec[1], spec[0], *spec[2:])


def _split_axis(x, axis, groups):
    # [.., G*K, ..] -> [.., G, K, ..]
    shape = list(x.shape)
    shape[axis:axis + 1] = [groups, shape[axis] // groups]
    return x.reshape(shape)


def _merge_axis(x, src, dst):
    # Move axis `src` next to (in front of) axis `dst` (numbered after removing src) and merge them.
    perm = [i for i in range(x.ndim) if i != src]
    perm.insert(dst, src)
    shape = [x.shape[i] for i in range(x.ndim) if i != src]
    shape[dst] *= x.shape[src]
    return lax.transpose(x, perm).reshape(shape)


def _conv(lhs, rhs, params, **changes):
    return prim("conv_general_dilated").bind(lhs, rhs, **{**params, **changes})


def _conv_ct_lhs(g, lhs, rhs, params):
    # x_bar = g (*) flip(w): a correlation of the cotangent with the spatially reversed kernel, its
    # in/out feature axes swapped; strides become input dilation and vice versa.
    lhs_spec, rhs_spec, out_spec = dn = params["dimension_numbers"]
    fgc, bgc = params["feature_group_count"], params["batch_group_count"]
    groups = fgc
    if fgc > 1 or bgc > 1:  # move the group axis from the kernel's out-features into its in-features
        rhs = _merge_axis(_split_axis(rhs, rhs_spec[0], max(fgc, bgc)), rhs_spec[0], rhs_spec[1])
        groups = max(fgc, bgc)
    padding = _ct_lhs_padding(np.take(np.shape(lhs), lhs_spec[2:]), np.take(rhs.shape, rhs_spec[2:]),
                              params["window_strides"], np.take(g.shape, out_spec[2:]), params["padding"],
                              params["lhs_dilation"], params["rhs_dilation"])
    flipped = lax.rev(rhs, tuple(rhs_spec[2:])).astype(g.dtype)
    out = _conv(g, flipped, params, window_strides=params["lhs_dilation"], padding=tuple(padding),
                lhs_dilation=params["window_strides"], feature_group_count=groups, batch_group_count=1,
                dimension_numbers=type(dn)(out_spec, _swap01(rhs_spec), lhs_spec),
                **_no_sharding(params))
    if bgc > 1:  # the batch groups were folded into features: unfold them back into the batch
        out = _merge_axis(_split_axis(out, lhs_spec[1], bgc), lhs_spec[1], lhs_spec[0])
    return out.astype(lhs.dtype)


def _conv_ct_rhs(g, lhs, rhs, params):
    # w_bar = x (*) g: correlate the input with the cotangent; feature groups become batch groups.
    lhs_spec, rhs_spec, out_spec = dn = params["dimension_numbers"]
    fgc, bgc = params["feature_group_count"], params["batch_group_count"]
    if g.size == 0:
        return jnp.zeros(np.shape(rhs), rhs.dtype)
    fgc, bgc = (bgc, 1) if bgc > 1 else (1, fgc)
    padding = _ct_rhs_padding(np.take(np.shape(lhs), lhs_spec[2:]), np.take(np.shape(rhs), rhs_spec[2:]),
                              params["window_strides"], np.take(g.shape, out_spec[2:]), params["padding"],
                              params["lhs_dilation"], params["rhs_dilation"])
    out = _conv(lhs.astype(g.dtype), g, params, window_strides=params["rhs_dilation"], padding=tuple(padding),
                rhs_dilation=params["window_strides"], feature_group_count=fgc, batch_group_count=bgc,
                dimension_numbers=type(dn)(_swap01(lhs_spec), _swap01(out_spec), _swap01(rhs_spec)),
                **_no_sharding(params))
    return out.astype(rhs.dtype)


def _no_sharding(params):
    return {"out_sharding": None} if "out_sharding" in params else {}


def _conv_vjp(ct, ans, lhs, rhs, **params):
    return _conv_ct_lhs(ct, lhs, rhs, params), _conv_ct_rhs(ct, lhs, rhs, params)


def _conv_jvp(xs, ts, **params):
    (lhs, rhs), (tl, tr) = xs, ts
    ans = _conv(lhs, rhs, params)
    terms = ([] if tl is None else [_conv(tl, rhs, params)]) + ([] if tr is None else [_conv(lhs, tr, params)])
    return ans, (sum(terms[1:], terms[0]) if terms else None)


register("conv_general_dilated", vjp=_conv_vjp, jvp=_conv_jvp, jit=True)


# --- reduce_window_sum (linear): spread each window's cotangent over the window ------------------------
def _t_reduce_window_sum(ct, x, *, window_dimensions, window_strides, padding, base_dilation, window_dilation):
    shape = np.shape(x)
    pads = _ct_lhs_padding(shape, window_dimensions, window_strides, ct.shape, padding, base_dilation,
                           window_dilation)
    spread = lax.pad(ct, jnp.zeros((), ct.dtype), [(lo, hi, s - 1) for (lo, hi), s in
                                                   zip(pads, window_strides, strict=True)])
    out = prim("reduce_window_sum").bind(spread, window_dimensions=tuple(window_dimensions),
                                         window_strides=tuple(base_dilation), padding=((0, 0),) * len(shape),
                                         base_dilation=(1,) * len(shape), window_dilation=tuple(window_dilation))
    return (out,)


deflinear("reduce_window_sum", _t_reduce_window_sum)


# --- max / min pooling -----------------------------------------------------------------------------
def _gather_selected(t, x, select_prim, window_dimensions, window_strides, padding, base_dilation, window_dilation):
    # The tangent at the element each window selects (ge: the max, le: the min; first one on ties).
    return prim("select_and_gather_add").bind(
        t, x, select_prim=select_prim, window_dimensions=tuple(window_dimensions),
        window_strides=tuple(window_strides), padding=tuple(padding), base_dilation=tuple(base_dilation),
        window_dilation=tuple(window_dilation))


def _scatter_selected(ct, x, select_prim, window_dimensions, window_strides, padding, base_dilation,
                      window_dilation):
    # The transpose of _gather_selected: each window's cotangent goes to the element it selected.
    if any(d != 1 for d in window_dilation):
        raise NotImplementedError(
            f"fungpt: reverse mode through max/min pooling with window dilation {tuple(window_dilation)} "
            f"is not implemented (JAX does not implement it either); forward mode works.")
    dilated = any(d != 1 for d in base_dilation)
    if dilated:  # holes never win the selection
        fill = -jnp.inf if select_prim is lax.ge_p else jnp.inf
        x = lax.pad(x, jnp.asarray(fill, x.dtype), [(0, 0, d - 1) for d in base_dilation])
    out = prim("select_and_scatter_add").bind(
        ct, x, select_prim=select_prim, window_dimensions=tuple(window_dimensions),
        window_strides=tuple(window_strides), padding=tuple(padding))
    return lax.slice(out, (0,) * out.ndim, out.shape, tuple(base_dilation)) if dilated else out


def _chooser(name, select_prim):
    def vjp(ct, ans, x, **params):
        return (_scatter_selected(ct, x, select_prim, **params),)

    def jvp(xs, ts, **params):
        (x,), (t,) = xs, ts
        ans = prim(name).bind(x, **params)
        return ans, (None if t is None else _gather_selected(t, x, select_prim, **params))

    register(name, vjp=vjp, jvp=jvp, jit=True)


_chooser("reduce_window_max", lax.ge_p)
_chooser("reduce_window_min", lax.le_p)


def _sga_vjp(ct, ans, t, x, *, select_prim, window_dimensions, window_strides, padding, base_dilation,
             window_dilation):
    return _scatter_selected(ct, x, select_prim, window_dimensions, window_strides, padding, base_dilation,
                             window_dilation), None


def _sga_jvp(xs, ts, **params):
    (t, x), (tt, _) = xs, ts  # linear in the gathered values; the selection itself is piecewise constant
    ans = prim("select_and_gather_add").bind(t, x, **params)
    return ans, (None if tt is None else prim("select_and_gather_add").bind(tt, x, **params))


def _ssa_vjp(ct, ans, source, x, *, select_prim, window_dimensions, window_strides, padding):
    ones = (1,) * len(window_dimensions)
    return _gather_selected(ct, x, select_prim, window_dimensions, window_strides, padding, ones, ones), None


def _ssa_jvp(xs, ts, **params):
    (s, x), (ts_, _) = xs, ts
    ans = prim("select_and_scatter_add").bind(s, x, **params)
    return ans, (None if ts_ is None else prim("select_and_scatter_add").bind(ts_, x, **params))


register("select_and_gather_add", vjp=_sga_vjp, jvp=_sga_jvp, jit=True)
register("select_and_scatter_add", vjp=_ssa_vjp, jvp=_ssa_jvp, jit=True)


# --- generic reduce_window: forward mode through the reducer, as JAX does. No reverse rule: JAX cannot
# transpose it either, and the interpreter's missing-rule error names the primitive and the line.
def _reduce_window_jvp(xs, ts, *, jaxpr, consts, **params):
    n = len(xs) // 2
    operands, inits = xs[:n], xs[n:]
    if any(t is not None for t in ts[n:]):
        raise NotImplementedError("fungpt: reduce_window with a differentiated init value is not supported "
                                  "(JAX refuses it too).")
    body, body_consts = open_jaxpr(jaxpr)
    body_consts = list(body_consts) + list(consts)

    def reducer(left, right):
        (pl, tl), (pr, tr) = (left[:n], left[n:]), (right[:n], right[n:])
        outs, touts = jvp_jaxpr(body, body_consts, [*pl, *pr], [*tl, *tr])
        return (*outs, *[jnp.zeros_like(o) if t is None else t for o, t in zip(outs, touts, strict=True)])

    tangents = [jnp.zeros_like(x) if t is None else t for x, t in zip(operands, ts[:n], strict=True)]
    out = lax.reduce_window((*operands, *tangents), (*inits, *[jnp.zeros_like(i) for i in inits]), reducer,
                            params["window_dimensions"], params["window_strides"], params["padding"],
                            params["base_dilation"], params["window_dilation"])
    return list(out[:n]), list(out[n:])


register("reduce_window", jvp=_reduce_window_jvp, jit=True)


# --- fft (linear; complex cotangents follow JAX's transpose convention: no conjugation) --------------
def _t_fft(ct, x, *, fft_type, fft_lengths):
    fft = prim("fft")
    if fft_type == lax.FftType.RFFT:
        # rfft = (keep the first n//2 + 1 bins) . FFT . (real -> complex): transpose each step.
        n = fft_lengths[-1]
        full = lax.pad(ct, jnp.zeros((), ct.dtype), [(0, 0, 0)] * (ct.ndim - 1) + [(0, n - ct.shape[-1], 0)])
        out = jnp.real(fft.bind(full, fft_type=lax.FftType.FFT, fft_lengths=fft_lengths))
        return (out.astype(x.dtype),)
    if fft_type == lax.FftType.IRFFT:
        # irfft = (1/N) . Hermitian-extended inverse FFT: bins other than DC (and Nyquist, for even n)
        # appear twice in the extension, hence the weights 1, 2, ..., 2, (1).
        y = fft.bind(ct, fft_type=lax.FftType.RFFT, fft_lengths=fft_lengths)
        m, odd = y.shape[-1], fft_lengths[-1] % 2
        weights = np.concatenate([[1.0], np.full(m - 2 + odd, 2.0), np.ones(1 - odd)])
        scale = (weights / float(np.prod(fft_lengths))).reshape((1,) * (y.ndim - 1) + (m,))
        return (jnp.conj(y * jnp.asarray(scale, dtype=y.dtype)),)
    # The DFT matrix is symmetric: FFT and IFFT are their own transposes.
    return (fft.bind(ct, fft_type=fft_type, fft_lengths=fft_lengths),)


deflinear("fft", _t_fft)
