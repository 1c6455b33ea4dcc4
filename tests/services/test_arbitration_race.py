"""Reliability: two county operators arbitrate one duplicate group at the same moment.

Three registrations of one child give a duplicate group; two threads arbitrate it at once,
each keeping another record (both units have read everything before either writes: the
test holds them at a barrier where the rules are checked).  Afterwards exactly one record
of the group is live, no problem of the group is open, and the unit that lost failed with
:class:`~studentstatus.errors.ConflictError` (``TryAgain`` for a deadlock) or, when it ran
after the winner, with ``problem_closed`` — never with a second "success" that would leave
no live record (both cancelling each other's winner) or two.

Runs on SQLite (a file), PostgreSQL and MariaDB (with their fixtures).
"""

from __future__ import annotations

import contextlib
import threading
from pathlib import Path
from typing import Any
from unittest import mock

import pytest

from studentstatus.domain.enums import ProblemStatus
from studentstatus.errors import ConflictError, RuleViolations
from studentstatus.ports import Store
from studentstatus.services import problems as problem_service
from studentstatus.services.intake import import_children
from studentstatus.services.problems import list_problems, resolve_problem
from studentstatus.services.runtime import Runtime

from ._registration_world import OPS, make_store, row, runtime, seed_kindergartens

ROUNDS = 3


def _one_round(rt: Runtime, ids: list[str], mine: dict[str, str]) -> dict[int, str]:
    """Two threads arbitrate the group of ``ids``, keeping ``ids[0]`` and ``ids[1]``."""
    county = OPS["c105"]
    barrier = threading.Barrier(2, timeout=2)
    real = problem_service.arbitrate
    results: dict[int, str] = {}

    def held(*args: Any, **kwargs: Any) -> Any:
        out = real(*args, **kwargs)
        # both have read the group and passed the rules; a store that runs one writing
        # unit at a time (SQLite) breaks the barrier: the other unit waits for this one
        with contextlib.suppress(threading.BrokenBarrierError):
            barrier.wait()
        return out

    def arbitrate(i: int, winner: str) -> None:
        try:
            resolve_problem(
                rt, county, mine[winner], "arbitrate", reason="仲裁", winner_record_id=winner
            )
            results[i] = "won"
        except ConflictError as exc:
            results[i] = type(exc).__name__
        except RuleViolations as exc:
            results[i] = exc.violations[0].code

    with mock.patch.object(problem_service, "arbitrate", held):
        threads = [threading.Thread(target=arbitrate, args=(i, ids[i])) for i in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
    return results


def _race(store: Store) -> list[str]:
    seed_kindergartens(store)
    rt = runtime(store)
    county = OPS["c105"]
    outcomes: list[str] = []
    for k in range(ROUNDS):
        child = row(10 + k)
        ids = [import_children(rt, OPS["kgA"], [child]).records[0].record_id for _ in range(3)]
        mine = {p.record_id: p.id for p in list_problems(rt, county) if p.record_id in ids}
        results = _one_round(rt, ids, mine)
        assert sorted(results.values()).count("won") == 1, results
        loser = next(v for v in results.values() if v != "won")
        assert loser in {"ConflictError", "TryAgain", "problem_closed", "winner_not_live"}
        with store.unit_of_work() as uow:
            live = [r for r in ids if uow.records.get(r).state.is_live]
            still_open = [
                p.id
                for r in ids
                for p in uow.problems.for_record(r)
                if p.status is not ProblemStatus.RESOLVED
            ]
        assert len(live) == 1, live
        assert still_open == []
        outcomes.append(loser)
    print(f"arbitration race: losers {outcomes}")
    return outcomes


def test_race_sqlite(tmp_path: Path) -> None:
    with make_store("sqlite", tmp_path) as store:
        _race(store)


@pytest.mark.postgres
def test_race_postgres(postgres_url: str, tmp_path: Path) -> None:
    with make_store("postgres", tmp_path, postgres_url) as store:
        _race(store)


@pytest.mark.mysql
def test_race_mariadb(mysql_url: str, tmp_path: Path) -> None:
    with make_store("mysql", tmp_path, mysql_url) as store:
        _race(store)
