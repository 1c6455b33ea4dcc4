"""Benchmark: instructions per row of one checker process, counted by callgrind (not a test).

With ``import_children(..., workers=N)`` the per-row work (reading, checking, building and,
on PostgreSQL, encoding the ``COPY`` text) runs in N checker processes; on the 2-vCPU VM they
take about two thirds of the CPU of a 1,000,000-row PostgreSQL import.  This script runs the
work of checker ``0`` of ``--workers`` (the chunks it owns, the others' rows only counted)
over the first ``--rows`` rows of one county file of the registration bench's roster, with
the PostgreSQL adapter's row encoder but no database (the encoder needs psycopg, not a
connection), under ``valgrind --tool=callgrind`` — once with the rows and once with the
header only — and prints the difference per row it checked.  The count is the same for the
same code and input whatever else the machine does (wall-clock A/B tests on this VM drift by
up to 1.8x); run it at two commits to compare them.

    .venv/bin/python bench/checker_instructions.py                 # 10,000 rows, 2 workers
    .venv/bin/python bench/checker_instructions.py --rows 4000 --workers 1
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import sys
import tempfile
from datetime import date
from pathlib import Path
from typing import Any


class _Sink:
    """Stands in for the pipe: counts the bytes the checker sends."""

    sent = 0

    def send_bytes(self, data: bytes) -> None:
        self.sent += len(data)


def child(
    path: Path, workdir: Path, workers: int, *, encoder: Any = None, sink: Any = None
) -> None:
    """Run checker 0 of ``workers`` over ``path`` (the CSV file of the first county), with
    ``encoder`` (default: the PostgreSQL adapter's ``CopyEncoder``) into ``sink`` (default:
    a byte counter standing in for the pipe)."""
    sys.path.insert(0, str(Path(__file__).parent))
    import registration as bench

    from studentstatus.adapters.sql.copy import CopyEncoder
    from studentstatus.adapters.sql.tables import build_tables
    from studentstatus.domain.enums import KindergartenType
    from studentstatus.domain.jurisdiction import Operator
    from studentstatus.domain.model import Kindergarten, Licence
    from studentstatus.services import _parallel
    from studentstatus.services.runtime import FixedClock, Runtime

    plan = json.loads((workdir / "plan.json").read_text())
    county = plan["counties"][0]
    lic = (Licence("LIC", "教育局", date(2015, 1, 1), date(2035, 12, 31)),)
    kgs = {
        code: Kindergarten(code, "12100000400000624D", f"幼儿园{code[-6:]}", c,
                           KindergartenType.PUBLIC, licences=lic)
        for code, c in json.loads((workdir / "kindergartens.json").read_text())
        if c == county
    }  # fmt: skip
    rt = Runtime(None, FixedClock(bench.NOW), random.Random(7))  # type: ignore[arg-type]
    spec = _parallel.spec_for(
        path, Operator.parse(f"county:{county}"), rt.policy, bench.NOW.date(), bench.NOW,
        roster=False, kindergartens=kgs, chunk_size=1000, workers=workers, rng=rt.rng,
        encoder=encoder if encoder is not None else CopyEncoder.for_tables(build_tables()),
    )  # fmt: skip
    _parallel.work(spec, 0, sink if sink is not None else _Sink())


def owned(rows: int, workers: int) -> int:
    """How many of the first ``rows`` rows checker 0 checks."""
    from studentstatus.services._parallel import chunk_sizes

    count = done = 0
    for chunk, size in enumerate(chunk_sizes(1000)):  # dealt round-robin, checker 0 first
        if done >= rows:
            return count
        if chunk % workers == 0:
            count += min(size, rows - done)
        done += size
    raise AssertionError  # pragma: no cover - chunk_sizes never ends


def instructions(path: Path, workdir: Path, workers: int) -> int:
    """Instructions of one child process under callgrind."""
    sys.path.insert(0, str(Path(__file__).parent))
    from import_instructions import callgrind

    args = [__file__, "--child", str(path), "--workdir", str(workdir), "--workers", str(workers)]
    return callgrind(args, workdir / "callgrind.out")[0]


def main() -> None:
    """Generate a roster, count both runs, print instructions per checked row."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=10_000, help="rows of the county file")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--workdir", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child, args.workdir, args.workers)
        return
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed")
    sys.path.insert(0, str(Path(__file__).parent))
    import registration as bench

    with tempfile.TemporaryDirectory(prefix="checkercg-") as tmp:
        workdir = Path(tmp)
        # 20 counties: the first county's file holds a twentieth of the roster.
        plan = bench.generate(workdir, args.rows * 20, 2025)
        (workdir / "plan.json").write_text(json.dumps(plan))
        lines = (workdir / f"roster-{plan['counties'][0]}.csv").read_text().splitlines(True)
        (workdir / "rows.csv").write_text("".join(lines[: args.rows + 1]))
        (workdir / "header.csv").write_text(lines[0])
        base = instructions(workdir / "header.csv", workdir, args.workers)
        total = instructions(workdir / "rows.csv", workdir, args.workers)
    checked = owned(args.rows, args.workers)
    print(f"start-up (header only): {base:,} instructions")
    print(f"checker 0 of {args.workers}, {checked:,} of {args.rows:,} rows: {total:,}")
    print(f"instructions per checked row: {(total - base) / checked:,.0f}")


if __name__ == "__main__":
    main()
