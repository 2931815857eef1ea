"""Loss functions: elementwise (regression) or per example (classification); take the mean yourself.

All are pure `jax.numpy` code that `fungpt.grad` and `jax.grad` differentiate; the classification
losses are written in their log-sum-exp / softplus forms, so extreme logits give finite values.
"""
import jax
import jax.numpy as jnp

from fungpt.information import cross_entropy_from_logits


def _check_same(name, a, b):
    if a.shape != b.shape:
        raise ValueError(f"{name}: predictions {a.shape} and targets {b.shape} must have the same shape")
    if not jnp.issubdtype(a.dtype, jnp.floating):
        raise TypeError(f"{name}: predictions must be floating point, got {a.dtype}")


def mse(pred: jax.Array, target: jax.Array) -> jax.Array:
    """Squared error ``(pred - target)²``, elementwise; ∂/∂pred = ``2 (pred - target)``."""
    _check_same("mse", pred, target)
    return jnp.square(pred - target.astype(pred.dtype))


def mae(pred: jax.Array, target: jax.Array) -> jax.Array:
    """Absolute error ``|pred - target|``, elementwise; ∂/∂pred = ``sign(pred - target)``."""
    _check_same("mae", pred, target)
    return jnp.abs(pred - target.astype(pred.dtype))


def huber(pred: jax.Array, target: jax.Array, delta: float = 1.0) -> jax.Array:
    """Huber loss, elementwise: ``½r²`` if ``|r| <= δ`` else ``δ(|r| - ½δ)``, with ``r = pred - target``.

    Quadratic near 0, linear in the tails; ∂/∂pred = ``clip(r, -δ, δ)``.
    """
    _check_same("huber", pred, target)
    if not delta > 0:
        raise ValueError(f"huber: delta must be > 0, got {delta}")
    r = jnp.abs(pred - target.astype(pred.dtype))
    quad = jnp.minimum(r, delta)
    # ½ quad² + δ (r - quad) equals both branches without a where, so the gradient has no NaN branch.
    return 0.5 * jnp.square(quad) + delta * (r - quad)


def softmax_cross_entropy(logits: jax.Array, labels: jax.Array) -> jax.Array:
    """``-log softmax(logits)[label] = logsumexp(logits) - logits[label]``, per example.

    logits (..., K) float, labels (...) int in [0, K) → (...). ∂/∂logits = ``softmax(logits) - onehot``.
    A label outside [0, K) gives NaN (value and gradient).  This is
    `fungpt.information.cross_entropy_from_logits`, the one implementation (chapter 7 owns it).
    """
    return cross_entropy_from_logits(logits, labels)


def binary_cross_entropy_with_logits(logits: jax.Array, labels: jax.Array) -> jax.Array:
    """``-y log σ(x) - (1-y) log(1-σ(x)) = max(x, 0) - x y + log(1 + e^{-|x|})``, elementwise.

    labels in [0, 1] (cast to the logits' dtype); ∂/∂x = ``σ(x) - y``.
    """
    _check_same("binary_cross_entropy_with_logits", logits, labels)
    y = labels.astype(logits.dtype)
    return jnp.maximum(logits, 0) - logits * y + jnp.log1p(jnp.exp(-jnp.abs(logits)))


def hinge(scores: jax.Array, labels: jax.Array) -> jax.Array:
    """``max(0, 1 - y·s)`` elementwise, labels y in {-1, +1}; ∂/∂s = ``-y`` where ``y·s < 1``, else 0."""
    _check_same("hinge", scores, labels)
    return jnp.maximum(0, 1 - labels.astype(scores.dtype) * scores)
