"""Which build of studentstatus is installed: pure Python, or with compiled modules.

The optional compiled build (docs/how-to/compiled-build.md) compiles the per-row hot
path with mypyc; a plain install is pure Python.
"""

from __future__ import annotations

from importlib.machinery import EXTENSION_SUFFIXES
from pathlib import Path

__all__ = ["compiled_modules"]


def compiled_modules() -> tuple[str, ...]:
    """The modules of this installation that run compiled code, sorted; ``()`` when pure.

    A module counts when its compiled file sits beside (or instead of) its source, which
    is what Python imports first.

    >>> from studentstatus import compiled_modules
    >>> mods = compiled_modules()
    >>> all(m.startswith("studentstatus.") for m in mods)
    True
    """
    root = Path(__file__).parent
    suffixes = set(EXTENSION_SUFFIXES)  # this interpreter's: ".cpython-311-….so", ".so"…
    found: set[str] = set()
    for path in root.rglob("*.*"):
        stem, dot, rest = path.name.partition(".")
        if dot + rest not in suffixes:  # a data file, or compiled for another Python
            continue
        parts = path.relative_to(root).parts
        name = ".".join(("studentstatus", *parts[:-1], stem))
        found.add(name.removesuffix(".__init__"))
    return tuple(sorted(found))
