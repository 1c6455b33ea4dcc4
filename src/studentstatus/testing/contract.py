"""Storage-adapter conformance kit: subclass, implement ``make_store``, run pytest.

The classes here are plain (their names do not start with ``Test``), so pytest
only collects them through *your* subclass::

    from studentstatus.testing.contract import StoreContract

    class TestMyStore(StoreContract):
        supports_persistence = True

        def make_store(self):            # a fresh, EMPTY store on every call
            return MyStore(...)

        def reopen_store(self, store):   # only with supports_persistence
            store.close()
            return MyStore(...same place...)

Optional hooks: ``close_store(store)`` (default ``store.close()``).  Capability
flags skip what an adapter does not have:

``supports_concurrent_units``
    two units may be open at once and the later commit of a conflicting write
    raises :class:`~studentstatus.errors.ConflictError` (default True); a store
    without them still gets the isolation tests that need no second open unit
    (a unit opened from another thread while one is open must not see its
    uncommitted writes: it waits, fails, or sees the state before);
``supports_persistence``
    data survives :meth:`StoreContract.reopen_store` (default False);
``supports_cases``
    an optional part (dropout cases): ``None`` (default) tests it when the store has
    it, ``True`` requires it;
``supports_bulk_problems`` / ``supports_bulk_numbers`` / ``supports_bulk_lookups`` /
``supports_bulk_attendance``
    the bulk methods of the base ports (``problems.update_many``/``for_records``,
    ``numbers.next_sequences``, ``children.find_by_documents``/``find_by_identities``,
    ``records.for_children``, ``attendance.for_records``): required (``True``, the
    default); an adapter without bulk queries mixes in
    :mod:`studentstatus.adapters.one_by_one`, which the same tests check;
``supports_prepared_writes``
    optional too, same defaults: the unit of work's ``row_encoder`` /
    ``write_prepared`` (:class:`~studentstatus.ports.PreparedWrites`, rows
    prepared in checker processes);
``supports_sealing_audit``
    optional too, same defaults: ``audit.seal_and_append``
    (:class:`~studentstatus.ports.SealingAuditLog`, a log that seals a bulk run's
    events itself);
``supports_record_search``
    optional too, same defaults: ``records.search``
    (:class:`~studentstatus.ports.RecordSearch`, portal search by number,
    document, name, scope, state and grade, keyset-paged by record id);
``property_examples`` / ``differential_examples``
    how many hypothesis examples the property tests and the differential state
    machine run (defaults 20 and 15).

:func:`run_differential` runs random operation sequences against an adapter and
:class:`~studentstatus.adapters.memory.MemoryStore` side by side and compares
every outcome and the whole visible state after each step; a difference is
reported entity by entity, field by field, with both values
(:func:`differences`).

Every bulk call is atomic on its own, also inside an open unit: when the host
catches the :class:`~studentstatus.errors.ConflictError` of
``records.add_many([r2, r1])`` (``r1`` exists) and commits, the store keeps
what :class:`~studentstatus.adapters.memory.MemoryStore` keeps — the unit's
other writes, none of the failed call's rows (a savepoint per call on SQL).

>>> issubclass(StoreContract, RecordContract) and not StoreContract.__name__.startswith("Test")
True
"""

from __future__ import annotations

import contextlib
import functools
import pickle
import threading
from collections.abc import Callable, Iterable, Iterator
from datetime import date, datetime, timedelta, timezone
from typing import Any, ClassVar

import attrs
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from studentstatus.adapters.memory import MemoryStore
from studentstatus.domain.audit import AuditKey, group_by_chain, seal_events, verify_chain
from studentstatus.domain.enums import (
    AbsenceReason,
    AttendanceStatus,
    ChangeKind,
    Grade,
    KindergartenType,
    LicenceState,
    NumberKind,
    ProblemKind,
    ProblemStatus,
    RequestStatus,
    Role,
    Sex,
    State,
    StepDecision,
    VerificationResult,
)
from studentstatus.domain.model import (
    ApprovalStep,
    AttendanceEntry,
    AuditEntry,
    ChangeRequest,
    Child,
    DocumentKind,
    Guardian,
    IdentityDocument,
    Inspection,
    IssuedNumber,
    Kindergarten,
    Licence,
    ProblemRecord,
    RosterEntry,
    StatusChange,
    StatusRecord,
)
from studentstatus.domain.monitoring import (
    CaseContact,
    CaseStatus,
    CaseTrigger,
    ContactKind,
    DropoutCase,
)
from studentstatus.errors import ConflictError, NotFoundError, StudentStatusError
from studentstatus.ports import (
    BatchingEncoder,
    BulkAttendanceRepository,
    BulkChildRepository,
    BulkNumberRegistry,
    BulkProblemRepository,
    BulkRecordRepository,
    FieldUpdates,
    KeyedAuditLog,
    KeyedStore,
    PreparedWrites,
    RecordQuery,
    RecordSearch,
    ReportingUnitOfWork,
    ReportScope,
    SealingAuditLog,
    SetBasedRollover,
    Store,
    UnitOfWork,
)

__all__ = [
    "AttendanceContract",
    "AuditContract",
    "BulkAttendanceContract",
    "BulkLookupContract",
    "BulkNumberContract",
    "BulkProblemContract",
    "ChangeLogContract",
    "ChildContract",
    "DifferentialContract",
    "FieldUpdatesContract",
    "KindergartenContract",
    "NumberContract",
    "PersistenceContract",
    "PreparedWritesContract",
    "ProblemContract",
    "PropertyContract",
    "RecordContract",
    "RecordSearchContract",
    "ReportSourceContract",
    "RequestContract",
    "RosterContract",
    "SetBasedRolloverContract",
    "StoreContract",
    "UnitOfWorkContract",
    "differences",
    "dump",
    "run_differential",
]

# Real public vectors: the GB 11643-1999 example number and published sample numbers.
RESIDENT_IDS = ("11010519491231002X", "440524188001010014", "11010520200315002X")
BEIJING = timezone(timedelta(hours=8))
T0 = datetime(2024, 9, 1, 8, 30, tzinfo=BEIJING)
RARE_NAMES = ("𠮷田", "王👶", "欧阳娜娜", "䶮", "Zoë Ælfgifu", "阿卜杜热依木·艾买提")


def _kg(code: str = "1111000001", region: str = "110105", **kw: Any) -> Kindergarten:
    lic = Licence(
        "教民111010570000123号",
        "北京市朝阳区教育委员会",
        date(2019, 6, 1),
        date(2029, 5, 31),
        LicenceState.VALID,
        (Inspection(2022, True), Inspection(2023, False, "消防整改")),
    )
    values: dict[str, Any] = {
        "uscc": "12110105MB0000000X",
        "name": f"朝阳区第{code[-2:]}幼儿园",
        "type": KindergartenType.PUBLIC,
        "inclusive": True,
        "licences": (lic,),
    }
    values.update(kw)
    return Kindergarten(code, region_code=region, **values)


def _child(child_id: str = "c1", **kw: Any) -> Child:
    values: dict[str, Any] = {
        "name": "王小明",
        "sex": Sex.M,
        "birth_date": date(2020, 3, 15),
        "document": IdentityDocument(DocumentKind.RESIDENT, RESIDENT_IDS[2]),
        "ethnicity": "汉族",
        "hukou_region": "110105",
        "residence_region": "110105",
        "guardians": (Guardian("王芳", "mother", "+8613800138000"),),
    }
    values.update(kw)
    return Child(child_id, **values)


def _record(record_id: str = "r1", **kw: Any) -> StatusRecord:
    values: dict[str, Any] = {
        "child_id": "c1",
        "kindergarten_code": "1111000001",
        "region_code": "110105",
        "state": State.PENDING,
        "grade": Grade.JUNIOR,
        "entry_date": date(2023, 9, 1),
    }
    values.update(kw)
    return StatusRecord(record_id, **values)


def _change(
    record_id: str, seq: int, day: date, kind: ChangeKind = ChangeKind.PROMOTE
) -> StatusChange:
    return StatusChange(
        record_id,
        seq,
        kind,
        State.ACTIVE,
        State.ACTIVE,
        day,
        T0 + timedelta(days=seq),
        "county:110105",
        reason="批量升班",
        evidence=("证明-1",),
        before={"grade": "JUNIOR", "n": 1, "ok": True, "none": None},
        after={"grade": "MIDDLE", "n": 2, "ok": False, "none": None},
    )


def _request(
    req_id: str, record_id: str, status: RequestStatus = RequestStatus.OPEN
) -> ChangeRequest:
    steps = (
        ApprovalStep(
            Role.KINDERGARTEN,
            "2222000002",
            date(2024, 9, 14),
            StepDecision.APPROVED,
            "kg:2222000002",
            T0,
            "同意",
        ),
        ApprovalStep(Role.COUNTY, "110105", date(2024, 9, 28)),
    )
    return ChangeRequest(
        req_id, record_id, ChangeKind.TRANSFER, "kindergarten:1111000001", T0, steps,
        status=status, effective_date=date(2024, 10, 1), to_kindergarten="2222000002",
        reason="搬家", evidence=("租房合同",),
    )  # fmt: skip


def _problem(pid: str, record_id: str, county: str = "110105", **kw: Any) -> ProblemRecord:
    values: dict[str, Any] = {
        "kind": ProblemKind.DUPLICATE_ID,
        "kindergarten_code": "1111000001",
        "opened_at": T0,
        "due_date": date(2024, 10, 15),
        "detail": "与 r9 证件号重复",
        "related_record_ids": ("r9",),
    }
    values.update(kw)
    return ProblemRecord(pid, record_id, county_code=county, **values)


def _issued(number: str, record_id: str, at: datetime = T0) -> IssuedNumber:
    return IssuedNumber(number, NumberKind(number[0]), record_id, at)


def _audit(seq: int, chain: str = "") -> AuditEntry:
    return AuditEntry(
        seq, T0 + timedelta(minutes=seq), "county:110105", "approve", f"record:r{seq}",
        "核准", {"state": "PENDING"}, {"state": "ACTIVE"}, f"{seq - 1:064x}", f"{seq:064x}",
        chain,
    )  # fmt: skip


def dump(uow: UnitOfWork, record_ids: tuple[str, ...] = ()) -> dict[str, Any]:
    """Everything a unit of work shows through the read methods, for comparing stores.

    >>> with MemoryStore().unit_of_work() as uow:
    ...     dump(uow)["records"]
    []
    """
    ids = tuple(sorted({r.id for r in uow.records.iter()} | set(record_ids)))
    return {
        "kindergartens": list(uow.kindergartens.iter()),
        "records": list(uow.records.iter()),
        "records_11": list(uow.records.iter(region_prefix="11", batch_size=2)),
        "active": uow.records.count(states=[State.ACTIVE]),
        "changes": list(uow.changes.iter()),
        "requests": list(uow.requests.iter()),
        "queue": list(uow.requests.pending_for(Role.COUNTY, "110105")),
        "problems": list(uow.problems.iter()),
        "roster": list(uow.roster.iter()),
        "audit": list(uow.audit.iter()),
        "audit_last": uow.audit.last(),
        "audit_heads": uow.audit.heads(),
        "numbers": {i: uow.numbers.for_record(i) for i in ids},
        "open": {i: uow.requests.open_for_record(i) for i in ids},
        "attendance": {i: uow.attendance.for_record(i) for i in ids},
        "log": {i: uow.changes.for_record(i) for i in ids},
    }


def _key(item: object) -> object:
    """How an entity in a list is named in a difference: its id, code, seq or number."""
    for name in ("id", "school_code", "number", "seq"):
        value = getattr(item, name, None)
        if value is not None:
            owner = getattr(item, "record_id", None)
            if name == "seq" and owner is not None:
                return f"{owner}#{value}"
            return value
    return None


def _show(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 120 else text[:117] + "..."


def differences(
    expected: object,
    actual: object,
    path: str = "",
    *,
    names: tuple[str, str] = ("memory", "adapter"),
) -> list[str]:
    """Where ``actual`` differs from ``expected``: one line per differing field, naming the
    entity (its id, code, number or ``record#seq``), the field and both values.

    >>> a = {"records": [_record("r1"), _record("r2")]}
    >>> b = {"records": [_record("r1", state=State.ACTIVE), _record("r2")]}
    >>> differences(a, b)
    ["records[r1].state: memory=<State.PENDING: 'PENDING'>, adapter=<State.ACTIVE: 'ACTIVE'>"]
    >>> differences({"records": [_record("r1")]}, {"records": []})
    ['records[r1]: memory=present, adapter=missing']
    """
    left, right = names
    if expected == actual:
        return []
    if isinstance(expected, dict) and isinstance(actual, dict):
        out: list[str] = []
        for k in list(expected) + [k for k in actual if k not in expected]:
            where = f"{path}.{k}" if path else str(k)
            if k not in actual:
                out.append(f"{where}: {left}=present, {right}=missing")
            elif k not in expected:
                out.append(f"{where}: {left}=missing, {right}=present")
            else:
                out += differences(expected[k], actual[k], where, names=names)
        return out
    if isinstance(expected, list | tuple) and isinstance(actual, list | tuple):
        keys_a = [_key(x) for x in expected]
        keys_b = [_key(x) for x in actual]
        keyed = None not in keys_a and None not in keys_b
        if keyed and len(set(keys_a)) == len(keys_a) and len(set(keys_b)) == len(keys_b):
            if sorted(map(str, keys_a)) == sorted(map(str, keys_b)) and keys_a != keys_b:
                return [f"{path}: order {left}={keys_a}, {right}={keys_b}"]
            by_b = dict(zip(keys_b, actual, strict=True))
            out = []
            for k, x in zip(keys_a, expected, strict=True):
                if k not in by_b:
                    out.append(f"{path}[{k}]: {left}=present, {right}=missing")
                else:
                    out += differences(x, by_b[k], f"{path}[{k}]", names=names)
            out += [
                f"{path}[{k}]: {left}=missing, {right}=present" for k in keys_b if k not in keys_a
            ]
            return out
        if len(expected) != len(actual):
            return [f"{path}: {len(expected)} items in {left}, {len(actual)} in {right}: "
                    f"{left}={_show(expected)}, {right}={_show(actual)}"]  # fmt: skip
        out = []
        for i, (x, y) in enumerate(zip(expected, actual, strict=True)):
            out += differences(x, y, f"{path}[{i}]", names=names)
        return out
    if attrs.has(type(expected)) and type(expected) is type(actual):
        out = []
        for field in attrs.fields(type(expected)):  # type: ignore[arg-type]
            x, y = getattr(expected, field.name), getattr(actual, field.name)
            if x != y:
                out += differences(x, y, f"{path}.{field.name}", names=names)
        return out
    return [f"{path}: {left}={_show(expected)}, {right}={_show(actual)}"]


def _assert_same(expected: object, actual: object, what: str) -> None:
    """``expected == actual``, or an AssertionError listing every difference."""
    if expected == actual:
        return
    found = differences(expected, actual)
    lines = "\n  ".join(found[:40] or [f"{_show(expected)} != {_show(actual)}"])
    more = f"\n  … and {len(found) - 40} more" if len(found) > 40 else ""
    raise AssertionError(f"{what} differs from MemoryStore:\n  {lines}{more}")


class _Base:
    """Factory methods and flags shared by every contract class."""

    supports_concurrent_units: ClassVar[bool] = True
    supports_persistence: ClassVar[bool] = False
    property_examples: ClassVar[int] = 20
    differential_examples: ClassVar[int] = 15

    @staticmethod
    def _optional(
        flag: bool | None, store: Store, has: Callable[[UnitOfWork], bool], skip: str, missing: str
    ) -> None:
        """An optional part's flag: ``False`` skips, ``None`` skips when ``store`` lacks the
        part (``has``, asked of one of its units of work), ``True`` requires it."""
        if flag is False:
            pytest.skip(skip)
        with store.unit_of_work() as uow:
            present = has(uow)
        if flag is None and not present:
            pytest.skip(skip)
        assert present, missing

    def make_store(self) -> Store:
        """Return a fresh, empty store (the one method an integrator must implement)."""
        raise NotImplementedError

    def close_store(self, store: Store) -> None:
        """Release a store made by :meth:`make_store`."""
        store.close()

    def reopen_store(self, store: Store) -> Store:
        """Close ``store`` and open the same data again (for ``supports_persistence``)."""
        raise NotImplementedError

    @contextlib.contextmanager
    def fresh_store(self) -> Iterator[Store]:
        """A store from :meth:`make_store`, closed afterwards."""
        store = self.make_store()
        try:
            yield store
        finally:
            self.close_store(store)

    @pytest.fixture
    def store(self) -> Iterator[Store]:
        """A fresh store per test."""
        with self.fresh_store() as store:
            yield store


def _commit(store: Store, fn: Callable[[UnitOfWork], Any]) -> Any:
    with store.unit_of_work() as uow:
        out = fn(uow)
        uow.commit()
        return out


def _one_by_one(
    store: Store, fn: Callable[[UnitOfWork, Any], Any], items: Iterable[Any]
) -> list[Any]:
    """Apply ``fn(uow, item)`` for each item, each in its own committed unit."""
    out = []
    for item in items:
        with store.unit_of_work() as uow:
            out.append(fn(uow, item))
            uow.commit()
    return out


def _read(store: Store, fn: Callable[[UnitOfWork], Any]) -> Any:
    with store.unit_of_work() as uow:
        return fn(uow)


class KindergartenContract(_Base):
    """Kindergartens: round trip, not found, duplicate codes, versions, region filter."""

    def test_kindergarten_round_trip(self, store: Store) -> None:
        """A kindergarten with licences and inspections reads back equal."""
        kg = _kg()
        _commit(store, lambda u: u.kindergartens.add(kg))
        assert _read(store, lambda u: u.kindergartens.get(kg.school_code)) == kg
        assert _read(store, lambda u: u.kindergartens.find(kg.school_code)) == kg

    def test_kindergarten_not_found(self, store: Store) -> None:
        """``get`` raises NotFoundError, ``find`` returns None."""
        with store.unit_of_work() as uow:
            with pytest.raises(NotFoundError):
                uow.kindergartens.get("9999999999")
            assert uow.kindergartens.find("9999999999") is None

    def test_kindergarten_duplicate_code(self, store: Store) -> None:
        """A second kindergarten with the same school code is a conflict."""
        _commit(store, lambda u: u.kindergartens.add(_kg()))
        with pytest.raises(ConflictError):
            _commit(store, lambda u: u.kindergartens.add(_kg(name="另一所")))

    def test_kindergarten_versions(self, store: Store) -> None:
        """Update bumps the version; an update from a stale read is a conflict."""
        _commit(store, lambda u: u.kindergartens.add(_kg()))
        new = _commit(store, lambda u: u.kindergartens.update(attrs.evolve(_kg(), name="新名")))
        assert (new.version, new.name) == (1, "新名")
        assert _read(store, lambda u: u.kindergartens.get(new.school_code)) == new
        with pytest.raises(ConflictError):
            _commit(store, lambda u: u.kindergartens.update(_kg()))

    def test_kindergarten_iter_region_prefix(self, store: Store) -> None:
        """``iter`` filters by region prefix and orders by school code."""
        kgs = [
            _kg("3333000003", "440305"),
            _kg("1111000001", "110105"),
            _kg("2222000002", "110106"),
        ]
        _commit(store, lambda u: u.kindergartens.add_many(kgs))
        codes = _read(store, lambda u: [k.school_code for k in u.kindergartens.iter()])
        assert codes == ["1111000001", "2222000002", "3333000003"]
        beijing = _read(
            store, lambda u: [k.school_code for k in u.kindergartens.iter(region_prefix="11")]
        )
        assert beijing == ["1111000001", "2222000002"]
        assert _read(store, lambda u: list(u.kindergartens.iter(region_prefix="110106"))) == [
            kgs[2]
        ]


class ChildContract(_Base):
    """Children: every document type, rare characters, boundary dates, look-ups."""

    def test_child_every_document_type(self, store: Store) -> None:
        """A child with each DocumentType (and with none) round-trips."""
        children = [
            _child(f"c{i}", document=IdentityDocument(kind, f"{kind.value[:1].upper()}{i:08d}"))
            for i, kind in enumerate(DocumentKind)
        ]
        children.append(_child("c-none", document=None))
        children.append(
            _child("c-real", document=IdentityDocument(DocumentKind.RESIDENT, RESIDENT_IDS[0]))
        )
        _commit(store, lambda u: u.children.add_many(children))
        got = _read(store, lambda u: u.children.get_many([c.id for c in children] + ["missing"]))
        assert got == {c.id: c for c in children}

    def test_child_unicode_names_and_boundary_dates(self, store: Store) -> None:
        """Rare CJK (extension B), emoji and minority names; 1900-01-01 and 2099-12-31."""
        days = (date(1900, 1, 1), date(2099, 12, 31))
        children = [
            _child(f"u{i}", name=name, birth_date=days[i % 2],
                   guardians=(Guardian(name + "妈妈", "母亲", "+85291234567"),))
            for i, name in enumerate(RARE_NAMES)
        ]  # fmt: skip
        _commit(store, lambda u: u.children.add_many(children))
        with store.unit_of_work() as uow:
            assert [uow.children.get(c.id) for c in children] == children

    def test_child_lookups(self, store: Store) -> None:
        """find_by_document and find_by_identity return every match, by id."""
        a = _child("c2")
        b = _child("c1")
        other = _child(
            "c3", name="李四", document=IdentityDocument(DocumentKind.PASSPORT, "E12345678")
        )
        _commit(store, lambda u: u.children.add_many([a, b, other]))
        with store.unit_of_work() as uow:
            assert uow.children.find_by_document(RESIDENT_IDS[2]) == [b, a]
            assert uow.children.find_by_document("E12345678") == [other]
            assert uow.children.find_by_document("nobody") == []
            assert uow.children.find_by_identity("王小明", Sex.M, date(2020, 3, 15)) == [b, a]
            assert uow.children.find_by_identity("王小明", Sex.F, date(2020, 3, 15)) == []

    def test_child_not_found_duplicate_and_stale(self, store: Store) -> None:
        """Missing id, duplicate id and stale version are reported."""
        _commit(store, lambda u: u.children.add(_child()))
        with store.unit_of_work() as uow, pytest.raises(NotFoundError):
            uow.children.get("nope")
        with pytest.raises(ConflictError):
            _commit(store, lambda u: u.children.add(_child()))
        updated = _commit(store, lambda u: u.children.update(_child(name="王大明")))
        assert updated.version == 1
        with pytest.raises(ConflictError):
            _commit(store, lambda u: u.children.update(_child(name="stale")))


def _full_record() -> StatusRecord:
    return _record(
        "r-full", state=State.SUSPENDED, grade=Grade.SENIOR, entry_date=date(1900, 1, 1),
        temp_number="L1101052020031500001", national_number="G11010520200315002X",
        former_numbers=("L1101052020031599999",), verification=VerificationResult.MATCH,
        county_confirmed=True, suspended_since=date(2024, 3, 1), suspended_until=date(2099, 12, 31),
        suspended_days=120, last_promoted_year=2023, repeated_grades=(Grade.JUNIOR, Grade.MIDDLE),
        skipped=True, state_before_cancel=State.ACTIVE, cancelled_on=date(2024, 2, 29),
    )  # fmt: skip


class RecordContract(_Base):
    """Status records: fields, conflicts, numbers, filters, streaming and bulk paths."""

    def test_record_round_trip_all_fields(self, store: Store) -> None:
        """A record with every field set reads back equal."""
        rec = _full_record()
        _commit(store, lambda u: u.records.add(rec))
        assert _read(store, lambda u: u.records.get(rec.id)) == rec
        assert _read(store, lambda u: u.records.get_many([rec.id, "x"])) == {rec.id: rec}

    def test_record_not_found(self, store: Store) -> None:
        """NotFoundError on get and update of a missing record."""
        with store.unit_of_work() as uow:
            with pytest.raises(NotFoundError):
                uow.records.get("missing")
            assert uow.records.find_by_number("L0000") is None
            assert uow.records.for_child("nobody") == []

    def test_record_update_missing_before_numbers(self, store: Store) -> None:
        """Updating a missing record is NotFoundError even when its number is another's."""
        _commit(store, lambda u: u.records.add(_record("r1", temp_number="L1")))
        with pytest.raises(NotFoundError):
            _commit(store, lambda u: u.records.update(_record("r9", national_number="L1")))
        assert _read(store, lambda u: u.records.find_by_number("L1")).id == "r1"

    def test_record_conflicts(self, store: Store) -> None:
        """Duplicate id, stale version and a number held by another record conflict."""
        _commit(store, lambda u: u.records.add(_record("r1", temp_number="L1")))
        with pytest.raises(ConflictError):
            _commit(store, lambda u: u.records.add(_record("r1")))
        with pytest.raises(ConflictError):
            _commit(store, lambda u: u.records.add(_record("r2", temp_number="L1")))
        stored = _commit(
            store, lambda u: u.records.update(_record("r1", temp_number="L1", state=State.ACTIVE))
        )
        assert stored.version == 1
        with pytest.raises(ConflictError):  # version 0 is stale
            _commit(store, lambda u: u.records.update(_record("r1", temp_number="L1")))
        _commit(store, lambda u: u.records.add(_record("r2", temp_number="L2")))
        with pytest.raises(ConflictError):
            _commit(store, lambda u: u.records.update(_record("r2", national_number="L1")))
        assert _read(store, lambda u: u.records.get("r1")) == stored

    def test_record_keeps_a_number_it_dropped(self, store: Store) -> None:
        """A number a record held stays its own after an update drops it: no other record
        may take it (numbers are never reused), and it still finds the first record."""
        _commit(store, lambda u: u.records.add(_record("r1")))
        first = _commit(store, lambda u: u.records.update(_record("r1", national_number="L1")))
        _commit(store, lambda u: u.records.update(attrs.evolve(first, national_number=None)))
        _commit(store, lambda u: u.records.add(_record("r2")))
        with pytest.raises(ConflictError):
            _commit(store, lambda u: u.records.update(_record("r2", national_number="L1")))
        with pytest.raises(ConflictError):
            _commit(store, lambda u: u.records.add(_record("r3", temp_number="L1")))
        found = _read(store, lambda u: u.records.find_by_number("L1"))
        assert found is not None
        assert found.id == "r1"

    def test_record_find_by_number(self, store: Store) -> None:
        """Temporary, national and former numbers all resolve to their record."""
        rec = _full_record()
        _commit(store, lambda u: u.records.add(rec))
        with store.unit_of_work() as uow:
            for number in ("L1101052020031500001", "G11010520200315002X", "L1101052020031599999"):
                assert uow.records.find_by_number(number) == rec

    def test_record_for_child(self, store: Store) -> None:
        """Every record of a child, by id."""
        recs = [_record("r2"), _record("r1"), _record("r3", child_id="c2")]
        _commit(store, lambda u: u.records.add_many(recs))
        assert _read(store, lambda u: u.records.for_child("c1")) == [recs[1], recs[0]]

    def test_record_iter_filters_and_count(self, store: Store) -> None:
        """region_prefix, kindergarten_code and states filter ``iter``; ``count`` agrees."""
        recs = [
            _record(f"r{i:03d}", region_code=("110105", "110106", "440305")[i % 3],
                    kindergarten_code=("1111000001", "2222000002")[i % 2],
                    state=(State.PENDING, State.ACTIVE, State.WITHDRAWN, State.ACTIVE)[i % 4])
            for i in range(24)
        ]  # fmt: skip
        _commit(store, lambda u: u.records.add_many(recs))
        cases: list[dict[str, Any]] = [
            {},
            {"region_prefix": "11"},
            {"region_prefix": "110106"},
            {"kindergarten_code": "2222000002"},
            {"states": [State.ACTIVE]},
            {
                "states": [State.ACTIVE, State.PENDING],
                "region_prefix": "1101",
                "kindergarten_code": "1111000001",
            },
            {"states": []},
            {"region_prefix": "99"},
        ]
        with store.unit_of_work() as uow:
            for kw in cases:
                states = set(kw.get("states", State))
                expected = [
                    r for r in recs
                    if r.region_code.startswith(kw.get("region_prefix", ""))
                    and kw.get("kindergarten_code", r.kindergarten_code) == r.kindergarten_code
                    and r.state in states
                ]  # fmt: skip
                assert list(uow.records.iter(**kw)) == expected, kw
                assert uow.records.count(**kw) == len(expected), kw

    def test_record_streaming_order(self, store: Store) -> None:
        """``iter`` yields by id across batch boundaries, whatever the insert order."""
        ids = [f"r{(i * 37) % 101:04d}" for i in range(101)]
        _commit(store, lambda u: u.records.add_many(_record(i) for i in ids))
        streamed = _read(store, lambda u: [r.id for r in u.records.iter(batch_size=7)])
        assert streamed == sorted(ids)

    def test_record_add_many_equals_add(self) -> None:
        """add_many leaves the same state as add one by one; a duplicate fails the whole batch."""
        recs = [_record(f"r{i}", temp_number=f"L{i}") for i in range(5)]
        with self.fresh_store() as a, self.fresh_store() as b:
            assert _commit(a, lambda u: u.records.add_many(recs)) == 5
            _one_by_one(b, lambda u, r: u.records.add(r), recs)
            assert _read(a, dump) == _read(b, dump)
            with pytest.raises(ConflictError):
                _commit(a, lambda u: u.records.add_many([_record("new1"), _record("r0")]))
            assert _read(a, lambda u: u.records.get_many(["new1"])) == {}

    def test_record_update_many_equals_update(self) -> None:
        """update_many = update in order; one stale record → nothing written."""
        recs = [_record(f"r{i}") for i in range(4)]
        changed = [attrs.evolve(r, state=State.ACTIVE) for r in recs]
        with self.fresh_store() as a, self.fresh_store() as b:
            _commit(a, lambda u: u.records.add_many(recs))
            _commit(b, lambda u: u.records.add_many(recs))
            many = _commit(a, lambda u: u.records.update_many(changed))
            single = _one_by_one(b, lambda u, r: u.records.update(r), changed)
            assert many == single
            assert [r.version for r in many] == [1, 1, 1, 1]
            assert _read(a, dump) == _read(b, dump)
            stale = [attrs.evolve(many[0], grade=Grade.MIDDLE), changed[1]]
            with pytest.raises(ConflictError):
                _commit(a, lambda u: u.records.update_many(stale))
            assert _read(a, lambda u: u.records.get("r0")) == many[0]


class ChangeLogContract(_Base):
    """The change log: append-only, ordered, filtered, as-of reads, bulk = single."""

    def test_change_round_trip(self, store: Store) -> None:
        """An event with evidence and before/after dicts reads back equal."""
        ev = _change("r1", 1, date(2024, 9, 1))
        _commit(store, lambda u: u.changes.append(ev))
        assert _read(store, lambda u: u.changes.for_record("r1")) == [ev]

    def test_change_log_append_only_ordered(self, store: Store) -> None:
        """(record_id, seq) is unique; for_record orders by seq whatever the append order."""
        evs = [_change("r1", s, date(2024, 9, s)) for s in (3, 1, 2)]
        _commit(store, lambda u: u.changes.append_many(evs))
        assert [e.seq for e in _read(store, lambda u: u.changes.for_record("r1"))] == [1, 2, 3]
        with pytest.raises(ConflictError):
            _commit(store, lambda u: u.changes.append(attrs.evolve(evs[0], reason="rewritten")))
        assert _read(store, lambda u: u.changes.for_record("r1"))[2] == evs[0]

    def test_change_log_filters_and_as_of(self, store: Store) -> None:
        """kinds, effective dates (inclusive) and record ids filter; as-of reads work."""
        evs = [
            _change("r1", 1, date(2023, 9, 1), ChangeKind.REGISTER),
            _change("r1", 2, date(2023, 9, 15), ChangeKind.APPROVE),
            _change("r1", 3, date(2024, 9, 1), ChangeKind.PROMOTE),
            _change("r2", 1, date(2024, 3, 1), ChangeKind.REGISTER),
        ]
        _commit(store, lambda u: u.changes.append_many(reversed(evs)))
        with store.unit_of_work() as uow:
            assert list(uow.changes.iter()) == evs
            assert list(uow.changes.iter(kinds=[ChangeKind.REGISTER])) == [evs[0], evs[3]]
            assert list(uow.changes.iter(effective_to=date(2023, 9, 15))) == evs[:2]
            assert list(uow.changes.iter(effective_from=date(2024, 3, 1))) == [evs[2], evs[3]]
            assert list(uow.changes.iter(record_ids=["r2"])) == [evs[3]]
            assert list(uow.changes.iter(kinds=[])) == []
            as_of = list(uow.changes.iter(record_ids=["r1"], effective_to=date(2024, 8, 31)))
            assert as_of[-1].kind is ChangeKind.APPROVE

    def test_change_append_many_equals_append(self) -> None:
        """append_many = append in order, and a clash fails the whole batch."""
        evs = [_change("r1", s, date(2024, 9, s)) for s in (1, 2, 3)]
        with self.fresh_store() as a, self.fresh_store() as b:
            assert _commit(a, lambda u: u.changes.append_many(evs)) == 3
            _one_by_one(b, lambda u, e: u.changes.append(e), evs)
            assert _read(a, dump) == _read(b, dump)
            clash = [_change("r1", 4, date(2024, 9, 4)), evs[0]]
            with pytest.raises(ConflictError):
                _commit(a, lambda u: u.changes.append_many(clash))
            assert len(_read(a, lambda u: u.changes.for_record("r1"))) == 3


class RequestContract(_Base):
    """Change requests: steps round trip, one open request per record, versions."""

    def test_request_round_trip(self, store: Store) -> None:
        """A request with its approval steps reads back equal."""
        req = _request("q1", "r1")
        _commit(store, lambda u: u.requests.add(req))
        assert _read(store, lambda u: u.requests.get("q1")) == req
        assert _read(store, lambda u: u.requests.open_for_record("r1")) == req
        with store.unit_of_work() as uow, pytest.raises(NotFoundError):
            uow.requests.get("q-missing")

    def test_requests_by_applicant(self, store: Store) -> None:
        """``iter(applicant=…)``: an operator's own requests by id, with or without a status."""
        mine = [_request("q1", "r1"), _request("q3", "r3", RequestStatus.APPROVED)]
        theirs = attrs.evolve(_request("q2", "r2"), applicant="kindergarten:2222000002")
        with store.unit_of_work() as uow:
            for req in (*mine, theirs):
                uow.requests.add(req)
            uow.commit()
        me = "kindergarten:1111000001"
        with store.unit_of_work() as uow:
            assert [r.id for r in uow.requests.iter(applicant=me)] == ["q1", "q3"]
            assert [r.id for r in uow.requests.iter(status=RequestStatus.OPEN, applicant=me)] == [
                "q1"
            ]
            assert list(uow.requests.iter(applicant="kindergarten:9999999999")) == []

    def test_overdue_requests(self, store: Store) -> None:
        """``overdue(before)``: the open requests whose pending step was due before it, by id;
        closed ones never (their steps wait for no one)."""
        late = _request("q1", "r1")  # the county's step is due 2024-09-28
        closed = _request("q2", "r2", RequestStatus.REJECTED)
        with store.unit_of_work() as uow:
            uow.requests.add(late)
            uow.requests.add(closed)
            uow.commit()
        with store.unit_of_work() as uow:
            assert list(uow.requests.overdue(date(2024, 9, 28))) == []
            assert [r.id for r in uow.requests.overdue(date(2024, 9, 29))] == ["q1"]

    def test_second_open_request_conflicts(self, store: Store) -> None:
        """A record has at most one open request; once closed, a new one is accepted."""
        _commit(store, lambda u: u.requests.add(_request("q1", "r1")))
        with pytest.raises(ConflictError):
            _commit(store, lambda u: u.requests.add(_request("q2", "r1")))
        with pytest.raises(ConflictError):
            _commit(store, lambda u: u.requests.add(_request("q1", "r2")))
        closed = _commit(
            store, lambda u: u.requests.update(_request("q1", "r1", RequestStatus.APPROVED))
        )
        assert closed.version == 1
        _commit(store, lambda u: u.requests.add(_request("q2", "r1")))
        with store.unit_of_work() as uow:
            assert uow.requests.open_for_record("r1") == _request("q2", "r1")
            assert [r.id for r in uow.requests.iter()] == ["q1", "q2"]
            assert list(uow.requests.iter(status=RequestStatus.APPROVED)) == [closed]
        stale = _request("q1", "r1", RequestStatus.REJECTED)
        with pytest.raises(ConflictError):
            _commit(store, lambda u: u.requests.update(stale))

    def test_pending_for_is_the_approval_queue(self, store: Store) -> None:
        """``pending_for(role, scope)``: the OPEN requests whose pending step is exactly that
        role and scope, by id, with ``due_before`` / ``after`` / ``limit``; it follows updates."""
        county = _request("q1", "r1")  # pending: county 110105, due 2024-09-28
        late = attrs.evolve(
            _request("q4", "r4"),
            steps=(ApprovalStep(Role.COUNTY, "110105", date(2024, 9, 20)),
                   ApprovalStep(Role.CITY, "1101", date(2024, 10, 8))),
        )  # fmt: skip
        kindergarten = attrs.evolve(
            _request("q2", "r2"),
            steps=(ApprovalStep(Role.KINDERGARTEN, "2222000002", date(2024, 9, 14)),
                   ApprovalStep(Role.COUNTY, "110105", date(2024, 9, 28))),
        )  # fmt: skip
        closed = _request("q3", "r3", RequestStatus.APPROVED)
        other = attrs.evolve(
            _request("q5", "r5"), steps=(ApprovalStep(Role.COUNTY, "110106", None),)
        )
        undated = attrs.evolve(
            _request("q6", "r6"), steps=(ApprovalStep(Role.COUNTY, "110105", None),)
        )
        with store.unit_of_work() as uow:
            for q in (county, kindergarten, closed, late, other, undated):
                uow.requests.add(q)
            uow.commit()

        def ids(role: Role | str, scope: str, **kw: Any) -> list[str]:
            with store.unit_of_work() as uow:
                return [q.id for q in uow.requests.pending_for(role, scope, **kw)]

        assert ids(Role.COUNTY, "110105") == ["q1", "q4", "q6"]
        assert ids("county", "110105") == ["q1", "q4", "q6"]
        assert _read(store, lambda u: list(u.requests.pending_for(Role.COUNTY, "110106"))) == [
            other
        ]
        assert ids(Role.KINDERGARTEN, "2222000002") == ["q2"]
        assert ids(Role.COUNTY, "1101") == []  # a scope is matched exactly, never as a prefix
        assert ids(Role.CITY, "1101") == ids(Role.PROVINCE, "11") == []
        assert ids(Role.COUNTY, "110105", due_before=date(2024, 9, 28)) == ["q4"]  # due = late
        assert ids(Role.COUNTY, "110105", due_before=date(2024, 9, 29)) == ["q1", "q4"]
        assert ids(Role.COUNTY, "110105", after="q1") == ["q4", "q6"]
        assert ids(Role.COUNTY, "110105", after="q1", limit=1) == ["q4"]
        assert ids(Role.COUNTY, "110105", limit=0) == []
        # decisions move a request along the queues; a closed request leaves them
        moved = attrs.evolve(
            late,
            steps=(attrs.evolve(late.steps[0], decision=StepDecision.APPROVED), late.steps[1]),
        )
        _commit(store, lambda u: u.requests.update(moved))
        _commit(store, lambda u: u.requests.update(_request("q1", "r1", RequestStatus.WITHDRAWN)))
        assert ids(Role.COUNTY, "110105") == ["q6"]
        assert ids(Role.CITY, "1101") == ["q4"]
        assert _read(store, lambda u: next(u.requests.pending_for(Role.CITY, "1101"))) == (
            attrs.evolve(moved, version=1)
        )


class ProblemContract(_Base):
    """Problem records: round trip, per record, filters, versions."""

    def test_problem_round_trip_and_filters(self, store: Store) -> None:
        """Problems read back equal and filter by county prefix, status and kind."""
        probs = [
            _problem("p1", "r1"),
            _problem("p2", "r1", "440305", kind=ProblemKind.NOT_FOUND),
            _problem("p3", "r2", "110106", status=ProblemStatus.RESOLVED, resolution="已删除",
                     resolved_by="county:110106", resolved_at=T0),
        ]  # fmt: skip
        _commit(store, lambda u: u.problems.add_many(probs))
        with store.unit_of_work() as uow:
            assert uow.problems.get("p3") == probs[2]
            assert uow.problems.for_record("r1") == probs[:2]
            assert list(uow.problems.iter(county_prefix="11")) == [probs[0], probs[2]]
            assert list(uow.problems.iter(statuses=[ProblemStatus.OPEN])) == probs[:2]
            assert list(uow.problems.iter(kinds=[ProblemKind.NOT_FOUND])) == [probs[1]]
            with pytest.raises(NotFoundError):
                uow.problems.get("p9")

    def test_problems_of_a_kindergarten(self, store: Store) -> None:
        """``iter(kindergarten_code=…)`` keeps one kindergarten's problems, with the other
        filters."""
        probs = [
            _problem("p1", "r1"),
            _problem("p2", "r2", kindergarten_code="1111000002"),
            _problem("p3", "r3", status=ProblemStatus.RESOLVED),
            _problem("p4", "r4", "440305", kindergarten_code="1111000002"),
        ]
        _commit(store, lambda u: u.problems.add_many(probs))
        with store.unit_of_work() as uow:
            assert list(uow.problems.iter(kindergarten_code="1111000001")) == [probs[0], probs[2]]
            assert list(uow.problems.iter(kindergarten_code="1111000002")) == [probs[1], probs[3]]
            assert list(
                uow.problems.iter(
                    county_prefix="110105",
                    kindergarten_code="1111000002",
                    statuses=[ProblemStatus.OPEN],
                )
            ) == [probs[1]]
            assert list(
                uow.problems.iter(kindergarten_code="1111000001", statuses=[ProblemStatus.OPEN])
            ) == [probs[0]]
            assert list(uow.problems.iter(kindergarten_code="9999000009")) == []

    def test_problem_conflicts(self, store: Store) -> None:
        """Duplicate id and stale version conflict."""
        _commit(store, lambda u: u.problems.add(_problem("p1", "r1")))
        with pytest.raises(ConflictError):
            _commit(store, lambda u: u.problems.add(_problem("p1", "r2")))
        new = _commit(
            store, lambda u: u.problems.update(_problem("p1", "r1", evidence=("户口本",)))
        )
        assert new.version == 1
        assert new.evidence == ("户口本",)
        with pytest.raises(ConflictError):
            _commit(store, lambda u: u.problems.update(_problem("p1", "r1")))


def _bulk_problems(uow: UnitOfWork) -> BulkProblemRepository:
    problems = uow.problems
    assert isinstance(problems, BulkProblemRepository)
    return problems


def _update_many(uow: UnitOfWork, problems: list[ProblemRecord]) -> list[ProblemRecord]:
    return _bulk_problems(uow).update_many(problems)


class BulkProblemContract(_Base):
    """Bulk problem methods (:class:`~studentstatus.ports.BulkProblemRepository`).

    ``supports_bulk_problems``: ``None`` (default) runs these tests when
    ``uow.problems`` has ``update_many`` and ``for_records`` and skips them
    otherwise (the services then fall back to one call per problem / record);
    ``True`` requires them; ``False`` skips.
    """

    supports_bulk_problems: ClassVar[bool | None] = True  # part of the base ports

    def _require_bulk_problems(self, store: Store) -> None:
        self._optional(
            self.supports_bulk_problems, store,
            lambda u: isinstance(u.problems, BulkProblemRepository),
            "this store has no bulk problem methods",
            "supports_bulk_problems is True but uow.problems lacks update_many/for_records",
        )  # fmt: skip

    def test_problem_update_many_equals_update(self) -> None:
        """update_many = update in order; a stale, missing or twice-named problem → nothing."""
        probs = [_problem(f"p{i}", f"r{i % 2}") for i in range(4)]
        resolved = [
            attrs.evolve(p, status=ProblemStatus.RESOLVED, resolution="verified",
                         resolved_by="province:11", resolved_at=T0 + timedelta(days=1))
            for p in probs[:3]
        ]  # fmt: skip
        with self.fresh_store() as a, self.fresh_store() as b:
            self._require_bulk_problems(a)
            _commit(a, lambda u: u.problems.add_many(probs))
            _commit(b, lambda u: u.problems.add_many(probs))
            many = _commit(a, lambda u: _bulk_problems(u).update_many(resolved))
            single = _one_by_one(b, lambda u, p: u.problems.update(p), resolved)
            assert many == single
            assert [p.version for p in many] == [1, 1, 1]
            assert _read(a, lambda u: [u.problems.get(f"p{i}") for i in range(4)]) == _read(
                b, lambda u: [u.problems.get(f"p{i}") for i in range(4)]
            )
            assert _commit(a, lambda u: _bulk_problems(u).update_many([])) == []
            before = _read(a, lambda u: [u.problems.get(f"p{i}") for i in range(4)])
            fresh = attrs.evolve(probs[3], evidence=("户口本",))
            for bad, error in (
                ([fresh, resolved[0]], ConflictError),  # resolved[0] is stale now
                ([fresh, _problem("p-missing", "r1")], NotFoundError),
                ([fresh, fresh], ConflictError),  # the second would be stale
            ):
                with pytest.raises(error):
                    _commit(a, functools.partial(_update_many, problems=bad))
                assert _read(a, lambda u: [u.problems.get(f"p{i}") for i in range(4)]) == before

    def test_problem_for_records_equals_for_record(self, store: Store) -> None:
        """for_records = for_record per id (by id), filtered by status and kind; misses left out."""
        self._require_bulk_problems(store)
        probs = [
            _problem("p3", "r1"),
            _problem("p1", "r1", kind=ProblemKind.NOT_FOUND),
            _problem("p2", "r2", "440305", status=ProblemStatus.RESOLVED, resolution="已删除",
                     resolved_by="county:440305", resolved_at=T0),
            _problem("p4", "r3", kind=ProblemKind.NAME_MISMATCH),
        ]  # fmt: skip
        _commit(store, lambda u: u.problems.add_many(probs))
        with store.unit_of_work() as uow:
            ids = ["r1", "r2", "r-none", "r1"]
            got = _bulk_problems(uow).for_records(ids)
            assert got == {r: uow.problems.for_record(r) for r in ("r1", "r2")}
            assert [p.id for p in got["r1"]] == ["p1", "p3"]
            open_ = _bulk_problems(uow).for_records(
                ["r1", "r2", "r3"], statuses=[ProblemStatus.OPEN]
            )
            assert {r: [p.id for p in ps] for r, ps in open_.items()} == {
                "r1": ["p1", "p3"],
                "r3": ["p4"],
            }
            kinds = _bulk_problems(uow).for_records(
                ["r1", "r3"], kinds=[ProblemKind.NOT_FOUND, ProblemKind.NAME_MISMATCH]
            )
            assert {r: [p.id for p in ps] for r, ps in kinds.items()} == {
                "r1": ["p1"],
                "r3": ["p4"],
            }
            assert _bulk_problems(uow).for_records([]) == {}
            assert _bulk_problems(uow).for_records(["r1"], statuses=[]) == {}

    def test_problem_for_records_many_ids(self, store: Store) -> None:
        """Over a thousand ids in one call (adapters that chunk an IN list must join the parts)."""
        self._require_bulk_problems(store)
        probs = [_problem(f"p{i:04d}", f"r{i:04d}") for i in range(0, 1500, 3)]
        _commit(store, lambda u: u.problems.add_many(probs))
        with store.unit_of_work() as uow:
            got = _bulk_problems(uow).for_records([f"r{i:04d}" for i in range(1500)])
        assert got == {p.record_id: [p] for p in probs}


class NumberContract(_Base):
    """The number registry: numbers unique forever, J sequences atomic per key."""

    def test_number_claim_resolve(self, store: Store) -> None:
        """Claimed numbers resolve; a number can never be claimed twice."""
        l_num = _issued("L1101052020031500001", "r1")
        g_num = _issued("G11010520200315002X", "r1", T0 + timedelta(days=30))
        _commit(store, lambda u: u.numbers.claim_many([g_num, l_num]))
        with store.unit_of_work() as uow:
            assert uow.numbers.resolve(l_num.number) == l_num
            assert uow.numbers.resolve("L0") is None
            assert uow.numbers.for_record("r1") == [l_num, g_num]
        with pytest.raises(ConflictError):
            _commit(store, lambda u: u.numbers.claim(_issued(l_num.number, "r2")))

    def test_numbers_with_prefix(self, store: Store) -> None:
        """``with_prefix`` streams the issued numbers of a prefix, in order, and no other."""
        numbers = ["L1101052020031500002", "L1101052020031500001", "L1101062020031500001",
                   "G11010520200315002X", "L11010"]  # fmt: skip
        _commit(store, lambda u: u.numbers.claim_many(_issued(n, "r1") for n in numbers))
        with store.unit_of_work() as uow:
            assert list(uow.numbers.with_prefix("L110105")) == [
                "L1101052020031500001",
                "L1101052020031500002",
            ]
            assert list(uow.numbers.with_prefix("L11010")) == sorted(
                n for n in numbers if n.startswith("L11010")
            )
            assert list(uow.numbers.with_prefix("L44")) == []

    def test_claim_many_equals_claim(self) -> None:
        """claim_many = claim in order; one taken number → nothing written."""
        nums = [_issued(f"L110105202001010{i:04d}", f"r{i}") for i in range(4)]
        with self.fresh_store() as a, self.fresh_store() as b:
            assert _commit(a, lambda u: u.numbers.claim_many(nums)) == 4
            _one_by_one(b, lambda u, n: u.numbers.claim(n), nums)
            assert _read(a, lambda u: dump(u, ("r0", "r1", "r2", "r3"))) == _read(
                b, lambda u: dump(u, ("r0", "r1", "r2", "r3"))
            )
            fresh = _issued("J1101052020010100015", "r9")
            with pytest.raises(ConflictError):
                _commit(a, lambda u: u.numbers.claim_many([fresh, nums[2]]))
            assert _read(a, lambda u: u.numbers.resolve(fresh.number)) is None

    def test_next_sequence(self, store: Store) -> None:
        """1, 2, 3… per (region, birth date); keys are independent; commits persist it."""
        d1, d2 = date(2020, 1, 1), date(2020, 1, 2)
        with store.unit_of_work() as uow:
            got = [uow.numbers.next_sequence("110105", d1) for _ in range(3)]
            other = [
                uow.numbers.next_sequence("110106", d1),
                uow.numbers.next_sequence("110105", d2),
            ]
            uow.commit()
        assert got == [1, 2, 3]
        assert other == [1, 1]
        assert _commit(store, lambda u: u.numbers.next_sequence("110105", d1)) == 4
        with store.unit_of_work() as uow:
            assert uow.numbers.next_sequence("110105", d1) == 5  # rolled back below
        assert _commit(store, lambda u: u.numbers.next_sequence("110105", d1)) == 5


def _next_sequences(uow: UnitOfWork, keys: list[tuple[str, date]]) -> list[int]:
    numbers = uow.numbers
    assert isinstance(numbers, BulkNumberRegistry)
    return numbers.next_sequences(keys)


class BulkNumberContract(_Base):
    """Bulk J-sequence allocation (:class:`~studentstatus.ports.BulkNumberRegistry`).

    ``supports_bulk_numbers``: ``None`` (default) runs these tests when
    ``uow.numbers`` has ``next_sequences`` and skips them otherwise (number
    issuing then calls ``next_sequence`` per child); ``True`` requires it;
    ``False`` skips.
    """

    supports_bulk_numbers: ClassVar[bool | None] = True  # part of the base ports

    def _require_bulk_numbers(self, store: Store) -> None:
        self._optional(
            self.supports_bulk_numbers, store,
            lambda u: isinstance(u.numbers, BulkNumberRegistry),
            "this store has no bulk sequence allocation",
            "supports_bulk_numbers is True but uow.numbers lacks next_sequences",
        )  # fmt: skip

    def test_next_sequences_equals_next_sequence(self) -> None:
        """next_sequences = next_sequence per key in order (repeats, new and used keys, over a
        thousand keys); what it allocates is committed or rolled back with the unit."""
        d1, d2 = date(2020, 1, 1), date(2020, 1, 2)
        keys = [("110105", d1), ("110106", d1), ("110105", d1), ("110105", d2), ("110105", d1)]
        keys += [("440305", date(2019, 1, 1) + timedelta(days=i % 700)) for i in range(1200)]
        with self.fresh_store() as a, self.fresh_store() as b:
            self._require_bulk_numbers(a)
            for s in (a, b):
                _commit(s, lambda u: [u.numbers.next_sequence("110105", d1) for _ in range(2)])
            many = _commit(a, functools.partial(_next_sequences, keys=keys))
            single = _one_by_one(b, lambda u, k: u.numbers.next_sequence(*k), keys)
            assert many == single
            assert many[:5] == [3, 1, 4, 1, 5]
            assert _commit(a, functools.partial(_next_sequences, keys=[])) == []
            with a.unit_of_work() as uow:
                assert _next_sequences(uow, [("110105", d1)]) == [6]  # rolled back
            assert _commit(a, lambda u: u.numbers.next_sequence("110105", d1)) == 6
            assert _commit(b, lambda u: u.numbers.next_sequence("440305", date(2019, 1, 1))) == (
                _commit(a, lambda u: u.numbers.next_sequence("440305", date(2019, 1, 1)))
            )


class PreparedWritesContract(_Base):
    """Rows prepared by the unit of work's encoder (:class:`~studentstatus.ports.PreparedWrites`).

    ``supports_prepared_writes``: ``None`` (default) runs these tests when the
    unit of work has ``row_encoder``/``write_prepared`` and an encoder, and
    skips them otherwise (bulk intake then writes entities); ``True`` requires
    them; ``False`` skips.
    """

    supports_prepared_writes: ClassVar[bool | None] = None

    def _require_prepared(self, store: Store) -> None:
        self._optional(
            self.supports_prepared_writes, store,
            lambda u: isinstance(u, PreparedWrites) and u.row_encoder() is not None,
            "this store writes no prepared rows",
            "supports_prepared_writes is True but the unit of work has no row encoder",
        )  # fmt: skip

    @staticmethod
    def _prepared(uow: UnitOfWork, batches: list[tuple[str, list[Any]]]) -> int:
        assert isinstance(uow, PreparedWrites)
        encoder = uow.row_encoder()
        assert encoder is not None
        encoder = pickle.loads(pickle.dumps(encoder))  # noqa: S301 - it travels to checkers
        encoded = [(kind, [encoder.encode(kind, e) for e in items]) for kind, items in batches]
        return uow.write_prepared(pickle.loads(pickle.dumps(encoded)))  # noqa: S301

    def test_prepared_writes_equal_entity_writes(self) -> None:
        """Encoded children, records (with all their numbers), changes and claims, written
        with write_prepared, read back exactly as add_many / append_many / claim_many
        store them: Unicode and rare names, every document type, tabs, backslashes and
        newlines in text, time zones, empty and full JSON columns."""
        kids = [
            _child("c1"),
            _child("c2", name="𠮷田\t\\N\n", document=None, guardians=()),
            _child("c3", name=RARE_NAMES[5], ethnicity=None, hukou_region=None,
                   document=IdentityDocument(DocumentKind.PASSPORT, "E1234\t5678")),
        ]  # fmt: skip
        recs = [
            _record("r1", child_id="c1", temp_number="L1101052020031500011"),
            _record("r2", child_id="c2", state=State.ACTIVE, grade=None,
                    national_number="J1101052020031500015", temp_number="L1101052020031500022",
                    former_numbers=("L1101052019010100013",),
                    repeated_grades=(Grade.JUNIOR,), suspended_days=7,
                    suspended_since=date(2024, 3, 1), cancelled_on=date(2024, 6, 30)),
        ]  # fmt: skip
        changes = [
            _change("r1", 1, date(2024, 9, 1), ChangeKind.REGISTER),
            attrs.evolve(_change("r2", 1, date(2024, 9, 2)), reason="换行\n与\t制表",
                         evidence=("证明.pdf",), before={"grade": "JUNIOR"},
                         after={"grade": "MIDDLE", "名": ["a", 1, None, True]}),
        ]  # fmt: skip
        claims = [
            _issued("L1101052020031500011", "r1"),
            _issued("J1101052020031500015", "r2", datetime(2024, 9, 1, 23, 59, 59, 999999)),
        ]
        batches: list[tuple[str, list[Any]]] = [
            ("children", kids), ("records", recs), ("changes", changes), ("numbers", claims),
        ]  # fmt: skip

        def entities(u: UnitOfWork) -> int:
            return (
                u.children.add_many(kids) + u.records.add_many(recs)
                + u.changes.append_many(changes) + u.numbers.claim_many(claims)
            )  # fmt: skip

        with self.fresh_store() as a, self.fresh_store() as b:
            self._require_prepared(a)
            assert _commit(a, entities) == 9
            assert _commit(b, lambda u: self._prepared(u, batches)) == 9
            assert _read(b, dump) == _read(a, dump)
            with a.unit_of_work() as ua, b.unit_of_work() as ub:
                ids = ["c1", "c2", "c3"]
                assert ub.children.get_many(ids) == ua.children.get_many(ids)
                for n in ("L1101052020031500022", "L1101052019010100013", "J1101052020031500015"):
                    assert ub.records.find_by_number(n) == ua.records.find_by_number(n)
                    assert ub.numbers.resolve(n) == ua.numbers.resolve(n)

    def test_prepared_writes_are_all_or_nothing(self) -> None:
        """A taken key anywhere in the batches is a ConflictError and writes none of them;
        the unit stays usable."""
        with self.fresh_store() as store:
            self._require_prepared(store)
            _commit(store, lambda u: u.records.add_many([_record("r1")]))
            batches: list[tuple[str, list[Any]]] = [
                ("children", [_child("c9")]),
                ("records", [_record("r9", child_id="c9"), _record("r1", child_id="c9")]),
            ]
            with store.unit_of_work() as uow:
                with pytest.raises(ConflictError):
                    self._prepared(uow, batches)
                uow.children.add(_child("c8"))
                uow.commit()
            assert _read(store, lambda u: u.children.get_many(["c8", "c9"])) == {"c8": _child("c8")}
            assert _read(store, lambda u: u.records.get_many(["r9"])) == {}


def _bulk_children(uow: UnitOfWork) -> BulkChildRepository:
    children = uow.children
    assert isinstance(children, BulkChildRepository)
    return children


def _bulk_records(uow: UnitOfWork) -> BulkRecordRepository:
    records = uow.records
    assert isinstance(records, BulkRecordRepository)
    return records


_Identity = tuple[str, str, date]


def _lookups_one_by_one(
    uow: UnitOfWork, numbers: list[str], identities: list[_Identity], child_ids: list[str]
) -> tuple[dict[str, list[Child]], dict[_Identity, list[Child]], dict[str, list[StatusRecord]]]:
    """What the bulk look-ups must answer, from the one-key look-ups (misses left out)."""
    docs = {n: uow.children.find_by_document(n) for n in numbers}
    ids = {k: uow.children.find_by_identity(*k) for k in identities}
    recs = {c: uow.records.for_child(c) for c in child_ids}
    return (
        {k: v for k, v in docs.items() if v},
        {k: v for k, v in ids.items() if v},
        {k: v for k, v in recs.items() if v},
    )


def _lookups_bulk(
    uow: UnitOfWork, numbers: list[str], identities: list[_Identity], child_ids: list[str]
) -> tuple[dict[str, list[Child]], dict[_Identity, list[Child]], dict[str, list[StatusRecord]]]:
    return (
        _bulk_children(uow).find_by_documents(numbers),
        _bulk_children(uow).find_by_identities(identities),
        _bulk_records(uow).for_children(child_ids),
    )


_lookup_names = st.sampled_from(
    ["王小明", "王小明 ", "王小明  ", " 王小明", "王小朋", "𠮷田", "Zoë"]
)
_lookup_numbers = st.sampled_from(["E12345678", "E12345678 ", "e12345678", RESIDENT_IDS[0], "X1"])
_lookup_days = st.sampled_from([date(2020, 3, 15), date(2020, 3, 16), date(1900, 1, 1)])


class BulkLookupContract(_Base):
    """Bulk duplicate look-ups (:class:`~studentstatus.ports.BulkChildRepository`,
    :class:`~studentstatus.ports.BulkRecordRepository`).

    ``supports_bulk_lookups``: ``None`` (default) runs these tests when
    ``uow.children`` has ``find_by_documents``/``find_by_identities`` and
    ``uow.records`` has ``for_children``, and skips them otherwise (duplicate
    detection then looks up one key at a time); ``True`` requires them;
    ``False`` skips.  Every answer must equal the one-key look-ups', keys
    compared exactly as the store compares them there.
    """

    supports_bulk_lookups: ClassVar[bool | None] = True  # part of the base ports

    def _require_bulk_lookups(self, store: Store) -> None:
        self._optional(
            self.supports_bulk_lookups, store,
            lambda u: isinstance(u.children, BulkChildRepository)
            and isinstance(u.records, BulkRecordRepository),
            "this store has no bulk duplicate look-ups",
            "supports_bulk_lookups is True but uow.children lacks find_by_documents/"
            "find_by_identities or uow.records lacks for_children",
        )  # fmt: skip

    def test_bulk_lookups_equal_one_by_one(self, store: Store) -> None:
        """find_by_documents / find_by_identities / for_children = the one-key look-ups per key
        (by id; shared documents, near-miss keys, repeats, misses left out, empty input)."""
        self._require_bulk_lookups(store)
        passport = IdentityDocument(DocumentKind.PASSPORT, "E12345678")
        children = [
            _child("c2"),
            _child("c1"),
            _child("c3", name="李四", document=passport),
            _child("c0", name="李四", sex=Sex.F, document=passport),
            _child("c4", name="王小明 ", document=None),
            _child("c5", name=RARE_NAMES[0], birth_date=date(1900, 1, 1), document=None),
        ]
        records = [
            _record("r2"),
            _record("r1"),
            _record("r3", child_id="c3"),
            _record("r0", child_id="c0", temp_number="L0001"),
        ]
        _commit(store, lambda u: u.children.add_many(children) + u.records.add_many(records))
        day = date(2020, 3, 15)
        numbers = [RESIDENT_IDS[2], "E12345678", "nobody", "E12345678", "e12345678"]
        identities: list[_Identity] = [
            ("王小明", Sex.M, day), ("王小明", "M", day), ("王小明", "F", day), ("李四", "F", day),
            ("李四", Sex.M, day), ("王小明 ", "M", day), (RARE_NAMES[0], "M", date(1900, 1, 1)),
            ("nobody", "M", day),
        ]  # fmt: skip
        child_ids = ["c1", "c3", "c-none", "c0", "c1", "c4"]
        with store.unit_of_work() as uow:
            bulk = _lookups_bulk(uow, numbers, identities, child_ids)
            assert bulk == _lookups_one_by_one(uow, numbers, identities, child_ids)
            docs, ids, recs = bulk
            assert [c.id for c in docs[RESIDENT_IDS[2]]] == ["c1", "c2"]
            assert [c.id for c in docs["E12345678"]] == ["c0", "c3"]
            # c4's trailing space counts on most stores, not under MariaDB's PAD SPACE collation
            assert [c.id for c in ids[("王小明", "M", day)] if c.id != "c4"] == ["c1", "c2"]
            assert [c.id for c in ids[("李四", "F", day)]] == ["c0"]
            assert [r.id for r in recs["c1"]] == ["r1", "r2"]
            assert "c-none" not in recs
            assert "nobody" not in docs
            assert _lookups_bulk(uow, [], [], []) == ({}, {}, {})

    def test_bulk_lookups_see_the_units_own_writes(self, store: Store) -> None:
        """Children and records added in the open unit are found; a rolled-back unit's are not."""
        self._require_bulk_lookups(store)
        day = date(2020, 3, 15)
        with store.unit_of_work() as uow:
            uow.children.add(_child("c1"))
            uow.records.add(_record("r1"))
            docs, ids, recs = _lookups_bulk(uow, [RESIDENT_IDS[2]], [("王小明", "M", day)], ["c1"])
            assert [c.id for c in docs[RESIDENT_IDS[2]]] == ["c1"]
            assert [c.id for c in ids[("王小明", "M", day)]] == ["c1"]
            assert [r.id for r in recs["c1"]] == ["r1"]
        with store.unit_of_work() as uow:
            assert _lookups_bulk(uow, [RESIDENT_IDS[2]], [("王小明", "M", day)], ["c1"]) == (
                {}, {}, {},
            )  # fmt: skip

    def test_bulk_lookups_many_keys(self, store: Store) -> None:
        """Over a thousand keys in one call (adapters that chunk an IN list must join the parts,
        and a key's children must not be split or repeated across the parts)."""
        self._require_bulk_lookups(store)
        day0 = date(2019, 1, 1)
        children = [
            _child(f"c{i:04d}", name=f"童{i % 400:03d}", sex=Sex.M if i % 2 else Sex.F,
                   birth_date=day0 + timedelta(days=i % 3),
                   document=IdentityDocument(DocumentKind.PASSPORT, f"E{i % 700:08d}"))
            for i in range(0, 1500, 2)
        ]  # fmt: skip
        records = [_record(f"r{i:04d}", child_id=f"c{i - i % 3:04d}") for i in range(0, 1500, 4)]
        _commit(store, lambda u: u.children.add_many(children) + u.records.add_many(records))
        numbers = [f"E{i:08d}" for i in range(1100)]
        identities: list[_Identity] = [
            (f"童{n:03d}", sex, day0 + timedelta(days=d))
            for n in range(400) for sex in ("M", "F") for d in range(2)
        ]  # fmt: skip
        child_ids = [f"c{i:04d}" for i in range(1500)]
        with store.unit_of_work() as uow:
            bulk = _lookups_bulk(uow, numbers, identities, child_ids)
            assert bulk == _lookups_one_by_one(uow, numbers, identities, child_ids)
            assert sum(map(len, bulk[0].values())) == len(children)
            assert len(bulk[2]) > 300

    def test_bulk_lookups_property(self) -> None:
        """Any children and records: the bulk look-ups of any keys = the one-key look-ups."""

        @settings(max_examples=self.property_examples, deadline=None,
                  suppress_health_check=[HealthCheck.too_slow])  # fmt: skip
        @given(
            people=st.lists(
                st.tuples(_lookup_names, st.sampled_from(Sex), _lookup_days,
                          st.none() | _lookup_numbers, st.integers(0, 2)),
                max_size=8,
            ),
            numbers=st.lists(_lookup_numbers, max_size=6),
            identities=st.lists(
                st.tuples(_lookup_names, st.sampled_from(["M", "F"]), _lookup_days), max_size=6
            ),
            child_ids=st.lists(st.sampled_from([f"c{i}" for i in range(10)]), max_size=6),
        )  # fmt: skip
        def check(
            people: list[tuple[str, Sex, date, str | None, int]],
            numbers: list[str],
            identities: list[_Identity],
            child_ids: list[str],
        ) -> None:
            children = [
                _child(f"c{i}", name=name, sex=sex, birth_date=birth,
                       document=None if number is None
                       else IdentityDocument(DocumentKind.PASSPORT, number))
                for i, (name, sex, birth, number, _n) in enumerate(people)
            ]  # fmt: skip
            records = [
                _record(f"r{i}-{j}", child_id=f"c{i}")
                for i, (*_rest, n) in enumerate(people)
                for j in range(n)
            ]
            with self.fresh_store() as store:
                self._require_bulk_lookups(store)
                _commit(
                    store, lambda u: u.children.add_many(children) + u.records.add_many(records)
                )
                with store.unit_of_work() as uow:
                    assert _lookups_bulk(uow, numbers, identities, child_ids) == (
                        _lookups_one_by_one(uow, numbers, identities, child_ids)
                    )

        check()


def _search_world() -> tuple[list[Child], list[StatusRecord]]:
    """Children and records over two provinces, three counties and four kindergartens."""
    passport = IdentityDocument(DocumentKind.PASSPORT, "E12345678")
    children = [
        _child("c01"),
        _child("c02", name="李四", sex=Sex.F, document=passport),
        _child("c03", name="王小明", birth_date=date(2020, 3, 16), document=None),
        _child("c04", name=RARE_NAMES[0], document=None),
        _child("c05", name="李四", birth_date=date(2021, 1, 2), document=None),
        _child("c06", name="张三", document=IdentityDocument(DocumentKind.PASSPORT, "E00000006")),
    ]
    places = [
        ("1111000001", "110105"), ("1111000002", "110105"), ("1111000003", "110108"),
        ("4444000001", "440305"),
    ]  # fmt: skip
    states = [State.ACTIVE, State.PENDING, State.ACTIVE, State.GRADUATED, State.ACTIVE]
    grades = [Grade.JUNIOR, Grade.MIDDLE, None, Grade.SENIOR]
    records = []
    for i in range(1, 25):
        code, region = places[i % 4]
        records.append(
            _record(
                f"r{i:02d}", child_id=f"c{i % 6 + 1:02d}", kindergarten_code=code,
                region_code=region, state=states[i % 5], grade=grades[i % 4],
                temp_number=f"L{region}2020031500{i:02d}",
                national_number=f"G{RESIDENT_IDS[2][:-3]}{i:02d}X" if i % 3 == 0 else None,
                former_numbers=(f"L{region}2019010100{i:02d}",) if i % 4 == 0 else (),
            )
        )  # fmt: skip
    return children, records


def _search_expected(
    children: list[Child], records: list[StatusRecord], query: RecordQuery
) -> list[str]:
    """The record ids a search must find, by id (the reference meaning of every filter)."""
    kids = {c.id: c for c in children}
    out = []
    for rec in sorted(records, key=lambda r: r.id):
        held = {rec.temp_number, rec.national_number, *rec.former_numbers}
        if query.number is not None and query.number not in held:
            continue
        kid = kids.get(rec.child_id)
        if kid is not None and query.matches(rec, kid):
            out.append(rec.id)
    return out


_SEARCHES = (
    RecordQuery(),
    RecordQuery(region_prefix="11"),
    RecordQuery(region_prefix="1101"),
    RecordQuery(region_prefix="110105"),
    RecordQuery(region_prefix="440305", state=State.ACTIVE),
    RecordQuery(region_prefix="32"),
    RecordQuery(kindergarten_code="1111000002"),
    RecordQuery(kindergarten_code="1111000002", region_prefix="44"),
    RecordQuery(kindergarten_code="1111000001", grade=Grade.JUNIOR),
    RecordQuery(state=State.PENDING),
    RecordQuery(state=State.ACTIVE, grade=Grade.SENIOR),
    RecordQuery(number="L110108202003150002"),
    RecordQuery(number="L110105201901010008"),  # a former number
    RecordQuery(number=f"G{RESIDENT_IDS[2][:-3]}06X"),
    RecordQuery(number=f"G{RESIDENT_IDS[2][:-3]}06X", region_prefix="44"),  # out of scope
    RecordQuery(number="L000000000000000000"),
    RecordQuery(document=RESIDENT_IDS[2]),
    RecordQuery(document="E12345678", region_prefix="1101"),
    RecordQuery(document="e12345678"),
    RecordQuery(name="李四"),
    RecordQuery(name="李四", birth_date=date(2021, 1, 2)),
    RecordQuery(name="王小明", birth_date=date(2020, 3, 15), kindergarten_code="1111000003"),
    RecordQuery(name=RARE_NAMES[0], state=State.ACTIVE),
    RecordQuery(name="nobody"),
)


class RecordSearchContract(_Base):
    """Portal search (:class:`~studentstatus.ports.RecordSearch`).

    ``supports_record_search``: ``None`` (default) runs these tests when
    ``uow.records`` has ``search`` and skips them otherwise (the search
    service then uses the base look-ups); ``True`` requires it; ``False``
    skips.  Every answer must be the records that meet the query, with their
    children, by record id — :meth:`~studentstatus.domain.search.RecordQuery.matches`
    for each filter, ``number`` found among every number a record holds or held.
    """

    supports_record_search: ClassVar[bool | None] = None

    def _require_search(self, store: Store) -> None:
        self._optional(
            self.supports_record_search, store,
            lambda u: isinstance(u.records, RecordSearch),
            "this store has no record search",
            "supports_record_search is True but uow.records lacks search",
        )  # fmt: skip

    @staticmethod
    def _search(
        uow: UnitOfWork, query: RecordQuery, *, limit: int = 100, after: str | None = None
    ) -> list[tuple[StatusRecord, Child]]:
        records: Any = uow.records
        found: list[tuple[StatusRecord, Child]] = records.search(query, limit=limit, after=after)
        return found

    def test_search_filters(self, store: Store) -> None:
        """Each filter and scope, alone and together: the matching records, by id, each with
        its child (numbers: temporary, national and former)."""
        self._require_search(store)
        children, records = _search_world()
        _commit(store, lambda u: u.children.add_many(children) + u.records.add_many(records))
        kids = {c.id: c for c in children}
        with store.unit_of_work() as uow:
            for query in _SEARCHES:
                found = self._search(uow, query)
                assert [r.id for r, _c in found] == _search_expected(children, records, query), (
                    query
                )
                for rec, kid in found:
                    assert kid == kids[rec.child_id]
                    assert rec == next(r for r in records if r.id == rec.id)
            assert [
                r.id for r, _c in self._search(uow, RecordQuery(number="L110105201901010008"))
            ] == ["r08"]

    def test_search_pages_by_id(self, store: Store) -> None:
        """``limit`` and ``after`` page through the matches: each exactly once, in id order."""
        self._require_search(store)
        children, records = _search_world()
        _commit(store, lambda u: u.children.add_many(children) + u.records.add_many(records))
        for query in (RecordQuery(), RecordQuery(region_prefix="1101"), RecordQuery(name="李四")):
            expected = _search_expected(children, records, query)
            with store.unit_of_work() as uow:
                for size in (1, 2, 5):
                    seen: list[str] = []
                    after: str | None = None
                    while page := self._search(uow, query, limit=size, after=after):
                        assert len(page) <= size
                        seen.extend(r.id for r, _c in page)
                        after = page[-1][0].id
                    assert seen == expected
                assert self._search(uow, query, after="r99") == []
                assert [r.id for r, _c in self._search(uow, query, after="r00", limit=3)] == (
                    expected[:3]
                )

    def test_search_sees_the_units_own_writes(self, store: Store) -> None:
        """Records and children added in the open unit are found; a rolled-back unit's are not."""
        self._require_search(store)
        with store.unit_of_work() as uow:
            uow.children.add(_child("c1"))
            uow.records.add(_record("r1", temp_number="L110105202003150001"))
            found = self._search(uow, RecordQuery(number="L110105202003150001"))
            assert [(r.id, c.id) for r, c in found] == [("r1", "c1")]
            rec = uow.records.get("r1")
            uow.records.update(attrs.evolve(rec, state=State.ACTIVE))
            assert [r.id for r, _c in self._search(uow, RecordQuery(state=State.ACTIVE))] == ["r1"]
        with store.unit_of_work() as uow:
            assert self._search(uow, RecordQuery()) == []

    def test_search_property(self) -> None:
        """Any records and any query: the search finds exactly the reference's records."""

        @settings(max_examples=self.property_examples, deadline=None,
                  suppress_health_check=[HealthCheck.too_slow])  # fmt: skip
        @given(
            people=st.lists(
                st.tuples(st.sampled_from(["王小明", "李四", RARE_NAMES[1]]), st.sampled_from(Sex),
                          st.sampled_from([date(2020, 3, 15), date(2021, 1, 2)]),
                          st.sampled_from([None, "E1", "E2"])),
                min_size=1, max_size=5,
            ),
            recs=st.lists(
                st.tuples(st.integers(0, 4), st.sampled_from(["110105", "110108", "440305"]),
                          st.sampled_from([State.ACTIVE, State.PENDING]),
                          st.sampled_from([Grade.JUNIOR, None])),
                max_size=8,
            ),
            query=st.builds(
                RecordQuery,
                region_prefix=st.sampled_from(["", "11", "110105", "44"]),
                kindergarten_code=st.sampled_from([None, "1111000001", "1111000002"]),
                number=st.sampled_from([None, "L1", "L3", "L9"]),
                document=st.sampled_from([None, "E1", "E2"]),
                name=st.sampled_from([None, "王小明", "李四"]),
                birth_date=st.sampled_from([None, date(2020, 3, 15)]),
                state=st.sampled_from([None, State.ACTIVE, State.PENDING]),
                grade=st.sampled_from([None, Grade.JUNIOR]),
            ),
            limit=st.integers(1, 4),
        )  # fmt: skip
        def check(
            people: list[tuple[str, Sex, date, str | None]],
            recs: list[tuple[int, str, State, Grade | None]],
            query: RecordQuery,
            limit: int,
        ) -> None:
            children = [
                _child(f"c{i}", name=name, sex=sex, birth_date=born,
                       document=None if doc is None
                       else IdentityDocument(DocumentKind.PASSPORT, doc))
                for i, (name, sex, born, doc) in enumerate(people)
            ]  # fmt: skip
            records = [
                _record(f"r{j}", child_id=f"c{who % len(people)}",
                        kindergarten_code=f"111100000{1 + j % 2}", region_code=region,
                        state=state, grade=grade, temp_number=f"L{j}")
                for j, (who, region, state, grade) in enumerate(recs)
            ]  # fmt: skip
            expected = _search_expected(children, records, query)
            with self.fresh_store() as store:
                self._require_search(store)
                _commit(
                    store, lambda u: u.children.add_many(children) + u.records.add_many(records)
                )
                with store.unit_of_work() as uow:
                    assert [r.id for r, _c in self._search(uow, query)] == expected
                    first = self._search(uow, query, limit=limit)
                    assert [r.id for r, _c in first] == expected[:limit]
                    if first:
                        rest = self._search(uow, query, after=first[-1][0].id)
                        assert [r.id for r, _c in rest] == expected[len(first) :]

        check()


class RosterContract(_Base):
    """Roster of children at unlicensed kindergartens."""

    def test_roster_round_trip(self, store: Store) -> None:
        """Entries read back equal, filter by county prefix, and ids are unique."""
        entries = [
            RosterEntry("e2", "440305", "无证看护点", "陈𠮷", Sex.F, date(2021, 2, 28),
                        IdentityDocument(DocumentKind.TW_PERMIT, "83000000"), T0, "county:440305"),
            RosterEntry("e1", "110105", "社区看护点", "李雷", Sex.M, date(2021, 6, 1)),
        ]  # fmt: skip
        _one_by_one(store, lambda u, e: u.roster.add(e), entries)
        with store.unit_of_work() as uow:
            assert list(uow.roster.iter()) == [entries[1], entries[0]]
            assert list(uow.roster.iter(county_prefix="44")) == [entries[0]]
        with pytest.raises(ConflictError):
            _commit(store, lambda u: u.roster.add(entries[0]))


class AttendanceContract(_Base):
    """Attendance: latest entry per day, corrections keep history."""

    def test_attendance_corrections_keep_history(self, store: Store) -> None:
        """A correction replaces the current entry of the day but the history keeps both."""
        d = date(2024, 9, 2)
        first = AttendanceEntry("r1", d, AttendanceStatus.ABSENT, AbsenceReason.UNKNOWN, T0, "kg")
        fix = AttendanceEntry(
            "r1", d, AttendanceStatus.ABSENT, AbsenceReason.SICK, T0 + timedelta(hours=2), "kg"
        )
        next_day = AttendanceEntry("r1", date(2024, 9, 3), AttendanceStatus.PRESENT)
        other = AttendanceEntry("r2", d, AttendanceStatus.PRESENT)
        _commit(store, lambda u: u.attendance.add_many([next_day, first, other]))
        _commit(store, lambda u: u.attendance.add_many([fix]))
        with store.unit_of_work() as uow:
            assert uow.attendance.for_record("r1") == [fix, next_day]
            assert uow.attendance.for_record("r1", start=date(2024, 9, 3)) == [next_day]
            assert uow.attendance.for_record("r1", end=d) == [fix]
            assert uow.attendance.history("r1", d) == [first, fix]
            assert uow.attendance.history("r1", date(2024, 9, 9)) == []


class BulkAttendanceContract(_Base):
    """Bulk attendance reads (:class:`~studentstatus.ports.BulkAttendanceRepository`).

    ``supports_bulk_attendance``: ``None`` (default) runs these tests when
    ``uow.attendance`` has ``for_records`` and skips them otherwise (services then
    read one record at a time); ``True`` requires it; ``False`` skips.
    """

    supports_bulk_attendance: ClassVar[bool | None] = True  # part of the base ports

    def test_attendance_for_records_equals_for_record(self, store: Store) -> None:
        """for_records = for_record per id (ids without entries left out), date-filtered."""
        self._optional(
            self.supports_bulk_attendance, store,
            lambda u: isinstance(u.attendance, BulkAttendanceRepository),
            "this store has no bulk attendance reads",
            "supports_bulk_attendance is True but uow.attendance lacks for_records",
        )  # fmt: skip
        d1, d2 = date(2024, 9, 2), date(2024, 9, 3)
        entries = [
            AttendanceEntry("r1", d1, AttendanceStatus.ABSENT, AbsenceReason.SICK, T0, "kg"),
            AttendanceEntry("r1", d2, AttendanceStatus.PRESENT),
            AttendanceEntry("r2", d1, AttendanceStatus.PRESENT),
            AttendanceEntry("r1", d1, AttendanceStatus.PRESENT, None, T0 + timedelta(hours=1)),
        ]
        _commit(store, lambda u: u.attendance.add_many(entries))
        ids = ["r2", "r1", "r9"]
        with store.unit_of_work() as uow:
            bulk = uow.attendance
            assert isinstance(bulk, BulkAttendanceRepository)
            for start, end in ((None, None), (d2, None), (None, d1)):
                got = bulk.for_records(ids, start=start, end=end)
                one = {
                    rid: found
                    for rid in ids
                    if (found := uow.attendance.for_record(rid, start=start, end=end))
                }
                assert got == one
            assert bulk.for_records([]) == {}


class FieldUpdatesContract(_Base):
    """Updates of named fields (:class:`~studentstatus.ports.FieldUpdates`).

    ``supports_field_updates``: ``None`` (default) runs the test when ``uow.records`` has
    ``update_fields``; ``True`` requires it; ``False`` skips.
    """

    supports_field_updates: ClassVar[bool | None] = None

    def test_update_fields_equals_update_many(self) -> None:
        """update_fields writes what update_many writes (the named fields and the version);
        a stale record conflicts and nothing of the batch is written."""
        with self.fresh_store() as a, self.fresh_store() as b:
            self._optional(
                self.supports_field_updates, a,
                lambda u: isinstance(u.records, FieldUpdates),
                "this store has no field updates",
                "supports_field_updates is True but uow.records lacks update_fields",
            )  # fmt: skip
            recs = [_record("r1", state=State.ACTIVE), _record("r2", state=State.ACTIVE)]
            for s in (a, b):
                _commit(s, lambda u: u.records.add_many(recs))
            moved = [attrs.evolve(r, grade=Grade.MIDDLE, last_promoted_year=2024) for r in recs]

            def by_fields(u: UnitOfWork) -> Any:
                assert isinstance(u.records, FieldUpdates)
                return u.records.update_fields(moved, ["grade", "last_promoted_year"])

            assert _commit(a, by_fields) == 2
            _commit(b, lambda u: u.records.update_many(moved))
            assert _read(a, lambda u: list(u.records.iter())) == _read(
                b, lambda u: list(u.records.iter())
            )
            fresh = _read(a, lambda u: u.records.get("r2"))
            stale = [attrs.evolve(fresh, grade=Grade.SENIOR), moved[0]]  # r2 fresh, r1 stale
            with a.unit_of_work() as uow:
                fields = uow.records
                assert isinstance(fields, FieldUpdates)
                with pytest.raises(ConflictError):
                    fields.update_fields(stale, ["grade"])
            assert _read(a, lambda u: u.records.get("r2").grade) is Grade.MIDDLE  # not written


class SetBasedRolloverContract(_Base):
    """The year-end rollover on a store with :class:`~studentstatus.ports.SetBasedRollover`
    gives, record by record, what the status machine gives on the memory store.

    ``supports_set_based_rollover``: ``None`` (default) runs the test when ``uow.records``
    has the capability; ``True`` requires it; ``False`` skips.
    """

    supports_set_based_rollover: ClassVar[bool | None] = None

    def test_set_based_rollover_equals_the_machine(self, store: Store) -> None:
        """Promotions, graduations, repeats and blocked records agree with the memory store."""
        import random

        from studentstatus.domain.jurisdiction import Operator
        from studentstatus.services.rollover import apply_rollover
        from studentstatus.services.runtime import FixedClock, Runtime

        self._optional(
            self.supports_set_based_rollover, store,
            lambda u: isinstance(u.records, SetBasedRollover),
            "this store rolls over through the machine",
            "supports_set_based_rollover is True but uow.records lacks the rollover methods",
        )  # fmt: skip
        grades = [Grade.NURSERY, Grade.JUNIOR, Grade.MIDDLE, Grade.SENIOR, None, Grade.JUNIOR]
        records = [
            _record(f"r{i}", state=State.ACTIVE, grade=g, child_id=f"c{i}")
            for i, g in enumerate(grades)
        ]
        records.append(_record("r9", state=State.PENDING, child_id="c9"))
        records.append(
            _record("r8", state=State.ACTIVE, grade=Grade.MIDDLE, last_promoted_year=2024)
        )
        memory = MemoryStore()
        clock = FixedClock(datetime(2024, 9, 2, 9, tzinfo=BEIJING))
        for s in (store, memory):
            _commit(s, lambda u: u.kindergartens.add(_kg()))
            _commit(s, lambda u: u.records.add_many(records))
            apply_rollover(Runtime(s, clock, random.Random(1)), Operator.parse("ministry"), 2024)
        got = _read(store, lambda u: (list(u.records.iter()), list(u.changes.iter())))
        want = _read(memory, lambda u: (list(u.records.iter()), list(u.changes.iter())))
        strip = functools.partial(attrs.evolve, recorded_at=T0)
        assert got[0] == want[0]
        assert [strip(e) for e in got[1]] == [strip(e) for e in want[1]]


class ReportSourceContract(_Base):
    """A unit of work's own report counts (:class:`~studentstatus.ports.ReportingUnitOfWork`)
    equal the counts through the repositories (``services.reports.PortReportSource``).

    ``supports_report_source``: ``None`` (default) runs the test when the unit of work
    has ``report_source`` and skips it otherwise; ``True`` requires it; ``False`` skips.
    """

    supports_report_source: ClassVar[bool | None] = None

    def test_report_source_counts_like_the_ports(self, store: Store) -> None:
        """Enrolment, changes, problems and attendance counts of both sources agree."""
        from studentstatus.services.reports import PortReportSource

        self._optional(
            self.supports_report_source, store,
            lambda u: isinstance(u, ReportingUnitOfWork),
            "this store counts reports through the ports",
            "supports_report_source is True but the unit of work lacks report_source",
        )  # fmt: skip
        kgs = [_kg("1111000001", "110105"), _kg("1111000002", "110108", inclusive=False)]
        children = [
            _child("c1"),
            _child("c2", sex=Sex.F, hukou_region="440305", document=None),
            _child("c3", birth_date=date(2021, 5, 1), document=None),
        ]
        records = [
            _record("r1", state=State.ACTIVE),
            _record("r2", child_id="c2", state=State.ACTIVE, grade=Grade.MIDDLE),
            _record(
                "r3", child_id="c3", kindergarten_code="1111000002", region_code="110108",
                state=State.ACTIVE, grade=None,
            ),
            _record("r4", child_id="c3", state=State.PENDING),
        ]  # fmt: skip

        def seed(uow: UnitOfWork) -> None:
            uow.kindergartens.add_many(kgs)
            uow.children.add_many(children)
            uow.records.add_many(records)
            uow.changes.append_many(
                [_change("r1", 1, date(2024, 9, 2)), _change("r3", 1, date(2024, 10, 8))]
            )
            uow.attendance.add_many(
                [
                    AttendanceEntry("r1", date(2024, 9, 2), AttendanceStatus.PRESENT),
                    AttendanceEntry("r3", date(2024, 9, 2), AttendanceStatus.ABSENT),
                ]
            )

        _commit(store, seed)
        start, end = date(2024, 9, 1), date(2025, 8, 31)
        with store.unit_of_work() as uow:
            assert isinstance(uow, ReportingUnitOfWork)
            own, ports = uow.report_source(), PortReportSource(uow)
            for scope in (
                ReportScope("11"),
                ReportScope("110108"),
                ReportScope("11", "1111000001"),
            ):
                assert own.enrolment(scope) == ports.enrolment(scope)
                assert own.changes_by_kind(scope, start, end) == ports.changes_by_kind(
                    scope, start, end
                )
                assert own.problems(scope) == ports.problems(scope)
                assert own.attendance_by_day(scope, start, end) == ports.attendance_by_day(
                    scope, start, end
                )


class AuditContract(_Base):
    """The audit log: one chain per writer scope; ordered by (chain, seq), (chain, seq)
    unique, last(chain), heads().

    ``supports_sealing_audit``: ``None`` (default) runs the sealing test when the
    log has ``seal_and_append`` (:class:`~studentstatus.ports.SealingAuditLog`) and
    skips it otherwise; ``True`` requires it; ``False`` skips.
    """

    supports_sealing_audit: ClassVar[bool | None] = None

    def test_audit_log(self, store: Store) -> None:
        """Entries read back by (chain, seq); a duplicate (chain, seq) conflicts; last(chain)
        is the chain's highest; heads() names each chain's last entry."""
        assert _read(store, lambda u: u.audit.last()) is None
        assert _read(store, lambda u: u.audit.heads()) == {}
        _commit(store, lambda u: u.audit.append_many([_audit(2), _audit(1)]))
        _commit(store, lambda u: u.audit.append(_audit(3)))
        with store.unit_of_work() as uow:
            assert list(uow.audit.iter()) == [_audit(1), _audit(2), _audit(3)]
            assert list(uow.audit.iter("")) == [_audit(1), _audit(2), _audit(3)]
            assert list(uow.audit.iter("county:110105")) == []
            assert uow.audit.last() == _audit(3)
            assert uow.audit.last("") == _audit(3)
            assert uow.audit.last("county:110105") is None
            assert uow.audit.heads() == {"": (3, _audit(3).hash)}
        with pytest.raises(ConflictError):
            _commit(store, lambda u: u.audit.append(attrs.evolve(_audit(2), reason="tampered")))
        assert _read(store, lambda u: u.audit.heads()) == {"": (3, _audit(3).hash)}

    def test_audit_keyed_entries(self, store: Store) -> None:
        """Entries sealed under the host's key (hashes ``KEYID:MAC``, 73 characters) are
        stored and read back whole, and verify with that key and no other."""
        key = AuditKey(b"conformance kit audit key")
        events: list[tuple[str, str, str, str, dict[str, Any], dict[str, Any]]] = [
            (f"county:11010{i % 2}", "approve", f"r{i}", "", {}, {"n": i}) for i in range(4)
        ]
        sealed = [
            e
            for chain, group in group_by_chain(events).items()
            for e in seal_events(None, T0, group, chain=chain, key=key)
        ]
        _commit(store, lambda u: u.audit.append_many(sealed))
        with store.unit_of_work() as uow:
            assert list(uow.audit.iter()) == sorted(sealed, key=lambda e: (e.chain, e.seq))
            report = verify_chain(uow.audit.iter(), heads=uow.audit.heads(), key=key)
            assert (report.ok, report.keyed) == (True, 4)
            other = AuditKey(b"not the host's audit key")
            assert verify_chain(uow.audit.iter(), key=other).problem == "other_key"

    def test_audit_chains_are_independent(self, store: Store) -> None:
        """Two chains count their own seqs from 1: the same seq in two chains is no conflict;
        iter() lists chain by chain, iter(chain) one chain; heads() has one head per chain,
        moved by every append (also one unit appending to both)."""
        a, b = "county:110105", "county:110106"
        _commit(store, lambda u: u.audit.append_many([_audit(1, a), _audit(2, a)]))
        _commit(store, lambda u: u.audit.append(_audit(1, b)))
        with store.unit_of_work() as uow:
            assert list(uow.audit.iter()) == [_audit(1, a), _audit(2, a), _audit(1, b)]
            assert list(uow.audit.iter(b)) == [_audit(1, b)]
            assert uow.audit.last(a) == _audit(2, a)
            assert uow.audit.last(b) == _audit(1, b)
            assert uow.audit.last() is None
            assert uow.audit.heads() == {a: (2, _audit(2).hash), b: (1, _audit(1).hash)}
        _commit(store, lambda u: u.audit.append_many([_audit(2, b), _audit(3, a), _audit(3, b)]))
        with pytest.raises(ConflictError):
            _commit(store, lambda u: u.audit.append_many([_audit(4, a), _audit(3, b)]))
        with store.unit_of_work() as uow:
            assert uow.audit.heads() == {a: (3, _audit(3).hash), b: (3, _audit(3).hash)}
            assert [(e.chain, e.seq) for e in uow.audit.iter()] == [
                (a, 1), (a, 2), (a, 3), (b, 1), (b, 2), (b, 3),
            ]  # fmt: skip
            assert uow.audit.last(a) == _audit(3, a)

    def test_seal_and_append_equals_sealed_entries(self) -> None:
        """A log that seals events itself (:class:`~studentstatus.ports.SealingAuditLog`)
        stores exactly what sealing each chain's events after its last entry stores
        (``append_many(seal_events(last(chain), …, chain=chain))``), hashes included:
        small and bulk batches of several chains, after entries already there; text
        with tabs, backslashes, newlines, control characters and rare names; the heads
        follow."""
        with self.fresh_store() as store:
            self._optional(
                self.supports_sealing_audit, store,
                lambda u: isinstance(u.audit, SealingAuditLog),
                "this store's audit log does not seal events itself",
                "supports_sealing_audit is True but uow.audit has no seal_and_append",
            )  # fmt: skip
            names = ["r1", "𠮷田\t\\N\n", "a\\b", "\x0b\x1f\r", *RARE_NAMES]
            small: list[Any] = [
                ("county:110105", "approve", "record:r0", "", {}, {"state": "ACTIVE"})
            ]
            bulk: list[Any] = [
                (f"county:{i % 3}", "register" if i % 7 else "标\t记", f"{names[i % 10]}{i}",
                 names[(i + 1) % len(names)] if i % 5 == 0 else "",
                 {} if i % 2 else {"grade": None, "names": names[:2]},
                 {"state": "PENDING", "n": i, "ok": bool(i % 3), "名": names[i % len(names)]})
                for i in range(250)
            ]  # fmt: skip
            at = datetime(2025, 9, 1, 8, 0, 0, 123456, tzinfo=timezone(timedelta(hours=8)))

            def sealed(u: UnitOfWork, events: list[Any]) -> int:
                assert isinstance(u.audit, SealingAuditLog)
                return u.audit.seal_and_append(events, at=at)

            assert _commit(store, lambda u: sealed(u, small)) == 1
            assert _commit(store, lambda u: sealed(u, bulk)) == 250
            last: dict[str, AuditEntry] = {}
            expected: list[AuditEntry] = []
            for batch in (small, bulk):
                for chain, group in group_by_chain(batch).items():
                    for entry in seal_events(last.get(chain), at, group, chain=chain):
                        last[chain] = entry
                        expected.append(entry)
            expected.sort(key=lambda e: (e.chain, e.seq))
            got = _read(store, lambda u: list(u.audit.iter()))
            assert sorted(got, key=lambda e: (e.chain, e.seq)) == expected
            assert {e.chain for e in got} == {"county:110105", "county:0", "county:1", "county:2"}
            heads = _read(store, lambda u: u.audit.heads())
            assert heads == {c: (e.seq, e.hash) for c, e in last.items()}
            assert verify_chain(got, heads=heads).ok


class ClaimsContract(_Base):
    """Identity claims (:class:`~studentstatus.ports.IdentityClaims`): counts per key,
    committed or rolled back with the unit, and never two units both told "nobody
    claimed this key before" when both commit."""

    def test_claims_count_per_key(self, store: Store) -> None:
        """``claim`` returns the claims before the call; repeats count; commit keeps them,
        rollback drops them."""
        with store.unit_of_work() as uow:
            assert uow.claims.claim(["k2", "k1", "k2"]) == {"k1": 0, "k2": 0}
            assert uow.claims.claim(["k2"]) == {"k2": 2}
            assert uow.claims.claim([]) == {}
            uow.commit()
            assert uow.claims.claim(["k3"]) == {"k3": 0}
            uow.rollback()
        assert _read(store, lambda u: u.claims.claim(["k1", "k2", "k3"])) == {
            "k1": 1,
            "k2": 3,
            "k3": 0,
        }

    def test_racing_claims_never_both_first(self) -> None:
        """Two units claim one key at once: if both commit, the second saw the first's
        claim (a store that locks makes the second wait; an optimistic one fails one of
        the commits with :class:`~studentstatus.errors.ConflictError`)."""
        if not self.supports_concurrent_units:
            pytest.skip("adapter does not support concurrent units")

        with self.fresh_store() as store:
            seen: dict[str, int] = {}
            failed: list[BaseException] = []
            started = threading.Event()

            def second() -> None:
                try:
                    with store.unit_of_work() as uow:
                        started.set()
                        seen["second"] = uow.claims.claim(["k"])["k"]
                        uow.commit()
                except ConflictError as exc:
                    failed.append(exc)

            with store.unit_of_work() as first:
                seen["first"] = first.claims.claim(["k"])["k"]
                worker = threading.Thread(target=second)
                worker.start()
                started.wait(5)
                worker.join(0.3)  # a locking store keeps it waiting here
                try:
                    first.commit()
                except ConflictError as exc:
                    failed.append(exc)
            worker.join(30)
            assert not worker.is_alive()
            assert seen["first"] == 0
            assert failed or seen["second"] == 1
            total = _read(store, lambda u: u.claims.claim(["k"]))["k"]
            assert total == 2 - len(failed)


def _stale(uow: UnitOfWork, record_id: str) -> StatusRecord:
    return attrs.evolve(uow.records.get(record_id), version=99)


#: (bulk call, committed set-up, a valid write in the unit, the bulk call that fails).
_BULK_SCENARIOS: tuple[
    tuple[
        str, Callable[[UnitOfWork], Any], Callable[[UnitOfWork], Any], Callable[[UnitOfWork], Any]
    ],
    ...,
] = (
    (
        "records.add_many",
        lambda u: u.records.add(_record("r1")),
        lambda u: u.records.add(_record("r9")),
        lambda u: u.records.add_many([_record("r2"), _record("r1")]),
    ),
    (
        "records.update_many",
        lambda u: u.records.add_many([_record("r1"), _record("r2"), _record("r3")]),
        lambda u: u.records.update(attrs.evolve(u.records.get("r3"), state=State.ACTIVE)),
        lambda u: u.records.update_many(
            [attrs.evolve(u.records.get("r1"), state=State.ACTIVE), _stale(u, "r2")]
        ),
    ),
    (
        "children.add_many",
        lambda u: u.children.add(_child("c1")),
        lambda u: u.records.add(_record("r9")),
        lambda u: u.children.add_many([_child("c2", document=None), _child("c1")]),
    ),
    (
        "kindergartens.add_many",
        lambda u: u.kindergartens.add(_kg("1111000001")),
        lambda u: u.records.add(_record("r9")),
        lambda u: u.kindergartens.add_many([_kg("2222000002"), _kg("1111000001")]),
    ),
    (
        "changes.append_many",
        lambda u: u.changes.append(_change("r1", 1, date(2024, 9, 1))),
        lambda u: u.records.add(_record("r9")),
        lambda u: u.changes.append_many(
            [_change("r2", 1, date(2024, 9, 2)), _change("r1", 1, date(2024, 9, 3))]
        ),
    ),
    (
        "numbers.claim_many",
        lambda u: u.numbers.claim(_issued("L1", "r1")),
        lambda u: u.records.add(_record("r9")),
        lambda u: u.numbers.claim_many([_issued("L2", "r2"), _issued("L1", "r3")]),
    ),
    (
        "problems.add_many",
        lambda u: u.problems.add(_problem("p1", "r1")),
        lambda u: u.records.add(_record("r9")),
        lambda u: u.problems.add_many([_problem("p2", "r2"), _problem("p1", "r1")]),
    ),
)


class UnitOfWorkContract(_Base):
    """Atomicity and isolation of units of work."""

    def test_declared_optional_members_have_their_types(self, store: Store) -> None:
        """What a store declares of the optional protocols holds what the services read:
        the host's key (``KeyedStore``, ``KeyedAuditLog``: an ``AuditKey`` or ``None``), a
        row encoder's batch size (``BatchingEncoder``: an int, 0 or more)."""
        if isinstance(store, KeyedStore):
            assert store.audit_key is None or isinstance(store.audit_key, AuditKey)
        with store.unit_of_work() as uow:
            if isinstance(uow.audit, KeyedAuditLog):
                assert uow.audit.key is None or isinstance(uow.audit.key, AuditKey)
            encoder: object = uow.row_encoder() if isinstance(uow, PreparedWrites) else None
            if isinstance(encoder, BatchingEncoder):
                batch: object = encoder.write_batch
                assert isinstance(batch, int)
                assert batch >= 0

    def test_commit_persists_rollback_discards(self, store: Store) -> None:
        """Committed writes are visible to later units; rolled back ones are not."""
        with store.unit_of_work() as uow:
            uow.records.add(_record("r1"))
            uow.commit()
            uow.records.add(_record("r2"))
            assert uow.records.find_by_number("x") is None
            uow.rollback()
            assert uow.records.get_many(["r1", "r2"]).keys() == {"r1"}
        assert _read(store, lambda u: [r.id for r in u.records.iter()]) == ["r1"]

    def test_exit_without_commit_rolls_back(self, store: Store) -> None:
        """Leaving the block without commit discards every write."""
        with store.unit_of_work() as uow:
            uow.records.add(_record("r1"))
            uow.changes.append(_change("r1", 1, date(2024, 9, 1)))
            uow.numbers.claim(_issued("L1", "r1"))
        with store.unit_of_work() as uow:
            assert uow.records.count() == 0
            assert uow.changes.for_record("r1") == []
            assert uow.numbers.resolve("L1") is None

    def test_exception_rolls_back(self, store: Store) -> None:
        """An exception inside the block discards the unit's writes."""

        class Boom(Exception):
            pass

        def body() -> None:
            with store.unit_of_work() as uow:
                uow.records.add(_record("r1"))
                uow.audit.append(_audit(1))
                raise Boom

        with pytest.raises(Boom):
            body()
        assert _read(store, lambda u: (u.records.count(), u.audit.last())) == (0, None)

    def test_failed_bulk_write_writes_nothing(self, store: Store) -> None:
        """A rejected bulk write writes nothing, not even its valid rows; later units work."""
        _commit(store, lambda u: u.records.add(_record("r1")))
        with pytest.raises(ConflictError):
            _commit(store, lambda u: u.records.add_many([_record("r2"), _record("r1")]))
        with store.unit_of_work() as uow:
            uow.records.add(_record("r3"))
            uow.commit()
        assert _read(store, lambda u: [r.id for r in u.records.iter()]) == ["r1", "r3"]

    def test_bulk_call_is_atomic_inside_an_open_unit(self) -> None:
        """A failed bulk call writes none of its rows, even when the host catches its error
        and commits the unit: the store keeps what MemoryStore keeps (the unit's other
        writes, nothing of the failed call), for every bulk call of the ports."""
        for name, setup, ok, failing in _BULK_SCENARIOS:
            kept = []
            for make in (MemoryStore, self.make_store):
                store = make()
                try:
                    _commit(store, setup)
                    with store.unit_of_work() as uow:
                        ok(uow)
                        with pytest.raises(StudentStatusError):
                            failing(uow)
                        uow.commit()
                    with store.unit_of_work() as uow:
                        kept.append(dump(uow, ("r1", "r2", "r3", "r9")))
                finally:
                    if make is MemoryStore:
                        store.close()
                    else:
                        self.close_store(store)
            _assert_same(kept[0], kept[1], f"after a caught failure of {name} and a commit")

    def test_units_see_their_own_writes(self, store: Store) -> None:
        """Reads inside a unit see its uncommitted writes; after rollback they are gone."""
        _commit(store, lambda u: u.records.add(_record("r1")))
        with store.unit_of_work() as uow:
            uow.records.add(_record("r2", national_number="G" + RESIDENT_IDS[0]))
            uow.records.update(attrs.evolve(uow.records.get("r1"), state=State.ACTIVE))
            assert uow.records.get("r2").id == "r2"
            assert uow.records.get("r1").state is State.ACTIVE
            assert uow.records.find_by_number("G" + RESIDENT_IDS[0]) is not None
            assert uow.records.count() == 2
            uow.rollback()
            assert uow.records.get_many(["r1", "r2"]) == {"r1": _record("r1")}
            assert uow.records.find_by_number("G" + RESIDENT_IDS[0]) is None

    def test_units_are_isolated_without_concurrency(self, store: Store) -> None:
        """A unit opened from another thread while one is open never sees that unit's
        uncommitted writes: it waits until the first closes, fails with a library error, or
        reads the state before.  Run for every store, those without concurrent units too."""
        _commit(store, lambda u: u.records.add(_record("r1")))
        seen: list[object] = []
        started = threading.Event()

        def other() -> None:
            started.set()
            try:
                with store.unit_of_work() as uow:
                    seen.append(
                        (
                            sorted(uow.records.get_many(["r1", "r2"])),
                            uow.records.count(),
                            uow.records.get_many(["r1"]).get("r1"),
                        )
                    )
            except StudentStatusError as exc:
                seen.append(type(exc).__name__)

        with store.unit_of_work() as uow:
            uow.records.add(_record("r2"))
            uow.records.update(attrs.evolve(uow.records.get("r1"), state=State.ACTIVE))
            thread = threading.Thread(target=other, daemon=True)
            thread.start()
            started.wait(5)
            thread.join(0.5)  # a store that serialises units makes the other wait for us
            uow.rollback()
        thread.join(10)
        assert not thread.is_alive(), "the other unit never finished (deadlock?)"
        assert len(seen) == 1
        if not isinstance(seen[0], str):
            before = (["r1"], 1, _record("r1"))
            _assert_same(before, seen[0], "what a unit saw of another's uncommitted writes")
        assert _read(store, lambda u: sorted(u.records.get_many(["r1", "r2"]))) == ["r1"]

    def test_uncommitted_writes_are_invisible(self, store: Store) -> None:
        """Another unit does not see writes before commit."""
        if not self.supports_concurrent_units:
            pytest.skip("adapter does not support concurrent units")
        with store.unit_of_work() as writer:
            writer.records.add(_record("r1"))
            with store.unit_of_work() as reader:
                assert reader.records.get_many(["r1"]) == {}
            writer.commit()
        assert _read(store, lambda u: u.records.count()) == 1

    def test_concurrent_units_conflict(self, store: Store) -> None:
        """Two units update the same record: the later commit conflicts and publishes nothing."""
        if not self.supports_concurrent_units:
            pytest.skip("adapter does not support concurrent units")
        _commit(store, lambda u: u.records.add(_record("r1")))
        first = store.unit_of_work()
        second = store.unit_of_work()
        with first, second:
            a = first.records.get("r1")
            b = second.records.get("r1")
            first.records.update(attrs.evolve(a, state=State.ACTIVE))
            second.records.update(attrs.evolve(b, state=State.CANCELLED))
            second.audit.append(_audit(1))
            first.commit()
            with pytest.raises(ConflictError):
                second.commit()
        with store.unit_of_work() as uow:
            assert uow.records.get("r1").state is State.ACTIVE
            assert uow.records.get("r1").version == 1
            assert uow.audit.last() is None

    def test_concurrent_sequences_and_inserts_conflict(self, store: Store) -> None:
        """Racing J-sequence allocations and inserts of the same id: the loser conflicts."""
        if not self.supports_concurrent_units:
            pytest.skip("adapter does not support concurrent units")
        d = date(2020, 1, 1)
        first = store.unit_of_work()
        second = store.unit_of_work()
        with first, second:
            assert first.numbers.next_sequence("110105", d) == 1
            got = second.numbers.next_sequence("110105", d)
            first.commit()
            if got == 1:  # optimistic store: the loser must not commit a duplicate
                with pytest.raises(ConflictError):
                    second.commit()
            else:  # serialising store: the second allocation waited and got the next one
                assert got == 2
                second.commit()
        first = store.unit_of_work()
        second = store.unit_of_work()
        with first, second:
            first.records.add(_record("r9"))
            second.records.add(_record("r9", state=State.ACTIVE))
            first.commit()
            with pytest.raises(ConflictError):
                second.commit()
        assert _read(store, lambda u: u.records.get("r9").state) is State.PENDING


class PersistenceContract(_Base):
    """Data survives closing and reopening (``supports_persistence``)."""

    def test_reopen_keeps_everything(self) -> None:
        """Every kind of entity is still there, equal, after reopening."""
        if not self.supports_persistence:
            pytest.skip("adapter does not persist")
        store = self.make_store()
        try:
            _commit(store, _fill)
            before = _read(store, dump)
            seq = _read(store, lambda u: u.numbers.next_sequence("110105", date(2020, 1, 1)))
            store = self.reopen_store(store)
            assert _read(store, dump) == before
            assert (
                _commit(store, lambda u: u.numbers.next_sequence("110105", date(2020, 1, 1))) == seq
            )
        finally:
            self.close_store(store)


def _fill(uow: UnitOfWork) -> None:
    uow.kindergartens.add(_kg())
    uow.children.add(_child())
    uow.records.add(_full_record())
    uow.changes.append_many(
        [_change("r-full", 1, date(2024, 9, 1)), _change("r-full", 2, date(2099, 12, 31))]
    )
    uow.requests.add(_request("q1", "r-full"))
    uow.problems.add(_problem("p1", "r-full"))
    uow.numbers.claim(_issued("L1101052020031500001", "r-full"))
    uow.numbers.next_sequence("110105", date(2020, 1, 1))
    uow.roster.add(RosterEntry("e1", "110105", "看护点", "䶮", Sex.M, date(1900, 1, 1)))
    uow.attendance.add_many([AttendanceEntry("r-full", date(2024, 9, 2), AttendanceStatus.PRESENT)])
    uow.audit.append(_audit(1))


# --------------------------------------------------------------------------- properties

_ids = st.sampled_from([f"r{i}" for i in range(8)])
_regions = st.sampled_from(["110105", "110106", "440305"])
_days = st.dates(min_value=date(1900, 1, 1), max_value=date(2099, 12, 31))
# Any Unicode text except NUL: PostgreSQL text columns cannot hold U+0000, and the domain's
# checks (``check_child``, ``build_child``) refuse control characters in names before anything
# reaches a store, so no adapter is asked to keep one.
_text = st.text(
    st.characters(codec="utf-8", exclude_categories=["Cs"], exclude_characters="\x00"),
    max_size=12,
)


_former = st.from_regex(r"F[0-9]{3}", fullmatch=True)


@st.composite
def _records(draw: st.DrawFn, record_id: st.SearchStrategy[str] = _ids) -> StatusRecord:
    number = st.none() | st.from_regex(r"L[0-9]{4}", fullmatch=True)
    return StatusRecord(
        draw(record_id), draw(_text), draw(st.sampled_from(["1111000001", "2222000002"])),
        draw(_regions), draw(st.sampled_from(State)), draw(st.none() | st.sampled_from(Grade)),
        draw(_days), temp_number=draw(number),
        former_numbers=tuple(draw(st.lists(_former, max_size=2))),
        verification=draw(st.none() | st.sampled_from(VerificationResult)),
        suspended_days=draw(st.integers(0, 2000)),
        repeated_grades=tuple(draw(st.lists(st.sampled_from(Grade), max_size=2))),
    )  # fmt: skip


class PropertyContract(_Base):
    """Hypothesis round trips and bulk-equals-single over generated data."""

    def test_record_round_trip_property(self) -> None:
        """Any record (Unicode text, any date 1900–2099) reads back equal."""

        @settings(max_examples=self.property_examples, deadline=None,
                  suppress_health_check=[HealthCheck.too_slow])  # fmt: skip
        @given(rec=_records(), name=_text, birth=_days)
        def check(rec: StatusRecord, name: str, birth: date) -> None:
            child = _child("c-prop", name=name, birth_date=birth)
            with self.fresh_store() as store:
                _commit(store, lambda u: u.children.add_many([child]) + u.records.add_many([rec]))
                assert _read(store, lambda u: u.records.get(rec.id)) == rec
                assert _read(store, lambda u: u.children.get(child.id)) == child

        check()

    def test_bulk_equals_single_property(self) -> None:
        """add_many of any batch ends in the same state (or error) as add one by one."""

        @settings(max_examples=self.property_examples, deadline=None,
                  suppress_health_check=[HealthCheck.too_slow])  # fmt: skip
        @given(st.lists(_records(), max_size=6))
        def check(recs: list[StatusRecord]) -> None:
            with self.fresh_store() as a, self.fresh_store() as b:
                bulk = _outcome(a, lambda u: u.records.add_many(recs))
                single = _outcome(b, lambda u: _add_each(u, recs))
                assert (bulk[0], _read(a, dump)) == (single[0], _read(b, dump))

        check()


def _add_each(uow: UnitOfWork, records: list[StatusRecord]) -> int:
    for rec in records:
        uow.records.add(rec)
    return len(records)


def _outcome(store: Store, fn: Callable[[UnitOfWork], Any]) -> tuple[str | None, Any]:
    """Run ``fn`` in a unit and commit; the error class name (or None) and the result."""
    try:
        with store.unit_of_work() as uow:
            out = fn(uow)
            uow.commit()
    except StudentStatusError as exc:
        return type(exc).__name__, None
    return None, out


# --------------------------------------------------------------------------- differential


def _then_rollback(uow: UnitOfWork, fn: Callable[[UnitOfWork], Any]) -> Any:
    out = fn(uow)
    uow.rollback()
    return out


def run_differential(
    make_store: Callable[[], Store],
    *,
    close_store: Callable[[Store], None] | None = None,
    max_examples: int = 15,
    step_count: int = 25,
    shrink: bool = True,
) -> None:
    """Run random operation sequences on ``make_store()`` and on a MemoryStore; compare.

    After every step the outcome (result or error class) and :func:`dump` of both
    stores must be equal.  The machine class is built on each call, so calling
    this from several test classes is safe with hypothesis.  ``shrink=False``
    reports the first failing sequence as found (faster, but longer).

    >>> run_differential(MemoryStore, max_examples=2, step_count=3)
    """
    closer = close_store or (lambda s: s.close())
    ids = [f"r{i}" for i in range(5)]
    pool = [f"L{i}" for i in range(4)]
    numbers = st.none() | st.sampled_from(pool)
    children = [f"c{i}" for i in range(3)]

    class Differential(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.ref = MemoryStore()
            self.sut = make_store()

        def both(self, fn: Callable[[UnitOfWork], Any], commit: bool = True) -> None:
            results = []
            stores: tuple[Store, Store] = (self.ref, self.sut)
            for store in stores:
                if commit:
                    results.append(_outcome(store, fn))
                else:
                    results.append(_outcome(store, lambda u: _then_rollback(u, fn)))
            _assert_same(results[0], results[1], "the outcome (error class, result)")

        @rule(rec=_records(st.sampled_from(ids)), commit=st.booleans())
        def add_record(self, rec: StatusRecord, commit: bool) -> None:
            self.both(lambda u: u.records.add(rec), commit)

        @rule(rid=st.sampled_from(ids), state=st.sampled_from(State), number=numbers,
              skew=st.sampled_from([0, 0, 0, -1, 1]), commit=st.booleans())  # fmt: skip
        def update_record(
            self, rid: str, state: State, number: str | None, skew: int, commit: bool
        ) -> None:
            with self.ref.unit_of_work() as u:
                current = u.records.get_many([rid]).get(rid)
            if current is None:
                current = _record(rid)
            new = attrs.evolve(
                current, state=state, national_number=number, version=current.version + skew
            )
            self.both(lambda u: u.records.update(new), commit)

        @rule(rids=st.lists(st.sampled_from(ids), max_size=3), commit=st.booleans())
        def update_many(self, rids: list[str], commit: bool) -> None:
            with self.ref.unit_of_work() as u:
                found = u.records.get_many(rids)
            batch = [
                attrs.evolve(found[r], skipped=not found[r].skipped) for r in rids if r in found
            ]
            self.both(lambda u: u.records.update_many(batch), commit)

        @rule(code=st.sampled_from(["1111000001", "2222000002"]), region=_regions)
        def add_kindergarten(self, code: str, region: str) -> None:
            self.both(lambda u: u.kindergartens.add(_kg(code, region)))

        @rule(recs=st.lists(_records(st.sampled_from(ids)), max_size=3), commit=st.booleans())
        def add_many_records(self, recs: list[StatusRecord], commit: bool) -> None:
            self.both(lambda u: u.records.add_many(recs), commit)

        @rule(cid=st.sampled_from(children), name=_text, birth=_days, commit=st.booleans())
        def add_child(self, cid: str, name: str, birth: date, commit: bool) -> None:
            self.both(lambda u: u.children.add(_child(cid, name=name, birth_date=birth)), commit)

        @rule(cid=st.sampled_from(children), name=_text, skew=st.sampled_from([0, 0, -1]))
        def update_child(self, cid: str, name: str, skew: int) -> None:
            with self.ref.unit_of_work() as u:
                current = u.children.get_many([cid]).get(cid) or _child(cid)
            new = attrs.evolve(current, name=name, version=current.version + skew)
            self.both(lambda u: u.children.update(new))

        @rule(pid=st.sampled_from(["p1", "p2"]), rid=st.sampled_from(ids), county=_regions,
              status=st.sampled_from(ProblemStatus), update=st.booleans())  # fmt: skip
        def problem(
            self, pid: str, rid: str, county: str, status: ProblemStatus, update: bool
        ) -> None:
            with self.ref.unit_of_work() as u:
                version = next((p.version for p in u.problems.iter() if p.id == pid), 0)
            prob = _problem(pid, rid, county, status=status, version=version)
            if update:
                self.both(lambda u: u.problems.update(prob))
            else:
                self.both(lambda u: u.problems.add(prob))

        @rule(chosen=st.lists(st.sampled_from(pool), max_size=3), rid=st.sampled_from(ids))
        def claim_many(self, chosen: list[str], rid: str) -> None:
            self.both(lambda u: u.numbers.claim_many(_issued(n, rid) for n in chosen))

        @rule(rid=st.sampled_from(ids), seq=st.integers(1, 3), day=_days,
              kind=st.sampled_from(ChangeKind), commit=st.booleans())  # fmt: skip
        def append_change(
            self, rid: str, seq: int, day: date, kind: ChangeKind, commit: bool
        ) -> None:
            self.both(lambda u: u.changes.append(_change(rid, seq, day, kind)), commit)

        @rule(number=st.sampled_from(pool), rid=st.sampled_from(ids), minutes=st.integers(0, 9))
        def claim(self, number: str, rid: str, minutes: int) -> None:
            self.both(
                lambda u: u.numbers.claim(_issued(number, rid, T0 + timedelta(minutes=minutes)))
            )

        @rule(region=_regions, day=st.sampled_from([date(2020, 1, 1), date(2021, 2, 28)]),
              n=st.integers(1, 3), commit=st.booleans())  # fmt: skip
        def next_sequence(self, region: str, day: date, n: int, commit: bool) -> None:
            self.both(lambda u: [u.numbers.next_sequence(region, day) for _ in range(n)], commit)

        @rule(qid=st.sampled_from(["q1", "q2", "q3"]), rid=st.sampled_from(ids),
              status=st.sampled_from(RequestStatus))  # fmt: skip
        def add_request(self, qid: str, rid: str, status: RequestStatus) -> None:
            self.both(lambda u: u.requests.add(_request(qid, rid, status)))

        @rule(rid=st.sampled_from(ids), day=st.sampled_from([date(2024, 9, 2), date(2024, 9, 3)]),
              status=st.sampled_from(AttendanceStatus), commit=st.booleans())  # fmt: skip
        def attendance(self, rid: str, day: date, status: AttendanceStatus, commit: bool) -> None:
            self.both(lambda u: u.attendance.add_many([AttendanceEntry(rid, day, status)]), commit)

        @rule(seq=st.integers(1, 4))
        def audit(self, seq: int) -> None:
            self.both(lambda u: u.audit.append(_audit(seq)))

        @invariant()
        def same_state(self) -> None:
            with self.ref.unit_of_work() as a, self.sut.unit_of_work() as b:
                _assert_same(dump(a, tuple(ids)), dump(b, tuple(ids)), "the visible state")
                _assert_same(
                    a.children.get_many(children), b.children.get_many(children), "children"
                )
                doc = RESIDENT_IDS[2]
                _assert_same(
                    a.children.find_by_document(doc),
                    b.children.find_by_document(doc),
                    "children.find_by_document",
                )

        def teardown(self) -> None:
            closer(self.sut)

    run_state_machine_as_test(
        Differential,
        settings=settings(
            max_examples=max_examples,
            stateful_step_count=step_count,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
            phases=list(Phase) if shrink else [p for p in Phase if p is not Phase.shrink],
        ),
    )


class DifferentialContract(_Base):
    """The adapter behaves like MemoryStore on random operation sequences."""

    def test_differential_against_memory(self) -> None:
        """Random sequences of writes, commits and rollbacks: same outcomes, same state."""
        run_differential(
            self.make_store, close_store=self.close_store, max_examples=self.differential_examples
        )


class CaseContract(_Base):
    """Dropout cases (``uow.cases``, added for monitoring): round trip, conflicts, filters.

    ``supports_cases``: ``None`` (default) runs these tests when the store's unit
    of work has a ``cases`` repository and skips them otherwise; ``True``
    requires it; ``False`` skips.
    """

    supports_cases: ClassVar[bool | None] = None

    def _cases(self, store: Store) -> None:
        self._optional(
            self.supports_cases, store,
            lambda u: getattr(u, "cases", None) is not None,
            "this store keeps no dropout cases",
            "supports_cases is True but the unit of work has no .cases",
        )  # fmt: skip

    @staticmethod
    def _case(i: int, county: str = "110105", **kw: Any) -> DropoutCase:
        return DropoutCase(
            f"case{i:03d}",
            f"r{i}",
            county,
            "1111000001",
            CaseTrigger.ABSENCE_STREAK,
            T0,
            date(2024, 9, 13),
            **kw,
        )

    def test_cases_round_trip_and_conflicts(self, store: Store) -> None:
        """Cases with contacts read back equal; duplicate ids and stale versions conflict."""
        self._cases(store)
        contact = CaseContact(
            T0 + timedelta(days=3), "county:110105", "家访𠮷😀", ContactKind.CONTACT
        )
        full = self._case(1, contacts=(contact,), detail="连续缺勤", withdraw_request_id="q1")
        _commit(store, lambda u: u.cases.add(full))  # type: ignore[attr-defined]
        assert _read(store, lambda u: u.cases.get("case001")) == full  # type: ignore[attr-defined]
        with pytest.raises(NotFoundError):
            _read(store, lambda u: u.cases.get("nope"))  # type: ignore[attr-defined]
        with pytest.raises(ConflictError):
            _commit(store, lambda u: u.cases.add(full))  # type: ignore[attr-defined]
        closed = attrs.evolve(
            full, status=CaseStatus.RETURNED, closed_at=T0 + timedelta(days=5), closed_by="kg"
        )
        stored = _commit(store, lambda u: u.cases.update(closed))  # type: ignore[attr-defined]
        assert stored == attrs.evolve(closed, version=1)
        assert _read(store, lambda u: u.cases.get("case001")) == stored  # type: ignore[attr-defined]
        with pytest.raises(ConflictError):
            _commit(store, lambda u: u.cases.update(closed))  # type: ignore[attr-defined]

    def test_cases_bulk_filters_and_rollback(self, store: Store) -> None:
        """add_many/update_many are all-or-nothing; iter filters by county and status, by id."""
        self._cases(store)
        cases = [self._case(3), self._case(1), self._case(2, county="440305")]
        _commit(store, lambda u: u.cases.add_many(cases))  # type: ignore[attr-defined]
        with store.unit_of_work() as uow:
            repo = uow.cases  # type: ignore[attr-defined]
            assert [c.id for c in repo.iter()] == ["case001", "case002", "case003"]
            assert [c.id for c in repo.iter(county_prefix="11")] == ["case001", "case003"]
            assert list(repo.iter(statuses=[CaseStatus.WITHDRAWN])) == []
            assert [c.id for c in repo.for_record("r2")] == ["case002"]
        done = attrs.evolve(cases[1], status=CaseStatus.WITHDRAWN)
        stale = attrs.evolve(cases[0], version=7)
        with pytest.raises(ConflictError):
            _commit(store, lambda u: u.cases.update_many([done, stale]))  # type: ignore[attr-defined]
        assert _read(store, lambda u: u.cases.get("case001")).status is CaseStatus.SUSPECTED  # type: ignore[attr-defined]
        _commit(store, lambda u: u.cases.update_many([done]))  # type: ignore[attr-defined]
        with store.unit_of_work() as uow:
            repo = uow.cases  # type: ignore[attr-defined]
            assert [c.id for c in repo.iter(statuses=[CaseStatus.WITHDRAWN])] == ["case001"]
            repo.add(self._case(9))
            uow.rollback()
        with pytest.raises(NotFoundError):
            _read(store, lambda u: u.cases.get("case009"))  # type: ignore[attr-defined]


class StoreContract(
    KindergartenContract,
    ChildContract,
    RecordContract,
    ChangeLogContract,
    RequestContract,
    ProblemContract,
    BulkProblemContract,
    NumberContract,
    BulkNumberContract,
    BulkLookupContract,
    RecordSearchContract,
    PreparedWritesContract,
    RosterContract,
    AttendanceContract,
    BulkAttendanceContract,
    ReportSourceContract,
    FieldUpdatesContract,
    SetBasedRolloverContract,
    AuditContract,
    ClaimsContract,
    UnitOfWorkContract,
    PersistenceContract,
    PropertyContract,
    DifferentialContract,
    CaseContract,
):
    """Every contract above: subclass this, implement ``make_store``, set the flags.

    >>> tests = [n for n in dir(StoreContract) if n.startswith("test_")]
    >>> "test_bulk_call_is_atomic_inside_an_open_unit" in tests, len(tests) > 60
    (True, True)
    """
