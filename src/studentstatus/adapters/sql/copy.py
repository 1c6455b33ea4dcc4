"""PostgreSQL ``COPY … FROM STDIN`` for the bulk paths (psycopg 3).

Used by ``add_many`` of children, records and the change log when a batch is
large: rows go through the raw DBAPI connection underneath the SQLAlchemy
connection, so they join the same transaction (and savepoint).  Values are
prepared by the same SQLAlchemy bind processors as an ``INSERT`` would use
(JSON serialised, aware datetimes converted to UTC), so the stored rows are
identical whichever path wrote them.

>>> from studentstatus.adapters.sql.tables import build_tables
>>> _copy_sql(build_tables(prefix="p_", schema="s").children, ["id", "name"])
'COPY "s"."p_children" ("id", "name") FROM STDIN'
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, cast

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from studentstatus.adapters.sql.errors import translate_error

if TYPE_CHECKING:
    import psycopg

__all__ = ["copy_rows"]


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _copy_sql(table: sa.Table, columns: Sequence[str]) -> str:
    name = _quote(table.name)
    if table.schema:
        name = f"{_quote(table.schema)}.{name}"
    cols = ", ".join(_quote(c) for c in columns)
    return f"COPY {name} ({cols}) FROM STDIN"


_ENCODE = json.JSONEncoder().encode  # the output of json.dumps(value), without its per-call set-up


def _json_text(value: Any) -> str:
    """JSON text exactly as ``json.dumps`` writes it (empty containers skip the encoder)."""
    if not value:
        if isinstance(value, list):
            return "[]"
        if isinstance(value, dict):
            return "{}"
    return _ENCODE(value)


def _last_value_memo(
    process: Callable[[Any], Any] | None,
) -> Callable[[Any], Any] | None:
    """``process`` that returns its previous result again for the very same object.

    Bulk writes stamp their rows with one clock reading: the conversion runs once.

    Exact (an identity test on immutable values); the (value, result) pair is
    replaced in one assignment, so concurrent callers never see a torn pair.

    >>> seen = []
    >>> double = _last_value_memo(lambda v: seen.append(v) or v * 2)
    >>> t = (1, 2)
    >>> double(t), double(t), double((1, 2)), len(seen)
    ((1, 2, 1, 2), (1, 2, 1, 2), (1, 2, 1, 2), 2)
    """
    if process is None:
        return None
    last: list[tuple[object, Any]] = [(object(), None)]

    def memo(value: Any) -> Any:
        seen = last[0]
        if value is seen[0]:
            return seen[1]
        result = process(value)
        last[0] = (value, result)
        return result

    return memo


def _processors(
    conn: Connection, table: sa.Table, columns: Sequence[str]
) -> list[Callable[[Any], Any] | None]:
    """Per-column value preparation (JSON as text, UtcDateTime to naive UTC…).

    Strings, integers, booleans and dates go to psycopg as they are (it adapts
    them natively), so only the columns that need it pay for a call.
    """
    dialect = conn.dialect
    out: list[Callable[[Any], Any] | None] = []
    for c in columns:
        col_type = table.c[c].type
        if isinstance(col_type, sa.JSON):
            # COPY's text format wants the JSON text itself.
            out.append(_json_text)
        elif isinstance(col_type, sa.String | sa.Integer | sa.Boolean | sa.Date):
            out.append(None)
        else:
            out.append(_last_value_memo(col_type.bind_processor(dialect)))
    return out


def copy_rows(
    conn: Connection,
    table: sa.Table,
    rows: Sequence[Mapping[str, Any]],
    *,
    columns: Sequence[str] | None = None,
) -> int:
    """Write ``rows`` (dicts keyed by column) into ``table`` with one COPY; returns the count.

    Driver errors become :class:`~studentstatus.errors.StorageError`
    (a duplicate key: :class:`~studentstatus.errors.ConflictError`).  Needs a
    psycopg 3 connection; an empty batch does nothing on any connection:

    >>> import sqlalchemy as sa
    >>> from studentstatus.adapters.sql.tables import build_tables
    >>> with sa.create_engine("sqlite://").connect() as conn:
    ...     copy_rows(conn, build_tables().children, [])
    0
    """
    if not rows:
        return 0
    cols = list(columns) if columns is not None else list(rows[0])
    procs = _processors(conn, table, cols)
    dbapi_conn = cast("psycopg.Connection[Any]", conn.connection.dbapi_connection)
    try:
        convert = [(i, p) for i, p in enumerate(procs) if p is not None]
        with dbapi_conn.cursor() as cur, cur.copy(_copy_sql(table, cols)) as copy:
            for row in rows:
                values = list(row.values())
                if len(values) != len(cols) or columns is not None:
                    values = [row[c] for c in cols]
                for i, p in convert:
                    if values[i] is not None:
                        values[i] = p(values[i])
                copy.write_row(values)
    except Exception as exc:
        raise translate_error(exc, f"COPY into {table.name}") from exc
    return len(rows)
