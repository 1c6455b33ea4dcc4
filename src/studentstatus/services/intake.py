"""Child intake (入园建籍): check rows completely, register PENDING records with an L number.

:func:`import_children` takes a CSV file (path or binary stream) or rows
already read by :func:`studentstatus.services.csvio.read_csv`; one row per
child with the columns of :data:`~studentstatus.services.csvio.CHILD_COLUMNS`
(Chinese headers accepted).  :func:`register_child` is the single-child form
for portals.

Rules:

* **Who**: a kindergarten registers its own children; a county may register
  the children of the kindergartens in its county on their behalf.  A row of
  a kindergarten outside the operator's scope is rejected ``out_of_scope``.
* **Every row is checked completely**: every violation is its own
  :class:`Rejection` ``(row, field, code, message_zh, message_en)``, rows
  numbered from 1 for the first data row; ``field`` is the CSV column.
* **Accepted rows** become ``PENDING`` records through the status machine
  (``REGISTER``) with a temporary ``L`` number claimed in the number registry.
* **Unlicensed kindergarten** (no valid licence on the entry date):
  ``kindergarten_unlicensed``; with ``unlicensed_roster=True`` (counties only)
  such children go on the county's unlicensed roster instead (no status, no
  number).  An unknown kindergarten code is ``kindergarten_unknown``.
* **Invalid ID numbers**: a document number that fails its check character,
  its date or its region is accepted with an ``INVALID_ID`` problem when
  ``policy.invalid_id == "problem"`` (the default, as the national system
  does) and rejected with the identity check's code otherwise.  Numbers of
  the wrong length or format are always rejected.
* **Duplicates**, inside the file and against the store: the same document
  number in two live records → a ``DUPLICATE_ID`` problem on both; children
  without a document with the same name, sex and birth date →
  ``SUSPECTED_DUPLICATE`` on both.  Problems are due on
  ``policy.problem_due_month/day`` after the current school year.

**Unit of work: the whole file.**  Every accepted row of a file is written in
one unit of work, in chunks of ``chunk_size`` rows through the bulk methods
(``add_many``, ``append_many``, ``claim_many``); the unit commits after the
last row.  If the store fails anywhere (or the process dies), nothing of the
file is written and the error propagates: run the import again.  Rejected
rows never write anything.

**Duplicates are found through identity claims**
(:mod:`studentstatus.domain.claims`): each chunk claims the identity keys of
its rows (sorted, one statement) before it looks for other records; only keys
that were claimed before are looked up, all at once.  A claim locks its key
until the import commits, so a concurrent registration of the same child waits
for the import and then finds its records (and the other way round): one
person, one status, held by the database.  Two imports whose files share
children may deadlock on their claims; the database undoes one of them, which
raises :class:`~studentstatus.errors.TryAgain` having written nothing.

**Memory** stays flat in the number of rows: rows are streamed, and the only
per-row state kept is a Bloom filter of the numbers the store and the file hold
(2 bytes a row, about 0.25% false positives; 5 MiB for a million numbers), so
that temporary-number draws need no look-up each; a false positive costs one
more draw.  The filter is filled from the store's records at the start of each
import (cheap on an empty store, linear in the store's size otherwise): a bulk
import pays for it, :func:`register_child` does not.  Accepted records are passed to
``on_record`` as they are written (the CLI spools them to a temporary file)
and collected in the report only when ``collect_records`` is true.

**Checker processes** (``workers=N``, file paths only): the rows are read and
checked in ``N`` separate processes while this one looks for duplicates, opens
problems, seals the audit chain and writes — the store and its unit of work
never leave this process, and the result is the one an import in one process
gives (same rejections in the same order, same problems, same records, written
in the same chunks), except for the random ids and L-number digits, drawn from
generators seeded from ``rt.rng``.  Rows travel from the workers in chunks of
at most :data:`WORKER_CHUNK` rows, the first ones smaller so the importer can
start early.  Starting a process costs about half a second (a new interpreter
importing the library); idle ones are kept for the next imports of this
process (:func:`stop_workers` ends them; a forked child does not inherit
them).  Worth it for files of tens of thousands of rows on a machine with a
core to spare, with ``chunk_size`` well under the file's size (the importer
looks for duplicates every ``chunk_size`` accepted rows, as in one process); a
script that imports with workers needs the usual ``if __name__ == "__main__":``
guard (the processes are started with ``spawn``).  On a store whose unit of
work writes prepared rows (:class:`~studentstatus.ports.PreparedWrites`: the
SQL adapter on PostgreSQL and SQLite) the checker processes also encode each
accepted child, record, event and L-number claim (``COPY`` text; SQLite:
``executemany`` parameters, written chunk by chunk), and on PostgreSQL the import
gathers them over its chunks and writes every :data:`WRITE_BATCH` rows (one ``COPY``
per table; until then its duplicate search looks among them too), and every
chunk once fewer than :data:`WRITE_TAIL` rows are left (the last write, which
no checking overlaps, stays small; estimated from the bytes read so far); problems
and audit entries are written chunk by chunk as always.  See
:mod:`studentstatus.services._parallel` for the protocol.  The checker
processes run at a lower scheduling priority (``nice +5``): the import and the
database server take turns, and that chain decides when the import ends.

**Several files** (:func:`import_files`): each file is its own import and unit
of work, in turn; with ``workers`` the checker processes get every file at the
start and check the next one while this process writes the last, so the end of
each file (its last writes and commit) overlaps the next file's checking.

**Speed**: duplicates are looked up once per chunk (bulk repository methods
when the store offers them), and while an import runs the cyclic garbage
collector's youngest generation is collected every 50,000 allocations instead
of every 700 (a process-wide setting, restored when the last running import
ends): an import allocates millions of short-lived objects, and the default
collections cost about a tenth of its CPU.

>>> import random
>>> from datetime import date, datetime, timezone
>>> from studentstatus.adapters.memory import MemoryStore
>>> from studentstatus.domain.enums import KindergartenType
>>> from studentstatus.domain.jurisdiction import Operator
>>> from studentstatus.domain.model import Kindergarten, Licence
>>> from studentstatus.services.runtime import FixedClock, Runtime
>>> store = MemoryStore()
>>> rt = Runtime(store, FixedClock(datetime(2024, 9, 2, tzinfo=timezone.utc)), random.Random(1))
>>> kg = Kindergarten("1111000001", "12100000400000624D", "阳光幼儿园", "110105",
...                   KindergartenType.PUBLIC,
...                   licences=(Licence("L1", "局", date(2020, 1, 1), date(2030, 12, 31)),))
>>> with store.unit_of_work() as uow:
...     uow.kindergartens.add(kg); uow.commit()
>>> row = {"kindergarten_code": "1111000001", "name": "王小明", "sex": "男",
...        "birth_date": "2020-03-15", "id_type": "resident", "id_number": "110105202003150038",
...        "guardian_name": "王芳", "guardian_relation": "mother",
...        "guardian_phone": "13800138000", "entry_date": "2024-09-01", "grade": "中班"}
>>> report = import_children(rt, Operator.parse("kindergarten:1111000001"), [row, dict(row)])
>>> report.accepted, [r.code for r in report.rejected], report.problems
(2, [], {'DUPLICATE_ID': 2})
>>> report.records[0]["state"], report.records[0]["temp_number"][:15]
('PENDING', 'L11010520200315')
>>> bad = dict(row, sex="X", grade="博士班")
>>> [(r.row, r.field, r.code) for r in import_children(
...     rt, Operator.parse("kindergarten:1111000001"), [bad]).rejected]
[(1, 'grade', 'grade_invalid'), (1, 'sex', 'sex_invalid')]
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import logging
import os
import re
import tempfile
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import date, datetime
from typing import IO, TYPE_CHECKING, Any, NamedTuple, cast

import attrs

from studentstatus import ids, phones
from studentstatus.domain import claims as _claims_module
from studentstatus.domain import numbers as national
from studentstatus.domain.age import grade_violations, school_year_of
from studentstatus.domain.child import build_child, check_child
from studentstatus.domain.claims import claim_key, compact_number, identity_key
from studentstatus.domain.enums import (
    ChangeKind,
    Grade,
    NumberKind,
    ProblemKind,
    ProblemStatus,
    Role,
    Sex,
    State,
)
from studentstatus.domain.jurisdiction import Operator
from studentstatus.domain.kindergarten import licence_violations
from studentstatus.domain.machine import Change, Context, apply
from studentstatus.domain.model import (
    Child,
    DocumentKind,
    Guardian,
    IdentityDocument,
    IssuedNumber,
    Kindergarten,
    ProblemRecord,
    RosterEntry,
    StatusChange,
    StatusRecord,
)
from studentstatus.domain.policy import Policy
from studentstatus.errors import (
    ConflictError,
    InvalidNumber,
    PermissionDenied,
    RuleViolations,
    ValidationError,
    Violation,
)
from studentstatus.ports import (
    AuditEventFields,
    BulkChildRepository,
    BulkProblemRepository,
    BulkRecordRepository,
    PreparedWrites,
    RowEncoder,
    UnitOfWork,
)
from studentstatus.services.audit import audit_fields
from studentstatus.services.csvio import CHILD_ALIASES, CsvRow, parse_bool, parse_date, read_csv
from studentstatus.services.runtime import Runtime

if TYPE_CHECKING:
    from studentstatus.services._parallel import Batch, Spec

__all__ = [
    "INVALID_ID_CODES",
    "REQUIRED_COLUMNS",
    "IntakeReport",
    "Rejection",
    "authorize",
    "chunked",
    "due_date",
    "import_children",
    "import_files",
    "new_problem",
    "register_child",
    "spooled",
    "stop_workers",
]

log = logging.getLogger("studentstatus.services")

REQUIRED_COLUMNS: tuple[str, ...] = (
    "kindergarten_code",
    "name",
    "sex",
    "birth_date",
    "guardian_phone",
    "entry_date",
    "grade",
)
"""Columns a child-intake file must have (the others may be absent)."""

INVALID_ID_CODES: frozenset[str] = frozenset({"checksum", "date", "region", "component"})
"""Identity-check codes that become an INVALID_ID problem under ``invalid_id="problem"``."""

WORKER_CHUNK = 500
"""With ``workers``, rows travel from the checker processes in chunks of at most this many
(the checkers take the chunks in turn, so at the end of a file one of them may still be
checking its last chunk while the others are done: small chunks keep that short)."""

WRITE_BATCH = 25_000
"""With ``workers`` on a store that writes prepared rows (PostgreSQL): how many accepted rows
the import gathers, over its chunks, before writing them (one ``COPY`` per table; about 1 KB
a row on PostgreSQL).  An encoder with a ``write_batch`` attribute sets its own (the SQLite
one: ``0``, every chunk is written as it is: gathering saves SQLite nothing)."""

WRITE_TAIL = 25_000
"""With ``workers`` on such a store: once fewer rows than this seem left in the file (from the
bytes read so far), the import writes every chunk instead of gathering them: the checker
processes are done by the last write, which nothing overlaps, so it is kept small."""

_LIVE = tuple(s for s in State if s.is_live)
_UNRESOLVED = tuple(s for s in ProblemStatus if s is not ProblemStatus.RESOLVED)
_FIELD_MAP = {
    "document.number": "id_number",
    "document.type": "id_type",
    "guardians": "guardian_phone",
}
_GUARDIAN_FIELD = re.compile(r"^guardians\[\d+\](?:\.(\w+))?$")


# --------------------------------------------------------------------------- shared helpers


def authorize(
    operator: Operator,
    action: str,
    subject: Any = None,
    *,
    also: Sequence[str] = (),
) -> None:
    """Check the operator's role for ``action`` (or any of ``also``) and scope over ``subject``.

    A refusal is logged (operator, action, subject id — never an ID number)
    and raised as :class:`~studentstatus.errors.PermissionDenied`.

    >>> authorize(Operator.parse("county:110105"), "approve_record", "110105")
    >>> authorize(Operator.parse("county:110105"), "verify")
    Traceback (most recent call last):
    ...
    studentstatus.errors.PermissionDenied: role_not_allowed: county:110105 may not access ...
    """
    try:
        if not any(operator.can(a) for a in (action, *also)):
            operator.ensure_can(action)
        if subject is not None:
            operator.ensure_covers(subject)
    except PermissionDenied as exc:
        what = getattr(subject, "id", None) or getattr(subject, "school_code", None) or subject
        log.warning(
            "refused: operator=%s action=%s subject=%s code=%s", operator, action, what, exc.code
        )
        raise


def chunked(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    """Split an iterable into lists of at most ``size`` items (streaming).

    >>> [len(c) for c in chunked(range(5), 2)]
    [2, 2, 1]
    """
    chunk: list[Any] = []
    for item in items:
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


@contextmanager
def spooled(ids: Iterable[str], chunk_size: int) -> Iterator[Iterator[list[str]]]:
    """Write ``ids`` to a temporary file, then yield them back in chunks (flat memory).

    Bulk services select the records to work on in one read pass, spool their
    ids, close that unit of work, and then work through the ids chunk by
    chunk, each chunk in its own unit of work.  That is safe on every adapter
    (no writes while a result set is open) and keeps memory flat in N.

    >>> with spooled(["a", "b", "c"], 2) as chunks:
    ...     list(chunks)
    [['a', 'b'], ['c']]
    """
    with tempfile.TemporaryFile("w+", encoding="utf-8") as fh:
        for item in ids:
            fh.write(item + "\n")
        fh.seek(0)
        yield chunked((line.rstrip("\n") for line in fh), chunk_size)


def due_date(today: date, policy: Policy) -> date:
    """When a problem opened on ``today`` is due: ``policy.problem_due_month/day`` (31 July)
    at the end of the current school year.

    >>> due_date(date(2024, 9, 2), Policy()), due_date(date(2025, 3, 1), Policy())
    (datetime.date(2025, 7, 31), datetime.date(2025, 7, 31))
    """
    return date(school_year_of(today, policy) + 1, policy.problem_due_month, policy.problem_due_day)


def new_problem(
    rt: Runtime,
    record: StatusRecord,
    kind: ProblemKind,
    *,
    detail: str = "",
    related: Sequence[str] = (),
) -> ProblemRecord:
    """A new OPEN problem on ``record`` (county = the record's region), due per policy.

    >>> import random
    >>> from studentstatus.adapters.memory import MemoryStore
    >>> rt = Runtime(MemoryStore(), rng=random.Random(0))
    >>> rec = StatusRecord("r1", "c1", "1111000001", "110105", State.ACTIVE, None,
    ...                    date(2023, 9, 1))
    >>> new_problem(rt, rec, ProblemKind.NOT_FOUND).county_code
    '110105'
    """
    now = rt.clock.now()
    return ProblemRecord(
        id=rt.new_id("p"),
        record_id=record.id,
        kind=kind,
        county_code=record.region_code,
        kindergarten_code=record.kindergarten_code,
        opened_at=now,
        due_date=due_date(rt.clock.today(), rt.policy),
        detail=detail,
        related_record_ids=tuple(related),
    )


# --------------------------------------------------------------------------- report


@attrs.frozen
class Rejection:
    """One reason a row was rejected: row number (from 1), CSV column, code, messages.

    >>> Rejection(3, "sex", "sex_invalid", "性别无效", "bad sex").to_dict()["row"]
    3
    """

    row: int
    field: str
    code: str
    message_zh: str
    message_en: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (``row, field, code, message_zh, message_en``)."""
        return {
            "row": self.row,
            "field": self.field,
            "code": self.code,
            "message_zh": self.message_zh,
            "message_en": self.message_en,
        }


@attrs.define
class IntakeReport:
    """What an import did: accepted count, every rejection, problems opened by kind, records.

    ``records`` holds one JSON-ready dict per accepted row (``row``,
    ``record_id``, ``child_id``, ``kindergarten_code``, ``temp_number``,
    ``state``, ``grade``, ``problems``) or rostered row (``roster_id``,
    ``state: null``), unless the import was run with ``collect_records=False``.
    A record's ``problems`` are those known when it was written: a twin met
    in a later chunk adds a problem to the earlier record in the store, which
    the problem list shows.

    >>> IntakeReport().to_dict()
    {'accepted': 0, 'rejected': [], 'problems': {}, 'records': [], 'rostered': 0, 'rows': 0}
    """

    accepted: int = 0
    rejected: list[Rejection] = attrs.field(factory=list)
    problems: dict[str, int] = attrs.field(factory=dict)
    records: list[dict[str, Any]] = attrs.field(factory=list)
    rostered: int = 0
    rows: int = 0

    @property
    def rejected_rows(self) -> int:
        """How many distinct rows were rejected."""
        return len({r.row for r in self.rejected})

    def to_dict(self) -> dict[str, Any]:
        """The JSON document of ``studentstatus import --json``."""
        return {
            "accepted": self.accepted,
            "rejected": [r.to_dict() for r in self.rejected],
            "problems": dict(sorted(self.problems.items())),
            "records": list(self.records),
            "rostered": self.rostered,
            "rows": self.rows,
        }


# --------------------------------------------------------------------------- internals


def _v(code: str, field: str, zh: str, en: str) -> Violation:
    return Violation(code, field, zh, en)


def _column(field: str) -> str:
    if field in _FIELD_MAP:
        return _FIELD_MAP[field]
    m = _GUARDIAN_FIELD.match(field)
    if m:
        return {"name": "guardian_name", "relation": "guardian_relation"}.get(
            m.group(1) or "", "guardian_phone"
        )
    if field in ("child", "kindergarten", "to_kindergarten"):
        return "kindergarten_code" if "kindergarten" in field else ""
    if field == "effective_date":
        return "entry_date"
    return field


_SPACES_AND_HYPHENS = _claims_module._SPACES_AND_HYPHENS
_compact_number = compact_number


class _Ref(NamedTuple):
    """What the writing side needs of a new record: problems, audit entry, outcome.

    A named tuple: built once per accepted row, and sent from a checker process
    as a plain tuple (see :meth:`_Candidate.wire`).
    """

    id: str
    child_id: str
    kindergarten_code: str
    region_code: str
    state: str
    grade: str | None
    temp_number: str | None

    @classmethod
    def of(cls, rec: StatusRecord) -> _Ref:
        return cls(
            rec.id,
            rec.child_id,
            rec.kindergarten_code,
            rec.region_code,
            rec.state._value_,  # the attribute (.value is a slower property)
            rec.grade._value_ if rec.grade is not None else None,
            rec.temp_number,
        )


@attrs.define
class _Candidate:
    """An accepted row: its record's :class:`_Ref`, the duplicate key, the hash of its L
    number, an invalid-ID violation, and either the entities or (``encoded``) the store's
    prepared rows of them: child, record, REGISTER event and L-number claim."""

    row: int
    ref: _Ref
    key: tuple[str, ...]
    number_hash: int  # _number_hash of the L number (ref.temp_number)
    invalid_id: Violation | None = None
    entities: tuple[Child, StatusRecord, StatusChange] | None = None
    encoded: tuple[object, object, object, object] | None = None
    problems: list[str] = attrs.field(factory=list)

    def wire(self) -> tuple[Any, ...]:
        """An encoded candidate as plain tuples, for the pipe from a checker process: pickled
        and unpickled without a Python call per object (:meth:`from_wire` rebuilds it)."""
        return (self.row, tuple(self.ref), self.key, self.number_hash, self.invalid_id,
                self.encoded)  # fmt: skip

    @classmethod
    def from_wire(cls, t: tuple[Any, ...]) -> _Candidate:
        """The candidate :meth:`wire` made the tuple of."""
        return cls(t[0], _Ref._make(t[1]), t[2], t[3], t[4], None, t[5])


_ENCODED = ("children", "records", "changes", "numbers")
"""The kinds of :attr:`_Candidate.encoded`, in order (:class:`~studentstatus.ports.RowEncoder`)."""


@attrs.define
class _Roster:
    row: int
    entry: RosterEntry


def _number_hash(number: str) -> int:
    """A 64-bit hash of a number, the same in every process.

    ``hash(str)`` is salted per process; checker processes test their L-number
    draws against a copy of the import's filter, so the filter uses this one.
    """
    return int.from_bytes(hashlib.blake2b(number.encode(), digest_size=8).digest(), "little")


def _loaded_index(uow: UnitOfWork) -> _Index:
    """The numbers the store holds, in a new filter (a bulk import's start)."""
    index = _Index()
    index.load(uow)
    return index


class _Bloom:
    """A scalable Bloom filter of 64-bit hashes: 16 bits and 4 probes an item, about 0.25%
    false positives in a full layer; the first layer (1 MiB) holds 524,288 items, each next
    one four times the last (so a million items take two layers, 5 MiB).

    A false positive only costs an exact look-up in the store (duplicates) or
    one more random draw (L numbers); there are no false negatives.

    >>> b = _Bloom(bits=1 << 10)
    >>> [b.seen(h) for h in (1, 2, 1, -5, 2**63 - 1, -5)]
    [False, False, True, False, False, True]
    >>> 2 in b, 3 in b
    (True, False)
    """

    def __init__(self, bits: int = 1 << 23) -> None:  # a power of two
        self._layers: list[tuple[bytearray, int]] = []
        self._count = 0
        self._capacity = 0
        self._next_bits = bits
        self._grow()

    def _grow(self) -> None:
        bits = self._next_bits
        self._layers.append((bytearray(bits // 8), bits))
        self._capacity += bits // 16
        self._next_bits = bits * 4

    def add(self, h: int) -> None:
        """Add a hash."""
        if self._count >= self._capacity:
            self._grow()
        data, bits = self._layers[-1]
        mask = bits - 1
        h1 = h & 0xFFFFFFFF
        h2 = ((h >> 32) & 0xFFFFFFFF) | 1
        # four probes h1 + i*h2 (double hashing), unrolled
        p = h1 & mask
        data[p >> 3] |= 1 << (p & 7)
        p = (p + h2) & mask
        data[p >> 3] |= 1 << (p & 7)
        p = (p + h2) & mask
        data[p >> 3] |= 1 << (p & 7)
        p = (p + h2) & mask
        data[p >> 3] |= 1 << (p & 7)
        self._count += 1

    def __contains__(self, h: object) -> bool:
        assert isinstance(h, int)
        return _in_layers(self._layers, h & 0xFFFFFFFF, ((h >> 32) & 0xFFFFFFFF) | 1)

    def seen(self, h: int) -> bool:
        """Add ``h``; whether it may have been added before (never ``False`` when it was).

        ``h in self`` then :meth:`add`, each probe position made once: the
        newest layer's bits are tested and set in one pass.
        """
        if self._count >= self._capacity:
            self._grow()
        self._count += 1
        h1 = h & 0xFFFFFFFF
        h2 = ((h >> 32) & 0xFFFFFFFF) | 1
        layers = self._layers
        found = len(layers) > 1 and _in_layers(layers[:-1], h1, h2)  # older: tested only
        data, bits = layers[-1]
        mask = bits - 1
        p = h1 & mask
        i, b = p >> 3, 1 << (p & 7)
        x = data[i]
        set_before = x & b
        data[i] = x | b
        p = (p + h2) & mask
        i, b = p >> 3, 1 << (p & 7)
        x = data[i]
        set_before = set_before and x & b
        data[i] = x | b
        p = (p + h2) & mask
        i, b = p >> 3, 1 << (p & 7)
        x = data[i]
        set_before = set_before and x & b
        data[i] = x | b
        p = (p + h2) & mask
        i, b = p >> 3, 1 << (p & 7)
        x = data[i]
        set_before = set_before and x & b
        data[i] = x | b
        return found or bool(set_before)


def _in_layers(layers: list[tuple[bytearray, int]], h1: int, h2: int) -> bool:
    """Whether any of ``layers`` has the four probe bits of ``(h1, h2)`` set."""
    for data, bits in layers:
        mask = bits - 1
        p = h1 & mask
        if not data[p >> 3] >> (p & 7) & 1:
            continue
        p = (p + h2) & mask
        if not data[p >> 3] >> (p & 7) & 1:
            continue
        p = (p + h2) & mask
        if not data[p >> 3] >> (p & 7) & 1:
            continue
        p = (p + h2) & mask
        if data[p >> 3] >> (p & 7) & 1:
            return True
    return False


class _Index:
    """A bulk import's Bloom filter of the numbers the store and this file hold, so that
    temporary-number draws need no look-up each (duplicates need none: identity claims)."""

    def __init__(self) -> None:
        self.numbers = _Bloom()

    def load(self, uow: UnitOfWork, batch: int = 5000) -> None:
        if uow.records.count() == 0:
            return
        for rec in uow.records.iter(batch_size=batch):
            for n in (rec.temp_number, rec.national_number, *rec.former_numbers):
                if n:
                    self.numbers.add(_number_hash(n))


def _county_kindergartens(uow: UnitOfWork, operator: Operator) -> dict[str, Kindergarten | None]:
    """A county's kindergartens by school code: one query instead of one per code."""
    return {k.school_code: k for k in uow.kindergartens.iter(region_prefix=operator.scope)}


_key = identity_key


class _Intake:
    def __init__(
        self,
        rt: Runtime,
        operator: Operator,
        uow: UnitOfWork | None,
        *,
        unlicensed_roster: bool,
        on_record: Callable[[dict[str, Any]], None] | None,
        collect_records: bool,
        kindergartens: Mapping[str, Kindergarten | None] | None = None,
        today: date | None = None,
        now: datetime | None = None,
        online: bool = False,
    ) -> None:
        """``uow=None``: the row checks only (a checker process), with ``kindergartens``;
        ``online``: one registration (indexed look-ups only: no filter of the store's
        numbers, kindergartens found one by one)."""
        self.rt = rt
        self.op = operator
        self.op_text = str(operator)
        self.covered: dict[str, bool] = {}  # school code -> in the operator's scope
        self.uow = cast(UnitOfWork, uow)
        self.roster = unlicensed_roster
        self.on_record = on_record
        self.collect = collect_records
        self.today = today if today is not None else rt.clock.today()
        self.now = now if now is not None else rt.clock.now()
        self.due = due_date(self.today, rt.policy)
        self.numbers_rng: Any = rt.rng  # temporary numbers' draws (see _parallel.Residue)
        # With checker processes on a store that writes prepared rows: the store's encoder,
        # and the prepared rows of earlier chunks not written yet (see send()).
        self.encoder: RowEncoder | None = None
        self.unsent: list[tuple[object, object, object, object]] = []
        self.unsent_refs: dict[tuple[str, ...], list[_Ref]] = {}
        self.write_batch = WRITE_BATCH  # the encoder's own ``write_batch``, when it has one
        self.last_stretch = False  # near the end of the file: write every chunk (see send())
        self.kgs: dict[str, Kindergarten | None] = dict(kindergartens or {})
        self.online = online
        if uow is None or online:
            self.index = _Index()
        else:
            if operator.role is Role.COUNTY and len(operator.scope) == 6:
                self.kgs = _county_kindergartens(uow, operator)
            self.index = _loaded_index(uow)
        self.report = IntakeReport()
        self.problem_counts: Counter[str] = Counter()

    # ---- per row

    def kindergarten(self, code: str) -> Kindergarten | None:
        if code not in self.kgs:
            if len(self.kgs) > 50_000:
                self.kgs.clear()
            self.kgs[code] = self.uow.kindergartens.find(code)
        return self.kgs[code]

    def covers(self, kg: Kindergarten) -> bool:
        known = self.covered.get(kg.school_code)
        if known is None:
            known = self.covered[kg.school_code] = self.op.covers_kindergarten(kg)
        return known

    def reject(self, row: int, violations: Iterable[Violation]) -> None:
        items = list(violations)
        absent = {v.field for v in items if v.code == "column_missing"}
        seen: set[tuple[str, str]] = {(f, "required") for f in absent}
        out = []
        for v in items:
            field = _column(v.field)
            if (field, v.code) in seen:
                continue
            seen.add((field, v.code))
            out.append(Rejection(row, field, v.code, v.message_zh, v.message_en))
        out.sort(key=lambda r: (r.field, r.code))
        self.report.rejected.extend(out)

    def check(self, row: CsvRow) -> _Candidate | _Roster | None:
        v = row.values
        out: list[Violation] = list(row.problems)
        policy = self.rt.policy
        code = v.get("kindergarten_code", "")
        kg: Kindergarten | None = None
        if not code:
            out.append(
                _v("required", "kindergarten_code", "缺少幼儿园代码", "the kindergarten is missing")
            )
        else:
            kg = self.kindergarten(code)
            if kg is None and not self.roster:
                out.append(
                    _v(
                        "kindergarten_unknown",
                        "kindergarten_code",
                        "幼儿园代码不存在",
                        "no kindergarten has this school code",
                    )
                )
        if kg is not None and not self.covers(kg):
            out.append(
                _v(
                    "out_of_scope",
                    "kindergarten_code",
                    f"{self.op} 无权为该幼儿园登记",
                    f"{self.op} may not register children of this kindergarten",
                )
            )
        entry: date | None = None
        if not v.get("entry_date"):
            out.append(_v("required", "entry_date", "缺少入园日期", "the entry date is missing"))
        else:
            try:
                entry = parse_date(v["entry_date"])
            except ValueError:
                out.append(
                    _v(
                        "entry_date_invalid",
                        "entry_date",
                        "入园日期无效（YYYY-MM-DD、YYYY/MM/DD或YYYYMMDD）",
                        "invalid entry date (YYYY-MM-DD, YYYY/MM/DD or YYYYMMDD)",
                    )
                )
        grade: Grade | None = None
        if not v.get("grade"):
            out.append(_v("required", "grade", "缺少班级", "the grade is missing"))
        else:
            try:
                grade = Grade.parse(v["grade"])
            except ValueError:
                out.append(
                    _v(
                        "grade_invalid",
                        "grade",
                        "班级应为托班/小班/中班/大班",
                        "grade must be NURSERY/JUNIOR/MIDDLE/SENIOR or 托班/小班/中班/大班",
                    )
                )
        rural = False
        try:
            rural = parse_bool(v.get("hukou_rural", ""))
        except ValueError:
            out.append(
                _v(
                    "hukou_rural_invalid",
                    "hukou_rural",
                    "户口性质无效",
                    "hukou_rural must be yes/no",
                )
            )
        child, child_problems, invalid, checked = self.build(v, rural)
        out.extend(child_problems)
        unlicensed: list[Violation] = []
        if kg is not None and entry is not None:
            unlicensed = licence_violations(kg, entry)
        if self.roster and (kg is None or unlicensed) and code:
            if child is not None and not checked:
                out.extend(self.recheck(child, invalid))
            if out or child is None:
                self.reject(row.number, out)
                return None
            return self.roster_entry(row.number, child, kg, code)
        out.extend(unlicensed)
        if out or child is None or kg is None or entry is None or grade is None:
            if child is not None and not checked:
                out.extend(self.recheck(child, invalid))
            if child is None and grade is not None and entry is not None:
                born = _try_date(v.get("birth_date", ""))
                if born is not None:
                    year = school_year_of(entry, policy)
                    out.extend(grade_violations(born, grade, year, policy))
            self.reject(row.number, out)
            return None
        temp, temp_hash = self.temp_number(kg.region_code, child.birth_date)
        change = Change(
            ChangeKind.REGISTER,
            entry,
            grade=grade,
            operator=self.op_text,
            child_id=child.id,
            temp_number=temp,
        )
        ctx = Context(self.today, policy, kindergarten=kg, child=child)
        try:
            record, event = apply(
                None, change, context=ctx, recorded_at=self.now, record_id=self.rt.new_id("r")
            )
        except RuleViolations as exc:
            self.reject(row.number, exc.violations)
            return None
        self.index.numbers.add(temp_hash)
        return _Candidate(
            row.number, _Ref.of(record), _key(child), temp_hash, invalid, (child, record, event)
        )

    def recheck(self, child: Child, invalid: Violation | None) -> list[Violation]:
        problems = check_child(child, today=self.today)
        if invalid is not None:
            problems = [p for p in problems if p.field != "document.number"]
        return problems

    def fast(
        self, v: Mapping[str, str], rural: bool, child_id: str
    ) -> tuple[Child, Violation | None] | None:
        """Parse a row whose values all parse into an (unchecked) child, or ``None``.

        The checks themselves run once, inside the machine's REGISTER guards
        (or :meth:`recheck` when the row is refused for other reasons); rows
        that do not even parse take :func:`build_child`, which reports them.
        """
        try:
            sex = Sex.parse(v.get("sex", ""))
            born = parse_date(v.get("birth_date", ""))
            number = v.get("id_number", "")
            kind = DocumentKind((v.get("id_type") or ("resident" if number else "none")).lower())
            phone = v.get("guardian_phone", "")
            if not phone:
                return None
            phone = phones.normalize(phone)
        except (ValueError, InvalidNumber):
            return None
        invalid: Violation | None = None
        document: IdentityDocument | None = None
        if kind.value == "none":
            if number:
                return None
        else:
            try:
                number = ids.validate_document(kind, number, today=self.today)
            except InvalidNumber as err:
                if self.rt.policy.invalid_id != "problem" or err.code not in INVALID_ID_CODES:
                    return None
                v_ = err.violation
                invalid = Violation(v_.code, "document.number", v_.message_zh, v_.message_en)
                number = _compact_number(number)
            document = IdentityDocument(kind, number)
        eth = v.get("ethnicity") or None
        if eth is not None and eth.isdigit() and len(eth) == 1:
            eth = "0" + eth
        child = Child(
            child_id,
            v.get("name", "").strip(),
            sex,
            born,
            document,
            nationality=(v.get("nationality") or "CHN").upper(),
            ethnicity=eth,
            hukou_region=v.get("hukou_region") or None,
            hukou_rural=rural,
            residence_region=v.get("residence_region") or None,
            guardians=(
                Guardian(v.get("guardian_name", ""), v.get("guardian_relation", ""), phone),
            ),
        )
        return child, invalid

    def build(
        self, v: Mapping[str, str], rural: bool
    ) -> tuple[Child | None, list[Violation], Violation | None, bool]:
        """(child, violations, invalid-ID violation, whether the child was checked)."""
        child_id = self.rt.new_id("c")
        quick = self.fast(v, rural, child_id)
        if quick is not None:
            return quick[0], [], quick[1], False
        guardians = []
        if v.get("guardian_name") or v.get("guardian_phone") or v.get("guardian_relation"):
            guardians.append(
                {
                    "name": v.get("guardian_name", ""),
                    "relation": v.get("guardian_relation", ""),
                    "phone": v.get("guardian_phone", ""),
                }
            )
        kwargs: dict[str, Any] = {
            "name": v.get("name", ""),
            "sex": v.get("sex", ""),
            "birth_date": v.get("birth_date", ""),
            "nationality": v.get("nationality") or "CHN",
            "ethnicity": v.get("ethnicity") or None,
            "hukou_region": v.get("hukou_region") or None,
            "residence_region": v.get("residence_region") or None,
            "guardians": guardians,
            "hukou_rural": rural,
            "today": self.today,
        }
        doc_type = v.get("id_type") or ("resident" if v.get("id_number") else "none")
        number = v.get("id_number", "")
        child, problems = build_child(
            id=child_id, document_type=doc_type, document_number=number, **kwargs
        )
        if child is not None:
            return child, [], None, True
        doc_problems = [p for p in problems if p.field == "document.number"]
        if (
            self.rt.policy.invalid_id == "problem"
            and doc_problems
            and all(p.code in INVALID_ID_CODES for p in doc_problems)
        ):
            rest = [p for p in problems if p.field != "document.number"]
            if rest:
                return None, problems, None, True
            bare, more = build_child(id=child_id, document_type="none", **kwargs)
            if bare is None:
                return None, more + doc_problems, None, True
            doc = IdentityDocument(DocumentKind(doc_type.lower()), _compact_number(number))
            return attrs.evolve(bare, document=doc), [], doc_problems[0], True
        return None, problems, None, True

    def roster_entry(
        self, row: int, child: Child, kg: Kindergarten | None, code: str
    ) -> _Roster | None:
        county = self.op.scope
        if kg is not None and not self.op.covers_kindergarten(kg):
            return None
        entry = RosterEntry(
            id=self.rt.new_id("u"),
            county_code=county,
            kindergarten_name=kg.name if kg is not None else code,
            child_name=child.name,
            sex=child.sex,
            birth_date=child.birth_date,
            document=child.document,
            recorded_at=self.now,
            operator=str(self.op),
        )
        return _Roster(row, entry)

    def temp_number(self, region: str, born: date) -> tuple[str, int]:
        """A temporary number not in this import's filter, and its :func:`_number_hash`."""
        for _ in range(1000):
            n = national.temporary_number(region, born, self.numbers_rng)
            h = _number_hash(n)
            if self.online:  # one primary-key look-up instead of a filter of the store
                if self.uow.numbers.resolve(n) is None:
                    return n, h
            elif h not in self.index.numbers:
                return n, h
        msg = "no free temporary number for this region and birth date"  # pragma: no cover
        raise RuntimeError(msg)  # pragma: no cover

    def adopt(self, c: _Candidate) -> None:
        """Take a checker process's candidate: note its L number in this import's filter.

        The number is free: the checker drew it against a copy of this
        filter as it was when the import started (the store's numbers), and
        draws of different processes never collide
        (:class:`~studentstatus.services._parallel.Residue`).  This import never
        needs it in the filter; a later import in this process, which starts from
        the filter, does.
        """
        self.index.numbers.add(c.number_hash)

    def encode(self, c: _Candidate) -> None:
        """Replace the candidate's entities by the store's prepared rows of them."""
        assert self.encoder is not None
        assert c.entities is not None
        child, record, event = c.entities
        claim = IssuedNumber(record.temp_number or "", NumberKind.L, record.id, self.now)
        enc = self.encoder.encode
        c.encoded = (
            enc("children", child),
            enc("records", record),
            enc("changes", event),
            enc("numbers", claim),
        )
        c.entities = None

    # ---- per chunk

    def flush(self, chunk: list[_Candidate | _Roster]) -> None:
        uow = self.uow
        cands = [c for c in chunk if isinstance(c, _Candidate)]
        rostered = [c for c in chunk if isinstance(c, _Roster)]
        problems: list[ProblemRecord] = []
        events: list[AuditEventFields] = []  # (operator, action, subject, reason, before, after)
        op = str(self.op)
        local: dict[tuple[str, ...], list[_Candidate]] = {}
        pending_kinds: dict[str, set[ProblemKind]] = {}

        def open_problem(
            rec: StatusRecord | _Ref, kind: ProblemKind, related: Sequence[str]
        ) -> None:
            p = ProblemRecord(
                id=self.rt.new_id("p"),
                record_id=rec.id,
                kind=kind,
                county_code=rec.region_code,
                kindergarten_code=rec.kindergarten_code,
                opened_at=self.now,
                due_date=self.due,
                related_record_ids=tuple(related),
            )
            problems.append(p)
            pending_kinds.setdefault(rec.id, set()).add(kind)
            self.problem_counts[kind.value] += 1
            events.append(
                (op, "problem_open", p.id, "", {}, {"kind": kind.value, "record": rec.id})
            )

        # Claim every key first (domain.claims): the claim waits for any other unit
        # holding the key, so the look-ups below see what it committed.  A key claimed
        # before (by the store's records or an earlier chunk of this file) is looked up,
        # all of them at once; records of earlier chunks not written yet count too.
        ckeys = [claim_key(c.key) for c in cands]
        before = uow.claims.claim(ckeys) if ckeys else {}
        hits = [before[k] > 0 for k in ckeys]
        stored = self.store_matches_many([c.key for c, hit in zip(cands, hits) if hit])
        unsent = self.unsent_refs
        unresolved = self.unresolved_kinds(
            [r.id for rs in stored.values() for r in rs]
            + [r.id for c, hit in zip(cands, hits) if hit for r in unsent.get(c.key, ())]
        )
        for c, hit in zip(cands, hits):
            if c.invalid_id is not None:
                open_problem(c.ref, ProblemKind.INVALID_ID, ())
                c.problems.append(ProblemKind.INVALID_ID.value)
            others: list[StatusRecord | _Ref] = [o.ref for o in local.get(c.key, ())]
            if hit:
                others.extend(unsent.get(c.key, ()))
                others.extend(stored.get(c.key, ()))
            local.setdefault(c.key, []).append(c)
            if not others:
                continue
            kind = ProblemKind.DUPLICATE_ID if c.key[0] == "d" else ProblemKind.SUSPECTED_DUPLICATE
            open_problem(c.ref, kind, [o.id for o in others])
            c.problems.append(kind.value)
            for other in others:
                if kind in pending_kinds.get(other.id, set()):
                    continue
                if kind in unresolved.get(other.id, ()):
                    continue
                open_problem(other, kind, [c.ref.id])
                for o in local.get(c.key, ()):
                    if o.ref.id == other.id:
                        o.problems.append(kind.value)

        no_fields: dict[str, Any] = {}  # shared: sealing reads it, seal_events copies it
        for c in cands:
            ref = c.ref
            events.append(
                (
                    op,
                    "register",
                    ref.id,
                    "",
                    no_fields,
                    {
                        "state": ref.state,
                        "kindergarten_code": ref.kindergarten_code,
                        "grade": ref.grade,
                        "temp_number": ref.temp_number,
                        "child_id": ref.child_id,
                    },
                )
            )
        if cands and self.encoder is not None:
            for c in cands:
                if c.encoded is None:  # checked here, not by a checker process
                    self.encode(c)
                assert c.encoded is not None
                self.unsent.append(c.encoded)
                self.unsent_refs.setdefault(c.key, []).append(c.ref)
            if len(self.unsent) >= self.write_batch or self.last_stretch:
                self.send()
        elif cands:
            entities = [c.entities for c in cands if c.entities is not None]
            uow.children.add_many(e[0] for e in entities)
            uow.records.add_many(e[1] for e in entities)
            uow.changes.append_many(e[2] for e in entities)
            uow.numbers.claim_many(
                IssuedNumber(e[1].temp_number or "", NumberKind.L, e[1].id, self.now)
                for e in entities
            )
        if problems:
            uow.problems.add_many(problems)
        for r in rostered:
            uow.roster.add(r.entry)
            events.append((op, "roster", r.entry.id, "", {}, {"county_code": r.entry.county_code}))
        audit_fields(uow, events, at=self.now)
        self.report.accepted += len(cands)
        self.report.rostered += len(rostered)
        if self.on_record is None and not self.collect:
            return
        for item in chunk:
            doc = _outcome(item)
            if self.on_record is not None:
                self.on_record(doc)
            if self.collect:
                self.report.records.append(doc)

    def send(self) -> None:
        """Write the prepared rows gathered over the chunks (one ``COPY`` per table).

        Gathering them costs the server far less than a ``COPY`` per chunk: a
        large batch touches each page of a table's random-key indexes once.
        Until they are written, :meth:`flush` looks for duplicates among them too.
        Near the end of the file (``last_stretch``, fewer than :data:`WRITE_TAIL`
        rows left) :meth:`flush` writes every chunk: the checker processes are
        done by the last write, so it is kept small.
        """
        if not self.unsent:
            return
        uow = self.uow
        assert isinstance(uow, PreparedWrites)
        rows = self.unsent
        uow.write_prepared([(kind, [e[i] for e in rows]) for i, kind in enumerate(_ENCODED)])
        self.unsent = []
        self.unsent_refs = {}

    def store_matches_many(
        self, keys: Sequence[tuple[str, ...]]
    ) -> dict[tuple[str, ...], list[StatusRecord]]:
        """The live records in the store whose child has each key: a few bulk queries when
        the store offers :class:`~studentstatus.ports.BulkChildRepository` and
        :class:`~studentstatus.ports.BulkRecordRepository`, else one call per key."""
        uow = self.uow
        wanted = list(dict.fromkeys(keys))
        if not wanted:
            return {}
        repo = uow.children
        bulk = isinstance(repo, BulkChildRepository) and isinstance(
            uow.records, BulkRecordRepository
        )
        numbers = [k[1] for k in wanted if k[0] == "d"]
        identities = [(k[1], k[2], date.fromisoformat(k[3])) for k in wanted if k[0] != "d"]
        if bulk:
            assert isinstance(repo, BulkChildRepository)
            by_number = repo.find_by_documents(numbers) if numbers else {}
            by_identity = repo.find_by_identities(identities) if identities else {}
        else:
            by_number = {n: repo.find_by_document(n) for n in numbers}
            by_identity = {k: repo.find_by_identity(*k) for k in identities}
        children: dict[tuple[str, ...], list[Child]] = {}
        for key in wanted:
            if key[0] == "d":
                children[key] = by_number.get(key[1], [])
            else:
                found = by_identity.get((key[1], key[2], date.fromisoformat(key[3])), [])
                children[key] = [
                    c for c in found if c.document is None or c.document.type.value == "none"
                ]
        child_ids = list(dict.fromkeys(c.id for cs in children.values() for c in cs))
        if bulk and child_ids:
            assert isinstance(uow.records, BulkRecordRepository)
            records = uow.records.for_children(child_ids)
        else:
            records = {i: uow.records.for_child(i) for i in child_ids}
        return {
            key: [r for c in cs for r in records.get(c.id, ()) if r.state.is_live]
            for key, cs in children.items()
        }

    def unresolved_kinds(self, record_ids: Sequence[str]) -> dict[str, set[ProblemKind]]:
        """The kinds of the not-yet-resolved problems of each record."""
        uow = self.uow
        ids = list(dict.fromkeys(record_ids))
        out: dict[str, set[ProblemKind]] = {}
        if not ids:
            return out
        if isinstance(uow.problems, BulkProblemRepository):
            found = uow.problems.for_records(ids, statuses=_UNRESOLVED)
        else:
            found = {i: uow.problems.for_record(i) for i in ids}
        for record_id, problems in found.items():
            kinds = {p.kind for p in problems if p.status is not ProblemStatus.RESOLVED}
            if kinds:
                out[record_id] = kinds
        return out


_GC_LOCK = threading.Lock()
_GC_USERS = 0
_GC_SAVED: tuple[int, int, int] = (0, 0, 0)


@contextmanager
def _gc_relaxed(threshold: int = 50_000) -> Iterator[None]:
    """Collect the youngest generation every ``threshold`` allocations, not every 700.

    A bulk import allocates millions of short-lived, acyclic objects; with the
    default threshold the cyclic collector runs thousands of times over the
    unit of work's live objects and costs about an eighth of the import's CPU.
    The previous thresholds are restored when the last concurrent import ends.
    """
    global _GC_USERS, _GC_SAVED
    with _GC_LOCK:
        if _GC_USERS == 0:
            _GC_SAVED = gc.get_threshold()
            if _GC_SAVED[0]:
                gc.set_threshold(max(_GC_SAVED[0], threshold), *_GC_SAVED[1:])
        _GC_USERS += 1
    try:
        yield
    finally:
        with _GC_LOCK:
            _GC_USERS -= 1
            if _GC_USERS == 0:
                gc.set_threshold(*_GC_SAVED)


def _try_date(text: str) -> date | None:
    try:
        return parse_date(text)
    except ValueError:
        return None


def _outcome(item: _Candidate | _Roster) -> dict[str, Any]:
    if isinstance(item, _Roster):
        return {"row": item.row, "roster_id": item.entry.id, "state": None}
    rec = item.ref
    return {
        "row": item.row,
        "record_id": rec.id,
        "child_id": rec.child_id,
        "kindergarten_code": rec.kindergarten_code,
        "temp_number": rec.temp_number,
        "state": rec.state,
        "grade": rec.grade,
        "problems": sorted(set(item.problems)),
    }


def rows_of(source: Any, wanted: Callable[[int], bool] | None = None) -> Iterator[CsvRow]:
    """The rows of an import's source: a CSV file (path or binary stream) or rows
    (``wanted``: see :func:`~studentstatus.services.csvio.read_csv`; files only)."""
    if isinstance(source, str | os.PathLike) or hasattr(source, "read"):
        yield from read_csv(source, aliases=CHILD_ALIASES, required=REQUIRED_COLUMNS, wanted=wanted)
        return
    for i, item in enumerate(source, start=1):
        if isinstance(item, CsvRow):
            yield item
        else:
            yield CsvRow(i, {k: str(v).strip() for k, v in dict(item).items() if v is not None})


def stop_workers() -> None:
    """End the idle checker processes kept by imports with ``workers`` (they also end
    with this process).

    >>> stop_workers()
    """
    from studentstatus.services._parallel import shutdown

    shutdown()


def checker(spec: Spec, k: int, numbers: Any = None) -> _Intake:
    """The row checks of checker process ``k`` (no store; see :mod:`._parallel`);
    ``numbers``: the L-number filter of this process's previous import of a batch, used
    when the spec carries none."""
    from studentstatus.services._parallel import register, worker_rng
    from studentstatus.services.runtime import FixedClock

    register(_Candidate)
    register(_Roster)
    rng = worker_rng(spec, k)
    rt = Runtime(cast(Any, None), FixedClock(spec.now), cast(Any, rng), spec.policy)
    run = _Intake(
        rt,
        spec.operator,
        None,
        unlicensed_roster=spec.roster,
        on_record=None,
        collect_records=False,
        kindergartens=spec.kindergartens,
        today=spec.today,
    )
    if spec.numbers is not None:  # the store's numbers: draws are tested against them
        run.index.numbers = spec.numbers
    elif numbers is not None:  # the store's and this process's earlier draws
        run.index.numbers = numbers
    run.encoder = spec.encoder
    return run


def _spec(
    run: _Intake, path: str | os.PathLike[str], workers: int, chunk_size: int, numbers: Any
) -> Spec:
    """What the checker processes of ``run``'s import need (``numbers``: the L-number filter
    to draw against, ``None``: the one the process's previous import of a batch left;
    ``run.encoder`` already set)."""
    from studentstatus.services import _parallel

    if run.op.role is Role.KINDERGARTEN:
        run.kindergarten(run.op.scope)
    return _parallel.spec_for(
        path,
        run.op,
        run.rt.policy,
        run.today,
        run.now,
        roster=run.roster,
        kindergartens=run.kgs,
        chunk_size=min(chunk_size, WORKER_CHUNK),
        workers=workers,
        rng=run.rt.rng,
        numbers=numbers,
        encoder=run.encoder,
    )


def _in_workers(
    run: _Intake,
    path: str | os.PathLike[str],
    workers: int,
    chunk_size: int,
    progress: Callable[[int], None] | None,
    batch: tuple[Batch, int] | None = None,
) -> None:
    """The rows checked by ``workers`` checker processes; duplicates and writes here
    (``batch``: the processes of :func:`import_files`, and this file's place in it)."""
    from studentstatus.services import _parallel

    with open(path, "rb"):  # an unreadable file fails here, before any process starts
        pass
    size = os.path.getsize(path)
    run.numbers_rng = _parallel.Residue(run.rt.rng, workers, workers + 1)
    uow = run.uow
    run.encoder = uow.row_encoder() if isinstance(uow, PreparedWrites) else None
    run.write_batch = int(getattr(run.encoder, "write_batch", WRITE_BATCH))
    if batch is None:
        spec = _spec(run, path, workers, chunk_size, run.index.numbers)
        source = _parallel.checked_chunks(spec)
        tail = True
    else:
        source = batch[0].chunks(batch[1])
        tail = batch[1] == len(batch[0].specs) - 1
    # Written in chunks of chunk_size accepted rows, exactly as in one process: the
    # outcomes (a record's problems known when it is written) and the audit trail's order
    # depend on where the chunks end.
    chunk: list[_Candidate | _Roster] = []
    with contextlib.closing(source) as chunks:
        for rows, items, offset in chunks:
            # Near the end of the file (fewer than WRITE_TAIL rows left, at the bytes per
            # row read so far) every chunk is written at once: the last write, which no
            # checking overlaps, stays small.  In a batch (import_files) that is only the
            # last file: the others' ends overlap the next file's checking.
            read = run.report.rows + rows
            run.last_stretch = tail and (size - offset) * read < WRITE_TAIL * max(offset, 1)
            for item in items:
                if isinstance(item, list):
                    run.report.rejected.extend(item)
                    continue
                if isinstance(item, CsvRow):
                    checked = run.check(item)
                    if checked is None:
                        continue
                    item = checked
                elif type(item) is tuple:  # an encoded candidate (_Candidate.wire)
                    item = _Candidate.from_wire(item)
                    run.adopt(item)
                elif isinstance(item, _Candidate):
                    run.adopt(item)
                chunk.append(item)
                if len(chunk) >= chunk_size:
                    run.flush(chunk)
                    chunk = []
            run.report.rows += rows
            if progress is not None:
                progress(run.report.rows)
    if chunk:
        run.flush(chunk)
    run.send()


def import_children(
    rt: Runtime,
    operator: Operator,
    source: str | os.PathLike[str] | IO[bytes] | Iterable[CsvRow | Mapping[str, str]],
    *,
    unlicensed_roster: bool = False,
    chunk_size: int = 2000,
    on_record: Callable[[dict[str, Any]], None] | None = None,
    collect_records: bool = True,
    progress: Callable[[int], None] | None = None,
    workers: int = 0,
) -> IntakeReport:
    """Import children from a CSV file, a binary stream or rows; see the module docs.

    ``workers``: with the path of a regular file, check the rows in this many
    separate processes while this one looks for duplicates and writes (see
    "Checker processes" in the module docs); ``0`` (the default) checks them
    here.  Other sources (streams, rows, pipes) are always checked here.

    Raises :class:`~studentstatus.errors.PermissionDenied` when the operator
    may not register at all (or may not keep the unlicensed roster), and
    :class:`~studentstatus.errors.StorageError` when the store fails (then
    nothing of the file is written).
    """
    _check_workers(workers)
    _authorize_import(operator, unlicensed_roster)
    return _import(
        rt,
        operator,
        source,
        unlicensed_roster=unlicensed_roster,
        chunk_size=chunk_size,
        on_record=on_record,
        collect_records=collect_records,
        progress=progress,
        workers=workers,
    )


def import_files(
    rt: Runtime,
    files: Iterable[tuple[Operator, str | os.PathLike[str]]],
    *,
    workers: int = 0,
    unlicensed_roster: bool = False,
    chunk_size: int = 2000,
    collect_records: bool = True,
) -> list[IntakeReport]:
    r"""Import several CSV files, each as :func:`import_children` would with its operator
    (e.g. every county's file of a province); return their reports in order.

    Each file is its own unit of work, imported and committed in turn; the
    first file that fails raises (its writes rolled back, the files before it
    stay imported, nothing of the ones after it is written — the exception's
    notes name the file).  Every operator is authorised before any file is read.

    With ``workers``, the checker processes get every file at the start and
    check the next file while this process still writes the last one (at most
    :data:`~studentstatus.services._parallel.AHEAD` frames ahead): the end of
    each file — its last writes and commit, which nothing overlaps in separate
    :func:`import_children` calls — is no longer idle time on the other cores.
    Each process draws L numbers from its own residue, as in one import, and
    against the numbers it drew in the earlier files; so no two files' numbers
    collide.  Kindergartens, the clock's date and time and the processes' seeds
    are read when the batch starts.

    >>> import random
    >>> from datetime import date, datetime, timezone
    >>> from studentstatus.adapters.memory import MemoryStore
    >>> from studentstatus.domain.enums import KindergartenType
    >>> from studentstatus.domain.model import Kindergarten, Licence
    >>> from studentstatus.services.runtime import FixedClock, Runtime
    >>> store = MemoryStore()
    >>> rt = Runtime(store, FixedClock(datetime(2024, 9, 2, tzinfo=timezone.utc)),
    ...              random.Random(1))
    >>> lic = (Licence("L1", "局", date(2020, 1, 1), date(2030, 12, 31)),)
    >>> with store.unit_of_work() as uow:
    ...     _ = uow.kindergartens.add_many(
    ...         Kindergarten(code, "12100000400000624D", "幼儿园", region,
    ...                      KindergartenType.PUBLIC, licences=lic)
    ...         for code, region in (("1111000001", "110105"), ("1111000002", "110106")))
    ...     uow.commit()
    >>> import pathlib, tempfile
    >>> tmp = pathlib.Path(tempfile.mkdtemp())
    >>> header = ("kindergarten_code,name,sex,birth_date,id_type,id_number,guardian_name,"
    ...           "guardian_relation,guardian_phone,entry_date,grade\n")
    >>> _ = (tmp / "a.csv").write_text(header + "1111000001,王小明,男,2020-03-15,resident,"
    ...      "110105202003150038,王芳,mother,13800138000,2024-09-01,中班\n", encoding="utf-8")
    >>> _ = (tmp / "b.csv").write_text(header + "1111000002,李小红,女,2021-05-01,none,,"
    ...      "李强,father,13900139000,2024-09-01,小班\n", encoding="utf-8")
    >>> reports = import_files(rt, [(Operator.parse("county:110105"), tmp / "a.csv"),
    ...                             (Operator.parse("county:110106"), tmp / "b.csv")])
    >>> [r.accepted for r in reports]
    [1, 1]
    """
    jobs = list(files)
    _check_workers(workers)
    for operator, _ in jobs:
        _authorize_import(operator, unlicensed_roster)
    common: dict[str, Any] = {
        "unlicensed_roster": unlicensed_roster,
        "chunk_size": chunk_size,
        "collect_records": collect_records,
    }
    if workers == 0 or len(jobs) < 2 or not all(os.path.isfile(p) for _, p in jobs):
        return [_import_noted(rt, op, path, workers=workers, **common) for op, path in jobs]
    from studentstatus.services import _parallel

    today, now = rt.clock.today(), rt.clock.now()
    with rt.store.unit_of_work() as uow:
        index = _loaded_index(uow)
        encoder = uow.row_encoder() if isinstance(uow, PreparedWrites) else None
        specs = []
        for i, (op, path) in enumerate(jobs):
            if op.role is Role.COUNTY and len(op.scope) == 6:
                kgs = _county_kindergartens(uow, op)
            elif op.role is Role.KINDERGARTEN:
                kgs = {op.scope: uow.kindergartens.find(op.scope)}
            else:  # pragma: no cover - only counties and kindergartens register
                kgs = {}
            specs.append(
                _parallel.spec_for(
                    path,
                    op,
                    rt.policy,
                    today,
                    now,
                    roster=unlicensed_roster,
                    kindergartens=kgs,
                    chunk_size=min(chunk_size, WORKER_CHUNK),
                    workers=workers,
                    rng=rt.rng,
                    # the first import's processes draw against the store's numbers; later
                    # ones against the same filter plus their own draws (see _parallel.work)
                    numbers=index.numbers if i == 0 else None,
                    encoder=encoder,
                )
            )
    with _parallel.Batch(specs) as batch:
        return [
            _import_noted(
                rt, op, path, workers=workers, batch=(batch, i), today=today, now=now, **common
            )
            for i, (op, path) in enumerate(jobs)
        ]


def _import_noted(
    rt: Runtime, operator: Operator, path: str | os.PathLike[str], **kwargs: Any
) -> IntakeReport:
    """:func:`_import` of one file of :func:`import_files`; an exception notes the file."""
    try:
        return _import(rt, operator, path, **kwargs)
    except Exception as exc:
        exc.add_note(f"while importing {os.fspath(path)!r} as {operator}")
        raise


def _check_workers(workers: int) -> None:
    if workers < 0:
        raise ValidationError(
            f"workers must be 0 or more, not {workers}",
            field="workers",
            message_zh=f"检查进程数不能为负数（{workers}）",
            code="workers_invalid",
        )


def _authorize_import(operator: Operator, unlicensed_roster: bool) -> None:
    if unlicensed_roster:
        authorize(operator, "roster")
    authorize(operator, "register", also=("approve_record",))
    if operator.role not in (Role.KINDERGARTEN, Role.COUNTY):
        authorize(operator, "register")


def _import(
    rt: Runtime,
    operator: Operator,
    source: str | os.PathLike[str] | IO[bytes] | Iterable[CsvRow | Mapping[str, str]],
    *,
    unlicensed_roster: bool = False,
    chunk_size: int = 2000,
    on_record: Callable[[dict[str, Any]], None] | None = None,
    collect_records: bool = True,
    progress: Callable[[int], None] | None = None,
    workers: int = 0,
    batch: tuple[Batch, int] | None = None,
    today: date | None = None,
    now: datetime | None = None,
) -> IntakeReport:
    """:func:`import_children` once authorised (``batch``, ``today``, ``now``: one file of
    :func:`import_files`)."""
    with _gc_relaxed(), rt.store.unit_of_work() as uow:
        run = _Intake(
            rt,
            operator,
            uow,
            unlicensed_roster=unlicensed_roster,
            on_record=on_record,
            collect_records=collect_records,
            today=today,
            now=now,
        )
        chunk: list[_Candidate | _Roster] = []
        # A regular file only: each worker reads it (a pipe or a FIFO could be read once).
        # In a batch the processes have the file already (gone by now: _in_workers raises).
        parallel = batch is not None or (
            workers > 0 and isinstance(source, str | os.PathLike) and os.path.isfile(source)
        )
        if parallel:
            assert isinstance(source, str | os.PathLike)
            _in_workers(run, source, workers, chunk_size, progress, batch)
        for row in () if parallel else rows_of(source):
            run.report.rows += 1
            item = run.check(row)
            if item is not None:
                chunk.append(item)
            if len(chunk) >= chunk_size:
                run.flush(chunk)
                chunk = []
            if progress is not None and run.report.rows % chunk_size == 0:
                progress(run.report.rows)
        if chunk:
            run.flush(chunk)
        uow.commit()
    if progress is not None:
        progress(run.report.rows)
    run.report.problems = dict(run.problem_counts)
    return run.report


def register_child(
    rt: Runtime, operator: Operator, values: Mapping[str, str], *, attempts: int = 3
) -> dict[str, Any]:
    """Register one child from form values (the CSV columns); return its record outcome.

    Raises :class:`~studentstatus.errors.RuleViolations` with every violation
    (fields are the CSV column names) when the child is refused.

    The online path: one unit of work with indexed look-ups only — the
    kindergarten by its code, the identity claim of the child's key (and, only
    when that key was claimed before, the records holding it), the temporary
    number by primary key — so its cost does not grow with the store.  A unit
    that collides with a concurrent one (a deadlock, a number drawn twice at
    the same moment) is run again, up to ``attempts`` times, before
    :class:`~studentstatus.errors.TryAgain` (or the
    :class:`~studentstatus.errors.ConflictError`) is raised; nothing is written
    by a failed attempt.
    """
    _authorize_import(operator, False)
    row = next(iter(rows_of([values])))
    for attempt in range(1, attempts + 1):
        try:
            with rt.store.unit_of_work() as uow:
                run = _Intake(
                    rt, operator, uow, unlicensed_roster=False, on_record=None,
                    collect_records=True, online=True,
                )  # fmt: skip
                run.report.rows = 1
                item = run.check(row)
                if item is None:
                    raise RuleViolations(
                        Violation(r.code, r.field, r.message_zh, r.message_en)
                        for r in run.report.rejected
                    )
                run.flush([item])
                uow.commit()
                return run.report.records[0]
        except ConflictError:
            if attempt == attempts:
                raise
            log.info("register_child: attempt %d collided with another unit; again", attempt)
    raise AssertionError("unreachable")  # pragma: no cover
