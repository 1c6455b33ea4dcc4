"""Identity documents a kindergarten child may hold, and organisation numbers.

One module per scheme, in python-stdnum's shape (``compact``, ``validate``,
``is_valid``, ``format`` and accessors):

* :mod:`~studentstatus.ids.resident` — 公民身份号码 and HK/Macau/Taiwan residence permits;
* :mod:`~studentstatus.ids.foreign_pr` — 外国人永久居留身份证 (2023 and 2004 formats);
* :mod:`~studentstatus.ids.travel` — 回乡证, 台胞证, passports;
* :mod:`~studentstatus.ids.uscc` — 统一社会信用代码;
* :mod:`~studentstatus.ids.school_code` — 学校标识码.

This package dispatches on the document type chosen on a child's record
(:class:`DocumentType`, with the Chinese labels of the national system) and
guesses the type of a bare number (:func:`detect`).  For ``none`` (其他/无证件)
the number must be empty.

>>> DocumentType.RESIDENT.label_zh
'居民身份证'
>>> [str(detect(n)) for n in ("810000199408230021", "H12345678", "")]
['hk_mo_permit', 'hk_mo_travel', 'none']
>>> validate_document("resident", "44011320141005001x")
'44011320141005001X'
>>> is_valid_document(DocumentType.TW_PERMIT, "810000199408230021")
False
>>> validate_document("none", "")
''
"""

from __future__ import annotations

import builtins
import datetime
import enum
from collections.abc import Callable, Mapping

import attrs

from studentstatus.errors import InvalidComponent, InvalidFormat, InvalidNumber
from studentstatus.ids import foreign_pr, resident, travel

__all__ = ["SCHEMES", "DocumentType", "Scheme", "detect", "is_valid_document", "validate_document"]


class DocumentType(enum.StrEnum):
    """证件类型 of a child, with its Chinese label in :attr:`label_zh`."""

    RESIDENT = "resident"
    HK_MO_PERMIT = "hk_mo_permit"
    TW_PERMIT = "tw_permit"
    HK_MO_TRAVEL = "hk_mo_travel"
    TW_TRAVEL = "tw_travel"
    FOREIGN_PR = "foreign_pr"
    PASSPORT = "passport"
    NONE = "none"

    @property
    def label_zh(self) -> str:
        """Chinese label as shown in the national systems.

        >>> DocumentType.TW_TRAVEL.label_zh
        '台湾居民来往大陆通行证'
        """
        return _LABELS[self]


_LABELS: Mapping[DocumentType, str] = {
    DocumentType.RESIDENT: "居民身份证",
    DocumentType.HK_MO_PERMIT: "港澳居民居住证",
    DocumentType.TW_PERMIT: "台湾居民居住证",
    DocumentType.HK_MO_TRAVEL: "港澳居民来往内地通行证",
    DocumentType.TW_TRAVEL: "台湾居民来往大陆通行证",
    DocumentType.FOREIGN_PR: "外国人永久居留身份证",
    DocumentType.PASSPORT: "护照",
    DocumentType.NONE: "无证件",
}

Validator = Callable[[object, bool, "datetime.date | None"], str]


@attrs.frozen
class Scheme:
    """How one document type is validated."""

    type: DocumentType
    validate: Validator

    def is_valid(
        self, number: object, strict_region: bool = True, today: datetime.date | None = None
    ) -> bool:
        """Whether :attr:`validate` accepts the number; never raises.

        >>> SCHEMES[DocumentType.TW_TRAVEL].is_valid("12345678")
        True
        """
        try:
            self.validate(number, strict_region, today)
        except InvalidNumber:
            return False
        return True


def _resident_of(*kinds: resident.ResidentKind) -> Validator:
    def check(number: object, strict_region: bool, today: datetime.date | None) -> str:
        n = resident.validate(number, strict_region=strict_region, today=today)
        kind = resident.PERMIT_KINDS.get(n[:6], resident.ResidentKind.CITIZEN)
        if kind not in kinds:
            raise InvalidComponent(
                f"the number is a {kind.value} number, not of this document type",
                field=resident.FIELD,
                message_zh="号码与证件类型不符",
            )
        return n

    return check


def _none(number: object, strict_region: bool, today: datetime.date | None) -> str:
    if number is None or (isinstance(number, str) and not number.strip()):
        return ""
    raise InvalidFormat(
        "no number may be given without a document",
        field="id_number",
        message_zh="无证件时号码应为空",
    )


SCHEMES: Mapping[DocumentType, Scheme] = {
    s.type: s
    for s in (
        Scheme(DocumentType.RESIDENT, _resident_of(resident.ResidentKind.CITIZEN)),
        Scheme(
            DocumentType.HK_MO_PERMIT,
            _resident_of(resident.ResidentKind.HK_PERMIT, resident.ResidentKind.MO_PERMIT),
        ),
        Scheme(DocumentType.TW_PERMIT, _resident_of(resident.ResidentKind.TW_PERMIT)),
        Scheme(DocumentType.HK_MO_TRAVEL, lambda n, s, t: travel.validate_hk_mo(n)),
        Scheme(DocumentType.TW_TRAVEL, lambda n, s, t: travel.validate_tw(n)),
        Scheme(DocumentType.FOREIGN_PR, lambda n, s, t: foreign_pr.validate(n, today=t)),
        Scheme(DocumentType.PASSPORT, lambda n, s, t: travel.validate_passport(n)),
        Scheme(DocumentType.NONE, _none),
    )
}


def _type(type: DocumentType | str) -> DocumentType:
    try:
        return DocumentType(type)
    except ValueError:
        raise InvalidComponent(
            "unknown document type", field="id_type", message_zh="证件类型无效"
        ) from None


def validate_document(
    type: DocumentType | str,
    number: object,
    *,
    strict_region: bool = True,
    today: datetime.date | None = None,
) -> str:
    """Validate ``number`` as a document of ``type``; return the normalised number.

    >>> validate_document("tw_travel", "0561682001(D)")
    '05616820'
    >>> validate_document("resident", "830000202001010025")
    Traceback (most recent call last):
    ...
    studentstatus.errors.InvalidComponent: component [id_number]: ...
    """
    if builtins.type(number) is not str or not isinstance(type, str):
        return SCHEMES[_type(type)].validate(number, strict_region, today)
    key = (type, number, strict_region, today)
    last = _LAST_VALID[0]
    if last[0] == key:
        return last[1]
    result = SCHEMES[_type(type)].validate(number, strict_region, today)
    _LAST_VALID[0] = (key, result)
    return result


# The last valid (type, number, strict_region, today) and its result: a bulk import checks
# each number while parsing its row and again in the record's REGISTER guard.  One
# assignment replaces the pair, so concurrent callers never see a torn one.
_LAST_VALID: list[tuple[tuple[object, ...], str]] = [((), "")]


def is_valid_document(
    type: DocumentType | str,
    number: object,
    *,
    strict_region: bool = True,
    today: datetime.date | None = None,
) -> bool:
    """Whether :func:`validate_document` accepts the number; never raises.

    >>> is_valid_document("passport", "E12345678"), is_valid_document("bogus", "1")
    (True, False)
    """
    try:
        validate_document(type, number, strict_region=strict_region, today=today)
    except InvalidNumber:
        return False
    return True


def detect(number: object) -> DocumentType | None:
    """Guess the document type of a bare number, or ``None`` when nothing fits.

    Identity-shaped input (15/18 characters of digits, 18 with X) is only
    recognised when valid (leniently for the region); ``H``/``M`` + 8 or 10
    digits is a 回乡证, 8 digits (or the old 10-digit form) a 台胞证; other
    5–20 letter/digit strings containing a letter count as passports; an
    empty string is :attr:`DocumentType.NONE`.

    >>> [str(detect(n)) for n in ("91184019850101001X", "05616820", "E12345678")]
    ['foreign_pr', 'tw_travel', 'passport']
    >>> detect("36042619910102009X") is None, detect(None) is None
    (True, True)
    """
    if not isinstance(number, str):
        return None
    n = resident.compact(number)
    if not n:
        return DocumentType.NONE
    if resident.is_valid(n, strict_region=False):
        kind = resident.PERMIT_KINDS.get(n[:6])
        if kind is resident.ResidentKind.TW_PERMIT:
            return DocumentType.TW_PERMIT
        return DocumentType.RESIDENT if kind is None else DocumentType.HK_MO_PERMIT
    if foreign_pr.is_valid(n):
        return DocumentType.FOREIGN_PR
    if len(n) in (15, 18) and n[:-1].isascii() and n[:-1].isdigit():
        return None
    if travel.is_valid_hk_mo(n):
        return DocumentType.HK_MO_TRAVEL
    if travel.is_valid_tw(n):
        return DocumentType.TW_TRAVEL
    if travel.is_valid_passport(n) and not n.isdigit():
        return DocumentType.PASSPORT
    return None
