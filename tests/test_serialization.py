"""The cattrs converters: every entity round-trips through dicts and JSON text."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta, timezone

import cattrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from studentstatus.adapters.memory import MemoryStore
from studentstatus.domain.enums import ChangeKind, Grade, ProblemKind, Sex, State
from studentstatus.domain.model import (
    Child,
    DocumentKind,
    Guardian,
    IdentityDocument,
    ProblemRecord,
    StatusChange,
    StatusRecord,
)
from studentstatus.serialization import from_dict, from_json, make_converter, to_dict, to_json
from studentstatus.testing.contract import _fill, dump

# GB 11643-1999's example number and two published sample numbers.
PUBLIC_IDS = ("11010519491231002X", "440524188001010014", "11010520200315002X")


def test_every_entity_kind_round_trips_through_json() -> None:
    """Everything the kit stores (one of each kind) survives to_json/from_json."""
    store = MemoryStore()
    with store.unit_of_work() as uow:
        _fill(uow)
        data = dump(uow)
    seen = 0
    for value in data.values():
        items = value if isinstance(value, list) else [value]
        if isinstance(value, dict):
            items = [x for v in value.values() for x in (v if isinstance(v, list) else [v])]
        for item in items:
            if item is None or isinstance(item, int | tuple):  # counts, audit heads
                continue
            assert from_json(type(item), to_json(item)) == item
            seen += 1
    assert seen >= 10


def test_wire_format_is_stable() -> None:
    """Dates are ISO strings, enums their values, tuples lists: the on-disk format."""
    rec = StatusRecord(
        "r1", "c1", "1111000001", "110105", State.ACTIVE, Grade.SENIOR, date(1900, 1, 1),
        former_numbers=("L1",), repeated_grades=(Grade.JUNIOR,),
    )  # fmt: skip
    d = to_dict(rec)
    assert d["state"] == "ACTIVE"
    assert type(d["state"]) is str
    assert d["grade"] == "SENIOR"
    assert d["entry_date"] == "1900-01-01"
    assert d["former_numbers"] == ["L1"]
    assert d["repeated_grades"] == ["JUNIOR"]
    assert json.loads(json.dumps(d)) == d


def test_datetimes_keep_their_offset() -> None:
    """Aware datetimes are written with their UTC offset and read back equal."""
    at = datetime(2099, 12, 31, 23, 59, 59, 999999, tzinfo=timezone(timedelta(hours=8)))
    ch = StatusChange(
        "r", 1, ChangeKind.REGISTER, None, State.PENDING, date(2099, 12, 31), at, "op"
    )
    assert to_dict(ch)["recorded_at"] == "2099-12-31T23:59:59.999999+08:00"
    assert from_dict(StatusChange, to_dict(ch)).recorded_at.utcoffset() == timedelta(hours=8)


@pytest.mark.parametrize("number", PUBLIC_IDS)
def test_documents_of_real_numbers(number: str) -> None:
    """Real resident numbers round-trip; the repr stays masked."""
    doc = IdentityDocument(DocumentKind.RESIDENT, number)
    assert from_dict(IdentityDocument, to_dict(doc)) == doc
    assert to_dict(doc) == {"type": "resident", "number": number}
    assert number not in repr(doc)


def test_field_values_pass_through() -> None:
    """before/after dicts keep JSON values (nested lists, None, bools) unchanged."""
    after = {"grade": "MIDDLE", "n": 3, "ok": False, "gone": None, "list": [1, "二"]}
    ch = StatusChange(
        "r", 2, ChangeKind.PROMOTE, State.ACTIVE, State.ACTIVE, date(2024, 9, 1),
        datetime(2024, 9, 1, tzinfo=UTC), "op", before={"grade": "JUNIOR"}, after=after,
    )  # fmt: skip
    assert from_json(StatusChange, to_json(ch)).after == after


def test_bad_data_is_rejected() -> None:
    """A wrong enum value or date does not structure silently."""
    d = to_dict(StatusRecord("r", "c", "k", "110105", State.ACTIVE, None, date(2024, 1, 1)))
    with pytest.raises(cattrs.BaseValidationError):
        from_dict(StatusRecord, {**d, "state": "ALIVE"})
    with pytest.raises(cattrs.BaseValidationError):
        from_dict(StatusRecord, {**d, "entry_date": "2024-02-30"})


def test_converter_is_shared() -> None:
    """make_converter returns the one configured converter."""
    assert make_converter() is make_converter()


_text = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=20)
_days = st.dates(min_value=date(1900, 1, 1), max_value=date(2099, 12, 31))


@given(
    name=_text,
    sex=st.sampled_from(Sex),
    birth=_days,
    kind=st.sampled_from(DocumentKind),
    number=st.from_regex(r"[0-9A-Z]{0,18}", fullmatch=True),
    guardians_n=st.integers(0, 3),
)
def test_child_round_trip_property(
    name: str, sex: Sex, birth: date, kind: DocumentKind, number: str, guardians_n: int
) -> None:
    """Any child (any Unicode name, any document type, any date 1900–2099) round-trips."""
    child = Child(
        "c", name, sex, birth, IdentityDocument(kind, number),
        guardians=tuple(Guardian(name, "mother", "+8613800138000") for _ in range(guardians_n)),
    )  # fmt: skip
    assert from_json(Child, to_json(child)) == child


@given(
    kind=st.sampled_from(ProblemKind),
    related=st.lists(_text, max_size=3),
    resolved=st.none() | st.datetimes(timezones=st.just(UTC)),
)
def test_problem_round_trip_property(
    kind: ProblemKind, related: list[str], resolved: datetime | None
) -> None:
    """Problem records with optional datetimes and tuples round-trip."""
    p = ProblemRecord(
        "p", "r", kind, "110105", "1111000001", datetime(2024, 1, 1, tzinfo=UTC),
        date(2024, 2, 1), related_record_ids=tuple(related), resolved_at=resolved,
    )  # fmt: skip
    assert from_dict(ProblemRecord, to_dict(p)) == p
