"""The train step (loss → grad → update), the eval function, the data mesh, and the step benchmark.

One step (``s`` = number of updates done so far, ``B`` batch, ``T`` block, ``A`` accumulation steps):

    x, y  = get_batch(fold_in(k_data, s), train_ids, A·B, T)       # (A, B, T) windows, sharded over "data"
    ℓ, g  = mean over A micro-batches of value_and_grad(loss)(θ, x_a, y_a, fold_in(k_drop, s))
    u, σ  = optimizer.update(g, σ, θ)                                # clip → Adam → decay → −lr(s)
    θ     = θ + u    (kept unchanged if ℓ or ‖g‖ is not finite: the loop then stops, naming s)

The gradient function is a value: ``fungpt.value_and_grad`` (our autodiff, the default) or
``jax.value_and_grad`` for comparison, applied to the same loss code. Every random choice is a
``fold_in`` of the seed's key with the step, so a resumed run replays the uninterrupted one bit for bit.

The mesh is `fungpt.gpt.sharding`'s 2-D ``("data", "model")`` grid (default: every device on "data"): the
batch is split along "data", parameters and optimizer state are stored sharded as `sharding.state_specs`
says (FSDP along "data", Megatron splits along "model"), and XLA inserts the collectives. One device is the
same code path. With many processes call `sharding.initialize_distributed` first: ``jax.devices()`` is then
global, arrays are built with ``jax.make_array_from_callback``, and only process 0 writes files.
"""
from __future__ import annotations

import functools
import time
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from fungpt import optim
from fungpt.autodiff import value_and_grad as our_value_and_grad
from fungpt.gpt import data as data_lib
from fungpt.gpt import model as gpt
from fungpt.gpt import sharding
from fungpt.gpt.config import GPTConfig, TrainConfig
from fungpt.runtime import tune_malloc

__all__ = [
    "Functions", "Model", "TrainState", "bench_step", "compiled_functions", "decay_mask", "estimate_loss", "functions",
    "gpt_model", "make_eval_fn", "make_mesh", "make_optimizer", "make_train_step", "put_ids", "run_keys",
    "state_specs", "step_fields",
]


class Model(NamedTuple):
    """``init(key) -> params``; ``loss(params, x, y, key) -> mean cross-entropy`` with x, y (B, T) int32.

    ``key`` drives dropout; a loss without dropout ignores it.
    """

    init: Callable
    loss: Callable


def gpt_model(cfg: TrainConfig, vocab_size: int) -> tuple[Model, GPTConfig]:
    """The GPT of `fungpt.gpt` as a `Model`, and its GPTConfig (``cfg.model`` with ``vocab_size``)."""
    mcfg = cfg.model_config(vocab_size)

    def loss(params, x, y, key):
        # key=None (evaluation) means no dropout
        return gpt.loss(params, x, y, mcfg, train=key is not None and mcfg.dropout > 0, key=key)

    return Model(lambda key: gpt.init_params(mcfg, key), loss), mcfg


def make_optimizer(cfg: TrainConfig):
    """nanoGPT's optimizer: clip to global norm ``grad_clip`` → AdamW(β1, β2, weight decay on ≥2-D params)
    with lr = warmup_cosine(learning_rate, warmup_iters, lr_decay_iters, min_lr)."""
    schedule = optim.warmup_cosine(cfg.learning_rate, cfg.warmup_iters, cfg.lr_decay_iters, cfg.min_lr)
    return optim.chain(
        optim.clip_by_global_norm(cfg.grad_clip),
        optim.adamw(schedule, b1=cfg.beta1, b2=cfg.beta2, weight_decay=cfg.weight_decay, mask=decay_mask),
    ), schedule


def decay_mask(params):
    """True for the matrices nanoGPT decays (embeddings and dense weights), False for biases and layer norms:
    ``optim.ndim_mask`` with the stacked layer axis of ``h`` not counted (a layer norm's (L, C) gain is 1-D per layer).
    """
    return optim.ndim_mask(params, stacked=("h",))


def run_keys(seed: int) -> tuple[jax.Array, ...]:
    """The run's five independent key streams: (init, data, dropout, eval, sample) = split(key(seed), 5).

    Step ``s`` draws its batch from ``fold_in(data, s)`` and its dropout masks from ``fold_in(dropout, s)``.
    """
    return tuple(jax.random.split(jax.random.key(seed), 5))


class TrainState(NamedTuple):
    params: Any
    opt_state: Any


def make_mesh(devices=None, mesh: str | tuple | None = None) -> Mesh:
    """The ``("data", "model")`` mesh over ``devices`` (default: all devices, across hosts).

    ``mesh``: ``"data=D,model=M"`` (`sharding.parse_mesh`), a ``(D, M)`` pair, or None (every device on "data").
    """
    data, model = sharding.parse_mesh(mesh) if mesh is None or isinstance(mesh, str) else mesh
    return sharding.make_mesh(data, model, devices)


def state_specs(model: Model, optimizer, mesh: Mesh) -> TrainState:
    """The PartitionSpecs of a `TrainState` of ``model`` on ``mesh`` (`sharding.state_specs`, from shapes only)."""
    like = jax.eval_shape(lambda k: TrainState(p := model.init(k), optimizer.init(p)), jax.random.key(0))
    return sharding.state_specs(like, mesh)


def put_ids(ids: np.ndarray, mesh: Mesh) -> jax.Array:
    """A token array replicated over ``mesh`` (built per device, so it works across hosts too)."""
    return jax.make_array_from_callback(ids.shape, NamedSharding(mesh, P()), lambda idx: ids[idx])


def make_train_step(model: Model, optimizer, cfg: TrainConfig, mesh: Mesh, grad: str | None = None,
                    specs: TrainState | None = None):
    """``step(state, s, train_ids, k_data, k_drop) -> (state, loss, grad_norm, ok)``, jitted, state donated.

    `sharding.make_sharded_train_step` with the state kept in ``specs`` (default: `state_specs`; on a
    1-device mesh, unsharded); ``s`` is an int32 scalar (the number of updates done), so the step compiles once.
    """
    vg = our_value_and_grad if (grad or cfg.grad) == "fungpt" else jax.value_and_grad
    if mesh.devices.size == 1:
        # Nothing to shard: without the sharding constraints XLA fuses the step as before meshes existed,
        # so one device trains bit for bit as it always did (the constraints change a reduction's tiling).
        specs = None
    elif specs is None:
        specs = state_specs(model, optimizer, mesh)
    return sharding.make_sharded_train_step(model.loss, optimizer, mesh, specs, batch_size=cfg.batch_size,
                                            block_size=cfg.model.block_size, grad_accum=cfg.grad_accum,
                                            value_and_grad=vg)


def make_eval_fn(model: Model, cfg: TrainConfig, mesh: Mesh):
    """``eval(params, ids, key) -> mean loss`` over ``cfg.eval_iters`` random batches (no dropout)."""
    rows = NamedSharding(mesh, sharding.batch_spec(2))

    def one(params, ids, key):
        x, y = data_lib.get_batch(key, ids, cfg.batch_size, cfg.model.block_size)
        x, y = (jax.lax.with_sharding_constraint(v, rows) for v in (x, y))
        return model.loss(params, x, y, None)

    def evaluate(params, ids, key):
        keys = jax.random.split(key, cfg.eval_iters)
        return jnp.mean(jax.lax.map(lambda k: one(params, ids, k), keys))

    return jax.jit(evaluate)


def estimate_loss(eval_fn, params, ids, key) -> float:
    """Mean loss over the eval batches, as a Python float."""
    return float(eval_fn(params, ids, key))


class Functions(NamedTuple):
    """A run's compiled pieces: model config (None for a custom `Model`), optimizer, lr schedule, jitted
    init / optimizer init / step / eval, and the state's PartitionSpecs (`state_specs`)."""

    mcfg: Any
    optimizer: Any
    schedule: Callable
    init: Callable
    opt_init: Callable
    step: Callable
    eval: Callable
    specs: Any = None


def functions(model: Model, mcfg, cfg: TrainConfig, mesh: Mesh, step: bool = True) -> Functions:
    """The `Functions` of any `Model` (``step=False`` leaves the step out)."""
    optimizer, schedule = make_optimizer(cfg)
    specs = state_specs(model, optimizer, mesh)
    return Functions(mcfg, optimizer, schedule, jax.jit(model.init, out_shardings=sharding.named(specs.params, mesh)),
                     jax.jit(optimizer.init, out_shardings=sharding.named(specs.opt_state, mesh)),
                     make_train_step(model, optimizer, cfg, mesh, specs=specs) if step else None,
                     make_eval_fn(model, cfg, mesh), specs)


def step_fields(cfg: TrainConfig) -> TrainConfig:
    """``cfg`` with the fields that only steer the loop blanked, so runs differing in them share compiled
    functions (the key of `compiled_functions`)."""
    return cfg.replace(data=None, max_iters=1, eval_interval=1, ckpt_interval=1, log_interval=1, out_dir="",
                       sample_tokens=0, init_from=None)


@functools.lru_cache(maxsize=8)
def _gpt_shared(cfg: TrainConfig, vocab_size: int, mesh: Mesh):
    # init, optimizer init and eval do not depend on the gradient function: compiled once for both
    model, mcfg = gpt_model(cfg, vocab_size)
    return model, functions(model, mcfg, cfg, mesh, step=False)


@functools.lru_cache(maxsize=8)
def compiled_functions(cfg: TrainConfig, vocab_size: int, mesh: Mesh) -> Functions:
    """The GPT's `Functions` for ``step_fields(cfg)``, cached per (config, vocabulary, mesh)."""
    model, fns = _gpt_shared(cfg.replace(grad="fungpt"), vocab_size, mesh)
    return fns._replace(step=make_train_step(model, fns.optimizer, cfg, mesh, specs=fns.specs))


def bench_step(cfg: TrainConfig, grads=("fungpt", "jax"), steps: int = 50, rounds: int = 5,
               warmup: int = 3) -> dict:
    """Median seconds per jitted train step for each gradient function, timed in interleaved rounds.

    Returns ``{grad: {"ms_per_iter", "tokens_per_s", "compile_s", "cpu_ms_per_iter", "times"}}`` (one
    process, same data, same model, same optimizer; only the gradient function differs). ``compile_s`` is
    the first call: trace, compile and one step. Calls `fungpt.runtime.tune_malloc()`, as `train` does.
    """
    tune_malloc()
    tok, train_np, _ = data_lib.prepare_data(cfg)
    mesh = make_mesh()
    k_init, k_data, k_drop, _, _ = run_keys(cfg.seed)
    ids = put_ids(train_np, mesh)
    runs = {}
    for g in grads:
        fns = compiled_functions(step_fields(cfg.replace(grad=g)), tok.vocab_size, mesh)
        params = fns.init(k_init)
        state = TrainState(params, fns.opt_init(params))
        t = time.perf_counter()
        state, loss, _, _ = fns.step(state, jnp.int32(0), ids, k_data, k_drop)  # compiles (or reuses) it
        loss.block_until_ready()
        runs[g] = {"fn": fns.step, "state": state, "s": 1, "times": [], "cpu": [],
                   "compile_s": time.perf_counter() - t}

    def go(r, n, record):
        for _ in range(n):
            t, c = time.perf_counter(), time.process_time()
            r["state"], loss, _, _ = r["fn"](r["state"], jnp.int32(r["s"]), ids, k_data, k_drop)
            loss.block_until_ready()
            r["s"] += 1
            if record:
                r["times"].append(time.perf_counter() - t)
                r["cpu"].append(time.process_time() - c)

    for r in runs.values():
        go(r, warmup, False)
    for _ in range(rounds):
        for r in runs.values():
            go(r, max(1, steps // rounds), True)
    tokens = cfg.batch_size * cfg.model.block_size * cfg.grad_accum
    out = {}
    for g, r in runs.items():
        ms = 1e3 * float(np.median(r["times"]))
        out[g] = {"ms_per_iter": ms, "tokens_per_s": tokens / ms * 1e3, "compile_s": r["compile_s"],
                  "cpu_ms_per_iter": 1e3 * float(np.median(r["cpu"])), "times": r["times"]}
    return out
