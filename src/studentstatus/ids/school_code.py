"""学校（机构）标识码 (10-digit school identification code of the Ministry of Education).

``AA BB CCCCCC``: a two-digit school-type code, the two-digit GB/T 2260
province code and a six-digit sequence.  No check digit is documented.
Kindergartens have type ``11``.  :func:`validate` requires a kindergarten
code by default (``kindergarten=False`` accepts every known type).

More information:

* 教育部《学校（机构）代码管理办法》 (2011-07-20)

>>> validate("1144000001")
'1144000001'
>>> is_valid("2144000001"), is_valid("2144000001", kindergarten=False)
(False, True)
>>> is_valid("1199000001")
False
>>> get_type("1144000001"), get_province("1144000001")
('11', '44')
"""

from __future__ import annotations

from collections.abc import Mapping

from studentstatus.errors import InvalidComponent, InvalidFormat, InvalidLength

__all__ = [
    "FIELD",
    "PROVINCES",
    "TYPES",
    "compact",
    "format",
    "get_province",
    "get_type",
    "is_valid",
    "validate",
]

FIELD = "school_code"

#: School-type codes (docs/reference/domain.md#school-code).
TYPES: Mapping[str, str] = {
    "11": "幼儿园",
    "21": "小学",
    "22": "成人小学",
    "31": "普通初中",
    "32": "职业初中",
    "33": "成人初中",
    "34": "普通高中",
    "35": "成人高中",
    "36": "中等职业学校",
    "37": "工读学校",
    "41": "普通高等学校",
    "42": "成人高等学校",
    "51": "特殊教育",
    "91": "培养研究生的科研机构",
    "92": "民办的其他高等教育机构",
    "93": "中等职业培训机构",
}

#: Province codes accepted in a school code.
PROVINCES = frozenset(
    [
        "11",
        "12",
        "13",
        "14",
        "15",
        "21",
        "22",
        "23",
        "31",
        "32",
        "33",
        "34",
        "35",
        "36",
        "37",
        "41",
        "42",
        "43",
        "44",
        "45",
        "46",
        "50",
        "51",
        "52",
        "53",
        "54",
        "61",
        "62",
        "63",
        "64",
        "65",
        "71",
        "81",
        "82",
    ]
)

_SEPARATORS = str.maketrans({" ": None, "-": None, "\t": None})


def compact(number: str) -> str:
    """Remove spaces and hyphens.

    >>> compact("11 44 000001")
    '1144000001'
    """
    return str(number).translate(_SEPARATORS).strip()


def validate(number: object, *, kindergarten: bool = True) -> str:
    """Check the code and return it compacted.

    >>> validate("11440000")
    Traceback (most recent call last):
    ...
    studentstatus.errors.InvalidLength: length [school_code]: ...
    """
    if not isinstance(number, str):
        raise InvalidFormat("the code must be text", field=FIELD, message_zh="学校标识码必须是文本")
    n = compact(number)
    if len(n) != 10:
        raise InvalidLength(
            "the code must have 10 digits", field=FIELD, message_zh="学校标识码应为10位"
        )
    if not (n.isascii() and n.isdigit()):
        raise InvalidFormat(
            "the code must be digits", field=FIELD, message_zh="学校标识码应全为数字"
        )
    if kindergarten and n[:2] != "11":
        raise InvalidComponent(
            "a kindergarten code starts with 11", field=FIELD, message_zh="幼儿园标识码应以11开头"
        )
    if n[:2] not in TYPES:
        raise InvalidComponent("unknown school type", field=FIELD, message_zh="学校类型码无效")
    if n[2:4] not in PROVINCES:
        raise InvalidComponent("unknown province code", field=FIELD, message_zh="省份代码无效")
    return n


def is_valid(number: object, *, kindergarten: bool = True) -> bool:
    """Whether the code is valid; never raises.

    >>> is_valid("1111000123"), is_valid(None)
    (True, False)
    """
    try:
        validate(number, kindergarten=kindergarten)
    except (InvalidFormat, InvalidComponent):
        return False
    return True


def format(number: str) -> str:
    """The presentation form (10 digits).

    >>> format("1144 000001")
    '1144000001'
    """
    return compact(number)


def get_type(number: str) -> str:
    """The two-digit school-type code (see :data:`TYPES`).

    >>> get_type("2111000001")
    '21'
    """
    return validate(number, kindergarten=False)[:2]


def get_province(number: str) -> str:
    """The two-digit province code.

    >>> get_province("1131000001")
    '31'
    """
    return validate(number, kindergarten=False)[2:4]
