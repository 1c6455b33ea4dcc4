"""The in-memory reference store runs the whole conformance kit, plus its own checks."""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime
from typing import Any

import attrs
import pytest

from studentstatus.adapters.memory import MemoryStore
from studentstatus.domain.enums import Grade, NumberKind, State
from studentstatus.domain.model import IssuedNumber, StatusRecord
from studentstatus.errors import ConflictError
from studentstatus.ports import Store, UnitOfWork
from studentstatus.testing.contract import StoreContract, run_differential


class TestMemoryStore(StoreContract):
    """MemoryStore against the kit."""

    def make_store(self) -> Store:
        """A fresh in-memory store."""
        return MemoryStore()


def _rec(rid: str) -> StatusRecord:
    return StatusRecord(
        rid, "c", "1111000001", "110105", State.PENDING, Grade.JUNIOR, date(2023, 9, 1)
    )


def test_unit_of_work_satisfies_protocol() -> None:
    """The memory unit of work is a runtime UnitOfWork."""
    with MemoryStore().unit_of_work() as uow:
        assert isinstance(uow, UnitOfWork)


def test_threads_racing_on_one_record_lose_no_update() -> None:
    """16 threads x 25 read-modify-update attempts: final version == successful updates."""
    store = MemoryStore()
    with store.unit_of_work() as uow:
        uow.records.add(_rec("r1"))
        uow.commit()
    wins: list[int] = []
    conflicts: list[int] = []
    seqs: list[int] = []

    def work() -> None:
        for _ in range(25):
            try:
                with store.unit_of_work() as uow:
                    rec = uow.records.get("r1")
                    uow.records.update(rec)
                    n = uow.numbers.next_sequence("110105", date(2020, 1, 1))
                    uow.commit()
                wins.append(1)
                seqs.append(n)
            except ConflictError:
                conflicts.append(1)

    threads = [threading.Thread(target=work) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with store.unit_of_work() as uow:
        assert uow.records.get("r1").version == len(wins)
    assert len(wins) + len(conflicts) == 16 * 25
    assert sorted(seqs) == list(range(1, len(wins) + 1))


def test_commit_time_check_catches_a_newer_version() -> None:
    """A stale write that passed at write time is refused at commit, and nothing is published."""
    store = MemoryStore()
    with store.unit_of_work() as uow:
        uow.records.add(_rec("r1"))
        uow.commit()
    slow = store.unit_of_work()
    rec = slow.records.get("r1")
    slow.records.update(rec)
    slow.records.add(_rec("r2"))
    with store.unit_of_work() as fast:
        fast.records.update(fast.records.get("r1"))
        fast.commit()
    with pytest.raises(ConflictError):
        slow.commit()
    with store.unit_of_work() as uow:
        assert uow.records.get_many(["r1", "r2"]).keys() == {"r1"}


class _DropsFormerNumbers:
    """A records repository that loses ``former_numbers`` on ``add``: a broken adapter."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def add(self, record: StatusRecord) -> None:
        self._inner.add(attrs.evolve(record, former_numbers=()))


class _LossyStore(MemoryStore):
    def unit_of_work(self) -> Any:
        uow = super().unit_of_work()
        uow.records = _DropsFormerNumbers(uow.records)
        return uow


def test_the_differential_machine_catches_a_lossy_adapter() -> None:
    """The kit is not vacuous: a store that drops one field fails the differential run."""
    with pytest.raises(AssertionError):
        run_differential(_LossyStore, max_examples=60, shrink=False)


def test_conflict_messages_mask_numbers() -> None:
    """A taken number is reported masked, never whole."""
    store = MemoryStore()
    number = "G11010519491231002X"
    issued = IssuedNumber(number, NumberKind.G, "r1", datetime(2024, 9, 1, tzinfo=UTC))
    with store.unit_of_work() as uow:
        uow.numbers.claim(issued)
        uow.commit()
    with store.unit_of_work() as uow, pytest.raises(ConflictError) as info:
        uow.numbers.claim(issued)
    assert number not in str(info.value)
    assert "G11****************" in str(info.value)
