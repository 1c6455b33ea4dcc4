"""PNG charts and a self-contained HTML page for a report (needs the ``plots`` extra).

Four charts: enrolment by grade and sex, inclusive (普惠) share by county,
transfer flows (the largest origin → destination pairs) and the attendance
trend.  :func:`write_report_page` writes them as PNG files next to an
``index.html`` that embeds the same images as base64 ``data:`` URIs (the page
works when moved or mailed alone) together with the tables.

Labels are what a reader expects (:mod:`studentstatus.services.report_format`):
region names next to codes, grades in their natural order, every value in
Chinese and English, whole numbers on count axes, titles such as
"北京市（11） 2026—2027学年".

Chinese labels need a CJK font: the first installed one of
:data:`CJK_FONTS` is used (Debian: ``apt-get install fonts-noto-cjk``).
Without one the charts fall back to English labels instead of drawing
empty boxes; :func:`cjk_font` tells which case applies, and
:func:`font_warning` gives the warning the CLI prints and the HTML page shows
(the page always says which font its charts used).

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
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from studentstatus.services.flows import FlowMatrix
from studentstatus.services.report_format import (
    bilingual,
    day_zh,
    grade_order,
    label,
    month_title,
    region_label,
    region_name,
    school_year_title,
)
from studentstatus.services.reports import Report

__all__ = [
    "CJK_FONTS",
    "NoCjkFontWarning",
    "chart_attendance_trend",
    "chart_flows",
    "chart_grade_sex",
    "chart_inclusive_share",
    "cjk_font",
    "font_warning",
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

_cache: dict[str, str | None] = {}


class NoCjkFontWarning(UserWarning):
    """Warned when no CJK font is installed: the charts use English labels only."""


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
        installed = _installed_fonts()
        _cache["font"] = next((f for f in CJK_FONTS if f in installed), None)
    return _cache["font"]


def _installed_fonts() -> set[str]:
    """Font family names matplotlib can use (the font lookup; tests replace it)."""
    from matplotlib import font_manager

    return {f.name for f in font_manager.fontManager.ttflist}


def font_warning() -> str | None:
    """The warning to show when no CJK font is installed, else ``None``.

    >>> font_warning() is None or "fonts-noto-cjk" in font_warning()
    True
    """
    if cjk_font() is not None:
        return None
    return (
        "未找到中文字体，图表仅用英文标注（安装 fonts-noto-cjk 后重新生成）/ "
        "no CJK font found: the charts use English labels only "
        "(install a CJK font, e.g. `apt-get install fonts-noto-cjk`, and render again)"
    )


def _font_used() -> str:
    font = cjk_font()
    return font if font is not None else "DejaVu Sans (no CJK font / 无中文字体)"


def _label(zh: str, en: str) -> str:
    return zh if cjk_font() else en


def _bi(kind: str, value: object) -> str:
    zh, en = label(kind, value)
    return _label(zh, en)


def _region(code: str) -> str:
    """``4403 深圳市`` with a CJK font, the code alone without (names would draw as boxes)."""
    return region_label(code, names=cjk_font() is not None)


def _place(report: Report) -> str:
    """Who the report covers, for titles: ``北京市（11）`` / ``region 11``."""
    if report.kindergarten_code is not None:
        kg = report.kindergarten_code
        name = report.kindergarten_names.get(kg)
        return _label(f"{name}（{kg}）" if name else kg, f"kindergarten {kg}")
    if not report.region:
        return _label("全国", "all regions")
    name = region_name(report.region)
    return _label(
        f"{name}（{report.region}）" if name else report.region, f"region {report.region}"
    )


def _year(report: Report) -> str:
    zh, en = school_year_title(report.school_year)
    return _label(zh, en)


def _figure(width: float = 7.5, height: float = 4.2) -> tuple[Any, Any]:
    plt = _plt()
    font = cjk_font()
    rc = {"font.family": "sans-serif", "axes.unicode_minus": False}
    if font:
        rc["font.sans-serif"] = [font, "DejaVu Sans"]
    plt.rcParams.update(rc)
    fig, ax = plt.subplots(figsize=(width, height), dpi=110)
    return fig, ax


def _whole_numbers(axis: Any) -> None:
    """Ticks on a count axis at whole numbers only (no 0.5 children)."""
    from matplotlib.ticker import MaxNLocator

    axis.set_major_locator(MaxNLocator(integer=True))


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

    Grades in their natural order (托班, 小班, 中班, 大班), whole-number ticks.

    >>> from studentstatus.services.reports import DIMENSIONS, assemble
    >>> from datetime import date
    >>> rep = assemble({**{d: {} for d in DIMENSIONS}, "grade_sex": {("JUNIOR", "F"): 3}},
    ...                {}, {}, {}, region="11", school_year=2026, as_of=date(2026, 10, 1))
    >>> chart_grade_sex(rep)[:4]
    b'\\x89PNG'
    """
    fig, ax = _figure()
    data = report.grade_sex
    grades = grade_order(data)
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
            label=_bi("sex", sex),
            color=colours[sex],
        )
        ax.bar_label(bars, fontsize=8, padding=2)
    ax.set_xticks(list(xs), [_bi("grade", g) for g in grades])
    _whole_numbers(ax.yaxis)
    ax.set_ylabel(_label("在园幼儿数", "children on roll"))
    ax.set_title(
        _label(
            f"{_place(report)} {_year(report)} 分年级分性别在园幼儿",
            f"Children on roll by grade and sex, {_place(report)}, {_year(report)}",
        )
    )
    ax.legend(frameon=False, ncol=2, loc="upper right")
    ax.margins(y=0.2)  # room for the legend above the tallest bar
    ax.spines[["top", "right"]].set_visible(False)
    return _png(fig)


def chart_inclusive_share(report: Report, names: Mapping[str, str] | None = None) -> bytes:
    """Horizontal bars: share of children in inclusive (普惠) kindergartens by county (PNG).

    Labels are ``code name``: ``names`` maps county codes to names, by default
    the region table's names (drawn only with a CJK font; codes otherwise).
    """
    shares = report.inclusive_share_by_county
    fig, ax = _figure(7.5, max(2.6, 0.42 * len(shares) + 1.4))
    if not shares:
        _empty(ax, _label("无数据", "no data"))
        return _png(fig)
    codes = sorted(shares, key=lambda c: (shares[c], c))
    # County names are Chinese: shown only when a CJK font can draw them.
    if cjk_font():
        labels = [f"{c} {names[c]}" if names and c in names else _region(c) for c in codes]
    else:
        labels = list(codes)
    values = [shares[c] * 100 for c in codes]
    bars = ax.barh(labels, values, color="#55A868")
    ax.bar_label(bars, labels=[f"{v:.1f}%" for v in values], fontsize=8, padding=3)
    ax.axvline(80, color="#C44E52", linestyle="--", linewidth=1)
    ax.text(
        80,
        1.0,
        _label(" 目标80%", " 80% target"),
        color="#C44E52",
        fontsize=8,
        va="bottom",
        transform=ax.get_xaxis_transform(),  # x in data, y above the top of the axes
    )
    ax.set_xlim(0, 112)
    ax.set_xlabel(
        _label("普惠性幼儿园在园幼儿占比（%）", "children in inclusive kindergartens (%)")
    )
    ax.set_title(
        _label(
            f"{_place(report)} {_year(report)} 分县普惠性幼儿园覆盖率",
            f"Inclusive share by county, {_place(report)}, {_year(report)}",
        ),
        pad=16,  # room for the target's label above the axes
    )
    ax.spines[["top", "right"]].set_visible(False)
    return _png(fig)


_LEVEL = {"province": ("分省", "by province"), "city": ("分市", "by city")}


def chart_flows(flows: FlowMatrix | None, *, top: int = 12) -> bytes:
    """Horizontal bars: the ``top`` largest origin → destination transfer flows (PNG).

    Regions as ``code name`` (names with a CJK font), whole-number ticks; a
    province's report passes its flows by city (:func:`studentstatus.services.flows.level_for`).
    """
    rows = flows.rows()[:top] if flows is not None else []
    fig, ax = _figure(7.5, max(2.6, 0.4 * len(rows) + 1.4))
    if not rows:
        _empty(ax, _label("本期无转园", "no transfers in the period"))
        return _png(fig)
    assert flows is not None
    rows = list(reversed(rows))
    # A transfer between two kindergartens of one region is a flow too: said as such.
    within = _label("（区域内）", " (within)")
    labels = [
        f"{_region(o)}{within}" if o == d else f"{_region(o)} → {_region(d)}" for o, d, _n in rows
    ]
    bars = ax.barh(labels, [n for _o, _d, n in rows], color="#8172B3")
    ax.bar_label(bars, fontsize=8, padding=3)
    _whole_numbers(ax.xaxis)
    zh, en = _LEVEL.get(flows.level, ("分县", "by county"))
    ax.set_title(
        _label(
            f"转园流向（{zh}，{day_zh(flows.start)}～{day_zh(flows.end)}）",
            f"Transfer flows {en}, {flows.start:%d %b %Y} to {flows.end:%d %b %Y}",
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
    ax.plot(xs, present, marker="o", markersize=3, label=_bi("attendance", "present"))
    ax.lines[-1].set_color("#4C72B0")
    ax.plot(xs, absent, marker="o", markersize=3, label=_bi("attendance", "absent"))
    ax.lines[-1].set_color("#C44E52")
    step = max(1, len(days) // 10)
    ax.set_xticks(xs[::step], [d[5:] for d in days[::step]], rotation=45, ha="right")
    _whole_numbers(ax.yaxis)
    ax.set_ylabel(_label("幼儿数", "children"))
    ax.set_ylim(bottom=0)
    rate_ax = ax.twinx()
    rates = [p / (p + a) * 100 if p + a else 0 for p, a in zip(present, absent)]
    rate_ax.plot(xs, rates, linestyle=":", color="#55A868", label=_label("出勤率", "rate"))
    rate_ax.set_ylim(0, 105)
    rate_ax.set_ylabel(_label("出勤率（%）", "attendance rate (%)"))
    lines = ax.get_legend_handles_labels()
    more = rate_ax.get_legend_handles_labels()
    # Above the plot, under the title: inside, it would cover a line whatever the data.
    ax.legend(
        lines[0] + more[0],
        lines[1] + more[1],
        frameon=False,
        loc="lower center",
        bbox_to_anchor=(0.5, 1.0),
        ncol=3,
    )
    ax.set_title(
        _label(
            f"{_place(report)} 近30天出勤趋势（截至{day_zh(report.as_of)}）",
            f"Attendance, last 30 days to {report.as_of:%d %B %Y}, {_place(report)}",
        ),
        pad=26,
    )
    ax.spines[["top"]].set_visible(False)
    return _png(fig)


def render_charts(
    report: Report,
    flows: FlowMatrix | None = None,
    *,
    county_names: Mapping[str, str] | None = None,
) -> dict[str, bytes]:
    """Every chart as PNG bytes, by file name (county names default to the region table)."""
    return {
        "enrolment_grade_sex.png": chart_grade_sex(report),
        "inclusive_share_by_county.png": chart_inclusive_share(report, county_names),
        "transfer_flows.png": chart_flows(flows),
        "attendance_trend.png": chart_attendance_trend(report),
    }


def _table(
    title: str, rows: Sequence[Sequence[Any]], header: Sequence[str], *, numeric_from: int = 1
) -> str:
    e = _html.escape

    def cell(i: int, c: Any) -> str:
        cls = ' class="n"' if i >= numeric_from else ""
        return f"<td{cls}>{e(str(c))}</td>"

    head = "".join(f"<th>{e(str(h))}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(cell(i, c) for i, c in enumerate(row)) + "</tr>" for row in rows
    )
    if not rows:
        body = f'<tr><td colspan="{len(header)}" class="none">— 无 none</td></tr>'
    return f"<h2>{e(title)}</h2><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _pct(v: float | None) -> str:
    return "—" if v is None else f"{v * 100:.1f}%"


_CSS = (
    "body{font-family:'Noto Sans CJK SC','Source Han Sans SC','PingFang SC','Microsoft YaHei',"
    "sans-serif;margin:2em auto;max-width:62em;padding:0 1em;color:#222;line-height:1.5}"
    "h1{font-size:1.6em;margin-bottom:.2em}h2{font-size:1.15em;margin:1.6em 0 .3em}"
    ".sub{color:#555;margin-top:0}"
    "dl.figures{display:grid;grid-template-columns:max-content max-content;gap:.2em 1.5em}"
    "dl.figures dt{color:#555}dl.figures dd{margin:0;font-weight:600;text-align:right}"
    ".warning{background:#fff4e5;border:1px solid #f0a020;border-left:6px solid #f0a020;"
    "padding:.6em 1em;margin:1em 0}.font{color:#666;font-size:.9em}"
    "table{border-collapse:collapse;margin:.3em 0 1em}"
    "td,th{border:1px solid #ccc;padding:.25em .7em;text-align:left}td.n{text-align:right;"
    "font-variant-numeric:tabular-nums}td.none{color:#888}"
    "th{background:#f3f3f3}img{max-width:100%;display:block;margin:1em 0;border:1px solid #eee}"
)


def render_html(
    report: Report,
    *,
    images: Mapping[str, bytes],
    flows: FlowMatrix | None = None,
) -> str:
    """A self-contained HTML page: the charts as ``data:`` URIs and every table.

    Names stand next to codes, values carry Chinese and English labels, and
    the page says which font the charts used — with a visible warning when
    no CJK font was found.
    """
    e = _html.escape
    zh_year, en_year = school_year_title(report.school_year)
    place = region_label(report.region)
    if report.kindergarten_code is not None:
        kg = report.kindergarten_code
        place = f"{kg} {report.kindergarten_names.get(kg, '')}".rstrip()
    pop = report.population_3_5
    figures = [
        ("在园幼儿 children on roll", str(report.total)),
        ("普惠性幼儿园占比 inclusive share", _pct(report.inclusive_share)),
        ("公办园占比 public share", _pct(report.public_share)),
        ("3–5岁人口 population aged 3–5", "—" if pop is None else str(pop)),
        ("毛入园率 gross enrolment rate", _pct(report.gross_enrolment_rate)),
        ("农村户籍随迁子女 rural migrant children", str(report.rural_migrants)),
    ]
    parts = [
        "<!DOCTYPE html>",
        '<html lang="zh-CN"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>学籍统计报告 {e(place)} {e(zh_year)}</title>",
        f"<style>{_CSS}</style>",
        "</head><body>",
        f"<h1>学籍统计报告 Student-status report — {e(place)}</h1>",
        f'<p class="sub">{e(zh_year)} / {e(en_year)} · 截至 {e(day_zh(report.as_of))} / '
        f"as of {report.as_of:%d %B %Y} · {e(month_title(report.as_of))}</p>",
    ]
    warning = font_warning()
    if warning is not None and images:
        parts.append(f'<p class="warning" role="alert" id="font-warning">{e(warning)}</p>')
    parts.append('<dl class="figures">')
    parts += [f"<dt>{e(k)}</dt><dd>{e(v)}</dd>" for k, v in figures]
    parts.append("</dl>")
    for name, data in images.items():
        uri = "data:image/png;base64," + base64.b64encode(data).decode("ascii")
        parts.append(f'<img alt="{e(name)}" src="{uri}">')
    if images:
        parts.append(f'<p class="font" id="chart-font">图表字体 chart font: {e(_font_used())}</p>')

    def counts(kind: str, mapping: Mapping[str, int]) -> list[tuple[str, int]]:
        return [(bilingual(kind, k), n) for k, n in mapping.items()]

    child = "幼儿 children"
    if len(report.region) < 2:
        parts.append(
            _table(
                "分省 By province",
                [(region_label(c), n) for c, n in report.by_province.items()],
                ("省 province", child),
            )
        )
    if len(report.region) < 4:
        parts.append(
            _table(
                "分市 By city",
                [(region_label(c), n) for c, n in report.by_city.items()],
                ("市 city", child),
            )
        )
    parts.append(
        _table(
            "分县 By county",
            [(region_label(c), n) for c, n in report.by_county.items()],
            ("县 county", child),
        )
    )
    names = report.kindergarten_names
    parts.append(
        _table(
            "分园 By kindergarten",
            [(k, names.get(k, ""), n) for k, n in report.by_kindergarten.items()],
            ("代码 code", "幼儿园 kindergarten", child),
            numeric_from=2,
        )
    )
    by_type = {k: v for k, v in report.by_type.items() if v or k != "unknown"}
    parts.append(_table("分类型 By type", counts("type", by_type), ("类型 type", child)))
    parts.append(
        _table(
            "分年级分性别 By grade and sex",
            [
                (
                    bilingual("grade", g),
                    report.grade_sex[g].get("M", 0),
                    report.grade_sex[g].get("F", 0),
                    sum(report.grade_sex[g].values()),
                )
                for g in grade_order(report.grade_sex)
            ],
            ("年级 grade", "男 boys", "女 girls", "合计 total"),
        )
    )
    parts.append(_table("分年龄 By age", counts("age", report.by_age), ("年龄 age", child)))
    parts.append(
        _table(
            "随迁子女 By household registration",
            counts("migrant", report.by_migrant),
            ("户籍 registration", child),
        )
    )
    parts.append(
        _table(
            "分县普惠率 Inclusive share by county",
            [(region_label(k), _pct(v)) for k, v in report.inclusive_share_by_county.items()],
            ("县 county", "普惠 share"),
        )
    )
    parts.append(
        _table(
            "学籍变动 Changes in the school year",
            counts("change", report.changes_by_kind),
            ("变动 change", "次数 count"),
        )
    )
    parts.append(
        _table(
            "问题学籍 Problem records",
            [
                (bilingual("problem_kind", k), bilingual("problem_status", s), n)
                for k, v in report.problems.items()
                for s, n in v.items()
            ],
            ("类型 kind", "状态 status", "数量 count"),
            numeric_from=2,
        )
    )
    if flows is not None:
        zh, en = _LEVEL.get(flows.level, ("分县", "by county"))
        parts.append(
            _table(
                f"转园流向 Transfer flows {zh} {en}, {day_zh(flows.start)}～{day_zh(flows.end)}",
                [(region_label(o), region_label(d), n) for o, d, n in flows.rows()],
                ("转出 origin", "转入 destination", "人数 count"),
                numeric_from=2,
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
    """Write the PNG charts and ``index.html`` into ``out_dir`` (created); returns the paths.

    Warns :class:`NoCjkFontWarning` when no CJK font is installed (the page
    shows the same warning).
    """
    warning = font_warning()
    if warning is not None:
        warnings.warn(warning, NoCjkFontWarning, stacklevel=2)
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
