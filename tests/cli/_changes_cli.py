"""The change tests' world on a temporary SQLite file, for the CLI tests that use it
(``test_cli_changes``, ``test_cli_operator``): the ``db`` fixture and ``run``."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from services._changes_world import KG_A, KG_B, runtime, seed  # type: ignore[import-not-found]
from studentstatus.adapters.sql import SqlStore
from studentstatus.cli import main
from studentstatus.domain.enums import Grade


@pytest.fixture
def db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A seeded SQLite store, named by ``STUDENTSTATUS_STORE``; the clock at 2 September 2025."""
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    store = SqlStore(url, create=True)
    seed(
        runtime(store),
        [(KG_A, Grade.JUNIOR), (KG_A, Grade.SENIOR), (KG_A, Grade.MIDDLE), (KG_B, Grade.JUNIOR)],
    )
    store.close()
    monkeypatch.setenv("STUDENTSTATUS_STORE", url)
    monkeypatch.setenv("STUDENTSTATUS_NOW", "2025-09-02T09:00:00+00:00")
    return url


def run(*args: str) -> tuple[int, str]:
    """The CLI's exit code and output for ``args``."""
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output
