"""Problem records: the county's list, overdue, and every resolution action."""

from __future__ import annotations

import logging
from datetime import date, timedelta

import attrs
import pytest

from studentstatus.adapters.memory import MemoryStore
from studentstatus.adapters.population import MemoryPopulationRegistry
from studentstatus.domain.enums import (
    ChangeKind,
    ProblemKind,
    ProblemStatus,
    State,
    VerificationResult,
)
from studentstatus.errors import NotFoundError, PermissionDenied, RuleViolations
from studentstatus.services.intake import import_children
from studentstatus.services.problems import PROBLEM_COLUMNS, list_problems, resolve_problem
from studentstatus.services.verification import verify_records

from ._registration_world import KG_B, KG_C, OPS, bad_checksum, row, runtime, seed_kindergartens


@pytest.fixture
def rt():  # type: ignore[no-untyped-def]
    store = MemoryStore()
    seed_kindergartens(store)
    return runtime(store)


def _dup_pair(rt):  # type: ignore[no-untyped-def]
    a = row(1)
    report = import_children(rt, OPS["c105"], [a, dict(a, kindergarten_code=KG_B.school_code)])
    ids = [r.record_id for r in report.records]
    problems = {p.record_id: p for p in list_problems(rt, OPS["c105"])}
    return ids, problems


def test_items_and_resolutions_give_their_json_form(rt) -> None:  # type: ignore[no-untyped-def]
    ids, problems = _dup_pair(rt)
    item = problems[ids[1]]
    doc = item.to_dict()
    assert tuple(doc) == PROBLEM_COLUMNS  # the CSV export's columns, in order
    assert doc["due_date"] == "2026-07-31"
    assert doc["related_record_ids"] == [ids[0]]
    assert (doc["kind"], doc["status"], doc["overdue"]) == ("DUPLICATE_ID", "OPEN", False)
    out = resolve_problem(rt, OPS["c105"], item.id, "delete", reason="重复录入")
    assert out.to_dict() == {
        "cancelled": [ids[1]],
        "resolved": [problems[ids[0]].id],
        "opened": [],
        "verification": None,
        "problem": dict(doc, status="RESOLVED"),
    }


def test_county_list_carries_kind_record_kindergarten_due_status(rt) -> None:  # type: ignore[no-untyped-def]
    ids, problems = _dup_pair(rt)
    assert set(problems) == set(ids)
    for p in problems.values():
        assert p.kind is ProblemKind.DUPLICATE_ID
        assert p.kindergarten_code in ("1111000001", "1111000002")
        assert p.due_date == date(2026, 7, 31)
        assert p.status is ProblemStatus.OPEN
        assert p.overdue is False
    # other counties and kindergartens see only theirs
    assert list(list_problems(rt, OPS["c108"])) == []
    assert [p.kindergarten_code for p in list_problems(rt, OPS["kgB"])] == ["1111000002"]
    assert len(list(list_problems(rt, OPS["p11"]))) == 2


def test_overdue_list(rt) -> None:  # type: ignore[no-untyped-def]
    _dup_pair(rt)
    assert list(list_problems(rt, OPS["c105"], overdue=True)) == []
    late = attrs.evolve(rt, clock=attrs.evolve(rt.clock, at=rt.clock.at + timedelta(days=400)))
    overdue = list(list_problems(late, OPS["c105"], overdue=True))
    assert len(overdue) == 2
    assert all(p.overdue for p in overdue)


def test_evidence_then_county_returns_a_duplicate(rt) -> None:  # type: ignore[no-untyped-def]
    """Evidence on a duplicated ID waits for the county, which cannot accept it (two records
    cannot both keep one ID: arbitrate, correct or delete) but can return it."""
    _, problems = _dup_pair(rt)
    pid = next(p.id for p in problems.values() if p.kindergarten_code == "1111000001")
    with pytest.raises(RuleViolations) as err:
        resolve_problem(rt, OPS["kgA"], pid, "evidence", reason="户口簿")
    assert [v.code for v in err.value.violations] == ["evidence_required"]
    out = resolve_problem(rt, OPS["kgA"], pid, "evidence", reason="户口簿", evidence=["file:1"])
    assert out.problem.status is ProblemStatus.EVIDENCE_SUBMITTED
    with pytest.raises(RuleViolations) as err:
        resolve_problem(rt, OPS["c105"], pid, "accept", reason="核实")
    assert [v.code for v in err.value.violations] == ["accept_not_applicable"]
    out = resolve_problem(rt, OPS["c105"], pid, "reopen", reason="须仲裁")
    assert out.problem.status is ProblemStatus.OPEN
    with rt.store.unit_of_work() as uow:  # each operator's entries on its own chain, in order
        entries = [(e.chain, e.action, e.operator, e.reason) for e in uow.audit.iter()
                   if e.subject == pid]  # fmt: skip
    assert entries == [
        ("county:110105", "problem_open", "county:110105", ""),
        ("county:110105", "problem_reopen", "county:110105", "须仲裁"),
        ("kindergarten:1111000001", "problem_evidence", "kindergarten:1111000001", "户口簿"),
    ]


def test_reason_is_required_and_other_kindergartens_are_refused(rt, caplog) -> None:  # type: ignore[no-untyped-def]
    _, problems = _dup_pair(rt)
    pid = next(iter(problems.values())).id
    with pytest.raises(RuleViolations) as err:
        resolve_problem(rt, OPS["c105"], pid, "delete", reason=" ")
    assert [v.code for v in err.value.violations] == ["reason_required"]
    with (
        caplog.at_level(logging.WARNING, "studentstatus.services"),
        pytest.raises(NotFoundError),
    ):
        resolve_problem(rt, OPS["c108"], pid, "delete", reason="x")
    assert "county:110108" in caplog.text
    with pytest.raises(PermissionDenied):
        resolve_problem(rt, OPS["kgA"], pid, "arbitrate", reason="x", winner_record_id="r")


def test_delete_cancels_the_record_and_clears_the_twin(rt) -> None:  # type: ignore[no-untyped-def]
    ids, problems = _dup_pair(rt)
    loser, keeper = ids[1], ids[0]
    out = resolve_problem(rt, OPS["c105"], problems[loser].id, "delete", reason="重复录入")
    assert out.cancelled == (loser,)
    assert out.resolved == (problems[keeper].id,)
    with rt.store.unit_of_work() as uow:
        assert uow.records.get(loser).state is State.CANCELLED
        assert uow.changes.for_record(loser)[-1].kind is ChangeKind.CANCEL
        assert uow.changes.for_record(loser)[-1].reason == "重复录入"
    assert list(list_problems(rt, OPS["c105"])) == []


def test_arbitration_keeps_the_winner_and_cancels_the_others(rt) -> None:  # type: ignore[no-untyped-def]
    a = row(1)
    report = import_children(
        rt,
        OPS["c105"],
        [a, dict(a, kindergarten_code=KG_B.school_code), dict(a, name="三号")],
    )
    ids = [r.record_id for r in report.records]
    pid = next(p.id for p in list_problems(rt, OPS["c105"]) if p.record_id == ids[2])
    with pytest.raises(RuleViolations) as err:
        resolve_problem(rt, OPS["c105"], pid, "arbitrate", reason="x", winner_record_id="nobody")
    assert [v.code for v in err.value.violations] == ["winner_not_involved"]
    out = resolve_problem(rt, OPS["c105"], pid, "arbitrate", reason="仲裁", winner_record_id=ids[1])
    assert sorted(out.cancelled) == sorted([ids[0], ids[2]])
    with rt.store.unit_of_work() as uow:
        states = {rid: uow.records.get(rid).state for rid in ids}
    assert states == {ids[0]: State.CANCELLED, ids[1]: State.PENDING, ids[2]: State.CANCELLED}
    assert list(list_problems(rt, OPS["c105"])) == []


def test_correct_rechecks_and_reverifies(rt) -> None:  # type: ignore[no-untyped-def]
    good = row(1)
    report = import_children(
        rt, OPS["kgA"], [dict(good, id_number=bad_checksum(good["id_number"]))]
    )
    rid = report.records[0].record_id
    (problem,) = list(list_problems(rt, OPS["c105"]))
    assert problem.kind is ProblemKind.INVALID_ID
    with pytest.raises(RuleViolations) as err:
        resolve_problem(
            rt, OPS["kgA"], problem.id, "correct", reason="改号", corrections={"id_number": "1"}
        )
    assert "length" in {v.code for v in err.value.violations}
    registry = MemoryPopulationRegistry(
        [(good["id_number"], "别的名字", good["sex"], date(2020, 10, 3), "normal")]
    )
    with_registry = attrs.evolve(rt, registry=registry)
    out = resolve_problem(
        with_registry,
        OPS["kgA"],
        problem.id,
        "correct",
        reason="户口簿核对",
        corrections={"id_number": good["id_number"]},
    )
    assert out.problem.status is ProblemStatus.RESOLVED
    assert out.verification is VerificationResult.NAME_MISMATCH
    assert len(out.opened) == 1
    with rt.store.unit_of_work() as uow:
        rec = uow.records.get(rid)
        child = uow.children.get(rec.child_id)
        assert child.document is not None
        assert child.document.number == good["id_number"]
        assert rec.verification is VerificationResult.NAME_MISMATCH
        kinds = {p.kind.value: p.status for p in uow.problems.for_record(rid)}
    assert kinds == {"INVALID_ID": ProblemStatus.RESOLVED, "NAME_MISMATCH": ProblemStatus.OPEN}


def test_corrected_identity_is_claimed(rt) -> None:  # type: ignore[no-untyped-def]
    """A child whose ID is corrected claims the corrected key: registering the same child
    again afterwards finds the corrected record (both carry DUPLICATE_ID)."""
    good = row(1)
    report = import_children(
        rt, OPS["kgA"], [dict(good, id_number=bad_checksum(good["id_number"]))]
    )
    rid = report.records[0].record_id
    (problem,) = list(list_problems(rt, OPS["c105"]))
    resolve_problem(
        rt, OPS["kgA"], problem.id, "correct", reason="户口簿核对",
        corrections={"id_number": good["id_number"]},
    )  # fmt: skip
    again = import_children(rt, OPS["kgA"], [good])
    assert again.records[0].problems == (ProblemKind.DUPLICATE_ID,)
    with rt.store.unit_of_work() as uow:
        kinds = {p.kind.value for p in uow.problems.for_record(rid)}
    assert "DUPLICATE_ID" in kinds


def test_correct_that_still_duplicates_is_refused(rt) -> None:  # type: ignore[no-untyped-def]
    ids, problems = _dup_pair(rt)
    pid = problems[ids[1]].id
    with pytest.raises(RuleViolations) as err:
        resolve_problem(rt, OPS["c105"], pid, "correct", reason="x", corrections={"name": "新名"})
    assert [v.code for v in err.value.violations] == ["still_duplicate"]
    fixed = row(77)["id_number"]
    out = resolve_problem(
        rt, OPS["c105"], pid, "correct", reason="号码录错", corrections={"id_number": fixed}
    )
    assert out.problem.status is ProblemStatus.RESOLVED


def test_verification_problem_flow_to_delete(rt) -> None:  # type: ignore[no-untyped-def]
    import_children(rt, OPS["kgC"], [row(1, kindergarten_code=KG_C.school_code)])
    verify_records(rt, OPS["p11"], MemoryPopulationRegistry([]))
    (p,) = list(list_problems(rt, OPS["c108"]))
    assert p.kind is ProblemKind.NOT_FOUND
    out = resolve_problem(rt, OPS["kgC"], p.id, "delete", reason="虚假信息")
    assert out.problem.status is ProblemStatus.RESOLVED
    assert out.cancelled == (p.record_id,)
