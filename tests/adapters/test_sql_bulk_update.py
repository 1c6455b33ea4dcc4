"""Bulk versioned updates of the SQL store: driver executemany (SQLite, MariaDB) and
COPY into a temporary table + one ``UPDATE … FROM`` (PostgreSQL), with the
optimistic version check over the whole batch."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from datetime import UTC, date
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


@pytest.mark.postgres
def test_copy_text_round_trip(postgres_url: str) -> None:
    """COPY text (escapes, NULL, booleans, JSON, aware datetimes) reads back equal."""
    from datetime import datetime, timedelta, timezone

    from studentstatus.domain.enums import ChangeKind, Sex
    from studentstatus.domain.model import Child, Guardian, StatusChange

    store = SqlStore(
        postgres_url, prefix=f"cp{secrets.token_hex(3)}_", create=True, copy_threshold=2
    )
    odd = "王\t小\\明\n\r\"'|\\N"
    children = [
        Child(
            f"c{i}",
            odd + str(i),
            Sex.F,
            date(2021, 3, i + 1),
            hukou_rural=bool(i % 2),
            left_behind=True,
            guardians=(Guardian(odd, "mother\t", "+8613800000000"),) if i else (),
        )
        for i in range(5)
    ]
    cst = timezone(timedelta(hours=8))
    events = [
        StatusChange(
            "r00000",
            i + 1,
            ChangeKind.PROMOTE,
            State.ACTIVE,
            State.ACTIVE,
            date(2026, 9, 1),
            datetime(2026, 9, 1, 8, 0, 0, 123456 + i, tzinfo=cst),
            "county:110105",
            reason=odd,
            evidence=("a\\b", "c\td"),
            before={"grade": "JUNIOR", "x": odd},
            after={"grade": None},
        )
        for i in range(3)
    ]
    # The same clock reading again (bulk writes convert one reading once), then another one.
    events += [attrs.evolve(events[0], seq=4), attrs.evolve(events[1], seq=5)]
    try:
        with store.unit_of_work() as uow:
            uow.children.add_many(children)
            uow.records.add_many(_records()[:4])
            uow.changes.append_many(events)
            uow.commit()
        with store.unit_of_work() as uow:
            assert [uow.children.get(c.id) for c in children] == children
            assert uow.changes.for_record("r00000") == events
            assert uow.records.get("r00001") == _records()[1]
    finally:
        store.drop_schema()
        store.close()


def test_update_fields_writes_only_those_fields(store: SqlStore) -> None:
    records = _records()
    with store.unit_of_work() as uow:
        uow.records.add_many(records)
        uow.commit()
    # grade is written; kindergarten_code is changed too but not named, so it stays.
    changed = [attrs.evolve(r, grade=Grade.MIDDLE, kindergarten_code="2222000002") for r in records]
    with store.unit_of_work() as uow:
        with pytest.raises(ConflictError):
            uow.records.update_fields(
                [*changed[:-1], attrs.evolve(changed[-1], version=9)], ["grade"]
            )
        with pytest.raises(ValueError, match="not updatable"):
            uow.records.update_fields(changed, ["grade", "version"])
        assert uow.records.update_fields(changed, ["grade"]) == N
        uow.commit()
    with store.unit_of_work() as uow:
        stored = list(uow.records.iter())
    assert {(r.grade, r.kindergarten_code, r.version) for r in stored} == {
        (Grade.MIDDLE, "1111000001", 3)
    }


def test_driver_bulk_insert_writes_what_core_writes(store: SqlStore) -> None:
    """Dates and UTC datetimes: the bulk driver path (several rows, with the processors'
    shortcuts: ISO dates on SQLite, one conversion per clock reading) stores exactly the
    text/values a Core INSERT of one row stores."""
    from datetime import datetime, timedelta, timezone

    from studentstatus.domain.enums import ChangeKind
    from studentstatus.domain.model import StatusChange

    cst = timezone(timedelta(hours=8))
    stamp = datetime(2026, 9, 1, 8, 0, 0, 123456, tzinfo=cst)

    def event(seq: int, at: datetime, day: date) -> StatusChange:
        return StatusChange("r00000", seq, ChangeKind.PROMOTE, State.ACTIVE, State.ACTIVE,
                            day, at, "county:110105", after={"grade": "MIDDLE"})  # fmt: skip

    days = [date(1, 1, 1), date(2026, 9, 1), date(999, 12, 31)]
    times = [stamp, stamp, datetime(2026, 9, 1, 0, 0, tzinfo=UTC), stamp.replace(microsecond=0)]
    bulk = [event(i + 1, t, days[i % 3]) for i, t in enumerate(times)]
    single = [event(100 + i, t, days[i % 3]) for i, t in enumerate(times)]
    with store.unit_of_work() as uow:
        uow.changes.append_many(bulk)  # several rows: the driver path
        for e in single:
            uow.changes.append_many([e])  # one row: a Core INSERT
        uow.commit()
    table = store.tables.by_port["change_log"]
    with store.engine.connect() as conn:
        rows = conn.exec_driver_sql(
            f"SELECT seq, effective_date, recorded_at FROM {table.fullname} ORDER BY seq"
        ).all()
    by_seq = {r[0]: tuple(r[1:]) for r in rows}
    assert [by_seq[i + 1] for i in range(len(times))] == [
        by_seq[100 + i] for i in range(len(times))
    ]
    with store.unit_of_work() as uow:
        assert uow.changes.for_record("r00000")[: len(bulk)] == bulk
