"""Kindergartens: licences on a day, and the soundness of their data."""

from __future__ import annotations

from datetime import date, timedelta

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from studentstatus.domain.enums import KindergartenType, LicenceState
from studentstatus.domain.kindergarten import (
    check_kindergarten,
    licence_violations,
    licensed_on,
    region_violations,
)
from studentstatus.domain.model import Inspection, Kindergarten, Licence
from studentstatus.testing.strategies import WINDOW, kindergartens

LIC = Licence("教民144030670000001号", "南山区教育局", date(2020, 1, 1), date(2025, 12, 31))
# Real-format public vectors (docs/reference/domain.md#unified-social-credit-code):
# USCC of a 事业单位 and of a 民办非企业单位.
KG = Kindergarten(
    "1144000001", "52440106MJ0000122D", "阳光幼儿园", "440306",
    KindergartenType.PRIVATE_NONPROFIT, licences=(LIC,),
)  # fmt: skip


def codes(violations: list) -> list[str]:  # type: ignore[type-arg]
    """The codes of some violations."""
    return [v.code for v in violations]


class TestLicensedOn:
    """A licence covers issued ≤ D ≤ valid_until, VALID, latest inspection not failed."""

    def test_bounds_inclusive(self) -> None:
        """Issue day and last valid day are covered; the days around are not."""
        assert licensed_on(KG, date(2020, 1, 1))
        assert licensed_on(KG, date(2025, 12, 31))
        assert not licensed_on(KG, date(2019, 12, 31))
        assert not licensed_on(KG, date(2026, 1, 1))

    @pytest.mark.parametrize("state", [LicenceState.SUSPENDED, LicenceState.REVOKED])
    def test_state_not_valid(self, state: LicenceState) -> None:
        """A suspended or revoked licence covers nothing."""
        kg = attrs.evolve(KG, licences=(attrs.evolve(LIC, state=state),))
        assert codes(licence_violations(kg, date(2022, 6, 1))) == ["kindergarten_unlicensed"]

    def test_failed_inspection_until_next_pass(self) -> None:
        """Failing the 2022 inspection unlicenses from 2022 on, until a later pass."""
        lic = attrs.evolve(LIC, inspections=(Inspection(2021, True), Inspection(2022, False)))
        kg = attrs.evolve(KG, licences=(lic,))
        assert licensed_on(kg, date(2021, 12, 31))
        assert not licensed_on(kg, date(2022, 1, 1))
        assert not licensed_on(kg, date(2023, 5, 1))
        kg2 = attrs.evolve(
            kg,
            licences=(attrs.evolve(lic, inspections=(*lic.inspections, Inspection(2023, True))),),
        )
        assert licensed_on(kg2, date(2023, 5, 1))

    def test_inspection_order_does_not_matter(self) -> None:
        """The latest inspection by year counts, whatever the tuple order."""
        lic = attrs.evolve(LIC, inspections=(Inspection(2023, True), Inspection(2022, False)))
        assert licensed_on(attrs.evolve(KG, licences=(lic,)), date(2023, 3, 1))

    def test_any_licence_suffices(self) -> None:
        """An expired licence next to a current one does not matter."""
        old = Licence("old", "局", date(2010, 1, 1), date(2019, 12, 31))
        kg = attrs.evolve(KG, licences=(old, LIC))
        assert licensed_on(kg, date(2021, 1, 1))
        assert not licensed_on(kg, date(2030, 1, 1))

    def test_no_licence(self) -> None:
        """No licence: unlicensed, the hint says so."""
        (v,) = licence_violations(attrs.evolve(KG, licences=()), date(2022, 1, 1))
        assert v.hint == "no licence on file"
        assert v.message_zh
        assert v.message_en

    def test_hint_explains_each_licence(self) -> None:
        """The hint gives the reason of every licence."""
        (v,) = licence_violations(KG, date(2026, 3, 1))
        assert "expired on 2025-12-31" in v.hint

    @given(kindergartens(licensed=True), st.dates(*WINDOW))
    def test_strategy_licensed(self, kg: Kindergarten, day: date) -> None:
        """kindergartens(licensed=True) is licensed on every day of the window."""
        assert licensed_on(kg, day)

    @given(kindergartens(licensed=False), st.dates(*WINDOW))
    def test_strategy_unlicensed(self, kg: Kindergarten, day: date) -> None:
        """kindergartens(licensed=False) is licensed on no day of the window."""
        assert codes(licence_violations(kg, day)) == ["kindergarten_unlicensed"]

    @given(
        st.dates(date(2000, 1, 1), date(2040, 1, 1)),
        st.integers(0, 5000),
        st.dates(date(1995, 1, 1), date(2045, 1, 1)),
    )
    def test_matches_definition(self, issued: date, length: int, day: date) -> None:
        """licensed_on is exactly issued ≤ day ≤ valid_until for a plain VALID licence."""
        until = issued + timedelta(days=length)
        kg = attrs.evolve(KG, licences=(Licence("1", "局", issued, until),))
        assert licensed_on(kg, day) == (issued <= day <= until)


class TestCheckKindergarten:
    """Data checks report every problem at once."""

    def test_sound(self) -> None:
        """The reference kindergarten has no problem."""
        assert check_kindergarten(KG) == []

    def test_public_vectors(self) -> None:
        """Other public USCC vectors pass."""
        for code in ("91110000600037341L", "12100000400000624D"):
            assert check_kindergarten(attrs.evolve(KG, uscc=code)) == []

    def test_all_problems_at_once(self) -> None:
        """Primary-school code, wrong USCC check, city with counties, no name, bad dates."""
        bad_lic = Licence("x", "局", date(2022, 1, 1), date(2021, 1, 1))
        kg = Kindergarten(
            "2111000001", "91110000600037341X", " ", "440300", KindergartenType.PUBLIC,
            licences=(bad_lic,),
        )  # fmt: skip
        found = check_kindergarten(kg)
        assert codes(found) == [
            "school_code_invalid",
            "uscc_invalid",
            "region_not_county",
            "name_required",
            "licence_dates",
        ]
        assert [v.field for v in found][:3] == ["school_code", "uscc", "region_code"]
        assert all(v.message_zh and v.message_en for v in found)

    def test_inspection_outside_validity(self) -> None:
        """An inspection year outside the licence's validity is a date problem."""
        lic = attrs.evolve(LIC, inspections=(Inspection(2030, True),))
        assert codes(check_kindergarten(attrs.evolve(KG, licences=(lic,)))) == ["licence_dates"]

    def test_long_name(self) -> None:
        """Names over 100 characters are refused."""
        assert codes(check_kindergarten(attrs.evolve(KG, name="园" * 101))) == ["name_too_long"]

    @pytest.mark.parametrize(
        ("code", "expected"),
        [
            ("440306", []),  # 南山区
            ("441900", []),  # 东莞市: a city without counties
            ("440300", ["region_not_county"]),  # 深圳市 has districts
            ("440000", ["region_not_county"]),  # province
            ("110103", ["region_abolished"]),  # 崇文区, abolished 2010
            ("999999", ["region_unknown"]),
            ("44030", ["region_unknown"]),
            ("", ["region_unknown"]),
        ],
    )
    def test_regions(self, code: str, expected: list[str]) -> None:
        """County-level or city-without-county codes only."""
        assert codes(region_violations(code)) == expected

    @given(kindergartens(licensed=None))
    def test_strategy_kindergartens_are_sound(self, kg: Kindergarten) -> None:
        """Generated kindergartens pass the data checks, licensed or not."""
        assert check_kindergarten(kg) == []

    @given(st.text(max_size=20), st.text(max_size=20), st.text(max_size=8))
    def test_junk_never_raises(self, school: str, credit: str, region: str) -> None:
        """Junk codes give violations, never exceptions."""
        kg = attrs.evolve(KG, school_code=school, uscc=credit, region_code=region)
        for v in check_kindergarten(kg):
            assert v.code
            assert v.field


@given(kindergartens(), st.dates(WINDOW[0], WINDOW[1]), st.dates(WINDOW[0], WINDOW[1]))
def test_licence_check_repeated_or_on_a_changed_kindergarten_is_a_fresh_check(
    kg: Kindergarten, day: date, other_day: date
) -> None:
    # licence_violations remembers the last kindergarten it found licensed on a day: a repeat
    # must agree with a fresh check, another day or a changed copy must be checked afresh.
    import studentstatus.domain.kindergarten as module

    def fresh(k: Kindergarten, d: date) -> list[str]:
        module._LAST_LICENSED[0] = (None, None)
        return [v.code for v in licence_violations(k, d)]

    expected = fresh(kg, day)
    assert [v.code for v in licence_violations(kg, day)] == expected  # a repeat
    revoked = attrs.evolve(
        kg, licences=tuple(attrs.evolve(lic, state=LicenceState.REVOKED) for lic in kg.licences)
    )
    for k, d in ((kg, other_day), (revoked, day), (kg, day)):
        module._LAST_LICENSED[0] = (kg, day) if not expected else (None, None)
        got = [v.code for v in licence_violations(k, d)]
        assert got == fresh(k, d)
