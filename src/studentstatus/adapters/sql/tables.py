"""SQLAlchemy Core tables of the SQL adapter (no ORM mapping of domain classes).

:func:`build_tables` puts every table on a :class:`~sqlalchemy.MetaData` that
the host may own, with an optional table-name ``prefix`` and database
``schema``; index and constraint names carry the prefix too, so that several
installations can share one database or schema.

>>> t = build_tables(prefix="ss_")
>>> t.records.name, t.records.c.state.index
('ss_records', None)
>>> [c.name for c in t.records.constraints if isinstance(c, sa.UniqueConstraint)]
['uq_ss_records_national_number']
>>> sorted(t.by_port)[:3]
['attendance', 'audit', 'audit_heads']
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import attrs
import sqlalchemy as sa
from sqlalchemy.dialects import mysql
from sqlalchemy.engine import Dialect

from studentstatus.adapters.sql import partitioning

__all__ = ["SqlTables", "UtcDateTime", "build_tables", "region_prefix_filter"]

# Lengths: MySQL needs them for VARCHAR and for indexed columns (utf8mb4: 4 bytes a char).
ID = 64
CODE = 32
REGION = 12
ENUM = 32
NAME = 200
NUMBER = 64
CHAIN = 64  # studentstatus.domain.audit.CHAIN_MAX


class UtcDateTime(sa.TypeDecorator[datetime]):
    """Aware datetimes stored as naive UTC with microseconds on every backend.

    Aware values are converted to UTC on the way in and come back as aware UTC
    datetimes (equal to what was written); naive values are taken to be UTC.

    >>> from datetime import timedelta, timezone
    >>> t = UtcDateTime()
    >>> cst = datetime(2024, 9, 1, 8, 0, tzinfo=timezone(timedelta(hours=8)))
    >>> stored = t.process_bind_param(cst, None)  # type: ignore[arg-type]
    >>> stored
    datetime.datetime(2024, 9, 1, 0, 0)
    >>> t.process_result_value(stored, None) == cst  # type: ignore[arg-type]
    True
    """

    impl = sa.DateTime
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> sa.types.TypeEngine[Any]:
        """``DATETIME(6)`` on MySQL/MariaDB (they drop microseconds otherwise)."""
        if dialect.name in ("mysql", "mariadb"):
            return dialect.type_descriptor(mysql.DATETIME(fsp=6))
        return dialect.type_descriptor(sa.DateTime())

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Convert an aware value to naive UTC."""
        if value is not None and value.tzinfo is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Attach UTC to the stored value."""
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value


def _id_col(name: str = "id") -> sa.Column[str]:
    return sa.Column(name, sa.String(ID), primary_key=True)


def _version() -> sa.Column[int]:
    return sa.Column("version", sa.Integer, nullable=False, server_default="0")


@attrs.frozen
class SqlTables:
    """The adapter's tables, built on one MetaData (see :func:`build_tables`).

    >>> build_tables().change_log.primary_key.columns.keys()
    ['record_id', 'seq']
    """

    metadata: sa.MetaData
    prefix: str
    schema: str | None
    kindergartens: sa.Table
    children: sa.Table
    records: sa.Table
    record_numbers: sa.Table
    change_log: sa.Table
    change_requests: sa.Table
    problems: sa.Table
    issued_numbers: sa.Table
    j_sequences: sa.Table
    roster: sa.Table
    attendance: sa.Table
    audit_log: sa.Table
    audit_heads: sa.Table
    cases: sa.Table
    identity_claims: sa.Table

    @property
    def by_port(self) -> dict[str, sa.Table]:
        """Every table by a short name, in creation order.

        >>> list(build_tables().by_port)[:2]
        ['kindergartens', 'children']
        """
        return {
            "kindergartens": self.kindergartens,
            "children": self.children,
            "records": self.records,
            "record_numbers": self.record_numbers,
            "change_log": self.change_log,
            "change_requests": self.change_requests,
            "problems": self.problems,
            "issued_numbers": self.issued_numbers,
            "j_sequences": self.j_sequences,
            "roster": self.roster,
            "attendance": self.attendance,
            "audit": self.audit_log,
            "audit_heads": self.audit_heads,
            "cases": self.cases,
            "claims": self.identity_claims,
        }


def build_tables(
    metadata: sa.MetaData | None = None,
    *,
    prefix: str = "",
    schema: str | None = None,
    partition_by_province: bool = False,
) -> SqlTables:
    """Define every table of the adapter on ``metadata`` (a new one if ``None``).

    ``prefix`` is put in front of every table, index and constraint name;
    ``schema`` is the database schema (PostgreSQL schema, MySQL database).
    ``partition_by_province`` (PostgreSQL only) adds a ``province CHAR(2)``
    column to the big tables and declares them ``PARTITION BY LIST
    (province)``, with the partition key in their primary and unique keys;
    creating them creates the partitions too (see
    :mod:`~studentstatus.adapters.sql.partitioning`).

    >>> pt = build_tables(partition_by_province=True)
    >>> pt.records.primary_key.columns.keys()
    ['id', 'province']
    >>> pt.records.dialect_options["postgresql"]["partition_by"]
    'LIST (province)'
    >>> pt.change_log.primary_key.columns.keys(), "province" in pt.children.c
    (['record_id', 'seq', 'province'], False)

    >>> md = sa.MetaData()
    >>> t = build_tables(md, prefix="x_", schema="app")
    >>> sorted(md.tables)[0], t.children.schema
    ('app.x_attendance', 'app')
    """
    md = metadata if metadata is not None else sa.MetaData()
    p = prefix

    def table(name: str, *items: sa.schema.SchemaItem) -> sa.Table:
        # MySQL/MariaDB: utf8mb4 with a binary collation, so that ids, codes, numbers and
        # names compare exactly (case- and accent-sensitive) as on the other backends.
        return sa.Table(
            f"{p}{name}",
            md,
            *items,
            schema=schema,
            mysql_charset="utf8mb4",
            mysql_collate="utf8mb4_bin",
        )

    def big(name: str, *items: sa.schema.SchemaItem) -> sa.Table:
        # A table that grows with children and time: partitioned by province on request.
        if not partition_by_province:
            return table(name, *items)
        # The key goes after the other columns (primary key (id, province): look-ups by id
        # keep using it) and before the constraints that name it.
        columns = [i for i in items if isinstance(i, sa.Column)]
        others = [i for i in items if not isinstance(i, sa.Column)]
        tbl = sa.Table(
            f"{p}{name}",
            md,
            *columns,
            sa.Column("province", sa.CHAR(2), primary_key=True),
            *others,
            schema=schema,
            postgresql_partition_by="LIST (province)",
        )
        sa.event.listen(tbl, "after_create", partitioning.create_partitions)
        return tbl

    national_number_key = (
        ("national_number", "province") if partition_by_province else ("national_number",)
    )

    def ix(name: str, *cols: str, unique: bool = False) -> sa.Index:
        return sa.Index(f"ix_{p}{name}", *cols, unique=unique)

    kindergartens = table(
        "kindergartens",
        sa.Column("school_code", sa.String(CODE), primary_key=True),
        sa.Column("uscc", sa.String(CODE), nullable=False),
        sa.Column("name", sa.String(NAME), nullable=False),
        sa.Column("region_code", sa.String(REGION), nullable=False),
        sa.Column("type", sa.String(ENUM), nullable=False),
        sa.Column("inclusive", sa.Boolean, nullable=False),
        sa.Column("licences", sa.JSON, nullable=False),
        _version(),
        sa.Column("moving_to", sa.String(REGION), nullable=True),
        sa.Column("move_proposed_by", sa.String(NAME), nullable=True),
        ix("kindergartens_region_code", "region_code"),
    )
    children = table(
        "children",
        _id_col(),
        sa.Column("name", sa.String(NAME), nullable=False),
        sa.Column("sex", sa.String(1), nullable=False),
        sa.Column("birth_date", sa.Date, nullable=False),
        sa.Column("document_type", sa.String(ENUM), nullable=True),
        sa.Column("document_number", sa.String(NUMBER), nullable=True),
        sa.Column("nationality", sa.String(8), nullable=False),
        sa.Column("ethnicity", sa.String(ENUM), nullable=True),
        sa.Column("hukou_region", sa.String(REGION), nullable=True),
        sa.Column("hukou_rural", sa.Boolean, nullable=False),
        sa.Column("residence_region", sa.String(REGION), nullable=True),
        sa.Column("guardians", sa.JSON, nullable=False),
        sa.Column("left_behind", sa.Boolean, nullable=False),
        sa.Column("disability", sa.Boolean, nullable=False),
        sa.Column("orphan", sa.Boolean, nullable=False),
        _version(),
        ix("children_document_number", "document_number"),
        ix("children_document", "document_type", "document_number"),
        ix("children_identity", "name", "sex", "birth_date"),
    )
    records = big(
        "records",
        _id_col(),
        sa.Column("child_id", sa.String(ID), nullable=False),
        sa.Column("kindergarten_code", sa.String(CODE), nullable=False),
        sa.Column("region_code", sa.String(REGION), nullable=False),
        sa.Column("state", sa.String(ENUM), nullable=False),
        sa.Column("grade", sa.String(ENUM), nullable=True),
        sa.Column("entry_date", sa.Date, nullable=False),
        sa.Column("temp_number", sa.String(CODE), nullable=True),
        sa.Column("national_number", sa.String(CODE), nullable=True),
        sa.Column("former_numbers", sa.JSON, nullable=False),
        sa.Column("verification", sa.String(ENUM), nullable=True),
        sa.Column("county_confirmed", sa.Boolean, nullable=False),
        sa.Column("suspended_since", sa.Date, nullable=True),
        sa.Column("suspended_until", sa.Date, nullable=True),
        sa.Column("suspended_days", sa.Integer, nullable=False),
        sa.Column("last_promoted_year", sa.Integer, nullable=True),
        sa.Column("repeated_grades", sa.JSON, nullable=False),
        sa.Column("skipped", sa.Boolean, nullable=False),
        sa.Column("state_before_cancel", sa.String(ENUM), nullable=True),
        sa.Column("cancelled_on", sa.Date, nullable=True),
        _version(),
        ix("records_child_id", "child_id"),
        # Keyset pages of a scope (``… WHERE kindergarten_code = ? AND id > ? ORDER BY id``)
        # read these in order and stop at the page's end; they serve plain look-ups too.
        ix("records_kindergarten_code_id", "kindergarten_code", "id"),
        ix("records_region_code_id", "region_code", "id"),
        ix("records_region_state_id", "region_code", "state", "id"),
        ix("records_state", "state"),
        ix("records_temp_number", "temp_number"),
        sa.UniqueConstraint(*national_number_key, name=f"uq_{p}records_national_number"),
    )
    # Every number a record ever held (temporary, national, former): one holder each,
    # forever; ``find_by_number`` is a primary-key look-up here.
    record_numbers = table(
        "record_numbers",
        sa.Column("number", sa.String(CODE), primary_key=True),
        sa.Column("record_id", sa.String(ID), nullable=False),
        ix("record_numbers_record_id", "record_id"),
    )
    change_log = big(
        "change_log",
        sa.Column("record_id", sa.String(ID), primary_key=True),
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("kind", sa.String(ENUM), nullable=False),
        sa.Column("from_state", sa.String(ENUM), nullable=True),
        sa.Column("to_state", sa.String(ENUM), nullable=False),
        sa.Column("effective_date", sa.Date, nullable=False),
        sa.Column("recorded_at", UtcDateTime(), nullable=False),
        sa.Column("operator", sa.String(NAME), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("evidence", sa.JSON, nullable=False),
        sa.Column("before", sa.JSON, nullable=False),
        sa.Column("after", sa.JSON, nullable=False),
        ix("change_log_effective_date", "effective_date"),
        ix("change_log_kind", "kind"),
    )
    change_requests = table(
        "change_requests",
        _id_col(),
        sa.Column("record_id", sa.String(ID), nullable=False),
        sa.Column("kind", sa.String(ENUM), nullable=False),
        sa.Column("applicant", sa.String(NAME), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("steps", sa.JSON, nullable=False),
        sa.Column("status", sa.String(ENUM), nullable=False),
        sa.Column("effective_date", sa.Date, nullable=True),
        sa.Column("to_kindergarten", sa.String(CODE), nullable=True),
        sa.Column("until", sa.Date, nullable=True),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("evidence", sa.JSON, nullable=False),
        # = record_id while the request is OPEN, NULL otherwise: the UNIQUE constraint
        # holds "one open request per record" in the database itself.
        sa.Column("open_record_id", sa.String(ID), nullable=True),
        _version(),
        # The pending step's role, scope and due date while the request is OPEN, NULL
        # otherwise (studentstatus.domain.approvals.pending_key): an operator's approval
        # queue is ``… WHERE pending_role = ? AND pending_scope = ? ORDER BY id``.
        sa.Column("pending_role", sa.String(ENUM), nullable=True),
        sa.Column("pending_scope", sa.String(CODE), nullable=True),
        sa.Column("pending_due", sa.Date, nullable=True),
        sa.UniqueConstraint("open_record_id", name=f"uq_{p}change_requests_open"),
        ix("change_requests_record_id", "record_id"),
        ix("change_requests_status", "status"),
        ix("change_requests_pending", "pending_role", "pending_scope", "id"),
        ix("change_requests_applicant", "applicant", "id"),
        ix("change_requests_pending_due", "pending_due", "id"),
    )
    problems = big(
        "problems",
        _id_col(),
        sa.Column("record_id", sa.String(ID), nullable=False),
        sa.Column("kind", sa.String(ENUM), nullable=False),
        sa.Column("county_code", sa.String(REGION), nullable=False),
        sa.Column("kindergarten_code", sa.String(CODE), nullable=False),
        sa.Column("opened_at", UtcDateTime(), nullable=False),
        sa.Column("due_date", sa.Date, nullable=False),
        sa.Column("status", sa.String(ENUM), nullable=False),
        sa.Column("detail", sa.Text, nullable=False),
        sa.Column("related_record_ids", sa.JSON, nullable=False),
        sa.Column("evidence", sa.JSON, nullable=False),
        sa.Column("resolution", sa.Text, nullable=True),
        sa.Column("resolved_by", sa.String(NAME), nullable=True),
        sa.Column("resolved_at", UtcDateTime(), nullable=True),
        _version(),
        ix("problems_record_id", "record_id"),
        ix("problems_county_code_id", "county_code", "id"),
        ix("problems_kindergarten_code_id", "kindergarten_code", "id"),
        ix("problems_status", "status"),
    )
    issued_numbers = table(
        "issued_numbers",
        sa.Column("number", sa.String(CODE), primary_key=True),
        sa.Column("kind", sa.String(1), nullable=False),
        sa.Column("record_id", sa.String(ID), nullable=False),
        sa.Column("issued_at", UtcDateTime(), nullable=False),
        ix("issued_numbers_record_id", "record_id"),
    )
    j_sequences = table(
        "j_sequences",
        sa.Column("region_code", sa.String(REGION), primary_key=True),
        sa.Column("birth_date", sa.Date, primary_key=True),
        sa.Column("last", sa.Integer, nullable=False),
    )
    roster = table(
        "roster",
        _id_col(),
        sa.Column("county_code", sa.String(REGION), nullable=False),
        sa.Column("kindergarten_name", sa.String(NAME), nullable=False),
        sa.Column("child_name", sa.String(NAME), nullable=False),
        sa.Column("sex", sa.String(1), nullable=False),
        sa.Column("birth_date", sa.Date, nullable=False),
        sa.Column("document_type", sa.String(ENUM), nullable=True),
        sa.Column("document_number", sa.String(NUMBER), nullable=True),
        sa.Column("recorded_at", UtcDateTime(), nullable=True),
        sa.Column("operator", sa.String(NAME), nullable=False),
        ix("roster_county_code", "county_code"),
    )
    attendance = big(
        "attendance",
        # Monotonic id: orders corrections for the same (record, day).
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        sa.Column("record_id", sa.String(ID), nullable=False),
        sa.Column("day", sa.Date, nullable=False),
        sa.Column("status", sa.String(ENUM), nullable=False),
        sa.Column("reason", sa.String(ENUM), nullable=True),
        sa.Column("recorded_at", UtcDateTime(), nullable=True),
        sa.Column("operator", sa.String(NAME), nullable=False),
        ix("attendance_record_day", "record_id", "day", "id"),
    )
    # One hash chain per writer scope (studentstatus.domain.audit): seq counts within a chain;
    # "" is the chain of logs written before chains existed.
    audit_log = table(
        "audit_log",
        sa.Column("seq", sa.Integer, nullable=False, autoincrement=False),
        sa.Column("at", UtcDateTime(), nullable=False),
        sa.Column("operator", sa.String(NAME), nullable=False),
        sa.Column("action", sa.String(NAME), nullable=False),
        sa.Column("subject", sa.String(NAME), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("before", sa.JSON, nullable=False),
        sa.Column("after", sa.JSON, nullable=False),
        sa.Column("prev_hash", sa.String(128), nullable=False),
        sa.Column("hash", sa.String(128), nullable=False),
        sa.Column("chain", sa.String(CHAIN), nullable=False, server_default=""),
        sa.PrimaryKeyConstraint("chain", "seq"),
    )
    # Each chain's head, (seq, hash) of its last entry, moved in the transaction that appends:
    # a writer locks its chain's row first, so writers of one chain take turns.
    audit_heads = table(
        "audit_heads",
        sa.Column("chain", sa.String(CHAIN), primary_key=True),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("hash", sa.String(128), nullable=False),
    )
    # Dropout-control cases (monitoring): indexed columns + the whole case as JSON.
    cases = table(
        "cases",
        _id_col(),
        sa.Column("record_id", sa.String(ID), nullable=False),
        sa.Column("county_code", sa.String(REGION), nullable=False),
        sa.Column("kindergarten_code", sa.String(CODE), nullable=False),
        sa.Column("status", sa.String(ENUM), nullable=False),
        sa.Column("data", sa.JSON, nullable=False),
        _version(),
        ix("cases_record_id", "record_id"),
        ix("cases_county_status", "county_code", "status"),
    )
    # One row per identity key ever registered (studentstatus.domain.claims): a hash of the
    # key, never the number or name; every registration locks its key's row.
    identity_claims = table(
        "identity_claims",
        sa.Column("claim_key", sa.String(32), primary_key=True),
        sa.Column("claims", sa.Integer, nullable=False),
    )
    return SqlTables(
        metadata=md,
        prefix=prefix,
        schema=schema,
        kindergartens=kindergartens,
        children=children,
        records=records,
        record_numbers=record_numbers,
        change_log=change_log,
        change_requests=change_requests,
        problems=problems,
        issued_numbers=issued_numbers,
        j_sequences=j_sequences,
        roster=roster,
        attendance=attendance,
        audit_log=audit_log,
        audit_heads=audit_heads,
        cases=cases,
        identity_claims=identity_claims,
    )


def region_prefix_filter(column: sa.ColumnElement[str], prefix: str) -> sa.ColumnElement[bool]:
    """Rows whose 6-digit region code starts with ``prefix``, in a form any B-tree index serves.

    ``LIKE 'prefix%'`` uses an index only under the ``C`` collation (PostgreSQL
    with ``C.UTF-8`` or ``en_US.UTF-8`` scans the table); region codes are six
    digits, so a digit prefix is the closed range ``prefix000…``–``prefix999…``,
    which every collation orders the same way.  The ``LIKE`` stays as a guard for
    values that are not six digits.

    >>> t = build_tables()
    >>> clause = region_prefix_filter(t.records.c.region_code, "4403")
    >>> [str(c.right.value) for c in clause.clauses[:2]]
    ['440300', '440399']
    >>> print(region_prefix_filter(t.records.c.region_code, "440305"))
    records.region_code = :region_code_1
    """
    if prefix.isdigit() and len(prefix) == 6:
        return column == prefix
    if prefix.isdigit() and len(prefix) < 6:
        return sa.and_(
            column >= prefix.ljust(6, "0"),
            column <= prefix.ljust(6, "9"),
            column.startswith(prefix, autoescape=True),
        )
    return column.startswith(prefix, autoescape=True)
