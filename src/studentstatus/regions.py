"""GB/T 2260 administrative-division codes (行政区划代码), current and historical.

A six-digit code reads ``PP CC DD``: ``PP0000`` is a province, ``PPCC00`` a
prefecture-level city, anything else a county-level unit (including the
``PP90DD`` units administered directly by a province and the ``PPCC01``
"市辖区" summary codes of older lists).

The registry is built lazily, at first use, from the data file that the
installed python-stdnum ships (``stdnum/cn/loc.dat``, scraped from the
Chinese Wikipedia tables of every MCA list 1980–2025).  Each code carries one
or more names with the years they were in use (``[1992-]东丽区``); a name
without a year range is treated as always in use.  Nothing is copied into
this repository: a newer python-stdnum brings newer data.

One code is added by hand: ``830000`` (Taiwan residents' residence permit,
absent from ``loc.dat``); ``810000``/``820000`` (HK, Macau) and ``710000``
(台湾省) come from the file.

More information:

* GB/T 2260-2007 and the yearly MCA lists 《县级以上行政区划代码》
* https://github.com/arthurdejong/python-stdnum/blob/master/stdnum/cn/loc.dat

>>> lookup("110103").name
'崇文区'
>>> valid_in("110103", 2005), valid_in("110103", 2015)
(True, False)
>>> not_abolished_before("120110", 1985), name("120110")
(True, '东丽区')
>>> [r.code for r in lookup("110105").chain()]
['110000', '110100', '110105']
>>> contains("44", "441900"), contains("440300", "440306"), contains("4403", "441900")
(True, True, False)
>>> province_of("440306"), city_of("440306")
('440000', '440300')
>>> is_known("830000"), is_known("999999")
(True, False)
"""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping
from importlib import resources
from typing import Literal

import attrs

__all__ = [
    "Level",
    "Period",
    "Region",
    "city_of",
    "contains",
    "counties",
    "id_address_table",
    "is_known",
    "lookup",
    "name",
    "not_abolished_before",
    "province_of",
    "valid_in",
]

Level = Literal["province", "city", "county"]

#: Summary codes (not counties) that still occur as address codes in real IDs.
SUMMARY_SUFFIXES = ("01", "20", "02", "11")

#: Permit prefixes: never mainland counties.
PERMIT_CODES = ("810000", "820000", "830000")

_OPEN = 9999  # "still in use"
_NOT_COUNTIES = frozenset(
    {"市辖区", "省直辖县级行政单位", "自治区直辖县级行政单位", "县", "市区", "郊区"}
)


@attrs.frozen
class Period:
    """One name of a code and the years (inclusive) it was in use.

    ``start``/``end`` of ``None`` mean "since the first list" / "still in use".

    >>> Period("东丽区", 1992, None).covers(2000)
    True
    """

    name: str
    start: int | None = None
    end: int | None = None

    def covers(self, year: int) -> bool:
        """Whether ``year`` lies within this period.

        >>> Period("东郊区", None, 1991).covers(1992)
        False
        """
        return (self.start is None or year >= self.start) and (self.end is None or year <= self.end)


@attrs.frozen
class Region:
    """One GB/T 2260 code with its names over time.

    >>> r = lookup("120110")
    >>> r.level, r.parent, [p.name for p in r.names]
    ('county', '120100', ['东郊区', '东丽区'])
    """

    code: str
    name: str
    names: tuple[Period, ...]
    level: Level
    parent: str | None

    def chain(self) -> tuple[Region, ...]:
        """Province → city → county chain ending with this region (known ancestors only).

        >>> [r.name for r in lookup("441900").chain()]
        ['广东省', '东莞市']
        """
        out: list[Region] = [self]
        parent = self.parent
        while parent is not None:
            region = lookup(parent)
            if region is None:
                break
            out.append(region)
            parent = region.parent
        return tuple(reversed(out))

    @property
    def last_year(self) -> int:
        """Last year the code was in use (9999 when still in use).

        >>> lookup("110103").last_year
        2010
        """
        return max(_OPEN if p.end is None else p.end for p in self.names)


_ENTRY = re.compile(r"\[(\d*)-(\d*)\]([^,\[]*)")
_LINE = re.compile(r'^(\s*)(\d+) (\w+)="([^"]*)"')


def _periods(text: str) -> tuple[Period, ...]:
    if not text.startswith("["):
        return (Period(text.strip()),)
    return tuple(
        Period(
            m.group(3).strip(),
            int(m.group(1)) if m.group(1) else None,
            int(m.group(2)) if m.group(2) else None,
        )
        for m in _ENTRY.finditer(text)
    )


def _level(code: str) -> Level:
    if code.endswith("0000"):
        return "province"
    if code.endswith("00"):
        return "city"
    return "county"


class _Registry:
    def __init__(self, raw: dict[str, tuple[Period, ...]]) -> None:
        self.regions: dict[str, Region] = {}
        for code, periods in raw.items():
            self.regions[code] = Region(code, _latest(periods), periods, _level(code), None)
        for code, region in list(self.regions.items()):
            self.regions[code] = attrs.evolve(region, parent=self._parent(code))
        # address-code table for identity numbers: code -> last year as 4-char string
        table: dict[str, str] = {}
        for code, region in self.regions.items():
            if code in PERMIT_CODES:
                continue
            table[code] = f"{region.last_year:04d}"
        for code, region in self.regions.items():
            if region.level == "city" and code not in PERMIT_CODES:
                for suffix in SUMMARY_SUFFIXES:
                    table.setdefault(code[:4] + suffix, f"{region.last_year:04d}")
        self.id_table: dict[str, str] = table
        self._counties: dict[str, tuple[str, ...]] = {}

    def counties(self, prefix: str) -> tuple[str, ...]:
        cached = self._counties.get(prefix)
        if cached is None:
            current = [
                code
                for code, r in self.regions.items()
                if code.startswith(prefix)
                and code not in PERMIT_CODES
                and r.last_year == _OPEN
                and r.name not in _NOT_COUNTIES
                and r.level != "province"
            ]
            with_children = {c[:4] for c in current if _level(c) == "county"}
            cached = tuple(
                sorted(c for c in current if _level(c) == "county" or c[:4] not in with_children)
            )
            self._counties[prefix] = cached
        return cached

    def _parent(self, code: str) -> str | None:
        level = _level(code)
        if level == "province":
            return None
        if level == "county" and code[:4] + "00" in self.regions:
            return code[:4] + "00"
        province = code[:2] + "0000"
        return province if province in self.regions else None


def _latest(periods: tuple[Period, ...]) -> str:
    best = periods[0]
    for p in periods[1:]:
        if (_OPEN if p.end is None else p.end) >= (_OPEN if best.end is None else best.end):
            best = p
    return best.name


_lock = threading.Lock()
_registry: _Registry | None = None


def _load() -> _Registry:
    global _registry
    with _lock:
        if _registry is None:
            text = resources.files("stdnum.cn").joinpath("loc.dat").read_text(encoding="utf-8")
            raw: dict[str, tuple[Period, ...]] = {}
            province = ""
            for line in text.splitlines():
                m = _LINE.match(line)
                if m is None:
                    continue
                indent, digits, key, value = m.groups()
                if not indent and key == "province":
                    province = digits
                    raw.setdefault(province + "0000", (Period(value),))
                elif indent and key == "county" and province:
                    raw[province + digits] = _periods(value)
            raw.setdefault("830000", (Period("台湾地区（居住证）"),))
            _registry = _Registry(raw)
        return _registry


def _reg() -> _Registry:
    return _registry if _registry is not None else _load()


def id_address_table() -> Mapping[str, str]:
    """Address codes acceptable in a mainland identity number → last year of use.

    The year is a four-character string (``'9999'`` = still in use), so a
    birth year taken from the number compares as text.  Includes every code
    of the registry (except the permit codes 810000/820000/830000) and the
    summary codes ``xxxx01``/``xxxx20``/``xxxx02``/``xxxx11`` of every known
    prefecture ``xxxx00``, which inherit the prefecture's years.

    >>> id_address_table()["110103"], id_address_table()["441900"]
    ('2010', '9999')
    >>> "810000" in id_address_table()
    False
    """
    return _reg().id_table


def lookup(code: str) -> Region | None:
    """Return the region for a six-digit code, or ``None`` when unknown.

    >>> lookup("441900").name, lookup("441900").level
    ('东莞市', 'city')
    >>> lookup("000000") is None
    True
    """
    return _reg().regions.get(code)


def is_known(code: str) -> bool:
    """Whether the code appears in the registry at all (any year).

    >>> is_known("110103")
    True
    """
    return lookup(code) is not None


def valid_in(code: str, year: int) -> bool:
    """Whether the code was in use in ``year``.

    >>> valid_in("120221", 2010), valid_in("120221", 2020)
    (True, False)
    """
    region = lookup(code)
    return region is not None and any(p.covers(year) for p in region.names)


def not_abolished_before(code: str, year: int) -> bool:
    """Whether the code is known and still in use in or after ``year``.

    A code created after ``year`` passes (it may have been assigned at a
    later household registration).

    >>> not_abolished_before("110103", 2005), not_abolished_before("110103", 2015)
    (True, False)
    >>> not_abolished_before("500157", 2000)
    True
    """
    region = lookup(code)
    return region is not None and region.last_year >= year


def province_of(code: str) -> str:
    """The province code ``PP0000`` of a code.

    >>> province_of("110105")
    '110000'
    """
    return code[:2] + "0000"


def city_of(code: str) -> str | None:
    """The prefecture code ``PPCC00`` of a county, or ``None`` for provinces
    and for units directly under a province without a known prefecture.

    >>> city_of("110105"), city_of("110000")
    ('110100', None)
    """
    if code.endswith("0000"):
        return None
    city = code[:4] + "00"
    return city if city in _reg().regions else None


def name(code: str) -> str | None:
    """The latest name of a code, or ``None`` when unknown.

    >>> name("110103")
    '崇文区'
    """
    region = lookup(code)
    return region.name if region is not None else None


def _scope_prefix(scope: str) -> str:
    if len(scope) == 6:
        if scope.endswith("0000"):
            return scope[:2]
        if scope.endswith("00"):
            return scope[:4]
    return scope


def contains(scope: str, code: str) -> bool:
    """Whether ``code`` lies inside ``scope``.

    ``scope`` is a two-digit province prefix, a four-digit city prefix, a
    six-digit ``PP0000``/``PPCC00`` code (same as the prefix) or a six-digit
    county code (then only that code matches).

    >>> contains("110000", "110105"), contains("1101", "110105"), contains("110105", "110106")
    (True, True, False)
    """
    return code.startswith(_scope_prefix(scope))


def counties(prefix: str = "") -> list[str]:
    """Current codes usable as a county under a prefix (sorted).

    County-level codes still in use, summary codes (市辖区…) excluded, plus
    prefecture-level cities without counties (``441900`` 东莞市), whose
    ``xxxx00`` code serves as the county code in identity numbers.

    >>> "110105" in counties("11"), "110103" in counties("11"), "441900" in counties("44")
    (True, False, True)
    """
    return list(_reg().counties(_scope_prefix(prefix)))
