"""Public-security verification: registry adapters, results → problems, idempotence, scope."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from studentstatus.adapters.memory import MemoryStore
from studentstatus.adapters.population import (
    CsvPopulationRegistry,
    MemoryPopulationRegistry,
    Query,
)
from studentstatus.domain.enums import ProblemKind, ProblemStatus, VerificationResult
from studentstatus.errors import PermissionDenied
from studentstatus.services.intake import import_children
from studentstatus.services.verification import verify_records

from ._registration_world import OPS, REAL, bad_checksum, real_row, row, runtime, seed_kindergartens


def _registry_rows(rows: list[dict[str, str]]) -> list[tuple[str, str, str, date, str]]:
    return [
        (r["id_number"], r["name"], r["sex"], date.fromisoformat(r["birth_date"]), "normal")
        for r in rows
    ]


def test_memory_registry_answers_every_kind() -> None:
    number, (sex, born, _) = next(iter(REAL.items()))
    reg = MemoryPopulationRegistry(
        [
            (number, "王小红", sex, born, "normal"),
            ("510107201911300030", "张三", "M", date(2019, 11, 30), "deceased"),
            ("440306202109010045", "李四", "F", date(2021, 9, 1), "cancelled"),
        ]
    )
    ask = reg.verify(
        [
            Query(number, "王小红", sex, born),
            Query("510107201911300030", "张三", "M", date(2019, 11, 30)),
            Query("440306202109010045", "李四", "F", date(2021, 9, 1)),
            Query("360426199101010071", "赵六", "M", date(1991, 1, 1)),
        ]
    )
    assert [v.value for v in ask.values()] == ["MATCH", "DECEASED", "CANCELLED", "NOT_FOUND"]
    assert reg.verify([Query(number, "王小明", sex, born)])[number].value == "NAME_MISMATCH"
    assert reg.verify([Query(number, "王小红", "M", born)])[number].value == "INFO_MISMATCH"
    assert reg.verify([Query(number, "王小红", sex, date(2020, 3, 16))])[number].value == (
        "INFO_MISMATCH"
    )
    # lower-case x and the stored upper-case X are the same number
    assert reg.verify([Query(number.lower(), "王小红", sex, born)])[number.lower()].value == (
        "MATCH"
    )


def test_csv_registry_with_bom_chinese_headers_and_bad_rows(tmp_path: Path) -> None:
    path = tmp_path / "extract.csv"
    path.write_text(
        "\ufeff身份证号,姓名,性别,出生日期,状态\n"
        "11010520200315002X,王小红,女,2020/03/15,正常\n"
        "510107201911300030,张三,男,20191130,deceased\n"
        "bad,row\n"
        "440306202109010045,李四,F,2021-09-01,unknown-status\n",
        encoding="utf-8",
    )
    reg = CsvPopulationRegistry(path)
    assert len(reg) == 2
    assert reg.skipped == 2
    got = reg.verify([Query("11010520200315002X", "王小红", "F", date(2020, 3, 15))])
    assert got["11010520200315002X"] is VerificationResult.MATCH


@pytest.fixture
def rt():  # type: ignore[no-untyped-def]
    store = MemoryStore()
    seed_kindergartens(store)
    return runtime(store)


def test_results_become_problems_of_the_matching_kind(rt) -> None:  # type: ignore[no-untyped-def]
    rows = [row(i) for i in range(1, 7)]
    reg_rows = _registry_rows(rows)
    reg_rows[1] = (*reg_rows[1][:1], "别人", *reg_rows[1][2:])  # name mismatch
    reg_rows[2] = (*reg_rows[2][:2], "F" if reg_rows[2][2] == "M" else "M", *reg_rows[2][3:])
    reg_rows[3] = (*reg_rows[3][:4], "deceased")
    reg_rows[4] = (*reg_rows[4][:4], "cancelled")
    del reg_rows[5]  # not found
    imported = import_children(rt, OPS["kgA"], rows)
    assert imported.accepted == 6
    report = verify_records(rt, OPS["p11"], MemoryPopulationRegistry(reg_rows))
    assert report.checked == 6
    assert report.results == {
        "MATCH": 1,
        "NAME_MISMATCH": 1,
        "INFO_MISMATCH": 1,
        "DECEASED": 1,
        "CANCELLED": 1,
        "NOT_FOUND": 1,
    }
    assert report.problems == {
        "NAME_MISMATCH": 1,
        "INFO_MISMATCH": 1,
        "REGISTRY_DECEASED": 2,
        "NOT_FOUND": 1,
    }
    by_row = {r.row: r.record_id for r in imported.records}
    with rt.store.unit_of_work() as uow:
        assert uow.records.get(by_row[1]).verification is VerificationResult.MATCH
        assert uow.records.get(by_row[6]).verification is VerificationResult.NOT_FOUND
        actions = [a.action for a in uow.audit.iter()]
        assert actions.count("verify") == 6
        for entry in uow.audit.iter():
            assert rows[0]["id_number"] not in str(entry.after)

    # idempotent: nothing new is opened; matched records are not sent again
    again = verify_records(rt, OPS["p11"], MemoryPopulationRegistry(reg_rows))
    assert again.checked == 5
    assert again.problems == {}


def test_a_later_match_resolves_the_verification_problem(rt) -> None:  # type: ignore[no-untyped-def]
    rows = [row(1)]
    import_children(rt, OPS["kgA"], rows)
    verify_records(rt, OPS["p11"], MemoryPopulationRegistry([]))
    report = verify_records(rt, OPS["p11"], MemoryPopulationRegistry(_registry_rows(rows)))
    assert report.results == {"MATCH": 1}
    assert report.resolved == 1
    with rt.store.unit_of_work() as uow:
        (problem,) = list(uow.problems.iter())
    assert problem.kind is ProblemKind.NOT_FOUND
    assert problem.status is ProblemStatus.RESOLVED


def test_invalid_and_missing_ids_are_not_sent(rt) -> None:  # type: ignore[no-untyped-def]
    good = row(1)
    rows = [
        dict(good, id_number=bad_checksum(good["id_number"])),
        row(2, id_type="none", id_number=""),
        real_row("11010520200315002X", kindergarten_code="1111000001"),
    ]
    import_children(rt, OPS["kgA"], rows)
    report = verify_records(rt, OPS["p11"], MemoryPopulationRegistry([]))
    assert report.checked == 1
    assert report.skipped == {"invalid_id": 1, "no_resident_id": 1}


def test_only_provinces_verify_and_only_their_prefix(rt) -> None:  # type: ignore[no-untyped-def]
    import_children(rt, OPS["kgA"], [row(1)])
    with pytest.raises(PermissionDenied):
        verify_records(rt, OPS["c105"], MemoryPopulationRegistry([]))
    other = verify_records(rt, OPS["p44"], MemoryPopulationRegistry([]))
    assert other.checked == 0
    with pytest.raises(ValueError, match="registry"):
        verify_records(rt, OPS["p11"])


def test_two_records_with_the_same_number_get_their_own_answers(rt) -> None:  # type: ignore[no-untyped-def]
    a = row(1)
    report = import_children(rt, OPS["kgA"], [a, dict(a, name="冒名")])
    verify_records(rt, OPS["p11"], MemoryPopulationRegistry(_registry_rows([a])))
    with rt.store.unit_of_work() as uow:
        got = {
            uow.children.get(uow.records.get(r.record_id).child_id).name: uow.records.get(
                r.record_id
            ).verification
            for r in report.records
        }
    assert got == {a["name"]: VerificationResult.MATCH, "冒名": VerificationResult.NAME_MISMATCH}
