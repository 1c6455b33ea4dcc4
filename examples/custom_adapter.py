"""A complete custom storage adapter: plain dicts in one pickle file, checked by the kit.

Run it as a script to run the conformance kit on it::

    python examples/custom_adapter.py        # exit status 0 when every contract passes

The store keeps every table as a ``dict`` in a single pickle file that is
rewritten atomically (temp file + fsync + ``os.replace``) at each commit.  A unit
of work copies the tables when it starts; ``commit`` takes a lock, re-reads the
file and refuses (ConflictError) if anyone committed since the unit started.
That coarse optimistic rule is simple and correct; a finer adapter would check
each written row's version instead (see ``studentstatus.adapters.memory``).

Nothing here uses the library's own adapters: only the entity classes, the
errors, the port protocols and the mixins of ``studentstatus.adapters.one_by_one``,
which answer the ports' bulk methods (``children.find_by_documents`` …) with the
single look-ups below, one item at a time.
"""

from __future__ import annotations

import os
import pickle
import sys
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import date
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import attrs
import pytest

from studentstatus.adapters.one_by_one import (
    AttendanceOneByOne,
    ChildrenOneByOne,
    NumbersOneByOne,
    ProblemsOneByOne,
    RecordsOneByOne,
    RequestsOneByOne,
)
from studentstatus.domain.approvals import pending_key
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
from studentstatus.domain.search import RecordQuery
from studentstatus.errors import ConflictError, NotFoundError, StorageError
from studentstatus.ports import Store
from studentstatus.testing.contract import StoreContract

TABLES = ("kindergartens", "children", "records", "changes", "requests", "problems",
          "numbers", "sequences", "roster", "attendance", "audit", "owners",
          "claims")  # fmt: skip


class Table:
    """One dict of entities with the add/update rules every repository shares."""

    def __init__(self, rows: dict[Any, Any], key: Callable[[Any], Any], what: str) -> None:
        self.rows, self.key, self.what = rows, key, what

    def add_many(self, items: Iterable[Any]) -> int:
        items = list(items)
        keys = [self.key(i) for i in items]
        if len(set(keys)) != len(keys) or any(k in self.rows for k in keys):
            raise ConflictError(f"{self.what} exists")
        self.rows.update(zip(keys, items))
        return len(items)

    def get(self, k: Any) -> Any:
        if k not in self.rows:
            raise NotFoundError(f"{self.what} {k} not found")
        return self.rows[k]

    def update_many(self, items: Sequence[Any]) -> list[Any]:
        staged: dict[Any, Any] = {}
        out = []
        for item in items:  # check everything first: all or nothing
            k = self.key(item)
            stored = staged.get(k, self.rows.get(k))
            if stored is None:
                raise NotFoundError(f"{self.what} {k} not found")
            if stored.version != item.version:
                raise ConflictError(f"{self.what} {k} is stale")
            staged[k] = attrs.evolve(item, version=item.version + 1)
            out.append(staged[k])
        self.rows.update(staged)
        return out

    def sorted(self, keep: Callable[[Any], bool] = lambda _e: True) -> list[Any]:
        return [self.rows[k] for k in sorted(self.rows) if keep(self.rows[k])]


class Kindergartens:
    def __init__(self, t: dict[str, Any]) -> None:
        self.t = Table(t["kindergartens"], lambda k: k.school_code, "kindergarten")

    def add(self, kindergarten: Kindergarten) -> None:
        self.t.add_many([kindergarten])

    def add_many(self, kindergartens: Iterable[Kindergarten]) -> int:
        return self.t.add_many(kindergartens)

    def get(self, school_code: str) -> Kindergarten:
        return self.t.get(school_code)  # type: ignore[no-any-return]

    def find(self, school_code: str) -> Kindergarten | None:
        return self.t.rows.get(school_code)

    def update(self, kindergarten: Kindergarten) -> Kindergarten:
        return self.t.update_many([kindergarten])[0]  # type: ignore[no-any-return]

    def iter(self, *, region_prefix: str = "") -> Iterator[Kindergarten]:
        return iter(self.t.sorted(lambda k: k.region_code.startswith(region_prefix)))


class Children(ChildrenOneByOne):
    def __init__(self, t: dict[str, Any]) -> None:
        self.t = Table(t["children"], lambda c: c.id, "child")

    def add(self, child: Child) -> None:
        self.t.add_many([child])

    def add_many(self, children: Iterable[Child]) -> int:
        return self.t.add_many(children)

    def get(self, child_id: str) -> Child:
        return self.t.get(child_id)  # type: ignore[no-any-return]

    def get_many(self, child_ids: Sequence[str]) -> dict[str, Child]:
        return {i: self.t.rows[i] for i in child_ids if i in self.t.rows}

    def update(self, child: Child) -> Child:
        return self.t.update_many([child])[0]  # type: ignore[no-any-return]

    def find_by_document(self, number: str) -> list[Child]:
        return self.t.sorted(lambda c: c.document is not None and c.document.number == number)

    def find_by_identity(self, name: str, sex: str, birth_date: date) -> list[Child]:
        return self.t.sorted(lambda c: (c.name, c.sex, c.birth_date) == (name, sex, birth_date))


def _numbers_of(r: StatusRecord) -> set[str]:
    return {n for n in (r.temp_number, r.national_number, *r.former_numbers) if n}


class Records(RecordsOneByOne):
    def __init__(self, t: dict[str, Any]) -> None:
        self.t = Table(t["records"], lambda r: r.id, "record")
        # Every number a record ever held -> that record: a number is never reused, even
        # after its record dropped it, and it still finds its record.
        self.owners: dict[str, str] = t.setdefault("owners", {})
        self.children: dict[str, Child] = t["children"]

    def _check_numbers(self, records: Sequence[StatusRecord]) -> dict[str, str]:
        staged: dict[str, str] = {}
        for rec in records:
            for n in _numbers_of(rec):
                if staged.setdefault(n, self.owners.get(n, rec.id)) != rec.id:
                    raise ConflictError("number belongs to another record")
        return staged

    def add(self, record: StatusRecord) -> None:
        self.add_many([record])

    def add_many(self, records: Iterable[StatusRecord]) -> int:
        items = list(records)
        staged = self._check_numbers(items)
        n = self.t.add_many(items)
        self.owners.update(staged)
        return n

    def get(self, record_id: str) -> StatusRecord:
        return self.t.get(record_id)  # type: ignore[no-any-return]

    def get_many(self, record_ids: Sequence[str]) -> dict[str, StatusRecord]:
        return {i: self.t.rows[i] for i in record_ids if i in self.t.rows}

    def update(self, record: StatusRecord) -> StatusRecord:
        return self.update_many([record])[0]

    def update_many(self, records: Sequence[StatusRecord]) -> list[StatusRecord]:
        for rec in records:  # a missing record is NotFoundError before any number conflict
            self.t.get(rec.id)
        staged = self._check_numbers(records)
        out = self.t.update_many(records)
        self.owners.update(staged)
        return out

    def find_by_number(self, number: str) -> StatusRecord | None:
        holder = self.owners.get(number)
        return self.t.rows.get(holder) if holder is not None else None

    def for_child(self, child_id: str) -> list[StatusRecord]:
        return self.t.sorted(lambda r: r.child_id == child_id)

    def search(
        self, query: RecordQuery, *, limit: int, after: str | None = None
    ) -> list[tuple[StatusRecord, Child]]:
        # Optional (studentstatus.ports.RecordSearch): the number through ``owners``, every
        # other search by reading the records in id order -- fine for a file this size.
        if query.number is not None:
            holder = self.owners.get(query.number)
            found = [self.t.rows[holder]] if holder in self.t.rows else []
        else:
            found = self.t.sorted(lambda r: after is None or r.id > after)
        out: list[tuple[StatusRecord, Child]] = []
        for rec in found:
            child = self.children.get(rec.child_id)
            if (after is None or rec.id > after) and child and query.matches(rec, child):
                out.append((rec, child))
                if len(out) == limit:
                    break
        return out

    def iter(
        self,
        *,
        region_prefix: str = "",
        kindergarten_code: str | None = None,
        states: Iterable[State] | None = None,
        batch_size: int = 1000,
    ) -> Iterator[StatusRecord]:
        wanted = None if states is None else set(states)
        return iter(
            self.t.sorted(
                lambda r: (
                    r.region_code.startswith(region_prefix)
                    and kindergarten_code in (None, r.kindergarten_code)
                    and (wanted is None or r.state in wanted)
                )
            )
        )

    def count(
        self,
        *,
        region_prefix: str = "",
        kindergarten_code: str | None = None,
        states: Iterable[State] | None = None,
    ) -> int:
        rows = self.iter(
            region_prefix=region_prefix, kindergarten_code=kindergarten_code, states=states
        )
        return sum(1 for _ in rows)


class Changes:
    def __init__(self, t: dict[str, Any]) -> None:
        self.t = Table(t["changes"], lambda c: (c.record_id, c.seq), "change")

    def append(self, change: StatusChange) -> None:
        self.t.add_many([change])

    def append_many(self, changes: Iterable[StatusChange]) -> int:
        return self.t.add_many(changes)

    def for_record(self, record_id: str) -> list[StatusChange]:
        return self.t.sorted(lambda c: c.record_id == record_id)

    def iter(
        self,
        *,
        kinds: Iterable[ChangeKind] | None = None,
        effective_from: date | None = None,
        effective_to: date | None = None,
        record_ids: Sequence[str] | None = None,
    ) -> Iterator[StatusChange]:
        ks = None if kinds is None else set(kinds)
        ids = None if record_ids is None else set(record_ids)
        return iter(
            self.t.sorted(
                lambda c: (
                    (ks is None or c.kind in ks)
                    and (ids is None or c.record_id in ids)
                    and (effective_from is None or c.effective_date >= effective_from)
                    and (effective_to is None or c.effective_date <= effective_to)
                )
            )
        )


class Requests(RequestsOneByOne):
    def __init__(self, t: dict[str, Any]) -> None:
        self.t = Table(t["requests"], lambda r: r.id, "request")

    def _check_open(self, request: ChangeRequest) -> None:
        other = self.open_for_record(request.record_id)
        if request.status is RequestStatus.OPEN and other and other.id != request.id:
            raise ConflictError("the record already has an open request")

    def add(self, request: ChangeRequest) -> None:
        self._check_open(request)
        self.t.add_many([request])

    def get(self, request_id: str) -> ChangeRequest:
        return self.t.get(request_id)  # type: ignore[no-any-return]

    def update(self, request: ChangeRequest) -> ChangeRequest:
        self._check_open(request)
        return self.t.update_many([request])[0]  # type: ignore[no-any-return]

    def open_for_record(self, record_id: str) -> ChangeRequest | None:
        found = self.t.sorted(lambda r: r.record_id == record_id and r.status is RequestStatus.OPEN)
        return found[0] if found else None

    def iter(
        self, *, status: RequestStatus | None = None, applicant: str | None = None
    ) -> Iterator[ChangeRequest]:
        return iter(
            self.t.sorted(
                lambda r: (
                    (status is None or r.status is status)
                    and (applicant is None or r.applicant == applicant)
                )
            )
        )

    def pending_for(
        self,
        role: Role | str,
        scope: str,
        *,
        due_before: date | None = None,
        after: str | None = None,
        limit: int | None = None,
    ) -> Iterator[ChangeRequest]:
        # The queue's key is the pending step's (role, scope, due); a database adapter
        # keeps it in indexed columns, a dict can afford to compute it for every request.
        def queued(r: ChangeRequest) -> bool:
            key = pending_key(r)
            return (
                key is not None
                and key[:2] == (Role(role), scope)
                and (after is None or r.id > after)
                and (due_before is None or (key[2] is not None and key[2] < due_before))
            )

        found = self.t.sorted(queued)
        return iter(found if limit is None else found[: max(limit, 0)])


class Problems(ProblemsOneByOne):
    def __init__(self, t: dict[str, Any]) -> None:
        self.t = Table(t["problems"], lambda p: p.id, "problem")

    def add(self, problem: ProblemRecord) -> None:
        self.t.add_many([problem])

    def add_many(self, problems: Iterable[ProblemRecord]) -> int:
        return self.t.add_many(problems)

    def get(self, problem_id: str) -> ProblemRecord:
        return self.t.get(problem_id)  # type: ignore[no-any-return]

    def update(self, problem: ProblemRecord) -> ProblemRecord:
        return self.t.update_many([problem])[0]  # type: ignore[no-any-return]

    def for_record(self, record_id: str) -> list[ProblemRecord]:
        return self.t.sorted(lambda p: p.record_id == record_id)

    def iter(
        self,
        *,
        county_prefix: str = "",
        statuses: Iterable[ProblemStatus] | None = None,
        kinds: Iterable[ProblemKind] | None = None,
        kindergarten_code: str | None = None,
    ) -> Iterator[ProblemRecord]:
        st = None if statuses is None else set(statuses)
        ks = None if kinds is None else set(kinds)
        return iter(
            self.t.sorted(
                lambda p: (
                    p.county_code.startswith(county_prefix)
                    and (st is None or p.status in st)
                    and (ks is None or p.kind in ks)
                    and (kindergarten_code is None or p.kindergarten_code == kindergarten_code)
                )
            )
        )


class Numbers(NumbersOneByOne):
    def __init__(self, t: dict[str, Any]) -> None:
        self.t = Table(t["numbers"], lambda n: n.number, "number")
        self.sequences: dict[tuple[str, date], int] = t["sequences"]

    def claim(self, issued: IssuedNumber) -> None:
        self.t.add_many([issued])

    def claim_many(self, issued: Iterable[IssuedNumber]) -> int:
        return self.t.add_many(issued)

    def resolve(self, number: str) -> IssuedNumber | None:
        return self.t.rows.get(number)

    def next_sequence(self, region_code: str, birth_date: date) -> int:
        key = (region_code, birth_date)
        self.sequences[key] = self.sequences.get(key, 0) + 1
        return self.sequences[key]

    def for_record(self, record_id: str) -> list[IssuedNumber]:
        found = [n for n in self.t.rows.values() if n.record_id == record_id]
        return sorted(found, key=lambda n: (n.issued_at, n.number))

    def with_prefix(self, prefix: str) -> Iterator[str]:
        return iter(sorted(n for n in self.t.rows if n.startswith(prefix)))


class Roster:
    def __init__(self, t: dict[str, Any]) -> None:
        self.t = Table(t["roster"], lambda e: e.id, "roster entry")

    def add(self, entry: RosterEntry) -> None:
        self.t.add_many([entry])

    def iter(self, *, county_prefix: str = "") -> Iterator[RosterEntry]:
        return iter(self.t.sorted(lambda e: e.county_code.startswith(county_prefix)))


class Attendance(AttendanceOneByOne):
    def __init__(self, t: dict[str, Any]) -> None:
        self.days: dict[tuple[str, date], list[AttendanceEntry]] = t["attendance"]

    def add_many(self, entries: Iterable[AttendanceEntry]) -> int:
        n = 0
        for e in entries:
            self.days.setdefault((e.record_id, e.day), []).append(e)
            n += 1
        return n

    def for_record(
        self, record_id: str, *, start: date | None = None, end: date | None = None
    ) -> list[AttendanceEntry]:
        return [
            entries[-1]
            for (rid, day), entries in sorted(self.days.items())
            if rid == record_id and (start is None or day >= start) and (end is None or day <= end)
        ]

    def history(self, record_id: str, day: date) -> list[AttendanceEntry]:
        return list(self.days.get((record_id, day), []))


class Audit:
    """One chain per writer scope: entries keyed by (chain, seq); the heads are read off
    the entries (a store that keeps them apart also shows a chain cut off at its end)."""

    def __init__(self, t: dict[str, Any]) -> None:
        self.t = Table(t["audit"], lambda a: (a.chain, a.seq), "audit entry")

    def append(self, entry: AuditEntry) -> None:
        self.t.add_many([entry])

    def append_many(self, entries: Iterable[AuditEntry]) -> int:
        return self.t.add_many(entries)

    def last(self, chain: str = "") -> AuditEntry | None:
        seqs = [seq for c, seq in self.t.rows if c == chain]
        return self.t.rows[(chain, max(seqs))] if seqs else None

    def iter(self, chain: str | None = None) -> Iterator[AuditEntry]:
        return iter(self.t.sorted(lambda a: chain is None or a.chain == chain))

    def heads(self) -> dict[str, tuple[int, str]]:
        heads: dict[str, tuple[int, str]] = {}
        for entry in self.t.sorted():  # by (chain, seq): each chain's last entry wins
            heads[entry.chain] = (entry.seq, entry.hash)
        return heads


class Claims:
    """Identity claims: a count per key.  The whole store commits optimistically (a
    commit fails when anyone committed since), so no lock is needed here."""

    def __init__(self, t: dict[str, Any]) -> None:
        self.counts: dict[str, int] = t.setdefault("claims", {})

    def claim(self, keys: Sequence[str]) -> dict[str, int]:
        before: dict[str, int] = {}
        for key in sorted(keys):
            before.setdefault(key, self.counts.get(key, 0))
            self.counts[key] = self.counts.get(key, 0) + 1
        return before


class PickleUnitOfWork:
    """Works on private copies of the tables; commit writes them back if nobody else did."""

    def __init__(self, store: PickleStore) -> None:
        self.store = store
        self._begin()

    def _begin(self) -> None:
        generation, tables = self.store.load()
        self.generation = generation
        # Copy every table (and the attendance lists) so that rollback is "forget the copy".
        t = {name: dict(rows) for name, rows in tables.items()}
        t["attendance"] = {k: list(v) for k, v in t["attendance"].items()}
        self.tables = t
        self.kindergartens = Kindergartens(t)
        self.children = Children(t)
        self.records = Records(t)
        self.changes = Changes(t)
        self.requests = Requests(t)
        self.problems = Problems(t)
        self.numbers = Numbers(t)
        self.roster = Roster(t)
        self.attendance = Attendance(t)
        self.audit = Audit(t)
        self.claims = Claims(t)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.rollback()

    def commit(self) -> None:
        self.store.save(self.generation, self.tables)
        self._begin()

    def rollback(self) -> None:
        self._begin()


class PickleStore:
    """The store: one pickle file, one lock."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.lock = threading.Lock()
        if not self.path.exists():
            self._write(0, {name: {} for name in TABLES})

    def load(self) -> tuple[int, dict[str, dict[Any, Any]]]:
        try:
            with open(self.path, "rb") as f:
                generation, tables = pickle.load(f)
        except OSError as exc:
            raise StorageError(f"cannot read {self.path}: {exc}") from exc
        return generation, tables

    def save(self, generation: int, tables: dict[str, dict[Any, Any]]) -> None:
        with self.lock:
            current, _ = self.load()
            if current != generation:
                raise ConflictError("another unit of work committed first")
            self._write(generation + 1, tables)

    def _write(self, generation: int, tables: dict[str, dict[Any, Any]]) -> None:
        tmp = self.path.with_suffix(".tmp")
        try:
            with open(tmp, "wb") as f:
                pickle.dump((generation, tables), f)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except OSError as exc:
            raise StorageError(f"cannot write {self.path}: {exc}") from exc

    def unit_of_work(self) -> PickleUnitOfWork:
        return PickleUnitOfWork(self)

    def close(self) -> None:
        pass


# --------------------------------------------------------------------------- the kit


class TestPickleStore(StoreContract):
    """Every contract of studentstatus.testing.contract, on PickleStore."""

    supports_persistence = True  # so the kit also checks close + reopen

    def make_store(self) -> Store:
        return PickleStore(Path(tempfile.mkdtemp(prefix="pickle-store-")) / "store.pickle")

    def reopen_store(self, store: Store) -> Store:
        assert isinstance(store, PickleStore)
        store.close()
        return PickleStore(store.path)


if __name__ == "__main__":
    # hypothesis is already imported (by the kit), so pytest cannot rewrite its asserts: fine.
    sys.exit(pytest.main([__file__, "-q", "-W", "ignore::pytest.PytestAssertRewriteWarning"]))
