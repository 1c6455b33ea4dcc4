"""The row checks of child intake: one row in, a verdict out, no store.

:class:`RowChecker` checks one CSV row completely and gives back a verdict: an
accepted :class:`Candidate` (the child, its ``PENDING`` record and the
``REGISTER`` event, built through the status machine), a :class:`RosterItem`
(a child of an unlicensed or unknown kindergarten, on a county's unlicensed
roster), or the row's :class:`Rejection` list.

Everything it looks up or draws is given to it: the policy, today's date and
the time, the operator, a kindergarten look-up (a mapping or a callable), an id
factory and a :class:`TemporaryNumbers` source.  So one checker serves every
path: :func:`~studentstatus.services.intake.register_child` finds kindergartens
and tests L numbers in its unit of work, a bulk import preloads a county's
kindergartens and draws L numbers against a filter
(:mod:`studentstatus.services.intake_numbers`), and a checker process
(:mod:`studentstatus.services._parallel`) has no store at all.

Speed: a row whose values all parse takes a short path (the child is built
unchecked and checked once, by the machine's ``REGISTER`` guards); rows that
do not even parse take :func:`~studentstatus.domain.child.build_child`, which
reports every violation.

>>> from datetime import date, datetime, timezone
>>> from studentstatus.domain.enums import KindergartenType
>>> from studentstatus.domain.model import Kindergarten, Licence
>>> from studentstatus.services.csvio import CsvRow
>>> kg = Kindergarten("1111000001", "12100000400000624D", "阳光幼儿园", "110105",
...                   KindergartenType.PUBLIC,
...                   licences=(Licence("L1", "局", date(2020, 1, 1), date(2030, 12, 31)),))
>>> class Draws:  # a temporary-number source: always the same number
...     def draw(self, region_code, birth_date):
...         return f"L{region_code}{birth_date:%Y%m%d}0001", 1
...     def keep(self, number_hash):
...         pass
>>> serial = iter(range(1, 100))
>>> rows = RowChecker(Policy(), date(2024, 9, 2), datetime(2024, 9, 2, tzinfo=timezone.utc),
...                   Operator.parse("kindergarten:1111000001"), {kg.school_code: kg},
...                   lambda prefix: f"{prefix}{next(serial)}", Draws())
>>> row = {"kindergarten_code": "1111000001", "name": "王小明", "sex": "男",
...        "birth_date": "2020-03-15", "id_type": "resident", "id_number": "110105202003150038",
...        "guardian_name": "王芳", "guardian_relation": "mother",
...        "guardian_phone": "13800138000", "entry_date": "2024-09-01", "grade": "中班"}
>>> accepted = rows.check(CsvRow(1, row))
>>> accepted.ref.id, accepted.ref.state, accepted.ref.temp_number
('r2', 'PENDING', 'L110105202003150001')
>>> [(r.row, r.field, r.code) for r in rows.check(CsvRow(2, dict(row, sex="X")))]
[(2, 'sex', 'sex_invalid')]
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import date, datetime
from typing import Any, NamedTuple, Protocol

import attrs

from studentstatus import ids, phones
from studentstatus.domain.age import grade_violations, school_year_of
from studentstatus.domain.audit import AuditKey, identity_digest
from studentstatus.domain.child import build_child, check_child
from studentstatus.domain.claims import IdentityKey, compact_number, identity_key
from studentstatus.domain.enums import ChangeKind, Grade, NumberKind, Sex
from studentstatus.domain.jurisdiction import Operator
from studentstatus.domain.kindergarten import licence_violations
from studentstatus.domain.machine import Change, Context, apply
from studentstatus.domain.model import (
    Child,
    DocumentKind,
    Guardian,
    IdentityDocument,
    IssuedNumber,
    Kindergarten,
    RosterEntry,
    StatusChange,
    StatusRecord,
)
from studentstatus.domain.policy import Policy
from studentstatus.errors import InvalidNumber, RuleViolations, Violation
from studentstatus.ports import RowEncoder
from studentstatus.tabular import CHILD_ALIASES, CsvRow, parse_bool, parse_date, read_csv

__all__ = [
    "ENCODED",
    "INVALID_ID_CODES",
    "Candidate",
    "KindergartenLookup",
    "Ref",
    "Rejection",
    "RosterItem",
    "RowChecker",
    "TemporaryNumbers",
    "Verdict",
]

INVALID_ID_CODES: frozenset[str] = frozenset({"checksum", "date", "region", "component"})
"""Identity-check codes that become an INVALID_ID problem under ``invalid_id="problem"``."""

_FIELD_MAP = {
    "document.number": "id_number",
    "document.type": "id_type",
    "guardians": "guardian_phone",
}
_GUARDIAN_FIELD = re.compile(r"^guardians\[\d+\](?:\.(\w+))?$")


@attrs.frozen
class Rejection:
    """One reason a row was rejected: row number (from 1), CSV column, code, messages.

    >>> Rejection(3, "sex", "sex_invalid", "性别无效", "bad sex").to_dict()["row"]
    3
    """

    row: int
    field: str
    code: str
    message_zh: str
    message_en: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (``row, field, code, message_zh, message_en``)."""
        return {
            "row": self.row,
            "field": self.field,
            "code": self.code,
            "message_zh": self.message_zh,
            "message_en": self.message_en,
        }


class Ref(NamedTuple):
    """What the writing side needs of a new record: problems, audit entry, outcome.

    A named tuple: built once per accepted row, and sent from a checker process
    as a plain tuple (see :meth:`Candidate.wire`).

    >>> from studentstatus.domain.enums import State
    >>> rec = StatusRecord("r1", "c1", "1111000001", "110105", State.PENDING, Grade.MIDDLE,
    ...                    date(2024, 9, 1), temp_number="L110105202003150001")
    >>> Ref.of(rec).state, Ref.of(rec).grade
    ('PENDING', 'MIDDLE')
    """

    id: str
    child_id: str
    kindergarten_code: str
    region_code: str
    state: str
    grade: str | None
    temp_number: str | None

    @classmethod
    def of(cls, rec: StatusRecord) -> Ref:
        """The reference of ``rec``."""
        return cls(
            rec.id,
            rec.child_id,
            rec.kindergarten_code,
            rec.region_code,
            rec.state._value_,  # the attribute (.value is a slower property)
            rec.grade._value_ if rec.grade is not None else None,
            rec.temp_number,
        )


ENCODED = ("children", "records", "changes", "numbers")
"""The kinds of :attr:`Candidate.encoded`, in order (:class:`~studentstatus.ports.RowEncoder`)."""


@attrs.define
class Candidate:
    """An accepted row: its record's :class:`Ref`, the identity key, the hash of its L
    number, an invalid-ID violation, and either the entities or (``encoded``) the store's
    prepared rows of them: child, record, REGISTER event and L-number claim.

    >>> ref = Ref("r1", "c1", "1111000001", "110105", "PENDING", "MIDDLE", "L1")
    >>> c = Candidate(1, ref, ("d", "X"), 7, encoded=("child", "record", "event", "claim"))
    >>> Candidate.from_wire(c.wire()) == c
    True

    Its repr names the row and the record only: the identity key, the L number and the
    entities or prepared rows hold the child's numbers.

    >>> c
    Candidate(row=1, ref='r1', number_hash=7, invalid_id=None, problems=[])
    """

    row: int
    ref: Ref = attrs.field(repr=lambda ref: repr(ref.id))
    key: IdentityKey = attrs.field(repr=False)
    number_hash: int  # intake_numbers.number_hash of the L number (ref.temp_number)
    invalid_id: Violation | None = None
    entities: tuple[Child, StatusRecord, StatusChange] | None = attrs.field(
        default=None, repr=False
    )
    encoded: tuple[object, object, object, object] | None = attrs.field(default=None, repr=False)
    problems: list[str] = attrs.field(factory=list)
    child_digest: str | None = attrs.field(default=None, repr=False)
    """The keyed digest of the child's identity for the ``register`` audit entry (``None``:
    the store's audit log has no key); see :func:`studentstatus.services.audit.child_digest`."""

    def wire(self) -> tuple[Any, ...]:
        """An encoded candidate as plain tuples, for the pipe from a checker process: pickled
        and unpickled without a Python call per object (:meth:`from_wire` rebuilds it)."""
        return (self.row, tuple(self.ref), self.key, self.number_hash, self.invalid_id,
                self.encoded, self.child_digest)  # fmt: skip

    @classmethod
    def from_wire(cls, t: tuple[Any, ...]) -> Candidate:
        """The candidate :meth:`wire` made the tuple of."""
        return cls(t[0], Ref._make(t[1]), t[2], t[3], t[4], None, t[5], child_digest=t[6])

    def encode(self, encoder: RowEncoder, at: datetime) -> None:
        """Replace the entities by the store's prepared rows of them (the L number claimed
        ``at``)."""
        assert self.entities is not None
        child, record, event = self.entities
        claim = IssuedNumber(record.temp_number or "", NumberKind.L, record.id, at)
        enc = encoder.encode
        self.encoded = (
            enc("children", child),
            enc("records", record),
            enc("changes", event),
            enc("numbers", claim),
        )
        self.entities = None


@attrs.define
class RosterItem:
    """A row that goes on a county's unlicensed roster (no status, no number).

    >>> entry = RosterEntry("u1", "110105", "无证园", "李小红", Sex.F, date(2021, 5, 1))
    >>> RosterItem(4, entry).entry.county_code
    '110105'
    """

    row: int
    entry: RosterEntry


Verdict = Candidate | RosterItem | list[Rejection]
"""What :meth:`RowChecker.check` gives for a row: accepted, rostered, or its rejections
(an empty list: neither, which no row of a valid operator gets)."""

KindergartenLookup = Mapping[str, Kindergarten | None] | Callable[[str], Kindergarten | None]
"""Kindergartens by school code: a mapping (a code it lacks is unknown) or a callable
(``None``: unknown)."""


class TemporaryNumbers(Protocol):
    """Where a :class:`RowChecker` gets L numbers.

    :meth:`draw` gives a number not known to be taken, with its hash
    (:func:`~studentstatus.services.intake_numbers.number_hash`); :meth:`keep` is told the
    hash of each number a built record uses (a row refused after its draw does not).

    >>> class Fixed:
    ...     def draw(self, region_code: str, birth_date: date) -> tuple[str, int]:
    ...         return "L110105202003150001", 1
    ...     def keep(self, number_hash: int) -> None:
    ...         pass
    >>> source: TemporaryNumbers = Fixed()
    """

    def draw(self, region_code: str, birth_date: date) -> tuple[str, int]:
        """A number for a child of ``region_code`` born on ``birth_date``, and its hash."""
        ...

    def keep(self, number_hash: int) -> None:
        """Note that the number of ``number_hash`` is used."""
        ...


def _v(code: str, field: str, zh: str, en: str) -> Violation:
    return Violation(code, field, zh, en)


def _column(field: str) -> str:
    if field in _FIELD_MAP:
        return _FIELD_MAP[field]
    m = _GUARDIAN_FIELD.match(field)
    if m:
        return {"name": "guardian_name", "relation": "guardian_relation"}.get(
            m.group(1) or "", "guardian_phone"
        )
    if field in ("child", "kindergarten", "to_kindergarten"):
        return "kindergarten_code" if "kindergarten" in field else ""
    if field == "effective_date":
        return "entry_date"
    return field


def _try_date(text: str) -> date | None:
    try:
        return parse_date(text)
    except ValueError:
        return None


def _rejections(row: int, violations: Iterable[Violation]) -> list[Rejection]:
    """The rejections of a row: one per CSV column and code, sorted by column and code."""
    items = list(violations)
    absent = {v.field for v in items if v.code == "column_missing"}
    seen: set[tuple[str, str]] = {(f, "required") for f in absent}
    out = []
    for v in items:
        field = _column(v.field)
        if (field, v.code) in seen:
            continue
        seen.add((field, v.code))
        out.append(Rejection(row, field, v.code, v.message_zh, v.message_en))
    out.sort(key=lambda r: (r.field, r.code))
    return out


class RowChecker:
    """The complete check of intake rows for one operator, at one moment (see the module
    docs for an example).

    ``kindergartens``: a mapping or a callable (:data:`KindergartenLookup`); ``new_id``:
    ids by prefix (``c`` child, ``r`` record, ``u`` roster entry), such as
    :meth:`Runtime.new_id <studentstatus.services.runtime.Runtime.new_id>`;
    ``numbers``: the :class:`TemporaryNumbers` source; ``unlicensed_roster``: children
    of unlicensed or unknown kindergartens go on the operator's (a county's) roster;
    ``audit_key``: the key of the store's audit log, to pin each registered child's
    identity in its ``register`` entry (:attr:`Candidate.child_digest`).
    """

    def __init__(
        self,
        policy: Policy,
        today: date,
        now: datetime,
        operator: Operator,
        kindergartens: KindergartenLookup,
        new_id: Callable[[str], str],
        numbers: TemporaryNumbers,
        *,
        unlicensed_roster: bool = False,
        audit_key: AuditKey | None = None,
    ) -> None:
        self.policy = policy
        self.audit_key = audit_key
        self.today = today
        self.now = now
        self.op = operator
        self.op_text = str(operator)
        self.covered: dict[str, bool] = {}  # school code -> in the operator's scope
        self._kindergarten: Callable[[str], Kindergarten | None] = (
            kindergartens.get if isinstance(kindergartens, Mapping) else kindergartens
        )
        self.new_id = new_id
        self.numbers = numbers
        self.roster = unlicensed_roster

    def covers(self, kg: Kindergarten) -> bool:
        """Whether ``kg`` is in the operator's scope (asked once per kindergarten)."""
        known = self.covered.get(kg.school_code)
        if known is None:
            known = self.covered[kg.school_code] = self.op.covers_kindergarten(kg)
        return known

    def check(self, row: CsvRow) -> Verdict:
        """The verdict on ``row``: a :class:`Candidate`, a :class:`RosterItem` or the row's
        rejections (every violation, in column order)."""
        v = row.values
        out: list[Violation] = list(row.problems)
        policy = self.policy
        code = v.get("kindergarten_code", "")
        kg: Kindergarten | None = None
        if not code:
            out.append(
                _v("required", "kindergarten_code", "缺少幼儿园代码", "the kindergarten is missing")
            )
        else:
            kg = self._kindergarten(code)
            if kg is None and not self.roster:
                out.append(
                    _v(
                        "kindergarten_unknown",
                        "kindergarten_code",
                        "幼儿园代码不存在",
                        "no kindergarten has this school code",
                    )
                )
        if kg is not None and not self.covers(kg):
            out.append(
                _v(
                    "out_of_scope",
                    "kindergarten_code",
                    f"{self.op} 无权为该幼儿园登记",
                    f"{self.op} may not register children of this kindergarten",
                )
            )
        entry: date | None = None
        if not v.get("entry_date"):
            out.append(_v("required", "entry_date", "缺少入园日期", "the entry date is missing"))
        else:
            try:
                entry = parse_date(v["entry_date"])
            except ValueError:
                out.append(
                    _v(
                        "entry_date_invalid",
                        "entry_date",
                        "入园日期无效（YYYY-MM-DD、YYYY/MM/DD或YYYYMMDD）",
                        "invalid entry date (YYYY-MM-DD, YYYY/MM/DD or YYYYMMDD)",
                    )
                )
        grade: Grade | None = None
        if not v.get("grade"):
            out.append(_v("required", "grade", "缺少班级", "the grade is missing"))
        else:
            try:
                grade = Grade.parse(v["grade"])
            except ValueError:
                out.append(
                    _v(
                        "grade_invalid",
                        "grade",
                        "班级应为托班/小班/中班/大班",
                        "grade must be NURSERY/JUNIOR/MIDDLE/SENIOR or 托班/小班/中班/大班",
                    )
                )
        rural = False
        try:
            rural = parse_bool(v.get("hukou_rural", ""))
        except ValueError:
            out.append(
                _v(
                    "hukou_rural_invalid",
                    "hukou_rural",
                    "户口性质无效",
                    "hukou_rural must be yes/no",
                )
            )
        child, child_problems, invalid, checked = self.build(v, rural)
        out.extend(child_problems)
        unlicensed: list[Violation] = []
        if kg is not None and entry is not None:
            unlicensed = licence_violations(kg, entry)
        if self.roster and (kg is None or unlicensed) and code:
            if child is not None and not checked:
                out.extend(self.recheck(child, invalid))
            if out or child is None:
                return _rejections(row.number, out)
            return self.roster_entry(row.number, child, kg, code)
        out.extend(unlicensed)
        if out or child is None or kg is None or entry is None or grade is None:
            if child is not None and not checked:
                out.extend(self.recheck(child, invalid))
            if child is None and grade is not None and entry is not None:
                born = _try_date(v.get("birth_date", ""))
                if born is not None:
                    year = school_year_of(entry, policy)
                    out.extend(grade_violations(born, grade, year, policy))
            return _rejections(row.number, out)
        temp, temp_hash = self.numbers.draw(kg.region_code, child.birth_date)
        change = Change(
            ChangeKind.REGISTER,
            entry,
            grade=grade,
            operator=self.op_text,
            child_id=child.id,
            temp_number=temp,
        )
        ctx = Context(self.today, policy, kindergarten=kg, child=child)
        try:
            record, event = apply(
                None, change, context=ctx, recorded_at=self.now, record_id=self.new_id("r")
            )
        except RuleViolations as exc:
            return _rejections(row.number, exc.violations)
        self.numbers.keep(temp_hash)
        digest = None
        if self.audit_key is not None:
            doc = child.document
            number = doc.number if doc is not None else ""
            digest = identity_digest(self.audit_key, number, child.name, child.birth_date)
        return Candidate(
            row.number,
            Ref.of(record),
            identity_key(child),
            temp_hash,
            invalid,
            (child, record, event),
            child_digest=digest,
        )

    def recheck(self, child: Child, invalid: Violation | None) -> list[Violation]:
        """The checks of a child built unchecked (:meth:`fast`), but for an invalid ID
        accepted as a problem."""
        problems = check_child(child, today=self.today)
        if invalid is not None:
            problems = [p for p in problems if p.field != "document.number"]
        return problems

    def fast(
        self, v: Mapping[str, str], rural: bool, child_id: str
    ) -> tuple[Child, Violation | None] | None:
        """Parse a row whose values all parse into an (unchecked) child, or ``None``.

        The checks themselves run once, inside the machine's REGISTER guards
        (or :meth:`recheck` when the row is refused for other reasons); rows
        that do not even parse take :func:`build_child`, which reports them.
        """
        try:
            sex = Sex.parse(v.get("sex", ""))
            born = parse_date(v.get("birth_date", ""))
            number = v.get("id_number", "")
            kind = DocumentKind((v.get("id_type") or ("resident" if number else "none")).lower())
            phone = v.get("guardian_phone", "")
            if not phone:
                return None
            phone = phones.normalize(phone)
        except (ValueError, InvalidNumber):
            return None
        invalid: Violation | None = None
        document: IdentityDocument | None = None
        if kind.value == "none":
            if number:
                return None
        else:
            try:
                number = ids.validate_document(kind, number, today=self.today)
            except InvalidNumber as err:
                if self.policy.invalid_id != "problem" or err.code not in INVALID_ID_CODES:
                    return None
                v_ = err.violation
                invalid = Violation(v_.code, "document.number", v_.message_zh, v_.message_en)
                number = compact_number(number)
            document = IdentityDocument(kind, number)
        eth = v.get("ethnicity") or None
        if eth is not None and eth.isdigit() and len(eth) == 1:
            eth = "0" + eth
        child = Child(
            child_id,
            v.get("name", "").strip(),
            sex,
            born,
            document,
            nationality=(v.get("nationality") or "CHN").upper(),
            ethnicity=eth,
            hukou_region=v.get("hukou_region") or None,
            hukou_rural=rural,
            residence_region=v.get("residence_region") or None,
            guardians=(
                Guardian(v.get("guardian_name", ""), v.get("guardian_relation", ""), phone),
            ),
        )
        return child, invalid

    def build(
        self, v: Mapping[str, str], rural: bool
    ) -> tuple[Child | None, list[Violation], Violation | None, bool]:
        """(child, violations, invalid-ID violation, whether the child was checked)."""
        child_id = self.new_id("c")
        quick = self.fast(v, rural, child_id)
        if quick is not None:
            return quick[0], [], quick[1], False
        guardians = []
        if v.get("guardian_name") or v.get("guardian_phone") or v.get("guardian_relation"):
            guardians.append(
                {
                    "name": v.get("guardian_name", ""),
                    "relation": v.get("guardian_relation", ""),
                    "phone": v.get("guardian_phone", ""),
                }
            )
        kwargs: dict[str, Any] = {
            "name": v.get("name", ""),
            "sex": v.get("sex", ""),
            "birth_date": v.get("birth_date", ""),
            "nationality": v.get("nationality") or "CHN",
            "ethnicity": v.get("ethnicity") or None,
            "hukou_region": v.get("hukou_region") or None,
            "residence_region": v.get("residence_region") or None,
            "guardians": guardians,
            "hukou_rural": rural,
            "today": self.today,
        }
        doc_type = v.get("id_type") or ("resident" if v.get("id_number") else "none")
        number = v.get("id_number", "")
        child, problems = build_child(
            id=child_id, document_type=doc_type, document_number=number, **kwargs
        )
        if child is not None:
            return child, [], None, True
        doc_problems = [p for p in problems if p.field == "document.number"]
        if (
            self.policy.invalid_id == "problem"
            and doc_problems
            and all(p.code in INVALID_ID_CODES for p in doc_problems)
        ):
            rest = [p for p in problems if p.field != "document.number"]
            if rest:
                return None, problems, None, True
            bare, more = build_child(id=child_id, document_type="none", **kwargs)
            if bare is None:
                return None, more + doc_problems, None, True
            doc = IdentityDocument(DocumentKind(doc_type.lower()), compact_number(number))
            return attrs.evolve(bare, document=doc), [], doc_problems[0], True
        return None, problems, None, True

    def roster_entry(
        self, row: int, child: Child, kg: Kindergarten | None, code: str
    ) -> RosterItem | list[Rejection]:
        """The roster item of an unlicensed (or unknown) kindergarten's child; ``[]`` when
        the kindergarten is outside the county."""
        county = self.op.scope
        if kg is not None and not self.op.covers_kindergarten(kg):
            return []
        entry = RosterEntry(
            id=self.new_id("u"),
            county_code=county,
            kindergarten_name=kg.name if kg is not None else code,
            child_name=child.name,
            sex=child.sex,
            birth_date=child.birth_date,
            document=child.document,
            recorded_at=self.now,
            operator=str(self.op),
        )
        return RosterItem(row, entry)


REQUIRED_COLUMNS: tuple[str, ...] = (
    "kindergarten_code",
    "name",
    "sex",
    "birth_date",
    "guardian_phone",
    "entry_date",
    "grade",
)
"""Columns a child-intake file must have (the others may be absent)."""


def rows_of(source: Any, wanted: Callable[[int], bool] | None = None) -> Iterator[CsvRow]:
    """The rows of an import's source: a CSV file (path or binary stream) or rows
    (``wanted``: see :func:`~studentstatus.tabular.read_csv`; files only)."""
    if isinstance(source, str | os.PathLike) or hasattr(source, "read"):
        yield from read_csv(source, aliases=CHILD_ALIASES, required=REQUIRED_COLUMNS, wanted=wanted)
        return
    for i, item in enumerate(source, start=1):
        if isinstance(item, CsvRow):
            yield item
        else:
            yield CsvRow(i, {k: str(v).strip() for k, v in dict(item).items() if v is not None})
