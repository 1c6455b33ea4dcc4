"""Problem records (问题学籍): detection in intake batches, due dates and resolution rules.

Detection is pure: the service loads the candidates of a batch and the live
records the store already holds with the same document numbers or the same
name + sex + birth date, and :func:`find_duplicates` says which records get
which problem:

* ``DUPLICATE_ID`` — the same document (type and number) in two or more live
  records: **every** record involved gets one, the stored one included
  (一人一籍 is restored by resolving them, usually by arbitration);
* ``SUSPECTED_DUPLICATE`` — records *without* a document and with the same
  name, sex and birth date (疑似重复).

Verification answers map to problems with :func:`problem_for_verification`.
A problem is due by 31 July after its school year (:func:`due_date`, policy
settings ``problem_due_month``/``problem_due_day``).

Resolution (:func:`resolve`; docs/reference/domain.md#problem-records):

===============  ==========================  ==========================  ===================
action           who                         from                        to
===============  ==========================  ==========================  ===================
``evidence``     the kindergarten or county  OPEN, EVIDENCE_SUBMITTED    EVIDENCE_SUBMITTED
``accept``       the county                  EVIDENCE_SUBMITTED          RESOLVED
``reopen``       the county                  EVIDENCE_SUBMITTED          OPEN
``correct``      the kindergarten or county  OPEN, EVIDENCE_SUBMITTED    RESOLVED
``delete``       the kindergarten or county  OPEN, EVIDENCE_SUBMITTED    RESOLVED
``arbitrate``    the county (duplicates)     OPEN, EVIDENCE_SUBMITTED    RESOLVED
===============  ==========================  ==========================  ===================

Every action needs a reason; ``evidence`` needs evidence references;
``correct`` carries the violations of re-checking the corrected data (it
resolves only when there are none).  All unmet rules are reported at once.
A record gets no national number while any of its problems is not RESOLVED
(:func:`blocks_number`).

**Every resolution leads somewhere.**  :func:`outcome` says what an action
does to the *record* (the table :data:`OUTCOMES`, written out in
``docs/concepts/problems.md``): accepted evidence for ``NOT_FOUND``,
``NAME_MISMATCH`` and ``INFO_MISMATCH`` confirms the identity
(``VerificationResult.CONFIRMED``, then a G number); ``correct`` re-verifies;
``delete`` cancels; ``arbitrate`` leaves one live record of a duplicate group.
``accept`` is refused (``accept_not_applicable``) where accepting would leave
the child without a way to a number: a duplicated ID (arbitrate, correct or
delete), an invalid ID (correct or delete) and a registry death or
cancellation (correct or delete).  :data:`NEXT_STEPS` names, for every reason
a record has no national number yet, the next step and who takes it.

>>> from datetime import date
>>> from studentstatus.domain.enums import Sex
>>> a = Candidate("r1", "c1", "王小明", Sex.M, date(2020, 3, 15), "resident",
...               "11010520200315001X", "110105", "1111000001")
>>> b = Candidate("r9", "c9", "王晓明", Sex.M, date(2020, 3, 15), "resident",
...               "11010520200315001X", "440306", "4444000001")
>>> [(f.record_id, f.kind.value, f.related_record_ids) for f in find_duplicates([a], [b])]
[('r1', 'DUPLICATE_ID', ('r9',)), ('r9', 'DUPLICATE_ID', ('r1',))]
>>> "11010520200315001X" in find_duplicates([a], [b])[0].detail
False
"""

from __future__ import annotations

import calendar as _calendar
import unicodedata
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from typing import Literal

import attrs

from studentstatus.domain.age import school_year_of
from studentstatus.domain.enums import (
    ProblemKind,
    ProblemStatus,
    Role,
    Sex,
    State,
    VerificationResult,
)
from studentstatus.domain.jurisdiction import Operator
from studentstatus.domain.model import Child, ProblemRecord, StatusRecord
from studentstatus.domain.policy import Policy
from studentstatus.errors import PermissionDenied, RuleViolations, Violation, mask

__all__ = [
    "ACTIONS",
    "CONFIRMING_KINDS",
    "NEXT_STEPS",
    "OUTCOMES",
    "Action",
    "Arbitration",
    "Candidate",
    "Finding",
    "NextStep",
    "Outcome",
    "arbitrate",
    "blocks_number",
    "declares_another_child",
    "due_date",
    "find_duplicates",
    "is_overdue",
    "new_problem",
    "next_step",
    "normalise_name",
    "outcome",
    "problem_for_verification",
    "resolve",
]

Action = Literal["evidence", "accept", "reopen", "correct", "delete", "arbitrate"]
"""Resolution actions (佐证, 审核通过, 退回, 变更, 删除, 仲裁)."""

ACTIONS: tuple[str, ...] = ("evidence", "accept", "reopen", "correct", "delete", "arbitrate")
"""Every action :func:`resolve` knows."""

_DUPLICATE_KINDS = frozenset({ProblemKind.DUPLICATE_ID, ProblemKind.SUSPECTED_DUPLICATE})

CONFIRMING_KINDS: frozenset[ProblemKind] = frozenset(
    {ProblemKind.NOT_FOUND, ProblemKind.NAME_MISMATCH, ProblemKind.INFO_MISMATCH}
)
"""Kinds whose accepted evidence confirms the identity (``VerificationResult.CONFIRMED``)."""

Outcome = Literal["wait", "return", "confirm", "close", "reverify", "cancel", "keep_one"]
"""What a resolution action does to the record (see :data:`OUTCOMES`):

* ``wait`` — nothing yet: the problem waits for the county (EVIDENCE_SUBMITTED);
* ``return`` — nothing: the problem goes back to OPEN;
* ``confirm`` — the record's verification becomes ``CONFIRMED`` (G number next);
* ``close`` — nothing: the problem is closed as unfounded (a suspected duplicate
  that is another child);
* ``reverify`` — the corrected child is checked again and, with a registry,
  re-verified (its answer replaces the old one; a non-match opens its problem);
  without a registry the old answer is cleared, so the next ``verify`` asks;
* ``cancel`` — the record is cancelled (CANCEL, a terminal state);
* ``keep_one`` — the winner keeps its record, every other record of the
  duplicate group is cancelled.
"""


def _outcomes() -> dict[tuple[ProblemKind, str], Outcome]:
    table: dict[tuple[ProblemKind, str], Outcome] = {}
    for kind in ProblemKind:
        table[(kind, "evidence")] = "wait"
        table[(kind, "reopen")] = "return"
        table[(kind, "correct")] = "reverify"
        table[(kind, "delete")] = "cancel"
        if kind in CONFIRMING_KINDS:
            table[(kind, "accept")] = "confirm"
        if kind is ProblemKind.SUSPECTED_DUPLICATE:
            table[(kind, "accept")] = "close"
        if kind in _DUPLICATE_KINDS:
            table[(kind, "arbitrate")] = "keep_one"
    return table


OUTCOMES: dict[tuple[ProblemKind, str], Outcome] = _outcomes()
"""(problem kind, action) → what it does to the record; a pair not here is refused."""


def outcome(kind: ProblemKind, action: str) -> Outcome | None:
    """What ``action`` on a problem of ``kind`` does to the record, ``None`` if not allowed.

    >>> outcome(ProblemKind.NOT_FOUND, "accept"), outcome(ProblemKind.DUPLICATE_ID, "accept")
    ('confirm', None)
    >>> outcome(ProblemKind.SUSPECTED_DUPLICATE, "arbitrate"), outcome(ProblemKind.INVALID_ID,
    ...                                                               "correct")
    ('keep_one', 'reverify')
    """
    return OUTCOMES.get((kind, action))


@attrs.frozen
class NextStep:
    """Why a record has no national number yet, the next step, and who takes it.

    ``who`` is a role value (``kindergarten``, ``county``, ``province``,
    ``ministry``) or ``"none"`` when nothing is left to do.

    >>> s = NEXT_STEPS["not_verified"]
    >>> s.who, s.step_en
    ('province', 'the province runs public-security verification (verify)')
    """

    reason: str
    label_zh: str
    label_en: str
    who: str
    step_zh: str
    step_en: str
    terminal: bool = False

    def to_dict(self) -> dict[str, str | bool]:
        """JSON-ready form.

        >>> sorted(NEXT_STEPS["ready"].to_dict())
        ['label_en', 'label_zh', 'reason', 'step_en', 'step_zh', 'terminal', 'who']
        """
        return attrs.asdict(self)


_STEPS = (
    NextStep(
        "ready", "待发学籍号", "ready for a national number", "province",
        "省级运行发放全国学籍号（issue-numbers）",
        "the province runs issue-numbers",
    ),
    NextStep(
        "pending_approval", "待县级核准", "waiting for approval", "county",
        "县级教育行政部门核准（approve）",
        "the county approves the record (approve)",
    ),
    NextStep(
        "open_problem", "问题学籍待处理", "open problem", "kindergarten",
        "幼儿园提交佐证、更正信息或删除学籍，县级可仲裁重复学籍（resolve-problem）",
        "the kindergarten submits evidence, corrects or deletes; the county may arbitrate "
        "duplicates (resolve-problem)",
    ),
    NextStep(
        "evidence_submitted", "佐证待县级审核", "evidence waiting for the county", "county",
        "县级教育行政部门审核佐证：通过或退回（resolve-problem accept/reopen）",
        "the county accepts or returns the evidence (resolve-problem accept/reopen)",
    ),
    NextStep(
        "not_verified", "待公安比对", "not yet verified", "province",
        "省级运行公安部身份比对（verify）",
        "the province runs public-security verification (verify)",
    ),
    NextStep(
        "not_confirmed", "无身份证件待县级确认", "no resident ID, not confirmed", "county",
        "县级教育行政部门核实幼儿身份：核准时确认，已核准的由县级更正身份信息",
        "the county confirms the child: at approval, or by a county-made correction",
    ),
    NextStep(
        "invalid_id", "身份证件号错误", "invalid ID number", "kindergarten",
        "幼儿园按户口簿更正身份证件号（resolve-problem correct）",
        "the kindergarten corrects the ID number from the household register",
    ),
    NextStep(
        "number_taken", "学籍号已被占用", "number already issued to another record", "county",
        "该身份证号的学籍号已发给另一条（已注销的）学籍：县级恢复原学籍（信息恢复）并删除本条",
        "the ID's G number belongs to an earlier (cancelled) record: the county restores "
        "that record (RESTORE) and deletes this one",
        terminal=True,
    ),
    NextStep(
        "sequence_exhausted", "J号序号用尽", "J sequence exhausted", "ministry",
        "同一地区同一出生日期已发999个J号：报教育部处理",
        "999 J numbers already issued for this region and birth date: refer to the ministry",
        terminal=True,
    ),
    NextStep(
        "not_active", "非在籍状态", "not on roll", "kindergarten",
        "复学或回国（境）后发号（RESUME/RETURN）",
        "numbered once the child is back on roll (RESUME/RETURN)",
    ),
    NextStep(
        "no_child", "幼儿信息缺失", "child data missing", "ministry",
        "数据不一致：运行审计校验并修复（audit verify）",
        "inconsistent data: run audit verify and repair",
        terminal=True,
    ),
    NextStep(
        "out_of_scope", "不在发号范围", "outside the operator's scope", "province",
        "由学籍所在省发号",
        "the record's own province issues its number",
    ),
    NextStep(
        "already_issued", "已有学籍号", "already numbered", "none",
        "无需处理", "nothing to do", terminal=True,
    ),
)  # fmt: skip

NEXT_STEPS: dict[str, NextStep] = {s.reason: s for s in _STEPS}
"""Every reason a record has no national number (``issue-numbers`` skips, ``stuck`` groups)."""


def next_step(reason: str) -> NextStep:
    """The :class:`NextStep` of a skip reason (an unknown reason gets a generic one).

    >>> next_step("open_problem").who
    'kindergarten'
    >>> next_step("something_new").who
    'province'
    """
    found = NEXT_STEPS.get(reason)
    if found is not None:
        return found
    return NextStep(reason, reason, reason, "province", "联系省级学籍管理员", "ask the province")


_DOTS = str.maketrans({"•": "·", "‧": "·", "・": "·", "．": "·", ".": "·"})


def normalise_name(name: str) -> str:
    """A name for comparison: NFKC, no whitespace, one kind of middle dot.

    >>> normalise_name(" 阿卜杜拉 • 买买提 ") == normalise_name("阿卜杜拉·买买提")
    True
    """
    text = unicodedata.normalize("NFKC", name).translate(_DOTS)
    return "".join(text.split())


def _doc_type(value: object) -> str:
    text = str(getattr(value, "value", value) or "")
    return text.strip().lower()


@attrs.frozen
class Candidate:
    """One record as duplicate detection sees it (a batch row or a stored live record).

    ``document_number`` is compared upper-cased without spaces; a record with
    no number (or document type ``none``) takes part in the suspected-duplicate
    check instead.  ``repr`` masks the number.

    >>> c = Candidate("r1", "c1", "王小明", Sex.M, date(2020, 3, 15), "resident",
    ...               "11010520200315002x", "110105", "1111000001")
    >>> c.document_key
    ('resident', '11010520200315002X')
    >>> "11010520200315002" in repr(c)
    False
    """

    record_id: str
    child_id: str
    name: str
    sex: Sex
    birth_date: date
    document_type: str | None
    document_number: str | None = attrs.field(
        repr=lambda n: repr(mask(n) if n is not None else None)
    )
    county_code: str
    kindergarten_code: str
    live: bool = True

    @classmethod
    def of(cls, child: Child, record: StatusRecord) -> Candidate:
        """Build from a child and one of its records (``live`` from the record's state).

        >>> from studentstatus.domain.enums import State
        >>> child = Child("c1", "王小明", Sex.M, date(2020, 3, 15))
        >>> rec = StatusRecord("r1", "c1", "1111000001", "110105", State.CANCELLED, None,
        ...                    date(2023, 9, 1))
        >>> Candidate.of(child, rec).live, Candidate.of(child, rec).document_number
        (False, None)
        """
        doc = child.document
        return cls(
            record_id=record.id,
            child_id=child.id,
            name=child.name,
            sex=child.sex,
            birth_date=child.birth_date,
            document_type=_doc_type(doc.type) if doc is not None else None,
            document_number=doc.number if doc is not None else None,
            county_code=record.region_code,
            kindergarten_code=record.kindergarten_code,
            live=record.state.is_live,
        )

    @property
    def document_key(self) -> tuple[str, str] | None:
        """``(type, number)`` compared for DUPLICATE_ID, or ``None`` without a document.

        >>> Candidate("r1", "c1", "李华", Sex.F, date(2021, 1, 2), "none", "", "1", "k"
        ...           ).document_key is None
        True
        """
        number = "".join((self.document_number or "").split()).upper()
        kind = _doc_type(self.document_type)
        if not number or kind == "none":
            return None
        return (kind, number)

    @property
    def identity_key(self) -> tuple[str, Sex, date]:
        """``(name, sex, birth date)`` compared for SUSPECTED_DUPLICATE.

        >>> Candidate("r1", "c1", " 李 华", Sex.F, date(2021, 1, 2), None, None, "1", "k"
        ...           ).identity_key
        ('李华', <Sex.F: 'F'>, datetime.date(2021, 1, 2))
        """
        return (normalise_name(self.name), self.sex, self.birth_date)


@attrs.frozen
class Finding:
    """A problem to open: which record, which kind, and the records it clashes with.

    ``detail`` is human-readable and masks document numbers.

    >>> Finding("r1", ProblemKind.DUPLICATE_ID, ("r2",), "110105", "1111000001").kind.label_zh
    '身份证件号重复'
    """

    record_id: str
    kind: ProblemKind
    related_record_ids: tuple[str, ...]
    county_code: str
    kindergarten_code: str
    detail: str = ""


def find_duplicates(
    candidates: Iterable[Candidate],
    existing: Iterable[Candidate] = (),
    *,
    open_problems: Iterable[ProblemRecord] = (),
) -> list[Finding]:
    """Duplicate problems for a batch, against each other and the stored live records.

    A group is reported only if it contains at least one candidate (stored
    clashes found earlier are not reported again).  Records that already
    have an unresolved problem of the same kind (``open_problems``) get no
    second finding.  Records that are not live are ignored; a record id
    present in both inputs counts once (the candidate wins).  The result is
    sorted by record id and kind.

    >>> from studentstatus.domain.enums import Sex
    >>> x = Candidate("r1", "c1", "李华", Sex.F, date(2021, 1, 2), None, None, "110105", "k1")
    >>> y = Candidate("r2", "c2", "李 华", Sex.F, date(2021, 1, 2), "none", "", "110105", "k2")
    >>> [(f.record_id, f.kind.value) for f in find_duplicates([x, y])]
    [('r1', 'SUSPECTED_DUPLICATE'), ('r2', 'SUSPECTED_DUPLICATE')]
    """
    rows: dict[str, tuple[Candidate, bool]] = {}
    for c in existing:
        if c.live:
            rows[c.record_id] = (c, False)
    for c in candidates:
        rows[c.record_id] = (c, True)

    by_doc: dict[tuple[str, str], list[tuple[Candidate, bool]]] = defaultdict(list)
    by_identity: dict[tuple[str, Sex, date], list[tuple[Candidate, bool]]] = defaultdict(list)
    for row in rows.values():
        key = row[0].document_key
        if key is not None:
            by_doc[key].append(row)
        else:
            by_identity[row[0].identity_key].append(row)

    already = {
        (p.record_id, p.kind) for p in open_problems if p.status is not ProblemStatus.RESOLVED
    }
    findings: list[Finding] = []

    def report(group: list[tuple[Candidate, bool]], kind: ProblemKind, what: str) -> None:
        if len(group) < 2 or not any(is_new for _, is_new in group):
            return
        ids = sorted(c.record_id for c, _ in group)
        for c, _ in group:
            if (c.record_id, kind) in already:
                continue
            others = tuple(i for i in ids if i != c.record_id)
            findings.append(
                Finding(
                    c.record_id,
                    kind,
                    others,
                    c.county_code,
                    c.kindergarten_code,
                    f"{what} also in record(s) {', '.join(others)}",
                )
            )

    for (kind_text, number), group in by_doc.items():
        report(group, ProblemKind.DUPLICATE_ID, f"{kind_text} document {mask(number)}")
    for (_, sex, born), group in by_identity.items():
        report(
            group,
            ProblemKind.SUSPECTED_DUPLICATE,
            f"no document; same name, sex {sex.value} and birth date {born.isoformat()}",
        )
    findings.sort(key=lambda f: (f.record_id, f.kind.value))
    return findings


_VERIFICATION_PROBLEMS = {
    VerificationResult.MATCH: None,
    VerificationResult.NOT_FOUND: ProblemKind.NOT_FOUND,
    VerificationResult.NAME_MISMATCH: ProblemKind.NAME_MISMATCH,
    VerificationResult.INFO_MISMATCH: ProblemKind.INFO_MISMATCH,
    VerificationResult.DECEASED: ProblemKind.REGISTRY_DECEASED,
    VerificationResult.CANCELLED: ProblemKind.REGISTRY_DECEASED,
    VerificationResult.CONFIRMED: None,
}


def problem_for_verification(result: VerificationResult) -> ProblemKind | None:
    """The problem a population-registry answer opens (``None`` for a match).

    >>> problem_for_verification(VerificationResult.MATCH) is None
    True
    >>> problem_for_verification(VerificationResult.CANCELLED)
    <ProblemKind.REGISTRY_DECEASED: 'REGISTRY_DECEASED'>
    """
    return _VERIFICATION_PROBLEMS[result]


def due_date(school_year: int, policy: Policy | None = None) -> date:
    """The day problems of ``school_year`` must be resolved by (31 July of ``school_year + 1``).

    A configured day past the month's end is moved to its last day.

    >>> due_date(2025)
    datetime.date(2026, 7, 31)
    >>> import attrs
    >>> due_date(2026, attrs.evolve(Policy(), problem_due_month=2, problem_due_day=29))
    datetime.date(2027, 2, 28)
    """
    p = policy if policy is not None else Policy()
    year = school_year + 1
    last = _calendar.monthrange(year, p.problem_due_month)[1]
    return date(year, p.problem_due_month, min(p.problem_due_day, last))


def is_overdue(problem: ProblemRecord, today: date) -> bool:
    """Whether an unresolved problem is past its due date (due today is not late).

    >>> p = new_problem("p1", _demo_record(), ProblemKind.NOT_FOUND, now=datetime(2025, 9, 1))
    >>> is_overdue(p, date(2026, 7, 31)), is_overdue(p, date(2026, 8, 1))
    (False, True)
    """
    return problem.status is not ProblemStatus.RESOLVED and today > problem.due_date


def new_problem(
    problem_id: str,
    record: StatusRecord,
    kind: ProblemKind,
    *,
    now: datetime,
    policy: Policy | None = None,
    detail: str = "",
    related_record_ids: Sequence[str] = (),
) -> ProblemRecord:
    """An OPEN problem for ``record``, handed to its county, due per :func:`due_date`.

    The school year is the one ``now`` falls in (September to August).

    >>> p = new_problem("p1", _demo_record(), ProblemKind.DUPLICATE_ID,
    ...                 now=datetime(2026, 3, 1), related_record_ids=["r9"])
    >>> p.county_code, p.status.value, p.due_date, p.related_record_ids
    ('110105', 'OPEN', datetime.date(2026, 7, 31), ('r9',))
    """
    return ProblemRecord(
        id=problem_id,
        record_id=record.id,
        kind=kind,
        county_code=record.region_code,
        kindergarten_code=record.kindergarten_code,
        opened_at=now,
        due_date=due_date(school_year_of(now.date()), policy),
        detail=detail,
        related_record_ids=tuple(related_record_ids),
    )


def _v(code: str, field: str, zh: str, en: str, hint: str = "") -> Violation:
    return Violation(code, field, zh, en, hint)


def _ensure_operator(problem: ProblemRecord, operator: Operator, action: str) -> None:
    county_only = action in ("accept", "reopen", "arbitrate")
    if operator.role is Role.COUNTY and operator.scope == problem.county_code:
        return
    if (
        not county_only
        and operator.role is Role.KINDERGARTEN
        and operator.scope == problem.kindergarten_code
    ):
        return
    who = "its county" if county_only else "its kindergarten or county"
    raise PermissionDenied(
        str(operator), f"problem {problem.id} ({action}: only {who})", code="not_problem_handler"
    )


def resolve(
    problem: ProblemRecord,
    action: str,
    operator: Operator,
    reason: str,
    now: datetime,
    *,
    evidence: Sequence[str] = (),
    recheck: Sequence[Violation] = (),
) -> ProblemRecord:
    """Apply a resolution action (see the module table) and return the updated problem.

    Raises :class:`~studentstatus.errors.PermissionDenied` (``not_problem_handler``)
    for the wrong operator, else :class:`~studentstatus.errors.RuleViolations`
    with every unmet rule: ``unknown_action``, ``problem_closed``,
    ``wrong_problem_status``, ``reason_required``, ``evidence_required``,
    ``arbitration_not_applicable``, and for ``correct`` the ``recheck``
    violations of the corrected data.

    >>> p = new_problem("p1", _demo_record(), ProblemKind.NOT_FOUND, now=datetime(2025, 9, 1))
    >>> kg = Operator.parse("kindergarten:1111000001")
    >>> p2 = resolve(p, "evidence", kg, "户口簿", datetime(2025, 9, 2), evidence=["file:1"])
    >>> p2.status.value, p2.evidence
    ('EVIDENCE_SUBMITTED', ('file:1',))
    >>> p3 = resolve(p2, "accept", Operator.parse("county:110105"), "核实无误",
    ...              datetime(2025, 9, 3))
    >>> p3.status.value, p3.resolution, p3.resolved_by
    ('RESOLVED', 'accept: 核实无误', 'county:110105')
    >>> resolve(p, "evidence", kg, "", datetime(2025, 9, 2))
    Traceback (most recent call last):
    ...
    studentstatus.errors.RuleViolations: reason_required [reason]: ...
    """
    if action not in ACTIONS:
        raise RuleViolations(
            [
                _v(
                    "unknown_action",
                    "action",
                    f"未知的处理方式：{action[:20]}",
                    f"unknown action {action[:20]!r}",
                    hint=", ".join(ACTIONS),
                )
            ]
        )
    _ensure_operator(problem, operator, action)
    problems: list[Violation] = []
    if problem.status is ProblemStatus.RESOLVED:
        problems.append(
            _v("problem_closed", "status", "问题学籍已处理", "the problem is already resolved")
        )
    elif action in ("accept", "reopen") and problem.status is not ProblemStatus.EVIDENCE_SUBMITTED:
        problems.append(
            _v(
                "wrong_problem_status",
                "status",
                "尚未提交佐证材料",
                "no evidence has been submitted to accept or return",
            )
        )
    if not reason.strip():
        problems.append(_v("reason_required", "reason", "须填写处理理由", "a reason is required"))
    clean_evidence = tuple(e.strip() for e in evidence if e.strip())
    if action == "evidence" and not clean_evidence:
        problems.append(
            _v(
                "evidence_required",
                "evidence",
                "佐证须附证明材料",
                "evidence needs at least one document reference",
            )
        )
    if action == "accept" and outcome(problem.kind, action) is None:
        problems.append(
            _v(
                "accept_not_applicable",
                "kind",
                "该类问题学籍不能以佐证通过，须更正、删除或仲裁",
                "this kind of problem is not resolved by accepting evidence: "
                "correct, delete or arbitrate",
                hint="correct, delete"
                + (", arbitrate" if problem.kind in _DUPLICATE_KINDS else ""),
            )
        )
    if action == "arbitrate" and problem.kind not in _DUPLICATE_KINDS:
        problems.append(
            _v(
                "arbitration_not_applicable",
                "kind",
                "仅重复学籍可仲裁",
                "only duplicate problems are arbitrated",
            )
        )
    if action == "correct":
        problems.extend(recheck)
    if problems:
        raise RuleViolations(problems)

    merged = problem.evidence + tuple(e for e in clean_evidence if e not in problem.evidence)
    if action == "evidence":
        return attrs.evolve(problem, status=ProblemStatus.EVIDENCE_SUBMITTED, evidence=merged)
    if action == "reopen":
        return attrs.evolve(
            problem, status=ProblemStatus.OPEN, detail=_append(problem.detail, reason)
        )
    return attrs.evolve(
        problem,
        status=ProblemStatus.RESOLVED,
        evidence=merged,
        resolution=f"{action}: {reason.strip()}",
        resolved_by=str(operator),
        resolved_at=now,
    )


def _append(detail: str, note: str) -> str:
    note = f"returned: {note.strip()}"
    return f"{detail}; {note}" if detail else note


@attrs.frozen
class Arbitration:
    """Outcome of an arbitration: the record that keeps its status and those cancelled.

    >>> Arbitration("r1", ("r2",), ("p1",)).cancel
    ('r2',)
    """

    keep: str
    cancel: tuple[str, ...]
    problem_ids: tuple[str, ...]


def arbitrate(
    problems: Iterable[ProblemRecord],
    winner_record_id: str,
    *,
    numbered: Iterable[str] = (),
    duplicates: Iterable[str] | None = None,
) -> Arbitration:
    """Decide a duplicate group: ``winner_record_id`` keeps, every other record is cancelled.

    ``problems`` are the duplicate problems of one group (their records and
    related records form the group).  ``numbered`` are the group's records
    that already hold a national number: when there is one, the winner must
    be one of them (``winner_not_numbered``) — numbers are never reused, so
    cancelling the numbered record would leave the child without one.
    ``duplicates`` (when known) are the records that duplicate the problem's
    record *now*, it included: a record of the group corrected since is no
    duplicate any more, and keeping it would decide nothing
    (``winner_not_duplicate``).  Raises
    :class:`~studentstatus.errors.RuleViolations` (``winner_not_involved``,
    ``winner_not_duplicate``, ``winner_not_numbered``,
    ``arbitration_not_applicable``, ``nothing_to_arbitrate``).

    >>> r = _demo_record()
    >>> a = new_problem("p1", r, ProblemKind.DUPLICATE_ID, now=datetime(2025, 9, 1),
    ...                 related_record_ids=["r9"])
    >>> arbitrate([a], "r9")
    Arbitration(keep='r9', cancel=('r1',), problem_ids=('p1',))
    >>> arbitrate([a], "r9", numbered=["r1"])
    Traceback (most recent call last):
    ...
    studentstatus.errors.RuleViolations: winner_not_numbered [winner_record_id]: ...
    >>> arbitrate([a], "r9", duplicates=["r1"])
    Traceback (most recent call last):
    ...
    studentstatus.errors.RuleViolations: winner_not_duplicate [winner_record_id]: ...
    """
    items = list(problems)
    violations: list[Violation] = []
    if not items:
        violations.append(
            _v("nothing_to_arbitrate", "problems", "没有需要仲裁的问题", "no problems given")
        )
    if any(p.kind not in _DUPLICATE_KINDS for p in items):
        violations.append(
            _v(
                "arbitration_not_applicable",
                "kind",
                "仅重复学籍可仲裁",
                "only duplicate problems are arbitrated",
            )
        )
    records = {p.record_id for p in items} | {r for p in items for r in p.related_record_ids}
    if items and winner_record_id not in records:
        violations.append(
            _v(
                "winner_not_involved",
                "winner_record_id",
                "保留的学籍不在重复组内",
                "the record to keep is not part of the duplicate group",
            )
        )
    current = set(duplicates) if duplicates is not None else None
    if items and current is not None and winner_record_id in records - current:
        violations.append(
            _v(
                "winner_not_duplicate",
                "winner_record_id",
                "保留的学籍已不再与该学籍重复",
                "the record to keep no longer duplicates this record (it was corrected)",
                hint=", ".join(sorted(current)),
            )
        )
    held = set(numbered) & (records | (current or set()))
    if items and held and winner_record_id in records and winner_record_id not in held:
        violations.append(
            _v(
                "winner_not_numbered",
                "winner_record_id",
                "须保留已有全国学籍号的学籍",
                "keep the record that already holds a national number",
                hint=", ".join(sorted(held)),
            )
        )
    if violations:
        raise RuleViolations(violations)
    return Arbitration(
        keep=winner_record_id,
        cancel=tuple(sorted(records - {winner_record_id})),
        problem_ids=tuple(sorted(p.id for p in items)),
    )


def declares_another_child(problem: ProblemRecord) -> bool:
    """Whether ``problem`` records the county's decision that its record is another child
    than each of its related records: a suspected duplicate resolved by ``accept``.

    An arbitration of a later suspected duplicate keeps to that decision: a record the
    county declared another child than the winner is neither cancelled nor counted.

    >>> p = new_problem("p1", _demo_record(), ProblemKind.SUSPECTED_DUPLICATE,
    ...                 now=datetime(2025, 9, 1), related_record_ids=["r9"])
    >>> declares_another_child(p)
    False
    >>> declares_another_child(attrs.evolve(p, status=ProblemStatus.RESOLVED,
    ...                                     resolution="accept: 双胞胎，不是同一人"))
    True
    >>> declares_another_child(attrs.evolve(p, status=ProblemStatus.RESOLVED,
    ...                                     resolution="arbitrate: 仲裁"))
    False
    """
    return (
        problem.kind is ProblemKind.SUSPECTED_DUPLICATE
        and problem.status is ProblemStatus.RESOLVED
        and (problem.resolution or "").startswith("accept:")
    )


def blocks_number(problems: Iterable[ProblemRecord]) -> bool:
    """Whether any problem is not RESOLVED (then the record gets no national number).

    >>> blocks_number([]), blocks_number([_demo_problem()])
    (False, True)
    """
    return any(p.status is not ProblemStatus.RESOLVED for p in problems)


def _demo_record() -> StatusRecord:
    """A record for the examples in this module."""
    return StatusRecord("r1", "c1", "1111000001", "110105", State.ACTIVE, None, date(2023, 9, 1))


def _demo_problem() -> ProblemRecord:
    """An open problem for the examples in this module."""
    return new_problem("p1", _demo_record(), ProblemKind.NOT_FOUND, now=datetime(2025, 9, 1))
