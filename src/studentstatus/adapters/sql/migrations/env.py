"""Alembic environment of the shipped migrations (online mode only).

Run through :mod:`studentstatus.adapters.sql.migrate`, which puts the
connection, the table ``prefix`` and ``schema`` in the Config attributes.  With
a plain ``alembic`` command line, give ``sqlalchemy.url`` and optionally
``-x prefix=… -x schema=…``.  Importing this module outside Alembic does nothing.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context

from studentstatus.adapters.sql.migrate import migration_names
from studentstatus.adapters.sql.tables import build_tables


def _in_alembic() -> bool:
    try:
        context.config  # noqa: B018
    except NameError:
        return False
    return True


def run_migrations() -> None:
    """Configure the migration context on the given connection and run the scripts."""
    config = context.config
    prefix, schema = migration_names(config.attributes, context.get_x_argument(as_dictionary=True))
    target = build_tables(prefix=prefix, schema=schema).metadata
    connection = config.attributes.get("connection")
    if connection is None:
        url = config.get_main_option("sqlalchemy.url")
        if not url:
            msg = "no connection: set sqlalchemy.url or use studentstatus.adapters.sql.upgrade"
            raise RuntimeError(msg)
        engine = sa.create_engine(url)
        with engine.begin() as conn:
            _run(conn, target, prefix, schema)
        engine.dispose()
    else:
        _run(connection, target, prefix, schema)


def _run(conn: sa.Connection, target: sa.MetaData, prefix: str, schema: str | None) -> None:
    context.configure(
        connection=conn,
        target_metadata=target,
        version_table=f"{prefix}alembic_version",
        version_table_schema=schema,
        render_as_batch=conn.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


if _in_alembic():
    run_migrations()
