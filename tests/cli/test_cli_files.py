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
