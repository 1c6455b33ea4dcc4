"""Benchmark: approve, verify and issue numbers at scale, without the import (not a test).

Seeds a store with N PENDING records straight through the bulk adapter path
(``children.add_many``, ``records.add_many``, ``problems.add_many``: no intake
checks, no change log or audit of the registration) in 20 counties of one
province (44), 200 children a kindergarten, with the registration bench's mix:
2% duplicate ID numbers (a ``DUPLICATE_ID`` problem on both records), 1%
checksum-invalid IDs (an ``INVALID_ID`` problem), 3% children without an ID.
It also writes a population-registry extract CSV of the valid numbers (0.5%
name mismatches, 0.2% missing).  Then, for each store in a fresh child process:

1. approve — ``approve_records(all_pending=True, collect=False)`` per county;
2. verify — ``CsvPopulationRegistry`` loaded from the extract, then
   ``verify_records`` as the province;
3. issue — ``issue_numbers(collect=False)`` as the province;

printing, per stage, wall and CPU seconds, rows/s, the process's current RSS
at the end of the stage and its peak RSS so far (``ru_maxrss``).

    .venv/bin/python bench/registration_stages.py --n 1000000 --stores sqlite,postgres
    .venv/bin/python bench/registration_stages.py --n 100000 --stores sqlite
    .venv/bin/python bench/registration_stages.py --n 1000000 --registry-only

``--registry-only`` measures the registry index alone: it loads the extract in
a child process under ``tracemalloc`` and prints bytes a person retained and
at the peak (and the load time without tracemalloc, in another child).

PostgreSQL: ``--pg-url`` (default ``$STUDENTSTATUS_TEST_POSTGRES_URL`` or
postgresql+psycopg://postgres@127.0.0.1:5432/test); tables get a unique
prefix and are dropped afterwards.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from studentstatus import regions
from studentstatus.ids.resident import check_digit

PROVINCE = "44"
NOW = datetime(2025, 9, 2, 1, tzinfo=UTC)
GRADE_BIRTH = {  # school year 2025, cut-off 31 August
    "NURSERY": (date(2022, 9, 1), date(2023, 8, 31)),
    "JUNIOR": (date(2021, 9, 1), date(2022, 8, 31)),
    "MIDDLE": (date(2020, 9, 1), date(2021, 8, 31)),
    "SENIOR": (date(2019, 9, 1), date(2020, 8, 31)),
}
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
GIVEN = "子涵欣怡梓轩浩宇一诺雨桐思远佳琪俊杰可馨明轩"
PER_KG = 200
PHONE = "+8613800138000"


def peak_mb() -> float:
    """Peak resident set size of this process so far, in MB (Linux ru_maxrss is KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def rss_mb() -> float:
    """Current resident set size, in MB."""
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


# --------------------------------------------------------------------------- data


def plan(n: int) -> tuple[list[str], list[tuple[str, str]]]:
    """County codes and (kindergarten code, county) pairs for N children."""
    n_kg = max(1, n // PER_KG)
    codes = regions.counties(PROVINCE)[: max(1, min(20, n_kg))]
    kgs = [(f"11{PROVINCE}{i % len(codes):03d}{i // len(codes):03d}", codes[i % len(codes)])
           for i in range(n_kg)]  # fmt: skip
    return codes, kgs


def people(n: int, seed: int) -> Iterator[dict[str, Any]]:
    """The children, deterministic in (n, seed): one dict per child."""
    rng = random.Random(seed)
    _codes, kgs = plan(n)
    recent: list[tuple[str, str, date, str]] = []
    serial: dict[tuple[str, date], int] = {}
    for i in range(n):
        kg, county = kgs[i % len(kgs)]
        grade = rng.choice(list(GRADE_BIRTH))
        lo, hi = GRADE_BIRTH[grade]
        born = lo + timedelta(days=rng.randrange((hi - lo).days + 1))
        sex = "M" if rng.random() < 0.52 else "F"
        name = rng.choice(SURNAMES) + rng.choice(GIVEN) + rng.choice(GIVEN)
        roll = rng.random()
        kind, number = "resident", ""
        if roll < 0.02 and recent:
            number, sex, born, grade = rng.choice(recent)
            kind = "duplicate"
        elif roll < 0.05:
            kind = "none"
        else:
            s = serial.get((county, born), rng.randrange(50)) + 1
            serial[(county, born)] = s
            body = f"{county}{born:%Y%m%d}{(s * 2 + (sex == 'M')) % 1000:03d}"
            number = body + check_digit(body)
            if roll < 0.06:
                number = number[:-1] + ("0" if number[-1] != "0" else "1")
                kind = "invalid"
            elif len(recent) < 5000:
                recent.append((number, sex, born, grade))
            else:
                recent[rng.randrange(5000)] = (number, sex, born, grade)
        yield {"i": i, "kg": kg, "county": county, "grade": grade, "born": born, "sex": sex,
               "name": name, "kind": kind, "number": number,
               "registry": rng.random()}  # fmt: skip


def write_registry(path: Path, n: int, seed: int) -> int:
    """The extract CSV: every valid, non-duplicate number (0.5% renamed, 0.2% left out)."""
    rows = 0
    with path.open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["id_number", "name", "sex", "birth_date", "status"])
        for p in people(n, seed):
            if p["kind"] != "resident" or 0.005 <= p["registry"] < 0.007:
                continue
            name = p["name"] + ("某" if p["registry"] < 0.005 else "")
            w.writerow([p["number"], name, p["sex"], p["born"].isoformat(), "normal"])
            rows += 1
    return rows


def seed_store(store: Any, n: int, seed: int, chunk: int) -> dict[str, int]:
    """Kindergartens, children, PENDING records and their intake problems, in bulk."""
    from studentstatus.domain.enums import (
        Grade,
        ProblemKind,
        Sex,
        State,
    )
    from studentstatus.domain.model import (
        Child,
        DocumentKind,
        Guardian,
        IdentityDocument,
        ProblemRecord,
        StatusRecord,
    )

    _codes, kgs = plan(n)
    from registration import seed_kindergartens  # bench/ is on sys.path: run as a script

    seed_kindergartens(store, kgs)
    due = date(2026, 7, 31)
    first_of: dict[str, str] = {}  # number → first record id (for the duplicates), ≤ 5% of N
    counts = {"records": 0, "problems": 0}

    def problem(rec: StatusRecord, kind: ProblemKind, related: tuple[str, ...] = ()) -> Any:
        counts["problems"] += 1
        return ProblemRecord(f"p{counts['problems']:031x}", rec.id, kind, rec.region_code,
                             rec.kindergarten_code, NOW, due, detail="seeded",
                             related_record_ids=related)  # fmt: skip

    batch: list[dict[str, Any]] = []

    def flush() -> None:
        children, records, problems = [], [], []
        for p in batch:
            cid, rid = f"c{p['i']:031x}", f"r{p['i']:031x}"
            doc = None
            if p["kind"] != "none":
                doc = IdentityDocument(DocumentKind.RESIDENT, p["number"])
            children.append(Child(cid, p["name"], Sex(p["sex"]), p["born"], doc,
                                  ethnicity="01", hukou_region=p["county"],
                                  residence_region=p["county"],
                                  guardians=(Guardian("家长", "mother", PHONE),)))  # fmt: skip
            rec = StatusRecord(rid, cid, p["kg"], p["county"], State.PENDING, Grade(p["grade"]),
                               date(2025, 9, 1), temp_number=f"L{p['i']:018d}")  # fmt: skip
            records.append(rec)
            if p["kind"] == "invalid":
                problems.append(problem(rec, ProblemKind.INVALID_ID))
            elif p["kind"] == "duplicate":
                other = first_of.get(p["number"])
                problems.append(problem(rec, ProblemKind.DUPLICATE_ID, (other,) if other else ()))
                if other is not None:
                    twin = StatusRecord(other, "", p["kg"], p["county"], State.PENDING, None,
                                        date(2025, 9, 1))  # fmt: skip
                    problems.append(problem(twin, ProblemKind.DUPLICATE_ID, (rid,)))
            elif p["kind"] == "resident" and len(first_of) < 50_000:
                first_of[p["number"]] = rid
        with store.unit_of_work() as uow:
            uow.children.add_many(children)
            uow.records.add_many(records)
            if problems:
                uow.problems.add_many(problems)
            uow.commit()
        counts["records"] += len(records)
        batch.clear()

    for p in people(n, seed):
        batch.append(p)
        if len(batch) >= chunk:
            flush()
    if batch:
        flush()
    return counts


# --------------------------------------------------------------------------- child process


def _store(kind: str, workdir: Path, pg_url: str, prefix: str) -> Any:
    from studentstatus.adapters.sql import SqlStore

    if kind == "sqlite":
        return SqlStore(f"sqlite:///{workdir / f'{prefix}.db'}", create=True)
    return SqlStore(pg_url, prefix=prefix, create=True)


def _stage(out: dict[str, Any], name: str, t: float, c: float, rows: int, **extra: Any) -> None:
    dt = time.perf_counter() - t
    out[name] = {"seconds": dt, "cpu_s": time.process_time() - c, "rows": rows,
                 "rows_per_s": rows / dt if dt else 0.0, "rss_mb": rss_mb(),
                 "peak_mb": peak_mb(), **extra}  # fmt: skip
    print(json.dumps({name: out[name]}), file=sys.stderr, flush=True)


def run_child(kind: str, workdir: Path, pg_url: str, n: int, seed: int, chunk: int) -> Any:
    """Seed, approve, verify, issue for one store, in this (child) process."""
    from studentstatus.adapters.population import CsvPopulationRegistry
    from studentstatus.domain.jurisdiction import Operator
    from studentstatus.services.approval import approve_records
    from studentstatus.services.numbers import issue_numbers
    from studentstatus.services.runtime import FixedClock, Runtime
    from studentstatus.services.verification import verify_records

    codes, _kgs = plan(n)
    prefix = f"stg{uuid.uuid4().hex[:6]}_"
    store = _store(kind, workdir, pg_url, prefix)
    out: dict[str, Any] = {"store": kind, "n": n, "start_peak_mb": peak_mb()}
    try:
        t, c = time.perf_counter(), time.process_time()
        counts = seed_store(store, n, seed, chunk)
        _stage(out, "seed", t, c, counts["records"], problems=counts["problems"])
        rt = Runtime(store, FixedClock(NOW), random.Random(7))

        t, c = time.perf_counter(), time.process_time()
        approved = refused = 0
        for county in codes:
            rep = approve_records(rt, Operator.parse(f"county:{county}"), all_pending=True,
                                  chunk_size=chunk, collect=False)  # fmt: skip
            approved += rep.approved_count
            refused += len(rep.refused)
        _stage(out, "approve", t, c, approved, refused=refused)

        t, c = time.perf_counter(), time.process_time()
        registry = CsvPopulationRegistry(workdir / "registry.csv")
        load_s, load_rss = time.perf_counter() - t, rss_mb()
        ver = verify_records(rt, Operator.parse(f"province:{PROVINCE}"), registry,
                             chunk_size=chunk)  # fmt: skip
        _stage(out, "verify", t, c, ver.checked, registry_people=len(registry),
               registry_load_s=load_s, rss_after_load_mb=load_rss, results=ver.results,
               problems=ver.problems, skipped=ver.skipped)  # fmt: skip
        del registry

        t, c = time.perf_counter(), time.process_time()
        nums = issue_numbers(rt, Operator.parse(f"province:{PROVINCE}"), chunk_size=chunk,
                             collect=False)  # fmt: skip
        _stage(out, "issue", t, c, sum(nums.counts.values()), issued=nums.counts,
               skipped=nums.skipped)  # fmt: skip
    finally:
        if kind != "sqlite":
            store.drop_schema()
        store.close()
        if kind == "sqlite":
            for suffix in ("", "-wal", "-shm"):
                Path(f"{workdir / prefix}.db{suffix}").unlink(missing_ok=True)
    return out


def registry_child(workdir: Path, traced: bool) -> dict[str, Any]:
    """Load the extract; bytes a person under tracemalloc, or load time and RSS without."""
    import tracemalloc

    from studentstatus.adapters.population import CsvPopulationRegistry

    base = rss_mb()
    if traced:
        tracemalloc.start()
    t = time.perf_counter()
    reg = CsvPopulationRegistry(workdir / "registry.csv")
    people_ = len(reg)
    out: dict[str, Any] = {"people": people_, "load_s": time.perf_counter() - t}
    if traced:
        cur, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        out |= {"bytes_per_person": cur / people_, "peak_bytes_per_person": peak / people_}
    out |= {"rss_before_mb": base, "rss_after_mb": rss_mb(), "peak_mb": peak_mb()}
    return out


# --------------------------------------------------------------------------- main


def _child(args: argparse.Namespace, *extra: str) -> Any:
    cmd = [sys.executable, __file__, "--workdir", str(args.workdir), "--n", str(args.n),
           "--seed", str(args.seed), "--chunk", str(args.chunk), "--pg-url", args.pg_url,
           *extra]  # fmt: skip
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, check=False)
    if proc.returncode != 0:
        print(f"{extra}: FAILED (exit {proc.returncode})", flush=True)
        return None
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    """Generate the extract, run every store (or the registry alone) in a child process."""
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--stores", default="sqlite,postgres")
    ap.add_argument(
        "--pg-url",
        default=os.environ.get(
            "STUDENTSTATUS_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
        ),
    )
    ap.add_argument("--chunk", type=int, default=5000)
    ap.add_argument("--seed", type=int, default=2025)
    ap.add_argument("--workdir", type=Path)
    ap.add_argument("--registry-only", action="store_true")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child == "registry":
        print(json.dumps(registry_child(args.workdir, traced=False)))
        return
    if args.child == "registry-traced":
        print(json.dumps(registry_child(args.workdir, traced=True)))
        return
    if args.child:
        res = run_child(args.child, args.workdir, args.pg_url, args.n, args.seed, args.chunk)
        print(json.dumps(res))
        return
    tmp = tempfile.TemporaryDirectory(prefix="regstages-")
    args.workdir = args.workdir or Path(tmp.name)
    args.workdir.mkdir(parents=True, exist_ok=True)
    t = time.perf_counter()
    people_ = write_registry(args.workdir / "registry.csv", args.n, args.seed)
    print(f"registry extract: {people_:,} people for {args.n:,} children "
          f"({time.perf_counter() - t:.1f} s)", flush=True)  # fmt: skip
    if args.registry_only:
        plain = _child(args, "--child", "registry")
        traced = _child(args, "--child", "registry-traced")
        if plain and traced:
            print(f"  load {plain['load_s']:.1f} s, RSS {plain['rss_before_mb']:.0f} → "
                  f"{plain['rss_after_mb']:.0f} MB (peak {plain['peak_mb']:.0f} MB); "
                  f"tracemalloc: {traced['bytes_per_person']:.1f} bytes a person retained, "
                  f"{traced['peak_bytes_per_person']:.1f} at the peak")  # fmt: skip
        tmp.cleanup()
        return
    for kind in [s.strip() for s in args.stores.split(",") if s.strip()]:
        res = _child(args, "--child", kind)
        if res is None:
            continue
        print(f"\n== {kind}: {args.n:,} children (peak RSS at start {res['start_peak_mb']:.0f} MB)")
        for stage in ("seed", "approve", "verify", "issue"):
            s = res[stage]
            extra = {k: v for k, v in s.items() if k not in
                     ("seconds", "cpu_s", "rows", "rows_per_s", "rss_mb", "peak_mb")}  # fmt: skip
            print(f"  {stage:<8} {s['rows']:>9,} rows {s['seconds']:8.1f} s "
                  f"(cpu {s['cpu_s']:7.1f} s) {s['rows_per_s']:9,.0f} rows/s  "
                  f"RSS {s['rss_mb']:5.0f} MB, peak so far {s['peak_mb']:5.0f} MB  {extra}",
                  flush=True)  # fmt: skip
    tmp.cleanup()


if __name__ == "__main__":
    main()
