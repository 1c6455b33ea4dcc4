"""Enumerations of the domain: states, grades, change kinds, problems, roles…

Every enum is a :class:`enum.StrEnum` whose value is the stable code used in
storage, JSON and the CLI, and which carries a Chinese label.

>>> State.ACTIVE.value, State.ACTIVE.label_zh
('ACTIVE', '在籍')
>>> Grade.JUNIOR.next()
<Grade.MIDDLE: 'MIDDLE'>
>>> Grade.parse("大班")
<Grade.SENIOR: 'SENIOR'>
>>> Sex.parse("女")
<Sex.F: 'F'>
"""

from __future__ import annotations

import enum

__all__ = [
    "AbsenceReason",
    "AttendanceStatus",
    "ChangeKind",
    "Grade",
    "KindergartenType",
    "LicenceState",
    "NumberKind",
    "ProblemKind",
    "ProblemStatus",
    "RequestStatus",
    "Role",
    "Sex",
    "State",
    "StepDecision",
    "VerificationResult",
]


class _Labelled(enum.StrEnum):
    """A string enum whose members carry a Chinese label."""

    label_zh: str

    def __new__(cls, value: str, label_zh: str = "") -> _Labelled:
        obj = str.__new__(cls, value)
        obj._value_ = value
        obj.label_zh = label_zh or value
        return obj

    @classmethod
    def parse(cls, text: str) -> _Labelled:
        """Parse a value, a member name or the Chinese label (case-insensitive for ASCII).

        Raises :class:`ValueError` (never anything else) for unknown text.
        """
        raw = str(text).strip()
        exact, folded = _parse_tables(cls)
        member = exact.get(raw) or folded.get(raw.upper())
        if member is not None:
            return member
        msg = f"unknown {cls.__name__}: {raw[:40]!r}"
        raise ValueError(msg)


_PARSE_TABLES: dict[type, tuple[dict[str, _Labelled], dict[str, _Labelled]]] = {}


def _parse_tables(cls: type[_Labelled]) -> tuple[dict[str, _Labelled], dict[str, _Labelled]]:
    """(value or label → member, upper-cased value → member), built once per enum."""
    tables = _PARSE_TABLES.get(cls)
    if tables is None:
        exact: dict[str, _Labelled] = {}
        folded: dict[str, _Labelled] = {}
        for member in reversed(list(cls)):  # the first member wins, as in a forward scan
            exact[member.label_zh] = member
            exact[member.value] = member
            folded[member.value.upper()] = member
        tables = _PARSE_TABLES[cls] = (exact, folded)
    return tables


class State(_Labelled):
    """Status (学籍状态) of a record."""

    PENDING = "PENDING", "待核准"
    ACTIVE = "ACTIVE", "在籍"
    SUSPENDED = "SUSPENDED", "休学"
    ABROAD = "ABROAD", "出国（境）"
    WITHDRAWN = "WITHDRAWN", "离园"
    GRADUATED = "GRADUATED", "毕业"
    DECEASED = "DECEASED", "死亡"
    CANCELLED = "CANCELLED", "注销"

    @property
    def is_live(self) -> bool:
        """Whether a record in this state still holds a place (for 一人一籍 checks)."""
        return self in (State.PENDING, State.ACTIVE, State.SUSPENDED, State.ABROAD)


class Grade(_Labelled):
    """Preschool grades, in order."""

    NURSERY = "NURSERY", "托班"
    JUNIOR = "JUNIOR", "小班"
    MIDDLE = "MIDDLE", "中班"
    SENIOR = "SENIOR", "大班"

    @property
    def rank(self) -> int:
        """0 for NURSERY … 3 for SENIOR."""
        return _GRADE_ORDER.index(self)

    def next(self, steps: int = 1) -> Grade | None:
        """The grade ``steps`` above this one, or ``None`` past SENIOR."""
        i = self.rank + steps
        return _GRADE_ORDER[i] if 0 <= i < len(_GRADE_ORDER) else None

    @classmethod
    def parse(cls, text: str) -> Grade:  # narrow the return type
        """Parse ``SENIOR``, ``senior`` or ``大班``."""
        member = super().parse(text)
        assert isinstance(member, Grade)
        return member


_GRADE_ORDER = (Grade.NURSERY, Grade.JUNIOR, Grade.MIDDLE, Grade.SENIOR)


class Sex(_Labelled):
    """Sex as recorded on identity documents."""

    M = "M", "男"
    F = "F", "女"

    @classmethod
    def parse(cls, text: str) -> Sex:
        """Parse ``M``/``F`` or ``男``/``女``."""
        member = super().parse(text)
        assert isinstance(member, Sex)
        return member


class ChangeKind(_Labelled):
    """Kinds of status change (学籍变动)."""

    REGISTER = "REGISTER", "入园建籍"
    APPROVE = "APPROVE", "核准"
    REJECT = "REJECT", "不予核准"
    PROMOTE = "PROMOTE", "升班"
    REPEAT = "REPEAT", "留级"
    SKIP = "SKIP", "跳级"
    GRADUATE = "GRADUATE", "毕业"
    TRANSFER = "TRANSFER", "转园"
    GO_ABROAD = "GO_ABROAD", "出国（境）"
    RETURN = "RETURN", "回国（境）"
    SUSPEND = "SUSPEND", "休学"
    EXTEND = "EXTEND", "续休"
    RESUME = "RESUME", "复学"
    WITHDRAW = "WITHDRAW", "退学/离园"
    REENROLL = "REENROLL", "重新入园"
    DEATH = "DEATH", "死亡"
    CANCEL = "CANCEL", "删除"
    RESTORE = "RESTORE", "信息恢复"
    RELOCATE = "RELOCATE", "所属县区调整"


class KindergartenType(_Labelled):
    """Public, private non-profit, private for-profit."""

    PUBLIC = "PUBLIC", "公办"
    PRIVATE_NONPROFIT = "PRIVATE_NONPROFIT", "民办非营利性"
    PRIVATE_FORPROFIT = "PRIVATE_FORPROFIT", "民办营利性"


class LicenceState(_Labelled):
    """State of a 办学许可证."""

    VALID = "VALID", "有效"
    SUSPENDED = "SUSPENDED", "暂停"
    REVOKED = "REVOKED", "吊销"


class ProblemKind(_Labelled):
    """Kinds of problem record (问题学籍)."""

    DUPLICATE_ID = "DUPLICATE_ID", "身份证件号重复"
    SUSPECTED_DUPLICATE = "SUSPECTED_DUPLICATE", "姓名性别出生日期重复"
    INVALID_ID = "INVALID_ID", "身份证件号错误"
    NOT_FOUND = "NOT_FOUND", "公安部校验不通过：身份证号不存在"
    NAME_MISMATCH = "NAME_MISMATCH", "公安部校验不通过：身份证号与姓名不匹配"
    INFO_MISMATCH = "INFO_MISMATCH", "公安部校验不通过：性别或出生日期不符"
    REGISTRY_DECEASED = "REGISTRY_DECEASED", "公安部校验不通过：已死亡或注销"


class ProblemStatus(_Labelled):
    """Life of a problem record."""

    OPEN = "OPEN", "待处理"
    EVIDENCE_SUBMITTED = "EVIDENCE_SUBMITTED", "已佐证"
    RESOLVED = "RESOLVED", "已处理"


class VerificationResult(_Labelled):
    """Answer of the public-security population registry for one child, or the county's.

    ``CONFIRMED`` is not a registry answer: the county accepted evidence (佐证,
    e.g. the household register) for a NOT_FOUND / NAME_MISMATCH /
    INFO_MISMATCH problem, which proves the record true.  Like ``MATCH`` it
    leads to a G number; reports and the audit trail keep the two apart.

    >>> VerificationResult.CONFIRMED.label_zh, VerificationResult.CONFIRMED.is_verified
    ('县级核实通过（佐证）', True)
    >>> VerificationResult.NOT_FOUND.is_verified
    False
    """

    MATCH = "MATCH", "一致"
    NOT_FOUND = "NOT_FOUND", "身份证号不存在"
    NAME_MISMATCH = "NAME_MISMATCH", "姓名不匹配"
    INFO_MISMATCH = "INFO_MISMATCH", "性别或出生日期不符"
    DECEASED = "DECEASED", "已死亡"
    CANCELLED = "CANCELLED", "已注销"
    CONFIRMED = "CONFIRMED", "县级核实通过（佐证）"

    @property
    def is_verified(self) -> bool:
        """Whether the identity is proven: a registry MATCH or a county confirmation."""
        return self in (VerificationResult.MATCH, VerificationResult.CONFIRMED)


class NumberKind(_Labelled):
    """Kinds of national student-status number (学籍号)."""

    G = "G", "正式学籍号（有身份证）"
    J = "J", "正式学籍号（无身份证）"
    L = "L", "临时学籍号"


class Role(_Labelled):
    """Operator roles, from a single kindergarten up to the ministry."""

    KINDERGARTEN = "kindergarten", "幼儿园"
    COUNTY = "county", "县级教育行政部门"
    CITY = "city", "市级教育行政部门"
    PROVINCE = "province", "省级教育行政部门"
    MINISTRY = "ministry", "教育部"


class RequestStatus(_Labelled):
    """Life of a change request."""

    OPEN = "OPEN", "审核中"
    APPROVED = "APPROVED", "已通过"
    REJECTED = "REJECTED", "已驳回"
    WITHDRAWN = "WITHDRAWN", "已撤回"


class StepDecision(_Labelled):
    """Decision of one approval step."""

    PENDING = "PENDING", "待审核"
    APPROVED = "APPROVED", "同意"
    REJECTED = "REJECTED", "不同意"


class AttendanceStatus(_Labelled):
    """Daily attendance."""

    PRESENT = "present", "出勤"
    ABSENT = "absent", "缺勤"


class AbsenceReason(_Labelled):
    """Why a child was absent."""

    SICK = "sick", "病假"
    PERSONAL = "personal", "事假"
    UNKNOWN = "unknown", "不明"
