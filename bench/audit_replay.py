"""Benchmark: ``audit verify`` with the replay, on N records (not a test).

Builds a keyed SQLite (or PostgreSQL) store of N ACTIVE records — each with its child,
its REGISTER and APPROVE events and their ``register`` / ``approve`` audit entries (the
approval's carrying the child's keyed digest), written in chunks straight through the
ports (set-up, not measured) — then times, in a fresh process, the chain's verification
alone and the chain with the replay, and prints the verifying process's peak RSS (flat:
the records are streamed).

    .venv/bin/python bench/audit_replay.py --n 20000 100000
    .venv/bin/python bench/audit_replay.py --n 100000 --store postgresql+psycopg://postgres@127.0.0.1:5432/test
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, date, datetime
from pathlib import Path

from studentstatus.adapters.sql import SqlStore
from studentstatus.domain import machine
from studentstatus.domain.audit import AuditKey
from studentstatus.domain.enums import ChangeKind, Grade, KindergartenType, Sex
from studentstatus.domain.model import (
    Child,
    DocumentKind,
    Guardian,
    IdentityDocument,
    Kindergarten,
    Licence,
)
from studentstatus.domain.policy import Policy
from studentstatus.ids.resident import check_digit
from studentstatus.services.audit import audit_fields, child_digest, verify

KEY = AuditKey(b"bench key bench key bench key!!")
PREFIX = "bench_"
KG = Kindergarten(
    "1111000001", "x", "园", "110105", KindergartenType.PUBLIC,
    licences=(Licence("L", "c", date(2015, 1, 1), date(2035, 1, 1)),),
)  # fmt: skip
AT = datetime(2025, 9, 1, 8, tzinfo=UTC)
DAY = date(2025, 9, 1)


def _number(i: int) -> str:
    body = f"11010520201003{(i * 2 + 1) % 1000:03d}"
    return body + check_digit(body)


def build(url: str, n: int, chunk: int = 5000) -> None:
    """Fill a fresh store at ``url`` with ``n`` records (see the module)."""
    store = SqlStore(url, create=True, audit_key=KEY, prefix=PREFIX)
    policy = Policy()
    guardian = Guardian("家长", "mother", "+8613800138000")
    with store.unit_of_work() as uow:
        uow.kindergartens.add(KG)
        uow.commit()
    for start in range(0, n, chunk):
        kids, records, events, audits = [], [], [], []
        for i in range(start, min(n, start + chunk)):
            kid = Child(
                f"c{i:07d}", f"童{i}", Sex.M, date(2020, 10, 3),
                IdentityDocument(DocumentKind.RESIDENT, _number(i)), guardians=(guardian,),
            )  # fmt: skip
            ctx = machine.Context(DAY, policy, kindergarten=KG, child=kid)
            register = machine.Change(
                ChangeKind.REGISTER, DAY, grade=Grade.MIDDLE, child_id=kid.id,
                temp_number=f"L{i:08d}",
            )  # fmt: skip
            rec, e1 = machine.apply(None, register, context=ctx, recorded_at=AT,
                                    record_id=f"r{i:07d}")  # fmt: skip
            active, e2 = machine.apply(
                rec, machine.Change(ChangeKind.APPROVE, DAY), context=ctx, recorded_at=AT
            )
            kids.append(kid)
            records.append(active)
            events += [e1, e2]
            audits.append((
                "kindergarten:1111000001", "register", rec.id, "", {},
                {"state": "PENDING", "kindergarten_code": KG.school_code, "grade": "MIDDLE",
                 "temp_number": rec.temp_number, "child_id": kid.id},
            ))  # fmt: skip
            audits.append((
                "county:110105", "approve", rec.id, "", {"state": "PENDING"},
                {"state": "ACTIVE", "county_confirmed": False, **child_digest(KEY, kid)},
            ))  # fmt: skip
        with store.unit_of_work() as uow:
            uow.children.add_many(kids)
            uow.records.add_many(records)
            uow.changes.append_many(events)
            audit_fields(uow, audits, at=AT)
            uow.commit()
    store.close()


def measure(url: str) -> None:
    """Time the verification of the store at ``url`` (run in its own process)."""
    store = SqlStore(url, audit_key=KEY, prefix=PREFIX)
    t = time.perf_counter()
    chain = verify(store)
    chain_s = time.perf_counter() - t
    t = time.perf_counter()
    full = verify(store, replay=True)
    full_s = time.perf_counter() - t
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    print(
        f"records {full.replayed:>9,}  entries {chain.checked:>9,}  chain {chain_s:6.1f} s  "
        f"chain+replay {full_s:6.1f} s  ok {chain.ok and full.ok}  peak RSS {rss} MB"
    )
    store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, nargs="+", default=[20000])
    parser.add_argument("--store", default="", help="a SQL URL (default: a SQLite file)")
    parser.add_argument("--measure", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        measure(args.measure)
        return
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.n:
            url = args.store or f"sqlite:///{Path(tmp) / f'audit-{n}.db'}"
            build(url, n)
            subprocess.run([sys.executable, __file__, "--measure", url], check=True)
            if args.store:
                dropped = SqlStore(url, prefix=PREFIX)
                dropped.drop_schema()
                dropped.close()


if __name__ == "__main__":
    main()
