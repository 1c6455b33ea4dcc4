"""PostgreSQL: the bulk keyed look-ups stay on their indexes inside one long unit of work.

An import writes up to millions of rows in one unit of work; no ANALYZE sees them before
the commit, and without statistics the planner scanned the whole table for every
``IN (…)`` list (a 1,000,000-row import spent minutes of server time there).
"""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

import attrs
import pytest
import sqlalchemy as sa

from studentstatus.domain.enums import Sex
from studentstatus.domain.model import Child, DocumentKind, IdentityDocument

pytestmark = pytest.mark.postgres


def _plan(conn: Any, query: sa.Select[Any]) -> str:
    sql = query.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True})
    return "\n".join(r[0] for r in conn.exec_driver_sql(f"EXPLAIN {sql}"))


def test_keyed_lookups_use_the_index_on_a_table_grown_in_this_unit(postgres_url: str) -> None:
    from studentstatus.adapters.sql import SqlStore

    store = SqlStore(postgres_url, prefix=f"plan{uuid.uuid4().hex[:8]}_", create=True)
    try:
        kids = [
            Child(f"c{i:06d}", f"孩子{i}", Sex.M, date(2020, 1, 1 + i % 28),
                  IdentityDocument(DocumentKind.PASSPORT, f"E{i:08d}"))
            for i in range(20_000)
        ]  # fmt: skip
        statements: list[str] = []
        with store.unit_of_work() as uow:
            uow.children.add_many(kids)
            repo: Any = uow.children
            table = store.tables.by_port["children"]
            numbers = [f"E{i:08d}" for i in range(0, 20_000, 50)]
            query = sa.select(table).where(table.c.document_number.in_(numbers))
            with repo._by_index():
                assert "Seq Scan" not in _plan(repo._conn, query)
            # the setting is back as it was after the look-up: the default, or the host's own
            show = "SHOW enable_seqscan"
            assert repo._conn.exec_driver_sql(show).scalar() == "on"
            repo._conn.exec_driver_sql("SET LOCAL enable_seqscan = off")
            with repo._by_index(), repo._by_index():  # nested
                pass
            assert repo._conn.exec_driver_sql(show).scalar() == "off"
            repo._conn.exec_driver_sql("SET LOCAL enable_seqscan = on")
            # also after an error inside (and the unit is still usable)
            with pytest.raises(sa.exc.DBAPIError), repo._by_index():
                repo._conn.exec_driver_sql("SELECT 1/0")
            assert repo._conn.exec_driver_sql(show).scalar() == "on"

            @sa.event.listens_for(repo._conn, "before_cursor_execute")
            def seen(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
                statements.append(statement)

            found = uow.children.find_by_documents(numbers)
            assert len(found) == len(numbers)
            assert "SET LOCAL enable_seqscan = off" in statements
            assert statements[-1].startswith("ROLLBACK TO SAVEPOINT")
            uow.children.add(attrs.evolve(kids[0], id="c-after"))  # the unit still writes
            uow.commit()
        with store.unit_of_work() as uow:
            assert uow.children.get("c-after").name == kids[0].name
    finally:
        store.drop_schema()
        store.close()
