"""Rows of a table file: column aliases, :class:`CsvRow`, value parsers, file-level refusals.

The parts every reader shares (:mod:`studentstatus.tabular.text` for CSV text
files, :mod:`studentstatus.tabular.xlsx` for workbooks):

* the canonical columns and their Chinese header aliases
  (:data:`CHILD_ALIASES`, :data:`KINDERGARTEN_ALIASES`); header matching
  ignores case, spaces and a ``*`` marking required columns;
* :class:`CsvRow`: one data row, numbered from 1 (the first record after the
  header; blank lines are skipped and not counted), its canonical values and
  the problems found while *reading* it — bad bytes (``encoding``), a cell
  longer than :data:`MAX_CELL` (``too_long``), a control character
  (``control_character``), a missing column (``column_missing``), too few or
  too many cells (``row_short``, ``row_long``);
* :class:`FileRejected`: the one error a file that cannot be read as a table
  gets (``file_missing``, ``file_empty``, ``file_encoding``, ``file_format``,
  ``file_sheet``, ``file_header``, ``file_no_rows``), and :class:`FileInfo`,
  what was read (format, encoding, sheet);
* value parsers: :func:`parse_date`, :func:`parse_bool`; and
  :func:`escape_cell` for exports.

>>> parse_date("2020/3/15"), parse_bool("是")
(datetime.date(2020, 3, 15), True)
>>> FileRejected("file_empty", "", "文件为空", "the file is empty").code
'file_empty'
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import date
from types import MappingProxyType
from typing import ClassVar

import attrs

from studentstatus.errors import ValidationError, Violation, mask_number

__all__ = [
    "CHILD_ALIASES",
    "CHILD_COLUMNS",
    "KINDERGARTEN_ALIASES",
    "KINDERGARTEN_COLUMNS",
    "MAX_CELL",
    "CsvRow",
    "FileInfo",
    "FileRejected",
    "escape_cell",
    "parse_bool",
    "parse_date",
]

MAX_CELL = 1000
"""Longest accepted cell (characters); longer cells are reported ``too_long``."""

CHILD_COLUMNS: tuple[str, ...] = (
    "kindergarten_code",
    "name",
    "sex",
    "birth_date",
    "id_type",
    "id_number",
    "nationality",
    "ethnicity",
    "hukou_region",
    "hukou_rural",
    "residence_region",
    "guardian_name",
    "guardian_relation",
    "guardian_phone",
    "entry_date",
    "grade",
)
"""Columns of a child-intake file, in the documented order."""

KINDERGARTEN_COLUMNS: tuple[str, ...] = (
    "school_code",
    "uscc",
    "name",
    "region_code",
    "type",
    "inclusive",
    "licence_no",
    "licence_issuer",
    "licence_issued",
    "licence_valid_until",
    "licence_state",
)
"""Columns of a kindergarten-registry file, in the documented order."""

CHILD_ALIASES: Mapping[str, str] = {
    **{c: c for c in CHILD_COLUMNS},
    "幼儿园代码": "kindergarten_code",
    "幼儿园标识码": "kindergarten_code",
    "学校标识码": "kindergarten_code",
    "姓名": "name",
    "幼儿姓名": "name",
    "性别": "sex",
    "出生日期": "birth_date",
    "证件类型": "id_type",
    "身份证件类型": "id_type",
    "证件号码": "id_number",
    "身份证件号": "id_number",
    "身份证件号码": "id_number",
    "身份证号": "id_number",
    "国籍": "nationality",
    "国籍/地区": "nationality",
    "民族": "ethnicity",
    "户口所在地": "hukou_region",
    "户籍所在地": "hukou_region",
    "户口性质": "hukou_rural",
    "是否农业户口": "hukou_rural",
    "现住址": "residence_region",
    "居住地": "residence_region",
    "现居住地": "residence_region",
    "监护人姓名": "guardian_name",
    "监护人关系": "guardian_relation",
    "与幼儿关系": "guardian_relation",
    "监护人电话": "guardian_phone",
    "监护人联系电话": "guardian_phone",
    "联系电话": "guardian_phone",
    "入园日期": "entry_date",
    "年级": "grade",
    "班级": "grade",
}
"""Header text (canonical or Chinese) → canonical child column."""

KINDERGARTEN_ALIASES: Mapping[str, str] = {
    **{c: c for c in KINDERGARTEN_COLUMNS},
    "学校标识码": "school_code",
    "幼儿园代码": "school_code",
    "幼儿园标识码": "school_code",
    "统一社会信用代码": "uscc",
    "名称": "name",
    "幼儿园名称": "name",
    "行政区划代码": "region_code",
    "所在地区划": "region_code",
    "办学类型": "type",
    "类型": "type",
    "举办者类型": "type",
    "普惠性": "inclusive",
    "是否普惠": "inclusive",
    "办学许可证号": "licence_no",
    "许可证号": "licence_no",
    "发证机关": "licence_issuer",
    "发证日期": "licence_issued",
    "有效期至": "licence_valid_until",
    "许可证状态": "licence_state",
}
"""Header text (canonical or Chinese) → canonical kindergarten column."""

_FORMULA_LEAD = ("=", "+", "-", "@", "\t", "\r")
_DATE_RE = re.compile(r"^\s*(\d{4})(?:([-/.])(\d{1,2})\2(\d{1,2})|(\d{2})(\d{2}))\s*$")
_TRUE = frozenset({"1", "true", "t", "yes", "y", "是", "农业", "农村", "rural"})
_FALSE = frozenset({"0", "false", "f", "no", "n", "否", "非农业", "城镇", "urban"})

# Undecodable bytes become U+DC00 + byte (see _escape_bad_bytes); every decoder uses it.
# escapes read by re: no surrogate literal in the source
_BAD_BYTES = re.compile(r"[\udc00-\udcff]")
# Unicode category Cc: C0 controls (NUL included), DEL and the C1 controls.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_SKIPPED: Mapping[str, str] = MappingProxyType({})
BAD_BYTES_ERRORS = "studentstatus-bad-bytes"
"""Name of the codec error handler the readers decode with: every byte a codec cannot
decode becomes the lone surrogate ``U+DC00 + byte`` (like ``surrogateescape``, for any
codec and any byte), so the cell holding it is reported ``encoding``."""


def _escape_bad_bytes(err: UnicodeError) -> tuple[str, int]:
    if not isinstance(err, UnicodeDecodeError):  # pragma: no cover - decoding only
        raise err
    bad = err.object[err.start : err.end]
    return "".join(chr(0xDC00 + b) for b in bad), err.end


codecs.register_error(BAD_BYTES_ERRORS, _escape_bad_bytes)


def _masked_values(values: Mapping[str, str]) -> str:
    return repr({k: mask_number(v) for k, v in values.items()})


@attrs.frozen
class CsvRow:
    """One data row: its number (from 1), canonical values, and reading problems.

    ``values`` maps canonical column names to stripped text; a column absent
    from the file or from a short row is absent from ``values``.  ``problems``
    holds what went wrong while *reading* (bad bytes, missing columns, overly
    long cells, control characters); the caller adds its own checks.  Rows of a
    workbook are :class:`CsvRow` too, numbered the same way.

    ``repr`` masks every value (:func:`~studentstatus.errors.mask_number`): a row
    holds identity numbers, names and phones, and a repr ends up in logs.

    >>> row = CsvRow(1, {"name": "王小红", "id_number": "11010520200315002X"})
    >>> row.values["id_number"]
    '11010520200315002X'
    >>> row
    CsvRow(number=1, values={'name': '王**', 'id_number': '11****************'}, problems=())
    """

    number: int
    values: Mapping[str, str] = attrs.field(repr=_masked_values)
    problems: tuple[Violation, ...] = ()


class FileRejected(ValidationError):
    """A file refused as a whole, before any of its rows is used: nothing is written.

    ``code`` is one of ``file_missing`` (cannot be opened), ``file_empty``,
    ``file_encoding`` (not UTF-8, GB18030/GBK or UTF-16 text: a binary file,
    say), ``file_format`` (a workbook that cannot be read, or ``.xlsx`` support
    not installed), ``file_sheet`` (no such sheet), ``file_header`` (columns
    missing: ``field`` names the first, the message all of them and their
    accepted names) or ``file_no_rows`` (a header and no data row).

    >>> err = FileRejected("file_no_rows", "", "没有数据行", "the file has no data row")
    >>> isinstance(err, ValueError), str(err)
    (True, 'file_no_rows: the file has no data row / 没有数据行')
    """

    code: ClassVar[str] = "file_rejected"
    default_zh: ClassVar[str] = "文件无法读取"
    default_en: ClassVar[str] = "the file cannot be read"

    def __init__(
        self, code: str, field: str, message_zh: str, message_en: str, hint: str = ""
    ) -> None:
        super().__init__(message_en, field=field, message_zh=message_zh, code=code, hint=hint)


@attrs.frozen
class FileInfo:
    """What a table file was read as: ``format`` (``csv`` or ``xlsx``), the text
    ``encoding`` (``utf-8``, ``utf-8-sig``, ``gb18030``, ``utf-16-le``, ``utf-16-be``;
    ``None`` for a workbook), the ``sheet`` read (workbooks) and the canonical
    ``columns`` found in the header.

    >>> FileInfo("csv", "gb18030", None, ("name",)).describe()
    'CSV (GB18030)'
    >>> FileInfo("xlsx", None, "学生", ("name",)).describe()
    'Excel workbook, sheet 学生'
    """

    format: str
    encoding: str | None
    sheet: str | None
    columns: tuple[str, ...] = ()

    def describe(self) -> str:
        """A short description for a CLI line."""
        if self.format == "xlsx":
            return f"Excel workbook, sheet {self.sheet}"
        names = {
            "utf-8": "UTF-8",
            "utf-8-sig": "UTF-8 with BOM",
            "gb18030": "GB18030",
            "utf-16-le": "UTF-16 LE",
            "utf-16-be": "UTF-16 BE",
            "utf-16": "UTF-16",
        }
        return f"CSV ({names.get(self.encoding or '', self.encoding)})"

    def to_dict(self) -> dict[str, str | None]:
        """A JSON-ready mapping (``format``, ``encoding``, ``sheet``)."""
        return {"format": self.format, "encoding": self.encoding, "sheet": self.sheet}


def norm_header(text: str) -> str:
    """A header cell as matched against aliases: no spaces or ``*``, lower case.

    >>> norm_header(" *Name ")
    'name'
    """
    return re.sub(r"[\s*＊]", "", text).lower()


_norm_header = norm_header


def _clean(cell: str) -> str:
    return cell.strip().lstrip("\ufeff")


def lookup_of(aliases: Mapping[str, str]) -> dict[str, str]:
    """Normalised header text → canonical column (see :func:`norm_header`).

    >>> lookup_of({"姓名": "name"})
    {'姓名': 'name'}
    """
    return {norm_header(k): v for k, v in aliases.items()}


def header_columns(cells: Sequence[str], lookup: Mapping[str, str]) -> list[str | None]:
    """The canonical column of each header cell (``None`` for an unknown one).

    >>> header_columns(["\\ufeff姓名", "备注"], {"姓名": "name"})
    ['name', None]
    """
    return [lookup.get(norm_header(_clean(c))) for c in cells]


def _encoding_violation(column: str) -> Violation:
    return Violation(
        "encoding",
        column,
        "单元格含有无法按文件编码解读的字节，请以UTF-8或GB18030保存文件",
        "the cell holds bytes that do not fit the file's encoding; save the file as UTF-8 "
        "or GB18030",
    )


def control_violation(column: str) -> Violation:
    """The row-level rejection of a cell holding a control character (NUL, tab, line
    break, DEL, a C1 control): ``control_character``.

    >>> control_violation("name").code
    'control_character'
    """
    return Violation(
        "control_character",
        column,
        "单元格含有控制字符（如NUL、换行、制表符）",
        "the cell contains a control character (NUL, line break, tab…)",
    )


def has_control(text: str) -> bool:
    """Whether ``text`` holds a control character (Unicode category Cc).

    >>> has_control("王小明"), has_control("王\\x00明"), has_control("a\\u0085b")
    (False, True, True)
    """
    # isprintable() is true for most text and runs in C: scan only when it is false.
    return not text.isprintable() and _CONTROL.search(text) is not None


def read_rows(
    records: Iterator[list[str]],
    columns: list[str | None],
    required: Sequence[str],
    wanted: Callable[[int], bool] | None,
    *,
    pad: bool = False,
    errors: tuple[type[Exception], ...] = (),
    notes: Callable[[list[str], list[str | None]], list[Violation]] | None = None,
) -> Iterator[CsvRow]:
    """The data rows of ``records`` (the header already taken, its ``columns`` given).

    ``notes``: called with each record's cells and the columns, returns problems of the
    row the reader found itself (a workbook's numbers that lost digits).

    ``pad``: records are padded with empty cells to the header's length, or cut to it
    when the cells beyond it are empty (a workbook's rows are as long as its widest).
    An exception of ``errors`` raised while reading a record is that row's
    ``csv_malformed`` problem.  ``wanted``: see
    :func:`studentstatus.tabular.text.read_csv`.

    >>> rows = read_rows(iter([["王小明", "男"], [" ", ""], ["李", "女", "x"]]),
    ...                  ["name", "sex"], (), None)
    >>> [(r.number, dict(r.values), [p.code for p in r.problems]) for r in rows]
    [(1, {'name': '王小明', 'sex': '男'}, []), (2, {'name': '李', 'sex': '女'}, ['row_long'])]
    """
    present = {c for c in columns if c}
    missing = tuple(c for c in required if c not in present)
    # (cell index, column) of each column's first cell, for the common row.
    pairs: list[tuple[int, str]] = []
    for i, c in enumerate(columns):
        if c is not None and all(c != name for _, name in pairs):
            pairs.append((i, c))
    n_columns = len(columns)
    number = 0
    while True:
        try:
            cells = next(records)
        except StopIteration:
            return
        except errors as exc:
            number += 1
            yield CsvRow(
                number,
                {},
                (
                    Violation(
                        "csv_malformed",
                        "",
                        "该行不是有效的CSV记录",
                        f"the row is not valid CSV ({str(exc)[:80]})",
                    ),
                ),
            )
            continue
        if not cells or all(not c.strip() for c in cells):
            continue
        number += 1
        if wanted is not None and not wanted(number):
            yield CsvRow(number, _SKIPPED, ())
            continue
        if pad and len(cells) != n_columns:
            if len(cells) < n_columns:
                cells = cells + [""] * (n_columns - len(cells))
            elif not any(c.strip() for c in cells[n_columns:]):
                cells = cells[:n_columns]
        noted = notes(cells, columns) if notes is not None else None
        if noted:
            row = _row(number, cells, columns, missing)
            yield CsvRow(number, row.values, (*noted, *row.problems))
            continue
        if len(cells) == n_columns and not missing:
            values = {name: cells[i].strip() for i, name in pairs}
            joined = "".join(values.values())
            if (
                (joined.isascii() or _BAD_BYTES.search(joined) is None)
                and (len(joined) <= MAX_CELL or max(map(len, values.values())) <= MAX_CELL)
                and (joined.isprintable() or _CONTROL.search(joined) is None)
            ):
                yield CsvRow(number, values, ())
                continue
        yield _row(number, cells, columns, missing)


def _row(
    number: int, cells: list[str], columns: list[str | None], missing: tuple[str, ...]
) -> CsvRow:
    values: dict[str, str] = {}
    problems: list[Violation] = []
    n_cells = len(cells)
    for i, column in enumerate(columns):
        if column is None or i >= n_cells or column in values:
            continue
        cell = cells[i].strip()
        if not cell.isascii() and _BAD_BYTES.search(cell) is not None:
            problems.append(_encoding_violation(column))
            cell = _BAD_BYTES.sub("\ufffd", cell)
        if has_control(cell):
            problems.append(control_violation(column))
        if len(cell) > MAX_CELL:
            problems.append(
                Violation(
                    "too_long",
                    column,
                    f"内容过长（超过{MAX_CELL}个字符）",
                    f"the cell is longer than {MAX_CELL} characters",
                )
            )
            cell = cell[:MAX_CELL]
        values[column] = cell
    for column in missing:
        problems.append(
            Violation("column_missing", column, "文件缺少必需的列", "the file lacks this column")
        )
    if len(cells) < len(columns):
        problems.append(
            Violation(
                "row_short",
                "",
                f"该行只有{len(cells)}列，表头有{len(columns)}列",
                f"the row has {len(cells)} cells, the header {len(columns)}",
            )
        )
    elif len(cells) > len(columns) and any(c.strip() for c in cells[len(columns) :]):
        problems.append(
            Violation(
                "row_long",
                "",
                f"该行有{len(cells)}列，多于表头的{len(columns)}列",
                f"the row has {len(cells)} cells, more than the header's {len(columns)}",
            )
        )
    return CsvRow(number, values, tuple(problems))


def header_refusal(
    missing: Sequence[str], aliases: Mapping[str, str], found: Sequence[str]
) -> FileRejected:
    """The ``file_header`` refusal for a header lacking the ``missing`` columns.

    >>> err = header_refusal(["name"], {"name": "name", "姓名": "name"}, ["名字"])
    >>> err.code, err.field
    ('file_header', 'name')
    >>> err.message_en
    'the header lacks the column(s) name (accepted: name, 姓名); found: 名字'
    """

    def names(column: str) -> list[str]:
        return [k for k, v in aliases.items() if v == column]

    en = "; ".join(f"{c} (accepted: {', '.join(names(c))})" for c in missing)
    zh = "；".join(f"{c}（可用列名：{'、'.join(names(c))}）" for c in missing)
    shown = ", ".join(str(f)[:40] for f in list(found)[:20])
    return FileRejected(
        "file_header",
        missing[0] if missing else "",
        f"表头缺少必需的列：{zh}；文件的表头为：{shown}",
        f"the header lacks the column(s) {en}; found: {shown}",
    )


def parse_date(text: str) -> date:
    """Parse ``YYYY-MM-DD``, ``YYYY/MM/DD`` (also ``YYYY.MM.DD``, one-digit parts) or ``YYYYMMDD``.

    Raises :class:`ValueError` for anything else or an impossible date.

    >>> parse_date("2020-02-29")
    datetime.date(2020, 2, 29)
    >>> parse_date("2021-02-29")
    Traceback (most recent call last):
    ...
    ValueError: day is out of range for month
    """
    if len(text) == 10 and text[4] == "-" == text[7]:
        # The common form: the C parser (length 10 with those dashes, it reads only
        # YYYY-MM-DD in ASCII digits); anything it refuses takes the general path.
        try:
            return date.fromisoformat(text)
        except ValueError:
            pass
    m = _DATE_RE.match(text)
    if m is None:
        msg = "expected YYYY-MM-DD, YYYY/MM/DD or YYYYMMDD"
        raise ValueError(msg)
    year = int(m.group(1))
    if m.group(3) is not None:
        return date(year, int(m.group(3)), int(m.group(4)))
    return date(year, int(m.group(5)), int(m.group(6)))


def parse_bool(text: str) -> bool:
    """Parse a yes/no cell: 1/0, true/false, yes/no, Y/N, 是/否, 农业/非农业 (case-insensitive).

    An empty cell is ``False``; anything else raises :class:`ValueError`.

    >>> parse_bool("是"), parse_bool("0"), parse_bool(""), parse_bool("农业")
    (True, False, False, True)
    """
    t = text.strip().lower()
    if t in _TRUE:
        return True
    if t in _FALSE or t == "":
        return False
    msg = "expected yes/no, 1/0, true/false or 是/否"
    raise ValueError(msg)


def escape_cell(value: object) -> str:
    """Text of ``value`` for a CSV export, with formula-leading text neutralised by ``'``.

    ``None`` becomes an empty cell.

    >>> escape_cell("+8613800138000"), escape_cell("王小明"), escape_cell(None), escape_cell(3)
    ("'+8613800138000", '王小明', '', '3')
    """
    if value is None:
        return ""
    text = value.value if hasattr(value, "value") and not isinstance(value, str) else value
    text = str(text)
    if text.startswith(_FORMULA_LEAD):
        return "'" + text
    return text
