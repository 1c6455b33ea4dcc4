"""Translation of database-driver errors into :mod:`studentstatus.errors`.

Nothing from SQLAlchemy or a DBAPI driver escapes the adapter: integrity
errors (duplicate key, unique violation) become
:class:`~studentstatus.errors.ConflictError`, serialization failures and
deadlocks also become :class:`ConflictError` (the unit can be retried), and
every other database error becomes :class:`~studentstatus.errors.StorageError`.
Messages keep the driver's error class name and SQLSTATE (or MySQL error code)
but not its text, which quotes the statement's parameters and row values
(identity numbers).  The driver's exception is not chained either: the error
is raised with neither ``__cause__`` nor ``__context__`` (not merely
suppressed), so a host that logs it with ``logging.exception`` — or a
traceback printer that walks the chain — never reaches the driver's text.

>>> import sqlalchemy as sa
>>> err = sa.exc.IntegrityError("INSERT …", {}, Exception("UNIQUE constraint failed"))
>>> type(translate_error(err)).__name__
'ConflictError'
>>> with translating("add record"):
...     raise sa.exc.OperationalError("SELECT 1", {}, Exception("disk I/O error"))
Traceback (most recent call last):
...
studentstatus.adapters.sql.errors.StoreFailure: add record failed: OperationalError (database error)

A failure also says, in ``cause``, what it most likely means (read from the
driver's error code or text, which is not kept): ``missing_schema`` (run
``studentstatus init``), ``missing_database``, ``unreachable`` (is the server
running?), ``auth``, ``cannot_open`` (an SQLite file's directory), ``read_only``
or ``""``; ``message_zh`` is its Chinese message.

>>> err = translate_error(sa.exc.OperationalError("SELECT", {}, Exception("no such table: x")))
>>> err.cause, err.message_zh
('missing_schema', '数据库操作失败（storage operation）：OperationalError')
>>> try:
...     with translating("add child"):
...         raise sa.exc.IntegrityError("INSERT …", {"n": "11010520200315002X"}, Exception("x"))
... except ConflictError as err:
...     print(err, err.__cause__, err.__context__)
add child conflicts with stored data: IntegrityError (uniqueness) None None
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import NoReturn

import sqlalchemy as sa

from studentstatus.errors import ConflictError, StorageError, StudentStatusError, TryAgain

__all__ = ["StoreFailure", "raise_translated", "translate_error", "translating"]

# SQLSTATE classes / MySQL codes that mean "lost a race: retry the unit".
_RETRYABLE_SQLSTATES = {"40001", "40P01", "55P03"}
_RETRYABLE_MYSQL_CODES = {1205, 1213}  # lock wait timeout, deadlock
_INTEGRITY_MYSQL_CODES = {1062, 1586, 1022}
# What a unit collided on, by the operation that lost the race (for TryAgain's message).
_COLLIDED = {
    "claim identity keys": "identity claims",
    "lock audit chain": "audit chain",
    "append audit": "audit chain",
    "claim numbers": "temporary numbers",
}


class StoreFailure(StorageError):
    """A :class:`~studentstatus.errors.StorageError` with its likely ``cause`` and Chinese text.

    >>> StoreFailure("connect failed", cause="unreachable", message_zh="连接失败").cause
    'unreachable'
    """

    def __init__(self, message: str, *, cause: str = "", message_zh: str = "") -> None:
        super().__init__(message)
        self.cause = cause
        self.message_en = str(self)
        self.message_zh = message_zh or self.message_en


# SQLSTATEs / MySQL codes / driver texts, by what they most likely mean.
_CAUSE_SQLSTATES = {
    "42P01": "missing_schema",  # undefined_table
    "3F000": "missing_schema",  # invalid_schema_name
    "3D000": "missing_database",  # invalid_catalog_name
    "28P01": "auth",
    "28000": "auth",
}
_CAUSE_MYSQL = {
    1146: "missing_schema",
    1049: "missing_database",
    1045: "auth",
    2002: "unreachable",
    2003: "unreachable",
    2005: "unreachable",
    2006: "unreachable",
    2013: "unreachable",
}
_CAUSE_TEXTS = (
    ("no such table", "missing_schema"),
    ("does not exist", "missing_schema"),
    ("unable to open database file", "cannot_open"),
    ("readonly database", "read_only"),
    ("password authentication failed", "auth"),
    ("connection refused", "unreachable"),
    ("could not connect", "unreachable"),
    ("could not translate host name", "unreachable"),
    ("name or service not known", "unreachable"),
    ("timeout expired", "unreachable"),
    ("connection timed out", "unreachable"),
    ("can't connect", "unreachable"),
)


def _cause(orig: BaseException | None, sqlstate: str | None, mysql_code: int | None) -> str:
    """What a driver error most likely means (its text is read here, never kept)."""
    if sqlstate in _CAUSE_SQLSTATES:
        return _CAUSE_SQLSTATES[sqlstate]
    if sqlstate and sqlstate.startswith("08"):
        return "unreachable"
    if mysql_code in _CAUSE_MYSQL:
        return _CAUSE_MYSQL[mysql_code]
    text = str(orig).lower()
    if "database" in text and "does not exist" in text:
        return "missing_database"
    for needle, cause in _CAUSE_TEXTS:
        if needle in text:
            return cause
    return ""


def _driver_code(orig: BaseException | None) -> tuple[str | None, int | None]:
    sqlstate = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    args = getattr(orig, "args", ())
    mysql_code = args[0] if args and isinstance(args[0], int) else None
    return (str(sqlstate) if sqlstate else None), mysql_code


def translate_error(exc: BaseException, what: str = "storage operation") -> StorageError:
    """The :class:`StorageError` (or :class:`ConflictError`) standing for a driver error.

    Also accepts raw DBAPI exceptions (e.g. from a psycopg ``COPY``).

    >>> translate_error(ValueError("x")).code
    'storage'
    """
    orig: BaseException | None = exc.orig if isinstance(exc, sa.exc.DBAPIError) else exc
    sqlstate, mysql_code = _driver_code(orig)
    name = type(exc if isinstance(exc, sa.exc.SQLAlchemyError) else orig).__name__
    integrity = isinstance(exc, sa.exc.IntegrityError) or "IntegrityError" in {
        k.__name__ for k in type(orig).__mro__
    }
    integrity = (
        integrity or (sqlstate or "").startswith("23") or mysql_code in _INTEGRITY_MYSQL_CODES
    )
    code = sqlstate or (str(mysql_code) if mysql_code is not None else "")
    if integrity:
        return ConflictError(
            f"{what} conflicts with stored data: {name}{' ' + code if code else ''} (uniqueness)"
        )
    if sqlstate in _RETRYABLE_SQLSTATES or mysql_code in _RETRYABLE_MYSQL_CODES:
        return TryAgain(what, collided=_COLLIDED.get(what, ""), detail=f"{name} {code}".strip())
    if "database is locked" in str(orig):
        return ConflictError(f"{what} could not get the SQLite write lock: {name} (busy)")
    suffix = f"{name}{' ' + code if code else ''}"
    return StoreFailure(
        f"{what} failed: {suffix} (database error)",
        cause=_cause(orig, sqlstate, mysql_code),
        message_zh=f"数据库操作失败（{what}）：{suffix}",
    )


@contextmanager
def translating(what: str = "storage operation") -> Iterator[None]:
    """Re-raise driver errors inside the block as :class:`StorageError` subclasses.

    Errors of this library (``NotFoundError``, ``ConflictError``…) pass through.

    >>> with translating():
    ...     pass
    """
    try:
        yield
    except StudentStatusError:
        raise
    except sa.exc.SQLAlchemyError as exc:
        raise_translated(exc, what)
    except Exception as exc:
        if _is_dbapi_error(exc):
            raise_translated(exc, what)
        raise


def raise_translated(exc: BaseException, what: str = "storage operation") -> NoReturn:
    """Raise :func:`translate_error` of ``exc`` with no link back to ``exc``.

    ``raise … from None`` only *suppresses* the context: ``__context__`` would still
    hold the driver's exception (its text quotes the statement's parameters).  Both
    ``__cause__`` and ``__context__`` are cleared here, and the re-raise keeps them
    clear.  Call it inside the ``except`` block that caught ``exc``.

    >>> try:
    ...     try:
    ...         raise ValueError("VALUES ('11010520200315002X')")
    ...     except ValueError as exc:
    ...         raise_translated(exc, "COPY into children")
    ... except StorageError as err:
    ...     print(err.__cause__, err.__context__, err.__suppress_context__)
    None None True
    """
    err = translate_error(exc, what)
    del exc
    try:
        raise err
    except StorageError:
        # raising inside the caller's ``except`` set __context__ to the driver's error
        err.__cause__ = None
        err.__context__ = None
        err.__suppress_context__ = True
        raise  # a bare re-raise does not chain again


def _is_dbapi_error(exc: BaseException) -> bool:
    """Whether ``exc`` comes from a DBAPI driver (PEP 249 ``Error`` hierarchy)."""
    module = type(exc).__module__.split(".")[0]
    return module in {"psycopg", "psycopg2", "pymysql", "sqlite3", "MySQLdb"}
