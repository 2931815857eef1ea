"""fungpt.optim.base: chain's monoid laws, duck-typed transformations (optax's work as they are),
apply_updates' dtype rule, and errors that name the fix."""
import types

import hypothesis.extra.numpy as hnp
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fungpt import optim
from tests.helpers import EXACT, close
from tests.optim._refs import ref_adamw

small = hnp.arrays(np.float64, (3,), elements=st.floats(-10, 10))


@settings(max_examples=15, deadline=None)
@given(small, small)
def test_chain_is_a_monoid(g, p):
    grads, params = {"a": jnp.asarray(g)}, {"a": jnp.asarray(p)}
    a, b, c = optim.clip_by_global_norm(1.0), optim.scale_by_adam(), optim.add_decayed_weights(0.3)

    def first_update(t):
        return t.update(grads, t.init(params), params)[0]["a"]

    flat = first_update(optim.chain(a, b, c))
    np.testing.assert_array_equal(first_update(optim.chain(optim.chain(a, b), c)), flat)
    np.testing.assert_array_equal(first_update(optim.chain(a, optim.chain(b, c))), flat)
    np.testing.assert_array_equal(first_update(optim.chain(optim.identity(), b)), first_update(b))
    np.testing.assert_array_equal(first_update(optim.chain(b, optim.identity())), first_update(b))
    np.testing.assert_array_equal(first_update(optim.chain()), g)


class _Scale:
    """A transformation that is not our NamedTuple: any object with init/update (optax's style)."""

    def __init__(self, factor):
        self.factor = factor

    def init(self, params):
        del params
        return ()

    def update(self, updates, state, params=None):
        del params
        return jax.tree.map(lambda u: self.factor * u, updates), state


def test_chain_accepts_any_object_with_init_and_update():
    # A plain class and a SimpleNamespace of functions both compose, in every combinator.
    g = {"a": jnp.asarray([3.0, -4.0])}
    ns = types.SimpleNamespace(init=lambda p: (), update=lambda u, s, p=None: (jax.tree.map(lambda x: x + 1, u), s))
    for t, want in ((optim.chain(_Scale(2.0), ns), [7.0, -7.0]),
                    (optim.masked(_Scale(2.0), {"a": True}), [6.0, -8.0]),
                    (optim.multi_transform({"x": ns}, {"a": "x"}), [4.0, -3.0]),
                    (optim.apply_if_finite(_Scale(-1.0), 1), [-3.0, 4.0]),
                    (optim.accumulate_gradients(_Scale(0.5), 1), [1.5, -2.0])):
        close(t.update(g, t.init(g), g)[0]["a"], want, rtol=0)


def test_chain_errors_name_the_fix():
    opt = optim.adam(0.1)
    with pytest.raises(ValueError, match="call init"):
        opt.update({"a": jnp.ones(2)}, None)
    with pytest.raises(TypeError, match=r"argument 1 must have init\(params\) and update"):
        optim.chain(optim.adam(0.1), lambda g: g)
    wrong_arity = types.SimpleNamespace(init=lambda p: (), update=lambda u: u)
    with pytest.raises(TypeError, match="update"):
        optim.chain(wrong_arity)
    with pytest.raises(TypeError, match="masked: inner"):
        optim.masked(object(), {"a": True})


def test_optax_clip_chains_with_our_adam_and_ours_in_optax():
    optax = pytest.importorskip("optax")
    with jax.numpy_dtype_promotion("standard"):  # optax mixes Python floats and int32 counts
        _optax_interop(optax)


def _optax_interop(optax):
    rng = np.random.default_rng(0)
    params = {"w": jnp.asarray(rng.standard_normal((3, 2))), "b": jnp.asarray(rng.standard_normal(2))}
    grads = [jax.tree.map(lambda p: jnp.asarray(rng.standard_normal(p.shape)) * 3, params) for _ in range(3)]
    mixed = optim.chain(optax.clip_by_global_norm(1.0), optim.adam(0.01))
    theirs = optax.chain(optim.clip_by_global_norm(1.0), optax.adam(0.01))
    s1, s2, p = mixed.init(params), theirs.init(params), params
    for g in grads:
        u1, s1 = mixed.update(g, s1, p)
        u2, s2 = theirs.update(g, s2, p)
        # Reference: clip in numpy, then Adam's equations (ref_adamw) on the clipped gradients.
        close(u1["w"], u2["w"], rtol=EXACT[np.dtype(np.float64)] * 100)
        p = optim.apply_updates(p, u1)
    clipped = []
    for g in grads:
        n = np.sqrt(sum(np.sum(np.asarray(x) ** 2) for x in jax.tree.leaves(g)))
        clipped.append(np.asarray(g["w"]) * min(1.0, 1.0 / n))
    close(u1["w"], ref_adamw(np.asarray(params["w"]), clipped)[-1], rtol=EXACT[np.dtype(np.float64)] * 100)


def test_apply_updates_adds_in_the_wider_dtype():
    p = jnp.asarray([1.0, 256.0], jnp.bfloat16)
    u = jnp.asarray([1e-3, 1.0], jnp.float32)
    out = optim.apply_updates(p, u)
    assert out.dtype == jnp.bfloat16
    want = (np.asarray(p, np.float32) + np.asarray(u)).astype(jnp.bfloat16)
    np.testing.assert_array_equal(np.asarray(out, np.float32), want.astype(np.float32))
