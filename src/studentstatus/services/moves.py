"""Moving a kindergarten to another county: its own change, approved by both sides.

A kindergarten's county decides who may see and change its children's records,
so a new county is never a side effect of a registry import
(:func:`studentstatus.services.authority.kindergarten_write` refuses it there).
:func:`move_kindergarten` is the one way, and it takes both counties:

1. the **source** proposes the move — an operator covering the kindergarten's
   present county; the proposal waits on the kindergarten (``moving_to``,
   ``move_proposed_by``).  No one else can touch a kindergarten outside its scope,
   so no proposal can hold a kindergarten hostage;
2. the **destination** (an operator covering the county it moves to) confirms it by
   asking for the same move; then, in one unit
   of work, the kindergarten's region, the region of every one of its records and
   the county of their open problems change, and the move is audited.

An operator whose scope covers both counties (a city or province moving a
kindergarten between two of its counties, or the ministry) is both sides: its
request moves the kindergarten at once.  Either side may withdraw a pending
proposal (:func:`cancel_kindergarten_move`).  Any other operator — the
destination before a move is proposed to it included — is answered as if the
kindergarten did not exist
(:func:`~studentstatus.services.authority.kindergarten_in_scope`).

>>> import random
>>> from datetime import date, datetime, timezone
>>> from studentstatus.adapters.memory import MemoryStore
>>> from studentstatus.domain.enums import Grade, KindergartenType, State
>>> from studentstatus.domain.jurisdiction import Operator
>>> from studentstatus.domain.model import Kindergarten, StatusRecord
>>> from studentstatus.services.runtime import FixedClock, Runtime
>>> store = MemoryStore()
>>> with store.unit_of_work() as uow:
...     uow.kindergartens.add(Kindergarten("4403000001", "x", "一幼", "440303",
...                                        KindergartenType.PUBLIC))
...     uow.records.add(StatusRecord("r1", "c1", "4403000001", "440303", State.ACTIVE,
...                                  Grade.JUNIOR, date(2025, 9, 1)))
...     uow.commit()
>>> rt = Runtime(store, FixedClock(datetime(2026, 3, 2, tzinfo=timezone.utc)), random.Random(1))
>>> move_kindergarten(rt, Operator.parse("county:440303"), "4403000001", "440304").state
'proposed'
>>> move_kindergarten(rt, Operator.parse("county:440303"), "4403000001", "440304")
Traceback (most recent call last):
...
studentstatus.errors.RuleViolations: move_awaits_other_side [region_code]: ...
>>> done = move_kindergarten(rt, Operator.parse("county:440304"), "4403000001", "440304")
>>> done.state, done.records
('moved', 1)
>>> with store.unit_of_work() as uow:
...     uow.records.get("r1").region_code
'440304'
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs

from studentstatus.domain import machine
from studentstatus.domain.approvals import scope_for
from studentstatus.domain.enums import ChangeKind, ProblemStatus, Role, State, StepDecision
from studentstatus.domain.jurisdiction import Operator
from studentstatus.domain.model import Kindergarten, StatusRecord
from studentstatus.errors import RuleViolations, Violation
from studentstatus.ports import CaseUnitOfWork, UnitOfWork
from studentstatus.services.audit import AuditEvent, audit, audit_many
from studentstatus.services.authority import absent, require_role
from studentstatus.services.runtime import Runtime

__all__ = ["KindergartenMove", "cancel_kindergarten_move", "move_kindergarten"]

_CHUNK = 2000


@attrs.frozen
class KindergartenMove:
    """What a move request did.

    ``state``: ``"proposed"`` (waits for the other side), ``"moved"`` (done: ``records``
    records and ``problems`` open problems now in ``to_region``) or ``"cancelled"``.

    >>> KindergartenMove("4403000001", "440303", "440304", "proposed").to_dict()["state"]
    'proposed'
    """

    school_code: str
    from_region: str
    to_region: str
    state: str
    records: int = 0
    problems: int = 0

    def to_dict(self) -> dict[str, object]:
        """JSON-ready form."""
        return attrs.asdict(self)


def _invalid(code: str, en: str, zh: str, hint: str = "") -> RuleViolations:
    return RuleViolations([Violation(code, "region_code", zh, en, hint)])


def _sides(operator: Operator, kg: Kindergarten, to_region: str) -> tuple[bool, bool]:
    return operator.covers_kindergarten(kg), operator.covers_region(to_region)


def _load(uow: UnitOfWork, operator: Operator, school_code: str, to_region: str) -> Kindergarten:
    kg = uow.kindergartens.find(school_code)
    if kg is None:
        raise absent("kindergarten", school_code)
    # The source proposes; the destination sees the kindergarten only through a move
    # proposed to its region (to confirm or cancel it), otherwise as if it did not exist.
    confirming = kg.moving_to == to_region and operator.covers_region(to_region)
    if not (operator.covers_kindergarten(kg) or confirming):
        raise absent("kindergarten", school_code)
    return kg


def _apply_move(
    rt: Runtime, uow: UnitOfWork, operator: Operator, kg: Kindergarten, to_region: str, reason: str
) -> tuple[int, int]:
    """Move ``kg`` and its live records to ``to_region``: one ``RELOCATE`` event per record
    (through the status machine, audited like every change), so that the change log still
    gives each record as stored; open problems go with their records."""
    moved_kg = attrs.evolve(kg, region_code=to_region, moving_to=None, move_proposed_by=None)
    today, now = rt.clock.today(), rt.clock.now()
    # A kindergarten holds hundreds of records, not millions: read them, then write.
    live = [s for s in State if s in machine.row(ChangeKind.RELOCATE).sources]
    records = list(uow.records.iter(kindergarten_code=kg.school_code, states=live))
    moved = 0
    for start in range(0, len(records), _CHUNK):
        updates, events = [], []
        for record in records[start : start + _CHUNK]:
            context = machine.Context(
                today, rt.policy_for(record.region_code), kindergarten=kg, destination=moved_kg
            )
            change = machine.Change(
                ChangeKind.RELOCATE, today, reason=reason or "kindergarten moved",
                operator=str(operator),
            )  # fmt: skip
            new, event = machine.apply(record, change, context=context, recorded_at=now)
            updates.append(attrs.evolve(new, version=record.version))
            events.append(event)
        moved += len(uow.records.update_many(updates))
        uow.changes.append_many(events)
        audit_many(
            uow,
            [
                AuditEvent(
                    operator=str(operator),
                    action="change.relocate",
                    subject=e.record_id,
                    reason=e.reason,
                    before=dict(e.before),
                    after=dict(e.after),
                )
                for e in events
            ],
            at=now,
        )
    _rescope_requests(uow, kg, records, to_region)
    _move_open_cases(uow, records, to_region)
    problems = 0
    for problem in list(uow.problems.iter(kindergarten_code=kg.school_code)):
        if problem.status is not ProblemStatus.RESOLVED and problem.county_code != to_region:
            uow.problems.update(attrs.evolve(problem, county_code=to_region))
            problems += 1
    uow.kindergartens.update(moved_kg)
    return moved, problems


def _rescope_requests(
    uow: UnitOfWork, kg: Kindergarten, records: Sequence[StatusRecord], to_region: str
) -> None:
    """The undecided steps of the records' open requests that the old county (or its city or
    province) was to decide go to the new one's: the new county decides from now on."""
    for record in records:
        request = uow.requests.open_for_record(record.id)
        if request is None:
            continue
        steps = []
        for step in request.steps:
            old_scope = scope_for(step.role, kg.region_code, kg.school_code)
            if (
                step.decision is StepDecision.PENDING
                and step.role in (Role.COUNTY, Role.CITY, Role.PROVINCE)
                and step.scope == old_scope
            ):
                step = attrs.evolve(step, scope=scope_for(step.role, to_region, kg.school_code))
            steps.append(step)
        if tuple(steps) != request.steps:
            uow.requests.update(attrs.evolve(request, steps=tuple(steps)))


def _move_open_cases(uow: UnitOfWork, records: Sequence[StatusRecord], to_region: str) -> None:
    """The records' open dropout cases go to the new county's ledger (closed ones stay with
    the county that closed them)."""
    if not isinstance(uow, CaseUnitOfWork):
        return
    for record in records:
        for case in uow.cases.for_record(record.id):
            if case.status.is_open and case.county_code != to_region:
                uow.cases.update(attrs.evolve(case, county_code=to_region))


def move_kindergarten(
    rt: Runtime, operator: Operator, school_code: str, to_region: str, *, reason: str = ""
) -> KindergartenMove:
    """Propose, or (as the other side) confirm, moving a kindergarten to ``to_region``.

    Counties and above (``import_kindergartens``).  Refusals, every one a
    :class:`~studentstatus.errors.RuleViolations` with field ``region_code``:
    ``region_invalid`` (not a 6-digit county code), ``same_region``, ``move_pending``
    (another move waits: cancel it first), ``move_awaits_other_side`` (the proposing
    side asks again).  See the module example.
    """
    require_role(operator, "import_kindergartens")
    target = str(to_region).strip()
    if not (len(target) == 6 and target.isascii() and target.isdigit()):
        raise _invalid(
            "region_invalid",
            "a kindergarten moves to a 6-digit county code",
            "迁入地区应为6位县级区划代码",
        )
    now = rt.clock.now()
    with rt.store.unit_of_work() as uow:
        kg = _load(uow, operator, school_code, target)
        origin = kg.region_code
        if target == origin:
            raise _invalid("same_region", "the kindergarten is already there", "幼儿园已在该地区")
        if kg.moving_to is not None and kg.moving_to != target:
            raise _invalid(
                "move_pending",
                "another move of this kindergarten waits; cancel it first",
                "该幼儿园已有待确认的迁移，请先撤销",
                hint=f"-> {kg.moving_to}",
            )
        source, destination = _sides(operator, kg, target)
        proposer = Operator.parse(kg.move_proposed_by) if kg.move_proposed_by else None
        if proposer is not None:
            # Confirming takes a side the proposer did not cover.
            adds = (source and not proposer.covers_region(origin)) or (
                destination and not proposer.covers_region(target)
            )
            if not adds:
                raise _invalid(
                    "move_awaits_other_side",
                    "the move waits for the other side's confirmation",
                    "迁移须由另一方确认",
                    hint=f"{kg.move_proposed_by} proposed it",
                )
        both_now = source and destination
        if proposer is None and not both_now:
            uow.kindergartens.update(
                attrs.evolve(kg, moving_to=target, move_proposed_by=str(operator))
            )
            event = AuditEvent(
                str(operator),
                "kindergarten.move_proposed",
                kg.school_code,
                reason=reason,
                before={"region_code": origin},
                after={"moving_to": target},
            )
            audit(uow, event, at=now)
            uow.commit()
            return KindergartenMove(kg.school_code, origin, target, "proposed")
        records, problems = _apply_move(rt, uow, operator, kg, target, reason)
        event = AuditEvent(
            str(operator),
            "kindergarten.moved",
            kg.school_code,
            reason=reason,
            before={"region_code": origin, "proposed_by": kg.move_proposed_by},
            after={"region_code": target, "records": records, "problems": problems},
        )
        audit(uow, event, at=now)
        uow.commit()
    return KindergartenMove(kg.school_code, origin, target, "moved", records, problems)


def cancel_kindergarten_move(
    rt: Runtime, operator: Operator, school_code: str, *, reason: str = ""
) -> KindergartenMove:
    """Withdraw a pending move (either side may); ``move_not_pending`` when there is none.

    >>> from datetime import datetime, timezone
    >>> from studentstatus.domain.jurisdiction import Operator
    >>> from studentstatus.testing.examples import example_runtime
    >>> rt = example_runtime(datetime(2026, 3, 2, tzinfo=timezone.utc))
    >>> cancel_kindergarten_move(rt, Operator.parse("county:440303"), "4403000001")
    Traceback (most recent call last):
    ...
    studentstatus.errors.NotFoundError: no kindergarten 4403000001 / 未找到幼儿园 4403000001
    """
    require_role(operator, "import_kindergartens")
    now = rt.clock.now()
    with rt.store.unit_of_work() as uow:
        kg = uow.kindergartens.find(school_code)
        if kg is None:
            raise absent("kindergarten", school_code)
        target = kg.moving_to
        if not operator.covers_kindergarten(kg) and not (
            target is not None and operator.covers_region(target)
        ):
            raise absent("kindergarten", school_code)
        if target is None:
            raise _invalid(
                "move_not_pending", "no move of this kindergarten waits", "没有待确认的迁移"
            )
        uow.kindergartens.update(attrs.evolve(kg, moving_to=None, move_proposed_by=None))
        event = AuditEvent(
            str(operator),
            "kindergarten.move_cancelled",
            kg.school_code,
            reason=reason,
            before={"moving_to": target, "proposed_by": kg.move_proposed_by},
        )
        audit(uow, event, at=now)
        uow.commit()
    return KindergartenMove(kg.school_code, kg.region_code, target, "cancelled")
