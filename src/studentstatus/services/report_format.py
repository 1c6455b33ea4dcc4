"""Reports people read: names next to codes, bilingual labels, titles and aligned text tables.

Everything a report shows is stored as codes (``44``, ``4403``, ``440305``,
``1144031527``, ``JUNIOR``, ``private_inclusive``); this module turns them
into what a reader expects, for the text report of the CLI
(:func:`format_report`), the HTML page and the charts
(:mod:`studentstatus.services.charts`):

* region names from the GB/T 2260 table (:mod:`studentstatus.regions`) for
  a province prefix, a city prefix or a county code (:func:`region_name`);
* grades in their natural order 托班, 小班, 中班, 大班 (:func:`grade_order`);
* every enumerated value with its Chinese and English label (:func:`label`);
* dates and periods as "2026年11月 / November 2026" (:func:`month_title`,
  :func:`day_zh`, :func:`school_year_title`);
* plain-text tables whose columns line up with Chinese text, which is twice
  as wide as Latin text in a terminal (:func:`text_table`).

>>> region_name("44"), region_name("4403"), region_name("440305")
('广东省', '深圳市', '南山区')
>>> label("grade", "JUNIOR")
('小班', 'junior class')
>>> month_title(date(2026, 11, 30))
'2026年11月 / November 2026'
>>> grade_order(["SENIOR", "NURSERY", "None", "JUNIOR", "MIDDLE"])
['NURSERY', 'JUNIOR', 'MIDDLE', 'SENIOR', 'None']
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from datetime import date
from typing import Any

from studentstatus import regions
from studentstatus.domain.enums import ChangeKind, Grade, ProblemKind, ProblemStatus, Sex
from studentstatus.domain.migration import MigrantStatus
from studentstatus.services.flows import FlowMatrix
from studentstatus.services.reports import Report

__all__ = [
    "bilingual",
    "day_zh",
    "format_flows",
    "format_report",
    "grade_order",
    "label",
    "month_title",
    "region_label",
    "region_name",
    "report_tables",
    "school_year_title",
    "text_table",
    "yes_no",
]

_MONTHS = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
]

_EN: dict[str, dict[str, str]] = {
    "grade": {
        "NURSERY": "nursery class",
        "JUNIOR": "junior class",
        "MIDDLE": "middle class",
        "SENIOR": "senior class",
    },
    "sex": {"M": "boys", "F": "girls"},
    "type": {
        "public": "public",
        "private_inclusive": "private, inclusive",
        "private_other": "private, other",
        "unknown": "unknown",
    },
    "migrant": {
        "LOCAL": "local (same county)",
        "OTHER_COUNTY_SAME_PROVINCE": "other county, same province",
        "OTHER_PROVINCE": "other province",
        "UNKNOWN": "unknown",
    },
    "problem_status": {
        "OPEN": "open",
        "EVIDENCE_SUBMITTED": "evidence submitted",
        "RESOLVED": "resolved",
    },
    "problem_kind": {
        "DUPLICATE_ID": "duplicate ID number",
        "SUSPECTED_DUPLICATE": "same name, sex and birth date",
        "INVALID_ID": "invalid ID number",
        "NOT_FOUND": "registry: number not found",
        "NAME_MISMATCH": "registry: name does not match",
        "INFO_MISMATCH": "registry: sex or birth date differs",
        "REGISTRY_DECEASED": "registry: deceased or cancelled",
    },
    "attendance": {"present": "present", "absent": "absent"},
}

_ZH: dict[str, dict[str, str]] = {
    "grade": {g.value: g.label_zh for g in Grade},
    "sex": {"M": "男", "F": "女"},
    "type": {
        "public": "公办",
        "private_inclusive": "民办普惠",
        "private_other": "民办非普惠",
        "unknown": "不明",
    },
    "migrant": {m.value: m.label_zh for m in MigrantStatus},
    "change": {c.value: c.label_zh for c in ChangeKind},
    "problem_kind": {p.value: p.label_zh for p in ProblemKind},
    "problem_status": {p.value: p.label_zh for p in ProblemStatus},
    "attendance": {"present": "出勤", "absent": "缺勤"},
}
assert set(_ZH["sex"]) == {s.value for s in Sex}

_UNKNOWN = ("未填", "not given")


def label(kind: str, value: object) -> tuple[str, str]:
    """Chinese and English label of ``value`` of a report dimension.

    ``kind`` is one of ``grade``, ``sex``, ``type``, ``migrant``, ``change``,
    ``problem_kind``, ``problem_status``, ``attendance`` or ``age``.  A value
    the table does not know keeps its code in both slots; ``None`` (or the
    text ``"None"``, as the report's keys store it) is "未填 / not given".

    >>> label("type", "private_inclusive")
    ('民办普惠', 'private, inclusive')
    >>> label("change", "TRANSFER")
    ('转园', 'transfer')
    >>> label("age", "4"), label("grade", None), label("sex", "X")
    (('4岁', 'age 4'), ('未填', 'not given'), ('X', 'X'))
    """
    if value is None or value == "None":
        return _UNKNOWN
    text = str(value)
    if kind == "age":
        return ("不明", "unknown") if text == "unknown" else (f"{text}岁", f"age {text}")
    zh = _ZH.get(kind, {}).get(text)
    if zh is None:
        return text, text
    en = _EN.get(kind, {}).get(text) or text.lower().replace("_", " ")
    return zh, en


def bilingual(kind: str, value: object) -> str:
    """``"中文 English"`` for ``value`` (see :func:`label`).

    >>> bilingual("grade", "SENIOR")
    '大班 senior class'
    """
    zh, en = label(kind, value)
    return zh if zh == en else f"{zh} {en}"


def yes_no(value: object) -> str:
    """``是`` or ``否`` for a flag (spreadsheet cells for Chinese readers).

    >>> yes_no(True), yes_no(False)
    ('是', '否')
    """
    return "是" if value else "否"


def region_name(code: str) -> str | None:
    """The name of a province prefix (2 digits), city prefix (4) or code (6), else ``None``.

    >>> region_name("11"), region_name("1101"), region_name("110105"), region_name("?")
    ('北京市', '北京市市辖区', '朝阳区', None)
    """
    if not code.isdigit():
        return None
    full = {2: code + "0000", 4: code + "00", 6: code}.get(len(code))
    name = regions.name(full) if full is not None else None
    if name in ("市辖区", "县") and full is not None:  # a municipality's summary codes
        return f"{regions.name(full[:2] + '0000') or ''}{name}"
    return name


def region_label(code: str, *, names: bool = True) -> str:
    """``"4403 深圳市"``: the code and, when known (and ``names``), the name.

    ``""`` is the whole country and ``"?"`` a region that could not be found.

    >>> region_label("4403"), region_label(""), region_label("?"), region_label("99")
    ('4403 深圳市', '全国', '? 不明', '99')
    >>> region_label("4403", names=False)
    '4403'
    """
    if code == "":
        return "全国" if names else "all"
    if code == "?":
        return "? 不明" if names else "? unknown"
    name = region_name(code) if names else None
    return f"{code} {name}" if name else code


def grade_order(keys: Iterable[str]) -> list[str]:
    """Grade codes in their natural order (托班, 小班, 中班, 大班), anything else after.

    >>> grade_order(["MIDDLE", "JUNIOR"])
    ['JUNIOR', 'MIDDLE']
    """
    rank = {g.value: i for i, g in enumerate(Grade)}
    return sorted(keys, key=lambda k: (rank.get(k, len(rank)), str(k)))


def month_title(day: date) -> str:
    """``"2026年11月 / November 2026"``.

    >>> month_title(date(2027, 1, 5))
    '2027年1月 / January 2027'
    """
    return f"{day.year}年{day.month}月 / {_MONTHS[day.month - 1]} {day.year}"


def day_zh(day: date) -> str:
    """``"2026年12月7日"``.

    >>> day_zh(date(2026, 12, 7))
    '2026年12月7日'
    """
    return f"{day.year}年{day.month}月{day.day}日"


def school_year_title(school_year: int) -> tuple[str, str]:
    """Chinese and English name of a school year.

    >>> school_year_title(2026)
    ('2026—2027学年', 'school year 2026–27')
    """
    return (
        f"{school_year}—{school_year + 1}学年",
        f"school year {school_year}–{(school_year + 1) % 100:02d}",
    )


def _width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def _pad(text: str, width: int, right: bool) -> str:
    fill = " " * max(0, width - _width(text))
    return fill + text if right else text + fill


def text_table(
    header: Sequence[str], rows: Iterable[Sequence[Any]], *, indent: str = "  "
) -> list[str]:
    """Lines of a plain-text table: columns aligned (Chinese counts double), numbers right.

    >>> print("\\n".join(text_table(["年级 grade", "幼儿"], [["小班", 12], ["中班 middle", 3]])))
      年级 grade   幼儿
      -----------  ----
      小班           12
      中班 middle     3
    """
    body = [[c if isinstance(c, str) else _cell(c) for c in row] for row in rows]
    numeric = _numeric_columns(header, body)
    widths = [_width(h) for h in header]
    for row in body:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], _width(cell))
    lines = [indent + "  ".join(_pad(h, w, False) for h, w in zip(header, widths)).rstrip()]
    lines.append(indent + "  ".join("-" * w for w in widths))
    for row in body:
        cells = [_pad(c, w, numeric[i]) for i, (c, w) in enumerate(zip(row, widths))]
        lines.append(indent + "  ".join(cells).rstrip())
    return lines


def _cell(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return yes_no(value)
    return str(value)


def _numeric_columns(header: Sequence[str], body: list[list[str]]) -> list[bool]:
    out = []
    for i in range(len(header)):
        cells = [row[i] for row in body if i < len(row)]
        out.append(bool(cells) and all(_is_number(c) for c in cells))
    return out


def _is_number(text: str) -> bool:
    t = text.rstrip("%").replace(",", "").replace(".", "", 1)
    return t.isdigit() or text == "—"


def _pct(v: float | None) -> str:
    return "—" if v is None else f"{v * 100:.1f}%"


def _counts(
    kind: str, mapping: Mapping[str, int], order: Sequence[str] | None = None
) -> list[list[Any]]:
    keys = list(order) if order is not None else list(mapping)
    return [[bilingual(kind, k), mapping[k]] for k in keys if k in mapping]


def format_flows(flows: FlowMatrix, *, names: bool = True) -> list[str]:
    """The transfer flows as text lines: a heading and an aligned table (names next to codes).

    >>> from studentstatus.services.flows import FlowMatrix
    >>> m = FlowMatrix("city", date(2026, 9, 1), date(2026, 9, 30), {"4419": {"4403": 7}})
    >>> print("\\n".join(format_flows(m)))
    转园流向 transfers 2026年9月1日～2026年9月30日 (city 市级): 7
      转出 origin  转入 destination  人数 count
      -----------  ----------------  ----------
      4419 东莞市  4403 深圳市                7
    """
    level_zh = {"province": "省级", "city": "市级", "county": "县级"}.get(flows.level, "")
    head = (
        f"转园流向 transfers {day_zh(flows.start)}～{day_zh(flows.end)} "
        f"({flows.level} {level_zh}): {flows.total}"
    )
    rows: list[list[Any]] = [
        [region_label(o, names=names), region_label(d, names=names), n] for o, d, n in flows.rows()
    ]
    if not rows:
        return [head]
    return [head, *text_table(("转出 origin", "转入 destination", "人数 count"), rows)]


def report_tables(report: Report) -> list[tuple[str, tuple[str, ...], list[list[Any]]]]:
    """The report's tables ``(title, header, rows)``, in the order :func:`format_report`
    prints them, the key figures first: what a workbook export of the report holds
    (``studentstatus report --xlsx``).

    >>> from studentstatus.services.reports import DIMENSIONS, assemble
    >>> rep = assemble({**{d: {} for d in DIMENSIONS}, "grade_sex": {("SENIOR", "F"): 2}},
    ...                {}, {}, {}, region="11", school_year=2026, as_of=date(2026, 11, 30))
    >>> tables = report_tables(rep)
    >>> tables[0][0], tables[0][2][0]
    ('主要指标 key figures', ['在园幼儿 children on roll', 0])
    >>> [t for t in tables if t[0] == "分年级分性别 by grade and sex"][0][2]
    [['大班 senior class', 0, 2, 2]]
    """
    pop = report.population_3_5
    figures: list[list[Any]] = [
        ["在园幼儿 children on roll", report.total],
        ["普惠性幼儿园占比 inclusive share", _pct(report.inclusive_share)],
        ["公办园占比 public share", _pct(report.public_share)],
        ["3–5岁人口 population aged 3–5", "—" if pop is None else str(pop)],
        ["毛入园率 gross enrolment rate", _pct(report.gross_enrolment_rate)],
        ["农村户籍随迁子女 rural migrant children", report.rural_migrants],
    ]
    tables: list[tuple[str, tuple[str, ...], list[list[Any]]]] = [
        ("主要指标 key figures", ("指标 figure", "数值 value"), figures)
    ]

    def section(title: str, header: Sequence[str], rows: list[Any]) -> None:
        tables.append((title, tuple(header), [list(r) for r in rows]))

    count = "幼儿 children"
    if not report.region and report.by_province:
        section(
            "分省 by province",
            ("省 province", count),
            [[region_label(c), n] for c, n in report.by_province.items()],
        )
    if len(report.region) < 4 and report.by_city:
        section(
            "分市 by city",
            ("市 city", count),
            [[region_label(c), n] for c, n in report.by_city.items()],
        )
    section(
        "分县 by county",
        ("县 county", count),
        [[region_label(c), n] for c, n in report.by_county.items()],
    )
    names = report.kindergarten_names
    section(
        "分园 by kindergarten",
        ("幼儿园 kindergarten", count),
        [[f"{k} {names.get(k, '')}".rstrip(), n] for k, n in report.by_kindergarten.items()],
    )
    section(
        "分类型 by kindergarten type",
        ("类型 type", count),
        _counts("type", {k: v for k, v in report.by_type.items() if v or k != "unknown"}),
    )
    grades = grade_order(report.grade_sex)
    section(
        "分年级分性别 by grade and sex",
        ("年级 grade", "男 boys", "女 girls", "合计 total"),
        [
            [
                bilingual("grade", g),
                report.grade_sex[g].get("M", 0),
                report.grade_sex[g].get("F", 0),
                sum(report.grade_sex[g].values()),
            ]
            for g in grades
        ],
    )
    section("分年龄 by age", ("年龄 age", count), _counts("age", report.by_age))
    section(
        "随迁子女 by household registration",
        ("户籍 registration", count),
        _counts("migrant", report.by_migrant),
    )
    section(
        "学籍变动 changes in the school year",
        ("变动 change", "次数 count"),
        _counts("change", report.changes_by_kind),
    )
    section(
        "问题学籍 problem records",
        ("类型 kind", "状态 status", "数量 count"),
        [
            [bilingual("problem_kind", k), bilingual("problem_status", s), n]
            for k, by_status in report.problems.items()
            for s, n in by_status.items()
        ],
    )
    if report.stuck:
        from studentstatus.domain.problems import next_step

        section(
            "未发学籍号 records without a national number",
            ("原因 reason", "下一步 next (who)", "数量 count"),
            [
                [f"{next_step(r).label_zh} {next_step(r).label_en}", next_step(r).who, n]
                for r, n in report.stuck.items()
            ],
        )
    return tables


def format_report(report: Report, *, flows: FlowMatrix | None = None) -> str:
    """The report as text: a heading, key figures, then one aligned table per dimension.

    Region and kindergarten names stand next to their codes, grades come in
    their natural order and every value has its Chinese and English label;
    no Python mapping is ever printed.

    >>> from studentstatus.services.reports import DIMENSIONS, assemble
    >>> rep = assemble({**{d: {} for d in DIMENSIONS},
    ...                 "grade_sex": {("SENIOR", "F"): 2, ("JUNIOR", "M"): 1}},
    ...                {}, {}, {}, region="11", school_year=2026, as_of=date(2026, 11, 30))
    >>> text = format_report(rep)
    >>> print(text.splitlines()[0])
    学籍统计报告 Student-status report: 11 北京市, 2026—2027学年 school year 2026–27
    >>> text.index("小班 junior class") < text.index("大班 senior class")
    True
    >>> "{" in text
    False
    """
    zh_year, en_year = school_year_title(report.school_year)
    out = [
        f"学籍统计报告 Student-status report: {region_label(report.region)}, {zh_year} {en_year}",
        f"截至 as of {day_zh(report.as_of)} ({report.as_of.isoformat()})",
        "",
    ]
    if report.kindergarten_code is not None:
        kg = report.kindergarten_code
        name = report.kindergarten_names.get(kg, "")
        out.insert(1, f"幼儿园 kindergarten: {kg} {name}".rstrip())
    tables = report_tables(report)
    _, figure_header, figures = tables[0]
    out += text_table(figure_header, figures)
    for title, header, rows in tables[1:]:
        out.append("")
        out.append(title)
        out.extend(text_table(header, rows) if rows else ["  —"])
    if flows is not None:
        out.append("")
        out.extend(format_flows(flows))
    return "\n".join(out)
