"""Benchmark: a store per request on a host's connection, built anew or bound.

A portal that runs the library inside its own transactions hands it the request's
connection.  ``SqlStore(connection)`` builds the table definitions every time;
``app.bound(connection)`` reuses those of one application-wide store.  The bench times
both on the same connection in the same process, then a whole request's worth of work
(bind, one unit of work, one indexed count), and prints the ratio.

    .venv/bin/python bench/binding.py                       # SQLite file
    .venv/bin/python bench/binding.py --url postgresql+psycopg://postgres@127.0.0.1:5432/test
"""

from __future__ import annotations

import argparse
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from studentstatus.adapters.sql import SqlStore


def _engine(url: str) -> sa.Engine:
    engine = sa.create_engine(url)
    if engine.dialect.name == "sqlite":  # the pysqlite recipe: savepoints that nest

        @sa.event.listens_for(engine, "connect")
        def _connect(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.isolation_level = None

        @sa.event.listens_for(engine, "begin")
        def _begin(conn: sa.Connection) -> None:
            conn.exec_driver_sql("BEGIN")

    return engine


def _per_call_ms(fn: Any, n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - start) / n * 1000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--url", help="a database URL (default: a temporary SQLite file)")
    ap.add_argument("--n", type=int, default=2000, help="stores built per measurement")
    args = ap.parse_args()
    tmp = tempfile.TemporaryDirectory(prefix="bindbench-")
    url = args.url or f"sqlite:///{Path(tmp.name) / 'bind.db'}"
    engine = _engine(url)
    prefix = f"b{uuid.uuid4().hex[:8]}_"
    app = SqlStore(engine, prefix=prefix, create=True)
    try:
        with engine.connect() as conn:

            def request(store: SqlStore) -> None:
                with store.unit_of_work() as uow:
                    uow.records.count(kindergarten_code="1111000001")

            new = _per_call_ms(lambda: SqlStore(conn, prefix=prefix), max(args.n // 10, 50))
            bound = _per_call_ms(lambda: app.bound(conn), args.n * 10)
            new_request = _per_call_ms(
                lambda: request(SqlStore(conn, prefix=prefix)), max(args.n // 10, 50)
            )
            bound_request = _per_call_ms(lambda: request(app.bound(conn)), args.n)
            conn.rollback()
    finally:
        app.drop_schema()
        app.close()
        engine.dispose()
    print(f"store: {engine.dialect.name}")
    print(f"  SqlStore(connection)       {new:8.3f} ms")
    print(f"  app.bound(connection)      {bound:8.4f} ms   {new / bound:,.0f}x faster")
    print(f"  request, new store         {new_request:8.3f} ms  (bind + unit of work + count)")
    print(
        f"  request, bound store       {bound_request:8.3f} ms  {new_request / bound_request:.1f}x"
    )


if __name__ == "__main__":
    main()
