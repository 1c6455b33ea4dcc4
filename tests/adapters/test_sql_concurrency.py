"""Reliability: 8 processes race on the same records and the same J-number key.

Each process repeatedly (a) reads one of a few shared records and writes it
back with a counter + 1 (optimistic, versioned), and (b) allocates the next
J sequence for one shared (region, birth date) and claims the resulting number.
Afterwards:

* no lost update: every record's counter and version equal the number of
  updates that the processes saw commit;
* no duplicate number: the committed sequences are exactly 1..n, and every
  claimed number is held once;
* every loser got :class:`~studentstatus.errors.ConflictError` — any other
  exception fails the test.

SQLite always runs (a WAL file, ``BEGIN IMMEDIATE``); PostgreSQL and MariaDB
with their fixtures.  Figures are printed (``pytest -s``) and recorded in
``docs/reliability.md``.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import random
import time
import uuid
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import attrs
import pytest

from studentstatus.adapters.sql import SqlStore
from studentstatus.domain.enums import Grade, NumberKind, State
from studentstatus.domain.model import IssuedNumber, StatusRecord
from studentstatus.errors import ConflictError

PROCESSES = 8
ROUNDS = 30
RECORDS = ("r0", "r1", "r2")
REGION, BIRTH = "110105", date(2020, 3, 15)

pytestmark = pytest.mark.slow


def _rec(rid: str) -> StatusRecord:
    return StatusRecord(rid, "c1", "1111000001", REGION, State.ACTIVE, Grade.JUNIOR,
                        date(2023, 9, 1))  # fmt: skip


def _worker(args: tuple[str, str, int]) -> dict[str, Any]:
    """One racing process: returns what it saw commit and how its losers failed."""
    url, prefix, seed = args
    rng = random.Random(seed)
    store = SqlStore(url, prefix=prefix)
    wins: dict[str, int] = dict.fromkeys(RECORDS, 0)
    seqs: list[int] = []
    conflicts = 0
    other: list[str] = []
    for _ in range(ROUNDS):
        rid = rng.choice(RECORDS)
        try:
            with store.unit_of_work() as uow:
                rec = uow.records.get(rid)
                time.sleep(rng.random() * 0.002)  # widen the read-modify-write window
                uow.records.update(attrs.evolve(rec, suspended_days=rec.suspended_days + 1))
                uow.commit()
            wins[rid] += 1
        except ConflictError:
            conflicts += 1
        except Exception as exc:
            other.append(f"{type(exc).__name__}: {exc}")
        try:
            with store.unit_of_work() as uow:
                n = uow.numbers.next_sequence(REGION, BIRTH)
                number = f"J{REGION}{BIRTH:%Y%m%d}{n:03d}"
                uow.numbers.claim(IssuedNumber(number, NumberKind.J, f"p{seed}",
                                               datetime.now(UTC)))  # fmt: skip
                uow.commit()
            seqs.append(n)
        except ConflictError:
            conflicts += 1
        except Exception as exc:
            other.append(f"{type(exc).__name__}: {exc}")
    store.close()
    return {"wins": wins, "seqs": seqs, "conflicts": conflicts, "other": other}


def _race(url: str, prefix: str) -> dict[str, Any]:
    store = SqlStore(url, prefix=prefix, create=True)
    try:
        with store.unit_of_work() as uow:
            uow.records.add_many(_rec(r) for r in RECORDS)
            uow.commit()
        store.close()
        started = time.perf_counter()
        ctx = mp.get_context("spawn")
        with ctx.Pool(PROCESSES) as pool:
            results = pool.map(_worker, [(url, prefix, i) for i in range(PROCESSES)])
        elapsed = time.perf_counter() - started
        wins = {r: sum(res["wins"][r] for res in results) for r in RECORDS}
        seqs = sorted(s for res in results for s in res["seqs"])
        other = [o for res in results for o in res["other"]]
        with store.unit_of_work() as uow:
            stored = uow.records.get_many(list(RECORDS))
            claimed = [n for res in results for n in res["seqs"]]
            held = [uow.numbers.resolve(f"J{REGION}{BIRTH:%Y%m%d}{n:03d}") for n in claimed]
        lost = sum(wins[r] - stored[r].suspended_days for r in RECORDS)
        return {
            "dialect": store.dialect_name,
            "processes": PROCESSES,
            "update_attempts": PROCESSES * ROUNDS,
            "updates_committed": sum(wins.values()),
            "lost_updates": lost,
            "versions_match": all(stored[r].version == wins[r] for r in RECORDS),
            "allocations_committed": len(seqs),
            "duplicate_numbers": len(seqs) - len(set(seqs)),
            "sequences_contiguous": seqs == list(range(1, len(seqs) + 1)),
            "numbers_held": sum(1 for h in held if h is not None),
            "conflict_errors": sum(res["conflicts"] for res in results),
            "other_errors": other,
            "seconds": round(elapsed, 2),
        }
    finally:
        store.drop_schema()
        store.close()


def _check(stats: dict[str, Any]) -> None:
    print(json.dumps(stats))
    assert stats["other_errors"] == []
    assert stats["lost_updates"] == 0
    assert stats["versions_match"]
    assert stats["duplicate_numbers"] == 0
    assert stats["sequences_contiguous"]
    assert stats["numbers_held"] == stats["allocations_committed"]
    # every attempt either committed or got a ConflictError
    attempts = 2 * PROCESSES * ROUNDS
    assert (
        stats["updates_committed"] + stats["allocations_committed"] + stats["conflict_errors"]
        == attempts
    )
    assert stats["conflict_errors"] > 0 or stats["dialect"] == "sqlite"


def test_race_sqlite(tmp_path: Path) -> None:
    """SQLite file (WAL, BEGIN IMMEDIATE): racing writers serialise, losers conflict."""
    _check(_race(f"sqlite:///{tmp_path}/race.db", ""))


@pytest.mark.postgres
def test_race_postgres(postgres_url: str) -> None:
    """PostgreSQL: 8 processes, 0 lost updates, 0 duplicate J numbers."""
    _check(_race(postgres_url, f"c{uuid.uuid4().hex[:8]}_"))


@pytest.mark.mysql
def test_race_mariadb(mysql_url: str) -> None:
    """MariaDB: 8 processes, 0 lost updates, 0 duplicate J numbers."""
    _check(_race(mysql_url, f"c{uuid.uuid4().hex[:8]}_"))
