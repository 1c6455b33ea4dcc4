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
  or ``reopen``\\ s it.  Accepted evidence for ``NOT_FOUND``,
  ``NAME_MISMATCH`` or ``INFO_MISMATCH`` confirms the identity: the record's
  verification becomes ``CONFIRMED`` (县级核实通过, audited as
  ``confirm_identity``, distinct from a registry ``MATCH``), the record's
  other open NOT_FOUND/NAME_MISMATCH/INFO_MISMATCH problems are resolved with
  it, the next ``verify`` leaves the record alone and the next
  ``issue-numbers`` gives it its G number.  Accepting a suspected duplicate
  closes it (another child); a duplicated ID, an invalid ID and a registry
  death are not accepted (``accept_not_applicable``);
* ``correct`` (变更) — corrected child data (CSV column names, e.g.
  ``{"id_number": …, "name": …}``); the child is re-checked completely (any
  violation refuses the action) and re-verified: with a resident ID and a
  population registry (``Runtime.registry``) the new answer replaces the old
  one — a match resolves the record's open verification problems, a
  non-match resolves those of other kinds and opens the problem of the new
  answer; without a registry the old answer is cleared so the next
  ``verify`` asks again.  Removing the resident ID of an approved record
  needs the county (``county_must_confirm``): its correction is the county's
  confirmation (``CONFIRMED``) that leads to a J number.  A child that holds a
  national number keeps its identity document (``id_number_numbered``: a G number
  is the ID number, and a number is 终身不变); its other fields can be corrected;
* ``delete`` (删除) — the record is cancelled (status machine ``CANCEL``
  with the reason); all of its open problems are resolved, and a duplicate
  problem of another record that no longer has a live twin is resolved too.
  A record that holds a national number is not deleted while a duplicate of
  its ID lives (``delete_numbered_duplicate``: the number cannot move);
* ``arbitrate`` (仲裁, county only, duplicate problems) — the winner keeps its
  record, every other record of the duplicate group is cancelled, and all
  the group's duplicate problems are resolved; when a record of the group
  holds a national number, it is the one kept (``winner_not_numbered``).  A
  record the county declared another child than the winner (it accepted a
  suspected duplicate between the two) is not part of the group, and the
  winner must still duplicate the problem's record (``winner_not_duplicate``:
  a record corrected since is no duplicate any more).

The whole table (problem kind × action → what happens to the record) is
:data:`studentstatus.domain.problems.OUTCOMES`, written out in
``docs/concepts/problems.md``.

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
>>> [p.kind.value for p in list_problems(rt, county)]
['DUPLICATE_ID', 'DUPLICATE_ID']
>>> pid = next(p.id for p in list_problems(rt, county) if p.record_id == recs[0].record_id)
>>> out = resolve_problem(rt, county, pid, "arbitrate", reason="入园材料核实",
...                       winner_record_id=recs[0].record_id)
>>> out.cancelled == (recs[1].record_id,), list(list_problems(rt, county))
(True, [])
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import date
from typing import Any

import attrs

from studentstatus.domain.child import build_child
from studentstatus.domain.claims import claim_key, compact_number, identity_key, is_document_key
from studentstatus.domain.enums import (
    ChangeKind,
    ProblemKind,
    ProblemStatus,
    Role,
    State,
    VerificationResult,
)
from studentstatus.domain.jurisdiction import Operator
from studentstatus.domain.machine import Change, Context, apply
from studentstatus.domain.model import Child, ProblemRecord, StatusRecord
from studentstatus.domain.problems import (
    CONFIRMING_KINDS,
    arbitrate,
    declares_another_child,
    is_overdue,
    outcome,
    problem_for_verification,
    resolve,
)
from studentstatus.errors import NotFoundError, RuleViolations, Violation
from studentstatus.ports import UnitOfWork
from studentstatus.services.audit import AuditEvent, audit_many
from studentstatus.services.authority import problem_in_scope, record_in_scope, require_role
from studentstatus.services.csvio import parse_bool
from studentstatus.services.intake import log, new_problem
from studentstatus.services.runtime import Runtime
from studentstatus.services.verification import VERIFICATION_KINDS, query_for

__all__ = [
    "PROBLEM_COLUMNS",
    "ProblemItem",
    "Resolution",
    "list_problems",
    "problem_row",
    "resolve_problem",
]

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


@attrs.frozen
class ProblemItem:
    """One listed problem (see :data:`PROBLEM_COLUMNS`); :meth:`to_dict` is its JSON form.

    >>> from datetime import date
    >>> item = ProblemItem("p1", ProblemKind.NOT_FOUND, "r1", "1111000001", "110105",
    ...                    date(2024, 10, 31), ProblemStatus.OPEN, False)
    >>> item.kind, item.overdue
    (<ProblemKind.NOT_FOUND: 'NOT_FOUND'>, False)
    >>> item.to_dict()["due_date"], item.to_dict()["related_record_ids"]
    ('2024-10-31', [])
    """

    id: str
    kind: ProblemKind
    record_id: str
    kindergarten_code: str
    county_code: str
    due_date: date
    status: ProblemStatus
    overdue: bool
    related_record_ids: tuple[str, ...] = ()
    detail: str = ""

    @classmethod
    def of(cls, problem: ProblemRecord, today: date) -> ProblemItem:
        """The list item of ``problem`` on ``today`` (whether it is overdue)."""
        return cls(
            problem.id,
            problem.kind,
            problem.record_id,
            problem.kindergarten_code,
            problem.county_code,
            problem.due_date,
            problem.status,
            is_overdue(problem, today),
            tuple(problem.related_record_ids),
            problem.detail,
        )

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready item: enums as their values, the due date in ISO form."""
        return {
            "id": self.id,
            "kind": self.kind.value,
            "record_id": self.record_id,
            "kindergarten_code": self.kindergarten_code,
            "county_code": self.county_code,
            "due_date": self.due_date.isoformat(),
            "status": self.status.value,
            "overdue": self.overdue,
            "related_record_ids": list(self.related_record_ids),
            "detail": self.detail,
        }


def problem_row(problem: ProblemRecord, today: date) -> ProblemItem:
    """The list item for ``problem`` (see :data:`PROBLEM_COLUMNS`); ``ProblemItem.of``."""
    return ProblemItem.of(problem, today)


@attrs.frozen
class Resolution:
    """What a :func:`resolve_problem` action did; :meth:`to_dict` is its JSON form.

    ``problem``: the updated list item; ``cancelled``: record ids; ``resolved``:
    problem ids closed along with it; ``opened``: problem ids opened by a
    re-verification; ``verification``: the record's new verification answer, if any.

    >>> from datetime import date
    >>> item = ProblemItem("p1", ProblemKind.DUPLICATE_ID, "r2", "1111000001", "110105",
    ...                    date(2024, 10, 31), ProblemStatus.RESOLVED, False, ("r1",))
    >>> done = Resolution(item, cancelled=("r2",))
    >>> done.cancelled, done.problem.status
    (('r2',), <ProblemStatus.RESOLVED: 'RESOLVED'>)
    >>> list(done.to_dict())
    ['cancelled', 'resolved', 'opened', 'verification', 'problem']
    """

    problem: ProblemItem
    cancelled: tuple[str, ...] = ()
    resolved: tuple[str, ...] = ()
    opened: tuple[str, ...] = ()
    verification: VerificationResult | None = None

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready result (the problem last)."""
        return {
            "cancelled": list(self.cancelled),
            "resolved": list(self.resolved),
            "opened": list(self.opened),
            "verification": self.verification.value if self.verification else None,
            "problem": self.problem.to_dict(),
        }


def list_problems(
    rt: Runtime,
    operator: Operator,
    *,
    overdue: bool = False,
    include_resolved: bool = False,
    kinds: Sequence[ProblemKind] | None = None,
) -> Iterator[ProblemItem]:
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
            yield ProblemItem.of(p, today)


# --------------------------------------------------------------------------- resolution


def _record_context(rt: Runtime, uow: UnitOfWork, rec: StatusRecord) -> Context:
    kg = uow.kindergartens.find(rec.kindergarten_code)
    return Context(rt.clock.today(), rt.policy_for(rec.region_code), kindergarten=kg)


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
        # Suspected duplicates are children without a document (domain.problems.find_duplicates):
        # a namesake with an ID number is told apart by it.
        if is_document_key(identity_key(child)):
            return []
        namesakes = uow.children.find_by_identity(child.name, child.sex.value, child.birth_date)
        others = [other for other in namesakes if not is_document_key(identity_key(other))]
    out: list[StatusRecord] = []
    for other in others:
        out.extend(r for r in uow.records.for_child(other.id) if r.id != rec.id and r.state.is_live)
    return out


def _other_children(uow: UnitOfWork, record_id: str, candidates: set[str]) -> set[str]:
    """The ``candidates`` the county declared another child than ``record_id``: a suspected
    duplicate between the two, of either one, resolved by ``accept``
    (:func:`~studentstatus.domain.problems.declares_another_child`)."""
    out: set[str] = set()
    for rid in sorted(candidates | {record_id}):
        for p in uow.problems.for_record(rid):
            if not declares_another_child(p):
                continue
            if rid == record_id:
                out.update(candidates.intersection(p.related_record_ids))
            elif record_id in p.related_record_ids:
                out.add(rid)
    out.discard(record_id)
    return out


def _document_changed(child: Child, corrections: Mapping[str, str]) -> bool:
    """Whether ``corrections`` change the child's identity document (type or number)."""
    doc = child.document
    kind = doc.type.value if doc is not None else "none"
    number = compact_number(doc.number) if doc is not None else ""
    new_kind = str(corrections.get("id_type", kind)).strip().lower() or "none"
    new_number = compact_number(str(corrections.get("id_number", number)).strip())
    return (new_kind, new_number) != (kind, number)


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
) -> Resolution:
    """Apply a resolution action to a problem (see the module docs); returns what happened.

    The :class:`Resolution` has ``problem`` (the updated list item),
    ``cancelled`` (record ids), ``resolved`` (problem ids closed along with it),
    ``opened`` (new problem ids, after a re-verification) and ``verification``.

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
            elif _document_changed(uow.children.get(rec.child_id), corrections) and any(
                r.national_number for r in uow.records.for_child(rec.child_id)
            ):
                # 一人一号、终身不变: the national number was issued for this identity
                # (a G number *is* the ID number), so the number's holder keeps its ID.
                recheck.append(
                    Violation(
                        "id_number_numbered",
                        "id_number",
                        "已取得全国学籍号的幼儿不能变更身份证件",
                        "the child holds a national number: its identity document "
                        "cannot be changed",
                    )
                )
            elif corrected is not None:
                # The corrected identity claims its key first (domain.claims): a later
                # registration of the same child then looks for this record, and a
                # concurrent one waits for this unit.  Written now; any refusal below
                # rolls the whole unit back.
                uow.claims.claim([claim_key(identity_key(corrected))])
                uow.children.update(corrected)
                # The corrected data must not duplicate another live record (a correction
                # never makes a duplicate no problem record tracks).
                twin_kind = (
                    ProblemKind.DUPLICATE_ID
                    if corrected.document is not None and corrected.document.number
                    else ProblemKind.SUSPECTED_DUPLICATE
                )
                if _live_twins(uow, rec, twin_kind):
                    recheck.append(
                        Violation(
                            "still_duplicate",
                            "id_number" if twin_kind is ProblemKind.DUPLICATE_ID else "name",
                            "变更后仍与其他学籍重复",
                            "the corrected data still duplicates another live record",
                        )
                    )
                if (
                    query_for(corrected) is None
                    and rec.state is not State.PENDING
                    and not rec.county_confirmed
                    and operator.role is not Role.COUNTY
                ):
                    recheck.append(
                        Violation(
                            "county_must_confirm",
                            "id_type",
                            "已核准学籍改为无身份证件须由县级教育行政部门办理",
                            "only the county removes the resident ID of an approved record "
                            "(its correction confirms the child)",
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
            winner_rec = uow.records.get_many([winner_record_id]).get(winner_record_id)
            # Every live duplicate of the winner goes, those registered after the problem
            # was opened too; a record corrected since is no duplicate and stays.
            twins = (
                {r.id for r in _live_twins(uow, winner_rec, problem.kind)}
                if winner_rec is not None and winner_rec.state.is_live
                else set()
            )
            # Records the county declared another child than the winner (an accepted
            # suspected duplicate between them) are neither cancelled nor counted.
            twins -= _other_children(uow, winner_record_id, twins)
            # The records that duplicate the problem's record now (corrected ones do not).
            current = {r.id for r in _live_twins(uow, rec, problem.kind)}
            current -= _other_children(uow, rec.id, current)
            current.add(rec.id)
            numbered = [
                r.id
                for r in uow.records.get_many(sorted(current | twins)).values()
                if r.national_number and r.state.is_live
            ]
            arbitrate(  # the rules (all at once)
                group, winner_record_id, numbered=numbered, duplicates=current
            )
            if winner_rec is not None and not winner_rec.state.is_live:
                raise RuleViolations(
                    [
                        Violation(
                            "winner_not_live",
                            "winner_record_id",
                            "保留的学籍已不在籍",
                            "the record to keep is no longer live",
                        )
                    ]
                )
            cancel = sorted(twins)
            losers = uow.records.get_many(cancel)
            for rid in cancel:
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
            for rid in cancel:
                for p in uow.problems.for_record(rid):
                    if p.status in _OPEN and p.id not in out["resolved"] and p.id != problem.id:
                        uow.problems.update(_close(rt, operator, p, "arbitrate", reason))
                        out["resolved"].append(p.id)
        elif action == "delete":
            mine = uow.problems.for_record(rec.id)
            if rec.national_number and any(
                p.kind is ProblemKind.DUPLICATE_ID
                and p.status in _OPEN
                and _live_twins(uow, rec, p.kind)
                for p in mine
            ):
                raise RuleViolations(
                    [
                        Violation(
                            "delete_numbered_duplicate",
                            "record_id",
                            "该学籍已有全国学籍号，不能删除：请删除重复的另一条学籍或仲裁",
                            "this record holds the national number: delete the duplicate "
                            "record instead, or arbitrate",
                        )
                    ]
                )
            _cancel(rt, uow, operator, rec, reason)
            out["cancelled"].append(rec.id)
            for p in mine:
                if p.id != problem.id and p.status in _OPEN:
                    uow.problems.update(_close(rt, operator, p, "delete", reason))
                    out["resolved"].append(p.id)
            _release_twins(rt, uow, operator, rec, mine, "delete", out)
        elif action == "accept" and outcome(problem.kind, action) == "confirm":
            _confirm(rt, uow, operator, rec, problem, reason, out, audits)
        elif action == "correct" and corrected is not None:
            _reverify(rt, uow, operator, rec, problem, corrected, out, audits)
            mine = [p for p in uow.problems.for_record(rec.id) if p.id != problem.id]
            _release_twins(rt, uow, operator, rec, [problem, *mine], "correct", out)
            for p in mine:  # the record's other duplicate problems: no twin left either
                if (
                    p.kind in _DUPLICATES
                    and p.status in _OPEN
                    and not _live_twins(uow, rec, p.kind)
                ):
                    uow.problems.update(_close(rt, operator, p, "correct", "no duplicate left"))
                    out["resolved"].append(p.id)
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
    verification = out["verification"]
    return Resolution(
        ProblemItem.of(stored, rt.clock.today()),
        cancelled=tuple(out["cancelled"]),
        resolved=tuple(out["resolved"]),
        opened=tuple(out["opened"]),
        verification=VerificationResult(verification) if verification is not None else None,
    )


def _release_twins(
    rt: Runtime,
    uow: UnitOfWork,
    operator: Operator,
    rec: StatusRecord,
    problems: Sequence[ProblemRecord],
    action: str,
    out: dict[str, Any],
) -> None:
    """After ``rec`` was cancelled or corrected: the duplicate problems of its former twins
    that are left without a live duplicate are resolved."""
    for p in problems:
        if p.kind not in _DUPLICATES:
            continue
        for rid in p.related_record_ids:
            try:
                twin_rec = uow.records.get(rid)
            except NotFoundError:
                continue
            if twin_rec.state.is_live and not _live_twins(uow, twin_rec, p.kind):
                for q in uow.problems.for_record(rid):
                    if q.kind is p.kind and q.status in _OPEN and q.id not in out["resolved"]:
                        why = f"twin {rec.id} {'deleted' if action == 'delete' else 'corrected'}"
                        uow.problems.update(_close(rt, operator, q, action, why))
                        out["resolved"].append(q.id)


def _confirm(
    rt: Runtime,
    uow: UnitOfWork,
    operator: Operator,
    rec: StatusRecord,
    problem: ProblemRecord,
    reason: str,
    out: dict[str, Any],
    audits: list[AuditEvent],
) -> None:
    """Accepted evidence proves the identity: verification CONFIRMED, the record's other
    open identity problems (NOT_FOUND / NAME_MISMATCH / INFO_MISMATCH) resolved with it."""
    child = uow.children.get(rec.child_id)
    fresh = uow.records.get(rec.id)
    if query_for(child) is not None and fresh.verification is not VerificationResult.CONFIRMED:
        uow.records.update(attrs.evolve(fresh, verification=VerificationResult.CONFIRMED))
        out["verification"] = VerificationResult.CONFIRMED.value
        audits.append(
            AuditEvent(
                str(operator),
                "confirm_identity",
                rec.id,
                reason=reason,
                before={"verification": fresh.verification.value if fresh.verification else None},
                after={"verification": VerificationResult.CONFIRMED.value, "problem": problem.id},
            )
        )
    for p in uow.problems.for_record(rec.id):
        if p.id != problem.id and p.status in _OPEN and p.kind in CONFIRMING_KINDS:
            uow.problems.update(_close(rt, operator, p, "accept", f"confirmed with {problem.id}"))
            out["resolved"].append(p.id)


def _reverify(
    rt: Runtime,
    uow: UnitOfWork,
    operator: Operator,
    rec: StatusRecord,
    problem: ProblemRecord,
    corrected: Child,
    out: dict[str, Any],
    audits: list[AuditEvent],
) -> None:
    """A correction re-verifies: the registry's new answer (or none) replaces the old one."""
    fresh = uow.records.get(rec.id)
    query = query_for(corrected)
    registry = rt.registry
    before = fresh.verification.value if fresh.verification else None
    result: VerificationResult | None = None
    if query is None:
        # No resident ID any more: the J path.  A county-made correction of an approved
        # record is the county's confirmation (a kindergarten's was refused earlier).
        if rec.state is not State.PENDING and operator.role is Role.COUNTY:
            result = VerificationResult.CONFIRMED
    elif registry is not None:
        result = registry.verify([query]).get(query.number, VerificationResult.NOT_FOUND)
    if result is not fresh.verification:
        uow.records.update(attrs.evolve(fresh, verification=result))
    out["verification"] = result.value if result is not None else None
    audits.append(
        AuditEvent(
            str(operator),
            "confirm_identity" if result is VerificationResult.CONFIRMED else "verify",
            rec.id,
            reason="re-verified after a correction",
            before={"verification": before},
            after={"verification": out["verification"], "problem": problem.id},
        )
    )
    if result is None and query is not None:
        return  # not asked: the next verify run asks, and settles the open problems
    kind = problem_for_verification(result) if result is not None else None
    still_open = False
    for p in uow.problems.for_record(rec.id):
        if p.id == problem.id or p.status not in _OPEN or p.kind not in VERIFICATION_KINDS:
            continue
        if p.kind is kind:
            still_open = True
        else:  # an answer about the data before the correction
            uow.problems.update(_close(rt, operator, p, "correct", "re-verified"))
            out["resolved"].append(p.id)
    if kind is not None and not still_open:
        new = new_problem(rt, fresh, kind, detail=f"re-verified: {result}")
        uow.problems.add(new)
        out["opened"].append(new.id)
        audits.append(AuditEvent(str(operator), "problem_open", new.id, after={"kind": kind.value}))


def _duplicate_group(uow: UnitOfWork, problem: ProblemRecord) -> list[ProblemRecord]:
    ids = {problem.record_id, *problem.related_record_ids}
    group: dict[str, ProblemRecord] = {problem.id: problem}
    for rid in sorted(ids):
        for p in uow.problems.for_record(rid):
            if p.kind is problem.kind and p.status in _OPEN:
                group[p.id] = p
    return list(group.values())
