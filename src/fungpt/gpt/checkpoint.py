"""Checkpoints a user can open: parameters as safetensors, everything else beside them.

    RUN_DIR/latest                      text: the name of the newest complete checkpoint
    RUN_DIR/ckpt-0002000/model.safetensors   parameters, one tensor per leaf ("h.0.attn.c_attn.w")
    RUN_DIR/ckpt-0002000/train_state.npz     optimizer-state leaves (by tree path) and the RNG key data
    RUN_DIR/ckpt-0002000/state.json          step, config, tokenizer, format version, sha256 of each file,
                                             and its own sha256 (``meta_sha256``, over its other fields)

A save never leaves ``latest`` naming a missing or incomplete folder: files are written into a
temporary folder and fsync'ed (each file, then the folder), the folder is renamed into place and the
run folder fsync'ed, and only then is ``latest`` replaced atomically (written, fsync'ed, renamed,
fsync'ed); older checkpoints are pruned last (or first, when the disk is short: never the newest complete
one). Re-saving a step that is on disk with the same tensors rewrites only its state.json (atomically);
with other tensors, ``latest`` first moves to another complete checkpoint. Loading follows ``latest``
and, when it is dangling, garbage or names a corrupt checkpoint, falls back to the newest complete,
verified checkpoint with a one-line warning naming both. Loading verifies checksums, the step against
the folder name, tree paths, shapes and dtypes, and raises `CheckpointError` (a ValueError) naming the
file and the mismatch; it never writes. `remove_strays` deletes temporary folders of dead processes.
"""
from __future__ import annotations

import hashlib
import io
import json
import math
import os
import pathlib
import re
import shutil
import sys
from typing import Any, NamedTuple

import jax
import ml_dtypes
import numpy as np
import safetensors.numpy

FORMAT_VERSION = 2  # 2: state.json carries its own sha256 (format 1, without it, still loads)
PARAMS_FILE, STATE_FILE, META_FILE, LATEST = "model.safetensors", "train_state.npz", "state.json", "latest"

__all__ = [
    "Checkpoint", "CheckpointError", "checkpoint_steps", "find_checkpoint", "flatten_tree", "is_stray",
    "load_checkpoint",
    "read_meta", "read_safetensors", "remove_strays", "resumable_checkpoint", "save_checkpoint",
]


class CheckpointError(ValueError):
    """A checkpoint that is missing, corrupt, truncated or incompatible with the requested config."""


class Checkpoint(NamedTuple):
    step: int
    params: Any
    opt_state: Any
    key: jax.Array
    config: dict
    tokenizer: dict
    extra: dict


def _path_name(path) -> str:
    parts = []
    for k in path:
        for attr in ("key", "idx", "name"):
            if hasattr(k, attr):
                parts.append(str(getattr(k, attr)))
                break
        else:
            parts.append(str(k))
    return ".".join(parts)


def flatten_tree(tree) -> dict[str, np.ndarray]:
    """``{dotted tree path: numpy array}`` for every leaf, e.g. ``{"h.0.attn.c_attn.w": ...}``."""
    leaves = jax.tree_util.tree_flatten_with_path(tree)[0]
    out = {}
    for path, leaf in leaves:
        name = _path_name(path) or "leaf"
        if name in out:
            raise ValueError(f"two leaves share the checkpoint name {name!r}")
        out[name] = np.asarray(jax.device_get(leaf))
    return out


def _unflatten_like(template, arrays: dict[str, np.ndarray], what: str, file: str):
    leaves, treedef = jax.tree_util.tree_flatten_with_path(template)
    names = [_path_name(p) or "leaf" for p, _ in leaves]
    missing = [n for n in names if n not in arrays]
    extra = [n for n in arrays if n not in set(names)]
    if missing or extra:
        raise CheckpointError(
            f"{file}: {what} do not match this config: missing {missing[:5]}, unexpected {extra[:5]}"
        )
    out = []
    for name, (_, ref) in zip(names, leaves, strict=True):
        arr = arrays[name]
        ref_shape, ref_dtype = np.shape(ref), np.dtype(ref.dtype)
        if arr.shape != ref_shape or arr.dtype != ref_dtype:
            raise CheckpointError(
                f"{file}: {what} {name} is {arr.dtype}{list(arr.shape)}, this config expects "
                f"{ref_dtype}{list(ref_shape)} (was the checkpoint made with another config?)"
            )
        out.append(arr)
    return jax.tree_util.tree_unflatten(treedef, out)


_ST_DTYPES = {"F64": np.float64, "F32": np.float32, "F16": np.float16, "BF16": ml_dtypes.bfloat16,
              "I64": np.int64, "I32": np.int32, "I16": np.int16, "I8": np.int8, "U8": np.uint8,
              "U32": np.uint32, "BOOL": np.bool_}


def read_safetensors(data: bytes) -> dict[str, np.ndarray]:
    """Parse a safetensors file (8-byte little-endian header size, JSON header, raw little-endian data).

    Unlike ``safetensors.numpy`` this reads bfloat16 too, and says which tensor is out of bounds.
    """
    if len(data) < 8:
        raise CheckpointError(f"safetensors data is {len(data)} bytes, shorter than its 8-byte header size")
    n = int.from_bytes(data[:8], "little")
    if 8 + n > len(data):
        raise CheckpointError(f"safetensors header claims {n} bytes but the file has {len(data) - 8}")
    try:
        header = json.loads(bytes(data[8 : 8 + n]).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CheckpointError(f"safetensors header is not UTF-8 JSON: {e}") from None
    if not isinstance(header, dict):
        raise CheckpointError(f"safetensors header must be a JSON object, got {type(header).__name__}")
    body = memoryview(data)[8 + n :]
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        try:
            dtype = np.dtype(_ST_DTYPES[info["dtype"]]).newbyteorder("<")
            start, end = (int(v) for v in info["data_offsets"])
            shape = [int(d) for d in info["shape"]]
        except (KeyError, TypeError, ValueError) as e:
            raise CheckpointError(f"tensor {name!r}: malformed header entry {str(info)[:80]} ({e!r})") from None
        if (min(shape, default=0) < 0 or not 0 <= start <= end <= len(body)
                or end - start != dtype.itemsize * math.prod(shape)):
            raise CheckpointError(f"tensor {name!r}: offsets {start}..{end} do not fit the file or its shape {shape}")
        out[name] = np.frombuffer(body[start:end], dtype=dtype).reshape(shape).astype(dtype.newbyteorder("="))
    return out


_NAME = re.compile(r"ckpt-(\d+)")
_STRAY = re.compile(r"\.(ckpt-\d+|latest|state\.json)\.(tmp|old)-\d+")


def _write_bytes(path: pathlib.Path, data: bytes) -> str:
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    return hashlib.sha256(data).hexdigest()


def _atomic_write_text(path: pathlib.Path, text: str) -> None:
    # write a temporary file, fsync it, rename it over `path`, fsync the folder: old or new, never half
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        _write_bytes(tmp, text.encode())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def _fsync_dir(path: pathlib.Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _meta_digest(meta: dict) -> str:
    # the sha256 of state.json's canonical text without meta_sha256: whitespace-only changes keep it
    body = {k: v for k, v in meta.items() if k != "meta_sha256"}
    return hashlib.sha256(json.dumps(body, indent=1, sort_keys=True).encode()).hexdigest()


def _meta_bytes(meta: dict) -> bytes:
    return json.dumps({**meta, "meta_sha256": _meta_digest(meta)}, indent=1, sort_keys=True).encode()


def checkpoint_steps(run_dir) -> list[tuple[int, pathlib.Path]]:
    """``(step, folder)`` of every ``ckpt-<step>`` folder in ``run_dir``, newest first (complete or not)."""
    run_dir = pathlib.Path(run_dir)
    found = [(int(m.group(1)), p) for p in run_dir.glob("ckpt-*") if (m := _NAME.fullmatch(p.name)) and p.is_dir()]
    return sorted(found, reverse=True)


def is_stray(name: str) -> bool:
    """Whether a file name is a temporary of a save (``.ckpt-N.tmp-PID`` and the like)."""
    return _STRAY.fullmatch(name) is not None


def remove_strays(run_dir) -> list[str]:
    """Delete the temporary files and folders of interrupted saves (``.ckpt-N.tmp-PID``, ``.ckpt-N.old-PID``,
    ``.latest.tmp-PID``, ``ckpt-N/.state.json.tmp-PID``); returns their names. Call it only while holding the
    run folder's lock: then no live process is writing them."""
    run_dir = pathlib.Path(run_dir)
    gone = []
    for p in [*run_dir.glob(".*"), *run_dir.glob("ckpt-*/.*")]:
        if _STRAY.fullmatch(p.name):
            shutil.rmtree(p) if p.is_dir() and not p.is_symlink() else p.unlink()
            gone.append(str(p.relative_to(run_dir)))
    return gone


def _newest_complete(run_dir: pathlib.Path, exclude: str | None = None) -> pathlib.Path | None:
    for _, p in checkpoint_steps(run_dir):
        if p.name != exclude:
            try:
                _verify(p, (PARAMS_FILE, STATE_FILE))
                return p
            except CheckpointError:
                continue
    return None


def _serialize(step, params, opt_state, key, config, tokenizer, extra) -> dict[str, bytes]:
    # Everything in memory first: a tree or a config that cannot be saved raises before the disk is touched.
    files = {PARAMS_FILE: safetensors.numpy.save(flatten_tree(params), metadata={"format": "fungpt"})}
    state = {f"opt/{k}": v for k, v in flatten_tree(opt_state).items()}
    state["rng/key_data"] = np.asarray(jax.random.key_data(key))
    buf = io.BytesIO()
    np.savez(buf, **state)
    files[STATE_FILE] = buf.getvalue()
    meta = {
        "format": FORMAT_VERSION, "step": int(step), "config": config, "tokenizer": tokenizer,
        "rng_impl": str(jax.random.key_impl(key)), "extra": extra or {},
        "sha256": {fname: hashlib.sha256(data).hexdigest() for fname, data in files.items()},
    }
    files[META_FILE] = _meta_bytes(meta)
    return files


def _make_room(run_dir: pathlib.Path, need: int, step: int) -> None:
    # Short of disk: prune all but the newest complete checkpoint before writing (never after the fact).
    if shutil.disk_usage(run_dir).free >= need + (1 << 20):
        return
    keep = _newest_complete(run_dir)
    for _, p in checkpoint_steps(run_dir):
        if p != keep:
            shutil.rmtree(p, ignore_errors=True)
    free = shutil.disk_usage(run_dir).free
    if free < need + (1 << 20):
        raise OSError(28, f"saving step {step}: {need:,} bytes needed in {run_dir}, {free:,} free after pruning; "
                          f"{_what_remains(run_dir)}")


def _what_remains(run_dir: pathlib.Path) -> str:
    keep = _newest_complete(run_dir)
    return (f"the last complete checkpoint {keep} is intact" if keep is not None
            else f"no complete checkpoint remains in {run_dir}")


def save_checkpoint(run_dir, step: int, params, opt_state, key: jax.Array, config: dict,
                    tokenizer: dict, extra: dict | None = None, keep: int = 2) -> pathlib.Path:
    """Write ``RUN_DIR/ckpt-<step>`` crash-safely, point ``RUN_DIR/latest`` at it, keep the newest ``keep``.

    ``config`` and ``tokenizer`` must be JSON-serialisable dicts; ``key`` is a typed PRNG key.
    Returns the checkpoint folder. An OSError names the file, the step and the checkpoint that remains.
    """
    if isinstance(step, bool) or not isinstance(step, (int, np.integer)) or step < 0:
        raise ValueError(f"step must be a non-negative int, got {step!r}")
    run_dir = pathlib.Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    name = f"ckpt-{int(step):07d}"
    final, tmp = run_dir / name, run_dir / f".{name}.tmp-{os.getpid()}"
    files = _serialize(step, params, opt_state, key, config, tokenizer, extra)
    current = None
    try:
        if final.exists():
            current = _resave(run_dir, final, files)
        if current is None:
            _make_room(run_dir, sum(map(len, files.values())), int(step))
            _write_folder(tmp, files)
            _swap_in(run_dir, tmp, final)
        _atomic_write_text(run_dir / LATEST, name + "\n")
    except OSError as e:
        shutil.rmtree(tmp, ignore_errors=True)
        where = e.filename or run_dir
        raise OSError(e.errno, f"saving step {step} failed at {where}: {e.strerror or e}; "
                               f"{_what_remains(run_dir)}") from e
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    done = checkpoint_steps(run_dir)  # newest first, by step number (names sort by step only to 9,999,999)
    for _, old in done[keep:] if keep > 0 else []:
        if old.name != name:
            shutil.rmtree(old, ignore_errors=True)
    return final


def _write_folder(tmp: pathlib.Path, files: dict[str, bytes]) -> None:
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    for fname, data in files.items():
        _write_bytes(tmp / fname, data)
    _fsync_dir(tmp)


def _swap_in(run_dir: pathlib.Path, tmp: pathlib.Path, final: pathlib.Path) -> None:
    # `final` exists here only when it is not what `latest` names (see _resave): moving it aside is safe.
    trash = run_dir / f".{final.name}.old-{os.getpid()}"
    if final.exists():
        os.replace(final, trash)
    os.replace(tmp, final)
    _fsync_dir(run_dir)
    shutil.rmtree(trash, ignore_errors=True)


def _resave(run_dir: pathlib.Path, final: pathlib.Path, files: dict[str, bytes]) -> pathlib.Path | None:
    # Saving a step that is already on disk. Same tensors: replace state.json in place (atomic) and return
    # the folder. Otherwise return None after making sure `latest` does not name `final`.
    try:
        old = _verify(final, (PARAMS_FILE, STATE_FILE))
    except CheckpointError:
        old = None
    new = json.loads(files[META_FILE])
    if old is not None and old["sha256"] == new["sha256"]:
        if (final / META_FILE).read_bytes() != files[META_FILE]:
            tmp = final / f".{META_FILE}.tmp-{os.getpid()}"
            try:
                _write_bytes(tmp, files[META_FILE])
                os.replace(tmp, final / META_FILE)
            except BaseException:
                tmp.unlink(missing_ok=True)
                raise
            _fsync_dir(final)
        return final
    if _latest_name(run_dir) == final.name:
        other = _newest_complete(run_dir, exclude=final.name)
        if other is None and old is not None:
            raise CheckpointError(f"{final} already holds a different complete checkpoint of step {new['step']}, "
                                  f"the only one of {run_dir}; move it away to save another one there")
        if other is not None:
            _atomic_write_text(run_dir / LATEST, other.name + "\n")
    return None


def _latest_name(run_dir: pathlib.Path) -> str | None:
    try:
        return (run_dir / LATEST).read_text("utf-8").strip()
    except (OSError, UnicodeDecodeError):
        return None


def _parse_meta(ckpt: pathlib.Path) -> dict:
    path = ckpt / META_FILE
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise CheckpointError(f"{path} cannot be read: {e.strerror}") from None
    try:
        meta = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CheckpointError(f"{path} is corrupt: {e}") from None
    if not isinstance(meta, dict) or meta.get("format") not in (1, FORMAT_VERSION):
        raise CheckpointError(
            f"{path}: checkpoint format {meta.get('format') if isinstance(meta, dict) else '?'}, "
            f"this fungpt reads formats 1 and {FORMAT_VERSION}"
        )
    if meta["format"] >= 2 and meta.get("meta_sha256") != _meta_digest(meta):
        raise CheckpointError(f"{path} is corrupt (its sha256 does not match its content)")
    for field in ("step", "config", "tokenizer", "sha256", "rng_impl"):
        if field not in meta:
            raise CheckpointError(f"{path} is corrupt: field {field!r} missing")
    if (m := _NAME.fullmatch(ckpt.name)) and meta["step"] != int(m.group(1)):
        raise CheckpointError(f"{path} says step {meta['step']!r}, but its folder is {ckpt.name}")
    if not isinstance(meta["sha256"], dict):
        raise CheckpointError(f"{path} is corrupt: sha256 is not a table")
    return meta


def _verify(ckpt: pathlib.Path, files=(PARAMS_FILE, STATE_FILE)) -> dict:
    # state.json, then each of `files` against its sha256; returns the meta
    meta = _parse_meta(ckpt)
    for fname in files:
        _read_verified(ckpt, fname, meta)
    return meta


def _latest_problem(path: pathlib.Path) -> tuple[pathlib.Path | None, str]:
    # (the folder `latest` names, or None) and what is wrong with it ("" = nothing: verify it next)
    latest = path / LATEST
    if not latest.is_file():
        return None, f"{path} has no '{LATEST}' file"
    try:
        text = latest.read_bytes().decode("utf-8").strip()
    except (OSError, UnicodeDecodeError) as e:
        return None, f"{latest} cannot be read as a checkpoint name ({e})"
    if not _NAME.fullmatch(text):
        return None, f"{latest} does not name a checkpoint (it holds {text[:40]!r}, expected 'ckpt-<step>')"
    return path / text, ""


def resumable_checkpoint(run_dir) -> pathlib.Path | None:
    """The folder `find_checkpoint` would load, or None (no warning printed, nothing raised)."""
    try:
        return _find(pathlib.Path(run_dir), (PARAMS_FILE, STATE_FILE), warn=False)[0]
    except CheckpointError:
        return None


def find_checkpoint(path, files=(PARAMS_FILE, STATE_FILE)) -> pathlib.Path:
    """The verified checkpoint folder of a run directory, or a checkpoint folder itself.

    A run directory's ``latest`` is followed; if it is missing, garbage, dangling or names a checkpoint
    that fails verification, the newest complete checkpoint (state.json and ``files`` verified) is used
    instead, with a one-line warning on stderr naming both. Raises CheckpointError when none is usable.
    """
    return _find(pathlib.Path(path), files, warn=True)[0]


def _find(path: pathlib.Path, files, warn: bool) -> tuple[pathlib.Path, dict]:
    # (the checkpoint folder, its verified meta)
    if (path / META_FILE).is_file():
        return path, _verify(path, files)
    if not path.exists():
        raise CheckpointError(f"no such run directory: {path}")
    target, problem = _latest_problem(path)
    if target is not None:
        try:
            return target, _verify(target, files)
        except CheckpointError as e:
            problem = (f"{path / LATEST} names {target.name}, which is not a complete checkpoint"
                       + (f" ({e})" if target.exists() else " (no such folder)"))
    for _, cand in checkpoint_steps(path):
        if target is not None and cand.name == target.name:
            continue
        try:
            meta = _verify(cand, files)
        except CheckpointError:
            continue
        if warn:
            print(f"warning: {problem}; using {cand}, the newest complete checkpoint", file=sys.stderr)
        return cand, meta
    if not (path / LATEST).exists() and not checkpoint_steps(path):
        raise CheckpointError(f"{path} holds no checkpoint (expected a '{LATEST}' file or {META_FILE})")
    raise CheckpointError(f"{problem}; no other complete checkpoint in {path}")


def read_meta(path, files=(PARAMS_FILE, STATE_FILE)) -> dict:
    """The verified ``state.json`` (step, config, tokenizer, ...) of `find_checkpoint(path, files)`."""
    return _find(pathlib.Path(path), files, warn=True)[1]


def _read_verified(ckpt: pathlib.Path, fname: str, meta: dict) -> bytes:
    try:
        data = (ckpt / fname).read_bytes()
    except OSError as e:
        raise CheckpointError(f"{ckpt / fname} cannot be read: {e.strerror}") from None
    if hashlib.sha256(data).hexdigest() != meta["sha256"].get(fname):
        raise CheckpointError(f"{ckpt / fname} is corrupt or truncated (sha256 does not match state.json)")
    return data


def load_checkpoint(path, params_like, opt_state_like=None) -> Checkpoint:
    """Load and verify a checkpoint (`find_checkpoint`) against templates (arrays or ``jax.ShapeDtypeStruct``
    trees).

    ``opt_state_like=None`` reads only the parameters (for sampling/eval: train_state.npz may be missing;
    ``key`` and ``opt_state`` are then None). Raises CheckpointError.
    """
    files = (PARAMS_FILE,) if opt_state_like is None else (PARAMS_FILE, STATE_FILE)
    ckpt = find_checkpoint(path, files)
    meta = _parse_meta(ckpt)
    try:
        flat = read_safetensors(_read_verified(ckpt, PARAMS_FILE, meta))
    except CheckpointError:
        raise
    except (KeyError, TypeError, ValueError) as e:  # a malformed header
        raise CheckpointError(f"{ckpt / PARAMS_FILE} is not a valid safetensors file: {e}") from None
    params = _unflatten_like(params_like, flat, "parameters", PARAMS_FILE)
    key = opt_state = None
    if opt_state_like is not None:
        state_bytes = _read_verified(ckpt, STATE_FILE, meta)
        try:
            with np.load(io.BytesIO(state_bytes), allow_pickle=False) as z:
                state = {k: z[k] for k in z.files}
        except Exception as e:
            raise CheckpointError(f"{ckpt / STATE_FILE} is not a valid npz file: {e}") from None
        key = jax.random.wrap_key_data(state["rng/key_data"], impl=meta["rng_impl"])
        opt = {k.removeprefix("opt/"): v for k, v in state.items() if k.startswith("opt/")}
        opt_state = _unflatten_like(opt_state_like, opt, "optimizer state", STATE_FILE)
    return Checkpoint(meta["step"], params, opt_state, key, meta["config"], meta["tokenizer"],
                      meta.get("extra", {}))
