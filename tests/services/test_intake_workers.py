"""``import_children(workers=N)``: checker processes give the import of one process.

The differential tests import the same file in one process and with 1–3 checker
processes and compare everything but the random parts (ids and the last four
digits of the L numbers): the report (rows, rejections in order, problems, per-row
outcomes) and what the store holds (children, records, problems with the rows they
relate, changes, numbers, audit entries).
"""

from __future__ import annotations

import multiprocessing
import os
import random
import signal
from collections import Counter
from pathlib import Path
from typing import Any

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from studentstatus.adapters.memory import MemoryStore
from studentstatus.errors import StorageError, ValidationError
from studentstatus.services import _parallel, intake, intake_writes
from studentstatus.services.intake import RegisteredChild, import_children
from studentstatus.tabular import FileRejected
from studentstatus.testing.strategies import children, kindergartens, records

from ._registration_world import (
    KG_B,
    KG_C,
    KG_X,
    OPS,
    FailingStore,
    bad_checksum,
    cn,
    counts,
    csv_bytes,
    make_store,
    real_row,
    row,
    runtime,
    seed_kindergartens,
)


def _mixed_rows() -> list[dict[str, str]]:
    """Every kind of row: good, invalid ID, duplicates (in the file, across chunks), children
    without documents (suspected duplicates), rejected rows, other kindergartens (in scope,
    out of scope, unknown, unlicensed), formula text, the real public vectors."""
    rows = [row(i) for i in range(1, 41)]
    rows[5] = dict(rows[5], id_number=bad_checksum(rows[5]["id_number"]))
    rows[9] = dict(rows[2], name="同号")  # the same number as row 3
    rows[33] = dict(rows[2], name="又同号")  # and again, chunks later
    rows[12] = row(13, id_type="none", id_number="", name="无证", birth_date="2020-10-03")
    rows[27] = dict(rows[12])  # suspected duplicate of row 13
    rows[14] = dict(rows[14], sex="X", grade="博士班")  # rejected, two codes
    rows[15] = dict(rows[15], kindergarten_code=KG_B.school_code)  # same county
    rows[16] = dict(rows[16], kindergarten_code=KG_C.school_code)  # another county
    rows[17] = dict(rows[17], kindergarten_code="1111999999")  # unknown
    rows[18] = dict(rows[18], kindergarten_code=KG_X.school_code)  # unlicensed
    rows[19] = dict(rows[19], name="=cmd|' /C calc'!A0")
    rows[20] = dict(rows[20], entry_date="2025/13/01")
    rows[21] = dict(rows[21], guardian_phone="12345")
    rows.append(real_row("11010520200315002X"))
    rows.append(dict(rows[1], id_number=rows[1]["id_number"][:10]))  # wrong length
    return rows


def _view(store: Any, report: Any) -> dict[str, Any]:
    """The report and the store's contents with ids replaced by row numbers."""
    rows = {
        r.record_id: f"row {r.row:04d}" for r in report.records if isinstance(r, RegisteredChild)
    }

    def row_of(record_id: str) -> str:  # records stored before the file: same ids in both
        return rows.get(record_id, f"before: {record_id}")

    with store.unit_of_work() as uow:
        recs = {r.id: r for r in uow.records.iter()}
        kids = uow.children.get_many([r.child_id for r in recs.values()])
        problems = sorted(
            (p.kind.value, row_of(p.record_id), p.status.value,
             sorted(row_of(i) for i in p.related_record_ids), p.due_date)
            for p in uow.problems.iter()
        )  # fmt: skip
        changes = Counter((c.kind.value, c.to_state.value) for c in uow.changes.iter())
        audit = Counter(e.action for e in uow.audit.iter())
        roster = sorted((e.child_name, e.kindergarten_name) for e in uow.roster.iter())
        numbers = sorted(
            (row_of(n.record_id), n.kind.value, n.number[:15])
            for r in recs.values() for n in uow.numbers.for_record(r.id)
        )  # fmt: skip
    stored = sorted(
        (
            row_of(r.id),
            attrs.evolve(kids[r.child_id], id=""),
            attrs.evolve(r, id="", child_id="", temp_number=(r.temp_number or "")[:15]),
        )
        for r in recs.values()
    )
    outcomes = [
        {**r.to_dict(), "record_id": None, "child_id": None, "roster_id": None,
         "temp_number": (r.to_dict().get("temp_number") or "")[:15]}
        for r in report.records
    ]  # fmt: skip
    return {
        "rows": report.rows,
        "accepted": report.accepted,
        "rostered": report.rostered,
        "rejected": report.rejected,
        "problems": report.problems,
        "outcomes": outcomes,
        "stored": stored,
        "problem_records": problems,
        "changes": changes,
        "audit": audit,
        "roster": roster,
        "numbers": numbers,
    }


def _import(store: Any, path: Path, op: str = "c105", seed: int = 7, **kw: Any) -> Any:
    seed_kindergartens(store)
    rt = runtime(store, seed=seed)
    # something in the store already: duplicates and L numbers against it
    import_children(rt, OPS[op], [row(3, name="早登记"), row(900)])
    return rt, import_children(rt, OPS[op], path, **kw)


@pytest.mark.parametrize("workers", [1, 2, 3])
@pytest.mark.parametrize("chunk", [4, 7, 2000])
def test_workers_import_exactly_what_one_process_imports(
    tmp_path: Path, workers: int, chunk: int
) -> None:
    path = tmp_path / "mixed.csv"
    path.write_bytes(csv_bytes(_mixed_rows(), bom=True))
    s1, s2 = MemoryStore(), MemoryStore()
    _, alone = _import(s1, path, chunk_size=chunk)
    _, split = _import(s2, path, chunk_size=chunk, workers=workers)
    assert alone.accepted > 30
    assert alone.rejected
    assert alone.problems["DUPLICATE_ID"] >= 4
    assert _view(s2, split) == _view(s1, alone)


@pytest.mark.parametrize(("workers", "chunk"), [(1, 2000), (2, 2000), (2, 150)])
def test_workers_write_in_the_same_chunks_as_one_process(
    tmp_path: Path, workers: int, chunk: int
) -> None:
    # 1,500 rows: the workers' chunks double from 100 to 1,000 rows; twins straddle their
    # boundaries (rows 100/101, 300/301, 1,000/1,001) and the write chunks' (150/151).
    rows = [row(i) for i in range(1, 1501)]
    for a, b in ((100, 101), (300, 301), (1000, 1001), (150, 151), (10, 1400)):
        rows[b - 1] = dict(rows[a - 1], name="孪生" + cn(b))
    path = tmp_path / "big.csv"
    path.write_bytes(csv_bytes(rows))
    s1, s2 = MemoryStore(), MemoryStore()
    _, alone = _import(s1, path, chunk_size=chunk)
    _, split = _import(s2, path, chunk_size=chunk, workers=workers)
    assert alone.problems["DUPLICATE_ID"] >= 10
    assert _view(s2, split) == _view(s1, alone)
    with s1.unit_of_work() as u1, s2.unit_of_work() as u2:  # the audit trail, in order
        assert [(e.action, e.after.get("kind")) for e in u1.audit.iter()] == [
            (e.action, e.after.get("kind")) for e in u2.audit.iter()
        ]


@pytest.mark.parametrize("op", ["kgA", "c105"])
def test_workers_with_the_unlicensed_roster_and_a_kindergarten_operator(
    tmp_path: Path, op: str
) -> None:
    path = tmp_path / "roster.csv"
    path.write_bytes(csv_bytes(_mixed_rows()))
    kw: dict[str, Any] = {"unlicensed_roster": op == "c105", "chunk_size": 5}
    s1, s2 = MemoryStore(), MemoryStore()
    _, alone = _import(s1, path, op, **kw)
    _, split = _import(s2, path, op, workers=2, **kw)
    assert alone.rejected
    assert (alone.rostered > 0) == (op == "c105")
    assert _view(s2, split) == _view(s1, alone)


@pytest.mark.parametrize("kind", ["sqlite"])
def test_workers_on_sqlite(kind: str, tmp_path: Path) -> None:
    _on_sql(kind, tmp_path, None)


@pytest.mark.postgres
def test_workers_on_postgres(postgres_url: str, tmp_path: Path) -> None:
    _on_sql("postgres", tmp_path, postgres_url)


@pytest.mark.mysql
def test_workers_on_mysql(mysql_url: str, tmp_path: Path) -> None:
    _on_sql("mysql", tmp_path, mysql_url)


def _on_sql(kind: str, tmp_path: Path, url: str | None) -> None:
    path = tmp_path / "mixed.csv"
    path.write_bytes(csv_bytes(_mixed_rows() * 3))  # 126 rows: past the first chunks
    with make_store(kind, tmp_path, url) as s1, make_store(kind, tmp_path, url) as s2:
        _, alone = _import(s1, path, chunk_size=10)
        _, split = _import(s2, path, chunk_size=10, workers=2)
        assert _view(s2, split) == _view(s1, alone)


BATCH_TAIL = [(1, 0), (150, 0), (150, 200), (1 << 30, 0)]


@pytest.mark.postgres
@pytest.mark.parametrize(("batch", "tail"), BATCH_TAIL)
def test_prepared_rows_on_postgres_give_what_entities_give(
    postgres_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, batch: int, tail: int
) -> None:
    # PostgreSQL: the checker processes send COPY lines.
    _prepared_rows("postgres", postgres_url, tmp_path, monkeypatch, batch, tail)


@pytest.mark.parametrize(("batch", "tail"), BATCH_TAIL)
def test_prepared_rows_on_sqlite_give_what_entities_give(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, batch: int, tail: int
) -> None:
    # SQLite: the checker processes send executemany parameters.
    _prepared_rows("sqlite", "", tmp_path, monkeypatch, batch, tail)


def _prepared_rows(
    kind: str, url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, batch: int, tail: int
) -> None:
    # Prepared rows are gathered over the chunks and written every `batch` rows (1: after
    # every chunk; 1 << 30: once, at the end), and every chunk once fewer than `tail` rows
    # are left; twins of rows in gathered chunks not written yet must still be found, in
    # the file and in the store.
    monkeypatch.setattr(intake, "WRITE_BATCH", batch)
    if kind == "sqlite":  # (its encoder writes every chunk unless told otherwise)
        from studentstatus.adapters.sql.params import ParamEncoder

        monkeypatch.setattr(ParamEncoder, "write_batch", batch)
    monkeypatch.setattr(intake, "WRITE_TAIL", tail)
    rows = [row(i) for i in range(1, 601)]
    for a, b in ((100, 101), (120, 450), (3, 599), (250, 251), (10, 200), (10, 400)):
        rows[b - 1] = dict(rows[a - 1], name="孪生" + cn(b))
    rows += _mixed_rows()
    path = tmp_path / "twins.csv"
    path.write_bytes(csv_bytes(rows))
    with make_store(kind, tmp_path, url) as s1, make_store(kind, tmp_path, url) as s2:
        _, alone = _import(s1, path, chunk_size=40)
        with s2.unit_of_work() as uow:
            assert uow.row_encoder() is not None  # type: ignore[attr-defined]
        _, split = _import(s2, path, chunk_size=40, workers=2)
        assert alone.problems["DUPLICATE_ID"] >= 10
        assert _view(s2, split) == _view(s1, alone)
        with s1.unit_of_work() as u1, s2.unit_of_work() as u2:
            assert [(e.action, e.after.get("kind")) for e in u1.audit.iter()] == [
                (e.action, e.after.get("kind")) for e in u2.audit.iter()
            ]


@pytest.mark.postgres
def test_prepared_rows_are_gathered_then_written_every_chunk_near_the_end(
    postgres_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # No batch limit, and every chunk written once fewer than 250 rows seem left: one large
    # write when the last stretch begins (the rows gathered so far), then one per chunk.
    monkeypatch.setattr(intake, "WRITE_BATCH", 1 << 30)
    monkeypatch.setattr(intake, "WRITE_TAIL", 250)
    sizes: list[int] = []
    send = intake_writes.Writer.send

    def spy(self: intake_writes.Writer) -> None:
        sizes.append(len(self.unsent))
        send(self)

    monkeypatch.setattr(intake_writes.Writer, "send", spy)
    path = tmp_path / "rows.csv"
    path.write_bytes(csv_bytes([row(i) for i in range(1, 1001)]))
    with make_store("postgres", tmp_path, postgres_url) as store:
        seed_kindergartens(store)
        report = import_children(runtime(store), OPS["kgA"], path, chunk_size=50, workers=2)
        assert report.accepted == 1000
        assert counts(store)["records"] == 1000
    written = [n for n in sizes if n]
    assert sum(written) == 1000
    assert 650 <= written[0] <= 800  # gathered until about 250 rows were left
    assert len(written) >= 5
    assert all(n <= 50 for n in written[1:])  # then chunk by chunk


def test_temporary_numbers_of_workers_never_collide(tmp_path: Path) -> None:
    # 600 children of one region and birth date: 10,000 possible L numbers, split between
    # three processes by residue; none may repeat another or one already stored.
    rows = [row(i, id_type="none", id_number="", name="同日" + cn(i), birth_date="2020-10-03")
            for i in range(600)]  # fmt: skip
    path = tmp_path / "sameday.csv"
    path.write_bytes(csv_bytes(rows))
    store = MemoryStore()
    seed_kindergartens(store)
    rt = runtime(store)
    report = import_children(rt, OPS["kgA"], path, chunk_size=50, workers=2)
    # into an empty store: the workers' own draws, 0 and 1 modulo 3 (this process's are 2)
    assert {int(r.temp_number[-4:]) % 3 for r in report.records} == {0, 1}
    # again, against 600 stored numbers: hits are redrawn here
    more = import_children(rt, OPS["kgA"], path, chunk_size=50, workers=2)
    numbers = [r.temp_number for r in report.records + more.records]
    assert len(numbers) == len(set(numbers)) == 1200


def test_a_store_that_fails_mid_import_leaves_it_as_before(tmp_path: Path) -> None:
    path = tmp_path / "rows.csv"
    path.write_bytes(csv_bytes([row(i) for i in range(1, 30)]))
    store = MemoryStore()
    seed_kindergartens(store)
    rt = runtime(store)
    import_children(rt, OPS["kgA"], path, chunk_size=5, workers=2)  # two idle workers now
    idle = {w.proc.pid for w in _parallel._IDLE}
    before = counts(store)
    failing = attrs.evolve(rt, store=FailingStore(store, fail_at=2))
    with pytest.raises(StorageError):
        import_children(failing, OPS["kgA"], path, chunk_size=5, workers=2)
    assert counts(store) == before
    # the failed import's workers were killed, not given back
    taken = idle - {w.proc.pid for w in _parallel._IDLE}
    assert len(taken) == 2
    for pid in taken:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    again = import_children(rt, OPS["kgA"], path, chunk_size=5, workers=2)
    assert again.accepted == 29


def test_a_checker_process_that_dies_fails_the_import_and_writes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "rows.csv"
    path.write_bytes(csv_bytes([row(i) for i in range(1, 5001)]))  # more than pipes buffer
    store = MemoryStore()
    seed_kindergartens(store)
    rt = runtime(store)
    before = counts(store)

    def kill_workers(rows: int) -> None:
        idle = {w.proc.pid for w in _parallel._IDLE}  # other tests' workers: not this one's
        for proc in multiprocessing.active_children():
            if proc.name == "ss-checker" and proc.pid not in idle:
                os.kill(proc.pid, signal.SIGKILL)

    with pytest.raises(RuntimeError, match="checker process"):
        import_children(rt, OPS["kgA"], path, chunk_size=5, workers=1, progress=kill_workers)
    assert counts(store) == before


def test_an_error_in_a_checker_process_is_raised_by_the_import(tmp_path: Path) -> None:
    spec = _parallel.spec_for(
        tmp_path / "gone.csv", OPS["kgA"], runtime(MemoryStore()).policy,
        runtime(MemoryStore()).clock.today(), runtime(MemoryStore()).clock.now(),
        roster=False, kindergartens={}, chunk_size=10, workers=1, rng=random.Random(1),
    )  # fmt: skip
    with pytest.raises(FileNotFoundError) as err:
        list(_parallel.checked_chunks(spec))
    assert any("in checker process 0" in note for note in err.value.__notes__)


def test_progress_and_callbacks_with_workers(tmp_path: Path) -> None:
    path = tmp_path / "rows.csv"
    rows = [row(i) for i in range(1, 26)]
    path.write_bytes(csv_bytes(rows))
    store = MemoryStore()
    seed_kindergartens(store)
    seen: list[int] = []
    docs: list[dict[str, Any]] = []
    report = import_children(runtime(store), OPS["kgA"], path, chunk_size=4, workers=2,
                             progress=seen.append, on_record=docs.append)  # fmt: skip
    assert seen == sorted(seen)
    assert seen[-1] == 25
    assert [d.row for d in docs] == list(range(1, 26)) == [d.row for d in report.records]


def test_other_sources_and_bad_worker_counts(tmp_path: Path) -> None:
    store = MemoryStore()
    seed_kindergartens(store)
    rt = runtime(store)
    # rows (not a path) are checked in this process: the same result as workers=0
    report = import_children(rt, OPS["kgA"], [row(1), row(2)], workers=2)
    assert report.accepted == 2
    with pytest.raises(ValidationError, match="workers") as bad:
        import_children(rt, OPS["kgA"], [row(3)], workers=-1)
    assert (bad.value.code, bad.value.field) == ("workers_invalid", "workers")
    assert isinstance(bad.value, ValueError)
    assert bad.value.message_zh
    with pytest.raises(FileRejected) as missing:  # checked as a file: one refusal, no traceback
        import_children(rt, OPS["kgA"], tmp_path / "missing.csv", workers=1)
    assert missing.value.code == "file_missing"


@settings(max_examples=200, deadline=None)
@given(
    st.integers(1, 6).flatmap(
        lambda parts: st.tuples(
            st.just(parts), st.integers(0, parts - 1), st.integers(1, 20_000), st.integers(0, 2**32)
        )
    )
)
def test_residue_draws_stay_in_range_and_in_their_class(case: tuple[int, int, int, int]) -> None:
    parts, k, n, seed = case
    n = max(n, k + 1)
    r = _parallel.Residue(random.Random(seed), k, parts)
    assert r.getrandbits(64) == random.Random(seed).getrandbits(64)  # ids: the plain draws
    for _ in range(20):
        v = r.randrange(n)
        assert 0 <= v < n
        assert v % parts == k


def test_residue_reaches_the_top_of_its_range() -> None:
    r = _parallel.Residue(random.Random(3), 1, 3)
    assert max(r.randrange(10) for _ in range(500)) == 7
    with pytest.raises(ValueError):
        _parallel.Residue(random.Random(3), 3, 3)


@settings(max_examples=100, deadline=None)
@given(child=children(), record=records(), kg=kindergartens(licensed=None))
def test_entities_cross_the_pipe_unchanged(child: Any, record: Any, kg: Any) -> None:
    back = _parallel.loads(_parallel.dumps([child, record, kg, record.state, kg.type]))
    assert back == [child, record, kg, record.state, kg.type]
    assert back[3] is record.state
