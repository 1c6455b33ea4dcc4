"""Children: check a child's identity and family data; build one from raw form/CSV text.

Rules chosen here (sources: docs/reference/domain.md#numbers):

* **Name**: 1–50 characters after trimming, no control characters.
* **Document**: checked with :func:`studentstatus.ids.validate_document`.  A
  document of type ``none`` (or no document) carries no number.  For a
  resident identity number or an HK/Macau/Taiwan residence permit, the birth
  date and sex on the record must agree with the number
  (``birth_date_mismatch``, ``sex_mismatch``).  Number problems keep the code
  of the identity check (``checksum``, ``length``, ``date``, ``region``…) and
  have the field ``document.number``; messages never contain the number.
* **Birth date**: a real date, not after ``today``.
* **Ethnicity** (民族, GB/T 3304): a two-digit code ``01``–``56``, or ``97``
  (其他, other) or ``98`` (外国血统中国籍人士, naturalised citizens of foreign origin).
* **Nationality**: three upper-case letters (ISO 3166-1 alpha-3, ``CHN``).
* **Household (户口) and residence regions**: known GB/T 2260 codes when given.
* **Guardians**: at least one with a valid phone (``guardian_phone_missing``);
  each phone given must be valid (``guardian_phone_invalid``).

>>> from datetime import date
>>> child, problems = build_child(
...     id="c1", name="王小明", sex="男", birth_date="2020/03/15",
...     document_type="resident", document_number="110105202003150038",
...     guardians=[{"name": "王芳", "relation": "mother", "phone": "138 0013 8000"}],
...     today=date(2024, 9, 1))
>>> problems, child.guardians[0].phone, child.sex
([], '+8613800138000', <Sex.M: 'M'>)
>>> child, problems = build_child(id="c2", name="", sex="X", birth_date="2020-02-30",
...                               today=date(2024, 9, 1))
>>> child, [v.code for v in problems]
(None, ['sex_invalid', 'birth_date_invalid', 'name_required', 'guardian_phone_missing'])
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime

from studentstatus import ids, phones, regions
from studentstatus.domain.enums import Sex
from studentstatus.domain.model import Child, DocumentKind, Guardian, IdentityDocument
from studentstatus.domain.names import name_character_violations
from studentstatus.errors import InvalidNumber, Violation

__all__ = [
    "ETHNICITY_CODES",
    "NAME_MAX",
    "RESIDENT_LIKE",
    "build_child",
    "check_child",
    "parse_date",
]

#: Longest name accepted (characters, after trimming).
NAME_MAX = 50

#: GB/T 3304 ethnicity codes: 01 汉族 … 56 基诺族, 97 其他, 98 外国血统中国籍人士.
ETHNICITY_CODES: frozenset[str] = frozenset({f"{i:02d}" for i in range(1, 57)} | {"97", "98"})

#: Document types whose number encodes the birth date and sex.
RESIDENT_LIKE: frozenset[str] = frozenset({"resident", "hk_mo_permit", "tw_permit"})

_NATIONALITY = re.compile(r"[A-Z]{3}")
_DATE_FORMATS = (
    re.compile(r"(\d{4})-(\d{1,2})-(\d{1,2})"),
    re.compile(r"(\d{4})/(\d{1,2})/(\d{1,2})"),
    re.compile(r"(\d{4})(\d{2})(\d{2})"),
)


def _v(code: str, field: str, zh: str, en: str, hint: str = "") -> Violation:
    return Violation(code, field, zh, en, hint)


def parse_date(value: object) -> date | None:
    """Parse ``YYYY-MM-DD``, ``YYYY/MM/DD`` or ``YYYYMMDD`` (or pass a date through).

    Returns ``None`` for anything else, including impossible dates.

    >>> parse_date("2020/3/5"), parse_date("20200229"), parse_date("2021-02-29")
    (datetime.date(2020, 3, 5), datetime.date(2020, 2, 29), None)
    """
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if not isinstance(value, str):
        return None
    text = value.strip()
    for pattern in _DATE_FORMATS:
        m = pattern.fullmatch(text)
        if m is not None:
            try:
                return date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
            except ValueError:
                return None
    return None


def _name_violations(name: object, field: str, what_zh: str) -> list[Violation]:
    text = name.strip() if isinstance(name, str) else ""
    if not text:
        return [_v("name_required", field, f"缺少{what_zh}姓名", "the name is missing")]
    out: list[Violation] = []
    if len(text) > NAME_MAX:
        out.append(
            _v(
                "name_too_long",
                field,
                f"{what_zh}姓名超过{NAME_MAX}个字符",
                f"the name is longer than {NAME_MAX} characters",
            )
        )
    # The character policy of names (studentstatus.domain.names): Chinese characters,
    # the middle dot, Latin letters and spaces; control characters have their own code.
    out.extend(name_character_violations(text, field))
    return out


def _document_violations(child: Child, *, today: date, strict_region: bool) -> list[Violation]:
    doc = child.document
    if doc is None:
        return []
    kind: object = doc.type  # callers without type checking may pass anything
    number = doc.number if isinstance(doc.number, str) else ""
    if not isinstance(kind, DocumentKind):
        return [
            _v(
                "document_type_unknown",
                "document.type",
                "证件类型未知",
                "unknown document type",
                "one of: " + ", ".join(k.value for k in DocumentKind),
            )
        ]
    if kind.value == "none":
        if number.strip():
            return [
                _v(
                    "document_number_unexpected",
                    "document.number",
                    "证件类型为“无”时不应填写证件号码",
                    "a document of type 'none' has no number",
                )
            ]
        return []
    try:
        normalised = ids.validate_document(kind, number, strict_region=strict_region, today=today)
    except InvalidNumber as err:
        v = err.violation
        return [_v(v.code, "document.number", v.message_zh, v.message_en, v.hint)]
    if kind.value not in RESIDENT_LIKE:
        return []
    out: list[Violation] = []
    parsed = ids.resident.split(normalised)  # validated just above
    if isinstance(child.birth_date, date) and parsed.birth_date != child.birth_date:
        out.append(
            _v(
                "birth_date_mismatch",
                "birth_date",
                "出生日期与证件号码不一致",
                "the birth date does not match the document number",
            )
        )
    if isinstance(child.sex, Sex) and parsed.sex != child.sex.value:
        out.append(
            _v(
                "sex_mismatch",
                "sex",
                "性别与证件号码不一致",
                "the sex does not match the document number",
            )
        )
    return out


def _guardian_violations(guardians: object) -> list[Violation]:
    items = tuple(guardians) if isinstance(guardians, tuple | list) else ()
    out: list[Violation] = []
    valid = 0
    for i, g in enumerate(items):
        if not isinstance(g, Guardian):
            out.append(
                _v("guardian_invalid", f"guardians[{i}]", "监护人信息无效", "invalid guardian")
            )
            continue
        out.extend(
            v
            for v in _name_violations(g.name, f"guardians[{i}].name", "监护人")
            if v.code != "name_required"  # a guardian may be known by phone only
        )
        phone = g.phone.strip() if isinstance(g.phone, str) else ""
        if not phone:
            continue
        try:
            phones.normalize(phone)
        except InvalidNumber:
            out.append(
                _v(
                    "guardian_phone_invalid",
                    f"guardians[{i}].phone",
                    "监护人联系电话无效",
                    "the guardian's phone number is not valid",
                    "a mainland mobile number such as 13800138000 or an E.164 number",
                )
            )
        else:
            valid += 1
    if valid == 0 and not any(v.code == "guardian_phone_invalid" for v in out):
        out.append(
            _v(
                "guardian_phone_missing",
                "guardians",
                "至少需要一位监护人的联系电话",
                "at least one guardian with a phone number is required",
            )
        )
    return out


def check_child(child: Child, *, today: date, strict_region: bool = True) -> list[Violation]:
    """Every problem of a child's data, all at once (``[]`` when sound).

    ``strict_region`` is passed to the identity-number check (an address code
    abolished before the birth year is refused when it is true).

    >>> from studentstatus.domain.model import Child, Guardian, IdentityDocument, DocumentKind
    >>> doc = IdentityDocument(DocumentKind("resident"), "11010520200315002X")
    >>> kid = Child("c1", "王小红", Sex.M, date(2020, 3, 16), doc,
    ...             guardians=(Guardian("王芳", "mother", "+8613800138000"),))
    >>> [v.code for v in check_child(kid, today=date(2024, 9, 1))]
    ['birth_date_mismatch', 'sex_mismatch']
    """
    out = _name_violations(child.name, "name", "幼儿")
    sex: object = child.sex
    if not isinstance(sex, Sex):
        out.append(_v("sex_invalid", "sex", "性别无效", "the sex must be M or F"))
    if not isinstance(child.birth_date, date) or isinstance(child.birth_date, datetime):
        out.append(_v("birth_date_invalid", "birth_date", "出生日期无效", "invalid birth date"))
    elif child.birth_date > today:
        out.append(
            _v(
                "birth_date_future",
                "birth_date",
                "出生日期晚于当前日期",
                "the birth date is in the future",
            )
        )
    out.extend(_document_violations(child, today=today, strict_region=strict_region))
    if child.ethnicity is not None and child.ethnicity not in ETHNICITY_CODES:
        out.append(
            _v(
                "ethnicity_invalid",
                "ethnicity",
                "民族代码无效（GB/T 3304）",
                "invalid ethnicity code (GB/T 3304)",
                "01–56, 97 (other) or 98 (foreign origin)",
            )
        )
    if not isinstance(child.nationality, str) or not _NATIONALITY.fullmatch(child.nationality):
        out.append(
            _v(
                "nationality_invalid",
                "nationality",
                "国籍代码应为三个大写字母",
                "nationality must be three upper-case letters (ISO 3166-1 alpha-3)",
            )
        )
    for field, code in (
        ("hukou_region", child.hukou_region),
        ("residence_region", child.residence_region),
    ):
        if code is not None and not (isinstance(code, str) and regions.is_known(code)):
            out.append(
                _v(
                    "region_unknown",
                    field,
                    "行政区划代码不存在",
                    "unknown region code",
                    "a six-digit GB/T 2260 code",
                )
            )
    out.extend(_guardian_violations(child.guardians))
    return out


def _text(value: object) -> str:
    return value.strip() if isinstance(value, str) else ""


def _guardian_from_raw(raw: object) -> tuple[str, str, str] | None:
    if isinstance(raw, Guardian):
        return (raw.name, raw.relation, raw.phone)
    if isinstance(raw, Mapping):
        return (_text(raw.get("name")), _text(raw.get("relation")), _text(raw.get("phone")))
    if isinstance(raw, Sequence) and not isinstance(raw, str) and len(raw) == 3:
        return (_text(raw[0]), _text(raw[1]), _text(raw[2]))
    return None


def build_child(
    *,
    id: str,
    name: object,
    sex: object,
    birth_date: object,
    today: date,
    document_type: object = "none",
    document_number: object = "",
    nationality: object = "CHN",
    ethnicity: object = None,
    hukou_region: object = None,
    residence_region: object = None,
    guardians: Iterable[object] = (),
    hukou_rural: bool = False,
    left_behind: bool = False,
    disability: bool = False,
    orphan: bool = False,
    strict_region: bool = True,
) -> tuple[Child | None, list[Violation]]:
    """Build a :class:`Child` from raw text (CSV cells, form fields); never raises.

    Sex may be ``M``/``F``/``男``/``女``; dates ``YYYY-MM-DD``, ``YYYY/MM/DD``
    or ``YYYYMMDD``; guardians mappings with ``name``, ``relation``, ``phone``
    (or 3-tuples); phones any form :func:`studentstatus.phones.normalize`
    accepts (stored as E.164).  Returns ``(child, [])`` or ``(None, violations)``:
    never a partly built child.

    >>> child, problems = build_child(id="c9", name="李四", sex="F", birth_date="20211231",
    ...                               guardians=[("李父", "father", "bad")], today=date(2024, 1, 1))
    >>> child, [(v.code, v.field) for v in problems]
    (None, [('guardian_phone_invalid', 'guardians[0].phone')])
    """
    out: list[Violation] = []
    sex_value: Sex | None = None
    try:
        sex_value = Sex.parse(str(sex))
    except ValueError:
        out.append(_v("sex_invalid", "sex", "性别无效", "the sex must be M/F or 男/女"))
    born = parse_date(birth_date)
    if born is None:
        out.append(
            _v(
                "birth_date_invalid",
                "birth_date",
                "出生日期无效",
                "invalid birth date",
                "YYYY-MM-DD, YYYY/MM/DD or YYYYMMDD",
            )
        )
    kind: DocumentKind | None = None
    raw_kind = _text(document_type).lower() or "none"
    try:
        kind = DocumentKind(raw_kind)
    except ValueError:
        out.append(
            _v(
                "document_type_unknown",
                "document.type",
                "证件类型未知",
                "unknown document type",
                "one of: " + ", ".join(k.value for k in DocumentKind),
            )
        )
    number = _text(document_number)
    people: list[Guardian] = []
    for i, raw in enumerate(guardians if isinstance(guardians, Iterable) else ()):
        parts = _guardian_from_raw(raw)
        if parts is None:
            out.append(
                _v("guardian_invalid", f"guardians[{i}]", "监护人信息无效", "invalid guardian")
            )
            continue
        g_name, relation, phone = parts
        # an invalid phone is kept as typed: check_child reports it with its index
        with contextlib.suppress(InvalidNumber):
            phone = phones.normalize(phone) if phone else ""
        people.append(Guardian(g_name, relation, phone))
    eth = _text(ethnicity) or None
    if eth is not None and eth.isdigit() and len(eth) == 1:
        eth = "0" + eth
    document = None
    if kind is not None and (kind.value != "none" or number):
        document = IdentityDocument(kind, number)
    if out or sex_value is None or born is None:
        # still report the remaining problems of the fields that did parse
        probe = Child(
            str(id),
            name if isinstance(name, str) else "",
            sex_value or Sex.M,
            born or today,
            document,
            nationality=_text(nationality).upper(),
            ethnicity=eth,
            hukou_region=_text(hukou_region) or None,
            residence_region=_text(residence_region) or None,
            guardians=tuple(people),
        )
        skip: set[str] = set()
        if sex_value is None:
            skip.add("sex_mismatch")
        if born is None:
            skip.update({"birth_date_mismatch", "birth_date_future"})
        more = check_child(probe, today=today, strict_region=strict_region)
        out.extend(v for v in more if v.code not in skip)
        return None, _dedupe(out)
    child = Child(
        str(id),
        name.strip() if isinstance(name, str) else "",
        sex_value,
        born,
        document,
        nationality=_text(nationality).upper(),
        ethnicity=eth,
        hukou_region=_text(hukou_region) or None,
        hukou_rural=bool(hukou_rural),
        residence_region=_text(residence_region) or None,
        guardians=tuple(people),
        left_behind=bool(left_behind),
        disability=bool(disability),
        orphan=bool(orphan),
    )
    problems = check_child(child, today=today, strict_region=strict_region)
    if problems:
        return None, problems
    if document is not None and kind is not None and kind.value != "none":
        normalised = ids.validate_document(kind, number, strict_region=strict_region, today=today)
        child = Child(
            child.id,
            child.name,
            child.sex,
            child.birth_date,
            IdentityDocument(kind, normalised),
            nationality=child.nationality,
            ethnicity=child.ethnicity,
            hukou_region=child.hukou_region,
            hukou_rural=child.hukou_rural,
            residence_region=child.residence_region,
            guardians=child.guardians,
            left_behind=child.left_behind,
            disability=child.disability,
            orphan=child.orphan,
        )
    return child, []


def _dedupe(violations: list[Violation]) -> list[Violation]:
    seen: set[tuple[str, str]] = set()
    out: list[Violation] = []
    for v in violations:
        key = (v.code, v.field)
        if key not in seen:
            seen.add(key)
            out.append(v)
    return out
