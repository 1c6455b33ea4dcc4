"""A small world for the registration tests: kindergartens, operators, CSV rows, stores.

Real public ID vectors (worked examples of
docs/reference/domain.md) sit next to generated ones:
``11010520200315002X`` (F, 2020-03-15), ``510107201911300030`` (M, 2019-11-30),
``440306202109010045`` (F, 2021-09-01).
"""

from __future__ import annotations

import csv
import io
import random
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from studentstatus.adapters.memory import MemoryStore
from studentstatus.domain.enums import KindergartenType, Sex
from studentstatus.domain.jurisdiction import Operator
from studentstatus.domain.model import Kindergarten, Licence
from studentstatus.errors import StorageError
from studentstatus.ids.resident import check_digit
from studentstatus.ports import Store
from studentstatus.services.csvio import CHILD_COLUMNS
from studentstatus.services.runtime import FixedClock, Runtime

LIC = Licence("LIC-1", "区教委", date(2015, 1, 1), date(2035, 12, 31))
KG_A = Kindergarten(
    "1111000001", "12100000400000624D", "阳光幼儿园", "110105", KindergartenType.PUBLIC,
    licences=(LIC,),
)  # fmt: skip
KG_B = Kindergarten(
    "1111000002", "12100000400000624D", "朝阳二幼", "110105", KindergartenType.PUBLIC,
    licences=(LIC,),
)  # fmt: skip
KG_C = Kindergarten(
    "1111000003", "12100000400000624D", "海淀幼儿园", "110108", KindergartenType.PUBLIC,
    licences=(LIC,),
)  # fmt: skip
KG_D = Kindergarten(
    "1144000001", "52440106MJ0000122D", "南山幼儿园", "440305", KindergartenType.PUBLIC,
    licences=(LIC,),
)  # fmt: skip
KG_X = Kindergarten("1111000009", "12100000400000624D", "无证园", "110105", KindergartenType.PUBLIC)
KINDERGARTENS = (KG_A, KG_B, KG_C, KG_D, KG_X)

OPS = {
    "kgA": Operator.parse("kindergarten:1111000001"),
    "kgB": Operator.parse("kindergarten:1111000002"),
    "kgC": Operator.parse("kindergarten:1111000003"),
    "c105": Operator.parse("county:110105"),
    "c108": Operator.parse("county:110108"),
    "c305": Operator.parse("county:440305"),
    "p11": Operator.parse("province:11"),
    "p44": Operator.parse("province:44"),
    "ministry": Operator.parse("ministry"),
}

NOW = datetime(2025, 9, 2, 9, tzinfo=UTC)
ENTRY = "2025-09-01"

# Real vectors and the grade they fit in school year 2025 (cut-off 31 August 2025).
REAL = {
    "11010520200315002X": ("F", date(2020, 3, 15), "SENIOR"),
    "510107201911300030": ("M", date(2019, 11, 30), "SENIOR"),
    "440306202109010045": ("F", date(2021, 9, 1), "NURSERY"),
}


def resident_id(region: str, born: date, serial: int, sex: str) -> str:
    """A checksum-valid resident ID (GB 11643) for a generated child."""
    order = (serial * 2 + (1 if sex == "M" else 0)) % 1000
    body = f"{region}{born:%Y%m%d}{order:03d}"
    return body + check_digit(body)


def bad_checksum(number: str) -> str:
    """The same number with a wrong check character."""
    good = number[-1]
    wrong = "0" if good != "0" else "1"
    return number[:-1] + wrong


def runtime(store: Store, at: datetime = NOW, seed: int = 20250902) -> Runtime:
    """A runtime with a fixed clock and a seeded random source."""
    return Runtime(store, FixedClock(at), random.Random(seed))


def seed_kindergartens(store: Store, kgs: Sequence[Kindergarten] = KINDERGARTENS) -> None:
    """Add the kindergartens."""
    with store.unit_of_work() as uow:
        uow.kindergartens.add_many(kgs)
        uow.commit()


def cn(n: int) -> str:
    """``n`` in Chinese digits (〇一二…): unique names a person may have (no ASCII digits)."""
    return "".join("〇一二三四五六七八九"[int(d)] for d in str(n))


def row(serial: int = 1, **over: Any) -> dict[str, str]:
    """A valid intake row (a MIDDLE child in school year 2025 at KG_A) with overrides."""
    sex = over.pop("sex", "M" if serial % 2 else "F")
    born = date(2020, 10, 3) if "birth_date" not in over else None
    number = resident_id("110105", born, serial, sex) if born else ""
    values = {
        "kindergarten_code": KG_A.school_code,
        "name": "孩子" + cn(serial),
        "sex": sex,
        "birth_date": born.isoformat() if born else "",
        "id_type": "resident",
        "id_number": number,
        "nationality": "CHN",
        "ethnicity": "01",
        "hukou_region": "110105",
        "hukou_rural": "0",
        "residence_region": "110105",
        "guardian_name": "家长",
        "guardian_relation": "mother",
        "guardian_phone": f"1380013{serial % 10000:04d}",
        "entry_date": ENTRY,
        "grade": "MIDDLE",
    }
    values.update({k: str(v) for k, v in over.items()})
    return values


def real_row(number: str, **over: Any) -> dict[str, str]:
    """A row for one of the real public ID vectors."""
    sex, born, grade = REAL[number]
    return row(
        1,
        **{
            "sex": sex,
            "birth_date": born.isoformat(),
            "id_number": number,
            "grade": grade,
            **over,
        },
    )


def csv_bytes(
    rows: Sequence[Mapping[str, str]],
    *,
    header: Sequence[str] = CHILD_COLUMNS,
    bom: bool = False,
) -> bytes:
    """The rows as CSV bytes (UTF-8, optional BOM)."""
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(header)
    for r in rows:
        w.writerow([r.get(h, "") for h in header])
    data = out.getvalue().encode("utf-8")
    return (b"\xef\xbb\xbf" + data) if bom else data


def counts(store: Store) -> dict[str, int]:
    """How many records, problems, audit entries… the store holds (for before/after checks)."""
    with store.unit_of_work() as uow:
        records = list(uow.records.iter())
        return {
            "records": len(records),
            "children": len(uow.children.get_many([r.child_id for r in records])),
            "changes": sum(1 for _ in uow.changes.iter()),
            "problems": sum(1 for _ in uow.problems.iter()),
            "numbers": sum(len(uow.numbers.for_record(r.id)) for r in records),
            "audit": sum(1 for _ in uow.audit.iter()),
            "roster": sum(1 for _ in uow.roster.iter()),
        }


@contextmanager
def make_store(kind: str, tmp: Path, sql_url: str | None = None) -> Iterator[Store]:
    """A fresh empty store: memory, sqlite (a file), postgres or mysql (unique table prefix)."""
    if kind == "memory":
        yield MemoryStore()
        return
    from studentstatus.adapters.sql import SqlStore

    if kind == "sqlite":
        store = SqlStore(f"sqlite:///{tmp / ('reg-' + uuid.uuid4().hex[:8] + '.db')}", create=True)
        try:
            yield store
        finally:
            store.close()
        return
    assert sql_url is not None
    store = SqlStore(sql_url, prefix=f"reg{uuid.uuid4().hex[:8]}_", create=True)
    try:
        yield store
    finally:
        store.drop_schema()
        store.close()


class _FailingRepo:
    def __init__(self, inner: Any, state: dict[str, int]) -> None:
        self._inner = inner
        self._state = state

    def add_many(self, items: Any) -> int:
        self._state["calls"] += 1
        if self._state["calls"] == self._state["fail_at"]:
            raise StorageError("injected failure")
        result: int = self._inner.add_many(items)
        return result

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class _FailingUow:
    def __init__(self, inner: Any, state: dict[str, int]) -> None:
        self._inner = inner
        self._state = state

    def __enter__(self) -> _FailingUow:
        self._inner.__enter__()
        self.records = _FailingRepo(self._inner.records, self._state)
        return self

    def __exit__(self, *exc: Any) -> None:
        self._inner.__exit__(*exc)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class FailingStore:
    """Wraps a store: the ``fail_at``-th ``records.add_many`` call raises StorageError."""

    def __init__(self, inner: Store, fail_at: int) -> None:
        self.inner = inner
        self.state = {"calls": 0, "fail_at": fail_at}

    def unit_of_work(self) -> Any:
        return _FailingUow(self.inner.unit_of_work(), self.state)

    def close(self) -> None:
        self.inner.close()


__all__ = [
    "ENTRY",
    "KG_A",
    "KG_B",
    "KG_C",
    "KG_D",
    "KG_X",
    "NOW",
    "OPS",
    "REAL",
    "FailingStore",
    "Sex",
    "bad_checksum",
    "counts",
    "csv_bytes",
    "make_store",
    "real_row",
    "resident_id",
    "row",
    "runtime",
    "seed_kindergartens",
]
