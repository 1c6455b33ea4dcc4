"""Junk in, InvalidNumber out: no validator raises anything else, no is_valid raises at all."""

from __future__ import annotations

import functools
from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from studentstatus import phones
from studentstatus.errors import InvalidNumber
from studentstatus.ids import (
    DocumentType,
    detect,
    foreign_pr,
    is_valid_document,
    resident,
    school_code,
    travel,
    uscc,
    validate_document,
)
from studentstatus.testing.strategies import invalid_resident_ids, resident_ids

VALIDATORS: list[tuple[Callable[[object], object], Callable[[object], bool]]] = [
    (resident.validate, resident.is_valid),
    (
        lambda n: resident.validate(n, strict_region=False),
        lambda n: resident.is_valid(n, strict_region=False),
    ),
    (foreign_pr.validate, foreign_pr.is_valid),
    (travel.validate_hk_mo, travel.is_valid_hk_mo),
    (travel.validate_tw, travel.is_valid_tw),
    (travel.validate_passport, travel.is_valid_passport),
    (uscc.validate, uscc.is_valid),
    (school_code.validate, school_code.is_valid),
    (phones.normalize, phones.is_valid),
] + [
    (functools.partial(validate_document, t), functools.partial(is_valid_document, t))
    for t in DocumentType
]

JUNK = st.one_of(
    st.text(),
    st.text("0123456789Xx -", max_size=25),
    st.none(),
    st.integers(),
    st.floats(),
    st.binary(),
    st.lists(st.integers(), max_size=3),
)

SAMPLES = [
    None,
    "",
    "3²",
    "٣٦٠٤٢٦١٩٩١٠١٠١٠٠٧١",
    "３６０４２６１９９１０１０１００７１",
    "😀" * 18,
    "\x00" * 18,
    360426199101010071,
]


def _agree(number: object) -> None:
    for validate, is_valid in VALIDATORS:
        ok = is_valid(number)
        try:
            validate(number)
        except InvalidNumber:
            assert not ok
        else:
            assert ok
    detect(number)


@given(JUNK)
def test_junk_never_crashes(number: object) -> None:
    _agree(number)


@pytest.mark.parametrize("number", SAMPLES)
def test_samples(number: object) -> None:
    _agree(number)


def test_full_width_digits_normalised() -> None:
    assert resident.validate("３６０４２６１９９１０１０１００７１") == "360426199101010071"


@given(invalid_resident_ids())
def test_invalid_resident_ids_rejected(number: str) -> None:
    assert not resident.is_valid(number)
    with pytest.raises(InvalidNumber):
        resident.validate(number)


@given(resident_ids(), st.text("0123456789Xx", min_size=0, max_size=3), st.integers(0, 18))
def test_is_valid_and_validate_agree_near_valid(number: str, insert: str, pos: int) -> None:
    _agree(number[:pos] + insert + number[pos + len(insert) :])
