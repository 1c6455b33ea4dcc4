"""Travel permits and passports: 回乡证, 台胞证 and passports.

* **港澳居民来往内地通行证** (回乡证): ``H`` (Hong Kong) or ``M`` (Macau), an
  eight-digit lifelong number and, on 1999-style cards, a two-digit issue
  count: ``^[HM]\\d{8}(\\d{2})?$``.  :func:`validate_hk_mo` keeps the issue
  count; :func:`hk_mo_lifelong` returns the first nine characters.
* **台湾居民来往大陆通行证** (台胞证): eight digits.  Older booklet numbers
  (8 digits + 2-digit issue count + optional ``(X)`` issuing-office code) are
  accepted and **compacted to their first eight digits**, the lifelong number
  the 2015 cards kept.
* **Passports**: no checksum exists outside the MRZ and foreign formats are
  free-form, so :func:`validate_passport` is lenient on purpose: 5 to 20
  letters/digits after removing spaces and hyphens, upper-cased.  Real numbers
  are never rejected on a guess.

None of these numbers carries a check digit.

>>> validate_hk_mo("h1234567801")
'H1234567801'
>>> hk_mo_lifelong("H1234567801")
'H12345678'
>>> validate_tw("0561682001(D)")
'05616820'
>>> validate_passport("e 1234 5678")
'E12345678'
>>> is_valid_hk_mo("X12345678"), is_valid_tw("1234567"), is_valid_passport("AB1")
(False, False, False)
"""

from __future__ import annotations

import re

from studentstatus import errors
from studentstatus.errors import InvalidFormat, InvalidLength

__all__ = [
    "FIELD",
    "compact",
    "hk_mo_lifelong",
    "is_valid_hk_mo",
    "is_valid_passport",
    "is_valid_tw",
    "mask",
    "validate_hk_mo",
    "validate_passport",
    "validate_tw",
]

FIELD = "id_number"
_SEPARATORS = str.maketrans({" ": None, "-": None, "\t": None, "\u3000": None})
_HK_MO = re.compile(r"[HM][0-9]{8}(?:[0-9]{2})?")
_TW = re.compile(r"([0-9]{8})(?:[0-9]{2}(?:\([0-9A-Z]\))?)?")
_PASSPORT = re.compile(r"[A-Z0-9]{5,20}")


def compact(number: str) -> str:
    """Remove spaces and hyphens, upper-case.

    >>> compact("m 1234-5678")
    'M12345678'
    """
    return str(number).translate(_SEPARATORS).strip().upper()


def mask(number: str) -> str:
    """The number with its middle hidden: at most its first character and last three.

    >>> mask("H12345678")
    'H*****678'
    """
    return errors.mask(compact(number))


def _text(number: object, what_zh: str) -> str:
    if not isinstance(number, str):
        raise InvalidFormat(
            "the number must be text", field=FIELD, message_zh=f"{what_zh}号码必须是文本"
        )
    return compact(number)


def validate_hk_mo(number: object) -> str:
    """Check a 港澳居民来往内地通行证 number; return it compacted.

    >>> validate_hk_mo("H123456")
    Traceback (most recent call last):
    ...
    studentstatus.errors.InvalidFormat: format [id_number]: ...
    """
    n = _text(number, "港澳居民来往内地通行证")
    if not _HK_MO.fullmatch(n):
        raise InvalidFormat(
            "expected H or M followed by 8 or 10 digits",
            field=FIELD,
            message_zh="港澳居民来往内地通行证号码应为H或M加8位或10位数字",
        )
    return n


def is_valid_hk_mo(number: object) -> bool:
    """Whether :func:`validate_hk_mo` accepts the number; never raises.

    >>> is_valid_hk_mo("M12345678")
    True
    """
    try:
        validate_hk_mo(number)
    except errors.InvalidNumber:
        return False
    return True


def hk_mo_lifelong(number: str) -> str:
    """The lifelong part (letter + 8 digits) of a 回乡证 number.

    >>> hk_mo_lifelong("M12345678")
    'M12345678'
    """
    return validate_hk_mo(number)[:9]


def validate_tw(number: object) -> str:
    """Check a 台湾居民来往大陆通行证 number; return its 8-digit lifelong number.

    >>> validate_tw("12345678")
    '12345678'
    """
    n = _text(number, "台湾居民来往大陆通行证")
    m = _TW.fullmatch(n)
    if m is None:
        raise InvalidFormat(
            "expected 8 digits (older numbers: 10 digits and an optional (X))",
            field=FIELD,
            message_zh="台湾居民来往大陆通行证号码应为8位数字",
        )
    return m.group(1)


def is_valid_tw(number: object) -> bool:
    """Whether :func:`validate_tw` accepts the number; never raises.

    >>> is_valid_tw("0561682001"), is_valid_tw("05616820011")
    (True, False)
    """
    try:
        validate_tw(number)
    except errors.InvalidNumber:
        return False
    return True


def validate_passport(number: object) -> str:
    """Check a passport number leniently (5-20 letters/digits); return it compacted.

    >>> validate_passport("P1234")
    'P1234'
    >>> validate_passport("护照123")
    Traceback (most recent call last):
    ...
    studentstatus.errors.InvalidFormat: format [id_number]: ...
    """
    n = _text(number, "护照")
    if not n.isascii() or not n.isalnum():
        raise InvalidFormat(
            "a passport number has letters and digits only",
            field=FIELD,
            message_zh="护照号码只能包含字母和数字",
        )
    if not _PASSPORT.fullmatch(n):
        raise InvalidLength(
            "a passport number has 5 to 20 characters",
            field=FIELD,
            message_zh="护照号码应为5至20位",
        )
    return n


def is_valid_passport(number: object) -> bool:
    """Whether :func:`validate_passport` accepts the number; never raises.

    >>> is_valid_passport("EA1234567"), is_valid_passport(None)
    (True, False)
    """
    try:
        validate_passport(number)
    except errors.InvalidNumber:
        return False
    return True
