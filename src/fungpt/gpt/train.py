"""Training: one jitted step, a loop with evals, checkpoints, exact resume, and data parallelism.

One step (``s`` = number of updates done so far, ``B`` batch, ``T`` block, ``A`` accumulation steps):

    x, y  = get_batch(fold_in(k_data, s), train_ids, A·B, T)       # (A, B, T) windows, sharded over "data"
    ℓ, g  = mean over A micro-batches of value_and_grad(loss)(θ, x_a, y_a, fold_in(k_drop, s))
    u, σ  = optimizer.update(g, σ, θ)                                # clip → Adam → decay → −lr(s)
    θ     = θ + u    (kept unchanged if ℓ or ‖g‖ is not finite: the loop then stops, naming s)

The gradient function is a value: ``fungpt.value_and_grad`` (our autodiff, the default) or
``jax.value_and_grad`` for comparison, applied to the same loss code. Every random choice is a
``fold_in`` of the seed's key with the step, so a resumed run replays the uninterrupted one bit for bit.

Data parallelism is JAX's own: a 1-D ``Mesh`` over the devices with axis ``"data"``; the batch is
constrained to ``P("data")``, parameters and optimizer state are replicated, and ``jax.jit`` inserts the
all-reduce. One device is the same code path. On a multi-host TPU slice call
``jax.distributed.initialize()`` first: ``jax.devices()`` is then global, arrays are built with
``jax.make_array_from_callback``/``jit(out_shardings=...)``, and only process 0 writes files.
"""
from __future__ import annotations

import dataclasses
import functools
import json
import math
import pathlib
import signal
import time
from collections.abc import Callable
from typing import Any, Literal, NamedTuple, get_args

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from fungpt import optim
from fungpt._names import did_you_mean
from fungpt.gpt import checkpoint as ckpt_lib
from fungpt.gpt import data as data_lib
from fungpt.runtime import tune_malloc

__all__ = [
    "PRESETS", "Model", "NonFiniteError", "Run", "TrainConfig", "TrainResult", "TrainState", "bench_step",
    "config_from", "decay_mask", "estimate_loss", "evaluate_text", "load_run", "make_eval_fn", "make_mesh",
    "make_optimizer", "make_train_step", "run_keys", "sample_text", "tokenizer_from_dict", "train",
]

# The fields with a fixed set of values; `fungpt train --help` lists them from these annotations.
Dtype = Literal["float32", "bfloat16"]
GradName = Literal["fungpt", "jax"]
TokenizerName = Literal["char", "bpe"]
_DTYPES, _GRADS, _TOKENIZERS = (get_args(t) for t in (Dtype, GradName, TokenizerName))


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Everything a run needs; the defaults are the ``baby`` preset with nanoGPT's shakespeare_char settings.

    Model: n_layer, n_head, n_embd, block_size (T), dropout, bias, scan_unroll (layers per iteration of the
    scan over blocks; 0 = all of them: unrolled, the backward pass runs ~20% faster on CPU).
    Data: data (None = the shipped corpus, or a UTF-8 file / folder of .txt), tokenizer ("char" or "bpe"
    with vocab_size), val_fraction.
    Optimisation: batch_size (B, per micro-batch), grad_accum (A), max_iters, AdamW (learning_rate peak,
    min_lr, warmup_iters, lr_decay_iters, beta1, beta2, weight_decay on ≥2-D params), grad_clip (global
    norm). Run: eval_interval/eval_iters (val loss = mean over eval_iters batches), ckpt_interval,
    log_interval, seed, dtype ("float32" or "bfloat16" matrix products with f32 accumulation and f32
    master weights), grad ("fungpt" or "jax"), out_dir, sample_tokens (printed at the end).
    """

    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 128
    block_size: int = 64
    dropout: float = 0.0
    bias: bool = True
    scan_unroll: int = 0
    data: str | None = None
    tokenizer: TokenizerName = "char"
    vocab_size: int = 512
    val_fraction: float = 0.1
    batch_size: int = 12
    grad_accum: int = 1
    max_iters: int = 2000
    learning_rate: float = 1e-3
    min_lr: float = 1e-4
    warmup_iters: int = 100
    lr_decay_iters: int = 2000
    beta1: float = 0.9
    beta2: float = 0.99
    weight_decay: float = 0.1
    grad_clip: float = 1.0
    eval_interval: int = 250
    eval_iters: int = 20
    ckpt_interval: int = 1000
    log_interval: int = 10
    seed: int = 1337
    dtype: Dtype = "float32"
    grad: GradName = "fungpt"
    out_dir: str = "runs/baby"
    sample_tokens: int = 300

    def __post_init__(self):
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            want = {"int": int, "float": (int, float), "bool": bool, "str": str}.get(str(f.type))
            if want is not None and (not isinstance(v, want) or (want is not bool and isinstance(v, bool))):
                raise TypeError(f"TrainConfig.{f.name} must be {f.type}, got {v!r}")
        for name in ("n_layer", "n_head", "n_embd", "block_size", "batch_size", "grad_accum", "max_iters",
                     "eval_interval", "eval_iters", "ckpt_interval", "log_interval", "lr_decay_iters",
                     "vocab_size"):
            if getattr(self, name) <= 0:
                raise ValueError(f"TrainConfig.{name} must be > 0, got {getattr(self, name)}")
        for name in ("warmup_iters", "sample_tokens", "seed", "scan_unroll"):
            if getattr(self, name) < 0:
                raise ValueError(f"TrainConfig.{name} must be >= 0, got {getattr(self, name)}")
        if self.n_embd % self.n_head:
            raise ValueError(f"n_embd ({self.n_embd}) must be divisible by n_head ({self.n_head})")
        if self.lr_decay_iters <= self.warmup_iters:
            raise ValueError(f"lr_decay_iters ({self.lr_decay_iters}) must exceed warmup_iters ({self.warmup_iters})")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        # The optimizer's floats, checked here so a bad value is refused before the data is read (a
        # negative or NaN learning rate would otherwise train, ascending or stopping at step 2).
        if not 0.0 < self.learning_rate < math.inf:
            raise ValueError(f"learning_rate must be a finite number > 0, got {self.learning_rate}")
        if not 0.0 <= self.min_lr < math.inf:  # min_lr <= learning_rate is checked by train()
            raise ValueError(f"min_lr must be a finite number >= 0, got {self.min_lr}")
        for name in ("beta1", "beta2"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {getattr(self, name)}")
        if not 0.0 <= self.weight_decay < math.inf:
            raise ValueError(f"weight_decay must be a finite number >= 0, got {self.weight_decay}")
        if not 0.0 < self.grad_clip < math.inf:
            raise ValueError(f"grad_clip must be a finite number > 0 (the global-norm bound), got {self.grad_clip}")
        if not 0.0 < self.val_fraction < 1.0:
            raise ValueError(f"val_fraction must be in (0, 1), got {self.val_fraction}")
        for name, allowed in (("dtype", _DTYPES), ("grad", _GRADS), ("tokenizer", _TOKENIZERS)):
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {allowed}, got {getattr(self, name)!r}")
        if self.tokenizer == "bpe" and self.vocab_size < 256:
            raise ValueError(f"vocab_size must be >= 256 for the bpe tokenizer (the byte alphabet), "
                             f"got {self.vocab_size}")

    def replace(self, **changes) -> TrainConfig:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


# Fields that fix the shapes of parameters or optimizer state: a resumed run must not change them.
MODEL_FIELDS = ("n_layer", "n_head", "n_embd", "block_size", "bias", "tokenizer", "vocab_size")

PRESETS: dict[str, dict] = {
    "baby": {},
    "small": dict(n_layer=6, n_head=6, n_embd=384, block_size=256, batch_size=64, dropout=0.2,
                  max_iters=5000, lr_decay_iters=5000, eval_interval=500, eval_iters=200,
                  out_dir="runs/small"),
}


def config_from(preset: str = "baby", file: str | pathlib.Path | None = None, **overrides) -> TrainConfig:
    """A TrainConfig from a preset, then a TOML/JSON file's fields, then keyword overrides (later wins)."""
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose one of {sorted(PRESETS)}")
    fields = dict(PRESETS[preset])
    if file is not None:
        fields.update(_read_config_file(pathlib.Path(file)))
    fields.update(overrides)
    known = {f.name for f in dataclasses.fields(TrainConfig)}
    if unknown := sorted(set(fields) - known):
        raise ValueError(f"unknown config fields {unknown}{did_you_mean(unknown, known)}; "
                         f"known fields: {sorted(known)}")
    return TrainConfig(**fields)


def _read_config_file(path: pathlib.Path) -> dict:
    toml = path.suffix == ".toml"
    if toml:
        try:
            import tomllib
        except ModuleNotFoundError:  # Python 3.10
            raise ValueError(f"reading {path} needs Python 3.11+ (tomllib); use a JSON config file") from None
    try:
        text = path.read_text()
        loaded = tomllib.loads(text) if toml else json.loads(text)
    except FileNotFoundError:
        raise FileNotFoundError(f"config file {path} does not exist") from None
    except ValueError as e:  # TOMLDecodeError and JSONDecodeError are ValueErrors
        raise ValueError(f"config file {path} is not valid {'TOML' if toml else 'JSON'}: {e}") from None
    if not isinstance(loaded, dict):
        raise ValueError(f"config file {path} must hold a table/object of TrainConfig fields")
    return loaded


# --- the model and the optimizer, as plain functions ----------------------------------------


class Model(NamedTuple):
    """``init(key) -> params``; ``loss(params, x, y, key) -> mean cross-entropy`` with x, y (B, T) int32.

    ``key`` drives dropout; a loss without dropout ignores it.
    """

    init: Callable
    loss: Callable


def gpt_model(cfg: TrainConfig, vocab_size: int) -> tuple[Model, Any]:
    """The GPT of `fungpt.gpt` as a `Model`, and its GPTConfig."""
    from fungpt.gpt import config as gpt_config
    from fungpt.gpt import model as gpt

    mcfg = gpt_config.GPTConfig(
        vocab_size=vocab_size, block_size=cfg.block_size, n_layer=cfg.n_layer, n_head=cfg.n_head,
        n_embd=cfg.n_embd, dropout=float(cfg.dropout), bias=cfg.bias, compute_dtype=cfg.dtype,
        scan_unroll=cfg.scan_unroll or cfg.n_layer,
    )

    def loss(params, x, y, key):
        # key=None (evaluation) means no dropout
        return gpt.loss(params, x, y, mcfg, train=key is not None and cfg.dropout > 0, key=key)

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
    """True for the matrices nanoGPT decays (embeddings and dense weights), False for biases and layer norms.

    Judged by name, not rank: the GPT stacks its layers on a leading axis, so a layer norm's gain is 2-D.
    """
    def keep(path, leaf):
        names = [str(getattr(k, "key", getattr(k, "name", getattr(k, "idx", k)))) for k in path]
        return names[-1] == "weight" and not any(n.startswith("ln") for n in names) and leaf.ndim >= 2

    return jax.tree_util.tree_map_with_path(keep, params)


def _grad_fn(name: str):
    if name == "fungpt":
        import fungpt

        return fungpt.value_and_grad
    return jax.value_and_grad  # the comparison path only (--grad jax); the loss code is the same


# --- the step --------------------------------------------------------------------------------


def run_keys(seed: int) -> tuple[jax.Array, ...]:
    """The run's five independent key streams: (init, data, dropout, eval, sample) = split(key(seed), 5).

    Step ``s`` draws its batch from ``fold_in(data, s)`` and its dropout masks from ``fold_in(dropout, s)``.
    """
    return tuple(jax.random.split(jax.random.key(seed), 5))


class TrainState(NamedTuple):
    params: Any
    opt_state: Any


def make_mesh(devices=None) -> Mesh:
    """A 1-D mesh with axis ``"data"`` over ``devices`` (default: all devices, across hosts)."""
    devices = jax.devices() if devices is None else list(devices)
    return Mesh(np.array(devices), ("data",))


def make_train_step(model: Model, optimizer, cfg: TrainConfig, mesh: Mesh, grad: str | None = None):
    """``step(state, s, train_ids, k_data, k_drop) -> (state, loss, grad_norm, ok)``, jitted, state donated.

    ``s`` is an int32 scalar (the number of updates done), so the step compiles once.
    """
    value_and_grad = _grad_fn(grad or cfg.grad)
    vg = value_and_grad(model.loss)
    A, B, T = cfg.grad_accum, cfg.batch_size, cfg.block_size
    batch_sharding = NamedSharding(mesh, P(None, "data", None))
    replicated = NamedSharding(mesh, P())

    def step(state, s, train_ids, k_data, k_drop):
        x, y = data_lib.get_batch(jax.random.fold_in(k_data, s), train_ids, A * B, T)
        x = jax.lax.with_sharding_constraint(x.reshape(A, B, T), batch_sharding)  # (A, B, T)
        y = jax.lax.with_sharding_constraint(y.reshape(A, B, T), batch_sharding)
        keys = jax.random.split(jax.random.fold_in(k_drop, s), A)
        if A == 1:
            loss, grads = vg(state.params, x[0], y[0], keys[0])
        else:
            def micro(acc, inp):
                l, g = vg(state.params, *inp)
                return jax.tree.map(jnp.add, acc, (l, g)), None

            zero = jax.tree.map(jnp.zeros_like, (jnp.zeros((), jnp.float32), state.params))
            (loss, grads), _ = jax.lax.scan(micro, zero, (x, y, keys))
            loss, grads = jax.tree.map(lambda v: v / A, (loss, grads))
        gnorm = optim.global_norm(grads)  # the same expression as the clip's, so XLA computes it once
        ok = jnp.isfinite(loss) & jnp.isfinite(gnorm)
        updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
        new = TrainState(optim.apply_updates(state.params, updates), opt_state)
        # A non-finite step leaves the state as it was, so the last good state can still be saved.
        new = jax.tree.map(lambda n, o: jnp.where(ok, n, o), new, state)
        return new, loss, gnorm, ok

    return jax.jit(step, donate_argnums=0, out_shardings=(replicated, replicated, replicated, replicated))


def make_eval_fn(model: Model, cfg: TrainConfig, mesh: Mesh):
    """``eval(params, ids, key) -> mean loss`` over ``cfg.eval_iters`` random batches (no dropout)."""
    sharding = NamedSharding(mesh, P("data", None))

    def one(params, ids, key):
        x, y = data_lib.get_batch(key, ids, cfg.batch_size, cfg.block_size)
        x, y = (jax.lax.with_sharding_constraint(v, sharding) for v in (x, y))
        return model.loss(params, x, y, None)

    def evaluate(params, ids, key):
        keys = jax.random.split(key, cfg.eval_iters)
        return jnp.mean(jax.lax.map(lambda k: one(params, ids, k), keys))

    return jax.jit(evaluate)


def estimate_loss(eval_fn, params, ids, key) -> float:
    """Mean loss over the eval batches, as a Python float."""
    return float(eval_fn(params, ids, key))


# --- the loop ----------------------------------------------------------------------------------


class _Functions(NamedTuple):
    mcfg: Any
    optimizer: Any
    schedule: Callable
    init: Callable
    opt_init: Callable
    step: Callable
    eval: Callable


def _functions(model: Model, mcfg, cfg: TrainConfig, mesh: Mesh, step: bool = True) -> _Functions:
    optimizer, schedule = make_optimizer(cfg)
    replicated = NamedSharding(mesh, P())
    return _Functions(mcfg, optimizer, schedule, jax.jit(model.init, out_shardings=replicated),
                      jax.jit(optimizer.init, out_shardings=replicated),
                      make_train_step(model, optimizer, cfg, mesh) if step else None,
                      make_eval_fn(model, cfg, mesh))


def _step_fields(cfg: TrainConfig) -> TrainConfig:
    # Fields that only steer the loop are blanked so runs differing in them share compiled functions.
    return cfg.replace(data=None, max_iters=1, eval_interval=1, ckpt_interval=1, log_interval=1, out_dir="",
                       sample_tokens=0)


@functools.lru_cache(maxsize=8)
def _gpt_shared(cfg: TrainConfig, vocab_size: int, mesh: Mesh):
    # init, optimizer init and eval do not depend on the gradient function: compiled once for both
    model, mcfg = gpt_model(cfg, vocab_size)
    return model, _functions(model, mcfg, cfg, mesh, step=False)


@functools.lru_cache(maxsize=8)
def _gpt_functions(cfg: TrainConfig, vocab_size: int, mesh: Mesh) -> _Functions:
    model, fns = _gpt_shared(cfg.replace(grad="fungpt"), vocab_size, mesh)
    return fns._replace(step=make_train_step(model, fns.optimizer, cfg, mesh))


class NonFiniteError(RuntimeError):
    """The loss or gradient became NaN/inf; the run stopped and kept its last good checkpoint."""


class TrainResult(NamedTuple):
    run_dir: pathlib.Path
    step: int
    losses: list  # training loss of every step done in this call (floats, in order)
    evals: list  # (step, train_loss, val_loss) of every eval
    interrupted: bool
    sample: str | None


def _replicate(tree, mesh):
    # jit with out_shardings builds global arrays on every host (device_put cannot on multi-host).
    return jax.jit(lambda t: t, out_shardings=NamedSharding(mesh, P()))(tree)


def _put_ids(ids: np.ndarray, mesh: Mesh) -> jax.Array:
    sharding = NamedSharding(mesh, P())
    return jax.make_array_from_callback(ids.shape, sharding, lambda idx: ids[idx])


def prepare_data(cfg: TrainConfig, tokenizer: dict | None = None):
    """Load, tokenize and split the text; check both splits hold a window. Returns (tokenizer, train, val).

    ``tokenizer`` (a ``to_dict()`` from a checkpoint) is reused as is; otherwise a char vocabulary is built
    from the text, or a BPE tokenizer is trained. All checks happen here, before anything compiles.
    """
    text = data_lib.load_text(cfg.data)
    tok = tokenizer_from_dict(tokenizer) if tokenizer is not None else _build_tokenizer(cfg, text)
    ids = np.asarray(tok.encode(text), np.int32)
    train_ids, val_ids = data_lib.split(ids, cfg.val_fraction)
    data_lib.check_length(train_ids, cfg.block_size, "the training split")
    data_lib.check_length(val_ids, cfg.block_size, "the validation split")
    return tok, train_ids, val_ids


def _build_tokenizer(cfg: TrainConfig, text: str):
    from fungpt.gpt import tokenizer as tk

    return tk.CharTokenizer.from_text(text) if cfg.tokenizer == "char" else tk.train_bpe(text, cfg.vocab_size)


def tokenizer_from_dict(d: dict):
    """A `fungpt.gpt.tokenizer` CharTokenizer or BPETokenizer from its ``to_dict()`` (as in checkpoints)."""
    from fungpt.gpt import tokenizer as tk

    kinds = {"char": tk.CharTokenizer, "bpe": tk.BPETokenizer}
    if not isinstance(d, dict) or d.get("type") not in kinds:
        raise ckpt_lib.CheckpointError(f"unknown tokenizer in checkpoint: {str(d)[:80]}")
    return kinds[d["type"]].from_dict(d)


def _check_resumable(saved: dict, cfg: TrainConfig, run_dir) -> None:
    diff = [f"{k}: checkpoint {saved.get(k)!r} vs requested {getattr(cfg, k)!r}"
            for k in MODEL_FIELDS if saved.get(k) != getattr(cfg, k)]
    if diff:
        raise ckpt_lib.CheckpointError(f"{run_dir} was trained with an incompatible config ({'; '.join(diff)})")


def _resume_dir(resume) -> pathlib.Path:
    # --resume takes a run directory.  Its latest checkpoint folder is accepted as a name for the run; an
    # older one is refused: continuing it in place would re-save and prune the newer checkpoints.
    path = pathlib.Path(resume)
    if not (path / ckpt_lib.META_FILE).is_file() or (path / ckpt_lib.LATEST).is_file():
        return path
    latest = path.parent / ckpt_lib.LATEST
    if latest.is_file() and latest.read_text().strip() == path.name:
        return path.parent
    raise ckpt_lib.CheckpointError(
        f"{path} is a checkpoint folder but not the latest of its run; --resume takes a run directory "
        f"(to continue from this checkpoint, copy it into a new folder beside a 'latest' file naming it)")


def _check_fresh_dir(run_dir: pathlib.Path) -> None:
    # A new run writes metrics.jsonl (appended), loss.png and checkpoints: never into someone else's files.
    if (run_dir / ckpt_lib.LATEST).exists():
        raise ValueError(f"{run_dir} already holds a run; pass --resume {run_dir} or choose another --out-dir")
    if run_dir.exists() and (not run_dir.is_dir() or any(run_dir.iterdir())):
        raise ValueError(f"{run_dir} already exists and is not an empty folder; a new run needs a new or empty "
                         f"--out-dir (nothing in {run_dir} was touched)")


class _StopFlag:
    """SIGINT sets a flag the loop checks between steps; a second Ctrl-C interrupts at once."""

    def __init__(self):
        self.stop, self._old = False, None

    def __enter__(self):
        try:
            self._old = signal.signal(signal.SIGINT, self._handle)
        except ValueError:  # not the main thread: leave signals alone
            self._old = None
        return self

    def _handle(self, signum, frame):
        if self.stop:
            raise KeyboardInterrupt
        self.stop = True

    def __exit__(self, *exc):
        if self._old is not None:
            signal.signal(signal.SIGINT, self._old)


def train(cfg: TrainConfig, *, resume: str | pathlib.Path | None = None, model: Model | None = None,
          devices=None, callback: Callable | None = None, progress: bool = True,
          print_fn: Callable = print) -> TrainResult:
    """Train (or resume) a run into ``cfg.out_dir``; returns the losses, evals and final sample.

    ``resume``: a run directory (or its latest checkpoint folder); training continues from its latest
    checkpoint (the ``cfg`` given may change run fields such as max_iters, not the model's shape; a run
    already at ``max_iters`` is refused). Without it, ``cfg.out_dir`` must be new or an empty folder.
    ``model``: a `Model` to train instead of the GPT (it then gets no sample). ``callback(step, loss)``
    runs after each step's loss is known. Ctrl-C saves a checkpoint and returns with ``interrupted=True``.
    A non-finite loss or gradient raises NonFiniteError naming the step; the last checkpoint stays as it was.
    Calls `fungpt.runtime.tune_malloc()` (freed memory stays in the process: ~30% faster steps on CPU).
    """
    tune_malloc()
    if cfg.min_lr > cfg.learning_rate:  # here, not in TrainConfig: runs saved with it stay loadable
        raise ValueError(f"min_lr ({cfg.min_lr}) must not exceed learning_rate ({cfg.learning_rate}): the cosine "
                         f"schedule would raise the rate as it decays; set --min-lr too")
    saved = None
    if resume is not None:
        run_dir = _resume_dir(resume)
        saved = ckpt_lib.read_meta(run_dir)
        _check_resumable(saved["config"], cfg, run_dir)
        if saved["step"] >= cfg.max_iters:
            raise ValueError(f"{run_dir} is already at step {saved['step']} (max_iters {cfg.max_iters}); "
                             f"pass a larger --max-iters to train on")
        cfg = cfg.replace(out_dir=str(run_dir))
    else:
        run_dir = pathlib.Path(cfg.out_dir)
        _check_fresh_dir(run_dir)

    tok, train_np, val_np = prepare_data(cfg, saved["tokenizer"] if saved else None)
    mesh = make_mesh(devices)
    n_dev = mesh.devices.size
    if cfg.batch_size % n_dev:
        raise ValueError(f"batch_size {cfg.batch_size} must be divisible by the {n_dev} devices of the data mesh")
    if model is None:
        fns = _gpt_functions(_step_fields(cfg), tok.vocab_size, mesh)
    else:
        fns = _functions(model, None, cfg, mesh)
    mcfg, schedule, step_fn, eval_fn = fns.mcfg, fns.schedule, fns.step, fns.eval
    k_init, k_data, k_drop, k_eval, k_sample = run_keys(cfg.seed)

    params = fns.init(k_init)
    opt_state = fns.opt_init(params)
    step = 0
    if saved is not None:
        ck = ckpt_lib.load_checkpoint(run_dir, params, opt_state)
        params, opt_state, step = _replicate(ck.params, mesh), _replicate(ck.opt_state, mesh), ck.step
    state = TrainState(params, opt_state)
    train_ids, val_ids = _put_ids(train_np, mesh), _put_ids(val_np, mesh)
    is_main = jax.process_index() == 0
    run_dir.mkdir(parents=True, exist_ok=True)
    metrics_path = run_dir / "metrics.jsonl"
    if is_main and metrics_path.is_file() and metrics_path.read_bytes()[-1:] not in (b"", b"\n"):
        with open(metrics_path, "a") as f:  # a line cut short by a kill: start ours on a line of its own
            f.write("\n")

    def log(record):
        if is_main:
            with open(metrics_path, "a") as f:
                f.write(json.dumps(record) + "\n")

    saved_at = [step if saved is not None else None]  # the step of the newest checkpoint on disk

    def save(s):
        saved_at[0] = s
        if is_main:
            extra = {"model_config": mcfg.to_dict() if mcfg else None}
            ckpt_lib.save_checkpoint(run_dir, s, state.params, state.opt_state, jax.random.key(cfg.seed),
                                     cfg.to_dict(), tok.to_dict(), extra=extra)

    def evaluate(s):
        k = jax.random.fold_in(k_eval, s)
        tr, va = estimate_loss(eval_fn, state.params, train_ids, k), estimate_loss(eval_fn, state.params, val_ids, k)
        evals.append((s, tr, va))
        log({"step": s, "train_loss": tr, "val_loss": va, "val_ppl": math.exp(min(va, 700.0))})
        return tr, va

    losses, evals, interrupted = [], [], False
    tokens_per_step = cfg.batch_size * cfg.block_size * cfg.grad_accum
    bar = _progress(step, cfg.max_iters, progress and is_main)
    t0, t_last, s_last = time.perf_counter(), time.perf_counter(), step
    pending = None  # the previous step's (s, loss, gnorm, ok): read one step late so dispatch stays ahead

    def settle(p):
        s_done, loss, gnorm, ok = p
        if not bool(ok):
            kept = (f"the last good checkpoint (step {saved_at[0]}) in {run_dir} is kept" if saved_at[0] is not None
                    else f"no checkpoint was saved yet (ckpt_interval {cfg.ckpt_interval})")
            raise NonFiniteError(
                f"step {s_done + 1}: non-finite {'loss' if not np.isfinite(float(loss)) else 'gradient'} "
                f"(loss {float(loss)}, grad norm {float(gnorm)}); {kept}"
            )
        losses.append(float(loss))
        if callback is not None:
            callback(s_done + 1, float(loss))

    try:
        with _StopFlag() as flag:
            while step < cfg.max_iters:
                out_state, loss, gnorm, ok = step_fn(state, jnp.int32(step), train_ids, k_data, k_drop)
                if pending is not None:
                    settle(pending)
                state, pending = out_state, (step, loss, gnorm, ok)
                step += 1
                if step % cfg.log_interval == 0 or step == cfg.max_iters:
                    settle(pending)
                    pending = None
                    now = time.perf_counter()
                    tps = tokens_per_step * (step - s_last) / max(now - t_last, 1e-9)
                    t_last, s_last = now, step
                    lr = float(schedule(step - 1))
                    log({"step": step, "loss": losses[-1], "lr": lr, "tokens_per_s": tps,
                         "elapsed_s": now - t0})
                    if bar is not None:
                        bar.set_postfix(loss=f"{losses[-1]:.4f}", tok_s=f"{tps:,.0f}", refresh=False)
                if bar is not None:
                    bar.update(1)
                if step % cfg.eval_interval == 0 or step == cfg.max_iters:
                    if pending is not None:
                        settle(pending)
                        pending = None
                    tr, va = evaluate(step)
                    line = f"step {step}: train loss {tr:.4f}, val loss {va:.4f} (ppl {math.exp(min(va, 700.0)):.2f})"
                    if bar is not None:
                        bar.write(line)
                    elif print_fn is not None and is_main:
                        print_fn(line)
                if step % cfg.ckpt_interval == 0 and step < cfg.max_iters:
                    if pending is not None:
                        settle(pending)
                        pending = None
                    save(step)
                if flag.stop:
                    if pending is not None:
                        settle(pending)
                        pending = None
                    interrupted = True
                    break
            if pending is not None:
                settle(pending)
            save(step)
    finally:
        if bar is not None:
            bar.close()

    if is_main:
        _plot(metrics_path, run_dir / "loss.png")
    text = None
    if mcfg is not None and not interrupted and cfg.sample_tokens > 0:
        text = sample_text(state.params, mcfg, tok, "\n", cfg.sample_tokens, k_sample)
        if print_fn is not None:
            print_fn(text)
    return TrainResult(run_dir, step, losses, evals, interrupted, text)


def _progress(start, total, enabled):
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=total, initial=start, unit="it", dynamic_ncols=True, leave=True)


def _curves(metrics_path: pathlib.Path) -> tuple[list, list]:
    """The (step, train loss) and (step, val loss) points of a metrics.jsonl, sorted by step.

    A run killed after its last checkpoint and resumed logs the replayed steps again: the later record of
    a step wins, so the curve does not jump back. Lines that are not JSON objects (a write cut short) are
    skipped.
    """
    tr, ev = {}, {}
    for line in metrics_path.read_text().splitlines():
        try:
            r = json.loads(line)
        except ValueError:
            continue
        if isinstance(r, dict) and "step" in r:
            if "loss" in r:
                tr[r["step"]] = r["loss"]
            if "val_loss" in r:
                ev[r["step"]] = r["val_loss"]
    return sorted(tr.items()), sorted(ev.items())


def _plot(metrics_path: pathlib.Path, out: pathlib.Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tr, ev = _curves(metrics_path)
    fig, ax = plt.subplots(figsize=(5, 3.2), dpi=100)
    if tr:
        ax.plot(*zip(*tr, strict=True), lw=1, label="train (batch loss, logged steps)")
    if ev:
        ax.plot(*zip(*ev, strict=True), "o-", ms=3, label="validation")
    ax.set_xlabel("step")
    ax.set_ylabel("cross-entropy (nats/token)")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(out)
    plt.close(fig)


def sample_text(params, mcfg, tok, prompt: str, max_new_tokens: int, key, temperature: float = 0.8,
                top_k: int | None = 200, top_p: float | None = None) -> str:
    """Prompt + ``max_new_tokens`` generated tokens, decoded to text."""
    from fungpt.gpt.generate import generate

    if top_k is not None and top_k >= mcfg.vocab_size:
        top_k = None  # keeping the top V of V logits filters nothing (nanoGPT: min(top_k, V))
    ids = np.asarray(tok.encode(prompt), np.int32)
    if len(ids) == 0:
        raise ValueError("the prompt must hold at least one token")
    out = generate(params, mcfg, ids, max_new_tokens, key, temperature, top_k, top_p)
    return tok.decode(np.asarray(out))


# --- using a finished run ----------------------------------------------------------------------


class Run(NamedTuple):
    config: TrainConfig
    model_config: Any
    params: Any
    tokenizer: Any  # a fungpt.gpt.tokenizer CharTokenizer / BPETokenizer
    step: int


def load_run(run_dir) -> Run:
    """The config, GPTConfig, parameters and tokenizer of a run's latest checkpoint (verified)."""
    from fungpt.gpt import model as gpt

    meta = ckpt_lib.read_meta(run_dir)
    try:
        cfg = TrainConfig(**meta["config"])
    except (TypeError, ValueError) as e:
        raise ckpt_lib.CheckpointError(f"{run_dir}: the checkpoint's config is invalid: {e}") from None
    _, mcfg = gpt_model(cfg, tokenizer_from_dict(meta["tokenizer"]).vocab_size)
    like = jax.eval_shape(lambda: gpt.init_params(mcfg, jax.random.key(0)))
    ck = ckpt_lib.load_checkpoint(run_dir, like)
    return Run(cfg, mcfg, jax.tree.map(jnp.asarray, ck.params), tokenizer_from_dict(ck.tokenizer), ck.step)


def evaluate_text(run: Run, text: str | None = None, batch_size: int = 32) -> tuple[float, float, int]:
    """Mean next-token loss (nats) and perplexity exp(loss) of ``run`` on ``text``, and the tokens scored.

    The text (default: the run's validation split) is cut into consecutive windows of block_size T:
    x = ids[kT : kT + T], y = ids[kT + 1 : kT + T + 1]; a last partial window is dropped.
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size <= 0:
        raise ValueError(f"batch_size (windows per evaluation call) must be an int > 0, got {batch_size!r}")
    T_ = run.config.block_size
    if text is None:
        _, _, ids = prepare_data(run.config, run.tokenizer.to_dict())
    else:
        if not text:
            raise ValueError("the evaluation text is empty")
        ids = np.asarray(run.tokenizer.encode(text), np.int32)
    data_lib.check_length(ids, T_, "the evaluation text")
    n_win = (len(ids) - 1) // T_
    x = ids[: n_win * T_].reshape(n_win, T_)
    y = ids[1 : n_win * T_ + 1].reshape(n_win, T_)
    loss = float(jnp.mean(_window_losses(run.params, jnp.asarray(x), jnp.asarray(y), run.model_config, batch_size)))
    return loss, math.exp(loss), n_win * T_


@functools.partial(jax.jit, static_argnums=(3, 4))
def _window_losses(params, x, y, mcfg, batch_size):
    from fungpt.gpt import model as gpt

    # (W, T) windows -> (W,) mean losses, batch_size windows at a time (bounded memory on long texts)
    return jax.lax.map(lambda xy: gpt.loss(params, xy[0], xy[1], mcfg), (x, y), batch_size=batch_size)


def bench_step(cfg: TrainConfig, grads=("fungpt", "jax"), steps: int = 50, rounds: int = 5,
               warmup: int = 3) -> dict:
    """Median seconds per jitted train step for each gradient function, timed in interleaved rounds.

    Returns ``{grad: {"ms_per_iter", "tokens_per_s", "compile_s", "cpu_ms_per_iter", "times"}}`` (one
    process, same data,
    same model, same optimizer; only the gradient function differs). ``compile_s`` is the first call:
    trace, compile and one step. Calls `fungpt.runtime.tune_malloc()`, as `train` does.
    """
    tune_malloc()
    tok, train_np, _ = prepare_data(cfg)
    mesh = make_mesh()
    k_init, k_data, k_drop, _, _ = run_keys(cfg.seed)
    ids = _put_ids(train_np, mesh)
    runs = {}
    for g in grads:
        fns = _gpt_functions(_step_fields(cfg.replace(grad=g)), tok.vocab_size, mesh)
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
    tokens = cfg.batch_size * cfg.block_size * cfg.grad_accum
    out = {}
    for g, r in runs.items():
        ms = 1e3 * float(np.median(r["times"]))
        out[g] = {"ms_per_iter": ms, "tokens_per_s": tokens / ms * 1e3, "compile_s": r["compile_s"],
                  "cpu_ms_per_iter": 1e3 * float(np.median(r["cpu"])), "times": r["times"]}
    return out
