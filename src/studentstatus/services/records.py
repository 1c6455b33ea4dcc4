"""Find and list status records on behalf of an operator, scope-checked.

A record is found by its **national number** (G or J), a **former number**
(the temporary L number it had before), or its **record id**.  Every look-up
checks the operator's scope; a record outside it raises
:class:`~studentstatus.errors.NotFoundError`, exactly as a record that does not
exist (:mod:`studentstatus.services.authority`), and the refusal is logged
(operator, action, masked subject: never a full identity number).

Lists filter by scope in the store query itself: a kindergarten operator sees
its own school's records, a county/city/province operator the records whose
region code starts with its prefix, the ministry everything.

>>> import random
>>> from datetime import date, datetime, timezone
>>> from studentstatus.adapters.memory import MemoryStore
>>> from studentstatus.domain.enums import Grade, State
>>> from studentstatus.domain.jurisdiction import Operator
>>> from studentstatus.domain.model import StatusRecord
>>> from studentstatus.services.runtime import FixedClock, Runtime
>>> store = MemoryStore()
>>> with store.unit_of_work() as uow:
...     uow.records.add(StatusRecord("r1", "c1", "1111000001", "110105", State.ACTIVE,
...                     Grade.JUNIOR, date(2025, 9, 1), temp_number="L110105202003150001"))
...     uow.commit()
>>> rt = Runtime(store, FixedClock(datetime(2026, 3, 2, tzinfo=timezone.utc)), random.Random(1))
>>> find_record(rt, Operator.parse("county:110105"), "L110105202003150001").id
'r1'
>>> [r.id for r in list_records(rt, Operator.parse("kindergarten:1111000001"))]
['r1']
>>> find_record(rt, Operator.parse("county:440306"), "r1")
Traceback (most recent call last):
...
studentstatus.errors.NotFoundError: no record r1 / 未找到学籍 r1
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterable, Iterator
from datetime import date
from typing import Any

import attrs

from studentstatus.domain import numbers
from studentstatus.domain.enums import Grade, Role, Sex, State
from studentstatus.domain.jurisdiction import Operator, ScopeFilter
from studentstatus.domain.model import Child, Kindergarten, StatusRecord
from studentstatus.domain.search import RecordQuery
from studentstatus.errors import NotFoundError, PermissionDenied, ValidationError, mask, redact
from studentstatus.ports import RecordSearch, UnitOfWork
from studentstatus.services.authority import record_in_scope, require_role
from studentstatus.services.runtime import Runtime

__all__ = [
    "MAX_LIMIT",
    "RecordPage",
    "RecordSummary",
    "covers_kindergarten",
    "covers_record",
    "ensure_record",
    "find_in",
    "find_record",
    "iter_scope",
    "list_records",
    "refuse",
    "scope_filter",
    "search_records",
]

log = logging.getLogger("studentstatus.services")


def refuse(
    operator: Operator, action: str, subject: str, *, code: str | None = None
) -> PermissionDenied:
    """Log a refusal (operator, action, masked subject) and return the error to raise.

    Any identity-, G-, J- or L-shaped number in the subject is masked
    (:func:`~studentstatus.errors.redact`); record ids and codes stay readable.

    >>> from studentstatus.domain.jurisdiction import Operator
    >>> err = refuse(Operator.parse("county:110105"), "show", "G11010520200315002X")
    >>> "11010520200315002X" in str(err)
    False
    """
    shown = redact(subject)
    log.warning(
        "refused: operator=%s action=%s subject=%s code=%s",
        operator,
        action,
        shown,
        code or PermissionDenied.code,
    )
    return PermissionDenied(str(operator), f"{action} {shown}", code=code)


def covers_record(operator: Operator, record: StatusRecord) -> bool:
    """Whether ``record`` lies inside ``operator``'s scope.

    >>> from datetime import date
    >>> from studentstatus.domain.enums import Grade, State
    >>> from studentstatus.domain.jurisdiction import Operator
    >>> rec = StatusRecord("r", "c", "1111000001", "110105", State.ACTIVE, Grade.JUNIOR,
    ...                    date(2025, 9, 1))
    >>> covers_record(Operator.parse("city:1101"), rec), covers_record(
    ...     Operator.parse("kindergarten:1111000002"), rec)
    (True, False)
    """
    return operator.covers_record(record)


def covers_kindergarten(operator: Operator, kindergarten: Kindergarten) -> bool:
    """Whether ``kindergarten`` lies inside ``operator``'s scope.

    >>> from studentstatus.domain.enums import KindergartenType
    >>> from studentstatus.domain.jurisdiction import Operator
    >>> kg = Kindergarten("1111000001", "x", "一幼", "110105", KindergartenType.PUBLIC)
    >>> covers_kindergarten(Operator.parse("province:11"), kg)
    True
    """
    return operator.covers_kindergarten(kindergarten)


def ensure_record(
    operator: Operator, record: StatusRecord, action: str, *, ref: str | None = None
) -> None:
    """Raise :class:`~studentstatus.errors.NotFoundError` — exactly as for a record that
    does not exist (:func:`studentstatus.services.authority.record_in_scope`), the
    refusal logged — unless ``operator`` covers ``record``.  ``ref`` is what the caller
    asked for (default: the record id), so the answer quotes nothing else.

    >>> from datetime import date
    >>> from studentstatus.domain.enums import Grade, State
    >>> from studentstatus.domain.jurisdiction import Operator
    >>> rec = StatusRecord("r", "c", "1111000001", "110105", State.ACTIVE, Grade.JUNIOR,
    ...                    date(2025, 9, 1))
    >>> ensure_record(Operator.parse("ministry"), rec, "show")
    """
    record_in_scope(operator, action, record, record.id if ref is None else ref)


def scope_filter(operator: Operator) -> ScopeFilter:
    """Keyword arguments for ``RecordRepository.iter``/``count`` that select the scope.

    >>> from studentstatus.domain.jurisdiction import Operator
    >>> scope_filter(Operator.parse("kindergarten:1111000001"))
    {'kindergarten_code': '1111000001'}
    >>> scope_filter(Operator.parse("city:1101"))
    {'region_prefix': '1101'}
    """
    return operator.list_filter()


def find_in(uow: UnitOfWork, ref: str) -> StatusRecord | None:
    """The record whose national/temporary/former number or id is ``ref`` (no scope check).

    >>> from studentstatus.adapters.memory import MemoryStore
    >>> with MemoryStore().unit_of_work() as uow:
    ...     find_in(uow, "nothing") is None
    True
    """
    text = ref.strip()
    if not text:
        return None
    record = uow.records.find_by_number(text)
    if record is not None:
        return record
    resolved = uow.numbers.resolve(text)
    try:
        if resolved is not None:
            return uow.records.get(resolved.record_id)
        return uow.records.get(text)
    except NotFoundError:
        return None


def find_record(rt: Runtime, operator: Operator, ref: str, *, action: str = "show") -> StatusRecord:
    """The record named by ``ref`` if ``operator`` covers it.

    Raises :class:`~studentstatus.errors.NotFoundError` when nothing matches and,
    with the same code and text, when the record is out of scope (see the module
    example).
    """
    require_role(operator, "view")
    with rt.store.unit_of_work() as uow:
        record = find_in(uow, ref)
    return record_in_scope(operator, action, record, ref)


def list_records(
    rt: Runtime,
    operator: Operator,
    *,
    states: Iterable[State] | None = None,
    batch_size: int = 2000,
) -> Iterator[StatusRecord]:
    """Stream the records inside ``operator``'s scope, by id (see the module example).

    The generator holds one unit of work open while it is consumed.
    """
    with rt.store.unit_of_work() as uow:
        yield from iter_scope(uow, operator, states=states, batch_size=batch_size)


def iter_scope(
    uow: UnitOfWork,
    operator: Operator,
    *,
    states: Iterable[State] | None = None,
    batch_size: int = 2000,
) -> Iterator[StatusRecord]:
    """Stream the records of ``operator``'s scope inside an open unit of work.

    >>> from studentstatus.adapters.memory import MemoryStore
    >>> from studentstatus.domain.jurisdiction import Operator
    >>> with MemoryStore().unit_of_work() as uow:
    ...     list(iter_scope(uow, Operator.parse("ministry")))
    []
    """
    wanted = tuple(states) if states is not None else None
    return uow.records.iter(states=wanted, batch_size=batch_size, **operator.list_filter())


# --------------------------------------------------------------------------- portal search

MAX_LIMIT = 500
"""The most records one search page may hold."""

_FALLBACK_BATCH = 500


def _masked(number: str | None) -> str | None:
    return mask(number) if number else None


@attrs.frozen
class RecordSummary:
    """One line of a search result: enough to pick a record, nothing that identifies a child.

    Numbers are masked (:func:`~studentstatus.errors.mask`, the rule of
    ``docs/concepts/privacy.md``); neither the birth date nor the document number
    is included: a summary carries what picks a record and nothing more.  Open the
    record with ``show`` for the rest.

    >>> from datetime import date
    >>> kid = Child("c1", "王小明", Sex.M, date(2020, 3, 15))
    >>> rec = StatusRecord("r1", "c1", "1111000001", "110105", State.ACTIVE, Grade.JUNIOR,
    ...                    date(2023, 9, 1), national_number="G11010520200315002X")
    >>> s = RecordSummary.of(rec, kid)
    >>> s.national_number, s.to_dict()["entry_date"]
    ('G11****************', '2023-09-01')
    """

    record_id: str
    name: str
    sex: Sex
    kindergarten_code: str
    region_code: str
    state: State
    grade: Grade | None
    national_number: str | None
    temp_number: str | None
    entry_date: date

    @classmethod
    def of(cls, record: StatusRecord, child: Child) -> RecordSummary:
        """The summary of ``record`` (whose child is ``child``), numbers masked."""
        return cls(
            record_id=record.id,
            name=child.name,
            sex=child.sex,
            kindergarten_code=record.kindergarten_code,
            region_code=record.region_code,
            state=record.state,
            grade=record.grade,
            national_number=_masked(record.national_number),
            temp_number=_masked(record.temp_number),
            entry_date=record.entry_date,
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields (enums by value, the date in ISO form).

        >>> from datetime import date
        >>> RecordSummary("r1", "李四", Sex.F, "1111000001", "110105", State.PENDING, None,
        ...               None, "L**************0042", date(2024, 9, 1)).to_dict()["sex"]
        'F'
        """
        return {
            "record_id": self.record_id,
            "name": self.name,
            "sex": self.sex.value,
            "kindergarten_code": self.kindergarten_code,
            "region_code": self.region_code,
            "state": self.state.value,
            "grade": self.grade.value if self.grade is not None else None,
            "national_number": self.national_number,
            "temp_number": self.temp_number,
            "entry_date": self.entry_date.isoformat(),
        }


@attrs.frozen
class RecordPage:
    """One page of :func:`search_records`: summaries by record id, and the next page's key.

    ``next_after`` is the last record id of this page when more records match
    (pass it as ``after`` for the next page), ``None`` on the last page.

    >>> RecordPage([], None).to_dict()
    {'items': [], 'next_after': None}
    """

    items: list[RecordSummary]
    next_after: str | None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form: ``{"items": [...], "next_after": ...}``."""
        return {"items": [s.to_dict() for s in self.items], "next_after": self.next_after}


def _invalid(code: str, field: str, en: str, zh: str, hint: str = "") -> ValidationError:
    return ValidationError(en, field=field, message_zh=zh, code=code, hint=hint)


def _check_limit(limit: object) -> int:
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        raise _invalid(
            "limit_invalid",
            "limit",
            f"limit must be a whole number from 1 to {MAX_LIMIT}",
            f"每页条数应为1至{MAX_LIMIT}之间的整数",
        )
    return limit


def _parse_state(value: State | str | None) -> State | None:
    if value is None or isinstance(value, State):
        return value
    if not str(value).strip():
        return None
    try:
        member = State.parse(value)
    except ValueError:
        raise _invalid(
            "state_invalid",
            "state",
            "unknown record state",
            "学籍状态无效",
            hint=", ".join(s.value for s in State),
        ) from None
    assert isinstance(member, State)
    return member


def _parse_grade(value: Grade | str | None) -> Grade | None:
    if value is None or isinstance(value, Grade):
        return value
    if not str(value).strip():
        return None
    try:
        return Grade.parse(value)
    except ValueError:
        raise _invalid(
            "grade_invalid",
            "grade",
            "grade must be NURSERY/JUNIOR/MIDDLE/SENIOR or 托班/小班/中班/大班",
            "班级应为托班/小班/中班/大班",
        ) from None


def _parse_date(value: date | str | None) -> date | None:
    if value is None or isinstance(value, date):
        return value
    text = str(value).strip()
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise _invalid(
            "birth_date_invalid",
            "birth_date",
            "invalid birth date (YYYY-MM-DD)",
            "出生日期无效（YYYY-MM-DD）",
        ) from None


def _text(value: str | None) -> str | None:
    text = value.strip() if value is not None else ""
    return text or None


def _compact(value: str | None) -> str | None:
    return numbers.compact(value) or None if value is not None else None


def search_records(
    rt: Runtime,
    operator: Operator,
    *,
    number: str | None = None,
    document: str | None = None,
    name: str | None = None,
    birth_date: date | str | None = None,
    kindergarten: str | None = None,
    state: State | str | None = None,
    grade: Grade | str | None = None,
    limit: int = 50,
    after: str | None = None,
) -> RecordPage:
    """Search the records inside ``operator``'s scope: one page, ordered by record id.

    Every filter given must hold (an empty string counts as not given):

    ``number``
        a national (G/J), temporary (L) or former number — separators and case
        do not matter;
    ``document``
        the child's document number (same normalisation);
    ``name``, ``birth_date``
        the child's exact name, and birth date (a date or ``YYYY-MM-DD``); a
        birth date needs a name (``birth_date_without_name``);
    ``kindergarten``, ``state``, ``grade``
        the record's school code, state and grade (value, name or Chinese label).

    The scope is part of the query: a kindergarten sees its own school's
    records, a county/city/province those of its region, the ministry all.  A
    record outside the scope is simply not returned — a number look-up of it
    answers the same empty page as a number nobody holds.  Pages hold at most
    ``limit`` records (1…:data:`MAX_LIMIT`, else ``limit_invalid``); ``after``
    is the :attr:`RecordPage.next_after` of the previous page.  Summaries mask
    the numbers and carry no birth date or document number.

    The store answers with :class:`~studentstatus.ports.RecordSearch` when it
    has it (the library's stores do: from their indexes); otherwise with its
    base look-ups (number, document, identity) or, for a scope search, by
    reading the scope's records.

    >>> import random
    >>> from datetime import datetime, timezone
    >>> from studentstatus.adapters.memory import MemoryStore
    >>> from studentstatus.domain.jurisdiction import Operator
    >>> from studentstatus.services.runtime import FixedClock, Runtime
    >>> store = MemoryStore()
    >>> with store.unit_of_work() as uow:
    ...     for i, region in enumerate(["110105", "110105", "440306"]):
    ...         uow.children.add(Child(f"c{i}", f"童{i}", Sex.F, date(2021, 5, 1)))
    ...         uow.records.add(StatusRecord(f"r{i}", f"c{i}", "1111000001", region,
    ...                         State.ACTIVE, Grade.JUNIOR, date(2024, 9, 1),
    ...                         temp_number=f"L{region}2021050100{i:02d}"))
    ...     uow.commit()
    >>> rt = Runtime(store, FixedClock(datetime(2026, 3, 2, tzinfo=timezone.utc)))
    >>> county = Operator.parse("county:110105")
    >>> page = search_records(rt, county, limit=1)
    >>> [s.record_id for s in page.items], page.next_after
    (['r0'], 'r0')
    >>> search_records(rt, county, limit=1, after="r0").next_after is None
    True
    >>> search_records(rt, county, number="l440306-20210501-0002").items  # out of scope
    []
    >>> search_records(rt, county, state="在籍").items[0].temp_number
    'L**************0000'
    >>> search_records(rt, county, limit=0)
    Traceback (most recent call last):
    ...
    studentstatus.errors.ValidationError: limit_invalid [limit]: ...
    """
    operator.ensure_can("view")
    limit = _check_limit(limit)
    query_state = _parse_state(state)
    query_grade = _parse_grade(grade)
    query_birth = _parse_date(birth_date)
    query_name = _text(name)
    if query_birth is not None and query_name is None:
        raise _invalid(
            "birth_date_without_name",
            "birth_date",
            "a birth date is searched together with a name",
            "按出生日期查询时须同时填写姓名",
        )
    school = _text(kindergarten)
    if operator.role is Role.KINDERGARTEN:
        if school is not None and school != operator.scope:
            return RecordPage([], None)  # another school's records: none in scope
        prefix, school = "", operator.scope
    else:
        prefix = operator.scope
    query = RecordQuery(
        region_prefix=prefix,
        kindergarten_code=school,
        number=_compact(number),
        document=_compact(document),
        name=query_name,
        birth_date=query_birth,
        state=query_state,
        grade=query_grade,
    )
    start = _text(after)
    with rt.store.unit_of_work() as uow:
        if isinstance(uow.records, RecordSearch):
            found = uow.records.search(query, limit=limit + 1, after=start)
        else:
            found = _search_by_lookups(uow, query, limit + 1, start)
    items = [RecordSummary.of(rec, child) for rec, child in found[:limit]]
    more = len(found) > limit
    return RecordPage(items, items[-1].record_id if more else None)


def _search_by_lookups(
    uow: UnitOfWork, query: RecordQuery, limit: int, after: str | None
) -> list[tuple[StatusRecord, Child]]:
    """:meth:`~studentstatus.ports.RecordSearch.search` for a store without it: the keyed
    look-ups of the base ports when the query has a key, else the scope's records by id."""
    records = uow.records
    candidates: Iterable[StatusRecord]
    name, born = query.name, query.birth_date
    kids: list[Child] | None = None
    if query.number is not None:
        pass  # the number decides
    elif query.document is not None:
        kids = uow.children.find_by_document(query.document)
    elif name is not None and born is not None:
        kids = [c for sex in Sex for c in uow.children.find_by_identity(name, sex, born)]
    if query.number is not None:
        held = records.find_by_number(query.number)
        candidates = [held] if held is not None else []
    elif kids is not None:
        found = {r.id: r for c in kids for r in records.for_child(c.id)}
        candidates = [found[i] for i in sorted(found)]
    else:
        candidates = records.iter(
            region_prefix=query.region_prefix,
            kindergarten_code=query.kindergarten_code,
            states=None if query.state is None else [query.state],
        )
    out: list[tuple[StatusRecord, Child]] = []
    it = (r for r in candidates if after is None or r.id > after)
    while len(out) < limit and (batch := list(itertools.islice(it, _FALLBACK_BATCH))):
        kids_by_id = uow.children.get_many(list(dict.fromkeys(r.child_id for r in batch)))
        for rec in batch:
            kid = kids_by_id.get(rec.child_id)
            if kid is not None and query.matches(rec, kid):
                out.append((rec, kid))
                if len(out) == limit:
                    break
    return out
