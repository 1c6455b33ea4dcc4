"""Crash safety of the file store: a writer is SIGKILLed at random moments, 100 times.

The child process keeps committing batches: one unit = K records + their
REGISTER events + one J-sequence allocation + one audit entry.  It compacts
every 7 commits, so kills also land inside compactions.  After every kill the
parent opens the directory and checks that it holds whole batches only and
that everything it shows equals a MemoryStore fed the same batches.

Reproduce: ``.venv/bin/python -m pytest -m slow tests/adapters/test_files_crash.py -s``
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from studentstatus.adapters.files import JOURNAL, FileStore
from studentstatus.adapters.memory import MemoryStore
from studentstatus.testing.contract import dump

KILLS = 100
SEED = 20241128

# Shared by the child (run with ``python -c``, so that it starts in ~0.4 s without
# pytest or hypothesis) and the parent (which execs it to rebuild the expected state).
BATCHES = '''
from datetime import UTC, date, datetime, timedelta
from studentstatus.domain.enums import ChangeKind, Grade, State
from studentstatus.domain.model import AuditEntry, StatusChange, StatusRecord

K = 5
KEY = ("110105", date(2020, 3, 15))


def write_batch(uow, i):
    at = datetime(2024, 9, 1, tzinfo=UTC) + timedelta(seconds=i)
    ids = [f"b{i:05d}-{j}" for j in range(K)]
    uow.records.add_many(
        StatusRecord(rid, "c" + rid, "1111000001", "110105", State.PENDING, Grade.JUNIOR,
                     date(2024, 9, 1), temp_number="L" + rid)
        for rid in ids
    )
    uow.changes.append_many(
        StatusChange(rid, 1, ChangeKind.REGISTER, None, State.PENDING, date(2024, 9, 1), at, "kg")
        for rid in ids
    )
    assert uow.numbers.next_sequence(*KEY) == i + 1
    uow.audit.append(AuditEntry(i + 1, at, "kg", "register", f"batch:{i}"))


def committed_batches(store):
    """How many batches the store holds, checking that each one is whole."""
    with store.unit_of_work() as uow:
        ids = [r.id for r in uow.records.iter()]
        assert len(ids) % K == 0, f"{len(ids)} records is not a multiple of {K}"
        n = len(ids) // K
        assert ids == [f"b{i:05d}-{j}" for i in range(n) for j in range(K)]
        assert len(list(uow.changes.iter())) == len(ids)
        assert len(list(uow.audit.iter())) == n
        assert uow.numbers.next_sequence(*KEY) == n + 1  # rolled back
        return n
'''

CHILD = (
    BATCHES
    + """
import sys
from studentstatus.adapters.files import FileStore

store = FileStore(sys.argv[1], compact_every=7)
i = committed_batches(store)
print("ready", flush=True)
while True:
    with store.unit_of_work() as uow:
        write_batch(uow, i)
        uow.commit()
    i += 1
"""
)


@pytest.mark.slow
def test_sigkill_at_random_moments_leaves_whole_batches(tmp_path: Path) -> None:
    """100 SIGKILLs: the store always opens, consistent, with whole batches only."""
    shared: dict[str, Any] = {}
    exec(compile(BATCHES, "<batches>", "exec"), shared)  # our own code, shared with the child
    rng = random.Random(SEED)
    path = tmp_path / "store"
    reference = MemoryStore()
    expected = 0
    mid_compaction = 0
    torn = 0
    counts: list[int] = []
    started = time.monotonic()
    for _ in range(KILLS):
        proc = subprocess.Popen([sys.executable, "-c", CHILD, str(path)], stdout=subprocess.PIPE)
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == b"ready"
        time.sleep(rng.uniform(0, 0.05))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        proc.stdout.close()
        snapshots = [p.name for p in path.iterdir() if p.name.startswith("snapshot-")]
        mid_compaction += len(snapshots) > 1 or any(n.endswith(".tmp") for n in snapshots)
        # A SIGKILL can cut a write of more than a page short (Linux checks for fatal
        # signals between pages): the journal may end in a torn line, which opening the
        # store must cut off.
        torn += (path / JOURNAL).read_bytes()[-1:] not in (b"", b"\n")
        store = FileStore(path, compact_every=10**9)
        assert (path / JOURNAL).read_bytes()[-1:] in (b"", b"\n")
        n = shared["committed_batches"](store)
        assert n >= expected, "a committed batch was lost"
        for i in range(expected, n):
            with reference.unit_of_work() as uow:
                shared["write_batch"](uow, i)
                uow.commit()
        expected = n
        with store.unit_of_work() as a, reference.unit_of_work() as b:
            assert dump(a) == dump(b)
        store._closed = True  # leave the directory exactly as the crash left it
        os.close(store._lock_fd)
        counts.append(n)
    elapsed = time.monotonic() - started
    print(
        f"\ncrash test: {KILLS} SIGKILLs, {counts[-1]} batches x {shared['K']} records "
        f"committed, {mid_compaction} kills left a compaction unfinished, {torn} a torn line, "
        f"0 partial batches, 0 lost batches, {elapsed:.1f}s"
    )
    assert counts[-1] > 0
