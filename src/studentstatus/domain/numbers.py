"""National student-status numbers (全国学籍号): the 19-character G, J and L numbers.

Every number is one prefix letter and an 18-character body
(docs/reference/domain.md#national-numbers):

* ``L`` — temporary, given at registration: the kindergarten's six-digit
  region code, the birth date ``YYYYMMDD`` and four random digits (no check
  digit).  Looks like an ID number but has no link to one.
* ``G`` — official, for a child with a resident identity number: ``G`` and
  the 18-character number itself (a HK/Macau/Taiwan residence permit has the
  same layout and is accepted).  Its region is checked leniently: any code
  ever known, because an address code is frozen when assigned.
* ``J`` — official, for a child without one: region code, birth date, a
  three-digit sequence ``001``–``999`` per (region, birth date) and a MOD 11-2
  check character computed exactly like the resident ID's (``X`` for 10).

Input is normalised like the ID numbers: spaces and hyphens are removed and
letters upper-cased.  Errors are :class:`~studentstatus.errors.InvalidNumber`
subclasses with field ``"national_number"``; messages never quote a whole
number.  Nothing here draws random numbers itself: :func:`temporary_number`
takes the caller's ``random.Random`` (or anything with ``randrange``).

>>> from datetime import date
>>> j_number("110105", date(2020, 3, 15), 2)
'J11010520200315002X'
>>> g_number("11010520200315002x")
'G11010520200315002X'
>>> validate("j11010520200315002x")
'J11010520200315002X'
>>> is_valid("J110105202003150021")   # wrong check character
False
>>> parse("G11010520200315002X")
NationalNumber(number='G11****************', kind=<NumberKind.G: 'G'>, region_code='110105')
>>> kind_of("L110105202003150042"), kind_of("nonsense")
(<NumberKind.L: 'L'>, None)
"""

from __future__ import annotations

from datetime import date
from typing import Protocol

import attrs

from studentstatus import regions
from studentstatus.domain.enums import NumberKind
from studentstatus.errors import (
    InvalidChecksum,
    InvalidComponent,
    InvalidDate,
    InvalidFormat,
    InvalidLength,
    InvalidNumber,
    InvalidRegion,
    mask_number,
)
from studentstatus.ids import resident

__all__ = [
    "FIELD",
    "LENGTH",
    "NationalNumber",
    "RandomSource",
    "compact",
    "g_number",
    "is_valid",
    "j_number",
    "kind_of",
    "parse",
    "temporary_number",
    "validate",
]

FIELD = "national_number"
"""The ``field`` of every error raised here."""

LENGTH = 19
"""Every national number has 19 characters."""

_CHECK_CHARS = "0123456789X"


class RandomSource(Protocol):
    """What :func:`temporary_number` needs from a random generator: ``randrange(stop)``.

    :class:`random.Random` fits; tests may pass a stub.

    >>> class Fixed:
    ...     def randrange(self, stop: int, /) -> int:
    ...         return 42
    >>> temporary_number("110105", date(2020, 3, 15), Fixed())
    'L110105202003150042'
    """

    def randrange(self, stop: int, /) -> int:
        """A number in ``range(stop)``.

        >>> import random
        >>> 0 <= random.Random(1).randrange(10_000) < 10_000
        True
        """
        ...


def _masked(number: str) -> str:
    return repr(mask_number(number))


@attrs.frozen
class NationalNumber:
    """A valid national number split into its parts.

    ``repr`` masks the number (:func:`~studentstatus.errors.mask_number`) and leaves
    out the birth date, the sequence and the check character: with the region they
    would give the number back (a G number is the child's resident ID).

    ``sequence`` is the four random digits of an L number, the three-digit
    sequence of a J number, or the ID's sequence code of a G number;
    ``check`` is the check character (``None`` for L numbers).

    >>> n = parse("J11010520200315002X")
    >>> n.kind, n.region_code, n.birth_date, n.sequence, n.check
    (<NumberKind.J: 'J'>, '110105', datetime.date(2020, 3, 15), '002', 'X')
    >>> n.is_official
    True
    """

    number: str = attrs.field(repr=_masked)
    kind: NumberKind
    region_code: str
    birth_date: date = attrs.field(repr=False)
    sequence: str = attrs.field(repr=False)
    check: str | None = attrs.field(default=None, repr=False)

    @property
    def is_official(self) -> bool:
        """G and J numbers are official; L numbers are temporary.

        >>> parse("L110105202003150042").is_official
        False
        """
        return self.kind is not NumberKind.L


_COMPACT = str.maketrans({" ": None, "-": None, "\t": None, "\u3000": None, "\u00a0": None})


def compact(number: str) -> str:
    """Remove separators and upper-case the letters.

    >>> compact(" l110105-20200315-0042 ")
    'L110105202003150042'
    """
    return str(number).translate(_COMPACT).strip().upper()


def _digits(text: str) -> bool:
    return text.isascii() and text.isdigit()


def _region_error(code: str) -> InvalidRegion:
    return InvalidRegion(
        f"the region code {code} is unknown",
        field=FIELD,
        message_zh=f"学籍号中的地区码 {code} 不存在",
    )


def _check_region(code: str) -> None:
    if code in _KNOWN_REGIONS:  # checked before (a bulk import draws thousands per region)
        return
    if not (len(code) == 6 and _digits(code)):
        raise InvalidFormat(
            "the region code must be six digits",
            field=FIELD,
            message_zh="地区码应为6位数字",
        )
    if not regions.is_known(code):
        raise _region_error(code)
    if type(code) is str and len(_KNOWN_REGIONS) < 10_000:
        _KNOWN_REGIONS.add(code)


# Region codes _check_region has accepted (the registry's codes never change in a process).
_KNOWN_REGIONS: set[str] = set()


def _date_text(birth_date: date) -> str:
    return f"{birth_date.year:04d}{birth_date.month:02d}{birth_date.day:02d}"


def _parse_date(ymd: str, today: date | None) -> date:
    try:
        value = date(int(ymd[:4]), int(ymd[4:6]), int(ymd[6:8]))
    except ValueError:
        raise InvalidDate(
            "the birth date is not a real date",
            field=FIELD,
            message_zh="学籍号中的出生日期不是有效日期",
        ) from None
    if value.year < 1900:
        raise InvalidDate(
            "the birth date is before 1900",
            field=FIELD,
            message_zh="学籍号中的出生日期早于1900年",
        )
    if today is not None and value > today:
        raise InvalidDate(
            "the birth date is in the future",
            field=FIELD,
            message_zh="学籍号中的出生日期晚于当前日期",
        )
    return value


def temporary_number(region_code: str, birth_date: date, rng: RandomSource) -> str:
    """A fresh temporary ``L`` number: region + birth date + 4 digits drawn from ``rng``.

    The number is random, not unique: the caller claims it in the number
    registry and draws again on a conflict.

    >>> import random
    >>> n = temporary_number("110105", date(2020, 3, 15), random.Random(7))
    >>> is_valid(n), n[:15]
    (True, 'L11010520200315')
    """
    _check_region(region_code)
    return f"L{region_code}{_date_text(birth_date)}{rng.randrange(10_000):04d}"


def g_number(resident_id: str) -> str:
    """The official ``G`` number of a child with a resident ID (or residence permit).

    The ID is validated with a lenient region check (any code ever known);
    an invalid ID raises the ID's own error (field ``id_number``).

    >>> g_number("810000201905060019")
    'G810000201905060019'
    >>> g_number("11010520200315002")
    Traceback (most recent call last):
    ...
    studentstatus.errors.InvalidLength: length [id_number]: ...
    """
    return "G" + resident.validate(resident_id, strict_region=False)


def j_number(region_code: str, birth_date: date, sequence: int) -> str:
    """The official ``J`` number for a child without an ID.

    ``sequence`` (1–999) is allocated by the number registry per
    (region, birth date); the check character is MOD 11-2 over the 17 digits.

    >>> j_number("440306", date(2021, 9, 1), 4)
    'J440306202109010045'
    >>> j_number("440306", date(2021, 9, 1), 1000)
    Traceback (most recent call last):
    ...
    studentstatus.errors.InvalidComponent: component [sequence]: ...
    """
    _check_region(region_code)
    if isinstance(sequence, bool) or not isinstance(sequence, int) or not 1 <= sequence <= 999:
        raise InvalidComponent(
            "the sequence must be between 1 and 999",
            field="sequence",
            message_zh="顺序码应在001至999之间",
        )
    body = f"{region_code}{_date_text(birth_date)}{sequence:03d}"
    return "J" + body + resident.check_digit(body)


def _diagnose(number: str, today: date | None) -> NationalNumber:
    if not isinstance(number, str):
        raise InvalidFormat("the number must be text", field=FIELD, message_zh="学籍号必须是文本")
    n = compact(number)
    if len(n) != LENGTH:
        raise InvalidLength(
            "a national number has 19 characters",
            field=FIELD,
            message_zh="学籍号应为19位",
        )
    prefix, body = n[0], n[1:]
    try:
        kind = NumberKind(prefix)
    except ValueError:
        raise InvalidFormat(
            "a national number starts with G, J or L",
            field=FIELD,
            message_zh="学籍号应以G、J或L开头",
        ) from None
    if kind is NumberKind.G:
        try:
            info = resident.parse(body, strict_region=False, today=today)
        except InvalidNumber as exc:
            raise type(exc)(
                f"the embedded ID number is invalid: {exc.message_en}",
                field=FIELD,
                message_zh=f"学籍号中的身份证号无效：{exc.message_zh}",
                hint=exc.hint,
            ) from None
        return NationalNumber(n, kind, info.region_code, info.birth_date, body[14:17], body[17])
    if kind is NumberKind.L:
        if not _digits(body):
            raise InvalidFormat(
                "an L number is L followed by 18 digits",
                field=FIELD,
                message_zh="临时学籍号应为L加18位数字",
            )
        birth = _parse_date(body[6:14], today)
        if not regions.is_known(body[:6]):
            raise _region_error(body[:6])
        return NationalNumber(n, kind, body[:6], birth, body[14:18], None)
    # J
    if not (_digits(body[:17]) and body[17] in _CHECK_CHARS):
        raise InvalidFormat(
            "a J number is J, 17 digits and a check digit or X",
            field=FIELD,
            message_zh="J学籍号应为J加17位数字和1位校验码（数字或X）",
        )
    if resident.check_digit(body[:17]) != body[17]:
        raise InvalidChecksum(
            "the check character is wrong", field=FIELD, message_zh="学籍号校验位错误"
        )
    birth = _parse_date(body[6:14], today)
    if not regions.is_known(body[:6]):
        raise _region_error(body[:6])
    if body[14:17] == "000":
        raise InvalidComponent(
            "the sequence must be between 001 and 999",
            field=FIELD,
            message_zh="顺序码应在001至999之间",
        )
    return NationalNumber(n, kind, body[:6], birth, body[14:17], body[17])


def parse(number: str, *, today: date | None = None) -> NationalNumber:
    """Validate and split a national number.

    ``today`` (optional) rejects a birth date after it; the clock is never read.

    >>> parse("L110105202003150042", today=date(2020, 3, 14))
    Traceback (most recent call last):
    ...
    studentstatus.errors.InvalidDate: date [national_number]: ...
    """
    return _diagnose(number, today)


def validate(number: str, *, today: date | None = None) -> str:
    """Return the compact number if it is valid; raise an InvalidNumber subclass otherwise.

    >>> validate("L110105202003150042")
    'L110105202003150042'
    >>> validate("X110105202003150042")
    Traceback (most recent call last):
    ...
    studentstatus.errors.InvalidFormat: format [national_number]: ...
    >>> validate("L999999202003150042")
    Traceback (most recent call last):
    ...
    studentstatus.errors.InvalidRegion: region [national_number]: ...
    """
    return _diagnose(number, today).number


def is_valid(number: object, *, today: date | None = None) -> bool:
    """Whether ``number`` is a valid national number; never raises.

    >>> is_valid("G360426199101010071"), is_valid("G360426199101010072"), is_valid(None)
    (True, False, False)
    """
    if not isinstance(number, str):
        return False
    try:
        _diagnose(number, today)
    except InvalidNumber:
        return False
    return True


def kind_of(number: object) -> NumberKind | None:
    """The kind of a *valid* national number, ``None`` for anything else; never raises.

    >>> kind_of("G360426199101010071"), kind_of("J440306202109010045")
    (<NumberKind.G: 'G'>, <NumberKind.J: 'J'>)
    >>> kind_of("360426199101010071")  # a bare ID number is not a national number
    """
    if not isinstance(number, str):
        return None
    try:
        return _diagnose(number, None).kind
    except InvalidNumber:
        return None
