"""Keyed audit logs and checkpoints: entries sealed with HMAC under the host's key in every
adapter (the SQL log's own sealing and PostgreSQL's COPY included), what verification says
with the key, without it and with another one, a log keyed from some day on, checkpoints
(truncated, rewritten, missing chains; a signature that does not match), the key from the
environment, and the ``audit checkpoint`` / ``audit verify --checkpoint`` commands."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import attrs
import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from studentstatus.adapters.files import FileStore
from studentstatus.adapters.memory import MemoryStore
from studentstatus.adapters.sql import SqlStore
from studentstatus.cli import main
from studentstatus.domain.audit import AuditKey, key_id_of, seal
from studentstatus.errors import ValidationError
from studentstatus.ports import KeyedAuditLog, Store
from studentstatus.services.audit import (
    AuditEvent,
    Checkpoint,
    audit_fields,
    audit_many,
    key_from_env,
    make_checkpoint,
    read_key_file,
    verify,
)
from studentstatus.store import open_store

KEY = AuditKey(b"the host's audit key, 32 bytes!!")
OTHER = AuditKey(b"somebody else's key, not ours")
T = datetime(2025, 9, 1, 8, 0, tzinfo=UTC)


def _events(n: int, offset: int = 0) -> list[AuditEvent]:
    ops = ("county:110105", "kindergarten:1111000001")
    return [AuditEvent(ops[i % 2], "approve", f"r{offset + i}") for i in range(n)]


def _append(store: Store, n: int, offset: int = 0) -> None:
    with store.unit_of_work() as uow:
        audit_many(uow, _events(n, offset), at=T)
        uow.commit()


@contextmanager
def _store(kind: str, tmp: Path, key: AuditKey | None = KEY, url: str = "") -> Iterator[Store]:
    if kind == "memory":
        yield MemoryStore(audit_key=key)
    elif kind == "files":
        store = FileStore(tmp / f"fs-{uuid.uuid4().hex[:6]}", audit_key=key)
        yield store
        store.close()
    else:
        target = url or f"sqlite:///{tmp / f'db-{uuid.uuid4().hex[:6]}.sqlite'}"
        sql = SqlStore(target, prefix=f"k{uuid.uuid4().hex[:8]}_", create=True, audit_key=key,
                       copy_threshold=10)  # fmt: skip
        yield sql
        if url:
            sql.drop_schema()
        sql.close()


@pytest.mark.parametrize("kind", ["memory", "files", "sqlite"])
def test_keyed_entries_in_every_adapter(kind: str, tmp_path: Path) -> None:
    """Every entry is sealed under the store's key; verification checks each MAC with it,
    counts them unchecked without it, and refuses another key."""
    with _store(kind, tmp_path) as store:
        with store.unit_of_work() as uow:
            assert isinstance(uow.audit, KeyedAuditLog)
            assert uow.audit.key == KEY
        _append(store, 30)
        with store.unit_of_work() as uow:
            assert {key_id_of(e.hash) for e in uow.audit.iter()} == {KEY.id}
        report = verify(store)
        assert (report.ok, report.keyed, report.unkeyed, report.key_id) == (True, 30, 0, KEY.id)
        other = verify(store, key=OTHER)
        assert (other.ok, other.problem, other.code) == (False, "other_key", "audit_other_key")
        assert other.message_zh
        assert other.message_en


def test_without_the_key_only_links_are_checked(tmp_path: Path) -> None:
    """A verifier without the key cannot check a keyed entry's content: it says so."""
    with _store("sqlite", tmp_path) as store:
        _append(store, 6)
        url = str(store.engine.url)  # type: ignore[attr-defined]
        prefix = store.tables.prefix  # type: ignore[attr-defined]
    plain = SqlStore(url, prefix=prefix)
    try:
        report = verify(plain)
        assert (report.ok, report.unchecked, report.key_ids, report.key_id) == (
            True, 6, (KEY.id,), "",
        )  # fmt: skip
        assert report.to_dict()["keyed"] is True
    finally:
        plain.close()


def test_postgres_copy_seals_under_the_key(postgres_url: str, tmp_path: Path) -> None:
    """The SQL log's own bulk sealing — on PostgreSQL a COPY of the sealed fields — seals
    under the store's key, and verifies with it."""
    with _store("postgres", tmp_path, url=postgres_url) as store:
        events = [(f"county:{i % 3}", "register", f"r{i}", "", {}, {"n": i}) for i in range(200)]
        with store.unit_of_work() as uow:
            assert audit_fields(uow, events, at=T) == 200
            uow.commit()
        report = verify(store)
        assert (report.ok, report.keyed, report.chains) == (True, 200, 3)
        assert verify(store, key=OTHER).problem == "other_key"


def test_explicit_key_overrides_the_logs(tmp_path: Path) -> None:
    """``audit_fields(..., key=)`` seals under the key given, even on a log that seals itself
    under another (or none)."""
    with _store("sqlite", tmp_path, key=None) as store:
        with store.unit_of_work() as uow:
            audit_fields(uow, [("ministry", "export", "all", "", {}, {})], at=T, key=KEY)
            uow.commit()
        assert verify(store, key=KEY).keyed == 1


def test_a_log_keyed_from_some_day_on(tmp_path: Path) -> None:
    """Unkeyed entries written before the key existed fail verification with the key —
    unless a checkpoint signed with the key, taken when the key was introduced, vouches for
    them; an unkeyed entry after a keyed one is never vouched for."""
    store = MemoryStore()
    _append(store, 4)
    store.audit_key = KEY  # the host starts using a key
    with pytest.raises(ValidationError):
        make_checkpoint(store, at=T)  # an unkeyed log is not vouched for unless asked
    cp = make_checkpoint(store, at=T, adopt_unkeyed=True)
    _append(store, 4, offset=4)
    assert verify(store).problem == "unkeyed"
    report = verify(store, checkpoint=cp)
    assert (report.ok, report.unkeyed, report.keyed) == (True, 4, 4)
    store.audit_key = None  # an unkeyed writer after the keyed entries
    _append(store, 2, offset=8)
    store.audit_key = KEY
    assert verify(store, checkpoint=cp).problem == "unkeyed"


def test_checkpoint_finds_truncated_rewritten_and_missing_chains(tmp_path: Path) -> None:
    """A chain cut back together with its head, rewritten and re-sealed, or gone entirely
    verifies on its own; against a checkpoint it does not."""
    store = MemoryStore()  # unkeyed: re-sealing is possible, the checkpoint catches it
    _append(store, 10)
    cp = Checkpoint.from_json(make_checkpoint(store, at=T).to_json())
    assert (cp.key_id, cp.mac) == ("", "")
    assert verify(store, checkpoint=cp).ok
    state = store._state
    tables = dict(state.tables)

    def edit(audit: dict, heads: dict) -> None:  # type: ignore[type-arg]
        state.tables = {**tables, "audit": audit, "auditheads": heads}

    audit, heads = dict(tables["audit"]), dict(tables["auditheads"])
    del audit[("county:110105", 5)]
    heads["county:110105"] = (4, audit[("county:110105", 4)].hash)
    edit(audit, heads)
    assert verify(store).ok  # the chain and its head agree
    report = verify(store, checkpoint=cp)
    assert (report.problem, report.chain, report.first_bad_seq) == ("truncated", "county:110105", 5)

    audit = {k: v for k, v in tables["audit"].items() if k[0] != "county:110105"}
    heads = {k: v for k, v in tables["auditheads"].items() if k != "county:110105"}
    edit(audit, heads)
    assert verify(store).ok
    assert verify(store, checkpoint=cp).problem == "missing"

    audit, heads = dict(tables["audit"]), dict(tables["auditheads"])
    prev = None
    for seq in range(1, 6):
        entry = audit[("county:110105", seq)]
        if seq == 3:
            entry = attrs.evolve(entry, reason="rewritten")
        prev = seal(entry, prev)
        audit[("county:110105", seq)] = prev
    heads["county:110105"] = (5, prev.hash)  # type: ignore[union-attr]
    edit(audit, heads)
    assert verify(store).ok
    assert verify(store, checkpoint=cp).problem == "rewritten"
    state.tables = tables


def test_checkpoint_signature(tmp_path: Path) -> None:
    """A signed checkpoint edited by hand, or checked with another key, is refused; one read
    without a key is accepted but not vouched for."""
    store = MemoryStore(audit_key=KEY)
    _append(store, 4)
    cp = make_checkpoint(store, at=T)
    assert cp.signed_by(KEY)
    assert not cp.signed_by(None)
    text = cp.to_json()
    doc = json.loads(text)
    first = sorted(doc["heads"])[0]
    doc["heads"][first]["seq"] = 1
    doc["anchor"] = Checkpoint(
        T, {c: (h["seq"], h["hash"]) for c, h in doc["heads"].items()}
    ).anchor
    with pytest.raises(ValidationError) as bad:
        verify(store, checkpoint=Checkpoint.from_json(json.dumps(doc)))
    assert bad.value.code == "checkpoint_signature"
    with pytest.raises(ValidationError) as other:
        verify(store, key=OTHER, checkpoint=cp)
    assert other.value.code == "checkpoint_other_key"
    for broken in ("{", "[]", json.dumps({**json.loads(text), "anchor": "0" * 64})):
        with pytest.raises(ValidationError) as invalid:
            Checkpoint.from_json(broken)
        assert invalid.value.code == "checkpoint_invalid"
    state = store._state
    tables = dict(state.tables)
    audit = dict(tables["audit"])
    del audit[("county:110105", 1)]
    state.tables = {**tables, "audit": audit}
    with pytest.raises(ValidationError) as broken_log:
        make_checkpoint(store, at=T)
    assert broken_log.value.code == "audit_broken"


def test_key_from_env_and_file(tmp_path: Path) -> None:
    path = tmp_path / "key"
    path.write_bytes(b"the host's audit key, 32 bytes!!\n")
    assert read_key_file(path) == KEY
    assert key_from_env({"STUDENTSTATUS_AUDIT_KEY_FILE": str(path)}) == KEY
    assert key_from_env({"STUDENTSTATUS_AUDIT_KEY": "the host's audit key, 32 bytes!!"}) == KEY
    with pytest.raises(ValidationError) as short:
        key_from_env({"STUDENTSTATUS_AUDIT_KEY": "short"})
    assert short.value.code == "audit_key_short"
    with pytest.raises(ValidationError) as missing:
        read_key_file(tmp_path / "nope")
    assert missing.value.code == "audit_key_file"
    assert "the host" not in repr(KEY)
    store = open_store("memory://", audit_key=KEY)
    assert store.audit_key == KEY  # type: ignore[attr-defined]


def _run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


def test_cli_checkpoint_and_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The host key from the environment seals what the CLI writes; ``audit checkpoint``
    writes a signed file; after the log is cut back with its head, ``audit verify
    --checkpoint`` exits 1 with the code and both messages."""
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("STUDENTSTATUS_STORE", url)
    monkeypatch.setenv("STUDENTSTATUS_NOW", "2025-09-02T09:00:00+00:00")
    monkeypatch.setenv("STUDENTSTATUS_AUDIT_KEY", "the host's audit key, 32 bytes!!")
    store = SqlStore(url, create=True, audit_key=KEY)
    _append(store, 12)
    store.close()
    code, out = _run("audit", "verify", "--no-replay")
    assert code == 0, out
    assert f"keyed: 12 entries checked under key {KEY.id}" in out
    cp_file = tmp_path / "cp.json"
    code, out = _run("audit", "checkpoint", "--out", str(cp_file))
    assert code == 0, out
    assert f"signed with key {KEY.id}" in out
    assert json.loads(cp_file.read_text())["key_id"] == KEY.id
    code, out = _run("audit", "verify", "--no-replay", "--checkpoint", str(cp_file), "--json")
    doc = json.loads(out)
    assert (code, doc["ok"], doc["checkpoint"]["signature_checked"]) == (0, True, True)

    # without the key: said plainly
    monkeypatch.delenv("STUDENTSTATUS_AUDIT_KEY")
    code, out = _run("audit", "verify", "--no-replay")
    assert code == 0
    assert "NO KEY was given" in out
    key_file = tmp_path / "key"
    key_file.write_text("the host's audit key, 32 bytes!!\n")
    code, out = _run("audit", "verify", "--no-replay", "--audit-key-file", str(key_file))
    assert "checked under key" in out

    # the chain's end cut off, and its head moved to match
    plain = SqlStore(url)
    log, heads = plain.tables.audit_log, plain.tables.audit_heads
    with plain.engine.begin() as conn:
        conn.execute(sa.delete(log).where(log.c.chain == "county:110105", log.c.seq == 6))
        last = conn.execute(
            sa.select(log.c.hash).where(log.c.chain == "county:110105", log.c.seq == 5)
        ).scalar_one()
        conn.execute(
            sa.update(heads).where(heads.c.chain == "county:110105").values(seq=5, hash=last)
        )
    plain.close()
    code, out = _run("audit", "verify", "--no-replay", "--audit-key-file", str(key_file))
    assert code == 0  # the chain alone cannot tell
    code, out = _run(
        "audit", "verify", "--no-replay", "--audit-key-file", str(key_file),
        "--checkpoint", str(cp_file),
    )  # fmt: skip
    assert code == 1
    assert "audit_truncated" in out
    assert "截断" in out
    assert "cut off" in out
    code, out = _run(
        "audit", "verify", "--no-replay", "--audit-key-file", str(key_file),
        "--checkpoint", str(cp_file), "--json",
    )  # fmt: skip
    doc = json.loads(out)
    assert (doc["code"], doc["chain"], doc["first_bad_seq"]) == (
        "audit_truncated",
        "county:110105",
        6,
    )
    code, out = _run("audit", "checkpoint", "--out", str(tmp_path / "again.json"), "--json")
    assert code == 0  # a consistent (if cut back) log can be checkpointed again
    monkeypatch.setenv("STUDENTSTATUS_AUDIT_KEY", "short")
    code, out = _run("audit", "verify", "--no-replay")
    assert code == 1
    assert "audit_key_short" in out
