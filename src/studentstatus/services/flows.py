"""Migrant children and flows: migrant flags of a record, origin → destination matrix of transfers.

Flags come from :mod:`studentstatus.domain.migration`: the
child's household registration (户籍) vs the kindergarten's county — local,
other county of the province, other province — with rural household
registrations marked (the statistical 进城务工人员随迁子女 is migrant *and*
rural).

The transfer matrix reads the change log (TRANSFER events effective in the
period, streamed and filtered by kind and date in the store): origin is the
source kindergarten's region, destination the destination's, at province
(2 digits), city (4 digits) or county (6 digits) level.  A province's own
flows all read "11 → 11" at province level, so a region's report shows them
one level down (:func:`level_for`: a province by city, a city or county by
county).  A transfer is visible to an operator
when its origin or its destination lies in the operator's scope (a
kindergarten: when it is the source or the destination).

>>> import random
>>> from datetime import date, datetime, timezone
>>> from studentstatus.adapters.memory import MemoryStore
>>> from studentstatus.domain.jurisdiction import Operator
>>> from studentstatus.services.runtime import FixedClock, Runtime
>>> rt = Runtime(MemoryStore(), FixedClock(datetime(2026, 10, 8, tzinfo=timezone.utc)))
>>> m = get_transfer_flows(rt, Operator.parse("province:11"), date(2026, 9, 1), date(2026, 10, 8))
>>> m.total, m.flows
(0, {})
"""

from __future__ import annotations

from collections import Counter
from datetime import date
from typing import Any, Literal

import attrs

from studentstatus.domain.enums import ChangeKind
from studentstatus.domain.jurisdiction import Operator
from studentstatus.domain.migration import MigrantStatus, is_rural_migrant, migrant_status
from studentstatus.domain.model import Kindergarten, StatusChange
from studentstatus.errors import ValidationError
from studentstatus.ports import UnitOfWork
from studentstatus.services._renamed import renamed
from studentstatus.services.authority import record_in_scope, require_role
from studentstatus.services.runtime import Runtime

__all__ = ["FlowMatrix", "MigrantFlags", "get_migrant_flags", "get_transfer_flows", "level_for"]

FlowLevel = Literal["province", "city", "county"]
_WIDTH = {"province": 2, "city": 4, "county": 6}


#: Municipalities directly under the central government (直辖市): their only
#: "city" is the 市辖区 summary code, so their flows are shown by district.
MUNICIPALITIES = frozenset({"11", "12", "31", "50"})


def level_for(region: str) -> FlowLevel:
    """The level that shows a region's flows: the whole country by province,
    a province by city (a municipality such as Beijing by district), a city or
    a county by county.

    >>> level_for(""), level_for("44"), level_for("4403"), level_for("440305")
    ('province', 'city', 'county', 'county')
    >>> level_for("11")
    'county'
    """
    if not region:
        return "province"
    if len(region) <= 2 and region[:2] not in MUNICIPALITIES:
        return "city"
    return "county"


@attrs.frozen
class MigrantFlags:
    """A child's migrant status relative to its kindergarten, and the rural flags.

    >>> MigrantFlags(MigrantStatus.OTHER_PROVINCE, True, True).to_dict()["status_zh"]
    '外省'
    """

    status: MigrantStatus
    rural_hukou: bool
    rural_migrant: bool

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "status": self.status.value,
            "status_zh": self.status.label_zh,
            "rural_hukou": self.rural_hukou,
            "rural_migrant": self.rural_migrant,
        }


def get_migrant_flags(rt: Runtime, operator: Operator, record_id: str) -> MigrantFlags:
    """The migrant flags of one record's child (scope-checked).

    >>> from datetime import datetime, timezone
    >>> from studentstatus.domain.jurisdiction import Operator
    >>> from studentstatus.testing.examples import example_runtime
    >>> rt = example_runtime(datetime(2026, 10, 8, tzinfo=timezone.utc))
    >>> get_migrant_flags(rt, Operator.parse("ministry"), "nope")
    Traceback (most recent call last):
    ...
    studentstatus.errors.NotFoundError: ...
    """
    require_role(operator, "view")
    with rt.store.unit_of_work() as uow:
        found = uow.records.get_many([record_id]).get(record_id)
        rec = record_in_scope(operator, "migrant_flags", found, record_id)
        child = uow.children.get(rec.child_id)
    status = migrant_status(child.hukou_region, rec.region_code)
    return MigrantFlags(
        status,
        child.hukou_rural,
        is_rural_migrant(child.hukou_region, rec.region_code, child.hukou_rural),
    )


@attrs.frozen
class FlowMatrix:
    """Transfers by origin and destination (``flows[origin][destination] = count``).

    ``"?"`` stands for a region that could not be determined.

    >>> m = FlowMatrix("province", date(2026, 9, 1), date(2026, 9, 30), {"51": {"11": 2}})
    >>> m.total, m.rows()
    (2, [('51', '11', 2)])
    """

    level: str
    start: date
    end: date
    flows: dict[str, dict[str, int]]

    @property
    def total(self) -> int:
        """All transfers counted."""
        return sum(n for row in self.flows.values() for n in row.values())

    def rows(self) -> list[tuple[str, str, int]]:
        """``(origin, destination, count)`` sorted by count, largest first."""
        out = [(o, d, n) for o, row in self.flows.items() for d, n in row.items()]
        return sorted(out, key=lambda t: (-t[2], t[0], t[1]))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "level": self.level,
            "from": self.start.isoformat(),
            "to": self.end.isoformat(),
            "total": self.total,
            "flows": self.flows,
            "rows": [{"origin": o, "destination": d, "count": n} for o, d, n in self.rows()],
        }


def _side(
    uow: UnitOfWork,
    values: dict[str, Any],
    kgs: dict[str, Kindergarten | None],
) -> tuple[str | None, str | None]:
    """(kindergarten code, region code) of one side of a TRANSFER event."""
    code = values.get("kindergarten_code")
    region = values.get("region_code")
    if code is not None and code not in kgs:
        kgs[code] = uow.kindergartens.find(code)
    kg = kgs.get(code) if code is not None else None
    if region is None and kg is not None:
        region = kg.region_code
    return code, region


def _visible(operator: Operator, sides: list[tuple[str | None, str | None]]) -> bool:
    for code, region in sides:
        if operator.kindergarten_code is not None:
            if code == operator.kindergarten_code:
                return True
        elif region is not None and region.startswith(operator.region_prefix or ""):
            return True
    return False


def get_transfer_flows(
    rt: Runtime,
    operator: Operator,
    start: date,
    end: date,
    *,
    level: FlowLevel = "province",
    region: str | None = None,
) -> FlowMatrix:
    """Origin → destination counts of TRANSFER changes effective in [start, end] (see module).

    A same-county transfer records no region change in its event, so the
    regions come from the source and destination kindergartens.  ``region``
    (a code prefix) keeps only transfers from or to it, inside the scope.
    """
    if level not in _WIDTH:
        msg = f"level must be 'province', 'city' or 'county', not {level!r}"
        raise ValueError(msg)
    if end < start:
        raise ValidationError(
            "the period ends before it starts",
            message_zh="结束日期早于开始日期",
            code="period_invalid",
            field="end",
        )
    require_role(operator, "report")
    width = _WIDTH[level]
    counts: Counter[tuple[str, str]] = Counter()
    kgs: dict[str, Kindergarten | None] = {}
    with rt.store.unit_of_work() as uow:
        stream = uow.changes.iter(
            kinds=[ChangeKind.TRANSFER], effective_from=start, effective_to=end
        )
        for ev in stream:
            origin, dest = _ends(uow, ev, kgs)
            if not _visible(operator, [origin, dest]):
                continue
            if region and not any((r or "").startswith(region) for _c, r in (origin, dest)):
                continue
            o = origin[1][:width] if origin[1] else "?"
            d = dest[1][:width] if dest[1] else "?"
            counts[(o, d)] += 1
    flows: dict[str, dict[str, int]] = {}
    for (o, d), n in sorted(counts.items()):
        flows.setdefault(o, {})[d] = n
    return FlowMatrix(level, start, end, flows)


def _ends(
    uow: UnitOfWork, ev: StatusChange, kgs: dict[str, Kindergarten | None]
) -> tuple[tuple[str | None, str | None], tuple[str | None, str | None]]:
    origin = _side(uow, dict(ev.before), kgs)
    dest = _side(uow, dict(ev.after), kgs)
    return origin, dest


# Former names (deprecated; not in __all__).
migrant_flags = renamed(get_migrant_flags, "migrant_flags")
transfer_flows = renamed(get_transfer_flows, "transfer_flows")
