"""Ages (周岁), school years, cut-offs and grade bands."""

from __future__ import annotations

import calendar
from datetime import date, timedelta

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from studentstatus.domain.age import (
    GRADES,
    age_at_cutoff,
    age_on,
    birth_range,
    cutoff,
    eligible_grades,
    grade_violations,
    school_year_of,
)
from studentstatus.domain.enums import Grade
from studentstatus.domain.policy import Policy

P = Policy()

# Haikou 2021 enrolment notice (docs/reference/domain.md#grades-and-ages):
# birth ranges per grade for school year 2021.
HAIKOU_2021 = [
    (Grade.JUNIOR, date(2017, 9, 1), date(2018, 8, 31)),
    (Grade.MIDDLE, date(2016, 9, 1), date(2017, 8, 31)),
    (Grade.SENIOR, date(2015, 9, 1), date(2016, 8, 31)),
]


class TestHaikou2021:
    """The published Haikou 2021 bands follow from the default policy."""

    @pytest.mark.parametrize(("grade", "first", "last"), HAIKOU_2021)
    def test_bounds_fit(self, grade: Grade, first: date, last: date) -> None:
        """First and last birth dates fit the grade; the days outside do not."""
        assert eligible_grades(first, 2021, P) == (grade,)
        assert eligible_grades(last, 2021, P) == (grade,)
        assert grade not in eligible_grades(first - timedelta(days=1), 2021, P)
        assert grade not in eligible_grades(last + timedelta(days=1), 2021, P)

    @pytest.mark.parametrize(("grade", "first", "last"), HAIKOU_2021)
    def test_birth_range(self, grade: Grade, first: date, last: date) -> None:
        """birth_range reproduces the notice."""
        assert birth_range(grade, 2021, P) == (first, last)

    def test_nursery_band(self) -> None:
        """托班: born (Y−3)-09-01 … (Y−2)-08-31."""
        assert birth_range(Grade.NURSERY, 2021, P) == (date(2018, 9, 1), date(2019, 8, 31))


class TestAgeOn:
    """Completed years, with the 29 February rule."""

    def test_birthday_reached_on_the_day(self) -> None:
        """The age increases on the birthday, not the day after."""
        assert age_on(date(2020, 3, 15), date(2023, 3, 14)) == 2
        assert age_on(date(2020, 3, 15), date(2023, 3, 15)) == 3

    def test_leap_day_counts_as_first_of_march_in_common_years(self) -> None:
        """Born 29 Feb: one on 1 Mar 2021, not on 28 Feb 2021; four on 29 Feb 2024."""
        born = date(2020, 2, 29)
        assert age_on(born, date(2021, 2, 28)) == 0
        assert age_on(born, date(2021, 3, 1)) == 1
        assert age_on(born, date(2024, 2, 28)) == 3
        assert age_on(born, date(2024, 2, 29)) == 4

    def test_before_birth_is_negative(self) -> None:
        """A day before the birth gives a negative age."""
        assert age_on(date(2020, 5, 1), date(2020, 4, 30)) == -1

    @given(st.dates(date(1990, 1, 1), date(2030, 12, 31)), st.integers(0, 30))
    def test_age_matches_anniversary(self, born: date, years: int) -> None:
        """On the n-th anniversary (1 Mar for a leap-day birth in a common year) the age is n."""
        year = born.year + years
        if (born.month, born.day) == (2, 29) and not calendar.isleap(year):
            anniversary = date(year, 3, 1)
        else:
            anniversary = born.replace(year=year)
        assert age_on(born, anniversary) == years
        assert age_on(born, anniversary - timedelta(days=1)) == years - 1

    @given(st.dates(date(1990, 1, 1), date(2030, 12, 31)), st.dates(), st.dates())
    def test_monotonic(self, born: date, a: date, b: date) -> None:
        """Age never decreases as the day moves forward."""
        lo, hi = sorted((a, b))
        assert age_on(born, lo) <= age_on(born, hi)


class TestSchoolYear:
    """School year Y runs 1 Sept Y … 31 Aug Y+1."""

    def test_boundaries(self) -> None:
        """31 Aug belongs to the previous school year, 1 Sept to the new one."""
        assert school_year_of(date(2026, 8, 31), P) == 2025
        assert school_year_of(date(2026, 9, 1), P) == 2026
        assert school_year_of(date(2027, 1, 15)) == 2026

    @given(st.dates(date(2, 1, 1)))
    def test_day_lies_in_its_school_year(self, day: date) -> None:
        """Every day lies between 1 Sept of its school year and 31 Aug of the next."""
        y = school_year_of(day, P)
        assert date(y, 9, 1) <= day
        if y + 1 <= date.max.year:
            assert day <= date(y + 1, 8, 31)

    def test_same_start_month_for_any_cutoff(self) -> None:
        """The start month does not move with the policy's cut-off."""
        p = attrs.evolve(P, cutoff_month=12, cutoff_day=31)
        assert school_year_of(date(2026, 9, 1), p) == 2026


class TestCutoff:
    """Cut-off days from the policy."""

    def test_default_is_31_august_of_start_year(self) -> None:
        """School year 2026 → 2026-08-31."""
        assert cutoff(2026, P) == date(2026, 8, 31)

    def test_leap_cutoff_falls_back(self) -> None:
        """A 29 Feb cut-off is 28 Feb in common years."""
        p = attrs.evolve(P, cutoff_month=2, cutoff_day=29)
        assert cutoff(2025, p) == date(2025, 2, 28)
        assert cutoff(2024, p) == date(2024, 2, 29)

    def test_other_cutoff_moves_bands(self) -> None:
        """With a 31 Dec cut-off a child born in October is a year older."""
        p = attrs.evolve(P, cutoff_month=12, cutoff_day=31)
        assert age_at_cutoff(date(2018, 10, 1), 2021, P) == 2
        assert age_at_cutoff(date(2018, 10, 1), 2021, p) == 3


class TestBands:
    """eligible_grades and grade_violations."""

    @given(st.dates(date(2010, 1, 1), date(2025, 12, 31)), st.integers(2012, 2030))
    def test_at_most_one_grade_without_tolerance(self, born: date, year: int) -> None:
        """Tolerance 0: at most one grade fits, and exactly the one whose band is the age."""
        grades = eligible_grades(born, year, P)
        age = age_at_cutoff(born, year, P)
        assert len(grades) <= 1
        assert bool(grades) == (2 <= age <= 5)

    @given(
        st.dates(date(2010, 1, 1), date(2025, 12, 31)),
        st.integers(2012, 2030),
        st.integers(0, 3),
    )
    def test_tolerance_widens(self, born: date, year: int, tol: int) -> None:
        """A wider tolerance never removes a grade."""
        narrow = set(eligible_grades(born, year, attrs.evolve(P, age_tolerance=tol)))
        wide = set(eligible_grades(born, year, attrs.evolve(P, age_tolerance=tol + 1)))
        assert narrow <= wide

    @given(st.dates(date(2010, 1, 1), date(2025, 12, 31)), st.integers(2012, 2030))
    def test_violations_agree_with_eligible(self, born: date, year: int) -> None:
        """grade_violations is empty exactly for the eligible grades."""
        fits = eligible_grades(born, year, P)
        for g in GRADES:
            problems = grade_violations(born, g, year, P)
            assert (not problems) == (g in fits)
            for v in problems:
                assert v.code == "grade_age_mismatch"
                assert v.field == "grade"
                assert v.message_zh
                assert v.message_en

    def test_hint_names_fitting_grade(self) -> None:
        """The hint names the grade that would fit."""
        (v,) = grade_violations(date(2018, 9, 1), Grade.JUNIOR, 2021, P)
        assert "NURSERY" in v.hint

    def test_too_young_for_any(self) -> None:
        """A baby fits no grade; the hint says so."""
        (v,) = grade_violations(date(2021, 1, 1), Grade.NURSERY, 2021, P)
        assert "no preschool grade" in v.hint
