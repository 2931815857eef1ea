"""The roadmap map (docs/roadmap/*.md) covers every bullet of ../shared/roadmap.txt, and each row
names functions, tests and experiments that exist. Rows not done yet say "planned"."""
import importlib
import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
MAPS = sorted((ROOT / "docs" / "roadmap").glob("*.md"))


def _rows(path):
    rows = []
    for line in path.read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and len(cells) == 4 and cells[0] not in ("topic", "---"):
            rows.append(cells)
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
