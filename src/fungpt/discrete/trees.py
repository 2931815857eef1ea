"""Trees: a pytree is a rooted tree (containers are internal nodes, arrays are leaves)."""
from __future__ import annotations

from jax import tree_util as tu

__all__ = ["traverse", "tree_children", "tree_depth", "tree_graph", "tree_leaf_count", "tree_paths"]


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
