"""Kindergarten registry: import licensed kindergartens (and their licences) from CSV.

:func:`import_kindergartens` reads rows with the columns of
:data:`~studentstatus.tabular.KINDERGARTEN_COLUMNS` (``school_code,
uscc, name, region_code, type, inclusive, licence_no, licence_issuer,
licence_issued, licence_valid_until, licence_state``; Chinese headers
accepted).  One row is one kindergarten with one licence; a kindergarten
with several licences has several rows (same school code), which are merged.
Every row is checked completely (:func:`kindergarten_from_row` and
:func:`studentstatus.domain.kindergarten.check_kindergarten`) and every bad
row is reported with all its violations; good rows are stored:

* a new school code is added;
* a known one is updated: name, USCC, region, type and the inclusive flag
  are replaced, and the licence is added (or replaced, when a licence with
  the same number exists).

Counties, cities, provinces and the ministry import kindergartens
(``import_kindergartens`` in
:data:`~studentstatus.domain.jurisdiction.ROLE_RULES`); a row whose region is
outside the operator's scope is rejected ``out_of_scope``.  Both the stored and
the new state are checked (:func:`studentstatus.services.authority.kindergarten_write`):
a school code already registered in a region outside the operator's scope is
rejected ``school_code_taken``, and a row that would move a known kindergarten to
another county is rejected ``region_move_needs_approval`` — a move is its own
change, approved by both counties (:func:`studentstatus.services.moves.move_kindergarten`).
The good rows of
a file are written in one unit of work (the registry of a province is a few
tens of thousands of rows), each logged in the audit trail.

The type column accepts ``PUBLIC``/``PRIVATE_NONPROFIT``/``PRIVATE_FORPROFIT``
or 公办/民办非营利性/民办营利性; the licence state ``VALID``/``SUSPENDED``/
``REVOKED`` or 有效/暂停/吊销 (empty means VALID).

>>> import io, random
>>> from datetime import datetime, timezone
>>> from studentstatus.adapters.memory import MemoryStore
>>> from studentstatus.domain.jurisdiction import Operator
>>> from studentstatus.services.runtime import FixedClock, Runtime
>>> rt = Runtime(MemoryStore(), FixedClock(datetime(2024, 9, 2, tzinfo=timezone.utc)),
...              random.Random(1))
>>> data = ("学校标识码,统一社会信用代码,名称,行政区划代码,办学类型,是否普惠,办学许可证号,发证机关,"
...         "发证日期,有效期至,许可证状态\\n"
...         "1111000001,12100000400000624D,阳光幼儿园,110105,公办,是,教1101051号,朝阳区教委,"
...         "2020-01-01,2030-12-31,有效\\n"
...         "2111000001,bad,,440306,公办,是,X,局,2020-01-01,2019-12-31,有效\\n").encode()
>>> report = import_kindergartens(rt, Operator.parse("county:110105"), io.BytesIO(data))
>>> report.accepted, sorted({(r.row, r.code) for r in report.rejected})
... # doctest: +NORMALIZE_WHITESPACE
(1, [(2, 'licence_dates'), (2, 'out_of_scope'), (2, 'required'),
     (2, 'school_code_invalid'), (2, 'uscc_invalid')])
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import IO, Any, Literal, TypeVar

import attrs

from studentstatus import serialization
from studentstatus.domain.enums import KindergartenType, LicenceState
from studentstatus.domain.jurisdiction import Operator
from studentstatus.domain.kindergarten import check_kindergarten
from studentstatus.domain.model import Kindergarten, Licence
from studentstatus.errors import Violation
from studentstatus.services.audit import AuditEvent, audit_many
from studentstatus.services.authority import kindergarten_write, require_role
from studentstatus.services.intake import IntakeReport, Rejection
from studentstatus.services.runtime import Runtime
from studentstatus.tabular import (
    KINDERGARTEN_ALIASES,
    CsvRow,
    Table,
    is_file_source,
    open_table,
    parse_bool,
    parse_date,
)

__all__ = [
    "KINDERGARTEN_REQUIRED",
    "ImportedKindergarten",
    "import_kindergartens",
    "kindergarten_from_row",
    "list_kindergartens",
]

E = TypeVar("E", KindergartenType, LicenceState)
D = TypeVar("D")

KINDERGARTEN_REQUIRED: tuple[str, ...] = (
    "school_code",
    "uscc",
    "name",
    "region_code",
    "type",
    "licence_no",
    "licence_issued",
    "licence_valid_until",
)
"""Columns a kindergarten file must have."""


@attrs.frozen
class ImportedKindergarten:
    """A kindergarten :func:`import_kindergartens` wrote: its first row, its school code, and
    whether it was ``"added"`` or ``"updated"`` (one of the report's ``records``).

    >>> item = ImportedKindergarten(2, "1111000001", "added")
    >>> item.action, item.to_dict()
    ('added', {'row': 2, 'school_code': '1111000001', 'action': 'added'})
    """

    row: int
    school_code: str
    action: Literal["added", "updated"]

    def to_dict(self) -> dict[str, Any]:
        """The JSON form: ``row``, ``school_code``, ``action``."""
        return serialization.to_dict(self)


def _v(code: str, field: str, zh: str, en: str) -> Violation:
    return Violation(code, field, zh, en)


def _enum_cell(
    values: Mapping[str, str],
    column: str,
    enum: type[E],
    default: D,
    out: list[Violation],
    zh: str,
    en: str,
) -> E | D:
    """The ``enum`` member a non-empty cell names (``enum.parse``), else ``default``; a cell
    that names none adds a ``<column>_invalid`` violation to ``out``."""
    if not values.get(column):
        return default
    try:
        parsed = enum.parse(values[column])
    except ValueError:
        out.append(_v(f"{column}_invalid", column, zh, en))
        return default
    assert isinstance(parsed, enum)
    return parsed


def kindergarten_from_row(values: Mapping[str, str]) -> tuple[Kindergarten | None, list[Violation]]:
    """Build a kindergarten (with its one licence) from a row; ``(None, violations)`` if bad.

    >>> kg, problems = kindergarten_from_row({"school_code": "1111000001",
    ...     "uscc": "12100000400000624D", "name": "阳光幼儿园", "region_code": "110105",
    ...     "type": "PUBLIC", "licence_no": "1", "licence_issued": "2020-01-01",
    ...     "licence_valid_until": "20301231"})
    >>> problems, kg.licences[0].valid_until.year
    ([], 2030)
    """
    out: list[Violation] = []
    for column in KINDERGARTEN_REQUIRED:
        if not values.get(column):
            out.append(_v("required", column, "缺少必填项", f"{column} is required"))
    kind = _enum_cell(
        values,
        "type",
        KindergartenType,
        None,
        out,
        "办学类型应为公办/民办非营利性/民办营利性",
        "type must be PUBLIC, PRIVATE_NONPROFIT or PRIVATE_FORPROFIT",
    )
    inclusive = False
    try:
        inclusive = parse_bool(values.get("inclusive", ""))
    except ValueError:
        out.append(_v("inclusive_invalid", "inclusive", "普惠性应为是/否", "inclusive: yes/no"))
    state = _enum_cell(
        values,
        "licence_state",
        LicenceState,
        LicenceState.VALID,
        out,
        "许可证状态应为有效/暂停/吊销",
        "licence_state must be VALID, SUSPENDED or REVOKED",
    )
    dates = {}
    for column in ("licence_issued", "licence_valid_until"):
        if values.get(column):
            try:
                dates[column] = parse_date(values[column])
            except ValueError:
                out.append(
                    _v(
                        "date_invalid",
                        column,
                        "日期无效（YYYY-MM-DD、YYYY/MM/DD或YYYYMMDD）",
                        "invalid date (YYYY-MM-DD, YYYY/MM/DD or YYYYMMDD)",
                    )
                )
    licences: tuple[Licence, ...] = ()
    if len(dates) == 2 and values.get("licence_no"):
        licences = (
            Licence(
                values["licence_no"],
                values.get("licence_issuer", ""),
                dates["licence_issued"],
                dates["licence_valid_until"],
                state,
            ),
        )
    kg = Kindergarten(
        values.get("school_code", ""),
        values.get("uscc", "").upper(),
        values.get("name", ""),
        values.get("region_code", ""),
        kind or KindergartenType.PUBLIC,
        inclusive,
        licences,
    )
    for v in check_kindergarten(kg):
        field = "licence_valid_until" if v.field.startswith("licences[") else v.field
        if not any(o.field == field and o.code in ("required", v.code) for o in out):
            out.append(Violation(v.code, field, v.message_zh, v.message_en, v.hint))
    if out:
        return None, out
    return kg, []


def _merge(existing: Kindergarten, new: Kindergarten) -> Kindergarten:
    licences = [
        lic for lic in existing.licences if lic.number not in {n.number for n in new.licences}
    ]
    return attrs.evolve(
        existing,
        uscc=new.uscc,
        name=new.name,
        region_code=new.region_code,
        type=new.type,
        inclusive=new.inclusive,
        licences=(*licences, *new.licences),
    )


def import_kindergartens(
    rt: Runtime,
    operator: Operator,
    source: str | os.PathLike[str] | IO[bytes] | Iterable[CsvRow | Mapping[str, str]],
    *,
    sheet: str | None = None,
) -> IntakeReport[ImportedKindergarten]:
    """Import kindergartens from a CSV file or ``.xlsx`` workbook (a path or a binary
    stream) or rows; see the module docs.

    A file is checked as a file first (:func:`studentstatus.tabular.open_table`:
    encoding, header with every required column, at least one data row); one that
    fails raises :class:`~studentstatus.tabular.FileRejected` and nothing is written.
    ``sheet``: a workbook's sheet (the first by default).

    ``accepted`` counts the good rows; the report's ``records`` hold an
    :class:`ImportedKindergarten` per kindergarten written.
    """
    require_role(operator, "import_kindergartens")
    report: IntakeReport[ImportedKindergarten] = IntakeReport()
    built: dict[str, Kindergarten] = {}
    rows_of: dict[str, int] = {}
    rows_per_code: dict[str, int] = {}
    rows = _rows(source, sheet)  # a file is checked here, before anything is written
    if isinstance(rows, Table):
        report.file = rows.info
    for row in rows:
        report.rows += 1
        kg, problems = kindergarten_from_row(row.values)
        problems = list(row.problems) + problems
        region = row.values.get("region_code", "")
        if region and not operator.covers_region(region):
            problems.append(
                _v(
                    "out_of_scope",
                    "region_code",
                    f"{operator} 无权登记该地区的幼儿园",
                    f"{operator} may not register kindergartens in this region",
                )
            )
        if problems or kg is None:
            absent = {v.field for v in row.problems if v.code == "column_missing"}
            seen: set[tuple[str, str]] = {(f, "required") for f in absent}
            for v in problems:
                if (v.field, v.code) not in seen:
                    seen.add((v.field, v.code))
                    report.rejected.append(
                        Rejection(row.number, v.field, v.code, v.message_zh, v.message_en)
                    )
            continue
        report.accepted += 1
        prior = built.get(kg.school_code)
        built[kg.school_code] = _merge(prior, kg) if prior is not None else kg
        rows_of.setdefault(kg.school_code, row.number)
        rows_per_code[kg.school_code] = rows_per_code.get(kg.school_code, 0) + 1
    now = rt.clock.now()
    with rt.store.unit_of_work() as uow:
        new: list[Kindergarten] = []
        events: list[AuditEvent] = []
        for code, kg in built.items():
            existing = uow.kindergartens.find(code)
            refused = kindergarten_write(operator, existing, kg)
            if refused:
                # What is stored decides too: no takeover, no move by import.
                report.accepted -= rows_per_code[code]
                for v in refused:
                    report.rejected.append(
                        Rejection(rows_of[code], v.field, v.code, v.message_zh, v.message_en)
                    )
                continue
            action: Literal["added", "updated"]
            if existing is None:
                new.append(kg)
                action = "added"
            else:
                uow.kindergartens.update(_merge(existing, kg))
                action = "updated"
            events.append(
                AuditEvent(
                    str(operator),
                    f"kindergarten_{action}",
                    code,
                    after={"region_code": kg.region_code, "licences": len(kg.licences)},
                )
            )
            report.records.append(ImportedKindergarten(rows_of[code], code, action))
        if new:
            uow.kindergartens.add_many(new)
        audit_many(uow, events, at=now)
        uow.commit()
    return report


def _rows(source: Any, sheet: str | None = None) -> Iterable[CsvRow]:
    if is_file_source(source):
        return open_table(
            source, aliases=KINDERGARTEN_ALIASES, required=KINDERGARTEN_REQUIRED, sheet=sheet
        )
    return (
        item if isinstance(item, CsvRow) else CsvRow(i, {k: str(v) for k, v in dict(item).items()})
        for i, item in enumerate(source, start=1)
    )


def list_kindergartens(rt: Runtime, operator: Operator) -> list[Kindergarten]:
    """The kindergartens in the operator's scope (a kindergarten operator: itself), by code."""
    require_role(operator, "view")
    with rt.store.unit_of_work() as uow:
        code = operator.kindergarten_code
        if code is not None:
            kg = uow.kindergartens.find(code)
            return [kg] if kg is not None else []
        return list(uow.kindergartens.iter(region_prefix=operator.region_prefix or ""))
