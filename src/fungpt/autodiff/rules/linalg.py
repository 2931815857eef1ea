"""Matrix decompositions and solves: what `jnp.linalg` lowers to.

  solve / inv       lu (of a stop_gradient'ed copy) + custom_linear_solve, whose matvec carries the
                    derivative; triangular_solve inside.    det / slogdet: custom_jvp rules over lu.
  cholesky, qr, eigh, svd, triangular_solve: their own primitives.

Each JVP is the standard perturbation result, written as JAX writes it so that ties and degenerate
spectra behave the same (eigh/svd divide by eigenvalue gaps, as JAX does: repeated eigenvalues give
non-finite eigenvector derivatives in both). VJPs are the transposes. Complex matrices follow JAX's
convention: the VJP is the plain (unconjugated) transpose of the JVP.

References: Murray 2016 (Cholesky), de Hoog, Anderssen & Lukas 2011 (LU), Townsend 2016 and
Walter & Lehmann 2018 (QR), Giles 2008 and Seeger et al. 2017 (eigh, SVD)."""
import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from fungpt.autodiff.forward import jvp_jaxpr
from fungpt.autodiff.jaxpr import is_float, open_jaxpr, zeros_like
from fungpt.autodiff.reverse import linearize
from fungpt.autodiff.rules import prim, register

_HI = lax.Precision.HIGHEST


def _mm(a, b):
    return jnp.matmul(a, b, precision=_HI)


def _T(x):
    return jnp.swapaxes(x, -1, -2)


def _H(x):
    return jnp.conj(_T(x))


def _tril(x, k=0):
    return jnp.tril(x, k)


def _triu(x, k=0):
    return jnp.triu(x, k)


def _eye(n, dtype, ndim):
    return jnp.eye(n, dtype=dtype).reshape((1,) * (ndim - 2) + (n, n))


def _diag(x):
    return jnp.diagonal(x, axis1=-2, axis2=-1)


def _embed_diag(d, n=None):
    n = d.shape[-1] if n is None else n
    return _eye(n, d.dtype, d.ndim + 1) * d[..., None, :]


def _tsolve(a, b, **kw):
    return lax.linalg.triangular_solve(a, b, **kw)


def _transpose_linear(tangent_fn, tangent_avals, cts):
    """Transpose of the linear map `tangent_fn` (a list of tangents -> a list of tangents) with our
    own reverse-mode interpreter: trace it, sweep forward at zero, pull `cts` back."""
    closed = jax.make_jaxpr(tangent_fn)(*tangent_avals)
    args = [jnp.zeros(a.shape, a.dtype) for a in tangent_avals]
    _, _, res, backward = linearize(closed.jaxpr, list(closed.consts), args, [True] * len(args))
    return [jnp.zeros(a.shape, a.dtype) if c is None else c
            for c, a in zip(backward(res, list(cts)), tangent_avals, strict=True)]


# --- triangular_solve: X = op(A)^-1 B (left) or B op(A)^-1 (right) --------------------------------------
def _op(a, transpose_a, conjugate_a):
    a = _T(a) if transpose_a else a
    return jnp.conj(a) if conjugate_a else a


def _triangle(x, lower, unit_diagonal):
    k = 1 if unit_diagonal else 0
    return _tril(x, -k) if lower else _triu(x, k)


def _triangular_solve_vjp(ct, ans, a, b, *, left_side, lower, transpose_a, conjugate_a, unit_diagonal):
    # B_bar = op(A)^-T X_bar (a solve with the transposed op); then, from dX = -op(A)^-1 op(dA) X,
    # op(dA)_bar = -B_bar X^T (left) or -X^T B_bar (right), mapped back through op and the triangle.
    kw = dict(left_side=left_side, lower=lower, conjugate_a=conjugate_a, unit_diagonal=unit_diagonal)
    ct_b = _tsolve(a, ct, transpose_a=not transpose_a, **kw)
    ct_op = -(_mm(ct_b, _T(ans)) if left_side else _mm(_T(ans), ct_b))
    ct_a = _op(ct_op, transpose_a, conjugate_a)
    return _triangle(ct_a, lower, unit_diagonal), ct_b


def _triangular_solve_jvp(xs, ts, **params):
    (a, b), (ta, tb) = xs, ts
    ans = _tsolve(a, b, **params)
    terms = [] if tb is None else [_tsolve(a, tb, **params)]
    if ta is not None:  # dX = -op(A)^-1 op(dA) X  (left)  or  -X op(dA) op(A)^-1  (right)
        dop = _op(_triangle(ta, params["lower"], params["unit_diagonal"]), params["transpose_a"],
                  params["conjugate_a"])
        terms.append(-_tsolve(a, _mm(dop, ans) if params["left_side"] else _mm(ans, dop), **params))
    return ans, (sum(terms[1:], terms[0]) if terms else None)


register("triangular_solve", vjp=_triangular_solve_vjp, jvp=_triangular_solve_jvp, jit=True)


# --- cholesky: A = L L^H;  dL = L Phi(L^-1 dA L^-H), Phi = lower triangle with a halved diagonal ------
def _phi(x):
    n = x.shape[-1]
    return _tril(x) / (1 + _eye(n, x.dtype, x.ndim))


def _cholesky_jvp(xs, ts, **params):
    (a,), (ta,) = xs, ts
    L = prim("cholesky").bind(a, **params)
    if ta is None:
        return L, None
    L = _tril(L)
    tmp = _tsolve(L, ta, left_side=False, transpose_a=True, conjugate_a=True, lower=True)
    return L, _mm(L, _phi(_tsolve(L, tmp, left_side=True, lower=True)))


def _cholesky_vjp(ct, ans, a, **params):
    # Transpose of dA -> L Phi(L^-1 dA L^-H):  A_bar = L^-T Phi(L^T L_bar) conj(L)^-1.
    L = _tril(ans)
    y = _phi(_mm(_T(L), ct))
    y = _tsolve(L, y, left_side=True, lower=True, transpose_a=True)
    return (_tsolve(L, y, left_side=False, lower=True, conjugate_a=True),)


register("cholesky", vjp=_cholesky_vjp, jvp=_cholesky_jvp, jit=True)


# --- lu: P A = L U;  F = L^-1 P dA U^-1,  dLU = L tril(F, -1) + triu(F) U ---------------------------------
def _lu_factors(lu):
    m, n = lu.shape[-2:]
    k = min(m, n)
    eye_m, eye_n = _eye(m, lu.dtype, lu.ndim), _eye(n, lu.dtype, lu.ndim)
    l_pad = [(0, 0, 0)] * (lu.ndim - 1) + [(0, m - k, 0)]
    u_pad = [(0, 0, 0)] * (lu.ndim - 2) + [(0, n - k, 0), (0, 0, 0)]
    zero = jnp.zeros((), lu.dtype)
    L = lax.pad(_tril(lu[..., :, :k], -1), zero, l_pad) + eye_m
    # Rows of the identity complete U to n x n when m < n.
    u_eye = jnp.asarray(np.diag((np.arange(n) >= k).astype(np.float64)), lu.dtype).reshape(eye_n.shape)
    U = lax.pad(_triu(lu[..., :k, :]), zero, u_pad) + u_eye
    return L, U


def _rows(x, perm):
    return jnp.take_along_axis(x, perm[..., :, None], axis=-2)


def _lu_jvp(xs, ts):
    (a,), (ta,) = xs, ts
    lu, pivots, perm = prim("lu").bind(a)
    if ta is None:
        return [lu, pivots, perm], [None, None, None]
    L, U = _lu_factors(lu)
    la = _tsolve(L, _rows(ta, perm), left_side=True, lower=True, unit_diagonal=True)
    f = _tsolve(U, la, left_side=False, lower=False)
    return [lu, pivots, perm], [_mm(L, _tril(f, -1)) + _mm(_triu(f), U), None, None]


def _lu_vjp(cts, ans, a):
    lu, _, perm = ans
    L, U = _lu_factors(lu)
    ct_f = _tril(_mm(_T(L), cts[0]), -1) + _triu(_mm(cts[0], _T(U)))
    ct_la = _tsolve(U, ct_f, left_side=False, lower=False, transpose_a=True)
    ct_rows = _tsolve(L, ct_la, left_side=True, lower=True, unit_diagonal=True, transpose_a=True)
    inv = jnp.argsort(perm, axis=-1).astype(perm.dtype)  # row perm[i] of A became row i
    return (_rows(ct_rows, inv),)


register("lu", vjp=_lu_vjp, jvp=_lu_jvp, jit=True)


# --- custom_linear_solve: x = A^-1 b;  dx = A^-1 (db - dA x), where dA comes from matvec's consts -------------
def _split_solve_args(args, const_lengths):
    out, start = [], 0
    for n in const_lengths:
        out.append(list(args[start:start + n]))
        start += n
    return type(const_lengths)(*out), list(args[start:])


def _linear_solve_jvp(xs, ts, *, const_lengths, jaxprs):
    p = prim("linear_solve")
    outs = p.bind(*xs, const_lengths=const_lengths, jaxprs=jaxprs)
    consts, b = _split_solve_args(xs, const_lengths)
    tconsts, tb = _split_solve_args(ts, const_lengths)
    nb = len(b)
    # Tangents of the solve / vecmat consts are ignored, as in JAX: solve is the exact inverse of matvec.
    if all(t is None for t in tb + tconsts.matvec):
        return outs, [None] * len(outs)
    rhs = [zeros_like(x) if t is None else t for x, t in zip(b, tb, strict=True)]
    if any(t is not None for t in tconsts.matvec):
        jaxpr, mv_consts = open_jaxpr(jaxprs.matvec)
        _, dmv = jvp_jaxpr(jaxpr, mv_consts, [*consts.matvec, *outs[:nb]], [*tconsts.matvec, *[None] * nb])
        rhs = [r if d is None else r - d for r, d in zip(rhs, dmv, strict=True)]
    flat = [c for group in consts for c in group]
    dx = p.bind(*flat, *rhs, const_lengths=const_lengths, jaxprs=jaxprs)
    return outs, [*dx[:nb], *[None] * (len(outs) - nb)]


def _linear_solve_fwd(ins, active, *, const_lengths, jaxprs):
    p = prim("linear_solve")
    outs = p.bind(*ins, const_lengths=const_lengths, jaxprs=jaxprs)
    consts, b = _split_solve_args(ins, const_lengths)
    act, _ = _split_solve_args(active, const_lengths)
    nb, n_consts = len(b), sum(const_lengths)
    mv_act = [a and is_float(c.dtype) for a, c in zip(act.matvec, consts.matvec, strict=True)]
    if jaxprs.transpose_solve is None:
        raise TypeError("transpose_solve required for backwards mode automatic differentiation of "
                        "custom_linear_solve (JAX requires it too)")
    out_avals = [jax.ShapeDtypeStruct(np.shape(o), o.dtype) for o in outs[:nb]]

    def bwd(res, cts):
        flat, x = res[:n_consts], res[n_consts:]
        consts, _ = _split_solve_args(flat + [None] * nb, const_lengths)
        ct_x = [jnp.zeros(a.shape, a.dtype) if c is None else c for c, a in zip(cts[:nb], out_avals, strict=True)]
        # b_bar = A^-T x_bar: the same solve with matvec <-> vecmat and solve <-> transpose_solve.
        t_consts = consts.transpose()
        ct_b = p.bind(*[c for group in t_consts for c in group], *ct_x,
                      const_lengths=const_lengths.transpose(), jaxprs=jaxprs.transpose())[:nb]
        ct_mv = [None] * len(mv_act)
        if any(mv_act):  # A_bar = -(d matvec(c, x) / dc)^T b_bar
            jaxpr, mv_consts = open_jaxpr(jaxprs.matvec)
            _, _, r, back = linearize(jaxpr, mv_consts, [*consts.matvec, *x], [*mv_act, *[False] * nb])
            ct_mv = back(r, [-c for c in ct_b])[:len(mv_act)]
        return [*ct_mv, *[None] * (n_consts - len(mv_act)), *ct_b]

    return outs, [*ins[:n_consts], *outs[:nb]], bwd


register("linear_solve", fwd=_linear_solve_fwd, jvp=_linear_solve_jvp)


# --- eigh: A = V diag(w) V^H;  dw = diag(V^H dA V),  dV = V (F o V^H dA V),  F_ij = 1 / (w_j - w_i) ---------
def _eigh_gaps(w, dtype):
    n = w.shape[-1]
    eye = _eye(n, dtype, w.ndim + 1)
    w = w.astype(dtype)
    return 1 / (eye + w[..., None, :] - w[..., :, None]) - eye  # inf off the diagonal where w_i == w_j


def _eigh_jvp(xs, ts, **params):
    (a,), (ta,) = xs, ts
    v, w = prim("eigh").bind((a + _H(a)) / 2, **params)
    if ta is None:
        return [v, w], [None, None]
    _check_full_spectrum(a, params)
    m = _mm(_mm(_H(v), ta), v)
    return [v, w], [_mm(v, _eigh_gaps(w, a.dtype) * m), _diag(jnp.real(m))]


def _eigh_vjp(cts, ans, a, **params):
    (ct_v, ct_w), (v, w) = cts, ans
    _check_full_spectrum(a, params)
    ct_m = _eigh_gaps(w, a.dtype) * _mm(_T(v), ct_v) + _embed_diag(ct_w.astype(a.dtype))
    return (_mm(_mm(jnp.conj(v), ct_m), _T(v)),)


def _check_full_spectrum(a, params):
    n, sub = a.shape[-1], params.get("subset_by_index")
    if not (sub is None or tuple(sub) == (0, n)):
        raise NotImplementedError("fungpt: derivatives of eigh with subset_by_index are not implemented "
                                  "(nor in JAX).")


register("eigh", vjp=_eigh_vjp, jvp=_eigh_jvp, jit=True)


# --- qr: X = Q R -------------------------------------------------------------------------------------------
def _thin_qr_jvp(q, r, dx):
    # C = Q^H dX R^-1; Omega = the skew-Hermitian part built from C's strict lower triangle.
    dx_rinv = _tsolve(r, dx, left_side=False, lower=False)
    c = _mm(_H(q), dx_rinv)
    low = _tril(c, -1)
    n = r.shape[-1]
    omega = low - _H(low) + _eye(n, c.dtype, c.ndim) * (c - jnp.real(c).astype(c.dtype))
    return _mm(q, omega - c) + dx_rinv, _mm(c - omega, r)


def _qr_tangent_fn(x, q, r, p, m, n):
    def cols(y):  # X P = Q R with column pivoting
        return jnp.take_along_axis(y, jnp.broadcast_to(p[0][..., None, :], y.shape), axis=-1) if p else y

    full = q.shape[-1] > n  # full_matrices on a tall matrix: Q is m x m, R is m x n
    if full:
        # Q's last m - n columns are fixed by the Householder convention; their derivative follows
        # Roberts & Roberts 2024 (arXiv:2409.13374, eqs. 32-33), as JAX computes it.
        q_mn, q_mp = q[..., :, :n], q[..., :, n:]
        q_nn, q_pn = q_mn[..., :n, :], q_mn[..., n:, :]
        z_pn_h = jnp.linalg.solve(_H(q_nn - _eye(n, q.dtype, q.ndim)), _H(q_pn))

    def fn(dx):
        dx = cols(dx)
        if m < n:  # wide: factor the leading square block; R2 = Q^H X2 gives the rest of R
            dq, dr1 = _thin_qr_jvp(q, r[..., :, :m], dx[..., :, :m])
            dr2 = _mm(_H(dq), cols(x)[..., :, m:]) + _mm(_H(q), dx[..., :, m:])
            return [dq, jnp.concatenate([dr1, dr2], axis=-1)]
        if not full:
            return list(_thin_qr_jvp(q, r, dx))
        dq_mn, dr_nn = _thin_qr_jvp(q_mn, r[..., :n, :], dx)
        dq_nn, dq_pn = dq_mn[..., :n, :], dq_mn[..., n:, :]
        dq_mp = _mm(dq_mn, z_pn_h) - _mm(q_mn + _mm(q_mp, _H(z_pn_h)), _H(dq_pn - _mm(_H(z_pn_h), dq_nn)))
        zeros = jnp.zeros((*dr_nn.shape[:-2], m - n, n), dr_nn.dtype)
        return [jnp.concatenate([dq_mn, dq_mp], axis=-1), jnp.concatenate([dr_nn, zeros], axis=-2)]
    return fn


def _qr_jvp(xs, ts, **params):
    (x,), (tx,) = xs, ts
    q, r, *p = prim("qr").bind(x, **params)
    m, n = x.shape[-2:]
    if tx is None:
        return [q, r, *p], [None] * (2 + len(p))
    dq, dr = _qr_tangent_fn(x, q, r, p, m, n)(tx)
    return [q, r, *p], [dq, dr, *[None] * len(p)]


def _qr_vjp(cts, ans, x, **params):
    q, r, *p = ans
    m, n = x.shape[-2:]
    fn = _qr_tangent_fn(x, q, r, p, m, n)
    return tuple(_transpose_linear(fn, [jax.ShapeDtypeStruct(x.shape, x.dtype)], cts[:2]))


register("qr", vjp=_qr_vjp, jvp=_qr_jvp, jit=True)


# --- svd: A = U diag(s) V^H -------------------------------------------------------------------------------
def _svd_tangent_fn(a, s, u, vt, compute_uv):
    def fn(da):
        ut, v = _H(u), _H(vt)
        s_row = s[..., None, :]
        ds_mat = _mm(_mm(ut, da), v)
        ds = _diag(jnp.real(ds_mat))
        if not compute_uv:
            return [ds]
        k = s.shape[-1]
        eye = _eye(k, s.dtype, s.ndim + 1)
        f = 1 / ((s_row + _T(s_row)) * (s_row - _T(s_row)) + eye) - eye  # 1 / (s_j^2 - s_i^2)
        s_zero = (s == 0).astype(s.dtype)
        s_inv = _embed_diag(1 / (s + s_zero) - s_zero)
        dss, sds = s_row.astype(a.dtype) * ds_mat, _T(s_row).astype(a.dtype) * ds_mat
        du = _mm(u, f.astype(a.dtype) * (dss + _H(dss)) + 0.5 * (ds_mat - _H(ds_mat)) * s_inv.astype(a.dtype))
        dv = _mm(v, f.astype(a.dtype) * (sds + _H(sds)))
        m, n = a.shape[-2:]
        if m > n:
            dav = _mm(da, v)
            du = du + (dav - _mm(u, _mm(ut, dav))) / s_row.astype(a.dtype)
        if n > m:
            dahu = _mm(_H(da), u)
            dv = dv + (dahu - _mm(v, _mm(vt, dahu))) / s_row.astype(a.dtype)
        return [ds, du, _H(dv)]
    return fn


def _svd_thin(a, params):
    m, n = a.shape[-2:]
    if params["compute_uv"] and params["full_matrices"] and m != n:
        raise NotImplementedError("fungpt: derivatives of svd with full_matrices=True for a non-square matrix "
                                  "are not implemented (nor in JAX); use full_matrices=False.")
    return prim("svd").bind(a, **{**params, "full_matrices": False, "compute_uv": True})


def _svd_jvp(xs, ts, **params):
    (a,), (ta,) = xs, ts
    outs = prim("svd").bind(a, **params)
    if ta is None:
        return outs, [None] * len(outs)
    s, u, vt = _svd_thin(a, params)
    return outs, _svd_tangent_fn(a, s, u, vt, params["compute_uv"])(ta)


def _svd_vjp(cts, ans, a, **params):
    s, u, vt = _svd_thin(a, params)
    fn = _svd_tangent_fn(a, s, u, vt, params["compute_uv"])
    return tuple(_transpose_linear(fn, [jax.ShapeDtypeStruct(a.shape, a.dtype)], cts))


register("svd", vjp=_svd_vjp, jvp=_svd_jvp, jit=True)


# --- eig (general matrices): A V = V diag(w);  dw = diag(V^-1 dA V) ----------------------------------------
# Eigenvector derivatives only when the eig call opts in (lax.linalg.eig(enable_eigvec_derivs=True)), as in
# JAX: LAPACK normalises each v_j to unit 2-norm with a real largest-magnitude entry, and the derivative
# follows that choice (Giles 2008, sec. 3.1; JAX issue 2748).
def _eig_vec_jvp(w, v, da):
    n = w.shape[-1]
    eye = _eye(n, w.dtype, w.ndim + 1)
    f = 1 / (eye + w[..., None, :] - w[..., :, None]) - eye  # 1 / (w_j - w_i) off the diagonal
    p = _mm(jnp.linalg.solve(v, da), v)
    u = _mm(v, f * p)
    # dv_j = u_j + c_j v_j; the normalisation fixes c_j = -Re(v_j^H u_j) - i Im(u_kj) / v_kj, k = argmax_i |v_ij|
    k = jnp.argmax(jnp.abs(v), axis=-2)
    mask = (jnp.arange(n)[:, None] == k[..., None, :]).astype(v.dtype)
    c = lax.complex(-jnp.sum(jnp.conj(v) * u, axis=-2).real,
                    -jnp.sum(mask * u, axis=-2).imag / jnp.sum(mask * v, axis=-2).real)
    return _diag(p), u + v * c[..., None, :]


def _eig_tangent_fn(a, params):
    left, right = params.get("compute_left_eigenvectors"), params.get("compute_right_eigenvectors")
    if (left or right) and not params.get("enable_eigvec_derivs"):
        raise NotImplementedError(
            "Derivatives of non-symmetric eigenvectors are only valid under assumptions on the input that JAX "
            "cannot check (see the enable_eigvec_derivs argument to jax.lax.linalg.eig). Pass "
            "enable_eigvec_derivs=True to jax.lax.linalg.eig to opt in (fungpt follows JAX here).")
    outs = prim("eig").bind(a, **{**params, "compute_right_eigenvectors": True})
    w, vr = outs[0], outs[-1]

    def fn(da):
        da = da.astype(vr.dtype)
        if not (left or right):
            return [jnp.sum(jnp.linalg.solve(vr, da) * _T(vr), axis=-1)]
        dw, dvr = _eig_vec_jvp(w, vr, da)
        return [dw, *([_eig_vec_jvp(jnp.conj(w), outs[1], _H(da))[1]] if left else []), *([dvr] if right else [])]
    return fn


def _eig_jvp(xs, ts, **params):
    (a,), (ta,) = xs, ts
    outs = prim("eig").bind(a, **params)
    if ta is None:
        return outs, [None] * len(outs)
    return outs, _eig_tangent_fn(a, params)(ta)


def _eig_vjp(cts, ans, a, **params):
    fn = _eig_tangent_fn(a, params)
    return tuple(_transpose_linear(fn, [jax.ShapeDtypeStruct(a.shape, a.dtype)], cts))


register("eig", vjp=_eig_vjp, jvp=_eig_jvp, jit=True)
