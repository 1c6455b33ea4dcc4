"""PostgreSQL: the online look-ups never scan the big tables.

A province holds millions of records; a portal's search, a record's page and the
county's work lists must each be answered from an index, whatever the table's size.
The store here holds a few thousand records in three provinces (enough for the planner
to prefer an index when one fits, as it will at scale), with fresh statistics
(``ANALYZE``) and the planner's default settings — no ``enable_seqscan = off``.  The
statements each operation really runs are captured and explained: the plan must reach
``records`` and ``children`` (and the other big tables it touches) through an index and
never through a ``Seq Scan``.
"""

from __future__ import annotations

import random
import re
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from studentstatus.adapters.sql import SqlStore
from studentstatus.domain.enums import (
    ChangeKind,
    Grade,
    KindergartenType,
    ProblemKind,
    ProblemStatus,
    RequestStatus,
    Role,
    Sex,
    State,
)
from studentstatus.domain.jurisdiction import Operator
from studentstatus.domain.model import (
    ApprovalStep,
    ChangeRequest,
    Child,
    DocumentKind,
    IdentityDocument,
    Kindergarten,
    ProblemRecord,
    StatusRecord,
)
from studentstatus.services.runtime import FixedClock, Runtime

pytestmark = pytest.mark.postgres

NOW = datetime(2026, 3, 2, 9, tzinfo=UTC)
COUNTIES = [f"{p}{c}" for p in ("11", "44", "31") for c in ("0101", "0105", "0108", "0112")]
PER_KINDERGARTEN = 300
KINDERGARTENS = [
    Kindergarten(f"{county}00{k:02d}", "x", f"幼儿园{county}{k}", county, KindergartenType.PUBLIC)
    for county in COUNTIES
    for k in range(6)
]  # fmt: skip
BIG = ("records", "children", "record_numbers", "problems", "change_requests")


class World:
    """The loaded store and a few keys to look for."""

    def __init__(self, store: SqlStore, records: list[StatusRecord], children: list[Child]):
        self.store = store
        self.records = sorted(records, key=lambda r: r.id)
        self.children = {c.id: c for c in children}
        self.empty_partitions: set[str] = set()

    def rt(self) -> Runtime:
        return Runtime(self.store, FixedClock(NOW), random.Random(5))


def _load(store: SqlStore) -> World:
    rng = random.Random(20260302)
    children: list[Child] = []
    records: list[StatusRecord] = []
    problems: list[ProblemRecord] = []
    requests: list[ChangeRequest] = []
    i = 0
    for kg in KINDERGARTENS:
        for _ in range(PER_KINDERGARTEN):
            i += 1
            born = date(2020, 1, 1) + timedelta(days=rng.randrange(1200))
            child = Child(
                f"c{rng.getrandbits(128):032x}",
                f"童{rng.randrange(1500):04d}",
                Sex.M if i % 2 else Sex.F,
                born,
                IdentityDocument(DocumentKind.PASSPORT, f"E{i:08d}"),
            )
            state = State.PENDING if i % 10 == 0 else State.ACTIVE
            if i % 37 == 0:
                state = State.GRADUATED
            national = f"J{kg.region_code}{i:012d}" if i % 2 else None
            rec = StatusRecord(
                f"r{rng.getrandbits(128):032x}",
                child.id,
                kg.school_code,
                kg.region_code,
                state,
                Grade.JUNIOR if i % 3 else Grade.SENIOR,
                date(2024, 9, 1),
                temp_number=f"L{kg.region_code}{born:%Y%m%d}{i:04d}",
                national_number=national,
            )
            children.append(child)
            records.append(rec)
            if i % 7 == 0:
                problems.append(
                    ProblemRecord(
                        f"p{rng.getrandbits(128):032x}", rec.id, ProblemKind.SUSPECTED_DUPLICATE,
                        kg.region_code, kg.school_code, NOW, date(2026, 4, 1),
                        ProblemStatus.RESOLVED if i % 3 == 0 else ProblemStatus.OPEN,
                    )
                )  # fmt: skip
            if i % 9 == 0:
                # Open ones wait for the county (some overdue), or first for the kindergarten.
                county_step = ApprovalStep(
                    Role.COUNTY, kg.region_code, date(2026, 3, 1 if i % 5 == 0 else 16)
                )
                steps: tuple[ApprovalStep, ...] = (county_step,)
                if i % 8 == 0:
                    steps = (ApprovalStep(Role.KINDERGARTEN, kg.school_code, NOW.date()), *steps)
                requests.append(
                    ChangeRequest(
                        f"q{rng.getrandbits(128):032x}", rec.id, ChangeKind.TRANSFER,
                        f"kindergarten:{kg.school_code}", NOW, steps,
                        status=RequestStatus.OPEN if i % 4 == 0 else RequestStatus.APPROVED,
                    )
                )  # fmt: skip
    with store.unit_of_work() as uow:
        uow.kindergartens.add_many(KINDERGARTENS)
        uow.children.add_many(children)
        uow.records.add_many(records)
        uow.problems.add_many(problems)
        for q in requests:
            uow.requests.add(q)
        uow.commit()
    with store.engine.begin() as conn:
        for table in store.tables.by_port.values():
            conn.exec_driver_sql(f"ANALYZE {table.name}")
        # Partitions of provinces without children: a Seq Scan there reads nothing.
        empty = conn.exec_driver_sql(
            "SELECT c.relname FROM pg_class c JOIN pg_inherits i ON i.inhrelid = c.oid "
            "WHERE c.relpages = 0 AND c.relname LIKE %(p)s",
            {"p": f"{store.tables.prefix}%"},
        )
        world = World(store, records, children)
        world.empty_partitions = set(empty.scalars())
    return world


@pytest.fixture(scope="module", params=["plain", "partitioned"])
def world(request: pytest.FixtureRequest, postgres_url: str) -> Iterator[World]:
    """A PostgreSQL store with some twenty thousand analysed records (plain tables, and
    the big tables partitioned by province)."""
    store = SqlStore(
        postgres_url,
        prefix=f"sp{uuid.uuid4().hex[:8]}_",
        create=True,
        partition_by_province=request.param == "partitioned",
    )
    try:
        yield _load(store)
    finally:
        store.drop_schema()
        store.close()


def _plans(world: World, action: Callable[[], Any]) -> list[tuple[str, str]]:
    """Run ``action``; EXPLAIN every SELECT it sent: (statement, plan) pairs.

    A SELECT sent while the store had set ``enable_seqscan = off`` (its bulk look-ups do,
    :meth:`~studentstatus.adapters.sql.store._Repo._by_index`) fails the test: the online
    path must be index-driven on the planner's own judgement.
    """
    seen: list[tuple[str, Any]] = []
    forced = False

    def capture(conn: Any, cursor: Any, statement: str, params: Any, *args: Any) -> None:
        nonlocal forced
        text = statement.lstrip().upper()
        if text.startswith("SET LOCAL ENABLE_SEQSCAN"):
            forced = text.rstrip().endswith("OFF")
        elif text.startswith(("ROLLBACK", "RELEASE", "COMMIT")):
            forced = False
        elif text.startswith("SELECT"):
            assert not forced, f"sent with enable_seqscan = off:\n{statement[:300]}"
            seen.append((statement, params))

    engine = world.store.engine
    sa.event.listen(engine, "before_cursor_execute", capture)
    try:
        action()
    finally:
        sa.event.remove(engine, "before_cursor_execute", capture)
    out = []
    with engine.connect() as conn:
        for statement, params in seen:
            rows = conn.exec_driver_sql(f"EXPLAIN {statement}", params)
            out.append((statement, "\n".join(r[0] for r in rows)))
    return out


def _scans(plan: str, table: str) -> list[str]:
    """The plan's scan lines on ``table`` (its prefixed name) or on its partitions."""
    pattern = re.compile(rf"Scan( Backward)?( using \S+)? on {re.escape(table)}(_p\w+)?\s")
    return [line.strip() for line in plan.splitlines() if pattern.search(line)]


def assert_index_driven(world: World, action: Callable[[], Any], *tables: str) -> None:
    """Every SELECT of ``action`` reads the big tables by index only; each of ``tables``
    is read (by index) by at least one of them."""
    plans = _plans(world, action)
    assert plans, "the action sent no SELECT"
    prefix = world.store.tables.prefix
    reached: set[str] = set()
    for statement, plan in plans:
        for short in BIG:
            lines = _scans(plan, f"{prefix}{short}")
            seq = [
                ln
                for ln in lines
                if "Seq Scan" in ln and ln.split(" on ")[1].split()[0] not in world.empty_partitions
            ]
            assert not seq, f"{short} scanned:\n{plan}\n-- for --\n{statement}"
            if lines:
                reached.add(short)
    for short in tables:
        assert short in reached, f"{short} not read through an index:\n" + "\n\n".join(
            p for _s, p in plans
        )


# --------------------------------------------------------------------------- searches


def _search(world: World, operator: str, **filters: Any) -> Callable[[], Any]:
    from studentstatus.services.records import search_records

    def run() -> Any:
        return search_records(world.rt(), Operator.parse(operator), **filters)

    return run


def test_search_by_number_reads_the_number_index(world: World) -> None:
    rec = next(r for r in world.records if r.national_number)
    op = f"county:{rec.region_code}"
    for number in (rec.national_number, rec.temp_number):
        page = _search(world, op, number=number)()
        assert [s.record_id for s in page.items] == [rec.id]
        assert_index_driven(
            world, _search(world, op, number=number), "record_numbers", "records", "children"
        )


def test_search_by_document_and_name(world: World) -> None:
    rec = world.records[len(world.records) // 3]
    child = world.children[rec.child_id]
    assert child.document is not None
    op = f"province:{rec.region_code[:2]}"
    assert_index_driven(
        world, _search(world, op, document=child.document.number), "records", "children"
    )
    assert_index_driven(world, _search(world, "ministry", name=child.name), "records", "children")
    assert_index_driven(
        world,
        _search(world, op, name=child.name, birth_date=child.birth_date),
        "records",
        "children",
    )
    page = _search(world, op, name=child.name, birth_date=child.birth_date)()
    assert rec.id in [s.record_id for s in page.items]


def test_search_by_scope_pages_through_indexes(world: World) -> None:
    rec = world.records[100]
    kg = f"kindergarten:{rec.kindergarten_code}"
    county = f"county:{rec.region_code}"
    assert_index_driven(world, _search(world, kg), "records", "children")
    assert_index_driven(
        world, _search(world, county, kindergarten=rec.kindergarten_code), "records", "children"
    )
    assert_index_driven(world, _search(world, county), "records", "children")
    assert_index_driven(world, _search(world, county, state="PENDING"), "records", "children")
    assert_index_driven(world, _search(world, county, grade="SENIOR"), "records", "children")
    province = f"province:{rec.region_code[:2]}"
    middle = world.records[len(world.records) // 2].id
    assert_index_driven(world, _search(world, province, after=middle), "records", "children")
    assert_index_driven(
        world, _search(world, "city:" + rec.region_code[:4], after=middle), "records", "children"
    )
    assert_index_driven(world, _search(world, "ministry", after=middle), "records", "children")


# --------------------------------------------------------------------------- online operations


def test_find_record_by_number(world: World) -> None:
    from studentstatus.services.records import find_record

    rec = next(r for r in world.records if r.national_number)
    op = Operator.parse(f"county:{rec.region_code}")
    assert rec.national_number is not None
    number = rec.national_number
    assert_index_driven(world, lambda: find_record(world.rt(), op, number), "records")


def test_records_of_a_kindergarten(world: World) -> None:
    from studentstatus.services.records import list_records

    rec = world.records[0]
    op = Operator.parse(f"kindergarten:{rec.kindergarten_code}")

    def first_page() -> None:
        gen = list_records(world.rt(), op, batch_size=50)
        assert next(gen).kindergarten_code == rec.kindergarten_code
        gen.close()

    assert_index_driven(world, first_page, "records")


def test_problems_of_a_county(world: World) -> None:
    from studentstatus.services.problems import list_problems

    op = Operator.parse(f"county:{COUNTIES[1]}")

    def first_page() -> None:
        assert list(list_problems(world.rt(), op))

    assert_index_driven(world, first_page, "problems")


def test_open_request_of_a_record(world: World) -> None:
    with world.store.unit_of_work() as uow:
        some = next(q for q in uow.requests.iter(status=RequestStatus.OPEN))
    record_id = some.record_id

    def look() -> None:
        with world.store.unit_of_work() as uow:
            assert uow.requests.open_for_record(record_id) is not None

    assert_index_driven(world, look, "change_requests")


def test_open_requests_are_listed_by_index(world: World) -> None:
    def first_page() -> None:
        with world.store.unit_of_work() as uow:
            assert next(uow.requests.iter(status=RequestStatus.OPEN)) is not None

    assert_index_driven(world, first_page, "change_requests")


def _counting_requests(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The ids of the requests the SQL request repository hands out (``iter``, ``pending_for``)."""
    from studentstatus.adapters.sql.store import SqlRequests

    read: list[str] = []
    for name in ("iter", "pending_for"):
        plain = getattr(SqlRequests, name)

        def counting(
            self: SqlRequests, *args: Any, _plain: Any = plain, **kw: Any
        ) -> Iterator[ChangeRequest]:
            for request in _plain(self, *args, **kw):
                read.append(request.id)
                yield request

        monkeypatch.setattr(SqlRequests, name, counting)
    return read


def _queue(world: World, role: Role, scope: str, **kw: Any) -> Callable[[], Any]:
    """The store's read of an approval queue, as ``list_pending_requests`` makes it."""

    def run() -> None:
        with world.store.unit_of_work() as uow:
            assert list(uow.requests.pending_for(role, scope, **kw))

    return run


def test_approval_queue_of_a_county_reads_only_its_requests(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    from studentstatus.services.changes import list_pending_requests

    op = Operator.parse(f"county:{COUNTIES[1]}")
    read = _counting_requests(monkeypatch)
    queue = list_pending_requests(world.rt(), op)
    assert queue
    assert {v.step for v in queue} == {str(op)}
    assert read == [v.id for v in queue], f"read {len(read)} requests for {len(queue)}"
    read.clear()
    late = list_pending_requests(world.rt(), op, overdue=True)
    assert late
    assert {v.overdue for v in late} == {True}
    assert read == [v.id for v in late]
    assert_index_driven(world, _queue(world, Role.COUNTY, COUNTIES[1]), "change_requests")
    today = NOW.date()
    assert_index_driven(
        world, _queue(world, Role.COUNTY, COUNTIES[1], due_before=today), "change_requests"
    )


def test_approval_queue_of_a_kindergarten_reads_only_its_requests(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    from studentstatus.services.changes import list_pending_requests

    rec = world.records[0]
    op = Operator.parse(f"kindergarten:{rec.kindergarten_code}")
    read = _counting_requests(monkeypatch)
    queue = list_pending_requests(world.rt(), op)
    assert queue
    assert {v.step for v in queue} == {str(op)}
    assert read == [v.id for v in queue], f"read {len(read)} requests for {len(queue)}"
    assert_index_driven(
        world, _queue(world, Role.KINDERGARTEN, rec.kindergarten_code), "change_requests"
    )


def test_problems_of_a_kindergarten(world: World) -> None:
    from studentstatus.services.problems import list_problems

    rec = world.records[len(world.records) // 2]
    op = Operator.parse(f"kindergarten:{rec.kindergarten_code}")

    def first_page() -> None:
        found = list(list_problems(world.rt(), op))
        assert found
        assert {p.kindergarten_code for p in found} == {rec.kindergarten_code}

    assert_index_driven(world, first_page, "problems")
    # by the kindergarten's index, not by the county's (six kindergartens' problems) alone
    plans = [plan for _s, plan in _plans(world, first_page) if "problems" in plan]
    assert plans
    assert all("problems_kindergarten_code_id" in plan or "kindergarten_code_id_idx" in plan
               for plan in plans), "\n\n".join(plans)  # fmt: skip
