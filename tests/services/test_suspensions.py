"""Overdue suspensions are flagged into the dropout watch, under the record's province's
grace period; a late resumption is accepted and ends the question."""

from __future__ import annotations

from datetime import date, timedelta

import attrs
import pytest

from studentstatus.adapters.memory import MemoryStore
from studentstatus.domain.enums import ChangeKind, Grade, State
from studentstatus.domain.jurisdiction import Operator
from studentstatus.domain.monitoring import CaseTrigger
from studentstatus.domain.policy import Policy
from studentstatus.errors import PermissionDenied, StudentStatusError
from studentstatus.services import changes as svc
from studentstatus.services.dropout import cases_of
from studentstatus.services.suspensions import flag_overdue_suspensions, overdue_suspensions

from ._changes_world import KG_A, KG_D, OPS, runtime, seed


def _suspend(rt, record_id: str, ended: date) -> None:  # type: ignore[no-untyped-def]
    with rt.store.unit_of_work() as uow:
        rec = uow.records.get(record_id)
        uow.records.update(
            attrs.evolve(rec, state=State.SUSPENDED, suspended_since=ended - timedelta(90),
                         suspended_until=ended)
        )  # fmt: skip
        uow.commit()


def test_overdue_after_the_province_grace_period() -> None:
    """Guangdong waits 10 days, the national rules 30: each record by its province."""
    rt = runtime(MemoryStore())
    rt = attrs.evolve(rt, policies={"44": Policy(suspension_grace_days=10)})
    bj, gd = seed(rt, [(KG_A, Grade.JUNIOR), (KG_D, Grade.JUNIOR)])
    today = rt.clock.today()
    _suspend(rt, bj.id, today - timedelta(20))
    _suspend(rt, gd.id, today - timedelta(20))
    assert overdue_suspensions(rt, OPS["c105"], "110105") == []
    late = overdue_suspensions(rt, OPS["c305"], "440305")
    assert [(o.record_id, o.days_late) for o in late] == [(gd.id, 20)]
    opened = flag_overdue_suspensions(rt, OPS["c305"], "440305")
    assert [(c.record_id, c.trigger) for c in opened] == [(gd.id, CaseTrigger.MANUAL)]
    assert "休学期满未复学" in opened[0].detail
    assert "no resumption for 20 days" in opened[0].detail
    assert flag_overdue_suspensions(rt, OPS["c305"], "440305") == []
    with rt.store.unit_of_work() as uow:
        assert [c.record_id for c in cases_of(uow).iter()] == [gd.id]


def test_a_late_resumption_is_accepted_and_counts_days_to_the_end() -> None:
    """The child comes back two months late: RESUME goes through, 90 days are counted."""
    rt = runtime(MemoryStore())
    (bj,) = seed(rt, [(KG_A, Grade.JUNIOR)])
    today = rt.clock.today()
    _suspend(rt, bj.id, today - timedelta(60))
    assert [o.record_id for o in overdue_suspensions(rt, OPS["c105"], "110105")] == [bj.id]
    out = svc.request_change(rt, OPS["kgA"], bj.id, ChangeKind.RESUME, reason="复学")
    assert out.request is not None
    for step in out.request.steps:
        assert step.role.value == "county"
        done = svc.approve_step(rt, OPS["c105"], out.request.id)
    assert done.applied
    with rt.store.unit_of_work() as uow:
        rec = uow.records.get(bj.id)
    assert (rec.state, rec.suspended_days) == (State.ACTIVE, 90)
    assert overdue_suspensions(rt, OPS["c105"], "110105") == []


def test_roles_and_scope() -> None:
    """A kindergarten may not list them; a county only its own."""
    rt = runtime(MemoryStore())
    seed(rt, [(KG_A, Grade.JUNIOR)])
    with pytest.raises(PermissionDenied):
        overdue_suspensions(rt, OPS["kgA"], "110105")
    with pytest.raises(StudentStatusError):
        overdue_suspensions(rt, Operator.parse("county:110108"), "110105")
