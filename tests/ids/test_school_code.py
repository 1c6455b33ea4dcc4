"""学校标识码."""

from __future__ import annotations

import pytest
from hypothesis import given

from studentstatus.errors import InvalidComponent, InvalidFormat, InvalidLength
from studentstatus.ids import school_code
from studentstatus.testing.strategies import school_codes


def test_kindergarten_codes() -> None:
    assert school_code.validate("1144000001") == "1144000001"
    assert school_code.get_type("1144000001") == "11"
    assert school_code.get_province("1144000001") == "44"
    with pytest.raises(InvalidComponent):
        school_code.validate("2144000001")
    assert school_code.validate("2144000001", kindergarten=False) == "2144000001"


def test_rejections() -> None:
    with pytest.raises(InvalidComponent):
        school_code.validate("1199000001")
    with pytest.raises(InvalidComponent):
        school_code.validate("9944000001", kindergarten=False)
    with pytest.raises(InvalidLength):
        school_code.validate("114400001")
    with pytest.raises(InvalidFormat):
        school_code.validate("11440000A1")


@given(school_codes())
def test_generated(code: str) -> None:
    assert school_code.is_valid(code)


@given(school_codes(province="44"))
def test_generated_in_province(code: str) -> None:
    assert school_code.get_province(code) == "44"
