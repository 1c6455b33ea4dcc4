"""Eight processes race on one file-store directory: no lost update, no duplicate number.

Each worker (``multiprocessing``, spawn) loops: read-modify-update of one of two
shared records (optimistic version), then allocate a J-number sequence on ONE
shared (region, birth date) key and claim the number, each in its own unit.
Only :class:`~studentstatus.errors.ConflictError` may end an attempt.

Reproduce: ``.venv/bin/python -m pytest -m slow tests/adapters/test_files_concurrency.py -s``
"""

from __future__ import annotations

import multiprocessing as mp
import time
from collections import Counter
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import attrs
import pytest

from studentstatus.adapters.files import FileStore
from studentstatus.domain.enums import Grade, NumberKind, State
from studentstatus.domain.model import IssuedNumber, StatusRecord
from studentstatus.errors import ConflictError

WORKERS = 8
ATTEMPTS = 40
KEY = ("110105", date(2020, 3, 15))
RECORDS = ("r0", "r1")


def worker(path: str, wid: int, barrier: Any, results: Any) -> None:
    """One racing process; puts its tallies (or the unexpected error) on ``results``."""
    try:
        store = FileStore(path)
        tally: dict[str, Any] = {"wid": wid, "updates": Counter(), "update_conflicts": 0}
        tally.update(numbers=[], number_conflicts=0)
        barrier.wait()
        for n in range(ATTEMPTS):
            rid = RECORDS[(wid + n) % 2]
            try:
                with store.unit_of_work() as uow:
                    rec = uow.records.get(rid)
                    uow.records.update(attrs.evolve(rec, suspended_days=rec.suspended_days + 1))
                    uow.commit()
                tally["updates"][rid] += 1
            except ConflictError:
                tally["update_conflicts"] += 1
            try:
                with store.unit_of_work() as uow:
                    seq = uow.numbers.next_sequence(*KEY)
                    number = f"J1101052020031{seq:04d}X"
                    uow.numbers.claim(
                        IssuedNumber(number, NumberKind.J, f"w{wid}-{n}", datetime.now(UTC))
                    )
                    uow.commit()
                tally["numbers"].append(number)
            except ConflictError:
                tally["number_conflicts"] += 1
        store.close()
        results.put(tally)
    except BaseException as exc:  # report anything else to the parent as a failure
        results.put({"wid": wid, "error": repr(exc)})


@pytest.mark.slow
def test_eight_processes_lose_nothing(tmp_path: Path) -> None:
    """Final version == successful updates; numbers unique and gap-free; losers conflicted."""
    path = str(tmp_path / "store")
    store = FileStore(path)
    with store.unit_of_work() as uow:
        uow.records.add_many(
            StatusRecord(
                r, "c", "1111000001", "110105", State.ACTIVE, Grade.JUNIOR, date(2023, 9, 1)
            )
            for r in RECORDS
        )
        uow.commit()
    store.close()
    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(WORKERS)
    results = ctx.Queue()
    procs = [ctx.Process(target=worker, args=(path, w, barrier, results)) for w in range(WORKERS)]
    started = time.monotonic()
    for p in procs:
        p.start()
    tallies = [results.get(timeout=150) for _ in procs]
    for p in procs:
        p.join(timeout=30)
    elapsed = time.monotonic() - started
    errors = [t for t in tallies if "error" in t]
    assert errors == []
    updates: Counter[str] = sum((t["updates"] for t in tallies), Counter())
    update_conflicts = sum(t["update_conflicts"] for t in tallies)
    numbers = [n for t in tallies for n in t["numbers"]]
    number_conflicts = sum(t["number_conflicts"] for t in tallies)
    assert sum(updates.values()) + update_conflicts == WORKERS * ATTEMPTS
    assert len(numbers) + number_conflicts == WORKERS * ATTEMPTS
    store = FileStore(path)
    with store.unit_of_work() as uow:
        for rid in RECORDS:
            rec = uow.records.get(rid)
            assert rec.version == updates[rid], "lost update"
            assert rec.suspended_days == updates[rid], "lost update"
        assert len(set(numbers)) == len(numbers), "duplicate number"
        assert sorted(int(n[-5:-1]) for n in numbers) == list(range(1, len(numbers) + 1))
        assert all(uow.numbers.resolve(n) is not None for n in numbers)
        assert uow.numbers.next_sequence(*KEY) == len(numbers) + 1
    store.close()
    print(
        f"\nconcurrency: {WORKERS} processes x {ATTEMPTS} attempts, {elapsed:.1f}s; updates: "
        f"{sum(updates.values())} ok / {update_conflicts} ConflictError, 0 lost; "
        f"J numbers: {len(numbers)} issued / {number_conflicts} ConflictError, 0 duplicates"
    )
    assert update_conflicts > 0, "the workers did not actually race"
