"""Kindergartens and their operating licences (办学许可证): licensed on a day? sound data?

Rules chosen here (docs/reference/domain.md#kindergartens-and-licences):

* A kindergarten is **licensed on day D** when one of its licences was issued on
  or before D, is valid until D or later, is in state ``VALID``, and its latest
  annual inspection (年检) of a year up to ``D.year`` did not fail.  A licence
  with no inspection yet counts as passed.  Children at an unlicensed
  kindergarten get no student status.
* :func:`check_kindergarten` reports every problem of the data at once: the
  10-digit school code (must be a kindergarten code ``11…``), the unified
  social credit code, the county (a current county-level code, or the
  ``xxxx00`` code of a city without counties such as 441900 东莞市), the name,
  and coherent licence dates.

>>> from datetime import date
>>> from studentstatus.domain.model import Kindergarten, Licence, Inspection
>>> from studentstatus.domain.enums import KindergartenType
>>> lic = Licence("教民144030670000001号", "深圳市南山区教育局",
...               date(2020, 1, 1), date(2025, 12, 31),
...               inspections=(Inspection(2023, passed=False),))
>>> kg = Kindergarten("1144000001", "52440106MJ0000122D", "阳光幼儿园", "440306",
...                   KindergartenType.PRIVATE_NONPROFIT, licences=(lic,))
>>> licensed_on(kg, date(2022, 9, 1)), licensed_on(kg, date(2023, 9, 1))
(True, False)
>>> [v.code for v in licence_violations(kg, date(2026, 1, 1))]
['kindergarten_unlicensed']
>>> check_kindergarten(kg)
[]
"""

from __future__ import annotations

from datetime import date

from studentstatus import regions
from studentstatus.domain.enums import LicenceState
from studentstatus.domain.model import Kindergarten, Licence
from studentstatus.domain.names import name_character_violations
from studentstatus.errors import InvalidNumber, Violation
from studentstatus.ids import school_code, uscc

__all__ = [
    "check_kindergarten",
    "licence_problem",
    "licence_violations",
    "licensed_on",
    "region_violations",
]

_NAME_MAX = 100


def licence_problem(licence: Licence, day: date) -> str | None:
    """Why ``licence`` does not cover ``day`` (English, short), or ``None`` when it does.

    >>> from studentstatus.domain.model import Licence
    >>> lic = Licence("1", "局", date(2020, 1, 1), date(2024, 12, 31))
    >>> licence_problem(lic, date(2021, 1, 1)) is None, licence_problem(lic, date(2025, 1, 1))
    (True, 'expired on 2024-12-31')
    """
    if licence.state is not LicenceState.VALID:
        return f"licence is {licence.state.value.lower()}"
    if day < licence.issued:
        return f"not issued before {licence.issued.isoformat()}"
    if day > licence.valid_until:
        return f"expired on {licence.valid_until.isoformat()}"
    past = [i for i in licence.inspections if i.year <= day.year]
    if past:
        latest = max(past, key=lambda i: i.year)
        # several entries for one year: any failure of that year counts
        if any(not i.passed for i in past if i.year == latest.year):
            return f"failed the {latest.year} inspection"
    return None


# The last (kindergarten, day) found licensed: an import checks each row's kindergarten on
# its entry date, then the status machine's REGISTER guard checks it again.  Kindergartens
# are frozen, so the same object is the same licences; one assignment replaces the pair.
_LAST_LICENSED: list[tuple[object, object]] = [(None, None)]


def licence_violations(kg: Kindergarten, day: date) -> list[Violation]:
    """``[]`` when ``kg`` is licensed on ``day``; else one ``kindergarten_unlicensed``.

    The hint says why each licence does not cover the day.

    >>> from studentstatus.domain.model import Kindergarten
    >>> from studentstatus.domain.enums import KindergartenType
    >>> kg = Kindergarten("1111000001", "", "无证园", "110105", KindergartenType.PUBLIC)
    >>> v = licence_violations(kg, date(2024, 9, 1))[0]
    >>> v.code, v.hint
    ('kindergarten_unlicensed', 'no licence on file')
    """
    last = _LAST_LICENSED[0]
    if last[0] is kg and last[1] == day:  # the same (immutable) kindergarten on the same day
        return []
    reasons: list[str] = []
    for licence in kg.licences:
        problem = licence_problem(licence, day)
        if problem is None:
            _LAST_LICENSED[0] = (kg, day)
            return []
        reasons.append(f"{licence.number}: {problem}")
    hint = "; ".join(reasons) if reasons else "no licence on file"
    return [
        Violation(
            "kindergarten_unlicensed",
            "kindergarten",
            f"幼儿园于{day.isoformat()}无有效办学许可证",
            f"the kindergarten has no valid operating licence on {day.isoformat()}",
            hint,
        )
    ]


def licensed_on(kg: Kindergarten, day: date) -> bool:
    """Whether ``kg`` holds a valid, inspected licence on ``day``.

    >>> from studentstatus.domain.model import Kindergarten
    >>> from studentstatus.domain.enums import KindergartenType
    >>> licensed_on(Kindergarten("1111000001", "", "园", "110105", KindergartenType.PUBLIC),
    ...             date(2024, 9, 1))
    False
    """
    return not licence_violations(kg, day)


def region_violations(code: object, field: str = "region_code") -> list[Violation]:
    """Check that ``code`` is usable as a kindergarten's county.

    Accepted: a current county-level code, or the ``xxxx00`` code of a city
    that has no counties (441900 东莞市).  Codes: ``region_unknown``,
    ``region_not_county`` (a province or a city with counties, or a summary
    code), ``region_abolished`` (no longer in use).

    >>> region_violations("441900"), [v.code for v in region_violations("440300")]
    ([], ['region_not_county'])
    >>> [v.code for v in region_violations("110103")], [v.code for v in region_violations("99")]
    (['region_abolished'], ['region_unknown'])
    """
    text = str(code) if code is not None else ""
    region = regions.lookup(text) if len(text) == 6 and text.isdigit() else None
    if region is None:
        return [
            Violation(
                "region_unknown",
                field,
                f"行政区划代码{text[:12]!r}不存在",
                f"unknown region code {text[:12]!r}",
                "use a six-digit GB/T 2260 county code",
            )
        ]
    if text in regions.counties(text[:4]):
        return []
    if region.last_year < 9999:
        return [
            Violation(
                "region_abolished",
                field,
                f"行政区划代码{text}（{region.name}）已撤销",
                f"region code {text} ({region.name}) is no longer in use",
                f"in use until {region.last_year}",
            )
        ]
    return [
        Violation(
            "region_not_county",
            field,
            f"行政区划代码{text}（{region.name}）不是县级区划",
            f"region code {text} ({region.name}) is not a county-level code",
            "use the county (区/县/县级市) code",
        )
    ]


def _number_violation(err: InvalidNumber, code: str, field: str) -> Violation:
    inner = err.violation
    return Violation(
        code,
        field,
        inner.message_zh,
        inner.message_en,
        inner.hint or f"reason: {inner.code}",
    )


def check_kindergarten(kg: Kindergarten) -> list[Violation]:
    """Every problem of a kindergarten's data (not of its licence on a day).

    Codes: ``school_code_invalid``, ``uscc_invalid``, ``region_unknown`` /
    ``region_not_county`` / ``region_abolished``, ``name_required``,
    ``name_too_long``, ``name_characters`` / ``control_character`` (the
    character policy of :mod:`studentstatus.domain.names`), ``licence_dates``
    (a licence valid until before it was issued, or inspected in a year outside
    its validity).

    >>> from studentstatus.domain.model import Kindergarten
    >>> from studentstatus.domain.enums import KindergartenType
    >>> bad = Kindergarten("2111000001", "91110000600037341X", "", "440300",
    ...                    KindergartenType.PUBLIC)
    >>> [v.code for v in check_kindergarten(bad)]
    ['school_code_invalid', 'uscc_invalid', 'region_not_county', 'name_required']
    """
    out: list[Violation] = []
    try:
        school_code.validate(str(kg.school_code), kindergarten=True)
    except InvalidNumber as err:
        out.append(_number_violation(err, "school_code_invalid", "school_code"))
    try:
        uscc.validate(str(kg.uscc))
    except InvalidNumber as err:
        out.append(_number_violation(err, "uscc_invalid", "uscc"))
    out.extend(region_violations(kg.region_code))
    name = str(kg.name).strip()
    if not name:
        out.append(Violation("name_required", "name", "缺少幼儿园名称", "the name is missing"))
    elif len(name) > _NAME_MAX:
        out.append(
            Violation(
                "name_too_long",
                "name",
                f"幼儿园名称超过{_NAME_MAX}个字符",
                f"the name is longer than {_NAME_MAX} characters",
            )
        )
    out.extend(name_character_violations(name, "name", kindergarten=True))
    for i, licence in enumerate(kg.licences):
        out.extend(_licence_date_violations(licence, i))
    return out


def _licence_date_violations(licence: Licence, index: int) -> list[Violation]:
    field = f"licences[{index}]"
    out: list[Violation] = []
    if licence.valid_until < licence.issued:
        out.append(
            Violation(
                "licence_dates",
                field,
                f"许可证{licence.number}有效期截止日早于发证日",
                f"licence {licence.number} expires before it was issued",
                f"issued {licence.issued.isoformat()}, valid until "
                f"{licence.valid_until.isoformat()}",
            )
        )
    bad_years = sorted(
        {
            i.year
            for i in licence.inspections
            if not licence.issued.year <= i.year <= licence.valid_until.year
        }
    )
    if bad_years:
        out.append(
            Violation(
                "licence_dates",
                field,
                f"许可证{licence.number}的年检年份不在有效期内",
                f"licence {licence.number} has inspections outside its validity",
                "years: " + ", ".join(str(y) for y in bad_years),
            )
        )
    return out
