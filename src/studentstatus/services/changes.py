"""Status changes (学籍变动): requests, approval chains, dry runs, queues.

:func:`request_change` checks every guard of the status machine for the change
and then either applies it at once (kinds without approvals: PROMOTE,
GRADUATE, REENROLL) or opens a :class:`~studentstatus.domain.model.ChangeRequest`
carrying its chain of approval steps (:mod:`studentstatus.domain.approvals`).
Each step is decided by an operator whose role and scope fit it
(:func:`approve_step`, :func:`reject_step`); the applicant may
:func:`withdraw_request` before the last approval.  The change is applied only
when the last step approves, in the same unit of work as the record update
(optimistic version check), the change-log append, the request update and the
audit entries: all of them commit, or none.

Rules kept here:

* **one open request per record**: while a request is open every other change
  of the record is refused with ``open_request_exists`` (the store also holds
  the rule);
* **scope**: an operator acts only on records it covers; a transfer is applied
  for by the **destination** (it must cover the destination kindergarten) and the
  destination sees the incoming child only through the request
  (:func:`list_pending_requests`, :func:`get_request`), never through record look-ups;
* **queues**: :func:`list_pending_requests` lists what waits for an operator (the pending
  step is its own), :func:`list_overdue_requests` the requests of its jurisdiction whose
  pending step is past its due date, :func:`list_lost_children` the transfers that the
  source kindergarten released but nobody completed in time (the county's lost-child
  queue; the child stays on the source roll until the transfer is applied).

Every request, step decision, withdrawal and applied change is appended to the
audit log; refusals are logged (operator, action, masked subject).

>>> import random
>>> from datetime import date, datetime, timezone
>>> from studentstatus.adapters.memory import MemoryStore
>>> from studentstatus.domain.enums import ChangeKind, Grade, KindergartenType, State
>>> from studentstatus.domain.jurisdiction import Operator
>>> from studentstatus.domain.model import Kindergarten, Licence, StatusRecord
>>> from studentstatus.services.runtime import FixedClock, Runtime
>>> lic = Licence("L1", "county", date(2020, 1, 1), date(2030, 12, 31))
>>> kg = Kindergarten("1111000001", "x", "一幼", "110105", KindergartenType.PUBLIC,
...                   licences=(lic,))
>>> store = MemoryStore()
>>> with store.unit_of_work() as uow:
...     uow.kindergartens.add(kg)
...     uow.records.add(StatusRecord("r1", "c1", kg.school_code, "110105", State.ACTIVE,
...                                  Grade.JUNIOR, date(2025, 9, 1)))
...     uow.commit()
>>> rt = Runtime(store, FixedClock(datetime(2026, 3, 2, 9, tzinfo=timezone.utc)),
...              random.Random(1))
>>> kgop, county = Operator.parse("kindergarten:1111000001"), Operator.parse("county:110105")
>>> dry = dry_run(rt, kgop, "r1", ChangeKind.SUSPEND, until=date(2026, 9, 1),
...               reason="illness")
>>> dry.allowed, dry.approvals
(True, ('county',))
>>> out = request_change(rt, kgop, "r1", ChangeKind.SUSPEND, until=date(2026, 9, 1),
...                      reason="illness")
>>> out.applied, [v.step for v in list_pending_requests(rt, county)]
(False, ['county:110105'])
>>> done = approve_step(rt, county, out.request.id)
>>> done.applied, done.record.state
(True, <State.SUSPENDED: 'SUSPENDED'>)
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from typing import Any

import attrs

from studentstatus.batching import chunked
from studentstatus.domain import approvals as chains
from studentstatus.domain import machine
from studentstatus.domain.enums import (
    ChangeKind,
    Grade,
    ProblemStatus,
    RequestStatus,
    Role,
    StepDecision,
)
from studentstatus.domain.jurisdiction import Operator
from studentstatus.domain.model import (
    ApprovalStep,
    ChangeRequest,
    Kindergarten,
    StatusChange,
    StatusRecord,
)
from studentstatus.errors import (
    ConflictError,
    NotFoundError,
    PermissionDenied,
    RuleViolations,
    TryAgain,
    ValidationError,
    Violation,
    mask_number,
)
from studentstatus.ports import UnitOfWork
from studentstatus.services._renamed import renamed
from studentstatus.services.audit import AuditEvent, audit_many
from studentstatus.services.authority import (
    absent,
    covers_request,
    is_home_request,
    record_in_scope,
    request_in_scope,
    require_role,
)
from studentstatus.services.records import find_in
from studentstatus.services.runtime import Runtime

__all__ = [
    "ChangeOutcome",
    "DryRun",
    "RequestView",
    "apply_change",
    "approve_step",
    "close_stale_requests",
    "commit_request",
    "dry_run",
    "get_request",
    "list_lost_children",
    "list_overdue_requests",
    "list_pending_requests",
    "list_requests_by",
    "reject_step",
    "request_change",
    "request_change_in",
    "withdraw_request",
]

log = logging.getLogger("studentstatus.services")

_CHUNK = 2000


# --------------------------------------------------------------------------- results


@attrs.frozen
class DryRun:
    """What a change would meet: allowed or not, every unmet rule, the approvals it needs.

    >>> DryRun(True, (), ("county",)).to_dict()
    {'allowed': True, 'violations': [], 'approvals': ['county']}
    """

    allowed: bool
    violations: tuple[Violation, ...]
    approvals: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: ``{"allowed", "violations": [{code, field, message_zh, message_en}],
        "approvals": [roles]}``."""
        return {
            "allowed": self.allowed,
            "violations": [
                {
                    "code": v.code,
                    "field": v.field,
                    "message_zh": v.message_zh,
                    "message_en": v.message_en,
                    **({"hint": v.hint} if v.hint else {}),
                }
                for v in self.violations
            ],
            "approvals": list(self.approvals),
        }


@attrs.frozen
class ChangeOutcome:
    """Result of a request or a step decision.

    ``applied`` says whether the change reached the record; ``record`` is the
    updated record when it did *and* the operator covers it; ``request`` is the
    request (``None`` for a change applied directly); ``change`` the appended event.

    >>> ChangeOutcome(False).applied
    False
    """

    applied: bool
    request: ChangeRequest | None = None
    change: StatusChange | None = None
    record: StatusRecord | None = None


@attrs.frozen
class RequestView:
    """A request as shown to an operator (the only way a destination sees an incoming child).

    ``step`` is the pending step as ``role:scope`` (``None`` once decided),
    ``step_index`` its 1-based position, ``due`` its due date.

    >>> v = RequestView("q1", ChangeKind.TRANSFER, "r1", RequestStatus.OPEN, "county:110105",
    ...                 3, date(2026, 3, 16), "kindergarten:1111000002")
    >>> v.to_dict()["change"], v.to_dict()["due"]
    ('TRANSFER', '2026-03-16')
    """

    id: str
    change: ChangeKind
    record: str
    status: RequestStatus
    step: str | None
    step_index: int | None
    due: date | None
    applicant: str
    from_kindergarten: str = ""
    to_kindergarten: str | None = None
    effective_date: date | None = None
    reason: str = ""
    child_name: str = ""
    grade: Grade | None = None
    number: str = ""
    overdue: bool = False
    lost: bool = False
    steps: tuple[ApprovalStep, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready mapping (dates ISO, enums by value, steps as objects)."""
        return {
            "id": self.id,
            "change": self.change.value,
            "record": self.record,
            "status": self.status.value,
            "step": self.step,
            "step_index": self.step_index,
            "due": self.due.isoformat() if self.due else None,
            "applicant": self.applicant,
            "from_kindergarten": self.from_kindergarten,
            "to_kindergarten": self.to_kindergarten,
            "effective_date": self.effective_date.isoformat() if self.effective_date else None,
            "reason": self.reason,
            "child_name": self.child_name,
            "grade": self.grade.value if self.grade else None,
            "number": self.number,
            "overdue": self.overdue,
            "lost": self.lost,
            "steps": [_step_dict(s) for s in self.steps],
        }


def _step_dict(step: ApprovalStep) -> dict[str, Any]:
    return {
        "role": step.role.value,
        "scope": step.scope,
        "due": step.due.isoformat() if step.due else None,
        "decision": step.decision.value,
        "decided_by": step.decided_by,
        "decided_at": step.decided_at.isoformat() if step.decided_at else None,
        "reason": step.reason,
    }


# --------------------------------------------------------------------------- helpers


def _ensure_can(operator: Operator, action: str, subject: str) -> None:
    del subject  # the role refusal names the action only
    require_role(operator, action)


def _kind(kind: ChangeKind | str) -> ChangeKind:
    requestable = ", ".join(k.value for k in ChangeKind if k not in machine.SYSTEM_CHANGES)
    if isinstance(kind, ChangeKind):
        parsed: ChangeKind | None = kind
    else:
        try:
            found = ChangeKind.parse(kind)
        except ValueError:
            found = None
        parsed = found if isinstance(found, ChangeKind) else None
    if parsed is None:
        raise RuleViolations(
            [
                Violation(
                    "change_kind_unknown",
                    "change",
                    f"未知的变动类型：{str(kind)[:40]}",
                    f"unknown change kind: {str(kind)[:40]!r}",
                    hint=requestable,
                )
            ]
        )
    if parsed in machine.SYSTEM_CHANGES:
        raise RuleViolations(
            [
                Violation(
                    "change_kind_system",
                    "change",
                    f"{parsed.label_zh}由系统随幼儿园迁移办理，不能申请",
                    f"{parsed.value} is applied by the library when a kindergarten moves; "
                    "it cannot be requested",
                    hint=requestable,
                )
            ]
        )
    return parsed


def _load_record(uow: UnitOfWork, ref: str) -> StatusRecord:
    record = find_in(uow, ref)
    if record is None:
        raise absent("record", ref)
    return record


def _load_request(uow: UnitOfWork, request_id: str) -> ChangeRequest | None:
    try:
        return uow.requests.get(request_id)
    except NotFoundError:
        return None


def _scoped_request(
    uow: UnitOfWork, operator: Operator, request_id: str, action: str
) -> tuple[ChangeRequest, StatusRecord | None]:
    """The request and its record, if the request lies in the operator's jurisdiction;
    otherwise the same :class:`NotFoundError` as for no request at all."""
    request = _load_request(uow, request_id)
    record: StatusRecord | None = None
    destination: Kindergarten | None = None
    if request is not None:
        record = uow.records.get_many([request.record_id]).get(request.record_id)
        if request.to_kindergarten:
            destination = uow.kindergartens.find(request.to_kindergarten)
    found = request_in_scope(
        operator, action, request, request_id, record=record, destination=destination
    )
    return found, record


def _step_refusal(operator: Operator, request: ChangeRequest) -> PermissionDenied:
    """``not_step_approver``, saying whose turn it is (only said to operators in the
    request's jurisdiction)."""
    pending = _pending(request)
    if pending is None:
        return PermissionDenied(str(operator), f"request {request.id}", code="not_step_approver")
    index, step = pending
    log.warning(
        "refused: operator=%s action=approve_step subject=%s code=not_step_approver",
        operator,
        request.id,
    )
    n = len(request.steps)
    who = f"{step.role.value}:{step.scope}"
    if step.role is Role.KINDERGARTEN:
        side = "destination" if step.scope == request.to_kindergarten else "source"
        whose_en = f"the {side} kindergarten's ({who})"
        whose_zh = f"{'转入' if side == 'destination' else '转出'}幼儿园（{who}）"
    else:
        whose_en, whose_zh = f"{who}'s", who
    later = [i for i, s in enumerate(request.steps) if i > index and _fits(operator, s)]
    if later:
        turn_en = f"; {operator} acts at step {later[0] + 1}"
        turn_zh = f"；{operator} 在第 {later[0] + 1} 步审核"
    else:
        turn_en = f"; {operator} has no pending step in it"
        turn_zh = f"；{operator} 在该申请中没有待审核的步骤"
    err = PermissionDenied(
        str(operator),
        f"request {request.id}: step {index + 1} of {n} is {whose_en}{turn_en}",
        code="not_step_approver",
    )
    err.message_en = f"step {index + 1} of {n} of request {request.id} is {whose_en}{turn_en}"
    err.message_zh = f"申请 {request.id} 共 {n} 步，当前第 {index + 1} 步由{whose_zh}审核{turn_zh}"
    return err


def _home_refusal(
    request: ChangeRequest, operator: Operator, reason: str, now: datetime
) -> ChangeRequest:
    """The home side refuses a foreign request at once: the pending step is recorded as
    rejected by ``operator`` and the request ends REJECTED."""
    if not reason.strip():
        raise RuleViolations(
            [_v("reason_required", "reason", "不同意时须填写理由", "a rejection needs a reason")]
        )
    pending = _pending(request)
    if pending is None:
        return attrs.evolve(request, status=RequestStatus.REJECTED)
    index, step = pending
    decided = attrs.evolve(
        step,
        decision=StepDecision.REJECTED,
        decided_by=str(operator),
        decided_at=now,
        reason=reason.strip(),
    )
    steps = (*request.steps[:index], decided, *request.steps[index + 1 :])
    return attrs.evolve(request, steps=steps, status=RequestStatus.REJECTED)


def _open_problem(uow: UnitOfWork, record_id: str) -> bool:
    return any(p.status is not ProblemStatus.RESOLVED for p in uow.problems.for_record(record_id))


def _context(
    rt: Runtime,
    uow: UnitOfWork,
    record: StatusRecord,
    destination: Kindergarten | None,
    *,
    open_request: bool,
) -> machine.Context:
    try:
        child = uow.children.get(record.child_id)
    except NotFoundError:
        child = None
    return machine.Context(
        today=rt.clock.today(),
        policy=rt.policy_for(record.region_code),  # the record's province's rules
        kindergarten=uow.kindergartens.find(record.kindergarten_code),
        destination=destination,
        child=child,
        open_request=open_request,
        has_open_problem=_open_problem(uow, record.id),
    )


def _fits(operator: Operator, step: ApprovalStep) -> bool:
    return chains.step_fits(operator, step)


def _pending(request: ChangeRequest) -> tuple[int, ApprovalStep] | None:
    for i, step in enumerate(request.steps):
        if step.decision is StepDecision.PENDING:
            return i, step
    return None


def _audit_change(operator: str, event: StatusChange, request_id: str = "") -> AuditEvent:
    return AuditEvent(
        operator=operator,
        action=f"change.{event.kind.value.lower()}",
        subject=event.record_id,
        reason=event.reason + (f" (request {request_id})" if request_id else ""),
        before=dict(event.before),
        after=dict(event.after),
    )


def _apply(
    uow: UnitOfWork,
    record: StatusRecord,
    change: machine.Change,
    context: machine.Context,
    now: datetime,
) -> tuple[StatusRecord, StatusChange]:
    new, event = machine.apply(record, change, context=context, recorded_at=now)
    stored = uow.records.update(attrs.evolve(new, version=record.version))
    uow.changes.append(event)
    return stored, event


def apply_change(
    uow: UnitOfWork,
    record: StatusRecord,
    change: machine.Change,
    *,
    context: machine.Context,
    now: datetime,
    operator: str,
) -> tuple[StatusRecord, StatusChange]:
    """Apply a change the caller has checked (``machine.check``) inside its unit of work: the
    record updated, the change event appended and audited (``change.<kind>``).  Returns the
    stored record and the event.  For services that change a record on their own authority
    (a transfer between provinces, its failure).

    >>> from datetime import date, datetime, timezone
    >>> from studentstatus.adapters.memory import MemoryStore
    >>> from studentstatus.domain.enums import ChangeKind, Grade, State
    >>> record = StatusRecord("r1", "c1", "1111000001", "110105", State.ACTIVE,
    ...                       grade=Grade.MIDDLE, entry_date=date(2025, 9, 1))
    >>> store = MemoryStore()
    >>> with store.unit_of_work() as uow:
    ...     uow.records.add(record)
    ...     change = machine.Change(ChangeKind.WITHDRAW, date(2026, 3, 2), reason="family moved")
    ...     stored, event = apply_change(
    ...         uow, uow.records.get("r1"), change, context=machine.Context(date(2026, 3, 2)),
    ...         now=datetime(2026, 3, 2, tzinfo=timezone.utc), operator="county:110105")
    ...     uow.commit()
    >>> stored.state, event.kind
    (<State.WITHDRAWN: 'WITHDRAWN'>, <ChangeKind.WITHDRAW: 'WITHDRAW'>)
    >>> with store.unit_of_work() as uow:
    ...     [e.action for e in uow.audit.iter()]
    ['change.withdraw']
    """
    stored, event = _apply(uow, record, change, context, now)
    audit_many(uow, [_audit_change(operator, event)], at=now)
    return stored, event


@attrs.frozen
class _Prepared:
    record: StatusRecord
    change: machine.Change
    context: machine.Context
    source: Kindergarten | None
    destination: Kindergarten | None
    violations: tuple[Violation, ...]
    steps: tuple[ApprovalStep, ...]
    superseded: ChangeRequest | None = None
    """An open foreign request that the home side's new request closes."""


def _v(code: str, field: str, zh: str, en: str, hint: str = "") -> Violation:
    return Violation(code, field, zh, en, hint)


def _prepare(
    rt: Runtime,
    uow: UnitOfWork,
    operator: Operator,
    ref: str,
    kind: ChangeKind,
    *,
    effective: date | None,
    to_kindergarten: str | None,
    until: date | None,
    reason: str,
    evidence: Sequence[str],
    grade: Grade | None,
) -> _Prepared:
    _ensure_can(operator, "request_change", ref)
    record = _load_record(uow, ref)
    extra: list[Violation] = []
    destination: Kindergarten | None = None
    if to_kindergarten:
        destination = uow.kindergartens.find(to_kindergarten)
        if destination is None:
            extra.append(
                _v(
                    "destination_not_found",
                    "to_kindergarten",
                    f"转入幼儿园不存在：{to_kindergarten}",
                    f"no kindergarten with school code {to_kindergarten}",
                )
            )
    elif kind is ChangeKind.TRANSFER:
        extra.append(
            _v(
                "destination_required",
                "to_kindergarten",
                "转园须指定转入幼儿园",
                "a transfer needs the destination kindergarten (--to)",
            )
        )
    # Scope: the record's own operators act on it; a transfer is applied for by the
    # destination, which need not cover the record (it learns of it through the request).
    # Outside both, the record is answered as absent.
    home = operator.covers_record(record)
    if kind is ChangeKind.TRANSFER and destination is not None:
        if not operator.covers_kindergarten(destination) and not home:
            record_in_scope(operator, "request_change", record, ref)  # raises: not covered
    else:
        record_in_scope(operator, "request_change", record, ref)
    open_req = uow.requests.open_for_record(record.id)
    # A foreign request (applied for by another kindergarten) does not hold back the home
    # side's changes: request_change closes it when the home side needs the open slot.
    blocking = open_req is not None and (not home or is_home_request(open_req, record))
    context = _context(rt, uow, record, destination, open_request=blocking)
    change = machine.Change(
        kind=kind,
        effective_date=effective or rt.clock.today(),
        reason=reason,
        evidence=tuple(evidence),
        to_kindergarten=to_kindergarten,
        until=until,
        grade=grade,
        operator=str(operator),
    )
    found = list(machine.check(record, change, context=context))
    codes = {v.code for v in found}
    if blocking and open_req is not None and "open_request_exists" not in codes:
        found.append(
            _v(
                "open_request_exists",
                "record",
                "该学籍有未办结的变动申请，其他变动须等待",
                "the record has an open change request; other changes must wait",
                hint=f"request {open_req.id}",
            )
        )
    violations = tuple(v for v in extra if v.code not in codes) + tuple(found)
    source = context.kindergarten
    steps: tuple[ApprovalStep, ...] = ()
    if source is not None and not (kind is ChangeKind.TRANSFER and destination is None):
        try:
            steps = chains.approval_chain(
                kind,
                record,
                source=source,
                destination=destination,
                policy=context.policy,
                applicant=operator,
                start=rt.clock.today(),
                calendar=rt.calendar,
                now=rt.clock.now(),
            )
        except ValidationError as exc:
            if exc.code not in {v.code for v in violations}:
                violations += (exc.violation,)
    elif source is None and kind is not ChangeKind.TRANSFER:
        steps = tuple(
            ApprovalStep(role, chains.scope_for(role, record.region_code, record.kindergarten_code))
            for role in context.policy.approvals_for(kind)
        )
    superseded = open_req if open_req is not None and not blocking else None
    return _Prepared(record, change, context, source, destination, violations, steps, superseded)


def _approval_roles(prepared: _Prepared, rt: Runtime) -> tuple[str, ...]:
    if prepared.steps:
        return tuple(s.role.value for s in prepared.steps)
    return tuple(r.value for r in prepared.context.policy.approvals_for(prepared.change.kind))


# --------------------------------------------------------------------------- requests


def dry_run(
    rt: Runtime,
    operator: Operator,
    record: str,
    kind: ChangeKind | str,
    *,
    effective: date | None = None,
    to_kindergarten: str | None = None,
    until: date | None = None,
    reason: str = "",
    evidence: Sequence[str] = (),
    grade: Grade | None = None,
) -> DryRun:
    """Check a change without writing: every unmet rule and the approvals it would need.

    Scope and role are still enforced (an out-of-scope dry run raises
    :class:`~studentstatus.errors.PermissionDenied`); see the module example.
    """
    k = _kind(kind)
    with rt.store.unit_of_work() as uow:
        prepared = _prepare(
            rt,
            uow,
            operator,
            record,
            k,
            effective=effective,
            to_kindergarten=to_kindergarten,
            until=until,
            reason=reason,
            evidence=evidence,
            grade=grade,
        )
    return DryRun(not prepared.violations, prepared.violations, _approval_roles(prepared, rt))


def request_change(
    rt: Runtime,
    operator: Operator,
    record: str,
    kind: ChangeKind | str,
    *,
    effective: date | None = None,
    to_kindergarten: str | None = None,
    until: date | None = None,
    reason: str = "",
    evidence: Sequence[str] = (),
    grade: Grade | None = None,
) -> ChangeOutcome:
    """Ask for a change of ``record`` (national/former number or record id).

    Raises :class:`~studentstatus.errors.RuleViolations` with every unmet rule;
    otherwise applies the change at once when its chain is empty, or opens a
    request (see the module example).  The request, or the applied change, is
    audited in the same unit of work.
    """
    with rt.store.unit_of_work() as uow:
        out = request_change_in(
            rt,
            uow,
            operator,
            record,
            kind,
            effective=effective,
            to_kindergarten=to_kindergarten,
            until=until,
            reason=reason,
            evidence=evidence,
            grade=grade,
        )
        commit_request(uow)
    return out


def commit_request(uow: UnitOfWork) -> None:
    """Commit ``uow``; the store's one-open-request rule, met at commit, raised as the rule
    violation ``open_request_exists`` (for callers of :func:`request_change_in`).  Any other
    conflict — a stale record, a collision to retry (:class:`~studentstatus.errors.TryAgain`)
    — is raised as it is.

    >>> from studentstatus.adapters.memory import MemoryStore
    >>> with MemoryStore().unit_of_work() as uow:
    ...     commit_request(uow)
    """
    try:
        uow.commit()
    except TryAgain:
        raise
    except ConflictError as exc:
        # The stores that check the rule at commit (memory, files) say so in the message;
        # SQL stores check it when the request is added (see request_change_in).
        if "open request" in str(exc):
            raise _slot_violation() from None
        raise


def _slot_violation() -> RuleViolations:
    return RuleViolations(
        [
            _v(
                "open_request_exists",
                "record",
                "该学籍有未办结的变动申请，其他变动须等待",
                "the record has an open change request; other changes must wait",
            )
        ]
    )


def request_change_in(
    rt: Runtime,
    uow: UnitOfWork,
    operator: Operator,
    record: str,
    kind: ChangeKind | str,
    *,
    effective: date | None = None,
    to_kindergarten: str | None = None,
    until: date | None = None,
    reason: str = "",
    evidence: Sequence[str] = (),
    grade: Grade | None = None,
) -> ChangeOutcome:
    """:func:`request_change` inside the caller's open unit of work, which it does not commit.

    For services that compose a change request with writes of their own, atomically
    (``dropout.request_withdrawal``: the request and the case's note of it commit
    together or not at all).  A store that meets its one-open-request rule only at
    commit raises :class:`~studentstatus.errors.ConflictError` from the caller's commit.

    >>> from datetime import datetime, timezone
    >>> from studentstatus.domain.jurisdiction import Operator
    >>> from studentstatus.testing.examples import example_runtime
    >>> rt = example_runtime(datetime(2026, 3, 2, tzinfo=timezone.utc))
    >>> with rt.store.unit_of_work() as uow:
    ...     request_change_in(rt, uow, Operator.parse("kindergarten:1111000001"), "r9",
    ...                       "SUSPEND")
    Traceback (most recent call last):
    ...
    studentstatus.errors.NotFoundError: no record r9 / 未找到学籍 r9
    """
    k = _kind(kind)
    now = rt.clock.now()
    p = _prepare(
        rt,
        uow,
        operator,
        record,
        k,
        effective=effective,
        to_kindergarten=to_kindergarten,
        until=until,
        reason=reason,
        evidence=evidence,
        grade=grade,
    )
    if p.violations:
        raise RuleViolations(p.violations)
    if not p.steps:
        stored, event = _apply(uow, p.record, p.change, p.context, now)
        audit_many(uow, [_audit_change(str(operator), event)], at=now)
        close_stale_requests(uow, operator, [stored], now)
        return ChangeOutcome(True, None, event, stored)
    request = ChangeRequest(
        id=rt.new_id("q"),
        record_id=p.record.id,
        kind=k,
        applicant=str(operator),
        created_at=now,
        steps=p.steps,
        effective_date=p.change.effective_date,
        to_kindergarten=to_kindergarten,
        until=until,
        reason=reason,
        evidence=tuple(evidence),
    )
    if p.superseded is not None:
        _supersede(uow, operator, p.superseded, f"request {request.id}", now)
    try:
        uow.requests.add(request)
    except TryAgain:
        raise
    except ConflictError:
        # Another unit opened a request for the record meanwhile: the rule, as a violation;
        # anything else (a taken request id) as it is.
        taken = uow.requests.open_for_record(p.record.id)
        if taken is not None and taken.id != request.id:
            raise _slot_violation() from None
        raise
    audit_many(
        uow,
        [
            AuditEvent(
                operator=str(operator),
                action="request.open",
                subject=request.id,
                reason=reason,
                after={
                    "record": p.record.id,
                    "change": k.value,
                    "to_kindergarten": to_kindergarten,
                    "effective_date": p.change.effective_date.isoformat(),
                    "until": until.isoformat() if until else None,
                    "evidence": list(evidence),
                    "steps": [f"{s.role.value}:{s.scope}" for s in p.steps],
                },
            )
        ],
        at=now,
    )
    return ChangeOutcome(False, request, None, None)


def close_stale_requests(
    uow: UnitOfWork, operator: Operator, records: Iterable[StatusRecord], now: datetime
) -> int:
    """Close the open requests of ``records`` whose change their new state no longer allows
    (a transfer of a child the home side has just graduated): REJECTED as superseded, audited.
    Returns how many were closed.

    >>> from datetime import datetime, timezone
    >>> from studentstatus.adapters.memory import MemoryStore
    >>> from studentstatus.domain.jurisdiction import Operator
    >>> with MemoryStore().unit_of_work() as uow:
    ...     close_stale_requests(uow, Operator.parse("county:110105"), [],
    ...                          datetime(2026, 9, 1, tzinfo=timezone.utc))
    0
    """
    closed = 0
    for record in records:
        request = uow.requests.open_for_record(record.id)
        if request is None or record.state in machine.row(request.kind).sources:
            continue
        _supersede(uow, operator, request, f"the record is now {record.state.value}", now)
        closed += 1
    return closed


def _supersede(
    uow: UnitOfWork, operator: Operator, foreign: ChangeRequest, by: str, now: datetime
) -> None:
    closed = _home_refusal(foreign, operator, f"superseded: {by}", now)
    uow.requests.update(closed)
    audit_many(
        uow,
        [
            AuditEvent(
                operator=str(operator),
                action="request.superseded",
                subject=foreign.id,
                reason=f"superseded: {by}",
                before={"status": foreign.status.value},
                after={"status": closed.status.value},
            )
        ],
        at=now,
    )


def _decide(
    rt: Runtime,
    operator: Operator,
    request_id: str,
    *,
    approve: bool,
    reason: str,
) -> ChangeOutcome:
    _ensure_can(operator, "approve_step", request_id)
    now = rt.clock.now()
    with rt.store.unit_of_work() as uow:
        request, owner = _scoped_request(uow, operator, request_id, "approve_step")
        pending = _pending(request)
        if request.status is not RequestStatus.OPEN or pending is None:
            raise RuleViolations(
                [
                    _v(
                        "request_not_open",
                        "request",
                        "该申请已办结",
                        f"the request is {request.status.value}, not open",
                    )
                ]
            )
        index, step = pending
        home_refusal = (
            not approve
            and not _fits(operator, step)
            and owner is not None
            and operator.covers_record(owner)
            and not is_home_request(request, owner)
        )
        if home_refusal:
            # The home side (the child's kindergarten or its county) refuses a foreign
            # request at once, whoever's step is pending.
            decided = _home_refusal(request, operator, reason, now)
        elif not _fits(operator, step):
            raise _step_refusal(operator, request)
        else:
            try:
                decided = chains.decide(request, operator, approve, reason, now)
            except PermissionDenied:
                raise _step_refusal(operator, request) from None
        events = [
            AuditEvent(
                operator=str(operator),
                action="request.approve_step" if approve else "request.reject_step",
                subject=request.id,
                reason=reason,
                before={"status": request.status.value, "step": index + 1},
                after={
                    "status": decided.status.value,
                    "step": index + 1,
                    "decision": decided.steps[index].decision.value,
                },
            )
        ]
        applied: StatusChange | None = None
        stored: StatusRecord | None = None
        if decided.status is RequestStatus.APPROVED:
            record = uow.records.get(request.record_id)
            destination = (
                uow.kindergartens.find(request.to_kindergarten) if request.to_kindergarten else None
            )
            context = _context(rt, uow, record, destination, open_request=False)
            change = machine.Change(
                kind=request.kind,
                effective_date=request.effective_date or rt.clock.today(),
                reason=request.reason,
                evidence=request.evidence,
                to_kindergarten=request.to_kindergarten,
                until=request.until,
                operator=str(operator),
            )
            stored, applied = _apply(uow, record, change, context, now)
            events.append(_audit_change(str(operator), applied, request.id))
        saved = uow.requests.update(decided)
        audit_many(uow, events, at=now)
        uow.commit()
    shown = stored if stored is not None and operator.covers_record(stored) else None
    return ChangeOutcome(applied is not None, saved, applied, shown)


def approve_step(
    rt: Runtime, operator: Operator, request_id: str, *, reason: str = ""
) -> ChangeOutcome:
    """Approve the pending step of ``request_id`` (the operator must fit that step).

    When it was the last step the change is applied in the same unit of work
    (see the module example).
    """
    return _decide(rt, operator, request_id, approve=True, reason=reason)


def reject_step(rt: Runtime, operator: Operator, request_id: str, *, reason: str) -> ChangeOutcome:
    """Reject the pending step (a reason is required); the request ends REJECTED.

    >>> from datetime import datetime, timezone
    >>> from studentstatus.domain.jurisdiction import Operator
    >>> from studentstatus.testing.examples import example_runtime
    >>> rt = example_runtime(datetime(2026, 3, 2, tzinfo=timezone.utc))
    >>> reject_step(rt, Operator.parse("county:110105"), "nope", reason="x")
    Traceback (most recent call last):
    ...
    studentstatus.errors.NotFoundError: ...
    """
    return _decide(rt, operator, request_id, approve=False, reason=reason)


def withdraw_request(rt: Runtime, operator: Operator, request_id: str) -> ChangeRequest:
    """Withdraw an open request (only its applicant, only before the last approval).

    >>> from datetime import datetime, timezone
    >>> from studentstatus.domain.jurisdiction import Operator
    >>> from studentstatus.testing.examples import example_runtime
    >>> rt = example_runtime(datetime(2026, 3, 2, tzinfo=timezone.utc))
    >>> withdraw_request(rt, Operator.parse("kindergarten:1111000001"), "nope")
    Traceback (most recent call last):
    ...
    studentstatus.errors.NotFoundError: ...
    """
    now = rt.clock.now()
    with rt.store.unit_of_work() as uow:
        request, _owner = _scoped_request(uow, operator, request_id, "withdraw_request")
        if request.applicant != str(operator):
            err = PermissionDenied(
                str(operator), f"request {request.id} (only its applicant)", code="not_applicant"
            )
            err.message_en = (
                f"only the applicant ({request.applicant}) may withdraw request {request.id}"
            )
            err.message_zh = f"只有申请方（{request.applicant}）可以撤回申请 {request.id}"
            raise err
        withdrawn = chains.withdraw(request, operator, now)
        saved = uow.requests.update(withdrawn)
        audit_many(
            uow,
            [
                AuditEvent(
                    operator=str(operator),
                    action="request.withdraw",
                    subject=request.id,
                    before={"status": request.status.value},
                    after={"status": withdrawn.status.value},
                )
            ],
            at=now,
        )
        uow.commit()
    return saved


# --------------------------------------------------------------------------- queues


def _view(
    request: ChangeRequest,
    record: StatusRecord | None,
    child_name: str,
    today: date,
) -> RequestView:
    pending = _pending(request) if request.status is RequestStatus.OPEN else None
    step = f"{pending[1].role.value}:{pending[1].scope}" if pending else None
    due = pending[1].due if pending else None
    number = ""
    if record is not None:
        number = record.national_number or record.temp_number or ""
        number = mask_number(number) if number else ""  # G/J/L numbers embed ID or birth date
    return RequestView(
        id=request.id,
        change=request.kind,
        record=request.record_id,
        status=request.status,
        step=step,
        step_index=pending[0] + 1 if pending else None,
        due=due,
        applicant=request.applicant,
        from_kindergarten=record.kindergarten_code if record else "",
        to_kindergarten=request.to_kindergarten,
        effective_date=request.effective_date,
        reason=request.reason,
        child_name=child_name,
        grade=record.grade if record else None,
        number=number,
        overdue=due is not None and today > due,
        lost=request.status is RequestStatus.OPEN and chains.is_lost_transfer(request, today),
        steps=request.steps,
    )


def _views(
    rt: Runtime,
    uow: UnitOfWork,
    requests: Iterable[ChangeRequest],
    keep: Any,
    *,
    destinations: bool = True,
) -> list[RequestView]:
    """Views of ``requests`` for which ``keep(request, record, destination)`` holds
    (``destinations=False``: ``keep`` does not look at the destination, which is not read)."""
    today = rt.clock.today()
    kgs: dict[str, Kindergarten | None] = {}
    out: list[RequestView] = []
    for chunk in chunked(requests, _CHUNK):
        records = uow.records.get_many([r.record_id for r in chunk])
        selected: list[tuple[ChangeRequest, StatusRecord | None]] = []
        for req in chunk:
            dest: Kindergarten | None = None
            if destinations and req.to_kindergarten:
                if req.to_kindergarten not in kgs:
                    kgs[req.to_kindergarten] = uow.kindergartens.find(req.to_kindergarten)
                dest = kgs[req.to_kindergarten]
            rec = records.get(req.record_id)
            if keep(req, rec, dest):
                selected.append((req, rec))
        children = uow.children.get_many([r.child_id for _, r in selected if r is not None])
        for req, rec in selected:
            child = children.get(rec.child_id) if rec is not None else None
            out.append(_view(req, rec, child.name if child else "", today))
    return out


def _in_jurisdiction(
    operator: Operator,
    request: ChangeRequest,
    record: StatusRecord | None,
    destination: Kindergarten | None,
) -> bool:
    return covers_request(operator, request, record, destination)


def list_pending_requests(
    rt: Runtime, operator: Operator, *, overdue: bool = False
) -> list[RequestView]:
    """Open requests whose pending step is the operator's (role and scope), by id.

    With ``overdue=True``, only those whose pending step is past its due date.
    The store answers the queue itself
    (:meth:`~studentstatus.ports.RequestRepository.pending_for`: on SQL an index of
    the pending step's role and scope), so only the operator's requests, their
    records and children are read.  See the module example.
    """
    today = rt.clock.today()

    def keep(req: ChangeRequest, rec: StatusRecord | None, dest: Kindergarten | None) -> bool:
        pending = _pending(req)  # a guard: the store's queue holds only such requests
        return pending is not None and _fits(operator, pending[1])

    with rt.store.unit_of_work() as uow:
        queue = uow.requests.pending_for(
            operator.role, operator.scope, due_before=today if overdue else None
        )
        return _views(rt, uow, queue, keep, destinations=False)


def list_requests_by(
    rt: Runtime, operator: Operator, *, include_closed: bool = False
) -> list[RequestView]:
    """The requests the operator applied for (``applicant`` is ``str(operator)``), by id.

    Open ones, or every one with ``include_closed``; each view carries its steps
    (decision, who decided) and the pending step, i.e. who acts next.

    >>> from datetime import datetime, timezone
    >>> from studentstatus.adapters.memory import MemoryStore
    >>> from studentstatus.domain.jurisdiction import Operator
    >>> from studentstatus.services.runtime import FixedClock, Runtime
    >>> rt = Runtime(MemoryStore(), FixedClock(datetime(2026, 3, 2, tzinfo=timezone.utc)))
    >>> list_requests_by(rt, Operator.parse("kindergarten:1111000001"))
    []
    """
    me = str(operator)

    def keep(req: ChangeRequest, rec: StatusRecord | None, dest: Kindergarten | None) -> bool:
        return req.applicant == me  # a guard: the store reads only the operator's requests

    status = None if include_closed else RequestStatus.OPEN
    with rt.store.unit_of_work() as uow:
        mine = uow.requests.iter(status=status, applicant=me)
        return _views(rt, uow, mine, keep, destinations=False)


def list_overdue_requests(rt: Runtime, operator: Operator) -> list[RequestView]:
    """Open requests of the operator's jurisdiction whose pending step is overdue.

    The jurisdiction of a request: its record, its destination kindergarten, its
    applicant, or any of its steps lies in the operator's scope.

    >>> from datetime import datetime, timezone
    >>> from studentstatus.domain.jurisdiction import Operator
    >>> from studentstatus.testing.examples import example_runtime
    >>> rt = example_runtime(datetime(2026, 3, 2, tzinfo=timezone.utc))
    >>> list_overdue_requests(rt, Operator.parse("county:110105"))
    []
    """
    today = rt.clock.today()

    def keep(req: ChangeRequest, rec: StatusRecord | None, dest: Kindergarten | None) -> bool:
        pending = _pending(req)
        if pending is None or pending[1].due is None or today <= pending[1].due:
            return False
        return _in_jurisdiction(operator, req, rec, dest)

    with rt.store.unit_of_work() as uow:
        return _views(rt, uow, uow.requests.overdue(today), keep)


def list_lost_children(rt: Runtime, operator: Operator) -> list[RequestView]:
    """The lost-child queue: transfers the source released but nobody completed in time.

    Counties and above only; a transfer is in a county's queue when the record
    (source) or the destination kindergarten lies in its scope.  The child stays
    on the source kindergarten's roll meanwhile.

    >>> from datetime import datetime, timezone
    >>> from studentstatus.domain.jurisdiction import Operator
    >>> from studentstatus.testing.examples import example_runtime
    >>> rt = example_runtime(datetime(2026, 3, 2, tzinfo=timezone.utc))
    >>> list_lost_children(rt, Operator.parse("county:110105"))
    []
    """
    _ensure_can(operator, "monitor", "lost-children")
    today = rt.clock.today()

    def keep(req: ChangeRequest, rec: StatusRecord | None, dest: Kindergarten | None) -> bool:
        if req.kind is not ChangeKind.TRANSFER or not chains.is_lost_transfer(req, today):
            return False
        return (rec is not None and operator.covers_record(rec)) or (
            dest is not None and operator.covers_kindergarten(dest)
        )

    with rt.store.unit_of_work() as uow:
        # a lost transfer is open past its last step's due date: its pending step is overdue
        return _views(rt, uow, uow.requests.overdue(today), keep)


def get_request(rt: Runtime, operator: Operator, request_id: str) -> RequestView:
    """One request, if it lies in the operator's jurisdiction (see :func:`list_overdue_requests`).

    >>> from datetime import datetime, timezone
    >>> from studentstatus.domain.jurisdiction import Operator
    >>> from studentstatus.testing.examples import example_runtime
    >>> rt = example_runtime(datetime(2026, 3, 2, tzinfo=timezone.utc))
    >>> get_request(rt, Operator.parse("ministry"), "q0")
    Traceback (most recent call last):
    ...
    studentstatus.errors.NotFoundError: ...
    """
    with rt.store.unit_of_work() as uow:
        request, _owner = _scoped_request(uow, operator, request_id, "show_request")
        return _views(rt, uow, [request], lambda req, rec, dest: True)[0]


# Former names (deprecated; not in __all__).
show_request = renamed(get_request, "show_request")
requests_for = renamed(list_pending_requests, "requests_for")
overdue_requests = renamed(list_overdue_requests, "overdue_requests")
lost_children = renamed(list_lost_children, "lost_children")
requests_by = renamed(list_requests_by, "requests_by")
