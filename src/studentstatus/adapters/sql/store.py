"""The SQL store: :class:`SqlStore` and its unit of work on SQLAlchemy Core.

One unit of work is one connection and one transaction.  When the host hands
in its own :class:`~sqlalchemy.engine.Connection`, the unit of work runs
inside a SAVEPOINT on it: :meth:`SqlUnitOfWork.commit` releases the savepoint
(the writes join the host's transaction and become visible to others only when
the host commits), :meth:`SqlUnitOfWork.rollback` and leaving the block without
commit roll back to the savepoint; the host's outer transaction is never
committed or rolled back by this library.

Each write method is atomic on its own (a SAVEPOINT around it), so a call that
fails with :class:`~studentstatus.errors.ConflictError` leaves the unit of work
usable, exactly like the in-memory reference adapter.

>>> from datetime import date
>>> from studentstatus.domain.enums import Grade, State
>>> from studentstatus.domain.model import StatusRecord
>>> store = SqlStore("sqlite://", create=True)
>>> rec = StatusRecord("r1", "c1", "1111000001", "110105", State.PENDING, Grade.JUNIOR,
...                    entry_date=date(2023, 9, 1))
>>> with store.unit_of_work() as uow:
...     uow.records.add(rec)
...     uow.commit()
>>> with store.unit_of_work() as uow:
...     uow.records.update(rec).version
1
>>> store.close()
"""

from __future__ import annotations

import contextlib
import copy
import itertools
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from datetime import date, datetime
from types import TracebackType
from typing import Any, Self, TypeVar

import attrs
import sqlalchemy as sa
from sqlalchemy.dialects import mysql as mysql_dialect
from sqlalchemy.dialects import postgresql as pg_dialect
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.engine import Connection, Engine

from studentstatus.adapters.sql import _rows
from studentstatus.adapters.sql.copy import CopyEncoder, _last_value_memo, copy_audit, copy_encoded
from studentstatus.adapters.sql.errors import translating
from studentstatus.adapters.sql.params import ParamEncoder, write_params
from studentstatus.adapters.sql.partitioning import UNKNOWN_PROVINCE, province_key
from studentstatus.adapters.sql.reports import SqlReportSource
from studentstatus.adapters.sql.tables import (
    SqlTables,
    UtcDateTime,
    build_tables,
    region_prefix_filter,
)
from studentstatus.batching import chunked
from studentstatus.domain.audit import AuditKey, ChainHead, SealedRow, group_by_chain, seal_rows
from studentstatus.domain.enums import (
    ChangeKind,
    Grade,
    ProblemKind,
    ProblemStatus,
    RequestStatus,
    Role,
    State,
)
from studentstatus.domain.model import (
    AttendanceEntry,
    AuditEntry,
    ChangeRequest,
    Child,
    IssuedNumber,
    Kindergarten,
    ProblemRecord,
    RosterEntry,
    StatusChange,
    StatusRecord,
)
from studentstatus.domain.monitoring import CaseStatus, DropoutCase
from studentstatus.domain.rollover import RolloverRule
from studentstatus.domain.search import RecordQuery
from studentstatus.errors import ConflictError, NotFoundError, StorageError, mask
from studentstatus.ports import AuditEventFields

__all__ = ["SqlStore", "SqlUnitOfWork"]

T = TypeVar("T")
E = TypeVar("E")

CHUNK = 5_000
"""Rows per INSERT/UPDATE batch on the bulk paths (memory stays flat in N)."""

COPY_THRESHOLD = 100
"""On PostgreSQL, bulk writes of at least this many rows use COPY (one round trip a chunk)."""

_IN_CHUNK = 500

_FIRST_BATCH = 64
"""Rows in the first batch of a keyset stream (then four times more each batch)."""

_PG_UPDATE_FROM = 100
"""On PostgreSQL, versioned updates of this many rows go through a temporary table."""

_DRIVER_INSERT = {"sqlite": "?", "mysql": "%s", "mariadb": "%s"}


def _prepare_url(url: str | sa.URL) -> sa.URL:
    """Add ``charset=utf8mb4`` to MySQL/MariaDB URLs that do not name a charset.

    >>> str(_prepare_url("mysql+pymysql://root@localhost/test"))
    'mysql+pymysql://root@localhost/test?charset=utf8mb4'
    >>> str(_prepare_url("sqlite:///x.db"))
    'sqlite:///x.db'
    """
    u = sa.make_url(url)
    if u.get_backend_name() in ("mysql", "mariadb") and "charset" not in u.query:
        u = u.update_query_dict({"charset": "utf8mb4"})
    return u


def _require_savepoints(conn: Connection) -> None:
    """Refuse a host's SQLite connection on which savepoints would not nest.

    A unit of work on a host connection is a SAVEPOINT.  pysqlite's own transaction
    handling (its default) starts no transaction for a SAVEPOINT, so releasing it
    commits: a host's later rollback would keep the library's writes.  The host's engine
    needs SQLAlchemy's pysqlite recipe (``isolation_level = None`` on connect and an
    explicit ``BEGIN``), or a store of its own (``SqlStore(url)`` applies the recipe).

    >>> engine = sa.create_engine("sqlite://")
    >>> with engine.connect() as conn:
    ...     SqlStore(conn)
    Traceback (most recent call last):
    ...
    studentstatus.errors.StorageError: sqlite_savepoints: ...
    """
    if conn.dialect.name != "sqlite" or conn.dialect.driver != "pysqlite":
        return
    dbapi = conn.connection.dbapi_connection
    if dbapi is None or getattr(dbapi, "isolation_level", None) is None:
        return
    msg = (
        "sqlite_savepoints: this SQLite connection uses pysqlite's own transaction handling, "
        "under which the library's savepoints would commit on release (a rollback of yours "
        "would keep our writes); apply SQLAlchemy's pysqlite recipe to your engine "
        "(isolation_level=None on connect, emit BEGIN on begin: docs/how-to/migrations.md) "
        "or give SqlStore a URL / 该SQLite连接使用pysqlite自身的事务处理，保存点释放即提交；"
        "请按SQLAlchemy的pysqlite方案配置引擎，或向SqlStore传入URL"
    )
    raise StorageError(msg)


def _configure_sqlite(engine: Engine) -> None:
    """Pragmas (WAL, foreign keys, busy timeout) and ``BEGIN IMMEDIATE`` transactions.

    pysqlite's own transaction handling is switched off so that SQLAlchemy's
    BEGIN/SAVEPOINT/RELEASE reach SQLite as written (SQLAlchemy's documented
    recipe); ``BEGIN IMMEDIATE`` takes the write lock up front, so two units
    racing on the same rows wait for each other (busy timeout) instead of
    failing on a lock upgrade.
    """
    memory = engine.url.database in (None, "", ":memory:")

    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=30000")
        if not memory:
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()

    @sa.event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")


class SqlStore:
    """A :class:`~studentstatus.ports.Store` on SQLite, PostgreSQL or MySQL/MariaDB.

    ``bind`` is a URL, an :class:`~sqlalchemy.engine.Engine` (the host's pool is
    used; :meth:`close` does not dispose it) or a
    :class:`~sqlalchemy.engine.Connection` (units of work run in SAVEPOINTs
    inside the host's transaction; see the module docs).  ``metadata``,
    ``prefix`` and ``schema`` are passed to
    :func:`~studentstatus.adapters.sql.tables.build_tables`; ``create=True``
    creates the tables (``metadata.create_all``; production uses the Alembic
    migrations instead).  ``partition_by_province=True`` (PostgreSQL only,
    refused elsewhere with a :class:`~studentstatus.errors.StorageError`) uses
    the province-partitioned tables of
    :mod:`~studentstatus.adapters.sql.partitioning`: pass it when the schema
    was migrated with that option; the store then fills the ``province``
    column and adds ``province = '44'`` to region-prefix filters, so that
    PostgreSQL reads one partition.  ``audit_key`` is the host's key, under which
    audit entries are sealed (:mod:`studentstatus.services.audit`; kept in memory,
    never written to the database).

    >>> store = SqlStore("sqlite://", prefix="demo_", create=True)
    >>> store.tables.records.name
    'demo_records'
    >>> with store.unit_of_work() as uow:
    ...     uow.records.count()
    0
    >>> store.close()
    """

    def __init__(
        self,
        bind: Engine | Connection | str | sa.URL,
        *,
        metadata: sa.MetaData | None = None,
        schema: str | None = None,
        prefix: str = "",
        create: bool = False,
        chunk_size: int = CHUNK,
        copy_threshold: int = COPY_THRESHOLD,
        partition_by_province: bool = False,
        audit_key: AuditKey | bytes | str | None = None,
    ) -> None:
        self.audit_key = AuditKey.of(audit_key)
        self._owns_engine = False
        self._connection: Connection | None = None
        if isinstance(bind, Connection):
            _require_savepoints(bind)
            self._connection = bind
            self.engine = bind.engine
        elif isinstance(bind, Engine):
            self.engine = bind
        else:
            url = _prepare_url(bind)
            # Statement parameters hold identity numbers: keep them out of SQLAlchemy's
            # log lines and error texts (docs/concepts/privacy.md).
            options: dict[str, Any] = {"hide_parameters": True}
            if url.get_backend_name() in ("mysql", "mariadb"):
                options["isolation_level"] = "READ COMMITTED"  # see SqlUnitOfWork
            self.engine = sa.create_engine(url, **options)
            self._owns_engine = True
            if url.get_backend_name() == "sqlite":
                _configure_sqlite(self.engine)
        self.dialect_name = self.engine.dialect.name
        if partition_by_province:
            from studentstatus.adapters.sql.partitioning import require_postgresql

            require_postgresql(self.dialect_name)
        self.partitioned = partition_by_province
        self.tables: SqlTables = build_tables(
            metadata, prefix=prefix, schema=schema, partition_by_province=partition_by_province
        )
        self.chunk_size = chunk_size
        self.copy_threshold = copy_threshold
        self._encoder: CopyEncoder | ParamEncoder | None = None
        self._claim_sql: dict[tuple[str, int], str] = {}
        self._plans: dict[
            tuple[str, tuple[str, ...]], tuple[str, list[Callable[[Any], Any] | None]]
        ] = {}
        if create:
            self.create_schema()

    def __repr__(self) -> str:
        url = self.engine.url.render_as_string(hide_password=True)
        return f"SqlStore({url!r}, prefix={self.tables.prefix!r}, schema={self.tables.schema!r})"

    @contextmanager
    def _ddl_connection(self) -> Iterator[Connection]:
        if self._connection is not None:
            yield self._connection
        else:
            with self.engine.begin() as conn:
                yield conn

    def create_schema(self) -> None:
        """Create the adapter's tables that do not exist yet (tests and demos)."""
        with translating("create schema"), self._ddl_connection() as conn:
            self.tables.metadata.create_all(conn, tables=list(self.tables.by_port.values()))

    def drop_schema(self) -> None:
        """Drop the adapter's tables (only those; the host's tables on a shared MetaData stay)."""
        with translating("drop schema"), self._ddl_connection() as conn:
            self.tables.metadata.drop_all(conn, tables=list(self.tables.by_port.values()))

    def _insert_plan(
        self, table: sa.Table, cols: Sequence[str]
    ) -> tuple[str, list[Callable[[Any], Any] | None]]:
        key = (table.fullname, tuple(cols))
        plan = self._plans.get(key)
        if plan is None:
            dialect = self.engine.dialect
            prep = dialect.identifier_preparer
            mark = _DRIVER_INSERT[self.dialect_name]
            names = ", ".join(prep.quote(c) for c in cols)
            marks = ", ".join([mark] * len(cols))
            sql = f"INSERT INTO {prep.format_table(table)} ({names}) VALUES ({marks})"
            procs: list[Callable[[Any], Any] | None] = [
                _bind_processor(table.c[c], dialect) for c in cols
            ]
            plan = self._plans[key] = (sql, procs)
        return plan

    def unit_of_work(self) -> SqlUnitOfWork:
        """A new unit of work (use it as a context manager)."""
        return SqlUnitOfWork(self)

    def bound(self, connection: Connection) -> SqlStore:
        """This store on a host's ``connection``: every unit of work a SAVEPOINT in the host's
        transaction, as ``SqlStore(connection)`` — but sharing this store's table definitions,
        key and compiled statements, so a portal binds one per request for a few
        microseconds instead of building the tables again (about 7 ms).

        ``connection`` must be of this store's dialect; closing the bound store touches
        neither the connection nor this store's engine.

        >>> engine = sa.create_engine("sqlite://")
        >>> @sa.event.listens_for(engine, "connect")
        ... def _(dbapi_connection, _record):
        ...     dbapi_connection.isolation_level = None
        >>> @sa.event.listens_for(engine, "begin")
        ... def _(conn):
        ...     _ = conn.exec_driver_sql("BEGIN")
        >>> app = SqlStore(engine, create=True)
        >>> with engine.connect() as conn:
        ...     request = app.bound(conn)
        ...     with request.unit_of_work() as uow:
        ...         uow.records.count()
        ...     conn.rollback()
        0
        """
        if connection.dialect.name != self.dialect_name:
            msg = f"bound(): a {connection.dialect.name} connection for a {self.dialect_name} store"
            raise StorageError(msg)
        _require_savepoints(connection)
        bound = copy.copy(self)
        bound._connection = connection
        bound.engine = connection.engine
        bound._owns_engine = False
        return bound

    def close(self) -> None:
        """Dispose the engine if this store created it (never the host's engine/connection)."""
        if self._owns_engine:
            self.engine.dispose()


def _bind_processor(column: sa.Column[Any], dialect: sa.Dialect) -> Callable[[Any], Any] | None:
    """The bind processor of the driver bulk paths: the column type's own, except JSON on
    a dialect with the default serializer and no string post-processing, which gets the
    same text from a leaner encoder (:func:`~studentstatus.adapters.sql.copy._json_text`)."""
    type_ = column.type
    if isinstance(type_, sa.String | sa.Integer | sa.Boolean):
        return None
    if isinstance(type_, sa.Date) and dialect.name == "sqlite":
        # SQLite's DATE processor writes "%(year)04d-%(month)02d-%(day)02d": the ISO text.
        return date.isoformat
    if isinstance(type_, UtcDateTime):
        # A bulk write stamps its rows with one clock reading: convert it once.
        return _last_value_memo(type_._cached_bind_processor(dialect))
    if (
        isinstance(type_, sa.JSON)
        and getattr(dialect, "_json_serializer", None) is None
        and sa.String().bind_processor(dialect) is None
    ):
        from studentstatus.adapters.sql.copy import _json_text

        return _json_text
    return type_._cached_bind_processor(dialect)


class SqlUnitOfWork:
    """One connection and one transaction (or one SAVEPOINT in a host connection).

    **Isolation**: READ COMMITTED, PostgreSQL's default, which MySQL/MariaDB units
    are set to as well (their default, REPEATABLE READ, would let a unit keep
    reading a snapshot older than the identity claim it just waited for; see
    :class:`SqlClaims`).  A host that hands in its own MySQL connection must run it
    under READ COMMITTED itself.

    Repositories are attributes, as in :class:`~studentstatus.ports.UnitOfWork`.
    After :meth:`commit` or :meth:`rollback` the unit stays usable: the next
    write starts a new transaction.

    >>> from datetime import date
    >>> store = SqlStore("sqlite://", create=True)
    >>> with store.unit_of_work() as uow:
    ...     uow.numbers.next_sequence("110105", date(2020, 1, 1))
    ...     uow.rollback()
    ...     uow.numbers.next_sequence("110105", date(2020, 1, 1))
    1
    1
    >>> store.close()
    """

    def __init__(self, store: SqlStore) -> None:
        self._store = store
        self._conn: Connection | None = None
        self._tx: sa.engine.Transaction | None = None

    # lifecycle -------------------------------------------------------------------------

    def __enter__(self) -> Self:
        """Open the connection and begin (a savepoint in a host connection)."""
        store = self._store
        with translating("begin unit of work"):
            if store._connection is not None:
                self._conn = store._connection
            else:
                self._conn = store.engine.connect()
                if store.dialect_name in ("mysql", "mariadb") and not store._owns_engine:
                    self._conn.execution_options(isolation_level="READ COMMITTED")
            self._begin()
        ctx = _Ctx(self._conn, store)
        self.kindergartens = SqlKindergartens(ctx)
        self.children = SqlChildren(ctx)
        self.records = SqlRecords(ctx)
        self.changes = SqlChangeLog(ctx)
        self.requests = SqlRequests(ctx)
        self.problems = SqlProblems(ctx)
        self.numbers = SqlNumbers(ctx)
        self.roster = SqlRoster(ctx)
        self.attendance = SqlAttendance(ctx)
        self.audit = SqlAudit(ctx)
        self.cases = SqlCases(ctx)
        self.claims = SqlClaims(ctx)
        return self

    def _begin(self) -> None:
        assert self._conn is not None
        if self._store._connection is not None:
            self._tx = self._conn.begin_nested()
        else:
            self._tx = self._conn.begin()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Roll back whatever was not committed and release the connection."""
        try:
            if self._tx is not None and self._tx.is_active:
                with translating("roll back unit of work"):
                    self._tx.rollback()
        finally:
            self._tx = None
            if self._conn is not None and self._store._connection is None:
                self._conn.close()
            self._conn = None

    def commit(self) -> None:
        """Commit (release the savepoint in a host connection); then begin again."""
        if self._tx is None:
            msg = "the unit of work is not active (use it in a with block)"
            raise StorageError(msg)
        with translating("commit"):
            self._tx.commit()
            self._begin()

    def rollback(self) -> None:
        """Discard every write since the last commit; then begin again."""
        if self._tx is None:
            return
        with translating("rollback"):
            if self._tx.is_active:
                self._tx.rollback()
            self._begin()

    def connection(self) -> Connection:
        """The unit's connection, inside its transaction: for an extension of this adapter
        that must write in the same unit (the federation link,
        :mod:`studentstatus.adapters.sql.federation`).

        >>> store = SqlStore("sqlite://", create=True)
        >>> with store.unit_of_work() as uow:
        ...     uow.connection().exec_driver_sql("SELECT 1").scalar_one()
        1
        >>> store.close()
        """
        if self._conn is None:
            msg = "the unit of work is not active (use it in a with block)"
            raise StorageError(msg)
        return self._conn

    # report counts (ports.ReportingUnitOfWork) -------------------------------------------

    def report_source(self) -> SqlReportSource:
        """Report counts by ``GROUP BY`` in this unit's transaction
        (:class:`~studentstatus.adapters.sql.reports.SqlReportSource`).

        >>> from studentstatus.ports import ReportScope
        >>> store = SqlStore("sqlite://", create=True)
        >>> with store.unit_of_work() as uow:
        ...     uow.report_source().problems(ReportScope("11"))
        {}
        >>> store.close()
        """
        assert self._conn is not None, "report_source() inside the unit of work"
        return SqlReportSource(self._conn, self._store.tables)

    # prepared rows (ports.PreparedWrites) ------------------------------------------------

    def row_encoder(self) -> CopyEncoder | ParamEncoder | None:
        """The encoder of this store's bulk writes, made in any process (``None``: services
        then write entities):

        * PostgreSQL through psycopg 3 with a UTF-8 client encoding and the unpartitioned
          schema: a :class:`~studentstatus.adapters.sql.copy.CopyEncoder` (``COPY`` lines);
        * SQLite through the standard ``sqlite3`` driver with SQLAlchemy's own JSON
          serialiser: a :class:`~studentstatus.adapters.sql.params.ParamEncoder`
          (``executemany`` parameters);
        * otherwise ``None``.

        >>> store = SqlStore("sqlite://", create=True)
        >>> with store.unit_of_work() as uow:
        ...     uow.row_encoder()
        ParamEncoder(['change_log', 'children', 'issued_numbers', 'record_numbers', 'records'])
        >>> store.close()
        """
        store = self._store
        if self._conn is None or store.partitioned:
            return None
        dialect = store.engine.dialect
        if store.dialect_name == "sqlite":
            if (
                dialect.driver != "pysqlite"
                or getattr(dialect, "_json_serializer", None) is not None
                or sa.String().bind_processor(dialect) is not None
            ):
                return None
            if store._encoder is None:
                store._encoder = ParamEncoder.for_store(store)
            return store._encoder
        if store.dialect_name != "postgresql" or dialect.driver != "psycopg":
            return None
        info = getattr(self._conn.connection.dbapi_connection, "info", None)
        if getattr(info, "encoding", None) != "utf-8":
            return None
        if store._encoder is None:
            store._encoder = CopyEncoder.for_tables(store.tables)
        return store._encoder

    def write_prepared(self, batches: Sequence[tuple[str, Sequence[Any]]]) -> int:
        """Write ``(kind, encoded entities)`` batches made by :meth:`row_encoder`'s encoder
        (one ``COPY`` or ``executemany`` per table, in one savepoint: all or nothing);
        returns the count."""
        encoder = self.row_encoder()
        if encoder is None or self._conn is None:
            msg = "this unit of work writes no prepared rows (row_encoder() is None)"
            raise StorageError(msg)
        with _savepoint(self._conn, "write prepared rows"):
            if isinstance(encoder, ParamEncoder):
                return write_params(self._conn, encoder, batches)
            return copy_encoded(self._conn, encoder, batches)


@attrs.frozen
class _Ctx:
    conn: Connection
    store: SqlStore

    @property
    def t(self) -> SqlTables:
        return self.store.tables

    @property
    def dialect(self) -> str:
        return self.store.dialect_name


class _Repo:
    def __init__(self, ctx: _Ctx) -> None:
        self._ctx = ctx
        self._conn = ctx.conn
        self._t = ctx.t

    def _write(self, what: str) -> AbstractContextManager[None]:
        return _savepoint(self._conn, what)

    def _read(self, what: str) -> AbstractContextManager[None]:
        return translating(what)

    @contextmanager
    def _by_index(self) -> Iterator[None]:
        """PostgreSQL: the keyed look-ups inside (reads only) are planned on their indexes.

        A bulk import is one long unit of work: its tables grow by up to millions
        of rows that autovacuum cannot see before the commit, and with missing or
        stale statistics the planner scans the whole table for every ``IN (…)``
        list — a look-up per chunk that grows with the table (1,000,000 rows:
        minutes of server time).  ``enable_seqscan = off`` for the look-ups alone
        keeps them on the index they are made for: set inside a savepoint that is
        rolled back after them (they only read), which puts the setting back as it
        was — also after an error, and when nested — and takes no lock (an
        ``ANALYZE`` in the unit would hold one until the commit).
        """
        if self._ctx.dialect != "postgresql":
            yield
            return
        sp = self._conn.begin_nested()
        try:
            self._conn.exec_driver_sql("SET LOCAL enable_seqscan = off")
            yield
        except BaseException:
            with contextlib.suppress(Exception):  # the original error matters more
                if sp.is_active:
                    sp.rollback()
            raise
        sp.rollback()

    @property
    def _partitioned(self) -> bool:
        return self._ctx.store.partitioned

    def _with_province(
        self, rows: Iterable[dict[str, Any]], column: str
    ) -> Iterator[dict[str, Any]]:
        """Partitioned schema: each row's ``province`` from its ``column`` (region/county code)."""
        if not self._partitioned:
            yield from rows
            return
        for row in rows:
            row["province"] = province_key(row[column])
            yield row

    def _with_record_province(self, rows: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        """Partitioned schema: rows keyed by ``record_id`` get the record's current province.

        One look-up per chunk of record ids; a row whose record is not stored
        goes to the DEFAULT partition (``province = '00'``).
        """
        if not self._partitioned:
            yield from rows
            return
        t = self._t.records
        for chunk in chunked(rows, _IN_CHUNK):
            ids = list({r["record_id"] for r in chunk})
            q = sa.select(t.c.id, t.c.province).where(t.c.id.in_(ids))
            found = {k: v for k, v in self._conn.execute(q)}  # noqa: C416 (Row has .keys())
            for row in chunk:
                row["province"] = found.get(row["record_id"], UNKNOWN_PROVINCE)
                yield row

    def _refuse_taken(
        self, table: sa.Table, keys: Sequence[str], rows: list[dict[str, Any]]
    ) -> None:
        """Partitioned schema: ConflictError if a row's key exists in *any* province.

        The primary key is ``(key…, province)`` there (PostgreSQL wants the
        partition key in it), so a twin in another province would not collide;
        this look-up (one per chunk, every partition's key index) keeps keys
        global for writers that do not race.  Two concurrent writers inserting
        the same key in two provinces are not caught: keys are generated
        (UUIDs, per-record sequence numbers under the record's version check).
        """
        if not self._partitioned or not rows:
            return
        seen: set[tuple[Any, ...]] = set()
        for r in rows:  # twins inside the batch itself, in two provinces
            key = tuple(r[k] for k in keys)
            if key in seen:
                msg = f"{table.name}: the batch holds a key twice (in some province)"
                raise ConflictError(msg)
            seen.add(key)
        cols = [table.c[k] for k in keys]
        for part in chunked(rows, _IN_CHUNK):
            if len(cols) == 1:
                cond = cols[0].in_([r[keys[0]] for r in part])
            else:
                cond = sa.tuple_(*cols).in_([tuple(r[k] for k in keys) for r in part])
            if self._conn.execute(sa.select(*cols).where(cond).limit(1)).first() is not None:
                msg = f"{table.name}: a row with this key exists (in some province)"
                raise ConflictError(msg)

    def _checked(
        self, table: sa.Table, keys: Sequence[str], rows: Iterable[dict[str, Any]]
    ) -> Iterator[dict[str, Any]]:
        """:meth:`_refuse_taken` chunk by chunk over a stream of rows."""
        for chunk in chunked(rows, self._ctx.store.chunk_size):
            self._refuse_taken(table, keys, chunk)
            yield from chunk

    def _province_filter(
        self, column: sa.ColumnElement[str], prefix: str
    ) -> list[sa.ColumnElement[bool]]:
        """The region-prefix filter, plus ``province = prefix[:2]`` (pruning) when partitioned."""
        if not prefix:
            return []
        where = [region_prefix_filter(column, prefix)]
        if self._partitioned and len(prefix) >= 2:
            table = column.table
            where.append(table.c.province == prefix[:2])
        return where

    def _insert_many(
        self,
        table: sa.Table,
        rows: Iterable[Mapping[str, Any]],
        *,
        copy: bool = False,
        columns: Sequence[str] | None = None,
        total_hint: int = 0,
    ) -> int:
        """Insert ``rows`` in chunks (COPY on PostgreSQL for large ``copy`` batches).

        ``total_hint``: rows the caller already wrote in this call (streamed
        callers pass chunk after chunk; COPY pays off once the batch is large).
        """
        total = 0
        size = self._ctx.store.chunk_size
        use_copy: bool | None = None if copy and self._ctx.dialect == "postgresql" else False
        stmt = table.insert()
        for chunk in chunked(rows, size):
            if use_copy is None:
                use_copy = len(chunk) + total_hint >= self._ctx.store.copy_threshold
            if use_copy:
                from studentstatus.adapters.sql.copy import copy_rows

                copy_rows(self._conn, table, chunk, columns=columns)
            elif self._ctx.dialect in _DRIVER_INSERT and len(chunk) > 1:
                self._driver_insert(table, chunk)
            else:
                self._conn.execute(stmt, chunk)
            total += len(chunk)
        return total

    def _driver_insert(self, table: sa.Table, chunk: Sequence[Mapping[str, Any]]) -> None:
        """executemany straight to the DBAPI cursor (same transaction), values prepared once.

        Used on SQLite and MySQL/MariaDB for multi-row chunks: the same bind
        processors as a Core ``INSERT`` (dates, JSON, UTC datetimes), without
        SQLAlchemy's per-row parameter machinery, which costs more than the
        driver itself at bulk sizes.
        """
        cols = list(chunk[0])
        sql, procs = self._ctx.store._insert_plan(table, cols)
        n = len(cols)
        if all(len(row) == n for row in chunk):  # rows of a chunk share one mapper: one order
            columns = list(zip(*(row.values() for row in chunk), strict=True))
        else:
            columns = [tuple(row[c] for row in chunk) for c in cols]
        # Column by column: each processor runs over its column in one comprehension.
        for i, p in enumerate(procs):
            if p is not None:
                columns[i] = tuple([None if v is None else p(v) for v in columns[i]])
        self._conn.exec_driver_sql(sql, list(zip(*columns, strict=True)))

    def _versioned_update(
        self,
        table: sa.Table,
        key: str,
        rows: Sequence[dict[str, Any]],
        kind: str,
    ) -> None:
        """UPDATE … SET version = version + 1 WHERE key = ? AND version = ?, checked.

        Bulk paths: on SQLite and MySQL/MariaDB one driver ``executemany`` with values
        prepared once (as :meth:`_driver_insert`); on PostgreSQL the rows are COPied
        into a temporary table and applied by ONE ``UPDATE … FROM``.  Either way the
        matched row count must equal the number of rows (optimistic concurrency).
        """
        if not rows:
            return
        cols = [c for c in rows[0] if c not in (key, "version")]
        dialect = self._ctx.dialect
        if dialect == "postgresql" and len(rows) >= _PG_UPDATE_FROM:
            matched = self._update_from_temp(table, key, cols, rows)
        elif dialect in _DRIVER_INSERT and len(rows) > 1:
            matched = self._driver_update(table, key, cols, rows)
        else:
            stmt = (
                table.update()
                .where(table.c[key] == sa.bindparam("b_key"))
                .where(table.c.version == sa.bindparam("b_version"))
                .values(
                    {c: sa.bindparam(f"b_{c}") for c in cols} | {"version": table.c.version + 1}
                )
            )
            params = [
                {"b_key": r[key], "b_version": r["version"]} | {f"b_{c}": r[c] for c in cols}
                for r in rows
            ]
            matched = self._conn.execute(stmt, params).rowcount
        if matched != len(rows):
            raise self._find_stale(table, key, rows)

    def _driver_update(
        self, table: sa.Table, key: str, cols: Sequence[str], rows: Sequence[Mapping[str, Any]]
    ) -> int:
        """executemany of the versioned UPDATE straight to the DBAPI cursor; rows matched."""
        store = self._ctx.store
        prep = store.engine.dialect.identifier_preparer
        mark = _DRIVER_INSERT[self._ctx.dialect]
        order = [*cols, key, "version"]
        _sql, procs = store._insert_plan(table, order)
        sets = ", ".join(f"{prep.quote(c)} = {mark}" for c in cols)
        ver = prep.quote("version")
        sql = (
            f"UPDATE {prep.format_table(table)} SET {sets}, {ver} = {ver} + 1 "
            f"WHERE {prep.quote(key)} = {mark} AND {ver} = {mark}"
        )
        convert = [(i, p) for i, p in enumerate(procs) if p is not None]
        params: list[tuple[Any, ...]] = []
        for row in rows:
            values = [row[c] for c in order]
            for i, p in convert:
                if values[i] is not None:
                    values[i] = p(values[i])
            params.append(tuple(values))
        return int(self._conn.exec_driver_sql(sql, params).rowcount)

    def _update_from_temp(
        self, table: sa.Table, key: str, cols: Sequence[str], rows: Sequence[Mapping[str, Any]]
    ) -> int:
        """PostgreSQL: COPY the rows into a temporary table, then ONE ``UPDATE … FROM``."""
        from studentstatus.adapters.sql.copy import copy_rows

        prep = self._ctx.store.engine.dialect.identifier_preparer
        name = f"_ss_upd_{table.name}"[:63]
        tmp = sa.Table(name, sa.MetaData(), *(sa.Column(c.name, c.type) for c in table.columns))
        order = [key, "version", *cols]
        # Only the written columns, with their types and no constraints (CREATE … AS).
        self._conn.exec_driver_sql(
            f"CREATE TEMPORARY TABLE {prep.quote(name)} ON COMMIT DROP AS SELECT "
            f"{', '.join(prep.quote(c) for c in order)} FROM {prep.format_table(table)} "
            "WITH NO DATA"
        )
        copy_rows(self._conn, tmp, rows, columns=order)
        sets = ", ".join(f"{prep.quote(c)} = s.{prep.quote(c)}" for c in cols)
        ver, k = prep.quote("version"), prep.quote(key)
        result = self._conn.exec_driver_sql(
            f"UPDATE {prep.format_table(table)} AS t SET {sets}, {ver} = t.{ver} + 1 "
            f"FROM {prep.quote(name)} AS s WHERE t.{k} = s.{k} AND t.{ver} = s.{ver}"
        )
        self._conn.exec_driver_sql(f"DROP TABLE {prep.quote(name)}")
        return int(result.rowcount)

    def _find_stale(
        self, table: sa.Table, key: str, rows: Sequence[Mapping[str, Any]]
    ) -> StorageError | NotFoundError:
        ids = [r[key] for r in rows]
        stored = {}
        for part in chunked(ids, _IN_CHUNK):
            q = sa.select(table.c[key], table.c.version).where(table.c[key].in_(part))
            stored.update({k: v for k, v in self._conn.execute(q)})  # noqa: C416 (Row has .keys())
        for r in rows:
            if r[key] not in stored:
                return NotFoundError(f"{table.name}: no row with {key} {r[key]!r}")
        return ConflictError(
            f"{table.name}: stale version (someone else updated the row since it was read)"
        )

    def _get_one(self, table: sa.Table, key: str, value: Any) -> Mapping[Any, Any] | None:
        q = sa.select(table).where(table.c[key] == value)
        return self._conn.execute(q).mappings().first()

    def _get_many(self, table: sa.Table, key: str, values: Sequence[Any]) -> list[Any]:
        out: list[Any] = []
        with self._by_index():
            for part in chunked(dict.fromkeys(values), _IN_CHUNK):
                q = sa.select(table).where(table.c[key].in_(part))
                out.extend(self._conn.execute(q).mappings())
        return out

    def _eq(self, value: Any) -> Any:
        """``value`` as the database's ``=`` sees it: MySQL/MariaDB's ``utf8mb4_bin`` is a PAD
        SPACE collation (trailing spaces do not count), the other backends compare exactly."""
        if isinstance(value, str) and self._ctx.dialect in ("mysql", "mariadb"):
            return value.rstrip(" ")
        return value

    def _rows_by(
        self, table: sa.Table, cols: Sequence[str], keys: Iterable[tuple[Any, ...]]
    ) -> dict[tuple[Any, ...], list[Mapping[Any, Any]]]:
        """Rows whose ``cols`` equal one of ``keys`` (one ``IN`` per 500 distinct keys; a tuple
        ``IN`` for several columns): key (through :meth:`_eq`) → its rows ordered by id."""
        wanted = dict.fromkeys(tuple(self._eq(v) for v in k) for k in keys)
        columns = [table.c[c] for c in cols]
        out: dict[tuple[Any, ...], list[Mapping[Any, Any]]] = {}
        # Distinct keys match disjoint rows, so each key's rows come from one query, by id.
        with self._by_index():
            for part in chunked(wanted, _IN_CHUNK):
                where = [columns[0].in_(list(dict.fromkeys(k[0] for k in part)))]
                if len(columns) > 1:
                    # The tuple IN alone finds the rows; the leading column's IN keeps SQLite
                    # on the index (it scans the whole table for a tuple IN, a VALUES list).
                    where = where if self._ctx.dialect == "sqlite" else []
                    where.append(sa.tuple_(*columns).in_(part))
                q = sa.select(table).where(*where).order_by(table.c.id)
                for row in self._conn.execute(q).mappings():
                    out.setdefault(tuple(self._eq(row[c]) for c in cols), []).append(row)
        return out

    def _keyset(
        self,
        table: sa.Table,
        keys: Sequence[str],
        where: Sequence[sa.ColumnElement[bool]],
        convert: Callable[[Mapping[Any, Any]], E],
        batch_size: int = 1000,
    ) -> Iterator[E]:
        """Stream rows ordered by ``keys`` in batches (keyset pagination): flat memory.

        The first batch is small (:data:`_FIRST_BATCH` rows) and each next one four times
        the last, up to ``batch_size``: a caller that wants the first page of a long list
        (a portal's problem list) reads a page, not a thousand rows.
        """
        cols = [table.c[k] for k in keys]
        last: tuple[Any, ...] | None = None
        size = min(_FIRST_BATCH, batch_size)
        while True:
            q = sa.select(table).where(*where).order_by(*cols).limit(size)
            if last is not None:
                if len(cols) == 1:
                    q = q.where(cols[0] > last[0])
                else:
                    q = q.where(sa.tuple_(*cols) > sa.tuple_(*last))
            with self._read(f"iterate {table.name}"):
                batch = list(self._conn.execute(q).mappings())
            for row in batch:
                yield convert(row)
            if len(batch) < size:
                return
            last = tuple(batch[-1][k] for k in keys)
            size = min(size * 4, batch_size)


@contextmanager
def _savepoint(conn: Connection, what: str) -> Iterator[None]:
    """A SAVEPOINT around one write call: all of it or nothing, the unit stays usable."""
    with translating(what):
        sp = conn.begin_nested()
        try:
            yield
        except BaseException:
            if sp.is_active:
                # MySQL/MariaDB undo the whole transaction on a deadlock, savepoint
                # included: the error that got us here says why, not this one.
                with contextlib.suppress(sa.exc.DBAPIError):
                    sp.rollback()
            raise
        else:
            sp.commit()


def _not_found(what: str, key: str) -> NotFoundError:
    return NotFoundError(f"no {what} {key!r}")


# repositories ----------------------------------------------------------------------------


class SqlKindergartens(_Repo):
    """Kindergartens by school code."""

    def add(self, kindergarten: Kindergarten) -> None:
        """Insert; ConflictError if the school code exists."""
        self.add_many([kindergarten])

    def add_many(self, kindergartens: Iterable[Kindergarten]) -> int:
        """Insert many, all or nothing; returns the count."""
        with self._write("add kindergartens"):
            return self._insert_many(
                self._t.kindergartens, map(_rows.kindergarten_to_row, kindergartens)
            )

    def get(self, school_code: str) -> Kindergarten:
        """The kindergarten, or NotFoundError."""
        found = self.find(school_code)
        if found is None:
            raise _not_found("kindergarten", school_code)
        return found

    def find(self, school_code: str) -> Kindergarten | None:
        """The kindergarten or None."""
        with self._read("get kindergarten"):
            row = self._get_one(self._t.kindergartens, "school_code", school_code)
        return _rows.kindergarten_from_row(row) if row is not None else None

    def update(self, kindergarten: Kindergarten) -> Kindergarten:
        """Optimistic update; returns the stored entity with its new version."""
        with self._write("update kindergarten"):
            row = _rows.kindergarten_to_row(kindergarten)
            self._versioned_update(self._t.kindergartens, "school_code", [row], "kindergarten")
        return attrs.evolve(kindergarten, version=kindergarten.version + 1)

    def iter(self, *, region_prefix: str = "") -> Iterator[Kindergarten]:
        """Kindergartens whose region code starts with ``region_prefix``, by school code."""
        t = self._t.kindergartens
        where = [region_prefix_filter(t.c.region_code, region_prefix)] if region_prefix else []
        return self._keyset(t, ["school_code"], where, _rows.kindergarten_from_row)


class SqlChildren(_Repo):
    """Children by id, with the look-ups used for duplicate detection."""

    def add(self, child: Child) -> None:
        """Insert; ConflictError if the id exists."""
        self.add_many([child])

    def add_many(self, children: Iterable[Child]) -> int:
        """Insert many (COPY on PostgreSQL for large batches); returns the count."""
        with self._write("add children"):
            return self._insert_many(self._t.children, map(_rows.child_to_row, children), copy=True)

    def get(self, child_id: str) -> Child:
        """The child, or NotFoundError."""
        with self._read("get child"):
            row = self._get_one(self._t.children, "id", child_id)
        if row is None:
            raise _not_found("child", child_id)
        return _rows.child_from_row(row)

    def get_many(self, child_ids: Sequence[str]) -> dict[str, Child]:
        """The children found among ``child_ids``."""
        with self._read("get children"):
            rows = self._get_many(self._t.children, "id", child_ids)
        return {r["id"]: _rows.child_from_row(r) for r in rows}

    def update(self, child: Child) -> Child:
        """Optimistic update; returns the stored entity with its new version."""
        with self._write("update child"):
            self._versioned_update(self._t.children, "id", [_rows.child_to_row(child)], "child")
        return attrs.evolve(child, version=child.version + 1)

    def find_by_document(self, number: str) -> list[Child]:
        """Children whose document number equals ``number``, by id."""
        t = self._t.children
        q = sa.select(t).where(t.c.document_number == number).order_by(t.c.id)
        with self._read("find children by document"):
            return [_rows.child_from_row(r) for r in self._conn.execute(q).mappings()]

    def find_by_identity(self, name: str, sex: str, birth_date: date) -> list[Child]:
        """Children with exactly this name, sex and birth date, by id."""
        t = self._t.children
        q = (
            sa.select(t)
            .where(t.c.name == name, t.c.sex == str(sex), t.c.birth_date == birth_date)
            .order_by(t.c.id)
        )
        with self._read("find children by identity"):
            return [_rows.child_from_row(r) for r in self._conn.execute(q).mappings()]

    def find_by_documents(self, numbers: Sequence[str]) -> dict[str, list[Child]]:
        """Bulk :meth:`find_by_document` (``document_number IN (…)`` per 500 numbers): number →
        its children by id; misses left out.

        >>> from studentstatus.domain.enums import Sex
        >>> from studentstatus.domain.model import DocumentKind, IdentityDocument
        >>> passport = IdentityDocument(DocumentKind.PASSPORT, "E12345678")
        >>> store = SqlStore("sqlite://", create=True)
        >>> with store.unit_of_work() as uow:
        ...     uow.children.add(Child("c1", "王小明", Sex.M, date(2020, 3, 15), passport))
        ...     found = uow.children.find_by_documents(["E12345678", "E00000000"])
        >>> {number: [c.id for c in children] for number, children in found.items()}
        {'E12345678': ['c1']}
        >>> store.close()
        """
        with self._read("find children by documents"):
            rows = self._rows_by(self._t.children, ["document_number"], ((n,) for n in numbers))
        found = {k: [_rows.child_from_row(r) for r in rs] for k, rs in rows.items()}
        out: dict[str, list[Child]] = {}
        for number in dict.fromkeys(numbers):
            hit = found.get((self._eq(number),))
            if hit:
                out[number] = list(hit)
        return out

    def find_by_identities(
        self, keys: Sequence[tuple[str, str, date]]
    ) -> dict[tuple[str, str, date], list[Child]]:
        """Bulk :meth:`find_by_identity` (``(name, sex, birth_date) IN (…)`` per 500 keys): key
        (as given) → its children by id; misses left out.

        >>> from studentstatus.domain.enums import Sex
        >>> store = SqlStore("sqlite://", create=True)
        >>> with store.unit_of_work() as uow:
        ...     uow.children.add(Child("c1", "王小明", Sex.M, date(2020, 3, 15)))
        ...     found = uow.children.find_by_identities(
        ...         [("王小明", "M", date(2020, 3, 15)), ("王小明", "F", date(2020, 3, 15))]
        ...     )
        >>> {key[1]: [c.id for c in children] for key, children in found.items()}
        {'M': ['c1']}
        >>> store.close()
        """
        asked = [(name, str(sex), birth) for name, sex, birth in keys]
        with self._read("find children by identities"):
            rows = self._rows_by(self._t.children, ["name", "sex", "birth_date"], asked)
        found = {k: [_rows.child_from_row(r) for r in rs] for k, rs in rows.items()}
        out: dict[tuple[str, str, date], list[Child]] = {}
        for key, (name, sex, birth) in zip(keys, asked, strict=True):
            hit = found.get((self._eq(name), sex, birth))
            if hit and key not in out:
                out[key] = list(hit)
        return out


class SqlRecords(_Repo):
    """Status records (the projection of the change log)."""

    def add(self, record: StatusRecord) -> None:
        """Insert; ConflictError if the id (or national number) exists."""
        self.add_many([record])

    def add_many(self, records: Iterable[StatusRecord]) -> int:
        """Insert many (COPY on PostgreSQL for large batches); returns the count.

        The records' numbers go to the number index in the same unit: a number
        another record holds (or held) is a ConflictError.
        """
        numbers: list[dict[str, Any]] = []
        with self._write("add records"):
            n = 0
            for chunk in chunked(records, self._ctx.store.chunk_size):
                rows = list(self._with_province(map(_rows.record_to_row, chunk), "region_code"))
                self._refuse_taken(self._t.records, ["id"], rows)
                numbers.clear()
                for rec in chunk:
                    numbers.extend(
                        {"number": num, "record_id": rec.id} for num in _rows.record_numbers(rec)
                    )
                n += self._insert_many(self._t.records, rows, copy=True, total_hint=n)
                self._insert_many(self._t.record_numbers, numbers, copy=True, total_hint=n)
        return n

    def get(self, record_id: str) -> StatusRecord:
        """The record, or NotFoundError."""
        with self._read("get record"):
            row = self._get_one(self._t.records, "id", record_id)
        if row is None:
            raise _not_found("record", record_id)
        return _rows.record_from_row(row)

    def get_many(self, record_ids: Sequence[str]) -> dict[str, StatusRecord]:
        """The records found among ``record_ids``."""
        with self._read("get records"):
            rows = self._get_many(self._t.records, "id", record_ids)
        return {r["id"]: _rows.record_from_row(r) for r in rows}

    def update(self, record: StatusRecord) -> StatusRecord:
        """Optimistic update (``record.version`` = the version read); returns the new one."""
        return self.update_many([record])[0]

    def update_many(self, records: Sequence[StatusRecord]) -> list[StatusRecord]:
        """Optimistic bulk update; any stale one → ConflictError and nothing written."""
        records = list(records)
        if len({r.id for r in records}) != len(records):
            msg = "update_many: the same record twice in one batch (the second would be stale)"
            raise ConflictError(msg)
        t = self._t
        with self._write("update records"):
            for chunk in chunked(records, self._ctx.store.chunk_size):
                rows = self._with_province(map(_rows.record_to_row, chunk), "region_code")
                self._versioned_update(t.records, "id", list(rows), "record")
                self._index_numbers(chunk)
        return [attrs.evolve(r, version=r.version + 1) for r in records]

    def update_fields(self, records: Sequence[StatusRecord], fields: Iterable[str]) -> int:
        """Optimistic bulk update that writes only ``fields`` (and the version); returns the count.

        An adapter capability for bulk callers that know what changed (the
        year-end rollover: the status machine's events list the touched
        fields): the database rewrites only those columns and the index entries
        on them, instead of every column as :meth:`update_many` does.  Same
        guarantees as :meth:`update_many`: any stale record →
        :class:`~studentstatus.errors.ConflictError`, a missing one →
        :class:`~studentstatus.errors.NotFoundError`, and nothing written.
        Number fields among ``fields`` are indexed as by :meth:`update_many`.

        >>> from datetime import date
        >>> from studentstatus.domain.enums import Grade, State
        >>> store = SqlStore("sqlite://", create=True)
        >>> rec = StatusRecord("r1", "c1", "1111000001", "110105", State.ACTIVE, Grade.JUNIOR,
        ...                    entry_date=date(2023, 9, 1))
        >>> with store.unit_of_work() as uow:
        ...     uow.records.add(rec)
        ...     uow.records.update_fields([attrs.evolve(rec, grade=Grade.MIDDLE)], ["grade"])
        ...     uow.records.get("r1").grade, uow.records.get("r1").version
        1
        (<Grade.MIDDLE: 'MIDDLE'>, 1)
        >>> store.close()
        """
        t = self._t.records
        cols = sorted(set(fields)) or ["state"]  # nothing but the version: rewrite one column
        bad = [c for c in cols if c not in t.c or c in ("id", "version")]
        if bad:
            msg = f"update_fields: not updatable record fields {bad}"
            raise ValueError(msg)
        records = list(records)
        if len({r.id for r in records}) != len(records):
            msg = "update_fields: the same record twice in one batch (the second would be stale)"
            raise ConflictError(msg)
        numbers = not {"temp_number", "national_number", "former_numbers"}.isdisjoint(cols)
        with self._write("update records"):
            for chunk in chunked(records, self._ctx.store.chunk_size):
                rows = []
                for rec in chunk:
                    full = _rows.record_to_row(rec)
                    rows.append({"id": rec.id, "version": rec.version} | {c: full[c] for c in cols})
                self._versioned_update(t, "id", rows, "record")
                if numbers:
                    self._index_numbers(chunk)
        return len(records)

    # Set-based year-end rollover: an adapter capability (see adapters/sql/rollover.py).

    def rollover_rest(
        self,
        rule: RolloverRule,
        *,
        region_prefix: str = "",
        kindergarten_code: str | None = None,
        batch_size: int = 1000,
        skip_settled: bool = False,
    ) -> Iterator[StatusRecord]:
        """ACTIVE records of the scope that ``rule`` does not cover, by id (the machine's share);
        with ``skip_settled``, not those :meth:`rollover_settled` counts either."""
        from studentstatus.adapters.sql import rollover

        where = self._where(region_prefix, kindergarten_code, [State.ACTIVE])
        where.append(~rollover.covered_filter(self._t, rule))
        if skip_settled:
            where.extend(~c for c in rollover.settled_filters(self._t, self._ctx.dialect, rule))
        return self._keyset(self._t.records, ["id"], where, _rows.record_from_row, batch_size)

    def rollover_settled(
        self, rule: RolloverRule, *, region_prefix: str = "", kindergarten_code: str | None = None
    ) -> dict[str, int]:
        """How many ACTIVE records of the scope the rollover leaves done, repeat and new, and
        how many :meth:`rollover_rest` yields with ``skip_settled`` (``machine``)."""
        from studentstatus.adapters.sql.rollover import count_settled

        where = self._where(region_prefix, kindergarten_code, [State.ACTIVE])
        with self._read("rollover: settled records"):
            return count_settled(self._conn, self._t, self._ctx.dialect, where, rule)

    def rollover_covered(
        self,
        rule: RolloverRule,
        *,
        region_prefix: str = "",
        kindergarten_code: str | None = None,
        batch_size: int = 5000,
    ) -> Iterator[list[tuple[str, int, str, str]]]:
        """Batches of ``(record_id, seq, kindergarten_code, grade)`` of the covered records,
        locked, in code-point order of the id."""
        from studentstatus.adapters.sql.rollover import iter_covered

        where = self._where(region_prefix, kindergarten_code, [State.ACTIVE])
        with self._read("rollover: covered records"):
            yield from iter_covered(self._conn, self._t, self._ctx.dialect, where, rule, batch_size)

    def rollover_write(
        self,
        rule: RolloverRule,
        *,
        region_prefix: str = "",
        kindergarten_code: str | None = None,
        expected: int,
    ) -> int:
        """Write the covered records' events and updates set-based; ConflictError unless
        exactly ``expected`` rows are written (nothing is then written)."""
        from studentstatus.adapters.sql.rollover import write

        where = self._where(region_prefix, kindergarten_code, [State.ACTIVE])
        with self._write("rollover: set-based write"):
            store = self._ctx.store
            return write(
                self._conn, self._t, store.dialect_name, store.partitioned, where, rule, expected
            )

    def _index_numbers(self, chunk: Sequence[StatusRecord]) -> None:
        """Add the chunk's new numbers to the index; a number held by another record conflicts."""
        wanted = {num: rec.id for rec in chunk for num in _rows.record_numbers(rec)}
        if not wanted:
            return
        t = self._t.record_numbers
        held: dict[str, str] = {}
        with self._by_index():
            for part in chunked(list(wanted), _IN_CHUNK):
                q = sa.select(t.c.number, t.c.record_id).where(t.c.number.in_(part))
                held.update({k: v for k, v in self._conn.execute(q)})  # noqa: C416 (Row has .keys())
        for num, rid in wanted.items():
            if held.get(num, rid) != rid:
                msg = f"number {mask(num)} belongs to another record / 学籍号已属于其他学籍"
                raise ConflictError(msg)
        new = [{"number": n, "record_id": r} for n, r in wanted.items() if n not in held]
        if new:
            self._conn.execute(t.insert(), new)

    def find_by_number(self, number: str) -> StatusRecord | None:
        """The record holding (or having held) ``number``: national, temporary or former."""
        t = self._t
        q = (
            sa.select(t.records)
            .join(t.record_numbers, t.record_numbers.c.record_id == t.records.c.id)
            .where(t.record_numbers.c.number == number)
        )
        with self._read("find record by number"):
            row = self._conn.execute(q).mappings().first()
        return _rows.record_from_row(row) if row is not None else None

    def for_child(self, child_id: str) -> list[StatusRecord]:
        """Every record of a child, by id."""
        t = self._t.records
        q = sa.select(t).where(t.c.child_id == child_id).order_by(t.c.id)
        with self._read("records of child"):
            return [_rows.record_from_row(r) for r in self._conn.execute(q).mappings()]

    def for_children(self, child_ids: Sequence[str]) -> dict[str, list[StatusRecord]]:
        """Bulk :meth:`for_child` (``child_id IN (…)`` per 500 ids): child id → its records by
        id; children without records left out.

        >>> from studentstatus.domain.enums import Grade, State
        >>> store = SqlStore("sqlite://", create=True)
        >>> with store.unit_of_work() as uow:
        ...     for rid in ("r2", "r1"):
        ...         uow.records.add(StatusRecord(rid, "c1", "1111000001", "110105",
        ...                                      State.ACTIVE, Grade.JUNIOR, date(2023, 9, 1)))
        ...     found = uow.records.for_children(["c1", "c-none"])
        >>> {cid: [r.id for r in recs] for cid, recs in found.items()}
        {'c1': ['r1', 'r2']}
        >>> store.close()
        """
        with self._read("records of children"):
            rows = self._rows_by(self._t.records, ["child_id"], ((c,) for c in child_ids))
        found = {k: [_rows.record_from_row(r) for r in rs] for k, rs in rows.items()}
        out: dict[str, list[StatusRecord]] = {}
        for child_id in dict.fromkeys(child_ids):
            hit = found.get((self._eq(child_id),))
            if hit:
                out[child_id] = list(hit)
        return out

    def search(
        self, query: RecordQuery, *, limit: int, after: str | None = None
    ) -> list[tuple[StatusRecord, Child]]:
        """Portal search (:class:`~studentstatus.ports.RecordSearch`): ONE ``SELECT``.

        Records joined with their children, the filters in the ``WHERE`` clause,
        ``records.id > :after ORDER BY records.id LIMIT :limit``.  Each shape has
        an index to start from: ``number`` the ``record_numbers`` primary key,
        ``document`` and ``name`` (+ birth date) the children's document and
        identity indexes (``name`` is the identity index's leading column), a
        kindergarten its ``(kindergarten_code, id)`` index, a county its
        ``(region_code, id)`` index (with a state: ``(region_code, state, id)``),
        wider regions the primary key in id order (``tests/adapters/
        test_search_plans.py`` checks the PostgreSQL plans).

        >>> from studentstatus.domain.enums import Grade, Sex, State
        >>> store = SqlStore("sqlite://", create=True)
        >>> with store.unit_of_work() as uow:
        ...     uow.children.add(Child("c1", "王小明", Sex.M, date(2020, 3, 15)))
        ...     uow.records.add(StatusRecord("r1", "c1", "1111000001", "110105", State.ACTIVE,
        ...                                  Grade.JUNIOR, date(2023, 9, 1),
        ...                                  temp_number="L110105202003150042"))
        ...     hits = uow.records.search(RecordQuery(number="L110105202003150042"), limit=5)
        ...     none = uow.records.search(RecordQuery(region_prefix="4403"), limit=5)
        >>> [(r.id, c.name) for r, c in hits], none
        ([('r1', '王小明')], [])
        >>> store.close()
        """
        t = self._t
        r, c = t.records, t.children
        where = self._where(
            query.region_prefix,
            query.kindergarten_code,
            None if query.state is None else [query.state],
        )
        if query.grade is not None:
            where.append(r.c.grade == Grade(query.grade).value)
        if after is not None:
            where.append(r.c.id > after)
        if query.number is not None:
            n = t.record_numbers
            where.append(
                r.c.id
                == sa.select(n.c.record_id).where(n.c.number == query.number).scalar_subquery()
            )
        child_where: list[sa.ColumnElement[bool]] = []
        if query.document is not None:
            child_where.append(c.c.document_number == query.document)
        if query.name is not None:
            child_where.append(c.c.name == query.name)
        if query.birth_date is not None:
            child_where.append(c.c.birth_date == query.birth_date)
        child_cols = [col.label(f"c_{col.name}") for col in c.columns]
        q: sa.Select[Any]
        if child_where:  # the children's index finds the few candidates, records follow
            q = (
                sa.select(r, *child_cols)
                .join(c, c.c.id == r.c.child_id)
                .where(*where, *child_where)
                .order_by(r.c.id)
                .limit(limit)
            )
        else:  # the page of records first (in id order, from the scope's index), then children
            page = sa.select(r).where(*where).order_by(r.c.id).limit(limit).subquery("page")
            q = sa.select(page, *child_cols).join(c, c.c.id == page.c.child_id).order_by(page.c.id)
        names = [col.name for col in c.columns]
        out: list[tuple[StatusRecord, Child]] = []
        with self._read("search records"):
            for row in self._conn.execute(q).mappings():
                kid = _rows.child_from_row({k: row[f"c_{k}"] for k in names})
                out.append((_rows.record_from_row(row), kid))
        return out

    def _where(
        self,
        region_prefix: str,
        kindergarten_code: str | None,
        states: Iterable[State] | None,
    ) -> list[sa.ColumnElement[bool]]:
        t = self._t.records
        where = self._province_filter(t.c.region_code, region_prefix)
        if kindergarten_code is not None:
            where.append(t.c.kindergarten_code == kindergarten_code)
        if states is not None:
            where.append(t.c.state.in_([State(s).value for s in states]))
        return where

    def iter(
        self,
        *,
        region_prefix: str = "",
        kindergarten_code: str | None = None,
        states: Iterable[State] | None = None,
        batch_size: int = 1000,
    ) -> Iterator[StatusRecord]:
        """Stream records by id, filtered, in keyset-paginated batches."""
        where = self._where(region_prefix, kindergarten_code, states)
        return self._keyset(self._t.records, ["id"], where, _rows.record_from_row, batch_size)

    def count(
        self,
        *,
        region_prefix: str = "",
        kindergarten_code: str | None = None,
        states: Iterable[State] | None = None,
    ) -> int:
        """How many records ``iter`` would yield."""
        t = self._t.records
        where = self._where(region_prefix, kindergarten_code, states)
        q = sa.select(sa.func.count()).select_from(t).where(*where)
        with self._read("count records"):
            return int(self._conn.execute(q).scalar_one())


class SqlChangeLog(_Repo):
    """The append-only change log."""

    def append(self, change: StatusChange) -> None:
        """Append one event; ConflictError if (record_id, seq) exists."""
        self.append_many([change])

    def append_many(self, changes: Iterable[StatusChange]) -> int:
        """Append many events (COPY on PostgreSQL for large batches); returns the count."""
        with self._write("append changes"):
            rows = self._with_record_province(map(_rows.change_to_row, changes))
            if self._partitioned:
                rows = self._checked(self._t.change_log, ["record_id", "seq"], rows)
            return self._insert_many(self._t.change_log, rows, copy=True)

    def for_record(self, record_id: str) -> list[StatusChange]:
        """A record's events ordered by seq."""
        t = self._t.change_log
        q = sa.select(t).where(t.c.record_id == record_id).order_by(t.c.seq)
        with self._read("change log of record"):
            return [_rows.change_from_row(r) for r in self._conn.execute(q).mappings()]

    def iter(
        self,
        *,
        kinds: Iterable[ChangeKind] | None = None,
        effective_from: date | None = None,
        effective_to: date | None = None,
        record_ids: Sequence[str] | None = None,
    ) -> Iterator[StatusChange]:
        """Events filtered by kind and effective date (inclusive), by (record_id, seq)."""
        t = self._t.change_log
        where: list[sa.ColumnElement[bool]] = []
        if kinds is not None:
            where.append(t.c.kind.in_([ChangeKind(k).value for k in kinds]))
        if effective_from is not None:
            where.append(t.c.effective_date >= effective_from)
        if effective_to is not None:
            where.append(t.c.effective_date <= effective_to)
        if record_ids is not None:
            ids = list(dict.fromkeys(record_ids))
            if not ids:
                return iter(())
            if len(ids) > _IN_CHUNK:
                return self._iter_many_ids(ids, where)
            where.append(t.c.record_id.in_(ids))
        return self._keyset(t, ["record_id", "seq"], where, _rows.change_from_row)

    def _iter_many_ids(
        self, ids: list[str], where: list[sa.ColumnElement[bool]]
    ) -> Iterator[StatusChange]:
        t = self._t.change_log
        for part in chunked(sorted(ids), _IN_CHUNK):
            yield from self._keyset(
                t, ["record_id", "seq"], [*where, t.c.record_id.in_(part)], _rows.change_from_row
            )


class SqlRequests(_Repo):
    """Change requests; the database holds "one OPEN request per record"."""

    def add(self, request: ChangeRequest) -> None:
        """Insert; ConflictError if the id exists or the record has an open request."""
        with self._write("add change request"):
            self._conn.execute(self._t.change_requests.insert(), [_rows.request_to_row(request)])

    def get(self, request_id: str) -> ChangeRequest:
        """The request, or NotFoundError."""
        with self._read("get change request"):
            row = self._get_one(self._t.change_requests, "id", request_id)
        if row is None:
            raise _not_found("change request", request_id)
        return _rows.request_from_row(row)

    def update(self, request: ChangeRequest) -> ChangeRequest:
        """Optimistic update (also reopening conflicts with another open request)."""
        with self._write("update change request"):
            row = _rows.request_to_row(request)
            self._versioned_update(self._t.change_requests, "id", [row], "change request")
        return attrs.evolve(request, version=request.version + 1)

    def open_for_record(self, record_id: str) -> ChangeRequest | None:
        """The record's open request, if any."""
        with self._read("open request of record"):
            row = self._get_one(self._t.change_requests, "open_record_id", record_id)
        return _rows.request_from_row(row) if row is not None else None

    def iter(
        self, *, status: RequestStatus | None = None, applicant: str | None = None
    ) -> Iterator[ChangeRequest]:
        """Requests by id, optionally by status and applicant (index ``(applicant, id)``)."""
        t = self._t.change_requests
        where = [t.c.status == RequestStatus(status).value] if status is not None else []
        if applicant is not None:
            where.append(t.c.applicant == applicant)
        return self._keyset(t, ["id"], where, _rows.request_from_row)

    def overdue(self, before: date) -> Iterator[ChangeRequest]:
        """Open requests whose pending step was due before ``before``, by id: ``… WHERE
        pending_due < ?`` on the index ``(pending_due, id)`` (only open requests have one)."""
        t = self._t.change_requests
        return self._keyset(t, ["id"], [t.c.pending_due < before], _rows.request_from_row)

    def pending_for(
        self,
        role: Role | str,
        scope: str,
        *,
        due_before: date | None = None,
        after: str | None = None,
        limit: int | None = None,
    ) -> Iterator[ChangeRequest]:
        """An approval queue by id: ``… WHERE pending_role = ? AND pending_scope = ? [AND
        pending_due < ?] [AND id > ?] ORDER BY id``, pages of the index
        ``(pending_role, pending_scope, id)`` (the columns :func:`_rows.request_to_row` fills
        from :func:`~studentstatus.domain.approvals.pending_key`)."""
        t = self._t.change_requests
        where = [t.c.pending_role == Role(role).value, t.c.pending_scope == scope]
        if due_before is not None:
            where.append(t.c.pending_due < due_before)
        if after is not None:
            where.append(t.c.id > after)
        if limit is None:
            return self._keyset(t, ["id"], where, _rows.request_from_row)
        if limit <= 0:
            return iter(())
        rows = self._keyset(t, ["id"], where, _rows.request_from_row, min(limit, 1000))
        return itertools.islice(rows, limit)


class SqlProblems(_Repo):
    """Problem records (问题学籍)."""

    def add(self, problem: ProblemRecord) -> None:
        """Insert; ConflictError if the id exists."""
        self.add_many([problem])

    def add_many(self, problems: Iterable[ProblemRecord]) -> int:
        """Insert many; returns the count."""
        with self._write("add problems"):
            rows = self._with_province(map(_rows.problem_to_row, problems), "county_code")
            if self._partitioned:
                rows = self._checked(self._t.problems, ["id"], rows)
            return self._insert_many(self._t.problems, rows, copy=True)

    def get(self, problem_id: str) -> ProblemRecord:
        """The problem, or NotFoundError."""
        with self._read("get problem"):
            row = self._get_one(self._t.problems, "id", problem_id)
        if row is None:
            raise _not_found("problem", problem_id)
        return _rows.problem_from_row(row)

    def update(self, problem: ProblemRecord) -> ProblemRecord:
        """Optimistic update."""
        with self._write("update problem"):
            rows = self._with_province([_rows.problem_to_row(problem)], "county_code")
            self._versioned_update(self._t.problems, "id", list(rows), "problem")
        return attrs.evolve(problem, version=problem.version + 1)

    def update_many(self, problems: Sequence[ProblemRecord]) -> list[ProblemRecord]:
        """Optimistic bulk update (one executemany / UPDATE … FROM per chunk); any stale one →
        ConflictError and nothing written."""
        items = list(problems)
        if len({p.id for p in items}) != len(items):
            msg = "update_many: the same problem twice in one batch (the second would be stale)"
            raise ConflictError(msg)
        with self._write("update problems"):
            for chunk in chunked(items, self._ctx.store.chunk_size):
                rows = self._with_province(map(_rows.problem_to_row, chunk), "county_code")
                self._versioned_update(self._t.problems, "id", list(rows), "problem")
        return [attrs.evolve(p, version=p.version + 1) for p in items]

    def for_record(self, record_id: str) -> list[ProblemRecord]:
        """A record's problems by id."""
        t = self._t.problems
        q = sa.select(t).where(t.c.record_id == record_id).order_by(t.c.id)
        with self._read("problems of record"):
            return [_rows.problem_from_row(r) for r in self._conn.execute(q).mappings()]

    def for_records(
        self,
        record_ids: Sequence[str],
        *,
        statuses: Iterable[ProblemStatus] | None = None,
        kinds: Iterable[ProblemKind] | None = None,
    ) -> dict[str, list[ProblemRecord]]:
        """Bulk :meth:`for_record` (``record_id IN (…)`` in chunks), filtered by status and kind."""
        t = self._t.problems
        where: list[sa.ColumnElement[bool]] = []
        if statuses is not None:
            where.append(t.c.status.in_([ProblemStatus(s).value for s in statuses]))
        if kinds is not None:
            where.append(t.c.kind.in_([ProblemKind(k).value for k in kinds]))
        found: list[ProblemRecord] = []
        with self._read("problems of records"), self._by_index():
            for part in chunked(dict.fromkeys(record_ids), _IN_CHUNK):
                q = sa.select(t).where(t.c.record_id.in_(part), *where)
                found.extend(_rows.problem_from_row(r) for r in self._conn.execute(q).mappings())
        out: dict[str, list[ProblemRecord]] = {}
        for p in sorted(found, key=lambda p: p.id):
            out.setdefault(p.record_id, []).append(p)
        return out

    def iter(
        self,
        *,
        county_prefix: str = "",
        statuses: Iterable[ProblemStatus] | None = None,
        kinds: Iterable[ProblemKind] | None = None,
        kindergarten_code: str | None = None,
    ) -> Iterator[ProblemRecord]:
        """Problems by id, filtered; keyset pages of ``(county_code, id)`` for a county,
        ``(kindergarten_code, id)`` for a kindergarten."""
        t = self._t.problems
        where = self._province_filter(t.c.county_code, county_prefix)
        if kindergarten_code is not None:
            where.append(t.c.kindergarten_code == kindergarten_code)
        if statuses is not None:
            where.append(t.c.status.in_([ProblemStatus(s).value for s in statuses]))
        if kinds is not None:
            where.append(t.c.kind.in_([ProblemKind(k).value for k in kinds]))
        return self._keyset(t, ["id"], where, _rows.problem_from_row)


class SqlNumbers(_Repo):
    """Every number ever issued; uniqueness held by the primary key."""

    def claim(self, issued: IssuedNumber) -> None:
        """Bind a number to a record; ConflictError if the number was ever issued."""
        self.claim_many([issued])

    def claim_many(self, issued: Iterable[IssuedNumber]) -> int:
        """Bind many numbers; any taken one → ConflictError and nothing written."""
        with self._write("claim numbers"):
            return self._insert_many(
                self._t.issued_numbers, map(_rows.issued_to_row, issued), copy=True
            )

    def resolve(self, number: str) -> IssuedNumber | None:
        """Who holds (or held) ``number``."""
        with self._read("resolve number"):
            row = self._get_one(self._t.issued_numbers, "number", number)
        return _rows.issued_from_row(row) if row is not None else None

    def with_prefix(self, prefix: str) -> Iterator[str]:
        """Issued numbers starting with ``prefix``: a range of the primary key, streamed
        in pages.  The upper bound is the prefix with its last character's successor
        (``L110105`` → ``L110106``), which every collation orders after the prefix's
        numbers (a bound such as ``prefix + "~"`` is not: ``~`` sorts before digits
        under ICU and glibc locales); the ``LIKE`` guards the range."""
        t = self._t.issued_numbers
        upper = prefix[:-1] + chr(ord(prefix[-1]) + 1)
        where = [t.c.number >= prefix, t.c.number < upper, t.c.number.startswith(prefix)]
        return self._keyset(t, ["number"], where, lambda row: str(row["number"]), 5000)

    def next_sequence(self, region_code: str, birth_date: date) -> int:
        """Atomically allocate the next J-number sequence for (region, birth date).

        One statement where the database can: ``INSERT … ON CONFLICT DO UPDATE
        … RETURNING`` on PostgreSQL and SQLite, ``INSERT … ON DUPLICATE KEY
        UPDATE`` (the row stays locked until commit) then a read on MySQL/MariaDB.
        """
        t = self._t.j_sequences
        key = {"region_code": region_code, "birth_date": birth_date}
        with self._write("allocate J sequence"):
            if self._ctx.dialect in ("postgresql", "sqlite"):
                ins = (pg_dialect if self._ctx.dialect == "postgresql" else sqlite_dialect).insert(
                    t
                )
                stmt = (
                    ins.values(**key, last=1)
                    .on_conflict_do_update(
                        index_elements=[t.c.region_code, t.c.birth_date],
                        set_={"last": t.c["last"] + 1},
                    )
                    .returning(t.c["last"])
                )
                return int(self._conn.execute(stmt).scalar_one())
            if self._ctx.dialect in ("mysql", "mariadb"):
                mins = mysql_dialect.insert(t).values(**key, last=1)
                self._conn.execute(mins.on_duplicate_key_update(last=t.c["last"] + 1))
            else:  # pragma: no cover - other dialects: lock, then insert or increment
                cur = self._conn.execute(
                    sa.select(t.c["last"])
                    .where(t.c.region_code == region_code, t.c.birth_date == birth_date)
                    .with_for_update()
                ).scalar()
                if cur is None:
                    self._conn.execute(t.insert().values(**key, last=1))
                else:
                    self._conn.execute(
                        t.update()
                        .where(t.c.region_code == region_code, t.c.birth_date == birth_date)
                        .values(last=t.c["last"] + 1)
                    )
            q = sa.select(t.c["last"]).where(
                t.c.region_code == region_code, t.c.birth_date == birth_date
            )
            return int(self._conn.execute(q).scalar_one())

    def next_sequences(self, keys: Sequence[tuple[str, date]]) -> list[int]:
        """:meth:`next_sequence` for each (region, birth date) in order, in few statements.

        PostgreSQL and SQLite: one multi-row ``INSERT … ON CONFLICT DO UPDATE SET
        last = last + excluded.last RETURNING`` per 500 distinct keys, each key
        advanced by its count; the values are handed out in order.  Other
        dialects call :meth:`next_sequence` per key.
        """
        keys = list(keys)
        if self._ctx.dialect not in ("postgresql", "sqlite"):
            return [self.next_sequence(region, birth) for region, birth in keys]
        counts: dict[tuple[str, date], int] = {}
        for key in keys:
            counts[key] = counts.get(key, 0) + 1
        t = self._t.j_sequences
        dialect = pg_dialect if self._ctx.dialect == "postgresql" else sqlite_dialect
        last: dict[tuple[str, date], int] = {}
        with self._write("allocate J sequences"):
            for part in chunked(counts.items(), _IN_CHUNK):
                ins = dialect.insert(t).values(
                    [{"region_code": r, "birth_date": b, "last": c} for (r, b), c in part]
                )
                stmt = ins.on_conflict_do_update(
                    index_elements=[t.c.region_code, t.c.birth_date],
                    set_={"last": t.c["last"] + ins.excluded["last"]},
                ).returning(t.c.region_code, t.c.birth_date, t.c["last"])
                for region, birth, value in self._conn.execute(stmt):
                    last[(region, birth)] = int(value)
        # each key's block is (last - count, last]: hand it out in the order asked
        nxt = {key: last[key] - count for key, count in counts.items()}
        out: list[int] = []
        for key in keys:
            nxt[key] += 1
            out.append(nxt[key])
        return out

    def for_record(self, record_id: str) -> list[IssuedNumber]:
        """Numbers bound to a record, by issue time (then number)."""
        t = self._t.issued_numbers
        q = sa.select(t).where(t.c.record_id == record_id).order_by(t.c.issued_at, t.c.number)
        with self._read("numbers of record"):
            return [_rows.issued_from_row(r) for r in self._conn.execute(q).mappings()]


class SqlRoster(_Repo):
    """Children of unlicensed kindergartens."""

    def add(self, entry: RosterEntry) -> None:
        """Insert; ConflictError if the id exists."""
        with self._write("add roster entry"):
            self._conn.execute(self._t.roster.insert(), [_rows.roster_to_row(entry)])

    def iter(self, *, county_prefix: str = "") -> Iterator[RosterEntry]:
        """Entries by id."""
        t = self._t.roster
        where = [region_prefix_filter(t.c.county_code, county_prefix)] if county_prefix else []
        return self._keyset(t, ["id"], where, _rows.roster_from_row)


class SqlAttendance(_Repo):
    """Append-only attendance; the row id orders corrections."""

    def add_many(self, entries: Iterable[AttendanceEntry]) -> int:
        """Append entries."""
        with self._write("add attendance"):
            rows = self._with_record_province(map(_rows.attendance_to_row, entries))
            return self._insert_many(self._t.attendance, rows)

    def for_record(
        self, record_id: str, *, start: date | None = None, end: date | None = None
    ) -> list[AttendanceEntry]:
        """Current (latest) entry per day for a record, by day."""
        t = self._t.attendance
        q = sa.select(t).where(t.c.record_id == record_id)
        if start is not None:
            q = q.where(t.c.day >= start)
        if end is not None:
            q = q.where(t.c.day <= end)
        q = q.order_by(t.c.day, t.c.id)
        latest: dict[date, AttendanceEntry] = {}
        with self._read("attendance of record"):
            for row in self._conn.execute(q).mappings():
                latest[row["day"]] = _rows.attendance_from_row(row)
        return list(latest.values())

    def for_records(
        self, record_ids: Sequence[str], *, start: date | None = None, end: date | None = None
    ) -> dict[str, list[AttendanceEntry]]:
        """Bulk :meth:`for_record` (monitoring): one query per chunk of ids, not per record."""
        t = self._t.attendance
        out: dict[str, list[AttendanceEntry]] = {}
        for part in chunked(dict.fromkeys(record_ids), _IN_CHUNK):
            q = sa.select(t).where(t.c.record_id.in_(part))
            if start is not None:
                q = q.where(t.c.day >= start)
            if end is not None:
                q = q.where(t.c.day <= end)
            q = q.order_by(t.c.record_id, t.c.day, t.c.id)
            latest: dict[tuple[str, date], AttendanceEntry] = {}
            with self._read("attendance of records"):
                for row in self._conn.execute(q).mappings():
                    latest[(row["record_id"], row["day"])] = _rows.attendance_from_row(row)
            for (rid, _day), entry in latest.items():
                out.setdefault(rid, []).append(entry)
        return out

    def history(self, record_id: str, day: date) -> list[AttendanceEntry]:
        """Every entry recorded for (record, day), oldest first."""
        t = self._t.attendance
        q = sa.select(t).where(t.c.record_id == record_id, t.c.day == day).order_by(t.c.id)
        with self._read("attendance history"):
            return [_rows.attendance_from_row(r) for r in self._conn.execute(q).mappings()]


class SqlAudit(_Repo):
    """Append-only audit entries by ``(chain, seq)``, and each chain's head
    (:class:`~studentstatus.ports.AuditLog`).

    Every append first locks the head rows of its chains, in chain order, creating
    missing ones — PostgreSQL and SQLite ``INSERT … ON CONFLICT DO NOTHING``,
    MySQL/MariaDB ``INSERT … ON DUPLICATE KEY UPDATE`` (an exclusive row lock at once:
    ``INSERT IGNORE`` takes a shared one, which two writers of one chain would then
    both try to upgrade, a deadlock) — then reads them with ``SELECT … FOR UPDATE``
    (SQLite's ``BEGIN IMMEDIATE`` already serialises writers).  The entries are
    written and the heads moved in the same savepoint.  So two units writing one
    chain take turns — the second waits for the first to commit, then seals after
    it (:meth:`seal_and_append`) — and units writing different chains never touch
    the same row.

    >>> from datetime import UTC
    >>> store = SqlStore("sqlite://", create=True)
    >>> t = datetime(2025, 9, 1, 8, 0, tzinfo=UTC)
    >>> with store.unit_of_work() as uow:
    ...     uow.audit.seal_and_append([("county:110105", "approve", "record:r1", "", {}, {}),
    ...                                ("ministry", "export", "all", "", {}, {}),
    ...                                ("county:110105", "approve", "record:r2", "", {}, {})],
    ...                               at=t)
    ...     uow.commit()
    ...     [(e.chain, e.seq) for e in uow.audit.iter()], sorted(uow.audit.heads())
    3
    ([('county:110105', 1), ('county:110105', 2), ('ministry', 1)], ['county:110105', 'ministry'])
    >>> store.close()
    """

    @property
    def key(self) -> AuditKey | None:
        """The store's audit key: :meth:`seal_and_append` seals under it (``None``: unkeyed)."""
        return self._ctx.store.audit_key

    def append(self, entry: AuditEntry) -> None:
        """Append; ConflictError if ``(chain, seq)`` exists."""
        self.append_many([entry])

    def append_many(self, entries: Iterable[AuditEntry]) -> int:
        """Append many (of any chains); ConflictError if a ``(chain, seq)`` exists."""
        items = entries if isinstance(entries, list) else list(entries)
        if not items:
            return 0
        ends: dict[str, ChainHead] = {}
        for e in items:
            end = ends.get(e.chain)
            if end is None or end[0] < e.seq:
                ends[e.chain] = (e.seq, e.hash)
        with self._write("append audit"):
            self._lock_heads(sorted(ends))
            n = self._insert_many(self._t.audit_log, map(_rows.audit_to_row, items), copy=True)
            self._move_heads(ends)
        return n

    def seal_and_append(self, events: Iterable[AuditEventFields], *, at: datetime) -> int:
        """Seal ``events`` after the heads of their chains and append them
        (:class:`~studentstatus.ports.SealingAuditLog`).

        The events are grouped by chain (:func:`~studentstatus.domain.audit.group_by_chain`)
        and each group sealed after its chain's head, read under the head's lock
        (see the class), under the store's key when it has one.  On PostgreSQL a large
        batch goes straight from the sealed
        fields (:func:`~studentstatus.domain.audit.seal_rows`) to the lines of one
        ``COPY`` (:func:`~studentstatus.adapters.sql.copy.copy_audit`): the rows
        :meth:`append_many` would write, without an entry object, a row dict and
        a formatter call per row.  Other databases and small batches insert the
        rows in chunks.
        """
        groups = group_by_chain(events)
        if not groups:
            return 0
        total = sum(map(len, groups.values()))
        ends: dict[str, ChainHead] = {}
        key = self.key

        def sealed(
            chain: str, group: list[AuditEventFields], head: ChainHead
        ) -> Iterator[SealedRow]:
            row: SealedRow | None = None
            for row in seal_rows(head, at, group, chain=chain, key=key):
                yield row
            if row is not None:
                ends[chain] = (row[0], row[8])

        with self._write("append audit"):
            heads = self._lock_heads(sorted(groups))
            rows = itertools.chain.from_iterable(
                sealed(chain, group, heads.get(chain, (0, ""))) for chain, group in groups.items()
            )
            t = self._t.audit_log
            if self._ctx.dialect == "postgresql" and total >= self._ctx.store.copy_threshold:
                n = copy_audit(self._conn, t, at, rows)
            else:
                n = self._insert_many(t, (_sealed_audit_row(at, r) for r in rows), copy=True)
            self._move_heads(ends)
        return n

    def _lock_heads(self, chains: Sequence[str]) -> dict[str, ChainHead]:
        """Lock the head rows of ``chains`` (sorted), creating missing ones at ``(0, "")``;
        their ``(seq, hash)`` as the writers before committed them (see the class)."""
        t = self._t.audit_heads
        dialect = self._ctx.dialect
        out: dict[str, ChainHead] = {}
        for part in chunked(chains, _IN_CHUNK):
            rows = [{"chain": c, "seq": 0, "hash": ""} for c in part]
            if dialect in ("postgresql", "sqlite"):
                ins = (pg_dialect if dialect == "postgresql" else sqlite_dialect).insert(t)
                self._conn.execute(
                    ins.values(rows).on_conflict_do_nothing(index_elements=[t.c.chain])
                )
            elif dialect in ("mysql", "mariadb"):
                ins_my = mysql_dialect.insert(t).values(rows)
                self._conn.execute(ins_my.on_duplicate_key_update(seq=t.c.seq))
            else:  # pragma: no cover - other dialects: insert what is missing, then lock
                q_have = sa.select(t.c.chain).where(t.c.chain.in_(part))
                have = set(self._conn.execute(q_have).scalars())
                missing = [r for r in rows if r["chain"] not in have]
                if missing:
                    self._conn.execute(t.insert(), missing)
            q = sa.select(t.c.chain, t.c.seq, t.c.hash).where(t.c.chain.in_(part))
            if dialect != "sqlite":
                q = q.order_by(t.c.chain).with_for_update()
            out.update((c, (int(seq), h)) for c, seq, h in self._conn.execute(q))
        return out

    def _move_heads(self, ends: Mapping[str, ChainHead]) -> None:
        """Move each chain's head forward to ``ends[chain]`` (never back)."""
        if not ends:
            return
        t = self._t.audit_heads
        stmt = (
            t.update()
            .where(t.c.chain == sa.bindparam("b_chain"), t.c.seq < sa.bindparam("b_seq"))
            .values(seq=sa.bindparam("b_seq"), hash=sa.bindparam("b_hash"))
        )
        self._conn.execute(
            stmt, [{"b_chain": c, "b_seq": s, "b_hash": h} for c, (s, h) in ends.items()]
        )

    def last(self, chain: str = "") -> AuditEntry | None:
        """The entry of ``chain`` with the highest seq."""
        t = self._t.audit_log
        q = sa.select(t).where(t.c.chain == chain).order_by(t.c.seq.desc()).limit(1)
        with self._read("last audit entry"):
            row = self._conn.execute(q).mappings().first()
        return _rows.audit_from_row(row) if row is not None else None

    def iter(self, chain: str | None = None) -> Iterator[AuditEntry]:
        """Every entry by ``(chain, seq)`` (chains in the database's order of their
        names), or only ``chain``'s entries by seq."""
        t = self._t.audit_log
        if chain is None:
            return self._keyset(t, ["chain", "seq"], [], _rows.audit_from_row)
        return self._keyset(t, ["seq"], [t.c.chain == chain], _rows.audit_from_row)

    def heads(self) -> dict[str, ChainHead]:
        """Each chain's stored head: chain → ``(seq, hash)``."""
        t = self._t.audit_heads
        q = sa.select(t.c.chain, t.c.seq, t.c.hash).where(t.c.seq > 0)
        with self._read("audit heads"):
            return {c: (int(seq), h) for c, seq, h in self._conn.execute(q)}


def _sealed_audit_row(at: datetime, row: SealedRow) -> dict[str, Any]:
    """``audit_to_row`` of the entry a sealed row stands for (without building it)."""
    seq, operator, action, subject, reason, before, after, prev_hash, digest, chain = row
    return {
        "seq": seq,
        "at": at,
        "operator": operator,
        "action": action,
        "subject": subject,
        "reason": reason,
        "before": before,
        "after": after,
        "prev_hash": prev_hash,
        "hash": digest,
        "chain": chain,
    }


class SqlClaims(_Repo):
    """Identity claims (:class:`~studentstatus.ports.IdentityClaims`): one row per key.

    One upsert per chunk of sorted keys adds the claims and locks the rows until the
    transaction ends (PostgreSQL and SQLite: ``INSERT … ON CONFLICT DO UPDATE …
    RETURNING``; MySQL/MariaDB: ``INSERT … ON DUPLICATE KEY UPDATE`` and a read of the
    rows just locked).  A second unit claiming a key waits for the first to end; since
    units run under READ COMMITTED (see :class:`SqlUnitOfWork`), what it reads next
    includes what the first committed.

    >>> store = SqlStore("sqlite://", create=True)
    >>> with store.unit_of_work() as uow:
    ...     uow.claims.claim(["b", "a", "b"]), uow.claims.claim(["b", "c"])
    ({'a': 0, 'b': 0}, {'b': 2, 'c': 0})
    >>> store.close()
    """

    def claim(self, keys: Sequence[str]) -> dict[str, int]:
        added: dict[str, int] = {}
        for key in sorted(keys):
            added[key] = added.get(key, 0) + 1
        out: dict[str, int] = {}
        items = list(added.items())
        with self._write("claim identity keys"):
            for chunk in chunked(items, _IN_CHUNK):
                now = self._upsert(chunk)
                for k, n in chunk:
                    out[k] = now[k] - n
        return out

    def _upsert(self, chunk: Sequence[tuple[str, int]]) -> dict[str, int]:
        """Add ``(key, claims)`` rows (keys sorted and distinct); the counts after.

        Driver-level SQL made once per chunk size: a statement object with one VALUES
        row per key would be compiled again for every chunk."""
        dialect = self._ctx.dialect
        sql = self._ctx.store._claim_sql.get((dialect, len(chunk)))
        if sql is None:
            prep = self._ctx.store.engine.dialect.identifier_preparer
            table = prep.format_table(self._t.identity_claims)
            if dialect == "postgresql":
                sql = (
                    f"INSERT INTO {table} (claim_key, claims) "
                    "SELECT * FROM unnest(%s::varchar[], %s::integer[]) "
                    f"ON CONFLICT (claim_key) DO UPDATE SET claims = {table}.claims "
                    "+ EXCLUDED.claims RETURNING claim_key, claims"
                )
            else:
                mark = _DRIVER_INSERT[dialect]
                rows = ", ".join([f"({mark}, {mark})"] * len(chunk))
                sql = f"INSERT INTO {table} (claim_key, claims) VALUES {rows} "
                if dialect == "sqlite":
                    sql += (
                        "ON CONFLICT (claim_key) DO UPDATE SET claims = claims + "
                        "excluded.claims RETURNING claim_key, claims"
                    )
                else:
                    sql += "ON DUPLICATE KEY UPDATE claims = claims + VALUES(claims)"
            self._ctx.store._claim_sql[(dialect, len(chunk))] = sql
        conn = self._conn
        if dialect == "postgresql":
            keys = [k for k, _n in chunk]
            result = conn.exec_driver_sql(sql, (keys, [n for _k, n in chunk]))
            return dict(result.all())
        flat = tuple(v for pair in chunk for v in pair)
        if dialect == "sqlite":
            return dict(conn.exec_driver_sql(sql, flat).all())
        conn.exec_driver_sql(sql, flat)  # MySQL/MariaDB: then read the rows it locked
        t = self._t.identity_claims
        q = sa.select(t.c.claim_key, t.c.claims).where(t.c.claim_key.in_([k for k, _ in chunk]))
        return dict(conn.execute(q).all())


class SqlCases(_Repo):
    """Dropout-control cases (monitoring): indexed columns plus the case as JSON."""

    @staticmethod
    def _to_row(case: DropoutCase) -> dict[str, Any]:
        from studentstatus.serialization import to_dict

        return {
            "id": case.id,
            "record_id": case.record_id,
            "county_code": case.county_code,
            "kindergarten_code": case.kindergarten_code,
            "status": case.status.value,
            "data": to_dict(case),
            "version": case.version,
        }

    @staticmethod
    def _from_row(row: Mapping[Any, Any]) -> DropoutCase:
        from studentstatus.serialization import from_dict

        case = from_dict(DropoutCase, row["data"])
        return attrs.evolve(case, version=row["version"])

    def add(self, case: DropoutCase) -> None:
        """Insert; ConflictError if the id exists."""
        self.add_many([case])

    def add_many(self, cases: Iterable[DropoutCase]) -> int:
        """Insert many."""
        with self._write("add cases"):
            return self._insert_many(self._t.cases, map(self._to_row, cases))

    def get(self, case_id: str) -> DropoutCase:
        """The case, or NotFoundError."""
        with self._read("get case"):
            row = self._get_one(self._t.cases, "id", case_id)
        if row is None:
            raise _not_found("dropout case", case_id)
        return self._from_row(row)

    def update(self, case: DropoutCase) -> DropoutCase:
        """Optimistic update."""
        return self.update_many([case])[0]

    def update_many(self, cases: Sequence[DropoutCase]) -> list[DropoutCase]:
        """Optimistic update of many; any stale one → ConflictError and nothing written."""
        items = list(cases)
        out = [attrs.evolve(c, version=c.version + 1) for c in items]
        rows = [self._to_row(c) | {"version": c.version} for c in items]
        for row, new in zip(rows, out):
            row["data"] = self._to_row(new)["data"]
        with self._write("update cases"):
            self._versioned_update(self._t.cases, "id", rows, "case")
        return out

    def for_record(self, record_id: str) -> list[DropoutCase]:
        """A record's cases by id."""
        t = self._t.cases
        q = sa.select(t).where(t.c.record_id == record_id).order_by(t.c.id)
        with self._read("cases of record"):
            return [self._from_row(r) for r in self._conn.execute(q).mappings()]

    def iter(
        self, *, county_prefix: str = "", statuses: Iterable[CaseStatus] | None = None
    ) -> Iterator[DropoutCase]:
        """Cases by id, filtered."""
        t = self._t.cases
        where: list[sa.ColumnElement[bool]] = []
        if county_prefix:
            where.append(region_prefix_filter(t.c.county_code, county_prefix))
        if statuses is not None:
            where.append(t.c.status.in_([st.value for st in statuses]))
        return self._keyset(t, ["id"], where, self._from_row)
