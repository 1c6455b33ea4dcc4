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


_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _text(value: str) -> str:
    r"""A value in COPY's text format: backslash, tab, newline and CR escaped.

    >>> print(_text("a" + chr(9) + "b" + chr(92) + "c" + chr(10)), _text("王小明"))
    a\tb\\c\n 王小明
    """
    if "\\" in value or "\t" in value or "\n" in value or "\r" in value:
        return value.translate(_ESCAPES)
    return value


def _json_text(value: Any) -> str:
    r"""JSON text for COPY (empty lists, frequent in records, skip the encoder).

    >>> print(_json_text([]), _json_text({"a": "x" + chr(9)}))
    [] {"a": "x\\t"}
    """
    if not value and isinstance(value, list):
        return "[]"
    return _text(json.dumps(value))


def _bool_text(value: bool) -> str:
    return "t" if value else "f"


def _iso_text(value: Any) -> str:
    return str(value.isoformat())


def _formatters(
    conn: Connection, table: sa.Table, columns: Sequence[str]
) -> list[Callable[[Any], str]]:
    """Per-column conversion of a (non-NULL) value to its COPY text.

    The same preparation as an ``INSERT`` would get from the column type's bind
    processor (JSON serialised, UtcDateTime to naive UTC), then formatted as
    PostgreSQL's text input reads it back.
    """
    dialect = conn.dialect
    out: list[Callable[[Any], str]] = []
    for c in columns:
        col_type = table.c[c].type
        if isinstance(col_type, sa.JSON):
            out.append(_json_text)
        elif isinstance(col_type, sa.Boolean):
            out.append(_bool_text)
        elif isinstance(col_type, sa.Integer):
            out.append(str)
        elif isinstance(col_type, sa.String):
            out.append(_text)
        elif isinstance(col_type, sa.Date) and not isinstance(col_type, sa.DateTime):
            out.append(_iso_text)
        else:
            proc = col_type.bind_processor(dialect)

            def fmt(value: Any, proc: Callable[[Any], Any] | None = proc) -> str:
                if proc is not None:
                    value = proc(value)
                if hasattr(value, "isoformat"):
                    return _text(value.isoformat())
                return _text(str(value))

            out.append(fmt)
    return out


def copy_rows(
    conn: Connection,
    table: sa.Table,
    rows: Sequence[Mapping[str, Any]],
    *,
    columns: Sequence[str] | None = None,
) -> int:
    """Write ``rows`` (dicts keyed by column) into ``table`` with one COPY; returns the count.

    The rows are formatted here as COPY text (tab-separated, ``\\N`` for NULL,
    special characters escaped) and sent in one buffer per call, which costs
    far less per row than psycopg's ``write_row``.  Driver errors become
    :class:`~studentstatus.errors.StorageError` (a duplicate key:
    :class:`~studentstatus.errors.ConflictError`).  Needs a psycopg 3
    connection; an empty batch does nothing on any connection:

    >>> import sqlalchemy as sa
    >>> from studentstatus.adapters.sql.tables import build_tables
    >>> with sa.create_engine("sqlite://").connect() as conn:
    ...     copy_rows(conn, build_tables().children, [])
    0
    """
    if not rows:
        return 0
    cols = list(columns) if columns is not None else list(rows[0])
    fmts = list(enumerate(_formatters(conn, table, cols)))
    dbapi_conn = cast("psycopg.Connection[Any]", conn.connection.dbapi_connection)
    lines: list[str] = []
    for row in rows:
        values = list(row.values())
        if len(values) != len(cols) or columns is not None:
            values = [row[c] for c in cols]
        lines.append("\t".join(["\\N" if values[i] is None else f(values[i]) for i, f in fmts]))
    lines.append("")
    data = "\n".join(lines).encode()
    try:
        with dbapi_conn.cursor() as cur, cur.copy(_copy_sql(table, cols)) as copy:
            copy.write(data)
    except Exception as exc:
        raise translate_error(exc, f"COPY into {table.name}") from exc
    return len(rows)
