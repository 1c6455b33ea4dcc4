"""The status machine (学籍状态机): the transition table as data, checks, apply and replay.

The table :data:`TABLE` is the single source of truth: :func:`check` reads its
guards, :func:`allowed_changes` its from-states, :func:`transitions_table`,
:func:`to_mermaid` and :func:`to_dot` render it, and the tests walk it.  Its
shape is checked when this module is imported: every state is reachable from
``REGISTER``, ``GRADUATED`` and ``DECEASED`` have no way out, ``CANCELLED`` is
left only by ``RESTORE``, and every other state has a way out.

:func:`check` evaluates **every** guard of the row and returns every unmet one
as a :class:`~studentstatus.errors.Violation`; :func:`apply` raises
:class:`~studentstatus.errors.RuleViolations` with all of them, or returns the
new record (``version + 1``) and the :class:`StatusChange` event whose
``before``/``after`` hold exactly the fields the change touched, as JSON-ready
values.  :func:`replay` folds the events back into the record.

Guards shared by every row: the from-state must be in the row
(``transition_not_allowed``), the effective date must not be after
``context.today`` (``effective_date_future``) nor before the record's entry,
suspension start or cancellation (``effective_date_past``), and the policy must
allow the change kind (``change_not_allowed_here``).

Choices where the sources are silent (documented in docs/concepts/status-machine.md):

* PROMOTE, REPEAT and SKIP are the year-end grade decision: at most one of them
  per school year of the effective date (``already_promoted_this_year``).
* SKIP fits the age when the age at the cut-off fits grade g+1 or g+2.
* Suspensions (see docs/concepts/status-machine.md, "Suspensions"): one
  application (SUSPEND or EXTEND) may cover ``Policy.max_suspension_days``, one
  suspension with its extensions ``Policy.max_episode_days``, all suspensions of
  a record ``Policy.total_suspension_days``; the guards refuse anything past a
  cap.  An EXTEND must be made before the suspension's end
  (``suspension_ended``) and end after its effective date and the current end
  (``until_not_after_start``).  Leaving SUSPENDED (RESUME, WITHDRAW, DEATH)
  adds the days suspended **up to the approved end** to ``suspended_days``: a
  child resuming late is taken back, and the days past the end are not counted
  as suspension; :func:`suspension_overdue` flags such a record for the dropout
  watch once ``Policy.suspension_grace_days`` have passed.  So
  ``suspended_days`` never exceeds the total cap.
* A province may switch optional change kinds off (``Policy.disallowed_changes``:
  ``change_not_allowed_here``) and add guards of its own (``Policy.guards``,
  :class:`~studentstatus.domain.policy.HostGuard`), checked after the built-in
  ones by :func:`check`, :func:`apply` and :func:`allowed_changes`.
* With ``Policy.invalid_id == "problem"`` (default) REGISTER and REENROLL accept
  a child whose document number fails its check (the service opens an
  INVALID_ID problem); with ``"reject"`` the number's violations refuse it.

>>> from datetime import date, datetime, timezone
>>> from studentstatus.domain.model import Kindergarten, Licence
>>> from studentstatus.domain.enums import KindergartenType
>>> kg = Kindergarten("1111000001", "12100000400000624D", "园", "110105", KindergartenType.PUBLIC,
...                   licences=(Licence("1", "局", date(2020, 1, 1), date(2030, 12, 31)),))
>>> ctx = Context(date(2024, 9, 1), kindergarten=kg, child=None)
>>> at = datetime(2024, 9, 1, 8, tzinfo=timezone.utc)
>>> [v.code for v in check(None, Change(ChangeKind.REGISTER, date(2024, 9, 1)), context=ctx)]
['child_required', 'grade_required']
>>> rec = StatusRecord("r1", "c1", "1111000001", "110105", State.ACTIVE, Grade.SENIOR,
...                    entry_date=date(2023, 9, 1), version=3)
>>> [v.code for v in check(rec, Change(ChangeKind.PROMOTE, date(2024, 9, 1)), context=ctx)]
['grade_at_top']
>>> new, event = apply(rec, Change(ChangeKind.GRADUATE, date(2024, 7, 1)), context=ctx,
...                    recorded_at=at)
>>> new.state, new.version, event.before, event.after
(<State.GRADUATED: 'GRADUATED'>, 4, {'state': 'ACTIVE'}, {'state': 'GRADUATED'})
>>> [k.value for k in allowed_changes(rec, ctx)]
['REPEAT', 'GRADUATE', 'TRANSFER', 'GO_ABROAD', 'SUSPEND', 'WITHDRAW', 'DEATH', 'CANCEL']
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Mapping
from datetime import date, datetime
from typing import Any, Final, NoReturn

import attrs

from studentstatus.domain.age import age_at_cutoff, grade_fits, grade_violations, school_year_of
from studentstatus.domain.child import check_child
from studentstatus.domain.enums import ChangeKind, Grade, State, VerificationResult
from studentstatus.domain.kindergarten import licence_violations
from studentstatus.domain.model import Child, Kindergarten, StatusChange, StatusRecord
from studentstatus.domain.policy import HostGuard, Policy
from studentstatus.errors import RuleViolations, ValidationError, Violation

__all__ = [
    "COMMON_GUARDS",
    "GUARDS",
    "SYSTEM_CHANGES",
    "TABLE",
    "TERMINAL",
    "Change",
    "Context",
    "Guard",
    "Target",
    "Transition",
    "allowed_changes",
    "apply",
    "check",
    "json_value",
    "register_event",
    "replay",
    "row",
    "suspension_overdue",
    "to_dot",
    "to_mermaid",
    "transitions_table",
]


class Target(enum.Enum):
    """Markers for targets that depend on the record."""

    SAME = "same"
    """The state does not change (grade, kindergarten or dates do)."""
    BEFORE_CANCEL = "state_before_cancel"
    """The state the record had before CANCEL/REJECT (RESTORE)."""


@attrs.frozen
class Transition:
    """One row of the transition table.

    ``sources`` holds the from-states (``None`` means "no record yet");
    ``guards`` the codes of the row's guards, each evaluated by :func:`check`.

    >>> row(ChangeKind.GRADUATE).sources
    frozenset({<State.ACTIVE: 'ACTIVE'>})
    """

    kind: ChangeKind
    sources: frozenset[State | None]
    target: State | Target
    guards: tuple[str, ...]
    label_zh: str

    def target_for(self, record: StatusRecord | None) -> State:
        """The state a record ends in after this change (record must fit ``sources``).

        >>> row(ChangeKind.APPROVE).target_for(None)
        <State.ACTIVE: 'ACTIVE'>
        """
        if self.target is Target.SAME:
            assert record is not None
            return record.state
        if self.target is Target.BEFORE_CANCEL:
            assert record is not None
            assert record.state_before_cancel is not None
            return record.state_before_cancel
        assert isinstance(self.target, State)
        return self.target


def _t(
    kind: ChangeKind,
    sources: Iterable[State | None],
    target: State | Target,
    guards: tuple[str, ...],
    label_zh: str,
) -> Transition:
    return Transition(kind, frozenset(sources), target, guards, label_zh)


_S = State
_K = ChangeKind
_LIVE_FROM = (_S.PENDING, _S.ACTIVE, _S.SUSPENDED, _S.ABROAD, _S.WITHDRAWN)

#: The transition table (docs/reference/domain.md#states-and-changes), one row per change kind.
TABLE: Final[tuple[Transition, ...]] = (
    _t(
        _K.REGISTER,
        [None],
        _S.PENDING,
        ("kindergarten_unlicensed", "child_invalid", "grade_age_mismatch"),
        "入园建籍",
    ),
    _t(_K.APPROVE, [_S.PENDING], _S.ACTIVE, (), "核准"),
    _t(_K.REJECT, [_S.PENDING], _S.CANCELLED, ("reason_required",), "不予核准"),
    _t(
        _K.PROMOTE,
        [_S.ACTIVE],
        Target.SAME,
        ("grade_at_top", "already_promoted_this_year"),
        "升班",
    ),
    _t(
        _K.REPEAT,
        [_S.ACTIVE],
        Target.SAME,
        ("reason_required", "repeat_once_per_grade", "already_promoted_this_year"),
        "留级",
    ),
    _t(
        _K.SKIP,
        [_S.ACTIVE],
        Target.SAME,
        (
            "reason_required",
            "skip_beyond_senior",
            "skip_once_per_stage",
            "already_promoted_this_year",
            "grade_age_mismatch",
        ),
        "跳级",
    ),
    _t(_K.GRADUATE, [_S.ACTIVE], _S.GRADUATED, ("not_senior",), "毕业"),
    _t(
        _K.TRANSFER,
        [_S.ACTIVE],
        Target.SAME,
        ("destination_unlicensed", "same_kindergarten", "open_request_exists"),
        "转园",
    ),
    _t(_K.GO_ABROAD, [_S.ACTIVE], _S.ABROAD, (), "出国（境）"),
    _t(_K.RETURN, [_S.ABROAD], _S.ACTIVE, ("grade_age_mismatch",), "回国（境）"),
    _t(
        _K.SUSPEND,
        [_S.ACTIVE],
        _S.SUSPENDED,
        (
            "until_required",
            "suspension_too_long",
            "suspension_episode_too_long",
            "suspension_cap_exceeded",
        ),
        "休学",
    ),
    _t(
        _K.EXTEND,
        [_S.SUSPENDED],
        Target.SAME,
        (
            "suspension_ended",
            "until_required",
            "suspension_too_long",
            "suspension_episode_too_long",
            "suspension_cap_exceeded",
        ),
        "续休",
    ),
    _t(_K.RESUME, [_S.SUSPENDED], _S.ACTIVE, ("grade_age_mismatch",), "复学"),
    _t(
        _K.WITHDRAW,
        [_S.ACTIVE, _S.SUSPENDED, _S.ABROAD],
        _S.WITHDRAWN,
        ("reason_required",),
        "退学/离园",
    ),
    _t(
        _K.REENROLL,
        [_S.WITHDRAWN],
        _S.PENDING,
        ("kindergarten_unlicensed", "child_invalid", "grade_age_mismatch"),
        "重新入园",
    ),
    _t(_K.DEATH, _LIVE_FROM, _S.DECEASED, ("evidence_required",), "死亡"),
    _t(_K.CANCEL, [_S.PENDING, _S.ACTIVE], _S.CANCELLED, ("reason_required",), "删除"),
    _t(_K.RESTORE, [_S.CANCELLED], Target.BEFORE_CANCEL, ("restore_window_passed",), "信息恢复"),
    # Not requested by anyone: the record follows its kindergarten when the kindergarten moves
    # to another county (services.moves, approved by both counties); live and cancelled
    # records (a cancelled one may be restored), state unchanged; a graduated or deceased
    # record keeps the county it ended in.
    _t(
        _K.RELOCATE,
        [*_LIVE_FROM, _S.CANCELLED],
        Target.SAME,
        ("relocation_kindergarten",),
        "所属县区调整",
    ),
)

#: Changes no one asks for: the library applies them itself (RELOCATE, when a kindergarten
#: moves to another county).  Refused as requests; left out of what a state "allows".
SYSTEM_CHANGES: Final[frozenset[ChangeKind]] = frozenset({ChangeKind.RELOCATE})

#: States no change leaves.
TERMINAL: Final[frozenset[State]] = frozenset({State.GRADUATED, State.DECEASED})

#: Guards every row has, evaluated before the row's own.
COMMON_GUARDS: Final[tuple[str, ...]] = (
    "transition_not_allowed",
    "effective_date_future",
    "effective_date_past",
    "change_not_allowed_here",
)

_ROWS: Mapping[ChangeKind, Transition] = {t.kind: t for t in TABLE}


def row(kind: ChangeKind) -> Transition:
    """The table row of a change kind.

    >>> row(ChangeKind.RESTORE).target
    <Target.BEFORE_CANCEL: 'state_before_cancel'>
    """
    return _ROWS[kind]


# --------------------------------------------------------------------------- inputs


@attrs.frozen
class Change:
    """A requested change: its kind, effective date and the parameters its kind uses.

    ``to_kindergarten``: destination school code (TRANSFER, REENROLL elsewhere);
    ``until``: end of a suspension (SUSPEND, EXTEND); ``grade``: the grade at
    REGISTER/REENROLL, or a new grade at RETURN/RESUME; ``child_id`` and
    ``temp_number``: set by REGISTER (the temporary number is made by the caller).

    >>> Change(ChangeKind.SUSPEND, date(2024, 10, 1), until=date(2025, 6, 30)).until
    datetime.date(2025, 6, 30)
    """

    kind: ChangeKind
    effective_date: date
    reason: str = ""
    evidence: tuple[str, ...] = ()
    to_kindergarten: str | None = None
    until: date | None = None
    grade: Grade | None = None
    operator: str = ""
    child_id: str | None = None
    temp_number: str | None = None


@attrs.frozen
class Context:
    """What the guards need besides the record and the change.

    ``kindergarten``: the record's kindergarten (for REGISTER, the one the child
    enters); ``destination``: the kindergarten of a TRANSFER, or of a REENROLL
    into another kindergarten; ``child``: the record's child; ``open_request``:
    another change request is open for the record (not the one being
    applied); ``has_open_problem``: the record has an open problem (blocks
    national numbers, not changes); ``other_live_records``: ids of other live
    records with the same document (REGISTER accepts them; the service opens
    DUPLICATE_ID problems); ``strict_region``: passed to the identity check.

    >>> Context(date(2024, 9, 1)).policy.restore_window_days
    366
    """

    today: date
    policy: Policy = attrs.field(factory=Policy)
    kindergarten: Kindergarten | None = None
    destination: Kindergarten | None = None
    child: Child | None = None
    open_request: bool = False
    has_open_problem: bool = False
    other_live_records: tuple[str, ...] = ()
    strict_region: bool = True


# --------------------------------------------------------------------------- guards

GuardFn = Callable[[StatusRecord | None, Change, Context], list[Violation]]

_MESSAGES: Mapping[str, tuple[str, str]] = {
    "transition_not_allowed": (
        "当前学籍状态不允许此变动",
        "this change is not allowed in this state",
    ),
    "change_kind_unknown": ("未知的变动类型", "unknown change kind"),
    "effective_date_invalid": ("生效日期无效", "invalid effective date"),
    "effective_date_future": ("生效日期不能晚于今天", "the effective date is in the future"),
    "effective_date_past": (
        "生效日期早于学籍的上一次变动",
        "the effective date is before the record's last dated event",
    ),
    "kindergarten_required": ("缺少幼儿园信息", "the kindergarten is missing"),
    "kindergarten_mismatch": (
        "幼儿园与学籍所在园不一致",
        "the context's kindergarten is not the record's",
    ),
    "child_required": ("缺少幼儿信息", "the child's data are missing"),
    "child_mismatch": ("幼儿与学籍不对应", "the child is not the record's child"),
    "grade_required": ("缺少班级（年级）", "the grade is missing"),
    "grade_unknown": ("班级（年级）无效", "the grade is not on the ladder"),
    "reason_required": ("请填写原因", "a reason is required"),
    "evidence_required": ("请提供佐证材料", "evidence is required"),
    "grade_at_top": ("已是大班，不能升班", "the child is already in the top grade"),
    "already_promoted_this_year": (
        "本学年已升班、留级或跳级",
        "the grade was already changed this school year",
    ),
    "repeat_once_per_grade": ("同一年级只能留级一次", "a grade may be repeated only once"),
    "skip_beyond_senior": ("跳级后将超过大班", "skipping would go beyond the top grade"),
    "skip_once_per_stage": ("学前阶段只能跳级一次", "a child may skip only once per stage"),
    "not_senior": ("只有大班幼儿可以毕业", "only children in the top grade graduate"),
    "destination_required": ("缺少转入幼儿园", "the destination kindergarten is missing"),
    "destination_mismatch": (
        "转入幼儿园与申请不一致",
        "the destination does not match the requested school code",
    ),
    "same_kindergarten": ("不能转入本园", "cannot transfer to the same kindergarten"),
    "destination_unlicensed": (
        "转入幼儿园无有效办学许可证",
        "the destination kindergarten is not licensed on the date",
    ),
    "open_request_exists": ("已有待审核的变动申请", "another change request is open"),
    "until_required": ("请填写休学截止日期", "the end date of the suspension is required"),
    "until_not_after_start": ("休学截止日期须晚于开始日期", "the end date must be after the start"),
    "suspension_too_long": ("单次休学（续休）时间过长", "one suspension or extension is too long"),
    "suspension_cap_exceeded": ("累计休学时间超过上限", "the total suspension exceeds the cap"),
    "suspension_episode_too_long": (
        "本次休学（含续休）时间超过上限",
        "this suspension with its extensions exceeds the cap",
    ),
    "suspension_ended": (
        "休学期已满，不能续休，请办理复学或离园",
        "the suspension has ended: resume or withdraw instead of extending",
    ),
    "suspension_overdue": (
        "休学期满未复学，列入控辍保学监测",
        "the suspension ended without resumption: watched as a suspected dropout",
    ),
    "change_not_allowed_here": (
        "本省（区、市）不办理此类学籍变动",
        "this province does not allow this change",
    ),
    "restore_window_passed": ("已超过信息恢复期限", "the restore window has passed"),
    "relocation_kindergarten": (
        "所属县区调整须随本园迁往另一县区",
        "a relocation follows the record's own kindergarten to another county",
    ),
}


def _v(code: str, field: str, hint: str = "") -> Violation:
    zh, en = _MESSAGES[code]
    return Violation(code, field, zh, en, hint)


@attrs.frozen
class Guard:
    """A guard: the codes it may report, whether it reads the change's parameters, its check.

    Guards with ``uses_change=False`` depend only on the record, the context and
    the effective date; :func:`allowed_changes` evaluates those (at
    ``context.today``) to decide which buttons a portal shows.

    >>> GUARDS["reason_required"].uses_change, GUARDS["grade_at_top"].uses_change
    (True, False)
    """

    code: str
    uses_change: bool
    fn: GuardFn = attrs.field(repr=False)
    codes: tuple[str, ...] = ()


def _entry_kindergarten(
    record: StatusRecord | None, change: Change, ctx: Context
) -> tuple[Kindergarten | None, list[Violation]]:
    if change.to_kindergarten is not None:
        dest = ctx.destination
        if dest is None:
            return None, [_v("destination_required", "to_kindergarten")]
        if dest.school_code != change.to_kindergarten:
            return None, [_v("destination_mismatch", "to_kindergarten")]
        return dest, []
    if ctx.kindergarten is None:
        return None, [_v("kindergarten_required", "kindergarten")]
    if record is not None and ctx.kindergarten.school_code != record.kindergarten_code:
        return None, [_v("kindergarten_mismatch", "kindergarten")]
    return ctx.kindergarten, []


def _g_kindergarten(record: StatusRecord | None, change: Change, ctx: Context) -> list[Violation]:
    kg, problems = _entry_kindergarten(record, change, ctx)
    if kg is None:
        return problems
    return licence_violations(kg, change.effective_date)


def _g_child(record: StatusRecord | None, change: Change, ctx: Context) -> list[Violation]:
    child = ctx.child
    if child is None:
        return [_v("child_required", "child")]
    out: list[Violation] = []
    wanted = record.child_id if record is not None else change.child_id
    if wanted is not None and child.id != wanted:
        out.append(_v("child_mismatch", "child"))
    problems = check_child(child, today=ctx.today, strict_region=ctx.strict_region)
    if ctx.policy.invalid_id == "problem":
        problems = [p for p in problems if p.field != "document.number"]
    out.extend(problems)
    return out


def _grade_value(value: object) -> Grade | None:
    if isinstance(value, Grade):
        return value
    if isinstance(value, str):
        try:
            return Grade.parse(value)
        except ValueError:
            return None
    return None


def _g_grade_age(record: StatusRecord | None, change: Change, ctx: Context) -> list[Violation]:
    kind = change.kind
    year = school_year_of(change.effective_date, ctx.policy)
    child = ctx.child
    if kind is ChangeKind.SKIP:
        if record is None or record.grade is None:
            return []
        if child is None:
            return [_v("child_required", "child", "the age check of SKIP needs the child")]
        middle, top = record.grade.next(1), record.grade.next(2)
        if middle is None or top is None:
            return []  # reported by skip_beyond_senior
        age = age_at_cutoff(child.birth_date, year, ctx.policy)
        if grade_fits(age, middle, ctx.policy) or grade_fits(age, top, ctx.policy):
            return []
        return grade_violations(child.birth_date, top, year, ctx.policy)
    requested = change.grade
    if requested is not None and _grade_value(requested) is None:
        return [_v("grade_unknown", "grade", "one of: " + ", ".join(g.value for g in Grade))]
    grade = _grade_value(requested)
    if kind in (ChangeKind.REGISTER, ChangeKind.REENROLL):
        if grade is None:
            return [_v("grade_required", "grade")]
    elif kind is ChangeKind.RESUME:
        if grade is None or (record is not None and grade is record.grade):
            return []  # back to the former grade
    elif grade is None and record is not None:
        grade = record.grade
    if grade is None or child is None:
        return [] if child is not None or grade is None else [_v("child_required", "child")]
    return grade_violations(child.birth_date, grade, year, ctx.policy)


def _g_reason(record: StatusRecord | None, change: Change, ctx: Context) -> list[Violation]:
    reason = change.reason if isinstance(change.reason, str) else ""
    return [] if reason.strip() else [_v("reason_required", "reason")]


def _g_evidence(record: StatusRecord | None, change: Change, ctx: Context) -> list[Violation]:
    ok = any(isinstance(e, str) and e.strip() for e in change.evidence)
    return [] if ok else [_v("evidence_required", "evidence")]


def _g_top(record: StatusRecord | None, change: Change, ctx: Context) -> list[Violation]:
    if record is not None and (record.grade is None or record.grade.next() is None):
        return [_v("grade_at_top", "grade")]
    return []


def _g_once_a_year(record: StatusRecord | None, change: Change, ctx: Context) -> list[Violation]:
    year = school_year_of(change.effective_date, ctx.policy)
    if record is not None and record.last_promoted_year == year:
        return [_v("already_promoted_this_year", "grade", f"school year {year}")]
    return []


def _g_repeat(record: StatusRecord | None, change: Change, ctx: Context) -> list[Violation]:
    if record is not None and record.grade in record.repeated_grades:
        return [_v("repeat_once_per_grade", "grade")]
    return []


def _g_skip_top(record: StatusRecord | None, change: Change, ctx: Context) -> list[Violation]:
    if record is not None and (record.grade is None or record.grade.next(2) is None):
        return [_v("skip_beyond_senior", "grade")]
    return []


def _g_skip_once(record: StatusRecord | None, change: Change, ctx: Context) -> list[Violation]:
    return [_v("skip_once_per_stage", "grade")] if record is not None and record.skipped else []


def _g_senior(record: StatusRecord | None, change: Change, ctx: Context) -> list[Violation]:
    if record is not None and record.grade is not Grade.SENIOR:
        return [_v("not_senior", "grade")]
    return []


def _g_destination(record: StatusRecord | None, change: Change, ctx: Context) -> list[Violation]:
    dest = ctx.destination
    if dest is None:
        return [_v("destination_required", "to_kindergarten")]
    if change.to_kindergarten is not None and change.to_kindergarten != dest.school_code:
        return [_v("destination_mismatch", "to_kindergarten")]
    if licence_violations(dest, change.effective_date):
        hint = licence_violations(dest, change.effective_date)[0].hint
        return [_v("destination_unlicensed", "to_kindergarten", hint)]
    return []


def _g_same_kg(record: StatusRecord | None, change: Change, ctx: Context) -> list[Violation]:
    dest = ctx.destination.school_code if ctx.destination is not None else change.to_kindergarten
    if record is not None and dest is not None and dest == record.kindergarten_code:
        return [_v("same_kindergarten", "to_kindergarten")]
    return []


def _g_relocation(record: StatusRecord | None, change: Change, ctx: Context) -> list[Violation]:
    dest = ctx.destination  # the record's own kindergarten, in its new county
    if dest is None:
        return [_v("relocation_kindergarten", "kindergarten", "the moved kindergarten")]
    if record is not None and (
        dest.school_code != record.kindergarten_code or dest.region_code == record.region_code
    ):
        return [_v("relocation_kindergarten", "kindergarten", dest.school_code)]
    return []


def _g_open_request(record: StatusRecord | None, change: Change, ctx: Context) -> list[Violation]:
    return [_v("open_request_exists", "record")] if ctx.open_request else []


def _extending(record: StatusRecord | None, change: Change) -> bool:
    return (
        change.kind is ChangeKind.EXTEND
        and record is not None
        and record.suspended_since is not None
        and record.suspended_until is not None
    )


def _application_start(record: StatusRecord | None, change: Change) -> date:
    """Where the application's days start: the effective date, or an extension's current end."""
    if _extending(record, change):
        assert record is not None
        assert record.suspended_until is not None
        return max(record.suspended_until, change.effective_date)
    return change.effective_date


def _episode_start(record: StatusRecord | None, change: Change) -> date:
    """Where the suspension (with its extensions) started."""
    if _extending(record, change):
        assert record is not None
        assert record.suspended_since is not None
        return record.suspended_since
    return change.effective_date


def _g_until(record: StatusRecord | None, change: Change, ctx: Context) -> list[Violation]:
    until = change.until
    if not isinstance(until, date):
        return [_v("until_required", "until")]
    start = _application_start(record, change)
    if until <= start:
        return [_v("until_not_after_start", "until", f"after {start.isoformat()}")]
    return []


def _g_ended(record: StatusRecord | None, change: Change, ctx: Context) -> list[Violation]:
    end = record.suspended_until if record is not None else None
    if end is not None and change.effective_date > end:
        return [_v("suspension_ended", "effective_date", f"ended {end.isoformat()}")]
    return []


def _g_too_long(record: StatusRecord | None, change: Change, ctx: Context) -> list[Violation]:
    until = change.until
    if not isinstance(until, date):
        return []
    days = (until - _application_start(record, change)).days
    limit = ctx.policy.max_suspension_days
    if days > limit:
        return [_v("suspension_too_long", "until", f"{days} days > {limit}")]
    return []


def _g_episode(record: StatusRecord | None, change: Change, ctx: Context) -> list[Violation]:
    until = change.until
    if not isinstance(until, date):
        return []
    days = (until - _episode_start(record, change)).days
    limit = ctx.policy.max_episode_days
    if days > limit:
        return [_v("suspension_episode_too_long", "until", f"{days} days > {limit}")]
    return []


def _g_cap(record: StatusRecord | None, change: Change, ctx: Context) -> list[Violation]:
    until = change.until
    if record is None or not isinstance(until, date):
        return []
    total = record.suspended_days + max(0, (until - _episode_start(record, change)).days)
    cap = ctx.policy.total_suspension_days
    if total > cap:
        return [_v("suspension_cap_exceeded", "until", f"{total} days in all > {cap}")]
    return []


def suspension_overdue(record: StatusRecord, today: date, policy: Policy) -> Violation | None:
    """``suspension_overdue`` when a SUSPENDED record's end passed more than
    ``policy.suspension_grace_days`` ago without RESUME: the child belongs on the
    dropout watch (a suspected dropout, 疑似辍学).  ``None`` otherwise.

    >>> rec = StatusRecord("r1", "c1", "1111000001", "110105", State.SUSPENDED, Grade.JUNIOR,
    ...                    entry_date=date(2023, 9, 1), suspended_since=date(2024, 3, 1),
    ...                    suspended_until=date(2024, 6, 30))
    >>> suspension_overdue(rec, date(2024, 7, 30), Policy()) is None
    True
    >>> suspension_overdue(rec, date(2024, 7, 31), Policy()).code
    'suspension_overdue'
    """
    end = record.suspended_until
    if record.state is not State.SUSPENDED or end is None:
        return None
    late = (today - end).days
    if late <= policy.suspension_grace_days:
        return None
    return _v("suspension_overdue", "suspended_until", f"ended {end.isoformat()}, {late} days ago")


def _g_restore(record: StatusRecord | None, change: Change, ctx: Context) -> list[Violation]:
    if record is None or record.cancelled_on is None:
        return []
    days = (change.effective_date - record.cancelled_on).days
    window = ctx.policy.restore_window_days
    if days > window:
        return [_v("restore_window_passed", "effective_date", f"{days} days > {window}")]
    return []


def _latest_date(record: StatusRecord) -> date:
    dates = [record.entry_date]
    if record.suspended_since is not None:
        dates.append(record.suspended_since)
    if record.cancelled_on is not None:
        dates.append(record.cancelled_on)
    return max(dates)


def _g_effective(record: StatusRecord | None, change: Change, ctx: Context) -> list[Violation]:
    out: list[Violation] = []
    if change.effective_date > ctx.today:
        out.append(_v("effective_date_future", "effective_date", f"today is {ctx.today}"))
    if record is not None and change.effective_date < _latest_date(record):
        out.append(
            _v("effective_date_past", "effective_date", f"on or after {_latest_date(record)}")
        )
    return out


def _guard(code: str, uses_change: bool, fn: GuardFn, *codes: str) -> Guard:
    return Guard(code, uses_change, fn, (code, *codes))


#: Every guard by code; the table's rows name them.
GUARDS: Final[Mapping[str, Guard]] = {
    g.code: g
    for g in (
        _guard("kindergarten_unlicensed", False, _g_kindergarten, "kindergarten_required",
               "kindergarten_mismatch",
               "destination_required", "destination_mismatch"),
        _guard("child_invalid", False, _g_child, "child_required", "child_mismatch"),
        _guard("grade_age_mismatch", True, _g_grade_age, "grade_required", "grade_unknown",
               "child_required"),
        _guard("reason_required", True, _g_reason),
        _guard("evidence_required", True, _g_evidence),
        _guard("grade_at_top", False, _g_top),
        _guard("already_promoted_this_year", False, _g_once_a_year),
        _guard("repeat_once_per_grade", False, _g_repeat),
        _guard("skip_beyond_senior", False, _g_skip_top),
        _guard("skip_once_per_stage", False, _g_skip_once),
        _guard("not_senior", False, _g_senior),
        _guard("destination_unlicensed", True, _g_destination, "destination_required",
               "destination_mismatch"),
        _guard("same_kindergarten", True, _g_same_kg),
        _guard("open_request_exists", False, _g_open_request),
        _guard("until_required", True, _g_until, "until_not_after_start"),
        _guard("suspension_ended", False, _g_ended),
        _guard("suspension_too_long", True, _g_too_long),
        _guard("suspension_episode_too_long", True, _g_episode),
        _guard("suspension_cap_exceeded", True, _g_cap),
        _guard("restore_window_passed", False, _g_restore),
        _guard("relocation_kindergarten", False, _g_relocation),
    )
}  # fmt: skip


# --------------------------------------------------------------------------- check


def _input_violations(change: object) -> list[Violation]:
    if not isinstance(change, Change):
        return [_v("change_kind_unknown", "kind", "pass a Change")]
    out: list[Violation] = []
    kind: object = change.kind  # callers without type checking may pass anything
    if not isinstance(kind, ChangeKind):
        out.append(_v("change_kind_unknown", "kind", "one of: " + ", ".join(ChangeKind)))
    if not isinstance(change.effective_date, date) or isinstance(change.effective_date, datetime):
        out.append(_v("effective_date_invalid", "effective_date", "a datetime.date"))
    return out


def _state_fits(transition: Transition, record: StatusRecord | None) -> bool:
    state = record.state if record is not None else None
    if state not in transition.sources:
        return False
    return not (transition.target is Target.BEFORE_CANCEL and record is not None) or (
        record.state_before_cancel is not None
    )


def _not_allowed(record: StatusRecord | None, kind: ChangeKind, ctx: Context) -> Violation:
    state = record.state.value if record is not None else "no record"
    possible = [
        t.kind.value
        for t in TABLE
        if _state_fits(t, record)
        and not (record is None and t.kind is not ChangeKind.REGISTER)
        and t.kind not in SYSTEM_CHANGES
    ]
    hint = "allowed: " + (", ".join(possible) if possible else "none (terminal state)")
    zh, en = _MESSAGES["transition_not_allowed"]
    return Violation(
        "transition_not_allowed",
        "state",
        f"{zh}（{state} → {kind.value}）",
        f"{en} ({kind.value} from {state})",
        hint,
    )


def check(record: StatusRecord | None, change: Change, *, context: Context) -> list[Violation]:
    """Every unmet rule of applying ``change`` to ``record`` (``None``: not yet registered).

    ``[]`` means :func:`apply` will succeed.  A change whose from-state is not
    in its row gets only ``transition_not_allowed`` (its hint lists the
    changes that are allowed).

    >>> rec = StatusRecord("r1", "c1", "1111000001", "110105", State.ACTIVE, Grade.JUNIOR,
    ...                    entry_date=date(2023, 9, 1))
    >>> ctx = Context(date(2024, 9, 1))
    >>> [v.code for v in check(rec, Change(ChangeKind.SUSPEND, date(2024, 9, 2)), context=ctx)]
    ['effective_date_future', 'until_required']
    >>> v = check(rec, Change(ChangeKind.APPROVE, date(2024, 9, 1)), context=ctx)[0]
    >>> v.code, v.hint.startswith("allowed: PROMOTE")
    ('transition_not_allowed', True)
    """
    bad = _input_violations(change)
    if bad:
        return bad
    transition = _ROWS[change.kind]
    if not _state_fits(transition, record):
        return [_not_allowed(record, change.kind, context)]
    return _evaluate(transition, record, change, context, only_context=False)


def _evaluate(
    transition: Transition,
    record: StatusRecord | None,
    change: Change,
    ctx: Context,
    *,
    only_context: bool,
) -> list[Violation]:
    out = _g_effective(record, change, ctx)
    if not ctx.policy.allows(transition.kind):
        out.append(_v("change_not_allowed_here", "kind", transition.kind.value))
    for code in transition.guards:
        guard = GUARDS[code]
        if only_context and guard.uses_change:
            continue
        out.extend(guard.fn(record, change, ctx))
    for host in ctx.policy.guards:
        if host.applies_to(transition.kind) and not (only_context and host.uses_change):
            out.extend(_host_violations(host, record, change, ctx))
    seen: set[tuple[str, str]] = set()
    unique: list[Violation] = []
    for v in out:
        if (v.code, v.field) not in seen:
            seen.add((v.code, v.field))
            unique.append(v)
    return unique


def _host_violations(
    host: HostGuard, record: StatusRecord | None, change: Change, ctx: Context
) -> list[Violation]:
    found = list(host.fn(record, change, ctx))
    for v in found:
        if not (isinstance(v, Violation) and v.code and v.field and v.message_zh and v.message_en):
            raise TypeError(
                f"host guard {host.code!r} must return Violations with a code, a field and "
                f"messages in Chinese and English, not {v!r}"
            )
    return found


def allowed_changes(record: StatusRecord | None, context: Context) -> list[ChangeKind]:
    """Kinds whose from-state fits and whose context-only guards pass today (table order).

    Guards that read the change's parameters (reason, evidence, until, grade,
    destination) are not evaluated: a portal collects them in a form.

    >>> allowed_changes(None, Context(date(2024, 9, 1)))
    []
    """
    out: list[ChangeKind] = []
    for transition in TABLE:
        if not _state_fits(transition, record) or transition.kind in SYSTEM_CHANGES:
            continue
        probe = Change(transition.kind, context.today)
        if not _evaluate(transition, record, probe, context, only_context=True):
            out.append(transition.kind)
    return out


# --------------------------------------------------------------------------- apply


def _fold_suspension(record: StatusRecord, day: date) -> dict[str, Any]:
    if record.suspended_since is None:
        return {}
    end = day if record.suspended_until is None else min(day, record.suspended_until)
    days = max(0, (end - record.suspended_since).days)
    return {
        "suspended_days": record.suspended_days + days,
        "suspended_since": None,
        "suspended_until": None,
    }


def _effects(record: StatusRecord, change: Change, ctx: Context, target: State) -> dict[str, Any]:
    kind = change.kind
    day = change.effective_date
    year = school_year_of(day, ctx.policy)
    grade = record.grade
    new: dict[str, Any] = {"state": target}
    if record.state is State.SUSPENDED and target is not State.SUSPENDED:
        new.update(_fold_suspension(record, day))
    if kind in (ChangeKind.REJECT, ChangeKind.CANCEL):
        new.update(state_before_cancel=record.state, cancelled_on=day)
    elif kind is ChangeKind.RESTORE:
        new.update(state_before_cancel=None, cancelled_on=None)
    elif kind is ChangeKind.PROMOTE and grade is not None:
        new.update(grade=grade.next(), last_promoted_year=year)
    elif kind is ChangeKind.REPEAT and grade is not None:
        new.update(repeated_grades=(*record.repeated_grades, grade), last_promoted_year=year)
    elif kind is ChangeKind.SKIP and grade is not None:
        new.update(grade=grade.next(2), skipped=True, last_promoted_year=year)
    elif kind is ChangeKind.RELOCATE and ctx.destination is not None:
        new["region_code"] = ctx.destination.region_code
    elif kind is ChangeKind.TRANSFER and ctx.destination is not None:
        new.update(
            kindergarten_code=ctx.destination.school_code,
            region_code=ctx.destination.region_code,
        )
    elif kind in (ChangeKind.RETURN, ChangeKind.RESUME):
        new["grade"] = _grade_value(change.grade) or grade
    elif kind is ChangeKind.SUSPEND:
        new.update(suspended_since=day, suspended_until=change.until)
    elif kind is ChangeKind.EXTEND:
        new["suspended_until"] = change.until
    elif kind is ChangeKind.REENROLL:
        kg, _ = _entry_kindergarten(record, change, ctx)
        new.update(grade=_grade_value(change.grade), entry_date=day)
        if kg is not None:
            new.update(kindergarten_code=kg.school_code, region_code=kg.region_code)
    return new


_FIELDS: tuple[str, ...] = tuple(a.name for a in attrs.fields(StatusRecord) if a.name != "version")


_PLAIN = frozenset({str, int, bool, float, type(None)})


def json_value(value: object) -> object:
    """A record field's value as a change event's ``before``/``after`` holds it (JSON-ready):
    enums by value, dates in ISO form, tuples as lists.

    >>> from studentstatus.domain.enums import Grade
    >>> json_value((Grade.JUNIOR, date(2024, 9, 1)))
    ['JUNIOR', '2024-09-01']
    """
    if type(value) in _PLAIN:
        return value
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, tuple):
        return [json_value(v) for v in value]
    return value


_json = json_value


def _register_after() -> dict[str, Any]:
    # The defaults of a new record as an event's ``after`` (REGISTER writes every field).
    fields = {a.name: a.default for a in attrs.fields(StatusRecord) if a.name != "version"}
    return {f: _json(v) if v is not attrs.NOTHING else None for f, v in fields.items()}


_REGISTER_AFTER: Final[dict[str, Any]] = _register_after()

_DATE_FIELDS = frozenset({"entry_date", "suspended_since", "suspended_until", "cancelled_on"})


def _from_json(field: str, value: Any) -> Any:
    if value is None:
        return None
    if field in ("state", "state_before_cancel"):
        return State(value)
    if field == "grade":
        return Grade(value)
    if field == "verification":
        return VerificationResult(value)
    if field in _DATE_FIELDS:
        return date.fromisoformat(str(value))
    if field == "repeated_grades":
        return tuple(Grade(v) for v in value)
    if field == "former_numbers":
        return tuple(str(v) for v in value)
    return value


def apply(
    record: StatusRecord | None,
    change: Change,
    *,
    context: Context,
    recorded_at: datetime,
    record_id: str | None = None,
) -> tuple[StatusRecord, StatusChange]:
    """Apply ``change``: the new record (``version + 1``) and the event to append.

    Raises :class:`~studentstatus.errors.RuleViolations` with every unmet rule.
    REGISTER needs ``record_id`` (and takes the child from ``change.child_id``
    or ``context.child``, the kindergarten from ``context.kindergarten``).

    >>> ctx = Context(date(2024, 9, 1))
    >>> rec = StatusRecord("r1", "c1", "1111000001", "110105", State.ACTIVE, Grade.JUNIOR,
    ...                    entry_date=date(2023, 9, 1))
    >>> apply(rec, Change(ChangeKind.WITHDRAW, date(2024, 9, 1)), context=ctx,
    ...       recorded_at=datetime(2024, 9, 1))
    Traceback (most recent call last):
    ...
    studentstatus.errors.RuleViolations: reason_required [reason]: ...
    """
    problems = check(record, change, context=context)
    if record is None and not record_id:
        problems.append(Violation("record_id_required", "record_id", "缺少学籍编号",
                                  "REGISTER needs a record id"))  # fmt: skip
    if problems:
        raise RuleViolations(problems)
    transition = _ROWS[change.kind]
    if record is None:
        assert record_id is not None
        assert context.kindergarten is not None
        child_id = change.child_id or (context.child.id if context.child is not None else "")
        new = StatusRecord(
            record_id,
            child_id,
            context.kindergarten.school_code,
            context.kindergarten.region_code,
            State.PENDING,
            _grade_value(change.grade),
            change.effective_date,
            temp_number=change.temp_number,
            version=1,
        )
        before: dict[str, Any] = {}
        after = dict(_REGISTER_AFTER)  # every field, in field order; then the ones set here
        after.update(
            id=new.id,
            child_id=new.child_id,
            kindergarten_code=new.kindergarten_code,
            region_code=new.region_code,
            state=new.state.value,
            grade=_json(new.grade),
            entry_date=new.entry_date.isoformat(),
            temp_number=new.temp_number,
        )
        from_state = None
    else:
        updates = _effects(record, change, context, transition.target_for(record))
        new = attrs.evolve(record, version=record.version + 1, **updates)
        touched = [f for f in _FIELDS if getattr(new, f) != getattr(record, f)]
        before = {f: _json(getattr(record, f)) for f in touched}
        after = {f: _json(getattr(new, f)) for f in touched}
        from_state = record.state
    event = StatusChange(
        record_id=new.id,
        seq=new.version,
        kind=change.kind,
        from_state=from_state,
        to_state=new.state,
        effective_date=change.effective_date,
        recorded_at=recorded_at,
        operator=change.operator,
        reason=change.reason,
        evidence=tuple(change.evidence),
        before=before,
        after=after,
    )
    return new, event


def register_event(
    record: StatusRecord, *, recorded_at: datetime, operator: str, reason: str = ""
) -> StatusChange:
    """The REGISTER event of a record that arrives whole, in any state (a child transferred
    from another provincial deployment, a seeded store): ``after`` holds every field, so
    :func:`replay` rebuilds ``record`` from it.

    >>> rec = StatusRecord("r1", "c1", "1111000001", "110105", State.ACTIVE, Grade.JUNIOR,
    ...                    date(2024, 9, 1), national_number="G11010520200315003X", version=1)
    >>> event = register_event(rec, recorded_at=datetime(2024, 9, 1), operator="seed")
    >>> event.to_state, replay([event]) == rec
    (<State.ACTIVE: 'ACTIVE'>, True)
    """
    return StatusChange(
        record_id=record.id,
        seq=1,
        kind=ChangeKind.REGISTER,
        from_state=None,
        to_state=record.state,
        effective_date=record.entry_date,
        recorded_at=recorded_at,
        operator=operator,
        reason=reason,
        after={f: _json(getattr(record, f)) for f in _FIELDS},
    )


def replay(events: Iterable[StatusChange]) -> StatusRecord:
    """Rebuild a record from its events (the first must be REGISTER, seq 1, 2, …).

    Raises :class:`~studentstatus.errors.ValidationError` (code
    ``event_sequence``) for an empty, unordered or foreign log.

    >>> replay([])
    Traceback (most recent call last):
    ...
    studentstatus.errors.ValidationError: event_sequence [events]: ...
    """
    record: StatusRecord | None = None
    for event in events:
        expected = 1 if record is None else record.version + 1
        if event.seq != expected or (record is not None and event.record_id != record.id):
            _sequence_error(f"expected seq {expected} of the same record, got {event.seq}")
        values = {f: _from_json(f, v) for f, v in event.after.items() if f in _FIELDS}
        if record is None:
            if event.kind is not ChangeKind.REGISTER:
                _sequence_error("the first event must be REGISTER")
            try:
                record = StatusRecord(**values, version=event.seq)
            except TypeError:
                _sequence_error("the REGISTER event lacks record fields")
        else:
            record = attrs.evolve(record, version=event.seq, **values)
    if record is None:
        _sequence_error("no events")
    return record


def _sequence_error(detail: str) -> NoReturn:
    raise ValidationError(
        f"the event log cannot be replayed: {detail}",
        field="events",
        message_zh="学籍变动记录无法重放",
        code="event_sequence",
    )


# --------------------------------------------------------------------------- rendering


def _target_text(t: Transition) -> str:
    if t.target is Target.SAME:
        return "/".join(sorted(s.value for s in t.sources if s is not None))
    if t.target is Target.BEFORE_CANCEL:
        return Target.BEFORE_CANCEL.value
    assert isinstance(t.target, State)
    return t.target.value


def transitions_table(policy: Policy | None = None) -> list[dict[str, Any]]:
    """The table as JSON-ready rows: change, from, to, approvals, guards, label_zh.

    ``approvals`` are the roles the policy asks for (:meth:`Policy.approvals_for`).

    >>> rows = transitions_table()
    >>> rows[0]["change"], rows[0]["from"], rows[0]["to"], rows[1]["approvals"]
    ('REGISTER', [], 'PENDING', ['county'])
    """
    pol = policy if policy is not None else Policy()
    order = list(State)
    return [
        {
            "change": t.kind.value,
            "from": [s.value for s in sorted((s for s in t.sources if s), key=order.index)],
            "to": _target_text(t),
            "approvals": [r.value for r in pol.approvals_for(t.kind)],
            "guards": list(t.guards),
            "label_zh": t.label_zh,
        }
        for t in TABLE
    ]


def _cancellable() -> list[State]:
    into = {s for t in TABLE if t.target is State.CANCELLED for s in t.sources}
    return [s for s in State if s in into]


def _edges() -> list[tuple[str, str, Transition]]:
    edges: list[tuple[str, str, Transition]] = []
    for t in TABLE:
        if t.kind in SYSTEM_CHANGES:  # self-loops on every live state: in the table only
            continue
        for source in sorted(t.sources, key=lambda s: -1 if s is None else list(State).index(s)):
            src = "[*]" if source is None else source.value
            if t.target is Target.SAME:
                assert source is not None
                targets = [source.value]
            elif t.target is Target.BEFORE_CANCEL:
                targets = [s.value for s in _cancellable()]
            else:
                assert isinstance(t.target, State)
                targets = [t.target.value]
            edges.extend((src, dst, t) for dst in targets)
    return edges


def to_mermaid() -> str:
    """A Mermaid ``stateDiagram-v2`` of the table.

    >>> print(to_mermaid().splitlines()[1])
        [*] --> PENDING: REGISTER 入园建籍
    """
    lines = ["stateDiagram-v2"]
    lines += [f"    {src} --> {dst}: {t.kind.value} {t.label_zh}" for src, dst, t in _edges()]
    lines += [f"    {s.value} --> [*]" for s in State if s in TERMINAL]
    return "\n".join(lines) + "\n"


def to_dot() -> str:
    """A Graphviz ``digraph`` of the table.

    >>> to_dot().splitlines()[0]
    'digraph status {'
    """
    lines = ["digraph status {", "    rankdir=LR;", '    start [shape=point, label=""];']
    for s in State:
        shape = "doublecircle" if s in TERMINAL else "ellipse"
        lines.append(f'    {s.value} [shape={shape}, label="{s.value}\\n{s.label_zh}"];')
    for src, dst, t in _edges():
        a = "start" if src == "[*]" else src
        lines.append(f'    {a} -> {dst} [label="{t.kind.value} {t.label_zh}"];')
    lines.append("}")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- table shape


def _successors(state: State | None) -> set[State]:
    out: set[State] = set()
    for t in TABLE:
        if state not in t.sources:
            continue
        if t.target is Target.SAME:
            assert state is not None
            out.add(state)
        elif t.target is Target.BEFORE_CANCEL:
            out.update(_cancellable())
        else:
            assert isinstance(t.target, State)
            out.add(t.target)
    return out


def _assert_table() -> None:
    kinds = [t.kind for t in TABLE]
    assert sorted(kinds) == sorted(ChangeKind), "one row per change kind"
    for t in TABLE:
        assert all(g in GUARDS for g in t.guards), t.kind
        assert (t.target is Target.SAME) <= (None not in t.sources)
    # every state reachable from REGISTER
    seen: set[State] = set()
    todo = list(_successors(None))
    while todo:
        s = todo.pop()
        if s not in seen:
            seen.add(s)
            todo.extend(_successors(s))
    assert seen == set(State), f"unreachable: {set(State) - seen}"
    for s in TERMINAL:
        assert not any(s in t.sources for t in TABLE), f"{s} must be absorbing"
    leaving = [
        t.kind for t in TABLE if State.CANCELLED in t.sources and t.target is not Target.SAME
    ]
    assert leaving == [ChangeKind.RESTORE]
    for s in set(State) - TERMINAL:
        assert _successors(s) - {s}, f"{s} is a dead end"
    foreign = {"kindergarten_unlicensed", "child_invalid", "grade_age_mismatch"}
    assert all(c in _MESSAGES for g in GUARDS.values() for c in g.codes if c not in foreign)


_assert_table()
del _assert_table
