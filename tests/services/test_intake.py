"""Child intake: complete row checks, PENDING records with L numbers, problems, scope, units."""

from __future__ import annotations

import io
import logging
from pathlib import Path

import attrs
import pytest

from studentstatus.adapters.memory import MemoryStore
from studentstatus.domain import numbers as national
from studentstatus.domain.enums import ChangeKind, Grade, ProblemKind, State
from studentstatus.errors import PermissionDenied, RuleViolations, StorageError
from studentstatus.services.intake import (
    RegisteredChild,
    RosteredChild,
    import_children,
    register_child,
)

from ._registration_world import (
    KG_C,
    KG_X,
    OPS,
    FailingStore,
    bad_checksum,
    cn,
    counts,
    csv_bytes,
    make_store,
    real_row,
    row,
    runtime,
    seed_kindergartens,
)


@pytest.fixture
def rt():  # type: ignore[no-untyped-def]
    store = MemoryStore()
    seed_kindergartens(store)
    return runtime(store)


def test_accepted_row_becomes_pending_record_with_claimed_l_number(rt) -> None:  # type: ignore[no-untyped-def]
    report = import_children(rt, OPS["kgA"], [row(1)])
    assert report.accepted == 1
    assert report.rejected == []
    out = report.records[0]
    assert out.row == 1
    assert out.state == "PENDING"
    temp = out.temp_number
    assert len(temp) == 19
    assert temp.startswith("L110105" + "20201003")
    assert national.kind_of(temp).value == "L"
    with rt.store.unit_of_work() as uow:
        rec = uow.records.get(out.record_id)
        assert rec.state is State.PENDING
        assert rec.temp_number == temp
        assert uow.numbers.resolve(temp).record_id == rec.id
        events = uow.changes.for_record(rec.id)
        assert [e.kind for e in events] == [ChangeKind.REGISTER]
        assert [a.action for a in uow.audit.iter()] == ["register"]
        child = uow.children.get(rec.child_id)
        assert child.guardians[0].phone.startswith("+86")


def test_real_public_vectors_are_accepted(rt) -> None:  # type: ignore[no-untyped-def]
    rows = [real_row(n) for n in ("11010520200315002X", "510107201911300030")]
    report = import_children(rt, OPS["kgA"], rows)
    assert report.accepted == 2, report.rejected
    assert report.problems == {}


def test_every_violation_of_a_row_is_its_own_entry(rt) -> None:  # type: ignore[no-untyped-def]
    bad = row(
        1,
        sex="X",
        grade="博士班",
        guardian_phone="123",
        ethnicity="99",
        entry_date="2025-13-01",
        hukou_rural="maybe",
    )
    report = import_children(rt, OPS["kgA"], [row(2), bad])
    assert report.accepted == 1
    got = {(r.row, r.field, r.code) for r in report.rejected}
    assert got == {
        (2, "sex", "sex_invalid"),
        (2, "grade", "grade_invalid"),
        (2, "guardian_phone", "guardian_phone_invalid"),
        (2, "ethnicity", "ethnicity_invalid"),
        (2, "entry_date", "entry_date_invalid"),
        (2, "hukou_rural", "hukou_rural_invalid"),
    }
    for r in report.rejected:
        assert r.message_zh
        assert r.message_en


def test_grade_not_fitting_age_and_future_entry_are_reported(rt) -> None:  # type: ignore[no-untyped-def]
    report = import_children(
        rt, OPS["kgA"], [row(1, grade="SENIOR"), row(2, entry_date="2025-09-30")]
    )
    codes = {(r.row, r.code) for r in report.rejected}
    assert (1, "grade_age_mismatch") in codes
    assert (2, "effective_date_future") in codes
    assert report.accepted == 0


def test_csv_with_bom_chinese_headers_and_date_formats(rt) -> None:  # type: ignore[no-untyped-def]
    header_zh = [
        "幼儿园代码", "姓名", "性别", "出生日期", "证件类型", "证件号码", "国籍", "民族",
        "户口所在地", "户口性质", "现住址", "监护人姓名", "与幼儿关系", "监护人电话", "入园日期",
        "班级",
    ]  # fmt: skip
    rows = [row(1), row(2), row(3)]
    rows[0]["birth_date"] = "2020/10/03"
    rows[0]["sex"] = "男"
    rows[1]["birth_date"] = "20201003"
    rows[1]["sex"] = "女"
    rows[2]["grade"] = "中班"
    keyed = [dict(zip(header_zh, r.values())) for r in rows]
    data = csv_bytes(keyed, header=header_zh, bom=True)
    report = import_children(rt, OPS["kgA"], io.BytesIO(data))
    assert report.rejected == []
    assert report.accepted == 3


def test_rows_are_numbered_from_one_and_rejected_rows_write_nothing(rt, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "kids.csv"
    path.write_bytes(csv_bytes([row(1), row(2, name=""), row(3)]))
    before = counts(rt.store)
    report = import_children(rt, OPS["kgA"], path)
    assert [(r.row, r.code) for r in report.rejected] == [(2, "name_required")]
    after = counts(rt.store)
    assert after["records"] - before["records"] == 2
    assert after["children"] - before["children"] == 2


def test_out_of_scope_rows_are_rejected(rt) -> None:  # type: ignore[no-untyped-def]
    rows = [row(1), row(2, kindergarten_code=KG_C.school_code)]
    report = import_children(rt, OPS["kgA"], rows)
    assert [(r.row, r.field, r.code) for r in report.rejected] == [
        (2, "kindergarten_code", "out_of_scope")
    ]
    county = import_children(rt, OPS["c105"], [row(3, kindergarten_code=KG_C.school_code)])
    assert [r.code for r in county.rejected] == ["out_of_scope"]


def test_roles_that_may_not_register_are_refused_and_logged(rt, caplog) -> None:  # type: ignore[no-untyped-def]
    with (
        caplog.at_level(logging.WARNING, "studentstatus.services"),
        pytest.raises(PermissionDenied),
    ):
        import_children(rt, OPS["p11"], [row(1)])
    assert "province:11" in caplog.text
    assert "register" in caplog.text


def test_unlicensed_kindergarten_and_roster(rt) -> None:  # type: ignore[no-untyped-def]
    unlicensed = row(1, kindergarten_code=KG_X.school_code)
    report = import_children(rt, OPS["c105"], [unlicensed])
    assert [r.code for r in report.rejected] == ["kindergarten_unlicensed"]
    unknown = row(2, kindergarten_code="1111009999")
    report = import_children(rt, OPS["c105"], [unknown])
    assert [r.code for r in report.rejected] == ["kindergarten_unknown"]

    before = counts(rt.store)
    roster = import_children(rt, OPS["c105"], [unlicensed, unknown, row(3)], unlicensed_roster=True)
    assert roster.rejected == []
    assert roster.rostered == 2
    assert roster.accepted == 1
    after = counts(rt.store)
    assert after["roster"] - before["roster"] == 2
    assert after["records"] - before["records"] == 1
    with rt.store.unit_of_work() as uow:
        names = {e.kindergarten_name for e in uow.roster.iter(county_prefix="110105")}
    assert names == {KG_X.name, "1111009999"}
    with pytest.raises(PermissionDenied):
        import_children(rt, OPS["kgA"], [unlicensed], unlicensed_roster=True)


def test_checksum_invalid_id_is_a_problem_by_default_and_a_rejection_by_policy(rt) -> None:  # type: ignore[no-untyped-def]
    good = row(1)
    bad = dict(good, id_number=bad_checksum(good["id_number"]))
    report = import_children(rt, OPS["kgA"], [bad])
    assert report.accepted == 1
    assert report.problems == {"INVALID_ID": 1}
    assert report.records[0].problems == (ProblemKind.INVALID_ID,)
    strict = attrs.evolve(rt, policy=attrs.evolve(rt.policy, invalid_id="reject"))
    report = import_children(strict, OPS["kgA"], [dict(bad, name="另一个")])
    assert [(r.field, r.code) for r in report.rejected] == [("id_number", "checksum")]
    short = import_children(rt, OPS["kgA"], [dict(good, id_number="12345")])
    assert [(r.field, r.code) for r in short.rejected] == [("id_number", "length")]


def test_duplicates_inside_the_file_across_chunks_and_against_the_store(rt) -> None:  # type: ignore[no-untyped-def]
    a, b = row(1), row(2)
    rows = [a, b, dict(a, name="同号"), row(4), row(5)]
    report = import_children(rt, OPS["kgA"], rows, chunk_size=2)
    assert report.accepted == 5
    assert report.problems == {"DUPLICATE_ID": 2}
    # row 1 was written (and reported) with the first chunk; its twin came later
    assert [r.row for r in report.records if "DUPLICATE_ID" in r.problems] == [3]
    ids = {r.row: r.record_id for r in report.records}
    with rt.store.unit_of_work() as uow:
        first = uow.problems.for_record(ids[1])
    assert [(p.kind, p.related_record_ids) for p in first] == [
        (ProblemKind.DUPLICATE_ID, (ids[3],))
    ]
    # against the store: the stored record gets a problem too, once
    again = import_children(rt, OPS["kgA"], [dict(b, name="又一个")])
    assert again.problems == {"DUPLICATE_ID": 2}
    with rt.store.unit_of_work() as uow:
        dup = [p for p in uow.problems.iter() if p.kind is ProblemKind.DUPLICATE_ID]
        assert len(dup) == 4
        for p in dup:
            assert p.related_record_ids
            assert p.county_code == "110105"
            assert p.due_date.isoformat() == "2026-07-31"


def test_suspected_duplicates_without_documents(rt) -> None:  # type: ignore[no-untyped-def]
    base = row(1, id_type="none", id_number="", name="王小明")
    other_sex = dict(base, sex="F")
    report = import_children(rt, OPS["kgA"], [base, dict(base), other_sex])
    assert report.accepted == 3
    assert report.problems == {"SUSPECTED_DUPLICATE": 2}


def test_storage_failure_mid_batch_leaves_the_store_as_before(rt) -> None:  # type: ignore[no-untyped-def]
    import_children(rt, OPS["kgA"], [row(100)])
    before = counts(rt.store)
    failing = attrs.evolve(rt, store=FailingStore(rt.store, fail_at=2))
    with pytest.raises(StorageError):
        import_children(failing, OPS["kgA"], [row(i) for i in range(1, 8)], chunk_size=3)
    assert counts(rt.store) == before


def test_register_child_single_form(rt) -> None:  # type: ignore[no-untyped-def]
    out = register_child(rt, OPS["kgA"], row(1))
    assert out.state is State.PENDING
    assert out.grade is Grade.MIDDLE
    assert out.problems == ()
    assert out.temp_number is not None
    assert out.temp_number not in repr(out)  # the L number holds the birth date
    assert out.to_dict() == {
        "row": 1,
        "record_id": out.record_id,
        "child_id": out.child_id,
        "kindergarten_code": "1111000001",
        "temp_number": out.temp_number,
        "state": "PENDING",
        "grade": "MIDDLE",
        "problems": [],
    }
    again = register_child(rt, OPS["kgA"], row(1))  # the same child: a duplicate ID
    assert again.problems == (ProblemKind.DUPLICATE_ID,)
    assert again.to_dict()["problems"] == ["DUPLICATE_ID"]
    with pytest.raises(RuleViolations) as err:
        register_child(rt, OPS["kgA"], row(2, sex="?", name=""))
    assert {v.code for v in err.value.violations} == {"sex_invalid", "name_required"}


def test_temporary_numbers_never_collide_with_the_store(rt) -> None:  # type: ignore[no-untyped-def]
    # Same region and birth date for many children: 4 random digits must still be unique.
    rows = [row(i, id_type="none", id_number="", name="同日" + cn(i)) for i in range(300)]
    report = import_children(rt, OPS["kgA"], rows, chunk_size=50)
    more = import_children(rt, OPS["kgA"], rows[:100], chunk_size=50)
    numbers = [r.temp_number for r in report.records + more.records]
    assert len(numbers) == len(set(numbers)) == 400


@pytest.mark.parametrize("kind", ["sqlite"])
def test_end_to_end_on_sqlite(kind: str, tmp_path: Path) -> None:
    with make_store(kind, tmp_path) as store:
        _end_to_end(store)


@pytest.mark.postgres
def test_end_to_end_on_postgres(postgres_url: str, tmp_path: Path) -> None:
    with make_store("postgres", tmp_path, postgres_url) as store:
        _end_to_end(store)


@pytest.mark.mysql
def test_end_to_end_on_mysql(mysql_url: str, tmp_path: Path) -> None:
    with make_store("mysql", tmp_path, mysql_url) as store:
        _end_to_end(store)


def _end_to_end(store) -> None:  # type: ignore[no-untyped-def]
    seed_kindergartens(store)
    rt = runtime(store)
    a = row(1)
    rows = [a, row(2), dict(a, name="重复"), row(4, sex="?"), row(5, id_type="none", id_number="")]
    report = import_children(rt, OPS["kgA"], rows, chunk_size=2)
    assert report.accepted == 4
    assert [(r.row, r.code) for r in report.rejected] == [(4, "sex_invalid")]
    assert report.problems == {"DUPLICATE_ID": 2}
    before = counts(store)
    failing = attrs.evolve(rt, store=FailingStore(store, fail_at=2))
    with pytest.raises(StorageError):
        import_children(failing, OPS["kgA"], [row(i) for i in range(10, 16)], chunk_size=2)
    assert counts(store) == before
    with store.unit_of_work() as uow:
        recs = list(uow.records.iter(states=[State.PENDING]))
        assert len(recs) == 4
        for rec in recs:
            assert uow.numbers.resolve(rec.temp_number or "").record_id == rec.id


@pytest.mark.parametrize(
    ("cell", "escaped"),
    [
        ("=cmd|' /C calc'!A0", "'=cmd|' /C calc'!A0"),
        ("+8613800138000", "'+8613800138000"),
        ("-1+2", "'-1+2"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\t=1", "'\t=1"),
        ("\r=1", "'\r=1"),
        ("王小明", "王小明"),
        ("a=b", "a=b"),
    ],
)
def test_csv_exports_escape_formula_leading_cells(cell: str, escaped: str) -> None:
    from studentstatus.services.csvio import escape_cell, write_csv

    assert escape_cell(cell) == escaped
    out = io.StringIO()
    write_csv(out, ["x"], [[cell]])
    import csv as _csv

    assert list(_csv.reader(io.StringIO(out.getvalue(), newline="")))[1] == [escaped]


def test_reader_reports_bad_bytes_short_long_and_huge_cells() -> None:
    from studentstatus.services.csvio import CHILD_ALIASES, MAX_CELL, read_csv

    data = (
        b"name,sex,birth_date\n"
        b"\xff\xfeabc,M,2020-01-01\n"
        b"b,F\n"
        b"c,M,2020-01-01,extra\n" + b"d" * (MAX_CELL + 5) + b",M,2020-01-01\n\n"
        b"e,F,2020-01-01\n"
    )
    rows = list(read_csv(io.BytesIO(data), aliases=CHILD_ALIASES, required=("name", "grade")))
    got = [(r.number, sorted((p.code, p.field) for p in r.problems)) for r in rows]
    assert got == [
        (1, [("column_missing", "grade"), ("encoding", "name")]),
        (2, [("column_missing", "grade"), ("row_short", "")]),
        (3, [("column_missing", "grade"), ("row_long", "")]),
        (4, [("column_missing", "grade"), ("too_long", "name")]),
        (5, [("column_missing", "grade")]),
    ]


def test_progress_and_record_callbacks(rt) -> None:  # type: ignore[no-untyped-def]
    seen: list[int] = []
    records: list[RegisteredChild | RosteredChild] = []
    report = import_children(
        rt,
        OPS["kgA"],
        [row(i) for i in range(1, 6)],
        chunk_size=2,
        on_record=records.append,
        collect_records=False,
        progress=seen.append,
    )
    assert report.records == []
    assert [r.row for r in records] == [1, 2, 3, 4, 5]
    assert seen[-1] == 5
    assert seen == sorted(seen)


def test_gc_threshold_relaxed_during_import_and_restored() -> None:
    import gc

    from studentstatus.services.intake import _gc_relaxed

    before = gc.get_threshold()
    with _gc_relaxed(threshold=before[0] + 1000):
        assert gc.get_threshold()[0] == before[0] + 1000
        with _gc_relaxed(threshold=before[0] + 5):  # a concurrent import: unchanged
            assert gc.get_threshold()[0] == before[0] + 1000
        assert gc.get_threshold()[0] == before[0] + 1000
    assert gc.get_threshold() == before
    try:
        with _gc_relaxed():
            raise RuntimeError("boom")
    except RuntimeError:
        pass
    assert gc.get_threshold() == before
