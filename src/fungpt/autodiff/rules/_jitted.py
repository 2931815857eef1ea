"""Rules compiled as one XLA program per (rule, params, shapes).

Un-jitted, a rule made of a dozen lax calls dispatches (and, at a new shape, compiles) each one
separately; inside `jax.jit` the wrapper is inlined and costs nothing. Params are static."""
import functools

import jax


def jitted(rule):
    @functools.lru_cache(maxsize=512)
    def compiled(items):
        params = dict(items)
        return jax.jit(lambda *args: rule(*args, **params))

    @functools.wraps(rule)
    def wrapper(*args, **params):
        try:
            fn = compiled(tuple(sorted(params.items())))
        except TypeError:  # an unhashable param: run the rule as it is
            return rule(*args, **params)
        return fn(*args)

    return wrapper
