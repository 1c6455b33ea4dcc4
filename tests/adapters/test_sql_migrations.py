"""Alembic migrations: the migrated schema equals ``build_tables()`` on every backend.

``compare_metadata`` (Alembic autogenerate, types compared) must find no
difference between a database upgraded to ``head`` and the tables that
:func:`~studentstatus.adapters.sql.build_tables` defines, with a table prefix
(and on PostgreSQL also a schema).  Downgrading to ``base`` removes everything.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from click.testing import CliRunner

from studentstatus.adapters.sql import SqlStore, build_tables, current, upgrade
from studentstatus.adapters.sql.migrate import downgrade, head_revision


def _diff(engine: sa.Engine, prefix: str, schema: str | None) -> list[Any]:
    tables = build_tables(prefix=prefix, schema=schema)

    def include_name(name: str | None, type_: str, parent: Any) -> bool:
        if type_ == "schema":
            return name == schema
        if type_ == "table":
            return bool(name and name.startswith(prefix) and name != f"{prefix}alembic_version")
        return True

    with engine.connect() as conn:
        ctx = MigrationContext.configure(
            conn,
            opts={
                "compare_type": True,
                "include_name": include_name,
                "include_schemas": schema is not None,
            },
        )
        return list(compare_metadata(ctx, tables.metadata))


def _tables(engine: sa.Engine, prefix: str, schema: str | None = None) -> list[str]:
    with engine.connect() as conn:
        names = sa.inspect(conn).get_table_names(schema=schema)
    return sorted(n for n in names if n.startswith(prefix))


@pytest.fixture(params=["sqlite", "postgresql", "mysql"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[sa.Engine]:
    """An engine on each backend."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path}/m.db"
    else:
        url = request.getfixturevalue(
            "postgres_url" if request.param == "postgresql" else "mysql_url"
        )
    eng = sa.create_engine(url)
    yield eng
    eng.dispose()


def test_migrated_schema_equals_build_tables(engine: sa.Engine) -> None:
    """upgrade(head) then compare_metadata: no differences; downgrade(base) drops all."""
    prefix = f"m{uuid.uuid4().hex[:8]}_"
    assert current(engine, prefix=prefix) is None
    upgrade(engine, prefix=prefix)
    try:
        assert current(engine, prefix=prefix) == head_revision()
        assert _diff(engine, prefix, None) == []
        expected = sorted(t.name for t in build_tables(prefix=prefix).by_port.values())
        assert _tables(engine, prefix) == sorted([*expected, f"{prefix}alembic_version"])
        upgrade(engine, prefix=prefix)  # idempotent at head
        if engine.dialect.name == "mysql":  # table options are not compared by Alembic
            q = sa.text(
                "SELECT DISTINCT TABLE_COLLATION FROM information_schema.TABLES "
                "WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME IN :names"
            ).bindparams(sa.bindparam("names", expanding=True))
            with engine.connect() as conn:
                got = conn.execute(q, {"names": expected}).scalars().all()
            assert got == ["utf8mb4_bin"]
    finally:
        downgrade(engine, "base", prefix=prefix)
    assert _tables(engine, prefix) == [f"{prefix}alembic_version"]
    with engine.begin() as conn:
        conn.execute(sa.text(f"DROP TABLE {prefix}alembic_version"))


def test_drift_is_detected(tmp_path: Path) -> None:
    """The comparison is not vacuous: a column missing from the database is reported."""
    engine = sa.create_engine(f"sqlite:///{tmp_path}/d.db")
    upgrade(engine, prefix="x_")
    with engine.begin() as conn:
        conn.execute(sa.text("ALTER TABLE x_records DROP COLUMN skipped"))
    diff = _diff(engine, "x_", None)
    assert [d[0] for d in diff] == ["add_column"]
    assert diff[0][3].name == "skipped"
    engine.dispose()


def test_schema_option_on_postgres(postgres_url: str) -> None:
    """On PostgreSQL the tables and the version table go into the given schema."""
    schema = f"s{uuid.uuid4().hex[:8]}"
    engine = sa.create_engine(postgres_url)
    with engine.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    try:
        upgrade(engine, prefix="ss_", schema=schema)
        assert current(engine, prefix="ss_", schema=schema) == head_revision()
        assert _diff(engine, "ss_", schema) == []
        store = SqlStore(engine, prefix="ss_", schema=schema)
        with store.unit_of_work() as uow:
            assert uow.records.count() == 0
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        engine.dispose()


def test_upgrade_in_the_callers_transaction(tmp_path: Path) -> None:
    """With a Connection, the migration runs in the caller's transaction (caller decides)."""
    engine = sa.create_engine(f"sqlite:///{tmp_path}/t.db")
    with engine.connect() as conn:
        conn.begin()
        upgrade(conn)
        assert "records" in sa.inspect(conn).get_table_names()
        conn.rollback()
    assert current(engine) is None
    engine.dispose()


def test_cli_init_upgrade_current(tmp_path: Path) -> None:
    """studentstatus init / db upgrade / db current on a SQLite file."""
    from studentstatus.cli import main

    url = f"sqlite:///{tmp_path}/cli.db"
    runner = CliRunner()
    res = runner.invoke(main, ["db", "current", "--store", url])
    assert res.exit_code == 0, res.output
    assert "none" in res.output
    res = runner.invoke(main, ["init", "--store", url])
    assert res.exit_code == 0, res.output
    res = runner.invoke(main, ["db", "upgrade"], env={"STUDENTSTATUS_STORE": url})
    assert res.exit_code == 0, res.output
    res = runner.invoke(main, ["db", "current", "--store", url, "--json"])
    assert res.exit_code == 0, res.output
    assert f'"revision": "{head_revision()}"' in res.output
    res = runner.invoke(main, ["db", "current", "--store", "nosuchdriver://x"])
    assert res.exit_code != 0


def test_upgrade_adopts_a_store_created_with_create_all(tmp_path: Path) -> None:
    """SqlStore(create=True) then upgrade: stamped head, data kept, nothing created twice."""
    url = f"sqlite:///{tmp_path}/a.db"
    store = SqlStore(url, create=True)
    with store.unit_of_work() as uow:
        uow.numbers.next_sequence("110105", __import__("datetime").date(2020, 1, 1))
        uow.commit()
    store.close()
    upgrade(url)
    assert current(url) == head_revision()
    store = SqlStore(url)
    with store.unit_of_work() as uow:
        assert uow.numbers.next_sequence("110105", __import__("datetime").date(2020, 1, 1)) == 2
    store.close()
