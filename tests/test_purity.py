"""The pure core reads no clock, draws no random numbers and does no I/O.

import-linter (``lint-imports`` in CI) forbids the imports; this test forbids
the calls that an import contract cannot see (``date.today()``, ``open()``…).
The one sanctioned read is :mod:`studentstatus.regions` loading python-stdnum's
installed ``cn/loc.dat`` once, lazily, through :mod:`importlib.resources`.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "studentstatus"
CORE = [
    *sorted((SRC / "ids").glob("*.py")),
    *sorted((SRC / "domain").glob("*.py")),
    SRC / "regions.py",
    SRC / "phones.py",
    SRC / "errors.py",
]
FORBIDDEN_ATTR_CALLS = {
    ("date", "today"),
    ("datetime", "now"),
    ("datetime", "utcnow"),
    ("datetime", "today"),
    ("time", "time"),
    ("time", "monotonic"),
    ("os", "urandom"),
    ("os", "getenv"),
    ("uuid", "uuid4"),
    ("secrets", "token_hex"),
}
FORBIDDEN_NAMES = {"open", "input", "print"}
FORBIDDEN_IMPORTS = {"random", "secrets", "socket", "urllib", "http", "sqlite3", "pathlib", "io"}


def _violations(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
                if (func.value.id, func.attr) in FORBIDDEN_ATTR_CALLS:
                    found.append(f"{path.name}:{node.lineno} {func.value.id}.{func.attr}()")
            elif isinstance(func, ast.Name) and func.id in FORBIDDEN_NAMES:
                found.append(f"{path.name}:{node.lineno} {func.id}()")
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] in FORBIDDEN_IMPORTS:
                    found.append(f"{path.name}:{node.lineno} import {alias.name}")
        elif (
            isinstance(node, ast.ImportFrom)
            and node.module
            and node.level == 0
            and node.module.split(".")[0] in FORBIDDEN_IMPORTS
            and not _type_checking_only(tree, node)
        ):
            found.append(f"{path.name}:{node.lineno} from {node.module} import …")
    return found


def _type_checking_only(tree: ast.Module, target: ast.AST) -> bool:
    """Whether ``target`` sits under ``if TYPE_CHECKING:`` (types only, never executed)."""
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.If)
            and isinstance(node.test, ast.Name)
            and node.test.id == "TYPE_CHECKING"
            and any(child is target for stmt in node.body for child in ast.walk(stmt))
        ):
            return True
    return False


@pytest.mark.parametrize("path", CORE, ids=lambda p: str(p.relative_to(SRC)))
def test_core_module_is_pure(path: Path) -> None:
    """No clock, randomness, environment or I/O calls in the core."""
    assert _violations(path) == []


def test_the_checker_catches_what_it_forbids(tmp_path: Path) -> None:
    """A module that reads the clock and a file is reported (the test can fail)."""
    bad = tmp_path / "bad.py"
    bad.write_text(
        "import random\nfrom datetime import date\nx = date.today()\ny = open('f')\n",
        encoding="utf-8",
    )
    assert len(_violations(bad)) == 3
