"""The roadmap map (docs/roadmap/*.md) covers every bullet of ../shared/roadmap.txt, and each row
names functions, tests and experiments that exist. Rows not done yet say "planned"."""
import importlib
import os
import pathlib
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import fungpt

ROOT = pathlib.Path(__file__).resolve().parents[1]
MAPS = sorted((ROOT / "docs" / "roadmap").glob("*.md"))


def _rows(path):
    rows = []
    for line in path.read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and len(cells) in (4, 6) and cells[0] not in ("topic", "---"):
            rows.append(cells[:4])
    return rows


def _roadmap_bullets():
    """Every topic bullet of the roadmap, by chapter number (resources excluded)."""
    src = (ROOT / "docs" / "roadmap.txt").read_text()
    chapters, cur, skip = {}, None, False
    for line in src.splitlines():
        s = line.strip()
        if m := re.match(r"^(\d+)\. (.+)$", s):
            cur, skip = int(m.group(1)), False
            chapters[cur] = []
        elif "Resources" in s:
            skip = True
        elif s.startswith("Final Phase"):
            cur, skip = 13, False
            chapters[13] = []
        elif s.startswith("•") and cur is not None and not skip:
            chapters[cur].append(s.lstrip("•").strip())
    return chapters


def test_every_bullet_has_a_row():
    bullets = _roadmap_bullets()
    assert len(bullets) == 13, sorted(bullets)
    for num, topics in bullets.items():
        [path] = [p for p in MAPS if p.name.startswith(f"{num:02d}-")]
        have = [r[0] for r in _rows(path)]
        assert have == topics, f"{path.name}: rows {have} != roadmap bullets {topics}"


def _resolve(dotted):
    parts = dotted.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        for attr in parts[i:]:
            obj = getattr(obj, attr)
        return obj
    raise ImportError(dotted)


@pytest.mark.parametrize("path", MAPS, ids=lambda p: p.name)
def test_rows_name_things_that_exist(path):
    for topic, funcs, tests, experiment in _rows(path):
        if funcs == "planned":
            continue
        names = re.findall(r"`([\w.]+)`", funcs)
        assert names, f"{path.name}: row {topic!r} names no function"
        for name in names:
            assert callable(_resolve(name)) or _resolve(name) is not None, f"{path.name}: {name} missing"
        test_refs = re.findall(r"`(tests/[\w/]+\.py)(?:::(\w+))?`", tests)
        assert test_refs, f"{path.name}: row {topic!r} names no test"
        for file, func in test_refs:
            text = (ROOT / file).read_text()
            assert not func or re.search(rf"def {func}\b", text), f"{path.name}: {file}::{func} missing"
        exps = re.findall(r"`(experiments/[\w/]+\.py)`", experiment)
        assert exps, f"{path.name}: row {topic!r} names no experiment"
        for exp in exps:
            assert (ROOT / exp).exists(), f"{path.name}: {exp} missing"


# --- figure and transforms columns ----------------------------------------------------------------------------
# A converted row has six cells: topic | functions | tests | experiment | figure | transforms.
#   figure:     `NAME.png` (one or more): files that the row's experiment writes into its --out folder in --quick mode.
#   transforms: a comma list of jit, vmap, grad that hold for every function of the row, or `eager: why`;
#               optionally followed by `; except `dotted.name`, ...: why` for functions the transforms do not apply to.
TRANSFORMS = {"jit", "vmap", "grad"}


def _rows6(path):
    rows = []
    for line in path.read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and len(cells) == 6 and cells[0] not in ("topic", "---"):
            rows.append(cells)
    return rows


def parse_transforms(cell: str) -> tuple[set[str], set[str]]:
    """`jit, vmap; except `a.b`: why` -> ({'jit', 'vmap'}, {'a.b'}); `eager: why` -> (set(), set())."""
    head, _, rest = cell.partition(";")
    head = head.strip()
    if head.startswith("eager"):
        assert ":" in head and head.split(":", 1)[1].strip(), f"'eager' needs a reason: {cell!r}"
        return set(), set()
    kinds = {t.strip() for t in head.split(",")}
    assert kinds <= TRANSFORMS and kinds, f"unknown transforms in {cell!r}"
    excepted = set()
    if rest.strip():
        assert rest.strip().startswith("except") and ":" in rest, f"expected '; except `name`: why' in {cell!r}"
        names, _, why = rest.strip()[len("except"):].partition(":")
        assert why.strip(), f"an exception needs a reason: {cell!r}"
        excepted = set(re.findall(r"`([\w.]+)`", names))
    return kinds, excepted


def test_every_row_has_figure_and_transforms_columns():
    for path in MAPS:
        for line in path.read_text().splitlines():
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if line.startswith("|") and cells[0] not in ("topic",) and not set(cells[0]) <= {"-"}:
                assert len(cells) == 6, f"{path.name}: row {cells[0]!r} lacks the figure/transforms columns"
                assert re.findall(r"`([\w.-]+\.png)`", cells[4]), f"{path.name}: row {cells[0]!r} names no figure"
                parse_transforms(cells[5])


def _samples():
    out = {}
    for mod in sorted((ROOT / "tests" / "roadmap_samples").glob("ch*.py")):
        out.update(importlib.import_module(f"tests.roadmap_samples.{mod.stem}").SAMPLES)
    return out


def _transform_cases():
    cases = []
    for path in MAPS:
        for _topic, funcs, _, _, _, transforms in _rows6(path):
            kinds, excepted = parse_transforms(transforms)
            for name in re.findall(r"`([\w.]+)`", funcs):
                if name not in excepted and kinds:
                    cases.append(pytest.param(name, tuple(sorted(kinds)), id=name))
    return cases


def _close(a, b, sample, what):
    la, ta = jax.tree_util.tree_flatten(a)
    lb, tb = jax.tree_util.tree_flatten(b)
    assert ta == tb, f"{what}: tree {ta} != {tb}"
    for x, y in zip(la, lb, strict=True):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=sample.rtol, atol=sample.atol, err_msg=what)


def _split(sample, args):
    dyn = [i for i in range(len(args)) if i not in sample.static]

    def call(f, *dargs):
        full = list(args)
        for i, a in zip(dyn, dargs, strict=True):
            full[i] = a
        return f(*full, **sample.kwargs)

    return dyn, call


def _stack(a, b):
    return jax.tree_util.tree_map(lambda u, v: jnp.stack([jnp.asarray(u), jnp.asarray(v)]), a, b)


@pytest.mark.parametrize(("name", "kinds"), _transform_cases())
def test_named_functions_jit_vmap_grad(name, kinds):
    """Each claimed transform of a map row's function, on its sample: jit equals eager, vmap equals a loop of two,
    fungpt.grad equals jax.grad (of the sum of the real floating leaves).  Where the row claims jit, the jit and vmap
    checks share one compilation, and so do the two gradients (XLA compile time is most of this test's cost)."""
    samples = _samples()
    assert name in samples, f"{name}: no sample input in tests/roadmap_samples/ (needed for its {kinds} checks)"
    sample, f = samples[name], _resolve(name)
    k1, k2 = jax.random.split(jax.random.key(0))
    args = sample.make(k1)
    dyn, call = _split(sample, args)
    dargs = [args[i] for i in dyn]
    eager = call(f, *dargs)
    jitted = "jit" in kinds
    if "vmap" in kinds:
        other = [sample.make(k2)[i] for i in dyn]

        def both(d, stacked):
            return call(f, *d), jax.vmap(lambda *e: call(f, *e))(*stacked)

        one, batched = (jax.jit(both) if jitted else both)(dargs, _stack(dargs, other))
        if jitted:
            _close(one, eager, sample, f"{name}: jit vs eager")
        _close(batched, _stack(eager, call(f, *other)), sample, f"{name}: vmap vs a loop")
    elif jitted:
        _close(jax.jit(lambda *d: call(f, *d))(*dargs), eager, sample, f"{name}: jit vs eager")
    if "grad" in kinds:
        pos = dyn.index(sample.argnum)

        def scalar(x):
            d = list(dargs)
            d[pos] = x
            leaves = jax.tree_util.tree_leaves(call(f, *d))
            return sum(jnp.sum(jnp.real(v)) for v in leaves if jnp.issubdtype(jnp.asarray(v).dtype, jnp.inexact))

        def grads(x):
            return fungpt.grad(scalar)(x), jax.grad(scalar)(x)

        ours, ref = (jax.jit(grads) if jitted else grads)(dargs[pos])
        _close(ours, ref, sample, f"{name}: fungpt.grad vs jax.grad")


def _figure_cases():
    cases = {}
    for path in MAPS:
        for _topic, _, _, experiment, figure, _ in _rows6(path):
            exps = re.findall(r"`(experiments/[\w/]+\.py)`", experiment)
            for png in re.findall(r"`([\w.-]+\.png)`", figure):
                cases.setdefault(tuple(exps), set()).add(png)
    return [pytest.param(exps, sorted(pngs), id="+".join(pathlib.Path(e).stem for e in exps)) for exps, pngs in
            sorted(cases.items())]


@pytest.mark.slow
@pytest.mark.parametrize(("experiments", "figures"), _figure_cases())
def test_named_experiment_writes_named_figure(experiments, figures, tmp_path):
    import runpy

    for exp in experiments:
        main = runpy.run_path(str(ROOT / exp), run_name=pathlib.Path(exp).stem)["main"]
        main(["--quick", "--out", str(tmp_path)])
    missing = [png for png in figures if not (tmp_path / png).exists()]
    assert not missing, f"{experiments} in --quick mode wrote no {missing} (wrote {sorted(os.listdir(tmp_path))})"
