"""Identity claims: one row per identity key, locked by every registration of that key.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-07
"""

from __future__ import annotations

from alembic import context

from studentstatus.adapters.sql.migrate import migration_names

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def _names() -> tuple[str, str | None]:
    return migration_names(context.config.attributes, context.get_x_argument(as_dictionary=True))


def upgrade() -> None:
    """(placeholder: filled in by its change)."""


def downgrade() -> None:
    """(placeholder: filled in by its change)."""
