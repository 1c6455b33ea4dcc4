"""Entities and value objects: kindergartens, children, status records, events…

All are ``attrs`` frozen classes: changing one means building a new one with
:func:`attrs.evolve`.  Validation of business rules does not happen in the
constructors (they only hold data); the checks in :mod:`studentstatus.domain`
return every unmet rule as a :class:`~studentstatus.errors.Violation`.

Identity numbers are personal information: reprs mask them, and the G, J and L
numbers too (:func:`~studentstatus.errors.mask_number`; the rule is in
``docs/concepts/privacy.md``).

>>> from datetime import date
>>> doc = IdentityDocument(DocumentKind.RESIDENT, "11010520200315002X")
>>> doc
IdentityDocument(type=<DocumentType.RESIDENT: 'resident'>, number='11****************')
>>> g = Guardian("王芳", "mother", "+8613800138000")
>>> child = Child("c1", "王小明", Sex.M, date(2020, 3, 15), doc, guardians=(g,))
>>> "11010520200315002X" in repr(child)
False
>>> rec = StatusRecord("r1", "c1", "1111000001", "110105", State.PENDING, Grade.JUNIOR,
...                    entry_date=date(2023, 9, 1))
>>> rec.version
0
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import attrs

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
from studentstatus.errors import mask_number
from studentstatus.ids import DocumentType as DocumentKind

__all__ = [
    "ApprovalStep",
    "AttendanceEntry",
    "AuditEntry",
    "ChangeRequest",
    "Child",
    "DocumentKind",
    "Guardian",
    "IdentityDocument",
    "Inspection",
    "IssuedNumber",
    "Kindergarten",
    "Licence",
    "ProblemRecord",
    "RosterEntry",
    "StatusChange",
    "StatusRecord",
]

FieldValues = dict[str, Any]
"""Before/after values of the fields a change touched (JSON-ready: str, int, bool, None)."""


@attrs.frozen
class Inspection:
    """One annual inspection (年检) of a licence."""

    year: int
    passed: bool
    note: str = ""


@attrs.frozen
class Licence:
    """A kindergarten's operating licence (办学许可证)."""

    number: str
    issuer: str
    issued: date
    valid_until: date
    state: LicenceState = LicenceState.VALID
    inspections: tuple[Inspection, ...] = ()


@attrs.frozen
class Kindergarten:
    """A kindergarten: 10-digit school code, USCC, county, type, licences.

    ``moving_to``/``move_proposed_by``: a pending move to another county, proposed by
    one side and waiting for the other (``services.kindergartens.move_kindergarten``).
    """

    school_code: str
    uscc: str
    name: str
    region_code: str
    type: KindergartenType
    inclusive: bool = False
    licences: tuple[Licence, ...] = ()
    version: int = 0
    moving_to: str | None = None
    move_proposed_by: str | None = None


def _mask_number(value: str) -> str:
    return repr(mask_number(value))


def _shown(number: str | None) -> str | None:
    # A G number is "G" + the child's resident ID; J and L numbers hold the birth date.
    return mask_number(number) if number else number


def _mask_g(value: str | None) -> str:
    return repr(_shown(value))


def _mask_g_all(values: tuple[str, ...]) -> str:
    return repr(tuple(_shown(v) for v in values))


@attrs.frozen
class IdentityDocument:
    """An identity document: type and number (masked in repr)."""

    type: DocumentKind
    number: str = attrs.field(repr=_mask_number)


@attrs.frozen
class Guardian:
    """A guardian (监护人): name, relation, phone in E.164."""

    name: str
    relation: str
    phone: str


@attrs.frozen
class Child:
    """A child's identity and family data."""

    id: str
    name: str
    sex: Sex
    birth_date: date
    document: IdentityDocument | None = None
    nationality: str = "CHN"
    ethnicity: str | None = None
    hukou_region: str | None = None
    hukou_rural: bool = False
    residence_region: str | None = None
    guardians: tuple[Guardian, ...] = ()
    left_behind: bool = False
    disability: bool = False
    orphan: bool = False
    version: int = 0


@attrs.frozen
class StatusRecord:
    """A child's student-status record (学籍) at one registration: the projection of its log.

    Every field here can be rebuilt by replaying the record's :class:`StatusChange`
    events in order; ``version`` counts them (optimistic concurrency).  ``repr``
    masks every number (temporary, national, former): a G number embeds the child's
    resident ID, J and L numbers its region and birth date.

    >>> rec = StatusRecord("r1", "c1", "1111000001", "110105", State.ACTIVE, None,
    ...                    date(2024, 9, 1), temp_number="L110105202003150042")
    >>> rec.temp_number, "L**************0042" in repr(rec)
    ('L110105202003150042', True)
    """

    id: str
    child_id: str
    kindergarten_code: str
    region_code: str
    state: State
    grade: Grade | None
    entry_date: date
    temp_number: str | None = attrs.field(default=None, repr=_mask_g)
    national_number: str | None = attrs.field(default=None, repr=_mask_g)
    former_numbers: tuple[str, ...] = attrs.field(default=(), repr=_mask_g_all)
    verification: VerificationResult | None = None
    county_confirmed: bool = False
    suspended_since: date | None = None
    suspended_until: date | None = None
    suspended_days: int = 0
    last_promoted_year: int | None = None
    repeated_grades: tuple[Grade, ...] = ()
    skipped: bool = False
    state_before_cancel: State | None = None
    cancelled_on: date | None = None
    version: int = 0


@attrs.frozen
class StatusChange:
    """One applied change: the event that the change log appends (never rewritten)."""

    record_id: str
    seq: int
    kind: ChangeKind
    from_state: State | None
    to_state: State
    effective_date: date
    recorded_at: datetime
    operator: str
    reason: str = ""
    evidence: tuple[str, ...] = ()
    before: FieldValues = attrs.field(factory=dict)
    after: FieldValues = attrs.field(factory=dict)


@attrs.frozen
class IssuedNumber:
    """A national/temporary number bound to a record; numbers are never reused.

    ``repr`` masks the number (a G number embeds the child's resident ID).

    >>> from datetime import UTC, datetime
    >>> IssuedNumber("G11010520200315002X", NumberKind.G, "r1", datetime(2025, 9, 1, tzinfo=UTC))
    IssuedNumber(number='G11****************', kind=<NumberKind.G: 'G'>, record_id='r1', ...)
    """

    number: str = attrs.field(repr=_mask_g)
    kind: NumberKind
    record_id: str
    issued_at: datetime


@attrs.frozen
class ProblemRecord:
    """A problem record (问题学籍) handed to the record's county to resolve."""

    id: str
    record_id: str
    kind: ProblemKind
    county_code: str
    kindergarten_code: str
    opened_at: datetime
    due_date: date
    status: ProblemStatus = ProblemStatus.OPEN
    detail: str = ""
    related_record_ids: tuple[str, ...] = ()
    evidence: tuple[str, ...] = ()
    resolution: str | None = None
    resolved_by: str | None = None
    resolved_at: datetime | None = None
    version: int = 0


@attrs.frozen
class ApprovalStep:
    """One step of an approval chain: who must decide, by when, and what they decided."""

    role: Role
    scope: str
    due: date | None = None
    decision: StepDecision = StepDecision.PENDING
    decided_by: str | None = None
    decided_at: datetime | None = None
    reason: str = ""


@attrs.frozen
class ChangeRequest:
    """A change waiting for its approval chain; applied when the last step approves."""

    id: str
    record_id: str
    kind: ChangeKind
    applicant: str
    created_at: datetime
    steps: tuple[ApprovalStep, ...]
    status: RequestStatus = RequestStatus.OPEN
    effective_date: date | None = None
    to_kindergarten: str | None = None
    until: date | None = None
    reason: str = ""
    evidence: tuple[str, ...] = ()
    version: int = 0


@attrs.frozen
class AttendanceEntry:
    """One child's attendance on one day; a correction is a later entry for the same day."""

    record_id: str
    day: date
    status: AttendanceStatus
    reason: AbsenceReason | None = None
    recorded_at: datetime | None = None
    operator: str = ""


@attrs.frozen
class RosterEntry:
    """A child at an unlicensed kindergarten, recorded by the county: no status, no number."""

    id: str
    county_code: str
    kindergarten_name: str
    child_name: str
    sex: Sex
    birth_date: date
    document: IdentityDocument | None = None
    recorded_at: datetime | None = None
    operator: str = ""


@attrs.frozen
class AuditEntry:
    """One hash-chained audit-log entry.

    ``seq`` and ``prev_hash`` are per chain: ``chain`` names the chain the entry
    belongs to (:func:`studentstatus.domain.audit.chain_of` of the operator for
    new entries; ``""`` is the single chain of logs written before chains existed).

    >>> from datetime import datetime
    >>> AuditEntry(1, datetime(2025, 9, 1), "county:110105", "x", "y", chain="county:110105").chain
    'county:110105'
    """

    seq: int
    at: datetime
    operator: str
    action: str
    subject: str
    reason: str = ""
    before: FieldValues = attrs.field(factory=dict)
    after: FieldValues = attrs.field(factory=dict)
    prev_hash: str = ""
    hash: str = ""
    chain: str = ""
