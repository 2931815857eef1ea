"""README.md and docs/ speak to users: every link and repository path they cite exists inside the repository,
and no note is addressed to the team. Oracle: the files on disk (pathlib), after resolving each path."""
import pathlib
import re
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")  # [text](target) and ![alt](target)
# A path a reader would look for in the repository: it starts with one of its top-level folders (or ../),
# inside backticks or as a bare word. Folders the user's own runs create are not the repository's.
REPO_PATH = re.compile(r"(?<![\w/.-])((?:\.\./)+[\w.-][\w./-]*"
                       r"|(?:docs|experiments|src|tests|\.ci)/[\w./{},*-]*[\w/*}])")
GENERATED = ("experiments/out", "runs/")


def _targets(page: pathlib.Path):
    text = page.read_text(encoding="utf-8")
    for m in LINK.finditer(text):
        target = m.group(1).split("#", 1)[0]
        if target and not re.match(r"[a-z][a-z0-9+.-]*:", target):  # not http:, https:, mailto:
            yield text.count("\n", 0, m.start()) + 1, target, page.parent / target
    for m in REPO_PATH.finditer(text):
        path = m.group(1)
        if not path.startswith(GENERATED):
            base = page.parent if path.startswith("..") else ROOT
            yield text.count("\n", 0, m.start()) + 1, path, base / path


def _exists(path: pathlib.Path) -> bool:
    # A shell pattern (`experiments/ch0{3,4}_*.py`) exists when one of its expansions matches a file.
    if m := re.search(r"\{([^{}]*)\}", str(path)):
        return any(_exists(pathlib.Path(str(path)[:m.start()] + alt + str(path)[m.end():]))
                   for alt in m.group(1).split(","))
    return any(path.parent.glob(path.name)) if "*" in path.name else path.exists()


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_links_and_paths_resolve_inside_the_repository(page):
    bad = []
    for line, shown, path in dict.fromkeys(_targets(page)):  # a link's target is also a path: once each
        resolved = path.resolve()
        if not resolved.is_relative_to(ROOT):
            bad.append(f"line {line}: {shown} points outside the repository")
        elif not _exists(resolved):
            bad.append(f"line {line}: {shown} does not exist")
    assert not bad, f"{page.relative_to(ROOT)}:\n" + "\n".join(bad)


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_notes_to_the_team(page):
    text = page.read_text(encoding="utf-8")
    for phrase in (r"README material", r"\bthe lead\b", r"for the lead", r"other engineers", r"\.\./shared"):
        m = re.search(phrase, text, re.I)
        assert not m, f"{page.relative_to(ROOT)} line {text.count(chr(10), 0, m.start()) + 1}: {m.group(0)!r}"


def test_the_checker_catches_a_broken_and_an_outside_path(tmp_path, monkeypatch):
    page = tmp_path / "docs" / "x.md"
    page.parent.mkdir()
    page.write_text("See [the data](../../shared/data.txt), `experiments/no_such.py`, `docs/{x,y}.md` "
                    "and [ok](x.md).\n")
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    found = {shown for _, shown, _ in _targets(page)}
    assert found == {"../../shared/data.txt", "experiments/no_such.py", "docs/{x,y}.md", "x.md"}
    with pytest.raises(AssertionError) as e:
        test_links_and_paths_resolve_inside_the_repository(page)
    reported = [line.strip() for line in str(e.value).split("\nassert")[0].splitlines()[1:]]
    assert reported == ["line 1: ../../shared/data.txt points outside the repository",
                        "line 1: experiments/no_such.py does not exist"]  # docs/{x,y}.md and x.md resolve
