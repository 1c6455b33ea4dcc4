"""Policies as data: every rule a province may set differently, with documented defaults.

A :class:`Policy` is a frozen value passed to checks and services.  Build a
variant with :func:`attrs.evolve`:

>>> import attrs
>>> p = Policy()
>>> p.cutoff_month, p.cutoff_day, p.max_suspension_days, p.total_suspension_days
(8, 31, 366, 731)
>>> p.max_episode_days, p.suspension_grace_days
(731, 30)
>>> strict = attrs.evolve(p, age_tolerance=0, invalid_id="reject")
>>> strict.invalid_id
'reject'
>>> p.approvals_for(ChangeKind.SUSPEND)
(<Role.COUNTY: 'county'>,)
>>> p.approvals_for(ChangeKind.PROMOTE)
()
>>> no_skip = attrs.evolve(p, disallowed_changes=frozenset({ChangeKind.SKIP}))
>>> no_skip.allows(ChangeKind.SKIP), no_skip.allows(ChangeKind.PROMOTE)
(False, True)
>>> attrs.evolve(p, step_days={ChangeKind.TRANSFER: 5}).step_days_for(ChangeKind.TRANSFER)
5
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from types import MappingProxyType
from typing import Any, Literal

import attrs

from studentstatus.domain.enums import ChangeKind, Grade, Role
from studentstatus.errors import Violation

__all__ = ["DEFAULT_APPROVALS", "DEFAULT_GRADE_AGES", "OPTIONAL_CHANGES", "HostGuard", "Policy"]

DEFAULT_GRADE_AGES: Mapping[Grade, int] = MappingProxyType(
    {Grade.NURSERY: 2, Grade.JUNIOR: 3, Grade.MIDDLE: 4, Grade.SENIOR: 5}
)
"""Completed years (周岁) on the cut-off date for each grade."""

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
        # Applied with a kindergarten's move, which both counties approved (services.moves).
        ChangeKind.RELOCATE: (),
    }
)
"""Which roles must approve each change by default (the national status table)."""

OPTIONAL_CHANGES: frozenset[ChangeKind] = frozenset(
    {
        ChangeKind.REPEAT,
        ChangeKind.SKIP,
        ChangeKind.TRANSFER,
        ChangeKind.GO_ABROAD,
        ChangeKind.SUSPEND,
        ChangeKind.EXTEND,
        ChangeKind.REENROLL,
        ChangeKind.RESTORE,
    }
)
"""Change kinds a province may switch off (:attr:`Policy.disallowed_changes`).

The others are needed to enter, leave or end a record (REGISTER, APPROVE, PROMOTE,
GRADUATE, RESUME, RETURN, WITHDRAW, DEATH, CANCEL, REJECT) and stay on.
"""


@attrs.frozen
class HostGuard:
    """A rule of the host's own, checked with the built-in guards of the status machine.

    ``fn(record, change, context)`` returns the violations it finds (each with a
    code, a field and messages in Chinese and English); ``kinds`` limits it to
    some change kinds (empty: every kind); ``uses_change`` says it reads the
    change's parameters (reason, until, grade, …), so that
    :func:`~studentstatus.domain.machine.allowed_changes` (which probes with an
    empty change) leaves it out.  Register it with :meth:`Policy.with_guards`
    or :meth:`studentstatus.services.runtime.Runtime.register_guard`.

    >>> g = HostGuard("no_skip_here", lambda r, c, x: [], kinds=frozenset({ChangeKind.SKIP}))
    >>> g.applies_to(ChangeKind.SKIP), g.applies_to(ChangeKind.PROMOTE)
    (True, False)
    """

    code: str
    fn: Callable[[Any, Any, Any], Iterable[Violation]]
    kinds: frozenset[ChangeKind] = frozenset()
    uses_change: bool = False

    def applies_to(self, kind: ChangeKind) -> bool:
        """Whether this guard is checked for ``kind``."""
        return not self.kinds or kind in self.kinds


@attrs.frozen
class Policy:
    """Rules that vary by province, with the national defaults.

    Attributes:
        cutoff_month, cutoff_day: the school year's age cut-off (default 31 August).
        grade_ages: completed years on the cut-off for each grade.
        age_tolerance: years by which a grade's band is widened both ways (default 0).
        max_suspension_days: length of one application, a SUSPEND or an EXTEND
            (default 366 days: one school year, leap years included).
        max_episode_days: length of one suspension with all its extensions, from
            its SUSPEND to its end (default 731: two years).
        total_suspension_days: cap on all suspensions of a record (default 731: two years).
        suspension_grace_days: days after a suspension's end without RESUME after
            which the record is overdue (:func:`~studentstatus.domain.machine.suspension_overdue`;
            default 30).
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
        step_days: working days each approval step has, per change kind (kinds not
            listed: ``step_working_days``).
        require_cross_province_approval: add both provinces to inter-province transfers.
        disallowed_changes: change kinds this province does not allow (refused with
            ``change_not_allowed_here``); only :data:`OPTIONAL_CHANGES` may be listed.
        guards: the host's own rules (:class:`HostGuard`), checked after the built-in ones.
    """

    cutoff_month: int = 8
    cutoff_day: int = 31
    grade_ages: Mapping[Grade, int] = attrs.field(default=DEFAULT_GRADE_AGES)
    age_tolerance: int = 0
    max_suspension_days: int = 366
    total_suspension_days: int = 731
    max_episode_days: int = 731
    suspension_grace_days: int = 30
    restore_window_days: int = 366
    invalid_id: Literal["problem", "reject"] = "problem"
    problem_due_month: int = 7
    problem_due_day: int = 31
    step_working_days: int = 10
    absence_streak_days: int = 10
    absence_month_share: float = 0.5
    approvals: Mapping[ChangeKind, tuple[Role, ...]] = attrs.field(default=DEFAULT_APPROVALS)
    require_cross_province_approval: bool = True
    step_days: Mapping[ChangeKind, int] = attrs.field(factory=dict)
    disallowed_changes: frozenset[ChangeKind] = attrs.field(
        default=frozenset(), validator=attrs.validators.instance_of(frozenset)
    )
    guards: tuple[HostGuard, ...] = ()

    def __attrs_post_init__(self) -> None:
        fixed = self.disallowed_changes - OPTIONAL_CHANGES
        if fixed:
            names = ", ".join(sorted(k.value for k in fixed))
            raise ValueError(f"these change kinds cannot be disallowed: {names}")

    def approvals_for(self, kind: ChangeKind) -> tuple[Role, ...]:
        """Roles that must approve ``kind`` (empty: applied directly)."""
        return tuple(self.approvals.get(kind, ()))

    def step_days_for(self, kind: ChangeKind) -> int:
        """Working days each approval step of ``kind`` has."""
        return self.step_days.get(kind, self.step_working_days)

    def allows(self, kind: ChangeKind) -> bool:
        """Whether this province allows changes of ``kind`` at all."""
        return kind not in self.disallowed_changes

    def with_guards(self, *guards: HostGuard) -> Policy:
        """This policy with ``guards`` added after its own.

        >>> g = HostGuard("mine", lambda r, c, x: [])
        >>> [h.code for h in Policy().with_guards(g).guards]
        ['mine']
        """
        return attrs.evolve(self, guards=(*self.guards, *guards))
