"""ISO 7064:1983 MOD 11-2 and the date helpers shared by the 18-character numbers.

Used by the resident identity number (GB 11643-1999), the HK/Macau/Taiwan
residence permits and the 2023 foreign permanent-residence card.

The check character ``c`` of a body ``d1 … dn`` satisfies
``Σ dᵢ·2^(n+1-i) + c ≡ 1 (mod 11)``; for the 17-digit body the weights are
7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2 and the value 10 is
written ``X``.  Because 13 ≡ 2 (mod 11), ``int(body, 13)`` gives the weighted
sum modulo 11 in one C call (the trick python-stdnum uses), which is what
makes the checks here fast.

>>> check_char("11010520200315002")
'X'
>>> check_char("36042619910101007")
'1'
>>> is_valid_checksum("11010520200315002X"), is_valid_checksum("110105202003150021")
(True, False)
>>> weighted_sum("11010520200315002")
123
>>> date_ok("20240229"), date_ok("20230229"), date_ok("19991301")
(True, False, False)
"""

from __future__ import annotations

import datetime

__all__ = [
    "CHECK_VALUES",
    "MIN_YEAR",
    "MMDD",
    "WEIGHTS",
    "check_char",
    "date_ok",
    "is_valid_checksum",
    "today_key",
    "weighted_sum",
]

#: Weights of positions 1..17 (2^(18-i) mod 11).
WEIGHTS: tuple[int, ...] = tuple(pow(2, 17 - i, 11) for i in range(17))
assert WEIGHTS == (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)

_CHARS = "0123456789X"

#: Value of an accepted check character (lowercase ``x`` accepted).
CHECK_VALUES: dict[str, int] = {c: i for i, c in enumerate(_CHARS)} | {"x": 10}

#: Earliest birth year accepted in a number (as id-validator does).
MIN_YEAR = "1800"

_DAYS = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
#: Every valid ``MMDD`` of a non-leap year.
MMDD: frozenset[str] = frozenset(
    f"{m:02d}{d:02d}" for m in range(1, 13) for d in range(1, _DAYS[m - 1] + 1)
)


def weighted_sum(body: str) -> int:
    """Σ digit × weight over a body of ASCII digits (weights 2^(n+1-i) mod 11).

    >>> weighted_sum("44030620210901004")
    216
    """
    n = len(body)
    return sum(int(d) * pow(2, n - i, 11) for i, d in enumerate(body))


def check_char(body: str) -> str:
    """The MOD 11-2 check character of a body of ASCII digits.

    >>> check_char("81000020190506001")
    '9'
    """
    return _CHARS[(1 - 2 * int(body, 13)) % 11]


def is_valid_checksum(number: str) -> bool:
    """Whether a body of ASCII digits followed by its check character is consistent.

    Never raises; anything that is not digits + check character is ``False``.

    >>> is_valid_checksum("44011320141005001x"), is_valid_checksum("12a")
    (True, False)
    """
    if not isinstance(number, str) or len(number) < 2:
        return False
    body = number[:-1]
    value = CHECK_VALUES.get(number[-1])
    if value is None or not (body.isascii() and body.isdigit()):
        return False
    return (2 * int(body, 13) + value) % 11 == 1


def date_ok(ymd: str) -> bool:
    """Whether an 8-digit ``YYYYMMDD`` string is a real date from 1800 on.

    >>> date_ok("17991231"), date_ok("18000101")
    (False, True)
    """
    if len(ymd) != 8 or not (ymd.isascii() and ymd.isdigit()) or ymd[:4] < MIN_YEAR:
        return False
    mmdd = ymd[4:]
    if mmdd in MMDD:
        return True
    if mmdd != "0229":
        return False
    year = int(ymd[:4])
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


_TODAY_KEYS: dict[datetime.date, str] = {}


def today_key(today: datetime.date | None) -> str:
    """``today`` as ``YYYYMMDD`` text (``'99991231'`` for ``None``), cached.

    >>> today_key(datetime.date(2025, 9, 1)), today_key(None)
    ('20250901', '99991231')
    """
    if today is None:
        return "99991231"
    key = _TODAY_KEYS.get(today)
    if key is None:
        if len(_TODAY_KEYS) > 4096:
            _TODAY_KEYS.clear()
        key = f"{today.year:04d}{today.month:02d}{today.day:02d}"
        _TODAY_KEYS[today] = key
    return key
