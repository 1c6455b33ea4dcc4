"""``studentstatus export``: the handover of graduates' 学籍档案 to primary school.

With ``--out FILE`` the document is written to a temporary file beside FILE and
moved into place; the export's audit entry is committed only once the file is
there (a missing directory is refused before anything is read or logged).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from studentstatus.cli._common import (
    as_option,
    atomic_target,
    busy,
    handle_errors,
    json_default,
    opened_runtime,
    parse_operator,
    store_option,
)

__all__ = ["HANDOVER_COLUMNS", "HISTORY_COLUMNS", "handover_row", "history_rows", "register"]

HANDOVER_COLUMNS: tuple[str, ...] = (
    "record_id",
    "national_number",
    "number_kind",
    "former_numbers",
    "name",
    "sex",
    "birth_date",
    "document_type",
    "document_number",
    "nationality",
    "ethnicity",
    "hukou_region",
    "hukou_rural",
    "residence_region",
    "guardians",
    "kindergarten_code",
    "kindergarten_name",
    "kindergarten_region",
    "entry_date",
    "graduation_date",
)
"""Columns of the graduates sheet of ``export --format xlsx`` (one row per record)."""

HISTORY_COLUMNS: tuple[str, ...] = (
    "record_id",
    "seq",
    "kind",
    "from",
    "to",
    "effective_date",
    "reason",
)
"""Columns of the history sheet of ``export --format xlsx`` (one row per status change)."""


def handover_row(record: dict[str, Any]) -> dict[str, Any]:
    """One handover record (schema 1.0) as a row of :data:`HANDOVER_COLUMNS`: the child,
    its document and kindergarten flattened, lists joined with ``; ``.

    >>> row = handover_row({"record_id": "r1", "national_number": "G11****************",
    ...     "number_kind": "G", "former_numbers": ["L**************0042"],
    ...     "child": {"name": "王小明", "sex": "M", "birth_date": "2020-03-15",
    ...               "document": {"type": "resident", "number": "11****************",
    ...                            "masked": True},
    ...               "nationality": "CHN", "ethnicity": "01", "hukou_region": "110105",
    ...               "hukou_rural": False, "residence_region": None,
    ...               "guardians": [{"name": "王芳", "relation": "mother",
    ...                              "phone": "+86138****8000"}]},
    ...     "kindergarten": {"school_code": "1111000001", "name": "阳光幼儿园",
    ...                      "region_code": "110105"},
    ...     "entry_date": "2023-09-01", "graduation_date": "2026-07-15", "history": []})
    >>> row["name"], row["document_number"], row["guardians"], row["hukou_rural"]
    ('王小明', '11****************', '王芳 mother +86138****8000', '否')
    """
    child = record.get("child") or {}
    doc = child.get("document") or {}
    kg = record.get("kindergarten") or {}
    guardians = "; ".join(
        " ".join(str(g.get(k) or "") for k in ("name", "relation", "phone")).strip()
        for g in child.get("guardians") or ()
    )
    return {
        "record_id": record.get("record_id"),
        "national_number": record.get("national_number"),
        "number_kind": record.get("number_kind"),
        "former_numbers": "; ".join(record.get("former_numbers") or ()),
        "name": child.get("name"),
        "sex": child.get("sex"),
        "birth_date": child.get("birth_date"),
        "document_type": doc.get("type"),
        "document_number": doc.get("number"),
        "nationality": child.get("nationality"),
        "ethnicity": child.get("ethnicity"),
        "hukou_region": child.get("hukou_region"),
        "hukou_rural": "是" if child.get("hukou_rural") else "否",
        "residence_region": child.get("residence_region"),
        "guardians": guardians,
        "kindergarten_code": kg.get("school_code"),
        "kindergarten_name": kg.get("name"),
        "kindergarten_region": kg.get("region_code"),
        "entry_date": record.get("entry_date"),
        "graduation_date": record.get("graduation_date"),
    }


def history_rows(record: dict[str, Any]) -> list[dict[str, Any]]:
    """The status history of one handover record as rows of :data:`HISTORY_COLUMNS`.

    >>> history_rows({"record_id": "r1", "history": [{"seq": 1, "kind": "REGISTER",
    ...     "from": None, "to": "PENDING", "effective_date": "2023-09-01"}]})[0]["to"]
    'PENDING'
    """
    return [
        {"record_id": record.get("record_id"), **{k: h.get(k) for k in HISTORY_COLUMNS[1:]}}
        for h in record.get("history") or ()
    ]


@click.command("export")
@click.option("--graduated", is_flag=True, required=True, help="Export the year's graduates.")
@click.option("--school-year", type=int, required=True, help="School year (2026 = 2026-27).")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["json", "xlsx"]),
    default="json",
    show_default=True,
    help="json: the versioned document; xlsx: an Excel workbook (needs --out and the xlsx "
    "extra), one row per graduate and a sheet of their status history.",
)
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
    """Write the 学籍档案 of a school year's graduates as versioned JSON (schema 1.0), or
    as an Excel workbook (``--format xlsx --out FILE.xlsx``; text cells stored as text)."""
    from studentstatus.services.handover import export_graduates

    if fmt == "xlsx" and out is None:
        raise click.UsageError("--format xlsx needs --out FILE.xlsx")
    operator = parse_operator(operator_text)
    if out is None:
        with opened_runtime(store_url) as rt:
            doc = export_graduates(rt, operator, school_year, reveal=reveal)
        click.echo(json.dumps(doc, ensure_ascii=False, indent=2, default=json_default))
        return
    written: list[int] = []
    with atomic_target(out) as tmp, opened_runtime(store_url) as rt:

        def deliver(doc: dict[str, Any]) -> None:
            if fmt == "xlsx":
                from studentstatus.tabular.xlsx import write_workbook

                records = doc["records"]
                sheets = [
                    ("毕业生 graduates", HANDOVER_COLUMNS, (handover_row(r) for r in records)),
                    (
                        "变动 history",
                        HISTORY_COLUMNS,
                        (h for r in records for h in history_rows(r)),
                    ),
                ]
                written.append(write_workbook(tmp, sheets)[0])
            else:
                text = json.dumps(doc, ensure_ascii=False, indent=2, default=json_default)
                Path(tmp).write_text(text + "\n", encoding="utf-8")
                written.append(len(doc["records"]))
            Path(tmp).replace(out)  # in place before the audit entry is committed

        with busy("exporting"):
            export_graduates(rt, operator, school_year, reveal=reveal, deliver=deliver)
    click.echo(f"wrote {written[0]} graduates to {out}", err=True)


def register(group: click.Group) -> None:
    """Attach ``export`` to the main command group."""
    group.add_command(export_cmd)
