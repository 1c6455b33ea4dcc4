"""What an operator applied for, by index: ``(applicant, id)`` on change requests.

``requests --mine`` (``changes.list_requests_by``) reads ``… WHERE applicant = ? ORDER BY id``;
the index gives those rows in order instead of a scan of every request.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07
"""

from __future__ import annotations

from alembic import context, op

from studentstatus.adapters.sql.migrate import migration_names

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def _names() -> tuple[str, str | None]:
    return migration_names(context.config.attributes, context.get_x_argument(as_dictionary=True))


def upgrade() -> None:
    """Create the index."""
    p, schema = _names()
    op.create_index(
        f"ix_{p}change_requests_applicant",
        f"{p}change_requests",
        ["applicant", "id"],
        schema=schema,
    )


def downgrade() -> None:
    """Drop it."""
    p, schema = _names()
    op.drop_index(
        f"ix_{p}change_requests_applicant", table_name=f"{p}change_requests", schema=schema
    )
