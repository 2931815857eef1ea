"""fungpt: the AI math roadmap, from basic math to a GPT, as pure JAX functions.

The autodiff API (`grad`, `value_and_grad`, `vjp`, `jvp`, `linearize`, `linear_transpose`, `jacrev`,
`jacfwd`, `hessian`) is our own jaxpr interpreter, a drop-in for JAX's. Chapter modules are imported on first use.
"""
import importlib

from fungpt.autodiff.api import grad, hessian, jacfwd, jacrev, jvp, linear_transpose, linearize, value_and_grad, vjp

__version__ = "0.1.0"

_SUBMODULES = (
    "autodiff", "checking", "basics", "linalg", "calculus", "probability", "optim", "numerics", "information",
    "graphs", "discrete", "fourier", "topology", "generalization", "category", "nn", "gpt", "runtime",
)

__all__ = ["grad", "hessian", "jacfwd", "jacrev", "jvp", "linear_transpose", "linearize", "value_and_grad", "vjp",
           *_SUBMODULES]


def __getattr__(name):
    # Chapter modules load lazily so `import fungpt` stays fast.
    if name in _SUBMODULES:
        return importlib.import_module(f"fungpt.{name}")
    raise AttributeError(f"module 'fungpt' has no attribute {name!r}")
