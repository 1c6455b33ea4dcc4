"""The population registry's compact index (sorted 64-bit arrays, runs, merges) against a
plain dict as the reference, and its size."""

from __future__ import annotations

import tracemalloc
from datetime import date, timedelta
from typing import Any
from unittest import mock

from hypothesis import given, settings
from hypothesis import strategies as st

from studentstatus.adapters import population
from studentstatus.adapters.population import MemoryPopulationRegistry, Query
from studentstatus.domain.enums import VerificationResult
from studentstatus.ids.resident import check_digit

_STATUS = {"normal": 0, "正常": 0, "deceased": 1, "死亡": 1, "cancelled": 2, "注销": 2}
_SEX = {"M": "M", "男": "M", "F": "F", "女": "F"}


class _ReferenceRegistry:
    """The obvious implementation: a dict of the normalised number → the row (last wins)."""

    def __init__(self) -> None:
        self.rows: dict[str, tuple[str, str, date, int]] = {}

    def add(self, number: str, name: str, sex: str, born: date, status: str) -> None:
        self.rows[number.strip().upper()] = (name.strip(), _SEX[sex], born, _STATUS[status])

    def answer(self, q: Query) -> VerificationResult:
        found = self.rows.get(q.number.strip().upper())
        if found is None:
            return VerificationResult.NOT_FOUND
        name, sex, born, status = found
        if status:
            return VerificationResult.DECEASED if status == 1 else VerificationResult.CANCELLED
        if name != q.name.strip():
            return VerificationResult.NAME_MISMATCH
        if sex != q.sex or born != q.birth_date:
            return VerificationResult.INFO_MISMATCH
        return VerificationResult.MATCH


def _number(i: int, lower_x: bool = False) -> str:
    body = f"44{i % 10000:04d}2020{1 + i % 12:02d}{1 + i % 28:02d}{i % 1000:03d}"
    number = body + check_digit(body)
    return number.lower() if lower_x else number


_numbers = st.one_of(
    st.integers(0, 40).map(_number),
    st.integers(0, 40).map(lambda i: _number(i, lower_x=True)),
    st.sampled_from(["E1234567", " ABC-9 ", "1101052020"]),  # not resident-ID shaped
)
_rows = st.tuples(
    _numbers,
    st.sampled_from(["王小明", "王小红", " 王小明 ", "Zoë", "𠮷田"]),
    st.sampled_from(list(_SEX)),
    st.dates(date(1900, 1, 1), date(2030, 12, 31)),
    st.sampled_from(list(_STATUS)),
)
_queries = st.builds(
    Query,
    _numbers,
    st.sampled_from(["王小明", "王小红", "Zoë", "𠮷田"]),
    st.sampled_from(["M", "F"]),
    st.dates(date(1900, 1, 1), date(2030, 12, 31)),
)


@settings(max_examples=150, deadline=None)
@given(
    steps=st.lists(st.one_of(_rows.map(lambda r: ("add", r)), _queries.map(lambda q: ("ask", q)))),
    run=st.sampled_from([1, 2, 3, 65_536]),
    max_runs=st.sampled_from([0, 1, 4]),
)
def test_index_answers_like_a_dict(steps: list[tuple[str, Any]], run: int, max_runs: int) -> None:
    """Adds and look-ups in any order, with tiny runs (so rows go through runs and merges):
    every answer and the size equal the dict reference's; the last row of a number wins."""
    ref = _ReferenceRegistry()
    with (
        mock.patch.object(population, "_RUN", run),
        mock.patch.object(population, "_MAX_RUNS", max_runs),
    ):
        reg = MemoryPopulationRegistry()
        asked: list[Query] = []
        for kind, item in steps:
            if kind == "add":
                reg.add(*item)
                ref.add(*item)
            else:
                asked.append(item)
                got = reg.verify([item])[item.number]
                assert got is ref.answer(item), item
        assert len(reg) == len(ref.rows)
        for q in asked:  # again after the full merge that len() does
            assert reg.verify([q])[q.number] is ref.answer(q)


def test_index_from_rows_keeps_the_last_row_of_a_number() -> None:
    n = _number(7)
    reg = MemoryPopulationRegistry(
        [(n, "甲", "M", date(2020, 1, 1), "deceased"), (n, "乙", "F", date(2020, 1, 2), "normal")]
    )
    assert len(reg) == 1
    assert reg.verify([Query(n, "乙", "F", date(2020, 1, 2))])[n] is VerificationResult.MATCH


def test_index_packs_the_far_ends_of_the_calendar() -> None:
    """The birth date's ordinal has 22 bits: date.min and date.max round-trip exactly."""
    a, b = _number(1), _number(2)
    reg = MemoryPopulationRegistry(
        [(a, "甲", "M", date.min, "normal"), (b, "乙", "F", date.max, "normal")]
    )
    assert reg.verify([Query(a, "甲", "M", date.min)])[a] is VerificationResult.MATCH
    assert reg.verify([Query(b, "乙", "F", date.max)])[b] is VerificationResult.MATCH
    assert reg.verify([Query(b, "乙", "F", date.max - timedelta(days=1))])[b] is (
        VerificationResult.INFO_MISMATCH
    )


def test_index_is_compact() -> None:
    """About 16 bytes a person once built (the dict of Python ints it replaced held ~117)."""
    n = 40_000
    rows = [(_number(i), "王子涵", "M", date(2021, 1, 1), "normal") for i in range(n)]
    tracemalloc.start()
    try:
        reg = MemoryPopulationRegistry(rows)
        retained, _peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(reg) == n
    assert retained / n < 30, retained / n
