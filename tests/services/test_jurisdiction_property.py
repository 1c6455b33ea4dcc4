"""Random operators through random operations: none reads or changes anything outside its scope.

Every returned record lies in the caller's scope; every refusal is a PermissionDenied (or a
rule violation, which is not about scope) and leaves the store exactly as it was; every write
touches only records the operator covers, or a transfer into a kindergarten it covers, or a
request whose pending step is its own."""

from __future__ import annotations

from datetime import UTC, date, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from studentstatus.adapters.memory import MemoryStore
from studentstatus.domain.enums import ChangeKind, Grade, RequestStatus, StepDecision
from studentstatus.domain.jurisdiction import Operator
from studentstatus.errors import NotFoundError, PermissionDenied, RuleViolations
from studentstatus.services import changes as svc
from studentstatus.services.records import find_record, list_records
from studentstatus.services.roll import list_roll
from studentstatus.services.rollover import plan_rollover

from ._changes_world import KG_A, KG_B, KG_C, KG_D, KINDERGARTENS, runtime, seed

SCOPES = {
    "kindergarten": [kg.school_code for kg in KINDERGARTENS] + ["2222000001"],
    "county": ["110105", "110108", "440305", "120101"],
    "city": ["1101", "4403", "1201"],
    "province": ["11", "44", "12"],
    "ministry": [""],
}

operators = st.sampled_from(sorted(SCOPES)).flatmap(
    lambda role: st.sampled_from(SCOPES[role]).map(
        lambda scope: Operator.parse(f"{role}:{scope}" if scope else role)
    )
)
KINDS = [
    ChangeKind.GO_ABROAD,
    ChangeKind.WITHDRAW,
    ChangeKind.SUSPEND,
    ChangeKind.PROMOTE,
    ChangeKind.TRANSFER,
    ChangeKind.DEATH,
]
operations = st.lists(
    st.tuples(
        st.sampled_from(
            [
                "list",
                "show",
                "request",
                "approve",
                "reject",
                "withdraw",
                "rollover",
                "roll",
                "queue",
            ]
        ),
        operators,
        st.integers(0, 7),
        st.sampled_from(KINDS),
        st.sampled_from([kg.school_code for kg in KINDERGARTENS]),
    ),
    min_size=1,
    max_size=25,
)


def test_no_operator_reaches_outside_its_scope() -> None:
    @settings(max_examples=60, deadline=None)
    @given(ops=operations)
    def run(ops: list[tuple[str, Operator, int, ChangeKind, str]]) -> None:
        store = MemoryStore()
        rt = runtime(store)
        plan = [(KG_A, Grade.JUNIOR), (KG_A, Grade.SENIOR), (KG_B, Grade.MIDDLE)]
        plan += [(KG_C, Grade.JUNIOR), (KG_D, Grade.NURSERY), (KG_D, Grade.JUNIOR)]
        seed(rt, plan)
        rt.clock.at = datetime(2026, 3, 2, 9, tzinfo=UTC)  # type: ignore[attr-defined]
        for name, op, n, kind, kg in ops:
            before = store._state
            with store.unit_of_work() as uow:
                records = {r.id: r for r in uow.records.iter()}
                open_requests = list(uow.requests.iter(status=RequestStatus.OPEN))
            record_id = f"r{n:04d}"
            try:
                if name == "list":
                    for r in list_records(rt, op):
                        assert op.covers_record(r)
                elif name == "show":
                    assert op.covers_record(find_record(rt, op, record_id))
                elif name == "request":
                    out = svc.request_change(
                        rt,
                        op,
                        record_id,
                        kind,
                        reason="r",
                        evidence=("e",),
                        until=date(2026, 6, 1),
                        to_kindergarten=kg if kind is ChangeKind.TRANSFER else None,
                    )
                    rec = records[record_id]
                    dest = next(k for k in KINDERGARTENS if k.school_code == kg)
                    assert op.covers_record(rec) or (
                        kind is ChangeKind.TRANSFER and op.covers_kindergarten(dest)
                    )
                    if out.record is not None:
                        assert op.covers_record(out.record)
                elif name in ("approve", "reject") and open_requests:
                    req = open_requests[n % len(open_requests)]
                    pending = next(s for s in req.steps if s.decision is StepDecision.PENDING)
                    if name == "approve":
                        out = svc.approve_step(rt, op, req.id)
                    else:
                        out = svc.reject_step(rt, op, req.id, reason="no")
                    assert (op.role, op.scope) == (pending.role, pending.scope)
                    if out.record is not None:
                        assert op.covers_record(out.record)
                elif name == "withdraw" and open_requests:
                    req = open_requests[n % len(open_requests)]
                    svc.withdraw_request(rt, op, req.id)
                    assert req.applicant == str(op)
                elif name == "rollover":
                    for item in plan_rollover(rt, op, 2026).items:
                        assert op.covers_record(records[item.record_id])
                elif name == "roll":
                    for e in list_roll(rt, op, kg, date(2026, 3, 1)):
                        assert op.covers_record(records[e.record_id])
                elif name == "queue":
                    for view in svc.list_pending_requests(rt, op) + svc.list_overdue_requests(
                        rt, op
                    ):
                        rec = records[view.record]
                        dest = next(
                            (k for k in KINDERGARTENS if k.school_code == view.to_kindergarten),
                            None,
                        )
                        assert (
                            op.covers_record(rec)
                            or (dest is not None and op.covers_kindergarten(dest))
                            or view.applicant == str(op)
                            or view.step == str(op)
                        )
            except PermissionDenied:
                assert store._state is before, f"{name} by {op} was refused but wrote"
            except (RuleViolations, NotFoundError):
                assert store._state is before, f"{name} by {op} failed but wrote"

    run()
