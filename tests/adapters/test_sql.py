"""The SQL adapter: the conformance kit on SQLite, PostgreSQL and MariaDB, plus its own checks.

SQLite always runs (a fresh database file per store).  PostgreSQL and MariaDB
run when ``STUDENTSTATUS_TEST_POSTGRES_URL`` / ``STUDENTSTATUS_TEST_MYSQL_URL``
are set (fixtures in ``tests/conftest.py``: skipped without them, failing in CI);
each store gets its own random table prefix and drops its tables when closed.

``supports_concurrent_units`` is False for the SQL stores: the kit's
concurrency tests interleave two units *in one thread*, and a database that
holds row locks (PostgreSQL, MariaDB) or one write lock (SQLite) makes the
second writer wait for the first, which in one thread never commits.  Real
races are tested with processes in ``test_sql_concurrency.py``.
"""

from __future__ import annotations

import shutil
import tempfile
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, ClassVar

import attrs
import pytest
import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st

from studentstatus.adapters.sql import SqlStore, build_tables
from studentstatus.adapters.sql.errors import translate_error, translating
from studentstatus.domain.enums import (
    ChangeKind,
    Grade,
    NumberKind,
    RequestStatus,
    Role,
    Sex,
    State,
)
from studentstatus.domain.model import (
    ApprovalStep,
    ChangeRequest,
    Child,
    DocumentKind,
    IdentityDocument,
    IssuedNumber,
    StatusChange,
    StatusRecord,
)
from studentstatus.errors import ConflictError, NotFoundError, StorageError
from studentstatus.ports import Store, UnitOfWork
from studentstatus.testing.contract import StoreContract, run_differential

CST = timezone(timedelta(hours=8))
# Real public vectors: the GB 11643-1999 example and python-stdnum's test number.
REAL_IDS = ("11010519491231002X", "44011320141005001X", "360426199101010071")


def _prefix() -> str:
    return f"t{uuid.uuid4().hex[:10]}_"


def _rec(rid: str, **kw: Any) -> StatusRecord:
    base: dict[str, Any] = {
        "child_id": "c1",
        "kindergarten_code": "1111000001",
        "region_code": "110105",
        "state": State.PENDING,
        "grade": Grade.JUNIOR,
        "entry_date": date(2023, 9, 1),
    }
    base.update(kw)
    return StatusRecord(rid, **base)


# --------------------------------------------------------------------------- the kit


class _TablePool:
    """Table sets (one prefix each) on a server, emptied and reused between stores.

    Creating a dozen tables and indexes costs about a second on a server; the kit
    makes a store per test and per hypothesis example, so stores borrow an
    emptied table set instead.  Every set is dropped at the end of the module.
    """

    def __init__(self) -> None:
        self.free: dict[str, list[str]] = {}
        self.made: list[tuple[str, str]] = []

    def borrow(self, url: str) -> SqlStore:
        free = self.free.setdefault(url, [])
        if free:
            store = _fast(SqlStore(url, prefix=free.pop()))
            with store.engine.begin() as conn:
                for table in store.tables.by_port.values():
                    conn.execute(table.delete())
            return store
        prefix = _prefix()
        self.made.append((url, prefix))
        return _fast(SqlStore(url, prefix=prefix, create=True))

    def give_back(self, store: SqlStore) -> None:
        store.close()
        self.free.setdefault(str(store.engine.url), []).append(store.tables.prefix)

    def drop_all(self) -> None:
        """Drop every pooled table, one ``DROP TABLE a, b, …`` per server (DDL is slow)."""
        by_url: dict[str, list[str]] = {}
        for url, prefix in self.made:
            by_url.setdefault(url, []).extend(
                t.name for t in build_tables(prefix=prefix).by_port.values()
            )
        for url, names in by_url.items():
            engine = sa.create_engine(url)
            quote = engine.dialect.identifier_preparer.quote
            with engine.begin() as conn:
                conn.exec_driver_sql(f"DROP TABLE IF EXISTS {', '.join(map(quote, names))}")
            engine.dispose()
        self.made.clear()
        self.free.clear()


POOL = _TablePool()


def _fast(store: SqlStore) -> SqlStore:
    """Tests only: PostgreSQL commits without waiting for the WAL flush (session setting)."""
    if store.dialect_name == "postgresql":

        @sa.event.listens_for(store.engine, "connect")
        def _no_sync(dbapi_conn: Any, _record: Any) -> None:
            with dbapi_conn.cursor() as cur:
                cur.execute("SET synchronous_commit = off")
            dbapi_conn.commit()

    return store


@pytest.fixture(scope="module", autouse=True)
def _drop_pooled_tables() -> Iterator[None]:
    yield
    POOL.drop_all()


class _SqlKit(StoreContract):
    """Shared make/close for the server backends (not collected: no ``Test`` prefix)."""

    supports_concurrent_units = False
    supports_persistence = True
    supports_sealing_audit = True
    property_examples = 5
    differential_examples = 3

    def store_url(self) -> str:
        """The database URL for a new store."""
        raise NotImplementedError

    def make_store(self) -> Store:
        """A fresh, empty store on its own (pooled, emptied) tables."""
        return POOL.borrow(self.store_url())

    def close_store(self, store: Store) -> None:
        """Give the tables back to the pool and release the engine."""
        assert isinstance(store, SqlStore)
        POOL.give_back(store)

    def reopen_store(self, store: Store) -> Store:
        """Close the engine and open the same tables with a new one."""
        assert isinstance(store, SqlStore)
        store.close()
        return SqlStore(self.store_url(), prefix=store.tables.prefix)


class TestSqliteStore(_SqlKit):
    """SQLite: one fresh database file per store; writes prepared executemany parameters."""

    supports_prepared_writes = True
    property_examples = 10
    differential_examples = 8

    def store_url(self) -> str:
        """A new file in a temporary directory (removed when the store closes)."""
        d = tempfile.mkdtemp(prefix="ss-sqlite-")
        return f"sqlite:///{d}/store.db"

    def make_store(self) -> Store:
        """A store on a fresh file (no prefix needed)."""
        return SqlStore(self.store_url(), create=True)

    def reopen_store(self, store: Store) -> Store:
        """Reopen the same file."""
        assert isinstance(store, SqlStore)
        url = store.engine.url
        store.close()
        return SqlStore(url)

    def close_store(self, store: Store) -> None:
        """Close and delete the file."""
        assert isinstance(store, SqlStore)
        store.close()
        db = store.engine.url.database
        if db:
            shutil.rmtree(Path(db).parent, ignore_errors=True)


class TestPostgresStore(_SqlKit):
    """PostgreSQL: a unique table prefix per store; writes prepared COPY rows."""

    url: ClassVar[str] = ""
    supports_prepared_writes = True

    @pytest.fixture(autouse=True)
    def _server(self, postgres_url: str) -> None:
        type(self).url = postgres_url

    def store_url(self) -> str:
        """The test server."""
        return self.url


class TestMariaDbStore(_SqlKit):
    """MariaDB/MySQL: a unique table prefix per store."""

    url: ClassVar[str] = ""

    @pytest.fixture(autouse=True)
    def _server(self, mysql_url: str) -> None:
        type(self).url = mysql_url

    def store_url(self) -> str:
        """The test server."""
        return self.url


# --------------------------------------------------------------------------- own checks


@pytest.fixture(params=["sqlite", "postgresql", "mysql"])
def sql_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SqlStore]:
    """A fresh SqlStore on each backend (servers from the conftest fixtures)."""
    if request.param == "sqlite":
        store = SqlStore(f"sqlite:///{tmp_path}/s.db", create=True)
        yield store
        store.close()
        return
    url = request.getfixturevalue("postgres_url" if request.param == "postgresql" else "mysql_url")
    store = POOL.borrow(url)
    try:
        yield store
    finally:
        POOL.give_back(store)


def _commit(store: SqlStore, fn: Any) -> Any:
    with store.unit_of_work() as uow:
        out = fn(uow)
        uow.commit()
        return out


def test_unit_of_work_satisfies_protocol(tmp_path: Path) -> None:
    """The SQL unit of work is a runtime UnitOfWork."""
    store = SqlStore(f"sqlite:///{tmp_path}/p.db", create=True)
    with store.unit_of_work() as uow:
        assert isinstance(uow, UnitOfWork)
    store.close()


def test_real_identity_numbers_round_trip_and_stay_masked(sql_store: SqlStore) -> None:
    """Real public ID vectors round-trip; no error message quotes a full number."""
    children = [
        Child(
            f"c{i}", "王小明", Sex.M, date(2020, 3, 15), IdentityDocument(DocumentKind.RESIDENT, n)
        )
        for i, n in enumerate(REAL_IDS)
    ]
    _commit(sql_store, lambda u: u.children.add_many(children))
    with sql_store.unit_of_work() as uow:
        for c in children:
            assert c.document is not None
            assert uow.children.find_by_document(c.document.number) == [c]
        with pytest.raises(ConflictError) as info:
            uow.children.add(children[0])
    for n in REAL_IDS:
        assert n not in str(info.value)


def test_national_number_and_former_numbers_are_unique_forever(sql_store: SqlStore) -> None:
    """A number held (now or before) by one record cannot go to another."""
    _commit(sql_store, lambda u: u.records.add(_rec("r1", temp_number="L0001")))
    with sql_store.unit_of_work() as uow:
        r1 = uow.records.get("r1")
        uow.records.update(
            attrs.evolve(r1, national_number="G1", temp_number=None, former_numbers=("L0001",))
        )
        uow.commit()
        with pytest.raises(ConflictError):
            uow.records.add(_rec("r2", temp_number="L0001"))
        with pytest.raises(ConflictError):
            uow.records.add(_rec("r3", national_number="G1"))
        # the unit of work stays usable after a conflict (savepoint per call)
        uow.records.add(_rec("r4", temp_number="L0004"))
        uow.commit()
        found = uow.records.find_by_number("L0001")
        assert found is not None
        assert found.id == "r1"
    with sql_store.unit_of_work() as uow:
        assert [r.id for r in uow.records.iter()] == ["r1", "r4"]


def test_one_open_request_per_record_is_held_by_the_database(sql_store: SqlStore) -> None:
    """The UNIQUE open_record_id column refuses a second OPEN request, even by raw SQL."""
    step = ApprovalStep(Role.COUNTY, "110105", date(2024, 9, 10))
    req = ChangeRequest(
        "q1", "r1", ChangeKind.SUSPEND, "kg:1", datetime(2024, 9, 1, tzinfo=CST), (step,)
    )
    _commit(sql_store, lambda u: u.requests.add(req))
    t = sql_store.tables.change_requests
    with sql_store.engine.connect() as conn:
        row = dict(conn.execute(sa.select(t).where(t.c.id == "q1")).mappings().one())
        row["id"] = "q2"
        with pytest.raises(sa.exc.IntegrityError):
            conn.execute(t.insert(), [row])
        conn.rollback()
    with sql_store.unit_of_work() as uow:
        done = uow.requests.update(attrs.evolve(req, status=RequestStatus.APPROVED))
        uow.requests.add(attrs.evolve(req, id="q3"))
        uow.commit()
        assert uow.requests.open_for_record("r1") == attrs.evolve(req, id="q3")
        assert uow.requests.get("q1") == done


def test_datetimes_keep_the_instant_and_microseconds(sql_store: SqlStore) -> None:
    """Aware datetimes in any offset come back equal (as UTC), microseconds included."""
    at = datetime(2024, 9, 1, 8, 30, 15, 123456, tzinfo=CST)
    change = StatusChange(
        "r1",
        1,
        ChangeKind.REGISTER,
        None,
        State.PENDING,
        date(2024, 9, 1),
        at,
        "kg:1",
        before={"名": "王"},
        after={"n": 1, "b": True, "x": None},
    )
    _commit(sql_store, lambda u: u.changes.append(change))
    with sql_store.unit_of_work() as uow:
        (got,) = uow.changes.for_record("r1")
    assert got == change
    assert got.recorded_at.utcoffset() == timedelta(0)
    assert got.recorded_at.microsecond == 123456


def test_j_sequence_is_per_key_and_rolls_back(sql_store: SqlStore) -> None:
    """Sequences count per (region, birth date); a rolled-back allocation is reused."""
    d = date(2020, 2, 29)
    with sql_store.unit_of_work() as uow:
        assert [uow.numbers.next_sequence("110105", d) for _ in range(3)] == [1, 2, 3]
        assert uow.numbers.next_sequence("110106", d) == 1
        uow.commit()
        assert uow.numbers.next_sequence("110105", d) == 4
        uow.rollback()
        assert uow.numbers.next_sequence("110105", d) == 4


def test_bulk_paths_stream_in_chunks_and_stay_atomic(tmp_path: Path) -> None:
    """add_many streams a generator in chunks; a late conflict undoes the earlier chunks."""
    store = SqlStore(f"sqlite:///{tmp_path}/b.db", create=True, chunk_size=50)
    seen: list[int] = []

    def gen(n: int, dup_at: int | None = None) -> Iterator[StatusRecord]:
        for i in range(n):
            seen.append(i)
            yield _rec(f"r{i:04d}" if i != dup_at else "r0000")

    with store.unit_of_work() as uow:
        with pytest.raises(ConflictError):
            uow.records.add_many(gen(500, dup_at=420))
        assert uow.records.count() == 0
        assert len(seen) == 450  # stopped at the failing chunk: nothing was materialised ahead
        assert uow.records.add_many(gen(500)) == 500
        recs = list(uow.records.iter(batch_size=64))
        assert [r.id for r in recs] == [f"r{i:04d}" for i in range(500)]
        stale = [*recs[:300], attrs.evolve(recs[300], version=7), *recs[301:]]
        with pytest.raises(ConflictError):
            uow.records.update_many(stale)
        assert {r.version for r in uow.records.iter()} == {0}
        assert {r.version for r in uow.records.update_many(recs)} == {1}
        uow.commit()
    store.close()


@pytest.mark.parametrize("piece", [1 << 20, 1, 700])
def test_postgres_copy_path_equals_insert_path(
    postgres_url: str, piece: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """COPY (large batches) and INSERT (small ones) store identical rows, whatever the size
    of the pieces the COPY text is sent in (every row alone; a few rows a piece)."""
    from studentstatus.adapters.sql import copy as sql_copy

    monkeypatch.setattr(sql_copy, "_COPY_PIECE", piece)
    copy_store = SqlStore(postgres_url, prefix=_prefix(), create=True, copy_threshold=10)
    insert_store = SqlStore(postgres_url, prefix=_prefix(), create=True, copy_threshold=10**9)
    at = datetime(2024, 9, 1, 8, 30, tzinfo=CST)
    recs = [
        _rec(
            f"r{i:03d}",
            temp_number=f"L{i:04d}",
            former_numbers=(f"X{i}",),
            repeated_grades=(Grade.JUNIOR,),
        )
        for i in range(40)
    ]
    kids = [
        Child(
            f"c{i}",
            "欧阳娜娜",
            Sex.F,
            date(2020, 1, 1),
            IdentityDocument(DocumentKind.RESIDENT, REAL_IDS[i % 3]),
        )
        for i in range(40)
    ]
    changes = [
        StatusChange(
            f"r{i:03d}",
            1,
            ChangeKind.REGISTER,
            None,
            State.PENDING,
            date(2024, 9, 1),
            at,
            "op",
            evidence=("e",),
            after={"k": "值"},
        )
        for i in range(40)
    ]
    try:
        dumps = []
        for store in (copy_store, insert_store):
            with store.unit_of_work() as uow:
                uow.records.add_many(iter(recs))
                uow.children.add_many(kids)
                uow.changes.append_many(changes)
                uow.commit()
            with store.unit_of_work() as uow:
                dumps.append(
                    (
                        list(uow.records.iter()),
                        uow.children.get_many([k.id for k in kids]),
                        list(uow.changes.iter()),
                        uow.records.find_by_number("X7"),
                    )
                )
        assert dumps[0] == dumps[1]
        assert dumps[0][0] == recs
        with copy_store.unit_of_work() as uow, pytest.raises(ConflictError):
            uow.records.add_many(recs)
    finally:
        for store in (copy_store, insert_store):
            store.drop_schema()
            store.close()


def test_mysql_url_gets_utf8mb4() -> None:
    """MySQL/MariaDB URLs without a charset get utf8mb4 (4-byte Chinese characters)."""
    store = SqlStore("mysql+pymysql://u@127.0.0.1:1/db")
    assert store.engine.url.query["charset"] == "utf8mb4"
    store.close()


def test_rare_characters_survive_on_mariadb(mysql_url: str) -> None:
    """Extension-B and emoji characters (4 bytes in UTF-8) round-trip on MariaDB."""
    store = SqlStore(mysql_url, prefix=_prefix(), create=True)
    try:
        kid = Child("c1", "𠮷田👶", Sex.M, date(2020, 1, 1))
        _commit(store, lambda u: u.children.add(kid))
        with store.unit_of_work() as uow:
            assert uow.children.get("c1") == kid
            assert uow.children.find_by_identity("𠮷田👶", Sex.M, date(2020, 1, 1)) == [kid]
    finally:
        store.drop_schema()
        store.close()


def test_driver_errors_are_translated(tmp_path: Path) -> None:
    """Driver errors never escape: integrity → ConflictError, others → StorageError."""
    err = translate_error(sa.exc.IntegrityError("INSERT", {}, Exception("dup")))
    assert isinstance(err, ConflictError)
    store = SqlStore(f"sqlite:///{tmp_path}/e.db")  # no tables created
    with store.unit_of_work() as uow, pytest.raises(StorageError) as info:
        uow.records.get("r1")
    assert not isinstance(info.value, ConflictError)
    # the driver's class is named; its text (statement parameters) is not chained at all
    assert "OperationalError" in str(info.value)
    assert info.value.__cause__ is None
    assert info.value.__context__ is None
    with pytest.raises(ValueError), translating():
        raise ValueError("not a driver error")
    store.close()


def test_not_found_and_update_of_missing(sql_store: SqlStore) -> None:
    """get → NotFoundError; update of a missing entity → NotFoundError, not a conflict."""
    with sql_store.unit_of_work() as uow:
        with pytest.raises(NotFoundError):
            uow.records.get("nope")
        with pytest.raises(NotFoundError):
            uow.records.update(_rec("nope"))
        assert uow.numbers.resolve("G1") is None


def test_issued_numbers_unique_in_database(sql_store: SqlStore) -> None:
    """Claiming a number twice (even in one batch) is a conflict and writes nothing."""
    at = datetime(2024, 9, 1, tzinfo=UTC)
    a = IssuedNumber("L1", NumberKind.L, "r1", at)
    b = IssuedNumber("L2", NumberKind.L, "r1", at + timedelta(seconds=1))
    with sql_store.unit_of_work() as uow:
        with pytest.raises(ConflictError):
            uow.numbers.claim_many([a, b, a])
        assert uow.numbers.for_record("r1") == []
        uow.numbers.claim_many([b, a])
        assert uow.numbers.for_record("r1") == [a, b]


def test_isolation_between_units_on_servers(request: pytest.FixtureRequest) -> None:
    """PostgreSQL and MariaDB: a reader never sees uncommitted writes, and is not blocked."""
    for fixture in ("postgres_url", "mysql_url"):
        try:
            url = request.getfixturevalue(fixture)
        except pytest.skip.Exception:
            continue
        store = SqlStore(url, prefix=_prefix(), create=True)
        try:
            with store.unit_of_work() as writer:
                writer.records.add(_rec("r1"))
                with store.unit_of_work() as reader:
                    assert reader.records.get_many(["r1"]) == {}
                writer.commit()
                with store.unit_of_work() as reader:
                    assert set(reader.records.get_many(["r1"])) == {"r1"}
        finally:
            store.drop_schema()
            store.close()


def test_prefix_schema_and_host_metadata() -> None:
    """Tables go on the host's MetaData beside its own tables, with prefix and schema."""
    md = sa.MetaData()
    sa.Table("host_users", md, sa.Column("id", sa.Integer, primary_key=True))
    t = build_tables(md, prefix="ss_", schema="edu")
    assert t.records.fullname == "edu.ss_records"
    assert "host_users" in md.tables
    assert all(ix.name and ix.name.startswith("ix_ss_") for ix in t.records.indexes)
    assert len(md.tables) == 1 + len(t.by_port)


def test_differential_on_sqlite_with_many_steps() -> None:
    """The differential machine (SQL vs memory) on SQLite files, more examples than the kit."""
    made: list[str] = []

    def make() -> Store:
        d = tempfile.mkdtemp(prefix="ss-diff-")
        made.append(d)
        return SqlStore(f"sqlite:///{d}/d.db", create=True)

    try:
        run_differential(make, max_examples=12, step_count=30)
    finally:
        for d in made:
            shutil.rmtree(d, ignore_errors=True)


def test_round_trip_property_sqlite(tmp_path: Path) -> None:
    """Hypothesis: any record (unicode ids, dates, numbers) round-trips on SQLite."""
    store = SqlStore(f"sqlite:///{tmp_path}/h.db", create=True)
    counter = iter(range(10**9))

    @settings(max_examples=60)
    @given(
        name=st.text(min_size=1, max_size=30),
        entry=st.dates(date(1990, 1, 1), date(2100, 12, 31)),
        state=st.sampled_from(State),
        grade=st.none() | st.sampled_from(Grade),
        days=st.integers(0, 10_000),
    )
    def check(name: str, entry: date, state: State, grade: Grade | None, days: int) -> None:
        rid = f"{name}-{next(counter)}"
        rec = _rec(
            rid, child_id=name, state=state, grade=grade, entry_date=entry, suspended_days=days
        )
        with store.unit_of_work() as uow:
            uow.records.add(rec)
            assert uow.records.get(rid) == rec
            uow.commit()

    check()
    store.close()


def test_keys_and_names_compare_exactly(sql_store: SqlStore) -> None:
    """Ids differing only in case are different rows (MariaDB: binary collation)."""
    with sql_store.unit_of_work() as uow:
        uow.records.add(_rec("r1"))
        uow.records.add(_rec("R1"))
        with pytest.raises(NotFoundError):
            uow.records.get("r١")  # an Arabic-Indic digit is not "1"
        assert [r.id for r in uow.records.iter()] == ["R1", "r1"]
        kid = Child("c1", "Zoë", Sex.F, date(2020, 1, 1))
        uow.children.add(kid)
        assert uow.children.find_by_identity("zoe", "F", date(2020, 1, 1)) == []
        assert uow.children.find_by_identity("Zoë", "F", date(2020, 1, 1)) == [kid]


@given(
    st.sampled_from([None, "", "L1", "G1"]),
    st.sampled_from([None, "", "L1", "G1"]),
    st.lists(st.sampled_from(["L1", "G1", "X", ""]), max_size=3),
)
def test_record_numbers_are_the_distinct_numbers_in_order(
    temp: str | None, national: str | None, former: list[str]
) -> None:
    from studentstatus.adapters.sql._rows import record_numbers as _record_numbers

    rec = _rec("r1", temp_number=temp, national_number=national, former_numbers=tuple(former))
    expected = list(dict.fromkeys([n for n in (temp, national) if n] + former))
    assert _record_numbers(rec) == expected
