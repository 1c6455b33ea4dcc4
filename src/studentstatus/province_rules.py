"""Province rule sets as data: read a :class:`~studentstatus.domain.province.ProvincePolicy`
from TOML or JSON, validated with cattrs; every error names its path.

A file (every table and key but ``province`` and ``name`` is optional; what is
left out keeps the national default)::

    province = "44"                 # two-digit province code
    name = "广东省"
    sources = ["《广东省中小学生学籍管理办法》"]

    [age]
    cutoff = "08-31"                # MM-DD: the age cut-off
    nursery = true                  # 托班 records kept (false: NURSERY is refused)
    grade_ages = { JUNIOR = 3, MIDDLE = 4, SENIOR = 5 }   # completed years per grade
    tolerance = 0                   # years a band is widened both ways

    [suspension]
    application_days = 366          # one SUSPEND or EXTEND
    suspension_days = 731           # one suspension with its extensions
    total_days = 731                # all suspensions of a record
    grace_days = 30                 # overdue (dropout watch) this long after the end

    [approvals]
    step_working_days = 10          # deadline of each approval step
    cross_province = true           # both provinces approve inter-province transfers

    [changes.SKIP]
    allowed = false                 # this province does not allow skipping
    [changes.SUSPEND]
    approvals = ["kindergarten", "county"]   # the chain, in order
    step_working_days = 5

    [problems]
    due = "07-31"                   # problems are due by this day of the next July/...

    [records]
    restore_window_days = 366
    invalid_id = "problem"          # or "reject"

>>> rules = loads_province('''
... province = "44"
... name = "广东省"
... [changes.SKIP]
... allowed = false
... [suspension]
... total_days = 366
... ''')
>>> rules.province, rules.policy.total_suspension_days, rules.policy.allows(ChangeKind.SKIP)
('44', 366, False)
>>> try:
...     loads_province('province = "4x"\\nname = 1\\n[suspension]\\ntotal_days = "a year"')
... except RuleViolations as err:
...     [(v.code, v.field) for v in err.violations]
[('wrong_type', 'name'), ('wrong_type', 'suspension.total_days'), ('province_unknown', 'province')]
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Callable, Iterable, Mapping
from datetime import date
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal, TypeVar

import attrs
import cattrs

from studentstatus import regions
from studentstatus.domain.enums import ChangeKind, Grade, Role
from studentstatus.domain.policy import DEFAULT_GRADE_AGES, OPTIONAL_CHANGES, Policy
from studentstatus.domain.province import ProvincePolicy
from studentstatus.errors import RuleViolations, Violation

__all__ = ["load_province", "load_provinces", "loads_province", "province_from_dict"]

_NATIONAL = Policy()


@attrs.frozen(kw_only=True)
class _Age:
    cutoff: str = f"{_NATIONAL.cutoff_month:02d}-{_NATIONAL.cutoff_day:02d}"
    nursery: bool = True
    grade_ages: dict[str, int] = attrs.field(factory=dict)
    tolerance: int = _NATIONAL.age_tolerance


@attrs.frozen(kw_only=True)
class _Suspension:
    application_days: int = _NATIONAL.max_suspension_days
    suspension_days: int = _NATIONAL.max_episode_days
    total_days: int = _NATIONAL.total_suspension_days
    grace_days: int = _NATIONAL.suspension_grace_days


@attrs.frozen(kw_only=True)
class _Approvals:
    step_working_days: int = _NATIONAL.step_working_days
    cross_province: bool = _NATIONAL.require_cross_province_approval


@attrs.frozen(kw_only=True)
class _Change:
    allowed: bool = True
    approvals: list[str] | None = None
    step_working_days: int | None = None


@attrs.frozen(kw_only=True)
class _Problems:
    due: str = f"{_NATIONAL.problem_due_month:02d}-{_NATIONAL.problem_due_day:02d}"


@attrs.frozen(kw_only=True)
class _Records:
    restore_window_days: int = _NATIONAL.restore_window_days
    invalid_id: str = _NATIONAL.invalid_id


@attrs.frozen(kw_only=True)
class _File:
    province: str
    name: str
    sources: list[str] = attrs.field(factory=list)
    age: _Age = attrs.field(factory=_Age)
    suspension: _Suspension = attrs.field(factory=_Suspension)
    approvals: _Approvals = attrs.field(factory=_Approvals)
    changes: dict[str, _Change] = attrs.field(factory=dict)
    problems: _Problems = attrs.field(factory=_Problems)
    records: _Records = attrs.field(factory=_Records)


_T = TypeVar("_T")


def _strict(kind: type[_T]) -> Callable[[object, type], _T]:
    def hook(value: object, _: type) -> _T:
        if type(value) is not kind:
            raise TypeError(f"expected {kind.__name__}, got {type(value).__name__}")
        return value

    return hook


_CONVERTER = cattrs.Converter(forbid_extra_keys=True)
for _kind in (str, int, bool):
    _CONVERTER.register_structure_hook(_kind, _strict(_kind))

_MESSAGES: Mapping[str, tuple[str, str]] = MappingProxyType(
    {
        "wrong_type": ("类型错误", "wrong type"),
        "key_missing": ("缺少必填项", "a required key is missing"),
        "key_unknown": ("未知的配置项", "unknown key"),
        "province_unknown": ("省级区划代码无效", "not a province code"),
        "change_kind_unknown": ("未知的变动类型", "unknown change kind"),
        "change_not_optional": ("此类变动不能停用", "this change kind cannot be switched off"),
        "role_unknown": ("未知的审核角色", "unknown approval role"),
        "grade_unknown": ("未知的班级（年级）", "unknown grade"),
        "day_invalid": ("日期应为 MM-DD 格式的有效日期", "expected a valid MM-DD day"),
        "value_out_of_range": ("数值超出允许范围", "value out of range"),
        "file_unreadable": ("规则文件无法读取", "the rules file cannot be read"),
        "syntax_error": ("规则文件格式错误", "the rules file does not parse"),
    }
)


def _v(code: str, field: str, hint: str = "") -> Violation:
    zh, en = _MESSAGES[code]
    return Violation(code, field, zh, en, hint)


_INDEX = re.compile(r"\[['\"]?([^\]'\"]*)['\"]?\]")


def _path(raw: str) -> str:
    """``$.changes['SKIP'].allowed`` → ``changes.SKIP.allowed``."""
    text = _INDEX.sub(lambda m: "." + m.group(1), raw)
    return text.removeprefix("$").removeprefix(".")


def _shape_violations(exc: Exception) -> list[Violation]:
    out: list[Violation] = []
    for line in cattrs.transform_error(exc, path="$"):
        message, _, where = line.rpartition(" @ ")
        field = _path(where)
        if message.startswith("extra fields found"):
            keys = message[message.find("(") + 1 : message.rfind(")")]
            for key in keys.split(", "):
                out.append(_v("key_unknown", f"{field}.{key}".lstrip("."), key))
        elif message.startswith("required field missing"):
            out.append(_v("key_missing", field))
        else:
            out.append(_v("wrong_type", field, message))
    return out


def _day(text: str, field: str, out: list[Violation]) -> tuple[int, int] | None:
    match = re.fullmatch(r"(\d{2})-(\d{2})", text)
    if match is not None:
        month, day = int(match[1]), int(match[2])
        try:
            date(2024, month, day)  # a leap year: 02-29 is a valid cut-off
        except ValueError:
            pass
        else:
            return month, day
    out.append(_v("day_invalid", field, text))
    return None


def _positive(value: int, field: str, out: list[Violation], *, low: int = 1) -> None:
    if value < low:
        out.append(_v("value_out_of_range", field, f"at least {low}"))


def _build(raw: _File) -> tuple[ProvincePolicy | None, list[Violation]]:
    out: list[Violation] = []
    if not (len(raw.province) == 2 and regions.is_known(raw.province + "0000")):
        out.append(_v("province_unknown", "province", raw.province))
    cutoff = _day(raw.age.cutoff, "age.cutoff", out)
    due = _day(raw.problems.due, "problems.due", out)
    ages: dict[Grade, int] = dict(DEFAULT_GRADE_AGES)
    for key, years in raw.age.grade_ages.items():
        try:
            ages[Grade.parse(key)] = years
        except ValueError:
            out.append(_v("grade_unknown", f"age.grade_ages.{key}", key))
            continue
        _positive(years, f"age.grade_ages.{key}", out, low=0)
    if not raw.age.nursery:
        ages.pop(Grade.NURSERY, None)
    ladder = [ages[g] for g in Grade if g in ages]
    if ladder != sorted(set(ladder)):
        out.append(_v("value_out_of_range", "age.grade_ages", "ages must rise with the grade"))
    _positive(raw.age.tolerance, "age.tolerance", out, low=0)
    s = raw.suspension
    for name in ("application_days", "suspension_days", "total_days"):
        _positive(getattr(s, name), f"suspension.{name}", out)
    _positive(s.grace_days, "suspension.grace_days", out, low=0)
    _positive(raw.approvals.step_working_days, "approvals.step_working_days", out)
    _positive(raw.records.restore_window_days, "records.restore_window_days", out, low=0)
    if raw.records.invalid_id not in ("problem", "reject"):
        out.append(_v("value_out_of_range", "records.invalid_id", "problem or reject"))
    approvals = dict(_NATIONAL.approvals)
    step_days: dict[ChangeKind, int] = {}
    disallowed: set[ChangeKind] = set()
    for key, change in raw.changes.items():
        where = f"changes.{key}"
        try:
            kind = ChangeKind(key.upper())
        except ValueError:
            out.append(_v("change_kind_unknown", where, key))
            continue
        if not change.allowed:
            if kind in OPTIONAL_CHANGES:
                disallowed.add(kind)
            else:
                out.append(_v("change_not_optional", f"{where}.allowed", kind.value))
        if change.approvals is not None:
            roles: list[Role] = []
            for i, name in enumerate(change.approvals):
                try:
                    roles.append(Role(name.lower()))
                except ValueError:
                    out.append(_v("role_unknown", f"{where}.approvals.{i}", name))
            approvals[kind] = tuple(roles)
        if change.step_working_days is not None:
            _positive(change.step_working_days, f"{where}.step_working_days", out)
            step_days[kind] = change.step_working_days
    if out or cutoff is None or due is None:
        return None, out
    invalid_id: Literal["problem", "reject"] = (
        "reject" if raw.records.invalid_id == "reject" else "problem"
    )
    policy = Policy(
        cutoff_month=cutoff[0],
        cutoff_day=cutoff[1],
        grade_ages=MappingProxyType(ages),
        age_tolerance=raw.age.tolerance,
        max_suspension_days=s.application_days,
        total_suspension_days=s.total_days,
        max_episode_days=s.suspension_days,
        suspension_grace_days=s.grace_days,
        restore_window_days=raw.records.restore_window_days,
        invalid_id=invalid_id,
        problem_due_month=due[0],
        problem_due_day=due[1],
        step_working_days=raw.approvals.step_working_days,
        approvals=MappingProxyType(approvals),
        require_cross_province_approval=raw.approvals.cross_province,
        step_days=MappingProxyType(step_days),
        disallowed_changes=frozenset(disallowed),
    )
    return ProvincePolicy(raw.province, raw.name, policy, tuple(raw.sources)), []


def province_from_dict(data: object) -> ProvincePolicy:
    """A province's rules from parsed TOML or JSON.

    Raises :class:`~studentstatus.errors.RuleViolations` with every error at once,
    each with a code, the path of the key (``field``, e.g. ``suspension.total_days``)
    and messages in Chinese and English.

    >>> bj = province_from_dict({"province": "11", "name": "北京市", "age": {"nursery": False}})
    >>> bj.has_nursery
    False
    >>> try:
    ...     province_from_dict({"province": "11", "name": "北京市", "age": {"nurseri": False}})
    ... except RuleViolations as err:
    ...     [(v.code, v.field) for v in err.violations]
    [('key_unknown', 'age.nurseri')]
    """
    try:
        raw = _CONVERTER.structure(data, _File)
    except (cattrs.BaseValidationError, TypeError, ValueError) as exc:
        found = (
            _shape_violations(exc)
            if isinstance(exc, cattrs.BaseValidationError)
            else [_v("wrong_type", "", str(exc))]
        )
        if isinstance(data, Mapping) and isinstance(data.get("province"), str):
            province = data["province"]
            if not (len(province) == 2 and regions.is_known(province + "0000")):
                found.append(_v("province_unknown", "province", province))
        raise RuleViolations(found) from None
    rules, found = _build(raw)
    if rules is None:
        raise RuleViolations(found)
    return rules


def loads_province(text: str, *, format: Literal["toml", "json"] = "toml") -> ProvincePolicy:
    """A province's rules from TOML (default) or JSON text (see :func:`province_from_dict`).

    >>> loads_province('{"province": "11", "name": "北京市"}', format="json").name
    '北京市'
    >>> loads_province('province = ', format="toml")
    Traceback (most recent call last):
    ...
    studentstatus.errors.RuleViolations: syntax_error: syntax_error: ...
    """
    try:
        data: Any = json.loads(text) if format == "json" else tomllib.loads(text)
    except (ValueError, tomllib.TOMLDecodeError) as exc:
        raise RuleViolations([_v("syntax_error", "", str(exc)[:200])]) from None
    return province_from_dict(data)


def load_province(path: str | Path) -> ProvincePolicy:
    """A province's rules from a ``.toml`` or ``.json`` file (by its suffix).

    >>> load_province("no/such/44.toml")
    Traceback (most recent call last):
    ...
    studentstatus.errors.RuleViolations: file_unreadable: file_unreadable: ...
    """
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise RuleViolations([_v("file_unreadable", "", f"{p.name}: {exc.strerror}")]) from None
    return loads_province(text, format="json" if p.suffix.lower() == ".json" else "toml")


def load_provinces(paths: Iterable[str | Path]) -> dict[str, Policy]:
    """The policies of several province files (or of every ``*.toml``/``*.json`` in a
    directory), by province code: ready for ``Runtime(policies=...)``.

    Raises :class:`~studentstatus.errors.RuleViolations` listing every file's errors
    (``field`` prefixed with the file name) and two files for one province.

    >>> load_provinces([])
    {}
    """
    files: list[Path] = []
    for path in paths:
        p = Path(path)
        if p.is_dir():
            files += sorted(f for f in p.iterdir() if f.suffix.lower() in (".toml", ".json"))
        else:
            files.append(p)
    found: dict[str, Policy] = {}
    errors: list[Violation] = []
    for f in files:
        try:
            rules = load_province(f)
        except RuleViolations as err:
            errors += [attrs.evolve(v, field=f"{f.name}:{v.field}") for v in err.violations]
            continue
        if rules.province in found:
            errors.append(_v("value_out_of_range", f"{f.name}:province", "two files, one province"))
        found[rules.province] = rules.policy
    if errors:
        raise RuleViolations(errors)
    return found
