"""Excel workbooks (``.xlsx``): rows read streamed, exports written with text kept as text.

Needs the optional ``xlsx`` extra (openpyxl): ``pip install "studentstatus[xlsx]"``.
Without it, a workbook is refused as a file (``file_format``) with a message naming
the extra.

**Reading** (:func:`sheet_records`): the workbook is opened in openpyxl's read-only
mode, which streams the sheet's XML, so memory does not grow with the rows.  The
first sheet is read unless one is named.  Cells become text as a CSV export of the
sheet would hold it: numbers without a trailing ``.0`` (``13800138000``), dates as
``YYYY-MM-DD`` (a date-time with a time of day as ``YYYY-MM-DD HH:MM:SS``), booleans
as ``true``/``false``, empty cells as empty text; formulas are read by their cached
values (a workbook saved by Excel has them).  A number of 16 digits or more (an ID
number typed into a cell formatted as a number) has lost its last digits in Excel:
its row is reported ``number_precision`` on that column (:func:`precision_notes`).
Rows are numbered
as in a CSV file (the first data row after the header is 1, blank rows skipped).

**Writing** (:func:`write_xlsx`): openpyxl's write-only mode; every text cell is
stored as a string (``data_type = "s"``), so text starting with ``=`` stays text
and no formula is ever written.  Control characters, which XML cannot hold, are
written as U+FFFD.

>>> import io
>>> out = io.BytesIO()
>>> write_xlsx(out, ["name", "note"], [{"name": "王小明", "note": "=1+1"}])
1
>>> out.seek(0) == 0 and list(sheet_rows(out))
[['name', 'note'], ['王小明', '=1+1']]
"""

from __future__ import annotations

import importlib
import os
import re
import shutil
import tempfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import date, datetime, time
from typing import IO, Any

from studentstatus.errors import Violation
from studentstatus.tabular.rows import FileRejected

__all__ = [
    "ZIP_MAGIC",
    "LongNumber",
    "cell_text",
    "load",
    "precision_notes",
    "sheet_records",
    "sheet_rows",
    "write_workbook",
    "write_xlsx",
]

ZIP_MAGIC = b"PK\x03\x04"
"""The first bytes of a zip archive, which an ``.xlsx`` workbook is."""

_LONG = 10**15  # a number this large has more digits than Excel keeps
_ILLEGAL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")


def _openpyxl() -> Any:
    try:
        return importlib.import_module("openpyxl")
    except ImportError:
        raise FileRejected(
            "file_format",
            "",
            '读取或写入Excel工作簿（.xlsx）需要安装可选组件xlsx：pip install "studentstatus[xlsx]"',
            "reading or writing Excel workbooks (.xlsx) needs the optional extra xlsx: "
            'pip install "studentstatus[xlsx]"',
        ) from None


class LongNumber(str):
    """The text of a workbook cell that held a number of 16 digits or more: Excel keeps 15
    significant digits, so the last ones are lost (an ID number typed as a number).

    >>> isinstance(cell_text(110105202003150038), LongNumber)
    True
    """

    __slots__ = ()


def precision_notes(cells: list[str], columns: list[str | None]) -> list[Violation]:
    """``number_precision`` for each cell of a known column that held a long number
    (:class:`LongNumber`).

    >>> [v.code for v in precision_notes([cell_text(110105202003150038)], ["id_number"])]
    ['number_precision']
    """
    out: list[Violation] = []
    for cell, column in zip(cells, columns, strict=False):
        if column is not None and type(cell) is LongNumber:
            out.append(
                Violation(
                    "number_precision",
                    column,
                    "该单元格是16位以上的数字：Excel只保留15位有效数字，末尾数字已丢失；"
                    "请将该列设为文本格式后重新输入",
                    "the cell is a number of 16 digits or more: Excel keeps 15 significant "
                    "digits, so its last digits are lost; format the column as text and type "
                    "the numbers again",
                )
            )
    return out


def cell_text(value: object) -> str:
    """The text of a workbook cell's value, as a CSV export of the sheet would hold it.

    >>> from datetime import date, datetime
    >>> [cell_text(v) for v in (None, 13800138000, 2.5, 3.0, True, " 王 ")]
    ['', '13800138000', '2.5', '3', 'true', ' 王 ']
    >>> [cell_text(v) for v in (date(2020, 3, 15), datetime(2020, 3, 15),
    ...                         datetime(2020, 3, 15, 8, 30))]
    ['2020-03-15', '2020-03-15', '2020-03-15 08:30:00']
    """
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return LongNumber(value) if abs(value) >= _LONG else str(value)
    if isinstance(value, float):
        if value.is_integer():
            text = str(int(value))
            return LongNumber(text) if abs(value) >= _LONG else text
        return repr(value)
    if isinstance(value, datetime):
        if value.time() == time(0):
            return value.date().isoformat()
        return value.isoformat(" ")
    if isinstance(value, date | time):
        return value.isoformat()
    return str(value)


def load(source: str | os.PathLike[str] | IO[bytes]) -> Any:
    """Open a workbook read-only (a path or a binary stream; a stream that cannot seek
    is copied to a temporary file first); refuses it as ``file_format`` when it cannot
    be read.

    >>> import io
    >>> load(io.BytesIO(b"PK\\x03\\x04 not really a workbook"))
    Traceback (most recent call last):
    ...
    studentstatus.tabular.rows.FileRejected: file_format: ...
    """
    openpyxl = _openpyxl()
    if not isinstance(source, str | os.PathLike):
        try:
            seekable = source.seekable()
        except (AttributeError, OSError, ValueError):  # pragma: no cover - odd streams
            seekable = False
        if not seekable:
            spool = tempfile.TemporaryFile()  # noqa: SIM115 - closed with the workbook's file
            shutil.copyfileobj(source, spool)
            spool.seek(0)
            source = spool
    try:
        return openpyxl.load_workbook(source, read_only=True, data_only=True)
    except Exception as exc:  # zipfile.BadZipFile, KeyError, XML errors: all "unreadable"
        raise FileRejected(
            "file_format",
            "",
            "文件不是可读取的Excel工作簿（.xlsx）",
            f"the file is not a readable Excel workbook (.xlsx): {type(exc).__name__}",
        ) from None


def sheet_records(workbook: Any, sheet: str | None = None) -> tuple[str, Iterator[list[str]]]:
    """The sheet's title and its rows as lists of cell texts (:func:`cell_text`); the
    first sheet unless ``sheet`` names one (else ``file_sheet``).

    >>> import io
    >>> out = io.BytesIO()
    >>> _ = write_xlsx(out, ["a"], [["1"]], sheet="名单")
    >>> title, records = sheet_records(load(out), "名单")
    >>> title, list(records)
    ('名单', [['a'], ['1']])
    """
    names = list(workbook.sheetnames)
    if sheet is None:
        if not names:  # pragma: no cover - openpyxl refuses a workbook without sheets
            raise FileRejected(
                "file_sheet", "sheet", "工作簿没有工作表", "the workbook has no sheet"
            )
        ws = workbook.worksheets[0]
    elif sheet in names:
        ws = workbook[sheet]
    else:
        shown = ", ".join(names[:20])
        raise FileRejected(
            "file_sheet",
            "sheet",
            f"工作簿中没有名为“{sheet[:40]}”的工作表；现有：{shown}",
            f"the workbook has no sheet named {sheet[:40]!r}; it has: {shown}",
        )
    if not hasattr(ws, "iter_rows"):
        raise FileRejected(
            "file_sheet",
            "sheet",
            "该工作表不是数据表（是图表）",
            "the sheet is a chart, not a table",
        )
    return str(ws.title), (
        [cell_text(v) for v in values] for values in ws.iter_rows(values_only=True)
    )


def sheet_rows(
    source: str | os.PathLike[str] | IO[bytes], sheet: str | None = None
) -> Iterator[list[str]]:
    """Every row of a workbook's sheet as cell texts, the workbook closed at the end.

    >>> import io
    >>> out = io.BytesIO()
    >>> _ = write_xlsx(out, ["a", "b"], [[1, None]])
    >>> list(sheet_rows(out))
    [['a', 'b'], ['1', '']]
    """
    workbook = load(source)
    try:
        yield from sheet_records(workbook, sheet)[1]
    finally:
        workbook.close()


def _text_cell(ws: Any, value: object, cell_type: Any) -> Any:
    if isinstance(value, bool) or value is None:
        text = "" if value is None else ("true" if value else "false")
    elif isinstance(value, int | float):
        return value
    elif isinstance(value, datetime | date):
        text = value.isoformat()
    else:
        raw = value.value if hasattr(value, "value") and not isinstance(value, str) else value
        text = str(raw)
    cell = cell_type(ws, value=_ILLEGAL.sub("\ufffd", text)[:32_767])
    cell.data_type = "s"  # never a formula, whatever the text starts with
    return cell


def write_xlsx(
    target: str | os.PathLike[str] | IO[bytes],
    header: Sequence[str],
    rows: Iterable[Sequence[Any] | Mapping[str, Any]],
    *,
    sheet: str = "Sheet1",
) -> int:
    """Write ``rows`` (sequences, or mappings keyed by ``header``) as one sheet of a new
    workbook; returns the row count.  Text is stored as text (no formula, see the module
    docs), numbers as numbers, dates as ``YYYY-MM-DD`` text.

    >>> import io
    >>> out = io.BytesIO()
    >>> write_xlsx(out, ["n"], [[1], [2]])
    2
    """
    return write_workbook(target, [(sheet, header, rows)])[0]


def write_workbook(
    target: str | os.PathLike[str] | IO[bytes],
    sheets: Sequence[tuple[str, Sequence[str], Iterable[Sequence[Any] | Mapping[str, Any]]]],
) -> list[int]:
    """Write several sheets ``(title, header, rows)`` into a new workbook, each as
    :func:`write_xlsx` writes one; returns the row count of each sheet.  Titles are cut
    to Excel's 31 characters.

    >>> import io
    >>> out = io.BytesIO()
    >>> write_workbook(out, [("毕业生", ["id"], [["r1"]]), ("变动", ["seq"], [[1], [2]])])
    [1, 2]
    >>> _ = out.seek(0); list(sheet_rows(out, "变动"))
    [['seq'], ['1'], ['2']]
    """
    openpyxl = _openpyxl()
    cell_type = importlib.import_module("openpyxl.cell").WriteOnlyCell
    workbook = openpyxl.Workbook(write_only=True)
    counts: list[int] = []
    for title, header, rows in sheets:
        ws = workbook.create_sheet(title=title[:31])
        ws.append([_text_cell(ws, h, cell_type) for h in header])
        n = 0
        for row in rows:
            cells = [row.get(h) for h in header] if isinstance(row, Mapping) else list(row)
            ws.append([_text_cell(ws, c, cell_type) for c in cells])
            n += 1
        counts.append(n)
    workbook.save(target)
    return counts
