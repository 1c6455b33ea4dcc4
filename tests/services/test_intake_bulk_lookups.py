"""Duplicate look-ups of the intake: the bulk repository methods give the outcome of the
one-key-at-a-time port methods (the reference path), on every library adapter."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from studentstatus.adapters.one_by_one import (
    ChildrenOneByOne,
    ProblemsOneByOne,
    RecordsOneByOne,
)
from studentstatus.ports import BulkChildRepository, BulkProblemRepository, BulkRecordRepository
from studentstatus.services.intake import import_children

from ._registration_world import KG_B, OPS, cn, make_store, row, runtime, seed_kindergartens


class _Plain:
    """A repository proxy whose bulk methods are the one-by-one mixins' (an adapter without
    bulk queries), counting the one-key calls."""

    def __init__(self, inner: Any, calls: Counter[str]) -> None:
        self._inner = inner
        self._calls = calls

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._inner, name)
        if name in ("find_by_document", "find_by_identity", "for_child", "for_record"):
            self._calls[name] += 1
        return attr


class _PlainChildren(ChildrenOneByOne, _Plain):
    pass


class _PlainRecords(RecordsOneByOne, _Plain):
    pass


class _PlainProblems(ProblemsOneByOne, _Plain):
    pass


_PLAIN = {"children": _PlainChildren, "records": _PlainRecords, "problems": _PlainProblems}


class _PlainUnit:
    def __init__(self, inner: Any, calls: Counter[str]) -> None:
        self._inner = inner
        self._calls = calls

    def __enter__(self) -> Any:
        self._uow = self._inner.__enter__()
        for repo, proxy in _PLAIN.items():
            setattr(self, repo, proxy(getattr(self._uow, repo), self._calls))
        return self

    def __exit__(self, *exc: Any) -> None:
        self._inner.__exit__(*exc)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._uow, name)


class _PlainStore:
    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.calls: Counter[str] = Counter()

    def unit_of_work(self) -> Any:
        return _PlainUnit(self.inner.unit_of_work(), self.calls)

    def close(self) -> None:
        self.inner.close()


def _files() -> Iterator[list[dict[str, str]]]:
    """Three imports: originals; their twins (same ID; same identity without an ID), with
    in-file repeats; twins again (the originals' problems are still open)."""
    first = [row(i) for i in range(1, 21)]
    first += [row(100 + i, id_type="none", id_number="", name="无证" + cn(i)) for i in range(5)]
    yield first
    twins = [dict(first[i], kindergarten_code=KG_B.school_code) for i in (0, 3, 3, 7)]
    twins += [dict(first[20 + i], kindergarten_code=KG_B.school_code) for i in (0, 2, 2)]
    twins += [row(i) for i in range(40, 45)]
    yield twins
    yield [dict(first[i], kindergarten_code=KG_B.school_code) for i in (0, 7)] + [
        dict(first[21], kindergarten_code=KG_B.school_code)
    ]


def _outcome(store: Any) -> tuple[list[Any], list[Any]]:
    seed_kindergartens(store.inner if isinstance(store, _PlainStore) else store)
    rt = runtime(store)
    reports = []
    for rows in _files():
        rep = import_children(rt, OPS["c105"], rows)
        reports.append((rep.accepted, rep.problems, rep.records))
    with store.unit_of_work() as uow:
        problems = sorted(
            (p.record_id, p.kind.value, p.related_record_ids, p.id) for p in uow.problems.iter()
        )
    return reports, problems


def _check(kind: str, tmp_path: Path, url: str | None = None) -> None:
    with make_store(kind, tmp_path, url) as bulk_store:
        with bulk_store.unit_of_work() as uow:
            assert isinstance(uow.children, BulkChildRepository)
            assert isinstance(uow.records, BulkRecordRepository)
            assert isinstance(uow.problems, BulkProblemRepository)
        bulk = _outcome(bulk_store)
    with make_store(kind, tmp_path, url) as inner:
        plain_store = _PlainStore(inner)
        plain = _outcome(plain_store)
        assert plain_store.calls["find_by_document"] > 0  # the reference path was taken
        assert plain_store.calls["find_by_identity"] > 0
    assert bulk == plain
    problems = bulk[1]
    # Import 2: 3 ID twins (one twice in the file) -> 7 DUPLICATE_ID, 2 no-ID twins (one
    # twice) -> 5 SUSPECTED_DUPLICATE; import 3: two ID twins whose originals already have
    # open problems -> 2 more (on the new records only), one no-ID twin -> 2 more.
    assert Counter(k for _, k, _, _ in problems) == {"DUPLICATE_ID": 9, "SUSPECTED_DUPLICATE": 7}
    assert max(Counter((r, k) for r, k, _, _ in problems).values()) == 1  # one open per kind
    # A record that meets two stored twins (or a stored and an in-file one) names both.
    assert Counter(len(related) for _, _, related, _ in problems)[2] == 4


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
def test_bulk_duplicate_lookups_equal_the_one_key_path(kind: str, tmp_path: Path) -> None:
    _check(kind, tmp_path)


@pytest.mark.postgres
def test_bulk_duplicate_lookups_on_postgres(postgres_url: str, tmp_path: Path) -> None:
    _check("postgres", tmp_path, postgres_url)


@pytest.mark.mysql
def test_bulk_duplicate_lookups_on_mysql(mysql_url: str, tmp_path: Path) -> None:
    _check("mysql", tmp_path, mysql_url)
