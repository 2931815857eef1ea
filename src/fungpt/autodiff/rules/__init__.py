"""The rule tables: one per transformation, keyed by primitive.

Reverse mode
  vjp_rules[p](ct, ans, *primals, **params) -> one cotangent per primal (None: no cotangent).
      `ct` and `ans` are the output cotangent and value (lists for multiple-result primitives,
      with missing cotangents filled by zeros). Params from the jaxpr equation pass straight through.
      A rule with the attribute `takes_active = True` also receives `_active`, a bool per primal, and
      may skip cotangents nobody reads (less work eagerly, smaller programs to compile).
  fwd_rules[p](primals, active, **params) -> (outs, residuals, bwd)
      for primitives that need their own forward sweep (calls, control flow, custom rules).
      `residuals` is a flat list of arrays; `bwd(residuals, cts) -> cts_in` must close over no
      array, so that scan can stack residuals and run `bwd` in its own loop.

Forward mode
  jvp_rules[p](primals, tangents, **params) -> (outs, tangent_outs); tangent None is a symbolic zero
      (single values, or lists for multiple-result primitives).

Family helpers below keep each rules module a table of derivatives.
"""
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.extend.core import primitives as P

vjp_rules: dict = {}
jvp_rules: dict = {}
fwd_rules: dict = {}
rule_modules: dict = {}  # primitive -> the rules module that registered it (for the coverage table)


def _caller_module(depth=2):
    import sys
    return sys._getframe(depth).f_globals.get("__name__", "")


def _primitive_modules():
    import importlib
    mods = [P]
    # Primitives JAX does not (yet) re-export publicly, e.g. split/stack/tile in recent releases.
    for name in ["jax._src.lax.lax", "jax._src.lax.slicing", "jax._src.lax.control_flow",
                 "jax._src.lax.windowed_reductions", "jax._src.lax.linalg", "jax._src.lax.fft",
                 "jax._src.lax.convolution", "jax._src.lax.special", "jax._src.ad_checkpoint"]:
        try:
            mods.append(importlib.import_module(name))
        except ImportError:  # pragma: no cover -- older/newer JAX layouts
            pass
    return mods


_MODULES = _primitive_modules()


def prim(name):
    """The primitive object called `name` in this JAX version, or None (names move between releases)."""
    for m in _MODULES:
        p = getattr(m, f"{name}_p", None)
        if p is not None:
            return p
    return None


def is_float(dtype) -> bool:
    return jnp.issubdtype(dtype, jnp.inexact)


def zeros_like_aval(aval):
    return jnp.zeros(aval.shape, aval.dtype)


def unbroadcast(ct, x):
    """Sum `ct` back to the shape of operand `x`: jaxprs broadcast binary elementwise operands
    implicitly (a rank-0 operand, or size-1 axes of equal rank). The one place this is undone."""
    shape = np.shape(x)
    if ct.shape == shape:
        return ct
    if len(shape) == 0:
        return jnp.sum(ct).astype(ct.dtype)
    axes = tuple(i for i, (a, b) in enumerate(zip(shape, ct.shape, strict=True)) if a == 1 and b != 1)
    return jnp.sum(ct, axis=axes, keepdims=True).astype(ct.dtype)


def bcast(t, shape):
    """A tangent broadcast to the output shape (the forward-mode twin of `unbroadcast`)."""
    return t if t.shape == tuple(shape) else jnp.broadcast_to(t, shape)


def out_shape(*xs):
    return np.broadcast_shapes(*(np.shape(x) for x in xs))


def defelementwise(p, *derivs):
    """Elementwise p(x1, ..., xn) with partials derivs[i](ans, *xs, **params) (None: no gradient)."""
    if p is None:
        return

    def vjp(ct, ans, *xs, _active=None, **params):
        active = _active or [True] * len(xs)
        return [None if d is None or not a else unbroadcast(ct * d(ans, *xs, **params), x) for d, x, a in
                zip(derivs, xs, active, strict=True)]

    vjp.takes_active = True  # skip partials of operands that need no cotangent

    def jvp(xs, ts, **params):
        ans = p.bind(*xs, **params)
        shape = out_shape(*xs)
        terms = [bcast(t * d(ans, *xs, **params), shape) for d, t in zip(derivs, ts, strict=True)
                 if t is not None and d is not None]
        return ans, (sum(terms[1:], terms[0]) if terms else None)

    vjp_rules[p], jvp_rules[p] = vjp, jvp
    rule_modules[p] = _caller_module()


def deflinear(p, transpose):
    """A primitive linear in all its operands: its JVP applies it to the tangents; its VJP is the
    transpose, `transpose(ct, *xs, **params)` (xs give shapes only)."""
    if p is None:
        return

    def vjp(ct, ans, *xs, **params):
        return transpose(ct, *xs, **params)

    def jvp(xs, ts, **params):
        ans = p.bind(*xs, **params)
        if all(t is None for t in ts):
            return ans, None
        ts = [jnp.zeros(np.shape(x), _dtype(x)) if t is None else t for x, t in zip(xs, ts, strict=True)]
        return ans, p.bind(*ts, **params)

    vjp_rules[p], jvp_rules[p] = vjp, jvp
    rule_modules[p] = _caller_module()


def defnograd(p):
    """Outputs that carry no derivative (comparisons, integer ops, argmax, ...)."""
    if p is None:
        return

    def vjp(ct, ans, *xs, **params):
        return [None] * len(xs)

    def jvp(xs, ts, **params):
        ans = p.bind(*xs, **params)
        return ans, ([None] * len(ans) if p.multiple_results else None)

    vjp_rules[p], jvp_rules[p] = vjp, jvp
    rule_modules[p] = _caller_module()


def _dtype(x):
    return x.dtype if hasattr(x, "dtype") else np.result_type(x)


def binds(p, *xs, **params):
    return p.bind(*xs, **params)


__all__ = [
    "bcast", "binds", "defelementwise", "deflinear", "defnograd", "fwd_rules", "is_float", "jvp_rules",
    "lax", "prim", "unbroadcast", "vjp_rules", "zeros_like_aval",
]
