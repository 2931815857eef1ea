"""Chapter 8, graph theory: DAGs, topological sorting, adjacency matrices and attention graphs.

Two representations, one convention: an edge u → v.

- **Adjacency matrix** ``A`` of shape ``(n, n)``: ``A[u, v] != 0`` iff there is an edge u → v (the value is
  the edge's weight).  The matrix functions are pure ``jax.numpy``: they jit, vmap and differentiate.
- **Successor dict** ``{node: [successors...]}`` over any hashable nodes (ints, strings, jaxpr equations).
  Kahn's and the DFS topological sort run on it in plain Python, so they also order a jaxpr's equation
  graph (`jaxpr_graph`) — the order in which an autodiff engine's backward sweep must visit equations.

Attention is a weighted graph too: row i of the attention matrix says how much token i reads from each
token j, so ``weights[i, j]`` is the weight of the edge i → j, and the causal mask is the adjacency matrix
of the DAG "token i may read tokens 0..i" (plus self-loops).
"""
from __future__ import annotations

import collections
import math
from collections.abc import Hashable, Iterable, Mapping

import jax
import jax.extend as jex
import jax.numpy as jnp
import numpy as np
from jax import lax

__all__ = [
    "adjacency_matrix", "attention_rollout", "attention_weights", "causal_mask", "degrees", "edge_list",
    "find_cycle", "graph_from_adjacency", "has_cycle", "is_dag", "is_topological_order", "jaxpr_graph",
    "laplacian", "matrix_power", "topological_order", "topological_sort", "transitive_closure",
    "walk_counts",
]


def _square(A, name="A"):
    A = jnp.asarray(A)
    if A.ndim != 2 or A.shape[0] != A.shape[1]:
        raise ValueError(f"{name} must be a square (n, n) adjacency matrix, got shape {A.shape}")
    return A


def _edges(A):
    # Bool "is there an edge" matrix; bool A is used as is (comparing bool with 0 is a strict-promotion error).
    A = _square(A)
    return A if A.dtype == jnp.bool_ else A != jnp.zeros((), A.dtype)


def _check_positive_int(name, v, minimum=1):
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {v!r}")
    return int(v)


# ---------------------------------------------------------------------------------------- representations

def adjacency_matrix(edges, n: int, weights=None, dtype=None):
    """Adjacency matrix of the edge list: A[u, v] = w_e for each edge e = (u, v) (parallel edges add).

    edges: int (E, 2); n: number of nodes; weights: (E,) or None (each edge counts 1).
    Returns (n, n) of `dtype` (default bool without weights, the weights' dtype with them).
    An edge outside 0..n-1 raises ValueError on concrete edges; under jit it makes a floating result all NaN
    (a bool or int result cannot carry NaN: there the bad edge is dropped, never wrapped around).
    """
    n = _check_positive_int("n", n)
    edges = jnp.asarray(edges)
    if edges.ndim != 2 or edges.shape[1] != 2 or not jnp.issubdtype(edges.dtype, jnp.integer):
        raise ValueError(f"edges must be an int array of shape (E, 2), got {edges.dtype}{list(edges.shape)}")
    bad = jnp.any((edges < 0) | (edges >= n))
    if not isinstance(bad, jax.core.Tracer) and bool(bad):
        rows = np.argwhere(np.any((np.asarray(edges) < 0) | (np.asarray(edges) >= n), axis=1)).ravel()
        raise ValueError(f"edges must join nodes 0..{n - 1}; edges {rows.tolist()} are "
                         f"{np.asarray(edges)[rows].tolist()}")
    # under jit: a negative index must not wrap to n-1 (numpy's convention); out of range is dropped, and a
    # floating result is all NaN so the bad edge cannot pass for a graph
    safe = jnp.where(edges < 0, n, edges)
    if weights is None:
        dtype = jnp.bool_ if dtype is None else dtype
        A = jnp.zeros((n, n), dtype).at[safe[:, 0], safe[:, 1]].set(True, mode="drop")
    else:
        weights = jnp.asarray(weights)
        if weights.shape != edges.shape[:1]:
            raise ValueError(f"weights must have shape ({edges.shape[0]},), got {weights.shape}")
        dtype = weights.dtype if dtype is None else dtype
        A = jnp.zeros((n, n), dtype).at[safe[:, 0], safe[:, 1]].add(weights.astype(dtype), mode="drop")
    return jnp.where(bad, jnp.nan, A) if jnp.issubdtype(A.dtype, jnp.inexact) else A


def edge_list(A) -> np.ndarray:
    """The edges (u, v) with A[u, v] != 0, row-major, as a numpy int (E, 2) array (E depends on the values,
    so this is eager, not jittable)."""
    return np.argwhere(np.asarray(_edges(A))).astype(np.int64).reshape(-1, 2)


def graph_from_adjacency(A) -> dict[int, list[int]]:
    """The successor dict {u: [v with A[u, v] != 0]} of an adjacency matrix (eager)."""
    A = np.asarray(_edges(A))
    return {u: np.flatnonzero(A[u]).tolist() for u in range(A.shape[0])}


def jaxpr_graph(jaxpr) -> dict[int, list[int]]:
    """The data-flow DAG of a jaxpr's equations: nodes are equation indices, i → j iff equation j reads a
    variable that equation i writes.  Literals and the jaxpr's inputs create no edges.

    >>> jaxpr_graph(jax.make_jaxpr(lambda x: jnp.sin(x) * jnp.cos(x))(1.0))
    {0: [2], 1: [2], 2: []}
    """
    if isinstance(jaxpr, jex.core.ClosedJaxpr):
        jaxpr = jaxpr.jaxpr
    if not isinstance(jaxpr, jex.core.Jaxpr):
        raise TypeError(f"jaxpr must be a Jaxpr or ClosedJaxpr (from jax.make_jaxpr), got {type(jaxpr).__name__}")
    producer, graph = {}, {}
    for j, eqn in enumerate(jaxpr.eqns):
        graph[j] = []
        for v in eqn.invars:
            if not isinstance(v, jex.core.Literal) and v in producer and j not in graph[producer[v]]:
                graph[producer[v]].append(j)
        for v in eqn.outvars:
            producer[v] = j
    return graph


def _nodes(graph: Mapping) -> list:
    # Every node, keys first (in order), then nodes seen only as successors: a deterministic order.
    if not isinstance(graph, Mapping):
        raise TypeError(f"graph must be a mapping {{node: successors}}, got {type(graph).__name__}")
    seen = dict.fromkeys(graph)
    for succ in graph.values():
        seen.update(dict.fromkeys(succ))
    return list(seen)


# ------------------------------------------------------------------------------------ topological sorting

def find_cycle(graph: Mapping[Hashable, Iterable[Hashable]]) -> list | None:
    """A directed cycle [v0, v1, ..., vk] (edges v_i → v_{i+1} and vk → v0) or None if the graph is a DAG.

    Iterative depth-first search with three colours (white / on the stack / finished): an edge into a
    node on the stack closes a cycle.  O(V + E).
    """
    WHITE, GREY, BLACK = 0, 1, 2
    colour = dict.fromkeys(_nodes(graph), WHITE)
    for root in colour:
        if colour[root] != WHITE:
            continue
        path, stack = [root], [iter(graph.get(root, ()))]
        colour[root] = GREY
        while stack:
            for v in stack[-1]:
                if colour[v] == GREY:
                    return path[path.index(v):]
                if colour[v] == WHITE:
                    colour[v] = GREY
                    path.append(v)
                    stack.append(iter(graph.get(v, ())))
                    break
            else:
                colour[path.pop()] = BLACK
                stack.pop()
    return None


def topological_sort(graph: Mapping[Hashable, Iterable[Hashable]], method: str = "kahn") -> list:
    """Order the nodes so that every edge u → v has u before v.

    method="kahn": repeatedly emit a node of in-degree 0 and delete its out-edges (a FIFO queue, so ties
    go to the node met first).  method="dfs": depth-first search; a node is finished after all its
    successors, so reversed finishing order is topological.  Both O(V + E).
    Raises ValueError naming a cycle if the graph is not a DAG.

    >>> topological_sort({"a": ["b", "c"], "b": ["d"], "c": ["d"]})
    ['a', 'b', 'c', 'd']
    """
    if method not in ("kahn", "dfs"):
        raise ValueError(f"method must be 'kahn' or 'dfs', got {method!r}")
    nodes = _nodes(graph)
    order = _kahn(graph, nodes) if method == "kahn" else _dfs(graph, nodes)
    if order is None:
        raise ValueError(f"graph is not a DAG: it has the cycle {find_cycle(graph)}")
    return order


def _kahn(graph, nodes):
    indeg = dict.fromkeys(nodes, 0)
    for u in graph:
        for v in graph[u]:
            indeg[v] += 1
    queue = collections.deque(u for u in nodes if indeg[u] == 0)
    order = []
    while queue:
        u = queue.popleft()
        order.append(u)
        for v in graph.get(u, ()):
            indeg[v] -= 1
            if indeg[v] == 0:
                queue.append(v)
    return order if len(order) == len(nodes) else None  # the rest sit on or behind a cycle


def _dfs(graph, nodes):
    if find_cycle(graph) is not None:
        return None
    done, finished = set(), []
    for root in nodes:
        if root in done:
            continue
        done.add(root)
        stack = [(root, iter(graph.get(root, ())))]
        while stack:
            u, it = stack[-1]
            for v in it:
                if v not in done:
                    done.add(v)
                    stack.append((v, iter(graph.get(v, ()))))
                    break
            else:
                finished.append(u)
                stack.pop()
    return finished[::-1]


def is_topological_order(graph: Mapping[Hashable, Iterable[Hashable]], order) -> bool:
    """True iff `order` lists every node once and puts u before v for every edge u → v."""
    order = list(order)
    pos = {u: i for i, u in enumerate(order)}
    nodes = _nodes(graph)
    if len(pos) != len(order) or set(pos) != set(nodes):
        return False
    return all(pos[u] < pos[v] for u in graph for v in graph[u])


def topological_order(A):
    """Kahn's algorithm on an adjacency matrix, as one `lax.scan` (jittable, vmappable).

    At step t, emit the smallest-index node with in-degree 0 not yet emitted and subtract its row from the
    in-degrees: the lexicographically smallest topological order.  O(n²).
    A: (n, n) -> (order int32 (n,), is_dag bool).  If A has a cycle, the entries after the stall are -1.
    """
    A = _edges(A)
    n = A.shape[0]
    if n == 0:  # the empty graph is a DAG with the empty order
        return jnp.zeros(0, jnp.int32), jnp.asarray(True)
    indeg = jnp.sum(A, axis=0, dtype=jnp.int32)

    def step(carry, _):
        indeg, done = carry
        ready = (indeg == 0) & ~done
        u = jnp.argmax(ready).astype(jnp.int32)  # argmax of bool = first True
        ok = ready[u]
        done = done.at[u].set(done[u] | ok)
        indeg = indeg - jnp.where(ok, A[u].astype(jnp.int32), 0)
        return (indeg, done), (jnp.where(ok, u, -1), ok)

    _, (order, ok) = lax.scan(step, (indeg, jnp.zeros(n, jnp.bool_)), None, length=n)
    return order, jnp.all(ok)


def is_dag(A):
    """True iff the graph of A has no directed cycle (self-loops are cycles).  Jittable: Kahn's algorithm."""
    return topological_order(A)[1]


def has_cycle(A):
    """True iff some node reaches itself: any(diag(transitive_closure(A))).  Jittable, O(n³ log n)."""
    return jnp.any(jnp.diagonal(transitive_closure(A)))


# ------------------------------------------------------------------------------------- adjacency matrices

def matrix_power(A, k: int):
    """A^k by repeated squaring: O(n³ log k) instead of O(n³ k).  A (n, n), k >= 0 a Python int.

    A^k = ∏_{bits b of k} A^(2^b); the dtype of A is kept (integer A gives exact counts until overflow).
    """
    A = _square(A)
    k = _check_positive_int("k", k, minimum=0)
    result, base = jnp.eye(A.shape[0], dtype=A.dtype), A
    while k:
        if k & 1:
            result = result @ base
        k >>= 1
        if k:
            base = base @ base
    return result


def walk_counts(A, k: int):
    """(A^k)[u, v] = number of walks of exactly k edges from u to v (for 0/1 A; weighted A sums the products
    of edge weights along the walks).  Bool A is counted in int32."""
    A = _square(A)
    if A.dtype == jnp.bool_:
        A = A.astype(jnp.int32)
    return matrix_power(A, k)


def transitive_closure(A):
    """Reachability: R[u, v] = True iff a walk of length >= 1 leads from u to v (R[u, u] iff u is on a cycle).

    Repeated squaring R ← R ∨ (R·R): after s steps R covers walks of length 1..2^s, and ⌈log₂ n⌉ steps
    cover every simple path and cycle.  A (n, n) -> bool (n, n); O(n³ log n); jittable.
    """
    A = _square(A)
    R = _edges(A).astype(jnp.float32)  # 0/1 products count walks exactly far below 2^24
    for _ in range(max(1, math.ceil(math.log2(max(A.shape[0], 2))))):
        R = jnp.minimum(R + R @ R, 1.0)
    return R > 0


def degrees(A):
    """(in-degree, out-degree): column sums and row sums of A (weighted degrees for weighted A; counts for
    bool A, as int32).  For an undirected (symmetric) graph both equal the degree."""
    A = _square(A)
    if A.dtype == jnp.bool_:
        A = A.astype(jnp.int32)
    return jnp.sum(A, axis=0), jnp.sum(A, axis=1)


def laplacian(A, normalized: bool = False):
    """Graph Laplacian L = D − A with D = diag(out-degrees); normalized: D^{-1/2} L D^{-1/2}
    (isolated nodes get 0, as in networkx).

    For an undirected graph (symmetric A) L is symmetric positive semi-definite, xᵀLx = ½ Σ A_uv (x_u−x_v)²,
    and the multiplicity of the eigenvalue 0 is the number of connected components.
    A (n, n) float -> (n, n).
    """
    A = _square(A)
    if not jnp.issubdtype(A.dtype, jnp.floating):
        A = A.astype(jnp.asarray(0.0).dtype)
    d = jnp.sum(A, axis=1)
    L = jnp.diag(d) - A
    if not normalized:
        return L
    s = jnp.where(d > 0, lax.rsqrt(jnp.where(d > 0, d, jnp.ones_like(d))), jnp.zeros_like(d))
    return s[:, None] * L * s[None, :]


# --------------------------------------------------------------------------------------- attention graphs

def causal_mask(T: int, S: int | None = None):
    """The causal attention mask: bool (T, T), M[i, j] = (j <= i) — token i may read tokens 0..i.

    As an adjacency matrix (edge i → j, "i reads j") it is lower-triangular: without its diagonal
    (self-loops) it is a DAG, the transitive tournament on T nodes, whose topological order is T−1, ..., 0.
    With S >= T keys it is the last T rows of the S x S mask: M[i, j] = (j <= i + S − T), the T newest
    queries over keys that end with them (a KV cache).  fungpt's one causal mask (`nn` uses it).
    """
    T = _check_positive_int("T", T)
    S = T if S is None else _check_positive_int("S", S, minimum=T)
    return lax.broadcasted_iota(jnp.int32, (T, S), 0) + (S - T) >= lax.broadcasted_iota(jnp.int32, (T, S), 1)


def attention_weights(q, k, mask=None):
    """One head's attention matrix W = softmax_rows(q kᵀ / √D + M), M = finfo.min where mask is False.

    q: (T, D), k: (S, D), mask: bool (T, S) or None -> W (T, S), each row a probability distribution
    (rows sum to 1): the weighted adjacency matrix of the attention graph.  vmap over heads and batches.
    """
    q, k = jnp.asarray(q), jnp.asarray(k)
    if q.ndim != 2 or k.ndim != 2 or q.shape[1] != k.shape[1]:
        raise ValueError(f"q and k must be (T, D) and (S, D) with the same D, got {q.shape} and {k.shape}")
    if q.dtype != k.dtype or not jnp.issubdtype(q.dtype, jnp.floating):
        raise TypeError(f"q and k must share a floating dtype, got {q.dtype} and {k.dtype}")
    s = (q @ k.T) * jnp.asarray(1.0 / math.sqrt(q.shape[1]), q.dtype)  # (T, S)
    if mask is not None:
        mask = jnp.asarray(mask)
        if mask.shape != s.shape or mask.dtype != jnp.bool_:
            raise ValueError(f"mask must be bool of shape {s.shape}, got {mask.dtype}{list(mask.shape)}")
        s = jnp.where(mask, s, jnp.finfo(s.dtype).min)
    return jax.nn.softmax(s, axis=-1)


def attention_rollout(weights, residual: bool = True):
    """Attention rollout (Abnar & Zuidema, 2020): how much each output token draws on each input token.

    With W_l the layer-l attention (heads averaged) and the residual stream modelled as
    Ã_l = ½ W_l + ½ I, rows renormalized, the rollout is  R = Ã_L ⋯ Ã_2 Ã_1  — a product of stochastic
    matrices, i.e. the sum over all paths through the layered attention graph of the products of edge
    weights.  R is row-stochastic; rolled-out causal attention stays lower-triangular.

    weights: (L, T, T) or (L, H, T, T) row-stochastic -> R (T, T).
    """
    W = jnp.asarray(weights)
    if W.ndim == 4:
        W = jnp.mean(W, axis=1)
    if W.ndim != 3 or W.shape[1] != W.shape[2]:
        raise ValueError(f"weights must have shape (L, T, T) or (L, H, T, T), got {jnp.shape(weights)}")
    eye = jnp.eye(W.shape[1], dtype=W.dtype)
    if residual:
        W = 0.5 * W + 0.5 * eye[None]
        W = W / jnp.sum(W, axis=-1, keepdims=True)
    R, _ = lax.scan(lambda R, Wl: (Wl @ R, None), eye, W)
    return R
