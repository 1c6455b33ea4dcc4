"""Benchmark: a province-sized registration run (not a test).

Generates a roster of N children (default 1,000,000) in one province, with
2% duplicate ID numbers, 1% checksum-invalid IDs and 3% children without an
ID, written to a CSV file, plus a population-registry extract CSV for the
verification stage (0.5% name mismatches, 0.2% missing).  Then, for each
store (SQLite file, PostgreSQL), in a fresh child process:

1. import (``import_files``: every county's file as that county, each file
   its own unit of work, streamed in 5,000-row chunks; rows of other counties
   are rejected ``out_of_scope`` so each county imports its own file — the
   bench splits the roster per county up front; with ``--workers`` the checker
   processes check the next county's file while the last one is written);
2. approve (``approve_records(all_pending=True)`` per county);
3. verify (``verify_records`` as the province, against the extract);
4. issue numbers (``issue_numbers`` as the province);

and prints rows/s per stage and the process's peak RSS after each stage.
In the same child process it measures the raw driver on the same rows
(children + records columns): ``sqlite3.executemany`` into a fresh SQLite
file, ``psycopg`` ``COPY`` into fresh PostgreSQL tables, and prints the
ratio import rows/s ÷ raw rows/s.

    .venv/bin/python bench/registration.py --n 100000
    .venv/bin/python bench/registration.py            # 1,000,000 rows
    .venv/bin/python bench/registration.py --stores sqlite --n 20000
    .venv/bin/python bench/registration.py --import-only    # import + baselines only
    .venv/bin/python bench/registration.py --import-only --rounds 2  # import, baseline, twice

PostgreSQL: ``--pg-url`` (default ``$STUDENTSTATUS_TEST_POSTGRES_URL`` or
postgresql+psycopg://postgres@127.0.0.1:5432/test); tables get a unique
prefix and are dropped afterwards.
"""

from __future__ import annotations

import argparse
import contextlib
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
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from studentstatus import regions
from studentstatus.ids.resident import check_digit

PROVINCE = "44"
NOW = datetime(2025, 9, 2, 1, tzinfo=UTC)
HEADER = [
    "kindergarten_code", "name", "sex", "birth_date", "id_type", "id_number", "nationality",
    "ethnicity", "hukou_region", "hukou_rural", "residence_region", "guardian_name",
    "guardian_relation", "guardian_phone", "entry_date", "grade",
]  # fmt: skip
GRADE_BIRTH = {  # school year 2025, cut-off 31 August
    "NURSERY": (date(2022, 9, 1), date(2023, 8, 31)),
    "JUNIOR": (date(2021, 9, 1), date(2022, 8, 31)),
    "MIDDLE": (date(2020, 9, 1), date(2021, 8, 31)),
    "SENIOR": (date(2019, 9, 1), date(2020, 8, 31)),
}
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
GIVEN = "子涵欣怡梓轩浩宇一诺雨桐思远佳琪俊杰可馨明轩"


def rss_mb() -> float:
    """Peak resident set size of this process so far, in MB (Linux ru_maxrss is KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _proc_cpu_s(pid: int) -> float:
    """CPU seconds (user + system) process ``pid`` has used (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_jiffies() -> tuple[int, int, int]:
    """(steal, idle + iowait, total) clock ticks of the whole machine so far (/proc/stat)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    return fields[7], fields[3] + fields[4], sum(fields[:8])


def steal_pct(since: tuple[int, int, int]) -> float:
    """Share (%) of the machine's CPU time the hypervisor took (steal) since ``since``: a
    phase with a high figure ran on a slower machine than one without."""
    steal, _, total = cpu_jiffies()
    return round(100 * (steal - since[0]) / max(1, total - since[2]), 1)


def idle_pct(since: tuple[int, int, int]) -> float:
    """Share (%) of the machine's CPU time no process used since ``since`` (idle or waiting
    for I/O): what a phase left of the cores it could have used."""
    _, idle, total = cpu_jiffies()
    return round(100 * (idle - since[1]) / max(1, total - since[2]), 1)


def speed_probe_ms() -> float:
    """Milliseconds a fixed piece of pure-Python work takes now: this VM's speed drifts by
    up to half from one minute to the next, so each phase records it beside its figures."""
    t = time.perf_counter()
    sum(i * i % 7 for i in range(400_000))
    return round((time.perf_counter() - t) * 1000, 1)


def server_cpu_s(store) -> dict[int, float]:  # type: ignore[no-untyped-def]
    """CPU seconds of each PostgreSQL backend of this database (server on this machine)."""
    import sqlalchemy as sa

    query = sa.text("SELECT pid FROM pg_stat_activity WHERE datname = current_database()")
    with store.engine.connect() as conn:
        pids = conn.execute(query).scalars().all()
    out = {}
    for pid in pids:
        with contextlib.suppress(OSError):
            out[pid] = _proc_cpu_s(pid)
    return out


def checker_cpu_s() -> list[float]:
    """CPU seconds (user + system) each idle checker process (``workers=N``) has used."""
    from studentstatus.services import _parallel

    out = []
    for w in list(_parallel._IDLE):
        with contextlib.suppress(OSError):
            out.append(_proc_cpu_s(w.proc.pid))
    return out


def checker_rss_mb() -> list[float]:
    """Peak resident set size of each idle checker process (``workers=N``), in MB."""
    from studentstatus.services import _parallel

    peaks = []
    for w in list(_parallel._IDLE):
        with contextlib.suppress(OSError):
            status = Path(f"/proc/{w.proc.pid}/status").read_text()
            peaks.extend(int(line.split()[1]) / 1024 for line in status.splitlines()
                         if line.startswith("VmHWM:"))  # fmt: skip
    return peaks


# --------------------------------------------------------------------------- data


def counties(n_counties: int) -> list[str]:
    """Current county codes of the province (the first n)."""
    return regions.counties(PROVINCE)[:n_counties]


def kindergarten_code(county_index: int, k: int) -> str:
    """A kindergarten school code (type 11, province 44)."""
    return f"11{PROVINCE}{county_index:03d}{k:03d}"


def generate(workdir: Path, n: int, seed: int) -> dict[str, object]:
    """Write roster-<county>.csv files, kindergartens.json and registry.csv; return the plan."""
    rng = random.Random(seed)
    per_kg = 200
    n_kg = max(1, n // per_kg)
    codes = counties(max(1, min(20, n_kg)))
    kgs = [(kindergarten_code(i % len(codes), i // len(codes)), codes[i % len(codes)])
           for i in range(n_kg)]  # fmt: skip
    files = {c: (workdir / f"roster-{c}.csv").open("w", encoding="utf-8", newline="")
             for c in codes}  # fmt: skip
    writers = {c: csv.writer(fh) for c, fh in files.items()}
    for w in writers.values():
        w.writerow(HEADER)
    reg_fh = (workdir / "registry.csv").open("w", encoding="utf-8", newline="")
    reg = csv.writer(reg_fh)
    reg.writerow(["id_number", "name", "sex", "birth_date", "status"])
    recent: list[str] = []
    stats = {"rows": 0, "duplicates": 0, "bad_ids": 0, "no_id": 0}
    serial: dict[tuple[str, date], int] = {}
    for i in range(n):
        kg, county = kgs[i % n_kg]
        grade = rng.choice(list(GRADE_BIRTH))
        lo, hi = GRADE_BIRTH[grade]
        born = lo + timedelta(days=rng.randrange((hi - lo).days + 1))
        sex = "M" if rng.random() < 0.52 else "F"
        name = rng.choice(SURNAMES) + rng.choice(GIVEN) + rng.choice(GIVEN)
        roll = rng.random()
        id_type, number = "resident", ""
        if roll < 0.02 and recent:
            number = rng.choice(recent)  # the same child registered twice
            sex = "M" if int(number[16]) % 2 else "F"
            born = date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
            grade = next(g for g, (a, b) in GRADE_BIRTH.items() if a <= born <= b)
            stats["duplicates"] += 1
        elif roll < 0.05:
            id_type = "none"
            stats["no_id"] += 1
        else:
            key = (county, born)
            s = serial.get(key, rng.randrange(50)) + 1
            serial[key] = s
            order = (s * 2 + (1 if sex == "M" else 0)) % 1000
            body = f"{county}{born:%Y%m%d}{order:03d}"
            number = body + check_digit(body)
            if roll < 0.06:
                number = number[:-1] + ("0" if number[-1] != "0" else "1")
                stats["bad_ids"] += 1
            else:
                if len(recent) < 5000:
                    recent.append(number)
                else:
                    recent[rng.randrange(5000)] = number
                r = rng.random()
                if r < 0.005:
                    reg.writerow([number, name + "某", sex, born.isoformat(), "normal"])
                elif r >= 0.007:
                    reg.writerow([number, name, sex, born.isoformat(), "normal"])
        writers[county].writerow([
            kg, name, sex, born.isoformat(), id_type, number, "CHN", "01", county, "0",
            county, "家长", "mother", f"13{rng.randrange(10**9):09d}", "2025-09-01", grade,
        ])  # fmt: skip
        stats["rows"] += 1
    for fh in files.values():
        fh.close()
    reg_fh.close()
    (workdir / "kindergartens.json").write_text(json.dumps(kgs))
    return {"counties": codes, "stats": stats}


# --------------------------------------------------------------------------- stages


def _store(kind: str, workdir: Path, pg_url: str, prefix: str):  # type: ignore[no-untyped-def]
    from studentstatus.adapters.sql import SqlStore

    if kind == "sqlite":
        return SqlStore(f"sqlite:///{workdir / f'{prefix}.db'}", create=True)
    return SqlStore(pg_url, prefix=prefix, create=True)


def seed_kindergartens(store, kgs: list[list[str]]) -> None:  # type: ignore[no-untyped-def]
    """Add the bench's licensed kindergartens, ``[school_code, county]`` pairs, to ``store``."""
    from studentstatus.domain.enums import KindergartenType
    from studentstatus.domain.model import Kindergarten, Licence

    lic = (Licence("LIC", "教育局", date(2015, 1, 1), date(2035, 12, 31)),)
    with store.unit_of_work() as uow:
        uow.kindergartens.add_many(
            Kindergarten(code, "12100000400000624D", f"幼儿园{code[-6:]}", county,
                         KindergartenType.PUBLIC, licences=lic)
            for code, county in kgs
        )  # fmt: skip
        uow.commit()


def import_stage(kind: str, rt, workdir: Path, codes: list[str], chunk: int,  # type: ignore[no-untyped-def]
                 workers: int, n: int) -> dict[str, object]:  # fmt: skip
    """Import every county's file into ``rt.store`` (seeded with the kindergartens), timed."""
    from studentstatus.domain.jurisdiction import Operator
    from studentstatus.services.intake import import_files

    store = rt.store
    server = server_cpu_s(store) if kind != "sqlite" else {}
    checkers_before = checker_cpu_s()
    jiffies = cpu_jiffies()
    probe = speed_probe_ms()
    t, c = time.perf_counter(), time.process_time()
    accepted = rejected = 0
    problems: dict[str, int] = {}
    reports = import_files(
        rt,
        [(Operator.parse(f"county:{c}"), workdir / f"roster-{c}.csv") for c in codes],
        chunk_size=chunk,
        collect_records=False,
        workers=workers,
    )
    for rep in reports:
        accepted += rep.accepted
        rejected += rep.rejected_rows
        for k, v in rep.problems.items():
            problems[k] = problems.get(k, 0) + v
    dt = time.perf_counter() - t
    checkers = checker_cpu_s()
    if len(checkers_before) == len(checkers):  # the same (reused) processes: this import's share
        checkers = [round(a - b, 2) for a, b in zip(checkers, checkers_before, strict=True)]
    stage: dict[str, object] = {
        "seconds": dt, "cpu_s": time.process_time() - c, "rows_per_s": n / dt,
        "accepted": accepted, "rejected_rows": rejected, "problems": problems,
        "workers": workers, "rss_mb": rss_mb(), "checker_rss_mb": checker_rss_mb(),
        "checker_cpu_s": checkers, "steal_pct": steal_pct(jiffies), "idle_pct": idle_pct(jiffies),
        "probe_ms_before_after": [probe, speed_probe_ms()],
    }  # fmt: skip
    if server:
        after = server_cpu_s(store)
        stage["server_cpu_s"] = sum(after[pid] - cpu for pid, cpu in server.items() if pid in after)
    return stage


def run_child(
    kind: str,
    workdir: Path,
    pg_url: str,
    chunk: int,
    import_only: bool = False,
    workers: int = 0,
    rounds: int = 1,
) -> dict[str, object]:
    """All stages for one store (or only the import), in this (child) process.

    ``rounds=2`` (with ``import_only``): import, same-rows baseline, import again into a
    fresh schema, same-rows baseline again — the second import has a baseline just before
    and just after it, so a drift of the machine's speed during the run does not decide
    its ratio alone.
    """
    from studentstatus.adapters.population import CsvPopulationRegistry
    from studentstatus.domain.jurisdiction import Operator
    from studentstatus.services.approval import approve_records
    from studentstatus.services.numbers import issue_numbers
    from studentstatus.services.runtime import FixedClock, Runtime
    from studentstatus.services.verification import verify_records

    if os.environ.get("STUDENTSTATUS_BENCH_NO_GC_TUNING"):
        # --no-gc-tuning: measure the import without its relaxed garbage-collector thresholds
        import contextlib

        from studentstatus.services import intake

        intake._gc_relaxed = contextlib.nullcontext  # type: ignore[assignment]
    plan = json.loads((workdir / "plan.json").read_text())
    codes: list[str] = plan["counties"]
    kgs = json.loads((workdir / "kindergartens.json").read_text())
    prefix = f"bench{uuid.uuid4().hex[:6]}_"
    store = _store(kind, workdir, pg_url, prefix)
    out: dict[str, object] = {"store": kind, "rows": plan["stats"]["rows"]}
    try:
        seed_kindergartens(store, kgs)
        rt = Runtime(store, FixedClock(NOW), random.Random(7))
        n = int(plan["stats"]["rows"])
        out["import"] = import_stage(kind, rt, workdir, codes, chunk, workers, n)
        _done(out, "import")
        written = dump_written(store, workdir)  # untimed: what the import wrote, for the baseline
        if import_only and rounds > 1:
            # import 1, baseline 1, import 2 (fresh schema), baseline 2
            out["same_rows_1"] = same_rows_baseline(kind, workdir, pg_url, written, keep=True)
            _done(out, "same_rows_1")
            counts = _row_counts(store)
            if kind != "sqlite":
                store.drop_schema()
            store.close()
            store = _store(kind, workdir, pg_url, f"bench{uuid.uuid4().hex[:6]}_")
            seed_kindergartens(store, kgs)
            rt = Runtime(store, FixedClock(NOW), random.Random(7))  # the same draws again
            out["import_2"] = import_stage(kind, rt, workdir, codes, chunk, workers, n)
            _done(out, "import_2")
            if _row_counts(store) != counts:
                msg = "the second import wrote other row counts than the first"
                raise RuntimeError(msg)
        if import_only:
            out["peak_rss_mb"] = rss_mb()
            return _baselines(out, kind, workdir, pg_url, written, codes, kgs)

        t, c = time.perf_counter(), time.process_time()
        approved = 0
        for county in codes:
            approved += approve_records(
                rt,
                Operator.parse(f"county:{county}"),
                all_pending=True,
                chunk_size=chunk,
                collect=False,
            ).approved_count
        dt = time.perf_counter() - t
        out["approve"] = {"seconds": dt, "cpu_s": time.process_time() - c,
                          "rows_per_s": approved / dt, "approved": approved,
                          "rss_mb": rss_mb()}  # fmt: skip

        _done(out, "approve")
        t, c = time.perf_counter(), time.process_time()
        registry = CsvPopulationRegistry(workdir / "registry.csv")
        load = time.perf_counter() - t
        ver = verify_records(rt, Operator.parse(f"province:{PROVINCE}"), registry,
                             chunk_size=chunk)  # fmt: skip
        dt = time.perf_counter() - t
        out["verify"] = {"seconds": dt, "cpu_s": time.process_time() - c,
                         "registry_load_s": load, "rows_per_s": ver.checked / dt,
                         "checked": ver.checked, "results": ver.results,
                         "rss_mb": rss_mb()}  # fmt: skip
        del registry
        _done(out, "verify")

        t, c = time.perf_counter(), time.process_time()
        # collect=False: counts only (a portal streams the issued numbers with on_issued).
        nums = issue_numbers(rt, Operator.parse(f"province:{PROVINCE}"), chunk_size=chunk,
                             collect=False)  # fmt: skip
        dt = time.perf_counter() - t
        kinds = dict(nums.counts)
        out["issue"] = {"seconds": dt, "cpu_s": time.process_time() - c,
                        "rows_per_s": sum(kinds.values()) / dt, "issued": kinds,
                        "skipped": nums.skipped, "rss_mb": rss_mb()}  # fmt: skip
        del nums

        _done(out, "issue")
        out["peak_rss_mb"] = rss_mb()  # before the baselines: the pipeline's own peak
        return _baselines(out, kind, workdir, pg_url, written, codes, kgs)
    finally:
        if kind != "sqlite":
            store.drop_schema()
        store.close()


def _baselines(out: dict[str, object], kind: str, workdir: Path, pg_url: str,
               written: dict[str, object], codes: list[str], kgs: list[list[str]]
               ) -> dict[str, object]:  # fmt: skip
    """Run both raw-driver baselines and add them and the ratios to ``out``."""
    out["same_rows"] = same_rows_baseline(kind, workdir, pg_url, written)
    _done(out, "same_rows")
    out["raw"] = raw_baseline(kind, workdir, pg_url, codes, kgs)
    imp = out["import"]
    raw = out["raw"]
    same = out["same_rows"]
    assert isinstance(imp, dict)
    assert isinstance(raw, dict)
    assert isinstance(same, dict)
    out["ratio_import_vs_raw"] = imp["rows_per_s"] / raw["rows_per_s"]
    out["ratio_import_vs_same_rows"] = imp["seconds"] and same["seconds"] / imp["seconds"]
    if "import_2" in out:  # rounds=2: import 1, same rows 1, import 2, same rows (2)
        first, second = out["same_rows_1"], out["import_2"]
        assert isinstance(first, dict)
        assert isinstance(second, dict)
        out["ratio_import_vs_same_rows"] = first["seconds"] / imp["seconds"]
        out["ratio_import_2_vs_before_after"] = [
            first["seconds"] / second["seconds"],
            same["seconds"] / second["seconds"],
        ]
        # The second import against the mean of the baselines just before and after it.
        out["ratio_import_2_bracketed"] = (
            (first["seconds"] + same["seconds"]) / 2 / second["seconds"]
        )
    return out


def _row_counts(store) -> dict[str, int]:  # type: ignore[no-untyped-def]
    """Rows of each table the import writes (kindergartens aside)."""
    import sqlalchemy as sa

    with store.engine.connect() as conn:
        return {
            port: conn.execute(sa.select(sa.func.count()).select_from(t)).scalar_one()
            for port, t in store.tables.by_port.items()
            if port != "kindergartens"
        }


def _done(out: dict[str, object], stage: str) -> None:
    """Report a finished stage on stderr at once (a later failure keeps what was measured)."""
    print(f"{stage}: {json.dumps(out[stage])}", file=sys.stderr, flush=True)


def dump_written(store, workdir: Path) -> dict[str, object]:  # type: ignore[no-untyped-def]
    """Every row the import wrote (all tables but the seeded kindergartens), exactly as stored,
    pickled in 5,000-row chunks per table into ``workdir`` (streamed: flat memory)."""
    import pickle

    import sqlalchemy as sa

    out: dict[str, object] = {"tables": [], "rows": 0}
    tables = [(k, t) for k, t in store.tables.by_port.items() if k != "kindergartens"]
    with store.engine.connect() as conn:
        for port, table in tables:
            cols = [c.name for c in table.columns]
            # JSON columns as their stored text, so the raw driver re-inserts the same bytes.
            sel = [sa.cast(c, sa.Text) if isinstance(c.type, sa.JSON) else c
                   for c in table.columns]  # fmt: skip
            path = workdir / f"written-{uuid.uuid4().hex[:8]}-{table.name}.pickle"
            n = 0
            with path.open("wb") as fh:
                result = conn.execution_options(stream_results=True).execute(sa.select(*sel))
                while part := result.fetchmany(5000):
                    pickle.dump([tuple(r) for r in part], fh, protocol=pickle.HIGHEST_PROTOCOL)
                    n += len(part)
            if n:
                out["tables"].append((port, cols, str(path), n))  # type: ignore[union-attr]
                out["rows"] = int(out["rows"]) + n  # type: ignore[call-overload]
            else:
                path.unlink()
    return out


def _chunks_of(path: str):  # type: ignore[no-untyped-def]
    import pickle

    with open(path, "rb") as fh:
        while True:
            try:
                yield pickle.load(fh)
            except EOFError:
                return


def same_rows_baseline(kind: str, workdir: Path, pg_url: str, written: dict[str, object],
                       keep: bool = False) -> dict[str, float]:  # fmt: skip
    """The raw driver writing exactly the rows the import wrote, into the same schema.

    Same tables, columns, keys and indexes (created by the adapter under another prefix),
    same values (read back from the import's tables), one transaction; ``sqlite3``
    ``executemany`` per 5,000-row chunk with the adapter's pragmas, or ``psycopg`` ``COPY``
    per table.  The timed part streams the pickled chunks from disk and inserts them.
    """
    from studentstatus.adapters.sql import SqlStore

    p = f"same{uuid.uuid4().hex[:6]}_"
    tables = written["tables"]
    assert isinstance(tables, list)
    jiffies = cpu_jiffies()
    probe = speed_probe_ms()
    if kind == "sqlite":
        import sqlite3

        path = workdir / f"{p}.db"
        target = SqlStore(f"sqlite:///{path}", prefix=p, create=True)
        names = {k: t.name for k, t in target.tables.by_port.items()}
        target.close()
        con = sqlite3.connect(path, isolation_level=None)
        for pragma in ("foreign_keys=ON", "journal_mode=WAL", "synchronous=NORMAL"):
            con.execute(f"PRAGMA {pragma}")
        t, c = time.perf_counter(), time.process_time()
        con.execute("BEGIN IMMEDIATE")
        for port, cols, chunk_path, _ in tables:
            sql = (f"INSERT INTO {names[port]} ({','.join(cols)}) "
                   f"VALUES ({','.join('?' * len(cols))})")  # fmt: skip
            for chunk in _chunks_of(chunk_path):
                con.executemany(sql, chunk)
        con.execute("COMMIT")
        dt, cpu = time.perf_counter() - t, time.process_time() - c
        con.close()
    else:
        import psycopg

        target = SqlStore(pg_url, prefix=p, create=True)
        names = {k: t.name for k, t in target.tables.by_port.items()}
        try:
            url = pg_url.replace("postgresql+psycopg://", "postgresql://")
            with psycopg.connect(url) as con:
                backend = con.info.backend_pid
                s0 = _proc_cpu_s(backend)
                t, c = time.perf_counter(), time.process_time()
                with con.cursor() as cur:
                    for port, cols, chunk_path, _ in tables:
                        dest = names[port]
                        with cur.copy(f"COPY {dest} ({','.join(cols)}) FROM STDIN") as cp:
                            for chunk in _chunks_of(chunk_path):
                                for row in chunk:
                                    cp.write_row(row)
                con.commit()
                dt, cpu = time.perf_counter() - t, time.process_time() - c
                server_cpu = _proc_cpu_s(backend) - s0
        finally:
            target.drop_schema()
            target.close()
    if not keep:  # (keep: for a second run of the same rows)
        for _, _, chunk_path, _ in tables:
            Path(chunk_path).unlink()
    rows = int(written["rows"])  # type: ignore[call-overload]
    out = {"seconds": dt, "cpu_s": cpu, "rows": rows, "rows_per_s": rows / dt,
           "tables": {name: n for name, _, _, n in tables},
           "steal_pct": steal_pct(jiffies), "idle_pct": idle_pct(jiffies),
           "probe_ms_before_after": [probe, speed_probe_ms()]}  # fmt: skip
    if kind != "sqlite":
        out["server_cpu_s"] = server_cpu
    return out


def _raw_rows(workdir: Path, codes: list[str], kgs: list[list[str]]):  # type: ignore[no-untyped-def]
    """(child row, record row) tuples for the same CSV rows: minimal parsing, no checks."""
    region_of = dict(kgs)
    i = 0
    for county in codes:
        with (workdir / f"roster-{county}.csv").open(encoding="utf-8", newline="") as fh:
            reader = csv.reader(fh)
            next(reader)
            for r in reader:
                i += 1
                cid, rid = f"c{i:031x}", f"r{i:031x}"
                child = (cid, r[1], r[2], r[3], r[4], r[5] or None, r[6], r[7], r[8], False,
                         r[10], json.dumps([[r[11], r[12], "+86" + r[13]]]), 0)  # fmt: skip
                record = (rid, cid, r[0], region_of[r[0]], "PENDING", r[15], r[14],
                          f"L{i:018d}", 1)  # unique at any N  # fmt: skip
                yield child, record


CHILD_COLS = ("id", "name", "sex", "birth_date", "document_type", "document_number",
              "nationality", "ethnicity", "hukou_region", "hukou_rural", "residence_region",
              "guardians", "version")  # fmt: skip
RECORD_COLS = ("id", "child_id", "kindergarten_code", "region_code", "state", "grade",
               "entry_date", "temp_number", "version")  # fmt: skip
CHILD_DDL = ("CREATE TABLE {p}children (id TEXT PRIMARY KEY, name TEXT, sex TEXT, birth_date "
             "DATE, document_type TEXT, document_number TEXT, nationality TEXT, ethnicity TEXT, "
             "hukou_region TEXT, hukou_rural BOOLEAN, residence_region TEXT, guardians TEXT, "
             "version INTEGER)")  # fmt: skip
RECORD_DDL = ("CREATE TABLE {p}records (id TEXT PRIMARY KEY, child_id TEXT, kindergarten_code "
              "TEXT, region_code TEXT, state TEXT, grade TEXT, entry_date DATE, temp_number TEXT "
              "UNIQUE, version INTEGER)")  # fmt: skip
INDEXES = ("CREATE INDEX {p}c_doc ON {p}children (document_number)",
           "CREATE INDEX {p}r_child ON {p}records (child_id)",
           "CREATE INDEX {p}r_region ON {p}records (region_code)")  # fmt: skip


def raw_baseline(kind: str, workdir: Path, pg_url: str, codes: list[str], kgs: list[list[str]]
                 ) -> dict[str, float]:  # fmt: skip
    """Insert the same rows with the raw driver; rows/s (rows = children, as in the import)."""
    p = f"raw{uuid.uuid4().hex[:6]}_"
    batch = 5000
    t, c = time.perf_counter(), time.process_time()
    n = 0
    if kind == "sqlite":
        import sqlite3

        con = sqlite3.connect(workdir / f"{p}.db")
        con.execute(CHILD_DDL.format(p=p))
        con.execute(RECORD_DDL.format(p=p))
        for ddl in INDEXES:
            con.execute(ddl.format(p=p))
        t, c = time.perf_counter(), time.process_time()
        ci = f"INSERT INTO {p}children VALUES ({','.join('?' * len(CHILD_COLS))})"
        ri = f"INSERT INTO {p}records VALUES ({','.join('?' * len(RECORD_COLS))})"
        children: list[tuple[object, ...]] = []
        records: list[tuple[object, ...]] = []
        for child_row, record_row in _raw_rows(workdir, codes, kgs):
            children.append(child_row)
            records.append(record_row)
            if len(children) >= batch:
                con.executemany(ci, children)
                con.executemany(ri, records)
                n += len(children)
                children, records = [], []
        con.executemany(ci, children)
        con.executemany(ri, records)
        n += len(children)
        con.commit()
        dt = time.perf_counter() - t
        cpu = time.process_time() - c
        con.close()
    else:
        import psycopg

        url = pg_url.replace("postgresql+psycopg://", "postgresql://")
        with psycopg.connect(url) as con:
            con.execute(CHILD_DDL.format(p=p))
            con.execute(RECORD_DDL.format(p=p))
            for ddl in INDEXES:
                con.execute(ddl.format(p=p))
            con.commit()
            t, c = time.perf_counter(), time.process_time()
            with con.cursor() as cur:
                with cur.copy(f"COPY {p}children ({','.join(CHILD_COLS)}) FROM STDIN") as cc:
                    for child_row, _ in _raw_rows(workdir, codes, kgs):
                        cc.write_row(child_row)
                        n += 1
                with cur.copy(f"COPY {p}records ({','.join(RECORD_COLS)}) FROM STDIN") as cr:
                    for _, record_row in _raw_rows(workdir, codes, kgs):
                        cr.write_row(record_row)
            con.commit()
            dt = time.perf_counter() - t
            cpu = time.process_time() - c
            con.execute(f"DROP TABLE {p}records")
            con.execute(f"DROP TABLE {p}children")
            con.commit()
    return {"seconds": dt, "cpu_s": cpu, "rows_per_s": n / dt, "rows": n}


# --------------------------------------------------------------------------- main


def main() -> None:
    """Generate the data, run every store in a child process, print the figures."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
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
    ap.add_argument(
        "--import-only",
        action="store_true",
        help="skip approve, verify and issue (the import and both baselines)",
    )
    ap.add_argument(
        "--workers",
        type=int,
        default=0,
        help="import_files(workers=N): check rows in N processes (0: in the importing one)",
    )
    ap.add_argument(
        "--rounds",
        type=int,
        choices=(1, 2),
        default=1,
        help="with --import-only: 2 runs import, baseline, import again, baseline again "
        "(the second import bracketed by a baseline before and after it)",
    )
    ap.add_argument(
        "--no-gc-tuning",
        action="store_true",
        help="import without the intake's relaxed garbage-collector thresholds (to measure them)",
    )
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        result = run_child(args.child, args.workdir, args.pg_url, args.chunk, args.import_only,
                           args.workers, args.rounds)  # fmt: skip
        print(json.dumps(result))
        return
    if args.no_gc_tuning:
        os.environ["STUDENTSTATUS_BENCH_NO_GC_TUNING"] = "1"  # read by the child processes
    tmp = tempfile.TemporaryDirectory(prefix="regbench-")
    workdir = args.workdir or Path(tmp.name)
    workdir.mkdir(parents=True, exist_ok=True)
    t = time.perf_counter()
    plan = generate(workdir, args.n, args.seed)
    (workdir / "plan.json").write_text(json.dumps(plan))
    print(f"generated {args.n:,} rows in {time.perf_counter() - t:.1f} s: {plan['stats']}",
          flush=True)  # fmt: skip
    for kind in [s.strip() for s in args.stores.split(",") if s.strip()]:
        cmd = [sys.executable, __file__, "--child", kind, "--workdir", str(workdir),
               "--pg-url", args.pg_url, "--chunk", str(args.chunk)]  # fmt: skip
        if args.import_only:
            cmd.append("--import-only")
        if args.workers:
            cmd += ["--workers", str(args.workers)]
        if args.rounds > 1:
            cmd += ["--rounds", str(args.rounds)]
        # stderr passes through: each stage is reported as soon as it is done.
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, check=False)
        if proc.returncode != 0:
            print(f"{kind}: FAILED (exit {proc.returncode}; see the stage lines above)", flush=True)
            continue
        res = json.loads(proc.stdout.strip().splitlines()[-1])
        print(f"\n== {kind}: {res['rows']:,} rows", flush=True)
        for stage in ("import", "import_2", "approve", "verify", "issue"):
            if stage not in res:
                continue
            s = res[stage]
            extra = {k: v for k, v in s.items()
                     if k not in ("seconds", "cpu_s", "rows_per_s", "rss_mb")}  # fmt: skip
            print(f"  {stage:<8} {s['seconds']:9.1f} s (cpu {s.get('cpu_s', 0):7.1f} s)  "
                  f"{s['rows_per_s']:10,.0f} rows/s  "
                  f"peak RSS so far {s['rss_mb']:6.0f} MB  {extra}")  # fmt: skip
        raw = res["raw"]
        driver = "sqlite3.executemany" if kind == "sqlite" else "psycopg COPY"
        print(f"  raw {driver}: {raw['seconds']:.1f} s (cpu {raw.get('cpu_s', 0):.1f} s), "
              f"{raw['rows_per_s']:,.0f} rows/s")  # fmt: skip
        same = res["same_rows"]
        print(f"  same rows, raw {driver} into the same schema: {same['seconds']:.1f} s "
              f"(cpu {same['cpu_s']:.1f} s), {same['rows']:,} rows {same['tables']}")  # fmt: skip
        if "import_2" in res:
            one, two = res["same_rows_1"]["seconds"], same["seconds"]
            before, after = res["ratio_import_2_vs_before_after"]
            print(
                f"  same rows, raw {driver}, between the imports: {one:.1f} s; after: {two:.1f} s"
            )
            print(f"  import 1 ÷ the baseline after it = {res['ratio_import_vs_same_rows']:.3f}×; "
                  f"import 2 ÷ the baseline before it = {before:.3f}×, after it = {after:.3f}×, "
                  f"÷ their mean = {res['ratio_import_2_bracketed']:.3f}×")  # fmt: skip
        print(f"  import ÷ raw driver, same rows & schema = {res['ratio_import_vs_same_rows']:.3f}×"
              f"   (narrow: children+records, 3 indexes = {res['ratio_import_vs_raw']:.3f}×)   "
              f"peak RSS {res['peak_rss_mb']:.0f} MB", flush=True)  # fmt: skip
    tmp.cleanup()


if __name__ == "__main__":
    main()
