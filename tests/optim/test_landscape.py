"""fungpt.optim.landscape: convexity (with scale-relative tolerances), critical points against scipy,
Armijo against an explicit loop, gradient descent against a linear solve."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.optimize

from fungpt import optim
from tests.helpers import close

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


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64], ids=["float32", "float64"])
def test_convexity_classifies_textbook_functions_at_any_scale(key, dtype):
    # The verdict is scale-free and dtype-relative: f, 1e-9·f and 1e9·f are judged alike. A fixed absolute
    # tolerance called logsumexp non-convex in float32 (rounding of 5e-8 in λ_min) and 1e-9·sin(x) convex.
    fs = {(name, c): (lambda x, f=f, c=c: c * f(x)) for name, f in {**CONVEX, **NONCONVEX}.items()
          for c in (1e-9, 1.0, 1e9)}
    # One compiled program for all functions: compile time, not arithmetic, dominates here.
    reports = jax.jit(lambda k: {nc: optim.convexity(f, k, dim=2, n=32, dtype=dtype) for nc, f in fs.items()})(key)
    for (name, c), report in reports.items():
        assert report.midpoint_gap.dtype == dtype
        assert bool(optim.is_convex(report)) == (name in CONVEX), (name, c, report)


def test_the_issues_convexity_reproducers():
    verdicts = jax.jit(lambda k: [optim.is_convex(optim.convexity(f, k, 3, dtype=jnp.float32))
                                  for f in (jax.nn.logsumexp, lambda x: 1e-9 * jnp.sin(x).sum())])
    assert [bool(v) for v in verdicts(jax.random.key(0))] == [True, False]


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
        close(np.asarray(x), x_star, rtol=0, atol=1e-10)
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
        close(np.asarray(x), ref, rtol=0, atol=1e-6)
        assert abs(float(himmelblau(x))) < 1e-20
        assert int(kind(x)) == optim.MINIMUM
        found.append(np.asarray(x))
    assert len({tuple(np.round(x, 6)) for x in found}) == 4


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
    close(np.asarray(x), np.linalg.solve(np.asarray(A), np.asarray(b)), rtol=1e-8, atol=0)
    assert np.all(np.diff(np.asarray(losses)) <= 1e-15)


