"""A kindergarten's pending move to another county: ``moving_to`` and ``move_proposed_by``.

A change of a kindergarten's county is its own two-sided change
(``services.kindergartens.move_kindergarten``): one side proposes it, the other
confirms it.  The proposal waits on the kindergarten row; both columns are empty
when no move is pending, so the upgrade needs no data migration.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context, op

from studentstatus.adapters.sql.migrate import migration_names

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def _names() -> tuple[str, str | None]:
    return migration_names(context.config.attributes, context.get_x_argument(as_dictionary=True))


def upgrade() -> None:
    """Add the two nullable columns."""
    p, schema = _names()
    op.add_column(f"{p}kindergartens", sa.Column("moving_to", sa.String(12)), schema=schema)
    op.add_column(f"{p}kindergartens", sa.Column("move_proposed_by", sa.String(200)), schema=schema)


def downgrade() -> None:
    """Drop them (a pending move is forgotten)."""
    p, schema = _names()
    op.drop_column(f"{p}kindergartens", "move_proposed_by", schema=schema)
    op.drop_column(f"{p}kindergartens", "moving_to", schema=schema)
