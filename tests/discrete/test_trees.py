"""Pytrees as trees against networkx."""

import jax
import jax.numpy as jnp
import networkx as nx
import pytest

from fungpt import discrete as dm
from fungpt import graphs

TREES = [
    {"wte": jnp.zeros(2), "h": [{"w": 1.0, "b": 2.0}, {"w": 3.0, "b": (4.0, 5.0)}], "ln_f": {"g": 6.0}},
    [1.0, [2.0, [3.0, [4.0]]]],
    (jnp.ones(3),),
    7.0,
]


def _nx_tree(tree):
    """The same tree built independently from JAX's leaf key paths: every prefix of a leaf path is a node."""
    G = nx.DiGraph()
    G.add_node(())
    for path, _ in jax.tree_util.tree_flatten_with_path(tree)[0]:
        for i in range(len(path)):
            G.add_edge(tuple(path[:i]), tuple(path[: i + 1]))
    return G


@pytest.mark.parametrize("i", range(len(TREES)))
def test_pytree_measures_and_traversals_match_networkx(i):
    tree = TREES[i]
    G = _nx_tree(tree)
    assert dm.tree_leaf_count(tree) == len(jax.tree_util.tree_leaves(tree))
    assert dm.tree_paths(tree) == [p for p, _ in jax.tree_util.tree_flatten_with_path(tree)[0]]
    assert dm.tree_depth(tree) == nx.dag_longest_path_length(G)
    assert dm.traverse(tree, "pre") == list(nx.dfs_preorder_nodes(G, ()))
    assert dm.traverse(tree, "post") == list(nx.dfs_postorder_nodes(G, ()))
    assert dm.traverse(tree, "level") == [(), *(v for _, v in nx.bfs_edges(G, ()))]
    g = dm.tree_graph(tree)
    H = nx.DiGraph([(u, v) for u in g for v in g[u]])
    H.add_nodes_from(g)
    assert nx.is_arborescence(H) and nx.utils.graphs_equal(H, G)
    assert graphs.topological_sort(g, "dfs")[0] == ()  # the root comes first


def test_empty_containers_are_nodes_without_leaves():
    tree = {"a": None, "b": [], "c": (1.0, {})}
    assert dm.tree_leaf_count(tree) == len(jax.tree_util.tree_leaves(tree)) == 1
    assert dm.tree_depth(tree) == 2
    assert len(dm.traverse(tree)) == 6  # root, a, b, c, c[0], c[1]
