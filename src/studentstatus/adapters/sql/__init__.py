"""SQL storage adapter: SQLAlchemy 2 Core on SQLite, PostgreSQL and MySQL/MariaDB.

* :class:`SqlStore` — the :class:`~studentstatus.ports.Store` (URL, Engine or
  the host's Connection; table prefix and schema; bulk paths; COPY on PostgreSQL);
* :func:`build_tables` — the Core tables on a MetaData the host may own;
* :func:`upgrade` / :func:`current` — the Alembic migrations shipped in the package.

>>> store = SqlStore("sqlite://", create=True)
>>> with store.unit_of_work() as uow:
...     uow.numbers.next_sequence("110105", __import__("datetime").date(2020, 3, 15))
1
>>> store.close()
"""

from __future__ import annotations

from studentstatus.adapters.sql.migrate import current, upgrade
from studentstatus.adapters.sql.store import SqlStore, SqlUnitOfWork
from studentstatus.adapters.sql.tables import SqlTables, build_tables

__all__ = ["SqlStore", "SqlTables", "SqlUnitOfWork", "build_tables", "current", "upgrade"]
