"""Recurrences against sympy and brute-force enumeration of binary trees."""
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import sympy

from fungpt import discrete as dm


def _binary_trees(n):
    # all binary-tree shapes with n internal nodes, as nested tuples (leaves are None)
    if n == 0:
        return [None]
    return [(l, r) for i in range(n) for l in _binary_trees(i) for r in _binary_trees(n - 1 - i)]


x, y = dm.Var("x"), dm.Var("y")


def test_fibonacci_and_catalan_match_sympy():
    for n in (0, 1, 2, 10, 93, 1000):
        assert dm.fibonacci(n) == sympy.fibonacci(n)
    for n in (0, 1, 5, 30):
        assert dm.catalan(n) == sympy.catalan(n) == math.comb(2 * n, n) // (n + 1)
    n = jnp.arange(71, dtype=jnp.float64)
    assert np.rint(np.asarray(dm.binet(n))).astype(np.int64).tolist() == [dm.fibonacci(i) for i in range(71)]


def test_catalan_counts_binary_trees():
    for n in range(7):
        assert len(_binary_trees(n)) == dm.catalan(n)


@pytest.mark.parametrize("coeffs,init", [
    ([1, 1], [0, 1]),                    # Fibonacci
    ([0, 1, 1], [3, 0, 2]),              # Perrin
    ([6, -11, 6], [1, 2, 5]),            # characteristic roots 1, 2, 3
])
def test_linear_recurrences_three_ways(coeffs, init):
    n = 40
    naive = list(init)  # explicit loop with Python ints: exact
    while len(naive) < n:
        naive.append(sum(c * naive[-1 - i] for i, c in enumerate(coeffs)))
    c, a = jnp.array(coeffs, jnp.int64), jnp.array(init, jnp.int64)
    assert dm.linear_recurrence(c, a, n).tolist() == naive
    step = jax.jit(dm.linear_recurrence_nth, static_argnums=2)
    assert [int(step(c, a, t)) for t in (1, 39)] == [naive[t] for t in (1, 39)]
    roots, w = dm.recurrence_closed_form(c.astype(jnp.float64), a.astype(jnp.float64))
    want_roots = sympy.Poly([1, *[-v for v in coeffs]], sympy.Symbol("x")).nroots()
    np.testing.assert_allclose(np.sort_complex(np.asarray(roots)),
                               np.sort_complex(np.array(want_roots, complex)), rtol=1e-9, atol=1e-12)
    t = jnp.arange(25, dtype=jnp.float64)
    closed = jnp.real(jnp.sum(w[None, :] * roots[None, :] ** t[:, None].astype(roots.dtype), axis=1))
    np.testing.assert_allclose(closed, naive[:25], rtol=1e-8, atol=1e-6)


def test_repeated_roots_are_refused():
    with pytest.raises(ValueError, match="repeat"):
        dm.recurrence_closed_form(jnp.array([2.0, -1.0]), jnp.array([0.0, 1.0]))  # (x − 1)²
