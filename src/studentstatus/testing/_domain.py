"""Hypothesis strategies for kindergartens, children, status records and changes.

The dates these strategies make lie in :data:`WINDOW` (2015–2035): a kindergarten
from ``kindergartens(licensed=True)`` is licensed on every day of it, one from
``kindergartens(licensed=False)`` on none.  Children are born so that some
preschool grade fits them during the window.

>>> from hypothesis import given, settings
>>> from studentstatus.domain.kindergarten import licensed_on
>>> @settings(max_examples=5, database=None)
... @given(kindergartens(licensed=True))
... def t(kg):
...     assert licensed_on(kg, WINDOW[0]) and licensed_on(kg, WINDOW[1])
>>> t()
"""

from __future__ import annotations

import datetime
import functools
from collections.abc import Callable

import attrs
from hypothesis import strategies as st

from studentstatus.domain import machine
from studentstatus.domain.age import GRADES, birth_range, eligible_grades, school_year_of
from studentstatus.domain.enums import (
    ChangeKind,
    Grade,
    KindergartenType,
    LicenceState,
    Sex,
    State,
)
from studentstatus.domain.model import (
    Child,
    DocumentKind,
    Guardian,
    IdentityDocument,
    Inspection,
    Kindergarten,
    Licence,
    StatusChange,
    StatusRecord,
)
from studentstatus.domain.policy import Policy
from studentstatus.testing._ids import mobile_phones, region_codes, resident_ids, usccs

__all__ = [
    "BREAKAGES",
    "WINDOW",
    "change_sequences",
    "changes",
    "children",
    "fill_change",
    "kindergartens",
    "records",
]

D = datetime.date

#: Dates the strategies use: licences, births, entries and changes fall inside.
WINDOW: tuple[datetime.date, datetime.date] = (D(2015, 1, 1), D(2035, 12, 31))

_NAMES = st.text(
    alphabet=st.sampled_from("王李张刘陈杨赵黄周吴小明红华丽军芳伟娜静敏强磊洋艳勇"),
    min_size=2,
    max_size=4,
)


@functools.cache
def _counties() -> st.SearchStrategy[str]:
    # one strategy object: building a sampled_from over ~2,800 codes per draw is slow
    return region_codes("county")


@st.composite
def _licence(draw: st.DrawFn, good: bool) -> Licence:
    number = "教民" + draw(st.text("0123456789", min_size=15, max_size=15)) + "号"
    if good:
        issued = draw(st.dates(D(2000, 1, 1), WINDOW[0]))
        until = draw(st.dates(WINDOW[1], D(2060, 12, 31)))
        years = draw(st.lists(st.integers(issued.year, until.year), max_size=3, unique=True))
        return Licence(number, "教育局", issued, until, LicenceState.VALID,
                       tuple(Inspection(y, True) for y in sorted(years)))  # fmt: skip
    how = draw(st.sampled_from(["expired", "future", "revoked", "failed"]))
    if how == "expired":
        issued = draw(st.dates(D(1990, 1, 1), D(2010, 1, 1)))
        return Licence(number, "教育局", issued, draw(st.dates(issued, D(2014, 12, 31))))
    if how == "future":
        issued = draw(st.dates(D(2036, 1, 1), D(2040, 1, 1)))
        return Licence(number, "教育局", issued, draw(st.dates(issued, D(2060, 1, 1))))
    issued = draw(st.dates(D(2000, 1, 1), D(2013, 12, 31)))
    until = draw(st.dates(WINDOW[1], D(2060, 12, 31)))
    if how == "revoked":
        state = draw(st.sampled_from([LicenceState.REVOKED, LicenceState.SUSPENDED]))
        return Licence(number, "教育局", issued, until, state)
    # failed an inspection in a year before the window: latest inspection failed since
    return Licence(number, "教育局", issued, until, inspections=(Inspection(2014, False),))


@st.composite
def kindergartens(draw: st.DrawFn, licensed: bool | None = True) -> Kindergarten:
    """Kindergartens with valid codes; ``licensed`` on every day of :data:`WINDOW`
    (``True``), on none (``False``), or either (``None``)."""
    if licensed is None:
        licensed = draw(st.booleans())
    region = draw(_counties())
    code = "11" + region[:2] + draw(st.text("0123456789", min_size=6, max_size=6))
    if licensed:
        licences = [draw(_licence(True)), *draw(st.lists(_licence(False), max_size=2))]
    else:
        licences = draw(st.lists(_licence(False), max_size=3))
    order = draw(st.permutations(licences))
    return Kindergarten(
        school_code=code,
        uscc=draw(usccs()),
        name=draw(_NAMES) + "幼儿园",
        region_code=region,
        type=draw(st.sampled_from(KindergartenType)),
        inclusive=draw(st.booleans()),
        licences=tuple(order),
    )


@st.composite
def _valid_child(draw: st.DrawFn, birth: tuple[datetime.date, datetime.date]) -> Child:
    born = draw(st.dates(*birth))
    sex = draw(st.sampled_from(Sex))
    has_id = draw(st.booleans())
    document = None
    if has_id:
        number = draw(resident_ids(min_birth=born, max_birth=born, sex=sex.value))
        document = IdentityDocument(DocumentKind.RESIDENT, number)
    elif draw(st.booleans()):
        document = IdentityDocument(DocumentKind.NONE, "")
    phones = draw(st.lists(mobile_phones(), min_size=1, max_size=2))
    guardians = tuple(
        Guardian(draw(_NAMES), rel, "+86" + p) for rel, p in zip(("mother", "father"), phones)
    )
    return Child(
        id=draw(st.uuids()).hex,
        name=draw(_NAMES),
        sex=sex,
        birth_date=born,
        document=document,
        ethnicity=draw(st.none() | st.sampled_from(["01", "02", "05", "56", "97", "98"])),
        hukou_region=draw(st.none() | _counties()),
        guardians=guardians,
        left_behind=draw(st.booleans()),
    )


_BREAKAGES: dict[str, Callable[[Child], Child]] = {
    "name_required": lambda c: attrs.evolve(c, name=" "),
    "control_character": lambda c: attrs.evolve(c, name=c.name + "\x00"),
    "guardian_phone_missing": lambda c: attrs.evolve(c, guardians=()),
    "guardian_phone_invalid": lambda c: attrs.evolve(
        c, guardians=(Guardian("王芳", "mother", "12345"),)
    ),
    "ethnicity_invalid": lambda c: attrs.evolve(c, ethnicity="57"),
    "nationality_invalid": lambda c: attrs.evolve(c, nationality="china"),
    "region_unknown": lambda c: attrs.evolve(c, hukou_region="999999"),
    "document_number_unexpected": lambda c: attrs.evolve(
        c, document=IdentityDocument(DocumentKind.NONE, "123")
    ),
}


@st.composite
def children(
    draw: st.DrawFn,
    valid: bool = True,
    birth: tuple[datetime.date, datetime.date] = (D(2015, 1, 1), D(2024, 8, 31)),
) -> Child:
    """Children born within ``birth``.

    ``valid=True``: :func:`~studentstatus.domain.child.check_child` finds nothing
    (on any day from the birth on); ``valid=False``: one breakage from
    :data:`BREAKAGES`, which ``check_child`` reports with that code.
    """
    child = draw(_valid_child(birth))
    if valid:
        return child
    code = draw(st.sampled_from(sorted(_BREAKAGES)))
    return _BREAKAGES[code](child)


BREAKAGES = tuple(sorted(_BREAKAGES))
"""Codes :func:`children` (``valid=False``) breaks a child with, one per child."""


@st.composite
def records(draw: st.DrawFn, state: State | None = None) -> StatusRecord:
    """Internally consistent status records (``state`` fixed, or any)."""
    st_ = state if state is not None else draw(st.sampled_from(State))
    entry = draw(st.dates(D(2016, 9, 1), D(2030, 8, 31)))
    grade = draw(st.sampled_from(GRADES))
    since = until = None
    cancelled_on = None
    before_cancel = None
    if st_ is State.SUSPENDED:
        since = draw(st.dates(entry, entry + datetime.timedelta(days=700)))
        until = since + datetime.timedelta(days=draw(st.integers(1, 366)))
    if st_ is State.CANCELLED:
        before_cancel = draw(st.sampled_from([State.PENDING, State.ACTIVE]))
        cancelled_on = draw(st.dates(entry, entry + datetime.timedelta(days=700)))
    return StatusRecord(
        id=draw(st.uuids()).hex,
        child_id=draw(st.uuids()).hex,
        kindergarten_code="11" + draw(st.text("0123456789", min_size=8, max_size=8)),
        region_code=draw(_counties()),
        state=st_,
        grade=grade,
        entry_date=entry,
        temp_number=None,
        suspended_since=since,
        suspended_until=until,
        suspended_days=draw(st.integers(0, 300)),
        last_promoted_year=draw(st.none() | st.integers(entry.year - 1, entry.year + 3)),
        repeated_grades=tuple(draw(st.lists(st.sampled_from(GRADES), max_size=2, unique=True))),
        skipped=draw(st.booleans()),
        state_before_cancel=before_cancel,
        cancelled_on=cancelled_on,
        version=draw(st.integers(1, 50)),
    )


@st.composite
def changes(
    draw: st.DrawFn,
    kind: ChangeKind | None = None,
    on: tuple[datetime.date, datetime.date] = WINDOW,
) -> machine.Change:
    """Arbitrary changes (legal or not) of ``kind`` (or any), effective within ``on``."""
    k = kind if kind is not None else draw(st.sampled_from(ChangeKind))
    day = draw(st.dates(*on))
    return machine.Change(
        k,
        day,
        reason=draw(st.sampled_from(["", "家长申请", "搬家"])),
        evidence=tuple(draw(st.lists(st.sampled_from(["死亡证明", "医院证明"]), max_size=1))),
        to_kindergarten=draw(st.none() | st.text("0123456789", min_size=10, max_size=10)),
        until=draw(st.none() | st.dates(day, day + datetime.timedelta(days=800))),
        grade=draw(st.none() | st.sampled_from(GRADES)),
        operator=draw(st.sampled_from(["", "county:110105", "kindergarten:1111000001"])),
    )


def fill_change(
    kind: ChangeKind,
    record: StatusRecord | None,
    context: machine.Context,
    data: st.DataObject,
    *,
    legal: bool = True,
) -> machine.Change:
    """A change of ``kind`` effective ``context.today`` whose parameters meet the
    parameter guards when ``legal`` (reason, evidence, until within the caps,
    a grade that fits, the destination); random ones otherwise.

    The state and context guards are not steered: the change may still be refused.
    """
    today = context.today
    if not legal:
        return data.draw(changes(kind, on=(today, today)))
    policy: Policy = context.policy
    grade: Grade | None = None
    if kind in (ChangeKind.REGISTER, ChangeKind.REENROLL, ChangeKind.RETURN, ChangeKind.RESUME):
        fits = (
            eligible_grades(context.child.birth_date, school_year_of(today), policy)
            if context.child is not None
            else ()
        )
        grade = data.draw(st.sampled_from(fits)) if fits else None
    until = None
    if kind in (ChangeKind.SUSPEND, ChangeKind.EXTEND):
        start = today
        if kind is ChangeKind.EXTEND and record is not None and record.suspended_until:
            start = record.suspended_until
        used = record.suspended_days if record is not None else 0
        if kind is ChangeKind.EXTEND and record is not None and record.suspended_since:
            used += (start - record.suspended_since).days
        room = min(policy.max_suspension_days, policy.total_suspension_days - used)
        until = start + datetime.timedelta(days=data.draw(st.integers(1, max(1, room))))
    dest = context.destination
    return machine.Change(
        kind,
        today,
        reason="家长申请",
        evidence=("证明-001",),
        to_kindergarten=dest.school_code if dest is not None and kind is ChangeKind.TRANSFER
        else None,
        until=until,
        grade=grade,
        operator="county:test",
        child_id=context.child.id if context.child is not None else None,
        temp_number="L" + "0" * 18 if kind is ChangeKind.REGISTER else None,
    )  # fmt: skip


@st.composite
def change_sequences(
    draw: st.DrawFn, max_steps: int = 15, policy: Policy | None = None
) -> tuple[StatusRecord, list[StatusChange]]:
    """A record and the events of a legal history: REGISTER then applied changes.

    Each step moves the day forward and applies an allowed change with
    parameters from :func:`fill_change` (refused ones are skipped).
    ``replay(events) == record`` holds by construction of :func:`machine.apply`.
    """
    pol = policy if policy is not None else Policy()
    kg = draw(kindergartens(licensed=True))
    other = draw(kindergartens(licensed=True).filter(lambda k: k.school_code != kg.school_code))
    grade = draw(st.sampled_from(GRADES))
    year = draw(st.integers(2016, 2026))
    first, last = birth_range(grade, year, pol)
    child = draw(_valid_child((first, last)))
    today = draw(st.dates(D(year, 9, 1), D(year + 1, 8, 31)))
    ctx = machine.Context(today, pol, kindergarten=kg, destination=other, child=child)
    data = draw(st.data())
    at = datetime.datetime(2000, 1, 1, tzinfo=datetime.UTC)
    change = attrs.evolve(fill_change(ChangeKind.REGISTER, None, ctx, data), grade=grade)
    record, event = machine.apply(None, change, context=ctx, recorded_at=at, record_id="r-1")
    events = [event]
    for _ in range(draw(st.integers(0, max_steps))):
        today = today + datetime.timedelta(days=draw(st.integers(0, 200)))
        here = record.kindergarten_code
        kgs = {kg.school_code: kg, other.school_code: other}
        dest = other if here == kg.school_code else kg
        ctx = attrs.evolve(ctx, today=today, kindergarten=kgs[here], destination=dest)
        kinds = machine.allowed_changes(record, ctx)
        if not kinds:
            break
        kind = draw(st.sampled_from(kinds))
        change = fill_change(kind, record, ctx, data)
        if machine.check(record, change, context=ctx):
            continue
        record, event = machine.apply(record, change, context=ctx, recorded_at=at)
        events.append(event)
    return record, events
