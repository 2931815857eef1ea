"""Named optimizers, each a `chain` of the small transforms in `transforms.py`.

`learning_rate` is everywhere a number, a scalar array, or a schedule ``step -> lr``.
Every optimizer returns descent updates: ``params = apply_updates(params, updates)``.
"""
from fungpt.optim.base import GradientTransformation, chain, identity
from fungpt.optim.transforms import (
    add_decayed_weights,
    scale_by_adam,
    scale_by_learning_rate,
    scale_by_lion,
    scale_by_rms,
    scale_by_rss,
    trace,
)


def _check(name, **values):
    # Only Python numbers are checked: arrays (injected hyperparameters) may be tracers.
    for k, (v, lo, hi) in values.items():
        if isinstance(v, int | float) and not lo <= v < hi:
            raise ValueError(f"{name}: {k} must be in [{lo}, {hi}), got {v}")


def _check_lr(name, learning_rate):
    if isinstance(learning_rate, int | float) and learning_rate < 0:
        raise ValueError(f"{name}: learning_rate must be >= 0 (updates already descend), got {learning_rate}")


def _decay(weight_decay, mask):
    # A literal 0 adds nothing to the chain (no multiply-add, no params needed).
    if isinstance(weight_decay, int | float) and weight_decay == 0:
        return identity()
    return add_decayed_weights(weight_decay, mask)


def sgd(learning_rate, momentum: float = 0.0, nesterov: bool = False) -> GradientTransformation:
    """SGD: ``θ ← θ - lr·g``; with momentum μ (heavy ball) ``b ← μb + g, θ ← θ - lr·b``;
    with `nesterov`, ``θ ← θ - lr·(g + μb)`` (PyTorch's form of Nesterov's look-ahead).
    """
    _check_lr("sgd", learning_rate)
    _check("sgd", momentum=(momentum, 0.0, 1.0))
    if nesterov and isinstance(momentum, int | float) and momentum == 0:
        raise ValueError("sgd: nesterov=True needs momentum > 0")
    use_trace = nesterov or not isinstance(momentum, int | float) or momentum > 0
    first = trace(momentum, nesterov) if use_trace else identity()
    return chain(first, scale_by_learning_rate(learning_rate))


def adagrad(
    learning_rate, eps: float = 1e-10, initial_accumulator_value: float = 0.0
) -> GradientTransformation:
    """Adagrad: ``G ← G + g²; θ ← θ - lr·g/(sqrt(G) + ε)``."""
    _check_lr("adagrad", learning_rate)
    return chain(scale_by_rss(eps, initial_accumulator_value), scale_by_learning_rate(learning_rate))


def rmsprop(
    learning_rate, decay: float = 0.9, eps: float = 1e-8, momentum: float = 0.0, centered: bool = False
) -> GradientTransformation:
    """RMSProp: ``v ← ρv + (1-ρ)g²; θ ← θ - lr·g/(sqrt(v) + ε)``; `centered` uses ``v - m²``;
    `momentum` μ > 0 accumulates ``b ← μb + g/(sqrt(v)+ε)`` and steps ``-lr·b`` (PyTorch's RMSprop).
    """
    _check_lr("rmsprop", learning_rate)
    _check("rmsprop", decay=(decay, 0.0, 1.0), momentum=(momentum, 0.0, 1.0))
    use_trace = not isinstance(momentum, int | float) or momentum > 0
    return chain(
        scale_by_rms(decay, eps, centered),
        trace(momentum) if use_trace else identity(),
        scale_by_learning_rate(learning_rate),
    )


def adam(learning_rate, b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8) -> GradientTransformation:
    """Adam: ``θ ← θ - lr·m̂/(sqrt(v̂) + ε)`` (see `scale_by_adam`)."""
    _check_lr("adam", learning_rate)
    _check("adam", b1=(b1, 0.0, 1.0), b2=(b2, 0.0, 1.0))
    return chain(scale_by_adam(b1, b2, eps), scale_by_learning_rate(learning_rate))


def adamw(
    learning_rate,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
    weight_decay: float = 0.01,
    mask=None,
) -> GradientTransformation:
    """AdamW: ``θ ← θ - lr_t·(m̂/(sqrt(v̂) + ε) + λθ)`` (decoupled decay, scaled by the schedule, as
    in PyTorch and nanoGPT). ``mask=None`` decays every leaf; ``mask=ndim_mask`` only matrices.
    """
    _check_lr("adamw", learning_rate)
    _check("adamw", b1=(b1, 0.0, 1.0), b2=(b2, 0.0, 1.0))
    return chain(
        scale_by_adam(b1, b2, eps),
        _decay(weight_decay, mask),
        scale_by_learning_rate(learning_rate),
    )


def lion(
    learning_rate, b1: float = 0.9, b2: float = 0.99, weight_decay: float = 0.0, mask=None
) -> GradientTransformation:
    """Lion: ``θ ← θ - lr·(sign(β1 m + (1-β1) g) + λθ)``, then ``m ← β2 m + (1-β2) g``."""
    _check_lr("lion", learning_rate)
    _check("lion", b1=(b1, 0.0, 1.0), b2=(b2, 0.0, 1.0))
    return chain(
        scale_by_lion(b1, b2),
        _decay(weight_decay, mask),
        scale_by_learning_rate(learning_rate),
    )
