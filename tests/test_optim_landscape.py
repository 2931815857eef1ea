"""The rest of chapter 5 against closed forms and independent solvers (numpy, scipy, jax.hessian)."""
import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.optimize
import scipy.special
from conftest import TOL
from hypothesis import given, settings
from hypothesis import strategies as st

import fungpt
from fungpt import optim

DTYPES = [np.float32, np.float64]
GRADS = {"fungpt": fungpt.grad, "jax": jax.grad}


# --- losses ------------------------------------------------------------------------------------

def _regression(grad, p, t):
    vals = (optim.mse(p, t), optim.mae(p, t), optim.huber(p, t, 1.5))
    grads = tuple(grad(lambda q, loss=loss: loss(q, t).sum())(p)
                  for loss in (optim.mse, optim.mae, lambda q, t: optim.huber(q, t, 1.5)))
    return vals, grads


@pytest.mark.parametrize("gname", sorted(GRADS))
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_regression_losses_and_gradients(dtype, gname):
    rng = np.random.default_rng(0)
    p, t = rng.standard_normal(7) * 2, rng.standard_normal(7) * 2
    r, tol = p - t, TOL[np.dtype(dtype)]
    vals, grads = jax.jit(lambda p, t: _regression(GRADS[gname], p, t))(jnp.asarray(p, dtype), jnp.asarray(t, dtype))
    hub = np.where(np.abs(r) <= 1.5, 0.5 * r**2, 1.5 * (np.abs(r) - 0.75))
    for got, want in zip(vals + grads, (r**2, np.abs(r), hub, 2 * r, np.sign(r), np.clip(r, -1.5, 1.5)), strict=True):
        assert got.dtype == np.dtype(dtype)
        np.testing.assert_allclose(got, want, rtol=tol)


def _classification(grad, logits, labels, x, y, s):
    ce = lambda z: optim.softmax_cross_entropy(z, labels)
    bce = lambda z: optim.binary_cross_entropy_with_logits(z, y)
    hin = lambda z: optim.hinge(z, s)
    vals = (ce(logits), bce(x), hin(x))
    grads = (grad(lambda z: ce(z).sum())(logits), grad(lambda z: bce(z).sum())(x), grad(lambda z: hin(z).sum())(x))
    return vals, grads


@pytest.mark.parametrize("gname", sorted(GRADS))
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_classification_losses_and_gradients(dtype, gname):
    rng = np.random.default_rng(1)
    logits = rng.standard_normal((4, 5)) * 3
    labels = rng.integers(0, 5, 4)
    x, y = logits[0], (rng.random(5) > 0.5).astype(float)
    s = 2 * y - 1
    args = (jnp.asarray(logits, dtype), jnp.asarray(labels, jnp.int32), jnp.asarray(x, dtype),
            jnp.asarray(y, dtype), jnp.asarray(s, dtype))
    vals, grads = jax.jit(lambda *a: _classification(GRADS[gname], *a))(*args)
    sig = scipy.special.expit(x)
    want_vals = (scipy.special.logsumexp(logits, axis=-1) - logits[np.arange(4), labels],
                 -y * np.log(sig) - (1 - y) * np.log1p(-sig), np.maximum(0, 1 - s * x))
    want_grads = (scipy.special.softmax(logits, axis=-1) - np.eye(5)[labels], sig - y, np.where(s * x < 1, -s, 0.0))
    tol = TOL[np.dtype(dtype)]
    for got, want in zip(vals + grads, want_vals + want_grads, strict=True):
        np.testing.assert_allclose(got, want, rtol=tol, atol=tol)


_ce_grad = jax.jit(fungpt.grad(optim.softmax_cross_entropy))


@settings(max_examples=15, deadline=None)
@given(st.floats(-1e4, 1e4), st.integers(0, 2))
def test_cross_entropy_is_finite_for_extreme_logits(big, label):
    logits = np.array([big, 0.0, -big])
    got = optim.softmax_cross_entropy(jnp.asarray(logits, jnp.float32), jnp.asarray(label, jnp.int32))
    want = scipy.special.logsumexp(logits) - logits[label]
    np.testing.assert_allclose(float(got), want, rtol=1e-6, atol=1e-6)
    got = optim.binary_cross_entropy_with_logits(jnp.asarray(logits, jnp.float32), jnp.ones(3, jnp.float32))
    np.testing.assert_allclose(np.asarray(got), np.logaddexp(0, -logits), rtol=1e-6, atol=1e-6)
    g = _ce_grad(jnp.asarray(logits, jnp.float32), jnp.asarray(label, jnp.int32))
    want = scipy.special.softmax(logits) - np.eye(3)[label]
    np.testing.assert_allclose(np.asarray(g), want, rtol=1e-5, atol=1e-6)


def test_losses_reject_bad_input():
    with pytest.raises(TypeError, match="integer"):
        optim.softmax_cross_entropy(jnp.zeros((2, 3)), jnp.zeros(2))
    with pytest.raises(ValueError, match="shape"):
        optim.softmax_cross_entropy(jnp.zeros((2, 3)), jnp.zeros(3, jnp.int32))
    with pytest.raises(ValueError, match="same shape"):
        optim.mse(jnp.zeros(3), jnp.zeros(4))
    with pytest.raises(ValueError, match="delta"):
        optim.huber(jnp.zeros(3), jnp.zeros(3), delta=0.0)


# --- convexity ---------------------------------------------------------------------------------

CONVEX = {
    "sum_squares": lambda x: x @ x,
    "abs_sum": lambda x: jnp.abs(x).sum(),
    "logsumexp": lambda x: jnp.log(jnp.exp(x).sum()),
    "exp_quad": lambda x: jnp.exp(x[0]) + (x[0] - x[1]) ** 2,
}
NONCONVEX = {
    "sin": lambda x: jnp.sin(x).sum(),
    "cubic": lambda x: (x**3).sum(),
    "saddle": lambda x: x[0] ** 2 - x[1] ** 2,
    "rosenbrock": lambda x: (1 - x[0]) ** 2 + 100 * (x[1] - x[0] ** 2) ** 2,
    "double_well": lambda x: ((x**2 - 1) ** 2).sum(),
}


def test_convexity_classifies_textbook_functions(key):
    fs = {**CONVEX, **NONCONVEX}
    # One compiled program for all nine functions: compile time, not arithmetic, dominates here.
    reports = jax.jit(lambda k: {name: optim.convexity(f, k, dim=2, n=32) for name, f in fs.items()})(key)
    for name, report in reports.items():
        assert bool(optim.is_convex(report)) == (name in CONVEX), (name, report)


# --- critical points ---------------------------------------------------------------------------

def himmelblau(x):
    return (x[0] ** 2 + x[1] - 11) ** 2 + (x[0] + x[1] ** 2 - 7) ** 2


def test_newton_and_classification():
    saddle = lambda x: x[0] ** 2 - x[1] ** 2
    bowl_down = lambda x: -(x[0] ** 2) - 2 * x[1] ** 2 + x[0] * x[1]
    rosen = NONCONVEX["rosenbrock"]
    flat = lambda x: x[0] ** 4 + x[1] ** 2
    cases = [(saddle, [0.3, -0.2], [0, 0], optim.SADDLE), (bowl_down, [1.0, 2.0], [0, 0], optim.MAXIMUM),
             (rosen, [-1.2, 1.0], [1, 1], optim.MINIMUM)]

    @jax.jit
    def run(x0s):
        xs = [optim.newton(f, x0, steps=20)[-1] for (f, *_), x0 in zip(cases, x0s, strict=True)]
        kinds = [optim.classify_critical_point(f, x) for (f, *_), x in zip(cases, xs, strict=True)]
        return xs, kinds, optim.classify_critical_point(flat, jnp.zeros(2))

    xs, kinds, flat_kind = run([jnp.asarray(x0) for _, x0, _, _ in cases])
    for (_, _, x_star, kind), x, got in zip(cases, xs, kinds, strict=True):
        np.testing.assert_allclose(np.asarray(x), x_star, atol=1e-10)
        assert int(got) == kind, optim.CRITICAL_KINDS[kind]
    assert int(flat_kind) == optim.DEGENERATE


def test_himmelblau_has_four_minima():
    found = []
    solve = jax.jit(lambda x0: optim.newton(himmelblau, x0, steps=15)[-1])
    kind = jax.jit(lambda x: optim.classify_critical_point(himmelblau, x))
    for x0 in ([3.5, 2.5], [-3.0, 3.5], [-4.0, -3.5], [4.0, -2.0]):
        x = solve(jnp.asarray(x0))
        ref = scipy.optimize.minimize(lambda z: float(himmelblau(z)), x0, method="Nelder-Mead",
                                      options={"xatol": 1e-10, "fatol": 1e-14}).x
        np.testing.assert_allclose(np.asarray(x), ref, atol=1e-6)
        assert abs(float(himmelblau(x))) < 1e-20
        assert int(kind(x)) == optim.MINIMUM
        found.append(np.asarray(x))
    assert len({tuple(np.round(x, 6)) for x in found}) == 4


# --- Lagrange multipliers ----------------------------------------------------------------------

def test_lagrange_max_xy_on_a_line():
    # max xy s.t. x + y = c: x = y = c/2; ∇(-xy) + λ∇h = 0 gives λ = c/2.
    c = 3.0
    solve = jax.jit(lambda x0: optim.lagrange_newton(lambda v: -v[0] * v[1], lambda v: v[0] + v[1] - c, x0))
    x, lam = solve(jnp.asarray([1.0, 0.0]))
    np.testing.assert_allclose(np.asarray(x), [c / 2, c / 2], rtol=1e-12)
    np.testing.assert_allclose(np.asarray(lam), [c / 2], rtol=1e-12)


@jax.jit
def _nearest_on_sphere(a):
    return optim.lagrange_newton(lambda x: jnp.sum((x - a) ** 2), lambda x: x @ x - 1.0, a / 2.0, steps=40)


@settings(max_examples=10, deadline=None)
@given(st.lists(st.floats(-3, 3), min_size=3, max_size=3).filter(lambda a: np.linalg.norm(a) > 0.5))
def test_lagrange_nearest_point_on_sphere(a):
    # min ‖x - a‖² s.t. ‖x‖² = 1: x = a/‖a‖ and 2(x - a) + 2λx = 0 ⇒ λ = ‖a‖ - 1.
    a = np.asarray(a)
    x, lam = _nearest_on_sphere(jnp.asarray(a))
    np.testing.assert_allclose(np.asarray(x), a / np.linalg.norm(a), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(float(lam[0]), np.linalg.norm(a) - 1, rtol=1e-9, atol=1e-12)


def test_lagrange_max_entropy_is_gibbs():
    # max H(p) s.t. Σp = 1, Σ p E = μ ⇒ p ∝ exp(-βE); β solved independently with scipy's brentq.
    E = np.array([0.0, 1.0, 2.0, 3.0, 5.0])
    mu = 1.4
    gibbs = lambda b: np.exp(-b * E) / np.exp(-b * E).sum()
    beta = scipy.optimize.brentq(lambda b: gibbs(b) @ E - mu, -10, 10, xtol=1e-15)
    Ej = jnp.asarray(E)
    solve = jax.jit(lambda p0: optim.lagrange_newton(
        lambda p: jnp.sum(p * jnp.log(p)),
        lambda p: jnp.stack([jnp.sum(p) - 1.0, p @ Ej - mu]),
        p0,
    ))
    p, lam = solve(jnp.full(5, 0.2))
    np.testing.assert_allclose(np.asarray(p), gibbs(beta), rtol=1e-10)
    np.testing.assert_allclose(float(lam[1]), beta, rtol=1e-9)


# --- Lipschitz ---------------------------------------------------------------------------------

def test_spectral_norm_and_mlp_lipschitz_bound(key):
    rng = np.random.default_rng(5)
    ws = [jnp.asarray(rng.standard_normal(shape)) for shape in ((6, 3), (4, 6), (2, 4))]

    def mlp(x):
        return ws[2] @ jnp.tanh(ws[1] @ jnp.tanh(ws[0] @ x))

    @jax.jit
    def run(ws, k, xs):
        lower = optim.lipschitz_lower_bound(mlp, xs)
        # For a linear map the sampled bound is ‖W‖₂ exactly.
        lin = optim.lipschitz_lower_bound(lambda x: ws[0] @ x, xs[:2])
        return optim.mlp_lipschitz_bound(ws, k, iters=300), lower, lin

    bound, lower, lin = run(ws, key, jnp.asarray(rng.standard_normal((64, 3)) * 0.3))
    # The bound is the product of spectral norms; numpy's SVD gives each one independently.
    np.testing.assert_allclose(float(bound), np.prod([np.linalg.norm(np.asarray(w), 2) for w in ws]), rtol=1e-8)
    assert 0 < float(lower) <= float(bound)
    np.testing.assert_allclose(float(lin), np.linalg.norm(np.asarray(ws[0]), 2), rtol=1e-10)
    with pytest.raises(ValueError, match="matrix"):
        optim.spectral_norm(jnp.ones(3), key)


# --- line search -------------------------------------------------------------------------------

def test_armijo_returns_first_sufficient_step():
    f = NONCONVEX["rosenbrock"]
    step = jax.jit(lambda x, g: optim.armijo(f, x, g, beta=0.5, c=1e-4))
    for x0 in ([-1.2, 1.0], [0.5, 0.5], [2.0, -1.0]):
        x = jnp.asarray(x0)
        g = jax.grad(f)(x)
        t = float(step(x, g))
        # The same rule as an explicit loop in numpy.
        xn, gn, tn = np.asarray(x0), np.asarray(g), 1.0
        while float(f(jnp.asarray(xn - tn * gn))) > float(f(x)) - 1e-4 * tn * gn @ gn:
            tn *= 0.5
        assert t == tn


def test_gradient_descent_with_line_search_minimizes_quadratic():
    A = jnp.asarray([[3.0, 1.0], [1.0, 2.0]])
    b = jnp.asarray([1.0, -1.0])
    f = lambda x: 0.5 * x @ A @ x - b @ x
    x, losses = jax.jit(lambda x0: optim.gradient_descent(f, x0, 200))(jnp.zeros(2))
    np.testing.assert_allclose(np.asarray(x), np.linalg.solve(np.asarray(A), np.asarray(b)), rtol=1e-8)
    assert np.all(np.diff(np.asarray(losses)) <= 1e-15)


# --- curvature ---------------------------------------------------------------------------------

def tiny_mlp_loss(params):
    x = jnp.linspace(-1.0, 1.0, 6)[:, None]
    h = jnp.tanh(x @ params["w1"] + params["b1"][None, :])
    return jnp.mean((h @ params["w2"] - jnp.sin(3 * x)) ** 2)


def _tiny_params(seed):
    rng = np.random.default_rng(seed)
    return {k: jnp.asarray(rng.standard_normal(shape)) for k, shape in (("w1", (1, 4)), ("b1", (4,)), ("w2", (4, 1)))}


def test_hvp_matches_dense_hessian_on_a_pytree():
    params, v = _tiny_params(0), _tiny_params(1)
    got = jax.jit(lambda p, v: optim.hvp(tiny_mlp_loss, p, v))(params, v)
    flat, unravel = jax.flatten_util.ravel_pytree(params)
    H = jax.jit(jax.hessian(lambda z: tiny_mlp_loss(unravel(z))))(flat)
    want = unravel(H @ jax.flatten_util.ravel_pytree(v)[0])
    chex.assert_trees_all_close(got, want, rtol=1e-10, atol=1e-12)


def test_top_eigenvalue_power_iteration_and_lanczos(key):
    params = _tiny_params(2)
    flat, unravel = jax.flatten_util.ravel_pytree(params)
    eigs = np.linalg.eigvalsh(np.asarray(jax.jit(jax.hessian(lambda z: tiny_mlp_loss(unravel(z))))(flat)))
    top = eigs[np.argmax(np.abs(eigs))]

    @jax.jit
    def run(params, key):
        return (optim.hessian_top_eigenvalue(tiny_mlp_loss, params, key, iters=300),
                optim.hessian_eigenvalues_lanczos(tiny_mlp_loss, params, key, k=flat.size))

    power, ritz = run(params, key)
    np.testing.assert_allclose(float(power), top, rtol=1e-6)
    np.testing.assert_allclose(np.asarray(ritz), eigs, rtol=1e-7, atol=1e-9)
