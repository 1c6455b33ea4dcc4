"""Converting existing tables into province-partitioned ones (PostgreSQL).

Kept apart from :mod:`~studentstatus.adapters.sql.partitioning`, which
:mod:`~studentstatus.adapters.sql.tables` uses to declare the partitions: the
conversion needs the table definitions themselves (``build_tables``).
"""

from __future__ import annotations

from sqlalchemy.engine import Connection

from studentstatus.adapters.sql.partitioning import (
    PARTITIONED,
    UNKNOWN_PROVINCE,
    _qualified,
    is_partitioned,
    require_postgresql,
)
from studentstatus.adapters.sql.tables import build_tables
from studentstatus.errors import StorageError

__all__ = ["convert_to_partitioned"]


def _province_expr(short: str) -> str:
    """SQL computing ``province`` for the rows of the old (unpartitioned) table ``o``."""
    if short == "records":
        return "CASE WHEN length(o.region_code) >= 2 THEN left(o.region_code, 2) ELSE '00' END"
    if short == "problems":
        return "CASE WHEN length(o.county_code) >= 2 THEN left(o.county_code, 2) ELSE '00' END"
    return (
        "COALESCE((SELECT r.province FROM {records} r WHERE r.id = o.record_id LIMIT 1), "
        f"'{UNKNOWN_PROVINCE}')"
    )


def convert_to_partitioned(
    conn: Connection, *, prefix: str = "", schema: str | None = None
) -> list[str]:
    """Turn the partitioned tables (:data:`.partitioning.PARTITIONED`) into province-partitioned
    ones, keeping their rows.

    Idempotent: tables that are already partitioned are left alone; returns
    the names of the tables converted.  Each conversion renames the old table,
    drops its constraints and indexes (their names are reused), creates the
    partitioned table from ``build_tables(partition_by_province=True)``,
    copies the rows with ``INSERT … SELECT`` (filling ``province``) and drops
    the old table.  On an empty (freshly migrated) database this takes a
    moment; on a populated one it rewrites the tables — plan a maintenance
    window.  Runs in the caller's transaction.

    A store already published to the federation is refused (:class:`StorageError`): the
    feed's triggers live on the tables a conversion replaces, so partition before publishing.
    """
    require_postgresql(conn.dialect.name)
    tables = build_tables(prefix=prefix, schema=schema, partition_by_province=True)
    by_port = tables.by_port
    published = conn.exec_driver_sql(
        "SELECT to_regclass('studentstatus_federation.settings') IS NOT NULL"
    ).scalar_one()
    if published and not all(is_partitioned(conn, by_port[s].name, schema) for s in PARTITIONED):
        # The federation's feed triggers sit on the plain tables and would go with them.
        msg = (
            "this store is published to the federation: partition it before publishing "
            "(the feed triggers live on the tables the conversion replaces)"
        )
        raise StorageError(msg)
    quote = conn.dialect.identifier_preparer.quote
    converted: list[str] = []
    records_name = _qualified(conn, by_port["records"].name, schema)
    for short in PARTITIONED:
        table = by_port[short]
        if is_partitioned(conn, table.name, schema):
            continue
        old_name = f"{table.name}__plain"
        old = _qualified(conn, old_name, schema)
        conn.exec_driver_sql(
            f"ALTER TABLE {_qualified(conn, table.name, schema)} RENAME TO {quote(old_name)}"
        )
        _free_names(conn, old, old_name, schema, serial=short == "attendance")
        table.create(conn)
        cols = [c.name for c in table.columns if c.name != "province"]
        col_sql = ", ".join(quote(c) for c in cols)
        src_sql = ", ".join(f"o.{quote(c)}" for c in cols)
        expr = _province_expr(short).replace("{records}", records_name)
        conn.exec_driver_sql(
            f"INSERT INTO {_qualified(conn, table.name, schema)} ({col_sql}, province) "
            f"SELECT {src_sql}, {expr} FROM {old} o"
        )
        if short == "attendance":
            new = _qualified(conn, table.name, schema)
            conn.exec_driver_sql(
                f"SELECT setval(pg_get_serial_sequence('{new}', 'id'), "
                f"COALESCE((SELECT max(id) FROM {new}), 0) + 1, false)"
            )
        conn.exec_driver_sql(f"DROP TABLE {old}")
        converted.append(table.name)
    return converted


def _free_names(
    conn: Connection, old: str, old_name: str, schema: str | None, *, serial: bool
) -> None:
    """Drop the renamed table's constraints and indexes and rename its sequences (names reused)."""
    for (name,) in conn.exec_driver_sql(
        f"SELECT conname FROM pg_constraint WHERE conrelid = '{old}'::regclass "
        "AND contype IN ('p', 'u')"
    ).all():
        conn.exec_driver_sql(f'ALTER TABLE {old} DROP CONSTRAINT "{name}"')
    for (name,) in conn.exec_driver_sql(
        "SELECT indexname FROM pg_indexes WHERE tablename = %(t)s "
        "AND schemaname = COALESCE(%(s)s, current_schema())",
        {"t": old_name, "s": schema},
    ).all():
        conn.exec_driver_sql(f"DROP INDEX {_qualified(conn, name, schema)}")
    if not serial:
        return
    seq = conn.exec_driver_sql("SELECT pg_get_serial_sequence(%(t)s, 'id')", {"t": old}).scalar()
    if seq is not None:
        new_name = conn.dialect.identifier_preparer.quote(f"{old_name}_id_seq")
        conn.exec_driver_sql(f"ALTER SEQUENCE {seq} RENAME TO {new_name}")
