"""County approval (核准): PENDING → ACTIVE for the records of the operator's county.

Only a county approves (``approve_record`` in
:data:`~studentstatus.domain.jurisdiction.ROLE_RULES`), and only records of
its own county.  Each approval is the status machine's ``APPROVE`` change
(effective today), appended to the change log, and logged in the audit trail.

**County confirmation.**  A child without a resident identity number (no
document, or a document other than a resident ID / HK-Macau-Taiwan
residence permit) cannot be checked by public security; the county's
approval is the confirmation that the child exists, so APPROVE also sets
``record.county_confirmed`` for such a child (the field is part of the
APPROVE event, so replaying the log reproduces it).  A confirmed, active,
problem-free record gets a ``J`` number from
:func:`studentstatus.services.numbers.issue_numbers`.

**Units of work.**  ``approve_records(all_pending=True)`` first lists the
county's PENDING records (one read pass, ids spooled to a temporary file),
then approves them chunk by chunk, one unit of work per chunk.  A record the
machine refuses (e.g. its kindergarten lost its licence) is reported with
its violations and left PENDING; the others are approved.

>>> from studentstatus.domain.jurisdiction import Operator
>>> from studentstatus.services.intake import import_children
>>> from studentstatus.testing.examples import child_row, example_runtime
>>> rt = example_runtime()  # a memory store, kindergarten 1111000001 licensed, 2 Sep 2024
>>> rid = import_children(rt, Operator.parse("kindergarten:1111000001"), [child_row()]).records[
...     0].record_id
>>> report = approve_records(rt, Operator.parse("county:110105"), all_pending=True)
>>> report.approved == [rid], report.refused
(True, [])
>>> with rt.store.unit_of_work() as uow:
...     rec = uow.records.get(rid)
>>> rec.state.value, rec.county_confirmed
('ACTIVE', True)
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import attrs

from studentstatus.batching import chunked, spooled
from studentstatus.domain.child import RESIDENT_LIKE
from studentstatus.domain.enums import ChangeKind, State
from studentstatus.domain.jurisdiction import Operator
from studentstatus.domain.machine import Change, Context, apply
from studentstatus.domain.model import Child, Kindergarten, StatusChange, StatusRecord
from studentstatus.errors import RuleViolations, redact
from studentstatus.ports import UnitOfWork
from studentstatus.services.audit import AuditEvent, audit_many, child_digest, log_key
from studentstatus.services.authority import require_role
from studentstatus.services.intake import log
from studentstatus.services.runtime import Runtime

__all__ = ["ApprovalReport", "approve_records", "needs_county_confirmation"]


def needs_county_confirmation(child: Child | None) -> bool:
    """Whether the child has no resident ID (or HK/Macau/Taiwan permit) that police can check.

    >>> needs_county_confirmation(None)
    True
    """
    if child is None or child.document is None:
        return True
    return child.document.type.value not in RESIDENT_LIKE or not child.document.number


@attrs.define
class ApprovalReport:
    """Approved record ids, and the refused ones with their violations.

    ``approved_count`` counts every approval; ``approved`` lists the ids only
    when the run collects them (``approve_records(collect=False)`` keeps
    memory flat for a county of any size and hands each id to ``on_approved``
    instead).

    >>> ApprovalReport().to_dict()
    {'approved': [], 'refused': []}
    """

    approved: list[str] = attrs.field(factory=list)
    refused: list[dict[str, Any]] = attrs.field(factory=list)
    approved_count: int = 0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (``approved``: ids; ``refused``: id, code, field, messages)."""
        return {"approved": list(self.approved), "refused": list(self.refused)}


def _approve_chunk(
    rt: Runtime,
    operator: Operator,
    uow: UnitOfWork,
    ids: Sequence[str],
    report: ApprovalReport,
    *,
    collect: bool = True,
    on_approved: Callable[[str], None] | None = None,
) -> None:
    records = uow.records.get_many(list(ids))
    children = uow.children.get_many([r.child_id for r in records.values()])
    kgs: dict[str, Kindergarten | None] = {}
    updated: list[StatusRecord] = []
    events: list[StatusChange] = []
    audits: list[AuditEvent] = []
    now, today = rt.clock.now(), rt.clock.today()
    key = log_key(uow)  # a keyed log pins the approved child's identity (child_digest)
    for rid in ids:
        rec = records.get(rid)
        if rec is None or not operator.covers_record(rec):
            # Out of the county: answered exactly like a record that does not exist.
            if rec is not None:
                log.warning(
                    "refused: operator=%s action=approve_record subject=%s code=out_of_scope",
                    operator,
                    rid,
                )
            report.refused.append(_refusal(rid, "not_found", "", "学籍不存在", "no such record"))
            continue
        if rec.kindergarten_code not in kgs:
            kgs[rec.kindergarten_code] = uow.kindergartens.find(rec.kindergarten_code)
        child = children.get(rec.child_id)
        policy = rt.policy_for(rec.region_code)
        ctx = Context(today, policy, kindergarten=kgs[rec.kindergarten_code], child=child)
        change = Change(ChangeKind.APPROVE, today, operator=str(operator))
        try:
            new, event = apply(rec, change, context=ctx, recorded_at=now)
        except RuleViolations as exc:
            for v in exc.violations:
                report.refused.append(_refusal(rid, v.code, v.field, v.message_zh, v.message_en))
            continue
        if needs_county_confirmation(child) and not new.county_confirmed:
            new = attrs.evolve(new, county_confirmed=True)
            event = attrs.evolve(
                event,
                before={**event.before, "county_confirmed": False},
                after={**event.after, "county_confirmed": True},
            )
        # update() takes the version read and stores version + 1, as apply() computed.
        updated.append(attrs.evolve(new, version=rec.version))
        events.append(event)
        audits.append(
            AuditEvent(
                str(operator),
                "approve",
                rid,
                before={"state": rec.state.value},
                after={
                    "state": new.state.value,
                    "county_confirmed": new.county_confirmed,
                    **child_digest(key, child),
                },
            )
        )
    if updated:
        uow.records.update_many(updated)
        uow.changes.append_many(events)
        audit_many(uow, audits, at=now)
    uow.commit()
    report.approved_count += len(updated)
    for rec in updated:
        if collect:
            report.approved.append(rec.id)
        if on_approved is not None:
            on_approved(rec.id)


def _refusal(rid: str, code: str, field: str, zh: str, en: str) -> dict[str, Any]:
    # ``rid`` is what the caller gave: a number typed as a record id is masked.
    return {
        "record_id": redact(rid),
        "code": code,
        "field": field,
        "message_zh": zh,
        "message_en": en,
    }


def approve_records(
    rt: Runtime,
    operator: Operator,
    *,
    record_ids: Sequence[str] | None = None,
    all_pending: bool = False,
    chunk_size: int = 2000,
    collect: bool = True,
    on_approved: Callable[[str], None] | None = None,
) -> ApprovalReport:
    """Approve the given PENDING records (or every one in the county with ``all_pending``).

    Raises :class:`~studentstatus.errors.PermissionDenied` when the operator
    is not a county.  A named record outside its county is refused as ``not_found``,
    exactly like a record that does not exist; records the machine refuses are in
    ``refused`` too.
    Each approved id goes to ``on_approved`` once its chunk is committed; with
    ``collect=False`` the report keeps only ``approved_count`` (``approved``
    stays empty), for counties too big to list in memory.
    """
    opts: dict[str, Any] = {"collect": collect, "on_approved": on_approved}
    require_role(operator, "approve_record")
    report = ApprovalReport()
    if record_ids is not None and not all_pending:
        for ids in chunked(record_ids, chunk_size):
            with rt.store.unit_of_work() as uow:
                _approve_chunk(rt, operator, uow, ids, report, **opts)
        return report
    with spooled(_pending_ids(rt, operator), chunk_size) as chunks:
        for ids in chunks:
            with rt.store.unit_of_work() as uow:
                _approve_chunk(rt, operator, uow, ids, report, **opts)
    return report


def _pending_ids(rt: Runtime, operator: Operator) -> Iterator[str]:
    with rt.store.unit_of_work() as uow:
        for rec in uow.records.iter(states=[State.PENDING], **operator.list_filter()):
            yield rec.id
