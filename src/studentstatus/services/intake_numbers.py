"""Temporary (L) numbers of a bulk import: drawn against a filter, not looked up one by one.

A bulk import keeps one piece of per-row state: a Bloom filter (:class:`Bloom`)
of the numbers the store and the file hold — 2 bytes a row, about 0.25% false
positives, 5 MiB for a million numbers — so that an L number's draw needs no
look-up in the store (:class:`FilteredDraws`); a false positive costs one more
draw.  The filter is filled at the start of an import (or of a batch of files)
with the temporary numbers ever issued in the regions the import draws for
(:func:`loaded_filter`: a range of the number registry's index per region, so a
county's import reads its county's numbers, not the province's): a bulk import
pays for it,
:func:`~studentstatus.services.intake.register_child` does not (it tests its one
number by primary key).  Numbers are hashed with :func:`number_hash`, the same
in every process, so checker processes draw against copies of the import's filter.

>>> import random
>>> draws = FilteredDraws(Bloom(bits=1 << 10), random.Random(3))
>>> from datetime import date
>>> number, h = draws.draw("110105", date(2020, 3, 15))
>>> number[:15], h == number_hash(number), h in draws.filter
('L11010520200315', True, False)
>>> draws.keep(h); h in draws.filter
True
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from datetime import date

from studentstatus.domain import numbers as national
from studentstatus.domain.numbers import RandomSource
from studentstatus.ports import UnitOfWork

__all__ = ["Bloom", "FilteredDraws", "loaded_filter", "number_hash"]


def number_hash(number: str) -> int:
    """A 64-bit hash of a number, the same in every process.

    ``hash(str)`` is salted per process; checker processes test their L-number
    draws against a copy of the import's filter, so the filter uses this one.

    >>> number_hash("L110105202003150001") == number_hash("L110105202003150001")
    True
    >>> 0 <= number_hash("x") < 2**64
    True
    """
    return int.from_bytes(hashlib.blake2b(number.encode(), digest_size=8).digest(), "little")


class Bloom:
    """A scalable Bloom filter of 64-bit hashes: 16 bits and 4 probes an item, about 0.25%
    false positives in a full layer; the first layer (1 MiB) holds 524,288 items, each next
    one four times the last (so a million items take two layers, 5 MiB).

    A false positive only costs one more random draw of an L number; there are no
    false negatives.

    >>> b = Bloom(bits=1 << 10)
    >>> [b.seen(h) for h in (1, 2, 1, -5, 2**63 - 1, -5)]
    [False, False, True, False, False, True]
    >>> 2 in b, 3 in b
    (True, False)
    """

    def __init__(self, bits: int = 1 << 23) -> None:  # a power of two
        self._layers: list[tuple[bytearray, int]] = []
        self._count = 0
        self._capacity = 0
        self._next_bits = bits
        self._grow()

    def _grow(self) -> None:
        bits = self._next_bits
        self._layers.append((bytearray(bits // 8), bits))
        self._capacity += bits // 16
        self._next_bits = bits * 4

    def add(self, h: int) -> None:
        """Add a hash."""
        if self._count >= self._capacity:
            self._grow()
        data, bits = self._layers[-1]
        mask = bits - 1
        h1 = h & 0xFFFFFFFF
        h2 = ((h >> 32) & 0xFFFFFFFF) | 1
        # four probes h1 + i*h2 (double hashing), unrolled
        p = h1 & mask
        data[p >> 3] |= 1 << (p & 7)
        p = (p + h2) & mask
        data[p >> 3] |= 1 << (p & 7)
        p = (p + h2) & mask
        data[p >> 3] |= 1 << (p & 7)
        p = (p + h2) & mask
        data[p >> 3] |= 1 << (p & 7)
        self._count += 1

    def __contains__(self, h: object) -> bool:
        assert isinstance(h, int)
        return _in_layers(self._layers, h & 0xFFFFFFFF, ((h >> 32) & 0xFFFFFFFF) | 1)

    def seen(self, h: int) -> bool:
        """Add ``h``; whether it may have been added before (never ``False`` when it was).

        ``h in self`` then :meth:`add`, each probe position made once: the
        newest layer's bits are tested and set in one pass.
        """
        if self._count >= self._capacity:
            self._grow()
        self._count += 1
        h1 = h & 0xFFFFFFFF
        h2 = ((h >> 32) & 0xFFFFFFFF) | 1
        layers = self._layers
        found = len(layers) > 1 and _in_layers(layers[:-1], h1, h2)  # older: tested only
        data, bits = layers[-1]
        mask = bits - 1
        p = h1 & mask
        i, b = p >> 3, 1 << (p & 7)
        x = data[i]
        set_before = x & b
        data[i] = x | b
        p = (p + h2) & mask
        i, b = p >> 3, 1 << (p & 7)
        x = data[i]
        set_before = set_before and x & b
        data[i] = x | b
        p = (p + h2) & mask
        i, b = p >> 3, 1 << (p & 7)
        x = data[i]
        set_before = set_before and x & b
        data[i] = x | b
        p = (p + h2) & mask
        i, b = p >> 3, 1 << (p & 7)
        x = data[i]
        set_before = set_before and x & b
        data[i] = x | b
        return found or bool(set_before)


def _in_layers(layers: list[tuple[bytearray, int]], h1: int, h2: int) -> bool:
    """Whether any of ``layers`` has the four probe bits of ``(h1, h2)`` set."""
    for data, bits in layers:
        mask = bits - 1
        p = h1 & mask
        if not data[p >> 3] >> (p & 7) & 1:
            continue
        p = (p + h2) & mask
        if not data[p >> 3] >> (p & 7) & 1:
            continue
        p = (p + h2) & mask
        if not data[p >> 3] >> (p & 7) & 1:
            continue
        p = (p + h2) & mask
        if data[p >> 3] >> (p & 7) & 1:
            return True
    return False


def loaded_filter(uow: UnitOfWork, regions: Iterable[str]) -> Bloom:
    """A new filter of every temporary number ever issued in ``regions`` (the only numbers
    a draw for those regions can collide with: an L number starts with ``L`` + region).

    >>> from studentstatus.adapters.memory import MemoryStore
    >>> with MemoryStore().unit_of_work() as uow:
    ...     number_hash("L110105202003150001") in loaded_filter(uow, ["110105"])
    False
    """
    numbers = Bloom()
    for region in sorted(set(regions)):
        for n in uow.numbers.with_prefix("L" + region):
            numbers.add(number_hash(n))
    return numbers


class FilteredDraws:
    """L numbers drawn from ``rng`` until one is not in ``filter`` (a
    :class:`~studentstatus.services.intake_rows.TemporaryNumbers` source); the numbers
    kept go into the filter.  See the module docs for an example.

    ``rng`` may be replaced (with checker processes, each process draws from a residue of
    its own, :class:`~studentstatus.services._parallel.Residue`); ``filter`` may not.
    """

    def __init__(self, filter: Bloom, rng: RandomSource) -> None:
        self.filter = filter
        self.rng = rng
        self.keep: Callable[[int], None] = filter.add
        """Note a number a record uses (its :func:`number_hash`) in the filter."""

    def draw(self, region_code: str, birth_date: date) -> tuple[str, int]:
        """A number not in the filter, and its :func:`number_hash`."""
        for _ in range(1000):
            n = national.temporary_number(region_code, birth_date, self.rng)
            h = number_hash(n)
            if h not in self.filter:
                return n, h
        msg = "no free temporary number for this region and birth date"  # pragma: no cover
        raise RuntimeError(msg)  # pragma: no cover
