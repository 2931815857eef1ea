"""Symbolic expressions as immutable trees, evaluation, rewriting and symbolic differentiation."""
from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping

import jax.numpy as jnp
import numpy as np
from jax import lax

__all__ = ["Add", "Call", "Const", "Expr", "Mul", "Pow", "Var", "cos", "dag_size", "diff", "evaluate", "exp",
           "expr_size", "log", "simplify", "sin", "tanh"]


class Expr:
    """A symbolic expression: an immutable tree of Const, Var, Add, Mul, Pow and Call nodes.

    Build with Python operators (x * x + 3 * sin(x)), evaluate with `evaluate`, rewrite with
    `simplify`, differentiate with `diff`.  Nodes are frozen dataclasses: hashable and comparable.
    """

    def __add__(self, o):
        return Add(self, _expr(o))

    def __radd__(self, o):
        return Add(_expr(o), self)

    def __sub__(self, o):
        return Add(self, Mul(Const(-1.0), _expr(o)))

    def __rsub__(self, o):
        return Add(_expr(o), Mul(Const(-1.0), self))

    def __mul__(self, o):
        return Mul(self, _expr(o))

    def __rmul__(self, o):
        return Mul(_expr(o), self)

    def __truediv__(self, o):
        return Mul(self, Pow(_expr(o), Const(-1.0)))

    def __rtruediv__(self, o):
        return Mul(_expr(o), Pow(self, Const(-1.0)))

    def __pow__(self, o):
        return Pow(self, _expr(o))

    def __neg__(self):
        return Mul(Const(-1.0), self)

    def __str__(self):
        return _str(self)


@dataclasses.dataclass(frozen=True, repr=False)
class Const(Expr):
    value: float

    def __repr__(self):
        return f"Const({self.value!r})"


@dataclasses.dataclass(frozen=True, repr=False)
class Var(Expr):
    name: str

    def __repr__(self):
        return f"Var({self.name!r})"


@dataclasses.dataclass(frozen=True)
class Add(Expr):
    a: Expr
    b: Expr


@dataclasses.dataclass(frozen=True)
class Mul(Expr):
    a: Expr
    b: Expr


@dataclasses.dataclass(frozen=True)
class Pow(Expr):
    base: Expr
    exponent: Expr


@dataclasses.dataclass(frozen=True)
class Call(Expr):
    fn: str  # one of _FUNCS
    arg: Expr


def _expr(x) -> Expr:
    if isinstance(x, Expr):
        return x
    if isinstance(x, (int, float)) and not isinstance(x, bool):
        return Const(float(x))
    raise TypeError(f"expected an Expr or a number, got {type(x).__name__}")


# name -> (numeric function, derivative as a function of the argument expression)
_FUNCS: dict[str, tuple[Callable, Callable[[Expr], Expr]]] = {
    "exp": (jnp.exp, lambda u: Call("exp", u)),
    "log": (jnp.log, lambda u: Pow(u, Const(-1.0))),
    "sin": (jnp.sin, lambda u: Call("cos", u)),
    "cos": (jnp.cos, lambda u: Mul(Const(-1.0), Call("sin", u))),
    "tanh": (jnp.tanh, lambda u: Add(Const(1.0), Mul(Const(-1.0), Pow(Call("tanh", u), Const(2.0))))),
}


def exp(u) -> Expr:
    """Symbolic exp(u)."""
    return Call("exp", _expr(u))


def log(u) -> Expr:
    """Symbolic natural log(u)."""
    return Call("log", _expr(u))


def sin(u) -> Expr:
    """Symbolic sin(u)."""
    return Call("sin", _expr(u))


def cos(u) -> Expr:
    """Symbolic cos(u)."""
    return Call("cos", _expr(u))


def tanh(u) -> Expr:
    """Symbolic tanh(u)."""
    return Call("tanh", _expr(u))


def evaluate(e: Expr, env: Mapping[str, object]):
    """The value of e with each Var replaced by env[name] (jnp arrays broadcast elementwise).

    Pure jnp, so `jax.jit`, `jax.vmap` and `fungpt.grad` apply to `lambda x: evaluate(e, {"x": x})`.
    A subexpression object that appears several times (built once, used twice) is evaluated once, so the
    traced program is a DAG as small as the expression's sharing allows.  Integer constant exponents use
    `lax.integer_pow` (x³ is defined for negative x).
    """
    memo: dict[int, object] = {}  # by id: e stays alive during the call, so ids are stable

    def ev(e):
        if id(e) not in memo:
            memo[id(e)] = _eval_node(e, env, ev)
        return memo[id(e)]

    return ev(e)


def _eval_node(e, env, ev):
    if isinstance(e, Const):
        return e.value
    if isinstance(e, Var):
        if e.name not in env:
            raise KeyError(f"no value for variable {e.name!r}; env has {sorted(env)}")
        return env[e.name]
    if isinstance(e, Add):
        return ev(e.a) + ev(e.b)
    if isinstance(e, Mul):
        return ev(e.a) * ev(e.b)
    if isinstance(e, Pow):
        base = ev(e.base)
        if isinstance(e.exponent, Const) and float(e.exponent.value).is_integer():
            n = int(e.exponent.value)
            return base**n if isinstance(base, float) else lax.integer_pow(jnp.asarray(base), n)
        return jnp.power(base, ev(e.exponent))
    if isinstance(e, Call):
        if e.fn not in _FUNCS:
            raise ValueError(f"unknown function {e.fn!r}; known: {sorted(_FUNCS)}")
        return _FUNCS[e.fn][0](ev(e.arg))
    raise TypeError(f"expected an Expr, got {type(e).__name__}")


def diff(e: Expr, var: str, simplified: bool = True) -> Expr:
    """∂e/∂var by the rules of calculus on the expression tree, then `simplify` (unless simplified=False):
    c' = 0, x' = 1, (u+v)' = u'+v', (uv)' = u'v + uv', (uᶜ)' = c uᶜ⁻¹ u' (constant c),
    (uᵛ)' = uᵛ (v' log u + v u'/u) otherwise, f(u)' = f'(u) u' (chain rule).

    The result is a tree, so a subexpression used twice is copied twice: derivatives of deep
    compositions swell exponentially, where autodiff's jaxpr (a DAG) shares them.
    """
    d = _diff(e, var)
    return simplify(d) if simplified else d


def expr_size(e: Expr) -> int:
    """Number of nodes of the expression tree (a subexpression counted once per occurrence)."""
    if isinstance(e, (Const, Var)):
        return 1
    if isinstance(e, Call):
        return 1 + expr_size(e.arg)
    a, b = (e.base, e.exponent) if isinstance(e, Pow) else (e.a, e.b)
    return 1 + expr_size(a) + expr_size(b)


def _kids(e) -> tuple:
    if isinstance(e, (Const, Var)):
        return ()
    if isinstance(e, Call):
        return (e.arg,)
    return (e.base, e.exponent) if isinstance(e, Pow) else (e.a, e.b)


def dag_size(e: Expr) -> int:
    """Number of nodes of e as a hash-consed DAG: distinct subexpressions, equal ones stored once.

    Each node gets a key (type, payload, keys of its children) bottom-up and is interned in a table, so
    equal subtrees meet in one entry: O(nodes of the DAG) work with a per-object memo, even where the tree
    (`expr_size`) is exponentially larger.  This is the size of the program a CSE pass would emit.
    """
    table: dict[tuple, int] = {}
    memo: dict[int, int] = {}  # by id: the objects stay alive in e during the call
    stack = [(e, False)]
    while stack:  # iterative post-order: deep expressions do not hit the recursion limit
        node, ready = stack.pop()
        if id(node) in memo:
            continue
        kids = _kids(node)
        if not ready:
            stack.append((node, True))
            stack.extend((k, False) for k in kids if id(k) not in memo)
            continue
        payload = node.value if isinstance(node, Const) else node.name if isinstance(node, Var) else (
            node.fn if isinstance(node, Call) else None)
        key = (type(node).__name__, payload, *(memo[id(k)] for k in kids))
        memo[id(node)] = table.setdefault(key, len(table))
    return len(table)


def _diff(e, x):
    if isinstance(e, Const):
        return Const(0.0)
    if isinstance(e, Var):
        return Const(1.0 if e.name == x else 0.0)
    if isinstance(e, Add):
        return Add(_diff(e.a, x), _diff(e.b, x))
    if isinstance(e, Mul):
        return Add(Mul(_diff(e.a, x), e.b), Mul(e.a, _diff(e.b, x)))
    if isinstance(e, Pow):
        u, v = e.base, e.exponent
        if isinstance(v, Const):
            return Mul(Mul(v, Pow(u, Const(v.value - 1.0))), _diff(u, x))
        return Mul(e, Add(Mul(_diff(v, x), Call("log", u)), Mul(v, Mul(_diff(u, x), Pow(u, Const(-1.0))))))
    if isinstance(e, Call):
        if e.fn not in _FUNCS:
            raise ValueError(f"unknown function {e.fn!r}; known: {sorted(_FUNCS)}")
        return Mul(_FUNCS[e.fn][1](e.arg), _diff(e.arg, x))
    raise TypeError(f"expected an Expr, got {type(e).__name__}")


def simplify(e: Expr) -> Expr:
    """Rewrite bottom-up with identities of real algebra: fold constants; u+0 = u,
    u·1 = u, u·0 = 0, u¹ = u, u⁰ = 1, 1ᵘ = 1, (uᵃ)ᵇ = u^(ab) for integers a, b, u + u = 2u, u·u = u²,
    c₁(c₂u) = (c₁c₂)u, log(exp u) = u.  Never makes an expression larger.  The result equals the input
    wherever the input is finite; it may be finite where the input is not (log(x)·0 is NaN at x = −1 and
    simplifies to 0; log(exp(x)) is inf at x = 1000 in floats and simplifies to x)."""
    if isinstance(e, (Const, Var)):
        return e
    if isinstance(e, Add):
        return _add(simplify(e.a), simplify(e.b))
    if isinstance(e, Mul):
        return _mul(simplify(e.a), simplify(e.b))
    if isinstance(e, Pow):
        return _pow(simplify(e.base), simplify(e.exponent))
    if isinstance(e, Call):
        u = simplify(e.arg)
        if isinstance(u, Const) and (e.fn != "log" or u.value > 0):
            return Const(float(getattr(np, e.fn)(np.float64(u.value))))  # fold in float64, not jnp's default
        if e.fn == "log" and isinstance(u, Call) and u.fn == "exp":
            return u.arg
        return Call(e.fn, u)
    raise TypeError(f"expected an Expr, got {type(e).__name__}")


def _is(e, v):
    return isinstance(e, Const) and e.value == v


def _add(a, b):
    if isinstance(a, Const) and isinstance(b, Const):
        return Const(a.value + b.value)
    if _is(a, 0.0):
        return b
    if _is(b, 0.0):
        return a
    if a == b:
        return _mul(Const(2.0), a)
    return Add(a, b)


def _mul(a, b):
    if isinstance(b, Const) and not isinstance(a, Const):
        a, b = b, a  # constants first
    if isinstance(a, Const) and isinstance(b, Const):
        return Const(a.value * b.value)
    if _is(a, 0.0):
        return Const(0.0)
    if _is(a, 1.0):
        return b
    if isinstance(a, Const) and isinstance(b, Mul) and isinstance(b.a, Const):
        return _mul(Const(a.value * b.a.value), b.b)
    if a == b:
        return Pow(a, Const(2.0))
    return Mul(a, b)


def _pow(u, v):
    if isinstance(u, Const) and isinstance(v, Const) and (u.value > 0 or float(v.value).is_integer()):
        if u.value != 0 or v.value >= 0:
            return Const(float(np.float64(u.value) ** v.value))
    if _is(v, 0.0) or _is(u, 1.0):
        return Const(1.0)
    if _is(v, 1.0):
        return u
    if (isinstance(u, Pow) and isinstance(u.exponent, Const) and isinstance(v, Const)
            and float(u.exponent.value).is_integer() and float(v.value).is_integer()):
        return _pow(u.base, Const(u.exponent.value * v.value))
    return Pow(u, v)


def _str(e, prec=0):
    # precedence: Add 1, Mul 2, Pow 3; parenthesize a child that binds looser than its parent
    if isinstance(e, Const):
        v = e.value
        s = str(int(v)) if float(v).is_integer() else repr(v)
        return f"({s})" if v < 0 and prec > 0 else s
    if isinstance(e, Var):
        return e.name
    if isinstance(e, Call):
        return f"{e.fn}({_str(e.arg)})"
    p, s = {Add: (1, " + "), Mul: (2, "*"), Pow: (3, "**")}[type(e)]
    left, right = (e.a, e.b) if not isinstance(e, Pow) else (e.base, e.exponent)
    text = _str(left, p + (isinstance(e, Pow))) + s + _str(right, p + (not isinstance(e, Add)))
    return f"({text})" if p < prec else text
