"""In-memory store: the reference implementation of :mod:`studentstatus.ports` and the test fake.

A unit of work reads and writes a copy-on-write snapshot of the published
state and records every write as an *operation*.  :meth:`MemoryUnitOfWork.commit`
takes the store's lock and, if another unit committed in between, replays the
operations against the newer state, so that optimistic versions, uniqueness
rules and J-number sequences are checked again at commit time: a unit that lost
a race raises :class:`~studentstatus.errors.ConflictError` and publishes
nothing.  The same operations are what :mod:`studentstatus.adapters.files`
writes to its journal.

>>> from datetime import date
>>> from studentstatus.domain.enums import Grade, State
>>> from studentstatus.domain.model import StatusRecord
>>> store = MemoryStore()
>>> rec = StatusRecord("r1", "c1", "1111000001", "110105", State.PENDING, Grade.JUNIOR,
...                    entry_date=date(2023, 9, 1))
>>> with store.unit_of_work() as uow:
...     uow.records.add(rec)
...     uow.commit()
>>> with store.unit_of_work() as uow:
...     stored = uow.records.get("r1")
...     uow.records.update(stored).version
1
>>> with store.unit_of_work() as uow:   # the update above was never committed
...     uow.records.get("r1").version
0
"""

from __future__ import annotations

import operator
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import date
from types import TracebackType
from typing import Any, Protocol, Self, TypeVar, cast

import attrs

from studentstatus.domain.approvals import pending_key
from studentstatus.domain.audit import AuditKey
from studentstatus.domain.enums import (
    ChangeKind,
    ProblemKind,
    ProblemStatus,
    RequestStatus,
    Role,
    State,
)
from studentstatus.domain.model import (
    AttendanceEntry,
    AuditEntry,
    ChangeRequest,
    Child,
    IssuedNumber,
    Kindergarten,
    ProblemRecord,
    RosterEntry,
    StatusChange,
    StatusRecord,
)
from studentstatus.domain.monitoring import CaseStatus, DropoutCase
from studentstatus.domain.search import RecordQuery
from studentstatus.errors import ConflictError, NotFoundError, TryAgain, mask
from studentstatus.ports import (
    AttendanceRepository,
    AuditLog,
    CaseRepository,
    ChangeLog,
    ChildRepository,
    IdentityClaims,
    KindergartenRepository,
    NumberRegistry,
    ProblemRepository,
    RecordRepository,
    RequestRepository,
    RosterRepository,
)

__all__ = ["MemoryStore", "MemoryUnitOfWork", "Op"]

E = TypeVar("E")
K = TypeVar("K")

#: Table names of the state; ``numidx`` (number → record id) is derived from ``records``,
#: ``auditheads`` (chain → (seq, hash) of its last entry) from ``audit``.
TABLES = (
    "kindergartens",
    "children",
    "records",
    "changes",
    "requests",
    "problems",
    "numbers",
    "sequences",
    "roster",
    "attendance",
    "audit",
    "auditheads",
    "numidx",
    "cases",
    "claims",
)


@attrs.frozen
class Op:
    """One write of a unit of work, replayable against any state.

    ``name`` is one of ``kindergartens.add``, ``kindergartens.update``,
    ``children.add``, ``children.update``, ``records.add``, ``records.update``,
    ``changes.append``, ``requests.add``, ``requests.update``, ``problems.add``,
    ``problems.update``, ``numbers.claim``, ``sequences.set``, ``roster.add``,
    ``attendance.add``, ``audit.append``, ``cases.add``, ``cases.update``; ``items``
    are the entities as passed
    (for ``sequences.set``: one ``(region_code, birth_date, value)`` triple).

    >>> Op("sequences.set", (("110105", date(2020, 1, 1), 1),)).name
    'sequences.set'
    """

    name: str
    items: tuple[Any, ...]


class State_:  # noqa: N801 - "State" is the record-state enum
    """Immutable published state: one dict per table (never mutated once published).

    >>> State_().tables["records"]
    {}
    """

    __slots__ = ("tables",)

    def __init__(self, tables: dict[str, dict[Any, Any]] | None = None) -> None:
        self.tables: dict[str, dict[Any, Any]] = tables or {name: {} for name in TABLES}


class Working:
    """A copy-on-write view over a :class:`State_` that operations are applied to.

    >>> w = Working(State_())
    >>> w.write("records")["x"] = 1
    >>> w.freeze().tables["records"], State_().tables["records"]
    ({'x': 1}, {})
    """

    __slots__ = ("_copied", "_tables")

    def __init__(self, base: State_) -> None:
        self._tables = dict(base.tables)
        self._copied: set[str] = set()

    def read(self, name: str) -> dict[Any, Any]:
        """The current table (do not mutate it)."""
        return self._tables[name]

    def write(self, name: str) -> dict[Any, Any]:
        """The table, copied on first write in this view."""
        if name not in self._copied:
            self._tables[name] = dict(self._tables[name])
            self._copied.add(name)
        return self._tables[name]

    def freeze(self) -> State_:
        """Publishable state; this view must not be written afterwards."""
        return State_(dict(self._tables))


# --------------------------------------------------------------------------- operations


def _conflict(en: str, zh: str) -> ConflictError:
    return ConflictError(f"{en} / {zh}")


def _not_found(what: str, key: object) -> NotFoundError:
    return NotFoundError(f"{what} not found: {key} / 未找到")


def _insert(
    w: Working, table: str, key: Callable[[Any], Any], items: Sequence[Any], what: str
) -> None:
    current = w.read(table)
    seen: set[Any] = set()
    for item in items:
        k = key(item)
        if k in current or k in seen:
            shown = mask(k) if table == "numbers" else k  # never a whole number in a message
            raise _conflict(f"{what} {shown} exists", f"{what} 已存在")
        seen.add(k)
    target = w.write(table)
    for item in items:
        target[key(item)] = item


def _update(
    w: Working, table: str, key: Callable[[Any], Any], items: Sequence[Any], what: str
) -> list[Any]:
    current = w.read(table)
    staged: dict[Any, Any] = {}
    out: list[Any] = []
    for item in items:
        k = key(item)
        stored = staged.get(k, current.get(k))
        if stored is None:
            raise _not_found(what, k)
        if stored.version != item.version:
            raise _conflict(
                f"{what} {k} is stale (version {item.version}, stored {stored.version})",
                f"{what} 已被他人修改",
            )
        new = attrs.evolve(item, version=item.version + 1)
        staged[k] = new
        out.append(new)
    target = w.write(table)
    target.update(staged)
    return out


def _record_numbers(record: StatusRecord) -> set[str]:
    numbers = {n for n in (record.temp_number, record.national_number) if n}
    numbers.update(record.former_numbers)
    return numbers


def _check_record_numbers(w: Working, records: Sequence[StatusRecord]) -> dict[str, str]:
    """Numbers must belong to one record only; return the index entries to add."""
    index = w.read("numidx")
    staged: dict[str, str] = {}
    for rec in records:
        for number in _record_numbers(rec):
            holder = staged.get(number, index.get(number))
            if holder is not None and holder != rec.id:
                raise _conflict(
                    f"number {mask(number)} belongs to another record", "学籍号已属于其他学籍"
                )
            staged[number] = rec.id
    return staged


def _check_open_requests(w: Working, requests: Sequence[ChangeRequest]) -> None:
    current = w.read("requests")
    open_by_record = {r.record_id: r.id for r in current.values() if r.status is RequestStatus.OPEN}
    for req in requests:
        holder = open_by_record.get(req.record_id)
        if req.status is not RequestStatus.OPEN:
            if holder == req.id:
                del open_by_record[req.record_id]
            continue
        if holder is not None and holder != req.id:
            raise _conflict(
                f"record {req.record_id} already has an open request", "该学籍已有未完成的申请"
            )
        open_by_record[req.record_id] = req.id


def apply_op(w: Working, op: Op) -> list[Any]:
    """Validate ``op`` against ``w`` and apply it; all or nothing.

    Returns what the repository method returns (stored entities for updates).

    >>> w = Working(State_())
    >>> apply_op(w, Op("sequences.set", (("110105", date(2020, 1, 1), 1),)))
    [1]
    >>> apply_op(w, Op("sequences.set", (("110105", date(2020, 1, 1), 1),)))
    Traceback (most recent call last):
    ...
    studentstatus.errors.ConflictError: sequence for 110105/2020-01-01 moved on ...
    """
    name, items = op.name, list(op.items)
    if name == "kindergartens.add":
        _insert(w, "kindergartens", lambda k: k.school_code, items, "kindergarten")
    elif name == "kindergartens.update":
        return _update(w, "kindergartens", lambda k: k.school_code, items, "kindergarten")
    elif name == "children.add":
        _insert(w, "children", lambda c: c.id, items, "child")
    elif name == "children.update":
        return _update(w, "children", lambda c: c.id, items, "child")
    elif name == "records.add":
        staged = _check_record_numbers(w, items)
        _insert(w, "records", lambda r: r.id, items, "record")
        w.write("numidx").update(staged)
    elif name == "records.update":
        # Missing or stale records first, then their numbers (as the SQL adapter does):
        # a missing record is NotFoundError even when its new number is taken.
        out = _update(w, "records", lambda r: r.id, items, "record")
        staged = _check_record_numbers(w, items)
        w.write("numidx").update(staged)
        return out
    elif name == "changes.append":
        _insert(w, "changes", lambda c: (c.record_id, c.seq), items, "change")
    elif name == "requests.add":
        _check_open_requests(w, items)
        _insert(w, "requests", lambda r: r.id, items, "request")
    elif name == "requests.update":
        _check_open_requests(w, items)
        return _update(w, "requests", lambda r: r.id, items, "request")
    elif name == "problems.add":
        _insert(w, "problems", lambda p: p.id, items, "problem")
    elif name == "problems.update":
        return _update(w, "problems", lambda p: p.id, items, "problem")
    elif name == "numbers.claim":
        _insert(w, "numbers", lambda n: n.number, items, "number")
    elif name == "sequences.set":
        seqs = w.read("sequences")
        for region, birth, value in items:
            if seqs.get((region, birth), 0) != value - 1:
                msg = f"sequence for {region}/{birth.isoformat()} moved on"
                raise _conflict(msg, "顺序号已被分配")
        target = w.write("sequences")
        for region, birth, value in items:
            target[(region, birth)] = value
        return [value for _r, _b, value in items]
    elif name == "roster.add":
        _insert(w, "roster", lambda r: r.id, items, "roster entry")
    elif name == "attendance.add":
        att = w.write("attendance")
        for e in items:
            k = (e.record_id, e.day)
            att[k] = (*att.get(k, ()), e)
    elif name == "audit.append":
        _insert(w, "audit", lambda a: (a.chain, a.seq), items, "audit entry")
        heads = w.write("auditheads")
        for a in items:
            head = heads.get(a.chain)
            if head is None or head[0] < a.seq:
                heads[a.chain] = (a.seq, a.hash)
    elif name == "claims.add":  # (claim key, claims before, claims added) triples
        claims = w.read("claims")
        for key, before, _added in items:
            if claims.get(key, 0) != before:  # another unit claimed it since: decisions stale
                raise TryAgain("commit", collided="identity claims")
        target = w.write("claims")
        for key, before, added in items:
            target[key] = before + added
    elif name == "cases.add":  # dropout cases (monitoring)
        _insert(w, "cases", lambda c: c.id, items, "case")
    elif name == "cases.update":
        return _update(w, "cases", lambda c: c.id, items, "case")
    else:  # pragma: no cover - programming error
        msg = f"unknown operation {name!r}"
        raise ValueError(msg)
    return []


# --------------------------------------------------------------------------- repositories


class _Repo:
    __slots__ = ("_uow",)

    def __init__(self, uow: MemoryUnitOfWork) -> None:
        self._uow = uow

    def _t(self, name: str) -> dict[Any, Any]:
        return self._uow._working.read(name)

    def _do(self, name: str, items: Iterable[Any]) -> list[Any]:
        return self._uow._apply(Op(name, tuple(items)))


def _get(table: dict[Any, E], key: Any, what: str) -> E:
    try:
        return table[key]
    except KeyError:
        raise _not_found(what, key) from None


class _Kindergartens(_Repo):
    def add(self, kindergarten: Kindergarten) -> None:
        self._do("kindergartens.add", [kindergarten])

    def add_many(self, kindergartens: Iterable[Kindergarten]) -> int:
        items = list(kindergartens)
        self._do("kindergartens.add", items)
        return len(items)

    def get(self, school_code: str) -> Kindergarten:
        return cast(Kindergarten, _get(self._t("kindergartens"), school_code, "kindergarten"))

    def find(self, school_code: str) -> Kindergarten | None:
        found: Kindergarten | None = self._t("kindergartens").get(school_code)
        return found

    def update(self, kindergarten: Kindergarten) -> Kindergarten:
        out: Kindergarten = self._do("kindergartens.update", [kindergarten])[0]
        return out

    def iter(self, *, region_prefix: str = "") -> Iterator[Kindergarten]:
        table = self._t("kindergartens")
        for code in sorted(table):
            if table[code].region_code.startswith(region_prefix):
                yield table[code]


def _by_id(found: dict[K, list[E]]) -> dict[K, list[E]]:
    """Each list sorted by the entities' ids (the one-by-one look-ups' order)."""
    for items in found.values():
        items.sort(key=operator.attrgetter("id"))
    return found


class _Children(_Repo):
    def add(self, child: Child) -> None:
        self._do("children.add", [child])

    def add_many(self, children: Iterable[Child]) -> int:
        items = list(children)
        self._do("children.add", items)
        return len(items)

    def get(self, child_id: str) -> Child:
        return cast(Child, _get(self._t("children"), child_id, "child"))

    def get_many(self, child_ids: Sequence[str]) -> dict[str, Child]:
        table = self._t("children")
        return {i: table[i] for i in child_ids if i in table}

    def update(self, child: Child) -> Child:
        out: Child = self._do("children.update", [child])[0]
        return out

    def find_by_document(self, number: str) -> list[Child]:
        table = self._t("children")
        return [
            c
            for _i, c in sorted(table.items())
            if c.document is not None and c.document.number == number
        ]

    def find_by_identity(self, name: str, sex: str, birth_date: date) -> list[Child]:
        table = self._t("children")
        return [
            c
            for _i, c in sorted(table.items())
            if c.name == name and c.sex == sex and c.birth_date == birth_date
        ]

    def find_by_documents(self, numbers: Sequence[str]) -> dict[str, list[Child]]:
        """Bulk :meth:`find_by_document`: number → its children by id (misses left out)."""
        wanted = set(numbers)
        out: dict[str, list[Child]] = {}
        if not wanted:
            return out
        for c in self._t("children").values():
            if c.document is not None and c.document.number in wanted:
                out.setdefault(c.document.number, []).append(c)
        return _by_id(out)

    def find_by_identities(
        self, keys: Sequence[tuple[str, str, date]]
    ) -> dict[tuple[str, str, date], list[Child]]:
        """Bulk :meth:`find_by_identity` (one scan): key (as given) → its children by id."""
        asked: dict[tuple[str, str, date], list[tuple[str, str, date]]] = {}
        for key in dict.fromkeys(keys):
            name, sex, birth = key
            asked.setdefault((name, str(sex), birth), []).append(key)
        out: dict[tuple[str, str, date], list[Child]] = {}
        if not asked:
            return out
        for c in self._t("children").values():
            for key in asked.get((c.name, str(c.sex), c.birth_date), ()):
                out.setdefault(key, []).append(c)
        return _by_id(out)


def _record_filter(
    region_prefix: str, kindergarten_code: str | None, states: Iterable[State] | None
) -> Callable[[StatusRecord], bool]:
    wanted = None if states is None else frozenset(states)

    def keep(r: StatusRecord) -> bool:
        return (
            r.region_code.startswith(region_prefix)
            and (kindergarten_code is None or r.kindergarten_code == kindergarten_code)
            and (wanted is None or r.state in wanted)
        )

    return keep


class _Records(_Repo):
    def add(self, record: StatusRecord) -> None:
        self._do("records.add", [record])

    def add_many(self, records: Iterable[StatusRecord]) -> int:
        items = list(records)
        self._do("records.add", items)
        return len(items)

    def get(self, record_id: str) -> StatusRecord:
        return cast(StatusRecord, _get(self._t("records"), record_id, "record"))

    def get_many(self, record_ids: Sequence[str]) -> dict[str, StatusRecord]:
        table = self._t("records")
        return {i: table[i] for i in record_ids if i in table}

    def update(self, record: StatusRecord) -> StatusRecord:
        out: StatusRecord = self._do("records.update", [record])[0]
        return out

    def update_many(self, records: Sequence[StatusRecord]) -> list[StatusRecord]:
        return self._do("records.update", list(records))

    def find_by_number(self, number: str) -> StatusRecord | None:
        holder = self._t("numidx").get(number)
        if holder is None:
            return None
        found: StatusRecord | None = self._t("records").get(holder)
        return found

    def for_child(self, child_id: str) -> list[StatusRecord]:
        table = self._t("records")
        return [r for _i, r in sorted(table.items()) if r.child_id == child_id]

    def for_children(self, child_ids: Sequence[str]) -> dict[str, list[StatusRecord]]:
        """Bulk :meth:`for_child` (one scan): child id → its records by id; misses left out."""
        wanted = set(child_ids)
        out: dict[str, list[StatusRecord]] = {}
        if not wanted:
            return out
        for r in self._t("records").values():
            if r.child_id in wanted:
                out.setdefault(r.child_id, []).append(r)
        return _by_id(out)

    def search(
        self, query: RecordQuery, *, limit: int, after: str | None = None
    ) -> list[tuple[StatusRecord, Child]]:
        """Portal search (:class:`~studentstatus.ports.RecordSearch`), single-writer store.

        ``number`` goes through the number index (``numidx``); this store keeps
        no other index, so the other searches read the children (document,
        name) or the records in id order until ``limit`` match — acceptable
        for a store that lives in one process's memory.
        """
        records = self._t("records")
        children = self._t("children")
        if query.number is not None:
            holder = self._t("numidx").get(query.number)
            ids = [holder] if holder is not None else []
        elif query.document is not None or query.name is not None:
            wanted = {
                c.id
                for c in children.values()
                if (query.name is None or c.name == query.name)
                and (
                    query.document is None
                    or (c.document is not None and c.document.number == query.document)
                )
            }
            ids = sorted(i for i, r in records.items() if r.child_id in wanted)
        else:
            ids = sorted(records)
        out: list[tuple[StatusRecord, Child]] = []
        for rid in ids:
            if len(out) >= limit:
                break
            if after is not None and rid <= after:
                continue
            rec: StatusRecord = records[rid]
            child: Child | None = children.get(rec.child_id)
            if child is not None and query.matches(rec, child):
                out.append((rec, child))
        return out

    def iter(
        self,
        *,
        region_prefix: str = "",
        kindergarten_code: str | None = None,
        states: Iterable[State] | None = None,
        batch_size: int = 1000,
    ) -> Iterator[StatusRecord]:
        table = self._t("records")
        keep = _record_filter(region_prefix, kindergarten_code, states)
        for rid in sorted(table):
            if keep(table[rid]):
                yield table[rid]

    def count(
        self,
        *,
        region_prefix: str = "",
        kindergarten_code: str | None = None,
        states: Iterable[State] | None = None,
    ) -> int:
        keep = _record_filter(region_prefix, kindergarten_code, states)
        return sum(1 for r in self._t("records").values() if keep(r))


class _Changes(_Repo):
    def append(self, change: StatusChange) -> None:
        self._do("changes.append", [change])

    def append_many(self, changes: Iterable[StatusChange]) -> int:
        items = list(changes)
        self._do("changes.append", items)
        return len(items)

    def for_record(self, record_id: str) -> list[StatusChange]:
        table = self._t("changes")
        return [c for (rid, _s), c in sorted(table.items()) if rid == record_id]

    def iter(
        self,
        *,
        kinds: Iterable[ChangeKind] | None = None,
        effective_from: date | None = None,
        effective_to: date | None = None,
        record_ids: Sequence[str] | None = None,
    ) -> Iterator[StatusChange]:
        wanted = None if kinds is None else frozenset(kinds)
        ids = None if record_ids is None else frozenset(record_ids)
        table = self._t("changes")
        for key in sorted(table):
            c = table[key]
            if wanted is not None and c.kind not in wanted:
                continue
            if ids is not None and c.record_id not in ids:
                continue
            if effective_from is not None and c.effective_date < effective_from:
                continue
            if effective_to is not None and c.effective_date > effective_to:
                continue
            yield c


class _Requests(_Repo):
    def add(self, request: ChangeRequest) -> None:
        self._do("requests.add", [request])

    def get(self, request_id: str) -> ChangeRequest:
        return cast(ChangeRequest, _get(self._t("requests"), request_id, "request"))

    def update(self, request: ChangeRequest) -> ChangeRequest:
        out: ChangeRequest = self._do("requests.update", [request])[0]
        return out

    def open_for_record(self, record_id: str) -> ChangeRequest | None:
        for _i, r in sorted(self._t("requests").items()):
            if r.record_id == record_id and r.status is RequestStatus.OPEN:
                found: ChangeRequest = r
                return found
        return None

    def iter(
        self, *, status: RequestStatus | None = None, applicant: str | None = None
    ) -> Iterator[ChangeRequest]:
        table = self._t("requests")
        for rid in sorted(table):
            r = table[rid]
            if (status is None or r.status is status) and (
                applicant is None or r.applicant == applicant
            ):
                yield r

    def overdue(self, before: date) -> Iterator[ChangeRequest]:
        """Open requests whose pending step was due before ``before``, by id."""
        table = self._t("requests")
        for rid in sorted(table):
            key = pending_key(table[rid])
            if key is not None and key[2] is not None and key[2] < before:
                yield table[rid]

    def pending_for(
        self,
        role: Role | str,
        scope: str,
        *,
        due_before: date | None = None,
        after: str | None = None,
        limit: int | None = None,
    ) -> Iterator[ChangeRequest]:
        """An approval queue by id (a read of every request: no index here)."""
        wanted = Role(role)
        table = self._t("requests")
        found = 0
        for rid in sorted(table):
            if limit is not None and found >= limit:
                return
            key = pending_key(table[rid])
            if (after is not None and rid <= after) or key is None:
                continue
            if key[0] is not wanted or key[1] != scope:
                continue
            if due_before is not None and (key[2] is None or key[2] >= due_before):
                continue
            found += 1
            yield table[rid]


class _Problems(_Repo):
    def add(self, problem: ProblemRecord) -> None:
        self._do("problems.add", [problem])

    def add_many(self, problems: Iterable[ProblemRecord]) -> int:
        items = list(problems)
        self._do("problems.add", items)
        return len(items)

    def get(self, problem_id: str) -> ProblemRecord:
        return cast(ProblemRecord, _get(self._t("problems"), problem_id, "problem"))

    def update(self, problem: ProblemRecord) -> ProblemRecord:
        out: ProblemRecord = self._do("problems.update", [problem])[0]
        return out

    def update_many(self, problems: Sequence[ProblemRecord]) -> list[ProblemRecord]:
        """Optimistic update of many (one operation: all or nothing)."""
        items = list(problems)  # a problem named twice is stale the second time: ConflictError
        return list(self._do("problems.update", items)) if items else []

    def for_record(self, record_id: str) -> list[ProblemRecord]:
        table = self._t("problems")
        return [p for _i, p in sorted(table.items()) if p.record_id == record_id]

    def for_records(
        self,
        record_ids: Sequence[str],
        *,
        statuses: Iterable[ProblemStatus] | None = None,
        kinds: Iterable[ProblemKind] | None = None,
    ) -> dict[str, list[ProblemRecord]]:
        """Bulk :meth:`for_record`, filtered by status and kind."""
        wanted = set(record_ids)
        st = None if statuses is None else frozenset(statuses)
        ks = None if kinds is None else frozenset(kinds)
        out: dict[str, list[ProblemRecord]] = {}
        if not wanted:
            return out
        table = self._t("problems")
        for pid in sorted(table):
            p = table[pid]
            if (
                p.record_id in wanted
                and (st is None or p.status in st)
                and (ks is None or p.kind in ks)
            ):
                out.setdefault(p.record_id, []).append(p)
        return out

    def iter(
        self,
        *,
        county_prefix: str = "",
        statuses: Iterable[ProblemStatus] | None = None,
        kinds: Iterable[ProblemKind] | None = None,
        kindergarten_code: str | None = None,
    ) -> Iterator[ProblemRecord]:
        st = None if statuses is None else frozenset(statuses)
        ks = None if kinds is None else frozenset(kinds)
        table = self._t("problems")
        for pid in sorted(table):
            p = table[pid]
            if (
                p.county_code.startswith(county_prefix)
                and (st is None or p.status in st)
                and (ks is None or p.kind in ks)
                and (kindergarten_code is None or p.kindergarten_code == kindergarten_code)
            ):
                yield p


class _Numbers(_Repo):
    def claim(self, issued: IssuedNumber) -> None:
        self._do("numbers.claim", [issued])

    def claim_many(self, issued: Iterable[IssuedNumber]) -> int:
        items = list(issued)
        self._do("numbers.claim", items)
        return len(items)

    def resolve(self, number: str) -> IssuedNumber | None:
        found: IssuedNumber | None = self._t("numbers").get(number)
        return found

    def next_sequence(self, region_code: str, birth_date: date) -> int:
        value = self._t("sequences").get((region_code, birth_date), 0) + 1
        self._do("sequences.set", [(region_code, birth_date, value)])
        return int(value)

    def next_sequences(self, keys: Sequence[tuple[str, date]]) -> list[int]:
        """next_sequence for each key in order (in memory a loop costs no round trip)."""
        return [self.next_sequence(region, birth) for region, birth in keys]

    def for_record(self, record_id: str) -> list[IssuedNumber]:
        found = [n for n in self._t("numbers").values() if n.record_id == record_id]
        return sorted(found, key=lambda n: (n.issued_at, n.number))

    def with_prefix(self, prefix: str) -> Iterator[str]:
        table = self._t("numbers")
        return iter(sorted(n for n in table if n.startswith(prefix)))


class _Roster(_Repo):
    def add(self, entry: RosterEntry) -> None:
        self._do("roster.add", [entry])

    def iter(self, *, county_prefix: str = "") -> Iterator[RosterEntry]:
        table = self._t("roster")
        for rid in sorted(table):
            if table[rid].county_code.startswith(county_prefix):
                yield table[rid]


class _Attendance(_Repo):
    def add_many(self, entries: Iterable[AttendanceEntry]) -> int:
        items = list(entries)
        self._do("attendance.add", items)
        return len(items)

    def for_record(
        self, record_id: str, *, start: date | None = None, end: date | None = None
    ) -> list[AttendanceEntry]:
        table = self._t("attendance")
        days = sorted(
            day
            for rid, day in table
            if rid == record_id and (start is None or day >= start) and (end is None or day <= end)
        )
        return [table[(record_id, d)][-1] for d in days]

    def history(self, record_id: str, day: date) -> list[AttendanceEntry]:
        return list(self._t("attendance").get((record_id, day), ()))

    def for_records(
        self, record_ids: Sequence[str], *, start: date | None = None, end: date | None = None
    ) -> dict[str, list[AttendanceEntry]]:
        """Bulk :meth:`for_record` (monitoring): current entry per day for each id, by day."""
        wanted = set(record_ids)
        table = self._t("attendance")
        out: dict[str, list[AttendanceEntry]] = {}
        for rid, day in sorted(table):
            if rid in wanted and (start is None or day >= start) and (end is None or day <= end):
                out.setdefault(rid, []).append(table[(rid, day)][-1])
        return out


class _Cases(_Repo):
    """Dropout cases (added for monitoring)."""

    def add(self, case: DropoutCase) -> None:
        self._do("cases.add", [case])

    def add_many(self, cases: Iterable[DropoutCase]) -> int:
        items = list(cases)
        self._do("cases.add", items)
        return len(items)

    def get(self, case_id: str) -> DropoutCase:
        found: DropoutCase = _get(self._t("cases"), case_id, "case")
        return found

    def update(self, case: DropoutCase) -> DropoutCase:
        out: DropoutCase = self._do("cases.update", [case])[0]
        return out

    def update_many(self, cases: Sequence[DropoutCase]) -> list[DropoutCase]:
        return list(self._do("cases.update", list(cases)))

    def for_record(self, record_id: str) -> list[DropoutCase]:
        table = self._t("cases")
        return [c for _i, c in sorted(table.items()) if c.record_id == record_id]

    def iter(
        self, *, county_prefix: str = "", statuses: Iterable[CaseStatus] | None = None
    ) -> Iterator[DropoutCase]:
        st = None if statuses is None else frozenset(statuses)
        table = self._t("cases")
        for cid in sorted(table):
            c = table[cid]
            if c.county_code.startswith(county_prefix) and (st is None or c.status in st):
                yield c


class _Audit(_Repo):
    @property
    def key(self) -> AuditKey | None:
        """The store's audit key: new entries are sealed under it (``None``: unkeyed)."""
        key: AuditKey | None = getattr(self._uow._store, "audit_key", None)
        return key

    def append(self, entry: AuditEntry) -> None:
        self._do("audit.append", [entry])

    def append_many(self, entries: Iterable[AuditEntry]) -> int:
        items = list(entries)
        self._do("audit.append", items)
        return len(items)

    def last(self, chain: str = "") -> AuditEntry | None:
        head = self._t("auditheads").get(chain)
        if head is None:
            return None
        found: AuditEntry | None = self._t("audit").get((chain, head[0]))
        return found

    def iter(self, chain: str | None = None) -> Iterator[AuditEntry]:
        table = self._t("audit")
        keys = sorted(table) if chain is None else sorted(k for k in table if k[0] == chain)
        for key in keys:
            yield table[key]

    def heads(self) -> dict[str, tuple[int, str]]:
        return dict(self._t("auditheads"))


class _Claims(_Repo):
    """Identity claims: a count per key; a unit that claimed a key another unit claimed
    since its snapshot fails at commit with :class:`~studentstatus.errors.TryAgain`."""

    def claim(self, keys: Sequence[str]) -> dict[str, int]:
        added: dict[str, int] = {}
        for key in sorted(keys):
            added[key] = added.get(key, 0) + 1
        table = self._t("claims")
        before = {key: table.get(key, 0) for key in added}
        if added:
            self._do("claims.add", [(k, before[k], n) for k, n in added.items()])
        return before


# --------------------------------------------------------------------------- unit of work


class Backend(Protocol):
    """What a :class:`MemoryUnitOfWork` needs from its store (memory or files)."""

    def _snapshot(self) -> tuple[State_, int]: ...

    def _publish(
        self, ops: Sequence[Op], working: Working, generation: int
    ) -> tuple[State_, int]: ...


class MemoryUnitOfWork:
    """A unit of work over a snapshot; see the module docstring.

    Subclasses (the file store's) override :meth:`_publish` only.

    >>> with MemoryStore().unit_of_work() as uow:
    ...     uow.audit.last() is None
    True
    """

    def __init__(self, store: Backend) -> None:
        self._store = store
        self._base, self._generation = store._snapshot()
        self._working = Working(self._base)
        self._ops: list[Op] = []
        self.kindergartens: KindergartenRepository = _Kindergartens(self)
        self.children: ChildRepository = _Children(self)
        self.records: RecordRepository = _Records(self)
        self.changes: ChangeLog = _Changes(self)
        self.requests: RequestRepository = _Requests(self)
        self.problems: ProblemRepository = _Problems(self)
        self.numbers: NumberRegistry = _Numbers(self)
        self.roster: RosterRepository = _Roster(self)
        self.attendance: AttendanceRepository = _Attendance(self)
        self.audit: AuditLog = _Audit(self)
        self.cases: CaseRepository = _Cases(self)
        self.claims: IdentityClaims = _Claims(self)

    def _apply(self, op: Op) -> list[Any]:
        result = apply_op(self._working, op)
        self._ops.append(op)
        return result

    def __enter__(self) -> Self:
        """Begin (the snapshot was taken when the unit was created)."""
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Roll back whatever was not committed."""
        self.rollback()

    def commit(self) -> None:
        """Publish every write of this unit atomically, or raise ConflictError and publish none."""
        if self._ops:
            self._base, self._generation = self._store._publish(
                self._ops, self._working, self._generation
            )
        else:
            self._base, self._generation = self._store._snapshot()
        self._working = Working(self._base)
        self._ops = []

    def rollback(self) -> None:
        """Discard every write since the last commit."""
        self._working = Working(self._base)
        self._ops = []


class MemoryStore:
    """Thread-safe in-memory store; the reference every adapter is compared with.

    >>> store = MemoryStore()
    >>> with store.unit_of_work() as uow:
    ...     uow.numbers.next_sequence("110105", date(2020, 1, 1))
    ...     uow.numbers.next_sequence("110105", date(2020, 1, 1))
    ...     uow.commit()
    1
    2

    ``audit_key`` (an :class:`~studentstatus.domain.audit.AuditKey`, or its bytes):
    the host's key, under which audit entries are sealed (see
    :mod:`studentstatus.services.audit`); kept in memory only.
    """

    def __init__(self, *, audit_key: AuditKey | bytes | str | None = None) -> None:
        self.audit_key = AuditKey.of(audit_key)
        self._lock = threading.Lock()
        self._state = State_()
        self._gen = 0

    def _snapshot(self) -> tuple[State_, int]:
        with self._lock:
            return self._state, self._gen

    def _publish(self, ops: Sequence[Op], working: Working, generation: int) -> tuple[State_, int]:
        with self._lock:
            if generation == self._gen:
                new = working.freeze()
            else:
                replay = Working(self._state)
                for op in ops:
                    apply_op(replay, op)
                new = replay.freeze()
            self._state = new
            self._gen += 1
            return new, self._gen

    def unit_of_work(self) -> MemoryUnitOfWork:
        """A new unit of work over the current published state."""
        return MemoryUnitOfWork(self)

    def close(self) -> None:
        """Nothing to release; the data stays readable until the store is garbage."""
