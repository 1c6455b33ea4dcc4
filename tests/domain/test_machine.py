"""The status machine: table shape, every guard, apply, replay, renderings."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from studentstatus.domain import machine as m
from studentstatus.domain.enums import ChangeKind as K
from studentstatus.domain.enums import Grade, KindergartenType, Role, Sex, State
from studentstatus.domain.model import (
    Child,
    DocumentKind,
    Guardian,
    IdentityDocument,
    Kindergarten,
    Licence,
    StatusRecord,
)
from studentstatus.domain.policy import Policy
from studentstatus.errors import RuleViolations, ValidationError
from studentstatus.testing.strategies import change_sequences, changes, records

G = Grade
S = State
AT = datetime(2024, 1, 1, tzinfo=UTC)
TODAY = date(2024, 9, 10)
LIC = Licence("1", "局", date(2015, 1, 1), date(2035, 12, 31))
HOME = Kindergarten("1111000001", "12100000400000624D", "甲园", "110105",
                    KindergartenType.PUBLIC, licences=(LIC,))  # fmt: skip
OTHER = attrs.evolve(HOME, school_code="1111000002", name="乙园", region_code="110106")
UNLICENSED = attrs.evolve(HOME, school_code="1111000003", licences=())
# 11010520200315002X (worked example of docs/reference/domain.md) is a girl born 2020-03-15
# → JUNIOR in 2023, MIDDLE in 2024.
CHILD = Child("c1", "王小红", Sex.F,
              date(2020, 3, 15), IdentityDocument(DocumentKind.RESIDENT, "11010520200315002X"),
              guardians=(Guardian("王芳", "mother", "+8613800138000"),))  # fmt: skip
CTX = m.Context(TODAY, kindergarten=HOME, destination=OTHER, child=CHILD)


def rec(
    state: State = State.ACTIVE, grade: Grade | None = Grade.MIDDLE, **kw: object
) -> StatusRecord:
    """A record at HOME, entered 2023-09-01."""
    return attrs.evolve(
        StatusRecord("r1", "c1", HOME.school_code, HOME.region_code, state, grade,
                     entry_date=date(2023, 9, 1), version=2),
        **kw,
    )  # fmt: skip


def codes(record: StatusRecord | None, change: m.Change, ctx: m.Context = CTX) -> list[str]:
    """Codes of check()."""
    return [v.code for v in m.check(record, change, context=ctx)]


def ch(kind: K, day: date = TODAY, **kw: object) -> m.Change:
    """A change."""
    return m.Change(kind, day, **kw)  # type: ignore[arg-type]


# The transition table (docs/concepts/status-machine.md), written out independently of the module.
SPEC = {
    K.REGISTER: ({None}, S.PENDING),
    K.APPROVE: ({S.PENDING}, S.ACTIVE),
    K.REJECT: ({S.PENDING}, S.CANCELLED),
    K.PROMOTE: ({S.ACTIVE}, m.Target.SAME),
    K.REPEAT: ({S.ACTIVE}, m.Target.SAME),
    K.SKIP: ({S.ACTIVE}, m.Target.SAME),
    K.GRADUATE: ({S.ACTIVE}, S.GRADUATED),
    K.TRANSFER: ({S.ACTIVE}, m.Target.SAME),
    K.GO_ABROAD: ({S.ACTIVE}, S.ABROAD),
    K.RETURN: ({S.ABROAD}, S.ACTIVE),
    K.SUSPEND: ({S.ACTIVE}, S.SUSPENDED),
    K.EXTEND: ({S.SUSPENDED}, m.Target.SAME),
    K.RESUME: ({S.SUSPENDED}, S.ACTIVE),
    K.WITHDRAW: ({S.ACTIVE, S.SUSPENDED, S.ABROAD}, S.WITHDRAWN),
    K.REENROLL: ({S.WITHDRAWN}, S.PENDING),
    K.DEATH: ({S.PENDING, S.ACTIVE, S.SUSPENDED, S.ABROAD, S.WITHDRAWN}, S.DECEASED),
    K.CANCEL: ({S.PENDING, S.ACTIVE}, S.CANCELLED),
    K.RESTORE: ({S.CANCELLED}, m.Target.BEFORE_CANCEL),
    K.RELOCATE: (
        {S.PENDING, S.ACTIVE, S.SUSPENDED, S.ABROAD, S.WITHDRAWN, S.CANCELLED},
        m.Target.SAME,
    ),
}


class TestTable:
    """The table is the documented table, as data."""

    def test_matches_spec(self) -> None:
        """Same rows, from-states and targets, one row per kind."""
        assert {t.kind: (set(t.sources), t.target) for t in m.TABLE} == SPEC

    def test_terminal_and_cancelled(self) -> None:
        """Nothing leaves GRADUATED/DECEASED; only RESTORE leaves CANCELLED (a RELOCATE keeps
        the state: a cancelled record follows its kindergarten and stays cancelled)."""
        for t in m.TABLE:
            assert not (t.sources & m.TERMINAL)
            leaves = S.CANCELLED in t.sources and t.target is not m.Target.SAME
            assert leaves == (t.kind is K.RESTORE)

    def test_every_guard_known(self) -> None:
        """Each row's guards are in GUARDS; each has a bilingual label."""
        for t in m.TABLE:
            assert t.label_zh
            for g in t.guards:
                assert g in m.GUARDS

    @pytest.mark.parametrize("state", list(S))
    def test_transition_not_allowed_everywhere_else(self, state: State) -> None:
        """Any kind whose row does not list the state is refused with the hint of allowed ones."""
        r = rec(state, state_before_cancel=S.ACTIVE if state is S.CANCELLED else None)
        for kind, (sources, _) in SPEC.items():
            if state in sources:
                continue
            (v,) = m.check(r, ch(kind), context=CTX)
            assert v.code == "transition_not_allowed"
            allowed = [
                k.value
                for k, (src, _) in SPEC.items()
                if state in src and k not in m.SYSTEM_CHANGES
            ]
            assert v.hint == "allowed: " + (", ".join(allowed) or "none (terminal state)")

    def test_register_only_without_record(self) -> None:
        """No record: only REGISTER; a record: never REGISTER."""
        assert codes(None, ch(K.APPROVE)) == ["transition_not_allowed"]
        assert codes(rec(), ch(K.REGISTER)) == ["transition_not_allowed"]


class TestRegister:
    """REGISTER: kindergarten licensed, child sound, grade fits."""

    GOOD = m.Change(K.REGISTER, date(2023, 9, 1), grade=G.JUNIOR, child_id="c1", temp_number="L1")

    def test_creates_pending_record(self) -> None:
        """A new record, version 1, with the caller's ids and numbers."""
        r, e = m.apply(None, self.GOOD, context=CTX, recorded_at=AT, record_id="r9")
        assert (r.id, r.child_id, r.state, r.grade, r.version) == (
            "r9",
            "c1",
            S.PENDING,
            G.JUNIOR,
            1,
        )
        assert (r.kindergarten_code, r.region_code, r.temp_number) == ("1111000001", "110105", "L1")
        assert e.before == {}
        assert e.after["state"] == "PENDING"
        assert e.after["entry_date"] == "2023-09-01"
        assert e.from_state is None
        assert e.seq == 1

    def test_all_problems(self) -> None:
        """Unlicensed kindergarten, age misfit, inconsistent child: all reported."""
        ctx = attrs.evolve(CTX, kindergarten=UNLICENSED, child=attrs.evolve(CHILD, name=""))
        change = attrs.evolve(self.GOOD, grade=G.SENIOR)
        assert codes(None, change, ctx) == [
            "kindergarten_unlicensed",
            "name_required",
            "grade_age_mismatch",
        ]

    def test_missing_everything(self) -> None:
        """No kindergarten, no child, no grade."""
        ctx = m.Context(TODAY)
        assert codes(None, ch(K.REGISTER), ctx) == [
            "kindergarten_required",
            "child_required",
            "grade_required",
        ]

    def test_record_id_required(self) -> None:
        """apply needs a record id for REGISTER."""
        with pytest.raises(RuleViolations) as err:
            m.apply(None, self.GOOD, context=CTX, recorded_at=AT)
        assert [v.code for v in err.value.violations] == ["record_id_required"]

    def test_invalid_id_policy(self) -> None:
        """A checksum-invalid ID is a problem (accepted) by default, refused under 'reject'."""
        bad = attrs.evolve(
            CHILD, document=IdentityDocument(DocumentKind.RESIDENT, "110105202003150021")
        )
        ctx = attrs.evolve(CTX, child=bad)
        assert codes(None, self.GOOD, ctx) == []
        strict = attrs.evolve(ctx, policy=Policy(invalid_id="reject"))
        assert codes(None, self.GOOD, strict) == ["checksum"]

    def test_mismatch_not_waived(self) -> None:
        """Birth date/sex disagreeing with a valid ID is refused whatever the policy."""
        ctx = attrs.evolve(CTX, child=attrs.evolve(CHILD, birth_date=date(2020, 3, 14)))
        assert codes(None, self.GOOD, ctx) == ["birth_date_mismatch"]

    def test_child_id_must_match(self) -> None:
        """The change's child id names the context's child."""
        assert codes(None, attrs.evolve(self.GOOD, child_id="other")) == ["child_mismatch"]

    def test_unknown_grade_text(self) -> None:
        """A grade outside the ladder is a violation, not an exception."""
        assert codes(None, attrs.evolve(self.GOOD, grade="XL")) == ["grade_unknown"]

    def test_duplicate_live_records_are_accepted(self) -> None:
        """Other live records with the same document do not refuse (problems handle them)."""
        assert codes(None, self.GOOD, attrs.evolve(CTX, other_live_records=("r0",))) == []


class TestCommonGuards:
    """Effective dates and bad input."""

    def test_future(self) -> None:
        """After today: refused."""
        assert codes(rec(), ch(K.GO_ABROAD, TODAY + timedelta(days=1))) == ["effective_date_future"]

    def test_past(self) -> None:
        """Before entry, suspension start or cancellation: refused."""
        assert codes(rec(), ch(K.GO_ABROAD, date(2023, 8, 31))) == ["effective_date_past"]
        r = rec(S.SUSPENDED, suspended_since=date(2024, 3, 1), suspended_until=date(2024, 12, 1))
        assert codes(r, ch(K.RESUME, date(2024, 2, 1))) == ["effective_date_past"]

    def test_bad_input(self) -> None:
        """Unknown kinds and datetimes are violations."""
        assert codes(rec(), m.Change("FLY", TODAY)) == ["change_kind_unknown"]  # type: ignore[arg-type]
        assert codes(rec(), m.Change(K.GO_ABROAD, datetime(2024, 1, 1))) == [
            "effective_date_invalid"
        ]
        assert codes(rec(), "PROMOTE") == ["change_kind_unknown"]  # type: ignore[arg-type]


class TestGrades:
    """PROMOTE, REPEAT, SKIP, GRADUATE."""

    def test_promote(self) -> None:
        """One grade up, once per school year."""
        r, e = m.apply(rec(grade=G.JUNIOR), ch(K.PROMOTE), context=CTX, recorded_at=AT)
        assert (r.grade, r.last_promoted_year, r.version) == (G.MIDDLE, 2024, 3)
        assert e.before == {"grade": "JUNIOR", "last_promoted_year": None}
        assert e.after == {"grade": "MIDDLE", "last_promoted_year": 2024}
        assert codes(r, ch(K.PROMOTE)) == ["already_promoted_this_year"]
        later = attrs.evolve(CTX, today=date(2025, 9, 1))
        assert codes(r, ch(K.PROMOTE, date(2025, 9, 1)), later) == []

    def test_promote_at_top(self) -> None:
        """SENIOR cannot be promoted."""
        assert codes(rec(grade=G.SENIOR), ch(K.PROMOTE)) == ["grade_at_top"]

    def test_repeat(self) -> None:
        """Reason; once per grade; counts as the year's grade decision."""
        assert codes(rec(), ch(K.REPEAT)) == ["reason_required"]
        r, _ = m.apply(rec(), ch(K.REPEAT, reason="体弱"), context=CTX, recorded_at=AT)
        assert r.repeated_grades == (G.MIDDLE,)
        assert r.grade is G.MIDDLE
        nxt = attrs.evolve(CTX, today=date(2025, 9, 2))
        assert codes(r, ch(K.REPEAT, date(2025, 9, 2), reason="x"), nxt) == [
            "repeat_once_per_grade"
        ]
        assert codes(r, ch(K.PROMOTE)) == ["already_promoted_this_year"]

    def test_skip(self) -> None:
        """Exactly two grades up, once, age fitting g+1 or g+2."""
        # born 2020-03-15: 4 at the 2024 cut-off → MIDDLE; from NURSERY, skipping JUNIOR
        r, _ = m.apply(rec(grade=G.NURSERY), ch(K.SKIP, reason="发展超前"), context=CTX,
                       recorded_at=AT)  # fmt: skip
        assert (r.grade, r.skipped) == (G.MIDDLE, True)
        later = attrs.evolve(CTX, today=date(2025, 9, 1))
        assert codes(r, ch(K.SKIP, date(2025, 9, 1), reason="x"), later) == [
            "skip_beyond_senior",
            "skip_once_per_stage",
        ]

    def test_skip_age(self) -> None:
        """A JUNIOR aged 4 (fits MIDDLE) may skip to SENIOR; a NURSERY aged 2 may not."""
        assert codes(rec(grade=G.JUNIOR), ch(K.SKIP, reason="x")) == []
        young = attrs.evolve(CTX, child=attrs.evolve(CHILD, birth_date=date(2022, 1, 1)))
        found = m.check(rec(grade=G.NURSERY), ch(K.SKIP, reason="x"), context=young)
        # the ID's birth date does not matter here: only the age guard reads the child
        assert [v.code for v in found] == ["grade_age_mismatch"]

    def test_graduate(self) -> None:
        """Only SENIOR graduates; GRADUATED is terminal."""
        assert codes(rec(grade=G.MIDDLE), ch(K.GRADUATE)) == ["not_senior"]
        r, _ = m.apply(rec(grade=G.SENIOR), ch(K.GRADUATE), context=CTX, recorded_at=AT)
        assert r.state is S.GRADUATED
        assert m.allowed_changes(r, CTX) == []


class TestTransfer:
    """TRANSFER: destination licensed, not the same, no other open request."""

    def test_moves(self) -> None:
        """The kindergarten and county change; the event holds exactly them."""
        r, e = m.apply(rec(), ch(K.TRANSFER, to_kindergarten="1111000002"), context=CTX,
                       recorded_at=AT)  # fmt: skip
        assert (r.kindergarten_code, r.region_code, r.state) == ("1111000002", "110106", S.ACTIVE)
        assert set(e.after) == {"kindergarten_code", "region_code"}

    def test_refusals(self) -> None:
        """Unlicensed destination, same kindergarten, open request: all reported."""
        ctx = attrs.evolve(CTX, destination=UNLICENSED, open_request=True)
        assert codes(rec(), ch(K.TRANSFER), ctx) == [
            "destination_unlicensed",
            "open_request_exists",
        ]
        same = attrs.evolve(CTX, destination=HOME)
        assert codes(rec(), ch(K.TRANSFER), same) == ["same_kindergarten"]
        assert codes(rec(), ch(K.TRANSFER), attrs.evolve(CTX, destination=None)) == [
            "destination_required"
        ]
        assert codes(rec(), ch(K.TRANSFER, to_kindergarten="1111000009")) == [
            "destination_mismatch"
        ]


class TestSuspension:
    """SUSPEND, EXTEND, RESUME and the caps."""

    def test_cycle(self) -> None:
        """Suspend 100 days, extend, resume: the days are added up."""
        r0 = rec()
        ctx = attrs.evolve(CTX, today=date(2025, 6, 1))
        r1, _ = m.apply(r0, ch(K.SUSPEND, date(2023, 10, 1), until=date(2024, 1, 9)), context=ctx,
                        recorded_at=AT)  # fmt: skip
        assert (r1.state, r1.suspended_since, r1.suspended_until) == (
            S.SUSPENDED, date(2023, 10, 1), date(2024, 1, 9),
        )  # fmt: skip
        r2, e2 = m.apply(r1, ch(K.EXTEND, date(2024, 1, 1), until=date(2024, 6, 1)), context=ctx,
                         recorded_at=AT)  # fmt: skip
        assert e2.after == {"suspended_until": "2024-06-01"}
        r3, e3 = m.apply(r2, ch(K.RESUME, date(2024, 5, 1)), context=ctx, recorded_at=AT)
        assert (r3.state, r3.suspended_days, r3.suspended_since) == (S.ACTIVE, 213, None)
        assert e3.after["suspended_days"] == 213

    def test_until_rules(self) -> None:
        """until is required, after the start, at most one year."""
        assert codes(rec(), ch(K.SUSPEND)) == ["until_required"]
        assert codes(rec(), ch(K.SUSPEND, until=TODAY)) == ["until_not_after_start"]
        assert codes(rec(), ch(K.SUSPEND, until=TODAY + timedelta(days=366))) == []
        assert codes(rec(), ch(K.SUSPEND, until=TODAY + timedelta(days=367))) == [
            "suspension_too_long"
        ]

    def test_total_cap(self) -> None:
        """Suspensions of a record together at most 731 days (default)."""
        r = rec(suspended_days=500)
        assert codes(r, ch(K.SUSPEND, until=TODAY + timedelta(days=231))) == []
        assert codes(r, ch(K.SUSPEND, until=TODAY + timedelta(days=232))) == [
            "suspension_cap_exceeded"
        ]
        s = rec(S.SUSPENDED, suspended_since=date(2024, 1, 1), suspended_until=date(2024, 12, 1),
                suspended_days=300)  # fmt: skip
        assert codes(s, ch(K.EXTEND, until=date(2025, 3, 1))) == []  # 300 + 425 = 725
        assert codes(s, ch(K.EXTEND, until=date(2025, 3, 8))) == ["suspension_cap_exceeded"]
        assert codes(s, ch(K.EXTEND, until=date(2024, 11, 1))) == ["until_not_after_start"]

    def test_resume_grade(self) -> None:
        """Back to the former grade, or to one that fits the age."""
        s = rec(S.SUSPENDED, grade=G.JUNIOR, suspended_since=date(2024, 1, 1),
                suspended_until=date(2024, 12, 1))  # fmt: skip
        assert codes(s, ch(K.RESUME)) == []
        assert codes(s, ch(K.RESUME, grade=G.MIDDLE)) == []
        assert codes(s, ch(K.RESUME, grade=G.SENIOR)) == ["grade_age_mismatch"]

    def test_withdraw_while_suspended_folds_days(self) -> None:
        """Leaving SUSPENDED any way adds the days."""
        s = rec(S.SUSPENDED, suspended_since=date(2024, 9, 1), suspended_until=date(2024, 12, 1))
        r, _ = m.apply(s, ch(K.WITHDRAW, reason="搬家"), context=CTX, recorded_at=AT)
        assert (r.state, r.suspended_days, r.suspended_until) == (S.WITHDRAWN, 9, None)


class TestOtherRows:
    """ABROAD, WITHDRAW/REENROLL, DEATH, CANCEL/RESTORE, APPROVE/REJECT."""

    def test_abroad_and_back(self) -> None:
        """RETURN checks the grade against the age."""
        a = rec(S.ABROAD, grade=G.JUNIOR)
        assert codes(a, ch(K.RETURN)) == ["grade_age_mismatch"]  # 4 in 2024: MIDDLE
        r, e = m.apply(a, ch(K.RETURN, grade=G.MIDDLE), context=CTX, recorded_at=AT)
        assert (r.state, r.grade) == (S.ACTIVE, G.MIDDLE)
        assert e.after == {"state": "ACTIVE", "grade": "MIDDLE"}

    def test_reenroll(self) -> None:
        """WITHDRAWN → PENDING keeps numbers; may move to another kindergarten."""
        w = rec(S.WITHDRAWN, temp_number="L123", national_number="G11010520200315002X")
        assert codes(w, ch(K.REENROLL)) == ["grade_required"]
        r, _ = m.apply(w, ch(K.REENROLL, grade=G.MIDDLE, to_kindergarten="1111000002"),
                       context=CTX, recorded_at=AT)  # fmt: skip
        assert (r.state, r.kindergarten_code, r.entry_date) == (S.PENDING, "1111000002", TODAY)
        assert (r.temp_number, r.national_number) == ("L123", "G11010520200315002X")
        bad = attrs.evolve(CTX, destination=UNLICENSED)
        assert codes(w, ch(K.REENROLL, grade=G.MIDDLE, to_kindergarten="1111000003"), bad) == [
            "kindergarten_unlicensed"
        ]

    def test_death_needs_evidence(self) -> None:
        """DEATH from any live state, with evidence; DECEASED is absorbing."""
        assert codes(rec(S.WITHDRAWN), ch(K.DEATH, evidence=(" ",))) == ["evidence_required"]
        r, _ = m.apply(rec(S.PENDING), ch(K.DEATH, evidence=("死亡证明",)), context=CTX,
                       recorded_at=AT)  # fmt: skip
        assert r.state is S.DECEASED
        for kind in K:
            assert codes(r, ch(kind)) == ["transition_not_allowed"]

    def test_cancel_and_restore(self) -> None:
        """RESTORE returns to the state before CANCEL within the window (inclusive)."""
        c, _ = m.apply(rec(S.PENDING), ch(K.REJECT, date(2024, 1, 1), reason="材料不全"),
                       context=CTX, recorded_at=AT)  # fmt: skip
        assert (c.state, c.state_before_cancel, c.cancelled_on) == (
            S.CANCELLED, S.PENDING, date(2024, 1, 1),
        )  # fmt: skip
        edge = date(2024, 1, 1) + timedelta(days=366)
        ctx = attrs.evolve(CTX, today=edge + timedelta(days=1))
        assert codes(c, ch(K.RESTORE, edge), ctx) == []
        assert codes(c, ch(K.RESTORE, edge + timedelta(days=1)), ctx) == ["restore_window_passed"]
        r, _ = m.apply(c, ch(K.RESTORE, edge), context=ctx, recorded_at=AT)
        assert (r.state, r.state_before_cancel, r.cancelled_on) == (S.PENDING, None, None)

    def test_cancel_needs_reason(self) -> None:
        """CANCEL and WITHDRAW need a reason."""
        assert codes(rec(), ch(K.CANCEL, reason="  ")) == ["reason_required"]
        assert codes(rec(S.ABROAD), ch(K.WITHDRAW)) == ["reason_required"]

    def test_apply_raises_all(self) -> None:
        """apply raises RuleViolations with every violation of check."""
        change = ch(K.SUSPEND, TODAY + timedelta(days=3))
        with pytest.raises(RuleViolations) as err:
            m.apply(rec(), change, context=CTX, recorded_at=AT)
        assert [v.code for v in err.value.violations] == [
            "effective_date_future",
            "until_required",
        ]
        assert "11010520200315002X" not in str(err.value)


class TestAllowedChanges:
    """Buttons for portals."""

    def test_active(self) -> None:
        """An ACTIVE MIDDLE record with an open request: no TRANSFER, SKIP or GRADUATE."""
        got = m.allowed_changes(rec(), attrs.evolve(CTX, open_request=True))
        assert got == [K.PROMOTE, K.REPEAT, K.GO_ABROAD, K.SUSPEND, K.WITHDRAW, K.DEATH,
                       K.CANCEL]  # fmt: skip
        assert K.TRANSFER in m.allowed_changes(rec(), CTX)
        assert K.SKIP in m.allowed_changes(rec(grade=G.JUNIOR), CTX)

    def test_no_record(self) -> None:
        """Without a record, REGISTER when the kindergarten is licensed and the child sound."""
        assert m.allowed_changes(None, CTX) == [K.REGISTER]
        assert m.allowed_changes(None, attrs.evolve(CTX, kindergarten=UNLICENSED)) == []

    def test_restore_window(self) -> None:
        """RESTORE disappears when the window has passed."""
        c = rec(S.CANCELLED, state_before_cancel=S.ACTIVE, cancelled_on=date(2023, 1, 1))
        assert m.allowed_changes(c, CTX) == []
        c2 = attrs.evolve(c, cancelled_on=date(2024, 1, 1))
        assert m.allowed_changes(c2, CTX) == [K.RESTORE]


class TestEventsAndReplay:
    """Events carry exactly the touched fields, JSON-ready; replay rebuilds the record."""

    @given(change_sequences())
    def test_replay_equals_live(self, seq: tuple[StatusRecord, list]) -> None:  # type: ignore[type-arg]
        """replay(events) == record, version included; events are JSON-serialisable."""
        record, events = seq
        assert m.replay(events) == record
        assert [e.seq for e in events] == list(range(1, len(events) + 1))
        for e in events:
            json.dumps(e.before)
            json.dumps(e.after)
            assert set(e.before) == set(e.after) or e.kind is K.REGISTER
            assert "version" not in e.after

    @given(change_sequences(max_steps=8))
    def test_prefix_replay(self, seq: tuple[StatusRecord, list]) -> None:  # type: ignore[type-arg]
        """Every prefix replays to a record of that version."""
        _, events = seq
        for n in range(1, len(events) + 1):
            assert m.replay(events[:n]).version == n

    def test_replay_errors(self) -> None:
        """Empty, out of order, or not starting with REGISTER: a ValidationError."""
        r, e1 = m.apply(None, TestRegister.GOOD, context=CTX, recorded_at=AT, record_id="r1")
        _, e2 = m.apply(r, ch(K.APPROVE, date(2023, 9, 2)), context=CTX, recorded_at=AT)
        for log in ([], [e2], [e1, e1], [e2, e1], [attrs.evolve(e1, kind=K.APPROVE)]):
            with pytest.raises(ValidationError) as err:
                m.replay(log)
            assert err.value.code == "event_sequence"
        assert m.replay([e1, e2]).state is S.ACTIVE


class TestProperties:
    """check and apply never crash and agree with each other."""

    @given(st.none() | records(), changes(on=(date(2015, 1, 1), date(2035, 12, 31))))
    def test_check_apply_agree(self, record: StatusRecord | None, change: m.Change) -> None:
        """check() == [] iff apply succeeds; otherwise apply raises exactly those."""
        ctx = attrs.evolve(CTX, today=date(2035, 12, 31))
        found = m.check(record, change, context=ctx)
        for v in found:
            assert v.code
            assert v.field
            assert v.message_zh
            assert v.message_en
        if found:
            with pytest.raises(RuleViolations) as err:
                m.apply(record, change, context=ctx, recorded_at=AT, record_id="r")
            assert list(err.value.violations)[: len(found)] == found
            return
        new, event = m.apply(record, change, context=ctx, recorded_at=AT, record_id="r")
        assert new.version == (record.version + 1 if record else 1) == event.seq
        assert new.state is m.row(change.kind).target_for(record)

    @given(records())
    def test_allowed_kinds_fit_state(self, record: StatusRecord) -> None:
        """allowed_changes only offers kinds whose row lists the state."""
        for kind in m.allowed_changes(record, CTX):
            assert record.state in SPEC[kind][0]


class TestRendering:
    """transitions_table, Mermaid and dot come from the table."""

    def test_json_rows(self) -> None:
        """One row per kind, JSON-ready, approvals from the policy."""
        rows = m.transitions_table()
        assert [r["change"] for r in rows] == [t.kind.value for t in m.TABLE]
        by = {r["change"]: r for r in rows}
        assert by["WITHDRAW"]["from"] == ["ACTIVE", "SUSPENDED", "ABROAD"]
        assert by["RESTORE"]["to"] == "state_before_cancel"
        assert by["PROMOTE"]["approvals"] == []
        assert by["SUSPEND"]["approvals"] == ["county"]
        json.dumps(rows, ensure_ascii=False)
        custom = Policy(approvals={K.PROMOTE: (Role.KINDERGARTEN, Role.COUNTY)})
        assert m.transitions_table(custom)[3]["approvals"] == ["kindergarten", "county"]
        assert m.transitions_table(custom)[4]["approvals"] == []

    def test_mermaid_edges(self) -> None:
        """Every (from, to) pair appears; RESTORE goes back to PENDING and ACTIVE."""
        text = m.to_mermaid()
        assert text.startswith("stateDiagram-v2\n")
        assert "    [*] --> PENDING: REGISTER 入园建籍" in text
        assert "    CANCELLED --> PENDING: RESTORE 信息恢复" in text
        assert "    CANCELLED --> ACTIVE: RESTORE 信息恢复" in text
        assert "    DECEASED --> [*]" in text
        for kind, (sources, target) in SPEC.items():
            for s in sources:
                if isinstance(target, State):
                    src = "[*]" if s is None else s.value
                    assert f"    {src} --> {target.value}: {kind.value} " in text

    def test_dot(self) -> None:
        """A digraph with one node per state and one edge per from-state."""
        text = m.to_dot()
        assert text.startswith("digraph status {")
        assert text.count(" -> ") == len(m.to_mermaid().splitlines()) - 1 - len(m.TERMINAL)
        assert "GRADUATED [shape=doublecircle" in text


class TestDocs:
    """docs/concepts/status-machine.md carries the current table and diagram."""

    def test_diagram_and_table_in_sync(self) -> None:
        """The checked-in Mermaid diagram and table rows are the generated ones."""
        doc = (Path(__file__).parents[2] / "docs" / "concepts" / "status-machine.md").read_text(
            encoding="utf-8"
        )
        assert "```mermaid\n" + m.to_mermaid() + "```" in doc
        for r in m.transitions_table():
            sources = ", ".join(r["from"]) or "—"
            assert f"| `{r['change']}` {r['label_zh']} | {sources} | {r['to']} |" in doc


@given(
    grade=st.sampled_from(list(Grade)),
    temp=st.none() | st.just("L440305202103150001"),
    entry=st.dates(min_value=date(2023, 9, 1), max_value=date(2025, 9, 2)),
)
def test_register_event_after_is_every_field_of_the_new_record(
    grade: Grade, temp: str | None, entry: date
) -> None:
    # REGISTER builds ``after`` from a template of defaults; it must equal the projection
    # of the new record, field by field and in field order.
    lic = (Licence("LIC", "局", date(2015, 1, 1), date(2035, 12, 31)),)
    kg = Kindergarten(
        "1144000001", "12100000400000624D", "幼儿园", "440305", KindergartenType.PUBLIC,
        licences=lic,
    )  # fmt: skip
    child = Child(
        "c1", "王小明", Sex.M, date(2021, 3, 15), None,
        guardians=(Guardian("王芳", "mother", "+8613800138000"),),
    )  # fmt: skip
    ctx = m.Context(date(2025, 9, 2), kindergarten=kg, child=child, policy=Policy(age_tolerance=3))
    change = m.Change(K.REGISTER, entry, grade=grade, child_id="c1", temp_number=temp)
    rec, event = m.apply(
        None, change, context=ctx, recorded_at=datetime(2025, 9, 2), record_id="r1"
    )
    projection = {
        a.name: m._json(getattr(rec, a.name))
        for a in attrs.fields(type(rec))
        if a.name != "version"
    }
    assert event.after == projection
    assert list(event.after) == list(projection)
