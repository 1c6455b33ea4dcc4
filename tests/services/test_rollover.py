"""Year-end rollover: plan, atomic bulk apply, idempotency, one-year repeats, blocked records."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from studentstatus.domain.enums import ChangeKind, Grade, State
from studentstatus.errors import PermissionDenied, RuleViolations
from studentstatus.services import changes as svc
from studentstatus.services.audit import verify
from studentstatus.services.rollover import apply_rollover, plan_rollover

from ._changes_world import KG_A, KG_B, KG_C, OPS, make_store, runtime, seed

ADAPTERS = ["memory", "files", "sqlite"]


def _grades(store):  # type: ignore[no-untyped-def]
    with store.unit_of_work() as uow:
        return {r.id: (r.state, r.grade) for r in uow.records.iter()}


def _world(rt):  # type: ignore[no-untyped-def]
    return seed(
        rt,
        [
            (KG_A, Grade.NURSERY),  # r0000 promote
            (KG_A, Grade.JUNIOR),  # r0001 repeat (decided for 2026)
            (KG_A, Grade.MIDDLE),  # r0002 blocked: open request
            (KG_A, Grade.SENIOR),  # r0003 graduate
            (KG_B, Grade.JUNIOR),  # r0004 promote
            (KG_C, Grade.JUNIOR),  # r0005 out of county 110105's scope
        ],
    )


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_rollover_plan_apply_idempotent_and_repeat_one_year(adapter: str, tmp_path: Path) -> None:
    with make_store(adapter, tmp_path) as store:
        rt = runtime(store)
        _world(rt)
        rt.clock.at = datetime(2026, 9, 1, 8, tzinfo=UTC)  # type: ignore[attr-defined]
        out = svc.request_change(rt, OPS["kgA"], "r0001", ChangeKind.REPEAT, reason="发育迟缓")
        svc.approve_step(rt, OPS["c105"], out.request.id)  # type: ignore[union-attr]
        svc.request_change(rt, OPS["kgA"], "r0002", ChangeKind.GO_ABROAD)  # stays open
        before = _grades(store)
        plan = plan_rollover(rt, OPS["c105"], 2026)
        actions = {i.record_id: i.action for i in plan.items}
        assert actions == {
            "r0000": "promote",
            "r0001": "repeat",
            "r0002": "blocked",
            "r0003": "graduate",
            "r0004": "promote",
        }
        blocked = next(i for i in plan.items if i.action == "blocked")
        assert [v.code for v in blocked.reasons] == ["open_request_exists"]
        assert plan.totals["records"] == 5
        assert plan.totals["changed"] == 0
        assert _grades(store) == before  # a plan writes nothing
        report = apply_rollover(rt, OPS["c105"], 2026)
        assert (report.totals["promote"], report.totals["graduate"]) == (2, 1)
        assert report.totals["changed"] == 3
        after = _grades(store)
        assert after["r0000"] == (State.ACTIVE, Grade.JUNIOR)
        assert after["r0001"] == (State.ACTIVE, Grade.JUNIOR)  # repeats 2026
        assert after["r0002"] == (State.ACTIVE, Grade.MIDDLE)  # waits for its request
        assert after["r0003"] == (State.GRADUATED, Grade.SENIOR)
        assert after["r0004"] == (State.ACTIVE, Grade.MIDDLE)
        assert after["r0005"] == before["r0005"]  # other county untouched
        # Idempotent: a second run changes nothing, not even the audit log.
        with store.unit_of_work() as uow:
            n_audit = sum(1 for _ in uow.audit.iter())
        again = apply_rollover(rt, OPS["c105"], 2026)
        assert again.totals["changed"] == 0
        assert _grades(store) == after
        with store.unit_of_work() as uow:
            assert sum(1 for _ in uow.audit.iter()) == n_audit
            promoted = list(uow.changes.iter(kinds=[ChangeKind.PROMOTE, ChangeKind.GRADUATE]))
        assert len(promoted) == 3
        # The repeat held for one year only: the 2027 rollover promotes the child.
        rt.clock.at = datetime(2027, 9, 1, 8, tzinfo=UTC)  # type: ignore[attr-defined]
        apply_rollover(rt, OPS["c105"], 2027)
        assert _grades(store)["r0001"] == (State.ACTIVE, Grade.MIDDLE)
        assert verify(store).ok


def test_rollover_rules() -> None:
    with make_store("memory", Path(".")) as store:
        rt = runtime(store)
        _world(rt)
        with pytest.raises(PermissionDenied):
            plan_rollover(rt, OPS["kgA"], 2026)  # kindergartens do not roll over
        with pytest.raises(RuleViolations) as err:
            apply_rollover(rt, OPS["c105"], 2026)  # 2025-09-01: school year 2026 not started
        assert err.value.code == "school_year_not_started"
        # Records that entered in the school year being rolled into are not promoted.
        rt.clock.at = datetime(2025, 9, 2, tzinfo=UTC)  # type: ignore[attr-defined]
        report = apply_rollover(rt, OPS["ministry"], 2025, keep_items=True)
        assert {i.action for i in report.items} == {"new"}
        assert report.totals["changed"] == 0
        # A kindergarten-wide plan via the ministry covers all six records.
        assert plan_rollover(rt, OPS["ministry"], 2026).totals["records"] == 6


def test_rollover_is_all_or_nothing() -> None:
    """A failure in the middle of the bulk write leaves every record as it was."""
    with make_store("memory", Path(".")) as store:
        rt = runtime(store)
        seed(rt, [(KG_A, Grade.JUNIOR)] * 7)
        rt.clock.at = datetime(2026, 9, 1, tzinfo=UTC)  # type: ignore[attr-defined]
        before = _grades(store)
        calls = {"n": 0}
        real = type(store).unit_of_work

        def failing_uow(self):  # type: ignore[no-untyped-def]
            uow = real(self)
            records = uow.records
            orig = records.update_many

            def update_many(items):  # type: ignore[no-untyped-def]
                calls["n"] += 1
                if calls["n"] == 2:
                    raise RuntimeError("disk full")
                return orig(items)

            records.update_many = update_many
            return uow

        type(store).unit_of_work = failing_uow  # type: ignore[method-assign]
        try:
            with pytest.raises(RuntimeError):
                apply_rollover(rt, OPS["c105"], 2026, chunk=3)
        finally:
            type(store).unit_of_work = real  # type: ignore[method-assign]
        assert _grades(store) == before
        assert apply_rollover(rt, OPS["c105"], 2026, chunk=3).totals["promote"] == 7


@pytest.mark.parametrize(
    "server",
    [
        pytest.param("postgres_url", marks=pytest.mark.postgres),
        pytest.param("mysql_url", marks=pytest.mark.mysql),
    ],
)
def test_rollover_on_server(server: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    url = request.getfixturevalue(server)
    with make_store("sql", tmp_path, url) as store:
        rt = runtime(store)
        _world(rt)
        rt.clock.at = datetime(2026, 9, 1, 8, tzinfo=UTC)  # type: ignore[attr-defined]
        report = apply_rollover(rt, OPS["c105"], 2026, chunk=2)
        assert (report.totals["promote"], report.totals["graduate"]) == (4, 1)
        assert apply_rollover(rt, OPS["c105"], 2026).totals["changed"] == 0
        assert _grades(store)["r0003"] == (State.GRADUATED, Grade.SENIOR)
        assert verify(store).ok


@pytest.mark.parametrize("adapter", ["memory", "sqlite"])
def test_rollover_audit_entry_digests_its_events(adapter: str, tmp_path: Path) -> None:
    """One audit entry per run; its digest of the change-log events catches a removed event."""
    import sqlalchemy as sa

    from studentstatus.domain.audit import events_digest
    from studentstatus.services.rollover import recorded_digest

    with make_store(adapter, tmp_path) as store:
        rt = runtime(store)
        _world(rt)
        rt.clock.at = datetime(2026, 9, 1, 8, tzinfo=UTC)  # type: ignore[attr-defined]
        with store.unit_of_work() as uow:
            n_before = sum(1 for _ in uow.audit.iter())
        apply_rollover(rt, OPS["c105"], 2026)
        with store.unit_of_work() as uow:
            entries = list(uow.audit.iter())
            events = list(uow.changes.iter(kinds=[ChangeKind.PROMOTE, ChangeKind.GRADUATE]))
            [entry] = entries[n_before:]
            assert (entry.action, entry.subject) == ("rollover.apply", "rollover:2026")
            assert entry.after["events"] == 5 == len(events)
            expected = events_digest((e.record_id, e.seq) for e in events)
            assert entry.after["events_sha256"] == expected
            assert recorded_digest(uow, entry) == expected
        assert verify(store).ok
        if adapter == "sqlite":
            # Remove one promotion from the change log: the chain still verifies (the
            # change log is not hash-chained), but the entry's digest no longer matches.
            t = store.tables.change_log  # type: ignore[attr-defined]
            with store.engine.begin() as conn:  # type: ignore[attr-defined]
                conn.execute(t.delete().where(t.c.record_id == "r0000", t.c.kind == "PROMOTE"))
                assert conn.execute(sa.select(sa.func.count()).select_from(t)).scalar()
            with store.unit_of_work() as uow:
                assert recorded_digest(uow, entry) != entry.after["events_sha256"]
