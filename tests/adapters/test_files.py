"""The file store runs the whole conformance kit (with persistence), plus journal checks."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from datetime import date
from pathlib import Path

import pytest

from studentstatus.adapters.files import JOURNAL, FileStore
from studentstatus.domain.enums import Grade, State
from studentstatus.domain.model import StatusRecord
from studentstatus.errors import ConflictError, StorageError
from studentstatus.ports import Store
from studentstatus.store import open_store
from studentstatus.testing.contract import StoreContract


class TestFileStore(StoreContract):
    """FileStore against the kit: a fresh temp directory per store."""

    supports_persistence = True

    def make_store(self) -> Store:
        """A file store in a new temporary directory."""
        return FileStore(tempfile.mkdtemp(prefix="ss-files-"))

    def close_store(self, store: Store) -> None:
        """Close and delete the directory."""
        assert isinstance(store, FileStore)
        store.close()
        shutil.rmtree(store.path, ignore_errors=True)

    def reopen_store(self, store: Store) -> Store:
        """Close and open the same directory."""
        assert isinstance(store, FileStore)
        store.close()
        return FileStore(store.path)


class TestFileStoreCompactingOften(TestFileStore):
    """The same kit with a compaction after every second commit."""

    property_examples = 8
    differential_examples = 6

    def make_store(self) -> Store:
        """A file store that compacts every 2 commits."""
        return FileStore(tempfile.mkdtemp(prefix="ss-files-"), compact_every=2)

    def reopen_store(self, store: Store) -> Store:
        """Close and open the same directory."""
        assert isinstance(store, FileStore)
        store.close()
        return FileStore(store.path, compact_every=2)


def _rec(rid: str, **kw: object) -> StatusRecord:
    return StatusRecord(
        rid, "c", "1111000001", "110105", State.PENDING, Grade.JUNIOR, date(2023, 9, 1), **kw
    )  # type: ignore[arg-type]


def _add(store: FileStore, *rids: str) -> None:
    with store.unit_of_work() as uow:
        uow.records.add_many(_rec(r) for r in rids)
        uow.commit()


def _ids(store: FileStore) -> list[str]:
    with store.unit_of_work() as uow:
        return [r.id for r in uow.records.iter()]


def test_journal_is_one_line_per_commit_and_readable(tmp_path: Path) -> None:
    """Each commit appends ONE checksummed JSON line; Chinese stays readable."""
    store = FileStore(tmp_path)
    _add(store, "r1", "r2")
    with store.unit_of_work() as uow:
        uow.records.update(
            StatusRecord(
                "r1", "王小明", "1111000001", "110105", State.ACTIVE, None, date(2023, 9, 1)
            )
        )
        uow.commit()
    lines = (tmp_path / JOURNAL).read_text(encoding="utf-8").splitlines()
    assert [json.loads(x)["seq"] for x in lines] == [1, 2]
    assert "王小明" in lines[1]
    assert all(len(json.loads(x)["sha256"]) == 64 for x in lines)
    store.close()
    assert (tmp_path / JOURNAL).read_bytes() == b""
    snapshot = (tmp_path / "CURRENT").read_text().strip()
    records = (tmp_path / snapshot / "records.jsonl").read_text(encoding="utf-8").splitlines()
    assert [json.loads(x)["id"] for x in records] == ["r1", "r2"]


@pytest.mark.parametrize(
    "tail",
    [b'{"seq": 3, "ops": [', b"garbage\n", b'{"seq":3,"ops":[],"sha256":"00"}\n'],
    ids=["torn", "junk-line", "bad-checksum"],
)
def test_torn_or_corrupt_tail_is_truncated(tmp_path: Path, tail: bytes) -> None:
    """A half-written or corrupt last line is discarded on open; earlier commits stay."""
    store = FileStore(tmp_path, compact_every=10_000)
    _add(store, "r1")
    _add(store, "r2")
    journal = tmp_path / JOURNAL
    good = journal.read_bytes()
    store._closed = True  # simulate a crash: no compaction at close
    os.close(store._lock_fd)
    with open(journal, "ab") as f:
        f.write(tail)
    again = FileStore(tmp_path, compact_every=10_000)
    assert _ids(again) == ["r1", "r2"]
    assert journal.read_bytes() == good
    _add(again, "r3")
    again.close()
    assert _ids(FileStore(tmp_path)) == ["r1", "r2", "r3"]


def test_corruption_before_the_last_line_is_an_error(tmp_path: Path) -> None:
    """Damage in the middle is not silently dropped: opening raises StorageError."""
    store = FileStore(tmp_path, compact_every=10_000)
    for r in ("r1", "r2", "r3"):
        _add(store, r)
    store._closed = True
    os.close(store._lock_fd)
    journal = tmp_path / JOURNAL
    lines = journal.read_bytes().splitlines(keepends=True)
    lines[1] = lines[1].replace(b'"r2"', b'"rX"')
    journal.write_bytes(b"".join(lines))
    with pytest.raises(StorageError, match="corrupt"):
        FileStore(tmp_path)


def test_two_stores_on_one_directory_share_commits_and_conflict(tmp_path: Path) -> None:
    """Two handles (as two processes would) see each other's commits; stale writes conflict."""
    a = FileStore(tmp_path)
    b = FileStore(tmp_path)
    _add(a, "r1")
    assert _ids(b) == ["r1"]
    ua = a.unit_of_work()
    ub = b.unit_of_work()
    ua.records.update(ua.records.get("r1"))
    ub.records.update(ub.records.get("r1"))
    ua.commit()
    with pytest.raises(ConflictError):
        ub.commit()
    with b.unit_of_work() as uow:
        assert uow.records.get("r1").version == 1
        assert uow.numbers.next_sequence("110105", date(2020, 1, 1)) == 1
        uow.commit()
    with a.unit_of_work() as uow:
        assert uow.numbers.next_sequence("110105", date(2020, 1, 1)) == 2
    a.compact()
    _add(b, "r2")  # b notices the new snapshot and the replaced journal
    assert _ids(a) == ["r1", "r2"]
    a.close()
    b.close()


def test_crash_during_compaction_keeps_old_snapshot(tmp_path: Path) -> None:
    """A leftover half-written snapshot directory is ignored; CURRENT decides."""
    store = FileStore(tmp_path)
    _add(store, "r1")
    store.compact()
    _add(store, "r2")
    store._closed = True
    os.close(store._lock_fd)
    (tmp_path / "snapshot-000000002.tmp").mkdir()
    (tmp_path / "snapshot-000000002.tmp" / "records.jsonl").write_text("{broken")
    again = FileStore(tmp_path)
    assert _ids(again) == ["r1", "r2"]
    again.close()
    assert _ids(FileStore(tmp_path)) == ["r1", "r2"]


def test_os_errors_become_storage_errors(tmp_path: Path) -> None:
    """A path that cannot be a directory gives StorageError, not OSError."""
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(StorageError):
        FileStore(blocker / "store")
    store = FileStore(tmp_path / "ok")
    store.close()
    with pytest.raises(StorageError):
        store.unit_of_work()


def test_open_store_urls(tmp_path: Path) -> None:
    """file:// URLs and plain paths open a FileStore; memory:// a MemoryStore."""
    for url in (f"file://{tmp_path}/a", str(tmp_path / "b")):
        store = open_store(url)
        assert isinstance(store, FileStore)
        store.close()
    assert (tmp_path / "a" / JOURNAL).exists()
    assert type(open_store("memory://")).__name__ == "MemoryStore"
    with pytest.raises(StorageError):
        open_store("redis://localhost")
