"""Approval queues and a kindergarten's problems read by index.

An operator's approval queue is the OPEN requests whose pending step is its own
(same role, same scope).  The step lived only inside the JSON ``steps`` column, so
the queue read every open request of the country; ``change_requests`` gets the
pending step's ``pending_role``, ``pending_scope`` and ``pending_due`` (NULL unless
the request is OPEN, see :func:`studentstatus.domain.approvals.pending_key`) and the
index ``(pending_role, pending_scope, id)``.  The columns of the requests already
stored are filled here, from their steps, page by page.

A kindergarten's problem list reads ``… WHERE kindergarten_code = ? AND id > ?
ORDER BY id LIMIT ?``: the index ``(kindergarten_code, id)`` on problems.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-08
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

import sqlalchemy as sa
from alembic import context, op

from studentstatus.adapters.sql.migrate import migration_names

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

ENUM, CODE = 32, 32
_PAGE = 1000


def _names() -> tuple[str, str | None]:
    return migration_names(context.config.attributes, context.get_x_argument(as_dictionary=True))


def _pending(steps: Sequence[dict[str, Any]]) -> tuple[str, str, date | None] | None:
    """The first PENDING step's (role, scope, due) — the rule of ``pending_key`` at 0007,
    kept here so that this migration means the same whatever later code does."""
    for step in steps:
        if step.get("decision") == "PENDING":
            due = step.get("due")
            return str(step["role"]), str(step["scope"]), date.fromisoformat(due) if due else None
    return None


def _backfill(p: str, schema: str | None) -> None:
    requests = sa.table(
        f"{p}change_requests",
        sa.column("id", sa.String),
        sa.column("status", sa.String),
        sa.column("steps", sa.JSON),
        sa.column("pending_role", sa.String),
        sa.column("pending_scope", sa.String),
        sa.column("pending_due", sa.Date),
        schema=schema,
    )
    update = (
        requests.update()
        .where(requests.c.id == sa.bindparam("b_id"))
        .values(
            pending_role=sa.bindparam("b_role"),
            pending_scope=sa.bindparam("b_scope"),
            pending_due=sa.bindparam("b_due"),
        )
    )
    bind = op.get_bind()
    last: str | None = None
    while True:  # keyset pages of the OPEN requests: flat memory
        q = (
            sa.select(requests.c.id, requests.c.steps)
            .where(requests.c.status == "OPEN")
            .order_by(requests.c.id)
            .limit(_PAGE)
        )
        if last is not None:
            q = q.where(requests.c.id > last)
        page = bind.execute(q).all()
        params = []
        for request_id, steps in page:
            key = _pending(steps or [])
            if key is not None:
                params.append(
                    {"b_id": request_id, "b_role": key[0], "b_scope": key[1], "b_due": key[2]}
                )
        if params:
            bind.execute(update, params)
        if len(page) < _PAGE:
            return
        last = page[-1][0]


def upgrade() -> None:
    """Add and fill the pending-step columns; create both indexes."""
    p, schema = _names()
    table = f"{p}change_requests"
    op.add_column(table, sa.Column("pending_role", sa.String(ENUM), nullable=True), schema=schema)
    op.add_column(table, sa.Column("pending_scope", sa.String(CODE), nullable=True), schema=schema)
    op.add_column(table, sa.Column("pending_due", sa.Date, nullable=True), schema=schema)
    _backfill(p, schema)
    op.create_index(
        f"ix_{p}change_requests_pending",
        table,
        ["pending_role", "pending_scope", "id"],
        schema=schema,
    )
    op.create_index(
        f"ix_{p}problems_kindergarten_code_id",
        f"{p}problems",
        ["kindergarten_code", "id"],
        schema=schema,
    )


def downgrade() -> None:
    """Drop both indexes and the pending-step columns."""
    p, schema = _names()
    table = f"{p}change_requests"
    op.drop_index(f"ix_{p}problems_kindergarten_code_id", table_name=f"{p}problems", schema=schema)
    op.drop_index(f"ix_{p}change_requests_pending", table_name=table, schema=schema)
    for column in ("pending_due", "pending_scope", "pending_role"):
        op.drop_column(table, column, schema=schema)
