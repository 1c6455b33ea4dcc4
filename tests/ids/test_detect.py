"""Document types, detection and dispatch."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from studentstatus.errors import InvalidComponent, InvalidFormat, InvalidNumber
from studentstatus.ids import DocumentType, detect, is_valid_document, validate_document


def test_values_and_labels() -> None:
    assert [t.value for t in DocumentType] == [
        "resident",
        "hk_mo_permit",
        "tw_permit",
        "hk_mo_travel",
        "tw_travel",
        "foreign_pr",
        "passport",
        "none",
    ]
    assert all(t.label_zh for t in DocumentType)


@pytest.mark.parametrize(
    ("number", "expected"),
    [
        ("360426199101010071", DocumentType.RESIDENT),
        ("810000199408230021", DocumentType.HK_MO_PERMIT),
        ("830000199201300022", DocumentType.TW_PERMIT),
        ("H12345678", DocumentType.HK_MO_TRAVEL),
        ("12345678", DocumentType.TW_TRAVEL),
        ("91184019850101001X", DocumentType.FOREIGN_PR),
        ("USA110085010103", DocumentType.FOREIGN_PR),
        ("E12345678", DocumentType.PASSPORT),
        ("", DocumentType.NONE),
        ("36042619910102009X", None),
        (None, None),
        ("?", None),
    ],
)
def test_detect(number: object, expected: DocumentType | None) -> None:
    assert detect(number) is expected


def test_dispatch() -> None:
    assert validate_document(DocumentType.RESIDENT, "44011320141005001x") == "44011320141005001X"
    assert validate_document("hk_mo_permit", "810000199408230021") == "810000199408230021"
    assert validate_document("none", "") == ""
    with pytest.raises(InvalidFormat):
        validate_document("none", "123")
    with pytest.raises(InvalidComponent):
        validate_document("resident", "810000199408230021")
    with pytest.raises(InvalidComponent):
        validate_document("tw_permit", "810000199408230021")
    assert not is_valid_document("nonsense", "1")
    assert is_valid_document("passport", "E12345678")


_CALLS = st.tuples(
    st.sampled_from([*DocumentType, "resident", "RESIDENT", "passport"]),
    st.sampled_from(
        [
            "11010520200315002X",
            "11010520200315002x",
            "110105202003150021",
            "810000199408230021",
            "830000199201300022",
            "E12345678",
            "",
            "0561682001(D)",
            "440301198506151270",
        ]
    ),
    st.booleans(),
    st.sampled_from([None, date(2019, 1, 1), date(2025, 9, 1)]),
)


@given(calls=st.lists(_CALLS, max_size=12))
def test_validate_document_repeats_give_fresh_results(
    calls: list[tuple[DocumentType | str, str, bool, date | None]],
) -> None:
    """The last-result memo never answers for other arguments (types, case, strictness, day)."""
    from studentstatus.ids import SCHEMES, _type

    for kind, number, strict, today in calls + calls[::-1]:
        try:
            expected: str | type[Exception] = SCHEMES[_type(kind)].validate(number, strict, today)
        except InvalidNumber as err:
            expected = type(err)
        try:
            got: str | type[Exception] = validate_document(
                kind, number, strict_region=strict, today=today
            )
        except InvalidNumber as err:
            got = type(err)
        assert got == expected
