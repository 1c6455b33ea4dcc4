"""``studentstatus export``: the handover of graduates' 学籍档案 to primary school."""

from __future__ import annotations

import json
from pathlib import Path

import click

from studentstatus.cli._common import (
    as_option,
    handle_errors,
    json_default,
    opened_runtime,
    parse_operator,
    store_option,
)

__all__ = ["register"]


@click.command("export")
@click.option("--graduated", is_flag=True, required=True, help="Export the year's graduates.")
@click.option("--school-year", type=int, required=True, help="School year (2026 = 2026-27).")
@click.option("--format", "fmt", type=click.Choice(["json"]), default="json", show_default=True)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="Write to a file.")
@click.option("--reveal", is_flag=True, help="Full identity numbers (scope must cover records).")
@as_option
@store_option
@handle_errors()
def export_cmd(
    graduated: bool,
    school_year: int,
    fmt: str,
    out: Path | None,
    reveal: bool,
    operator_text: str,
    store_url: str,
) -> None:
    """Write the 学籍档案 of a school year's graduates as versioned JSON (schema 1.0)."""
    from studentstatus.services.handover import export_graduates

    operator = parse_operator(operator_text)
    with opened_runtime(store_url) as rt:
        doc = export_graduates(rt, operator, school_year, reveal=reveal)
    text = json.dumps(doc, ensure_ascii=False, indent=2, default=json_default)
    if out is None:
        click.echo(text)
    else:
        out.write_text(text + "\n", encoding="utf-8")
        click.echo(f"wrote {len(doc['records'])} graduates to {out}", err=True)


def register(group: click.Group) -> None:
    """Attach ``export`` to the main command group."""
    group.add_command(export_cmd)
