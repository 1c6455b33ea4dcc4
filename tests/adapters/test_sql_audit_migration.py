"""Migration 0004 on a log written before chains: the stored entries become the chain ``""``
(same hashes), the heads are filled from them, the key is ``(chain, seq)``; new entries go
to their operators' chains; downgrading refuses while per-scope chains hold entries."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from studentstatus.adapters.sql import SqlStore, upgrade
from studentstatus.adapters.sql.migrate import downgrade
from studentstatus.domain.audit import seal_events
from studentstatus.errors import StorageError
from studentstatus.services.audit import AuditEvent, audit_many, verify

AT = datetime(2025, 9, 1, 8, 0, 0, 123456, tzinfo=UTC)


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


def _primary_key(engine: sa.Engine, table: str) -> list[str]:
    with engine.connect() as conn:
        return list(sa.inspect(conn).get_pk_constraint(table)["constrained_columns"])


def test_upgrade_keeps_the_legacy_chain_and_fills_the_heads(engine: sa.Engine) -> None:
    """Entries stored at 0003 verify after 0004 as the chain "" with its head; new entries
    go to per-scope chains; downgrade refuses while they exist and works once they are gone."""
    prefix = f"a{uuid.uuid4().hex[:8]}_"
    upgrade(engine, "0003", prefix=prefix)
    try:
        legacy = list(
            seal_events(
                None,
                AT,
                [("county:110105", "approve", f"record:r{i}", "", {}, {}) for i in range(3)],
            )
        )
        old_log = sa.table(
            f"{prefix}audit_log",
            *(sa.column(c) for c in ("seq", "at", "operator", "action", "subject", "reason")),
            sa.column("before", sa.JSON),
            sa.column("after", sa.JSON),
            sa.column("prev_hash"),
            sa.column("hash"),
        )
        with engine.begin() as conn:
            conn.execute(
                old_log.insert(),
                [
                    {
                        "seq": e.seq,
                        "at": e.at.replace(tzinfo=None),
                        "operator": e.operator,
                        "action": e.action,
                        "subject": e.subject,
                        "reason": e.reason,
                        "before": {},
                        "after": {},
                        "prev_hash": e.prev_hash,
                        "hash": e.hash,
                    }
                    for e in legacy
                ],
            )
        upgrade(engine, prefix=prefix)
        assert _primary_key(engine, f"{prefix}audit_log") == ["chain", "seq"]
        store = SqlStore(engine, prefix=prefix)
        with store.unit_of_work() as uow:
            assert list(uow.audit.iter()) == legacy
            assert uow.audit.heads() == {"": (3, legacy[-1].hash)}
        report = verify(store)
        assert (report.ok, report.checked, report.chains) == (True, 3, 1)
        with store.unit_of_work() as uow:
            audit_many(uow, [AuditEvent("county:110105", "approve", "record:r9")], at=AT)
            uow.commit()
        report = verify(store)
        assert (report.ok, report.checked, report.chains) == (True, 4, 2)
        with store.unit_of_work() as uow:
            assert uow.audit.last("county:110105") is not None
            assert uow.audit.last() == legacy[-1]
        downgrade(engine, "0004", prefix=prefix)  # DDL is not transactional everywhere
        with pytest.raises(StorageError, match="per-scope chains"):
            downgrade(engine, "0003", prefix=prefix)
        with engine.begin() as conn:
            t = store.tables.audit_log
            conn.execute(sa.delete(t).where(t.c.chain != ""))
        downgrade(engine, "0003", prefix=prefix)
        assert _primary_key(engine, f"{prefix}audit_log") == ["seq"]
        with engine.connect() as conn:
            assert conn.execute(sa.select(sa.func.count()).select_from(old_log)).scalar() == 3
    finally:
        downgrade(engine, "base", prefix=prefix)
        with engine.begin() as conn:
            conn.execute(sa.text(f"DROP TABLE {prefix}alembic_version"))
