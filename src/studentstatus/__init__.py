"""studentstatus: China's preschool student-status (学籍) rules as a library.

Pure checks live in :mod:`studentstatus.ids`, :mod:`studentstatus.regions`,
:mod:`studentstatus.phones` and :mod:`studentstatus.domain`; storage adapters
in :mod:`studentstatus.adapters`; use cases in :mod:`studentstatus.services`;
test helpers for hosts in :mod:`studentstatus.testing`.  :func:`compiled_modules` tells
whether this installation is the optional compiled build.

>>> import studentstatus
>>> studentstatus.__version__
'0.1.0'
"""

from __future__ import annotations

from studentstatus._build import compiled_modules
from studentstatus._version import __version__
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
from studentstatus.store import open_store

__all__ = [
    "ConflictError",
    "InvalidNumber",
    "NotFoundError",
    "PermissionDenied",
    "RuleViolations",
    "StorageError",
    "StudentStatusError",
    "ValidationError",
    "Violation",
    "__version__",
    "compiled_modules",
    "open_store",
]
