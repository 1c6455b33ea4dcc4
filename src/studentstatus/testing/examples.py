"""The world the services' docstring examples share: one call instead of a pasted set-up.

:func:`example_runtime` is a memory store holding one licensed kindergarten
(:data:`KINDERGARTEN`: 阳光幼儿园, school code ``1111000001``, county ``110105``) and a runtime
whose clock reads 2 September 2024 (the school year 2024–25); :func:`child_row` is a roster
row for a 中班 child of that kindergarten, with what an example needs changed.  Test writers
may use them too; nothing here touches a real store.

>>> from studentstatus.domain.jurisdiction import Operator
>>> from studentstatus.services.intake import import_children
>>> rt = example_runtime()
>>> report = import_children(rt, Operator.parse("kindergarten:1111000001"), [child_row()])
>>> report.accepted, report.records[0].state.value
(1, 'PENDING')
"""

from __future__ import annotations

import random
from datetime import UTC, date, datetime
from typing import Any

from studentstatus.adapters.memory import MemoryStore
from studentstatus.domain.enums import KindergartenType
from studentstatus.domain.model import Kindergarten, Licence
from studentstatus.services.runtime import FixedClock, Runtime

__all__ = ["KINDERGARTEN", "NOW", "child_row", "example_runtime"]

KINDERGARTEN = Kindergarten(
    "1111000001",
    "12100000400000624D",
    "阳光幼儿园",
    "110105",
    KindergartenType.PUBLIC,
    licences=(Licence("L1", "局", date(2020, 1, 1), date(2030, 12, 31)),),
)
"""The examples' kindergarten: licensed until 2030, county 110105 (Beijing, Chaoyang)."""

NOW = datetime(2024, 9, 2, tzinfo=UTC)
"""The examples' clock: the second day of the school year 2024–25."""


def example_runtime(at: datetime = NOW, *, seed: int = 1, **runtime: Any) -> Runtime:
    """A runtime on a new memory store that holds :data:`KINDERGARTEN`, its clock at ``at``.

    ``runtime`` goes to :class:`~studentstatus.services.runtime.Runtime` (``registry=``,
    ``policy=`` …).

    >>> rt = example_runtime()
    >>> rt.clock.today()
    datetime.date(2024, 9, 2)
    >>> with rt.store.unit_of_work() as uow:
    ...     [k.name for k in uow.kindergartens.iter()]
    ['阳光幼儿园']
    """
    store = MemoryStore()
    with store.unit_of_work() as uow:
        uow.kindergartens.add(KINDERGARTEN)
        uow.commit()
    return Runtime(store, FixedClock(at), random.Random(seed), **runtime)


def child_row(**changes: str) -> dict[str, str]:
    """A roster row of :data:`KINDERGARTEN`: 王小明, born 15 March 2020, 中班, no identity
    document unless ``changes`` gives one (``id_type="resident", id_number=…``).

    >>> child_row(name="李四")["name"], child_row()["id_type"]
    ('李四', 'none')
    """
    row = {
        "kindergarten_code": KINDERGARTEN.school_code,
        "name": "王小明",
        "sex": "男",
        "birth_date": "2020-03-15",
        "id_type": "none",
        "guardian_phone": "13800138000",
        "entry_date": "2024-09-01",
        "grade": "中班",
    }
    row.update(changes)
    return row
