"""Checker processes for ``import_children(..., workers=N)`` (private).

The import's own process keeps everything that needs the store — the duplicate
search, problem records, the audit chain and every write, all in its one unit
of work — and ``N`` checker processes do the per-row work that does not: read
the CSV file, check each row completely and build the child, its ``PENDING``
record and the ``REGISTER`` event.  The file is cut into chunks of
``chunk_size`` rows; worker ``k`` checks the chunks ``c`` with ``c % N == k``
(each worker reads the whole file, checking only its own chunks) and sends
them over its own pipe; the import takes chunk ``c`` from worker ``c % N``, so
it sees the rows in file order exactly as an import in one process does.  The
chunks hold at most ``intake.WORKER_CHUNK`` rows, the first ones fewer
(:func:`chunk_sizes`), so the import can start writing early.  Each worker
checks rows with :class:`~studentstatus.services.intake_rows.RowChecker`, the
checker of every intake path, built without a store (:func:`checker`).

* **Kindergartens**: the workers get the kindergartens the import has already
  read (a county's, or the operator's own); a row naming any other code is
  sent back unchecked and checked by the import itself (the store decides
  whether the code is unknown or out of scope).
* **Random draws**: worker ``k`` draws ids and temporary numbers from its own
  generator, seeded from ``rt.rng``; its temporary numbers' random part is
  ``k`` modulo ``N + 1`` (the import's own draws use ``N``), so no two
  processes can draw the same number.  Each worker tests its draws against a
  copy of the import's filter of the store's numbers (hashed alike in every
  process) and redraws on a hit; the import only notes them in its own filter.
* **Prepared rows**: with the store's row encoder in the spec, a worker sends
  each candidate's encoded rows instead of its entities (cheaper to send, and
  the importer no longer builds them).
* **Memory**: a thread of the import reads each worker's pipe into a queue
  of :data:`AHEAD` frames; a worker further ahead blocks, so memory stays flat.
* **Start-up**: a process costs about half a second to start (a new interpreter
  importing the library); idle ones are kept for the next imports of this process
  (:func:`shutdown`, ``intake.stop_workers``, ends them).
* **Batches** (:class:`Batch`, ``intake.import_files``): each process gets the specs of
  several imports at once and runs them in turn, so it checks the next file while the
  import still writes the last; its L-number draws go on against the filter its previous
  import left (the store's numbers and its own draws: the others never share its residue).
* **Priority**: checker processes run at ``nice +``:data:`NICE`, below the import and the
  database server, which wait for each other and so decide when an import ends.
* **Failures**: an exception in a worker is raised by the import (the unit of
  work rolls back; one that cannot be rebuilt here is a :class:`RuntimeError`
  with the worker's traceback); a worker that dies is a :class:`RuntimeError`;
  so are workers that read different rows (the file changed under them);
  leaving the import early (an error in the store, ``KeyboardInterrupt``)
  kills the workers.  A forked child forgets its parent's idle workers.

Entities cross the pipe with a pickler whose reducers pass attrs entities as
their field values and enums as their values (about three times cheaper to
load than the default); the entity types and enums are registered below.
"""

from __future__ import annotations

import contextlib
import enum
import gc
import io
import multiprocessing
import os
import pickle
import queue
import random
import threading
import traceback
from collections.abc import Callable, Generator, Iterator, Sequence
from datetime import date, datetime
from types import MappingProxyType
from typing import Any

import attrs

from studentstatus.domain import enums as _enums
from studentstatus.domain import model as _model
from studentstatus.domain.jurisdiction import Operator
from studentstatus.domain.model import Kindergarten
from studentstatus.domain.policy import Policy
from studentstatus.errors import Violation
from studentstatus.services.intake_numbers import Bloom, FilteredDraws
from studentstatus.services.intake_rows import Candidate, RosterItem, RowChecker, rows_of
from studentstatus.services.runtime import IdSource

__all__ = ["Batch", "Residue", "checked_chunks", "dumps", "loads", "shutdown"]


class Residue:
    """A random source whose ``randrange(n)`` draws only numbers ``≡ k (mod parts)``.

    Everything else (``getrandbits``) is the wrapped generator's.  Temporary
    numbers are ``region + birth date + randrange(10_000)``: processes with
    different ``k`` can never draw the same one.

    >>> r = Residue(random.Random(1), 2, 3)
    >>> sorted({r.randrange(10) for _ in range(200)})
    [2, 5, 8]
    >>> Residue(random.Random(1), 0, 1).randrange(5) == random.Random(1).randrange(5)
    True
    """

    def __init__(self, rng: Any, k: int, parts: int) -> None:
        if not 0 <= k < parts:
            msg = f"k must be in [0, {parts}), not {k}"
            raise ValueError(msg)
        self.rng = rng
        self.k = k
        self.parts = parts

    def randrange(self, n: int) -> int:
        """A number in ``[0, n)`` that is ``k`` modulo ``parts`` (``n`` must exceed ``k``)."""
        if self.parts == 1:
            return int(self.rng.randrange(n))
        return self.k + self.parts * int(
            self.rng.randrange((n - self.k + self.parts - 1) // self.parts)
        )

    def getrandbits(self, k: int) -> int:
        """The wrapped generator's bits."""
        return int(self.rng.getrandbits(k))


# ----------------------------------------------------------------------------- pickling


def _member(cls: type[enum.Enum], value: Any) -> enum.Enum:
    return cls._value2member_map_[value]


def _reduce_member(member: enum.Enum) -> tuple[Any, ...]:
    return (_member, (type(member), member._value_))


def _reducer(cls: type) -> Callable[[Any], tuple[Any, ...]]:
    fields = attrs.fields(cls)
    for f in fields:
        # cls(*values) must rebuild the entity: every field positional, in order.
        if not f.init or f.kw_only:  # pragma: no cover - guarded by the round-trip tests
            msg = f"{cls.__name__}.{f.name} cannot be passed positionally"
            raise TypeError(msg)
    names = tuple(f.name for f in fields)

    def reduce(obj: Any) -> tuple[Any, ...]:
        return (cls, tuple([getattr(obj, n) for n in names]))

    return reduce


def _proxy(mapping: dict[Any, Any]) -> MappingProxyType[Any, Any]:
    return MappingProxyType(mapping)


def _reduce_proxy(proxy: MappingProxyType[Any, Any]) -> tuple[Any, ...]:
    return (_proxy, (dict(proxy),))


_DISPATCH: dict[type, Callable[[Any], tuple[Any, ...]]] = {MappingProxyType: _reduce_proxy}


def register(cls: type) -> None:
    """Send instances of the attrs class ``cls`` as their field values (see the module docs)."""
    _DISPATCH[cls] = _reducer(cls)


for _name in dir(_enums):
    _obj = getattr(_enums, _name)
    if (
        isinstance(_obj, type)
        and issubclass(_obj, enum.Enum)
        and _obj.__module__ == _enums.__name__
    ):
        _DISPATCH[_obj] = _reduce_member
for _cls in (
    _model.Inspection,
    _model.Licence,
    _model.Kindergarten,
    _model.IdentityDocument,
    _model.Guardian,
    _model.Child,
    _model.StatusRecord,
    _model.StatusChange,
    _model.RosterEntry,
    Violation,
    Candidate,
    RosterItem,
):
    register(_cls)


def dumps(obj: Any) -> bytes:
    """Pickle ``obj`` with the reducers above.

    >>> from studentstatus.domain.enums import Grade
    >>> loads(dumps([Grade.JUNIOR, {"a": (1, "x")}]))
    [<Grade.JUNIOR: 'JUNIOR'>, {'a': (1, 'x')}]
    """
    buf = io.BytesIO()
    pickler = pickle.Pickler(buf, protocol=pickle.HIGHEST_PROTOCOL)
    pickler.dispatch_table = _DISPATCH
    pickler.dump(obj)
    return buf.getvalue()


def loads(data: bytes) -> Any:
    """Unpickle what :func:`dumps` made."""
    return pickle.loads(data)  # noqa: S301 - our own worker's frames


# ----------------------------------------------------------------------------- the workers


@attrs.frozen
class Spec:
    """What every checker process needs (sent once, when it starts)."""

    path: str
    operator: Operator
    policy: Policy
    today: date
    now: datetime
    roster: bool
    kindergartens: dict[str, Kindergarten | None]
    chunk_size: int
    workers: int
    seeds: tuple[int, ...]
    numbers: Any  # the import's Bloom filter of the numbers in the store, or None
    encoder: Any  # the store's RowEncoder, or None (entities are sent)
    audit_key: Any = None  # the audit log's key (AuditKey), to pin registered children


FIRST_CHUNK = 100
"""Rows in the first chunk: the import's writes wait for it, so it is small."""


def chunk_sizes(size: int) -> Iterator[int]:
    """The rows of each chunk: doubling from :data:`FIRST_CHUNK` up to ``size``.

    >>> from itertools import islice
    >>> list(islice(chunk_sizes(1000), 6))
    [100, 200, 400, 800, 1000, 1000]
    >>> list(islice(chunk_sizes(50), 2))
    [50, 50]
    """
    n = min(FIRST_CHUNK, size)
    while True:
        yield n
        n = min(2 * n, size)


class Deal:
    """The chunks of :func:`chunk_sizes` dealt round-robin to ``workers``: which chunk a data
    row is in, and whether it is worker ``k``'s (rows asked in increasing order, a number
    again as often as wanted).

    >>> deal = Deal(1000, 2, 1)  # chunks of 100, 200, 400, 800, 1000… rows
    >>> [deal.owns(n) for n in (1, 100, 101, 300, 301, 700, 701, 1500, 1501)]
    [False, False, True, True, False, False, True, True, False]
    >>> deal.chunk, deal.owns(1501), deal.chunk
    (4, False, 4)
    """

    def __init__(self, size: int, workers: int, k: int) -> None:
        self._sizes = chunk_sizes(size)
        self._end = next(self._sizes)
        self._workers = workers
        self._k = k
        self.chunk = 0
        """The chunk of the last row asked about."""

    def owns(self, number: int) -> bool:
        """Whether data row ``number`` (from 1) is in one of worker ``k``'s chunks."""
        while number > self._end:
            self.chunk += 1
            self._end += next(self._sizes)
        return self.chunk % self._workers == self._k


def _send(conn: Any, msg: tuple[Any, ...]) -> None:
    conn.send_bytes(dumps(msg))


def serve(conn: Any) -> None:
    """A checker process: for each ``(specs, k)`` received, until EOF, run :func:`work` for
    each spec in turn (the imports of a batch, :class:`Batch`), handing each the L-number
    filter the previous one left; an error ends the batch."""
    gc.set_threshold(50_000, *gc.get_threshold()[1:])
    if NICE and hasattr(os, "nice"):
        with contextlib.suppress(OSError):  # not allowed here: the same priority
            os.nice(NICE)
    while True:
        try:
            data = conn.recv_bytes()
        except (EOFError, OSError):
            return
        specs, k = loads(data)
        numbers = None
        for spec in specs:
            numbers = work(spec, k, conn, numbers)
            if numbers is None:
                break


def work(spec: Spec, k: int, conn: Any, numbers: Any = None) -> Any:
    """Check the chunks ``c`` with ``c % spec.workers == k`` of the file and send them;
    return the filter of L numbers drawn against (``None`` after an error).

    ``numbers``: the filter an earlier import of the same batch left, used when
    ``spec.numbers`` is ``None`` (it holds the store's numbers and this worker's draws;
    the other processes' draws never share its residue, see :class:`Residue`).

    Frames: ``("chunk", rows, items, offset)`` per chunk, then ``("end", rows
    in the file)``; or ``("error", the pickled exception or b"", traceback
    text)``.  ``items`` are in row order: a checked candidate (with prepared rows:
    as the plain tuple of ``Candidate.wire``) or roster entry, a list of
    rejections, or the :class:`~studentstatus.services.csvio.CsvRow` itself for
    the import to check; ``offset`` is how far into the file the
    reading was when the chunk ended (in bytes, a little ahead: buffered).
    """
    try:
        rowcheck, numbers = checker(spec, k, numbers)
        check = rowcheck.check
        deal = Deal(spec.chunk_size, spec.workers, k)
        kgs = spec.kindergartens
        encoder = spec.encoder
        now = spec.now
        items: list[Any] = []
        mine = k == 0
        chunk = rows = total = 0
        # The other workers' rows are read (to count them) but not split into values.
        wanted = deal.owns if spec.workers > 1 else None
        with open(spec.path, "rb") as raw:
            for row in rows_of(raw, wanted):
                total += 1
                owned = deal.owns(total)
                if deal.chunk != chunk:  # this row starts the next chunk
                    if mine:
                        _send(conn, ("chunk", rows, items, raw.tell()))
                    chunk, mine = deal.chunk, owned
                    items, rows = [], 0
                if not mine:
                    continue
                rows += 1
                code = row.values.get("kindergarten_code", "")
                if code and code not in kgs:
                    items.append(row)
                    continue
                verdict = check(row)
                if type(verdict) is list:  # the row's rejections
                    if verdict:
                        items.append(verdict)
                elif encoder is not None and type(verdict) is Candidate:
                    verdict.encode(encoder, now)
                    items.append(verdict.wire())
                else:
                    items.append(verdict)
            if mine and total:
                _send(conn, ("chunk", rows, items, raw.tell()))
        _send(conn, ("end", total))
    except BaseException as exc:  # every failure goes back to the import
        text = traceback.format_exc()
        try:
            pickled = dumps(exc)
        except Exception:  # an exception that cannot be pickled: the text only
            pickled = b""
        _send(conn, ("error", pickled, text))
        return None
    return numbers


NICE = 5
"""Checker processes lower their scheduling priority by this much (``os.nice``; where the
system has it).  The import's own process and the database server work in turn — each
waits for the other — and on a machine with few cores that chain, not the checking, decides
when the import ends; at equal priority the checkers take turns on its core.  Measured on
2 vCPUs: idle CPU 11.6% → 8% of the import, about 7% less wall time."""

AHEAD = 24
"""Frames a checker process may be ahead of the import (each up to ``WORKER_CHUNK`` rows:
12,000 rows, so the checkers keep working through the import's larger writes)."""


class _Worker:
    """A checker process, this end of its pipe, and the thread that reads the pipe.

    The thread receives the frames of an import as they come and queues up to
    :data:`AHEAD` of them, so the checker keeps working while the import
    writes (a pipe alone buffers less than one frame); it holds the GIL only
    to unpickle.
    """

    def __init__(self) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.conn, theirs = ctx.Pipe(duplex=True)
        self.proc = ctx.Process(target=serve, args=(theirs,), daemon=True, name="ss-checker")
        self.proc.start()
        theirs.close()
        self.frames: queue.Queue[tuple[Any, ...] | BaseException] = queue.Queue(AHEAD)
        self.stop = threading.Event()

    def listen(self, jobs: int = 1) -> None:
        """Start reading the frames of ``jobs`` imports (until the last "end" or an "error")."""
        self.stop.clear()
        threading.Thread(
            target=self._read, args=(jobs,), daemon=True, name="ss-checker-reader"
        ).start()

    def _read(self, jobs: int) -> None:
        while not self.stop.is_set():
            try:
                item: tuple[Any, ...] | BaseException = loads(self.conn.recv_bytes())
            except (EOFError, OSError) as exc:
                item = exc
            except BaseException as exc:  # pragma: no cover - a frame that does not load
                item = exc
            while not self.stop.is_set():
                try:
                    self.frames.put(item, timeout=0.1)
                    break
                except queue.Full:
                    continue
            if isinstance(item, BaseException) or item[0] == "error":
                return
            if item[0] == "end":
                jobs -= 1
                if not jobs:
                    return

    def next_frame(self) -> tuple[Any, ...] | BaseException:
        """The next frame (or the error that ended the reading), waiting for it."""
        while True:
            try:
                return self.frames.get(timeout=1.0)
            except queue.Empty:
                if not self.proc.is_alive() and self.frames.empty():
                    return EOFError()

    def kill(self) -> None:
        self.stop.set()
        self.conn.close()
        if self.proc.is_alive():
            self.proc.kill()
        self.proc.join()


# Idle checker processes, kept for the next import (starting one costs about half a second:
# a new interpreter importing the library).  Taken and given back under the lock, so
# concurrent imports never share one.
_IDLE: list[_Worker] = []
_IDLE_LOCK = threading.Lock()


def _forget_in_child() -> None:
    # A forked child must not use (or kill) its parent's processes and pipes.
    _IDLE.clear()


os.register_at_fork(after_in_child=_forget_in_child)


def _take(n: int, workers: list[_Worker]) -> None:
    """Append ``n`` workers (idle ones first) to ``workers`` (the caller kills them on error)."""
    with _IDLE_LOCK:
        alive = [w for w in _IDLE if w.proc.is_alive()]
        _IDLE[:] = alive[n:]
        workers.extend(alive[:n])
    while len(workers) < n:
        workers.append(_Worker())


def _start(w: _Worker, specs: tuple[Spec, ...], k: int) -> _Worker:
    """Send ``w`` its part of each import; a worker that died while idle is replaced."""
    data = dumps((specs, k))
    try:
        w.conn.send_bytes(data)
    except OSError:
        w.kill()
        w = _Worker()
        w.conn.send_bytes(data)
    w.listen(len(specs))
    return w


def _give_back(workers: list[_Worker]) -> None:
    with _IDLE_LOCK:
        _IDLE.extend(workers)


def shutdown() -> None:
    """Stop the idle checker processes (they also end with this process)."""
    with _IDLE_LOCK:
        idle = list(_IDLE)
        _IDLE.clear()
    for w in idle:
        w.kill()


def checked_chunks(spec: Spec) -> Generator[tuple[int, list[Any], int], None, None]:
    """Yield ``(rows, items, offset)`` per chunk, in file order, from ``spec.workers``
    processes (``offset``: about how many bytes of the file were read, see :func:`work`).

    The processes are kept for the next import when every frame was read;
    closing the generator early (or an exception while it runs) kills them.
    """
    with Batch((spec,)) as batch:
        yield from batch.chunks(0)


class Batch:
    """Checker processes for the imports of ``specs``, one after the other: each process
    gets every spec when the batch starts and checks the next file as soon as it is done
    with the last one (up to :data:`AHEAD` frames ahead), while the import still writes.

    :meth:`chunks` gives each import's frames, in order; the processes are kept for later
    imports when every import's frames were read, and killed otherwise (an error, a
    batch left early).  All specs must have the same number of workers.
    """

    def __init__(self, specs: Sequence[Spec]) -> None:
        self.specs = tuple(specs)
        if len({s.workers for s in self.specs}) != 1:
            msg = "every import of a batch needs the same number of workers"
            raise ValueError(msg)
        self.workers: list[_Worker] = []
        self.done = 0

    def __enter__(self) -> Batch:
        try:
            _take(self.specs[0].workers, self.workers)
            for k in range(len(self.workers)):
                self.workers[k] = _start(self.workers[k], self.specs, k)
        except BaseException:
            self._kill()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        if self.done == len(self.specs) and exc[0] is None:
            _give_back(self.workers)
        else:
            self._kill()

    def _kill(self) -> None:
        for w in self.workers:
            w.kill()
        self.workers = []

    def chunks(self, i: int) -> Generator[tuple[int, list[Any], int], None, None]:
        """Import ``i``'s ``(rows, items, offset)`` per chunk, in file order (imports are
        read in order; see :func:`checked_chunks`)."""
        if i != self.done:
            text = f"import {i} read out of turn (next: {self.done})"
            raise RuntimeError(text)
        workers = self.workers
        n = len(workers)
        totals: dict[int, int] = {}
        c = 0
        while True:
            k = c % n
            msg = _receive(workers[k], k)
            if msg[0] == "end":
                totals[k] = msg[1]
                break
            yield msg[1], msg[2], msg[3]
            c += 1
        for k, w in enumerate(workers):  # the others' "end": each read the same rows
            if k not in totals:
                msg = _receive(w, k)
                if msg[0] != "end":
                    raise RuntimeError(_CHANGED)
                totals[k] = msg[1]
        if len(set(totals.values())) != 1:
            raise RuntimeError(_CHANGED)
        self.done += 1


_CHANGED = "the checker processes read different rows: did the file change during the import?"


def _receive(w: _Worker, i: int) -> tuple[Any, ...]:
    msg = w.next_frame()
    if isinstance(msg, EOFError | OSError):
        w.proc.join(5)
        text = f"checker process {i} ended without a word (exit code {w.proc.exitcode})"
        raise RuntimeError(text) from None
    if isinstance(msg, BaseException):  # pragma: no cover - a frame that did not load
        raise msg
    if msg[0] == "error":
        try:
            exc = loads(msg[1]) if msg[1] else None
        except Exception:  # not rebuilt here: the worker's own text below
            exc = None
        if not isinstance(exc, BaseException):
            raise RuntimeError(f"checker process {i} failed:\n{msg[2]}")
        exc.add_note(f"in checker process {i}:\n{msg[2]}")
        raise exc
    return msg


def spec_for(
    path: str | os.PathLike[str],
    operator: Operator,
    policy: Policy,
    today: date,
    now: datetime,
    *,
    roster: bool,
    kindergartens: dict[str, Kindergarten | None],
    chunk_size: int,
    workers: int,
    rng: Any,
    numbers: Any = None,
    encoder: Any = None,
    audit_key: Any = None,
) -> Spec:
    """The :class:`Spec` of an import: one seed per worker drawn from ``rng``; ``numbers``
    the import's filter of the store's numbers (``None``: an empty one), ``encoder`` the
    store's :class:`~studentstatus.ports.RowEncoder` (``None``: entities are sent)."""
    return Spec(
        os.path.abspath(path),  # idle workers keep the directory they started in
        operator,
        policy,
        today,
        now,
        roster,
        dict(kindergartens),
        chunk_size,
        workers,
        tuple(int(rng.getrandbits(64)) for _ in range(workers)),
        numbers,
        encoder,
        audit_key,
    )


def worker_rng(spec: Spec, k: int) -> Residue:
    """Worker ``k``'s random source (see the module docs)."""
    return Residue(random.Random(spec.seeds[k]), k, spec.workers + 1)


def checker(spec: Spec, k: int, numbers: Bloom | None = None) -> tuple[RowChecker, Bloom]:
    """The row checker of checker process ``k`` (no store; see the module docs) and the
    L-number filter it draws against and notes its numbers in: the spec's (the store's
    numbers), else ``numbers`` (the filter of this process's previous import of a batch),
    else an empty one."""
    rng = worker_rng(spec, k)
    if spec.numbers is not None:  # the store's numbers: draws are tested against them
        numbers = spec.numbers
    elif numbers is None:
        numbers = Bloom()
    rows = RowChecker(
        spec.policy,
        spec.today,
        spec.now,
        spec.operator,
        spec.kindergartens,
        IdSource(rng),
        FilteredDraws(numbers, rng),
        unlicensed_roster=spec.roster,
        audit_key=spec.audit_key,
    )
    return rows, numbers
