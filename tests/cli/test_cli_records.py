"""``studentstatus records``: portal search from the command line, on a SQLite file."""

from __future__ import annotations

import json
from pathlib import Path

import attrs
import pytest
from click.testing import CliRunner

from services._changes_world import KG_A, KG_B, KG_D, runtime, seed
from studentstatus.adapters.sql import SqlStore
from studentstatus.cli import main
from studentstatus.cli.records import _width
from studentstatus.domain import numbers
from studentstatus.domain.enums import Grade, State

PLAN = [(kg, g) for kg in (KG_A, KG_B, KG_D) for g in (Grade.JUNIOR, Grade.MIDDLE, Grade.SENIOR)]


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    store = SqlStore(url, create=True)
    records = seed(runtime(store), PLAN)
    with store.unit_of_work() as uow:
        kids = uow.children.get_many([r.child_id for r in records])
        first = records[0]
        doc = kids[first.child_id].document
        assert doc is not None
        uow.records.update(attrs.evolve(first, national_number=numbers.g_number(doc.number)))
        uow.records.update(attrs.evolve(records[1], state=State.PENDING))
        uow.commit()
    store.close()
    return {"STUDENTSTATUS_STORE": url, "STUDENTSTATUS_NOW": "2025-09-02T09:00:00+08:00"}


def _run(env: dict[str, str], *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, ["records", *args], env=env, catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def _secrets(env: dict[str, str]) -> list[str]:
    """Every full identity / national / temporary number and birth date in the store."""
    store = SqlStore(env["STUDENTSTATUS_STORE"])
    out: list[str] = []
    with store.unit_of_work() as uow:
        for rec in uow.records.iter():
            kid = uow.children.get(rec.child_id)
            assert kid.document is not None
            out += [kid.document.number, kid.birth_date.isoformat()]
            out += [n for n in (rec.temp_number, rec.national_number) if n]
    store.close()
    return out


def test_table_pages_and_masks(env: dict[str, str]) -> None:
    code, out, _err = _run(env, "--as", "county:110105", "--limit", "4")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split()[:3] == ["RECORD", "NAME", "SEX"]
    assert len(lines) == 1 + 4 + 1
    assert lines[-1].startswith("more: --after ")
    after = lines[-1].split()[-1]
    assert lines[-2].startswith(after)
    code, rest, _err = _run(env, "--as", "county:110105", "--after", after)
    assert code == 0
    assert len(rest.splitlines()) == 1 + 2  # header and the last two of six; no "more:"
    assert "more:" not in rest

    # columns line up under their headers on a terminal (a Chinese character is two wide)
    def column(line: str, text: str) -> int:
        return _width(line[: line.index(text)])

    start = column(lines[0], "KINDERGARTEN")
    assert {column(line, "1111") for line in lines[1:-1]} == {start}
    for secret in _secrets(env):
        assert secret not in out + rest


def test_json_page(env: dict[str, str]) -> None:
    code, out, _err = _run(env, "--as", "ministry", "--state", "待核准", "--json")
    assert code == 0
    doc = json.loads(out)
    assert doc["next_after"] is None
    assert [i["state"] for i in doc["items"]] == ["PENDING"]
    code, out, _err = _run(env, "--as", "ministry", "--limit", "500", "--json")
    doc = json.loads(out)
    assert len(doc["items"]) == len(PLAN)
    assert any(i["national_number"] for i in doc["items"])
    assert "birth_date" not in doc["items"][0]
    for secret in _secrets(env):
        assert secret not in out


def test_number_outside_the_scope_is_not_listed(env: dict[str, str]) -> None:
    store = SqlStore(env["STUDENTSTATUS_STORE"])
    with store.unit_of_work() as uow:
        shenzhen = next(uow.records.iter(region_prefix="44"))
    store.close()
    assert shenzhen.temp_number is not None
    code, out, _err = _run(env, "--as", "county:110105", "--number", shenzhen.temp_number)
    assert (code, out) == (0, "no records\n")
    code, out, _err = _run(env, "--as", "province:44", "--number", shenzhen.temp_number)
    assert code == 0
    assert shenzhen.id in out


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (["--limit", "0"], "limit_invalid"),
        (["--limit", "501"], "limit_invalid"),
        (["--state", "ASLEEP"], "state_invalid"),
        (["--grade", "七年级"], "grade_invalid"),
        (["--birth-date", "2020-03-15"], "birth_date_without_name"),
    ],
)
def test_refused_values_exit_1_with_their_code(
    env: dict[str, str], args: list[str], code: str
) -> None:
    status, _out, err = _run(env, "--as", "ministry", *args)
    assert status == 1
    assert code in err
    status, out, _err = _run(env, "--as", "ministry", *args, "--json")
    assert status == 1
    assert json.loads(out)["error"]["code"] == code


@pytest.mark.parametrize(
    "args",
    [
        ["--as", "county:1101"],
        ["--as", "ministry", "--birth-date", "15/03/2020"],
        ["--as", "ministry", "--limit", "many"],
        [],
    ],
)
def test_usage_errors_exit_2(env: dict[str, str], args: list[str]) -> None:
    status, _out, _err = _run(env, *args)
    assert status == 2
