"""What every service is given: the store, a clock, a random source, policy and calendar.

Services never read the system clock or the ``random`` module themselves; the
host builds one :class:`Runtime` (its composition root) and passes it in.
Tests pass a :class:`FixedClock` and a seeded :class:`random.Random`.

>>> import random
>>> from datetime import datetime, timezone
>>> from studentstatus.adapters.memory import MemoryStore
>>> rt = Runtime(MemoryStore(), FixedClock(datetime(2026, 9, 1, 8, tzinfo=timezone.utc)),
...              random.Random(7))
>>> rt.clock.today()
datetime.date(2026, 9, 1)
>>> rt.policy.cutoff_month
8
"""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta, timezone, tzinfo
from typing import Protocol

import attrs

from studentstatus.domain.calendar import WeekdayCalendar, WorkingDayCalendar
from studentstatus.domain.policy import Policy
from studentstatus.ports import Clock, PopulationRegistry, Store

__all__ = ["CHINA_TZ", "FixedClock", "IdSource", "Runtime", "SystemClock"]

CHINA_TZ: tzinfo = timezone(timedelta(hours=8), "Asia/Shanghai")
"""China Standard Time (UTC+8, no daylight saving): the default for ``today()``."""


@attrs.define
class SystemClock:
    """The real clock; ``today()`` is the date in ``tz`` (China Standard Time by default)."""

    tz: tzinfo = CHINA_TZ

    def now(self) -> datetime:
        """The current time, aware."""
        return datetime.now(UTC).astimezone(self.tz)

    def today(self) -> date:
        """Today's date in ``tz``."""
        return self.now().date()


@attrs.define
class FixedClock:
    """A clock for tests and replays: returns ``at``; :meth:`advance` moves it.

    >>> c = FixedClock(datetime(2026, 1, 1, tzinfo=UTC))
    >>> c.advance(days=2).today()
    datetime.date(2026, 1, 3)
    """

    at: datetime

    def now(self) -> datetime:
        """The fixed time."""
        return self.at

    def today(self) -> date:
        """The fixed date."""
        return self.at.date()

    def advance(self, **delta: float) -> FixedClock:
        """Move the clock forward by ``timedelta(**delta)``; returns self."""
        self.at = self.at + timedelta(**delta)
        return self


@attrs.define
class Runtime:
    """Everything a service call needs besides its arguments (the host's composition root).

    Attributes:
        store: the storage backend (hands out units of work).
        clock: time source.
        rng: random source for temporary numbers and ids.
        policy: provincial rules (defaults are national).
        calendar: working days for approval deadlines and school days.
        registry: the public-security population registry, when verification is wanted.
    """

    store: Store
    clock: Clock = attrs.field(factory=SystemClock)
    rng: random.Random = attrs.field(factory=random.Random)
    policy: Policy = attrs.field(factory=Policy)
    calendar: WorkingDayCalendar = attrs.field(factory=WeekdayCalendar)
    registry: PopulationRegistry | None = None
    _last_id: int = attrs.field(default=-1, init=False, repr=False, eq=False)

    def new_id(self, prefix: str = "") -> str:
        """A new 32-hex-digit id (from ``rng``), with an optional prefix.

        The ids one runtime draws increase: the first is random (below
        ``2**127``), each next one is the last plus ``1 +`` 64 random bits.  So
        the primary-key and foreign-key indexes of a bulk import grow at a few
        points instead of everywhere (as with UUIDv7 or ULID ids; on PostgreSQL
        a million-row import's server time fell by about a third), the next
        id cannot be guessed from the last one, and two runtimes draw the same
        id only if their ranges meet and a 64-bit step lands on the other's
        id.  A runtime shared by threads may hand out ids out of order, never
        the same one twice (unless two 64-bit steps agree).

        >>> rt = Runtime(None, rng=random.Random(1))  # type: ignore[arg-type]
        >>> a, b = rt.new_id("r"), rt.new_id("r")
        >>> len(a), a < b, a[0]
        (33, True, 'r')
        """
        last = self._last_id
        if last < 0:
            last = self.rng.getrandbits(127)
        last += 1 + self.rng.getrandbits(64)
        self._last_id = last
        return f"{prefix}{last:032x}"


class _Bits(Protocol):
    def getrandbits(self, k: int, /) -> int: ...


class IdSource:
    """Ids drawn from ``rng`` as :meth:`Runtime.new_id` draws them, without a runtime (a
    checker process of a bulk import has a random source but no store).

    >>> ids = IdSource(random.Random(1))
    >>> rt = Runtime(None, rng=random.Random(1))  # type: ignore[arg-type]
    >>> [ids("r"), ids("c")] == [rt.new_id("r"), rt.new_id("c")]
    True
    """

    def __init__(self, rng: _Bits) -> None:
        self.rng = rng
        self._last = -1

    def __call__(self, prefix: str = "") -> str:
        """A new id with an optional prefix (see :meth:`Runtime.new_id`: the same draws)."""
        last = self._last
        if last < 0:
            last = self.rng.getrandbits(127)
        last += 1 + self.rng.getrandbits(64)
        self._last = last
        return f"{prefix}{last:032x}"
