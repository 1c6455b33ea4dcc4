"""Liveness of the registration workflow: every child gets through to a national number.

A hypothesis state machine drives the whole workflow on one county — register
(valid IDs, invalid IDs, no document, the same child twice), approve, verify with
any registry answer (the answers change between runs), resolve any open problem
with any action by the kindergarten or the county (refusals are legal moves),
issue numbers — and re-runs any of it.  After every ``issue-numbers``:

* every ACTIVE record without an open problem got a national number, unless it
  is in a documented terminal state (``number_taken``: its ID's G number belongs
  to an earlier, no longer live record — numbers are never reused);
* no number was issued twice, and a number once issued never moves;
* a second run issues nothing and changes nothing (records, audit trail).

At the end (teardown) every open problem is resolved the documented way, the
county approves, the province verifies and issues, and then every live record
holds a number (or is in a documented terminal state) and the audit trail verifies,
replay included.

It runs on the memory store (200 examples of up to 40 steps) and on SQLite (30), about
20 s together on a 2-core machine; ``STUDENTSTATUS_LIVENESS_EXAMPLES`` scales the counts.
``test_liveness_catches_a_dead_end`` checks that the property is not vacuous:
with accepted evidence doing nothing to the record (the dead end this workflow
used to have), the machine fails.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import date
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    rule,
    run_state_machine_as_test,
)

from studentstatus.adapters.memory import MemoryStore
from studentstatus.domain.enums import ProblemKind, ProblemStatus, State, VerificationResult
from studentstatus.domain.problems import ACTIONS, outcome
from studentstatus.errors import PermissionDenied, RuleViolations
from studentstatus.ports import Store
from studentstatus.services import problems as problem_service
from studentstatus.services.approval import approve_records
from studentstatus.services.audit import verify
from studentstatus.services.intake import import_children
from studentstatus.services.numbers import issue_numbers
from studentstatus.services.problems import resolve_problem
from studentstatus.services.stuck import classify, list_stuck_records
from studentstatus.services.verification import verify_records

from ._registration_world import KG_A, KG_B, OPS, bad_checksum, resident_id, row, runtime

BORN = date(2020, 10, 3)
PEOPLE = 5  # children with a resident ID (serials 1..PEOPLE)
NO_ID = 2  # children without one (serials 101..)
ANSWERS = [
    VerificationResult.MATCH,
    VerificationResult.NOT_FOUND,
    VerificationResult.NAME_MISMATCH,
    VerificationResult.INFO_MISMATCH,
    VerificationResult.DECEASED,
    VerificationResult.CANCELLED,
]
KINDERGARTENS = {"kgA": KG_A, "kgB": KG_B}

# What the runs reached (printed by the summary test, see the report in the changelog).
REACHED: Counter[str] = Counter()


_DIGITS = "零一二三四五六七八九"
NAMES = {i: "孩子" + _DIGITS[i % 10] + _DIGITS[i // 10 % 10] for i in range(1, 100)}
NAMES.update({i: "无证" + _DIGITS[i % 10] for i in range(PEOPLE + 1, PEOPLE + NO_ID + 1)})
SERIAL_OF = {name: i for i, name in NAMES.items()}


def _number_of(serial: int) -> str:
    sex = "M" if serial % 2 else "F"
    return resident_id("110105", BORN, serial, sex)


class Registry:
    """A population registry whose answer per number the test sets (default MATCH)."""

    def __init__(self) -> None:
        self.answers: dict[str, VerificationResult] = {}

    def verify(self, batch: Sequence[Any]) -> Mapping[str, VerificationResult]:
        return {q.number: self.answers.get(q.number, VerificationResult.MATCH) for q in batch}


class Workflow(RuleBasedStateMachine):
    """The registration workflow of one county (see the module docs)."""

    store_kind = "memory"

    def __init__(self) -> None:
        super().__init__()
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self.store = self._make_store()
        with self.store.unit_of_work() as uow:
            uow.kindergartens.add_many([KG_A, KG_B])
            uow.commit()
        self.registry = Registry()
        self.rt = runtime(self.store, seed=7)
        self.rt.registry = self.registry
        self.issued: dict[str, str] = {}  # number → record id, for the whole run
        self.fresh = 200  # serials for corrected ID numbers

    def _make_store(self) -> Store:
        if self.store_kind == "memory":
            return MemoryStore()
        from studentstatus.adapters.sql import SqlStore

        self._tmp = tempfile.TemporaryDirectory()
        path = Path(self._tmp.name) / f"live-{uuid.uuid4().hex[:8]}.db"
        return SqlStore(f"sqlite:///{path}", create=True)

    def teardown(self) -> None:
        try:
            self._drain()
        finally:
            close = getattr(self.store, "close", None)
            if close is not None:
                close()
            if self._tmp is not None:
                self._tmp.cleanup()

    # ------------------------------------------------------------------ reading the store

    def _records(self) -> dict[str, Any]:
        with self.store.unit_of_work() as uow:
            return {r.id: r for r in uow.records.iter()}

    def _open_problems(self) -> list[Any]:
        with self.store.unit_of_work() as uow:
            return sorted(
                (p for p in uow.problems.iter() if p.status is not ProblemStatus.RESOLVED),
                key=lambda p: p.id,
            )

    # ------------------------------------------------------------------ the workflow

    @rule(
        serial=st.integers(1, PEOPLE + NO_ID),
        kg=st.sampled_from(sorted(KINDERGARTENS)),
        variant=st.sampled_from(["valid", "valid", "valid", "bad_checksum"]),
    )
    def register(self, serial: int, kg: str, variant: str) -> None:
        over: dict[str, str] = {
            "kindergarten_code": KINDERGARTENS[kg].school_code,
            "name": NAMES[serial],
        }
        if serial > PEOPLE:
            over.update(id_type="none", id_number="")
        elif variant == "bad_checksum":
            over["id_number"] = bad_checksum(_number_of(serial))
        report = import_children(self.rt, OPS[kg], [row(serial, **over)])
        REACHED["register " + ("rejected" if report.rejected else "accepted")] += 1

    @rule()
    def approve(self) -> None:
        approve_records(self.rt, OPS["c105"], all_pending=True)

    @rule(serial=st.integers(1, PEOPLE + 1), answer=st.sampled_from(ANSWERS))
    def registry_answers(self, serial: int, answer: VerificationResult) -> None:
        """The registry's answer for a child (``PEOPLE + 1``: the next corrected number)."""
        number = _number_of(serial) if serial <= PEOPLE else _number_of(self.fresh + 1)
        self.registry.answers[number] = answer

    @rule(serial=st.integers(1, PEOPLE), answer=st.sampled_from(ANSWERS[1:]))
    def registry_says_no(self, serial: int, answer: VerificationResult) -> None:
        """A non-match for a child, then the province verifies."""
        self.registry.answers[_number_of(serial)] = answer
        verify_records(self.rt, OPS["p11"])

    @rule()
    def verify(self) -> None:
        verify_records(self.rt, OPS["p11"])

    @rule(
        pick=st.integers(0, 50),
        action=st.sampled_from(ACTIONS),
        by_county=st.booleans(),
        correction=st.sampled_from(["name", "fresh_id", "own_id", "no_id", "bad_id"]),
        winner=st.integers(0, 5),
    )
    def act(self, pick: int, action: str, by_county: bool, correction: str, winner: int) -> None:
        problems = self._open_problems()
        if not problems:
            return
        p = problems[pick % len(problems)]
        op = OPS["c105"] if by_county else _kg_op(p.kindergarten_code)
        kwargs: dict[str, Any] = {}
        if action == "evidence":
            kwargs["evidence"] = ["scan:户口簿"]
        elif action == "correct":
            kwargs["corrections"] = self._correction(p, correction)
        elif action == "arbitrate":
            group = sorted({p.record_id, *p.related_record_ids})
            kwargs["winner_record_id"] = group[winner % len(group)]
        try:
            resolve_problem(self.rt, op, p.id, action, reason="处理", **kwargs)
        except (RuleViolations, PermissionDenied) as exc:
            codes = getattr(exc, "violations", None)
            REACHED[f"refused {action}: " + (codes[0].code if codes else "permission")] += 1
            return
        how = f" ({correction})" if action == "correct" else ""
        REACHED[f"{p.kind.value} {action}{how} -> {outcome(p.kind, action)}"] += 1

    @rule(pick=st.integers(0, 50))
    def evidence_then_accept(self, pick: int) -> None:
        """The usual way of a verification problem: the kindergarten's evidence, the county's
        acceptance (refused for the kinds that are not accepted)."""
        problems = self._open_problems()
        if not problems:
            return
        p = problems[pick % len(problems)]
        try:
            if p.status is ProblemStatus.OPEN:
                resolve_problem(
                    self.rt, _kg_op(p.kindergarten_code), p.id, "evidence",
                    reason="户口簿", evidence=["scan:1"],
                )  # fmt: skip
            resolve_problem(self.rt, OPS["c105"], p.id, "accept", reason="核实无误")
        except RuleViolations as exc:
            REACHED[f"refused accept: {exc.violations[0].code}"] += 1
            return
        REACHED[f"{p.kind.value} evidence+accept -> {outcome(p.kind, 'accept')}"] += 1

    def _correction(self, p: Any, how: str) -> dict[str, str]:
        if how == "name":
            return {"name": "更正名"}
        if how == "no_id":
            return {"id_type": "none", "id_number": ""}
        if how == "bad_id":
            return {"id_number": "123"}
        if how == "own_id":  # the child's true number (e.g. an INVALID_ID typo fixed)
            with self.store.unit_of_work() as uow:
                child = uow.children.get(uow.records.get(p.record_id).child_id)
            serial = SERIAL_OF.get(child.name, 1)
            return {"id_number": _number_of(min(serial, PEOPLE)), "id_type": "resident"}
        with self.store.unit_of_work() as uow:  # a new number of the child's sex
            male = uow.children.get(uow.records.get(p.record_id).child_id).sex.value == "M"
        self.fresh += 1 if (self.fresh + 1) % 2 == int(male) else 2
        return {"id_number": _number_of(self.fresh), "id_type": "resident"}

    @rule()
    def issue(self) -> None:
        self._issue_and_check()

    def _issue_and_check(self) -> None:
        before = self._records()
        with self.store.unit_of_work() as uow:
            blocked = {
                p.record_id for p in uow.problems.iter() if p.status is not ProblemStatus.RESOLVED
            }
        report = issue_numbers(self.rt, OPS["p11"])
        after = self._records()
        for item in report.issued:
            number, rid = item.national_number, item.record_id
            assert number not in self.issued, f"{number[:3]}… issued twice"
            assert before[rid].national_number is None
            self.issued[number] = rid
            REACHED[f"issued {item.kind.value} ({before[rid].verification or 'county'})"] += 1
        for number, rid in self.issued.items():
            assert after[rid].national_number == number, "a number moved"
        for rid, rec in after.items():
            if rec.state is not State.ACTIVE or rid in blocked or rec.national_number:
                continue
            self._assert_terminal(rid, rec)
        # A second run issues nothing and changes nothing.
        audit_before = self._audit_count()
        again = issue_numbers(self.rt, OPS["p11"])
        assert again.issued == []
        assert self._records() == after
        assert self._audit_count() == audit_before
        assert set(report.to_dict()["next_steps"]) == set(report.skipped)

    def _assert_terminal(self, rid: str, rec: Any) -> None:
        """An ACTIVE record with no open problem and no number must be waiting for the
        province's verification (never asked since its data last changed) or in a documented
        terminal state: its G number is held by an earlier record that is no longer live."""
        if rec.verification is None:
            with self.store.unit_of_work() as uow:
                child = uow.children.get(rec.child_id)
            if classify(rec, child, []) == "not_verified":
                REACHED["waiting not_verified (never asked)"] += 1
                return
        with self.store.unit_of_work() as uow:
            child = uow.children.get(rec.child_id)
            doc = child.document
            holder = uow.numbers.resolve("G" + doc.number) if doc is not None else None
            reason = classify(
                rec, child, [], number_holder=holder.record_id if holder is not None else None
            )
            held_by = uow.records.get(holder.record_id) if holder is not None else None
        assert reason == "number_taken", f"record {rid} stuck: {reason} ({rec.verification})"
        assert held_by is not None
        assert held_by.id != rid
        assert not held_by.state.is_live
        REACHED["terminal number_taken"] += 1

    def _audit_count(self) -> int:
        with self.store.unit_of_work() as uow:
            return sum(1 for _ in uow.audit.iter())

    # ------------------------------------------------------------------ invariants

    @invariant()
    def numbers_are_sound(self) -> None:
        """A G number is the child's verified or county-confirmed ID (and stays it); a J
        number a confirmed child without one; no two records share a number."""
        with self.store.unit_of_work() as uow:
            seen: set[str] = set()
            for rec in uow.records.iter():
                n = rec.national_number
                if n is None:
                    continue
                assert n not in seen
                seen.add(n)
                if n.startswith("G"):
                    assert rec.verification is not None
                    assert rec.verification.is_verified
                    doc = uow.children.get(rec.child_id).document
                    assert doc is not None
                    assert "G" + doc.number == n, "a G number left its ID"

    @invariant()
    def duplicates_are_tracked(self) -> None:
        """Among live records sharing a document number, at most one has no open
        DUPLICATE_ID problem: no action makes or leaves an untracked duplicate."""
        with self.store.unit_of_work() as uow:
            records = [r for r in uow.records.iter() if r.state.is_live]
            children = uow.children.get_many([r.child_id for r in records])
            flagged = {
                p.record_id
                for p in uow.problems.iter()
                if p.kind is ProblemKind.DUPLICATE_ID and p.status is not ProblemStatus.RESOLVED
            }
        by_number: dict[str, list[str]] = {}
        for r in records:
            doc = children[r.child_id].document
            if doc is not None and doc.number:
                by_number.setdefault(doc.number, []).append(r.id)
        for ids in by_number.values():
            assert len([i for i in ids if i not in flagged]) <= 1, "an untracked duplicate"

    # ------------------------------------------------------------------ the end: drain

    def _drain(self) -> None:
        """Resolve everything the documented way, then every live record gets a number."""
        county = OPS["c105"]
        for _round in range(300):
            problems = self._open_problems()
            if not problems:
                approve_records(self.rt, county, all_pending=True)
                verify_records(self.rt, OPS["p11"])
                if not self._open_problems():
                    break
                continue
            p = problems[0]
            try:
                REACHED[f"drain {p.kind.value}"] += 1
                self._settle(p)
            except RuleViolations as exc:
                if exc.violations[0].code != "problem_closed":
                    raise
        assert self._open_problems() == [], "problems left after draining"
        self._issue_and_check()
        stuck = list_stuck_records(self.rt, county)
        assert set(stuck.counts) <= {"number_taken"}, stuck.counts
        chain = verify(self.store, replay=True, unkeyed_ok=True)  # the audit trail agrees
        assert chain.ok, chain
        assert not chain.findings, chain.findings
        REACHED["drained"] += 1

    def _settle(self, p: Any) -> None:
        county = OPS["c105"]
        kind = p.kind
        if kind in (ProblemKind.DUPLICATE_ID, ProblemKind.SUSPECTED_DUPLICATE):
            # As a county would: keep the numbered record, else the problem's own; a refusal
            # that names the records to choose from (its hint) is followed once.
            group = sorted({p.record_id, *p.related_record_ids})
            recs = self._records()
            numbered = [r for r in group if recs[r].national_number and recs[r].state.is_live]
            winner = (numbered or [p.record_id])[0]
            try:
                resolve_problem(
                    self.rt, county, p.id, "arbitrate", reason="仲裁", winner_record_id=winner
                )
            except RuleViolations as exc:
                codes = {v.code for v in exc.violations}
                if not codes <= {"winner_not_duplicate", "winner_not_numbered"}:
                    raise
                REACHED["drain arbitrate: " + ", ".join(sorted(codes))] += 1
                hint = exc.violations[-1].hint.split(", ")
                winner = next((r for r in hint if recs[r].national_number), hint[0])
                resolve_problem(
                    self.rt, county, p.id, "arbitrate", reason="仲裁", winner_record_id=winner
                )
        elif kind is ProblemKind.INVALID_ID or kind is ProblemKind.REGISTRY_DECEASED:
            resolve_problem(self.rt, county, p.id, "delete", reason="删除")
        else:
            if p.status is ProblemStatus.OPEN:
                resolve_problem(self.rt, county, p.id, "evidence", reason="户口簿", evidence=["s"])
            resolve_problem(self.rt, county, p.id, "accept", reason="核实无误")


def _kg_op(code: str) -> Any:
    from studentstatus.domain.jurisdiction import Operator

    return Operator.parse(f"kindergarten:{code}")


class SqliteWorkflow(Workflow):
    store_kind = "sqlite"


def _examples(default: int) -> int:
    scale = float(os.environ.get("STUDENTSTATUS_LIVENESS_EXAMPLES", "1"))
    return max(1, int(default * scale))


_SETTINGS: dict[str, Any] = {
    "deadline": None,
    "stateful_step_count": 40,
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.filter_too_much],
}


def test_liveness_memory() -> None:
    run_state_machine_as_test(Workflow, settings=settings(max_examples=_examples(200), **_SETTINGS))


def test_liveness_sqlite() -> None:
    run_state_machine_as_test(
        SqliteWorkflow, settings=settings(max_examples=_examples(30), **_SETTINGS)
    )


def test_liveness_catches_a_dead_end() -> None:
    """Accepted evidence that does nothing to the record (the old dead end: NOT_FOUND, evidence
    accepted, ``not_verified`` forever) is caught."""

    def nothing(*args: object, **kwargs: object) -> None:
        return None

    quick = settings(
        max_examples=200,
        stateful_step_count=25,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
        phases=[Phase.generate],
    )
    reached = Counter(REACHED)
    try:
        with (
            mock.patch.object(problem_service, "_confirm", nothing),
            pytest.raises(AssertionError, match=r"stuck|problems left"),
        ):
            run_state_machine_as_test(Workflow, settings=quick)
    finally:
        REACHED.clear()
        REACHED.update(reached)


def test_reached_states_summary(capsys: pytest.CaptureFixture[str]) -> None:
    """Print what the liveness runs reached (run with ``-s`` after the runs above)."""
    with capsys.disabled():
        for key, n in sorted(REACHED.items()):
            print(f"  {n:6d}  {key}")
