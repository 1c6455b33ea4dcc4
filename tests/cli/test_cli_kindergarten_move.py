"""CLI: kindergarten move / cancel-move, and refusals that look like absence."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from cli import _changes_cli  # type: ignore[import-not-found]
from services._changes_world import KG_A, runtime, seed  # type: ignore[import-not-found]
from studentstatus.adapters.sql import SqlStore
from studentstatus.domain.enums import Grade

run = _changes_cli.run


@pytest.fixture
def db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    store = SqlStore(url, create=True)
    seed(runtime(store), [(KG_A, Grade.JUNIOR), (KG_A, Grade.SENIOR)])
    store.close()
    monkeypatch.setenv("STUDENTSTATUS_STORE", url)
    monkeypatch.setenv("STUDENTSTATUS_NOW", "2025-09-02T09:00:00+00:00")
    return url


def test_move_by_both_counties(db: str) -> None:
    code, out = run(
        "kindergarten", "move", KG_A.school_code, "--to", "110108", "--as", "county:110108"
    )
    assert code == 1
    assert "not_found" in out
    code, out = run(
        "kindergarten", "move", KG_A.school_code, "--to", "110108", "--as", "county:110105"
    )
    assert code == 0, out
    assert out.startswith("proposed:"), out
    code, out = run(
        "kindergarten", "move", KG_A.school_code, "--to", "110108", "--as", "county:110105"
    )
    assert code == 1
    assert "move_awaits_other_side" in out
    code, out = run(
        "kindergarten",
        "move",
        KG_A.school_code,
        "--to",
        "110108",
        "--as",
        "county:110108",
        "--json",
    )
    assert code == 0, out
    assert json.loads(out) == {
        "school_code": KG_A.school_code,
        "from_region": "110105",
        "to_region": "110108",
        "state": "moved",
        "records": 2,
        "problems": 0,
    }
    code, out = run("show", "r0000", "--as", "county:110105")
    assert code == 1
    assert "not_found" in out
    code, out = run("show", "r0000", "--as", "county:110108", "--json")
    assert code == 0
    assert json.loads(out)["region_code"] == "110108"


def test_cancel_move(db: str) -> None:
    run("kindergarten", "move", KG_A.school_code, "--to", "110108", "--as", "county:110105")
    code, out = run("kindergarten", "cancel-move", KG_A.school_code, "--as", "county:110108")
    assert code == 0, out
    assert out.startswith("cancelled:"), out
    code, out = run("kindergarten", "cancel-move", KG_A.school_code, "--as", "county:110105")
    assert code == 1
    assert "move_not_pending" in out
