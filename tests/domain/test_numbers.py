"""National numbers: public vectors, generated numbers and single-character errors."""

from __future__ import annotations

import random
from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from studentstatus import regions
from studentstatus.domain import numbers
from studentstatus.domain.enums import NumberKind
from studentstatus.errors import (
    InvalidChecksum,
    InvalidComponent,
    InvalidDate,
    InvalidFormat,
    InvalidLength,
    InvalidNumber,
    InvalidRegion,
)

# The worked examples of docs/reference/domain.md and python-stdnum's public test vectors.
PUBLIC_IDS = [
    "11010520200315002X",
    "440306202109010045",
    "510107201911300030",
    "360426199101010071",
    "810000201905060019",
    "830000202001010025",
    "44011320141005001X",
    "120110198012010073",
]

COUNTIES = regions.counties("")
births = st.dates(min_value=date(1990, 1, 1), max_value=date(2030, 12, 31))


class TestVectors:
    """Fixed vectors, worked by hand in docs/reference/domain.md."""

    @pytest.mark.parametrize("rid", PUBLIC_IDS)
    def test_g_numbers_of_public_ids_validate(self, rid: str) -> None:
        """G + a valid public ID number is a valid G number that parses back."""
        g = numbers.g_number(rid)
        assert g == "G" + rid
        parsed = numbers.parse(g)
        assert parsed.kind is NumberKind.G
        assert parsed.region_code == rid[:6]
        assert parsed.check == rid[17]
        assert rid not in repr(parsed)

    def test_j_check_digit_matches_the_resident_id_rule(self) -> None:
        """The J check character equals the ID check of the same 17 digits."""
        assert numbers.j_number("110105", date(2020, 3, 15), 2) == "J11010520200315002X"
        assert numbers.j_number("440306", date(2021, 9, 1), 4) == "J440306202109010045"
        assert numbers.j_number("510107", date(2019, 11, 30), 3) == "J510107201911300030"

    @pytest.mark.parametrize(
        ("number", "error"),
        [
            ("G36042619910102009X", InvalidChecksum),  # stdnum: bad checksum
            ("G360426199113010079", InvalidDate),  # stdnum: month 13
            ("G11010520200315002", InvalidLength),
            ("J110105202003150021", InvalidChecksum),
            ("J110105202002300020", InvalidChecksum),
            ("L110105202302290042", InvalidDate),  # 2023 is not a leap year
            ("L999999202003150042", InvalidRegion),
            ("L11010520200315004A", InvalidFormat),
            ("X110105202003150042", InvalidFormat),
            ("", InvalidLength),
            ("L1101052020031500421", InvalidLength),
        ],
    )
    def test_invalid_numbers_raise_the_right_error(
        self, number: str, error: type[InvalidNumber]
    ) -> None:
        """Each broken number raises its own error class, with field national_number."""
        with pytest.raises(error) as info:
            numbers.validate(number)
        assert info.value.field == "national_number"
        assert not numbers.is_valid(number)
        assert numbers.kind_of(number) is None

    def test_j_sequence_000_is_rejected(self) -> None:
        """Sequence 000 is never allocated, even with a matching check character."""
        from studentstatus.ids.resident import check_digit

        number = "J11010520200315000" + check_digit("11010520200315000")
        assert number == "J110105202003150003"
        with pytest.raises(InvalidComponent):
            numbers.validate(number)

    def test_future_birth_date_rejected_only_when_today_given(self) -> None:
        """``today`` bounds the birth date; without it the clock is never consulted."""
        n = "L110105203001010042"
        assert numbers.is_valid(n)
        assert not numbers.is_valid(n, today=date(2029, 12, 31))

    def test_normalisation(self) -> None:
        """Separators and lower case are accepted and compacted."""
        assert numbers.validate(" g110105-20200315-002x ") == "G11010520200315002X"

    def test_non_text_is_invalid_not_a_crash(self) -> None:
        """is_valid and kind_of never raise, whatever they are given."""
        for junk in (None, 12, b"L110105202003150042", ["x"]):
            assert numbers.is_valid(junk) is False
            assert numbers.kind_of(junk) is None

    def test_j_sequence_out_of_range(self) -> None:
        """The sequence must be 1–999."""
        for bad in (0, 1000, -1):
            with pytest.raises(InvalidComponent):
                numbers.j_number("110105", date(2020, 1, 1), bad)

    def test_generation_rejects_unknown_regions(self) -> None:
        """Generated numbers need a known region code."""
        with pytest.raises(InvalidRegion):
            numbers.temporary_number("999999", date(2020, 1, 1), random.Random(1))
        with pytest.raises(InvalidFormat):
            numbers.j_number("11010", date(2020, 1, 1), 1)
        # known codes are remembered; unknown ones stay unknown however often they are asked
        for _ in range(2):
            numbers.temporary_number("110105", date(2020, 1, 1), random.Random(1))
            with pytest.raises(InvalidRegion):
                numbers.temporary_number("999999", date(2020, 1, 1), random.Random(1))
            with pytest.raises(InvalidFormat):
                numbers.temporary_number("11010", date(2020, 1, 1), random.Random(1))

    def test_l_number_uses_the_passed_generator_only(self) -> None:
        """Same seed, same number: the generator is the only source of randomness."""
        a = numbers.temporary_number("110105", date(2020, 3, 15), random.Random(5))
        b = numbers.temporary_number("110105", date(2020, 3, 15), random.Random(5))
        assert a == b
        assert a.startswith("L11010520200315")
        assert numbers.parse(a).check is None


def test_generated_l_numbers_validate() -> None:
    """Every L number generated for a known county and a real date validates."""

    @given(st.sampled_from(COUNTIES), births, st.integers(0, 2**32))
    def check(region: str, born: date, seed: int) -> None:
        n = numbers.temporary_number(region, born, random.Random(seed))
        assert len(n) == 19
        p = numbers.parse(n)
        assert (p.kind, p.region_code, p.birth_date) == (NumberKind.L, region, born)
        assert not p.is_official

    check()


def test_generated_j_numbers_validate_and_single_substitutions_fail() -> None:
    """Every J number validates; changing any one character makes it invalid."""

    @given(st.sampled_from(COUNTIES), births, st.integers(1, 999), st.data())
    def check(region: str, born: date, seq: int, data: st.DataObject) -> None:
        n = numbers.j_number(region, born, seq)
        p = numbers.parse(n)
        assert (p.kind, p.region_code, p.birth_date, int(p.sequence)) == (
            NumberKind.J,
            region,
            born,
            seq,
        )
        pos = data.draw(st.integers(1, 18))
        alphabet = "0123456789X" if pos == 18 else "0123456789"
        new = data.draw(st.sampled_from([c for c in alphabet if c != n[pos]]))
        broken = n[:pos] + new + n[pos + 1 :]
        assert not numbers.is_valid(broken)

    check()


def test_every_single_substitution_of_a_j_number_fails() -> None:
    """Exhaustively: none of the 171 one-character variants of a J number is valid."""
    n = numbers.j_number("440306", date(2021, 9, 1), 4)
    for pos in range(1, 19):
        for c in "0123456789X":
            if c != n[pos] and (pos == 18 or c != "X"):
                assert not numbers.is_valid(n[:pos] + c + n[pos + 1 :]), (pos, c)


def test_generated_g_numbers_validate() -> None:
    """G numbers built from any valid resident ID validate and mask the ID in repr."""
    from studentstatus.ids import resident

    @given(st.sampled_from(COUNTIES), births, st.integers(0, 999))
    def check(region: str, born: date, seq: int) -> None:
        body = f"{region}{born:%Y%m%d}{seq:03d}"
        rid = body + resident.check_digit(body)
        g = numbers.g_number(rid)
        assert numbers.kind_of(g) is NumberKind.G
        assert rid not in repr(numbers.parse(g))

    check()
