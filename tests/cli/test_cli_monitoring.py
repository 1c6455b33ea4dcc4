"""CLI: attendance import, dropout, case contact, flows and report on a temporary SQLite file."""

from __future__ import annotations

import json
import random
from datetime import date
from pathlib import Path

import pytest
from click.testing import CliRunner

from services._monitoring_world import make_world, seed  # tests/ is on sys.path (rootdir)
from studentstatus.adapters.sql import SqlStore
from studentstatus.cli import main
from studentstatus.domain.calendar import school_days

NOW = "2026-10-30T10:00:00+00:00"


@pytest.fixture
def db(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path}/cli.db"
    store = SqlStore(url, create=True)
    world = make_world(random.Random(4), 80, days=0)
    seed(store, world)
    store.close()
    return url


def run(args: list[str], url: str, **kw):  # type: ignore[no-untyped-def]
    runner = CliRunner()
    return runner.invoke(main, [*args, "--store", url], env={"STUDENTSTATUS_NOW": NOW}, **kw)


def _active_record(url: str, kg: str) -> str:
    store = SqlStore(url)
    with store.unit_of_work() as uow:
        rec = next(r for r in uow.records.iter(kindergarten_code=kg) if r.state.value == "ACTIVE")
    store.close()
    return rec.id


def test_attendance_import_opens_a_case_then_dropout_and_case_contact(
    db: str, tmp_path: Path
) -> None:
    rid = _active_record(db, "1111000001")
    days = school_days(date(2026, 10, 1), date(2026, 10, 30))[-10:]
    csv = tmp_path / "att.csv"
    csv.write_text(
        "record_id,date,status,reason\n" + "".join(f"{rid},{d},absent,sick\n" for d in days),
        encoding="utf-8",
    )
    res = run(["attendance", "import", str(csv), "--as", "kindergarten:1111000001", "--json"], db)
    assert res.exit_code == 0, res.output
    doc = json.loads(res.output)
    assert doc["ok"] is True
    assert doc["written"] == 10
    assert len(doc["opened_cases"]) == 1
    case_id = doc["opened_cases"][0]

    res = run(["dropout", "--county", "110105", "--as", "county:110105", "--json"], db)
    assert res.exit_code == 0, res.output
    led = json.loads(res.output)
    assert [c["id"] for c in led["suspected"]] == [case_id]
    assert led["counts"]["suspected"] == 1

    res = run(["case", "contact", case_id, "--as", "county:110105", "--note", "家访劝返"], db)
    assert res.exit_code == 0, res.output
    assert "1 contact" in res.output
    res = run(["case", "contact", case_id, "--as", "county:110105", "--note", "再访", "--json"], db)
    assert [c["note"] for c in json.loads(res.output)["contacts"]] == ["家访劝返", "再访"]

    res = run(["dropout", "--county", "110105", "--as", "county:110105"], db)
    assert res.exit_code == 0
    assert "suspected dropouts 疑似辍学: 1" in res.output


def test_bad_attendance_file_exits_1_with_every_row(db: str, tmp_path: Path) -> None:
    csv = tmp_path / "bad.csv"
    csv.write_text("record_id,date,status\nnope,2026-10-29,absent\nx,2026-10-24,present\n")
    res = run(["attendance", "import", str(csv), "--as", "kindergarten:1111000001", "--json"], db)
    assert res.exit_code == 1
    errors = json.loads(res.stdout)["errors"]
    assert [(e["row"], e["code"]) for e in errors] == [
        (1, "record_not_found"),
        (2, "record_not_found"),
        (2, "not_school_day"),
    ]


def test_refusals_exit_1_with_the_reason(db: str) -> None:
    res = run(["dropout", "--county", "110105", "--as", "county:440305", "--json"], db)
    assert res.exit_code == 1
    assert json.loads(res.stdout)["error"]["code"] == "out_of_scope"
    res = run(["report", "--region", "11", "--school-year", "2026", "--as", "county:110105"], db)
    assert res.exit_code == 1
    assert "out_of_scope" in res.output
    res = run(["case", "contact", "x", "--as", "kindergarten:1111000001", "--note", "n"], db)
    assert res.exit_code == 1
    assert "role_not_allowed" in res.output
    res = run(["dropout", "--county", "110105", "--as", "bogus"], db)
    assert res.exit_code == 2


def test_report_json_population_and_out_dir(db: str, tmp_path: Path) -> None:
    pop = tmp_path / "pop.csv"
    born = date(2022, 5, 1)
    pop.write_text(
        "id_number,name,sex,birth_date,hukou_region\n"
        + "".join(f"11010520220501{i:03d}X,p{i},M,{born},110105\n" for i in range(10)),
        encoding="utf-8",
    )
    out = tmp_path / "charts"
    res = run(
        [
            "report",
            "--region",
            "11",
            "--school-year",
            "2026",
            "--as",
            "province:11",
            "--population",
            str(pop),
            "--json",
            "--out",
            str(out),
        ],
        db,
    )
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["population_3_5"] == 10
    assert doc["gross_enrolment_rate"] == pytest.approx(doc["total"] / 10, abs=1e-6)
    assert set(doc["by_province"]) == {"11"}
    assert (out / "index.html").exists()
    assert len(list(out.glob("*.png"))) == 4
    res = run(["report", "--region", "110105", "--school-year", "2026", "--as", "ministry"], db)
    assert res.exit_code == 0
    assert "children on roll" in res.output


def test_flows_command(db: str) -> None:
    res = run(
        ["flows", "--from", "2026-09-01", "--to", "2026-10-30", "--as", "ministry", "--json"], db
    )
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["total"] == 0
    res = run(
        [
            "flows",
            "--from",
            "2026-09-01",
            "--to",
            "2026-10-30",
            "--level",
            "town",
            "--as",
            "ministry",
        ],
        db,
    )
    assert res.exit_code == 2
