"""Reports people read: names next to codes, grade order, labels, whole-number ticks, titles,
flows of a province by city, aligned text tables and the warning when no CJK font is found."""

from __future__ import annotations

import random
import re
import unicodedata
import warnings
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from studentstatus.adapters.memory import MemoryStore
from studentstatus.domain.jurisdiction import Operator
from studentstatus.services.flows import FlowMatrix, get_transfer_flows, level_for
from studentstatus.services.report_format import (
    format_report,
    grade_order,
    label,
    region_label,
    text_table,
)
from studentstatus.services.reports import DIMENSIONS, Report, assemble, build_report
from studentstatus.services.runtime import FixedClock, Runtime

from ._report_world import NOW, make_world, seed

GRADES_ZH = ["托班", "小班", "中班", "大班"]


@pytest.fixture(scope="module")
def rt() -> Runtime:
    store = MemoryStore()
    seed(store, make_world(random.Random(3)))
    return Runtime(store, FixedClock(NOW), random.Random(1))


@pytest.fixture(scope="module")
def guangdong(rt: Runtime) -> Report:
    return build_report(rt, Operator.parse("province:44"), "44", 2026)


def _positions(text: str, needles: list[str]) -> list[int]:
    return [text.index(n) for n in needles]


# --------------------------------------------------------------------------- text report


def test_text_report_names_regions_and_kindergartens(guangdong: Report) -> None:
    text = format_report(guangdong)
    for shown in (
        "44 广东省",
        "4403 深圳市",
        "4401 广州市",
        "440305 南山区",
        "441900 东莞市",
        "4411000001 南山星星幼儿园",
        "4411000004 东莞春苗幼儿园",
    ):
        assert shown in text, shown
    assert guangdong.kindergarten_names["4411000003"] == "天河小树幼儿园"


def test_text_report_has_no_python_reprs_and_bilingual_labels(guangdong: Report) -> None:
    text = format_report(guangdong)
    assert not re.search(r"[{}\[\]]|': |\bNone\b|\bFalse\b|\bTrue\b", text)
    for zh, en in (("公办", "public"), ("民办普惠", "private, inclusive"), ("转园", "transfer")):
        assert f"{zh} {en}" in text
    assert "private_inclusive" not in text
    assert "JUNIOR" not in text


def test_grades_in_their_natural_order_everywhere(guangdong: Report) -> None:
    assert list(guangdong.by_grade) == ["NURSERY", "JUNIOR", "MIDDLE", "SENIOR"]
    assert list(guangdong.grade_sex) == ["NURSERY", "JUNIOR", "MIDDLE", "SENIOR"]
    text = format_report(guangdong)
    assert _positions(text, GRADES_ZH) == sorted(_positions(text, GRADES_ZH))
    unknown_first = assemble(
        {**{d: {} for d in DIMENSIONS}, "grade_sex": {(None, "M"): 1, ("SENIOR", "F"): 1}},
        {},
        {},
        {},
        region="11",
        school_year=2026,
        as_of=date(2026, 10, 1),
    )
    assert list(unknown_first.by_grade) == ["SENIOR", "None"]


@given(st.permutations(["SENIOR", "NURSERY", "MIDDLE", "JUNIOR", "None", "X"]))
def test_grade_order_is_natural_whatever_the_input_order(keys: list[str]) -> None:
    assert grade_order(keys) == ["NURSERY", "JUNIOR", "MIDDLE", "SENIOR", "None", "X"]


def test_labels_and_region_labels() -> None:
    assert label("grade", "NURSERY") == ("托班", "nursery class")
    assert label("problem_status", "EVIDENCE_SUBMITTED") == ("已佐证", "evidence submitted")
    assert label("migrant", "OTHER_PROVINCE") == ("外省", "other province")
    assert region_label("1101") == "1101 北京市市辖区"
    assert region_label("?") == "? 不明"


def _display_width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


cells = st.text(alphabet="ab 1Z王班幼儿园—", min_size=1, max_size=8).map(str.strip).filter(bool)


@given(st.lists(st.tuples(cells, st.integers(0, 10**6)), min_size=1, max_size=6))
def test_text_table_columns_line_up_with_chinese_text(rows: list[tuple[str, int]]) -> None:
    lines = text_table(["名称 name", "幼儿 children"], rows)
    # numbers are right-aligned: every line (after the header) ends at the same display column
    widths = {_display_width(line) for line in lines[1:]}
    assert len(widths) == 1
    for line, (name, n) in zip(lines[2:], rows):
        assert line.strip().startswith(name)
        assert line.endswith(str(n))


# --------------------------------------------------------------------------- flows


def test_a_province_sees_its_flows_by_city_not_one_bar(rt: Runtime) -> None:
    op = Operator.parse("province:44")
    start, end = date(2026, 9, 1), NOW.date()
    by_province = get_transfer_flows(rt, op, start, end, region="44")
    assert by_province.rows()[0][:2] == ("44", "44")  # the old view: one bar
    flows = get_transfer_flows(rt, op, start, end, level=level_for("44"), region="44")
    assert flows.level == "city"
    assert flows.rows() == [
        ("4419", "4403", 7),
        ("4401", "4403", 3),
        ("4403", "4403", 2),
        ("1101", "4403", 1),
    ]
    beijing = get_transfer_flows(
        rt, Operator.parse("province:11"), start, end, level=level_for("11"), region="11"
    )
    assert beijing.level == "county"  # a municipality: by district
    assert ("110108", "110105", 4) in beijing.rows()


# --------------------------------------------------------------------------- charts

mpl = pytest.importorskip("matplotlib")

from studentstatus.services import charts  # noqa: E402


@pytest.fixture
def figures(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """The matplotlib figures the charts draw (captured instead of being saved)."""
    captured: list[Any] = []

    def keep(fig: Any) -> bytes:
        fig.canvas.draw()
        captured.append(fig)
        return b"\x89PNG"

    monkeypatch.setattr(charts, "_png", keep)
    return captured


def _tiny_report() -> Report:
    """Counts of 1 and 2: a default matplotlib axis would tick at 0.25, 0.5, …"""
    return assemble(
        {
            **{d: {} for d in DIMENSIONS},
            "grade_sex": {("MIDDLE", "M"): 1, ("NURSERY", "F"): 2, ("SENIOR", "M"): 1},
        },
        {},
        {},
        {(date(2026, 11, 2), "present"): 2, (date(2026, 11, 3), "absent"): 1},
        region="44",
        school_year=2026,
        as_of=date(2026, 11, 30),
    )


def test_count_axes_tick_at_whole_numbers(figures: list[Any], guangdong: Report) -> None:
    from matplotlib.ticker import MaxNLocator

    report = _tiny_report()
    flows = FlowMatrix(
        "city", date(2026, 9, 1), date(2026, 11, 30), {"4419": {"4403": 1}, "4401": {"4403": 2}}
    )
    charts.chart_grade_sex(report)
    charts.chart_flows(flows)
    charts.chart_attendance_trend(report)
    grade_ax, flows_ax, attendance_ax = (f.axes[0] for f in figures)
    for axis in (grade_ax.yaxis, flows_ax.xaxis, attendance_ax.yaxis):
        locator = axis.get_major_locator()
        assert isinstance(locator, MaxNLocator)
        ticks = [t for t in axis.get_ticklocs() if axis.get_view_interval()[0] <= t]
        assert ticks
        assert all(float(t).is_integer() for t in ticks), ticks


def test_chart_titles_and_labels_read_well(figures: list[Any], guangdong: Report) -> None:
    if charts.cjk_font() is None:
        pytest.skip("no CJK font installed here (apt-get install fonts-noto-cjk)")
    charts.chart_grade_sex(guangdong)
    charts.chart_inclusive_share(guangdong)
    charts.chart_attendance_trend(_tiny_report())
    grade_ax, share_ax, attendance_ax = (f.axes[0] for f in figures)
    assert grade_ax.get_title() == "广东省（44） 2026—2027学年 分年级分性别在园幼儿"
    assert [t.get_text() for t in grade_ax.get_xticklabels()] == GRADES_ZH
    assert [t.get_text() for t in share_ax.get_yticklabels()][-1].startswith("4403")
    assert {t.get_text() for t in share_ax.get_yticklabels()} >= {"440305 南山区", "441900 东莞市"}
    assert "截至2026年11月30日" in attendance_ax.get_title()


def test_english_titles_without_a_cjk_font(
    figures: list[Any], guangdong: Report, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(charts, "_cache", {})
    monkeypatch.setattr(charts, "_installed_fonts", lambda: {"DejaVu Sans"})
    charts.chart_grade_sex(guangdong)
    title = figures[0].axes[0].get_title()
    assert title == "Children on roll by grade and sex, region 44, school year 2026–27"
    labels = [t.get_text() for t in figures[0].axes[0].get_xticklabels()]
    assert labels == ["nursery class", "junior class", "middle class", "senior class"]


def test_missing_cjk_font_warns_and_the_page_says_so(
    guangdong: Report, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(charts, "_cache", {})
    monkeypatch.setattr(charts, "_installed_fonts", lambda: {"DejaVu Sans", "Liberation Sans"})
    assert charts.cjk_font() is None
    assert charts.font_warning() is not None
    with pytest.warns(charts.NoCjkFontWarning, match="fonts-noto-cjk"):
        charts.write_report_page(guangdong, tmp_path / "out")
    page = (tmp_path / "out" / "index.html").read_text(encoding="utf-8")
    assert 'id="font-warning"' in page
    assert "未找到中文字体" in page
    assert re.search(r'id="chart-font">图表字体 chart font: DejaVu Sans', page)


def test_the_page_names_the_cjk_font_it_used(
    guangdong: Report, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    installed = charts._installed_fonts()
    present = [f for f in charts.CJK_FONTS if f in installed]
    if not present:
        pytest.skip("no CJK font installed here (apt-get install fonts-noto-cjk)")
    monkeypatch.setattr(charts, "_cache", {})
    # the lookup takes the first of CJK_FONTS that is installed
    monkeypatch.setattr(charts, "_installed_fonts", lambda: {"DejaVu Sans", *present[::-1]})
    assert charts.cjk_font() == present[0]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # neither our warning nor a missing glyph
        charts.write_report_page(guangdong, tmp_path / "out")
    page = (tmp_path / "out" / "index.html").read_text(encoding="utf-8")
    assert 'id="font-warning"' not in page
    assert f'id="chart-font">图表字体 chart font: {present[0]}<' in page


def test_html_page_has_names_labels_and_grade_order(guangdong: Report, rt: Runtime) -> None:
    flows = get_transfer_flows(
        rt, Operator.parse("province:44"), date(2026, 9, 1), NOW.date(), level="city", region="44"
    )
    page = charts.render_html(guangdong, images={}, flows=flows)
    for shown in ("44 广东省", "4403 深圳市", "440305 南山区", "南山星星幼儿园", "4419 东莞市"):
        assert shown in page, shown
    assert "2026—2027学年 / school year 2026–27" in page
    assert "2026年11月 / November 2026" in page
    assert _positions(page, GRADES_ZH) == sorted(_positions(page, GRADES_ZH))
    assert "民办普惠 private, inclusive" in page
    assert not re.search(r"<td>(JUNIOR|private_inclusive|TRANSFER|None|False)</td>", page)


def test_flows_within_a_region_and_the_trend_legend_read_well(
    figures: list[Any], guangdong: Report
) -> None:
    """A flow between two kindergartens of one county is said as such (not "A → A"); the
    attendance legend sits above the plot, where it covers no line."""
    if charts.cjk_font() is None:
        pytest.skip("no CJK font installed here (apt-get install fonts-noto-cjk)")
    flows = FlowMatrix(
        "county",
        date(2026, 9, 1),
        date(2026, 11, 30),
        {"440303": {"440303": 5, "440305": 1}},
    )
    charts.chart_flows(flows)
    charts.chart_attendance_trend(_tiny_report())
    flows_ax, attendance_ax = (f.axes[0] for f in figures)
    labels = {t.get_text() for t in flows_ax.get_yticklabels()}
    assert labels == {"440303 罗湖区（区域内）", "440303 罗湖区 → 440305 南山区"}
    legend = attendance_ax.get_legend()
    assert legend.get_bbox_to_anchor().y0 >= attendance_ax.get_window_extent().y1 - 1


def test_changes_in_the_order_of_a_record_s_life() -> None:
    """Register, approve, … withdraw — not the alphabet (approve, cancel, death, …)."""
    report = assemble(
        {d: {} for d in DIMENSIONS},
        {("WITHDRAW",): 1, ("APPROVE",): 3, ("REGISTER",): 4, ("DEATH",): 1, ("TRANSFER",): 2},
        {},
        {},
        region="44",
        school_year=2026,
        as_of=date(2026, 11, 30),
    )
    assert list(report.changes_by_kind) == ["REGISTER", "APPROVE", "TRANSFER", "WITHDRAW", "DEATH"]
