"""Set-based year-end rollover on SQL: the common case applied in the database.

The SQL store offers three methods (an adapter capability the rollover
service looks up with ``getattr``; memory, file and third-party stores go
through the status machine record by record as before):

``records.rollover_rest(rule, …)``
    the ACTIVE records of the scope that :class:`~studentstatus.domain.rollover.RolloverRule`
    does **not** cover, streamed by id: the service classifies them with the
    status machine (done / repeat / new / blocked, or promote/graduate when the
    machine allows it) and writes what changes, as before;
``records.rollover_covered(rule, …)``
    ``(record_id, seq, kindergarten_code, grade)`` of every covered record, sorted
    by id in code-point order (``COLLATE "C"`` on PostgreSQL; ``utf8mb4_bin`` on
    MySQL/MariaDB and SQLite's BINARY already are), with the rows locked
    (``FOR UPDATE`` on PostgreSQL and MySQL/MariaDB; SQLite's unit of work holds
    the write lock): the service counts them and folds the ``(record_id, seq)``
    pairs into the run's events digest, merged with those of the records it
    wrote itself;
``records.rollover_write(rule, …, expected=n)``
    ONE ``INSERT … SELECT`` of the change-log rows and ONE ``UPDATE`` of the records,
    both over the covered records; each must touch exactly ``expected`` rows
    (else :class:`~studentstatus.errors.ConflictError`, and the unit rolls back).

Concurrency: the covered rows are locked from the moment they are read, so
the ``INSERT`` and the ``UPDATE`` see the same set unless another transaction
makes a record eligible in between (then the counts differ and the run fails
with ``ConflictError``).  The records the machine classified earlier in the
same run are not locked: on PostgreSQL/MariaDB, a record read as ``blocked``
whose open request another transaction then closes may be promoted by the
set-based part and counted in both totals (the record path had the analogous
window: the open requests are read once, at the start).

The rows written are the ones the machine writes (the tests compare them,
decoded, with the memory store's): ``seq = version + 1``, kind PROMOTE (or
GRADUATE for a SENIOR), from ACTIVE to ACTIVE (GRADUATED), effective
1 September ``Y``, ``recorded_at``/``operator``/``reason`` of the run, evidence
``[]``; ``before``/``after`` are built in SQL as the same JSON text
``json.dumps`` writes (``{"grade": "JUNIOR", "last_promoted_year": null}``),
cast to ``JSON`` on PostgreSQL.  The record update sets ``grade`` to the next
grade and ``last_promoted_year = Y`` (or ``state = GRADUATED``) and ``version + 1``;
its SET list puts ``grade`` last because MySQL/MariaDB evaluate assignments
left to right with the values already assigned.  On the province-partitioned
schema the change rows take the record's ``province``.

>>> from datetime import date, datetime, timezone
>>> from studentstatus.adapters.sql import SqlStore
>>> from studentstatus.domain.enums import Grade, State
>>> from studentstatus.domain.model import StatusRecord
>>> from studentstatus.domain.rollover import RolloverRule
>>> store = SqlStore("sqlite://", create=True)
>>> rule = RolloverRule(2026, "ministry", datetime(2026, 9, 1, 9, tzinfo=timezone.utc))
>>> with store.unit_of_work() as uow:
...     uow.records.add(StatusRecord("r1", "c1", "1111000001", "110105", State.ACTIVE,
...                                  Grade.NURSERY, date(2025, 9, 1), version=2))
...     uow.records.add(StatusRecord("r2", "c2", "1111000001", "110105", State.ACTIVE,
...                                  None, date(2025, 9, 1)))
...     [r.id for r in uow.records.rollover_rest(rule)]
...     [covered] = uow.records.rollover_covered(rule)
...     covered
...     uow.records.rollover_write(rule, expected=len(covered))
...     uow.records.get("r1").grade, uow.changes.for_record("r1")[0].before
['r2']
[('r1', 3, '1111000001', 'NURSERY')]
1
(<Grade.JUNIOR: 'JUNIOR'>, {'grade': 'NURSERY', 'last_promoted_year': None})
>>> store.close()
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from studentstatus.adapters.sql._rows import CHANGE_COLUMNS
from studentstatus.adapters.sql.tables import SqlTables, UtcDateTime
from studentstatus.domain.enums import ChangeKind, Grade, RequestStatus
from studentstatus.domain.rollover import (
    GRADUATE_STATES,
    NEXT_GRADE,
    PROMOTE_STATES,
    RolloverRule,
)
from studentstatus.errors import ConflictError

__all__ = ["count_settled", "covered_filter", "iter_covered", "settled_filters", "write"]

_GRADES = [g.value for g in Grade]
# What a rollover writes comes from the status machine's transition table (through
# domain.rollover): the state PROMOTE and GRADUATE leave (ACTIVE), the state PROMOTE keeps,
# the state GRADUATE reaches, and the grade that graduates (the one without a next grade).
_ACTIVE = PROMOTE_STATES[0]
assert GRADUATE_STATES[0] is _ACTIVE
assert PROMOTE_STATES[1] is _ACTIVE
_ACTIVE_V = _ACTIVE.value
_GRADUATED_V = GRADUATE_STATES[1].value
(_SENIOR,) = [g.value for g in Grade if g not in NEXT_GRADE]


def covered_filter(t: SqlTables, rule: RolloverRule) -> sa.ColumnElement[bool]:
    """:meth:`RolloverRule.covers` as a SQL condition on ``t.records`` (never NULL).

    Every term is TRUE or FALSE (no NULL), so ``NOT`` of it selects exactly the
    records the rule does not cover.

    >>> from datetime import datetime
    >>> from studentstatus.adapters.sql.tables import build_tables
    >>> sql = str(covered_filter(build_tables(), RolloverRule(2026, "m", datetime(2026, 9, 1))))
    >>> "change_requests.status" in sql and "records.suspended_since IS NULL" in sql
    True
    """
    r, q = t.records, t.change_requests
    # Only a request of the record's own kindergarten holds it back (requests are applied
    # for by kindergartens; a transfer applied for by the destination does not block).
    open_request = (
        sa.select(sa.literal(1))
        .where(
            q.c.record_id == r.c.id,
            q.c.status == RequestStatus.OPEN.value,
            q.c.applicant == sa.literal("kindergarten:", sa.String) + r.c.kindergarten_code,
        )
        .exists()
    )
    return sa.and_(
        r.c.state == _ACTIVE_V,
        r.c.grade.is_not(None),
        r.c.grade.in_(_GRADES),
        sa.or_(r.c.last_promoted_year.is_(None), r.c.last_promoted_year < rule.school_year),
        r.c.entry_date < rule.effective_date,
        r.c.suspended_since.is_(None),
        r.c.cancelled_on.is_(None),
        ~open_request,
    )


def settled_filters(
    t: SqlTables, dialect: str, rule: RolloverRule
) -> tuple[sa.ColumnElement[bool], sa.ColumnElement[bool], sa.ColumnElement[bool]]:
    """``(done, repeat, new)``: the records the rollover leaves alone, as the service classifies
    them (``last_promoted_year >= Y``: ``repeat`` when the grade is among the repeated grades,
    else ``done``; otherwise entered on or after 1 September ``Y``: ``new``).  Never NULL.

    The repeated grades are a JSON list of grade names; a grade is found in its text
    (``LIKE '%"JUNIOR"%'``; grade names hold no ``LIKE`` wildcard).

    >>> from datetime import datetime
    >>> from studentstatus.adapters.sql.tables import build_tables
    >>> done, repeat, new = settled_filters(build_tables(), "sqlite",
    ...                                     RolloverRule(2026, "m", datetime(2026, 9, 1)))
    >>> print(new)
    (records.last_promoted_year IS NULL OR records.last_promoted_year < :last_promoted_year_1) AND records.entry_date >= :entry_date_1
    """  # noqa: E501
    r = t.records
    y = rule.school_year
    promoted = sa.and_(r.c.last_promoted_year.is_not(None), r.c.last_promoted_year >= y)
    repeated: sa.ColumnElement[str] = (
        sa.cast(r.c.repeated_grades, sa.Text)
        if dialect == "postgresql"
        else sa.type_coerce(r.c.repeated_grades, sa.Text)
    )
    quoted = sa.literal('%"', sa.String) + r.c.grade + sa.literal('"%', sa.String)
    in_repeated = sa.and_(r.c.grade.is_not(None), repeated.like(quoted))
    repeat = sa.and_(promoted, in_repeated)
    done = sa.and_(promoted, ~in_repeated)
    new = sa.and_(
        sa.or_(r.c.last_promoted_year.is_(None), r.c.last_promoted_year < y),
        r.c.entry_date >= rule.effective_date,
    )
    return done, repeat, new


def count_settled(
    conn: Connection,
    t: SqlTables,
    dialect: str,
    where: Sequence[sa.ColumnElement[bool]],
    rule: RolloverRule,
) -> dict[str, int]:
    """How many records of ``where`` are ``done``, ``repeat`` and ``new``, and how many are
    left for the machine (``machine``: neither these nor covered), in one scan."""
    done, repeat, new = settled_filters(t, dialect, rule)
    machine = sa.and_(~covered_filter(t, rule), ~done, ~repeat, ~new)
    q = sa.select(
        *(
            sa.func.coalesce(sa.func.sum(sa.case((cond, 1), else_=0)), 0)
            for cond in (done, repeat, new, machine)
        )
    ).where(*where)
    row = conn.execute(q).one()
    return dict(zip(("done", "repeat", "new", "machine"), map(int, row), strict=True))


def iter_covered(
    conn: Connection,
    t: SqlTables,
    dialect: str,
    where: Sequence[sa.ColumnElement[bool]],
    rule: RolloverRule,
    batch_size: int = 5000,
) -> Iterator[list[tuple[str, int, str, str]]]:
    """Batches of ``(record_id, version + 1, kindergarten_code, grade)`` of the covered records.

    One streamed query (server-side cursor on PostgreSQL and MySQL/MariaDB; SQLite's
    cursor steps lazily and is read straight from the driver), in code-point order of
    the id and locking the rows (see the module docs).
    """
    r = t.records
    order: sa.ColumnElement[Any] = r.c.id.collate("C") if dialect == "postgresql" else r.c.id
    q = (
        sa.select(r.c.id, r.c.version + 1, r.c.kindergarten_code, r.c.grade)
        .where(*where, covered_filter(t, rule))
        .order_by(order)
    )
    if dialect == "sqlite":
        # Plain str/int columns: the driver's tuples are the values (no result processing).
        cursor = conn.execute(q).cursor
        try:
            while batch := cursor.fetchmany(batch_size):
                yield cast("list[tuple[str, int, str, str]]", batch)
        finally:
            cursor.close()
        return
    q = q.with_for_update(of=r) if dialect == "postgresql" else q.with_for_update()
    for part in conn.execute(q.execution_options(yield_per=batch_size)).partitions():
        yield [(row[0], row[1], row[2], row[3]) for row in part]


def _json_text(dialect: str, expr: sa.ColumnElement[Any]) -> sa.ColumnElement[Any]:
    """JSON text for a JSON column: PostgreSQL needs the cast, the others store text."""
    if dialect == "postgresql":
        return sa.cast(expr, sa.JSON)
    return expr


def _dumps(value: object) -> str:
    return json.dumps(value)


def write(
    conn: Connection,
    t: SqlTables,
    dialect: str,
    partitioned: bool,
    where: Sequence[sa.ColumnElement[bool]],
    rule: RolloverRule,
    expected: int,
) -> int:
    """INSERT the change rows and UPDATE the covered records; both must touch ``expected`` rows."""
    r, c = t.records, t.change_log
    senior = r.c.grade == _SENIOR
    y = rule.school_year

    def text(value: str) -> sa.ColumnElement[str]:
        return sa.literal(value, sa.String)

    # before (PROMOTE): {"grade": "<old>", "last_promoted_year": <old or null>}
    lpy_text = sa.func.coalesce(sa.cast(r.c.last_promoted_year, sa.String), text("null"))
    before_promote = text('{"grade": "') + r.c.grade + text('", "last_promoted_year": ') + lpy_text
    before_promote = before_promote + text("}")
    after_promote = sa.case(
        *(
            (
                r.c.grade == g.value,
                text(_dumps({"grade": NEXT_GRADE[g].value, "last_promoted_year": y})),
            )
            for g in NEXT_GRADE
        ),
    )
    before = sa.case((senior, text(_dumps({"state": _ACTIVE_V}))), else_=before_promote)
    after = sa.case((senior, text(_dumps({"state": _GRADUATED_V}))), else_=after_promote)
    columns = list(CHANGE_COLUMNS)
    values: list[sa.ColumnElement[Any]] = [
        r.c.id,
        r.c.version + 1,
        sa.case((senior, text(ChangeKind.GRADUATE.value)), else_=text(ChangeKind.PROMOTE.value)),
        text(_ACTIVE_V),
        sa.case((senior, text(_GRADUATED_V)), else_=text(_ACTIVE_V)),
        sa.literal(rule.effective_date, sa.Date),
        sa.literal(rule.recorded_at, UtcDateTime()),
        text(rule.operator),
        text(rule.reason),
        _json_text(dialect, text("[]")),
        _json_text(dialect, before),
        _json_text(dialect, after),
    ]
    if partitioned:
        columns.append("province")
        values.append(r.c.province)
    cond = [*where, covered_filter(t, rule)]
    # SQLAlchemy 2.1 keeps an INSERT's row count only when asked.
    counted = {"preserve_rowcount": True}
    insert = sa.insert(c).from_select(columns, sa.select(*values).where(*cond))
    inserted = conn.execute(insert, execution_options=counted).rowcount
    # MySQL/MariaDB assign left to right with the new values: grade goes last.
    update = (
        sa.update(r)
        .where(*cond)
        .ordered_values(
            (r.c.last_promoted_year, sa.case((senior, r.c.last_promoted_year), else_=y)),
            (r.c.state, sa.case((senior, text(_GRADUATED_V)), else_=r.c.state)),
            (r.c.version, r.c.version + 1),
            (
                r.c.grade,
                sa.case(
                    *((r.c.grade == g.value, text(n.value)) for g, n in NEXT_GRADE.items()),
                    else_=r.c.grade,
                ),
            ),
        )
    )
    updated = conn.execute(update, execution_options=counted).rowcount
    if inserted != expected or updated != expected:
        msg = (
            f"rollover {y}: {expected} records were eligible, {inserted} change rows and "
            f"{updated} record updates were written (someone changed records meanwhile)"
        )
        raise ConflictError(msg)
    return int(updated)
