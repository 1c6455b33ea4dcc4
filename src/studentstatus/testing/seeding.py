"""Fill a store fast with numbered children: the federation tests and benchmarks' data.

:func:`seed_province` writes, through the stores' bulk ports (``COPY`` on
PostgreSQL), licensed kindergartens of one county of a province and ``count``
children with valid resident ID numbers, each with an ACTIVE record holding its G
number and a REGISTER event — what a province looks like after its intake and
national numbering, without running them (they have their own tests and
benchmarks).  Child ``i`` of a region always gets the same ID number
(:func:`resident_number`), so two provinces seeded with the same ``id_region``
and overlapping ranges hold the same children: migrant children registered twice.

>>> resident_number("110105", 0)
'110105202001010015'
>>> from studentstatus.ids import resident
>>> resident.is_valid(resident_number("440303", 1_093_904))
True
>>> from studentstatus.adapters.memory import MemoryStore
>>> store = MemoryStore()
>>> seed_province(store, "11", 3)
['s11-000000000', 's11-000000001', 's11-000000002']
>>> with store.unit_of_work() as uow:
...     uow.records.get("s11-000000001").state.value
'ACTIVE'
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from studentstatus.domain.claims import claim_key, identity_key
from studentstatus.domain.enums import (
    Grade,
    KindergartenType,
    NumberKind,
    Sex,
    State,
    VerificationResult,
)
from studentstatus.domain.machine import register_event
from studentstatus.domain.model import (
    Child,
    Guardian,
    IdentityDocument,
    IssuedNumber,
    Kindergarten,
    Licence,
    StatusRecord,
)
from studentstatus.errors import mask_number
from studentstatus.ids import DocumentType
from studentstatus.ids.resident import check_digit
from studentstatus.ports import Store
from studentstatus.services.audit import AuditEvent, audit_many

__all__ = ["COUNTIES", "child_name", "kindergarten_code", "resident_number", "seed_province"]

COUNTIES: dict[str, str] = {
    "11": "110105",
    "31": "310101",
    "32": "320102",
    "43": "430104",
    "44": "440303",
}
"""The county each seeded province's kindergartens lie in."""

PER_KINDERGARTEN = 300
_BASE = date(2020, 1, 1)
_AT = datetime(2024, 9, 1, 8, tzinfo=UTC)


def resident_number(region: str, i: int) -> str:
    """The ``i``-th resident ID number of ``region`` (birth dates from 1 January 2020 on,
    999 sequence numbers a day; valid check digit)."""
    if not 0 <= i < 999 * 1095:
        msg = "resident_number: i from 0 to 1,093,904"
        raise ValueError(msg)
    birth = _BASE + timedelta(days=i // 999)
    body = f"{region}{birth:%Y%m%d}{i % 999 + 1:03d}"
    return body + check_digit(body)


def kindergarten_code(province: str, k: int) -> str:
    """The school code of the ``k``-th seeded kindergarten of ``province``.

    >>> kindergarten_code("44", 7)
    '4400000007'
    """
    return f"{province}{k:08d}"


def _audit_events(record: StatusRecord) -> list[AuditEvent]:
    return [
        AuditEvent(
            "seed",
            "register",
            record.id,
            after={
                "state": record.state.value,
                "kindergarten_code": record.kindergarten_code,
                "grade": record.grade.value if record.grade else None,
                "temp_number": None,
                "child_id": record.child_id,
            },
        ),
        AuditEvent(
            "seed",
            "issue_number",
            record.id,
            after={"kind": "G", "national_number": mask_number(record.national_number or "")},
        ),
    ]


_NAME_CHARS = "甲乙丙丁戊己庚辛壬癸子丑寅卯辰巳午未申酉"


def child_name(i: int) -> str:
    """The name of seeded child ``i``: a surname and ``i`` written in twenty characters.

    >>> child_name(0), child_name(21)
    ('张甲', '张乙乙')
    """
    digits = ""
    while True:
        i, d = divmod(i, len(_NAME_CHARS))
        digits = _NAME_CHARS[d] + digits
        if i == 0:
            return "张" + digits


def _grade(birth: date) -> Grade:
    return (Grade.SENIOR, Grade.MIDDLE, Grade.JUNIOR)[min(2, birth.year - 2020)]


def seed_province(
    store: Store,
    province: str,
    count: int,
    *,
    first: int = 0,
    id_region: str | None = None,
    chunk: int = 20_000,
    audited: bool = True,
) -> list[str]:
    """Write children ``first`` … ``first + count - 1`` of ``province`` (see the module
    docs); ``id_region`` is the region of their ID numbers (default: the province's
    county).  With ``audited`` each record gets the ``register`` and ``issue_number``
    audit entries the services would write, so that ``audit verify --replay`` holds.
    Returns the record ids (``s44-000000012``…)."""
    county = COUNTIES[province]
    region = id_region or county
    ids: list[str] = []
    with store.unit_of_work() as uow:
        kgs = range(first // PER_KINDERGARTEN, (first + count - 1) // PER_KINDERGARTEN + 1)
        for k in kgs:
            code = kindergarten_code(province, k)
            if uow.kindergartens.find(code) is None:
                uow.kindergartens.add(
                    Kindergarten(
                        code,
                        f"9144{k:014d}",
                        f"第{k}幼儿园",
                        county,
                        KindergartenType.PUBLIC,
                        licences=(
                            Licence(f"L{code}", "教育局", date(2015, 1, 1), date(2035, 12, 31)),
                        ),
                    )
                )
        uow.commit()
        for start in range(first, first + count, chunk):
            stop = min(first + count, start + chunk)
            kids, recs, events, numbers, audits = [], [], [], [], []
            for i in range(start, stop):
                number = resident_number(region, i)
                birth = date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
                child = Child(
                    f"c{province}-{i:09d}",
                    child_name(i),
                    Sex.M if int(number[16]) % 2 else Sex.F,
                    birth,
                    IdentityDocument(DocumentType.RESIDENT, number),
                    hukou_region=region,
                    guardians=(Guardian("张父", "father", "+8613800138000"),),
                )
                record = StatusRecord(
                    f"s{province}-{i:09d}",
                    child.id,
                    kindergarten_code(province, i // PER_KINDERGARTEN),
                    county,
                    State.ACTIVE,
                    _grade(birth),
                    date(2024, 9, 1),
                    national_number="G" + number,
                    verification=VerificationResult.MATCH,
                    version=1,  # its REGISTER event
                )
                kids.append(child)
                recs.append(record)
                events.append(register_event(record, recorded_at=_AT, operator="seed"))
                numbers.append(IssuedNumber("G" + number, NumberKind.G, record.id, _AT))
                ids.append(record.id)
                if audited:
                    audits += _audit_events(record)
            uow.claims.claim([claim_key(identity_key(c)) for c in kids])
            uow.children.add_many(kids)
            uow.records.add_many(recs)
            uow.changes.append_many(events)
            uow.numbers.claim_many(numbers)
            if audits:
                audit_many(uow, audits, at=_AT)
            uow.commit()
    return ids
