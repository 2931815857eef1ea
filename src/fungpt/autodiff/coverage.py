"""The coverage table, generated from the rule registries: primitive -> reverse rule, forward rule,
and the test module that checks them. `python -m fungpt.autodiff.coverage` prints it as Markdown
(docs/autodiff_coverage.md is this output; a test keeps the two in sync)."""
import jax

from fungpt.autodiff.rules import all_primitives, fwd_rules, jvp_rules, rule_modules, vjp_rules

# Primitives that never carry a derivative and need no rule of their own in a jaxpr we differentiate
# (collectives, effects, RNG internals): listed so the table is complete.
_NOT_DIFFERENTIABLE_HERE = {"pmax", "pmin", "psum", "ppermute", "all_gather", "all_to_all", "ragged_all_to_all",
                            "axis_index", "get", "swap", "name", "empty2", "tridiagonal", "tridiagonal_solve",
                            "approx_top_k", "igamma", "igammac", "igamma_grad_a", "random_gamma",
                            "regularized_incomplete_beta", "zeta", "polygamma", "schur", "hessenberg",
                            "custom_lin", "device_put"}


# In reverse mode, raises JAX's own error once a cotangent reaches it (no fixed trip count).
REVERSE_RAISES = {"while"}


def rows():
    """[(primitive, reverse, forward, rule module, test file)] for every primitive JAX exports."""
    prims = all_primitives()
    for table in (vjp_rules, jvp_rules, fwd_rules):
        for p in table:
            prims.setdefault(p.name, p)
    out = []
    for name in sorted(prims):
        p = prims[name]
        rev = (p in vjp_rules or p in fwd_rules) and name not in REVERSE_RAISES
        fwd = p in jvp_rules
        rule = vjp_rules.get(p) or fwd_rules.get(p) or jvp_rules.get(p)
        module = (rule_modules.get(p) or rule.__module__).rsplit(".", 1)[-1] if rule is not None else ""
        test = f"tests/autodiff/test_rules_{module}.py" if module else ""
        out.append((name, rev, fwd, module, test))
    return out


def markdown() -> str:
    lines = ["# Autodiff coverage", "",
             f"Generated from fungpt's rule tables by `python -m fungpt.autodiff.coverage` with jax {jax.__version__}, "
             "whose primitives it lists (a test keeps this file in sync). A function differentiates with "
             "`fungpt.grad` when every primitive in its jaxpr "
             "(`jax.make_jaxpr(f)(x)`) has a reverse rule; `fungpt.jvp`/`jacfwd`/`hessian` need forward rules.",
             "", "| primitive | reverse (VJP) | forward (JVP) | rules module | tests |", "|---|---|---|---|---|"]
    for name, rev, fwd, module, test in rows():
        note = " (no derivative defined here)" if name in _NOT_DIFFERENTIABLE_HERE and not rev else ""
        if name in REVERSE_RAISES:
            note = " (raises JAX's error once a cotangent reaches the loop: use scan or a static fori_loop)"
        lines.append(f"| `{name}` | {'yes' if rev else 'no'}{note} | {'yes' if fwd else 'no'} | "
                     f"{module and f'`rules/{module}.py`'} | {test and f'`{test}`'} |")
    n_rev = sum(r[1] for r in rows())
    lines += ["", f"{n_rev} primitives have reverse rules, {sum(r[2] for r in rows())} forward rules."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    import fungpt.autodiff  # noqa: F401 -- fills the tables

    print(markdown(), end="")
