"""Files checked as files before anything is written, on every store; names by their policy.

* rosters, kindergarten registries, population extracts and attendance files that are
  empty, header-only, binary, in an unknown encoding or wrongly headed are refused with
  one :class:`FileRejected` and nothing is written;
* GB18030, UTF-16 and .xlsx files are imported like UTF-8 CSV (same rows, same codes);
* a control character (NUL included) is a row-level rejection with its row number on
  memory, files, SQLite, PostgreSQL and MariaDB — the database never sees it;
* names outside the character policy are rejected ``name_characters``.
"""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from studentstatus.adapters.memory import MemoryStore
from studentstatus.adapters.population import CsvPopulationRegistry
from studentstatus.ports import Store
from studentstatus.services.attendance import import_attendance
from studentstatus.services.dropout import read_population
from studentstatus.services.intake import import_children, import_files
from studentstatus.services.kindergartens import import_kindergartens
from studentstatus.services.verification import verify_records
from studentstatus.tabular import CHILD_COLUMNS, KINDERGARTEN_COLUMNS, FileRejected

from ._registration_world import (
    KINDERGARTENS,
    OPS,
    cn,
    counts,
    csv_bytes,
    make_store,
    row,
    runtime,
    seed_kindergartens,
)

openpyxl = pytest.importorskip("openpyxl")

KG_GOOD = {
    "school_code": "1111000001",
    "uscc": "12100000400000624D",
    "name": "阳光幼儿园",
    "region_code": "110105",
    "type": "PUBLIC",
    "inclusive": "1",
    "licence_no": "L1",
    "licence_issuer": "区教委",
    "licence_issued": "2020-01-01",
    "licence_valid_until": "2030-12-31",
    "licence_state": "VALID",
}


@contextmanager
def _store(kind: str, tmp: Path, request: pytest.FixtureRequest) -> Iterator[Store]:
    if kind == "files":
        from studentstatus.store import open_store

        store = open_store(f"file://{tmp / ('fs-' + uuid.uuid4().hex[:8])}", create=True)
        try:
            yield store
        finally:
            store.close()
        return
    url = None
    if kind == "postgres":
        url = request.getfixturevalue("postgres_url")
    elif kind == "mysql":
        url = request.getfixturevalue("mysql_url")
    with make_store(kind, tmp, url) as store:
        yield store


STORES = ["memory", "files", "sqlite", "postgres", "mysql"]


@pytest.mark.parametrize("kind", STORES)
def test_nul_in_a_kindergarten_name_is_a_row_rejection_on_every_store(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    rows = [
        KG_GOOD,
        dict(KG_GOOD, school_code="1111000002", name="朝阳\x00二幼"),
        dict(KG_GOOD, school_code="1111000003", name="=1+1"),
        dict(KG_GOOD, school_code="1111000004", name="第3幼儿园（东区）"),
    ]
    data = csv_bytes(rows, header=KINDERGARTEN_COLUMNS)
    with _store(kind, tmp_path, request) as store:
        report = import_kindergartens(runtime(store), OPS["c105"], io.BytesIO(data))
        assert {(r.row, r.field, r.code) for r in report.rejected} == {
            (2, "name", "control_character"),
            (3, "name", "name_characters"),
        }
        assert report.accepted == 2
        with store.unit_of_work() as uow:
            names = sorted(k.name for k in uow.kindergartens.iter(region_prefix="11"))
        assert names == ["第3幼儿园（东区）", "阳光幼儿园"]


@pytest.mark.parametrize("kind", STORES)
def test_nul_in_a_child_row_is_a_row_rejection_on_every_store(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    rows = [
        row(1),
        row(2, name="王\x00明"),
        row(3, guardian_name="李\x00"),
        row(4, name="<script>alert(3)</script>"),
        row(5, name="王小明\U0001f600"),
        row(6, name="\u202e王小明"),
        row(7, name="阿依古丽·买买提"),
        row(8, name="John Smith", guardian_name="Mary O'Brien"),
        row(9, id_number="11010520200315\x00002X"),
    ]
    with _store(kind, tmp_path, request) as store:
        seed_kindergartens(store)
        report = import_children(runtime(store), OPS["kgA"], io.BytesIO(csv_bytes(rows)))
        got = {(r.row, r.field, r.code) for r in report.rejected}
        assert (2, "name", "control_character") in got
        assert (3, "guardian_name", "control_character") in got
        assert (4, "name", "name_characters") in got
        assert (5, "name", "name_characters") in got
        assert (6, "name", "name_characters") in got
        assert (9, "id_number", "control_character") in got
        assert {r for r, _, _ in got} == {2, 3, 4, 5, 6, 9}
        assert report.accepted == 3
        assert counts(store)["records"] == 3


def _roster(rows: list[dict[str, str]], encoding: str, chinese: bool = True) -> bytes:
    zh = {
        "kindergarten_code": "幼儿园标识码",
        "name": "幼儿姓名",
        "sex": "性别",
        "birth_date": "出生日期",
        "id_type": "证件类型",
        "id_number": "身份证件号码",
        "guardian_name": "监护人姓名",
        "guardian_relation": "与幼儿关系",
        "guardian_phone": "监护人联系电话",
        "entry_date": "入园日期",
        "grade": "年级",
    }
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\r\n")
    cols = list(zh)
    w.writerow([zh[c] if chinese else c for c in cols])
    for r in rows:
        w.writerow([r.get(c, "") for c in cols])
    return out.getvalue().encode(encoding)


def _xlsx(path: Path, rows: list[dict[str, str]], sheet: str | None = None) -> Path:
    """A workbook with the rows on ``sheet``, after a sheet of notes (or alone: ``None``)."""
    wb = openpyxl.Workbook()
    ws = wb.active
    if sheet is not None:
        ws.title = "说明"
        ws.append(["请在“名单”表中填写"])
        ws = wb.create_sheet(sheet)
    cols = list(CHILD_COLUMNS)
    ws.append(cols)
    for r in rows:
        ws.append([r.get(c) for c in cols])
    wb.save(path)
    return path


def _outcome(report: Any) -> tuple[int, list[tuple[int, str, str]], dict[str, int]]:
    return (
        report.accepted,
        sorted((r.row, r.field, r.code) for r in report.rejected),
        report.problems,
    )


def test_every_format_imports_alike(tmp_path: Path) -> None:
    rows = [row(i) for i in range(1, 6)] + [row(6, sex="X"), row(7, name="<b>王</b>")]
    outcomes = {}
    for fmt in ("utf-8", "utf-8-sig", "gb18030", "utf-16", "xlsx"):
        store = MemoryStore()
        seed_kindergartens(store)
        if fmt == "xlsx":
            path = _xlsx(tmp_path / "r.xlsx", rows, sheet="名单")
            report = import_children(runtime(store), OPS["kgA"], path, sheet="名单")
            assert report.file is not None
            assert (report.file.format, report.file.sheet) == ("xlsx", "名单")
        else:
            path = tmp_path / f"r-{fmt}.csv"
            path.write_bytes(_roster(rows, fmt))
            report = import_children(runtime(store), OPS["kgA"], path)
            assert report.file is not None
            assert report.file.encoding == fmt
            assert report.to_dict()["file"]["encoding"] == fmt
        outcomes[fmt] = _outcome(report)
        assert counts(store)["records"] == 5
    assert len(set(map(repr, outcomes.values()))) == 1, outcomes
    assert outcomes["gb18030"][1] == [(6, "sex", "sex_invalid"), (7, "name", "name_characters")]


def test_gb18030_and_xlsx_with_checker_processes(tmp_path: Path) -> None:
    """Workers read a GB18030 file themselves; a workbook is read in this process."""
    rows = [row(i) for i in range(1, 41)] + [row(41, name="王\x85明")]  # a C1 control
    gb = tmp_path / "gb.csv"
    gb.write_bytes(_roster(rows, "gb18030"))
    book = _xlsx(tmp_path / "book.xlsx", rows)
    for path in (gb, book):
        store = MemoryStore()
        seed_kindergartens(store)
        report = import_children(runtime(store), OPS["kgA"], path, workers=2, chunk_size=7)
        assert report.accepted == 40
        assert [(r.row, r.code) for r in report.rejected] == [(41, "control_character")]
    store = MemoryStore()
    seed_kindergartens(store)
    reports = import_files(
        runtime(store), [(OPS["kgA"], gb), (OPS["kgB"], book)], workers=2, chunk_size=7
    )
    assert [r.file.format for r in reports if r.file] == ["csv", "xlsx"]


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"", "file_empty"),
        (",".join(CHILD_COLUMNS).encode() + b"\n", "file_no_rows"),
        (bytes(range(256)) * 40, "file_encoding"),
        ("名字,性别\n王,男\n".encode("gbk"), "file_header"),
    ],
)
def test_bad_rosters_and_registries_write_nothing(data: bytes, code: str, tmp_path: Path) -> None:
    store = MemoryStore()
    seed_kindergartens(store)
    rt = runtime(store)
    import_children(rt, OPS["kgA"], [row(1)])
    before = counts(store)
    path = tmp_path / "bad.csv"
    path.write_bytes(data)
    # A roster's header is the wrong header for the other kinds of file; a GBK file
    # naming none of a kind's columns cannot be told from binary for that kind.
    other = {
        "file_no_rows": {"file_header"},
        "file_header": {"file_header", "file_encoding"},
    }.get(code, {code})
    for call, expected in (
        (lambda: import_children(rt, OPS["kgA"], path), {code}),
        (lambda: import_children(rt, OPS["kgA"], path, workers=2), {code}),
        (lambda: import_files(rt, [(OPS["kgA"], path), (OPS["kgB"], path)], workers=2), {code}),
        (lambda: import_kindergartens(rt, OPS["c105"], path), other),
        (lambda: import_attendance(rt, OPS["kgA"], path), other),
        (
            lambda: read_population(path),
            other | {code},
        ),  # a roster has id_number, name, sex, birth_date
        (lambda: CsvPopulationRegistry(path), other),
    ):
        with pytest.raises(FileRejected) as err:
            call()
        assert err.value.code in expected
    assert counts(store) == before


def test_verify_reports_the_registry_rows_it_skipped(tmp_path: Path) -> None:
    store = MemoryStore()
    seed_kindergartens(store)
    rt = runtime(store)
    kid = row(1)
    import_children(rt, OPS["kgA"], [kid])
    extract = tmp_path / "extract.csv"
    lines = [
        "公民身份号码,姓名,性别,出生日期,状态",
        f"{kid['id_number']},{kid['name']},{kid['sex']},{kid['birth_date']},正常",
        "110105202003150038,王,男,2020-13-01,正常",
        "110105202003150046,王,X,2020-03-15,正常",
        "110105202003150054,王,男,2020-03-15,活着",
        ",王,男,2020-03-15,正常",
        "110105202003150062,王",
    ]
    extract.write_bytes(("\n".join(lines) + "\n").encode("gb18030"))
    registry = CsvPopulationRegistry(extract)
    assert registry.file.encoding == "gb18030"
    assert dict(registry.skipped_by) == {
        "date_invalid": 1,
        "sex_invalid": 1,
        "status_invalid": 1,
        "id_missing": 1,
        "row_short": 1,
    }
    report = verify_records(rt, OPS["p11"], registry)
    assert report.results == {"MATCH": 1}
    assert report.registry_skipped == {
        "date_invalid": 1,
        "id_missing": 1,
        "row_short": 1,
        "sex_invalid": 1,
        "status_invalid": 1,
    }
    assert report.to_dict()["registry_skipped"]["row_short"] == 1


def test_population_and_attendance_from_workbooks(tmp_path: Path) -> None:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["身份证号", "姓名", "性别", "出生日期", "户籍所在地"])
    ws.append(["11010520200315002X", "王小明", "男", "2020-03-15", 110105])
    wb.save(tmp_path / "pop.xlsx")
    people, bad = read_population(tmp_path / "pop.xlsx")
    assert bad == []
    assert people[0].hukou_region == "110105"  # a number cell read as text


def test_names_follow_the_policy() -> None:
    store = MemoryStore()
    seed_kindergartens(store, KINDERGARTENS)
    rt = runtime(store)
    good = ["王小明", "阿依古丽·买买提", "John Smith", "Zoë Müller", "欧阳" + cn(7)]
    bad = [
        "=1+1",
        "<script>alert(3)</script>",
        "王小明😀",
        "\u202e王小明",
        "王2",
        "·王",
        "Ａｌｉｃｅ",
    ]
    rows = [row(i + 1, name=n) for i, n in enumerate(good + bad)]
    report = import_children(rt, OPS["kgA"], rows)
    assert report.accepted == len(good)
    assert sorted({r.row for r in report.rejected}) == list(range(len(good) + 1, len(rows) + 1))
    assert {r.code for r in report.rejected} == {"name_characters"}
