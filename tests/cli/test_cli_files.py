"""The CLI and the files an office has: refusals printed once (exit 1, nothing written),
GB18030 and .xlsx read, the encoding said, verify's skipped registry rows, .xlsx exports."""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from services._registration_world import csv_bytes, row
from studentstatus.cli import main
from studentstatus.tabular import KINDERGARTEN_COLUMNS

openpyxl = pytest.importorskip("openpyxl")

KG = {
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


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {
        "STUDENTSTATUS_STORE": f"sqlite:///{tmp_path / 'cli.db'}",
        "STUDENTSTATUS_NOW": "2025-09-02T09:00:00+08:00",
    }


def _run(env: dict[str, str], *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def _seed(env: dict[str, str], tmp_path: Path) -> None:
    book = tmp_path / "registry.xlsx"
    wb = openpyxl.Workbook()
    wb.active.title = "说明"
    ws = wb.create_sheet("幼儿园")
    ws.append(list(KINDERGARTEN_COLUMNS))
    ws.append([KG[c] for c in KINDERGARTEN_COLUMNS])
    wb.save(book)
    code, out, err = _run(
        env, "kindergarten", "import", str(book), "--sheet", "幼儿园", "--as", "county:110105"
    )
    assert code == 0, out + err
    assert "accepted 1 rows" in out
    assert "Excel workbook, sheet 幼儿园" in err


def _records(env: dict[str, str]) -> int:
    code, out, _ = _run(env, "problems", "--as", "county:110105", "--all", "--json")
    assert code == 0
    return len(json.loads(out))


def test_bad_files_are_refused_once_and_write_nothing(env: dict[str, str], tmp_path: Path) -> None:
    _seed(env, tmp_path)
    kids = tmp_path / "kids.csv"
    kids.write_bytes(csv_bytes([row(1), row(2)]))
    code, out, err = _run(env, "import", str(kids), "--as", "kindergarten:1111000001")
    assert code == 0
    assert "CSV (UTF-8)" in err
    problems_before = _records(env)

    binary = next(p for p in ("/bin/ls", "/usr/bin/env") if os.path.exists(p))
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    header_only = tmp_path / "header.csv"
    header_only.write_bytes(b"id_number,name,sex,birth_date,status\n")
    renamed = tmp_path / "renamed.csv"
    renamed.write_bytes("证件,名字,性别,生日,状态\n110105,王,男,2020-01-01,正常\n".encode("gbk"))
    cases = [
        (empty, "file_empty"),
        (Path(binary), "file_encoding"),
        (header_only, "file_no_rows"),
        (renamed, "file_header"),
    ]
    for path, code_ in cases:
        # verify --registry: refused before any record is checked, no NOT_FOUND problems
        code, out, err = _run(env, "verify", "--registry", str(path), "--as", "province:11")
        assert code == 1, (path, out, err)
        assert err.count("error: ") == 1, err
        assert code_ in err
        assert "checked" not in out
        code, out, err = _run(
            env, "verify", "--registry", str(path), "--as", "province:11", "--json"
        )
        assert code == 1
        assert json.loads(out)["error"]["code"] == code_
        # resolve-problem --registry reads the same extract: refused before anything is done
        code, out, err = _run(
            env, "resolve-problem", "p0", "--action", "evidence", "--reason", "r",
            "--registry", str(path), "--as", "county:110105",
        )  # fmt: skip
        assert code == 1, (path, out, err)
        assert code_ in err
    assert _records(env) == problems_before

    for path, code_ in [(empty, "file_empty"), (Path(binary), "file_encoding")]:
        for args in (
            ("import", str(path), "--as", "kindergarten:1111000001"),
            ("import", str(path), "--as", "kindergarten:1111000001", "--workers", "2"),
            ("kindergarten", "import", str(path), "--as", "county:110105"),
            ("attendance", "import", str(path), "--as", "kindergarten:1111000001"),
        ):
            code, out, err = _run(env, *args)
            assert code == 1, (args, out, err)
            assert len(err.strip().splitlines()) == 1, err  # one line, not one per row
            assert code_ in err
    header_roster = tmp_path / "roster-header.csv"
    header_roster.write_bytes(csv_bytes([]))
    code, out, err = _run(env, "import", str(header_roster), "--as", "kindergarten:1111000001")
    assert code == 1
    assert "file_no_rows" in err
    assert "accepted" not in out


def test_gb18030_roster_and_skipped_registry_rows(env: dict[str, str], tmp_path: Path) -> None:
    _seed(env, tmp_path)
    kid = row(1)
    zh = (
        "幼儿园标识码,幼儿姓名,性别,出生日期,证件类型,身份证件号码,"
        "监护人姓名,与幼儿关系,监护人联系电话,入园日期,年级"
    )
    cols = [
        "kindergarten_code", "name", "sex", "birth_date", "id_type", "id_number",
        "guardian_name", "guardian_relation", "guardian_phone", "entry_date", "grade",
    ]  # fmt: skip
    text = zh + "\r\n" + ",".join(kid[c] for c in cols) + "\r\n"
    roster = tmp_path / "gb.csv"
    roster.write_bytes(text.encode("gb18030"))
    code, out, err = _run(env, "import", str(roster), "--as", "kindergarten:1111000001")
    assert code == 0, out + err
    assert "accepted 1 rows" in out
    assert "CSV (GB18030)" in err

    extract = tmp_path / "extract.csv"
    extract.write_text(
        "身份证号,姓名,性别,出生日期,状态\n"
        f"{kid['id_number']},{kid['name']},{kid['sex']},{kid['birth_date']},正常\n"
        "110105202003150038,王,男,2020-13-01,正常\nbad,row\n",
        encoding="utf-16",
    )
    code, out, err = _run(env, "verify", "--registry", str(extract), "--as", "province:11")
    assert code == 0, out + err
    assert "MATCH 1" in out
    assert "registry rows skipped: 2 (date_invalid 1, row_short 1)" in out
    assert "CSV (UTF-16)" in err
    code, out, _ = _run(env, "verify", "--registry", str(extract), "--as", "province:11", "--json")
    assert json.loads(out)["registry_skipped"] == {"date_invalid": 1, "row_short": 1}


def test_problems_export_as_xlsx_has_no_formula(env: dict[str, str], tmp_path: Path) -> None:
    _seed(env, tmp_path)
    kids = tmp_path / "kids.csv"
    twin = row(1)
    kids.write_bytes(csv_bytes([twin, dict(twin, name="同号")]))  # a DUPLICATE_ID problem each
    code, out, err = _run(env, "import", str(kids), "--as", "kindergarten:1111000001")
    assert code == 0, out + err
    export = tmp_path / "problems.xlsx"
    code, out, err = _run(env, "problems", "--as", "county:110105", "--csv", str(export))
    assert code == 0, out + err
    assert "wrote 2 problems" in err
    wb = openpyxl.load_workbook(export)
    ws = wb.active
    header = [c.value for c in ws[1]]
    assert header[:3] == ["id", "kind", "record_id"]
    assert ws.max_row == 3
    assert all(c.data_type != "f" for r in ws.iter_rows() for c in r)
    with zipfile.ZipFile(export) as z:
        assert all(b"<f>" not in z.read(n) for n in z.namelist() if n.startswith("xl/worksheets"))


def test_handover_export_as_xlsx(tmp_path: Path) -> None:
    """``export --format xlsx``: one row per graduate, a history sheet, numbers masked."""
    from datetime import UTC, datetime

    from services._changes_world import KG_A, KG_C, OPS, runtime, seed
    from studentstatus.adapters.sql import SqlStore
    from studentstatus.domain.enums import Grade
    from studentstatus.services.rollover import apply_rollover

    url = f"sqlite:///{tmp_path / 'h.db'}"
    store = SqlStore(url, create=True)
    try:
        rt = runtime(store)
        seed(rt, [(KG_A, Grade.SENIOR), (KG_A, Grade.JUNIOR), (KG_C, Grade.SENIOR)])
        rt.clock.at = datetime(2026, 9, 1, 8, tzinfo=UTC)  # type: ignore[attr-defined]
        apply_rollover(rt, OPS["ministry"], 2026)
    finally:
        store.close()
    base = ["export", "--graduated", "--school-year", "2026", "--as", "province:11"]
    out = tmp_path / "grads.xlsx"
    code, _, err = _run({"STUDENTSTATUS_STORE": url}, *base, "--format", "xlsx")
    assert code == 2  # --out is needed
    code, _, err = _run({"STUDENTSTATUS_STORE": url}, *base, "--format", "xlsx", "--out", str(out))
    assert code == 0, err
    assert "wrote 2 graduates" in err
    wb = openpyxl.load_workbook(out)
    graduates, history = wb["毕业生 graduates"], wb["变动 history"]
    header = [c.value for c in graduates[1]]
    assert header[:5] == ["record_id", "national_number", "number_kind", "former_numbers", "name"]
    assert graduates.max_row == 3
    numbers = [graduates.cell(row=r, column=9).value for r in (2, 3)]  # document_number
    assert all("*" in n for n in numbers)  # masked unless --reveal
    assert history.max_row > 3  # several changes per graduate
    assert all(c.data_type != "f" for ws in (graduates, history) for r in ws.iter_rows() for c in r)


def test_report_tables_as_xlsx(tmp_path: Path) -> None:
    """``report --xlsx``: one sheet per table of the text report, the same numbers."""
    import random

    from services._monitoring_world import make_world, seed
    from studentstatus.adapters.sql import SqlStore

    url = f"sqlite:///{tmp_path}/m.db"
    store = SqlStore(url, create=True)
    try:
        seed(store, make_world(random.Random(4), 40, days=0))
    finally:
        store.close()
    book = tmp_path / "report.xlsx"
    args = ["report", "--region", "11", "--school-year", "2026", "--as", "province:11"]
    code, text, err = _run({"STUDENTSTATUS_STORE": url}, *args, "--xlsx", str(book))
    assert code == 0, err
    assert f"wrote {book}" in err
    wb = openpyxl.load_workbook(book)
    assert wb.sheetnames[0] == "主要指标 key figures"
    assert "分县 by county" in wb.sheetnames
    figures = {
        r[0]: r[1] for r in wb["主要指标 key figures"].iter_rows(min_row=2, values_only=True)
    }
    total = figures["在园幼儿 children on roll"]
    assert isinstance(total, int)
    assert total > 0
    assert "在园幼儿 children on roll" in text
    counties = list(wb["分县 by county"].iter_rows(min_row=2, values_only=True))
    assert sum(n for _, n in counties) == total  # type: ignore[misc]


def _book(path: Path, sheet: str, header: list[str], rows: list[list[str]]) -> Path:
    wb = openpyxl.Workbook()
    wb.active.title = "说明"
    ws = wb.create_sheet(sheet)
    ws.append(header)
    for r in rows:
        ws.append(r)
    wb.save(path)
    return path


@pytest.mark.parametrize(
    "command",
    [
        ("attendance", "import", "{book}", "--as", "kindergarten:1111000001"),
        ("dropout", "--county", "110105", "--population", "{book}", "--as", "county:110105"),
        (
            "resolve-problem",
            "p-none",
            "--action",
            "accept",
            "--registry",
            "{book}",
            "--reason",
            "x",
            "--as",
            "county:110105",
        ),
    ],
)
def test_every_file_option_reads_a_named_sheet(
    env: dict[str, str], tmp_path: Path, command: tuple[str, ...]
) -> None:
    """--sheet on attendance import, dropout --population and resolve-problem --registry: a
    missing sheet is one file-level refusal; the named one is read (first: not the notes)."""
    _seed(env, tmp_path)
    header = ["id_number", "name", "sex", "birth_date", "hukou_region", "status"]
    if command[0] == "attendance":
        header = ["record_id", "date", "status", "reason"]
    book = _book(tmp_path / "data.xlsx", "数据", header, [])
    args = [a.format(book=book) for a in command]
    code, out, err = _run(env, *args, "--sheet", "没有这页")
    assert code == 1
    assert "file_sheet" in out + err
    code, out, err = _run(env, *args, "--sheet", "数据")
    assert "file_sheet" not in out + err
    assert "file_no_rows" in out + err  # the named sheet was read: a header and no row
