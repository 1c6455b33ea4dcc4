"""PNG charts and a self-contained HTML page for a report (needs the ``plots`` extra).

Four charts: enrolment by grade and sex, inclusive (普惠) share by county,
transfer flows (the largest origin → destination pairs) and the attendance
trend.  :func:`write_report_page` writes them as PNG files next to an
``index.html`` that embeds the same images as base64 ``data:`` URIs (the page
works when moved or mailed alone) together with the tables.

Chinese labels need a CJK font: the first installed one of
:data:`CJK_FONTS` is used (Debian: ``apt-get install fonts-noto-cjk``).
Without one the charts fall back to English labels instead of drawing
empty boxes; :func:`cjk_font` tells which case applies.

matplotlib is imported lazily with the non-interactive ``Agg`` backend, so
importing this module costs nothing and never opens a window.

>>> from studentstatus.services.reports import DIMENSIONS, assemble
>>> from datetime import date
>>> rep = assemble({d: {} for d in DIMENSIONS}, {}, {}, {}, region="11", school_year=2026,
...                as_of=date(2026, 10, 1))
>>> html = render_html(rep, images={})
>>> html.startswith("<!DOCTYPE html>") and "学籍" in html
True
"""

from __future__ import annotations

import base64
import html as _html
import io
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from studentstatus.services.flows import FlowMatrix
    from studentstatus.services.reports import Report

__all__ = [
    "CJK_FONTS",
    "chart_attendance_trend",
    "chart_flows",
    "chart_grade_sex",
    "chart_inclusive_share",
    "cjk_font",
    "render_charts",
    "render_html",
    "write_report_page",
]

CJK_FONTS = (
    "Noto Sans CJK SC",
    "Noto Serif CJK SC",
    "Source Han Sans SC",
    "WenQuanYi Zen Hei",
    "WenQuanYi Micro Hei",
    "SimHei",
    "Microsoft YaHei",
    "PingFang SC",
)
"""CJK-capable font families tried in order."""

_GRADES = ("NURSERY", "JUNIOR", "MIDDLE", "SENIOR")
_GRADE_ZH = {"NURSERY": "托班", "JUNIOR": "小班", "MIDDLE": "中班", "SENIOR": "大班"}
_SEX_ZH = {"M": "男", "F": "女"}
_cache: dict[str, str | None] = {}


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def cjk_font() -> str | None:
    """The CJK font family charts use, or ``None`` (charts then use English labels).

    >>> cjk_font() is None or isinstance(cjk_font(), str)
    True
    """
    if "font" not in _cache:
        from matplotlib import font_manager

        installed = {f.name for f in font_manager.fontManager.ttflist}
        _cache["font"] = next((f for f in CJK_FONTS if f in installed), None)
    return _cache["font"]


def _label(zh: str, en: str) -> str:
    return zh if cjk_font() else en


def _figure(width: float = 7.5, height: float = 4.2) -> tuple[Any, Any]:
    plt = _plt()
    font = cjk_font()
    rc = {"font.family": "sans-serif", "axes.unicode_minus": False}
    if font:
        rc["font.sans-serif"] = [font, "DejaVu Sans"]
    plt.rcParams.update(rc)
    fig, ax = plt.subplots(figsize=(width, height), dpi=110)
    return fig, ax


def _png(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png")
    _plt().close(fig)
    return buf.getvalue()


def _empty(ax: Any, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", fontsize=12, color="#666")
    ax.set_axis_off()


def chart_grade_sex(report: Report) -> bytes:
    """Grouped bars: children on roll by grade, boys and girls side by side (PNG bytes).

    >>> from studentstatus.services.reports import DIMENSIONS, assemble
    >>> from datetime import date
    >>> rep = assemble({**{d: {} for d in DIMENSIONS}, "grade_sex": {("JUNIOR", "F"): 3}},
    ...                {}, {}, {}, region="11", school_year=2026, as_of=date(2026, 10, 1))
    >>> chart_grade_sex(rep)[:4]
    b'\\x89PNG'
    """
    fig, ax = _figure()
    data = report.grade_sex
    grades = [g for g in _GRADES if g in data] + [g for g in data if g not in _GRADES]
    if not grades:
        _empty(ax, _label("无在园幼儿", "no children on roll"))
        return _png(fig)
    width = 0.38
    xs = range(len(grades))
    colours = {"M": "#4C72B0", "F": "#DD8452"}
    for i, sex in enumerate(("M", "F")):
        values = [data.get(g, {}).get(sex, 0) for g in grades]
        bars = ax.bar(
            [x + (i - 0.5) * width for x in xs],
            values,
            width,
            label=_label(_SEX_ZH[sex], "boys" if sex == "M" else "girls"),
            color=colours[sex],
        )
        ax.bar_label(bars, fontsize=8, padding=2)
    names = [_label(_GRADE_ZH.get(g, "未定"), g.title()) for g in grades]
    ax.set_xticks(list(xs), names)
    ax.set_ylabel(_label("幼儿数", "children"))
    ax.set_title(
        _label(
            f"{report.region or '全国'} {report.school_year}学年 分年级分性别在园幼儿",
            f"Children on roll by grade and sex, {report.region or 'all'} {report.school_year}",
        )
    )
    ax.legend(frameon=False)
    ax.margins(y=0.15)
    ax.spines[["top", "right"]].set_visible(False)
    return _png(fig)


def chart_inclusive_share(report: Report, names: Mapping[str, str] | None = None) -> bytes:
    """Horizontal bars: share of children in inclusive (普惠) kindergartens by county (PNG).

    ``names`` maps county codes to names for the labels (codes otherwise).
    """
    shares = report.inclusive_share_by_county
    fig, ax = _figure(7.5, max(2.6, 0.42 * len(shares) + 1.4))
    if not shares:
        _empty(ax, _label("无数据", "no data"))
        return _png(fig)
    codes = sorted(shares, key=lambda c: shares[c])
    # County names are Chinese: shown only when a CJK font can draw them.
    shown = names if names and cjk_font() else {}
    labels = [f"{c} {shown[c]}" if c in shown else c for c in codes]
    values = [shares[c] * 100 for c in codes]
    bars = ax.barh(labels, values, color="#55A868")
    ax.bar_label(bars, labels=[f"{v:.1f}%" for v in values], fontsize=8, padding=3)
    ax.axvline(80, color="#C44E52", linestyle="--", linewidth=1)
    ax.text(80, len(codes) - 0.5, _label(" 目标80%", " 80% target"), color="#C44E52", fontsize=8)
    ax.set_xlim(0, 112)
    ax.set_xlabel(
        _label("普惠性幼儿园在园幼儿占比（%）", "children in inclusive kindergartens (%)")
    )
    ax.set_title(_label("分县普惠性幼儿园覆盖率", "Inclusive share by county"))
    ax.spines[["top", "right"]].set_visible(False)
    return _png(fig)


def chart_flows(flows: FlowMatrix | None, *, top: int = 12) -> bytes:
    """Horizontal bars: the ``top`` largest origin → destination transfer flows (PNG)."""
    rows = flows.rows()[:top] if flows is not None else []
    fig, ax = _figure(7.5, max(2.6, 0.4 * len(rows) + 1.4))
    if not rows:
        _empty(ax, _label("本期无转园", "no transfers in the period"))
        return _png(fig)
    rows = list(reversed(rows))
    labels = [f"{o} → {d}" for o, d, _n in rows]
    bars = ax.barh(labels, [n for _o, _d, n in rows], color="#8172B3")
    ax.bar_label(bars, fontsize=8, padding=3)
    assert flows is not None
    level = _label("省级" if flows.level == "province" else "县级", flows.level)
    ax.set_title(
        _label(
            f"转园流向（{level}，{flows.start}～{flows.end}）",
            f"Transfer flows ({level}, {flows.start} to {flows.end})",
        )
    )
    ax.set_xlabel(_label("转园人数", "transfers"))
    ax.margins(x=0.12)
    ax.spines[["top", "right"]].set_visible(False)
    return _png(fig)


def chart_attendance_trend(report: Report) -> bytes:
    """Lines: children present and absent per day, with the attendance rate (PNG)."""
    trend = report.attendance_trend
    fig, ax = _figure(8.5, 4.2)
    if not trend:
        _empty(ax, _label("近30天无考勤记录", "no attendance in the last 30 days"))
        return _png(fig)
    days = sorted(trend)
    present = [trend[d].get("present", 0) for d in days]
    absent = [trend[d].get("absent", 0) for d in days]
    xs = list(range(len(days)))
    ax.plot(xs, present, marker="o", markersize=3, label=_label("出勤", "present"), color="#4C72B0")
    ax.plot(xs, absent, marker="o", markersize=3, label=_label("缺勤", "absent"), color="#C44E52")
    step = max(1, len(days) // 10)
    ax.set_xticks(xs[::step], [d[5:] for d in days[::step]], rotation=45, ha="right")
    ax.set_ylabel(_label("幼儿数", "children"))
    ax.set_ylim(bottom=0)
    rate_ax = ax.twinx()
    rates = [p / (p + a) * 100 if p + a else 0 for p, a in zip(present, absent)]
    rate_ax.plot(xs, rates, linestyle=":", color="#55A868", label=_label("出勤率", "rate"))
    rate_ax.set_ylim(0, 105)
    rate_ax.set_ylabel(_label("出勤率（%）", "attendance rate (%)"))
    lines = ax.get_legend_handles_labels()
    more = rate_ax.get_legend_handles_labels()
    ax.legend(lines[0] + more[0], lines[1] + more[1], frameon=False, loc="lower left", ncol=3)
    ax.set_title(_label("近30天出勤趋势", "Attendance, last 30 days"))
    ax.spines[["top"]].set_visible(False)
    return _png(fig)


def render_charts(
    report: Report,
    flows: FlowMatrix | None = None,
    *,
    county_names: Mapping[str, str] | None = None,
) -> dict[str, bytes]:
    """Every chart as PNG bytes, by file name."""
    return {
        "enrolment_grade_sex.png": chart_grade_sex(report),
        "inclusive_share_by_county.png": chart_inclusive_share(report, county_names),
        "transfer_flows.png": chart_flows(flows),
        "attendance_trend.png": chart_attendance_trend(report),
    }


def _table(title: str, rows: Sequence[Sequence[Any]], header: Sequence[str]) -> str:
    e = _html.escape
    head = "".join(f"<th>{e(str(h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{e(str(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f"<h2>{e(title)}</h2><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _pct(v: float | None) -> str:
    return "—" if v is None else f"{v * 100:.1f}%"


def render_html(
    report: Report,
    *,
    images: Mapping[str, bytes],
    flows: FlowMatrix | None = None,
) -> str:
    """A self-contained HTML page: the charts as ``data:`` URIs and every table."""
    e = _html.escape
    parts = [
        "<!DOCTYPE html>",
        '<html lang="zh-CN"><head><meta charset="utf-8">',
        f"<title>学籍统计 {e(report.region)} {report.school_year}</title>",
        "<style>body{font-family:'Noto Sans CJK SC','PingFang SC','Microsoft YaHei',sans-serif;"
        "margin:2em;max-width:60em}table{border-collapse:collapse;margin:.5em 0 1.5em}"
        "td,th{border:1px solid #ccc;padding:.25em .6em;text-align:right}"
        "th{background:#f3f3f3}img{max-width:100%;display:block;margin:1em 0}</style>",
        "</head><body>",
        f"<h1>学籍统计报告 Student-status report — {e(report.region or '全国')} "
        f"{report.school_year}</h1>",
        f"<p>截至 As of {report.as_of.isoformat()}：在园幼儿 {report.total}；"
        f"普惠性幼儿园占比 {_pct(report.inclusive_share)}；公办园占比 "
        f"{_pct(report.public_share)}；毛入园率 {_pct(report.gross_enrolment_rate)}"
        f"（3–5岁人口 {report.population_3_5 if report.population_3_5 is not None else '—'}）；"
        f"农村户籍随迁子女 {report.rural_migrants}</p>",
    ]
    for name, data in images.items():
        uri = "data:image/png;base64," + base64.b64encode(data).decode("ascii")
        parts.append(f'<img alt="{e(name)}" src="{uri}">')

    def kv(title: str, mapping: Mapping[str, Any], header: tuple[str, str]) -> None:
        parts.append(_table(title, list(mapping.items()), header))

    kv("分省 By province", report.by_province, ("省 province", "幼儿 children"))
    kv("分市 By city", report.by_city, ("市 city", "幼儿 children"))
    kv("分县 By county", report.by_county, ("县 county", "幼儿 children"))
    kv("分园 By kindergarten", report.by_kindergarten, ("幼儿园 kindergarten", "幼儿 children"))
    kv("分类型 By type", report.by_type, ("类型 type", "幼儿 children"))
    kv("分年级 By grade", report.by_grade, ("年级 grade", "幼儿 children"))
    kv("分性别 By sex", report.by_sex, ("性别 sex", "幼儿 children"))
    kv("分年龄 By age", report.by_age, ("年龄 age", "幼儿 children"))
    kv("随迁 Migrant status", report.by_migrant, ("户籍 status", "幼儿 children"))
    kv(
        "分县普惠率 Inclusive share by county",
        {k: _pct(v) for k, v in report.inclusive_share_by_county.items()},
        ("县 county", "普惠 share"),
    )
    kv("变动 Changes by kind", report.changes_by_kind, ("变动 change", "次数 count"))
    parts.append(
        _table(
            "问题学籍 Problem records",
            [(k, s, n) for k, v in report.problems.items() for s, n in v.items()],
            ("类型 kind", "状态 status", "数量 count"),
        )
    )
    if flows is not None:
        parts.append(
            _table(
                f"转园流向 Transfer flows ({flows.level})",
                flows.rows(),
                ("转出 origin", "转入 destination", "人数 count"),
            )
        )
    parts.append(
        _table(
            "出勤 Attendance (last 30 days)",
            [
                (d, v.get("present", 0), v.get("absent", 0))
                for d, v in report.attendance_trend.items()
            ],
            ("日期 day", "出勤 present", "缺勤 absent"),
        )
    )
    parts.append("</body></html>")
    return "\n".join(parts)


def write_report_page(
    report: Report,
    out_dir: str | os.PathLike[str],
    *,
    flows: FlowMatrix | None = None,
    county_names: Mapping[str, str] | None = None,
) -> list[Path]:
    """Write the PNG charts and ``index.html`` into ``out_dir`` (created); returns the paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    images = render_charts(report, flows, county_names=county_names)
    paths: list[Path] = []
    for name, data in images.items():
        path = out / name
        path.write_bytes(data)
        paths.append(path)
    page = out / "index.html"
    page.write_text(render_html(report, images=images, flows=flows), encoding="utf-8")
    paths.append(page)
    return paths
