"""Audit trail: every change, approval step, problem action and number issue is logged.

Entries are hash-chained by :mod:`studentstatus.domain.audit`, one chain per
writer scope (the operator's ``role:scope``); this module appends them inside
the caller's unit of work (so an entry commits or rolls back together with what
it describes) and verifies the stored chains against their stored heads.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

import attrs

from studentstatus.domain.audit import ChainReport, group_by_chain, seal_events, verify_chain
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
    """Seal ``events`` onto the ends of their operators' chains and append them in ``uow``;
    returns the count.

    Units of different scopes append to different chains and never collide.  Two
    units that append to one chain concurrently either take turns (a store that
    locks the chain's head: the SQL store) or race on ``seq`` (the second commit
    raises :class:`~studentstatus.errors.ConflictError` and the caller retries).
    """
    return audit_fields(
        uow, ((e.operator, e.action, e.subject, e.reason, e.before, e.after) for e in events), at=at
    )


def audit_fields(uow: UnitOfWork, events: Iterable[AuditEventFields], *, at: datetime) -> int:
    """:func:`audit_many` of events given as ``(operator, action, subject, reason, before,
    after)`` tuples (bulk runs: no :class:`AuditEvent` of each row).

    A log that seals events itself (:class:`~studentstatus.ports.SealingAuditLog`)
    is handed them; any other gets, chain by chain
    (:func:`~studentstatus.domain.audit.group_by_chain`, order kept within each),
    the entries of :func:`~studentstatus.domain.audit.seal_events` after the
    chain's last entry.

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
    sealed = [
        entry
        for chain, group in group_by_chain(events).items()
        for entry in seal_events(log.last(chain), at, group, chain=chain)
    ]
    if not sealed:
        return 0
    return log.append_many(sealed)


def audit(uow: UnitOfWork, event: AuditEvent, *, at: datetime) -> None:
    """Append one audit entry (see :func:`audit_many`)."""
    audit_many(uow, [event], at=at)


def verify(store: Store) -> ChainReport:
    """Recompute every stored chain and compare each with its stored head; the report
    names the broken chain and its first altered/removed/reordered/added entry, or
    (when ok) counts the chains and gives the :func:`~studentstatus.domain.audit.anchor`
    over their heads.

    The heads are read before the entries and again after them: entries appended
    while the log is read (a database that reads each statement afresh) are not
    taken for tampering.

    >>> from datetime import UTC
    >>> from studentstatus.adapters.memory import MemoryStore
    >>> store = MemoryStore()
    >>> t = datetime(2025, 9, 1, 8, 0, tzinfo=UTC)
    >>> with store.unit_of_work() as uow:
    ...     audit_many(uow, [AuditEvent("county:110105", "approve", "record:r1"),
    ...                      AuditEvent("kindergarten:1111000001", "register", "record:r2"),
    ...                      AuditEvent("county:110105", "approve", "record:r3")], at=t)
    ...     uow.commit()
    3
    >>> report = verify(store)
    >>> report.ok, report.checked, report.chains, len(report.anchor)
    (True, 3, 2, 64)
    """
    with store.unit_of_work() as uow:
        log = uow.audit
        before = log.heads()
        return verify_chain(log.iter(), heads=before, heads_after=log.heads)
