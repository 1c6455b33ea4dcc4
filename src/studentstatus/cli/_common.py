"""Options and helpers shared by every command: ``--store``, ``--as``, ``--json``, errors.

Exit codes: 0 success; 1 when a check, a rule or a permission says no (the
reason is printed, in JSON under ``--json``); 2 usage errors (click's own).
No command ends in a Python traceback: :func:`handle_errors` turns library
errors, file errors (the path and the reason) and storage errors (which store,
the likely fix) into one ``error:`` line and exit 1.  ``STUDENTSTATUS_DEBUG=1``
lets an unexpected error through with its traceback, for a bug report.
"""

from __future__ import annotations

import contextlib
import errno
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
    "DATE",
    "DEFAULT_STORE",
    "DateParam",
    "as_option",
    "atomic_target",
    "busy",
    "echo_json",
    "handle_errors",
    "json_default",
    "json_option",
    "opened_runtime",
    "opened_store",
    "parse_operator",
    "progress_printer",
    "store_label",
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
def opened_runtime(url: str, registry: Any = None, *, create: bool | None = None) -> Iterator[Any]:
    """Open the store and build the command's :class:`~studentstatus.services.runtime.Runtime`.

    The clock is the system clock (China Standard Time); ``STUDENTSTATUS_NOW``
    (an ISO date-time, e.g. ``2026-09-01T09:00:00+08:00``) fixes it, for scripted
    runs and tests.  Randomness comes from an unseeded :class:`random.Random`.
    ``create`` goes to :func:`~studentstatus.store.open_store`.
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
    with opened_store(url, create=create) as store:
        yield Runtime(store, clock, random.Random(), registry=registry)


@contextmanager
def opened_store(url: str, audit_key: Any = None, *, create: bool | None = None) -> Iterator[Any]:
    """Open the store named by ``url`` and close it afterwards.

    The store seals audit entries under ``audit_key``, by default the host's key from
    ``STUDENTSTATUS_AUDIT_KEY`` or ``STUDENTSTATUS_AUDIT_KEY_FILE``
    (:func:`studentstatus.services.audit.key_from_env`); unkeyed when neither is set.
    """
    from studentstatus.services.audit import key_from_env
    from studentstatus.store import open_store

    key = audit_key if audit_key is not None else key_from_env()
    kw: dict[str, Any] = {} if key is None else {"audit_key": key}
    store = open_store(url, create=create, **kw)
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


class DateParam(click.ParamType):  # type: ignore[type-arg]
    """A date option in every form the files accept: ``YYYY-MM-DD``, ``YYYY/MM/DD``, ``YYYYMMDD``.

    The value is a :class:`datetime.date` (parsed by :func:`studentstatus.tabular.parse_date`);
    anything else is a usage error (exit 2).

    >>> DATE.convert("2026/9/1", None, None), DATE.convert("20260901", None, None)
    (datetime.date(2026, 9, 1), datetime.date(2026, 9, 1))
    >>> DATE.convert("2026-02-30", None, None)
    Traceback (most recent call last):
    ...
    click.exceptions.BadParameter: '2026-02-30' is not a date (YYYY-MM-DD, YYYY/MM/DD or YYYYMMDD)
    """

    name = "date"

    def get_metavar(self, param: Any, ctx: Any = None) -> str:
        """``DATE`` in the help."""
        return "DATE"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        """Parse ``value`` (a :class:`date` passes through)."""
        if isinstance(value, datetime):
            return value.date()
        if isinstance(value, date):
            return value
        from studentstatus.tabular import parse_date

        text = str(value).strip()
        try:
            return parse_date(text)
        except ValueError:
            self.fail(
                f"{text[:40]!r} is not a date (YYYY-MM-DD, YYYY/MM/DD or YYYYMMDD)", param, ctx
            )


DATE = DateParam()


def progress_printer(label: str) -> Callable[[int], None] | None:
    """A ``progress(done)`` callback printing ``label: N`` on stderr, or ``None`` off a terminal.

    Pass the result to a service's ``progress=``; end the line with ``click.echo(err=True)``.

    >>> progress_printer("records") is None  # doctest runs without a terminal
    True
    """
    if not sys.stderr.isatty():
        return None

    def show(done: int) -> None:
        click.echo(f"\r{label}: {done:,}", err=True, nl=False)

    return show


@contextmanager
def busy(label: str) -> Iterator[None]:
    """``label …`` on stderr while the block runs, then the time it took (on a terminal only).

    For the steps that report no count of their own (an audit log's verification, a plan);
    counted work uses :func:`progress_printer`.

    >>> with busy("verifying"):
    ...     pass
    """
    import time

    if not sys.stderr.isatty():
        yield
        return
    started = time.perf_counter()
    click.echo(f"{label} …", err=True, nl=False)
    try:
        yield
    finally:
        click.echo(f" {time.perf_counter() - started:.1f} s", err=True)


@contextmanager
def atomic_target(path: str | os.PathLike[str]) -> Iterator[str]:
    """A temporary path next to ``path`` to write to; moved into place when the block ends.

    The directory is checked first (a missing directory is a clean
    :class:`FileNotFoundError`, before any work); the temporary file keeps the
    suffix (``.xlsx`` stays a workbook); on an error it is removed and ``path`` is
    untouched.

    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> with atomic_target(d / "out.txt") as tmp:
    ...     _ = pathlib.Path(tmp).write_text("x")
    >>> sorted(p.name for p in d.iterdir())
    ['out.txt']
    """
    import tempfile
    from pathlib import Path

    target = Path(path)
    parent = target.parent
    if not parent.is_dir():
        raise FileNotFoundError(errno.ENOENT, "no such directory", str(parent))
    if target.is_dir():
        raise IsADirectoryError(errno.EISDIR, "is a directory", str(target))
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=target.suffix, dir=parent)
    os.close(fd)
    try:
        yield tmp
        if os.path.exists(tmp):  # (the block may have moved it into place itself)
            os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def store_label(url: str, *, zh: bool = False) -> str:
    """The store ``url`` names, for people: kind, host, port, database — never the password.

    >>> store_label("postgresql+psycopg://app:secret@db.example:5433/xueji")
    'PostgreSQL database xueji at db.example:5433 (user app)'
    >>> store_label("postgresql+psycopg://app:secret@db.example:5433/xueji", zh=True)
    'PostgreSQL 数据库 xueji（db.example:5433，用户 app）'
    >>> store_label("sqlite:///data/x.db"), store_label("file:///srv/xueji")
    ('SQLite file data/x.db', 'file store /srv/xueji')
    """
    text = str(url)
    scheme = text.split("://", 1)[0].lower() if "://" in text else ""
    base = scheme.split("+", 1)[0]
    if base == "memory":
        return "内存存储" if zh else "memory store"
    if base in ("", "file"):
        path = text.split("://", 1)[-1] or "?"
        return f"文件存储 {path}" if zh else f"file store {path}"
    kind = {"postgresql": "PostgreSQL", "mysql": "MySQL", "mariadb": "MariaDB"}.get(base)
    if base != "sqlite" and kind is None:
        return f"存储 {scheme}://…" if zh else f"store {scheme}://…"
    try:
        import sqlalchemy as sa

        u = sa.make_url(text)
    except Exception:
        return (
            f"存储 {scheme}://…（地址无法解析）"
            if zh
            else f"store {scheme}://… (URL not understood)"
        )
    if base == "sqlite":
        name = u.database or ":memory:"
        return f"SQLite 文件 {name}" if zh else f"SQLite file {name}"
    where = f"{u.host or 'localhost'}" + (f":{u.port}" if u.port else "")
    if zh:
        user = f"，用户 {u.username}" if u.username else ""
        return f"{kind} 数据库 {u.database or '?'}（{where}{user}）"
    user = f" (user {u.username})" if u.username else ""
    return f"{kind} database {u.database or '?'} at {where}{user}"


# What a storage failure's likely cause asks of the operator (en, zh).
_STORAGE_HINTS: dict[str, tuple[str, str]] = {
    "missing_schema": (
        "the tables are missing: run `studentstatus init --store URL`",
        "数据表不存在：请先运行 `studentstatus init --store URL`",
    ),
    "missing_database": (
        "the database does not exist: create it (CREATE DATABASE), then run `studentstatus init`",
        "数据库不存在：请先创建数据库（CREATE DATABASE），再运行 `studentstatus init`",
    ),
    "unreachable": (
        "cannot connect: is the server running, and are host and port right?",
        "无法连接：数据库服务是否已启动？主机和端口是否正确？",
    ),
    "auth": (
        "the server refused the login: check the user and password",
        "数据库拒绝登录：请检查用户名和密码",
    ),
    "cannot_open": (
        "cannot open the file: does its directory exist and may this user write there?",
        "无法打开数据库文件：所在目录是否存在？当前用户是否有写权限？",
    ),
    "read_only": (
        "the store is read-only for this user: check the file's permissions",
        "存储对当前用户只读：请检查文件权限",
    ),
    "driver_missing": (
        "the database driver is not installed: pip install 'studentstatus[postgres]' "
        "or 'studentstatus[mysql]'",
        "未安装数据库驱动：请安装 studentstatus[postgres] 或 studentstatus[mysql]",
    ),
}

_OS_ERRORS_ZH = {
    errno.ENOENT: "文件或目录不存在",
    errno.EACCES: "没有访问权限",
    errno.EPERM: "没有操作权限",
    errno.EISDIR: "这是一个目录，不是文件",
    errno.ENOTDIR: "路径中有一段不是目录",
    errno.ENOSPC: "磁盘空间已满",
    errno.EROFS: "文件系统只读",
    errno.EEXIST: "文件已存在",
}


def _storage_doc(exc: BaseException, store_url: str | None) -> dict[str, Any]:
    """A storage failure named with its store and the likely fix, in English and Chinese."""
    from studentstatus.errors import ConflictError

    code = getattr(exc, "code", "storage")
    detail = redact(str(exc))
    zh = str(getattr(exc, "message_zh", "") or "")
    if not zh and " / " in detail:  # a message that carries both languages already
        detail, zh = detail.rsplit(" / ", 1)
    if not zh:
        zh = "写入冲突，本次未写入任何内容" if isinstance(exc, ConflictError) else "存储操作失败"
    cause = str(getattr(exc, "cause", "") or "")
    where_en = f" — store: {store_label(store_url)}" if store_url else ""
    where_zh = f"（存储：{store_label(store_url, zh=True)}）" if store_url else ""
    hint_en, hint_zh = _STORAGE_HINTS.get(cause, ("", ""))
    en = detail + where_en + (f"; {hint_en}" if hint_en else "")
    zh = redact(zh) + where_zh + (f"；{hint_zh}" if hint_zh else "")
    doc: dict[str, Any] = {"code": code, "message_zh": zh, "message_en": en}
    if store_url:
        doc["store"] = store_label(store_url)
    if cause:
        doc["cause"] = cause
    return doc


def _os_doc(exc: OSError) -> dict[str, Any]:
    """A file error: the path and the system's reason, in English and Chinese."""
    path = exc.filename if exc.filename is not None else ""
    reason_en = exc.strerror or type(exc).__name__
    reason_zh = _OS_ERRORS_ZH.get(exc.errno or 0, f"文件操作失败（{reason_en}）")
    where = f"{path}: " if path else ""
    return {
        "code": "file_error",
        "field": "path",
        "message_en": redact(f"{where}{reason_en}"),
        "message_zh": redact(f"{where}{reason_zh}"),
    }


def _print_doc(doc: dict[str, Any]) -> None:
    """``error: CODE: english / 中文`` on stderr (once when both say the same)."""
    if doc.get("violations"):
        # one line per unmet rule (the joined message would repeat each code)
        for v in doc["violations"]:
            where = f" [{v['field']}]" if v["field"] else ""
            both = _both(v["message_en"], v["message_zh"])
            click.echo(f"error: {v['code']}{where}: {both}", err=True)
        return
    click.echo(f"error: {doc['code']}: {_both(doc['message_en'], doc['message_zh'])}", err=True)


def _both(en: str, zh: str) -> str:
    """``en / zh``, or one of them when they are the same text.

    >>> _both("a", "a"), _both("a", "甲")
    ('a', 'a / 甲')
    """
    return en if en == zh or not zh else f"{en} / {zh}"


def handle_errors(as_json_param: str = "as_json") -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Turn errors into exit code 1 with the reason (JSON under ``--json``): never a traceback.

    Library errors print their code and messages; a file error its path and the
    system's reason; a storage error its store (host, port, database; never the
    password) and the likely fix; anything unexpected its type only (set
    ``STUDENTSTATUS_DEBUG=1`` to see the traceback).
    """

    def deco(f: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(f)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            try:
                return f(*args, **kwargs)
            except (click.exceptions.ClickException, click.exceptions.Exit, click.Abort):
                raise
            except Exception as exc:
                if env_flag("STUDENTSTATUS_DEBUG") and not isinstance(
                    exc, StudentStatusError | ValueError
                ):
                    raise
                store_url = kwargs.get("store_url")
                doc = _error_doc(exc, store_url if isinstance(store_url, str) else None)
                if kwargs.get(as_json_param):
                    echo_json({"error": doc})
                else:
                    _print_doc(doc)
                sys.exit(1)

        return wrapper

    return deco


def _error_doc(exc: BaseException, store_url: str | None = None) -> dict[str, Any]:
    from studentstatus.errors import StorageError

    if _is_sqlalchemy(exc):
        from studentstatus.adapters.sql.errors import translate_error

        exc = translate_error(exc, "open store")
    if isinstance(exc, StorageError):
        return _storage_doc(exc, store_url)
    if isinstance(exc, OSError):
        return _os_doc(exc)
    if isinstance(exc, ImportError):
        name = exc.name or "?"
        return {
            "code": "missing_dependency",
            "message_en": f"the optional package {name!r} is not installed "
            "(see docs/dependencies.md for the extra that brings it)",
            "message_zh": f"未安装可选依赖 {name}（所需的安装选项见 docs/dependencies.md）",
        }
    if not isinstance(exc, StudentStatusError | ValueError):
        return {
            "code": "internal_error",
            "message_en": f"unexpected {type(exc).__name__}; run again with "
            "STUDENTSTATUS_DEBUG=1 for the details and report it",
            "message_zh": f"程序内部错误（{type(exc).__name__}）；"
            "设置 STUDENTSTATUS_DEBUG=1 重新运行可看到详情，请报告此问题",
        }
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


def _is_sqlalchemy(exc: BaseException) -> bool:
    return type(exc).__module__.split(".")[0] == "sqlalchemy"


def env_flag(name: str) -> bool:
    """Whether environment variable ``name`` is set to a true value."""
    return os.environ.get(name, "").lower() in {"1", "true", "yes"}


def sheet_option(f: Callable[..., Any]) -> Callable[..., Any]:
    """``--sheet NAME``: the sheet of an .xlsx workbook to read (the first by default)."""
    return click.option(
        "--sheet", default=None, metavar="NAME", help="Sheet of an .xlsx workbook (default: first)."
    )(f)
