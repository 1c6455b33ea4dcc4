"""CSV in and out — kept for existing imports: the code lives in :mod:`studentstatus.tabular`.

Everything here is re-exported from :mod:`studentstatus.tabular` (a neutral
module that services and adapters both use): the streaming reader
:func:`read_csv` (encodings detected: UTF-8 with or without BOM, GB18030/GBK,
UTF-16), the header aliases, :class:`CsvRow`, the value parsers and the
injection-safe writer.  New code imports :mod:`studentstatus.tabular`, whose
:func:`~studentstatus.tabular.open_table` also checks a file as a file and reads
Excel workbooks.

>>> import io
>>> data = "\\ufeff姓名,性别,出生日期\\n王小明,男,2020/3/15\\n".encode()
>>> rows = list(read_csv(io.BytesIO(data), aliases=CHILD_ALIASES, required=("name", "sex")))
>>> rows[0].number, rows[0].values["name"], rows[0].values["sex"], rows[0].problems
(1, '王小明', '男', ())
>>> escape_cell("=cmd|' /C calc'!A0")
"'=cmd|' /C calc'!A0"
"""

from __future__ import annotations

from datetime import date

from studentstatus.tabular.rows import (
    _BAD_BYTES,
    _DATE_RE,
    CHILD_ALIASES,
    CHILD_COLUMNS,
    KINDERGARTEN_ALIASES,
    KINDERGARTEN_COLUMNS,
    MAX_CELL,
    CsvRow,
    _clean,
    _norm_header,
    _row,
    escape_cell,
    parse_bool,
    parse_date,
)
from studentstatus.tabular.text import read_csv, write_csv

__all__ = [
    "CHILD_ALIASES",
    "CHILD_COLUMNS",
    "KINDERGARTEN_ALIASES",
    "KINDERGARTEN_COLUMNS",
    "MAX_CELL",
    "CsvRow",
    "escape_cell",
    "parse_bool",
    "parse_date",
    "read_csv",
    "write_csv",
]

# Private names some tests reach for (the reader's general path, the date pattern).
_PRIVATE = (_BAD_BYTES, _DATE_RE, _clean, _norm_header, _row, date)
