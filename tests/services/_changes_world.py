"""A small world for the change/rollover/roll tests: kindergartens in three counties of two
provinces, children with valid resident IDs, ACTIVE records built through the status machine
(REGISTER + APPROVE events in the change log), and store factories for every adapter."""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from pathlib import Path

from studentstatus.adapters.memory import MemoryStore
from studentstatus.domain import machine
from studentstatus.domain.enums import ChangeKind, Grade, KindergartenType, Sex
from studentstatus.domain.jurisdiction import Operator
from studentstatus.domain.model import (
    Child,
    DocumentKind,
    Guardian,
    IdentityDocument,
    Kindergarten,
    Licence,
    StatusRecord,
)
from studentstatus.ids.resident import check_digit
from studentstatus.ports import Store
from studentstatus.services.runtime import FixedClock, Runtime

LIC = Licence("LIC", "county", date(2015, 1, 1), date(2035, 12, 31))
KG_A = Kindergarten(
    "1111000001", "x", "阳光幼儿园", "110105", KindergartenType.PUBLIC, licences=(LIC,)
)
KG_B = Kindergarten(
    "1111000002", "x", "朝阳二幼", "110105", KindergartenType.PUBLIC, licences=(LIC,)
)
KG_C = Kindergarten(
    "1111000003", "x", "海淀幼儿园", "110108", KindergartenType.PUBLIC, licences=(LIC,)
)
KG_D = Kindergarten(
    "4444000001", "x", "南山幼儿园", "440305", KindergartenType.PUBLIC, licences=(LIC,)
)
KG_X = Kindergarten("1111000009", "x", "无证园", "110105", KindergartenType.PUBLIC)
KINDERGARTENS = (KG_A, KG_B, KG_C, KG_D, KG_X)

OPS = {
    "kgA": Operator.parse("kindergarten:1111000001"),
    "kgB": Operator.parse("kindergarten:1111000002"),
    "kgC": Operator.parse("kindergarten:1111000003"),
    "kgD": Operator.parse("kindergarten:4444000001"),
    "c105": Operator.parse("county:110105"),
    "c108": Operator.parse("county:110108"),
    "c305": Operator.parse("county:440305"),
    "p11": Operator.parse("province:11"),
    "p44": Operator.parse("province:44"),
    "city1101": Operator.parse("city:1101"),
    "ministry": Operator.parse("ministry"),
}

# Born so that the grade fits the age in school year 2025 (cut-off 31 August 2025).
BIRTH = {
    Grade.NURSERY: date(2022, 10, 3),
    Grade.JUNIOR: date(2021, 10, 3),
    Grade.MIDDLE: date(2020, 10, 3),
    Grade.SENIOR: date(2019, 10, 3),
}

START = datetime(2025, 9, 1, 9, tzinfo=UTC)


def resident_id(region: str, born: date, serial: int, sex: Sex) -> str:
    """A checksum-valid resident ID (GB 11643) for a generated child."""
    order = serial * 2 + (1 if sex is Sex.M else 0)
    body = f"{region}{born:%Y%m%d}{order % 1000:03d}"
    return body + check_digit(body)


def runtime(store: Store, at: datetime = START) -> Runtime:
    return Runtime(store, FixedClock(at), random.Random(20260901))


def seed(
    rt: Runtime,
    plan: list[tuple[Kindergarten, Grade]],
    *,
    kindergartens: tuple[Kindergarten, ...] = KINDERGARTENS,
) -> list[StatusRecord]:
    """Add the kindergartens and one ACTIVE record per (kindergarten, grade), via the machine."""
    now = rt.clock.now()
    today = rt.clock.today()
    out: list[StatusRecord] = []
    with rt.store.unit_of_work() as uow:
        if kindergartens:
            uow.kindergartens.add_many(kindergartens)
        for i, (kg, grade) in enumerate(plan):
            sex = Sex.M if i % 2 else Sex.F
            born = BIRTH[grade]
            number = resident_id(kg.region_code, born, i + 1, sex)
            child = Child(
                f"c{i:04d}",
                "孩子" + "".join("〇一二三四五六七八九"[int(d)] for d in str(i)),
                sex,
                born,
                IdentityDocument(DocumentKind.RESIDENT, number),
                guardians=(Guardian("家长", "mother", "+8613800138000"),),
            )
            uow.children.add(child)
            ctx = machine.Context(today=today, policy=rt.policy, kindergarten=kg, child=child)
            temp = f"L{kg.region_code}{born:%Y%m%d}{i:04d}"
            reg = machine.Change(
                ChangeKind.REGISTER, today, grade=grade, child_id=child.id, temp_number=temp
            )
            rec, ev1 = machine.apply(None, reg, context=ctx, recorded_at=now, record_id=f"r{i:04d}")
            rec2, ev2 = machine.apply(
                rec, machine.Change(ChangeKind.APPROVE, today), context=ctx, recorded_at=now
            )
            uow.records.add(rec2)
            uow.changes.append_many([ev1, ev2])
            out.append(rec2)
        uow.commit()
    return out


StoreFactory = Callable[[], Store]


@contextmanager
def make_store(kind: str, tmp: Path, sql_url: str | None = None) -> Iterator[Store]:
    """A fresh empty store of ``kind`` (memory, files, sqlite, postgres, mysql)."""
    if kind == "memory":
        yield MemoryStore()
        return
    if kind == "files":
        from studentstatus.adapters.files import FileStore

        path = tmp / f"fs-{uuid.uuid4().hex[:8]}"
        store = FileStore(path)
        try:
            yield store
        finally:
            store.close()
        return
    from studentstatus.adapters.sql import SqlStore

    url = sql_url or f"sqlite:///{tmp / f'db-{uuid.uuid4().hex[:8]}.sqlite'}"
    prefix = f"t{uuid.uuid4().hex[:8]}_"
    sql = SqlStore(url, prefix=prefix, create=True)
    try:
        yield sql
    finally:
        if sql_url:
            sql.drop_schema()
        sql.close()
