"""Migration 0007 on requests stored before it: the pending-step columns of every OPEN
request are filled from its steps (page by page), closed requests keep NULL, and the
approval queues answer from them; downgrading to 0006 drops the columns again."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from studentstatus.adapters.sql import SqlStore, _rows, upgrade
from studentstatus.adapters.sql.migrate import downgrade
from studentstatus.domain.enums import ChangeKind, RequestStatus, Role, StepDecision
from studentstatus.domain.model import ApprovalStep, ChangeRequest

AT = datetime(2025, 9, 1, 8, 0, tzinfo=UTC)
DUE = date(2025, 9, 15)


@pytest.fixture(params=["sqlite", "postgresql", "mysql"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[sa.Engine]:
    """An engine on each backend."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path}/m.db"
    else:
        url = request.getfixturevalue(
            "postgres_url" if request.param == "postgresql" else "mysql_url"
        )
    eng = sa.create_engine(url)
    yield eng
    eng.dispose()


def _request(i: int, status: RequestStatus = RequestStatus.OPEN) -> ChangeRequest:
    county = "110105" if i % 2 else "110106"
    steps = (
        ApprovalStep(Role.KINDERGARTEN, f"11110{i:05d}", AT.date(), StepDecision.APPROVED),
        ApprovalStep(Role.COUNTY, county, DUE if i % 3 else None),
    )
    return ChangeRequest(
        f"q{i:05d}", f"r{i:05d}", ChangeKind.SUSPEND, "kindergarten:x", AT, steps, status=status
    )


def _old_rows(requests: list[ChangeRequest]) -> list[dict[str, Any]]:
    """The rows as a store at 0006 wrote them (no pending columns)."""
    rows = []
    for q in requests:
        row = _rows.request_to_row(q)
        for column in ("pending_role", "pending_scope", "pending_due"):
            del row[column]
        row["created_at"] = row["created_at"].replace(tzinfo=None)
        rows.append(row)
    return rows


_TYPES: dict[str, Any] = {
    "steps": sa.JSON,
    "evidence": sa.JSON,
    "effective_date": sa.Date,
    "until": sa.Date,
}


def test_upgrade_fills_the_queue_columns(engine: sa.Engine) -> None:
    """OPEN requests stored at 0006 are in their queues after 0007; closed ones in none."""
    prefix = f"q{uuid.uuid4().hex[:8]}_"
    upgrade(engine, "0006", prefix=prefix)
    try:
        # more than one backfill page (1,000 requests) of OPEN requests, and closed ones
        stored = [_request(i) for i in range(1, 1204)]
        stored += [_request(i, RequestStatus.APPROVED) for i in range(1204, 1210)]
        rows = _old_rows(stored)
        table = sa.table(
            f"{prefix}change_requests", *(sa.column(c, _TYPES.get(c)) for c in rows[0])
        )
        with engine.begin() as conn:
            conn.execute(table.insert(), rows)
        upgrade(engine, prefix=prefix)
        store = SqlStore(engine, prefix=prefix)
        with store.unit_of_work() as uow:
            queue = [q.id for q in uow.requests.pending_for(Role.COUNTY, "110105")]
            assert queue == [f"q{i:05d}" for i in range(1, 1204, 2)]
            late = uow.requests.pending_for(Role.COUNTY, "110106", due_before=date(2025, 9, 16))
            assert [q.id for q in late] == [f"q{i:05d}" for i in range(2, 1204, 2) if i % 3]
            assert list(uow.requests.pending_for(Role.KINDERGARTEN, "1111001205")) == []
            assert uow.requests.get("q01205") == _request(1205, RequestStatus.APPROVED)
        t = store.tables.change_requests
        with engine.connect() as conn:
            closed = conn.execute(
                sa.select(t.c.pending_role, t.c.pending_scope, t.c.pending_due).where(
                    t.c.status == "APPROVED"
                )
            ).all()
        assert {tuple(r) for r in closed} == {(None, None, None)}
        store.close()
        downgrade(engine, "0006", prefix=prefix)
        with engine.connect() as conn:
            columns = {c["name"] for c in sa.inspect(conn).get_columns(f"{prefix}change_requests")}
        assert "pending_role" not in columns
        assert "open_record_id" in columns
    finally:
        downgrade(engine, "base", prefix=prefix)
        with engine.begin() as conn:
            conn.execute(sa.text(f"DROP TABLE {prefix}alembic_version"))
