"""Host-provided Engine and Connection: our writes join the host's transaction.

The contract (documented in ``studentstatus.adapters.sql.store`` and
``docs/how-to/postgresql.md``):

* ``SqlStore(connection)``: every unit of work is a SAVEPOINT on the host's
  connection.  ``uow.commit()`` releases it — the writes become part of the
  host's transaction and are visible to other connections only when the host
  commits; if the host rolls back, they are gone.  ``uow.rollback()`` and
  leaving the block without commit roll back to the savepoint: the host's own
  earlier writes stay.  The library never commits or rolls back the host's
  outer transaction, and a ConflictError inside a unit does not poison it.
* ``SqlStore(engine)``: units use the host's pool; ``store.close()`` does not
  dispose the host's engine.

SQLite needs SQLAlchemy's documented pysqlite recipe on the host engine for
SAVEPOINTs to work (``isolation_level=None`` + emit ``BEGIN``); the test does so.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from studentstatus.adapters.sql import SqlStore
from studentstatus.domain.enums import Grade, State
from studentstatus.domain.model import StatusRecord
from studentstatus.errors import ConflictError


def _rec(rid: str) -> StatusRecord:
    return StatusRecord(rid, "c1", "1111000001", "110105", State.PENDING, Grade.JUNIOR,
                        date(2023, 9, 1))  # fmt: skip


def _sqlite_engine(path: Path) -> sa.Engine:
    engine = sa.create_engine(f"sqlite:///{path}")

    @sa.event.listens_for(engine, "connect")
    def _connect(dbapi_conn: Any, _rec: Any) -> None:
        dbapi_conn.isolation_level = None

    @sa.event.listens_for(engine, "begin")
    def _begin(conn: sa.Connection) -> None:
        conn.exec_driver_sql("BEGIN")

    return engine


@pytest.fixture(params=["sqlite", "postgresql", "mysql"])
def host(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[sa.Engine, str]]:
    """The host's engine and a table prefix; the host's and our tables exist."""
    if request.param == "sqlite":
        engine = _sqlite_engine(tmp_path / "host.db")
    else:
        url = request.getfixturevalue(
            "postgres_url" if request.param == "postgresql" else "mysql_url"
        )
        engine = sa.create_engine(url)
    prefix = f"h{uuid.uuid4().hex[:8]}_"
    md = sa.MetaData()
    sa.Table(f"{prefix}host_orders", md, sa.Column("id", sa.Integer, primary_key=True))
    store = SqlStore(engine, metadata=md, prefix=prefix)
    md.create_all(engine)
    try:
        yield engine, prefix
    finally:
        store.drop_schema()
        md.drop_all(engine)
        store.close()
        engine.dispose()


def _orders(engine: sa.Engine, prefix: str) -> sa.Table:
    return sa.Table(f"{prefix}host_orders", sa.MetaData(), autoload_with=engine)


def _visible(engine: sa.Engine, prefix: str) -> tuple[list[int], list[str]]:
    """What another connection sees: the host's rows and our record ids."""
    with engine.connect() as other:
        orders = [r[0] for r in other.execute(sa.text(f"SELECT id FROM {prefix}host_orders"))]
        recs = [r[0] for r in other.execute(sa.text(f"SELECT id FROM {prefix}records ORDER BY id"))]
    return orders, recs


def test_committed_unit_joins_the_host_transaction(host: tuple[sa.Engine, str]) -> None:
    """uow.commit() releases the savepoint only: nothing is visible until the host commits."""
    engine, prefix = host
    orders = _orders(engine, prefix)
    with engine.connect() as conn:
        conn.begin()
        conn.execute(orders.insert().values(id=1))
        store = SqlStore(conn, prefix=prefix)
        with store.unit_of_work() as uow:
            uow.records.add(_rec("r1"))
            uow.commit()
        assert conn.in_transaction()
        if engine.dialect.name != "sqlite":  # SQLite: the host holds the only write lock
            assert _visible(engine, prefix) == ([], [])
        with store.unit_of_work() as uow:  # the host's connection sees its own work
            assert uow.records.get("r1").id == "r1"
        conn.commit()
    assert _visible(engine, prefix) == ([1], ["r1"])


def test_host_rollback_discards_our_committed_unit(host: tuple[sa.Engine, str]) -> None:
    """The host rolls back after our unit committed: both its rows and ours are gone."""
    engine, prefix = host
    orders = _orders(engine, prefix)
    with engine.connect() as conn:
        conn.begin()
        conn.execute(orders.insert().values(id=1))
        with SqlStore(conn, prefix=prefix).unit_of_work() as uow:
            uow.records.add(_rec("r1"))
            uow.commit()
        conn.rollback()
    assert _visible(engine, prefix) == ([], [])


def test_unit_rollback_keeps_the_host_writes(host: tuple[sa.Engine, str]) -> None:
    """Leaving a unit without commit rolls back to its savepoint; the host's rows stay."""
    engine, prefix = host
    orders = _orders(engine, prefix)
    with engine.connect() as conn:
        conn.begin()
        conn.execute(orders.insert().values(id=1))
        store = SqlStore(conn, prefix=prefix)
        with store.unit_of_work() as uow:
            uow.records.add(_rec("r1"))
        with store.unit_of_work() as uow:
            uow.records.add(_rec("r2"))
            uow.rollback()
            uow.records.add(_rec("r3"))
            uow.commit()
        conn.execute(orders.insert().values(id=2))
        conn.commit()
    assert _visible(engine, prefix) == ([1, 2], ["r3"])


def test_conflict_inside_a_unit_does_not_poison_the_host(host: tuple[sa.Engine, str]) -> None:
    """A duplicate key inside our unit (PostgreSQL aborts the statement's transaction
    without a savepoint) leaves the host's transaction usable."""
    engine, prefix = host
    orders = _orders(engine, prefix)
    with engine.connect() as conn:
        conn.begin()
        store = SqlStore(conn, prefix=prefix)
        with store.unit_of_work() as uow:
            uow.records.add(_rec("r1"))
            with pytest.raises(ConflictError):
                uow.records.add(_rec("r1"))
            uow.records.add(_rec("r2"))
            uow.commit()
        conn.execute(orders.insert().values(id=7))
        conn.commit()
    assert _visible(engine, prefix) == ([7], ["r1", "r2"])


def test_host_engine_is_not_disposed(host: tuple[sa.Engine, str]) -> None:
    """SqlStore(engine): each unit has its own transaction; close() leaves the pool alone."""
    engine, prefix = host
    store = SqlStore(engine, prefix=prefix)
    with store.unit_of_work() as uow:
        uow.records.add(_rec("r1"))
        uow.commit()
    store.close()
    assert _visible(engine, prefix) == ([], ["r1"])  # the engine still works


def test_a_store_bound_per_request_behaves_like_one_made_on_the_connection(
    host: tuple[sa.Engine, str],
) -> None:
    """``app.bound(conn)``: the host's transaction decides, as with ``SqlStore(conn)``."""
    engine, prefix = host
    app = SqlStore(engine, prefix=prefix)
    orders = _orders(engine, prefix)
    with engine.connect() as conn:
        conn.begin()
        conn.execute(orders.insert().values(id=1))
        with app.bound(conn).unit_of_work() as uow:
            uow.records.add(_rec("r1"))
            uow.commit()
        conn.rollback()
    assert _visible(engine, prefix) == ([], [])
    with engine.connect() as conn:
        conn.begin()
        with app.bound(conn).unit_of_work() as uow:
            uow.records.add(_rec("r2"))
            uow.commit()
        conn.commit()
    assert _visible(engine, prefix) == ([], ["r2"])
    app.close()  # the host's engine stays usable
    assert _visible(engine, prefix) == ([], ["r2"])


def test_a_sqlite_connection_without_the_recipe_is_refused(tmp_path: Path) -> None:
    """Without the pysqlite recipe a release would commit: refused at store creation."""
    from studentstatus.errors import StorageError

    engine = sa.create_engine(f"sqlite:///{tmp_path / 'plain.db'}")
    with engine.connect() as conn:
        with pytest.raises(StorageError, match="sqlite_savepoints"):
            SqlStore(conn)
        with pytest.raises(StorageError, match="sqlite_savepoints"):
            SqlStore(_sqlite_engine(tmp_path / "ok.db")).bound(conn)
    engine.dispose()
