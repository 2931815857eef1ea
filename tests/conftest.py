"""A strict harness: x64 on, strict dtype promotion, rank promotion raises, keys from a fixture."""
import zlib

import jax
import pytest
from hypothesis import settings

from fungpt.runtime import tune_malloc

# The same examples on every run, so that CI's verdict is the code's and not the draw's; explore with
# `pytest --hypothesis-profile=explore` (fresh random examples).
settings.register_profile("ci", derandomize=True, print_blob=True)
settings.register_profile("explore", derandomize=False, print_blob=True)
settings.load_profile("ci")

jax.config.update("jax_enable_x64", True)
jax.config.update("jax_numpy_rank_promotion", "raise")
jax.config.update("jax_numpy_dtype_promotion", "strict")
tune_malloc()  # XLA:CPU temporaries reuse freed memory instead of page-faulting (faster suite)


@pytest.fixture
def key(request):
    """A PRNG key derived from the test's id: different per test, the same on every run."""
    return jax.random.key(zlib.crc32(request.node.nodeid.encode()))
