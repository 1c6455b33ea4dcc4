"""National numbers: G after a match, J after county confirmation, idempotent, never reused;
show/look-up by number or id with masking."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from studentstatus.adapters.memory import MemoryStore
from studentstatus.adapters.population import MemoryPopulationRegistry
from studentstatus.domain import numbers as national
from studentstatus.domain.enums import ChangeKind
from studentstatus.errors import NotFoundError, PermissionDenied, RuleViolations
from studentstatus.ports import Store
from studentstatus.services.approval import approve_records
from studentstatus.services.intake import import_children
from studentstatus.services.numbers import get_record, issue_numbers
from studentstatus.services.problems import list_problems, resolve_problem
from studentstatus.services.verification import verify_records

from ._registration_world import (
    ENTRY,
    KG_B,
    OPS,
    cn,
    make_store,
    real_row,
    row,
    runtime,
    seed_kindergartens,
)


def _registry(rows: list[dict[str, str]]) -> MemoryPopulationRegistry:
    return MemoryPopulationRegistry(
        (r["id_number"], r["name"], r["sex"], date.fromisoformat(r["birth_date"]), "normal")
        for r in rows
        if r["id_number"]
    )


def _flow(store: Store) -> None:
    seed_kindergartens(store)
    rt = runtime(store)
    with_id = [row(1), row(2), real_row("11010520200315002X")]
    no_id = [row(3, id_type="none", id_number=""), row(4, id_type="passport", id_number="E1234567")]
    unverified = row(5)
    report = import_children(rt, OPS["kgA"], [*with_id, *no_id, unverified])
    assert report.accepted == 6, report.rejected
    temp = {r.row: r.temp_number for r in report.records}
    rid = {r.row: r.record_id for r in report.records}

    # nothing is ACTIVE yet
    assert issue_numbers(rt, OPS["p11"]).issued == []
    approved = approve_records(rt, OPS["c105"], all_pending=True)
    assert len(approved.approved) == 6
    verify_records(rt, OPS["p11"], _registry(with_id))

    first = issue_numbers(rt, OPS["p11"], chunk_size=2)
    kinds = {i.record_id: i.kind for i in first.issued}
    assert kinds == {rid[1]: "G", rid[2]: "G", rid[3]: "G", rid[4]: "J", rid[5]: "J"}
    assert first.skipped == {"open_problem": 1}  # row 6: NOT_FOUND
    for item in first.issued:
        n = item.national_number
        assert len(n) == 19
        assert national.validate(n) == n
    g = {i.record_id: i.national_number for i in first.issued}
    assert g[rid[3]] == "G11010520200315002X"
    assert g[rid[4]][:15] == "J11010520201003"
    assert len(set(g.values())) == 5

    # idempotent
    second = issue_numbers(rt, OPS["p11"])
    assert second.issued == []
    assert second.skipped == {"already_issued": 5, "open_problem": 1}

    # the former L number still resolves, the G number is masked unless revealed
    shown = get_record(rt, OPS["c105"], temp[1])
    assert shown.record_id == rid[1]
    assert shown.former_numbers == ("L**************" + temp[1][-4:],)
    assert shown.temp_number is None
    assert shown.national_number == "G11****************"
    assert shown.child.document_number == "11****************"
    assert [h.kind for h in shown.history] == [ChangeKind.REGISTER, ChangeKind.APPROVE]
    doc = shown.to_dict()  # the JSON form: strings, ISO dates, lists
    assert list(doc) == [
        "record_id", "child_id", "state", "grade", "kindergarten_code", "region_code",
        "entry_date", "national_number", "temp_number", "former_numbers", "verification",
        "county_confirmed", "version", "child", "numbers", "problems", "history",
    ]  # fmt: skip
    assert (doc["state"], doc["entry_date"], doc["temp_number"]) == ("ACTIVE", ENTRY, None)
    assert doc["former_numbers"] == list(shown.former_numbers)
    assert [e["to"] for e in doc["history"]] == ["PENDING", "ACTIVE"]
    assert {n["kind"] for n in doc["numbers"]} == {"G", "L"}
    revealed = get_record(rt, OPS["kgA"], g[rid[1]], reveal=True)
    assert g[rid[1]] not in repr(revealed)
    assert revealed.national_number == g[rid[1]]
    assert revealed.child.document_number == with_id[0]["id_number"]
    assert (
        get_record(rt, OPS["c105"], rid[4]).national_number == "J*****************" + g[rid[4]][-1]
    )
    assert get_record(rt, OPS["c105"], rid[4], reveal=True).former_numbers == (temp[4],)
    with pytest.raises(NotFoundError):
        get_record(rt, OPS["c108"], temp[1])
    with pytest.raises(NotFoundError):
        get_record(rt, OPS["c105"], "L999999202001010000")

    # a cancelled record keeps its number; the same child registered again cannot get it
    pid = next(p.id for p in list_problems(rt, OPS["c105"]))
    resolve_problem(rt, OPS["c105"], pid, "delete", reason="虚假信息")
    again = import_children(rt, OPS["c105"], [dict(with_id[0], kindergarten_code=KG_B.school_code)])
    new_id = again.records[0].record_id
    assert again.problems == {"DUPLICATE_ID": 2}
    # the old record is live and holds the G number: arbitration keeps it (the number cannot
    # move), so the new record is the one cancelled
    dup = next(p.id for p in list_problems(rt, OPS["c105"]) if p.record_id == new_id)
    with pytest.raises(RuleViolations) as err:
        resolve_problem(
            rt, OPS["c105"], dup, "arbitrate", reason="转园重录", winner_record_id=new_id
        )
    assert [v.code for v in err.value.violations] == ["winner_not_numbered"]
    out = resolve_problem(
        rt, OPS["c105"], dup, "arbitrate", reason="转园重录", winner_record_id=rid[1]
    )
    assert out.cancelled == (new_id,)
    verify_records(rt, OPS["p11"], _registry(with_id))
    third = issue_numbers(rt, OPS["p11"])
    assert third.issued == []
    assert "number_taken" not in third.skipped
    with store.unit_of_work() as uow:
        holder = uow.numbers.resolve(g[rid[1]])
        assert holder is not None
        assert holder.record_id == rid[1]
        assert sum(1 for e in uow.audit.iter() if e.action == "issue_number") == 5
        for e in uow.audit.iter():
            assert with_id[0]["id_number"] not in str(e.after)


def test_issue_and_show_on_memory() -> None:
    _flow(MemoryStore())


def test_issue_and_show_on_sqlite(tmp_path: Path) -> None:
    with make_store("sqlite", tmp_path) as store:
        _flow(store)


@pytest.mark.postgres
def test_issue_and_show_on_postgres(postgres_url: str, tmp_path: Path) -> None:
    with make_store("postgres", tmp_path, postgres_url) as store:
        _flow(store)


@pytest.mark.mysql
def test_issue_and_show_on_mysql(mysql_url: str, tmp_path: Path) -> None:
    with make_store("mysql", tmp_path, mysql_url) as store:
        _flow(store)


def test_only_province_or_ministry_issue_and_scope_limits() -> None:
    store = MemoryStore()
    seed_kindergartens(store)
    rt = runtime(store)
    import_children(rt, OPS["kgA"], [row(1, id_type="none", id_number="")])
    approve_records(rt, OPS["c105"], all_pending=True)
    with pytest.raises(PermissionDenied):
        issue_numbers(rt, OPS["c105"])
    assert issue_numbers(rt, OPS["p44"]).issued == []
    issued = issue_numbers(rt, OPS["ministry"]).issued
    assert [i.kind for i in issued] == ["J"]


def test_j_sequences_per_region_and_birth_date() -> None:
    store = MemoryStore()
    seed_kindergartens(store)
    rt = runtime(store)
    rows = [row(i, id_type="none", id_number="", name="无证" + cn(i)) for i in range(1, 13)]
    import_children(rt, OPS["kgA"], rows)
    approve_records(rt, OPS["c105"], all_pending=True)
    # SUSPECTED_DUPLICATE needs same name; names differ, so all are problem-free
    numbers = sorted(i.national_number for i in issue_numbers(rt, OPS["p11"]).issued)
    assert [n[15:18] for n in numbers] == [f"{i:03d}" for i in range(1, 13)]
