"""Handover to primary school: the 学籍档案 of a school year's graduates as versioned JSON.

The document follows ``studentstatus/schemas/handover-1.0.schema.json`` (shipped
in the package; :func:`schema` loads it).  Graduates of school year ``Y`` are
the records whose GRADUATE change took effect between 1 September ``Y`` and
31 August ``Y+1`` (see :func:`studentstatus.domain.age.school_year_of`).

Identity numbers are personal information: by default the document carries
masked numbers, and the national, temporary and former numbers are masked too
(a G number embeds the resident ID, J and L numbers the region and birth date
printed beside them; the rule is in ``docs/concepts/privacy.md``).
``reveal=True`` is honoured only for an operator whose role may export and
whose scope covers every exported record — which the scope filter guarantees —
and the export itself is written to the audit log.

The work is streamed in chunks: GRADUATE events of the year are read from the
change log, then the chunk's records, children, kindergartens and histories
are fetched with bulk reads.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from datetime import date
from importlib import resources
from typing import Any

from studentstatus.domain.enums import ChangeKind, NumberKind, State
from studentstatus.domain.jurisdiction import Operator
from studentstatus.domain.model import Child, Kindergarten, StatusChange, StatusRecord
from studentstatus.errors import mask_number
from studentstatus.services.audit import AuditEvent, audit
from studentstatus.services.authority import require_role
from studentstatus.services.runtime import Runtime

__all__ = ["SCHEMA_VERSION", "export_graduates", "iter_graduates", "schema"]

SCHEMA_VERSION = "1.0"
_CHUNK = 2000


def schema() -> dict[str, Any]:
    """The shipped JSON Schema of the handover document.

    >>> schema()["properties"]["schema_version"]["const"]
    '1.0'
    """
    text = (
        resources.files("studentstatus.schemas")
        .joinpath(f"handover-{SCHEMA_VERSION}.schema.json")
        .read_text(encoding="utf-8")
    )
    doc: dict[str, Any] = json.loads(text)
    return doc


def _year_bounds(school_year: int) -> tuple[date, date]:
    return date(school_year, 9, 1), date(school_year + 1, 8, 31)


def iter_graduates(
    rt: Runtime, operator: Operator, school_year: int, *, reveal: bool = False
) -> Iterator[dict[str, Any]]:
    """Yield one handover entry per graduate of ``school_year`` inside the operator's scope.

    With ``reveal=True`` the full numbers are shown, and the reveal is written to the
    audit trail (action ``reveal_handover``) before the first entry is produced.
    """
    require_role(operator, "export")
    if reveal:
        with rt.store.unit_of_work() as uow:
            event = AuditEvent(
                operator=str(operator),
                action="reveal_handover",
                subject=f"school_year:{school_year}",
                after={"revealed": True},
            )
            audit(uow, event, at=rt.clock.now())
            uow.commit()
    yield from _graduates(rt, operator, school_year, reveal=reveal)


def _graduates(
    rt: Runtime, operator: Operator, school_year: int, *, reveal: bool
) -> Iterator[dict[str, Any]]:
    start, end = _year_bounds(school_year)
    with rt.store.unit_of_work() as uow:
        grads = uow.changes.iter(
            kinds=[ChangeKind.GRADUATE], effective_from=start, effective_to=end
        )
        chunk: list[StatusChange] = []
        for event in grads:
            chunk.append(event)
            if len(chunk) >= _CHUNK:
                yield from _entries(uow, operator, chunk, reveal=reveal)
                chunk = []
        if chunk:
            yield from _entries(uow, operator, chunk, reveal=reveal)


def _entries(
    uow: Any, operator: Operator, grads: Sequence[StatusChange], *, reveal: bool
) -> Iterator[dict[str, Any]]:
    ids = [g.record_id for g in grads]
    records: dict[str, StatusRecord] = uow.records.get_many(ids)
    in_scope = [
        g
        for g in grads
        if g.record_id in records
        and records[g.record_id].state is State.GRADUATED
        and operator.covers_record(records[g.record_id])
    ]
    if not in_scope:
        return
    scoped_ids = [g.record_id for g in in_scope]
    children: dict[str, Child] = uow.children.get_many([records[i].child_id for i in scoped_ids])
    history: dict[str, list[StatusChange]] = {i: [] for i in scoped_ids}
    for ev in uow.changes.iter(record_ids=scoped_ids):
        history[ev.record_id].append(ev)
    kgs: dict[str, Kindergarten | None] = {}
    for g in in_scope:
        rec = records[g.record_id]
        if rec.kindergarten_code not in kgs:
            kgs[rec.kindergarten_code] = uow.kindergartens.find(rec.kindergarten_code)
        child = children.get(rec.child_id)
        if child is None:
            continue
        yield _entry(rec, child, kgs[rec.kindergarten_code], g, history[rec.id], reveal=reveal)


def _number_kind(number: str | None) -> str | None:
    if not number:
        return None
    return NumberKind(number[0]).value


def _entry(
    rec: StatusRecord,
    child: Child,
    kg: Kindergarten | None,
    graduation: StatusChange,
    history: Sequence[StatusChange],
    *,
    reveal: bool,
) -> dict[str, Any]:
    number = rec.national_number or rec.temp_number
    shown_number = number if reveal or not number else mask_number(number)
    former = list(rec.former_numbers) if reveal else [mask_number(n) for n in rec.former_numbers]
    doc = child.document
    return {
        "record_id": rec.id,
        "national_number": shown_number,
        "number_kind": _number_kind(number),
        "former_numbers": former,
        "entry_date": rec.entry_date.isoformat(),
        "graduation_date": graduation.effective_date.isoformat(),
        "child": {
            "name": child.name,
            "sex": child.sex.value,
            "birth_date": child.birth_date.isoformat(),
            "document": None
            if doc is None
            else {
                "type": doc.type.value,
                "number": doc.number if reveal else mask_number(doc.number),
                "masked": not reveal,
            },
            "nationality": child.nationality,
            "ethnicity": child.ethnicity,
            "hukou_region": child.hukou_region,
            "hukou_rural": child.hukou_rural,
            "residence_region": child.residence_region,
            "guardians": [
                {"name": g.name, "relation": g.relation, "phone": g.phone} for g in child.guardians
            ],
        },
        "kindergarten": {
            "school_code": rec.kindergarten_code,
            "name": kg.name if kg else "",
            "region_code": rec.region_code,
        },
        "history": [
            {
                "seq": ev.seq,
                "kind": ev.kind.value,
                "from": ev.from_state.value if ev.from_state else None,
                "to": ev.to_state.value,
                "effective_date": ev.effective_date.isoformat(),
                "reason": ev.reason,
            }
            for ev in sorted(history, key=lambda e: e.seq)
        ],
    }


def export_graduates(
    rt: Runtime,
    operator: Operator,
    school_year: int,
    *,
    reveal: bool = False,
    deliver: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Build the whole handover document for ``school_year`` (see the module docs).

    The export is logged in the audit trail with the count and whether numbers
    were revealed.  ``deliver(doc)``, when given, is called before that entry is
    committed (e.g. to write the file): if it raises, nothing is logged.

    >>> from datetime import datetime, timezone
    >>> from studentstatus.adapters.memory import MemoryStore
    >>> from studentstatus.services.runtime import FixedClock
    >>> rt = Runtime(MemoryStore(), FixedClock(datetime(2026, 9, 1, tzinfo=timezone.utc)))
    >>> def fail(doc):
    ...     raise OSError("disk full")
    >>> export_graduates(rt, Operator.parse("county:110105"), 2025, deliver=fail)
    Traceback (most recent call last):
    ...
    OSError: disk full
    >>> with rt.store.unit_of_work() as uow:
    ...     uow.audit.last() is None
    True
    """
    require_role(operator, "export")
    records = list(_graduates(rt, operator, school_year, reveal=reveal))
    now = rt.clock.now()
    doc = {
        "schema": "studentstatus.handover",
        "schema_version": SCHEMA_VERSION,
        "exported_at": now.isoformat(),
        "school_year": school_year,
        "operator": str(operator),
        "revealed": reveal,
        "records": records,
    }
    with rt.store.unit_of_work() as uow:
        audit(
            uow,
            AuditEvent(
                operator=str(operator),
                action="export_handover",
                subject=f"school_year:{school_year}",
                after={"records": len(records), "revealed": reveal},
            ),
            at=now,
        )
        if deliver is not None:
            deliver(doc)
        uow.commit()
    return doc
