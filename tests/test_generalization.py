"""Generalization theory against independent oracles: labelings counted by LP separability (scipy) and by
brute force over parameter grids, Rademacher complexities by a naive loop over all sign vectors, the bounds'
guarantees by simulation on distributions whose true errors are known exactly, bias–variance against the
closed forms of least squares."""
import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.optimize
import scipy.stats as ss
from hypothesis import given, settings
from hypothesis import strategies as st

from fungpt import generalization as G
from fungpt import topology as T
from tests.helpers import F32, F64, close


def _separable(X, labels):
    # Is there (w, b) with (2y - 1)(⟨w, x⟩ + b) ≥ 1 for all points? An LP feasibility problem.
    s = np.where(labels, 1.0, -1.0)
    A = -s[:, None] * np.concatenate([X, np.ones((len(X), 1))], axis=1)
    res = scipy.optimize.linprog(np.zeros(X.shape[1] + 1), A_ub=A, b_ub=-np.ones(len(X)), bounds=(None, None),
                                 method="highs")
    return res.status == 0


@pytest.mark.parametrize(("n", "d"), [(7, 2), (6, 3), (5, 1)])
def test_halfspace_dichotomies_are_the_lp_separable_labelings(n, d):
    X = np.random.default_rng(n * 10 + d).standard_normal((n, d))
    got = {tuple(r) for r in G.dichotomies("halfspace", X)}
    want = {lab for lab in itertools.product([False, True], repeat=n) if _separable(X, np.array(lab))}
    assert got == want
    assert len(got) == G.growth_function("halfspace", n, d) < G.sauer_shelah_bound(n, d + 1) < 2**n


def test_line_classes_by_brute_force_over_parameters():
    rng = np.random.default_rng(1)
    for x in (rng.standard_normal(9), np.array([0.0, 1.0, 1.0, 2.0, 3.0, 3.0, 3.0])):
        k = np.unique(x).size
        grid = np.concatenate([np.sort(np.unique(x)) - 1e-6, [np.max(x) + 1]])  # every gap between points
        thr = {tuple(x >= t) for t in grid}
        itv = {tuple((x >= a) & (x <= b)) for a in grid for b in grid + 2e-6}
        assert {tuple(r) for r in G.dichotomies("threshold", x)} == thr
        assert {tuple(r) for r in G.dichotomies("interval", x[:, None])} == itv
        # Sauer–Shelah is tight for thresholds (VC 1) and intervals (VC 2) on distinct points
        assert len(thr) == G.growth_function("threshold", k) == G.sauer_shelah_bound(k, 1)
        assert len(itv) == G.growth_function("interval", k) == G.sauer_shelah_bound(k, 2)


def test_vc_dimension_is_the_largest_shattered_size():
    rng = np.random.default_rng(2)
    for cls, d, vc in [("threshold", 1, 1), ("interval", 1, 2), ("halfspace", 1, 2), ("halfspace", 2, 3),
                       ("halfspace", 3, 4)]:
        assert G.vc_dimension(cls, d) == vc
        for m in (vc, vc + 1):
            X = rng.standard_normal((m, d)) if cls == "halfspace" else rng.standard_normal(m)
            assert (len(G.dichotomies(cls, X)) == 2**m) == (m == vc), (cls, d, m)
    # Cover's count for homogeneous half-spaces in R^D by its recursion C(N, D) = C(N-1, D) + C(N-1, D-1),
    # C(1, D) = C(N, 1) = 2; affine half-spaces in R^d are homogeneous ones in R^(d+1)
    def cover(n, dim):
        return 2 if n == 1 or dim == 1 else cover(n - 1, dim) + cover(n - 1, dim - 1)
    assert all(G.growth_function("halfspace", n, d) == cover(n, d + 1) for n in range(1, 12) for d in range(1, 5))
    assert all(G.sauer_shelah_bound(n, v) <= (math.e * n / v) ** v for n in range(2, 30) for v in range(1, n))


def _signs(n):
    return np.array(list(itertools.product([-1.0, 1.0], repeat=n)))


@settings(max_examples=8, deadline=None)
@given(seed=st.integers(0, 2**16), n=st.sampled_from([5, 13]))  # one block of signs, and several
def test_empirical_rademacher_equals_the_average_over_all_sign_vectors(seed, n):
    rng = np.random.default_rng(seed)
    F = rng.standard_normal((4, n)) * rng.uniform(0.1, 10, size=(4, 1))
    want = np.mean(np.max(_signs(n) @ F.T, axis=1)) / n                 # a naive loop over 2^n σ in float64
    close(G.empirical_rademacher(F), want, 1e-12)
    assert float(G.empirical_rademacher(F)) <= float(G.massart_bound(F))


def test_empirical_rademacher_closed_forms():
    for n in (4, 13):
        # {v, -v, 0·v} with v = 1: E|Σσ|/n = C(n-1, ⌊(n-1)/2⌋)/2^(n-1) (a random walk's mean absolute
        # deviation); {v} alone (three copies, the same shape): E Σσ = 0
        F = np.stack([np.ones(n), -np.ones(n), np.zeros(n)])
        close(G.empirical_rademacher(F), math.comb(n - 1, (n - 1) // 2) / 2 ** (n - 1), 1e-12)
        close(G.empirical_rademacher(np.ones((3, n))), 0.0, 1e-15)
    for n in (3, 9):  # all 2^n labelings (a shattered set, values ±1): R̂ = 1 ≤ Massart's sqrt(2 ln 2)
        close(G.empirical_rademacher(_signs(n)), 1.0, 1e-12)
        close(G.massart_bound(_signs(n)), math.sqrt(2 * math.log(2)), 1e-12)


def test_rademacher_linear_against_exact_enumeration(key):
    rng = np.random.default_rng(8)
    X, B = rng.standard_normal((10, 3)), 2.0
    exact = np.mean(np.linalg.norm(_signs(10) @ X, axis=1)) * B / 10
    est = float(jax.jit(lambda x, k: T.rademacher_linear(x, B, k, n_draws=20000))(X, key))
    assert abs(est - exact) < 0.02 * exact
    assert exact <= float(T.rademacher_linear_bound(X, B)) <= B * np.linalg.norm(X, axis=1).max() / np.sqrt(10)


# Thresholds h_t(x) = [x ≥ t] on x ~ U[0, 1] with labels [x ≥ 1/2] flipped with probability η:
# the true 0-1 error of h_t is η + (1 - 2η)|t - 1/2| exactly.
ETA, THRESH = 0.2, np.linspace(0.0, 1.0, 21)


def _threshold_trials(n, trials, seed):
    rng = np.random.default_rng(seed)
    x = rng.uniform(size=(trials, n))
    y = (x >= 0.5) ^ (rng.uniform(size=(trials, n)) < ETA)
    losses = ((x[:, None, :] >= THRESH[None, :, None]) != y[:, None, :]).astype(np.float64)  # (trials, K, n)
    true = ETA + (1 - 2 * ETA) * np.abs(THRESH - 0.5)
    return losses, true


def test_rademacher_bound_holds_in_simulation():
    n, delta = 12, 0.1
    losses, true = _threshold_trials(n, 400, 3)
    rad = np.asarray(jax.jit(jax.vmap(G.empirical_rademacher))(losses))  # R̂ of the loss class, per trial
    bounds = np.array([[G.rademacher_bound(float(l), float(r), n, delta) for l in L.mean(1)]
                       for L, r in zip(losses, rad, strict=True)])
    assert np.mean(np.any(true[None, :] > bounds, axis=1)) <= delta
    # and it is not vacuous by more than a constant: the gap is within 8x the (1 - δ)-quantile of the worst
    # true deviation sup_h (L(h) - L̂(h)) that it must cover
    worst = np.quantile(np.max(true[None, :] - losses.mean(2), axis=1), 1 - delta)
    assert worst < np.mean(bounds - losses.mean(2)) < 8 * worst
    close(G.rademacher_bound(0.1, 0.05, 1000, 0.05), 0.2 + 3 * math.sqrt(math.log(40) / 2000), 1e-15)


def test_vc_bound_formula_and_guarantee():
    n, delta = 200, 0.05
    close(G.vc_bound(0.1, n, 3, delta),
          0.1 + math.sqrt(8 * (math.log(sum(math.comb(2 * n, k) for k in range(4))) + math.log(4 / delta)) / n),
          1e-15)
    losses, true = _threshold_trials(n, 2000, 4)
    gap = G.vc_bound(0.0, n, G.vc_dimension("threshold"), delta)
    assert np.mean(np.max(np.abs(losses.mean(2) - true), axis=1) > gap) <= delta


def test_pac_bounds():
    n, H, delta = 1000, 1e6, 0.05
    m = G.pac_sample_size(0.05, delta, H)
    assert G.pac_bound(0.0, m, H, delta) <= 0.05 < G.pac_bound(0.0, m - 1, H, delta)
    # The bound holds in simulation: a single hypothesis with true error p, empirical error over n draws.
    p, trials = 0.3, 20000
    emp = np.random.default_rng(9).binomial(n, p, trials) / n
    assert np.mean(p > emp + G.pac_bound(0.0, n, 1, delta)) <= delta


def test_pac_bound_holds_by_exact_binomial_enumeration():
    # Independent of the formula: the exact binomial tail P(err̂ < p - gap) for every true error p on a
    # grid, times |H| (the union bound), must stay below δ; and Hoeffding's gap is within ~2x of the
    # smallest gap that is valid for one hypothesis (the exact quantile), so it is not vacuous.
    ps = np.linspace(0.005, 0.995, 199)
    for n in (20, 100, 1000):
        for n_h in (1, 10, 1000):
            delta = 0.05
            gap = G.pac_bound(0.0, n, n_h, delta)
            k_below = np.ceil(n * (ps - gap)) - 1                      # largest k with k / n < p - gap
            tail = ss.binom.cdf(k_below, n, ps)
            assert n_h * tail.max() <= delta, (n, n_h)
        exact = max(p - ss.binom.ppf(0.05, n, p) / n for p in ps)     # the exact one-hypothesis gap
        assert exact <= G.pac_bound(0.0, n, 1, 0.05) <= 2.5 * exact + 1 / n


def test_two_layer_bound_dominates_the_exact_rademacher_complexity():
    rng = np.random.default_rng(5)
    n, h = 8, 5
    X, W, v = rng.standard_normal((n, 2)), rng.standard_normal((h, 2)), rng.standard_normal(h)
    C = sum(abs(v[j]) * math.hypot(*W[j]) for j in range(h))
    close(G.path_norm(W, v), C, 1e-14)
    c = np.array([0.5, 2.0, 3.0, 1.0, 4.0])                             # f is invariant to w_j → c w_j, v_j → v_j/c
    close(G.path_norm(W * c[:, None], v / c), C, 1e-14)
    # Exact: sup over F_C of Σσ f = C max_{‖w‖=1} |Σ σ_i relu(⟨w, x_i⟩)| (extreme points of the symmetric hull),
    # on a fine grid of unit w; the grid misses the max by at most Σ‖x_i‖·(angle step).
    ang = np.linspace(0, 2 * np.pi, 20000, endpoint=False)
    R = np.maximum(np.stack([np.cos(ang), np.sin(ang)], 1) @ X.T, 0)   # (angles, n)
    exact = C * np.mean(np.max(np.abs(_signs(n) @ R.T), axis=1)) / n
    slack = C * np.linalg.norm(X, axis=1).sum() * (2 * np.pi / 20000) / n
    bound = float(G.two_layer_rademacher_bound(W, v, X))
    assert exact <= bound + slack
    close(bound, 2 * C * np.sqrt(np.sum(X * X)) / n, 1e-14)


def test_margin_bound_holds_for_linear_classifiers_in_simulation():
    # x ~ N(y μ, I), y = ±1: a unit w misclassifies with probability Φ(-⟨w, μ⟩), exactly.
    mu, n, gamma, delta, trials = np.array([1.0, 0.5]), 50, 0.5, 0.1, 300
    rng = np.random.default_rng(6)
    ang = np.linspace(0, 2 * np.pi, 64, endpoint=False)
    Wu = np.stack([np.cos(ang), np.sin(ang)], 1)
    true = ss.norm.cdf(-(Wu @ mu))
    bound_fn = jax.jit(jax.vmap(lambda m, r: G.margin_bound(m, gamma, r, delta), in_axes=(0, None)))
    fails = 0
    for _ in range(trials):
        y = rng.choice([-1.0, 1.0], n)
        X = y[:, None] * mu + rng.standard_normal((n, 2))
        b = np.asarray(bound_fn(y[None, :] * (Wu @ X.T), G.rademacher_linear_bound(X, 1.0)))
        fails += np.any(true > b)
    assert fails / trials <= delta
    m = np.array([-1.0, 0.0, 0.2, 0.5, 3.0])
    ramp = np.mean(np.clip(1 - m / 0.5, 0, 1))
    close(G.margin_bound(m, 0.5, 0.1, 0.05), ramp + 0.4 + 3 * math.sqrt(math.log(40) / 10), 1e-15)


@pytest.mark.parametrize("dtype", [F32, F64], ids=str)
def test_bias_variance_of_least_squares_matches_the_closed_forms(dtype):
    # Fixed design, y = f(x) + ε, ε ~ N(0, σ²), a degree-2 least-squares fit of f(x) = sin 3x:
    # E ŷ(x*) = x*ᵀ(XᵀX)⁻¹Xᵀ f (the projection), Var ŷ(x*) = σ² x*ᵀ(XᵀX)⁻¹x*.
    rng = np.random.default_rng(7)
    x, xt, sigma, R = np.linspace(-1, 1, 12), np.linspace(-0.9, 0.9, 7), 0.3, 20000
    X, Xt = np.vander(x, 3), np.vander(xt, 3)
    f, ft = np.sin(3 * x), np.sin(3 * xt)
    Y = f + sigma * rng.standard_normal((R, x.size))
    preds = (Xt @ np.linalg.lstsq(X, Y.T, rcond=None)[0]).T               # (R, m)
    got = jax.jit(G.bias_variance)(preds.astype(dtype), ft.astype(dtype), sigma**2)
    assert all(v.dtype == dtype for v in got.values())
    inv = np.linalg.inv(X.T @ X)
    bias2 = np.mean((Xt @ inv @ X.T @ f - ft) ** 2)
    var = sigma**2 * np.mean(np.einsum("ij,jk,ik->i", Xt, inv, Xt))
    close(got["bias2"], bias2, 5 * var / math.sqrt(R) * 4, 0.0)          # the mean over R fits carries noise
    close(got["variance"], var, 5 * math.sqrt(2 / R), 0.0)
    # the decomposition: with fresh noise, the measured test MSE equals bias² + variance + σ²
    yt = ft + sigma * rng.standard_normal((R, xt.size))
    close(got["total"], np.mean((preds - yt) ** 2), 5 * math.sqrt(2 / R) * (var + sigma**2) / var * 0.2, 0.0)
    # exactly, bias² + variance = the mean squared distance to f (the algebraic identity)
    close(got["bias2"] + got["variance"], np.mean((preds - ft) ** 2), 1e-5 if dtype == F32 else 1e-12)


def test_bad_inputs_get_clear_errors():
    with pytest.raises(ValueError, match="unknown hypothesis class"):
        G.dichotomies("circle", np.zeros(3))
    with pytest.raises(ValueError, match="general position"):
        G.dichotomies("halfspace", np.array([[0.0, 0.0], [1.0, 1.0], [2.0, 2.0], [0.0, 1.0]]))
    with pytest.raises(ValueError, match="2\\^n"):
        G.empirical_rademacher(np.zeros((2, 21)))
    with pytest.raises(ValueError, match="gamma"):
        G.margin_bound(jnp.ones(3), 0.0, 0.1)
    with pytest.raises(ValueError, match="delta"):
        G.pac_bound(0.1, 10, 5, delta=1.5)
    with pytest.raises(ValueError, match="preds"):
        G.bias_variance(np.zeros((3, 4)), np.zeros(5))
