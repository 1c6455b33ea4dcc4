"""Problem records: duplicate detection, verification mapping, due dates and resolution."""

from __future__ import annotations

from datetime import date, datetime

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from studentstatus.domain.enums import (
    ProblemKind,
    ProblemStatus,
    Sex,
    State,
    VerificationResult,
)
from studentstatus.domain.jurisdiction import Operator
from studentstatus.domain.model import Child, IdentityDocument, StatusRecord
from studentstatus.domain.policy import Policy
from studentstatus.domain.problems import (
    Candidate,
    arbitrate,
    blocks_number,
    due_date,
    find_duplicates,
    is_overdue,
    new_problem,
    problem_for_verification,
    resolve,
)
from studentstatus.errors import PermissionDenied, RuleViolations, Violation
from studentstatus.ids import DocumentType

NOW = datetime(2025, 10, 8, 9, 0)
REC = StatusRecord("r1", "c1", "1111000001", "110105", State.ACTIVE, None, date(2023, 9, 1))
KG = Operator.parse("kindergarten:1111000001")
COUNTY = Operator.parse("county:110105")
ID_A = "11010520200315002X"  # worked example of docs/reference/domain.md


def cand(rid: str, number: str | None = ID_A, **kw: object) -> Candidate:
    """A candidate row."""
    fields: dict[str, object] = {
        "record_id": rid,
        "child_id": "c" + rid,
        "name": "王小明",
        "sex": Sex.M,
        "birth_date": date(2020, 3, 15),
        "document_type": "resident" if number else None,
        "document_number": number,
        "county_code": "110105",
        "kindergarten_code": "1111000001",
    }
    fields.update(kw)
    return Candidate(**fields)  # type: ignore[arg-type]


class TestDuplicates:
    """find_duplicates."""

    def test_same_document_in_batch_and_store(self) -> None:
        """Both the new and the stored record get DUPLICATE_ID, each naming the other."""
        found = find_duplicates([cand("r2")], [cand("r1", county_code="440306")])
        assert [(f.record_id, f.kind, f.related_record_ids, f.county_code) for f in found] == [
            ("r1", ProblemKind.DUPLICATE_ID, ("r2",), "440306"),
            ("r2", ProblemKind.DUPLICATE_ID, ("r1",), "110105"),
        ]
        assert all(ID_A not in f.detail and ID_A not in repr(f) for f in found)

    def test_number_normalisation(self) -> None:
        """Lower-case x and spaces do not hide a duplicate."""
        found = find_duplicates([cand("r2", "110105 20200315 002x")], [cand("r1")])
        assert len(found) == 2

    def test_dead_records_and_store_only_clashes_are_ignored(self) -> None:
        """Cancelled records do not clash; a clash among stored records is not re-reported."""
        assert find_duplicates([cand("r2")], [cand("r1", live=False)]) == []
        assert find_duplicates([cand("r3", "440306202109010045")], [cand("r1"), cand("r2")]) == []

    def test_same_record_in_both_inputs_counts_once(self) -> None:
        """The store may already hold the candidate itself."""
        assert find_duplicates([cand("r1")], [cand("r1")]) == []

    def test_open_problems_are_not_reopened(self) -> None:
        """A record with an unresolved DUPLICATE_ID gets no second one."""
        open_one = new_problem("p1", REC, ProblemKind.DUPLICATE_ID, now=NOW)
        found = find_duplicates([cand("r2")], [cand("r1")], open_problems=[open_one])
        assert [f.record_id for f in found] == ["r2"]
        closed = attrs.evolve(open_one, status=ProblemStatus.RESOLVED)
        assert len(find_duplicates([cand("r2")], [cand("r1")], open_problems=[closed])) == 2

    def test_suspected_duplicates_only_without_documents(self) -> None:
        """Same name + sex + birth date and no document → SUSPECTED_DUPLICATE."""
        found = find_duplicates([cand("r2", None, name="王 小明")], [cand("r1", None)])
        assert {f.kind for f in found} == {ProblemKind.SUSPECTED_DUPLICATE}
        assert find_duplicates([cand("r2", None)], [cand("r1")]) == []
        assert find_duplicates([cand("r2", None, sex=Sex.F)], [cand("r1", None)]) == []
        none_doc = cand("r3", "", document_type="none")
        assert len(find_duplicates([none_doc], [cand("r1", None)])) == 2

    def test_candidate_from_entities(self) -> None:
        """Candidate.of reads the child's document and the record's liveness."""
        child = Child(
            "c1", "王小明", Sex.M, date(2020, 3, 15), IdentityDocument(DocumentType.RESIDENT, ID_A)
        )
        c = Candidate.of(child, REC)
        assert (c.document_type, c.document_number, c.live) == ("resident", ID_A, True)
        assert ID_A not in repr(c)


def test_every_shared_document_is_reported_symmetrically() -> None:
    """Generated batches: DUPLICATE_ID exactly for live records sharing a number with another."""
    numbers = st.sampled_from(["11010520200315002X", "440306202109010045", "510107201911300030"])

    @given(st.lists(st.tuples(numbers, st.booleans()), min_size=1, max_size=8))
    def check(rows: list[tuple[str, bool]]) -> None:
        batch = [cand(f"r{i}", n) for i, (n, is_new) in enumerate(rows) if is_new]
        stored = [cand(f"r{i}", n) for i, (n, is_new) in enumerate(rows) if not is_new]
        found = {f.record_id: f for f in find_duplicates(batch, stored)}
        for i, (n, _) in enumerate(rows):
            group = {f"r{j}" for j, (m, _) in enumerate(rows) if m == n}
            has_new = any(is_new for m, is_new in rows if m == n)
            rid = f"r{i}"
            if len(group) > 1 and has_new:
                assert set(found[rid].related_record_ids) == group - {rid}
            else:
                assert rid not in found

    check()


@pytest.mark.parametrize(
    ("result", "kind"),
    [
        (VerificationResult.MATCH, None),
        (VerificationResult.NOT_FOUND, ProblemKind.NOT_FOUND),
        (VerificationResult.NAME_MISMATCH, ProblemKind.NAME_MISMATCH),
        (VerificationResult.INFO_MISMATCH, ProblemKind.INFO_MISMATCH),
        (VerificationResult.DECEASED, ProblemKind.REGISTRY_DECEASED),
        (VerificationResult.CANCELLED, ProblemKind.REGISTRY_DECEASED),
    ],
)
def test_verification_mapping(result: VerificationResult, kind: ProblemKind | None) -> None:
    """Every registry answer maps to its problem."""
    assert problem_for_verification(result) is kind


class TestDueDates:
    """due_date and new_problem."""

    def test_default_is_31_july_next_year(self) -> None:
        """School year 2025 problems are due 31 July 2026."""
        assert due_date(2025) == date(2026, 7, 31)
        assert due_date(2025, attrs.evolve(Policy(), problem_due_month=6, problem_due_day=31)) == (
            date(2026, 6, 30)
        )

    def test_new_problem_takes_the_school_year_of_now(self) -> None:
        """Opened in August → previous school year; in September → the new one."""
        aug = new_problem("p", REC, ProblemKind.NOT_FOUND, now=datetime(2026, 8, 31))
        sep = new_problem("p", REC, ProblemKind.NOT_FOUND, now=datetime(2026, 9, 1))
        assert (aug.due_date, sep.due_date) == (date(2026, 7, 31), date(2027, 7, 31))
        assert (aug.county_code, aug.kindergarten_code) == ("110105", "1111000001")
        assert is_overdue(aug, date(2026, 9, 1))
        assert not is_overdue(attrs.evolve(aug, status=ProblemStatus.RESOLVED), date(2030, 1, 1))


class TestResolve:
    """Resolution actions and their rules."""

    def problem(self, kind: ProblemKind = ProblemKind.DUPLICATE_ID) -> object:
        """An open problem."""
        return new_problem("p1", REC, kind, now=NOW, related_record_ids=["r9"])

    def test_evidence_then_accept(self) -> None:
        """Evidence moves to EVIDENCE_SUBMITTED; the county accepts → RESOLVED."""
        p = new_problem("p1", REC, ProblemKind.NAME_MISMATCH, now=NOW)
        p = resolve(p, "evidence", KG, "户口簿", NOW, evidence=["doc:1", " "])
        assert (p.status, p.evidence) == (ProblemStatus.EVIDENCE_SUBMITTED, ("doc:1",))
        p = resolve(p, "evidence", KG, "补充", NOW, evidence=["doc:2", "doc:1"])
        assert p.evidence == ("doc:1", "doc:2")
        done = resolve(p, "accept", COUNTY, "属实", NOW)
        assert (done.status, done.resolved_by, done.resolved_at) == (
            ProblemStatus.RESOLVED,
            "county:110105",
            NOW,
        )
        assert not blocks_number([done])

    def test_reopen_returns_to_open(self) -> None:
        """The county can send evidence back."""
        p = new_problem("p1", REC, ProblemKind.NOT_FOUND, now=NOW)
        p = resolve(p, "evidence", KG, "户口簿", NOW, evidence=["doc:1"])
        back = resolve(p, "reopen", COUNTY, "不清晰", NOW)
        assert back.status is ProblemStatus.OPEN
        assert "不清晰" in back.detail
        assert blocks_number([back])

    def test_all_violations_at_once(self) -> None:
        """No reason, no evidence: both reported together."""
        p = new_problem("p1", REC, ProblemKind.NOT_FOUND, now=NOW)
        with pytest.raises(RuleViolations) as info:
            resolve(p, "evidence", KG, "", NOW)
        assert [v.code for v in info.value.violations] == ["reason_required", "evidence_required"]

    def test_resolved_problems_are_closed(self) -> None:
        """Nothing more happens to a RESOLVED problem."""
        p = resolve(
            new_problem("p1", REC, ProblemKind.NOT_FOUND, now=NOW), "delete", KG, "错录", NOW
        )
        assert p.status is ProblemStatus.RESOLVED
        assert p.resolution == "delete: 错录"
        with pytest.raises(RuleViolations) as info:
            resolve(p, "correct", KG, "again", NOW)
        assert info.value.violations[0].code == "problem_closed"

    def test_accept_needs_evidence_first(self) -> None:
        """accept/reopen only from EVIDENCE_SUBMITTED."""
        p = new_problem("p1", REC, ProblemKind.NOT_FOUND, now=NOW)
        with pytest.raises(RuleViolations) as info:
            resolve(p, "accept", COUNTY, "ok", NOW)
        assert info.value.code == "wrong_problem_status"

    def test_correct_carries_the_recheck(self) -> None:
        """A correction that still fails its re-check does not resolve."""
        p = new_problem("p1", REC, ProblemKind.INFO_MISMATCH, now=NOW)
        still = Violation("checksum", "id_number", "校验位错误", "the check digit is wrong")
        with pytest.raises(RuleViolations) as info:
            resolve(p, "correct", KG, "改正出生日期", NOW, recheck=[still])
        assert [v.code for v in info.value.violations] == ["checksum"]
        assert resolve(p, "correct", KG, "改正出生日期", NOW).status is ProblemStatus.RESOLVED

    def test_arbitration_only_for_duplicates_and_only_by_the_county(self) -> None:
        """Arbitration is the county's, for duplicate problems."""
        dup = new_problem("p1", REC, ProblemKind.DUPLICATE_ID, now=NOW)
        with pytest.raises(PermissionDenied) as info:
            resolve(dup, "arbitrate", KG, "保留", NOW)
        assert info.value.code == "not_problem_handler"
        assert resolve(dup, "arbitrate", COUNTY, "保留r1", NOW).status is ProblemStatus.RESOLVED
        other = new_problem("p2", REC, ProblemKind.NOT_FOUND, now=NOW)
        with pytest.raises(RuleViolations) as info2:
            resolve(other, "arbitrate", COUNTY, "x", NOW)
        assert info2.value.code == "arbitration_not_applicable"

    @pytest.mark.parametrize(
        "who", ["kindergarten:1111000002", "county:110106", "city:1101", "ministry"]
    )
    def test_out_of_scope_operators(self, who: str) -> None:
        """Only the problem's kindergarten and county may act."""
        p = new_problem("p1", REC, ProblemKind.NOT_FOUND, now=NOW)
        with pytest.raises(PermissionDenied):
            resolve(p, "delete", Operator.parse(who), "x", NOW)

    def test_unknown_action(self) -> None:
        """Unknown actions are a violation with the list of known ones as hint."""
        p = new_problem("p1", REC, ProblemKind.NOT_FOUND, now=NOW)
        with pytest.raises(RuleViolations) as info:
            resolve(p, "ignore", COUNTY, "x", NOW)
        assert info.value.violations[0].code == "unknown_action"
        assert "evidence" in info.value.violations[0].hint


class TestArbitrate:
    """arbitrate."""

    def test_winner_keeps_the_others_are_cancelled(self) -> None:
        """A three-way duplicate."""
        a = new_problem(
            "p1", REC, ProblemKind.DUPLICATE_ID, now=NOW, related_record_ids=["r2", "r3"]
        )
        b = attrs.evolve(a, id="p2", record_id="r2", related_record_ids=("r1", "r3"))
        result = arbitrate([a, b], "r2")
        assert (result.keep, result.cancel, result.problem_ids) == (
            "r2",
            ("r1", "r3"),
            ("p1", "p2"),
        )

    def test_violations(self) -> None:
        """Outsider winner, non-duplicate problems and empty input are refused."""
        a = new_problem("p1", REC, ProblemKind.DUPLICATE_ID, now=NOW, related_record_ids=["r2"])
        with pytest.raises(RuleViolations) as info:
            arbitrate([a], "r7")
        assert info.value.code == "winner_not_involved"
        bad = new_problem("p2", REC, ProblemKind.NOT_FOUND, now=NOW)
        with pytest.raises(RuleViolations) as info:
            arbitrate([bad], "r1")
        assert info.value.code == "arbitration_not_applicable"
        with pytest.raises(RuleViolations) as info:
            arbitrate([], "r1")
        assert info.value.code == "nothing_to_arbitrate"


def test_blocks_number() -> None:
    """Any unresolved problem blocks; none or all resolved do not."""
    p = new_problem("p1", REC, ProblemKind.NOT_FOUND, now=NOW)
    assert not blocks_number([])
    assert blocks_number([p])
    assert blocks_number([attrs.evolve(p, status=ProblemStatus.EVIDENCE_SUBMITTED)])
    assert not blocks_number([attrs.evolve(p, status=ProblemStatus.RESOLVED)])
