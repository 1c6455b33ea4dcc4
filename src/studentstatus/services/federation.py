"""Work across provincial deployments: transfers between provinces, duplicate notices,
the national report.

The provinces and the hub are linked by PostgreSQL logical replication (set up by
``studentstatus federation publish`` / ``subscribe``; the adapter is
:mod:`studentstatus.adapters.sql.federation`).  The services here reach it
through two ports: a province's :class:`~studentstatus.ports.FederationLink` and
the hub's :class:`~studentstatus.ports.NationalHub`.

**A transfer between provinces** (跨省转园):

1. the destination's kindergarten (or county) enters the child and asks the
   source province for it — :func:`request_transfer_in` writes a REQUESTED
   transfer row (with the child's data, which stays in the destination) and a
   ``transfer_request`` message carrying only the child's national identity hash;
2. the source applies the message (:func:`apply_inbox`): the child's live record
   is found by that hash and a PENDING transfer row waits for the record's county;
   no live record → ``transfer_refused`` at once;
3. the source county decides (:func:`decide_transfer`): on approval the record
   is WITHDRAWN (change ``WITHDRAW``, audited) *in the same transaction* that
   sends ``transfer_approved`` with the national number, grade and verification;
4. the destination applies the approval: the child and an ACTIVE record with the
   same national number are written, the transfer row becomes DONE.

The child is never live in both provinces: the source lets go before the message
that lets the destination take the child exists.  Every message is applied
exactly once (its ``applied_at`` is set in the transaction that applies it) and
a province or the hub that is down only delays it (replication slots keep it).

**Duplicate notices**: :func:`dedupe` (the ministry, on the hub) sends each
province a ``duplicate_notice`` for every child live in two provinces; applying
it opens a ``DUPLICATE_ID`` problem on each local live record of that child,
naming the other province(s) — nothing more travels.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any

import attrs

from studentstatus.domain import machine
from studentstatus.domain.claims import claim_key, identity_key
from studentstatus.domain.enums import (
    ChangeKind,
    Grade,
    NumberKind,
    ProblemKind,
    State,
    VerificationResult,
)
from studentstatus.domain.federation import (
    Message,
    MessageKind,
    Transfer,
    TransferStatus,
    check_province,
    next_transfer_status,
)
from studentstatus.domain.jurisdiction import Operator
from studentstatus.domain.kindergarten import licence_violations
from studentstatus.domain.model import Child, IssuedNumber, StatusChange, StatusRecord
from studentstatus.errors import NotFoundError, RuleViolations, Violation, mask_number
from studentstatus.ports import FederationLink, NationalHub, UnitOfWork
from studentstatus.services.audit import AuditEvent, audit_many
from studentstatus.services.authority import absent, kindergarten_in_scope, require_role
from studentstatus.services.changes import close_stale_requests
from studentstatus.services.intake import new_problem
from studentstatus.services.runtime import Runtime

__all__ = [
    "ApplyReport",
    "DedupeReport",
    "NationalReport",
    "apply_inbox",
    "decide_transfer",
    "dedupe",
    "list_transfers",
    "national_report",
    "request_transfer_in",
]


def _v(code: str, field: str, zh: str, en: str) -> Violation:
    return Violation(code, field, zh, en)


# ------------------------------------------------------------------ destination


def request_transfer_in(
    rt: Runtime,
    link: FederationLink,
    operator: Operator,
    child: Child,
    *,
    from_province: str,
    to_kindergarten: str,
    effective: date | None = None,
    grade: Grade | None = None,
    reason: str = "",
) -> Transfer:
    """Ask province ``from_province`` for ``child`` (entered by the destination, with its
    document), into ``to_kindergarten`` of this province; returns the REQUESTED row.

    Refused (:class:`~studentstatus.errors.RuleViolations`): the source is this
    province (``same_province``), the child is live here already
    (``already_live_here``), the kindergarten's licence is not valid
    (``kindergarten_unlicensed``).
    """
    require_role(operator, "request_transfer")
    check_province(from_province)
    now, today = rt.clock.now(), rt.clock.today()
    with rt.store.unit_of_work() as uow:
        kg = kindergarten_in_scope(
            operator, "request_transfer", uow.kindergartens.find(to_kindergarten), to_kindergarten
        )
        ident = link.ident(identity_key(child))
        problems: list[Violation] = []
        if from_province == link.province:
            problems.append(
                _v(
                    "same_province",
                    "from_province",
                    "转出省与转入省相同：省内转园请用转园申请",
                    "the source is this province: use a transfer request within it",
                )
            )
        if link.live_records(uow, ident):
            problems.append(
                _v(
                    "already_live_here",
                    "child",
                    "该幼儿在本省已有在籍学籍",
                    "the child already has a live record in this province",
                )
            )
        problems.extend(licence_violations(kg, effective or today))
        if problems:
            raise RuleViolations(problems)
        transfer = Transfer(
            id=rt.new_id("x"),
            direction="in",
            status=TransferStatus.REQUESTED,
            other_province=from_province,
            ident=ident,
            effective_date=effective or today,
            kindergarten_code=kg.school_code,
            county_code=kg.region_code,
            grade=grade,
            child=child,
            requested_by=str(operator),
            reason=reason,
            created_at=now,
            updated_at=now,
        )
        link.add_transfer(uow, transfer)
        link.send(
            uow,
            Message(
                f"{transfer.id}-request",
                link.province,
                from_province,
                MessageKind.TRANSFER_REQUEST,
                {
                    "transfer": transfer.id,
                    "ident": ident,
                    "effective_date": transfer.effective_date.isoformat(),
                    "to_region": kg.region_code,
                },
                now,
            ),
        )
        audit_many(
            uow,
            [
                AuditEvent(
                    operator=str(operator),
                    action="federation.transfer_request",
                    subject=transfer.id,
                    reason=reason,
                    after={"from_province": from_province, "to_kindergarten": kg.school_code},
                )
            ],
            at=now,
        )
        uow.commit()
    return transfer


def _arrive(rt: Runtime, link: FederationLink, uow: UnitOfWork, t: Transfer, body: Any) -> str:
    """The approval reached the destination: write the child and its ACTIVE record."""
    now = rt.clock.now()
    child = t.child
    assert child is not None
    assert t.kindergarten_code is not None
    uow.claims.claim([claim_key(identity_key(child))])
    if link.live_records(uow, t.ident):
        # Registered here meanwhile (another path): keep one status; the county sees why.
        link.save_transfer(
            uow,
            attrs.evolve(
                t, status=TransferStatus.REFUSED, reason="already live here", updated_at=now
            ),
        )
        return "already_live_here"
    kg = uow.kindergartens.find(t.kindergarten_code)
    if kg is None:
        raise absent("kindergarten", t.kindergarten_code)
    number = str(body["national_number"])
    grade = Grade(body["grade"]) if body.get("grade") else t.grade
    record = StatusRecord(
        id=rt.new_id("r"),
        child_id=child.id,
        kindergarten_code=kg.school_code,
        region_code=kg.region_code,
        state=State.ACTIVE,
        grade=grade,
        entry_date=t.effective_date,
        national_number=number,
        verification=VerificationResult(body["verification"]) if body.get("verification") else None,
        version=1,  # its REGISTER event
    )
    after = {
        a.name: machine.json_value(getattr(record, a.name))
        for a in attrs.fields(StatusRecord)
        if a.name != "version"
    }
    event = StatusChange(
        record_id=record.id,
        seq=1,
        kind=ChangeKind.REGISTER,
        from_state=None,
        to_state=State.ACTIVE,
        effective_date=t.effective_date,
        recorded_at=now,
        operator=t.requested_by,
        reason=f"transfer {t.id} from province {t.other_province}",
        after=after,
    )
    if uow.children.get_many([child.id]).get(child.id) is None:
        uow.children.add(child)
    uow.records.add(record)
    uow.changes.append(event)
    kind = NumberKind.G if number.startswith("G") else NumberKind.J
    uow.numbers.claim_many([IssuedNumber(number, kind, record.id, now)])
    link.save_transfer(
        uow,
        attrs.evolve(
            t,
            status=TransferStatus.DONE,
            record_id=record.id,
            national_number=number,
            grade=grade,
            updated_at=now,
        ),
    )
    audit_many(
        uow,
        [
            AuditEvent(
                operator=t.requested_by,
                action="register",
                subject=record.id,
                reason=event.reason,
                after={
                    "state": State.ACTIVE.value,
                    "kindergarten_code": kg.school_code,
                    "grade": grade.value if grade else None,
                    "temp_number": None,
                    "child_id": child.id,
                    "transfer": t.id,
                },
            ),
            AuditEvent(
                operator=t.requested_by,
                action="issue_number",
                subject=record.id,
                reason=f"kept from province {t.other_province}",
                after={
                    "kind": kind.value,
                    "national_number": mask_number(number) if kind is NumberKind.G else number,
                    "basis": "transfer",
                },
            ),
        ],
        at=now,
    )
    return "arrived"


# ------------------------------------------------------------------------ source


def _requested(rt: Runtime, link: FederationLink, uow: UnitOfWork, m: Message) -> str:
    """A request reached the source: find the child's live record, wait for its county."""
    now = rt.clock.now()
    body = m.body
    live = link.live_records(uow, str(body["ident"]))
    records = [r for r in uow.records.get_many(live).values() if r.state is not State.PENDING]
    if len(records) != 1:
        why = "no live record" if not records else "more than one live record"
        link.send(
            uow,
            Message(
                f"{body['transfer']}-refused",
                link.province,
                m.source,
                MessageKind.TRANSFER_REFUSED,
                {"transfer": body["transfer"], "reason": why},
                now,
            ),
        )
        return "refused"
    record = records[0]
    link.add_transfer(
        uow,
        Transfer(
            id=str(body["transfer"]),
            direction="out",
            status=TransferStatus.PENDING,
            other_province=m.source,
            ident=str(body["ident"]),
            effective_date=date.fromisoformat(str(body["effective_date"])),
            kindergarten_code=record.kindergarten_code,
            county_code=record.region_code,
            record_id=record.id,
            grade=record.grade,
            requested_by=f"province:{m.source}",
            created_at=now,
            updated_at=now,
        ),
    )
    return "pending"


def _transfer_in_scope(
    link: FederationLink, uow: UnitOfWork, operator: Operator, transfer_id: str
) -> Transfer:
    t = link.get_transfer(uow, transfer_id)
    if t is None or t.county_code is None or not operator.covers_region(t.county_code):
        raise NotFoundError(
            f"no transfer {transfer_id}",
            field="transfer",
            message_zh=f"未找到跨省转园 {transfer_id}",
        )
    return t


def decide_transfer(
    rt: Runtime,
    link: FederationLink,
    operator: Operator,
    transfer_id: str,
    *,
    approve: bool,
    reason: str = "",
) -> Transfer:
    """The source county's decision on a PENDING transfer out of its county.

    Approval withdraws the record (``WITHDRAW``, reason naming the destination) and
    sends ``transfer_approved`` in one unit of work; refusal sends
    ``transfer_refused``.  A transfer outside the operator's county is answered as
    one that does not exist.
    """
    require_role(operator, "decide_transfer")
    now, today = rt.clock.now(), rt.clock.today()
    with rt.store.unit_of_work() as uow:
        t = _transfer_in_scope(link, uow, operator, transfer_id)
        new_status = next_transfer_status(t.status, "approve" if approve else "refuse")
        if t.direction != "out" or new_status is None:
            raise RuleViolations(
                [
                    _v(
                        "transfer_decided",
                        "transfer",
                        f"该跨省转园已处理（{t.status.label_zh}）",
                        f"the transfer is {t.status.value}, not PENDING",
                    )
                ]
            )
        if not approve and not reason:
            raise RuleViolations(
                [_v("reason_required", "reason", "不同意须说明理由", "a refusal needs a reason")]
            )
        body: dict[str, Any] = {"transfer": t.id}
        kind = MessageKind.TRANSFER_REFUSED
        if approve:
            assert t.record_id is not None
            record = uow.records.get(t.record_id)
            kg = uow.kindergartens.find(record.kindergarten_code)
            change = machine.Change(
                ChangeKind.WITHDRAW,
                max(today, record.entry_date),
                reason=f"transferred to province {t.other_province} ({t.id})",
                operator=str(operator),
            )
            context = machine.Context(today, rt.policy_for(record.region_code), kindergarten=kg)
            violations = machine.check(record, change, context=context)
            if violations or record.national_number is None:
                raise RuleViolations(
                    violations
                    or [
                        _v(
                            "no_national_number",
                            "record",
                            "该学籍尚无全国学籍号，不能跨省转出",
                            "the record has no national number yet",
                        )
                    ]
                )
            new, event = machine.apply(record, change, context=context, recorded_at=now)
            stored = uow.records.update(attrs.evolve(new, version=record.version))
            uow.changes.append(event)
            audit_many(
                uow,
                [
                    AuditEvent(
                        operator=str(operator),
                        action="change.withdraw",
                        subject=event.record_id,
                        reason=event.reason,
                        before=dict(event.before),
                        after=dict(event.after),
                    )
                ],
                at=now,
            )
            close_stale_requests(uow, operator, [stored], now)
            kind = MessageKind.TRANSFER_APPROVED
            body.update(
                national_number=record.national_number,
                grade=record.grade.value if record.grade else None,
                verification=record.verification.value if record.verification else None,
            )
        else:
            body["reason"] = reason
        decided = attrs.evolve(
            t, status=new_status, decided_by=str(operator), reason=reason, updated_at=now
        )
        link.save_transfer(uow, decided)
        link.send(
            uow, Message(f"{t.id}-{kind.value}", link.province, t.other_province, kind, body, now)
        )
        audit_many(
            uow,
            [
                AuditEvent(
                    operator=str(operator),
                    action=f"federation.{'approve' if approve else 'refuse'}_transfer",
                    subject=t.id,
                    reason=reason,
                    after={"to_province": t.other_province, "record": t.record_id},
                )
            ],
            at=now,
        )
        uow.commit()
    return decided


def list_transfers(
    rt: Runtime,
    link: FederationLink,
    operator: Operator,
    *,
    status: TransferStatus | None = None,
    limit: int = 100,
) -> list[Transfer]:
    """Transfer rows in the operator's scope (both directions), by county and id."""
    require_role(operator, "view")
    with rt.store.unit_of_work() as uow:
        if operator.region_prefix is None:  # a kindergarten: its own transfers
            return link.list_transfers(
                uow, kindergarten_code=operator.scope, status=status, limit=limit
            )
        return link.list_transfers(
            uow, region_prefix=operator.region_prefix, status=status, limit=limit
        )


# ------------------------------------------------------------------------ inbox


@attrs.frozen
class ApplyReport:
    """What :func:`apply_inbox` did: messages applied, by outcome."""

    applied: int
    outcomes: Mapping[str, int]


def _duplicate(rt: Runtime, link: FederationLink, uow: UnitOfWork, m: Message) -> str:
    others = sorted(str(p) for p in m.body.get("others", []))
    live = link.live_records(uow, str(m.body["ident"]))
    opened = []
    detail = (
        "also live in province " + ", ".join(others) + " / 另在 " + "、".join(others) + " 省在籍"
    )
    for record in uow.records.get_many(live).values():
        known = [
            p
            for p in uow.problems.for_record(record.id)
            if p.kind is ProblemKind.DUPLICATE_ID and p.detail == detail and p.resolution is None
        ]
        if not known:
            opened.append(new_problem(rt, record, ProblemKind.DUPLICATE_ID, detail=detail))
    if opened:
        uow.problems.add_many(opened)
        audit_many(
            uow,
            [
                AuditEvent(
                    operator="ministry",
                    action="problem.open",
                    subject=p.id,
                    reason="duplicate across provinces",
                    after={"record": p.record_id, "kind": p.kind.value, "others": others},
                )
                for p in opened
            ],
            at=rt.clock.now(),
        )
    return "duplicate_problems" if opened else "duplicate_known"


def _apply_one(rt: Runtime, link: FederationLink, uow: UnitOfWork, m: Message) -> str:
    if m.kind is MessageKind.DUPLICATE_NOTICE:
        return _duplicate(rt, link, uow, m)
    if m.kind is MessageKind.TRANSFER_REQUEST:
        return _requested(rt, link, uow, m)
    t = link.get_transfer(uow, str(m.body["transfer"]))
    if t is None or t.direction != "in":
        return "unknown_transfer"
    new_status = next_transfer_status(t.status, m.kind)
    if new_status is None:
        return "ignored"
    if m.kind is MessageKind.TRANSFER_APPROVED:
        return _arrive(rt, link, uow, t, m.body)
    link.save_transfer(
        uow,
        attrs.evolve(
            t,
            status=new_status,
            reason=str(m.body.get("reason", "")),
            decided_by=f"province:{m.source}",
            updated_at=rt.clock.now(),
        ),
    )
    return "refused"


def apply_inbox(rt: Runtime, link: FederationLink, *, batch: int = 50) -> ApplyReport:
    """Apply every message waiting for this province, each in its own unit of work with
    its ``applied`` mark (exactly once; several processes may run this at once: each
    takes messages the others have not locked).
    """
    outcomes: dict[str, int] = {}
    applied = 0
    while True:
        with rt.store.unit_of_work() as uow:
            messages = link.next_messages(uow, batch)
            if not messages:
                break
            for m in messages:
                if not link.mark_applied(uow, m.id):
                    continue
                outcome = _apply_one(rt, link, uow, m)
                outcomes[outcome] = outcomes.get(outcome, 0) + 1
                applied += 1
            uow.commit()
    return ApplyReport(applied, dict(sorted(outcomes.items())))


# -------------------------------------------------------------------------- hub


@attrs.frozen
class DedupeReport:
    """What :func:`dedupe` found: identity hashes live in two or more provinces, and the
    notices sent this run (0 on a second run with nothing new)."""

    findings: int
    notices: int


def dedupe(hub: NationalHub, operator: Operator) -> DedupeReport:
    """The ministry's national one-person-one-status check (see the module docs)."""
    require_role(operator, "national")
    findings, notices = hub.dedupe()
    return DedupeReport(findings, notices)


@attrs.frozen
class NationalReport:
    """ACTIVE records and problems across the provinces, from the hub's copies.

    Each figure equals the sum of the provinces' own reports (``services.reports``):
    ``total``, ``by_province``, ``by_county``, ``by_grade``, ``by_sex`` and
    ``problems`` (kind → status → count).
    """

    total: int
    by_province: dict[str, int]
    by_county: dict[str, int]
    by_grade: dict[str, int]
    by_sex: dict[str, int]
    problems: dict[str, dict[str, int]]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return attrs.asdict(self)


def national_report(hub: NationalHub, operator: Operator) -> NationalReport:
    """The national report (ministry only)."""
    require_role(operator, "national")
    counts = hub.counts()
    by_province: dict[str, int] = {}
    by_county: dict[str, int] = {}
    by_grade: dict[str, int] = {}
    by_sex: dict[str, int] = {}
    problems: dict[str, dict[str, int]] = {}
    for province, doc in sorted(counts.items()):
        by_province[province] = sum(doc.get("by_county", {}).values())
        for target, key in ((by_county, "by_county"), (by_grade, "by_grade"), (by_sex, "by_sex")):
            for k, n in doc.get(key, {}).items():
                target[k] = target.get(k, 0) + n
        for k, n in doc.get("problems", {}).items():
            kind, status = k.split("/", 1)
            slot = problems.setdefault(kind, {})
            slot[status] = slot.get(status, 0) + n
    return NationalReport(
        total=sum(by_province.values()),
        by_province=by_province,
        by_county=dict(sorted(by_county.items())),
        by_grade=dict(sorted(by_grade.items())),
        by_sex=dict(sorted(by_sex.items())),
        problems={k: dict(sorted(v.items())) for k, v in sorted(problems.items())},
    )
