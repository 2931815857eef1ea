"""Chapter 6 — numerical methods: floating point, summation, numerical differentiation, gradient
checking, the LU / QR / Cholesky factorizations, and efficient matrix products.

Everything is a pure function of arrays, jittable and vmappable, in float32 or float64. The
factorizations are owned by `fungpt.linalg` (chapter 2, `fungpt.linalg.factor`) and re-exported
here under the same names; finite differences are owned by `fungpt.calculus.derivative`.
"""
from __future__ import annotations

import dataclasses
import functools
import itertools
import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.flatten_util import ravel_pytree

from fungpt._arrays import as_float, as_matrix, as_vector, checked_jit
from fungpt.calculus import derivative

# The factorizations are owned by chapter 2; chapter 6 re-exports them under its own names.
from fungpt.linalg.factor import LU, cholesky, householder, lu, lu_factor, qr_givens, qr_householder, solve_triangular

__all__ = [
    "CSR", "LU", "FloatInfo", "GradCheck", "IllConditionedDot", "blocked_matmul", "cholesky", "contraction_path",
    "csr_from_dense", "csr_matvec", "einsum", "finite_difference", "float_info", "gradient_check", "householder",
    "ill_conditioned_dot", "kahan_sum", "lu", "lu_factor", "machine_epsilon", "matmul_flops", "matrix_chain_order",
    "multi_dot", "naive_sum", "nextafter", "one_minus_cos_over_x2", "optimal_step", "pairwise_sum", "qr_givens",
    "qr_householder", "relative_error", "solve_triangular", "ulp",
]



# --------------------------------------------------------------------------------------------
# Floating point
# --------------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class FloatInfo:
    """Layout and range of a binary floating-point format (sign, `exponent_bits`, `mantissa_bits`).

    eps = 2^-p (p = mantissa_bits), tiny = 2^(2 - 2^(e-1)) (smallest normal),
    max = (2 - eps) * 2^(2^(e-1) - 1), smallest_subnormal = tiny * eps.
    """

    dtype: str
    bits: int
    exponent_bits: int
    mantissa_bits: int
    eps: float
    tiny: float
    max: float
    smallest_subnormal: float


def machine_epsilon(dtype):
    """Machine epsilon of `dtype`, found as numerical analysts do: halve e while 1 + e/2 != 1.

    Returns the gap between 1 and the next larger number, 2^-p, as a scalar of `dtype`.
    """
    dtype = jnp.dtype(dtype)
    if not jnp.issubdtype(dtype, jnp.floating):
        raise TypeError(f"machine_epsilon needs a floating dtype, got {dtype}")
    one = jnp.ones((), dtype)

    def cond(e):
        return one + e / 2 != one

    return lax.while_loop(cond, lambda e: e / 2, one)


def _uint_for(dtype):
    return {2: jnp.uint16, 4: jnp.uint32, 8: jnp.uint64}[jnp.dtype(dtype).itemsize]


def _from_bits(pattern, dtype):
    return float(lax.bitcast_convert_type(jnp.asarray(pattern, _uint_for(dtype)), dtype))


def float_info(dtype) -> FloatInfo:
    """Range and precision of a floating dtype (float16, bfloat16, float32, float64), derived from
    its bit layout: p = -log2(machine_epsilon), e = bits - 1 - p. Compare `jnp.finfo`."""
    dtype = jnp.dtype(dtype)
    if not jnp.issubdtype(dtype, jnp.floating) or dtype.itemsize not in (2, 4, 8):
        raise TypeError(f"float_info needs float16/bfloat16/float32/float64, got {dtype}")
    if dtype.itemsize == 8 and not jax.config.jax_enable_x64:
        raise ValueError("float64 needs jax_enable_x64 (jax.config.update('jax_enable_x64', True))")
    bits = 8 * dtype.itemsize
    p = round(-math.log2(float(machine_epsilon(dtype))))
    e = bits - 1 - p
    exp_all_ones_but_last = ((1 << e) - 2) << p           # biggest finite exponent
    return FloatInfo(
        dtype=dtype.name, bits=bits, exponent_bits=e, mantissa_bits=p, eps=2.0 ** -p,
        tiny=_from_bits(1 << p, dtype),
        max=_from_bits(exp_all_ones_but_last | ((1 << p) - 1), dtype),
        smallest_subnormal=_from_bits(1, dtype),
    )


def _int_for(dtype):
    return {2: jnp.int16, 4: jnp.int32, 8: jnp.int64}[jnp.dtype(dtype).itemsize]


def _order_key(x):
    # Integers ordered like the floats: ±0 -> 0, each step = one representable number. Compared as
    # integers, because XLA on CPU treats subnormals as 0 in float comparisons (DAZ).
    utype = _uint_for(x.dtype)
    bits = lax.bitcast_convert_type(x, utype)
    sign = jnp.asarray(1 << (8 * x.dtype.itemsize - 1), utype)
    mag = (bits & ~sign).astype(_int_for(x.dtype))
    return jnp.where(bits >= sign, -mag, mag), bits & sign


@checked_jit()
def nextafter(x, y):
    """The floating-point neighbour of `x` in the direction of `y` (elementwise, like np.nextafter).

    Floats of one sign are ordered like their bit patterns, so stepping is integer +-1 on the key
    k(x) = ±(bits without the sign). Bit-exact also for subnormals, which XLA on CPU flushes to
    zero in arithmetic and comparisons (so do not expect `nextafter(0., 1.) > 0` to hold in JAX).
    """
    x, y = as_float(x, "x"), as_float(y, "y")
    if x.dtype != y.dtype or not jnp.issubdtype(x.dtype, jnp.floating):
        raise TypeError(f"nextafter needs x and y of one real floating dtype, got {x.dtype}, {y.dtype}")
    x, y = jnp.broadcast_arrays(x, y)
    (kx, sign_x), (ky, _) = _order_key(x), _order_key(y)
    k = jnp.where(ky > kx, kx + 1, kx - 1)
    utype = _uint_for(x.dtype)
    mag = jnp.abs(k).astype(utype)
    sign_bit = jnp.asarray(1 << (8 * x.dtype.itemsize - 1), utype)
    bits = jnp.where(k > 0, mag, jnp.where(k < 0, sign_bit | mag, sign_x))   # 0 keeps x's sign
    out = lax.bitcast_convert_type(bits, x.dtype)
    out = jnp.where(kx == ky, y, out)
    return jnp.where(jnp.isnan(x) | jnp.isnan(y), jnp.nan, out)


@checked_jit()
def ulp(x):
    """Unit in the last place: the gap from |x| to the next larger float, as np.spacing(|x|).

    Built from the bits of |x| (biased exponent E, p mantissa bits): E > p gives the normal number
    with exponent field E - p, smaller E the subnormal 2^(E-1) * smallest_subnormal (so ulp(0) is
    the smallest subnormal); the largest finite float gives inf, inf and nan give nan. Not
    nextafter(|x|, inf) - |x|: XLA on CPU flushes that subnormal difference to 0."""
    ax = jnp.abs(as_float(x))
    if not jnp.issubdtype(ax.dtype, jnp.floating):
        raise TypeError(f"ulp needs a real floating array, got {ax.dtype}")
    utype = _uint_for(ax.dtype)
    p = jnp.finfo(ax.dtype).nmant
    e = lax.bitcast_convert_type(ax, utype) >> p                       # biased exponent field
    one = jnp.ones((), utype)
    normal = (jnp.where(e > p, e, p + 1) - p) << p
    sub = one << (jnp.where(e >= 1, e, one) - 1)
    out = lax.bitcast_convert_type(jnp.where(e > p, normal, sub), ax.dtype)
    out = jnp.where(ax == jnp.finfo(ax.dtype).max, jnp.inf, out)     # the next float up is inf
    return jnp.where(jnp.isfinite(ax), out, jnp.nan)


@checked_jit()
def relative_error(approx, exact):
    """|approx - exact| / |exact| elementwise (absolute error where exact == 0)."""
    approx, exact = as_float(approx, "approx"), as_float(exact, "exact")
    err = jnp.abs(approx - exact)
    scale = jnp.abs(exact)
    return jnp.where(scale == 0, err, err / jnp.where(scale == 0, 1, scale))


@checked_jit('stable')
def one_minus_cos_over_x2(x, stable=True):
    """(1 - cos x) / x^2, which tends to 1/2 as x -> 0. The naive form loses every digit to
    cancellation for |x| < sqrt(eps) (and is NaN at 0); the stable form uses 1 - cos x = 2 sin^2(x/2),
    is 1/2 at x = 0 (the limit, with derivative 0), and is accurate to a few ulps for every finite x."""
    x = as_float(x)
    if stable:
        # Below sqrt(eps) the series 1/2 - x^2/24 + ... is 1/2 to the last bit; taking it there also
        # keeps x/2 from flushing to zero at the smallest normals (XLA on CPU flushes subnormals).
        small = jnp.abs(x) < math.sqrt(float(jnp.finfo(x.dtype).eps))
        xs = jnp.where(small, 1, x)
        s = jnp.where(small, 0.5, jnp.sin(xs / 2) / xs)
        return 2 * s * s
    return (1 - jnp.cos(x)) / (x * x)


# --------------------------------------------------------------------------------------------
# Summation
# --------------------------------------------------------------------------------------------

@checked_jit()
def naive_sum(x):
    """s = (((x0 + x1) + x2) + ...): one accumulator, left to right. Error bound (n-1) eps sum|x|."""
    x = as_vector(x)
    if x.shape[0] == 0:
        return jnp.zeros((), x.dtype)  # the empty sum (x[i] cannot even be traced on a 0-vector)
    return lax.fori_loop(0, x.shape[0], lambda i, s: s + x[i], jnp.zeros((), x.dtype))


@checked_jit()
def pairwise_sum(x):
    """Sum by a balanced binary tree (pad to a power of two, add halves): error O(log2 n * eps)."""
    x = as_vector(x)
    n = max(1, 1 << (x.shape[0] - 1).bit_length()) if x.shape[0] else 1
    x = jnp.concatenate([x, jnp.zeros(n - x.shape[0], x.dtype)])
    while x.shape[0] > 1:
        half = x.shape[0] // 2
        x = x[:half] + x[half:]
    return x[0]


@checked_jit()
def kahan_sum(x):
    """Kahan's compensated sum: c carries the low-order bits lost by each addition,
    y = x_i - c; t = s + y; c = (t - s) - y; s = t. Error bound 2 eps sum|x| (independent of n)."""
    x = as_vector(x)

    def step(carry, xi):
        s, c = carry
        y = xi - c
        t = s + y
        return (t, (t - s) - y), None

    zero = jnp.zeros((), x.dtype)
    (s, _), _ = lax.scan(step, (zero, zero), x)
    return s


class IllConditionedDot(NamedTuple):
    x: np.ndarray
    y: np.ndarray
    exact: float  # x · y computed exactly (rational arithmetic), then rounded to float64
    cond: float  # 2 Σ|x_i y_i| / |x · y|


def ill_conditioned_dot(n: int, log2_cond: float, rng, dtype=np.float64) -> IllConditionedDot:
    """Test vectors x, y (n,) of `dtype` whose dot product has condition number 2Σ|x_i y_i| / |x·y| ≈ 2^log2_cond
    (Ogita, Rump & Oishi 2005, "Accurate sum and dot product", Algorithm 6.1 GenDot).

    The first half of the terms have random exponents up to log2_cond / 2; each later y_i is chosen so that the
    exact running sum cancels down to a random number of decreasing size, so the total is tiny compared with its
    terms.  Exact sums use Python's `fractions.Fraction` (floats are dyadic rationals: no rounding anywhere).
    Host-side numpy (not jittable); rng: a numpy Generator or a seed.  Used by the dot-product tests and by
    experiments/ch02_linalg.py.
    """
    from fractions import Fraction

    rng, dt = np.random.default_rng(rng), np.dtype(dtype)
    if n < 2:
        raise ValueError(f"ill_conditioned_dot: need n >= 2, got {n}")
    n2, b = n // 2, log2_cond / 2
    e = np.round(rng.uniform(0, 1, n2) * b).astype(int)
    e[0], e[-1] = round(b) + 1, 0
    x, y = np.zeros(n, dt), np.zeros(n, dt)
    x[:n2] = (2 * rng.uniform(size=n2) - 1) * 2.0**e
    y[:n2] = (2 * rng.uniform(size=n2) - 1) * 2.0**e
    exact = sum((Fraction(float(p)) * Fraction(float(q)) for p, q in zip(x[:n2], y[:n2], strict=True)), Fraction(0))
    for i, ei in enumerate(np.round(np.linspace(b, 0, n - n2)).astype(int), start=n2):
        x[i] = (2 * rng.uniform() - 1) * 2.0**ei
        y[i] = ((2 * rng.uniform() - 1) * 2.0**ei - float(exact)) / float(x[i])
        exact += Fraction(float(x[i])) * Fraction(float(y[i]))  # the stored (rounded) values, exactly
    p = rng.permutation(n)
    absum = sum((abs(Fraction(float(a)) * Fraction(float(c))) for a, c in zip(x, y, strict=True)), Fraction(0))
    return IllConditionedDot(x[p], y[p], float(exact), float(2 * absum / abs(exact)) if exact else float("inf"))


# --------------------------------------------------------------------------------------------
# Numerical differentiation and gradient checking
# --------------------------------------------------------------------------------------------

_SCHEMES = {"forward": 1, "backward": 1, "central": 2}


def finite_difference(f, x, h, scheme="central"):
    """Derivative of a scalar function f at x by differences:
    forward (f(x+h) - f(x))/h, error O(h) + O(eps/h); central (f(x+h) - f(x-h))/(2h),
    error O(h^2) + O(eps/h). `x` and `h` broadcast (vectorised over many x or many h) for an
    elementwise f. This is `fungpt.calculus.derivative(f, x, method=scheme, h=h)` (chapter 3 owns
    finite differences; h is rounded so that x ± h is representable)."""
    if scheme not in _SCHEMES:
        raise ValueError(f"scheme must be one of {sorted(_SCHEMES)}, got {scheme!r}")
    return derivative(f, as_float(x, "x"), method=scheme, h=h)


def optimal_step(dtype, scheme="central"):
    """Step that balances truncation and rounding error: h* ~ eps^(1/2) for one-sided
    differences, eps^(1/3) for central ones (for |x| ~ 1 and f, f'' ~ 1)."""
    if scheme not in _SCHEMES:
        raise ValueError(f"scheme must be one of {sorted(_SCHEMES)}, got {scheme!r}")
    eps = float(jnp.finfo(dtype).eps)
    return eps ** (1 / (_SCHEMES[scheme] + 1))


class GradCheck(NamedTuple):
    rel_error: jax.Array  # ||g_ad - g_fd|| / (||g_ad|| + ||g_fd||)
    analytic: jax.Array   # flat autodiff gradient
    numeric: jax.Array    # flat central-difference gradient


def gradient_check(f, params, grad_fn=None, h=None):
    """Compare an autodiff gradient with central differences, coordinate by coordinate.

    g_fd[i] = (f(x + h e_i) - f(x - h e_i)) / (2h) over the flattened pytree `params`;
    rel_error = ||g - g_fd||_2 / max(||g||_2 + ||g_fd||_2, tiny). In float64 a correct gradient
    gives ~1e-9 or less; a wrong rule gives ~1e-3 or more. `grad_fn` defaults to `fungpt.grad`.
    Cost: 2n evaluations of f (vmapped).
    """
    if grad_fn is None:
        from fungpt.autodiff import grad as grad_fn
    flat, unravel = ravel_pytree(params)
    if not jnp.issubdtype(flat.dtype, jnp.floating):
        raise TypeError(f"gradient_check needs floating parameters, got {flat.dtype}")
    h = optimal_step(flat.dtype) if h is None else h
    analytic, _ = ravel_pytree(jax.jit(grad_fn(f))(params))
    steps = h * jnp.maximum(1, jnp.abs(flat))

    @jax.jit
    def central(flat, steps):
        basis = jnp.diag(steps)
        fv = jax.vmap(lambda v: f(unravel(v)))
        return (fv(flat[None, :] + basis) - fv(flat[None, :] - basis)) / (2 * steps)

    numeric = central(flat, steps)
    norm = lambda v: jnp.sqrt(jnp.sum(v * v))
    diff = norm(analytic - numeric)
    scale = norm(analytic) + norm(numeric)
    rel = diff / jnp.maximum(scale, jnp.finfo(flat.dtype).tiny)
    return GradCheck(rel, analytic, numeric)


# --------------------------------------------------------------------------------------------
# Efficient matrix operations
# --------------------------------------------------------------------------------------------

def matmul_flops(m, k, n):
    """Floating-point operations of an (m, k) @ (k, n) product: m n k multiplies + m n k adds."""
    return 2 * m * k * n


@checked_jit('block')
def blocked_matmul(a, b, block=64):
    """C = A B computed tile by tile: C_IJ = sum_K A_IK B_KJ over (block x block) tiles, the
    cache-blocking of every fast GEMM. Inputs are zero-padded to multiples of `block`."""
    a, b = as_matrix(a, "a"), as_matrix(b, "b")
    if a.shape[1] != b.shape[0] or a.dtype != b.dtype:
        raise ValueError(f"cannot multiply {a.shape} {a.dtype} by {b.shape} {b.dtype}")
    if not isinstance(block, int) or block < 1:
        raise ValueError(f"block must be a positive int, got {block!r}")
    m, n = a.shape[0], b.shape[1]
    pad = lambda x, r, c: jnp.pad(x, ((0, -x.shape[0] % r), (0, -x.shape[1] % c)))
    ap, bp = pad(a, block, block), pad(b, block, block)
    mb, kb, nb = ap.shape[0] // block, ap.shape[1] // block, bp.shape[1] // block
    at = ap.reshape(mb, block, kb, block).transpose(2, 0, 1, 3)    # (K, I, bm, bk)
    bt = bp.reshape(kb, block, nb, block).transpose(0, 2, 1, 3)    # (K, J, bk, bn)

    def step(c, tiles):
        ak, bk = tiles
        return c + ak[:, None] @ bk[None, :], None                 # (I, J, bm, bn)

    c0 = jnp.zeros((mb, nb, block, block), a.dtype)
    c, _ = lax.scan(step, c0, (at, bt))
    return c.transpose(0, 2, 1, 3).reshape(mb * block, nb * block)[:m, :n]


@functools.partial(jax.tree_util.register_dataclass, data_fields=["data", "indices", "indptr"],
                   meta_fields=["shape"])
@dataclasses.dataclass(frozen=True)
class CSR:
    """Compressed sparse rows, a pytree whose `shape` is static: row i holds data[indptr[i]:indptr[i+1]]
    at columns indices[indptr[i]:indptr[i+1]]."""
    data: jax.Array     # (nnz,) the nonzero values, row by row
    indices: jax.Array  # (nnz,) int32 column of each value
    indptr: jax.Array   # (m + 1,) int32 start of each row in data (indptr[m] = nnz)
    shape: tuple        # (m, n)


def csr_from_dense(a):
    """The CSR form of a concrete matrix (m, n): the nonzeros in row-major order (as
    `scipy.sparse.csr_matrix`). Eager: nnz decides the shapes."""
    a = np.asarray(as_matrix(a, "a"))
    rows, cols = np.nonzero(a)
    indptr = np.concatenate([[0], np.cumsum(np.bincount(rows, minlength=a.shape[0]))])
    return CSR(jnp.asarray(a[rows, cols]), jnp.asarray(cols, jnp.int32), jnp.asarray(indptr, jnp.int32), tuple(a.shape))


def csr_matvec(m, x):
    """y = A x for A in CSR form: y_i = sum_{k in row i} data_k x_{indices_k}, as one gather, one
    multiply and one segment sum: 2 nnz flops and ~nnz (12 bytes) of memory traffic instead of the
    dense 2 m n flops. Jits (the CSR arrays are traced, `shape` static), vmaps over x, differentiates."""
    x = as_vector(x, "x")
    if x.shape[0] != m.shape[1]:
        raise ValueError(f"x must have shape ({m.shape[1]},), got {x.shape}")
    row_of = jnp.searchsorted(m.indptr, jnp.arange(m.data.shape[0], dtype=m.indptr.dtype), side="right") - 1
    return jax.ops.segment_sum(m.data * x[m.indices], row_of, num_segments=m.shape[0])


def matrix_chain_order(dims):
    """Cheapest parenthesisation of A_1 A_2 ... A_n, A_i of shape (dims[i-1], dims[i]), by the
    classic dynamic programme cost[i, j] = min_k cost[i, k] + cost[k+1, j] + 2 d_i d_{k+1} d_{j+1}.
    Returns (flops, tree) where tree is an int (a matrix index) or a pair of trees. O(n^3)."""
    dims = [int(d) for d in dims]
    if len(dims) < 2 or min(dims) < 1:
        raise ValueError(f"dims must list >= 2 positive sizes, got {dims}")
    n = len(dims) - 1

    @functools.cache
    def best(i, j):
        if i == j:
            return 0, i
        options = []
        for k in range(i, j):
            (cl, tl), (cr, tr) = best(i, k), best(k + 1, j)
            options.append((cl + cr + matmul_flops(dims[i], dims[k + 1], dims[j + 1]), (tl, tr)))
        return min(options, key=lambda o: o[0])

    return best(0, n - 1)


def multi_dot(*mats):
    """A_1 A_2 ... A_n multiplied in the order `matrix_chain_order` finds cheapest."""
    if len(mats) < 2:
        raise ValueError(f"multi_dot needs at least two matrices, got {len(mats)}")
    mats = [as_matrix(m, f"mats[{i}]") for i, m in enumerate(mats)]
    for x, y in itertools.pairwise(mats):
        if x.shape[1] != y.shape[0]:
            raise ValueError(f"shapes {x.shape} and {y.shape} do not chain")
    _, tree = matrix_chain_order([mats[0].shape[0]] + [m.shape[1] for m in mats])

    def run(t):
        return mats[t] if isinstance(t, int) else run(t[0]) @ run(t[1])

    return run(tree)


def _parse_einsum(subscripts, n):
    if "->" not in subscripts or "." in subscripts:
        raise ValueError(f"subscripts need an explicit '->' output and no ellipsis, got {subscripts!r}")
    lhs, out = subscripts.replace(" ", "").split("->")
    ins = lhs.split(",")
    if len(ins) != n:
        raise ValueError(f"subscripts name {len(ins)} operands, got {n}")
    return ins, out


def contraction_path(subscripts, *shapes):
    """Optimal pairwise contraction order of an einsum, by dynamic programming over subsets.

    Contracting two intermediates costs 2 * prod(sizes of every index either one carries); an
    intermediate keeps the indices still needed by the output or by operands outside it.
    Returns (flops, tree) with tree an operand index or a pair of trees. O(3^n) for n operands.
    """
    ins, out = _parse_einsum(subscripts, len(shapes))
    size = {}
    for idx, shape in zip(ins, shapes, strict=True):
        if len(idx) != len(shape):
            raise ValueError(f"operand {idx!r} has shape {shape}")
        for c, d in zip(idx, shape, strict=True):
            if size.setdefault(c, d) != d:
                raise ValueError(f"index {c!r} has sizes {size[c]} and {d}")
    n = len(ins)
    full = (1 << n) - 1

    def indices(mask):
        inside = set().union(*(ins[i] for i in range(n) if mask >> i & 1))
        outside = set(out).union(*(ins[i] for i in range(n) if not mask >> i & 1))
        return frozenset(inside & outside)

    @functools.cache
    def best(mask):
        if mask & (mask - 1) == 0:
            return 0, mask.bit_length() - 1
        options = []
        sub = (mask - 1) & mask
        while sub:
            rest = mask ^ sub
            if sub < rest:  # each split once
                (c1, t1), (c2, t2) = best(sub), best(rest)
                every = indices(sub) | indices(rest)
                cost = 2 * math.prod(size[c] for c in every)
                options.append((c1 + c2 + cost, (t1, t2)))
            sub = (sub - 1) & mask
        return min(options, key=lambda o: o[0])

    return best(full)


def einsum(subscripts, *operands):
    """jnp.einsum evaluated pairwise in the order `contraction_path` finds cheapest."""
    ins, out = _parse_einsum(subscripts, len(operands))
    operands = [jnp.asarray(o) for o in operands]
    _, tree = contraction_path(subscripts, *(o.shape for o in operands))
    n = len(ins)

    def leaves(t):
        return [t] if isinstance(t, int) else leaves(t[0]) + leaves(t[1])

    def run(t):
        if isinstance(t, int):
            return operands[t], ins[t]
        (x, ix), (y, iy) = run(t[0]), run(t[1])
        inside = set(leaves(t))
        needed = set(out).union(*(ins[i] for i in range(n) if i not in inside))
        keep = "".join(c for c in dict.fromkeys(ix + iy) if c in needed)
        return jnp.einsum(f"{ix},{iy}->{keep}", x, y), keep

    res, idx = run(tree)
    return jnp.einsum(f"{idx}->{out}", res)

