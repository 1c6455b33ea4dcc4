"""The demo: it runs on memory, SQLite (and PostgreSQL/MariaDB), prints every stage, leaves a
consistent store, and the same seed gives the same run.

Real public vectors (docs/reference/domain.md#resident-identity-number) check the generator's
check-digit logic next to the generated numbers: ``11010520200315002X``, ``510107201911300030``.
"""

from __future__ import annotations

import json
import random
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from studentstatus import phones
from studentstatus.adapters.memory import MemoryStore
from studentstatus.cli import main
from studentstatus.demo import COUNTIES, generate_province, run_demo
from studentstatus.domain.enums import NumberKind, ProblemStatus, State
from studentstatus.ids import _mod11, resident, school_code, uscc, validate_document
from studentstatus.ports import Store
from studentstatus.services.audit import verify
from studentstatus.services.handover import schema

STAGES = (
    "generate the province",
    "kindergarten registry import",
    "child intake",
    "county approval",
    "public-security verification",
    "problem records",
    "national numbers",
    "a school year of changes",
    "attendance",
    "report (province 44",
    "problems past their due date",
    "year-end",
    "handover of the graduates",
    "audit verify",
)

_OPEN = (ProblemStatus.OPEN, ProblemStatus.EVIDENCE_SUBMITTED)


def check_invariants(store: Store) -> dict[str, int]:
    """The store after a demo: numbers where due, never twice, audit chain intact."""
    with store.unit_of_work() as uow:
        records = list(uow.records.iter())
        open_problem = {p.record_id for p in uow.problems.iter(statuses=_OPEN)}
        children = uow.children.get_many([r.child_id for r in records])
        issued = {r.id: uow.numbers.for_record(r.id) for r in records}
    numbers: list[str] = []
    g = j = 0
    for rec in records:
        child = children[rec.child_id]
        if rec.national_number:
            numbers.append(rec.national_number)
        numbers.extend(n for n in (rec.temp_number, *rec.former_numbers) if n)
        if rec.state is not State.ACTIVE or rec.id in open_problem:
            continue
        if rec.verification is not None and rec.verification.is_verified:
            # every ACTIVE, problem-free record verified by the registry (MATCH) or confirmed
            # by the county on evidence (CONFIRMED) has its G number
            assert child.document is not None
            assert rec.national_number == "G" + child.document.number, rec.id
            g += 1
        elif rec.county_confirmed and rec.national_number is not None:
            assert rec.national_number.startswith("J")
            assert rec.national_number[-1] == _mod11.check_char(rec.national_number[1:-1])
            j += 1
        if rec.national_number is not None:
            kinds = {n.kind for n in issued[rec.id]}
            assert NumberKind(rec.national_number[0]) in kinds
            assert len(rec.national_number) == 19
    counts = Counter(numbers)
    assert not [n for n, c in counts.items() if c > 1], "a number is bound to two records"
    chain = verify(store)
    assert chain.ok, chain
    assert chain.checked > len(records)
    return {"G": g, "J": j, "records": len(records)}


def check_handover(path: Path) -> int:
    doc = json.loads(path.read_text(encoding="utf-8"))
    jsonschema = pytest.importorskip("jsonschema")
    jsonschema.validate(doc, schema())
    for rec in doc["records"]:
        number = rec["national_number"]
        assert number is None or "*" in number or not number.startswith("G")
        document = rec["child"]["document"]
        assert document is None or document["masked"]
    assert doc["records"], "no graduates exported"
    return len(doc["records"])


# --------------------------------------------------------------------------- the generator


def test_generated_numbers_are_what_they_claim() -> None:
    # the check-character logic the generator uses, on real public vectors
    assert _mod11.check_char("11010520200315002") == "X"
    assert _mod11.check_char("51010720191130003") == "0"
    p = generate_province(random.Random(3), 400)
    tags = Counter(k.tag for k in p.kids)
    for tag in ("invalid_checksum", "duplicate_id", "suspected", "unlicensed", "permit"):
        assert tags[tag] >= 2, tag
    for kid in p.kids:
        if kid.tag == "invalid_checksum":
            assert not resident.is_valid(kid.id_number)
            assert resident.is_valid(kid.true_number)
        elif kid.id_type in ("resident", "hk_mo_permit", "tw_permit"):
            assert resident.is_valid(kid.id_number), kid.tag
        elif kid.id_type != "none":
            assert validate_document(kid.id_type, kid.id_number)
        if kid.tag != "bad_phone":
            assert phones.normalize(kid.guardian_phone).startswith("+861")
    for kg in p.kindergartens:
        assert school_code.is_valid(kg["school_code"])
        assert uscc.is_valid(kg["uscc"])
        assert kg["region_code"] in (*COUNTIES, "430104")
    ids = [k.id_number for k in p.kids if k.id_number and k.tag != "duplicate_id"]
    assert len(ids) == len(set(ids))


def test_generator_is_seeded() -> None:
    def rows(seed: int) -> list[dict[str, str]]:
        return [k.row() for k in generate_province(random.Random(seed), 100).kids]

    assert rows(5) == rows(5)
    assert rows(5) != rows(6)


# --------------------------------------------------------------------------- whole runs


def _run_memory(
    tmp: Path, seed: int, children: int = 300, *, charts: bool = False
) -> tuple[list[str], Any, Store]:
    lines: list[str] = []
    store = MemoryStore()
    result = run_demo(
        store, children=children, seed=seed, out_dir=tmp, echo=lines.append, charts=charts
    )
    return lines, result, store


def test_demo_on_memory_store_leaves_a_consistent_store(tmp_path: Path) -> None:
    lines, result, store = _run_memory(tmp_path / "a", 11, charts=True)
    text = "\n".join(lines)
    for stage in STAGES:
        assert stage in text, stage
    found = check_invariants(store)
    assert found["G"] > 200
    assert found["J"] >= 1
    assert result.numbers["G"] > 200
    assert result.numbers["J"] >= 1
    assert result.confirmed >= 1  # a NOT_FOUND (or mismatch) child: evidence → G number
    assert "→ CONFIRMED → G" in text
    assert "without a national number (stuck):" in text
    assert result.intake["kindergarten_unlicensed"] == 3
    assert {"INVALID_ID", "DUPLICATE_ID", "SUSPECTED_DUPLICATE", "NOT_FOUND"} <= set(
        result.problems
    )
    assert result.requests["applied"] >= 25
    assert result.rollover["graduate"] > 0
    assert result.rollover["promote"] > 0
    assert result.rollover["repeat"] == 2
    # The lost transfer's open request is the destination's (foreign): it does not hold the
    # child back, and nothing else in the demo does.
    assert result.rollover["blocked"] == 0
    assert result.dropout["suspected"] + result.dropout["confirmed"] >= 1
    assert result.audit_ok
    assert check_handover(tmp_path / "a" / "handover-2026.json") == result.graduates
    charts = {Path(f).name for f in result.files if "/charts/" in f}
    assert "index.html" in charts
    assert len([c for c in charts if c.endswith(".png")]) >= 4
    for name in charts:
        assert (tmp_path / "a" / "charts" / name).stat().st_size > 1000


def test_demo_without_the_plotting_extra_skips_only_the_charts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # as if the extra were not installed
    lines, result, store = _run_memory(tmp_path, 4, 60, charts=True)
    assert any("plotting extra not installed" in s for s in result.skipped)
    assert any("skipped: charts" in line for line in lines)
    assert not list(tmp_path.glob("charts/*.png"))
    assert "audit verify" in "\n".join(lines)
    check_invariants(store)


def test_same_seed_same_output_other_seed_other_output(tmp_path: Path) -> None:
    first, _r1, _s1 = _run_memory(tmp_path / "x", 23, 200)
    second, _r2, _s2 = _run_memory(tmp_path / "y", 23, 200)
    other, _r3, _s3 = _run_memory(tmp_path / "z", 24, 200)
    assert first == second
    assert first != other


def test_cli_demo_on_sqlite_file(tmp_path: Path) -> None:
    db = tmp_path / "demo.db"
    out = tmp_path / "out"
    args = [
        "demo",
        "--store",
        f"sqlite:///{db}",
        "--children",
        "300",
        "--seed",
        "11",
        "--no-charts",
    ]
    result = CliRunner().invoke(main, [*args, "--out", str(out)])
    assert result.exit_code == 0, result.output
    for stage in STAGES:
        assert stage in result.stdout, stage
    assert "files written in" in result.stdout
    assert "handover-2026.json" in result.stdout
    assert (out / "report.json").exists()
    from studentstatus.adapters.sql import SqlStore

    store = SqlStore(f"sqlite:///{db}", prefix="demo_")
    try:
        check_invariants(store)
    finally:
        store.close()
    check_handover(out / "handover-2026.json")
    # the same run on the memory store prints the same stages and counts
    lines, _result, _store = _run_memory(tmp_path / "m", 11)
    assert "\n".join(lines) in result.stdout


def test_cli_demo_default_store_is_replaced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "studentstatus-demo.db").write_bytes(b"not a database")
    runner = CliRunner()
    result = runner.invoke(main, ["demo", "--children", "60", "--seed", "2", "--no-charts"])
    assert result.exit_code == 0, result.output
    assert "studentstatus-demo.db" in result.stdout
    assert (tmp_path / "studentstatus-demo" / "report.json").exists()
    assert (tmp_path / "studentstatus-demo" / "handover-2026.json").exists()
    assert (tmp_path / "studentstatus-demo.db").read_bytes()[:15] == b"SQLite format 3"


def test_cli_demo_rejects_bad_arguments() -> None:
    result = CliRunner().invoke(main, ["demo", "--children", "5", "--store", "memory://"])
    assert result.exit_code == 2


@pytest.mark.postgres
def test_cli_demo_on_postgresql(postgres_url: str, tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main,
        [
            "demo",
            "--store",
            postgres_url,
            "--children",
            "60",
            "--no-charts",
            "--out",
            str(tmp_path),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "audit verify" in result.stdout
    assert "postgres@" in result.stdout or "postgresql" in result.stdout
    from studentstatus.adapters.sql import SqlStore

    store = SqlStore(postgres_url, prefix="demo_")
    try:
        check_invariants(store)
    finally:
        store.drop_schema()
        store.close()


@pytest.mark.mysql
def test_cli_demo_on_mariadb(mysql_url: str, tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main,
        ["demo", "--store", mysql_url, "--children", "60", "--no-charts", "--out", str(tmp_path)],
    )
    assert result.exit_code == 0, result.output
    from studentstatus.adapters.sql import SqlStore

    store = SqlStore(mysql_url, prefix="demo_")
    try:
        check_invariants(store)
    finally:
        store.drop_schema()
        store.close()
