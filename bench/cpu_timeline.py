"""Benchmark helper: who uses the CPU during an import, sampled every 0.1 s (not a test).

Run it beside ``bench/registration.py`` (Linux: reads ``/proc``).  Every ``--every`` seconds
it adds up the CPU time the importing process (``registration.py``), the checker processes
(``multiprocessing`` children) and the PostgreSQL server processes used since the last
sample, writes one line per sample (seconds, importer, checkers, server — in cores), and at
the end prints how much of the time the checkers were idle while a core was left unused:
that is how the idle end of every county file was found.

    .venv/bin/python bench/registration.py --stores postgres --import-only --workers 2 &
    sleep 20; .venv/bin/python bench/cpu_timeline.py --seconds 170 --out /tmp/timeline.txt
"""

from __future__ import annotations

import argparse
import os
import time
from collections import defaultdict
from pathlib import Path

GROUPS = ("importer", "checkers", "server")


def _ticks(pid: str) -> int | None:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return int(fields[11]) + int(fields[12])  # utime + stime


def _groups() -> dict[str, list[str]]:
    out: dict[str, list[str]] = defaultdict(list)
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            comm = Path(f"/proc/{pid}/comm").read_text().strip()
        except OSError:
            continue
        if "multiprocessing" in cmd:
            out["checkers"].append(pid)
        elif "registration.py" in cmd:
            out["importer"].append(pid)
        elif comm.startswith("postgres"):
            out["server"].append(pid)
    return out


def main() -> None:
    """Sample until ``--seconds`` have passed; write the lines and print the summary."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--every", type=float, default=0.1)
    ap.add_argument("--seconds", type=float, default=170.0)
    ap.add_argument("--out", type=Path, default=Path("cpu-timeline.txt"))
    ap.add_argument("--cores", type=int, default=os.cpu_count() or 1)
    args = ap.parse_args()
    hz = os.sysconf("SC_CLK_TCK")
    groups, listed = _groups(), time.monotonic()
    last: dict[str, int | None] = {p: _ticks(p) for ps in groups.values() for p in ps}
    rows: list[tuple[float, ...]] = []
    start = time.monotonic()
    with args.out.open("w") as out:
        while time.monotonic() - start < args.seconds:
            time.sleep(args.every)
            if time.monotonic() - listed > 2:  # new processes (the next county's checkers…)
                groups, listed = _groups(), time.monotonic()
            used = []
            for g in GROUPS:
                total = 0
                for pid in groups.get(g, []):
                    now, before = _ticks(pid), last.get(pid)
                    if now is not None and before is not None:
                        total += now - before
                    last[pid] = now
                used.append(total / hz / args.every)
            row = (round(time.monotonic() - start, 2), *(round(u, 2) for u in used))
            rows.append(row)
            out.write(" ".join(map(str, row)) + "\n")
    idle_off = idle_all = 0.0
    for _, importer, checkers, server in rows:
        idle = max(0.0, args.cores - importer - checkers - server) * args.every
        idle_all += idle
        if checkers < 0.3:
            idle_off += idle
    share = 100 * idle_all / max(len(rows) * args.every * args.cores, 1e-9)
    print(f"{len(rows)} samples; unused core-seconds {idle_all:.1f} ({share:.1f}%),")
    print(f"of which while the checkers were idle: {idle_off:.1f}")


if __name__ == "__main__":
    main()
