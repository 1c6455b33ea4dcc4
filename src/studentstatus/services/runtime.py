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

Provinces set their own rules: ``policies`` maps a two-digit province code to the
:class:`~studentstatus.domain.policy.Policy` of that province (see
:mod:`studentstatus.province_rules` to load one from a file), and
:meth:`Runtime.policy_for` picks the policy of a record's region, the national
``policy`` for provinces without their own:

>>> import attrs
>>> guangdong = attrs.evolve(Policy(), total_suspension_days=366)
>>> rt = Runtime(MemoryStore(), policies={"44": guangdong})
>>> rt.policy_for("440305").total_suspension_days, rt.policy_for("110105").total_suspension_days
(366, 731)
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime, timedelta, timezone, tzinfo
from typing import Protocol

import attrs

from studentstatus.domain.calendar import WeekdayCalendar, WorkingDayCalendar
from studentstatus.domain.policy import HostGuard, Policy
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
        policy: the national rules (or the host's single set of rules), used for
            records of provinces without their own.
        policies: each province's rules, by two-digit province code (``"44"``).
        calendar: working days for approval deadlines and school days.
        registry: the public-security population registry, when verification is wanted.
    """

    store: Store
    clock: Clock = attrs.field(factory=SystemClock)
    rng: random.Random = attrs.field(factory=random.Random)
    policy: Policy = attrs.field(factory=Policy)
    policies: Mapping[str, Policy] = attrs.field(factory=dict, converter=dict)
    calendar: WorkingDayCalendar = attrs.field(factory=WeekdayCalendar)
    registry: PopulationRegistry | None = None
    _last_id: int = attrs.field(default=-1, init=False, repr=False, eq=False)

    def policy_for(self, region_code: str | None) -> Policy:
        """The policy of the province ``region_code`` lies in (its first two digits), or the
        national :attr:`policy` when that province has none (or the code is ``None``).

        >>> rt = Runtime(None, policies={"11": Policy(age_tolerance=1)})  # type: ignore[arg-type]
        >>> rt.policy_for("110105").age_tolerance, rt.policy_for("440305").age_tolerance
        (1, 0)
        """
        if region_code:
            found = self.policies.get(region_code[:2])
            if found is not None:
                return found
        return self.policy

    def register_guard(self, guard: HostGuard, *, provinces: Iterable[str] | None = None) -> None:
        """Add a host guard: checked after the built-in guards wherever the status
        machine runs (dry runs, requests, decisions), for the listed provinces, or for
        the national policy and every province policy when ``provinces`` is ``None``.
        A province listed without a policy of its own gets the national one plus the guard.

        >>> from studentstatus.errors import Violation
        >>> def friday(record, change, context):
        ...     if change.effective_date.weekday() == 4:
        ...         return [Violation("no_friday", "effective_date", "周五不办", "not on Fridays")]
        ...     return []
        >>> rt = Runtime(None)  # type: ignore[arg-type]
        >>> rt.register_guard(HostGuard("no_friday", friday), provinces=["44"])
        >>> [g.code for g in rt.policy_for("440305").guards], rt.policy_for("110105").guards
        (['no_friday'], ())
        """
        if provinces is None:
            self.policy = self.policy.with_guards(guard)
            self.policies = {k: p.with_guards(guard) for k, p in self.policies.items()}
            return
        updated = dict(self.policies)
        for code in provinces:
            updated[code] = updated.get(code, self.policy).with_guards(guard)
        self.policies = updated

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
