"""A province's own rules, property-tested with studentstatus' public test kit.

The province in this example starts from the rule file ``provinces/11.toml`` (no 托班,
no repeating, a year of suspension in all) and adds two rules of its own as host guards:

* no suspension in the graduating class's second term (大班, from 1 March);
* no skipping into the graduating class: a child may skip 托班/小班 → 中班, never 小班 → 大班.

The tests check that the province's caps hold on every legal history, that the host
rules only ever add to the national ones, and — with the stateful machine — that the
skip rule really holds.  ``test_the_machine_catches_a_broken_skip_rule`` shows the
machine finding an off-by-one in that rule at hypothesis' default example count.

Run it: ``python examples/property_tests.py`` (it runs itself under pytest); the
project's CI runs it through ``tests/examples/test_property_example.py``.
"""

from __future__ import annotations

import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

if __name__ == "__main__":  # run this file's tests under pytest, then stop
    sys.exit(
        subprocess.call([sys.executable, "-m", "pytest", __file__, "-q", "-p", "no:cacheprovider"])
    )

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.stateful import invariant, run_state_machine_as_test

from studentstatus.domain import machine
from studentstatus.domain.enums import ChangeKind, Grade, State
from studentstatus.domain.model import StatusChange, StatusRecord
from studentstatus.domain.policy import HostGuard
from studentstatus.errors import Violation
from studentstatus.province_rules import load_province
from studentstatus.testing.machine import StatusMachine
from studentstatus.testing.strategies import change_sequences, changes, child_records, records

RULES = load_province(Path(__file__).parent / "provinces" / "11.toml")


def graduating_term(
    record: StatusRecord | None, change: machine.Change, context: machine.Context
) -> list[Violation]:
    """No suspension in the graduating class's second term (大班, March to August)."""
    senior = record is not None and record.grade is Grade.SENIOR
    if senior and change.effective_date.month in range(3, 9):
        return [
            Violation(
                "graduating_term_suspension",
                "effective_date",
                "大班第二学期不得休学",
                "no suspension in the graduating class's second term",
                hint="apply before 1 March or after graduation",
            )
        ]
    return []


def no_skip_into_senior(
    record: StatusRecord | None, change: machine.Change, context: machine.Context
) -> list[Violation]:
    """A child may not skip into 大班: SKIP from 小班 (which lands in 大班) is refused."""
    if record is not None and record.grade is Grade.JUNIOR:
        return [Violation("skip_into_senior", "grade", "不得跳级进入大班", "no skipping into 大班")]
    return []


def broken_no_skip_into_senior(
    record: StatusRecord | None, change: machine.Change, context: machine.Context
) -> list[Violation]:
    """The same rule with an off-by-one: it looks at the grade one above the current one."""
    if record is not None and record.grade and record.grade.next() is Grade.SENIOR:  # next(2)!
        return [Violation("skip_into_senior", "grade", "不得跳级进入大班", "no skipping into 大班")]
    return []


SUSPENSION_GUARD = HostGuard(
    "graduating_term_suspension", graduating_term, kinds=frozenset({ChangeKind.SUSPEND})
)
PROVINCE = RULES.policy.with_guards(
    SUSPENSION_GUARD,
    HostGuard("skip_into_senior", no_skip_into_senior, kinds=frozenset({ChangeKind.SKIP})),
)


@settings(max_examples=200, deadline=None)
@given(change_sequences(policy=PROVINCE))
def test_province_caps_hold_on_every_legal_history(
    history: tuple[StatusRecord, list[StatusChange]],
) -> None:
    """Whatever legal history the strategies build, the province's rules hold."""
    record, events = history
    assert record.suspended_days <= PROVINCE.total_suspension_days
    assert not any(e.kind is ChangeKind.REPEAT for e in events)  # not allowed here
    assert machine.replay(events) == record


@settings(max_examples=200, deadline=None)
@given(records(state=State.ACTIVE, policy=PROVINCE), changes(kind=ChangeKind.SUSPEND))
def test_host_rule_adds_to_national_rules(record: StatusRecord, change: machine.Change) -> None:
    """The host guard never drops a national violation, and adds its own exactly when due."""
    ctx = machine.Context(today=change.effective_date, policy=RULES.policy)
    national = machine.check(record, change, context=ctx)
    with_guard = machine.Context(change.effective_date, RULES.policy.with_guards(SUSPENSION_GUARD))
    mine = machine.check(record, change, context=with_guard)
    assert mine[: len(national)] == national
    extra = {v.code for v in mine[len(national) :]}
    due = record.grade is Grade.SENIOR and 3 <= change.effective_date.month <= 8
    assert extra == ({"graduating_term_suspension"} if due else set())


@settings(max_examples=100, deadline=None)
@given(child_records(policy=PROVINCE))
def test_records_fit_the_province(pair: tuple[object, StatusRecord]) -> None:
    """Generated records use the province's grades only (no 托班 here)."""
    _, record = pair
    assert record.grade is not Grade.NURSERY


def test_a_senior_in_april_is_refused_with_both_messages() -> None:
    """A concrete case: the extra violation is explained in Chinese and English."""
    record = StatusRecord(
        "r1", "c1", "1111000001", "110105", State.ACTIVE, Grade.SENIOR, date(2023, 9, 1)
    )
    change = machine.Change(
        ChangeKind.SUSPEND, date(2026, 4, 1), reason="病休", until=date(2026, 4, 1) + timedelta(30)
    )
    found = machine.check(record, change, context=machine.Context(date(2026, 4, 1), PROVINCE))
    assert [v.code for v in found] == ["graduating_term_suspension"]
    assert found[0].message_zh
    assert found[0].message_en


def province_machine(skip_rule: HostGuard) -> type[StatusMachine]:
    """The stateful machine under the province's rules, with the spec of the skip rule as
    an invariant: whatever happens, no SKIP ever lands in 大班."""

    base = StatusMachine.configured(policy=RULES.policy, guards=[SUSPENSION_GUARD, skip_rule])

    class ProvinceMachine(base):  # type: ignore[misc,valid-type]
        @invariant()
        def nobody_skips_into_senior(self) -> None:
            for e in self.events:
                assert not (e.kind is ChangeKind.SKIP and e.after.get("grade") == "SENIOR"), e

    return ProvinceMachine


TestProvinceMachine = province_machine(PROVINCE.guards[1]).TestCase
TestProvinceMachine.settings = settings(deadline=None)  # hypothesis' default: 100 examples


def test_the_machine_catches_a_broken_skip_rule() -> None:
    """With the off-by-one rule, the machine finds a SKIP 小班 → 大班 within the default
    100 examples (no shrinking, to keep the run short)."""
    broken = HostGuard(
        "skip_into_senior", broken_no_skip_into_senior, kinds=frozenset({ChangeKind.SKIP})
    )
    with pytest.raises(AssertionError, match="SKIP"):
        run_state_machine_as_test(
            province_machine(broken),
            settings=settings(
                deadline=None,
                database=None,
                phases=[Phase.explicit, Phase.reuse, Phase.generate],
                suppress_health_check=[HealthCheck.too_slow],
            ),
        )
