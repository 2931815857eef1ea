"""graph(): the forward DAG in topological order (checked with networkx), the residuals reverse mode
keeps (bytes against a hand count), DOT export; the coverage table stays in sync with the registries."""
import pathlib
import re

import jax
import jax.numpy as jnp
import networkx as nx
import numpy as np
import pytest

import fungpt
from fungpt.autodiff import coverage, graph, rules

ROOT = pathlib.Path(__file__).resolve().parents[2]


def test_graph_is_a_topologically_ordered_dag():
    f = lambda x, w: jnp.sum(jnp.tanh(x @ w) ** 2) + jnp.sum(jnp.sin(x))
    x, w = jnp.ones((3, 4), jnp.float32), jnp.ones((4, 2), jnp.float32)
    g = graph(f, x, w)
    assert len(g.nodes) == len(jax.make_jaxpr(f)(x, w).jaxpr.eqns)
    dag = nx.DiGraph()
    dag.add_nodes_from(n.index for n in g.nodes)
    dag.add_edges_from((s, d) for s, d, _ in g.edges() if isinstance(s, int))
    assert nx.is_directed_acyclic_graph(dag)
    assert all(s < d for s, d, _ in g.edges() if isinstance(s, int)), "equation order is a topological order"
    dot = g.to_dot()
    assert dot.startswith("digraph") and dot.count("->") == len(g.edges()) + len(g.outputs)


def test_value_names_are_the_printed_jaxprs():
    # JAX's jaxpr printer names values a, b, c, ... in order of definition: the same names, every run.
    f = lambda x, y: jnp.sum(jnp.sin(x) ** 2 * y)
    args = (jnp.ones(3), 2.0)
    printed = str(jax.make_jaxpr(f)(*args))
    head = re.search(r"lambda ; (.*?)\. let", printed).group(1)
    eqns = re.findall(r"^\s+(\w+):\S+ = (\w+)(?:\[.*?\])? ([\w ]+)$", printed, flags=re.M)
    g = graph(f, *args)
    assert g.inputs == tuple(re.findall(r"(\w+):", head))
    assert [(n.outputs[0], n.primitive, n.inputs) for n in g.nodes] == [(o, p, tuple(i.split())) for o, p, i in eqns]
    assert "Var(" not in g.summary() + g.to_dot()


def test_residuals_and_their_bytes():
    # sum(exp(x)): the backward sweep needs exp(x) (the answer) and nothing else: n float32 values.
    x = jnp.ones((5, 7), jnp.float32)
    g = graph(lambda x: jnp.sum(jnp.exp(x)), x)
    assert g.residual_bytes == x.size * 4, g.summary()
    # x * y: each operand is kept for the other's cotangent.
    y = jnp.ones((5, 7), jnp.float32)
    g2 = graph(lambda x, y: jnp.sum(x * y), x, y)
    assert g2.residual_bytes == 2 * x.size * 4, g2.summary()
    # the backward program is a jaxpr over (residuals, cotangents)
    assert "mul" in str(g2.backward)


def test_coverage_doc_in_sync():
    doc = (ROOT / "docs" / "autodiff_coverage.md").read_text()
    made_with = re.search(r"with jax (\S+),", doc)
    assert made_with, "the coverage doc names the jax version it lists the primitives of"
    if made_with.group(1) != jax.__version__:  # another jax has other primitives: the doc cannot match
        pytest.skip(f"docs/autodiff_coverage.md lists jax {made_with.group(1)}'s primitives; this is {jax.__version__}")
    assert doc == coverage.markdown(), "regenerate: python -m fungpt.autodiff.coverage > docs/autodiff_coverage.md"


def test_coverage_rows_reflect_registries():
    rows = {r[0]: r for r in coverage.rows()}
    for p in list(rules.vjp_rules) + list(rules.fwd_rules):
        assert rows[p.name][1] or p.name in coverage.REVERSE_RAISES, p.name
    for p in rules.jvp_rules:
        assert rows[p.name][2], p.name
    # every listed test file exists; every primitive without both rules says why
    for name, rev, fwd, _, test, why in rows.values():
        assert not test or (ROOT / test).exists(), test
        assert (rev and fwd) or why, name


# The identity-like primitives of the installed JAX (values pass through unchanged) that fungpt covers;
# the others (pvary, reduced_vary_cast_p, with_memory_space_constraint, ...) have a reason in the doc.
IDENTITY_LIKE = ["copy", "device_put", "layout_constraint", "name", "optimization_barrier", "reshard",
                 "sharding_constraint", "stage", "tie"]


def test_identity_like_primitives_have_both_rules():
    rows = {r[0]: r for r in coverage.rows()}
    present = [n for n in IDENTITY_LIKE if n in rules.all_primitives()]
    assert {"name", "device_put", "copy"} <= set(present)
    assert all(rows[n][1] and rows[n][2] for n in present), [n for n in present if not (rows[n][1] and rows[n][2])]


def test_issue_coverage_list_has_rules():
    """The primitives issue 2 lists all have both rules."""
    names = ("add sub mul div neg max min pow integer_pow square sqrt rsqrt cbrt exp exp2 log log1p expm1 tanh "
             "logistic sin cos tan asin acos atan atan2 sinh cosh asinh acosh atanh abs sign erf erfc erf_inv "
             "lgamma digamma select_n clamp convert_element_type stop_gradient copy dot_general transpose reshape "
             "broadcast_in_dim squeeze rev concatenate pad slice dynamic_slice dynamic_update_slice gather "
             "scatter scatter-add reduce_sum reduce_max reduce_min reduce_prod argmax argmin cumsum cumprod "
             "cummax cumlogsumexp sort top_k conv_general_dilated reduce_window_sum reduce_window_max fft "
             "cholesky qr eigh svd triangular_solve lu jit cond scan while custom_jvp_call").split()
    rows = {r[0]: r for r in coverage.rows()}
    missing = [n for n in names if n not in rows or not rows[n][2]]
    assert not missing, f"no forward rule: {missing}"
    missing_rev = [n for n in names if not rows[n][1] and n not in coverage.REVERSE_RAISES]
    assert not missing_rev, f"no reverse rule: {missing_rev}"


def test_graph_of_a_gpt_style_function_counts_residual_bytes():
    w = jnp.ones((8, 8), jnp.float32)
    f = lambda x: jnp.sum(jax.nn.gelu(x @ w))
    g = graph(f, jnp.ones((4, 8), jnp.float32))
    assert g.residual_bytes > 0 and all(r.nbytes == int(np.prod(r.shape)) * np.dtype(r.dtype).itemsize
                                        for r in g.residuals)
    assert fungpt.autodiff.graph is graph


# Names registered for older JAX releases that this one does not define (per JAX minor version).
MISSING_ALLOWED = {(0, 10): {"pjit", "core_call", "mesh_cast"},
                   (0, 7): {"pjit", "core_call", "mesh_cast", "stack", "stage", "tile", "unstack"}}


def test_registered_primitive_names_exist():
    """A misspelled or renamed primitive name is never silently dropped: `register` collects it."""
    version = tuple(int(v) for v in jax.__version__.split(".")[:2])
    allowed = MISSING_ALLOWED.get(version, set().union(*MISSING_ALLOWED.values()))
    assert set(rules.missing) <= allowed, f"names this JAX does not define: {set(rules.missing) - allowed}"
    before = len(rules.missing)
    assert rules.register("no_such_primitive_xyz", vjp=lambda *a, **k: None) is None
    assert rules.missing[before:] == ["no_such_primitive_xyz"]
    del rules.missing[before:]


def _autodiff_imports():
    import ast
    for path in sorted((ROOT / "src/fungpt/autodiff").rglob("*.py")):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module:
                yield path, node.module, [a.name for a in node.names]
            elif isinstance(node, ast.Import):
                for a in node.names:
                    yield path, a.name, []
            elif isinstance(node, ast.Attribute) and node.attr in ("vjp", "jvp", "grad", "linear_transpose",
                                                                    "value_and_grad", "linearize"):
                if isinstance(node.value, ast.Name) and node.value.id == "jax":
                    yield path, f"jax.{node.attr}", []


def test_autodiff_imports_nothing_else_of_fungpt_and_no_jax_differentiation():
    for path, module, names in _autodiff_imports():
        where = path.relative_to(ROOT)
        assert not module.startswith("fungpt.") or module.startswith("fungpt.autodiff"), f"{where}: {module}"
        assert not (module.startswith("fungpt.") and any(n.startswith("_") for n in names)), \
            f"{where} imports private names {names} of {module}"
        assert "interpreters" not in module and module not in (
            "jax.vjp", "jax.jvp", "jax.grad", "jax.linear_transpose", "jax.value_and_grad", "jax.linearize"), \
            f"{where} uses JAX's differentiation: {module}"
        assert not (module == "jax" and set(names) & {"vjp", "jvp", "grad", "linear_transpose", "linearize"}), where
