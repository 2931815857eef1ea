"""Crash safety of checkpoint saves: a kill before every file-system operation of a save, the fsync order,
every single-bit flip of state.json, a short disk, and errors that name what remains.

Oracles: the run folder copied at the instant of the injected kill (what a killed process leaves on disk),
the tensors saved (bit-exact equality), and an event log of the real os/shutil calls.
"""
import builtins
import hashlib
import json
import os
import pathlib
import shutil

import jax
import numpy as np
import pytest

from fungpt.gpt import checkpoint as ck

# Every call that touches the file system during a save (shutil.rmtree's own os calls included).
FS_CALLS = [(builtins, "open"), (os, "open"), (os, "fsync"), (os, "replace"), (os, "rename"), (os, "mkdir"),
            (os, "unlink"), (os, "rmdir"), (shutil, "rmtree")]


class Killed(BaseException):
    """Stands for SIGKILL: raised after the folder's state at that instant was copied away."""


def _tree(seed):
    rng = np.random.default_rng(seed)
    return {"wte": {"weight": rng.standard_normal((7, 4)).astype(np.float32)},
            "h": {"ln_1": {"weight": rng.standard_normal((2, 4)).astype(np.float32)}}}


def _save(run_dir, step, seed, config=None, keep=2):
    params = _tree(seed)
    ck.save_checkpoint(run_dir, step, params, {"mu": params}, jax.random.key(seed), config or {"lr": 1e-3},
                       {"type": "char", "chars": "ab"}, keep=keep)
    return params


class _Recorder:
    """Wraps FS_CALLS: logs each call, and at call number ``kill_at`` copies ``run_dir`` to ``snapshot``
    and raises Killed (nothing of the save's own clean-up then reaches the snapshot)."""

    def __init__(self, monkeypatch, run_dir, kill_at=None, snapshot=None):
        self.events, self.kill_at, self.run_dir, self.snapshot, self.busy = [], kill_at, run_dir, snapshot, False
        for mod, name in FS_CALLS:
            monkeypatch.setattr(mod, name, self._wrap(name, getattr(mod, name)))

    def _wrap(self, name, real):
        def call(*args, **kw):
            if self.busy:
                return real(*args, **kw)
            if len(self.events) == self.kill_at:
                self.busy = True
                if self.run_dir.exists():
                    shutil.copytree(self.run_dir, self.snapshot, symlinks=True)
                else:  # killed before the folder existed
                    self.snapshot.mkdir()
                raise Killed(f"before {name}{args[:1]}")
            path = args[0]
            if name == "fsync":
                path = os.readlink(f"/proc/self/fd/{args[0]}")
            self.events.append((name, str(path), str(args[1]) if name in ("replace", "rename") else ""))
            return real(*args, **kw)
        return call


def _clean(run_dir: pathlib.Path) -> None:
    # what a resumed run leaves: `latest`, ckpt-* folders holding exactly the three files (and nothing else)
    names = sorted(p.name for p in run_dir.iterdir())
    assert all(n == "latest" or ck._NAME.fullmatch(n) for n in names), names
    for _, folder in ck.checkpoint_steps(run_dir):
        assert sorted(p.name for p in folder.iterdir()) == sorted([ck.PARAMS_FILE, ck.STATE_FILE, ck.META_FILE])


SCENARIOS = {
    # (steps saved before: (step, seed, config)), the save under test: (step, seed, config)
    "new-step-with-pruning": ([(4, 4, None), (5, 5, None)], (6, 6, None)),
    "same-step-new-config": ([(4, 4, None), (5, 5, None)], (5, 5, {"lr": 2e-3})),
    "same-step-other-tensors": ([(4, 4, None), (5, 5, None)], (5, 9, None)),
    "first-save": ([], (0, 1, None)),
}


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_a_kill_before_every_file_operation_of_a_save_leaves_a_resumable_run(tmp_path, monkeypatch, scenario,
                                                                            capfd):
    before, (step, seed, config) = SCENARIOS[scenario]
    expect = {s: _tree(sd) for s, sd, _ in before}

    def fresh(folder):
        for s, sd, c in before:
            _save(folder, s, sd, c)

    probe = tmp_path / "probe"
    fresh(probe)
    with monkeypatch.context() as m:
        rec = _Recorder(m, probe)
        _save(probe, step, seed, config)
    n_ops = len(rec.events)
    assert n_ops >= 8, rec.events
    outcomes = set()
    for k in range(n_ops):
        run_dir, snap = tmp_path / f"run{k}", tmp_path / f"snap{k}"
        fresh(run_dir)
        with monkeypatch.context() as m, pytest.raises(Killed):
            _Recorder(m, run_dir, kill_at=k, snapshot=snap)
            _save(run_dir, step, seed, config)
        # the next process: removes strays (under the run lock), loads, and redoes the save
        ck.remove_strays(snap)
        if before:
            got = ck.load_checkpoint(snap, _tree(0), {"mu": _tree(0)})
            want = _tree(seed) if got.step == step and (step, seed) not in [(s, sd) for s, sd, _ in before] \
                else expect.get(got.step)
            if got.step == step:
                want = _tree(seed) if json.loads((ck.find_checkpoint(snap) / ck.META_FILE).read_bytes())[
                    "sha256"] == _sha(seed) else expect[step]
            jax.tree.map(np.testing.assert_array_equal, got.params, want)
            outcomes.add(got.step)
        _save(snap, step, seed, config)
        got = ck.load_checkpoint(snap, _tree(0), {"mu": _tree(0)})
        assert got.step == step
        jax.tree.map(np.testing.assert_array_equal, got.params, _tree(seed))
        _clean(snap)
        shutil.rmtree(run_dir, ignore_errors=True)
    assert capfd.readouterr().err == ""  # `latest` always named a complete checkpoint: no fallback was needed
    if before and scenario == "new-step-with-pruning":
        assert outcomes == {5, 6}  # killed early: the old checkpoint; late: the new one


def _sha(seed):
    import io

    import safetensors.numpy

    params = _tree(seed)
    buf = io.BytesIO()
    state = {f"opt/{k}": v for k, v in ck.flatten_tree({"mu": params}).items()}
    state["rng/key_data"] = np.asarray(jax.random.key_data(jax.random.key(seed)))
    np.savez(buf, **state)
    return {ck.PARAMS_FILE: hashlib.sha256(safetensors.numpy.save(ck.flatten_tree(params),
                                                                 metadata={"format": "fungpt"})).hexdigest(),
            ck.STATE_FILE: hashlib.sha256(buf.getvalue()).hexdigest()}


def test_every_file_and_folder_is_synced_before_latest_moves(tmp_path, monkeypatch):
    _save(tmp_path, 5, 5)
    with monkeypatch.context() as m:
        rec = _Recorder(m, tmp_path)
        _save(tmp_path, 6, 6)
    ev = rec.events
    [(i_latest, tmp_latest)] = [(i, e[1]) for i, e in enumerate(ev) if e[0] == "replace" and e[2].endswith("/latest")]
    [(i_move, tmp_ckpt)] = [(i, e[1]) for i, e in enumerate(ev) if e[0] == "replace" and e[2].endswith("ckpt-0000006")]
    synced_before = lambda i: [e[1] for e in ev[:i] if e[0] == "fsync"]
    for f in (ck.PARAMS_FILE, ck.STATE_FILE, ck.META_FILE):  # the files, in the temporary folder
        assert f"{tmp_ckpt}/{f}" in synced_before(i_move), f
    assert tmp_ckpt in synced_before(i_move)  # the folder's entries
    assert str(tmp_path) in [e[1] for e in ev[i_move:i_latest] if e[0] == "fsync"]  # the rename of the folder
    assert tmp_latest in synced_before(i_latest)  # the new `latest`'s content
    assert ("fsync", str(tmp_path), "") in ev[i_latest:]  # and its rename
    assert i_move < i_latest


def test_every_bit_flip_of_state_json_is_refused_or_harmless(tmp_path):
    from fungpt.gpt.config import TrainConfig

    ck.save_checkpoint(tmp_path, 40, _tree(1), {}, jax.random.key(1), TrainConfig().to_dict(),
                       {"type": "char", "chars": "".join(map(chr, range(32, 97)))})
    folder = tmp_path / "ckpt-0000040"
    path = folder / ck.META_FILE
    good = path.read_bytes()
    meta = ck.read_meta(folder)
    refused = harmless = 0  # (read_meta(files=()) verifies state.json alone: the other files cannot change here)
    fd = os.open(path, os.O_RDWR)  # flipped in place (same size): no truncating rewrite per flip
    try:
        for i in range(len(good) * 8):
            os.pwrite(fd, bytes([good[i // 8] ^ (1 << (i % 8))]), i // 8)
            try:
                got = ck.read_meta(folder, files=())
            except ck.CheckpointError as e:
                assert str(path) in str(e)
                refused += 1
            else:
                assert got == meta, f"bit {i}: {good[i // 8 - 20:i // 8 + 20]!r} loads as different content"
                harmless += 1
            os.pwrite(fd, good[i // 8:i // 8 + 1], i // 8)
    finally:
        os.close(fd)
    assert refused + harmless == len(good) * 8 and refused > 0.99 * len(good) * 8
    print(f"state.json: {len(good) * 8} single-bit flips, {refused} refused, {harmless} load the same content")


def test_the_step_must_match_the_folder_name(tmp_path):
    _save(tmp_path, 5, 5)
    shutil.copytree(tmp_path / "ckpt-0000005", tmp_path / "ckpt-0000050")
    with pytest.raises(ck.CheckpointError, match=r"ckpt-0000050/state.json says step 5, but its folder is "):
        ck.read_meta(tmp_path / "ckpt-0000050")


def test_a_short_disk_prunes_first_and_keeps_the_newest_complete_checkpoint(tmp_path, monkeypatch):
    _save(tmp_path, 4, 4)
    _save(tmp_path, 5, 5)
    real = shutil.disk_usage
    usage = type(real(tmp_path))
    # room for the new checkpoint only once ckpt-0000004 is gone
    fake = lambda p: usage(1 << 40, 0, (1 << 30) if not (tmp_path / "ckpt-0000004").exists() else 1000)
    with monkeypatch.context() as m:
        m.setattr(shutil, "disk_usage", fake)
        rec = _Recorder(m, tmp_path)
        _save(tmp_path, 6, 6)
    first_write = next(i for i, e in enumerate(rec.events) if e[0] == "mkdir" and ".tmp-" in e[1])
    assert ("rmtree", str(tmp_path / "ckpt-0000004"), "") in rec.events[:first_write]
    assert [s for s, _ in ck.checkpoint_steps(tmp_path)] == [6, 5]
    # no room even after pruning: refused before writing, naming the step and what remains
    monkeypatch.setattr(shutil, "disk_usage", lambda p: usage(1 << 40, 0, 1000))
    with pytest.raises(OSError, match=r"saving step 7: .* bytes needed .*the last complete checkpoint "
                                      r".*ckpt-0000006 is intact") as e:
        _save(tmp_path, 7, 7)
    assert e.value.errno == 28
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt-0000006", "latest"]


def test_a_failed_write_names_the_file_the_step_and_what_remains(tmp_path, monkeypatch):
    _save(tmp_path, 5, 5)
    real = ck._write_bytes

    def full(path, data):
        if path.name == ck.STATE_FILE:
            raise OSError(28, "No space left on device", str(path))
        return real(path, data)

    monkeypatch.setattr(ck, "_write_bytes", full)
    with pytest.raises(OSError, match=r"saving step 6 failed at .*\.ckpt-0000006\.tmp-\d+/train_state\.npz: No "
                                      r"space left on device; the last complete checkpoint .*ckpt-0000005 is intact"):
        _save(tmp_path, 6, 6)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt-0000005", "latest"]


def test_sampling_needs_only_the_model_file(tmp_path):
    params = _save(tmp_path, 5, 5)
    (tmp_path / "ckpt-0000005" / ck.STATE_FILE).unlink()
    got = ck.load_checkpoint(tmp_path, _tree(0))
    assert got.step == 5 and got.opt_state is None and got.key is None
    jax.tree.map(np.testing.assert_array_equal, got.params, params)
    with pytest.raises(ck.CheckpointError, match=r"train_state\.npz cannot be read"):
        ck.load_checkpoint(tmp_path, _tree(0), {"mu": _tree(0)})


@pytest.mark.slow
def test_a_kill_before_every_file_operation_of_a_training_save_resumes_bit_exactly(tmp_path, monkeypatch):
    # The final save of a tiny run (step 6, pruning ckpt-0000000), killed before each of its file operations;
    # every leftover folder resumes (or is already at step 6) to the uninterrupted run's state, bit for bit.
    from fungpt.gpt import data
    from fungpt.gpt import train as T

    (tmp_path / "t.txt").write_text(data.load_text()[:20_000], encoding="utf-8")
    tiny = lambda out: T.config_from("baby", data=str(tmp_path / "t.txt"), out_dir=str(out), n_layer=1, n_head=2,
                                     n_embd=16, block_size=8, batch_size=4, max_iters=6, warmup_iters=2,
                                     lr_decay_iters=6, eval_interval=3, eval_iters=2, ckpt_interval=3,
                                     log_interval=2, sample_tokens=0)
    full = T.train(tiny(tmp_path / "full"), progress=False, print_fn=None)
    from fungpt.gpt import model as gpt

    like = jax.eval_shape(lambda: gpt.init_params(T.load_run(full.run_dir).model_config, jax.random.key(0)))
    want = ck.load_checkpoint(full.run_dir, like).params
    real_save = ck.save_checkpoint
    k, ops = 0, []
    while True:
        run_dir, snap = tmp_path / f"run{k}", tmp_path / f"snap{k}"
        with monkeypatch.context() as m:
            def save(d, step, *a, _m=m, _k=k, _run=run_dir, _snap=snap, **kw):
                if step != 6:
                    return real_save(d, step, *a, **kw)
                rec = _Recorder(_m, _run, kill_at=_k, snapshot=_snap)
                try:
                    return real_save(d, step, *a, **kw)
                finally:
                    rec.busy = True  # pass-through from here on
                    ops.append(len(rec.events))

            m.setattr(ck, "save_checkpoint", save)
            try:
                T.train(tiny(run_dir), progress=False, print_fn=None)
                break  # no kill: k is past the save's last operation
            except Killed:
                pass
        meta_step = ck.read_meta(snap)["step"]
        if meta_step < 6:
            res = T.train(tiny(snap), resume=snap, progress=False, print_fn=None)
            assert res.losses == full.losses[meta_step:]
        else:  # the next start (refused: nothing left to do) still removes the strays
            with pytest.raises(ValueError, match="already at step 6"):
                T.train(tiny(snap), resume=snap, progress=False, print_fn=None)
        got = ck.load_checkpoint(snap, like)
        assert got.step == 6
        jax.tree.map(np.testing.assert_array_equal, got.params, want)
        _clean_run(snap)
        k += 1
    assert k == ops[-1] >= 10
    print(f"training save of step 6: killed before each of its {k} file operations; all resumed bit-exactly")


def _clean_run(run_dir: pathlib.Path) -> None:
    names = sorted(p.name for p in run_dir.iterdir() if p.name not in ("metrics.jsonl", "loss.png", ".lock"))
    assert all(n == "latest" or ck._NAME.fullmatch(n) for n in names), names
