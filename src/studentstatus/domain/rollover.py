"""The year-end rollover's common case, as data: who is *trivially* eligible, and the event.

A store can apply most of a rollover without reading the records into Python
when it can express, in its own query language, which records the status
machine would certainly PROMOTE (or GRADUATE, for a SENIOR) into school year
``Y`` and which event it would write for each.  :class:`RolloverRule` is that
description, pure and checked against :func:`studentstatus.domain.machine.apply`
by the tests (a differential property test: every record the rule
:meth:`~RolloverRule.covers` gets from the machine exactly the
:meth:`~RolloverRule.change` and :meth:`~RolloverRule.promoted` the rule says).

A record is covered when **all** of these hold (each is a guard of the machine
for PROMOTE/GRADUATE effective 1 September ``Y``, or a reason the rollover
classifies the record otherwise):

* its state is ACTIVE (the only from-state of PROMOTE and GRADUATE);
* its grade is on the ladder (no grade: ``grade_at_top``);
* ``last_promoted_year`` is unset or before ``Y`` (otherwise the rollover says
  ``done``/``repeat``, and the machine ``already_promoted_this_year``);
* it entered before 1 September ``Y`` (otherwise ``new``; also
  ``effective_date_past``);
* it has no suspension start and no cancellation date (an ACTIVE record
  normally has neither; one that does is left to the machine, which compares
  them with the effective date: ``effective_date_past``);
* no change request of its own kindergarten is open for it (``open_request_exists``;
  a transfer applied for by the destination kindergarten does not count).

The effective date is never in the future: the rollover is applied only from
1 September ``Y`` (``school_year_not_started`` otherwise).  Every other record
goes through the machine, one by one, as before; the classification and the
blocked reasons of those do not change.

>>> from datetime import date, datetime, timezone
>>> from studentstatus.domain.enums import Grade, State
>>> from studentstatus.domain.model import StatusRecord
>>> rule = RolloverRule(2026, "county:110105", datetime(2026, 9, 1, 9, tzinfo=timezone.utc))
>>> rec = StatusRecord("r1", "c1", "1111000001", "110105", State.ACTIVE, Grade.JUNIOR,
...                    date(2025, 9, 1), last_promoted_year=2025, version=3)
>>> rule.covers(rec, open_request=False), rule.covers(rec, open_request=True)
(True, False)
>>> event = rule.change(rec)
>>> event.seq, event.kind.value, event.before
(4, 'PROMOTE', {'grade': 'JUNIOR', 'last_promoted_year': 2025})
>>> event.after
{'grade': 'MIDDLE', 'last_promoted_year': 2026}
>>> rule.promoted(rec).grade, rule.promoted(rec).version
(<Grade.MIDDLE: 'MIDDLE'>, 4)
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Final

import attrs

from studentstatus.domain.age import SCHOOL_YEAR_START_MONTH
from studentstatus.domain.enums import ChangeKind, Grade, State
from studentstatus.domain.machine import Target, row
from studentstatus.domain.model import StatusChange, StatusRecord

__all__ = ["GRADUATE_STATES", "NEXT_GRADE", "PROMOTE_STATES", "RolloverRule"]

#: The grade a PROMOTE leads to, for every grade that is promoted (SENIOR graduates):
#: the machine's own ``Grade.next``.
NEXT_GRADE: Final[dict[Grade, Grade]] = {g: n for g in Grade if (n := g.next()) is not None}


def _states(kind: ChangeKind) -> tuple[State, State]:
    """(from, to) of ``kind`` in the status machine's transition table."""
    transition = row(kind)
    (source,) = transition.sources
    assert isinstance(source, State)
    target = source if transition.target is Target.SAME else transition.target
    assert isinstance(target, State)
    return source, target


#: PROMOTE and GRADUATE as the transition table has them (both from ACTIVE; PROMOTE keeps
#: the state, GRADUATE ends in GRADUATED).  The SQL rollover writes these, so the table
#: stays the one source of what a rollover does to a record's state.
PROMOTE_STATES: Final[tuple[State, State]] = _states(ChangeKind.PROMOTE)
GRADUATE_STATES: Final[tuple[State, State]] = _states(ChangeKind.GRADUATE)


@attrs.frozen
class RolloverRule:
    """The set-based part of the rollover into ``school_year`` by ``operator`` at ``recorded_at``.

    Stores translate :meth:`covers` and :meth:`change` into their query
    language (see :mod:`studentstatus.adapters.sql.rollover`); the module
    docstring lists the conditions.

    >>> from datetime import timezone
    >>> rule = RolloverRule(2026, "ministry", datetime(2026, 9, 1, tzinfo=timezone.utc))
    >>> rule.effective_date, rule.reason
    (datetime.date(2026, 9, 1), 'rollover 2026')
    """

    school_year: int
    operator: str
    recorded_at: datetime

    @property
    def effective_date(self) -> date:
        """1 September of the school year: the day every rollover change takes effect."""
        return date(self.school_year, SCHOOL_YEAR_START_MONTH, 1)

    @property
    def reason(self) -> str:
        """The reason every rollover change carries (``rollover Y``)."""
        return f"rollover {self.school_year}"

    def covers(self, record: StatusRecord, *, open_request: bool) -> bool:
        """Whether the machine certainly promotes/graduates ``record`` (see the module docs).

        >>> from datetime import timezone
        >>> rule = RolloverRule(2026, "ministry", datetime(2026, 9, 1, tzinfo=timezone.utc))
        >>> rec = StatusRecord("r1", "c1", "1111000001", "110105", State.ACTIVE, None,
        ...                    date(2025, 9, 1))
        >>> rule.covers(rec, open_request=False)  # no grade: the machine refuses it
        False
        """
        return (
            record.state is State.ACTIVE
            and record.grade is not None
            and (record.last_promoted_year is None or record.last_promoted_year < self.school_year)
            and record.entry_date < self.effective_date
            and record.suspended_since is None
            and record.cancelled_on is None
            and not open_request
        )

    def change(self, record: StatusRecord) -> StatusChange:
        """The PROMOTE or GRADUATE event the machine writes for a covered ``record``.

        ``before``/``after`` hold the touched fields as the machine writes them:
        ``grade`` and ``last_promoted_year`` for PROMOTE, ``state`` for GRADUATE.

        >>> from datetime import timezone
        >>> rule = RolloverRule(2026, "ministry", datetime(2026, 9, 1, tzinfo=timezone.utc))
        >>> rec = StatusRecord("r1", "c1", "1111000001", "110105", State.ACTIVE, Grade.SENIOR,
        ...                    date(2024, 9, 1), version=5)
        >>> e = rule.change(rec)
        >>> e.seq, e.kind.value, e.to_state.value, e.before, e.after
        (6, 'GRADUATE', 'GRADUATED', {'state': 'ACTIVE'}, {'state': 'GRADUATED'})
        """
        grade = record.grade
        assert grade is not None
        if grade not in NEXT_GRADE:
            kind, (from_state, to_state) = ChangeKind.GRADUATE, GRADUATE_STATES
            before: dict[str, object] = {"state": from_state.value}
            after: dict[str, object] = {"state": to_state.value}
        else:
            kind, (from_state, to_state) = ChangeKind.PROMOTE, PROMOTE_STATES
            before = {"grade": grade.value, "last_promoted_year": record.last_promoted_year}
            after = {"grade": NEXT_GRADE[grade].value, "last_promoted_year": self.school_year}
        return StatusChange(
            record_id=record.id,
            seq=record.version + 1,
            kind=kind,
            from_state=from_state,
            to_state=to_state,
            effective_date=self.effective_date,
            recorded_at=self.recorded_at,
            operator=self.operator,
            reason=self.reason,
            evidence=(),
            before=before,
            after=after,
        )

    def promoted(self, record: StatusRecord) -> StatusRecord:
        """The record after :meth:`change` (``version + 1``).

        >>> from datetime import timezone
        >>> rule = RolloverRule(2026, "ministry", datetime(2026, 9, 1, tzinfo=timezone.utc))
        >>> rec = StatusRecord("r1", "c1", "1111000001", "110105", State.ACTIVE, Grade.SENIOR,
        ...                    date(2024, 9, 1), version=5)
        >>> rule.promoted(rec).state, rule.promoted(rec).version
        (<State.GRADUATED: 'GRADUATED'>, 6)
        """
        grade = record.grade
        assert grade is not None
        if grade not in NEXT_GRADE:
            return attrs.evolve(record, state=GRADUATE_STATES[1], version=record.version + 1)
        return attrs.evolve(
            record,
            grade=NEXT_GRADE[grade],
            last_promoted_year=self.school_year,
            version=record.version + 1,
        )
