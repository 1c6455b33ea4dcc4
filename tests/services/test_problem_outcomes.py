"""Every resolution leads somewhere: what each action does to the record, on every store.

The table is :data:`studentstatus.domain.problems.OUTCOMES` (docs/concepts/problems.md).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path
from typing import Any

import attrs
import pytest

from studentstatus.adapters.memory import MemoryStore
from studentstatus.adapters.population import MemoryPopulationRegistry
from studentstatus.domain.enums import ProblemKind, ProblemStatus, State, VerificationResult
from studentstatus.domain.jurisdiction import Operator
from studentstatus.domain.model import StatusRecord
from studentstatus.domain.problems import ACTIONS, OUTCOMES, new_problem, outcome, resolve
from studentstatus.errors import RuleViolations
from studentstatus.ports import Store
from studentstatus.services.approval import approve_records
from studentstatus.services.audit import verify
from studentstatus.services.intake import import_children
from studentstatus.services.numbers import issue_numbers
from studentstatus.services.problems import list_problems, resolve_problem
from studentstatus.services.stuck import list_stuck_records
from studentstatus.services.verification import verify_records

from ._registration_world import KG_B, OPS, make_store, row, runtime, seed_kindergartens

NAMES = ("王小明", "李小红", "张小华", "赵小刚")


def _person(i: int, **over: Any) -> dict[str, str]:
    return row(i, **{"name": NAMES[i % len(NAMES)], **over})


def _registry(*people: dict[str, str], **answers: str) -> MemoryPopulationRegistry:
    """A registry holding ``people`` (status ``normal`` unless ``answers[name]`` says else)."""
    return MemoryPopulationRegistry(
        (p["id_number"], p["name"], p["sex"], date.fromisoformat(p["birth_date"]),
         answers.get(p["name"], "normal"))
        for p in people
    )  # fmt: skip


@pytest.fixture(params=["memory", "files", "sqlite", "postgres", "mysql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    kind = request.param
    if kind == "files":
        from studentstatus.adapters.files import FileStore

        fs = FileStore(tmp_path / "fs")
        seed_kindergartens(fs)
        yield fs
        return
    url = None
    if kind == "postgres":
        url = request.getfixturevalue("postgres_url")
    elif kind == "mysql":
        url = request.getfixturevalue("mysql_url")
    with make_store(kind, tmp_path, url) as s:
        seed_kindergartens(s)
        yield s


# --------------------------------------------------------------------------- the table


def test_the_table_covers_every_kind_and_action() -> None:
    """Every kind has evidence, reopen, correct and delete; accept exactly where it leads to a
    number or closes an unfounded problem; arbitrate exactly for duplicates."""
    for kind in ProblemKind:
        for action in ("evidence", "reopen", "correct", "delete"):
            assert (kind, action) in OUTCOMES
    accepted = {k for (k, a) in OUTCOMES if a == "accept"}
    assert accepted == {
        ProblemKind.NOT_FOUND,
        ProblemKind.NAME_MISMATCH,
        ProblemKind.INFO_MISMATCH,
        ProblemKind.SUSPECTED_DUPLICATE,
    }
    assert {k for (k, a) in OUTCOMES if a == "arbitrate"} == {
        ProblemKind.DUPLICATE_ID,
        ProblemKind.SUSPECTED_DUPLICATE,
    }
    assert {a for (_k, a) in OUTCOMES} == set(ACTIONS)


@pytest.mark.parametrize("kind", list(ProblemKind))
def test_domain_accept_follows_the_table(kind: ProblemKind) -> None:
    rec = StatusRecord("r1", "c1", "1111000001", "110105", State.ACTIVE, None, date(2025, 9, 1))
    p = new_problem("p1", rec, kind, now=datetime(2025, 9, 1))
    county = Operator.parse("county:110105")
    waiting = resolve(p, "evidence", county, "户口簿", datetime(2025, 9, 2), evidence=["f"])
    if outcome(kind, "accept") is None:
        with pytest.raises(RuleViolations) as err:
            resolve(waiting, "accept", county, "核实", datetime(2025, 9, 3))
        assert [v.code for v in err.value.violations] == ["accept_not_applicable"]
    else:
        done = resolve(waiting, "accept", county, "核实", datetime(2025, 9, 3))
        assert done.status is ProblemStatus.RESOLVED


# --------------------------------------------------------------------------- on every store


def test_not_found_child_goes_through_evidence_to_a_g_number(store: Store) -> None:
    """The issue's dead end: NOT_FOUND, evidence accepted by the county, then a G number."""
    rt = runtime(store)
    child = _person(1)
    rid = import_children(rt, OPS["kgA"], [child]).records[0].record_id
    approve_records(rt, OPS["c105"], all_pending=True)
    verify_records(rt, OPS["p11"], _registry())  # the registry does not know the number
    (p,) = list(list_problems(rt, OPS["c105"]))
    assert p.kind is ProblemKind.NOT_FOUND
    first = issue_numbers(rt, OPS["p11"])
    assert first.skipped == {"open_problem": 1}
    assert first.to_dict()["next_steps"]["open_problem"]["who"] == "kindergarten"
    assert list_stuck_records(rt, OPS["c105"]).counts == {"open_problem": 1}

    resolve_problem(rt, OPS["kgA"], p.id, "evidence", reason="户口簿", evidence=["scan:1"])
    assert list_stuck_records(rt, OPS["c105"]).counts == {"evidence_submitted": 1}
    out = resolve_problem(rt, OPS["c105"], p.id, "accept", reason="户口簿核实无误")
    assert out.verification is VerificationResult.CONFIRMED
    with store.unit_of_work() as uow:
        assert uow.records.get(rid).verification is VerificationResult.CONFIRMED
        confirm = [e for e in uow.audit.iter() if e.action == "confirm_identity"]
    assert [(e.subject, e.before, e.after) for e in confirm] == [
        (rid, {"verification": "NOT_FOUND"}, {"verification": "CONFIRMED", "problem": p.id})
    ]
    # the registry is not asked again (its answer would reopen the problem)
    again = verify_records(rt, OPS["p11"], _registry())
    assert again.checked == 0
    assert list(list_problems(rt, OPS["c105"])) == []
    assert list_stuck_records(rt, OPS["c105"]).counts == {"ready": 1}

    issued = issue_numbers(rt, OPS["p11"])
    assert [(i.record_id, i.national_number) for i in issued.issued] == [
        (rid, "G" + child["id_number"])
    ]
    with store.unit_of_work() as uow:
        (entry,) = [e for e in uow.audit.iter() if e.action == "issue_number"]
    assert entry.after["basis"] == "CONFIRMED"
    assert child["id_number"] not in str(entry.after)
    assert issue_numbers(rt, OPS["p11"]).issued == []
    assert list_stuck_records(rt, OPS["c105"]).counts == {}
    # the audit trail and its replay accept the county's confirmation
    report = verify(store, replay=True, unkeyed_ok=True)
    assert report.ok, report
    assert not report.findings, report.findings


@pytest.mark.parametrize("status", ["name", "info"])
def test_mismatch_evidence_confirms_and_closes_the_other_identity_problems(status: str) -> None:
    store = MemoryStore()
    seed_kindergartens(store)
    rt = runtime(store)
    child = _person(1)
    rid = import_children(rt, OPS["kgA"], [child]).records[0].record_id
    approve_records(rt, OPS["c105"], all_pending=True)
    verify_records(rt, OPS["p11"], _registry())  # NOT_FOUND first
    wrong = dict(child, name="别名") if status == "name" else dict(child, sex="F")
    verify_records(rt, OPS["p11"], _registry(wrong))  # then a mismatch: two open problems
    kinds = sorted(p.kind for p in list_problems(rt, OPS["c105"]))
    expected = "NAME_MISMATCH" if status == "name" else "INFO_MISMATCH"
    assert kinds == sorted(["NOT_FOUND", expected])
    pid = next(p.id for p in list_problems(rt, OPS["c105"]) if p.kind == expected)
    resolve_problem(rt, OPS["kgA"], pid, "evidence", reason="户口簿", evidence=["scan:2"])
    out = resolve_problem(rt, OPS["c105"], pid, "accept", reason="核实无误")
    assert len(out.resolved) == 1  # the NOT_FOUND went with it
    assert list(list_problems(rt, OPS["c105"])) == []
    assert [i.record_id for i in issue_numbers(rt, OPS["p11"]).issued] == [rid]


def test_correction_without_a_registry_clears_the_answer_and_verify_settles_it() -> None:
    store = MemoryStore()
    seed_kindergartens(store)
    rt = runtime(store)
    child = _person(1)
    rid = import_children(rt, OPS["kgA"], [child]).records[0].record_id
    approve_records(rt, OPS["c105"], all_pending=True)
    verify_records(rt, OPS["p11"], _registry(dict(child, name="别名")))
    (p,) = list(list_problems(rt, OPS["c105"]))
    out = resolve_problem(
        rt, OPS["kgA"], p.id, "correct", reason="按户口簿", corrections={"name": "别名"}
    )
    assert out.verification is None
    with store.unit_of_work() as uow:
        assert uow.records.get(rid).verification is None
    assert list_stuck_records(rt, OPS["c105"]).counts == {"not_verified": 1}
    assert issue_numbers(rt, OPS["p11"]).to_dict()["next_steps"]["not_verified"]["who"] == (
        "province"
    )
    verify_records(rt, OPS["p11"], _registry(dict(child, name="别名")))
    assert [i.kind for i in issue_numbers(rt, OPS["p11"]).issued] == ["G"]


def test_correction_with_a_registry_closes_stale_answers() -> None:
    """A duplicate corrected to the child's real number is re-verified at once: the match
    closes the NAME_MISMATCH that was about the wrong number, and the twin, left without a
    duplicate, is released."""
    store = MemoryStore()
    seed_kindergartens(store)
    rt = runtime(store)
    a = _person(1)
    b = _person(3, id_number=a["id_number"], kindergarten_code=KG_B.school_code)
    ids = [r.record_id for r in import_children(rt, OPS["c105"], [a, b]).records]
    approve_records(rt, OPS["c105"], all_pending=True)
    verify_records(rt, OPS["p11"], _registry(a))  # b: NAME_MISMATCH on a's number
    real_b = _person(3)
    rt = attrs.evolve(rt, registry=_registry(a, real_b))
    dup = next(
        p for p in list_problems(rt, OPS["c105"])
        if p.record_id == ids[1] and p.kind is ProblemKind.DUPLICATE_ID
    )  # fmt: skip
    out = resolve_problem(
        rt, OPS["kgB"], dup.id, "correct", reason="号码录错",
        corrections={"id_number": real_b["id_number"]},
    )  # fmt: skip
    assert out.verification is VerificationResult.MATCH
    assert len(out.resolved) == 2  # the stale NAME_MISMATCH, and the twin's DUPLICATE_ID
    assert list(list_problems(rt, OPS["c105"])) == []
    assert sorted(i.record_id for i in issue_numbers(rt, OPS["p11"]).issued) == sorted(ids)


def test_removing_the_id_of_an_approved_record_is_the_countys_and_leads_to_a_j_number() -> None:
    store = MemoryStore()
    seed_kindergartens(store)
    rt = runtime(store)
    rid = import_children(rt, OPS["kgA"], [_person(1)]).records[0].record_id
    approve_records(rt, OPS["c105"], all_pending=True)
    verify_records(rt, OPS["p11"], _registry())
    (p,) = list(list_problems(rt, OPS["c105"]))
    no_id = {"id_type": "none", "id_number": ""}
    with pytest.raises(RuleViolations) as err:
        resolve_problem(rt, OPS["kgA"], p.id, "correct", reason="无证", corrections=no_id)
    assert [v.code for v in err.value.violations] == ["county_must_confirm"]
    out = resolve_problem(rt, OPS["c105"], p.id, "correct", reason="无证", corrections=no_id)
    assert out.verification is VerificationResult.CONFIRMED
    (item,) = issue_numbers(rt, OPS["p11"]).issued
    assert (item.record_id, item.kind) == (rid, "J")


def test_a_numbered_record_keeps_its_number_through_a_duplicate() -> None:
    store = MemoryStore()
    seed_kindergartens(store)
    rt = runtime(store)
    a = _person(1)
    first = import_children(rt, OPS["kgA"], [a]).records[0].record_id
    approve_records(rt, OPS["c105"], all_pending=True)
    verify_records(rt, OPS["p11"], _registry(a))
    assert len(issue_numbers(rt, OPS["p11"]).issued) == 1
    second = import_children(rt, OPS["c105"], [dict(a, kindergarten_code=KG_B.school_code)])
    new = second.records[0].record_id
    problems = {p.record_id: p.id for p in list_problems(rt, OPS["c105"])}
    with pytest.raises(RuleViolations) as err:
        resolve_problem(rt, OPS["c105"], problems[first], "delete", reason="重复")
    assert [v.code for v in err.value.violations] == ["delete_numbered_duplicate"]
    with pytest.raises(RuleViolations) as err:
        resolve_problem(
            rt, OPS["c105"], problems[new], "arbitrate", reason="仲裁", winner_record_id=new
        )
    assert [v.code for v in err.value.violations] == ["winner_not_numbered"]
    # The numbered child keeps its identity document: correcting it away would free the
    # twin's ID while the G number (the ID itself) stays on the first record.
    for op in (OPS["kgA"], OPS["c105"]):
        for fix in ({"id_number": _person(2)["id_number"]}, {"id_type": "none", "id_number": ""}):
            with pytest.raises(RuleViolations) as err:
                resolve_problem(rt, op, problems[first], "correct", reason="改号", corrections=fix)
            assert "id_number_numbered" in [v.code for v in err.value.violations]
    # The same number typed with spaces (and a name fixed) is no change of document.
    spaced = a["id_number"][:6] + " " + a["id_number"][6:14] + " " + a["id_number"][14:]
    with pytest.raises(RuleViolations) as err:
        resolve_problem(
            rt, OPS["kgA"], problems[first], "correct", reason="改名",
            corrections={"id_number": spaced, "name": "改个名"},
        )  # fmt: skip
    assert [v.code for v in err.value.violations] == ["still_duplicate"]  # the twin lives
    with store.unit_of_work() as uow:
        assert uow.records.get(first).national_number == "G" + a["id_number"]
        assert uow.children.get(uow.records.get(first).child_id).document.number == a["id_number"]
    out = resolve_problem(rt, OPS["c105"], problems[new], "delete", reason="重复录入")
    assert out.cancelled == (new,)
    assert list(list_problems(rt, OPS["c105"])) == []


def _three_without_an_id(rt: Any) -> tuple[str, str, str, dict[str, str]]:
    """Three registrations of one child without an ID (suspected duplicates): their record ids
    and each record's problem id."""
    twin = _person(7, id_type="none", id_number="", name="无证儿")
    first, second, third = (
        import_children(rt, OPS["kgA"], [twin]).records[0].record_id for _ in range(3)
    )
    mine = {p.record_id: p.id for p in list_problems(rt, OPS["c105"])}
    return first, second, third, mine


def test_arbitration_keeps_to_the_countys_another_child_decision(store: Store) -> None:
    """Found by the liveness machine: a child the county accepted as another child (and who
    got a J number since) is not part of a later arbitration of the same name and birth date —
    neither cancelled nor demanded as the winner."""
    rt = runtime(store)
    county = OPS["c105"]
    first, second, third, mine = _three_without_an_id(rt)
    resolve_problem(rt, county, mine[third], "evidence", reason="户口簿", evidence=["s"])
    resolve_problem(rt, county, mine[third], "accept", reason="双胞胎，不是同一人")
    approve_records(rt, county, all_pending=True)
    assert [i.record_id for i in issue_numbers(rt, OPS["p11"]).issued] == [third]
    out = resolve_problem(
        rt, county, mine[first], "arbitrate", reason="仲裁", winner_record_id=first
    )
    assert out.cancelled == (second,)
    with store.unit_of_work() as uow:
        states = {r: uow.records.get(r).state for r in (first, second, third)}
    assert states == {first: State.ACTIVE, second: State.CANCELLED, third: State.ACTIVE}
    assert list(list_problems(rt, county)) == []
    numbers = {i.record_id: i.kind for i in issue_numbers(rt, OPS["p11"]).issued}
    assert numbers == {first: "J"}


def test_a_namesake_with_an_id_number_is_no_suspected_duplicate(store: Store) -> None:
    """Found by the liveness machine: three registrations of a child without an ID, one then
    given its ID number (and a G number); the namesake told apart by its ID is not part of
    the others' arbitration."""
    rt = runtime(store)
    county = OPS["c105"]
    first, second, third, mine = _three_without_an_id(rt)
    own = _person(7, name="无证儿")
    fix = {"id_type": "resident", "id_number": own["id_number"]}
    resolve_problem(rt, OPS["kgA"], mine[third], "correct", reason="补录证件", corrections=fix)
    approve_records(rt, county, all_pending=True)
    verify_records(rt, OPS["p11"], _registry(own))
    assert [i.record_id for i in issue_numbers(rt, OPS["p11"]).issued] == [third]
    out = resolve_problem(
        rt, county, mine[first], "arbitrate", reason="仲裁", winner_record_id=first
    )
    assert out.cancelled == (second,)
    assert list(list_problems(rt, county)) == []


def test_arbitration_keeps_a_record_that_still_duplicates(store: Store) -> None:
    """Found by the liveness machine: three registrations of one ID, one corrected to another
    ID; keeping the corrected record decided nothing and closed the problems, leaving the
    other two live with one ID and no problem (one of them stuck without its number)."""
    rt = runtime(store)
    county = OPS["c105"]
    a = _person(1)
    first, second, third = (
        import_children(rt, OPS["kgA"], [a]).records[0].record_id for _ in range(3)
    )
    mine = {p.record_id: p.id for p in list_problems(rt, county)}
    fixed = _person(2, sex=a["sex"])["id_number"]
    resolve_problem(
        rt, OPS["kgA"], mine[first], "correct", reason="录错", corrections={"id_number": fixed}
    )
    with pytest.raises(RuleViolations) as err:
        resolve_problem(
            rt, county, mine[second], "arbitrate", reason="仲裁", winner_record_id=first
        )
    (v,) = err.value.violations
    assert (v.code, set(v.hint.split(", "))) == ("winner_not_duplicate", {second, third})
    out = resolve_problem(
        rt, county, mine[second], "arbitrate", reason="仲裁", winner_record_id=second
    )
    assert out.cancelled == (third,)
    assert list(list_problems(rt, county)) == []
    approve_records(rt, county, all_pending=True)
    verify_records(rt, OPS["p11"], _registry(a, dict(a, id_number=fixed)))
    issued = {i.record_id: i.national_number for i in issue_numbers(rt, OPS["p11"]).issued}
    assert issued == {first: "G" + fixed, second: "G" + a["id_number"]}


def test_issue_numbers_never_gives_one_number_twice_in_a_run() -> None:
    """Two live records of one ID with no problem between them (set up behind the rules'
    back): the first gets the G number, the second is skipped, nothing is raised."""
    store = MemoryStore()
    seed_kindergartens(store)
    rt = runtime(store)
    a = _person(1)
    ids = [import_children(rt, OPS["kgA"], [a]).records[0].record_id for _ in range(2)]
    with store.unit_of_work() as uow:
        for p in uow.problems.iter():
            uow.problems.update(attrs.evolve(p, status=ProblemStatus.RESOLVED))
        for rid in ids:
            rec = uow.records.get(rid)
            uow.records.update(
                attrs.evolve(rec, state=State.ACTIVE, verification=VerificationResult.MATCH)
            )
        uow.commit()
    report = issue_numbers(rt, OPS["p11"])
    assert [i.record_id for i in report.issued] == [min(ids)]
    assert report.skipped == {"number_taken": 1}


def test_number_taken_is_listed_as_terminal_with_its_next_step() -> None:
    """A child whose numbered record left (not live) and who is registered afresh cannot get
    the G number again: ``number_taken``, a documented terminal state, says what to do."""
    store = MemoryStore()
    seed_kindergartens(store)
    rt = runtime(store)
    a = _person(1)
    old = import_children(rt, OPS["kgA"], [a]).records[0].record_id
    approve_records(rt, OPS["c105"], all_pending=True)
    verify_records(rt, OPS["p11"], _registry(a))
    issue_numbers(rt, OPS["p11"])
    with store.unit_of_work() as uow:  # left the kindergarten (set up directly)
        rec = uow.records.get(old)
        uow.records.update(attrs.evolve(rec, state=State.WITHDRAWN))
        uow.commit()
    new = import_children(rt, OPS["kgA"], [a]).records[0].record_id
    approve_records(rt, OPS["c105"], all_pending=True)
    verify_records(rt, OPS["p11"], _registry(a))
    report = issue_numbers(rt, OPS["p11"])
    assert report.skipped.get("number_taken") == 1
    step = report.to_dict()["next_steps"]["number_taken"]
    assert step["terminal"] is True
    assert step["who"] == "county"
    assert "RESTORE" in step["step_en"]
    assert any("number_taken 1" in line and "信息恢复" in line for line in report.skip_lines())
    stuck = list_stuck_records(rt, OPS["c105"])
    assert stuck.counts == {"number_taken": 1}
    assert stuck.groups["number_taken"].records[0]["record_id"] == new


def test_the_monitoring_report_counts_who_is_stuck(store: Store) -> None:
    from studentstatus.services.report_format import format_report
    from studentstatus.services.reports import build_report

    rt = runtime(store)
    people = [_person(1), _person(3), _person(5, id_type="none", id_number="")]
    import_children(rt, OPS["kgA"], people)
    approve_records(rt, OPS["c105"], all_pending=True)
    verify_records(rt, OPS["p11"], _registry(people[0]))  # the second: NOT_FOUND
    rep = build_report(rt, OPS["c105"], "110105", 2025)
    assert rep.stuck == {"open_problem": 1, "ready": 2}
    assert rep.stuck == list_stuck_records(rt, OPS["c105"]).counts
    assert rep.to_dict()["stuck"] == rep.stuck
    assert "未发学籍号 records without a national number" in format_report(rep)
    issue_numbers(rt, OPS["p11"])
    assert build_report(rt, OPS["p11"], "11", 2025).stuck == {"open_problem": 1}
