"""A keyed audit log pins each registered child from its ``register`` entry on.

Every registration path — a bulk import in one process, one with checker processes
(``workers=2``), the online ``register_child`` — writes the child's ``child_digest``
into the ``register`` entry, so a child edited behind the library's back while its record
is still PENDING is found by the replay (``replay_child_changed``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import attrs
import pytest

from studentstatus.adapters.memory import MemoryStore
from studentstatus.adapters.sql import SqlStore
from studentstatus.domain.audit import AuditKey
from studentstatus.domain.enums import State
from studentstatus.ports import Store
from studentstatus.services.audit import child_digest, verify
from studentstatus.services.intake import import_children, register_child

from ._registration_world import OPS, csv_bytes, row, runtime, seed_kindergartens

KEY = AuditKey(b"the host's audit key, 32 bytes!!")


def _register(store: Store, how: str, tmp_path: Path) -> None:
    seed_kindergartens(store)
    rt = runtime(store)
    rows = [row(i) for i in range(1, 31)]
    rows.append(row(31, id_type="none", id_number="", name="无证"))
    if how == "online":
        for values in rows:
            register_child(rt, OPS["kgA"], values)
        return
    path = tmp_path / "roster.csv"
    path.write_bytes(csv_bytes(rows))
    workers = 2 if how == "workers" else 1
    report = import_children(rt, OPS["kgA"], path, chunk_size=8, workers=workers)
    assert report.accepted == len(rows)


def _make(kind: str, tmp_path: Path, key: AuditKey | None = KEY) -> Store:
    if kind == "memory":
        return MemoryStore(audit_key=key)
    return SqlStore(f"sqlite:///{tmp_path / 'digest.sqlite'}", create=True, audit_key=key)


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
@pytest.mark.parametrize("how", ["import", "workers", "online"])
def test_every_register_entry_pins_its_child(kind: str, how: str, tmp_path: Path) -> None:
    store = _make(kind, tmp_path)
    _register(store, how, tmp_path)
    with store.unit_of_work() as uow:
        records = {r.id: r for r in uow.records.iter()}
        kids = uow.children.get_many([r.child_id for r in records.values()])
        entries = [e for e in uow.audit.iter() if e.action == "register"]
    assert len(entries) == len(records) == 31
    for e in entries:
        rec = records[e.subject.removeprefix("record:")]
        assert rec.state is State.PENDING
        assert e.after["child_digest"] == child_digest(KEY, kids[rec.child_id])["child_digest"]
    assert verify(store, key=KEY, replay=True).ok
    # The name of a PENDING child edited straight in the store is found.
    victim = sorted(records.values(), key=lambda r: r.id)[4]
    with store.unit_of_work() as uow:
        child = uow.children.get(victim.child_id)
        uow.children.update(attrs.evolve(child, name="李四"))
        uow.commit()
    report = verify(store, key=KEY, replay=True)
    assert not report.ok
    assert [(f.code, f.record_id) for f in report.findings] == [("replay_child_changed", victim.id)]
    close: Any = getattr(store, "close", None)
    if close is not None:
        close()


def test_an_unkeyed_log_records_no_digest(tmp_path: Path) -> None:
    store = _make("memory", tmp_path, key=None)
    _register(store, "workers", tmp_path)
    with store.unit_of_work() as uow:
        assert not any("child_digest" in e.after for e in uow.audit.iter())
