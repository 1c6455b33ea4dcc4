"""Initial schema: every table of the SQL adapter.

Revision ID: 0001
Revises:
Create Date: 2026-11-28

Written out column by column (not generated from ``build_tables`` at run time),
so that this revision keeps creating the same schema when ``build_tables``
moves on; a test compares the migrated schema with ``build_tables``.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import context, op
from sqlalchemy.dialects import mysql

from studentstatus.adapters.sql.migrate import migration_names

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

ID, CODE, REGION, ENUM, NAME, NUMBER = 64, 32, 12, 32, 200, 64

_TABLES = (
    "kindergartens",
    "children",
    "records",
    "record_numbers",
    "change_log",
    "change_requests",
    "problems",
    "issued_numbers",
    "j_sequences",
    "roster",
    "attendance",
    "audit_log",
)


def _names() -> tuple[str, str | None]:
    return migration_names(context.config.attributes, context.get_x_argument(as_dictionary=True))


def _ts() -> sa.types.TypeEngine[Any]:
    return sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")


def _s(n: int) -> sa.String:
    return sa.String(n)


def _version() -> sa.Column[int]:
    return sa.Column("version", sa.Integer, nullable=False, server_default="0")


def upgrade() -> None:
    """Create every table with its indexes and constraints."""
    p, schema = _names()

    def create(name: str, *items: sa.schema.SchemaItem) -> None:
        op.create_table(
            f"{p}{name}",
            *items,
            schema=schema,
            mysql_charset="utf8mb4",
            mysql_collate="utf8mb4_bin",
        )

    def index(table: str, name: str, *cols: str, unique: bool = False) -> None:
        op.create_index(f"ix_{p}{name}", f"{p}{table}", list(cols), unique=unique, schema=schema)

    create(
        "kindergartens",
        sa.Column("school_code", _s(CODE), primary_key=True),
        sa.Column("uscc", _s(CODE), nullable=False),
        sa.Column("name", _s(NAME), nullable=False),
        sa.Column("region_code", _s(REGION), nullable=False),
        sa.Column("type", _s(ENUM), nullable=False),
        sa.Column("inclusive", sa.Boolean, nullable=False),
        sa.Column("licences", sa.JSON, nullable=False),
        _version(),
    )
    index("kindergartens", "kindergartens_region_code", "region_code")

    create(
        "children",
        sa.Column("id", _s(ID), primary_key=True),
        sa.Column("name", _s(NAME), nullable=False),
        sa.Column("sex", _s(1), nullable=False),
        sa.Column("birth_date", sa.Date, nullable=False),
        sa.Column("document_type", _s(ENUM), nullable=True),
        sa.Column("document_number", _s(NUMBER), nullable=True),
        sa.Column("nationality", _s(8), nullable=False),
        sa.Column("ethnicity", _s(ENUM), nullable=True),
        sa.Column("hukou_region", _s(REGION), nullable=True),
        sa.Column("hukou_rural", sa.Boolean, nullable=False),
        sa.Column("residence_region", _s(REGION), nullable=True),
        sa.Column("guardians", sa.JSON, nullable=False),
        sa.Column("left_behind", sa.Boolean, nullable=False),
        sa.Column("disability", sa.Boolean, nullable=False),
        sa.Column("orphan", sa.Boolean, nullable=False),
        _version(),
    )
    index("children", "children_document_number", "document_number")
    index("children", "children_document", "document_type", "document_number")
    index("children", "children_identity", "name", "sex", "birth_date")

    create(
        "records",
        sa.Column("id", _s(ID), primary_key=True),
        sa.Column("child_id", _s(ID), nullable=False),
        sa.Column("kindergarten_code", _s(CODE), nullable=False),
        sa.Column("region_code", _s(REGION), nullable=False),
        sa.Column("state", _s(ENUM), nullable=False),
        sa.Column("grade", _s(ENUM), nullable=True),
        sa.Column("entry_date", sa.Date, nullable=False),
        sa.Column("temp_number", _s(CODE), nullable=True),
        sa.Column("national_number", _s(CODE), nullable=True),
        sa.Column("former_numbers", sa.JSON, nullable=False),
        sa.Column("verification", _s(ENUM), nullable=True),
        sa.Column("county_confirmed", sa.Boolean, nullable=False),
        sa.Column("suspended_since", sa.Date, nullable=True),
        sa.Column("suspended_until", sa.Date, nullable=True),
        sa.Column("suspended_days", sa.Integer, nullable=False),
        sa.Column("last_promoted_year", sa.Integer, nullable=True),
        sa.Column("repeated_grades", sa.JSON, nullable=False),
        sa.Column("skipped", sa.Boolean, nullable=False),
        sa.Column("state_before_cancel", _s(ENUM), nullable=True),
        sa.Column("cancelled_on", sa.Date, nullable=True),
        _version(),
        sa.UniqueConstraint("national_number", name=f"uq_{p}records_national_number"),
    )
    index("records", "records_child_id", "child_id")
    index("records", "records_kindergarten_code", "kindergarten_code")
    index("records", "records_region_code", "region_code")
    index("records", "records_state", "state")
    index("records", "records_temp_number", "temp_number")

    create(
        "record_numbers",
        sa.Column("number", _s(CODE), primary_key=True),
        sa.Column("record_id", _s(ID), nullable=False),
    )
    index("record_numbers", "record_numbers_record_id", "record_id")

    create(
        "change_log",
        sa.Column("record_id", _s(ID), primary_key=True),
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("kind", _s(ENUM), nullable=False),
        sa.Column("from_state", _s(ENUM), nullable=True),
        sa.Column("to_state", _s(ENUM), nullable=False),
        sa.Column("effective_date", sa.Date, nullable=False),
        sa.Column("recorded_at", _ts(), nullable=False),
        sa.Column("operator", _s(NAME), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("evidence", sa.JSON, nullable=False),
        sa.Column("before", sa.JSON, nullable=False),
        sa.Column("after", sa.JSON, nullable=False),
    )
    index("change_log", "change_log_effective_date", "effective_date")
    index("change_log", "change_log_kind", "kind")

    create(
        "change_requests",
        sa.Column("id", _s(ID), primary_key=True),
        sa.Column("record_id", _s(ID), nullable=False),
        sa.Column("kind", _s(ENUM), nullable=False),
        sa.Column("applicant", _s(NAME), nullable=False),
        sa.Column("created_at", _ts(), nullable=False),
        sa.Column("steps", sa.JSON, nullable=False),
        sa.Column("status", _s(ENUM), nullable=False),
        sa.Column("effective_date", sa.Date, nullable=True),
        sa.Column("to_kindergarten", _s(CODE), nullable=True),
        sa.Column("until", sa.Date, nullable=True),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("evidence", sa.JSON, nullable=False),
        sa.Column("open_record_id", _s(ID), nullable=True),
        _version(),
        sa.UniqueConstraint("open_record_id", name=f"uq_{p}change_requests_open"),
    )
    index("change_requests", "change_requests_record_id", "record_id")
    index("change_requests", "change_requests_status", "status")

    create(
        "problems",
        sa.Column("id", _s(ID), primary_key=True),
        sa.Column("record_id", _s(ID), nullable=False),
        sa.Column("kind", _s(ENUM), nullable=False),
        sa.Column("county_code", _s(REGION), nullable=False),
        sa.Column("kindergarten_code", _s(CODE), nullable=False),
        sa.Column("opened_at", _ts(), nullable=False),
        sa.Column("due_date", sa.Date, nullable=False),
        sa.Column("status", _s(ENUM), nullable=False),
        sa.Column("detail", sa.Text, nullable=False),
        sa.Column("related_record_ids", sa.JSON, nullable=False),
        sa.Column("evidence", sa.JSON, nullable=False),
        sa.Column("resolution", sa.Text, nullable=True),
        sa.Column("resolved_by", _s(NAME), nullable=True),
        sa.Column("resolved_at", _ts(), nullable=True),
        _version(),
    )
    index("problems", "problems_record_id", "record_id")
    index("problems", "problems_county_code", "county_code")
    index("problems", "problems_status", "status")

    create(
        "issued_numbers",
        sa.Column("number", _s(CODE), primary_key=True),
        sa.Column("kind", _s(1), nullable=False),
        sa.Column("record_id", _s(ID), nullable=False),
        sa.Column("issued_at", _ts(), nullable=False),
    )
    index("issued_numbers", "issued_numbers_record_id", "record_id")

    create(
        "j_sequences",
        sa.Column("region_code", _s(REGION), primary_key=True),
        sa.Column("birth_date", sa.Date, primary_key=True),
        sa.Column("last", sa.Integer, nullable=False),
    )

    create(
        "roster",
        sa.Column("id", _s(ID), primary_key=True),
        sa.Column("county_code", _s(REGION), nullable=False),
        sa.Column("kindergarten_name", _s(NAME), nullable=False),
        sa.Column("child_name", _s(NAME), nullable=False),
        sa.Column("sex", _s(1), nullable=False),
        sa.Column("birth_date", sa.Date, nullable=False),
        sa.Column("document_type", _s(ENUM), nullable=True),
        sa.Column("document_number", _s(NUMBER), nullable=True),
        sa.Column("recorded_at", _ts(), nullable=True),
        sa.Column("operator", _s(NAME), nullable=False),
    )
    index("roster", "roster_county_code", "county_code")

    create(
        "attendance",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        sa.Column("record_id", _s(ID), nullable=False),
        sa.Column("day", sa.Date, nullable=False),
        sa.Column("status", _s(ENUM), nullable=False),
        sa.Column("reason", _s(ENUM), nullable=True),
        sa.Column("recorded_at", _ts(), nullable=True),
        sa.Column("operator", _s(NAME), nullable=False),
    )
    index("attendance", "attendance_record_day", "record_id", "day", "id")

    create(
        "audit_log",
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("at", _ts(), nullable=False),
        sa.Column("operator", _s(NAME), nullable=False),
        sa.Column("action", _s(NAME), nullable=False),
        sa.Column("subject", _s(NAME), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("before", sa.JSON, nullable=False),
        sa.Column("after", sa.JSON, nullable=False),
        sa.Column("prev_hash", _s(128), nullable=False),
        sa.Column("hash", _s(128), nullable=False),
    )


def downgrade() -> None:
    """Drop every table of the adapter."""
    p, schema = _names()
    for name in reversed(_TABLES):
        op.drop_table(f"{p}{name}", schema=schema)
