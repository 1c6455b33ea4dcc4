"""Griffe extension for the API reference: render docstring doctests as code.

Our docstrings keep their runnable examples as bare ``>>>`` blocks (pytest
runs them).  In Markdown a bare ``>>>`` line is a nested block quote and an
output such as ``['a', 'b']`` reads as a reference link, which autorefs
then reports as a broken cross-reference.  This extension wraps every bare
doctest block (from its first ``>>>`` line to the next blank line) in a
```` ```pycon ```` fence before mkdocstrings renders it.

>>> fence_doctests("Text.\\n\\n>>> [1, 2]\\n[1, 2]\\n\\nMore.").split("\\n")
['Text.', '', '```pycon', '>>> [1, 2]', '[1, 2]', '```', '', 'More.']
"""

from __future__ import annotations

from typing import Any

import griffe

__all__ = ["DoctestFences", "fence_doctests"]


def fence_doctests(text: str) -> str:
    """Return ``text`` with each bare doctest block wrapped in a ``pycon`` fence.

    Blocks already inside a fence are left alone.

    >>> fence_doctests("```\\n>>> 1\\n```")
    '```\\n>>> 1\\n```'
    """
    out: list[str] = []
    lines = text.split("\n")
    fenced = False
    i = 0
    while i < len(lines):
        line = lines[i]
        stripped = line.lstrip()
        if stripped.startswith(("```", "~~~")):
            fenced = not fenced
        if fenced or not stripped.startswith(">>>"):
            out.append(line)
            i += 1
            continue
        indent = line[: len(line) - len(stripped)]
        out.append(f"{indent}```pycon")
        while i < len(lines) and lines[i].strip() and lines[i].startswith(indent):
            out.append(lines[i])
            i += 1
        out.append(f"{indent}```")
    return "\n".join(out)


class DoctestFences(griffe.Extension):
    """Fence the doctests of every docstring griffe loads (see the module docs).

    >>> isinstance(DoctestFences(), griffe.Extension)
    True
    """

    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        """Rewrite ``obj``'s docstring in place."""
        if obj.docstring is not None:
            obj.docstring.value = fence_doctests(obj.docstring.value)
