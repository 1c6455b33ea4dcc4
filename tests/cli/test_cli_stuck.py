"""`studentstatus stuck` and the next steps of `issue-numbers`, end to end on SQLite."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from services._registration_world import csv_bytes, row
from studentstatus.cli import main
from studentstatus.services.csvio import KINDERGARTEN_COLUMNS

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


def _run(env: dict[str, str], *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)
    return result.exit_code, result.output


def _json(env: dict[str, str], *args: str) -> dict[str, object]:
    code, out = _run(env, *args, "--json")
    assert code == 0, out
    doc = json.loads(out)
    assert isinstance(doc, dict)
    return doc


def test_a_not_found_child_is_listed_until_its_evidence_is_accepted(
    env: dict[str, str], tmp_path: Path
) -> None:
    kg_file = tmp_path / "kg.csv"
    kg_file.write_bytes(csv_bytes([KG], header=KINDERGARTEN_COLUMNS))
    _run(env, "kindergarten", "import", str(kg_file), "--as", "county:110105")
    child = row(1, name="王小明")
    kids = tmp_path / "kids.csv"
    kids.write_bytes(csv_bytes([child]))
    _run(env, "import", str(kids), "--as", "kindergarten:1111000001")

    code, out = _run(env, "stuck", "--as", "county:110105")
    assert code == 0
    assert "pending_approval 1" in out
    assert "县级教育行政部门核准" in out
    assert "deadline 2026-07-31 (not passed" in out

    _run(env, "approve", "--all", "--as", "county:110105")
    registry = tmp_path / "registry.csv"  # the registry does not know the number
    other = row(3, name="李小红")
    with registry.open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["id_number", "name", "sex", "birth_date", "status"])
        w.writerow([other["id_number"], other["name"], "M", other["birth_date"], "normal"])
    code, out = _run(env, "verify", "--registry", str(registry), "--as", "province:11")
    assert code == 0, out

    code, out = _run(env, "issue-numbers", "--as", "province:11")
    assert code == 0
    assert "open_problem 1: 问题学籍待处理 / open problem — next (kindergarten)" in out
    doc = _json(env, "issue-numbers", "--as", "province:11")
    steps = doc["next_steps"]
    assert isinstance(steps, dict)
    assert steps["open_problem"]["who"] == "kindergarten"
    assert set(steps["open_problem"]) >= {"label_zh", "label_en", "step_zh", "step_en"}

    doc = _json(env, "stuck", "--as", "county:110105")
    assert doc["counts"] == {"open_problem": 1}
    group = doc["groups"]["open_problem"]  # type: ignore[index]
    (item,) = group["records"]
    assert item["problems"][0]["kind"] == "NOT_FOUND"
    assert item["deadline"] == "2026-07-31"
    assert item["overdue"] is False
    assert child["id_number"] not in json.dumps(doc)

    pid = item["problems"][0]["id"]
    _run(env, "resolve-problem", pid, "--action", "evidence", "--reason", "户口簿",
         "--evidence", "scan:1", "--as", "kindergarten:1111000001")  # fmt: skip
    assert _json(env, "stuck", "--as", "county:110105")["counts"] == {"evidence_submitted": 1}
    _run(env, "resolve-problem", pid, "--action", "accept", "--reason", "核实无误",
         "--as", "county:110105")  # fmt: skip
    assert _json(env, "stuck", "--as", "county:110105")["counts"] == {"ready": 1}
    doc = _json(env, "issue-numbers", "--as", "province:11")
    assert [i["kind"] for i in doc["issued"]] == ["G"]  # type: ignore[union-attr]
    assert _json(env, "stuck", "--as", "county:110105")["counts"] == {}

    late = dict(env, STUDENTSTATUS_NOW="2026-08-03T09:00:00+08:00")
    code, out = _run(late, "stuck", "--as", "county:110105")
    assert "0 record(s) without a national number" in out
    assert "(passed on 2026-08-03)" in out
