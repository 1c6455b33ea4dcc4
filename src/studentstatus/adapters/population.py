"""Population-registry adapters (公安人口库): an extract CSV file, and an in-memory one for tests.

Both implement :class:`studentstatus.ports.PopulationRegistry`: given a
batch of queries (document number, name, sex, birth date) they answer, per
number, one of :class:`~studentstatus.domain.enums.VerificationResult`:

* ``NOT_FOUND`` — the number is not in the registry;
* ``DECEASED`` / ``CANCELLED`` — the registry's status says so (checked first);
* ``NAME_MISMATCH`` — the number exists under another name;
* ``INFO_MISMATCH`` — the name agrees but the sex or the birth date does not;
* ``MATCH`` — everything agrees.

The extract is a CSV file with the columns ``id_number, name, sex,
birth_date, status`` (status ``normal``, ``deceased`` or ``cancelled``; sex
``M``/``F``/``男``/``女``; dates as accepted by
:func:`studentstatus.tabular.parse_date`), in any encoding or workbook
:func:`studentstatus.tabular.open_table` reads.  The file is checked as a file
first: an empty, binary or unreadable file, one whose header lacks a column, or
one without a data row raises :class:`~studentstatus.tabular.FileRejected` (so a
verification never runs against nothing).  Rows that cannot be read are counted
in ``skipped``, by reason in ``skipped_by``, and ignored.

**Memory.**  The extract is loaded once into a compact index: two parallel
arrays sorted by key, ``array('q')`` of packed numbers (the 17 digits and the
check character of a resident ID in one 64-bit integer) and ``array('Q')`` of
packed answers (a 39-bit hash of the name, the birth date's ordinal, sex and
status in one 64-bit integer), looked up by bisection — 16 bytes a person, no
Python object per person.  Rows are added to a small dict that is sorted into
runs of 65,536 people, and the runs are merged once (the last row for a number
wins, as in a dict).  Measured by ``bench/registration_stages.py --n 1000000
--registry-only`` (an extract of 937,743 people): 16.6 bytes a person retained
and 32.7 at the peak of the merge (tracemalloc); the process grows by 25 MB of
RSS and loads the CSV in 8.0 s.  The dict of Python ints used before held
116.6 bytes a person (RSS +125 MB, 14.5 s), and the verify stage of a 1M-row
run climbed to 280 MB of RSS with it.  Numbers that are not 18-character
resident IDs (rare in an extract) are kept in an ordinary dict.

>>> from datetime import date
>>> from studentstatus.adapters.population import MemoryPopulationRegistry, Query
>>> reg = MemoryPopulationRegistry([
...     ("11010520200315002X", "王小明", "F", date(2020, 3, 15), "normal"),
...     ("440306202109010045", "李四", "F", date(2021, 9, 1), "deceased")])
>>> res = reg.verify([Query("11010520200315002X", "王小明", "F", date(2020, 3, 15)),
...                   Query("11010520200315002X", "王小红", "F", date(2020, 3, 15)),
...                   Query("440306202109010045", "李四", "F", date(2021, 9, 1)),
...                   Query("510107201911300030", "张三", "M", date(2019, 11, 30))])
>>> [r.value for r in res.values()]
['NAME_MISMATCH', 'DECEASED', 'NOT_FOUND']
>>> reg.verify([Query("11010520200315002X", "王小明", "F", date(2020, 3, 15))])[
...     "11010520200315002X"].value
'MATCH'
"""

from __future__ import annotations

import heapq
import itertools
import os
from array import array
from bisect import bisect_left
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from datetime import date

import attrs

from studentstatus.domain.enums import VerificationResult
from studentstatus.ports import VerificationQuery
from studentstatus.tabular import CsvRow, FileInfo, open_table, parse_date

__all__ = ["CsvPopulationRegistry", "MemoryPopulationRegistry", "Query", "RegistryRow"]

_STATUS = {"normal": 0, "deceased": 1, "cancelled": 2}
_STATUS_ZH = {"正常": 0, "死亡": 1, "注销": 2}
_SEX = {"M": "M", "F": "F", "男": "M", "女": "F"}
_NAME_BITS = 39
_NAME_MASK = (1 << _NAME_BITS) - 1
_BIRTH_MASK = (1 << 22) - 1  # date.max.toordinal() = 3,652,059 < 2**22
_RUN = 65_536  # rows sorted into one run at a time
_MAX_RUNS = 4  # more unmerged runs than this → merge before the next look-up


@attrs.frozen
class Query:
    """One verification question: number, name, sex (``M``/``F``) and birth date.

    >>> from datetime import date
    >>> Query("11010520200315002X", "王小明", "F", date(2020, 3, 15)).sex
    'F'
    """

    number: str = attrs.field(repr=lambda n: repr(n[:6] + "*" * max(0, len(n) - 10) + n[-4:]))
    name: str
    sex: str
    birth_date: date


RegistryRow = tuple[str, str, str, date, str]
"""``(id_number, name, sex, birth_date, status)`` with status normal/deceased/cancelled."""


def _key(number: str) -> int | str:
    # 17 digits + check (digit or X) packed in one int < 1.1e18 (fits a signed 64-bit slot).
    n = number.strip().upper()
    if len(n) == 18 and n[:17].isdigit() and (n[17].isdigit() or n[17] == "X"):
        return int(n[:17]) * 11 + (10 if n[17] == "X" else int(n[17]))
    return n


def _name_hash(name: str) -> int:
    # hash() is stable within a process, which is the index's whole life.
    return hash(name.strip()) & _NAME_MASK


def _pack(name: str, sex: str, birth: date, status: int) -> int:
    # name hash (39 bits) | birth ordinal (22 bits) | female (1 bit) | status (2 bits): 64 bits.
    return (_name_hash(name) << 25) | (birth.toordinal() << 3) | ((sex == "F") << 2) | status


def _merge(sources: Sequence[tuple[array[int], array[int]]]) -> tuple[array[int], array[int]]:
    """Merge sorted (keys, values) runs into one; for a key in several runs the last run wins."""
    keys: array[int] = array("q")
    values: array[int] = array("Q")
    streams = [zip(ks, itertools.repeat(i), vs) for i, (ks, vs) in enumerate(sources)]
    last = None
    for key, _run, value in heapq.merge(*streams):
        if key == last:
            values[-1] = value
        else:
            keys.append(key)
            values.append(value)
            last = key
    return keys, values


class MemoryPopulationRegistry:
    """A registry held in memory, built from rows ``(id_number, name, sex, birth_date, status)``.

    ``status`` is ``normal``, ``deceased`` or ``cancelled`` (or 正常/死亡/注销).
    A number added twice keeps the last row.  The index is two sorted 64-bit
    arrays (see the module docs), about 16 bytes a person.

    >>> from datetime import date
    >>> reg = MemoryPopulationRegistry([("360426199101010071", "赵六", "M", date(1991, 1, 1),
    ...                                  "normal")])
    >>> len(reg), reg.verify([Query("360426199101010071", "赵六", "M", date(1991, 1, 2))])[
    ...     "360426199101010071"].value
    (1, 'INFO_MISMATCH')
    """

    def __init__(self, rows: Iterable[RegistryRow] = ()) -> None:
        self._keys: array[int] = array("q")  # sorted, unique
        self._values: array[int] = array("Q")
        self._runs: list[tuple[array[int], array[int]]] = []  # sorted, oldest first
        self._recent: dict[int, int] = {}  # the newest rows, not yet in a run
        self._other: dict[str, int] = {}  # numbers that are not resident-ID shaped
        self.skipped = 0
        self.skipped_by: Counter[str] = Counter()
        """Rows skipped, by reason (a row problem's code, ``id_missing``, ``name_missing``,
        ``sex_invalid``, ``date_invalid``, ``status_invalid``)."""
        for number, name, sex, birth, status in rows:
            self.add(number, name, sex, birth, status)
        self._compact()

    def add(self, number: str, name: str, sex: str, birth_date: date, status: str) -> None:
        """Add or replace one person.

        >>> from datetime import date
        >>> reg = MemoryPopulationRegistry()
        >>> reg.add("360426199101010071", "赵六", "男", date(1991, 1, 1), "normal"); len(reg)
        1
        """
        code = _STATUS.get(status.strip().lower(), _STATUS_ZH.get(status.strip()))
        if code is None:
            msg = "status must be normal, deceased or cancelled"
            raise ValueError(msg)
        s = _SEX.get(sex.strip().upper(), "")
        if not s:
            msg = "sex must be M or F"
            raise ValueError(msg)
        value = _pack(name, s, birth_date, code)
        key = _key(number)
        if isinstance(key, str):
            self._other[key] = value
            return
        self._recent[key] = value
        if len(self._recent) >= _RUN:
            self._flush()

    def _flush(self) -> None:
        if self._recent:
            items = sorted(self._recent.items())
            self._runs.append(
                (array("q", [k for k, _ in items]), array("Q", [v for _, v in items]))
            )
            self._recent = {}

    def _compact(self) -> None:
        """Merge the recent rows and every run into the main arrays."""
        self._flush()
        if self._runs:
            self._keys, self._values = _merge([(self._keys, self._values), *self._runs])
            self._runs = []

    def __len__(self) -> int:
        self._compact()
        return len(self._keys) + len(self._other)

    def verify(self, batch: Sequence[VerificationQuery]) -> Mapping[str, VerificationResult]:
        """One result per queried number (keyed by the number as queried)."""
        if len(self._runs) > _MAX_RUNS:
            self._compact()
        out: dict[str, VerificationResult] = {}
        for q in batch:
            out[q.number] = self._one(q)
        return out

    def _find(self, key: int | str) -> int | None:
        if isinstance(key, str):
            return self._other.get(key)
        found = self._recent.get(key)
        if found is not None:
            return found
        for keys, values in (*reversed(self._runs), (self._keys, self._values)):
            i = bisect_left(keys, key)
            if i < len(keys) and keys[i] == key:
                return values[i]
        return None

    def _one(self, q: VerificationQuery) -> VerificationResult:
        packed = self._find(_key(q.number))
        if packed is None:
            return VerificationResult.NOT_FOUND
        status = packed & 3
        if status == 1:
            return VerificationResult.DECEASED
        if status == 2:
            return VerificationResult.CANCELLED
        if packed >> 25 != _name_hash(q.name):
            return VerificationResult.NAME_MISMATCH
        sex_f = bool(packed & 4)
        birth = (packed >> 3) & _BIRTH_MASK
        if sex_f != (str(q.sex).upper() == "F") or birth != q.birth_date.toordinal():
            return VerificationResult.INFO_MISMATCH
        return VerificationResult.MATCH


class CsvPopulationRegistry(MemoryPopulationRegistry):
    """A registry extract (``id_number, name, sex, birth_date, status``) loaded into an index.

    A CSV file in UTF-8, GB18030/GBK or UTF-16, or an ``.xlsx`` workbook (``sheet``: which
    one; the first by default).  Chinese headers 身份证号/姓名/性别/出生日期/状态 are
    accepted too.  The file is checked as a file first
    (:class:`~studentstatus.tabular.FileRejected`); rows that cannot be read are
    skipped and counted in ``skipped`` and, by reason, in ``skipped_by``.  ``file``
    says what the file was read as.

    >>> import tempfile, os
    >>> from datetime import date
    >>> d = tempfile.mkdtemp(); path = os.path.join(d, "extract.csv")
    >>> with open(path, "w", encoding="utf-8") as fh:
    ...     _ = fh.write("id_number,name,sex,birth_date,status\\n"
    ...                  "11010520200315002X,王小明,女,2020-03-15,normal\\nbad,row\\n")
    >>> reg = CsvPopulationRegistry(path)
    >>> len(reg), reg.skipped, dict(reg.skipped_by), reg.file.encoding
    (1, 1, {'row_short': 1}, 'utf-8')
    >>> with open(path, "wb") as fh:
    ...     _ = fh.write(bytes(range(256)) * 8)
    >>> CsvPopulationRegistry(path)
    Traceback (most recent call last):
    ...
    studentstatus.tabular.rows.FileRejected: file_encoding: ...
    """

    ALIASES: Mapping[str, str] = {
        "id_number": "id_number",
        "name": "name",
        "sex": "sex",
        "birth_date": "birth_date",
        "status": "status",
        "身份证号": "id_number",
        "公民身份号码": "id_number",
        "身份证件号码": "id_number",
        "姓名": "name",
        "性别": "sex",
        "出生日期": "birth_date",
        "状态": "status",
        "人员状态": "status",
    }
    """Header text → column."""

    REQUIRED: tuple[str, ...] = ("id_number", "name", "sex", "birth_date", "status")
    """Columns an extract must have."""

    def __init__(self, path: str | os.PathLike[str], *, sheet: str | None = None) -> None:
        super().__init__()
        self.path = os.fspath(path)
        with open_table(
            self.path, aliases=self.ALIASES, required=self.REQUIRED, sheet=sheet
        ) as table:
            self.file: FileInfo = table.info
            for row in table:
                why = self._row(row)
                if why:
                    self.skipped += 1
                    self.skipped_by[why] += 1
        self._compact()

    def _row(self, row: CsvRow) -> str:
        """Add one row; return why it was skipped (``""`` when it was added)."""
        if row.problems:
            return row.problems[0].code
        v = row.values
        if not v.get("id_number"):
            return "id_missing"
        if not v.get("name"):
            return "name_missing"
        if _SEX.get(v.get("sex", "").strip().upper(), "") == "":
            return "sex_invalid"
        status = v.get("status", "").strip()
        if status.lower() not in _STATUS and status not in _STATUS_ZH:
            return "status_invalid"
        try:
            birth = parse_date(v.get("birth_date", ""))
        except ValueError:
            return "date_invalid"
        self.add(v["id_number"], v["name"], v["sex"], birth, status)
        return ""
