"""Shared data for the monitoring tests: kindergartens, children, records, events, attendance."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta

from studentstatus.adapters.files import FileStore
from studentstatus.adapters.memory import MemoryStore
from studentstatus.adapters.sql import SqlStore
from studentstatus.domain.enums import (
    AbsenceReason,
    AttendanceStatus,
    ChangeKind,
    Grade,
    KindergartenType,
    ProblemKind,
    ProblemStatus,
    Sex,
    State,
)
from studentstatus.domain.model import (
    AttendanceEntry,
    Child,
    IdentityDocument,
    Kindergarten,
    ProblemRecord,
    StatusChange,
    StatusRecord,
)
from studentstatus.ids import DocumentType
from studentstatus.services.runtime import FixedClock, Runtime

NOW = datetime(2026, 10, 30, 10, tzinfo=UTC)
TODAY = NOW.date()

# Real GB/T 2260 counties: Beijing Chaoyang, Haidian; Chengdu Jinjiang; Shenzhen Nanshan.
COUNTIES = ("110105", "110108", "510104", "440305")
KGS = (
    Kindergarten("1111000001", "", "朝阳一幼", "110105", KindergartenType.PUBLIC),
    Kindergarten("1111000002", "", "朝阳阳光", "110105", KindergartenType.PRIVATE_NONPROFIT, True),
    Kindergarten("1111000003", "", "海淀小树", "110108", KindergartenType.PRIVATE_FORPROFIT),
    Kindergarten("5111000001", "", "锦江一幼", "510104", KindergartenType.PUBLIC),
    Kindergarten("4411000001", "", "南山星星", "440305", KindergartenType.PRIVATE_NONPROFIT, True),
)
KG_BY_CODE = {k.school_code: k for k in KGS}

# Public vector from GB 11643 examples (check digit valid): used as a real document.
REAL_ID = "11010519491231002X"


def id_number(region: str, birth: date, seq: int) -> str:
    """A checksum-valid resident ID number (GB 11643 MOD 11-2)."""
    body = f"{region}{birth:%Y%m%d}{seq % 1000:03d}"
    weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
    s = sum(int(c) * w for c, w in zip(body, weights))
    return body + "10X98765432"[s % 11]


def make_world(
    rng: random.Random, n: int, *, days: int = 12, with_events: bool = True
) -> dict[str, list]:
    """Random but valid data of ``n`` children spread over :data:`KGS`."""
    children: list[Child] = []
    records: list[StatusRecord] = []
    changes: list[StatusChange] = []
    problems: list[ProblemRecord] = []
    attendance: list[AttendanceEntry] = []
    grades = [Grade.NURSERY, Grade.JUNIOR, Grade.MIDDLE, Grade.SENIOR, None]
    states = [State.ACTIVE] * 6 + [State.PENDING, State.WITHDRAWN, State.SUSPENDED]
    for i in range(n):
        kg = rng.choice(KGS)
        birth = date(2020, 1, 1) + timedelta(days=rng.randrange(0, 1500))
        hukou = rng.choice([*COUNTIES, "370102", None, "1101"])
        doc = IdentityDocument(DocumentType.RESIDENT, id_number(kg.region_code, birth, i))
        child = Child(
            f"c{i:05d}",
            "儿童" + "".join("〇一二三四五六七八九"[int(d)] for d in str(i)),
            rng.choice([Sex.M, Sex.F]),
            birth,
            doc,
            hukou_region=hukou,
            hukou_rural=rng.random() < 0.4,
        )
        state = rng.choice(states)
        rec = StatusRecord(
            f"r{i:05d}",
            child.id,
            kg.school_code,
            kg.region_code,
            state,
            rng.choice(grades) if state is not State.PENDING else Grade.JUNIOR,
            date(2025, 9, 1),
        )
        children.append(child)
        records.append(rec)
        if with_events:
            changes.append(
                StatusChange(
                    rec.id,
                    1,
                    ChangeKind.REGISTER,
                    None,
                    State.PENDING,
                    date(2025, 9, 1) + timedelta(days=rng.randrange(0, 500)),
                    NOW,
                    "kindergarten:" + kg.school_code,
                )
            )
            if rng.random() < 0.3:
                problems.append(
                    ProblemRecord(
                        f"p{i:05d}",
                        rec.id,
                        rng.choice(list(ProblemKind)),
                        kg.region_code,
                        kg.school_code,
                        NOW,
                        date(2027, 7, 31),
                        rng.choice(list(ProblemStatus)),
                    )
                )
            if state is State.ACTIVE:
                for d in range(days):
                    day = TODAY - timedelta(days=d)
                    if day.weekday() >= 5 or rng.random() < 0.2:
                        continue
                    st = rng.choice([AttendanceStatus.PRESENT, AttendanceStatus.ABSENT])
                    attendance.append(
                        AttendanceEntry(
                            rec.id,
                            day,
                            st,
                            AbsenceReason.SICK if st is AttendanceStatus.ABSENT else None,
                        )
                    )
                    if rng.random() < 0.1:  # a correction, appended later
                        attendance.append(AttendanceEntry(rec.id, day, AttendanceStatus.PRESENT))
    return {
        "children": children,
        "records": records,
        "changes": changes,
        "problems": problems,
        "attendance": attendance,
    }


def seed(store, world: dict[str, list], kgs=KGS) -> None:  # type: ignore[no-untyped-def]
    """Write ``world`` into ``store`` in one unit of work through the bulk paths."""
    with store.unit_of_work() as uow:
        uow.kindergartens.add_many(kgs)
        uow.children.add_many(world["children"])
        uow.records.add_many(world["records"])
        uow.changes.append_many(world["changes"])
        uow.problems.add_many(world["problems"])
        uow.attendance.add_many(world["attendance"])
        uow.commit()


def runtime(store, now: datetime = NOW, seed_: int = 7) -> Runtime:  # type: ignore[no-untyped-def]
    """A runtime with a fixed clock and a seeded random source."""
    return Runtime(store, FixedClock(now), random.Random(seed_))


def store_factories(tmp_path) -> Iterator[tuple[str, Callable[[], object]]]:  # type: ignore[no-untyped-def]
    """(name, factory) for the memory, file and SQLite stores."""
    yield "memory", MemoryStore
    yield "files", lambda: FileStore(tmp_path / "fs")
    yield "sqlite", lambda: SqlStore(f"sqlite:///{tmp_path}/s.db", create=True)
