"""The JSON text of the SQL bulk paths is ``json.dumps``'s, whatever came before it.

``copy._json_text`` reuses the text of dict members whose value is the very same object as
in the last dict it saw (bulk rows share most of their values); these tests feed it
sequences of dicts that share keys, values and objects, change a shared list in place, mix
key and value types, and compare every result with ``json.dumps``.
"""

from __future__ import annotations

import json
from enum import IntEnum, StrEnum
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from studentstatus.adapters.sql import copy as copy_mod
from studentstatus.adapters.sql.copy import _json_text


class Colour(StrEnum):
    RED = "red"


class Level(IntEnum):
    ONE = 1


SHARED_LIST: list[Any] = []
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=False),
    st.text(max_size=8),
    st.sampled_from(["", "PENDING", "名字", 'q"\\\n\t', "\u2028", "\x00"]),
    st.just(Colour.RED),
    st.just(Level.ONE),
    st.just(SHARED_LIST),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.sampled_from(["a", "b", "名"]), inner, max_size=3)
    ),
    max_leaves=6,
)
KEYS = st.sampled_from(["id", "state", "grade", "名", "a b", 'k"'])


@settings(max_examples=300)
@given(st.lists(st.dictionaries(KEYS, VALUES, max_size=8), min_size=1, max_size=6), st.data())
def test_dict_text_is_json_dumps_over_any_sequence(dicts: list[dict[str, Any]], data: Any) -> None:
    for d in dicts:
        if data.draw(st.booleans()):  # the shared list changes in place between rows
            SHARED_LIST.append(data.draw(SCALARS.filter(lambda v: v is not SHARED_LIST)))
        assert _json_text(d) == json.dumps(d)
        # the same dict again: every member taken from the memo
        assert _json_text(d) == json.dumps(d)
    SHARED_LIST.clear()


def test_the_same_objects_in_changed_dicts() -> None:
    big = 10**30
    text = "共享"
    rows = [
        {"id": "r1", "n": big, "t": text, "ok": True, "none": None},
        {"id": "r2", "n": big, "t": text, "ok": 1, "none": None},  # 1 is not True
        {"id": "r3", "n": 1, "t": text + "", "ok": False, "none": 0},
        {"t": text, "id": "r4"},  # another order
        {1: "int key", "id": "r5"},  # json.dumps turns the key into a string
        {"id": 1.5, "n": float("inf")},
    ]
    for row in rows:
        assert _json_text(row) == json.dumps(row)


def test_more_keys_than_the_memo_holds() -> None:
    for i in range(3000):
        row = {f"k{i}": i, "shared": "v", f"x{i % 7}": [i]}
        assert _json_text(row) == json.dumps(row)
    assert len(copy_mod._MEMBERS) <= 1025
    wide = {f"w{i}": i for i in range(100)}  # more than 64 members: the encoder itself
    assert _json_text(wide) == json.dumps(wide)
