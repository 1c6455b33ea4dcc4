"""The bulk methods of the ports, one call at a time: mixins for integrators' adapters.

Every repository port has a few *bulk* methods (``children.find_by_documents``,
``records.for_children``, ``problems.for_records`` …) that the services call to read or
write a whole chunk at once; the library's own stores answer each with one query.  An
adapter written against the ports can start without them: mix the matching class in
**before** its own base, and each bulk method is answered by the adapter's single-item
method, once per item — correct, and as fast as that adapter's single calls.  (Mix the
class into the repository; it adds the bulk methods only.)  Replace a
mixin method by a real bulk query when the adapter needs the speed; the conformance kit
(:mod:`studentstatus.testing.contract`) checks both the same way.

==========================  =========================================================
mixin                       bulk methods, from
==========================  =========================================================
:class:`ChildrenOneByOne`    ``find_by_documents``, ``find_by_identities``
                             (from ``find_by_document``, ``find_by_identity``)
:class:`RecordsOneByOne`     ``for_children`` (from ``for_child``)
:class:`ProblemsOneByOne`    ``for_records``, ``update_many``
                             (from ``for_record``, ``update``)
:class:`NumbersOneByOne`     ``next_sequences`` (from ``next_sequence``)
:class:`RequestsOneByOne`    ``overdue`` (from ``iter``)
:class:`AttendanceOneByOne`  ``for_records`` (from ``for_record``)
==========================  =========================================================

>>> from datetime import date
>>> from studentstatus.domain.enums import Sex
>>> from studentstatus.domain.model import Child
>>> class Children(ChildrenOneByOne):          # an adapter's own repository
...     def __init__(self, rows):
...         self.rows = rows
...     def find_by_document(self, number):
...         return [c for c in self.rows if c.document and c.document.number == number]
...     def find_by_identity(self, name, sex, birth_date):
...         return [c for c in self.rows
...                 if (c.name, c.sex, c.birth_date) == (name, sex, birth_date)]
>>> kid = Child("c1", "王小明", Sex.M, date(2020, 3, 15))
>>> Children([kid]).find_by_identities([("王小明", Sex.M, date(2020, 3, 15))])
{('王小明', <Sex.M: 'M'>, datetime.date(2020, 3, 15)): [Child(id='c1', ...)]}
>>> Children([kid]).find_by_documents(["11010520200315002X"])
{}
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from datetime import date
from typing import Any, Protocol

from studentstatus.domain.approvals import pending_key
from studentstatus.domain.enums import ProblemKind, ProblemStatus, RequestStatus
from studentstatus.domain.model import (
    AttendanceEntry,
    ChangeRequest,
    Child,
    ProblemRecord,
    StatusRecord,
)

__all__ = [
    "AttendanceOneByOne",
    "ChildrenOneByOne",
    "NumbersOneByOne",
    "ProblemsOneByOne",
    "RecordsOneByOne",
    "RequestsOneByOne",
]


class _SingleChildren(Protocol):
    def find_by_document(self, number: str) -> list[Child]: ...
    def find_by_identity(self, name: str, sex: Any, birth_date: date) -> list[Child]: ...


class _SingleRecords(Protocol):
    def for_child(self, child_id: str) -> list[StatusRecord]: ...


class _SingleProblems(Protocol):
    def for_record(self, record_id: str) -> list[ProblemRecord]: ...
    def update(self, problem: ProblemRecord) -> ProblemRecord: ...


class _AllRequests(Protocol):
    def iter(
        self, *, status: RequestStatus | None = None, applicant: str | None = None
    ) -> Iterator[ChangeRequest]: ...


class _SingleNumbers(Protocol):
    def next_sequence(self, region_code: str, birth_date: date) -> int: ...


class _SingleAttendance(Protocol):
    def for_record(
        self, record_id: str, *, start: date | None = None, end: date | None = None
    ) -> list[AttendanceEntry]: ...


class ChildrenOneByOne:
    """``find_by_documents`` / ``find_by_identities`` from the single look-ups.

    Results are keyed as asked (duplicates asked once), misses left out, each list by id.
    """

    def find_by_documents(self: _SingleChildren, numbers: Sequence[str]) -> dict[str, list[Child]]:
        """:meth:`find_by_document` of each number that has children."""
        out: dict[str, list[Child]] = {}
        for number in dict.fromkeys(numbers):
            found = self.find_by_document(number)
            if found:
                out[number] = sorted(found, key=lambda c: c.id)
        return out

    def find_by_identities(
        self: _SingleChildren, keys: Sequence[tuple[str, str, date]]
    ) -> dict[tuple[str, str, date], list[Child]]:
        """:meth:`find_by_identity` of each (name, sex, birth date) that has children."""
        out: dict[tuple[str, str, date], list[Child]] = {}
        for key in dict.fromkeys(keys):
            found = self.find_by_identity(*key)
            if found:
                out[key] = sorted(found, key=lambda c: c.id)
        return out


class RecordsOneByOne:
    """``for_children`` from ``for_child``."""

    def for_children(
        self: _SingleRecords, child_ids: Sequence[str]
    ) -> dict[str, list[StatusRecord]]:
        """:meth:`for_child` of each child that has records, by record id."""
        out: dict[str, list[StatusRecord]] = {}
        for child_id in dict.fromkeys(child_ids):
            found = self.for_child(child_id)
            if found:
                out[child_id] = sorted(found, key=lambda r: r.id)
        return out


class ProblemsOneByOne:
    """``for_records`` and ``update_many`` from ``for_record`` and ``update``.

    ``update_many`` updates in order and stops at the first error; the caller's unit of
    work, rolled back, takes the earlier updates with it.
    """

    def for_records(
        self: _SingleProblems,
        record_ids: Sequence[str],
        *,
        statuses: Iterable[ProblemStatus] | None = None,
        kinds: Iterable[ProblemKind] | None = None,
    ) -> dict[str, list[ProblemRecord]]:
        """:meth:`for_record` of each record, filtered by status and kind; empty ones left out."""
        st = None if statuses is None else frozenset(statuses)
        ks = None if kinds is None else frozenset(kinds)
        out: dict[str, list[ProblemRecord]] = {}
        for record_id in dict.fromkeys(record_ids):
            found = [
                p
                for p in self.for_record(record_id)
                if (st is None or p.status in st) and (ks is None or p.kind in ks)
            ]
            if found:
                out[record_id] = sorted(found, key=lambda p: p.id)
        return out

    def update_many(
        self: _SingleProblems, problems: Sequence[ProblemRecord]
    ) -> list[ProblemRecord]:
        """:meth:`update` of each, in order."""
        return [self.update(p) for p in problems]


class NumbersOneByOne:
    """``next_sequences`` from ``next_sequence``."""

    def next_sequences(self: _SingleNumbers, keys: Sequence[tuple[str, date]]) -> list[int]:
        """:meth:`next_sequence` for each key, in order (repeats allocate again)."""
        return [self.next_sequence(region, birth) for region, birth in keys]


class AttendanceOneByOne:
    """``for_records`` from ``for_record``."""

    def for_records(
        self: _SingleAttendance,
        record_ids: Sequence[str],
        *,
        start: date | None = None,
        end: date | None = None,
    ) -> dict[str, list[AttendanceEntry]]:
        """:meth:`for_record` of each record that has entries."""
        out: dict[str, list[AttendanceEntry]] = {}
        for record_id in dict.fromkeys(record_ids):
            found = self.for_record(record_id, start=start, end=end)
            if found:
                out[record_id] = found
        return out


class RequestsOneByOne:
    """``overdue`` from ``iter(status=OPEN)``: every open request is read and the overdue
    ones kept (an index on the pending step's due date does it in one query)."""

    def overdue(self: _AllRequests, before: date) -> Iterator[ChangeRequest]:
        """Open requests whose pending step was due before ``before``, by id."""
        for request in self.iter(status=RequestStatus.OPEN):
            key = pending_key(request)
            if key is not None and key[2] is not None and key[2] < before:
                yield request
