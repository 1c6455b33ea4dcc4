"""Benchmark: year-end rollover of N ACTIVE records vs a hand-written SQL baseline.

Two identical data sets are seeded (table prefixes ``svc_`` and ``raw_``) through the SQL
adapter's bulk path (``records.add_many`` in one unit of work).  Then, each phase in its own
subprocess (so its peak RSS is its own):

* ``service``: :func:`studentstatus.services.rollover.apply_rollover` by the ministry into
  school year 2026.  On the SQL store the records the status machine certainly promotes or
  graduates (here: all of them) are applied set-based: the others are streamed to the machine
  (none here, but the query that finds them runs), the covered ones are read once as
  ``(record_id, seq)`` in id order (locked; counted and folded into the run's events digest),
  then ONE ``INSERT … SELECT`` writes their change rows (before/after JSON built in SQL) and ONE
  ``UPDATE`` their records, then ONE hash-chained audit entry for the run, all in ONE
  transaction;
* ``baseline``: one ``UPDATE`` of grade/version/last_promoted_year/state and one
  ``INSERT … SELECT`` of the change rows, in one transaction: no audit log, no eligibility
  checks beyond ``state = 'ACTIVE'`` (and, with ``--done-every``, the year already promoted),
  and constant before/after JSON literals — the floor any implementation pays.

``--done-every k`` makes every k-th record "done" (already promoted into 2026): the service
reads those into Python and classifies them with the status machine, as it does every record
the set-based rule does not cover.

Prints seconds per phase, records/s, the ratio service/baseline (target ≤ 2×) and peak RSS.

    .venv/bin/python bench/rollover.py --n 100000 --db sqlite
    .venv/bin/python bench/rollover.py --n 100000 --db postgresql+psycopg://postgres@127.0.0.1:5432/test
    .venv/bin/python bench/rollover.py --n 100000 --db sqlite --done-every 10
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path

GRADES = ["NURSERY", "JUNIOR", "MIDDLE", "SENIOR"]


def _records(n: int, done_every: int = 0) -> Iterator[object]:
    from studentstatus.domain.enums import Grade, State
    from studentstatus.domain.model import StatusRecord

    rng = random.Random(7)
    regions = ["110105", "110108", "440305", "440306", "320102"]
    for i in range(n):
        region = regions[i % len(regions)]
        yield StatusRecord(
            f"r{i:09d}",
            f"c{i:09d}",
            f"{region[:4]}{rng.randrange(1_000_000):06d}",
            region,
            State.ACTIVE,
            Grade(GRADES[i % 4]),
            date(2025, 9, 1),
            # "done": already promoted into 2026 (the machine path reads and skips them).
            last_promoted_year=2026 if done_every and i % done_every == 0 else None,
            version=2,
        )


def _store(url: str, prefix: str):  # type: ignore[no-untyped-def]
    from studentstatus.adapters.sql import SqlStore

    return SqlStore(url, prefix=prefix)


def seed(url: str, n: int, done_every: int = 0) -> None:
    from studentstatus.adapters.sql import SqlStore

    for prefix in ("svc_", "raw_"):
        store = SqlStore(url, prefix=prefix)
        store.drop_schema()
        store.create_schema()
        t0 = time.perf_counter()
        with store.unit_of_work() as uow:
            uow.records.add_many(_records(n, done_every))  # type: ignore[arg-type]
            uow.commit()
        print(f"seed {prefix}: {n} records in {time.perf_counter() - t0:.1f}s", flush=True)
        store.close()


def phase_service(url: str) -> dict[str, float]:
    from studentstatus.domain.jurisdiction import Operator
    from studentstatus.services.rollover import apply_rollover
    from studentstatus.services.runtime import FixedClock, Runtime

    store = _store(url, "svc_")
    rt = Runtime(store, FixedClock(datetime(2026, 9, 1, 9, tzinfo=UTC)), random.Random(1))
    t0 = time.perf_counter()
    report = apply_rollover(rt, Operator.parse("ministry"), 2026, chunk=5000)
    dt = time.perf_counter() - t0
    store.close()
    return {"seconds": dt, "changed": report.totals["changed"]}


def phase_baseline(url: str, done_every: int = 0) -> dict[str, float]:
    import sqlalchemy as sa

    store = _store(url, "raw_")
    r, c = store.tables.records, store.tables.change_log
    now = datetime(2026, 9, 1, 9, tzinfo=UTC)
    where = [r.c.state == "ACTIVE"]
    if done_every:  # the records already promoted into 2026 are left alone
        where.append(sa.or_(r.c.last_promoted_year.is_(None), r.c.last_promoted_year < 2026))
    t0 = time.perf_counter()
    with store.engine.begin() as conn:
        conn.execute(
            sa.insert(c).from_select(
                [
                    c.c.record_id,
                    c.c.seq,
                    c.c.kind,
                    c.c.from_state,
                    c.c.to_state,
                    c.c.effective_date,
                    c.c.recorded_at,
                    c.c.operator,
                    c.c.reason,
                    c.c.evidence,
                    c.c.before,
                    c.c.after,
                ],
                sa.select(
                    r.c.id,
                    r.c.version + 1,
                    sa.case((r.c.grade == "SENIOR", "GRADUATE"), else_="PROMOTE"),
                    r.c.state,
                    sa.case((r.c.grade == "SENIOR", "GRADUATED"), else_="ACTIVE"),
                    sa.literal(date(2026, 9, 1)),
                    sa.literal(now, type_=c.c.recorded_at.type),
                    sa.literal("ministry"),
                    sa.literal("rollover 2026"),
                    sa.literal([], type_=sa.JSON),
                    sa.literal({"grade": None}, type_=sa.JSON),
                    sa.literal({"grade": None}, type_=sa.JSON),
                ).where(*where),
            )
        )
        conn.execute(
            sa.update(r)
            .where(*where)
            .values(
                state=sa.case((r.c.grade == "SENIOR", "GRADUATED"), else_=r.c.state),
                grade=sa.case(
                    (r.c.grade == "NURSERY", "JUNIOR"),
                    (r.c.grade == "JUNIOR", "MIDDLE"),
                    (r.c.grade == "MIDDLE", "SENIOR"),
                    else_=r.c.grade,
                ),
                last_promoted_year=sa.case(
                    (r.c.grade == "SENIOR", r.c.last_promoted_year), else_=2026
                ),
                version=r.c.version + 1,
            )
        )
    dt = time.perf_counter() - t0
    store.close()
    return {"seconds": dt}


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--db", default="sqlite", help="'sqlite' (temp file) or a SQLAlchemy URL")
    ap.add_argument(
        "--done-every",
        type=int,
        default=0,
        help="every k-th record is already promoted into 2026 (machine path; baseline skips them)",
    )
    ap.add_argument("--phase", choices=["service", "baseline"], help=argparse.SUPPRESS)
    ap.add_argument("--url", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.phase:
        if args.phase == "service":
            out = phase_service(args.url)
        else:
            out = phase_baseline(args.url, args.done_every)
        out["peak_rss_mb"] = _peak_mb()
        print(json.dumps(out))
        return
    tmp = tempfile.mkdtemp(prefix="bench-rollover-") if args.db == "sqlite" else ""
    url = f"sqlite:///{Path(tmp) / 'bench.db'}" if tmp else args.db
    seed(url, args.n, args.done_every)
    results = {}
    extra = ["--done-every", str(args.done_every)]
    for phase in ("service", "baseline"):
        proc = subprocess.run(
            [*(sys.executable, __file__, "--phase", phase, "--url", url), *extra],
            capture_output=True,
            text=True,
            check=True,
        )
        results[phase] = json.loads(proc.stdout.strip().splitlines()[-1])
        r = results[phase]
        print(
            f"{phase:9s}: {r['seconds']:.2f}s  {args.n / r['seconds']:,.0f} records/s"
            f"  peak RSS {r['peak_rss_mb']:.0f} MB",
            flush=True,
        )
    ratio = results["service"]["seconds"] / results["baseline"]["seconds"]
    print(
        f"ratio service/baseline: {ratio:.2f}x (target <= 2x); db={url.split(':')[0]} n={args.n}"
        f" done_every={args.done_every}"
    )
    if tmp:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
