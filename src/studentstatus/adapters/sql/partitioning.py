"""Province partitioning of the big tables on PostgreSQL (declarative ``PARTITION BY LIST``).

A national deployment holds tens of millions of records; every county, city
and province query filters by a region prefix.  With
``build_tables(partition_by_province=True)`` (and
``upgrade(..., partition_by_province=True)`` /
``studentstatus db upgrade --partition-by-province``) the tables that grow
with children and with time — ``records``, ``change_log``, ``attendance`` and
``problems`` (:data:`PARTITIONED`) — get a ``province CHAR(2)`` column and
become ``PARTITION BY LIST (province)`` tables with one partition per
province-level GB/T 2260 code (:func:`province_codes`, 34 of them) and a
``DEFAULT`` partition for anything else (unknown or malformed codes).

PostgreSQL requires the partition key in every primary key and unique
constraint, so under the option the keys become ``(id, province)``
(``(record_id, seq, province)`` for the change log) and the records'
``UNIQUE (national_number)`` becomes ``UNIQUE (national_number, province)``.
Global uniqueness of numbers stays where it already lives: the unpartitioned
``record_numbers`` table, whose primary key is the number itself and which
every ``add``/``update`` of a record writes in the same transaction.

PostgreSQL (15) refuses a generated column as partition key, so the adapter
fills ``province`` itself (:func:`province_key` of the record's region code,
of the problem's county code, and — for change-log and attendance rows — the
province the record is in when the row is written).

>>> len(province_codes()), province_codes()[:3], province_codes()[-3:]
(34, ('11', '12', '13'), ('71', '81', '82'))
>>> province_key("440306"), province_key("4"), province_key("")
('44', '00', '00')
>>> partition_names("ss_records")[:2], partition_names("ss_records")[-1]
(['ss_records_p11', 'ss_records_p12'], 'ss_records_pdefault')
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from studentstatus import regions
from studentstatus.errors import StorageError

__all__ = [
    "PARTITIONED",
    "UNKNOWN_PROVINCE",
    "create_partitions",
    "is_partitioned",
    "partition_names",
    "partitions_in_plan",
    "province_codes",
    "province_key",
    "require_postgresql",
]

PARTITIONED = ("records", "change_log", "attendance", "problems")
"""Short names of the tables partitioned by province under the option (records first)."""

UNKNOWN_PROVINCE = "00"
"""``province`` of a row whose region is unknown or too short: lands in the DEFAULT partition."""

_NOT_SCHOOL_PROVINCES = frozenset({"83"})  # 830000: Taiwan residents' permit code, no schools


def province_codes() -> tuple[str, ...]:
    """The two-digit codes of the 34 current province-level divisions, sorted.

    31 mainland provinces, autonomous regions and municipalities, plus 71
    (台湾省), 81 (香港) and 82 (澳门), from :mod:`studentstatus.regions`.

    >>> "44" in province_codes(), "83" in province_codes()
    (True, False)
    """
    found = []
    for i in range(10, 100):
        code = f"{i:02d}"
        region = regions.lookup(code + "0000")
        if (
            region is not None
            and region.level == "province"
            and region.last_year == 9999
            and code not in _NOT_SCHOOL_PROVINCES
        ):
            found.append(code)
    return tuple(found)


def province_key(region_code: str | None) -> str:
    """The ``province`` partition key of a region (or county) code.

    The first two characters when there are two, else :data:`UNKNOWN_PROVINCE`.
    A region-prefix filter of two or more characters therefore always agrees
    with ``province = prefix[:2]``, which is what lets PostgreSQL prune.

    >>> province_key("110105"), province_key(None)
    ('11', '00')
    """
    if region_code is None or len(region_code) < 2:
        return UNKNOWN_PROVINCE
    return region_code[:2]


def partition_names(table_name: str) -> list[str]:
    """Names of a partitioned table's partitions: ``<table>_p<code>`` and ``<table>_pdefault``.

    >>> partition_names("records")[0]
    'records_p11'
    """
    return [f"{table_name}_p{code}" for code in province_codes()] + [f"{table_name}_pdefault"]


def require_postgresql(dialect_name: str) -> None:
    """Refuse the option on any backend but PostgreSQL (a clear :class:`StorageError`).

    >>> require_postgresql("postgresql")
    >>> require_postgresql("sqlite")
    Traceback (most recent call last):
    ...
    studentstatus.errors.StorageError: partition_by_province needs PostgreSQL ...
    """
    if dialect_name != "postgresql":
        msg = (
            "partition_by_province needs PostgreSQL (declarative partitioning); "
            f"this store is {dialect_name} / 按省分区仅支持 PostgreSQL"
        )
        raise StorageError(msg)


def _qualified(conn: Connection, name: str, schema: str | None) -> str:
    quote = conn.dialect.identifier_preparer.quote
    return f"{quote(schema)}.{quote(name)}" if schema else quote(name)


def create_partitions(target: sa.Table, connection: Connection, **_: Any) -> None:
    """``after_create`` listener: one partition per province and a DEFAULT one (PostgreSQL).

    Indexes declared on the parent are created on every partition by
    PostgreSQL itself.  On other dialects it does nothing (the option is
    refused there before any DDL runs).
    """
    if connection.dialect.name != "postgresql":
        return
    parent = _qualified(connection, target.name, target.schema)
    names = partition_names(target.name)
    for code, name in zip(province_codes(), names, strict=False):
        part = _qualified(connection, name, target.schema)
        connection.exec_driver_sql(
            f"CREATE TABLE {part} PARTITION OF {parent} FOR VALUES IN ('{code}')"
        )
    default = _qualified(connection, names[-1], target.schema)
    connection.exec_driver_sql(f"CREATE TABLE {default} PARTITION OF {parent} DEFAULT")


def is_partitioned(conn: Connection, table_name: str, schema: str | None = None) -> bool:
    """Whether ``table_name`` is a partitioned table (``pg_partitioned_table``) on PostgreSQL."""
    if conn.dialect.name != "postgresql":
        return False
    q = sa.text(
        "SELECT 1 FROM pg_partitioned_table pt JOIN pg_class c ON c.oid = pt.partrelid "
        "JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE c.relname = :name AND n.nspname = COALESCE(:schema, current_schema())"
    )
    return conn.execute(q, {"name": table_name, "schema": schema}).first() is not None


def partitions_in_plan(
    conn: Connection, statement: sa.ClauseElement | str, params: dict[str, Any] | None = None
) -> list[str]:
    """The tables (partitions) that PostgreSQL's plan of ``statement`` reads, from EXPLAIN.

    Used by the tests and ``bench/partitioned.py`` to show partition pruning:
    a county query on a partitioned table reads one partition.
    """
    if isinstance(statement, str):
        sql, bound = statement, params or {}
    else:
        compiled = statement.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True})
        sql, bound = str(compiled), {}
    plan = conn.exec_driver_sql(f"EXPLAIN (FORMAT JSON) {sql}", bound or None).scalar_one()
    found: list[str] = []

    def walk(node: dict[str, Any]) -> None:
        rel = node.get("Relation Name")
        if rel is not None and rel not in found:
            found.append(rel)
        for child in node.get("Plans", []):
            walk(child)

    walk(plan[0]["Plan"])
    return found
