"""Change requests through the services on every adapter: each change kind with its approvals,
dry runs, one open request per record, scope, withdrawals, rejections, queues and the audit."""

from __future__ import annotations

import logging
from datetime import date, timedelta
from pathlib import Path

import attrs
import pytest

from studentstatus.domain.calendar import HolidayCalendar
from studentstatus.domain.enums import ChangeKind, Grade, RequestStatus, Role, State, StepDecision
from studentstatus.domain.jurisdiction import Operator
from studentstatus.domain.policy import Policy
from studentstatus.errors import NotFoundError, PermissionDenied, RuleViolations
from studentstatus.services import changes as svc
from studentstatus.services.audit import verify
from studentstatus.services.records import find_record
from studentstatus.services.runtime import Runtime

from ._changes_world import KG_A, KG_B, KG_C, KG_D, KG_X, OPS, make_store, runtime, seed

ADAPTERS = ["memory", "files", "sqlite"]


def _record(rt: Runtime, record_id: str):  # type: ignore[no-untyped-def]
    with rt.store.unit_of_work() as uow:
        return uow.records.get(record_id)


def _tick(rt: Runtime, days: int = 1) -> None:
    rt.clock.advance(days=days)  # type: ignore[attr-defined]


def _through(rt: Runtime, record: str, kind: ChangeKind, **kw: object) -> svc.ChangeOutcome:
    """Request as kindergarten A, then approve every pending step with the fitting operator."""
    applicant = kw.pop("applicant", OPS["kgA"])
    out = svc.request_change(rt, applicant, record, kind, **kw)  # type: ignore[arg-type]
    if out.applied:
        return out
    assert out.request is not None
    request = out.request
    by_text = {str(op): op for op in OPS.values()}
    while True:
        step = next(s for s in request.steps if s.decision is StepDecision.PENDING)
        op = by_text[f"{step.role.value}:{step.scope}"]
        out = svc.approve_step(rt, op, request.id)
        assert out.request is not None
        request = out.request
        if request.status is not RequestStatus.OPEN:
            return out


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_every_kind_through_its_approvals(adapter: str, tmp_path: Path) -> None:
    """SUSPEND…DEATH on one record, SKIP/PROMOTE/GRADUATE/APPROVE on others, each via its chain."""
    with make_store(adapter, tmp_path) as store:
        rt = attrs.evolve(runtime(store), policy=Policy(age_tolerance=2))
        seed(
            rt,
            [
                (KG_A, Grade.JUNIOR),
                (KG_A, Grade.NURSERY),
                (KG_A, Grade.JUNIOR),
                (KG_A, Grade.SENIOR),
            ],
        )
        _tick(rt)
        today = rt.clock.today()
        flow: list[tuple[ChangeKind, dict[str, object], State, int]] = [
            (
                ChangeKind.SUSPEND,
                {"until": today + timedelta(days=100), "reason": "病"},
                State.SUSPENDED,
                1,
            ),
            (ChangeKind.EXTEND, {"until": today + timedelta(days=200)}, State.SUSPENDED, 1),
            (ChangeKind.RESUME, {}, State.ACTIVE, 1),
            (ChangeKind.GO_ABROAD, {}, State.ABROAD, 1),
            (ChangeKind.RETURN, {}, State.ACTIVE, 1),
            (ChangeKind.REPEAT, {"reason": "发育"}, State.ACTIVE, 1),
            (ChangeKind.WITHDRAW, {"reason": "搬家"}, State.WITHDRAWN, 1),
            (ChangeKind.REENROLL, {"grade": Grade.JUNIOR}, State.PENDING, 0),
            (ChangeKind.APPROVE, {}, State.ACTIVE, 1),
            (ChangeKind.CANCEL, {"reason": "重复"}, State.CANCELLED, 1),
            (ChangeKind.RESTORE, {}, State.ACTIVE, 1),
            (ChangeKind.DEATH, {"evidence": ("death-cert-1",)}, State.DECEASED, 1),
        ]
        for kind, kw, state, steps in flow:
            _tick(rt)
            out = _through(rt, "r0000", kind, **kw)
            assert out.applied, kind
            assert (len(out.request.steps) if out.request else 0) == steps, kind
            assert _record(rt, "r0000").state is state, kind
        assert Grade.JUNIOR in _record(rt, "r0000").repeated_grades
        # SKIP (county), PROMOTE and GRADUATE (applied directly, no request).
        out = _through(rt, "r0001", ChangeKind.SKIP, reason="超前")
        assert out.applied
        assert _record(rt, "r0001").grade is Grade.MIDDLE
        out = _through(rt, "r0002", ChangeKind.PROMOTE)
        assert out.applied
        assert out.request is None
        assert _record(rt, "r0002").grade is Grade.MIDDLE
        out = _through(rt, "r0003", ChangeKind.GRADUATE)
        assert out.applied
        assert _record(rt, "r0003").state is State.GRADUATED
        # The change log replays to the live record; every step and change is audited.
        with store.unit_of_work() as uow:
            from studentstatus.domain.machine import replay

            assert replay(uow.changes.for_record("r0000")) == uow.records.get("r0000")
            actions = [e.action for e in uow.audit.iter()]
        assert actions.count("request.open") == 12
        assert actions.count("request.approve_step") == 12
        assert "change.death" in actions
        assert "change.promote" in actions
        assert verify(store).ok


@pytest.mark.parametrize("adapter", ADAPTERS)
@pytest.mark.parametrize(
    ("dest", "chain"),
    [
        (KG_B, ["kindergarten:1111000002", "kindergarten:1111000001", "county:110105"]),
        (
            KG_C,
            [
                "kindergarten:1111000003",
                "kindergarten:1111000001",
                "county:110105",
                "county:110108",
            ],
        ),
        (
            KG_D,
            [
                "kindergarten:4444000001",
                "kindergarten:1111000001",
                "county:110105",
                "county:440305",
                "province:11",
                "province:44",
            ],
        ),
    ],
    ids=["same-county", "other-county", "other-province"],
)
def test_transfer_chains(adapter: str, dest: object, chain: list[str], tmp_path: Path) -> None:
    """The destination applies (its step pre-approved); the record moves on the last approval."""
    assert dest in (KG_B, KG_C, KG_D)
    with make_store(adapter, tmp_path) as store:
        rt = runtime(store)
        seed(rt, [(KG_A, Grade.MIDDLE)])
        _tick(rt)
        dest_op = next(op for op in OPS.values() if str(op) == chain[0])
        # The destination cannot read the record directly...
        with pytest.raises(NotFoundError):
            find_record(rt, dest_op, "r0000")
        dry = svc.dry_run(rt, dest_op, "r0000", "TRANSFER", to_kindergarten=dest.school_code)  # type: ignore[attr-defined]
        assert dry.allowed
        assert list(dry.approvals) == [c.split(":")[0] for c in chain]
        out = svc.request_change(
            rt,
            dest_op,
            "r0000",
            ChangeKind.TRANSFER,
            to_kindergarten=dest.school_code,  # type: ignore[attr-defined]
        )
        assert out.request is not None
        assert out.record is None
        assert [f"{s.role.value}:{s.scope}" for s in out.request.steps] == chain
        # ...but sees the incoming child through the request.
        view = svc.get_request(rt, dest_op, out.request.id)
        assert view.child_name == "孩子〇"
        assert view.grade is Grade.MIDDLE
        for i, who in enumerate(chain[1:], start=2):
            op = next(o for o in OPS.values() if str(o) == who)
            waiting = svc.list_pending_requests(rt, op)
            assert [(v.id, v.step_index) for v in waiting] == [(out.request.id, i)]
            assert _record(rt, "r0000").kindergarten_code == KG_A.school_code  # not yet moved
            done = svc.approve_step(rt, op, out.request.id)
        assert done.applied
        assert done.request is not None
        assert done.request.status is RequestStatus.APPROVED
        moved = _record(rt, "r0000")
        assert moved.kindergarten_code == dest.school_code  # type: ignore[attr-defined]
        assert moved.region_code == dest.region_code  # type: ignore[attr-defined]
        assert moved.version == 3
        assert find_record(rt, dest_op, "r0000").id == "r0000"
        with pytest.raises(NotFoundError):
            find_record(rt, OPS["kgA"], "r0000")
        assert verify(store).ok


def test_dry_run_reports_every_unmet_rule() -> None:
    with make_store("memory", Path(".")) as store:
        rt = runtime(store)
        seed(rt, [(KG_A, Grade.SENIOR)])
        _tick(rt)
        dry = svc.dry_run(rt, OPS["kgA"], "r0000", ChangeKind.SKIP)
        codes = {v.code for v in dry.violations}
        assert not dry.allowed
        assert {"reason_required", "skip_beyond_senior"} <= codes
        assert dry.approvals == ("county",)
        doc = dry.to_dict()
        assert all(
            {"code", "field", "message_zh", "message_en"} <= set(v) for v in doc["violations"]
        )
        dry = svc.dry_run(rt, OPS["kgA"], "r0000", ChangeKind.SUSPEND)
        assert "until_required" in {v.code for v in dry.violations}
        kg_x = Operator.parse(f"kindergarten:{KG_X.school_code}")
        dry = svc.dry_run(rt, kg_x, "r0000", "TRANSFER", to_kindergarten=KG_X.school_code)
        assert "destination_unlicensed" in {v.code for v in dry.violations}
        dry = svc.dry_run(rt, OPS["kgA"], "r0000", "TRANSFER", to_kindergarten=KG_A.school_code)
        assert "same_kindergarten" in {v.code for v in dry.violations}
        dry = svc.dry_run(rt, OPS["kgA"], "r0000", "TRANSFER", to_kindergarten="9999999999")
        assert "destination_not_found" in {v.code for v in dry.violations}
        with pytest.raises(RuleViolations) as err:
            svc.dry_run(rt, OPS["kgA"], "r0000", "FLY")
        assert err.value.code == "change_kind_unknown"
        with pytest.raises(NotFoundError):
            svc.dry_run(rt, OPS["kgA"], "nope", ChangeKind.PROMOTE)


def test_one_open_request_per_record_and_withdrawal() -> None:
    with make_store("memory", Path(".")) as store:
        rt = runtime(store)
        seed(rt, [(KG_A, Grade.JUNIOR)])
        _tick(rt)
        first = svc.request_change(rt, OPS["kgA"], "r0000", ChangeKind.GO_ABROAD)
        assert first.request is not None
        for kind, kw in [(ChangeKind.WITHDRAW, {"reason": "x"}), (ChangeKind.PROMOTE, {})]:
            with pytest.raises(RuleViolations) as err:
                svc.request_change(rt, OPS["kgA"], "r0000", kind, **kw)  # type: ignore[arg-type]
            assert "open_request_exists" in {v.code for v in err.value.violations}
        # Only the applicant withdraws.
        with pytest.raises(PermissionDenied):
            svc.withdraw_request(rt, OPS["c105"], first.request.id)
        gone = svc.withdraw_request(rt, OPS["kgA"], first.request.id)
        assert gone.status is RequestStatus.WITHDRAWN
        assert svc.list_pending_requests(rt, OPS["c105"]) == []
        # Now another change may go ahead.
        out = svc.request_change(rt, OPS["kgA"], "r0000", ChangeKind.WITHDRAW, reason="x")
        assert out.request is not None
        with pytest.raises(RuleViolations):
            svc.withdraw_request(rt, OPS["kgA"], first.request.id)  # not open any more


def test_reject_needs_reason_and_leaves_record() -> None:
    with make_store("memory", Path(".")) as store:
        rt = runtime(store)
        seed(rt, [(KG_A, Grade.JUNIOR)])
        _tick(rt)
        out = svc.request_change(rt, OPS["kgA"], "r0000", ChangeKind.GO_ABROAD)
        assert out.request is not None
        with pytest.raises(RuleViolations) as err:
            svc.reject_step(rt, OPS["c105"], out.request.id, reason=" ")
        assert err.value.code == "reason_required"
        with pytest.raises(NotFoundError):
            svc.approve_step(rt, OPS["c108"], out.request.id)  # not this step's county
        done = svc.reject_step(rt, OPS["c105"], out.request.id, reason="材料不全")
        assert not done.applied
        assert done.request is not None
        assert done.request.status is RequestStatus.REJECTED
        assert _record(rt, "r0000").state is State.ACTIVE
        with pytest.raises(RuleViolations):
            svc.approve_step(rt, OPS["c105"], out.request.id)


def test_final_apply_failure_writes_nothing() -> None:
    """If the change breaks a rule at the last approval, request and record stay as they were."""
    with make_store("memory", Path(".")) as store:
        rt = runtime(store)
        seed(rt, [(KG_A, Grade.JUNIOR)])
        _tick(rt)
        out = svc.request_change(
            rt, OPS["kgB"], "r0000", "TRANSFER", to_kindergarten=KG_B.school_code
        )
        assert out.request is not None
        svc.approve_step(rt, OPS["kgA"], out.request.id)
        # The destination loses its licence before the county decides.
        with store.unit_of_work() as uow:
            kg = uow.kindergartens.get(KG_B.school_code)
            uow.kindergartens.update(attrs.evolve(kg, licences=()))
            uow.commit()
        before = _record(rt, "r0000")
        with pytest.raises(RuleViolations) as err:
            svc.approve_step(rt, OPS["c105"], out.request.id)
        assert "destination_unlicensed" in {v.code for v in err.value.violations}
        assert _record(rt, "r0000") == before
        assert svc.list_pending_requests(rt, OPS["c105"])[0].id == out.request.id


def test_scope_refusals_are_logged_without_id(caplog: pytest.LogCaptureFixture) -> None:
    with make_store("memory", Path(".")) as store:
        rt = runtime(store)
        seed(rt, [(KG_A, Grade.JUNIOR)])
        _tick(rt)
        with store.unit_of_work() as uow:
            number = uow.children.get("c0000").document.number  # type: ignore[union-attr]
            temp = uow.records.get("r0000").temp_number
        caplog.set_level(logging.WARNING, logger="studentstatus")
        with pytest.raises(NotFoundError):  # another kindergarten: as if absent
            svc.request_change(rt, OPS["kgB"], "r0000", ChangeKind.GO_ABROAD)
        for op in (OPS["c108"], OPS["p44"]):  # roles that never apply: refused as such
            with pytest.raises(PermissionDenied):
                svc.request_change(rt, op, "r0000", ChangeKind.GO_ABROAD)
        with pytest.raises(PermissionDenied):
            svc.request_change(rt, OPS["c105"], "r0000", ChangeKind.GO_ABROAD)  # role
        with pytest.raises(NotFoundError):
            find_record(rt, OPS["kgB"], str(temp))
        assert len([r for r in caplog.records if "refused" in r.getMessage()]) == 5
        assert all(number not in r.getMessage() for r in caplog.records)
        assert svc.list_pending_requests(rt, OPS["c105"]) == []


def test_overdue_and_lost_child_queue_follow_working_days() -> None:
    """Deadlines count working days of the calendar (a holiday week pushes them out)."""
    holidays = frozenset(date(2025, 10, 1) + timedelta(days=i) for i in range(7))
    with make_store("memory", Path(".")) as store:
        rt = attrs.evolve(runtime(store), calendar=HolidayCalendar(holidays=holidays))
        seed(rt, [(KG_A, Grade.JUNIOR), (KG_A, Grade.MIDDLE)])
        rt.clock.at = rt.clock.at.replace(month=9, day=29)  # type: ignore[attr-defined]
        tr = svc.request_change(
            rt, OPS["kgC"], "r0000", "TRANSFER", to_kindergarten=KG_C.school_code
        )
        ab = svc.request_change(rt, OPS["kgA"], "r0001", ChangeKind.GO_ABROAD)
        assert tr.request is not None
        assert ab.request is not None
        # 10 working days from Mon 29 Sep skipping 1-7 Oct: Tue 30 Sep + 8-16 Oct → 20 Oct.
        assert ab.request.steps[0].due == date(2025, 10, 20)
        svc.approve_step(rt, OPS["kgA"], tr.request.id)  # the source releases the child
        last_due = max(s.due for s in tr.request.steps if s.due)  # type: ignore[type-var]
        rt.clock.at = rt.clock.at.replace(month=10, day=20)  # type: ignore[attr-defined]
        assert svc.list_overdue_requests(rt, OPS["c105"]) == []
        _tick(rt)  # 21 Oct: the abroad request's county step is late, the transfer's is not
        late = svc.list_overdue_requests(rt, OPS["c105"])
        assert [v.id for v in late] == [ab.request.id]
        assert late[0].overdue
        assert [v.id for v in svc.list_pending_requests(rt, OPS["c105"], overdue=True)] == [
            ab.request.id
        ]
        assert len(svc.list_pending_requests(rt, OPS["c105"])) == 2
        county_due = tr.request.steps[2].due
        assert county_due == date(2025, 11, 3)
        rt.clock.at = rt.clock.at.replace(month=11, day=4)  # type: ignore[attr-defined]
        assert {v.id for v in svc.list_overdue_requests(rt, OPS["c105"])} == {
            tr.request.id,
            ab.request.id,
        }
        # The destination county sees the overdue transfer of its incoming child too.
        assert [v.id for v in svc.list_overdue_requests(rt, OPS["c108"])] == [tr.request.id]
        assert svc.list_overdue_requests(rt, OPS["c305"]) == []
        assert svc.list_lost_children(rt, OPS["c105"]) == []  # not past the last due date yet
        rt.clock.at = rt.clock.at.replace(  # type: ignore[attr-defined]
            year=last_due.year, month=last_due.month, day=last_due.day
        )
        _tick(rt)
        lost = svc.list_lost_children(rt, OPS["c105"])
        assert [v.id for v in lost] == [tr.request.id]
        assert lost[0].lost
        assert [v.id for v in svc.list_lost_children(rt, OPS["c108"])] == [tr.request.id]
        assert svc.list_lost_children(rt, OPS["c305"]) == []
        with pytest.raises(PermissionDenied):
            svc.list_lost_children(rt, OPS["kgA"])
        # The child is still on the source roll.
        assert _record(rt, "r0000").kindergarten_code == KG_A.school_code
        assert _record(rt, "r0000").state is State.ACTIVE


def test_step_roles_match_policy() -> None:
    """A policy that asks the city too adds a city step after the county."""
    approvals = dict(Policy().approvals)
    approvals[ChangeKind.GO_ABROAD] = (Role.COUNTY, Role.CITY)
    with make_store("memory", Path(".")) as store:
        rt = attrs.evolve(runtime(store), policy=Policy(approvals=approvals))
        seed(rt, [(KG_A, Grade.JUNIOR)])
        _tick(rt)
        out = _through(rt, "r0000", ChangeKind.GO_ABROAD)
        assert out.request is not None
        assert [s.decided_by for s in out.request.steps] == ["county:110105", "city:1101"]
        assert _record(rt, "r0000").state is State.ABROAD


@pytest.mark.parametrize(
    "server",
    [
        pytest.param("postgres_url", marks=pytest.mark.postgres),
        pytest.param("mysql_url", marks=pytest.mark.mysql),
    ],
)
def test_transfer_across_provinces_on_server(
    server: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """The full six-step inter-province transfer on PostgreSQL and MariaDB."""
    url = request.getfixturevalue(server)
    with make_store("sql", tmp_path, url) as store:
        rt = runtime(store)
        seed(rt, [(KG_A, Grade.MIDDLE)])
        _tick(rt)
        out = _through(
            rt, "r0000", ChangeKind.TRANSFER, applicant=OPS["kgD"], to_kindergarten=KG_D.school_code
        )
        assert out.applied
        assert out.request is not None
        assert len(out.request.steps) == 6
        moved = _record(rt, "r0000")
        assert (moved.kindergarten_code, moved.region_code) == (KG_D.school_code, KG_D.region_code)
        assert verify(store).ok
