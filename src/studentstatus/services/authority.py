"""Authority: every read and write decision of the services, in one place.

A service asks this module three kinds of question, always in this order:

1. **May the role do it at all?** :func:`require_role` (``role_not_allowed``).
   The answer depends on the operator and the action only, never on the object,
   so it reveals nothing about what exists.
2. **Is the object inside the operator's scope?** :func:`record_in_scope`,
   :func:`request_in_scope`, :func:`problem_in_scope`, :func:`case_in_scope`,
   :func:`kindergarten_in_scope`.  An object outside the scope is answered
   **exactly like one that does not exist**: the same
   :class:`~studentstatus.errors.NotFoundError` (code ``not_found``), the same text
   (``no record G11**************** / 未找到学籍 G11****************``), the same CLI exit
   status.  Whoever knows a child's ID number learns nothing of where the child is
   by asking about it.  The refusal is still logged for the host (operator, action,
   masked reference, ``out_of_scope``).
3. **Does a write stay inside the scope?** :func:`kindergarten_write` checks both the
   stored and the requested state of a kindergarten: a county or province creates
   and updates kindergartens only inside its region, and a change of region is its
   own two-sided change (:func:`studentstatus.services.moves.move_kindergarten`),
   never a side effect of an import.

Requests by a kindergarten that is not the child's own (a transfer applied for by
the destination) are *foreign* (:func:`is_home_request` is false): they do not block
the home kindergarten's own changes nor its county's rollover, and the home side may
refuse them at once.  The rules are written down in ``docs/concepts/jurisdictions.md``.

Regions themselves are public (the region table is published), so a report or a
rollover asked for a region outside the scope is refused as such
(:func:`region_in_scope`, ``out_of_scope``).

>>> from datetime import date
>>> from studentstatus.domain.enums import Grade, State
>>> from studentstatus.domain.jurisdiction import Operator
>>> from studentstatus.domain.model import StatusRecord
>>> rec = StatusRecord("r1", "c1", "1111000001", "110105", State.ACTIVE, Grade.JUNIOR,
...                    date(2025, 9, 1), national_number="G11010520200315002X")
>>> record_in_scope(Operator.parse("county:110105"), "show", rec, "r1").id
'r1'
>>> try:
...     record_in_scope(Operator.parse("county:440306"), "show", rec, rec.national_number)
... except Exception as exc:
...     hidden = str(exc)
>>> try:
...     record_in_scope(Operator.parse("county:440306"), "show", None, rec.national_number)
... except Exception as exc:
...     absent = str(exc)
>>> hidden == absent, hidden
(True, 'no record G11**************** / 未找到学籍 G11****************')
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from studentstatus.domain.approvals import step_fits
from studentstatus.domain.jurisdiction import Operator
from studentstatus.domain.model import ChangeRequest, Kindergarten, ProblemRecord, StatusRecord
from studentstatus.domain.monitoring import DropoutCase
from studentstatus.errors import NotFoundError, PermissionDenied, Violation, redact

__all__ = [
    "KINDS",
    "absent",
    "case_in_scope",
    "covers_case",
    "covers_request",
    "is_home_request",
    "kindergarten_in_scope",
    "kindergarten_write",
    "problem_in_scope",
    "record_in_scope",
    "region_in_scope",
    "request_in_scope",
    "require_role",
]

log = logging.getLogger("studentstatus.services")

KINDS: dict[str, str] = {
    "record": "学籍",
    "request": "变动申请",
    "problem": "问题学籍",
    "case": "控辍案件",
    "kindergarten": "幼儿园",
}
"""The kinds of object a look-up may not find, with their Chinese names."""


def absent(kind: str, ref: str) -> NotFoundError:
    """The one answer for an object that does not exist **or** lies outside the scope.

    >>> str(absent("request", "q7"))
    'no request q7 / 未找到变动申请 q7'
    >>> absent("record", "11010520200315002X").message_en
    'no record 11****************'
    """
    shown = redact(str(ref).strip())[:64]
    return NotFoundError(
        f"no {kind} {shown}", field=kind, message_zh=f"未找到{KINDS.get(kind, kind)} {shown}"
    )


def _log_refusal(operator: Operator, action: str, what: str, code: str) -> None:
    log.warning(
        "refused: operator=%s action=%s subject=%s code=%s", operator, action, redact(what), code
    )


def require_role(operator: Operator, action: str, *, also: Sequence[str] = ()) -> None:
    """Raise ``PermissionDenied(role_not_allowed)`` unless the role may do ``action``
    (or any of ``also``); the refusal is logged.

    >>> require_role(Operator.parse("kindergarten:1111000001"), "register")
    >>> require_role(Operator.parse("county:110105"), "register")
    Traceback (most recent call last):
    ...
    studentstatus.errors.PermissionDenied: role_not_allowed: county:110105 may not access ...
    """
    if any(operator.can(a) for a in (action, *also)):
        return
    _log_refusal(operator, action, f"action {action}", "role_not_allowed")
    raise PermissionDenied(str(operator), f"action {action!r}", code="role_not_allowed")


def region_in_scope(operator: Operator, action: str, region: str) -> None:
    """Raise ``PermissionDenied(out_of_scope)`` unless ``region`` (a code or a prefix) is
    inside the operator's region.  Regions are public: this refusal hides nothing.

    >>> region_in_scope(Operator.parse("city:4403"), "report", "440306")
    >>> region_in_scope(Operator.parse("city:4403"), "report", "44")
    Traceback (most recent call last):
    ...
    studentstatus.errors.PermissionDenied: out_of_scope: city:4403 may not access region 44 ...
    """
    scope = operator.region_prefix
    if scope is not None and region.startswith(scope):
        return
    _log_refusal(operator, action, f"region {region}", "out_of_scope")
    raise PermissionDenied(str(operator), f"region {region}")


def _hidden(operator: Operator, action: str, kind: str, ref: str) -> NotFoundError:
    _log_refusal(operator, action, f"{kind} {ref}", "out_of_scope")
    return absent(kind, ref)


def record_in_scope(
    operator: Operator, action: str, record: StatusRecord | None, ref: str
) -> StatusRecord:
    """``record`` if the operator covers it; else the same error as for no record at all.

    See the module example.
    """
    if record is None:
        raise absent("record", ref)
    if not operator.covers_record(record):
        raise _hidden(operator, action, "record", ref)
    return record


def kindergarten_in_scope(
    operator: Operator, action: str, kindergarten: Kindergarten | None, ref: str
) -> Kindergarten:
    """``kindergarten`` if the operator covers it; else as if there were none.

    >>> from studentstatus.domain.enums import KindergartenType
    >>> kg = Kindergarten("1111000001", "x", "一幼", "110105", KindergartenType.PUBLIC)
    >>> kindergarten_in_scope(Operator.parse("county:110105"), "roll", kg, "1111000001").name
    '一幼'
    >>> kindergarten_in_scope(Operator.parse("county:110106"), "roll", kg, "1111000001")
    Traceback (most recent call last):
    ...
    studentstatus.errors.NotFoundError: no kindergarten 1111000001 / 未找到幼儿园 1111000001
    """
    if kindergarten is None:
        raise absent("kindergarten", ref)
    if not operator.covers_kindergarten(kindergarten):
        raise _hidden(operator, action, "kindergarten", ref)
    return kindergarten


def is_home_request(request: ChangeRequest, record: StatusRecord) -> bool:
    """Whether ``request`` was applied for by the record's own side (its kindergarten,
    or an operator whose scope covers the record); a transfer applied for by the
    destination kindergarten is *foreign*.

    Change requests are applied for by kindergartens
    (:data:`~studentstatus.domain.jurisdiction.ROLE_RULES`), so for every request the
    stores hold this is ``request.applicant == "kindergarten:" + record.kindergarten_code``
    (the SQL rollover uses that form).

    >>> from datetime import date, datetime
    >>> from studentstatus.domain.enums import ChangeKind, Grade, State
    >>> rec = StatusRecord("r1", "c1", "1111000001", "110105", State.ACTIVE, Grade.JUNIOR,
    ...                    date(2025, 9, 1))
    >>> q = ChangeRequest("q1", "r1", ChangeKind.TRANSFER, "kindergarten:4403000001",
    ...                   datetime(2026, 3, 2), ())
    >>> is_home_request(q, rec)
    False
    """
    try:
        applicant = Operator.parse(request.applicant)
    except ValueError:
        return False
    return applicant.covers_record(record)


def covers_request(
    operator: Operator,
    request: ChangeRequest,
    record: StatusRecord | None,
    destination: Kindergarten | None,
) -> bool:
    """Whether the request lies in the operator's jurisdiction: the operator applied for
    it, covers its record or its destination kindergarten, or fits one of its steps.

    >>> from datetime import date, datetime
    >>> from studentstatus.domain.enums import ChangeKind
    >>> q = ChangeRequest("q1", "r1", ChangeKind.SUSPEND, "kindergarten:1111000001",
    ...                   datetime(2026, 3, 2), ())
    >>> covers_request(Operator.parse("kindergarten:1111000001"), q, None, None)
    True
    >>> covers_request(Operator.parse("kindergarten:1111000002"), q, None, None)
    False
    """
    if request.applicant == str(operator):
        return True
    if record is not None and operator.covers_record(record):
        return True
    if destination is not None and operator.covers_kindergarten(destination):
        return True
    return any(step_fits(operator, s) for s in request.steps)


def request_in_scope(
    operator: Operator,
    action: str,
    request: ChangeRequest | None,
    ref: str,
    *,
    record: StatusRecord | None = None,
    destination: Kindergarten | None = None,
) -> ChangeRequest:
    """``request`` if it lies in the operator's jurisdiction (:func:`covers_request`);
    else the same error as for no request at all.

    >>> request_in_scope(Operator.parse("ministry"), "show_request", None, "q9")
    Traceback (most recent call last):
    ...
    studentstatus.errors.NotFoundError: no request q9 / 未找到变动申请 q9
    """
    if request is None:
        raise absent("request", ref)
    if not covers_request(operator, request, record, destination):
        raise _hidden(operator, action, "request", ref)
    return request


def problem_in_scope(
    operator: Operator,
    action: str,
    problem: ProblemRecord | None,
    record: StatusRecord | None,
    ref: str,
) -> ProblemRecord:
    """``problem`` if the operator covers its record (or, without a record, its county);
    else the same error as for no problem at all.

    >>> problem_in_scope(Operator.parse("county:110105"), "resolve", None, None, "p1")
    Traceback (most recent call last):
    ...
    studentstatus.errors.NotFoundError: no problem p1 / 未找到问题学籍 p1
    """
    if problem is None:
        raise absent("problem", ref)
    if record is not None:
        covered = operator.covers_record(record)
    else:
        county = getattr(problem, "county_code", "") or ""
        covered = bool(county) and operator.covers_region(county)
    if not covered:
        raise _hidden(operator, action, "problem", ref)
    return problem


def covers_case(operator: Operator, case: DropoutCase) -> bool:
    """Whether a dropout case is in scope: its kindergarten's own operator, or a region
    operator covering its county.

    >>> from datetime import UTC, date, datetime
    >>> from studentstatus.domain.monitoring import CaseTrigger, DropoutCase
    >>> case = DropoutCase("k1", "r1", "110105", "1111000001", CaseTrigger.MANUAL,
    ...                    datetime(2025, 10, 8, tzinfo=UTC), date(2025, 10, 8))
    >>> covers_case(Operator.parse("county:110105"), case)
    True
    >>> covers_case(Operator.parse("kindergarten:1111000002"), case)
    False
    """
    if operator.kindergarten_code is not None:
        return operator.kindergarten_code == case.kindergarten_code
    return operator.covers_region(case.county_code)


def case_in_scope(
    operator: Operator, action: str, case: DropoutCase | None, ref: str
) -> DropoutCase:
    """``case`` if :func:`covers_case`; else the same error as for no case at all.

    >>> case_in_scope(Operator.parse("county:110105"), "case", None, "k9")
    Traceback (most recent call last):
    ...
    studentstatus.errors.NotFoundError: no case k9 / 未找到控辍案件 k9
    """
    if case is None:
        raise absent("case", ref)
    if not covers_case(operator, case):
        raise _hidden(operator, action, "case", ref)
    return case


def kindergarten_write(
    operator: Operator, stored: Kindergarten | None, new: Kindergarten
) -> list[Violation]:
    """Every reason ``operator`` may not write ``new`` over ``stored`` (empty: allowed).

    Both states must lie in the operator's region: a kindergarten of another region
    is not taken over (``school_code_taken``, which says no more than that the code is
    registered elsewhere), and a change of region is refused
    (``region_move_needs_approval``): it is its own change, approved by both counties
    (:func:`studentstatus.services.moves.move_kindergarten`).

    >>> from studentstatus.domain.enums import KindergartenType
    >>> kg = Kindergarten("1111000001", "x", "一幼", "440303", KindergartenType.PUBLIC)
    >>> moved = Kindergarten("1111000001", "x", "一幼", "430104", KindergartenType.PUBLIC)
    >>> [v.code for v in kindergarten_write(Operator.parse("province:43"), kg, moved)]
    ['school_code_taken']
    >>> [v.code for v in kindergarten_write(Operator.parse("province:44"), kg, moved)]
    ['out_of_scope']
    >>> [v.code for v in kindergarten_write(Operator.parse("ministry"), kg, moved)]
    ['region_move_needs_approval']
    >>> kindergarten_write(Operator.parse("county:440303"), None, kg)
    []
    """
    out: list[Violation] = []
    if stored is not None and not operator.covers_kindergarten(stored):
        out.append(
            Violation(
                "school_code_taken",
                "school_code",
                "该办学代码已由其他地区登记，本操作者无权修改",
                "this school code is registered in another region; this operator may not change it",
            )
        )
        return out
    if new.region_code and not operator.covers_region(new.region_code):
        out.append(
            Violation(
                "out_of_scope",
                "region_code",
                f"{operator} 无权登记该地区的幼儿园",
                f"{operator} may not register kindergartens in this region",
            )
        )
        return out
    if stored is not None and stored.region_code != new.region_code:
        out.append(
            Violation(
                "region_move_needs_approval",
                "region_code",
                "幼儿园变更所属地区须经迁出、迁入两地县级教育部门审核（move_kindergarten）",
                "moving a kindergarten to another region is its own change, approved by "
                "the counties on both sides (move_kindergarten)",
                hint=f"{stored.region_code} -> {new.region_code}",
            )
        )
    return out
