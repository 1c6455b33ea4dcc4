"""Record search: what a portal asks a store for, and the rule every store answers by.

A :class:`RecordQuery` holds the scope (a region-code prefix and/or a
kindergarten code) and the filters of one search; a store that implements
:class:`~studentstatus.ports.RecordSearch` returns the matching records with
their children, ordered by record id, ``limit`` at a time after a given id
(keyset paging).  :meth:`RecordQuery.matches` is the reference meaning of
every filter except ``number``, which a store resolves through its number
index (every number a record ever held: temporary, national, former).

The query's ``repr`` masks the numbers and hides the birth date: a masked
identity number printed next to a birth date gives most of it back.

>>> from datetime import date
>>> from studentstatus.domain.enums import Grade, Sex, State
>>> from studentstatus.domain.model import Child, StatusRecord
>>> child = Child("c1", "王小明", Sex.M, date(2020, 3, 15))
>>> rec = StatusRecord("r1", "c1", "1111000001", "110105", State.ACTIVE, Grade.JUNIOR,
...                    date(2023, 9, 1))
>>> RecordQuery(region_prefix="1101", name="王小明").matches(rec, child)
True
>>> RecordQuery(kindergarten_code="1111000002").matches(rec, child)
False
>>> RecordQuery(document="11010520200315002X", birth_date=date(2020, 3, 15))
RecordQuery(region_prefix='', kindergarten_code=None, number=None, \
document='11****************', name=None, birth_date='****-**-**', state=None, grade=None)
"""

from __future__ import annotations

from datetime import date

import attrs

from studentstatus.domain.enums import Grade, State
from studentstatus.domain.model import Child, StatusRecord
from studentstatus.errors import mask

__all__ = ["RecordQuery"]


def _masked(value: str | None) -> str:
    return repr(mask(value) if value else value)


def _hidden_date(value: date | None) -> str:
    return repr("****-**-**" if value is not None else None)


@attrs.frozen
class RecordQuery:
    """One search: the scope and the filters, all of which must hold (``None``: any).

    ``region_prefix``
        records whose region code starts with it (``""``: every region);
    ``kindergarten_code``
        records of that kindergarten;
    ``number``
        the record that holds or held this number (national G/J, temporary L
        or former), exactly as stored;
    ``document``
        records of children whose document number is exactly this;
    ``name`` / ``birth_date``
        records of children with exactly this name (and birth date);
    ``state`` / ``grade``
        records in this state / grade.

    >>> RecordQuery(region_prefix="4403", state=State.ACTIVE).state
    <State.ACTIVE: 'ACTIVE'>
    """

    region_prefix: str = ""
    kindergarten_code: str | None = None
    number: str | None = attrs.field(default=None, repr=_masked)
    document: str | None = attrs.field(default=None, repr=_masked)
    name: str | None = None
    birth_date: date | None = attrs.field(default=None, repr=_hidden_date)
    state: State | None = None
    grade: Grade | None = None

    def matches(self, record: StatusRecord, child: Child) -> bool:
        """Whether ``record`` (of ``child``) meets every filter but ``number``.

        ``number`` is left to the store's number index, which also knows the
        numbers a record held before; see the module example.

        >>> from studentstatus.domain.enums import Sex
        >>> from studentstatus.domain.model import DocumentKind, IdentityDocument
        >>> doc = IdentityDocument(DocumentKind.PASSPORT, "E12345678")
        >>> kid = Child("c1", "李四", Sex.F, date(2021, 1, 2), doc)
        >>> rec = StatusRecord("r1", "c1", "1111000001", "440306", State.PENDING, None,
        ...                    date(2024, 9, 1))
        >>> RecordQuery(document="E12345678", grade=Grade.JUNIOR).matches(rec, kid)
        False
        >>> RecordQuery(document="E12345678", state=State.PENDING).matches(rec, kid)
        True
        """
        if not record.region_code.startswith(self.region_prefix):
            return False
        if self.kindergarten_code is not None and record.kindergarten_code != (
            self.kindergarten_code
        ):
            return False
        if self.state is not None and record.state is not self.state:
            return False
        if self.grade is not None and record.grade is not self.grade:
            return False
        if self.document is not None and (
            child.document is None or child.document.number != self.document
        ):
            return False
        if self.name is not None and child.name != self.name:
            return False
        return self.birth_date is None or child.birth_date == self.birth_date
