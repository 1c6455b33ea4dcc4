"""Child intake (入园建籍): check rows completely, register PENDING records with an L number.

:func:`import_children` takes a CSV file (path or binary stream) or rows
already read by :func:`studentstatus.services.csvio.read_csv`; one row per
child with the columns of :data:`~studentstatus.services.csvio.CHILD_COLUMNS`
(Chinese headers accepted).  :func:`import_files` imports several files;
:func:`register_child` is the single-child form for portals.

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

**How it is built.**  This module holds the API and the orchestration; the
work is done by one row checker for every path
(:mod:`~studentstatus.services.intake_rows`: no store, so it also runs in the
checker processes), the duplicate search through identity claims
(:mod:`~studentstatus.services.duplicates`; two imports whose files share
children may deadlock on their claims: one of them raises
:class:`~studentstatus.errors.TryAgain` having written nothing), and the writer
(:mod:`~studentstatus.services.intake_writes`).  A bulk import draws its L numbers
against a filter of the temporary numbers ever issued in its regions, filled when it
(or its batch of files) starts (:mod:`~studentstatus.services.intake_numbers`: an
index range per region, 2 bytes a number); :func:`register_child` looks each thing up
by key instead.  A bulk import holds its operator's audit chain from its first chunk
to its commit: other writes by the same operator scope wait for it, and a
registration by that scope that already claimed a child the import reaches later
deadlocks with it — the database undoes one of the two (:class:`TryAgain`; the
registration retries).  Import a county's file when its own operators are not
registering, or register through kindergarten operators, whose chains differ.  Memory stays
flat in the number of rows: rows are streamed; accepted records are passed to
``on_record`` as they are written (the CLI spools them to a temporary file) and
collected in the report only when ``collect_records`` is true.  While an import
runs, the cyclic garbage collector's youngest generation is collected less often
(:func:`_gc_relaxed`).

**Checker processes** (``workers=N``, file paths only): the rows are read and
checked in ``N`` separate processes while this one looks for duplicates, opens
problems, seals the audit chain and writes — the store and its unit of work
never leave this process, and the result is the one an import in one process
gives (same rejections in the same order, same problems, same records, written
in the same chunks), except for the random ids and L-number digits, drawn from
generators seeded from ``rt.rng``.  Worth it for files of tens of thousands of
rows on a machine with a core to spare, with ``chunk_size`` well under the
file's size; starting a process costs about half a second, so idle ones are kept
for the next imports of this process (:func:`stop_workers` ends them).  A script
that imports with workers needs the usual ``if __name__ == "__main__":`` guard
(the processes are started with ``spawn``).  How rows travel and how the writes
are batched: :mod:`studentstatus.services._parallel` and
:mod:`~studentstatus.services.intake_writes`.

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
>>> report.records[0].state, report.records[0].temp_number[:15]
(<State.PENDING: 'PENDING'>, 'L11010520200315')
>>> bad = dict(row, sex="X", grade="博士班")
>>> [(r.row, r.field, r.code) for r in import_children(
...     rt, Operator.parse("kindergarten:1111000001"), [bad]).rejected]
[(1, 'grade', 'grade_invalid'), (1, 'sex', 'sex_invalid')]
"""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import date, datetime
from typing import IO, TYPE_CHECKING, Any, Generic, Protocol, TypeVar, cast, runtime_checkable

import attrs

from studentstatus.batching import chunked, spooled
from studentstatus.domain import numbers as national
from studentstatus.domain.age import school_year_of
from studentstatus.domain.enums import ProblemKind, Role
from studentstatus.domain.jurisdiction import Operator
from studentstatus.domain.model import Kindergarten, ProblemRecord, StatusRecord
from studentstatus.domain.numbers import RandomSource
from studentstatus.domain.policy import Policy
from studentstatus.errors import (
    ConflictError,
    RuleViolations,
    ValidationError,
    Violation,
)
from studentstatus.ports import BatchingEncoder, NumberRegistry, PreparedWrites, UnitOfWork
from studentstatus.services.audit import log_key
from studentstatus.services.authority import (
    kindergarten_in_scope,
    record_in_scope,
    region_in_scope,
    require_role,
)
from studentstatus.services.intake_numbers import (
    Bloom,
    FilteredDraws,
    loaded_filter,
    number_hash,
)
from studentstatus.services.intake_rows import (
    INVALID_ID_CODES,
    REQUIRED_COLUMNS,
    Candidate,
    Rejection,
    RosterItem,
    RowChecker,
    rows_of,
)
from studentstatus.services.intake_writes import RegisteredChild, RosteredChild, Writer
from studentstatus.services.runtime import Runtime
from studentstatus.tabular import (
    CHILD_ALIASES,
    CsvRow,
    FileInfo,
    Table,
    check_file,
    is_file_source,
    open_table,
)

if TYPE_CHECKING:
    from studentstatus.services._parallel import Batch, Spec

__all__ = [
    "INVALID_ID_CODES",
    "REQUIRED_COLUMNS",
    "IntakeReport",
    "RegisteredChild",
    "Rejection",
    "ReportItem",
    "RosteredChild",
    "authorize",
    "chunked",
    "due_date",
    "import_children",
    "import_files",
    "new_problem",
    "operator_policy",
    "register_child",
    "spooled",
    "stop_workers",
]

log = logging.getLogger("studentstatus.services")


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


# --------------------------------------------------------------------------- shared helpers


def authorize(
    operator: Operator,
    action: str,
    subject: Any = None,
    *,
    also: Sequence[str] = (),
) -> None:
    """Deprecated alias: :func:`studentstatus.services.authority.require_role`, then (with a
    region ``subject``) :func:`~studentstatus.services.authority.region_in_scope`.

    Kept for hosts that called it; services use :mod:`studentstatus.services.authority`.

    >>> authorize(Operator.parse("county:110105"), "approve_record", "110105")
    >>> authorize(Operator.parse("county:110105"), "verify")
    Traceback (most recent call last):
    ...
    studentstatus.errors.PermissionDenied: role_not_allowed: county:110105 may not access ...
    """
    require_role(operator, action, also=also)
    if isinstance(subject, str):
        region_in_scope(operator, action, subject)
    elif isinstance(subject, Kindergarten):
        kindergarten_in_scope(operator, action, subject, subject.school_code)
    elif isinstance(subject, StatusRecord):
        record_in_scope(operator, action, subject, subject.id)


def operator_policy(rt: Runtime, uow: UnitOfWork, operator: Operator) -> Policy:
    """The policy of the province the importing operator works in (a county's own; a
    kindergarten's: its kindergarten's), else the national one (:meth:`Runtime.policy_for`).

    >>> from studentstatus.testing.examples import example_runtime
    >>> from studentstatus.domain.policy import Policy
    >>> rt = example_runtime(policies={"11": Policy(age_tolerance=1)})
    >>> with rt.store.unit_of_work() as uow:
    ...     operator_policy(rt, uow, Operator.parse("kindergarten:1111000001")).age_tolerance
    1
    """
    if operator.role is Role.KINDERGARTEN:
        kg = uow.kindergartens.find(operator.scope)
        return rt.policy_for(kg.region_code if kg is not None else None)
    return rt.policy_for(operator.region_prefix)


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
    >>> from studentstatus.domain.enums import State
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


@runtime_checkable
class ReportItem(Protocol):
    """What an :class:`IntakeReport` lists in ``records``: a row's outcome with its JSON form.

    The library's items: :class:`RegisteredChild` and :class:`RosteredChild` (children),
    :class:`~studentstatus.services.kindergartens.ImportedKindergarten` (kindergartens).

    >>> isinstance(RosteredChild(1, "u1"), ReportItem)
    True
    """

    @property
    def row(self) -> int:
        """The row of the file (or of the rows given) it came from."""
        ...

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (one of ``IntakeReport.to_dict()["records"]``)."""
        ...


Item = TypeVar("Item", bound=ReportItem)


@attrs.define
class IntakeReport(Generic[Item]):
    """What an import did: accepted count, every rejection, problems opened by kind, records.

    ``records`` holds one item per accepted row, unless the import was run with
    ``collect_records=False``: for a child import a :class:`RegisteredChild` (or, for a
    child put on a county's roster, a :class:`RosteredChild`); for a kindergarten import
    an :class:`~studentstatus.services.kindergartens.ImportedKindergarten`.  Each item's
    ``to_dict()`` is its JSON form.  A registered child's ``problems`` are those known
    when it was written: a twin met in a later chunk adds a problem to the earlier
    record in the store, which the problem list shows.

    >>> report = IntakeReport(accepted=1, records=[RosteredChild(1, "u1")], rostered=1)
    >>> report.records[0].roster_id
    'u1'
    >>> report.to_dict()
    ... # doctest: +NORMALIZE_WHITESPACE
    {'accepted': 1, 'rejected': [], 'problems': {},
     'records': [{'row': 1, 'roster_id': 'u1', 'state': None}], 'rostered': 1, 'rows': 0}
    """

    accepted: int = 0
    rejected: list[Rejection] = attrs.field(factory=list)
    problems: dict[str, int] = attrs.field(factory=dict)
    records: list[Item] = attrs.field(factory=list)
    rostered: int = 0
    rows: int = 0
    file: FileInfo | None = None
    """What the file was read as (format, encoding, sheet); ``None`` for rows."""

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
            "records": [r.to_dict() for r in self.records],
            "rostered": self.rostered,
            "rows": self.rows,
            **({"file": self.file.to_dict()} if self.file is not None else {}),
        }


# --------------------------------------------------------------------------- internals


def _regions(uow: UnitOfWork, operator: Operator) -> list[str]:
    """The regions whose temporary numbers an import by ``operator`` may draw: a county's
    own code, a kindergarten's region (nothing for other roles, which do not register)."""
    if operator.role is Role.COUNTY:
        return [operator.scope]
    if operator.role is Role.KINDERGARTEN:
        kg = uow.kindergartens.find(operator.scope)
        return [kg.region_code] if kg is not None else []
    return []


def _county_kindergartens(uow: UnitOfWork, operator: Operator) -> dict[str, Kindergarten | None]:
    """A county's kindergartens by school code: one query instead of one per code."""
    return {k.school_code: k for k in uow.kindergartens.iter(region_prefix=operator.scope)}


class _Kindergartens:
    """A bulk import's kindergarten look-up: ``known`` ones (a county's, read at the start)
    first, any other found in the store once and remembered."""

    def __init__(self, uow: UnitOfWork, known: dict[str, Kindergarten | None]) -> None:
        self.uow = uow
        self.known = known

    def __call__(self, code: str) -> Kindergarten | None:
        known = self.known
        if code not in known:
            if len(known) > 50_000:
                known.clear()
            known[code] = self.uow.kindergartens.find(code)
        return known[code]


class _RegistryDraws:
    """The online path's L numbers: each draw tested by primary key in the number registry
    (no filter of the store's numbers to fill)."""

    def __init__(self, numbers: NumberRegistry, rng: RandomSource) -> None:
        self.numbers = numbers
        self.rng = rng

    def draw(self, region_code: str, birth_date: date) -> tuple[str, int]:
        for _ in range(1000):
            n = national.temporary_number(region_code, birth_date, self.rng)
            if self.numbers.resolve(n) is None:
                return n, number_hash(n)
        msg = "no free temporary number for this region and birth date"  # pragma: no cover
        raise RuntimeError(msg)  # pragma: no cover

    def keep(self, number_hash: int) -> None:
        pass  # claimed with the record


class _Import:
    """One bulk import of a file in its unit of work: the row checker (a county's
    kindergartens preloaded, L numbers drawn against the store's), the writer, the report."""

    def __init__(
        self,
        rt: Runtime,
        operator: Operator,
        uow: UnitOfWork,
        *,
        unlicensed_roster: bool,
        on_record: Callable[[RegisteredChild | RosteredChild], None] | None,
        collect_records: bool,
        today: date | None = None,
        now: datetime | None = None,
        numbers: Bloom | None = None,
    ) -> None:
        """``numbers``: the filter of the store's numbers to draw against (a batch of
        files shares one, with the numbers drawn by the files before); ``None`` loads
        the numbers of the operator's regions."""
        self.rt = rt
        self.op = operator
        self.roster = unlicensed_roster
        self.today = today if today is not None else rt.clock.today()
        self.now = now if now is not None else rt.clock.now()
        known: dict[str, Kindergarten | None] = {}
        if operator.role is Role.COUNTY and len(operator.scope) == 6:
            known = _county_kindergartens(uow, operator)
        self.kindergartens = _Kindergartens(uow, known)
        self.numbers = (
            numbers if numbers is not None else loaded_filter(uow, _regions(uow, operator))
        )
        self.draws = FilteredDraws(self.numbers, rt.rng)  # its rng: see _in_workers
        self.policy = operator_policy(rt, uow, operator)
        self.checker = RowChecker(
            self.policy,
            self.today,
            self.now,
            operator,
            self.kindergartens,
            rt.new_id,
            self.draws,
            unlicensed_roster=unlicensed_roster,
            audit_key=log_key(uow),
        )
        self.audit_key = self.checker.audit_key
        self.report: IntakeReport[RegisteredChild | RosteredChild] = IntakeReport()
        self.writer = Writer(
            uow,
            str(operator),
            self.now,
            due_date(self.today, self.policy),
            rt.new_id,
            on_record=on_record,
            records=self.report.records if collect_records else None,
            write_batch=WRITE_BATCH,
        )

    def finish(self) -> IntakeReport[RegisteredChild | RosteredChild]:
        """The report, with the writer's counts."""
        report, writer = self.report, self.writer
        report.accepted = writer.accepted
        report.rostered = writer.rostered
        report.problems = dict(writer.problem_counts)
        return report


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


def stop_workers() -> None:
    """End the idle checker processes kept by imports with ``workers`` (they also end
    with this process).

    >>> stop_workers()
    """
    from studentstatus.services._parallel import shutdown

    shutdown()


def _spec(
    run: _Import, path: str | os.PathLike[str], workers: int, chunk_size: int, numbers: Any
) -> Spec:
    """What the checker processes of ``run``'s import need (``numbers``: the L-number filter
    to draw against, ``None``: the one the process's previous import of a batch left;
    ``run.writer.encoder`` already set)."""
    from studentstatus.services import _parallel

    if run.op.role is Role.KINDERGARTEN:
        run.kindergartens(run.op.scope)
    return _parallel.spec_for(
        path,
        run.op,
        run.policy,
        run.today,
        run.now,
        roster=run.roster,
        kindergartens=run.kindergartens.known,
        chunk_size=min(chunk_size, WORKER_CHUNK),
        workers=workers,
        rng=run.rt.rng,
        numbers=numbers,
        encoder=run.writer.encoder,
        audit_key=run.audit_key,
    )


def _in_workers(
    run: _Import,
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
    run.draws.rng = _parallel.Residue(run.rt.rng, workers, workers + 1)
    writer = run.writer
    uow = writer.uow
    writer.encoder = uow.row_encoder() if isinstance(uow, PreparedWrites) else None
    encoder = writer.encoder
    writer.write_batch = (
        encoder.write_batch if isinstance(encoder, BatchingEncoder) else WRITE_BATCH
    )
    if batch is None:
        spec = _spec(run, path, workers, chunk_size, run.numbers)
        source = _parallel.checked_chunks(spec)
        tail = True
    else:
        source = batch[0].chunks(batch[1])
        tail = batch[1] == len(batch[0].specs) - 1
    # A worker's L number is free: it drew it against a copy of this import's filter as it
    # was when the import started (the store's numbers), and draws of different processes
    # never collide (_parallel.Residue).  This import never needs it in the filter; a later
    # import in this process, which starts from the filter, does.
    adopt = run.numbers.add
    check = run.checker.check
    report = run.report
    # Written in chunks of chunk_size accepted rows, exactly as in one process: the
    # outcomes (a record's problems known when it is written) and the audit trail's order
    # depend on where the chunks end.
    chunk: list[Candidate | RosterItem] = []
    with contextlib.closing(source) as chunks:
        for rows, items, offset in chunks:
            # Near the end of the file (fewer than WRITE_TAIL rows left, at the bytes per
            # row read so far) every chunk is written at once: the last write, which no
            # checking overlaps, stays small.  In a batch (import_files) that is only the
            # last file: the others' ends overlap the next file's checking.
            read = report.rows + rows
            writer.last_stretch = tail and (size - offset) * read < WRITE_TAIL * max(offset, 1)
            for item in items:
                if isinstance(item, list):
                    report.rejected.extend(item)
                    continue
                if isinstance(item, CsvRow):  # a kindergarten the checkers did not have
                    verdict = check(item)
                    if isinstance(verdict, list):
                        report.rejected.extend(verdict)
                        continue
                    item = verdict
                elif type(item) is tuple:  # an encoded candidate (Candidate.wire)
                    item = Candidate.from_wire(item)
                    adopt(item.number_hash)
                elif isinstance(item, Candidate):
                    adopt(item.number_hash)
                chunk.append(item)
                if len(chunk) >= chunk_size:
                    writer.flush(chunk)
                    chunk = []
            report.rows += rows
            if progress is not None:
                progress(report.rows)
    if chunk:
        writer.flush(chunk)
    writer.send()


def import_children(
    rt: Runtime,
    operator: Operator,
    source: str | os.PathLike[str] | IO[bytes] | Iterable[CsvRow | Mapping[str, str]],
    *,
    unlicensed_roster: bool = False,
    chunk_size: int = 2000,
    on_record: Callable[[RegisteredChild | RosteredChild], None] | None = None,
    collect_records: bool = True,
    progress: Callable[[int], None] | None = None,
    workers: int = 0,
    sheet: str | None = None,
) -> IntakeReport[RegisteredChild | RosteredChild]:
    """Import children from a CSV file or ``.xlsx`` workbook (a path or a binary stream)
    or rows; see the module docs.

    A file is checked as a file first (:func:`studentstatus.tabular.open_table`:
    encoding, header, at least one data row); one that fails raises
    :class:`~studentstatus.tabular.FileRejected` before anything is written.
    ``sheet``: a workbook's sheet (the first by default).

    ``workers``: with the path of a regular CSV file, check the rows in this many
    separate processes while this one looks for duplicates and writes (see
    "Checker processes" in the module docs); ``0`` (the default) checks them
    here.  Other sources (streams, rows, pipes, workbooks) are always checked here.

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
        sheet=sheet,
    )


def import_files(
    rt: Runtime,
    files: Iterable[tuple[Operator, str | os.PathLike[str]]],
    *,
    workers: int = 0,
    unlicensed_roster: bool = False,
    chunk_size: int = 2000,
    collect_records: bool = True,
) -> list[IntakeReport[RegisteredChild | RosteredChild]]:
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
    # Every file is checked as a file before any is imported (the first refused raises).
    formats = [_checked(path).format for _, path in jobs]
    common: dict[str, Any] = {
        "unlicensed_roster": unlicensed_roster,
        "chunk_size": chunk_size,
        "collect_records": collect_records,
    }
    if (
        workers == 0
        or len(jobs) < 2
        or not all(os.path.isfile(p) for _, p in jobs)
        or any(f != "csv" for f in formats)
    ):
        with rt.store.unit_of_work() as uow:  # one filter for the batch, read once
            common["numbers"] = loaded_filter(uow, (r for op, _ in jobs for r in _regions(uow, op)))
        return [_import_noted(rt, op, path, workers=workers, **common) for op, path in jobs]
    from studentstatus.services import _parallel

    today, now = rt.clock.today(), rt.clock.now()
    with rt.store.unit_of_work() as uow:
        numbers = loaded_filter(uow, (r for op, _ in jobs for r in _regions(uow, op)))
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
                    operator_policy(rt, uow, op),
                    today,
                    now,
                    roster=unlicensed_roster,
                    kindergartens=kgs,
                    chunk_size=min(chunk_size, WORKER_CHUNK),
                    workers=workers,
                    rng=rt.rng,
                    # the first import's processes draw against the store's numbers; later
                    # ones against the same filter plus their own draws (see _parallel.work)
                    numbers=numbers if i == 0 else None,
                    encoder=encoder,
                )
            )
    with _parallel.Batch(specs) as batch:
        return [
            _import_noted(
                rt,
                op,
                path,
                workers=workers,
                batch=(batch, i),
                today=today,
                now=now,
                numbers=numbers,
                **common,
            )
            for i, (op, path) in enumerate(jobs)
        ]


def _import_noted(
    rt: Runtime, operator: Operator, path: str | os.PathLike[str], **kwargs: Any
) -> IntakeReport[RegisteredChild | RosteredChild]:
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
        require_role(operator, "roster")
    require_role(operator, "register", also=("approve_record",))
    if operator.role not in (Role.KINDERGARTEN, Role.COUNTY):
        require_role(operator, "register")


def _checked(path: str | os.PathLike[str]) -> FileInfo:
    """:func:`~studentstatus.tabular.check_file` for a child-intake file; a refusal notes
    the file."""
    try:
        return check_file(path, aliases=CHILD_ALIASES, required=REQUIRED_COLUMNS)
    except ValidationError as exc:
        exc.add_note(f"while checking {os.fspath(path)!r}")
        raise


def _import(
    rt: Runtime,
    operator: Operator,
    source: str | os.PathLike[str] | IO[bytes] | Iterable[CsvRow | Mapping[str, str]],
    *,
    workers: int = 0,
    batch: tuple[Batch, int] | None = None,
    sheet: str | None = None,
    **kwargs: Any,
) -> IntakeReport[RegisteredChild | RosteredChild]:
    """:func:`import_children` once authorised (``batch``, ``today``, ``now``, ``numbers``:
    one file of :func:`import_files`): a file is checked as a file before the unit of
    work opens; the rows of a file that is not read by checker processes (a stream, a
    workbook, ``workers=0``) come from the checked :class:`~studentstatus.tabular.Table`."""
    info: FileInfo | None = None
    table: Table | None = None
    if batch is not None:
        assert isinstance(source, str | os.PathLike)
        info = check_file(source, aliases=CHILD_ALIASES, required=REQUIRED_COLUMNS)
    elif is_file_source(source):
        file = cast("str | os.PathLike[str] | IO[bytes]", source)
        if workers > 0 and isinstance(file, str | os.PathLike) and os.path.isfile(file):
            info = check_file(file, aliases=CHILD_ALIASES, required=REQUIRED_COLUMNS)
        if info is None or info.format != "csv":
            table = open_table(file, aliases=CHILD_ALIASES, required=REQUIRED_COLUMNS, sheet=sheet)
            info, source = table.info, table
    try:
        report = _import_rows(rt, operator, source, workers=workers, batch=batch, **kwargs)
    finally:
        if table is not None:
            table.close()
    report.file = info
    return report


def _import_rows(
    rt: Runtime,
    operator: Operator,
    source: str | os.PathLike[str] | IO[bytes] | Iterable[CsvRow | Mapping[str, str]],
    *,
    unlicensed_roster: bool = False,
    chunk_size: int = 2000,
    on_record: Callable[[RegisteredChild | RosteredChild], None] | None = None,
    collect_records: bool = True,
    progress: Callable[[int], None] | None = None,
    workers: int = 0,
    batch: tuple[Batch, int] | None = None,
    today: date | None = None,
    now: datetime | None = None,
    numbers: Bloom | None = None,
) -> IntakeReport[RegisteredChild | RosteredChild]:
    """The import of checked rows (or of a checked CSV file, by checker processes)."""
    with _gc_relaxed(), rt.store.unit_of_work() as uow:
        run = _Import(
            rt,
            operator,
            uow,
            unlicensed_roster=unlicensed_roster,
            on_record=on_record,
            collect_records=collect_records,
            today=today,
            now=now,
            numbers=numbers,
        )
        report = run.report
        check = run.checker.check
        flush = run.writer.flush
        chunk: list[Candidate | RosterItem] = []
        # A regular file only: each worker reads it (a pipe or a FIFO could be read once).
        # In a batch the processes have the file already (gone by now: _in_workers raises).
        parallel = batch is not None or (
            workers > 0 and isinstance(source, str | os.PathLike) and os.path.isfile(source)
        )
        if parallel:
            assert isinstance(source, str | os.PathLike)
            _in_workers(run, source, workers, chunk_size, progress, batch)
        for row in () if parallel else rows_of(source):
            report.rows += 1
            verdict = check(row)
            if isinstance(verdict, list):
                report.rejected.extend(verdict)
            else:
                chunk.append(verdict)
            if len(chunk) >= chunk_size:
                flush(chunk)
                chunk = []
            if progress is not None and report.rows % chunk_size == 0:
                progress(report.rows)
        if chunk:
            flush(chunk)
        uow.commit()
    if progress is not None:
        progress(report.rows)
    return run.finish()


def register_child(
    rt: Runtime, operator: Operator, values: Mapping[str, str], *, attempts: int = 3
) -> RegisteredChild:
    """Register one child from form values (the CSV columns); return the record written.

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
    if attempts < 1:
        raise ValidationError(
            f"attempts must be 1 or more, not {attempts}",
            field="attempts",
            message_zh=f"尝试次数至少为1（{attempts}）",
            code="attempts_invalid",
        )
    _authorize_import(operator, False)
    row = next(iter(rows_of([values])))
    for attempt in range(1, attempts + 1):
        try:
            with rt.store.unit_of_work() as uow:
                today, now = rt.clock.today(), rt.clock.now()
                policy = operator_policy(rt, uow, operator)
                rows = RowChecker(
                    policy,
                    today,
                    now,
                    operator,
                    uow.kindergartens.find,
                    rt.new_id,
                    _RegistryDraws(uow.numbers, rt.rng),
                    audit_key=log_key(uow),
                )
                verdict = rows.check(row)
                if isinstance(verdict, list):
                    raise RuleViolations(
                        Violation(r.code, r.field, r.message_zh, r.message_en) for r in verdict
                    )
                if not isinstance(verdict, Candidate):  # pragma: no cover - no roster here
                    raise AssertionError("register_child never rosters a child")
                writer = Writer(uow, str(operator), now, due_date(today, policy), rt.new_id)
                writer.flush([verdict])
                uow.commit()
                return RegisteredChild.of(verdict)
        except ConflictError:
            if attempt == attempts:
                raise
            log.info("register_child: attempt %d collided with another unit; again", attempt)
    raise AssertionError("unreachable")  # pragma: no cover
