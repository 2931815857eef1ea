"""The training loop: `train` runs the jitted step (`fungpt.gpt.step`) with evals, logs and checkpoints in
a locked run folder (`fungpt.gpt.run`), and stops cleanly on Ctrl-C (SIGINT) or SIGTERM.

The step's outputs are read one step late, so the host never waits for the device except at a log, eval,
checkpoint or stop boundary. A run is resumable from the moment training starts: step 0 is checkpointed
before the first step compiles (which also proves the folder writable), and every later save is crash-safe.
"""
from __future__ import annotations

import math
import pathlib
import signal
import sys
import time
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from fungpt.gpt import checkpoint as ckpt_lib
from fungpt.gpt import data as data_lib
from fungpt.gpt import finetune, sharding
from fungpt.gpt import run as run_lib
from fungpt.gpt import step as step_lib
from fungpt.gpt.config import TrainConfig, config_from_dict
from fungpt.runtime import tune_malloc

__all__ = ["NonFiniteError", "TrainResult", "train"]


class NonFiniteError(RuntimeError):
    """The loss or gradient became NaN/inf; the run stopped and kept its last good checkpoint."""


class TrainResult(NamedTuple):
    run_dir: pathlib.Path
    step: int
    losses: list  # training loss of every step done in this call (floats, in order)
    evals: list  # (step, train_loss, val_loss) of every eval
    interrupted: bool
    sample: str | None
    signal: int | None = None  # signal.SIGINT or signal.SIGTERM when one stopped the run
    state: step_lib.TrainState | None = None  # the final (params, opt_state), sharded on the run's mesh


class _StopFlag:
    """SIGINT and SIGTERM set a flag the loop checks between steps; a second signal interrupts at once."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self):
        self.signum, self._old = None, {}

    def __enter__(self):
        try:
            self._old = {s: signal.signal(s, self._handle) for s in self.SIGNALS}
        except ValueError:  # not the main thread: leave signals alone
            self._old = {}
        return self

    def _handle(self, signum, frame):
        if self.signum is not None:
            raise KeyboardInterrupt
        self.signum = signum

    def __exit__(self, *exc):
        for s, old in self._old.items():
            signal.signal(s, old)


def _describe(cfg: TrainConfig, mcfg, n_params: int, run_dir, mesh) -> str:
    devs = mesh.devices.flat
    kinds = sorted({d.device_kind for d in devs})
    return (f"{n_params / 1e6:.2f}M parameters; {cfg.batch_size * cfg.model.block_size * cfg.grad_accum:,} "
            f"tokens per iteration (batch {cfg.batch_size} x block {cfg.model.block_size} x accumulation "
            f"{cfg.grad_accum}); backend {jax.default_backend()}, {mesh.devices.size} device(s) "
            f"({', '.join(kinds)}); dtype {cfg.model.compute_dtype or cfg.model.param_dtype}"
            f"{' (float32 master weights)' if mcfg is not None and cfg.model.compute_dtype == 'bfloat16' else ''}; "
            f"run folder {run_dir}")


def train(cfg: TrainConfig, *, resume: str | pathlib.Path | None = None, model: step_lib.Model | None = None,
          devices=None, mesh: str | tuple | None = None, callback: Callable | None = None, progress: bool = True,
          print_fn: Callable | None = print) -> TrainResult:
    """Train (or resume) a run into ``cfg.out_dir``; returns the losses, evals and final sample.

    ``resume``: a run directory (or its latest checkpoint folder); training continues from its newest
    complete checkpoint (the ``cfg`` given may change run fields such as max_iters, not the model; a run
    already at ``max_iters`` is refused). Without it, ``cfg.out_dir`` must be new or an empty folder, except
    a preset's default folder (``runs/baby``), which moves to the first free ``runs/baby-N``. The folder is
    locked for the call (a second process is refused naming this one's PID). ``mesh``: ``"data=D,model=M"`` or
    ``(D, M)`` over ``devices`` (default: all of them on "data"); parameters and optimizer state are stored
    sharded on it (`fungpt.gpt.sharding`) and checkpoints hold the gathered arrays, so a run resumes on any
    mesh. With many processes (`sharding.initialize_distributed` first) only process 0 locks the folder and
    writes; every process reads a resumed checkpoint. ``cfg.init_from`` starts a new run from a Hugging Face
    GPT-2 folder's or a fungpt run's weights and tokenizer (`finetune.init_from`). ``model``: a `Model` to train
    instead of the GPT (it then gets no sample). ``callback(step, loss)`` runs after each step's loss is
    known. Ctrl-C or SIGTERM saves a checkpoint at the next step boundary and returns with
    ``interrupted=True`` and ``signal`` set. A non-finite loss or gradient raises NonFiniteError naming the
    step; the last checkpoint stays as it was. Calls `fungpt.runtime.tune_malloc()`.
    """
    tune_malloc()
    if cfg.min_lr > cfg.learning_rate:  # here, not in TrainConfig: runs saved with it stay loadable
        raise ValueError(f"min_lr ({cfg.min_lr}) must not exceed learning_rate ({cfg.learning_rate}): the cosine "
                         f"schedule would raise the rate as it decays; set --min-lr too")
    if not sharding.is_writer():  # the other processes of a multi-process run write nothing, so take no lock
        run_dir = run_lib.resume_dir(resume) if resume is not None else pathlib.Path(cfg.out_dir)
        return _Trainer(cfg, run_dir, resume is not None, model, devices, mesh, print_fn).run(callback, progress)
    lock = run_lib.lock_run_dir(run_lib.resume_dir(resume)) if resume is not None else \
        run_lib.lock_new_run_dir(cfg.out_dir)
    try:
        trainer = _Trainer(cfg, lock.run_dir, resume is not None, model, devices, mesh, print_fn)
    except BaseException:
        lock.release(discard=resume is None)
        raise
    try:
        return trainer.run(callback, progress)
    finally:
        lock.release()


class _Trainer:
    """One call of `train`: the set-up state and the pieces of the loop."""

    def __init__(self, cfg, run_dir: pathlib.Path, resume: bool, model, devices, mesh, print_fn):
        self.run_dir, self.print_fn = run_dir, print_fn
        self.is_main = sharding.is_writer()
        meta, init = None, None
        if self.is_main:
            ckpt_lib.remove_strays(run_dir)  # under the lock: no live process writes them
        if resume:
            ckpt = ckpt_lib.find_checkpoint(run_dir)  # falls back (with a warning) past a broken `latest`
            meta = ckpt_lib.read_meta(ckpt)
            run_lib.check_resumable(config_from_dict(meta["config"], f"{run_dir}'s config"), cfg, run_dir)
            if meta["step"] >= cfg.max_iters:
                raise ValueError(f"{run_dir} is already at step {meta['step']} (max_iters {cfg.max_iters}); "
                                 f"pass a larger --max-iters to train on")
        elif cfg.init_from is not None:
            if model is not None:
                raise ValueError("init_from starts the GPT from trained weights; it cannot be used with model=")
            init, cfg = _init_from(cfg)
        self.cfg = cfg = cfg.replace(out_dir=str(run_dir))
        tok_dict = meta["tokenizer"] if meta else init.tokenizer.to_dict() if init else None
        self.tok, train_np, val_np = data_lib.prepare_data(cfg, tok_dict)
        mesh = step_lib.make_mesh(devices, mesh)
        if cfg.batch_size % mesh.shape["data"]:
            raise ValueError(f"batch_size {cfg.batch_size} must be divisible by the mesh's data axis "
                             f"({mesh.shape['data']} devices)")
        self.fns = (step_lib.compiled_functions(step_lib.step_fields(cfg), self.tok.vocab_size, mesh)
                    if model is None else step_lib.functions(model, None, cfg, mesh))
        _, self.k_data, self.k_drop, self.k_eval, self.k_sample = keys = step_lib.run_keys(cfg.seed)
        specs = self.fns.specs
        params = self.fns.init(keys[0]) if init is None else sharding.shard(init.params, specs.params, mesh)
        opt_state = self.fns.opt_init(params)
        self.step, self.saved_at = 0, None
        if meta is not None:
            ck = ckpt_lib.load_checkpoint(ckpt, params, opt_state)  # the gathered arrays, onto this mesh
            params, opt_state = sharding.shard((ck.params, ck.opt_state), (specs.params, specs.opt_state), mesh)
            self.step = self.saved_at = ck.step
        self.state = step_lib.TrainState(params, opt_state)
        self.train_ids, self.val_ids = step_lib.put_ids(train_np, mesh), step_lib.put_ids(val_np, mesh)
        self.extra = {"init_from": finetune.source_record(cfg.init_from)} if init is not None else \
            {k: v for k, v in (meta or {}).get("extra", {}).items() if k == "init_from"}
        self.log = run_lib.MetricsLog(run_dir / "metrics.jsonl", self.is_main)
        self.losses, self.evals = [], []
        self.tokens_per_step = cfg.batch_size * cfg.model.block_size * cfg.grad_accum
        if meta is None:
            self.save(0)  # resumable from the first instant, and the folder proven writable before compiling
        n_params = sum(x.size for x in jax.tree.leaves(params))
        self.say(_describe(cfg, self.fns.mcfg, n_params, run_dir, mesh))

    def say(self, line: str, bar=None) -> None:
        if bar is not None:
            bar.write(line)
        elif self.print_fn is not None and self.is_main:
            self.print_fn(line)

    def save(self, s: int) -> None:
        if self.saved_at == s:
            return
        state = _host(self.state)  # every process takes part in gathering a state that spans processes
        if self.is_main:
            mcfg = self.fns.mcfg
            try:
                ckpt_lib.save_checkpoint(self.run_dir, s, state.params, state.opt_state,
                                         jax.random.key(self.cfg.seed), self.cfg.to_dict(), self.tok.to_dict(),
                                         extra={"model_config": mcfg.to_dict() if mcfg else None, **self.extra})
            except KeyboardInterrupt:
                raise KeyboardInterrupt(f"interrupted while saving step {s}; {self.remains()}") from None
        self.saved_at = s

    def remains(self) -> str:
        last = ckpt_lib.resumable_checkpoint(self.run_dir)
        return (f"the last complete checkpoint is {last} (continue with: fungpt train --resume {self.run_dir})"
                if last is not None else f"no checkpoint was saved in {self.run_dir}")

    def evaluate(self, s: int, bar) -> None:
        k = jax.random.fold_in(self.k_eval, s)
        tr, va = (step_lib.estimate_loss(self.fns.eval, self.state.params, ids, k)
                  for ids in (self.train_ids, self.val_ids))
        self.evals.append((s, tr, va))
        self.log({"step": s, "train_loss": tr, "val_loss": va, "val_ppl": math.exp(min(va, 700.0))})
        self.say(f"step {s}: train loss {tr:.4f}, val loss {va:.4f} (ppl {math.exp(min(va, 700.0)):.2f})", bar)

    def settle(self, pending, callback) -> None:
        s_done, loss, gnorm, ok = pending
        if not bool(ok):
            kept = (f"the last good checkpoint (step {self.saved_at}) in {self.run_dir} is kept"
                    if self.saved_at is not None else "no checkpoint was saved yet")
            hint = "; a target id outside [0, vocab) also gives a NaN loss" if self.fns.mcfg is not None else ""
            raise NonFiniteError(
                f"step {s_done + 1}: non-finite {'loss' if not np.isfinite(float(loss)) else 'gradient'} "
                f"(loss {float(loss)}, grad norm {float(gnorm)}); {kept}{hint}")
        self.losses.append(float(loss))
        if callback is not None:
            callback(s_done + 1, float(loss))

    def run(self, callback, progress: bool) -> TrainResult:
        cfg, fns = self.cfg, self.fns
        bar, pending = None, None  # pending: the previous step's (s, loss, gnorm, ok), read one step late
        try:
            with _StopFlag() as flag:
                if self.step == 0:
                    self.say("compiling… (the first eval and the first step trace and compile the model)")
                    self.evaluate(0, None)
                bar = _progress(self.step, cfg.max_iters, progress and self.is_main)
                t_last, s_last, t0 = time.perf_counter(), self.step, time.perf_counter()
                while self.step < cfg.max_iters and flag.signum is None:
                    out_state, *out = fns.step(self.state, jnp.int32(self.step), self.train_ids, self.k_data,
                                               self.k_drop)
                    if pending is not None:
                        self.settle(pending, callback)
                    self.state, pending, self.step = out_state, (self.step, *out), self.step + 1
                    s, last = self.step, self.step == cfg.max_iters
                    at_log, at_eval = s % cfg.log_interval == 0 or last, s % cfg.eval_interval == 0 or last
                    at_ckpt = s % cfg.ckpt_interval == 0 or last or flag.signum is not None
                    if at_log or at_eval or at_ckpt:  # the one flush: every boundary sees all losses so far
                        self.settle(pending, callback)
                        pending = None
                    if at_log:
                        now = time.perf_counter()
                        tps = self.tokens_per_step * (s - s_last) / max(now - t_last, 1e-9)
                        t_last, s_last = now, s
                        self.log({"step": s, "loss": self.losses[-1], "lr": float(fns.schedule(s - 1)),
                                  "tokens_per_s": tps, "elapsed_s": now - t0})
                        if bar is not None:
                            bar.set_postfix(loss=f"{self.losses[-1]:.4f}", tok_s=f"{tps:,.0f}", refresh=False)
                    if bar is not None:
                        bar.update(1)
                    if at_eval:
                        self.evaluate(s, bar)
                    if at_ckpt:
                        self.save(s)
                self.save(self.step)  # a signal before the first step leaves the loop here
        except KeyboardInterrupt as e:
            raise KeyboardInterrupt(str(e) or f"interrupted at step {self.step}; {self.remains()}") from None
        finally:
            if bar is not None:
                bar.close()
        return self.finish(flag.signum)

    def finish(self, signum) -> TrainResult:
        if self.is_main:
            run_lib.plot(self.log.path, self.run_dir / "loss.png")
        text = None
        if self.fns.mcfg is not None and signum is None and self.cfg.sample_tokens > 0:
            params = _host(self.state.params) if jax.process_count() > 1 else self.state.params
            text = run_lib.sample_text(params, self.fns.mcfg, self.tok, "\n", self.cfg.sample_tokens, self.k_sample)
            self.say(text)
        return TrainResult(self.run_dir, self.step, self.losses, self.evals, signum is not None, text, signum,
                           self.state)


def _host(tree):
    # ``tree`` itself when this process holds all of it, else the gathered numpy arrays (a collective)
    if all(x.is_fully_addressable for x in jax.tree.leaves(tree) if isinstance(x, jax.Array)):
        return tree
    return sharding.gather(tree)


def _init_from(cfg: TrainConfig):
    # (finetune.Init, cfg with the source's model shape, tokenizer and absolute path)
    init = finetune.init_from(cfg.init_from)
    if init.tokenizer is None:
        raise ValueError(f"--init-from {cfg.init_from}: training needs the checkpoint's tokenizer "
                         f"(vocab.json and merges.txt beside config.json)")
    if init.tokenizer.vocab_size != init.config.vocab_size:
        raise ValueError(f"--init-from {cfg.init_from}: the tokenizer has {init.tokenizer.vocab_size} tokens and the "
                         f"model {init.config.vocab_size} embeddings; fungpt train needs them equal")
    fields = finetune.train_fields(init.config, init.tokenizer)
    return init, cfg.replace(**fields, init_from=finetune.source_record(cfg.init_from)["init_from"])


def _progress(start, total, enabled):
    if not enabled:
        return None
    from tqdm import tqdm  # here: only a run with a progress bar needs it

    return tqdm(total=total, initial=start, unit="it", dynamic_ncols=True, leave=True, file=sys.stderr)
