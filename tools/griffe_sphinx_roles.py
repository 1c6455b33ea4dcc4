"""Griffe extension for the API reference: render the docstrings' Sphinx roles.

The docstrings cross-reference each other with Sphinx roles (:func:`x`,
:class:`~a.b.C`, :data:, :meth:, :attr:, :mod:, :exc:, :obj:, :const:), which
mkdocstrings' Google-style parser leaves as literal text (":func:" followed by
a code span).  Once the whole package is loaded, this extension rewrites every
role in every docstring into an *optional* autorefs cross-reference:

* the target is resolved like Sphinx does — as written, then relative to the
  object's class, its module and the module's parents, then under the
  package — and becomes a link when the resolved object is on a page of the
  site;
* an unresolved target (``enum.StrEnum``, ``ValueError``) or one whose page
  is not part of the site renders as plain code (autorefs' ``optional``: no
  warning, no broken link);
* ``~a.b.C`` shows ``C``; ``:func:`title <a.b.c>``` shows ``title``.

Code inside fences and inline code spans is left alone.

>>> convert_roles("See :func:`~studentstatus.ids.is_valid` and :exc:`ValueError`.", lambda t: None)
'See <autoref identifier="studentstatus.ids.is_valid" optional><code>is_valid</code></autoref> \
and <code>ValueError</code>.'
>>> convert_roles("```\\n:func:`x`\\n```", lambda t: "x")
'```\\n:func:`x`\\n```'
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Iterator
from typing import Any

import griffe

__all__ = ["ROLE", "SphinxRoles", "convert_roles"]

ROLE = re.compile(
    r":(?:py:)?(?P<role>func|class|data|meth|attr|mod|exc|obj|const|type|ref)"
    r":`(?P<body>[^`]+)`"
)
"""A Sphinx role as the docstrings write it."""

_TITLED = re.compile(r"^(?P<title>.*?)\s*<(?P<target>[^<>]+)>$")


def _render(match: re.Match[str], resolve: Callable[[str], str | None]) -> str:
    body = match["body"].strip()
    titled = _TITLED.match(body)
    if titled:
        title, target = titled["title"], titled["target"].lstrip("~")
    else:
        short = body.startswith("~")
        target = body.lstrip("~")
        title = target.rsplit(".", 1)[-1] if short else target
    path = target.rstrip("()").lstrip(".")
    identifier = resolve(path)
    if match["role"] == "ref" or identifier is None:
        identifier = path if path.startswith("studentstatus.") else None
    code = f"<code>{html.escape(title)}</code>"
    if identifier is None:
        return code
    return f'<autoref identifier="{html.escape(identifier)}" optional>{code}</autoref>'


def convert_roles(text: str, resolve: Callable[[str], str | None]) -> str:
    """Return ``text`` with each Sphinx role outside code rewritten (see the module docs).

    ``resolve`` maps a target as written to the full path of a known object,
    or ``None``.

    >>> convert_roles(":class:`Report` (``:class:`kept```)", {"Report": "m.Report"}.get)
    '<autoref identifier="m.Report" optional><code>Report</code></autoref> (``:class:`kept```)'
    """
    out: list[str] = []
    block: list[str] = []  # consecutive lines outside fences: code spans may cross lines
    fenced = False
    for line in text.split("\n"):
        fence = line.lstrip().startswith(("```", "~~~"))
        if fenced or fence:
            if block:
                out.append(_outside_code(block, resolve))
                block = []
            out.append(line)
            if fence:
                fenced = not fenced
            continue
        block.append(line)
    if block:
        out.append(_outside_code(block, resolve))
    return "\n".join(out)


_TOKEN = re.compile(
    ROLE.pattern + r"|(?P<code>``.+?``|`[^`\n]+`)",  # a role, else an inline code span
    re.DOTALL,
)


def _outside_code(lines: list[str], resolve: Callable[[str], str | None]) -> str:
    """Convert the roles of ``lines``, scanning left to right so code spans stay as they are."""

    def one(match: re.Match[str]) -> str:
        return match.group(0) if match["code"] else _render(match, resolve)

    return _TOKEN.sub(one, "\n".join(lines))


def _walk(obj: griffe.Object) -> Iterator[griffe.Object]:
    yield obj
    for member in obj.members.values():
        if member.is_alias or not isinstance(member, griffe.Object):
            continue
        yield from _walk(member)


class SphinxRoles(griffe.Extension):
    """Rewrite the Sphinx roles of every docstring of a loaded package (see the module docs).

    >>> isinstance(SphinxRoles(), griffe.Extension)
    True
    """

    def on_package(self, *, pkg: griffe.Module, **kwargs: Any) -> None:
        """Convert the roles of every object of ``pkg`` once it is fully loaded."""
        for obj in _walk(pkg):
            if obj.docstring is not None and ":`" in obj.docstring.value:
                obj.docstring.value = convert_roles(
                    obj.docstring.value, lambda t, o=obj: _resolve(pkg, o, t)
                )


def _lookup(pkg: griffe.Module, path: str) -> str | None:
    """The full path of ``path`` when it names an object of ``pkg``, else ``None``."""
    parts = path.split(".")
    if parts[0] != pkg.name:
        return None
    node: Any = pkg
    for part in parts[1:]:
        try:
            node = node.members[part]
        except (KeyError, AttributeError):
            return None
        if node.is_alias:
            try:
                target = node.target
            except (griffe.AliasResolutionError, griffe.CyclicAliasError):
                return None
            node = target
    return str(node.path)


def _resolve(pkg: griffe.Module, obj: griffe.Object, target: str) -> str | None:
    """Resolve ``target`` as Sphinx would from ``obj``'s docstring (see the module docs)."""
    scopes: list[str] = [""]
    node: Any = obj
    while node is not None:
        if node.is_class or node.is_module:
            scopes.append(node.path + ".")
        node = node.parent
    scopes.append(pkg.name + ".")
    for scope in scopes:
        found = _lookup(pkg, scope + target)
        if found is not None:
            return found
    return None
