"""The audit log's bulk ``COPY`` from sealed fields writes what ``append_many`` writes.

``copy.audit_copy_text`` makes the ``COPY`` lines of sealed audit entries with one f-string a
row instead of an entry object, a row dict and psycopg's formatter per row.  These tests
compare its bytes with the text ``copy_rows`` makes of ``audit_to_row`` of the same entries
(any text: control characters, backslashes, rare characters, values of other types), and on
PostgreSQL the stored rows of the two paths, JSON text included.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

pytest.importorskip("psycopg")

import psycopg
import sqlalchemy as sa
from psycopg._copy_base import format_row_text
from psycopg.adapt import Transformer
from sqlalchemy.dialects import postgresql

from studentstatus.adapters.sql import _rows
from studentstatus.adapters.sql import copy as sql_copy
from studentstatus.adapters.sql.copy import audit_copy_text, copy_audit
from studentstatus.adapters.sql.store import SqlStore
from studentstatus.adapters.sql.tables import build_tables
from studentstatus.domain.audit import group_by_chain, seal_events, seal_rows, verify_chain
from studentstatus.errors import ConflictError
from studentstatus.ports import SealingAuditLog

TABLE = build_tables().audit_log
DIALECT = postgresql.psycopg.dialect()  # type: ignore[attr-defined]

TEXT = st.one_of(
    st.text(max_size=12),
    st.sampled_from(["", "register", "county:110105", "标\t记", "a\\b", "\\N", "\x0b\x1f\r\n",
                     "𠮷田", "\u2028", "Zoë"]),
)  # fmt: skip
VALUES = st.one_of(st.none(), st.booleans(), st.integers(-(2**40), 2**40), TEXT)
FIELDS = st.dictionaries(TEXT, st.one_of(VALUES, st.lists(VALUES, max_size=3)), max_size=4)
EVENT = st.tuples(TEXT, TEXT, TEXT, TEXT, FIELDS, FIELDS)
AT = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2099, 12, 31),
    timezones=st.sampled_from([UTC, timezone(timedelta(hours=8)), timezone(timedelta(hours=-5))]),
)  # fmt: skip


def copy_rows_text(at: datetime, events: list[Any], chain: str = "") -> bytes:
    """What ``copy_rows`` sends for ``audit_to_row`` of the sealed entries: the same value
    preparation (``_processors``) and psycopg's formatter, row by row."""

    class Conn:
        dialect = DIALECT

    cols = [c.name for c in TABLE.columns]
    procs = sql_copy._processors(Conn(), TABLE, cols)  # type: ignore[arg-type]
    tx = Transformer(None)
    buf = bytearray()
    for entry in seal_events(None, at, events, chain=chain):
        values = list(_rows.audit_to_row(entry).values())
        for i, p in enumerate(procs):
            if p is not None and values[i] is not None:
                values[i] = p(values[i])
        format_row_text(values, tx, buf)
    return bytes(buf)


@settings(max_examples=200, deadline=None)
@given(st.lists(EVENT, max_size=6), AT, TEXT)
def test_copy_text_equals_copy_rows(events: list[Any], at: datetime, chain: str) -> None:
    """The fused text is byte for byte what the general COPY path makes of the entries (of
    any chain name); text PostgreSQL cannot hold (NUL) is refused the same way."""

    def outcome(make: Any) -> object:
        try:
            return make()
        except psycopg.DataError as exc:
            return type(exc), str(exc)

    fused = outcome(
        lambda: b"".join(
            audit_copy_text(TABLE, DIALECT, at, seal_rows(None, at, events, chain=chain))
        )
    )
    assert fused == outcome(lambda: copy_rows_text(at, events, chain))


def test_copy_text_comes_in_pieces(monkeypatch: pytest.MonkeyPatch) -> None:
    """Large batches come in pieces of about ``_COPY_PIECE`` bytes, every line whole."""
    monkeypatch.setattr(sql_copy, "_COPY_PIECE", 300)
    at = datetime(2025, 9, 1, 8, tzinfo=UTC)
    events = [("op", "register", f"r{i}", "", {}, {"n": i}) for i in range(50)]
    pieces = list(audit_copy_text(TABLE, DIALECT, at, seal_rows(None, at, events)))
    assert len(pieces) > 5
    assert all(p.endswith(b"\n") for p in pieces)
    assert b"".join(pieces) == copy_rows_text(at, events)


def _prefix() -> str:
    return f"a{uuid.uuid4().hex[:10]}_"


def test_postgres_sealed_copy_stores_what_append_many_stores(postgres_url: str) -> None:
    """On PostgreSQL, ``seal_and_append`` (COPY from sealed fields) and ``append_many`` of
    ``seal_events`` chain by chain (COPY through ``copy_rows``) store the same rows, the
    JSON columns' text included; the chains verify against their heads; a taken ``(chain,
    seq)`` is a ConflictError."""
    at = datetime(2025, 9, 1, 8, 0, 0, 654321, tzinfo=timezone(timedelta(hours=8)))
    events = [
        (f"county:{i % 2}", "register", f"r{i}\t\\", "原因\n" if i % 3 else "",
         {} if i % 2 else {"g": None, "l": ["名", 1]}, {"state": "PENDING", "n": i, "名": "值"})
        for i in range(300)
    ]  # fmt: skip
    sealing = SqlStore(postgres_url, prefix=_prefix(), create=True, copy_threshold=10)
    general = SqlStore(postgres_url, prefix=_prefix(), create=True, copy_threshold=10)
    try:
        with sealing.unit_of_work() as uow:
            assert isinstance(uow.audit, SealingAuditLog)
            assert uow.audit.seal_and_append(events[:5], at=at) == 5  # small: append_many
            assert uow.audit.seal_and_append(iter(events[5:]), at=at) == 295  # COPY
            uow.commit()
        with general.unit_of_work() as uow:
            last: dict[str, Any] = {}
            for batch in (events[:5], events[5:]):
                for chain, group in group_by_chain(batch).items():
                    sealed = list(seal_events(last.get(chain), at, group, chain=chain))
                    last[chain] = sealed[-1]
                    uow.audit.append_many(sealed)
            uow.commit()
        texts = []
        for store in (sealing, general):
            t = store.tables.audit_log
            cols = [sa.cast(c, sa.Text) if isinstance(c.type, sa.JSON) else c for c in t.c]
            with store.engine.connect() as conn:
                texts.append(conn.execute(sa.select(*cols).order_by(t.c.chain, t.c.seq)).all())
        assert len(texts[0]) == 300
        assert texts[0] == texts[1]
        assert {row[-1] for row in texts[0]} == {"county:0", "county:1"}
        for store in (sealing, general):
            with store.unit_of_work() as uow:
                assert uow.audit.heads() == {c: (e.seq, e.hash) for c, e in last.items()}
                assert verify_chain(uow.audit.iter(), heads=uow.audit.heads()).ok
        with sealing.unit_of_work() as uow:
            conn = uow.audit._conn  # type: ignore[attr-defined]
            rows = seal_rows(None, at, events[:20], chain="county:0")
            with pytest.raises(ConflictError):
                copy_audit(conn, sealing.tables.audit_log, at, rows)
    finally:
        for store in (sealing, general):
            store.drop_schema()
            store.close()
