"""Dropout-control cases (monitoring): the ``cases`` table.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context, op

from studentstatus.adapters.sql.migrate import migration_names

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

ID, CODE, REGION, ENUM = 64, 32, 12, 32


def _names() -> tuple[str, str | None]:
    return migration_names(context.config.attributes, context.get_x_argument(as_dictionary=True))


def upgrade() -> None:
    """Create the cases table and its indexes."""
    p, schema = _names()
    op.create_table(
        f"{p}cases",
        sa.Column("id", sa.String(ID), primary_key=True),
        sa.Column("record_id", sa.String(ID), nullable=False),
        sa.Column("county_code", sa.String(REGION), nullable=False),
        sa.Column("kindergarten_code", sa.String(CODE), nullable=False),
        sa.Column("status", sa.String(ENUM), nullable=False),
        sa.Column("data", sa.JSON, nullable=False),
        sa.Column("version", sa.Integer, nullable=False, server_default="0"),
        schema=schema,
        mysql_charset="utf8mb4",
        mysql_collate="utf8mb4_bin",
    )
    op.create_index(f"ix_{p}cases_record_id", f"{p}cases", ["record_id"], schema=schema)
    op.create_index(
        f"ix_{p}cases_county_status", f"{p}cases", ["county_code", "status"], schema=schema
    )


def downgrade() -> None:
    """Drop the cases table."""
    p, schema = _names()
    op.drop_table(f"{p}cases", schema=schema)
