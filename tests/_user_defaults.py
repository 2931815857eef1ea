"""Tests that run code as a user would paste it: under JAX's default settings, not conftest's strict harness."""
import contextlib

import jax


@contextlib.contextmanager
def user_defaults():
    """A user's default JAX settings: float32, standard dtype promotion, rank promotion allowed."""
    x64 = getattr(jax, "enable_x64", None)  # jax >= 0.8; before: jax.experimental.disable_x64
    if x64 is None:
        from jax.experimental import disable_x64 as no_x64
    else:
        def no_x64():
            return x64(False)
    with no_x64(), jax.numpy_dtype_promotion("standard"), jax.numpy_rank_promotion("allow"):
        yield
