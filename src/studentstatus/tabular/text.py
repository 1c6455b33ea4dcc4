"""CSV text files: the encoding detected, rows streamed, exports made safe for spreadsheets.

**Encodings** (:func:`detect_encoding`, on the first :data:`SAMPLE` bytes):

1. a byte-order mark decides: UTF-8, UTF-16 LE or UTF-16 BE;
2. a sample with NUL bytes at every other position (an ASCII header saved as
   UTF-16 without a mark) that decodes as UTF-16 to a known header: UTF-16;
   a sample of which more than a tenth is NUL bytes is not text at all;
3. a sample that is strict UTF-8: UTF-8;
4. a sample that is mostly UTF-8 (fewer bad bytes than half its non-ASCII bytes)
   whose first line names a known column: UTF-8, and the cells holding the bad
   bytes are reported ``encoding``;
5. a sample that is GB18030 (which includes GBK and GB2312), with at most one
   bad byte in ten non-ASCII bytes, *and* whose first line names at least one
   known column: GB18030 — GB18030 decodes almost any bytes, so the header has
   to confirm it;
6. anything else is not a text file this library reads (``None``).

**Reading** (:func:`read_csv`) streams the file one record at a time, so memory
does not grow with the file; see :mod:`studentstatus.tabular.rows` for the row
numbers and the problems reported on rows.  :func:`read_csv` never raises for
bad content (a file whose encoding is not recognised is read as UTF-8, its bad
bytes reported on the cells); :func:`studentstatus.tabular.open_table` refuses
such a file as a whole.

**Writing** (:func:`write_csv`) neutralises cells that a spreadsheet would run
as a formula: a cell starting with ``=``, ``+``, ``-``, ``@``, a tab or a
carriage return is prefixed with ``'`` (OWASP "CSV injection").

>>> import io
>>> data = "姓名,性别,出生日期\\n王小明,男,2020/3/15\\n".encode("gb18030")
>>> from studentstatus.tabular.rows import CHILD_ALIASES
>>> rows = list(read_csv(io.BytesIO(data), aliases=CHILD_ALIASES, required=("name", "sex")))
>>> rows[0].number, rows[0].values["name"], rows[0].values["sex"], rows[0].problems
(1, '王小明', '男', ())
>>> detect_encoding(data, {"姓名": "name"})
'gb18030'
"""

from __future__ import annotations

import codecs
import csv
import io
import os
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import IO, Any

from studentstatus.tabular.rows import (
    BAD_BYTES_ERRORS,
    CsvRow,
    escape_cell,
    header_columns,
    lookup_of,
    read_rows,
)

_BAD = re.compile(r"[\udc00-\udcff]")  # escapes read by re: no surrogate literal in the source

__all__ = ["SAMPLE", "detect_encoding", "open_text", "read_csv", "write_csv"]

SAMPLE = 65_536
"""Bytes read from the start of a file to detect its encoding."""

_BOMS: tuple[tuple[bytes, str], ...] = (
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
CODEC = {"utf-8": "utf-8-sig", "utf-8-sig": "utf-8-sig", "gb18030": "gb18030"}
"""Reported encoding → the codec the reader decodes with (others: the same name)."""


def _decodes(sample: bytes, encoding: str, final: bool) -> str | None:
    try:
        return codecs.getincrementaldecoder(encoding)("strict").decode(sample, final)
    except UnicodeDecodeError:
        return None


def _names_a_column(text: str, lookup: Mapping[str, str]) -> bool:
    for line in text.splitlines():
        if line.strip(" \t\ufeff,;"):
            try:
                cells = next(csv.reader([line]))
            except (csv.Error, StopIteration):
                return False
            return any(header_columns(cells, lookup))
    return False


def _utf16_order(sample: bytes) -> str | None:
    head = sample[:1024]
    head = head[: len(head) - len(head) % 2]
    pairs = len(head) // 2
    if pairs == 0:
        return None
    even = head[0::2].count(0)
    odd = head[1::2].count(0)
    if odd >= pairs // 4 and even == 0:
        return "utf-16-le"
    if even >= pairs // 4 and odd == 0:
        return "utf-16-be"
    return None


def detect_encoding(
    sample: bytes, aliases: Mapping[str, str], *, whole: bool = False
) -> str | None:
    """The encoding of a text file starting with ``sample`` (see the module docs), or ``None``.

    Returns ``utf-8``, ``utf-8-sig`` (UTF-8 with a BOM), ``utf-16`` (with a BOM),
    ``utf-16-le``, ``utf-16-be`` or ``gb18030``.  ``aliases`` are the header names a
    file of this kind may use (a GB18030 or BOM-less UTF-16 guess must find one);
    ``whole``: the sample is the whole file (its last character is complete).

    >>> aliases = {"name": "name", "姓名": "name"}
    >>> detect_encoding("name\\n王小明\\n".encode(), aliases)
    'utf-8'
    >>> detect_encoding("姓名\\n王小明\\n".encode("utf-16"), aliases)
    'utf-16'
    >>> detect_encoding("name\\n王小明\\n".encode("utf-16-le"), aliases)
    'utf-16-le'
    >>> detect_encoding("姓名\\n王小明\\n".encode("gbk"), aliases)
    'gb18030'
    >>> detect_encoding(bytes(range(256)) * 4, aliases) is None
    True
    """
    for bom, name in _BOMS:
        if sample.startswith(bom):
            return name
    lookup = lookup_of(aliases)
    nuls = sample[:4096].count(0)
    if nuls:
        order = _utf16_order(sample)
        if order is not None:
            end = len(sample) - len(sample) % 2
            text = _decodes(sample[:end], order, whole)
            if text is not None and _names_a_column(text, lookup):
                return order
        if nuls * 10 > min(len(sample), 4096):
            return None
    if not whole and b"\n" in sample:  # whole lines only: no character cut in two
        sample = sample[: sample.rindex(b"\n") + 1]
    if _decodes(sample, "utf-8", True) is not None:
        return "utf-8"
    high = sum(1 for b in sample if b >= 0x80) or 1
    text = sample.decode("utf-8", BAD_BYTES_ERRORS)
    if _bad_count(text) * 2 < high and _names_a_column(text, lookup):
        return "utf-8"  # UTF-8 with a few stray bytes: reported on their cells
    text = sample.decode("gb18030", BAD_BYTES_ERRORS)
    if _bad_count(text) * 10 <= high and _names_a_column(text, lookup):
        return "gb18030"
    return None


def _bad_count(text: str) -> int:
    return len(_BAD.findall(text))


class _Prefixed(io.RawIOBase):
    """A non-seekable stream with its first bytes, already read, put back in front."""

    def __init__(self, head: bytes, rest: IO[bytes]) -> None:
        self._head = head
        self._rest = rest

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer)
        if self._head:
            n = min(len(view), len(self._head))
            view[:n] = self._head[:n]
            self._head = self._head[n:]
            return n
        data = self._rest.read(len(view))
        view[: len(data)] = data
        return len(data)


def sample_of(raw: IO[bytes]) -> tuple[bytes, IO[bytes], bool]:
    """The first :data:`SAMPLE` bytes of ``raw``, a stream to read it from the start,
    and whether the sample is the whole stream.

    >>> sample_of(io.BytesIO(b"abc"))[0::2]
    (b'abc', True)
    """
    seekable = False
    try:
        seekable = raw.seekable()
    except (AttributeError, OSError, ValueError):  # pragma: no cover - odd streams
        seekable = False
    if seekable:
        pos = raw.tell()
        sample = raw.read(SAMPLE + 1)
        raw.seek(pos)
        return sample[:SAMPLE], raw, len(sample) <= SAMPLE
    sample = raw.read(SAMPLE + 1)
    return sample[:SAMPLE], io.BufferedReader(_Prefixed(sample, raw)), len(sample) <= SAMPLE


def open_text(raw: IO[bytes], encoding: str) -> io.TextIOWrapper:
    """A text stream over ``raw`` decoding ``encoding`` (as :func:`detect_encoding` names
    it); undecodable bytes become lone surrogates (reported ``encoding`` on their cells).

    >>> open_text(io.BytesIO("王".encode("gb18030")), "gb18030").read()
    '王'
    """
    return io.TextIOWrapper(
        raw, encoding=CODEC.get(encoding, encoding), errors=BAD_BYTES_ERRORS, newline=""
    )


def read_csv(
    source: str | os.PathLike[str] | IO[bytes],
    *,
    aliases: Mapping[str, str],
    required: Sequence[str] = (),
    wanted: Callable[[int], bool] | None = None,
    encoding: str | None = None,
) -> Iterator[CsvRow]:
    """Stream the rows of a CSV file (path or binary stream) with canonical column names.

    The encoding is detected (:func:`detect_encoding`; UTF-8 when nothing fits)
    unless ``encoding`` is given.  Unknown columns are ignored.  Nothing here raises
    for bad content: every problem is attached to the row it concerns (a required
    column missing from the header: ``column_missing`` on every row).  An empty file
    yields nothing.

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
    owned = isinstance(source, str | os.PathLike)
    raw: IO[bytes] = (
        open(source, "rb")  # noqa: SIM115 - closed below
        if isinstance(source, str | os.PathLike)
        else source
    )
    text: io.TextIOWrapper | None = None
    try:
        if encoding is None:
            sample, raw_from_start, whole = sample_of(raw)
            encoding = detect_encoding(sample, aliases, whole=whole) or "utf-8"
        else:
            raw_from_start = raw
        text = open_text(raw_from_start, encoding)
        records = csv.reader(text)
        lookup = lookup_of(aliases)
        for cells in _until_header(records):
            columns = header_columns(cells, lookup)
            yield from read_rows(records, columns, required, wanted, errors=(csv.Error,))
            return
    finally:
        if text is not None and not owned:
            text.detach()
        if owned:
            raw.close()


def _until_header(records: Iterator[list[str]]) -> Iterator[list[str]]:
    """Yield the first non-blank record (the header), if any; malformed lines before it
    are skipped."""
    while True:
        try:
            cells = next(records)
        except StopIteration:
            return
        except csv.Error:
            continue
        if cells and any(c.strip() for c in cells):
            yield cells
            return


def write_csv(
    target: str | os.PathLike[str] | IO[str],
    header: Sequence[str],
    rows: Iterable[Sequence[Any] | Mapping[str, Any]],
    *,
    bom: bool = True,
) -> int:
    """Write ``rows`` (sequences, or mappings keyed by ``header``) as CSV; returns the row count.

    Every cell goes through :func:`~studentstatus.tabular.rows.escape_cell`.  A path is
    written in UTF-8 with a byte-order mark by default (so that spreadsheet programs read
    the Chinese text correctly); a text stream is written as is.

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
