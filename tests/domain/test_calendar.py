"""Working-day calendars: weekdays, holidays and 调休 make-up days."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from studentstatus.domain.calendar import (
    HolidayCalendar,
    WeekdayCalendar,
    WorkingDayCalendar,
    add_working_days,
    school_days,
    working_days_between,
)

# State Council notice for 2025 (国办发明电〔2024〕12号): National Day and Mid-Autumn
# 1–8 October off; Sunday 28 September and Saturday 11 October are working days.
NATIONAL_DAY_2025 = HolidayCalendar(
    holidays=frozenset(date(2025, 10, d) for d in range(1, 9)),
    extra_working_days=frozenset({date(2025, 9, 28), date(2025, 10, 11)}),
)

days = st.dates(min_value=date(2020, 1, 1), max_value=date(2030, 12, 31))
calendars = st.one_of(
    st.just(WeekdayCalendar()),
    st.builds(
        HolidayCalendar,
        holidays=st.frozensets(days, max_size=40),
        extra_working_days=st.frozensets(days, max_size=10),
    ),
)


class TestKnownDates:
    """Hand-checked dates."""

    def test_ten_working_days_from_a_monday(self) -> None:
        """Two full weeks."""
        assert add_working_days(date(2025, 9, 1), 10) == date(2025, 9, 15)

    def test_national_day_2025(self) -> None:
        """The 10-working-day deadline of a step started on 26 Sept 2025."""
        cal = NATIONAL_DAY_2025
        assert cal.is_working_day(date(2025, 9, 28))
        assert not cal.is_working_day(date(2025, 10, 6))
        assert cal.is_working_day(date(2025, 10, 11))
        # 28, 29, 30 Sept, then 9, 10, 11, 13, 14, 15, 16 Oct.
        assert add_working_days(date(2025, 9, 26), 10, cal) == date(2025, 10, 16)
        assert add_working_days(date(2025, 9, 26), 10) == date(2025, 10, 10)

    def test_make_up_day_wins_over_holiday(self) -> None:
        """A day listed in both sets is a working day."""
        d = date(2025, 10, 1)
        cal = HolidayCalendar(holidays=frozenset({d}), extra_working_days=frozenset({d}))
        assert cal.is_working_day(d)

    def test_school_days_across_a_holiday(self) -> None:
        """School days in the first half of October 2025."""
        got = school_days(date(2025, 9, 29), date(2025, 10, 12), NATIONAL_DAY_2025)
        assert [d.day for d in got] == [29, 30, 9, 10, 11]

    def test_calendar_without_working_days_fails_loudly(self) -> None:
        """No infinite loop: a calendar with no working day raises."""

        class Never:
            def is_working_day(self, d: date, /) -> bool:
                return False

        assert isinstance(Never(), WorkingDayCalendar)
        with pytest.raises(ValueError, match="no working day"):
            add_working_days(date(2025, 1, 1), 1, Never())

    def test_sets_are_frozen(self) -> None:
        """Plain sets and lists are converted to frozensets (hashable calendar)."""
        cal = HolidayCalendar(holidays={date(2025, 1, 1)})
        assert isinstance(cal.holidays, frozenset)
        assert hash(cal) == hash(HolidayCalendar(holidays=frozenset({date(2025, 1, 1)})))


def test_add_and_between_are_inverse() -> None:
    """working_days_between(a, add_working_days(a, n)) == n, both directions."""

    @given(days, st.integers(-60, 60), calendars)
    def check(start: date, n: int, cal: WorkingDayCalendar) -> None:
        end = add_working_days(start, n, cal)
        if n > 0:
            assert end > start
            assert cal.is_working_day(end)
            assert working_days_between(start, end, cal) == n
        elif n == 0:
            assert end == start
        else:
            assert end < start
            assert cal.is_working_day(end)

    check()


def test_school_days_agree_with_counting() -> None:
    """school_days(a, b) has working_days_between(a - 1 day, b) entries, all working days."""

    @given(days, st.integers(0, 90), calendars)
    def check(start: date, length: int, cal: WorkingDayCalendar) -> None:
        end = start + timedelta(days=length)
        got = school_days(start, end, cal)
        assert len(got) == working_days_between(start - timedelta(days=1), end, cal)
        assert all(cal.is_working_day(d) for d in got)
        assert got == sorted(set(got))

    check()


def test_between_is_antisymmetric() -> None:
    """Swapping the ends negates the count."""

    @given(days, days, calendars)
    def check(a: date, b: date, cal: WorkingDayCalendar) -> None:
        assert working_days_between(a, b, cal) == -working_days_between(b, a, cal)

    check()
