"""``studentstatus federation …`` end to end, on databases ``cli`` of the test clusters.

Provinces 31 and 32 (the scenario's 11 and 44 keep their own databases: slot names are
per cluster, so the two worlds use other province codes).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from tests.federation.conftest import Nodes

from studentstatus.adapters.sql import SqlStore
from studentstatus.cli import main
from studentstatus.testing.seeding import (
    child_name,
    kindergarten_code,
    resident_number,
    seed_province,
)

KEY_HEX = "ab" * 32


@pytest.fixture(scope="module")
def urls(nodes: Nodes) -> Iterator[dict[str, str]]:
    out = {}
    for node, province in (("11", "31"), ("44", "32"), ("hub", "hub")):
        cluster = nodes.clusters[node]
        engine = sa.create_engine(cluster.url(), isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.exec_driver_sql("DROP DATABASE IF EXISTS cli WITH (FORCE)")
            conn.exec_driver_sql("CREATE DATABASE cli")
        engine.dispose()
        out[province] = cluster.url("cli")
    for p in ("31", "32"):
        store = SqlStore(out[p], create=True)
        seed_province(store, p, 40)
        store.close()
    return out


def run(*args: str, code: int = 0, **env: str) -> Any:
    result = CliRunner().invoke(
        main,
        list(args),
        env={
            "STUDENTSTATUS_NATIONAL_KEY": KEY_HEX,
            "STUDENTSTATUS_NOW": "2025-03-03T09:00:00+08:00",
        }
        | env,
    )
    assert result.exit_code == code, result.output
    return result


def apply_until(url: str, outcome: str) -> dict[str, int]:
    """Run ``federation apply`` until a message with ``outcome`` was applied; the outcomes."""
    seen: dict[str, int] = {}
    deadline = time.monotonic() + 60
    while outcome not in seen:
        doc = json.loads(run("federation", "apply", "--store", url, "--json").output)
        for k, n in doc["outcomes"].items():
            seen[k] = seen.get(k, 0) + n
        if time.monotonic() > deadline:
            pytest.fail(f"no {outcome} message reached {url}")
        time.sleep(0.2)
    return seen


def wait_turn(url: str, operator: str, transfer: str) -> None:
    """Apply the store's mail until ``transfer`` waits for ``operator`` there."""
    deadline = time.monotonic() + 60
    while True:
        run("federation", "apply", "--store", url, "--json")
        found = json.loads(
            run("federation", "transfers", "--store", url, "--as", operator, "--json").output
        )
        if any(t["id"] == transfer and t["waiting"] == operator for t in found):
            return
        if time.monotonic() > deadline:
            pytest.fail(f"{transfer} never waited for {operator} at {url}")
        time.sleep(0.2)


def test_other_stores_and_missing_key(tmp_path: Any) -> None:
    out = run(
        "federation", "publish", "--store", f"sqlite:///{tmp_path}/x.db", "--province", "31", code=1
    )
    assert "postgresql_only" in out.output or "PostgreSQL" in out.output
    out = CliRunner().invoke(
        main, ["federation", "publish", "--store", "memory://", "--province", "31"], env={}
    )
    assert out.exit_code == 2
    assert "national key" in out.output


def test_set_up_and_a_transfer(urls: dict[str, str]) -> None:
    for p in ("31", "32"):
        doc = json.loads(
            run("federation", "publish", "--store", urls[p], "--province", p, "--json").output
        )
        assert doc == {
            "province": p,
            "publication": f"studentstatus_{p}",
            "created": True,
            "records": 40,
        }
    for p in ("31", "32"):
        doc = json.loads(
            run(
                "federation",
                "subscribe",
                "--hub",
                urls["hub"],
                "--province",
                p,
                "--from",
                urls[p],
                "--json",
            ).output
        )
        assert set(doc["created"].values()) == {True}
    again = run(
        "federation", "subscribe", "--hub", urls["hub"], "--province", "31", "--from", urls["31"]
    )
    assert "already there" in again.output
    number = resident_number("310101", 7)
    out = run(
        "federation",
        "request-transfer",
        "--store",
        urls["32"],
        "--as",
        f"kindergarten:{kindergarten_code('32', 0)}",
        "--from-province",
        "31",
        "--to-kindergarten",
        kindergarten_code("32", 0),
        "--name",
        child_name(7),
        "--guardian-phone",
        "13800138000",
        "--sex",
        "M" if int(number[16]) % 2 else "F",
        "--birth-date",
        f"{number[6:10]}-{number[10:12]}-{number[12:14]}",
        "--id-number",
        number,
        "--json",
    )
    transfer = json.loads(out.output)["id"]
    assert number not in out.output
    assert apply_until(urls["31"], "pending") == {"pending": 1}
    listed = run("federation", "transfers", "--store", urls["31"], "--as", "county:310101")
    assert transfer in listed.output
    # The chain: 32's kindergarten (approved), 31's kindergarten, county 310101, county
    # 320102, provinces 31 and 32 — each decided where it belongs.
    refused = run(
        "federation",
        "decide-transfer",
        transfer,
        "--refuse",
        "--store",
        urls["31"],
        "--as",
        f"kindergarten:{kindergarten_code('31', 0)}",
        code=1,
    )
    assert "reason_required" in refused.output
    hidden = run(
        "federation",
        "decide-transfer",
        transfer,
        "--approve",
        "--store",
        urls["31"],
        "--as",
        "county:310102",
        code=1,
    )
    assert "no transfer" in hidden.output
    early = run(
        "federation",
        "decide-transfer",
        transfer,
        "--approve",
        "--store",
        urls["31"],
        "--as",
        "county:310101",
        code=1,
    )
    assert "not_your_step" in early.output
    for store, operator in (
        ("31", f"kindergarten:{kindergarten_code('31', 0)}"),
        ("31", "county:310101"),
        ("32", "county:320102"),
        ("31", "province:31"),
        ("32", "province:32"),
    ):
        wait_turn(urls[store], operator, transfer)
        done = run(
            "federation",
            "decide-transfer",
            transfer,
            "--approve",
            "--store",
            urls[store],
            "--as",
            operator,
            "--json",
        )
        assert json.loads(done.output)["status"] in ("PENDING", "REQUESTED")
    assert apply_until(urls["31"], "released") == {"released": 1}
    assert apply_until(urls["32"], "arrived") == {"arrived": 1}
    mine = json.loads(
        run(
            "federation", "transfers", "--store", urls["32"], "--as", "county:320102", "--json"
        ).output
    )
    assert [(t["id"], t["status"]) for t in mine] == [(transfer, "DONE")]
    assert number not in json.dumps(mine)
    # The ministry's national report and dedupe; a province may not run them.
    run("federation", "dedupe", "--hub", urls["hub"], "--as", "province:31", code=1)
    dup = json.loads(
        run("federation", "dedupe", "--hub", urls["hub"], "--as", "ministry", "--json").output
    )
    assert dup == {"findings": 0, "notices": 0}
    hub_store = SqlStore(urls["hub"])
    with hub_store.unit_of_work() as uow:
        assert [e.action for e in uow.audit.iter()] == ["federation.dedupe"]
    hub_store.close()
    run("audit", "verify", "--store", urls["hub"], "--as", "ministry")
    deadline = time.monotonic() + 60
    while True:
        report = json.loads(
            run("federation", "report", "--hub", urls["hub"], "--as", "ministry", "--json").output
        )
        if report["by_province"] == {"31": 39, "32": 41} or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    assert report["total"] == 80
    status = json.loads(run("federation", "status", "--hub", urls["hub"], "--json").output)
    assert {(s["province"], s["inbound"], s["outbound"]) for s in status} == {
        ("31", "streaming", "streaming"),
        ("32", "streaming", "streaming"),
    }


def test_a_lost_slot_is_named(urls: dict[str, str]) -> None:
    """A subscription whose slot was dropped on the publisher: subscribe says so."""
    hub = sa.create_engine(urls["hub"], isolation_level="AUTOCOMMIT")
    province = sa.create_engine(urls["32"], isolation_level="AUTOCOMMIT")
    try:
        with hub.connect() as conn:
            conn.exec_driver_sql("ALTER SUBSCRIPTION studentstatus_hub_from_32 DISABLE")
        deadline = time.monotonic() + 30
        while True:
            with province.connect() as conn:
                active = conn.exec_driver_sql(
                    "SELECT active FROM pg_replication_slots "
                    "WHERE slot_name = 'studentstatus_hub_from_32'"
                ).scalar_one()
            if not active or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        with province.connect() as conn:
            conn.exec_driver_sql("SELECT pg_drop_replication_slot('studentstatus_hub_from_32')")
        out = run(
            "federation",
            "subscribe",
            "--hub",
            urls["hub"],
            "--province",
            "32",
            "--from",
            urls["32"],
            code=1,
        )
        assert "slot_missing" in out.output
        assert "studentstatus_hub_from_32" in out.output
    finally:
        hub.dispose()
        province.dispose()
