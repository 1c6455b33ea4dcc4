"""Daily attendance: bulk import per kindergarten and day, corrections with history, absence alerts.

A kindergarten imports a CSV file with the columns ``record_id`` *or*
``national_number``, ``date``, ``status`` (``present``/``absent``, 出勤/缺勤) and
``reason`` (``sick``/``personal``/``unknown``, 病假/事假/不明; empty means
``unknown`` for an absence).  Chinese headers are accepted (记录号, 学籍号, 日期,
考勤, 缺勤原因).

* **The file is the unit**: every bad row is reported (row, field, code,
  Chinese and English message) and nothing of a file with a bad row is
  written.
* Only **school days** of the runtime's working-day calendar are accepted
  (``not_school_day`` otherwise), never a day after today or before the
  record's entry date, and only for ACTIVE records of the operator's own
  kindergarten.
* A **correction** is a later row for the same (record, day): it is appended,
  the earlier entry stays in the history (``AttendanceRepository.history``).
* After the rows are written (same unit of work), the absence rules of
  :mod:`studentstatus.domain.monitoring` run over every child the file
  touched: a streak of ``policy.absence_streak_days`` absent school days or
  more than ``policy.absence_month_share`` of a month's school days opens a
  suspected-dropout case in the county ledger; a PRESENT day after an open
  case's last absence closes it as RETURNED (attendance resumed).

Memory stays flat in the number of rows: rows are streamed and written in
chunks (:data:`CHUNK`), records are looked up in bulk (``get_many``) and the
attendance history is read in bulk per chunk of children.

>>> import io, random
>>> from datetime import date, datetime, timezone
>>> from studentstatus.adapters.memory import MemoryStore
>>> from studentstatus.domain.enums import Grade, State
>>> from studentstatus.domain.jurisdiction import Operator
>>> from studentstatus.domain.model import StatusRecord
>>> from studentstatus.services.runtime import FixedClock, Runtime
>>> store = MemoryStore()
>>> with store.unit_of_work() as uow:
...     uow.records.add(StatusRecord("r1", "c1", "1111000001", "110105", State.ACTIVE,
...                                  Grade.JUNIOR, date(2025, 9, 1)))
...     uow.commit()
>>> rt = Runtime(store, FixedClock(datetime(2025, 9, 30, 18, tzinfo=timezone.utc)),
...              random.Random(1))
>>> csv = "record_id,date,status,reason\\nr1,2025-09-01,absent,sick\\nr1,2025-09-02,present,\\n"
>>> report = import_attendance(rt, Operator.parse("kindergarten:1111000001"),
...                            io.BytesIO(csv.encode()))
>>> report.ok, report.written
(True, 2)
>>> bad = "record_id,date,status,reason\\nr1,2025-09-06,absent,\\n"  # a Saturday
>>> report = import_attendance(rt, Operator.parse("kindergarten:1111000001"),
...                            io.BytesIO(bad.encode()))
>>> [(e.row, e.code) for e in report.errors], report.written
([(1, 'not_school_day')], 0)
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from datetime import date, datetime
from typing import IO, Any

import attrs

from studentstatus.batching import chunked
from studentstatus.domain.calendar import WorkingDayCalendar, add_working_days, school_days
from studentstatus.domain.enums import AbsenceReason, AttendanceStatus, State
from studentstatus.domain.jurisdiction import Operator
from studentstatus.domain.model import AttendanceEntry, StatusRecord
from studentstatus.domain.monitoring import AbsenceAlert, absence_alerts
from studentstatus.domain.policy import Policy
from studentstatus.errors import PermissionDenied, Violation, mask
from studentstatus.ports import UnitOfWork
from studentstatus.services._renamed import renamed
from studentstatus.services.attendance_reads import fetch_attendance, month_school_day_counts
from studentstatus.services.audit import AuditEvent, audit_many
from studentstatus.services.authority import record_in_scope, region_in_scope, require_role
from studentstatus.services.runtime import Runtime
from studentstatus.tabular import open_table, parse_date

__all__ = [
    "ATTENDANCE_ALIASES",
    "ATTENDANCE_REQUIRED",
    "CHUNK",
    "AttendanceImportReport",
    "RowError",
    "detect_absences",
    "ensure_role",
    "fetch_attendance",
    "import_attendance",
    "list_attendance",
    "list_attendance_history",
    "month_school_day_counts",
]

log = logging.getLogger("studentstatus.services.attendance")

CHUNK = 2000
"""Rows (and children) handled per bulk read/write."""

ATTENDANCE_ALIASES: Mapping[str, str] = {
    "record_id": "record_id",
    "记录号": "record_id",
    "学籍记录号": "record_id",
    "national_number": "national_number",
    "number": "national_number",
    "学籍号": "national_number",
    "date": "date",
    "day": "date",
    "日期": "date",
    "status": "status",
    "考勤": "status",
    "出勤情况": "status",
    "reason": "reason",
    "缺勤原因": "reason",
    "原因": "reason",
}
"""CSV header names (canonical and Chinese) → canonical column."""

ATTENDANCE_REQUIRED: tuple[str, ...] = ("date", "status")
"""Columns an attendance file must have (and ``record_id`` or ``national_number``, which
each row is checked for)."""


@attrs.frozen
class RowError:
    """One rejected row of a batch: row number (from 1), field, code and bilingual message.

    >>> RowError(3, "date", "date_invalid", "日期无效", "the date is invalid").to_dict()["row"]
    3
    """

    row: int
    field: str
    code: str
    message_zh: str
    message_en: str

    @classmethod
    def of(cls, row: int, v: Violation) -> RowError:
        """Wrap a :class:`~studentstatus.errors.Violation` with its row number.

        >>> RowError.of(1, Violation("c", "f", "中", "en")).code
        'c'
        """
        return cls(row, v.field, v.code, v.message_zh, v.message_en)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return attrs.asdict(self)


@attrs.frozen
class AttendanceImportReport:
    """What an import did: rows read, entries written, corrections, errors and case changes.

    >>> AttendanceImportReport(rows=0, written=0).ok
    True
    """

    rows: int
    written: int
    corrections: int = 0
    errors: tuple[RowError, ...] = ()
    opened_cases: tuple[str, ...] = ()
    closed_cases: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        """True when no row was rejected (and the file was written)."""
        return not self.errors

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (``ok`` included)."""
        return {
            "ok": self.ok,
            "rows": self.rows,
            "written": self.written,
            "corrections": self.corrections,
            "errors": [e.to_dict() for e in self.errors],
            "opened_cases": list(self.opened_cases),
            "closed_cases": list(self.closed_cases),
        }


def ensure_role(operator: Operator, action: str) -> None:
    """Deprecated alias of :func:`studentstatus.services.authority.require_role`.

    >>> from studentstatus.domain.jurisdiction import Operator
    >>> ensure_role(Operator.parse("county:110105"), "attendance")
    Traceback (most recent call last):
    ...
    studentstatus.errors.PermissionDenied: role_not_allowed: ...
    """
    require_role(operator, action)


def _v(code: str, field: str, zh: str, en: str) -> Violation:
    return Violation(code, field, zh, en)


def _window_start(first_day: date, policy: Policy, calendar: WorkingDayCalendar) -> date:
    """Earliest day the rules may need: the month start, or a streak's length before."""
    streak_start = add_working_days(first_day, -policy.absence_streak_days, calendar)
    return min(first_day.replace(day=1), streak_start)


def _evaluate(
    rt: Runtime,
    uow: UnitOfWork,
    records: Mapping[str, StatusRecord],
    start: date,
    end: date,
    *,
    operator: str,
    now: datetime,
) -> tuple[list[str], list[str], list[AuditEvent]]:
    """Run the absence rules for ``records`` over [start, end]; open/close cases in ``uow``.

    Absences up to the last absence of an earlier, closed case of the same
    record are not counted again: a child who came back and is absent anew
    gets a new case only for the new absences.
    """
    from studentstatus.services.dropout import apply_alerts, cases_of

    days = school_days(start, end, rt.calendar)
    months = month_school_day_counts({(d.year, d.month) for d in days}, rt.calendar)
    covered: dict[str, date] = {}
    for county in sorted({r.region_code for r in records.values()}):
        for case in cases_of(uow).iter(county_prefix=county):
            if case.record_id in records and not case.status.is_open:
                upto = case.last_absent_day or case.opened_at.date()
                covered[case.record_id] = max(upto, covered.get(case.record_id, upto))
    alerts: dict[str, list[AbsenceAlert]] = {}
    last_present: dict[str, date] = {}
    for chunk in chunked(sorted(records), CHUNK):
        history = fetch_attendance(uow, chunk, start=start, end=end)
        for rid, entries in history.items():
            since = covered.get(rid)
            marks = {e.day: e.status for e in entries if since is None or e.day > since}
            found = absence_alerts(days, marks, month_school_days=months, policy=rt.policy)
            if found:
                alerts[rid] = found
            present = [e.day for e in entries if e.status is AttendanceStatus.PRESENT]
            if present:
                last_present[rid] = max(present)
    return apply_alerts(rt, uow, records, alerts, last_present, operator=operator, now=now)


def import_attendance(
    rt: Runtime,
    operator: Operator,
    source: str | os.PathLike[str] | IO[bytes],
    *,
    chunk_size: int = CHUNK,
    progress: Callable[[int], None] | None = None,
    sheet: str | None = None,
) -> AttendanceImportReport:
    """Import an attendance CSV or ``.xlsx`` workbook (``sheet``: which one; the first by
    default) for the operator's kindergarten (see the module docstring).

    The file is checked as a file first (:func:`studentstatus.tabular.open_table`:
    encoding, a header with ``date`` and ``status``, at least one data row); one that
    fails raises :class:`~studentstatus.tabular.FileRejected` before anything is written.

    ``progress`` is called with the number of rows handled after each chunk.
    Raises :class:`~studentstatus.errors.PermissionDenied` when the role may
    not record attendance; rows about other kindergartens' children are
    reported as ``out_of_scope`` row errors (and logged, masked).
    """
    require_role(operator, "attendance")
    now = rt.clock.now()
    today = rt.clock.today()
    errors: list[RowError] = []
    seen: set[tuple[str, date]] = set()
    touched: dict[str, StatusRecord] = {}
    first_day: date | None = None
    last_day: date | None = None
    rows = written = corrections = 0
    numbers: dict[str, StatusRecord] | None = None
    who = str(operator)
    table = open_table(
        source, aliases=ATTENDANCE_ALIASES, required=ATTENDANCE_REQUIRED, sheet=sheet
    )
    with table, rt.store.unit_of_work() as uow:
        for chunk in chunked(table, chunk_size):
            rows += len(chunk)
            ids = [r.values.get("record_id", "") for r in chunk]
            if numbers is None and any(
                not rid and r.values.get("national_number") for rid, r in zip(ids, chunk)
            ):
                numbers = _number_index(uow, operator)
            found = uow.records.get_many([i for i in ids if i])
            entries: list[AttendanceEntry] = []
            for csv_row, rid in zip(chunk, ids):
                row_errors: list[Violation] = list(csv_row.problems)
                record = _resolve(csv_row.values, rid, found, numbers, row_errors)
                entry = _parse_row(csv_row.values, record, operator, today, rt, row_errors)
                if record is not None and entry is not None:
                    key = (record.id, entry.day)
                    if key in seen:
                        row_errors.append(
                            _v(
                                "duplicate_row",
                                "date",
                                "同一幼儿同一天在文件中出现多次",
                                "the file has this child and day more than once",
                            )
                        )
                    seen.add(key)
                if row_errors:
                    errors.extend(RowError.of(csv_row.number, v) for v in row_errors)
                    continue
                assert record is not None
                assert entry is not None
                entries.append(attrs.evolve(entry, recorded_at=now, operator=who))
                touched[record.id] = record
                first_day = entry.day if first_day is None else min(first_day, entry.day)
                last_day = entry.day if last_day is None else max(last_day, entry.day)
            if not errors and entries:
                existing = fetch_attendance(
                    uow,
                    sorted({e.record_id for e in entries}),
                    start=min(e.day for e in entries),
                    end=max(e.day for e in entries),
                )
                have = {(rid, e.day) for rid, es in existing.items() for e in es}
                corrections += sum((e.record_id, e.day) in have for e in entries)
                written += uow.attendance.add_many(entries)
            if progress is not None:
                progress(len(chunk))
        if errors:
            uow.rollback()
            return AttendanceImportReport(rows=rows, written=0, errors=tuple(errors))
        opened: list[str] = []
        closed: list[str] = []
        events: list[AuditEvent] = []
        if touched and first_day is not None and last_day is not None:
            start = _window_start(first_day, rt.policy, rt.calendar)
            opened, closed, events = _evaluate(
                rt, uow, touched, start, max(last_day, today), operator=who, now=now
            )
        kindergartens = sorted({r.kindergarten_code for r in touched.values()})
        summary = AuditEvent(
            operator=who,
            action="attendance.import",
            subject=",".join(kindergartens) or operator.scope,
            after={
                "rows": rows,
                "written": written,
                "corrections": corrections,
                "first_day": first_day.isoformat() if first_day else None,
                "last_day": last_day.isoformat() if last_day else None,
            },
        )
        audit_many(uow, [summary, *events], at=now)
        uow.commit()
    return AttendanceImportReport(
        rows=rows,
        written=written,
        corrections=corrections,
        opened_cases=tuple(opened),
        closed_cases=tuple(closed),
    )


def _number_index(uow: UnitOfWork, operator: Operator) -> dict[str, StatusRecord]:
    """National, temporary and former numbers → record, over the operator's kindergarten.

    Built once per import, only when a row names a child by number (one
    streamed pass over the kindergarten's records instead of a look-up per row).
    """
    index: dict[str, StatusRecord] = {}
    for rec in uow.records.iter(**operator.list_filter()):
        for n in (rec.national_number, rec.temp_number, *rec.former_numbers):
            if n:
                index[n] = rec
    return index


def _resolve(
    values: Mapping[str, str],
    rid: str,
    found: Mapping[str, StatusRecord],
    numbers: Mapping[str, StatusRecord] | None,
    errors: list[Violation],
) -> StatusRecord | None:
    number = values.get("national_number", "")
    if not rid and not number:
        errors.append(
            _v(
                "record_missing",
                "record_id",
                "缺少学籍记录号或学籍号",
                "give record_id or national_number",
            )
        )
        return None
    if rid:
        rec = found.get(rid)
        if rec is None:
            errors.append(_v("record_not_found", "record_id", "学籍记录不存在", "no such record"))
        return rec
    held = (numbers or {}).get(number)
    if held is None:
        errors.append(
            _v(
                "record_not_found",
                "national_number",
                f"学籍号 {mask(number)} 不属于本园幼儿",
                f"number {mask(number)} is not a child of this kindergarten",
            )
        )
        return None
    return held


def _parse_row(
    values: Mapping[str, str],
    record: StatusRecord | None,
    operator: Operator,
    today: date,
    rt: Runtime,
    errors: list[Violation],
) -> AttendanceEntry | None:
    day: date | None = None
    text = values.get("date", "")
    try:
        day = parse_date(text)
    except ValueError:
        errors.append(
            _v("date_invalid", "date", "日期无效（应为YYYY-MM-DD）", "the date is invalid")
        )
    status: AttendanceStatus | None = None
    try:
        status = AttendanceStatus(AttendanceStatus.parse(values.get("status", "")))
    except ValueError:
        errors.append(
            _v(
                "status_invalid",
                "status",
                "考勤状态应为出勤或缺勤",
                "status must be present or absent",
            )
        )
    reason: AbsenceReason | None = None
    reason_text = values.get("reason", "")
    if status is AttendanceStatus.ABSENT:
        try:
            reason = AbsenceReason(AbsenceReason.parse(reason_text)) if reason_text else None
        except ValueError:
            errors.append(
                _v(
                    "reason_invalid",
                    "reason",
                    "缺勤原因应为病假、事假或不明",
                    "reason must be sick, personal or unknown",
                )
            )
        reason = reason or AbsenceReason.UNKNOWN
    elif status is AttendanceStatus.PRESENT and reason_text:
        errors.append(
            _v(
                "reason_for_present",
                "reason",
                "出勤时不应填写缺勤原因",
                "a present day takes no absence reason",
            )
        )
    if day is not None:
        if day > today:
            errors.append(_v("date_future", "date", "日期晚于今天", "the date is in the future"))
        elif not rt.calendar.is_working_day(day):
            errors.append(
                _v(
                    "not_school_day",
                    "date",
                    "该日不是教学日（工作日）",
                    "the day is not a school (working) day",
                )
            )
    if record is not None:
        if not operator.covers_record(record):
            # Another kindergarten's child: answered exactly like a record that does not exist.
            log.warning(
                "refused: operator=%s action=attendance subject=%s code=out_of_scope",
                operator,
                record.id,
            )
            errors.append(_v("record_not_found", "record_id", "学籍记录不存在", "no such record"))
        elif record.state is not State.ACTIVE:
            errors.append(
                _v(
                    "record_not_active",
                    "record_id",
                    f"学籍状态为{record.state.label_zh}，不能记录考勤",
                    f"the record is {record.state.value}, not ACTIVE",
                )
            )
        elif day is not None and day < record.entry_date:
            errors.append(
                _v("before_entry", "date", "日期早于入园日期", "the day is before the entry date")
            )
    if day is None or status is None or record is None:
        return None
    return AttendanceEntry(record.id, day, status, reason)


def list_attendance(
    rt: Runtime,
    operator: Operator,
    record_id: str,
    *,
    start: date | None = None,
    end: date | None = None,
) -> list[AttendanceEntry]:
    """A record's current attendance (latest entry per day), scope-checked.

    >>> from datetime import datetime, timezone
    >>> from studentstatus.domain.jurisdiction import Operator
    >>> from studentstatus.testing.examples import example_runtime
    >>> rt = example_runtime(datetime(2025, 9, 1, tzinfo=timezone.utc))
    >>> list_attendance(rt, Operator.parse("ministry"), "nope")
    Traceback (most recent call last):
    ...
    studentstatus.errors.NotFoundError: no record nope / 未找到学籍 nope
    """
    with rt.store.unit_of_work() as uow:
        record = _scoped_record(uow, operator, record_id)
        return uow.attendance.for_record(record.id, start=start, end=end)


def list_attendance_history(
    rt: Runtime, operator: Operator, record_id: str, day: date
) -> list[AttendanceEntry]:
    """Every entry recorded for (record, day), oldest first: corrections keep history.

    >>> from datetime import datetime, timezone
    >>> from studentstatus.adapters.memory import MemoryStore
    >>> from studentstatus.domain.jurisdiction import Operator
    >>> from studentstatus.services.runtime import FixedClock, Runtime
    >>> rt = Runtime(MemoryStore(), FixedClock(datetime(2025, 9, 1, tzinfo=timezone.utc)))
    >>> list_attendance_history(rt, Operator.parse("ministry"), "nope", date(2025, 9, 1))
    Traceback (most recent call last):
    ...
    studentstatus.errors.NotFoundError: no record nope / 未找到学籍 nope
    """
    with rt.store.unit_of_work() as uow:
        record = _scoped_record(uow, operator, record_id)
        return uow.attendance.history(record.id, day)


def _scoped_record(uow: UnitOfWork, operator: Operator, record_id: str) -> StatusRecord:
    found = uow.records.get_many([record_id]).get(record_id)
    return record_in_scope(operator, "attendance", found, record_id)


def detect_absences(
    rt: Runtime,
    operator: Operator,
    *,
    region: str | None = None,
    as_of: date | None = None,
) -> tuple[list[str], list[str]]:
    """Run the absence rules over every ACTIVE record in scope; returns (opened, closed) case ids.

    The periodic job a county runs (the import runs the same rules for the
    children it touched).  The window is the current month and the streak
    length before ``as_of`` (default today).  Records are streamed and their
    attendance read in bulk, chunk by chunk.

    >>> from datetime import datetime, timezone
    >>> from studentstatus.domain.jurisdiction import Operator
    >>> from studentstatus.testing.examples import example_runtime
    >>> rt = example_runtime(datetime(2025, 9, 30, tzinfo=timezone.utc))
    >>> detect_absences(rt, Operator.parse("county:110105"))
    ([], [])
    """
    require_role(operator, "monitor")
    prefix = _region_scope(operator, region)
    today = as_of or rt.clock.today()
    now = rt.clock.now()
    start = _window_start(today, rt.policy, rt.calendar)
    opened: list[str] = []
    closed: list[str] = []
    events: list[AuditEvent] = []
    with rt.store.unit_of_work() as uow:
        stream = uow.records.iter(region_prefix=prefix, states=[State.ACTIVE])
        for chunk in chunked(stream, CHUNK):
            o, c, ev = _evaluate(
                rt, uow, {r.id: r for r in chunk}, start, today, operator=str(operator), now=now
            )
            opened += o
            closed += c
            events += ev
        audit_many(uow, events, at=now)
        uow.commit()
    return opened, closed


def _region_scope(operator: Operator, region: str | None) -> str:
    """The region prefix an operator may monitor (``region`` must lie inside its scope)."""
    own = operator.region_prefix
    if own is None:  # kindergartens do not monitor
        require_role(operator, "monitor")
        raise PermissionDenied(str(operator), "action 'monitor'", code="role_not_allowed")
    wanted = own if region is None else region
    region_in_scope(operator, "monitor", wanted)
    return wanted


# Former names (deprecated; not in __all__).
attendance_for = renamed(list_attendance, "attendance_for")
attendance_history = renamed(list_attendance_history, "attendance_history")
