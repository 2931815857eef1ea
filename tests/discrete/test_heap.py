"""The jittable binary heap against Python's heapq, a naive heap-property loop and numpy's sort."""
import heapq

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fungpt import discrete as dm

SETTINGS = settings(max_examples=25, deadline=None, derandomize=True)
CAP = 12
# compiled once for the module (one compilation per dtype and shape): heaps of CAP slots, 10 keys to heapify
PUSH, POP, SORT, VALID = jax.jit(dm.heap_push), jax.jit(dm.heap_pop), jax.jit(dm.heap_sort), jax.jit(dm.heap_is_valid)
HEAPIFY = jax.jit(dm.heapify, static_argnums=1)


def naive_heap_property(keys, n):
    """Test-only: every slot's parent holds a key <= its own, by a plain loop over slots 1..n−1."""
    return all(keys[(i - 1) // 2] <= keys[i] for i in range(1, n))


ops = st.lists(st.one_of(st.integers(-50, 50), st.none()), max_size=30)  # an int: push it; None: pop


@SETTINGS
@given(ops)
def test_push_pop_sequences_match_heapq(seq):
    h, ref = dm.heap_init(CAP, jnp.float32), []
    for op in seq:
        if op is None and ref:
            top, h = POP(h)
            assert float(top) == heapq.heappop(ref)
        elif op is not None and len(ref) < CAP:
            h = PUSH(h, np.float32(op))
            heapq.heappush(ref, float(op))
        assert int(h.size) == len(ref)
        assert naive_heap_property(np.asarray(h.keys), len(ref)) and bool(VALID(h))
        assert sorted(np.asarray(h.keys)[: len(ref)].tolist()) == sorted(ref)


@SETTINGS
@given(st.lists(st.integers(-9, 9), min_size=10, max_size=10))  # few distinct values: many ties
def test_heapify_and_heap_sort_against_heapq_and_numpy(xs):
    x = np.asarray(xs, np.int32)
    h = HEAPIFY(x, CAP)
    keys = np.asarray(h.keys)
    assert int(h.size) == len(xs) and naive_heap_property(keys, len(xs)) and bool(VALID(h))
    assert sorted(keys[: len(xs)].tolist()) == sorted(xs)
    ref = list(xs)
    heapq.heapify(ref)
    for _ in range(len(xs)):  # the pops come out in heapq's order
        top, h = POP(h)
        assert int(top) == heapq.heappop(ref)
    np.testing.assert_array_equal(SORT(x), np.sort(x))


def test_heapify_on_a_reversed_array_and_a_vmapped_push():
    # descending input is the worst case for the heap property: every parent must move
    h = HEAPIFY(jnp.arange(10, 0, -1, dtype=jnp.int32), CAP)
    assert naive_heap_property(np.asarray(h.keys), 10) and np.asarray(h.keys)[0] == 1
    # a batch of heaps and one push into each: vmap against a loop of the jitted push
    batch = np.random.default_rng(3).standard_normal((4, 10)).astype(np.float32)
    new = jnp.asarray([-9.0, 0.0, 9.0, 0.5], jnp.float32)
    heaps = [HEAPIFY(r, CAP) for r in batch]
    pushed = jax.jit(jax.vmap(dm.heap_push))(jax.tree.map(lambda *h: jnp.stack(h), *heaps), new)
    for b in range(4):
        np.testing.assert_array_equal(pushed.keys[b], PUSH(heaps[b], new[b]).keys)
        assert int(pushed.size[b]) == 11 and naive_heap_property(np.asarray(pushed.keys[b]), 11)


def test_overflow_and_underflow_are_refused_or_marked():
    full = HEAPIFY(jnp.arange(CAP, dtype=jnp.float32), CAP)
    with pytest.raises(ValueError, match="full"):
        dm.heap_push(full, 0.0)
    with pytest.raises(ValueError, match="empty"):
        dm.heap_pop(dm.heap_init(4))
    bad = PUSH(full, np.float32(0.0))  # under jit: size -1, and it stays -1
    assert int(bad.size) == -1 and not bool(VALID(bad))
    np.testing.assert_array_equal(bad.keys, full.keys)  # the refused key went nowhere
    top, worse = POP(bad)
    assert float(top) == np.inf and int(worse.size) == -1
    top, empty = POP(dm.heap_init(CAP))
    assert float(top) == np.inf and int(empty.size) == -1
    with pytest.raises(ValueError, match="invalid"):
        dm.heap_push(bad, 1.0)
    with pytest.raises(ValueError, match="capacity"):
        dm.heapify(jnp.ones(5), 3)
