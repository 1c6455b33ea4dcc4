"""The repository stands alone: no file refers to design or domain notes kept outside it.

The domain rules and their sources live in ``docs/reference/domain.md``, the layers in
``docs/concepts/architecture.md``; code, tests, examples, benchmarks and docs point there,
never to a file that is not in the repository.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCANNED_DIRS = ("src", "docs", "tests", "examples", "bench")
SCANNED_FILES = ("README.md",)
SUFFIXES = {".py", ".md", ".txt", ".toml", ".cfg", ".ini", ".yml", ".yaml", ".json", ".html"}
SUFFIXES |= {".sql", ".csv", ".rst", ".j2", ".jinja", ".sh"}
# Written in pieces so that this file does not match itself.
OUTSIDE = re.compile("|".join((r"FACTS" + r"\.md", r"ARCHITECTURE" + r"\.md", r"\.\./" + "shared")))
SELF = Path(__file__).resolve()


def scanned_files() -> list[Path]:
    """Every text file the rule covers (this test file excluded)."""
    files = [ROOT / name for name in SCANNED_FILES if (ROOT / name).is_file()]
    for folder in SCANNED_DIRS:
        base = ROOT / folder
        if base.is_dir():
            files.extend(
                p
                for p in sorted(base.rglob("*"))
                if p.is_file()
                and p.suffix in SUFFIXES
                and "__pycache__" not in p.parts
                and p.resolve() != SELF
            )
    return files


def offending_lines(path: Path) -> list[str]:
    """``path:line: text`` for every line of ``path`` that names an outside file."""
    text = path.read_text(encoding="utf-8", errors="replace")
    return [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for number, line in enumerate(text.splitlines(), 1)
        if OUTSIDE.search(line)
    ]


def test_the_scan_covers_the_repository() -> None:
    """The scan reads the README, sources, tests and docs (an empty scan would pass anything)."""
    names = {p.relative_to(ROOT).as_posix() for p in scanned_files()}
    assert "README.md" in names
    assert "src/studentstatus/ports.py" in names
    assert "docs/reference/domain.md" in names
    assert "tests/conftest.py" in names
    assert f"tests/{SELF.name}" not in names


@pytest.mark.parametrize(
    "line",
    [
        "see " + "FACTS" + ".md §1.2",
        "(" + "ARCHITECTURE" + '.md "Status machine")',
        "sources in `" + "../" + "shared/domain/notes.txt`",
    ],
)
def test_the_pattern_catches_each_kind_of_reference(line: str) -> None:
    """Each kind of outside reference is found; an in-repository reference is not."""
    assert OUTSIDE.search(line)
    assert not OUTSIDE.search(line.replace("../", "docs/").replace(".md", "-notes"))


def test_in_repository_references_pass() -> None:
    """Links to the project's own docs are what the rule asks for."""
    assert not OUTSIDE.search("see docs/reference/domain.md#numbers and ../concepts/numbers.md")


def test_no_file_refers_to_notes_outside_the_repository() -> None:
    """No source, test, example, benchmark or doc names an outside note."""
    found = [hit for path in scanned_files() for hit in offending_lines(path)]
    assert not found, "references to files outside the repository:\n" + "\n".join(found)
