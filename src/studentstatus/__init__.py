"""studentstatus: China's preschool student-status (学籍) rules as a library.

Pure checks live in :mod:`studentstatus.ids`, :mod:`studentstatus.regions`,
:mod:`studentstatus.phones` and :mod:`studentstatus.domain`; storage adapters
in :mod:`studentstatus.adapters`; use cases in :mod:`studentstatus.services`;
test helpers for hosts in :mod:`studentstatus.testing`.  The names a host uses every day
are importable from here: the errors, :class:`Operator`, :class:`Runtime` and its
clocks, the :class:`Store` and :class:`UnitOfWork` ports, the enums :class:`ChangeKind`,
:class:`Grade` and :class:`State`, and :func:`open_store`.

>>> import studentstatus
>>> studentstatus.__version__
'0.1.0'
>>> from studentstatus import Operator, Runtime, open_store
>>> rt = Runtime(open_store("memory://"))
>>> str(Operator.parse("county:110105")), rt.policy.cutoff_month
('county:110105', 8)
"""

from __future__ import annotations

from studentstatus._version import __version__
from studentstatus.domain.enums import ChangeKind, Grade, State
from studentstatus.domain.jurisdiction import Operator
from studentstatus.errors import (
    ConflictError,
    InvalidNumber,
    NotFoundError,
    PermissionDenied,
    RuleViolations,
    StorageError,
    StudentStatusError,
    ValidationError,
    Violation,
)
from studentstatus.ports import Store, UnitOfWork
from studentstatus.services.runtime import FixedClock, Runtime, SystemClock
from studentstatus.store import open_store

__all__ = [
    "ChangeKind",
    "ConflictError",
    "FixedClock",
    "Grade",
    "InvalidNumber",
    "NotFoundError",
    "Operator",
    "PermissionDenied",
    "RuleViolations",
    "Runtime",
    "State",
    "StorageError",
    "Store",
    "StudentStatusError",
    "SystemClock",
    "UnitOfWork",
    "ValidationError",
    "Violation",
    "__version__",
    "open_store",
]
