"""Attendance import: validation of every row, atomic files, corrections, absence alerts."""

from __future__ import annotations

import io
import logging
from datetime import date, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from studentstatus.adapters.memory import MemoryStore
from studentstatus.domain.calendar import HolidayCalendar, school_days
from studentstatus.domain.enums import AbsenceReason, AttendanceStatus, Grade, Sex, State
from studentstatus.domain.jurisdiction import Operator
from studentstatus.domain.model import Child, StatusRecord
from studentstatus.domain.monitoring import (
    CaseStatus,
    CaseTrigger,
    absence_alerts,
    current_streak,
    longest_streak,
)
from studentstatus.errors import PermissionDenied
from studentstatus.services.attendance import (
    detect_absences,
    import_attendance,
    list_attendance,
    list_attendance_history,
)
from studentstatus.services.audit import verify

from ._monitoring_world import KGS, NOW, runtime, store_factories

KG = Operator.parse("kindergarten:1111000001")
COUNTY = Operator.parse("county:110105")


def _store_with(records, store=None):  # type: ignore[no-untyped-def]
    store = store if store is not None else MemoryStore()
    with store.unit_of_work() as uow:
        uow.kindergartens.add_many(KGS)
        uow.children.add_many(Child(r.child_id, "儿童", Sex.F, date(2022, 1, 1)) for r in records)
        uow.records.add_many(records)
        uow.commit()
    return store


def _rec(i: int, *, kg: str = "1111000001", region: str = "110105", state=State.ACTIVE, num=None):  # type: ignore[no-untyped-def]
    return StatusRecord(
        f"r{i}", f"c{i}", kg, region, state, Grade.JUNIOR, date(2026, 9, 1), national_number=num
    )


def _csv(*rows: str, header: str = "record_id,date,status,reason") -> io.BytesIO:
    return io.BytesIO(("\n".join([header, *rows]) + "\n").encode())


def _school_days_before(end: date, n: int) -> list[date]:
    days = school_days(end - timedelta(days=3 * n), end)
    return days[-n:]


def test_every_bad_row_is_reported_and_nothing_written() -> None:
    store = _store_with(
        [_rec(1), _rec(2, state=State.SUSPENDED), _rec(3, kg="1111000002", region="110105")]
    )
    rt = runtime(store)
    report = import_attendance(
        rt,
        KG,
        _csv(
            "r1,2026-10-29,present,",  # good
            "r1,2026-10-24,absent,sick",  # Saturday
            "r1,2026-11-02,absent,sick",  # future (today is 2026-10-30)
            "r1,2026-10-28,late,",  # bad status
            "r1,2026-10-27,absent,bored",  # bad reason
            "r1,2026-10-26,present,sick",  # reason on a present day
            "r2,2026-10-29,absent,",  # SUSPENDED record
            "r3,2026-10-29,absent,",  # another kindergarten's child
            "r9,2026-10-29,absent,",  # unknown record
            ",2026-10-29,absent,",  # no record given
            "r1,2026-13-01,absent,",  # impossible date
            "r1,2026-10-29,absent,",  # duplicate of row 1
            "r1,2026-08-31,absent,",  # before entry
        ),
    )
    codes = [(e.row, e.code) for e in report.errors]
    assert codes == [
        (2, "not_school_day"),
        (3, "date_future"),
        (4, "status_invalid"),
        (5, "reason_invalid"),
        (6, "reason_for_present"),
        (7, "record_not_active"),
        (8, "record_not_found"),
        (9, "record_not_found"),
        (10, "record_missing"),
        (11, "date_invalid"),
        (12, "duplicate_row"),
        (13, "before_entry"),
    ]
    assert all(e.message_zh and e.message_en and e.field for e in report.errors)
    assert report.written == 0
    with store.unit_of_work() as uow:
        assert uow.attendance.for_record("r1") == []


def test_national_numbers_resolve_and_corrections_keep_history() -> None:
    g = "G11010520230101002X"
    store = _store_with([_rec(1, num=g)])
    rt = runtime(store)
    first = import_attendance(
        rt, KG, _csv(f"{g},2026-10-29,absent,", header="学籍号,日期,考勤,缺勤原因")
    )
    assert first.ok
    assert first.written == 1
    assert first.corrections == 0
    fix = import_attendance(rt, KG, _csv("r1,2026-10-29,present,"))
    assert fix.ok
    assert fix.corrections == 1
    hist = list_attendance_history(rt, KG, "r1", date(2026, 10, 29))
    assert [e.status for e in hist] == [AttendanceStatus.ABSENT, AttendanceStatus.PRESENT]
    assert hist[0].reason is AbsenceReason.UNKNOWN
    assert [e.status for e in list_attendance(rt, KG, "r1")] == [AttendanceStatus.PRESENT]
    assert all(e.operator == str(KG) and e.recorded_at == NOW for e in hist)
    assert verify(store).ok


def test_only_kindergartens_import_and_out_of_scope_rows_are_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = _store_with([_rec(1), _rec(3, kg="1111000002")])
    rt = runtime(store)
    with caplog.at_level(logging.WARNING), pytest.raises(PermissionDenied):
        import_attendance(rt, COUNTY, _csv("r1,2026-10-29,present,"))
    assert any("role_not_allowed" in r.getMessage() for r in caplog.records)
    with caplog.at_level(logging.WARNING):
        import_attendance(rt, KG, _csv("r3,2026-10-29,present,"))
    assert any("out_of_scope" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("name", ["memory", "files", "sqlite"])
def test_ten_absent_school_days_open_a_case_and_a_present_day_closes_it(tmp_path, name) -> None:  # type: ignore[no-untyped-def]
    factory = dict(store_factories(tmp_path))[name]
    store = _store_with([_rec(1), _rec(2)], factory())
    end = date(2026, 10, 29)
    days = _school_days_before(end, 10)
    rows = [f"r1,{d},absent,personal" for d in days] + [f"r2,{d},present," for d in days]
    rt = runtime(store)
    report = import_attendance(rt, KG, _csv(*rows))
    assert report.ok
    assert len(report.opened_cases) == 1
    assert report.closed_cases == ()
    with store.unit_of_work() as uow:
        (case,) = list(uow.cases.iter(county_prefix="110105"))
    assert case.record_id == "r1"
    assert case.trigger is CaseTrigger.ABSENCE_STREAK
    assert case.last_absent_day == end
    back = import_attendance(rt, KG, _csv("r1,2026-10-30,present,"))
    assert back.closed_cases == (case.id,)
    with store.unit_of_work() as uow:
        assert uow.cases.get(case.id).status is CaseStatus.RETURNED
    assert verify(store).ok
    store.close()


def test_nine_days_do_not_open_a_case_but_the_month_share_can() -> None:
    store = _store_with([_rec(1)])
    rt = runtime(store)
    days = _school_days_before(date(2026, 10, 29), 9)
    report = import_attendance(rt, KG, _csv(*[f"r1,{d},absent," for d in days]))
    assert report.opened_cases == ()
    # October 2026 has 22 weekday school days: 12 absences (> 50 %) in non-consecutive days.
    more = [d for d in school_days(date(2026, 10, 1), date(2026, 10, 16)) if d not in days]
    picks = more[::1][:3]
    report = import_attendance(rt, KG, _csv(*[f"r1,{d},absent," for d in picks]))
    assert len(report.opened_cases) == 1
    with store.unit_of_work() as uow:
        case = uow.cases.get(report.opened_cases[0])
    assert case.trigger in (CaseTrigger.ABSENCE_MONTH_SHARE, CaseTrigger.ABSENCE_STREAK)


def test_holidays_are_not_school_days() -> None:
    cal = HolidayCalendar(holidays=frozenset({date(2026, 10, 1)}))
    store = _store_with([_rec(1)])
    rt = runtime(store)
    rt.calendar = cal
    report = import_attendance(rt, KG, _csv("r1,2026-10-01,absent,"))
    assert [e.code for e in report.errors] == ["not_school_day"]


def test_detect_absences_scans_the_county() -> None:
    store = _store_with([_rec(1)])
    with store.unit_of_work() as uow:
        from studentstatus.domain.model import AttendanceEntry

        uow.attendance.add_many(
            AttendanceEntry("r1", d, AttendanceStatus.ABSENT)
            for d in _school_days_before(date(2026, 10, 30), 10)
        )
        uow.commit()
    rt = runtime(store)
    opened, closed = detect_absences(rt, COUNTY)
    assert len(opened) == 1
    assert closed == []
    assert detect_absences(rt, COUNTY) == ([], [])  # one open case per record
    with pytest.raises(PermissionDenied):
        detect_absences(rt, Operator.parse("county:440305"), region="110105")


# ---------------------------------------------------------------- pure rules, properties

_days = school_days(date(2026, 9, 1), date(2026, 10, 30))


@settings(max_examples=200)
@given(st.lists(st.booleans(), min_size=len(_days), max_size=len(_days)))
def test_streak_rules_agree_with_a_naive_scan(absent: list[bool]) -> None:
    marks = {
        d: AttendanceStatus.ABSENT if a else AttendanceStatus.PRESENT for d, a in zip(_days, absent)
    }
    best = run = 0
    for a in absent:
        run = run + 1 if a else 0
        best = max(best, run)
    assert longest_streak(_days, marks)[0] == best
    tail = 0
    for a in reversed(absent):
        if not a:
            break
        tail += 1
    assert current_streak(_days, marks) == tail
    months = {(2026, 9): 22, (2026, 10): 22}
    alerts = absence_alerts(_days, marks, month_school_days=months)
    assert any(a.trigger is CaseTrigger.ABSENCE_STREAK for a in alerts) == (best >= 10)
    for m in months:
        n = sum(1 for d, a in zip(_days, absent) if a and (d.year, d.month) == m)
        fired = any(a.month == m for a in alerts)
        assert fired == (n / months[m] > 0.5)


def test_a_returned_child_is_not_flagged_again_for_the_old_absences() -> None:
    store = _store_with([_rec(1)])
    rt = runtime(store)
    old = school_days(date(2026, 9, 28), date(2026, 10, 12))[-10:]
    rt.clock.advance(days=-18)  # type: ignore[attr-defined]  # 2026-10-12
    first = import_attendance(rt, KG, _csv(*[f"r1,{d},absent," for d in old]))
    assert len(first.opened_cases) == 1
    rt.clock.advance(days=1)  # type: ignore[attr-defined]
    back = import_attendance(rt, KG, _csv("r1,2026-10-13,present,"))
    assert back.closed_cases == first.opened_cases
    rt.clock.advance(days=1)  # type: ignore[attr-defined]
    again = import_attendance(rt, KG, _csv("r1,2026-10-14,present,"))
    assert again.opened_cases == ()  # the old streak is covered by the closed case
    new = school_days(date(2026, 10, 15), date(2026, 10, 28))
    rt.clock.advance(days=14)  # type: ignore[attr-defined]
    later = import_attendance(rt, KG, _csv(*[f"r1,{d},absent," for d in new]))
    assert len(later.opened_cases) == 1  # ten new absences: a new case
    with store.unit_of_work() as uow:
        case = uow.cases.get(later.opened_cases[0])
    assert case.last_absent_day == date(2026, 10, 28)
