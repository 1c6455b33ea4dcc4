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
   ``transfer_request`` message carrying only the child's national identity hash,
   the destination kindergarten and county and the applicant;
2. the source applies the message (:func:`apply_inbox`): the child's live record
   is found by that hash and the transfer's approval chain is made as for a
   transfer inside one store
   (:func:`~studentstatus.domain.approvals.approval_chain`: the destination
   kindergarten — approved when it applied —, the source kindergarten, the source
   county, the destination county and, where the province's policy asks, both
   provinces); the chain goes back to the destination (``transfer_steps``).  No
   live record → ``transfer_refused`` at once;
3. each step is decided in the province it belongs to (:func:`decide_transfer`,
   by the operator the step names) and every decision travels to the other side
   (``transfer_steps``); a rejection ends the transfer on both sides;
4. when the last step approves, the source **withdraws** the record (change
   ``WITHDRAW``, audited) in the same transaction that sends ``transfer_approved``
   with the national number, grade and verification;
5. the destination applies the approval: the child and an ACTIVE record with the
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
from datetime import date, datetime
from typing import Any

import attrs

from studentstatus.domain import machine
from studentstatus.domain.age import eligible_grades, school_year_of
from studentstatus.domain.approvals import approval_chain, step_fits
from studentstatus.domain.child import check_child
from studentstatus.domain.claims import claim_key, compact_number, identity_key
from studentstatus.domain.enums import (
    ChangeKind,
    Grade,
    NumberKind,
    ProblemKind,
    ProblemStatus,
    Role,
    State,
    StepDecision,
    VerificationResult,
)
from studentstatus.domain.federation import (
    Message,
    MessageKind,
    Transfer,
    TransferStatus,
    check_province,
    decided_count,
    next_transfer_status,
    pending_step,
    side_of,
)
from studentstatus.domain.jurisdiction import Operator
from studentstatus.domain.kindergarten import licence_violations
from studentstatus.domain.model import (
    ApprovalStep,
    Child,
    IssuedNumber,
    Kindergarten,
    StatusRecord,
)
from studentstatus.errors import (
    NotFoundError,
    RuleViolations,
    StudentStatusError,
    Violation,
    mask_number,
)
from studentstatus.ports import FederationLink, NationalHub, UnitOfWork
from studentstatus.serialization import from_dict, to_dict
from studentstatus.services.audit import AuditEvent, audit_many, child_digest, log_key
from studentstatus.services.authority import absent, kindergarten_in_scope, require_role
from studentstatus.services.changes import apply_change, close_stale_requests
from studentstatus.services.intake import log, new_problem
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

    Refused (:class:`~studentstatus.errors.RuleViolations`, every reason at once): the
    source is this province (``same_province``), the child is live here already
    (``already_live_here``) or had a record here (``record_here``: a child coming back
    re-enrols that record), the child's data is not sound (the checks of
    :func:`~studentstatus.domain.child.check_child`: identity number, name, guardians …),
    the kindergarten's licence is not valid (``kindergarten_unlicensed``).
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
        elif link.records_with(uow, ident):
            problems.append(
                Violation(
                    "record_here",
                    "child",
                    "该幼儿曾在本省建籍：请在转出省办理离园后，为其原学籍办理重新入园",
                    "the child had a record in this province: once the source has withdrawn "
                    "it, re-enrol that record (REENROLL)",
                )
            )
        problems.extend(check_child(child, today=today))
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
                    "to_kindergarten": kg.school_code,
                    "to_region": kg.region_code,
                    "applicant": str(operator),
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
    number = link.open_number(t.id, str(body["sealed_number"]))
    kg = uow.kindergartens.find(t.kindergarten_code)
    doc = child.document
    # Everything that could stop the arrival is checked before anything is written: the
    # source has let the child go, so a refusal here goes back to it (transfer_failed) and
    # the source re-enrols its record.
    why = ""
    if link.live_records(uow, t.ident):
        why = "the child was registered here meanwhile"
    elif kg is None or licence_violations(kg, t.effective_date):
        why = "the destination kindergarten is gone or not licensed on the date"
    elif number.startswith("G") and (doc is None or number[1:] != compact_number(doc.number)):
        why = "the source's number does not match the document entered here"
    elif uow.records.find_by_number(number) is not None:
        why = "this province holds a record with that number (the child was here before)"
    elif uow.children.get_many([child.id]):
        why = "the child's id is taken here"
    if why:
        link.save_transfer(
            uow, attrs.evolve(t, status=TransferStatus.REFUSED, reason=why, updated_at=now)
        )
        link.send(
            uow,
            Message(
                f"{t.id}-failed",
                link.province,
                t.other_province,
                MessageKind.TRANSFER_FAILED,
                {"transfer": t.id, "reason": why},
                now,
            ),
        )
        return "failed"
    assert kg is not None
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
    event = machine.register_event(
        record,
        recorded_at=now,
        operator=t.requested_by,
        reason=f"transfer {t.id} from province {t.other_province}",
    )
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
            # The source's final chain (its last approval included) when it sent one.
            steps=tuple(from_dict(ApprovalStep, d) for d in body.get("steps") or ()) or t.steps,
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
                    **child_digest(log_key(uow), child),
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
    """A request reached the source: find the child's live record, make the approval
    chain, tell the destination the chain."""
    now, today = rt.clock.now(), rt.clock.today()
    body = m.body
    live = link.live_records(uow, str(body["ident"]))
    records = list(uow.records.get_many(live).values())
    why = ""
    if len(records) != 1:
        why = "no live record" if not records else "more than one live record"
    elif records[0].state is State.PENDING or records[0].national_number is None:
        why = "the record is not approved yet (no national number)"
    if why:
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
    applicant = Operator.parse(str(body["applicant"]))
    to_region, to_kindergarten = str(body["to_region"]), str(body["to_kindergarten"])
    if to_region[:2] != m.source or not (
        applicant.covers_region(to_region) or applicant.scope == to_kindergarten
    ):
        # A request must come from the province it names, for a kindergarten there.
        log.warning("federation: request %s names another province's kindergarten", m.id)
        return "ignored"
    source = uow.kindergartens.find(record.kindergarten_code)
    if source is None:  # pragma: no cover - a record's kindergarten always exists
        raise absent("kindergarten", record.kindergarten_code)
    # The destination's kindergarten as far as the chain needs it: its code and county.
    destination = Kindergarten(to_kindergarten, "", "", to_region, source.type)
    steps = approval_chain(
        ChangeKind.TRANSFER,
        record,
        source=source,
        destination=destination,
        policy=rt.policy_for(record.region_code),
        applicant=applicant,
        start=today,
        now=now,
    )
    sides = tuple(side_of(step, link.province, source.school_code) for step in steps)
    t = Transfer(
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
        requested_by=str(applicant),
        created_at=now,
        updated_at=now,
        steps=steps,
        sides=sides,
    )
    link.add_transfer(uow, t)
    _send_steps(link, uow, t, now)
    return "pending"


def _send_steps(link: FederationLink, uow: UnitOfWork, t: Transfer, now: datetime) -> None:
    """Tell the other side the chain as it stands (a newer copy has more decided steps)."""
    link.send(
        uow,
        Message(
            f"{t.id}-steps-{decided_count(t.steps)}",
            link.province,
            t.other_province,
            MessageKind.TRANSFER_STEPS,
            {
                "transfer": t.id,
                "steps": [to_dict(step) for step in t.steps],
                "sides": list(t.sides),
            },
            now,
        ),
    )


def _release(rt: Runtime, link: FederationLink, uow: UnitOfWork, t: Transfer) -> Transfer:
    """Every step approved, at the source: withdraw the record and send the approval with
    the child's number, in the caller's unit.  Raises RuleViolations if the record cannot
    leave (its state changed meanwhile, no national number yet)."""
    now, today = rt.clock.now(), rt.clock.today()
    assert t.record_id is not None
    record = uow.records.get(t.record_id)
    kg = uow.kindergartens.find(record.kindergarten_code)
    by = t.steps[-1].decided_by or f"province:{link.province}"
    change = machine.Change(
        ChangeKind.WITHDRAW,
        max(today, record.entry_date),
        reason=f"transferred to province {t.other_province} ({t.id})",
        operator=by,
    )
    context = machine.Context(today, rt.policy_for(record.region_code), kindergarten=kg)
    violations = machine.check(record, change, context=context)
    if record.national_number is None:
        violations.append(
            _v(
                "no_national_number",
                "record",
                "该学籍尚无全国学籍号，不能跨省转出",
                "the record has no national number yet",
            )
        )
    if violations:
        raise RuleViolations(violations)
    stored, _event = apply_change(uow, record, change, context=context, now=now, operator=by)
    close_stale_requests(uow, Operator.parse(by), [stored], now)
    link.send(
        uow,
        Message(
            f"{t.id}-approved",
            link.province,
            t.other_province,
            MessageKind.TRANSFER_APPROVED,
            {
                "transfer": t.id,
                # Sealed under the national key: the hub keeps the message, not the number
                # (a G number is the child's ID number).
                "sealed_number": link.seal_number(t.id, record.national_number or ""),
                "grade": record.grade.value if record.grade else None,
                "verification": record.verification.value if record.verification else None,
                "steps": [to_dict(step) for step in t.steps],
            },
            now,
        ),
    )
    released = attrs.evolve(t, status=TransferStatus.APPROVED, updated_at=now)
    link.save_transfer(uow, released)
    return released


def _covers(operator: Operator, t: Transfer) -> bool:
    """Whether ``operator`` may see transfer row ``t``: its county (or a region above), its
    kindergarten, or a step of this side that is the operator's."""
    if t.county_code is not None and operator.covers_region(t.county_code):
        return True
    if operator.role is Role.KINDERGARTEN and operator.scope == t.kindergarten_code:
        return True
    here = "source" if t.direction == "out" else "destination"
    return any(
        step_fits(operator, step) and side == here
        for step, side in zip(t.steps, t.sides, strict=True)
    )


def _transfer_in_scope(
    link: FederationLink, uow: UnitOfWork, operator: Operator, transfer_id: str
) -> Transfer:
    t = link.get_transfer(uow, transfer_id)
    if t is None or not _covers(operator, t):
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
    """Decide the pending step of a transfer's approval chain — on either side, by the
    operator the step names (the kindergarten, county or province of this province).

    The decision goes to the other province.  When it is the last approval and this is
    the source, the record is withdrawn and the approval sent in the same unit of
    work; at the destination, the source does that when the decision reaches it.  A
    rejection ends the transfer on both sides.  A transfer the operator may not see
    is answered as one that does not exist.
    """
    require_role(operator, "approve_step")
    now = rt.clock.now()
    with rt.store.unit_of_work() as uow:
        t = _transfer_in_scope(link, uow, operator, transfer_id)
        here = "source" if t.direction == "out" else "destination"
        index = pending_step(t.steps) if t.status in _OPEN else None
        if index is None:
            raise RuleViolations(
                [
                    _v(
                        "transfer_decided",
                        "transfer",
                        f"该跨省转园没有待审核的步骤（{t.status.label_zh}）",
                        f"the transfer has no step waiting ({t.status.value})",
                    )
                ]
            )
        step = t.steps[index]
        if t.sides[index] != here or not step_fits(operator, step):
            where = "本省" if t.sides[index] == here else f"{t.other_province} 省"
            raise RuleViolations(
                [
                    _v(
                        "not_your_step",
                        "transfer",
                        f"待审核的是{where}的 {step.role.label_zh} {step.scope}",
                        f"the step waiting is {step.role.value}:{step.scope}"
                        + ("" if t.sides[index] == here else f" in province {t.other_province}"),
                    )
                ]
            )
        if not approve and not reason:
            raise RuleViolations(
                [_v("reason_required", "reason", "不同意须说明理由", "a refusal needs a reason")]
            )
        decided = attrs.evolve(
            step,
            decision=StepDecision.APPROVED if approve else StepDecision.REJECTED,
            decided_by=str(operator),
            decided_at=now,
            reason=reason,
        )
        steps = (*t.steps[:index], decided, *t.steps[index + 1 :])
        t = attrs.evolve(
            t,
            steps=steps,
            status=t.status if approve else TransferStatus.REFUSED,
            decided_by=str(operator),
            reason=reason,
            updated_at=now,
        )
        link.save_transfer(uow, t)
        audit_many(
            uow,
            [
                AuditEvent(
                    operator=str(operator),
                    action=f"federation.{'approve' if approve else 'reject'}_step",
                    subject=t.id,
                    reason=reason,
                    after={"step": index, "other_province": t.other_province},
                )
            ],
            at=now,
        )
        if approve and pending_step(steps) is None and here == "source":
            t = _release(rt, link, uow, t)
        else:
            _send_steps(link, uow, t, now)
        uow.commit()
    return t


_OPEN = (TransferStatus.REQUESTED, TransferStatus.PENDING)


def _plausible(t: Transfer, steps: tuple[ApprovalStep, ...], sides: tuple[str, ...]) -> bool:
    """Whether the other side's copy of the chain only adds decisions that side may make:
    the same steps, the decisions already held unchanged, new ones on the sender's steps
    only (the destination's first copy may carry its applicant's own approval)."""
    here = "source" if t.direction == "out" else "destination"
    if len(steps) != len(sides) or (t.steps and len(steps) != len(t.steps)):
        return False
    for i, (step, side) in enumerate(zip(steps, sides, strict=True)):
        held = t.steps[i] if t.steps else None
        if held is not None:
            if (held.role, held.scope) != (step.role, step.scope):
                return False
            if held.decision is not StepDecision.PENDING:
                if held != step:
                    return False
                continue
        if step.decision is StepDecision.PENDING or side != here:
            continue
        if held is None and step.decided_by == t.requested_by:
            continue  # the destination's applicant, approved when it asked
        return False
    return True


def _steps_arrived(rt: Runtime, link: FederationLink, uow: UnitOfWork, m: Message) -> str:
    """The other side's copy of the chain: keep it if newer; a rejection ends the transfer
    here; the last approval, at the source, releases the child."""
    t = link.get_transfer(uow, str(m.body["transfer"]))
    if t is None or t.status not in _OPEN or m.source != t.other_province:
        return "ignored"
    steps = tuple(from_dict(ApprovalStep, d) for d in m.body["steps"])
    if decided_count(steps) <= decided_count(t.steps) and t.steps:
        return "ignored"
    sides = t.sides or tuple(str(x) for x in m.body["sides"])
    if not _plausible(t, steps, sides):
        log.warning("federation: transfer %s: a chain copy that decides steps not its own", t.id)
        return "ignored"
    now = rt.clock.now()
    rejected = any(step.decision is StepDecision.REJECTED for step in steps)
    t = attrs.evolve(
        t,
        steps=steps,
        sides=sides,
        status=TransferStatus.REFUSED if rejected else t.status,
        updated_at=now,
    )
    link.save_transfer(uow, t)
    if rejected:
        return "refused"
    if t.direction == "out" and pending_step(steps) is None:
        try:
            _release(rt, link, uow, t)
        except RuleViolations as exc:
            # The record cannot leave any more (its state changed since the chain began):
            # the transfer ends here, and the destination is told why.
            why = "; ".join(v.message_en for v in exc.violations)
            link.save_transfer(
                uow, attrs.evolve(t, status=TransferStatus.REFUSED, reason=why, updated_at=now)
            )
            link.send(
                uow,
                Message(
                    f"{t.id}-refused",
                    link.province,
                    t.other_province,
                    MessageKind.TRANSFER_REFUSED,
                    {"transfer": t.id, "reason": why},
                    now,
                ),
            )
            return "refused"
        return "released"
    return "step"


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
    """What :func:`apply_inbox` did: messages applied, by outcome, and the ids of those
    that failed (left unapplied: the next run tries them again)."""

    applied: int
    outcomes: Mapping[str, int]
    failed: tuple[str, ...] = ()


def _duplicate(rt: Runtime, link: FederationLink, uow: UnitOfWork, m: Message) -> str:
    others = sorted(str(p) for p in m.body.get("others", []))
    live = link.live_records(uow, str(m.body["ident"]))
    opened = []
    detail = (
        "also live in province " + ", ".join(others) + " / 另在 " + "、".join(others) + " 省在籍"
    )
    for record in uow.records.get_many(live).values():
        # One open cross-province problem per record: a later notice (a third province)
        # updates its text instead of opening another.
        known = [
            p
            for p in uow.problems.for_record(record.id)
            if p.kind is ProblemKind.DUPLICATE_ID
            and p.status is not ProblemStatus.RESOLVED
            and p.detail.startswith("also live in province")
        ]
        if not known:
            opened.append(new_problem(rt, record, ProblemKind.DUPLICATE_ID, detail=detail))
        elif known[0].detail != detail:
            uow.problems.update(attrs.evolve(known[0], detail=detail))
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


def _failed(rt: Runtime, link: FederationLink, uow: UnitOfWork, m: Message) -> str:
    """The destination could not take the child the source let go: the source re-enrols
    its record (``REENROLL``: PENDING, for its county to approve again), so the child is
    live here again, and the transfer is refused with the destination's reason."""
    t = link.get_transfer(uow, str(m.body["transfer"]))
    if (
        t is None
        or t.direction != "out"
        or t.status is not TransferStatus.APPROVED
        or m.source != t.other_province
        or t.record_id is None
    ):
        return "ignored"
    now, today = rt.clock.now(), rt.clock.today()
    why = str(m.body.get("reason", ""))
    record = uow.records.get(t.record_id)
    kg = uow.kindergartens.find(record.kindergarten_code)
    child = uow.children.get_many([record.child_id]).get(record.child_id)
    day = max(today, record.entry_date)
    policy = rt.policy_for(record.region_code)
    # Back in the grade it left, or, a school year later, the lowest grade its age fits.
    grade = record.grade
    if child is not None:
        fitting = eligible_grades(child.birth_date, school_year_of(day, policy), policy)
        if fitting and grade not in fitting:
            grade = fitting[0]
    change = machine.Change(
        ChangeKind.REENROLL,
        day,
        reason=f"transfer {t.id} to province {t.other_province} failed: {why}",
        operator=f"province:{link.province}",
        grade=grade,
    )
    context = machine.Context(today, policy, kindergarten=kg, child=child)
    outcome = "reenrolled"
    refused = machine.check(record, change, context=context)
    if record.state is State.WITHDRAWN and not refused:
        apply_change(uow, record, change, context=context, now=now, operator=change.operator)
    else:
        outcome = "failed_left"  # the county sees the refused transfer and its reason
        log.warning(
            "federation: transfer %s failed and the record could not re-enrol: %s",
            t.id,
            ", ".join(v.code for v in refused),
        )
        why += " (not re-enrolled: " + ", ".join(v.code for v in refused) + ")"
    link.save_transfer(
        uow, attrs.evolve(t, status=TransferStatus.REFUSED, reason=why, updated_at=now)
    )
    return outcome


def _apply_one(rt: Runtime, link: FederationLink, uow: UnitOfWork, m: Message) -> str:
    if m.kind is MessageKind.UNKNOWN:
        msg = f"message {m.id}: a kind or body this version cannot read"
        raise ValueError(msg)
    if m.kind is MessageKind.DUPLICATE_NOTICE:
        return _duplicate(rt, link, uow, m)
    if m.kind is MessageKind.TRANSFER_REQUEST:
        return _requested(rt, link, uow, m)
    if m.kind is MessageKind.TRANSFER_STEPS:
        return _steps_arrived(rt, link, uow, m)
    if m.kind is MessageKind.TRANSFER_FAILED:
        return _failed(rt, link, uow, m)
    t = link.get_transfer(uow, str(m.body["transfer"]))
    if t is None or t.direction != "in" or m.source != t.other_province:
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
    its ``applied`` mark: exactly once, or not at all.  Several processes may run this
    at once: the applied mark is taken under the row's lock, so a message another process
    is applying waits for it and is then found applied (not applied again).  A message
    whose effect fails (a rule, a conflict, a body or kind this version cannot read) is
    rolled back, left unapplied for the next run and named in the report; the others go on.
    """
    outcomes: dict[str, int] = {}
    failed: list[str] = []
    applied = 0
    while True:
        with rt.store.unit_of_work() as uow:
            waiting = [m for m in link.next_messages(uow, batch + len(failed))
                       if m.id not in failed]  # fmt: skip
        if not waiting:
            break
        for m in waiting:
            try:
                with rt.store.unit_of_work() as uow:
                    if not link.mark_applied(uow, m.id):
                        continue  # another process applied it meanwhile
                    outcome = _apply_one(rt, link, uow, m)
                    uow.commit()
            except (StudentStatusError, LookupError, ValueError, TypeError, AttributeError) as exc:
                # A rule or a conflict, or a malformed body: this message only.
                log.warning("federation: message %s not applied: %s", m.id, type(exc).__name__)
                failed.append(m.id)
                continue
            outcomes[outcome] = outcomes.get(outcome, 0) + 1
            applied += 1
    return ApplyReport(applied, dict(sorted(outcomes.items())), tuple(failed))


# -------------------------------------------------------------------------- hub


@attrs.frozen
class DedupeReport:
    """What :func:`dedupe` found: identity hashes live in two or more provinces, and the
    notices sent this run (0 on a second run with nothing new)."""

    findings: int
    notices: int


def dedupe(hub: NationalHub, operator: Operator, *, rt: Runtime | None = None) -> DedupeReport:
    """The ministry's national one-person-one-status check (see the module docs).

    ``rt`` is a runtime on the hub's own store (its database, with the library's tables):
    each run is then written to that store's audit chain (``federation.dedupe``, with the
    counts), so the hub's node has a trail that ``audit verify`` checks like any other.
    """
    require_role(operator, "national")
    findings, notices = hub.dedupe()
    if rt is not None:
        with rt.store.unit_of_work() as uow:
            audit_many(
                uow,
                [
                    AuditEvent(
                        operator=str(operator),
                        action="federation.dedupe",
                        subject="national",
                        after={"findings": findings, "notices": notices},
                    )
                ],
                at=rt.clock.now(),
            )
            uow.commit()
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
