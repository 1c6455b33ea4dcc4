"""Jurisdictions: who an operator is, what it may see, and what its role may do.

An :class:`Operator` is a role and a scope, written ``role:scope``:

=================  ==========================  ==========================================
text               scope                       covers
=================  ==========================  ==========================================
``kindergarten:…``  10-digit school code        its own kindergarten and its records only
``county:CODE6``    6-digit county code         that county's kindergartens and records
``city:CODE4``      4-digit prefecture prefix   every county whose code starts with it
``province:CODE2``  2-digit province prefix     every county whose code starts with it
``ministry``        ``""``                      everything
=================  ==========================  ==========================================

``city:110100`` and ``province:110000`` are accepted and shortened to the
prefix.  Scopes are only checked for shape, not against the region registry:
a county code that was renamed last year still names its operators.

What a role may do is data, :data:`ROLE_RULES`; the services call
:func:`ensure_can` for the action and :meth:`Operator.ensure_covers` for every
kindergarten and record they read or change.

>>> op = Operator.parse("county:110105")
>>> str(op), op.role, op.region_prefix
('county:110105', <Role.COUNTY: 'county'>, '110105')
>>> op.covers_region("110105"), op.covers_region("110108")
(True, False)
>>> Operator.parse("city:110100").scope, str(Operator.parse("ministry"))
('1101', 'ministry')
>>> op.can("approve_record"), op.can("register")
(True, False)
>>> ensure_can(op, "register")
Traceback (most recent call last):
...
studentstatus.errors.PermissionDenied: role_not_allowed: county:110105 may not access ...
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import TypedDict

import attrs

from studentstatus.domain.enums import Role
from studentstatus.domain.model import Kindergarten, StatusRecord
from studentstatus.errors import PermissionDenied, ValidationError

__all__ = [
    "ACTIONS",
    "ROLE_RULES",
    "SCOPE_LENGTHS",
    "Operator",
    "ScopeFilter",
    "ensure_can",
]

SCOPE_LENGTHS: Mapping[Role, int] = MappingProxyType(
    {
        Role.KINDERGARTEN: 10,
        Role.COUNTY: 6,
        Role.CITY: 4,
        Role.PROVINCE: 2,
        Role.MINISTRY: 0,
    }
)
"""Digits in each role's scope (school code, county code, city / province prefix)."""

_K, _CO, _CI, _P, _M = Role.KINDERGARTEN, Role.COUNTY, Role.CITY, Role.PROVINCE, Role.MINISTRY
_ALL = frozenset(Role)
_COUNTY_UP = frozenset({_CO, _CI, _P, _M})

ROLE_RULES: Mapping[str, frozenset[Role]] = MappingProxyType(
    {
        # A kindergarten enters its children (入园建籍), asks for changes, keeps attendance.
        "register": frozenset({_K}),
        "request_change": frozenset({_K}),
        "attendance": frozenset({_K}),
        # The county approves records (核准) and arbitrates problems between kindergartens.
        "approve_record": frozenset({_CO}),
        "arbitrate": frozenset({_CO}),
        # Problems: kindergartens give evidence / correct / delete, counties review.
        "resolve_problem": frozenset({_K, _CO}),
        # Identity verification against public-security data runs at the province.
        "verify": frozenset({_P}),
        # National numbers are issued by the ministry, or by a province on its behalf.
        "issue_numbers": frozenset({_P, _M}),
        # Any role may sit in an approval chain; the step itself names role and scope.
        "approve_step": _ALL,
        # School-year rollover (bulk promote / graduate): county and above, within scope.
        "rollover": _COUNTY_UP,
        # Counties and above load the licensed-kindergarten list.
        "import_kindergartens": _COUNTY_UP,
        # The county records children at unlicensed kindergartens (no status, no number).
        "roster": frozenset({_CO}),
        # Reading and reports: everyone, within scope.
        "view": _ALL,
        "report": _ALL,
        # Dropout and absence monitoring lists: county and above.
        "monitor": _COUNTY_UP,
        # Bulk exports of personal data: county and above.
        "export": _COUNTY_UP,
        # The audit chain is one national log: only the province and the ministry check it.
        "audit_verify": frozenset({_P, _M}),
        # Between two provincial deployments: the destination's kindergarten or county asks
        # for a child of another province; the source's county decides.
        "request_transfer": frozenset({_K, _CO}),
        "decide_transfer": frozenset({_CO}),
        # The national hub's own work (dedupe across provinces, national counts): the ministry.
        "national": frozenset({_M}),
    }
)
"""Which roles may perform each action (scope is checked separately, per object)."""

ACTIONS: frozenset[str] = frozenset(ROLE_RULES)
"""Every action name :func:`ensure_can` knows."""


class ScopeFilter(TypedDict, total=False):
    """Keyword arguments that restrict a repository listing to an operator's scope.

    >>> ScopeFilter(region_prefix="4403")
    {'region_prefix': '4403'}
    """

    region_prefix: str
    kindergarten_code: str


def _invalid(what: str, hint: str = "") -> ValidationError:
    return ValidationError(
        f"an operator is written role:scope ({what})",
        field="operator",
        message_zh=f"操作者应写作 角色:范围（{what}）",
        code="operator_invalid",
        hint=hint
        or "kindergarten:SCHOOLCODE, county:CODE6, city:CODE4, province:CODE2 or ministry",
    )


def _normalise_scope(role: Role, scope: str) -> str:
    length = SCOPE_LENGTHS[role]
    if role in (Role.CITY, Role.PROVINCE) and len(scope) == 6:
        padding = "0" * (6 - length)
        if not scope.endswith(padding):
            raise _invalid(f"a {role.value} scope is its {length}-digit prefix")
        scope = scope[:length]
    if len(scope) != length or not (scope.isascii() and (scope.isdigit() or length == 0)):
        if role is Role.MINISTRY:
            raise _invalid("the ministry has no scope")
        raise _invalid(f"a {role.value} scope has {length} digits")
    return scope


@attrs.frozen
class Operator:
    """Who acts: a role and a scope (``id``/``name`` identify the person, optionally).

    Construct with :meth:`parse`, or directly with a normalised scope:

    >>> Operator(Role.PROVINCE, "44").covers_region("440306")
    True
    >>> Operator(Role.PROVINCE, "440000")
    Traceback (most recent call last):
    ...
    studentstatus.errors.ValidationError: operator_invalid [operator]: ...
    """

    role: Role
    scope: str = ""
    id: str | None = attrs.field(default=None, kw_only=True)
    name: str | None = attrs.field(default=None, kw_only=True)

    def __attrs_post_init__(self) -> None:
        if _normalise_scope(self.role, self.scope) != self.scope:
            raise _invalid(f"write {self.role.value} scopes as their prefix")

    @classmethod
    def parse(cls, text: str, *, id: str | None = None, name: str | None = None) -> Operator:
        """Parse ``role:scope`` (role as value, name or Chinese label, any case).

        >>> Operator.parse(" Kindergarten:1111000001 ")
        Operator(role=<Role.KINDERGARTEN: 'kindergarten'>, scope='1111000001', id=None, name=None)
        >>> Operator.parse("county:1101")
        Traceback (most recent call last):
        ...
        studentstatus.errors.ValidationError: operator_invalid [operator]: ...
        """
        if not isinstance(text, str):
            raise _invalid("text expected")
        raw = text.strip()
        role_text, _, scope = raw.partition(":")
        try:
            role = Role.parse(role_text)
        except ValueError:
            raise _invalid("unknown role") from None
        assert isinstance(role, Role)
        return cls(role, _normalise_scope(role, scope.strip()), id=id, name=name)

    def __str__(self) -> str:
        return self.role.value if self.role is Role.MINISTRY else f"{self.role.value}:{self.scope}"

    @property
    def region_prefix(self) -> str | None:
        """Region-code prefix for list queries: ``""`` for the ministry, the scope for
        county/city/province, ``None`` for a kindergarten (filter by
        :attr:`kindergarten_code` instead — never by an empty prefix).

        >>> kg = Operator.parse("kindergarten:1111000001")
        >>> Operator.parse("ministry").region_prefix, kg.region_prefix
        ('', None)
        """
        return None if self.role is Role.KINDERGARTEN else self.scope

    @property
    def kindergarten_code(self) -> str | None:
        """The school code of a kindergarten operator, else ``None``.

        >>> Operator.parse("kindergarten:1111000001").kindergarten_code
        '1111000001'
        """
        return self.scope if self.role is Role.KINDERGARTEN else None

    def list_filter(self) -> ScopeFilter:
        """Keyword arguments for ``records.iter(...)``/``count(...)`` limited to this scope.

        >>> Operator.parse("city:4403").list_filter()
        {'region_prefix': '4403'}
        >>> Operator.parse("kindergarten:1111000001").list_filter()
        {'kindergarten_code': '1111000001'}
        """
        if self.role is Role.KINDERGARTEN:
            return {"kindergarten_code": self.scope}
        return {"region_prefix": self.scope}

    def covers_region(self, region_code: str) -> bool:
        """Whether a county code lies in this operator's region (never for kindergartens).

        >>> city = Operator.parse("city:4403")
        >>> city.covers_region("440306"), city.covers_region("441900")
        (True, False)
        """
        if self.role is Role.KINDERGARTEN:
            return False
        if self.role is Role.COUNTY:
            return region_code == self.scope
        return region_code.startswith(self.scope)

    def covers_kindergarten(self, kindergarten: Kindergarten) -> bool:
        """Whether the kindergarten is in scope (a kindergarten operator: only itself).

        >>> from studentstatus.domain.enums import KindergartenType
        >>> kg = Kindergarten("1111000001", "", "阳光幼儿园", "110105", KindergartenType.PUBLIC)
        >>> Operator.parse("kindergarten:1111000001").covers_kindergarten(kg)
        True
        >>> Operator.parse("province:44").covers_kindergarten(kg)
        False
        """
        if self.role is Role.KINDERGARTEN:
            return kindergarten.school_code == self.scope
        return self.covers_region(kindergarten.region_code)

    def covers_record(self, record: StatusRecord) -> bool:
        """Whether the status record is in scope (by kindergarten code or region code).

        >>> from datetime import date
        >>> from studentstatus.domain.enums import State
        >>> rec = StatusRecord(
        ...     "r1", "c1", "1111000001", "110105", State.ACTIVE, None, date(2023, 9, 1))
        >>> p11, c106 = Operator.parse("province:11"), Operator.parse("county:110106")
        >>> p11.covers_record(rec), c106.covers_record(rec)
        (True, False)
        """
        if self.role is Role.KINDERGARTEN:
            return record.kindergarten_code == self.scope
        return self.covers_region(record.region_code)

    def covers(self, subject: str | Kindergarten | StatusRecord) -> bool:
        """Dispatch to :meth:`covers_region`, :meth:`covers_kindergarten` or :meth:`covers_record`.

        >>> Operator.parse("ministry").covers("990000")
        True
        """
        if isinstance(subject, Kindergarten):
            return self.covers_kindergarten(subject)
        if isinstance(subject, StatusRecord):
            return self.covers_record(subject)
        return self.covers_region(subject)

    def ensure_covers(self, subject: str | Kindergarten | StatusRecord) -> None:
        """Raise :class:`~studentstatus.errors.PermissionDenied` (``out_of_scope``) unless covered.

        >>> Operator.parse("county:110105").ensure_covers("440306")
        Traceback (most recent call last):
        ...
        studentstatus.errors.PermissionDenied: out_of_scope: county:110105 may not access ...
        """
        if not self.covers(subject):
            raise PermissionDenied(str(self), _describe(subject))

    def can(self, action: str) -> bool:
        """Whether this operator's role may perform ``action`` (see :data:`ROLE_RULES`).

        Raises :class:`ValueError` for an action name that is not in the table.

        >>> Operator.parse("province:44").can("verify")
        True
        """
        try:
            return self.role in ROLE_RULES[action]
        except KeyError:
            msg = f"unknown action {action!r}; known: {', '.join(sorted(ACTIONS))}"
            raise ValueError(msg) from None

    def ensure_can(self, action: str) -> None:
        """Raise ``PermissionDenied(code='role_not_allowed')`` unless :meth:`can`.

        >>> Operator.parse("county:110105").ensure_can("attendance")
        Traceback (most recent call last):
        ...
        studentstatus.errors.PermissionDenied: role_not_allowed: county:110105 may not access ...
        """
        ensure_can(self, action)


def _describe(subject: str | Kindergarten | StatusRecord) -> str:
    if isinstance(subject, Kindergarten):
        return f"kindergarten {subject.school_code} in {subject.region_code}"
    if isinstance(subject, StatusRecord):
        return (
            f"record {subject.id} at kindergarten {subject.kindergarten_code}"
            f" in {subject.region_code}"
        )
    return f"region {subject}"


def ensure_can(operator: Operator, action: str) -> None:
    """Raise :class:`~studentstatus.errors.PermissionDenied` (``role_not_allowed``) unless
    the operator's role may perform ``action``.

    >>> ensure_can(Operator.parse("kindergarten:1111000001"), "register")
    """
    if not operator.can(action):
        raise PermissionDenied(str(operator), f"action {action!r}", code="role_not_allowed")
