"""Audit-chain tampering in every adapter: edit, removal and reordering of stored entries are
found by verification at the entry and in the chain where they happened; cutting off a
chain's end (or re-sealing its last entry) is found by its stored head."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import attrs
import pytest

from studentstatus.domain.audit import chain_hash
from studentstatus.domain.enums import ChangeKind, Grade
from studentstatus.services import changes as svc
from studentstatus.services.audit import AuditEvent, audit, verify

from ._changes_world import KG_A, OPS, make_store, runtime, seed

TARGET = 3
T_EXPORT = datetime(2025, 9, 2, 8, 0, tzinfo=UTC)


@attrs.frozen
class Filled:
    """What the store holds after :func:`_fill`: the chain tampered with and its size."""

    chain: str
    size: int
    before: int  # entries of the chains listed before it
    total: int


def _fill(store) -> Filled:  # type: ignore[no-untyped-def]
    rt = runtime(store)
    seed(rt, [(KG_A, Grade.JUNIOR), (KG_A, Grade.MIDDLE), (KG_A, Grade.SENIOR)])
    rt.clock.advance(days=1)  # type: ignore[attr-defined]
    for rid in ("r0000", "r0001"):
        out = svc.request_change(rt, OPS["kgA"], rid, ChangeKind.GO_ABROAD)
        svc.approve_step(rt, OPS["c105"], out.request.id)  # type: ignore[union-attr]
    svc.request_change(rt, OPS["kgA"], "r0002", ChangeKind.GRADUATE)
    report = verify(store)
    assert report.ok
    assert report.chains >= 2  # the kindergarten's and the county's
    with store.unit_of_work() as uow:
        order = [e.chain for e in uow.audit.iter()]
    sizes = Counter(order)
    chain = max(sizes, key=lambda c: sizes[c])
    assert sizes[chain] >= TARGET + 1
    return Filled(chain, sizes[chain], order.index(chain), report.checked)


# ------------------------------------------------------------------ how to tamper, per adapter


def _resealed(store, f: Filled):  # type: ignore[no-untyped-def]
    """The chain's last entry edited and sealed again (a valid hash, a different one)."""
    with store.unit_of_work() as uow:
        last = uow.audit.last(f.chain)
    edited = attrs.evolve(last, reason="nothing happened")
    return attrs.evolve(edited, hash=chain_hash(edited.prev_hash, edited))


def _memory(store, how: str, f: Filled) -> None:  # type: ignore[no-untyped-def]
    resealed = _resealed(store, f) if how == "reseal" else None
    table = dict(store._state.tables["audit"])
    key, next_key, last_key = (f.chain, TARGET), (f.chain, TARGET + 1), (f.chain, f.size)
    if how == "edit":
        table[key] = attrs.evolve(table[key], reason="nothing happened")
    elif how == "remove":
        del table[key]
    elif how == "reorder":
        a, b = table[key], table[next_key]
        table[key], table[next_key] = (
            attrs.evolve(b, seq=TARGET),
            attrs.evolve(a, seq=TARGET + 1),
        )
    elif how == "cut":
        del table[last_key]
    else:
        table[last_key] = resealed
    store._state.tables["audit"] = table


def _jsonl_lines(path: Path, how: str, f: Filled) -> None:
    from studentstatus.domain.model import AuditEntry
    from studentstatus.serialization import from_dict, to_dict

    lines = path.read_text(encoding="utf-8").splitlines()
    rows = [json.loads(x) for x in lines]
    i = next(k for k, r in enumerate(rows) if r["chain"] == f.chain and r["seq"] == TARGET)
    last = next(k for k, r in enumerate(rows) if r["chain"] == f.chain and r["seq"] == f.size)
    if how == "edit":
        rows[i]["operator"] = "ministry"
    elif how == "remove":
        del rows[i]
    elif how == "reorder":
        rows[i]["seq"], rows[i + 1]["seq"] = TARGET + 1, TARGET
        rows[i], rows[i + 1] = rows[i + 1], rows[i]
    elif how == "cut":
        del rows[last]
    else:
        edited = attrs.evolve(from_dict(AuditEntry, rows[last]), reason="nothing happened")
        rows[last] = to_dict(attrs.evolve(edited, hash=chain_hash(edited.prev_hash, edited)))
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")


def _sql(store, how: str, f: Filled) -> None:  # type: ignore[no-untyped-def]
    import sqlalchemy as sa

    resealed = _resealed(store, f) if how == "reseal" else None
    t = store.tables.audit_log if hasattr(store, "tables") else store._t.audit_log
    chain = t.c.chain == f.chain
    with store.engine.begin() as conn:
        if how == "edit":
            conn.execute(sa.update(t).where(chain, t.c.seq == TARGET).values(reason="edited"))
        elif how == "remove":
            conn.execute(sa.delete(t).where(chain, t.c.seq == TARGET))
        elif how == "reorder":
            conn.execute(sa.update(t).where(chain, t.c.seq == TARGET).values(seq=-1))
            conn.execute(sa.update(t).where(chain, t.c.seq == TARGET + 1).values(seq=TARGET))
            conn.execute(sa.update(t).where(chain, t.c.seq == -1).values(seq=TARGET + 1))
        elif how == "cut":
            conn.execute(sa.delete(t).where(chain, t.c.seq == f.size))
        else:
            conn.execute(
                sa.update(t)
                .where(chain, t.c.seq == f.size)
                .values(reason=resealed.reason, hash=resealed.hash)
            )


HOWS = ["edit", "remove", "reorder", "cut", "reseal"]


def _expect_broken(store, how: str, f: Filled) -> None:  # type: ignore[no-untyped-def]
    report = verify(store)
    assert not report.ok
    assert report.chain == f.chain
    if how == "cut":  # the chain verifies, but ends before the entry its head names
        assert (report.problem, report.first_bad_seq) == ("removed", f.size)
        assert report.checked == f.total - 1
        return
    if how == "reseal":  # the chain verifies, but its last hash is not its head's
        assert (report.problem, report.first_bad_seq) == ("altered", f.size)
        assert report.checked == f.total
        return
    assert report.first_bad_seq == TARGET
    assert report.checked == f.before + TARGET - 1
    if how == "remove":
        assert report.problem == "removed"
    elif how == "edit":
        assert report.problem == "altered"
    else:  # entries swapped in storage: each is out of place and its hash no longer fits
        assert report.problem in {"altered", "reordered"}


@pytest.mark.parametrize("how", HOWS)
def test_memory_tamper(how: str, tmp_path: Path) -> None:
    with make_store("memory", tmp_path) as store:
        filled = _fill(store)
        _memory(store, how, filled)
        _expect_broken(store, how, filled)


@pytest.mark.parametrize("how", HOWS)
def test_files_tamper(how: str, tmp_path: Path) -> None:
    from studentstatus.adapters.files import FileStore

    path = tmp_path / "fs"
    store = FileStore(path)
    filled = _fill(store)
    store.close()  # compacts: the audit log is now the snapshot's audit.jsonl
    snapshot = path / (path / "CURRENT").read_text(encoding="utf-8").strip()
    _jsonl_lines(snapshot / "audit.jsonl", how, filled)
    again = FileStore(path)
    try:
        _expect_broken(again, how, filled)
    finally:
        again.close()


@pytest.mark.parametrize("how", HOWS)
def test_sqlite_tamper(how: str, tmp_path: Path) -> None:
    with make_store("sqlite", tmp_path) as store:
        filled = _fill(store)
        _sql(store, how, filled)
        _expect_broken(store, how, filled)


def test_untouched_store_reports_chains_and_anchor(tmp_path: Path) -> None:
    """Verification of an untouched store counts the chains; the anchor is the same for
    the same log in any adapter and moves with every append."""
    anchors = []
    for kind in ("memory", "sqlite"):
        (tmp_path / kind).mkdir()
        with make_store(kind, tmp_path / kind) as store:
            filled = _fill(store)
            report = verify(store)
            assert (report.ok, report.checked) == (True, filled.total)
            assert len(report.heads) == report.chains
            anchors.append(report.anchor)
            with store.unit_of_work() as uow:
                audit(uow, AuditEvent("ministry", "export", "all"), at=T_EXPORT)
                uow.commit()
            moved = verify(store)
            assert moved.ok
            assert moved.anchor != report.anchor
    assert anchors[0] == anchors[1]  # the same log (seeded ids, a fake clock): one anchor
