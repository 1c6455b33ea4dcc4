"""Foreign permanent-residence card numbers."""

from __future__ import annotations

import datetime

import pytest
from hypothesis import given

from studentstatus.errors import InvalidChecksum, InvalidComponent, InvalidLength
from studentstatus.ids import foreign_pr
from studentstatus.testing.strategies import foreign_pr_numbers


@pytest.mark.parametrize("number", ["91184019850101001X", "931392202006010022", "USA110085010103"])
def test_vectors(number: str) -> None:
    assert foreign_pr.validate(number) == number


def test_parse() -> None:
    p = foreign_pr.parse("91184019850101001X")
    assert (p.version, p.nationality, p.province_code, p.sex) == ("2023", "840", "11", "M")
    assert p.birth_date == datetime.date(1985, 1, 1)
    assert "91184019850101001X" not in repr(p)
    old = foreign_pr.parse("USA110085010103")
    assert (old.version, old.nationality, old.sex) == ("2004", "USA", None)
    assert foreign_pr.check_char_2004("USA11008501010") == "3"


def test_rejections() -> None:
    with pytest.raises(InvalidChecksum):
        foreign_pr.validate("91184019850101001Y".replace("Y", "1"))
    with pytest.raises(InvalidChecksum):
        foreign_pr.validate("USA110085010104")
    with pytest.raises(InvalidLength):
        foreign_pr.validate("USA1100")
    body = "99984019850101001"
    from studentstatus.ids._mod11 import check_char

    with pytest.raises(InvalidComponent):
        foreign_pr.validate(body + check_char(body))
    assert not foreign_pr.is_valid("931392202006010022", today=datetime.date(2020, 5, 31))
    assert not foreign_pr.is_valid(None)


@given(foreign_pr_numbers())
def test_generated(number: str) -> None:
    assert foreign_pr.is_valid(number)
