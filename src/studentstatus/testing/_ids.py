"""Hypothesis strategies for identity, organisation and school numbers.

Every strategy here generates numbers that the matching validator accepts
(strictly), except :func:`invalid_resident_ids`, whose numbers it rejects.
"""

from __future__ import annotations

import datetime
import functools
from collections.abc import Sequence

from hypothesis import strategies as st

from studentstatus import regions
from studentstatus.ids import resident, school_code, uscc
from studentstatus.ids._mod11 import check_char

__all__ = [
    "foreign_pr_numbers",
    "hk_mo_travel_numbers",
    "invalid_resident_ids",
    "mobile_phones",
    "passport_numbers",
    "region_codes",
    "residence_permits",
    "resident_ids",
    "school_codes",
    "tw_travel_numbers",
    "usccs",
]

_MOBILE_PREFIXES = (
    "130",
    "133",
    "135",
    "138",
    "139",
    "150",
    "158",
    "166",
    "177",
    "186",
    "189",
    "199",
)


def _digits(n: int) -> st.SearchStrategy[str]:
    return st.text("0123456789", min_size=n, max_size=n)


def _ymd(d: datetime.date) -> str:
    return f"{d.year:04d}{d.month:02d}{d.day:02d}"


def region_codes(level: str = "county", valid_in_year: int | None = None) -> st.SearchStrategy[str]:
    """Known GB/T 2260 codes of a level (``province``/``city``/``county``).

    Counties are the current ones (:func:`studentstatus.regions.counties`) unless
    ``valid_in_year`` asks for codes in use that year.
    """
    if level == "county" and valid_in_year is None:
        return st.sampled_from(regions.counties(""))
    return st.sampled_from(_codes(level, valid_in_year))


@functools.cache
def _codes(level: str, valid_in_year: int | None) -> tuple[str, ...]:
    return tuple(
        sorted(
            code
            for code, r in _all_regions().items()
            if r.level == level
            and code not in regions.PERMIT_CODES
            and (valid_in_year is None or regions.valid_in(code, valid_in_year))
        )
    )


@functools.cache
def _all_regions() -> dict[str, regions.Region]:
    out: dict[str, regions.Region] = {}
    for code in regions.id_address_table():
        r = regions.lookup(code)
        if r is not None:
            out[code] = r
    return out


@st.composite
def _resident(
    draw: st.DrawFn,
    codes: Sequence[str] | None,
    min_birth: datetime.date,
    max_birth: datetime.date,
    sex: str | None,
) -> str:
    birth = draw(st.dates(min_birth, max_birth))
    code = draw(region_codes("county")) if codes is None else draw(st.sampled_from(list(codes)))
    seq = draw(st.integers(0, 99)) * 10 + draw(
        st.sampled_from({None: range(10), "M": range(1, 10, 2), "F": range(0, 10, 2)}[sex])
    )
    body = f"{code}{_ymd(birth)}{seq:03d}"
    return body + check_char(body)


def resident_ids(
    regions: Sequence[str] | None = None,
    min_birth: datetime.date = datetime.date(1950, 1, 1),
    max_birth: datetime.date = datetime.date(2024, 12, 31),
    sex: str | None = None,
) -> st.SearchStrategy[str]:
    """Valid 18-character citizen numbers over current county codes (or ``regions``)."""
    return _resident(regions, min_birth, max_birth, sex)


def residence_permits(kind: str | None = None) -> st.SearchStrategy[str]:
    """Valid HK/Macau/Taiwan residence-permit numbers (``kind`` = hk/mo/tw, or any)."""
    codes = {
        "hk": ["810000"],
        "mo": ["820000"],
        "tw": ["830000"],
        None: list(resident.PERMIT_KINDS),
    }
    return _resident(codes[kind], datetime.date(1930, 1, 1), datetime.date(2024, 12, 31), None)


@st.composite
def _foreign_2023(draw: st.DrawFn) -> str:
    pp = draw(st.sampled_from(["11", "31", "44", "51", "32"]))
    nat = draw(st.sampled_from(["840", "392", "410", "276", "250", "826", "643", "036"]))
    birth = draw(st.dates(datetime.date(1940, 1, 1), datetime.date(2024, 12, 31)))
    body = f"9{pp}{nat}{_ymd(birth)}{draw(_digits(3))}"
    return body + check_char(body)


@st.composite
def _foreign_2004(draw: st.DrawFn) -> str:
    from studentstatus.ids.foreign_pr import check_char_2004

    nat = draw(st.sampled_from(["USA", "JPN", "KOR", "DEU", "FRA", "GBR", "CAN", "AUS"]))
    city = draw(st.sampled_from(["1100", "3100", "4401", "4403", "3201"]))
    birth = draw(st.dates(datetime.date(1940, 1, 1), datetime.date(1999, 12, 31)))
    body = f"{nat}{city}{_ymd(birth)[2:]}{draw(_digits(1))}"
    return body + check_char_2004(body)


def foreign_pr_numbers(version: str | None = None) -> st.SearchStrategy[str]:
    """Valid foreign permanent-residence numbers (``version`` ``'2023'``/``'2004'``/any)."""
    if version == "2023":
        return _foreign_2023()
    if version == "2004":
        return _foreign_2004()
    return st.one_of(_foreign_2023(), _foreign_2004())


def hk_mo_travel_numbers() -> st.SearchStrategy[str]:
    """Valid 回乡证 numbers (H/M + 8 digits, optionally + 2-digit issue count)."""
    return st.builds(
        lambda p, d, c: p + d + c,
        st.sampled_from("HM"),
        _digits(8),
        st.sampled_from(["", "00", "01", "02"]),
    )


def tw_travel_numbers() -> st.SearchStrategy[str]:
    """Valid 台胞证 numbers (8 digits)."""
    return _digits(8)


def passport_numbers() -> st.SearchStrategy[str]:
    """Passport-like numbers (PRC ``E``/``G`` + 8 digits, ``EA`` + 7 digits, or generic)."""
    return st.one_of(
        st.builds(lambda p, d: p + d, st.sampled_from(["E", "G"]), _digits(8)),
        st.builds(lambda p, d: "E" + p + d, st.sampled_from("ABCDEFGH"), _digits(7)),
        st.text("ABCDEFGHJKLMNPQRSTUVWXYZ0123456789", min_size=6, max_size=12),
    )


@st.composite
def _uscc(draw: st.DrawFn) -> str:
    head = draw(st.sampled_from(["11", "12", "51", "52", "53", "91", "92", "93", "A1", "N2", "Y1"]))
    region = draw(region_codes("county"))
    org8 = draw(st.text("0123456789ABCDEFGHJKLMNPQRTUWXY", min_size=8, max_size=8))
    org = org8 + uscc.org_check_char(org8)
    body = head + region + org
    return body + uscc.check_char(body)


def usccs() -> st.SearchStrategy[str]:
    """Valid unified social credit codes (including A/N/Y authorities)."""
    return _uscc()


def school_codes(province: str | None = None) -> st.SearchStrategy[str]:
    """Valid kindergarten school codes (type 11), optionally in a province (2 digits)."""
    provinces = [province] if province else sorted(school_code.PROVINCES)
    return st.builds(lambda p, d: "11" + p + d, st.sampled_from(provinces), _digits(6))


def mobile_phones() -> st.SearchStrategy[str]:
    """Valid mainland mobile numbers (11 digits, national form)."""
    return st.builds(lambda p, d: p + d, st.sampled_from(_MOBILE_PREFIXES), _digits(8))


@st.composite
def invalid_resident_ids(draw: st.DrawFn) -> str:
    """Numbers :func:`studentstatus.ids.resident.is_valid` rejects (strictly).

    Corruptions: single-digit substitution, adjacent transposition of distinct
    digits, impossible date (re-checked), unknown region (re-checked), wrong
    length, junk characters.
    """
    good = draw(resident_ids())
    how = draw(st.sampled_from(["substitute", "transpose", "date", "region", "length", "junk"]))
    if how == "substitute":
        i = draw(st.integers(0, 16))
        d = str((int(good[i]) + draw(st.integers(1, 9))) % 10)
        bad = good[:i] + d + good[i + 1 :]
    elif how == "transpose":
        i = draw(st.integers(0, 15).filter(lambda j: good[j] != good[j + 1]))
        bad = good[:i] + good[i + 1] + good[i] + good[i + 2 :]
    elif how == "date":
        body = good[:10] + draw(st.sampled_from(["13", "00"])) + good[12:17]
        bad = body + check_char(body)
    elif how == "region":
        body = draw(st.sampled_from(["000000", "990000", "840000", "123456"])) + good[6:17]
        bad = body + check_char(body)
    elif how == "length":
        bad = good[: draw(st.sampled_from([0, 1, 10, 16, 17]))] + draw(st.sampled_from(["", "00"]))
        if len(bad) == 18:
            bad = bad[:17]
    else:
        i = draw(st.integers(0, 17))
        bad = good[:i] + draw(st.sampled_from(["A", "?", "一", "Z"])) + good[i + 1 :]
    assert not resident.is_valid(bad)
    return bad
