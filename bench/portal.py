"""Benchmark: a portal's online path under concurrent operators (not a test).

A store is preloaded with N records (a generated province roster imported with
``import_files``, then made ACTIVE in one SQL statement: set-up, not measured).
Then W worker processes start together, each acting as its own county and one
kindergarten in it (W counties), and run for ``--seconds`` a mix of one-record
operations through the public services:

====================  =====  ==================================================
operation             share  call
====================  =====  ==================================================
register              30 %   ``intake.register_child`` (2 % re-use a stored ID)
show                  30 %   ``records.find_record`` by a temporary number
search                15 %   ``records.search_records`` (name, or kindergarten)
request               10 %   ``changes.request_change`` SUSPEND of an ACTIVE child
approve               10 %   ``changes.approve_step`` of one of its requests
problems               5 %   the first 50 of ``problems.list_problems`` (county)
====================  =====  ==================================================

It prints p50/p95/p99 (ms) per operation, operations/s, conflicts (every
:class:`~studentstatus.errors.ConflictError`), retries (a registration run
again after a collision), deadlocks (SQLSTATE 40P01 / MySQL 1213), and checks
afterwards: unflagged duplicates (two live records of one document number without
their DUPLICATE_ID problem; races between processes are the race test's job:
each worker here re-registers children of its own county) and lost updates (an
approval that said it applied a suspension whose record is not SUSPENDED).  The
baseline printed beside it is the same process's raw driver round trip
(``SELECT 1``) and a raw primary-key ``SELECT`` of one record, so that a slow
machine shows as such.

    .venv/bin/python bench/portal.py --store postgres --n 100000 --workers 1 4 8
    .venv/bin/python bench/portal.py --store postgres --n 1000000 --workers 4
    .venv/bin/python bench/portal.py --store sqlite --n 100000 --workers 1 4

PostgreSQL: ``--pg-url`` (default ``$STUDENTSTATUS_TEST_POSTGRES_URL`` or
postgresql+psycopg://postgres@127.0.0.1:5432/test); tables get a unique prefix
and are dropped afterwards (``--keep`` keeps them).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from registration import generate, seed_kindergartens

NOW = datetime(2025, 10, 9, 2, tzinfo=UTC)  # a school day after the roster's entry date
SUSPEND_UNTIL = date(2026, 3, 1)
MIX = (
    ("register", 30),
    ("show", 30),
    ("search", 15),
    ("request", 10),
    ("approve", 10),
    ("problems", 5),
)


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _store(kind: str, url: str, prefix: str, create: bool = False):  # type: ignore[no-untyped-def]
    from studentstatus.adapters.sql import SqlStore

    return SqlStore(url, prefix=prefix if kind != "sqlite" else "", create=create)


def preload(kind: str, url: str, prefix: str, n: int, workdir: Path) -> dict[str, Any]:
    """Generate and import N rows, then make every PENDING record ACTIVE (set-up)."""
    import sqlalchemy as sa

    from studentstatus.domain.jurisdiction import Operator
    from studentstatus.services.intake import import_files, stop_workers
    from studentstatus.services.runtime import FixedClock, Runtime

    plan = generate(workdir, n, seed=20251009)
    codes = list(plan["counties"])  # type: ignore[call-overload]
    kgs = json.loads((workdir / "kindergartens.json").read_text())
    store = _store(kind, url, prefix, create=True)
    seed_kindergartens(store, kgs)
    rt = Runtime(store, FixedClock(datetime(2025, 9, 2, 1, tzinfo=UTC)), random.Random(1))
    t = time.perf_counter()
    import_files(
        rt,
        [(Operator.parse(f"county:{c}"), workdir / f"roster-{c}.csv") for c in codes],
        chunk_size=5000,
        collect_records=False,
        workers=2 if kind != "sqlite" else 0,
    )
    stop_workers()
    records = store.tables.records
    with store.engine.begin() as conn:
        conn.execute(sa.update(records).where(records.c.state == "PENDING").values(state="ACTIVE"))
        if store.dialect_name == "postgresql":
            for table in store.tables.by_port.values():
                conn.exec_driver_sql(f"ANALYZE {table.fullname}")
    loaded = time.perf_counter() - t
    # each worker's county: a kindergarten there and some of its records' numbers
    picks: dict[str, dict[str, Any]] = {}
    with store.engine.connect() as conn:
        for county in codes:
            kg = next(code for code, c in kgs if c == county)
            q = (
                sa.select(records.c.temp_number)
                .where(records.c.kindergarten_code == kg, records.c.state == "ACTIVE")
                .limit(400)
            )
            numbers = [r[0] for r in conn.execute(q)]
            children = store.tables.children
            names = [
                r[0]
                for r in conn.execute(
                    sa.select(children.c.name)
                    .join(records, records.c.child_id == children.c.id)
                    .where(records.c.kindergarten_code == kg)
                    .limit(50)
                )
            ]
            ids = [
                r[0]
                for r in conn.execute(
                    sa.select(children.c.document_number)
                    .join(records, records.c.child_id == children.c.id)
                    .where(records.c.region_code == county, children.c.document_type == "resident")
                    .limit(200)
                )
            ]
            picks[county] = {"kg": kg, "numbers": numbers, "names": names, "ids": ids}
    store.close()
    return {"counties": codes, "picks": picks, "preload_s": round(loaded, 1)}


def _cn(n: int) -> str:
    """``n`` in Chinese digits: a name holds no ASCII digits (domain.names)."""
    return "".join("〇一二三四五六七八九"[int(d)] for d in str(n))


def _child_row(
    rng: random.Random, kg: str, county: str, serial: int, ids: list[str]
) -> dict[str, str]:
    from studentstatus.ids.resident import check_digit

    born = date(2021, 1, 1).toordinal() + rng.randrange(240)
    b = date.fromordinal(born)
    sex = "M" if rng.random() < 0.5 else "F"
    if ids and rng.random() < 0.02:  # the same child registered again: a duplicate
        number = rng.choice(ids)
        b = date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
        sex = "M" if int(number[16]) % 2 else "F"
    else:
        order = (serial * 2 + (1 if sex == "M" else 0)) % 1000
        body = f"{county}{b:%Y%m%d}{order:03d}"
        number = body + check_digit(body)
    grade = "MIDDLE" if b < date(2021, 9, 1) else "JUNIOR"
    return {
        "kindergarten_code": kg, "name": "门户" + _cn(serial % 997), "sex": sex,
        "birth_date": b.isoformat(), "id_type": "resident", "id_number": number,
        "guardian_name": "家长", "guardian_relation": "mother",
        "guardian_phone": f"139{rng.randrange(10**8):08d}", "entry_date": "2025-09-01",
        "grade": grade,
    }  # fmt: skip


def worker(args: tuple[Any, ...]) -> dict[str, Any]:
    """One operator process: the mix for ``seconds`` after the start barrier."""
    kind, url, prefix, county, pick, seconds, seed, start = args
    from studentstatus.domain.enums import ChangeKind
    from studentstatus.domain.jurisdiction import Operator
    from studentstatus.errors import ConflictError, NotFoundError, RuleViolations
    from studentstatus.services import changes, intake, problems, records
    from studentstatus.services.runtime import FixedClock, Runtime

    search = getattr(records, "search_records", None)
    rng = random.Random(seed)
    store = _store(kind, url, prefix)
    rt = Runtime(store, FixedClock(NOW), random.Random(seed * 31 + 7))
    kg_op = Operator.parse(f"kindergarten:{pick['kg']}")
    county_op = Operator.parse(f"county:{county}")
    numbers: list[str] = list(pick["numbers"])
    rng.shuffle(numbers)
    lat: dict[str, list[float]] = defaultdict(list)
    out: dict[str, Any] = {"conflicts": 0, "retries": 0, "deadlocks": 0, "refused": 0,
                           "refusals": {},
                           "errors": [], "applied": []}  # fmt: skip
    open_requests: list[str] = []
    serial = seed * 100_000
    ops = [name for name, share in MIX for _ in range(share)]
    # warm up: one of each read, so that imports and pools are made before the clock runs
    records.find_record(rt, kg_op, numbers[0])
    start.wait()
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        op = rng.choice(ops)
        t = time.perf_counter()
        try:
            if op == "register":
                serial += 1
                values = _child_row(rng, pick["kg"], county, serial, pick["ids"])
                for attempt in range(3):
                    try:
                        intake.register_child(rt, kg_op, values, attempts=1)
                        break
                    except ConflictError as exc:
                        out["conflicts"] += 1
                        out["deadlocks"] += _deadlock(exc)
                        if attempt == 2:
                            raise
                        out["retries"] += 1
            elif op == "show":
                records.find_record(rt, kg_op, rng.choice(pick["numbers"]))
            elif op == "search":
                if search is None:
                    continue
                if rng.random() < 0.5 and pick["names"]:
                    search(rt, kg_op, name=rng.choice(pick["names"]), limit=20)
                else:
                    search(rt, county_op, kindergarten=pick["kg"], limit=50)
            elif op == "request":
                if not numbers:
                    continue
                number = numbers.pop()
                res = changes.request_change(
                    rt, kg_op, number, ChangeKind.SUSPEND, until=SUSPEND_UNTIL, reason="病假"
                )
                if res.request is not None:
                    open_requests.append(res.request.id)
            elif op == "approve":
                if not open_requests:
                    continue
                rid = open_requests.pop(0)
                res = changes.approve_step(rt, county_op, rid)
                if res.applied and res.record is not None:
                    out["applied"].append(res.record.id)
            elif op == "problems":
                it = problems.list_problems(rt, county_op)
                for _i, _p in zip(range(50), it):
                    pass
                it.close()
        except ConflictError as exc:
            out["conflicts"] += 1
            out["deadlocks"] += _deadlock(exc)
            continue
        except (RuleViolations, NotFoundError) as exc:
            out["refused"] += 1
            codes = [v.code for v in exc.violations] if isinstance(exc, RuleViolations) else []
            key = f"{op}:{','.join(sorted(set(codes))) or exc.code}"
            out["refusals"][key] = out["refusals"].get(key, 0) + 1
            continue
        except Exception as exc:  # a bench: report, don't stop
            out["errors"].append(f"{op}: {type(exc).__name__}: {exc}"[:300])
            continue
        lat[op].append((time.perf_counter() - t) * 1000)
    store.close()
    out["latencies"] = dict(lat)
    return out


def baseline_ms(kind: str, url: str, prefix: str, number: str) -> dict[str, float]:
    """The raw driver in this process: ``SELECT 1`` and one record by primary key."""
    import sqlalchemy as sa

    store = _store(kind, url, prefix)
    t = store.tables.record_numbers
    out: dict[str, list[float]] = {"select_1": [], "pk_lookup": []}
    with store.engine.connect() as conn:
        raw = conn.connection.dbapi_connection
        assert raw is not None
        cur = raw.cursor()
        mark = "%s" if kind != "sqlite" else "?"
        sql = f"SELECT record_id FROM {t.fullname} WHERE number = {mark}"
        for _ in range(300):
            s = time.perf_counter()
            cur.execute("SELECT 1")
            cur.fetchall()
            out["select_1"].append((time.perf_counter() - s) * 1000)
            s = time.perf_counter()
            cur.execute(sql, (number,))
            cur.fetchall()
            out["pk_lookup"].append((time.perf_counter() - s) * 1000)
        cur.close()
        del sa
    store.close()
    return {k: round(statistics.median(v), 3) for k, v in out.items()}


def check(kind: str, url: str, prefix: str, applied: list[str]) -> dict[str, int]:
    """Unflagged duplicates and lost updates, read straight from the tables."""
    import sqlalchemy as sa

    store = _store(kind, url, prefix)
    t = store.tables
    live = ("PENDING", "ACTIVE", "SUSPENDED")
    with store.engine.connect() as conn:
        dup_numbers = (
            sa.select(t.children.c.document_number)
            .join(t.records, t.records.c.child_id == t.children.c.id)
            .where(t.records.c.state.in_(live), t.children.c.document_type != "none")
            .group_by(t.children.c.document_number)
            .having(sa.func.count() > 1)
            .subquery()
        )
        flagged = (
            sa.select(t.problems.c.record_id)
            .where(t.problems.c.kind == "DUPLICATE_ID", t.problems.c.status != "RESOLVED")
            .subquery()
        )
        unflagged = conn.execute(
            sa.select(sa.func.count())
            .select_from(t.records)
            .join(t.children, t.records.c.child_id == t.children.c.id)
            .where(
                t.records.c.state.in_(live),
                t.children.c.document_number.in_(sa.select(dup_numbers.c.document_number)),
                t.records.c.id.not_in(sa.select(flagged.c.record_id)),
            )
        ).scalar_one()
        lost = 0
        for i in range(0, len(applied), 500):
            chunk = applied[i : i + 500]
            suspended = conn.execute(
                sa.select(sa.func.count())
                .select_from(t.records)
                .where(t.records.c.id.in_(chunk), t.records.c.state == "SUSPENDED")
            ).scalar_one()
            lost += len(chunk) - suspended
    store.close()
    return {"unflagged_duplicates": int(unflagged), "lost_updates": lost}


def _deadlock(exc: BaseException) -> int:
    from studentstatus.errors import TryAgain

    return int(isinstance(exc, TryAgain) and exc.detail.endswith(("40P01", "1213")))


def run(
    kind: str, url: str, prefix: str, plan: dict[str, Any], w: int, seconds: float
) -> dict[str, Any]:
    ctx = mp.get_context("spawn")
    start = ctx.Manager().Event()
    codes = plan["counties"][:w] if w <= len(plan["counties"]) else plan["counties"]
    args = [
        (kind, url, prefix, codes[i % len(codes)], plan["picks"][codes[i % len(codes)]],
         seconds, 1000 * w + i, start)
        for i in range(w)
    ]  # fmt: skip
    with ctx.Pool(w) as pool:
        pending = pool.map_async(worker, args, chunksize=1)
        time.sleep(3.0 + 0.5 * w)  # the workers import the library and warm up
        start.set()
        results = pending.get()
    lat: dict[str, list[float]] = defaultdict(list)
    for r in results:
        for op, values in r["latencies"].items():
            lat[op].extend(values)
    total = sum(len(v) for v in lat.values())
    applied = [a for r in results for a in r["applied"]]
    out: dict[str, Any] = {
        "store": kind, "workers": w, "counties": len(set(codes[:w])), "seconds": seconds,
        "ops": total, "ops_per_s": round(total / seconds, 1),
        "per_op_ms": {
            op: {"n": len(v), "p50": round(_pct(v, 0.50), 2), "p95": round(_pct(v, 0.95), 2),
                 "p99": round(_pct(v, 0.99), 2)}
            for op, v in sorted(lat.items())
        },
        "conflicts": sum(r["conflicts"] for r in results),
        "retries": sum(r["retries"] for r in results),
        "deadlocks": sum(r["deadlocks"] for r in results),
        "refused": sum(r["refused"] for r in results),
        "refusals": {k: sum(r["refusals"].get(k, 0) for r in results)
                     for k in sorted({k for r in results for k in r["refusals"]})},
        "errors": [e for r in results for e in r["errors"]][:10],
        "suspensions_applied": len(applied),
    }  # fmt: skip
    out.update(check(kind, url, prefix, applied))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--store", choices=("postgres", "sqlite"), default="postgres")
    ap.add_argument("--n", type=int, default=100_000, help="records preloaded")
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 4, 8])
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument(
        "--pg-url",
        default=os.environ.get(
            "STUDENTSTATUS_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
        ),
    )
    ap.add_argument("--keep", action="store_true", help="keep the tables")
    a = ap.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="portal-bench-"))
    kind = "sqlite" if a.store == "sqlite" else "postgresql"
    prefix = f"pb{uuid.uuid4().hex[:8]}_"
    url = f"sqlite:///{workdir / 'portal.db'}" if kind == "sqlite" else a.pg_url
    plan = preload(kind, url, prefix, a.n, workdir)
    sample = next(iter(plan["picks"].values()))["numbers"][0]
    print(
        json.dumps(
            {
                "store": kind,
                "records": a.n,
                "preload_s": plan["preload_s"],
                "baseline_ms": baseline_ms(kind, url, prefix, sample),
            }
        ),
        flush=True,
    )
    try:
        for w in a.workers:
            print(json.dumps(run(kind, url, prefix, plan, w, a.seconds), ensure_ascii=False),
                  flush=True)  # fmt: skip
    finally:
        if not a.keep:
            store = _store(kind, url, prefix)
            store.drop_schema()
            store.close()


if __name__ == "__main__":
    main()
