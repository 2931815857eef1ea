"""fungpt.optim.constrained: Lagrange multipliers against closed forms; the augmented Lagrangian against
scipy's SLSQP and an exact KKT solve on random QPs; multipliers against finite differences of the optimal value."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.optimize
from hypothesis import given, settings
from hypothesis import strategies as st

from fungpt import optim
from tests.helpers import close


def test_lagrange_max_xy_on_a_line():
    # max xy s.t. x + y = c: x = y = c/2; ∇(-xy) + λ∇h = 0 gives λ = c/2.
    c = 3.0
    solve = jax.jit(lambda x0: optim.lagrange_newton(lambda v: -v[0] * v[1], lambda v: v[0] + v[1] - c, x0))
    x, lam = solve(jnp.asarray([1.0, 0.0]))
    close(np.asarray(x), [c / 2, c / 2], rtol=1e-12, atol=0)
    close(np.asarray(lam), [c / 2], rtol=1e-12, atol=0)


@jax.jit
def _nearest_on_sphere(a):
    return optim.lagrange_newton(lambda x: jnp.sum((x - a) ** 2), lambda x: x @ x - 1.0, a / 2.0, steps=40)


@settings(max_examples=10, deadline=None)
@given(st.lists(st.floats(-3, 3), min_size=3, max_size=3).filter(lambda a: np.linalg.norm(a) > 0.5))
def test_lagrange_nearest_point_on_sphere(a):
    # min ‖x - a‖² s.t. ‖x‖² = 1: x = a/‖a‖ and 2(x - a) + 2λx = 0 ⇒ λ = ‖a‖ - 1.
    a = np.asarray(a)
    x, lam = _nearest_on_sphere(jnp.asarray(a))
    close(np.asarray(x), a / np.linalg.norm(a), rtol=1e-9, atol=1e-12)
    close(float(lam[0]), np.linalg.norm(a) - 1, rtol=1e-9, atol=1e-12)


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
    close(np.asarray(p), gibbs(beta), rtol=1e-10, atol=0)
    close(float(lam[1]), beta, rtol=1e-9, atol=0)




def test_lagrange_newton_linear_objective_from_the_default_multiplier():
    # f = c·x on the unit sphere: ∇²_x L = 2λI is zero at λ = 0, so the KKT matrix was singular and the
    # old default (λ0 = 0, LU solve) gave NaN. Stationary points: x = ±c/‖c‖ with c + 2λx = 0.
    c = np.array([1.0, 2.0, -0.5])
    x, lam = jax.jit(lambda x0: optim.lagrange_newton(lambda v: jnp.asarray(c) @ v, lambda v: v @ v - 1.0, x0))(
        jnp.asarray([1.0, 0.0, 0.0]))
    x, lam = np.asarray(x), np.asarray(lam)
    assert np.isfinite(x).all() and np.isfinite(lam).all()
    sign = np.sign(x @ c)
    close(x, sign * c / np.linalg.norm(c), rtol=1e-12, atol=1e-12)
    close(lam, [-sign * np.linalg.norm(c) / 2], rtol=1e-12)


# --- inequality constraints: the augmented Lagrangian ----------------------------------------------

def random_qp(seed, n=5, m=2, p=4):
    """min ½xᵀQx + cᵀx s.t. Ax = b, Gx <= h, feasible by construction (about half the rows tight at x_f)."""
    rng = np.random.default_rng(seed)
    M = rng.standard_normal((n, n))
    Q = M @ M.T + 0.1 * np.eye(n)
    c, A, G = rng.standard_normal(n), rng.standard_normal((m, n)), rng.standard_normal((p, n))
    xf = rng.standard_normal(n)
    return Q, c, A, A @ xf, G, G @ xf + rng.uniform(0, 1, p) * (rng.random(p) < 0.5)


@jax.jit
def _solve_qp(Q, c, A, b, G, h):
    return optim.augmented_lagrangian(lambda x: 0.5 * x @ Q @ x + c @ x, jnp.zeros(c.shape[0]),
                                      eq=lambda x: A @ x - b, ineq=lambda x: G @ x - h, tol=1e-10)


def _slsqp(Q, c, A, b, G, h):
    return scipy.optimize.minimize(
        lambda x: 0.5 * x @ Q @ x + c @ x, np.zeros(len(c)), jac=lambda x: Q @ x + c, method="SLSQP",
        constraints=[{"type": "eq", "fun": lambda x: A @ x - b, "jac": lambda x: A},
                     {"type": "ineq", "fun": lambda x: h - G @ x, "jac": lambda x: -G}],
        options={"ftol": 1e-12, "maxiter": 1000})


def _kkt_solve(Q, c, A, b, G, h, active):
    """The exact solution for a known active set: [[Q, Aᵀ, G_aᵀ], [A, 0, 0], [G_a, 0, 0]] z = [-c, b, h_a]."""
    n, m, Ga = len(c), len(b), G[active]
    K = np.block([[Q, A.T, Ga.T], [A, np.zeros((m, m + len(Ga)))], [Ga, np.zeros((len(Ga), m + len(Ga)))]])
    z = np.linalg.solve(K, np.concatenate([-c, b, h[active]]))
    mu = np.zeros(len(h))
    mu[active] = z[n + m:]
    return z[:n], z[n:n + m], mu


@settings(max_examples=8, deadline=None)
@given(st.integers(0, 2**31 - 1))
def test_augmented_lagrangian_matches_slsqp_and_the_exact_kkt_solution(seed):
    qp = random_qp(seed)
    ref = _slsqp(*qp)
    assert ref.success, ref.message
    active = qp[4] @ ref.x - qp[5] > -1e-8  # SLSQP tells which inequalities hold with equality
    x_star, lam_star, mu_star = _kkt_solve(*qp, active)
    assert np.all(mu_star >= -1e-9), "SLSQP's active set is not optimal; the oracle does not apply"
    r = _solve_qp(*map(jnp.asarray, qp))
    assert bool(r.converged), r.kkt
    close(r.x, x_star, rtol=0, atol=1e-7)
    close(r.x, ref.x, rtol=0, atol=1e-6)
    close(r.eq_multipliers, lam_star, rtol=0, atol=1e-6)
    close(r.ineq_multipliers, mu_star, rtol=0, atol=1e-6)
    assert np.all(np.asarray(r.ineq_multipliers) >= 0)
    # The reported residuals are the KKT conditions, recomputed here in numpy.
    x, lam, mu = (np.asarray(v) for v in (r.x, r.eq_multipliers, r.ineq_multipliers))
    Q, c, A, b, G, h = qp
    want = [np.max(np.abs(Q @ x + c + A.T @ lam + G.T @ mu)), np.max(np.abs(A @ x - b)),
            np.max(np.maximum(G @ x - h, 0)), np.max(np.abs(mu * (G @ x - h)))]
    close(r.kkt, want, rtol=1e-6, atol=1e-13)


def test_multipliers_are_sensitivities_of_the_optimal_value():
    # d f*/d h_i = -μ_i for Gx <= h (and d f*/d b_j = -λ_j for Ax = b); f*(perturbed) from the exact KKT solve.
    qp = random_qp(11)
    r = _solve_qp(*map(jnp.asarray, qp))
    Q, c, A, b, G, h = qp
    active = np.asarray(r.ineq_multipliers) > 1e-9
    assert active.any()
    fstar = lambda x: 0.5 * x @ Q @ x + c @ x
    eps = 1e-6
    for i in np.flatnonzero(active):
        dh = np.eye(len(h))[i] * eps
        slope = (fstar(_kkt_solve(Q, c, A, b, G, h + dh, active)[0]) -
                 fstar(_kkt_solve(Q, c, A, b, G, h - dh, active)[0])) / (2 * eps)
        close(-float(r.ineq_multipliers[i]), slope, rtol=1e-6, atol=1e-8)
    for j in range(len(b)):
        db = np.eye(len(b))[j] * eps
        slope = (fstar(_kkt_solve(Q, c, A, b + db, G, h, active)[0]) -
                 fstar(_kkt_solve(Q, c, A, b - db, G, h, active)[0])) / (2 * eps)
        close(-float(r.eq_multipliers[j]), slope, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64], ids=["float32", "float64"])
def test_augmented_lagrangian_nonlinear_constraint_closed_form(dtype):
    # min ‖x - a‖² s.t. ‖x‖² <= 1 with ‖a‖ > 1: x = a/‖a‖, μ = ‖a‖ - 1; the second problem's constraint
    # is inactive (‖a‖ < 1): x = a, μ = 0. Batched over starts with vmap.
    a_out, a_in = np.array([2.0, 1.0]), np.array([0.3, -0.2])
    starts = jnp.asarray([[0.0, 0.0], [3.0, -2.0], [-1.0, 4.0]], dtype)

    def solve(a, x0):
        return optim.augmented_lagrangian(lambda x: jnp.sum((x - a) ** 2), x0, ineq=lambda x: x @ x - 1.0)

    tol = 1e-3 if dtype == jnp.float32 else 1e-7
    for a, x_want, mu_want in ((a_out, a_out / np.linalg.norm(a_out), np.linalg.norm(a_out) - 1), (a_in, a_in, 0.0)):
        r = jax.jit(jax.vmap(solve, in_axes=(None, 0)))(jnp.asarray(a, dtype), starts)
        assert r.x.dtype == dtype and np.asarray(r.converged).all(), r
        close(r.x, np.broadcast_to(x_want, (3, 2)), rtol=0, atol=tol)
        close(r.ineq_multipliers[:, 0], np.full(3, mu_want), rtol=0, atol=tol)
        assert r.eq_multipliers.shape == (3, 0)


def test_augmented_lagrangian_reports_when_it_has_not_converged():
    qp = random_qp(3)
    r = jax.jit(lambda *q: optim.augmented_lagrangian(
        lambda x: 0.5 * x @ q[0] @ x + q[1] @ x, jnp.zeros(5), eq=lambda x: q[2] @ x - q[3],
        ineq=lambda x: q[4] @ x - q[5], tol=1e-10, max_outer=1))(*map(jnp.asarray, qp))
    assert not bool(r.converged) and int(r.iterations) == 1 and float(jnp.max(r.kkt)) > 1e-10
