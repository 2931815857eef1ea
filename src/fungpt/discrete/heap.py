"""A binary min-heap as pure functions over fixed-capacity arrays, so that every operation jits and vmaps.

The heap is the complete binary tree stored level by level in an array: the children of slot i are slots
2i + 1 and 2i + 2, its parent is ⌊(i − 1)/2⌋, and every parent's key is <= its children's (the heap property), so
the minimum sits in slot 0.  Slots at and beyond ``size`` are unused.  Python's `heapq` uses the same layout.
"""
from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax import lax

from fungpt.discrete._base import nonneg_int

__all__ = ["Heap", "heap_init", "heap_is_valid", "heap_pop", "heap_push", "heap_sort", "heapify"]


class Heap(NamedTuple):
    """keys: (capacity,) — slots 0..size−1 hold the heap; size: int32 scalar, or −1 once an operation
    overflowed or underflowed under jit (every later operation keeps −1: check it with `heap_is_valid`)."""

    keys: jax.Array
    size: jax.Array


def _concrete(x):
    return not isinstance(x, jax.core.Tracer)


def heap_init(capacity: int, dtype=jnp.float32) -> Heap:
    """An empty heap with room for `capacity` keys."""
    return Heap(jnp.zeros(nonneg_int("capacity", capacity), dtype), jnp.zeros((), jnp.int32))


@jax.jit
def heap_is_valid(h: Heap):
    """size >= 0 and the heap property keys[⌊(i−1)/2⌋] <= keys[i] for 0 < i < size (bool scalar; jittable)."""
    i = jnp.arange(1, h.keys.shape[0], dtype=h.size.dtype)
    ok = (i >= h.size) | (h.keys[(i - 1) // 2] <= h.keys[i])
    return (h.size >= 0) & jnp.all(ok)


def _swap(keys, i, j):
    # one gather and one scatter: XLA on CPU updates the array in place.  Reading keys[i], keys[j] as scalars and
    # writing them back with two .at[].set calls makes it copy the whole array inside a loop: O(capacity) per swap.
    idx = jnp.stack([i, j])
    return keys.at[idx].set(keys[idx[::-1]])


def _sift_up(keys, i):
    # move keys[i] up while it is smaller than its parent: O(log n) swaps
    def cond(s):
        keys, i = s
        return (i > 0) & (keys[i] < keys[(i - 1) // 2])

    def body(s):
        keys, i = s
        return _swap(keys, i, (i - 1) // 2), (i - 1) // 2

    return lax.while_loop(cond, body, (keys, i))[0]


def _sift_down(keys, i, n):
    # move keys[i] down, swapping with the smaller child, while a child (within the first n slots) is smaller
    last = keys.shape[0] - 1

    def smallest(keys, i):
        best = i
        for c in (2 * i + 1, 2 * i + 2):
            best = jnp.where((c < n) & (keys[jnp.minimum(c, last)] < keys[best]), c, best)
        return best

    def cond(s):
        keys, i = s
        return smallest(keys, i) != i

    def body(s):
        keys, i = s
        j = smallest(keys, i)
        return _swap(keys, i, j), j

    return lax.while_loop(cond, body, (keys, i))[0]


def heap_push(h: Heap, x) -> Heap:
    """Insert x: put it in slot `size` and sift it up.  O(log n).  Pushing onto a full heap raises ValueError
    when size is concrete; under jit the result has size −1."""
    cap = h.keys.shape[0]
    if _concrete(h.size) and not 0 <= int(h.size) < cap:
        raise ValueError(f"heap_push: the heap is full (capacity {cap})" if int(h.size) >= cap else
                         "heap_push: the heap is invalid (size -1: an earlier overflow or underflow)")
    if cap == 0:  # nothing to index: a zero-capacity heap overflows on every push
        return Heap(h.keys, jnp.full((), -1, jnp.int32))
    return _push(h, jnp.asarray(x, h.keys.dtype))


@jax.jit  # compiled once per shape and dtype, also when called eagerly
def _push(h, x):
    # A refused push must leave the keys alone without a select over the whole array (that would make every
    # push O(capacity)): its write goes out of bounds and is dropped, and it sifts from slot 0, which never moves.
    ok = (h.size >= 0) & (h.size < h.keys.shape[0])
    i = jnp.where(ok, h.size, 0)
    keys = _sift_up(h.keys.at[jnp.where(ok, h.size, h.keys.shape[0])].set(x, mode="drop"), i)
    return Heap(keys, jnp.where(ok, h.size + 1, -1).astype(jnp.int32))


def heap_pop(h: Heap):
    """Remove the minimum: returns (min, heap).  Move the last key to the root and sift it down.  O(log n).
    Popping an empty heap raises ValueError when size is concrete; under jit it returns the dtype's largest
    value (inf for floats) and size −1."""
    if _concrete(h.size) and int(h.size) <= 0:
        raise ValueError("heap_pop: the heap is empty" if int(h.size) == 0 else
                         "heap_pop: the heap is invalid (size -1: an earlier overflow or underflow)")
    big = jnp.inf if jnp.issubdtype(h.keys.dtype, jnp.floating) else jnp.iinfo(h.keys.dtype).max
    if h.keys.shape[0] == 0:
        return jnp.asarray(big, h.keys.dtype), Heap(h.keys, jnp.full((), -1, jnp.int32))
    return _pop(h, jnp.asarray(big, h.keys.dtype))


@jax.jit
def _pop(h, big):
    # on an empty or invalid heap last = 0: slot 0 is rewritten with itself and sifting within 0 slots is a no-op
    ok = h.size > 0
    last = jnp.maximum(h.size - 1, 0)
    keys = _swap(h.keys, jnp.zeros_like(last), last)  # the minimum goes to the freed slot `last`, outside the heap
    keys = _sift_down(keys, 0, last)
    return jnp.where(ok, keys[last], big), Heap(keys, jnp.where(ok, last, -1).astype(jnp.int32))


def heapify(x, capacity: int | None = None) -> Heap:
    """A heap of the keys x (n,) by Floyd's bottom-up construction: sift down every parent, from the last
    (⌊n/2⌋ − 1) to the root.  O(n) swaps in total, against O(n log n) for n pushes.  capacity >= n (default n)."""
    x = jnp.ravel(jnp.asarray(x))
    n = x.shape[0]
    cap = n if capacity is None else nonneg_int("capacity", capacity)
    if cap < n:
        raise ValueError(f"heapify: capacity {cap} < {n} keys")
    return _heapify(x, cap)


@functools.partial(jax.jit, static_argnums=1)
def _heapify(x, cap):
    n = x.shape[0]
    keys = jnp.concatenate([x, jnp.zeros(cap - n, x.dtype)])
    if n > 1:  # (fori_loop traces its body even for zero trips)
        keys = lax.fori_loop(0, n // 2, lambda t, k: _sift_down(k, n // 2 - 1 - t, n), keys)
    return Heap(keys, jnp.asarray(n, jnp.int32))


@jax.jit
def heap_sort(x):
    """x (n,) sorted ascending by heapify and n pops: O(n log n) comparisons."""
    h = heapify(x)
    if h.keys.shape[0] == 0:
        return h.keys

    def step(t, carry):
        h, out = carry
        top, h = heap_pop(h)
        return h, out.at[t].set(top)

    return lax.fori_loop(0, h.keys.shape[0], step, (h, jnp.zeros_like(h.keys)))[1]
