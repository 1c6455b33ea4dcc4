"""Ports: the storage and outside-world contracts that services are written against.

Adapters (:mod:`studentstatus.adapters.memory`, ``.files``, ``.sql``) and
integrators' own stores implement these :class:`typing.Protocol` classes; the
conformance kit in :mod:`studentstatus.testing.contract` checks that they do.

Rules every adapter keeps:

* writes go through a :class:`UnitOfWork`; nothing is visible to other units
  until :meth:`UnitOfWork.commit`; leaving the ``with`` block without commit, or
  with an exception, rolls back;
* every versioned entity (``version`` field) is written with optimistic
  concurrency: ``update(entity)`` stores ``entity`` with ``version + 1`` only if
  the stored version still equals ``entity.version``; otherwise
  :class:`~studentstatus.errors.ConflictError`;
* uniqueness (school codes, record ids, national/temporary numbers, J-number
  sequences) raises :class:`~studentstatus.errors.ConflictError`;
* a missing entity on ``get`` raises :class:`~studentstatus.errors.NotFoundError`
  (``find`` returns ``None`` instead);
* driver errors never escape: they become
  :class:`~studentstatus.errors.StorageError` subclasses;
* bulk methods (``add_many``, ``update_many``, ``append_many``, ``iter_*``)
  exist so that services never loop one row per round trip; they behave
  exactly like the single-row methods applied in order.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import date, datetime
from types import TracebackType
from typing import Any, Protocol, Self, runtime_checkable

import attrs

from studentstatus.domain.audit import AuditKey
from studentstatus.domain.enums import (
    ChangeKind,
    ProblemKind,
    ProblemStatus,
    RequestStatus,
    Role,
    State,
    VerificationResult,
)
from studentstatus.domain.federation import Message, Transfer, TransferStatus
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
from studentstatus.domain.rollover import RolloverRule
from studentstatus.domain.search import RecordQuery

__all__ = [
    "AttendanceRepository",
    "AuditEventFields",
    "AuditLog",
    "BatchingEncoder",
    "BulkAttendanceRepository",
    "BulkChildRepository",
    "BulkNumberRegistry",
    "BulkProblemRepository",
    "BulkRecordRepository",
    "CaseRepository",
    "CaseUnitOfWork",
    "ChangeLog",
    "ChildRepository",
    "Clock",
    "FederationLink",
    "FieldUpdates",
    "Groups",
    "IdentityClaims",
    "KeyedAuditLog",
    "KeyedStore",
    "KindergartenRepository",
    "NationalHub",
    "NumberRegistry",
    "PopulationRegistry",
    "PreparedWrites",
    "ProblemRepository",
    "RecordQuery",
    "RecordRepository",
    "RecordSearch",
    "ReportScope",
    "ReportSource",
    "ReportingUnitOfWork",
    "RequestRepository",
    "RosterRepository",
    "RowEncoder",
    "SealingAuditLog",
    "SetBasedRollover",
    "SkippingRegistry",
    "Store",
    "UnitOfWork",
    "VerificationQuery",
]


class Clock(Protocol):
    """Source of the current time, passed to services (never read inside the core)."""

    def now(self) -> datetime:
        """The current aware datetime."""
        ...

    def today(self) -> date:
        """The current date in the deployment's time zone."""
        ...


class KindergartenRepository(Protocol):
    """Kindergartens by school code."""

    def add(self, kindergarten: Kindergarten) -> None:
        """Insert; ConflictError if the school code exists."""
        ...

    def add_many(self, kindergartens: Iterable[Kindergarten]) -> int:
        """Insert many; all-or-nothing inside the unit of work; returns the count."""
        ...

    def get(self, school_code: str) -> Kindergarten:
        """The kindergarten, or NotFoundError."""
        ...

    def find(self, school_code: str) -> Kindergarten | None:
        """The kindergarten or None."""
        ...

    def update(self, kindergarten: Kindergarten) -> Kindergarten:
        """Optimistic update; returns the stored entity with its new version."""
        ...

    def iter(self, *, region_prefix: str = "") -> Iterator[Kindergarten]:
        """Kindergartens whose region code starts with ``region_prefix``, by school code."""
        ...


class ChildRepository(Protocol):
    """Children by id, with look-ups used for duplicate detection."""

    def add(self, child: Child) -> None:
        """Insert; ConflictError if the id exists."""
        ...

    def add_many(self, children: Iterable[Child]) -> int:
        """Insert many; returns the count."""
        ...

    def get(self, child_id: str) -> Child:
        """The child, or NotFoundError."""
        ...

    def get_many(self, child_ids: Sequence[str]) -> dict[str, Child]:
        """The children found among ``child_ids`` (missing ids are left out)."""
        ...

    def update(self, child: Child) -> Child:
        """Optimistic update; returns the stored entity with its new version."""
        ...

    def find_by_document(self, number: str) -> list[Child]:
        """Children whose document number equals ``number`` (any document type), by id."""
        ...

    def find_by_identity(self, name: str, sex: str, birth_date: date) -> list[Child]:
        """Children with exactly this name, sex and birth date, by id."""
        ...

    def find_by_documents(self, numbers: Sequence[str]) -> dict[str, list[Child]]:
        """:meth:`~ChildRepository.find_by_document` for many numbers at once: number → its
        children by id (compared as ``find_by_document`` compares); misses are left out."""
        ...

    def find_by_identities(
        self, keys: Sequence[tuple[str, str, date]]
    ) -> dict[tuple[str, str, date], list[Child]]:
        """:meth:`~ChildRepository.find_by_identity` for many ``(name, sex, birth_date)`` at
        once: key (as given) → its children by id; misses are left out."""
        ...


@runtime_checkable
class BulkChildRepository(ChildRepository, Protocol):
    """The former name of :class:`ChildRepository`, whose bulk methods are now part of it
    (kept for adapters and hosts that import it; integrators without bulk queries mix in
    :mod:`studentstatus.adapters.one_by_one`)."""


class RecordRepository(Protocol):
    """Status records (the projection of the change log)."""

    def add(self, record: StatusRecord) -> None:
        """Insert; ConflictError if the id exists."""
        ...

    def add_many(self, records: Iterable[StatusRecord]) -> int:
        """Insert many; returns the count."""
        ...

    def get(self, record_id: str) -> StatusRecord:
        """The record, or NotFoundError."""
        ...

    def get_many(self, record_ids: Sequence[str]) -> dict[str, StatusRecord]:
        """The records found among ``record_ids``."""
        ...

    def update(self, record: StatusRecord) -> StatusRecord:
        """Optimistic update (``record.version`` = the version read); returns the new one."""
        ...

    def update_many(self, records: Sequence[StatusRecord]) -> list[StatusRecord]:
        """Optimistic update of many; any stale one → ConflictError and nothing written."""
        ...

    def find_by_number(self, number: str) -> StatusRecord | None:
        """The record holding ``number`` as national, temporary or former number."""
        ...

    def for_child(self, child_id: str) -> list[StatusRecord]:
        """Every record of a child, by id."""
        ...

    def iter(
        self,
        *,
        region_prefix: str = "",
        kindergarten_code: str | None = None,
        states: Iterable[State] | None = None,
        batch_size: int = 1000,
    ) -> Iterator[StatusRecord]:
        """Stream records by id, filtered; memory stays flat whatever the count."""
        ...

    def count(
        self,
        *,
        region_prefix: str = "",
        kindergarten_code: str | None = None,
        states: Iterable[State] | None = None,
    ) -> int:
        """How many records ``iter`` would yield."""
        ...

    def for_children(self, child_ids: Sequence[str]) -> dict[str, list[StatusRecord]]:
        """:meth:`~RecordRepository.for_child` for many ids at once: child id → its records
        by id; children without records are left out."""
        ...


@runtime_checkable
class BulkRecordRepository(RecordRepository, Protocol):
    """The former name of :class:`RecordRepository`, whose bulk methods are now part of it
    (kept for adapters and hosts that import it; integrators without bulk queries mix in
    :mod:`studentstatus.adapters.one_by_one`)."""


@runtime_checkable
class RecordSearch(RecordRepository, Protocol):
    """A :class:`RecordRepository` that answers portal searches (optional).

    :meth:`search` returns the records that meet a
    :class:`~studentstatus.domain.search.RecordQuery` (its scope and every
    filter) with their children, ordered by record id, at most ``limit`` of
    them, and only records whose id is greater than ``after``: keyset paging,
    so that a page costs the same wherever it is.  A store should answer from
    indexes (the SQL adapter: one ``SELECT`` on its keyed look-ups and its
    ``(kindergarten_code, id)`` / ``(region_code, id)`` indexes) and never read
    every record; :meth:`~studentstatus.domain.search.RecordQuery.matches`
    gives the meaning of each filter, ``number`` excepted (the record that
    holds or held it: the index of :meth:`~RecordRepository.find_by_number`).

    :func:`~studentstatus.services.records.search_records` uses it when
    ``uow.records`` has it and falls back to the base look-ups otherwise.  The
    conformance kit checks it (``supports_record_search``).

    >>> from studentstatus.adapters.memory import MemoryStore
    >>> with MemoryStore().unit_of_work() as uow:
    ...     isinstance(uow.records, RecordSearch), uow.records.search(RecordQuery(), limit=5)
    (True, [])
    """

    def search(
        self, query: RecordQuery, *, limit: int, after: str | None = None
    ) -> list[tuple[StatusRecord, Child]]:
        """The first ``limit`` matching ``(record, child)`` pairs with ``record.id > after``
        (every match when ``after`` is ``None``), by record id."""
        ...


class ChangeLog(Protocol):
    """The append-only change log: the truth from which records are projected."""

    def append(self, change: StatusChange) -> None:
        """Append one event; ConflictError if (record_id, seq) exists."""
        ...

    def append_many(self, changes: Iterable[StatusChange]) -> int:
        """Append many events; returns the count."""
        ...

    def for_record(self, record_id: str) -> list[StatusChange]:
        """A record's events ordered by seq."""
        ...

    def iter(
        self,
        *,
        kinds: Iterable[ChangeKind] | None = None,
        effective_from: date | None = None,
        effective_to: date | None = None,
        record_ids: Sequence[str] | None = None,
    ) -> Iterator[StatusChange]:
        """Events filtered by kind and effective date (inclusive), by (record_id, seq)."""
        ...


class RequestRepository(Protocol):
    """Change requests waiting for approval."""

    def add(self, request: ChangeRequest) -> None:
        """Insert; ConflictError if the id exists or the record has an open request."""
        ...

    def get(self, request_id: str) -> ChangeRequest:
        """The request, or NotFoundError."""
        ...

    def update(self, request: ChangeRequest) -> ChangeRequest:
        """Optimistic update."""
        ...

    def open_for_record(self, record_id: str) -> ChangeRequest | None:
        """The record's open request, if any."""
        ...

    def iter(
        self, *, status: RequestStatus | None = None, applicant: str | None = None
    ) -> Iterator[ChangeRequest]:
        """Requests by id, optionally by status and by applicant (``str(operator)``: what an
        operator applied for, read by index on SQL)."""
        ...

    def pending_for(
        self,
        role: Role | str,
        scope: str,
        *,
        due_before: date | None = None,
        after: str | None = None,
        limit: int | None = None,
    ) -> Iterator[ChangeRequest]:
        """An approval queue: the OPEN requests whose pending step is ``role`` at exactly
        ``scope`` (:func:`~studentstatus.domain.approvals.pending_key`), by id.

        ``due_before``: only those whose pending step is due before that day (a step
        without a due date never is); ``after``: only ids greater than it (keyset
        pages); ``limit``: at most that many.  Meant to read only the queue's own
        requests (the SQL adapter keeps the pending step's role, scope and due date
        in indexed columns).
        """
        ...

    def overdue(self, before: date) -> Iterator[ChangeRequest]:
        """The OPEN requests whose pending step was due before ``before``, by id (the
        overdue and lost-child queues; on SQL by the index of the pending step's due date)."""
        ...


class ProblemRepository(Protocol):
    """Problem records (问题学籍)."""

    def add(self, problem: ProblemRecord) -> None:
        """Insert; ConflictError if the id exists."""
        ...

    def add_many(self, problems: Iterable[ProblemRecord]) -> int:
        """Insert many."""
        ...

    def get(self, problem_id: str) -> ProblemRecord:
        """The problem, or NotFoundError."""
        ...

    def update(self, problem: ProblemRecord) -> ProblemRecord:
        """Optimistic update."""
        ...

    def for_record(self, record_id: str) -> list[ProblemRecord]:
        """A record's problems by id."""
        ...

    def iter(
        self,
        *,
        county_prefix: str = "",
        statuses: Iterable[ProblemStatus] | None = None,
        kinds: Iterable[ProblemKind] | None = None,
        kindergarten_code: str | None = None,
    ) -> Iterator[ProblemRecord]:
        """Problems by id, filtered (``kindergarten_code``: one kindergarten's)."""
        ...

    def update_many(self, problems: Sequence[ProblemRecord]) -> list[ProblemRecord]:
        """Optimistic update of many = :meth:`update` in order; any stale (or twice-named)
        problem → ConflictError, a missing one → NotFoundError, and nothing written."""
        ...

    def for_records(
        self,
        record_ids: Sequence[str],
        *,
        statuses: Iterable[ProblemStatus] | None = None,
        kinds: Iterable[ProblemKind] | None = None,
    ) -> dict[str, list[ProblemRecord]]:
        """:meth:`for_record` for many ids at once, filtered by status and kind: record id →
        its problems by id; records without (matching) problems are left out."""
        ...


@runtime_checkable
class BulkProblemRepository(ProblemRepository, Protocol):
    """The former name of :class:`ProblemRepository`, whose bulk methods are now part of it
    (kept for adapters and hosts that import it; integrators without bulk queries mix in
    :mod:`studentstatus.adapters.one_by_one`)."""


class NumberRegistry(Protocol):
    """Every number ever issued (G, J, L): unique forever, resolvable to its record."""

    def claim(self, issued: IssuedNumber) -> None:
        """Bind a number to a record; ConflictError if the number was ever issued."""
        ...

    def claim_many(self, issued: Iterable[IssuedNumber]) -> int:
        """Bind many numbers; any taken one → ConflictError and nothing written."""
        ...

    def resolve(self, number: str) -> IssuedNumber | None:
        """Who holds (or held) ``number``."""
        ...

    def next_sequence(self, region_code: str, birth_date: date) -> int:
        """Atomically allocate the next J-number sequence (1, 2, …) for (region, birth date)."""
        ...

    def for_record(self, record_id: str) -> list[IssuedNumber]:
        """Numbers bound to a record, by issue time."""
        ...

    def with_prefix(self, prefix: str) -> Iterator[str]:
        """Every number ever issued that starts with ``prefix`` (non-empty), in order,
        streamed: a bulk import reads the temporary numbers of its regions
        (``"L" + region code``) through it, an index range on SQL."""
        ...

    def next_sequences(self, keys: Sequence[tuple[str, date]]) -> list[int]:
        """:meth:`~NumberRegistry.next_sequence` for each ``(region_code, birth_date)`` of
        ``keys`` in order (a key may repeat): the same values, atomically."""
        ...


@runtime_checkable
class BulkNumberRegistry(NumberRegistry, Protocol):
    """The former name of :class:`NumberRegistry`, whose bulk methods are now part of it
    (kept for adapters and hosts that import it; integrators without bulk queries mix in
    :mod:`studentstatus.adapters.one_by_one`)."""


@runtime_checkable
class IdentityClaims(Protocol):
    """Claims on identity keys: the point where registrations of one person serialise.

    Keys are :func:`~studentstatus.domain.claims.claim_key` strings (32 hex
    digits).  :meth:`claim` adds one claim per occurrence of a key and returns
    how many claims each key had before; on a store where units of work run
    concurrently it also **locks each key until the unit ends** (a second unit
    claiming the same key waits for the first to commit or roll back), and a
    read made after the claim sees what the unit that held the key committed.
    Claims are never removed: a count above zero means "a record of this key
    may exist; look it up".  See :mod:`studentstatus.domain.claims`.

    >>> from studentstatus.adapters.memory import MemoryStore
    >>> with MemoryStore().unit_of_work() as uow:
    ...     uow.claims.claim(["k1", "k2", "k1"]), uow.claims.claim(["k1"])
    ({'k1': 0, 'k2': 0}, {'k1': 2})
    """

    def claim(self, keys: Sequence[str]) -> dict[str, int]:
        """Claim every key of ``keys`` (in sorted order, so that two units claiming
        overlapping sets lock them in the same order); return, for each distinct key,
        the number of claims it had before this call."""
        ...


class RosterRepository(Protocol):
    """Children of unlicensed kindergartens, recorded by counties."""

    def add(self, entry: RosterEntry) -> None:
        """Insert; ConflictError if the id exists."""
        ...

    def iter(self, *, county_prefix: str = "") -> Iterator[RosterEntry]:
        """Entries by id."""
        ...


class AttendanceRepository(Protocol):
    """Daily attendance; corrections are later entries for the same (record, day)."""

    def add_many(self, entries: Iterable[AttendanceEntry]) -> int:
        """Append entries."""
        ...

    def for_record(
        self, record_id: str, *, start: date | None = None, end: date | None = None
    ) -> list[AttendanceEntry]:
        """Current (latest) entry per day for a record, by day."""
        ...

    def history(self, record_id: str, day: date) -> list[AttendanceEntry]:
        """Every entry recorded for (record, day), oldest first."""
        ...

    def for_records(
        self, record_ids: Sequence[str], *, start: date | None = None, end: date | None = None
    ) -> dict[str, list[AttendanceEntry]]:
        """:meth:`~AttendanceRepository.for_record` of each id that has entries, by id."""
        ...


@runtime_checkable
class BulkAttendanceRepository(AttendanceRepository, Protocol):
    """The former name of :class:`AttendanceRepository`, whose bulk methods are now part of it
    (kept for adapters and hosts that import it; integrators without bulk queries mix in
    :mod:`studentstatus.adapters.one_by_one`)."""


class AuditLog(Protocol):
    """Append-only, hash-chained audit entries, one chain per writer scope (the chains
    are computed by the domain: :mod:`studentstatus.domain.audit`).

    Entries carry their chain (``AuditEntry.chain``); ``seq`` counts within a
    chain.  The log keeps each chain's head — ``(seq, hash)`` of its last entry —
    moved with every append in the same unit of work, so that verification can
    tell a chain cut short at its end (:meth:`heads`).
    """

    def append(self, entry: AuditEntry) -> None:
        """Append; ConflictError if ``(chain, seq)`` exists."""
        ...

    def append_many(self, entries: Iterable[AuditEntry]) -> int:
        """Append many (of any chains); ConflictError if a ``(chain, seq)`` exists."""
        ...

    def last(self, chain: str = "") -> AuditEntry | None:
        """The entry of ``chain`` with the highest seq (``None``: the chain is empty)."""
        ...

    def iter(self, chain: str | None = None) -> Iterator[AuditEntry]:
        """Every entry by ``(chain, seq)``, or only ``chain``'s entries by seq."""
        ...

    def heads(self) -> dict[str, tuple[int, str]]:
        """Each chain's head: chain → ``(seq, hash)`` of its last entry (the highest
        ``seq`` appended; chains without entries are left out)."""
        ...


AuditEventFields = tuple[str, str, str, str, Mapping[str, Any], Mapping[str, Any]]
"""An audit event before sealing: ``(operator, action, subject, reason, before, after)``."""


@runtime_checkable
class SealingAuditLog(AuditLog, Protocol):
    """An audit log that seals events itself (optional): bulk runs log one entry per row.

    :meth:`seal_and_append` must store exactly the entries that sealing each
    chain's events after its last entry would
    (``group_by_chain`` then, per chain, ``append_many(seal_events(last(chain),
    at, events, chain=chain))``: :mod:`~studentstatus.domain.audit`), hashes
    included, and raise ``ConflictError`` the same way when another unit took
    the next ``seq`` of a chain — or wait for that unit and seal after it; the
    conformance kit checks it (``AuditContract``).  An adapter
    gains from it when it can write the sealed fields
    (:func:`~studentstatus.domain.audit.seal_rows`) without building an
    :class:`~studentstatus.domain.model.AuditEntry` of each.

    >>> from studentstatus.adapters.memory import MemoryStore
    >>> with MemoryStore().unit_of_work() as uow:
    ...     isinstance(uow.audit, SealingAuditLog)
    False
    """

    def seal_and_append(self, events: Iterable[AuditEventFields], *, at: datetime) -> int:
        """Seal ``events`` onto the ends of their operators' chains, all at ``at``, and
        append them; returns the count (under :attr:`KeyedAuditLog.key` when the log has
        one)."""
        ...


@runtime_checkable
class KeyedAuditLog(AuditLog, Protocol):
    """An audit log that carries the host's key (optional): new entries are sealed under it.

    The key is the host's (``MemoryStore(audit_key=…)``, ``SqlStore(…, audit_key=…)``,
    ``open_store(url, audit_key=…)``) and stays in the process: it is never stored
    with the log.  ``services.audit`` seals every event under ``uow.audit.key``
    (a :class:`SealingAuditLog` seals under it itself) and verifies with it; a log
    without the attribute is unkeyed.

    >>> from studentstatus.adapters.memory import MemoryStore
    >>> with MemoryStore(audit_key=b"0123456789abcdef-demo").unit_of_work() as uow:
    ...     isinstance(uow.audit, KeyedAuditLog), uow.audit.key
    (True, AuditKey(id='ab927661'))
    """

    @property
    def key(self) -> AuditKey | None:
        """The host's key (``None``: entries are sealed with the public SHA-256)."""
        ...


@runtime_checkable
class KeyedStore(Protocol):
    """A store built with the host's audit key (optional): ``audit verify`` and the
    checkpoints use it (``services.audit.store_key``).

    >>> from studentstatus.adapters.memory import MemoryStore
    >>> isinstance(MemoryStore(), KeyedStore)
    True
    """

    @property
    def audit_key(self) -> AuditKey | None:
        """The host's key, or ``None`` for an unkeyed store."""
        ...


@runtime_checkable
class BatchingEncoder(Protocol):
    """A :class:`RowEncoder` that says how many encoded entities an import gathers before
    writing them (``0``: every chunk as it comes; optional, default
    ``services.intake.WRITE_BATCH``)."""

    @property
    def write_batch(self) -> int:
        """Entities gathered per write."""
        ...


@runtime_checkable
class UnitOfWork(Protocol):
    """One atomic unit: repositories plus commit/rollback.

    The repositories are read-only members: an adapter may hold them as plain
    attributes of its own, more specific types (a ``SqlUnitOfWork`` is a
    ``UnitOfWork`` to ``mypy --strict``).

    >>> # with store.unit_of_work() as uow:
    >>> #     uow.records.add(record); uow.changes.append(event); uow.commit()
    """

    @property
    def kindergartens(self) -> KindergartenRepository:
        """The licensed kindergartens."""
        ...

    @property
    def children(self) -> ChildRepository:
        """The children."""
        ...

    @property
    def records(self) -> RecordRepository:
        """The status records."""
        ...

    @property
    def changes(self) -> ChangeLog:
        """The change log (every status change, in order per record)."""
        ...

    @property
    def requests(self) -> RequestRepository:
        """Change requests and their approval steps."""
        ...

    @property
    def problems(self) -> ProblemRepository:
        """Problem records (问题学籍)."""
        ...

    @property
    def numbers(self) -> NumberRegistry:
        """Issued national and temporary numbers."""
        ...

    @property
    def roster(self) -> RosterRepository:
        """The county's roster of children at unlicensed kindergartens."""
        ...

    @property
    def attendance(self) -> AttendanceRepository:
        """Daily attendance."""
        ...

    @property
    def audit(self) -> AuditLog:
        """The audit log."""
        ...

    @property
    def claims(self) -> IdentityClaims:
        """Identity claims (one person, one status)."""
        ...

    def __enter__(self) -> Self:
        """Begin."""
        ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Roll back whatever was not committed."""
        ...

    def commit(self) -> None:
        """Make every write of this unit durable and visible, atomically."""
        ...

    def rollback(self) -> None:
        """Discard every write since the last commit."""
        ...


class RowEncoder(Protocol):
    """Turns entities into a store's own ready-to-write rows, in any process.

    Made by :meth:`PreparedWrites.row_encoder`; it must pickle (an import with
    checker processes sends it to them once) and needs no connection.  The
    value :meth:`encode` returns is opaque to services: they pass it back to
    :meth:`PreparedWrites.write_prepared` unchanged.

    Optional attribute ``write_batch`` (an ``int``): how many encoded entities
    an import gathers over its chunks before writing them (``0``: every chunk
    as it comes; without it, :data:`~studentstatus.services.intake.WRITE_BATCH`).
    """

    def encode(self, kind: str, entity: object) -> object:
        """The rows of one entity of ``kind``: ``"children"`` (a
        :class:`~studentstatus.domain.model.Child`), ``"records"``
        (a :class:`~studentstatus.domain.model.StatusRecord`, with its numbers),
        ``"changes"`` (a :class:`~studentstatus.domain.model.StatusChange`) or
        ``"numbers"`` (a claimed :class:`~studentstatus.domain.model.IssuedNumber`)."""
        ...


@attrs.frozen
class ReportScope:
    """Which records a report covers: a region prefix, optionally one kindergarten.

    >>> ReportScope("1101").kindergarten_code is None
    True
    """

    region_prefix: str
    kindergarten_code: str | None = None


Groups = dict[tuple[Any, ...], int]
"""Grouped counts: key tuple → count."""


class ReportSource(Protocol):
    """Where the grouped counts of a monitoring report come from.

    ``services.reports.PortReportSource`` computes them through the repositories of
    any unit of work; a store that can count in its own engine offers a faster one
    through :class:`ReportingUnitOfWork` (the SQL adapter: ``GROUP BY`` queries).
    Both must give the same counts (the conformance kit's ``ReportSourceContract``).
    """

    def enrolment(self, scope: ReportScope) -> dict[str, Groups]:
        """ACTIVE records in scope grouped by each of ``services.reports.DIMENSIONS``.

        Keys: ``county_type`` (record region_code, kindergarten type value or
        None, inclusive or None), ``kindergarten`` (code,), ``grade_sex``
        (grade value or None, sex value or None), ``birth_date`` (date or
        None,), ``migrant`` (hukou_region, record region_code, hukou_rural).
        """
        ...

    def changes_by_kind(self, scope: ReportScope, start: date, end: date) -> Groups:
        """Change-log events with effective date in [start, end] of records in scope, by kind."""
        ...

    def problems(self, scope: ReportScope) -> Groups:
        """Problem records of the scope by (kind, status)."""
        ...

    def attendance_by_day(self, scope: ReportScope, start: date, end: date) -> Groups:
        """Current attendance entries of records in scope by (day, status), days in [start, end]."""
        ...


@runtime_checkable
class ReportingUnitOfWork(Protocol):
    """A unit of work that computes report counts itself (optional capability).

    ``services.reports.build_report`` uses :meth:`report_source` when the unit of
    work has it, and counts through the repositories otherwise.

    >>> from studentstatus.adapters.memory import MemoryStore
    >>> with MemoryStore().unit_of_work() as uow:
    ...     isinstance(uow, ReportingUnitOfWork)
    False
    """

    def report_source(self) -> ReportSource:
        """A :class:`ReportSource` reading this unit's transaction."""
        ...


@runtime_checkable
class FieldUpdates(Protocol):
    """A record repository that rewrites only named fields (optional capability).

    ``update_fields(records, fields)`` = ``update_many(records)`` for a caller that knows
    which fields changed (the rollover: its events list them), with the same guarantees
    (a stale record → ``ConflictError``, a missing one → ``NotFoundError``, nothing
    written).  The conformance kit's ``FieldUpdatesContract`` checks it.

    >>> from studentstatus.adapters.memory import MemoryStore
    >>> with MemoryStore().unit_of_work() as uow:
    ...     isinstance(uow.records, FieldUpdates)
    False
    """

    def update_fields(self, records: Sequence[StatusRecord], fields: Iterable[str]) -> int:
        """Optimistic update writing only ``fields`` (and the version); returns the count."""
        ...


@runtime_checkable
class SetBasedRollover(Protocol):
    """A record repository that applies the common year-end rollover in the database
    (optional capability; the SQL adapter).

    The records a :class:`~studentstatus.domain.rollover.RolloverRule` covers are
    promoted or graduated set-based (``rollover_covered`` lists them, ``rollover_write``
    writes them); the rest go through the status machine (``rollover_rest``);
    ``rollover_settled`` counts those the rollover leaves alone.  The outcome must equal
    the machine's record by record: the conformance kit's ``SetBasedRolloverContract``
    compares the store with a memory store.

    >>> from studentstatus.adapters.memory import MemoryStore
    >>> with MemoryStore().unit_of_work() as uow:
    ...     isinstance(uow.records, SetBasedRollover)
    False
    """

    def rollover_rest(
        self,
        rule: RolloverRule,
        *,
        region_prefix: str = "",
        kindergarten_code: str | None = None,
        batch_size: int = 1000,
        skip_settled: bool = False,
    ) -> Iterator[StatusRecord]:
        """ACTIVE records of the scope that ``rule`` does not cover, by id."""
        ...

    def rollover_settled(
        self, rule: RolloverRule, *, region_prefix: str = "", kindergarten_code: str | None = None
    ) -> dict[str, int]:
        """Counts of ``done``, ``repeat``, ``new`` and ``machine`` records of the scope."""
        ...

    def rollover_covered(
        self,
        rule: RolloverRule,
        *,
        region_prefix: str = "",
        kindergarten_code: str | None = None,
        batch_size: int = 5000,
    ) -> Iterator[list[tuple[str, int, str, str]]]:
        """Batches of ``(record_id, seq, kindergarten_code, grade)`` of the covered records."""
        ...

    def rollover_write(
        self,
        rule: RolloverRule,
        *,
        region_prefix: str = "",
        kindergarten_code: str | None = None,
        expected: int,
    ) -> int:
        """Write the covered records' events and updates; ``ConflictError`` unless exactly
        ``expected`` rows are written."""
        ...


@runtime_checkable
class PreparedWrites(Protocol):
    """A unit of work that writes rows prepared by a :class:`RowEncoder` (optional).

    Bulk intake with checker processes uses it: the processes that check the
    rows also encode them (for PostgreSQL: the lines of a ``COPY``), and the
    importing process only passes the finished rows on.  Writing the encoded
    entities must store exactly what ``add_many`` / ``append_many`` /
    ``claim_many`` of the same entities would (the conformance kit checks it,
    ``supports_prepared_writes``), including ``ConflictError`` on a taken key.
    ``row_encoder`` may return ``None`` (e.g. a schema it cannot encode for):
    then services write entities as usual.

    >>> from studentstatus.adapters.memory import MemoryStore
    >>> with MemoryStore().unit_of_work() as uow:
    ...     isinstance(uow, PreparedWrites)
    False
    """

    def row_encoder(self) -> RowEncoder | None:
        """This unit's encoder, or ``None`` when it has none."""
        ...

    def write_prepared(self, batches: Sequence[tuple[str, Sequence[object]]]) -> int:
        """Write ``(kind, encoded entities)`` batches in order, all or nothing; returns
        the number of entities written."""
        ...


class Store(Protocol):
    """A storage backend: hands out units of work."""

    def unit_of_work(self) -> UnitOfWork:
        """A new unit of work (use it as a context manager)."""
        ...

    def close(self) -> None:
        """Release connections, locks and files."""
        ...


class VerificationQuery(Protocol):
    """What the population registry is asked about one child."""

    @property
    def number(self) -> str:
        """The resident ID number."""
        ...

    @property
    def name(self) -> str:
        """The child's name."""
        ...

    @property
    def sex(self) -> str:
        """``M`` or ``F``."""
        ...

    @property
    def birth_date(self) -> date:
        """Birth date."""
        ...


class PopulationRegistry(Protocol):
    """The public-security population registry (公安人口库), or an extract of it."""

    def verify(self, batch: Sequence[VerificationQuery]) -> Mapping[str, VerificationResult]:
        """One result per queried number (keyed by number)."""
        ...


@runtime_checkable
class SkippingRegistry(PopulationRegistry, Protocol):
    """A registry extract that skipped rows it could not use (optional): ``verify`` reports
    them by reason (``registry_skipped``), e.g. a CSV extract's malformed rows.

    >>> from studentstatus.adapters.population import MemoryPopulationRegistry
    >>> isinstance(MemoryPopulationRegistry([]), SkippingRegistry)
    True
    """

    @property
    def skipped_by(self) -> Mapping[str, int]:
        """Skipped rows, by reason code."""
        ...


class CaseRepository(Protocol):
    """Dropout-control cases (控辍保学台账) of :mod:`studentstatus.domain.monitoring`.

    Added for monitoring; adapters that store cases expose it as ``uow.cases``
    (see :class:`CaseUnitOfWork`).  Same rules as the other repositories:
    ConflictError on a duplicate id or a stale version, NotFoundError on ``get``.
    """

    def add(self, case: DropoutCase) -> None:
        """Insert; ConflictError if the id exists."""
        ...

    def add_many(self, cases: Iterable[DropoutCase]) -> int:
        """Insert many; returns the count."""
        ...

    def get(self, case_id: str) -> DropoutCase:
        """The case, or NotFoundError."""
        ...

    def update(self, case: DropoutCase) -> DropoutCase:
        """Optimistic update; returns the stored case with its new version."""
        ...

    def update_many(self, cases: Sequence[DropoutCase]) -> list[DropoutCase]:
        """Optimistic update of many; any stale one → ConflictError and nothing written."""
        ...

    def for_record(self, record_id: str) -> list[DropoutCase]:
        """A record's cases, by id."""
        ...

    def iter(
        self,
        *,
        county_prefix: str = "",
        statuses: Iterable[CaseStatus] | None = None,
    ) -> Iterator[DropoutCase]:
        """Cases by id, filtered by county prefix and status."""
        ...


@runtime_checkable
class CaseUnitOfWork(UnitOfWork, Protocol):
    """A unit of work that also stores dropout cases (``cases``).

    Kept apart from :class:`UnitOfWork` so that stores written before cases
    existed still satisfy the base protocol; the monitoring services need this one.
    """

    @property
    def cases(self) -> CaseRepository:
        """Dropout cases."""
        ...


@runtime_checkable
class FederationLink(Protocol):
    """A provincial store's side of the two-level federation (PostgreSQL only; shipped:
    :class:`studentstatus.adapters.sql.federation.ProvinceLink`).

    Every method that takes ``uow`` works inside that open unit of work, so a message
    is marked applied, its effect written and its answer sent in one transaction:
    applied exactly once, or not at all.
    """

    province: str
    """The two-digit code of this store's province."""

    def ident(self, identity_key: tuple[str, ...]) -> str:
        """The national identity hash of a key under this province's national key."""
        ...

    def seal_number(self, transfer_id: str, number: str) -> str:
        """A national number sealed for a transfer's message (the hub cannot read it)."""
        ...

    def open_number(self, transfer_id: str, sealed: str) -> str:
        """A number :meth:`seal_number` sealed in another province."""
        ...

    def send(self, uow: UnitOfWork, message: Message) -> None:
        """Put ``message`` into this province's outbox (replicated to the hub)."""
        ...

    def next_messages(self, uow: UnitOfWork, limit: int) -> list[Message]:
        """Up to ``limit`` unapplied messages to this province, oldest first, locked for
        this unit (skipping those another unit holds)."""
        ...

    def mark_applied(self, uow: UnitOfWork, message_id: str) -> bool:
        """Mark a message applied; ``False`` if it was already (then apply nothing)."""
        ...

    def live_records(self, uow: UnitOfWork, ident: str) -> list[str]:
        """Ids of this province's live records whose child has national hash ``ident``."""
        ...

    def records_with(self, uow: UnitOfWork, ident: str) -> list[str]:
        """Ids of this province's records in any state whose child has hash ``ident``."""
        ...

    def add_transfer(self, uow: UnitOfWork, transfer: Transfer) -> None:
        """Store a new transfer row (ConflictError if its id exists)."""
        ...

    def get_transfer(self, uow: UnitOfWork, transfer_id: str) -> Transfer | None:
        """A transfer row by id, locked for this unit; ``None`` if there is none."""
        ...

    def save_transfer(self, uow: UnitOfWork, transfer: Transfer) -> None:
        """Update a transfer row's status and decision fields."""
        ...

    def list_transfers(
        self,
        uow: UnitOfWork,
        *,
        region_prefix: str = "",
        kindergarten_code: str | None = None,
        status: TransferStatus | None = None,
        limit: int = 100,
    ) -> list[Transfer]:
        """Transfer rows by id whose county starts with ``region_prefix`` (and of one
        kindergarten, one status)."""
        ...


@runtime_checkable
class NationalHub(Protocol):
    """The national hub (shipped: :class:`studentstatus.adapters.sql.federation.Hub`)."""

    def provinces(self) -> list[str]:
        """The provinces the hub subscribes to."""
        ...

    def dedupe(self) -> tuple[int, int]:
        """Find identity hashes live in two or more provinces and send each province a
        notice (idempotent); returns (findings, new notices)."""
        ...

    def counts(self) -> dict[str, dict[str, dict[str, int]]]:
        """Per province: ACTIVE records by county, grade and sex, and problems by
        ``KIND/STATUS``, as the hub holds them (``{"44": {"by_county": {...}, ...}}``)."""
        ...
