"""Options and helpers shared by every command: ``--store``, ``--as``, ``--json``, errors.

Exit codes: 0 success; 1 when a check, a rule or a permission says no (the
reason is printed, in JSON under ``--json``); 2 usage errors (click's own).
"""

from __future__ import annotations

import functools
import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date, datetime
from enum import Enum
from typing import Any, ParamSpec, TypeVar

import click

from studentstatus.errors import PermissionDenied, StudentStatusError, ValidationError, redact

__all__ = [
    "DEFAULT_STORE",
    "as_option",
    "echo_json",
    "handle_errors",
    "json_default",
    "json_option",
    "opened_runtime",
    "opened_store",
    "parse_operator",
    "store_option",
]

DEFAULT_STORE = "sqlite:///studentstatus.db"

P = ParamSpec("P")
R = TypeVar("R")


def store_option(f: Callable[P, R]) -> Callable[P, R]:
    """``--store URL`` (env ``STUDENTSTATUS_STORE``; default ``sqlite:///studentstatus.db``)."""
    return click.option(
        "--store",
        "store_url",
        envvar="STUDENTSTATUS_STORE",
        default=DEFAULT_STORE,
        show_default=True,
        help="Store URL: sqlite:///path, postgresql+psycopg://…, mysql+pymysql://…, "
        "file:///dir, memory://",
    )(f)


def json_option(f: Callable[P, R]) -> Callable[P, R]:
    """``--json``: print one JSON document on stdout."""
    return click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")(f)


def as_option(f: Callable[P, R]) -> Callable[P, R]:
    """``--as ROLE:SCOPE`` (required): the operator on whose behalf the command acts."""
    return click.option(
        "--as",
        "operator_text",
        required=True,
        metavar="ROLE:SCOPE",
        help="kindergarten:SCHOOLCODE, county:CODE6, city:CODE4, province:CODE2 or ministry",
    )(f)


def parse_operator(text: str) -> Any:
    """Parse ``--as`` into an :class:`~studentstatus.domain.jurisdiction.Operator` (usage error)."""
    from studentstatus.domain.jurisdiction import Operator

    try:
        return Operator.parse(text)
    except ValidationError as exc:
        raise click.BadParameter(exc.message_en, param_hint="--as") from exc


@contextmanager
def opened_runtime(url: str, registry: Any = None) -> Iterator[Any]:
    """Open the store and build the command's :class:`~studentstatus.services.runtime.Runtime`.

    The clock is the system clock (China Standard Time); ``STUDENTSTATUS_NOW``
    (an ISO date-time, e.g. ``2026-09-01T09:00:00+08:00``) fixes it, for scripted
    runs and tests.  Randomness comes from an unseeded :class:`random.Random`.
    """
    import random

    from studentstatus.services.runtime import FixedClock, Runtime, SystemClock

    now = os.environ.get("STUDENTSTATUS_NOW", "").strip()
    clock: Any = SystemClock()
    if now:
        try:
            clock = FixedClock(datetime.fromisoformat(now))
        except ValueError:
            msg = f"STUDENTSTATUS_NOW is not an ISO date-time: {now!r}"
            raise click.UsageError(msg) from None
    with opened_store(url) as store:
        yield Runtime(store, clock, random.Random(), registry=registry)


@contextmanager
def opened_store(url: str, audit_key: Any = None) -> Iterator[Any]:
    """Open the store named by ``url`` and close it afterwards.

    The store seals audit entries under ``audit_key``, by default the host's key from
    ``STUDENTSTATUS_AUDIT_KEY`` or ``STUDENTSTATUS_AUDIT_KEY_FILE``
    (:func:`studentstatus.services.audit.key_from_env`); unkeyed when neither is set.
    """
    from studentstatus.services.audit import key_from_env
    from studentstatus.store import open_store

    key = audit_key if audit_key is not None else key_from_env()
    store = open_store(url) if key is None else open_store(url, audit_key=key)
    try:
        yield store
    finally:
        store.close()


def json_default(value: object) -> object:
    """``json.dumps`` default: dates ISO, enums by value, attrs classes as dicts, sets as lists."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    import attrs

    if attrs.has(type(value)):
        return attrs.asdict(value, recurse=False)  # type: ignore[arg-type]
    msg = f"not JSON serialisable: {type(value).__name__}"
    raise TypeError(msg)


def echo_json(doc: object) -> None:
    """Print ``doc`` as one JSON document (UTF-8, Chinese kept readable)."""
    click.echo(json.dumps(doc, ensure_ascii=False, default=json_default, indent=2))


def handle_errors(as_json_param: str = "as_json") -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Turn library errors into exit code 1 with the reason (JSON under ``--json``)."""

    def deco(f: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(f)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            try:
                return f(*args, **kwargs)
            except (StudentStatusError, ValueError) as exc:
                as_json = bool(kwargs.get(as_json_param))
                doc = _error_doc(exc)
                if as_json:
                    echo_json({"error": doc})
                elif doc.get("violations"):
                    # one line per unmet rule (the joined message would repeat each code)
                    for v in doc["violations"]:
                        where = f" [{v['field']}]" if v["field"] else ""
                        click.echo(
                            f"error: {v['code']}{where}: {v['message_en']} / {v['message_zh']}",
                            err=True,
                        )
                else:
                    click.echo(
                        f"error: {doc['code']}: {doc['message_en']} / {doc['message_zh']}", err=True
                    )
                sys.exit(1)

        return wrapper

    return deco


def _error_doc(exc: BaseException) -> dict[str, Any]:
    # Library errors mask numbers themselves; a plain ValueError may quote its input.
    code = getattr(exc, "code", "error")
    message_en = redact(getattr(exc, "message_en", None) or str(exc))
    message_zh = redact(getattr(exc, "message_zh", None) or str(exc))
    doc: dict[str, Any] = {"code": code, "message_zh": message_zh, "message_en": message_en}
    violations = getattr(exc, "violations", None)
    if violations:
        doc["violations"] = [v.to_dict() for v in violations]
    if isinstance(exc, PermissionDenied):
        doc["operator"] = exc.operator
    return doc


def env_flag(name: str) -> bool:
    """Whether environment variable ``name`` is set to a true value."""
    return os.environ.get(name, "").lower() in {"1", "true", "yes"}
