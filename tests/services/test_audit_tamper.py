"""Audit-chain tampering in every adapter: edit, removal and reordering of stored entries are
found by verification at the entry where they happened."""

from __future__ import annotations

import json
from pathlib import Path

import attrs
import pytest

from studentstatus.domain.enums import ChangeKind, Grade
from studentstatus.services import changes as svc
from studentstatus.services.audit import verify

from ._changes_world import KG_A, OPS, make_store, runtime, seed

TARGET = 3


def _fill(store) -> int:  # type: ignore[no-untyped-def]
    rt = runtime(store)
    seed(rt, [(KG_A, Grade.JUNIOR), (KG_A, Grade.MIDDLE), (KG_A, Grade.SENIOR)])
    rt.clock.advance(days=1)  # type: ignore[attr-defined]
    for rid in ("r0000", "r0001"):
        out = svc.request_change(rt, OPS["kgA"], rid, ChangeKind.GO_ABROAD)
        svc.approve_step(rt, OPS["c105"], out.request.id)  # type: ignore[union-attr]
    svc.request_change(rt, OPS["kgA"], "r0002", ChangeKind.GRADUATE)
    report = verify(store)
    assert report.ok
    return report.checked


# ------------------------------------------------------------------ how to tamper, per adapter


def _memory(store, how: str) -> None:  # type: ignore[no-untyped-def]
    table = dict(store._state.tables["audit"])
    if how == "edit":
        table[TARGET] = attrs.evolve(table[TARGET], reason="nothing happened")
    elif how == "remove":
        del table[TARGET]
    else:
        a, b = table[TARGET], table[TARGET + 1]
        table[TARGET], table[TARGET + 1] = (
            attrs.evolve(b, seq=TARGET),
            attrs.evolve(a, seq=TARGET + 1),
        )
    store._state.tables["audit"] = table


def _jsonl_lines(path: Path, how: str) -> None:
    lines = path.read_text(encoding="utf-8").splitlines()
    rows = [json.loads(x) for x in lines]
    i = next(k for k, r in enumerate(rows) if r["seq"] == TARGET)
    if how == "edit":
        rows[i]["operator"] = "ministry"
    elif how == "remove":
        del rows[i]
    else:
        rows[i]["seq"], rows[i + 1]["seq"] = TARGET + 1, TARGET
        rows[i], rows[i + 1] = rows[i + 1], rows[i]
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")


def _sql(store, how: str) -> None:  # type: ignore[no-untyped-def]
    import sqlalchemy as sa

    t = store.tables.audit_log if hasattr(store, "tables") else store._t.audit_log
    with store.engine.begin() as conn:
        if how == "edit":
            conn.execute(sa.update(t).where(t.c.seq == TARGET).values(reason="edited"))
        elif how == "remove":
            conn.execute(sa.delete(t).where(t.c.seq == TARGET))
        else:
            conn.execute(sa.update(t).where(t.c.seq == TARGET).values(seq=-1))
            conn.execute(sa.update(t).where(t.c.seq == TARGET + 1).values(seq=TARGET))
            conn.execute(sa.update(t).where(t.c.seq == -1).values(seq=TARGET + 1))


HOWS = ["edit", "remove", "reorder"]


def _expect_broken(store, how: str, total: int) -> None:  # type: ignore[no-untyped-def]
    report = verify(store)
    assert not report.ok
    assert report.first_bad_seq == TARGET
    assert report.checked == TARGET - 1
    if how == "remove":
        assert report.problem == "removed"
    elif how == "edit":
        assert report.problem == "altered"
    else:  # entries swapped in storage: each is out of place and its hash no longer fits
        assert report.problem in {"altered", "reordered"}
    assert total > TARGET + 1


@pytest.mark.parametrize("how", HOWS)
def test_memory_tamper(how: str, tmp_path: Path) -> None:
    with make_store("memory", tmp_path) as store:
        total = _fill(store)
        _memory(store, how)
        _expect_broken(store, how, total)


@pytest.mark.parametrize("how", HOWS)
def test_files_tamper(how: str, tmp_path: Path) -> None:
    from studentstatus.adapters.files import FileStore

    path = tmp_path / "fs"
    store = FileStore(path)
    total = _fill(store)
    store.close()  # compacts: the audit log is now the snapshot's audit.jsonl
    snapshot = path / (path / "CURRENT").read_text(encoding="utf-8").strip()
    _jsonl_lines(snapshot / "audit.jsonl", how)
    again = FileStore(path)
    try:
        _expect_broken(again, how, total)
    finally:
        again.close()


@pytest.mark.parametrize("how", HOWS)
def test_sqlite_tamper(how: str, tmp_path: Path) -> None:
    with make_store("sqlite", tmp_path) as store:
        total = _fill(store)
        _sql(store, how)
        _expect_broken(store, how, total)
