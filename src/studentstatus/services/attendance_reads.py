"""Reading attendance in bulk: shared by the attendance, dropout and report services.

>>> from studentstatus.adapters.memory import MemoryStore
>>> with MemoryStore().unit_of_work() as uow:
...     fetch_attendance(uow, [], start=None, end=None)
{}
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date, timedelta

from studentstatus.domain.calendar import WorkingDayCalendar, school_days
from studentstatus.domain.model import AttendanceEntry
from studentstatus.ports import UnitOfWork

__all__ = ["fetch_attendance", "month_school_day_counts"]


def fetch_attendance(
    uow: UnitOfWork, record_ids: Sequence[str], *, start: date | None, end: date | None
) -> dict[str, list[AttendanceEntry]]:
    """Current entry per day for many records, in one bulk read
    (:meth:`~studentstatus.ports.AttendanceRepository.for_records`).

    >>> from studentstatus.adapters.memory import MemoryStore
    >>> with MemoryStore().unit_of_work() as uow:
    ...     fetch_attendance(uow, ["r1"], start=None, end=None)
    {}
    """
    return uow.attendance.for_records(record_ids, start=start, end=end)


def month_school_day_counts(
    months: Iterable[tuple[int, int]], calendar: WorkingDayCalendar
) -> dict[tuple[int, int], int]:
    """School days of each whole calendar month (the month-share denominator).

    >>> from studentstatus.domain.calendar import WeekdayCalendar
    >>> month_school_day_counts([(2025, 9)], WeekdayCalendar())
    {(2025, 9): 22}
    """
    out: dict[tuple[int, int], int] = {}
    for y, m in set(months):
        first = date(y, m, 1)
        last = (date(y + (m == 12), m % 12 + 1, 1)) - timedelta(days=1)
        out[(y, m)] = len(school_days(first, last, calendar))
    return out
