"""Benchmark: two provinces and the national hub on PostgreSQL logical replication (not a test).

Three throwaway clusters (``pg_createcluster``, ports 55500-55502, root only) hold
province 11, province 44 and the hub, with PostgreSQL's default ``synchronous_commit = on``
(``fsync`` off; slow markers of step 3 are printed with their time, and autovacuum is
logged, to look them up in the servers' logs).  Each province is seeded with ``--records``
children with ACTIVE records (``studentstatus.testing.seeding``; ``--shared`` of 44's
hold 11's ID numbers: children registered in both).  Measured, each beside a baseline
run in the same process:

1. **feed triggers on a bulk write** — seeding 44 with the feed triggers on (published
   first) vs 11 without (published after, by the backfill): rows/s of both;
2. **hub catch-up from empty** — ``federation subscribe`` of both provinces until the
   hub holds every feed row; baseline: the same rows copied by hand from the provinces
   to the hub with ``COPY … TO STDOUT`` / ``COPY … FROM STDIN`` (psycopg), one table
   after the other;
3. **replication lag under a portal mix** — for ``--seconds``, a writer on 11 runs
   one-record units (a new child with its record; a record's state change; a message
   to 44) while every 0.25 s a marker message is written to 44's mail; the time
   until each marker is in 44's ``national.mail`` (province → hub → province) gives
   p50/p95/max; baseline: the same marker's round trip to the province's own
   database (write + read, no replication);
4. **national dedupe over 2 × N** — ``Hub.dedupe`` (grouping every live identity
   hash and writing the notices); baseline: a plain ``INTERSECT`` of the two
   provinces' live hashes on the hub.

    sudo .venv/bin/python bench/federation.py --records 1000000
    sudo .venv/bin/python bench/federation.py --records 100000 --seconds 20

The clusters are dropped at the end (``--keep`` keeps them).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
from datetime import date

import sqlalchemy as sa

from studentstatus.adapters.sql import SqlStore
from studentstatus.adapters.sql.federation import Hub, _feed_ddl, feed_schema, publish
from studentstatus.testing import pg_clusters
from studentstatus.testing.seeding import seed_province

KEY = bytes(range(32))
PORTS = {"hub": 55500, "11": 55501, "44": 55502}
FEED = ("records", "events", "problems", "outbox")
LIVE = "('PENDING', 'ACTIVE', 'SUSPENDED', 'ABROAD')"


def log(text: str) -> None:
    print(text, flush=True)


def count(engine: sa.Engine, sql: str) -> int:
    with engine.connect() as conn:
        return int(conn.exec_driver_sql(sql).scalar_one())


def seed(store: SqlStore, province: str, n: int, shared: int) -> float:
    start = time.perf_counter()
    if province == "44" and shared:
        seed_province(store, "44", shared, id_region="110105", audited=False)
        seed_province(store, "44", n - shared, first=shared, audited=False)
    else:
        seed_province(store, province, n, audited=False)
    return time.perf_counter() - start


def copy_baseline(src: sa.Engine, dst: sa.Engine, province: str) -> float:
    """The feed tables copied by hand into a scratch schema on the hub."""
    s = feed_schema(province)
    start = time.perf_counter()
    with dst.begin() as dconn:
        dconn.exec_driver_sql("DROP SCHEMA IF EXISTS baseline CASCADE")
        for ddl in _feed_ddl(province):  # the hub's own feed tables, in a scratch schema
            dconn.exec_driver_sql(ddl.replace(s, "baseline"))
    with src.connect() as sconn, dst.begin() as dconn:
        scur = sconn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        dcur = dconn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        for t in FEED:
            with (
                scur.copy(f"COPY {s}.{t} TO STDOUT") as out,
                dcur.copy(f"COPY baseline.{t} FROM STDIN") as into,
            ):
                for chunk in out:
                    into.write(chunk)
    elapsed = time.perf_counter() - start
    with dst.begin() as dconn:
        dconn.exec_driver_sql("DROP SCHEMA baseline CASCADE")
    return elapsed


def portal_mix(store: SqlStore, stop: threading.Event, done: list[int]) -> None:
    """One-record units on province 11 until ``stop``: new children, state changes,
    messages to 44."""
    i = 0
    with store.engine.connect() as conn:
        first = int(conn.exec_driver_sql("SELECT count(*) FROM records").scalar_one())
    while not stop.is_set():
        kind = i % 3
        if kind == 0:
            seed_province(store, "11", 1, first=first + i // 3 + 1, audited=False)
        else:
            with store.engine.begin() as conn:
                if kind == 1:
                    conn.exec_driver_sql(
                        "UPDATE records SET state = CASE state WHEN 'ACTIVE' THEN 'SUSPENDED' "
                        "ELSE 'ACTIVE' END, version = version + 1 "
                        f"WHERE id = 's11-{(i * 7919) % first:09d}'"
                    )
                else:
                    conn.exec_driver_sql(
                        f"INSERT INTO {feed_schema('11')}.outbox VALUES "
                        f"('load-{i}', '11', '44', 'duplicate_notice', '{{}}', now())"
                    )
        i += 1
        done[0] = i


def marker_lag(
    p11: sa.Engine, p44: sa.Engine, seconds: float, every: float, slow: list[str] | None = None
) -> list[float]:
    """Markers 11 → 44 through the hub; the seconds until each is in 44's mail (``slow``
    gets the UTC time and lag of each marker slower than a second)."""
    lags: list[float] = []
    deadline = time.monotonic() + seconds
    k = 0
    with p11.connect() as wconn, p44.connect() as rconn:
        while time.monotonic() < deadline:
            k += 1
            mid = f"marker-{k}-{time.time_ns()}"
            sent = time.perf_counter()
            wconn.exec_driver_sql(
                f"INSERT INTO {feed_schema('11')}.outbox VALUES "
                f"('{mid}', '11', '44', 'duplicate_notice', '{{}}', now())"
            )
            wconn.commit()
            while True:
                got = rconn.exec_driver_sql(
                    f"SELECT 1 FROM national.mail WHERE id = '{mid}'"
                ).first()
                rconn.rollback()
                if got is not None:
                    lags.append(time.perf_counter() - sent)
                    if slow is not None and lags[-1] > 1.0:
                        at = time.strftime("%H:%M:%S", time.gmtime(time.time() - lags[-1]))
                        slow.append(f"{at} UTC {lags[-1]:.1f} s")
                    break
                time.sleep(0.002)
            time.sleep(max(0.0, every - (time.perf_counter() - sent)))
    return lags


def round_trip(engine: sa.Engine, n: int = 50) -> float:
    """Baseline: write a row and read it back in the province's own database."""
    times = []
    with engine.connect() as conn:
        conn.exec_driver_sql("CREATE TEMP TABLE rt (id text)")
        for k in range(n):
            start = time.perf_counter()
            conn.exec_driver_sql(f"INSERT INTO rt VALUES ('{k}')")
            conn.commit()
            conn.exec_driver_sql(f"SELECT 1 FROM rt WHERE id = '{k}'").first()
            conn.rollback()
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--records", type=int, default=1_000_000, help="records per province")
    ap.add_argument("--shared", type=float, default=0.01, help="share of 44 also in 11")
    ap.add_argument("--seconds", type=float, default=30.0, help="length of the load phase")
    ap.add_argument("--keep", action="store_true", help="keep the clusters")
    ap.add_argument(
        "--wal-writer-delay",
        help="the servers' wal_writer_delay (default PostgreSQL's 200ms; the hub's apply "
        "workers commit asynchronously, so it bounds each hop's wait)",
    )
    args = ap.parse_args()
    why = pg_clusters.unavailable()
    if why is not None:
        log(f"cannot run: {why}")
        return 2
    n, shared = args.records, int(args.records * args.shared)
    log(f"federation benchmark: 2 provinces x {n:,} records ({shared:,} shared), {date.today()}")
    # PostgreSQL's own default commit (the throwaway clusters' is asynchronous: a province's
    # commit would wait up to wal_writer_delay before its walsender may send it);
    # autovacuum logged, to look up the slow markers in the servers' logs.
    settings = {"synchronous_commit": "on", "log_autovacuum_min_duration": "0"}
    if args.wal_writer_delay:
        settings["wal_writer_delay"] = args.wal_writer_delay
    clusters = {
        k: pg_clusters.create(f"{pg_clusters.PREFIX}_bench_{k}", p, settings=settings)
        for k, p in PORTS.items()
    }
    try:
        urls = {k: c.url() for k, c in clusters.items()}
        stores = {p: SqlStore(urls[p], create=True) for p in ("11", "44")}
        hub = Hub(urls["hub"])

        # 1. Feed triggers on a bulk write.
        publish(stores["44"], "44", KEY)
        t44 = seed(stores["44"], "44", n, shared)
        t11 = seed(stores["11"], "11", n, 0)
        start = time.perf_counter()
        publish(stores["11"], "11", KEY)
        backfill = time.perf_counter() - start
        log(
            f"1. seeding with feed triggers {n / t44:,.0f} rows/s; without (baseline) "
            f"{n / t11:,.0f} rows/s; ratio {t11 / t44:.2f}; backfill of {n:,} after the fact "
            f"{backfill:.1f} s"
        )

        # 2. Hub catch-up from empty.
        base = copy_baseline(stores["11"].engine, hub.engine, "11") + copy_baseline(
            stores["44"].engine, hub.engine, "44"
        )
        want = {
            p: sum(
                count(stores[p].engine, f"SELECT count(*) FROM {feed_schema(p)}.{t}") for t in FEED
            )
            for p in ("11", "44")
        }
        start = time.perf_counter()
        hub.attach("11", urls["11"])
        hub.attach("44", urls["44"])
        while True:
            have = {
                p: sum(
                    count(hub.engine, f"SELECT count(*) FROM {feed_schema(p)}.{t}") for t in FEED
                )
                for p in ("11", "44")
            }
            if have == want:
                break
            time.sleep(0.5)
        catch_up = time.perf_counter() - start
        rows = sum(want.values())
        log(
            f"2. hub catch-up from empty: {rows:,} feed rows in {catch_up:.1f} s "
            f"({rows / catch_up:,.0f} rows/s); baseline COPY out/in {base:.1f} s; "
            f"ratio {catch_up / base:.2f}"
        )

        # 3. Lag under a steady portal mix.
        stop, done = threading.Event(), [0]
        writer = threading.Thread(target=portal_mix, args=(stores["11"], stop, done))
        writer.start()
        slow: list[str] = []
        lags = marker_lag(stores["11"].engine, stores["44"].engine, args.seconds, 0.25, slow)
        stop.set()
        writer.join()
        rt = round_trip(stores["11"].engine)
        lags.sort()
        p95 = lags[int(len(lags) * 0.95) - 1] if len(lags) >= 20 else lags[-1]
        log(
            f"3. lag 11 -> hub -> 44 under a portal mix of {done[0] / args.seconds:,.0f} units/s "
            f"for {args.seconds:.0f} s: {len(lags)} markers, p50 "
            f"{statistics.median(lags) * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms, max "
            f"{lags[-1] * 1000:.0f} ms; baseline local write+read {rt * 1000:.1f} ms"
        )
        if slow:
            log(f"   markers over 1 s (sent at): {', '.join(slow)}")

        # 4. National dedupe.
        with hub.engine.connect() as conn:
            start = time.perf_counter()
            inter = conn.exec_driver_sql(
                f"SELECT count(*) FROM (SELECT ident FROM {feed_schema('11')}.records WHERE "
                f"state IN {LIVE} INTERSECT SELECT ident FROM {feed_schema('44')}.records WHERE "
                f"state IN {LIVE}) x"
            ).scalar_one()
            base = time.perf_counter() - start
        start = time.perf_counter()
        findings, notices = hub.dedupe()
        took = time.perf_counter() - start
        log(
            f"4. national dedupe over 2 x {n:,}: {findings:,} findings, {notices:,} notices in "
            f"{took:.1f} s; baseline INTERSECT {base:.1f} s ({inter:,}); ratio {took / base:.2f}"
        )
        for s in stores.values():
            s.close()
        hub.close()
    finally:
        if not args.keep:
            for c in clusters.values():
                c.drop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
