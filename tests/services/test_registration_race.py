"""Reliability: one person, one status when registrations and imports race.

Several processes register overlapping rosters at once — some as bulk imports
(small chunks, so that one import holds claims over several statements), some
child by child through the online path — as kindergartens and counties of two
different counties.  Afterwards every identity key held by two or more live
records must have a duplicate problem on *each* of them (``DUPLICATE_ID`` for
a document number, ``SUSPECTED_DUPLICATE`` for name + sex + birth date).  A unit
that lost a race may fail only with :class:`~studentstatus.errors.ConflictError`
(:class:`~studentstatus.errors.TryAgain` for deadlocks), writing nothing; any
other exception fails the test.

PostgreSQL and MariaDB run with their fixtures (in CI always), SQLite on a
file always.  Figures are printed (``pytest -s``) and recorded in
``docs/reliability.md``.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import random
import time
import uuid
from collections import defaultdict
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from tests.services._registration_world import (
    KG_A,
    KG_C,
    KINDERGARTENS,
    cn,
    resident_id,
    row,
    runtime,
)

from studentstatus.adapters.sql import SqlStore
from studentstatus.domain.claims import identity_key
from studentstatus.domain.enums import ProblemKind, ProblemStatus
from studentstatus.domain.jurisdiction import Operator
from studentstatus.errors import ConflictError, RuleViolations, TryAgain
from studentstatus.services.intake import import_children, register_child

pytestmark = pytest.mark.slow

PROCESSES = 4
TASKS = 16  # rosters raced, PROCESSES at a time
POOL = 36  # children with a resident ID shared by the rosters
BARE = 8  # children without a document (identity key: name, sex, birth date)
ROSTER = 22

# (operator, kindergarten): two counties, a kindergarten and a county in each
ACTORS = (
    ("kindergarten:1111000001", KG_A.school_code),
    ("county:110105", KG_A.school_code),
    ("kindergarten:1111000003", KG_C.school_code),
    ("county:110108", KG_C.school_code),
)


def _child(i: int, kg: str) -> dict[str, str]:
    if i < POOL:
        sex = "M" if i % 2 else "F"
        number = resident_id("110105", date(2020, 10, 3), 100 + i, sex)
        return row(100 + i, kindergarten_code=kg, sex=sex, id_number=number)
    return row(500 + i, kindergarten_code=kg, id_type="none", id_number="", name="无证" + cn(i))


def _task(args: tuple[str, str, int]) -> dict[str, Any]:
    """One roster: a bulk import or child-by-child registration, as one actor."""
    url, prefix, seed = args
    rng = random.Random(seed)
    op_text, kg = ACTORS[seed % len(ACTORS)]
    op = Operator.parse(op_text)
    picks = rng.sample(range(POOL + BARE), ROSTER)
    rows = [_child(i, kg) for i in picks]
    store = SqlStore(url, prefix=prefix)
    rt = runtime(store, seed=seed * 7919 + 1)
    out: dict[str, Any] = {"committed": 0, "conflicts": 0, "try_again": 0, "other": []}
    time.sleep(rng.random() * 0.05)
    try:
        if seed % 2 == 0:
            try:
                report = import_children(rt, op, rows, chunk_size=5)
                out["committed"] += report.accepted
            except ConflictError as exc:
                out["conflicts"] += 1
                out["try_again"] += isinstance(exc, TryAgain)
        else:
            for values in rows:
                try:
                    register_child(rt, op, values)
                    out["committed"] += 1
                except ConflictError as exc:
                    out["conflicts"] += 1
                    out["try_again"] += isinstance(exc, TryAgain)
    except RuleViolations as exc:  # pragma: no cover - the rows are valid
        out["other"].append(f"rejected: {[v.code for v in exc.violations]}")
    except Exception as exc:  # pragma: no cover - what the test is looking for
        out["other"].append(f"{type(exc).__name__}: {exc}")
    finally:
        store.close()
    return out


def _unflagged(store: SqlStore) -> tuple[int, int, int]:
    """(live records, keys held by 2+ live records, live records of such keys without
    their duplicate problem)."""
    with store.unit_of_work() as uow:
        live = [r for r in uow.records.iter() if r.state.is_live]
        children = uow.children.get_many([r.child_id for r in live])
        by_key: dict[tuple[str, ...], list[str]] = defaultdict(list)
        for rec in live:
            by_key[identity_key(children[rec.child_id])].append(rec.id)
        shared = {k: ids for k, ids in by_key.items() if len(ids) > 1}
        missing = 0
        for key, ids in shared.items():
            kind = ProblemKind.DUPLICATE_ID if key[0] == "d" else ProblemKind.SUSPECTED_DUPLICATE
            for rid in ids:
                kinds = {
                    p.kind
                    for p in uow.problems.for_record(rid)
                    if p.status is not ProblemStatus.RESOLVED
                }
                missing += kind not in kinds
    return len(live), len(shared), missing


def _race(url: str, prefix: str) -> dict[str, Any]:
    store = SqlStore(url, prefix=prefix, create=True)
    try:
        with store.unit_of_work() as uow:
            uow.kindergartens.add_many(KINDERGARTENS)
            uow.commit()
        started = time.perf_counter()
        ctx = mp.get_context("spawn")
        with ctx.Pool(PROCESSES) as pool:
            results = pool.map(_task, [(url, prefix, s) for s in range(TASKS)], chunksize=1)
        elapsed = time.perf_counter() - started
        live, shared, missing = _unflagged(store)
        return {
            "dialect": store.dialect_name,
            "processes": PROCESSES,
            "rosters": TASKS,
            "rows": TASKS * ROSTER,
            "records_committed": sum(r["committed"] for r in results),
            "live_records": live,
            "keys_held_twice_or_more": shared,
            "unflagged_duplicates": missing,
            "conflict_errors": sum(r["conflicts"] for r in results),
            "try_again": sum(r["try_again"] for r in results),
            "other_errors": [o for r in results for o in r["other"]],
            "seconds": round(elapsed, 2),
        }
    finally:
        store.drop_schema()
        store.close()


def _check(stats: dict[str, Any]) -> None:
    print(json.dumps(stats))
    assert stats["other_errors"] == []
    assert stats["records_committed"] == stats["live_records"]
    assert stats["keys_held_twice_or_more"] > 0  # the rosters did overlap
    assert stats["unflagged_duplicates"] == 0


def test_race_sqlite(tmp_path: Path) -> None:
    """SQLite file: writers serialise (BEGIN IMMEDIATE); every duplicate is flagged."""
    _check(_race(f"sqlite:///{tmp_path}/race.db", ""))


@pytest.mark.postgres
def test_race_postgres(postgres_url: str) -> None:
    """PostgreSQL: racing imports and registrations leave no unflagged duplicate."""
    _check(_race(postgres_url, f"rr{uuid.uuid4().hex[:8]}_"))


@pytest.mark.mysql
def test_race_mariadb(mysql_url: str) -> None:
    """MariaDB: racing imports and registrations leave no unflagged duplicate."""
    _check(_race(mysql_url, f"rr{uuid.uuid4().hex[:8]}_"))
