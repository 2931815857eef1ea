"""Chapter 11, topology & manifolds: metric spaces, continuity, manifolds and embeddings, Lipschitz maps.
Generalization theory (growth functions, VC and Rademacher bounds, margins, bias-variance) is `fungpt.generalization`;
its first names (`pac_bound`, `rademacher_linear`, ...) stay importable from here.

Points are 1-D arrays (one point per call; `pairwise_distances` and `jax.vmap` batch them). Derivatives
(metric tensors, Jacobians) use our autodiff, `fungpt.jacfwd` / `fungpt.jacrev`.

    D = pairwise_distances(X, X, euclidean)
    Y = isomap(X, n_components=2, n_neighbors=10)
    L = lipschitz_upper_bound([W1, W2, W3])   # ≥ every empirical Lipschitz ratio of the MLP
"""
from __future__ import annotations

import functools
from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

import fungpt
from fungpt._arrays import norm2
from fungpt.generalization import (  # noqa: F401  generalization theory lives in its own module; re-exported here
    pac_bound,
    pac_sample_size,
    rademacher_bound,
    rademacher_linear,
    rademacher_linear_bound,
)
from fungpt.linalg import spectral_norm  # owned by chapter 2; re-exported here

# ---------------------------------------------------------------------------------------------------
# Metric spaces.


def _pair(x, y, name):
    x, y = jnp.asarray(x), jnp.asarray(y)
    if x.ndim != 1 or x.shape != y.shape:
        raise ValueError(f"{name}: expected two points of shape (d,), got {x.shape} and {y.shape}")
    if x.dtype != y.dtype:
        raise TypeError(f"{name}: points have different dtypes {x.dtype} and {y.dtype}")
    return x, y


def euclidean(x, y) -> jax.Array:
    """``d(x, y) = ‖x - y‖₂ = sqrt(Σ (x_i - y_i)²)``; x, y shape (d,)."""
    x, y = _pair(x, y, "euclidean")
    return norm2(x - y)


def manhattan(x, y) -> jax.Array:
    """``d(x, y) = ‖x - y‖₁ = Σ |x_i - y_i|`` (taxicab)."""
    x, y = _pair(x, y, "manhattan")
    return jnp.sum(jnp.abs(x - y))


def chebyshev(x, y) -> jax.Array:
    """``d(x, y) = ‖x - y‖_∞ = max_i |x_i - y_i|``."""
    x, y = _pair(x, y, "chebyshev")
    return jnp.max(jnp.abs(x - y))


def minkowski(x, y, p: float = 2.0) -> jax.Array:
    """``d_p(x, y) = (Σ |x_i - y_i|^p)^{1/p}``; a metric for p ≥ 1 (p < 1 breaks the triangle inequality)."""
    if not p > 0:
        raise ValueError(f"minkowski: p must be > 0, got {p!r}")
    x, y = _pair(x, y, "minkowski")
    a = jnp.abs(x - y)
    m = jnp.max(a)  # scale by the largest term so a^p neither overflows nor underflows
    safe = jnp.where(m > 0, m, jnp.ones_like(m))
    return jnp.where(m > 0, safe * jnp.sum((a / safe) ** p) ** (1.0 / p), jnp.zeros_like(m))


def cosine_distance(x, y) -> jax.Array:
    """``d(x, y) = 1 - ⟨x, y⟩ / (‖x‖‖y‖)``. Not a metric: d(x, 2x) = 0 and the triangle inequality fails."""
    x, y = _pair(x, y, "cosine_distance")
    return 1 - jnp.dot(x / norm2(x), y / norm2(y))  # normalise first: ‖x‖‖y‖ overflows at 1e20 in float32


def sphere_geodesic(x, y) -> jax.Array:
    """Great-circle distance between the directions of x and y on the unit sphere: the angle
    ``θ = arccos⟨x̂, ŷ⟩``, computed as ``2·atan2(‖x̂ - ŷ‖, ‖x̂ + ŷ‖)`` (accurate near 0 and π too)."""
    x, y = _pair(x, y, "sphere_geodesic")
    u, v = x / norm2(x), y / norm2(y)
    return 2 * jnp.arctan2(norm2(u - v), norm2(u + v))


@functools.partial(jax.jit, static_argnames="metric")
def pairwise_distances(X, Y, metric: Callable = euclidean) -> jax.Array:
    """``D[i, j] = metric(X[i], Y[j])``; X (n, d), Y (m, d) → D (n, m). Any metric above, or your own."""
    X, Y = jnp.asarray(X), jnp.asarray(Y)
    if X.ndim != 2 or Y.ndim != 2 or X.shape[1] != Y.shape[1]:
        raise ValueError(f"pairwise_distances: expected (n, d) and (m, d), got {X.shape} and {Y.shape}")
    return jax.vmap(lambda x: jax.vmap(lambda y: metric(x, y))(Y))(X)


@functools.partial(jax.jit, static_argnames="metric")
def metric_axiom_violations(metric: Callable, points) -> dict[str, jax.Array]:
    """How badly `metric` breaks each metric-space axiom on a finite set of points (n, d): for each of

    - "nonnegativity":  max(-d(x, y)),
    - "identity":       max |d(x, x)|  (d(x, x) = 0),
    - "indiscernibles": 1 if some x ≠ y has d(x, y) = 0 else 0,
    - "symmetry":       max |d(x, y) - d(y, x)|,
    - "triangle":       max(d(x, z) - d(x, y) - d(y, z)),

    the worst violation, clipped at 0 (0 = holds on these points). O(n³) memory for the triangle check.
    """
    P = jnp.asarray(points)
    D = pairwise_distances(P, P, metric)
    zero = jnp.zeros((), D.dtype)
    distinct = jnp.any(P[:, None, :] != P[None, :, :], axis=-1)
    tri = D[:, None, :] - D[:, :, None] - D[None, :, :]  # tri[i, j, k] = d(i, k) - d(i, j) - d(j, k)
    return {
        "nonnegativity": jnp.maximum(jnp.max(-D), zero),
        "identity": jnp.max(jnp.abs(jnp.diagonal(D))),
        "indiscernibles": jnp.any(distinct & (D == 0)).astype(D.dtype),
        "symmetry": jnp.max(jnp.abs(D - D.T)),
        "triangle": jnp.maximum(jnp.max(tri), zero),
    }


# ---------------------------------------------------------------------------------------------------
# Continuity: epsilon-delta, numerically.


def continuity_delta(f: Callable, x0, eps: float, key, delta_max: float = 1.0, n_halvings: int = 40,
                     n_samples: int = 512) -> jax.Array:
    """The largest δ ∈ {δ_max·2^{-i}} such that ``‖f(x) - f(x₀)‖ < ε`` for every sampled x with ‖x - x₀‖ ≤ δ.

    The ε-δ definition of continuity at x₀, checked by sampling: random directions and radii in the ball
    (plus the sphere's radius itself). Returns 0 when no tried δ works — the numerical signature of a
    discontinuity at x₀ (for ε below the jump). For an L-Lipschitz f the true δ is ≥ ε/L.
    x0 shape (d,); f maps (d,) to any shape.
    """
    x0 = jnp.asarray(x0)
    if x0.ndim != 1 or not eps > 0:
        raise ValueError(f"continuity_delta: need x0 of shape (d,) and eps > 0, got {x0.shape}, {eps!r}")
    return _continuity_delta(f, x0, eps, key, delta_max, n_halvings, n_samples)


@functools.partial(jax.jit, static_argnums=(0, 4, 5, 6))
def _continuity_delta(f, x0, eps, key, delta_max, n_halvings, n_samples):
    kd, kr = jax.random.split(key)
    dirs = jax.random.normal(kd, (n_samples, x0.shape[0]), x0.dtype)
    dirs = dirs / jnp.sqrt(jnp.sum(dirs * dirs, axis=1, keepdims=True))
    radii = jnp.concatenate([jnp.ones((1,), x0.dtype), jax.random.uniform(kr, (n_samples - 1,), x0.dtype)])
    deltas = jnp.asarray(delta_max * 0.5 ** np.arange(n_halvings), x0.dtype)
    f0 = jnp.asarray(f(x0))

    def worst(delta):
        xs = x0[None, :] + (delta * radii)[:, None] * dirs
        gap = jax.vmap(lambda x: norm2(jnp.ravel(jnp.asarray(f(x)) - f0)))(xs)
        return jnp.max(gap)

    ok = jax.vmap(worst)(deltas) < eps
    # The first (largest) δ that works; sampling shrinks the ball monotonically so later ones work too.
    return jnp.where(jnp.any(ok), deltas[jnp.argmax(ok)], jnp.zeros((), x0.dtype))


# ---------------------------------------------------------------------------------------------------
# Manifolds and embeddings.


def pca(X, n_components: int) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Principal component analysis: the best rank-k linear subspace in the least-squares sense.

    Centre X (n, d), take the SVD ``X_c = U S Vᵀ``; components are the first k rows of Vᵀ (k, d),
    scores ``Z = X_c V_k`` (n, k), explained variances ``S_k² / (n - 1)`` (k,). Signs: each component's
    largest-|.| coordinate is made positive (SVD signs are arbitrary).
    """
    X = jnp.asarray(X)
    if X.ndim != 2 or not 1 <= n_components <= min(X.shape):
        raise ValueError(f"pca: need X of shape (n, d) and 1 <= n_components <= min(n, d), "
                         f"got {X.shape}, {n_components!r}")
    Xc = X - jnp.mean(X, axis=0, keepdims=True)
    _, s, vt = jnp.linalg.svd(Xc, full_matrices=False)
    vt = vt[:n_components]
    sign = jnp.sign(jnp.take_along_axis(vt, jnp.argmax(jnp.abs(vt), axis=1)[:, None], axis=1))
    vt = vt * sign
    return Xc @ vt.T, vt, s[:n_components] ** 2 / (X.shape[0] - 1)


def classical_mds(D, n_components: int) -> jax.Array:
    """Classical (Torgerson) multidimensional scaling: points whose Euclidean distances match D.

    ``B = -½ J D^{∘2} J`` with ``J = I - 11ᵀ/n`` is the Gram matrix of centred points when D is Euclidean;
    the embedding is ``Y = V_k Λ_k^{1/2}`` from B's top-k eigenpairs (negative eigenvalues clipped to 0).
    D (n, n) symmetric → Y (n, k). Exact (up to a rigid motion) when D comes from points in R^k.
    """
    D = jnp.asarray(D)
    if D.ndim != 2 or D.shape[0] != D.shape[1] or not 1 <= n_components <= D.shape[0]:
        raise ValueError(f"classical_mds: need a square distance matrix and 1 <= n_components <= n, "
                         f"got {D.shape}, {n_components!r}")
    n = D.shape[0]
    J = jnp.eye(n, dtype=D.dtype) - jnp.full((n, n), 1.0 / n, D.dtype)
    B = -0.5 * J @ (D * D) @ J
    w, V = jnp.linalg.eigh((B + B.T) / 2)
    w, V = w[::-1][:n_components], V[:, ::-1][:, :n_components]
    return V * jnp.sqrt(jnp.maximum(w, jnp.zeros_like(w)))[None, :]


def knn_graph(X, n_neighbors: int) -> jax.Array:
    """Symmetric k-nearest-neighbour graph: ``W[i, j] = ‖x_i - x_j‖`` if j is among i's k nearest (or i
    among j's), ``+inf`` otherwise, 0 on the diagonal. X (n, d) → W (n, n)."""
    X = jnp.asarray(X)
    n = X.shape[0]
    if X.ndim != 2 or not 1 <= n_neighbors < n:
        raise ValueError(f"knn_graph: need X of shape (n, d) and 1 <= n_neighbors < n, "
                         f"got {X.shape}, {n_neighbors!r}")
    D = pairwise_distances(X, X)
    nearest = jnp.argsort(D, axis=1)[:, 1:n_neighbors + 1]  # column 0 is the point itself
    rows = jnp.repeat(jnp.arange(n), n_neighbors)
    adj = jnp.zeros((n, n), bool).at[rows, nearest.ravel()].set(True)
    adj = adj | adj.T | jnp.eye(n, dtype=bool)
    return jnp.where(adj, D, jnp.full_like(D, jnp.inf))


def shortest_paths(W) -> jax.Array:
    """All-pairs shortest path lengths by Floyd-Warshall: ``D ← min(D, D[:, k] + D[k, :])`` for k = 1..n.

    W (n, n) edge weights (``+inf`` = no edge, non-negative); O(n³) work in n vectorized steps.
    """
    W = jnp.asarray(W)
    if W.ndim != 2 or W.shape[0] != W.shape[1]:
        raise ValueError(f"shortest_paths: expected a square weight matrix, got {W.shape}")

    def relax(k, D):
        return jnp.minimum(D, D[:, k][:, None] + D[k, :][None, :])

    return lax.fori_loop(0, W.shape[0], relax, W)


def isomap(X, n_components: int = 2, n_neighbors: int = 10) -> jax.Array:
    """Isomap (Tenenbaum et al. 2000): classical MDS on geodesic distances, approximated by shortest paths
    in the k-nearest-neighbour graph. Unrolls a Swiss roll that PCA cannot. X (n, d) → Y (n, k).

    Raises ValueError when the neighbour graph is disconnected (increase n_neighbors).
    """
    connected, Y = _isomap(jnp.asarray(X), n_components, n_neighbors)
    try:
        connected = bool(connected)
    except jax.errors.ConcretizationTypeError:  # under an outer jit: cannot check, NaNs propagate
        connected = True
    if not connected:
        raise ValueError(f"isomap: the {n_neighbors}-nearest-neighbour graph is disconnected; "
                         f"increase n_neighbors")
    return Y


@functools.partial(jax.jit, static_argnames=("n_components", "n_neighbors"))
def _isomap(X, n_components, n_neighbors):
    G = shortest_paths(knn_graph(X, n_neighbors))
    return jnp.all(jnp.isfinite(G)), classical_mds(G, n_components)


def swiss_roll(key, n: int, noise: float = 0.0, dtype=jnp.float32) -> tuple[jax.Array, jax.Array]:
    """n points on a Swiss roll, the 2-D sheet ``(t cos t, h, t sin t)``, t ∈ [1.5π, 4.5π], h ∈ [0, 21]
    (scikit-learn's parametrization). Returns (X (n, 3), t (n,)); noise adds N(0, noise²) per coordinate."""
    kt, kh, kn = jax.random.split(key, 3)
    t = 1.5 * np.pi * (1 + 2 * jax.random.uniform(kt, (n,), dtype))
    h = 21 * jax.random.uniform(kh, (n,), dtype)
    X = jnp.stack([t * jnp.cos(t), h, t * jnp.sin(t)], axis=1)
    return X + jnp.asarray(noise, dtype) * jax.random.normal(kn, X.shape, dtype), t


def sphere(uv, radius: float = 1.0) -> jax.Array:
    """The sphere's chart ``(θ, φ) ↦ r(sin θ cos φ, sin θ sin φ, cos θ)``; uv shape (2,) → (3,)."""
    th, ph = uv[0], uv[1]
    return radius * jnp.stack([jnp.sin(th) * jnp.cos(ph), jnp.sin(th) * jnp.sin(ph), jnp.cos(th)])


def torus(uv, R: float = 2.0, r: float = 1.0) -> jax.Array:
    """The torus ``(u, v) ↦ ((R + r cos v) cos u, (R + r cos v) sin u, r sin v)``; uv (2,) → (3,)."""
    u, v = uv[0], uv[1]
    ring = R + r * jnp.cos(v)
    return jnp.stack([ring * jnp.cos(u), ring * jnp.sin(u), r * jnp.sin(v)])


def metric_tensor(param: Callable, uv) -> jax.Array:
    """The induced (first fundamental form) metric ``g = JᵀJ``, J = ∂param/∂uv by our forward mode.

    Lengths on the surface: ``ds² = du ᵀ g du``; area element ``sqrt(det g)``. uv (k,) → g (k, k).
    """
    J = fungpt.jacfwd(param)(jnp.asarray(uv))
    return J.T @ J


def surface_area(param: Callable, lo, hi, n: int = 128) -> jax.Array:
    """``∫∫ sqrt(det g(u, v)) du dv`` over the box [lo, hi] by the midpoint rule on an n × n grid."""
    lo, hi = np.asarray(lo, np.float64), np.asarray(hi, np.float64)
    if lo.shape != (2,) or hi.shape != (2,) or np.any(hi <= lo):
        raise ValueError(f"surface_area: need lo < hi, both of shape (2,), got {lo}, {hi}")
    return _surface_area(param, tuple(lo.tolist()), tuple(hi.tolist()), n)


@functools.partial(jax.jit, static_argnums=(0, 1, 2, 3))
def _surface_area(param, lo, hi, n):
    lo, hi = np.asarray(lo), np.asarray(hi)
    dtype = jax.dtypes.canonicalize_dtype(np.float64)
    h = (hi - lo) / n
    grid = [lo[i] + h[i] * (np.arange(n) + 0.5) for i in range(2)]
    uv = jnp.asarray(np.stack(np.meshgrid(*grid, indexing="ij"), -1).reshape(-1, 2), dtype)
    dA = jax.vmap(lambda p: jnp.sqrt(jnp.linalg.det(metric_tensor(param, p))))(uv)
    return jnp.sum(dA) * jnp.asarray(h[0] * h[1], dtype)


def sphere_exp(p, v) -> jax.Array:
    """Exponential map of the unit sphere at p: walk the great circle from p with initial velocity v
    (tangent, ⟨p, v⟩ = 0) for length ‖v‖: ``exp_p(v) = cos‖v‖·p + sin‖v‖·v/‖v‖``."""
    p, v = _pair(p, v, "sphere_exp")
    t = norm2(v)
    safe = jnp.where(t > 0, t, jnp.ones_like(t))
    sinc = jnp.where(t > 0, jnp.sin(safe) / safe, jnp.ones_like(t))  # sin t / t → 1 as t → 0
    return jnp.cos(t) * p + sinc * v


def sphere_log(p, q) -> jax.Array:
    """Logarithm map of the unit sphere at p (inverse of `sphere_exp`): the tangent vector at p pointing
    to q with length the geodesic distance, ``θ·(q - cos θ·p)/‖q - cos θ·p‖``, θ = d(p, q).
    Undefined at the antipode q = -p."""
    p, q = _pair(p, q, "sphere_log")
    th = sphere_geodesic(p, q)
    w = q - jnp.cos(th) * p
    nw = norm2(w)
    safe = jnp.where(nw > 0, nw, jnp.ones_like(nw))
    return jnp.where(nw > 0, th / safe, jnp.zeros_like(nw)) * w


# ---------------------------------------------------------------------------------------------------
# Lipschitz mappings.


def spectral_normalize(W, key, iters: int = 100) -> jax.Array:
    """``W / σ₁(W)``: a linear map with Lipschitz constant 1 (Miyato et al. 2018, spectral normalization);
    σ₁ by `fungpt.linalg.spectral_norm` (power iteration on WᵀW, `iters` steps). A zero W has no
    normalisation: NaN."""
    return W / spectral_norm(W, key, iters)


def lipschitz_upper_bound(weights: Sequence) -> jax.Array:
    """``L ≤ Π_i σ₁(W_i)`` for an MLP ``x ↦ W_L φ(... φ(W_1 x))`` whose activations φ are 1-Lipschitz
    (ReLU, tanh, GELU up to 1.13): Lipschitz constants multiply under composition."""
    out = jnp.ones((), jnp.asarray(weights[0]).dtype)
    for W in weights:
        out = out * jnp.linalg.norm(jnp.asarray(W), 2)
    return out


@functools.partial(jax.jit, static_argnames=("f", "method"))
def empirical_lipschitz(f: Callable, X, method: str = "jacobian") -> jax.Array:
    """A lower bound on f's Lipschitz constant (w.r.t. ‖·‖₂) from samples X (n, d):

    - "jacobian": ``max_i σ₁(J_f(x_i))`` with J from our reverse mode (the local Lipschitz constant);
    - "pairs":    ``max_{i≠j} ‖f(x_i) - f(x_j)‖ / ‖x_i - x_j‖``.
    """
    X = jnp.asarray(X)
    if X.ndim != 2:
        raise ValueError(f"empirical_lipschitz: expected samples of shape (n, d), got {X.shape}")
    if method == "jacobian":
        J = jax.vmap(fungpt.jacrev(lambda x: jnp.ravel(f(x))))(X)
        return jnp.max(jnp.linalg.norm(J, 2, axis=(1, 2)))
    if method == "pairs":
        Y = jax.vmap(lambda x: jnp.ravel(f(x)))(X)
        num, den = pairwise_distances(Y, Y), pairwise_distances(X, X)
        off = den > 0
        return jnp.max(jnp.where(off, num / jnp.where(off, den, jnp.ones_like(den)), jnp.zeros_like(den)))
    raise ValueError(f"empirical_lipschitz: method must be 'jacobian' or 'pairs', got {method!r}")
