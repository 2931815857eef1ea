"""Training past one device: a 2-D mesh ("data", "model"), sharded parameters and optimizer state, many processes.

A mesh of D·M devices is a D × M grid.  Along ``"data"`` the batch is split (data parallelism) and so is every
large parameter (FSDP / ZeRO-3: each device keeps 1/D of each matrix and XLA all-gathers it where a product
needs it); along ``"model"`` the GPT's matrices are split Megatron-style:

    c_attn (C, 3C), c_fc (C, 4C)   column-parallel: the output axis on "model"  (y_j = x W[:, j] needs no gather)
    attn/mlp c_proj (·, C)         row-parallel: the input axis on "model"      (y = Σ_m x_m W_m: one all-reduce)
    wte (V, C)                     the vocabulary axis on "model" (the embedding axis if V % M ≠ 0); wpe: C

so a device holds ≈ 1/(D·M) of every large matrix and of its Adam moments.  The partitioning is JAX's own:
``NamedSharding`` on the state, ``jax.jit`` out-shardings and ``with_sharding_constraint`` on the batch and the
gradients; XLA's SPMD partitioner inserts the all-gathers, reduce-scatters and all-reduces.  The math of a
step does not change with the mesh: losses agree with one device up to float32 summation order.

Many processes (one per host, or per GPU): call `initialize_distributed` first, then `jax.devices()` is
global, arrays are built from host copies with `shard` (each process fills its own shards), `gather`
brings a sharded tree back to every host as numpy, and only `is_writer()` writes files.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import mesh_utils
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from fungpt import optim
from fungpt.gpt import data as data_lib

__all__ = [
    "AXES", "batch_spec", "gather", "initialize_distributed", "is_writer", "make_mesh", "make_sharded_train_step",
    "named", "opt_state_specs", "param_specs", "parse_mesh", "per_device_bytes", "shard", "state_specs",
]

AXES = ("data", "model")

# The GPT's Megatron split: which axis of a parameter goes on "model", counted from the end so that the
# stacked layer axis in front does not matter.  Column-parallel layers split their output (and bias),
# row-parallel layers their input (their bias is added after the all-reduce: replicated along "model").
_MODEL_AXIS = {
    ("attn", "c_attn", "weight"): -1, ("attn", "c_attn", "bias"): -1,
    ("mlp", "c_fc", "weight"): -1, ("mlp", "c_fc", "bias"): -1,
    ("attn", "c_proj", "weight"): -2, ("mlp", "c_proj", "weight"): -2,
    ("wpe", "weight"): -1,
}


def parse_mesh(text: str | None) -> tuple[int | None, int]:
    """``"data=D,model=M"`` (either part optional, any order) -> (D or None, M); None/"" -> (None, 1).

    >>> parse_mesh("data=4,model=2"), parse_mesh("model=2"), parse_mesh(None)
    ((4, 2), (None, 2), (None, 1))
    """
    sizes: dict[str, int] = {}
    for part in filter(None, (text or "").replace(" ", "").split(",")):
        m = re.fullmatch(r"(data|model)=([1-9][0-9]*)", part)
        if m is None or m[1] in sizes:
            raise ValueError(f"bad mesh {text!r}: expected 'data=D,model=M' with positive ints (each axis once), "
                             f"e.g. 'data=4,model=2' or 'model=2'")
        sizes[m[1]] = int(m[2])
    return sizes.get("data"), sizes.get("model", 1)


def make_mesh(data: int | None = None, model: int = 1, devices: Sequence | None = None) -> Mesh:
    """A (data, model) mesh over ``devices`` (default: all devices, across processes); data=None uses them all.

    The grid comes from `jax.experimental.mesh_utils.create_device_mesh`, which on TPUs lays the "model" axis
    on neighbouring chips (it only reshapes on CPU/GPU).  data·model must equal the number of devices.
    """
    devices = jax.devices() if devices is None else list(devices)
    n = len(devices)
    for name, v in (("model", model), ("data", data)):
        if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
            raise ValueError(f"mesh {name} size must be a positive int, got {v!r}")
    if data is None:
        if n % model:
            raise ValueError(f"model={model} does not divide the {n} devices")
        data = n // model
    if data * model != n:
        raise ValueError(f"a data={data} x model={model} mesh needs {data * model} devices, got {n} "
                         f"(pass devices=... or leave data unset to use all of them)")
    try:
        grid = mesh_utils.create_device_mesh((data, model), devices, allow_split_physical_axes=True)
    except (ValueError, NotImplementedError, AssertionError):  # unusual topologies: plain order
        grid = np.array(devices).reshape(data, model)
    return Mesh(grid, AXES)


def _names(path) -> tuple[str, ...]:
    return tuple(str(getattr(k, "key", getattr(k, "name", getattr(k, "idx", k)))) for k in path)


def _leaf_spec(names, shape, D, M, stacked) -> P:
    # One parameter's PartitionSpec: the Megatron axis on "model", then FSDP on the largest other axis that D
    # divides (never a stacked layer axis: the scan over layers slices it), else on the model axis too.
    spec: list = [None] * len(shape)
    first = 1 if names and names[0] in stacked and len(shape) > 1 else 0  # (L, ...) stacked layers: skip L
    free = range(first, len(shape))
    m_ax = None
    if M > 1:
        want = _MODEL_AXIS.get(names[-3:], _MODEL_AXIS.get(names[-2:]))
        if names[-2:] == ("wte", "weight"):
            want = -2 if shape[-2] % M == 0 else -1
        if want is not None and shape[want] % M == 0:
            m_ax = len(shape) + want
            spec[m_ax] = "model"
    if D > 1:
        fits = [a for a in free if a != m_ax and shape[a] % D == 0]
        if fits:
            spec[max(fits, key=lambda a: shape[a])] = "data"
        elif m_ax is not None and shape[m_ax] % (D * M) == 0:
            spec[m_ax] = ("model", "data")
    return P(*spec)


def param_specs(params, mesh: Mesh, stacked: Sequence[str] = ("h",)) -> Any:
    """A tree of PartitionSpecs, one per parameter (arrays or `jax.ShapeDtypeStruct`s, e.g. from eval_shape).

    GPT parameters (GPT-2 names) get the Megatron split along "model" described in the module docstring;
    every leaf is then FSDP-sharded along "data" on its largest axis divisible by D (not the leading layer
    axis of the subtrees named in ``stacked``); a leaf no axis of which D divides stays replicated along
    "data".  Axes that M does not divide are not split along "model" (e.g. GPT-2's vocabulary 50257).
    """
    D, M = mesh.shape["data"], mesh.shape["model"]
    return jax.tree_util.tree_map_with_path(lambda p, x: _leaf_spec(_names(p), tuple(x.shape), D, M, stacked),
                                            params)


def opt_state_specs(opt_state, specs) -> Any:
    """PartitionSpecs for an optimizer state: every subtree shaped like the parameters (Adam's mu and nu, a
    momentum trace) takes the parameters' specs; everything else (step counts, the clip's last norm) is
    replicated.  The parameters must be a container (a dict / tuple of arrays), as a model's are."""
    target = jax.tree.structure(specs)

    def like_params(node):
        return not isinstance(node, (jax.Array, np.ndarray, jax.ShapeDtypeStruct)) and \
            jax.tree.structure(node) == target

    return jax.tree.map(lambda node: specs if like_params(node) else P(), opt_state, is_leaf=like_params)


def state_specs(state, mesh: Mesh, stacked: Sequence[str] = ("h",)) -> Any:
    """Specs for a training state NamedTuple ``(params, opt_state)`` (arrays or abstract): the same type holding
    ``param_specs`` and ``opt_state_specs`` (what `make_sharded_train_step` and `shard` take)."""
    ps = param_specs(state.params, mesh, stacked)
    return state._replace(params=ps, opt_state=opt_state_specs(state.opt_state, ps))


def batch_spec(ndim: int = 2) -> P:
    """The batch's PartitionSpec: rows (B, T) on "data"; with a leading micro-batch axis (A, B, T), axis 1."""
    return P("data", None) if ndim == 2 else P(None, "data", *([None] * (ndim - 2)))


def named(specs, mesh: Mesh) -> Any:
    """The tree of `NamedSharding(mesh, spec)` for a tree of PartitionSpecs."""
    return jax.tree.map(lambda s: NamedSharding(mesh, s), specs, is_leaf=lambda s: isinstance(s, P))


def shard(tree, specs, mesh: Mesh) -> Any:
    """Place ``tree`` (numpy or jax arrays, the same full value on every process) on ``mesh`` with ``specs``.

    Each process builds only its own shards from its host copy (`jax.make_array_from_callback`), so this is
    how a checkpoint gathered on one mesh is loaded onto another, in one process or many.
    """
    return jax.tree.map(_put, tree, named(specs, mesh))


def _put(x, sharding):
    if isinstance(x, jax.Array) and not x.is_fully_addressable:  # already global: let XLA reshard it
        return jax.jit(lambda t: t, out_shardings=sharding)(x)
    if isinstance(x, jax.Array) and jax.process_count() == 1:
        return jax.device_put(x, sharding)
    host = np.asarray(x)
    return jax.make_array_from_callback(host.shape, sharding, lambda idx: host[idx])


def gather(tree) -> Any:
    """The full value of every (sharded) array of ``tree`` as numpy, on every process (for saving).

    A global array spanning processes is all-gathered; a process-local one (fully addressable) is its value.
    """
    def one(x):
        if isinstance(x, jax.Array) and not x.is_fully_addressable:
            from jax.experimental import multihost_utils

            return np.asarray(multihost_utils.process_allgather(x, tiled=True))
        return np.asarray(x)

    return jax.tree.map(one, tree)


def per_device_bytes(tree) -> int:
    """Bytes that device 0's shards of ``tree``'s arrays take (addressable shard 0 of each leaf)."""
    return sum(x.addressable_shards[0].data.nbytes for x in jax.tree.leaves(tree))


def make_sharded_train_step(loss: Callable, optimizer, mesh: Mesh, specs=None, *, batch_size: int,
                            block_size: int, grad_accum: int = 1, value_and_grad: Callable | None = None):
    """``step(state, s, train_ids, k_data, k_drop) -> (state, loss, grad_norm, ok)``, jitted, state donated.

    The training step of `fungpt.gpt.train` with the state kept in ``specs`` (from `state_specs`; None =
    replicated, i.e. plain data parallelism).  ``state`` is a NamedTuple ``(params, opt_state)``;
    ``loss(params, x, y, key)`` is the mean loss of x, y (B, T); ``s`` the int32 number of updates done.
    With ``A = grad_accum``:

        x, y = get_batch(fold_in(k_data, s), train_ids, A·B, T)   → (A, B, T), rows on "data"
        ℓ, g = mean over a of value_and_grad(loss)(θ, x_a, y_a, split(fold_in(k_drop, s), A)[a])
        θ is all-gathered along "data" for the products (storage stays 1/D), g reduce-scattered back to it
        θ, σ ← θ + u, σ'  with  u, σ' = optimizer.update(g, σ, θ);  kept as they were if ℓ or ‖g‖ is not finite

    ``value_and_grad`` defaults to `fungpt.value_and_grad` (our autodiff runs inside the sharded program).
    """
    if value_and_grad is None:
        import fungpt

        value_and_grad = fungpt.value_and_grad
    if batch_size % mesh.shape["data"]:
        raise ValueError(f"batch_size {batch_size} must be divisible by the mesh's data axis ({mesh.shape['data']})")
    vg = value_and_grad(loss)
    A, B, T = grad_accum, batch_size, block_size
    rows = NamedSharding(mesh, batch_spec(3))
    replicated = NamedSharding(mesh, P())
    p_shard = None if specs is None else named(specs.params, mesh)
    # The weights as the products use them: gathered along "data", still split along "model".  Without this
    # XLA may instead gather the activations (the batch) to meet a weight sharded on its contracting axis.
    p_compute = None if specs is None else named(jax.tree.map(_without_data, specs.params,
                                                              is_leaf=lambda s: isinstance(s, P)), mesh)

    def step(state, s, train_ids, k_data, k_drop):
        x, y = data_lib.get_batch(jax.random.fold_in(k_data, s), train_ids, A * B, T)
        x = jax.lax.with_sharding_constraint(x.reshape(A, B, T), rows)  # (A, B, T)
        y = jax.lax.with_sharding_constraint(y.reshape(A, B, T), rows)
        keys = jax.random.split(jax.random.fold_in(k_drop, s), A)
        # identity on values: the gradient with respect to the gathered copy is the gradient
        params = state.params if p_compute is None else jax.lax.with_sharding_constraint(state.params, p_compute)
        ell, grads = _mean_over_micro_batches(vg, params, x, y, keys)
        if p_shard is not None:
            grads = jax.lax.with_sharding_constraint(grads, p_shard)
        gnorm = optim.global_norm(grads)  # the clip's own expression: XLA computes it once
        ok = jnp.isfinite(ell) & jnp.isfinite(gnorm)
        updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
        new = state._replace(params=optim.apply_updates(state.params, updates), opt_state=opt_state)
        new = jax.tree.map(lambda n, o: jnp.where(ok, n, o), new, state)  # a bad step keeps the last good state
        # The state leaves the step sharded as it came in: FSDP/TP specs, or replicated (data parallel).
        out = replicated if specs is None else new._replace(params=p_shard, opt_state=named(specs.opt_state, mesh))
        new = jax.lax.with_sharding_constraint(new, out)
        return new, *jax.lax.with_sharding_constraint((ell, gnorm, ok), replicated)

    return jax.jit(step, donate_argnums=0)


def _mean_over_micro_batches(vg: Callable, params, x, y, keys):
    """(mean ℓ, mean g) of ``vg(params, x[a], y[a], keys[a])`` over the A micro-batches, summed in a scan."""
    if x.shape[0] == 1:
        return vg(params, x[0], y[0], keys[0])

    def micro(acc, inp):
        return jax.tree.map(jnp.add, acc, vg(params, *inp)), None

    zero = jax.tree.map(jnp.zeros_like, (jnp.zeros((), jnp.float32), params))
    (ell, grads), _ = jax.lax.scan(micro, zero, (x, y, keys))
    return jax.tree.map(lambda v: v / x.shape[0], (ell, grads))


def _without_data(spec: P) -> P:
    # ("model", "data") -> "model"; "data" -> None
    def drop(a):
        kept = tuple(n for n in (a if isinstance(a, tuple) else (a,)) if n not in (None, "data"))
        return kept[0] if len(kept) == 1 else (kept or None)

    return P(*(drop(a) for a in spec))


def initialize_distributed(coordinator: str | None = None, num_processes: int | None = None,
                           process_id: int | None = None, **kwargs) -> None:
    """Join this process to a multi-process JAX run (`jax.distributed.initialize`); call before anything else.

    ``coordinator`` "HOST:PORT" (process 0's address), ``num_processes`` N, ``process_id`` I in [0, N).  With no
    arguments JAX detects them where the platform provides them (Cloud TPU pod slices, SLURM, Open MPI).
    On CPU, processes talk through gloo collectives.  Afterwards `jax.devices()` lists every process's devices.
    """
    given = [a is not None for a in (coordinator, num_processes, process_id)]
    if any(given) and not all(given):
        raise ValueError("pass coordinator, num_processes and process_id together (or none: auto-detection)")
    if num_processes is not None and not (isinstance(num_processes, int) and num_processes >= 1
                                          and isinstance(process_id, int) and 0 <= process_id < num_processes):
        raise ValueError(f"need num_processes >= 1 and 0 <= process_id < num_processes, got "
                         f"{num_processes!r}, {process_id!r}")
    if coordinator is not None and not re.fullmatch(r"[^:\s]+:[0-9]{1,5}", coordinator):
        raise ValueError(f"coordinator must be 'HOST:PORT', got {coordinator!r}")
    jax.distributed.initialize(coordinator, num_processes, process_id, **kwargs)


def is_writer() -> bool:
    """True on the one process that writes metrics and checkpoints (process 0)."""
    return jax.process_index() == 0
