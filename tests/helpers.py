"""The one place for comparisons and tolerances in the tests.

Tolerances are relative and keyed by dtype; references run in float64 (x64 is on in conftest.py).
- ``EXACT``: an algorithm that is exact up to rounding (a few ulps times a condition-free growth factor).
- ``ALG``: an iterative or accumulated algorithm (factorizations, sums over n terms, FFTs).
- ``GRAD``: derivatives against JAX's or a closed form (JAX's own gradient tests use 2e-3 / 1e-5).
- ``FD``: against central finite differences in float64.
- ``LAYER``: a composite of several ops in the tested dtype (a network layer, a polynomial) against float64 numpy.
"""
from __future__ import annotations

import jax
import numpy as np

F32, F64 = np.dtype("float32"), np.dtype("float64")
C64, C128 = np.dtype("complex64"), np.dtype("complex128")

EXACT = {F32: 2e-5, F64: 1e-12, C64: 2e-5, C128: 1e-12}
ALG = {F32: 1e-4, F64: 1e-11, C64: 1e-4, C128: 1e-11}
GRAD = {F32: 2e-3, F64: 1e-9, C64: 2e-3, C128: 1e-9}
FD = {F64: 1e-5}
LAYER = {F32: 2e-3, F64: 1e-7}
# Tables for one kind of check each, with the error law they come from:
FFT = {F32: 1e-4, F64: 1e-12}        # FFTs and filters vs float64 numpy: O(log n) butterfly stages of rounding
FFT_GRAD = {F32: 2e-4, F64: 1e-10}   # gradients through FFTs
LIMIT = {F32: 1e-4, F64: 1e-9}       # Richardson extrapolation on 8 levels amplifies rounding ~2^8
FD_RULES = {                         # finite differences: forward O(√eps), central O(eps^(2/3)), complex step O(eps)
    "forward": {d: 30 * float(np.finfo(d).eps) ** 0.5 for d in (F32, F64)},
    "central": {d: 30 * float(np.finfo(d).eps) ** (2 / 3) for d in (F32, F64)},
    "complex": {d: 30 * float(np.finfo(d).eps) for d in (F32, F64)},
}
FORMULA = {F32: EXACT[F32], F64: ALG[F64]}  # closed forms whose float64 evaluation sums many terms
LOGPMF = {F32: 2e-6, F64: 2e-14}     # log-pmfs from lgamma differences and bd0: a few ulps of the result
ULPS = {F32: 2e-6, F64: 4e-15}       # a few ulps of the result, relative to max(1, |ref|)


def close(got, want, rtol, atol=None):
    """Elementwise ``|got - want| <= atol + rtol |want|`` (atol defaults to rtol); NaN where the reference has NaN."""
    np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=rtol, atol=rtol if atol is None else atol)


def assert_trees_close(actual, expected, rtol, what="", atol=0.0):
    """Structure first, then each leaf (shape, dtype, NaN pattern, values), naming the differing leaf's path.

    Values: max |a - e| <= atol + rtol * max(1, max |e|) per leaf.
    """
    a_leaves, a_def = jax.tree_util.tree_flatten_with_path(actual)
    e_leaves, e_def = jax.tree_util.tree_flatten_with_path(expected)
    assert a_def == e_def, f"{what}: tree structures differ: {a_def} vs {e_def}"
    for (path, a), (_, e) in zip(a_leaves, e_leaves, strict=True):
        name = f"{what}{jax.tree_util.keystr(path)}"
        assert np.shape(a) == np.shape(e), f"{name}: shape {np.shape(a)} != {np.shape(e)}"
        if getattr(e, "dtype", None) == jax.dtypes.float0:
            assert getattr(a, "dtype", None) == jax.dtypes.float0, f"{name}: expected float0"
            continue
        a, e = np.asarray(a), np.asarray(e)
        assert a.dtype == e.dtype, f"{name}: dtype {a.dtype} != {e.dtype}"
        nan_a, nan_e = np.isnan(a), np.isnan(e)
        assert np.array_equal(nan_a, nan_e), f"{name}: NaN at {np.argwhere(nan_a)} vs {np.argwhere(nan_e)}"
        a, e = np.where(nan_a, 0, a), np.where(nan_e, 0, e)
        scale = max(1.0, float(np.max(np.abs(e)))) if e.size else 1.0
        err = float(np.max(np.abs(a - e))) if e.size else 0.0
        assert err <= atol + rtol * scale, f"{name}: max abs error {err:.3e} > {atol:.1e} + {rtol:.1e} * {scale:.3e}"
