"""The federation on three real PostgreSQL clusters: two provinces (11, 44) and the hub.

One scenario, in steps that build on each other (the clusters are made once): publish
and subscribe (idempotent), national dedupe and its notices, transfers between the
provinces with a province, the hub and a subscription stopped mid-flow, and the
convergence checks — no message lost, none applied twice, no child ACTIVE in two
provinces, the national report equal to the provinces' sum, every audit chain verifying.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from typing import Any

import attrs
import pytest
import sqlalchemy as sa
from tests.federation.conftest import Nodes

from studentstatus.adapters.sql import SqlStore
from studentstatus.adapters.sql.federation import (
    NATIONAL_SCHEMA,
    Hub,
    ProvinceLink,
    feed_schema,
    publish,
    records_feed_equal,
)
from studentstatus.adapters.sql.partition_convert import convert_to_partitioned
from studentstatus.domain.claims import identity_key
from studentstatus.domain.enums import Grade, ProblemKind, Sex, State, StepDecision
from studentstatus.domain.federation import Transfer, TransferStatus, national_ident
from studentstatus.domain.jurisdiction import Operator
from studentstatus.domain.model import Child, DocumentKind, Guardian, IdentityDocument
from studentstatus.errors import (
    FederationError,
    NotFoundError,
    PermissionDenied,
    RuleViolations,
    StorageError,
)
from studentstatus.serialization import to_dict
from studentstatus.services import federation as fed
from studentstatus.services.audit import verify
from studentstatus.services.reports import build_report
from studentstatus.services.runtime import FixedClock, Runtime
from studentstatus.testing.seeding import (
    child_name,
    kindergarten_code,
    resident_number,
    seed_province,
)

KEY = bytes(range(32))
MINISTRY = Operator.parse("ministry")
NOW = datetime(2025, 3, 3, 9, tzinfo=UTC)
N11, N44, SHARED = 120, 90, 15  # 44's first SHARED children hold 11's first ID numbers
TIMEOUT = 90.0


def wait_for(what: str, check: Callable[[], bool], timeout: float = TIMEOUT) -> None:
    """Poll ``check`` until it holds (replication is asynchronous)."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.2)


def scalar(engine: sa.Engine, sql: str) -> Any:
    with engine.connect() as conn:
        return conn.exec_driver_sql(sql).scalar_one()


class World:
    """The three nodes with their stores, links and runtimes."""

    def __init__(self, nodes: Nodes) -> None:
        self.nodes = nodes
        # 11 runs the plain schema, 44 the province-partitioned one: the feed triggers work
        # on both (statement-level triggers with transition tables on a partitioned parent).
        self.stores = {
            "11": SqlStore(nodes.url("11"), create=True),
            "44": SqlStore(nodes.url("44"), create=True, partition_by_province=True),
        }
        self.hub = Hub(nodes.url("hub"))
        self.links: dict[str, ProvinceLink] = {}
        self.rts = {
            p: Runtime(s, FixedClock(NOW), random.Random(int(p))) for p, s in self.stores.items()
        }

    def close(self) -> None:
        for s in self.stores.values():
            s.close()
        self.hub.close()

    def hub_engine(self) -> sa.Engine:
        return self.hub.engine

    def dispose(self) -> None:
        """Drop pooled connections (after a node restarted)."""
        for s in self.stores.values():
            s.engine.dispose()
        self.hub.engine.dispose()


@pytest.fixture(scope="module")
def world(nodes: Nodes) -> Iterator[World]:
    w = World(nodes)
    seed_province(w.stores["11"], "11", N11)
    # 44's children 0 … SHARED-1 hold the ID numbers of 11's first children (registered in
    # both provinces); the rest are 44's own.
    seed_province(w.stores["44"], "44", SHARED, id_region="110105")
    seed_province(w.stores["44"], "44", N44 - SHARED, first=SHARED)
    yield w
    w.close()


def _active(store: SqlStore) -> int:
    with store.unit_of_work() as uow:
        return sum(1 for _ in uow.records.iter(states=[State.ACTIVE]))


def _hub_records(w: World, p: str, where: str = "TRUE") -> int:
    return int(
        scalar(w.hub_engine(), f"SELECT count(*) FROM {feed_schema(p)}.records WHERE {where}")
    )


# ------------------------------------------------------------------------ refusals


def test_other_stores_are_refused() -> None:
    store = SqlStore("sqlite://", create=True)
    with pytest.raises(FederationError) as info:
        publish(store, "11", KEY)
    assert (info.value.code, info.value.field) == ("postgresql_only", "store")
    assert "PostgreSQL" in info.value.message_en
    assert "PostgreSQL" in info.value.message_zh
    with pytest.raises(FederationError):
        ProvinceLink(store)
    store.close()


def test_wal_level_must_be_logical(nodes: Nodes) -> None:
    store = SqlStore(nodes.url("replica"), create=True)
    try:
        with pytest.raises(FederationError) as info:
            publish(store, "11", KEY)
        assert (info.value.code, info.value.field) == ("wal_level_not_logical", "wal_level")
        assert "wal_level = logical" in info.value.hint
        assert "replica" in info.value.message_en
        assert "replica" in info.value.message_zh
        with store.engine.connect() as conn:  # nothing was created
            assert (
                conn.exec_driver_sql(
                    "SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'province_%%'"
                ).scalar_one()
                == 0
            )
        hub = Hub(nodes.url("replica"))
        with pytest.raises(FederationError) as info:
            hub.attach("11", nodes.url("replica"))
        assert info.value.code == "wal_level_not_logical"
        hub.close()
    finally:
        store.close()


def test_weak_key_and_bad_province_refused(world: World) -> None:
    with pytest.raises(ValueError, match="weak_national_key"):
        publish(world.stores["11"], "11", b"short")
    with pytest.raises(ValueError, match="invalid_province"):
        publish(world.stores["11"], "110000", KEY)


def test_link_needs_publish(world: World) -> None:
    with pytest.raises(FederationError) as info:
        ProvinceLink(world.stores["11"])
    assert info.value.code == "not_published"


def test_hub_refuses_an_unpublished_province(world: World) -> None:
    with pytest.raises(FederationError) as info:
        world.hub.attach("11", world.nodes.url("11"))
    assert info.value.code == "not_published"


# ------------------------------------------------------------------------ set-up


def test_publish_is_idempotent_and_backfills(world: World) -> None:
    first = publish(world.stores["11"], "11", KEY)
    again = publish(world.stores["11"], "11", KEY)
    assert (first.created, again.created) == (True, False)
    assert first.records == again.records == N11
    assert publish(world.stores["44"], "44", KEY).records == N44
    for p in ("11", "44"):
        assert records_feed_equal(world.stores[p])
        world.links[p] = ProvinceLink(world.stores[p])
    with pytest.raises(FederationError) as info:
        publish(world.stores["11"], "44", KEY)
    assert info.value.code == "province_mismatch"
    with pytest.raises(FederationError) as info:
        publish(world.stores["11"], "11", bytes(32))
    assert info.value.code == "national_key_mismatch"


def test_feed_ident_is_the_python_hmac(world: World) -> None:
    """The trigger's SQL hash equals domain.federation.national_ident, for every record."""
    store = world.stores["44"]
    with store.unit_of_work() as uow:
        records = list(uow.records.iter())
        children = uow.children.get_many([r.child_id for r in records])
    want = {r.id: national_ident(KEY, identity_key(children[r.child_id])) for r in records}
    with store.engine.connect() as conn:
        rows = conn.exec_driver_sql(f"SELECT record_id, ident FROM {feed_schema('44')}.records")
        got = {r[0]: r[1] for r in rows}
    assert got == want
    # A child without a document (name + sex + birth date) and a lower-case x.
    link = world.links["44"]
    kid = Child("cx", "李小红", Sex.F, date(2021, 5, 1))
    with store.engine.connect() as conn:
        sql = conn.execute(
            sa.text(
                "SELECT studentstatus_federation.ident(ipad, opad, 'none', NULL, :n, 'F', :b), "
                "studentstatus_federation.ident(ipad, opad, 'resident', :d, 'x', 'M', :b) "
                "FROM studentstatus_federation.settings"
            ),
            {"n": "李小红", "b": date(2021, 5, 1), "d": "110105 20200315-003x"},
        ).one()
    doc = Child(
        "cy",
        "x",
        Sex.M,
        date(2021, 5, 1),
        IdentityDocument(DocumentKind.RESIDENT, "110105 20200315-003x"),
    )
    assert sql[0] == link.ident(identity_key(kid))
    assert sql[1] == link.ident(identity_key(doc))


def test_subscribe_is_idempotent_and_catches_up(world: World) -> None:
    made = world.hub.attach("11", world.nodes.url("11"))
    assert made == dict.fromkeys(
        ("hub_publication", "hub_subscription", "province_subscription"), True
    )
    world.hub.attach("44", world.nodes.url("44"))
    assert set(world.hub.attach("44", world.nodes.url("44")).values()) == {False}
    assert world.hub.provinces() == ["11", "44"]
    wait_for(
        "the hub to copy both provinces",
        lambda: _hub_records(world, "11") == N11 and _hub_records(world, "44") == N44,
    )
    # What the hub holds: no names, no document numbers, no national numbers.
    with world.hub_engine().connect() as conn:
        columns = {
            r[0]
            for r in conn.exec_driver_sql(
                "SELECT column_name FROM information_schema.columns WHERE table_schema LIKE "
                "'province_%%'"
            )
        }
        text = conn.exec_driver_sql(
            f"SELECT string_agg(t::text, '|') FROM {feed_schema('11')}.records t"
        ).scalar_one()
    assert not columns & {"name", "document_number", "national_number", "guardians"}
    assert resident_number("110105", 3) not in text


# ------------------------------------------------------------------------ dedupe


def test_dedupe_sends_each_province_a_notice_once(world: World) -> None:
    with pytest.raises(PermissionDenied):
        fed.dedupe(world.hub, Operator.parse("province:44"))
    first = fed.dedupe(world.hub, MINISTRY)
    assert (first.findings, first.notices) == (SHARED, 2 * SHARED)
    again = fed.dedupe(world.hub, MINISTRY)
    assert (again.findings, again.notices) == (SHARED, 0)
    for p in ("11", "44"):
        wait_for(
            f"notices to reach {p}",
            lambda p=p: (
                scalar(world.stores[p].engine, f"SELECT count(*) FROM {NATIONAL_SCHEMA}.mail")
                == SHARED
            ),
        )
        report = fed.apply_inbox(world.rts[p], world.links[p])
        assert report.applied == SHARED
        assert report.outcomes == {"duplicate_problems": SHARED}
        assert fed.apply_inbox(world.rts[p], world.links[p]).applied == 0
        with world.stores[p].unit_of_work() as uow:
            problems = [x for x in uow.problems.iter() if x.kind is ProblemKind.DUPLICATE_ID]
        other = "44" if p == "11" else "11"
        assert len(problems) == SHARED
        assert all(f"province {other}" in x.detail for x in problems)
        assert all(resident_number("110105", 1) not in x.detail for x in problems)


# ------------------------------------------------------------------------ transfers


def _child_of_11(i: int) -> Child:
    """What 44's kindergarten enters for 11's child ``i`` (from the family's documents)."""
    number = resident_number("110105", i)
    return Child(
        f"c44-in-{i}",
        child_name(i),
        Sex.M if int(number[16]) % 2 else Sex.F,
        date(int(number[6:10]), int(number[10:12]), int(number[12:14])),
        IdentityDocument(DocumentKind.RESIDENT, number),
        guardians=(Guardian("张母", "mother", "+8613800138000"),),
    )


MOVERS = list(range(SHARED + 10, SHARED + 22))  # 12 children of 11, not in 44
KG44 = Operator.parse(f"kindergarten:{kindergarten_code('44', 0)}")
KG11 = Operator.parse(f"kindergarten:{kindergarten_code('11', 0)}")
COUNTY11 = Operator.parse("county:110105")
COUNTY44 = Operator.parse("county:440303")


def _deliver(world: World, p: str, count: int) -> fed.ApplyReport:
    """Wait until ``count`` unapplied messages reached province ``p``; apply them."""
    wait_for(
        f"{count} messages to reach {p}",
        lambda: (
            scalar(
                world.stores[p].engine,
                f"SELECT count(*) FROM {NATIONAL_SCHEMA}.mail WHERE applied_at IS NULL",
            )
            >= count
        ),
    )
    return fed.apply_inbox(world.rts[p], world.links[p])


def test_transfer_request_refusals(world: World) -> None:
    link, rt = world.links["44"], world.rts["44"]
    with pytest.raises(PermissionDenied):
        fed.request_transfer_in(
            rt,
            link,
            Operator.parse("province:44"),
            _child_of_11(0),
            from_province="11",
            to_kindergarten=kindergarten_code("44", 0),
        )
    with pytest.raises(RuleViolations) as info:
        # 11's child 0 is live in 44 already (the shared children).
        fed.request_transfer_in(
            rt,
            link,
            KG44,
            _child_of_11(0),
            from_province="44",
            to_kindergarten=kindergarten_code("44", 0),
        )
    assert {v.code for v in info.value.violations} == {"same_province", "already_live_here"}
    with pytest.raises(RuleViolations) as info:  # the child's data is checked, all at once
        fed.request_transfer_in(
            rt,
            link,
            KG44,
            attrs.evolve(_child_of_11(40), guardians=(), name="x1"),
            from_province="11",
            to_kindergarten=kindergarten_code("44", 0),
        )
    assert {v.code for v in info.value.violations} >= {"guardian_phone_missing", "name_characters"}
    with pytest.raises(NotFoundError):
        fed.request_transfer_in(
            rt,
            link,
            KG44,
            _child_of_11(40),
            from_province="11",
            to_kindergarten=kindergarten_code("11", 0),
        )


def _delivered(world: World) -> bool:
    """Every message each province sent is in the other's mail, and applied there."""
    for p, other in (("11", "44"), ("44", "11")):
        with world.stores[p].engine.connect() as conn:
            sent = {
                r[0]
                for r in conn.exec_driver_sql(
                    f"SELECT id FROM {feed_schema(p)}.outbox WHERE destination = '{other}'"
                )
            }
        with world.stores[other].engine.connect() as conn:
            got = {
                r[0]
                for r in conn.exec_driver_sql(
                    f"SELECT id FROM {NATIONAL_SCHEMA}.mail WHERE applied_at IS NOT NULL"
                )
            }
        if not sent <= got:
            return False
    return True


def settle(world: World) -> dict[str, int]:
    """Apply both inboxes until every message sent is delivered and applied; the outcomes."""
    outcomes: dict[str, int] = {}
    deadline = time.monotonic() + TIMEOUT
    while True:
        for p in ("11", "44"):
            report = fed.apply_inbox(world.rts[p], world.links[p])
            assert report.failed == ()
            for k, n in report.outcomes.items():
                outcomes[k] = outcomes.get(k, 0) + n
        if _delivered(world):
            return outcomes
        if time.monotonic() > deadline:
            pytest.fail("timed out waiting for the messages to be delivered")
        time.sleep(0.2)


def _decide(world: World, p: str, operator: Operator, ids: list[str], **kw: Any) -> None:
    for tid in ids:
        fed.decide_transfer(world.rts[p], world.links[p], operator, tid, **kw)


def _ask_for(world: World, i: int) -> Transfer:
    """44's kindergarten asks for 11's child ``i``; the request has reached 11."""
    t = fed.request_transfer_in(
        world.rts["44"],
        world.links["44"],
        KG44,
        _child_of_11(i),
        from_province="11",
        to_kindergarten=kindergarten_code("44", 0),
    )
    settle(world)
    return t


def _approve_all_but_the_last(world: World, t: Transfer) -> None:
    """Every step of ``t``'s chain approved but the last (province 44's)."""
    _decide(world, "11", KG11, [t.id], approve=True)
    _decide(world, "11", COUNTY11, [t.id], approve=True)
    settle(world)
    _decide(world, "44", COUNTY44, [t.id], approve=True)
    settle(world)
    _decide(world, "11", Operator.parse("province:11"), [t.id], approve=True)


def test_transfers_with_nodes_down(world: World) -> None:
    rt44, rt11 = world.rts["44"], world.rts["11"]
    link44, link11 = world.links["44"], world.links["11"]
    # The hub's subscription to 44 is disabled while the requests are made: they wait in
    # 44's replication slot.
    with world.hub_engine().connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("ALTER SUBSCRIPTION studentstatus_hub_from_44 DISABLE")
    requests = [
        fed.request_transfer_in(
            rt44,
            link44,
            KG44,
            _child_of_11(i),
            from_province="11",
            to_kindergarten=kindergarten_code("44", 0),
            grade=Grade.MIDDLE,
        )
        for i in MOVERS
    ]
    unknown = fed.request_transfer_in(
        rt44,
        link44,
        KG44,
        _child_of_11(N11 + 50),
        from_province="11",
        to_kindergarten=kindergarten_code("44", 0),
    )
    assert {t.status for t in requests} == {TransferStatus.REQUESTED}
    time.sleep(1.0)
    assert (
        scalar(
            world.stores["11"].engine,
            f"SELECT count(*) FROM {NATIONAL_SCHEMA}.mail WHERE applied_at IS NULL",
        )
        == 0
    )
    with world.hub_engine().connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("ALTER SUBSCRIPTION studentstatus_hub_from_44 ENABLE")
    outcomes = settle(world)
    assert outcomes == {"pending": len(MOVERS), "refused": 2, "step": len(MOVERS)}
    pending = fed.list_transfers(rt11, link11, COUNTY11, status=TransferStatus.PENDING)
    assert sorted(t.id for t in pending) == sorted(t.id for t in requests)
    # The chain, made at the source by its policy: both kindergartens, both counties and
    # both provinces; the destination has the same copy.
    chain = [(s.role.value, s.scope, s.decision.value) for s in pending[0].steps]
    assert chain == [
        ("kindergarten", kindergarten_code("44", 0), "APPROVED"),
        ("kindergarten", kindergarten_code("11", 0), "PENDING"),
        ("county", "110105", "PENDING"),
        ("county", "440303", "PENDING"),
        ("province", "11", "PENDING"),
        ("province", "44", "PENDING"),
    ]
    mine = {t.id: t for t in fed.list_transfers(rt44, link44, COUNTY44)}
    assert [(s.role.value, s.scope) for s in mine[requests[0].id].steps] == [c[:2] for c in chain]
    # Another county sees none of them, and cannot decide one; a step is decided only by
    # its operator, in its province.
    assert fed.list_transfers(rt11, link11, Operator.parse("county:110106")) == []
    with pytest.raises(NotFoundError):
        fed.decide_transfer(
            rt11, link11, Operator.parse("county:110106"), requests[0].id, approve=True
        )
    with pytest.raises(RuleViolations) as info:
        fed.decide_transfer(rt44, link44, COUNTY44, requests[0].id, approve=True)
    assert [v.code for v in info.value.violations] == ["not_your_step"]
    assert "province 11" in info.value.violations[0].message_en

    ids = [t.id for t in requests]
    approve, refuse = ids[:9], ids[9:]
    _decide(world, "11", KG11, ids, approve=True)
    _decide(world, "11", COUNTY11, approve, approve=True)
    # 44 crashes while the source county decides: its decisions wait at the hub.
    world.nodes.clusters["44"].stop("immediate")
    _decide(world, "11", COUNTY11, refuse, approve=False, reason="家长撤回")
    with pytest.raises(RuleViolations):
        fed.decide_transfer(rt11, link11, COUNTY11, refuse[0], approve=True)
    world.nodes.clusters["44"].start()
    world.dispose()
    settle(world)
    _decide(world, "44", COUNTY44, approve, approve=True)
    # The hub goes down while the destination county's decisions travel.
    world.nodes.clusters["hub"].stop("fast")
    time.sleep(1.0)
    world.nodes.clusters["hub"].start()
    world.dispose()
    settle(world)
    _decide(world, "11", Operator.parse("province:11"), approve, approve=True)
    settle(world)
    with world.stores["11"].unit_of_work() as uow:  # not yet released: the last step is 44's
        assert {uow.records.get(f"s11-{i:09d}").state for i in MOVERS[:9]} == {State.ACTIVE}
    _decide(world, "44", Operator.parse("province:44"), approve, approve=True)
    outcomes = settle(world)
    assert outcomes == {"arrived": 9, "released": 9}

    mine = {t.id: t for t in fed.list_transfers(rt44, link44, COUNTY44)}
    assert {mine[t].status for t in approve} == {TransferStatus.DONE}
    # Both sides hold the whole chain, every step decided, the last one at the source.
    assert {s.decision for t in approve for s in mine[t].steps} == {StepDecision.APPROVED}
    assert {mine[t].status for t in refuse} | {mine[unknown.id].status} == {TransferStatus.REFUSED}
    theirs = {t.id: t for t in fed.list_transfers(rt11, link11, COUNTY11)}
    assert {theirs[t].status for t in approve} == {TransferStatus.APPROVED}
    assert {theirs[t].status for t in refuse} == {TransferStatus.REFUSED}
    # The source let go; the rest stay.
    with world.stores["11"].unit_of_work() as uow:
        assert {uow.records.get(f"s11-{i:09d}").state for i in MOVERS[:9]} == {State.WITHDRAWN}
        assert {uow.records.get(f"s11-{i:09d}").state for i in MOVERS[9:]} == {State.ACTIVE}
    with world.stores["44"].unit_of_work() as uow:
        arrived = [uow.records.get(mine[t].record_id or "") for t in approve]
    assert {r.state for r in arrived} == {State.ACTIVE}
    assert {r.national_number for r in arrived} == {
        "G" + resident_number("110105", i) for i in MOVERS[:9]
    }
    assert fed.apply_inbox(rt44, link44).applied == 0


# ------------------------------------------------------------------------ convergence


def test_convergence(world: World) -> None:
    hub = world.hub_engine()
    # 0 lost: every message each province sent is in its destination's mail, and applied.
    for p, other in (("11", "44"), ("44", "11")):
        with world.stores[p].engine.connect() as conn:
            sent = {r[0] for r in conn.exec_driver_sql(f"SELECT id FROM {feed_schema(p)}.outbox")}
        wait_for(
            f"{p}'s messages to reach {other}",
            lambda sent=sent, other=other: (
                sent
                <= {
                    r[0]
                    for r in world.stores[other]
                    .engine.connect()
                    .exec_driver_sql(f"SELECT id FROM {NATIONAL_SCHEMA}.mail")
                }
            ),
        )
        assert (
            scalar(
                world.stores[other].engine,
                f"SELECT count(*) FROM {NATIONAL_SCHEMA}.mail WHERE applied_at IS NULL",
            )
            == 0
        )
    # 0 applied twice: one record per arrived transfer, one problem per notice.
    with world.stores["44"].engine.connect() as conn:
        doubles = conn.exec_driver_sql(
            "SELECT national_number FROM records WHERE state = 'ACTIVE' "
            "GROUP BY national_number HAVING count(*) > 1"
        ).all()
    assert doubles == []
    # 0 children active twice: after the hub caught up, only the SHARED children are found.
    wait_for(
        "the hub to see 11's withdrawals",
        lambda: _hub_records(world, "11", "state = 'WITHDRAWN'") == 9,
    )
    wait_for("the hub to see 44's arrivals", lambda: _hub_records(world, "44") == N44 + 9)
    with hub.connect() as conn:
        twice = conn.exec_driver_sql(
            f"SELECT count(*) FROM {feed_schema('11')}.records a "
            f"JOIN {feed_schema('44')}.records b USING (ident) "
            "WHERE a.state = 'ACTIVE' AND b.state = 'ACTIVE'"
        ).scalar_one()
    assert twice == SHARED  # the migrant children registered twice, now noticed; no mover
    with hub.connect() as conn:  # the numbers of the children who moved travelled sealed
        mail = conn.exec_driver_sql(
            f"SELECT string_agg(body::text, '|') FROM {NATIONAL_SCHEMA}.mail"
        ).scalar_one()
    assert all(resident_number("110105", i)[:17] not in mail for i in MOVERS)
    hub_store = SqlStore(world.nodes.url("hub"), create=True)  # the hub's own audit trail
    hub_rt = Runtime(hub_store, FixedClock(NOW), random.Random(0))
    assert fed.dedupe(world.hub, MINISTRY, rt=hub_rt).notices == 0
    # The national report is the sum of the provincial ones.
    wait_for(
        "the hub's problems to match",
        lambda: (
            _hub_records(world, "44") == N44 + 9
            and scalar(hub, f"SELECT count(*) FROM {feed_schema('44')}.problems") == SHARED
        ),
    )
    national = fed.national_report(world.hub, MINISTRY)
    sums: dict[str, dict[str, int]] = {"by_county": {}, "by_grade": {}, "by_sex": {}}
    problems: dict[str, dict[str, int]] = {}
    total = 0
    for p in ("11", "44"):
        r = build_report(world.rts[p], Operator.parse(f"province:{p}"), p, 2024)
        total += r.total
        for key in sums:
            for k, n in getattr(r, key).items():
                sums[key][k] = sums[key].get(k, 0) + n
        for kind, by_status in r.problems.items():
            for status, n in by_status.items():
                problems.setdefault(kind, {})[status] = (
                    problems.setdefault(kind, {}).get(status, 0) + n
                )
        assert national.by_province[p] == r.total
    assert national.total == total == _active(world.stores["11"]) + _active(world.stores["44"])
    assert national.by_county == sums["by_county"]
    assert national.by_grade == sums["by_grade"]
    assert national.by_sex == sums["by_sex"]
    assert national.problems == problems
    # Every audit chain verifies on every node (the provinces' records replay from their logs).
    hub_chain = verify(hub_store)
    assert hub_chain.ok
    assert hub_chain.checked == 1  # the dedupe run
    hub_store.close()
    for p in ("11", "44"):
        report = verify(world.stores[p], replay=True)
        assert report.ok
    assert {s.inbound for s in world.hub.status()} == {"streaming"}


def test_a_record_that_left_meanwhile_is_not_transferred(world: World) -> None:
    """The source withdraws the child on its own while the chain runs: at the last approval
    the transfer is refused on both sides, and nothing arrives."""
    from studentstatus.services.changes import approve_step, request_change

    i = MOVERS[-1] + 1
    t = _ask_for(world, i)
    _approve_all_but_the_last(world, t)
    asked = request_change(world.rts["11"], KG11, f"s11-{i:09d}", "WITHDRAW", reason="家长申请")
    assert asked.request is not None
    assert approve_step(world.rts["11"], COUNTY11, asked.request.id).applied
    settle(world)
    _decide(world, "44", Operator.parse("province:44"), [t.id], approve=True)
    assert settle(world) == {"refused": 2}
    theirs = {x.id: x for x in fed.list_transfers(world.rts["11"], world.links["11"], COUNTY11)}
    mine = {x.id: x for x in fed.list_transfers(world.rts["44"], world.links["44"], COUNTY44)}
    assert (theirs[t.id].status, mine[t.id].status) == (TransferStatus.REFUSED,) * 2
    assert mine[t.id].record_id is None
    assert "WITHDRAWN" in mine[t.id].reason or "state" in mine[t.id].reason


def test_an_arrival_that_fails_goes_back(world: World) -> None:
    """The destination cannot take a child the source has let go (its kindergarten lost
    its licence meanwhile): the source re-enrols its record, both sides refuse."""
    i = MOVERS[-1] + 2
    t = _ask_for(world, i)
    _approve_all_but_the_last(world, t)
    settle(world)
    with world.stores["44"].unit_of_work() as uow:
        kg = uow.kindergartens.get(kindergarten_code("44", 0))
        lapsed = attrs.evolve(kg.licences[0], valid_until=date(2024, 12, 31))
        uow.kindergartens.update(attrs.evolve(kg, licences=(lapsed,)))
        uow.commit()
    try:
        _decide(world, "44", Operator.parse("province:44"), [t.id], approve=True)
        assert settle(world) == {"released": 1, "failed": 1, "reenrolled": 1}
    finally:
        with world.stores["44"].unit_of_work() as uow:
            uow.kindergartens.update(
                attrs.evolve(uow.kindergartens.get(kg.school_code), licences=kg.licences)
            )
            uow.commit()
    with world.stores["11"].unit_of_work() as uow:
        record = uow.records.get(f"s11-{i:09d}")
    assert record.state is State.PENDING  # live at the source again, for its county
    theirs = {x.id: x for x in fed.list_transfers(world.rts["11"], world.links["11"], COUNTY11)}
    mine = {x.id: x for x in fed.list_transfers(world.rts["44"], world.links["44"], COUNTY44)}
    assert (theirs[t.id].status, mine[t.id].status) == (TransferStatus.REFUSED,) * 2
    assert "licensed" in theirs[t.id].reason


def test_forged_and_misdirected_messages_are_ignored(world: World) -> None:
    """A chain copy that decides the receiver's own steps, or an answer from a province
    that is not the transfer's other side, changes nothing; a child that had a record in
    the destination before is refused at once (its record there is re-enrolled instead)."""
    i = MOVERS[-1] + 3
    t = _ask_for(world, i)
    theirs = {x.id: x for x in fed.list_transfers(world.rts["11"], world.links["11"], COUNTY11)}
    forged = [
        {**to_dict(step), "decision": "APPROVED", "decided_by": "kindergarten:4400000000"}
        for step in theirs[t.id].steps
    ]
    body = json.dumps({"transfer": t.id, "steps": forged, "sides": list(theirs[t.id].sides)})
    with world.stores["11"].engine.begin() as conn:
        for mid, source in (("forged-1", "44"), ("forged-2", "31")):
            conn.execute(
                sa.text(
                    f"INSERT INTO {NATIONAL_SCHEMA}.mail (id, source, destination, kind, body, "
                    "created_at) VALUES (:id, :src, '11', 'transfer_steps', "
                    "CAST(:body AS jsonb), now())"
                ),
                {"id": mid, "src": source, "body": body},
            )
    report = fed.apply_inbox(world.rts["11"], world.links["11"])
    assert report.outcomes == {"ignored": 2}
    again = {x.id: x for x in fed.list_transfers(world.rts["11"], world.links["11"], COUNTY11)}
    assert again[t.id].status is TransferStatus.PENDING
    assert again[t.id].steps == theirs[t.id].steps
    with world.stores["11"].unit_of_work() as uow:
        assert uow.records.get(f"s11-{i:09d}").state is State.ACTIVE
    # 11's mover went to 44; coming back is a re-enrolment of its old record, not a transfer.
    with pytest.raises(RuleViolations) as info:
        fed.request_transfer_in(
            world.rts["11"],
            world.links["11"],
            KG11,
            _child_of_11(MOVERS[0]),
            from_province="44",
            to_kindergarten=kindergarten_code("11", 0),
        )
    assert [v.code for v in info.value.violations] == ["record_here"]


def test_a_bad_message_does_not_block_the_inbox(world: World) -> None:
    """A message whose effect fails stays unapplied and named; the others are applied."""
    engine = world.stores["11"].engine
    with engine.begin() as conn:
        for mid, kind, body in (
            ("bad-1", "duplicate_notice", "{}"),
            ("bad-2", "a_future_kind", "{}"),
            ("bad-3", "duplicate_notice", "[1, 2]"),
            ("good-1", "duplicate_notice", '{"ident": "00", "others": ["44"]}'),
        ):
            conn.exec_driver_sql(
                f"INSERT INTO {NATIONAL_SCHEMA}.mail (id, source, destination, kind, body, "
                f"created_at) VALUES ('{mid}', 'hub', '11', '{kind}', '{body}', now())"
            )
    report = fed.apply_inbox(world.rts["11"], world.links["11"])
    assert (report.applied, sorted(report.failed)) == (1, ["bad-1", "bad-2", "bad-3"])
    assert report.outcomes == {"duplicate_known": 1}
    again = fed.apply_inbox(world.rts["11"], world.links["11"])
    assert (again.applied, sorted(again.failed)) == (0, ["bad-1", "bad-2", "bad-3"])
    with engine.begin() as conn:
        conn.exec_driver_sql(f"DELETE FROM {NATIONAL_SCHEMA}.mail WHERE id LIKE 'bad-%%'")


def test_a_published_plain_store_is_not_converted(world: World) -> None:
    """Partitioning replaces the tables the feed's triggers sit on: refused once published."""
    with world.stores["11"].engine.begin() as conn, pytest.raises(StorageError, match="publish"):
        convert_to_partitioned(conn)
    with world.stores["44"].engine.begin() as conn:  # partitioned already: nothing to do
        assert convert_to_partitioned(conn) == []
