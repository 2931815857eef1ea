"""Chapter 12, category theory: the structure our code already has, made explicit.

- A **category** has objects, morphisms between them, identities and an associative composition. Here:
  objects are array types (pytrees of `jax.ShapeDtypeStruct`), morphisms are typed pure functions
  (`Morphism`), composition checks that the types meet. Finite sets with functions between them
  (index arrays) are the smallest example (`finset_*`).
- A **functor** maps objects and morphisms and keeps identities and composition: ``fmap(id) = id``,
  ``fmap(g ∘ f) = fmap(g) ∘ fmap(f)``. `jax.tree.map` is one (`TREE`); lists and options are others.
- A **monoid** is an associative operation with a unit. Sums, max, string concatenation and our
  optimizers' `chain` are monoids; associativity is what lets a reduction run as a parallel tree
  (`tree_fold`, `prefix_scan`) and gradients be summed across data-parallel shards.
- A **natural transformation** η: F ⇒ G commutes with every fmap: ``η(F.fmap(f, x)) = G.fmap(f, η(x))``
  (`jax.tree.leaves` from pytrees to lists is one).
- **Learners** (Fong, Spivak, Tuyéras, "Backprop as Functor", 2019): a parametrised map with an update
  and a request (a "backward" lens part). Gradient descent is a functor from parametrised functions to
  learners, so composing the learners of layers gives exactly gradient descent on the composite.
"""
from __future__ import annotations

import dataclasses
import functools
import itertools
import math
import operator
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

import fungpt
from fungpt import optim

PyTree = Any

# ---------------------------------------------------------------------------------------------------
# Sets, categories, morphisms.


def _type_of(x) -> PyTree:
    return jax.tree.map(lambda a: jax.ShapeDtypeStruct(jnp.shape(a), jnp.result_type(a)), x)


def _same_type(a, b) -> bool:
    la, ta = jax.tree.flatten(a)
    lb, tb = jax.tree.flatten(b)
    return ta == tb and all(x.shape == y.shape and x.dtype == y.dtype for x, y in zip(la, lb, strict=True))


@dataclasses.dataclass(frozen=True)
class Morphism:
    """A typed pure function ``fn: dom → cod``; dom and cod are pytrees of `jax.ShapeDtypeStruct`.

    Build with `morphism(fn, example_input)` (the codomain is inferred by `jax.eval_shape`, no FLOPs).
    Calling checks the argument's type.
    """

    fn: Callable
    dom: PyTree
    cod: PyTree

    def __call__(self, x):
        if not _same_type(_type_of(x), self.dom):
            raise TypeError(f"morphism expects an argument of type {self.dom}, got {_type_of(x)}")
        return self.fn(x)


def morphism(fn: Callable, dom) -> Morphism:
    """``fn`` as a morphism from the type of `dom` (an example value or ShapeDtypeStructs) to its output type."""
    if not all(isinstance(leaf, jax.ShapeDtypeStruct) for leaf in jax.tree.leaves(dom)):
        dom = _type_of(dom)
    return Morphism(fn, dom, jax.eval_shape(fn, dom))


def identity(obj) -> Morphism:
    """The identity morphism ``id_A: A → A``, x ↦ x."""
    return morphism(lambda x: x, obj)


def compose(*fs: Morphism) -> Morphism:
    """``compose(h, g, f) = h ∘ g ∘ f`` (right to left, as in mathematics): x ↦ h(g(f(x))).

    Raises TypeError when a codomain and the next domain differ. Associative, with `identity` as unit.
    """
    if not fs:
        raise ValueError("compose: need at least one morphism (the identity needs its object: identity(A))")
    for g, f in itertools.pairwise(fs):
        if not _same_type(f.cod, g.dom):
            raise TypeError(f"compose: cannot compose, codomain {f.cod} does not match domain {g.dom}")

    def run(x):
        for f in reversed(fs):
            x = f.fn(x)
        return x

    return Morphism(run, fs[-1].dom, fs[0].cod)


def finset_compose(g, f) -> jax.Array:
    """Composition in FinSet, the category of finite sets {0..n-1} and functions between them, a function
    f: n → m stored as the index array f (n,) with values < m: ``(g ∘ f)[i] = g[f[i]]``.

    f must land in g's domain {0..len(g)-1}: a concrete f outside it raises ValueError; under jit those
    entries are −1 (not a clamped g[-1] or g[0], which would pass for a function)."""
    g, f = jnp.asarray(g), jnp.asarray(f)
    bad = (f < 0) | (f >= g.shape[0])
    if not isinstance(bad, jax.core.Tracer) and bool(jnp.any(bad)):
        raise ValueError(f"finset_compose: f's values {np.asarray(f)[np.asarray(bad)].tolist()} are outside "
                         f"g's domain 0..{g.shape[0] - 1} (codomain of f != domain of g)")
    return jnp.where(bad, -1, g.at[f].get(mode="fill", fill_value=-1))


def finset_identity(n: int) -> jax.Array:
    """``id_n = [0, 1, ..., n-1]`` (int32, like `finset_hom`, so that compositions keep one dtype)."""
    return jnp.arange(n, dtype=jnp.int32)


def finset_hom(n: int, m: int) -> jax.Array:
    """All functions {0..n-1} → {0..m-1}, one per row: an (m^n, n) int array (|Hom(n, m)| = m^n)."""
    if n < 0 or m < 0 or m**n > 10**6:
        raise ValueError(f"finset_hom: need n, m >= 0 and m^n <= 1e6 rows, got n={n}, m={m}")
    if n == 0 or m == 0:
        return jnp.zeros((m**n, n), jnp.int32)  # one empty function when n = 0; none into ∅ when m = 0 < n
    # Row r lists r's n base-m digits: every function exactly once.
    digits = np.arange(m**n)[:, None] // m ** np.arange(n)[None, ::-1] % m
    return jnp.asarray(digits, jnp.int32)


# ---------------------------------------------------------------------------------------------------
# Functors and natural transformations.


class Functor(NamedTuple):
    """A functor's action on morphisms, ``fmap(f, Fa) -> Fb``, with laws fmap(id) = id and
    fmap(g ∘ f) = fmap(g) ∘ fmap(f)."""

    fmap: Callable


TREE = Functor(lambda f, t: jax.tree.map(f, t))  # pytrees of a fixed structure: f applied at every leaf
LIST = Functor(lambda f, xs: [f(x) for x in xs])
OPTION = Functor(lambda f, o: None if o is None else f(o))  # "Maybe": a value or nothing


def leaves(tree) -> list:
    """The natural transformation TREE ⇒ LIST, ``jax.tree.leaves``:
    ``leaves(tree_map(f, t)) = map(f, leaves(t))``."""
    return jax.tree.leaves(tree)


def option_to_list(o) -> list:
    """The natural transformation OPTION ⇒ LIST: nothing ↦ [], x ↦ [x]."""
    return [] if o is None else [o]


def naturality_holds(eta: Callable, F: Functor, G: Functor, f: Callable, x) -> bool:
    """Does the naturality square commute at x: ``η(F.fmap(f, x)) == G.fmap(f, η(x))``? (exact equality)"""
    a, b = eta(F.fmap(f, x)), G.fmap(f, eta(x))
    la, ta = jax.tree.flatten(a)
    lb, tb = jax.tree.flatten(b)
    return ta == tb and all(bool(np.array_equal(u, v)) for u, v in zip(la, lb, strict=True))


# ---------------------------------------------------------------------------------------------------
# Monoids: associative combine with a unit.


class Monoid(NamedTuple):
    """``combine(combine(a, b), c) = combine(a, combine(b, c))`` and ``combine(unit, a) = a = combine(a, unit)``."""

    combine: Callable
    unit: Any


SUM = Monoid(operator.add, 0)
PRODUCT = Monoid(operator.mul, 1)
MAX = Monoid(jnp.maximum, -jnp.inf)
STRING = Monoid(operator.add, "")
TREE_SUM = Monoid(lambda a, b: jax.tree.map(jnp.add, a, b), None)  # unit: zeros of the tree's shape
CHAIN = Monoid(lambda a, b: optim.chain(a, b), optim.identity())  # optimizer transforms under `chain`


def fold(monoid: Monoid, xs: Sequence):
    """Sequential left fold ``(((u · x₁) · x₂) · ...) · x_n``: n-1 dependent steps."""
    acc = monoid.unit
    for i, x in enumerate(xs):
        acc = x if i == 0 and monoid.unit is None else monoid.combine(acc, x)
    return acc


def tree_fold(monoid: Monoid, xs: Sequence):
    """Balanced-tree fold: combine neighbours pairwise, ⌈log₂ n⌉ rounds whose combines are independent
    (parallel). Equals `fold` exactly when combine is associative — the property a parallel reduction,
    an all-reduce of gradients or `lax.associative_scan` relies on."""
    xs = list(xs)
    if not xs:
        return monoid.unit
    while len(xs) > 1:
        xs = [monoid.combine(xs[i], xs[i + 1]) if i + 1 < len(xs) else xs[i] for i in range(0, len(xs), 2)]
    return xs[0]


@functools.partial(jax.jit, static_argnums=0)
def prefix_scan(combine: Callable, xs) -> jax.Array:
    """All prefix combinations ``[x₀, x₀·x₁, x₀·x₁·x₂, ...]`` along axis 0 in O(log n) parallel depth
    (`lax.associative_scan`); correct only for an associative combine."""
    return lax.associative_scan(combine, jnp.asarray(xs))


def data_parallel_grad(loss: Callable, params: PyTree, batch: PyTree, n_shards: int,
                       grad: Callable = fungpt.grad) -> PyTree:
    """∇ of a sum-over-examples loss as a sum of per-shard gradients: ``∇ Σ_s L_s = Σ_s ∇L_s``.

    The gradient is a monoid homomorphism from (batches, concatenation) to (gradients, +), which is why
    data-parallel training can split a batch across devices and all-reduce. `loss(params, batch)` must be
    a sum over the leading axis of every batch leaf; shards are computed with `jax.vmap` and summed by
    `tree_fold`. n_shards must divide the batch size.
    """
    n = jax.tree.leaves(batch)[0].shape[0]
    if n_shards < 1 or n % n_shards:
        raise ValueError(f"data_parallel_grad: n_shards={n_shards} must divide the batch size {n}")
    shards = jax.tree.map(lambda x: x.reshape(n_shards, n // n_shards, *x.shape[1:]), batch)
    per_shard = jax.vmap(grad(loss), in_axes=(None, 0))(params, shards)
    return tree_fold(TREE_SUM, [jax.tree.map(lambda g, s=s: g[s], per_shard) for s in range(n_shards)])


# ---------------------------------------------------------------------------------------------------
# Compositional learning: learners as parametrised lenses (Fong, Spivak, Tuyéras 2019).


class Learner(NamedTuple):
    """A learner A → B with parameters P (a morphism of the category Learn):

    - ``implement(p, a) -> b``: the forward map;
    - ``update(p, a, b) -> p'``: new parameters, given an input and the wanted output b;
    - ``request(p, a, b) -> a'``: the input this learner would have liked — the backward message,
      which the previous learner treats as its target.
    """

    implement: Callable
    update: Callable
    request: Callable


def gradient_learner(f: Callable, lr: float) -> Learner:
    """The functor L_{ε,e}: Para → Learn for the quadratic error e(x, y) = ½‖x - y‖² and step size ε:

    with E(p, a, b) = ½‖f(p, a) - b‖²:  implement = f,
    ``update(p, a, b) = p - ε ∇_p E``,  ``request(p, a, b) = a - ∇_a E``.
    Both gradients come from one `fungpt.vjp` of f at (p, a) with cotangent f(p, a) - b.
    """

    def grads(p, a, b):
        out, pull = fungpt.vjp(f, p, a)
        return pull(jax.tree.map(jnp.subtract, out, b))

    def update(p, a, b):
        gp, _ = grads(p, a, b)
        return jax.tree.map(lambda w, g: w - jnp.asarray(lr, g.dtype) * g, p, gp)

    def request(p, a, b):
        _, ga = grads(p, a, b)
        return jax.tree.map(jnp.subtract, a, ga)

    return Learner(f, update, request)


def then(first: Learner, second: Learner) -> Learner:
    """Sequential composition A →first→ B →second→ C with parameters (p, q): the second learner's
    request at the middle value is the first learner's target. (`second ∘ first` in Learn.)"""

    def implement(pq, a):
        p, q = pq
        return second.implement(q, first.implement(p, a))

    def update(pq, a, c):
        p, q = pq
        b = first.implement(p, a)
        return first.update(p, a, second.request(q, b, c)), second.update(q, b, c)

    def request(pq, a, c):
        p, q = pq
        b = first.implement(p, a)
        return first.request(p, a, second.request(q, b, c))

    return Learner(implement, update, request)


def tensor(left: Learner, right: Learner) -> Learner:
    """Parallel composition (monoidal product): (A₁, A₂) → (B₁, B₂) with parameters (p, q), each side
    learning from its own half of the target."""
    return Learner(
        lambda pq, a: (left.implement(pq[0], a[0]), right.implement(pq[1], a[1])),
        lambda pq, a, b: (left.update(pq[0], a[0], b[0]), right.update(pq[1], a[1], b[1])),
        lambda pq, a, b: (left.request(pq[0], a[0], b[0]), right.request(pq[1], a[1], b[1])),
    )


def identity_learner() -> Learner:
    """The unit of `then`: no parameters (``()``), implement = id, request(a, b) = b."""
    return Learner(lambda p, a: a, lambda p, a, b: p, lambda p, a, b: b)


def sequence(*learners: Learner) -> Learner:
    """``then(...then(then(L₁, L₂), L₃)..., L_n)`` with a flat parameter tuple (p₁, ..., p_n).

    One forward pass stores every layer's input; the backward pass walks the layers in reverse, each
    turning the request of the layer above into its own update and request — backpropagation.
    """
    if not learners:
        return identity_learner()

    def forward(ps, a):
        xs = [a]
        for L, p in zip(learners, ps, strict=True):
            xs.append(L.implement(p, xs[-1]))
        return xs

    def backward(ps, a, target):
        xs = forward(ps, a)
        new = [None] * len(learners)
        for i in reversed(range(len(learners))):
            L, p = learners[i], ps[i]
            new[i], target = L.update(p, xs[i], target), L.request(p, xs[i], target)
        return tuple(new), target

    return Learner(lambda ps, a: forward(ps, a)[-1], lambda ps, a, b: backward(ps, a, b)[0],
                   lambda ps, a, b: backward(ps, a, b)[1])


def para_then(f: Callable, g: Callable) -> Callable:
    """Composition in Para (parametrised functions): ``(p, q), a ↦ g(q, f(p, a))``."""
    return lambda pq, a: g(pq[1], f(pq[0], a))


def dense(p, x):
    """Affine layer ``W x + b``: p = {"w": (m, n), "b": (m,)}, x (n,) → (m,)."""
    return p["w"] @ x + p["b"]


def mlp_learner(n_layers: int, lr: float, activation: Callable = jnp.tanh) -> Learner:
    """An MLP ``dense → act → dense → ... → dense`` as a `sequence` of gradient learners: dense layers with
    params {"w", "b"}, activations with params ``()``. Params: the tuple from `mlp_init`."""
    if n_layers < 1:
        raise ValueError(f"mlp_learner: n_layers must be >= 1, got {n_layers}")
    layer, act = gradient_learner(dense, lr), gradient_learner(lambda p, x: activation(x), lr)
    return sequence(*[L for i in range(n_layers) for L in ([layer, act] if i < n_layers - 1 else [layer])])


def mlp_init(key, sizes: Sequence[int], dtype=jnp.float32) -> tuple:
    """Parameters for `mlp_learner(len(sizes) - 1, ...)`: ({"w", "b"}, (), {"w", "b"}, (), ...), with
    W ~ N(0, 1/fan_in)."""
    keys = jax.random.split(key, len(sizes) - 1)
    out = []
    for i, (k, n, m) in enumerate(zip(keys, sizes[:-1], sizes[1:], strict=True)):
        out.append({"w": jax.random.normal(k, (m, n), dtype) / math.sqrt(n), "b": jnp.zeros((m,), dtype)})
        if i < len(sizes) - 2:
            out.append(())
    return tuple(out)


def batch_update(learner: Learner, params, A, B):
    """Update from a batch (leading axis of A and B): the mean of the per-example updates. Since each
    update is p - ε∇E_i, the mean is p - ε·mean_i ∇E_i — gradient descent on the mean error."""
    new = jax.vmap(learner.update, in_axes=(None, 0, 0))(params, A, B)
    return jax.tree.map(lambda x: jnp.mean(x, axis=0), new)
