"""The layering of docs/architecture.md, checked by parsing every module under src/fungpt with ``ast``.

- No module imports another module's ``_private`` name (``from fungpt.x import _name``), except the shared private
  modules whose whole purpose is to be shared (their file name starts with an underscore, e.g. ``fungpt/_arrays.py``).
- No import cycles between modules.
- Layers: ``autodiff`` imports nothing else of fungpt; nothing below ``gpt`` imports ``gpt``; nothing imports ``cli``.
- No module over 600 lines.
"""
import ast
import pathlib

SRC = pathlib.Path(__file__).resolve().parents[1] / "src"
PKG = SRC / "fungpt"
MODULES = {
    ".".join(p.relative_to(SRC).with_suffix("").parts).removesuffix(".__init__"): p for p in sorted(PKG.rglob("*.py"))
}


def _resolve(module: str, node: ast.ImportFrom, is_pkg: bool) -> str:
    if not node.level:
        return node.module or ""
    base = module.split(".") if is_pkg else module.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _imports(module: str, path: pathlib.Path):
    """(imported module, imported name or None, line) for every fungpt import, at any depth (lazy ones too)."""
    tree = ast.parse(path.read_text(), str(path))
    is_pkg = path.name == "__init__.py"
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.name.startswith("fungpt"):
                    yield a.name, None, node.lineno
        elif isinstance(node, ast.ImportFrom):
            target = _resolve(module, node, is_pkg)
            if target.startswith("fungpt"):
                for a in node.names:
                    sub = f"{target}.{a.name}"
                    yield (sub, None, node.lineno) if sub in MODULES else (target, a.name, node.lineno)


def _is_shared_private(module: str) -> bool:
    return module.split(".")[-1].startswith("_") and not module.endswith("__init__")


def test_no_private_names_imported_across_modules():
    bad = []
    for module, path in MODULES.items():
        for target, name, line in _imports(module, path):
            if name and name.startswith("_") and not name.startswith("__") and target != module:
                if not _is_shared_private(target):
                    bad.append(f"{path.relative_to(SRC)}:{line}: from {target} import {name}")
    assert not bad, "private names imported across modules:\n" + "\n".join(bad)


def _graph():
    graph = {m: set() for m in MODULES}
    for module, path in MODULES.items():
        for target, _, _ in _imports(module, path):
            while target and target not in MODULES:
                target = target.rpartition(".")[0]
            if target and target != module:
                graph[module].add(target)
    return graph


def test_no_import_cycles():
    graph, state, cycles = _graph(), {}, []

    def visit(m, stack):
        state[m] = "open"
        stack.append(m)
        for n in sorted(graph[m]):
            if state.get(n) == "open":
                cycles.append(" -> ".join([*stack[stack.index(n):], n]))
            elif n not in state:
                visit(n, stack)
        stack.pop()
        state[m] = "done"

    for m in sorted(graph):
        if m not in state:
            visit(m, [])
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


def _layer(module: str) -> int:
    """cli 4 > gpt 3 > nn 2 > chapters (and optim, checking, runtime) 1 > autodiff 0; the package root is outside."""
    for prefix, layer in (("fungpt.cli", 4), ("fungpt.gpt", 3), ("fungpt.nn", 2), ("fungpt.autodiff", 0)):
        if module == prefix or module.startswith(prefix + "."):
            return layer
    return 1


def test_nothing_imports_upward():
    bad = [f"{m} (layer {_layer(m)}) imports {t} (layer {_layer(t)})" for m, targets in _graph().items()
           for t in targets if m != "fungpt" and _layer(t) > _layer(m)]
    assert not bad, "imports against the layers cli > gpt > nn > chapters > autodiff:\n" + "\n".join(sorted(bad))


def test_autodiff_imports_nothing_else_of_fungpt():
    bad = [f"{m} imports {t}" for m, targets in _graph().items() if _layer(m) == 0 for t in targets if _layer(t)]
    assert not bad, "\n".join(sorted(bad))


def test_no_module_over_600_lines():
    long = {str(p.relative_to(SRC)): n for p in MODULES.values() if (n := len(p.read_text().splitlines())) > 600}
    assert not long, f"modules over 600 lines (split by topic): {long}"
