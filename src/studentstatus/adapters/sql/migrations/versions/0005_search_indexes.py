"""Portal search: keyset indexes on records by kindergarten and by region.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07

A search page of a scope reads ``… WHERE kindergarten_code = ? AND id > ? ORDER BY id
LIMIT ?`` (or ``region_code = ?``, or ``region_code = ? AND state = ?``): the composite
indexes ``(kindergarten_code, id)``, ``(region_code, id)`` and ``(region_code, state, id)``
give those rows in order, and stop at the page's end.  The first two replace the
single-column ``ix_records_kindergarten_code`` / ``ix_records_region_code``, whose
look-ups they serve as well.
"""

from __future__ import annotations

from alembic import context, op

from studentstatus.adapters.sql.migrate import migration_names

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_NEW = (
    ("records_kindergarten_code_id", ("kindergarten_code", "id")),
    ("records_region_code_id", ("region_code", "id")),
    ("records_region_state_id", ("region_code", "state", "id")),
)
_OLD = (
    ("records_kindergarten_code", ("kindergarten_code",)),
    ("records_region_code", ("region_code",)),
)


def _names() -> tuple[str, str | None]:
    return migration_names(context.config.attributes, context.get_x_argument(as_dictionary=True))


def _swap(
    drop: tuple[tuple[str, tuple[str, ...]], ...], create: tuple[tuple[str, tuple[str, ...]], ...]
) -> None:
    p, schema = _names()
    for name, cols in create:
        op.create_index(f"ix_{p}{name}", f"{p}records", list(cols), schema=schema)
    for name, _cols in drop:
        op.drop_index(f"ix_{p}{name}", table_name=f"{p}records", schema=schema)


def upgrade() -> None:
    """Create the composite keyset indexes, then drop the single-column ones they replace."""
    _swap(_OLD, _NEW)


def downgrade() -> None:
    """Put the single-column indexes back and drop the composite ones."""
    _swap(_NEW, _OLD)
