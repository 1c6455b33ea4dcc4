"""A world for the readable-report tests: Guangdong and Beijing kindergartens, transfers.

Real GB/T 2260 counties in three Guangdong cities (Shenzhen 4403, Guangzhou
4401, Dongguan 4419) and two Beijing districts, children in every grade, and
TRANSFER events whose before/after carry the kindergartens (as the changes
service writes them), so that a province's flows have several cities.
"""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta

from studentstatus.domain.enums import ChangeKind, Grade, KindergartenType, Sex, State
from studentstatus.domain.model import Child, Kindergarten, StatusChange, StatusRecord

NOW = datetime(2026, 11, 30, 10, tzinfo=UTC)

KGS = (
    Kindergarten("4411000001", "", "南山星星幼儿园", "440305", KindergartenType.PUBLIC),
    Kindergarten(
        "4411000002", "", "福田阳光幼儿园", "440304", KindergartenType.PRIVATE_NONPROFIT, True
    ),
    Kindergarten("4411000003", "", "天河小树幼儿园", "440106", KindergartenType.PUBLIC),
    Kindergarten("4411000004", "", "东莞春苗幼儿园", "441900", KindergartenType.PRIVATE_FORPROFIT),
    Kindergarten("1111000001", "", "朝阳一幼", "110105", KindergartenType.PUBLIC),
    Kindergarten(
        "1111000002", "", "海淀小树幼儿园", "110108", KindergartenType.PRIVATE_NONPROFIT, True
    ),
)

# origin kindergarten, destination kindergarten, how many transfers
TRANSFERS = (
    ("4411000004", "4411000001", 7),  # Dongguan -> Shenzhen
    ("4411000003", "4411000002", 3),  # Guangzhou -> Shenzhen
    ("4411000001", "4411000002", 2),  # Shenzhen -> Shenzhen (another district)
    ("1111000002", "1111000001", 4),  # Haidian -> Chaoyang
    ("1111000001", "4411000001", 1),  # Beijing -> Guangdong
)


def make_world(rng: random.Random, n: int = 240) -> dict[str, list]:  # type: ignore[type-arg]
    """``n`` ACTIVE children spread over :data:`KGS` and the :data:`TRANSFERS` events."""
    kg_by_code = {k.school_code: k for k in KGS}
    children: list[Child] = []
    records: list[StatusRecord] = []
    changes: list[StatusChange] = []
    grades = [Grade.NURSERY, Grade.JUNIOR, Grade.MIDDLE, Grade.SENIOR]
    for i in range(n):
        kg = KGS[i % len(KGS)]
        grade = grades[rng.randrange(4)]
        birth = date(2024 - grade.rank, 8, 31) - timedelta(days=rng.randrange(0, 365))
        children.append(Child(f"c{i:05d}", f"儿童{i}", rng.choice([Sex.M, Sex.F]), birth, None))
        records.append(
            StatusRecord(
                f"r{i:05d}",
                f"c{i:05d}",
                kg.school_code,
                kg.region_code,
                State.ACTIVE,
                grade,
                date(2026, 9, 1),
            )
        )
    seq = 0
    for origin, dest, count in TRANSFERS:
        a, b = kg_by_code[origin], kg_by_code[dest]
        for _ in range(count):
            rec = records[seq]
            seq += 1
            changes.append(
                StatusChange(
                    rec.id,
                    2,
                    ChangeKind.TRANSFER,
                    State.ACTIVE,
                    State.ACTIVE,
                    date(2026, 10, 1) + timedelta(days=seq),
                    NOW,
                    "county:" + b.region_code,
                    before={"kindergarten_code": a.school_code, "region_code": a.region_code},
                    after={"kindergarten_code": b.school_code, "region_code": b.region_code},
                )
            )
    return {"children": children, "records": records, "changes": changes}


def seed(store, world: dict[str, list]) -> None:  # type: ignore[no-untyped-def,type-arg]
    """Write ``world`` (and :data:`KGS`) into ``store``."""
    with store.unit_of_work() as uow:
        uow.kindergartens.add_many(KGS)
        uow.children.add_many(world["children"])
        uow.records.add_many(world["records"])
        uow.changes.append_many(world["changes"])
        uow.commit()
