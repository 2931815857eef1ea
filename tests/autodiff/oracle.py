"""Shared checks for rule tests: fungpt against jax.vjp / jax.jvp (the oracles), the inner-product
identity <t, vjp(c)> = <jvp(t), c> between our own two modes, and central differences in float64."""
import jax
import jax.numpy as jnp
import numpy as np
from jax import tree_util

import fungpt
from tests.helpers import assert_trees_close

# Named, dtype-keyed tolerances (relative). References run in the same dtype; float64 is exact-ish.
TOL = {np.dtype("float32"): 2e-3, np.dtype("float64"): 1e-9, np.dtype("complex64"): 2e-3,
       np.dtype("complex128"): 1e-9}
FD_TOL = {np.dtype("float64"): 1e-5}
TOL64 = 1e-10  # two float64 programs that compute the same derivative, rounding apart


def _tol(tree):
    dts = [np.dtype(x.dtype) for x in tree_util.tree_leaves(tree) if hasattr(x, "dtype")]
    return max((TOL.get(d, 2e-3) for d in dts), default=1e-9)


def _random_like(key, tree):
    leaves, treedef = tree_util.tree_flatten(tree)
    keys = jax.random.split(key, max(len(leaves), 1))
    out = []
    for k, x in zip(keys, leaves, strict=False):
        x = jnp.asarray(x)
        if jnp.issubdtype(x.dtype, jnp.complexfloating):
            re, im = jax.random.normal(k, (2, *x.shape), jnp.finfo(x.dtype).dtype)
            out.append(jax.lax.complex(re, im).astype(x.dtype))
        elif jnp.issubdtype(x.dtype, jnp.inexact):
            out.append(jax.random.normal(k, x.shape, x.dtype))
        else:
            out.append(np.zeros(x.shape, jax.dtypes.float0))
    return tree_util.tree_unflatten(treedef, out)


def check_vjp(f, args, key, rtol=None):
    """fungpt.vjp(f) == jax.vjp(f) for a random cotangent; returns the cotangents."""
    out, pull = fungpt.vjp(f, *args)
    ref_out, ref_pull = jax.vjp(f, *args)
    rtol = rtol or _tol((args, ref_out))
    assert_trees_close(out, ref_out, rtol, "primal out")
    ct = _random_like(key, ref_out)
    got, want = pull(ct), ref_pull(ct)
    assert_trees_close(got, want, rtol, "cotangent")
    return got


def check_jvp(f, args, key, rtol=None):
    """fungpt.jvp(f) == jax.jvp(f) for a random tangent."""
    t = _random_like(key, args)
    out, tout = fungpt.jvp(f, tuple(args), tuple(t))
    ref_out, ref_tout = jax.jvp(f, tuple(args), tuple(t))
    rtol = rtol or _tol((args, ref_out))
    assert_trees_close(out, ref_out, rtol, "primal out")
    assert_trees_close(tout, ref_tout, rtol, "tangent")
    return tout


def _vdot(a, b):
    pairs = [(x, y) for x, y in zip(tree_util.tree_leaves(a), tree_util.tree_leaves(b), strict=True)
             if getattr(x, "dtype", None) != jax.dtypes.float0 and getattr(y, "dtype", None) != jax.dtypes.float0]
    return sum(float(np.sum(np.real(np.asarray(x, np.complex128) * np.asarray(y, np.complex128)))) for x, y in pairs)


def check_transpose_identity(f, args, key, rtol=None):
    """<t, vjp(c)> == <jvp(t), c>: our reverse mode is the transpose of our forward mode."""
    k1, k2 = jax.random.split(key)
    t = _random_like(k1, args)
    out, tout = fungpt.jvp(f, tuple(args), tuple(t))
    _, pull = fungpt.vjp(f, *args)
    c = _random_like(k2, out)
    lhs, rhs = float(_vdot(t, pull(c))), float(_vdot(tout, c))
    rtol = rtol or 10 * _tol((args, out))
    assert abs(lhs - rhs) <= rtol * max(1.0, abs(lhs), abs(rhs)), f"<t, vjp(c)> = {lhs} but <jvp(t), c> = {rhs}"


def check_finite_differences(f, args, key, eps=1e-6, rtol=1e-5, tangent=None):
    """Directional derivative from central differences (float64 args) against our JVP."""
    if tangent is None:
        t = _random_like(key, args)
        _, tout = fungpt.jvp(f, tuple(args), tuple(t))
    else:
        t, tout = tangent

    def shifted(s):
        moved = tree_util.tree_map(lambda x, d: x + s * d if jnp.issubdtype(jnp.asarray(x).dtype, jnp.inexact)
                                   else x, tuple(args), tuple(t))
        return f(*moved)

    fd = tree_util.tree_map(lambda a, b: (a - b) / (2 * eps), shifted(eps), shifted(-eps))
    assert_trees_close(tout, fd, rtol, "jvp vs central differences")


def check_all(f, args, key, rtol=None, fd=True):
    """Every oracle: jax.vjp, jax.jvp, the transpose identity <t, vjp(c)> = <jvp(t), c> between our
    own two modes, and (all-float64 arguments) central differences. Each transform runs once."""
    k1, k2, k3 = jax.random.split(key, 3)
    out, pull = fungpt.vjp(f, *args)
    ref_out, ref_pull = jax.vjp(f, *args)
    rtol = rtol or _tol((args, ref_out))
    assert_trees_close(out, ref_out, rtol, "primal out")
    c = _random_like(k1, ref_out)
    ct_in = pull(c)
    assert_trees_close(ct_in, ref_pull(c), rtol, "cotangent")
    t = _random_like(k2, args)
    _, tout = fungpt.jvp(f, tuple(args), tuple(t))
    assert_trees_close(tout, jax.jvp(f, tuple(args), tuple(t))[1], rtol, "tangent")
    lhs, rhs = _vdot(t, ct_in), _vdot(tout, c)
    tol = 10 * _tol((args, out))
    assert abs(lhs - rhs) <= tol * max(1.0, abs(lhs), abs(rhs)), f"<t, vjp(c)> = {lhs} but <jvp(t), c> = {rhs}"
    all64 = all(np.dtype(jnp.asarray(x).dtype) == np.float64 for x in tree_util.tree_leaves(args)
                if jnp.issubdtype(jnp.asarray(x).dtype, jnp.inexact))
    if fd and all64:
        check_finite_differences(f, args, k3, tangent=(t, tout))


