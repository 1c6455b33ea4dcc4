"""Guardian telephone numbers, checked with libphonenumber's metadata (phonenumbers).

Numbers are parsed relative to a default region (``CN``), must be valid for
their region, and are stored in E.164 (``+8613800138000``).  Mobile prefixes
change over time, so the rules come from phonenumbers' data, not a list here.

>>> normalize("138 0013 8000")
'+8613800138000'
>>> normalize("+86 13800138000"), kind("13800138000")
('+8613800138000', <PhoneKind.MOBILE: 'mobile'>)
>>> kind("010-12345678")
<PhoneKind.FIXED_LINE: 'fixed_line'>
>>> is_valid("12345678901"), is_valid(None)
(False, False)
"""

from __future__ import annotations

import enum

import phonenumbers

from studentstatus.errors import InvalidFormat

__all__ = ["FIELD", "PhoneKind", "is_valid", "kind", "normalize"]

FIELD = "phone"


class PhoneKind(enum.StrEnum):
    """Kind of a valid number."""

    MOBILE = "mobile"
    FIXED_LINE = "fixed_line"
    OTHER = "other"


def _error() -> InvalidFormat:
    return InvalidFormat(
        "not a valid telephone number", field=FIELD, code="phone", message_zh="电话号码无效"
    )


def _parse(text: object, region: str) -> phonenumbers.PhoneNumber:
    if not isinstance(text, str) or len(text) > 64:
        raise _error()
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        raise _error() from None
    if not phonenumbers.is_valid_number(number):
        raise _error()
    return number


def normalize(text: object, region: str = "CN") -> str:
    """The number in E.164; raise :class:`~studentstatus.errors.InvalidFormat` (code ``phone``).

    >>> normalize("010-12345678")
    '+861012345678'
    >>> normalize("12345")
    Traceback (most recent call last):
    ...
    studentstatus.errors.InvalidFormat: phone [phone]: not a valid telephone number / 电话号码无效
    """
    return str(
        phonenumbers.format_number(_parse(text, region), phonenumbers.PhoneNumberFormat.E164)
    )


def kind(text: object, region: str = "CN") -> PhoneKind:
    """Whether the number is a mobile, a fixed line or something else.

    >>> kind("+86 199 1234 5678")
    <PhoneKind.MOBILE: 'mobile'>
    """
    t = phonenumbers.number_type(_parse(text, region))
    if t == phonenumbers.PhoneNumberType.MOBILE:
        return PhoneKind.MOBILE
    if t == phonenumbers.PhoneNumberType.FIXED_LINE:
        return PhoneKind.FIXED_LINE
    return PhoneKind.OTHER


def is_valid(text: object, region: str = "CN") -> bool:
    """Whether the number is valid; never raises.

    >>> is_valid("16612345678")
    True
    """
    try:
        _parse(text, region)
    except InvalidFormat:
        return False
    return True
