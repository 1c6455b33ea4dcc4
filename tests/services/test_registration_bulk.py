"""Approve, verify and issue at scale: bulk problem methods (with the one-call-per-item
fallback as the reference path) and ``collect=False`` reports."""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from studentstatus.adapters.memory import MemoryStore
from studentstatus.adapters.one_by_one import NumbersOneByOne, ProblemsOneByOne
from studentstatus.adapters.population import MemoryPopulationRegistry
from studentstatus.domain.enums import ProblemKind, ProblemStatus
from studentstatus.domain.model import ProblemRecord
from studentstatus.ports import BulkProblemRepository, Store
from studentstatus.services.approval import approve_records
from studentstatus.services.intake import import_children
from studentstatus.services.numbers import IssuedItem, issue_numbers
from studentstatus.services.verification import verify_records

from ._registration_world import (
    OPS,
    bad_checksum,
    make_store,
    row,
    runtime,
    seed_kindergartens,
)

# --------------------------------------------------------------------------- bulk problem methods


class _PlainProblems(ProblemsOneByOne):
    """A problem repository without bulk queries (the one-by-one mixin's), counting calls."""

    def __init__(self, inner: Any, calls: Counter[str]) -> None:
        self._inner = inner
        self.calls = calls

    def _call(self, name: str, *args: Any, **kw: Any) -> Any:
        self.calls[name] += 1
        return getattr(self._inner, name)(*args, **kw)

    def add(self, problem: ProblemRecord) -> None:
        self._call("add", problem)

    def add_many(self, problems: Iterable[ProblemRecord]) -> int:
        return int(self._call("add_many", problems))

    def get(self, problem_id: str) -> ProblemRecord:
        return self._call("get", problem_id)  # type: ignore[no-any-return]

    def update(self, problem: ProblemRecord) -> ProblemRecord:
        return self._call("update", problem)  # type: ignore[no-any-return]

    def for_record(self, record_id: str) -> list[ProblemRecord]:
        return self._call("for_record", record_id)  # type: ignore[no-any-return]

    def iter(self, **kw: Any) -> Iterator[ProblemRecord]:
        return self._call("iter", **kw)  # type: ignore[no-any-return]


class _BulkProblems(_PlainProblems):
    def update_many(self, problems: Sequence[ProblemRecord]) -> list[ProblemRecord]:
        return self._call("update_many", problems)  # type: ignore[no-any-return]

    def for_records(self, record_ids: Sequence[str], **kw: Any) -> dict[str, list[ProblemRecord]]:
        return self._call("for_records", record_ids, **kw)  # type: ignore[no-any-return]


class _PlainNumbers(NumbersOneByOne):
    """A number registry without bulk queries (the one-by-one mixin's), counting calls."""

    def __init__(self, inner: Any, calls: Counter[str]) -> None:
        self._inner = inner
        self.calls = calls

    def _call(self, name: str, *args: Any) -> Any:
        self.calls[name] += 1
        return getattr(self._inner, name)(*args)

    def claim(self, issued: Any) -> None:
        self._call("claim", issued)

    def claim_many(self, issued: Any) -> int:
        return int(self._call("claim_many", issued))

    def resolve(self, number: str) -> Any:
        return self._call("resolve", number)

    def next_sequence(self, region_code: str, birth_date: date) -> int:
        return int(self._call("next_sequence", region_code, birth_date))

    def for_record(self, record_id: str) -> Any:
        return self._call("for_record", record_id)

    def with_prefix(self, prefix: str) -> Any:
        return self._call("with_prefix", prefix)


class _BulkNumbers(_PlainNumbers):
    def next_sequences(self, keys: Sequence[tuple[str, date]]) -> list[int]:
        return self._call("next_sequences", keys)  # type: ignore[no-any-return]


class _CountingUnit:
    """A unit of work whose ``problems`` is a counting proxy (set once the unit is entered)."""

    def __init__(self, inner: Any, store: _CountingStore) -> None:
        self._inner = inner
        self._store = store

    def __enter__(self) -> Any:
        uow = self._inner.__enter__()
        cls = _BulkProblems if self._store.bulk else _PlainProblems
        self.problems = cls(uow.problems, self._store.calls)
        numbers = _BulkNumbers if self._store.bulk else _PlainNumbers
        self.numbers = numbers(uow.numbers, self._store.calls)
        self._uow = uow
        return self

    def __exit__(self, *exc: Any) -> None:
        self._inner.__exit__(*exc)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._uow, name)


class _CountingStore:
    """Wraps a store: ``uow.problems`` counts calls, with or without the bulk methods."""

    def __init__(self, inner: Store, *, bulk: bool) -> None:
        self.inner = inner
        self.bulk = bulk
        self.calls: Counter[str] = Counter()

    def unit_of_work(self) -> Any:
        return _CountingUnit(self.inner.unit_of_work(), self)

    def close(self) -> None:
        self.inner.close()


@pytest.mark.parametrize("kind", ["memory", "files", "sqlite"])
def test_library_adapters_offer_the_bulk_problem_methods(kind: str, tmp_path: Path) -> None:
    if kind == "files":
        from studentstatus.adapters.files import FileStore

        store: Store = FileStore(tmp_path / "store")
    elif kind == "sqlite":
        from studentstatus.adapters.sql import SqlStore

        store = SqlStore("sqlite://", create=True)
    else:
        store = MemoryStore()
    with store.unit_of_work() as uow:
        assert isinstance(uow.problems, BulkProblemRepository)
    store.close()


def _world_rows() -> list[dict[str, str]]:
    rows = [row(i) for i in range(1, 41)]
    rows[3] = dict(rows[3], id_number=bad_checksum(rows[3]["id_number"]))  # INVALID_ID
    rows[5] = dict(rows[6], name="冒名")  # DUPLICATE_ID on rows 6 and 7
    for i in (8, 12, 13, 31):  # J numbers after approval, one region and birth date
        rows[i] = row(i + 1, id_type="none", id_number="")
    return rows


def _registry(rows: Sequence[dict[str, str]], *, wrong: Iterable[int] = ()) -> Any:
    bad = set(wrong)
    return MemoryPopulationRegistry(
        (
            r["id_number"],
            r["name"] + ("某" if i in bad else ""),
            r["sex"],
            date.fromisoformat(r["birth_date"]),
            "normal",
        )
        for i, r in enumerate(rows)
        if r["id_type"] == "resident"
    )


def _run_world(store: Any, *, collect: bool) -> tuple[list[Any], list[Any]]:
    """import → approve → verify (mismatches) → verify again (fixed) → issue; the reports
    (without the collected lists) and what each streaming callback saw."""
    seed_kindergartens(store)
    rt = runtime(store)
    rows = _world_rows()
    imported = import_children(rt, OPS["kgA"], rows)
    assert imported.accepted == len(rows)
    approved_ids: list[str] = []
    approved = approve_records(
        rt,
        OPS["c105"],
        all_pending=True,
        chunk_size=7,
        collect=collect,
        on_approved=approved_ids.append,
    )
    if isinstance(store, _CountingStore):
        store.calls.clear()  # count verification and issuing only
    first = verify_records(rt, OPS["p11"], _registry(rows, wrong=range(0, 40, 5)), chunk_size=6)
    second = verify_records(rt, OPS["p11"], _registry(rows, wrong=[10]), chunk_size=6)
    issued_items: list[IssuedItem] = []
    numbers = issue_numbers(
        rt, OPS["p11"], chunk_size=50, collect=collect, on_issued=issued_items.append
    )
    reports = [
        approved.approved_count,
        approved.refused,
        first.to_dict(),
        second.to_dict(),
        numbers.skipped,
        numbers.counts,
    ]
    if collect:
        assert approved.approved == approved_ids
        assert numbers.issued == issued_items
    else:
        assert approved.approved == []
        assert numbers.issued == []
    assert approved.approved_count == len(approved_ids)
    assert numbers.counts == dict(Counter(i.kind.value for i in issued_items))
    return reports, [approved_ids, issued_items]


def _state(store: Store) -> dict[str, Any]:
    with store.unit_of_work() as uow:
        records = list(uow.records.iter())
        return {
            "records": records,
            "problems": list(uow.problems.iter()),
            "numbers": {r.id: uow.numbers.for_record(r.id) for r in records},
            "audit": [(a.action, a.subject, a.before, a.after) for a in uow.audit.iter()],
        }


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
def test_bulk_path_equals_one_call_per_item(kind: str, tmp_path: Path) -> None:
    """The whole flow through bulk problem methods leaves the same store and reports as the
    fallback (update/for_record one by one), and never falls back itself."""
    with contextlib.ExitStack() as stack:
        a = _CountingStore(stack.enter_context(make_store(kind, tmp_path)), bulk=True)
        b = _CountingStore(stack.enter_context(make_store(kind, tmp_path)), bulk=False)
        got_a = _run_world(a, collect=True)
        got_b = _run_world(b, collect=True)
        assert got_a == got_b
        assert _state(a.inner) == _state(b.inner)
        first, second = got_a[0][2], got_a[0][3]
        assert first["problems"] == {"NAME_MISMATCH": 8}
        # the fixed names; row 10 stays wrong, and so does the impostor of row 6 (the
        # registry has one row per number: the real child's)
        assert second["resolved"] == 6
        assert got_a[0][5] == {"G": 32, "J": 4}  # 40 - invalid, twins, row 10 - no ID
        # verify and issue never asked the bulk store one item at a time
        assert a.calls["update"] == a.calls["for_record"] == 0
        # one update_many per chunk of the second run (6 records read, skipped ones too) that
        # resolves problems; which chunks those are follows the records' id order
        read = second["checked"] + sum(second["skipped"].values())
        assert 1 <= a.calls["update_many"] <= -(-read // 6)
        assert b.calls["update"] == second["resolved"]  # the fallback: one call per problem
        assert a.calls["next_sequence"] == 0
        assert a.calls["next_sequences"] == 1  # one chunk of 50 holds the 4 J numbers …
        assert b.calls["next_sequence"] == 4  # … against one call per J number
        # … and the fallback store asked once per resolved problem / per checked record
        assert b.calls["update"] == 6
        assert b.calls["for_record"] > 40


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
def test_collect_false_streams_the_same_items(kind: str, tmp_path: Path) -> None:
    """``collect=False`` reports keep counts only; the callbacks see exactly the items a
    collecting run lists, and the store ends the same."""
    with contextlib.ExitStack() as stack:
        a = stack.enter_context(make_store(kind, tmp_path))
        b = stack.enter_context(make_store(kind, tmp_path))
        assert _run_world(a, collect=False) == _run_world(b, collect=True)
        assert _state(a) == _state(b)


def test_verification_reads_only_open_verification_problems() -> None:
    """An open problem of another kind (a duplicate) is not resolved by a match, a resolved
    verification problem is not resolved twice, and a twin's mismatch opens its own problem."""
    store = MemoryStore()
    seed_kindergartens(store)
    rt = runtime(store)
    a = row(1)
    import_children(rt, OPS["kgA"], [a, dict(a, name="冒名")])
    approve_records(rt, OPS["c105"], all_pending=True)
    verify_records(rt, OPS["p11"], MemoryPopulationRegistry([]))
    fixed = verify_records(rt, OPS["p11"], _registry([a]))
    assert fixed.resolved == 1  # the record whose name the registry now has
    again = verify_records(rt, OPS["p11"], _registry([a]))
    assert again.resolved == 0
    with store.unit_of_work() as uow:
        by_kind = Counter((p.kind, p.status) for p in uow.problems.iter())
    assert by_kind[(ProblemKind.DUPLICATE_ID, ProblemStatus.OPEN)] == 2
    assert by_kind[(ProblemKind.NOT_FOUND, ProblemStatus.RESOLVED)] == 1
    assert by_kind[(ProblemKind.NAME_MISMATCH, ProblemStatus.OPEN)] == 1  # the impostor
