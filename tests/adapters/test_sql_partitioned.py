"""Province-partitioned schema on PostgreSQL: the conformance kit, the migration option, pruning.

The kit runs against a store opened with ``partition_by_province=True`` on
tables made by ``build_tables(partition_by_province=True)`` (35 partitions per
big table), pooled like ``test_sql.py`` does (DDL of 140 partitions is slow).
The option is refused on SQLite and MariaDB before anything is written.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, ClassVar

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from studentstatus import regions
from studentstatus.adapters.sql import SqlStore, build_tables, current, upgrade
from studentstatus.adapters.sql.migrate import downgrade, head_revision
from studentstatus.adapters.sql.partitioning import (
    PARTITIONED,
    is_partitioned,
    partition_names,
    partitions_in_plan,
    province_codes,
    province_key,
)
from studentstatus.domain.enums import (
    AttendanceStatus,
    ChangeKind,
    Grade,
    ProblemKind,
    ProblemStatus,
    State,
)
from studentstatus.domain.model import AttendanceEntry, ProblemRecord, StatusChange, StatusRecord
from studentstatus.errors import ConflictError, StorageError
from studentstatus.ports import Store
from studentstatus.testing.contract import StoreContract

NOW = datetime(2024, 9, 2, 8, 0, tzinfo=UTC)


def _rec(rid: str, region: str, **kw: Any) -> StatusRecord:
    base: dict[str, Any] = {
        "child_id": f"c-{rid}",
        "kindergarten_code": f"k{region}",
        "region_code": region,
        "state": State.ACTIVE,
        "grade": Grade.JUNIOR,
        "entry_date": date(2023, 9, 1),
    }
    base.update(kw)
    return StatusRecord(rid, **base)


def _change(rid: str, seq: int) -> StatusChange:
    return StatusChange(
        rid, seq, ChangeKind.REGISTER, None, State.PENDING, date(2023, 9, 1), NOW, "kg"
    )


# --------------------------------------------------------------------------- pure helpers


def test_province_codes_are_the_34_province_level_divisions() -> None:
    """31 mainland + 台湾 71 + 香港 81 + 澳门 82; the Taiwan permit code 83 is not one."""
    codes = province_codes()
    assert len(codes) == 34
    assert {"11", "44", "65", "71", "81", "82"} <= set(codes)
    assert "83" not in codes
    assert all(regions.lookup(c + "0000") is not None for c in codes)
    assert partition_names("r")[-1] == "r_pdefault"
    assert len(partition_names("r")) == 35


@given(
    code=st.one_of(
        st.sampled_from(regions.counties("")), st.text("0123456789", min_size=0, max_size=8)
    ),
    cut=st.integers(2, 6),
)
def test_prefix_filter_agrees_with_the_partition_key(code: str, cut: int) -> None:
    """Any code matching a prefix of ≥ 2 characters has province == prefix[:2] (pruning is safe)."""
    prefix = code[:cut]
    if len(prefix) >= 2 and code.startswith(prefix):
        assert province_key(code) == prefix[:2]
    assert len(province_key(code)) == 2


def test_build_tables_plain_is_unchanged() -> None:
    """Without the option no table has a province column (the existing schema stays)."""
    t = build_tables()
    assert all("province" not in table.c for table in t.by_port.values())
    pt = build_tables(partition_by_province=True)
    assert sorted(n for n, table in pt.by_port.items() if "province" in table.c) == sorted(
        PARTITIONED
    )


# --------------------------------------------------------------------------- refusals


def test_refused_on_sqlite(tmp_path: Path) -> None:
    """SqlStore and upgrade refuse the option on SQLite; nothing is created."""
    url = f"sqlite:///{tmp_path}/p.db"
    with pytest.raises(StorageError, match="needs PostgreSQL"):
        SqlStore(url, partition_by_province=True)
    with pytest.raises(StorageError, match="needs PostgreSQL"):
        upgrade(url, partition_by_province=True)
    assert current(url) is None


def test_refused_on_mariadb(mysql_url: str) -> None:
    """MariaDB/MySQL has its own partitioning rules; the option is refused there too."""
    prefix = f"q{uuid.uuid4().hex[:8]}_"
    with pytest.raises(StorageError, match="needs PostgreSQL"):
        upgrade(mysql_url, prefix=prefix, partition_by_province=True)
    assert current(mysql_url, prefix=prefix) is None


def test_cli_refuses_on_sqlite(tmp_path: Path) -> None:
    """``db upgrade --partition-by-province`` on SQLite: non-zero exit and the reason."""
    from studentstatus.cli import main

    url = f"sqlite:///{tmp_path}/c.db"
    res = CliRunner().invoke(main, ["db", "upgrade", "--store", url, "--partition-by-province"])
    assert res.exit_code != 0
    assert "PostgreSQL" in res.output


# --------------------------------------------------------------------------- the kit


class _Pool:
    """Partitioned table sets on the server, emptied and reused; dropped at module end."""

    def __init__(self) -> None:
        self.free: list[str] = []
        self.made: list[str] = []

    def borrow(self, url: str) -> SqlStore:
        if self.free:
            store = SqlStore(url, prefix=self.free.pop(), partition_by_province=True)
            with store.engine.begin() as conn:
                for table in store.tables.by_port.values():
                    conn.execute(table.delete())
            return store
        prefix = f"p{uuid.uuid4().hex[:8]}_"
        self.made.append(prefix)
        return SqlStore(url, prefix=prefix, partition_by_province=True, create=True)

    def give_back(self, store: SqlStore) -> None:
        store.close()
        self.free.append(store.tables.prefix)

    def drop_all(self, url: str) -> None:
        names = [t.name for p in self.made for t in build_tables(prefix=p).by_port.values()]
        if names:
            engine = sa.create_engine(url)
            with engine.begin() as conn:
                conn.exec_driver_sql(f"DROP TABLE IF EXISTS {', '.join(names)}")
            engine.dispose()
        self.made.clear()
        self.free.clear()


POOL = _Pool()


@pytest.fixture(scope="module", autouse=True)
def _drop_pool() -> Iterator[None]:
    yield
    import os

    url = os.environ.get("STUDENTSTATUS_TEST_POSTGRES_URL")
    if url:
        POOL.drop_all(url)


class TestPartitionedPostgresStore(StoreContract):
    """The whole conformance kit on the province-partitioned schema."""

    supports_concurrent_units = False  # row locks: see test_sql.py
    supports_persistence = True
    supports_sealing_audit = True
    property_examples = 5
    differential_examples = 3
    url: ClassVar[str] = ""

    @pytest.fixture(autouse=True)
    def _server(self, postgres_url: str) -> None:
        type(self).url = postgres_url

    def make_store(self) -> Store:
        """A partitioned store on pooled, emptied tables."""
        return POOL.borrow(self.url)

    def close_store(self, store: Store) -> None:
        """Give the tables back."""
        assert isinstance(store, SqlStore)
        POOL.give_back(store)

    def reopen_store(self, store: Store) -> Store:
        """Same tables, new engine."""
        assert isinstance(store, SqlStore)
        store.close()
        return SqlStore(self.url, prefix=store.tables.prefix, partition_by_province=True)


# --------------------------------------------------------------------------- own checks


@pytest.fixture
def pstore(postgres_url: str) -> Iterator[SqlStore]:
    """A partitioned store on pooled tables."""
    store = POOL.borrow(postgres_url)
    try:
        yield store
    finally:
        POOL.give_back(store)


def _partition_of(store: SqlStore, table: sa.Table, where: sa.ColumnElement[bool]) -> list[str]:
    col: sa.ColumnElement[str] = sa.literal_column("tableoid::regclass::text")
    q = sa.select(col).select_from(table).where(where)
    with store.engine.connect() as conn:
        return list(conn.execute(q).scalars())


def test_rows_land_in_their_province_and_move_on_transfer(pstore: SqlStore) -> None:
    """Records, change log, attendance, problems: partition by province; a transfer moves it."""
    t = pstore.tables
    with pstore.unit_of_work() as uow:
        uow.records.add(_rec("r1", "440306"))
        uow.records.add(_rec("r2", "9"))  # malformed region: DEFAULT partition
        uow.changes.append(_change("r1", 1))
        uow.changes.append(_change("ghost", 1))  # no such record: DEFAULT partition
        uow.attendance.add_many([AttendanceEntry("r1", date(2024, 9, 2), AttendanceStatus.PRESENT)])
        uow.problems.add(
            ProblemRecord(
                "p1",
                "r1",
                ProblemKind.INVALID_ID,
                "440306",
                "k440306",
                NOW,
                date(2024, 10, 1),
                ProblemStatus.OPEN,
            )
        )
        uow.commit()
    p = t.prefix
    assert _partition_of(pstore, t.records, t.records.c.id == "r1") == [f"{p}records_p44"]
    assert _partition_of(pstore, t.records, t.records.c.id == "r2") == [f"{p}records_pdefault"]
    assert _partition_of(pstore, t.change_log, t.change_log.c.record_id == "r1") == [
        f"{p}change_log_p44"
    ]
    assert _partition_of(pstore, t.change_log, t.change_log.c.record_id == "ghost") == [
        f"{p}change_log_pdefault"
    ]
    assert _partition_of(pstore, t.attendance, t.attendance.c.record_id == "r1") == [
        f"{p}attendance_p44"
    ]
    assert _partition_of(pstore, t.problems, t.problems.c.id == "p1") == [f"{p}problems_p44"]
    with pstore.unit_of_work() as uow:
        rec = uow.records.get("r1")
        moved = uow.records.update(
            StatusRecord(**{**_asdict(rec), "region_code": "110105", "kindergarten_code": "kb"})
        )
        uow.changes.append(_change("r1", 2))
        uow.commit()
    assert _partition_of(pstore, t.records, t.records.c.id == "r1") == [f"{p}records_p11"]
    assert sorted(_partition_of(pstore, t.change_log, t.change_log.c.record_id == "r1")) == [
        f"{p}change_log_p11",
        f"{p}change_log_p44",
    ]
    with pstore.unit_of_work() as uow:
        assert uow.records.get("r1") == moved
        assert uow.records.count(region_prefix="44") == 0
        assert uow.records.count(region_prefix="1101") == 1
        assert [c.seq for c in uow.changes.for_record("r1")] == [1, 2]


def _asdict(rec: StatusRecord) -> dict[str, Any]:
    import attrs

    return attrs.asdict(rec, recurse=False)


def test_numbers_stay_globally_unique_across_provinces(pstore: SqlStore) -> None:
    """UNIQUE(national_number, province) alone would allow a twin in another province:
    record_numbers (unpartitioned) refuses it."""
    with pstore.unit_of_work() as uow:
        uow.records.add(_rec("a", "440306", national_number="G440306201801010011"))
        uow.commit()
    with pstore.unit_of_work() as uow, pytest.raises(ConflictError):
        uow.records.add(_rec("b", "110105", national_number="G440306201801010011"))


def test_county_queries_read_one_partition(pstore: SqlStore) -> None:
    """EXPLAIN: a county (or city, province) filter prunes to the province's partition."""
    t = pstore.tables
    with pstore.unit_of_work() as uow:
        uow.records.add_many([_rec(f"r{i}", code) for i, code in enumerate(["440306", "110105"])])
        uow.commit()
        ctx_where = uow.records._where("440306", None, [State.ACTIVE])
    q = sa.select(sa.func.count()).select_from(t.records).where(*ctx_where)
    with pstore.engine.connect() as conn:
        assert partitions_in_plan(conn, q) == [f"{t.prefix}records_p44"]
        unpruned = sa.select(sa.func.count()).select_from(t.records)
        assert len(partitions_in_plan(conn, unpruned)) == 35
        probs = sa.select(t.problems.c.id).where(t.problems.c.province == "11")
        assert partitions_in_plan(conn, probs) == [f"{t.prefix}problems_p11"]


# --------------------------------------------------------------------------- migrations


def _diff(engine: sa.Engine, prefix: str) -> list[Any]:
    tables = build_tables(prefix=prefix, partition_by_province=True)
    partitions = {n for name in PARTITIONED for n in partition_names(f"{prefix}{name}")}

    def include_name(name: str | None, type_: str, parent: Any) -> bool:
        if type_ == "table":
            return bool(
                name
                and name.startswith(prefix)
                and name != f"{prefix}alembic_version"
                and name not in partitions
            )
        return True

    with engine.connect() as conn:
        ctx = MigrationContext.configure(
            conn, opts={"compare_type": True, "include_name": include_name}
        )
        return list(compare_metadata(ctx, tables.metadata))


def test_migration_option_equals_build_tables_and_keeps_rows(postgres_url: str) -> None:
    """Plain upgrade + data, then upgrade --partition-by-province: rows kept, schema =
    build_tables(partition_by_province=True), idempotent, downgrade removes everything."""
    prefix = f"m{uuid.uuid4().hex[:8]}_"
    engine = sa.create_engine(postgres_url)
    upgrade(engine, prefix=prefix)
    try:
        plain = SqlStore(engine, prefix=prefix)
        with plain.unit_of_work() as uow:
            uow.records.add_many([_rec("x1", "440306"), _rec("x2", "650102")])
            uow.changes.append(_change("x1", 1))
            uow.attendance.add_many(
                [AttendanceEntry("x2", date(2024, 9, 2), AttendanceStatus.PRESENT)]
            )
            uow.commit()
        from studentstatus.cli import main

        res = CliRunner().invoke(
            main,
            [
                "db",
                "upgrade",
                "--store",
                postgres_url,
                "--prefix",
                prefix,
                "--partition-by-province",
            ],
        )
        assert res.exit_code == 0, res.output
        assert "partitioned by province" in res.output
        upgrade(engine, prefix=prefix, partition_by_province=True)  # idempotent
        assert current(engine, prefix=prefix) == head_revision()
        assert _diff(engine, prefix) == []
        with engine.connect() as conn:
            assert all(is_partitioned(conn, f"{prefix}{n}") for n in PARTITIONED)
            assert not is_partitioned(conn, f"{prefix}children")
        store = SqlStore(engine, prefix=prefix, partition_by_province=True)
        t = store.tables
        assert _partition_of(store, t.records, t.records.c.id == "x2") == [f"{prefix}records_p65"]
        assert _partition_of(store, t.change_log, t.change_log.c.record_id == "x1") == [
            f"{prefix}change_log_p44"
        ]
        with store.unit_of_work() as uow:
            assert uow.records.count(region_prefix="65") == 1
            assert len(uow.changes.for_record("x1")) == 1
            # the attendance id sequence continues after the copied rows
            uow.attendance.add_many(
                [AttendanceEntry("x2", date(2024, 9, 2), AttendanceStatus.ABSENT)]
            )
            latest = uow.attendance.for_record("x2")
            assert [e.status for e in latest] == [AttendanceStatus.ABSENT]
            uow.commit()
    finally:
        downgrade(engine, "base", prefix=prefix)
        with engine.begin() as conn:
            conn.exec_driver_sql(f"DROP TABLE IF EXISTS {prefix}alembic_version")
        engine.dispose()
