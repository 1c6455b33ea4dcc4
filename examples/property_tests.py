"""A host's own rule, property-tested with studentstatus' strategies.

The province in this example (modelled on Fujian's rules, see docs/reference/domain.md) adds
two rules to the national ones:

* a tighter cap: suspensions may total one year at most (a policy setting);
* no suspension in the graduating class's second term (大班, from 1 March):
  a host rule layered on :func:`studentstatus.domain.machine.check`.

Run it: ``python examples/property_tests.py`` (it runs itself under pytest).
"""

from __future__ import annotations

import subprocess
import sys
from datetime import date, timedelta

if __name__ == "__main__":  # run this file's tests under pytest, then stop
    sys.exit(
        subprocess.call([sys.executable, "-m", "pytest", __file__, "-q", "-p", "no:cacheprovider"])
    )

import attrs
from hypothesis import given, settings
from hypothesis import strategies as st

from studentstatus.domain import machine
from studentstatus.domain.enums import ChangeKind, Grade, State
from studentstatus.domain.model import StatusRecord
from studentstatus.domain.policy import Policy
from studentstatus.errors import Violation
from studentstatus.testing.strategies import change_sequences, changes, records

PROVINCE = Policy(total_suspension_days=366)


def host_check(
    record: StatusRecord | None, change: machine.Change, *, context: machine.Context
) -> list[Violation]:
    """The national rules plus the province's own: every unmet rule, all at once."""
    found = machine.check(record, change, context=context)
    if (
        change.kind is ChangeKind.SUSPEND
        and record is not None
        and record.grade is Grade.SENIOR
        and change.effective_date.month in range(3, 9)
    ):
        found.append(
            Violation(
                "graduating_term_suspension",
                "effective_date",
                "大班第二学期不得休学",
                "no suspension in the graduating class's second term",
                hint="apply before 1 March or after graduation",
            )
        )
    return found


@settings(max_examples=200, deadline=None)
@given(change_sequences(policy=PROVINCE))
def test_province_cap_holds_on_every_legal_history(
    history: tuple[StatusRecord, list[machine.StatusChange]],
) -> None:
    """Whatever legal history the strategies build, suspensions stay within one year."""
    record, events = history
    assert record.suspended_days <= PROVINCE.total_suspension_days
    assert machine.replay(events) == record


@settings(max_examples=200, deadline=None)
@given(records(state=State.ACTIVE), changes(kind=ChangeKind.SUSPEND), st.data())
def test_host_rule_adds_to_national_rules(
    record: StatusRecord, change: machine.Change, data: st.DataObject
) -> None:
    """The host check never drops a national violation, and adds its own exactly when due."""
    ctx = machine.Context(today=change.effective_date, policy=PROVINCE)
    national = machine.check(record, change, context=ctx)
    mine = host_check(record, change, context=ctx)
    assert mine[: len(national)] == national
    extra = {v.code for v in mine[len(national) :]}
    due = record.grade is Grade.SENIOR and 3 <= change.effective_date.month <= 8
    assert extra == ({"graduating_term_suspension"} if due else set())


def test_a_senior_in_april_is_refused_with_both_messages() -> None:
    """A concrete case: the extra violation is explained in Chinese and English."""
    record = StatusRecord(
        "r1", "c1", "1111000001", "110105", State.ACTIVE, Grade.SENIOR, date(2023, 9, 1)
    )
    change = machine.Change(
        ChangeKind.SUSPEND, date(2026, 4, 1), reason="病休", until=date(2026, 4, 1) + timedelta(30)
    )
    found = host_check(record, change, context=machine.Context(today=date(2026, 4, 1)))
    codes = [v.code for v in found]
    assert codes == ["graduating_term_suspension"]
    assert found[0].message_zh
    assert found[0].message_en
    in_february = attrs.evolve(change, effective_date=date(2026, 2, 1))
    ctx = machine.Context(today=date(2026, 2, 1))
    assert host_check(record, in_february, context=ctx) == []
