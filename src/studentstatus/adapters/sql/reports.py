"""Report counts computed in the database: ``GROUP BY`` over the SQL adapter's tables.

:class:`SqlReportSource` implements
:class:`~studentstatus.ports.ReportSource` with one aggregate
query per dimension; no record row is loaded into Python, only the grouped
counts (a few thousand rows at most: kindergartens, birth dates, pairs of
region codes).  :func:`studentstatus.services.reports.build_report` picks it
through the unit of work's ``report_source()``
(:class:`~studentstatus.ports.ReportingUnitOfWork`).

"Current" attendance (the latest entry per record and day, corrections
appended later) is selected with ``NOT EXISTS`` a later row for the same
(record, day): the ``(record_id, day, id)`` index answers it.

>>> from datetime import date
>>> from studentstatus.adapters.sql import SqlStore
>>> from studentstatus.ports import ReportScope
>>> store = SqlStore("sqlite://", create=True)
>>> with store.unit_of_work() as uow:
...     src = SqlReportSource(uow._conn, store.tables)
...     src.enrolment(ReportScope("11"))["grade_sex"], src.problems(ReportScope("11"))
({}, {})
>>> store.close()
"""

from __future__ import annotations

from datetime import date
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from studentstatus.adapters.sql.errors import translating
from studentstatus.adapters.sql.tables import SqlTables, region_prefix_filter
from studentstatus.domain.enums import State
from studentstatus.ports import Groups, ReportScope

__all__ = ["SqlReportSource"]


def _bool(value: Any) -> bool | None:
    return None if value is None else bool(value)


def _date(value: Any) -> date | None:
    if value is None or isinstance(value, date):
        return value
    return date.fromisoformat(str(value))


class SqlReportSource:
    """Grouped counts from aggregate SQL queries on ``conn`` (see the module docstring)."""

    def __init__(self, conn: Connection, tables: SqlTables) -> None:
        self._conn = conn
        self._t = tables

    def _where(self, scope: ReportScope) -> list[sa.ColumnElement[bool]]:
        r = self._t.records
        where: list[sa.ColumnElement[bool]] = [r.c.state == State.ACTIVE.value]
        if scope.region_prefix:
            where.append(region_prefix_filter(r.c.region_code, scope.region_prefix))
        if scope.kindergarten_code is not None:
            where.append(r.c.kindergarten_code == scope.kindergarten_code)
        return where

    def _groups(self, query: sa.Select[Any]) -> list[tuple[Any, ...]]:
        with translating("report query"):
            return [tuple(row) for row in self._conn.execute(query)]

    def enrolment(self, scope: ReportScope) -> dict[str, Groups]:
        """See :meth:`ReportSource.enrolment` (five GROUP BY queries)."""
        r, c, k = self._t.records, self._t.children, self._t.kindergartens
        where = self._where(scope)
        n = sa.func.count().label("n")
        out: dict[str, Groups] = {}
        q = (
            sa.select(r.c.region_code, k.c.type, k.c.inclusive, n)
            .select_from(r.outerjoin(k, k.c.school_code == r.c.kindergarten_code))
            .where(*where)
            .group_by(r.c.region_code, k.c.type, k.c.inclusive)
        )
        out["county_type"] = {(a, b, _bool(i)): cnt for a, b, i, cnt in self._groups(q)}
        q = sa.select(r.c.kindergarten_code, n).where(*where).group_by(r.c.kindergarten_code)
        out["kindergarten"] = {(a,): cnt for a, cnt in self._groups(q)}
        joined = r.outerjoin(c, c.c.id == r.c.child_id)
        q = (
            sa.select(r.c.grade, c.c.sex, n)
            .select_from(joined)
            .where(*where)
            .group_by(r.c.grade, c.c.sex)
        )
        out["grade_sex"] = {(g, s): cnt for g, s, cnt in self._groups(q)}
        q = sa.select(c.c.birth_date, n).select_from(joined).where(*where).group_by(c.c.birth_date)
        out["birth_date"] = {(_date(b),): cnt for b, cnt in self._groups(q)}
        q = (
            sa.select(c.c.hukou_region, r.c.region_code, c.c.hukou_rural, n)
            .select_from(joined)
            .where(*where)
            .group_by(c.c.hukou_region, r.c.region_code, c.c.hukou_rural)
        )
        migrant: Groups = {}
        for h, code, rural, cnt in self._groups(q):
            key = (h, code, bool(rural))
            migrant[key] = migrant.get(key, 0) + cnt
        out["migrant"] = migrant
        return out

    def changes_by_kind(self, scope: ReportScope, start: date, end: date) -> Groups:
        """See :meth:`ReportSource.changes_by_kind` (change log joined to records)."""
        r, cl = self._t.records, self._t.change_log
        q = (
            sa.select(cl.c.kind, sa.func.count())
            .select_from(cl.join(r, r.c.id == cl.c.record_id))
            .where(cl.c.effective_date >= start, cl.c.effective_date <= end)
            .group_by(cl.c.kind)
        )
        if scope.region_prefix:
            q = q.where(region_prefix_filter(r.c.region_code, scope.region_prefix))
        if scope.kindergarten_code is not None:
            q = q.where(r.c.kindergarten_code == scope.kindergarten_code)
        return {(kind,): cnt for kind, cnt in self._groups(q)}

    def problems(self, scope: ReportScope) -> Groups:
        """See :meth:`ReportSource.problems`."""
        p = self._t.problems
        q = sa.select(p.c.kind, p.c.status, sa.func.count()).group_by(p.c.kind, p.c.status)
        if scope.region_prefix:
            q = q.where(region_prefix_filter(p.c.county_code, scope.region_prefix))
        if scope.kindergarten_code is not None:
            q = q.where(p.c.kindergarten_code == scope.kindergarten_code)
        return {(kind, status): cnt for kind, status, cnt in self._groups(q)}

    def attendance_by_day(self, scope: ReportScope, start: date, end: date) -> Groups:
        """See :meth:`ReportSource.attendance_by_day` (latest entry per record and day)."""
        r, a = self._t.records, self._t.attendance
        later = a.alias("later")
        newer = (
            sa.select(sa.literal(1))
            .where(later.c.record_id == a.c.record_id, later.c.day == a.c.day, later.c.id > a.c.id)
            .exists()
        )
        q = (
            sa.select(a.c.day, a.c.status, sa.func.count())
            .select_from(a.join(r, r.c.id == a.c.record_id))
            .where(*self._where(scope), a.c.day >= start, a.c.day <= end, ~newer)
            .group_by(a.c.day, a.c.status)
        )
        return {(_date(d), st): cnt for d, st, cnt in self._groups(q)}
