"""The coverage table, generated from the rule registries: primitive -> reverse rule, forward rule,
and the test module that checks them. `python -m fungpt.autodiff.coverage` prints it as Markdown
(docs/autodiff_coverage.md is this output; a test keeps the two in sync)."""
import jax

from fungpt.autodiff.rules import all_primitives, fwd_rules, jvp_rules, rule_modules, vjp_rules

# Why a primitive of the installed JAX has no rule here, by where JAX defines it, then by name.
_WHY_BY_MODULE = {
    "jax._src.lax.parallel": "collective: appears only inside shard_map/pmap bodies, which fungpt does not "
                             "differentiate",
    "jax._src.shard_map": "shard_map: not differentiated by fungpt",
    "jax._src.state": "mutable Ref state: not differentiated by fungpt",
    "jax._src.hijax": "experimental hijax boxes/logs: not differentiated by fungpt",
    "jax._src.callback": "host callback: opaque to autodiff (JAX needs a custom_jvp/vjp around it too)",
    "jax._src.debugging": "debugging effect: carries no value to differentiate",
    "jax._src.checkify": "checkify effect: carries no value to differentiate",
    "jax._src.ffi": "foreign function call: opaque to autodiff (JAX too)",
    "jax._src.cudnn": "GPU-only cuDNN kernel (its JAX wrapper is a custom_vjp, which we differentiate)",
    "jax._src.pallas": "Pallas kernel internals",
    "jax._src.export": "export / shape-polymorphism internals",
    "jax._src.random": "PRNG internals: integer bits, no derivative",
    "jax._src.custom_batching": "custom_vmap: not differentiated by fungpt",
    "jax._src.custom_partitioning": "custom_partitioning: sharding-only, not differentiated by fungpt",
}
_WHY = {
    "pvary": "collective type cast inside shard_map", "reduced_vary_cast_p": "collective type cast inside shard_map",
    "vary_unreduced_cast_p": "collective type cast inside shard_map", "axis_index": "collective: integer index",
    "with_memory_space_constraint": "identity-like memory-space hint of Pallas kernels",
    "tridiagonal": "no derivative rule (nor in JAX)", "tridiagonal_solve": "no reverse rule yet",
    "schur": "no derivative rule (nor in JAX)", "hessenberg": "no derivative rule (nor in JAX)",
    "geqrf": "internal to qr, which has rules", "geqp3": "internal to qr, which has rules",
    "householder_product": "internal to qr, which has rules", "ormqr": "internal to qr, which has rules",
    "lu_pivots_to_permutation": "integer output", "cholesky_update": "no rule yet (JAX has one)",
    "symmetric_product": "no rule yet", "approx_top_k": "no rule yet (JAX has one)",
    "igamma_grad_a": "no derivative rule (nor in JAX)", "zeta": "derivative w.r.t. x only in JAX; not yet here",
    "random_gamma": "no rule yet (JAX differentiates samples implicitly)",
    "ragged_dot_general": "no rule yet", "scaled_dot": "no rule yet", "mulhi": "integer only",
    "select_and_scatter": "no rule yet", "reduce_window": "general reduce_window: forward only",
    "custom_lin": "JAX-internal (its own linearize)", "custom_jvp_call_jaxpr": "older form of custom_jvp_call",
    "remat_opt": "JAX-internal", "linear_call": "JAX-internal", "unreachable": "JAX-internal",
    "zeros_like": "JAX-internal (zeros of a tangent)", "dce_sink": "JAX-internal", "call": "JAX-internal",
    "call_hi_primitive": "JAX-internal", "call_hi_primitive_linearized": "JAX-internal",
    "eval_jaxpr": "JAX-internal", "empty": "uninitialised value, no derivative",
    "empty2": "uninitialised value, no derivative", "from_edtype": "extended dtypes", "to_edtype": "extended dtypes",
    "platform_index": "integer output", "iota_2x32_shape": "PRNG internals: integer bits",
    **dict.fromkeys(["accum_grad_in_ref", "empty_ref", "free_ref", "freeze", "new_ref"],
                    "mutable Ref state: not differentiated by fungpt"),
}


def why_not(name, module):
    """Why `name` (defined in `module`) has no rule in fungpt."""
    return _WHY.get(name) or next((w for m, w in _WHY_BY_MODULE.items() if module.startswith(m)), "no rule yet")


# In reverse mode, raises JAX's own error once a cotangent reaches it (no fixed trip count).
REVERSE_RAISES = {"while"}


def rows():
    """[(primitive, reverse, forward, rule module, test file, why a rule is missing)] for every primitive
    of the installed JAX."""
    prims = all_primitives()
    for table in (vjp_rules, jvp_rules, fwd_rules):
        for p in table:
            prims.setdefault(p.name, (p, ""))
    out = []
    for name in sorted(prims):
        p, home = prims[name]
        rev = (p in vjp_rules or p in fwd_rules) and name not in REVERSE_RAISES
        fwd = p in jvp_rules
        rule = vjp_rules.get(p) or fwd_rules.get(p) or jvp_rules.get(p)
        module = (rule_modules.get(p) or rule.__module__).rsplit(".", 1)[-1] if rule is not None else ""
        test = f"tests/autodiff/test_rules_{module}.py" if module else ""
        out.append((name, rev, fwd, module, test, "" if rev and fwd else why_not(name, home)))
    return out


def markdown() -> str:
    lines = ["# Autodiff coverage", "",
             f"Generated from fungpt's rule tables by `python -m fungpt.autodiff.coverage` with jax {jax.__version__}, "
             "whose primitives it lists (a test keeps this file in sync). A function differentiates with "
             "`fungpt.grad` when every primitive in its jaxpr "
             "(`jax.make_jaxpr(f)(x)`) has a reverse rule; `fungpt.jvp`/`jacfwd`/`hessian` need forward rules.",
             "", "| primitive | reverse (VJP) | forward (JVP) | rules module | tests | why not |",
             "|---|---|---|---|---|---|"]
    for name, rev, fwd, module, test, why in rows():
        if name in REVERSE_RAISES:
            why = "reverse mode raises JAX's error once a cotangent reaches the loop: use scan or a static fori_loop"
        lines.append(f"| `{name}` | {'yes' if rev else 'no'} | {'yes' if fwd else 'no'} | "
                     f"{module and f'`rules/{module}.py`'} | {test and f'`{test}`'} | {why} |")
    n_rev = sum(r[1] for r in rows())
    lines += ["", f"{n_rev} primitives have reverse rules, {sum(r[2] for r in rows())} forward rules."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    import fungpt.autodiff  # noqa: F401 -- fills the tables

    print(markdown(), end="")
