"""Charts: real PNGs with content, English fallback without a CJK font, self-contained HTML."""

from __future__ import annotations

import base64
import io
import random
import re
from datetime import date
from pathlib import Path

import pytest

pytest.importorskip("matplotlib")

from studentstatus.adapters.memory import MemoryStore
from studentstatus.domain.jurisdiction import Operator
from studentstatus.services import charts
from studentstatus.services.flows import FlowMatrix
from studentstatus.services.reports import DIMENSIONS, assemble, build_report

from ._monitoring_world import make_world, runtime, seed

FLOWS = FlowMatrix(
    "province", date(2026, 9, 1), date(2026, 10, 30), {"51": {"11": 5}, "11": {"44": 2}}
)


@pytest.fixture(scope="module")
def report():  # type: ignore[no-untyped-def]
    store = MemoryStore()
    seed(store, make_world(random.Random(2), 400, days=30))
    return build_report(runtime(store), Operator.parse("ministry"), "", 2026)


def _pixels(png: bytes) -> tuple[tuple[int, int], int]:
    from matplotlib import image

    img = image.imread(io.BytesIO(png), format="png")
    colours = {tuple(px) for row in img[::7] for px in row[::7]}
    return (img.shape[1], img.shape[0]), len(colours)


def test_every_chart_is_a_png_with_drawn_content(report) -> None:  # type: ignore[no-untyped-def]
    images = charts.render_charts(report, FLOWS)
    assert sorted(images) == [
        "attendance_trend.png",
        "enrolment_grade_sex.png",
        "inclusive_share_by_county.png",
        "transfer_flows.png",
    ]
    for name, png in images.items():
        assert png[:8] == b"\x89PNG\r\n\x1a\n", name
        (w, h), colours = _pixels(png)
        assert w >= 600, name
        assert h >= 250, name
        assert colours > 20, f"{name} looks empty"


def test_empty_data_gives_a_labelled_placeholder_not_an_error() -> None:
    empty = assemble(
        {d: {} for d in DIMENSIONS},
        {},
        {},
        {},
        region="11",
        school_year=2026,
        as_of=date(2026, 10, 1),
    )
    images = charts.render_charts(empty, None)
    for png in images.values():
        assert png[:4] == b"\x89PNG"
        assert _pixels(png)[1] > 2  # the placeholder text is drawn


def test_english_labels_without_a_cjk_font(report, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setitem(charts._cache, "font", None)
    assert charts.cjk_font() is None
    assert charts._label("男", "boys") == "boys"
    assert charts.chart_grade_sex(report)[:4] == b"\x89PNG"


def test_a_cjk_font_is_used_when_installed() -> None:
    from matplotlib import font_manager

    installed = {f.name for f in font_manager.fontManager.ttflist}
    if not installed & set(charts.CJK_FONTS):
        pytest.skip("no CJK font installed here (apt-get install fonts-noto-cjk)")
    assert charts.cjk_font() in charts.CJK_FONTS


def test_html_page_is_self_contained(report, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    paths = charts.write_report_page(report, tmp_path / "out", flows=FLOWS)
    assert {p.name for p in paths} == {
        "attendance_trend.png",
        "enrolment_grade_sex.png",
        "inclusive_share_by_county.png",
        "transfer_flows.png",
        "index.html",
    }
    page = (tmp_path / "out" / "index.html").read_text(encoding="utf-8")
    uris = re.findall(r'src="data:image/png;base64,([^"]+)"', page)
    assert len(uris) == 4
    assert all(base64.b64decode(u)[:4] == b"\x89PNG" for u in uris)
    assert not re.search(r'(src|href)="(?!data:)', page)  # nothing fetched from elsewhere
    assert f"<dt>在园幼儿 children on roll</dt><dd>{report.total}</dd>" in page
    assert "分县 By county" in page
    assert "51" in page


def test_county_names_left_out_without_a_cjk_font(report, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    # Chinese county names would draw as empty boxes (and warn) without a CJK font.
    import warnings

    monkeypatch.setattr(charts, "cjk_font", lambda: None)
    names = dict.fromkeys(report.inclusive_share_by_county, "福田区")
    assert names  # the fixture has counties
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert charts.chart_inclusive_share(report, names)[:4] == b"\x89PNG"
