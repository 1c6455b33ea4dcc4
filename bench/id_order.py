"""Benchmark: PostgreSQL server time of COPYing rows with random vs increasing ids (not a test).

Writes N children, N records and N change-log rows (the adapter's own schema, created
under a fresh prefix and dropped afterwards) with raw psycopg ``COPY`` in 25,000-row
batches, once with random 128-bit ids (what ``Runtime.new_id`` drew before) and once
with increasing ids (what it draws now: a random start, then steps of 1 + 64 random
bits), and prints the server backend's CPU seconds and the wall time of each, and their
ratio.  The other indexed columns (numbers, documents, names) are random in both.

    .venv/bin/python bench/id_order.py --n 1000000
"""

from __future__ import annotations

import argparse
import os
import random
import time
import uuid
from pathlib import Path

DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def _proc_cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run(url: str, n: int, ordered: bool) -> dict[str, float]:
    """Write the rows once; the server CPU seconds and wall seconds it took."""
    import psycopg

    from studentstatus.adapters.sql import SqlStore

    store = SqlStore(url, prefix=f"ido{uuid.uuid4().hex[:6]}_", create=True)
    t = store.tables
    rng = random.Random(1)
    last = rng.getrandbits(127)

    def new_id(prefix: str) -> str:
        nonlocal last
        if not ordered:
            return f"{prefix}{rng.getrandbits(128):032x}"
        last += 1 + rng.getrandbits(64)
        return f"{prefix}{last:032x}"

    def copy_sql(table: object) -> str:
        cols = ", ".join(f'"{c.name}"' for c in table.columns)  # type: ignore[attr-defined]
        return f'COPY "{table.name}" ({cols}) FROM STDIN'  # type: ignore[attr-defined]

    try:
        with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as con:
            pid = con.info.backend_pid
            s0, t0 = _proc_cpu_s(pid), time.perf_counter()
            with con.cursor() as cur:
                for lo in range(0, n, 25_000):
                    children, records, changes = [], [], []
                    for i in range(lo, min(n, lo + 25_000)):
                        cid, rid = new_id("c"), new_id("r")
                        doc = f"4401{rng.getrandbits(40):014d}"[:18]
                        children.append((cid, f"name{i % 977}", "M", "2021-03-04", "resident",
                                         doc, "CHN", "01", "440103", False, "440103",
                                         '[{"name": "x"}]', False, False, False, 0))  # fmt: skip
                        records.append((rid, cid, f"1144{i % 5000:06d}", "440103", "PENDING",
                                        "JUNIOR", "2025-09-01",
                                        f"L440103{rng.getrandbits(40):012d}"[:19], None, "[]",
                                        None, False, None, None, 0, None, "[]", False, None,
                                        None, 0))  # fmt: skip
                        changes.append((rid, 1, "REGISTER", None, "PENDING", "2025-09-01",
                                        "2025-09-02 01:00:00", "county:440103", "", "[]",
                                        "{}", '{"state": "PENDING"}'))  # fmt: skip
                    for table, rows in ((t.children, children), (t.records, records),
                                        (t.change_log, changes)):  # fmt: skip
                        with cur.copy(copy_sql(table)) as cp:
                            for row in rows:
                                cp.write_row(row)
            con.commit()
            return {"server_cpu_s": _proc_cpu_s(pid) - s0, "seconds": time.perf_counter() - t0}
    finally:
        store.drop_schema()
        store.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--url", default=os.environ.get("STUDENTSTATUS_TEST_POSTGRES_URL",
                                                    DEFAULT_URL))  # fmt: skip
    args = ap.parse_args()
    rand = run(args.url, args.n, ordered=False)
    inc = run(args.url, args.n, ordered=True)
    for name, r in (("random ids", rand), ("increasing ids", inc)):
        print(f"  {name:15s} server {r['server_cpu_s']:6.1f} CPU-s   wall {r['seconds']:6.1f} s")
    print(f"  increasing ÷ random: server CPU {inc['server_cpu_s'] / rand['server_cpu_s']:.2f}×,"
          f" wall {inc['seconds'] / rand['seconds']:.2f}×")  # fmt: skip


if __name__ == "__main__":
    main()
