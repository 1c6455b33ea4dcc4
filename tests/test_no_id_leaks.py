"""No full identity number leaks into logs, exception texts, reprs or violation messages.

A representative flow runs on the in-memory store and on SQLite with logging
captured at DEBUG: intake with bad and duplicate IDs, approval, population
verification with mismatches, national (G) numbers, refused changes and reads,
and conflict errors raised by the stores themselves.  Every full number used
(the real public vectors of FACTS.md §1.2 and generated ones, with the G
numbers that embed them) must be absent from every log record, every
exception's ``str``/``repr``, every :class:`Violation`/:class:`Rejection`
message and every entity ``repr``.
"""

from __future__ import annotations

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
from studentstatus.services.numbers import issue_numbers, show
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
        seen.append(repr(item))

    numbers = issue_numbers(rt, OPS["p11"])
    g_numbers = [n["national_number"] for n in numbers.issued if n["kind"] == "G"]
    assert g_numbers, "the flow must issue G numbers (they embed the ID)"
    used.update(g_numbers)
    g = g_numbers[0]

    # refusals on records held under a G number, by number
    expect(PermissionDenied, lambda: show(rt, OPS["c108"], g))
    expect(PermissionDenied, lambda: request_change(rt, OPS["kgC"], g, "WITHDRAW", reason="x"))
    expect(RuleViolations, lambda: request_change(rt, OPS["kgA"], g, "SUSPEND", reason=""))
    expect(NotFoundError, lambda: show(rt, OPS["p11"], "G" + generated[0][:-1] + "9"))
    expect(NotFoundError, lambda: show(rt, OPS["p11"], real[2]))
    shown = show(rt, OPS["p11"], g)
    seen.append(repr(shown))

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
