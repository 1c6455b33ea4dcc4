"""Approval chains (审核流程) of change requests: who decides, in which order, by when.

:func:`approval_chain` builds the steps of a new request; :func:`decide`
records one decision; :func:`withdraw` lets the applicant take a request back;
:func:`pending_key` says whose queue a request is in, :func:`overdue_steps` and
:func:`is_lost_transfer` feed the counties' queues.
Everything is pure: requests are frozen values and each function returns a
new one.

**Scopes** follow :class:`~studentstatus.domain.jurisdiction.Operator`: a
kindergarten step names the school code, a county step the six-digit county
code, a city step the four-digit prefix, a province step the two-digit
prefix, a ministry step ``""``.  An operator may decide a step only when its
role and scope are exactly the step's.

**Transfers (转园)** are built per case, not from
:meth:`~studentstatus.domain.policy.Policy.approvals_for` (docs/reference/domain.md#approvals, the
"four-party" approval):

1. the destination kindergarten — the applicant.  When the applicant *is*
   that kindergarten, the step is created already ``APPROVED`` (applying is
   approving; ``decided_by`` is the applicant, ``due`` is ``start``).  When
   someone else applies (a county on the family's behalf), the step stays
   ``PENDING`` and the destination kindergarten must accept;
2. the source kindergarten;
3. the source county;
4. the destination county, when it is another county;
5. the source province, then the destination province, when the provinces
   differ (and :attr:`~studentstatus.domain.policy.Policy.require_cross_province_approval`).

**Due dates**: each pending step has ``policy.step_days_for(kind)`` working days
(10 by default) counted from the previous step's due date, the first from
``start``.

>>> from datetime import date
>>> from studentstatus.domain.enums import ChangeKind, KindergartenType, State
>>> from studentstatus.domain.jurisdiction import Operator
>>> from studentstatus.domain.model import Kindergarten, StatusRecord
>>> from studentstatus.domain.policy import Policy
>>> src = Kindergarten("1111000001", "", "阳光", "110105", KindergartenType.PUBLIC)
>>> dst = Kindergarten("4444000001", "", "海滨", "440306", KindergartenType.PUBLIC)
>>> rec = StatusRecord("r1", "c1", "1111000001", "110105", State.ACTIVE, None, date(2023, 9, 1))
>>> steps = approval_chain(ChangeKind.TRANSFER, rec, source=src, destination=dst,
...     policy=Policy(), applicant=Operator.parse("kindergarten:4444000001"),
...     start=date(2025, 9, 1))
>>> [(s.role.value, s.scope, s.decision.value) for s in steps]  # doctest: +NORMALIZE_WHITESPACE
[('kindergarten', '4444000001', 'APPROVED'), ('kindergarten', '1111000001', 'PENDING'),
 ('county', '110105', 'PENDING'), ('county', '440306', 'PENDING'),
 ('province', '11', 'PENDING'), ('province', '44', 'PENDING')]
>>> [s.due.isoformat() for s in steps[:3]]
['2025-09-01', '2025-09-15', '2025-09-29']
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime

import attrs

from studentstatus.domain.calendar import WorkingDayCalendar, add_working_days
from studentstatus.domain.enums import ChangeKind, RequestStatus, Role, StepDecision
from studentstatus.domain.jurisdiction import Operator
from studentstatus.domain.model import ApprovalStep, ChangeRequest, Kindergarten, StatusRecord
from studentstatus.domain.policy import Policy
from studentstatus.errors import PermissionDenied, RuleViolations, ValidationError, Violation

__all__ = [
    "Overdue",
    "approval_chain",
    "decide",
    "is_lost_transfer",
    "next_step",
    "next_step_index",
    "overdue_steps",
    "pending_key",
    "scope_for",
    "step_fits",
    "withdraw",
]


def scope_for(role: Role, region_code: str, kindergarten_code: str) -> str:
    """The step scope of ``role`` for a record in ``region_code`` at ``kindergarten_code``.

    >>> scope_for(Role.CITY, "440306", "4444000001"), scope_for(Role.PROVINCE, "440306", "x")
    ('4403', '44')
    >>> scope_for(Role.KINDERGARTEN, "440306", "4444000001"), scope_for(Role.MINISTRY, "1", "2")
    ('4444000001', '')
    """
    if role is Role.KINDERGARTEN:
        return kindergarten_code
    if role is Role.COUNTY:
        return region_code
    if role is Role.CITY:
        return region_code[:4]
    if role is Role.PROVINCE:
        return region_code[:2]
    return ""


def step_fits(operator: Operator, step: ApprovalStep) -> bool:
    """Whether ``operator`` is the one who decides ``step`` (same role and scope).

    >>> step_fits(Operator.parse("county:110105"), ApprovalStep(Role.COUNTY, "110105"))
    True
    >>> step_fits(Operator.parse("ministry"), ApprovalStep(Role.COUNTY, "110105"))
    False
    """
    return operator.role is step.role and operator.scope == step.scope


def _transfer_roles(
    record: StatusRecord, source: Kindergarten, destination: Kindergarten | None, policy: Policy
) -> list[tuple[Role, str]]:
    if destination is None:
        raise ValidationError(
            "a transfer needs the destination kindergarten",
            field="to_kindergarten",
            message_zh="转园须指定转入幼儿园",
            code="destination_required",
        )
    if source.school_code != record.kindergarten_code:
        raise ValidationError(
            "the source kindergarten is not the record's kindergarten",
            field="kindergarten_code",
            message_zh="转出幼儿园与学籍所在幼儿园不一致",
            code="source_mismatch",
        )
    if destination.school_code == source.school_code:
        raise ValidationError(
            "a transfer must go to another kindergarten",
            field="to_kindergarten",
            message_zh="不能转入本园",
            code="same_kindergarten",
        )
    steps = [
        (Role.KINDERGARTEN, destination.school_code),
        (Role.KINDERGARTEN, source.school_code),
        (Role.COUNTY, source.region_code),
    ]
    if destination.region_code != source.region_code:
        steps.append((Role.COUNTY, destination.region_code))
    if destination.region_code[:2] != source.region_code[:2] and (
        policy.require_cross_province_approval
    ):
        steps.append((Role.PROVINCE, source.region_code[:2]))
        steps.append((Role.PROVINCE, destination.region_code[:2]))
    return steps


def approval_chain(
    kind: ChangeKind,
    record: StatusRecord,
    *,
    source: Kindergarten,
    destination: Kindergarten | None = None,
    policy: Policy,
    applicant: Operator,
    start: date,
    calendar: WorkingDayCalendar | None = None,
    now: datetime | None = None,
) -> tuple[ApprovalStep, ...]:
    """The approval steps of a new request of ``kind`` (empty: applied directly).

    ``source`` is the record's kindergarten; ``destination`` is required for
    TRANSFER.  ``now`` is stamped as ``decided_at`` on a pre-approved applicant
    step (see the module docs).  Raises
    :class:`~studentstatus.errors.ValidationError` for an impossible transfer
    (``destination_required``, ``source_mismatch``, ``same_kindergarten``).

    >>> from studentstatus.domain.enums import KindergartenType, State
    >>> kg = Kindergarten("1111000001", "", "阳光", "110105", KindergartenType.PUBLIC)
    >>> rec = StatusRecord("r1", "c1", "1111000001", "110105", State.ACTIVE, None,
    ...                    date(2023, 9, 1))
    >>> op = Operator.parse("kindergarten:1111000001")
    >>> approval_chain(ChangeKind.SUSPEND, rec, source=kg, policy=Policy(), applicant=op,
    ...                start=date(2025, 9, 1))
    (ApprovalStep(role=<Role.COUNTY: 'county'>, scope='110105', due=datetime.date(2025, 9, 15),
     ...),)
    >>> approval_chain(ChangeKind.PROMOTE, rec, source=kg, policy=Policy(), applicant=op,
    ...                start=date(2025, 9, 1))
    ()
    """
    if kind is ChangeKind.TRANSFER:
        roles = _transfer_roles(record, source, destination, policy)
    else:
        roles = [
            (role, scope_for(role, record.region_code, record.kindergarten_code))
            for role in policy.approvals_for(kind)
        ]
    steps: list[ApprovalStep] = []
    due = start
    for i, (role, scope) in enumerate(roles):
        if (
            i == 0
            and kind is ChangeKind.TRANSFER
            and applicant.role is role
            and (applicant.scope == scope)
        ):
            steps.append(
                ApprovalStep(
                    role,
                    scope,
                    due=start,
                    decision=StepDecision.APPROVED,
                    decided_by=str(applicant),
                    decided_at=now,
                    reason="applicant",
                )
            )
            continue
        due = add_working_days(due, policy.step_days_for(kind), calendar)
        steps.append(ApprovalStep(role, scope, due=due))
    return tuple(steps)


def next_step_index(request: ChangeRequest) -> int | None:
    """Index of the step waiting for a decision, or ``None`` (request closed / no step).

    >>> r = ChangeRequest("q1", "r1", ChangeKind.SUSPEND, "kindergarten:1111000001",
    ...                   datetime(2025, 9, 1), (ApprovalStep(Role.COUNTY, "110105"),))
    >>> next_step_index(r)
    0
    """
    if request.status is not RequestStatus.OPEN:
        return None
    for i, step in enumerate(request.steps):
        if step.decision is StepDecision.PENDING:
            return i
    return None


def next_step(request: ChangeRequest) -> ApprovalStep | None:
    """The step waiting for a decision, or ``None``.

    >>> r = ChangeRequest("q1", "r1", ChangeKind.SUSPEND, "kindergarten:1111000001",
    ...                   datetime(2025, 9, 1), (ApprovalStep(Role.COUNTY, "110105"),))
    >>> next_step(r).scope
    '110105'
    """
    i = next_step_index(request)
    return None if i is None else request.steps[i]


def pending_key(request: ChangeRequest) -> tuple[Role, str, date | None] | None:
    """``(role, scope, due)`` of the step waiting for a decision; ``None`` unless ``OPEN``.

    What an approval queue looks a request up by: the operator whose role and
    scope are exactly these decides it (:func:`step_fits`), and it is overdue
    once ``due`` is past.  Stores keep the key next to the request (the SQL
    adapter in indexed columns) so that an operator's queue is read without
    opening every open request's steps.

    >>> steps = (ApprovalStep(Role.KINDERGARTEN, "4444000001", decision=StepDecision.APPROVED),
    ...          ApprovalStep(Role.COUNTY, "110105", due=date(2025, 9, 15)))
    >>> r = ChangeRequest("q1", "r1", ChangeKind.TRANSFER, "kindergarten:4444000001",
    ...                   datetime(2025, 9, 1), steps)
    >>> pending_key(r)
    (<Role.COUNTY: 'county'>, '110105', datetime.date(2025, 9, 15))
    >>> pending_key(attrs.evolve(r, status=RequestStatus.WITHDRAWN)) is None
    True
    """
    step = next_step(request)
    return None if step is None else (step.role, step.scope, step.due)


def _not_open(request: ChangeRequest) -> RuleViolations:
    return RuleViolations(
        [
            Violation(
                "request_not_open",
                "status",
                f"申请已结束（{request.status.label_zh}）",
                f"the request is no longer open ({request.status.value})",
            )
        ]
    )


def decide(
    request: ChangeRequest,
    step_operator: Operator,
    approve: bool,
    reason: str = "",
    now: datetime | None = None,
) -> ChangeRequest:
    """Record ``step_operator``'s decision on the pending step; return the updated request.

    The request becomes ``APPROVED`` when its last step approves and
    ``REJECTED`` on any rejection (later steps stay ``PENDING``).  Raises
    :class:`~studentstatus.errors.RuleViolations` (``request_not_open``,
    ``reason_required`` — a rejection needs a reason) or
    :class:`~studentstatus.errors.PermissionDenied` (``not_step_approver``)
    when the operator's role and scope are not the pending step's.

    >>> r = ChangeRequest("q1", "r1", ChangeKind.SUSPEND, "kindergarten:1111000001",
    ...                   datetime(2025, 9, 1), (ApprovalStep(Role.COUNTY, "110105"),))
    >>> done = decide(r, Operator.parse("county:110105"), True, now=datetime(2025, 9, 2))
    >>> done.status, done.steps[0].decided_by
    (<RequestStatus.APPROVED: 'APPROVED'>, 'county:110105')
    >>> decide(r, Operator.parse("county:110105"), False)
    Traceback (most recent call last):
    ...
    studentstatus.errors.RuleViolations: reason_required [reason]: ...
    >>> decide(r, Operator.parse("county:110106"), True)
    Traceback (most recent call last):
    ...
    studentstatus.errors.PermissionDenied: not_step_approver: ...
    """
    if request.status is not RequestStatus.OPEN:
        raise _not_open(request)
    i = next_step_index(request)
    if i is None:
        raise RuleViolations(
            [
                Violation(
                    "no_pending_step",
                    "steps",
                    "没有待审核的步骤",
                    "the request has no step waiting for a decision",
                )
            ]
        )
    step = request.steps[i]
    if not step_fits(step_operator, step):
        raise PermissionDenied(
            str(step_operator),
            f"approval step {i + 1} of request {request.id} ({step.role.value}:{step.scope})",
            code="not_step_approver",
        )
    if not approve and not reason.strip():
        raise RuleViolations(
            [
                Violation(
                    "reason_required",
                    "reason",
                    "不同意时须填写理由",
                    "a rejection needs a reason",
                )
            ]
        )
    decided = attrs.evolve(
        step,
        decision=StepDecision.APPROVED if approve else StepDecision.REJECTED,
        decided_by=str(step_operator),
        decided_at=now,
        reason=reason.strip(),
    )
    steps = (*request.steps[:i], decided, *request.steps[i + 1 :])
    if not approve:
        status = RequestStatus.REJECTED
    elif all(s.decision is StepDecision.APPROVED for s in steps):
        status = RequestStatus.APPROVED
    else:
        status = RequestStatus.OPEN
    return attrs.evolve(request, steps=steps, status=status)


def withdraw(
    request: ChangeRequest, operator: Operator, now: datetime | None = None
) -> ChangeRequest:
    """The applicant takes back an open request (status ``WITHDRAWN``).

    Only the applicant (``str(operator) == request.applicant``) may, and only
    while the request is ``OPEN`` — i.e. before its last approval.  ``now`` is
    not stored on the request (it has no field for it); services log it in the
    audit trail.

    >>> r = ChangeRequest("q1", "r1", ChangeKind.SUSPEND, "kindergarten:1111000001",
    ...                   datetime(2025, 9, 1), (ApprovalStep(Role.COUNTY, "110105"),))
    >>> withdraw(r, Operator.parse("kindergarten:1111000001")).status
    <RequestStatus.WITHDRAWN: 'WITHDRAWN'>
    >>> withdraw(r, Operator.parse("county:110105"))
    Traceback (most recent call last):
    ...
    studentstatus.errors.PermissionDenied: not_applicant: ...
    """
    del now  # accepted for a uniform service signature; see the docstring
    if str(operator) != request.applicant:
        raise PermissionDenied(
            str(operator), f"request {request.id} (only its applicant)", code="not_applicant"
        )
    if request.status is not RequestStatus.OPEN:
        raise _not_open(request)
    return attrs.evolve(request, status=RequestStatus.WITHDRAWN)


@attrs.frozen
class Overdue:
    """An open request whose pending step is past its due date.

    >>> r = ChangeRequest("q1", "r1", ChangeKind.SUSPEND, "kindergarten:1111000001",
    ...                   datetime(2025, 9, 1),
    ...                   (ApprovalStep(Role.COUNTY, "110105", due=date(2025, 9, 15)),))
    >>> o = overdue_steps([r], date(2025, 9, 20))[0]
    >>> o.index, o.days_late, o.request.id
    (0, 5, 'q1')
    """

    request: ChangeRequest
    index: int
    step: ApprovalStep
    days_late: int
    """Calendar days since the due date (at least 1)."""


def overdue_steps(requests: Iterable[ChangeRequest], today: date) -> list[Overdue]:
    """Open requests whose pending step was due before ``today`` (due today is not late).

    >>> r = ChangeRequest("q1", "r1", ChangeKind.SUSPEND, "kindergarten:1111000001",
    ...                   datetime(2025, 9, 1),
    ...                   (ApprovalStep(Role.COUNTY, "110105", due=date(2025, 9, 15)),))
    >>> [o.step.scope for o in overdue_steps([r], date(2025, 9, 16))]
    ['110105']
    >>> overdue_steps([r], date(2025, 9, 15))
    []
    """
    late: list[Overdue] = []
    for request in requests:
        i = next_step_index(request)
        if i is None:
            continue
        step = request.steps[i]
        if step.due is not None and step.due < today:
            late.append(Overdue(request, i, step, (today - step.due).days))
    return late


def _source_approved(request: ChangeRequest) -> bool:
    kindergarten_steps = [s for s in request.steps if s.role is Role.KINDERGARTEN]
    return len(kindergarten_steps) >= 2 and (
        kindergarten_steps[1].decision is StepDecision.APPROVED
    )


def is_lost_transfer(request: ChangeRequest, today: date) -> bool:
    """Whether a transfer belongs on the county's lost-child queue (转出未转入).

    True for a TRANSFER whose source kindergarten (the second kindergarten
    step) approved — the child has left — but which is not ``APPROVED`` by the
    last step's due date: still open, or rejected further up the chain.  A
    withdrawn request is the applicant's decision and does not count.

    >>> steps = (ApprovalStep(Role.KINDERGARTEN, "4444000001", decision=StepDecision.APPROVED),
    ...          ApprovalStep(Role.KINDERGARTEN, "1111000001", decision=StepDecision.APPROVED),
    ...          ApprovalStep(Role.COUNTY, "110105", due=date(2025, 9, 29)))
    >>> r = ChangeRequest("q1", "r1", ChangeKind.TRANSFER, "kindergarten:4444000001",
    ...                   datetime(2025, 9, 1), steps)
    >>> is_lost_transfer(r, date(2025, 9, 29)), is_lost_transfer(r, date(2025, 9, 30))
    (False, True)
    """
    if request.kind is not ChangeKind.TRANSFER:
        return False
    if request.status in (RequestStatus.APPROVED, RequestStatus.WITHDRAWN):
        return False
    if not _source_approved(request):
        return False
    dues = [s.due for s in request.steps if s.due is not None]
    return bool(dues) and today > max(dues)
