"""File store: a directory of JSON Lines that people can read, with a write-ahead journal.

Layout of the directory::

    lock                      flock(2) target: shared for readers, exclusive for writers
    journal.jsonl             one line per commit: {"seq": n, "ops": [...], "sha256": "..."}
    CURRENT                   name of the live snapshot directory (replaced atomically)
    snapshot-000000042/       one <table>.jsonl per entity kind + meta.json {"seq": 42}

Every entity is written through :mod:`studentstatus.serialization`.  A commit takes
the exclusive lock, reads the journal lines other processes appended since it
last looked, replays its own operations against that fresh state (stale
versions, taken numbers and moved J-number sequences raise
:class:`~studentstatus.errors.ConflictError` and nothing is written), appends
ONE line and fsyncs it.  Opening the store replays the journal on top of the
snapshot and truncates a torn or corrupt last line (the commit that was being
written when a process died: it never happened).  Compaction writes a new
snapshot directory (temp names, fsync, atomic rename, directory fsync), switches
``CURRENT`` atomically and then empties the journal; a crash at any point leaves
either the old or the new snapshot in force.  Every :class:`OSError` becomes a
:class:`~studentstatus.errors.StorageError`.

Each commit copies the tables it touches (copy-on-write), so the file store
suits small and medium deployments, tests and demos; use the SQL adapter for
a province.  Its units of work are the in-memory store's, and so is its record
search (:class:`~studentstatus.ports.RecordSearch`): a number through the number
index, any other search by reading the loaded records in id order.

>>> import tempfile
>>> from datetime import date
>>> with tempfile.TemporaryDirectory() as tmp:
...     store = FileStore(tmp)
...     with store.unit_of_work() as uow:
...         uow.numbers.next_sequence("110105", date(2020, 1, 1))
...         uow.commit()
...     store.close()
...     again = FileStore(tmp)
...     with again.unit_of_work() as uow:
...         uow.numbers.next_sequence("110105", date(2020, 1, 1))
...     again.close()
1
2
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import date
from pathlib import Path
from typing import Any

from studentstatus.adapters.memory import (
    TABLES,
    MemoryUnitOfWork,
    Op,
    State_,
    Working,
    apply_op,
)
from studentstatus.domain.audit import AuditKey
from studentstatus.domain.claims import claim_key, identity_key
from studentstatus.domain.model import (
    AttendanceEntry,
    AuditEntry,
    ChangeRequest,
    Child,
    IssuedNumber,
    Kindergarten,
    ProblemRecord,
    RosterEntry,
    StatusChange,
    StatusRecord,
)
from studentstatus.domain.monitoring import DropoutCase
from studentstatus.errors import ConflictError, StorageError, StudentStatusError
from studentstatus.serialization import from_dict, to_dict

__all__ = ["FileStore"]

JOURNAL = "journal.jsonl"
CURRENT = "CURRENT"
LOCK = "lock"

#: table → (entity class, key of an entity in the table)
_ENTITY_TABLES: dict[str, tuple[type[Any], Callable[[Any], Any]]] = {
    "kindergartens": (Kindergarten, lambda e: e.school_code),
    "children": (Child, lambda e: e.id),
    "records": (StatusRecord, lambda e: e.id),
    "changes": (StatusChange, lambda e: (e.record_id, e.seq)),
    "requests": (ChangeRequest, lambda e: e.id),
    "problems": (ProblemRecord, lambda e: e.id),
    "numbers": (IssuedNumber, lambda e: e.number),
    "roster": (RosterEntry, lambda e: e.id),
    "attendance": (AttendanceEntry, lambda e: (e.record_id, e.day)),
    "audit": (AuditEntry, lambda e: (e.chain, e.seq)),
    "cases": (DropoutCase, lambda e: e.id),  # dropout cases (monitoring)
}


def claims_of(records: Iterable[StatusRecord], children: Mapping[str, Child]) -> dict[str, int]:
    """The identity claims of stored records: one claim per record of a known child.

    >>> from studentstatus.domain.enums import Sex, State
    >>> kid = Child("c1", "李小红", Sex.F, date(2021, 5, 1), None)
    >>> rec = StatusRecord("r1", "c1", "1111000001", "110105", State.ACTIVE, None,
    ...                    date(2024, 9, 1))
    >>> list(claims_of([rec, rec], {"c1": kid}).values())
    [2]
    """
    out: dict[str, int] = {}
    for rec in records:
        child = children.get(rec.child_id)
        if child is not None:
            key = claim_key(identity_key(child))
            out[key] = out.get(key, 0) + 1
    return out


def _canonical(obj: Any) -> bytes:
    return json.dumps(obj, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode()


def encode_op(op: Op) -> dict[str, Any]:
    """Plain-data form of an operation, as stored in the journal.

    >>> encode_op(Op("sequences.set", (("110105", date(2020, 1, 1), 3),)))
    {'op': 'sequences.set', 'items': [['110105', '2020-01-01', 3]]}
    """
    if op.name == "sequences.set":
        items: list[Any] = [[r, b.isoformat(), v] for r, b, v in op.items]
    elif op.name == "claims.add":  # (claim key, claims before, claims added)
        items = [list(t) for t in op.items]
    else:
        items = [to_dict(e) for e in op.items]
    return {"op": op.name, "items": items}


def decode_op(data: dict[str, Any]) -> Op:
    """Inverse of :func:`encode_op`.

    >>> op = Op("sequences.set", (("110105", date(2020, 1, 1), 3),))
    >>> decode_op(encode_op(op)) == op
    True
    """
    name = str(data["op"])
    if name == "sequences.set":
        return Op(name, tuple((r, date.fromisoformat(b), int(v)) for r, b, v in data["items"]))
    if name == "claims.add":
        return Op(name, tuple((str(k), int(b), int(n)) for k, b, n in data["items"]))
    cls = _ENTITY_TABLES[name.split(".", 1)[0]][0]
    return Op(name, tuple(from_dict(cls, item) for item in data["items"]))


def encode_entry(seq: int, ops: Sequence[Op]) -> bytes:
    """One journal line (with its trailing newline) for a commit.

    >>> line = encode_entry(1, [])
    >>> line.endswith(b"\\n"), json.loads(line)["seq"]
    (True, 1)
    """
    body = {"seq": seq, "ops": [encode_op(op) for op in ops]}
    digest = hashlib.sha256(_canonical(body)).hexdigest()
    return _canonical({**body, "sha256": digest}) + b"\n"


def _decode_entry(line: bytes) -> tuple[int, list[Op]] | None:
    """Decode a journal line; ``None`` if it is corrupt (bad JSON or checksum)."""
    try:
        obj = json.loads(line)
        body = {"seq": obj["seq"], "ops": obj["ops"]}
        if hashlib.sha256(_canonical(body)).hexdigest() != obj["sha256"]:
            return None
        return int(obj["seq"]), [decode_op(op) for op in obj["ops"]]
    except (ValueError, KeyError, TypeError):
        return None


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_durably(path: Path, chunks: Iterator[bytes]) -> None:
    """Write a file through a temp name, fsync it, rename it over ``path``."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        for chunk in chunks:
            f.write(chunk)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


@contextlib.contextmanager
def _storage_errors(what: str) -> Iterator[None]:
    try:
        yield
    except StudentStatusError:
        raise
    except OSError as exc:
        msg = f"file store: {what} failed: {exc.strerror or exc} / 文件存储{what}失败"
        raise StorageError(msg) from exc


class FileStore:
    """A directory store shared safely by threads and processes; see the module docstring.

    ``compact_every``: compact after this many journal lines (and always at close).
    ``audit_key``: the host's key, under which audit entries are sealed (never written
    to the directory; see :mod:`studentstatus.services.audit`).

    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     store = FileStore(tmp)
    ...     with store.unit_of_work() as uow:
    ...         uow.audit.last() is None
    ...     store.close()
    True
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        compact_every: int = 1000,
        audit_key: AuditKey | bytes | str | None = None,
    ) -> None:
        self.audit_key = AuditKey.of(audit_key)
        self.path = Path(path)
        self.compact_every = compact_every
        self._mutex = threading.RLock()
        self._state = State_()
        self._seq = 0
        self._snap_seq = 0
        self._snapshot_name: str | None = None
        self._journal_id: tuple[int, int] | None = None
        self._offset = 0
        self._closed = False
        with _storage_errors("open"):
            self.path.mkdir(parents=True, exist_ok=True)
            self._lock_fd = os.open(self.path / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
            with self._flock(exclusive=True):
                journal = self.path / JOURNAL
                if not journal.exists():
                    journal.touch()
                    _fsync_dir(self.path)
                self._refresh(truncate=True)

    # -- locking and reading --------------------------------------------------------------

    @contextlib.contextmanager
    def _flock(self, *, exclusive: bool) -> Iterator[None]:
        with self._mutex:
            if self._closed:
                msg = "file store is closed / 文件存储已关闭"
                raise StorageError(msg)
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
            try:
                yield
            finally:
                fcntl.flock(self._lock_fd, fcntl.LOCK_UN)

    def _load_snapshot(self) -> None:
        current = self.path / CURRENT
        name = current.read_text().strip() if current.exists() else None
        tables: dict[str, dict[Any, Any]] = {t: {} for t in TABLES}
        seq = 0
        if name:
            snap = self.path / name
            seq = int(json.loads((snap / "meta.json").read_text())["seq"])
            for table, (cls, key) in _ENTITY_TABLES.items():
                file = snap / f"{table}.jsonl"
                if not file.exists():
                    continue
                target = tables[table]
                with open(file, "rb") as f:
                    for line in f:
                        entity = from_dict(cls, json.loads(line))
                        if table == "attendance":
                            target[key(entity)] = (*target.get(key(entity), ()), entity)
                        else:
                            target[key(entity)] = entity
            seq_file = snap / "sequences.jsonl"
            if seq_file.exists():
                with open(seq_file, "rb") as f:
                    for line in f:
                        r, b, v = json.loads(line)
                        tables["sequences"][(r, date.fromisoformat(b))] = int(v)
            claims_file = snap / "claims.jsonl"
            if claims_file.exists():
                with open(claims_file, "rb") as f:
                    for line in f:
                        k, n = json.loads(line)
                        tables["claims"][k] = int(n)
            else:  # a snapshot written before claims existed: one claim per record
                tables["claims"] = claims_of(tables["records"].values(), tables["children"])
            for rec in tables["records"].values():
                for number in (rec.temp_number, rec.national_number, *rec.former_numbers):
                    if number:
                        tables["numidx"][number] = rec.id
            heads_file = snap / "audit_heads.jsonl"
            heads = tables["auditheads"]
            if heads_file.exists():  # kept apart from the entries: a cut-off chain shows
                with open(heads_file, "rb") as f:
                    for line in f:
                        chain, head_seq, digest = json.loads(line)
                        heads[chain] = (int(head_seq), digest)
            else:  # a snapshot written before audit chains existed: the last entries
                for chain, entry_seq in tables["audit"]:
                    if entry_seq > heads.get(chain, (0, ""))[0]:
                        heads[chain] = (entry_seq, tables["audit"][(chain, entry_seq)].hash)
        self._state = State_(tables)
        self._seq = self._snap_seq = seq
        self._snapshot_name = name
        self._offset = 0
        self._journal_id = None

    def _refresh(self, *, truncate: bool) -> None:
        """Bring the state up to the journal's end (caller holds the lock)."""
        current = self.path / CURRENT
        name = current.read_text().strip() if current.exists() else None
        journal = self.path / JOURNAL
        st = os.stat(journal)
        jid = (st.st_dev, st.st_ino)
        if name != self._snapshot_name or (
            self._journal_id is not None and jid != self._journal_id
        ):
            self._load_snapshot()
        self._journal_id = jid
        with open(journal, "rb") as f:
            f.seek(self._offset)
            data = f.read()
        if not data:
            return
        working = Working(self._state)
        pos = 0
        seq = self._seq
        bad_at: int | None = None
        while pos < len(data):
            nl = data.find(b"\n", pos)
            if nl < 0:
                bad_at = pos  # incomplete last line: a torn write
                break
            decoded = _decode_entry(data[pos:nl])
            if decoded is None or decoded[0] > seq + 1:
                if data.find(b"\n", nl + 1) >= 0:
                    msg = (
                        f"journal {journal} is corrupt before its last line (offset "
                        f"{self._offset + pos}) / 日志文件中间损坏"
                    )
                    raise StorageError(msg)
                bad_at = pos  # corrupt last line: a torn write
                break
            entry_seq, ops = decoded
            if entry_seq == seq + 1:
                try:
                    for op in ops:
                        apply_op(working, op)
                except (ConflictError, LookupError) as exc:
                    msg = f"journal entry {entry_seq} does not apply: {exc} / 日志无法重放"
                    raise StorageError(msg) from exc
                seq = entry_seq
            pos = nl + 1
        if bad_at is not None and truncate:
            os.truncate(journal, self._offset + bad_at)
            fd = os.open(journal, os.O_RDWR)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        self._state = working.freeze()
        self._seq = seq
        self._offset += pos if bad_at is None else bad_at

    # -- the backend interface used by MemoryUnitOfWork -----------------------------------

    def _snapshot(self) -> tuple[State_, int]:
        with _storage_errors("read"), self._flock(exclusive=False):
            self._refresh(truncate=False)
            return self._state, self._seq

    def _publish(self, ops: Sequence[Op], working: Working, generation: int) -> tuple[State_, int]:
        with _storage_errors("commit"), self._flock(exclusive=True):
            self._refresh(truncate=True)
            replay = Working(self._state)
            for op in ops:
                apply_op(replay, op)
            line = encode_entry(self._seq + 1, ops)
            with open(self.path / JOURNAL, "ab") as f:
                f.write(line)
                f.flush()
                os.fsync(f.fileno())
            self._state = replay.freeze()
            self._seq += 1
            self._offset += len(line)
            if self._seq - self._snap_seq >= self.compact_every:
                self._compact_locked()
            return self._state, self._seq

    # -- compaction --------------------------------------------------------------------------

    def _compact_locked(self) -> None:
        seq = self._seq
        name = f"snapshot-{seq:09d}"
        final = self.path / name
        if name == self._snapshot_name:
            return
        tmp = self.path / (name + ".tmp")
        if tmp.exists():
            shutil.rmtree(tmp)
        tmp.mkdir()
        tables = self._state.tables
        for table in _ENTITY_TABLES:
            rows = tables[table]
            if table == "attendance":
                entities: list[Any] = [e for k in sorted(rows) for e in rows[k]]
            else:
                entities = [rows[k] for k in sorted(rows)]
            _write_lines(tmp / f"{table}.jsonl", (to_dict(e) for e in entities))
        seqs = tables["sequences"]
        _write_lines(
            tmp / "sequences.jsonl", ([r, b.isoformat(), seqs[(r, b)]] for r, b in sorted(seqs))
        )
        claims = tables["claims"]
        _write_lines(tmp / "claims.jsonl", ([k, claims[k]] for k in sorted(claims)))
        heads = tables["auditheads"]
        _write_lines(tmp / "audit_heads.jsonl", ([c, *heads[c]] for c in sorted(heads)))
        _write_lines(tmp / "meta.json", iter([{"seq": seq, "format": 1}]))
        _fsync_dir(tmp)
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
        _fsync_dir(self.path)
        _write_durably(self.path / CURRENT, iter([name.encode() + b"\n"]))
        _fsync_dir(self.path)
        _write_durably(self.path / JOURNAL, iter([b""]))
        _fsync_dir(self.path)
        st = os.stat(self.path / JOURNAL)
        self._journal_id = (st.st_dev, st.st_ino)
        self._snapshot_name = name
        self._snap_seq = seq
        self._offset = 0
        for stale in self.path.glob("snapshot-*"):  # older ones and crashed compactions
            if stale.name != name:
                shutil.rmtree(stale, ignore_errors=True)

    def compact(self) -> None:
        """Write a snapshot of everything committed and empty the journal."""
        with _storage_errors("compact"), self._flock(exclusive=True):
            self._refresh(truncate=True)
            self._compact_locked()

    # -- public ----------------------------------------------------------------------------

    def unit_of_work(self) -> MemoryUnitOfWork:
        """A new unit of work over the latest committed state (of every process)."""
        return MemoryUnitOfWork(self)

    def close(self) -> None:
        """Compact if the journal is not empty, then release the lock file."""
        with self._mutex:
            if self._closed:
                return
            try:
                if self._seq > self._snap_seq:
                    self.compact()
            finally:
                self._closed = True
                with contextlib.suppress(OSError):
                    os.close(self._lock_fd)


def _write_lines(path: Path, rows: Iterator[Any]) -> None:
    with open(path, "wb") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False, separators=(",", ":")).encode() + b"\n")
        f.flush()
        os.fsync(f.fileno())
