"""The computation graph our autodiff sees: the forward DAG (nodes = equations, edges = values, in the
jaxpr's topological order), the residuals the forward sweep keeps, and the backward program."""
import dataclasses

import jax
import numpy as np
from jax import tree_util
from jax.extend.core import Literal

from fungpt.autodiff.jaxpr import differentiable, is_drop, trace
from fungpt.autodiff.reverse import linearize
from fungpt.autodiff.rules import fwd_rules


@dataclasses.dataclass(frozen=True)
class Node:
    index: int
    primitive: str
    inputs: tuple  # value names ("a", "b", or literals as "3.0")
    outputs: tuple
    shapes: tuple  # output "dtype[shape]" strings


@dataclasses.dataclass(frozen=True)
class Residual:
    name: str  # the value kept, or "<primitive>#<node>[k]" for a rule's own residual
    node: int  # the equation whose backward rule reads it
    shape: tuple
    dtype: str
    nbytes: int


@dataclasses.dataclass(frozen=True)
class Graph:
    """Forward DAG + what reverse mode keeps + the backward program (a jaxpr of (residuals, cts))."""
    inputs: tuple
    outputs: tuple
    nodes: tuple
    residuals: tuple
    backward: object  # ClosedJaxpr

    @property
    def residual_bytes(self) -> int:
        return sum(r.nbytes for r in self.residuals)

    def edges(self):
        """(producer node or input name, consumer node, value) triples."""
        producer = {v: n.index for n in self.nodes for v in n.outputs}
        return [(producer.get(v, v), n.index, v) for n in self.nodes for v in n.inputs if v in producer
                or v in self.inputs]

    def to_dot(self) -> str:
        """Graphviz DOT text: inputs as ellipses, equations as boxes, kept residuals in red."""
        kept = {r.name for r in self.residuals}
        lines = ["digraph fungpt {", "  rankdir=TB;", '  node [fontname="monospace"];']
        for v in self.inputs:
            lines.append(f'  "{v}" [shape=ellipse, label="{v}"];')
        for n in self.nodes:
            color = ', color=red' if any(o in kept for o in n.outputs) else ""
            lines.append(f'  n{n.index} [shape=box, label="{n.primitive}\\n{" ".join(n.shapes)}"{color}];')
        for src, dst, v in self.edges():
            src_id = f"n{src}" if isinstance(src, int) else f'"{src}"'
            style = ", color=red" if v in kept else ""
            lines.append(f'  {src_id} -> n{dst} [label="{v}"{style}];')
        for i, v in enumerate(self.outputs):
            lines.append(f'  out{i} [shape=ellipse, label="out {i}"];')
            src = next((n.index for n in self.nodes if v in n.outputs), None)
            lines.append(f'  {f"n{src}" if src is not None else chr(34) + v + chr(34)} -> out{i};')
        lines.append("}")
        return "\n".join(lines)

    def summary(self) -> str:
        rows = [f"{len(self.nodes)} equations; reverse mode keeps {len(self.residuals)} residuals, "
                f"{self.residual_bytes:,} bytes:"]
        rows += [f"  {r.name:<14} {r.dtype}{list(r.shape)}  {r.nbytes:>10,} B  (read by node {r.node})"
                 for r in self.residuals]
        return "\n".join(rows)


def _aval_str(v):
    return f"{v.aval.dtype}{list(v.aval.shape)}" if hasattr(v.aval, "shape") else str(v.aval)


def _namer(jaxpr):
    # Short value names in order of definition (a, b, ..., z, ba, bb, ...), as JAX prints jaxprs: str(Var)
    # is not short in every JAX version (0.10 prints "Var(id=...)", different at every run).
    order = [*jaxpr.constvars, *jaxpr.invars, *(v for e in jaxpr.eqns for v in e.outvars if not is_drop(v))]
    names = {}
    for n, v in enumerate(order):
        s = ""
        while not s or n:
            n, i = divmod(n, 26)
            s = chr(ord("a") + i) + s
        names.setdefault(v, s)
    return lambda v: str(v.val) if isinstance(v, Literal) else ("_" if is_drop(v) else names[v])


def graph(f, *args) -> Graph:
    """The graph of f at args (any pytrees): forward nodes, kept residuals (bytes), backward program.

    >>> g = fungpt.autodiff.graph(lambda x: jnp.sum(jnp.sin(x) ** 2), jnp.ones(3))
    >>> [n.primitive for n in g.nodes]
    ['sin', 'integer_pow', 'reduce_sum']
    >>> len(g.residuals), g.residual_bytes    # x (for sin's rule) and sin(x) (for the square's)
    (2, 24)
    >>> print(g.summary().splitlines()[0])    # then one line per residual
    3 equations; reverse mode keeps 2 residuals, 24 bytes:
    >>> g.to_dot().splitlines()[0]            # Graphviz text: open("g.dot", "w").write(g.to_dot())
    'digraph fungpt {'
    """
    flat, in_tree = tree_util.tree_flatten(args)
    closed, _ = trace(f, flat, in_tree)
    jaxpr = closed.jaxpr
    name = _namer(jaxpr)
    nodes = tuple(Node(i, e.primitive.name, tuple(name(v) for v in e.invars),
                       tuple(name(v) for v in e.outvars if not is_drop(v)),
                       tuple(_aval_str(v) for v in e.outvars if not is_drop(v)))
                  for i, e in enumerate(jaxpr.eqns))
    active = [differentiable(v.aval) for v in jaxpr.invars]
    info = {}

    def forward(*xs):
        outs, out_active, res, backward = linearize(jaxpr, closed.consts, list(xs), active)
        info.update(tape=backward.tape, backward=backward, out_active=out_active,
                    res_avals=[jax.ShapeDtypeStruct(np.shape(r), r.dtype) for r in res],
                    out_avals=[jax.ShapeDtypeStruct(np.shape(o), o.dtype) for o in outs])
        return res

    jax.make_jaxpr(forward)(*flat)
    backward = info["backward"]
    cts = [a if act else None for a, act in zip(info["out_avals"], info["out_active"], strict=True)]
    bwd_jaxpr = jax.make_jaxpr(lambda res, cts: backward(res, cts))(info["res_avals"], cts)
    used_vars = {v for e in bwd_jaxpr.jaxpr.eqns for v in e.invars if not isinstance(v, Literal)}
    used_vars |= {v for v in bwd_jaxpr.jaxpr.outvars if not isinstance(v, Literal)}
    used = [v in used_vars for v in bwd_jaxpr.jaxpr.invars[:len(info["res_avals"])]]
    eqn_index = {id(e): i for i, e in enumerate(jaxpr.eqns)}
    residuals, seen = [], set()
    for eqn, start, stop, bwd, _ in info["tape"]:
        i = eqn_index[id(eqn)]
        if hasattr(bwd, "residual_of"):  # a forward rule keeping (transposed) operands
            names = [name(eqn.invars[j]) + suffix for j, suffix in bwd.residual_of]
        elif eqn.primitive in fwd_rules:
            names = [f"{eqn.primitive.name}#{i}[{k}]" for k in range(stop - start)]
        else:
            names = [name(v) for v in eqn.invars if not isinstance(v, Literal)] + [name(v) for v in eqn.outvars]
        for k, nm in zip(range(start, stop), names, strict=True):
            if used[k] and nm not in seen:  # a value kept once serves every rule that reads it
                seen.add(nm)
                a = info["res_avals"][k]
                residuals.append(Residual(nm, i, tuple(a.shape), str(a.dtype),
                                          int(np.prod(a.shape)) * np.dtype(a.dtype).itemsize))
    return Graph(tuple(name(v) for v in jaxpr.invars), tuple(name(v) for v in jaxpr.outvars), nodes,
                 tuple(residuals), bwd_jaxpr)
