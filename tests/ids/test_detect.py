"""Document types, detection and dispatch."""

from __future__ import annotations

import pytest

from studentstatus.errors import InvalidComponent, InvalidFormat
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
