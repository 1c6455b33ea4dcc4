"""A minimal provincial portal embedding studentstatus (Flask 3, SQLite).

What it shows, in about 400 lines:

* a **role switcher** instead of a login: the operator is picked from a list
  (a kindergarten and its county) and kept in the session;
* a **kindergarten** registers a child through a form
  (:func:`studentstatus.services.intake.register_child`), sees its PENDING
  record and any problem (e.g. ``DUPLICATE_ID``), asks for changes;
* a **county** approves records (:func:`~studentstatus.services.approval.approve_records`),
  resolves problems (:func:`~studentstatus.services.problems.resolve_problem`:
  evidence → accept, or delete) and approves change requests
  (:func:`~studentstatus.services.changes.approve_step`);
* a **record page** shows the changes the status machine allows today as
  buttons (:func:`studentstatus.domain.machine.allowed_changes`) and, for a
  change that is not allowed, the refusal reasons of a dry run
  (:func:`~studentstatus.services.changes.dry_run`): every violation's code,
  Chinese and English message.

Every refusal of the library (:class:`~studentstatus.errors.RuleViolations`,
:class:`~studentstatus.errors.PermissionDenied`,
:class:`~studentstatus.errors.NotFoundError`) becomes a page with its code and
both messages.  Jinja escapes every value, and identity numbers and G, J and L
numbers are masked on every page.

Run it: ``python examples/portal_app/app.py`` serves on http://127.0.0.1:8000 with
the SQLite file named by ``PORTAL_DB`` (default: a new temporary file).  The app is
seeded at start-up with one licensed kindergarten in Beijing's Chaoyang district.

>>> app = create_app(":memory:")
>>> client = app.test_client()
>>> client.get("/").status_code
200
"""

from __future__ import annotations

import logging
import os
import secrets
import sys
import tempfile
from collections.abc import Iterable
from datetime import date
from pathlib import Path
from typing import Any

from flask import Flask, flash, redirect, render_template, request, session, url_for
from werkzeug.wrappers.response import Response

from studentstatus.domain.age import birth_range, school_year_of
from studentstatus.domain.enums import ChangeKind, Grade, ProblemStatus, State
from studentstatus.domain.jurisdiction import Operator
from studentstatus.domain.machine import Context, allowed_changes
from studentstatus.domain.model import Child, StatusRecord
from studentstatus.domain.policy import Policy
from studentstatus.errors import (
    NotFoundError,
    PermissionDenied,
    RuleViolations,
    StudentStatusError,
    Violation,
    mask,
)
from studentstatus.ids import resident
from studentstatus.ports import Clock
from studentstatus.services.approval import approve_records
from studentstatus.services.changes import (
    approve_step,
    dry_run,
    list_pending_requests,
    reject_step,
    request_change,
)
from studentstatus.services.intake import register_child
from studentstatus.services.kindergartens import import_kindergartens
from studentstatus.services.problems import ProblemItem, list_problems, resolve_problem
from studentstatus.services.records import find_record, list_records
from studentstatus.services.runtime import Runtime, SystemClock
from studentstatus.store import open_store

__all__ = [
    "KINDERGARTEN_ROW",
    "OPERATORS",
    "create_app",
    "display_number",
    "main",
    "walkthrough_child",
]

log = logging.getLogger("portal_app")

KINDERGARTEN_ROW: dict[str, str] = {
    "school_code": "1111000001",
    "uscc": "12100000400000624D",
    "name": "朝阳区阳光幼儿园",
    "region_code": "110105",
    "type": "公办",
    "inclusive": "是",
    "licence_no": "教民1101051号",
    "licence_issuer": "北京市朝阳区教育委员会",
    "licence_issued": "2020-01-01",
    "licence_valid_until": "2030-12-31",
    "licence_state": "有效",
}
"""The licensed kindergarten the portal is seeded with (valid school code, USCC, licence).

The licence dates are replaced at seeding by dates around the clock's today
(issued five years before, valid five years after), so the portal works on
any day."""

OPERATORS: dict[str, str] = {
    "kindergarten:1111000001": "朝阳区阳光幼儿园 · kindergarten",
    "county:110105": "北京市朝阳区教委 · county",
}
"""The operators of the role switcher: ``role:scope`` → label."""

_SEEDER = Operator.parse("county:110105")
_FORM_FIELDS = (
    "name",
    "sex",
    "birth_date",
    "id_type",
    "id_number",
    "guardian_name",
    "guardian_relation",
    "guardian_phone",
    "entry_date",
    "grade",
)
_ID_TYPES = (
    ("resident", "居民身份证 · resident ID"),
    ("hk_mo_permit", "港澳居民居住证 · HK/Macau residence permit"),
    ("tw_permit", "台湾居民居住证 · Taiwan residence permit"),
    ("hk_mo_travel", "港澳居民来往内地通行证 · HK/Macau travel permit"),
    ("tw_travel", "台湾居民来往大陆通行证 · Taiwan travel permit"),
    ("foreign_pr", "外国人永久居留身份证 · foreign PR card"),
    ("passport", "护照 · passport"),
    ("none", "无证件 · no document"),
)


def display_number(number: str | None) -> str:
    """A record number as pages show it, masked: a G number holds a resident ID, J and L
    numbers the region and birth date (the rule of ``docs/concepts/privacy.md``).

    >>> display_number("G110105202003150038"), display_number("L110105202003150001")
    ('G11****************', 'L**************0001')
    >>> display_number(None)
    ''
    """
    if not number:
        return ""
    return mask(number)


def _violations_of(exc: StudentStatusError) -> list[Violation]:
    if isinstance(exc, RuleViolations):
        return list(exc.violations)
    if isinstance(exc, PermissionDenied):
        return [Violation(exc.code, "operator", exc.message_zh, exc.message_en)]
    text = str(exc)
    return [Violation(exc.code, "", text, text)]


def walkthrough_child(today: date) -> dict[str, str]:
    """The README's walk-through child for ``today``: a 中班 (middle class) child of the
    current school year, with a checksum-valid resident ID that matches its birth date.

    The birth date is 15 March of the year that puts the child in 中班 on the
    school year's cut-off (31 August), so the registration is accepted on any
    day; the entry date is the first day of the school year.

    >>> child = walkthrough_child(date(2026, 12, 7))
    >>> child["birth_date"], child["id_number"], child["entry_date"], child["grade"]
    ('2022-03-15', '110105202203150032', '2026-09-01', '中班')
    >>> walkthrough_child(date(2024, 9, 2))["id_number"]  # the 2024 school year
    '110105202003150038'
    """
    policy = Policy()
    year = school_year_of(today, policy)
    first, last = birth_range(Grade.MIDDLE, year, policy)
    birth = date(last.year, 3, 15)
    if not first <= birth <= last:  # pragma: no cover - another cut-off
        birth = last
    body = f"110105{birth:%Y%m%d}003"  # 003: the third boy registered that day
    return {
        "name": "王小明",
        "sex": "男",
        "birth_date": birth.isoformat(),
        "id_type": "resident",
        "id_number": body + resident.check_digit(body),
        "guardian_name": "王芳",
        "guardian_relation": "mother",
        "guardian_phone": "13800138000",
        "entry_date": max(date(year, 9, 1), birth).isoformat(),
        "grade": "中班",
    }


def _seed(rt: Runtime) -> None:
    with rt.store.unit_of_work() as uow:
        known = uow.kindergartens.find(KINDERGARTEN_ROW["school_code"]) is not None
    if known:
        return
    today = rt.clock.today()
    row = {
        **KINDERGARTEN_ROW,
        "licence_issued": date(today.year - 5, 1, 1).isoformat(),
        "licence_valid_until": date(today.year + 5, 12, 31).isoformat(),
    }
    report = import_kindergartens(rt, _SEEDER, [row])
    if report.rejected:  # pragma: no cover - the seed row is valid
        msg = "; ".join(f"{r.code}: {r.message_en}" for r in report.rejected)
        raise RuntimeError(msg)


def create_app(
    db_path: str | os.PathLike[str] | None = None,
    *,
    clock: Clock | None = None,
    seed: int | None = None,
) -> Flask:
    """Build the portal on the SQLite file ``db_path`` (``PORTAL_DB``, else a temporary file).

    ``clock`` and ``seed`` fix time and randomness (tests); the defaults are
    the system clock and an unseeded random source.  The store is created and
    seeded with :data:`KINDERGARTEN_ROW` when needed.

    >>> app = create_app(":memory:", seed=1)
    >>> from studentstatus.services.kindergartens import list_kindergartens
    >>> rt = app.extensions["studentstatus"]
    >>> type(rt.store).__name__, [kg.name for kg in list_kindergartens(rt, _SEEDER)]
    ('SqlStore', ['朝阳区阳光幼儿园'])
    """
    import random

    if db_path is None:
        db_path = os.environ.get("PORTAL_DB") or str(
            Path(tempfile.mkdtemp(prefix="portal-")) / "portal.db"
        )
    url = "sqlite://" if str(db_path) == ":memory:" else f"sqlite:///{os.fspath(db_path)}"
    store = open_store(url, create=True)
    rt = Runtime(store, clock or SystemClock(), random.Random(seed))
    _seed(rt)

    here = Path(__file__).resolve().parent
    app = Flask("portal_app", root_path=str(here), template_folder="templates")
    app.secret_key = os.environ.get("PORTAL_SECRET") or secrets.token_hex(16)
    app.extensions["studentstatus"] = rt
    app.jinja_env.filters["number"] = display_number
    app.jinja_env.filters["mask"] = mask
    _routes(app, rt)
    return app


def _operator() -> Operator:
    chosen = session.get("operator")
    if chosen not in OPERATORS:
        chosen = next(iter(OPERATORS))
    return Operator.parse(str(chosen))


def _children(rt: Runtime, records: Iterable[StatusRecord]) -> dict[str, Child]:
    ids = [r.child_id for r in records]
    with rt.store.unit_of_work() as uow:
        return dict(uow.children.get_many(ids))


def _record_problems(rt: Runtime, op: Operator) -> dict[str, list[ProblemItem]]:
    out: dict[str, list[ProblemItem]] = {}
    for p in list_problems(rt, op):
        out.setdefault(p.record_id, []).append(p)
    return out


def _allowed(rt: Runtime, record: StatusRecord) -> list[ChangeKind]:
    """The kinds the status machine allows for ``record`` today (context-only guards)."""
    with rt.store.unit_of_work() as uow:
        kg = uow.kindergartens.find(record.kindergarten_code)
        child = uow.children.get(record.child_id)
        open_request = uow.requests.open_for_record(record.id) is not None
        open_problem = any(
            p.status is not ProblemStatus.RESOLVED for p in uow.problems.for_record(record.id)
        )
    context = Context(
        rt.clock.today(),
        rt.policy,
        kindergarten=kg,
        child=child,
        open_request=open_request,
        has_open_problem=open_problem,
    )
    return allowed_changes(record, context)


def _date_or_none(text: str | None) -> date | None:
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise RuleViolations(
            [Violation("date_invalid", "until", "日期格式应为YYYY-MM-DD", "write dates YYYY-MM-DD")]
        ) from None


def _routes(app: Flask, rt: Runtime) -> None:
    def refused(exc: StudentStatusError, status: int) -> tuple[str, int]:
        log.info("refused: operator=%s path=%s code=%s", _operator(), request.path, exc.code)
        return (
            render_template(
                "refused.html",
                op=_operator(),
                operators=OPERATORS,
                violations=_violations_of(exc),
                back=url_for("index"),
            ),
            status,
        )

    @app.errorhandler(PermissionDenied)
    def permission_denied(exc: PermissionDenied) -> tuple[str, int]:
        return refused(exc, 403)

    @app.errorhandler(NotFoundError)
    def not_found(exc: NotFoundError) -> tuple[str, int]:
        return refused(exc, 404)

    @app.errorhandler(RuleViolations)
    def rule_violations(exc: RuleViolations) -> tuple[str, int]:
        return refused(exc, 422)

    @app.post("/operator")
    def switch_operator() -> Response:
        chosen = request.form.get("operator", "")
        if chosen in OPERATORS:
            session["operator"] = chosen
        return redirect(url_for("index"))

    def home(form: dict[str, str] | None = None, errors: list[Violation] | None = None) -> str:
        op = _operator()
        records = list(list_records(rt, op))
        return render_template(
            "index.html",
            op=op,
            operators=OPERATORS,
            records=records,
            children=_children(rt, records),
            problems=list(list_problems(rt, op)),
            record_problems=_record_problems(rt, op),
            requests=list_pending_requests(rt, op),
            form=form or {"entry_date": rt.clock.today().isoformat(), "id_type": "resident"},
            errors=errors or [],
            id_types=_ID_TYPES,
            today=rt.clock.today(),
            example=walkthrough_child(rt.clock.today()),
        )

    @app.get("/")
    def index() -> str:
        return home()

    @app.post("/register")
    def register() -> str | Response | tuple[str, int]:
        op = _operator()
        values = {k: request.form.get(k, "").strip() for k in _FORM_FIELDS}
        values["kindergarten_code"] = op.kindergarten_code or request.form.get(
            "kindergarten_code", ""
        )
        try:
            out = register_child(rt, op, values)
        except RuleViolations as exc:
            return home(values, list(exc.violations)), 422
        problems = ", ".join(k.value for k in out.problems) or "—"
        shown = display_number(out.temp_number)
        flash(f"已登记 / registered: {shown} ({out.state.value}); problems: {problems}")
        return redirect(url_for("record", record_id=out.record_id))

    @app.post("/records/<record_id>/approve")
    def approve(record_id: str) -> Response:
        report = approve_records(rt, _operator(), record_ids=[record_id])
        if report.refused:
            raise RuleViolations(
                Violation(r["code"], r["field"], r["message_zh"], r["message_en"])
                for r in report.refused
            )
        flash("已核准 / approved")
        return redirect(url_for("record", record_id=record_id))

    def record_page(record_id: str, dry: Any = None, dry_kind: str = "") -> str:
        op = _operator()
        rec = find_record(rt, op, record_id)
        child = _children(rt, [rec]).get(rec.child_id)
        allowed = _allowed(rt, rec)
        others = [k for k in ChangeKind if k not in allowed and k is not ChangeKind.REGISTER]
        problems = [p for p in list_problems(rt, op) if p.record_id == rec.id]
        return render_template(
            "record.html",
            op=op,
            operators=OPERATORS,
            rec=rec,
            child=child,
            allowed=allowed,
            others=others,
            problems=problems,
            can_request=op.can("request_change"),
            can_approve=op.can("approve_record") and rec.state is State.PENDING,
            dry=dry,
            dry_kind=dry_kind,
            today=rt.clock.today(),
        )

    @app.get("/records/<record_id>")
    def record(record_id: str) -> str:
        return record_page(record_id)

    @app.get("/records/<record_id>/dry-run")
    def check_change(record_id: str) -> str:
        kind = request.args.get("kind", "")
        result = dry_run(
            rt,
            _operator(),
            record_id,
            kind,
            reason=request.args.get("reason", ""),
            until=_date_or_none(request.args.get("until")),
        )
        return record_page(record_id, result, kind)

    @app.post("/records/<record_id>/change")
    def change(record_id: str) -> Response:
        f = request.form
        evidence = [e.strip() for e in f.get("evidence", "").split(",") if e.strip()]
        out = request_change(
            rt,
            _operator(),
            record_id,
            f.get("kind", ""),
            reason=f.get("reason", "").strip(),
            until=_date_or_none(f.get("until")),
            to_kindergarten=f.get("to_kindergarten", "").strip() or None,
            evidence=evidence,
        )
        if out.applied:
            flash(f"已生效 / applied: {f.get('kind')}")
        elif out.request is not None:
            step = out.request.steps[0]
            flash(f"已提交申请 / request opened: waits for {step.role.value}:{step.scope}")
        return redirect(url_for("record", record_id=record_id))

    @app.post("/problems/<problem_id>/resolve")
    def resolve(problem_id: str) -> Response:
        f = request.form
        evidence = [e.strip() for e in f.get("evidence", "").split(",") if e.strip()]
        out = resolve_problem(
            rt,
            _operator(),
            problem_id,
            f.get("action", ""),
            reason=f.get("reason", "").strip(),
            evidence=evidence,
        )
        flash(f"问题已处理 / problem {f.get('action')}: {out.problem.status.value}")
        return redirect(url_for("index"))

    @app.post("/requests/<request_id>/<decision>")
    def decide(request_id: str, decision: str) -> Response:
        op = _operator()
        if decision == "approve":
            out = approve_step(rt, op, request_id)
        else:
            out = reject_step(rt, op, request_id, reason=request.form.get("reason", "").strip())
        flash(f"{decision}: {'applied' if out.applied else 'recorded'}")
        return redirect(url_for("index"))


def _example_line(today: date) -> str:
    """Today's walk-through child in one line, asked for with ``--example`` (it holds a full
    resident ID, so it is printed only on request: never on a page nor in the server's log).

    >>> _example_line(date(2026, 12, 7))
    'try: 王小明 男 born 2022-03-15, resident ID 110105202203150032, 中班, entry 2026-09-01'
    """
    c = walkthrough_child(today)
    return (
        f"try: {c['name']} {c['sex']} born {c['birth_date']}, resident ID {c['id_number']}, "
        f"{c['grade']}, entry {c['entry_date']}"
    )


def main(argv: list[str] | None = None) -> None:
    """Serve the portal on http://127.0.0.1:8000 (``PORTAL_PORT`` changes the port).

    ``--example`` prints today's walk-through child (see :func:`walkthrough_child`)
    and exits.
    """
    args = sys.argv[1:] if argv is None else argv
    if "--example" in args:
        print(_example_line(SystemClock().today()))
        return
    logging.basicConfig(level=logging.INFO)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    app = create_app()
    port = int(os.environ.get("PORTAL_PORT", "8000"))
    rt: Runtime = app.extensions["studentstatus"]
    print(
        f"studentstatus portal on http://127.0.0.1:{port}/ (store: {rt.store!r}); "
        "today's walk-through child: python examples/portal_app/app.py --example",
        file=sys.stderr,
    )
    app.run(host="127.0.0.1", port=port, debug=False)


if __name__ == "__main__":
    main()
