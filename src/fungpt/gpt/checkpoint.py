"""Checkpoints a user can open: parameters as safetensors, everything else beside them.

    RUN_DIR/latest                      text: the name of the newest complete checkpoint
    RUN_DIR/ckpt-0002000/model.safetensors   parameters, one tensor per leaf ("h.0.attn.c_attn.w")
    RUN_DIR/ckpt-0002000/train_state.npz     optimizer-state leaves (by tree path) and the RNG key data
    RUN_DIR/ckpt-0002000/state.json          step, config, tokenizer, format version, sha256 of each file

Writes are atomic: a checkpoint is written into a temporary folder, fsync'ed, renamed into place,
and only then does ``latest`` (itself replaced atomically) point at it; older checkpoints are pruned
last. A process killed at any instant therefore leaves the previous complete checkpoint loadable.
Loading verifies checksums, tree paths, shapes and dtypes against a template and raises
`CheckpointError` (a ValueError) naming the file and the mismatch; it never writes.
"""
from __future__ import annotations

import hashlib
import io
import json
import math
import os
import pathlib
import shutil
from typing import Any, NamedTuple

import jax
import ml_dtypes
import numpy as np
import safetensors.numpy

FORMAT_VERSION = 1
PARAMS_FILE, STATE_FILE, META_FILE, LATEST = "model.safetensors", "train_state.npz", "state.json", "latest"

__all__ = [
    "Checkpoint", "CheckpointError", "find_checkpoint", "flatten_tree", "load_checkpoint", "read_meta",
    "read_safetensors", "save_checkpoint",
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


def _write_bytes(path: pathlib.Path, data: bytes) -> str:
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    return hashlib.sha256(data).hexdigest()


def _atomic_write_text(path: pathlib.Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    _write_bytes(tmp, text.encode())
    os.replace(tmp, path)


def _fsync_dir(path: pathlib.Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def save_checkpoint(run_dir, step: int, params, opt_state, key: jax.Array, config: dict,
                    tokenizer: dict, extra: dict | None = None, keep: int = 2) -> pathlib.Path:
    """Write ``RUN_DIR/ckpt-<step>`` atomically, point ``RUN_DIR/latest`` at it, keep the newest ``keep``.

    ``config`` and ``tokenizer`` must be JSON-serialisable dicts; ``key`` is a typed PRNG key.
    Returns the checkpoint folder.
    """
    if isinstance(step, bool) or not isinstance(step, (int, np.integer)) or step < 0:
        raise ValueError(f"step must be a non-negative int, got {step!r}")
    run_dir = pathlib.Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    name = f"ckpt-{int(step):07d}"
    final, tmp = run_dir / name, run_dir / f".{name}.tmp-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    # Everything is serialized in memory first: a tree or a config that cannot be saved raises before
    # anything touches the disk.  A write that fails later removes its temporary folder.
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
    files[META_FILE] = json.dumps(meta, indent=1, sort_keys=True).encode()
    tmp.mkdir()
    try:
        for fname, data in files.items():
            _write_bytes(tmp / fname, data)
        _fsync_dir(tmp)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise

    if final.exists():  # re-saving a step: move the old copy aside, never leave a gap at `latest`
        trash = run_dir / f".{name}.old-{os.getpid()}"
        os.replace(final, trash)
        os.replace(tmp, final)
        shutil.rmtree(trash)
    else:
        os.replace(tmp, final)
    _fsync_dir(run_dir)
    _atomic_write_text(run_dir / LATEST, name + "\n")
    # Oldest first by step number: names sort by step only up to 9,999,999 (7 digits).
    done = sorted((p for p in run_dir.glob("ckpt-*") if p.name[5:].isdigit()), key=lambda p: int(p.name[5:]))
    for old in done[:-keep] if keep > 0 else []:
        if old.name != name:
            shutil.rmtree(old, ignore_errors=True)
    return final


def find_checkpoint(path) -> pathlib.Path:
    """The checkpoint folder for a run directory (via ``latest``) or a checkpoint folder itself."""
    path = pathlib.Path(path)
    if (path / META_FILE).is_file():
        return path
    if (path / LATEST).is_file():
        target = path / (path / LATEST).read_text().strip()
        if not (target / META_FILE).is_file():
            raise CheckpointError(f"{path}/latest points to {target.name}, which is not a complete checkpoint")
        return target
    if not path.exists():
        raise CheckpointError(f"no such run directory: {path}")
    raise CheckpointError(f"{path} holds no checkpoint (expected a 'latest' file or {META_FILE})")


def read_meta(path) -> dict:
    """The checkpoint's ``state.json`` (step, config, tokenizer, ...) after a format check."""
    ckpt = find_checkpoint(path)
    try:
        meta = json.loads((ckpt / META_FILE).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CheckpointError(f"{ckpt / META_FILE} is corrupt: {e}") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT_VERSION:
        raise CheckpointError(
            f"{ckpt / META_FILE}: checkpoint format {meta.get('format') if isinstance(meta, dict) else '?'}, "
            f"this fungpt reads format {FORMAT_VERSION}"
        )
    for field in ("step", "config", "tokenizer", "sha256", "rng_impl"):
        if field not in meta:
            raise CheckpointError(f"{ckpt / META_FILE} is corrupt: field {field!r} missing")
    return meta


def _read_verified(ckpt: pathlib.Path, fname: str, meta: dict) -> bytes:
    try:
        data = (ckpt / fname).read_bytes()
    except OSError as e:
        raise CheckpointError(f"{ckpt / fname} cannot be read: {e.strerror}") from None
    if hashlib.sha256(data).hexdigest() != meta["sha256"].get(fname):
        raise CheckpointError(f"{ckpt / fname} is corrupt or truncated (sha256 does not match state.json)")
    return data


def load_checkpoint(path, params_like, opt_state_like=None) -> Checkpoint:
    """Load and verify a checkpoint against templates (arrays or ``jax.ShapeDtypeStruct`` trees).

    ``opt_state_like=None`` skips the optimizer state (for sampling/eval). Raises CheckpointError.
    """
    ckpt = find_checkpoint(path)
    meta = read_meta(ckpt)
    try:
        flat = read_safetensors(_read_verified(ckpt, PARAMS_FILE, meta))
    except CheckpointError:
        raise
    except (KeyError, TypeError, ValueError) as e:  # a malformed header
        raise CheckpointError(f"{ckpt / PARAMS_FILE} is not a valid safetensors file: {e}") from None
    params = _unflatten_like(params_like, flat, "parameters", PARAMS_FILE)

    state_bytes = _read_verified(ckpt, STATE_FILE, meta)
    try:
        with np.load(io.BytesIO(state_bytes), allow_pickle=False) as z:
            state = {k: z[k] for k in z.files}
    except Exception as e:
        raise CheckpointError(f"{ckpt / STATE_FILE} is not a valid npz file: {e}") from None
    key = jax.random.wrap_key_data(state["rng/key_data"], impl=meta["rng_impl"])
    opt_state = None
    if opt_state_like is not None:
        opt = {k.removeprefix("opt/"): v for k, v in state.items() if k.startswith("opt/")}
        opt_state = _unflatten_like(opt_state_like, opt, "optimizer state", STATE_FILE)
    return Checkpoint(meta["step"], params, opt_state, key, meta["config"], meta["tokenizer"],
                      meta.get("extra", {}))
