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
import re

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


# Fast path for the overwhelmingly common input, a mainland mobile number written as 11
# digits (optionally with +86/0086/86 and spaces or hyphens): the verdict comes from the
# same libphonenumber metadata (the CN general and mobile national-number patterns), so
# a number the fast path accepts is one libphonenumber accepts as a valid CN mobile;
# anything else takes the full parser.  tests/ids/test_phones.py checks both agree.
_CN = phonenumbers.PhoneMetadata.metadata_for_region("CN")
assert _CN is not None
assert _CN.general_desc is not None
assert _CN.mobile is not None
_CN_GENERAL = re.compile(_CN.general_desc.national_number_pattern or "(?!)")
_CN_MOBILE = re.compile(_CN.mobile.national_number_pattern or "(?!)")
_CN_MOBILE_LENGTHS = frozenset(_CN.mobile.possible_length or _CN.general_desc.possible_length)
_SEPARATORS = str.maketrans("", "", " -")


def _cn_mobile(text: str) -> str | None:
    """The national number of a plain CN mobile number, or None (then parse fully)."""
    digits = text.translate(_SEPARATORS) if (" " in text or "-" in text) else text
    if digits.startswith("+86"):
        digits = digits[3:]
    elif digits.startswith("0086"):
        digits = digits[4:]
    elif len(digits) == 13 and digits.startswith("86"):
        digits = digits[2:]
    if (
        len(digits) in _CN_MOBILE_LENGTHS
        and digits[:1] == "1"
        and digits.isascii()
        and digits.isdigit()
        and _CN_GENERAL.fullmatch(digits)
        and _CN_MOBILE.fullmatch(digits)
    ):
        return digits
    return None


def _fast(text: object, region: str) -> str | None:
    """The national number when the fast path decides (a plain CN mobile), else None."""
    if region == "CN" and isinstance(text, str) and len(text) <= 64:
        return _cn_mobile(text)
    return None


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
    last = _LAST[0]
    if type(text) is str and region == last[0] and (text == last[1] or text == last[2]):
        return last[2]  # the last number again, or its E.164 form (normalising is idempotent)
    national = _fast(text, region)
    if national is not None:
        result = "+86" + national
    else:
        result = str(
            phonenumbers.format_number(_parse(text, region), phonenumbers.PhoneNumberFormat.E164)
        )
    if type(text) is str:
        _LAST[0] = (region, text, result)
    return result


# The last (region, text, E.164 result) that normalize() accepted: a bulk import normalises
# each guardian's phone while parsing its row, and the child check normalises the result
# again.  One assignment replaces the triple, so concurrent callers never see a torn one.
_LAST: list[tuple[str, str, str]] = [("", "", "")]


def kind(text: object, region: str = "CN") -> PhoneKind:
    """Whether the number is a mobile, a fixed line or something else.

    >>> kind("+86 199 1234 5678")
    <PhoneKind.MOBILE: 'mobile'>
    """
    if _fast(text, region) is not None:
        return PhoneKind.MOBILE
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
    if _fast(text, region) is not None:
        return True
    try:
        _parse(text, region)
    except InvalidFormat:
        return False
    return True
