"""Errors and violations: one root, stable codes, messages in Chinese and English.

Every rejection the library makes carries a stable machine-readable ``code``,
the ``field`` it concerns, and a message in Chinese and in English.  Errors
about bad input also subclass :class:`ValueError`, so code that already
catches ``ValueError`` keeps working.

Messages never contain a full identity number: callers pass numbers through
:func:`mask` (:func:`mask_number`) before putting them in any text, and every
error passes its own messages through :func:`redact` as well, so a number a
user typed in the wrong place is not echoed whole either.  What a mask may show
is the rule of ``docs/concepts/privacy.md``.

>>> err = InvalidChecksum(field="id_number")
>>> err.code, err.field
('checksum', 'id_number')
>>> isinstance(err, ValueError) and isinstance(err, StudentStatusError)
True
>>> str(err)
'checksum [id_number]: the check digit is wrong / 校验位错误'
>>> v = Violation("grade_age_mismatch", "grade", "年龄与班级不符", "age does not fit the grade")
>>> RuleViolations([v]).violations[0].code
'grade_age_mismatch'
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import ClassVar

import attrs

__all__ = [
    "ConflictError",
    "FederationError",
    "InvalidChecksum",
    "InvalidComponent",
    "InvalidDate",
    "InvalidFormat",
    "InvalidLength",
    "InvalidNumber",
    "InvalidRegion",
    "NotFoundError",
    "PermissionDenied",
    "RuleViolations",
    "StorageError",
    "StudentStatusError",
    "TryAgain",
    "ValidationError",
    "Violation",
    "mask",
    "mask_number",
    "redact",
]


_COMPACT = str.maketrans({" ": None, "-": None, "\t": None, "\u3000": None, "\u00a0": None})

ID_HEAD = 2
"""Characters of a resident ID (or any 15+ character number) a mask may show: the
province.  No tail: see ``docs/concepts/privacy.md`` for why."""


def mask_number(number: str) -> str:
    """Mask any identity, G, J or L number for display, by the rule of
    ``docs/concepts/privacy.md``: what stays visible never gives the number back, even
    printed beside the child's birth date, sex, region and name.

    * a resident ID, HK/Macau/Taiwan residence permit or foreign permanent-residence
      card (15 to 18 characters, or anything that long): the first two characters (the
      province) only;
    * a G number (``G`` + a resident ID): ``G`` + the ID masked as above;
    * a J number: its region, birth date and sequence hidden (the check character stays);
    * an L number: its region and birth date hidden (the four random digits stay);
    * a shorter document (passport, travel permit: 8 to 14 characters): the first
      character and the last three; anything shorter: the first character.

    Separators are dropped and letters upper-cased before masking, so that a number
    written ``110105 20200315 002X`` is masked like the compact one.

    >>> mask_number("11010520200315002x")
    '11****************'
    >>> mask_number("G11010520200315002X")
    'G11****************'
    >>> mask_number("J11010520200315002X")
    'J*****************X'
    >>> mask_number("L110105202003150042")
    'L**************0042'
    >>> mask_number("110105 20200315 002X")
    '11****************'
    >>> mask_number("H12345678"), mask_number("123"), mask_number("")
    ('H*****678', '1**', '')
    """
    text = str(number).translate(_COMPACT).strip().upper()
    n = len(text)
    if n == 0:
        return ""
    if n == 19 and text[0] in "GJL":
        if text[0] == "G":
            return "G" + text[1 : 1 + ID_HEAD] + "*" * (n - 1 - ID_HEAD)
        if text[0] == "J":  # region + birth date + sequence hidden; the check stays
            return "J" + "*" * 17 + text[-1]
        return "L" + "*" * 14 + text[-4:]  # region + birth date hidden; 4 random digits stay
    if n >= 15:
        return text[:ID_HEAD] + "*" * (n - ID_HEAD)
    if n >= 8:
        # Passports, travel permits: at most 4 of 8-14 characters stay visible.
        return text[:1] + "*" * (n - 4) + text[n - 3 :]
    return text[:1] + "*" * (n - 1)


def mask(number: str, *, keep_head: int | None = None, keep_tail: int | None = None) -> str:
    """Mask an identity number for display: :func:`mask_number`, which knows the shapes.

    ``keep_head``/``keep_tail`` may only show *less* than the rule allows (a mask
    that keeps fewer characters); asking for more is capped, so a caller can never
    loosen the rule.

    >>> mask("11010520200315002X")
    '11****************'
    >>> mask("11010520200315002X", keep_head=6, keep_tail=4)   # capped: the rule holds
    '11****************'
    >>> mask("H12345678"), mask("H12345678", keep_tail=0)
    ('H*****678', 'H********')
    >>> mask("123"), mask("")
    ('1**', '')
    """
    shown = mask_number(number)
    if keep_head is None and keep_tail is None:
        return shown
    # visible head: the characters before the first '*'; visible tail: after the last '*'
    first, last = shown.find("*"), shown.rfind("*")
    if first < 0:
        return shown
    head, tail = first, len(shown) - last - 1
    prefix = 1 if len(shown) == 19 and shown[0] in "GJL" else 0
    new_head = head if keep_head is None else min(head, prefix + max(keep_head, 0))
    new_tail = tail if keep_tail is None else min(tail, max(keep_tail, 0))
    n = len(shown)
    return shown[:new_head] + "*" * (n - new_head - new_tail) + shown[n - new_tail :]


_NUMBER_IN_TEXT = re.compile(
    # 15+ digits (an X may end them), single spaces or hyphens allowed between digits, a
    # G/J/L before them; or a 15-character foreign permanent-residence card (3 letters, 12
    # digits).  Letters may stand right before ("ID110105…"): masking too much is harmless.
    r"(?<![0-9])(?:[GJLgjl](?=[0-9]))?(?:[0-9][ \-]?){14,}[0-9Xx](?![0-9])"
    r"|(?<![A-Za-z])[A-Z]{3}[0-9]{12}(?![0-9])"
)


def redact(text: str) -> str:
    """``text`` with every identity-, G-, J- or L-shaped number in it masked
    (:func:`mask_number`): runs of 15 or more digits (an ``X`` may end one), alone or
    after ``G``/``J``/``L``.  Record ids, codes, dates and words are left alone.

    Every error of this library passes its messages through it, so a number a user
    typed in the wrong place (an ID as a record id, a G number as a kindergarten code)
    is never echoed whole.

    >>> redact("no record G11010520200315002X / 学籍不存在")
    'no record G11**************** / 学籍不存在'
    >>> redact("kindergarten 11010520200315002x; record r0001 on 2025-09-01")
    'kindergarten 11****************; record r0001 on 2025-09-01'
    >>> redact("id r527bff03f2afa96e851c83a869f16b24, code 1111000001")
    'id r527bff03f2afa96e851c83a869f16b24, code 1111000001'
    >>> "20200315" in redact("no record for 110105-20200315-002X or ID11010520200315002X")
    False
    """
    if not text or not any(c.isdigit() for c in text):
        return text
    return _NUMBER_IN_TEXT.sub(lambda m: mask_number(m.group(0)), text)


@attrs.frozen
class Violation:
    """One unmet rule: a stable code, the field it concerns, and bilingual text.

    ``hint`` says what would fix it, when the rule knows.  The texts pass through
    :func:`redact`: a whole number quoted in them is masked.

    >>> v = Violation("checksum", "id_number", "校验位错误", "the check digit is wrong")
    >>> v.to_dict()["code"]
    'checksum'
    >>> Violation("taken", "id_number", "重复", "11010520200315002X is taken").message_en
    '11**************** is taken'
    """

    code: str
    field: str
    message_zh: str = attrs.field(converter=redact)
    message_en: str = attrs.field(converter=redact)
    hint: str = attrs.field(default="", converter=redact)

    def to_dict(self) -> dict[str, str]:
        """Return a JSON-ready mapping (``code``, ``field``, messages, ``hint``)."""
        return {
            "code": self.code,
            "field": self.field,
            "message_zh": self.message_zh,
            "message_en": self.message_en,
            "hint": self.hint,
        }


class StudentStatusError(Exception):
    """Root of every error this library raises on purpose.

    Text arguments pass through :func:`redact`: no message quotes a whole number.

    >>> issubclass(ConflictError, StudentStatusError), StudentStatusError.code
    (True, 'error')
    >>> str(NotFoundError("no kindergarten 11010520200315002X"))
    'no kindergarten 11****************'
    """

    code: ClassVar[str] = "error"

    def __init__(self, *args: object) -> None:
        super().__init__(*(redact(a) if isinstance(a, str) else a for a in args))


class ValidationError(StudentStatusError, ValueError):
    """A value was rejected: carries ``code``, ``field`` and bilingual messages.

    Subclasses set class-level defaults; instances may override any of them.

    >>> e = ValidationError(code="bad", field="name", message_zh="错", message_en="bad")
    >>> e.violation.to_dict()["field"]
    'name'
    """

    code: ClassVar[str] = "invalid"
    default_zh: ClassVar[str] = "数据无效"
    default_en: ClassVar[str] = "the value is invalid"

    def __init__(
        self,
        message_en: str | None = None,
        *,
        field: str = "",
        message_zh: str | None = None,
        code: str | None = None,
        hint: str = "",
    ) -> None:
        self.field = field
        self.message_en = redact(message_en or self.default_en)
        self.message_zh = redact(message_zh or self.default_zh)
        self.hint = redact(hint)
        if code is not None:
            self.code = code  # type: ignore[misc]
        super().__init__(self._text())

    def _text(self) -> str:
        where = f" [{self.field}]" if self.field else ""
        return f"{self.code}{where}: {self.message_en} / {self.message_zh}"

    def __str__(self) -> str:
        return self._text()

    @property
    def violation(self) -> Violation:
        """This error as a :class:`Violation`."""
        return Violation(self.code, self.field, self.message_zh, self.message_en, self.hint)


class InvalidNumber(ValidationError):
    """An identity or organisation number failed validation.

    >>> InvalidNumber(field="id_number").violation.code
    'invalid_number'
    """

    code: ClassVar[str] = "invalid_number"
    default_zh: ClassVar[str] = "号码无效"
    default_en: ClassVar[str] = "the number is invalid"


class InvalidFormat(InvalidNumber):
    """Characters or layout do not fit the scheme.

    >>> InvalidFormat().message_en
    'the number has the wrong format'
    """

    code: ClassVar[str] = "format"
    default_zh: ClassVar[str] = "号码格式错误"
    default_en: ClassVar[str] = "the number has the wrong format"


class InvalidLength(InvalidFormat):
    """The number has the wrong length.

    >>> isinstance(InvalidLength(), InvalidFormat), InvalidLength.code
    (True, 'length')
    """

    code: ClassVar[str] = "length"
    default_zh: ClassVar[str] = "号码长度错误"
    default_en: ClassVar[str] = "the number has the wrong length"


class InvalidChecksum(InvalidNumber):
    """The check character does not match.

    >>> InvalidChecksum(field="uscc").field
    'uscc'
    """

    code: ClassVar[str] = "checksum"
    default_zh: ClassVar[str] = "校验位错误"
    default_en: ClassVar[str] = "the check digit is wrong"


class InvalidComponent(InvalidNumber):
    """A component (date, region, type code…) of the number is not valid.

    >>> InvalidComponent().message_zh
    '号码组成部分无效'
    """

    code: ClassVar[str] = "component"
    default_zh: ClassVar[str] = "号码组成部分无效"
    default_en: ClassVar[str] = "a part of the number is invalid"


class InvalidDate(InvalidComponent):
    """The embedded date is impossible or in the future.

    >>> isinstance(InvalidDate(), InvalidComponent), InvalidDate.code
    (True, 'date')
    """

    code: ClassVar[str] = "date"
    default_zh: ClassVar[str] = "出生日期无效"
    default_en: ClassVar[str] = "the embedded date is invalid"


class InvalidRegion(InvalidComponent):
    """The embedded region (address) code is unknown or not valid then.

    >>> InvalidRegion(field="id_number").violation.field
    'id_number'
    """

    code: ClassVar[str] = "region"
    default_zh: ClassVar[str] = "地址码无效"
    default_en: ClassVar[str] = "the region code is unknown or not valid for that date"


class RuleViolations(ValidationError):
    """One or more rules were not met; ``violations`` holds every one of them.

    >>> err = RuleViolations([
    ...     Violation("a", "x", "甲", "first"), Violation("b", "y", "乙", "second")])
    >>> [v.code for v in err.violations]
    ['a', 'b']
    >>> err.code
    'a'
    """

    code: ClassVar[str] = "rule_violations"

    def __init__(self, violations: Iterable[Violation]) -> None:
        self.violations: tuple[Violation, ...] = tuple(violations)
        first = self.violations[0] if self.violations else None
        super().__init__(
            "; ".join(f"{v.code}: {v.message_en}" for v in self.violations) or "rules not met",
            field=first.field if first else "",
            message_zh="；".join(v.message_zh for v in self.violations) or "规则不满足",
            code=first.code if first else None,
        )


class PermissionDenied(StudentStatusError):
    """An operator tried to read or change something outside its role or scope.

    >>> PermissionDenied("county:110105", "record in 440306").code
    'out_of_scope'
    """

    code: ClassVar[str] = "out_of_scope"

    def __init__(self, operator: str, what: str, *, code: str | None = None) -> None:
        self.operator = operator
        self.what = what = redact(what)
        if code is not None:
            self.code = code  # type: ignore[misc]
        self.message_en = f"{operator} may not access {what}"
        self.message_zh = f"{operator} 无权访问 {what}"
        super().__init__(f"{self.code}: {self.message_en} / {self.message_zh}")


class NotFoundError(StudentStatusError, LookupError):
    """A looked-up entity does not exist.

    >>> err = NotFoundError("no record r9")
    >>> err.code, isinstance(err, LookupError)
    ('not_found', True)
    """

    code: ClassVar[str] = "not_found"

    def __init__(self, *args: object, field: str = "", message_zh: str | None = None) -> None:
        super().__init__(*args)
        text = str(self.args[0]) if self.args else ""
        self.field = field
        self.message_en = text
        self.message_zh = redact(message_zh) if message_zh is not None else text

    def __str__(self) -> str:
        if self.message_zh != self.message_en:
            return f"{self.message_en} / {self.message_zh}"
        return self.message_en


class StorageError(StudentStatusError):
    """A storage adapter failed; adapters translate driver errors into this family.

    >>> StorageError("commit failed").code
    'storage'
    """

    code: ClassVar[str] = "storage"


class FederationError(StorageError):
    """The two-level federation (provincial stores and a national hub) cannot do what was
    asked: a store that is not PostgreSQL, ``wal_level`` not ``logical``, a replication
    slot or publication missing, a province not set up.  ``code`` is stable, ``field`` names
    what is wrong (``store``, ``wal_level``, ``subscription``, ``province``,
    ``national_key``); ``hint`` says what to do.

    >>> err = FederationError("wal_level_not_logical", "wal_level is replica, not logical",
    ...                       "wal_level 为 replica，不是 logical",
    ...                       hint="ALTER SYSTEM SET wal_level = logical; then restart")
    >>> err.code, isinstance(err, StorageError)
    ('wal_level_not_logical', True)
    >>> str(err)
    'wal_level_not_logical: wal_level is replica, not logical / wal_level 为 replica，不是 logical'
    """

    code: ClassVar[str] = "federation"

    def __init__(
        self, code: str, message_en: str, message_zh: str, *, field: str = "", hint: str = ""
    ) -> None:
        self.code = code  # type: ignore[misc]
        self.field = field
        self.message_en = redact(message_en)
        self.message_zh = redact(message_zh)
        self.hint = redact(hint)
        super().__init__(f"{code}: {self.message_en} / {self.message_zh}")


class ConflictError(StorageError):
    """A write lost a race (stale version) or broke a uniqueness rule.

    >>> err = ConflictError("record r1 is stale")
    >>> err.code, isinstance(err, StorageError)
    ('conflict', True)
    """

    code: ClassVar[str] = "conflict"


class TryAgain(ConflictError):
    """A unit of work collided with a concurrent one and was rolled back whole: run it again.

    Raised for deadlocks, lock-wait time-outs and serialization failures (the
    database chose this unit as the one to undo), never for a broken rule.
    ``what`` says what the unit was doing; ``collided`` what it collided on
    (for example ``"identity claims"``); ``detail`` the driver's error class and
    SQLSTATE (``40P01`` a PostgreSQL deadlock, ``1213`` MySQL's, ``40001`` a
    serialization failure).  Nothing of the unit was written, so
    running it again is always safe; single-record services do so themselves
    a few times before raising it.

    >>> err = TryAgain("import children", collided="identity claims")
    >>> err.code, isinstance(err, ConflictError)
    ('try_again', True)
    >>> err.message_en
    'import children collided with a concurrent unit of work on identity claims; nothing ...'
    >>> err.message_zh
    '导入幼儿与其他同时进行的操作在身份登记锁上冲突，未写入任何数据，请重试'
    """

    code: ClassVar[str] = "try_again"

    def __init__(self, what: str, *, collided: str = "", detail: str = "") -> None:
        self.what = what
        self.collided = collided
        on_en = f" on {collided}" if collided else ""
        on_zh = f"在{_COLLIDED_ZH.get(collided, collided)}上" if collided else ""
        self.message_en = (
            f"{what} collided with a concurrent unit of work{on_en}; nothing was written, "
            "run it again"
        )
        what_zh = _WHAT_ZH.get(what, "本次操作")
        self.message_zh = f"{what_zh}与其他同时进行的操作{on_zh}冲突，未写入任何数据，请重试"
        self.detail = detail
        super().__init__(f"{self.code}: {self.message_en} / {self.message_zh}")


_WHAT_ZH = {
    "import children": "导入幼儿",
    "register child": "登记幼儿",
    "unit of work": "操作",
    "commit": "提交",
    "claim identity keys": "登记身份",
    "append audit": "写入审计日志",
    "lock audit chain": "锁定审计链",
    "claim numbers": "占用学籍号",
}
_COLLIDED_ZH = {
    "identity claims": "身份登记锁",
    "audit chain": "审计链",
    "temporary numbers": "临时学籍号",
}


def violations_to_dicts(violations: Iterable[Violation]) -> list[Mapping[str, str]]:
    """Return the JSON-ready form of many violations.

    >>> violations_to_dicts([Violation("c", "f", "中", "en")])[0]["message_en"]
    'en'
    """
    return [v.to_dict() for v in violations]
