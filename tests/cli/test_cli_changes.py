"""CLI: change (with --dry-run), requests, approve/reject/withdraw-request, lost-children,
audit verify, rollover and roll on a temporary SQLite file."""

from __future__ import annotations

import json

import pytest

from cli import _changes_cli  # type: ignore[import-not-found]
from services._changes_world import KG_B, KG_D  # type: ignore[import-not-found]
from studentstatus.adapters.sql import SqlStore

db = _changes_cli.db  # the fixture
run = _changes_cli.run


def test_dry_run_exit_codes(db: str) -> None:
    code, out = run("change", "SKIP", "r0001", "--as", "kindergarten:1111000001", "--dry-run")
    assert code == 1
    assert "reason_required" in out
    assert "skip_beyond_senior" in out
    code, out = run(
        "change", "SKIP", "r0001", "--as", "kindergarten:1111000001", "--dry-run", "--json"
    )
    doc = json.loads(out)
    assert code == 1
    assert doc["allowed"] is False
    assert {"code", "field", "message_zh", "message_en"} <= set(doc["violations"][0])
    code, out = run(
        "change", "GO_ABROAD", "L110105202110030000", "--as", "kindergarten:1111000001",
        "--dry-run", "--json",
    )  # fmt: skip
    assert code == 0, out
    assert json.loads(out) == {"allowed": True, "violations": [], "approvals": ["county"]}


def test_transfer_across_provinces_by_cli(db: str) -> None:
    code, out = run(
        "change", "TRANSFER", "r0000", "--as", "kindergarten:4444000001", "--to", KG_D.school_code,
        "--reason", "随迁", "--json",
    )  # fmt: skip
    assert code == 0, out
    req = json.loads(out)["request"]
    for who in ("kindergarten:1111000001", "county:110105", "county:440305", "province:11"):
        code, out = run("requests", "--as", who, "--json")
        views = json.loads(out)
        assert [v["id"] for v in views] == [req]
        assert {"id", "change", "record", "step", "due"} <= set(views[0])
        assert views[0]["step"] == who
        code, out = run("approve-request", req, "--as", who, "--json")
        assert code == 0
        assert json.loads(out)["applied"] is False
    code, out = run("approve-request", req, "--as", "province:44", "--json")
    assert code == 0
    assert json.loads(out) == {
        "request": req,
        "status": "APPROVED",
        "applied": True,
        "change": "TRANSFER",
    }
    code, out = run("roll", "--kindergarten", KG_D.school_code, "--as-of", "2025-09-02",
                    "--as", "county:440305", "--json")  # fmt: skip
    assert code == 0
    assert [c["record"] for c in json.loads(out)["children"]] == ["r0000"]
    code, out = run("audit", "verify", "--json")
    findings = json.loads(out)["findings"]
    # seeding writes records and change events without their audit entries: replay says so
    assert {(f["code"], f["detail"].split(",")[0]) for f in findings} == {
        ("event_unaudited", "REGISTER"),
        ("event_unaudited", "APPROVE"),
    }
    assert code == 1
    code, out = run("audit", "verify", "--no-replay", "--json")
    assert code == 0
    assert json.loads(out)["ok"] is True


def test_reject_withdraw_refusal_and_lost_children(
    db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    code, out = run("change", "GO_ABROAD", "r0000", "--as", "kindergarten:1111000001", "--json")
    req = json.loads(out)["request"]
    code, out = run("reject-request", req, "--as", "county:110108", "--reason", "x")
    assert code == 1
    assert "not_found" in out  # another county: as if the request did not exist
    code, out = run("reject-request", req, "--as", "county:110105")
    assert code == 2  # --reason is required
    code, out = run(
        "reject-request", req, "--as", "county:110105", "--reason", "材料不全", "--json"
    )
    assert code == 0
    assert json.loads(out)["status"] == "REJECTED"
    code, out = run("change", "GO_ABROAD", "r0000", "--as", "kindergarten:1111000002", "--json")
    assert code == 1
    assert json.loads(out)["error"]["code"] == "not_found"  # another kindergarten: as if absent
    code, out = run(
        "change", "WITHDRAW", "r0002", "--as", "kindergarten:1111000001", "--reason", "搬家"
    )
    req = out.split()[1]
    code, out = run("withdraw-request", req, "--as", "county:110105")
    assert code == 1
    code, out = run("withdraw-request", req, "--as", "kindergarten:1111000001", "--json")
    assert code == 0
    assert json.loads(out)["status"] == "WITHDRAWN"
    # A transfer released by the source and then left alone lands in the lost-child queue.
    code, out = run("change", "TRANSFER", "r0000", "--as", "kindergarten:1111000002",
                    "--to", KG_B.school_code, "--json")  # fmt: skip
    req = json.loads(out)["request"]
    run("approve-request", req, "--as", "kindergarten:1111000001")
    code, out = run("lost-children", "--as", "county:110105", "--json")
    assert json.loads(out) == []
    monkeypatch.setenv("STUDENTSTATUS_NOW", "2025-12-01T09:00:00+00:00")
    code, out = run("lost-children", "--as", "county:110105", "--json")
    assert [v["id"] for v in json.loads(out)] == [req]
    code, out = run("requests", "--as", "county:110105", "--overdue", "--json")
    assert [v["id"] for v in json.loads(out)] == [req]
    code, out = run("lost-children", "--as", "kindergarten:1111000001")
    assert code == 1
    assert "role_not_allowed" in out


def test_rollover_cli_and_audit_tamper(db: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STUDENTSTATUS_NOW", "2026-09-01T09:00:00+00:00")
    code, out = run(
        "rollover", "--school-year", "2026", "--as", "county:110105", "--dry-run", "--json"
    )
    plan = json.loads(out)
    assert code == 0
    assert plan["applied"] is False
    assert plan["totals"]["promote"] == 3
    assert plan["totals"]["graduate"] == 1
    code, out = run("rollover", "--school-year", "2026", "--as", "county:110105")
    assert code == 0
    assert "applied: records 4, promote 3, graduate 1" in out
    code, out = run("rollover", "--school-year", "2026", "--as", "county:110105", "--json")
    assert json.loads(out)["totals"]["changed"] == 0
    code, out = run("rollover", "--school-year", "2026", "--as", "kindergarten:1111000001")
    assert code == 1
    assert "role_not_allowed" in out
    code, out = run("audit", "verify", "--json")
    # the rollover's events add up to its audit entry; seeding audited nothing
    assert {f["code"] for f in json.loads(out)["findings"]} == {"event_unaudited"}
    code, out = run("audit", "verify", "--no-replay")
    assert code == 0
    assert "audit log ok: " in out
    assert "NOT KEYED" in out
    code, out = run("audit", "verify", "--no-replay", "--json")
    report = json.loads(out)
    assert (report["ok"], report["chain"]) == (True, None)
    assert report["chains"] == 1  # the county's rollover (seeding writes no audit entry)
    anchor = report["anchor"]
    assert len(anchor) == 64
    assert f"anchor {anchor}" in run("audit", "verify", "--no-replay")[1]
    code, out = run("audit", "verify", "--no-replay", "--expect-anchor", anchor.upper(), "--json")
    assert (code, json.loads(out)["anchor_matches"]) == (0, True)
    code, out = run("audit", "verify", "--no-replay", "--expect-anchor", "0" * 64)
    assert code == 1
    assert "anchor CHANGED" in out
    import sqlalchemy as sa

    store = SqlStore(db)
    t = store.tables.audit_log
    county = t.c.chain == "county:110105"
    with store.engine.begin() as conn:
        edited = conn.execute(
            sa.update(t).where(county, t.c.seq == 1).values(operator="county:999999")
        )
        assert edited.rowcount == 1
    store.close()
    code, out = run("audit", "verify", "--json")
    assert code == 1
    assert json.loads(out)["first_bad_seq"] == 1
    assert json.loads(out)["chain"] == "county:110105"
    code, out = run("audit", "verify")
    assert "audit chain 'county:110105' BROKEN at entry 1: altered" in out
    code, out = run("audit", "verify", "--as", "county:110105")
    assert code == 1
    assert "role_not_allowed" in out
