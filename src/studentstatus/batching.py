"""Working through many items a batch at a time: the one batching helper of the package.

Services and adapters read and write in chunks so that memory stays flat whatever the
count: :func:`chunked` splits any iterable as it streams, :func:`spooled` parks ids in a
temporary file so that a service can close the unit of work that selected them and then
work through them chunk by chunk, each chunk in its own unit.

>>> [len(c) for c in chunked(range(5), 2)]
[2, 2, 1]
"""

from __future__ import annotations

import itertools
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import TypeVar

__all__ = ["chunked", "spooled"]

T = TypeVar("T")


def chunked(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """Split an iterable into lists of at most ``size`` items (streaming).

    >>> list(chunked("abcde", 2))
    [['a', 'b'], ['c', 'd'], ['e']]
    >>> list(chunked([], 3))
    []
    """
    if size < 1:
        msg = f"chunk size must be at least 1, not {size}"
        raise ValueError(msg)
    it = iter(items)
    while chunk := list(itertools.islice(it, size)):
        yield chunk


@contextmanager
def spooled(ids: Iterable[str], chunk_size: int) -> Iterator[Iterator[list[str]]]:
    """Write ``ids`` to a temporary file, then yield them back in chunks (flat memory).

    Bulk services select the records to work on in one read pass, spool their
    ids, close that unit of work, and then work through the ids chunk by
    chunk, each chunk in its own unit of work.  That is safe on every adapter
    (no writes while a result set is open) and keeps memory flat in N.

    >>> with spooled(["a", "b", "c"], 2) as chunks:
    ...     list(chunks)
    [['a', 'b'], ['c']]
    """
    with tempfile.TemporaryFile("w+", encoding="utf-8") as fh:
        for item in ids:
            fh.write(item + "\n")
        fh.seek(0)
        yield chunked((line.rstrip("\n") for line in fh), chunk_size)
