"""A JSON encoder without the per-call set-up of :meth:`json.JSONEncoder.encode` (private).

``json.JSONEncoder.encode`` builds its C encoder again on every call, which
costs more than encoding a small document; the bulk paths (``COPY`` text,
the audit chain's canonical form) encode millions of them.  :func:`encoder`
builds the C encoder once and gives the same text as ``JSONEncoder(**options)
.encode`` for acyclic values (there is no circular-reference check), and falls
back to that where the interpreter has no C accelerator.

>>> dumps = encoder()
>>> dumps({"名": [1, None]}), dumps({}) == json.dumps({})
('{"\\\\u540d": [1, null]}', True)
>>> encoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)({"b": 1, "a": "名"})
'{"a":"名","b":1}'
"""

from __future__ import annotations

import json
from collections.abc import Callable
from json import encoder as _encoder
from typing import Any

__all__ = ["encoder"]


def encoder(
    *,
    sort_keys: bool = False,
    separators: tuple[str, str] = (", ", ": "),
    ensure_ascii: bool = True,
    allow_nan: bool = True,
    default: Callable[[Any], Any] | None = None,
) -> Callable[[Any], str]:
    """``json.JSONEncoder(**options).encode`` for acyclic values, built once."""
    slow = json.JSONEncoder(
        sort_keys=sort_keys,
        separators=separators,
        ensure_ascii=ensure_ascii,
        allow_nan=allow_nan,
        default=default,
    )
    make = getattr(_encoder, "c_make_encoder", None)
    if make is None:  # pragma: no cover - CPython has the accelerator
        return slow.encode
    strings = _encoder.encode_basestring_ascii if ensure_ascii else _encoder.encode_basestring
    item_sep, key_sep = separators
    fast = make(None, slow.default, strings, None, key_sep, item_sep, sort_keys, False, allow_nan)

    def encode(value: Any) -> str:
        if isinstance(value, str):
            return str(strings(value))
        return "".join(fast(value, 0))

    return encode
