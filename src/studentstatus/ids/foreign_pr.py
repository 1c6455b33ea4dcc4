"""外国人永久居留身份证 (Foreign Permanent Resident ID Card) numbers.

Two formats are in use:

* **2023 version** (issued from 2023-12-01): 18 characters, ``9`` (foreigner
  marker), the two-digit province code of the accepting authority, the
  three-digit numeric nationality code (ISO 3166-1 numeric, e.g. 840 USA),
  the birth date ``YYYYMMDD``, a three-digit sequence (odd = male) and an
  ISO 7064 MOD 11-2 check character, exactly as a resident number.
* **2004/2017 version**: 15 characters, the ISO 3166-1 alpha-3 nationality,
  the four-digit province+city code of the accepting authority, ``YYMMDD``,
  one sequence digit and one check digit: weights 7, 3, 1 repeating over the
  first 14 characters (letters A=10 … Z=35), check = sum mod 10.  The
  century of ``YYMMDD`` is not encoded: :func:`parse` reads ``20YY`` when
  that is not after ``today`` (when given) and ``19YY`` otherwise; without
  ``today`` it reads ``19YY``.  Its sex is not known.

The nationality code is checked for form only (three digits other than
``000`` / three letters), and the province code against GB/T 2260.

More information:

* NIA 《新版外国人永久居留身份证机读信息规则(2023版)》
* docs/reference/domain.md#other-documents (the 2023 field split is from two independent
  implementations)

>>> validate("91184019850101001X")
'91184019850101001X'
>>> is_valid("931392202006010022"), is_valid("USA110085010103")
(True, True)
>>> is_valid("USA110085010104")
False
>>> p = parse("931392202006010022")
>>> p.version, p.nationality, p.birth_date, p.sex
('2023', '392', datetime.date(2020, 6, 1), 'F')
>>> parse("USA110085010103").birth_date
datetime.date(1985, 1, 1)
"""

from __future__ import annotations

import datetime

import attrs

from studentstatus import errors, regions
from studentstatus.errors import (
    InvalidChecksum,
    InvalidComponent,
    InvalidDate,
    InvalidFormat,
    InvalidLength,
)
from studentstatus.ids._mod11 import check_char, date_ok, is_valid_checksum, today_key

__all__ = [
    "FIELD",
    "ForeignPrId",
    "check_char",
    "check_char_2004",
    "compact",
    "format",
    "is_valid",
    "mask",
    "parse",
    "validate",
]

FIELD = "id_number"
_SEPARATORS = str.maketrans({" ": None, "-": None, "\t": None, "\u3000": None})
_NON_PROVINCES = frozenset({"71", "81", "82", "83"})


@attrs.frozen
class ForeignPrId:
    """A validated foreign permanent-residence number; ``repr`` masks the number."""

    number: str = attrs.field(repr=lambda n: repr(errors.mask(n)))
    version: str  # "2023" or "2004"
    nationality: str  # numeric (2023) or alpha-3 (2004)
    province_code: str  # two digits
    birth_date: datetime.date
    sex: str | None


def compact(number: str) -> str:
    """Remove spaces and hyphens, upper-case.

    >>> compact("usa 1100 850101 03")
    'USA110085010103'
    """
    return str(number).translate(_SEPARATORS).strip().upper()


def mask(number: str) -> str:
    """The number masked: its first two characters only (see
    :func:`studentstatus.errors.mask_number`).

    >>> mask("91184019850101001X"), mask("USA110085010103")
    ('91****************', 'US*************')
    """
    return errors.mask(compact(number))


def _value(c: str) -> int:
    return ord(c) - 55 if "A" <= c <= "Z" else int(c)


def check_char_2004(body14: str) -> str:
    """The check digit of a 15-character (2004/2017) number from its first 14 characters.

    >>> check_char_2004("USA11008501010")
    '3'
    """
    body = compact(body14)
    if len(body) != 14 or not body.isascii() or not body.isalnum():
        raise InvalidFormat(
            "the body must be 14 letters/digits", field=FIELD, message_zh="本体应为14位"
        )
    return str(sum(_value(c) * (7, 3, 1)[i % 3] for i, c in enumerate(body)) % 10)


def _province_ok(pp: str) -> bool:
    return pp not in _NON_PROVINCES and regions.is_known(pp + "0000")


def _date_2004(yymmdd: str, today: datetime.date | None) -> datetime.date | None:
    for century in ("20", "19"):
        ymd = century + yymmdd
        if date_ok(ymd) and (
            (today is None and century == "19") or (today is not None and ymd <= today_key(today))
        ):
            return datetime.date(int(ymd[:4]), int(ymd[4:6]), int(ymd[6:]))
    return None


def _bad_date(message_en: str = "the birth date is not a real date") -> InvalidDate:
    return InvalidDate(message_en, field=FIELD, message_zh="出生日期无效")


def parse(number: object, *, today: datetime.date | None = None) -> ForeignPrId:
    """Validate and split the number.

    >>> parse("91184019850101001X").province_code
    '11'
    """
    if not isinstance(number, str):
        raise InvalidFormat("the number must be text", field=FIELD, message_zh="证件号码必须是文本")
    n = compact(number)
    if len(n) == 18:
        if not (n[:17].isascii() and n[:17].isdigit()) or n[17] not in "0123456789X":
            raise InvalidFormat(
                "17 digits and a check character expected",
                field=FIELD,
                message_zh="证件号码格式错误",
            )
        if n[0] != "9":
            raise InvalidFormat(
                "the 2023 format starts with 9", field=FIELD, message_zh="新版永居证号码应以9开头"
            )
        if not is_valid_checksum(n):
            raise InvalidChecksum(
                "the check character is wrong", field=FIELD, message_zh="校验位错误"
            )
        if not date_ok(n[6:14]) or (today is not None and n[6:14] > today_key(today)):
            raise _bad_date()
        if not _province_ok(n[1:3]):
            raise InvalidComponent(
                "unknown province code", field=FIELD, message_zh="受理地代码无效"
            )
        if n[3:6] == "000":
            raise InvalidComponent(
                "invalid nationality code", field=FIELD, message_zh="国籍代码无效"
            )
        return ForeignPrId(
            number=n,
            version="2023",
            nationality=n[3:6],
            province_code=n[1:3],
            birth_date=datetime.date(int(n[6:10]), int(n[10:12]), int(n[12:14])),
            sex="M" if int(n[16]) % 2 else "F",
        )
    if len(n) == 15:
        if not (n.isascii() and n[:3].isalpha() and n[3:].isdigit()):
            raise InvalidFormat(
                "3 letters and 12 digits expected", field=FIELD, message_zh="证件号码格式错误"
            )
        if check_char_2004(n[:14]) != n[14]:
            raise InvalidChecksum("the check digit is wrong", field=FIELD, message_zh="校验位错误")
        birth = _date_2004(n[7:13], today)
        if birth is None:
            raise _bad_date()
        if not _province_ok(n[3:5]):
            raise InvalidComponent(
                "unknown province code", field=FIELD, message_zh="受理地代码无效"
            )
        return ForeignPrId(
            number=n,
            version="2004",
            nationality=n[:3],
            province_code=n[3:5],
            birth_date=birth,
            sex=None,
        )
    raise InvalidLength(
        "the number must have 15 or 18 characters", field=FIELD, message_zh="证件号码应为15位或18位"
    )


def validate(number: object, *, today: datetime.date | None = None) -> str:
    """Check the number and return it compacted.

    >>> validate("91184019850101001Y")
    Traceback (most recent call last):
    ...
    studentstatus.errors.InvalidFormat: format [id_number]: ...
    """
    return parse(number, today=today).number


def is_valid(number: object, *, today: datetime.date | None = None) -> bool:
    """Whether the number is valid; never raises.

    >>> is_valid("91184019850101001X"), is_valid(None), is_valid("91184019850101001")
    (True, False, False)
    """
    try:
        parse(number, today=today)
    except errors.InvalidNumber:
        return False
    return True


def format(number: str) -> str:
    """The presentation form (compact, upper-case).

    >>> format("911840 19850101 001x")
    '91184019850101001X'
    """
    return compact(number)
