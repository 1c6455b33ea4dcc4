"""Approval chains: building, deciding, withdrawing, overdue and lost transfers."""

from __future__ import annotations

from datetime import date, datetime

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from studentstatus import regions
from studentstatus.domain.approvals import (
    approval_chain,
    decide,
    is_lost_transfer,
    next_step,
    overdue_steps,
    step_fits,
    withdraw,
)
from studentstatus.domain.calendar import HolidayCalendar, add_working_days
from studentstatus.domain.enums import (
    ChangeKind,
    KindergartenType,
    RequestStatus,
    Role,
    State,
    StepDecision,
)
from studentstatus.domain.jurisdiction import Operator
from studentstatus.domain.model import ChangeRequest, Kindergarten, StatusRecord
from studentstatus.domain.policy import Policy
from studentstatus.errors import PermissionDenied, RuleViolations, ValidationError

COUNTIES = regions.counties("")
START = date(2025, 9, 1)
NOW = datetime(2025, 9, 1, 9, 0)

SRC = Kindergarten("1111000001", "", "阳光", "110105", KindergartenType.PUBLIC)
SAME_COUNTY = Kindergarten("1111000002", "", "月亮", "110105", KindergartenType.PUBLIC)
OTHER_COUNTY = Kindergarten("1111000003", "", "星星", "110108", KindergartenType.PUBLIC)
OTHER_PROVINCE = Kindergarten("4444000001", "", "海滨", "440306", KindergartenType.PUBLIC)
REC = StatusRecord("r1", "c1", "1111000001", "110105", State.ACTIVE, None, date(2023, 9, 1))


def op(text: str) -> Operator:
    """Parse an operator."""
    return Operator.parse(text)


def transfer(
    dest: Kindergarten, applicant: Operator | None = None, policy: Policy | None = None
) -> ChangeRequest:
    """A transfer request of REC to ``dest``."""
    applicant = applicant or op(f"kindergarten:{dest.school_code}")
    steps = approval_chain(
        ChangeKind.TRANSFER,
        REC,
        source=SRC,
        destination=dest,
        policy=policy or Policy(),
        applicant=applicant,
        start=START,
        now=NOW,
    )
    return ChangeRequest(
        "q1",
        "r1",
        ChangeKind.TRANSFER,
        str(applicant),
        NOW,
        steps,
        to_kindergarten=dest.school_code,
    )


def shape(request: ChangeRequest) -> list[str]:
    """Steps as role:scope text."""
    return [f"{s.role.value}:{s.scope}" for s in request.steps]


class TestTransferChains:
    """The per-case transfer chain (the four-party approval)."""

    def test_same_county(self) -> None:
        """Destination kg (applicant, pre-approved) → source kg → county."""
        r = transfer(SAME_COUNTY)
        assert shape(r) == ["kindergarten:1111000002", "kindergarten:1111000001", "county:110105"]
        first = r.steps[0]
        assert first.decision is StepDecision.APPROVED
        assert (first.decided_by, first.decided_at, first.due) == (
            "kindergarten:1111000002",
            NOW,
            START,
        )
        assert [s.due for s in r.steps[1:]] == [date(2025, 9, 15), date(2025, 9, 29)]

    def test_other_county_same_province(self) -> None:
        """Both counties, no province."""
        assert shape(transfer(OTHER_COUNTY))[2:] == ["county:110105", "county:110108"]

    def test_other_province(self) -> None:
        """Both counties, then source and destination provinces."""
        assert shape(transfer(OTHER_PROVINCE))[2:] == [
            "county:110105",
            "county:440306",
            "province:11",
            "province:44",
        ]

    def test_policy_can_drop_the_provinces(self) -> None:
        """require_cross_province_approval=False stops at the counties."""
        policy = attrs.evolve(Policy(), require_cross_province_approval=False)
        assert len(transfer(OTHER_PROVINCE, policy=policy).steps) == 4

    def test_someone_else_applying_leaves_the_first_step_pending(self) -> None:
        """A county applying on the family's behalf: the destination kg must accept."""
        r = transfer(SAME_COUNTY, applicant=op("county:110105"))
        assert r.steps[0].decision is StepDecision.PENDING
        assert r.steps[0].due == date(2025, 9, 15)
        assert next_step(r) == r.steps[0]

    def test_impossible_transfers(self) -> None:
        """Missing destination, same kindergarten, wrong source."""

        def chain(source: Kindergarten, destination: Kindergarten | None) -> object:
            return approval_chain(
                ChangeKind.TRANSFER,
                REC,
                source=source,
                destination=destination,
                policy=Policy(),
                applicant=op("county:110105"),
                start=START,
            )

        with pytest.raises(ValidationError) as info:
            chain(SRC, None)
        assert info.value.code == "destination_required"
        with pytest.raises(ValidationError) as info:
            chain(SRC, SRC)
        assert info.value.code == "same_kindergarten"
        with pytest.raises(ValidationError) as info:
            chain(OTHER_COUNTY, SAME_COUNTY)
        assert info.value.code == "source_mismatch"

    def test_due_dates_follow_the_holiday_calendar(self) -> None:
        """National Day 2025: the source kindergarten's step is due 16 October."""
        cal = HolidayCalendar(
            holidays=frozenset(date(2025, 10, d) for d in range(1, 9)),
            extra_working_days=frozenset({date(2025, 9, 28), date(2025, 10, 11)}),
        )
        steps = approval_chain(
            ChangeKind.TRANSFER,
            REC,
            source=SRC,
            destination=SAME_COUNTY,
            policy=Policy(),
            applicant=op("kindergarten:1111000002"),
            start=date(2025, 9, 26),
            calendar=cal,
        )
        assert steps[1].due == date(2025, 10, 16)


class TestOtherKinds:
    """Chains from the policy table."""

    @pytest.mark.parametrize("kind", [k for k in ChangeKind if k is not ChangeKind.TRANSFER])
    def test_policy_roles_scoped_to_the_record(self, kind: ChangeKind) -> None:
        """One step per policy role; no approvals → empty chain."""
        steps = approval_chain(
            kind,
            REC,
            source=SRC,
            policy=Policy(),
            applicant=op("kindergarten:1111000001"),
            start=START,
        )
        assert [s.role for s in steps] == list(Policy().approvals_for(kind))
        assert all(s.decision is StepDecision.PENDING for s in steps)

    def test_every_level_scope(self) -> None:
        """A province policy that adds city and province steps uses prefixes."""
        roles = (Role.COUNTY, Role.CITY, Role.PROVINCE, Role.MINISTRY)
        policy = attrs.evolve(Policy(), approvals={ChangeKind.SKIP: roles})
        steps = approval_chain(
            ChangeKind.SKIP,
            REC,
            source=SRC,
            policy=policy,
            applicant=op("county:110105"),
            start=START,
        )
        assert [s.scope for s in steps] == ["110105", "1101", "11", ""]
        assert [s.due for s in steps] == [add_working_days(START, 10 * i) for i in range(1, 5)]
        # Every step scope is a valid operator scope.
        for s in steps:
            assert step_fits(Operator(s.role, s.scope), s)


class TestDecide:
    """Decisions along a chain."""

    def test_full_walk_approves_on_the_last_step(self) -> None:
        """Each step in order by its own operator; APPROVED after the last."""
        r = transfer(OTHER_PROVINCE)
        for who in ["kindergarten:1111000001", "county:110105", "county:440306", "province:11"]:
            r = decide(r, op(who), True, "", NOW)
            assert r.status is RequestStatus.OPEN
        r = decide(r, op("province:44"), True, "同意", NOW)
        assert r.status is RequestStatus.APPROVED
        assert next_step(r) is None
        assert r.steps[-1].reason == "同意"

    def test_rejection_needs_a_reason_and_closes(self) -> None:
        """Rejecting without a reason is refused; with one, the request is REJECTED."""
        r = transfer(SAME_COUNTY)
        with pytest.raises(RuleViolations) as info:
            decide(r, op("kindergarten:1111000001"), False, "  ", NOW)
        assert [v.code for v in info.value.violations] == ["reason_required"]
        done = decide(r, op("kindergarten:1111000001"), False, "在园", NOW)
        assert done.status is RequestStatus.REJECTED
        assert done.steps[2].decision is StepDecision.PENDING
        with pytest.raises(RuleViolations) as info:
            decide(done, op("county:110105"), True, "", NOW)
        assert info.value.code == "request_not_open"

    @pytest.mark.parametrize(
        "who", ["county:110105", "kindergarten:1111000002", "ministry", "province:11"]
    )
    def test_only_the_pending_steps_operator(self, who: str) -> None:
        """Out-of-turn operators, even senior ones, are refused."""
        r = transfer(SAME_COUNTY)
        with pytest.raises(PermissionDenied) as info:
            decide(r, op(who), True, "", NOW)
        assert info.value.code == "not_step_approver"


class TestWithdraw:
    """Withdrawal by the applicant."""

    def test_applicant_only_and_only_open(self) -> None:
        """Others are refused; a closed request cannot be withdrawn."""
        r = transfer(SAME_COUNTY)
        with pytest.raises(PermissionDenied) as info:
            withdraw(r, op("county:110105"), NOW)
        assert info.value.code == "not_applicant"
        w = withdraw(r, op("kindergarten:1111000002"), NOW)
        assert w.status is RequestStatus.WITHDRAWN
        with pytest.raises(RuleViolations):
            withdraw(w, op("kindergarten:1111000002"), NOW)

    def test_not_after_the_last_approval(self) -> None:
        """Once approved, the request is closed."""
        r = transfer(SAME_COUNTY)
        r = decide(r, op("kindergarten:1111000001"), True, "", NOW)
        r = decide(r, op("county:110105"), True, "", NOW)
        with pytest.raises(RuleViolations):
            withdraw(r, op("kindergarten:1111000002"), NOW)


class TestQueues:
    """Overdue steps and lost transfers."""

    def test_overdue(self) -> None:
        """The pending step is overdue after its due day; closed requests never are."""
        r = transfer(SAME_COUNTY)
        assert overdue_steps([r], date(2025, 9, 15)) == []
        late = overdue_steps([r], date(2025, 9, 17))
        assert [(o.index, o.days_late) for o in late] == [(1, 2)]
        assert overdue_steps([withdraw(r, op("kindergarten:1111000002"))], date(2026, 1, 1)) == []

    def test_lost_transfer(self) -> None:
        """Source approved, not complete after the last due date → lost."""
        r = transfer(OTHER_COUNTY)
        last_due = r.steps[-1].due
        assert last_due is not None
        assert not is_lost_transfer(r, date(2026, 1, 1))  # source has not approved
        r = decide(r, op("kindergarten:1111000001"), True, "", NOW)
        assert not is_lost_transfer(r, last_due)
        assert is_lost_transfer(r, date.fromordinal(last_due.toordinal() + 1))
        rejected = decide(r, op("county:110105"), False, "材料不全", NOW)
        assert is_lost_transfer(rejected, date(2026, 1, 1))
        done = decide(decide(r, op("county:110105"), True, "", NOW), op("county:110108"), True)
        assert not is_lost_transfer(done, date(2026, 1, 1))

    def test_other_kinds_are_never_lost(self) -> None:
        """Only transfers can be lost."""
        r = attrs.evolve(transfer(OTHER_COUNTY), kind=ChangeKind.SUSPEND)
        r = decide(r, op("kindergarten:1111000001"), True)
        assert not is_lost_transfer(r, date(2030, 1, 1))


def test_random_transfers_have_consistent_chains() -> None:
    """Any transfer: increasing due dates, valid operator scopes, length by geography."""
    codes = st.from_regex(r"\A[0-9]{10}\Z", fullmatch=True)

    @given(st.sampled_from(COUNTIES), st.sampled_from(COUNTIES), codes, codes, st.data())
    def check(src_region: str, dst_region: str, a: str, b: str, data: st.DataObject) -> None:
        if a == b:
            return
        src = Kindergarten(a, "", "甲", src_region, KindergartenType.PUBLIC)
        dst = Kindergarten(b, "", "乙", dst_region, KindergartenType.PUBLIC)
        rec = StatusRecord("r", "c", a, src_region, State.ACTIVE, None, date(2023, 9, 1))
        steps = approval_chain(
            ChangeKind.TRANSFER,
            rec,
            source=src,
            destination=dst,
            policy=Policy(),
            applicant=Operator(Role.KINDERGARTEN, b),
            start=START,
        )
        expected = 3 + (src_region != dst_region) + 2 * (src_region[:2] != dst_region[:2])
        assert len(steps) == expected
        dues = [s.due for s in steps if s.due is not None]
        assert len(dues) == len(steps)
        assert dues == sorted(dues)
        assert len(set(dues)) == len(dues)
        for s in steps:
            assert step_fits(Operator(s.role, s.scope), s)
        # Walking the chain with the right operators approves it.
        r = ChangeRequest(
            "q", "r", ChangeKind.TRANSFER, str(Operator(Role.KINDERGARTEN, b)), NOW, steps
        )
        for s in steps[1:]:
            r = decide(r, Operator(s.role, s.scope), True)
        assert r.status is RequestStatus.APPROVED

    check()
