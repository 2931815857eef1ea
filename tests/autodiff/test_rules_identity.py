"""Identity-like primitives (placement, naming, copies, barriers) against jax.vjp / jax.jvp, the
transpose identity and float64 central differences; and inside the programs where they appear."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax
from jax.ad_checkpoint import checkpoint_name

import fungpt
from fungpt.autodiff import rules
from tests.autodiff.oracle import TOL64, assert_trees_close, check_all

CASES = {
    "name": lambda x: jnp.sin(checkpoint_name(x * 2.0, "h")) ** 2,
    "device_put": lambda x: jax.device_put(x) ** 3,
    "device_put_tree": lambda x: (lambda a, b: a * b)(*jax.device_put((x, jnp.cos(x)))),
    "device_put_device": lambda x: jax.device_put(jnp.exp(x), jax.devices()[0]) * x,
    "copy": lambda x: jnp.array(x, copy=True) * x,
    "optimization_barrier": lambda x: (lambda a, b: a * b)(*lax.optimization_barrier((x, jnp.sin(x)))),
    "remat_policy_by_name": jax.checkpoint(lambda x: jnp.sin(checkpoint_name(jnp.exp(x), "a")) * x,
                                           policy=jax.checkpoint_policies.save_only_these_names("a")),
}


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("name", sorted(CASES))
def test_identity_like(name, dtype, key):
    x = jnp.linspace(0.1, 1.2, 5, dtype=dtype)
    check_all(CASES[name], (x,), key)


def test_primitives_appear_and_have_both_rules():
    x = jnp.ones(3)
    for name, prim_name in [("name", "name"), ("device_put", "device_put"), ("copy", "copy")]:
        eqns = jax.make_jaxpr(CASES[name])(x).jaxpr.eqns
        assert any(e.primitive.name == prim_name for e in eqns), (name, [e.primitive.name for e in eqns])
        p = rules.prim(prim_name)
        assert p in rules.vjp_rules and p in rules.jvp_rules


def test_jit_and_second_order_through_device_put_and_name():
    f = lambda x: jnp.sum(jnp.tanh(checkpoint_name(jax.device_put(x) * x, "z")))
    x = jnp.linspace(-1.0, 1.0, 4)
    assert_trees_close(jax.jit(fungpt.grad(f))(x), jax.grad(f)(x), TOL64, "jit(grad)")
    assert_trees_close(fungpt.hessian(f)(x), jax.hessian(f)(x), TOL64, "hessian")
