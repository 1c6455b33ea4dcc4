"""Private row mappers: domain entities <-> plain dicts for SQLAlchemy Core.

Entities whose columns are their fields are mapped **table-driven** (:class:`FieldMap`: one
converter per field that needs one — an enum to its value, a tuple to a JSON list — computed
once from the attrs class): records, change-log events, issued numbers, problems, attendance
and audit entries, the bulk import's ``*_values`` (column order) included.  Measured on the
import (``bench/import_instructions.py``, 2,000 rows, callgrind), table-driven records, events
and numbers cost 1.0 % more instructions per imported row than written-out mappers (1,298,203
against 1,285,320, 2026-12-07): far below the 10 % a second, hand-written path must pay to
stay.  Children (their document and guardians are nested) and the nested entities
(kindergartens with licences, requests with steps, roster entries with a document) stay
written out.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from datetime import date, datetime
from typing import Any, Generic, TypeVar

import attrs

from studentstatus.domain.approvals import pending_key
from studentstatus.domain.enums import (
    AbsenceReason,
    AttendanceStatus,
    ChangeKind,
    Grade,
    KindergartenType,
    LicenceState,
    NumberKind,
    ProblemKind,
    ProblemStatus,
    RequestStatus,
    Role,
    Sex,
    State,
    StepDecision,
    VerificationResult,
)
from studentstatus.domain.model import (
    ApprovalStep,
    AttendanceEntry,
    AuditEntry,
    ChangeRequest,
    Child,
    DocumentKind,
    Guardian,
    IdentityDocument,
    Inspection,
    IssuedNumber,
    Kindergarten,
    Licence,
    ProblemRecord,
    RosterEntry,
    StatusChange,
    StatusRecord,
)

Row = Mapping[Any, Any]

E = TypeVar("E")
_In = Callable[[Any], Any]


def _enum(kind: type[enum.Enum], *, optional: bool = False) -> tuple[_In, _In]:
    if optional:
        return (lambda v: None if v is None else v._value_), (
            lambda v: None if v is None else kind(v)
        )
    return (lambda v: v._value_), kind


_TUPLE: tuple[_In, _In] = (list, tuple)
_DICT: tuple[_In, _In] = (dict, dict)


class FieldMap(Generic[E]):
    """An attrs entity whose columns are its fields, mapped both ways.

    ``converters`` names the fields that need one: ``(to the row, from the row)``; the
    others pass as they are (dates and datetimes go to SQLAlchemy's own types).

    >>> from studentstatus.domain.model import AttendanceEntry
    >>> m = FieldMap(AttendanceEntry, status=_enum(AttendanceStatus))
    >>> e = AttendanceEntry("r1", date(2024, 9, 2), AttendanceStatus.PRESENT)
    >>> m.to_row(e)["status"], m.from_row(m.to_row(e)) == e
    ('present', True)
    """

    def __init__(self, cls: type[E], **converters: tuple[_In, _In]) -> None:
        names = [f.name for f in attrs.fields(cls)]  # type: ignore[arg-type]
        unknown = set(converters) - set(names)
        if unknown:
            msg = f"{cls.__name__} has no fields {sorted(unknown)}"
            raise ValueError(msg)
        self.cls = cls
        self._out = [(n, converters[n][0] if n in converters else None) for n in names]
        self._in = [(n, converters[n][1] if n in converters else None) for n in names]

    @property
    def columns(self) -> tuple[str, ...]:
        """The column names, in field order (the order of :meth:`values`)."""
        return tuple(n for n, _ in self._out)

    def to_row(self, entity: E) -> dict[str, Any]:
        """The entity's column values."""
        return {n: (f(getattr(entity, n)) if f else getattr(entity, n)) for n, f in self._out}

    def values(self, entity: E) -> list[Any]:
        """The entity's column values as a list in :attr:`columns` order (bulk encoders)."""
        return [f(getattr(entity, n)) if f else getattr(entity, n) for n, f in self._out]

    def from_row(self, row: Row) -> E:
        """The entity of a row (extra columns, e.g. ``province``, are ignored)."""
        return self.cls(**{n: (f(row[n]) if f else row[n]) for n, f in self._in})


def _d(value: str | None) -> date | None:
    return date.fromisoformat(value) if value else None


def _dt(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _iso(value: date | None) -> str | None:
    return value.isoformat() if value is not None else None


def record_numbers(record: StatusRecord) -> list[str]:
    """The record's distinct numbers, in order: temporary, national, former ones.

    >>> import attrs
    >>> rec = StatusRecord("r1", "c1", "1111000001", "110105", State.PENDING, None, None,
    ...                    temp_number="L1", national_number="G1", former_numbers=("L1", "X"))
    >>> record_numbers(rec), record_numbers(attrs.evolve(rec, former_numbers=()))
    (['L1', 'G1', 'X'], ['L1', 'G1'])
    """
    temp, national = record.temp_number, record.national_number
    if not record.former_numbers:  # a new record (every row of a bulk import): no list work
        if not national:
            return [temp] if temp else []
        return [national] if not temp or temp == national else [temp, national]
    found = [n for n in (temp, national) if n]
    found.extend(record.former_numbers)
    return list(dict.fromkeys(found))


# kindergartens ---------------------------------------------------------------------------


def kindergarten_to_row(k: Kindergarten) -> dict[str, Any]:
    return {
        "school_code": k.school_code,
        "uscc": k.uscc,
        "name": k.name,
        "region_code": k.region_code,
        "type": k.type.value,
        "inclusive": k.inclusive,
        "licences": [
            {
                "number": lic.number,
                "issuer": lic.issuer,
                "issued": lic.issued.isoformat(),
                "valid_until": lic.valid_until.isoformat(),
                "state": lic.state.value,
                "inspections": [
                    {"year": i.year, "passed": i.passed, "note": i.note} for i in lic.inspections
                ],
            }
            for lic in k.licences
        ],
        "version": k.version,
        "moving_to": k.moving_to,
        "move_proposed_by": k.move_proposed_by,
    }


def kindergarten_from_row(r: Row) -> Kindergarten:
    return Kindergarten(
        school_code=r["school_code"],
        uscc=r["uscc"],
        name=r["name"],
        region_code=r["region_code"],
        type=KindergartenType(r["type"]),
        inclusive=bool(r["inclusive"]),
        licences=tuple(
            Licence(
                number=lic["number"],
                issuer=lic["issuer"],
                issued=date.fromisoformat(lic["issued"]),
                valid_until=date.fromisoformat(lic["valid_until"]),
                state=LicenceState(lic["state"]),
                inspections=tuple(
                    Inspection(i["year"], bool(i["passed"]), i["note"]) for i in lic["inspections"]
                ),
            )
            for lic in r["licences"]
        ),
        version=r["version"],
        moving_to=r.get("moving_to"),
        move_proposed_by=r.get("move_proposed_by"),
    )


# children --------------------------------------------------------------------------------

# The *_values functions below read an enum member's value as ``member._value_``, the
# attribute itself: ``member.value`` goes through enum's property, several times slower, and
# the bulk paths read millions of them.


CHILD_COLUMNS = (
    "id",
    "name",
    "sex",
    "birth_date",
    "document_type",
    "document_number",
    "nationality",
    "ethnicity",
    "hukou_region",
    "hukou_rural",
    "residence_region",
    "guardians",
    "left_behind",
    "disability",
    "orphan",
    "version",
)


def child_values(c: Child) -> list[Any]:
    """The column values of a child, in :data:`CHILD_COLUMNS` order (the bulk encoders')."""
    doc = c.document
    return [
        c.id,
        c.name,
        c.sex._value_,
        c.birth_date,
        doc.type._value_ if doc is not None else None,
        doc.number if doc is not None else None,
        c.nationality,
        c.ethnicity,
        c.hukou_region,
        c.hukou_rural,
        c.residence_region,
        [{"name": g.name, "relation": g.relation, "phone": g.phone} for g in c.guardians],
        c.left_behind,
        c.disability,
        c.orphan,
        c.version,
    ]


def child_to_row(c: Child) -> dict[str, Any]:
    return dict(zip(CHILD_COLUMNS, child_values(c), strict=True))


def _document(type_: str | None, number: str | None) -> IdentityDocument | None:
    if type_ is None:
        return None
    return IdentityDocument(DocumentKind(type_), number or "")


def child_from_row(r: Row) -> Child:
    return Child(
        id=r["id"],
        name=r["name"],
        sex=Sex(r["sex"]),
        birth_date=r["birth_date"],
        document=_document(r["document_type"], r["document_number"]),
        nationality=r["nationality"],
        ethnicity=r["ethnicity"],
        hukou_region=r["hukou_region"],
        hukou_rural=bool(r["hukou_rural"]),
        residence_region=r["residence_region"],
        guardians=tuple(Guardian(g["name"], g["relation"], g["phone"]) for g in r["guardians"]),
        left_behind=bool(r["left_behind"]),
        disability=bool(r["disability"]),
        orphan=bool(r["orphan"]),
        version=r["version"],
    )


# records ---------------------------------------------------------------------------------


_BOOL: tuple[_In, _In] = (bool, bool)
_GRADES: tuple[_In, _In] = (
    lambda grades: [g._value_ for g in grades],
    lambda values: tuple(Grade(g) for g in values),
)

RECORDS: FieldMap[StatusRecord] = FieldMap(
    StatusRecord,
    state=_enum(State),
    grade=_enum(Grade, optional=True),
    former_numbers=_TUPLE,
    verification=_enum(VerificationResult, optional=True),
    county_confirmed=_BOOL,
    repeated_grades=_GRADES,
    skipped=_BOOL,
    state_before_cancel=_enum(State, optional=True),
)
RECORD_COLUMNS = RECORDS.columns
record_values = RECORDS.values
"""The column values of a record, in :data:`RECORD_COLUMNS` order."""
record_to_row = RECORDS.to_row
record_from_row = RECORDS.from_row


# change log ------------------------------------------------------------------------------


CHANGES: FieldMap[StatusChange] = FieldMap(
    StatusChange,
    kind=_enum(ChangeKind),
    from_state=_enum(State, optional=True),
    to_state=_enum(State),
    evidence=_TUPLE,
    before=_DICT,
    after=_DICT,
)
CHANGE_COLUMNS = CHANGES.columns
change_values = CHANGES.values
"""The column values of a change, in :data:`CHANGE_COLUMNS` order."""
change_to_row = CHANGES.to_row
change_from_row = CHANGES.from_row


def request_to_row(q: ChangeRequest) -> dict[str, Any]:
    return {
        "id": q.id,
        "record_id": q.record_id,
        "kind": q.kind.value,
        "applicant": q.applicant,
        "created_at": q.created_at,
        "steps": [
            {
                "role": s.role.value,
                "scope": s.scope,
                "due": _iso(s.due),
                "decision": s.decision.value,
                "decided_by": s.decided_by,
                "decided_at": s.decided_at.isoformat() if s.decided_at is not None else None,
                "reason": s.reason,
            }
            for s in q.steps
        ],
        "status": q.status.value,
        "effective_date": q.effective_date,
        "to_kindergarten": q.to_kindergarten,
        "until": q.until,
        "reason": q.reason,
        "evidence": list(q.evidence),
        "open_record_id": q.record_id if q.status is RequestStatus.OPEN else None,
        **_pending_columns(q),
        "version": q.version,
    }


def _pending_columns(q: ChangeRequest) -> dict[str, Any]:
    key = pending_key(q)
    if key is None:
        return {"pending_role": None, "pending_scope": None, "pending_due": None}
    return {"pending_role": key[0].value, "pending_scope": key[1], "pending_due": key[2]}


def request_from_row(r: Row) -> ChangeRequest:
    return ChangeRequest(
        id=r["id"],
        record_id=r["record_id"],
        kind=ChangeKind(r["kind"]),
        applicant=r["applicant"],
        created_at=r["created_at"],
        steps=tuple(
            ApprovalStep(
                role=Role(s["role"]),
                scope=s["scope"],
                due=_d(s["due"]),
                decision=StepDecision(s["decision"]),
                decided_by=s["decided_by"],
                decided_at=_dt(s["decided_at"]),
                reason=s["reason"],
            )
            for s in r["steps"]
        ),
        status=RequestStatus(r["status"]),
        effective_date=r["effective_date"],
        to_kindergarten=r["to_kindergarten"],
        until=r["until"],
        reason=r["reason"],
        evidence=tuple(r["evidence"]),
        version=r["version"],
    )


# problems --------------------------------------------------------------------------------


_PROBLEMS = FieldMap(
    ProblemRecord,
    kind=_enum(ProblemKind),
    status=_enum(ProblemStatus),
    related_record_ids=_TUPLE,
    evidence=_TUPLE,
)
problem_to_row = _PROBLEMS.to_row
problem_from_row = _PROBLEMS.from_row


# numbers, roster, attendance, audit ------------------------------------------------------


ISSUED: FieldMap[IssuedNumber] = FieldMap(IssuedNumber, kind=_enum(NumberKind))
ISSUED_COLUMNS = ISSUED.columns
issued_values = ISSUED.values
"""The column values of an issued number, in :data:`ISSUED_COLUMNS` order."""
issued_to_row = ISSUED.to_row
issued_from_row = ISSUED.from_row


def roster_to_row(e: RosterEntry) -> dict[str, Any]:
    doc = e.document
    return {
        "id": e.id,
        "county_code": e.county_code,
        "kindergarten_name": e.kindergarten_name,
        "child_name": e.child_name,
        "sex": e.sex.value,
        "birth_date": e.birth_date,
        "document_type": doc.type.value if doc is not None else None,
        "document_number": doc.number if doc is not None else None,
        "recorded_at": e.recorded_at,
        "operator": e.operator,
    }


def roster_from_row(r: Row) -> RosterEntry:
    return RosterEntry(
        id=r["id"],
        county_code=r["county_code"],
        kindergarten_name=r["kindergarten_name"],
        child_name=r["child_name"],
        sex=Sex(r["sex"]),
        birth_date=r["birth_date"],
        document=_document(r["document_type"], r["document_number"]),
        recorded_at=r["recorded_at"],
        operator=r["operator"],
    )


_ATTENDANCE = FieldMap(
    AttendanceEntry, status=_enum(AttendanceStatus), reason=_enum(AbsenceReason, optional=True)
)
attendance_to_row = _ATTENDANCE.to_row
attendance_from_row = _ATTENDANCE.from_row


_AUDIT = FieldMap(AuditEntry, before=_DICT, after=_DICT)
audit_to_row = _AUDIT.to_row
audit_from_row = _AUDIT.from_row
