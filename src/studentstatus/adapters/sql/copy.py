"""PostgreSQL ``COPY … FROM STDIN`` for the bulk paths (psycopg 3).

Used by ``add_many`` of children, records and the change log when a batch is
large: rows go through the raw DBAPI connection underneath the SQLAlchemy
connection, so they join the same transaction (and savepoint).  Values are
prepared by the same SQLAlchemy bind processors as an ``INSERT`` would use
(JSON serialised, aware datetimes converted to UTC), so the stored rows are
identical whichever path wrote them.

:class:`CopyEncoder` makes the same lines ahead of time, in any process (the
checker processes of a bulk import), and :func:`copy_encoded` writes them:
the SQL adapter's :class:`~studentstatus.ports.PreparedWrites`.

>>> from studentstatus.adapters.sql.tables import build_tables
>>> _copy_sql(build_tables(prefix="p_", schema="s").children, ["id", "name"])
'COPY "s"."p_children" ("id", "name") FROM STDIN'
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import date, datetime
from typing import TYPE_CHECKING, Any, cast

import attrs
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from studentstatus._json import encoder
from studentstatus.adapters.sql.errors import raise_translated
from studentstatus.domain.audit import SealedRow

if TYPE_CHECKING:
    import psycopg

__all__ = ["CopyEncoder", "audit_copy_text", "copy_audit", "copy_encoded", "copy_rows"]


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _copy_sql(table: sa.Table, columns: Sequence[str]) -> str:
    name = _quote(table.name)
    if table.schema:
        name = f"{_quote(table.schema)}.{name}"
    cols = ", ".join(_quote(c) for c in columns)
    return f"COPY {name} ({cols}) FROM STDIN"


_ENCODE = encoder()  # the output of json.dumps(value), without its per-call set-up
_STRING = json.encoder.encode_basestring_ascii  # a str as json.dumps writes it


def _json_text(value: Any) -> str:
    """JSON text exactly as ``json.dumps`` writes it (empty containers skip the encoder;
    a flat dict reuses the text of the members it shares with the last one).

    >>> _json_text({"a": 1, "名": [None, True]}) == json.dumps({"a": 1, "名": [None, True]})
    True
    """
    if not value:
        if isinstance(value, list):
            return "[]"
        if isinstance(value, dict):
            return "{}"
    if type(value) is dict:
        return _dict_text(value)
    return _ENCODE(value)


_SCALARS = frozenset({str, int, bool, type(None)})
_MEMBERS: dict[str, tuple[object, str]] = {}  # key -> (its last value, '"key": value' text)


def _dict_text(value: dict[Any, Any]) -> str:
    """``json.dumps`` of a dict, each ``"key": value`` member made once for a key whose
    value is the very same (immutable) object as last time.

    The rows of a bulk write carry dicts of the same keys, most values shared
    (the REGISTER event's record fields: mostly defaults).  Members are
    remembered for scalar values only (a list could change in place); any
    other key type, or a dict with more than 64 members, takes the encoder.
    Each ``(value, text)`` pair is replaced in one assignment, so concurrent
    callers never see a torn one.

    >>> _dict_text({"id": "r1", "n": None}), _dict_text({"id": "r2", "n": None})
    ('{"id": "r1", "n": null}', '{"id": "r2", "n": null}')
    """
    if len(value) > 64:
        return _ENCODE(value)
    members = _MEMBERS
    parts = []
    for k, v in value.items():
        hit = members.get(k)
        if hit is not None and hit[0] is v:
            parts.append(hit[1])
            continue
        if type(k) is not str:
            return _ENCODE(value)
        text = f"{_STRING(k)}: {_STRING(v) if type(v) is str else _json_text(v)}"
        if type(v) in _SCALARS:
            if len(members) > 1024:
                members.clear()
            members[k] = (v, text)
        parts.append(text)
    return "{" + ", ".join(parts) + "}"


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
    from psycopg._copy_base import format_row_text
    from psycopg.adapt import Transformer

    try:
        convert = [(i, p) for i, p in enumerate(procs) if p is not None]
        with dbapi_conn.cursor() as cur, cur.copy(_copy_sql(table, cols)) as copy:
            # The rows' text is made here with psycopg's own formatter (what write_row
            # does per row) and sent in pieces of about a megabyte.
            tx = Transformer.from_context(cur)
            buf = bytearray()
            for row in rows:
                values = list(row.values())
                if len(values) != len(cols) or columns is not None:
                    values = [row[c] for c in cols]
                for i, p in convert:
                    if values[i] is not None:
                        values[i] = p(values[i])
                format_row_text(values, tx, buf)
                if len(buf) > _COPY_PIECE:
                    copy.write(buf)
                    buf = bytearray()
            if buf:
                copy.write(buf)
    except Exception as exc:
        raise_translated(exc, f"COPY into {table.name}")
    return len(rows)


_COPY_PIECE = 1 << 20
""":func:`copy_rows` sends the rows' text in pieces of about this many bytes."""


# ----------------------------------------------------------------------------- encoded rows


def _naive_utc_text(value: datetime) -> str:
    """What :class:`~studentstatus.adapters.sql.tables.UtcDateTime` binds (naive UTC), as
    the text ``COPY`` reads.

    >>> from datetime import timedelta, timezone
    >>> _naive_utc_text(datetime(2024, 9, 1, 8, 0, 0, 5, tzinfo=timezone(timedelta(hours=8))))
    '2024-09-01 00:00:00.000005'
    """
    from studentstatus.adapters.sql.tables import UtcDateTime

    bound = UtcDateTime().process_bind_param(value, cast(Any, None))
    assert bound is not None
    return bound.isoformat(" ")


def _column_kind(column: sa.Column[Any]) -> str:
    """How the bulk encoders prepare a column's values (``COPY`` text and SQLite
    parameters alike): ``"json"``, ``"utc"``, ``"date"`` or ``""`` (as they are)."""
    from studentstatus.adapters.sql.tables import UtcDateTime

    type_ = column.type
    if isinstance(type_, sa.JSON):
        return "json"
    if isinstance(type_, UtcDateTime):
        return "utc"
    if isinstance(type_, sa.Date) and not isinstance(type_, sa.DateTime):
        return "date"
    if isinstance(type_, sa.String | sa.Integer | sa.Boolean):
        return ""
    msg = f"{column.table.name}.{column.name}: no bulk encoding for {type_!r}"
    raise TypeError(msg)


@attrs.frozen
class CopyTable:
    """One table an encoder writes: its ``COPY`` statement, columns and their encodings."""

    sql: str
    columns: tuple[str, ...]
    kinds: tuple[str, ...]

    @classmethod
    def of(cls, table: sa.Table) -> CopyTable:
        """The layout of ``table`` (every column, in order)."""
        cols = tuple(c.name for c in table.columns)
        return cls(_copy_sql(table, cols), cols, tuple(_column_kind(c) for c in table.columns))


ENCODED_KINDS: dict[str, tuple[str, ...]] = {
    "children": ("children",),
    "records": ("records", "record_numbers"),
    "changes": ("change_log",),
    "numbers": ("issued_numbers",),
}
"""The tables (ports of :class:`~studentstatus.adapters.sql.tables.SqlTables`) of each kind."""

ENCODED_PORTS: tuple[str, ...] = tuple(sorted({p for ps in ENCODED_KINDS.values() for p in ps}))
"""Every table a bulk encoder writes, sorted (what :class:`CopyEncoder` and ``ParamEncoder``
hold the layouts of)."""


Layout = tuple[tuple[str, ...], Callable[[Any], Any], bool]
"""A table of a kind: its columns, the row mapper, and whether the mapper gives a list of
rows (``True``) or the one row's values (``False``)."""


def _layouts() -> dict[str, tuple[Layout, ...]]:
    """Per kind, per table of the kind: the columns and the function giving one entity's
    row (or rows) of that table (lists of values in that column order), from the
    adapter's own row mappers."""
    from studentstatus.adapters.sql import _rows

    return {
        "children": ((_rows.CHILD_COLUMNS, _rows.child_values, False),),
        "records": (
            (_rows.RECORD_COLUMNS, _rows.record_values, False),
            (("number", "record_id"), lambda r: [[n, r.id] for n in _rows.record_numbers(r)], True),
        ),
        "changes": ((_rows.CHANGE_COLUMNS, _rows.change_values, False),),
        "numbers": ((_rows.ISSUED_COLUMNS, _rows.issued_values, False),),
    }


Plan = Callable[[Any], tuple[bytes, ...]]
"""A compiled encoding of one kind: entity -> one ``bytes`` per table."""


def _compile(tables: Mapping[str, CopyTable]) -> dict[str, Plan]:
    from psycopg._copy_base import format_row_text
    from psycopg.adapt import Transformer

    tx = Transformer(None)
    utc = cast(Callable[[Any], Any], _last_value_memo(_naive_utc_text))
    convert: dict[str, Callable[[Any], Any]] = {
        "json": _json_text,
        "utc": utc,
        "date": date.isoformat,
    }

    def table_plan(
        rows_of: Callable[[Any], list[list[Any]]], conv: list[tuple[int, Callable[[Any], Any]]]
    ) -> Callable[[Any], bytes]:
        def encode(entity: Any) -> bytes:
            buf = bytearray()
            for values in rows_of(entity):
                for i, f in conv:
                    v = values[i]
                    if v is not None:
                        values[i] = f(v)
                format_row_text(values, tx, buf)
            return bytes(buf)

        return encode

    def only_table_plan(
        row_of: Callable[[Any], list[Any]], conv: list[tuple[int, Callable[[Any], Any]]]
    ) -> Plan:
        # A kind of one table and one row an entity (most of them): no loops, no wrapper.
        def encode(entity: Any) -> tuple[bytes, ...]:
            values = row_of(entity)
            for i, f in conv:
                v = values[i]
                if v is not None:
                    values[i] = f(v)
            buf = bytearray()
            format_row_text(values, tx, buf)
            return (bytes(buf),)

        return encode

    plans: dict[str, Plan] = {}
    for kind, layouts in _layouts().items():
        parts = []
        for port, (columns, rows_of, many) in zip(ENCODED_KINDS[kind], layouts, strict=True):
            table = tables[port]
            if columns != table.columns:  # pragma: no cover - PreparedWritesContract
                msg = f"{port}: the row mapper's columns are not the table's"
                raise RuntimeError(msg)
            conv = [(i, convert[k]) for i, k in enumerate(table.kinds) if k]
            if len(layouts) == 1 and not many:
                plans[kind] = only_table_plan(rows_of, conv)
                break
            parts.append(table_plan(rows_of if many else _listed(rows_of), conv))
        else:
            plans[kind] = _each(parts)
    return plans


def _listed(row_of: Callable[[Any], list[Any]]) -> Callable[[Any], list[list[Any]]]:
    """A one-row mapper as a mapper of a list of rows."""

    def rows_of(entity: Any) -> list[list[Any]]:
        return [row_of(entity)]

    return rows_of


def _each(parts: Sequence[Callable[[Any], Any]]) -> Callable[[Any], tuple[Any, ...]]:
    """One plan from the encodings of each table of a kind."""
    fixed = tuple(parts)

    def plan(entity: Any) -> tuple[Any, ...]:
        return tuple([p(entity) for p in fixed])

    return plan


class _TableEncoder:
    """What the bulk encoders share (:class:`CopyEncoder`, and ``ParamEncoder`` of
    :mod:`~studentstatus.adapters.sql.params`): the table layouts, all that is pickled,
    and their encodings, compiled in each process on first use; equal by layouts.
    """

    def __init__(self, tables: Mapping[str, Any]) -> None:
        self.tables = dict(tables)
        self._plans: dict[str, Any] | None = None  # compiled in each process, never pickled

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.tables,))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, type(self)) and other.tables == self.tables

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"{type(self).__name__}({sorted(self.tables)})"


class CopyEncoder(_TableEncoder):
    r"""Entities as the lines of PostgreSQL ``COPY … FROM STDIN`` text, made in any process.

    The lines hold what :func:`copy_rows` sends for the same entities — the
    adapter's row mappers, the same value preparation (JSON text, naive UTC)
    and psycopg's own text formatting — so a unit of work can write them with
    :func:`copy_encoded` and store the same rows.  Picklable (table layouts
    only); it needs psycopg, not a connection.  :meth:`encode` returns one
    ``bytes`` per table of the kind (see :data:`ENCODED_KINDS`).

    >>> from datetime import date
    >>> from studentstatus.adapters.sql.tables import build_tables
    >>> from studentstatus.domain.enums import Sex
    >>> from studentstatus.domain.model import Child
    >>> enc = CopyEncoder.for_tables(build_tables())
    >>> (line,) = enc.encode("children", Child("c1", "王小明", Sex.M, date(2020, 3, 15), None))
    >>> line.decode().split("\t")[:5], line.endswith(b"\n")
    (['c1', '王小明', 'M', '2020-03-15', '\\N'], True)
    """

    tables: dict[str, CopyTable]
    _plans: dict[str, Plan] | None

    @classmethod
    def for_tables(cls, tables: Any) -> CopyEncoder:
        """The encoder of an adapter's :class:`~studentstatus.adapters.sql.tables.SqlTables`."""
        return cls({p: CopyTable.of(tables.by_port[p]) for p in ENCODED_PORTS})

    def encode(self, kind: str, entity: object) -> tuple[bytes, ...]:
        """The ``COPY`` lines of ``entity``, one ``bytes`` per table of ``kind``."""
        plans = self._plans
        if plans is None:
            plans = self._plans = _compile(self.tables)
        return plans[kind](entity)


def copy_encoded(
    conn: Connection,
    encoder: CopyEncoder,
    batches: Sequence[tuple[str, Sequence[Any]]],
) -> int:
    """Write what :meth:`CopyEncoder.encode` made: one ``COPY`` per table of each batch.

    Returns the number of entities.  Driver errors become
    :class:`~studentstatus.errors.StorageError` (a taken key:
    :class:`~studentstatus.errors.ConflictError`).
    """
    dbapi_conn = cast("psycopg.Connection[Any]", conn.connection.dbapi_connection)
    layouts = encoder.tables
    n = 0
    for kind, items in batches:
        n += len(items)
        for i, port in enumerate(ENCODED_KINDS[kind]):
            data = b"".join([item[i] for item in items])
            if not data:
                continue
            try:
                with dbapi_conn.cursor() as cur, cur.copy(layouts[port].sql) as copy:
                    copy.write(data)
            except Exception as exc:
                raise_translated(exc, f"COPY into {port}")
    return n


AUDIT_COLUMNS = (
    "seq", "at", "operator", "action", "subject", "reason", "before", "after", "prev_hash", "hash",
    "chain",
)  # fmt: skip
"""The audit table's columns, in the order of :data:`~studentstatus.domain.audit.SealedRow`
(``at`` second)."""


def audit_copy_text(
    table: sa.Table, dialect: sa.Dialect, at: datetime, rows: Iterable[SealedRow]
) -> Iterator[bytes]:
    r"""The ``COPY`` text of sealed audit entries, in pieces of about a megabyte.

    The same bytes as :func:`copy_rows` sends for ``audit_to_row`` of the same
    entries (the same JSON text and value preparation, psycopg's own escaping
    for any text that needs it), made without an entry object, a row dict or
    a formatter call per row: one f-string a row, the repeated texts (``at``,
    operator, action, reason) made once.

    >>> from datetime import UTC
    >>> from sqlalchemy.dialects import postgresql
    >>> from studentstatus.adapters.sql.tables import build_tables
    >>> from studentstatus.domain.audit import seal_rows
    >>> t = datetime(2025, 9, 1, 8, 0, tzinfo=UTC)
    >>> rows = seal_rows(None, t, [("ministry", "x", "s\t1", "", {}, {"n": 1})], chain="ministry")
    >>> (text,) = audit_copy_text(build_tables().audit_log, postgresql.dialect(), t, rows)
    >>> fields = text.decode().split("\t")
    >>> fields[:8], fields[-1]
    (['1', '2025-09-01 08:00:00', 'ministry', 'x', 's\\t1', '', '{}', '{"n": 1}'], 'ministry\n')
    """
    from psycopg._copy_base import format_row_text
    from psycopg.adapt import Transformer

    if tuple(c.name for c in table.columns) != AUDIT_COLUMNS:  # pragma: no cover
        msg = f"{table.name}: not the audit table's columns"
        raise RuntimeError(msg)
    tx = Transformer(None)

    def formatted(value: Any) -> str:
        buf = bytearray()
        format_row_text([value], tx, buf)
        return buf[:-1].decode()

    def esc(value: Any) -> str:
        # psycopg escapes only backslashes and control characters (none printable)
        if type(value) is str and value.isprintable() and "\\" not in value:
            return value
        return formatted(value)

    at_proc = table.c["at"].type.bind_processor(dialect)
    at_text = formatted(at_proc(at) if at_proc is not None else at)
    known: dict[Any, str] = {}  # the text of the repeated values (operators, actions…)

    def repeated(value: Any) -> str:
        if type(value) is not str:
            return esc(value)
        text = known.get(value)
        if text is None:
            if len(known) > 256:
                known.clear()
            text = known[value] = esc(value)
        return text

    json_text = _json_text
    lines: list[str] = []
    size = 0
    for seq, operator, action, subject, reason, before, after, prev_hash, digest, chain in rows:
        line = (
            f"{seq if type(seq) is int else esc(seq)}\t{at_text}\t{repeated(operator)}\t"
            f"{repeated(action)}\t{esc(subject)}\t{repeated(reason)}\t"
            f"{esc(json_text(before))}\t{esc(json_text(after))}\t{esc(prev_hash)}\t{esc(digest)}"
            f"\t{repeated(chain)}\n"
        )
        lines.append(line)
        size += len(line)
        if size > _COPY_PIECE:
            yield "".join(lines).encode()
            lines = []
            size = 0
    if lines:
        yield "".join(lines).encode()


def copy_audit(conn: Connection, table: sa.Table, at: datetime, rows: Iterable[SealedRow]) -> int:
    """Write sealed audit entries with one ``COPY`` (:func:`audit_copy_text`); returns the
    count.  Driver errors become :class:`~studentstatus.errors.StorageError` (a taken
    ``seq``: :class:`~studentstatus.errors.ConflictError`)."""
    dbapi_conn = cast("psycopg.Connection[Any]", conn.connection.dbapi_connection)
    counted = _Counted(rows)
    try:
        with dbapi_conn.cursor() as cur, cur.copy(_copy_sql(table, AUDIT_COLUMNS)) as copy:
            for piece in audit_copy_text(table, conn.dialect, at, counted):
                copy.write(piece)
    except Exception as exc:
        raise_translated(exc, f"COPY into {table.name}")
    return counted.n


class _Counted:
    """An iterable that counts the items taken from it."""

    def __init__(self, items: Iterable[Any]) -> None:
        self.items = items
        self.n = 0

    def __iter__(self) -> Iterator[Any]:
        for item in self.items:
            self.n += 1
            yield item
