"""A province's policy and host guards hold on every path that runs the status machine:
registration (online and bulk), approval, problem resolution and the rollover — on the SQL
store too, where the set-based rollover would otherwise bypass a province's guard."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from studentstatus.domain.enums import ChangeKind, Grade, State
from studentstatus.domain.policy import HostGuard, Policy
from studentstatus.errors import RuleViolations, Violation
from studentstatus.ports import Store
from studentstatus.services.approval import approve_records
from studentstatus.services.intake import import_children, register_child
from studentstatus.services.rollover import apply_rollover
from studentstatus.testing.examples import child_row, example_runtime

from ._changes_world import KG_A, KG_D, OPS, make_store, runtime, seed


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    with make_store(request.param, tmp_path) as made:
        yield made


def _too_young() -> dict[str, str]:
    """A child one year too young for 中班 under the national age bands."""
    return child_row(birth_date="2021-03-15")


def test_registration_uses_the_province_policy() -> None:
    national = example_runtime()
    with pytest.raises(RuleViolations) as err:
        register_child(national, OPS["kgA"], _too_young())
    assert "grade_age_mismatch" in {v.code for v in err.value.violations}
    beijing = example_runtime(policies={"11": Policy(age_tolerance=1)})
    assert register_child(beijing, OPS["kgA"], _too_young()).state is State.PENDING
    report = import_children(beijing, OPS["kgA"], [_too_young()])
    assert (report.accepted, report.rejected) == (1, [])


def _no_promotion(record: object, change: object, context: object) -> list[Violation]:
    return [Violation("no_promotion_here", "change", "本省暂停升班", "no promotion here")]


def test_the_rollover_honours_a_province_guard(store: Store) -> None:
    rt = runtime(store)
    seed(rt, [(KG_A, Grade.JUNIOR), (KG_D, Grade.JUNIOR)])
    rt.register_guard(
        HostGuard("no_promotion_here", _no_promotion, kinds=frozenset({ChangeKind.PROMOTE})),
        provinces=["11"],
    )
    rt.clock.at = datetime(2026, 9, 1, 8, tzinfo=UTC)  # type: ignore[attr-defined]
    report = apply_rollover(rt, OPS["ministry"], 2026)
    assert (report.totals["promote"], report.totals["blocked"]) == (1, 1)
    with store.unit_of_work() as uow:
        assert uow.records.get("r0000").grade is Grade.JUNIOR  # Beijing: held by its guard
        assert uow.records.get("r0001").grade is Grade.MIDDLE  # Guangdong: promoted


def test_approval_uses_the_province_policy(store: Store) -> None:
    rt = runtime(store)
    rt.register_guard(
        HostGuard("approve_in_person", lambda r, c, x: [
            Violation("approve_in_person", "change", "须现场核验", "approve in person")
        ], kinds=frozenset({ChangeKind.APPROVE})),
        provinces=["11"],
    )  # fmt: skip
    seed(rt, [])  # the kindergartens only
    row = child_row(entry_date="2025-09-01", grade="大班")
    report = import_children(rt, OPS["kgA"], [row])
    assert report.accepted == 1
    approved = approve_records(rt, OPS["c105"], all_pending=True)
    assert approved.approved == []
    assert [r["code"] if isinstance(r, dict) else r.code for r in approved.refused] == [
        "approve_in_person"
    ]
    with store.unit_of_work() as uow:
        assert {r.state for r in uow.records.iter()} == {State.PENDING}
