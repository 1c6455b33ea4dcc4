"""``import_files``: several files, each its own import, with checker processes that run ahead.

The differential tests import the same files one after the other in one process
(``workers=0``: plain :func:`import_children` calls) and as one batch with 1–3 checker
processes, and compare everything but the random parts (see
``test_intake_workers._view``).
"""

from __future__ import annotations

import os
import sys
from collections import Counter
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import attrs
import pytest

from studentstatus.adapters.memory import MemoryStore
from studentstatus.errors import PermissionDenied, StorageError
from studentstatus.services import _parallel, intake, intake_writes
from studentstatus.services.intake import import_children, import_files
from studentstatus.tabular import FileRejected

from ._registration_world import (
    KG_C,
    OPS,
    FailingStore,
    cn,
    counts,
    csv_bytes,
    make_store,
    row,
    runtime,
    seed_kindergartens,
)
from .test_intake_workers import _mixed_rows, _view


def _files(tmp: Path) -> list[tuple[Any, Path]]:
    """Four files: a mixed one (county 110105), county 110108's (numbers of the first file
    again: duplicates across files), and twice 300 children of one kindergarten born the
    same day without documents (their L numbers share 10,000 possible values)."""
    mixed = _mixed_rows()
    other = [dict(row(i), kindergarten_code=KG_C.school_code, name=f"海淀{i}") for i in (3, 7)]
    other += [dict(row(i), kindergarten_code=KG_C.school_code) for i in range(500, 520)]
    sameday = [row(i, id_type="none", id_number="", name="同日" + cn(i), birth_date="2020-10-03")
               for i in range(300)]  # fmt: skip
    again = [dict(r, name=r["name"] + "又") for r in sameday]
    out = []
    for name, op, rows in (
        ("mixed.csv", "c105", mixed),
        ("haidian.csv", "c108", other),
        ("sameday.csv", "kgA", sameday),
        ("again.csv", "kgA", again),
    ):
        path = tmp / name
        path.write_bytes(csv_bytes(rows, bom=name == "mixed.csv"))
        out.append((OPS[op], path))
    return out


def _merged(reports: list[Any]) -> Any:
    """One report of several files, rows numbered 10,000 apart per file."""
    return SimpleNamespace(
        rows=sum(r.rows for r in reports),
        accepted=sum(r.accepted for r in reports),
        rostered=sum(r.rostered for r in reports),
        rejected=[attrs.evolve(x, row=x.row + 10_000 * i)
                  for i, r in enumerate(reports) for x in r.rejected],
        problems=sum((Counter(r.problems) for r in reports), Counter()),
        records=[attrs.evolve(x, row=x.row + 10_000 * i)
                 for i, r in enumerate(reports) for x in r.records],
    )  # fmt: skip


def _temp_numbers(reports: list[Any]) -> list[str]:
    return [x.temp_number for r in reports for x in r.records if getattr(x, "temp_number", None)]


@pytest.mark.parametrize("workers", [1, 2, 3])
@pytest.mark.parametrize("chunk", [7, 2000])
def test_a_batch_imports_exactly_what_one_import_after_another_does(
    tmp_path: Path, workers: int, chunk: int
) -> None:
    files = _files(tmp_path)
    s1, s2 = MemoryStore(), MemoryStore()
    for s in (s1, s2):
        seed_kindergartens(s)
    rt1 = runtime(s1)
    alone = [import_children(rt1, op, p, chunk_size=chunk) for op, p in files]
    batch = import_files(runtime(s2), files, chunk_size=chunk, workers=workers)
    assert [r.accepted for r in batch] == [r.accepted for r in alone]
    assert alone[1].problems["DUPLICATE_ID"] >= 2  # numbers of the first file again
    assert _view(s2, _merged(batch)) == _view(s1, _merged(alone))
    numbers = _temp_numbers(batch)
    assert len(numbers) == len(set(numbers)) > 600


def test_l_numbers_of_a_batch_never_collide_across_files(tmp_path: Path) -> None:
    # Each checker process draws the numbers of its residue; in the second file it must
    # draw against its own draws of the first (300 + 300 draws among 3,333 values each:
    # without that, a repeat is all but certain).
    files = _files(tmp_path)[2:]
    store = MemoryStore()
    seed_kindergartens(store)
    reports = import_files(runtime(store), files, chunk_size=50, workers=2)
    numbers = _temp_numbers(reports)
    assert len(numbers) == len(set(numbers)) == 600
    assert {int(n[-4:]) % 3 for n in numbers} == {0, 1}  # drawn by the two processes
    with store.unit_of_work() as uow:
        stored = [n.number for r in uow.records.iter() for n in uow.numbers.for_record(r.id)]
    assert sorted(stored) == sorted(numbers)


def test_a_batch_gives_its_processes_back_and_they_serve_the_next_import(
    tmp_path: Path,
) -> None:
    files = _files(tmp_path)[2:]
    store = MemoryStore()
    seed_kindergartens(store)
    rt = runtime(store)
    import_files(rt, files, chunk_size=50, workers=2)
    idle = {w.proc.pid for w in _parallel._IDLE}
    assert len(idle) >= 2
    more = import_children(rt, files[0][0], files[0][1], chunk_size=50, workers=2)
    assert more.accepted == 300
    assert {w.proc.pid for w in _parallel._IDLE} == idle  # the same processes again


def test_a_file_that_fails_stops_the_batch_and_rolls_back_only_itself(tmp_path: Path) -> None:
    paths = []
    for name, first in (("one.csv", 1), ("two.csv", 100), ("three.csv", 200)):
        path = tmp_path / name
        path.write_bytes(csv_bytes([row(i) for i in range(first, first + 29)]))
        paths.append((OPS["kgA"], path))
    store = MemoryStore()
    seed_kindergartens(store)
    rt = runtime(store)
    import_children(rt, OPS["kgA"], paths[0][1], chunk_size=5, workers=2)  # idle workers
    idle = {w.proc.pid for w in _parallel._IDLE}
    before = counts(store)
    # records.add_many: six calls a file of 29 rows in chunks of 5; the 8th is the second's
    failing = attrs.evolve(rt, store=FailingStore(store, fail_at=8))
    with pytest.raises(StorageError) as err:
        import_files(failing, paths, chunk_size=5, workers=2)
    assert any("two.csv" in note for note in err.value.__notes__)
    after = counts(store)
    assert after["records"] == before["records"] + 29  # the first file only
    taken = idle - {w.proc.pid for w in _parallel._IDLE}
    assert len(taken) == 2  # the batch's processes were killed (they ran ahead)
    for pid in taken:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def test_a_file_gone_before_its_turn_fails_its_import_only(tmp_path: Path) -> None:
    files = _files(tmp_path)[2:]
    store = MemoryStore()
    seed_kindergartens(store)
    rt = runtime(store)
    reports: list[Any] = []
    real = intake._import

    def spy(rt_: Any, op: Any, source: Any, **kw: Any) -> Any:
        out = real(rt_, op, source, **kw)
        files[1][1].unlink()  # the second file disappears after the first is imported
        reports.append(out)
        return out

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(intake, "_import", spy)
        with pytest.raises(FileRejected) as err:
            import_files(rt, files, chunk_size=50, workers=2)
    assert err.value.code == "file_missing"
    assert any("again.csv" in note for note in err.value.__notes__)
    assert [r.accepted for r in reports] == [300]
    assert counts(store)["records"] == 300


def test_every_operator_is_authorised_before_any_file_is_read(tmp_path: Path) -> None:
    files = _files(tmp_path)[:2]
    store = MemoryStore()
    seed_kindergartens(store)
    before = counts(store)
    with pytest.raises(PermissionDenied):
        import_files(runtime(store), [files[0], (OPS["p11"], files[1][1])], workers=2)
    assert counts(store) == before


def test_without_workers_or_with_one_file_it_is_import_children(tmp_path: Path) -> None:
    files = _files(tmp_path)
    s1, s2, s3 = MemoryStore(), MemoryStore(), MemoryStore()
    for s in (s1, s2, s3):
        seed_kindergartens(s)
    plain = [import_children(runtime(s1), op, p) for op, p in files[:1]]
    assert _view(s2, _merged(import_files(runtime(s2), files[:1], workers=2))) == _view(
        s1, _merged(plain)
    )
    assert import_files(runtime(s3), []) == []


def test_a_batch_left_early_kills_its_processes(tmp_path: Path) -> None:
    files = _files(tmp_path)[2:]
    rt = runtime(MemoryStore())
    today, now = rt.clock.today(), rt.clock.now()
    specs = [
        _parallel.spec_for(
            p,
            op,
            rt.policy,
            today,
            now,
            roster=False,
            kindergartens={},
            chunk_size=50,
            workers=2,
            rng=rt.rng,
        )
        for op, p in files
    ]
    with _parallel.Batch(specs) as batch:
        assert sum(rows for rows, _, _ in batch.chunks(0)) == 300
        pids = [w.proc.pid for w in batch.workers]
        with pytest.raises(RuntimeError, match="out of turn"):
            next(batch.chunks(0))
    for pid in pids:  # the second file was never read: killed, not given back
        assert pid not in {w.proc.pid for w in _parallel._IDLE}
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    with pytest.raises(ValueError, match="same number of workers"):
        _parallel.Batch([specs[0], attrs.evolve(specs[1], workers=3)])


@pytest.mark.skipif(not hasattr(os, "getpriority"), reason="no process priorities here")
def test_checker_processes_run_at_a_lower_priority(tmp_path: Path) -> None:
    files = _files(tmp_path)[2:3]
    store = MemoryStore()
    seed_kindergartens(store)
    import_children(runtime(store), files[0][0], files[0][1], workers=1)
    mine = os.getpriority(os.PRIO_PROCESS, 0)
    nice = {os.getpriority(os.PRIO_PROCESS, w.proc.pid) for w in _parallel._IDLE}
    assert nice == {min(mine + _parallel.NICE, 19)}


def _on_sql(kind: str, tmp_path: Path, url: str | None) -> None:
    files = _files(tmp_path)
    with make_store(kind, tmp_path, url) as s1, make_store(kind, tmp_path, url) as s2:
        for s in (s1, s2):
            seed_kindergartens(s)
        rt1 = runtime(s1)
        alone = [import_children(rt1, op, p, chunk_size=20) for op, p in files]
        batch = import_files(runtime(s2), files, chunk_size=20, workers=2)
        assert _view(s2, _merged(batch)) == _view(s1, _merged(alone))


def test_a_batch_on_sqlite(tmp_path: Path) -> None:
    _on_sql("sqlite", tmp_path, None)


@pytest.mark.postgres
def test_a_batch_on_postgres_writes_what_one_import_after_another_does(
    postgres_url: str, tmp_path: Path
) -> None:
    _on_sql("postgres", tmp_path, postgres_url)  # prepared COPY rows from the checkers


@pytest.mark.mysql
def test_a_batch_on_mysql(mysql_url: str, tmp_path: Path) -> None:
    _on_sql("mysql", tmp_path, mysql_url)


@pytest.mark.postgres
def test_in_a_batch_only_the_last_file_is_written_chunk_by_chunk_near_its_end(
    postgres_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Batches of 400 rows and every chunk written once fewer than 250 rows seem left — but
    # only in the last file: the first two files' ends overlap the next file's checking.
    monkeypatch.setattr(intake, "WRITE_BATCH", 400)
    monkeypatch.setattr(intake, "WRITE_TAIL", 250)
    sizes: list[tuple[intake_writes.Writer, int]] = []  # (the file's import, rows written)
    send = intake_writes.Writer.send

    def spy(self: intake_writes.Writer) -> None:
        sizes.append((self, len(self.unsent)))
        send(self)

    monkeypatch.setattr(intake_writes.Writer, "send", spy)
    files = []
    for k in range(3):
        path = tmp_path / f"f{k}.csv"
        path.write_bytes(csv_bytes([row(i) for i in range(1000 * k + 1, 1000 * k + 1001)]))
        files.append((OPS["kgA"], path))
    with make_store("postgres", tmp_path, postgres_url) as store:
        seed_kindergartens(store)
        reports = import_files(runtime(store), files, chunk_size=50, workers=2)
        assert [r.accepted for r in reports] == [1000, 1000, 1000]
        assert counts(store)["records"] == 3000
    runs: dict[int, list[int]] = {}
    for run, n in sizes:
        if n:
            runs.setdefault(id(run), []).append(n)
    first, second, last = runs.values()
    for written in (first, second):  # 400, 400, then the last 200 at the end
        assert written == [400, 400, 200]
    assert sum(last) == 1000
    assert last[0] == 400
    assert len(last) >= 5  # then chunk by chunk near the end
    assert all(n <= 50 for n in last[2:])


if sys.platform == "win32":  # pragma: no cover
    pytestmark = pytest.mark.skip(reason="checker processes are tested on POSIX")
