"""Who is stuck: the records of a scope without a national number, by reason and next step.

:func:`list_stuck_records` lists every live record (PENDING, ACTIVE, SUSPENDED,
ABROAD) in the operator's scope that has no national number yet, grouped by
the reason it has none — the reasons of ``issue-numbers``
(:data:`studentstatus.domain.problems.NEXT_STEPS`) plus the steps before it:

* ``open_problem`` — a problem is OPEN (the kindergarten acts; the county
  arbitrates duplicates); ``evidence_submitted`` — every open problem waits
  for the county to accept or return the evidence;
* ``pending_approval`` — not approved yet (the county);
* ``not_active`` — suspended or abroad (numbered once back on roll);
* ``not_verified`` — a resident ID not yet checked by public security (the
  province runs ``verify``); ``not_confirmed`` — no resident ID and no county
  confirmation; ``invalid_id``; ``number_taken`` — the ID's G number belongs
  to another record (numbers are never reused);
* ``ready`` — nothing blocks it: the next ``issue-numbers`` numbers it.

Each group carries its :class:`~studentstatus.domain.problems.NextStep` (what
to do, who does it, Chinese and English) and each record its deadline: the
earliest due date of its open problems, or else the problem due date of the
current school year (31 July, :func:`studentstatus.domain.problems.due_date`),
and whether it has passed.  Items name records, kindergartens and problems,
never an ID number.

The records are selected in one read pass (ids spooled to a temporary file)
and classified chunk by chunk (records, children and open problems read in
bulk), so memory stays flat in the number of records when ``collect=False``
(the report then keeps only the counts).  :func:`count_stuck_records` gives the
counts alone (the monitoring report's ``stuck``).

>>> from studentstatus.domain.jurisdiction import Operator
>>> from studentstatus.services.intake import import_children
>>> from studentstatus.testing.examples import child_row, example_runtime
>>> rt = example_runtime()  # a memory store, kindergarten 1111000001 licensed, 2 Sep 2024
>>> row = child_row(id_type="resident", id_number="110105202003150038")
>>> _ = import_children(rt, Operator.parse("kindergarten:1111000001"), [row])
>>> report = list_stuck_records(rt, Operator.parse("county:110105"))
>>> report.counts, report.deadline
({'pending_approval': 1}, datetime.date(2025, 7, 31))
>>> group = report.groups["pending_approval"]
>>> group.step.who, group.records[0]["overdue"]
('county', False)
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from datetime import date
from typing import Any

import attrs

from studentstatus.batching import spooled
from studentstatus.domain import numbers as national
from studentstatus.domain.age import school_year_of
from studentstatus.domain.child import RESIDENT_LIKE
from studentstatus.domain.enums import ProblemStatus, State, VerificationResult
from studentstatus.domain.jurisdiction import Operator
from studentstatus.domain.model import Child, ProblemRecord, StatusRecord
from studentstatus.domain.policy import Policy
from studentstatus.domain.problems import NextStep, due_date, next_step
from studentstatus.errors import InvalidNumber
from studentstatus.ports import UnitOfWork
from studentstatus.services._renamed import renamed
from studentstatus.services.authority import require_role
from studentstatus.services.runtime import Runtime
from studentstatus.services.verification import open_problems_of

__all__ = [
    "LIVE_STATES",
    "REASONS",
    "StuckGroup",
    "StuckReport",
    "classify",
    "count_stuck_records",
    "list_stuck_records",
]

LIVE_STATES: tuple[State, ...] = (State.PENDING, State.ACTIVE, State.SUSPENDED, State.ABROAD)
"""States whose records may still need a national number."""

REASONS: tuple[str, ...] = (
    "open_problem",
    "evidence_submitted",
    "pending_approval",
    "not_active",
    "no_child",
    "invalid_id",
    "not_verified",
    "not_confirmed",
    "number_taken",
    "ready",
)
"""Every reason :func:`classify` gives, in the order the listing shows them."""


def classify(
    rec: StatusRecord,
    child: Child | None,
    open_problems: Sequence[ProblemRecord],
    *,
    number_holder: str | None = None,
) -> str:
    """Why ``rec`` (live, without a national number) has none yet: one of :data:`REASONS`.

    ``number_holder`` is the record id holding the child's G number in the
    number registry, if any.

    >>> from datetime import date
    >>> from studentstatus.domain.enums import Sex, VerificationResult
    >>> from studentstatus.domain.model import IdentityDocument
    >>> from studentstatus.ids import DocumentType
    >>> child = Child("c1", "王小明", Sex.M, date(2020, 3, 15),
    ...               document=IdentityDocument(DocumentType.RESIDENT, "110105202003150038"))
    >>> rec = StatusRecord("r1", "c1", "1111000001", "110105", State.ACTIVE, None,
    ...                    date(2024, 9, 1))
    >>> classify(rec, child, [])
    'not_verified'
    >>> confirmed = attrs.evolve(rec, verification=VerificationResult.CONFIRMED)
    >>> classify(confirmed, child, []), classify(confirmed, child, [], number_holder="r0")
    ('ready', 'number_taken')
    """
    if open_problems:
        if any(p.status is ProblemStatus.OPEN for p in open_problems):
            return "open_problem"
        return "evidence_submitted"
    if rec.state is State.PENDING:
        return "pending_approval"
    if rec.state is not State.ACTIVE:
        return "not_active"
    if child is None:
        return "no_child"
    doc = child.document
    if doc is not None and doc.type.value in RESIDENT_LIKE and doc.number:
        try:
            national.g_number(doc.number)
        except InvalidNumber:
            return "invalid_id"
        if rec.verification is None or not rec.verification.is_verified:
            return "not_verified"
        if number_holder is not None and number_holder != rec.id:
            return "number_taken"
        return "ready"
    if not (rec.county_confirmed or rec.verification is VerificationResult.CONFIRMED):
        return "not_confirmed"
    return "ready"


@attrs.define
class StuckGroup:
    """The records stuck for one reason, with the next step (``records`` empty when not
    collected).

    >>> StuckGroup("ready", next_step("ready")).to_dict()["who"]
    'province'
    """

    reason: str
    step: NextStep
    count: int = 0
    overdue: int = 0
    records: list[dict[str, Any]] = attrs.field(factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form: the next step's fields, ``count``, ``overdue`` and ``records``."""
        out: dict[str, Any] = dict(self.step.to_dict())
        out.update(count=self.count, overdue=self.overdue, records=list(self.records))
        return out


@attrs.define
class StuckReport:
    """Records without a national number, by reason (see the module docs).

    >>> StuckReport("110105", date(2025, 10, 9), date(2026, 7, 31)).to_dict()["total"]
    0
    """

    scope: str
    as_of: date
    deadline: date
    groups: dict[str, StuckGroup] = attrs.field(factory=dict)

    @property
    def counts(self) -> dict[str, int]:
        """Records by reason, in the order of :data:`REASONS`."""
        return {r: self.groups[r].count for r in REASONS if r in self.groups}

    @property
    def total(self) -> int:
        """All records listed."""
        return sum(g.count for g in self.groups.values())

    def to_dict(self) -> dict[str, Any]:
        """The JSON document of ``studentstatus stuck --json``."""
        return {
            "scope": self.scope,
            "as_of": self.as_of.isoformat(),
            "deadline": self.deadline.isoformat(),
            "deadline_passed": self.as_of > self.deadline,
            "total": self.total,
            "counts": self.counts,
            "groups": {r: self.groups[r].to_dict() for r in REASONS if r in self.groups},
        }

    def lines(self) -> list[str]:
        """The text listing: one block per reason, then one line per record."""
        passed = "passed" if self.as_of > self.deadline else "not passed"
        out = [
            f"{self.total} record(s) without a national number in {self.scope or 'all'}; "
            f"deadline {self.deadline.isoformat()} ({passed} on {self.as_of.isoformat()})"
        ]
        for reason in REASONS:
            g = self.groups.get(reason)
            if g is None:
                continue
            s = g.step
            out.append(
                f"{reason} {g.count} ({g.overdue} overdue): {s.label_zh} / {s.label_en}"
                f" — next ({s.who}): {s.step_zh} / {s.step_en}"
            )
            for item in g.records:
                late = " OVERDUE" if item["overdue"] else ""
                kinds = ",".join(p["kind"] for p in item["problems"])
                out.append(
                    f"  {item['record_id']}  {item['kindergarten_code']}  {item['state']}  "
                    f"due {item['deadline']}{late}" + (f"  {kinds}" if kinds else "")
                )
        return out


def _scan(
    rt: Runtime, filters: dict[str, Any], *, chunk_size: int
) -> Iterator[tuple[StatusRecord, str, date, list[ProblemRecord]]]:
    """(record, reason, deadline, open problems) for every live record without a number."""
    policy: Policy = rt.policy
    today = rt.clock.today()
    default_due = due_date(school_year_of(today), policy)
    with spooled(_ids(rt, filters), chunk_size) as chunks:
        for ids in chunks:
            with rt.store.unit_of_work() as uow:
                yield from _classify_chunk(uow, ids, default_due)


def _ids(rt: Runtime, filters: dict[str, Any]) -> Iterator[str]:
    with rt.store.unit_of_work() as uow:
        for rec in uow.records.iter(states=LIVE_STATES, **filters):
            if not rec.national_number:
                yield rec.id


def _classify_chunk(
    uow: UnitOfWork, ids: Sequence[str], default_due: date
) -> Iterator[tuple[StatusRecord, str, date, list[ProblemRecord]]]:
    records = uow.records.get_many(list(ids))
    children = uow.children.get_many([r.child_id for r in records.values()])
    problems = open_problems_of(uow, list(records))
    for rid in ids:
        rec = records.get(rid)
        if rec is None or rec.national_number or not rec.state.is_live:
            continue
        child = children.get(rec.child_id)
        mine = problems.get(rid, [])
        holder = None
        doc = child.document if child is not None else None
        if (
            not mine
            and rec.state is State.ACTIVE
            and rec.verification is not None
            and rec.verification.is_verified
            and doc is not None
            and doc.number
            and doc.type.value in RESIDENT_LIKE
        ):
            try:
                issued = uow.numbers.resolve(national.g_number(doc.number))
            except InvalidNumber:
                issued = None
            holder = issued.record_id if issued is not None else None
        reason = classify(rec, child, mine, number_holder=holder)
        deadline = min((p.due_date for p in mine), default=default_due)
        yield rec, reason, deadline, mine


def list_stuck_records(
    rt: Runtime,
    operator: Operator,
    *,
    collect: bool = True,
    chunk_size: int = 2000,
) -> StuckReport:
    """The operator's records without a national number, by reason (see the module docs).

    Any operator that may ``view`` records may ask, for its own scope (a
    county its county, a kindergarten its own records).  With
    ``collect=False`` the groups keep their counts only.
    """
    require_role(operator, "view")
    today = rt.clock.today()
    report = StuckReport(
        scope=operator.scope or "",
        as_of=today,
        deadline=due_date(school_year_of(today), rt.policy),
    )
    for rec, reason, deadline, mine in _scan(
        rt, dict(operator.list_filter()), chunk_size=chunk_size
    ):
        group = report.groups.get(reason)
        if group is None:
            group = report.groups[reason] = StuckGroup(reason, next_step(reason))
        late = today > deadline
        group.count += 1
        group.overdue += int(late)
        if collect:
            group.records.append(
                {
                    "record_id": rec.id,
                    "kindergarten_code": rec.kindergarten_code,
                    "region_code": rec.region_code,
                    "state": rec.state.value,
                    "deadline": deadline.isoformat(),
                    "overdue": late,
                    "problems": [
                        {"id": p.id, "kind": p.kind.value, "status": p.status.value}
                        for p in sorted(mine, key=lambda p: p.id)
                    ],
                }
            )
    return report


def count_stuck_records(
    rt: Runtime,
    region_prefix: str,
    kindergarten_code: str | None = None,
    *,
    chunk_size: int = 2000,
) -> dict[str, int]:
    """Records without a national number by reason, for a region (or one kindergarten).

    No authorization here: the caller (the monitoring report) has checked the scope.

    >>> import random
    >>> from datetime import datetime, timezone
    >>> from studentstatus.adapters.memory import MemoryStore
    >>> from studentstatus.services.runtime import FixedClock, Runtime
    >>> rt = Runtime(MemoryStore(), FixedClock(datetime(2026, 1, 1, tzinfo=timezone.utc)))
    >>> count_stuck_records(rt, "11")
    {}
    """
    filters: dict[str, Any] = (
        {"kindergarten_code": kindergarten_code}
        if kindergarten_code is not None
        else {"region_prefix": region_prefix}
    )
    counts: Counter[str] = Counter()
    for _rec, reason, _deadline, _mine in _scan(rt, filters, chunk_size=chunk_size):
        counts[reason] += 1
    return {r: counts[r] for r in REASONS if counts[r]}


# Former names (deprecated; not in __all__).
stuck_records = renamed(list_stuck_records, "stuck_records")
stuck_counts = renamed(count_stuck_records, "stuck_counts")
