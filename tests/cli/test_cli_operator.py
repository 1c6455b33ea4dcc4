"""CLI an operator can live in: kindergartens list|show, request show, requests --mine,
case list|show|close, refusals that say whose step it is, numbers in the text output,
dates in every form the files take, rollover totals, exit codes (0 ok, 1 refused, 2 usage).

On a temporary SQLite file seeded with the change tests' world.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cli import _changes_cli  # type: ignore[import-not-found]
from services._changes_world import KG_B, OPS, runtime  # type: ignore[import-not-found]
from studentstatus.adapters.sql import SqlStore

db = _changes_cli.db  # the fixture
run = _changes_cli.run


def _transfer() -> str:
    code, out = run(
        "change", "TRANSFER", "r0000", "--as", "kindergarten:1111000001",
        "--to", KG_B.school_code, "--reason", "搬家", "--json",
    )  # fmt: skip
    assert code == 0, out
    req: str = json.loads(out)["request"]
    return req


def test_kindergartens_list_and_show(db: str) -> None:
    code, out = run("kindergartens", "list", "--as", "county:110105")
    assert code == 0, out
    lines = out.splitlines()
    assert lines[0].split()[:2] == ["SCHOOL", "CODE"]
    assert any("1111000001" in line and "阳光幼儿园" in line and "朝阳区" in line for line in lines)
    assert not any("4444000001" in line for line in lines)  # another province's
    code, out = run("kindergartens", "list", "--as", "kindergarten:1111000002", "--json")
    assert [k["school_code"] for k in json.loads(out)] == ["1111000002"]
    code, out = run("kindergartens", "show", "1111000001", "--as", "county:110105", "--json")
    assert code == 0
    doc = json.loads(out)
    assert doc["name"] == "阳光幼儿园"
    assert doc["region_name"] == "朝阳区"
    assert doc["licences"][0]["state"] == "VALID"
    code, out = run("kindergartens", "show", "4444000001", "--as", "county:110105")
    assert code == 1
    assert "not_found" in out  # out of scope: as if absent


def test_requests_mine_and_request_show(db: str) -> None:
    req = _transfer()
    code, out = run("requests", "--as", "kindergarten:1111000001")
    assert code == 0
    assert req not in out  # not the applicant's turn: its queue is empty
    code, out = run("requests", "--mine", "--as", "kindergarten:1111000001")
    assert code == 0, out
    assert f"request {req}  TRANSFER  OPEN" in out
    assert "step 1 of 3  kindergarten:1111000002  PENDING" in out
    assert "<- acts next" in out.splitlines()[2]
    assert "L**************0000" in out  # the record's number, masked
    assert "L110105202110030000" not in out
    code, out = run("requests", "--mine", "--as", "kindergarten:1111000001", "--json")
    views = json.loads(out)
    assert [v["id"] for v in views] == [req]
    assert [s["decision"] for s in views[0]["steps"]] == ["PENDING"] * 3
    assert views[0]["number"] == "L**************0000"  # masked in JSON too
    code, out = run("requests", "--mine", "--as", "kindergarten:1111000002")
    assert out.strip() == "no requests"
    code, out = run("request", "show", req, "--as", "county:110105")
    assert code == 0
    assert "step 3 of 3  county:110105  PENDING" in out
    code, out = run("request", "show", req, "--as", "county:110108")
    assert code == 1
    assert "not_found" in out  # outside the jurisdiction: absent
    code, out = run("approve-request", req, "--as", "kindergarten:1111000002")
    assert code == 0
    code, out = run("requests", "--mine", "--as", "kindergarten:1111000001")
    assert "step 1 of 3  kindergarten:1111000002  APPROVED  by kindergarten:1111000002" in out
    assert "step 2 of 3  kindergarten:1111000001  PENDING" in out
    code, out = run("requests", "--mine", "--overdue", "--as", "kindergarten:1111000001")
    assert code == 2


def test_out_of_turn_refusal_says_whose_step_it_is(db: str) -> None:
    req = _transfer()
    code, out = run("approve-request", req, "--as", "county:110105")
    assert code == 1
    assert out.count("error:") == 1
    assert "step 1 of 3" in out
    assert "destination kindergarten's (kindergarten:1111000002)" in out
    assert "county:110105 acts at step 3" in out
    assert "转入幼儿园" in out
    assert "在第 3 步审核" in out
    assert "refused: operator=" not in out  # the library's log line is not printed again
    code, out = run("withdraw-request", req, "--as", "county:110105")
    assert code == 1
    assert "only the applicant (kindergarten:1111000001) may withdraw" in out
    assert "只有申请方（kindergarten:1111000001）可以撤回申请" in out


def test_case_list_show_close(db: str) -> None:
    from studentstatus.services.dropout import open_case

    store = SqlStore(db)
    case = open_case(runtime(store), OPS["c105"], "r0001", detail="连续缺勤")
    store.close()
    code, out = run("case", "list", "--as", "county:110105")
    assert code == 0, out
    assert case.id in out
    assert "SUSPECTED" in out
    code, out = run("case", "list", "--as", "county:110108")
    assert out.strip() == "no cases"
    code, out = run("case", "list", "--as", "kindergarten:1111000001")
    assert code == 1  # county and above
    code, out = run("case", "contact", case.id, "--note", "电话家长", "--as", "county:110105")
    assert code == 0
    code, out = run("case", "show", case.id, "--as", "county:110105")
    assert code == 0
    assert "连续缺勤" in out
    assert "电话家长" in out
    code, out = run("case", "show", case.id, "--as", "county:110108")
    assert code == 1
    assert "not_found" in out
    code, out = run("case", "close", case.id, "--as", "county:110105")
    assert code == 2  # --reason is required
    code, out = run("case", "close", case.id, "--reason", " ", "--as", "county:110105")
    assert code == 1
    assert "reason_required" in out
    code, out = run(
        "case", "close", case.id, "--reason", "已返园", "--as", "county:110105", "--json"
    )
    assert code == 0, out
    doc = json.loads(out)
    assert doc["status"] == "RETURNED"
    assert doc["resolution"] == "已返园"
    code, out = run("case", "close", case.id, "--reason", "again", "--as", "county:110105")
    assert code == 1
    assert "case_closed" in out
    code, out = run("case", "list", "--as", "county:110105")
    assert case.id not in out
    code, out = run("case", "list", "--all", "--as", "county:110105")
    assert case.id in out
    assert "RETURNED" in out
    code, out = run("audit", "verify", "--no-replay", "--json")
    assert json.loads(out)["ok"] is True


@pytest.mark.parametrize("day", ["2025-09-02", "2025/09/02", "2025/9/2", "20250902"])
def test_dates_in_every_form_the_files_take(db: str, day: str) -> None:
    code, out = run(
        "roll", "--kindergarten", "1111000001", "--as-of", day, "--as", "county:110105", "--json"
    )
    assert code == 0, out
    assert json.loads(out)["as_of"] == "2025-09-02"


@pytest.mark.parametrize("day", ["2025-02-30", "02/09/2025", "yesterday"])
def test_a_bad_date_is_a_usage_error(db: str, day: str) -> None:
    code, out = run("roll", "--kindergarten", "1111000001", "--as-of", day, "--as", "county:110105")
    assert code == 2
    assert "YYYY-MM-DD, YYYY/MM/DD or YYYYMMDD" in out


def test_exit_codes(db: str) -> None:
    code, out = run("change", "FOO", "r0000", "--as", "county:110105")
    assert code == 2  # usage: an unknown change kind
    assert "TRANSFER" in out  # the kinds are listed
    code, out = run("change", "转园", "r0000", "--as", "kindergarten:1111000001", "--dry-run")
    assert code in (0, 1)  # Chinese names are kinds too
    assert "Usage" not in out
    code, out = run("change", "GO_ABROAD", "r9999", "--as", "county:110105")
    assert code == 1  # refused: no such record
    code, out = run("records", "--as", "county:110105")
    assert code == 0


def test_rollover_dry_run_prints_totals_and_items_on_request(db: str) -> None:
    args = ("rollover", "--school-year", "2025", "--dry-run", "--as", "county:110105")
    code, out = run(*args)
    assert code == 0, out
    lines = [line for line in out.splitlines() if line.strip()]
    assert lines[0].startswith("plan: records 4")
    assert len(lines) <= 2
    code, out = run(*args, "--items")
    assert code == 0
    assert sum(1 for line in out.splitlines() if line.startswith("r000")) == 4


def test_show_prints_the_numbers_masked(db: str) -> None:
    code, out = run("show", "r0000", "--as", "county:110105")
    assert code == 0
    assert "temporary number L**************0000" in out
    assert "L110105202110030000" not in out


def test_import_and_issue_numbers_text_show_the_numbers_masked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import csv
    import re

    from cli.test_cli_registration import KG_ROWS  # type: ignore[import-not-found]
    from services._registration_world import csv_bytes, row  # type: ignore[import-not-found]
    from studentstatus.services.csvio import KINDERGARTEN_COLUMNS

    monkeypatch.setenv("STUDENTSTATUS_STORE", f"sqlite:///{tmp_path / 'reg.db'}")
    monkeypatch.setenv("STUDENTSTATUS_NOW", "2025-09-02T09:00:00+08:00")
    kg_file = tmp_path / "kg.csv"
    kg_file.write_bytes(csv_bytes(KG_ROWS, header=KINDERGARTEN_COLUMNS, bom=True))
    assert run("kindergarten", "import", str(kg_file), "--as", "county:110105")[0] == 0
    kids = tmp_path / "kids.csv"
    rows = [row(i) for i in range(1, 4)]
    kids.write_bytes(csv_bytes(rows))
    code, out = run("import", str(kids), "--as", "kindergarten:1111000001")
    assert code == 0, out
    written = [line for line in out.splitlines() if line.startswith("  row ")]
    assert len(written) == 3
    assert all(re.search(r" L\*{14}\d{4} PENDING$", line) for line in written), written
    assert run("approve", "--all", "--as", "county:110105")[0] == 0
    registry = tmp_path / "registry.csv"
    with registry.open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["id_number", "name", "sex", "birth_date", "status"])
        for r in rows:
            w.writerow([r["id_number"], r["name"], r["sex"], r["birth_date"], "normal"])
    assert run("verify", "--registry", str(registry), "--as", "province:11")[0] == 0
    code, out = run("issue-numbers", "--as", "province:11")
    assert code == 0, out
    assert out.startswith("issued 3")
    issued = [line for line in out.splitlines() if re.fullmatch(r"  r\w+ G\d{2}\*{16}", line)]
    assert len(issued) == 3, out
    for r in rows:
        assert r["id_number"] not in out


@pytest.mark.parametrize("day", ["2026-09-01", "2026/9/1", "20260901"])
def test_check_id_takes_every_date_form(day: str) -> None:
    code, out = run("check-id", "11010520200315002X", "--today", day, "--json")
    assert code == 0, out
    assert json.loads(out)[0]["valid"] is True
