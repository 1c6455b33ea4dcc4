"""A hypothesis stateful machine over the status rules (:mod:`studentstatus.domain.machine`).

:class:`StatusMachine` registers one child, then drives its record through
random changes — legal ones (parameters filled in to meet the parameter
guards, rare kinds drawn more often) and arbitrary ones — while the days pass,
and checks after every step:

* a refused change raises :class:`~studentstatus.errors.RuleViolations` with
  exactly the violations :func:`~studentstatus.domain.machine.check` returned,
  each with a code and both messages, and leaves the record as it was;
* an accepted change bumps the version by one and its event has that ``seq``;
* GRADUATED and DECEASED stay terminal; the grade stays on the ladder;
* ``replay(events)`` equals the live record, version included;
* every kind :func:`~studentstatus.domain.machine.allowed_changes` offers has
  a fitting from-state and passes every guard that does not read the change's
  parameters;
* the policy holds: no change of a kind the policy disallows was applied, and
  suspensions keep within its caps (one application, one suspension with its
  extensions, all suspensions of the record).

The policy and the host's guards are public parameters: :meth:`StatusMachine.configured`
returns a machine class that runs under one policy (or a choice of policies) with
extra :class:`~studentstatus.domain.policy.HostGuard` s, without touching the
machine's internals.  Add invariants of your own by subclassing; ``record``,
``events``, ``policy``, ``today`` and ``child`` are public.

Use it in a test module (pytest collects the ``TestCase``)::

    from hypothesis import settings
    from studentstatus.testing.machine import StatusMachine

    TestStatusMachine = StatusMachine.TestCase
    TestStatusMachine.settings = settings(max_examples=500, stateful_step_count=20)

    Guangdong = StatusMachine.configured(policy=my_policy, guards=[my_guard])
    TestGuangdong = Guangdong.TestCase

>>> from studentstatus.domain.policy import Policy
>>> M = StatusMachine.configured(policy=Policy(total_suspension_days=366))
>>> issubclass(M, StatusMachine), [p.total_suspension_days for p in M.policies]
(True, [366])
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Sequence
from typing import ClassVar

import attrs
from hypothesis import event
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from studentstatus.domain import machine
from studentstatus.domain.age import GRADES, birth_range, school_year_of
from studentstatus.domain.enums import ChangeKind, KindergartenType, LicenceState, State
from studentstatus.domain.model import (
    Child,
    Inspection,
    Kindergarten,
    Licence,
    StatusChange,
    StatusRecord,
)
from studentstatus.domain.policy import HostGuard, Policy
from studentstatus.errors import RuleViolations, Violation
from studentstatus.testing._domain import _valid_child, fill_change, weighted_kinds

__all__ = ["DEFAULT_POLICIES", "HOME", "OTHER", "UNLICENSED", "StatusMachine"]

_AT = datetime.datetime(2000, 1, 1, tzinfo=datetime.UTC)

#: The policies the machine chooses from unless configured: the national one, tight caps
#: with a widened age band, and a short restore window with invalid IDs refused.
DEFAULT_POLICIES: tuple[Policy, ...] = (
    Policy(),
    Policy(age_tolerance=1, max_suspension_days=200, total_suspension_days=400),
    Policy(restore_window_days=30, invalid_id="reject"),
)

# Fixed kindergartens keep the machine fast (the kindergarten strategies are tested on their
# own): two licensed over the strategies' WINDOW, and unlicensed variants.
_LICENCE = Licence("教民000000000000001号", "教育局", datetime.date(2010, 1, 1),
                   datetime.date(2040, 12, 31))  # fmt: skip
HOME = Kindergarten("1111000001", "12100000400000624D", "阳光幼儿园", "110105",
                    KindergartenType.PUBLIC, licences=(_LICENCE,))  # fmt: skip
"""The licensed kindergarten the child registers at (Beijing, 110105)."""
OTHER = Kindergarten("1144000002", "52440106MJ0000122D", "育才幼儿园", "440306",
                     KindergartenType.PRIVATE_NONPROFIT, licences=(_LICENCE,))  # fmt: skip
"""A second licensed kindergarten (Shenzhen, 440306), the usual transfer destination."""
UNLICENSED: tuple[Kindergarten, ...] = (
    attrs.evolve(HOME, school_code="1111000003", licences=()),
    attrs.evolve(HOME, school_code="1111000004",
                 licences=(attrs.evolve(_LICENCE, state=LicenceState.REVOKED),)),
    attrs.evolve(HOME, school_code="1111000005",
                 licences=(attrs.evolve(_LICENCE, inspections=(Inspection(2012, False),)),)),
)  # fmt: skip
"""Kindergartens without a valid licence: no licence, revoked, failed inspection."""


class StatusMachine(RuleBasedStateMachine):
    """Random legal and illegal changes on one record, with the invariants above.

    Class parameters (set them with :meth:`configured`, or in a subclass):

    ``policies``
        the policies one run chooses from (default :data:`DEFAULT_POLICIES`);
    ``guards``
        host guards added to each of them (default none);
    ``unlicensed``
        kindergartens a registration may be attempted at that must be refused.
    """

    policies: ClassVar[Sequence[Policy]] = DEFAULT_POLICIES
    guards: ClassVar[Sequence[HostGuard]] = ()
    unlicensed: ClassVar[Sequence[Kindergarten]] = UNLICENSED

    def __init__(self) -> None:
        super().__init__()
        self.record: StatusRecord | None = None
        self.events: list[StatusChange] = []
        self.today = datetime.date(2020, 9, 1)
        self.policy = Policy()
        self.kgs: dict[str, Kindergarten] = {}
        self.home: Kindergarten | None = None
        self.other: Kindergarten | None = None
        self.unlicensed_kg: Kindergarten | None = None
        self.child: Child | None = None
        self.ever_terminal: State | None = None

    @classmethod
    def configured(
        cls,
        policy: Policy | None = None,
        *,
        policies: Iterable[Policy] | None = None,
        guards: Iterable[HostGuard] = (),
        name: str | None = None,
    ) -> type[StatusMachine]:
        """A machine class running under ``policy`` (or choosing from ``policies``) with
        ``guards`` added: what a province's tests pass instead of overriding internals.

        >>> M = StatusMachine.configured(guards=[HostGuard("mine", lambda r, c, x: [])])
        >>> len(M.policies), [g.code for g in M.guards]
        (3, ['mine'])
        """
        chosen = tuple(policies) if policies is not None else (policy,) if policy else ()
        attrs_: dict[str, object] = {"guards": (*cls.guards, *guards)}
        if chosen:
            attrs_["policies"] = chosen
        return type(name or f"Configured{cls.__name__}", (cls,), attrs_)

    @initialize(data=st.data())
    def setup(self, data: st.DataObject) -> None:
        """Choose the policy, an unlicensed kindergarten, a child and the first day."""
        policy = data.draw(st.sampled_from(list(self.policies)), label="policy")
        self.policy = policy.with_guards(*self.guards)
        unlicensed = data.draw(st.sampled_from(list(self.unlicensed)), label="unlicensed")
        self.home, self.other, self.unlicensed_kg = HOME, OTHER, unlicensed
        self.kgs = {k.school_code: k for k in (HOME, OTHER, unlicensed)}
        grades = [g for g in GRADES if g in self.policy.grade_ages]
        # the lowest grade most often: more of the ladder (PROMOTE, REPEAT, SKIP) ahead
        grade = data.draw(st.sampled_from([*grades, grades[0], grades[0]]), label="grade")
        year = data.draw(st.integers(2016, 2026), label="year")
        first, last = birth_range(grade, year, self.policy)
        self.child = data.draw(_valid_child((first, last)), label="child")
        start = st.dates(datetime.date(year, 9, 1), datetime.date(year + 1, 8, 31))
        self.today = data.draw(start, label="today")
        # Most runs start registered (and many approved), so that short runs still reach
        # the interesting states; the rest exercise registration through the rules.
        if data.draw(st.integers(0, 9), label="registered") > 0:
            ctx = machine.Context(self.today, self.policy, kindergarten=HOME, child=self.child)
            self._try(fill_change(ChangeKind.REGISTER, None, ctx, data), ctx)
            if self.record is not None and data.draw(st.integers(0, 3), label="approved") > 0:
                self._try(fill_change(ChangeKind.APPROVE, self.record, ctx, data), ctx)
                if self.record.state is State.ACTIVE and data.draw(st.booleans(), label="behind"):
                    self.skip_a_promotion(data)  # a year on, not promoted: SKIP or REPEAT

    def _context(self, data: st.DataObject) -> machine.Context:
        assert self.home is not None
        mine = self.kgs[self.record.kindergarten_code] if self.record is not None else self.home
        dest = data.draw(st.sampled_from([k for k in self.kgs.values() if k is not mine] + [mine]))
        entering = data.draw(st.sampled_from([mine, self.unlicensed_kg]), label="kindergarten")
        return machine.Context(
            self.today,
            self.policy,
            kindergarten=mine if self.record is not None else entering,
            destination=dest,
            child=data.draw(st.sampled_from([self.child, self.child, None]), label="child"),
            open_request=data.draw(st.booleans(), label="open_request"),
        )

    @rule(days=st.sampled_from([0, 1, 30, 120, 200, 366, 800]))
    def advance(self, days: int) -> None:
        """Let time pass."""
        self.today += datetime.timedelta(days=days)

    @rule(kind=st.sampled_from(ChangeKind), legal=st.booleans(), data=st.data())
    def attempt(self, kind: ChangeKind, legal: bool, data: st.DataObject) -> None:
        """Try a change; refused or applied, the outcome must agree with ``check``."""
        ctx = self._context(data)
        change = fill_change(kind, self.record, ctx, data, legal=legal)
        if legal and kind is ChangeKind.TRANSFER and ctx.destination is not None:
            change = attrs.evolve(change, to_kindergarten=ctx.destination.school_code)
        self._try(change, ctx)

    @precondition(lambda self: self.record is None)
    @rule(data=st.data())
    def register(self, data: st.DataObject) -> None:
        """Register the child at the licensed home kindergarten with a grade that fits."""
        assert self.home is not None
        ctx = machine.Context(self.today, self.policy, kindergarten=self.home, child=self.child)
        self._try(fill_change(ChangeKind.REGISTER, None, ctx, data), ctx)

    @precondition(lambda self: self.record is not None)
    @rule(data=st.data())
    def attempt_allowed(self, data: st.DataObject) -> None:
        """Try one of the changes ``allowed_changes`` offers, with legal parameters; rare
        kinds are drawn more often (``KIND_WEIGHTS`` of the strategies)."""
        ctx = self._context(data)
        kinds = machine.allowed_changes(self.record, ctx)
        if not kinds:
            return
        kind = data.draw(weighted_kinds(kinds))
        self._try(fill_change(kind, self.record, ctx, data), ctx)

    @precondition(lambda self: self.record is not None and self.record.state is State.ACTIVE)
    @rule(data=st.data())
    def skip_a_promotion(self, data: st.DataObject) -> None:
        """The school year after the record's last grade change begins without promotion,
        then a grade decision is tried: the child is now a year older than its band, which
        is what makes SKIP possible (and REPEAT the other choice)."""
        record = self.record
        assert record is not None
        grade_year = (
            record.last_promoted_year + 1
            if record.last_promoted_year is not None
            else school_year_of(record.entry_date, self.policy)
        )
        next_year = datetime.date(grade_year + 1, 9, 1)
        offset = data.draw(st.integers(0, 200), label="days into the year")
        self.today = max(self.today, next_year + datetime.timedelta(days=offset))
        ctx = attrs.evolve(self._context(data), child=self.child)
        can_skip = record.grade is not None and record.grade.next(2) is not None
        choices = [ChangeKind.SKIP] * 3 + [ChangeKind.REPEAT] if can_skip else [ChangeKind.REPEAT]
        kind = data.draw(st.sampled_from(choices))
        self._try(fill_change(kind, record, ctx, data), ctx)

    def _try(self, change: machine.Change, ctx: machine.Context) -> None:
        problems = machine.check(self.record, change, context=ctx)
        for v in problems:
            assert v.code, v
            assert v.message_zh, v
            assert v.message_en, v
            assert v.field, v
        before = self.record
        refused: list[Violation] | None = None
        try:
            new, applied = machine.apply(
                self.record, change, context=ctx, recorded_at=_AT, record_id="r-1"
            )
        except RuleViolations as err:
            refused = list(err.violations)
        if refused is not None:
            event(f"refused {change.kind.value}: {problems[0].code if problems else '-'}")
            assert refused == problems
            assert problems
            assert self.record == before
            return
        assert not problems, problems
        expected_version = 1 if before is None else before.version + 1
        assert new.version == expected_version == applied.seq
        assert applied.kind is change.kind
        assert applied.from_state == (before.state if before is not None else None)
        assert applied.to_state is new.state
        if before is not None and before.state in machine.TERMINAL:
            raise AssertionError(f"{change.kind} left terminal {before.state}")
        event(f"applied {change.kind.value}")
        self.record = new
        self.events.append(applied)

    @invariant()
    def terminal_states_stay(self) -> None:
        """Once GRADUATED or DECEASED, always so."""
        if self.record is None:
            return
        if self.ever_terminal is not None:
            assert self.record.state is self.ever_terminal
        elif self.record.state in machine.TERMINAL:
            self.ever_terminal = self.record.state

    @invariant()
    def grade_on_the_ladder(self) -> None:
        """The grade is one of the four grades."""
        if self.record is not None:
            assert self.record.grade in GRADES

    @invariant()
    def replay_matches(self) -> None:
        """Folding the events gives the live record, version included."""
        if self.record is not None:
            assert machine.replay(self.events) == self.record
            assert self.record.version == len(self.events)

    @invariant()
    def suspension_fields_coherent(self) -> None:
        """Suspension dates are set exactly while SUSPENDED, within the caps."""
        r = self.record
        if r is None:
            return
        suspended = r.state is State.SUSPENDED
        assert (r.suspended_since is not None) == suspended
        assert (r.suspended_until is not None) == suspended
        assert (r.state is State.CANCELLED) == (r.state_before_cancel is not None)

    @invariant()
    def policy_holds(self) -> None:
        """No change of a disallowed kind was applied; suspensions keep within the caps."""
        pol = self.policy
        for e in self.events:
            assert e.kind not in pol.disallowed_changes, f"{e.kind.value} applied, disallowed"
        r = self.record
        if r is None:
            return
        assert r.suspended_days <= pol.total_suspension_days, (r.suspended_days, pol)
        if r.suspended_since is not None and r.suspended_until is not None:
            running = (r.suspended_until - r.suspended_since).days
            assert running <= pol.max_episode_days, running
            assert r.suspended_days + running <= pol.total_suspension_days

    @invariant()
    def allowed_changes_pass_context_guards(self) -> None:
        """What a portal offers fits the state and passes the context-only guards."""
        if self.home is None:
            return
        ctx = machine.Context(
            self.today,
            self.policy,
            kindergarten=self.kgs[self.record.kindergarten_code] if self.record else self.home,
            child=self.child,
        )
        guards = machine.GUARDS.values()
        param_codes = {c for g in guards if g.uses_change for c in g.codes}
        context_codes = {c for g in guards if not g.uses_change for c in g.codes} - param_codes
        context_codes |= set(machine.COMMON_GUARDS)
        for kind in machine.allowed_changes(self.record, ctx):
            probe = machine.Change(kind, self.today)
            found = {v.code for v in machine.check(self.record, probe, context=ctx)}
            assert not (found & context_codes), (kind, found)
