"""Problem records (问题学籍): the county's list, the overdue list, and the resolution actions.

:func:`list_problems` streams the problems in the operator's scope (a county
sees its county, a kindergarten its own problems, a city/province/ministry
its prefix) — by default the unresolved ones, with ``overdue=True`` only
those past their due date.  Each item carries ``id``, ``kind``,
``record_id``, ``kindergarten_code``, ``county_code``, ``due_date``,
``status``, ``overdue``, ``related_record_ids`` and ``detail``.

:func:`resolve_problem` applies one action (rules in
:func:`studentstatus.domain.problems.resolve`; every action needs a reason
and is logged in the audit trail with operator and reason):

* ``evidence`` (佐证) — evidence references; the problem waits for the
  county (``EVIDENCE_SUBMITTED``); the county then ``accept``\\ s (resolved)
  or ``reopen``\\ s it;
* ``correct`` (变更) — corrected child data (CSV column names, e.g.
  ``{"id_number": …, "name": …}``); the child is re-checked completely (any
  violation refuses the action) and, when it has a resident ID and a
  population registry is available (``Runtime.registry``), re-verified: a
  match resolves the problem, a non-match resolves it and opens the problem
  of the new answer;
* ``delete`` (删除) — the record is cancelled (status machine ``CANCEL``
  with the reason); all of its open problems are resolved, and a duplicate
  problem of another record that no longer has a live twin is resolved too;
* ``arbitrate`` (仲裁, county only, duplicate problems) — the winner keeps its
  record, every other record of the duplicate group is cancelled, and all
  the group's duplicate problems are resolved.

>>> import random
>>> from datetime import date, datetime, timezone
>>> from studentstatus.adapters.memory import MemoryStore
>>> from studentstatus.domain.enums import KindergartenType
>>> from studentstatus.domain.jurisdiction import Operator
>>> from studentstatus.domain.model import Kindergarten, Licence
>>> from studentstatus.services.intake import import_children
>>> from studentstatus.services.runtime import FixedClock, Runtime
>>> store = MemoryStore()
>>> rt = Runtime(store, FixedClock(datetime(2024, 9, 2, tzinfo=timezone.utc)), random.Random(1))
>>> lic = (Licence("L1", "局", date(2020, 1, 1), date(2030, 12, 31)),)
>>> with store.unit_of_work() as uow:
...     for code in ("1111000001", "1111000002"):
...         uow.kindergartens.add(Kindergarten(code, "12100000400000624D", "园" + code[-1],
...                                            "110105", KindergartenType.PUBLIC, licences=lic))
...     uow.commit()
>>> row = {"kindergarten_code": "1111000001", "name": "王小明", "sex": "男",
...        "birth_date": "2020-03-15", "id_type": "resident", "id_number": "110105202003150038",
...        "guardian_phone": "13800138000", "entry_date": "2024-09-01", "grade": "中班"}
>>> county = Operator.parse("county:110105")
>>> rows = [row, dict(row, kindergarten_code="1111000002")]
>>> recs = import_children(rt, county, rows).records
>>> [p["kind"] for p in list_problems(rt, county)]
['DUPLICATE_ID', 'DUPLICATE_ID']
>>> pid = next(p["id"] for p in list_problems(rt, county) if p["record_id"] == recs[0]["record_id"])
>>> out = resolve_problem(rt, county, pid, "arbitrate", reason="入园材料核实",
...                       winner_record_id=recs[0]["record_id"])
>>> out["cancelled"] == [recs[1]["record_id"]], list(list_problems(rt, county))
(True, [])
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import attrs

from studentstatus.domain.child import RESIDENT_LIKE, build_child
from studentstatus.domain.claims import claim_key, identity_key
from studentstatus.domain.enums import ChangeKind, ProblemKind, ProblemStatus, Role, State
from studentstatus.domain.jurisdiction import Operator
from studentstatus.domain.machine import Change, Context, apply
from studentstatus.domain.model import Child, ProblemRecord, StatusRecord
from studentstatus.domain.problems import arbitrate, is_overdue, problem_for_verification, resolve
from studentstatus.errors import NotFoundError, RuleViolations, Violation
from studentstatus.ports import UnitOfWork
from studentstatus.services.audit import AuditEvent, audit_many
from studentstatus.services.csvio import parse_bool
from studentstatus.services.authority import problem_in_scope, record_in_scope, require_role
from studentstatus.services.intake import log, new_problem
from studentstatus.services.runtime import Runtime
from studentstatus.services.verification import query_for

__all__ = ["PROBLEM_COLUMNS", "list_problems", "problem_row", "resolve_problem"]

PROBLEM_COLUMNS: tuple[str, ...] = (
    "id",
    "kind",
    "record_id",
    "kindergarten_code",
    "county_code",
    "due_date",
    "status",
    "overdue",
    "related_record_ids",
    "detail",
)
"""Fields of each listed problem (and the CSV export's columns)."""

_OPEN = (ProblemStatus.OPEN, ProblemStatus.EVIDENCE_SUBMITTED)
_DUPLICATES = (ProblemKind.DUPLICATE_ID, ProblemKind.SUSPECTED_DUPLICATE)


def problem_row(problem: ProblemRecord, today: Any) -> dict[str, Any]:
    """The JSON-ready list item for ``problem`` (see :data:`PROBLEM_COLUMNS`)."""
    return {
        "id": problem.id,
        "kind": problem.kind.value,
        "record_id": problem.record_id,
        "kindergarten_code": problem.kindergarten_code,
        "county_code": problem.county_code,
        "due_date": problem.due_date.isoformat(),
        "status": problem.status.value,
        "overdue": is_overdue(problem, today),
        "related_record_ids": list(problem.related_record_ids),
        "detail": problem.detail,
    }


def list_problems(
    rt: Runtime,
    operator: Operator,
    *,
    overdue: bool = False,
    include_resolved: bool = False,
    kinds: Sequence[ProblemKind] | None = None,
) -> Iterator[dict[str, Any]]:
    """Stream the problems in the operator's scope (unresolved by default), by id.

    The store filters by the scope: a county's problems by county code, a
    kindergarten's by its school code (and its county), so a page reads the
    page's problems only (on SQL the indexes ``(county_code, id)`` and
    ``(kindergarten_code, id)``).
    """
    require_role(operator, "view")
    today = rt.clock.today()
    statuses = None if include_resolved and not overdue else _OPEN
    code = operator.kindergarten_code
    prefix = operator.region_prefix or ""
    with rt.store.unit_of_work() as uow:
        if code is not None:
            kg = uow.kindergartens.find(code)
            prefix = kg.region_code if kg is not None else ""
        found = uow.problems.iter(
            county_prefix=prefix, statuses=statuses, kinds=kinds, kindergarten_code=code
        )
        for p in found:
            if code is not None and p.kindergarten_code != code:
                continue
            if operator.role is Role.COUNTY and p.county_code != operator.scope:
                continue
            if overdue and not is_overdue(p, today):
                continue
            yield problem_row(p, today)


# --------------------------------------------------------------------------- resolution


def _record_context(rt: Runtime, uow: UnitOfWork, rec: StatusRecord) -> Context:
    kg = uow.kindergartens.find(rec.kindergarten_code)
    return Context(rt.clock.today(), rt.policy, kindergarten=kg)


def _cancel(
    rt: Runtime, uow: UnitOfWork, operator: Operator, rec: StatusRecord, reason: str
) -> StatusRecord:
    if rec.state is State.CANCELLED:
        return rec
    ctx = _record_context(rt, uow, rec)
    change = Change(ChangeKind.CANCEL, rt.clock.today(), reason=reason, operator=str(operator))
    new, event = apply(rec, change, context=ctx, recorded_at=rt.clock.now())
    stored = uow.records.update(attrs.evolve(new, version=rec.version))
    uow.changes.append(event)
    audit_many(
        uow,
        [
            AuditEvent(
                str(operator),
                "cancel",
                rec.id,
                reason=reason,
                before={"state": rec.state.value},
                after={"state": new.state.value},
            )
        ],
        at=rt.clock.now(),
    )
    return stored


def _close(
    rt: Runtime, operator: Operator, problem: ProblemRecord, action: str, reason: str
) -> ProblemRecord:
    return attrs.evolve(
        problem,
        status=ProblemStatus.RESOLVED,
        resolution=f"{action}: {reason}",
        resolved_by=str(operator),
        resolved_at=rt.clock.now(),
    )


def _live_twins(uow: UnitOfWork, rec: StatusRecord, kind: ProblemKind) -> list[StatusRecord]:
    child = uow.children.get(rec.child_id)
    if kind is ProblemKind.DUPLICATE_ID:
        if child.document is None or not child.document.number:
            return []
        others = uow.children.find_by_document(child.document.number)
    else:
        others = uow.children.find_by_identity(child.name, child.sex.value, child.birth_date)
    out: list[StatusRecord] = []
    for other in others:
        out.extend(r for r in uow.records.for_child(other.id) if r.id != rec.id and r.state.is_live)
    return out


def _corrected_child(
    rt: Runtime, child: Child, corrections: Mapping[str, str]
) -> tuple[Child | None, list[Violation]]:
    doc = child.document
    g = child.guardians[0] if child.guardians else None
    raw = {
        "name": child.name,
        "sex": child.sex.value,
        "birth_date": child.birth_date.isoformat(),
        "id_type": doc.type.value if doc is not None else "none",
        "id_number": doc.number if doc is not None else "",
        "nationality": child.nationality,
        "ethnicity": child.ethnicity or "",
        "hukou_region": child.hukou_region or "",
        "residence_region": child.residence_region or "",
        "guardian_name": g.name if g else "",
        "guardian_relation": g.relation if g else "",
        "guardian_phone": g.phone if g else "",
    }
    unknown = [k for k in corrections if k not in raw and k != "hukou_rural"]
    if unknown:
        return None, [
            Violation(
                "field_unknown",
                k,
                "不能变更该字段",
                "this field cannot be corrected here",
                ", ".join(sorted(raw)),
            )
            for k in unknown
        ]
    raw.update({k: str(v) for k, v in corrections.items() if k in raw})
    try:
        rural = parse_bool(corrections["hukou_rural"]) if "hukou_rural" in corrections else None
    except ValueError:
        return None, [
            Violation("hukou_rural_invalid", "hukou_rural", "户口性质无效", "hukou_rural: yes/no")
        ]
    guardians = list(child.guardians[1:])
    built, problems = build_child(
        id=child.id,
        name=raw["name"],
        sex=raw["sex"],
        birth_date=raw["birth_date"],
        today=rt.clock.today(),
        document_type=raw["id_type"] or "none",
        document_number=raw["id_number"],
        nationality=raw["nationality"] or "CHN",
        ethnicity=raw["ethnicity"] or None,
        hukou_region=raw["hukou_region"] or None,
        residence_region=raw["residence_region"] or None,
        guardians=[
            {
                "name": raw["guardian_name"],
                "relation": raw["guardian_relation"],
                "phone": raw["guardian_phone"],
            },
            *guardians,
        ],
        hukou_rural=child.hukou_rural if rural is None else rural,
        left_behind=child.left_behind,
        disability=child.disability,
        orphan=child.orphan,
    )
    if built is None:
        return None, problems
    return attrs.evolve(built, version=child.version), []


def resolve_problem(
    rt: Runtime,
    operator: Operator,
    problem_id: str,
    action: str,
    *,
    reason: str,
    evidence: Sequence[str] = (),
    corrections: Mapping[str, str] | None = None,
    winner_record_id: str | None = None,
) -> dict[str, Any]:
    """Apply a resolution action to a problem (see the module docs); returns what happened.

    The result has ``problem`` (the updated list item), ``cancelled`` (record
    ids), ``resolved`` (problem ids closed along with it), ``opened`` (new
    problem ids, after a re-verification) and ``verification``.

    A problem outside the operator's kindergarten/county is answered like one that
    does not exist (:class:`~studentstatus.errors.NotFoundError`, the same text);
    raises
    :class:`~studentstatus.errors.RuleViolations` with every unmet rule.
    """
    needed = "arbitrate" if action == "arbitrate" else "resolve_problem"
    require_role(operator, needed)
    out: dict[str, Any] = {"cancelled": [], "resolved": [], "opened": [], "verification": None}
    now = rt.clock.now()
    with rt.store.unit_of_work() as uow:
        try:
            found: ProblemRecord | None = uow.problems.get(problem_id)
        except NotFoundError:
            found = None
        owner = uow.records.get_many([found.record_id]).get(found.record_id) if found else None
        problem = problem_in_scope(operator, action, found, owner, problem_id)
        rec = owner if owner is not None else uow.records.get(problem.record_id)
        audits: list[AuditEvent] = []
        recheck: list[Violation] = []
        corrected: Child | None = None
        if action == "correct":
            corrected, recheck = _corrected_child(
                rt, uow.children.get(rec.child_id), corrections or {}
            )
            if not corrections:
                recheck.append(
                    Violation(
                        "corrections_required",
                        "corrections",
                        "须提供变更的内容",
                        "give the corrected values",
                    )
                )
            elif corrected is not None:
                # The corrected identity claims its key first (domain.claims): a later
                # registration of the same child then looks for this record, and a
                # concurrent one waits for this unit.  Written now; any refusal below
                # rolls the whole unit back.
                uow.claims.claim([claim_key(identity_key(corrected))])
                uow.children.update(corrected)
                if problem.kind in _DUPLICATES and _live_twins(uow, rec, problem.kind):
                    recheck.append(
                        Violation(
                            "still_duplicate",
                            "id_number" if problem.kind is ProblemKind.DUPLICATE_ID else "name",
                            "变更后仍与其他学籍重复",
                            "the corrected data still duplicates another live record",
                        )
                    )
        try:
            updated = resolve(
                problem, action, operator, reason, now, evidence=evidence, recheck=recheck
            )
        except RuleViolations:
            log.info(
                "problem action refused: operator=%s action=%s problem=%s",
                operator,
                action,
                problem.id,
            )
            raise
        if action == "arbitrate":
            if winner_record_id is None:
                raise RuleViolations(
                    [
                        Violation(
                            "winner_required",
                            "winner_record_id",
                            "须指定保留的学籍",
                            "name the record that keeps its status",
                        )
                    ]
                )
            group = _duplicate_group(uow, problem)
            decision = arbitrate(group, winner_record_id)
            losers = uow.records.get_many(list(decision.cancel))
            for rid in decision.cancel:
                loser = losers.get(rid)
                if loser is None:
                    continue
                record_in_scope(operator, action, loser, rid)
                _cancel(rt, uow, operator, loser, f"arbitration: {reason}")
                out["cancelled"].append(rid)
            for p in group:
                if p.id != problem.id and p.status in _OPEN:
                    uow.problems.update(_close(rt, operator, p, "arbitrate", reason))
                    out["resolved"].append(p.id)
            for rid in decision.cancel:
                for p in uow.problems.for_record(rid):
                    if p.status in _OPEN and p.id not in out["resolved"] and p.id != problem.id:
                        uow.problems.update(_close(rt, operator, p, "arbitrate", reason))
                        out["resolved"].append(p.id)
        elif action == "delete":
            _cancel(rt, uow, operator, rec, reason)
            out["cancelled"].append(rec.id)
            for p in uow.problems.for_record(rec.id):
                if p.id != problem.id and p.status in _OPEN:
                    uow.problems.update(_close(rt, operator, p, "delete", reason))
                    out["resolved"].append(p.id)
            if problem.kind in _DUPLICATES:
                for rid in problem.related_record_ids:
                    try:
                        twin_rec = uow.records.get(rid)
                    except NotFoundError:
                        continue
                    if twin_rec.state.is_live and not _live_twins(uow, twin_rec, problem.kind):
                        for p in uow.problems.for_record(rid):
                            if p.kind is problem.kind and p.status in _OPEN:
                                uow.problems.update(
                                    _close(rt, operator, p, "delete", f"twin {rec.id} deleted")
                                )
                                out["resolved"].append(p.id)
        elif action == "correct" and corrected is not None:
            query = query_for(corrected)
            registry = rt.registry
            if query is not None and registry is not None:
                result = registry.verify([query]).get(query.number)
                if result is not None:
                    out["verification"] = result.value
                    fresh = uow.records.get(rec.id)
                    uow.records.update(attrs.evolve(fresh, verification=result))
                    kind = problem_for_verification(result)
                    if kind is not None:
                        new = new_problem(rt, fresh, kind, detail=f"re-verified: {result.value}")
                        uow.problems.add(new)
                        out["opened"].append(new.id)
                        audits.append(
                            AuditEvent(
                                str(operator), "problem_open", new.id, after={"kind": kind.value}
                            )
                        )
            elif corrected.document is not None and corrected.document.type.value in RESIDENT_LIKE:
                fresh = uow.records.get(rec.id)
                if fresh.verification is not None:
                    uow.records.update(attrs.evolve(fresh, verification=None))
        stored = uow.problems.update(updated)
        audits.insert(
            0,
            AuditEvent(
                str(operator),
                f"problem_{action}",
                problem.id,
                reason=reason,
                before={"status": problem.status.value},
                after={
                    "status": updated.status.value,
                    "record": rec.id,
                    "cancelled": list(out["cancelled"]),
                    "evidence": list(updated.evidence),
                },
            ),
        )
        audit_many(uow, audits, at=now)
        uow.commit()
    out["problem"] = problem_row(stored, rt.clock.today())
    return out


def _duplicate_group(uow: UnitOfWork, problem: ProblemRecord) -> list[ProblemRecord]:
    ids = {problem.record_id, *problem.related_record_ids}
    group: dict[str, ProblemRecord] = {problem.id: problem}
    for rid in sorted(ids):
        for p in uow.problems.for_record(rid):
            if p.kind is problem.kind and p.status in _OPEN:
                group[p.id] = p
    return list(group.values())
