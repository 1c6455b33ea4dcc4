"""Policies as data: every rule a province may set differently, with documented defaults.

A :class:`Policy` is a frozen value passed to checks and services.  Build a
variant with :func:`attrs.evolve`:

>>> import attrs
>>> p = Policy()
>>> p.cutoff_month, p.cutoff_day, p.max_suspension_days, p.total_suspension_days
(8, 31, 366, 731)
>>> strict = attrs.evolve(p, age_tolerance=0, invalid_id="reject")
>>> strict.invalid_id
'reject'
>>> p.approvals_for(ChangeKind.SUSPEND)
(<Role.COUNTY: 'county'>,)
>>> p.approvals_for(ChangeKind.PROMOTE)
()
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Literal

import attrs

from studentstatus.domain.enums import ChangeKind, Grade, Role

__all__ = ["DEFAULT_APPROVALS", "DEFAULT_GRADE_AGES", "Policy"]

DEFAULT_GRADE_AGES: Mapping[Grade, int] = MappingProxyType(
    {Grade.NURSERY: 2, Grade.JUNIOR: 3, Grade.MIDDLE: 4, Grade.SENIOR: 5}
)
"""Completed years (周岁) on the cut-off date for each grade (ARCHITECTURE.md)."""

_C = (Role.COUNTY,)
DEFAULT_APPROVALS: Mapping[ChangeKind, tuple[Role, ...]] = MappingProxyType(
    {
        ChangeKind.REGISTER: (),
        ChangeKind.APPROVE: _C,
        ChangeKind.REJECT: _C,
        ChangeKind.PROMOTE: (),
        ChangeKind.REPEAT: _C,
        ChangeKind.SKIP: _C,
        ChangeKind.GRADUATE: (),
        # The transfer chain is built per case (destination kg → source kg → source county →
        # destination county if other → both provinces if other province); these are its roles.
        ChangeKind.TRANSFER: (Role.KINDERGARTEN, Role.KINDERGARTEN, Role.COUNTY),
        ChangeKind.GO_ABROAD: _C,
        ChangeKind.RETURN: _C,
        ChangeKind.SUSPEND: _C,
        ChangeKind.EXTEND: _C,
        ChangeKind.RESUME: _C,
        ChangeKind.WITHDRAW: _C,
        ChangeKind.REENROLL: (),
        ChangeKind.DEATH: _C,
        ChangeKind.CANCEL: _C,
        ChangeKind.RESTORE: _C,
    }
)
"""Which roles must approve each change by default (ARCHITECTURE.md status table)."""


@attrs.frozen
class Policy:
    """Rules that vary by province, with the national defaults.

    Attributes:
        cutoff_month, cutoff_day: the school year's age cut-off (default 31 August).
        grade_ages: completed years on the cut-off for each grade.
        age_tolerance: years by which a grade's band is widened both ways (default 0).
        max_suspension_days: length of one suspension (default 366 days: one year,
            leap years included).
        total_suspension_days: cap on all suspensions of a record (default 731: two years).
        restore_window_days: how long after CANCEL a RESTORE is allowed (default 366).
        invalid_id: ``"problem"`` (accept a checksum-invalid resident ID as an
            INVALID_ID problem, as the national system does) or ``"reject"``.
        problem_due_month, problem_due_day: problems are due by this day of the
            school year's following July (default 31 July).
        step_working_days: working days each approval step has (default 10).
        absence_streak_days: consecutive absent school days that open a suspected
            dropout case (default 10).
        absence_month_share: share of a month's school days absent that opens one
            (default 0.5).
        approvals: roles that must approve each change kind.
        require_cross_province_approval: add both provinces to inter-province transfers.
    """

    cutoff_month: int = 8
    cutoff_day: int = 31
    grade_ages: Mapping[Grade, int] = attrs.field(default=DEFAULT_GRADE_AGES)
    age_tolerance: int = 0
    max_suspension_days: int = 366
    total_suspension_days: int = 731
    restore_window_days: int = 366
    invalid_id: Literal["problem", "reject"] = "problem"
    problem_due_month: int = 7
    problem_due_day: int = 31
    step_working_days: int = 10
    absence_streak_days: int = 10
    absence_month_share: float = 0.5
    approvals: Mapping[ChangeKind, tuple[Role, ...]] = attrs.field(default=DEFAULT_APPROVALS)
    require_cross_province_approval: bool = True

    def approvals_for(self, kind: ChangeKind) -> tuple[Role, ...]:
        """Roles that must approve ``kind`` (empty: applied directly)."""
        return tuple(self.approvals.get(kind, ()))
