"""A county's problems page by page: the keyset index ``(county_code, id)`` on problems.

A county's problem list reads ``… WHERE county_code = ? AND id > ? ORDER BY id LIMIT ?``:
the composite index gives those rows in order and stops at the page's end, where the
single-column ``ix_problems_county_code`` it replaces made the database sort the county's
problems first.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07
"""

from __future__ import annotations

from alembic import context, op

from studentstatus.adapters.sql.migrate import migration_names

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def _names() -> tuple[str, str | None]:
    return migration_names(context.config.attributes, context.get_x_argument(as_dictionary=True))


def upgrade() -> None:
    """Create ``(county_code, id)``, then drop the single-column index it replaces."""
    p, schema = _names()
    op.create_index(
        f"ix_{p}problems_county_code_id", f"{p}problems", ["county_code", "id"], schema=schema
    )
    op.drop_index(f"ix_{p}problems_county_code", table_name=f"{p}problems", schema=schema)


def downgrade() -> None:
    """Put the single-column index back and drop the composite one."""
    p, schema = _names()
    op.create_index(f"ix_{p}problems_county_code", f"{p}problems", ["county_code"], schema=schema)
    op.drop_index(f"ix_{p}problems_county_code_id", table_name=f"{p}problems", schema=schema)
