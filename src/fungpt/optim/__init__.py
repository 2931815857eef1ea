"""Chapter 5, optimization: our optimizers (no optax) as pairs of pure functions, and the landscape.

    opt = chain(clip_by_global_norm(1.0),
                adamw(warmup_cosine(1e-3, 100, 2000, 1e-4), b2=0.99, weight_decay=0.1, mask=ndim_mask))
    state = opt.init(params)
    updates, state = opt.update(grads, state, params)
    params = apply_updates(params, updates)
"""
from fungpt.optim.alias import adagrad, adam, adamw, lion, rmsprop, sgd
from fungpt.optim.base import EmptyState, GradientTransformation, apply_updates, chain, identity
from fungpt.optim.clip import (
    ClipByGlobalNormState,
    clip,
    clip_by_global_norm,
    clip_by_leaf_norm,
    global_norm,
)
from fungpt.optim.schedules import (
    constant,
    cosine_decay,
    exponential,
    inverse_sqrt,
    linear,
    piecewise_constant,
    warmup_cosine,
)
from fungpt.optim.transforms import (
    ScaleByAdamState,
    ScaleByLionState,
    ScaleByRmsState,
    ScaleByRssState,
    ScaleByScheduleState,
    TraceState,
    add_decayed_weights,
    ndim_mask,
    scale,
    scale_by_adam,
    scale_by_learning_rate,
    scale_by_lion,
    scale_by_rms,
    scale_by_rss,
    scale_by_schedule,
    trace,
)
from fungpt.optim.wrappers import (
    AccumulateState,
    InjectHyperparamsState,
    accumulate_gradients,
    inject_hyperparams,
    set_hyperparams,
)

__all__ = [
    "AccumulateState",
    "ClipByGlobalNormState",
    "EmptyState",
    "GradientTransformation",
    "InjectHyperparamsState",
    "ScaleByAdamState",
    "ScaleByLionState",
    "ScaleByRmsState",
    "ScaleByRssState",
    "ScaleByScheduleState",
    "TraceState",
    "accumulate_gradients",
    "adagrad",
    "adam",
    "adamw",
    "add_decayed_weights",
    "apply_updates",
    "chain",
    "clip",
    "clip_by_global_norm",
    "clip_by_leaf_norm",
    "constant",
    "cosine_decay",
    "exponential",
    "global_norm",
    "identity",
    "inject_hyperparams",
    "inverse_sqrt",
    "linear",
    "lion",
    "ndim_mask",
    "piecewise_constant",
    "rmsprop",
    "scale",
    "scale_by_adam",
    "scale_by_learning_rate",
    "scale_by_lion",
    "scale_by_rms",
    "scale_by_rss",
    "scale_by_schedule",
    "set_hyperparams",
    "sgd",
    "trace",
    "warmup_cosine",
]
