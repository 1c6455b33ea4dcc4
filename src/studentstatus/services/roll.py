"""As-of roll (在园名册): who was on roll at a kindergarten on a given day.

The answer comes from the **change log**, not from the current records: each
record's events with an effective date on or before the day are folded in
order of (effective date, seq), so a change recorded late with an earlier
effective date (a transfer entered on 20 March, effective 1 March) counts
from its effective date.  A child is *on roll* at a kindergarten on a day when,
by then, its record is at that kindergarten and ``ACTIVE`` or ``SUSPENDED``
(a suspended child keeps its place, 学籍在园).  A transfer waiting for approvals
changes nothing: the child stays on the source roll until it is applied.

Only records that are at the kindergarten now, or that left it through a
TRANSFER or REENROLL, are read: the log is never scanned whole.

>>> import random
>>> from datetime import date, datetime, timezone
>>> from studentstatus.adapters.memory import MemoryStore
>>> from studentstatus.domain.enums import KindergartenType
>>> from studentstatus.domain.jurisdiction import Operator
>>> from studentstatus.domain.model import Kindergarten
>>> from studentstatus.services.runtime import FixedClock, Runtime
>>> store = MemoryStore()
>>> with store.unit_of_work() as uow:
...     uow.kindergartens.add(Kindergarten("1111000001", "x", "一幼", "110105",
...                                        KindergartenType.PUBLIC))
...     uow.commit()
>>> rt = Runtime(store, FixedClock(datetime(2026, 3, 2, tzinfo=timezone.utc)), random.Random(1))
>>> list_roll(rt, Operator.parse("county:110105"), "1111000001", date(2026, 3, 1))
[]
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import date
from itertools import groupby
from typing import Any

import attrs

from studentstatus.domain.enums import ChangeKind, Grade, State
from studentstatus.domain.jurisdiction import Operator
from studentstatus.domain.model import StatusChange
from studentstatus.services._renamed import renamed
from studentstatus.services.authority import kindergarten_in_scope, require_role
from studentstatus.services.runtime import Runtime

__all__ = ["ON_ROLL", "RollEntry", "fold_as_of", "list_roll"]

ON_ROLL: frozenset[State] = frozenset({State.ACTIVE, State.SUSPENDED})
"""States in which a record holds its place at its kindergarten."""

_CHUNK = 2000


@attrs.frozen
class RollEntry:
    """One child on roll: record id, child id, state and grade on the day.

    >>> RollEntry("r1", "c1", State.ACTIVE, Grade.JUNIOR).to_dict()["state"]
    'ACTIVE'
    """

    record_id: str
    child_id: str
    state: State
    grade: Grade | None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready mapping."""
        return {
            "record": self.record_id,
            "child": self.child_id,
            "state": self.state.value,
            "grade": self.grade.value if self.grade else None,
        }


def fold_as_of(events: Iterable[StatusChange], day: date) -> dict[str, Any]:
    """Fold the ``after`` values of ``events`` effective on or before ``day``.

    Events are taken in (effective date, seq) order; the result maps field
    names to their JSON values (``state``, ``kindergarten_code``, ``grade``, …).

    >>> from datetime import datetime
    >>> t = datetime(2026, 3, 20)
    >>> evs = [
    ...     StatusChange("r1", 1, ChangeKind.REGISTER, None, State.PENDING, date(2025, 9, 1), t,
    ...                  "k", after={"state": "PENDING", "kindergarten_code": "A"}),
    ...     StatusChange("r1", 2, ChangeKind.APPROVE, State.PENDING, State.ACTIVE,
    ...                  date(2025, 9, 5), t, "c", after={"state": "ACTIVE"}),
    ...     StatusChange("r1", 3, ChangeKind.TRANSFER, State.ACTIVE, State.ACTIVE,
    ...                  date(2026, 3, 1), t, "c", after={"kindergarten_code": "B"}),
    ... ]
    >>> fold_as_of(evs, date(2026, 2, 28))["kindergarten_code"]
    'A'
    >>> fold_as_of(evs, date(2026, 3, 1))["kindergarten_code"]
    'B'
    """
    values: dict[str, Any] = {}
    for event in sorted(
        (e for e in events if e.effective_date <= day), key=lambda e: (e.effective_date, e.seq)
    ):
        values.update(event.after)
    return values


def _candidates(rt: Runtime, code: str) -> list[str]:
    with rt.store.unit_of_work() as uow:
        ids = {r.id for r in uow.records.iter(kindergarten_code=code, batch_size=_CHUNK)}
        for event in uow.changes.iter(kinds=(ChangeKind.TRANSFER, ChangeKind.REENROLL)):
            if event.before.get("kindergarten_code") == code:
                ids.add(event.record_id)
    return sorted(ids)


def _entries(events: Iterator[StatusChange], code: str, day: date) -> Iterator[RollEntry]:
    for record_id, group in groupby(events, key=lambda e: e.record_id):
        values = fold_as_of(group, day)
        if values.get("kindergarten_code") != code:
            continue
        try:
            state = State(str(values.get("state", "")))
        except ValueError:
            continue
        if state not in ON_ROLL:
            continue
        grade_text = values.get("grade")
        grade = Grade(grade_text) if grade_text else None
        yield RollEntry(record_id, str(values.get("child_id", "")), state, grade)


def list_roll(
    rt: Runtime, operator: Operator, kindergarten_code: str, day: date
) -> list[RollEntry]:
    """The children on roll at ``kindergarten_code`` on ``day``, by record id.

    An unknown kindergarten, or one the operator does not cover, raises the same
    :class:`~studentstatus.errors.NotFoundError` (the refusal logged).  See the
    module example.
    """
    require_role(operator, "view")
    with rt.store.unit_of_work() as uow:
        found = uow.kindergartens.find(kindergarten_code)
    kindergarten_in_scope(operator, "roll", found, kindergarten_code)
    ids = _candidates(rt, kindergarten_code)
    out: list[RollEntry] = []
    with rt.store.unit_of_work() as uow:
        for start in range(0, len(ids), _CHUNK):
            chunk = ids[start : start + _CHUNK]
            events = uow.changes.iter(record_ids=chunk, effective_to=day)
            out.extend(_entries(iter(events), kindergarten_code, day))
    return out


# Former names (deprecated; not in __all__).
roll_as_of = renamed(list_roll, "roll_as_of")
