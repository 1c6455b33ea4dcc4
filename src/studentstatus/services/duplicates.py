"""Duplicates of child intake: identity claims, then the records that hold a claimed key.

Two live records are the same person when their children have the same
document number (``DUPLICATE_ID``) or, without a document, the same name, sex
and birth date (``SUSPECTED_DUPLICATE``): both records get the problem, in the
file and against the store (:mod:`studentstatus.domain.claims`).

:func:`open_problems` works a chunk of accepted rows at a time (a bulk import's
``chunk_size`` rows, or the one row of
:func:`~studentstatus.services.intake.register_child`): it claims the identity
keys of the chunk's rows (sorted, one statement) before it looks for other
records; only keys that were claimed before are looked up, all at once
(:func:`store_matches_many`, :func:`unresolved_kinds`: a few bulk queries when
the store offers the bulk repository methods).  A claim locks its key until the
unit of work commits, so a concurrent registration of the same child waits for
the import and then finds its records (and the other way round): one person,
one status, held by the database.  Two imports whose files share children may
deadlock on their claims; the database undoes one of them, which raises
:class:`~studentstatus.errors.TryAgain` having written nothing.

>>> from collections import Counter
>>> from datetime import date, datetime, timezone
>>> from studentstatus.adapters.memory import MemoryStore
>>> from studentstatus.services.intake_rows import Candidate, Ref
>>> refs = [Ref(f"r{i}", f"c{i}", "1111000001", "110105", "PENDING", "MIDDLE", None)
...         for i in (1, 2)]
>>> twins = [Candidate(i, ref, ("d", "110105202003150038"), 0) for i, ref in enumerate(refs, 1)]
>>> serial = iter(range(1, 100))
>>> log = ProblemLog(lambda prefix: f"{prefix}{next(serial)}", "county:110105",
...                  datetime(2024, 9, 2, tzinfo=timezone.utc), date(2025, 7, 31), Counter())
>>> with MemoryStore().unit_of_work() as uow:
...     open_problems(uow, twins, {}, log)
>>> [(p.record_id, p.kind.value, p.related_record_ids) for p in log.problems]
[('r2', 'DUPLICATE_ID', ('r1',)), ('r1', 'DUPLICATE_ID', ('r2',))]
>>> [c.problems for c in twins], log.counts
([['DUPLICATE_ID'], ['DUPLICATE_ID']], Counter({'DUPLICATE_ID': 2}))
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from datetime import date, datetime

from studentstatus.domain.claims import IdentityKey, claim_key
from studentstatus.domain.enums import ProblemKind, ProblemStatus
from studentstatus.domain.model import Child, ProblemRecord, StatusRecord
from studentstatus.ports import (
    AuditEventFields,
    UnitOfWork,
)
from studentstatus.services.intake_rows import Candidate, Ref

__all__ = ["ProblemLog", "open_problems", "store_matches_many", "unresolved_kinds"]

_UNRESOLVED = tuple(s for s in ProblemStatus if s is not ProblemStatus.RESOLVED)


class ProblemLog:
    """The problems a chunk of intake opens, their ``problem_open`` audit events, and the
    kinds each record got in the chunk; ``counts`` (problems by kind) may span chunks.

    >>> from collections import Counter
    >>> from datetime import date, datetime, timezone
    >>> log = ProblemLog(lambda prefix: prefix + "1", "county:110105",
    ...                  datetime(2024, 9, 2, tzinfo=timezone.utc), date(2025, 7, 31), Counter())
    >>> log.open(Ref("r1", "c1", "1111000001", "110105", "PENDING", None, None),
    ...          ProblemKind.INVALID_ID, ())
    >>> log.problems[0].due_date, log.events[0][1], log.kinds
    (datetime.date(2025, 7, 31), 'problem_open', {'r1': {<ProblemKind.INVALID_ID: 'INVALID_ID'>}})
    """

    def __init__(
        self,
        new_id: Callable[[str], str],
        operator: str,
        now: datetime,
        due: date,
        counts: Counter[str],
    ) -> None:
        self.new_id = new_id
        self.operator = operator
        self.now = now
        self.due = due
        self.counts = counts
        self.problems: list[ProblemRecord] = []
        self.events: list[AuditEventFields] = []  # (operator, action, subject, reason, ...)
        self.kinds: dict[str, set[ProblemKind]] = {}

    def open(self, rec: StatusRecord | Ref, kind: ProblemKind, related: Sequence[str]) -> None:
        """Open a ``kind`` problem on ``rec`` (county = the record's region)."""
        p = ProblemRecord(
            id=self.new_id("p"),
            record_id=rec.id,
            kind=kind,
            county_code=rec.region_code,
            kindergarten_code=rec.kindergarten_code,
            opened_at=self.now,
            due_date=self.due,
            related_record_ids=tuple(related),
        )
        self.problems.append(p)
        self.kinds.setdefault(rec.id, set()).add(kind)
        self.counts[kind.value] += 1
        self.events.append(
            (self.operator, "problem_open", p.id, "", {}, {"kind": kind.value, "record": rec.id})
        )


def open_problems(
    uow: UnitOfWork,
    cands: Sequence[Candidate],
    unsent: Mapping[IdentityKey, list[Ref]],
    log: ProblemLog,
) -> None:
    """Claim the identity keys of ``cands`` and open their problems in ``log``.

    Each candidate, in order: its ``INVALID_ID`` problem, then a duplicate
    problem when other live records have its key (earlier candidates, records of
    ``unsent`` — written later by the import, see
    :class:`~studentstatus.services.intake_writes.Writer` — and the store's); each of
    those others gets the problem too unless it has an unresolved one of that
    kind.  The candidates' :attr:`~studentstatus.services.intake_rows.Candidate.problems`
    are noted as they are opened.  See the module docs for an example.
    """
    # Claim every key first (domain.claims): the claim waits for any other unit
    # holding the key, so the look-ups below see what it committed.  A key claimed
    # before (by the store's records or an earlier chunk of this file) is looked up,
    # all of them at once; records of earlier chunks not written yet count too.
    open_problem = log.open
    pending_kinds = log.kinds
    local: dict[IdentityKey, list[Candidate]] = {}
    ckeys = [claim_key(c.key) for c in cands]
    before = uow.claims.claim(ckeys) if ckeys else {}
    hits = [before[k] > 0 for k in ckeys]
    stored = store_matches_many(uow, [c.key for c, hit in zip(cands, hits) if hit])
    unresolved = unresolved_kinds(
        uow,
        [r.id for rs in stored.values() for r in rs]
        + [r.id for c, hit in zip(cands, hits) if hit for r in unsent.get(c.key, ())],
    )
    for c, hit in zip(cands, hits):
        if c.invalid_id is not None:
            open_problem(c.ref, ProblemKind.INVALID_ID, ())
            c.problems.append(ProblemKind.INVALID_ID.value)
        others: list[StatusRecord | Ref] = [o.ref for o in local.get(c.key, ())]
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


def store_matches_many(
    uow: UnitOfWork, keys: Sequence[IdentityKey]
) -> dict[IdentityKey, list[StatusRecord]]:
    """The live records in the store whose child has each key, in a few bulk queries
    (``children.find_by_documents`` / ``find_by_identities``, ``records.for_children``).

    >>> from studentstatus.adapters.memory import MemoryStore
    >>> with MemoryStore().unit_of_work() as uow:
    ...     store_matches_many(uow, [("i", "李小红", "F", "2021-05-01")] * 2)
    {('i', '李小红', 'F', '2021-05-01'): []}
    """
    wanted = list(dict.fromkeys(keys))
    if not wanted:
        return {}
    repo = uow.children
    numbers = [k[1] for k in wanted if k[0] == "d"]
    identities = [(k[1], k[2], date.fromisoformat(k[3])) for k in wanted if k[0] != "d"]
    by_number = repo.find_by_documents(numbers) if numbers else {}
    by_identity = repo.find_by_identities(identities) if identities else {}
    children: dict[IdentityKey, list[Child]] = {}
    for key in wanted:
        if key[0] == "d":
            children[key] = by_number.get(key[1], [])
        else:
            found = by_identity.get((key[1], key[2], date.fromisoformat(key[3])), [])
            children[key] = [
                c for c in found if c.document is None or c.document.type.value == "none"
            ]
    child_ids = list(dict.fromkeys(c.id for cs in children.values() for c in cs))
    records = uow.records.for_children(child_ids) if child_ids else {}
    return {
        key: [r for c in cs for r in records.get(c.id, ()) if r.state.is_live]
        for key, cs in children.items()
    }


def unresolved_kinds(uow: UnitOfWork, record_ids: Sequence[str]) -> dict[str, set[ProblemKind]]:
    """The kinds of the not-yet-resolved problems of each record (records without any
    are left out).

    >>> from studentstatus.adapters.memory import MemoryStore
    >>> with MemoryStore().unit_of_work() as uow:
    ...     unresolved_kinds(uow, ["r1", "r1"])
    {}
    """
    ids = list(dict.fromkeys(record_ids))
    out: dict[str, set[ProblemKind]] = {}
    if not ids:
        return out
    found = uow.problems.for_records(ids, statuses=_UNRESOLVED)
    for record_id, problems in found.items():
        kinds = {p.kind for p in problems if p.status is not ProblemStatus.RESOLVED}
        if kinds:
            out[record_id] = kinds
    return out
