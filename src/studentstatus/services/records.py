"""Find and list status records on behalf of an operator, scope-checked.

A record is found by its **national number** (G or J), a **former number**
(the temporary L number it had before), or its **record id**.  Every look-up
checks the operator's scope; a record outside it raises
:class:`~studentstatus.errors.PermissionDenied` and the refusal is logged
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
studentstatus.errors.PermissionDenied: out_of_scope: ...
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

from studentstatus.domain.enums import State
from studentstatus.domain.model import Kindergarten, StatusRecord
from studentstatus.errors import NotFoundError, PermissionDenied, mask

if TYPE_CHECKING:
    from studentstatus.domain.jurisdiction import Operator, ScopeFilter
    from studentstatus.ports import UnitOfWork
    from studentstatus.services.runtime import Runtime

__all__ = [
    "covers_kindergarten",
    "covers_record",
    "ensure_record",
    "find_in",
    "find_record",
    "iter_scope",
    "list_records",
    "refuse",
    "scope_filter",
]

log = logging.getLogger("studentstatus.services")


def refuse(
    operator: Operator, action: str, subject: str, *, code: str | None = None
) -> PermissionDenied:
    """Log a refusal (operator, action, masked subject) and return the error to raise.

    The subject is masked when it could be an identity or G number.

    >>> from studentstatus.domain.jurisdiction import Operator
    >>> err = refuse(Operator.parse("county:110105"), "show", "G11010520200315002X")
    >>> "11010520200315002X" in str(err)
    False
    """
    shown = mask(subject) if len(subject) >= 15 else subject
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


def ensure_record(operator: Operator, record: StatusRecord, action: str) -> None:
    """Raise (and log) :class:`PermissionDenied` unless ``operator`` covers ``record``.

    >>> from datetime import date
    >>> from studentstatus.domain.enums import Grade, State
    >>> from studentstatus.domain.jurisdiction import Operator
    >>> rec = StatusRecord("r", "c", "1111000001", "110105", State.ACTIVE, Grade.JUNIOR,
    ...                    date(2025, 9, 1))
    >>> ensure_record(Operator.parse("ministry"), rec, "show")
    """
    if not covers_record(operator, record):
        raise refuse(operator, action, record.id)


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

    Raises :class:`~studentstatus.errors.NotFoundError` when nothing matches
    and :class:`~studentstatus.errors.PermissionDenied` when the record is out
    of scope (see the module example).
    """
    with rt.store.unit_of_work() as uow:
        record = find_in(uow, ref)
    if record is None:
        shown = mask(ref) if len(ref) >= 15 else ref
        msg = f"no record for {shown}"
        raise NotFoundError(msg)
    ensure_record(operator, record, action)
    return record


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
