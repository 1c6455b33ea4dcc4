"""The docs site renders: the API reference lists every public module and no Sphinx role is
left unrendered anywhere in the built HTML.

Builds the site once with ``mkdocs build --strict`` (about 7 seconds on one CPU; the API page
is large) into a temporary directory.  Needs the ``docs`` dependency group
(``pip install --group docs``); without it the tests skip, except in CI (``CI=true``), which
installs the group and must run them.
"""

from __future__ import annotations

import doctest
import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src" / "studentstatus"
TOOLS = ROOT / "tools"
IN_CI = os.environ.get("CI") == "true"

# What a Sphinx role looks like once Markdown has rendered it, or left raw.
UNRENDERED = re.compile(
    r":(?:py:)?(?:func|class|data|meth|attr|mod|exc|obj|const|type|ref):(?:<code>|`)"
)


def _public_modules() -> list[str]:
    """Every importable module of the package a user may call (no ``_private``, CLI,
    migrations or ``__main__``)."""
    out = []
    for path in sorted(SRC.rglob("*.py")):
        parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        if any(p.startswith("_") for p in parts) or parts[1:2] == ["cli"]:
            continue
        if "migrations" in parts:
            continue
        out.append(".".join(parts))
    return out


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    for module in ("mkdocs", "mkdocstrings", "mkdocstrings_handlers.python", "material"):
        if importlib.util.find_spec(module) is None:
            reason = f"{module} is not installed: pip install --group docs"
            if IN_CI:
                pytest.fail(f"{reason} (CI must build the docs)")
            pytest.skip(reason)
    out = tmp_path_factory.mktemp("site")
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(out)],
        cwd=ROOT,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    return out


def test_no_sphinx_role_is_left_unrendered(site: Path) -> None:
    found = []
    for page in sorted(site.rglob("*.html")):
        for match in UNRENDERED.finditer(page.read_text(encoding="utf-8")):
            found.append(f"{page.relative_to(site)}: {match.group(0)}")
    assert found == [], f"{len(found)} unrendered roles, e.g. {found[:5]}"


def test_api_reference_shows_every_public_module(site: Path) -> None:
    page = (site / "reference" / "api" / "index.html").read_text(encoding="utf-8")
    missing = [m for m in _public_modules() if f'id="{m}"' not in page]
    assert missing == [], f"add to docs/reference/api.md: {missing}"


def test_api_reference_shows_what_the_tutorial_calls(site: Path) -> None:
    """Each name the tutorial imports has its entry (signature and docstring) on the page."""
    page = (site / "reference" / "api" / "index.html").read_text(encoding="utf-8")
    tutorial = (ROOT / "docs" / "tutorial.md").read_text(encoding="utf-8")
    names = [
        f"{module}.{name.strip()}"
        for module, names in re.findall(r"from (studentstatus[\w.]*) import ([\w, ]+)", tutorial)
        for name in names.split(",")
    ]
    assert len(names) >= 10
    missing = [n for n in names if f'id="{n}"' not in page]
    assert missing == []
    # a service: its signature and the first words of its docstring
    entry = page.split('id="studentstatus.services.intake.register_child"', 1)[1][:6000]
    assert "register_child" in entry
    assert re.search(r"operator", entry)


def test_roles_become_links_or_code(site: Path) -> None:
    page = (site / "reference" / "api" / "index.html").read_text(encoding="utf-8")
    # :class:`Report` in services.reports links to the class on the same page
    assert 'href="#studentstatus.services.reports.Report"' in page
    assert "<autoref" not in page  # every cross-reference was resolved or made plain code


def test_the_griffe_extensions_examples() -> None:
    sys.path.insert(0, str(TOOLS))
    try:
        for name in ("griffe_sphinx_roles", "griffe_doctest_fences"):
            spec = importlib.util.spec_from_file_location(name, TOOLS / f"{name}.py")
            assert spec is not None
            assert spec.loader is not None
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            result = doctest.testmod(module)
            assert result.attempted >= 3, name
            assert result.failed == 0, name
    finally:
        sys.path.remove(str(TOOLS))


def test_role_conversion_keeps_code_and_resolves_relative_names() -> None:
    sys.path.insert(0, str(TOOLS))
    try:
        from griffe_sphinx_roles import convert_roles
    finally:
        sys.path.remove(str(TOOLS))
    known = {"studentstatus.errors.Violation": "studentstatus.errors.Violation"}.get
    text = (
        "Raises :exc:`~studentstatus.errors.Violation` (``:exc:`kept```),\n"
        "see :func:`helper <studentstatus.x.y>` and :mod:`enum`.\n"
        "```\n:class:`fenced`\n```"
    )
    out = convert_roles(text, known)
    assert out.splitlines()[0] == (
        'Raises <autoref identifier="studentstatus.errors.Violation" optional>'
        "<code>Violation</code></autoref> (``:exc:`kept```),"
    )
    assert "optional><code>helper</code></autoref> and <code>enum</code>." in out
    assert out.endswith("```\n:class:`fenced`\n```")
