"""Unified social credit codes."""

from __future__ import annotations

import pytest
from hypothesis import given
from stdnum.cn import uscc as stdnum_uscc

from studentstatus.errors import InvalidChecksum, InvalidFormat, InvalidLength
from studentstatus.ids import uscc
from studentstatus.testing.strategies import usccs


@pytest.mark.parametrize("code", ["91110000600037341L", "12100000400000624D", "52440106MJ0000122D"])
def test_vectors(code: str) -> None:
    assert uscc.validate(code) == code
    assert stdnum_uscc.is_valid(code)


def test_check_chars() -> None:
    assert uscc.check_char("91110000600037341") == "L"
    assert uscc.check_char("12100000400000624") == "D"
    assert uscc.org_check_char("60003734") == "1"
    assert uscc.org_check_char("40000062") == "4"


def test_authorities_a_n_y_accepted() -> None:
    for head in "ANY":
        body = head + "1110000600037341"
        code = body + uscc.check_char(body)
        assert uscc.is_valid(code), code
        assert not stdnum_uscc.is_valid(code)


def test_rejections() -> None:
    with pytest.raises(InvalidChecksum):
        uscc.validate("91110000600037341M")
    body = "91110000600037342"  # embedded org-code check broken
    with pytest.raises(InvalidChecksum):
        uscc.validate(body + uscc.check_char(body))
    with pytest.raises(InvalidLength):
        uscc.validate("9111000060003734")
    with pytest.raises(InvalidFormat):
        uscc.validate("9111000060003734IL")
    assert not uscc.is_valid(None)


@given(usccs())
def test_generated(code: str) -> None:
    assert uscc.validate(code) == code
