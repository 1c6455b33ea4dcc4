"""Suspension rules that hold: caps per application, per suspension and per record.

The decisions (docs/concepts/status-machine.md, "Suspensions"):

* SUSPEND and EXTEND are refused past any cap (``suspension_too_long``,
  ``suspension_episode_too_long``, ``suspension_cap_exceeded``);
* an EXTEND after the suspension's end is refused (``suspension_ended``), and its
  new end must lie after its effective date and the current end
  (``until_not_after_start``): no extension into the past;
* a RESUME after the end is accepted (the child is taken back), and only the days
  up to the approved end count as suspended;
* a suspension past its end plus the grace period is flagged for the dropout
  watch (:func:`machine.suspension_overdue`).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import attrs
from hypothesis import given, settings
from hypothesis import strategies as st

from studentstatus.domain import machine as m
from studentstatus.domain.enums import ChangeKind as K
from studentstatus.domain.enums import Grade, State
from studentstatus.domain.model import StatusRecord
from studentstatus.domain.policy import Policy
from studentstatus.errors import RuleViolations, Violation

AT = datetime(2020, 1, 1, tzinfo=UTC)
START = date(2016, 9, 1)


def _active() -> StatusRecord:
    return StatusRecord("r1", "c1", "1111000001", "110105", State.ACTIVE, Grade.JUNIOR, START)


def _do(record: StatusRecord, kind: K, day: date, policy: Policy, **kw: object) -> StatusRecord:
    change = m.Change(kind, day, reason="病休", **kw)  # type: ignore[arg-type]
    return m.apply(record, change, context=m.Context(day, policy), recorded_at=AT)[0]


def _codes(record: StatusRecord, kind: K, day: date, policy: Policy, **kw: object) -> list[str]:
    change = m.Change(kind, day, reason="病休", **kw)  # type: ignore[arg-type]
    return [v.code for v in m.check(record, change, context=m.Context(day, policy))]


def test_the_reported_history_keeps_the_cap() -> None:
    """SUSPEND 8 days, RESUME 13 months later: 8 days counted, not 394."""
    pol = Policy(total_suspension_days=366)
    r = _do(_active(), K.SUSPEND, date(2017, 1, 2), pol, until=date(2017, 1, 10))
    r = _do(r, K.RESUME, date(2018, 2, 1), pol)
    assert (r.state, r.suspended_days) == (State.ACTIVE, 8)


def test_extension_into_the_past_is_refused() -> None:
    """An EXTEND after the end, or ending before its effective date, is refused."""
    pol = Policy()
    r = _do(_active(), K.SUSPEND, date(2016, 9, 1), pol, until=date(2016, 9, 5))
    late = _codes(r, K.EXTEND, date(2017, 2, 15), pol, until=date(2016, 9, 6))
    assert late == ["suspension_ended", "until_not_after_start"]
    assert _codes(r, K.EXTEND, date(2016, 9, 4), pol, until=date(2016, 9, 5)) == [
        "until_not_after_start"
    ]
    assert _codes(r, K.EXTEND, date(2016, 9, 5), pol, until=date(2016, 10, 5)) == []
    ctx = m.Context(date(2017, 2, 15), pol)
    assert K.EXTEND not in m.allowed_changes(r, ctx)
    assert K.RESUME in m.allowed_changes(r, ctx)


def test_one_suspension_with_extensions_is_capped() -> None:
    """Six months per suspension, extensions included, though each extension is short."""
    pol = Policy(max_suspension_days=120, max_episode_days=183)
    r = _do(_active(), K.SUSPEND, date(2017, 3, 1), pol, until=date(2017, 6, 1))  # 92 days
    assert _codes(r, K.EXTEND, date(2017, 5, 1), pol, until=date(2017, 8, 31)) == []  # 183
    assert _codes(r, K.EXTEND, date(2017, 5, 1), pol, until=date(2017, 9, 1)) == [
        "suspension_episode_too_long"
    ]
    assert _codes(r, K.EXTEND, date(2017, 5, 1), pol, until=date(2017, 10, 1)) == [
        "suspension_too_long",
        "suspension_episode_too_long",
    ]


def test_overdue_suspension_is_flagged_after_the_grace_period() -> None:
    """Past the end plus the grace days, a SUSPENDED record is a suspected dropout."""
    pol = Policy(suspension_grace_days=30)
    r = _do(_active(), K.SUSPEND, date(2017, 3, 1), pol, until=date(2017, 6, 30))
    assert m.suspension_overdue(r, date(2017, 7, 30), pol) is None
    v = m.suspension_overdue(r, date(2017, 7, 31), pol)
    assert v is not None
    assert (v.code, v.field) == ("suspension_overdue", "suspended_until")
    assert v.message_zh
    assert v.message_en
    assert m.suspension_overdue(_active(), date(2030, 1, 1), pol) is None
    back = _do(r, K.RESUME, date(2017, 9, 1), pol)
    assert back.suspended_days == 121  # 1 March to 30 June, not to 1 September


# --------------------------------------------------------------------------- properties

_POLICIES = st.builds(
    Policy,
    max_suspension_days=st.integers(1, 400),
    max_episode_days=st.integers(1, 800),
    total_suspension_days=st.integers(1, 800),
)

_STEP = st.tuples(
    st.sampled_from([K.SUSPEND, K.EXTEND, K.RESUME, K.WITHDRAW]),
    st.integers(0, 500),  # days until the change
    st.integers(-30, 500),  # length asked for, from the current end (EXTEND) or the day
)


@settings(max_examples=1000, deadline=None, database=None)
@given(_POLICIES, st.lists(_STEP, max_size=12))
def test_suspension_invariants(policy: Policy, steps: list[tuple[K, int, int]]) -> None:
    """On any sequence of SUSPEND/EXTEND/RESUME/WITHDRAW, legal or not:

    * every application applied covers at most ``max_suspension_days``;
    * a suspension with its extensions covers at most ``max_episode_days``;
    * the record's suspended days (folded plus the running suspension) stay within
      ``total_suspension_days``;
    * an EXTEND applied was made on or before the end and ends after its day;
    * leaving SUSPENDED adds exactly the days from the start to the earlier of the
      day and the approved end; RESUME from SUSPENDED is never refused for lateness;
    * a refused change leaves the record as it was and says why.
    """
    record = _active()
    day = START
    for kind, wait, length in steps:
        day += timedelta(days=wait)
        base = record.suspended_until if kind is K.EXTEND and record.suspended_until else day
        until = base + timedelta(days=length)
        change = m.Change(kind, day, reason="病休", until=until)
        ctx = m.Context(day, policy)
        found = m.check(record, change, context=ctx)
        refused: tuple[Violation, ...] = ()
        try:
            new, event = m.apply(record, change, context=ctx, recorded_at=AT)
        except RuleViolations as err:
            refused = err.violations
        if refused:
            assert list(refused) == found
            leaving = kind in (K.RESUME, K.WITHDRAW) and record.state is State.SUSPENDED
            assert not leaving, f"leaving a suspension was refused: {found}"
            continue
        assert not found
        if kind is K.SUSPEND:
            assert new.suspended_since == day
            assert (until - day).days <= policy.max_suspension_days
        if kind is K.EXTEND:
            assert record.suspended_until is not None
            assert record.suspended_since is not None
            assert day <= record.suspended_until < until
            assert (until - record.suspended_until).days <= policy.max_suspension_days
        if record.state is State.SUSPENDED and new.state is not State.SUSPENDED:
            assert record.suspended_since is not None
            assert record.suspended_until is not None
            end = min(day, record.suspended_until)
            assert new.suspended_days == record.suspended_days + (end - record.suspended_since).days
        if new.state is State.SUSPENDED:
            assert new.suspended_since is not None
            assert new.suspended_until is not None
            running = (new.suspended_until - new.suspended_since).days
            assert running <= policy.max_episode_days
            assert new.suspended_days + running <= policy.total_suspension_days
        assert new.suspended_days <= policy.total_suspension_days
        assert event.seq == new.version
        record = new
        if record.state is State.WITHDRAWN:
            break


@settings(max_examples=1000, deadline=None, database=None)
@given(st.integers(1, 366), st.integers(0, 900), st.integers(0, 200))
def test_overdue_exactly_after_grace(length: int, after: int, grace: int) -> None:
    """``suspension_overdue`` flags a suspension exactly when its end is more than the
    grace days past, and never a record that is not SUSPENDED."""
    pol = attrs.evolve(Policy(), suspension_grace_days=grace)
    start = date(2017, 3, 1)
    r = _do(_active(), K.SUSPEND, start, pol, until=start + timedelta(days=length))
    today = start + timedelta(days=length + after)
    flagged = m.suspension_overdue(r, today, pol) is not None
    assert flagged == (after > grace)
    back = _do(r, K.RESUME, today, pol)
    assert m.suspension_overdue(back, today, pol) is None
    assert back.suspended_days == length
