"""Working days (工作日): deadlines of approval steps, school days for attendance.

Approval steps have ``N`` working days (ten by default, see
:attr:`~studentstatus.domain.policy.Policy.step_working_days`).  Which days
count is a :class:`WorkingDayCalendar`: the default :class:`WeekdayCalendar`
counts Monday to Friday; :class:`HolidayCalendar` adds public holidays and
China's make-up working days (调休), the weekend days that become working days
around long holidays.  The calendar data (the State Council's yearly notice)
is the host's to supply: this module never reads a file or the clock.

Conventions:

* :func:`add_working_days` counts *after* ``start``: ``start`` itself never
  counts, so ``add_working_days(friday, 1)`` is the next Monday.
* :func:`working_days_between` counts the working days in ``(a, b]`` (so that
  ``working_days_between(a, add_working_days(a, n)) == n``), negative when
  ``b < a``.
* :func:`school_days` lists the working days in ``[start, end]``, both ends
  included.

>>> from datetime import date
>>> add_working_days(date(2025, 9, 26), 1)  # Friday → Monday
datetime.date(2025, 9, 29)
>>> national_day = HolidayCalendar(
...     holidays=frozenset(date(2025, 10, d) for d in range(1, 9)),
...     extra_working_days=frozenset({date(2025, 9, 28), date(2025, 10, 11)}),
... )
>>> add_working_days(date(2025, 9, 26), 1, national_day)  # 28 Sept is a make-up Sunday
datetime.date(2025, 9, 28)
>>> add_working_days(date(2025, 9, 30), 1, national_day)  # 1–8 Oct are holidays
datetime.date(2025, 10, 9)
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, timedelta
from typing import Protocol, runtime_checkable

import attrs

__all__ = [
    "HolidayCalendar",
    "WeekdayCalendar",
    "WorkingDayCalendar",
    "add_working_days",
    "school_days",
    "working_days_between",
]

_ONE = timedelta(days=1)


@runtime_checkable
class WorkingDayCalendar(Protocol):
    """Anything that says whether a day is a working day.

    >>> isinstance(WeekdayCalendar(), WorkingDayCalendar)
    True
    """

    def is_working_day(self, d: date, /) -> bool:
        """Whether ``d`` is a working day.

        >>> WeekdayCalendar().is_working_day(date(2025, 9, 28))
        False
        """
        ...


@attrs.frozen
class WeekdayCalendar:
    """Monday to Friday are working days; no holidays.

    >>> WeekdayCalendar().is_working_day(date(2025, 9, 27))  # a Saturday
    False
    """

    def is_working_day(self, d: date, /) -> bool:
        """Whether ``d`` is a weekday (Monday–Friday).

        >>> WeekdayCalendar().is_working_day(date(2025, 9, 29))
        True
        """
        return d.weekday() < 5


def _date_set(values: Iterable[date]) -> frozenset[date]:
    return frozenset(values)


@attrs.frozen
class HolidayCalendar:
    """Weekdays minus ``holidays``, plus ``extra_working_days`` (调休 make-up days).

    A day in both sets is a working day (the make-up list wins): the State
    Council's notices name make-up days explicitly, so they are the more
    specific fact.

    >>> cal = HolidayCalendar(holidays=frozenset({date(2025, 10, 1)}),
    ...                       extra_working_days=frozenset({date(2025, 9, 28)}))
    >>> cal.is_working_day(date(2025, 10, 1)), cal.is_working_day(date(2025, 9, 28))
    (False, True)
    >>> cal.is_working_day(date(2025, 9, 27)), cal.is_working_day(date(2025, 9, 30))
    (False, True)
    """

    holidays: frozenset[date] = attrs.field(default=frozenset(), converter=_date_set)
    extra_working_days: frozenset[date] = attrs.field(default=frozenset(), converter=_date_set)

    def is_working_day(self, d: date, /) -> bool:
        """Whether ``d`` is a working day under this calendar.

        >>> HolidayCalendar().is_working_day(date(2025, 10, 1))
        True
        """
        if d in self.extra_working_days:
            return True
        if d in self.holidays:
            return False
        return d.weekday() < 5


_DEFAULT = WeekdayCalendar()

# A calendar with no working day at all would make add_working_days loop forever;
# give up after this many consecutive non-working days (more than a year).
_MAX_GAP = 400


def _no_working_day(start: date) -> ValueError:
    msg = f"no working day within {_MAX_GAP} days of {start.isoformat()}"
    return ValueError(msg)


def add_working_days(start: date, n: int, calendar: WorkingDayCalendar | None = None) -> date:
    """The day on which the ``n``-th working day after ``start`` falls.

    ``start`` itself is not counted; ``n == 0`` returns ``start`` unchanged and
    a negative ``n`` counts backwards.  Raises :class:`ValueError` if the
    calendar has no working day for more than 400 consecutive days.

    >>> add_working_days(date(2025, 9, 1), 10)  # Monday + 10 working days
    datetime.date(2025, 9, 15)
    >>> add_working_days(date(2025, 9, 15), -10)
    datetime.date(2025, 9, 1)
    >>> add_working_days(date(2025, 9, 6), 0)
    datetime.date(2025, 9, 6)
    """
    cal = calendar if calendar is not None else _DEFAULT
    step = _ONE if n >= 0 else -_ONE
    remaining = abs(n)
    d = start
    gap = 0
    while remaining:
        d += step
        if cal.is_working_day(d):
            remaining -= 1
            gap = 0
        else:
            gap += 1
            if gap > _MAX_GAP:
                raise _no_working_day(start)
    return d


def working_days_between(a: date, b: date, calendar: WorkingDayCalendar | None = None) -> int:
    """Working days in ``(a, b]``; negative (``-working_days_between(b, a)``) when ``b < a``.

    >>> working_days_between(date(2025, 9, 1), date(2025, 9, 15))
    10
    >>> working_days_between(date(2025, 9, 15), date(2025, 9, 1))
    -10
    >>> working_days_between(date(2025, 9, 5), date(2025, 9, 7))  # Friday → Sunday
    0
    """
    if b < a:
        return -working_days_between(b, a, calendar)
    cal = calendar if calendar is not None else _DEFAULT
    count = 0
    d = a
    while d < b:
        d += _ONE
        if cal.is_working_day(d):
            count += 1
    return count


def school_days(start: date, end: date, calendar: WorkingDayCalendar | None = None) -> list[date]:
    """The working days from ``start`` to ``end``, both included, in order.

    Empty when ``end < start``.

    >>> [d.day for d in school_days(date(2025, 9, 5), date(2025, 9, 9))]
    [5, 8, 9]
    >>> school_days(date(2025, 9, 9), date(2025, 9, 5))
    []
    """
    cal = calendar if calendar is not None else _DEFAULT
    days: list[date] = []
    d = start
    while d <= end:
        if cal.is_working_day(d):
            days.append(d)
        d += _ONE
    return days
