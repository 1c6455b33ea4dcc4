"""Resident identity numbers and residence permits: public vectors and properties."""

from __future__ import annotations

import datetime

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from stdnum.cn import ric

from studentstatus import regions
from studentstatus.errors import (
    InvalidChecksum,
    InvalidDate,
    InvalidFormat,
    InvalidLength,
    InvalidNumber,
    InvalidRegion,
)
from studentstatus.ids import resident
from studentstatus.ids._mod11 import check_char, weighted_sum
from studentstatus.testing.strategies import region_codes, residence_permits, resident_ids

VALID = [
    "360426199101010071",
    "44011320141005001X",
    "120110198012010073",
    "120110199212010072",
    "11010520200315002X",
    "440306202109010045",
    "510107201911300030",
    "440308199901101512",
    "810000199408230021",
    "830000199201300022",
    "810000201905060019",
    "830000202001010025",
]


@pytest.mark.parametrize("number", VALID)
def test_public_vectors_valid(number: str) -> None:
    assert resident.validate(number) == number
    assert resident.is_valid(number)


@pytest.mark.parametrize(
    ("body", "total", "check"),
    [
        ("11010520200315002", 123, "X"),
        ("44030620210901004", 216, "5"),
        ("51010720191130003", 166, "0"),
        ("36042619910101007", 231, "1"),
        ("81000020190506001", 179, "9"),
        ("83000020200101002", 117, "5"),
    ],
)
def test_facts_table(body: str, total: int, check: str) -> None:
    assert weighted_sum(body) == total
    assert resident.check_digit(body) == check


def test_lowercase_x_normalised() -> None:
    assert resident.validate("44011320141005001x") == "44011320141005001X"
    p = resident.parse("44011320141005001x")
    assert p.birth_date == datetime.date(2014, 10, 5)
    assert p.sex == "M"
    assert p.kind is resident.ResidentKind.CITIZEN


@pytest.mark.parametrize(
    ("number", "error"),
    [
        ("36042619910102009X", InvalidChecksum),
        ("360426199113010079", InvalidDate),
        ("3604261991010100", InvalidLength),
        ("440301850615127", InvalidLength),
        ("36042619910101007A", InvalidFormat),
        (None, InvalidFormat),
        (12345, InvalidFormat),
    ],
)
def test_rejections(number: object, error: type[InvalidNumber]) -> None:
    with pytest.raises(error) as info:
        resident.validate(number)
    assert info.value.field == "id_number"
    assert not resident.is_valid(number)


def test_15_digit_hint_and_upgrade() -> None:
    with pytest.raises(InvalidLength) as info:
        resident.validate("110105491231002")
    assert info.value.hint == "upgrade"
    assert resident.upgrade("110105491231002") == "11010519491231002X"
    assert resident.upgrade("440301850615127") == "440301198506151270"
    assert resident.is_valid(resident.upgrade("610104620927690"))


def test_region_strictness() -> None:
    born_2005 = "11010320050101001X"
    born_2015 = "110103201501010014"
    assert resident.is_valid(born_2005)
    with pytest.raises(InvalidRegion):
        resident.validate(born_2015)
    assert resident.is_valid(born_2015, strict_region=False)
    # a code created after the birth year is accepted (later registration)
    body = "50015719800101001"
    assert resident.is_valid(body + check_char(body))
    # cities without counties use xxxx00
    assert resident.is_valid("441900202001010022")


def test_summary_code_inferred_from_prefecture() -> None:
    body = "11012020000101001"  # 110120 not in loc.dat; 110100 (北京市市辖区) is
    assert resident.is_valid(body + check_char(body))
    body = "44012020000101001"  # 440120 is in loc.dat as [-1983]市区: strict rejects
    assert not resident.is_valid(body + check_char(body))
    assert resident.is_valid(body + check_char(body), strict_region=False)


def test_permits_exact_prefix() -> None:
    body = "81000120190506001"
    with pytest.raises(InvalidRegion):
        resident.validate(body + check_char(body))
    macau = "82000020000101001" + check_char("82000020000101001")
    assert resident.parse(macau).kind is resident.ResidentKind.MO_PERMIT


def test_future_birth_date() -> None:
    number = "440306202109010045"
    assert resident.is_valid(number, today=datetime.date(2021, 9, 1))
    with pytest.raises(InvalidDate):
        resident.validate(number, today=datetime.date(2021, 8, 31))


def test_repr_masks_number() -> None:
    text = repr(resident.parse("360426199101010071"))
    assert "360426199101010071" not in text
    assert "36****************" in text


def test_error_messages_never_contain_the_number() -> None:
    for number in ("36042619910102009X", "360426199113010079", "110103201501010014"):
        with pytest.raises(InvalidNumber) as info:
            resident.validate(number)
        err = info.value
        assert number not in str(err) + err.message_zh + err.message_en


def test_accessors() -> None:
    assert resident.get_birth_date("44011320141005001X") == datetime.date(2014, 10, 5)
    assert resident.get_sex("11010520200315002X") == "F"
    assert resident.get_region_code("120110199212010072") == "120110"
    assert resident.format("110105 20200315 002x") == "11010520200315002X"
    assert resident.mask("11010520200315002x") == "11****************"


@given(resident_ids())
def test_generated_valid(number: str) -> None:
    assert resident.validate(number) == number


@given(residence_permits())
def test_generated_permits(number: str) -> None:
    assert resident.parse(number).kind is not resident.ResidentKind.CITIZEN


@given(resident_ids(), st.integers(0, 17), st.integers(1, 10))
def test_single_substitution_fails_checksum(number: str, pos: int, delta: int) -> None:
    values = "0123456789X"
    if pos == 17:
        new = values[(values.index(number[17]) + delta) % 11]
    else:
        new = str((int(number[pos]) + delta) % 10)
        if new == number[pos]:
            return
    bad = number[:pos] + new + number[pos + 1 :]
    with pytest.raises(InvalidChecksum):
        resident.validate(bad)


@given(resident_ids(), st.integers(0, 16))
def test_adjacent_transposition_fails_checksum(number: str, pos: int) -> None:
    if number[pos] == number[pos + 1]:
        return  # no change
    bad = number[:pos] + number[pos + 1] + number[pos] + number[pos + 2 :]
    with pytest.raises((InvalidChecksum, InvalidFormat)):
        # swapping the check character X into the body makes it a format error
        resident.validate(bad)


@given(resident_ids(max_birth=datetime.date(2025, 12, 31)))
def test_differential_against_stdnum(number: str) -> None:
    """stdnum demands the code exist in the birth year; we accept codes created
    later, so we are a superset: stdnum-valid implies valid here."""
    ours, theirs = resident.is_valid(number), ric.is_valid(number)
    if theirs:
        assert ours
    if ours and not theirs:
        # the only allowed difference: the code did not exist yet in the birth year
        assert not regions.valid_in(number[:6], int(number[6:10]))
    assert resident.is_valid(number, strict_region=False)


@given(st.data(), st.integers(1985, 2020))
def test_differential_historical_codes(data: st.DataObject, year: int) -> None:
    """Codes in use in the birth year (incl. since-abolished ones): both agree."""
    code = data.draw(region_codes(level="county", valid_in_year=year))
    number = data.draw(
        resident_ids(
            regions=[code],
            min_birth=datetime.date(year, 1, 1),
            max_birth=datetime.date(year, 12, 31),
        )
    )
    assert resident.is_valid(number)
    assert ric.is_valid(number)


@pytest.mark.parametrize("number", VALID[:8])
def test_agrees_with_stdnum_on_vectors(number: str) -> None:
    assert ric.is_valid(number) == resident.is_valid(number)


@given(residence_permits(kind="tw"))
def test_generated_tw_permits(number: str) -> None:
    assert resident.parse(number).kind is resident.ResidentKind.TW_PERMIT


def _validate_by_diagnosis(number: str, strict: bool, today: datetime.date | None) -> object:
    """validate()'s general path alone: the compacted number, or the error's type."""
    code = resident._diagnose(number, strict, today)
    if code == 0:
        return resident.compact(number)
    return type(resident._error(code, number))


def _variants(n: str) -> list[str]:
    """A number as given, written otherwise (lower-case x, a space, full-width characters,
    a trailing space) and broken (check digit, month 13, region, length)."""
    return [
        n,
        n[:-1] + "x",
        n.lower(),
        n[:6] + " " + n[6:],
        "\uff11" + n[1:],
        n.replace("X", "\uff38"),
        n + " ",
        n[:-1] + "0",
        n[:10] + "13" + n[12:],
        "0" + n[1:],
        n[:17],
    ]


def _validate_or_error(number: str, strict: bool, today: datetime.date | None) -> object:
    try:
        return resident.validate(number, strict_region=strict, today=today)
    except InvalidNumber as err:
        return type(err)


@given(
    (resident_ids() | residence_permits() | st.sampled_from(VALID)).flatmap(
        lambda n: st.sampled_from(_variants(n))
    )
    | st.text(alphabet="0123456789Xx -", min_size=17, max_size=19),
    st.booleans(),
    st.sampled_from([None, datetime.date(2021, 1, 1), datetime.date(2030, 1, 1)]),
)
@example("11010520200315002x", True, None)  # valid but lower-case: compacted, not as given
@example("44011320141005001X", True, None)
@settings(max_examples=500)
def test_validate_fast_path_equals_the_diagnosis(
    number: str, strict: bool, today: datetime.date | None
) -> None:
    # validate() returns a compact, valid number as it is; everything else (lower-case x,
    # spaces, full-width digits, invalid numbers) must come out as the general path says.
    assert _validate_or_error(number, strict, today) == _validate_by_diagnosis(
        number, strict, today
    )
