"""SQLite ``executemany`` parameters made ahead of time, in any process (bulk intake).

The SQLite counterpart of :class:`~studentstatus.adapters.sql.copy.CopyEncoder`:
:class:`ParamEncoder` turns children, records (with their numbers), REGISTER
events and number claims into the parameter tuples of the adapter's driver
``INSERT`` — the adapter's own row mappers and the same value preparation as
its bulk path (``_driver_insert``: ISO dates, JSON text, naive-UTC
timestamps) — so the checker processes of an import prepare them and the
importing process, which also runs SQLite itself, only hands them to the
driver.  :func:`write_params` writes them: the SQL adapter's
:class:`~studentstatus.ports.PreparedWrites` on SQLite.

>>> from datetime import date
>>> from studentstatus.adapters.sql import SqlStore
>>> from studentstatus.domain.enums import Sex
>>> from studentstatus.domain.model import Child
>>> store = SqlStore("sqlite://", create=True)
>>> enc = ParamEncoder.for_store(store)
>>> ((row,),) = enc.encode("children", Child("c1", "王小明", Sex.M, date(2020, 3, 15), None))
>>> row[:4], row[11]
(('c1', '王小明', 'M', '2020-03-15'), '[]')
>>> store.close()
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import date
from typing import Any

import attrs
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from studentstatus.adapters.sql.copy import (
    ENCODED_KINDS,
    ENCODED_PORTS,
    _column_kind,
    _each,
    _json_text,
    _last_value_memo,
    _layouts,
    _listed,
    _TableEncoder,
)
from studentstatus.adapters.sql.errors import raise_translated

__all__ = ["ParamEncoder", "write_params"]


@attrs.frozen
class ParamTable:
    """One table an encoder writes: its ``INSERT`` statement, columns and their encodings."""

    sql: str
    columns: tuple[str, ...]
    kinds: tuple[str, ...]

    @classmethod
    def of(cls, table: sa.Table, sql: str) -> ParamTable:
        """The layout of ``table`` (every column, in order), written by ``sql`` (the
        adapter's ``INSERT`` of those columns)."""
        cols = tuple(c.name for c in table.columns)
        return cls(sql, cols, tuple(_column_kind(c) for c in table.columns))


Plan = Callable[[Any], tuple[tuple[tuple[Any, ...], ...], ...]]
"""A compiled encoding of one kind: entity -> per table, its rows' parameter tuples."""


def _compile(tables: Mapping[str, ParamTable]) -> dict[str, Plan]:
    from sqlalchemy.dialects.sqlite import pysqlite

    from studentstatus.adapters.sql.tables import UtcDateTime

    utc_process = UtcDateTime()._cached_bind_processor(pysqlite.dialect())
    assert utc_process is not None
    convert: dict[str, Callable[[Any], Any]] = {
        "json": _json_text,
        "utc": _last_value_memo(utc_process),  # type: ignore[dict-item]
        "date": date.isoformat,
    }

    def table_plan(
        rows_of: Callable[[Any], list[list[Any]]], conv: list[tuple[int, Callable[[Any], Any]]]
    ) -> Callable[[Any], tuple[tuple[Any, ...], ...]]:
        def encode(entity: Any) -> tuple[tuple[Any, ...], ...]:
            out = []
            for values in rows_of(entity):
                for i, f in conv:
                    v = values[i]
                    if v is not None:
                        values[i] = f(v)
                out.append(tuple(values))
            return tuple(out)

        return encode

    plans: dict[str, Plan] = {}
    for kind, layouts in _layouts().items():
        parts = []
        for port, (columns, rows_of, many) in zip(ENCODED_KINDS[kind], layouts, strict=True):
            table = tables[port]
            if columns != table.columns:  # pragma: no cover - PreparedWritesContract
                msg = f"{port}: the row mapper's columns are not the table's"
                raise RuntimeError(msg)
            parts.append(
                table_plan(
                    rows_of if many else _listed(rows_of),
                    [(i, convert[k]) for i, k in enumerate(table.kinds) if k],
                )
            )
        plans[kind] = _each(parts)
    return plans


class ParamEncoder(_TableEncoder):
    """Entities as SQLite ``executemany`` parameter tuples, made in any process.

    The tuples hold what the adapter's bulk ``INSERT`` binds for the same
    entities, so :func:`write_params` stores the same rows.  Picklable (table
    layouts only).  :meth:`encode` returns, per table of the kind (see
    :data:`~studentstatus.adapters.sql.copy.ENCODED_KINDS`), a tuple of row
    tuples (a record has one row per number in ``record_numbers``).
    """

    write_batch = 0
    """Entities an import gathers before a write: none, every chunk is written as it comes
    (unlike ``COPY``, SQLite gains nothing from larger batches, and they cost memory)."""

    tables: dict[str, ParamTable]
    _plans: dict[str, Plan] | None

    @classmethod
    def for_store(cls, store: Any) -> ParamEncoder:
        """The encoder of a SQLite :class:`~studentstatus.adapters.sql.SqlStore`: its tables,
        written by its own driver ``INSERT`` statements."""
        tables = {p: store.tables.by_port[p] for p in ENCODED_PORTS}
        return cls(
            {
                p: ParamTable.of(t, store._insert_plan(t, [c.name for c in t.columns])[0])
                for p, t in tables.items()
            }
        )

    def encode(self, kind: str, entity: object) -> tuple[tuple[tuple[Any, ...], ...], ...]:
        """The parameter tuples of ``entity``'s rows, per table of ``kind``."""
        plans = self._plans
        if plans is None:
            plans = self._plans = _compile(self.tables)
        return plans[kind](entity)


def write_params(
    conn: Connection,
    encoder: ParamEncoder,
    batches: Sequence[tuple[str, Sequence[Any]]],
) -> int:
    """Write what :meth:`ParamEncoder.encode` made: one ``executemany`` per table of each
    batch.  Returns the number of entities; driver errors become
    :class:`~studentstatus.errors.StorageError` (a taken key:
    :class:`~studentstatus.errors.ConflictError`)."""
    layouts = encoder.tables
    n = 0
    for kind, items in batches:
        n += len(items)
        for i, port in enumerate(ENCODED_KINDS[kind]):
            rows = [row for item in items for row in item[i]]
            if not rows:
                continue
            try:
                conn.exec_driver_sql(layouts[port].sql, rows)
            except Exception as exc:
                raise_translated(exc, f"INSERT into {port}")
    return n
