"""Public-security verification (公安比对): check resident IDs against the population registry.

:func:`verify_records` checks every ``ACTIVE`` or ``PENDING`` record in the
operator's scope whose child has a resident ID (or an HK/Macau/Taiwan
residence permit, same layout) and whose record is not yet ``MATCH``:

* the records are selected in one read pass (ids spooled to a temporary
  file), then sent to the registry in batches of ``chunk_size``, one unit of
  work per batch; each batch reads its records, children and open
  verification problems in bulk and writes records, new problems, resolved
  problems (``problems.update_many``) and audit entries in
  bulk, so memory stays flat in the number of records and the round trips
  per batch do not grow with it;
* the answer is stored in ``record.verification``;
* a non-match opens a problem of the matching kind
  (:func:`studentstatus.domain.problems.problem_for_verification`:
  ``NOT_FOUND``, ``NAME_MISMATCH``, ``INFO_MISMATCH``, ``REGISTRY_DECEASED``)
  unless the record already has that problem open;
* a match resolves the record's open verification problems (the data was
  corrected since);
* a number that fails its own check (an ``INVALID_ID`` problem) is not sent:
  it is counted under ``skipped["invalid_id"]``.

Only a province verifies (``verify`` in
:data:`~studentstatus.domain.jurisdiction.ROLE_RULES`), within its prefix.
Each verified record is logged in the audit trail (record id and result —
never the number).  Running it again only re-sends records that are not
``MATCH``; a record the county confirmed on evidence (``CONFIRMED``, see
:mod:`studentstatus.services.problems`) is not sent again
(``skipped["county_confirmed"]``).

Verification and national numbers are identity facts, not status changes:
they are stored on the record (its version goes up) and in the audit log,
not in the change log.

>>> from datetime import date
>>> from studentstatus.adapters.population import MemoryPopulationRegistry
>>> from studentstatus.domain.jurisdiction import Operator
>>> from studentstatus.services.intake import import_children
>>> from studentstatus.testing.examples import child_row, example_runtime
>>> rt = example_runtime()  # a memory store, kindergarten 1111000001 licensed, 2 Sep 2024
>>> row = child_row(id_type="resident", id_number="110105202003150038")
>>> _ = import_children(rt, Operator.parse("kindergarten:1111000001"), [row])
>>> registry = MemoryPopulationRegistry(
...     [("110105202003150038", "王晓明", "M", date(2020, 3, 15), "normal")])
>>> report = verify_records(rt, Operator.parse("province:11"), registry)
>>> report.checked, report.results, report.problems
(1, {'NAME_MISMATCH': 1}, {'NAME_MISMATCH': 1})
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import date
from typing import Any

import attrs

from studentstatus import ids
from studentstatus.batching import spooled
from studentstatus.domain.child import RESIDENT_LIKE
from studentstatus.domain.enums import ProblemKind, ProblemStatus, State, VerificationResult
from studentstatus.domain.jurisdiction import Operator
from studentstatus.domain.model import Child, ProblemRecord, StatusRecord
from studentstatus.domain.problems import problem_for_verification
from studentstatus.ports import PopulationRegistry, SkippingRegistry, UnitOfWork
from studentstatus.services.audit import AuditEvent, audit_many
from studentstatus.services.authority import require_role
from studentstatus.services.intake import new_problem
from studentstatus.services.runtime import Runtime

__all__ = [
    "VERIFICATION_KINDS",
    "VerificationReport",
    "open_problems_of",
    "query_for",
    "update_problems",
    "verify_chunk",
    "verify_records",
]

VERIFICATION_KINDS: frozenset[ProblemKind] = frozenset(
    {
        ProblemKind.NOT_FOUND,
        ProblemKind.NAME_MISMATCH,
        ProblemKind.INFO_MISMATCH,
        ProblemKind.REGISTRY_DECEASED,
    }
)
"""Problem kinds that verification opens (and closes again on a later match)."""

_OPEN = (ProblemStatus.OPEN, ProblemStatus.EVIDENCE_SUBMITTED)


@attrs.frozen
class _Query:
    number: str
    name: str
    sex: str
    birth_date: date


@attrs.define
class VerificationReport:
    """Counts: records checked, results by kind, problems opened/resolved, skipped by reason.

    >>> VerificationReport().to_dict()["checked"]
    0
    """

    checked: int = 0
    results: dict[str, int] = attrs.field(factory=dict)
    problems: dict[str, int] = attrs.field(factory=dict)
    resolved: int = 0
    skipped: dict[str, int] = attrs.field(factory=dict)
    registry_skipped: dict[str, int] = attrs.field(factory=dict)
    """Rows of the registry extract that were not read, by reason (a registry that keeps
    such a count, as :class:`~studentstatus.adapters.population.CsvPopulationRegistry`
    does in ``skipped_by``); the records are counted in ``skipped``."""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return attrs.asdict(self)


def query_for(child: Child) -> _Query | None:
    """The registry query for a child with a valid resident ID / permit, else ``None``.

    >>> from datetime import date
    >>> from studentstatus.domain.enums import Sex
    >>> query_for(Child("c1", "王", Sex.M, date(2020, 3, 15))) is None
    True
    """
    doc = child.document
    if doc is None or doc.type.value not in RESIDENT_LIKE or not doc.number:
        return None
    if not ids.is_valid_document(doc.type, doc.number, strict_region=False):
        return None
    return _Query(doc.number, child.name, child.sex.value, child.birth_date)


def verify_chunk(
    rt: Runtime,
    operator: Operator,
    uow: UnitOfWork,
    record_ids: Sequence[str],
    registry: PopulationRegistry,
    report: VerificationReport,
    *,
    open_problems: dict[str, list[ProblemRecord]] | None = None,
) -> None:
    """Verify the given records in ``uow`` (not committed here); updates ``report``.

    ``open_problems`` maps record ids to their unresolved problems; when it is
    ``None`` the open verification problems of the batch are read in one call
    (:func:`open_problems_of`).
    """
    now = rt.clock.now()
    records = uow.records.get_many(list(record_ids))
    children = uow.children.get_many([r.child_id for r in records.values()])
    batch: list[tuple[StatusRecord, _Query]] = []
    skipped: Counter[str] = Counter(report.skipped)
    for rid in record_ids:
        rec = records.get(rid)
        if rec is None or rec.state not in (State.ACTIVE, State.PENDING):
            skipped["not_live"] += 1
            continue
        if not operator.covers_record(rec):
            skipped["out_of_scope"] += 1
            continue
        if rec.verification is VerificationResult.MATCH:
            skipped["already_matched"] += 1
            continue
        if rec.verification is VerificationResult.CONFIRMED:
            skipped["county_confirmed"] += 1
            continue
        child = children.get(rec.child_id)
        if child is None or child.document is None:
            skipped["no_resident_id"] += 1
            continue
        query = query_for(child)
        if query is None:
            no_id = child.document.type.value not in RESIDENT_LIKE
            skipped["no_resident_id" if no_id else "invalid_id"] += 1
            continue
        batch.append((rec, query))
    report.skipped = dict(skipped)
    if not batch:
        return
    answers = _ask(registry, batch)
    if open_problems is None:
        open_problems = open_problems_of(uow, [rec.id for rec, _q in batch], VERIFICATION_KINDS)
    updated: list[StatusRecord] = []
    new_problems: list[ProblemRecord] = []
    closed: list[ProblemRecord] = []
    audits: list[AuditEvent] = []
    results: Counter[str] = Counter(report.results)
    opened: Counter[str] = Counter(report.problems)
    for (rec, _query), result in zip(batch, answers):
        results[result.value] += 1
        report.checked += 1
        current = open_problems.get(rec.id, [])
        kind = problem_for_verification(result)
        after: dict[str, Any] = {"verification": result.value}
        if kind is None:
            for p in current:
                if p.kind in VERIFICATION_KINDS:
                    closed.append(
                        attrs.evolve(
                            p,
                            status=ProblemStatus.RESOLVED,
                            resolution="verified: the registry now matches",
                            resolved_by=str(operator),
                            resolved_at=now,
                        )
                    )
        elif not any(p.kind is kind for p in current):
            problem = new_problem(rt, rec, kind, detail=f"registry: {result.value}")
            new_problems.append(problem)
            opened[kind.value] += 1
            after["problem"] = problem.id
        if rec.verification is not result:
            updated.append(attrs.evolve(rec, verification=result))
        audits.append(
            AuditEvent(
                str(operator),
                "verify",
                rec.id,
                before={"verification": rec.verification.value if rec.verification else None},
                after=after,
            )
        )
    if updated:
        uow.records.update_many(updated)
    if new_problems:
        uow.problems.add_many(new_problems)
    if closed:
        update_problems(uow, closed)
    for p in closed:
        audits.append(AuditEvent(str(operator), "problem_resolve", p.id, reason="verified"))
    report.resolved += len(closed)
    audit_many(uow, audits, at=now)
    report.results = dict(results)
    report.problems = dict(opened)


def open_problems_of(
    uow: UnitOfWork, record_ids: Sequence[str], kinds: Iterable[ProblemKind] | None = None
) -> dict[str, list[ProblemRecord]]:
    """Unresolved problems (optionally of ``kinds``) of the given records: id → problems by id.

    One call to ``problems.for_records``.

    >>> from studentstatus.adapters.memory import MemoryStore
    >>> with MemoryStore().unit_of_work() as uow:
    ...     open_problems_of(uow, ["r1", "r2"])
    {}
    """
    return uow.problems.for_records(record_ids, statuses=_OPEN, kinds=kinds)


def update_problems(uow: UnitOfWork, problems: Sequence[ProblemRecord]) -> list[ProblemRecord]:
    """Optimistic update of many problems (``problems.update_many``).

    >>> from studentstatus.adapters.memory import MemoryStore
    >>> with MemoryStore().unit_of_work() as uow:
    ...     update_problems(uow, [])
    []
    """
    return uow.problems.update_many(problems)


def _ask(
    registry: PopulationRegistry, batch: Sequence[tuple[StatusRecord, _Query]]
) -> list[VerificationResult]:
    """One answer per item, in order.  The port answers one result per *number*, so two
    records with the same number (a duplicate) go to the registry in separate calls."""
    answers: list[VerificationResult | None] = [None] * len(batch)
    pending = list(range(len(batch)))
    while pending:
        seen: set[str] = set()
        now: list[int] = []
        later: list[int] = []
        for i in pending:
            number = batch[i][1].number
            (later if number in seen else now).append(i)
            seen.add(number)
        got = registry.verify([batch[i][1] for i in now])
        for i in now:
            answers[i] = got.get(batch[i][1].number, VerificationResult.NOT_FOUND)
        pending = later
    return [a if a is not None else VerificationResult.NOT_FOUND for a in answers]


def verify_records(
    rt: Runtime,
    operator: Operator,
    registry: PopulationRegistry | None = None,
    *,
    chunk_size: int = 2000,
    progress: Callable[[int], None] | None = None,
) -> VerificationReport:
    """Verify every unmatched ACTIVE/PENDING record with a resident ID in the operator's scope.

    ``registry`` defaults to ``rt.registry``.  Raises
    :class:`~studentstatus.errors.PermissionDenied` unless the operator may
    ``verify``; :class:`ValueError` when there is no registry.
    """
    require_role(operator, "verify")
    reg = registry if registry is not None else rt.registry
    if reg is None:
        msg = "no population registry: pass one or set Runtime.registry"
        raise ValueError(msg)
    report = VerificationReport(
        registry_skipped=dict(sorted(reg.skipped_by.items()))
        if isinstance(reg, SkippingRegistry)
        else {}
    )
    with spooled(_candidate_ids(rt, operator), chunk_size) as chunks:
        done = 0
        for ids_ in chunks:
            with rt.store.unit_of_work() as uow:
                verify_chunk(rt, operator, uow, ids_, reg, report)
                uow.commit()
            done += len(ids_)
            if progress is not None:
                progress(done)
    return report


def _candidate_ids(rt: Runtime, operator: Operator) -> Iterator[str]:
    with rt.store.unit_of_work() as uow:
        for rec in uow.records.iter(states=[State.ACTIVE, State.PENDING], **operator.list_filter()):
            if rec.verification is None or not rec.verification.is_verified:
                yield rec.id
