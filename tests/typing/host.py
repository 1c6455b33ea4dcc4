"""A host's code, type-checked by CI (``MYPYPATH=examples mypy --strict tests/typing``), not
run by pytest.

Every shipped store, and the example adapter integrators start from, is a
:class:`~studentstatus.ports.Store`; a host passes any of them to the services.
"""

from __future__ import annotations

import random
import sys
from datetime import UTC, datetime
from pathlib import Path

from studentstatus.adapters.files import FileStore
from studentstatus.adapters.memory import MemoryStore
from studentstatus.adapters.sql import SqlStore
from studentstatus.domain.jurisdiction import Operator
from studentstatus.ports import CaseUnitOfWork, Store, UnitOfWork
from studentstatus.services.intake import RegisteredChild, import_children
from studentstatus.services.kindergartens import import_kindergartens
from studentstatus.services.numbers import issue_numbers
from studentstatus.services.records import search_records
from studentstatus.services.runtime import FixedClock, Runtime

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "examples"))
from custom_adapter import PickleStore


def runtime(store: Store) -> Runtime:
    return Runtime(store, FixedClock(datetime(2026, 3, 2, tzinfo=UTC)), random.Random(1))


def count(uow: UnitOfWork) -> int:
    return uow.records.count()


def cases(uow: CaseUnitOfWork) -> int:
    return sum(1 for _ in uow.cases.iter())


def typed_results(rt: Runtime, rows: list[dict[str, str]]) -> list[str]:
    """Reports list typed items: a host reads their fields, checked by mypy."""
    report = import_children(rt, Operator.parse("county:110105"), rows)
    temp = [r.temp_number or "" for r in report.records if isinstance(r, RegisteredChild)]
    rows_seen = [r.row for r in report.records]  # every item has its row
    numbers = [i.national_number for i in issue_numbers(rt, Operator.parse("province:11")).issued]
    kgs = import_kindergartens(rt, Operator.parse("county:110105"), rows).records
    return temp + [str(n) for n in rows_seen] + numbers + [k.action for k in kgs]


def main(tmp: Path) -> None:
    stores: list[Store] = [
        MemoryStore(),
        SqlStore("sqlite://", create=True),
        FileStore(tmp / "files"),
        PickleStore(tmp / "store.pickle"),
    ]
    for store in stores:
        rt = runtime(store)
        search_records(rt, Operator.parse("county:110105"))
        with store.unit_of_work() as uow:
            count(uow)
        store.close()
    with MemoryStore().unit_of_work() as uow:
        cases(uow)
    with SqlStore("sqlite://", create=True).unit_of_work() as sql_uow:
        cases(sql_uow)
