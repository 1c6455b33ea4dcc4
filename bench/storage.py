"""Storage bulk-insert benchmark: the SQL adapter's bulk path against the raw drivers.

Inserts N children and N status records (each record with a temporary number,
so the number index gets N rows too) in one unit of work from generators:

* ``sqlite-adapter``  — ``SqlStore(sqlite file).add_many`` (chunked executemany);
* ``sqlite-raw``      — ``sqlite3`` ``executemany`` of the same rows and columns;
* ``pg-adapter``      — ``SqlStore(PostgreSQL).add_many`` (COPY for large batches);
* ``pg-raw``          — psycopg 3 ``COPY … FROM STDIN`` of the same rows and columns.

Every phase runs in its own subprocess, so its peak RSS (``ru_maxrss``) is its
own; the adapter phases also run at N/10 to show memory does not grow with N.

    python bench/storage.py --n 1000000 [--pg postgresql+psycopg://postgres@127.0.0.1:5432/test]

Without ``--pg`` (or ``STUDENTSTATUS_TEST_POSTGRES_URL``) only SQLite runs;
``--only sqlite|pg`` runs one database.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

BASE = date(2019, 9, 1)
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"


_BIRTHS = [BASE + timedelta(days=d) for d in range(1400)]
_BIRTH_TEXT = [f"{b:%Y%m%d}" for b in _BIRTHS]
_REGIONS = [f"1101{r + 1:02d}" for r in range(20)]
_NAMES = [
    SURNAMES[i % len(SURNAMES)] + "小" + SURNAMES[(i // 7) % len(SURNAMES)] for i in range(140)
]


def _values(i: int) -> dict[str, Any]:
    """The primitive values of child ``i`` and its record (shared by every phase, cheap)."""
    b = i % 1400
    region = _REGIONS[i % 20]
    return {
        "child_id": f"c{i:09d}",
        "name": _NAMES[i % 140],
        "sex": "M" if i % 2 else "F",
        "birth": _BIRTHS[b],
        "doc": f"{region}{_BIRTH_TEXT[b]}{i % 1000:03d}X",
        "phone": f"+86138{i:08d}",
        "record_id": f"r{i:09d}",
        "school": f"11110{i % 500:05d}",
        "region": region,
        "temp": f"L{region}{_BIRTH_TEXT[b]}{i:09d}",
    }


def _children(n: int) -> Iterator[Any]:
    from studentstatus.domain.enums import Sex
    from studentstatus.domain.model import Child, DocumentKind, Guardian, IdentityDocument

    for i in range(n):
        v = _values(i)
        yield Child(
            v["child_id"],
            v["name"],
            Sex(v["sex"]),
            v["birth"],
            IdentityDocument(DocumentKind.RESIDENT, v["doc"]),
            guardians=(Guardian("家长", "mother", v["phone"]),),
        )


def _records(n: int) -> Iterator[Any]:
    from studentstatus.domain.enums import Grade, State
    from studentstatus.domain.model import StatusRecord

    for i in range(n):
        v = _values(i)
        yield StatusRecord(
            v["record_id"],
            v["child_id"],
            v["school"],
            v["region"],
            State.ACTIVE,
            Grade.JUNIOR,
            date(2023, 9, 1),
            temp_number=v["temp"],
        )


def _raw_rows(n: int, *, iso: bool) -> tuple[Iterator[tuple[Any, ...]], ...]:
    """Tuples with the adapter's columns and stored values (dates ISO on SQLite)."""

    def d(x: date) -> Any:
        return x.isoformat() if iso else x

    entry = date(2023, 9, 1)

    def children() -> Iterator[tuple[Any, ...]]:
        for i in range(n):
            v = _values(i)
            guardians = json.dumps([{"name": "家长", "relation": "mother", "phone": v["phone"]}])
            yield (v["child_id"], v["name"], v["sex"], d(v["birth"]), "resident", v["doc"],
                   "CHN", None, None, False, None, guardians, False, False, False, 0)  # fmt: skip

    def records() -> Iterator[tuple[Any, ...]]:
        for i in range(n):
            v = _values(i)
            yield (v["record_id"], v["child_id"], v["school"], v["region"], "ACTIVE", "JUNIOR",
                   d(entry), v["temp"], None, "[]", None, False, None, None, 0, None, "[]",
                   False, None, None, 0)  # fmt: skip

    def numbers() -> Iterator[tuple[Any, ...]]:
        for i in range(n):
            v = _values(i)
            yield (v["temp"], v["record_id"])

    return children(), records(), numbers()


CHILD_COLS = ("id", "name", "sex", "birth_date", "document_type", "document_number",
              "nationality", "ethnicity", "hukou_region", "hukou_rural", "residence_region",
              "guardians", "left_behind", "disability", "orphan", "version")  # fmt: skip
RECORD_COLS = ("id", "child_id", "kindergarten_code", "region_code", "state", "grade",
               "entry_date", "temp_number", "national_number", "former_numbers", "verification",
               "county_confirmed", "suspended_since", "suspended_until", "suspended_days",
               "last_promoted_year", "repeated_grades", "skipped", "state_before_cancel",
               "cancelled_on", "version")  # fmt: skip
NUMBER_COLS = ("number", "record_id")


def _chunks(it: Iterator[tuple[Any, ...]], size: int = 5000) -> Iterator[list[tuple[Any, ...]]]:
    import itertools

    while chunk := list(itertools.islice(it, size)):
        yield chunk


# ----------------------------------------------------------------------------- phases


def phase_adapter(url: str, n: int, prefix: str) -> None:
    from studentstatus.adapters.sql import SqlStore

    store = SqlStore(url, prefix=prefix, create=True)
    try:
        started = time.perf_counter()
        with store.unit_of_work() as uow:
            uow.children.add_many(_children(n))
            uow.records.add_many(_records(n))
            uow.commit()
        elapsed = time.perf_counter() - started
        with store.unit_of_work() as uow:
            assert uow.records.count() == n
    finally:
        store.drop_schema()
        store.close()
    _report(n, elapsed)


def phase_sqlite_raw(url: str, n: int, prefix: str) -> None:
    import sqlalchemy as sa

    from studentstatus.adapters.sql import build_tables

    path = url.removeprefix("sqlite:///")
    tables = build_tables(prefix=prefix)
    engine = sa.create_engine(url)
    tables.metadata.create_all(engine)
    engine.dispose()
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    children, records, numbers = _raw_rows(n, iso=True)
    started = time.perf_counter()
    conn.execute("BEGIN IMMEDIATE")
    for table, cols, rows in (("children", CHILD_COLS, children),
                              ("records", RECORD_COLS, records),
                              ("record_numbers", NUMBER_COLS, numbers)):  # fmt: skip
        sql = (f"INSERT INTO {prefix}{table} ({', '.join(cols)}) "
               f"VALUES ({', '.join('?' * len(cols))})")  # fmt: skip
        for chunk in _chunks(rows):
            conn.executemany(sql, chunk)
    conn.execute("COMMIT")
    elapsed = time.perf_counter() - started
    conn.close()
    engine = sa.create_engine(url)
    tables.metadata.drop_all(engine)
    engine.dispose()
    _report(n, elapsed)


def phase_pg_raw(url: str, n: int, prefix: str) -> None:
    import psycopg
    import sqlalchemy as sa

    from studentstatus.adapters.sql import build_tables

    tables = build_tables(prefix=prefix)
    engine = sa.create_engine(url)
    tables.metadata.create_all(engine)
    engine.dispose()
    dsn = sa.make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    children, records, numbers = _raw_rows(n, iso=False)
    started = time.perf_counter()
    with psycopg.connect(dsn) as conn, conn.cursor() as cur:
        for table, cols, rows in (("children", CHILD_COLS, children),
                                  ("records", RECORD_COLS, records),
                                  ("record_numbers", NUMBER_COLS, numbers)):  # fmt: skip
            with cur.copy(f"COPY {prefix}{table} ({', '.join(cols)}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        conn.commit()
    elapsed = time.perf_counter() - started
    engine = sa.create_engine(url)
    tables.metadata.drop_all(engine)
    engine.dispose()
    _report(n, elapsed)


def _report(n: int, elapsed: float) -> None:
    rss_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"n": n, "seconds": elapsed, "maxrss_mb": rss_kb / 1024}))


PHASES = {
    "sqlite-adapter": phase_adapter,
    "sqlite-raw": phase_sqlite_raw,
    "pg-adapter": phase_adapter,
    "pg-raw": phase_pg_raw,
}


def _run_phase(name: str, url: str, n: int) -> dict[str, Any]:
    prefix = f"b{uuid.uuid4().hex[:6]}_"
    cmd = [sys.executable, __file__, "--phase", name, "--url", url, "--n", str(n),
           "--prefix", prefix]  # fmt: skip
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    # rows = children + records (the number index rows are written on top, by both sides)
    result["rows_per_s"] = 2 * n / result["seconds"]
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000, help="children (= records)")
    parser.add_argument("--pg", default=os.environ.get("STUDENTSTATUS_TEST_POSTGRES_URL"))
    parser.add_argument("--only", choices=["sqlite", "pg"], help="run one database only")
    parser.add_argument("--phase", choices=sorted(PHASES), help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--prefix", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phase:
        PHASES[args.phase](args.url, args.n, args.prefix)
        return

    n = args.n
    tmp = Path(tempfile.mkdtemp(prefix="ss-bench-"))
    runs: list[tuple[str, str, int]] = []
    if args.only != "pg":
        runs += [("sqlite-adapter", f"sqlite:///{tmp}/adapter.db", n),
                 ("sqlite-adapter", f"sqlite:///{tmp}/adapter-small.db", max(n // 10, 1)),
                 ("sqlite-raw", f"sqlite:///{tmp}/raw.db", n)]  # fmt: skip
    if args.pg and args.only != "sqlite":
        runs += [("pg-adapter", args.pg, n), ("pg-adapter", args.pg, max(n // 10, 1)),
                 ("pg-raw", args.pg, n)]  # fmt: skip
    print(f"storage bulk insert: {n:,} children + {n:,} records (+ {n:,} number-index rows)")
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs")
    results: dict[tuple[str, int], dict[str, Any]] = {}
    for name, url, size in runs:
        res = _run_phase(name, url, size)
        results[(name, size)] = res
        rate, rss = res["rows_per_s"], res["maxrss_mb"]
        print(f"  {name:15s} n={size:>9,}  {res['seconds']:8.2f} s  "
              f"{rate:>10,.0f} rows/s  peak RSS {rss:7.1f} MB")  # fmt: skip
        for f in tmp.glob("*.db*"):
            f.unlink()
    tmp.rmdir()
    for db in ("sqlite", "pg"):
        if (f"{db}-adapter", n) not in results:
            continue
        a, r = results[(f"{db}-adapter", n)], results[(f"{db}-raw", n)]
        small = results[(f"{db}-adapter", max(n // 10, 1))]
        ratio = a["rows_per_s"] / r["rows_per_s"]
        print(f"  {db}: adapter/raw = {ratio:.2f}x; "
              f"peak RSS N {a['maxrss_mb']:.0f} MB, N/10 {small['maxrss_mb']:.0f} MB")  # fmt: skip


if __name__ == "__main__":
    main()
