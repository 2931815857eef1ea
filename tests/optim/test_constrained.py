"""fungpt.optim.constrained: Lagrange multipliers against closed forms; the augmented Lagrangian against
scipy's SLSQP and an exact KKT solve on random QPs; multipliers against finite differences of the optimal value."""
import jax
import jax.numpy as jnp
import numpy as np
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


