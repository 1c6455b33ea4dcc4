"""GB/T 2260 registry built from python-stdnum's loc.dat."""

from __future__ import annotations

from hypothesis import given

from studentstatus import regions
from studentstatus.testing.strategies import region_codes


def test_abolished_code() -> None:
    r = regions.lookup("110103")
    assert r is not None
    assert r.name == "崇文区"
    assert r.level == "county"
    assert r.parent == "110100"
    assert regions.valid_in("110103", 2005)
    assert not regions.valid_in("110103", 2015)
    assert regions.not_abolished_before("110103", 2010)
    assert not regions.not_abolished_before("110103", 2011)


def test_renamed_code_keeps_all_names() -> None:
    r = regions.lookup("120110")
    assert r is not None
    assert [(p.name, p.start, p.end) for p in r.names] == [
        ("东郊区", None, 1991),
        ("东丽区", 1992, None),
    ]
    assert r.name == "东丽区"


def test_special_codes() -> None:
    assert regions.lookup("441900") is not None
    assert regions.is_known("810000")
    assert regions.is_known("820000")
    assert regions.is_known("830000")
    assert regions.is_known("710000")
    assert regions.lookup("999999") is None
    assert "810000" not in regions.id_address_table()


def test_chain_and_ancestors() -> None:
    r = regions.lookup("440306")
    assert r is not None
    assert [x.code for x in r.chain()] == ["440000", "440300", "440306"]
    assert regions.province_of("440306") == "440000"
    assert regions.city_of("440306") == "440300"
    assert regions.city_of("440000") is None
    assert regions.name("440000") == "广东省"


def test_contains() -> None:
    assert regions.contains("44", "440306")
    assert regions.contains("440000", "440306")
    assert regions.contains("4403", "440306")
    assert regions.contains("440300", "440306")
    assert regions.contains("440306", "440306")
    assert not regions.contains("440306", "440307")
    assert not regions.contains("4403", "440106")


def test_counties() -> None:
    codes = regions.counties("11")
    assert "110105" in codes
    assert "110103" not in codes
    assert all(c.startswith("11") for c in codes)
    assert "441900" in regions.counties("4419")
    assert len(regions.counties("")) > 2500


@given(region_codes(valid_in_year=2005))
def test_region_codes_strategy(code: str) -> None:
    assert regions.valid_in(code, 2005)


@given(region_codes(level="province"))
def test_province_codes_strategy(code: str) -> None:
    assert code.endswith("0000")
    assert regions.lookup(code) is not None
