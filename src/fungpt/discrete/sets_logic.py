"""Sets (sorted arrays, indicator vectors, bitmasks) and propositional logic over truth tables."""
from __future__ import annotations

from collections.abc import Callable

import jax.numpy as jnp
import numpy as np
from jax import lax

from fungpt.discrete._base import nonneg_int
from fungpt.discrete.sat import Formula, Iff, Implies

__all__ = ["as_set", "bitmask", "bits", "contains", "difference", "equivalent", "iff", "implies", "intersection",
           "is_subset", "is_tautology", "models", "power_set", "power_set_masks", "satisfiable", "truth_table", "union"]


def _sorted_unique(x):
    # sorted values and a mask of first occurrences: fixed shapes, so this part jits
    s = jnp.sort(jnp.ravel(x))
    return s, jnp.concatenate([jnp.ones(min(s.size, 1), bool), s[1:] != s[:-1]])


def _select(s, keep):
    # the one data-dependent step, done on the host: no compilation per output size
    return jnp.asarray(np.asarray(s)[np.asarray(keep)])


def as_set(x, size: int | None = None, fill_value=None):
    """The set of the values in x: sorted, duplicates removed (sort, then keep s_i ≠ s_{i−1}).  O(n log n).

    Without `size` the result length depends on the values (eager only).  With `size` it is jittable:
    the first `size` elements, padded with `fill_value` (default: the largest element of x; an empty x needs
    an explicit fill_value).
    """
    s, keep = _sorted_unique(jnp.asarray(x))
    if size is None:
        return _select(s, keep)
    size = nonneg_int("size", size)
    if s.size == 0:
        if fill_value is None:
            raise ValueError(f"as_set of an empty array with size={size} needs a fill_value (there is no largest "
                             "element to pad with)")
        return jnp.full(size, fill_value, s.dtype)
    fill = s[-1] if fill_value is None else jnp.asarray(fill_value, s.dtype)
    idx = jnp.nonzero(keep, size=size, fill_value=s.size)[0]
    return jnp.where(idx < s.size, s[jnp.minimum(idx, s.size - 1)], fill)


def _common(a, b):
    # explicit promotion: sets of int32 and int64 (or ints and floats) compare in their common type
    dt = np.promote_types(a.dtype, b.dtype)  # numpy's rule: jnp's refuses under strict promotion
    return jnp.ravel(a).astype(dt), jnp.ravel(b).astype(dt)


def contains(s, x):
    """x ∈ s for a sorted array s (duplicates allowed), elementwise over x, by binary search:
    O(log |s|) each.  Jittable."""
    x_shape = jnp.shape(x)
    s, x = _common(jnp.asarray(s), jnp.asarray(x))
    if s.size == 0:
        return jnp.zeros(x_shape, bool)
    i = jnp.clip(jnp.searchsorted(s, x), 0, s.size - 1)
    return (s[i] == x).reshape(x_shape)


def union(a, b):
    """A ∪ B as a sorted set (eager)."""
    a, b = _common(jnp.asarray(a), jnp.asarray(b))
    return _select(*_sorted_unique(jnp.concatenate([a, b])))


def intersection(a, b):
    """A ∩ B = {x ∈ A : x ∈ B} as a sorted set (eager)."""
    a, b = _common(jnp.asarray(a), jnp.asarray(b))
    s, keep = _sorted_unique(a)
    return _select(s, keep & contains(jnp.sort(b), s))


def difference(a, b):
    """A ∖ B = {x ∈ A : x ∉ B} as a sorted set (eager)."""
    a, b = _common(jnp.asarray(a), jnp.asarray(b))
    s, keep = _sorted_unique(a)
    return _select(s, keep & ~contains(jnp.sort(b), s))


def is_subset(a, b):
    """A ⊆ B ⇔ every element of A is in B.  Jittable."""
    a, b = _common(jnp.asarray(a), jnp.asarray(b))
    return jnp.all(contains(jnp.sort(b), a))


def bitmask(elements) -> int:
    """The integer Σ_{i ∈ S} 2^i of a set of non-negative ints (exact, any size): ∪ = |, ∩ = &, ∖ = & ~."""
    m = 0
    for e in np.asarray(elements).ravel().tolist():
        m |= 1 << nonneg_int("set element", e)
    return m


def bits(mask: int) -> list[int]:
    """The elements {i : bit i of mask is set}, ascending: the inverse of `bitmask`."""
    mask = nonneg_int("mask", mask)
    return [i for i in range(mask.bit_length()) if mask >> i & 1]


def power_set_masks(n: int):
    """All 2ⁿ subsets of {0..n−1} as indicator rows: bool (2ⁿ, n), row m is the subset with bitmask m
    (bit i of m ⇔ column i).  Jittable for static n."""
    n = nonneg_int("n", n)
    m = lax.broadcasted_iota(jnp.int32, (2**n, n), 0)
    return (m >> lax.broadcasted_iota(jnp.int32, (2**n, n), 1)) & 1 == 1


def power_set(s) -> list:
    """𝒫(S): the list of all 2^|S| subsets of the set S, each a sorted array, in bitmask order."""
    s = as_set(s)
    rows = np.asarray(power_set_masks(s.size))
    return [s[np.flatnonzero(r)] for r in rows]


# ---------------------------------------------------------------------------------------------- logic

def implies(a, b):
    """a → b ≡ ¬a ∨ b on bool arrays; the formula node `Implies(a, b)` when a or b is a `Formula`."""
    if isinstance(a, Formula) or isinstance(b, Formula):
        return Implies(a, b)
    return jnp.logical_or(jnp.logical_not(a), b)


def iff(a, b):
    """a ↔ b ≡ (a → b) ∧ (b → a) on bool arrays; the formula node `Iff(a, b)` when a or b is a `Formula`."""
    if isinstance(a, Formula) or isinstance(b, Formula):
        return Iff(a, b)
    return jnp.equal(jnp.asarray(a, bool), jnp.asarray(b, bool))


def truth_table(f: Callable, n: int):
    """Evaluate the formula f(v_0, ..., v_{n−1}) on all 2ⁿ assignments at once.

    Returns (assignments bool (2ⁿ, n), values bool (2ⁿ,)); row r sets v_i to bit (n−1−i) of r, so
    the first variable changes slowest (F...F, F...T, ..., T...T), the textbook order.
    """
    n = nonneg_int("n", n)
    rows = power_set_masks(n)[:, ::-1]
    out = jnp.broadcast_to(jnp.asarray(f(*(rows[:, i] for i in range(n)))), (2**n,))
    if out.dtype != jnp.bool_:
        raise TypeError(f"the formula must return bool values, got dtype {out.dtype}")
    return rows, out


def models(f: Callable, n: int):
    """The satisfying assignments of f: bool (k, n) (eager)."""
    rows, out = truth_table(f, n)
    return rows[np.asarray(out)]


def satisfiable(f: Callable, n: int):
    """∃ assignment with f true, by enumeration: O(2ⁿ) evaluations (SAT is NP-complete; `dpll` searches
    with propagation instead)."""
    return jnp.any(truth_table(f, n)[1])


def is_tautology(f: Callable, n: int):
    """f is true under every assignment ⇔ ¬f is unsatisfiable."""
    return jnp.all(truth_table(f, n)[1])


def equivalent(f: Callable, g: Callable, n: int):
    """f ≡ g ⇔ (f ↔ g) is a tautology: equal truth tables."""
    return jnp.all(truth_table(f, n)[1] == truth_table(g, n)[1])
