"""The character policy of names (studentstatus.domain.names), example by example and as
properties over generated names."""

from __future__ import annotations

import unicodedata
from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from studentstatus.domain.child import build_child
from studentstatus.domain.names import MIDDLE_DOTS, is_name_character, name_character_violations

HAN = st.characters(min_codepoint=0x4E00, max_codepoint=0x9FFF)
HAN_EXT = st.characters(min_codepoint=0x20000, max_codepoint=0x2A6DF)
LATIN = st.sampled_from("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyzéèüöäñçøåÉÜ")


def _codes(name: str, *, kindergarten: bool = False) -> list[str]:
    return [v.code for v in name_character_violations(name, "name", kindergarten=kindergarten)]


@pytest.mark.parametrize(
    "name",
    ["王小明", "阿依古丽·买买提", "John Smith", "Jean-Luc O'Brien", "Zoë Müller", "𠀀㐀", "〇一",
     "买买提・艾力", "玛丽亚"],
)  # fmt: skip
def test_accepted(name: str) -> None:
    assert _codes(name) == []


@pytest.mark.parametrize(
    ("name", "code"),
    [("=1+1", "name_characters"), ("<script>alert(3)</script>", "name_characters"),
     ("王小明😀", "name_characters"), ("\u202e王小明", "name_characters"),
     ("王\u200b明", "name_characters"), ("王2", "name_characters"), ("·王", "name_characters"),
     ("王·", "name_characters"), ("王··明", "name_characters"), ("John  Smith", "name_characters"),
     ("Ａｌｉｃｅ", "name_characters"), ("Мария", "name_characters"), ("\ue000", "name_characters"),
     ("-Smith", "name_characters"), ("王-明", "name_characters"),
     ("王\x00明", "control_character"), ("王\t明", "control_character"),
     ("王\x85明", "control_character")],
)  # fmt: skip
def test_refused(name: str, code: str) -> None:
    assert code in _codes(name)


def test_kindergarten_names_may_hold_digits_and_brackets() -> None:
    assert _codes("第3幼儿园（东区）", kindergarten=True) == []
    assert _codes("阳光幼儿园(2)", kindergarten=True) == []
    assert _codes("第3幼儿园") == ["name_characters"]  # not a person's name
    assert _codes("=HYPERLINK(1)", kindergarten=True) == ["name_characters"]


@st.composite
def policy_names(draw: st.DrawFn) -> str:
    """Names the policy accepts: Chinese parts joined by a middle dot, or Latin words."""
    if draw(st.booleans()):
        parts = draw(st.lists(st.text(st.one_of(HAN, HAN_EXT), min_size=1, max_size=4),
                              min_size=1, max_size=3))  # fmt: skip
        return draw(st.sampled_from(sorted(MIDDLE_DOTS))).join(parts)
    words = draw(st.lists(st.text(LATIN, min_size=1, max_size=8), min_size=1, max_size=3))
    return " ".join(words)


@given(policy_names())
def test_generated_policy_names_are_accepted(name: str) -> None:
    assert _codes(name) == []


@given(policy_names(), st.characters(), st.integers(min_value=0, max_value=20))
def test_a_character_outside_the_policy_is_refused(name: str, c: str, at: int) -> None:
    if is_name_character(c) or unicodedata.category(c) == "Mn":
        return
    i = min(at, len(name))
    codes = _codes(name[:i] + c + name[i:])
    assert codes
    assert set(codes) <= {"name_characters", "control_character"}
    assert ("control_character" in codes) == (unicodedata.category(c) == "Cc")


def test_the_child_check_uses_the_policy_for_guardians_too() -> None:
    _, problems = build_child(
        id="c1",
        name="王小明",
        sex="男",
        birth_date="2020-03-15",
        guardians=[{"name": "<b>王芳</b>", "relation": "mother", "phone": "13800138000"}],
        today=date(2025, 9, 1),
    )
    assert [(v.field, v.code) for v in problems if v.code == "name_characters"] == [
        ("guardians[0].name", "name_characters")
    ]
