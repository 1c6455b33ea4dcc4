"""Province-partitioned against plain schema on PostgreSQL: bulk seed, county queries, sizes.

Seeds N status records spread over 8 provinces (10 counties each, 20
kindergartens per county, 90 % ACTIVE) into two table sets on the same server —
``SqlStore(create=True)`` (plain) and ``SqlStore(create=True,
partition_by_province=True)`` — through the adapter's bulk path
(``records.add_many``: COPY), then times, through the adapter, the queries a
county or province office runs:

* ``county_states`` — count by state for one county (one ``count`` per state);
* ``kindergarten_roll`` — iterate one kindergarten's records (county prefix + code);
* ``province_states`` — count by state for one province (the report's base);
* ``get_by_id`` — 1,000 ``records.get`` by id (no province known: every partition probed).

It prints the median of ``--repeat`` runs per query, the partitions each plan
reads (EXPLAIN), and table/index sizes (``pg_table_size``/``pg_indexes_size``).

    python bench/partitioned.py --n 1000000 [--pg postgresql+psycopg://postgres@127.0.0.1:5432/test]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import date
from typing import Any

import sqlalchemy as sa

from studentstatus import regions
from studentstatus.adapters.sql import SqlStore
from studentstatus.adapters.sql.partitioning import partitions_in_plan
from studentstatus.domain.enums import Grade, State
from studentstatus.domain.model import StatusRecord

PROVINCES = ("11", "32", "33", "37", "41", "44", "51", "65")
STATES = [State.ACTIVE] * 18 + [State.SUSPENDED, State.WITHDRAWN]
GRADES = (Grade.NURSERY, Grade.JUNIOR, Grade.MIDDLE, Grade.SENIOR)


def _counties() -> list[str]:
    out: list[str] = []
    for p in PROVINCES:
        out.extend(regions.counties(p)[:10])
    return out


def _records(n: int, counties: list[str]) -> Iterator[StatusRecord]:
    for i in range(n):
        county = counties[i % len(counties)]
        kg = f"{county}{(i // len(counties)) % 20:04d}"
        state = STATES[i % len(STATES)]
        yield StatusRecord(
            f"r{i:09d}",
            f"c{i:09d}",
            kg,
            county,
            state,
            GRADES[i % 4],
            entry_date=date(2023, 9, 1),
        )


def _time(fn: Callable[[], Any], repeat: int) -> float:
    runs = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - t0)
    return statistics.median(runs)


def _sizes(conn: sa.Connection, tables: list[str]) -> dict[str, int]:
    """Heap (incl. TOAST) and index bytes of tables and, for partitioned ones, their partitions."""
    q = sa.text(
        "SELECT COALESCE(sum(pg_table_size(c.oid)), 0), COALESCE(sum(pg_indexes_size(c.oid)), 0) "
        "FROM pg_class c WHERE c.relname = :t OR c.oid IN "
        "(SELECT inhrelid FROM pg_inherits WHERE inhparent = "
        "(SELECT oid FROM pg_class WHERE relname = :t AND relkind IN ('r', 'p')))"
    )
    out: dict[str, int] = {}
    for t in tables:
        heap, idx = conn.execute(q, {"t": t}).one()
        out[f"{t}:table"] = int(heap)
        out[f"{t}:indexes"] = int(idx)
    return out


def run(url: str, n: int, repeat: int, keep: bool) -> dict[str, Any]:
    """Seed both schemas, time the queries, return the figures."""
    counties = _counties()
    county = counties[len(counties) // 2 + 3]  # a county in the 6th province (44 when 10 each)
    kg = f"{county}0007"
    province = county[:2]
    result: dict[str, Any] = {"n": n, "county": county, "province": province, "schemas": {}}
    for label, partitioned in (("plain", False), ("partitioned", True)):
        prefix = f"b{uuid.uuid4().hex[:6]}_"
        store = SqlStore(url, prefix=prefix, create=True, partition_by_province=partitioned)
        figures: dict[str, Any] = {"prefix": prefix}
        try:
            t0 = time.perf_counter()
            with store.unit_of_work() as uow:
                uow.records.add_many(_records(n, counties))
                uow.commit()
            figures["seed_s"] = round(time.perf_counter() - t0, 2)
            with store.engine.begin() as conn:
                conn.exec_driver_sql(f"ANALYZE {prefix}records")
            with store.unit_of_work() as uow:
                rec = uow.records

                def county_states(rec: Any = rec) -> list[int]:
                    return [rec.count(region_prefix=county, states=[s]) for s in State]

                def roll(rec: Any = rec) -> int:
                    return sum(1 for _ in rec.iter(region_prefix=county, kindergarten_code=kg))

                def province_states(rec: Any = rec) -> list[int]:
                    return [rec.count(region_prefix=province, states=[s]) for s in State]

                ids = [f"r{i:09d}" for i in range(0, n, max(1, n // 1000))][:1000]

                def by_id(rec: Any = rec, ids: list[str] = ids) -> None:
                    for i in ids:
                        rec.get(i)

                figures["counts"] = {
                    "county_active": rec.count(region_prefix=county, states=[State.ACTIVE]),
                    "roll": roll(),
                    "province_active": rec.count(region_prefix=province, states=[State.ACTIVE]),
                }
                figures["ms"] = {
                    "county_states": round(_time(county_states, repeat) * 1000, 1),
                    "kindergarten_roll": round(_time(roll, repeat) * 1000, 1),
                    "province_states": round(_time(province_states, repeat) * 1000, 1),
                    "get_by_id_x1000": round(_time(by_id, repeat) * 1000, 1),
                }
            with store.engine.connect() as conn:
                figures["plan_county_reads"] = partitions_in_plan(
                    conn, _county_query(store, county)
                )
                figures["plan_province_reads"] = partitions_in_plan(
                    conn, _county_query(store, province)
                )
                figures["sizes"] = _sizes(conn, [f"{prefix}records"])
                figures["bytes_per_row"] = round(
                    (figures["sizes"][f"{prefix}records:table"]) / max(n, 1), 1
                )
        finally:
            if not keep:
                store.drop_schema()
            store.close()
        result["schemas"][label] = figures
    return result


def _county_query(store: SqlStore, prefix: str) -> sa.Select[Any]:
    """The statement ``records.count(region_prefix=prefix, states=[ACTIVE])`` runs."""
    t = store.tables.records
    with store.unit_of_work() as uow:
        where = uow.records._where(prefix, None, [State.ACTIVE])
    return sa.select(sa.func.count()).select_from(t).where(*where)


def main() -> None:
    """Command line: ``--n``, ``--pg``, ``--repeat``, ``--keep``, ``--json``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--pg", default=os.environ.get("STUDENTSTATUS_TEST_POSTGRES_URL"))
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--keep", action="store_true", help="keep the tables (inspect them)")
    parser.add_argument("--json", action="store_true", help="print JSON only")
    args = parser.parse_args()
    if not args.pg:
        sys.exit("needs PostgreSQL: --pg URL or STUDENTSTATUS_TEST_POSTGRES_URL")
    res = run(args.pg, args.n, args.repeat, args.keep)
    if args.json:
        print(json.dumps(res, indent=2))
        return
    print(f"N = {args.n:,} records; county {res['county']}, province {res['province']}")
    for label, f in res["schemas"].items():
        sizes = ", ".join(f"{k.split(':')[1]} {v / 2**20:.0f} MiB" for k, v in f["sizes"].items())
        print(f"\n{label}: seed {f['seed_s']} s; {sizes}; {f['bytes_per_row']} B/row (heap)")
        for q, ms in f["ms"].items():
            print(f"  {q:<18} {ms:>9.1f} ms")
        print(f"  county plan reads: {', '.join(f['plan_county_reads'])}")
        print(f"  province plan reads {len(f['plan_province_reads'])} relation(s)")
        print(f"  counts: {f['counts']}")


if __name__ == "__main__":
    main()
