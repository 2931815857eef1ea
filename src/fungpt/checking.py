"""check_grads: compare our derivatives with JAX's (the reference) and with central differences.

This is a checking tool, kept outside the engine: the engine (fungpt.autodiff) never calls JAX's
differentiation; here it is the oracle a user compares against, as in our tests."""
import jax
import jax.numpy as jnp
import numpy as np
from jax import tree_util

from fungpt.autodiff import api


def _rel_err(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.size == 0:
        return 0.0
    return float(np.max(np.abs(a - b)) / max(1e-30, float(np.max(np.abs(b))), 1.0))


def _directions(key, args):
    leaves, tree = tree_util.tree_flatten(args)
    keys = jax.random.split(key, max(1, len(leaves)))
    return tree_util.tree_unflatten(tree, [jax.random.normal(k, jnp.shape(x), jnp.result_type(x))
                                           for k, x in zip(keys, leaves, strict=False)])


def check_grads(f, args, order=2, modes=("fwd", "rev"), eps=None, key=None, rtol=None):
    """Compare fungpt's derivatives of `f` at `args` with JAX's and with central differences.

    For each order k = 1..order and each mode, the k-th directional derivative along a random
    direction v, d^k/ds^k f(x + s v) at s = 0, is computed three ways: by nesting our jvp (fwd) or
    the jvp of our vjp (rev), by nesting JAX's jvp, and by central differences of the (k-1)-th
    (O(eps^2) error, so pass float64 args for a tight check). Returns a report
    {"order k": {"mode": {"vs_jax": err, "vs_fd": err}, ...}, "per_argument": {...}} of the worst
    relative errors; raises AssertionError when rtol is given and an error exceeds it.

    `per_argument` holds, for each positional argument, the worst relative error of our gradient
    (reverse mode, first order) against jax.grad when f is scalar-valued.
    """
    args = tuple(args)
    key = jax.random.key(0) if key is None else key
    v = _directions(key, args)
    dtype = jnp.result_type(*tree_util.tree_leaves(args))
    eps = eps if eps is not None else (1e-4 if dtype == jnp.float64 else 1e-2)

    def along(fn):
        return lambda s: fn(*tree_util.tree_map(lambda x, d: x + s * d, args, v))

    def ours_k(k, mode):
        g = along(f)
        for _ in range(k):
            g = _ours_deriv(g, mode)
        return g

    def jax_k(k):
        g = along(f)
        for _ in range(k):
            g = _jax_deriv(g)
        return g

    # Each derivative is jitted: one compile instead of hundreds of eagerly dispatched small programs (a
    # second-order check of a small MLP: 4.5 -> 2.7 s).  f must be traceable anyway for our engine.
    zero = jnp.zeros((), dtype)
    report = {}
    for k in range(1, order + 1):
        entry = {}
        ref = jax.jit(jax_k(k))(zero)
        lower = jax.jit(jax_k(k - 1))
        fd = tree_util.tree_map(lambda a, b: (a - b) / (2 * eps), lower(zero + eps), lower(zero - eps))
        for mode in modes:
            got = jax.jit(ours_k(k, mode))(zero)
            entry[mode] = {"vs_jax": max(map(_rel_err, tree_util.tree_leaves(got), tree_util.tree_leaves(ref))),
                           "vs_fd": max(map(_rel_err, tree_util.tree_leaves(got), tree_util.tree_leaves(fd)))}
        report[f"order {k}"] = entry
    out = f(*args)
    if jnp.shape(out) == () and jnp.issubdtype(jnp.result_type(out), jnp.floating):
        ours = jax.jit(api.grad(f, argnums=tuple(range(len(args)))))(*args)
        ref = jax.jit(jax.grad(f, argnums=tuple(range(len(args)))))(*args)
        report["per_argument"] = {i: max([_rel_err(a, b) for a, b in zip(
            tree_util.tree_leaves(o), tree_util.tree_leaves(r), strict=True)], default=0.0)
            for i, (o, r) in enumerate(zip(ours, ref, strict=True))}
    if rtol is not None:
        worst = max(e["vs_jax"] for entry in report.values() if isinstance(entry, dict)
                    for e in entry.values() if isinstance(e, dict))
        assert worst <= rtol, f"check_grads: worst relative error vs JAX {worst:.3e} > rtol {rtol:.1e}: {report}"
    return report


def _ours_deriv(g, mode):
    if mode == "fwd":
        return lambda s: api.jvp(g, (s,), (jnp.ones_like(s),))[1]

    def rev(s):
        out, pull = api.vjp(g, s)
        # d/ds of each output leaf: pull back the basis of the output space, one leaf at a time
        leaves, tree = tree_util.tree_flatten(out)
        cols = []
        for i, leaf in enumerate(leaves):
            flat = jnp.eye(int(np.prod(jnp.shape(leaf))), dtype=leaf.dtype).reshape((-1, *jnp.shape(leaf)))

            def one(e, i=i):
                ct = [jnp.zeros_like(x) for x in leaves]
                ct[i] = e
                return pull(tree_util.tree_unflatten(tree, ct))[0]

            cols.append(jax.vmap(one)(flat).reshape(jnp.shape(leaf)))
        return tree_util.tree_unflatten(tree, cols)

    return rev


def _jax_deriv(g):
    return lambda s: jax.jvp(g, (s,), (jnp.ones_like(s),))[1]
