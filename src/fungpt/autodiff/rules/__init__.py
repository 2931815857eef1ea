"""The rule tables: one per transformation, keyed by primitive.

Reverse mode
  vjp_rules[p](ct, ans, *primals, **params) -> one cotangent per primal (None: no cotangent).
      `ct` and `ans` are the output cotangent and value (lists for multiple-result primitives,
      with missing cotangents filled by zeros). Params from the jaxpr equation pass straight through.
      A rule with the attribute `takes_active = True` also receives `_active`, a bool per primal, and
      may skip cotangents nobody reads (less work eagerly, smaller programs to compile).
  fwd_rules[p](primals, active, **params) -> (outs, residuals, bwd[, out_active])
      for primitives that need their own forward sweep (calls, control flow, custom rules).
      `residuals` is a flat list of arrays; `bwd(residuals, cts) -> cts_in` must close over no
      array, so that scan can stack residuals and run `bwd` in its own loop. `out_active` (optional,
      default: every float output) says which outputs depend on an active input.
  nograd: primitives whose outputs never carry a derivative (stop_gradient, comparisons, rounding):
      both interpreters evaluate them as plain primal code, and their outputs are inactive.

Forward mode
  jvp_rules[p](primals, tangents, **params) -> (outs, tangent_outs); tangent None is a symbolic zero
      (single values, or lists for multiple-result primitives).

`register(p, vjp=..., jvp=..., fwd=..., jit=...)` is the one way to add a rule: every family helper
below and every rules module goes through it. `p` is a primitive or its name; a name the installed
JAX does not define is collected in `missing` (a test checks it against a per-JAX-version allow-list),
never silently dropped.
"""
import functools
import sys

import jax
import jax.numpy as jnp
import numpy as np

from fungpt.autodiff.jaxpr import dtype_of

vjp_rules: dict = {}
jvp_rules: dict = {}
fwd_rules: dict = {}
rule_modules: dict = {}  # primitive -> the rules module that registered it (for the coverage table)
nograd: set = set()
linear: set = set()  # primitives linear in all their operands jointly (registered with `deflinear`)
missing: list = []  # names registered that the installed JAX does not define


# Where the installed JAX defines its primitives (public re-exports first, then the private modules
# that hold the rest: split/stack/tile, name, device_put, ...). Modules missing in a release are skipped.
_PRIMITIVE_MODULES = [
    "jax.extend.core.primitives", "jax._src.lax.lax", "jax._src.lax.slicing", "jax._src.lax.control_flow",
    "jax._src.lax.control_flow.loops", "jax._src.lax.windowed_reductions", "jax._src.lax.linalg",
    "jax._src.lax.fft", "jax._src.lax.convolution", "jax._src.lax.special", "jax._src.lax.parallel",
    "jax._src.lax.scaled_dot", "jax._src.ad_checkpoint", "jax._src.ad_util", "jax._src.core",
    "jax._src.dispatch", "jax._src.pjit", "jax._src.custom_derivatives",
    "jax._src.callback", "jax._src.checkify", "jax._src.debugging", "jax._src.custom_batching",
    "jax._src.custom_partitioning", "jax._src.shard_map", "jax._src.ffi", "jax._src.hijax",
    "jax._src.random", "jax._src.random.prng", "jax._src.random.threefry2x32", "jax._src.random.threefry4x32",
    "jax._src.random.philox2x32", "jax._src.random.philox4x32", "jax._src.prng",
    "jax._src.state.discharge", "jax._src.state.primitives", "jax._src.export.shape_poly",
    "jax._src.export._export", "jax._src.cudnn.fused_attention_stablehlo", "jax._src.cudnn.fusion",
    "jax._src.cudnn.scaled_matmul_stablehlo", "jax._src.pallas.core",
]


def _primitive_modules():
    import importlib
    mods = []
    for name in _PRIMITIVE_MODULES:
        try:
            mods.append(importlib.import_module(name))
        except ImportError:  # pragma: no cover -- older/newer JAX layouts
            pass
    return mods


_MODULES = _primitive_modules()


def all_primitives():
    """{name: (primitive, the module of JAX that defines it)} for every primitive the installed JAX
    defines in the modules above."""
    from jax.extend.core import Primitive
    found = {}
    for m in sorted(_MODULES, key=lambda m: m.__name__.startswith("jax.extend")):  # defining modules first
        for attr in dir(m):
            p = getattr(m, attr, None) if attr.endswith("_p") else None
            if isinstance(p, Primitive) and p.name not in found:
                found[p.name] = (p, m.__name__)
    return found


def prim(name):
    """The primitive object called `name` in this JAX version, or None (names move between releases)."""
    for m in _MODULES:
        p = getattr(m, f"{name}_p", None)
        if p is not None:
            return p
    return None


def _resolve(p):
    if not isinstance(p, str):
        return p
    found = prim(p)
    if found is None:
        missing.append(p)
    return found


def _caller_module():
    frame = sys._getframe(1)
    while frame is not None and frame.f_globals.get("__name__") == __name__:
        frame = frame.f_back
    return frame.f_globals.get("__name__", "") if frame is not None else ""


def jitted(rule):
    """`rule` compiled as one XLA program per (params, shapes) when called eagerly (params static).

    Un-jitted, a rule made of a dozen lax calls dispatches (and, at a new shape, compiles) each one
    separately; inside `jax.jit` the wrapper is inlined and costs nothing."""
    @functools.lru_cache(maxsize=512)
    def compiled(items):
        params = dict(items)
        return jax.jit(lambda *args: rule(*args, **params))

    @functools.wraps(rule)
    def wrapper(*args, **params):
        try:
            fn = compiled(tuple(sorted(params.items())))
        except TypeError:  # an unhashable param: run the rule as it is
            return rule(*args, **params)
        return fn(*args)

    return wrapper


def register(p, *, vjp=None, jvp=None, fwd=None, jit=False):
    """Register the rules of primitive `p` (a Primitive, or its name in the installed JAX).

    vjp / jvp / fwd go to their tables (signatures in the module docstring); jit=True compiles the
    vjp and jvp rules per (params, shapes) when they run eagerly (see `jitted`). Returns the
    primitive, or None when this JAX has no primitive of that name (recorded in `missing`)."""
    p = _resolve(p)
    if p is None:
        return None
    wrap = jitted if jit else (lambda f: f)
    for table, rule in ((vjp_rules, vjp and wrap(vjp)), (jvp_rules, jvp and wrap(jvp)), (fwd_rules, fwd)):
        if rule is not None:
            table[p] = rule
    rule_modules[p] = _caller_module()
    return p


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
    p = _resolve(p)
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

    register(p, vjp=vjp, jvp=jvp)


def deflinear(p, transpose):
    """A primitive linear in all its operands: its JVP applies it to the tangents; its VJP is the
    transpose, `transpose(ct, *xs, **params)` (xs give shapes only)."""
    p = _resolve(p)
    if p is None:
        return

    def vjp(ct, ans, *xs, **params):
        return transpose(ct, *xs, **params)

    def jvp(xs, ts, **params):
        ans = p.bind(*xs, **params)
        if all(t is None for t in ts):
            return ans, None
        ts = [jnp.zeros(np.shape(x), dtype_of(x)) if t is None else t for x, t in zip(xs, ts, strict=True)]
        return ans, p.bind(*ts, **params)

    register(p, vjp=vjp, jvp=jvp)
    linear.add(p)


def defnograd(p):
    """Outputs that carry no derivative (comparisons, integer ops, argmax, ...)."""
    p = _resolve(p)
    if p is None:
        return

    def vjp(ct, ans, *xs, **params):
        return [None] * len(xs)

    def jvp(xs, ts, **params):
        ans = p.bind(*xs, **params)
        return ans, ([None] * len(ans) if p.multiple_results else None)

    register(p, vjp=vjp, jvp=jvp)
    nograd.add(p)


__all__ = [
    "all_primitives", "bcast", "defelementwise", "deflinear", "defnograd", "fwd_rules", "jitted", "jvp_rules",
    "linear", "missing", "nograd", "prim", "register", "rule_modules", "unbroadcast", "vjp_rules",
]
