"""Identity claims: one row per identity key, locked by every registration of that key.

The table is filled from the stored records: one claim per record of a child,
under the child's claim key (:mod:`studentstatus.domain.claims`).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections import Counter
from datetime import date

import sqlalchemy as sa
from alembic import context, op

from studentstatus.adapters.sql.migrate import migration_names
from studentstatus.domain.claims import claim_key, compact_number

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_BATCH = 5000


def _names() -> tuple[str, str | None]:
    return migration_names(context.config.attributes, context.get_x_argument(as_dictionary=True))


def upgrade() -> None:
    """Create the identity_claims table and fill it from the stored records."""
    p, schema = _names()
    op.create_table(
        f"{p}identity_claims",
        sa.Column("claim_key", sa.String(32), primary_key=True),
        sa.Column("claims", sa.Integer, nullable=False),
        schema=schema,
        mysql_charset="utf8mb4",
        mysql_collate="utf8mb4_bin",
    )
    children = sa.table(
        f"{p}children",
        sa.column("id", sa.String),
        sa.column("name", sa.String),
        sa.column("sex", sa.String),
        sa.column("birth_date", sa.Date),
        sa.column("document_type", sa.String),
        sa.column("document_number", sa.String),
        schema=schema,
    )
    records = sa.table(f"{p}records", sa.column("child_id", sa.String), schema=schema)
    claims = sa.table(
        f"{p}identity_claims",
        sa.column("claim_key", sa.String),
        sa.column("claims", sa.Integer),
        schema=schema,
    )
    q = sa.select(
        children.c.name,
        children.c.sex,
        children.c.birth_date,
        children.c.document_type,
        children.c.document_number,
    ).join_from(records, children, records.c.child_id == children.c.id)
    counts: Counter[str] = Counter()
    bind = op.get_bind()
    for name, sex, born, doc_type, number in bind.execute(q):
        if isinstance(born, str):  # SQLite without type processing
            born = date.fromisoformat(born)
        if doc_type and doc_type != "none" and number:
            key: tuple[str, ...] = ("d", compact_number(number))
        else:
            key = ("i", name, sex, born.isoformat())
        counts[claim_key(key)] += 1
    rows = [{"claim_key": k, "claims": n} for k, n in sorted(counts.items())]
    for i in range(0, len(rows), _BATCH):
        bind.execute(claims.insert(), rows[i : i + _BATCH])


def downgrade() -> None:
    """Drop the identity_claims table."""
    p, schema = _names()
    op.drop_table(f"{p}identity_claims", schema=schema)
