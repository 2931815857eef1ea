"""Chapter 1 — basic math, as a numerical analyst writes it: exponents and logarithms that do not
overflow, log-space arithmetic, root finding, polynomials, the quadratic formula without
cancellation, functions and their inverses, inequalities and absolute values.

Pure functions of arrays; they jit and vmap, and the smooth ones differentiate with `fungpt.grad`
and `jax.grad` alike (branches are written with the "double where" so that no NaN leaks into a
gradient). Polynomials are coefficient vectors, highest degree first (as `numpy.polyval`).
"""
from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from fungpt._arrays import as_float, as_vector, checked_jit

__all__ = [
    "RootResult", "bisect", "companion", "compose", "gcd", "graph", "invert", "ipow", "is_monotone", "lcm",
    "log1mexp", "log_add_exp", "log_base", "log_sigmoid", "logsumexp", "newton", "polyder",
    "polydiv", "polyfactor", "polymul", "polyroots", "polyval", "power_mean", "quadratic_roots",
    "secant", "sigmoid", "softplus", "solve_abs_inequality",
]


# --------------------------------------------------------------------------------------------
# Arithmetic, exponents, logarithms
# --------------------------------------------------------------------------------------------

@checked_jit()
def ipow(x, n):
    """x^n for an integer n (array or int, may be negative) by repeated squaring:
    x^n = prod over the set bits b of n of x^(2^b). ~2 log2|n| multiplies instead of |n| - 1;
    the rounding error bound stays ~|n| eps (each squaring doubles a relative error)."""
    x = as_float(x)
    n = jnp.asarray(n)
    if not jnp.issubdtype(n.dtype, jnp.integer):
        raise TypeError(f"ipow needs an integer exponent, got dtype {n.dtype}")
    x, n = jnp.broadcast_arrays(x, n)
    m = jnp.abs(n)

    def step(_, carry):
        result, base, m = carry
        result = jnp.where(m & 1, result * base, result)
        # Square only while higher bits remain, so base never overflows needlessly.
        return result, jnp.where(m > 1, base * base, base), m >> 1

    r, _, _ = lax.fori_loop(0, jnp.iinfo(n.dtype).bits - 1, step, (jnp.ones_like(x), x, m))
    neg = n < 0
    return jnp.where(neg, 1 / jnp.where(neg, r, 1), r)


@checked_jit()
def log_base(x, base):
    """log_b x = ln x / ln b."""
    x = as_float(x)
    return jnp.log(x) / jnp.log(jnp.asarray(base, x.dtype))


@checked_jit()
def gcd(a, b):
    """Greatest common divisor by Euclid's algorithm, gcd(a, b) = gcd(b, a mod b), elementwise on
    integer arrays; gcd(0, 0) = 0. At most ~1.44 log2(min) + 2 steps (Lamé)."""
    a, b = jnp.asarray(a), jnp.asarray(b)
    if not (jnp.issubdtype(a.dtype, jnp.integer) and a.dtype == b.dtype):
        raise TypeError(f"gcd needs integer arrays of one dtype, got {a.dtype} and {b.dtype}")
    a, b = jnp.broadcast_arrays(jnp.abs(a), jnp.abs(b))

    def body(ab):
        a, b = ab
        nz = b != 0
        return jnp.where(nz, b, a), jnp.where(nz, a % jnp.where(nz, b, 1), 0)

    return lax.while_loop(lambda ab: jnp.any(ab[1] != 0), body, (a, b))[0]


@checked_jit()
def lcm(a, b):
    """Least common multiple |a b| / gcd(a, b) (0 when either is 0)."""
    g = gcd(a, b)
    a, b = jnp.asarray(a), jnp.asarray(b)
    return jnp.where(g == 0, 0, jnp.abs(a // jnp.where(g == 0, 1, g) * b))


# --------------------------------------------------------------------------------------------
# Stable log-space arithmetic
# --------------------------------------------------------------------------------------------

@checked_jit('axis', 'keepdims')
def logsumexp(x, axis=None, keepdims=False):
    """log sum_i exp(x_i) = m + log sum_i exp(x_i - m), m = max x_i: no overflow, and all -inf
    gives -inf, as does an empty reduction (scipy's value). The gradient is softmax(x)."""
    x = as_float(x)
    m = jnp.max(x, axis=axis, keepdims=True, initial=-jnp.inf)
    # m is a shift that cancels exactly; it needs no gradient (and must be finite to subtract).
    m = lax.stop_gradient(jnp.where(jnp.isfinite(m), m, 0))
    out = jnp.log(jnp.sum(jnp.exp(x - m), axis=axis, keepdims=True)) + m
    return out if keepdims else jnp.squeeze(out, axis=axis)


@checked_jit()
def log_add_exp(a, b):
    """log(e^a + e^b) = max(a, b) + log1p(e^-|a - b|), exact for a = b = ±inf."""
    a, b = as_float(a, "a"), as_float(b, "b")
    d = jnp.where(a == b, 0, -jnp.abs(a - b))
    return jnp.maximum(a, b) + jnp.log1p(jnp.exp(d))


def _neg_abs(x):
    # -|x| with the gradient of the branch taken at 0 (+1), so softplus'(0) = 1/2 exactly.
    pos = x > 0
    return pos, jnp.where(pos, -x, x)


@checked_jit()
def softplus(x):
    """log(1 + e^x) = max(x, 0) + log1p(e^-|x|): never overflows, exact to the ulp for large |x|."""
    x = as_float(x)
    pos, xs = _neg_abs(x)
    return jnp.where(pos, x, 0) + jnp.log1p(jnp.exp(xs))


@checked_jit()
def sigmoid(x):
    """1 / (1 + e^-x), evaluated through e^-|x| so neither branch overflows."""
    x = as_float(x)
    pos, xs = _neg_abs(x)
    e = jnp.exp(xs)
    return jnp.where(pos, 1 / (1 + e), e / (1 + e))


@checked_jit()
def log_sigmoid(x):
    """log sigmoid(x) = -softplus(-x); accurate where 1/(1 + e^-x) rounds to 1 or 0."""
    return -softplus(-as_float(x))


_LN2 = math.log(2.0)


@checked_jit()
def log1mexp(x):
    """log(1 - e^x) for x <= 0 (Mächler 2012): log(-expm1(x)) for x > -ln 2, log1p(-e^x) below.
    Either form alone loses all digits at one end. x > 0 gives NaN; x = 0 gives -inf."""
    x = as_float(x)
    near = x > -_LN2
    x1, x2 = jnp.where(near, x, -1), jnp.where(near, -1, x)
    return jnp.where(near, jnp.log(-jnp.expm1(x1)), jnp.log1p(-jnp.exp(x2)))


# --------------------------------------------------------------------------------------------
# Solving equations: root finding
# --------------------------------------------------------------------------------------------

class RootResult(NamedTuple):
    root: jax.Array        # the approximate root (NaN when the method could not start)
    converged: jax.Array   # bool: the stopping test was met within maxiter
    iterations: jax.Array  # int: steps taken


def _xtol(dtype, xtol):
    return 4 * float(jnp.finfo(dtype).eps) if xtol is None else xtol


def bisect(f, lo, hi, xtol=None, maxiter=200):
    """Root of a continuous f on [lo, hi] with f(lo) f(hi) <= 0, by halving the bracket:
    |error| <= (hi - lo) / 2^k. Stops when hi - lo <= xtol (1 + |mid|) or f(mid) = 0.
    Not bracketed: root NaN, converged False. Jittable (`lax.while_loop`)."""
    lo, hi = as_float(lo, "lo"), as_float(hi, "hi")
    lo, hi = jnp.broadcast_arrays(lo, hi)
    if lo.shape:
        raise ValueError(f"bisect takes scalar lo and hi (vmap for many), got shape {lo.shape}")
    tol = _xtol(lo.dtype, xtol)
    flo, fhi = f(lo), f(hi)
    bracketed = jnp.sign(flo) * jnp.sign(fhi) <= 0

    def done(c):
        lo, hi, _, _, fx, _ = c
        return (hi - lo <= tol * (1 + jnp.abs((lo + hi) / 2))) | (fx == 0)

    def cond(c):
        return (c[5] < maxiter) & ~done(c) & bracketed

    def body(c):
        lo, hi, flo, _, _, it = c
        mid = (lo + hi) / 2
        fm = f(mid)
        left = jnp.sign(fm) * jnp.sign(flo) <= 0
        lo, hi, flo = jnp.where(left, lo, mid), jnp.where(left, mid, hi), jnp.where(left, flo, fm)
        return lo, hi, flo, mid, fm, it + 1

    # (x, f(x)): an exact root found so far (an end point, or a midpoint with f = 0).
    x = jnp.where(flo == 0, lo, jnp.where(fhi == 0, hi, (lo + hi) / 2))
    fx = jnp.where((flo == 0) | (fhi == 0), 0, flo)
    c = lax.while_loop(cond, body, (lo, hi, flo, x, fx, jnp.zeros((), jnp.int32)))
    lo, hi, _, x, fx, it = c
    root = jnp.where(fx == 0, x, (lo + hi) / 2)
    return RootResult(jnp.where(bracketed, root, jnp.nan), done(c) & bracketed, it)


def newton(f, x0, fprime=None, xtol=None, maxiter=50):
    """Newton's method x <- x - f(x) / f'(x): quadratic convergence near a simple root.
    f' defaults to `fungpt.grad(f)`. Stops when |step| <= xtol (1 + |x|); a zero or non-finite
    derivative stops it unconverged (root NaN, converged False). Jittable."""
    if fprime is None:
        from fungpt.autodiff import grad
        fprime = grad(f)
    x0 = as_float(x0, "x0")
    tol = _xtol(x0.dtype, xtol)

    def cond(c):
        x, step, it = c
        going = (jnp.abs(step) > tol * (1 + jnp.abs(x))) & jnp.isfinite(step)
        return (it == 0) | ((it < maxiter) & going)

    def body(c):
        x, _, it = c
        step = f(x) / fprime(x)
        return x - step, step, it + 1

    x, step, it = lax.while_loop(cond, body, (x0, jnp.zeros_like(x0), jnp.zeros((), jnp.int32)))
    finite = jnp.isfinite(step) & jnp.isfinite(x)
    # |inf| <= tol (1 + |inf|) holds, so a zero derivative would pass the step test: check finiteness.
    ok = finite & (jnp.abs(step) <= tol * (1 + jnp.abs(x)))
    return RootResult(jnp.where(finite, x, jnp.nan), ok, it)


def secant(f, x0, x1, xtol=None, maxiter=100):
    """Secant method x_{k+1} = x_k - f(x_k) (x_k - x_{k-1}) / (f(x_k) - f(x_{k-1})): Newton with a
    difference quotient, order (1 + sqrt 5)/2 ~ 1.618, one f evaluation per step. Jittable."""
    x0, x1 = as_float(x0, "x0"), as_float(x1, "x1")
    tol = _xtol(x0.dtype, xtol)

    def small(x, step):
        return jnp.abs(step) <= tol * (1 + jnp.abs(x))

    def cond(c):
        xa, xb, fa, fb, it = c
        return (it < maxiter) & ~small(xb, xb - xa) & (fb != 0) & (fa != fb)

    def body(c):
        xa, xb, fa, fb, it = c
        xc = xb - fb * (xb - xa) / (fb - fa)
        return xb, xc, fb, f(xc), it + 1

    xa, xb, _, fb, it = lax.while_loop(cond, body, (x0, x1, f(x0), f(x1), jnp.zeros((), jnp.int32)))
    return RootResult(xb, small(xb, xb - xa) | (fb == 0), it)


# --------------------------------------------------------------------------------------------
# Functions and graphs
# --------------------------------------------------------------------------------------------

def compose(*fs):
    """compose(f, g, h)(x) = f(g(h(x))): function composition, right to left."""
    if not fs or not all(callable(f) for f in fs):
        raise TypeError("compose needs one or more callables")

    def composed(x):
        for f in reversed(fs):
            x = f(x)
        return x

    return composed


def graph(f, lo, hi, num=256):
    """The graph {(x, f(x))} sampled at `num` evenly spaced x in [lo, hi]; f on scalars (vmapped).
    Returns (x (num,), y (num, ...))."""
    x = jnp.linspace(as_float(lo, "lo"), as_float(hi, "hi"), num)
    return x, jax.vmap(f)(x)


def is_monotone(f, lo, hi, num=65):
    """+1 if f is strictly increasing on the grid of `num` points of [lo, hi], -1 if strictly
    decreasing, 0 otherwise (a sampled check: it can miss wiggles between grid points). f on scalars."""
    _, y = graph(f, lo, hi, num)
    d = jnp.diff(y)
    return jnp.where(jnp.all(d > 0), 1, jnp.where(jnp.all(d < 0), -1, 0)).astype(jnp.int32)


def invert(f, y, lo, hi, xtol=None, polish=2, num=65):
    """The inverse function x = f^-1(y) of a continuous strictly monotone f on [lo, hi].

    Checked: f must be strictly monotone on a grid of `num` points (`is_monotone`), else NaN; y
    outside f([lo, hi]) (the range) gives NaN. Bisection on f(x) - y brackets the root to xtol;
    then `polish` Newton steps x <- x - (f(x) - y) / f'(x) (f' by `fungpt.grad`), each kept only if
    it stays in [lo, hi] and does not increase |f(x) - y|: the last bits come from Newton's
    quadratic convergence, the safety from the bracket. Scalar y (vmap for many). Jits and vmaps.
    """
    from fungpt.autodiff import grad
    y = as_float(y, "y")
    lo, hi = as_float(lo, "lo"), as_float(hi, "hi")
    x = bisect(lambda x: f(x) - y, lo, hi, xtol).root
    fprime = grad(f)
    for _ in range(polish):
        r = f(x) - y
        d = fprime(x)
        ok_d = jnp.isfinite(d) & (d != 0)
        step = jnp.where(ok_d, r / jnp.where(ok_d, d, 1), 0)
        cand = x - step
        better = (cand >= lo) & (cand <= hi) & (jnp.abs(f(cand) - y) <= jnp.abs(r))
        x = jnp.where(better, cand, x)
    return jnp.where(is_monotone(f, lo, hi, num) != 0, x, jnp.nan)


# --------------------------------------------------------------------------------------------
# Polynomials (coefficients highest degree first: p(x) = c_0 x^n + ... + c_n)
# --------------------------------------------------------------------------------------------

@checked_jit()
def polyval(c, x):
    """p(x) by Horner's rule p = (...((c_0 x + c_1) x + c_2) ...) x + c_n: n multiply-adds and a
    backward-stable evaluation. c (n + 1,), x any shape; no coefficients is the zero polynomial
    (numpy's value)."""
    c = as_vector(c, "c")
    x = as_float(x, "x")
    if c.shape[0] == 0:
        return jnp.zeros(x.shape, jnp.result_type(c, x))
    return lax.fori_loop(1, c.shape[0], lambda i, p: p * x + c[i], jnp.broadcast_to(c[0], x.shape))


@checked_jit()
def polyder(c):
    """Coefficients of p'(x): d/dx sum c_k x^(n-k) = sum (n - k) c_k x^(n-k-1)."""
    c = as_vector(c, "c")
    n = c.shape[0] - 1
    return c[:-1] * jnp.arange(n, 0, -1).astype(c.dtype)


@checked_jit()
def polymul(a, b):
    """Coefficients of a(x) b(x): the convolution (a * b)_k = sum_i a_i b_{k-i}, written as the
    Toeplitz matrix T_kj = a_{k-j} times b. Shapes (n + 1,), (m + 1,) -> (n + m + 1,)."""
    a, b = as_vector(a, "a"), as_vector(b, "b")
    if a.dtype != b.dtype:
        raise TypeError(f"a and b must share a dtype, got {a.dtype} and {b.dtype}")
    k = np.arange(a.shape[0] + b.shape[0] - 1)[:, None] - np.arange(b.shape[0])[None, :]
    inside = (k >= 0) & (k < a.shape[0])
    toeplitz = jnp.where(inside, a[np.clip(k, 0, a.shape[0] - 1)], 0)
    return toeplitz @ b


@checked_jit()
def polydiv(a, b):
    """Long division a(x) = q(x) b(x) + r(x), deg r < deg b (b_0 != 0):
    q_i = rem_i / b_0, rem <- rem - q_i x^(n-m-i) b. Returns (q (n - m + 1,), r (m,)), m = deg b."""
    a, b = as_vector(a, "a"), as_vector(b, "b")
    if a.dtype != b.dtype:
        raise TypeError(f"a and b must share a dtype, got {a.dtype} and {b.dtype}")
    n, m = a.shape[0] - 1, b.shape[0] - 1
    if m > n or m < 0:
        raise ValueError(f"polydiv needs 0 <= deg b <= deg a, got degrees {n} and {m}")

    def step(i, carry):
        rem, q = carry
        qi = rem[i] / b[0]
        shifted = lax.dynamic_update_slice(jnp.zeros_like(rem), b, (i,))
        return rem - qi * shifted, q.at[i].set(qi)

    rem, q = lax.fori_loop(0, n - m + 1, step, (a, jnp.zeros(n - m + 1, a.dtype)))
    return q, rem[n - m + 1:]


def _check_nonzero(name, v, why):
    # Value checks run on concrete inputs only (a tracer under jit/vmap/grad has no value to check).
    try:
        v = np.asarray(v)
    except (jax.errors.TracerArrayConversionError, jax.errors.ConcretizationTypeError):
        return
    if np.any(v == 0):
        raise ValueError(f"{name} must be nonzero: {why}")


def companion(c):
    """Companion matrix of p (c_0 != 0): first row -c_1/c_0 ... -c_n/c_0, ones on the subdiagonal;
    its characteristic polynomial is p / c_0, so its eigenvalues are the roots of p. (n, n).
    A concrete leading coefficient c_0 = 0 is an error (shapes are static, so it cannot be dropped
    as `numpy.roots` does): pass the coefficients from the first nonzero one."""
    c = as_vector(c, "c")
    if c.shape[0] >= 1:
        _check_nonzero("the leading coefficient c[0]", c[0],
                       "strip leading zeros (the degree is len(c) - 1, and c[0] = 0 would divide by 0)")
    return _companion(c)


@checked_jit()
def _companion(c):
    c = as_vector(c, "c")
    n = c.shape[0] - 1
    if n < 1:
        raise ValueError(f"a polynomial of degree >= 1 is needed, got {c.shape[0]} coefficients")
    return jnp.eye(n, k=-1, dtype=c.dtype).at[0].set(-c[1:] / c[0])


def polyroots(c):
    """All n complex roots of p, as the eigenvalues of its companion matrix (shifted QR, as
    numpy.roots does). Simple roots are accurate to ~eps * cond; a k-fold root to ~eps^(1/k)."""
    from fungpt.linalg import eigvals
    return eigvals(companion(c))


def polyfactor(c, tol=None):
    """Factor p over the reals: p(x) = c_0 prod_i f_i(x), each f_i linear (x - r) or an irreducible
    quadratic x^2 - 2 Re(z) x + |z|^2 from a conjugate pair z, z̄. Static shapes: returns
    (c_0, factors (n, 3)), each row [a, b, c] = a x^2 + b x + c; unused rows are [0, 0, 1].
    A root is real when |Im z| <= tol max(1, |z|) (default sqrt(eps): multiple roots split)."""
    c = as_vector(c, "c")
    z = polyroots(c)
    tol = math.sqrt(float(jnp.finfo(c.dtype).eps)) if tol is None else tol
    re, im = jnp.real(z), jnp.imag(z)
    real = jnp.abs(im) <= tol * jnp.maximum(1, jnp.abs(z))
    one, zero = jnp.ones_like(re), jnp.zeros_like(re)
    linear = jnp.stack([zero, one, -re], axis=1)
    quadratic = jnp.stack([one, -2 * re, re * re + im * im], axis=1)
    unused = jnp.stack([zero, zero, one], axis=1)
    rows = jnp.where(real[:, None], linear, jnp.where((im > 0)[:, None], quadratic, unused))
    return c[0], rows


def quadratic_roots(a, b, c):
    """Roots of a x^2 + b x + c (a != 0) without cancellation: q = -(b + sign(b) sqrt(b^2 - 4ac))/2,
    x1 = q / a, x2 = c / q (the textbook (-b ± sqrt(d)) / 2a loses all digits of the small root
    when b^2 >> |4ac|). Nothing is squared unscaled: with g = 2 sqrt(a) sqrt(c) (so g^2 = 4ac) and
    s = max(|b|, |g|), sqrt(d) = s sqrt((b/s)^2 - (g/s)^2), so the roots are accurate whenever they
    are representable (b = 2e19 in float32, 1e200 in float64). Complex results (a conjugate pair
    when b^2 < 4ac). A concrete a = 0 is an error (the equation is linear: x = -c / b)."""
    _check_nonzero("a", a, "with a = 0 the equation is linear, b x + c = 0, with the one root -c / b")
    return _quadratic_roots(a, b, c)


@checked_jit()
def _quadratic_roots(a, b, c):
    a, b, c = (as_float(v, n) for v, n in ((a, "a"), (b, "b"), (c, "c")))
    ct = {jnp.dtype("float32"): jnp.complex64, jnp.dtype("float64"): jnp.complex128}.get(a.dtype, a.dtype)
    a, b, c = a.astype(ct), b.astype(ct), c.astype(ct)
    g = 2 * jnp.sqrt(a) * jnp.sqrt(c)
    s = jnp.maximum(jnp.abs(b), jnp.abs(g))
    s = jnp.where(s == 0, 1, s).astype(ct)
    sd = s * jnp.sqrt((b / s) ** 2 - (g / s) ** 2)
    q = -(b / 2 + jnp.where(jnp.real(b) >= 0, 1, -1).astype(ct) * (sd / 2))
    return q / a, jnp.where(q == 0, 0, c / jnp.where(q == 0, 1, q))


# --------------------------------------------------------------------------------------------
# Inequalities and absolute value
# --------------------------------------------------------------------------------------------

@checked_jit('p')
def power_mean(x, p, w=None):
    """Weighted power mean M_p(x) = (sum_i w_i x_i^p)^(1/p) of x_i > 0 (weights default 1/n);
    M_0 = exp(sum w_i log x_i) (geometric), M_inf = max, M_-inf = min. Monotone in p, which
    contains the AM-GM-HM inequality M_-1 <= M_0 <= M_1."""
    x = as_vector(x, "x")
    w = jnp.full_like(x, 1 / x.shape[0]) if w is None else as_vector(w, "w")
    if w.shape != x.shape or w.dtype != x.dtype:
        raise ValueError(f"w must match x: {x.shape} {x.dtype}, got {w.shape} {w.dtype}")
    if p == jnp.inf:
        return jnp.max(x)
    if p == -jnp.inf:
        return jnp.min(x)
    if p == 0:
        return jnp.exp(jnp.sum(w * jnp.log(x)))
    # Log space: x^p overflows long before the mean does.
    return jnp.exp(logsumexp(p * jnp.log(x) + jnp.log(w)) / p)


@checked_jit()
def solve_abs_inequality(a, b, c):
    """Solution set of |a x - b| <= c: the interval [lo, hi] = [(b - c)/a, (b + c)/a] (ends swapped
    for a < 0); for a = 0 all x when |b| <= c. Returns (lo, hi, nonempty); empty when c < 0."""
    a, b, c = as_float(a, "a"), as_float(b, "b"), as_float(c, "c")
    nz = a != 0
    sa = jnp.where(nz, a, 1)
    e1, e2 = (b - c) / sa, (b + c) / sa
    lo = jnp.where(nz, jnp.minimum(e1, e2), -jnp.inf)
    hi = jnp.where(nz, jnp.maximum(e1, e2), jnp.inf)
    nonempty = jnp.where(nz, c >= 0, jnp.abs(b) <= c)
    return lo, hi, nonempty
