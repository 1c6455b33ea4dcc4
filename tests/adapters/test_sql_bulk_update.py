"""Bulk versioned updates of the SQL store: driver executemany (SQLite, MariaDB) and
COPY into a temporary table + one ``UPDATE … FROM`` (PostgreSQL), with the
optimistic version check over the whole batch."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import attrs
import pytest

from studentstatus.adapters.sql import SqlStore
from studentstatus.domain.enums import Grade, State
from studentstatus.domain.model import StatusRecord
from studentstatus.errors import ConflictError, NotFoundError

N = 250  # above the PostgreSQL temporary-table threshold (100)


@pytest.fixture(
    params=[
        "sqlite",
        pytest.param("postgres_url", marks=pytest.mark.postgres),
        pytest.param("mysql_url", marks=pytest.mark.mysql),
    ]
)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SqlStore]:
    if request.param == "sqlite":
        s = SqlStore(f"sqlite:///{tmp_path / 'bulk.db'}", create=True)
    else:
        url = request.getfixturevalue(request.param)
        s = SqlStore(url, prefix=f"bu{secrets.token_hex(3)}_", create=True)
    try:
        yield s
    finally:
        if request.param != "sqlite":
            s.drop_schema()
        s.close()


def _records() -> list[StatusRecord]:
    return [
        StatusRecord(
            f"r{i:05d}",
            f"c{i:05d}",
            "1111000001",
            "110105",
            State.ACTIVE,
            Grade.JUNIOR,
            date(2025, 9, 1),
            temp_number=f"T{i:08d}",
            repeated_grades=(Grade.NURSERY,) if i % 7 == 0 else (),
            version=2,
        )
        for i in range(N)
    ]


def _state(store: SqlStore) -> dict[str, tuple[Grade | None, int, tuple[Grade, ...]]]:
    with store.unit_of_work() as uow:
        return {r.id: (r.grade, r.version, r.repeated_grades) for r in uow.records.iter()}


def test_bulk_update_all_or_nothing_and_versions(store: SqlStore) -> None:
    records = _records()
    with store.unit_of_work() as uow:
        uow.records.add_many(records)
        uow.commit()
    before = _state(store)
    promoted = [
        attrs.evolve(r, grade=Grade.MIDDLE, last_promoted_year=2026, repeated_grades=())
        for r in records
    ]
    stale = list(promoted)
    stale[N // 2] = attrs.evolve(stale[N // 2], version=1)  # read before someone else's update
    with store.unit_of_work() as uow:
        with pytest.raises(ConflictError):
            uow.records.update_many(stale)
        # the failed call left nothing behind and the unit stays usable
        assert uow.records.get("r00000").grade is Grade.JUNIOR
        with pytest.raises(NotFoundError):
            uow.records.update_many([*promoted[:150], attrs.evolve(promoted[200], id="nope")])
        out = uow.records.update_many(promoted)
        uow.commit()
    assert [r.version for r in out] == [3] * N
    after = _state(store)
    assert set(after) == set(before)
    assert all(v == (Grade.MIDDLE, 3, ()) for v in after.values())
    with store.unit_of_work() as uow:
        r = uow.records.get("r00007")
        assert (r.last_promoted_year, r.temp_number) == (2026, "T00000007")
        assert uow.records.find_by_number("T00000123") is not None
