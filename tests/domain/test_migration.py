"""Migrant-child flags and flow keys."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from studentstatus import regions
from studentstatus.domain.migration import (
    MigrantStatus,
    flow_key,
    is_migrant,
    is_rural_migrant,
    migrant_status,
)

COUNTIES = regions.counties("")


@pytest.mark.parametrize(
    ("hukou", "school", "expected"),
    [
        ("110105", "110105", MigrantStatus.LOCAL),
        ("110108", "110105", MigrantStatus.OTHER_COUNTY_SAME_PROVINCE),
        ("441900", "440306", MigrantStatus.OTHER_COUNTY_SAME_PROVINCE),
        ("510107", "440306", MigrantStatus.OTHER_PROVINCE),
        ("810000", "440306", MigrantStatus.OTHER_PROVINCE),
        (None, "440306", MigrantStatus.UNKNOWN),
        ("", "440306", MigrantStatus.UNKNOWN),
        ("4403", "440306", MigrantStatus.UNKNOWN),
        ("44030a", "440306", MigrantStatus.UNKNOWN),
        ("440306", None, MigrantStatus.UNKNOWN),
        (" 440306 ", "440306", MigrantStatus.LOCAL),
    ],
)
def test_migrant_status(hukou: str | None, school: str | None, expected: MigrantStatus) -> None:
    """Classification by county and province digits; bad input is UNKNOWN, not a guess."""
    assert migrant_status(hukou, school) is expected


def test_rural_flag_is_separate() -> None:
    """The rural flag narrows the migrant set and never creates one."""
    assert is_rural_migrant("510107", "440306", True)
    assert not is_rural_migrant("510107", "440306", False)
    assert not is_rural_migrant("440306", "440306", True)
    assert not is_rural_migrant(None, "440306", True)


def test_flow_keys() -> None:
    """Province and county level keys; unknown sides are '?'."""
    assert flow_key("510107", "440306") == "51->44"
    assert flow_key("510107", "440306", level="county") == "510107->440306"
    assert flow_key("bad", None) == "?->?"
    with pytest.raises(ValueError, match="level"):
        flow_key("510107", "440306", level="city")  # type: ignore[arg-type]


def test_labels_exist_for_every_status() -> None:
    """Every status has a Chinese label."""
    assert {s.label_zh for s in MigrantStatus} == {"本县", "省内外县", "外省", "不明"}


def test_status_agrees_with_flow_keys() -> None:
    """LOCAL iff the county keys match; OTHER_PROVINCE iff the province keys differ."""

    @given(st.sampled_from(COUNTIES), st.sampled_from(COUNTIES))
    def check(hukou: str, school: str) -> None:
        status = migrant_status(hukou, school)
        county_from, county_to = flow_key(hukou, school, level="county").split("->")
        prov_from, prov_to = flow_key(hukou, school).split("->")
        assert (status is MigrantStatus.LOCAL) == (county_from == county_to)
        assert (status is MigrantStatus.OTHER_PROVINCE) == (prov_from != prov_to)
        assert is_migrant(status) == (status is not MigrantStatus.LOCAL)

    check()
