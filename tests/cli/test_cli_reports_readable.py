"""CLI reports people read: `report` as aligned tables with names, `flows` by city for a
province, the CJK-font warning of `report --out`, and `problems --csv` writing 是/否."""

from __future__ import annotations

import csv
import random
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from services._monitoring_world import make_world as monitoring_world  # tests/ is on sys.path
from services._monitoring_world import seed as monitoring_seed
from services._report_world import make_world, seed
from studentstatus.adapters.sql import SqlStore
from studentstatus.cli import main

NOW = "2026-11-30T10:00:00+00:00"


@pytest.fixture
def db(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path}/report.db"
    store = SqlStore(url, create=True)
    seed(store, make_world(random.Random(5), 120))
    store.close()
    return url


def run(args: list[str], url: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(main, [*args, "--store", url], env={"STUDENTSTATUS_NOW": NOW})


def test_report_text_is_tables_with_names_in_grade_order(db: str) -> None:
    res = run(["report", "--region", "44", "--school-year", "2026", "--as", "province:44"], db)
    assert res.exit_code == 0, res.output
    out = res.stdout
    assert out.splitlines()[0].startswith("学籍统计报告 Student-status report: 44 广东省")
    for shown in ("4403 深圳市", "440305 南山区", "4411000004 东莞春苗幼儿园", "公办 public"):
        assert shown in out, shown
    grades = [out.index(g) for g in ("托班", "小班", "中班", "大班")]
    assert grades == sorted(grades)
    assert not re.search(r"[{}]|': ", out)  # no Python mapping printed
    # the grade table: one header, one rule, four aligned rows (numbers end in one column)
    block = out.split("分年级分性别 by grade and sex\n", 1)[1].split("\n\n", 1)[0].splitlines()
    assert len(block) == 6
    assert len({len(line.encode("gb18030")) for line in block[1:]}) == 1  # 2 bytes a 汉字


def test_flows_of_a_province_default_to_its_cities(db: str) -> None:
    args = ["flows", "--from", "2026-09-01", "--to", "2026-11-30"]
    res = run([*args, "--as", "province:44"], db)
    assert res.exit_code == 0, res.output
    assert "(city 市级): 13" in res.stdout
    assert re.search(r"4419 东莞市\s+4403 深圳市\s+7", res.stdout)
    assert not re.search(r"\b44 -> 44\b", res.stdout)
    res = run([*args, "--as", "ministry", "--level", "province"], db)
    assert re.search(r"44 广东省\s+44 广东省\s+12", res.stdout)


def test_report_out_warns_when_no_cjk_font(
    db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("matplotlib")
    from studentstatus.services import charts

    monkeypatch.setattr(charts, "_cache", {})
    monkeypatch.setattr(charts, "_installed_fonts", lambda: {"DejaVu Sans"})
    out = str(tmp_path / "page")
    res = run(
        ["report", "--region", "44", "--school-year", "2026", "--as", "province:44", "--out", out],
        db,
    )
    assert res.exit_code == 0, res.output
    assert res.stderr.count("warning: 未找到中文字体") == 1
    assert "no CJK font found" in res.stderr
    assert "chart font: none (English labels)" in res.stdout
    page = (Path(out) / "index.html").read_text(encoding="utf-8")
    assert 'id="font-warning"' in page
    assert "4419 东莞市" in page  # the flows table, by city


def test_problems_csv_writes_yes_no_not_false(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/problems.db"
    store = SqlStore(url, create=True)
    monitoring_seed(store, monitoring_world(random.Random(4), 60, days=0))
    store.close()
    export = tmp_path / "problems.csv"
    res = run(["problems", "--as", "county:110105", "--csv", str(export)], url)
    assert res.exit_code == 0, res.output
    with export.open(encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert rows
    assert {r["overdue"] for r in rows} <= {"是", "否"}
    assert "False" not in export.read_text(encoding="utf-8-sig")
