"""Year-end rollover (升班/毕业): promote every ACTIVE child one grade, graduate the SENIORs.

:func:`plan_rollover` says, per ACTIVE record in the operator's scope, what the
rollover into school year ``Y`` would do; :func:`apply_rollover` does it.

Per record (in this order):

``done``
    already promoted, skipped or graduated into ``Y`` (``last_promoted_year >= Y``):
    nothing to do.  This makes the rollover **idempotent**: a second run changes
    nothing.
``repeat``
    a REPEAT (留级) decided for ``Y`` (it sets ``last_promoted_year = Y`` and adds the
    grade to ``repeated_grades``): the child stays in its grade this year only; the
    next rollover promotes it again.
``new``
    entered in school year ``Y`` or later (its grade is already the one for ``Y``).
``blocked``
    the promotion or graduation breaks a rule; the reasons are every unmet guard of
    the status machine plus ``open_request_exists`` when a change request of the
    record's own kindergarten is open (the record's other changes wait for it; a
    transfer applied for by another kindergarten does not hold the rollover back).
``promote`` / ``graduate``
    PROMOTE to the next grade, or GRADUATE a SENIOR, effective 1 September ``Y``.

Applying is **atomic**: every promotion and graduation of the scope is written in
ONE unit of work, in chunks (``update_many`` of the records — or, on a store that
offers it, ``update_fields`` with only the fields the events touched — and
``append_many`` of the change events), so either the whole scope rolls over or
nothing does.  The memory and file stores hold the whole unit in memory until
commit (the file store writes it as one journal line); the SQL store streams it
inside one transaction.

**Set-based apply** (an adapter capability: ``records.rollover_rest``,
``rollover_covered`` and ``rollover_write``, offered by the SQL store; see
:mod:`studentstatus.adapters.sql.rollover`).  The records that
:class:`~studentstatus.domain.rollover.RolloverRule` covers — ACTIVE, grade set,
not yet promoted into ``Y``, entered before 1 September ``Y``, no suspension start
or cancellation date, no open change request: those the machine certainly
promotes or graduates — are written in the database by one ``INSERT … SELECT`` of
their change rows and one ``UPDATE``, the same rows the machine writes.  Only the
other ACTIVE records of the scope are read into Python and classified by the
machine as above (so ``done``/``repeat``/``new``/``blocked`` and the blocked
reasons are unchanged); they are written first, then the covered ones are
counted from one locked, id-ordered stream of ``(record_id, seq)``, merged into the
events digest, and written.  Without ``keep_items`` the records the rollover leaves
alone (``done``, ``repeat``, ``new``) are counted by the store
(``records.rollover_settled``) instead of read, so an idempotent second run reads
nothing into Python.  Stores without the capability (memory, files,
third-party adapters) take the machine path for every record; :func:`plan_rollover`
always does.

The change log keeps one event per record; the audit log gets ONE entry per
applied rollover (action ``rollover.apply``, subject ``rollover:Y``), whose
``after`` holds the counts and ``events_sha256``: the
:func:`~studentstatus.domain.audit.events_digest` of the ``(record_id, seq)`` of
every event it wrote.  :func:`recorded_digest` recomputes it from the change log,
which shows whether an event of the run was removed, added or renumbered.

The rollover for ``Y`` can be *planned* at any
time but *applied* only from 1 September ``Y`` (the changes take effect that day
and the status machine refuses future-dated changes): earlier, it raises
``school_year_not_started``.

>>> import random
>>> from datetime import date, datetime, timezone
>>> from studentstatus.adapters.memory import MemoryStore
>>> from studentstatus.domain.enums import Grade, State
>>> from studentstatus.domain.jurisdiction import Operator
>>> from studentstatus.domain.model import StatusRecord
>>> from studentstatus.services.runtime import FixedClock, Runtime
>>> store = MemoryStore()
>>> with store.unit_of_work() as uow:
...     for i, g in enumerate([Grade.JUNIOR, Grade.SENIOR]):
...         uow.records.add(StatusRecord(f"r{i}", f"c{i}", "1111000001", "110105",
...                                      State.ACTIVE, g, date(2025, 9, 1)))
...     uow.commit()
>>> rt = Runtime(store, FixedClock(datetime(2026, 9, 1, 9, tzinfo=timezone.utc)),
...              random.Random(1))
>>> county = Operator.parse("county:110105")
>>> plan = plan_rollover(rt, county, 2026)
>>> [(i.record_id, i.action) for i in plan.items], plan.totals["promote"]
([('r0', 'promote'), ('r1', 'graduate')], 1)
>>> apply_rollover(rt, county, 2026).totals["graduate"]
1
>>> apply_rollover(rt, county, 2026).totals["changed"]  # idempotent
0
>>> with store.unit_of_work() as uow:
...     [entry] = [e for e in uow.audit.iter() if e.action == "rollover.apply"]
...     entry.after["events"], recorded_digest(uow, entry) == entry.after["events_sha256"]
(2, True)
"""

from __future__ import annotations

import bisect
import hashlib
import itertools
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import date
from operator import lt
from typing import Any

import attrs

from studentstatus.domain import machine
from studentstatus.domain.age import SCHOOL_YEAR_START_MONTH, school_year_of
from studentstatus.domain.audit import events_digest
from studentstatus.domain.enums import ChangeKind, Grade, RequestStatus, State
from studentstatus.domain.jurisdiction import Operator
from studentstatus.domain.model import AuditEntry, ChangeRequest, StatusChange, StatusRecord
from studentstatus.domain.rollover import NEXT_GRADE, RolloverRule
from studentstatus.errors import RuleViolations, StorageError, Violation
from studentstatus.ports import FieldUpdates, SetBasedRollover, UnitOfWork
from studentstatus.services.audit import AuditEvent, audit
from studentstatus.services.authority import is_home_request, require_role
from studentstatus.services.changes import close_stale_requests
from studentstatus.services.records import iter_scope
from studentstatus.services.runtime import Runtime

__all__ = [
    "ACTIONS",
    "RolloverItem",
    "RolloverReport",
    "apply_rollover",
    "iter_items",
    "plan_rollover",
    "recorded_digest",
    "rollover_start",
]

ACTIONS: tuple[str, ...] = ("promote", "graduate", "repeat", "done", "new", "blocked")
"""Every per-record outcome of a rollover, in report order."""

DEFAULT_CHUNK = 2000
"""Records per bulk write (update_many / append_many)."""


def rollover_start(school_year: int) -> date:
    """The day the rollover into ``school_year`` takes effect (1 September).

    >>> rollover_start(2026)
    datetime.date(2026, 9, 1)
    """
    return date(school_year, SCHOOL_YEAR_START_MONTH, 1)


@attrs.frozen
class RolloverItem:
    """What the rollover does to one record.

    >>> RolloverItem("r1", "1111000001", Grade.JUNIOR, "promote", Grade.MIDDLE).to_dict()
    ... # doctest: +NORMALIZE_WHITESPACE
    {'record': 'r1', 'kindergarten': '1111000001', 'grade': 'JUNIOR', 'action': 'promote',
     'to_grade': 'MIDDLE', 'reasons': []}
    """

    record_id: str
    kindergarten_code: str
    grade: Grade | None
    action: str
    to_grade: Grade | None = None
    reasons: tuple[Violation, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready mapping."""
        return {
            "record": self.record_id,
            "kindergarten": self.kindergarten_code,
            "grade": self.grade.value if self.grade else None,
            "action": self.action,
            "to_grade": self.to_grade.value if self.to_grade else None,
            "reasons": [
                {
                    "code": v.code,
                    "field": v.field,
                    "message_zh": v.message_zh,
                    "message_en": v.message_en,
                }
                for v in self.reasons
            ],
        }


@attrs.frozen
class RolloverReport:
    """Totals per action (plus ``records`` and ``changed``) and, when kept, the items.

    >>> RolloverReport(2026, False, {"promote": 2}).to_dict()["totals"]
    {'promote': 2}
    """

    school_year: int
    applied: bool
    totals: Mapping[str, int]
    items: tuple[RolloverItem, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready mapping: ``school_year``, ``applied``, ``totals``, ``items``."""
        return {
            "school_year": self.school_year,
            "applied": self.applied,
            "totals": dict(self.totals),
            "items": [i.to_dict() for i in self.items],
        }


_OPEN_REQUEST = Violation(
    "open_request_exists",
    "record",
    "该学籍有未办结的变动申请，其他变动须等待",
    "the record has an open change request; other changes must wait",
)


def _classify(
    record: StatusRecord,
    year: int,
    start: date,
    context: machine.Context,
    open_requests: Mapping[str, Sequence[ChangeRequest]],
    operator: str,
    now: Any,
) -> tuple[RolloverItem, tuple[StatusRecord, StatusChange] | None]:
    grade = record.grade
    kg = record.kindergarten_code
    if record.last_promoted_year is not None and record.last_promoted_year >= year:
        action = "repeat" if grade in record.repeated_grades else "done"
        return RolloverItem(record.id, kg, grade, action, grade), None
    if school_year_of(record.entry_date, context.policy) >= year:
        return RolloverItem(record.id, kg, grade, "new", grade), None
    kind = ChangeKind.GRADUATE if grade is Grade.SENIOR else ChangeKind.PROMOTE
    action = "graduate" if kind is ChangeKind.GRADUATE else "promote"
    change = machine.Change(kind, start, reason=f"rollover {year}", operator=operator)
    # Only the record's own (home) requests hold it back: a transfer applied for by
    # another kindergarten does not block the county's rollover.
    held = any(is_home_request(q, record) for q in open_requests.get(record.id, ()))
    reasons: list[Violation] = [_OPEN_REQUEST] if held else []
    result: tuple[StatusRecord, StatusChange] | None = None
    if reasons:
        reasons.extend(machine.check(record, change, context=context))
    else:
        try:
            result = machine.apply(record, change, context=context, recorded_at=now)
        except RuleViolations as exc:
            reasons.extend(exc.violations)
    if reasons:
        return RolloverItem(record.id, kg, grade, "blocked", grade, tuple(reasons)), None
    assert result is not None
    to_grade = result[0].grade if kind is ChangeKind.PROMOTE else None
    return RolloverItem(record.id, kg, grade, action, to_grade), result


def _set_based(uow: UnitOfWork) -> SetBasedRollover | None:
    """The store's set-based rollover capability (its records repository), or ``None``."""
    records = uow.records
    return records if isinstance(records, SetBasedRollover) else None


def _run(
    rt: Runtime,
    uow: UnitOfWork,
    operator: Operator,
    school_year: int,
    *,
    today: date,
    write: bool,
    keep_items: bool,
    chunk: int,
    progress: Callable[[int], None] | None,
) -> RolloverReport:
    start = rollover_start(school_year)
    now = rt.clock.now()
    contexts: dict[str, machine.Context] = {}

    def context_for(region: str) -> machine.Context:
        """The machine context of the record's province (its policy, host guards included)."""
        key = region[:2]
        if key not in contexts:
            contexts[key] = machine.Context(today=today, policy=rt.policy_for(region))
        return contexts[key]

    open_requests: dict[str, list[ChangeRequest]] = {}
    for q in uow.requests.iter(status=RequestStatus.OPEN):
        open_requests.setdefault(q.record_id, []).append(q)
    totals = dict.fromkeys(("records", *ACTIONS, "changed"), 0)
    items: list[RolloverItem] = []
    updates: list[StatusRecord] = []
    events: list[StatusChange] = []
    pairs: list[tuple[str, int]] = []  # (record_id, seq) of the events written record by record
    who = str(operator)
    scope = operator.list_filter()
    # Applying on a store with the capability: the records the rule covers are written
    # set-based in the database; the machine sees only the others.
    # The set-based rule is the national machine's PROMOTE/GRADUATE: with province policies
    # or host guards every record goes through the machine of its own province instead.
    national_only = not rt.policies and not rt.policy.guards
    bulk = _set_based(uow) if write and today >= start and national_only else None
    rule = RolloverRule(school_year, who, now)
    if bulk is not None:
        totals["covered"] = 0

    def flush() -> None:
        if not updates:
            return
        if isinstance(uow.records, FieldUpdates):
            # Declared capability (SQL store): write only the fields the events touched.
            uow.records.update_fields(updates, {f for e in events for f in e.after})
        else:
            uow.records.update_many(updates)
        uow.changes.append_many(events)
        pairs.extend((e.record_id, e.seq) for e in events)
        updates.clear()
        events.clear()

    seen = 0

    def tick(n: int = 1) -> None:
        nonlocal seen
        before = seen // chunk
        seen += n
        if progress is not None:
            for _ in range(seen // chunk - before):
                progress(chunk)

    if bulk is not None:
        # Without items, the records the rollover leaves alone (done, repeat, new) are
        # counted by the store instead of read (when it can).
        settled = None if keep_items else bulk.rollover_settled
        if settled is not None:
            counts = settled(rule, **scope)
            for action in ("done", "repeat", "new"):
                totals[action] += counts[action]
                totals["records"] += counts[action]
                tick(counts[action])
        if settled is None:
            records = bulk.rollover_rest(rule, batch_size=chunk, **scope)
        elif counts["machine"]:
            records = bulk.rollover_rest(rule, batch_size=chunk, skip_settled=True, **scope)
        else:
            records = iter(())
    else:
        records = iter_scope(uow, operator, states=(State.ACTIVE,), batch_size=chunk)
    for record in records:
        context = context_for(record.region_code)
        item, result = _classify(record, school_year, start, context, open_requests, who, now)
        totals["records"] += 1
        totals[item.action] += 1
        if keep_items:
            items.append(item)
        if result is not None:
            totals["changed"] += 1
            if write:
                new, event = result
                updates.append(attrs.evolve(new, version=record.version))
                events.append(event)
                if len(updates) >= chunk:
                    flush()
        tick()
    digest = _Digest()
    if write:
        flush()
        pairs.sort()
        if bulk is not None:
            batches = bulk.rollover_covered(rule, batch_size=chunk, **scope)
            _fold_covered(batches, pairs, digest, totals, items if keep_items else None, tick)
        else:
            digest.feed(pairs)
        if bulk is not None and totals["covered"]:
            bulk.rollover_write(rule, expected=totals["covered"], **scope)
        totals.pop("covered", None)
        if open_requests and totals["changed"]:
            # A transfer applied for by another kindergarten did not hold the record back;
            # one the new state no longer allows (a graduate's) is closed, audited.
            touched = uow.records.get_many(list(open_requests)).values()
            close_stale_requests(
                uow, operator, [r for r in touched if operator.covers_record(r)], now
            )
        if totals["changed"]:
            audit(
                uow,
                AuditEvent(
                    who,
                    "rollover.apply",
                    f"rollover:{school_year}",
                    f"rollover {school_year}",
                    {},
                    {
                        "school_year": school_year,
                        "events": totals["changed"],
                        "promote": totals["promote"],
                        "graduate": totals["graduate"],
                        "events_sha256": digest.hexdigest(),
                    },
                ),
                at=now,
            )
    if progress is not None and seen % chunk:
        progress(seen % chunk)
    if not write:
        totals["changed"] = 0
    if keep_items and bulk is not None:
        items.sort(key=lambda i: i.record_id)
    return RolloverReport(school_year, write, totals, tuple(items))


class _Digest:
    """:func:`~studentstatus.domain.audit.events_digest`, fed in batches of increasing pairs.

    Each row fed starts with ``(record_id, seq)``; the rows must come in strictly
    increasing order overall (``StorageError`` otherwise), which is the sorted order
    ``events_digest`` hashes in.

    >>> from studentstatus.domain.audit import events_digest
    >>> d = _Digest()
    >>> d.feed([("a", 2)]); d.feed([("b", 1, "x"), ("c", 5, "y")])
    >>> d.hexdigest() == events_digest([("c", 5), ("a", 2), ("b", 1)])
    True
    """

    def __init__(self) -> None:
        self._hash = hashlib.sha256()
        self._last: tuple[str, int] | None = None

    def feed(self, rows: Sequence[tuple[Any, ...]]) -> None:
        """Hash ``rows`` (each ``(record_id, seq, …)``), checking their order."""
        if not rows:
            return
        _check_order(rows)
        if self._last is not None and (rows[0][0], rows[0][1]) <= self._last:
            raise StorageError(_ORDER)
        self._hash.update("".join([f"{r[0]}\t{r[1]}\n" for r in rows]).encode())
        self._last = (rows[-1][0], rows[-1][1])

    def hexdigest(self) -> str:
        """The digest of everything fed so far."""
        return self._hash.hexdigest()


_ORDER = "rollover events digest: the events are not in (record_id, seq) order"


def _check_order(rows: Sequence[tuple[Any, ...]]) -> None:
    if not all(map(lt, rows, itertools.islice(rows, 1, None))):
        raise StorageError(_ORDER)


def _fold_covered(
    batches: Iterable[Sequence[tuple[str, int, str, str]]],
    pairs: list[tuple[str, int]],
    digest: _Digest,
    totals: dict[str, int],
    items: list[RolloverItem] | None,
    tick: Callable[[int], None],
) -> None:
    """Count the set-based records (and list them in ``items``) and digest their events,
    merged with the sorted ``pairs`` of the events written record by record."""
    senior = Grade.SENIOR.value
    i = 0  # pairs[:i] are digested
    for batch in batches:
        n = len(batch)
        graduate = sum(1 for row in batch if row[3] == senior)
        totals["records"] += n
        totals["graduate"] += graduate
        totals["promote"] += n - graduate
        totals["changed"] += n
        totals["covered"] += n
        if items is not None:
            for record_id, _seq, kg, value in batch:
                grade = Grade(value)
                if grade is Grade.SENIOR:
                    items.append(RolloverItem(record_id, kg, grade, "graduate"))
                else:
                    items.append(RolloverItem(record_id, kg, grade, "promote", NEXT_GRADE[grade]))
        j = bisect.bisect_right(pairs, (batch[-1][0], batch[-1][1]), lo=i) if n else i
        if j > i:  # events of the machine's share fall among (or before) this batch's
            _check_order(batch)
            digest.feed(sorted([(r[0], r[1]) for r in batch] + pairs[i:j]))
            i = j
        else:
            digest.feed(batch)
        tick(n)
    digest.feed(pairs[i:])


def _ensure(operator: Operator) -> None:
    require_role(operator, "rollover")


def plan_rollover(
    rt: Runtime,
    operator: Operator,
    school_year: int,
    *,
    keep_items: bool = True,
    chunk: int = DEFAULT_CHUNK,
) -> RolloverReport:
    """The rollover into ``school_year`` for the operator's scope, without writing.

    ``totals["changed"]`` is 0 in a plan; ``promote + graduate`` is what applying
    would change.  See the module example.
    """
    _ensure(operator)
    today = max(rt.clock.today(), rollover_start(school_year))
    with rt.store.unit_of_work() as uow:
        return _run(
            rt,
            uow,
            operator,
            school_year,
            today=today,
            write=False,
            keep_items=keep_items,
            chunk=chunk,
            progress=None,
        )


def apply_rollover(
    rt: Runtime,
    operator: Operator,
    school_year: int,
    *,
    keep_items: bool = False,
    chunk: int = DEFAULT_CHUNK,
    progress: Callable[[int], None] | None = None,
) -> RolloverReport:
    """Apply every promotion and graduation of the operator's scope in one unit of work.

    Blocked records are reported and left as they are; a second run changes
    nothing.  ``progress(n)`` is called after every ``n`` records read.  Raises
    :class:`~studentstatus.errors.RuleViolations` (``school_year_not_started``)
    before 1 September of ``school_year``.  See the module example.
    """
    _ensure(operator)
    today = rt.clock.today()
    start = rollover_start(school_year)
    if today < start:
        raise RuleViolations(
            [
                Violation(
                    "school_year_not_started",
                    "school_year",
                    f"{school_year}学年尚未开始（{start.isoformat()}起可升班）",
                    f"school year {school_year} starts on {start.isoformat()}; "
                    "apply the rollover on or after that day",
                )
            ]
        )
    with rt.store.unit_of_work() as uow:
        report = _run(
            rt,
            uow,
            operator,
            school_year,
            today=today,
            write=True,
            keep_items=keep_items,
            chunk=chunk,
            progress=progress,
        )
        uow.commit()
    return report


def iter_items(report: RolloverReport, action: str) -> Iterator[RolloverItem]:
    """The items of ``report`` with ``action``.

    >>> list(iter_items(RolloverReport(2026, False, {}), "blocked"))
    []
    """
    return (i for i in report.items if i.action == action)


def recorded_digest(uow: UnitOfWork, entry: AuditEntry) -> str:
    """Recompute a ``rollover.apply`` audit entry's ``events_sha256`` from the change log.

    The events of one applied rollover are the PROMOTE and GRADUATE events with
    its reason (``rollover Y``), effective 1 September ``Y``, recorded at the
    entry's ``at`` by the entry's operator.  Equal to ``entry.after["events_sha256"]``
    unless one of them was removed, added or renumbered (two rollovers applied by the
    same operator at the same instant cannot be told apart).  See the module example.
    """
    year = int(entry.after["school_year"])
    start = rollover_start(year)
    reason = f"rollover {year}"
    return events_digest(
        (e.record_id, e.seq)
        for e in uow.changes.iter(
            kinds=(ChangeKind.PROMOTE, ChangeKind.GRADUATE),
            effective_from=start,
            effective_to=start,
        )
        if e.reason == reason and e.recorded_at == entry.at and e.operator == entry.operator
    )
