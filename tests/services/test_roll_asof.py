"""As-of roll from the change log: late-recorded transfers count from their effective date."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from studentstatus.domain.enums import ChangeKind, Grade, State, StepDecision
from studentstatus.errors import NotFoundError
from studentstatus.services import changes as svc
from studentstatus.services.roll import list_roll

from ._changes_world import KG_A, KG_B, OPS, make_store, runtime, seed

ADAPTERS = ["memory", "files", "sqlite"]


def _approve_all(rt, request) -> None:  # type: ignore[no-untyped-def]
    by_text = {str(op): op for op in OPS.values()}
    for step in request.steps:
        if step.decision is StepDecision.PENDING:
            svc.approve_step(rt, by_text[f"{step.role.value}:{step.scope}"], request.id)


def _ids(rt, kg: str, day: date) -> list[str]:  # type: ignore[no-untyped-def]
    return [e.record_id for e in list_roll(rt, OPS["c105"], kg, day)]


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_roll_as_of_with_late_transfer(adapter: str, tmp_path: Path) -> None:
    with make_store(adapter, tmp_path) as store:
        rt = runtime(store)
        seed(rt, [(KG_A, Grade.JUNIOR), (KG_A, Grade.MIDDLE), (KG_A, Grade.SENIOR)])
        rt.clock.at = datetime(2026, 3, 20, 9, tzinfo=UTC)  # type: ignore[attr-defined]
        # Recorded on 20 March, effective 1 March.
        out = svc.request_change(
            rt,
            OPS["kgB"],
            "r0000",
            ChangeKind.TRANSFER,
            to_kindergarten=KG_B.school_code,
            effective=date(2026, 3, 1),
        )
        _approve_all(rt, out.request)
        out = svc.request_change(
            rt, OPS["kgA"], "r0001", ChangeKind.WITHDRAW, reason="搬家", effective=date(2026, 3, 10)
        )
        _approve_all(rt, out.request)
        # A transfer still waiting for approvals moves nobody.
        svc.request_change(
            rt, OPS["kgB"], "r0002", ChangeKind.TRANSFER, to_kindergarten=KG_B.school_code
        )
        a, b = KG_A.school_code, KG_B.school_code
        assert _ids(rt, a, date(2025, 8, 31)) == []
        assert _ids(rt, a, date(2025, 9, 1)) == ["r0000", "r0001", "r0002"]
        assert _ids(rt, a, date(2026, 2, 28)) == ["r0000", "r0001", "r0002"]
        assert _ids(rt, b, date(2026, 2, 28)) == []
        assert _ids(rt, a, date(2026, 3, 1)) == ["r0001", "r0002"]
        assert _ids(rt, b, date(2026, 3, 1)) == ["r0000"]
        assert _ids(rt, a, date(2026, 3, 10)) == ["r0002"]
        entry = list_roll(rt, OPS["kgB"], b, date(2026, 3, 5))[0]
        assert (entry.state, entry.grade, entry.child_id) == (State.ACTIVE, Grade.JUNIOR, "c0000")


def test_roll_scope() -> None:
    with make_store("memory", Path(".")) as store:
        rt = runtime(store)
        seed(rt, [(KG_A, Grade.JUNIOR)])
        with pytest.raises(NotFoundError):
            list_roll(rt, OPS["kgB"], KG_A.school_code, date(2025, 9, 1))
        with pytest.raises(NotFoundError):
            list_roll(rt, OPS["c305"], KG_A.school_code, date(2025, 9, 1))
        with pytest.raises(NotFoundError):
            list_roll(rt, OPS["ministry"], "0000000000", date(2025, 9, 1))
        assert len(list_roll(rt, OPS["kgA"], KG_A.school_code, date(2025, 9, 1))) == 1
