"""The writing side of child intake: a chunk's duplicates, problems, records and audit entries.

A :class:`Writer` works in one unit of work (a bulk import's file, or one
:func:`~studentstatus.services.intake.register_child`) and writes the verdicts
of :class:`~studentstatus.services.intake_rows.RowChecker` a chunk at a time
(:meth:`Writer.flush`): it opens the chunk's problems
(:func:`~studentstatus.services.duplicates.open_problems`), writes the children,
records, ``REGISTER`` events and L-number claims through the bulk methods
(``add_many``, ``append_many``, ``claim_many``), the problems and the roster
entries, and seals one audit entry per record, problem and roster entry.

**Prepared rows.**  With checker processes on a store whose unit of work writes
prepared rows (:class:`~studentstatus.ports.PreparedWrites`: the SQL adapter on
PostgreSQL and SQLite), the writer is given the store's
:class:`~studentstatus.ports.RowEncoder` and the candidates come encoded
(``COPY`` text; SQLite: ``executemany`` parameters).  It gathers them over its
chunks and writes every ``write_batch`` rows, one ``COPY`` per table
(:meth:`Writer.send`; PostgreSQL:
:data:`~studentstatus.services.intake.WRITE_BATCH`; SQLite: every chunk, gathering
saves it nothing); until then its duplicate search looks among them too.  A
large batch costs the server far less than a ``COPY`` per chunk: it touches each
page of a table's random-key indexes once.  In the ``last_stretch`` of a file
(fewer than :data:`~studentstatus.services.intake.WRITE_TAIL` rows seem left)
every chunk is written: the checker processes are done by the last write, which
nothing overlaps, so it is kept small.  Problems and audit entries are written
chunk by chunk as always.

>>> import random
>>> from collections import Counter
>>> from datetime import date, datetime, timezone
>>> from studentstatus.adapters.memory import MemoryStore
>>> from studentstatus.domain.enums import Sex
>>> from studentstatus.domain.model import RosterEntry
>>> from studentstatus.services.intake_rows import RosterItem
>>> store = MemoryStore()
>>> now = datetime(2024, 9, 2, tzinfo=timezone.utc)
>>> entry = RosterEntry("u1", "110105", "无证园", "李小红", Sex.F, date(2021, 5, 1))
>>> records: list[RegisteredChild | RosteredChild] = []
>>> with store.unit_of_work() as uow:
...     writer = Writer(uow, "county:110105", now, date(2025, 7, 31), str, records=records)
...     writer.flush([RosterItem(1, entry)])
...     uow.commit()
>>> writer.rostered, records
(1, [RosteredChild(row=1, roster_id='u1')])
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from datetime import date, datetime
from typing import Any

import attrs

from studentstatus.domain.claims import IdentityKey
from studentstatus.domain.enums import Grade, NumberKind, ProblemKind, State
from studentstatus.domain.model import IssuedNumber, _mask_g
from studentstatus.ports import PreparedWrites, RowEncoder, UnitOfWork
from studentstatus.services.audit import audit_fields
from studentstatus.services.duplicates import ProblemLog, open_problems
from studentstatus.services.intake_rows import ENCODED, Candidate, Ref, RosterItem

__all__ = ["RegisteredChild", "RosteredChild", "Writer", "outcome"]


@attrs.frozen
class RegisteredChild:
    """A record a registration wrote: ids, state, grade, L number, problems opened.

    What :func:`~studentstatus.services.intake.register_child` returns, and one of
    :attr:`IntakeReport.records <studentstatus.services.intake.IntakeReport>` per
    accepted row of an import.  ``row`` is the row number (a form: 1);
    ``problems`` are the kinds of problem the registration opened for the record
    (a duplicate, an invalid ID).  The repr masks the L number (it holds the birth
    date); :meth:`to_dict` is the JSON form, with the L number as the kindergarten
    is given it.

    >>> rec = RegisteredChild(1, "r1", "c1", "1111000001", "L110105202003150042",
    ...                       State.PENDING, Grade.MIDDLE, (ProblemKind.DUPLICATE_ID,))
    >>> rec.state, "202003150042" in repr(rec)
    (<State.PENDING: 'PENDING'>, False)
    >>> rec.to_dict()["problems"], rec.to_dict()["grade"]
    (['DUPLICATE_ID'], 'MIDDLE')
    """

    row: int
    record_id: str
    child_id: str
    kindergarten_code: str
    temp_number: str | None = attrs.field(repr=_mask_g)
    state: State
    grade: Grade | None
    problems: tuple[ProblemKind, ...] = ()

    @classmethod
    def of(cls, written: Candidate) -> RegisteredChild:
        """The registered record of a written candidate row."""
        ref = written.ref
        return cls(
            written.row,
            ref.id,
            ref.child_id,
            ref.kindergarten_code,
            ref.temp_number,
            State(ref.state),
            Grade(ref.grade) if ref.grade else None,
            tuple(ProblemKind(k) for k in sorted(set(written.problems))),
        )

    def to_dict(self) -> dict[str, Any]:
        """The JSON form: ``row``, ``record_id``, ``child_id``, ``kindergarten_code``,
        ``temp_number``, ``state``, ``grade``, ``problems`` (enums as their values)."""
        return {
            "row": self.row,
            "record_id": self.record_id,
            "child_id": self.child_id,
            "kindergarten_code": self.kindergarten_code,
            "temp_number": self.temp_number,
            "state": self.state.value,
            "grade": self.grade.value if self.grade else None,
            "problems": [k.value for k in self.problems],
        }


@attrs.frozen
class RosteredChild:
    """A row an import put on a county's unlicensed roster: no status record, no number.

    One of :attr:`IntakeReport.records <studentstatus.services.intake.IntakeReport>`
    (``unlicensed_roster=True``).  ``state`` is always ``None`` (it has no status), as
    in the JSON form.

    >>> item = RosteredChild(4, "u1")
    >>> item.state, item.to_dict()
    (None, {'row': 4, 'roster_id': 'u1', 'state': None})
    """

    row: int
    roster_id: str

    @property
    def state(self) -> None:
        """``None``: a rostered child has no status (a :class:`RegisteredChild` has one)."""
        return None

    def to_dict(self) -> dict[str, Any]:
        """The JSON form: ``row``, ``roster_id`` and ``state: null``."""
        return {"row": self.row, "roster_id": self.roster_id, "state": None}


def outcome(item: Candidate | RosterItem) -> RegisteredChild | RosteredChild:
    """What a written row became (one of
    :attr:`IntakeReport.records <studentstatus.services.intake.IntakeReport>`).

    >>> from studentstatus.services.intake_rows import Ref
    >>> ref = Ref("r1", "c1", "1111000001", "110105", "PENDING", "MIDDLE", "L1")
    >>> outcome(Candidate(3, ref, ("d", "X"), 0, problems=["INVALID_ID"])).problems
    (<ProblemKind.INVALID_ID: 'INVALID_ID'>,)
    """
    if isinstance(item, RosterItem):
        return RosteredChild(item.row, item.entry.id)
    return RegisteredChild.of(item)


class Writer:
    """Writes intake verdicts, a chunk at a time, in the unit of work ``uow`` (see the
    module docs for an example).

    ``operator``: the operator's text (audit entries); ``now``: when the rows are
    recorded; ``due``: the due date of the problems opened; ``new_id``: ids of problems;
    ``on_record``: called with each written row's :func:`outcome`; ``records``: a list
    the outcomes are appended to (``None``: not kept).  ``encoder`` and
    ``write_batch``: prepared rows (see the module docs); ``last_stretch``: write every
    chunk.  ``accepted``, ``rostered`` and ``problem_counts`` (by kind) count what was
    written.
    """

    def __init__(
        self,
        uow: UnitOfWork,
        operator: str,
        now: datetime,
        due: date,
        new_id: Callable[[str], str],
        *,
        on_record: Callable[[RegisteredChild | RosteredChild], None] | None = None,
        records: list[RegisteredChild | RosteredChild] | None = None,
        encoder: RowEncoder | None = None,
        write_batch: int = 0,
    ) -> None:
        self.uow = uow
        self.operator = operator
        self.now = now
        self.due = due
        self.new_id = new_id
        self.on_record = on_record
        self.records = records
        self.encoder = encoder
        self.write_batch = write_batch
        self.last_stretch = False  # near the end of the file: write every chunk (see send())
        # The prepared rows of earlier chunks not written yet, and their records by key.
        self.unsent: list[tuple[object, object, object, object]] = []
        self.unsent_refs: dict[IdentityKey, list[Ref]] = {}
        self.accepted = 0
        self.rostered = 0
        self.problem_counts: Counter[str] = Counter()

    def flush(self, chunk: Sequence[Candidate | RosterItem]) -> None:
        """Write a chunk: its problems, records (or prepared rows, see :meth:`send`), roster
        entries and audit entries; then hand on the outcomes."""
        uow = self.uow
        cands = [c for c in chunk if isinstance(c, Candidate)]
        rostered = [c for c in chunk if isinstance(c, RosterItem)]
        op = self.operator
        log = ProblemLog(self.new_id, op, self.now, self.due, self.problem_counts)
        open_problems(uow, cands, self.unsent_refs, log)
        problems = log.problems
        events = log.events  # (operator, action, subject, reason, before, after)
        no_fields: dict[str, Any] = {}  # shared: sealing reads it, seal_events copies it
        for c in cands:
            ref = c.ref
            after: dict[str, Any] = {
                "state": ref.state,
                "kindergarten_code": ref.kindergarten_code,
                "grade": ref.grade,
                "temp_number": ref.temp_number,
                "child_id": ref.child_id,
            }
            if c.child_digest is not None:  # a keyed log pins the registered child
                after["child_digest"] = c.child_digest
            events.append((op, "register", ref.id, "", no_fields, after))
        if cands and self.encoder is not None:
            for c in cands:
                if c.encoded is None:  # checked here, not by a checker process
                    c.encode(self.encoder, self.now)
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
        self.accepted += len(cands)
        self.rostered += len(rostered)
        on_record, records = self.on_record, self.records
        if on_record is None and records is None:
            return
        for item in chunk:
            done = outcome(item)
            if on_record is not None:
                on_record(done)
            if records is not None:
                records.append(done)

    def send(self) -> None:
        """Write the prepared rows gathered over the chunks (one ``COPY`` per table).

        Until they are written, :meth:`flush` looks for duplicates among them too
        (see the module docs for when they are written).
        """
        if not self.unsent:
            return
        uow = self.uow
        assert isinstance(uow, PreparedWrites)
        rows = self.unsent
        uow.write_prepared([(kind, [e[i] for e in rows]) for i, kind in enumerate(ENCODED)])
        self.unsent = []
        self.unsent_refs = {}
