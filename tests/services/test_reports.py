"""Reports: counts, shares, GER, scope, and the SQL GROUP BY source equal to the pure one."""

from __future__ import annotations

import random
import tempfile
import uuid
from collections import Counter
from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from studentstatus.adapters.memory import MemoryStore
from studentstatus.adapters.sql import SqlStore
from studentstatus.adapters.sql.reports import SqlReportSource
from studentstatus.domain.age import age_at_cutoff
from studentstatus.domain.enums import Sex, State
from studentstatus.domain.jurisdiction import Operator
from studentstatus.domain.migration import migrant_status
from studentstatus.domain.monitoring import PopulationPerson
from studentstatus.domain.policy import Policy
from studentstatus.errors import PermissionDenied
from studentstatus.services.reports import PortReportSource, build_report, source_for

from ._monitoring_world import KG_BY_CODE, TODAY, make_world, runtime, seed

MINISTRY = Operator.parse("ministry")


def _expected(world: dict, region: str) -> dict:
    """Counts recomputed naively from the generated lists (an independent oracle)."""
    children = {c.id: c for c in world["children"]}
    active = [
        r for r in world["records"] if r.state is State.ACTIVE and r.region_code.startswith(region)
    ]
    kinds = Counter()
    for r in active:
        kg = KG_BY_CODE[r.kindergarten_code]
        kinds[
            "public"
            if kg.type.value == "PUBLIC"
            else ("private_inclusive" if kg.inclusive else "private_other")
        ] += 1
    return {
        "total": len(active),
        "grades": Counter(r.grade.value if r.grade else "None" for r in active),
        "sex": Counter(children[r.child_id].sex.value for r in active),
        "ages": Counter(
            str(age_at_cutoff(children[r.child_id].birth_date, 2026, Policy())) for r in active
        ),
        "migrant": Counter(
            migrant_status(children[r.child_id].hukou_region, r.region_code).value for r in active
        ),
        "kinds": kinds,
    }


@pytest.mark.parametrize("region", ["", "11", "1101", "110105", "51"])
def test_memory_report_matches_a_naive_count(region: str) -> None:
    world = make_world(random.Random(11), 300)
    store = MemoryStore()
    seed(store, world)
    rep = build_report(runtime(store), MINISTRY, region, 2026)
    exp = _expected(world, region)
    assert rep.total == exp["total"]
    assert rep.by_grade == {k: exp["grades"][k] for k in sorted(exp["grades"])}
    assert rep.by_sex == dict(sorted(exp["sex"].items()))
    assert rep.by_age == dict(sorted(exp["ages"].items()))
    assert rep.by_migrant == dict(sorted(exp["migrant"].items()))
    for kind, n in exp["kinds"].items():
        assert rep.by_type[kind] == n
    assert sum(rep.by_county.values()) == rep.total == sum(rep.by_kindergarten.values())
    if rep.total:
        inclusive = exp["kinds"]["public"] + exp["kinds"]["private_inclusive"]
        assert rep.inclusive_share == pytest.approx(inclusive / rep.total, abs=1e-6)
        assert rep.public_share == pytest.approx(exp["kinds"]["public"] / rep.total, abs=1e-6)


def test_ministry_whole_country_and_levels() -> None:
    world = make_world(random.Random(3), 200)
    store = MemoryStore()
    seed(store, world)
    rep = build_report(runtime(store), MINISTRY, "", 2026)
    assert rep.total == _expected(world, "")["total"]
    assert set(rep.by_province) <= {"11", "51", "44"}
    assert sum(rep.by_city.values()) == rep.total
    assert rep.by_city.get("1101", 0) == sum(v for k, v in rep.by_county.items() if k[:4] == "1101")


def test_gross_enrolment_rate_uses_people_aged_3_to_5_on_the_cutoff() -> None:
    world = make_world(random.Random(5), 120, with_events=False)
    store = MemoryStore()
    seed(store, world)
    people = [
        PopulationPerson("A", "甲", Sex.M, date(2021, 8, 31)),  # 5 on 2026-08-31
        PopulationPerson("B", "乙", Sex.F, date(2023, 8, 31)),  # 3
        PopulationPerson("C", "丙", Sex.F, date(2023, 9, 1)),  # 2: not counted
        PopulationPerson("D", "丁", Sex.M, date(2020, 8, 31)),  # 6: not counted
        PopulationPerson("E", "戊", Sex.M, date(2022, 1, 1), "110105"),  # 4, this county
        PopulationPerson("F", "己", Sex.F, date(2022, 1, 1), "110108"),  # 4, elsewhere
    ]
    rep = build_report(runtime(store), MINISTRY, "110105", 2026, population=people)
    assert rep.population_3_5 == 3
    assert rep.gross_enrolment_rate == pytest.approx(rep.total / 3)
    city = build_report(runtime(store), MINISTRY, "1101", 2026, population=people)
    assert city.population_3_5 == 4
    people = people[:4]
    rep = build_report(runtime(store), MINISTRY, "110105", 2026, population=people)
    assert rep.population_3_5 == 2
    assert rep.gross_enrolment_rate == pytest.approx(rep.total / 2)


def test_changes_problems_and_attendance_trend_are_counted() -> None:
    world = make_world(random.Random(9), 150)
    store = MemoryStore()
    seed(store, world)
    rep = build_report(runtime(store), MINISTRY, "11", 2026)
    in_year = [
        c
        for c in world["changes"]
        if date(2026, 9, 1) <= c.effective_date <= date(2027, 8, 31)
        and next(r for r in world["records"] if r.id == c.record_id).region_code.startswith("11")
    ]
    assert rep.changes_by_kind.get("REGISTER", 0) == len(in_year)
    probs = Counter(
        (p.kind.value, p.status.value) for p in world["problems"] if p.county_code[:2] == "11"
    )
    assert {(k, s): n for k, v in rep.problems.items() for s, n in v.items()} == dict(probs)
    # The trend counts the latest entry per (record, day): corrections replace, never add.
    latest = {}
    recs = {r.id: r for r in world["records"]}
    for e in world["attendance"]:
        if recs[e.record_id].region_code.startswith("11"):
            latest[(e.record_id, e.day)] = e.status.value
    per_day = Counter((d.isoformat(), s) for (_r, d), s in latest.items())
    assert {(d, s): n for d, v in rep.attendance_trend.items() for s, n in v.items()} == dict(
        per_day
    )


def test_scope_is_checked_and_refusals_logged(caplog: pytest.LogCaptureFixture) -> None:
    store = MemoryStore()
    seed(store, make_world(random.Random(1), 20))
    rt = runtime(store)
    with pytest.raises(PermissionDenied):
        build_report(rt, Operator.parse("county:110105"), "11", 2026)
    with pytest.raises(PermissionDenied):
        build_report(rt, Operator.parse("province:44"), "110105", 2026)
    assert any("refused" in r.message for r in caplog.records)
    rep = build_report(rt, Operator.parse("kindergarten:1111000001"), "110105", 2026)
    assert set(rep.by_kindergarten) <= {"1111000001"}
    with pytest.raises(ValueError):
        build_report(rt, Operator.parse("province:11"), "11x", 2026)


def test_sql_store_picks_the_group_by_source(tmp_path) -> None:  # type: ignore[no-untyped-def]
    store = SqlStore(f"sqlite:///{tmp_path}/r.db", create=True)
    with store.unit_of_work() as uow:
        assert isinstance(source_for(uow, store), SqlReportSource)
    store.close()


def _compare(store: SqlStore, world: dict, region: str) -> None:
    seed(store, world)
    mem = MemoryStore()
    seed(mem, world)
    rt = runtime(store)
    sql_rep = build_report(rt, MINISTRY, region, 2026)
    port_rep = build_report(rt, MINISTRY, region, 2026, source=PortReportSource)
    mem_rep = build_report(runtime(mem), MINISTRY, region, 2026)
    assert sql_rep == port_rep == mem_rep


@settings(max_examples=25)
@given(
    seed_=st.integers(0, 2**32 - 1),
    n=st.integers(0, 60),
    region=st.sampled_from(["", "11", "1101", "110105", "44", "51"]),
)
def test_sql_report_equals_pure_python_on_random_data(seed_: int, n: int, region: str) -> None:
    world = make_world(random.Random(seed_), n, days=8)
    with tempfile.TemporaryDirectory() as tmp:
        store = SqlStore(f"sqlite:///{tmp}/h.db", create=True)
        try:
            _compare(store, world, region)
        finally:
            store.close()


@pytest.mark.postgres
def test_sql_report_equals_pure_python_on_postgresql(postgres_url: str) -> None:
    prefix = f"rp{uuid.uuid4().hex[:8]}_"
    store = SqlStore(postgres_url, prefix=prefix, create=True)
    try:
        _compare(store, make_world(random.Random(42), 200), "11")
    finally:
        store.drop_schema()
        store.close()


@pytest.mark.mysql
def test_sql_report_equals_pure_python_on_mariadb(mysql_url: str) -> None:
    prefix = f"rm{uuid.uuid4().hex[:8]}_"
    store = SqlStore(mysql_url, prefix=prefix, create=True)
    try:
        _compare(store, make_world(random.Random(43), 200), "")
    finally:
        store.drop_schema()
        store.close()


def test_today_constant_is_a_weekday_friday() -> None:
    # The generated attendance depends on TODAY being a school day.
    assert TODAY.weekday() == 4
