"""Replaying the stored data against the audit trail: records, change log, audit entries.

A hash chain proves that its entries were not changed; it says nothing of the
tables next to it.  :func:`replay` checks those (``services.audit.verify(...,
replay=True)`` and ``studentstatus audit verify`` run it):

* **records ↔ change log** — each record's events, replayed from nothing as the
  status machine replays them (:func:`studentstatus.domain.machine.replay`: REGISTER's
  ``after`` holds every field, each later event's ``after`` the fields it changed),
  must give the stored record's :data:`REPLAYED_FIELDS`; each event's ``from_state`` and
  ``to_state`` must be the states before and after it; the temporary, former and
  national numbers must be what the REGISTER event and a number issue leave (a G
  number must be ``G`` + the child's document number);
* **change log ↔ audit log** — every event that a service audits one by one must
  have its audit entry, and every such entry its event: REGISTER (``register``),
  APPROVE (``approve``), CANCEL (``cancel``) and every change (``change.<kind>``),
  compared on ``(record, kind, state after)`` — and, for REGISTER, kindergarten,
  grade, temporary number and child; a national number must have its
  ``issue_number`` entry (kind, and the number itself unless it is a G number,
  whose entry holds it masked); the PROMOTE/GRADUATE events of a year-end rollover
  must add up to the counts of their run's ``rollover.apply`` entry;
* **children** — a record's child must exist; with the host's key, where an
  ``register`` or ``approve`` audit entry carries a ``child_digest``
  (``services.audit.child_digest``: a keyed digest of the child's document number,
  name and birth date, never the number), the stored child must still give it — so
  a child's number, name or birth date edited in the table is found.  A record
  whose child was corrected (``problem_correct``) is not compared after the
  correction (the correction does not record the new digest yet).

Not replayed (the change log does not determine them): ``verification`` (set by
the population check), ``version`` (every update moves it) and the record's
problems, requests and attendance.

**Memory stays flat.**  The records and the change log are read as two streams
in the store's id order and matched as they come (an item whose partner has not
come yet waits; in the same order nothing waits long), children a chunk at a
time.  Events and audit entries are compared without holding either: each side
adds a 64-bit hash of each fact (Python's ``hash``, keyed afresh in every process)
into one of :data:`BUCKETS` sums chosen by the record id, and only buckets whose sums
differ are read again, fact by fact, to name the records concerned.  An untouched
store is read once.

The records must not change while they are read: run it on a quiet store (or a
copy); a write committed between the audit log and the tables were read shows as
a finding (run it again to tell).

>>> from datetime import UTC, date, datetime
>>> from studentstatus.adapters.memory import MemoryStore
>>> from studentstatus.domain.audit import seal_events
>>> from studentstatus.domain.enums import ChangeKind, Grade, Sex, State
>>> from studentstatus.domain.model import Child, StatusChange, StatusRecord
>>> t = datetime(2025, 9, 1, 8, tzinfo=UTC)
>>> rec = StatusRecord("r1", "c1", "1111000001", "110105", State.PENDING, Grade.MIDDLE,
...                    date(2025, 9, 1), temp_number="L1")
>>> after = {"id": "r1", "child_id": "c1", "kindergarten_code": "1111000001",
...          "region_code": "110105", "state": "PENDING", "grade": "MIDDLE",
...          "entry_date": "2025-09-01", "temp_number": "L1"}
>>> event = StatusChange("r1", 1, ChangeKind.REGISTER, None, State.PENDING, date(2025, 9, 1),
...                      t, "kindergarten:1111000001", after=after)
>>> store = MemoryStore()
>>> with store.unit_of_work() as uow:
...     uow.children.add(Child("c1", "王小明", Sex.M, date(2020, 10, 3)))
...     uow.records.add(attrs.evolve(rec, version=1))
...     uow.changes.append(event)
...     uow.audit.append_many(seal_events(None, t, [("kindergarten:1111000001", "register",
...         "r1", "", {}, {k: after[k] for k in ("state", "kindergarten_code", "grade",
...                                                "temp_number", "child_id")})]))
...     uow.commit()
1
>>> with store.unit_of_work() as uow:
...     replay(uow, collect_audit(uow.audit.iter())).findings
[]
>>> with store.unit_of_work() as uow:  # the grade changed behind the change log's back
...     _ = uow.records.update(attrs.evolve(rec, grade=Grade.SENIOR, version=1))
...     uow.commit()
>>> with store.unit_of_work() as uow:
...     found = replay(uow, collect_audit(uow.audit.iter())).findings
...     [(f.code, f.field, f.record_id) for f in found]
[('replay_mismatch', 'grade', 'r1')]
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any, NoReturn

import attrs

from studentstatus.domain import machine
from studentstatus.domain import numbers as national
from studentstatus.domain.audit import AuditFinding, AuditKey, identity_digest
from studentstatus.domain.enums import ChangeKind
from studentstatus.domain.model import AuditEntry, Child, StatusChange, StatusRecord
from studentstatus.errors import InvalidNumber, ValidationError
from studentstatus.ports import UnitOfWork

__all__ = [
    "BUCKETS",
    "REPLAYED_FIELDS",
    "AuditFacts",
    "ReplayResult",
    "collect_audit",
    "replay",
]

REPLAYED_FIELDS: tuple[str, ...] = (
    "child_id",
    "kindergarten_code",
    "region_code",
    "state",
    "grade",
    "entry_date",
    "suspended_since",
    "suspended_until",
    "suspended_days",
    "last_promoted_year",
    "repeated_grades",
    "skipped",
    "state_before_cancel",
    "cancelled_on",
    "county_confirmed",
)
"""The record fields that replaying the change log must give exactly.  The numbers
(``temp_number``, ``former_numbers``, ``national_number``) are checked apart: a number
issue moves them without a change event."""

BUCKETS = 4096
"""How many sums the facts of each side are added into (by record id)."""

_MASK = (1 << 64) - 1
_ROLLOVER = frozenset({ChangeKind.PROMOTE, ChangeKind.GRADUATE})
_BY_ACTION = {"register": ChangeKind.REGISTER, "approve": ChangeKind.APPROVE,
              "cancel": ChangeKind.CANCEL}  # fmt: skip
_KINDS = {k.value: k for k in ChangeKind}
_DIGESTED = {ChangeKind.REGISTER: "register", ChangeKind.APPROVE: "approve"}

Fact = tuple[Any, ...]


def _bucket(record_id: str) -> int:
    return hash(record_id) & (BUCKETS - 1)


def _hash(fact: Fact) -> int:
    # Python's own hash: keyed afresh in every process (SipHash of str), the same for both
    # sides of one verification; the sums only have to agree within it.
    return hash(fact) & _MASK


def _register_fact(record_id: str, values: Mapping[str, Any]) -> Fact:
    return (
        record_id,
        "REGISTER",
        values.get("state"),
        values.get("kindergarten_code"),
        values.get("grade"),
        values.get("temp_number"),
        values.get("child_id"),
    )


class _Sums:
    """Facts added up per bucket; or, with ``pick``, kept one by one for those buckets."""

    def __init__(self, pick: frozenset[int] | None = None) -> None:
        self.sums = [0] * BUCKETS
        self.pick = pick
        self.detail: dict[str, Counter[Fact]] = {}

    def add(self, record_id: str, fact: Fact, sign: int = 1) -> None:
        b = _bucket(record_id)
        if self.pick is None:
            self.sums[b] = (self.sums[b] + sign * _hash(fact)) & _MASK
        elif b in self.pick:
            found = self.detail.get(record_id)
            if found is None:
                found = self.detail[record_id] = Counter()
            found[fact] += sign


@attrs.define
class AuditFacts:
    """What the audit log says of records, gathered while it is read (:func:`collect_audit`).

    ``sums``: the facts per bucket; ``runs``: each rollover run's counts by its time;
    ``child_digests``: how many entries carry a ``child_digest``.
    """

    sums: _Sums = attrs.field(factory=_Sums)
    runs: dict[datetime, Counter[str]] = attrs.field(factory=dict)
    operators: dict[datetime, str] = attrs.field(factory=dict)
    child_digests: int = 0
    digest_since: dict[str, datetime] = attrs.field(factory=dict)

    def feed(self, entry: AuditEntry) -> None:
        """Take the facts of one entry."""
        action = entry.action
        after = entry.after
        rid = entry.subject
        kind = _BY_ACTION.get(action)
        if kind is ChangeKind.REGISTER:
            self.sums.add(rid, _register_fact(rid, after))
        elif kind is not None:
            self.sums.add(rid, (rid, kind.value, after.get("state")))
        elif action.startswith("change."):
            change = _KINDS.get(action[7:].upper())
            if change is not None:
                self.sums.add(rid, (rid, change.value, after.get("state")))
        elif action == "issue_number":
            number_kind = after.get("kind")
            shown = "" if number_kind == "G" else after.get("national_number")
            self.sums.add(rid, (rid, "NUMBER", number_kind, shown))
        elif action == "rollover.apply":
            run = self.runs.get(entry.at)
            if run is None:
                run = self.runs[entry.at] = Counter()
                self.operators[entry.at] = entry.operator
            run["promote"] += int(after.get("promote") or 0)
            run["graduate"] += int(after.get("graduate") or 0)
        elif action == "problem_correct":
            record = after.get("record")
            if isinstance(record, str) and record:
                self.sums.add(record, (record, "CORRECTED"))
            return
        digest = after.get("child_digest")
        if digest and kind in (ChangeKind.REGISTER, ChangeKind.APPROVE):
            self.child_digests += 1
            since = self.digest_since.get(action)
            if since is None or entry.at < since:
                self.digest_since[action] = entry.at
            self.sums.add(rid, (rid, "CHILD", digest))


def collect_audit(entries: Iterable[AuditEntry], facts: AuditFacts | None = None) -> AuditFacts:
    """Read ``entries`` to the end and gather their facts (see :class:`AuditFacts`)."""
    out = facts if facts is not None else AuditFacts()
    for entry in entries:
        out.feed(entry)
    return out


def tap(entries: Iterable[AuditEntry], facts: AuditFacts) -> Iterator[AuditEntry]:
    """``entries`` passed on as they are, their facts gathered on the way (so that the
    chain's verification and the replay read the log once)."""
    feed = facts.feed
    for entry in entries:
        feed(entry)
        yield entry


@attrs.frozen
class ReplayResult:
    """What :func:`replay` found: ``findings`` (at most ``limit`` of them, then one
    ``findings_truncated``) and how many records were replayed."""

    findings: list[AuditFinding]
    records: int


class _Findings:
    def __init__(self, limit: int) -> None:
        self.items: list[AuditFinding] = []
        self.limit = limit
        self.more = 0

    def add(self, finding: AuditFinding) -> None:
        if len(self.items) < self.limit:
            self.items.append(finding)
        else:
            self.more += 1

    def done(self) -> list[AuditFinding]:
        if self.more:
            self.items.append(
                AuditFinding(
                    "findings_truncated",
                    "findings",
                    f"另有 {self.more} 项未列出",
                    f"{self.more} more findings not listed",
                )
            )
        return self.items


_MESSAGES: dict[str, tuple[str, str]] = {
    "replay_events": ("学籍的变动记录无法重放", "the record's change log cannot be replayed"),
    "replay_mismatch": (
        "学籍与其变动记录重放的结果不符",
        "the record is not what its change log gives",
    ),
    "replay_event_state": (
        "变动记录的前后状态与重放不符",
        "an event's from/to state is not what replaying gives",
    ),
    "replay_numbers": (
        "学籍的临时学籍号或曾用学籍号与变动记录不符",
        "the record's temporary or former numbers are not what its log gives",
    ),
    "replay_number_document": (
        "G 字头学籍号与幼儿身份证件号不符",
        "the G number is not G + the child's document number",
    ),
    "replay_child_missing": ("学籍的幼儿信息不存在", "the record's child is missing"),
    "replay_child_changed": (
        "幼儿身份信息与审计日志记录的不符",
        "the child's identity is not the one the audit log recorded",
    ),
    "record_missing": (
        "审计日志或变动记录提到的学籍不存在",
        "a record that the audit log or change log names is missing",
    ),
    "event_unaudited": (
        "变动记录没有对应的审计记录",
        "a change-log event has no audit entry",
    ),
    "audit_without_event": (
        "审计记录没有对应的变动记录",
        "an audit entry has no change-log event (or another one)",
    ),
    "rollover_events": (
        "年末升班的变动记录与其审计记录的计数不符",
        "a rollover run's events do not add up to its audit entry",
    ),
}


def _finding(
    code: str, field: str, record_id: str | None = None, detail: str = "", **where: Any
) -> AuditFinding:
    zh, en = _MESSAGES[code]
    return AuditFinding(code, field, zh, en, record_id=record_id, detail=detail, **where)


class _Store:
    """The store side: per record, the replay's checks and the facts of its events."""

    def __init__(
        self,
        audit: AuditFacts,
        key: AuditKey | None,
        findings: _Findings | None,
        sums: _Sums,
    ) -> None:
        self.audit = audit
        self.key = key
        self.findings = findings
        self.sums = sums
        self.children = key is not None and audit.child_digests > 0
        self.runs: dict[datetime, Counter[str]] = {}
        self.seen: set[str] = set()  # record ids seen, in picked buckets (second pass)

    def add(self, finding: AuditFinding) -> None:
        if self.findings is not None:
            self.findings.add(finding)

    def record(
        self, rec: StatusRecord | None, events: Sequence[StatusChange], child: Child | None
    ) -> None:
        rid = rec.id if rec is not None else events[0].record_id
        sums = self.sums
        if sums.pick is not None and _bucket(rid) in sums.pick and rec is not None:
            self.seen.add(rid)
        runs = self.audit.runs
        state = None
        for e in events:
            kind = e.kind
            after = e.after
            new_state = after.get("state", state)
            if self.findings is not None and (
                (e.from_state.value if e.from_state is not None else None) != state
                or e.to_state.value != new_state
            ):
                self.add(_finding("replay_event_state", "to_state", rid, f"seq {e.seq}"))
            state = new_state
            if kind in _ROLLOVER and e.recorded_at in runs:
                if self.findings is not None:
                    run = self.runs.get(e.recorded_at)
                    if run is None:
                        run = self.runs[e.recorded_at] = Counter()
                    run[kind.value.lower()] += 1
                continue
            if kind is ChangeKind.REGISTER:
                sums.add(rid, _register_fact(rid, after))
            else:
                sums.add(rid, (rid, kind.value, after.get("state")))
        if rec is None:
            if self.findings is not None:
                self.add(_finding("record_missing", "records", rid, "events without a record"))
            return
        number = rec.national_number
        if number:
            kind_text = number[:1]
            sums.add(rid, (rid, "NUMBER", kind_text, "" if kind_text == "G" else number))
        if self.children and self.key is not None and child is not None:
            pinned = 0  # the events whose audit entries carry a child_digest
            for e in events:
                action = _DIGESTED.get(e.kind)
                since = self.audit.digest_since.get(action) if action is not None else None
                if since is not None and e.recorded_at >= since:
                    pinned += 1
            if pinned:
                doc = child.document
                number_text = doc.number if doc is not None else ""
                digest = identity_digest(self.key, number_text, child.name, child.birth_date)
                for _ in range(pinned):
                    sums.add(rid, (rid, "CHILD", digest))
        if self.findings is not None:
            self.check(rec, events, child)

    def check(self, rec: StatusRecord, events: Sequence[StatusChange], child: Child | None) -> None:
        rid = rec.id
        try:
            values = _fold(events)
        except ValidationError as exc:
            self.add(_finding("replay_events", "events", rid, exc.message_en))
            return
        wrong = [f for f in REPLAYED_FIELDS if _plain(getattr(rec, f)) != values.get(f, _NOTHING)]
        if values.get("id") != rid:
            wrong.insert(0, "id")
        if wrong:
            self.add(_finding("replay_mismatch", ",".join(wrong), rid))
        rebuilt_temp = values.get("temp_number")
        rebuilt_former = tuple(values.get("former_numbers") or ())
        temp = rebuilt_temp
        former = rebuilt_former
        if rec.national_number is not None:
            if temp and temp not in former:
                former = (*former, temp)
            temp = None
        if (rec.temp_number, rec.former_numbers) != (temp, former):
            field = "temp_number" if rec.temp_number != temp else "former_numbers"
            self.add(_finding("replay_numbers", field, rid))
        if child is None:
            self.add(_finding("replay_child_missing", "child_id", rid))
            return
        number = rec.national_number
        if number is not None and number.startswith("G"):
            doc = child.document
            try:
                expected = national.g_number(doc.number) if doc is not None else None
            except InvalidNumber:
                expected = None
            if expected != number:
                self.add(_finding("replay_number_document", "national_number", rid))


_NOTHING = object()


_plain = machine.json_value  # a record field as an event's ``after`` holds it


def _fold(events: Sequence[StatusChange]) -> dict[str, Any]:
    """The record fields after ``events``, as JSON-ready values: what
    :func:`studentstatus.domain.machine.replay` rebuilds (every field from REGISTER's
    ``after``, then each event's ``after`` over them), without building a record per event.

    The first event must be REGISTER with seq 1, the seqs must increase (a record's
    version, which the events' seqs follow, also moves on updates that log no event —
    a number issue, a verification — so they need not be consecutive) and every event
    must be the same record's; else :class:`~studentstatus.errors.ValidationError`
    (code ``event_sequence``).

    >>> from datetime import UTC, date, datetime
    >>> from studentstatus.domain.enums import State
    >>> t = datetime(2025, 9, 1, tzinfo=UTC)
    >>> e1 = StatusChange("r1", 1, ChangeKind.REGISTER, None, State.PENDING, date(2025, 9, 1),
    ...                   t, "k", after={"id": "r1", "state": "PENDING", "grade": "MIDDLE"})
    >>> e4 = StatusChange("r1", 4, ChangeKind.APPROVE, State.PENDING, State.ACTIVE,
    ...                   date(2025, 9, 1), t, "c", after={"state": "ACTIVE"})
    >>> folded = _fold([e1, e4])
    >>> folded["id"], folded["state"], folded["grade"], folded["repeated_grades"]
    ('r1', 'ACTIVE', 'MIDDLE', [])
    >>> _fold([e4])
    Traceback (most recent call last):
    ...
    studentstatus.errors.ValidationError: event_sequence [events]: ...
    """
    values: dict[str, Any] = dict(_DEFAULTS)
    last = 0
    record_id = ""
    for event in events:
        if not last:
            if event.kind is not ChangeKind.REGISTER or event.seq != 1:
                _unreplayable(f"the first event is {event.kind.value} seq {event.seq}")
            record_id = event.record_id
        elif event.seq <= last or event.record_id != record_id:
            _unreplayable(f"seq {event.seq} after seq {last}")
        last = event.seq
        values.update(event.after)
    if not last:
        _unreplayable("no events")
    return values


_DEFAULTS: dict[str, Any] = {
    a.name: _plain(a.default)
    for a in attrs.fields(StatusRecord)
    if a.default is not attrs.NOTHING and a.name != "version"
}
"""A new record's defaults (what REGISTER's ``after`` does not set keeps them)."""


def _unreplayable(detail: str) -> NoReturn:
    raise ValidationError(
        f"the event log cannot be replayed: {detail}",
        field="events",
        message_zh="学籍变动记录无法重放",
        code="event_sequence",
    )


def _pairs(
    records: Iterator[StatusRecord], changes: Iterator[StatusChange]
) -> Iterator[tuple[StatusRecord | None, list[StatusChange]]]:
    """Each record with its events, and events whose record is missing, matched as the two
    streams come (both in the store's id order: an item waits for its partner only while
    the other stream has not reached it)."""
    waiting_records: dict[str, StatusRecord] = {}
    waiting_events: dict[str, list[StatusChange]] = {}
    group: list[StatusChange] = []
    group_id: str | None = None
    rec_it: Iterator[StatusRecord] | None = records
    done_events = False

    def take_group() -> tuple[str, list[StatusChange]] | None:
        nonlocal group, group_id, done_events
        for e in changes:
            if e.record_id == group_id:
                group.append(e)
                continue
            out = (group_id, group) if group_id is not None else None
            group_id, group = e.record_id, [e]
            if out is not None:
                return out
        done_events = True
        if group_id is not None:
            out = (group_id, group)
            group_id, group = None, []
            return out
        return None

    while rec_it is not None or not done_events:
        if rec_it is not None:
            rec = next(rec_it, None)
            if rec is None:
                rec_it = None
            else:
                evs = waiting_events.pop(rec.id, None)
                if evs is not None:
                    yield rec, evs
                else:
                    waiting_records[rec.id] = rec
        if not done_events:
            got = take_group()
            if got is not None:
                rid, evs = got
                found = waiting_records.pop(rid, None)
                if found is not None:
                    yield found, evs
                else:
                    waiting_events[rid] = evs
    for rec in waiting_records.values():
        yield rec, waiting_events.pop(rec.id, [])
    for evs in waiting_events.values():
        yield None, evs


def _walk(uow: UnitOfWork, side: _Store, chunk: int) -> int:
    """Feed every record (with its events and child) to ``side``; returns the count."""
    n = 0
    batch: list[tuple[StatusRecord | None, list[StatusChange]]] = []

    def flush() -> None:
        ids = list({r.child_id for r, _ in batch if r is not None})
        kids = uow.children.get_many(ids) if ids else {}
        for rec, evs in batch:
            side.record(rec, evs, kids.get(rec.child_id) if rec is not None else None)
        batch.clear()

    for rec, evs in _pairs(uow.records.iter(batch_size=chunk), uow.changes.iter()):
        batch.append((rec, evs))
        if rec is not None:
            n += 1
        if len(batch) >= chunk:
            flush()
    if batch:
        flush()
    return n


def replay(
    uow: UnitOfWork,
    audit: AuditFacts,
    *,
    key: AuditKey | None = None,
    limit: int = 100,
    chunk: int = 1000,
    audit_again: Iterable[AuditEntry] | None = None,
) -> ReplayResult:
    """Replay every record of ``uow`` and compare the change log with ``audit`` (the facts
    of the whole audit log, :func:`collect_audit`); see the module docs.

    ``key`` is the host's audit key (children are compared with their ``child_digest``
    only with it).  ``audit_again`` reads the audit log a second time when the two sides
    differ (default: ``uow.audit.iter()``).  At most ``limit`` findings are listed.
    """
    findings = _Findings(limit)
    side = _Store(audit, key, findings, _Sums())
    count = _walk(uow, side, chunk)
    for at, expected in sorted(audit.runs.items()):
        seen = side.runs.get(at, Counter())
        if +seen != +expected:
            findings.add(
                _finding(
                    "rollover_events",
                    "change_log",
                    detail=(
                        f"run at {at.isoformat()} by {audit.operators.get(at, '')}: audit "
                        f"{dict(+expected)}, change log {dict(+seen)}"
                    ),
                )
            )
    bad = frozenset(b for b in range(BUCKETS) if audit.sums.sums[b] != side.sums.sums[b])
    if bad:
        _name_records(uow, bad, key, audit, findings, chunk, audit_again)
    return ReplayResult(findings.done(), count)


def _name_records(
    uow: UnitOfWork,
    bad: frozenset[int],
    key: AuditKey | None,
    audit: AuditFacts,
    findings: _Findings,
    chunk: int,
    audit_again: Iterable[AuditEntry] | None,
) -> None:
    """Read both sides again, fact by fact for the records of the ``bad`` buckets only, and
    name each record whose facts differ."""
    again = AuditFacts(sums=_Sums(bad))
    collect_audit(audit_again if audit_again is not None else uow.audit.iter(), again)
    picked = _Store(audit, key, None, _Sums(bad))
    picked.runs = {}
    _walk(uow, picked, chunk)
    told = {f.record_id for f in findings.items if f.code == "record_missing"}
    ours = picked.sums.detail
    theirs = again.sums.detail
    for rid in sorted(set(ours) | set(theirs)):
        mine = ours.get(rid, Counter())
        logged = theirs.get(rid, Counter())
        facts = set(mine) | set(logged)
        diff = {f: mine.get(f, 0) - logged.get(f, 0) for f in facts}
        diff = {f: d for f, d in diff.items() if d}
        if not diff:
            continue
        child_logged = any(f[1] == "CHILD" and n for f, n in logged.items())
        corrected = logged.get((rid, "CORRECTED"), 0) > 0
        if rid not in picked.seen:
            if rid not in told:
                findings.add(_finding("record_missing", "records", rid, "named by the audit log"))
            continue
        for fact, d in sorted(diff.items(), key=lambda x: repr(x[0])):
            what = fact[1]
            if what == "CORRECTED":
                continue
            if what == "CHILD":
                # a correction (problem_correct) may change the child: not compared after one
                if child_logged and d > 0 and not corrected:
                    findings.add(_finding("replay_child_changed", "child", rid))
                continue
            if d > 0:
                findings.add(_finding("event_unaudited", "audit_log", rid, _shown(fact)))
            else:
                findings.add(_finding("audit_without_event", "change_log", rid, _shown(fact)))


def _shown(fact: Fact) -> str:
    """A fact for a finding's detail: kind and state, never a number."""
    if fact[1] == "NUMBER":
        return f"national number, kind {fact[2]}"
    if fact[1] == "REGISTER":
        return f"REGISTER, state {fact[2]}, kindergarten {fact[3]}, grade {fact[4]}"
    return f"{fact[1]}, state {fact[2]}"
