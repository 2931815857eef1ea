"""Checkpoints: lossless round trips, files that other tools open, atomic writes, refusal of bad files.

Oracles: the ``safetensors`` package and ``json``/``numpy`` read our files independently; byte-level
hashes of the run directory show that a refused load or an interrupted save changes nothing.
"""
import hashlib
import json
import pathlib

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import safetensors
import safetensors.numpy

from fungpt import optim
from fungpt.gpt import checkpoint as ck


def _tree(key, dtype=np.float32):
    # numpy leaves: saving is host work, and eager device ops would only slow the test down
    rng = np.random.default_rng(int(jax.random.randint(key, (), 0, 2**30)))
    r = lambda *shape: rng.standard_normal(shape).astype(dtype)
    return {
        "wte": {"weight": r(7, 4)},
        "h": {"attn": {"c_attn": {"weight": r(2, 4, 12), "bias": r(2, 12)}}, "ln_1": {"weight": r(2, 4)}},
        "ln_f": {"weight": r(4)},
    }


def _opt():
    return optim.chain(optim.clip_by_global_norm(1.0),
                       optim.adamw(optim.warmup_cosine(1e-3, 2, 10, 1e-4), weight_decay=0.1))


def _saved(tmp_path, key, step=5, dtype=np.float32):
    params = _tree(key, dtype)
    # a non-trivial state of the real optimizer: counts 3, moments 3 (host arithmetic, same tree and dtypes)
    state = jax.tree.map(lambda x: np.asarray(x) + np.asarray(3).astype(x.dtype), jax.jit(_opt().init)(params))
    rng = jax.random.fold_in(key, 99)
    ck.save_checkpoint(tmp_path, step, params, state, rng, {"n_layer": 2, "lr": 1e-3}, {"kind": "char", "vocab": "ab"})
    return params, state, rng


def _digest(folder: pathlib.Path) -> dict:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("dtype", [np.float32, np.float64, jnp.bfloat16], ids=lambda d: np.dtype(d).name)
def test_round_trip_is_bit_exact(tmp_path, key, dtype):
    params, state, rng = _saved(tmp_path, key, dtype=dtype)
    got = ck.load_checkpoint(tmp_path, params, state)
    assert got.step == 5
    chex.assert_trees_all_equal_structs(got.params, params)
    chex.assert_trees_all_equal(got.params, params)  # exact, leaf by leaf (names the leaf on failure)
    chex.assert_trees_all_equal_dtypes(got.params, params)
    chex.assert_trees_all_equal(got.opt_state, state)
    np.testing.assert_array_equal(jax.random.key_data(got.key), jax.random.key_data(rng))
    assert got.config == {"n_layer": 2, "lr": 1e-3}
    assert got.tokenizer == {"kind": "char", "vocab": "ab"}


def test_files_open_with_other_tools(tmp_path, key):
    params, _, _ = _saved(tmp_path, key)
    folder = tmp_path / "ckpt-0000005"
    assert (tmp_path / "latest").read_text().strip() == folder.name
    flat = safetensors.numpy.load_file(folder / "model.safetensors")
    assert set(flat) == {"wte.weight", "h.attn.c_attn.weight", "h.attn.c_attn.bias", "h.ln_1.weight", "ln_f.weight"}
    np.testing.assert_array_equal(flat["h.attn.c_attn.weight"], np.asarray(params["h"]["attn"]["c_attn"]["weight"]))
    with safetensors.safe_open(folder / "model.safetensors", "np") as f:
        assert f.metadata() == {"format": "fungpt"}
    meta = json.loads((folder / "state.json").read_text())
    assert meta["step"] == 5
    digest = hashlib.sha256((folder / "model.safetensors").read_bytes()).hexdigest()
    assert meta["sha256"]["model.safetensors"] == digest
    with np.load(folder / "train_state.npz", allow_pickle=False) as z:
        assert "rng/key_data" in z.files
        assert any(name.startswith("opt/") and name.endswith(".mu.wte.weight") for name in z.files), z.files


def test_own_safetensors_reader_agrees_with_the_package(tmp_path, key):
    arrays = {"a": np.asarray(jax.random.normal(key, (3, 5), jnp.float32)), "b": np.arange(4, dtype=np.int32),
              "c": np.zeros((0, 2), np.float64)}
    data = safetensors.numpy.save(arrays)
    ours = ck.read_safetensors(data)
    ref = safetensors.numpy.load(data)
    assert ours.keys() == ref.keys()
    for k in ref:
        np.testing.assert_array_equal(ours[k], ref[k])
        assert ours[k].dtype == ref[k].dtype


def test_keeps_the_newest_checkpoints_and_resaves_a_step(tmp_path, key):
    params, state, rng = _saved(tmp_path, key, step=1)
    for step in (2, 3, 3):
        ck.save_checkpoint(tmp_path, step, params, state, rng, {}, {}, keep=2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt-0000002", "ckpt-0000003", "latest"]
    assert ck.load_checkpoint(tmp_path, params, state).step == 3


def test_a_save_that_dies_midway_leaves_the_last_checkpoint(tmp_path, key, monkeypatch):
    params, state, rng = _saved(tmp_path, key, step=5)
    before = _digest(tmp_path)
    calls = []

    def dying_write(path, data):
        calls.append(path.name)
        if len(calls) == 2:  # the process "dies" after the parameters, before the optimizer state
            raise KeyboardInterrupt
        return real_write(path, data)

    real_write = ck._write_bytes
    monkeypatch.setattr(ck, "_write_bytes", dying_write)
    with pytest.raises(KeyboardInterrupt):
        ck.save_checkpoint(tmp_path, 6, params, state, rng, {}, {})
    monkeypatch.undo()
    after = _digest(tmp_path)
    assert {k: v for k, v in after.items() if not k.startswith(".")} == before  # only a hidden temp folder
    got = ck.load_checkpoint(tmp_path, params, state)
    assert got.step == 5
    chex.assert_trees_all_equal(got.params, params)


def test_a_crash_before_latest_moves_keeps_the_old_one(tmp_path, key, monkeypatch):
    params, state, rng = _saved(tmp_path, key, step=5)

    def no_pointer(path, text):
        raise OSError("disk full")

    monkeypatch.setattr(ck, "_atomic_write_text", no_pointer)
    with pytest.raises(OSError, match="disk full"):
        ck.save_checkpoint(tmp_path, 6, params, state, rng, {}, {})
    monkeypatch.undo()
    assert ck.load_checkpoint(tmp_path, params, state).step == 5  # `latest` still names step 5


def _corrupt_flip(folder):
    p = folder / "model.safetensors"
    b = bytearray(p.read_bytes())
    b[-3] ^= 0x10
    p.write_bytes(bytes(b))


def _corrupt_truncate(folder):
    p = folder / "train_state.npz"
    p.write_bytes(p.read_bytes()[:40])


def _corrupt_meta(folder):
    (folder / "state.json").write_text("{not json")


def _corrupt_format(folder):
    meta = json.loads((folder / "state.json").read_text())
    meta["format"] = 99
    (folder / "state.json").write_text(json.dumps(meta))


def _corrupt_missing(folder):
    (folder / "model.safetensors").unlink()


@pytest.mark.parametrize(
    ("corrupt", "match"),
    [(_corrupt_flip, "model.safetensors is corrupt or truncated"),
     (_corrupt_truncate, "train_state.npz is corrupt or truncated"),
     (_corrupt_meta, "state.json is corrupt"),
     (_corrupt_format, "format 99"),
     (_corrupt_missing, "cannot be read")],
    ids=["flipped-bit", "truncated", "bad-json", "future-format", "missing-file"],
)
def test_corrupt_checkpoints_are_refused_and_left_alone(tmp_path, key, corrupt, match):
    params, state, _ = _saved(tmp_path, key)
    corrupt(tmp_path / "ckpt-0000005")
    before = _digest(tmp_path)
    with pytest.raises(ck.CheckpointError, match=match):
        ck.load_checkpoint(tmp_path, params, state)
    assert _digest(tmp_path) == before


def test_latest_problems_are_named_when_nothing_else_is_there(tmp_path, key):
    _saved(tmp_path, key)
    for content, match in ((b"ckpt-0000042\n", r"latest names ckpt-0000042, which is not a complete checkpoint "
                                                r"\(no such folder\); no other complete checkpoint"),
                           (b"\xde\xad\xbe\xef", r"latest cannot be read as a checkpoint name"),
                           (b"", r"latest does not name a checkpoint \(it holds ''"),
                           (b"../../etc\n", r"latest does not name a checkpoint")):
        (tmp_path / "latest").write_bytes(content)
        (tmp_path / "ckpt-0000005").rename(tmp_path / "elsewhere")  # no checkpoint to fall back on
        with pytest.raises(ck.CheckpointError, match=match) as e:
            ck.find_checkpoint(tmp_path)
        assert str(tmp_path / "latest") in str(e.value)
        (tmp_path / "elsewhere").rename(tmp_path / "ckpt-0000005")
    with pytest.raises(ck.CheckpointError, match="no such run directory"):
        ck.find_checkpoint(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ck.CheckpointError, match="holds no checkpoint"):
        ck.find_checkpoint(tmp_path / "empty")


@pytest.mark.parametrize("latest", [b"ckpt-0000042\n", b"\xde\xad", b"", b"ckpt-0000007\n"],
                         ids=["dangling", "garbage", "empty", "corrupt-target"])
def test_a_broken_latest_falls_back_to_the_newest_verified_checkpoint(tmp_path, key, latest, capsys):
    params, state, rng = _saved(tmp_path, key, step=5)
    ck.save_checkpoint(tmp_path, 6, params, state, rng, {}, {})
    ck.save_checkpoint(tmp_path, 7, params, state, rng, {}, {}, keep=3)
    _corrupt_flip(tmp_path / "ckpt-0000007")  # the newest folder is never the fallback: it fails verification
    (tmp_path / "latest").write_bytes(latest)
    before = _digest(tmp_path)
    got = ck.load_checkpoint(tmp_path, params, state)
    assert got.step == 6
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and err.startswith(f"warning: {tmp_path / 'latest'}")
    assert f"using {tmp_path / 'ckpt-0000006'}, the newest complete checkpoint" in err
    assert _digest(tmp_path) == before  # loading never writes


def test_incompatible_shapes_and_trees_are_named(tmp_path, key):
    params, _, _ = _saved(tmp_path, key)
    wider = jax.tree.map(lambda x: x, params)
    wider["wte"]["weight"] = np.zeros((7, 8), np.float32)
    with pytest.raises(ck.CheckpointError, match=r"wte\.weight is float32\[7, 4\], this config expects float32\[7, 8"):
        ck.load_checkpoint(tmp_path, wider, None)
    fewer = {k: v for k, v in params.items() if k != "ln_f"}
    with pytest.raises(ck.CheckpointError, match=r"unexpected \['ln_f\.weight'\]"):
        ck.load_checkpoint(tmp_path, fewer, None)
    f64 = jax.tree.map(lambda x: x.astype(np.float64), params)
    with pytest.raises(ck.CheckpointError, match="expects float64"):
        ck.load_checkpoint(tmp_path, f64, None)
    other_opt = jax.eval_shape(optim.adamw(1e-3).init, params)
    with pytest.raises(ck.CheckpointError, match="optimizer state"):
        ck.load_checkpoint(tmp_path, params, other_opt)


def test_templates_may_be_shape_structs(tmp_path, key):
    params, _, _ = _saved(tmp_path, key)
    like = jax.eval_shape(lambda: params)
    got = ck.load_checkpoint(tmp_path, like)
    chex.assert_trees_all_equal(got.params, params)
    assert got.opt_state is None


def test_pruning_keeps_the_newest_steps_past_seven_digits(tmp_path):
    # ckpt-10000000 sorts before ckpt-9999999 by name: pruning by name deleted the second newest.
    params, k = {"w": np.ones((2,), np.float32)}, jax.random.key(0)
    for step in (9_999_998, 9_999_999, 10_000_000, 10_000_001):
        ck.save_checkpoint(tmp_path, step, params, {}, k, {}, {}, keep=2)
    newest = sorted(int(p.name[5:]) for p in tmp_path.glob("ckpt-*"))
    assert newest == [10_000_000, 10_000_001]
    assert ck.load_checkpoint(tmp_path, params).step == 10_000_001


def test_a_save_that_raises_leaves_the_run_directory_as_it_was(tmp_path, key):
    params, state, rng = _saved(tmp_path, key, step=5)
    before = _digest(tmp_path)
    names = sorted(p.name for p in tmp_path.iterdir())
    for step in (6, 5):  # a new step, and re-saving the current one
        with pytest.raises(TypeError, match="JSON serializable"):
            ck.save_checkpoint(tmp_path, step, params, state, rng, {"lr": object()}, {})
    with pytest.raises(ValueError, match="non-negative int"):
        ck.save_checkpoint(tmp_path, -1, params, state, rng, {}, {})
    assert sorted(p.name for p in tmp_path.iterdir()) == names  # no temporary folders left behind
    assert _digest(tmp_path) == before
    assert ck.load_checkpoint(tmp_path, params, state).step == 5


@pytest.mark.parametrize("header, match", [
    (b"[]", "JSON object"), (b"\xff\xfe", "UTF-8 JSON"),
    (b'{"a": {"dtype": "F8", "shape": [1], "data_offsets": [0, 1]}}', "'a'"),
    (b'{"a": {"dtype": "F32", "shape": [-1, -4], "data_offsets": [0, 16]}}', "'a'"),
])
def test_safetensors_reader_refuses_malformed_headers(header, match):
    with pytest.raises(ck.CheckpointError, match=match):
        ck.read_safetensors(len(header).to_bytes(8, "little") + header + bytes(16))
