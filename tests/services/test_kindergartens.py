"""Kindergarten registry import: complete row checks, licence merge, scope and roles."""

from __future__ import annotations

import io
from datetime import date

import pytest

from studentstatus.adapters.memory import MemoryStore
from studentstatus.domain.enums import KindergartenType, LicenceState
from studentstatus.domain.kindergarten import licensed_on
from studentstatus.errors import PermissionDenied
from studentstatus.services.csvio import KINDERGARTEN_COLUMNS
from studentstatus.services.kindergartens import (
    ImportedKindergarten,
    import_kindergartens,
    list_kindergartens,
)
from studentstatus.tabular import FileRejected

from ._registration_world import OPS, csv_bytes, runtime

GOOD = {
    "school_code": "1111000001",
    "uscc": "12100000400000624D",
    "name": "阳光幼儿园",
    "region_code": "110105",
    "type": "公办",
    "inclusive": "是",
    "licence_no": "教1101051号",
    "licence_issuer": "朝阳区教委",
    "licence_issued": "2020-01-01",
    "licence_valid_until": "2030-12-31",
    "licence_state": "有效",
}


def _csv(*rows: dict[str, str]) -> io.BytesIO:
    return io.BytesIO(csv_bytes(rows, header=KINDERGARTEN_COLUMNS))


def test_good_rows_are_stored_and_bad_rows_reported_completely() -> None:
    rt = runtime(MemoryStore())
    bad = dict(
        GOOD,
        school_code="2111000001",
        uscc="bad",
        type="私立",
        inclusive="也许",
        licence_issued="2020-02-30",
        licence_state="?",
    )
    report = import_kindergartens(rt, OPS["c105"], _csv(GOOD, bad))
    assert report.accepted == 1
    got = {(r.row, r.field, r.code) for r in report.rejected}
    assert got == {
        (2, "school_code", "school_code_invalid"),
        (2, "uscc", "uscc_invalid"),
        (2, "type", "type_invalid"),
        (2, "inclusive", "inclusive_invalid"),
        (2, "licence_issued", "date_invalid"),
        (2, "licence_state", "licence_state_invalid"),
    }
    (kg,) = list_kindergartens(rt, OPS["c105"])
    assert kg.type is KindergartenType.PUBLIC
    assert kg.inclusive is True
    assert licensed_on(kg, date(2025, 9, 1))
    with rt.store.unit_of_work() as uow:
        assert [e.action for e in uow.audit.iter()] == ["kindergarten_added"]


def test_several_licences_merge_and_reimport_updates() -> None:
    rt = runtime(MemoryStore())
    old = dict(
        GOOD, licence_no="OLD", licence_valid_until="2019-12-31", licence_issued="2015-01-01"
    )
    import_kindergartens(rt, OPS["c105"], _csv(old, GOOD))
    (kg,) = list_kindergartens(rt, OPS["c105"])
    assert sorted(lic.number for lic in kg.licences) == ["OLD", "教1101051号"]
    revoked = dict(GOOD, licence_state="吊销", name="阳光幼儿园（新址）")
    report = import_kindergartens(rt, OPS["p11"], _csv(revoked))
    assert report.records == [ImportedKindergarten(1, "1111000001", "updated")]
    (kg,) = list_kindergartens(rt, OPS["ministry"])
    assert kg.name == "阳光幼儿园（新址）"
    states = {lic.number: lic.state for lic in kg.licences}
    assert states == {"OLD": LicenceState.VALID, "教1101051号": LicenceState.REVOKED}
    assert not licensed_on(kg, date(2025, 9, 1))


def test_scope_and_roles() -> None:
    rt = runtime(MemoryStore())
    elsewhere = dict(GOOD, school_code="1144000001", region_code="440305")
    report = import_kindergartens(rt, OPS["c105"], _csv(elsewhere))
    assert [(r.field, r.code) for r in report.rejected] == [("region_code", "out_of_scope")]
    with pytest.raises(PermissionDenied):
        import_kindergartens(rt, OPS["kgA"], _csv(GOOD))


def test_a_missing_column_refuses_the_file_and_writes_nothing() -> None:
    rt = runtime(MemoryStore())
    header = [c for c in KINDERGARTEN_COLUMNS if c != "uscc"]
    data = csv_bytes([GOOD, GOOD], header=header)
    with pytest.raises(FileRejected) as err:
        import_kindergartens(rt, OPS["c105"], io.BytesIO(data))
    assert (err.value.code, err.value.field) == ("file_header", "uscc")
    assert "统一社会信用代码" in err.value.message_en  # the accepted names are listed
    with rt.store.unit_of_work() as uow:
        assert list(uow.kindergartens.iter(region_prefix="")) == []
