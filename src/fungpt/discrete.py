"""Chapter 9, combinatorics & discrete math: sets, propositional logic, counting, recurrences, trees
(pytrees are trees) and symbolic expressions with symbolic differentiation.

Conventions.  A *set* is either a sorted array of distinct values (`as_set`, `union`, ...) or, over a
universe {0, ..., n−1}, an indicator vector / integer bitmask (bit i set ⇔ i ∈ S), where ∪, ∩, ∖ are
|, &, &~.  A *propositional formula* on n variables is a Python function of n bool arrays built from
jnp's logical operators, so one call evaluates it on every row of the truth table.  Exact counts are
Python ints (unbounded); log-counts are jnp floats (jittable) for n far beyond any float's range.
"""
from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable, Mapping

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax import tree_util as tu

from fungpt.graphs import matrix_power

__all__ = [
    "Add", "Call", "Const", "Expr", "Mul", "Pow", "Var", "as_set", "binet", "bitmask", "bits", "catalan",
    "characteristic_roots", "comb", "combinations", "companion_matrix", "contains", "cos", "diff",
    "difference", "equivalent", "evaluate", "exp", "expr_size", "factorial", "fibonacci", "iff", "implies",
    "intersection", "is_subset", "is_tautology", "linear_recurrence", "linear_recurrence_nth",
    "log", "log_comb", "log_factorial", "log_perm", "models", "nth_permutation", "perm",
    "permutation_rank", "permutations", "power_set", "power_set_masks", "recurrence_closed_form",
    "satisfiable", "simplify", "sin", "stirling", "stirling_log_error", "tanh", "traverse",
    "tree_children", "tree_depth", "tree_graph", "tree_leaf_count", "tree_paths", "truth_table", "union",
]


def _nonneg_int(name, v):
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 0:
        raise ValueError(f"{name} must be a non-negative int, got {v!r}")
    return int(v)


# ------------------------------------------------------------------------------------------------- sets

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
    the first `size` elements, padded with `fill_value` (default: the largest element of x).
    """
    s, keep = _sorted_unique(jnp.asarray(x))
    if size is None or s.size == 0:
        return _select(s, keep) if size is None else s
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
        m |= 1 << _nonneg_int("set element", e)
    return m


def bits(mask: int) -> list[int]:
    """The elements {i : bit i of mask is set}, ascending: the inverse of `bitmask`."""
    mask = _nonneg_int("mask", mask)
    return [i for i in range(mask.bit_length()) if mask >> i & 1]


def power_set_masks(n: int):
    """All 2ⁿ subsets of {0..n−1} as indicator rows: bool (2ⁿ, n), row m is the subset with bitmask m
    (bit i of m ⇔ column i).  Jittable for static n."""
    n = _nonneg_int("n", n)
    m = lax.broadcasted_iota(jnp.int32, (2**n, n), 0)
    return (m >> lax.broadcasted_iota(jnp.int32, (2**n, n), 1)) & 1 == 1


def power_set(s) -> list:
    """𝒫(S): the list of all 2^|S| subsets of the set S, each a sorted array, in bitmask order."""
    s = as_set(s)
    rows = np.asarray(power_set_masks(s.size))
    return [s[np.flatnonzero(r)] for r in rows]


# ---------------------------------------------------------------------------------------------- logic

def implies(a, b):
    """a → b ≡ ¬a ∨ b."""
    return jnp.logical_or(jnp.logical_not(a), b)


def iff(a, b):
    """a ↔ b ≡ (a → b) ∧ (b → a)."""
    return jnp.equal(jnp.asarray(a, bool), jnp.asarray(b, bool))


def truth_table(f: Callable, n: int):
    """Evaluate the formula f(v_0, ..., v_{n−1}) on all 2ⁿ assignments at once.

    Returns (assignments bool (2ⁿ, n), values bool (2ⁿ,)); row r sets v_i to bit (n−1−i) of r, so
    the first variable changes slowest (F...F, F...T, ..., T...T), the textbook order.
    """
    n = _nonneg_int("n", n)
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
    """∃ assignment with f true, by enumeration: O(2ⁿ) evaluations (SAT is NP-complete)."""
    return jnp.any(truth_table(f, n)[1])


def is_tautology(f: Callable, n: int):
    """f is true under every assignment ⇔ ¬f is unsatisfiable."""
    return jnp.all(truth_table(f, n)[1])


def equivalent(f: Callable, g: Callable, n: int):
    """f ≡ g ⇔ (f ↔ g) is a tautology: equal truth tables."""
    return jnp.all(truth_table(f, n)[1] == truth_table(g, n)[1])


# ------------------------------------------------------------------------------------------- counting

def factorial(n: int) -> int:
    """n! = 1·2·…·n exactly (a Python int)."""
    return math.prod(range(2, _nonneg_int("n", n) + 1))


def perm(n: int, k: int) -> int:
    """P(n, k) = n! / (n−k)! = n(n−1)…(n−k+1): ordered selections of k of n (0 if k > n).  Exact."""
    n, k = _nonneg_int("n", n), _nonneg_int("k", k)
    return math.prod(range(n - k + 1, n + 1)) if k <= n else 0


def comb(n: int, k: int) -> int:
    """C(n, k) = n! / (k!(n−k)!): k-subsets of n (0 if k > n).  Exact, by c ← c·(n−i)/(i+1), each step an
    integer (it is C(n, i+1))."""
    n, k = _nonneg_int("n", n), _nonneg_int("k", k)
    if k > n:
        return 0
    c = 1
    for i in range(min(k, n - k)):
        c = c * (n - i) // (i + 1)
    return c


def _fl(n):
    n = jnp.asarray(n)
    return n if jnp.issubdtype(n.dtype, jnp.floating) else n.astype(jnp.asarray(0.0).dtype)


def log_factorial(n):
    """log n! = log Γ(n+1), elementwise, for n up to ~1e300 (n! itself overflows float64 at n = 171)."""
    return lax.lgamma(_fl(n) + 1)


def log_comb(n, k):
    """log C(n, k) = log Γ(n+1) − log Γ(k+1) − log Γ(n−k+1), elementwise (0 <= k <= n)."""
    n, k = _fl(n), _fl(k)
    return lax.lgamma(n + 1) - lax.lgamma(k + 1) - lax.lgamma(n - k + 1)


def log_perm(n, k):
    """log P(n, k) = log Γ(n+1) − log Γ(n−k+1), elementwise (0 <= k <= n)."""
    n, k = _fl(n), _fl(k)
    return lax.lgamma(n + 1) - lax.lgamma(n - k + 1)


def stirling(n):
    """Stirling's approximation n! ≈ √(2πn) (n/e)ⁿ (elementwise, n >= 1)."""
    n = _fl(n)
    return jnp.sqrt(2 * math.pi * n) * (n / math.e) ** n


def stirling_log_error(n):
    """log n! − log(√(2πn)(n/e)ⁿ), which lies in (1/(12n+1), 1/(12n)) (Robbins, 1955): the relative error
    of Stirling's formula is about 1/(12n)."""
    n = _fl(n)
    return lax.lgamma(n + 1) - (n * jnp.log(n) - n + 0.5 * jnp.log(2 * math.pi * n))


def permutations(n: int):
    """All n! permutations of 0..n−1 in lexicographic order: int (n!, n).

    Each is the previous one's successor: find the last ascent p_i < p_{i+1}, swap p_i with the last
    p_j > p_i, reverse the tail (Narayana Pandita).  O(n!·n).
    """
    n = _nonneg_int("n", n)
    p, out = list(range(n)), []
    while True:
        out.append(p[:])
        i = n - 2
        while i >= 0 and p[i] > p[i + 1]:
            i -= 1
        if i < 0:
            return np.array(out, dtype=np.int64).reshape(len(out), n)
        j = n - 1
        while p[j] < p[i]:
            j -= 1
        p[i], p[j] = p[j], p[i]
        p[i + 1:] = p[i + 1:][::-1]


def combinations(n: int, k: int):
    """All C(n, k) k-subsets of 0..n−1 as increasing rows, lexicographic: int (C(n, k), k).

    Successor: bump the last position that can still grow, and reset the ones after it to a run.
    """
    n, k = _nonneg_int("n", n), _nonneg_int("k", k)
    if k > n:
        return np.zeros((0, k), np.int64)
    c, out = list(range(k)), []
    while True:
        out.append(c[:])
        i = k - 1
        while i >= 0 and c[i] == n - k + i:
            i -= 1
        if i < 0:
            return np.array(out, dtype=np.int64).reshape(len(out), k)
        c[i] += 1
        for j in range(i + 1, k):
            c[j] = c[j - 1] + 1


def nth_permutation(n: int, index):
    """The index-th permutation of 0..n−1 in lexicographic order, by the factorial number system:
    index = Σ_i d_i (n−1−i)!, and d_i picks the d_i-th smallest unused element.  Jittable and vmappable
    in index (so `vmap(partial(nth_permutation, n))(arange(n!))` enumerates them); n <= 20 (int64)."""
    n = _nonneg_int("n", n)
    index = jnp.asarray(index)
    used = jnp.zeros(n, bool)
    out = []
    for i in range(n):
        f = math.factorial(n - 1 - i)
        d = ((index // f) % (n - i)).astype(jnp.int32)
        # the d-th unused element: the first unused position with d unused elements before it
        rank = jnp.cumsum(~used, dtype=jnp.int32) - 1
        e = jnp.argmax((rank == d) & ~used).astype(jnp.int32)
        out.append(e)
        used = used.at[e].set(True)
    return jnp.stack(out) if out else jnp.zeros(0, jnp.int32)


def permutation_rank(p):
    """Lexicographic index of a permutation: Σ_i (#{j > i : p_j < p_i}) · (n−1−i)!  (the inverse of
    `nth_permutation`).  p: int (n,) -> int.  Jittable."""
    p = jnp.asarray(p)
    n = p.shape[0]
    smaller_later = jnp.sum(jnp.triu(p[None, :] < p[:, None], 1), axis=1)  # Lehmer code
    weights = jnp.asarray([math.factorial(n - 1 - i) for i in range(n)], smaller_later.dtype)
    return jnp.sum(smaller_later * weights)


# ------------------------------------------------------------------------- recursion and recurrences

@functools.cache
def _fib_pair(n):
    # (F(n), F(n+1)) by fast doubling: F(2k) = F(k)(2F(k+1) − F(k)), F(2k+1) = F(k)² + F(k+1)².
    if n == 0:
        return 0, 1
    a, b = _fib_pair(n // 2)
    c, d = a * (2 * b - a), a * a + b * b
    return (d, c + d) if n % 2 else (c, d)


def fibonacci(n: int) -> int:
    """F(n) exactly (F(0) = 0, F(1) = 1, F(n) = F(n−1) + F(n−2)) by recursive fast doubling:
    O(log n) recursive calls instead of the naive recursion's O(φⁿ)."""
    return _fib_pair(_nonneg_int("n", n))[0]


def binet(n):
    """Binet's closed form F(n) = (φⁿ − ψⁿ)/√5, φ = (1+√5)/2, ψ = (1−√5)/2 = −1/φ: the characteristic-root
    solution of the Fibonacci recurrence.  Elementwise floats (exact after rounding up to n ≈ 70 in
    float64)."""
    n = _fl(n)
    s5 = math.sqrt(5.0)
    phi, psi = (1 + s5) / 2, (1 - s5) / 2
    # ψⁿ = (−1)ⁿ |ψ|ⁿ: a negative base with a real exponent would be NaN
    sign = 1 - 2 * jnp.mod(n, 2)
    return (phi**n - sign * abs(psi) ** n) / s5


@functools.cache
def catalan(n: int) -> int:
    """The Catalan number C_n by its recursion C_0 = 1, C_{n+1} = Σ_{i=0..n} C_i C_{n−i} (a binary tree with
    n+1 internal nodes is a root with a left subtree of i and a right subtree of n−i nodes).  Exact,
    memoized: O(n²).  Closed form: C(2n, n)/(n+1)."""
    n = _nonneg_int("n", n)
    return 1 if n == 0 else sum(catalan(i) * catalan(n - 1 - i) for i in range(n))


def _coeffs_init(coeffs, init):
    c, a = jnp.asarray(coeffs), jnp.asarray(init)
    if c.ndim != 1 or a.shape != c.shape or c.size == 0:
        raise ValueError(f"coeffs and init must be 1-D of the same length k >= 1, got {c.shape} and {a.shape}")
    if c.dtype != a.dtype:
        raise TypeError(f"coeffs and init must share a dtype, got {c.dtype} and {a.dtype}")
    return c, a


def linear_recurrence(coeffs, init, n: int):
    """The first n terms of a_t = c_1 a_{t−1} + c_2 a_{t−2} + … + c_k a_{t−k}, from a_0..a_{k−1} = init.

    coeffs (k,) = (c_1..c_k), init (k,) -> (n,), by iteration (`lax.scan` over a sliding window).  O(n k).
    """
    c, a = _coeffs_init(coeffs, init)
    n = _nonneg_int("n", n)
    k = c.shape[0]

    def step(window, _):  # window = (a_{t−k}, ..., a_{t−1})
        nxt = jnp.dot(c[::-1], window)
        return jnp.concatenate([window[1:], nxt[None]]), nxt

    _, rest = lax.scan(step, a, None, length=max(n - k, 0))
    return jnp.concatenate([a, rest])[:n]


def companion_matrix(coeffs):
    """The k×k matrix M with (a_{t+1}, ..., a_{t+k})ᵀ = M (a_t, ..., a_{t+k−1})ᵀ: ones on the
    superdiagonal, last row (c_k, ..., c_1).  Its eigenvalues are the characteristic roots."""
    c = jnp.asarray(coeffs)
    k = c.shape[0]
    return jnp.eye(k, k, 1, dtype=c.dtype).at[-1].set(c[::-1])


def linear_recurrence_nth(coeffs, init, n: int):
    """a_n = first entry of Mⁿ (a_0, ..., a_{k−1})ᵀ with the companion matrix M, by repeated squaring:
    O(k³ log n) instead of O(n k).  Integer dtypes give exact terms until they overflow."""
    c, a = _coeffs_init(coeffs, init)
    return (matrix_power(companion_matrix(c), _nonneg_int("n", n)) @ a)[0]


def characteristic_roots(coeffs):
    """Roots r_i of xᵏ − c_1 x^{k−1} − … − c_k = 0 (complex), the eigenvalues of the companion matrix."""
    c = jnp.asarray(coeffs)
    if not jnp.issubdtype(c.dtype, jnp.floating):
        c = c.astype(jnp.asarray(0.0).dtype)
    return jnp.linalg.eigvals(companion_matrix(c))


def recurrence_closed_form(coeffs, init):
    """Closed form a_n = Σ_i w_i r_iⁿ for distinct characteristic roots r_i, with the weights w solving
    the Vandermonde system Σ_i w_i r_iᵗ = a_t, t = 0..k−1.  Returns (roots, weights), complex (k,); a
    function of n is then `jnp.real(jnp.sum(weights * roots**n))`.  Repeated roots raise ValueError
    (their terms are n^j rⁿ, not covered here)."""
    c, a = _coeffs_init(coeffs, init)
    r = characteristic_roots(c)
    if not isinstance(r, jax.core.Tracer):
        gaps = np.abs(np.subtract.outer(np.asarray(r), np.asarray(r))) + np.eye(r.shape[0])
        if np.min(gaps) < 1e-8 * max(1.0, float(np.max(np.abs(r)))):
            raise ValueError(f"characteristic roots {np.asarray(r)} repeat: the closed form needs distinct roots")
    rows = [jnp.ones_like(r)]
    for _ in range(1, r.shape[0]):
        rows.append(rows[-1] * r)
    V = jnp.stack(rows)  # V[t, i] = r_iᵗ
    return r, jnp.linalg.solve(V, a.astype(r.dtype))


# --------------------------------------------------------------------------------------- trees (pytrees)

def tree_children(node) -> list[tuple]:
    """The children of one pytree node as (key, child) pairs, in JAX's flattening order; [] for a leaf
    and for empty containers (None, {}, ()).  Works for any registered pytree type."""
    if tu.all_leaves([node]):
        return []
    # flatten one level: everything below the node counts as a leaf
    pairs, _ = tu.tree_flatten_with_path(node, is_leaf=lambda x: x is not node)
    return [(path[0], child) for path, child in pairs]


def _is_leaf(node):
    return tu.all_leaves([node])


def tree_leaf_count(tree) -> int:
    """Number of leaves (arrays / scalars) of a pytree, counted by recursion over `tree_children`."""
    return 1 if _is_leaf(tree) else sum(tree_leaf_count(c) for _, c in tree_children(tree))


def tree_depth(tree) -> int:
    """Edges on the longest root-to-node path: 0 for a leaf or an empty container, 1 + max over children."""
    kids = tree_children(tree)
    return 1 + max(tree_depth(c) for _, c in kids) if kids else 0


def tree_paths(tree) -> list[tuple]:
    """The key path (tuple of JAX keys) of every leaf, in flattening order (depth-first, left to right)."""
    if _is_leaf(tree):
        return [()]
    return [(k, *p) for k, c in tree_children(tree) for p in tree_paths(c)]


def traverse(tree, order: str = "pre") -> list[tuple]:
    """The key paths of all nodes (root = ()) in "pre"-order (node, then children), "post"-order
    (children, then node) or "level"-order (breadth-first).  Iterative, so deep trees do not hit the
    recursion limit."""
    if order not in ("pre", "post", "level"):
        raise ValueError(f"order must be 'pre', 'post' or 'level', got {order!r}")
    if order == "level":
        out, frontier = [], [((), tree)]
        while frontier:
            out.extend(p for p, _ in frontier)
            frontier = [((*p, k), c) for p, n in frontier for k, c in tree_children(n)]
        return out
    out, stack = [], [((), tree, False)]
    while stack:
        path, node, expanded = stack.pop()
        if order == "post" and expanded:
            out.append(path)
            continue
        if order == "pre":
            out.append(path)
        else:
            stack.append((path, node, True))
        stack.extend(((*path, k), c, False) for k, c in reversed(tree_children(node)))
    return out


def tree_graph(tree) -> dict[tuple, list[tuple]]:
    """The tree as a successor dict {node path: [child paths]} — a graph for `fungpt.graphs` (a tree is a
    connected DAG where every node but the root has in-degree 1)."""
    return {path: [(*path, k) for k, _ in tree_children(node)] for path, node in _walk(tree)}


def _walk(tree):
    stack = [((), tree)]
    while stack:
        path, node = stack.pop()
        yield path, node
        stack.extend(((*path, k), c) for k, c in reversed(tree_children(node)))


# ------------------------------------------------------------------------------ symbolic representations

class Expr:
    """A symbolic expression: an immutable tree of Const, Var, Add, Mul, Pow and Call nodes.

    Build with Python operators (x * x + 3 * sin(x)), evaluate with `evaluate`, rewrite with
    `simplify`, differentiate with `diff`.  Nodes are frozen dataclasses: hashable and comparable.
    """

    def __add__(self, o):
        return Add(self, _expr(o))

    def __radd__(self, o):
        return Add(_expr(o), self)

    def __sub__(self, o):
        return Add(self, Mul(Const(-1.0), _expr(o)))

    def __rsub__(self, o):
        return Add(_expr(o), Mul(Const(-1.0), self))

    def __mul__(self, o):
        return Mul(self, _expr(o))

    def __rmul__(self, o):
        return Mul(_expr(o), self)

    def __truediv__(self, o):
        return Mul(self, Pow(_expr(o), Const(-1.0)))

    def __rtruediv__(self, o):
        return Mul(_expr(o), Pow(self, Const(-1.0)))

    def __pow__(self, o):
        return Pow(self, _expr(o))

    def __neg__(self):
        return Mul(Const(-1.0), self)

    def __str__(self):
        return _str(self)


@dataclasses.dataclass(frozen=True, repr=False)
class Const(Expr):
    value: float

    def __repr__(self):
        return f"Const({self.value!r})"


@dataclasses.dataclass(frozen=True, repr=False)
class Var(Expr):
    name: str

    def __repr__(self):
        return f"Var({self.name!r})"


@dataclasses.dataclass(frozen=True)
class Add(Expr):
    a: Expr
    b: Expr


@dataclasses.dataclass(frozen=True)
class Mul(Expr):
    a: Expr
    b: Expr


@dataclasses.dataclass(frozen=True)
class Pow(Expr):
    base: Expr
    exponent: Expr


@dataclasses.dataclass(frozen=True)
class Call(Expr):
    fn: str  # one of _FUNCS
    arg: Expr


def _expr(x) -> Expr:
    if isinstance(x, Expr):
        return x
    if isinstance(x, (int, float)) and not isinstance(x, bool):
        return Const(float(x))
    raise TypeError(f"expected an Expr or a number, got {type(x).__name__}")


# name -> (numeric function, derivative as a function of the argument expression)
_FUNCS: dict[str, tuple[Callable, Callable[[Expr], Expr]]] = {
    "exp": (jnp.exp, lambda u: Call("exp", u)),
    "log": (jnp.log, lambda u: Pow(u, Const(-1.0))),
    "sin": (jnp.sin, lambda u: Call("cos", u)),
    "cos": (jnp.cos, lambda u: Mul(Const(-1.0), Call("sin", u))),
    "tanh": (jnp.tanh, lambda u: Add(Const(1.0), Mul(Const(-1.0), Pow(Call("tanh", u), Const(2.0))))),
}


def exp(u) -> Expr:
    """Symbolic exp(u)."""
    return Call("exp", _expr(u))


def log(u) -> Expr:
    """Symbolic natural log(u)."""
    return Call("log", _expr(u))


def sin(u) -> Expr:
    """Symbolic sin(u)."""
    return Call("sin", _expr(u))


def cos(u) -> Expr:
    """Symbolic cos(u)."""
    return Call("cos", _expr(u))


def tanh(u) -> Expr:
    """Symbolic tanh(u)."""
    return Call("tanh", _expr(u))


def evaluate(e: Expr, env: Mapping[str, object]):
    """The value of e with each Var replaced by env[name] (jnp arrays broadcast elementwise).

    Pure jnp, so `jax.jit`, `jax.vmap` and `fungpt.grad` apply to `lambda x: evaluate(e, {"x": x})`.
    A subexpression object that appears several times (built once, used twice) is evaluated once, so the
    traced program is a DAG as small as the expression's sharing allows.  Integer constant exponents use
    `lax.integer_pow` (x³ is defined for negative x).
    """
    memo: dict[int, object] = {}  # by id: e stays alive during the call, so ids are stable

    def ev(e):
        if id(e) not in memo:
            memo[id(e)] = _eval_node(e, env, ev)
        return memo[id(e)]

    return ev(e)


def _eval_node(e, env, ev):
    if isinstance(e, Const):
        return e.value
    if isinstance(e, Var):
        if e.name not in env:
            raise KeyError(f"no value for variable {e.name!r}; env has {sorted(env)}")
        return env[e.name]
    if isinstance(e, Add):
        return ev(e.a) + ev(e.b)
    if isinstance(e, Mul):
        return ev(e.a) * ev(e.b)
    if isinstance(e, Pow):
        base = ev(e.base)
        if isinstance(e.exponent, Const) and float(e.exponent.value).is_integer():
            n = int(e.exponent.value)
            return base**n if isinstance(base, float) else lax.integer_pow(jnp.asarray(base), n)
        return jnp.power(base, ev(e.exponent))
    if isinstance(e, Call):
        if e.fn not in _FUNCS:
            raise ValueError(f"unknown function {e.fn!r}; known: {sorted(_FUNCS)}")
        return _FUNCS[e.fn][0](ev(e.arg))
    raise TypeError(f"expected an Expr, got {type(e).__name__}")


def diff(e: Expr, var: str, simplified: bool = True) -> Expr:
    """∂e/∂var by the rules of calculus on the expression tree, then `simplify` (unless simplified=False):
    c' = 0, x' = 1, (u+v)' = u'+v', (uv)' = u'v + uv', (uᶜ)' = c uᶜ⁻¹ u' (constant c),
    (uᵛ)' = uᵛ (v' log u + v u'/u) otherwise, f(u)' = f'(u) u' (chain rule).

    The result is a tree, so a subexpression used twice is copied twice: derivatives of deep
    compositions swell exponentially, where autodiff's jaxpr (a DAG) shares them.
    """
    d = _diff(e, var)
    return simplify(d) if simplified else d


def expr_size(e: Expr) -> int:
    """Number of nodes of the expression tree."""
    if isinstance(e, (Const, Var)):
        return 1
    if isinstance(e, Call):
        return 1 + expr_size(e.arg)
    a, b = (e.base, e.exponent) if isinstance(e, Pow) else (e.a, e.b)
    return 1 + expr_size(a) + expr_size(b)


def _diff(e, x):
    if isinstance(e, Const):
        return Const(0.0)
    if isinstance(e, Var):
        return Const(1.0 if e.name == x else 0.0)
    if isinstance(e, Add):
        return Add(_diff(e.a, x), _diff(e.b, x))
    if isinstance(e, Mul):
        return Add(Mul(_diff(e.a, x), e.b), Mul(e.a, _diff(e.b, x)))
    if isinstance(e, Pow):
        u, v = e.base, e.exponent
        if isinstance(v, Const):
            return Mul(Mul(v, Pow(u, Const(v.value - 1.0))), _diff(u, x))
        return Mul(e, Add(Mul(_diff(v, x), Call("log", u)), Mul(v, Mul(_diff(u, x), Pow(u, Const(-1.0))))))
    if isinstance(e, Call):
        if e.fn not in _FUNCS:
            raise ValueError(f"unknown function {e.fn!r}; known: {sorted(_FUNCS)}")
        return Mul(_FUNCS[e.fn][1](e.arg), _diff(e.arg, x))
    raise TypeError(f"expected an Expr, got {type(e).__name__}")


def simplify(e: Expr) -> Expr:
    """Rewrite bottom-up with identities that hold for every real input: fold constants; u+0 = u,
    u·1 = u, u·0 = 0, u¹ = u, u⁰ = 1, 1ᵘ = 1, (uᵃ)ᵇ = u^(ab) for integers a, b, u + u = 2u, u·u = u²,
    c₁(c₂u) = (c₁c₂)u, log(exp u) = u.  Never makes an expression larger."""
    if isinstance(e, (Const, Var)):
        return e
    if isinstance(e, Add):
        return _add(simplify(e.a), simplify(e.b))
    if isinstance(e, Mul):
        return _mul(simplify(e.a), simplify(e.b))
    if isinstance(e, Pow):
        return _pow(simplify(e.base), simplify(e.exponent))
    if isinstance(e, Call):
        u = simplify(e.arg)
        if isinstance(u, Const) and (e.fn != "log" or u.value > 0):
            return Const(float(getattr(np, e.fn)(np.float64(u.value))))  # fold in float64, not jnp's default
        if e.fn == "log" and isinstance(u, Call) and u.fn == "exp":
            return u.arg
        return Call(e.fn, u)
    raise TypeError(f"expected an Expr, got {type(e).__name__}")


def _is(e, v):
    return isinstance(e, Const) and e.value == v


def _add(a, b):
    if isinstance(a, Const) and isinstance(b, Const):
        return Const(a.value + b.value)
    if _is(a, 0.0):
        return b
    if _is(b, 0.0):
        return a
    if a == b:
        return _mul(Const(2.0), a)
    return Add(a, b)


def _mul(a, b):
    if isinstance(b, Const) and not isinstance(a, Const):
        a, b = b, a  # constants first
    if isinstance(a, Const) and isinstance(b, Const):
        return Const(a.value * b.value)
    if _is(a, 0.0):
        return Const(0.0)
    if _is(a, 1.0):
        return b
    if isinstance(a, Const) and isinstance(b, Mul) and isinstance(b.a, Const):
        return _mul(Const(a.value * b.a.value), b.b)
    if a == b:
        return Pow(a, Const(2.0))
    return Mul(a, b)


def _pow(u, v):
    if isinstance(u, Const) and isinstance(v, Const) and (u.value > 0 or float(v.value).is_integer()):
        if u.value != 0 or v.value >= 0:
            return Const(float(np.float64(u.value) ** v.value))
    if _is(v, 0.0) or _is(u, 1.0):
        return Const(1.0)
    if _is(v, 1.0):
        return u
    if (isinstance(u, Pow) and isinstance(u.exponent, Const) and isinstance(v, Const)
            and float(u.exponent.value).is_integer() and float(v.value).is_integer()):
        return _pow(u.base, Const(u.exponent.value * v.value))
    return Pow(u, v)


def _str(e, prec=0):
    # precedence: Add 1, Mul 2, Pow 3; parenthesize a child that binds looser than its parent
    if isinstance(e, Const):
        v = e.value
        s = str(int(v)) if float(v).is_integer() else repr(v)
        return f"({s})" if v < 0 and prec > 0 else s
    if isinstance(e, Var):
        return e.name
    if isinstance(e, Call):
        return f"{e.fn}({_str(e.arg)})"
    p, s = {Add: (1, " + "), Mul: (2, "*"), Pow: (3, "**")}[type(e)]
    left, right = (e.a, e.b) if not isinstance(e, Pow) else (e.base, e.exponent)
    text = _str(left, p + (isinstance(e, Pow))) + s + _str(right, p + (not isinstance(e, Add)))
    return f"({text})" if p < prec else text
