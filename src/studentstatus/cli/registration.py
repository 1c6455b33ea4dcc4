"""Registration commands: kindergarten registry, child intake, approval, verification, problems,
national numbers and look-up.

``kindergarten import``, ``import``, ``approve``, ``verify``, ``problems``,
``resolve-problem``, ``issue-numbers``, ``stuck`` and ``show``: thin wrappers over
:mod:`studentstatus.services.kindergartens`, :mod:`~studentstatus.services.intake`,
:mod:`~studentstatus.services.approval`, :mod:`~studentstatus.services.verification`,
:mod:`~studentstatus.services.problems`, :mod:`~studentstatus.services.numbers` and
:mod:`~studentstatus.services.stuck`.

Exit codes: 0 when everything went through; 1 when a row, a record or the
operator was refused (the reasons are printed; with ``--json`` the JSON
document is printed all the same); 2 for usage errors.

The clock is the system clock; ``STUDENTSTATUS_NOW`` (an ISO date-time) fixes
it, for replays and tests.  Progress is shown on stderr only when it is a
terminal.
"""

from __future__ import annotations

import json
import sys
import tempfile
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import click

from studentstatus.cli._common import (
    as_option,
    atomic_target,
    busy,
    echo_json,
    handle_errors,
    json_default,
    json_option,
    opened_runtime,
    parse_operator,
    sheet_option,
    store_option,
)

if TYPE_CHECKING:
    from studentstatus.services.intake import RegisteredChild, RosteredChild
    from studentstatus.services.numbers import IssuedItem

__all__ = ["register"]


def _progress(label: str) -> Callable[[int], None] | None:
    if not sys.stderr.isatty():
        return None

    def show(done: int) -> None:
        click.echo(f"\r{label}: {done:,}", err=True, nl=False)

    return show


def _end_progress(progress: Callable[[int], None] | None) -> None:
    if progress is not None:
        click.echo("", err=True)


def _print_rejections(rejected: list[Any]) -> None:
    for r in rejected:
        click.echo(f"  row {r.row} [{r.field}] {r.code}: {r.message_en} / {r.message_zh}")


def _echo_file(path: str, info: Any) -> None:
    """One stderr line saying what a file was read as (format, encoding or sheet)."""
    if info is not None:
        click.echo(f"read {path}: {info.describe()}", err=True)


@click.group("kindergarten")
def kindergarten_group() -> None:
    """The kindergarten registry (licensed kindergartens and their licences)."""


@kindergarten_group.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@sheet_option
@as_option
@json_option
@store_option
@handle_errors()
def kindergarten_import_cmd(
    file: str, sheet: str | None, operator_text: str, as_json: bool, store_url: str
) -> None:
    """Import kindergartens from FILE (school_code, uscc, name, region_code, type, …).

    FILE is CSV (UTF-8, GB18030/GBK or UTF-16) or an Excel workbook (.xlsx, the
    first sheet or --sheet); it is checked as a file before anything is written.
    """
    from studentstatus.services.kindergartens import import_kindergartens

    operator = parse_operator(operator_text)
    with opened_runtime(store_url) as rt:
        report = import_kindergartens(rt, operator, file, sheet=sheet)
    if not as_json:
        _echo_file(file, report.file)
    if as_json:
        echo_json(report.to_dict())
    else:
        click.echo(f"accepted {report.accepted} rows, rejected {report.rejected_rows} rows")
        _print_rejections(report.rejected)
    sys.exit(1 if report.rejected else 0)


@kindergarten_group.command("move")
@click.argument("school_code")
@click.option("--to", "to_region", required=True, help="The 6-digit county code it moves to.")
@click.option("--reason", default="", help="Why (kept in the audit trail).")
@as_option
@json_option
@store_option
@handle_errors()
def kindergarten_move_cmd(
    school_code: str, to_region: str, reason: str, operator_text: str, as_json: bool, store_url: str
) -> None:
    """(county and above) Propose, or as the other county confirm, a kindergarten's move."""
    from studentstatus.services.moves import move_kindergarten

    operator = parse_operator(operator_text)
    with opened_runtime(store_url) as rt:
        out = move_kindergarten(rt, operator, school_code, to_region, reason=reason)
    if as_json:
        echo_json(out.to_dict())
    elif out.state == "proposed":
        click.echo(
            f"proposed: {out.school_code} {out.from_region} -> {out.to_region};"
            " the other county confirms with the same command"
        )
    else:
        click.echo(
            f"moved: {out.school_code} {out.from_region} -> {out.to_region}"
            f" ({out.records} records, {out.problems} open problems)"
        )


@kindergarten_group.command("cancel-move")
@click.argument("school_code")
@click.option("--reason", default="", help="Why (kept in the audit trail).")
@as_option
@json_option
@store_option
@handle_errors()
def kindergarten_cancel_move_cmd(
    school_code: str, reason: str, operator_text: str, as_json: bool, store_url: str
) -> None:
    """(either county) Withdraw a kindergarten's pending move."""
    from studentstatus.services.moves import cancel_kindergarten_move

    operator = parse_operator(operator_text)
    with opened_runtime(store_url) as rt:
        out = cancel_kindergarten_move(rt, operator, school_code, reason=reason)
    if as_json:
        echo_json(out.to_dict())
    else:
        click.echo(f"cancelled: {out.school_code} -> {out.to_region}")


@click.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@sheet_option
@as_option
@click.option(
    "--unlicensed-roster",
    is_flag=True,
    help="(county) Put children of unlicensed kindergartens on the county's roster.",
)
@click.option(
    "--workers",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Check the rows in N separate processes while this one writes (large files).",
)
@json_option
@store_option
@handle_errors()
def import_cmd(
    file: str,
    sheet: str | None,
    operator_text: str,
    unlicensed_roster: bool,
    workers: int,
    as_json: bool,
    store_url: str,
) -> None:
    """Register the children in FILE (one row per child) as PENDING records.

    FILE is CSV (UTF-8, GB18030/GBK or UTF-16) or an Excel workbook (.xlsx, the
    first sheet or --sheet); it is checked as a file (encoding, header, at least
    one data row) before anything is written.

    Every row is checked completely; rejected rows write nothing; the whole
    file is one unit of work.  ``--workers N`` checks the rows in N processes
    (the results are the same; worth it from tens of thousands of rows).
    ``--json`` lists the records written, their temporary numbers masked.
    """
    from studentstatus.errors import mask_number
    from studentstatus.services.intake import import_children

    operator = parse_operator(operator_text)
    progress = _progress("rows")
    with tempfile.TemporaryFile("w+", encoding="utf-8") as spool, opened_runtime(store_url) as rt:
        shown = _Shown()

        def sink(item: RegisteredChild | RosteredChild) -> None:
            doc = item.to_dict()
            if doc.get("temp_number"):  # an L number holds the region and birth date
                doc = {**doc, "temp_number": mask_number(doc["temp_number"])}
            if not as_json:
                number = doc.get("temp_number") or "-"
                what = doc.get("record_id") or doc.get("roster_id")
                shown.add(f"  row {doc['row']}: {what} {number} {doc.get('state') or 'rostered'}")
                return
            spool.write(json.dumps(doc, ensure_ascii=False, default=json_default) + "\n")

        report = import_children(
            rt,
            operator,
            file,
            unlicensed_roster=unlicensed_roster,
            on_record=sink,
            collect_records=False,
            progress=progress,
            workers=workers,
            sheet=sheet,
        )
        _end_progress(progress)
        if not as_json:  # (the JSON document has "file")
            _echo_file(file, report.file)
        if as_json:
            spool.seek(0)
            _echo_streamed(report.to_dict(), "records", (line.rstrip("\n") for line in spool))
    if not as_json:
        problems = ", ".join(f"{k} {v}" for k, v in sorted(report.problems.items())) or "none"
        click.echo(
            f"accepted {report.accepted} rows, rejected {report.rejected_rows} rows, "
            f"rostered {report.rostered}; problems: {problems}"
        )
        shown.echo("written")
        _print_rejections(report.rejected)
    sys.exit(1 if report.rejected else 0)


class _Shown:
    """The first :attr:`LIMIT` lines of a long list for the text output, and the count."""

    LIMIT = 20

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.count = 0

    def add(self, line: str) -> None:
        self.count += 1
        if len(self.lines) < self.LIMIT:
            self.lines.append(line)

    def echo(self, what: str) -> None:
        if self.lines:
            click.echo(f"{what} (numbers masked; show --reveal prints one in full):")
        for line in self.lines:
            click.echo(line)
        if self.count > len(self.lines):
            click.echo(f"  … and {self.count - len(self.lines):,} more (--json lists every one)")


def _echo_streamed(doc: dict[str, Any], key: str, items: Iterator[str]) -> None:
    """Print ``doc`` as one JSON document whose ``key`` list is streamed from JSON texts."""
    click.echo("{")
    for k, v in doc.items():
        if k != key:
            value = json.dumps(v, ensure_ascii=False, default=json_default)
            click.echo(f"  {json.dumps(k)}: {value},")
    click.echo(f"  {json.dumps(key)}: [", nl=False)
    n = _echo_items(items, indent="    ")
    click.echo("  ]\n}" if n else "]\n}")


def _echo_items(items: Iterator[str], *, indent: str) -> int:
    n = 0
    for item in items:
        click.echo(("\n" if n == 0 else ",\n") + indent + item, nl=False)
        n += 1
    if n:
        click.echo("")
    return n


@click.command("approve")
@as_option
@click.option("--all", "all_pending", is_flag=True, help="Approve every PENDING record in scope.")
@click.option("--record", "record_ids", multiple=True, metavar="ID", help="Record id (repeatable).")
@json_option
@store_option
@handle_errors()
def approve_cmd(
    operator_text: str,
    all_pending: bool,
    record_ids: tuple[str, ...],
    as_json: bool,
    store_url: str,
) -> None:
    """(county) Approve PENDING records: PENDING → ACTIVE (核准)."""
    from studentstatus.services.approval import approve_records

    if not all_pending and not record_ids:
        raise click.UsageError("give --all or at least one --record ID")
    operator = parse_operator(operator_text)
    with tempfile.TemporaryFile("w+", encoding="utf-8") as spool, opened_runtime(store_url) as rt:

        def sink(record_id: str) -> None:
            spool.write(json.dumps(record_id) + "\n")

        with busy("approving"):
            report = approve_records(
                rt,
                operator,
                record_ids=list(record_ids) or None,
                all_pending=all_pending,
                collect=False,
                on_approved=sink if as_json else None,
            )
        if as_json:  # the approved ids are streamed from the spool: flat memory
            spool.seek(0)
            _echo_streamed(report.to_dict(), "approved", (line.rstrip("\n") for line in spool))
    if not as_json:
        click.echo(f"approved {report.approved_count}, refused {len(report.refused)}")
        for r in report.refused:
            click.echo(f"  {r['record_id']} {r['code']}: {r['message_en']} / {r['message_zh']}")
    sys.exit(1 if report.refused else 0)


@click.command("verify")
@click.option(
    "--registry",
    "registry_file",
    required=True,
    type=click.Path(exists=True, dir_okay=False),
    help="Population-registry extract: CSV (UTF-8, GB18030, UTF-16) or .xlsx "
    "(id_number, name, sex, birth_date, status).",
)
@sheet_option
@as_option
@json_option
@store_option
@handle_errors()
def verify_cmd(
    registry_file: str, sheet: str | None, operator_text: str, as_json: bool, store_url: str
) -> None:
    """(province) Verify resident IDs of ACTIVE/PENDING records against the registry."""
    from studentstatus.adapters.population import CsvPopulationRegistry
    from studentstatus.services.authority import require_role
    from studentstatus.services.verification import verify_records

    operator = parse_operator(operator_text)
    require_role(operator, "verify")  # before loading a big extract
    registry = CsvPopulationRegistry(registry_file, sheet=sheet)  # checked as a file first
    if not as_json:
        _echo_file(registry_file, registry.file)
    progress = _progress("records")
    with opened_runtime(store_url, registry) as rt:
        report = verify_records(rt, operator, progress=progress)
    _end_progress(progress)
    if as_json:
        echo_json(report.to_dict())
    else:
        results = ", ".join(f"{k} {v}" for k, v in sorted(report.results.items())) or "none"
        problems = ", ".join(f"{k} {v}" for k, v in sorted(report.problems.items())) or "none"
        click.echo(f"checked {report.checked}: {results}; problems opened: {problems}")
        skipped = sum(report.registry_skipped.values())
        why = ", ".join(f"{k} {v}" for k, v in report.registry_skipped.items())
        click.echo(f"registry rows skipped: {skipped}" + (f" ({why})" if why else ""))


@click.command("problems")
@as_option
@click.option("--overdue", is_flag=True, help="Only problems past their due date.")
@click.option("--all", "include_resolved", is_flag=True, help="Include resolved problems.")
@click.option(
    "--csv",
    "csv_file",
    type=click.Path(dir_okay=False, writable=True),
    help="Write the list to this file: CSV (formula-leading cells escaped), or an Excel "
    "workbook when the name ends in .xlsx (text kept as text).",
)
@json_option
@store_option
@handle_errors()
def problems_cmd(
    operator_text: str,
    overdue: bool,
    include_resolved: bool,
    csv_file: str | None,
    as_json: bool,
    store_url: str,
) -> None:
    """The problem records (问题学籍) in scope: kind, record, kindergarten, due date, status."""
    from studentstatus.services.problems import PROBLEM_COLUMNS, list_problems
    from studentstatus.tabular import write_table

    if as_json and csv_file:
        raise click.UsageError("--json and --csv are exclusive")
    operator = parse_operator(operator_text)
    with opened_runtime(store_url) as rt:
        items = list_problems(rt, operator, overdue=overdue, include_resolved=include_resolved)
        if csv_file:
            rows = (
                {
                    **p.to_dict(),
                    "overdue": "是" if p.overdue else "否",  # a reader's cell, not `False`
                    "related_record_ids": " ".join(p.related_record_ids),
                }
                for p in items
            )
            with atomic_target(csv_file) as tmp:  # no half-written file, no traceback
                n = write_table(tmp, PROBLEM_COLUMNS, rows)
            click.echo(f"wrote {n} problems to {csv_file}", err=True)
            return
        if as_json:
            click.echo("[", nl=False)
            _echo_items((json.dumps(p.to_dict(), ensure_ascii=False) for p in items), indent="  ")
            click.echo("]")
            return
        n = 0
        for p in items:
            n += 1
            late = " OVERDUE" if p.overdue else ""
            click.echo(
                f"{p.id}  {p.kind.value:<20} record {p.record_id}  "
                f"kindergarten {p.kindergarten_code}  due {p.due_date.isoformat()}  "
                f"{p.status.value}{late}"
            )
        click.echo(f"{n} problems", err=True)


@click.command("resolve-problem")
@click.argument("problem_id")
@click.option(
    "--action",
    required=True,
    type=click.Choice(["evidence", "correct", "delete", "arbitrate", "accept", "reopen"]),
    help="evidence (佐证), correct (变更), delete (删除), arbitrate (仲裁); "
    "accept/reopen: the county's answer to evidence.",
)
@as_option
@click.option("--reason", required=True, help="Why (logged with the action).")
@click.option("--evidence", multiple=True, metavar="REF", help="Evidence reference (repeatable).")
@click.option(
    "--set",
    "corrections",
    multiple=True,
    metavar="FIELD=VALUE",
    help="A corrected value for 'correct' (CSV column name, e.g. id_number=…; repeatable).",
)
@click.option("--winner", metavar="RECORD_ID", help="The record that keeps its status (arbitrate).")
@click.option(
    "--registry",
    "registry_file",
    type=click.Path(exists=True, dir_okay=False),
    help="Registry extract (CSV or .xlsx) to re-verify a corrected resident ID.",
)
@sheet_option
@json_option
@store_option
@handle_errors()
def resolve_problem_cmd(
    problem_id: str,
    action: str,
    operator_text: str,
    reason: str,
    evidence: tuple[str, ...],
    corrections: tuple[str, ...],
    winner: str | None,
    registry_file: str | None,
    sheet: str | None,
    as_json: bool,
    store_url: str,
) -> None:
    """Resolve problem PROBLEM_ID with an action; every action is logged with its reason."""
    from studentstatus.services.problems import resolve_problem

    operator = parse_operator(operator_text)
    values: dict[str, str] = {}
    for item in corrections:
        field, sep, value = item.partition("=")
        if not sep or not field.strip():
            raise click.BadParameter(f"expected FIELD=VALUE, got {item!r}", param_hint="--set")
        values[field.strip()] = value
    registry = None
    if registry_file:
        from studentstatus.adapters.population import CsvPopulationRegistry

        registry = CsvPopulationRegistry(registry_file, sheet=sheet)
    with opened_runtime(store_url, registry) as rt:
        out = resolve_problem(
            rt,
            operator,
            problem_id,
            action,
            reason=reason,
            evidence=evidence,
            corrections=values or None,
            winner_record_id=winner,
        )
    if as_json:
        echo_json(out.to_dict())
    else:
        p = out.problem
        click.echo(f"{p.id} {p.kind.value}: {p.status.value}")
        if out.cancelled:
            click.echo("cancelled: " + ", ".join(out.cancelled))
        if out.opened:
            click.echo("opened: " + ", ".join(out.opened))


@click.command("issue-numbers")
@as_option
@json_option
@store_option
@handle_errors()
def issue_numbers_cmd(operator_text: str, as_json: bool, store_url: str) -> None:
    """(province, ministry) Issue G/J national numbers to every eligible ACTIVE record.

    The numbers are printed masked (a G number embeds the child's ID); ``show
    --reveal`` prints one in full, audited.
    """
    from studentstatus.errors import mask_number
    from studentstatus.services.numbers import issue_numbers

    operator = parse_operator(operator_text)
    progress = _progress("records")
    with tempfile.TemporaryFile("w+", encoding="utf-8") as spool, opened_runtime(store_url) as rt:
        listed = _Shown()

        def sink(item: IssuedItem) -> None:
            # G numbers embed the ID, J numbers the birth date: masked (see `show --reveal`)
            shown = {**item.to_dict(), "national_number": mask_number(item.national_number)}
            if not as_json:
                listed.add(f"  {shown.get('record_id', '?')} {shown['national_number']}")
                return
            spool.write(json.dumps(shown, ensure_ascii=False) + "\n")

        report = issue_numbers(rt, operator, progress=progress, collect=False, on_issued=sink)
        _end_progress(progress)
        if as_json:  # the issued numbers are streamed from the spool: flat memory
            spool.seek(0)
            _echo_streamed(report.to_dict(), "issued", (line.rstrip("\n") for line in spool))
    if not as_json:
        skipped = ", ".join(f"{k} {v}" for k, v in sorted(report.skipped.items())) or "none"
        click.echo(f"issued {sum(report.counts.values())}; skipped: {skipped}")
        listed.echo("issued")
        for line in report.skip_lines():
            click.echo("  " + line)


@click.command("stuck")
@as_option
@json_option
@store_option
@handle_errors()
def stuck_cmd(operator_text: str, as_json: bool, store_url: str) -> None:
    """Records in scope without a national number, by reason, with the next step and who takes
    it, the deadline and whether it has passed (e.g. ``--as county:CODE``)."""
    from studentstatus.services.stuck import list_stuck_records

    operator = parse_operator(operator_text)
    with opened_runtime(store_url) as rt:
        report = list_stuck_records(rt, operator)
    if as_json:
        echo_json(report.to_dict())
        return
    for line in report.lines():
        click.echo(line)


@click.command("show")
@click.argument("key", metavar="NUMBER_OR_RECORD_ID")
@as_option
@click.option(
    "--reveal",
    is_flag=True,
    help="Show the document and G/J/L numbers in full (scope must cover it; audited).",
)
@json_option
@store_option
@handle_errors()
def show_cmd(key: str, operator_text: str, reveal: bool, as_json: bool, store_url: str) -> None:
    """Show a record by national, temporary or former number, or by record id.

    Every number is masked unless --reveal, which is written to the audit trail.
    """
    from studentstatus.services.numbers import get_record

    operator = parse_operator(operator_text)
    with opened_runtime(store_url) as rt:
        rec = get_record(rt, operator, key, reveal=reveal)
    if as_json:
        echo_json(rec.to_dict())
        return
    child = rec.child
    grade = rec.grade.value if rec.grade else "-"
    click.echo(f"record {rec.record_id}  {rec.state.value}  {grade}")
    click.echo(f"kindergarten {rec.kindergarten_code} ({rec.region_code})")
    click.echo(f"national number {rec.national_number or '-'}")
    click.echo(f"temporary number {rec.temp_number or '-'}")
    click.echo("former numbers " + (", ".join(rec.former_numbers) or "-"))
    doc_type = child.document_type.value if child.document_type else "none"
    click.echo(
        f"child {child.name} {child.sex.value} {child.birth_date.isoformat()} "
        f"{doc_type} {child.document_number or ''}"
    )
    for e in rec.history:
        click.echo(
            f"  {e.seq:>3} {e.effective_date.isoformat()} {e.kind.value:<10} "
            f"{e.from_state.value if e.from_state else '-'} → {e.to_state.value}  "
            f"{e.operator} {e.reason}"
        )


def register(group: click.Group) -> None:
    """Attach the registration commands to the ``studentstatus`` group."""
    for command in (
        kindergarten_group,
        import_cmd,
        approve_cmd,
        verify_cmd,
        problems_cmd,
        resolve_problem_cmd,
        issue_numbers_cmd,
        stuck_cmd,
        show_cmd,
    ):
        group.add_command(command)
