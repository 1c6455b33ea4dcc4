"""Benchmark: instructions per imported row, counted by callgrind (not a test).

Wall-clock times on a shared VM drift by ±10% from one minute to the next; callgrind counts
the instructions the process executes, the same count for the same code and input whatever
else the machine does.  This script generates the registration bench's roster (20 counties
of province 44), then runs ``import_children`` under ``valgrind --tool=callgrind`` twice in
fresh processes — importing the files of ``--counties`` counties into a new SQLite file, and
importing nothing (start-up, schema, kindergartens) — and prints the difference divided by
the rows imported.  Run it at two commits to compare them; a run takes about a minute per
1,000 rows.

    .venv/bin/python bench/import_instructions.py                  # 2 counties, 2,000 rows
    .venv/bin/python bench/import_instructions.py --n 40000 --counties 1
"""

from __future__ import annotations

import argparse
import json
import random
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path


def child(workdir: Path, counties: int) -> None:
    """Import the first ``counties`` county files into a new SQLite store."""
    sys.path.insert(0, str(Path(__file__).parent))
    import registration as bench

    from studentstatus.adapters.sql import SqlStore
    from studentstatus.domain.jurisdiction import Operator
    from studentstatus.services.intake import import_children
    from studentstatus.services.runtime import FixedClock, Runtime

    plan = json.loads((workdir / "plan.json").read_text())
    kgs = json.loads((workdir / "kindergartens.json").read_text())
    db = workdir / f"import-{counties}.db"
    db.unlink(missing_ok=True)
    store = SqlStore(f"sqlite:///{db}", create=True)
    bench.seed_kindergartens(store, kgs)
    rt = Runtime(store, FixedClock(bench.NOW), random.Random(7))
    rows = 0
    for county in plan["counties"][:counties]:
        report = import_children(rt, Operator.parse(f"county:{county}"),
                                 workdir / f"roster-{county}.csv", chunk_size=5000,
                                 collect_records=False)  # fmt: skip
        rows += report.rows
    store.close()
    print(rows)


def callgrind(args: list[str], out: Path) -> tuple[int, str]:
    """(instructions, stdout) of ``python args…`` under callgrind (its output file: ``out``)."""
    cmd = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", sys.executable,
           *args]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, check=True)
    found = re.search(r"Collected : (\d+)", proc.stderr)
    if found is None:
        raise SystemExit(f"callgrind printed no count:\n{proc.stderr[-2000:]}")
    out.unlink(missing_ok=True)
    return int(found.group(1)), proc.stdout


def instructions(workdir: Path, counties: int) -> tuple[int, int]:
    """(instructions, rows imported) of one child process under callgrind."""
    count, stdout = callgrind(
        [__file__, "--child", str(workdir), "--counties", str(counties)],
        workdir / f"callgrind-{counties}.out",
    )
    return count, int(stdout.strip().splitlines()[-1])


def main() -> None:
    """Generate the roster, count both runs, print instructions per row."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=20_000, help="roster size (20 counties)")
    ap.add_argument("--counties", type=int, default=2)
    ap.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child, args.counties)
        return
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed")
    sys.path.insert(0, str(Path(__file__).parent))
    import registration as bench

    with tempfile.TemporaryDirectory(prefix="importcg-") as tmp:
        workdir = Path(tmp)
        plan = bench.generate(workdir, args.n, 2025)
        (workdir / "plan.json").write_text(json.dumps(plan))
        base, _ = instructions(workdir, 0)
        total, rows = instructions(workdir, args.counties)
    print(f"start-up (no rows): {base:,} instructions")
    print(f"import of {rows:,} rows: {total:,} instructions")
    print(f"instructions per row: {(total - base) / rows:,.0f}")


if __name__ == "__main__":
    main()
