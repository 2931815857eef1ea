"""The run folder: its lock, the fresh/resume checks, metrics.jsonl and loss.png, and using a finished
run (`load_run`, `sample_text`, `evaluate_text`).

    RUN_DIR/.lock          held (flock) by the one process writing the folder; names its PID
    RUN_DIR/metrics.jsonl  one JSON object per log/eval line (a resumed run appends; the later record wins)
    RUN_DIR/loss.png       train and validation curves
    RUN_DIR/latest, ckpt-* checkpoints (`fungpt.gpt.checkpoint`)
"""
from __future__ import annotations

import collections
import fcntl
import functools
import json
import math
import os
import pathlib
import time
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from fungpt import information
from fungpt.gpt import checkpoint as ckpt_lib
from fungpt.gpt import data as data_lib
from fungpt.gpt import model as gpt
from fungpt.gpt.config import MODEL_FIELDS, PRESETS, GPTConfig, TrainConfig, config_from, config_from_dict
from fungpt.gpt.generate import generate_text
from fungpt.gpt.tokenizer import CharTokenizer

__all__ = [
    "LOCK_FILE", "MetricsLog", "Run", "RunLock", "RunLockedError", "TextScore", "check_fresh_dir", "check_resumable",
    "curves", "evaluate_text", "load_eval_text", "load_run", "lock_new_run_dir", "lock_run_dir", "plot",
    "resume_config", "resume_dir", "sample_text",
]

LOCK_FILE = ".lock"
_UNKNOWN = ("error", "skip", "replace")


class RunLockedError(RuntimeError):
    """Another live process holds the run folder's lock."""


class RunLock:
    """An exclusive ``flock`` on ``RUN_DIR/.lock``, held until `release` or the process exits (any exit:
    the OS drops it with the file descriptor, so a dead process's lock never blocks)."""

    def __init__(self, fd: int, run_dir: pathlib.Path, new_dirs: list[pathlib.Path], new_file: bool):
        self.fd, self.run_dir, self._new_dirs, self._new_file = fd, run_dir, new_dirs, new_file

    def release(self, discard: bool = False) -> None:
        """Drop the lock; ``discard=True`` also removes the lock file and the folder if this lock created
        them and nothing else was written (a run refused or failed before its first checkpoint)."""
        if self.fd is None:
            return
        if discard and self._new_file:
            (self.run_dir / LOCK_FILE).unlink(missing_ok=True)
            for d in self._new_dirs:  # deepest first; each only if still empty
                if d.is_dir() and not any(d.iterdir()):
                    d.rmdir()
        os.close(self.fd)
        self.fd = None


def lock_run_dir(run_dir) -> RunLock:
    """Create ``run_dir`` if needed and take its lock, or raise RunLockedError naming the holder's PID.

    Creating the lock file is also the check that the folder is writable (an OSError naming it if not).
    """
    run_dir = pathlib.Path(run_dir)
    path = run_dir / LOCK_FILE
    if run_dir.exists() and not run_dir.is_dir():
        raise ValueError(f"{run_dir} already exists and is not an empty folder (it is a file)")
    new_dirs = [p for p in (run_dir, *run_dir.parents) if not p.exists()]
    new_file = not path.exists()
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as e:
        raise OSError(e.errno, f"the run folder {run_dir} is not writable: {e.strerror}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = _holder(fd)
        os.close(fd)
        raise RunLockedError(f"{run_dir} is in use by another fungpt process (PID {holder}); wait for it to "
                             f"finish or stop it, or choose another --out-dir") from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return RunLock(fd, run_dir, new_dirs, new_file)


def _holder(fd: int) -> str:
    # The holder writes its PID just after locking: until then the file is empty or names a dead process.
    for _ in range(200):
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
        if text.isdigit():
            try:
                os.kill(int(text), 0)
                return text
            except ProcessLookupError:
                pass
            except PermissionError:  # alive, another user's
                return text
        time.sleep(0.005)
    return "unknown"


def lock_new_run_dir(out_dir) -> RunLock:
    """Lock the folder of a new run. A preset's default folder (``runs/baby``) that is taken moves the run to
    the first free ``runs/baby-1``, ``runs/baby-2``, ...; any other folder must be new or empty."""
    default = str(out_dir) in {p.out_dir for p in PRESETS.values()}
    for i in range(10_000 if default else 1):
        cand = pathlib.Path(f"{out_dir}-{i}" if i else out_dir)
        if default and cand.exists() and (not cand.is_dir() or _own_files(cand)):
            continue
        try:
            lock = lock_run_dir(cand)
        except RunLockedError:
            if default:
                continue
            raise
        try:
            check_fresh_dir(cand)
        except ValueError:
            lock.release(discard=True)
            if default:
                continue
            raise
        return lock
    raise ValueError(f"no free folder {out_dir}-N; pass --out-dir")


def _own_files(run_dir: pathlib.Path) -> list[pathlib.Path]:
    # what is in the folder besides the lock file and a killed save's temporaries (no run was saved there)
    return [p for p in run_dir.iterdir() if p.name != LOCK_FILE and not ckpt_lib.is_stray(p.name)]


def check_fresh_dir(run_dir) -> None:
    """Refuse a folder that holds a run or any file: a new run never writes into someone else's files."""
    run_dir = pathlib.Path(run_dir)
    if (run_dir / ckpt_lib.LATEST).exists() or ckpt_lib.checkpoint_steps(run_dir):
        raise ValueError(f"{run_dir} already holds a run; pass --resume {run_dir} or choose another --out-dir")
    if run_dir.exists() and (not run_dir.is_dir() or _own_files(run_dir)):
        raise ValueError(f"{run_dir} already exists and is not an empty folder; a new run needs a new or empty "
                         f"--out-dir (nothing in {run_dir} was touched)")


def resume_dir(resume) -> pathlib.Path:
    """The run directory of ``--resume PATH``: the run itself, or its latest checkpoint folder; an older
    checkpoint folder is refused (continuing it in place would re-save and prune the newer checkpoints)."""
    path = pathlib.Path(resume)
    if not (path / ckpt_lib.META_FILE).is_file() or (path / ckpt_lib.LATEST).is_file():
        return path
    latest = path.parent / ckpt_lib.LATEST
    if latest.is_file() and latest.read_bytes().strip() == path.name.encode():
        return path.parent
    raise ckpt_lib.CheckpointError(
        f"{path} is a checkpoint folder but not the latest of its run; --resume takes a run directory "
        f"(to continue from this checkpoint, copy it into a new folder beside a 'latest' file naming it)")


def resume_config(run_dir, file=None, **overrides) -> TrainConfig:
    """The config to resume ``run_dir`` with: its saved config < the ``file``'s fields < ``overrides``."""
    meta = ckpt_lib.read_meta(resume_dir(run_dir))
    saved = config_from_dict(meta["config"], f"{run_dir}'s saved config")
    return config_from(saved, file, **overrides)


def check_resumable(saved: TrainConfig, cfg: TrainConfig, run_dir) -> None:
    """Refuse to resume with another model or tokenizer (fields that fix the parameters and their meaning)."""
    pairs = [(f"model.{k}" if k != "vocab_size" else k, getattr(saved.model, k), getattr(cfg.model, k))
             for k in MODEL_FIELDS]
    pairs.append(("tokenizer", saved.tokenizer, cfg.tokenizer))
    diff = [f"{k.removeprefix('model.')}: checkpoint {a!r} vs requested {b!r}" for k, a, b in pairs if a != b]
    if diff:
        raise ckpt_lib.CheckpointError(f"{run_dir} was trained with an incompatible config ({'; '.join(diff)})")


# --- metrics and the loss plot ------------------------------------------------------------------


class MetricsLog:
    """Appends JSON lines to ``metrics.jsonl`` (only process 0 writes). A line cut short by a kill is
    ended first, so the next record starts on a line of its own."""

    def __init__(self, path: pathlib.Path, enabled: bool = True):
        self.path, self.enabled = path, enabled
        if enabled and path.is_file() and path.read_bytes()[-1:] not in (b"", b"\n"):
            with open(path, "a") as f:
                f.write("\n")

    def __call__(self, record: dict) -> None:
        if self.enabled:
            with open(self.path, "a") as f:
                f.write(json.dumps(record) + "\n")


def curves(metrics_path: pathlib.Path) -> tuple[list, list]:
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


def plot(metrics_path: pathlib.Path, out: pathlib.Path) -> None:
    """Draw the curves of ``metrics_path`` into the PNG ``out``."""
    import matplotlib  # here: matplotlib's import costs ~0.5 s and only plotting needs it

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tr, ev = curves(metrics_path)
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


# --- using a finished run ----------------------------------------------------------------------


def sample_text(params, mcfg: GPTConfig, tok, prompt: str, max_new_tokens: int, key, temperature: float = 0.8,
                top_k: int | None = 200, top_p: float | None = None) -> str:
    """Prompt + ``max_new_tokens`` generated tokens, decoded to text (`gpt.generate_text` without stops)."""
    return generate_text(params, mcfg, tok, prompt, max_new_tokens, key, temperature, top_k, top_p)


class Run(NamedTuple):
    config: TrainConfig
    model_config: GPTConfig
    params: dict
    tokenizer: object  # a fungpt.gpt.tokenizer CharTokenizer / BPETokenizer
    step: int


def load_run(run_dir) -> Run:
    """The config, GPTConfig, parameters and tokenizer of a run's latest checkpoint (verified; only
    state.json and model.safetensors are read)."""
    ckpt = ckpt_lib.find_checkpoint(run_dir, (ckpt_lib.PARAMS_FILE,))
    meta = ckpt_lib.read_meta(ckpt, (ckpt_lib.PARAMS_FILE,))
    try:
        cfg = config_from_dict(meta["config"], f"{ckpt / ckpt_lib.META_FILE}'s config")
    except (TypeError, ValueError) as e:
        raise ckpt_lib.CheckpointError(f"{run_dir}: the checkpoint's config is invalid: {e}") from None
    tok = data_lib.tokenizer_from_dict(meta["tokenizer"])
    mcfg = cfg.model_config(tok.vocab_size)
    like = jax.eval_shape(lambda: gpt.init_params(mcfg, jax.random.key(0)))
    ck = ckpt_lib.load_checkpoint(ckpt, like)
    return Run(cfg, mcfg, jax.tree.map(jnp.asarray, ck.params), tok, ck.step)


def load_eval_text(path, tok, unknown: str = "error") -> str:
    """The UTF-8 text of a file or folder (as `data.load_text`), checked file by file against ``tok``'s
    vocabulary: characters it cannot encode raise ValueError naming the file, the characters and their
    counts (``unknown="error"``), are dropped (``"skip"``), or become a space (``"replace"``)."""
    if unknown not in _UNKNOWN:
        raise ValueError(f"unknown must be one of {_UNKNOWN}, got {unknown!r}")
    path = pathlib.Path(path)
    files = sorted(path.glob("*.txt")) if path.is_dir() else [path]
    if not files:
        data_lib.load_text(path)  # raises: a folder without .txt files
    alphabet = set(tok.chars) if isinstance(tok, CharTokenizer) else None  # byte-level BPE encodes any text
    texts = []
    for f in files:
        text = data_lib.load_text(f)
        bad = collections.Counter(c for c in text if alphabet is not None and c not in alphabet)
        if bad and unknown == "error":
            shown = ", ".join(f"{c!r} x{n}" for c, n in bad.most_common(10))
            raise ValueError(f"{f}: {sum(bad.values())} characters outside the run's vocabulary ({shown}"
                             f"{', ...' if len(bad) > 10 else ''}); pass --unknown skip or --unknown replace")
        if bad and unknown == "replace" and " " not in alphabet:
            raise ValueError(f"{f}: --unknown replace needs a space in the vocabulary; use --unknown skip")
        if bad:
            text = "".join(c if c in alphabet else (" " if unknown == "replace" else "") for c in text)
        texts.append(text)
    return "\n\n".join(texts)


class TextScore(NamedTuple):
    loss: float           # mean next-token loss, nats per scored token
    perplexity: float     # exp(loss)
    tokens: int           # tokens scored: all but the first
    bits_per_char: float  # loss · tokens / (characters scored · ln 2)


def evaluate_text(run: Run, text: str | None = None, batch_size: int = 32, stride: int | None = None) -> TextScore:
    """Loss (nats/token), perplexity, tokens scored and bits per character of ``run`` on ``text`` (default: the
    run's validation split), by `fungpt.information.strided_perplexity`: every token but the first scored once,
    in windows of block_size T tokens that start ``stride`` apart (default T: disjoint windows, the last one
    moved back to end at the text's end; a smaller stride gives each token more history and costs T/stride
    times more).  Bits per character counts the characters of the scored tokens (all but the first token's)."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size <= 0:
        raise ValueError(f"batch_size (windows per evaluation call) must be an int > 0, got {batch_size!r}")
    T_ = run.config.model.block_size
    if text is None:
        _, _, ids = data_lib.prepare_data(run.config, run.tokenizer.to_dict())
        text = run.tokenizer.decode(ids)
    else:
        if not text:
            raise ValueError("the evaluation text is empty")
        ids = np.asarray(run.tokenizer.encode(text), np.int32)
    data_lib.check_length(ids, T_, "the evaluation text")
    stride = T_ if stride is None else stride
    if isinstance(stride, bool) or not isinstance(stride, int) or not 1 <= stride <= T_:
        raise ValueError(f"stride must be an int in [1, block_size={T_}], got {stride!r}")
    score = _score(run.params, jnp.asarray(ids), run.model_config, stride, batch_size)
    loss, n = float(score.nll), score.tokens
    chars = len(text) - len(run.tokenizer.decode(ids[:1]))
    return TextScore(loss, math.exp(loss), n, float(information.bits_per_character(loss, n, chars)))


@functools.partial(jax.jit, static_argnums=(2, 3, 4))
def _score(params, ids, mcfg, stride, batch_size):
    logits = lambda x: gpt.forward(params, x, mcfg)  # (B, T) -> (B, T, V)
    return information.strided_perplexity(logits, ids, mcfg.block_size, stride, batch_size)
