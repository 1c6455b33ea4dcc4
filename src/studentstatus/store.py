"""``open_store(url)``: one call from a URL to a :class:`~studentstatus.ports.Store`.

========================================  ============================================
URL                                       store
========================================  ============================================
``memory://``                             :class:`~studentstatus.adapters.memory.MemoryStore`
``file:///var/lib/xueji``                 :class:`~studentstatus.adapters.files.FileStore`
``sqlite:///xueji.db``                    :class:`~studentstatus.adapters.sql.SqlStore`
``postgresql+psycopg://user@host/db``     :class:`~studentstatus.adapters.sql.SqlStore`
``mysql+pymysql://user@host/db``          :class:`~studentstatus.adapters.sql.SqlStore`
========================================  ============================================

Keyword arguments go to the adapter (``compact_every=`` for files; ``prefix=``,
``schema=``, ``metadata=`` for SQL).  For SQL, ``create`` creates missing tables:
by default on SQLite (a local file or a demo) but not on a server, whose schema
belongs to the Alembic migrations.  SQLAlchemy is imported only for SQL URLs.

>>> store = open_store("memory://")
>>> type(store).__name__
'MemoryStore'
>>> open_store("ftp://example.org/x")
Traceback (most recent call last):
...
studentstatus.errors.StorageError: unsupported store URL scheme 'ftp'...
"""

from __future__ import annotations

import os
from typing import Any, cast
from urllib.parse import unquote, urlsplit

from studentstatus.errors import StorageError
from studentstatus.ports import Store

__all__ = ["open_store"]

_SQL_SCHEMES = ("sqlite", "postgresql", "mysql", "mariadb")


def open_store(url: str | os.PathLike[str], *, create: bool | None = None, **kw: Any) -> Store:
    """Open the store that ``url`` names (see the module docstring for the schemes).

    A plain path (no scheme) is a file store directory.  Keyword arguments go to the
    store's class; every store takes ``audit_key``, the host's key under which audit
    entries are sealed (:mod:`studentstatus.services.audit`).

    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     store = open_store(f"file://{tmp}")
    ...     type(store).__name__
    ...     store.close()
    'FileStore'
    """
    text = os.fspath(url)
    scheme = urlsplit(text).scheme.lower() if "://" in text else ""
    base = scheme.split("+", 1)[0]
    if base == "memory":
        from studentstatus.adapters.memory import MemoryStore

        return MemoryStore(audit_key=kw.get("audit_key"))
    if base in ("file", ""):
        from studentstatus.adapters.files import FileStore

        parts = urlsplit(text)
        host = "" if parts.netloc in ("", "localhost") else parts.netloc
        path = unquote(host + parts.path) if scheme else text
        if not path:
            msg = f"file store URL needs a path: {text!r} / 文件存储地址缺少路径"
            raise StorageError(msg)
        return FileStore(path, **kw)
    if base in _SQL_SCHEMES:
        from studentstatus.adapters.sql import SqlStore

        make = (base == "sqlite") if create is None else create
        # cast: SqlUnitOfWork declares concrete repository classes as its attributes.
        return cast(Store, SqlStore(text, create=make, **kw))
    msg = (
        f"unsupported store URL scheme {scheme!r}: use memory://, file:///path, sqlite:///path, "
        "postgresql+psycopg://… or mysql+pymysql://… / 不支持的存储地址"
    )
    raise StorageError(msg)
