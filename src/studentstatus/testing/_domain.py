"""Hypothesis strategies for kindergartens, children, status records and changes.

The dates these strategies make lie in :data:`WINDOW` (2015–2035): a kindergarten
from ``kindergartens(licensed=True)`` is licensed on every day of it, one from
``kindergartens(licensed=False)`` on none.  Children are born so that some
preschool grade fits them during the window.

People look like the people a kindergarten registers (see
:mod:`studentstatus.testing._people` for the sources): the surname first, drawn
by frequency from the hundred most common surnames; a one- or two-character
given name; now and then a Uyghur-style name with the middle dot
(``阿依古丽·买买提``); guardians whose relation fits their sex (the father carries
the child's surname).  :func:`records` are consistent with their state (a
GRADUATED record is in SENIOR, a SUSPENDED one within the policy's caps, …) and
:func:`child_records` pairs a record with a child whose age fits its grade.
:func:`change_sequences` steers towards rare changes (SKIP, RESTORE, REENROLL,
RETURN, EXTEND, …) so that every change kind and every state turns up within a
few hundred examples (distribution in docs/how-to/property-testing.md).

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
from studentstatus.testing._people import (
    MIDDLE_DOT,
    SURNAMES,
    dotted_names,
    given_names,
    own_part,
    person_names,
    surnames,
)

__all__ = [
    "BREAKAGES",
    "MIDDLE_DOT",
    "SURNAMES",
    "WINDOW",
    "change_sequences",
    "changes",
    "child_records",
    "children",
    "fill_change",
    "given_names",
    "kindergartens",
    "person_names",
    "records",
    "surnames",
]

D = datetime.date

#: Dates the strategies use: licences, births, entries and changes fall inside.
WINDOW: tuple[datetime.date, datetime.date] = (D(2015, 1, 1), D(2035, 12, 31))

_KG_NAMES = st.tuples(
    st.sampled_from(["", "第一", "第二", "第三", "中心", "实验"]),
    st.sampled_from(
        ["阳光", "育才", "机关", "春蕾", "蓝天", "启明", "金色童年", "小太阳", "向日葵"]
    ),
).map(lambda t: t[1] + t[0] + "幼儿园")


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


def kindergartens(licensed: bool | None = True) -> st.SearchStrategy[Kindergarten]:
    """Kindergartens with valid codes; ``licensed`` on every day of :data:`WINDOW`
    (``True``), on none (``False``), or either (``None``).

    >>> from hypothesis import given, settings
    >>> @settings(max_examples=5, database=None)
    ... @given(kindergartens(licensed=False))
    ... def t(kg):
    ...     assert kg.school_code.startswith("11") and len(kg.school_code) == 10
    >>> t()
    """
    return _kindergartens(licensed)


@st.composite
def _kindergartens(draw: st.DrawFn, licensed: bool | None) -> Kindergarten:
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
        name=draw(_KG_NAMES),
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
    name, ethnicity, guardians = draw(_family(sex))
    return Child(
        id=draw(st.uuids()).hex,
        name=name,
        sex=sex,
        birth_date=born,
        document=document,
        ethnicity=ethnicity,
        hukou_region=draw(st.none() | _counties()),
        guardians=guardians,
        left_behind=draw(st.booleans()),
    )


# Ethnicity codes (GB 3304) drawn for children with Han-style names: mostly 01 (汉族).
_HAN_STYLE_ETHNICITY = st.none() | st.sampled_from(["01"] * 12 + ["02", "03", "04", "06", "08"])


@st.composite
def _family(draw: st.DrawFn, sex: Sex) -> tuple[str, str | None, tuple[Guardian, ...]]:
    """The child's name and ethnicity, and one to three guardians whose relation fits their sex.

    Han-style: the father and paternal grandparents carry the child's surname, the mother
    her own.  Uyghur-style (about 1 in 20): ``本名·父名``; the father's name ends with the
    grandfather's.
    """
    phones = [
        "+86" + p for p in draw(st.lists(mobile_phones(), min_size=1, max_size=3, unique=True))
    ]
    if draw(st.integers(0, 19)) == 0:
        father = draw(dotted_names(Sex.M))
        child = draw(dotted_names(sex, father=own_part(father)))
        mother = draw(dotted_names(Sex.F))
        grandpa = (
            father.split(MIDDLE_DOT, 1)[1]
            + MIDDLE_DOT
            + draw(dotted_names(Sex.M)).split(MIDDLE_DOT)[0]
        )
        grandma = draw(dotted_names(Sex.F))
        ethnicity: str | None = "05"
    else:
        surname = draw(surnames())
        child = surname + draw(given_names(sex))
        father = draw(person_names(Sex.M, surname=surname))
        hers = draw(surnames())
        if hers == surname:  # a different surname than the father's (no filter: no rejections)
            hers = (
                SURNAMES[(SURNAMES.index(hers) + 1) % len(SURNAMES)] if hers in SURNAMES else "王"
            )
        mother = draw(person_names(Sex.F, surname=hers))
        grandpa = draw(person_names(Sex.M, surname=surname))
        grandma = draw(person_names(Sex.F))
        ethnicity = draw(_HAN_STYLE_ETHNICITY)
    people = [("mother", mother), ("father", father)]
    if draw(st.booleans()):
        people.reverse()
    people.append(draw(st.sampled_from([("grandmother", grandma), ("grandfather", grandpa)])))
    guardians = tuple(Guardian(n, rel, p) for (rel, n), p in zip(people, phones))
    return child, ethnicity, guardians


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


def children(
    valid: bool = True,
    birth: tuple[datetime.date, datetime.date] = (D(2015, 1, 1), D(2024, 8, 31)),
) -> st.SearchStrategy[Child]:
    """Children born within ``birth``.

    ``valid=True``: :func:`~studentstatus.domain.child.check_child` finds nothing
    (on any day from the birth on); ``valid=False``: one breakage from
    :data:`BREAKAGES`, which ``check_child`` reports with that code.

    >>> from hypothesis import given, settings
    >>> @settings(max_examples=5, database=None)
    ... @given(children(birth=(D(2020, 1, 1), D(2020, 12, 31))))
    ... def t(child):
    ...     assert child.birth_date.year == 2020
    >>> t()
    """
    return _children(valid, birth)


@st.composite
def _children(draw: st.DrawFn, valid: bool, birth: tuple[datetime.date, datetime.date]) -> Child:
    child = draw(_valid_child(birth))
    if valid:
        return child
    code = draw(st.sampled_from(sorted(_BREAKAGES)))
    return _BREAKAGES[code](child)


BREAKAGES = tuple(sorted(_BREAKAGES))
"""Codes :func:`children` (``valid=False``) breaks a child with, one per child."""


_VERSIONS = {
    # fewest events that reach the state (REGISTER = 1)
    State.PENDING: 1, State.ACTIVE: 2, State.SUSPENDED: 3, State.ABROAD: 3, State.WITHDRAWN: 3,
    State.GRADUATED: 3, State.DECEASED: 2, State.CANCELLED: 2,
}  # fmt: skip


@st.composite
def _child_record(
    draw: st.DrawFn, state: State | None, policy: Policy | None
) -> tuple[Child, StatusRecord]:
    pol = policy if policy is not None else Policy()
    st_ = state if state is not None else draw(st.sampled_from(State))
    ladder = [g for g in GRADES if g in pol.grade_ages]
    before_cancel = None
    if st_ is State.CANCELLED:
        before_cancel = draw(st.sampled_from([State.PENDING, State.ACTIVE]))
    early = st_ is State.PENDING or before_cancel is State.PENDING
    entry_grade = draw(st.sampled_from(ladder[:-1] if st_ is State.GRADUATED else ladder))
    top = ladder.index(Grade.SENIOR) if Grade.SENIOR in ladder else len(ladder) - 1
    first = ladder.index(entry_grade)
    if st_ is State.GRADUATED:
        years = top - first
    elif early:
        years = 0
    else:
        years = draw(st.integers(0, max(0, top - first)))
    grade = ladder[first + years]
    entry_year = draw(st.integers(2016, 2029 - years))
    year = entry_year + years  # the school year the record is in: promoted once a year
    child = draw(_valid_child(birth_range(entry_grade, entry_year, pol)))
    entry = draw(st.dates(D(entry_year, 9, 1), D(entry_year + 1, 6, 30)))
    in_year = st.dates(max(entry, D(year, 9, 1)), D(year + 1, 6, 30))
    since = until = cancelled_on = None
    cap = pol.total_suspension_days
    done = draw(st.integers(0, cap // 2)) if not early else 0
    if st_ is State.SUSPENDED:
        since = draw(in_year)
        room = min(pol.max_suspension_days, pol.max_episode_days, cap - done)
        until = since + datetime.timedelta(days=draw(st.integers(1, max(1, room))))
    if st_ is State.CANCELLED:
        cancelled_on = draw(in_year)
    record = StatusRecord(
        id=draw(st.uuids()).hex,
        child_id=child.id,
        kindergarten_code="11" + draw(st.text("0123456789", min_size=8, max_size=8)),
        region_code=draw(_counties()),
        state=st_,
        grade=grade,
        entry_date=entry,
        temp_number=None,
        suspended_since=since,
        suspended_until=until,
        suspended_days=done,
        last_promoted_year=year - 1 if years else None,
        state_before_cancel=before_cancel,
        cancelled_on=cancelled_on,
        version=_VERSIONS[st_] + years + draw(st.integers(0, 3)) * (not early),
    )
    return child, record


def records(
    state: State | None = None, policy: Policy | None = None
) -> st.SearchStrategy[StatusRecord]:
    """Status records consistent with their state (``state`` fixed, or any) under ``policy``.

    The grade went up once a year from the entry grade (a GRADUATED record is in SENIOR,
    a PENDING one in its entry grade, version 1); a SUSPENDED record's dates and days keep
    within the policy's caps; a CANCELLED record knows its earlier state and date; the
    version counts at least the events needed to reach the state.  For the child as well,
    use :func:`child_records`.
    """
    return _child_record(state, policy).map(lambda pair: pair[1])


def child_records(
    state: State | None = None, policy: Policy | None = None
) -> st.SearchStrategy[tuple[Child, StatusRecord]]:
    """A child and a record of that child (``record.child_id == child.id``) that fit together:
    the child's age at the cut-off fitted the entry grade in the entry year and fits the
    record's grade in its current school year; the record is as :func:`records` makes them.

    >>> from hypothesis import given, settings
    >>> from studentstatus.domain.age import grade_violations
    >>> @settings(max_examples=20, database=None)
    ... @given(child_records(state=State.ACTIVE))
    ... def t(pair):
    ...     child, record = pair
    ...     year = (record.last_promoted_year or school_year_of(record.entry_date) - 1) + 1
    ...     assert record.child_id == child.id
    ...     assert grade_violations(child.birth_date, record.grade, year, Policy()) == []
    >>> t()
    """
    return _child_record(state, policy)


def changes(
    kind: ChangeKind | None = None,
    on: tuple[datetime.date, datetime.date] = WINDOW,
) -> st.SearchStrategy[machine.Change]:
    """Arbitrary changes (legal or not) of ``kind`` (or any), effective within ``on``.

    >>> from hypothesis import given, settings
    >>> @settings(max_examples=5, database=None)
    ... @given(changes(ChangeKind.SUSPEND, on=(D(2024, 9, 1), D(2024, 9, 30))))
    ... def t(change):
    ...     assert change.kind is ChangeKind.SUSPEND and change.effective_date.month == 9
    >>> t()
    """
    return _changes(kind, on)


@st.composite
def _changes(
    draw: st.DrawFn, kind: ChangeKind | None, on: tuple[datetime.date, datetime.date]
) -> machine.Change:
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
        running = 0
        if kind is ChangeKind.EXTEND and record is not None and record.suspended_since:
            running = (start - record.suspended_since).days
        room = min(
            policy.max_suspension_days,
            policy.max_episode_days - running,
            policy.total_suspension_days - used - running,
        )
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


#: How often each kind is drawn among the allowed ones: rare and interesting changes more,
#: changes that end a history less (so that histories grow long).
KIND_WEIGHTS: dict[ChangeKind, int] = {
    ChangeKind.APPROVE: 6, ChangeKind.REJECT: 1, ChangeKind.PROMOTE: 5, ChangeKind.REPEAT: 4,
    ChangeKind.SKIP: 10, ChangeKind.GRADUATE: 6, ChangeKind.TRANSFER: 3, ChangeKind.GO_ABROAD: 3,
    ChangeKind.RETURN: 6, ChangeKind.SUSPEND: 4, ChangeKind.EXTEND: 6, ChangeKind.RESUME: 4,
    ChangeKind.WITHDRAW: 2, ChangeKind.REENROLL: 8, ChangeKind.DEATH: 1, ChangeKind.CANCEL: 2,
    ChangeKind.RESTORE: 8, ChangeKind.REGISTER: 1,
}  # fmt: skip


def weighted_kinds(kinds: list[ChangeKind]) -> st.SearchStrategy[ChangeKind]:
    """One of ``kinds``, drawn by :data:`KIND_WEIGHTS`.  Hypothesis favours the ends of a
    list, so the heaviest kinds are put at both ends and the lightest in the middle."""
    by_weight = sorted(kinds, key=lambda k: -KIND_WEIGHTS.get(k, 1))
    order = by_weight[0::2] + by_weight[1::2][::-1]
    return st.sampled_from([k for k in order for _ in range(KIND_WEIGHTS.get(k, 1))])


def _wait(record: StatusRecord, today: datetime.date, policy: Policy) -> st.SearchStrategy[int]:
    """Days to the next change: within a suspension's end (so EXTEND can happen), within the
    restore window after a cancellation, under a year abroad (so RETURN finds a grade that
    fits), else up to a school year or more."""
    if record.state is State.SUSPENDED and record.suspended_until and record.suspended_since:
        left = max(0, (record.suspended_until - record.suspended_since).days - 1)
        return st.integers(0, left) | st.integers(0, left + 400)
    if record.state is State.CANCELLED:
        return st.integers(0, max(0, policy.restore_window_days))
    if record.state is State.ABROAD:  # back within the year, while a grade still fits
        return st.sampled_from([0, 1, 30, 120, 200])
    if record.state is State.ACTIVE and today >= _next_grade_year(record, today, policy):
        return st.sampled_from([0, 1, 30, 120])  # already behind its band: not further
    return st.sampled_from([0, 1, 30, 120, 200, 300, 366, 400])


def _next_grade_year(record: StatusRecord, today: datetime.date, policy: Policy) -> datetime.date:
    """A day early in the school year after the one the record's grade was reached in (not
    before ``today``): an ACTIVE child not promoted by then is a year older than its band."""
    reached = (
        record.last_promoted_year + 1
        if record.last_promoted_year is not None
        else school_year_of(record.entry_date, policy)
    )
    return max(today, D(reached + 1, 9, 1))


def change_sequences(
    max_steps: int = 15, policy: Policy | None = None
) -> st.SearchStrategy[tuple[StatusRecord, list[StatusChange]]]:
    """A record and the events of a legal history: REGISTER then applied changes.

    Each step moves the day forward and applies an allowed change with parameters from
    :func:`fill_change` (refused ones are skipped).  Kinds are drawn by
    :data:`KIND_WEIGHTS` among those allowed, so rare changes turn up often.  At least
    one step follows REGISTER.  ``replay(events) == record`` holds by construction of
    :func:`machine.apply`; the policy's guards (``policy.guards``) apply too.

    >>> from hypothesis import given, settings
    >>> @settings(max_examples=5, database=None)
    ... @given(change_sequences(max_steps=3))
    ... def t(history):
    ...     record, events = history
    ...     assert events[0].kind is ChangeKind.REGISTER and events[-1].to_state is record.state
    >>> t()
    """
    return _change_sequences(max_steps, policy)


@st.composite
def _change_sequences(
    draw: st.DrawFn, max_steps: int, policy: Policy | None
) -> tuple[StatusRecord, list[StatusChange]]:
    pol = policy if policy is not None else Policy()
    kg = draw(kindergartens(licensed=True))
    other = draw(kindergartens(licensed=True).filter(lambda k: k.school_code != kg.school_code))
    grade = draw(st.sampled_from([g for g in GRADES if g in pol.grade_ages]))
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
    for _ in range(draw(st.integers(1, max(1, max_steps)))):
        today = today + datetime.timedelta(days=draw(_wait(record, today, pol)))
        if record.state is State.ACTIVE and draw(st.integers(0, 3)) == 0:
            today = _next_grade_year(record, today, pol)  # a year without promotion: SKIP fits
        here = record.kindergarten_code
        kgs = {kg.school_code: kg, other.school_code: other}
        dest = other if here == kg.school_code else kg
        ctx = attrs.evolve(ctx, today=today, kindergarten=kgs[here], destination=dest)
        kinds = machine.allowed_changes(record, ctx)
        if not kinds:
            if record.state in machine.TERMINAL:
                break
            continue
        kind = draw(weighted_kinds(kinds))
        change = fill_change(kind, record, ctx, data)
        if machine.check(record, change, context=ctx):
            continue
        record, event = machine.apply(record, change, context=ctx, recorded_at=at)
        events.append(event)
    return record, events
