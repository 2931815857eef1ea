"""Chapter 11, generalization theory: why a model fitted on n samples does well on the next one.

Three ways to measure a hypothesis class, each turned into a bound on the test error:

- **counting** (`dichotomies`, `growth_function`, `sauer_shelah_bound`, `vc_dimension`): how many labelings
  Π_H(n) the class realizes on n points; finite classes and VC classes get `pac_bound` and `vc_bound`;
- **Rademacher complexity** (`empirical_rademacher`, exact by enumeration; `massart_bound`; `rademacher_linear`
  for norm-bounded linear maps; `two_layer_rademacher_bound` for a ReLU net of bounded path norm): how well
  the class correlates with random signs, giving `rademacher_bound` and the margin bound `margin_bound`;
- **bias–variance** (`bias_variance`): the expected squared test error split into bias², variance and noise.

    dichotomies("halfspace", X)          # the distinct labelings half-planes cut from the points X (n, 2)
    growth_function("halfspace", 10, 2)  # 92 = Cover's 2·Σ_{k≤2} C(9, k) < 2^10
    empirical_rademacher(values)         # E_σ max_k (1/n) Σ σ_i values[k, i], exact over all 2^n signs
"""
from __future__ import annotations

import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from fungpt._arrays import concrete, norm2

__all__ = ["CLASSES", "bias_variance", "dichotomies", "empirical_rademacher", "growth_function", "margin_bound",
           "massart_bound", "pac_bound", "pac_sample_size", "path_norm", "rademacher_bound", "rademacher_linear",
           "rademacher_linear_bound", "sauer_shelah_bound", "two_layer_rademacher_bound", "vc_bound",
           "vc_dimension"]

# ---------------------------------------------------------------------------------------------------
# Counting: dichotomies, growth functions, VC dimension.

CLASSES = ("threshold", "interval", "halfspace")


def _check_class(cls):
    if cls not in CLASSES:
        raise ValueError(f"unknown hypothesis class {cls!r}; expected one of {CLASSES}")


def dichotomies(cls: str, X) -> np.ndarray:
    """The distinct labelings ``(h(x_1), …, h(x_n))`` that the class realizes on the points X, exactly.

    - "threshold": ``h_t(x) = [x ≥ t]`` on the line, X (n,) or (n, 1);
    - "interval":  ``h_{a,b}(x) = [a ≤ x ≤ b]`` on the line;
    - "halfspace": ``h_{w,b}(x) = [⟨w, x⟩ + b > 0]`` in R^d, X (n, d) in general position (no d + 1 points on
      one hyperplane; checked, ValueError otherwise). Every labeling a half-space realizes is realized by one
      through d of the points, perturbed: so the hyperplanes through each d-subset S, both orientations,
      with all 2^d labelings of S, list them all; O(C(n, d)·2^d·n).

    Returns a bool array (K, n) of unique rows (lexicographic order); K = the class's count on these points.
    Integer combinatorics on concrete points (numpy), not a traced function.
    """
    _check_class(cls)
    X = np.asarray(X, np.float64)
    if cls != "halfspace":
        x = X.reshape(-1) if X.ndim == 2 and X.shape[1] == 1 else X
        if x.ndim != 1:
            raise ValueError(f"dichotomies: {cls} lives on the line, expected X (n,) or (n, 1), got {X.shape}")
        cuts = np.append(np.unique(x), np.inf)  # a threshold between consecutive points gives each labeling
        if cls == "threshold":
            labels = x[None, :] >= cuts[:, None]
        else:
            lo, hi = np.triu_indices(cuts.size - 1)
            labels = np.concatenate([(x >= cuts[lo, None]) & (x <= cuts[hi, None]), np.zeros((1, x.size), bool)])
        return np.unique(labels, axis=0)
    if X.ndim != 2:
        raise ValueError(f"dichotomies: halfspace expects points X (n, d), got {X.shape}")
    n, d = X.shape
    if n <= d + 1:  # d + 1 affinely independent points are shattered
        _check_general_position(X)
        return np.unique(np.array(list(itertools.product([False, True], repeat=n)), bool).reshape(-1, n), axis=0)
    _check_general_position(X)
    Xh = np.concatenate([X, np.ones((n, 1))], axis=1)
    patterns = np.array(list(itertools.product([False, True], repeat=d)), bool)  # (2^d, d)
    rows = []
    for S in itertools.combinations(range(n), d):
        normal = np.linalg.svd(Xh[list(S)])[2][-1]  # (w, b) with ⟨w, x_s⟩ + b = 0 on S
        side = Xh @ normal > 0
        for lab in (side, ~side):
            block = np.repeat(lab[None, :], len(patterns), axis=0)
            block[:, list(S)] = patterns
            rows.append(block)
    return np.unique(np.concatenate(rows), axis=0)


def _check_general_position(X):
    n, d = X.shape
    Xh = np.concatenate([X, np.ones((n, 1))], axis=1)
    scale = max(1.0, float(np.max(np.abs(X))))
    for S in itertools.combinations(range(n), min(n, d + 1)):
        s = np.linalg.svd(Xh[list(S)], compute_uv=False)
        if s[-1] <= 1e-9 * scale:
            raise ValueError(f"dichotomies: points {S} lie on one hyperplane; halfspace counting needs points in "
                             f"general position (perturb them)")


def growth_function(cls: str, n: int, d: int = 1) -> int:
    """``Π_H(n) = max over n points of the number of labelings``, in closed form (exact integers):

    thresholds ``n + 1``; intervals ``C(n + 1, 2) + 1``; half-spaces in R^d (Cover 1965, function counting)
    ``2·Σ_{k=0}^{d} C(n - 1, k)``, attained by any n points in general position. Π(0) = 1.
    """
    _check_class(cls)
    if n < 0 or d < 1:
        raise ValueError(f"growth_function: need n >= 0 and d >= 1, got {n!r}, {d!r}")
    if n == 0:
        return 1
    if cls == "threshold":
        return n + 1
    if cls == "interval":
        return math.comb(n + 1, 2) + 1
    return 2 * sum(math.comb(n - 1, k) for k in range(d + 1))


def sauer_shelah_bound(n: int, vc: int) -> int:
    """Sauer–Shelah lemma: a class of VC dimension v realizes at most ``Σ_{k=0}^{v} C(n, k) ≤ (e n / v)^v``
    labelings of n points: polynomial in n once n > v, where 2^n is exponential. Exact integer."""
    if n < 0 or vc < 0:
        raise ValueError(f"sauer_shelah_bound: need n >= 0 and vc >= 0, got {n!r}, {vc!r}")
    return sum(math.comb(n, k) for k in range(vc + 1))


def vc_dimension(cls: str, d: int = 1) -> int:
    """The largest n with ``Π_H(n) = 2^n`` (some n points are shattered), from `growth_function`:
    1 for thresholds, 2 for intervals, d + 1 for half-spaces in R^d."""
    n = 0
    while growth_function(cls, n + 1, d) == 2 ** (n + 1):
        n += 1
    return n


def vc_bound(train_error: float, n: int, vc: int, delta: float = 0.05) -> float:
    """Vapnik–Chervonenkis: with probability ≥ 1 - δ every h in a class of VC dimension v has
    ``err(h) ≤ err̂(h) + sqrt(8 (ln Π_H(2n) + ln(4/δ)) / n)``, with Π_H(2n) ≤ `sauer_shelah_bound`(2n, v)
    (from P(sup_h |err - err̂| > ε) ≤ 4 Π_H(2n) e^{-nε²/8}; 0-1 loss)."""
    _check_prob("vc_bound", delta=delta)
    if n < 1 or vc < 0:
        raise ValueError(f"vc_bound: need n >= 1 and vc >= 0, got {n!r}, {vc!r}")
    return train_error + math.sqrt(8 * (math.log(sauer_shelah_bound(2 * n, vc)) + math.log(4 / delta)) / n)


# ---------------------------------------------------------------------------------------------------
# Rademacher complexity.

_BLOCK_BITS = 12  # the low sign bits enumerated at once: 4096 sign vectors per step of the outer loop


def empirical_rademacher(values) -> jax.Array:
    """Exact empirical Rademacher complexity of a finite class, by enumerating all 2^n sign vectors:

    ``R̂(F) = E_σ max_k (1/n) Σ_i σ_i F[k, i]``, values F (K, n) = the K functions at the n sample points,
    σ uniform on {±1}^n. n ≤ 20 (2^n·K·n work, in blocks of 4096 sign vectors); for larger n sample σ
    (see `rademacher_linear`). 0 for one function; ≤ `massart_bound`.
    """
    F = jnp.asarray(values)
    if F.ndim != 2 or not 1 <= F.shape[1] <= 20 or F.shape[0] < 1:
        raise ValueError(f"empirical_rademacher: expected values (K, n) with K >= 1 and 1 <= n <= 20 "
                         f"(2^n sign vectors), got {F.shape}")
    if not jnp.issubdtype(F.dtype, jnp.inexact):
        F = F.astype(jnp.result_type(float))
    return _empirical_rademacher(F)


@jax.jit
def _empirical_rademacher(F):
    n = F.shape[1]
    lo_bits = min(n, _BLOCK_BITS)
    low = _signs(lo_bits, F.dtype)  # (2^lo, lo)
    part = low @ F[:, :lo_bits].T   # (2^lo, K): the low bits' share of Σ σ_i F[k, i]

    def block(h):
        high = 1 - 2 * ((h >> jnp.arange(n - lo_bits)) & 1).astype(F.dtype)
        return jnp.sum(jnp.max(part + (F[:, lo_bits:] @ high)[None, :], axis=1))

    total = lax.map(block, jnp.arange(2 ** (n - lo_bits)))
    return jnp.sum(total) / jnp.asarray(2.0**n * n, F.dtype)


def _signs(n, dtype):
    bits = (np.arange(2**n)[:, None] >> np.arange(n)[None, :]) & 1
    return jnp.asarray(1 - 2 * bits, dtype)


def massart_bound(values) -> jax.Array:
    """Massart's finite-class lemma: ``R̂(F) ≤ max_k ‖F[k]‖₂ · sqrt(2 ln K) / n`` for values F (K, n)."""
    F = jnp.asarray(values)
    if F.ndim != 2:
        raise ValueError(f"massart_bound: expected values (K, n), got {F.shape}")
    K, n = F.shape
    return jnp.max(jax.vmap(norm2)(F)) * jnp.asarray(math.sqrt(2 * math.log(K)) / n, F.dtype)


def rademacher_linear(X, bound: float, key, n_draws: int = 1000) -> jax.Array:
    """Monte Carlo estimate of the empirical Rademacher complexity of ``{x ↦ ⟨w, x⟩ : ‖w‖₂ ≤ B}`` on X (n, d):

    ``R̂ = E_σ sup_w (1/n) Σ σ_i ⟨w, x_i⟩ = (B/n)·E_σ ‖Σ σ_i x_i‖₂``, σ_i uniform ±1 (the sup is attained at
    w ∝ Σ σ_i x_i). Bounded by ``B·sqrt(Σ‖x_i‖²)/n`` (Jensen), see `rademacher_linear_bound`.
    """
    X = jnp.asarray(X)
    if X.ndim != 2 or bound < 0:
        raise ValueError(f"rademacher_linear: need X (n, d) and bound >= 0, got {X.shape}, {bound!r}")
    sig = jax.random.rademacher(key, (n_draws, X.shape[0]), X.dtype)
    sums = sig @ X  # (n_draws, d)
    return jnp.asarray(bound / X.shape[0], X.dtype) * jnp.mean(jax.vmap(norm2)(sums))


@jax.jit
def rademacher_linear_bound(X, bound: float) -> jax.Array:
    """``R̂ ≤ B·sqrt(Σ_i ‖x_i‖²)/n ≤ B·max‖x_i‖/√n``: linear classes generalize at rate 1/√n."""
    X = jnp.asarray(X)
    return (bound / X.shape[0]) * norm2(jnp.ravel(X))


@jax.jit
def path_norm(W, v) -> jax.Array:
    """The ℓ1 path norm of the two-layer ReLU net ``f(x) = Σ_j v_j relu(⟨w_j, x⟩)``:
    ``C = Σ_j |v_j|·‖w_j‖₂``; W (h, d) (rows w_j), v (h,). Rescaling w_j by c > 0 and v_j by 1/c leaves f and C
    unchanged, unlike ‖W‖·‖v‖. (A bias: append a constant 1 to x.)"""
    W, v = jnp.asarray(W), jnp.asarray(v)
    if W.ndim != 2 or v.shape != W.shape[:1]:
        raise ValueError(f"path_norm: expected W (h, d) and v (h,), got {W.shape} and {v.shape}")
    return jnp.sum(jnp.abs(v) * jax.vmap(norm2)(W))


@jax.jit
def two_layer_rademacher_bound(W, v, X) -> jax.Array:
    """For ``F_C = {x ↦ Σ_j v_j relu(⟨w_j, x⟩) : path_norm ≤ C}`` with C = `path_norm`(W, v), on X (n, d):

    ``R̂(F_C) ≤ 2C·sqrt(Σ_i ‖x_i‖²)/n``: F_C lies in C times the symmetric convex hull of
    {relu(⟨w, ·⟩) : ‖w‖ ≤ 1}; relu is 1-Lipschitz with relu(0) = 0 (Talagrand's contraction), and the
    symmetric hull at most doubles R̂ (Neyshabur, Tomioka & Srebro 2015, depth 2). Width-free.
    """
    X = jnp.asarray(X)
    if X.ndim != 2 or X.shape[1] != jnp.shape(W)[1]:
        raise ValueError(f"two_layer_rademacher_bound: expected X (n, {jnp.shape(W)[1]}), got {X.shape}")
    return 2 * path_norm(W, v) * rademacher_linear_bound(X, 1.0)


def margin_bound(margins, gamma: float, rademacher, delta: float = 0.05) -> jax.Array:
    """The margin bound (Koltchinskii & Panchenko 2002; Mohri et al., Thm 5.8): for a fixed γ > 0, with
    probability ≥ 1 - δ every f in F has

        ``P(y f(x) ≤ 0) ≤ (1/n) Σ_i Φ_γ(y_i f(x_i)) + (2/γ)·R̂_n(F) + 3·sqrt(ln(2/δ) / (2n))``,

    Φ_γ(t) = min(1, max(0, 1 - t/γ)) the ramp (≥ the 0-1 loss, 1/γ-Lipschitz). margins (n,) = y_i f(x_i),
    y ∈ {±1}; rademacher = R̂_n(F) or an upper bound on it (e.g. `two_layer_rademacher_bound`).
    A γ picked after seeing the data needs a union bound over a grid of γ (δ divided by the grid's size).
    """
    _check_prob("margin_bound", delta=delta)
    g = concrete(gamma)  # gamma may be traced (vmap over a grid of margins)
    if g is not None and not np.all(g > 0):
        raise ValueError(f"margin_bound: gamma must be > 0, got {gamma!r}")
    m = jnp.asarray(margins)
    if m.ndim != 1:
        raise ValueError(f"margin_bound: expected margins (n,), got {m.shape}")
    ramp = jnp.clip(1 - m / gamma, 0, 1)
    return jnp.mean(ramp) + (2 / gamma) * rademacher + 3 * math.sqrt(math.log(2 / delta) / (2 * m.shape[0]))


def _check_prob(name, **kw):
    for k, v in kw.items():
        if not 0 < v < 1:
            raise ValueError(f"{name}: {k} must lie in (0, 1), got {v!r}")


def pac_bound(train_error: float, n: int, n_hypotheses: float, delta: float = 0.05) -> float:
    """Finite hypothesis class, Hoeffding + union bound: with probability ≥ 1 - δ over n i.i.d. samples,
    every h in H has ``err(h) ≤ err̂(h) + sqrt((ln|H| + ln(1/δ)) / (2n))`` (0-1 loss)."""
    _check_prob("pac_bound", delta=delta)
    if n < 1 or n_hypotheses < 1:
        raise ValueError(f"pac_bound: need n >= 1 and n_hypotheses >= 1, got {n!r}, {n_hypotheses!r}")
    return train_error + math.sqrt((math.log(n_hypotheses) + math.log(1 / delta)) / (2 * n))


def pac_sample_size(eps: float, delta: float, n_hypotheses: float) -> int:
    """The smallest n with ``sqrt((ln|H| + ln(1/δ)) / (2n)) ≤ ε``: ``n = ⌈(ln|H| + ln(1/δ)) / (2ε²)⌉``."""
    _check_prob("pac_sample_size", eps=eps, delta=delta)
    return math.ceil((math.log(n_hypotheses) + math.log(1 / delta)) / (2 * eps * eps))


def rademacher_bound(train_loss: float, rademacher: float, n: int, delta: float = 0.05) -> float:
    """With probability ≥ 1 - δ, for every f in F with loss in [0, 1] (Bartlett & Mendelson 2002):
    ``L(f) ≤ L̂(f) + 2·R̂_n(F) + 3·sqrt(ln(2/δ) / (2n))`` (R̂ the empirical Rademacher complexity of the
    loss class)."""
    _check_prob("rademacher_bound", delta=delta)
    return train_loss + 2 * rademacher + 3 * math.sqrt(math.log(2 / delta) / (2 * n))


# ---------------------------------------------------------------------------------------------------
# Bias–variance.


def bias_variance(preds, f_true, noise_var=0.0) -> dict[str, jax.Array]:
    """The bias–variance decomposition of the expected squared test error, averaged over m test points:

        ``E_{D, ε}[(ŷ_D(x) - y)²] = (ȳ(x) - f(x))² + E_D[(ŷ_D(x) - ȳ(x))²] + σ²``,  ȳ(x) = E_D ŷ_D(x),

    estimated from preds (R, m), the predictions of R models each fitted on an independent training set D,
    at m test points; f_true (m,) the noise-free target; noise_var σ² of y = f(x) + ε. Returns
    {"bias2", "variance", "noise", "total"} (scalars; total = their sum; variance uses 1/R).
    """
    P, f = jnp.asarray(preds), jnp.asarray(f_true)
    if P.ndim != 2 or f.shape != P.shape[1:]:
        raise ValueError(f"bias_variance: expected preds (R, m) and f_true (m,), got {P.shape} and {f.shape}")
    mean = jnp.mean(P, axis=0, keepdims=True)  # (1, m)
    bias2 = jnp.mean((mean[0] - f) ** 2)
    variance = jnp.mean((P - mean) ** 2)
    noise = jnp.asarray(noise_var, P.dtype)
    return {"bias2": bias2, "variance": variance, "noise": noise, "total": bias2 + variance + noise}
