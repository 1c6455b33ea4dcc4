"""公民身份号码 (PRC resident identity number, GB 11643-1999) and HK/Macau/Taiwan residence permits.

An 18-character number: a six-digit GB/T 2260 address code (the county of
the household registration when the number was assigned), the birth date
``YYYYMMDD``, a three-digit sequence (odd last digit = male, even = female)
and an ISO 7064 MOD 11-2 check character (``X`` for 10).  The residence
permits for residents of Hong Kong, Macau and Taiwan (港澳台居民居住证, since
2018) use the same layout with the fixed address codes ``810000``,
``820000`` and ``830000``.

Rules chosen here:

* **Input**: spaces, hyphens and full-width digits are removed/normalised;
  a lowercase ``x`` is accepted and returned upper-case.
* **Birth date**: a real date, year 1800 or later, and not after ``today``
  when ``today`` is given (the library never reads the clock).
* **Address code, strict (default)**: the code is known and was *not
  abolished before the birth year*.  A code created after the birth year is
  accepted, because a number is assigned at (possibly later) household
  registration.  Summary codes in real numbers are accepted: any code of the
  registry (including ``xxxx00`` of cities without counties such as 441900 东莞市
  and ``PP90xx`` units) and the summary codes ``xxxx01``, ``xxxx20``,
  ``xxxx02``, ``xxxx11`` of every known prefecture ``xxxx00`` even when the
  data does not list them (they then inherit the prefecture's years).
* **Address code, lenient** (``strict_region=False``): the code is known at all.
* **Permits**: numbers starting 81/82/83 must start exactly 810000/820000/830000;
  they never go through the mainland table (python-stdnum rejects 830000 and
  pre-1997/1999 births for 810000/820000).
* **15-digit (first-generation) numbers** have no check digit and are
  rejected by :func:`validate` with :class:`~studentstatus.errors.InvalidLength`;
  convert them explicitly with :func:`upgrade` (a kindergarten child cannot
  hold one).

More information:

* GB 11643-1999 《公民身份号码》; GB/T 2260; ISO 7064:1983
* https://github.com/arthurdejong/python-stdnum/blob/master/stdnum/cn/ric.py

>>> validate("44011320141005001x")
'44011320141005001X'
>>> is_valid("36042619910102009X")
False
>>> parse("360426199101010071")  # doctest: +ELLIPSIS
ResidentId(number='36****************', kind=<ResidentKind.CITIZEN: 'citizen'>, ...)
>>> parse("830000202001010025").kind
<ResidentKind.TW_PERMIT: 'tw_permit'>
>>> is_valid("110103201501010014"), is_valid("110103201501010014", strict_region=False)
(False, True)
>>> upgrade("110105491231002")
'11010519491231002X'
>>> get_birth_date("440308199901101512"), get_sex("440308199901101512")
(datetime.date(1999, 1, 10), 'M')
"""

from __future__ import annotations

import datetime
import enum
import sys
from collections.abc import Mapping

import attrs

from studentstatus import errors, regions
from studentstatus.errors import (
    InvalidChecksum,
    InvalidDate,
    InvalidFormat,
    InvalidLength,
    InvalidNumber,
    InvalidRegion,
)
from studentstatus.ids._mod11 import CHECK_VALUES, MIN_YEAR, MMDD, check_char, date_ok, today_key

__all__ = [
    "FIELD",
    "PERMIT_KINDS",
    "ResidentId",
    "ResidentKind",
    "check_digit",
    "compact",
    "format",
    "get_birth_date",
    "get_region_code",
    "get_sex",
    "is_valid",
    "mask",
    "parse",
    "split",
    "upgrade",
    "validate",
]

FIELD = "id_number"


class ResidentKind(enum.StrEnum):
    """What an 18-character resident number belongs to."""

    CITIZEN = "citizen"
    HK_PERMIT = "hk_permit"
    MO_PERMIT = "mo_permit"
    TW_PERMIT = "tw_permit"


#: Fixed address code of each residence permit.
PERMIT_KINDS: Mapping[str, ResidentKind] = {
    "810000": ResidentKind.HK_PERMIT,
    "820000": ResidentKind.MO_PERMIT,
    "830000": ResidentKind.TW_PERMIT,
}


@attrs.frozen
class ResidentId:
    """A validated resident number and what it says; ``repr`` masks the number."""

    number: str = attrs.field(repr=lambda n: repr(errors.mask(n)))
    kind: ResidentKind
    region_code: str
    birth_date: datetime.date
    sex: str


# Normalisation: drop separators, full-width digits/X to ASCII.
_COMPACT = str.maketrans(
    {" ": None, "-": None, "\t": None, "\u3000": None, "\u00a0": None}
    | {chr(0xFF10 + i): str(i) for i in range(10)}
    | {"\uff38": "X", "\uff58": "X"}
)

# Diagnosis codes (0 = valid).
_OK, _TYPE, _LENGTH, _LENGTH15, _FORMAT, _CHECKSUM, _DATE, _FUTURE, _REGION, _ABOLISHED = range(10)

# Address code -> last year of use ('9999' = current), compared as text with
# the YYYY of the birth date; filled at first use.  The year strings are
# interned so that the table stays small (cache-friendly).
_TABLE: dict[str, str] = {}


def _load_table() -> dict[str, str]:
    if not _TABLE:
        _TABLE.update({code: sys.intern(last) for code, last in regions.id_address_table().items()})
    return _TABLE


def compact(number: str) -> str:
    """Strip spaces and hyphens, normalise full-width digits, upper-case.

    >>> compact(" 110105 20200315 002x ")
    '11010520200315002X'
    """
    return str(number).translate(_COMPACT).strip().upper()


def _diagnose(number: object, strict_region: bool, today: datetime.date | None) -> int:
    """Return 0 when valid, else a diagnosis code.  Never raises for any ``number``."""
    if type(number) is not str:
        if not isinstance(number, str):
            return _TYPE
        number = str(number)
    body = number[:17]
    if len(number) != 18 or not (body.isdigit() and body.isascii()):
        try:
            compacted = number.translate(_COMPACT).strip().upper()
        except Exception:  # pragma: no cover - defensive: str methods on odd strings
            return _FORMAT
        if compacted != number:
            return _diagnose(compacted, strict_region, today)
        if len(number) != 18:
            return (
                _LENGTH15
                if len(number) == 15 and number.isascii() and number.isdigit()
                else _LENGTH
            )
        return _FORMAT
    value = CHECK_VALUES.get(number[17])
    if value is None:
        compacted = number.translate(_COMPACT).strip().upper()
        return _FORMAT if compacted == number else _diagnose(compacted, strict_region, today)
    if (2 * int(body, 13) + value) % 11 != 1:
        return _CHECKSUM
    date8 = number[6:14]
    if not date_ok(date8):
        return _DATE
    if today is not None and date8 > today_key(today):
        return _FUTURE
    prefix = number[:6]
    if prefix[0] == "8" and prefix[1] in "123":
        return _OK if prefix in PERMIT_KINDS else _REGION
    last = (_TABLE or _load_table()).get(prefix)
    if last is None:
        return _REGION
    if strict_region and date8[:4] > last:
        return _ABOLISHED
    return _OK


def is_valid(
    number: object, *, strict_region: bool = True, today: datetime.date | None = None
) -> bool:
    """Whether ``number`` is a valid resident number or residence permit.

    Never raises, whatever ``number`` is; agrees exactly with :func:`validate`.

    >>> is_valid("360426199101010071"), is_valid(None), is_valid("3²")
    (True, False, False)
    >>> is_valid("440308199901101512", today=datetime.date(1999, 1, 9))
    False
    """
    # Fast path for compact 18-character ASCII input: the same checks as
    # _diagnose, in the same order, without building exceptions.  Permits,
    # unknown codes and non-compact input fall through to _diagnose.  With
    # all 18 characters digits, int(number, 13) % 11 is the whole MOD 11-2
    # sum (13 ≡ 2 mod 11 gives weight 2^(18-i), 1 for the check digit).
    if type(number) is str and len(number) == 18 and number.isascii():
        if number.isdigit():
            if int(number, 13) % 11 != 1:
                return False
        else:
            body = number[:17]
            if number[17] not in "Xx" or not body.isdigit():
                return _diagnose(number, strict_region, today) == 0
            if (2 * int(body, 13) + 10) % 11 != 1:
                return False
        year = number[6:10]
        if year < MIN_YEAR or (number[10:14] not in MMDD and not date_ok(number[6:14])):
            return False
        if today is not None and number[6:14] > today_key(today):
            return False
        prefix = number[:6]
        if prefix[0] == "8" and prefix[1] in "123":  # permits, as in _diagnose
            return prefix in PERMIT_KINDS
        last = _TABLE.get(prefix)
        if last is not None:
            return not strict_region or year <= last
    return _diagnose(number, strict_region, today) == 0


def validate(
    number: object, *, strict_region: bool = True, today: datetime.date | None = None
) -> str:
    """Check the number and return it compacted; raise an InvalidNumber subclass otherwise.

    >>> validate("120110198012010073")
    '120110198012010073'
    >>> validate("360426199113010079")
    Traceback (most recent call last):
    ...
    studentstatus.errors.InvalidDate: date [id_number]: ...
    >>> validate("440301850615127")
    Traceback (most recent call last):
    ...
    studentstatus.errors.InvalidLength: length [id_number]: ...
    """
    if (
        type(number) is str
        and len(number) == 18
        and number[17] != "x"
        and is_valid(number, strict_region=strict_region, today=today)
        and number.isascii()
        and number.isalnum()
    ):
        return number  # already compact: 18 ASCII digits (and an upper-case X)
    code = _diagnose(number, strict_region, today)
    if code == _OK:
        return compact(number)  # type: ignore[arg-type]
    raise _error(code, number)


def _error(code: int, number: object) -> InvalidNumber:
    if code == _TYPE:
        return InvalidFormat(
            "the number must be text", field=FIELD, message_zh="身份证件号码必须是文本"
        )
    if code == _LENGTH15:
        return InvalidLength(
            "15-digit (first-generation) numbers are not accepted; convert with upgrade()",
            field=FIELD,
            message_zh="不接受15位（第一代）身份证号码，请先升级为18位",
            hint="upgrade",
        )
    if code == _LENGTH:
        return InvalidLength(
            "the number must have 18 characters", field=FIELD, message_zh="身份证号码应为18位"
        )
    if code == _FORMAT:
        return InvalidFormat(
            "the number must be 17 digits followed by a digit or X",
            field=FIELD,
            message_zh="身份证号码应为17位数字加1位数字或X",
        )
    if code == _CHECKSUM:
        return InvalidChecksum(
            "the check character is wrong", field=FIELD, message_zh="身份证号码校验位错误"
        )
    if code == _DATE:
        return InvalidDate(
            "the birth date is not a real date (from 1800 on)",
            field=FIELD,
            message_zh="出生日期不是有效日期",
        )
    if code == _FUTURE:
        return InvalidDate(
            "the birth date is in the future", field=FIELD, message_zh="出生日期晚于当前日期"
        )
    prefix = compact(number)[:6]  # type: ignore[arg-type]
    if code == _REGION:
        return InvalidRegion(
            f"the address code {prefix} is unknown",
            field=FIELD,
            message_zh=f"地址码 {prefix} 不存在",
        )
    return InvalidRegion(
        f"the address code {prefix} was abolished before the birth year",
        field=FIELD,
        message_zh=f"地址码 {prefix} 在出生年份之前已撤销",
    )


def parse(
    number: str, *, strict_region: bool = True, today: datetime.date | None = None
) -> ResidentId:
    """Validate and split the number.

    >>> p = parse("810000201905060019")
    >>> p.kind, p.region_code, p.birth_date, p.sex
    (<ResidentKind.HK_PERMIT: 'hk_permit'>, '810000', datetime.date(2019, 5, 6), 'M')
    """
    return split(validate(number, strict_region=strict_region, today=today))


def split(number: str) -> ResidentId:
    """What a number that :func:`validate` returned says, without checking it again.

    For a number just validated (a bulk check that has the normalised number
    already); anything else is :func:`parse`'s job.

    >>> split("11010520200315002X").birth_date
    datetime.date(2020, 3, 15)
    """
    n = number
    return ResidentId(
        number=n,
        kind=PERMIT_KINDS.get(n[:6], ResidentKind.CITIZEN),
        region_code=n[:6],
        birth_date=datetime.date(int(n[6:10]), int(n[10:12]), int(n[12:14])),
        sex="M" if int(n[16]) % 2 else "F",
    )


def check_digit(body17: str) -> str:
    """The check character for a 17-digit body.

    >>> check_digit("44030620210901004")
    '5'
    """
    body = compact(body17)
    if len(body) != 17:
        raise InvalidLength(
            "the body must have 17 digits", field=FIELD, message_zh="本体码应为17位"
        )
    if not (body.isascii() and body.isdigit()):
        raise InvalidFormat("the body must be digits", field=FIELD, message_zh="本体码应为数字")
    return check_char(body)


def upgrade(number15: str) -> str:
    """Convert a 15-digit first-generation number to 18 characters.

    Inserts ``19`` before the ``YYMMDD`` birth date and appends the check
    character.  Only the date is checked; pass the result to :func:`validate`.

    >>> upgrade("440301850615127")
    '440301198506151270'
    >>> validate(upgrade("610104620927690"))
    '610104196209276908'
    """
    n = compact(number15)
    if len(n) != 15:
        raise InvalidLength(
            "a first-generation number has 15 digits",
            field=FIELD,
            message_zh="第一代身份证号码应为15位",
        )
    if not (n.isascii() and n.isdigit()):
        raise InvalidFormat(
            "a first-generation number is all digits",
            field=FIELD,
            message_zh="第一代身份证号码应全为数字",
        )
    body = n[:6] + "19" + n[6:]
    if not date_ok(body[6:14]):
        raise InvalidDate(
            "the birth date is not a real date", field=FIELD, message_zh="出生日期不是有效日期"
        )
    return body + check_char(body)


def mask(number: str) -> str:
    """The number masked for display and logs: the province only (the rule of
    ``docs/concepts/privacy.md``; :func:`studentstatus.errors.mask_number`).

    >>> mask("11010520200315002x")
    '11****************'
    """
    return errors.mask(compact(number))


def format(number: str) -> str:
    """The presentation form (the compact form: 18 characters, upper-case X).

    >>> format("110105 20200315 002x")
    '11010520200315002X'
    """
    return compact(number)


def get_birth_date(number: str) -> datetime.date:
    """The birth date embedded in a valid number (region not checked).

    >>> get_birth_date("44011320141005001X")
    datetime.date(2014, 10, 5)
    """
    n = validate(number, strict_region=False)
    return datetime.date(int(n[6:10]), int(n[10:12]), int(n[12:14]))


def get_sex(number: str) -> str:
    """``'M'`` when the 17th digit is odd, else ``'F'``.

    >>> get_sex("11010520200315002X")
    'F'
    """
    n = validate(number, strict_region=False)
    return "M" if int(n[16]) % 2 else "F"


def get_region_code(number: str) -> str:
    """The six-digit address code (``810000``… for permits).

    >>> get_region_code("120110199212010072")
    '120110'
    """
    return validate(number, strict_region=False)[:6]
