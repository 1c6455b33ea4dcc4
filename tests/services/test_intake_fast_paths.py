"""Differential tests: each fast path of the intake equals the general code it short-cuts."""

from __future__ import annotations

import csv
import io

from hypothesis import given, settings
from hypothesis import strategies as st

from studentstatus.services import csvio
from studentstatus.services.csvio import CHILD_ALIASES, MAX_CELL, read_csv

_HEADERS = ["name", "sex", "姓名", "grade", "unknown", "name", "出生日期", "id_number"]
_cells = st.one_of(
    st.text(max_size=8),
    st.sampled_from(["  王小明 ", "M", "", "=cmd|' /C calc'!A0", "x" * (MAX_CELL + 3), "ａ１"]),
)


def _general(data: bytes) -> list[csvio.CsvRow]:
    """What the reader yields through the per-cell path alone (``_row`` for every row)."""
    lookup = {csvio._norm_header(k): v for k, v in CHILD_ALIASES.items()}
    text = io.TextIOWrapper(io.BytesIO(data), encoding="utf-8-sig", errors="surrogateescape",
                            newline="")  # fmt: skip
    out: list[csvio.CsvRow] = []
    columns: list[str | None] | None = None
    number = 0
    for cells in csv.reader(text):
        if not cells or all(not c.strip() for c in cells):
            continue
        if columns is None:
            columns = [lookup.get(csvio._norm_header(csvio._clean(c))) for c in cells]
            continue
        number += 1
        out.append(csvio._row(number, cells, columns, ()))
    return out


@settings(max_examples=300, deadline=None)
@given(
    header=st.lists(st.sampled_from(_HEADERS), min_size=1, max_size=6),
    rows=st.lists(st.lists(_cells, min_size=0, max_size=7), min_size=1, max_size=6),
    raw_bytes=st.booleans(),
)
def test_reader_fast_row_equals_the_per_cell_path(
    header: list[str], rows: list[list[str]], raw_bytes: bool
) -> None:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(header)
    for r in rows:
        w.writerow(r)
    data = buf.getvalue().encode("utf-8")
    if raw_bytes:
        data = data.replace(b"M", b"\xff\xfe")  # undecodable bytes inside cells
    fast = list(read_csv(io.BytesIO(data), aliases=CHILD_ALIASES))
    slow = _general(data)
    assert [(r.number, dict(r.values), list(r.values), r.problems) for r in fast] == [
        (r.number, dict(r.values), list(r.values), r.problems) for r in slow
    ]


@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(-(2**63), 2**63 - 1), min_size=1, max_size=3000, unique=True))
def test_bloom_filter_never_forgets_and_seen_agrees_with_membership(hashes: list[int]) -> None:
    from studentstatus.services.intake_numbers import Bloom

    bloom = Bloom(bits=1 << 10)  # small: several layers
    added: set[int] = set()
    for h in hashes + hashes[::2]:
        if h in added:
            assert bloom.seen(h)  # no false negatives
        else:
            added.add(h)
            bloom.seen(h)
    assert all(h in bloom for h in hashes)
    fresh = [h ^ 0x5DEECE66D5DEECE6 for h in hashes if h ^ 0x5DEECE66D5DEECE6 not in added]
    assert sum(bloom.seen(h) for h in fresh) <= max(3, len(fresh) // 20)  # mostly new


@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(-(2**63), 2**63 - 1), min_size=1, max_size=3000))
def test_bloom_seen_is_membership_then_add(hashes: list[int]) -> None:
    """The one-pass ``seen`` answers and sets exactly what ``h in bloom`` then ``add`` do,
    across layers (repeats included)."""
    from studentstatus.services.intake_numbers import Bloom

    fused, plain = Bloom(bits=1 << 8), Bloom(bits=1 << 8)
    for h in hashes + hashes[::3]:
        expected = h in plain
        plain.add(h)
        assert fused.seen(h) == expected
    assert fused._layers == plain._layers
    assert (fused._count, fused._capacity) == (plain._count, plain._capacity)


def test_bloom_filter_false_positives_stay_near_a_quarter_percent() -> None:
    import random

    from studentstatus.services.intake_numbers import Bloom

    rng = random.Random(5)
    bloom = Bloom()
    for _ in range(1 << 19):  # the first layer, full
        bloom.add(rng.getrandbits(64) - 2**63)
    false = sum(rng.getrandbits(64) - 2**63 in bloom for _ in range(100_000))
    assert false < 350  # 0.35%: four probes, 16 bits an item
    small = Bloom(bits=1 << 10)
    for _ in range(70_000):  # 64 + 256 + 1,024 + 4,096 + 16,384 + 65,536 items: six layers
        small.add(rng.getrandbits(64))
    assert len(small._layers) == 6


def _date_by_pattern(text: str) -> object:
    """parse_date's general path alone (the pattern): a date or the error's type."""
    m = csvio._DATE_RE.match(text)
    if m is None:
        return ValueError
    try:
        if m.group(3) is not None:
            return csvio.date(int(m.group(1)), int(m.group(3)), int(m.group(4)))
        return csvio.date(int(m.group(1)), int(m.group(5)), int(m.group(6)))
    except ValueError:
        return ValueError


def _date_or_error(text: str) -> object:
    try:
        return csvio.parse_date(text)
    except ValueError:
        return ValueError


_DIGITS = st.sampled_from("0123456789０１２３٣")


@settings(max_examples=1000, deadline=None)
@given(
    st.builds(
        lambda y, m, d: f"{y}-{m}-{d}",
        st.text(_DIGITS | st.sampled_from("+- W"), min_size=4, max_size=4),
        st.text(_DIGITS | st.sampled_from("W-"), min_size=2, max_size=2),
        st.text(_DIGITS | st.sampled_from("T "), min_size=2, max_size=2),
    )
    | st.dates().map(lambda d: d.isoformat())
    | st.text(max_size=12)
)
def test_parse_date_iso_fast_path_equals_the_pattern(text: str) -> None:
    # The C ISO parser answers 10-character YYYY-MM-DD texts; whatever it answers or refuses
    # (full-width or Arabic-Indic digits, week dates, signs) must be the pattern's verdict.
    assert _date_or_error(text) == _date_by_pattern(text)


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(
        st.text(max_size=20),
        st.text(alphabet="0123456789Xx -\t\u3000ab", max_size=20),
        st.sampled_from(["11010520200315002x", "E1234 5678", "H-123\t456", "ＡＢ１２", "ß1"]),
    )
)
def test_compact_number_fast_path_equals_the_pattern(text: str) -> None:
    """A number of letters and digits only skips the pattern with the same result."""
    from studentstatus.domain.claims import _SPACES_AND_HYPHENS, compact_number

    assert compact_number(text) == _SPACES_AND_HYPHENS.sub("", text).upper()
