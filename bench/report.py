"""Benchmark: the full monitoring report in the database vs hand-written SQL GROUP BY queries.

Seeds N children, N ACTIVE/other records, N change-log events, N/100 problem
records and ``--days`` calendar days of attendance (weekdays only, about 5 %
of them corrected by a later row) straight into the SQL adapter's tables
(sqlite3 ``executemany`` / psycopg ``COPY``: fast, not the code under test),
in a child process so that the seeding does not count in the peak RSS.

Then, in the same process and on the same data, it times

* **library** — :func:`studentstatus.services.reports.build_report` on a
  :class:`~studentstatus.adapters.sql.SqlStore` (which picks the GROUP BY
  source), the ministry's report over the whole country;
* **raw SQL** — the same counts with hand-written SQL text run through the DBAPI
  connection, without the library (the lower bound);

and prints both times, the ratio (target ≤ 1.5×) and the peak RSS
(``ru_maxrss``) before and after each phase, and checks that the two agree.

    .venv/bin/python bench/report.py --n 100000
    .venv/bin/python bench/report.py --n 1000000 --backends sqlite,postgresql
    .venv/bin/python bench/report.py --no-seed --sqlite-path /tmp/r.db --repeat 3

With ``--repeat`` > 1 the order alternates (raw, library; library, raw; …) and
the best time of each side is kept, so that neither side always runs on the
colder page cache.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
PREFIX = "benchrep_"
TODAY = date(2026, 10, 30)
NOW = datetime(2026, 10, 30, 10, tzinfo=UTC)
CHUNK = 20_000


def rss_mb() -> float:
    """Peak resident set size of this process so far, in MiB (Linux: ru_maxrss is KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# ------------------------------------------------------------------------------ seeding


def _counties() -> list[str]:
    out = []
    for p in ("11", "31", "44", "51"):
        for c in range(1, 4):
            for d in range(1, 6):
                out.append(f"{p}{c:02d}{d:02d}")
    return out


def _rows(n: int, days: int, seed: int) -> dict[str, Iterator[tuple[Any, ...]]]:
    counties = _counties()
    n_kg = max(5, n // 200)
    kgs = []
    for i in range(n_kg):
        region = counties[i % len(counties)]
        kind = ("PUBLIC", "PRIVATE_NONPROFIT", "PRIVATE_FORPROFIT")[i % 3]
        kgs.append((f"{region[:4]}{i:06d}", region, kind, i % 3 == 1 and i % 2 == 0))
    grades = ("NURSERY", "JUNIOR", "MIDDLE", "SENIOR")
    states = ("ACTIVE",) * 8 + ("WITHDRAWN", "SUSPENDED")
    school = [
        TODAY - timedelta(days=k) for k in range(days) if (TODAY - timedelta(days=k)).weekday() < 5
    ]
    rec_at = NOW.replace(tzinfo=None)

    def kindergartens() -> Iterator[tuple[Any, ...]]:
        for code, region, kind, inclusive in kgs:
            yield (code, "", f"幼儿园{code}", region, kind, inclusive, "[]", 0)

    def children() -> Iterator[tuple[Any, ...]]:
        r = random.Random(seed + 2)
        for i in range(n):
            birth = date(2020, 9, 1) + timedelta(days=r.randrange(1460))
            hukou = counties[r.randrange(len(counties))] if r.random() < 0.9 else None
            yield (
                f"c{i:08d}", f"儿童{i}", "MF"[i % 2], birth, "resident", f"X{i:017d}", "CHN",
                None, hukou, r.random() < 0.3, None, "[]", False, False, False, 0,
            )  # fmt: skip

    def records() -> Iterator[tuple[Any, ...]]:
        r = random.Random(seed + 3)
        for i in range(n):
            code, region, _k, _inc = kgs[r.randrange(n_kg)]
            yield (
                f"r{i:08d}", f"c{i:08d}", code, region, states[r.randrange(10)],
                grades[r.randrange(4)], date(2025, 9, 1), None, None, "[]", None, False, None,
                None, 0, None, "[]", False, None, None, 0,
            )  # fmt: skip

    def change_log() -> Iterator[tuple[Any, ...]]:
        r = random.Random(seed + 4)
        kinds = ("REGISTER", "PROMOTE", "TRANSFER", "WITHDRAW")
        for i in range(n):
            yield (
                f"r{i:08d}", 1, kinds[r.randrange(4)], None, "ACTIVE",
                date(2026, 9, 1) + timedelta(days=r.randrange(60)), rec_at, "bench", "", "[]",
                "{}", "{}",
            )  # fmt: skip

    def problems() -> Iterator[tuple[Any, ...]]:
        r = random.Random(seed + 5)
        kinds = ("DUPLICATE_ID", "INVALID_ID", "NOT_FOUND")
        statuses = ("OPEN", "EVIDENCE_SUBMITTED", "RESOLVED")
        for i in range(0, n, 100):
            code, region, _k, _inc = kgs[r.randrange(n_kg)]
            yield (
                f"p{i:08d}", f"r{i:08d}", kinds[r.randrange(3)], region, code, rec_at,
                date(2027, 7, 31), statuses[r.randrange(3)], "", "[]", "[]", None, None, None, 0,
            )  # fmt: skip

    def attendance() -> Iterator[tuple[Any, ...]]:
        r = random.Random(seed + 6)
        for i in range(n):
            rid = f"r{i:08d}"
            for day in school:
                absent = r.random() < 0.08
                yield (rid, day, "absent" if absent else "present",
                       "sick" if absent else None, rec_at, "bench")  # fmt: skip
                if r.random() < 0.05:
                    yield (rid, day, "present", None, rec_at, "bench")

    return {
        "kindergartens": kindergartens(),
        "children": children(),
        "records": records(),
        "change_log": change_log(),
        "problems": problems(),
        "attendance": attendance(),
    }


def _chunks(it: Iterator[tuple[Any, ...]], size: int) -> Iterator[list[tuple[Any, ...]]]:
    chunk: list[tuple[Any, ...]] = []
    for row in it:
        chunk.append(row)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def seed(url: str, n: int, days: int) -> dict[str, int]:
    """Create fresh tables (SqlStore.create_schema) and fill them with raw bulk SQL."""
    from studentstatus.adapters.sql import SqlStore

    store = SqlStore(url, prefix=PREFIX)
    store.drop_schema()
    store.create_schema()
    tables = store.tables
    counts: dict[str, int] = {}
    raw = store.engine.raw_connection()
    try:
        cur = raw.cursor()
        for name, rows in _rows(n, days, 20261030).items():
            table = getattr(tables, name)
            cols = [c.name for c in table.columns if not (name == "attendance" and c.name == "id")]
            total = 0
            if store.dialect_name == "postgresql":
                col_sql = ", ".join(f'"{c}"' for c in cols)
                with cur.copy(f'COPY "{table.name}" ({col_sql}) FROM STDIN') as copy:  # type: ignore[attr-defined]
                    for row in rows:
                        copy.write_row(row)
                        total += 1
            else:
                cur.execute("PRAGMA synchronous=OFF")  # seeding only: durability not needed
                cur.execute("BEGIN")  # the adapter's engine runs pysqlite in autocommit mode
                marks = ", ".join("?" for _ in cols)
                col_sql = ", ".join(f'"{c}"' for c in cols)
                sql = f'INSERT INTO "{table.name}" ({col_sql}) VALUES ({marks})'
                for chunk in _chunks(rows, CHUNK):
                    cur.executemany(sql, [_sqlite(r) for r in chunk])
                    total += len(chunk)
                cur.execute("COMMIT")
            counts[name] = total
        raw.commit()
        cur.execute("ANALYZE")
        raw.commit()
    finally:
        raw.close()
        store.close()
    return counts


def _sqlite(row: tuple[Any, ...]) -> tuple[Any, ...]:
    out = []
    for v in row:
        if isinstance(v, datetime):
            out.append(v.strftime("%Y-%m-%d %H:%M:%S.%f"))
        elif isinstance(v, date):
            out.append(v.isoformat())
        elif isinstance(v, bool):
            out.append(int(v))
        else:
            out.append(v)
    return tuple(out)


# ------------------------------------------------------------------------------ phases


def raw_queries(url: str) -> dict[str, list[tuple[Any, ...]]]:
    """The report's counts with hand-written SQL (same semantics), through the DBAPI."""
    import sqlalchemy as sa

    p = PREFIX
    start = (TODAY - timedelta(days=29)).isoformat()
    end = TODAY.isoformat()
    active = "r.state = 'ACTIVE'"
    queries = {
        "county_type": f"""SELECT r.region_code, k.type, k.inclusive, count(*) FROM {p}records r
            LEFT JOIN {p}kindergartens k ON k.school_code = r.kindergarten_code
            WHERE {active} GROUP BY r.region_code, k.type, k.inclusive""",
        "kindergarten": f"""SELECT r.kindergarten_code, count(*) FROM {p}records r
            WHERE {active} GROUP BY r.kindergarten_code""",
        "grade_sex": f"""SELECT r.grade, c.sex, count(*) FROM {p}records r
            LEFT JOIN {p}children c ON c.id = r.child_id WHERE {active} GROUP BY r.grade, c.sex""",
        "birth_date": f"""SELECT c.birth_date, count(*) FROM {p}records r
            LEFT JOIN {p}children c ON c.id = r.child_id WHERE {active} GROUP BY c.birth_date""",
        "migrant": f"""SELECT c.hukou_region, r.region_code, c.hukou_rural, count(*)
            FROM {p}records r LEFT JOIN {p}children c ON c.id = r.child_id WHERE {active}
            GROUP BY c.hukou_region, r.region_code, c.hukou_rural""",
        "changes": f"""SELECT l.kind, count(*) FROM {p}change_log l
            JOIN {p}records r ON r.id = l.record_id
            WHERE l.effective_date >= '2026-09-01' AND l.effective_date <= '2027-08-31'
            GROUP BY l.kind""",
        "problems": f"""SELECT kind, status, count(*) FROM {p}problems GROUP BY kind, status""",
        "attendance": f"""SELECT a.day, a.status, count(*) FROM {p}attendance a
            JOIN {p}records r ON r.id = a.record_id
            WHERE {active} AND a.day >= '{start}' AND a.day <= '{end}'
            AND NOT EXISTS (SELECT 1 FROM {p}attendance b WHERE b.record_id = a.record_id
                            AND b.day = a.day AND b.id > a.id)
            GROUP BY a.day, a.status""",
    }
    engine = sa.create_engine(url)
    out = {}
    raw = engine.raw_connection()
    try:
        cur = raw.cursor()
        for name, sql in queries.items():
            cur.execute(sql)
            out[name] = list(cur.fetchall())
    finally:
        raw.close()
        engine.dispose()
    return out


def library_report(url: str) -> Any:
    from studentstatus.adapters.sql import SqlStore
    from studentstatus.domain.jurisdiction import Operator
    from studentstatus.services.reports import build_report
    from studentstatus.services.runtime import FixedClock, Runtime

    store = SqlStore(url, prefix=PREFIX)
    try:
        rt = Runtime(store, FixedClock(NOW), random.Random(1))
        return build_report(rt, Operator.parse("ministry"), "", 2026)
    finally:
        store.close()


def _count_rows(url: str) -> dict[str, int]:
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    with engine.connect() as conn:
        out = {
            t: int(conn.exec_driver_sql(f"SELECT count(*) FROM {PREFIX}{t}").scalar_one())
            for t in ("kindergartens", "children", "records", "change_log", "problems")
        }
        out["attendance"] = int(
            conn.exec_driver_sql(f"SELECT count(*) FROM {PREFIX}attendance").scalar_one()
        )
    engine.dispose()
    return out


def run_backend(url: str, n: int, days: int, repeat: int, *, reseed: bool = True) -> dict[str, Any]:
    t0 = time.perf_counter()
    if reseed:
        seeded = subprocess.run(
            [
                sys.executable, __file__, "--seed-only", "--url", url, "--n", str(n),
                "--days", str(days),
            ],
            check=True,
            capture_output=True,
            text=True,
        )  # fmt: skip
        counts = json.loads(seeded.stdout.strip().splitlines()[-1])
    else:
        counts = _count_rows(url)
        n = counts["records"]
    seed_s = time.perf_counter() - t0
    rss0 = rss_mb()
    raw_times, lib_times = [], []
    raw = rep = None
    for i in range(repeat):
        # Alternate the order so that neither side always meets the colder cache.
        for side in ("raw", "lib") if i % 2 == 0 else ("lib", "raw"):
            t = time.perf_counter()
            if side == "raw":
                raw = raw_queries(url)
                raw_times.append(time.perf_counter() - t)
                rss_raw = rss_mb()
            else:
                rep = library_report(url)
                lib_times.append(time.perf_counter() - t)
    assert raw is not None
    assert rep is not None
    raw_total = sum(n for *_k, n in raw["kindergarten"])
    agree = raw_total == rep.total and sum(n for *_k, n in raw["attendance"]) == sum(
        v for d in rep.attendance_trend.values() for v in d.values()
    )
    return {
        "backend": url.split(":")[0],
        "n": n,
        "rows": counts,
        "seed_s": round(seed_s, 1),
        "raw_s": round(min(raw_times), 3),
        "library_s": round(min(lib_times), 3),
        "ratio": round(min(lib_times) / min(raw_times), 3),
        "rss_mb_start": round(rss0, 1),
        "rss_mb_after_raw": round(rss_raw, 1),
        "rss_mb_peak": round(rss_mb(), 1),
        "on_roll": rep.total,
        "agree": agree,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument("--backends", default="sqlite,postgresql")
    ap.add_argument("--pg-url", default=os.environ.get("STUDENTSTATUS_BENCH_PG", PG_URL))
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--sqlite-path", help="SQLite file to use (default: a new temp dir)")
    ap.add_argument(
        "--no-seed", action="store_true", help="reuse the data already there (same --n ignored)"
    )
    ap.add_argument("--seed-only", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--url", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.seed_only:
        print(json.dumps(seed(args.url, args.n, args.days)))
        return
    path = args.sqlite_path or f"{tempfile.mkdtemp(prefix='bench-report-')}/report.db"
    urls = {"sqlite": f"sqlite:///{path}", "postgresql": args.pg_url}
    for name in args.backends.split(","):
        res = run_backend(urls[name], args.n, args.days, args.repeat, reseed=not args.no_seed)
        print(
            f"{res['backend']:<22} n={res['n']:>9,}  attendance rows={res['rows']['attendance']:,}"
            f"  seed {res['seed_s']}s"
        )
        print(
            f"  raw SQL GROUP BY {res['raw_s']:.3f}s   library report {res['library_s']:.3f}s"
            f"   ratio {res['ratio']:.2f}x (target <= 1.5x)   agree={res['agree']}"
        )
        print(
            f"  peak RSS: start {res['rss_mb_start']} MiB, after raw {res['rss_mb_after_raw']}"
            f" MiB, after library {res['rss_mb_peak']} MiB"
        )
        print("  " + json.dumps(res, ensure_ascii=False))
        sys.stdout.flush()


if __name__ == "__main__":
    main()
