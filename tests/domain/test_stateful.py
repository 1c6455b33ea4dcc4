"""Stateful test of the status machine: random legal and illegal changes on one record."""

from __future__ import annotations

from unittest import mock

import attrs
import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis.errors import Flaky
from hypothesis.stateful import run_state_machine_as_test

from studentstatus.domain import machine
from studentstatus.domain.enums import ChangeKind
from studentstatus.domain.policy import HostGuard, Policy
from studentstatus.errors import Violation
from studentstatus.testing.machine import StatusMachine

TestStatusMachine = StatusMachine.TestCase
TestStatusMachine.settings = settings(max_examples=500, stateful_step_count=20, deadline=None)

_QUICK = settings(
    max_examples=200,
    stateful_step_count=20,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
    phases=[Phase.generate],  # no shrinking: only "is it caught" matters here
)


def _broken_replay(events: list[machine.StatusChange]) -> machine.StatusRecord:
    record = _real_replay(events)
    return attrs.evolve(record, version=record.version - 1) if len(events) > 2 else record


_real_replay = machine.replay


def test_machine_catches_a_lossy_replay() -> None:
    """The invariants are not vacuous: a replay that loses a version is caught."""
    with (
        mock.patch.object(machine, "replay", _broken_replay),
        pytest.raises((AssertionError, Flaky)),
    ):
        run_state_machine_as_test(StatusMachine, settings=_QUICK)


def test_machine_catches_an_escape_from_a_terminal_state() -> None:
    """A table that let DECEASED records be restored would be caught."""
    escape = machine.Transition(
        machine.ChangeKind.RESTORE,
        frozenset({machine.State.CANCELLED, machine.State.DECEASED}),
        machine.State.ACTIVE,
        (),
        "信息恢复",
    )
    rows = {**machine._ROWS, machine.ChangeKind.RESTORE: escape}
    table = tuple(escape if t.kind is machine.ChangeKind.RESTORE else t for t in machine.TABLE)
    with (
        mock.patch.object(machine, "_ROWS", rows),
        mock.patch.object(machine, "TABLE", table),
        pytest.raises((AssertionError, Flaky)),
    ):
        run_state_machine_as_test(StatusMachine, settings=_QUICK)


def test_configured_machine_runs_under_a_province_policy_and_guards() -> None:
    """Policy and guards are public parameters; the machine checks the policy holds."""
    seen: list[str] = []

    def watch(record: object, change: machine.Change, ctx: object) -> list[Violation]:
        seen.append(change.kind.value)
        return []

    no_skip = Policy(disallowed_changes=frozenset({ChangeKind.SKIP}))
    configured = StatusMachine.configured(
        policy=no_skip, guards=[HostGuard("watch", watch, uses_change=True)]
    )
    assert list(configured.policies) == [no_skip]
    run_state_machine_as_test(configured, settings=_QUICK)
    assert "SKIP" in seen  # SKIP was tried, and refused: the policy_holds invariant passed


def test_machine_catches_a_policy_bypass() -> None:
    """A check that ignored the province's disallowed kinds would be caught."""
    no_skip = Policy(disallowed_changes=frozenset({ChangeKind.SKIP}))
    with (
        mock.patch.object(Policy, "allows", return_value=True),
        pytest.raises((AssertionError, Flaky)),
    ):
        run_state_machine_as_test(StatusMachine.configured(policy=no_skip), settings=_QUICK)
