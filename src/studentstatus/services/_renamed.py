"""Deprecated names of renamed service functions (one naming scheme: ``get_`` one object,
``list_`` many, ``find_`` a look-up by any reference, a verb for a command)."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
R = TypeVar("R")


def renamed(new: Callable[P, R], old: str) -> Callable[P, R]:
    """``new`` under its former name ``old``, warning (``DeprecationWarning``) on each call.

    >>> def get_thing(x: int) -> int:
    ...     return x
    >>> show_thing = renamed(get_thing, "show_thing")
    >>> import warnings
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     show_thing(3), caught[0].category.__name__
    (3, 'DeprecationWarning')
    """

    def alias(*args: P.args, **kwargs: P.kwargs) -> R:
        warnings.warn(
            f"{old} is deprecated: use {new.__name__} (renamed in 0.1.0)",
            DeprecationWarning,
            stacklevel=2,
        )
        return new(*args, **kwargs)

    alias.__name__ = alias.__qualname__ = old
    alias.__module__ = new.__module__
    alias.__doc__ = f"Deprecated: use :func:`{new.__name__}` (renamed in 0.1.0)."
    return alias
