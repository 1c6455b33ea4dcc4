"""National student-status numbers (全国学籍号): issue G/J numbers, and look records up.

:func:`issue_numbers` gives every ``ACTIVE`` record in the operator's scope
that has no national number and **no unresolved problem**:

* ``G`` + the resident ID (or HK/Macau/Taiwan residence permit) when
  public-security verification matched (``record.verification == MATCH``) or
  the county confirmed the identity on evidence (``CONFIRMED``, see
  :mod:`studentstatus.services.problems`);
* ``J`` + school region + birth date + a three-digit sequence (allocated
  atomically per region and birth date by the number registry) + a MOD 11-2
  check character, for a child without a resident ID whom the county
  confirmed at approval (``record.county_confirmed``) or by its own
  correction (``CONFIRMED``).

Everything else is counted in ``skipped`` by reason: ``open_problem``,
``not_verified`` (resident ID neither MATCH nor CONFIRMED), ``not_confirmed``,
``number_taken`` (the G number was already issued to another record: numbers
are never reused, even after a cancellation), ``sequence_exhausted`` (more
than 999 J numbers for one region and birth date).  Each reason carries its
next step and who takes it (:data:`studentstatus.domain.problems.NEXT_STEPS`,
in ``NumberReport.to_dict()["next_steps"]``).  Records that already
have a number are not touched, so a second run issues nothing and changes
nothing.  The temporary ``L`` number moves to ``former_numbers`` and stays
bound to the record in the number registry, so it still resolves.

Only the ministry or a province issues numbers (``issue_numbers`` in
:data:`~studentstatus.domain.jurisdiction.ROLE_RULES`).  Records are selected
in one read pass (ids spooled to a temporary file), then numbered chunk by
chunk, one unit of work per chunk; each chunk reads its records, children
and unresolved problems in bulk (``problems.for_records`` when the store
offers it) and writes numbers, records and audit entries in bulk.  Every
number issued is logged in the audit trail (a G number masked, since it
contains the ID).

**Memory.**  ``NumberReport.issued`` lists every number issued (the JSON of
``issue-numbers``); for a province of a million children pass
``collect=False``: the report then keeps only the counts by kind
(``counts``), and each issued item goes to ``on_issued`` once its chunk is
committed (the CLI spools them to a temporary file).

:func:`show` finds a record by national number, temporary or former number,
or record id, and returns it with its history (a :class:`RecordView`;
``to_dict()`` is its JSON form); the document number and every
G, J and L number are masked (:func:`~studentstatus.errors.mask_number`, the
rule of ``docs/concepts/privacy.md``) unless ``reveal=True``, which is written
to the audit trail (action ``reveal``, subject the record id) in the same unit
of work.

>>> from studentstatus.domain.jurisdiction import Operator
>>> from studentstatus.services.approval import approve_records
>>> from studentstatus.services.intake import import_children
>>> from studentstatus.testing.examples import child_row, example_runtime
>>> rt = example_runtime()  # a memory store, kindergarten 1111000001 licensed, 2 Sep 2024
>>> out = import_children(rt, Operator.parse("kindergarten:1111000001"), [child_row()]).records[0]
>>> _ = approve_records(rt, Operator.parse("county:110105"), all_pending=True)
>>> first = issue_numbers(rt, Operator.parse("province:11"))
>>> [(i.kind.value, i.national_number) for i in first.issued]
[('J', 'J110105202003150011')]
>>> issue_numbers(rt, Operator.parse("province:11")).issued
[]
>>> shown = get_record(rt, Operator.parse("county:110105"), out.temp_number)
>>> shown.national_number, shown.former_numbers[0][:5], shown.state
('J*****************1', 'L****', <State.ACTIVE: 'ACTIVE'>)
>>> full = get_record(rt, Operator.parse("county:110105"), out.temp_number, reveal=True)
>>> full.national_number, full.former_numbers == (out.temp_number,)
('J110105202003150011', True)
>>> "J110105202003150011" in repr(full)
False
>>> with rt.store.unit_of_work() as uow:
...     [(e.operator, e.subject == full.record_id) for e in uow.audit.iter()
...      if e.action == "reveal"]
[('county:110105', True)]
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from datetime import date, datetime
from typing import Any

import attrs

from studentstatus import serialization
from studentstatus.batching import spooled
from studentstatus.domain import numbers as national
from studentstatus.domain.child import RESIDENT_LIKE
from studentstatus.domain.enums import (
    ChangeKind,
    Grade,
    NumberKind,
    ProblemKind,
    ProblemStatus,
    Sex,
    State,
    VerificationResult,
)
from studentstatus.domain.jurisdiction import Operator
from studentstatus.domain.model import (
    Child,
    DocumentKind,
    IssuedNumber,
    StatusRecord,
    _mask_g,
    _mask_g_all,
)
from studentstatus.domain.problems import next_step
from studentstatus.errors import ConflictError, InvalidNumber, NotFoundError, mask_number, redact
from studentstatus.ports import UnitOfWork
from studentstatus.services._renamed import renamed
from studentstatus.services.audit import AuditEvent, audit, audit_many
from studentstatus.services.authority import record_in_scope, require_role
from studentstatus.services.runtime import Runtime
from studentstatus.services.verification import open_problems_of

__all__ = [
    "ChildView",
    "HistoryEntry",
    "IssuedItem",
    "NumberReport",
    "NumberView",
    "ProblemView",
    "RecordView",
    "find_record",
    "get_record",
    "issue_numbers",
]


@attrs.frozen
class IssuedItem:
    """A number :func:`issue_numbers` issued: the record, the number and its kind (G or J).

    One of :attr:`NumberReport.issued`, and what ``on_issued`` is called with.  The
    number is given in full (the province issued it); the repr masks it (a G number
    holds the child's ID).  :meth:`to_dict` is the JSON form.

    >>> item = IssuedItem("r1", "J110105202003150011", NumberKind.J)
    >>> item.kind, "202003150011" in repr(item)
    (<NumberKind.J: 'J'>, False)
    >>> item.to_dict()
    {'record_id': 'r1', 'national_number': 'J110105202003150011', 'kind': 'J'}
    """

    record_id: str
    national_number: str = attrs.field(repr=_mask_g)
    kind: NumberKind

    def to_dict(self) -> dict[str, str]:
        """The JSON form: ``record_id``, ``national_number``, ``kind`` (``"G"``/``"J"``)."""
        return serialization.to_dict(self)


@attrs.define
class NumberReport:
    """Numbers issued (:class:`IssuedItem`: record, number, kind) and skipped counts by reason.

    ``counts`` holds the numbers issued by kind (``G``/``J``) whether or not
    ``issued`` lists them (see ``issue_numbers(collect=False)``).

    ``to_dict()["next_steps"]`` gives, for every skip reason, what it means, the
    next step and who takes it (Chinese and English).

    >>> NumberReport().to_dict()
    {'issued': [], 'skipped': {}, 'next_steps': {}}
    >>> NumberReport(skipped={"not_verified": 2}).to_dict()["next_steps"]["not_verified"]["who"]
    'province'
    """

    issued: list[IssuedItem] = attrs.field(factory=list)
    skipped: dict[str, int] = attrs.field(factory=dict)
    counts: dict[str, int] = attrs.field(factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The JSON document of ``studentstatus issue-numbers --json``."""
        skipped = dict(sorted(self.skipped.items()))
        return {
            "issued": [i.to_dict() for i in self.issued],
            "skipped": skipped,
            "next_steps": {k: next_step(k).to_dict() for k in skipped},
        }

    def skip_lines(self) -> list[str]:
        """One line per skip reason: count, meaning, next step and who (Chinese and English).

        >>> NumberReport(skipped={"open_problem": 1}).skip_lines()[0].split(" — ")[0]
        'open_problem 1: 问题学籍待处理 / open problem'
        """
        lines = []
        for reason, n in sorted(self.skipped.items()):
            s = next_step(reason)
            lines.append(
                f"{reason} {n}: {s.label_zh} / {s.label_en} — next ({s.who}): "
                f"{s.step_zh} / {s.step_en}"
            )
        return lines


def _needs_j(rec: StatusRecord, child: Child) -> bool:
    """Whether the record takes the J path (no resident ID) and the county confirmed it."""
    doc = child.document
    has_id = doc is not None and doc.type.value in RESIDENT_LIKE and bool(doc.number)
    return not has_id and _confirmed(rec)


def _confirmed(rec: StatusRecord) -> bool:
    """The county confirmed a child without a resident ID: at approval or by its correction."""
    return rec.county_confirmed or rec.verification is VerificationResult.CONFIRMED


def _number_for(
    uow: UnitOfWork, rec: StatusRecord, child: Child, seqs: Iterator[int], *, safe: bool
) -> tuple[str | None, str]:
    """(number, "") or (None, skip reason); a J number takes the next of ``seqs`` (allocated
    in bulk beforehand for exactly the records :func:`_needs_j` selects, in order)."""
    doc = child.document
    if doc is not None and doc.type.value in RESIDENT_LIKE and doc.number:
        if rec.verification is None or not rec.verification.is_verified:
            return None, "not_verified"
        try:
            number = national.g_number(doc.number)
        except InvalidNumber:
            return None, "invalid_id"
        if safe and uow.numbers.resolve(number) is not None:
            return None, "number_taken"
        return number, ""
    if not _confirmed(rec):
        return None, "not_confirmed"
    seq = next(seqs)
    if seq > 999:
        return None, "sequence_exhausted"
    number = national.j_number(rec.region_code, child.birth_date, seq)
    if safe and uow.numbers.resolve(number) is not None:
        return None, "number_taken"
    return number, ""


def _sequences(uow: UnitOfWork, keys: list[tuple[str, date]]) -> list[int]:
    """J sequences for ``keys`` in order, in one bulk call (``numbers.next_sequences``)."""
    if not keys:
        return []
    return uow.numbers.next_sequences(keys)


def _issue_chunk(
    rt: Runtime,
    operator: Operator,
    uow: UnitOfWork,
    ids: Sequence[str],
    *,
    safe: bool,
) -> tuple[list[IssuedItem], Counter[str]]:
    now = rt.clock.now()
    records = uow.records.get_many(list(ids))
    candidates = [
        r.id for r in records.values() if r.state is State.ACTIVE and not r.national_number
    ]
    blocked = open_problems_of(uow, candidates) if candidates else {}
    children = uow.children.get_many([r.child_id for r in records.values()])
    skipped: Counter[str] = Counter()
    issued: list[IssuedItem] = []
    claims: list[IssuedNumber] = []
    updated: list[StatusRecord] = []
    audits: list[AuditEvent] = []
    eligible: list[tuple[StatusRecord, Child]] = []
    for rid in ids:
        rec = records.get(rid)
        if rec is None or rec.state is not State.ACTIVE:
            skipped["not_active"] += 1
            continue
        if rec.national_number:
            skipped["already_issued"] += 1
            continue
        if not operator.covers_record(rec):
            skipped["out_of_scope"] += 1
            continue
        if rid in blocked:
            skipped["open_problem"] += 1
            continue
        child = children.get(rec.child_id)
        if child is None:
            skipped["no_child"] += 1
            continue
        eligible.append((rec, child))
    keys = [(rec.region_code, child.birth_date) for rec, child in eligible if _needs_j(rec, child)]
    seqs = iter(_sequences(uow, keys))
    drawn: set[str] = set()
    for rec, child in eligible:
        rid = rec.id
        number, reason = _number_for(uow, rec, child, seqs, safe=safe)
        if number is not None and number in drawn:
            # Two live records of one ID and no problem between them (which the problem
            # rules do not leave): the first takes the number, never a crash.
            number, reason = None, "number_taken"
        if number is None:
            skipped[reason] += 1
            continue
        drawn.add(number)
        kind = NumberKind(number[0])
        former = rec.former_numbers
        if rec.temp_number and rec.temp_number not in former:
            former = (*former, rec.temp_number)
        updated.append(
            attrs.evolve(rec, national_number=number, temp_number=None, former_numbers=former)
        )
        claims.append(IssuedNumber(number, kind, rid, now))
        shown = mask_number(number) if kind is NumberKind.G else number
        issued.append(IssuedItem(rid, number, kind))
        audits.append(
            AuditEvent(
                str(operator),
                "issue_number",
                rid,
                before={"temp_number": rec.temp_number},
                after={
                    "kind": kind.value,
                    "national_number": shown,
                    # what proved the identity: the registry (MATCH), the county on
                    # evidence (CONFIRMED), or the county at approval (J)
                    "basis": rec.verification.value
                    if kind is NumberKind.G and rec.verification is not None
                    else "county_confirmed",
                },
            )
        )
    if claims:
        uow.numbers.claim_many(claims)
        uow.records.update_many(updated)
        audit_many(uow, audits, at=now)
    return issued, skipped


def issue_numbers(
    rt: Runtime,
    operator: Operator,
    *,
    chunk_size: int = 2000,
    progress: Callable[[int], None] | None = None,
    collect: bool = True,
    on_issued: Callable[[IssuedItem], None] | None = None,
) -> NumberReport:
    """Issue G/J numbers to every eligible record in scope; see the module docs.

    Raises :class:`~studentstatus.errors.PermissionDenied` unless the operator
    may ``issue_numbers``.  Each :class:`IssuedItem` goes to ``on_issued`` once its
    chunk is committed; with ``collect=False`` the report keeps only ``counts``.

    >>> issue_numbers.__name__
    'issue_numbers'
    """
    require_role(operator, "issue_numbers")
    report = NumberReport()
    skipped: Counter[str] = Counter()
    counts: Counter[str] = Counter()
    with spooled(_active_ids(rt, operator), chunk_size) as chunks:
        done = 0
        for ids in chunks:
            try:
                with rt.store.unit_of_work() as uow:
                    issued, skips = _issue_chunk(rt, operator, uow, ids, safe=False)
                    uow.commit()
            except ConflictError:
                # A number was taken before (e.g. the G number of a cancelled record):
                # redo this chunk checking each number first.
                with rt.store.unit_of_work() as uow:
                    issued, skips = _issue_chunk(rt, operator, uow, ids, safe=True)
                    uow.commit()
            counts.update(item.kind.value for item in issued)
            if collect:
                report.issued.extend(issued)
            if on_issued is not None:
                for item in issued:
                    on_issued(item)
            skipped.update(skips)
            done += len(ids)
            if progress is not None:
                progress(done)
    report.skipped = dict(skipped)
    report.counts = dict(sorted(counts.items()))
    return report


def _active_ids(rt: Runtime, operator: Operator) -> Iterator[str]:
    with rt.store.unit_of_work() as uow:
        for rec in uow.records.iter(states=[State.ACTIVE], **operator.list_filter()):
            yield rec.id


def find_record(uow: UnitOfWork, key: str) -> StatusRecord:
    """The record holding ``key`` as national, temporary or former number, or with that id.

    Raises :class:`~studentstatus.errors.NotFoundError`.
    """
    text = key.strip()
    found = uow.records.find_by_number(text.upper())
    if found is not None:
        return found
    holder = uow.numbers.resolve(text.upper())
    if holder is not None:
        return uow.records.get(holder.record_id)
    try:
        return uow.records.get(text)
    except NotFoundError:
        pass
    msg = f"no record with number or id {redact(text)}"
    raise NotFoundError(msg)


def _masked_number(number: str | None, reveal: bool) -> str | None:
    if number is None or reveal:
        return number
    return mask_number(number)


@attrs.frozen
class ChildView:
    """The child of a :class:`RecordView`: name, sex, birth date, document type and number.

    ``document_type`` is ``None`` for a child without a document (``"none"`` in
    :meth:`to_dict`); ``document_number`` is masked unless the record was revealed,
    and masked in the repr always.

    >>> from studentstatus.domain.model import DocumentKind
    >>> child = ChildView("王小明", Sex.M, date(2020, 3, 15), DocumentKind.RESIDENT,
    ...                   "110105202003150038")
    >>> "202003150038" in repr(child), child.to_dict()["document_type"]
    (False, 'resident')
    """

    name: str
    sex: Sex
    birth_date: date
    document_type: DocumentKind | None
    document_number: str | None = attrs.field(repr=_mask_g)

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready child."""
        return {
            "name": self.name,
            "sex": self.sex.value,
            "birth_date": self.birth_date.isoformat(),
            "document_type": self.document_type.value if self.document_type else "none",
            "document_number": self.document_number,
        }


@attrs.frozen
class NumberView:
    """A number the record was given: the number (masked unless revealed), kind, when.

    >>> from datetime import datetime, timezone
    >>> n = NumberView("L**************0042", NumberKind.L,
    ...                datetime(2024, 9, 2, tzinfo=timezone.utc))
    >>> n.to_dict()
    {'number': 'L**************0042', 'kind': 'L', 'issued_at': '2024-09-02T00:00:00+00:00'}
    """

    number: str = attrs.field(repr=_mask_g)
    kind: NumberKind
    issued_at: datetime

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready number."""
        return {
            "number": self.number,
            "kind": self.kind.value,
            "issued_at": self.issued_at.isoformat(),
        }


@attrs.frozen
class ProblemView:
    """A problem of the record: id, kind, status, due date and resolution.

    >>> p = ProblemView("p1", ProblemKind.NOT_FOUND, ProblemStatus.OPEN, date(2024, 10, 31))
    >>> p.kind.label_zh, p.to_dict()["due_date"], p.to_dict()["resolution"]
    ('公安部校验不通过：身份证号不存在', '2024-10-31', None)
    """

    id: str
    kind: ProblemKind
    status: ProblemStatus
    due_date: date
    resolution: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready problem."""
        return {
            "id": self.id,
            "kind": self.kind.value,
            "status": self.status.value,
            "due_date": self.due_date.isoformat(),
            "resolution": self.resolution,
        }


@attrs.frozen
class HistoryEntry:
    """One event of the record's history (``from``/``to`` in :meth:`to_dict`).

    >>> from datetime import datetime, timezone
    >>> e = HistoryEntry(1, ChangeKind.REGISTER, None, State.PENDING, date(2024, 9, 1),
    ...                  datetime(2024, 9, 2, tzinfo=timezone.utc), "kindergarten:1111000001")
    >>> e.to_state, e.to_dict()["from"], e.to_dict()["to"]
    (<State.PENDING: 'PENDING'>, None, 'PENDING')
    """

    seq: int
    kind: ChangeKind
    from_state: State | None
    to_state: State
    effective_date: date
    recorded_at: datetime
    operator: str
    reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready event."""
        return {
            "seq": self.seq,
            "kind": self.kind.value,
            "from": self.from_state.value if self.from_state else None,
            "to": self.to_state.value,
            "effective_date": self.effective_date.isoformat(),
            "recorded_at": self.recorded_at.isoformat(),
            "operator": self.operator,
            "reason": self.reason,
        }


@attrs.frozen
class RecordView:
    """What :func:`show` gives: the record with its child, numbers, problems and history.

    The G, J and L numbers (``national_number``, ``temp_number``,
    ``former_numbers``, ``numbers``) and the child's document number are masked
    unless :func:`show` was asked to reveal them; the repr masks them always.
    :meth:`to_dict` is the JSON document of ``studentstatus show --json``.

    >>> rec = RecordView("r1", "c1", State.ACTIVE, Grade.MIDDLE, "1111000001", "110105",
    ...                  date(2024, 9, 1), "G110105202003150038", None,
    ...                  ("L110105202003150042",), VerificationResult.MATCH, False, 3,
    ...                  ChildView("王小明", Sex.M, date(2020, 3, 15), None, None))
    >>> rec.state, "202003150038" in repr(rec), "202003150042" in repr(rec)
    (<State.ACTIVE: 'ACTIVE'>, False, False)
    >>> rec.to_dict()["child"]["document_type"], rec.to_dict()["former_numbers"]
    ('none', ['L110105202003150042'])
    """

    record_id: str
    child_id: str
    state: State
    grade: Grade | None
    kindergarten_code: str
    region_code: str
    entry_date: date
    national_number: str | None = attrs.field(repr=_mask_g)
    temp_number: str | None = attrs.field(repr=_mask_g)
    former_numbers: tuple[str, ...] = attrs.field(repr=_mask_g_all)
    verification: VerificationResult | None
    county_confirmed: bool
    version: int
    child: ChildView
    numbers: tuple[NumberView, ...] = ()
    problems: tuple[ProblemView, ...] = ()
    history: tuple[HistoryEntry, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready record."""
        return {
            "record_id": self.record_id,
            "child_id": self.child_id,
            "state": self.state.value,
            "grade": self.grade.value if self.grade else None,
            "kindergarten_code": self.kindergarten_code,
            "region_code": self.region_code,
            "entry_date": self.entry_date.isoformat(),
            "national_number": self.national_number,
            "temp_number": self.temp_number,
            "former_numbers": list(self.former_numbers),
            "verification": self.verification.value if self.verification else None,
            "county_confirmed": self.county_confirmed,
            "version": self.version,
            "child": self.child.to_dict(),
            "numbers": [n.to_dict() for n in self.numbers],
            "problems": [p.to_dict() for p in self.problems],
            "history": [e.to_dict() for e in self.history],
        }


def get_record(rt: Runtime, operator: Operator, key: str, *, reveal: bool = False) -> RecordView:
    """The record found by number or id, with child, numbers, problems and change history.

    A record outside the operator's scope is answered like one that does not exist
    (:class:`~studentstatus.errors.NotFoundError`, the same text); the document
    number and every G, J and L number are masked unless ``reveal``.  A reveal
    is audited in the same unit of work: action ``reveal``, subject the record
    id (never a number), the revealed fields in ``after``.
    """
    require_role(operator, "view")
    with rt.store.unit_of_work() as uow:
        try:
            found: StatusRecord | None = find_record(uow, key)
        except NotFoundError:
            found = None
        rec = record_in_scope(operator, "show", found, key)
        child = uow.children.get(rec.child_id)
        history = uow.changes.for_record(rec.id)
        issued = uow.numbers.for_record(rec.id)
        problems = uow.problems.for_record(rec.id)
        if reveal:
            fields = ["document_number", "national_number", "temp_number", "former_numbers"]
            event = AuditEvent(str(operator), "reveal", rec.id, after={"fields": fields})
            audit(uow, event, at=rt.clock.now())
            uow.commit()
    doc = child.document
    doc_number = None
    if doc is not None and doc.number:
        doc_number = doc.number if reveal else mask_number(doc.number)
    return RecordView(
        rec.id,
        rec.child_id,
        rec.state,
        rec.grade,
        rec.kindergarten_code,
        rec.region_code,
        rec.entry_date,
        _masked_number(rec.national_number, reveal),
        _masked_number(rec.temp_number, reveal),
        tuple(mask_number(n) if not reveal else n for n in rec.former_numbers),
        rec.verification,
        rec.county_confirmed,
        rec.version,
        ChildView(
            child.name,
            child.sex,
            child.birth_date,
            doc.type if doc is not None else None,
            doc_number,
        ),
        tuple(
            NumberView(n.number if reveal else mask_number(n.number), n.kind, n.issued_at)
            for n in issued
        ),
        tuple(ProblemView(p.id, p.kind, p.status, p.due_date, p.resolution) for p in problems),
        tuple(
            HistoryEntry(
                e.seq,
                e.kind,
                e.from_state,
                e.to_state,
                e.effective_date,
                e.recorded_at,
                e.operator,
                e.reason,
            )
            for e in history
        ),
    )


# Former names (deprecated; not in __all__).
show = renamed(get_record, "show")
