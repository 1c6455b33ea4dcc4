"""Province rule sets as data: the two example files load and run end to end through the
change services; the runtime picks each record's province; host guards show up in dry runs;
every error of a bad file names its path."""

from __future__ import annotations

import json
import tomllib
from datetime import date, timedelta
from pathlib import Path

import attrs
import pytest

from studentstatus.adapters.memory import MemoryStore
from studentstatus.domain import machine
from studentstatus.domain.calendar import add_working_days
from studentstatus.domain.enums import ChangeKind, Grade, Role, State
from studentstatus.domain.policy import HostGuard, Policy
from studentstatus.domain.province import ProvincePolicy
from studentstatus.errors import RuleViolations, Violation
from studentstatus.province_rules import (
    load_province,
    load_provinces,
    loads_province,
    province_from_dict,
)
from studentstatus.services import changes as svc
from studentstatus.services.runtime import Runtime

from ._changes_world import BIRTH, KG_A, KG_D, OPS, runtime, seed

FILES = Path(__file__).resolve().parents[2] / "examples" / "provinces"


def _world() -> tuple[Runtime, str, str]:
    """A runtime with both example provinces; one JUNIOR record in Beijing, one in Guangdong."""
    rt = runtime(MemoryStore())
    rt = attrs.evolve(rt, policies=load_provinces([FILES]))
    beijing, guangdong = seed(rt, [(KG_A, Grade.JUNIOR), (KG_D, Grade.JUNIOR)])
    return rt, beijing.id, guangdong.id


def _codes(dry: svc.DryRun) -> list[str]:
    return [v.code for v in dry.violations]


@pytest.mark.parametrize("name", ["44.toml", "11.toml"])
def test_each_example_file_loads_and_equals_its_json(name: str) -> None:
    """Each shipped file loads; the same data as JSON gives the same rules."""
    rules = load_province(FILES / name)
    assert rules.province == name[:2]
    assert rules.sources
    data = tomllib.loads((FILES / name).read_text(encoding="utf-8"))
    assert loads_province(json.dumps(data, ensure_ascii=False), format="json") == rules


def test_guangdong_end_to_end() -> None:
    """44: no SKIP; half a year per application, a year per suspension; SUSPEND goes
    kindergarten → county with 5 working days a step; Beijing's record is not affected."""
    rt, bj, gd = _world()
    kg_d, kg_a = OPS["kgD"], OPS["kgA"]
    assert _codes(svc.dry_run(rt, kg_d, gd, ChangeKind.SKIP, reason="超常")) == [
        "change_not_allowed_here",
        "grade_age_mismatch",
    ]
    assert "change_not_allowed_here" not in _codes(
        svc.dry_run(rt, kg_a, bj, ChangeKind.SKIP, reason="超常")
    )
    today = rt.clock.today()
    long = svc.dry_run(rt, kg_d, gd, "SUSPEND", reason="病休", until=today + timedelta(200))
    assert _codes(long) == ["suspension_too_long"]
    assert (
        _codes(svc.dry_run(rt, kg_a, bj, "SUSPEND", reason="病休", until=today + timedelta(200)))
        == []
    )
    ok = svc.dry_run(rt, kg_d, gd, "SUSPEND", reason="病休", until=today + timedelta(183))
    assert ok.allowed
    assert ok.approvals == ("kindergarten", "county")
    out = svc.request_change(
        rt, kg_d, gd, ChangeKind.SUSPEND, reason="病休", until=today + timedelta(183)
    )
    assert out.request is not None
    steps = out.request.steps
    assert [s.role for s in steps] == [Role.KINDERGARTEN, Role.COUNTY]
    first = add_working_days(today, 5, rt.calendar)
    assert [s.due for s in steps] == [first, add_working_days(first, 5, rt.calendar)]
    county = svc.dry_run(rt, kg_a, bj, "SUSPEND", reason="病休", until=today + timedelta(30))
    assert county.approvals == ("county",)


def test_beijing_end_to_end() -> None:
    """11: no REPEAT, no 托班, a year of suspension in all, invalid IDs refused."""
    rt, bj, gd = _world()
    assert _codes(svc.dry_run(rt, OPS["kgA"], bj, "REPEAT", reason="发育迟缓")) == [
        "change_not_allowed_here"
    ]
    assert _codes(svc.dry_run(rt, OPS["kgD"], gd, "REPEAT", reason="发育迟缓")) == []
    beijing = rt.policy_for(KG_A.region_code)
    assert beijing.invalid_id == "reject"
    assert Grade.NURSERY not in beijing.grade_ages
    today = rt.clock.today()
    with rt.store.unit_of_work() as uow:
        child = uow.children.get("c0000")
    toddler = attrs.evolve(child, id="c-new", birth_date=BIRTH[Grade.NURSERY], document=None)
    register = machine.Change(ChangeKind.REGISTER, today, grade=Grade.NURSERY, child_id="c-new")
    for region, refused in (("110105", True), ("440305", False)):
        ctx = machine.Context(today, rt.policy_for(region), kindergarten=KG_A, child=toddler)
        codes = [v.code for v in machine.check(None, register, context=ctx)]
        assert ("grade_age_mismatch" in codes) is refused, (region, codes)
    with pytest.raises(RuleViolations) as err:
        svc.request_change(
            rt, OPS["kgA"], bj, ChangeKind.SUSPEND, reason="病休", until=today + timedelta(367)
        )
    assert {v.code for v in err.value.violations} == {
        "suspension_too_long",
        "suspension_episode_too_long",
        "suspension_cap_exceeded",
    }


def test_host_guard_shows_up_in_dry_runs_like_built_in_ones() -> None:
    """A guard registered for 44 refuses Guangdong requests with its code and both messages."""
    rt, bj, gd = _world()

    def graduating_term(record: object, change: machine.Change, ctx: object) -> list[Violation]:
        assert isinstance(record, machine.StatusRecord)
        if record.grade is Grade.JUNIOR and change.effective_date.month in (9, 10):
            return [Violation("no_autumn_suspension", "effective_date", "秋季开学不办理休学",
                              "no suspensions at the start of the autumn term")]  # fmt: skip
        return []

    rt.register_guard(
        HostGuard("no_autumn_suspension", graduating_term, kinds=frozenset({ChangeKind.SUSPEND})),
        provinces=["44"],
    )
    until = rt.clock.today() + timedelta(30)
    dry = svc.dry_run(rt, OPS["kgD"], gd, "SUSPEND", reason="病休", until=until)
    assert not dry.allowed
    assert dry.to_dict()["violations"] == [
        {
            "code": "no_autumn_suspension",
            "field": "effective_date",
            "message_zh": "秋季开学不办理休学",
            "message_en": "no suspensions at the start of the autumn term",
        }
    ]
    assert svc.dry_run(rt, OPS["kgA"], bj, "SUSPEND", reason="病休", until=until).allowed
    assert svc.dry_run(rt, OPS["kgD"], gd, "TRANSFER", to_kindergarten=KG_A.school_code).allowed
    with pytest.raises(RuleViolations):
        svc.request_change(rt, OPS["kgD"], gd, ChangeKind.SUSPEND, reason="病休", until=until)


def test_a_host_guard_must_return_proper_violations() -> None:
    """A guard returning something else than bilingual Violations is a programming error."""
    bad = Policy().with_guards(HostGuard("bad", lambda r, c, x: ["no"]))
    rec = machine.StatusRecord("r", "c", "1111000001", "110105", State.ACTIVE, Grade.JUNIOR,
                               date(2024, 9, 1))  # fmt: skip
    ctx = machine.Context(date(2025, 1, 1), bad)
    with pytest.raises(TypeError, match="host guard 'bad'"):
        machine.check(rec, machine.Change(ChangeKind.PROMOTE, date(2025, 1, 1)), context=ctx)


def test_every_error_of_a_bad_file_has_its_path() -> None:
    """Shape errors (cattrs) and rule errors, all at once, each with code, path, both messages."""
    data = {
        "province": "99",
        "name": "某省",
        "colour": "red",
        "age": {"cutoff": "02-30", "grade_ages": {"JUNIOR": "3", "TODDLER": 1}},
        "suspension": {"total_days": 0, "grace_days": -1},
        "changes": {
            "SKIP": {"allowed": "no"},
            "GRADUATE": {"allowed": False},
            "FLY": {},
            "SUSPEND": {"approvals": ["county", "mayor"]},
        },
    }
    with pytest.raises(RuleViolations) as err:
        province_from_dict(data)
    found = {(v.code, v.field) for v in err.value.violations}
    assert found == {
        ("wrong_type", "age.grade_ages.JUNIOR"),
        ("wrong_type", "changes.SKIP.allowed"),
        ("key_unknown", "colour"),
        ("province_unknown", "province"),
    }
    del data["colour"]
    data["age"] = {"cutoff": "02-30", "grade_ages": {"JUNIOR": 3, "TODDLER": 1}}
    data["changes"]["SKIP"] = {"allowed": False}  # type: ignore[index]
    with pytest.raises(RuleViolations) as err:
        province_from_dict(data)
    found = {(v.code, v.field) for v in err.value.violations}
    assert found == {
        ("province_unknown", "province"),
        ("day_invalid", "age.cutoff"),
        ("grade_unknown", "age.grade_ages.TODDLER"),
        ("value_out_of_range", "suspension.total_days"),
        ("value_out_of_range", "suspension.grace_days"),
        ("change_not_optional", "changes.GRADUATE.allowed"),
        ("change_kind_unknown", "changes.FLY"),
        ("role_unknown", "changes.SUSPEND.approvals.1"),
    }
    assert all(v.message_zh and v.message_en for v in err.value.violations)


def test_load_provinces_names_the_file_and_refuses_two_files_for_one_province(
    tmp_path: Path,
) -> None:
    """Errors of several files come together, prefixed with the file name."""
    (tmp_path / "a.toml").write_text('province = "44"\nname = "广东省"\n', encoding="utf-8")
    (tmp_path / "b.json").write_text('{"province": "44", "name": "x"}', encoding="utf-8")
    (tmp_path / "c.toml").write_text('province = "11"\nname = 3\n', encoding="utf-8")
    with pytest.raises(RuleViolations) as err:
        load_provinces([tmp_path])
    assert [(v.code, v.field) for v in err.value.violations] == [
        ("value_out_of_range", "b.json:province"),
        ("wrong_type", "c.toml:name"),
    ]


def test_province_policy_value() -> None:
    """What a loaded file says, read back from the value."""
    rules = load_province(FILES / "44.toml")
    assert isinstance(rules, ProvincePolicy)
    assert rules.has_nursery
    assert ChangeKind.SKIP not in rules.allowed_changes()
    assert rules.policy.step_days_for(ChangeKind.SUSPEND) == 5
    assert rules.policy.step_days_for(ChangeKind.TRANSFER) == 10
    assert (rules.policy.problem_due_month, rules.policy.problem_due_day) == (6, 30)
