"""The character policy of names: which characters a child's, a guardian's and a
kindergarten's name may hold.

A **person's name** (child, guardian) is written with:

* Chinese characters: the CJK Unified Ideographs (U+4E00–U+9FFF), their
  extensions A to I (U+3400–U+4DBF, U+20000–U+323AF) and the compatibility
  ideographs (U+F900–U+FAFF, U+2F800–U+2FA1F), and 〇 (U+3007) — the rare
  characters of personal names that GB18030-2022 added are in the extensions;
* the middle dot of minority and transliterated names, ``·`` (U+00B7; the
  look-alikes an input method may type — U+2027, U+30FB, U+FF65 — are
  accepted too), as in 阿依古丽·买买提;
* Latin letters, with or without accents (é, ü, ñ: any letter Unicode names
  ``LATIN``), for foreign names as written in their documents, and single
  spaces between the parts, as in ``John Smith``; a hyphen or an apostrophe
  may join two letters (``Jean-Luc``, ``O'Brien``).

A dot, a space, a hyphen or an apostrophe may not start or end the name, nor
follow another one.  Anything else — digits, punctuation, symbols such as
``=`` or ``<``, emoji, full-width letters, other scripts (a name in Cyrillic or
Arabic letters is written in Chinese characters or in Latin letters in Chinese
documents), the private-use characters older GBK systems used for rare
characters, invisible format characters such as the right-to-left override
U+202E — is rejected ``name_characters``; a control character (NUL, a line
break, a tab) is rejected ``control_character``.

A **kindergarten's name** follows the same policy and may in addition hold
digits (ASCII and full-width) and parentheses (ASCII and full-width), as in
``阳光幼儿园（东区）`` or ``第3幼儿园``.

>>> [v.code for v in name_character_violations("王小明", "name")]
[]
>>> [v.code for v in name_character_violations("阿依古丽·买买提", "name")]
[]
>>> [v.code for v in name_character_violations("John Smith", "name")]
[]
>>> [v.code for v in name_character_violations("=1+1", "name")]
['name_characters']
>>> [v.code for v in name_character_violations("王\\x00明", "name")]
['control_character']
>>> [v.code for v in name_character_violations("阳光幼儿园（东区）", "name", kindergarten=True)]
[]
"""

from __future__ import annotations

import unicodedata

from studentstatus.errors import Violation

__all__ = ["MIDDLE_DOTS", "is_name_character", "name_character_violations"]

MIDDLE_DOTS = frozenset("\u00b7\u2027\u30fb\uff65")
"""The middle dot (U+00B7) and the look-alikes input methods type for it."""

_IDEOGRAPHS = (
    (0x3400, 0x4DBF),
    (0x4E00, 0x9FFF),
    (0xF900, 0xFAFF),
    (0x20000, 0x323AF),
    (0x2F800, 0x2FA1F),
)
_JOINERS = frozenset("-'\u2019")
_KG_EXTRA = frozenset("0123456789０１２３４５６７８９()（）")
_SEPARATORS = MIDDLE_DOTS | _JOINERS | {" "}


def _ideograph(c: str) -> bool:
    o = ord(c)
    return o == 0x3007 or any(lo <= o <= hi for lo, hi in _IDEOGRAPHS)


def _latin(c: str) -> bool:
    return c.isalpha() and unicodedata.name(c, "").startswith("LATIN ")


def is_name_character(c: str, *, kindergarten: bool = False) -> bool:
    """Whether the single character ``c`` may appear in a name (its place aside).

    >>> [is_name_character(c) for c in "王·a é1<"]
    [True, True, True, True, True, False, False]
    >>> is_name_character("1", kindergarten=True), is_name_character("\\u202e")
    (True, False)
    """
    if _ideograph(c) or _latin(c) or c in _SEPARATORS:
        return True
    return kindergarten and c in _KG_EXTRA


def name_character_violations(
    name: str, field: str, *, kindergarten: bool = False
) -> list[Violation]:
    """The violations of the character policy (see the module docs) by ``name`` (stripped
    by the caller): ``control_character``, ``name_characters``, at most one of each.

    >>> [v.code for v in name_character_violations("<script>alert(3)</script>", "name")]
    ['name_characters']
    >>> [v.code for v in name_character_violations("王小明\\U0001f600", "name")]
    ['name_characters']
    >>> [v.code for v in name_character_violations("\\u202e王小明", "name")]
    ['name_characters']
    >>> [v.code for v in name_character_violations("·王", "name")]
    ['name_characters']
    >>> name_character_violations("Jean-Luc O'Brien", "guardian_name")
    []
    >>> name_character_violations("Zoe\\u0308 Müller", "name")
    []
    """
    out: list[Violation] = []
    if not name:
        return out
    if not name.isprintable() and any(unicodedata.category(c) == "Cc" for c in name):
        out.append(
            Violation(
                "control_character",
                field,
                "名称含有控制字符（如NUL、换行、制表符）",
                "the name contains a control character (NUL, line break, tab…)",
            )
        )
    bad = False
    previous = ""
    for c in name:
        if unicodedata.category(c) == "Cc":
            previous = c
            continue
        if unicodedata.category(c) == "Mn":  # an accent written as a combining mark
            ok = bool(previous) and (_latin(previous) or unicodedata.category(previous) == "Mn")
        elif c in _SEPARATORS:
            ok = bool(previous) and previous not in _SEPARATORS
            if c in _JOINERS:
                ok = ok and _latin(previous)
        else:
            ok = is_name_character(c, kindergarten=kindergarten)
        if not ok:
            bad = True
            break
        previous = c
    if not bad and previous in _SEPARATORS:
        bad = True
    if bad:
        what = "幼儿园名称" if kindergarten else "姓名"
        out.append(
            Violation(
                "name_characters",
                field,
                f"{what}只能包含汉字、少数民族姓名的间隔号“·”，以及外国人姓名的拉丁字母和空格"
                + ("（幼儿园名称还可包含数字和括号）" if kindergarten else ""),
                "a name may hold only Chinese characters, the middle dot '·' of minority "
                "names, and Latin letters and spaces for foreign names"
                + (" (a kindergarten's name also digits and brackets)" if kindergarten else ""),
            )
        )
    return out
