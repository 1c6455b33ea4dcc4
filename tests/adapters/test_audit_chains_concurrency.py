"""Audit chains under concurrent writers, on PostgreSQL and MariaDB (and SQLite where it fits).

* Writers of DIFFERENT chains (two counties) each append in their own unit of work and
  then hold the transaction open until the other has appended too (a barrier): neither
  waits for the other, and both commit.  SQLite serialises every writer, so it sits this
  one out.
* Writers of the SAME chain: the second one's append waits for the first to commit (it
  locks the chain's head) and then seals after it — both succeed, seqs 1 and 2, linked.
* A stress run: 8 threads × 20 units over 3 chains (some units append to two chains):
  no ConflictError, every chain verifies with consecutive seqs and matches its head.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from studentstatus.adapters.sql import SqlStore
from studentstatus.services.audit import AuditEvent, audit_many, verify

AT = datetime(2025, 9, 1, 8, 0, tzinfo=UTC)
WAIT = 10.0  # seconds a thread waits for the other before the test fails


def _store(url: str) -> Iterator[SqlStore]:
    store = SqlStore(url, prefix=f"ac{uuid.uuid4().hex[:8]}_", create=True)
    try:
        yield store
    finally:
        store.drop_schema()
        store.close()


@pytest.fixture(params=[pytest.param("postgresql", marks=pytest.mark.postgres),
                        pytest.param("mysql", marks=pytest.mark.mysql)])  # fmt: skip
def server_store(request: pytest.FixtureRequest) -> Iterator[SqlStore]:
    """A fresh store on PostgreSQL and on MariaDB (a unique table prefix, dropped after)."""
    url = request.getfixturevalue("postgres_url" if request.param == "postgresql" else "mysql_url")
    yield from _store(url)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres),
                        pytest.param("mysql", marks=pytest.mark.mysql)])  # fmt: skip
def any_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SqlStore]:
    """A fresh store on a SQLite file, PostgreSQL and MariaDB."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path}/chains.db"
    else:
        url = request.getfixturevalue(
            "postgres_url" if request.param == "postgresql" else "mysql_url"
        )
    yield from _store(url)


def _run(*targets: Callable[[], object]) -> list[BaseException]:
    """Run the callables in threads; the exceptions they raised."""
    errors: list[BaseException] = []

    def wrap(fn: Callable[[], object]) -> None:
        try:
            fn()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=wrap, args=(t,)) for t in targets]
    for t in threads:
        t.start()
    for t in threads:
        t.join(3 * WAIT)
        assert not t.is_alive(), "a writer hangs"
    return errors


def test_writers_of_different_chains_do_not_wait(server_store: SqlStore) -> None:
    """Two counties append in open transactions at once; both commit, neither waited."""
    both_appended = threading.Barrier(2, timeout=WAIT)
    waited: dict[str, float] = {}

    def writer(operator: str) -> None:
        with server_store.unit_of_work() as uow:
            audit_many(uow, [AuditEvent(operator, "approve", "record:r1")], at=AT)
            started = time.perf_counter()
            both_appended.wait()  # the other appended while this transaction is open
            waited[operator] = time.perf_counter() - started
            uow.commit()

    errors = _run(lambda: writer("county:110105"), lambda: writer("county:110106"))
    assert errors == []
    assert all(w < WAIT for w in waited.values())
    with server_store.unit_of_work() as uow:
        heads = uow.audit.heads()
    assert {c: s for c, (s, _h) in heads.items()} == {"county:110105": 1, "county:110106": 1}
    report = verify(server_store)
    assert (report.ok, report.checked, report.chains) == (True, 2, 2)


def test_writers_of_one_chain_take_turns(any_store: SqlStore) -> None:
    """The second writer of a chain waits for the first to commit, then chains after it."""
    first_appended = threading.Event()
    first_may_commit = threading.Event()
    second_appended = threading.Event()
    operator = "kindergarten:1111000001"

    def first() -> None:
        with any_store.unit_of_work() as uow:
            audit_many(uow, [AuditEvent(operator, "register", "record:a")], at=AT)
            first_appended.set()
            assert first_may_commit.wait(WAIT)
            uow.commit()

    def second() -> None:
        assert first_appended.wait(WAIT)
        with any_store.unit_of_work() as uow:
            audit_many(uow, [AuditEvent(operator, "register", "record:b")], at=AT)
            second_appended.set()
            uow.commit()

    def referee() -> None:
        assert first_appended.wait(WAIT)
        # the second writer is blocked on the chain's head while the first holds it
        assert not second_appended.wait(0.5), "the second writer did not wait for the first"
        first_may_commit.set()
        assert second_appended.wait(WAIT)

    assert _run(first, second, referee) == []
    with any_store.unit_of_work() as uow:
        a, b = uow.audit.iter(operator)
        assert (a.subject, a.seq, b.subject, b.seq) == ("record:a", 1, "record:b", 2)
        assert b.prev_hash == a.hash
        assert uow.audit.heads() == {operator: (2, b.hash)}
    assert verify(any_store).ok


@pytest.mark.slow
def test_many_writers_over_three_chains(any_store: SqlStore) -> None:
    """8 threads × 20 units over 3 chains (every 5th unit appends to two): no
    ConflictError; each chain verifies with consecutive seqs and matches its head."""
    chains = ["county:110105", "county:110106", "province:44"]
    threads, rounds = 8, 20

    def writer(t: int) -> None:
        for i in range(rounds):
            ops = [chains[(t + i) % 3]]
            if i % 5 == 4:
                ops.append(chains[(t + i + 1) % 3])
            with any_store.unit_of_work() as uow:
                events = [AuditEvent(op, "approve", f"record:{t}-{i}") for op in ops]
                audit_many(uow, events, at=AT)
                uow.commit()

    errors = _run(*(lambda t=t: writer(t) for t in range(threads)))
    assert errors == []
    total = threads * rounds + threads * (rounds // 5)
    report = verify(any_store)
    assert (report.ok, report.checked, report.chains) == (True, total, 3)
    with any_store.unit_of_work() as uow:
        for chain in chains:
            seqs = [e.seq for e in uow.audit.iter(chain)]
            assert seqs == list(range(1, len(seqs) + 1))
            assert uow.audit.heads()[chain][0] == len(seqs)
