"""Write-behind of the intake on SQL stores: each chunk's writes run on one background
thread while the next chunk is checked.  The outcome must be exactly that of writing in
the caller's thread, and a failure on either thread must leave the store as it was."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from studentstatus.adapters.sql import SqlStore
from studentstatus.adapters.sql.store import SqlUnitOfWork
from studentstatus.errors import StorageError
from studentstatus.services.intake import import_children

from ._registration_world import OPS, FailingStore, counts, row, runtime, seed_kindergartens

WRITER = "studentstatus-intake-writer"


def _rows() -> list[dict[str, str]]:
    # 11 rows in chunks of 3: duplicates inside a chunk, across chunks and without an ID.
    rows = [row(i) for i in range(1, 10)]
    rows[4] = dict(rows[0], name="另一个")  # the document number of row 1, two chunks later
    rows[7] = dict(rows[1])  # row 2 again, in the third chunk
    no_id = {"id_type": "none", "id_number": "", "name": "无证", "birth_date": "2020-10-03",
             "sex": "M"}  # fmt: skip
    rows += [row(20, **no_id), row(21, **no_id)]
    return rows


@pytest.fixture(
    params=[
        "sqlite",
        pytest.param("postgres_url", marks=pytest.mark.postgres),
        pytest.param("mysql_url", marks=pytest.mark.mysql),
    ]
)
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'wb.db'}"
    value: str = request.getfixturevalue(request.param)
    return value


@pytest.fixture
def stores(url: str) -> Iterator[tuple[SqlStore, SqlStore]]:
    made = []
    for behind in (True, False):
        made.append(
            SqlStore(url, prefix=f"wb{uuid.uuid4().hex[:6]}_", create=True, write_behind=behind)
        )
    try:
        yield made[0], made[1]
    finally:
        for s in made:
            s.drop_schema()
            s.close()


def _dump(store: SqlStore) -> dict[str, Any]:
    with store.unit_of_work() as uow:
        return {
            "records": sorted(uow.records.iter(), key=lambda r: r.id),
            "children": sorted(
                uow.children.get_many([r.child_id for r in uow.records.iter()]).values(),
                key=lambda c: c.id,
            ),
            "changes": sorted(uow.changes.iter(), key=lambda e: (e.record_id, e.seq)),
            "problems": sorted(uow.problems.iter(), key=lambda p: p.id),
            "audit": list(uow.audit.iter()),
        }


def _writer_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == WRITER]


def test_write_behind_writes_exactly_what_writing_in_the_caller_thread_writes(
    stores: tuple[SqlStore, SqlStore],
) -> None:
    behind, inline = stores
    assert behind.write_behind
    assert not inline.write_behind
    reports = []
    for store in (behind, inline):
        seed_kindergartens(store)
        rt = runtime(store)
        reports.append(import_children(rt, OPS["kgA"], _rows(), chunk_size=3))
        reports.append(import_children(rt, OPS["kgA"], _rows()[:4], chunk_size=3))  # vs store
    assert reports[0] == reports[2]
    assert reports[1] == reports[3]
    assert reports[0].problems == {"DUPLICATE_ID": 4, "SUSPECTED_DUPLICATE": 2}
    assert _dump(behind) == _dump(inline)
    assert not _writer_threads()


class _SpyUnit(SqlUnitOfWork):
    seen: set[str]

    def __enter__(self) -> _SpyUnit:
        unit = super().__enter__()
        add_many = unit.records.add_many

        def recording(items: Any) -> int:
            self.seen.add(threading.current_thread().name)
            return add_many(items)

        unit.records.add_many = recording  # type: ignore[method-assign]
        return unit


class _SpyStore(SqlStore):
    seen: set[str]

    def unit_of_work(self) -> SqlUnitOfWork:
        unit = _SpyUnit(self)
        unit.seen = self.seen
        return unit


def test_writes_run_on_the_writer_thread(url: str) -> None:
    store = _SpyStore(url, prefix=f"wb{uuid.uuid4().hex[:6]}_", create=True)
    store.seen = set()
    try:
        seed_kindergartens(store)
        import_children(runtime(store), OPS["kgA"], _rows(), chunk_size=3)
    finally:
        store.drop_schema()
        store.close()
    assert store.seen == {WRITER}


def test_a_failed_write_on_the_writer_thread_leaves_the_store_as_before(url: str) -> None:
    store = SqlStore(url, prefix=f"wb{uuid.uuid4().hex[:6]}_", create=True)
    try:
        seed_kindergartens(store)
        rt = runtime(store)
        import_children(rt, OPS["kgA"], [row(100)])
        before = counts(store)
        for fail_at in (1, 2, 4):  # the first chunk, one in the middle, the last one
            failing = runtime(FailingStore(store, fail_at=fail_at), seed=fail_at)  # type: ignore[arg-type]
            with pytest.raises(StorageError, match="injected"):
                import_children(failing, OPS["kgA"], _rows(), chunk_size=3)
            assert counts(store) == before
            assert not _writer_threads()
    finally:
        store.drop_schema()
        store.close()


def test_an_error_in_the_caller_thread_waits_for_the_writes_then_rolls_back(url: str) -> None:
    store = SqlStore(url, prefix=f"wb{uuid.uuid4().hex[:6]}_", create=True)
    try:
        seed_kindergartens(store)
        rt = runtime(store)
        before = counts(store)

        def progress(done: int) -> None:
            if done >= 6:  # two chunks handed to the writer, the second maybe still running
                raise KeyboardInterrupt

        with pytest.raises(KeyboardInterrupt):
            import_children(rt, OPS["kgA"], _rows(), chunk_size=3, progress=progress)
        assert not _writer_threads()
        assert counts(store) == before
        report = import_children(rt, OPS["kgA"], _rows(), chunk_size=3)  # the unit is usable
        assert report.accepted == len(_rows())
    finally:
        store.drop_schema()
        store.close()


def test_write_behind_is_off_where_another_thread_may_not_use_the_connection() -> None:
    memory = SqlStore("sqlite://", create=True)
    assert not memory.write_behind
    with memory.engine.connect() as conn:
        hosted = SqlStore(conn, create=True)
        assert not hosted.write_behind
    memory.close()
