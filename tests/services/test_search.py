"""Record search for portals (services.records.search_records) on every store.

Scope is part of the query (a kindergarten or county sees only its own records; a
number held outside the scope answers the same empty page as a number nobody holds),
pages run by record id without gaps or repeats, summaries mask every number and carry
no birth date or document number, and bad parameters are refused with stable codes.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest

from services._changes_world import KG_A, KG_B, KG_C, KG_D, OPS, runtime, seed
from studentstatus.adapters.memory import MemoryStore
from studentstatus.domain import numbers
from studentstatus.domain.enums import Grade, State
from studentstatus.domain.jurisdiction import Operator
from studentstatus.domain.model import Child
from studentstatus.errors import PermissionDenied, ValidationError
from studentstatus.ports import RecordSearch, Store
from studentstatus.services.records import MAX_LIMIT, RecordPage, search_records
from studentstatus.services.runtime import Runtime

PLAN = [
    (kg, g) for kg in (KG_A, KG_B, KG_C, KG_D) for g in (Grade.JUNIOR, Grade.MIDDLE, Grade.SENIOR)
]


class World:
    """A seeded store: twelve records, three per kindergarten, some with G numbers."""

    def __init__(self, store: Store) -> None:
        self.store = store
        rt = runtime(store)
        records = seed(rt, PLAN)
        with store.unit_of_work() as uow:
            kids = uow.children.get_many([r.child_id for r in records])
            updated = []
            for i, rec in enumerate(records):
                doc = kids[rec.child_id].document
                assert doc is not None
                if i % 4 == 0:  # a national number; the temporary one becomes a former number
                    rec = attrs.evolve(
                        rec,
                        national_number=numbers.g_number(doc.number),
                        former_numbers=(rec.temp_number or "",),
                    )
                if i == 5:
                    rec = attrs.evolve(rec, state=State.PENDING)
                updated.append(rec)
            self.records = {r.id: r for r in uow.records.update_many(updated)}
            self.children: dict[str, Child] = kids
            uow.commit()

    def rt(self) -> Runtime:
        return runtime(self.store)

    def ids(self, keep: Any = lambda r: True) -> list[str]:
        return sorted(i for i, r in self.records.items() if keep(r))

    def child(self, record_id: str) -> Child:
        return self.children[self.records[record_id].child_id]


def _store(kind: str, request: pytest.FixtureRequest, tmp: Path) -> Iterator[Store]:
    if kind == "memory":
        yield MemoryStore()
        return
    if kind == "files":
        from studentstatus.adapters.files import FileStore

        files = FileStore(tmp / "fs")
        yield files
        files.close()
        return
    from studentstatus.adapters.sql import SqlStore

    url = f"sqlite:///{tmp / 'db.sqlite'}" if kind == "sqlite" else request.getfixturevalue(kind)
    sql = SqlStore(url, prefix=f"se{uuid.uuid4().hex[:8]}_", create=True)
    try:
        yield sql
    finally:
        if kind != "sqlite":
            sql.drop_schema()
        sql.close()


@pytest.fixture(
    scope="module",
    params=[
        "memory",
        "files",
        "sqlite",
        pytest.param("postgres_url", marks=pytest.mark.postgres),
        pytest.param("mysql_url", marks=pytest.mark.mysql),
    ],
)
def world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    """One seeded store per backend, shared by the module's read-only tests."""
    tmp = tmp_path_factory.mktemp("search")
    for store in _store(request.param, request, tmp):
        yield World(store)


def _ids(page: RecordPage) -> list[str]:
    return [s.record_id for s in page.items]


def _all(world: World, operator: Operator, **filters: Any) -> list[str]:
    """Every page of a search, joined; each page but the last is full."""
    out: list[str] = []
    after = None
    while True:
        page = search_records(world.rt(), operator, limit=2, after=after, **filters)
        out.extend(_ids(page))
        if page.next_after is None:
            return out
        assert len(page.items) == 2
        after = page.next_after


# --------------------------------------------------------------------------- scope


def test_each_operator_sees_its_scope_only(world: World) -> None:
    rec = world.records
    assert _all(world, OPS["kgA"]) == world.ids(lambda r: r.kindergarten_code == KG_A.school_code)
    assert _all(world, OPS["c105"]) == world.ids(lambda r: r.region_code == "110105")
    assert _all(world, OPS["c108"]) == world.ids(lambda r: r.region_code == "110108")
    assert _all(world, OPS["city1101"]) == world.ids(lambda r: r.region_code.startswith("1101"))
    assert _all(world, OPS["p44"]) == world.ids(lambda r: r.region_code.startswith("44"))
    assert _all(world, OPS["ministry"]) == sorted(rec)
    assert _all(world, Operator.parse("county:110106")) == []


def test_kindergarten_filter_within_the_scope(world: World) -> None:
    b = KG_B.school_code
    assert _all(world, OPS["c105"], kindergarten=b) == world.ids(lambda r: r.kindergarten_code == b)
    assert _all(world, OPS["c108"], kindergarten=b) == []  # another county's school
    assert _all(world, OPS["kgA"], kindergarten=b) == []  # another school
    assert _all(world, OPS["kgA"], kindergarten=KG_A.school_code) == _all(world, OPS["kgA"])


def test_a_number_outside_the_scope_is_the_same_empty_page_as_no_number(world: World) -> None:
    outside = next(r for r in world.records.values() if r.region_code == "440305")
    inside = next(r for r in world.records.values() if r.region_code == "110105")
    assert outside.temp_number
    assert inside.temp_number
    county = OPS["c105"]
    absent = search_records(world.rt(), county, number="L110105209912310000")
    assert absent == RecordPage([], None)
    assert search_records(world.rt(), county, number=outside.temp_number) == absent
    assert search_records(world.rt(), OPS["kgA"], number=outside.temp_number) == absent
    assert _ids(search_records(world.rt(), county, number=inside.temp_number)) == [inside.id]
    assert _ids(search_records(world.rt(), OPS["p44"], number=outside.temp_number)) == [outside.id]


# --------------------------------------------------------------------------- filters


def test_numbers_national_temporary_and_former(world: World) -> None:
    rec = next(r for r in world.records.values() if r.national_number)
    assert rec.national_number is not None
    former = rec.former_numbers[0]
    op = Operator.parse(f"county:{rec.region_code}")
    for number in (rec.national_number, former, former.lower(), f" {former[:7]}-{former[7:]} "):
        assert _ids(search_records(world.rt(), op, number=number)) == [rec.id], number


def test_document_name_and_birth_date(world: World) -> None:
    rid = world.ids()[4]
    kid = world.child(rid)
    assert kid.document is not None
    ministry = OPS["ministry"]
    doc = kid.document.number
    assert _ids(search_records(world.rt(), ministry, document=doc.lower())) == [rid]
    by_name = world.ids(lambda r: world.children[r.child_id].name == kid.name)
    assert _ids(search_records(world.rt(), ministry, name=f" {kid.name} ")) == by_name
    assert rid in by_name
    born = kid.birth_date
    assert _ids(search_records(world.rt(), ministry, name=kid.name, birth_date=born)) == [rid]
    assert _ids(search_records(world.rt(), ministry, name=kid.name, birth_date=str(born))) == [rid]
    assert search_records(world.rt(), ministry, name="没有这个人").items == []
    assert search_records(world.rt(), ministry, name="", number="").items  # empty = not given


def test_state_and_grade_filters(world: World) -> None:
    ministry = OPS["ministry"]
    pending = world.ids(lambda r: r.state is State.PENDING)
    assert pending
    assert _all(world, ministry, state="PENDING") == pending
    assert _all(world, ministry, state="待核准") == pending
    assert _all(world, ministry, state=State.PENDING) == pending
    seniors = world.ids(lambda r: r.grade is Grade.SENIOR)
    assert _all(world, ministry, grade="大班") == seniors
    assert _all(world, OPS["c105"], grade="senior", state="ACTIVE") == world.ids(
        lambda r: r.grade is Grade.SENIOR and r.region_code == "110105" and r.state is State.ACTIVE
    )


# --------------------------------------------------------------------------- paging


@pytest.mark.parametrize("limit", [1, 3, 5, 11, 12, 13, MAX_LIMIT])
def test_pages_return_every_record_once_in_id_order(world: World, limit: int) -> None:
    seen: list[str] = []
    after = None
    pages = 0
    while True:
        page = search_records(world.rt(), OPS["ministry"], limit=limit, after=after)
        pages += 1
        assert len(page.items) <= limit
        seen.extend(_ids(page))
        if page.next_after is None:
            break
        assert page.next_after == page.items[-1].record_id
        after = page.next_after
    assert seen == world.ids()
    assert pages == max(1, -(-len(seen) // limit))  # no empty last page


# --------------------------------------------------------------------------- privacy


def test_summaries_mask_numbers_and_leave_out_birth_dates_and_documents(world: World) -> None:
    page = search_records(world.rt(), OPS["ministry"], limit=MAX_LIMIT)
    text = json.dumps(page.to_dict(), ensure_ascii=False) + repr(page)
    for rid, rec in world.records.items():
        kid = world.child(rid)
        assert kid.document is not None
        secrets = [kid.document.number, kid.document.number[6:14], kid.birth_date.isoformat()]
        secrets += [n for n in (rec.national_number, rec.temp_number, *rec.former_numbers) if n]
        for secret in secrets:
            assert secret not in text
    item = next(s for s in page.items if s.national_number)
    assert item.national_number is not None
    assert "*" in item.national_number
    assert set(page.items[0].to_dict()) == {
        "record_id", "name", "sex", "kindergarten_code", "region_code", "state", "grade",
        "national_number", "temp_number", "entry_date",
    }  # fmt: skip


# --------------------------------------------------------------------------- refusals


@pytest.mark.parametrize(
    ("kwargs", "code", "field"),
    [
        ({"limit": 0}, "limit_invalid", "limit"),
        ({"limit": MAX_LIMIT + 1}, "limit_invalid", "limit"),
        ({"limit": True}, "limit_invalid", "limit"),
        ({"limit": "5"}, "limit_invalid", "limit"),
        ({"state": "ASLEEP"}, "state_invalid", "state"),
        ({"grade": "七年级"}, "grade_invalid", "grade"),
        ({"name": "王", "birth_date": "2020-02-30"}, "birth_date_invalid", "birth_date"),
        ({"birth_date": "2020-03-15"}, "birth_date_without_name", "birth_date"),
    ],
)
def test_bad_parameters_are_refused_with_codes(
    world: World, kwargs: dict[str, Any], code: str, field: str
) -> None:
    with pytest.raises(ValidationError) as info:
        search_records(world.rt(), OPS["ministry"], **kwargs)
    err = info.value
    assert (err.code, err.field) == (code, field)
    assert err.message_en
    assert err.message_zh != err.message_en


def test_an_operator_whose_role_may_not_view_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    from studentstatus.domain import jurisdiction

    rules = dict(jurisdiction.ROLE_RULES)
    rules["view"] = frozenset()
    monkeypatch.setattr(jurisdiction, "ROLE_RULES", rules)
    with pytest.raises(PermissionDenied):
        search_records(runtime(MemoryStore()), OPS["ministry"])


# --------------------------------------------------------------------------- fallback


class _NoSearch:
    """A records repository without ``search`` (a store written before it existed)."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def __getattr__(self, name: str) -> Any:
        if name == "search":
            raise AttributeError(name)
        return getattr(self._inner, name)


class _OldStore:
    def __init__(self, inner: Store) -> None:
        self.inner = inner

    def unit_of_work(self) -> Any:
        uow = self.inner.unit_of_work()
        uow.records = _NoSearch(uow.records)  # type: ignore[assignment]
        return uow

    def close(self) -> None:
        self.inner.close()


def test_stores_without_search_get_the_same_pages() -> None:
    store = MemoryStore()
    world = World(store)
    old = _OldStore(store)
    with old.unit_of_work() as uow:
        assert not isinstance(uow.records, RecordSearch)
    rid = world.ids()[4]
    kid = world.child(rid)
    rec = world.records[rid]
    assert kid.document is not None
    assert rec.temp_number is not None
    searches: list[tuple[Operator, dict[str, Any]]] = [
        (OPS["ministry"], {}),
        (OPS["c105"], {"limit": 2}),
        (OPS["c105"], {"limit": 2, "after": world.ids()[1]}),
        (OPS["kgB"], {"state": "ACTIVE"}),
        (OPS["ministry"], {"number": rec.temp_number}),
        (OPS["p44"], {"number": rec.temp_number}),
        (OPS["ministry"], {"document": kid.document.number}),
        (OPS["ministry"], {"name": kid.name, "birth_date": kid.birth_date}),
        (OPS["ministry"], {"name": kid.name, "limit": 1}),
        (OPS["c108"], {"grade": "MIDDLE"}),
    ]
    for op, kwargs in searches:
        assert search_records(runtime(old), op, **kwargs) == search_records(  # type: ignore[arg-type]
            runtime(store), op, **kwargs
        ), kwargs
