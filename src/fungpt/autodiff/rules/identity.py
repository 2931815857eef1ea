"""Identity-like primitives: placement, layout, naming, staging and scheduling hints.

Each returns its operand(s) unchanged as values, so its tangent is the operand's tangent and its
VJP passes the cotangent through (device_put moves it back where the primal came from)."""
from fungpt.autodiff.rules import deflinear, prim, register

for _name in ["copy", "sharding_constraint", "mesh_cast", "reshard", "layout_constraint", "stage"]:
    deflinear(_name, lambda ct, x, **_: (ct,))

# checkpoint_name: the value is named for remat policies; its tangent is not (as in JAX).
register("name", vjp=lambda ct, ans, x, **_: (ct,),
         jvp=lambda xs, ts, **p: (prim("name").bind(*xs, **p), ts[0]))
# tie(x, y) = y, ordered after x.
register("tie", vjp=lambda ct, ans, x, y: (None, ct), jvp=lambda xs, ts: (prim("tie").bind(*xs), ts[1]))


def _device_put_vjp(cts, ans, *xs, devices, srcs, copy_semantics):
    # The transpose moves each cotangent back where its primal came from, as a copy.
    copy = [type(c).ALWAYS_COPY for c in copy_semantics]
    return prim("device_put").bind(*cts, devices=srcs, srcs=devices, copy_semantics=tuple(copy))


def _device_put_jvp(xs, ts, *, devices, srcs, copy_semantics):
    outs = prim("device_put").bind(*xs, devices=devices, srcs=srcs, copy_semantics=copy_semantics)
    nz = [i for i, t in enumerate(ts) if t is not None]
    pick = lambda seq: tuple(seq[i] for i in nz)
    moved = iter(prim("device_put").bind(*pick(ts), devices=pick(devices), srcs=pick(srcs),
                                         copy_semantics=pick(copy_semantics)) if nz else [])
    return outs, [None if t is None else next(moved) for t in ts]


register("device_put", vjp=_device_put_vjp, jvp=_device_put_jvp)


def _barrier_vjp(cts, ans, *xs, **_):
    return list(cts)


def _barrier_jvp(xs, ts, **_):
    outs = prim("optimization_barrier").bind(*xs)
    return outs, list(ts)


register("optimization_barrier", vjp=_barrier_vjp, jvp=_barrier_jvp)
