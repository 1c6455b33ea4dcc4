"""The test-writer kit makes data an office would have, and reaches every change and state."""

from __future__ import annotations

import collections

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from studentstatus.domain import machine
from studentstatus.domain.age import grade_violations, school_year_of
from studentstatus.domain.child import check_child
from studentstatus.domain.enums import ChangeKind, Grade, Sex, State
from studentstatus.domain.model import Child, StatusChange, StatusRecord
from studentstatus.domain.policy import Policy
from studentstatus.testing.strategies import (
    MIDDLE_DOT,
    SURNAMES,
    change_sequences,
    child_records,
    children,
    given_names,
    records,
    surnames,
)

_COMPOUND = ("欧阳", "司马", "诸葛", "上官")
_MALE = {"father", "grandfather"}
_FEMALE = {"mother", "grandmother"}


def _surname(name: str) -> str:
    return next((c for c in _COMPOUND if name.startswith(c)), name[:1])


@settings(max_examples=300, deadline=None, database=None)
@given(children())
def test_children_look_like_registered_children(child: Child) -> None:
    """Surname first from the list; a one- or two-character given name; dotted minority names
    with ethnicity 05; guardians whose relation fits their sex; the father's surname is the
    child's, the mother's another."""
    assert check_child(child, today=child.birth_date) == []
    relations = [g.relation for g in child.guardians]
    assert len(set(relations)) == len(relations)
    assert set(relations) <= _MALE | _FEMALE
    if MIDDLE_DOT in child.name:
        own, father_part = child.name.split(MIDDLE_DOT)
        assert own
        assert child.ethnicity == "05"
        for g in child.guardians:
            if g.relation == "father":
                assert g.name.split(MIDDLE_DOT)[0] == father_part
        return
    surname = _surname(child.name)
    assert surname in SURNAMES or surname in _COMPOUND
    assert 1 <= len(child.name) - len(surname) <= 2
    for g in child.guardians:
        assert MIDDLE_DOT not in g.name
        if g.relation in ("father", "grandfather"):
            assert _surname(g.name) == surname, (child.name, g)
        if g.relation == "mother":
            assert _surname(g.name) != surname, (child.name, g)


def test_surnames_follow_the_frequency_list() -> None:
    """Common surnames much more often than rare ones; many distinct names in 300 children."""
    counts: collections.Counter[str] = collections.Counter()
    names: set[str] = set()

    @settings(max_examples=300, database=None, derandomize=True, phases=[Phase.generate])
    @given(surnames(), given_names(Sex.F))
    def draw(surname: str, given: str) -> None:
        counts[surname] += 1
        names.add(surname + given)

    draw()
    top10 = sum(counts[s] for s in SURNAMES[:10])
    last50 = sum(counts[s] for s in SURNAMES[50:])
    assert top10 > 2 * last50
    assert len(names) > 150  # the old strategy gave about 100


@settings(max_examples=200, deadline=None, database=None)
@given(st.sampled_from(State).flatmap(lambda s: st.tuples(st.just(s), records(state=s))))
def test_records_are_consistent_with_their_state(pair: tuple[State, StatusRecord]) -> None:
    """A GRADUATED record is in SENIOR, a PENDING one is new, a SUSPENDED one is within the
    caps, a CANCELLED one knows its earlier state; versions count the events needed."""
    state, r = pair
    pol = Policy()
    assert r.state is state
    assert (r.suspended_since is not None) == (state is State.SUSPENDED)
    assert (r.state_before_cancel is not None) == (state is State.CANCELLED)
    if state is State.GRADUATED:
        assert r.grade is Grade.SENIOR
    if state is State.PENDING:
        assert (r.version, r.last_promoted_year, r.suspended_days) == (1, None, 0)
    if state is not State.PENDING:
        assert r.version >= 2
    if r.suspended_since is not None and r.suspended_until is not None:
        running = (r.suspended_until - r.suspended_since).days
        assert 0 < running <= pol.max_suspension_days
        assert r.suspended_days + running <= pol.total_suspension_days
    assert r.suspended_days <= pol.total_suspension_days
    if r.cancelled_on is not None:
        assert r.cancelled_on >= r.entry_date


@settings(max_examples=200, deadline=None, database=None)
@given(child_records())
def test_child_and_record_fit_together(pair: tuple[Child, StatusRecord]) -> None:
    """The child is the record's, and its age fits the grade at entry and now."""
    child, record = pair
    assert record.child_id == child.id
    entry_year = school_year_of(record.entry_date)
    year = record.last_promoted_year + 1 if record.last_promoted_year is not None else entry_year
    assert grade_violations(child.birth_date, record.grade, year, Policy()) == []


@settings(max_examples=50, deadline=None, database=None)
@given(child_records(policy=Policy(grade_ages={Grade.JUNIOR: 3, Grade.MIDDLE: 4, Grade.SENIOR: 5})))
def test_no_nursery_records_without_the_band(pair: tuple[Child, StatusRecord]) -> None:
    """A policy without 托班 gets no NURSERY records."""
    assert pair[1].grade is not Grade.NURSERY


def test_histories_reach_every_change_kind_and_state() -> None:
    """In 300 histories every change kind and every state turns up (the distribution is in
    docs/how-to/property-testing.md), and no history stops at REGISTER."""
    kinds: collections.Counter[ChangeKind] = collections.Counter()
    states: collections.Counter[State] = collections.Counter()
    short = 0

    @settings(
        max_examples=300,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(change_sequences())
    def walk(history: tuple[StatusRecord, list[StatusChange]]) -> None:
        nonlocal short
        record, events = history
        assert machine.replay(events) == record
        kinds.update({e.kind for e in events})
        states.update({e.to_state for e in events})
        short += len(events) == 1

    walk()
    requested = set(ChangeKind) - machine.SYSTEM_CHANGES  # RELOCATE follows a kindergarten
    assert set(kinds) == requested, requested - set(kinds)
    assert set(states) == set(State), set(State) - set(states)
    assert short == 0
    assert min(kinds.values()) >= 5
