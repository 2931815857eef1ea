"""Sample inputs for the roadmap map's transforms column (tests/test_roadmap.py).

Each chapter has a module ``chNN.py`` with ``SAMPLES: dict[str, Sample]`` keyed by the dotted name that the map's
functions column uses.  ``make(key)`` returns the positional arguments; two different keys must give arguments of the
same shapes (vmap stacks them).  Arguments at the ``static`` positions and ``kwargs`` are closed over (functions,
sizes, options); the others are traced by jit, batched by vmap, and ``argnum`` (an index among all positional
arguments) is the one differentiated, through the sum of the real floating leaves of the output.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any


@dataclasses.dataclass(frozen=True)
class Sample:
    make: Callable[[Any], tuple]
    static: tuple[int, ...] = ()
    kwargs: dict = dataclasses.field(default_factory=dict)
    argnum: int = 0
    rtol: float = 1e-6
    atol: float = 1e-9
