"""Monitoring rules (pure): absence alerts, dropout cases and the ledger comparisons of 控辍保学.

Everything here is a pure function of the data passed in: no storage, no
clock (``today`` is an argument), no randomness.  The services in
:mod:`studentstatus.services.attendance` and :mod:`studentstatus.services.dropout`
feed it from the ports.

Absence rules (docs/reference/domain.md#monitoring; thresholds are
:class:`~studentstatus.domain.policy.Policy` settings):

* **streak** — a child recorded absent on ``policy.absence_streak_days``
  consecutive *school days* (default 10) opens a suspected-dropout case;
* **month share** — a child absent on more than ``policy.absence_month_share``
  (default 0.5) of the school days of one calendar month opens one too.  The
  denominator is every school day of the month in the calendar, so the rule
  fires mid-month only once the absences already exceed the share of the
  whole month (it never fires on "2 absences out of the first 2 days").

Only *recorded* absences count: a school day with no entry neither extends
nor breaks a streak's evidence — it breaks the streak (we do not presume a
child absent because the kindergarten recorded nothing).  Days that are not
school days are ignored whatever was recorded on them.

>>> from datetime import date
>>> days = [date(2025, 9, d) for d in (1, 2, 3, 4, 5, 8, 9, 10, 11, 12)]
>>> marks = {d: AttendanceStatus.ABSENT for d in days}
>>> current_streak(days, marks)
10
>>> [a.trigger for a in absence_alerts(days, marks, month_school_days={(2025, 9): 22})]
[<CaseTrigger.ABSENCE_STREAK: 'ABSENCE_STREAK'>]
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime

import attrs

from studentstatus.domain.enums import AttendanceStatus, Sex, State
from studentstatus.domain.policy import Policy
from studentstatus.errors import ValidationError

__all__ = [
    "AbsenceAlert",
    "CaseContact",
    "CaseStatus",
    "CaseTrigger",
    "ContactKind",
    "DropoutCase",
    "PopulationPerson",
    "absence_alerts",
    "absent_on_paper",
    "add_contact",
    "close_case",
    "current_streak",
    "longest_streak",
    "month_shares",
    "require_open",
    "unenrolled_eligible",
]


class CaseStatus(enum.StrEnum):
    """Life of a dropout case: open as suspected, closed as returned or as a confirmed dropout."""

    SUSPECTED = "SUSPECTED"
    """Open: on the county's suspected-dropout ledger (疑似辍学学生台账)."""
    RETURNED = "RETURNED"
    """Closed: attendance resumed (劝返复学 succeeded) — 销号."""
    WITHDRAWN = "WITHDRAWN"
    """Closed: confirmed withdrawn through an approved WITHDRAW change (辍学学生台账)."""

    @property
    def label_zh(self) -> str:
        """Chinese label.

        >>> CaseStatus.SUSPECTED.label_zh
        '疑似辍学'
        """
        return {"SUSPECTED": "疑似辍学", "RETURNED": "已复学", "WITHDRAWN": "确认辍学"}[self.value]

    @property
    def is_open(self) -> bool:
        """Whether the case is still open (only SUSPECTED is).

        >>> CaseStatus.SUSPECTED.is_open, CaseStatus.RETURNED.is_open
        (True, False)
        """
        return self is CaseStatus.SUSPECTED


class CaseTrigger(enum.StrEnum):
    """What opened a case."""

    ABSENCE_STREAK = "ABSENCE_STREAK"
    """N consecutive absent school days."""
    ABSENCE_MONTH_SHARE = "ABSENCE_MONTH_SHARE"
    """More than the policy share of a month's school days absent."""
    LOST_TRANSFER = "LOST_TRANSFER"
    """A transfer released by the source kindergarten but never completed (lost-child queue)."""
    MANUAL = "MANUAL"
    """Opened by a county officer (e.g. a list pushed by the ministry, door-to-door check)."""


class ContactKind(enum.StrEnum):
    """What a case entry records."""

    CONTACT = "CONTACT"
    """A contact with the family (visit, call)."""
    PERSUASION = "PERSUASION"
    """A persuasion attempt to bring the child back (劝返)."""


@attrs.frozen
class CaseContact:
    """One contact or persuasion attempt recorded on a case.

    >>> from datetime import UTC
    >>> c = CaseContact(datetime(2025, 10, 8, tzinfo=UTC), "county:110105", "家访，家长同意返园")
    >>> c.kind
    <ContactKind.PERSUASION: 'PERSUASION'>
    """

    at: datetime
    operator: str
    note: str
    kind: ContactKind = ContactKind.PERSUASION


@attrs.frozen
class DropoutCase:
    """A suspected or confirmed dropout case in a county's ledger (one open case per record).

    >>> from datetime import UTC
    >>> case = DropoutCase("k1", "r1", "110105", "1111000001", CaseTrigger.ABSENCE_STREAK,
    ...                    datetime(2025, 9, 15, tzinfo=UTC), date(2025, 9, 12))
    >>> case.status.is_open, case.version
    (True, 0)
    """

    id: str
    record_id: str
    county_code: str
    kindergarten_code: str
    trigger: CaseTrigger
    opened_at: datetime
    last_absent_day: date | None = None
    status: CaseStatus = CaseStatus.SUSPECTED
    detail: str = ""
    contacts: tuple[CaseContact, ...] = ()
    withdraw_request_id: str | None = None
    closed_at: datetime | None = None
    closed_by: str | None = None
    resolution: str = ""
    version: int = 0


def add_contact(case: DropoutCase, contact: CaseContact) -> DropoutCase:
    """A copy of ``case`` with ``contact`` appended; closed cases refuse (``ValueError``).

    >>> from datetime import UTC
    >>> at = datetime(2025, 9, 20, tzinfo=UTC)
    >>> case = DropoutCase("k1", "r1", "110105", "1111000001", CaseTrigger.MANUAL, at)
    >>> len(add_contact(case, CaseContact(at, "county:110105", "电话联系")).contacts)
    1
    """
    require_open(case)
    return attrs.evolve(case, contacts=(*case.contacts, contact))


def require_open(case: DropoutCase) -> None:
    """Refuse a closed case: :class:`~studentstatus.errors.ValidationError` ``case_closed``
    (field ``case_id``).

    >>> from datetime import UTC
    >>> at = datetime(2025, 9, 20, tzinfo=UTC)
    >>> case = DropoutCase("k1", "r1", "110105", "1111000001", CaseTrigger.MANUAL, at)
    >>> require_open(close_case(case, CaseStatus.RETURNED, at=at, by="system"))
    Traceback (most recent call last):
    ...
    studentstatus.errors.ValidationError: case_closed [case_id]: case k1 is closed (RETURNED) ...
    """
    if not case.status.is_open:
        raise ValidationError(
            f"case {case.id} is closed ({case.status.value})",
            message_zh=f"案件{case.id}已结案",
            code="case_closed",
            field="case_id",
        )


def close_case(
    case: DropoutCase, status: CaseStatus, *, at: datetime, by: str, resolution: str = ""
) -> DropoutCase:
    """A copy of ``case`` closed as ``status`` (RETURNED or WITHDRAWN).

    >>> from datetime import UTC
    >>> at = datetime(2025, 9, 20, tzinfo=UTC)
    >>> case = DropoutCase("k1", "r1", "110105", "1111000001", CaseTrigger.MANUAL, at)
    >>> close_case(case, CaseStatus.RETURNED, at=at, by="system").status
    <CaseStatus.RETURNED: 'RETURNED'>
    """
    if status.is_open:
        msg = "a case is closed as RETURNED or WITHDRAWN"
        raise ValueError(msg)
    if not case.status.is_open:
        msg = f"case {case.id} is already closed ({case.status.value})"
        raise ValueError(msg)
    return attrs.evolve(case, status=status, closed_at=at, closed_by=by, resolution=resolution)


# --------------------------------------------------------------------------------------------
# Absence rules


@attrs.frozen
class AbsenceAlert:
    """An absence rule that fired for one record.

    ``last_day`` is the last absent school day that made it fire; ``month`` is
    ``(year, month)`` for the month-share rule.
    """

    trigger: CaseTrigger
    last_day: date
    absent_days: int
    school_days: int
    month: tuple[int, int] | None = None

    def describe(self) -> str:
        """A short bilingual description for the case's ``detail``.

        >>> AbsenceAlert(CaseTrigger.ABSENCE_STREAK, date(2025, 9, 12), 10, 10).describe()
        '连续缺勤 10 个教学日 / absent 10 consecutive school days'
        """
        if self.trigger is CaseTrigger.ABSENCE_STREAK:
            return (
                f"连续缺勤 {self.absent_days} 个教学日 / "
                f"absent {self.absent_days} consecutive school days"
            )
        y, m = self.month or (self.last_day.year, self.last_day.month)
        return (
            f"{y}-{m:02d} 缺勤 {self.absent_days}/{self.school_days} 个教学日 / "
            f"absent {self.absent_days} of {self.school_days} school days in {y}-{m:02d}"
        )


def current_streak(school_days: Sequence[date], marks: Mapping[date, AttendanceStatus]) -> int:
    """Absent school days in a row, counted back from the last school day in ``school_days``.

    ``school_days`` is ordered; a day with no mark or a PRESENT mark ends the streak.

    >>> d = [date(2025, 9, 1), date(2025, 9, 2), date(2025, 9, 3)]
    >>> current_streak(d, {d[1]: AttendanceStatus.ABSENT, d[2]: AttendanceStatus.ABSENT})
    2
    >>> current_streak(d, {d[0]: AttendanceStatus.ABSENT})
    0
    """
    n = 0
    for day in reversed(school_days):
        if marks.get(day) is not AttendanceStatus.ABSENT:
            break
        n += 1
    return n


def longest_streak(
    school_days: Sequence[date], marks: Mapping[date, AttendanceStatus]
) -> tuple[int, date | None]:
    """The longest run of absent school days and the day it ends on (``(0, None)`` if none).

    >>> d = [date(2025, 9, 1), date(2025, 9, 2), date(2025, 9, 3)]
    >>> longest_streak(d, {d[0]: AttendanceStatus.ABSENT, d[1]: AttendanceStatus.ABSENT})
    (2, datetime.date(2025, 9, 2))
    """
    best, best_end, run = 0, None, 0
    for day in school_days:
        if marks.get(day) is AttendanceStatus.ABSENT:
            run += 1
            if run > best:
                best, best_end = run, day
        else:
            run = 0
    return best, best_end


def month_shares(
    school_days: Iterable[date],
    marks: Mapping[date, AttendanceStatus],
    month_school_days: Mapping[tuple[int, int], int],
) -> dict[tuple[int, int], tuple[int, int, date]]:
    """Per month: (absent school days, school days in the whole month, last absent day).

    Only months with at least one absence appear.

    >>> d = [date(2025, 9, 1), date(2025, 9, 2)]
    >>> month_shares(d, {d[0]: AttendanceStatus.ABSENT}, {(2025, 9): 22})
    {(2025, 9): (1, 22, datetime.date(2025, 9, 1))}
    """
    out: dict[tuple[int, int], tuple[int, int, date]] = {}
    for day in school_days:
        if marks.get(day) is not AttendanceStatus.ABSENT:
            continue
        key = (day.year, day.month)
        absent, total, last = out.get(key, (0, month_school_days.get(key, 0), day))
        out[key] = (absent + 1, total, max(last, day))
    return out


def absence_alerts(
    school_days: Sequence[date],
    marks: Mapping[date, AttendanceStatus],
    *,
    month_school_days: Mapping[tuple[int, int], int],
    policy: Policy | None = None,
) -> list[AbsenceAlert]:
    """Every absence rule that fires over ``school_days`` (ordered school days of the window).

    ``month_school_days`` gives the number of school days of each whole month
    the window touches (the month-share denominator).  The streak rule reports
    the longest run if it reaches the threshold; the month rule one alert per
    month whose share is strictly greater than the policy share.

    >>> days = [date(2025, 9, d) for d in range(1, 6)]
    >>> marks = dict.fromkeys(days[:3], AttendanceStatus.ABSENT)
    >>> alerts = absence_alerts(days, marks, month_school_days={(2025, 9): 5})
    >>> [(a.trigger.value, a.absent_days, a.school_days) for a in alerts]
    [('ABSENCE_MONTH_SHARE', 3, 5)]
    """
    pol = policy if policy is not None else Policy()
    alerts: list[AbsenceAlert] = []
    run, end = longest_streak(school_days, marks)
    if end is not None and run >= pol.absence_streak_days:
        alerts.append(AbsenceAlert(CaseTrigger.ABSENCE_STREAK, end, run, run))
    for month, (absent, total, last) in sorted(
        month_shares(school_days, marks, month_school_days).items()
    ):
        if total > 0 and absent / total > pol.absence_month_share:
            alerts.append(
                AbsenceAlert(CaseTrigger.ABSENCE_MONTH_SHARE, last, absent, total, month=month)
            )
    return alerts


# --------------------------------------------------------------------------------------------
# Ledger comparisons (四查三比对)


@attrs.frozen
class PopulationPerson:
    """One child of a population extract (户籍): the eligible-children ledger is built from these.

    The id number is masked in repr.

    >>> p = PopulationPerson("11010520200315002X", "王小明", Sex.M, date(2020, 3, 15), "110105")
    >>> "11010520200315002X" in repr(p)
    False
    """

    id_number: str = attrs.field(repr=lambda v: repr(_mask(v)))
    name: str
    sex: Sex
    birth_date: date
    hukou_region: str | None = None


def _mask(value: str) -> str:
    from studentstatus.errors import mask

    return mask(value)


def unenrolled_eligible(
    population: Iterable[PopulationPerson],
    enrolled_numbers: Iterable[str] | set[str],
    *,
    on: date,
    min_age: int = 3,
    max_age: int = 5,
) -> list[PopulationPerson]:
    """适龄未入园: people aged ``min_age``–``max_age`` on ``on`` whose number has no live record.

    ``enrolled_numbers`` are the document numbers of children holding a live
    status record (PENDING, ACTIVE, SUSPENDED, ABROAD).  Ages are completed
    years (周岁) on ``on``; people outside the band are left out.

    >>> kids = [
    ...     PopulationPerson("A", "甲", Sex.M, date(2021, 5, 1)),
    ...     PopulationPerson("B", "乙", Sex.F, date(2021, 6, 1)),
    ...     PopulationPerson("C", "丙", Sex.F, date(2024, 6, 1)),  # too young
    ... ]
    >>> [p.id_number for p in unenrolled_eligible(kids, {"A"}, on=date(2025, 9, 1))]
    ['B']
    """
    from studentstatus.domain.age import age_on

    enrolled = enrolled_numbers if isinstance(enrolled_numbers, set) else set(enrolled_numbers)
    return [
        p
        for p in population
        if min_age <= age_on(p.birth_date, on) <= max_age and p.id_number not in enrolled
    ]


def absent_on_paper(
    records: Iterable[tuple[str, State]],
    present_record_ids: Iterable[str] | set[str],
) -> list[str]:
    """名在人不在: ids of ACTIVE records with no PRESENT day in the window looked at.

    ``records`` are ``(record id, state)`` pairs; ``present_record_ids`` the
    records with at least one PRESENT entry in the window.  The result keeps the
    input order.

    >>> absent_on_paper([("r1", State.ACTIVE), ("r2", State.ACTIVE), ("r3", State.SUSPENDED)],
    ...                 {"r1"})
    ['r2']
    """
    present = present_record_ids if isinstance(present_record_ids, set) else set(present_record_ids)
    return [rid for rid, state in records if state is State.ACTIVE and rid not in present]
