"""Developer sessions: ``nox -s tests lint typing imports docs bench``.

Dependency groups in ``pyproject.toml`` are the single source of what each
session installs.
"""

from __future__ import annotations

import nox

nox.options.sessions = ["tests", "lint", "typing", "imports"]
nox.options.default_venv_backend = "venv"

PYPROJECT = nox.project.load_toml("pyproject.toml")
PYTHONS = ["3.11", "3.12", "3.13"]


@nox.session(python=PYTHONS[0])
def tests(session: nox.Session) -> None:
    """Run the test suite (SQL servers from STUDENTSTATUS_TEST_*_URL when set)."""
    session.install("-e", ".[postgresql,mysql,testing]")
    session.install(*nox.project.dependency_groups(PYPROJECT, "test"))
    session.run("pytest", *session.posargs)


@nox.session(python=PYTHONS[0])
def lint(session: nox.Session) -> None:
    """ruff check and ruff format --check."""
    session.install(*nox.project.dependency_groups(PYPROJECT, "lint"))
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session(python=PYTHONS[0])
def typing(session: nox.Session) -> None:
    """mypy --strict over the package, and over a host that uses every store."""
    session.install("-e", ".[postgresql,mysql,testing]")
    session.install(*nox.project.dependency_groups(PYPROJECT, "typing"))
    session.run("mypy", "--strict", "src/studentstatus")
    session.run("mypy", "--strict", "tests/typing/host.py", env={"MYPYPATH": "examples"})


@nox.session(python=PYTHONS[0])
def imports(session: nox.Session) -> None:
    """import-linter: the pure core stays pure."""
    session.install("-e", ".")
    session.install(*nox.project.dependency_groups(PYPROJECT, "lint"))
    session.run("lint-imports")


@nox.session(python=PYTHONS[0])
def docs(session: nox.Session) -> None:
    """Build the docs site strictly (warnings are errors)."""
    session.install("-e", ".[testing]")
    session.install(*nox.project.dependency_groups(PYPROJECT, "docs"))
    session.run("mkdocs", "build", "--strict")


@nox.session(python=PYTHONS[0])
def bench(session: nox.Session) -> None:
    """Run the benchmarks (pass e.g. ``-- --n 100000`` to shrink them)."""
    session.install("-e", ".[postgresql,mysql,testing]")
    for script in ("ids",):
        session.run("python", f"bench/{script}.py", *session.posargs)
