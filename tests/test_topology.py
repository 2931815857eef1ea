"""Chapter 11: metrics against scipy.spatial, embeddings against scikit-learn and closed forms, Lipschitz
bounds against SVD, (generalization: tests/test_generalization.py)."""
import importlib.util
import math
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.sparse.csgraph
import scipy.spatial.distance as ssd
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.decomposition import PCA
from sklearn.manifold import Isomap

from fungpt import topology as T
from tests.helpers import EXACT

ROOT = pathlib.Path(__file__).resolve().parents[1]
DTYPES = [np.float32, np.float64]
METRICS = [(T.euclidean, "euclidean"), (T.manhattan, "cityblock"), (T.chebyshev, "chebyshev"),
           (lambda x, y: T.minkowski(x, y, 3.0), "minkowski"), (T.cosine_distance, "cosine")]


@pytest.mark.parametrize("dtype", DTYPES)
def test_metrics_match_scipy_cdist(dtype):
    rng = np.random.default_rng(0)
    X, Y = rng.standard_normal((6, 4)).astype(dtype), rng.standard_normal((5, 4)).astype(dtype)
    for metric, name in METRICS:
        kw = {"p": 3.0} if name == "minkowski" else {}
        ref = ssd.cdist(X.astype(np.float64), Y.astype(np.float64), name, **kw)
        got = T.pairwise_distances(X, Y, metric)
        assert got.dtype == dtype
        np.testing.assert_allclose(got, ref, rtol=EXACT[np.dtype(dtype)] * 10, err_msg=name)


def test_sphere_geodesic_matches_arccos_and_haversine():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((20, 3))
    U = X / np.linalg.norm(X, axis=1, keepdims=True)
    D = T.pairwise_distances(X, X, T.sphere_geodesic)
    np.testing.assert_allclose(D, np.arccos(np.clip(U @ U.T, -1, 1)), atol=1e-7)  # arccos is ill-conditioned at 0
    lat, lon = np.arcsin(U[:, 2]), np.arctan2(U[:, 1], U[:, 0])
    dl = lat[:, None] - lat[None, :]
    hav = np.sin(dl / 2) ** 2 + np.cos(lat[:, None]) * np.cos(lat[None, :]) * np.sin((lon[:, None] - lon) / 2) ** 2
    np.testing.assert_allclose(D, 2 * np.arcsin(np.sqrt(hav)), atol=1e-12)
    # Near-identical and antipodal points stay accurate (where arccos loses half the digits).
    e = np.array([1.0, 0.0, 0.0])
    np.testing.assert_allclose(T.sphere_geodesic(e, np.array([1.0, 1e-9, 0.0])), 1e-9, rtol=1e-12)
    np.testing.assert_allclose(T.sphere_geodesic(e, -e), np.pi, rtol=1e-15)


points = st.integers(0, 2**16).map(lambda s: np.random.default_rng(s).standard_normal((7, 3)))


def minkowski_1_5(x, y):
    return T.minkowski(x, y, 1.5)


@settings(max_examples=10, deadline=None)
@given(P=points)
def test_true_metrics_satisfy_the_axioms(P):
    for metric in [T.euclidean, T.manhattan, T.chebyshev, minkowski_1_5, T.sphere_geodesic]:
        v = T.metric_axiom_violations(metric, P)
        for axiom in ["nonnegativity", "identity", "symmetry", "triangle"]:
            assert v[axiom] <= 1e-12, (axiom, v[axiom])
    assert T.metric_axiom_violations(T.euclidean, P)["indiscernibles"] == 0


def test_which_distances_fail_the_axioms():
    # Cosine distance: x=(1,0), y=(1,1)/√2, z=(0,1): d(x,z)=1 > d(x,y)+d(y,z) = 2(1-1/√2) ≈ 0.586.
    P = np.array([[1.0, 0.0], [1.0, 1.0] / np.sqrt(2), [0.0, 1.0], [2.0, 0.0]])
    v = T.metric_axiom_violations(T.cosine_distance, P)
    np.testing.assert_allclose(v["triangle"], 1 - 2 * (1 - 1 / np.sqrt(2)), rtol=1e-12)
    assert v["indiscernibles"] == 1  # d(x, 2x) = 0
    # Squared Euclidean on 0, 1, 2: 4 > 1 + 1.
    sq = lambda x, y: T.euclidean(x, y) ** 2
    np.testing.assert_allclose(T.metric_axiom_violations(sq, np.array([[0.0], [1.0], [2.0]]))["triangle"], 2.0)
    # Minkowski p = 1/2 on the unit square's corners: d((0,0),(1,1)) = 4 > 1 + 1.
    mp = lambda x, y: T.minkowski(x, y, 0.5)
    np.testing.assert_allclose(T.metric_axiom_violations(mp, np.array([[0.0, 0.0], [1.0, 0.0], [1.0, 1.0]]))
                               ["triangle"], 2.0, rtol=1e-12)
    # A "distance" that is not symmetric: d(x, y) = relu(y - x) summed.
    asym = lambda x, y: jnp.sum(jnp.maximum(y - x, 0.0))
    assert T.metric_axiom_violations(asym, np.array([[0.0], [1.0]]))["symmetry"] == 1.0


def test_distances_have_finite_gradients_at_zero():
    x = jnp.array([1.0, 2.0])
    g = jax.grad(T.euclidean)(x, x)
    assert np.all(np.isfinite(g))


def test_continuity_delta(key):
    k1, k2, k3 = jax.random.split(key, 3)
    eps = 1e-2
    # Linear map with Lipschitz constant 3: the best δ is ε/3; halving finds it within a factor 2.
    A = jnp.array([[3.0, 0.0], [0.0, 1.0]])
    d = float(T.continuity_delta(lambda x: A @ x, jnp.array([0.5, -1.0]), eps, k1))
    assert eps / 6 < d <= eps / 3
    # x² at 1: |x² - 1| < ε ⟺ |x - 1| < sqrt(1 + ε) - 1 (the tighter side).
    d = float(T.continuity_delta(lambda x: x**2, jnp.array([1.0]), eps, k2))
    exact = math.sqrt(1 + eps) - 1
    assert exact / 2 < d <= exact
    # A step is discontinuous at its jump: for ε below the jump no δ works.
    step = lambda x: (x >= 0).astype(x.dtype)
    assert float(T.continuity_delta(step, jnp.array([0.0]), 0.5, k3)) == 0.0
    assert float(T.continuity_delta(step, jnp.array([0.25]), 0.5, k3)) > 0.0


@pytest.mark.parametrize("dtype", DTYPES)
def test_pca_matches_sklearn(dtype):
    rng = np.random.default_rng(2)
    X = (rng.standard_normal((40, 5)) @ rng.standard_normal((5, 5))).astype(dtype)
    Z, comps, var = (np.asarray(a) for a in T.pca(X, 3))
    assert comps.dtype == dtype
    ref = PCA(3, svd_solver="full").fit(X.astype(np.float64))
    tol = 1e-4 if dtype == np.float32 else 1e-10
    signs = np.sign(np.sum(comps * ref.components_, axis=1))
    np.testing.assert_allclose(comps, ref.components_ * signs[:, None], atol=tol)
    np.testing.assert_allclose(var, ref.explained_variance_, rtol=tol)
    np.testing.assert_allclose(Z, ref.transform(X.astype(np.float64)) * signs, atol=tol * 10)


def test_classical_mds_recovers_euclidean_configurations():
    rng = np.random.default_rng(3)
    Y = rng.standard_normal((12, 2))
    D = ssd.squareform(ssd.pdist(Y))
    E = T.classical_mds(D, 2)
    np.testing.assert_allclose(ssd.squareform(ssd.pdist(np.asarray(E))), D, atol=1e-10)


def test_shortest_paths_match_scipy():
    rng = np.random.default_rng(4)
    X = rng.standard_normal((15, 3))
    W = T.knn_graph(X, 3)
    ref = scipy.sparse.csgraph.shortest_path(np.where(np.isinf(W), 0, W), method="D", directed=False)
    np.testing.assert_allclose(T.shortest_paths(W), ref, rtol=1e-12)


def test_isomap_matches_sklearn_and_unrolls_the_swiss_roll():
    X, t = T.swiss_roll(jax.random.key(0), 600, dtype=jnp.float64)
    Y = np.asarray(T.isomap(X, 2, n_neighbors=6))
    ref = Isomap(n_neighbors=6, n_components=2, eigen_solver="dense").fit_transform(np.asarray(X))
    for i in range(2):
        assert abs(np.corrcoef(Y[:, i], ref[:, i])[0, 1]) > 1 - 1e-8
    # The first coordinate is the arc length along the spiral, s(t) = (t·sqrt(1+t²) + asinh t)/2;
    # PCA's first coordinate is not.
    t = np.asarray(t)
    arc = (t * np.sqrt(1 + t * t) + np.arcsinh(t)) / 2
    assert abs(np.corrcoef(Y[:, 0], arc)[0, 1]) > 0.99
    assert abs(np.corrcoef(np.asarray(T.pca(X, 1)[0][:, 0]), arc)[0, 1]) < 0.9


def test_metric_tensors_and_areas():
    th, ph = 0.7, 1.9
    np.testing.assert_allclose(T.metric_tensor(T.sphere, jnp.array([th, ph])),
                               np.diag([1.0, np.sin(th) ** 2]), atol=1e-14)
    R, r, v = 2.0, 0.5, 0.3
    g = T.metric_tensor(lambda uv: T.torus(uv, R, r), jnp.array([1.1, v]))
    np.testing.assert_allclose(g, np.diag([(R + r * np.cos(v)) ** 2, r**2]), atol=1e-14)
    np.testing.assert_allclose(T.surface_area(T.sphere, [0, 0], [np.pi, 2 * np.pi], 64), 4 * np.pi, rtol=1e-3)
    np.testing.assert_allclose(T.surface_area(lambda uv: T.torus(uv, R, r), [0, 0], [2 * np.pi, 2 * np.pi], 16),
                               4 * np.pi**2 * R * r, rtol=1e-12)  # periodic integrand: midpoint rule is exact


def test_sphere_exp_log_are_inverse():
    rng = np.random.default_rng(5)
    for _ in range(5):
        p, q = (u / np.linalg.norm(u) for u in rng.standard_normal((2, 3)))
        v = T.sphere_log(p, q)
        np.testing.assert_allclose(np.dot(v, p), 0, atol=1e-14)  # tangent at p
        np.testing.assert_allclose(np.linalg.norm(v), np.arccos(np.dot(p, q)), rtol=1e-10)
        np.testing.assert_allclose(T.sphere_exp(p, v), q, atol=1e-14)
    np.testing.assert_allclose(T.sphere_exp(p, np.zeros(3)), p, atol=0)
    # A geodesic from the north pole along x: exp(t·e_x) = (sin t, 0, cos t).
    np.testing.assert_allclose(T.sphere_exp(np.array([0.0, 0, 1]), np.array([0.4, 0, 0])),
                               [np.sin(0.4), 0, np.cos(0.4)], atol=1e-15)


def test_spectral_norm_and_normalization(key):
    rng = np.random.default_rng(6)
    W = rng.standard_normal((7, 5))
    np.testing.assert_allclose(T.spectral_norm(W, key), np.linalg.norm(W, 2), rtol=1e-10)
    np.testing.assert_allclose(np.linalg.svd(np.asarray(T.spectral_normalize(W, key)), compute_uv=False)[0], 1.0,
                               rtol=1e-10)


def test_lipschitz_bounds_sandwich(key):
    rng = np.random.default_rng(7)
    Ws = [rng.standard_normal((4, 3)), rng.standard_normal((5, 4)), rng.standard_normal((2, 5))]
    mlp = lambda x: Ws[2] @ jnp.tanh(Ws[1] @ jnp.tanh(Ws[0] @ x))
    X = jax.random.normal(key, (64, 3), jnp.float64)
    upper = T.lipschitz_upper_bound(Ws)
    np.testing.assert_allclose(upper, np.prod([np.linalg.norm(W, 2) for W in Ws]), rtol=1e-12)
    jac, pairs = T.empirical_lipschitz(mlp, X), T.empirical_lipschitz(mlp, X, "pairs")
    assert 0 < pairs <= upper and 0 < jac <= upper
    # For a linear map every sample's Jacobian is W: the empirical constant is exact.
    np.testing.assert_allclose(T.empirical_lipschitz(lambda x: Ws[0] @ x, X), np.linalg.norm(Ws[0], 2), rtol=1e-12)
    assert T.empirical_lipschitz(lambda x: Ws[0] @ x, X, "pairs") <= np.linalg.norm(Ws[0], 2) * (1 + 1e-12)


def test_bad_input_errors():
    with pytest.raises(ValueError, match="shape"):
        T.euclidean(jnp.ones(3), jnp.ones(4))
    with pytest.raises(TypeError, match="dtypes"):
        T.euclidean(jnp.ones(3, jnp.float32), jnp.ones(3, jnp.float64))
    with pytest.raises(ValueError, match="p must be"):
        T.minkowski(jnp.ones(3), jnp.ones(3), 0.0)
    with pytest.raises(ValueError, match="n_components"):
        T.pca(jnp.ones((4, 3)), 5)
    with pytest.raises(ValueError, match="disconnected"):
        T.isomap(jnp.array([[0.0], [0.1], [10.0], [10.1]]), 1, n_neighbors=1)
    with pytest.raises(ValueError, match="method"):
        T.empirical_lipschitz(jnp.sin, jnp.ones((3, 2)), "sup")


@pytest.mark.slow  # ~20 s of compiles (Isomap, two trainings); tests/test_roadmap.py runs it in --quick mode too
def test_experiment_runs_quick(tmp_path):
    # In-process (import + main) under this strict harness: no second JAX start-up, shared compile caches.
    spec = importlib.util.spec_from_file_location("ch11_topology", ROOT / "experiments" / "ch11_topology.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.main(["--quick", "--out", str(tmp_path)])
    assert (tmp_path / "ch11_topology.json").exists() and (tmp_path / "ch11_generalization.png").exists()
    assert (tmp_path / "ch11_bounds.png").exists()


# --------------------------------------------------------------------------- extremes (issue 17)

@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=str)
def test_metrics_hold_across_the_dtype_range(dtype):
    # the sum of squares under/overflows at these scales; the scaled norm does not
    scales = [1e-30, 1e-25, 1.0, 1e20, 1e30] if dtype == np.float32 else [1e-250, 1.0, 1e250]
    for s in scales:
        x, y = np.array([3 * s, 0, 0], dtype), np.array([0, 4 * s, 0], dtype)
        ref = {"euclidean": 5.0, "minkowski": 5.0, "manhattan": 7.0, "chebyshev": 4.0}
        for name, want in ref.items():
            np.testing.assert_allclose(float(getattr(T, name)(x, y)) / s, want, rtol=1e-6)
        # scipy's own cosine overflows here (it squares first); the angle of (3, 0) and (3, 4) is exact: 1 - 3/5
        np.testing.assert_allclose(float(T.cosine_distance(x, x + y)), ssd.cosine([3.0, 0, 0], [3.0, 4, 0]),
                                   rtol=1e-6)
        np.testing.assert_allclose(float(T.sphere_geodesic(x, y)), np.pi / 2, rtol=1e-6)
    assert float(T.euclidean(np.array([3e-25, 4e-25], np.float32), np.zeros(2, np.float32))) > 0
    # the zero matrix: spectral norm 0 (the power iteration stops, no 0/0)
    assert float(T.spectral_norm(np.zeros((3, 3), dtype), jax.random.key(0))) == 0.0
