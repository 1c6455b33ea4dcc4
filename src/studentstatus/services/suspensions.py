"""Suspensions that ran past their end: listed for a county and flagged into the dropout watch.

A suspension (休学) ends on its approved date; the guardian then applies to resume
(复学).  A record still SUSPENDED more than ``Policy.suspension_grace_days`` after
that date (the policy of the record's province) is overdue
(:func:`studentstatus.domain.machine.suspension_overdue`): the child may have
dropped out.  :func:`overdue_suspensions` lists them; :func:`flag_overdue_suspensions`
opens a suspected-dropout case for each that has none open, so the county follows it
up like any other dropout case (contacts, persuasion, closing).  A late RESUME is
still accepted and closes the question (see docs/concepts/status-machine.md,
"Suspensions").

>>> import random
>>> from datetime import date, datetime, timezone
>>> from studentstatus.adapters.memory import MemoryStore
>>> from studentstatus.domain.enums import Grade, State
>>> from studentstatus.domain.jurisdiction import Operator
>>> from studentstatus.domain.model import StatusRecord
>>> from studentstatus.services.runtime import FixedClock, Runtime
>>> rt = Runtime(MemoryStore(), FixedClock(datetime(2025, 9, 1, tzinfo=timezone.utc)),
...              random.Random(1))
>>> with rt.store.unit_of_work() as uow:
...     uow.records.add(StatusRecord("r1", "c1", "1111000001", "110105", State.SUSPENDED,
...         Grade.JUNIOR, date(2024, 9, 1), suspended_since=date(2025, 3, 1),
...         suspended_until=date(2025, 6, 30)))
...     uow.commit()
>>> county = Operator.parse("county:110105")
>>> [(o.record_id, o.days_late) for o in overdue_suspensions(rt, county, "110105")]
[('r1', 63)]
>>> [c.record_id for c in flag_overdue_suspensions(rt, county, "110105")]
['r1']
>>> flag_overdue_suspensions(rt, county, "110105")  # the case is open already
[]
"""

from __future__ import annotations

from datetime import date

import attrs

from studentstatus.domain.enums import State
from studentstatus.domain.jurisdiction import Operator
from studentstatus.domain.machine import suspension_overdue
from studentstatus.domain.monitoring import CaseTrigger, DropoutCase
from studentstatus.services.authority import region_in_scope, require_role
from studentstatus.services.runtime import Runtime

__all__ = ["OverdueSuspension", "flag_overdue_suspensions", "overdue_suspensions"]


@attrs.frozen
class OverdueSuspension:
    """A record still SUSPENDED past its end and the grace days.

    >>> OverdueSuspension("r1", "1111000001", date(2025, 6, 30), 63).days_late
    63
    """

    record_id: str
    kindergarten_code: str
    ended: date
    days_late: int


def overdue_suspensions(rt: Runtime, operator: Operator, county: str) -> list[OverdueSuspension]:
    """The county's records whose suspension ended more than the grace days ago, by record id.

    Needs the ``monitor`` role and the county in the operator's scope.
    """
    require_role(operator, "monitor")
    region_in_scope(operator, "overdue_suspensions", county)
    today = rt.clock.today()
    out: list[OverdueSuspension] = []
    with rt.store.unit_of_work() as uow:
        for rec in uow.records.iter(region_prefix=county, states=[State.SUSPENDED]):
            if not operator.covers_record(rec):
                continue
            found = suspension_overdue(rec, today, rt.policy_for(rec.region_code))
            if found is None or rec.suspended_until is None:
                continue
            late = (today - rec.suspended_until).days
            out.append(OverdueSuspension(rec.id, rec.kindergarten_code, rec.suspended_until, late))
    return sorted(out, key=lambda o: o.record_id)


def flag_overdue_suspensions(rt: Runtime, operator: Operator, county: str) -> list[DropoutCase]:
    """Open a suspected-dropout case for every overdue suspension of the county that has no
    open case; returns the cases opened (audited like cases opened by hand)."""
    from studentstatus.services.dropout import cases_of, open_case

    overdue = overdue_suspensions(rt, operator, county)
    with rt.store.unit_of_work() as uow:
        repo = cases_of(uow)
        watched = {
            o.record_id
            for o in overdue
            if any(c.status.is_open for c in repo.for_record(o.record_id))
        }
    opened: list[DropoutCase] = []
    for o in overdue:
        if o.record_id in watched:
            continue
        detail = (
            f"休学期满未复学（{o.ended.isoformat()}结束，已逾{o.days_late}天） / "
            f"suspension ended {o.ended.isoformat()}, no resumption for {o.days_late} days"
        )
        opened.append(
            open_case(rt, operator, o.record_id, detail=detail, trigger=CaseTrigger.MANUAL)
        )
    return opened
