"""Table files in and out: CSV text in any encoding an office uses, Excel workbooks, checks.

A neutral module (it imports neither services nor adapters), used by every
reader of files — rosters, the kindergarten registry, the population-registry
extract, attendance — and by the exports.

**Reading a file** (:func:`open_table`) checks it *as a file* before any row is
used, and refuses it as a whole with one :class:`~studentstatus.tabular.rows.FileRejected`
(code, field, message in Chinese and English) when it cannot be a table of the
kind asked for:

* ``file_missing``: it cannot be opened;
* ``file_empty``: no bytes, or only white space;
* ``file_encoding``: not UTF-8 (with or without BOM), GB18030/GBK or UTF-16 text,
  e.g. a binary file (:func:`~studentstatus.tabular.text.detect_encoding`);
* ``file_format``: a workbook that cannot be read, or ``.xlsx`` support (the
  ``xlsx`` extra) not installed; ``file_sheet``: no sheet of that name;
* ``file_header``: a column the file must have is absent from its header (under
  any of its accepted names);
* ``file_no_rows``: a header and no data row.

A workbook is recognised by its content (a zip archive), whatever the file is
called.  The rows then stream as :class:`~studentstatus.tabular.rows.CsvRow`, numbered
from 1 after the header, with the same row-level problems for CSV and workbooks;
:class:`~studentstatus.tabular.rows.FileInfo` says what was read.

**Writing** (:func:`write_table`): CSV (UTF-8 with BOM, formula-like text
prefixed with ``'``) or, for a path ending in ``.xlsx``, a workbook whose text
cells are stored as text.

>>> import io
>>> data = "姓名,性别\\n王小明,男\\n".encode("gb18030")
>>> with open_table(io.BytesIO(data), aliases={"姓名": "name", "性别": "sex"},
...                 required=("name",)) as table:
...     table.info.describe(), [dict(r.values) for r in table]
('CSV (GB18030)', [{'name': '王小明', 'sex': '男'}])
>>> open_table(io.BytesIO(b"name,sex\\n"), aliases={"name": "name"})
Traceback (most recent call last):
...
studentstatus.tabular.rows.FileRejected: file_no_rows: the file has a header and no data row / ...
"""

from __future__ import annotations

import csv
import itertools
import os
from collections.abc import Generator, Iterable, Iterator, Mapping, Sequence
from types import TracebackType
from typing import IO, Any

from studentstatus.tabular import xlsx
from studentstatus.tabular.rows import (
    CHILD_ALIASES,
    CHILD_COLUMNS,
    KINDERGARTEN_ALIASES,
    KINDERGARTEN_COLUMNS,
    MAX_CELL,
    CsvRow,
    FileInfo,
    FileRejected,
    control_violation,
    escape_cell,
    has_control,
    header_columns,
    header_refusal,
    lookup_of,
    parse_bool,
    parse_date,
    read_rows,
)
from studentstatus.tabular.text import (
    detect_encoding,
    open_text,
    read_csv,
    sample_of,
    write_csv,
)

__all__ = [
    "CHILD_ALIASES",
    "CHILD_COLUMNS",
    "KINDERGARTEN_ALIASES",
    "KINDERGARTEN_COLUMNS",
    "MAX_CELL",
    "CsvRow",
    "FileInfo",
    "FileRejected",
    "Table",
    "check_file",
    "control_violation",
    "detect_encoding",
    "escape_cell",
    "has_control",
    "is_file_source",
    "open_table",
    "parse_bool",
    "parse_date",
    "read_csv",
    "read_table",
    "write_csv",
    "write_table",
]

Source = str | os.PathLike[str] | IO[bytes]


def is_file_source(source: object) -> bool:
    """Whether ``source`` is a file (a path or a binary stream) rather than rows.

    >>> import io
    >>> is_file_source("a.csv"), is_file_source(io.BytesIO()), is_file_source([{}])
    (True, True, False)
    """
    return isinstance(source, str | os.PathLike) or hasattr(source, "read")


class Table:
    """An opened, checked table file: ``info`` (:class:`FileInfo`) and its rows.

    Iterate it once for the rows (:class:`CsvRow`); close it (or use it as a context
    manager) when not reading to the end.
    """

    def __init__(self, info: FileInfo, rows: Generator[CsvRow, None, None]) -> None:
        self.info = info
        self._rows = rows

    def __iter__(self) -> Iterator[CsvRow]:
        return self._rows

    def close(self) -> None:
        """Close the file."""
        self._rows.close()

    def __enter__(self) -> Table:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _refuse_empty() -> FileRejected:
    return FileRejected("file_empty", "", "文件为空", "the file is empty")


def _refuse_no_rows() -> FileRejected:
    return FileRejected(
        "file_no_rows", "", "文件只有表头，没有数据行", "the file has a header and no data row"
    )


def _refuse_encoding() -> FileRejected:
    return FileRejected(
        "file_encoding",
        "",
        "文件不是UTF-8、GB18030/GBK或UTF-16编码的文本（可能是二进制文件，或表头无法识别）；"
        "请另存为CSV（UTF-8）或Excel工作簿（.xlsx）",
        "the file is not UTF-8, GB18030/GBK or UTF-16 text (a binary file, or a header "
        "that cannot be recognised); save it as CSV (UTF-8) or as an Excel workbook (.xlsx)",
    )


def _header_and_rows(
    records: Iterator[list[str]],
    info: FileInfo,
    aliases: Mapping[str, str],
    required: Sequence[str],
    *,
    pad: bool,
    errors: tuple[type[Exception], ...],
    notes: Any = None,
) -> Generator[FileInfo | CsvRow, None, None]:
    header: list[str] | None = None
    for cells in records:
        if cells and any(c.strip() for c in cells):
            header = cells
            break
    if header is None:
        raise _refuse_empty()
    if pad:  # a workbook's header row: as long as the widest row, its tail empty
        while header and not header[-1].strip():
            header = header[:-1]
    columns = header_columns(header, lookup_of(aliases))
    present = {c for c in columns if c}
    missing = [c for c in required if c not in present]
    if missing or not present:
        wanted = missing or sorted(set(aliases.values()))[:1]
        raise header_refusal(wanted, aliases, [c.strip() for c in header])
    rows = read_rows(records, columns, (), None, pad=pad, errors=errors, notes=notes)
    first = next(rows, None)
    if first is None:
        raise _refuse_no_rows()
    yield FileInfo(info.format, info.encoding, info.sheet, tuple(sorted(present)))
    yield first
    yield from rows


def _csv_records(reader: Iterator[list[str]]) -> Iterator[list[str]]:
    """Records before the header: malformed ones skipped (the header search)."""
    while True:
        try:
            yield next(reader)
        except StopIteration:
            return
        except csv.Error:
            continue


def _table(
    source: Source,
    aliases: Mapping[str, str],
    required: Sequence[str],
    sheet: str | None,
) -> Generator[FileInfo | CsvRow, None, None]:
    owned = isinstance(source, str | os.PathLike)
    if owned:
        try:
            raw: IO[bytes] = open(source, "rb")  # type: ignore[arg-type]  # noqa: SIM115
        except OSError as exc:
            raise FileRejected(
                "file_missing",
                "",
                f"无法打开文件（{type(exc).__name__}）",
                f"the file cannot be opened ({type(exc).__name__}: {exc.strerror or exc})",
            ) from None
    else:
        raw = source  # type: ignore[assignment]
    text = None
    try:
        sample, start, whole = sample_of(raw)
        if sample.startswith(xlsx.ZIP_MAGIC):
            workbook = xlsx.load(start)
            try:
                title, records = xlsx.sheet_records(workbook, sheet)
                yield from _header_and_rows(
                    records,
                    FileInfo("xlsx", None, title),
                    aliases,
                    required,
                    pad=True,
                    errors=(),
                    notes=xlsx.precision_notes,
                )
            finally:
                workbook.close()
            return
        if not sample.strip(b" \t\r\n\xef\xbb\xbf\xff\xfe"):
            raise _refuse_empty()
        if sheet is not None:
            raise FileRejected(
                "file_sheet",
                "sheet",
                "只有Excel工作簿才有工作表；该文件是文本文件",
                "only an Excel workbook has sheets; this is a text file",
            )
        encoding = detect_encoding(sample, aliases, whole=whole)
        if encoding is None:
            raise _refuse_encoding()
        text = open_text(start, encoding)
        reader = csv.reader(text)
        head = _csv_records(reader)
        info = FileInfo("csv", encoding, None)
        # The header is looked for with malformed records skipped; the data rows report them.
        header_gen = _header_and_rows(
            itertools.chain(_first_of(head), reader),
            info,
            aliases,
            required,
            pad=False,
            errors=(csv.Error,),
        )
        yield from header_gen
    finally:
        if text is not None and not owned:
            text.detach()
        if owned:
            raw.close()


def _first_of(records: Iterator[list[str]]) -> Iterator[list[str]]:
    """Records up to and including the first non-blank one."""
    for cells in records:
        yield cells
        if cells and any(c.strip() for c in cells):
            return


def open_table(
    source: Source,
    *,
    aliases: Mapping[str, str],
    required: Sequence[str] = (),
    sheet: str | None = None,
) -> Table:
    """Open and check a table file (CSV or ``.xlsx``, a path or a binary stream).

    Raises :class:`FileRejected` (see the module docs) before returning when the file
    cannot be read, lacks one of the ``required`` columns (or has no known column at
    all), or has no data row; the header and the first data row have been read then.
    ``sheet``: a workbook's sheet (the first by default).

    >>> import io
    >>> open_table(io.BytesIO(b"\\x7fELF\\x02\\x01\\x01\\x00\\x00\\x00" * 50), aliases={"a": "a"})
    Traceback (most recent call last):
    ...
    studentstatus.tabular.rows.FileRejected: file_encoding: ...
    >>> open_table(io.BytesIO(b"nom,sexe\\nA,M\\n"), aliases={"name": "name"}, required=["name"])
    Traceback (most recent call last):
    ...
    studentstatus.tabular.rows.FileRejected: file_header [name]: the header lacks ...
    """
    gen = _table(source, aliases, required, sheet)
    info = next(gen)
    assert isinstance(info, FileInfo)
    return Table(info, gen)  # type: ignore[arg-type]  # only rows follow the info


def check_file(
    source: Source,
    *,
    aliases: Mapping[str, str],
    required: Sequence[str] = (),
    sheet: str | None = None,
) -> FileInfo:
    """Check a table file as :func:`open_table` does and close it; return what it is.

    A stream is read from where it is and put back there when it can seek.

    >>> import io
    >>> check_file(io.BytesIO("name\\n王\\n".encode("utf-16")), aliases={"name": "name"})
    FileInfo(format='csv', encoding='utf-16', sheet=None, columns=('name',))
    """
    pos = None
    if not isinstance(source, str | os.PathLike):
        try:
            pos = source.tell() if source.seekable() else None
        except (AttributeError, OSError, ValueError):  # pragma: no cover - odd streams
            pos = None
    with open_table(source, aliases=aliases, required=required, sheet=sheet) as table:
        info = table.info
    if pos is not None:
        source.seek(pos)  # type: ignore[union-attr]
    return info


def read_table(
    source: Source,
    *,
    aliases: Mapping[str, str],
    required: Sequence[str] = (),
    sheet: str | None = None,
) -> Iterator[CsvRow]:
    """The rows of a checked table file (:func:`open_table`): the checks run at once,
    the rows stream.

    >>> import io
    >>> rows = read_table(io.BytesIO(b"name\\nA\\nB\\n"), aliases={"name": "name"})
    >>> [r.values["name"] for r in rows]
    ['A', 'B']
    """
    table = open_table(source, aliases=aliases, required=required, sheet=sheet)
    return _closing_rows(table)


def _closing_rows(table: Table) -> Iterator[CsvRow]:
    with table:
        yield from table


def write_table(
    target: str | os.PathLike[str],
    header: Sequence[str],
    rows: Iterable[Sequence[Any] | Mapping[str, Any]],
) -> int:
    """Write rows to ``target``: an Excel workbook when its name ends in ``.xlsx``
    (:func:`studentstatus.tabular.xlsx.write_xlsx`), else CSV (:func:`write_csv`).
    Returns the row count.

    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "p.xlsx")
    >>> write_table(path, ["name"], [["=1+1"]]), list(xlsx.sheet_rows(path))
    (1, [['name'], ['=1+1']])
    """
    if os.fspath(target).lower().endswith(".xlsx"):
        return xlsx.write_xlsx(target, header, rows)
    return write_csv(target, header, rows)
