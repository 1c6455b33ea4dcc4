"""Run the Alembic migrations shipped in the package, from code (no ``alembic.ini``).

The migrations live in ``studentstatus/adapters/sql/migrations``.  The table
``prefix`` and ``schema`` of :func:`~studentstatus.adapters.sql.tables.build_tables`
reach them through the Alembic :class:`~alembic.config.Config` attributes
(``prefix``, ``schema``, ``connection``); the version table is
``<prefix>alembic_version`` in that schema, so several installations (or the
host's own Alembic history) can share one database.

>>> cfg = alembic_config(prefix="ss_")
>>> cfg.get_main_option("script_location")
'studentstatus.adapters.sql:migrations'
>>> import sqlalchemy as sa
>>> engine = sa.create_engine("sqlite://")
>>> with engine.begin() as conn:
...     upgrade(conn)
...     current(conn) == head_revision()
True
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy.engine import Connection, Engine

from studentstatus.adapters.sql.errors import translating
from studentstatus.errors import StorageError

__all__ = [
    "alembic_config",
    "current",
    "downgrade",
    "head_revision",
    "migration_names",
    "upgrade",
]

SCRIPT_LOCATION = "studentstatus.adapters.sql:migrations"

Bind = str | sa.URL | Engine | Connection


def alembic_config(
    connection: Connection | None = None, *, prefix: str = "", schema: str | None = None
) -> Config:
    """An Alembic :class:`Config` built in code for the shipped migrations.

    >>> alembic_config(schema="app").attributes["schema"]
    'app'
    """
    cfg = Config()
    cfg.set_main_option("script_location", SCRIPT_LOCATION)
    cfg.attributes["prefix"] = prefix
    cfg.attributes["schema"] = schema
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def head_revision() -> str:
    """The newest revision shipped with the package.

    >>> head_revision() >= "0001"
    True
    """
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


def migration_names(attributes: dict[str, Any], x_args: dict[str, str]) -> tuple[str, str | None]:
    """``(prefix, schema)`` from Config attributes, else from ``alembic -x prefix=… -x schema=…``.

    >>> migration_names({"prefix": "a_"}, {"schema": "s"})
    ('a_', None)
    >>> migration_names({}, {"prefix": "b_", "schema": "s"})
    ('b_', 's')
    """
    if "prefix" in attributes:
        return str(attributes.get("prefix") or ""), attributes.get("schema")
    return x_args.get("prefix", ""), x_args.get("schema") or None


@contextmanager
def _connection(bind: Bind) -> Iterator[Connection]:
    if isinstance(bind, Connection):
        yield bind
        return
    if isinstance(bind, Engine):
        engine, owned = bind, False
    else:
        from studentstatus.adapters.sql.store import _prepare_url

        engine, owned = sa.create_engine(_prepare_url(bind)), True
    try:
        with engine.begin() as conn:
            yield conn
    finally:
        if owned:
            engine.dispose()


@contextmanager
def _host_alembic_kept() -> Iterator[None]:
    """Run our Alembic commands inside a host's own Alembic run (its ``env.py``).

    Alembic publishes the running environment as the module globals of ``alembic.context``
    and ``alembic.op``; a nested command replaces them and, when it ends, deletes them, so
    the host's run would fail as it ends (``KeyError: 'script'``).  The host's environment
    is put back when ours ends.
    """
    import alembic.context
    import alembic.op

    outer = [getattr(module, "_proxy", None) for module in (alembic.context, alembic.op)]
    try:
        yield
    finally:
        for proxy in outer:
            if proxy is not None:
                proxy._install_proxy()


def upgrade(
    bind: Bind,
    revision: str = "head",
    *,
    prefix: str = "",
    schema: str | None = None,
    partition_by_province: bool = False,
) -> None:
    """Upgrade the schema to ``revision`` (default: the latest).

    ``bind`` is a URL, an Engine (one transaction, committed) or a Connection
    (runs in the caller's transaction; the caller commits).  A database whose
    tables were made by ``SqlStore(create=True)`` (no version row) is first
    stamped ``head``, since ``create_all`` wrote the current schema.

    ``partition_by_province=True`` (PostgreSQL only; a
    :class:`~studentstatus.errors.StorageError` on other backends, before any
    change) then turns the big tables into province-partitioned ones with
    :func:`~studentstatus.adapters.sql.partition_convert.convert_to_partitioned`
    (idempotent; needs ``revision="head"``).  Open the store with
    ``SqlStore(..., partition_by_province=True)`` afterwards.

    >>> engine = sa.create_engine("sqlite://")
    >>> with engine.begin() as conn:
    ...     upgrade(conn, prefix="u_")
    ...     "u_records" in sa.inspect(conn).get_table_names()
    True
    """
    if partition_by_province and revision != "head":
        msg = "partition_by_province applies to the latest schema: upgrade to 'head'"
        raise StorageError(msg)
    with translating("migrate"), _connection(bind) as conn:
        if partition_by_province:
            from studentstatus.adapters.sql.partitioning import require_postgresql

            require_postgresql(conn.dialect.name)
        cfg = alembic_config(conn, prefix=prefix, schema=schema)
        with _host_alembic_kept():
            if _created_without_migrations(conn, prefix, schema):
                command.stamp(cfg, "head")
            command.upgrade(cfg, revision)
        if partition_by_province:
            from studentstatus.adapters.sql.partition_convert import convert_to_partitioned

            convert_to_partitioned(conn, prefix=prefix, schema=schema)


def _created_without_migrations(conn: Connection, prefix: str, schema: str | None) -> bool:
    """Tables made by ``SqlStore(create=True)`` (``create_all``) but no version row yet.

    Such a database already has the current schema: it is stamped ``head``
    instead of being created twice.
    """
    inspector = sa.inspect(conn)
    has_records = inspector.has_table(f"{prefix}records", schema=schema)
    return has_records and _current(conn, prefix, schema) is None


def downgrade(bind: Bind, revision: str, *, prefix: str = "", schema: str | None = None) -> None:
    """Downgrade the schema to ``revision`` (``"base"`` drops every table).

    >>> engine = sa.create_engine("sqlite://")
    >>> with engine.begin() as conn:
    ...     upgrade(conn)
    ...     downgrade(conn, "base")
    ...     current(conn) is None
    True
    """
    with translating("migrate"), _connection(bind) as conn:
        command.downgrade(alembic_config(conn, prefix=prefix, schema=schema), revision)


def current(bind: Bind, *, prefix: str = "", schema: str | None = None) -> str | None:
    """The revision the database is at, or ``None`` before the first upgrade.

    >>> current("sqlite://") is None
    True
    """
    with translating("read migration state"), _connection(bind) as conn:
        return _current(conn, prefix, schema)


def _current(conn: Connection, prefix: str, schema: str | None) -> str | None:
    ctx = MigrationContext.configure(
        conn,
        opts={"version_table": f"{prefix}alembic_version", "version_table_schema": schema},
    )
    return ctx.get_current_revision()
