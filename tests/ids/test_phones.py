"""Guardian phones."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from studentstatus import phones
from studentstatus.errors import InvalidFormat
from studentstatus.testing.strategies import mobile_phones


@pytest.mark.parametrize(
    "text", ["138 0013 8000", "+86 13800138000", "13800138000", "+86-138-0013-8000"]
)
def test_mobile_forms(text: str) -> None:
    assert phones.normalize(text) == "+8613800138000"
    assert phones.kind(text) is phones.PhoneKind.MOBILE


def test_fixed_line() -> None:
    assert phones.normalize("010-12345678") == "+861012345678"
    assert phones.kind("010-12345678") is phones.PhoneKind.FIXED_LINE


@pytest.mark.parametrize("text", ["10012345678", "12345678901", "abc", "", None, 13800138000])
def test_invalid(text: object) -> None:
    assert not phones.is_valid(text)
    with pytest.raises(InvalidFormat) as info:
        phones.normalize(text)
    assert info.value.field == "phone"


@given(mobile_phones())
def test_generated(text: str) -> None:
    assert phones.kind(text) is phones.PhoneKind.MOBILE


# ---- the CN mobile fast path gives libphonenumber's verdicts


def _reference(text: str) -> tuple[str | None, str | None]:
    """(E.164, kind) straight from libphonenumber, bypassing the fast path."""
    import phonenumbers

    try:
        number = phonenumbers.parse(text, "CN")
    except phonenumbers.NumberParseException:
        return None, None
    if not phonenumbers.is_valid_number(number):
        return None, None
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    t = phonenumbers.number_type(number)
    kind = {
        phonenumbers.PhoneNumberType.MOBILE: "mobile",
        phonenumbers.PhoneNumberType.FIXED_LINE: "fixed_line",
    }.get(t, "other")
    return e164, kind


def _ours(text: str) -> tuple[str | None, str | None]:
    try:
        return phones.normalize(text), phones.kind(text).value
    except InvalidFormat:
        assert not phones.is_valid(text)
        return None, None


_FORMS = ("{}", "+86{}", "+86 {}", "0086{}", "86{}", "{0} {1} {2}", "{0}-{1}-{2}")


def _forms(digits: str) -> list[str]:
    parts = (digits[:3], digits[3:7], digits[7:])
    return [f.format(*parts) if "{0}" in f else f.format(digits) for f in _FORMS]


def test_fast_path_agrees_on_every_prefix() -> None:
    # Every 4-digit prefix 1000..1999 (all mobile ranges and the 1x carrier/service ranges
    # around them) with two suffixes, in every written form.
    disagreements = []
    for prefix in range(1000, 2000):
        for suffix in ("0000000", "8765432"):
            for text in _forms(f"{prefix}{suffix}"):
                if _ours(text) != _reference(text):
                    disagreements.append(text)
    assert disagreements == []


@given(
    st.text(alphabet="0123456789+- ", min_size=0, max_size=18)
    | st.from_regex(r"\A(\+86|0086|86)?[ -]?1[0-9]{2}[ -]?[0-9]{4}[ -]?[0-9]{4}\Z")
)
def test_fast_path_agrees_on_generated_text(text: str) -> None:
    assert _ours(text) == _reference(text)


def test_fast_path_rejects_non_ascii_digits() -> None:
    # Full-width digits are not a mobile number for the fast path; libphonenumber decides.
    text = "１３８００１３８０００"
    assert _ours(text) == _reference(text)
