"""The conformance kit catches broken adapters: each planted bug below (a MemoryStore subclass
with one deliberate fault) fails the test meant for it, with a readable message; the
reference store passes the same tests."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

import attrs
import pytest
from hypothesis.errors import Flaky

from studentstatus.adapters.memory import MemoryStore, MemoryUnitOfWork, Op, Working
from studentstatus.domain.enums import Grade, State
from studentstatus.domain.model import StatusRecord
from studentstatus.ports import Store
from studentstatus.testing.contract import StoreContract, differences, run_differential


class _NoSavepointUnit(MemoryUnitOfWork):
    """Applies a bulk call row by row and keeps the rows before a failing one: what an SQL
    adapter does without a savepoint per call."""

    def _apply(self, op: Op) -> list[Any]:
        out: list[Any] = []
        for item in op.items:
            out += super()._apply(Op(op.name, (item,)))
        return out


class NoSavepointStore(MemoryStore):
    def unit_of_work(self) -> MemoryUnitOfWork:
        return _NoSavepointUnit(self)


class _SharedUnit(MemoryUnitOfWork):
    """Every unit of the store writes into one shared working copy: uncommitted writes are
    visible to any other unit (a store "without concurrent units" that forgot isolation)."""

    def __init__(self, store: SharedStore) -> None:
        super().__init__(store)
        self._working = store.shared

    def rollback(self) -> None:
        super().rollback()
        store = self._store
        assert isinstance(store, SharedStore)
        store.shared = self._working

    def commit(self) -> None:
        super().commit()
        store = self._store
        assert isinstance(store, SharedStore)
        store.shared = self._working


class SharedStore(MemoryStore):
    def __init__(self) -> None:
        super().__init__()
        self.shared = Working(self._snapshot()[0])

    def unit_of_work(self) -> MemoryUnitOfWork:
        return _SharedUnit(self)


class _LossyUnit(MemoryUnitOfWork):
    """``records.add`` forgets the verification result (a column the adapter does not map)."""

    def _apply(self, op: Op) -> list[Any]:
        if op.name == "records.add":
            op = Op(op.name, tuple(attrs.evolve(r, verification=None) for r in op.items))
        return super()._apply(op)


class LossyStore(MemoryStore):
    def unit_of_work(self) -> MemoryUnitOfWork:
        return _LossyUnit(self)


def _kit(make: Callable[[], Store], concurrent: bool = True) -> StoreContract:
    class Kit(StoreContract):
        supports_concurrent_units = concurrent

        def make_store(self) -> Store:
            return make()

    return Kit()


def test_the_reference_passes_the_new_tests() -> None:
    """MemoryStore passes what the planted bugs fail (so the tests can pass at all)."""
    kit = _kit(MemoryStore)
    kit.test_bulk_call_is_atomic_inside_an_open_unit()
    kit.test_units_are_isolated_without_concurrency(MemoryStore())
    kit.test_units_see_their_own_writes(MemoryStore())


def test_a_store_without_savepoints_is_caught() -> None:
    """add_many([r2, r1]) fails on r1; the host catches it and commits: r2 must not stay."""
    kit = _kit(NoSavepointStore)
    kit.test_failed_bulk_write_writes_nothing(NoSavepointStore())  # the old test passes
    with pytest.raises(AssertionError) as err:
        kit.test_bulk_call_is_atomic_inside_an_open_unit()
    text = str(err.value)
    assert "records.add_many" in text
    assert "records[r2]: memory=missing, adapter=present" in text


def test_a_store_without_isolation_is_caught() -> None:
    """A store that declares no concurrent units still gets an isolation test, which fails."""
    kit = _kit(SharedStore, concurrent=False)
    with pytest.raises(pytest.skip.Exception):
        kit.test_uncommitted_writes_are_invisible(SharedStore())  # skipped without concurrency
    with pytest.raises(AssertionError) as err:
        kit.test_units_are_isolated_without_concurrency(SharedStore())
    assert "another's uncommitted writes" in str(err.value)
    assert "memory=" in str(err.value)


def test_a_differential_failure_names_entity_field_and_both_values() -> None:
    """The differential machine reports which record, which field and both values."""
    with pytest.raises((AssertionError, Flaky)) as err:
        run_differential(LossyStore, max_examples=60, step_count=25, shrink=False)
    text = str(err.value)
    assert ".verification: memory=<VerificationResult." in text, text
    assert "adapter=None" in text, text


def test_differences_lists_every_field() -> None:
    """Two fields of one record and a missing record, one line each."""
    a = StatusRecord(
        "r1", "c1", "1111000001", "110105", State.ACTIVE, Grade.JUNIOR, date(2023, 9, 1)
    )
    b = attrs.evolve(a, kindergarten_code="2222000002", version=2)
    found = differences({"records": [a, attrs.evolve(a, id="r2")]}, {"records": [b]})
    assert found == [
        "records[r1].kindergarten_code: memory='1111000001', adapter='2222000002'",
        "records[r1].version: memory=0, adapter=2",
        "records[r2]: memory=present, adapter=missing",
    ]
