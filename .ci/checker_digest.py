"""CI: the SHA-256 of what one checker process sends for a generated roster (not a test).

Run by ``.ci/run`` with the pure install and with the compiled one: the two digests must be
equal, i.e. the compiled build checks the rows and encodes them (PostgreSQL ``COPY`` text
and SQLite parameters) exactly as the pure one does. Prints ``<build> <encoder> <bytes>
<digest>`` per encoder.

    .venv/bin/python .ci/checker_digest.py
"""

from __future__ import annotations

import hashlib
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

import checker_instructions  # noqa: E402  (bench/: runs one checker process's work)
import registration as bench  # noqa: E402  (bench/registration.py: the roster generator)

from studentstatus import compiled_modules  # noqa: E402
from studentstatus.adapters.sql import SqlStore  # noqa: E402
from studentstatus.adapters.sql.copy import CopyEncoder  # noqa: E402
from studentstatus.adapters.sql.params import ParamEncoder  # noqa: E402
from studentstatus.adapters.sql.tables import build_tables  # noqa: E402


class _Digest:
    """Stands in for the pipe: hashes the frames the checker sends."""

    def __init__(self) -> None:
        self.hash = hashlib.sha256()
        self.size = 0

    def send_bytes(self, data: bytes) -> None:
        self.hash.update(data)
        self.size += len(data)


def digest(workdir: Path, plan: dict[str, Any], encoder: Any) -> _Digest:
    """Run checker 0 of 1 over the first county's file with ``encoder``."""
    sink = _Digest()
    path = workdir / f"roster-{plan['counties'][0]}.csv"
    checker_instructions.child(path, workdir, 1, encoder=encoder, sink=sink)
    return sink


def main() -> None:
    """Generate a roster (20 counties, 2,000 rows each) and print both digests."""
    build = "compiled" if compiled_modules() else "pure"
    with tempfile.TemporaryDirectory(prefix="digest-") as tmp:
        workdir = Path(tmp)
        plan = bench.generate(workdir, 40_000, 2025)
        (workdir / "plan.json").write_text(json.dumps(plan))
        store = SqlStore(f"sqlite:///{workdir / 'enc.db'}", create=True)
        encoders = {"copy": CopyEncoder.for_tables(build_tables()),
                    "params": ParamEncoder.for_store(store)}  # fmt: skip
        for name, encoder in encoders.items():
            sink = digest(workdir, plan, encoder)
            print(build, name, sink.size, sink.hash.hexdigest())
        store.close()


if __name__ == "__main__":
    main()
