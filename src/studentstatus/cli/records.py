"""``studentstatus records``: search the records in the operator's scope, one page at a time.

A thin wrapper over :func:`studentstatus.services.records.search_records`: the
filters are its keyword arguments, ``--as`` its operator.  The text output is an
aligned table (numbers masked, no birth date, no document number) and, when more
records match, a last line with the ``--after`` value of the next page;
``--json`` prints the page (``items`` and ``next_after``).

Exit codes: 0 (also for an empty page), 1 when the operator or a filter value is
refused (``limit_invalid``, ``state_invalid``, ``grade_invalid``, …), 2 on usage
errors.
"""

from __future__ import annotations

import unicodedata
from datetime import date

import click

from studentstatus.cli._common import (
    DATE,
    as_option,
    echo_json,
    handle_errors,
    json_option,
    opened_runtime,
    parse_operator,
    store_option,
)

__all__ = ["register", "table", "table_of"]

_COLUMNS = (
    ("record_id", "RECORD"),
    ("name", "NAME"),
    ("sex", "SEX"),
    ("kindergarten_code", "KINDERGARTEN"),
    ("region_code", "REGION"),
    ("state", "STATE"),
    ("grade", "GRADE"),
    ("national_number", "NATIONAL NUMBER"),
    ("temp_number", "TEMPORARY NUMBER"),
    ("entry_date", "ENTRY"),
)


def _width(text: str) -> int:
    """Terminal columns of ``text`` (CJK characters take two)."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def table(rows: list[dict[str, object]]) -> list[str]:
    """The rows (``RecordSummary.to_dict()`` values) as aligned text lines, header first.

    >>> for line in table([{"record_id": "r1", "name": "王小明", "sex": "M",
    ...                     "kindergarten_code": "1111000001", "region_code": "110105",
    ...                     "state": "ACTIVE", "grade": None, "national_number": None,
    ...                     "temp_number": "L**************0042", "entry_date": "2024-09-01"}]):
    ...     print(line.rstrip())
    RECORD  NAME    SEX  KINDERGARTEN  REGION  STATE   GRADE  NATIONAL NUMBER  TEMPORARY NUMBER     ENTRY
    r1      王小明  M    1111000001    110105  ACTIVE  -      -                L**************0042  2024-09-01
    """  # noqa: E501
    return table_of(rows, _COLUMNS)


def table_of(rows: list[dict[str, object]], columns: tuple[tuple[str, str], ...]) -> list[str]:
    """``rows`` as aligned text lines under ``columns`` (key, heading); ``None`` shows ``-``.

    >>> table_of([{"a": "甲", "b": None}], (("a", "A"), ("b", "BB")))
    ['A   BB', '甲  - ']
    """
    cells = [[head for _key, head in columns]]
    cells += [["-" if row[key] is None else str(row[key]) for key, _h in columns] for row in rows]
    widths = [max(_width(line[i]) for line in cells) for i in range(len(columns))]
    return [
        "  ".join(text + " " * (w - _width(text)) for text, w in zip(line, widths, strict=True))
        for line in cells
    ]


@click.command("records")
@as_option
@click.option("--number", help="National (G/J), temporary (L) or former number.")
@click.option("--document", help="The child's document number.")
@click.option("--name", help="The child's exact name.")
@click.option(
    "--birth-date",
    type=DATE,
    help="The child's birth date, YYYY-MM-DD, YYYY/MM/DD or YYYYMMDD (with --name).",
)
@click.option("--kindergarten", metavar="SCHOOLCODE", help="Records of this kindergarten.")
@click.option("--state", help="Record state: ACTIVE, PENDING, … or 在籍, 待核准, …")
@click.option("--grade", help="Grade: NURSERY, JUNIOR, MIDDLE, SENIOR or 托班, 小班, 中班, 大班.")
@click.option("--limit", type=int, default=50, show_default=True, help="Records a page (1-500).")
@click.option("--after", metavar="RECORD_ID", help="Start after this record id (next page).")
@json_option
@store_option
@handle_errors()
def records_cmd(
    operator_text: str,
    number: str | None,
    document: str | None,
    name: str | None,
    birth_date: date | None,
    kindergarten: str | None,
    state: str | None,
    grade: str | None,
    limit: int,
    after: str | None,
    as_json: bool,
    store_url: str,
) -> None:
    """Search the records in scope by number, document, name, kindergarten, state, grade.

    One page of at most --limit records, ordered by record id; out-of-scope records
    are never listed. Numbers are masked; birth dates and document numbers are not shown.
    """
    from studentstatus.services.records import search_records

    operator = parse_operator(operator_text)
    with opened_runtime(store_url) as rt:
        page = search_records(
            rt,
            operator,
            number=number,
            document=document,
            name=name,
            birth_date=birth_date,
            kindergarten=kindergarten,
            state=state,
            grade=grade,
            limit=limit,
            after=after,
        )
    if as_json:
        echo_json(page.to_dict())
        return
    if not page.items:
        click.echo("no records")
        return
    for line in table([s.to_dict() for s in page.items]):
        click.echo(line.rstrip())
    if page.next_after is not None:
        click.echo(f"more: --after {page.next_after}")


def register(group: click.Group) -> None:
    """Attach ``records`` to the ``studentstatus`` group."""
    group.add_command(records_cmd)
