"""Ages (周岁), school years and the grades a child's age fits.

Rules chosen here (sources: docs/reference/domain.md#grades-and-ages):

* **Age** is the number of *completed* years (周岁) on a day.  A child born on
  29 February has its birthday on **1 March in common years**: born
  2020-02-29, the child is 0 on 2021-02-28 and 1 on 2021-03-01.  Before the
  birth date the age is negative.
* **School year** ``Y`` runs from 1 September ``Y`` to 31 August ``Y+1``
  (:data:`SCHOOL_YEAR_START_MONTH` is 9 whatever the cut-off).
* **Cut-off**: the age that decides the grade is the age on the policy's
  cut-off day (default 31 August) of the school year's *start* year.  A
  cut-off of 29 February falls back to 28 February in common years.
* **Bands**: at the cut-off a child aged ``Policy.grade_ages[g]`` fits grade
  ``g`` (托班 2, 小班 3, 中班 4, 大班 5); ``Policy.age_tolerance`` widens every band
  by that many years both ways.

The Haikou 2021 notice (小班 born 2017-09-01…2018-08-31, 中班 2016-09-01…
2017-08-31, 大班 2015-09-01…2016-08-31) follows:

>>> from datetime import date
>>> from studentstatus.domain.policy import Policy
>>> p = Policy()
>>> eligible_grades(date(2018, 8, 31), 2021, p), eligible_grades(date(2018, 9, 1), 2021, p)
((<Grade.JUNIOR: 'JUNIOR'>,), (<Grade.NURSERY: 'NURSERY'>,))
>>> eligible_grades(date(2015, 9, 1), 2021, p)
(<Grade.SENIOR: 'SENIOR'>,)
>>> school_year_of(date(2022, 6, 30), p), school_year_of(date(2022, 9, 1), p)
(2021, 2022)
"""

from __future__ import annotations

import calendar
from datetime import date

from studentstatus.domain.enums import Grade
from studentstatus.domain.policy import Policy
from studentstatus.errors import Violation

__all__ = [
    "GRADES",
    "SCHOOL_YEAR_START_MONTH",
    "age_at_cutoff",
    "age_on",
    "birth_range",
    "cutoff",
    "eligible_grades",
    "grade_fits",
    "grade_violations",
    "school_year_of",
]

#: Month in which a school year starts (1 September); the same for every policy.
SCHOOL_YEAR_START_MONTH = 9

#: The grade ladder, lowest first.
GRADES: tuple[Grade, ...] = (Grade.NURSERY, Grade.JUNIOR, Grade.MIDDLE, Grade.SENIOR)


def age_on(birth_date: date, day: date) -> int:
    """Completed years (周岁) of someone born on ``birth_date`` on ``day``.

    A 29 February birthday is reached on 1 March in common years.

    >>> age_on(date(2020, 3, 15), date(2023, 3, 14)), age_on(date(2020, 3, 15), date(2023, 3, 15))
    (2, 3)
    >>> age_on(date(2020, 2, 29), date(2021, 2, 28)), age_on(date(2020, 2, 29), date(2021, 3, 1))
    (0, 1)
    >>> age_on(date(2020, 2, 29), date(2024, 2, 29))
    4
    """
    # Comparing (month, day) tuples puts (2, 29) after every day of February, so
    # in a common year the birthday is first reached on (3, 1).
    before_birthday = (day.month, day.day) < (birth_date.month, birth_date.day)
    return day.year - birth_date.year - int(before_birthday)


def school_year_of(day: date, policy: Policy | None = None) -> int:
    """The school year a day belongs to (school year ``Y`` = Sept ``Y`` … Aug ``Y+1``).

    ``policy`` is accepted for symmetry with the other functions: the start
    month is :data:`SCHOOL_YEAR_START_MONTH` (9) for every policy.

    >>> school_year_of(date(2026, 8, 31)), school_year_of(date(2026, 9, 1))
    (2025, 2026)
    """
    del policy
    return day.year if day.month >= SCHOOL_YEAR_START_MONTH else day.year - 1


def cutoff(school_year: int, policy: Policy) -> date:
    """The age cut-off day of a school year: the policy's month/day in its start year.

    >>> cutoff(2026, Policy())
    datetime.date(2026, 8, 31)
    >>> import attrs
    >>> cutoff(2025, attrs.evolve(Policy(), cutoff_month=2, cutoff_day=29))
    datetime.date(2025, 2, 28)
    """
    last = calendar.monthrange(school_year, policy.cutoff_month)[1]
    return date(school_year, policy.cutoff_month, min(policy.cutoff_day, last))


def age_at_cutoff(birth_date: date, school_year: int, policy: Policy) -> int:
    """Completed years on the cut-off day of ``school_year``.

    >>> age_at_cutoff(date(2017, 9, 1), 2021, Policy())
    3
    """
    return age_on(birth_date, cutoff(school_year, policy))


def grade_fits(age: int, grade: Grade, policy: Policy) -> bool:
    """Whether an age at the cut-off fits ``grade`` under the policy's bands and tolerance.

    >>> grade_fits(3, Grade.JUNIOR, Policy()), grade_fits(4, Grade.JUNIOR, Policy())
    (True, False)
    """
    band = policy.grade_ages.get(grade)
    return band is not None and abs(age - band) <= policy.age_tolerance


def eligible_grades(birth_date: date, school_year: int, policy: Policy) -> tuple[Grade, ...]:
    """Grades (lowest first) whose age band holds the child at the cut-off.

    >>> eligible_grades(date(2017, 9, 1), 2021, Policy())
    (<Grade.JUNIOR: 'JUNIOR'>,)
    >>> import attrs
    >>> eligible_grades(date(2017, 9, 1), 2021, attrs.evolve(Policy(), age_tolerance=1))
    (<Grade.NURSERY: 'NURSERY'>, <Grade.JUNIOR: 'JUNIOR'>, <Grade.MIDDLE: 'MIDDLE'>)
    >>> eligible_grades(date(2021, 1, 1), 2021, Policy())
    ()
    """
    age = age_at_cutoff(birth_date, school_year, policy)
    return tuple(g for g in GRADES if grade_fits(age, g, policy))


def birth_range(grade: Grade, school_year: int, policy: Policy) -> tuple[date, date]:
    """First and last birth dates that fit ``grade`` in ``school_year`` (tolerance included).

    >>> birth_range(Grade.JUNIOR, 2021, Policy())
    (datetime.date(2017, 9, 1), datetime.date(2018, 8, 31))
    """
    band = policy.grade_ages[grade]
    cut = cutoff(school_year, policy)
    oldest = band + policy.age_tolerance
    youngest = band - policy.age_tolerance
    last = _years_before(cut, youngest)
    first = _years_before(cut, oldest + 1)
    return date.fromordinal(first.toordinal() + 1), last


def _years_before(day: date, years: int) -> date:
    year = day.year - years
    last = calendar.monthrange(year, day.month)[1]
    return date(year, day.month, min(day.day, last))


def grade_violations(
    birth_date: date, grade: Grade, school_year: int, policy: Policy, *, field: str = "grade"
) -> list[Violation]:
    """``[]`` when the grade fits the child's age, else one ``grade_age_mismatch`` violation.

    The hint names the grades that would fit.

    >>> grade_violations(date(2018, 8, 31), Grade.JUNIOR, 2021, Policy())
    []
    >>> [v.code for v in grade_violations(date(2018, 9, 1), Grade.JUNIOR, 2021, Policy())]
    ['grade_age_mismatch']
    """
    age = age_at_cutoff(birth_date, school_year, policy)
    if grade_fits(age, grade, policy):
        return []
    fitting = eligible_grades(birth_date, school_year, policy)
    cut = cutoff(school_year, policy).isoformat()
    hint = (
        "grades that fit: " + ", ".join(g.value for g in fitting)
        if fitting
        else "no preschool grade fits this age"
    )
    return [
        Violation(
            "grade_age_mismatch",
            field,
            f"幼儿截至{cut}为{age}周岁，与{grade.label_zh}不符",
            f"the child is {age} on the cut-off {cut}, which does not fit {grade.value}",
            hint,
        )
    ]
