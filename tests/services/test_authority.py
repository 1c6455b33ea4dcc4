"""Authority on every store: no kindergarten takeover, moves approved by both counties, and
transfer requests of another kindergarten that neither block the home side nor its rollover."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import attrs
import pytest

from studentstatus.domain.enums import ChangeKind, Grade, RequestStatus, State
from studentstatus.domain.jurisdiction import Operator
from studentstatus.errors import NotFoundError, RuleViolations
from studentstatus.ports import Store
from studentstatus.services import changes
from studentstatus.services.audit import verify
from studentstatus.services.kindergartens import import_kindergartens
from studentstatus.services.moves import cancel_kindergarten_move, move_kindergarten
from studentstatus.services.records import find_record
from studentstatus.services.rollover import apply_rollover

from ._changes_world import KG_A, KG_C, KG_D, KINDERGARTENS, OPS, make_store, runtime, seed

# A Shenzhen kindergarten with a valid school code (the import checks it).
KG_S = attrs.evolve(KG_D, school_code="1144030001")

STORES = [
    "memory",
    "files",
    "sqlite",
    pytest.param("postgres_url", marks=pytest.mark.postgres),
    pytest.param("mysql_url", marks=pytest.mark.mysql),
]


@pytest.fixture(params=STORES)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    kind = request.param
    url = request.getfixturevalue(kind) if kind.endswith("_url") else None
    with make_store("sql" if url else kind, tmp_path, url) as made:
        yield made


def _row(region: str, state: str = "有效") -> dict[str, str]:
    return {
        "school_code": KG_S.school_code,
        "uscc": "12100000400000624D",
        "name": "南山幼儿园",
        "region_code": region,
        "type": "公办",
        "inclusive": "是",
        "licence_no": "教4403051号",
        "licence_issuer": "南山区教育局",
        "licence_issued": "2020-01-01",
        "licence_valid_until": "2030-12-31",
        "licence_state": state,
    }


def _kg_region(store: Store, code: str) -> str:
    with store.unit_of_work() as uow:
        kg = uow.kindergartens.find(code)
        assert kg is not None
        return kg.region_code


def _record_regions(store: Store) -> dict[str, str]:
    with store.unit_of_work() as uow:
        return {r.id: r.region_code for r in uow.records.iter()}


def test_no_kindergarten_takeover_by_import(store: Store) -> None:
    rt = runtime(store)
    seed(rt, [(KG_S, Grade.JUNIOR), (KG_S, Grade.MIDDLE)], kindergartens=(*KINDERGARTENS, KG_S))
    before = _record_regions(store)
    # Another province re-imports a Shenzhen kindergarten into Hunan, licence revoked.
    report = import_kindergartens(rt, Operator.parse("province:43"), [_row("430104", "吊销")])
    assert report.accepted == 0
    assert [(r.row, r.field, r.code) for r in report.rejected] == [
        (1, "school_code", "school_code_taken")
    ]
    # Its own province may not move it to Hunan either, nor may the ministry by import.
    report = import_kindergartens(rt, OPS["p44"], [_row("430104")])
    assert [r.code for r in report.rejected] == ["out_of_scope"]
    report = import_kindergartens(rt, OPS["ministry"], [_row("430104")])
    assert [r.code for r in report.rejected] == ["region_move_needs_approval"]
    assert _kg_region(store, KG_S.school_code) == "440305"
    assert _record_regions(store) == before
    # An update inside the region still works.
    report = import_kindergartens(rt, OPS["c305"], [_row("440305")])
    assert (report.accepted, report.rejected) == (1, [])
    assert verify(store).ok


def test_a_move_needs_both_counties(store: Store) -> None:
    rt = runtime(store)
    seed(rt, [(KG_D, Grade.JUNIOR), (KG_D, Grade.MIDDLE)])
    source, destination = OPS["c305"], Operator.parse("county:440306")
    stranger = Operator.parse("county:110105")
    # Neither the destination nor a stranger sees the kindergarten before a proposal.
    for op in (destination, stranger):
        with pytest.raises(NotFoundError):
            move_kindergarten(rt, op, KG_D.school_code, "440306")
    assert move_kindergarten(rt, source, KG_D.school_code, "440306").state == "proposed"
    with pytest.raises(RuleViolations) as err:
        move_kindergarten(rt, source, KG_D.school_code, "440306")
    assert err.value.violations[0].code == "move_awaits_other_side"
    with pytest.raises(RuleViolations) as err:
        move_kindergarten(rt, source, KG_D.school_code, "440307")
    assert err.value.violations[0].code == "move_pending"
    # The destination may cancel it (so may the source) ...
    assert cancel_kindergarten_move(rt, destination, KG_D.school_code).state == "cancelled"
    assert move_kindergarten(rt, source, KG_D.school_code, "440306").state == "proposed"
    # ... or confirm it: the kindergarten and its records move, the audit chain holds.
    done = move_kindergarten(rt, destination, KG_D.school_code, "440306", reason="区划调整")
    assert (done.state, done.records) == ("moved", 2)
    assert _kg_region(store, KG_D.school_code) == "440306"
    assert set(_record_regions(store).values()) == {"440306"}
    with pytest.raises(NotFoundError):
        find_record(rt, source, "r0000")
    assert find_record(rt, destination, "r0000").region_code == "440306"
    # A city covering both counties is both sides: its move is done at once.
    back = move_kindergarten(rt, Operator.parse("city:4403"), KG_D.school_code, "440305")
    assert back.state == "moved"
    assert verify(store).ok


def _transfer(rt: object) -> changes.ChangeOutcome:
    """Kindergarten C (county 110108) applies for the transfer of A's child r0000."""
    return changes.request_change(
        rt,  # type: ignore[arg-type]
        OPS["kgC"],
        "r0000",
        ChangeKind.TRANSFER,
        to_kindergarten=KG_C.school_code,
        reason="搬家",
    )


def test_a_foreign_request_does_not_block_the_home_kindergarten(store: Store) -> None:
    rt = runtime(store)
    seed(rt, [(KG_A, Grade.MIDDLE)])
    foreign = _transfer(rt).request
    assert foreign is not None
    # Another kindergarten's transfer request does not hold the home side back: the home
    # kindergarten's own request closes it (REJECTED, superseded, audited).
    own = changes.request_change(
        rt, OPS["kgA"], "r0000", ChangeKind.SUSPEND, until=date(2026, 3, 1), reason="生病"
    )
    assert own.request is not None
    shown = changes.get_request(rt, OPS["kgA"], foreign.id)
    assert shown.status is RequestStatus.REJECTED
    # ... while a foreign request cannot push aside a home one.
    with pytest.raises(RuleViolations) as err:
        _transfer(rt)
    assert "open_request_exists" in {v.code for v in err.value.violations}
    assert verify(store).ok


def test_the_home_side_refuses_a_foreign_request_at_once(store: Store) -> None:
    rt = runtime(store)
    seed(rt, [(KG_A, Grade.MIDDLE)])
    foreign = _transfer(rt).request
    assert foreign is not None
    pending = changes.get_request(rt, OPS["c105"], foreign.id).step
    assert pending != str(OPS["c105"])
    # The home county refuses it whoever's step is pending; a reason is required.
    with pytest.raises(RuleViolations):
        changes.reject_step(rt, OPS["c105"], foreign.id, reason=" ")
    out = changes.reject_step(rt, OPS["c105"], foreign.id, reason="家长未同意")
    assert out.request is not None
    assert out.request.status is RequestStatus.REJECTED
    # An unrelated county cannot even see it.
    with pytest.raises(NotFoundError):
        changes.reject_step(rt, Operator.parse("county:440305"), foreign.id, reason="x")
    assert verify(store).ok


def test_a_foreign_request_does_not_block_the_rollover(store: Store) -> None:
    rt = runtime(store)
    seed(rt, [(KG_A, Grade.MIDDLE), (KG_A, Grade.JUNIOR)])
    assert _transfer(rt).request is not None
    changes.request_change(  # a home request does hold r0001 back
        rt, OPS["kgA"], "r0001", ChangeKind.SUSPEND, until=date(2026, 3, 1), reason="生病"
    )
    rt.clock.at = datetime(2026, 9, 1, 8, tzinfo=UTC)  # type: ignore[attr-defined]
    report = apply_rollover(rt, OPS["c105"], 2026)
    assert report.totals["promote"] == 1
    assert report.totals["blocked"] == 1
    with store.unit_of_work() as uow:
        assert uow.records.get("r0000").grade is Grade.SENIOR
        assert uow.records.get("r0001").state is State.ACTIVE
        assert uow.records.get("r0001").grade is Grade.JUNIOR
    assert verify(store).ok


def test_a_move_keeps_the_change_log_true(store: Store) -> None:
    """Each live record gets a RELOCATE event (audited), so the audit replay still gives every
    record as stored; a RELOCATE cannot be requested by anyone."""
    from studentstatus.services.approval import approve_records
    from studentstatus.services.intake import import_children
    from studentstatus.testing.examples import KINDERGARTEN, child_row

    rt = runtime(store)
    with store.unit_of_work() as uow:
        uow.kindergartens.add(KINDERGARTEN)
        uow.commit()
    rt.clock.at = datetime(2024, 9, 2, 9, tzinfo=UTC)  # type: ignore[attr-defined]
    rows = [child_row(), child_row(name="李四", birth_date="2020-05-01")]
    assert import_children(rt, OPS["kgA"], rows).accepted == 2
    approve_records(rt, OPS["c105"], all_pending=True)
    assert verify(store, replay=True).ok
    move_kindergarten(rt, OPS["c105"], KINDERGARTEN.school_code, "110108")
    done = move_kindergarten(rt, OPS["c108"], KINDERGARTEN.school_code, "110108")
    assert done.records == 2
    with store.unit_of_work() as uow:
        kinds = {e.kind for r in uow.records.iter() for e in uow.changes.for_record(r.id)}
    assert ChangeKind.RELOCATE in kinds
    report = verify(store, replay=True)
    assert report.ok, report
    with pytest.raises(RuleViolations) as err:
        changes.request_change(rt, OPS["kgA"], "anything", "RELOCATE")
    assert err.value.violations[0].code == "change_kind_system"


def test_a_move_carries_open_requests_cases_and_cancelled_records(store: Store) -> None:
    """After a move the new county decides the pending steps, holds the open cases and, on a
    restore, gets the cancelled record back; the old county sees none of it any more."""
    from studentstatus.ports import CaseUnitOfWork
    from studentstatus.services.dropout import list_cases, open_case

    rt = runtime(store)
    rt.clock.at = datetime(2025, 10, 8, 9, tzinfo=UTC)  # type: ignore[attr-defined]
    recs = seed(rt, [(KG_A, Grade.JUNIOR), (KG_A, Grade.MIDDLE)])
    old, new = OPS["c105"], OPS["c108"]
    suspend = changes.request_change(
        rt, OPS["kgA"], recs[0].id, ChangeKind.SUSPEND, until=date(2026, 3, 1), reason="生病"
    ).request
    assert suspend is not None
    cancel = changes.request_change(rt, OPS["kgA"], recs[1].id, ChangeKind.CANCEL, reason="重复")
    assert cancel.request is not None
    changes.approve_step(rt, old, cancel.request.id)
    with store.unit_of_work() as uow:
        has_cases = isinstance(uow, CaseUnitOfWork)
    if has_cases:
        open_case(rt, old, recs[0].id, detail="缺勤")
    move_kindergarten(rt, old, KG_A.school_code, "110108")
    move_kindergarten(rt, new, KG_A.school_code, "110108")
    with store.unit_of_work() as uow:
        assert uow.records.get(recs[1].id).region_code == "110108"  # cancelled, moved too
    with pytest.raises(NotFoundError):
        changes.get_request(rt, old, suspend.id)
    assert changes.approve_step(rt, new, suspend.id).applied
    if has_cases:
        assert list_cases(rt, old) == []
        assert len(list_cases(rt, new)) == 1
    restore = changes.request_change(
        rt, OPS["kgA"], recs[1].id, ChangeKind.RESTORE, reason="误删"
    ).request
    assert restore is not None
    assert [s.scope for s in restore.steps] == ["110108"]
    changes.approve_step(rt, new, restore.id)
    with store.unit_of_work() as uow:
        restored = uow.records.get(recs[1].id)
    assert restored.region_code == "110108"
    assert restored.state is State.ACTIVE


def test_a_graduation_closes_a_transfer_it_makes_impossible(store: Store) -> None:
    """The home side graduates the child (directly, or in the rollover on every store's path):
    another kindergarten's open transfer request is closed, not left open forever."""
    rt = runtime(store)
    seed(rt, [(KG_A, Grade.SENIOR), (KG_A, Grade.SENIOR)])
    first = _transfer(rt).request
    second = changes.request_change(
        rt, OPS["kgC"], "r0001", ChangeKind.TRANSFER, to_kindergarten=KG_C.school_code, reason="x"
    ).request
    assert first is not None
    assert second is not None
    rt.clock.at = datetime(2026, 9, 1, 8, tzinfo=UTC)  # type: ignore[attr-defined]
    done = changes.request_change(rt, OPS["kgA"], "r0000", ChangeKind.GRADUATE)
    assert done.applied
    assert changes.get_request(rt, OPS["c105"], first.id).status is RequestStatus.REJECTED
    report = apply_rollover(rt, OPS["c105"], 2026)
    assert report.totals["graduate"] == 1
    assert changes.get_request(rt, OPS["c105"], second.id).status is RequestStatus.REJECTED
    assert verify(store).ok
