"""Statistics: the enrolment report of a region for a school year.

The report counts the children on roll (ACTIVE records) of a region, by
region level (province / city / county), kindergarten, kindergarten type
(public / private inclusive / private other), grade, sex, age (completed
years on the school year's cut-off), and migrant status
(:mod:`studentstatus.domain.migration`; rural household registrations
counted apart); the share of children in inclusive (普惠) kindergartens —
public ones plus private ones recognised as inclusive — and in
public ones; the gross enrolment rate (毛入园率: children on roll / children
aged 3–5 in the population extract) when an extract is given; changes by
kind (effective in the school year); problem records by kind and status;
the live records without a national number by reason (``stuck``, see
:mod:`studentstatus.services.stuck`); and the daily attendance trend of the
last 30 days.

Where the numbers come from is a :class:`ReportSource`: the raw grouped
counts (``{key tuple: count}``).  :class:`PortReportSource` computes them
over the ports by streaming (memory and file stores);
:class:`studentstatus.adapters.sql.reports.SqlReportSource` computes them in
the database with ``GROUP BY`` (never loading rows), and :func:`build_report`
picks it when the unit of work offers one (the declared capability
:class:`~studentstatus.ports.ReportingUnitOfWork`; the SQL store does).  :func:`assemble` turns the
grouped counts into the :class:`Report` the same way for both, so the two
can be compared exactly.

>>> from datetime import datetime, timezone
>>> from studentstatus.domain.jurisdiction import Operator
>>> from studentstatus.testing.examples import example_runtime
>>> rt = example_runtime(datetime(2026, 10, 8, tzinfo=timezone.utc))
>>> rep = build_report(rt, Operator.parse("county:110105"), "110105", 2026)
>>> rep.total, rep.gross_enrolment_rate
(0, None)
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import date, timedelta
from typing import Any

import attrs

from studentstatus.batching import chunked
from studentstatus.domain.age import age_at_cutoff, age_on, cutoff
from studentstatus.domain.enums import ChangeKind, Grade, KindergartenType, State
from studentstatus.domain.jurisdiction import Operator
from studentstatus.domain.migration import MigrantStatus, migrant_status
from studentstatus.domain.model import Kindergarten
from studentstatus.domain.monitoring import PopulationPerson
from studentstatus.domain.policy import Policy
from studentstatus.errors import PermissionDenied, ValidationError
from studentstatus.ports import Groups, ReportingUnitOfWork, ReportScope, ReportSource, UnitOfWork
from studentstatus.services.attendance_reads import fetch_attendance
from studentstatus.services.authority import region_in_scope, require_role
from studentstatus.services.runtime import Runtime

__all__ = [
    "DIMENSIONS",
    "Groups",
    "PortReportSource",
    "Report",
    "ReportScope",
    "ReportSource",
    "assemble",
    "build_report",
    "kindergarten_kind",
    "report_scope",
    "school_year_range",
    "source_for",
]

DIMENSIONS = ("county_type", "kindergarten", "grade_sex", "birth_date", "migrant")
"""Grouping keys of the enrolment counts (see :meth:`ReportSource.enrolment`)."""

_CHUNK = 2000
TREND_DAYS = 30


def school_year_range(school_year: int) -> tuple[date, date]:
    """First and last day of a school year (1 Sept … 31 Aug).

    >>> school_year_range(2026)
    (datetime.date(2026, 9, 1), datetime.date(2027, 8, 31))
    """
    return date(school_year, 9, 1), date(school_year + 1, 8, 31)


def kindergarten_kind(kg_type: str | None, inclusive: bool | None) -> str:
    """``public``, ``private_inclusive``, ``private_other`` (or ``unknown`` without a kindergarten).

    >>> kindergarten_kind("PUBLIC", False), kindergarten_kind("PRIVATE_NONPROFIT", True)
    ('public', 'private_inclusive')
    >>> kindergarten_kind("PRIVATE_FORPROFIT", False), kindergarten_kind(None, None)
    ('private_other', 'unknown')
    """
    if kg_type is None:
        return "unknown"
    if kg_type == KindergartenType.PUBLIC.value:
        return "public"
    return "private_inclusive" if inclusive else "private_other"


class PortReportSource:
    """Grouped counts computed over the ports by streaming (memory, files, any store).

    >>> from studentstatus.adapters.memory import MemoryStore
    >>> with MemoryStore().unit_of_work() as uow:
    ...     PortReportSource(uow).problems(ReportScope(""))
    {}
    """

    def __init__(self, uow: UnitOfWork) -> None:
        self._uow = uow

    def _records(self, scope: ReportScope) -> Iterator[Any]:
        if scope.kindergarten_code is not None:
            stream = self._uow.records.iter(
                region_prefix=scope.region_prefix,
                kindergarten_code=scope.kindergarten_code,
                states=[State.ACTIVE],
            )
        else:
            stream = self._uow.records.iter(
                region_prefix=scope.region_prefix, states=[State.ACTIVE]
            )
        return stream

    def enrolment(self, scope: ReportScope) -> dict[str, Groups]:
        """See :meth:`ReportSource.enrolment`."""
        out: dict[str, Counter[tuple[Any, ...]]] = {d: Counter() for d in DIMENSIONS}
        kgs: dict[str, Any] = {}
        for chunk in chunked(self._records(scope), _CHUNK):
            children = self._uow.children.get_many([r.child_id for r in chunk])
            for rec in chunk:
                code = rec.kindergarten_code
                if code not in kgs:
                    kgs[code] = self._uow.kindergartens.find(code)
                kg = kgs[code]
                child = children.get(rec.child_id)
                kg_key = (kg.type.value, kg.inclusive) if kg is not None else (None, None)
                out["county_type"][(rec.region_code, *kg_key)] += 1
                out["kindergarten"][(code,)] += 1
                out["grade_sex"][
                    (rec.grade.value if rec.grade else None, child.sex.value if child else None)
                ] += 1
                out["birth_date"][(child.birth_date if child else None,)] += 1
                out["migrant"][
                    (
                        child.hukou_region if child else None,
                        rec.region_code,
                        bool(child.hukou_rural) if child else False,
                    )
                ] += 1
        return {d: dict(c) for d, c in out.items()}

    def _in_scope(self, rec: Any, scope: ReportScope) -> bool:
        return rec.region_code.startswith(scope.region_prefix) and (
            scope.kindergarten_code is None or rec.kindergarten_code == scope.kindergarten_code
        )

    def changes_by_kind(self, scope: ReportScope, start: date, end: date) -> Groups:
        """See :meth:`ReportSource.changes_by_kind`."""
        out: Counter[tuple[Any, ...]] = Counter()
        stream = self._uow.changes.iter(effective_from=start, effective_to=end)
        for chunk in chunked(stream, _CHUNK):
            records = self._uow.records.get_many(sorted({c.record_id for c in chunk}))
            for ch in chunk:
                rec = records.get(ch.record_id)
                if rec is not None and self._in_scope(rec, scope):
                    out[(ch.kind.value,)] += 1
        return dict(out)

    def problems(self, scope: ReportScope) -> Groups:
        """See :meth:`ReportSource.problems`."""
        out: Counter[tuple[Any, ...]] = Counter()
        for p in self._uow.problems.iter(county_prefix=scope.region_prefix):
            if scope.kindergarten_code is None or p.kindergarten_code == scope.kindergarten_code:
                out[(p.kind.value, p.status.value)] += 1
        return dict(out)

    def attendance_by_day(self, scope: ReportScope, start: date, end: date) -> Groups:
        """See :meth:`ReportSource.attendance_by_day`."""
        out: Counter[tuple[Any, ...]] = Counter()
        for chunk in chunked(self._records(scope), _CHUNK):
            found = fetch_attendance(self._uow, [r.id for r in chunk], start=start, end=end)
            for entries in found.values():
                for e in entries:
                    out[(e.day, e.status.value)] += 1
        return dict(out)


@attrs.frozen
class Report:
    """The assembled report (every mapping is JSON-ready after :meth:`to_dict`)."""

    region: str
    school_year: int
    as_of: date
    total: int
    by_province: dict[str, int]
    by_city: dict[str, int]
    by_county: dict[str, int]
    by_kindergarten: dict[str, int]
    by_type: dict[str, int]
    by_grade: dict[str, int]
    by_sex: dict[str, int]
    by_age: dict[str, int]
    by_migrant: dict[str, int]
    rural_migrants: int
    inclusive_share: float | None
    public_share: float | None
    inclusive_share_by_county: dict[str, float]
    grade_sex: dict[str, dict[str, int]]
    population_3_5: int | None
    gross_enrolment_rate: float | None
    changes_by_kind: dict[str, int]
    problems: dict[str, dict[str, int]]
    attendance_trend: dict[str, dict[str, int]]
    kindergarten_code: str | None = None
    kindergarten_names: dict[str, str] = attrs.field(factory=dict)
    """School code → kindergarten name, for the kindergartens counted (for display)."""
    stuck: dict[str, int] = attrs.field(factory=dict)
    """Live records without a national number, by reason (:mod:`studentstatus.services.stuck`)."""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form.

        >>> r = assemble({d: {} for d in DIMENSIONS}, {}, {}, {}, region="11",
        ...              school_year=2026, as_of=date(2026, 10, 1))
        >>> r.to_dict()["total"]
        0
        """
        out = attrs.asdict(self)
        out["as_of"] = self.as_of.isoformat()
        return out


def _share(part: int, whole: int) -> float | None:
    return round(part / whole, 6) if whole else None


def _sorted(counter: Mapping[Any, int]) -> dict[str, int]:
    return {str(k): counter[k] for k in sorted(counter, key=lambda k: (k is None, str(k)))}


def _in_order_of(kinds: Iterable[Any], counter: Mapping[Any, int]) -> dict[str, int]:
    """Counts in the order of an enum (a change's life: register, approve, …), others last."""
    rank = {k.value: i for i, k in enumerate(kinds)}
    return {
        str(k): counter[k] for k in sorted(counter, key=lambda k: (rank.get(k, len(rank)), str(k)))
    }


def _grade_keys(keys: Iterable[Any]) -> list[Any]:
    """Grade keys in their natural order (托班, 小班, 中班, 大班), unknown ones last."""
    rank = {g.value: i for i, g in enumerate(Grade)}
    return sorted(keys, key=lambda k: (rank.get(str(k), len(rank)), str(k)))


def _by_grade(counter: Mapping[Any, int]) -> dict[str, int]:
    return {str(k): counter[k] for k in _grade_keys(counter)}


def assemble(
    enrolment: Mapping[str, Groups],
    changes: Groups,
    problems: Groups,
    attendance: Groups,
    *,
    region: str,
    school_year: int,
    as_of: date,
    policy: Policy | None = None,
    population: Iterable[PopulationPerson] | None = None,
    kindergarten_code: str | None = None,
) -> Report:
    """Turn grouped counts into a :class:`Report` (pure; shared by every source).

    ``population`` is the region's extract: every person aged 3–5 (周岁) on
    the school year's cut-off counts in the gross-enrolment denominator — but
    for a person whose ``hukou_region`` lies outside ``region`` (a province's
    extract given to a county's report counts that county's children only).
    """
    pol = policy if policy is not None else Policy()
    region_counts: Counter[str] = Counter()
    by_type: Counter[str] = Counter()
    share_by_county: dict[str, list[int]] = {}
    for (code, kg_type, inc), n in enrolment.get("county_type", {}).items():
        region_counts[code] += n
        kind = kindergarten_kind(kg_type, inc)
        by_type[kind] += n
        pair = share_by_county.setdefault(code, [0, 0])
        pair[1] += n
        if kind in ("public", "private_inclusive"):
            pair[0] += n
    total = sum(region_counts.values())
    prov: Counter[str] = Counter()
    city: Counter[str] = Counter()
    county: Counter[str] = Counter()
    for code, n in region_counts.items():
        prov[code[:2]] += n
        city[code[:4]] += n
        county[code] += n
    ages: Counter[str] = Counter()
    for (birth,), n in enrolment.get("birth_date", {}).items():
        ages["unknown" if birth is None else str(age_at_cutoff(birth, school_year, pol))] += n
    migrants: Counter[str] = Counter()
    rural = 0
    for (hukou, school, is_rural), n in enrolment.get("migrant", {}).items():
        status = migrant_status(hukou, school)
        migrants[status.value] += n
        if is_rural and status in (
            MigrantStatus.OTHER_COUNTY_SAME_PROVINCE,
            MigrantStatus.OTHER_PROVINCE,
        ):
            rural += n
    inclusive = by_type["public"] + by_type["private_inclusive"]
    pop: int | None = None
    if population is not None:
        cut = cutoff(school_year, pol)
        pop = sum(
            1
            for p in population
            if 3 <= age_on(p.birth_date, cut) <= 5
            and (not p.hukou_region or p.hukou_region.startswith(region))
        )
    grade_sex: dict[str, dict[str, int]] = {}
    grades: Counter[str | None] = Counter()
    sexes: Counter[str | None] = Counter()
    for (grade, sex), n in enrolment.get("grade_sex", {}).items():
        grade_sex.setdefault(str(grade), {})[str(sex)] = n
        grades[grade] += n
        sexes[sex] += n
    prob: dict[str, dict[str, int]] = {}
    for (kind, status), n in sorted(problems.items()):
        prob.setdefault(kind, {})[status] = n
    trend: dict[str, dict[str, int]] = {}
    for (day, status), n in sorted(attendance.items()):
        trend.setdefault(day.isoformat(), {})[status] = n
    return Report(
        region=region,
        school_year=school_year,
        as_of=as_of,
        total=total,
        by_province=_sorted(prov),
        by_city=_sorted(city),
        by_county=_sorted(county),
        by_kindergarten=_sorted({k[0]: n for k, n in enrolment.get("kindergarten", {}).items()}),
        by_type={
            k: by_type[k] for k in ("public", "private_inclusive", "private_other", "unknown")
        },
        by_grade=_by_grade(grades),
        by_sex=_sorted(sexes),
        by_age=_sorted(ages),
        by_migrant=_sorted(migrants),
        rural_migrants=rural,
        inclusive_share=_share(inclusive, total),
        public_share=_share(by_type["public"], total),
        inclusive_share_by_county={
            c: round(a / b, 6) for c, (a, b) in sorted(share_by_county.items()) if b
        },
        grade_sex={g: dict(sorted(grade_sex[g].items())) for g in _grade_keys(grade_sex)},
        population_3_5=pop,
        gross_enrolment_rate=_share(total, pop) if pop is not None else None,
        changes_by_kind=_in_order_of(ChangeKind, {k[0]: n for k, n in changes.items()}),
        problems=prob,
        attendance_trend=trend,
        kindergarten_code=kindergarten_code,
    )


def _stuck(rt: Runtime, scope: ReportScope) -> dict[str, int]:
    from studentstatus.services.stuck import count_stuck_records

    return count_stuck_records(rt, scope.region_prefix, scope.kindergarten_code)


def source_for(uow: UnitOfWork, store: Any = None) -> ReportSource:
    """The unit of work's own source (:class:`~studentstatus.ports.ReportingUnitOfWork`,
    e.g. the SQL store's ``GROUP BY`` queries), else counting through the ports.

    ``store`` is accepted for callers of the earlier signature and not used.

    >>> from studentstatus.adapters.memory import MemoryStore
    >>> store = MemoryStore()
    >>> with store.unit_of_work() as uow:
    ...     type(source_for(uow)).__name__
    'PortReportSource'
    """
    del store
    if isinstance(uow, ReportingUnitOfWork):
        return uow.report_source()
    return PortReportSource(uow)


def report_scope(uow: UnitOfWork, operator: Operator, region: str) -> ReportScope:
    """Check that ``operator`` may report on ``region`` and return the scope.

    County/city/province operators: ``region`` must lie inside their scope
    (a province may ask for one of its counties, a county not for its city).
    A kindergarten operator gets its own kindergarten only (``region`` must
    contain it).  Refusals are logged and raise PermissionDenied.
    """
    require_role(operator, "report")
    valid = region.isdigit() and len(region) in (2, 4, 6)
    if not valid and not (region == "" and operator.region_prefix == ""):
        raise ValidationError(
            f"region must be a 2, 4 or 6-digit code, not {region[:12]!r}",
            message_zh="区划代码应为2、4或6位数字",
            code="region_invalid",
            field="region",
        )
    kg_code = operator.kindergarten_code
    if kg_code is not None:
        kg = uow.kindergartens.find(kg_code)
        if kg is None or not kg.region_code.startswith(region):
            raise PermissionDenied(str(operator), f"region {region}")
        return ReportScope(region, kg_code)
    region_in_scope(operator, "report", region)
    return ReportScope(region)


def build_report(
    rt: Runtime,
    operator: Operator,
    region: str,
    school_year: int,
    *,
    population: Iterable[PopulationPerson] | None = None,
    as_of: date | None = None,
    source: Callable[[UnitOfWork], ReportSource] | None = None,
) -> Report:
    """The report of ``region`` for ``school_year`` (see the module docstring), scope-checked.

    ``source`` (a factory taking the unit of work, e.g. :class:`PortReportSource`)
    overrides the automatic choice (tests compare both).
    The attendance trend covers the 30 days up to ``as_of`` (default today).
    """
    today = as_of or rt.clock.today()
    start, end = school_year_range(school_year)
    with rt.store.unit_of_work() as uow:
        scope = report_scope(uow, operator, region)
        src = source(uow) if source is not None else source_for(uow, rt.store)
        enrol = src.enrolment(scope)
        changes = src.changes_by_kind(scope, start, end)
        problems = src.problems(scope)
        trend = src.attendance_by_day(scope, today - timedelta(days=TREND_DAYS - 1), today)
        names = _kindergarten_names(uow, scope, {k[0] for k in enrol.get("kindergarten", {})})
    report = assemble(
        enrol,
        changes,
        problems,
        trend,
        region=region,
        school_year=school_year,
        as_of=today,
        policy=rt.policy,
        population=population,
        kindergarten_code=scope.kindergarten_code,
    )
    return attrs.evolve(report, kindergarten_names=names, stuck=_stuck(rt, scope))


def _kindergarten_names(uow: UnitOfWork, scope: ReportScope, codes: set[str]) -> dict[str, str]:
    """Names of the counted kindergartens: one streamed read of the scope's kindergartens."""
    found: Iterable[Kindergarten]
    if scope.kindergarten_code is not None:
        kg = uow.kindergartens.find(scope.kindergarten_code)
        found = [kg] if kg is not None else []
    else:
        found = uow.kindergartens.iter(region_prefix=scope.region_prefix)
    names = {k.school_code: k.name for k in found if k.school_code in codes and k.name}
    for code in sorted(codes - names.keys()):  # a record outside its kindergarten's region
        kg = uow.kindergartens.find(code)
        if kg is not None and kg.name:
            names[code] = kg.name
    return names
