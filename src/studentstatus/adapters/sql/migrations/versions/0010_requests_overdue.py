"""Overdue requests by index: ``(pending_due, id)`` on change requests.

The overdue and lost-child queues (``changes.list_overdue_requests``,
``changes.list_lost_children``, the dropout ledgers) read ``… WHERE pending_due < ?``: only
open requests have a pending step, so the index gives the overdue ones without a scan of
every open request.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07
"""

from __future__ import annotations

from alembic import context, op

from studentstatus.adapters.sql.migrate import migration_names

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def _names() -> tuple[str, str | None]:
    return migration_names(context.config.attributes, context.get_x_argument(as_dictionary=True))


def upgrade() -> None:
    """Create the index."""
    p, schema = _names()
    op.create_index(
        f"ix_{p}change_requests_pending_due",
        f"{p}change_requests",
        ["pending_due", "id"],
        schema=schema,
    )


def downgrade() -> None:
    """Drop it."""
    p, schema = _names()
    op.drop_index(
        f"ix_{p}change_requests_pending_due", table_name=f"{p}change_requests", schema=schema
    )
