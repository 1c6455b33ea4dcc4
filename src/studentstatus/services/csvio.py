"""CSV in and out: streaming reads with Chinese header aliases, and injection-safe exports.

Reading (:func:`read_csv`) streams the file one record at a time, so memory
does not grow with the file:

* UTF-8 with or without a byte-order mark.  Bytes that are not UTF-8 do not
  stop the import: the cells that hold them are reported with the code
  ``encoding`` (the rest of the file is read normally);
* a header row is required; Chinese column names are accepted as aliases of
  the canonical names (:data:`CHILD_ALIASES`, :data:`KINDERGARTEN_ALIASES`),
  header matching ignores case, spaces and a ``*`` marking required columns;
* data rows are numbered from 1 (the first record after the header); blank
  lines are skipped and not counted;
* a required column missing from the header is reported on every row
  (``column_missing``), a row with fewer cells than the header
  (``row_short``) or more (``row_long``) is reported, and a cell longer than
  :data:`MAX_CELL` characters is ``too_long``.

Value parsers used by the intake: :func:`parse_date` (``YYYY-MM-DD``,
``YYYY/MM/DD``, ``YYYYMMDD``), :func:`parse_bool` (1/0, true/false, yes/no,
是/否, 农业/非农业).

Writing (:func:`write_csv`, :func:`escape_cell`) neutralises cells that a
spreadsheet would run as a formula: a cell starting with ``=``, ``+``,
``-``, ``@``, a tab or a carriage return is prefixed with ``'`` (OWASP
"CSV injection").

>>> import io
>>> data = "\\ufeff姓名,性别,出生日期\\n王小明,男,2020/3/15\\n".encode()
>>> rows = list(read_csv(io.BytesIO(data), aliases=CHILD_ALIASES, required=("name", "sex")))
>>> rows[0].number, rows[0].values["name"], rows[0].values["sex"], rows[0].problems
(1, '王小明', '男', ())
>>> parse_date("2020/3/15"), parse_date("20200315")
(datetime.date(2020, 3, 15), datetime.date(2020, 3, 15))
>>> escape_cell("=cmd|' /C calc'!A0")
"'=cmd|' /C calc'!A0"
"""

from __future__ import annotations

import csv
import io
import os
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import date
from types import MappingProxyType
from typing import IO, Any

import attrs

from studentstatus.errors import Violation, mask_number

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


def _masked_values(values: Mapping[str, str]) -> str:
    return repr({k: mask_number(v) for k, v in values.items()})


@attrs.frozen
class CsvRow:
    """One data row: its number (from 1), canonical values, and reading problems.

    ``values`` maps canonical column names to stripped text; a column absent
    from the file or from a short row is absent from ``values``.  ``problems``
    holds what went wrong while *reading* (bad bytes, missing columns, overly
    long cells); the caller adds its own checks.

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


def _norm_header(text: str) -> str:
    return re.sub(r"[\s*＊]", "", text).lower()


def _encoding_violation(column: str) -> Violation:
    return Violation(
        "encoding",
        column,
        "单元格含有非UTF-8编码的字节，请以UTF-8保存文件",
        "the cell holds bytes that are not UTF-8; save the file as UTF-8",
    )


_BAD_BYTES = re.compile(r"[\udc80-\udcff]")  # the escapes are read by re (see _has_bad_bytes)
_SKIPPED: Mapping[str, str] = MappingProxyType({})


def _has_bad_bytes(text: str) -> bool:
    # surrogateescape maps every undecodable byte to U+DC80..U+DCFF.
    return not text.isascii() and _BAD_BYTES.search(text) is not None


def _open_text(source: str | os.PathLike[str] | IO[bytes]) -> tuple[io.TextIOWrapper, bool]:
    if isinstance(source, str | os.PathLike):
        raw: IO[bytes] = open(source, "rb")  # noqa: SIM115 - closed by the caller
        owned = True
    else:
        raw = source
        owned = False
    text = io.TextIOWrapper(
        raw,
        encoding="utf-8-sig",
        errors="surrogateescape",
        newline="",
    )
    return text, owned


def read_csv(
    source: str | os.PathLike[str] | IO[bytes],
    *,
    aliases: Mapping[str, str],
    required: Sequence[str] = (),
    wanted: Callable[[int], bool] | None = None,
) -> Iterator[CsvRow]:
    """Stream the rows of a CSV file (path or binary stream) with canonical column names.

    Unknown columns are ignored.  Nothing here raises for bad content: every
    problem is attached to the row it concerns.  An empty file yields nothing.

    ``wanted``: called with each data row's number, in order; a row it refuses
    is still read (so numbering is unchanged) but yielded with no values and no
    problems — for a reader that only wants some rows of a file (the checker
    processes of an import each check their own chunks).

    >>> import io
    >>> data = b"name,sex\\n\\xff\\xfe,M\\n"
    >>> row = next(read_csv(io.BytesIO(data), aliases={"name": "name", "sex": "sex"}))
    >>> [(v.code, v.field) for v in row.problems]
    [('encoding', 'name')]
    >>> data = b"name,sex\\nA,M\\nB,F\\n\\nC,F\\n"
    >>> [(r.number, dict(r.values)) for r in read_csv(
    ...     io.BytesIO(data), aliases={"name": "name", "sex": "sex"}, wanted=lambda n: n != 2)]
    [(1, {'name': 'A', 'sex': 'M'}), (2, {}), (3, {'name': 'C', 'sex': 'F'})]
    """
    lookup = {_norm_header(k): v for k, v in aliases.items()}
    text, owned = _open_text(source)
    try:
        reader = csv.reader(text)
        header: list[str] | None = None
        columns: list[str | None] = []
        pairs: list[tuple[int, str]] = []
        n_columns = -1
        missing: tuple[str, ...] = ()
        number = 0
        while True:
            try:
                cells = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                if header is None:
                    header = []
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
            if header is None:
                header = cells
                columns = [lookup.get(_norm_header(_clean(c))) for c in cells]
                present = {c for c in columns if c}
                missing = tuple(c for c in required if c not in present)
                # (cell index, column) of each column's first cell, for the common row.
                pairs = []
                for i, c in enumerate(columns):
                    if c is not None and all(c != name for _, name in pairs):
                        pairs.append((i, c))
                n_columns = len(columns)
                continue
            number += 1
            if wanted is not None and not wanted(number):
                yield CsvRow(number, _SKIPPED, ())
                continue
            if len(cells) == n_columns and not missing:
                values = {name: cells[i].strip() for i, name in pairs}
                joined = "".join(values.values())
                if (joined.isascii() or _BAD_BYTES.search(joined) is None) and (
                    len(joined) <= MAX_CELL or max(map(len, values.values())) <= MAX_CELL
                ):
                    yield CsvRow(number, values, ())
                    continue
            yield _row(number, cells, columns, missing)
    finally:
        if owned:
            text.close()
        else:
            text.detach()


def _clean(cell: str) -> str:
    return cell.strip().lstrip("\ufeff")


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
            cell = cell.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
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


def write_csv(
    target: str | os.PathLike[str] | IO[str],
    header: Sequence[str],
    rows: Iterable[Sequence[Any] | Mapping[str, Any]],
    *,
    bom: bool = True,
) -> int:
    """Write ``rows`` (sequences, or mappings keyed by ``header``) as CSV; returns the row count.

    Every cell goes through :func:`escape_cell`.  A path is written in UTF-8
    with a byte-order mark by default (so that spreadsheet programs read the
    Chinese text correctly); a text stream is written as is.

    >>> import io
    >>> out = io.StringIO()
    >>> write_csv(out, ["name", "note"], [{"name": "王", "note": "=1+1"}])
    1
    >>> out.getvalue().splitlines()
    ['name,note', "王,'=1+1"]
    """
    if isinstance(target, str | os.PathLike):
        with open(target, "w", encoding="utf-8-sig" if bom else "utf-8", newline="") as fh:
            return _write(fh, header, rows)
    return _write(target, header, rows)


def _write(
    fh: IO[str], header: Sequence[str], rows: Iterable[Sequence[Any] | Mapping[str, Any]]
) -> int:
    writer = csv.writer(fh)  # RFC 4180 CRLF: a cell with CR or LF gets quoted
    writer.writerow([escape_cell(h) for h in header])
    n = 0
    for row in rows:
        cells = [row.get(h) for h in header] if isinstance(row, Mapping) else list(row)
        writer.writerow([escape_cell(c) for c in cells])
        n += 1
    return n
