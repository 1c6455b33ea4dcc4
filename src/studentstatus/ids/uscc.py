"""统一社会信用代码 (Unified Social Credit Code, GB 32100-2015).

18 characters from the 31-character alphabet ``0123456789ABCDEFGHJKLMNPQRTUWXY``
(no I, O, Z, S, V): the registration-authority code (1 机构编制, 5 民政,
9 工商, … and **A, N, Y**, which python-stdnum rejects), the organisation
category, the six-digit GB/T 2260 code of the registering authority, the
nine-character organisation code (GB 11714, with its own MOD 11 check
character) and a final MOD 31 check character (weights 3^(i-1) mod 31).

Public kindergartens usually hold a ``12…`` code (事业单位), non-profit private
ones ``52…`` (民办非企业单位) and for-profit ones ``91…`` (企业).

More information:

* GB 32100-2015; GB 11714-1997
* https://github.com/arthurdejong/python-stdnum/blob/master/stdnum/cn/uscc.py

>>> validate("91110000600037341L")
'91110000600037341L'
>>> is_valid("12100000400000624D"), is_valid("52440106MJ0000122D")
(True, True)
>>> is_valid("91110000600037341M")
False
>>> check_char("91110000600037341")
'L'
>>> format(" 9111 0000 6000 3734 1l ")
'91110000600037341L'
"""

from __future__ import annotations

from studentstatus.errors import InvalidChecksum, InvalidComponent, InvalidFormat, InvalidLength

__all__ = [
    "ALPHABET",
    "FIELD",
    "check_char",
    "compact",
    "format",
    "get_org_code",
    "get_region_code",
    "get_registration_authority",
    "is_valid",
    "org_check_char",
    "validate",
]

FIELD = "uscc"
ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_VALUE = {c: i for i, c in enumerate(ALPHABET)}
_WEIGHTS = tuple(pow(3, i, 31) for i in range(17))
_AUTHORITIES = frozenset("123456789ANY")
_ORG_WEIGHTS = (3, 7, 9, 10, 5, 8, 4, 2)
_ORG_VALUE = {c: int(c, 36) for c in "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"}
_SEPARATORS = str.maketrans({" ": None, "-": None, "\t": None, "\u3000": None})


def compact(number: str) -> str:
    """Remove spaces and hyphens, upper-case.

    >>> compact("91110000-60003734-1L")
    '91110000600037341L'
    """
    return str(number).translate(_SEPARATORS).strip().upper()


def check_char(body17: str) -> str:
    """The GB 32100 check character of the first 17 characters.

    >>> check_char("12100000400000624")
    'D'
    """
    body = compact(body17)
    if len(body) != 17 or any(c not in _VALUE for c in body):
        raise InvalidFormat(
            "the body must be 17 code characters", field=FIELD, message_zh="本体应为17位代码字符"
        )
    total = sum(_VALUE[c] * w for c, w in zip(body, _WEIGHTS))
    return ALPHABET[(31 - total % 31) % 31]


def org_check_char(org8: str) -> str:
    """The GB 11714 check character of an 8-character organisation-code body.

    >>> org_check_char("60003734")
    '1'
    """
    total = sum(_ORG_VALUE[c] * w for c, w in zip(org8, _ORG_WEIGHTS))
    c = 11 - total % 11
    return "X" if c == 10 else "0" if c == 11 else str(c)


def validate(number: object) -> str:
    """Check the code and return it compacted; raise an InvalidNumber subclass otherwise.

    >>> validate("A1110000600037341L")
    Traceback (most recent call last):
    ...
    studentstatus.errors.InvalidChecksum: checksum [uscc]: ...
    """
    if not isinstance(number, str):
        raise InvalidFormat(
            "the code must be text", field=FIELD, message_zh="统一社会信用代码必须是文本"
        )
    n = compact(number)
    if len(n) != 18:
        raise InvalidLength(
            "the code must have 18 characters", field=FIELD, message_zh="统一社会信用代码应为18位"
        )
    if any(c not in _VALUE for c in n):
        raise InvalidFormat(
            "only digits and letters other than I, O, Z, S, V are allowed",
            field=FIELD,
            message_zh="统一社会信用代码含有非法字符",
        )
    if n[0] not in _AUTHORITIES:
        raise InvalidComponent(
            "unknown registration-authority code", field=FIELD, message_zh="登记管理部门码无效"
        )
    if not (n[2:8].isascii() and n[2:8].isdigit()):
        raise InvalidFormat(
            "positions 3-8 must be a region code", field=FIELD, message_zh="第3-8位应为行政区划码"
        )
    if org_check_char(n[8:16]) != n[16]:
        raise InvalidChecksum(
            "the embedded organisation code's check character is wrong",
            field=FIELD,
            message_zh="组织机构代码校验位错误",
        )
    if check_char(n[:17]) != n[17]:
        raise InvalidChecksum(
            "the check character is wrong", field=FIELD, message_zh="统一社会信用代码校验位错误"
        )
    return n


def is_valid(number: object) -> bool:
    """Whether the code is valid; never raises.

    >>> is_valid("52440106MJ0000122D"), is_valid(None), is_valid("")
    (True, False, False)
    """
    try:
        validate(number)
    except InvalidFormat:
        return False
    except (InvalidChecksum, InvalidComponent):
        return False
    return True


def format(number: str) -> str:
    """The presentation form (compact, upper-case).

    >>> format("91110000600037341l")
    '91110000600037341L'
    """
    return compact(number)


def get_registration_authority(number: str) -> str:
    """The registration-authority code (first character).

    >>> get_registration_authority("52440106MJ0000122D")
    '5'
    """
    return validate(number)[0]


def get_region_code(number: str) -> str:
    """The GB/T 2260 code of the registering authority (positions 3-8).

    >>> get_region_code("52440106MJ0000122D")
    '440106'
    """
    return validate(number)[2:8]


def get_org_code(number: str) -> str:
    """The nine-character organisation code (positions 9-17).

    >>> get_org_code("91110000600037341L")
    '600037341'
    """
    return validate(number)[8:17]
