"""The registration commands end to end on a temporary SQLite file (click's CliRunner)."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from services._registration_world import bad_checksum, csv_bytes, real_row, row
from studentstatus.cli import main
from studentstatus.domain import numbers as national
from studentstatus.errors import mask_number
from studentstatus.services.csvio import KINDERGARTEN_COLUMNS

KG_ROWS = [
    {
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
    },
    {
        "school_code": "1111000009",
        "uscc": "12100000400000624D",
        "name": "过期园",
        "region_code": "110105",
        "type": "PUBLIC",
        "inclusive": "0",
        "licence_no": "L9",
        "licence_issuer": "区教委",
        "licence_issued": "2010-01-01",
        "licence_valid_until": "2015-12-31",
        "licence_state": "VALID",
    },
]


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {
        "STUDENTSTATUS_STORE": f"sqlite:///{tmp_path / 'cli.db'}",
        "STUDENTSTATUS_NOW": "2025-09-02T09:00:00+08:00",
    }


def _run(env: dict[str, str], *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)
    return result.exit_code, result.output


def _json(env: dict[str, str], *args: str) -> tuple[int, object]:
    code, out = _run(env, *args, "--json")
    return code, json.loads(out)


def test_the_whole_registration_flow(env: dict[str, str], tmp_path: Path) -> None:
    kg_file = tmp_path / "kg.csv"
    kg_file.write_bytes(csv_bytes(KG_ROWS, header=KINDERGARTEN_COLUMNS, bom=True))
    code, doc = _json(env, "kindergarten", "import", str(kg_file), "--as", "county:110105")
    assert code == 0
    assert doc["accepted"] == 2  # type: ignore[index]

    good = row(1)
    rows = [
        good,
        real_row("11010520200315002X"),
        row(3, id_type="none", id_number=""),
        dict(row(4), id_number=bad_checksum(row(4)["id_number"])),
        row(5, sex="X", name="=cmd|' /C calc'!A0"),
        row(6, kindergarten_code="1111000009"),
        dict(good, name="同号"),
    ]
    kids = tmp_path / "kids.csv"
    kids.write_bytes(csv_bytes(rows))
    code, doc = _json(env, "import", str(kids), "--as", "kindergarten:1111000001")
    assert code == 1  # some rows were rejected
    assert doc["accepted"] == 5  # type: ignore[index]
    rejected = {(r["row"], r["code"]) for r in doc["rejected"]}  # type: ignore[index]
    assert rejected == {
        (5, "sex_invalid"),
        (5, "name_characters"),
        (6, "kindergarten_unlicensed"),
        (6, "out_of_scope"),
    }
    for r in doc["rejected"]:  # type: ignore[index]
        assert set(r) == {"row", "field", "code", "message_zh", "message_en"}
    assert doc["problems"] == {"DUPLICATE_ID": 2, "INVALID_ID": 1}  # type: ignore[index]
    records = doc["records"]  # type: ignore[index]
    assert [r["state"] for r in records] == ["PENDING"] * 5
    assert all(re.fullmatch(r"L\*{14}\d{4}", r["temp_number"]) for r in records)  # masked
    rid = {r["row"]: r["record_id"] for r in records}

    roster = tmp_path / "roster.csv"
    roster.write_bytes(csv_bytes([rows[5], row(8)]))
    code, out = _run(env, "import", str(roster), "--as", "county:110105", "--unlicensed-roster")
    assert code == 0
    assert "accepted 1 rows" in out
    assert "rostered 1" in out

    code, doc = _json(env, "approve", "--all", "--as", "county:110105")
    assert code == 0
    assert len(doc["approved"]) == 6  # type: ignore[index]
    code, out = _run(env, "approve", "--all", "--as", "kindergarten:1111000001")
    assert code == 1
    assert "role_not_allowed" in out

    registry = tmp_path / "registry.csv"
    with registry.open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["id_number", "name", "sex", "birth_date", "status"])
        w.writerow([good["id_number"], good["name"], good["sex"], good["birth_date"], "normal"])
        w.writerow(["11010520200315002X", "孩子1", "F", "2020-03-15", "normal"])
    code, doc = _json(env, "verify", "--registry", str(registry), "--as", "province:11")
    assert code == 0
    assert doc["checked"] == 4  # type: ignore[index]

    code, problems = _json(env, "problems", "--as", "county:110105")
    assert code == 0
    assert isinstance(problems, list)
    for p in problems:
        assert {"kind", "record_id", "kindergarten_code", "due_date", "status"} <= set(p)
    code, overdue = _json(env, "problems", "--as", "county:110105", "--overdue")
    assert overdue == []
    export = tmp_path / "problems.csv"
    code, _ = _run(env, "problems", "--as", "county:110105", "--csv", str(export))
    assert code == 0
    lines = export.read_text(encoding="utf-8-sig").splitlines()
    assert lines[0].startswith("id,kind,record_id")
    assert len(lines) == len(problems) + 1

    code, doc = _json(env, "issue-numbers", "--as", "province:11")
    assert code == 0
    issued = doc["issued"]  # type: ignore[index]
    assert issued
    for item in issued:
        assert set(item) == {"record_id", "national_number", "kind"}
        assert item["national_number"] == mask_number(item["national_number"])  # masked
        assert item["national_number"][0] == item["kind"]
    code, again = _json(env, "issue-numbers", "--as", "province:11")
    assert again["issued"] == []  # type: ignore[index]
    code, out = _run(env, "issue-numbers", "--as", "county:110105")
    assert code == 1

    # show by the former L number (revealed, audited): masked by default
    code, full = _json(env, "show", rid[3], "--as", "county:110105", "--reveal")
    key = full["former_numbers"][0]  # type: ignore[index]
    assert national.is_valid(key)
    assert key.startswith("L")
    code, shown = _json(env, "show", key, "--as", "county:110105")
    assert code == 0
    assert shown["state"] == "ACTIVE"  # type: ignore[index]
    assert shown["former_numbers"] == [mask_number(key)]  # type: ignore[index]
    assert {"national_number", "grade", "kindergarten_code", "history"} <= set(shown)  # type: ignore[arg-type]
    code, shown = _json(env, "show", rid[2], "--as", "county:110105")
    assert shown["child"]["document_number"] == "11****************"  # type: ignore[index]
    code, shown = _json(env, "show", rid[2], "--as", "county:110105", "--reveal")
    assert shown["child"]["document_number"] == "11010520200315002X"  # type: ignore[index]
    code, out = _run(env, "show", rid[2], "--as", "county:110108")
    assert code == 1
    assert "not_found" in out  # out of scope: answered as if absent
    assert "11010520200315002X" not in out


def test_resolve_problem_command(env: dict[str, str], tmp_path: Path) -> None:
    kg_file = tmp_path / "kg.csv"
    kg_file.write_bytes(csv_bytes(KG_ROWS[:1], header=KINDERGARTEN_COLUMNS))
    _run(env, "kindergarten", "import", str(kg_file), "--as", "county:110105")
    good = row(1)
    kids = tmp_path / "kids.csv"
    kids.write_bytes(csv_bytes([good, dict(good, name="二号")]))
    _run(env, "import", str(kids), "--as", "kindergarten:1111000001")
    _, problems = _json(env, "problems", "--as", "county:110105")
    assert isinstance(problems, list)
    first, second = problems
    code, out = _run(
        env,
        "resolve-problem",
        first["id"],
        "--action",
        "arbitrate",
        "--as",
        "county:110105",
        "--reason",
        "仲裁",
        "--winner",
        first["record_id"],
    )
    assert code == 0, out
    assert second["record_id"] in out
    code, out = _run(
        env,
        "resolve-problem",
        second["id"],
        "--action",
        "evidence",
        "--as",
        "kindergarten:1111000001",
        "--reason",
        "x",
    )
    assert code == 1
    assert "problem_closed" in out or "evidence_required" in out
    _, left = _json(env, "problems", "--as", "county:110105")
    assert left == []


def test_bad_operator_and_missing_arguments(env: dict[str, str], tmp_path: Path) -> None:
    code, out = _run(env, "approve", "--all", "--as", "county:11")
    assert code == 2
    code, out = _run(env, "approve", "--as", "county:110105")
    assert code == 2
    kids = tmp_path / "kids.csv"
    kids.write_bytes(b"\xff\xfe garbage")
    code, out = _run(env, "import", str(kids), "--as", "province:11")
    assert code == 1
    assert "role_not_allowed" in out
