"""fungpt.optim.losses and their gradients against scipy closed forms, with fungpt.grad and jax.grad."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.special
from hypothesis import given, settings
from hypothesis import strategies as st

import fungpt
from fungpt import optim
from tests.helpers import GRAD, close

DTYPES = [np.float32, np.float64]
GRADS = {"fungpt": fungpt.grad, "jax": jax.grad}


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
    r, tol = p - t, GRAD[np.dtype(dtype)]
    vals, grads = jax.jit(lambda p, t: _regression(GRADS[gname], p, t))(jnp.asarray(p, dtype), jnp.asarray(t, dtype))
    hub = np.where(np.abs(r) <= 1.5, 0.5 * r**2, 1.5 * (np.abs(r) - 0.75))
    for got, want in zip(vals + grads, (r**2, np.abs(r), hub, 2 * r, np.sign(r), np.clip(r, -1.5, 1.5)), strict=True):
        assert got.dtype == np.dtype(dtype)
        close(got, want, rtol=tol)


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
    tol = GRAD[np.dtype(dtype)]
    for got, want in zip(vals + grads, want_vals + want_grads, strict=True):
        close(got, want, rtol=tol, atol=tol)


_ce_grad = jax.jit(fungpt.grad(optim.softmax_cross_entropy))


@settings(max_examples=15, deadline=None)
@given(st.floats(-1e4, 1e4), st.integers(0, 2))
def test_cross_entropy_is_finite_for_extreme_logits(big, label):
    logits = np.array([big, 0.0, -big])
    got = optim.softmax_cross_entropy(jnp.asarray(logits, jnp.float32), jnp.asarray(label, jnp.int32))
    want = scipy.special.logsumexp(logits) - logits[label]
    close(float(got), want, rtol=1e-6, atol=1e-6)
    got = optim.binary_cross_entropy_with_logits(jnp.asarray(logits, jnp.float32), jnp.ones(3, jnp.float32))
    close(np.asarray(got), np.logaddexp(0, -logits), rtol=1e-6, atol=1e-6)
    g = _ce_grad(jnp.asarray(logits, jnp.float32), jnp.asarray(label, jnp.int32))
    want = scipy.special.softmax(logits) - np.eye(3)[label]
    close(np.asarray(g), want, rtol=1e-5, atol=1e-6)


def test_losses_reject_bad_input():
    with pytest.raises(TypeError, match="integer"):
        optim.softmax_cross_entropy(jnp.zeros((2, 3)), jnp.zeros(2))
    with pytest.raises(ValueError, match="shape"):
        optim.softmax_cross_entropy(jnp.zeros((2, 3)), jnp.zeros(3, jnp.int32))
    with pytest.raises(ValueError, match="same shape"):
        optim.mse(jnp.zeros(3), jnp.zeros(4))
    with pytest.raises(ValueError, match="delta"):
        optim.huber(jnp.zeros(3), jnp.zeros(3), delta=0.0)


def test_softmax_cross_entropy_out_of_range_labels_are_nan_not_wrapped():
    logits = jnp.array([[1.0, 2.0, 3.0], [0.5, -1.0, 2.0]])
    ref = -(np.asarray(logits) - np.log(np.exp(np.asarray(logits)).sum(-1, keepdims=True)))  # -log softmax
    close(optim.softmax_cross_entropy(logits, jnp.array([0, 2])), [ref[0, 0], ref[1, 2]], rtol=1e-12)
    # -1 used to wrap to the last class (a plausible, wrong loss); now it reads NaN like K does
    assert np.isnan(np.asarray(optim.softmax_cross_entropy(logits, jnp.array([-1, 3])))).all()
