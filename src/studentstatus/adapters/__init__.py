"""Storage adapters: each implements the :mod:`studentstatus.ports` protocols.

* :mod:`studentstatus.adapters.memory` — :class:`MemoryStore`, the reference
  implementation and the fake for unit tests;
* :mod:`studentstatus.adapters.files` — :class:`FileStore`, a JSON Lines
  directory with a write-ahead journal, safe for several processes;
* :mod:`studentstatus.adapters.sql` — ``SqlStore`` on SQLite, PostgreSQL and
  MySQL/MariaDB (imported lazily: SQLAlchemy loads only when it is used).

Hosts usually call :func:`studentstatus.open_store` with a URL instead.

>>> from studentstatus.adapters import MemoryStore
>>> MemoryStore().unit_of_work().records.count()
0
"""

from __future__ import annotations

from studentstatus.adapters.files import FileStore
from studentstatus.adapters.memory import MemoryStore

__all__ = ["FileStore", "MemoryStore"]
