"""The PII sweep: fail a test when a full identity number shows up where a user could see it.

The ``pii_sweep`` fixture (see ``tests/conftest.py``) watches one test and fails it
when a full resident ID of the test data — or the G number that embeds it, or its
first 17 characters, which give the whole number back — appears in

* a log record (any logger at WARNING and up, ``studentstatus.*`` from DEBUG): its
  message, its arguments and its formatted exception with the whole chain;
* the test's captured stdout/stderr (pytest's capture, ``capsys``/``capfd``);
* the output and the exception of every ``CliRunner.invoke`` (not the output of a
  command run with ``--reveal``: it was asked for);
* an exception caught by ``pytest.raises``: ``str``, ``repr``, messages,
  violations, and every exception of its ``__cause__``/``__context__`` chain.

It also flags *weak masks*: a masked ID, G, J or L number that shows more than the
masking rule of ``docs/concepts/privacy.md`` (``110105********002X`` — the old
rule — gives the number back next to a printed birth date).

Known numbers are the real public test vectors of GB 11643 resident IDs and every number
``tests/services/_registration_world.resident_id`` generates for its default
child; any other checksum-valid resident ID with a real birth date is caught by
its shape.  A test that reveals numbers on purpose marks itself
``@pytest.mark.reveals_ids``: its outputs are not swept (its logs and exceptions
still are).

>>> sorted(kind for kind, _ in find_leaks("id 11010520200315002X here"))
['known id']
>>> find_leaks("masked 11****************")
[]
>>> [kind for kind, _ in find_leaks("old mask 110105********002X")]
['weak mask']
>>> [kind for kind, _ in find_leaks("G510107201911300030")]
['known id']
>>> [kind for kind, _ in find_leaks("other 360426199101010071;")]
['id-shaped']
"""

from __future__ import annotations

import contextlib
import logging
import re
import traceback
from collections.abc import Callable, Iterable, Iterator
from datetime import date
from typing import Any

import pytest

__all__ = [
    "KNOWN_IDS",
    "Sweep",
    "exception_texts",
    "find_leaks",
    "generated_ids",
]

REAL_VECTORS = (
    "11010520200315002X",
    "510107201911300030",
    "440306202109010045",
    "110105202003150038",
)
"""The real public test vectors (GB 11643 resident IDs) used by the tests."""

_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CHECK = "10X98765432"


def mask_number(text: str) -> str:
    """The sweep's own mask for its reports (first two characters; never the library's).

    >>> mask_number("G11010520200315002X")
    'G1*****************'
    """
    return text[:2] + "*" * (len(text) - 2)


def _check_char(body: str) -> str:
    return _CHECK[sum(int(c) * w for c, w in zip(body, _WEIGHTS, strict=True)) % 11]


def generated_ids() -> list[str]:
    """Every ID ``_registration_world.resident_id`` makes for its default child (born
    2020-10-03 in 110105): all 1000 sequence codes, both sexes.

    >>> ids = generated_ids()
    >>> len(ids), ids[0]
    (1000, '11010520201003000X')
    """
    out = []
    for order in range(1000):
        body = f"110105{date(2020, 10, 3):%Y%m%d}{order:03d}"
        out.append(body + _check_char(body))
    return out


KNOWN_IDS: frozenset[str] = frozenset((*REAL_VECTORS, *generated_ids()))
"""The full ID numbers of the test data."""

_KNOWN_BODIES = frozenset(n[:17] for n in KNOWN_IDS)
_BODY_WINDOWS = re.compile(r"(?=([0-9]{17}))")
# a bare ID or a G number; not the 18-digit body of an L or J number
_ID_SHAPED = re.compile(r"(?<![0-9A-FH-Za-z])([0-9]{17}[0-9Xx])(?![0-9A-Za-z])")
# anything that looks like a masked number: digits, X and at least one '*'
_MASKED = re.compile(r"(?<![0-9A-Za-z*])([GJL]?[0-9X*]{6,18})(?![0-9A-Za-z*])")
_GOOD_MASKS = (
    re.compile(r"[0-9]{2}\*{13}|[0-9]{2}\*{16}"),  # 15/18-character ID: province only
    re.compile(r"G[0-9]{2}\*{16}"),
    re.compile(r"J\*{17}[0-9X]"),
    re.compile(r"L\*{14}[0-9]{4}"),
)


def _plausible_id(number: str) -> bool:
    if _check_char(number[:17]) != number[17].upper():
        return False
    try:
        born = date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
    except ValueError:
        return False
    return 1900 <= born.year <= 2100 and number[0] != "0"


def find_leaks(text: str) -> list[tuple[str, str]]:
    """``(kind, masked excerpt)`` for each full or weakly masked number in ``text``.

    Kinds: ``known id`` (a number of the test data, or its first 17 characters),
    ``id-shaped`` (any other checksum-valid ID with a real birth date) and
    ``weak mask`` (a mask showing more than the rule allows).  Excerpts are masked
    themselves, so the failure report leaks nothing.

    >>> find_leaks("nothing here"), find_leaks("")
    ([], [])
    >>> find_leaks("J*****************X L**************0042 G11****************")
    []
    >>> find_leaks("L110105202010030042 J11010520201003001X")   # not ID numbers
    []
    """
    if not text:
        return []
    leaks: list[tuple[str, str]] = []
    known_at: set[int] = set()
    for m in _BODY_WINDOWS.finditer(text):
        # the body of a J or L number starts like an ID (region + birth date): not one
        if m.group(1) in _KNOWN_BODIES and text[m.start() - 1 : m.start()] not in ("J", "L"):
            known_at.add(m.start())
            leaks.append(("known id", mask_number(text[m.start() : m.start() + 18])))
    for m in _ID_SHAPED.finditer(text):
        if m.start() not in known_at and _plausible_id(m.group(1)):
            leaks.append(("id-shaped", mask_number(m.group(1))))
    if "*" in text:
        for m in _MASKED.finditer(text):
            token = m.group(1)
            if (
                "*" in token
                and len(token) >= 15
                and not any(p.fullmatch(token) for p in _GOOD_MASKS)
            ):
                leaks.append(("weak mask", "*" * len(token)))
    return leaks


def exception_texts(exc: BaseException | None) -> Iterator[str]:
    """The texts of ``exc`` and of every exception in its ``__cause__``/``__context__`` chain.

    >>> try:
    ...     try:
    ...         raise KeyError("inner")
    ...     except KeyError:
    ...         raise ValueError("outer") from None
    ... except ValueError as e:
    ...     texts = list(exception_texts(e))
    >>> any("inner" in t for t in texts)   # the context is still there, suppressed or not
    True
    """
    seen: set[int] = set()
    todo = [exc]
    while todo:
        e = todo.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        yield str(e)
        yield repr(e)
        yield repr(getattr(e, "args", ()))
        for name in ("message_en", "message_zh", "what", "detail", "hint"):
            value = getattr(e, name, None)
            if isinstance(value, str):
                yield value
        for v in getattr(e, "violations", ()) or ():
            yield repr(v)
            yield f"{getattr(v, 'message_en', '')} {getattr(v, 'message_zh', '')}"
        todo += [e.__cause__, e.__context__]
        todo += list(getattr(e, "exceptions", ()))  # exception groups


class _Handler(logging.Handler):
    def __init__(self, sweep: Sweep) -> None:
        super().__init__(logging.DEBUG)
        self.sweep = sweep

    def emit(self, record: logging.LogRecord) -> None:
        where = f"log {record.name}:{record.levelname}"
        try:
            self.sweep.check(where, record.getMessage())
        except Exception:  # a broken format string: check the raw parts
            self.sweep.check(where, str(record.msg))
        self.sweep.check(where + " args", repr(record.args))
        if record.exc_info and record.exc_info[1] is not None:
            exc = record.exc_info[1]
            self.sweep.check(where + " traceback", "".join(traceback.format_exception(exc)))
            self.sweep.check_exception(where + " exception", exc)
        if record.exc_text:
            self.sweep.check(where + " exc_text", record.exc_text)


class Sweep:
    """What one test showed: call :meth:`check` on texts, :meth:`report` at the end.

    >>> s = Sweep()
    >>> s.check("stdout", "ok 11****************")
    >>> s.check("stdout", "bad 510107201911300030")
    >>> s.leaks
    [('stdout', 'known id', '51****************')]
    >>> s.checked
    2
    """

    def __init__(self, *, outputs: bool = True) -> None:
        self.outputs = outputs
        self.leaks: list[tuple[str, str, str]] = []
        self.checked = 0

    def check(self, where: str, text: object) -> None:
        """Record every leak in ``text`` (seen at ``where``)."""
        self.checked += 1
        for kind, shown in find_leaks(text if isinstance(text, str) else repr(text)):
            self.leaks.append((where, kind, shown))

    def check_output(self, where: str, text: object) -> None:
        """:meth:`check` unless the test reveals numbers on purpose."""
        if self.outputs:
            self.check(where, text)

    def check_exception(self, where: str, exc: BaseException | None) -> None:
        """:meth:`check` every text of ``exc`` and its chain."""
        for text in exception_texts(exc):
            self.check(where, text)

    def report(self) -> str:
        """One line per distinct leak (masked), for the failure message."""
        distinct = sorted(set(self.leaks))
        lines = [f"  {where}: {kind} {shown}" for where, kind, shown in distinct[:40]]
        more = f"\n  … and {len(distinct) - 40} more" if len(distinct) > 40 else ""
        return (
            f"PII sweep: {len(distinct)} full or weakly masked numbers shown\n"
            + "\n".join(lines)
            + more
        )


class _RaisesWrapper:
    def __init__(self, ctx: Any, sweep: Sweep) -> None:
        self._ctx = ctx
        self._sweep = sweep

    def __enter__(self) -> Any:
        return self._ctx.__enter__()

    def __exit__(self, *exc: Any) -> Any:
        out = self._ctx.__exit__(*exc)
        if exc[1] is not None:
            self._sweep.check_exception("pytest.raises", exc[1])
        return out

    def __getattr__(self, name: str) -> Any:
        return getattr(self._ctx, name)


def install(
    sweep: Sweep, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> Callable[[], None]:
    """Hook the sweep into logging, ``pytest.raises``, ``CliRunner`` and ``capsys``/``capfd``;
    returns the function that checks the captured output and removes the logging hook."""
    handler = _Handler(sweep)
    root = logging.getLogger()
    ours = logging.getLogger("studentstatus")
    old_level = ours.level
    root.addHandler(handler)
    ours.setLevel(logging.DEBUG)

    real_raises = pytest.raises

    def raises(*args: Any, **kwargs: Any) -> Any:
        out = real_raises(*args, **kwargs)
        if isinstance(out, pytest.ExceptionInfo):
            sweep.check_exception("pytest.raises", out.value)
            return out
        return _RaisesWrapper(out, sweep)

    monkeypatch.setattr(pytest, "raises", raises)

    from click.testing import CliRunner

    real_invoke = CliRunner.invoke

    def invoke(self: CliRunner, cli: Any, args: Any = None, **kwargs: Any) -> Any:
        result = real_invoke(self, cli, args, **kwargs)
        shown = " ".join(args) if isinstance(args, list | tuple) else str(args or "")
        where = f"cli `{_masked_args(shown)}`"
        if "--reveal" not in shown.split():  # an output asked to reveal is not swept
            sweep.check_output(where + " output", result.output)
            with contextlib.suppress(ValueError):  # stderr mixed into output
                sweep.check_output(where + " stderr", result.stderr)
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            sweep.check_exception(where + " exception", result.exception)
        return result

    monkeypatch.setattr(CliRunner, "invoke", invoke)

    for name in ("capsys", "capfd", "capsysbinary", "capfdbinary"):
        if name in request.fixturenames:
            fixture = request.getfixturevalue(name)
            real_read = fixture.readouterr

            def readouterr(real_read: Any = real_read, name: str = name) -> Any:
                out = real_read()
                sweep.check_output(f"{name} stdout", out.out)
                sweep.check_output(f"{name} stderr", out.err)
                return out

            monkeypatch.setattr(fixture, "readouterr", readouterr)

    def finish() -> None:
        root.removeHandler(handler)
        ours.setLevel(old_level)
        for when, key, content in getattr(request.node, "_report_sections", ()):
            if key in ("stdout", "stderr"):
                sweep.check_output(f"captured {key} ({when})", content)
        for name in ("capsys", "capfd"):
            if name in request.fixturenames:
                rest = request.getfixturevalue(name).readouterr()
                sweep.check_output(f"{name} (unread)", f"{rest.out}\n{rest.err}")

    return finish


_ARG_NUMBER = re.compile(r"[GJLgjl]?[0-9]{14,}[0-9Xx]?")


def _masked_args(text: str) -> str:
    return _ARG_NUMBER.sub(lambda m: mask_number(m.group(0)), text)


def summary_lines(stats: dict[str, int]) -> Iterable[str]:
    """The terminal-summary lines of a run.

    >>> list(summary_lines({"swept": 3, "leaking": 1, "leaks": 2}))
    ['PII sweep: 3 tests swept, 1 with leaks (2 distinct leaks)']
    """
    if stats.get("swept"):
        yield (
            f"PII sweep: {stats['swept']} tests swept, {stats.get('leaking', 0)} with leaks "
            f"({stats.get('leaks', 0)} distinct leaks)"
        )
