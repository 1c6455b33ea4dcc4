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
studentstatus.errors.StorageError: add record failed: OperationalError (database error)
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

__all__ = ["raise_translated", "translate_error", "translating"]

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
    return StorageError(f"{what} failed: {name}{' ' + code if code else ''} (database error)")


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
