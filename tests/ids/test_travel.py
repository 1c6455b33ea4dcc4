"""回乡证, 台胞证 and passports."""

from __future__ import annotations

import pytest
from hypothesis import given

from studentstatus.errors import InvalidFormat, InvalidLength
from studentstatus.ids import travel
from studentstatus.testing.strategies import (
    hk_mo_travel_numbers,
    passport_numbers,
    tw_travel_numbers,
)


def test_hk_mo() -> None:
    assert travel.validate_hk_mo("H12345678") == "H12345678"
    assert travel.validate_hk_mo("m1234567801") == "M1234567801"
    assert travel.hk_mo_lifelong("M1234567801") == "M12345678"
    for bad in ("H1234567", "H123456789", "K12345678", "H12345678012", None):
        assert not travel.is_valid_hk_mo(bad)
    with pytest.raises(InvalidFormat):
        travel.validate_hk_mo("X12345678")


def test_tw() -> None:
    assert travel.validate_tw("12345678") == "12345678"
    assert travel.validate_tw("0561682001(D)") == "05616820"
    assert travel.validate_tw("0561682001") == "05616820"
    for bad in ("1234567", "123456789", "A1234567", ""):
        assert not travel.is_valid_tw(bad)


def test_passport_lenient() -> None:
    for good in ("E12345678", "EA1234567", "G12345678", "123456789", "MA1234567", "p 1234 5"):
        assert travel.is_valid_passport(good)
    with pytest.raises(InvalidLength):
        travel.validate_passport("AB12")
    with pytest.raises(InvalidFormat):
        travel.validate_passport("AB12?34")


@given(hk_mo_travel_numbers())
def test_generated_hk_mo(number: str) -> None:
    assert travel.is_valid_hk_mo(number)


@given(tw_travel_numbers())
def test_generated_tw(number: str) -> None:
    assert travel.validate_tw(number) == number


@given(passport_numbers())
def test_generated_passport(number: str) -> None:
    assert travel.is_valid_passport(number)
