"""Activity analysis: equations with no input that depends on a differentiated value run as plain
primal code (no rule needed, no residual kept), stop_gradient starts an inactive value, and a
while_loop raises in reverse mode only once a cotangent reaches it -- all as in JAX."""
import jax
import jax.numpy as jnp
import pytest
from jax import lax

import fungpt
from tests.autodiff.oracle import TOL64, assert_trees_close


def _trip_count(limit):
    """Iterations of a halving loop until the value drops below 1: a data-dependent trip count."""
    return lax.while_loop(lambda c: c[0] > 1.0, lambda c: (c[0] / 2, c[1] + 1.0), (limit, 0.0))[1]


def _both(f, *args, argnums=0):
    return fungpt.grad(f, argnums)(*args), jax.grad(f, argnums)(*args)


def test_while_on_inactive_values_inside_a_differentiated_function():
    f = lambda x, y: jnp.sum(jnp.sin(x)) * _trip_count(jnp.sum(y ** 2))
    x, y = jnp.linspace(0.1, 1.0, 5), jnp.arange(1.0, 4.0)
    ours, ref = _both(f, x, y)
    assert_trees_close(ours, ref, TOL64, "grad")
    assert_trees_close(jax.jit(fungpt.grad(f))(x, y), ref, TOL64, "jit(grad)")
    assert float(_trip_count(jnp.sum(y ** 2))) == 4.0  # 14 -> 7 -> 3.5 -> 1.75 -> 0.875


def test_while_on_stop_gradient_of_an_active_value():
    f = lambda x: jnp.sum(x ** 3) * _trip_count(lax.stop_gradient(jnp.sum(x)))
    x = jnp.linspace(0.5, 2.0, 4)
    ours, ref = _both(f, x)
    assert_trees_close(ours, ref, TOL64)
    # and inside jit, scan and cond bodies
    g = lambda x: lax.scan(lambda c, xi: (c + jax.jit(f)(x * xi), None), 0.0, jnp.arange(1.0, 3.0))[0]
    assert_trees_close(fungpt.grad(g)(x), jax.grad(g)(x), TOL64, "scan(jit(while))")
    h = lambda x: lax.cond(jnp.sum(x) > 0, f, lambda x: jnp.sum(x), x)
    assert_trees_close(fungpt.grad(h)(x), jax.grad(h)(x), TOL64, "cond(while)")
    t = (jnp.ones_like(x),)
    assert_trees_close(fungpt.jvp(f, (x,), t), jax.jvp(f, (x,), t), TOL64, "jvp")


def test_while_with_an_active_carry_raises_only_when_a_cotangent_reaches_it():
    def loop(x):  # carries (counter, an active value)
        return lax.while_loop(lambda c: c[0] < 3, lambda c: (c[0] + 1, c[1] * 2.0), (0, x))

    unused = lambda x: jnp.sum(x) + 0.0 * loop(x)[0]  # only the integer counter is used
    x = jnp.arange(3.0)
    assert_trees_close(fungpt.grad(unused)(x), jax.grad(unused)(x), TOL64)
    used = lambda x: jnp.sum(loop(x)[1])
    for grad in (jax.grad, fungpt.grad):
        with pytest.raises(ValueError, match=r"Reverse-mode differentiation does not work for lax\.while_loop"):
            grad(used)(x)
    t = (jnp.ones_like(x),)
    assert_trees_close(fungpt.jvp(used, (x,), t), jax.jvp(used, (x,), t), TOL64, "forward mode still works")


def test_a_primitive_without_rule_on_an_inactive_path_does_not_raise():
    # tridiagonal has no derivative rule (nor in JAX); fed only inactive values it needs none.
    a = jnp.array([[2.0, 0.5, 0.1], [0.5, 3.0, 0.2], [0.1, 0.2, 4.0]])
    f = lambda x: jnp.sum(x * lax.linalg.tridiagonal(lax.stop_gradient(a * x[0]))[1])
    x = jnp.array([1.0, 2.0, 3.0])
    assert_trees_close(fungpt.grad(f)(x), jax.grad(f)(x), TOL64, "grad")
    t = (jnp.ones_like(x),)
    assert_trees_close(fungpt.jvp(f, (x,), t), jax.jvp(f, (x,), t), TOL64, "jvp")
    on_path = lambda x: jnp.sum(lax.linalg.tridiagonal(a * x[0])[1])
    with pytest.raises(NotImplementedError, match="'tridiagonal'"):
        fungpt.grad(on_path)(x)


def _inactive_chain(x):
    # Elementwise work on a stop_gradient'ed copy: its residuals would cost 8 arrays of x's size.
    c = lax.stop_gradient(x)
    for _ in range(8):
        c = jnp.sin(jnp.exp(c) * c)
    return jnp.sum(x * c)


def test_stop_gradient_outputs_are_inactive_and_keep_no_residuals():
    x = jnp.linspace(0.0, 1.0, 4096)
    g = fungpt.autodiff.graph(_inactive_chain, x)
    # mul(x, c) keeps c; nothing downstream of stop_gradient is differentiated
    assert len(g.residuals) == 1 and g.residual_bytes == x.nbytes, g.summary()
    assert_trees_close(fungpt.grad(_inactive_chain)(x), jax.grad(_inactive_chain)(x), TOL64)


def test_compiled_gradient_memory_does_not_grow_with_inactive_work():
    x = jnp.linspace(0.0, 1.0, 1 << 16)

    def temp_bytes(grad):
        return jax.jit(grad(_inactive_chain)).lower(x).compile().memory_analysis().temp_size_in_bytes

    ours, theirs = temp_bytes(fungpt.grad), temp_bytes(jax.grad)
    assert ours <= theirs + x.nbytes, f"ours {ours:,} B vs JAX {theirs:,} B of temporaries"
