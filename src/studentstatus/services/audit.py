"""Audit trail: every change, approval step, problem action and number issue is logged.

Entries are hash-chained by :mod:`studentstatus.domain.audit`; this module
appends them inside the caller's unit of work (so an entry commits or rolls
back together with what it describes) and verifies a stored chain.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

import attrs

from studentstatus.domain.audit import ChainReport, seal_events, verify_chain
from studentstatus.ports import AuditEventFields, SealingAuditLog, Store, UnitOfWork

__all__ = ["AuditEvent", "audit", "audit_fields", "audit_many", "verify"]


@attrs.frozen
class AuditEvent:
    """What to log, before sealing: operator, action, subject, reason, before/after."""

    operator: str
    action: str
    subject: str
    reason: str = ""
    before: Mapping[str, Any] = attrs.field(factory=dict)
    after: Mapping[str, Any] = attrs.field(factory=dict)


def audit_many(uow: UnitOfWork, events: Iterable[AuditEvent], *, at: datetime) -> int:
    """Seal ``events`` onto the end of the chain and append them in ``uow``; returns the count.

    Two units that append concurrently race on ``seq``: the second commit
    raises :class:`~studentstatus.errors.ConflictError` and the caller retries.
    """
    return audit_fields(
        uow, ((e.operator, e.action, e.subject, e.reason, e.before, e.after) for e in events), at=at
    )


def audit_fields(uow: UnitOfWork, events: Iterable[AuditEventFields], *, at: datetime) -> int:
    """:func:`audit_many` of events given as ``(operator, action, subject, reason, before,
    after)`` tuples (bulk runs: no :class:`AuditEvent` of each row).

    A log that seals events itself (:class:`~studentstatus.ports.SealingAuditLog`)
    is handed them; any other gets the entries of
    :func:`~studentstatus.domain.audit.seal_events`.

    >>> from datetime import UTC
    >>> from studentstatus.adapters.memory import MemoryStore
    >>> store = MemoryStore()
    >>> t = datetime(2025, 9, 1, 8, 0, tzinfo=UTC)
    >>> with store.unit_of_work() as uow:
    ...     audit_fields(uow, [("ministry", "export", "all", "", {}, {"rows": 3})], at=t)
    ...     uow.commit()
    1
    >>> verify(store).ok
    True
    """
    log = uow.audit
    if isinstance(log, SealingAuditLog):
        return log.seal_and_append(events, at=at)
    sealed = list(seal_events(log.last(), at, events))
    if not sealed:
        return 0
    return log.append_many(sealed)


def audit(uow: UnitOfWork, event: AuditEvent, *, at: datetime) -> None:
    """Append one audit entry (see :func:`audit_many`)."""
    audit_many(uow, [event], at=at)


def verify(store: Store) -> ChainReport:
    """Recompute the stored chain; the report names the first altered/removed/reordered entry."""
    with store.unit_of_work() as uow:
        return verify_chain(uow.audit.iter())
