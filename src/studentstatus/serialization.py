"""cattrs converters: the one way entities cross a boundary (JSON, CSV, SQL rows, files).

Every adapter turns entities into plain data and back through the converter
built here, so that dates, enums, tuples and the free-form before/after
``FieldValues`` dicts are encoded the same way everywhere:

* :class:`~datetime.date` and :class:`~datetime.datetime` ↔ ISO 8601 strings
  (time-zone offsets are kept);
* enums ↔ their stable value (``"ACTIVE"``, ``"resident"`` …);
* tuples ↔ lists (JSON has no tuples), restored as tuples;
* ``FieldValues`` (``dict[str, Any]``) pass through unchanged: they already hold
  JSON-ready values only.

>>> from datetime import date
>>> from studentstatus.domain.enums import Grade, State
>>> from studentstatus.domain.model import StatusRecord
>>> rec = StatusRecord("r1", "c1", "1111000001", "110105", State.ACTIVE, Grade.JUNIOR,
...                    entry_date=date(2023, 9, 1), former_numbers=("L1101052020031500001",))
>>> d = to_dict(rec)
>>> d["state"], d["entry_date"], d["former_numbers"]
('ACTIVE', '2023-09-01', ['L1101052020031500001'])
>>> from_dict(StatusRecord, d) == rec
True
>>> from_json(StatusRecord, to_json(rec)) == rec
True
"""

from __future__ import annotations

import enum
import json
from datetime import date, datetime
from functools import cache
from typing import Any, TypeVar

import cattrs

__all__ = ["from_dict", "from_json", "make_converter", "to_dict", "to_json"]

T = TypeVar("T")


def _date_from_iso(value: Any, _type: Any) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value))


def _datetime_from_iso(value: Any, _type: Any) -> datetime:
    if isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value))


def _enum_value(member: enum.Enum) -> Any:
    return member.value


def make_converter() -> cattrs.Converter:
    """Build the library's converter (cached: converters are reused, never mutated after).

    >>> conv = make_converter()
    >>> from datetime import date
    >>> conv.unstructure(date(1900, 1, 1)), conv.structure("2099-12-31", date)
    ('1900-01-01', datetime.date(2099, 12, 31))
    """
    return _converter()


@cache
def _converter() -> cattrs.Converter:
    conv = cattrs.Converter()
    conv.register_unstructure_hook(datetime, datetime.isoformat)
    conv.register_structure_hook(datetime, _datetime_from_iso)
    conv.register_unstructure_hook(date, date.isoformat)
    conv.register_structure_hook(date, _date_from_iso)
    conv.register_unstructure_hook(enum.Enum, _enum_value)
    conv.register_unstructure_hook(enum.StrEnum, _enum_value)  # before str in the MRO
    conv.register_unstructure_hook(enum.IntEnum, _enum_value)
    # JSON has no tuples: write lists, read them back into the declared tuple type.
    conv.register_unstructure_hook_func(
        lambda t: t is tuple or getattr(t, "__origin__", None) is tuple,
        lambda value: [conv.unstructure(v) for v in value],
    )
    return conv


def to_dict(entity: Any) -> dict[str, Any]:
    """Unstructure an entity into a JSON-ready ``dict``.

    >>> from studentstatus.domain.model import Guardian
    >>> to_dict(Guardian("王芳", "mother", "+8613800138000"))
    {'name': '王芳', 'relation': 'mother', 'phone': '+8613800138000'}
    """
    data = make_converter().unstructure(entity, unstructure_as=type(entity))
    assert isinstance(data, dict)
    return data


def from_dict(cls: type[T], data: Any) -> T:
    """Structure ``data`` (as written by :func:`to_dict`) into an instance of ``cls``.

    Bad data raises a :class:`cattrs.BaseValidationError` (a ``ValueError``-like group).

    >>> from studentstatus.domain.model import Guardian
    >>> from_dict(Guardian, {"name": "王芳", "relation": "mother", "phone": "+86138"})
    Guardian(name='王芳', relation='mother', phone='+86138')
    """
    return make_converter().structure(data, cls)


def to_json(entity: Any) -> str:
    """One compact JSON line for ``entity`` (UTF-8 text, Chinese kept readable).

    >>> from studentstatus.domain.model import Guardian
    >>> to_json(Guardian("王芳", "mother", "+86138"))
    '{"name":"王芳","relation":"mother","phone":"+86138"}'
    """
    return json.dumps(to_dict(entity), ensure_ascii=False, separators=(",", ":"))


def from_json(cls: type[T], text: str | bytes) -> T:
    """Parse one JSON document written by :func:`to_json` into ``cls``.

    >>> from studentstatus.domain.model import Guardian
    >>> from_json(Guardian, '{"name":"A","relation":"father","phone":"+1"}').relation
    'father'
    """
    return from_dict(cls, json.loads(text))
