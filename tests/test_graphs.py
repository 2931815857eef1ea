"""Chapter 8 (graphs): every result is compared with networkx, numpy or a naive loop written here."""
import importlib.util
import itertools
import pathlib

import jax
import jax.numpy as jnp
import networkx as nx
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fungpt
from fungpt import graphs
from tests.helpers import GRAD as TOL  # f32 2e-3, f64 1e-9: relative

SETTINGS = settings(max_examples=12, deadline=None, derandomize=True)
# jitted once per module: hypothesis calls them with the same few shapes many times
is_dag, has_cycle = jax.jit(graphs.is_dag), jax.jit(graphs.has_cycle)
topological_order, transitive_closure = jax.jit(graphs.topological_order), jax.jit(graphs.transitive_closure)
walk_counts = jax.jit(graphs.walk_counts, static_argnums=1)


@st.composite
def digraphs(draw, dag=None):
    """Random (adjacency matrix, networkx DiGraph) on 1 or 7 nodes (two shapes: two compilations);
    dag=True keeps only edges u → v with u < v after a random relabelling, dag=False adds a cycle."""
    n = draw(st.sampled_from([1, 7]))
    A = np.array(draw(st.lists(st.booleans(), min_size=n * n, max_size=n * n)), bool).reshape(n, n)
    if dag is not None:
        perm = np.array(draw(st.permutations(range(n))))
        A = np.triu(A, 1)[np.ix_(perm, perm)]
        if dag is False:
            if n == 1:
                A[0, 0] = True
            else:
                A[perm[-1], perm[0]] = True
                for a, b in itertools.pairwise(perm):
                    A[a, b] = True
    G = nx.DiGraph()
    G.add_nodes_from(range(n))
    G.add_edges_from(map(tuple, np.argwhere(A)))
    return A, G


# --------------------------------------------------------------------------------------- DAGs, cycles

@SETTINGS
@given(digraphs())
def test_is_dag_and_has_cycle_match_networkx(g):
    A, G = g
    want = nx.is_directed_acyclic_graph(G)
    assert bool(is_dag(A)) == want
    assert bool(has_cycle(A)) == (not want)
    cycle = graphs.find_cycle(graphs.graph_from_adjacency(A))
    assert (cycle is None) == want
    if cycle is not None:  # the reported cycle is a real one
        assert all(G.has_edge(u, v) for u, v in zip(cycle, [*cycle[1:], cycle[0]], strict=True))


def test_edge_list_round_trip_and_weights():
    edges = np.array([[0, 1], [1, 2], [2, 0], [0, 1]])
    w = jnp.array([0.3, 1.5, 2.0, 0.25])
    A = graphs.adjacency_matrix(edges, 3, w)
    want = np.zeros((3, 3))
    for (u, v), wi in zip(edges, np.asarray(w), strict=True):
        want[u, v] += wi
    np.testing.assert_allclose(A, want, rtol=TOL[np.dtype("float64")])
    np.testing.assert_array_equal(graphs.edge_list(graphs.adjacency_matrix(edges, 3)), [[0, 1], [1, 2], [2, 0]])
    assert graphs.graph_from_adjacency(A) == {0: [1], 1: [2], 2: [0]}


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match="square"):
        graphs.is_dag(np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"\(E, 2\)"):
        graphs.adjacency_matrix(np.zeros((3,), int), 3)
    with pytest.raises(ValueError, match="T must be an int"):
        graphs.causal_mask(0)
    with pytest.raises(ValueError, match="method"):
        graphs.topological_sort({}, method="bfs")
    with pytest.raises(ValueError, match="cycle"):
        graphs.topological_sort({0: [1], 1: [0]})
    with pytest.raises(TypeError, match="Jaxpr"):
        graphs.jaxpr_graph(lambda x: x)


# ------------------------------------------------------------------------------------ topological sorting

@SETTINGS
@given(digraphs(dag=True))
def test_topological_sorts_on_dags(g):
    A, G = g
    succ = graphs.graph_from_adjacency(A)
    for method in ("kahn", "dfs"):
        order = graphs.topological_sort(succ, method)
        assert graphs.is_topological_order(succ, order), method
        assert order in [list(o) for o in nx.all_topological_sorts(G)] if len(A) <= 5 else True
    order, ok = topological_order(A)
    assert bool(ok)
    assert order.tolist() == list(nx.lexicographical_topological_sort(G))  # smallest-index-first Kahn


@SETTINGS
@given(digraphs(dag=False))
def test_topological_sorts_refuse_cycles(g):
    A, _ = g
    with pytest.raises(ValueError, match="not a DAG"):
        graphs.topological_sort(graphs.graph_from_adjacency(A), "dfs")
    order, ok = topological_order(A)
    assert not bool(ok) and int(order[-1]) == -1


def test_topological_order_jit_and_vmap():
    rng = np.random.default_rng(0)
    As = np.triu(rng.random((5, 6, 6)) < 0.4, 1)
    As[3, 5, 0] = True  # one cyclic graph in the batch
    orders, oks = jax.jit(jax.vmap(graphs.topological_order))(As)
    for A, order, ok in zip(As, orders, oks, strict=True):
        G = nx.DiGraph(A)
        assert bool(ok) == nx.is_directed_acyclic_graph(G)
        if ok:
            assert order.tolist() == list(nx.lexicographical_topological_sort(G))


def test_jaxpr_graph_is_a_dag_that_its_equation_order_sorts():
    def f(x, w):
        h = jnp.tanh(x @ w)
        return jnp.sum(h * jnp.sin(h)) + jnp.sum(w**2)
    cj = jax.make_jaxpr(f)(jnp.ones((2, 3)), jnp.ones((3, 4)))
    g = graphs.jaxpr_graph(cj)
    assert list(g) == list(range(len(cj.jaxpr.eqns)))
    # independent edge set: networkx graph built from the variables' producers and readers here
    G = nx.DiGraph()
    G.add_nodes_from(range(len(cj.jaxpr.eqns)))
    writes = {str(v): i for i, e in enumerate(cj.jaxpr.eqns) for v in e.outvars}
    for j, e in enumerate(cj.jaxpr.eqns):
        G.add_edges_from((writes[str(v)], j) for v in e.invars if str(v) in writes)
    assert sorted(G.edges) == sorted((u, v) for u in g for v in g[u])
    assert graphs.is_topological_order(g, range(len(g)))  # a jaxpr is already topologically ordered
    for method in ("kahn", "dfs"):
        assert graphs.is_topological_order(g, graphs.topological_sort(g, method))


# ------------------------------------------------------------------------------------ adjacency matrices

@SETTINGS
@given(digraphs(), st.integers(0, 6))
def test_walk_counts_match_networkx_and_numpy(g, k):
    A, G = g
    W = walk_counts(A, k)
    np.testing.assert_array_equal(W, np.linalg.matrix_power(A.astype(np.int64), k))
    walks = nx.number_of_walks(G, k)
    np.testing.assert_array_equal(W, [[walks[u][v] for v in range(len(A))] for u in range(len(A))])


@SETTINGS
@given(digraphs())
def test_transitive_closure_matches_networkx(g):
    A, G = g
    C = nx.transitive_closure(G, reflexive=False)
    want = np.zeros_like(A)
    for u, v in C.edges:
        want[u, v] = True
    np.testing.assert_array_equal(transitive_closure(A), want)


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
@pytest.mark.parametrize("normalized", [False, True])
def test_degrees_and_laplacian_match_networkx(dtype, normalized):
    G = nx.gnp_random_graph(9, 0.35, seed=3)
    G.add_node(9)  # an isolated node
    rng = np.random.default_rng(1)
    for u, v in G.edges:
        G[u][v]["weight"] = rng.uniform(0.5, 2.0)
    A = jnp.asarray(nx.to_numpy_array(G, nodelist=range(10)), dtype)
    din, dout = graphs.degrees(A)
    want_deg = [G.degree(u, weight="weight") for u in range(10)]
    np.testing.assert_allclose(din, want_deg, rtol=TOL[np.dtype(dtype)])
    np.testing.assert_allclose(dout, want_deg, rtol=TOL[np.dtype(dtype)])
    L = graphs.laplacian(A, normalized)
    nx_L = nx.normalized_laplacian_matrix if normalized else nx.laplacian_matrix
    want = nx_L(G, nodelist=range(10)).toarray()
    np.testing.assert_allclose(L, want, rtol=TOL[np.dtype(dtype)], atol=TOL[np.dtype(dtype)])
    eig = np.linalg.eigvalsh(np.asarray(L, np.float64))
    assert np.sum(np.abs(eig) < 1e-3) == nx.number_connected_components(G)


# --------------------------------------------------------------------------------------- attention graphs

@pytest.mark.parametrize("T", [1, 7])
def test_causal_mask_is_the_transitive_tournament(T):
    M = np.asarray(graphs.causal_mask(T))
    np.testing.assert_array_equal(M, np.tril(np.ones((T, T), bool)))
    strict = M & ~np.eye(T, dtype=bool)
    G = nx.DiGraph(strict)
    assert nx.is_directed_acyclic_graph(G)
    assert bool(graphs.is_dag(strict)) and not bool(graphs.is_dag(M))  # self-loops are cycles
    assert nx.transitive_closure(G).number_of_edges() == G.number_of_edges()  # already transitive
    assert graphs.topological_sort(graphs.graph_from_adjacency(strict)) == list(range(T))[::-1]


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_attention_weights_against_numpy(dtype):
    T, D = 6, 4
    rng = np.random.default_rng(5)
    q, k = jnp.asarray(rng.normal(size=(2, T, D)), dtype)
    W = jax.jit(graphs.attention_weights)(q, k, graphs.causal_mask(T))
    qn, kn = np.asarray(q, np.float64), np.asarray(k, np.float64)
    want = np.zeros((T, T))
    for i in range(T):  # naive loop: softmax over the visible keys only
        s = np.array([qn[i] @ kn[j] / np.sqrt(D) for j in range(i + 1)])
        want[i, : i + 1] = np.exp(s - s.max()) / np.exp(s - s.max()).sum()
    np.testing.assert_allclose(W, want, rtol=TOL[np.dtype(dtype)], atol=TOL[np.dtype(dtype)] * 1e-2)
    assert W.dtype == dtype


@pytest.mark.parametrize("residual", [True, False])
def test_attention_rollout_against_naive_loop(residual):
    L, H, T = 3, 2, 5
    logits = np.random.default_rng(6).normal(size=(L, H, T, T))
    e = np.exp(logits) * np.tril(np.ones((T, T)))
    W = jnp.asarray(e / e.sum(-1, keepdims=True))  # causal attention weights
    R = graphs.attention_rollout(W, residual=residual)
    want = np.eye(T)
    for layer in np.asarray(W):
        a = layer.mean(axis=0)
        if residual:
            a = 0.5 * a + 0.5 * np.eye(T)
            a = a / a.sum(axis=1, keepdims=True)
        want = a @ want
    np.testing.assert_allclose(R, want, rtol=TOL[np.dtype("float64")])
    np.testing.assert_allclose(R.sum(axis=1), np.ones(T), rtol=TOL[np.dtype("float64")])
    np.testing.assert_array_equal(np.triu(np.asarray(R), 1), 0.0)  # causal stays causal
    # as paths: rollout (no residual) = sum over all paths of products of edge weights, by brute force
    if not residual:
        Wm = np.asarray(W).mean(axis=1)
        brute = np.zeros((T, T))
        for i in range(T):
            for j in range(T):
                for a in range(T):
                    for b in range(T):
                        brute[i, j] += Wm[2, i, a] * Wm[1, a, b] * Wm[0, b, j]
        np.testing.assert_allclose(R, brute, rtol=TOL[np.dtype("float64")])



def test_attention_graph_gradients_fungpt_match_jax():
    rng = np.random.default_rng(7)
    q, k = jnp.asarray(rng.normal(size=(2, 2, 4, 3)))  # (layers, T, D) pairs
    c = jnp.asarray(rng.normal(size=(4, 4)))

    def f(q, k):  # a scalar of the rollout of two causal attention layers
        W = jax.vmap(graphs.attention_weights, in_axes=(0, 0, None))(q, k, graphs.causal_mask(4))
        return jnp.sum(graphs.attention_rollout(W) * c)

    want = jax.jit(jax.grad(f, argnums=(0, 1)))(q, k)  # jitted: one compile each, not one per primitive
    got = jax.jit(fungpt.grad(f, argnums=(0, 1)))(q, k)
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(g, w, rtol=TOL[np.dtype("float64")], atol=1e-12)
    # and the Laplacian's quadratic form xᵀLx = ½ Σ A_uv (x_u − x_v)²: gradient 2Lx for symmetric A
    B = np.triu(rng.random((5, 5)), 1)
    A = jnp.asarray(B + B.T)
    x = jnp.asarray(rng.normal(size=5))
    gx = jax.jit(fungpt.grad(lambda x: x @ graphs.laplacian(A) @ x))(x)
    np.testing.assert_allclose(gx, 2 * np.asarray(graphs.laplacian(A)) @ np.asarray(x), rtol=TOL[np.dtype("float64")])

# ----------------------------------------------------------------------------------------- experiment

@pytest.mark.slow
def test_experiment_runs_quick(tmp_path):
    """Smoke test: the chapter's experiment in --quick mode, in this process (no second jax import)."""
    path = pathlib.Path(__file__).resolve().parents[1] / "experiments" / "ch08_graphs.py"
    spec = importlib.util.spec_from_file_location("ch08_graphs", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.main(["--quick", "--out", str(tmp_path)])
    assert (tmp_path / "ch08_graphs.json").exists()


# --------------------------------------------------------------------------- extremes (issue 17)

@pytest.mark.parametrize("n", [13, 17, 100])  # not powers of two: one squaring round fewer must fail
def test_transitive_closure_on_a_long_path_and_a_hamiltonian_cycle(n):
    perm = np.random.default_rng(n).permutation(n)  # relabel so the path is not the superdiagonal
    path = np.stack([perm[:-1], perm[1:]], 1)
    cycle = np.concatenate([path, [[perm[-1], perm[0]]]])
    for edges in (path, cycle):
        g = nx.DiGraph(edges.tolist())
        want = np.zeros((n, n), bool)
        for u in range(n):
            # walks of length >= 1: u reaches itself only on a cycle
            for v in nx.descendants(g, u) | ({u} if nx.has_path(g, u, u) and len(edges) == n else set()):
                want[u, v] = True
        got = graphs.transitive_closure(graphs.adjacency_matrix(edges, n))
        np.testing.assert_array_equal(got, want)
        assert bool(graphs.has_cycle(graphs.adjacency_matrix(edges, n))) == (len(edges) == n)


def test_adjacency_matrix_refuses_edges_outside_the_node_range():
    for bad in ([[0, 3]], [[0, -1]], [[5, 0]]):
        with pytest.raises(ValueError, match=r"nodes 0\.\.2"):
            graphs.adjacency_matrix(jnp.asarray(bad), 3)
    # under jit a floating result is all NaN; a bool one drops the edge, never wraps -1 around to node 2
    w = jax.jit(lambda e: graphs.adjacency_matrix(e, 3, jnp.ones(1)))(jnp.asarray([[0, 5]]))
    assert np.isnan(w).all()
    b = jax.jit(lambda e: graphs.adjacency_matrix(e, 3))(jnp.asarray([[0, -1]]))
    assert not np.asarray(b).any()


def test_empty_graph():
    A = jnp.zeros((0, 0), bool)
    order, ok = graphs.topological_order(A)
    assert order.shape == (0,) and bool(ok) and list(nx.topological_sort(nx.DiGraph())) == []
    assert graphs.transitive_closure(A).shape == (0, 0) and not bool(graphs.has_cycle(A))
    assert graphs.topological_sort({}) == []
