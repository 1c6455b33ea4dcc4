"""Monitoring commands: attendance import, dropout ledgers and cases, flows, the report.

``attendance import FILE.csv``, ``dropout --county CODE``, ``case contact
CASE_ID --note …``, ``flows --from DATE --to DATE``, ``report --region CODE
--school-year YEAR [--out DIR]``; all take ``--store``, ``--as ROLE:SCOPE``
and ``--json`` (one JSON document on stdout).  ``STUDENTSTATUS_NOW`` (an ISO
date-time) fixes the clock, for scripted runs and tests.
"""

from __future__ import annotations

import sys
import warnings
from datetime import date
from typing import Any

import click

from studentstatus.cli._common import (
    DATE,
    as_option,
    atomic_target,
    busy,
    echo_json,
    handle_errors,
    json_option,
    opened_runtime,
    parse_operator,
    sheet_option,
    store_option,
)

__all__ = ["register"]

_DATE = DATE  # YYYY-MM-DD, YYYY/MM/DD or YYYYMMDD, as in the files


def _population(path: str | None, sheet: str | None = None) -> Any:
    if path is None:
        return None
    from studentstatus.errors import RuleViolations, Violation
    from studentstatus.services.dropout import read_population

    people, bad = read_population(path, sheet=sheet)
    if bad:
        raise RuleViolations(
            Violation(v.code, v.field, f"第{row}行：{v.message_zh}", f"row {row}: {v.message_en}")
            for row, v in bad
        )
    return people


@click.group("attendance")
def attendance_group() -> None:
    """Daily attendance (出勤)."""


@attendance_group.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@sheet_option
@as_option
@json_option
@store_option
@handle_errors()
def attendance_import(
    file: str, sheet: str | None, operator_text: str, as_json: bool, store_url: str
) -> None:
    """Import FILE.csv or FILE.xlsx (record_id or national_number, date, status, reason).

    Every bad row is reported and nothing is written when there is one (exit 1).
    """
    from studentstatus.services.attendance import import_attendance

    operator = parse_operator(operator_text)
    with opened_runtime(store_url) as rt:
        if sys.stderr.isatty() and not as_json and not file.lower().endswith(".xlsx"):
            size = sum(1 for _ in open(file, "rb")) - 1  # noqa: SIM115 - counted and closed
            with click.progressbar(length=max(size, 0), label="rows", file=sys.stderr) as bar:
                report = import_attendance(rt, operator, file, sheet=sheet, progress=bar.update)
        else:
            report = import_attendance(rt, operator, file, sheet=sheet)
    if as_json:
        echo_json(report.to_dict())
    else:
        for e in report.errors:
            click.echo(
                f"row {e.row} [{e.field}] {e.code}: {e.message_en} / {e.message_zh}", err=True
            )
        click.echo(
            f"rows {report.rows}, written {report.written}, corrections {report.corrections}, "
            f"cases opened {len(report.opened_cases)}, closed {len(report.closed_cases)}"
        )
    if not report.ok:
        sys.exit(1)


@click.command("dropout")
@click.option("--county", required=True, metavar="CODE6", help="County region code.")
@click.option(
    "--population",
    type=click.Path(exists=True, dir_okay=False),
    help="Population extract, CSV or .xlsx (id_number, name, sex, birth_date, hukou_region).",
)
@sheet_option
@as_option
@json_option
@store_option
@handle_errors()
def dropout_cmd(
    county: str,
    population: str | None,
    sheet: str | None,
    operator_text: str,
    as_json: bool,
    store_url: str,
) -> None:
    """The county's three ledgers (控辍保学台账), comparisons and open cases."""
    from studentstatus.services.dropout import get_county_ledgers

    operator = parse_operator(operator_text)
    people = _population(population, sheet)
    with opened_runtime(store_url) as rt, busy("comparing the ledgers"):
        led = get_county_ledgers(rt, operator, county, population=people)
    if as_json:
        echo_json(led.to_dict())
        return
    c = led.counts()
    eligible = f"{c['eligible']} (适龄未入园 {c['unenrolled']})" if led.eligible_known else "—"
    click.echo(f"county {led.county} as of {led.as_of}")
    click.echo(f"  eligible children 适龄儿童: {eligible}")
    click.echo(f"  suspected dropouts 疑似辍学: {c['suspected']}")
    click.echo(f"  confirmed dropouts 确认辍学: {c['confirmed']}")
    click.echo(f"  enrolled but absent 名在人不在: {c['absent_on_paper']}")
    click.echo(f"  lost-child queue 转出未转入: {c['lost_children']}")
    for case in led.suspected:
        click.echo(
            f"  case {case.id} record {case.record_id} kg {case.kindergarten_code} "
            f"{case.trigger.value} contacts {len(case.contacts)}: {case.detail}"
        )


@click.group("case")
def case_group() -> None:
    """Dropout cases (疑似辍学案件)."""


@case_group.command("contact")
@click.argument("case_id")
@click.option("--note", required=True, help="What was done or said (劝返记录).")
@click.option(
    "--kind",
    type=click.Choice(["persuasion", "contact"]),
    default="persuasion",
    show_default=True,
)
@as_option
@json_option
@store_option
@handle_errors()
def case_contact(
    case_id: str, note: str, kind: str, operator_text: str, as_json: bool, store_url: str
) -> None:
    """Record a contact or persuasion attempt on CASE_ID."""
    from studentstatus.domain.monitoring import ContactKind
    from studentstatus.services.dropout import case_dict, record_contact

    operator = parse_operator(operator_text)
    with opened_runtime(store_url) as rt:
        case = record_contact(rt, operator, case_id, note, kind=ContactKind(kind.upper()))
    if as_json:
        echo_json(case_dict(case))
    else:
        click.echo(f"case {case.id}: {len(case.contacts)} contact(s) recorded")


def _case_line(case: Any) -> str:
    contacts = f"contacts {len(case.contacts)}"
    return (
        f"{case.id}  {case.status.value} {case.status.label_zh}  record {case.record_id}  "
        f"kg {case.kindergarten_code}  {case.trigger.value}  opened "
        f"{case.opened_at.date().isoformat()}  {contacts}"
    )


@case_group.command("list")
@click.option("--all", "include_closed", is_flag=True, help="Include closed cases.")
@as_option
@json_option
@store_option
@handle_errors()
def case_list(include_closed: bool, operator_text: str, as_json: bool, store_url: str) -> None:
    """(county and above) The open dropout cases in scope (--all: closed ones too)."""
    from studentstatus.services.dropout import case_dict, list_cases

    operator = parse_operator(operator_text)
    with opened_runtime(store_url) as rt:
        cases = list_cases(rt, operator, include_closed=include_closed)
    if as_json:
        echo_json([case_dict(c) for c in cases])
        return
    if not cases:
        click.echo("no cases")
    for case in cases:
        click.echo(_case_line(case))


@case_group.command("show")
@click.argument("case_id")
@as_option
@json_option
@store_option
@handle_errors()
def case_show(case_id: str, operator_text: str, as_json: bool, store_url: str) -> None:
    """(county and above) One case: its record, trigger, every contact, how it closed."""
    from studentstatus.services.dropout import case_dict, get_case

    operator = parse_operator(operator_text)
    with opened_runtime(store_url) as rt:
        case = get_case(rt, operator, case_id)
    if as_json:
        echo_json(case_dict(case))
        return
    click.echo(_case_line(case))
    if case.detail:
        click.echo(f"  detail: {case.detail}")
    if case.last_absent_day:
        click.echo(f"  last absent day: {case.last_absent_day.isoformat()}")
    for c in case.contacts:
        click.echo(f"  {c.at.date().isoformat()} {c.kind.value.lower()} by {c.operator}: {c.note}")
    if case.withdraw_request_id:
        click.echo(f"  withdrawal request {case.withdraw_request_id}")
    if case.closed_at:
        click.echo(
            f"  closed {case.closed_at.date().isoformat()} by {case.closed_by}: {case.resolution}"
        )


@case_group.command("close")
@click.argument("case_id")
@click.option("--reason", required=True, help="Why: the child is back (劝返成功), how it is known.")
@as_option
@json_option
@store_option
@handle_errors()
def case_close(
    case_id: str, reason: str, operator_text: str, as_json: bool, store_url: str
) -> None:
    """(county and above) Close CASE_ID as RETURNED (the child is back), with a reason.

    A confirmed dropout is closed through a WITHDRAW change instead (change WITHDRAW).
    """
    from studentstatus.services.dropout import case_dict, close_returned

    operator = parse_operator(operator_text)
    with opened_runtime(store_url) as rt:
        case = close_returned(rt, operator, case_id, reason=reason)
    if as_json:
        echo_json(case_dict(case))
    else:
        click.echo(f"case {case.id}: {case.status.value} ({case.status.label_zh})")


@click.command("flows")
@click.option("--from", "start", type=_DATE, required=True, help="First day (YYYY-MM-DD, …).")
@click.option("--to", "end", type=_DATE, required=True, help="Last day (YYYY-MM-DD, …).")
@click.option(
    "--level",
    type=click.Choice(["province", "city", "county"]),
    default=None,
    help="Group origins and destinations by province, city or county "
    "(default: one level below the operator's scope — the ministry by province, "
    "a province by city, a city or county by county).",
)
@as_option
@json_option
@store_option
@handle_errors()
def flows_cmd(
    start: date,
    end: date,
    level: str | None,
    operator_text: str,
    as_json: bool,
    store_url: str,
) -> None:
    """Origin → destination matrix of transfers effective in the period (with region names)."""
    from studentstatus.services.flows import get_transfer_flows, level_for

    operator = parse_operator(operator_text)
    own = operator.region_prefix if operator.kindergarten_code is None else "000000"
    chosen = level or level_for(own or "")
    with opened_runtime(store_url) as rt:
        m = get_transfer_flows(rt, operator, start, end, level=chosen)  # type: ignore[arg-type]
    if as_json:
        echo_json(m.to_dict())
        return
    from studentstatus.services.report_format import format_flows

    for line in format_flows(m):
        click.echo(line)


@click.command("report")
@click.option("--region", required=True, metavar="CODE", help="Region code (2, 4 or 6 digits).")
@click.option("--school-year", type=int, required=True, help="School year (2026 = 2026-27).")
@click.option(
    "--population",
    type=click.Path(exists=True, dir_okay=False),
    help="Population extract CSV, for the gross enrolment rate.",
)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False),
    help="Write PNG charts and index.html here (needs the 'plots' extra).",
)
@click.option(
    "--xlsx",
    "xlsx_file",
    type=click.Path(dir_okay=False),
    help="Also write the report's tables to this Excel workbook, one sheet each (needs the "
    "'xlsx' extra).",
)
@as_option
@json_option
@store_option
@handle_errors()
def report_cmd(
    region: str,
    school_year: int,
    population: str | None,
    out_dir: str | None,
    xlsx_file: str | None,
    operator_text: str,
    as_json: bool,
    store_url: str,
) -> None:
    """The enrolment report of REGION for a school year (counts, shares, GER, changes…).

    Text output is a set of aligned tables with region and kindergarten names
    next to their codes; --out also writes the charts and an HTML page
    (and warns when no CJK font is installed: the charts then use English).
    """
    from studentstatus.services.flows import get_transfer_flows, level_for
    from studentstatus.services.report_format import format_report
    from studentstatus.services.reports import build_report, school_year_range

    operator = parse_operator(operator_text)
    people = _population(population)
    written: list[str] = []
    chart_font: str | None = None
    flows = None
    with opened_runtime(store_url) as rt:
        with busy("building the report"):
            rep = build_report(rt, operator, region, school_year, population=people)
        if xlsx_file is not None:
            from studentstatus.services.report_format import report_tables
            from studentstatus.tabular.xlsx import write_workbook

            with atomic_target(xlsx_file) as tmp:  # moved into place once complete
                write_workbook(tmp, report_tables(rep))
            click.echo(f"wrote {xlsx_file}", err=True)
        if out_dir is not None:
            try:
                from studentstatus.services.charts import (
                    NoCjkFontWarning,
                    cjk_font,
                    font_warning,
                    write_report_page,
                )
            except ImportError as exc:  # pragma: no cover - depends on the install
                msg = "charts need matplotlib: pip install 'studentstatus[plots]'"
                raise click.ClickException(msg) from exc
            start, end = school_year_range(school_year)
            last = max(start, min(end, rt.clock.today()))
            flows = get_transfer_flows(
                rt, operator, start, last, level=level_for(region), region=region
            )
            font_note = font_warning()
            if font_note is not None:
                click.echo(f"warning: {font_note}", err=True)
            with warnings.catch_warnings():  # said once, above
                warnings.simplefilter("ignore", NoCjkFontWarning)
                written = [str(p) for p in write_report_page(rep, out_dir, flows=flows)]
            chart_font = cjk_font()
    if as_json:
        doc = rep.to_dict()
        if written:
            doc["files"] = written
            doc["chart_font"] = chart_font
        echo_json(doc)
        return
    click.echo(format_report(rep, flows=flows))
    if written:
        click.echo("")
        click.echo(f"图表字体 chart font: {chart_font or 'none (English labels) / 无中文字体'}")
        for path in written:
            click.echo(f"wrote {path}")


def register(group: click.Group) -> None:
    """Attach the monitoring commands to ``group``.

    >>> g = click.Group("x")
    >>> register(g)
    >>> sorted(g.commands)
    ['attendance', 'case', 'dropout', 'flows', 'report']
    """
    group.add_command(attendance_group)
    group.add_command(dropout_cmd)
    group.add_command(case_group)
    group.add_command(flows_cmd)
    group.add_command(report_cmd)
