"""Guardian phones."""

from __future__ import annotations

import pytest
from hypothesis import given

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
