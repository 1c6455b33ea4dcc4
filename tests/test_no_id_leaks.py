"""No full identity number leaks into logs, exception texts, reprs or violation messages.

A representative flow runs on the in-memory store and on SQLite with logging
captured at DEBUG: intake with bad and duplicate IDs, approval, population
verification with mismatches, national (G) numbers, refused changes and reads,
and conflict errors raised by the stores themselves.  Every full number used
(the real public vectors of docs/reference/domain.md and generated ones, with the G
numbers that embed them) must be absent from every log record, every
exception's ``str``/``repr``, every :class:`Violation`/:class:`Rejection`
message and every entity ``repr``.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path
from typing import Any

import attrs
import pytest
from tests.services._registration_world import (
    NOW,
    OPS,
    REAL,
    bad_checksum,
    real_row,
    row,
    runtime,
    seed_kindergartens,
)

from studentstatus.adapters.memory import MemoryStore
from studentstatus.adapters.population import MemoryPopulationRegistry
from studentstatus.domain.enums import NumberKind
from studentstatus.domain.model import IssuedNumber
from studentstatus.errors import (
    ConflictError,
    NotFoundError,
    PermissionDenied,
    RuleViolations,
    StudentStatusError,
)
from studentstatus.ports import Store
from studentstatus.services.approval import approve_records
from studentstatus.services.changes import request_change
from studentstatus.services.intake import import_children, register_child
from studentstatus.services.numbers import get_record, issue_numbers
from studentstatus.services.problems import list_problems
from studentstatus.services.verification import verify_records


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """A fresh store with the kindergartens of the registration world."""
    if request.param == "memory":
        s: Store = MemoryStore()
        seed_kindergartens(s)
        yield s
        return
    from studentstatus.adapters.sql import SqlStore

    sql = SqlStore(f"sqlite:///{tmp_path / ('leak-' + uuid.uuid4().hex[:8] + '.db')}", create=True)
    try:
        seed_kindergartens(sql)
        yield sql
    finally:
        sql.close()


def _texts_of(exc: BaseException) -> list[str]:
    out = [str(exc), repr(exc)]
    for v in getattr(exc, "violations", ()):
        out += [v.message_zh, v.message_en, v.hint, repr(v)]
    for name in ("message_zh", "message_en", "what"):
        value = getattr(exc, name, None)
        if isinstance(value, str):
            out.append(value)
    return out


def test_a_whole_flow_never_shows_a_full_id_number(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    rt = runtime(store)
    seen: list[str] = []  # every text a user or a log reader could see
    raised: list[type[BaseException]] = []

    def expect(kind: type[StudentStatusError], call: Callable[[], Any]) -> None:
        with pytest.raises(kind) as info:
            call()
        raised.append(kind)
        seen.extend(_texts_of(info.value))

    real = list(REAL)
    good = [row(i) for i in range(1, 6)]
    generated = [r["id_number"] for r in good]
    bad = bad_checksum(row(9)["id_number"])
    rows = [
        *good,
        real_row(real[0]),
        real_row(real[1]),
        dict(row(9), id_number=bad),  # wrong check digit
        dict(good[0], name="冒名顶替"),  # the same number twice in one file
        row(10, id_number=real[2][:17]),  # too short
    ]
    used = {*generated, *real, bad, real[2][:17]}

    report = import_children(rt, OPS["kgA"], rows)
    assert report.accepted >= 7
    assert {r.code for r in report.rejected} >= {"length"}
    for rej in report.rejected:
        seen += [rej.message_zh, rej.message_en, repr(rej)]
    # the same numbers again, in a second file: duplicates against the store
    again = import_children(rt, OPS["kgB"], [dict(good[1], kindergarten_code="1111000002")])
    seen.append(repr(again))
    expect(RuleViolations, lambda: register_child(rt, OPS["kgA"], row(11, id_number=real[2][:17])))

    approved = approve_records(rt, OPS["c105"], all_pending=True)
    assert approved.approved
    seen.append(repr(approved.to_dict()["refused"]))

    # the registry disagrees on names and sexes, and knows nothing of one child
    registry = MemoryPopulationRegistry(
        [
            (good[0]["id_number"], "别人", good[0]["sex"], date(2020, 10, 3), "normal"),
            (good[1]["id_number"], good[1]["name"], "F", date(2020, 10, 3), "normal"),
            *[
                (r["id_number"], r["name"], r["sex"], date.fromisoformat(r["birth_date"]), "normal")
                for r in good[2:]
            ],
            (real[0], "王小红", REAL[real[0]][0], REAL[real[0]][1], "deceased"),
        ]
    )
    verified = verify_records(rt, OPS["p11"], registry)
    assert verified.problems
    for item in list_problems(rt, OPS["c105"]):
        seen += [repr(item), repr(item.to_dict())]

    numbers = issue_numbers(rt, OPS["p11"])
    g_numbers = [n.national_number for n in numbers.issued if n.kind == "G"]
    assert g_numbers, "the flow must issue G numbers (they embed the ID)"
    used.update(g_numbers)
    g = g_numbers[0]

    # refusals on records held under a G number, by number
    expect(NotFoundError, lambda: get_record(rt, OPS["c108"], g))  # out of scope: as if absent
    expect(NotFoundError, lambda: request_change(rt, OPS["kgC"], g, "WITHDRAW", reason="x"))
    expect(PermissionDenied, lambda: request_change(rt, OPS["c108"], g, "WITHDRAW", reason="x"))
    expect(RuleViolations, lambda: request_change(rt, OPS["kgA"], g, "SUSPEND", reason=""))
    expect(NotFoundError, lambda: get_record(rt, OPS["p11"], "G" + generated[0][:-1] + "9"))
    expect(NotFoundError, lambda: get_record(rt, OPS["p11"], real[2]))
    shown = get_record(rt, OPS["p11"], g)
    seen += [repr(shown), repr(shown.to_dict())]
    revealed = get_record(rt, OPS["p11"], g, reveal=True)
    assert revealed.national_number == g
    seen.append(repr(revealed))  # revealed on purpose, yet never in a repr

    # conflicts raised by the store itself
    with store.unit_of_work() as uow:
        holder = uow.numbers.resolve(g)
        assert holder is not None
        rec = uow.records.get(holder.record_id)
        child = uow.children.get(rec.child_id)
        seen += [repr(holder), repr(rec), repr(child)]
        taken = IssuedNumber(g, NumberKind.G, "another-record", NOW)
        expect(ConflictError, lambda: uow.numbers.claim_many([taken]))
        uow.rollback()
        expect(ConflictError, lambda: uow.numbers.claim(taken))
        uow.rollback()
        other = next(r for r in uow.records.iter() if r.id != rec.id)
        thief = attrs.evolve(other, national_number=g)
        expect(ConflictError, lambda: uow.records.update(thief))
        uow.rollback()
        expect(ConflictError, lambda: uow.records.add(attrs.evolve(rec, id="copy-" + rec.id)))
        uow.rollback()

    assert ConflictError in raised
    assert PermissionDenied in raised
    assert RuleViolations in raised
    logged = [
        text
        for r in caplog.records
        for text in (r.getMessage(), repr(r.args), str(r.exc_info or ""))
    ]
    assert any("refused" in t for t in logged), "the refusals above must be logged"
    leaks = sorted(
        {(number, text) for number in used for text in (*seen, *logged) if number in text}
    )
    assert not leaks, [t[:90] for _, t in leaks]
    assert len(used) > 10
    assert len(seen) > 30


# --------------------------------------------------------------------------------------------
# The PII sweep (tests/pii_sweep.py) watches every test of this module: besides the explicit
# checks, nothing printed, logged or raised below may show a full or weakly masked number.

_DUP_ID = "510107201911300030"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def sql_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    """An empty SqlStore on SQLite, and on the PostgreSQL test server (own table prefix)."""
    from studentstatus.adapters.sql import SqlStore

    if request.param == "sqlite":
        s = SqlStore(f"sqlite:///{tmp_path / 'dup.db'}", create=True)
        yield s
        s.close()
        return
    url = request.getfixturevalue("postgres_url")
    s = SqlStore(url, prefix=f"leak{uuid.uuid4().hex[:8]}_", create=True)
    try:
        yield s
    finally:
        s.drop_schema()
        s.close()


def test_sql_errors_name_the_driver_error_never_its_text(
    sql_store: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """A unique violation on a child row that carries an ID: the ConflictError names the
    driver's error class (and SQLSTATE) but neither its text nor its statement parameters,
    and neither ``__cause__`` nor ``__context__`` leads back to them — a host calling
    ``logging.exception`` writes nothing more than the message."""
    from studentstatus.domain.enums import Sex
    from studentstatus.domain.model import Child, DocumentKind, IdentityDocument

    child = Child(
        "c-dup", "王小明", Sex.M, date(2019, 11, 30),
        IdentityDocument(DocumentKind.RESIDENT, _DUP_ID),
    )  # fmt: skip
    with sql_store.unit_of_work() as uow:
        uow.children.add(child)
        uow.commit()
    host = logging.getLogger("host.portal")

    def save_again() -> None:
        try:
            with sql_store.unit_of_work() as uow:
                uow.children.add(attrs.evolve(child, name="又一个"))
                uow.commit()
        except ConflictError:
            host.exception("could not save the child")  # what a host does
            raise

    with pytest.raises(ConflictError) as info:
        save_again()
    err = info.value
    assert err.__cause__ is None
    assert err.__context__ is None
    assert err.__suppress_context__
    assert "IntegrityError" in str(err)
    if sql_store.dialect_name == "postgresql":
        assert "23505" in str(err)  # the SQLSTATE stays
    assert _DUP_ID not in "".join(r.getMessage() + str(r.exc_text) for r in caplog.records)


def test_entity_reprs_show_no_rebuildable_number() -> None:
    """Every repr holding a number masks it by the rule (see docs/concepts/privacy.md)."""
    from pii_sweep import find_leaks  # type: ignore[import-not-found]
    from studentstatus.domain import numbers as national
    from studentstatus.domain.enums import Grade, Sex, State
    from studentstatus.domain.model import (
        Child,
        DocumentKind,
        IdentityDocument,
        RosterEntry,
        StatusRecord,
    )
    from studentstatus.domain.monitoring import PopulationPerson
    from studentstatus.domain.search import RecordQuery
    from studentstatus.ids import resident
    from studentstatus.services.csvio import CsvRow

    number = "11010520200315002X"
    doc = IdentityDocument(DocumentKind.RESIDENT, number)
    child = Child("c1", "王小红", Sex.F, date(2020, 3, 15), doc, hukou_region="110105")
    rec = StatusRecord(
        "r1", "c1", "1111000001", "110105", State.ACTIVE, Grade.SENIOR, date(2023, 9, 1),
        temp_number="L110105202003150042", national_number="G" + number,
        former_numbers=("L110105202003150042", "J11010520200315002X"),
    )  # fmt: skip
    texts = [
        repr(doc),
        repr(child),
        repr(rec),
        repr(IssuedNumber("G" + number, NumberKind.G, "r1", NOW)),
        repr(IssuedNumber("J11010520200315002X", NumberKind.J, "r1", NOW)),
        repr(IssuedNumber("L110105202003150042", NumberKind.L, "r1", NOW)),
        repr(national.parse("G" + number)),
        repr(national.parse("J11010520200315002X")),
        repr(national.parse("L110105202003150042")),
        repr(RosterEntry("e1", "110105", "无证园", "王小红", Sex.F, date(2020, 3, 15), doc)),
        repr(PopulationPerson(number, "王小红", Sex.F, date(2020, 3, 15), "110105")),
        repr(RecordQuery(document=number, number="G" + number)),
        repr(resident.parse(number)),
        repr(CsvRow(1, {"id_number": number, "name": "王小红", "birth_date": "2020-03-15"})),
    ]
    for text in texts:
        assert not find_leaks(text), text[:60]
        assert "0315002" not in text  # neither the date nor the sequence of the ID
        assert "0315004" not in text  # nor those of the L number
    assert "L**************0042" in repr(rec)
    assert "G11****************" in repr(rec)


# ---------------------------------------------------------------------------- the CLI


@pytest.fixture
def cli_db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """An SQLite store with the registration world, approved, verified and numbered."""
    from studentstatus.adapters.sql import SqlStore

    url = f"sqlite:///{tmp_path / 'cli.db'}"
    sql = SqlStore(url, create=True)
    seed_kindergartens(sql)
    rt = runtime(sql)
    real = list(REAL)
    good = [row(i) for i in range(1, 4)]
    report = import_children(rt, OPS["kgA"], [*good, real_row(real[0]), real_row(real[1])])
    assert report.accepted == 5
    approve_records(rt, OPS["c105"], all_pending=True)
    registry = MemoryPopulationRegistry(
        [
            *[
                (r["id_number"], r["name"], r["sex"], date.fromisoformat(r["birth_date"]), "normal")
                for r in good
            ],
            (real[0], "孩子1", "F", REAL[real[0]][1], "normal"),
            (real[1], "别人", "M", REAL[real[1]][1], "normal"),  # a name mismatch: a problem
        ]
    )
    verify_records(rt, OPS["p11"], registry)
    issued = issue_numbers(rt, OPS["p11"])
    g_numbers = sorted(i.national_number for i in issued.issued if i.kind == "G")
    sql.close()
    monkeypatch.setenv("STUDENTSTATUS_STORE", url)
    monkeypatch.setenv("STUDENTSTATUS_NOW", "2025-09-03T09:00:00+08:00")
    return {"url": url, "g": g_numbers, "ids": [*(r["id_number"] for r in good), *real[:2]]}


def _cli(*args: str) -> tuple[int, str]:
    from click.testing import CliRunner

    from studentstatus.cli import main

    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


def test_cli_commands_never_echo_a_full_number(cli_db: dict[str, Any]) -> None:
    """Numbers typed where an id or a code belongs, records shown and listed, numbers issued,
    problems listed: every command masks (the sweep checks each output)."""
    g, number = cli_db["g"][0], cli_db["ids"][0]
    county, kg = "county:110105", "kindergarten:1111000001"
    outputs: list[str] = []
    for args in (
        ("approve", "--record", g, "--as", county),
        ("approve", "--record", g, "--as", county, "--json"),
        ("approve", "--record", number, "--as", county),
        ("resolve-problem", g, "--action", "evidence", "--reason", "x", "--as", county),
        (
            "resolve-problem",
            number,
            "--action",
            "accept",
            "--reason",
            "x",
            "--as",
            county,
            "--json",
        ),
        ("approve-request", g, "--as", county),
        ("approve-request", number, "--as", county, "--json"),
        ("reject-request", g, "--as", county, "--reason", "x"),
        ("withdraw-request", number, "--as", kg),
        ("withdraw-request", g, "--as", kg, "--json"),
        ("case", "contact", number, "--note", "电话", "--as", county),
        ("case", "contact", g, "--note", "电话", "--as", county, "--json"),
        ("roll", "--kindergarten", number, "--as-of", "2025-09-02", "--as", county),
        ("roll", "--kindergarten", g, "--as-of", "2025-09-02", "--as", county, "--json"),
        ("change", "TRANSFER", g, "--to", number, "--reason", "随迁", "--as", kg),
        ("change", "TRANSFER", g, "--to", number, "--reason", "随迁", "--as", kg, "--json"),
        ("change", "SUSPEND", number, "--reason", "病", "--as", kg),
        ("change", "WITHDRAW", g, "--reason", "x", "--as", "kindergarten:1111000003"),
        ("show", g, "--as", county),
        ("show", g, "--as", county, "--json"),
        ("show", g, "--as", "county:110108"),
        ("show", number, "--as", county),
        ("records", "--number", g, "--as", county),
        ("records", "--document", number, "--as", county, "--json"),
        ("problems", "--as", county),
        ("problems", "--as", county, "--json"),
        ("issue-numbers", "--as", "province:11", "--json"),
        ("check-id", number, g[1:]),
        ("check-id", "--json", number, bad_checksum(number)),
    ):
        code, out = _cli(*args)
        assert code in (0, 1), (args[0], out[-300:])
        outputs.append(out)
    joined = "\n".join(outputs)
    assert "G11****************" in joined  # the masked G number is shown
    assert "no record" in joined or "not_found" in joined


@pytest.mark.reveals_ids
def test_reveal_is_explicit_and_audited(cli_db: dict[str, Any]) -> None:
    """``show --reveal`` (an operator in scope) and ``check-id --reveal`` print full numbers;
    the reveal is audited with the record id as subject, never the number."""
    from studentstatus.adapters.sql import SqlStore

    g = cli_db["g"][0]
    code, out = _cli("show", g, "--as", "county:110105", "--reveal", "--json")
    assert code == 0, out
    doc = json.loads(out)
    assert doc["national_number"] == g
    assert doc["child"]["document_number"] == g[1:]
    code, out = _cli("check-id", "--json", "--reveal", g[1:])
    assert json.loads(out)[0]["normalized"] == g[1:]
    store = SqlStore(cli_db["url"])
    with store.unit_of_work() as uow:
        reveals = [e for e in uow.audit.iter() if e.action == "reveal"]
    store.close()
    assert [(e.operator, e.subject) for e in reveals] == [("county:110105", doc["record_id"])]
    assert g[1:18] not in repr(reveals)
    code, out = _cli("show", g, "--as", "county:110108", "--reveal")
    assert code == 1  # out of scope: refused, nothing revealed
    assert g[1:18] not in out
