"""Dropout control (控辍保学): the county's three ledgers, comparisons and cases.

A county keeps three ledgers (docs/reference/domain.md#monitoring):

* **eligible children** (适龄儿童台账) — from a population extract of the
  county's children aged 3–5 (:func:`read_population`; CSV ``id_number, name,
  sex, birth_date, hukou_region``), each marked enrolled or not; the
  comparison *population vs status records* gives 适龄未入园 (eligible, no
  live record anywhere); a person whose ``hukou_region`` lies in another county
  is left out, so a city's or province's extract can be given as it is;
* **suspected dropouts** (疑似辍学学生台账) — the open
  :class:`~studentstatus.domain.monitoring.DropoutCase` s, opened by the
  absence rules (:mod:`studentstatus.services.attendance`), by hand
  (:func:`open_case`), or for children in the lost-child queue (transfers
  released by the source kindergarten and never completed);
* **confirmed dropouts** (辍学学生台账) — cases closed as WITHDRAWN.

The comparison *records vs attendance* gives 名在人不在: ACTIVE records with
no PRESENT day in the last ``policy.absence_streak_days`` school days
(a kindergarten that records no attendance at all shows all its children
here: that is the point of the check).

A case records contacts and persuasion attempts (劝返, :func:`record_contact`)
and closes when attendance resumes (a PRESENT day after the last absence:
RETURNED) or when the child's record is WITHDRAWN — through a WITHDRAW change
that goes through the normal approvals (:func:`request_withdrawal` calls
:func:`studentstatus.services.changes.request_change`; the case closes on the
next :func:`refresh_cases`/:func:`get_county_ledgers` once the county approved it).

Every case action is appended to the audit log in the same unit of work.

>>> import random
>>> from datetime import datetime, timezone
>>> from studentstatus.adapters.memory import MemoryStore
>>> from studentstatus.domain.jurisdiction import Operator
>>> from studentstatus.services.runtime import FixedClock, Runtime
>>> rt = Runtime(MemoryStore(), FixedClock(datetime(2025, 10, 8, tzinfo=timezone.utc)),
...              random.Random(3))
>>> led = get_county_ledgers(rt, Operator.parse("county:110105"), "110105")
>>> led.counts()["suspected"], led.eligible_known
(0, False)
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import date, datetime
from typing import IO, Any, cast

import attrs

from studentstatus.batching import chunked
from studentstatus.domain.age import age_on
from studentstatus.domain.calendar import add_working_days
from studentstatus.domain.enums import AttendanceStatus, ChangeKind, Sex, State
from studentstatus.domain.jurisdiction import Operator
from studentstatus.domain.model import StatusRecord
from studentstatus.domain.monitoring import (
    AbsenceAlert,
    CaseContact,
    CaseStatus,
    CaseTrigger,
    ContactKind,
    DropoutCase,
    PopulationPerson,
    absent_on_paper,
    add_contact,
    close_case,
    require_open,
)
from studentstatus.errors import NotFoundError, ValidationError, Violation, mask
from studentstatus.ports import CaseRepository, CaseUnitOfWork, UnitOfWork
from studentstatus.services._renamed import renamed
from studentstatus.services.attendance_reads import fetch_attendance
from studentstatus.services.audit import AuditEvent, audit, audit_many
from studentstatus.services.authority import (
    absent,
    case_in_scope,
    covers_case,
    record_in_scope,
    region_in_scope,
    require_role,
)
from studentstatus.services.runtime import Runtime

__all__ = [
    "POPULATION_ALIASES",
    "CountyLedgers",
    "EligibleChild",
    "apply_alerts",
    "case_dict",
    "cases_of",
    "close_returned",
    "get_case",
    "get_county_ledgers",
    "list_cases",
    "open_case",
    "read_population",
    "record_contact",
    "refresh_cases",
    "request_withdrawal",
]

log = logging.getLogger("studentstatus.services.dropout")

_CHUNK = 2000

POPULATION_ALIASES: Mapping[str, str] = {
    "id_number": "id_number",
    "身份证号": "id_number",
    "身份证件号": "id_number",
    "name": "name",
    "姓名": "name",
    "sex": "sex",
    "性别": "sex",
    "birth_date": "birth_date",
    "出生日期": "birth_date",
    "hukou_region": "hukou_region",
    "户籍所在地": "hukou_region",
    "户口所在地": "hukou_region",
}
"""Population-extract CSV headers (canonical and Chinese) → canonical column."""


def cases_of(uow: UnitOfWork) -> CaseRepository:
    """The unit's case repository; a clear error for a store that has none.

    >>> from studentstatus.adapters.memory import MemoryStore
    >>> with MemoryStore().unit_of_work() as uow:
    ...     list(cases_of(uow).iter())
    []
    """
    if not isinstance(uow, CaseUnitOfWork):
        msg = f"{type(uow).__name__} stores no dropout cases (needs a CaseUnitOfWork with .cases)"
        raise TypeError(msg)
    return uow.cases


def case_dict(case: DropoutCase) -> dict[str, Any]:
    """JSON-ready form of a case.

    >>> from datetime import UTC
    >>> c = DropoutCase("k1", "r1", "110105", "1111000001", CaseTrigger.MANUAL,
    ...                 datetime(2025, 9, 1, tzinfo=UTC))
    >>> case_dict(c)["status"]
    'SUSPECTED'
    """
    return {
        "id": case.id,
        "record_id": case.record_id,
        "county_code": case.county_code,
        "kindergarten_code": case.kindergarten_code,
        "trigger": case.trigger.value,
        "status": case.status.value,
        "status_zh": case.status.label_zh,
        "opened_at": case.opened_at.isoformat(),
        "last_absent_day": case.last_absent_day.isoformat() if case.last_absent_day else None,
        "detail": case.detail,
        "contacts": [
            {"at": c.at.isoformat(), "operator": c.operator, "kind": c.kind.value, "note": c.note}
            for c in case.contacts
        ],
        "withdraw_request_id": case.withdraw_request_id,
        "closed_at": case.closed_at.isoformat() if case.closed_at else None,
        "resolution": case.resolution,
    }


def _required(text: str, field: str, message_en: str, message_zh: str) -> str:
    """``text`` stripped; empty, a :class:`ValidationError` (code ``<field>_required``)."""
    stripped = text.strip()
    if not stripped:
        raise ValidationError(
            message_en, message_zh=message_zh, code=f"{field}_required", field=field
        )
    return stripped


def _case_event(operator: str, action: str, case: DropoutCase, reason: str = "") -> AuditEvent:
    return AuditEvent(
        operator=operator,
        action=action,
        subject=f"case {case.id} record {case.record_id}",
        reason=reason,
        after={"status": case.status.value, "trigger": case.trigger.value},
    )


def _open_by_record(uow: UnitOfWork, counties: Iterable[str]) -> dict[str, DropoutCase]:
    repo = cases_of(uow)
    out: dict[str, DropoutCase] = {}
    for county in sorted(set(counties)):
        for case in repo.iter(county_prefix=county, statuses=[CaseStatus.SUSPECTED]):
            out[case.record_id] = case
    return out


def apply_alerts(
    rt: Runtime,
    uow: UnitOfWork,
    records: Mapping[str, StatusRecord],
    alerts: Mapping[str, Sequence[AbsenceAlert]],
    last_present: Mapping[str, date],
    *,
    operator: str,
    now: datetime,
) -> tuple[list[str], list[str], list[AuditEvent]]:
    """Open a case for each alerted record without one; close open cases whose child came back.

    Returns (opened ids, closed ids, audit events to append); writes in ``uow``
    in bulk (``add_many``/``update_many``).  A case opened here and already
    followed by a PRESENT day is closed at once as RETURNED (both are logged).
    """
    repo = cases_of(uow)
    open_cases = _open_by_record(uow, {r.region_code for r in records.values()})
    new: list[DropoutCase] = []
    events: list[AuditEvent] = []
    for rid in sorted(alerts):
        if rid in open_cases or not alerts[rid]:
            continue
        rec = records[rid]
        first = alerts[rid][0]
        case = DropoutCase(
            id=rt.new_id("case-"),
            record_id=rid,
            county_code=rec.region_code,
            kindergarten_code=rec.kindergarten_code,
            trigger=first.trigger,
            opened_at=now,
            last_absent_day=max(a.last_day for a in alerts[rid]),
            detail="; ".join(a.describe() for a in alerts[rid]),
        )
        new.append(case)
        open_cases[rid] = case
        events.append(_case_event(operator, "case.open", case, case.detail))
    if new:
        repo.add_many(new)
    closing: list[DropoutCase] = []
    for rid, case in sorted(open_cases.items()):
        back = last_present.get(rid)
        if rid not in records or back is None:
            continue
        if case.last_absent_day is not None and back <= case.last_absent_day:
            continue
        if case.last_absent_day is None and back < case.opened_at.date():
            continue
        closed = close_case(
            case,
            CaseStatus.RETURNED,
            at=now,
            by=operator,
            resolution=f"attendance resumed {back.isoformat()} / {back.isoformat()} 起恢复出勤",
        )
        closing.append(closed)
        events.append(_case_event(operator, "case.close", closed, closed.resolution))
    if closing:
        repo.update_many(closing)
    return [c.id for c in new], [c.id for c in closing], events


def get_case(rt: Runtime, operator: Operator, case_id: str) -> DropoutCase:
    """A case, scope-checked (county and above; the case's county must be covered).

    >>> from datetime import datetime, timezone
    >>> from studentstatus.domain.jurisdiction import Operator
    >>> from studentstatus.testing.examples import example_runtime
    >>> rt = example_runtime(datetime(2025, 10, 8, tzinfo=timezone.utc))
    >>> get_case(rt, Operator.parse("county:110105"), "nope")
    Traceback (most recent call last):
    ...
    studentstatus.errors.NotFoundError: no case nope / 未找到控辍案件 nope
    """
    require_role(operator, "monitor")
    with rt.store.unit_of_work() as uow:
        return _scoped_case(uow, operator, case_id)


def list_cases(
    rt: Runtime, operator: Operator, *, include_closed: bool = False
) -> list[DropoutCase]:
    """The cases in the operator's scope, by id: open ones, or every one with ``include_closed``.

    County and above (role ``monitor``); the store is asked for the operator's
    region only, and each case is checked with
    :func:`~studentstatus.services.authority.covers_case`.

    >>> from datetime import datetime, timezone
    >>> from studentstatus.adapters.memory import MemoryStore
    >>> from studentstatus.domain.jurisdiction import Operator
    >>> from studentstatus.services.runtime import FixedClock, Runtime
    >>> rt = Runtime(MemoryStore(), FixedClock(datetime(2025, 10, 8, tzinfo=timezone.utc)))
    >>> list_cases(rt, Operator.parse("county:110105"))
    []
    >>> list_cases(rt, Operator.parse("kindergarten:1111000001"))
    Traceback (most recent call last):
    ...
    studentstatus.errors.PermissionDenied: ...
    """
    require_role(operator, "monitor")
    statuses = None if include_closed else [s for s in CaseStatus if s.is_open]
    with rt.store.unit_of_work() as uow:
        found = cases_of(uow).iter(county_prefix=operator.region_prefix or "", statuses=statuses)
        return [c for c in found if covers_case(operator, c)]


def close_returned(rt: Runtime, operator: Operator, case_id: str, *, reason: str) -> DropoutCase:
    """Close an open case by hand as RETURNED (the child is back: 劝返成功, 销号), with a reason.

    For a return the attendance does not show (yet); a confirmed dropout is
    closed through a WITHDRAW change instead (:func:`request_withdrawal`).  County
    and above, in scope; the closing is audited.  A closed case refuses
    (``case_closed``); an empty reason too (``reason_required``).

    >>> from datetime import datetime, timezone
    >>> from studentstatus.domain.jurisdiction import Operator
    >>> from studentstatus.testing.examples import example_runtime
    >>> rt = example_runtime(datetime(2025, 10, 8, tzinfo=timezone.utc))
    >>> close_returned(rt, Operator.parse("county:110105"), "k9", reason="back")
    Traceback (most recent call last):
    ...
    studentstatus.errors.NotFoundError: no case k9 / 未找到控辍案件 k9
    """
    require_role(operator, "monitor")
    text = _required(reason, "reason", "closing a case needs a reason", "结案须填写理由")
    now = rt.clock.now()
    with rt.store.unit_of_work() as uow:
        case = _scoped_case(uow, operator, case_id, "case_close")
        require_open(case)
        closed = cases_of(uow).update(
            close_case(case, CaseStatus.RETURNED, at=now, by=str(operator), resolution=text)
        )
        audit(uow, _case_event(str(operator), "case.close", closed, text), at=now)
        uow.commit()
    return closed


def _scoped_case(
    uow: UnitOfWork, operator: Operator, case_id: str, action: str = "case"
) -> DropoutCase:
    try:
        found: DropoutCase | None = cases_of(uow).get(case_id)
    except NotFoundError:
        found = None
    return case_in_scope(operator, action, found, case_id)


def open_case(
    rt: Runtime,
    operator: Operator,
    record_id: str,
    *,
    detail: str,
    trigger: CaseTrigger = CaseTrigger.MANUAL,
) -> DropoutCase:
    """Open a suspected-dropout case by hand (a ministry list, a door-to-door check…).

    Refused with ``ValueError`` if the record already has an open case.
    """
    require_role(operator, "monitor")
    now = rt.clock.now()
    with rt.store.unit_of_work() as uow:
        found = uow.records.get_many([record_id]).get(record_id)
        rec = record_in_scope(operator, "case", found, record_id)
        repo = cases_of(uow)
        if any(c.status.is_open for c in repo.for_record(rec.id)):
            raise ValidationError(
                f"record {rec.id} already has an open case",
                message_zh="该幼儿已有未结案件",
                code="case_open",
                field="record_id",
            )
        case = DropoutCase(
            id=rt.new_id("case-"),
            record_id=rec.id,
            county_code=rec.region_code,
            kindergarten_code=rec.kindergarten_code,
            trigger=trigger,
            opened_at=now,
            detail=detail,
        )
        repo.add(case)
        audit(uow, _case_event(str(operator), "case.open", case, detail), at=now)
        uow.commit()
    return case


def record_contact(
    rt: Runtime,
    operator: Operator,
    case_id: str,
    note: str,
    *,
    kind: ContactKind = ContactKind.PERSUASION,
) -> DropoutCase:
    """Record a contact or a persuasion attempt (劝返) on an open case; returns the stored case.

    ``note`` must not be empty (``ValueError``); a closed case refuses.
    """
    require_role(operator, "monitor")
    text = _required(note, "note", "a contact needs a note", "请填写联系记录")
    now = rt.clock.now()
    with rt.store.unit_of_work() as uow:
        case = _scoped_case(uow, operator, case_id)
        updated = cases_of(uow).update(
            add_contact(case, CaseContact(now, str(operator), text, kind))
        )
        audit(
            uow,
            AuditEvent(
                operator=str(operator),
                action=f"case.{kind.value.lower()}",
                subject=f"case {case.id} record {case.record_id}",
                reason=text,
            ),
            at=now,
        )
        uow.commit()
    return updated


def request_withdrawal(
    rt: Runtime,
    operator: Operator,
    case_id: str,
    *,
    reason: str,
    effective: date | None = None,
) -> DropoutCase:
    """Ask for the WITHDRAW change of the case's record through the normal approvals.

    Asks as ``operator`` (the kindergarten applies, the county approves) through
    :func:`studentstatus.services.changes.request_change_in`, in the same unit of work
    that notes the request id on the case and audits it: both commit, or neither.  The
    case closes as WITHDRAWN once the record is WITHDRAWN (:func:`refresh_cases`).
    Whatever the changes service refuses (role, rules) is raised unchanged.
    """
    from studentstatus.services.changes import commit_request, request_change_in

    now = rt.clock.now()
    with rt.store.unit_of_work() as uow:
        case = _scoped_case(uow, operator, case_id, "case.withdraw")
        rec = uow.records.get(case.record_id)
        if not operator.covers_record(rec):
            raise absent("case", case_id)
        require_open(case)
        # The request and the case's note of it: one unit of work, committed together.
        outcome = request_change_in(
            rt, uow, operator, rec.id, ChangeKind.WITHDRAW, effective=effective, reason=reason
        )
        request_id = outcome.request.id if outcome.request is not None else None
        updated = cases_of(uow).update(attrs.evolve(case, withdraw_request_id=request_id))
        audit(
            uow,
            _case_event(str(operator), "case.withdraw_requested", updated, reason),
            at=now,
        )
        commit_request(uow)
    if outcome.applied:  # no approvals asked: the record is WITHDRAWN, the case closes
        refresh_cases(rt, operator, rec.region_code, _check_role=False)
        with rt.store.unit_of_work() as uow:
            return cases_of(uow).get(case_id)
    return updated


def refresh_cases(
    rt: Runtime, operator: Operator, county: str, *, _check_role: bool = True
) -> list[str]:
    """Close open cases of a county whose record became WITHDRAWN (→ WITHDRAWN), and open
    cases for children in the lost-child queue; returns the ids of cases changed.

    >>> from datetime import datetime, timezone
    >>> from studentstatus.domain.jurisdiction import Operator
    >>> from studentstatus.testing.examples import example_runtime
    >>> rt = example_runtime(datetime(2025, 10, 8, tzinfo=timezone.utc))
    >>> refresh_cases(rt, Operator.parse("county:110105"), "110105")
    []
    """
    if _check_role:
        require_role(operator, "monitor")
        _ensure_county(operator, county)
    now = rt.clock.now()
    today = rt.clock.today()
    who = str(operator)
    changed: list[str] = []
    with rt.store.unit_of_work() as uow:
        repo = cases_of(uow)
        open_cases = list(repo.iter(county_prefix=county, statuses=[CaseStatus.SUSPECTED]))
        records = uow.records.get_many([c.record_id for c in open_cases])
        closing: list[DropoutCase] = []
        events: list[AuditEvent] = []
        for case in open_cases:
            rec = records.get(case.record_id)
            if rec is not None and rec.state is State.WITHDRAWN:
                done = close_case(
                    case,
                    CaseStatus.WITHDRAWN,
                    at=now,
                    by=who,
                    resolution="withdrawal approved / 退学已核准",
                )
                closing.append(done)
                events.append(_case_event(who, "case.close", done, done.resolution))
        if closing:
            repo.update_many(closing)
        changed += [c.id for c in closing]
        have = {c.record_id for c in open_cases if c not in closing}
        lost = _lost_records(uow, county, today)
        new = [
            DropoutCase(
                id=rt.new_id("case-"),
                record_id=rec.id,
                county_code=rec.region_code,
                kindergarten_code=rec.kindergarten_code,
                trigger=CaseTrigger.LOST_TRANSFER,
                opened_at=now,
                detail=f"转出未转入（申请 {req_id}） / transfer {req_id} never completed",
            )
            for rec, req_id in lost
            if rec.id not in have
        ]
        if new:
            repo.add_many(new)
            events += [_case_event(who, "case.open", c, c.detail) for c in new]
        changed += [c.id for c in new]
        audit_many(uow, events, at=now)
        uow.commit()
    return changed


def _lost_records(uow: UnitOfWork, county: str, today: date) -> list[tuple[StatusRecord, str]]:
    """Records of ``county`` with a lost transfer (source released, never completed)."""
    from studentstatus.domain.approvals import is_lost_transfer

    lost = [  # open past the last step's due date: the pending step is overdue too
        r
        for r in uow.requests.overdue(today)
        if r.kind is ChangeKind.TRANSFER and is_lost_transfer(r, today)
    ]
    records = uow.records.get_many([r.record_id for r in lost])
    return [
        (records[r.record_id], r.id)
        for r in lost
        if r.record_id in records and records[r.record_id].region_code == county
    ]


def _ensure_county(operator: Operator, county: str) -> None:
    if len(county) != 6 or not county.isdigit():
        raise ValidationError(
            f"county must be a 6-digit region code, not {county[:12]!r}",
            message_zh="县级区划代码应为6位数字",
            code="county_invalid",
            field="county",
        )
    region_in_scope(operator, "dropout", county)


# --------------------------------------------------------------------------------------------
# Population extract


def read_population(
    source: str | os.PathLike[str] | IO[bytes] | Iterable[Mapping[str, str]],
    *,
    sheet: str | None = None,
) -> tuple[list[PopulationPerson], list[tuple[int, Violation]]]:
    """Read a population extract: ``id_number, name, sex, birth_date, hukou_region``.

    Returns the people and every bad row as ``(row, violation)``.  A path or a
    binary stream is a CSV file (UTF-8 with or without BOM, GB18030/GBK, UTF-16;
    Chinese headers too) or an ``.xlsx`` workbook (``sheet``: which one), checked as a
    file first (:class:`~studentstatus.tabular.FileRejected` when it cannot be read,
    lacks ``id_number``, ``name``, ``sex`` or ``birth_date``, or has no data row); an
    iterable of mappings is taken as already-split rows.

    >>> import io
    >>> data = ("身份证号,姓名,性别,出生日期,户籍所在地\\n"
    ...         "11010520200315002X,王小明,男,2020-03-15,110105\\n")
    >>> people, bad = read_population(io.BytesIO(data.encode()))
    >>> people[0].sex, people[0].hukou_region, bad
    (<Sex.M: 'M'>, '110105', [])
    """
    from studentstatus.tabular import parse_date, read_table

    rows: Iterator[tuple[int, Mapping[str, str], Sequence[Violation]]]
    if isinstance(source, str | os.PathLike) or hasattr(source, "read"):
        stream = cast("str | os.PathLike[str] | IO[bytes]", source)
        table = read_table(
            stream,
            aliases=POPULATION_ALIASES,
            required=("id_number", "name", "sex", "birth_date"),
            sheet=sheet,
        )
        rows = ((r.number, r.values, r.problems) for r in table)
    else:
        rows = ((i, dict(r), ()) for i, r in enumerate(source, start=1))
    people: list[PopulationPerson] = []
    bad: list[tuple[int, Violation]] = []
    for number, values, problems in rows:
        errs = list(problems)
        idn = values.get("id_number", "").strip().upper()
        if not idn:
            errs.append(Violation("id_missing", "id_number", "缺少身份证号", "no id number"))
        name = values.get("name", "").strip()
        sex: Sex | None = None
        try:
            sex = Sex.parse(values.get("sex", ""))
        except ValueError:
            errs.append(Violation("sex_invalid", "sex", "性别应为男或女", "sex must be M or F"))
        birth: date | None = None
        try:
            birth = parse_date(values.get("birth_date", ""))
        except ValueError:
            errs.append(
                Violation("date_invalid", "birth_date", "出生日期无效", "invalid birth date")
            )
        hukou = values.get("hukou_region", "").strip() or None
        if errs or sex is None or birth is None:
            bad += [(number, v) for v in errs]
            continue
        people.append(PopulationPerson(idn, name, sex, birth, hukou))
    return people, bad


# --------------------------------------------------------------------------------------------
# Ledgers


@attrs.frozen
class EligibleChild:
    """One line of the eligible-children ledger (id number masked in ``to_dict``).

    The full number is the host's own input (``person.id_number``, from the population
    extract it supplied); the library never prints it.
    """

    person: PopulationPerson
    age: int
    enrolled: bool

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form; the id number is masked."""
        p = self.person
        return {
            "id_number": mask(p.id_number),
            "name": p.name,
            "sex": p.sex.value,
            "birth_date": p.birth_date.isoformat(),
            "hukou_region": p.hukou_region,
            "age": self.age,
            "enrolled": self.enrolled,
        }


@attrs.frozen
class CountyLedgers:
    """A county's three ledgers and comparisons on one day.

    ``eligible`` is empty and ``eligible_known`` False when no population
    extract was given.
    """

    county: str
    as_of: date
    eligible: tuple[EligibleChild, ...]
    eligible_known: bool
    suspected: tuple[DropoutCase, ...]
    confirmed: tuple[DropoutCase, ...]
    absent_on_paper: tuple[str, ...]
    lost_children: tuple[str, ...]
    active_records: int

    @property
    def unenrolled(self) -> tuple[EligibleChild, ...]:
        """适龄未入园: eligible children with no live record."""
        return tuple(e for e in self.eligible if not e.enrolled)

    def counts(self) -> dict[str, int]:
        """Sizes of every ledger and comparison."""
        return {
            "eligible": len(self.eligible),
            "unenrolled": len(self.unenrolled),
            "suspected": len(self.suspected),
            "confirmed": len(self.confirmed),
            "absent_on_paper": len(self.absent_on_paper),
            "lost_children": len(self.lost_children),
            "active_records": self.active_records,
        }

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (id numbers masked)."""
        return {
            "county": self.county,
            "as_of": self.as_of.isoformat(),
            "counts": self.counts(),
            "eligible_known": self.eligible_known,
            "eligible": [e.to_dict() for e in self.eligible],
            "unenrolled": [e.to_dict() for e in self.unenrolled],
            "suspected": [case_dict(c) for c in self.suspected],
            "confirmed": [case_dict(c) for c in self.confirmed],
            "absent_on_paper": list(self.absent_on_paper),
            "lost_children": list(self.lost_children),
        }


def get_county_ledgers(
    rt: Runtime,
    operator: Operator,
    county: str,
    *,
    population: Iterable[PopulationPerson] | None = None,
    as_of: date | None = None,
) -> CountyLedgers:
    """Build the county's ledgers (after :func:`refresh_cases`), see the module docstring.

    County operators see their county; city/province/ministry any county inside
    their scope; kindergartens are refused (``role_not_allowed``).
    """
    require_role(operator, "monitor")
    _ensure_county(operator, county)
    refresh_cases(rt, operator, county, _check_role=False)
    today = as_of or rt.clock.today()
    window_start = add_working_days(today, -(rt.policy.absence_streak_days - 1), rt.calendar)
    with rt.store.unit_of_work() as uow:
        repo = cases_of(uow)
        suspected = tuple(repo.iter(county_prefix=county, statuses=[CaseStatus.SUSPECTED]))
        confirmed = tuple(repo.iter(county_prefix=county, statuses=[CaseStatus.WITHDRAWN]))
        enrolled_numbers: set[str] = set()
        missing_on_paper: list[str] = []
        active = 0
        live = [State.PENDING, State.ACTIVE, State.SUSPENDED, State.ABROAD]
        for chunk in chunked(uow.records.iter(region_prefix=county, states=live), _CHUNK):
            children = uow.children.get_many([r.child_id for r in chunk])
            enrolled_numbers.update(
                c.document.number for c in children.values() if c.document is not None
            )
            actives = [r for r in chunk if r.state is State.ACTIVE]
            active += len(actives)
            present = _present_ids(uow, [r.id for r in actives], window_start, today)
            missing_on_paper += absent_on_paper(((r.id, r.state) for r in actives), present)
        eligible: list[EligibleChild] = []
        if population is not None:
            for person in population:
                age = age_on(person.birth_date, today)
                if not 3 <= age <= 5:
                    continue
                if person.hukou_region and not person.hukou_region.startswith(county):
                    continue  # another county's child
                enrolled = person.id_number in enrolled_numbers or _enrolled_elsewhere(
                    uow, person.id_number
                )
                eligible.append(EligibleChild(person, age, enrolled))
        lost = [rec.id for rec, _req in _lost_records(uow, county, today)]
    return CountyLedgers(
        county=county,
        as_of=today,
        eligible=tuple(eligible),
        eligible_known=population is not None,
        suspected=suspected,
        confirmed=confirmed,
        absent_on_paper=tuple(missing_on_paper),
        lost_children=tuple(lost),
        active_records=active,
    )


def _present_ids(uow: UnitOfWork, ids: Sequence[str], start: date, end: date) -> set[str]:
    if not ids:
        return set()
    found = fetch_attendance(uow, ids, start=start, end=end)
    return {
        rid
        for rid, entries in found.items()
        if any(e.status is AttendanceStatus.PRESENT for e in entries)
    }


def _enrolled_elsewhere(uow: UnitOfWork, number: str) -> bool:
    """A child of the extract may hold a live record in another county: look it up by number.

    Only people not matched in the county's own records get here (usually few).
    """
    for child in uow.children.find_by_document(number):
        if any(r.state.is_live for r in uow.records.for_child(child.id)):
            return True
    return False


# Former names (deprecated; not in __all__).
county_ledgers = renamed(get_county_ledgers, "county_ledgers")
