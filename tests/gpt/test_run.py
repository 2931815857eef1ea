"""The run folder and the processes around it: the lock (real concurrent processes), SIGTERM and a second
Ctrl-C (real signals), the start-up lines, the default-folder rule, writability before compiling, and
evaluation text with characters outside the vocabulary.

Oracles: exit codes and PIDs of real subprocesses, an uninterrupted in-process run of the same config (losses
compared bit for bit), a naive character count, and the files on disk.
"""
import json
import os
import pathlib
import signal
import subprocess
import sys
import time

import jax
import pytest

import fungpt
from fungpt.gpt import checkpoint as ck
from fungpt.gpt import data
from fungpt.gpt import model as gpt
from fungpt.gpt import run as run_lib
from fungpt.gpt import step as step_lib
from fungpt.gpt import train as T
from fungpt.gpt.tokenizer import CharTokenizer

# tests/gpt/test_train.py's tiny config: the jitted step is shared within a test session
TINY = dict(n_layer=1, n_head=2, n_embd=16, block_size=8, batch_size=4, grad_accum=1, dropout=0.0,
            max_iters=6, warmup_iters=2, lr_decay_iters=6, eval_interval=3, eval_iters=2, ckpt_interval=100,
            log_interval=2, sample_tokens=0)
SRC = str(pathlib.Path(fungpt.__file__).resolve().parents[1])


@pytest.fixture(scope="module")
def text_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "tiny.txt"
    path.write_text(data.load_text()[:20_000], encoding="utf-8")
    return str(path)


def tiny(text_file, out_dir, **kw):
    return T.config_from("baby", data=text_file, out_dir=str(out_dir), **{**TINY, **kw})


def _flags(text_file, **kw):
    out = ["--data", text_file]
    for k, v in {**TINY, **kw}.items():
        out += [f"--{k.replace('_', '-')}", str(v)]
    return out


def _cli(*args, env=None):
    return [sys.executable, "-m", "fungpt.cli", *args], {**os.environ, "PYTHONPATH": SRC, **(env or {})}


def _losses(metrics: pathlib.Path) -> dict:
    rows = [json.loads(x) for x in metrics.read_text().splitlines() if x.strip()]
    return {r["step"]: r["loss"] for r in rows if "loss" in r}


# --- the lock ------------------------------------------------------------------------------------


def test_a_locked_folder_is_refused_before_anything_compiles(tmp_path, text_file, monkeypatch):
    def no_compile(*a, **k):
        raise AssertionError("compiled although the folder is locked")

    monkeypatch.setattr(step_lib, "compiled_functions", no_compile)
    lock = run_lib.lock_run_dir(tmp_path / "r")  # another holder (a second open file description)
    try:
        for resume in (None, tmp_path / "r"):
            with pytest.raises(T.RunLockedError, match=rf"r is in use by another fungpt process \(PID {os.getpid()}\)"):
                T.train(tiny(text_file, tmp_path / "r"), resume=resume, progress=False, print_fn=None)
    finally:
        lock.release()
    assert sorted(p.name for p in (tmp_path / "r").iterdir()) == [run_lib.LOCK_FILE]


def test_a_dead_holders_lock_never_blocks(tmp_path):
    # A process takes the lock, writes its PID and dies without releasing anything (os._exit).
    code = ("import fcntl, os, sys; fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT); "
            "fcntl.flock(fd, fcntl.LOCK_EX); os.write(fd, b'4242'); os._exit(9)")
    (tmp_path / "r").mkdir()
    assert subprocess.run([sys.executable, "-c", code, str(tmp_path / "r" / run_lib.LOCK_FILE)]).returncode == 9
    lock = run_lib.lock_run_dir(tmp_path / "r")
    assert (tmp_path / "r" / run_lib.LOCK_FILE).read_text() == f"{os.getpid()}\n"
    lock.release()


CONTESTANT = """
import pathlib, sys, time
from fungpt.gpt import run
root, n = pathlib.Path(sys.argv[1]), int(sys.argv[2])
print("ready", flush=True)
for k in range(n):
    while not (root / f"go-{k}").exists():
        time.sleep(0.0005)
    try:
        lock = run.lock_new_run_dir(root / f"run{k}")  # what `train` does first, fresh or resumed
    except run.RunLockedError as e:
        print(k, "refused", e, flush=True)
        continue
    (root / f"run{k}" / "metrics.jsonl").write_text(f"{k}\\n")  # "runs": writes into the folder
    print(k, "ran", flush=True)
    while not (root / f"done-{k}").exists():
        time.sleep(0.0005)
    lock.release()
"""


def test_two_processes_started_together_exactly_one_runs(tmp_path):
    # Two real processes, released together 20 times (a file both wait for) onto one new folder each time.
    n = 20
    argv, env = [sys.executable, "-c", CONTESTANT, str(tmp_path), str(n)], {**os.environ, "PYTHONPATH": SRC}
    procs = [subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, text=True) for _ in range(2)]
    try:
        assert [p.stdout.readline() for p in procs] == ["ready\n", "ready\n"]
        for k in range(n):
            (tmp_path / f"go-{k}").touch()
            lines = {p.pid: p.stdout.readline().split(" ", 2) for p in procs}
            ran = [pid for pid, line in lines.items() if line[1].strip() == "ran"]
            assert len(ran) == 1, lines  # exactly one runs ...
            [loser] = [line for pid, line in lines.items() if pid not in ran]
            assert loser[1] == "refused" and f"in use by another fungpt process (PID {ran[0]})" in loser[2], lines
            (tmp_path / f"done-{k}").touch()
        assert [p.wait(60) for p in procs] == [0, 0]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
            p.communicate()
    assert all((tmp_path / f"run{k}" / "metrics.jsonl").read_text() == f"{k}\n" for k in range(n))


@pytest.mark.slow
def test_two_fungpt_train_processes_started_together_exactly_one_runs(tmp_path, text_file):
    # The same with the real command, 20 times. The winner is stopped (SIGKILL) once the loser has answered.
    for rep in range(20):
        out = tmp_path / f"run{rep}"
        argv, e = _cli("train", *_flags(text_file, max_iters=2), "--out-dir", str(out), "--no-progress")
        procs = [subprocess.Popen(argv, env=e, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for _ in range(2)]
        done = None
        while done is None:
            done = next((p for p in procs if p.poll() is not None), None)
            time.sleep(0.01)
        other = procs[1 - procs.index(done)]
        if done.returncode == 2:  # refused: the other one runs
            assert f"in use by another fungpt process (PID {other.pid})" in done.communicate()[1]
        else:  # finished before the other started: the other must then be refused
            assert done.returncode == 0 and other.wait(120) == 2
            assert "already holds a run" in other.communicate()[1]
        other.kill()
        other.communicate()


def test_sigterm_in_process_checkpoints_and_resumes_bit_exactly(tmp_path, text_file):
    full = T.train(tiny(text_file, tmp_path / "full"), progress=False, print_fn=None)
    term = lambda step, loss: step == 4 and os.kill(os.getpid(), signal.SIGTERM)
    part = T.train(tiny(text_file, tmp_path / "split"), callback=term, progress=False, print_fn=None)
    assert part.interrupted and part.signal == signal.SIGTERM and part.step == 4
    assert ck.read_meta(tmp_path / "split")["step"] == 4
    rest = T.train(tiny(text_file, tmp_path / "split"), resume=tmp_path / "split", progress=False, print_fn=None)
    assert part.losses + rest.losses == full.losses
    like = jax.eval_shape(lambda: gpt.init_params(T.load_run(full.run_dir).model_config, jax.random.key(0)))
    a, b = ck.load_checkpoint(full.run_dir, like), ck.load_checkpoint(rest.run_dir, like)
    assert all(bool((x == y).all()) for x, y in zip(jax.tree.leaves(a.params), jax.tree.leaves(b.params),
                                                    strict=True))
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # the handler is gone after train


@pytest.mark.slow
def test_sigterm_checkpoints_and_the_run_resumes_bit_exactly(tmp_path, text_file):
    # A real training process (x64 on, as in this test process, so that its numbers are comparable).
    run_dir = tmp_path / "pre"
    argv, env = _cli("train", *_flags(text_file, max_iters=100_000, log_interval=1), "--out-dir", str(run_dir),
                     "--no-progress", env={"JAX_ENABLE_X64": "1"})
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    while not ((run_dir / "metrics.jsonl").is_file() and len(_losses(run_dir / "metrics.jsonl")) >= 5):
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signal.SIGTERM, err
    s = ck.read_meta(run_dir)["step"]
    assert f"interrupted at step {s}: checkpoint saved in {run_dir} (SIGTERM); continue with: fungpt train " \
           f"--resume {run_dir}" in err
    before = _losses(run_dir / "metrics.jsonl")
    assert sorted(before) == list(range(1, s + 1))
    ref = T.train(tiny(text_file, tmp_path / "ref", max_iters=s + 3, log_interval=1), progress=False, print_fn=None)
    assert [before[i] for i in range(1, s + 1)] == ref.losses[:s]  # the interrupted process, bit for bit
    rest = T.train(tiny(text_file, run_dir, max_iters=s + 3, log_interval=1), resume=run_dir, progress=False,
                   print_fn=None)
    assert rest.losses == ref.losses[s:]


def test_a_second_ctrl_c_during_the_save_names_the_checkpoint_that_remains(tmp_path, text_file, monkeypatch):
    real = ck.save_checkpoint

    def save(run_dir, step, *a, **k):
        if step == 3:
            os.kill(os.getpid(), signal.SIGINT)  # the second Ctrl-C, while this save runs
        return real(run_dir, step, *a, **k)

    monkeypatch.setattr(ck, "save_checkpoint", save)
    first = lambda step, loss: step == 3 and os.kill(os.getpid(), signal.SIGINT)
    run_dir = tmp_path / "r"
    with pytest.raises(KeyboardInterrupt) as e:
        T.train(tiny(text_file, run_dir), callback=first, progress=False, print_fn=None)
    last = run_dir / "ckpt-0000000"
    assert str(e.value) == (f"interrupted while saving step 3; the last complete checkpoint is {last} "
                            f"(continue with: fungpt train --resume {run_dir})")
    assert T.train(tiny(text_file, run_dir), resume=run_dir, progress=False, print_fn=None).step == 6


# --- start-up, folders ---------------------------------------------------------------------------


def test_start_up_lines_then_the_step_0_eval(tmp_path, text_file):
    lines = []
    res = T.train(tiny(text_file, tmp_path / "r"), progress=False, print_fn=lines.append)
    run = T.load_run(res.run_dir)
    n = sum(x.size for x in jax.tree.leaves(jax.eval_shape(lambda: gpt.init_params(run.model_config,
                                                                                    jax.random.key(0)))))
    assert lines[0] == (f"{n / 1e6:.2f}M parameters; 32 tokens per iteration (batch 4 x block 8 x accumulation 1); "
                        f"backend {jax.default_backend()}, 1 device(s) ({jax.devices()[0].device_kind}); "
                        f"dtype float32; run folder {tmp_path / 'r'}")
    assert lines[1].startswith("compiling…")
    s0, tr, va = res.evals[0]
    assert s0 == 0 and lines[2].startswith(f"step 0: train loss {tr:.4f}, val loss {va:.4f}")


def test_a_taken_default_folder_moves_to_the_first_free_one(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs" / "baby").mkdir(parents=True)
    (tmp_path / "runs" / "baby" / "latest").write_text("ckpt-0002000\n")
    held = run_lib.lock_run_dir("runs/baby-1")  # a live run that has not written anything yet
    lock = run_lib.lock_new_run_dir("runs/baby")
    assert lock.run_dir == pathlib.Path("runs/baby-2")
    lock.release()
    held.release()
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("x")
    with pytest.raises(ValueError, match="mine already exists and is not an empty folder"):
        run_lib.lock_new_run_dir("mine")  # any other folder: refused, untouched
    assert sorted(p.name for p in (tmp_path / "mine").iterdir()) == ["notes.txt"]


def test_an_unwritable_folder_is_refused_before_compiling(tmp_path, text_file, monkeypatch):
    real_open = os.open

    def read_only(path, flags, *a, **k):
        if str(path).startswith(str(tmp_path / "ro")) and flags & (os.O_CREAT | os.O_WRONLY | os.O_RDWR):
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, flags, *a, **k)

    monkeypatch.setattr(os, "open", read_only)  # (tests run as root here, so chmod would not refuse)
    monkeypatch.setattr(step_lib, "compiled_functions", lambda *a, **k: pytest.fail("compiled"))
    (tmp_path / "ro").mkdir()
    with pytest.raises(OSError, match=r"the run folder .*ro is not writable: Permission denied"):
        T.train(tiny(text_file, tmp_path / "ro"), progress=False, print_fn=None)


# --- evaluation text -----------------------------------------------------------------------------


def test_unknown_characters_in_eval_text_error_skip_or_replace(tmp_path):
    tok = CharTokenizer.from_text("abc \n")
    folder = tmp_path / "plays"
    folder.mkdir()
    (folder / "a.txt").write_text("abc abc\n")
    (folder / "b.txt").write_text("ab_c_ €x\n")
    with pytest.raises(ValueError) as e:
        T.load_eval_text(folder, tok)
    want = {"_": 2, "€": 1, "x": 1}  # counted by hand
    msg = str(e.value)
    assert msg.startswith(f"{folder / 'b.txt'}: {sum(want.values())} characters outside the run's vocabulary")
    for c, k in want.items():
        assert f"{c!r} x{k}" in msg
    assert T.load_eval_text(folder, tok, "skip") == "abc abc\n\n\nabc \n"
    assert T.load_eval_text(folder, tok, "replace") == "abc abc\n\n\nab c    \n"
    assert T.load_eval_text(folder / "a.txt", tok) == "abc abc\n"
    with pytest.raises(ValueError, match="unknown must be one of"):
        T.load_eval_text(folder, tok, "ignore")


def test_eval_command_takes_unknown(tmp_path, text_file, capsys):
    from fungpt import cli

    run_dir = T.train(tiny(text_file, tmp_path / "r"), progress=False, print_fn=None).run_dir
    (run_dir / "ckpt-0000006" / ck.STATE_FILE).unlink()  # eval needs only the model and tokenizer files
    play = tmp_path / "play.txt"
    play.write_text(data.load_text()[50_000:50_400] + "_~_", encoding="utf-8")
    assert cli.main(["eval", str(run_dir), "--data", str(play)]) == 2
    err = capsys.readouterr().err
    assert f"{play}: 3 characters outside the run's vocabulary ('_' x2, '~' x1)" in err
    assert cli.main(["eval", str(run_dir), "--data", str(play), "--unknown", "skip"]) == 0
    loss = float(capsys.readouterr().out.split("loss ")[1].split()[0])
    want = T.evaluate_text(T.load_run(run_dir), data.load_text()[50_000:50_400]).loss
    assert abs(loss - want) < 1e-4
