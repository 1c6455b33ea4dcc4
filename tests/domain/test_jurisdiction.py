"""Operators, scopes and role rules."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from studentstatus import regions
from studentstatus.domain.enums import KindergartenType, Role, State
from studentstatus.domain.jurisdiction import (
    ACTIONS,
    ROLE_RULES,
    Operator,
    ensure_can,
)
from studentstatus.domain.model import Kindergarten, StatusRecord
from studentstatus.errors import PermissionDenied, ValidationError

COUNTIES = regions.counties("")
school_codes = st.from_regex(r"\A[0-9]{10}\Z", fullmatch=True)


def kindergarten(code: str = "1111000001", region: str = "110105") -> Kindergarten:
    """A kindergarten for the tests."""
    return Kindergarten(code, "", "测试幼儿园", region, KindergartenType.PUBLIC)


def record(code: str = "1111000001", region: str = "110105") -> StatusRecord:
    """A record for the tests."""
    return StatusRecord("r1", "c1", code, region, State.ACTIVE, None, date(2023, 9, 1))


def operators() -> st.SearchStrategy[Operator]:
    """Any valid operator."""
    return st.one_of(
        school_codes.map(lambda c: Operator(Role.KINDERGARTEN, c)),
        st.sampled_from(COUNTIES).map(lambda c: Operator(Role.COUNTY, c)),
        st.sampled_from(COUNTIES).map(lambda c: Operator(Role.CITY, c[:4])),
        st.sampled_from(COUNTIES).map(lambda c: Operator(Role.PROVINCE, c[:2])),
        st.just(Operator(Role.MINISTRY)),
    )


class TestParse:
    """Operator text."""

    @pytest.mark.parametrize(
        ("text", "role", "scope"),
        [
            ("kindergarten:1111000001", Role.KINDERGARTEN, "1111000001"),
            ("county:110105", Role.COUNTY, "110105"),
            ("city:1101", Role.CITY, "1101"),
            ("city:110100", Role.CITY, "1101"),
            ("province:44", Role.PROVINCE, "44"),
            ("province:440000", Role.PROVINCE, "44"),
            ("ministry", Role.MINISTRY, ""),
            ("ministry:", Role.MINISTRY, ""),
            (" COUNTY : 110105 ", Role.COUNTY, "110105"),
            ("县级教育行政部门:110105", Role.COUNTY, "110105"),
        ],
    )
    def test_valid(self, text: str, role: Role, scope: str) -> None:
        """Accepted spellings normalise to role and prefix."""
        op = Operator.parse(text)
        assert (op.role, op.scope) == (role, scope)
        assert Operator.parse(str(op)) == op

    @pytest.mark.parametrize(
        "text",
        [
            "",
            "county",
            "county:1101",
            "county:11010a",
            "city:110105",
            "city:11",
            "province:4",
            "province:440300",
            "ministry:11",
            "kindergarten:123",
            "school:1111000001",
            "county:１１０１０５",
        ],
    )
    def test_invalid(self, text: str) -> None:
        """Bad text raises ValidationError operator_invalid on field operator."""
        with pytest.raises(ValidationError) as info:
            Operator.parse(text)
        assert (info.value.code, info.value.field) == ("operator_invalid", "operator")
        assert isinstance(info.value, ValueError)

    def test_direct_construction_is_checked(self) -> None:
        """The constructor refuses scopes that are not normalised."""
        with pytest.raises(ValidationError):
            Operator(Role.CITY, "110100")
        with pytest.raises(ValidationError):
            Operator(Role.COUNTY, "")

    def test_str_and_identity(self) -> None:
        """str is role:scope; id and name ride along."""
        op = Operator.parse("county:110105", id="u7", name="张三")
        assert str(op) == "county:110105"
        assert (op.id, op.name) == ("u7", "张三")
        assert str(Operator.parse("ministry")) == "ministry"


class TestCoverage:
    """Scope checks."""

    def test_kindergarten_covers_only_itself(self) -> None:
        """A kindergarten operator covers its own kindergarten and records, no region."""
        op = Operator.parse("kindergarten:1111000001")
        assert op.covers(kindergarten())
        assert op.covers(record())
        assert not op.covers(kindergarten("1111000002"))
        assert not op.covers(record("1111000002"))
        assert not op.covers("110105")
        assert op.region_prefix is None
        assert op.list_filter() == {"kindergarten_code": "1111000001"}

    def test_levels(self) -> None:
        """County exact, city and province by prefix, ministry everything."""
        assert Operator.parse("county:110105").covers(record())
        assert not Operator.parse("county:110106").covers(record())
        assert Operator.parse("city:1101").covers(kindergarten())
        assert not Operator.parse("city:1102").covers(kindergarten())
        assert Operator.parse("province:11").covers("110105")
        assert not Operator.parse("province:12").covers("110105")
        assert Operator.parse("ministry").covers(record(region="650000"))
        assert Operator.parse("ministry").list_filter() == {"region_prefix": ""}

    def test_ensure_covers(self) -> None:
        """Outside scope raises PermissionDenied out_of_scope."""
        with pytest.raises(PermissionDenied) as info:
            Operator.parse("county:440306").ensure_covers(record())
        assert info.value.code == "out_of_scope"
        Operator.parse("county:110105").ensure_covers(record())


def test_an_operator_never_covers_a_region_outside_its_prefix() -> None:
    """For any operator and county: covered iff the county starts with the prefix."""

    @given(operators(), st.sampled_from(COUNTIES), school_codes)
    def check(op: Operator, county: str, school: str) -> None:
        prefix = op.region_prefix
        covered = op.covers_region(county)
        if prefix is None:
            assert not covered
            assert op.covers_kindergarten(kindergarten(school, county)) == (school == op.scope)
        else:
            assert covered == county.startswith(prefix)
            assert op.covers_record(record(school, county)) == covered
            assert op.covers_kindergarten(kindergarten(school, county)) == covered
        assert Operator.parse(str(op)) == op

    check()


class TestRoles:
    """The role table."""

    @pytest.mark.parametrize(
        ("action", "allowed"),
        [
            ("register", {Role.KINDERGARTEN}),
            ("approve_record", {Role.COUNTY}),
            ("verify", {Role.PROVINCE}),
            ("issue_numbers", {Role.PROVINCE, Role.MINISTRY}),
            ("request_change", {Role.KINDERGARTEN}),
            ("attendance", {Role.KINDERGARTEN}),
            ("import_kindergartens", {Role.COUNTY, Role.CITY, Role.PROVINCE, Role.MINISTRY}),
            ("roster", {Role.COUNTY}),
            ("request_transfer", {Role.KINDERGARTEN, Role.COUNTY}),
            ("decide_transfer", {Role.COUNTY}),
            ("national", {Role.MINISTRY}),
        ],
    )
    def test_table(self, action: str, allowed: set[Role]) -> None:
        """The documented rules."""
        assert set(ROLE_RULES[action]) == allowed

    def test_every_brief_action_is_known(self) -> None:
        """The actions the services use are all in the table."""
        needed = {
            "register",
            "approve_record",
            "resolve_problem",
            "verify",
            "issue_numbers",
            "request_change",
            "approve_step",
            "rollover",
            "report",
            "import_kindergartens",
            "roster",
            "attendance",
            "audit_verify",
            "export",
            "monitor",
        }
        assert needed <= ACTIONS

    def test_ensure_can(self) -> None:
        """Forbidden actions raise role_not_allowed; unknown ones are a programming error."""
        kg = Operator.parse("kindergarten:1111000001")
        ensure_can(kg, "register")
        kg.ensure_can("attendance")
        with pytest.raises(PermissionDenied) as info:
            ensure_can(kg, "approve_record")
        assert info.value.code == "role_not_allowed"
        with pytest.raises(ValueError, match="unknown action"):
            kg.can("approve_everything")
