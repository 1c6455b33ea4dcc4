"""Handover export of graduates (学籍档案) against the shipped, versioned JSON schema."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import jsonschema
import pytest
from click.testing import CliRunner

from studentstatus.cli import main
from studentstatus.domain.enums import Grade
from studentstatus.errors import PermissionDenied
from studentstatus.services.audit import verify
from studentstatus.services.handover import export_graduates, iter_graduates, schema
from studentstatus.services.rollover import apply_rollover

from ._changes_world import KG_A, KG_C, KG_D, OPS, make_store, runtime, seed

ADAPTERS = ["memory", "files", "sqlite"]


def _graduate_world(store):  # type: ignore[no-untyped-def]
    rt = runtime(store)
    records = seed(
        rt, [(KG_A, Grade.SENIOR), (KG_A, Grade.JUNIOR), (KG_C, Grade.SENIOR), (KG_D, Grade.SENIOR)]
    )
    rt.clock.at = datetime(2026, 9, 1, 8, tzinfo=UTC)  # type: ignore[attr-defined]
    apply_rollover(rt, OPS["ministry"], 2026)
    return rt, records


def test_schema_is_a_valid_draft_2020_12_schema() -> None:
    """The shipped schema itself is valid JSON Schema."""
    jsonschema.Draft202012Validator.check_schema(schema())


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_export_validates_masks_and_filters_by_scope(adapter: str, tmp_path: Path) -> None:
    """Graduates in scope only, masked numbers, every document valid against the schema."""
    with make_store(adapter, tmp_path) as store:
        rt, records = _graduate_world(store)
        doc = export_graduates(rt, OPS["p11"], 2026)
        jsonschema.validate(doc, schema())
        ids = sorted(r["record_id"] for r in doc["records"])
        assert ids == sorted([records[0].id, records[2].id])  # province 11 only, seniors only
        raw = json.dumps(doc, ensure_ascii=False)
        for r in doc["records"]:
            assert r["child"]["document"]["masked"] is True
            assert "*" in r["child"]["document"]["number"]
            assert [h["kind"] for h in r["history"]][-1] == "GRADUATE"
        child_ids = {records[0].child_id, records[2].child_id}
        with store.unit_of_work() as uow:
            numbers = [uow.children.get(c).document.number for c in child_ids]  # type: ignore[union-attr]
        for number in numbers:
            assert number not in raw
        assert verify(store).ok


def test_reveal_shows_full_numbers_and_is_audited(tmp_path: Path) -> None:
    """--reveal puts the real numbers in; the export is in the audit log."""
    with make_store("memory", tmp_path) as store:
        rt, records = _graduate_world(store)
        doc = export_graduates(rt, OPS["c108"], 2026, reveal=True)
        jsonschema.validate(doc, schema())
        assert [r["record_id"] for r in doc["records"]] == [records[2].id]
        with store.unit_of_work() as uow:
            number = uow.children.get(records[2].child_id).document.number  # type: ignore[union-attr]
            last = uow.audit.last(str(OPS["c108"]))  # the exporting county's chain
        assert doc["records"][0]["child"]["document"]["number"] == number
        assert last is not None
        assert last.action == "export_handover"
        assert last.after == {"records": 1, "revealed": True}


def test_streaming_reveal_is_audited_too(tmp_path: Path) -> None:
    """iter_graduates(reveal=True) writes the reveal before the first entry; masked does not."""
    with make_store("memory", tmp_path) as store:
        rt, records = _graduate_world(store)
        masked = list(iter_graduates(rt, OPS["c108"], 2026))
        with store.unit_of_work() as uow:
            assert uow.audit.last(str(OPS["c108"])) is None
        assert masked[0]["child"]["document"]["masked"] is True
        stream = iter_graduates(rt, OPS["c108"], 2026, reveal=True)
        first = next(stream)
        with store.unit_of_work() as uow:
            number = uow.children.get(records[2].child_id).document.number  # type: ignore[union-attr]
            last = uow.audit.last(str(OPS["c108"]))
        assert first["child"]["document"]["number"] == number
        assert last is not None
        assert last.action == "reveal_handover"
        assert last.subject == "school_year:2026"


def test_other_school_years_and_counties() -> None:
    """No graduates in another year; a county exports its own graduates only."""
    with make_store("memory", Path()) as store:
        rt, records = _graduate_world(store)
        assert export_graduates(rt, OPS["ministry"], 2025)["records"] == []
        mine = export_graduates(rt, OPS["c105"], 2026)["records"]
        assert [r["record_id"] for r in mine] == [records[0].id]


def test_cli_export(tmp_path: Path) -> None:
    """``studentstatus export --graduated`` writes the document (masked by default)."""
    url = f"sqlite:///{tmp_path / 'h.db'}"
    from studentstatus.adapters.sql import SqlStore

    store = SqlStore(url, create=True)
    try:
        _graduate_world(store)
    finally:
        store.close()
    out = tmp_path / "grads.json"
    result = CliRunner().invoke(
        main,
        ["export", "--graduated", "--school-year", "2026", "--as", "province:11",
         "--store", url, "--out", str(out)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    doc = json.loads(out.read_text(encoding="utf-8"))
    jsonschema.validate(doc, schema())
    assert len(doc["records"]) == 2
    refused = CliRunner().invoke(
        main,
        ["export", "--graduated", "--school-year", "2026", "--as", "kindergarten:1111000001",
         "--store", url],
    )  # fmt: skip
    assert refused.exit_code != 0


def test_roles_that_may_not_export_are_refused() -> None:
    """Operators whose role may not export get PermissionDenied; the others do not."""
    from studentstatus.domain.jurisdiction import ROLE_RULES

    roles = ROLE_RULES["export"]
    with make_store("memory", Path()) as store:
        rt, _ = _graduate_world(store)
        refused = 0
        for op in OPS.values():
            if op.role in roles:
                export_graduates(rt, op, 2026)
            else:
                refused += 1
                with pytest.raises(PermissionDenied):
                    export_graduates(rt, op, 2026)
        assert refused > 0
