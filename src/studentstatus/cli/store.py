"""``studentstatus init`` and ``studentstatus db upgrade|current``: prepare a store from the CLI.

On an SQL store both run the Alembic migrations shipped in the package (no
``alembic.ini``) against ``--store URL`` (env ``STUDENTSTATUS_STORE``, default
``sqlite:///studentstatus.db``); ``--prefix`` and ``--schema`` select the table
prefix and database schema given to :func:`~studentstatus.adapters.sql.build_tables`.
``init`` works on every store: it creates a file store's directory (and its
journal), and has nothing to do for ``memory://``; ``db`` is for SQL stores only.

>>> from click.testing import CliRunner
>>> import click
>>> group = click.Group()
>>> register(group)
>>> sorted(group.commands)
['db', 'init']
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ParamSpec, TypeVar

import click

from studentstatus.cli._common import (
    echo_json,
    handle_errors,
    json_option,
    opened_store,
    store_label,
    store_option,
)

__all__ = ["register"]

P = ParamSpec("P")
R = TypeVar("R")


def _naming(f: Callable[P, R]) -> Callable[P, R]:
    f = click.option("--schema", default=None, help="Database schema of the tables.")(f)
    return click.option("--prefix", default="", help="Prefix of every table name.")(f)


def _scheme(url: str) -> str:
    return url.split("://", 1)[0].split("+", 1)[0].lower() if "://" in url else ""


def _check_sql(url: str) -> None:
    scheme = _scheme(url)
    if scheme not in ("sqlite", "postgresql", "mysql", "mariadb"):
        msg = (
            f"schema migrations apply to SQL stores only, not {scheme or 'file'!r} "
            "(`studentstatus init` prepares any store)"
        )
        raise click.BadParameter(msg, param_hint="--store")


def _upgrade(
    store_url: str,
    prefix: str,
    schema: str | None,
    as_json: bool,
    what: str,
    revision: str,
    partition_by_province: bool = False,
) -> None:
    from studentstatus.adapters.sql import current, upgrade

    _check_sql(store_url)
    upgrade(
        store_url,
        revision,
        prefix=prefix,
        schema=schema,
        partition_by_province=partition_by_province,
    )
    now = current(store_url, prefix=prefix, schema=schema)
    if as_json:
        out: dict[str, object] = {"store": _safe(store_url), "revision": now, "action": what}
        if partition_by_province:
            out["partitioned_by"] = "province"
        echo_json(out)
    else:
        extra = " (big tables partitioned by province)" if partition_by_province else ""
        click.echo(f"{what}: {_safe(store_url)} at revision {now}{extra}")


def _safe(url: str) -> str:
    """The URL without its password."""
    import sqlalchemy as sa

    try:
        return sa.make_url(url).render_as_string(hide_password=True)
    except Exception:
        return url.split("@")[-1]


@click.command("init")
@store_option
@_naming
@json_option
@handle_errors()
def init_cmd(store_url: str, prefix: str, schema: str | None, as_json: bool) -> None:
    """Prepare the store: an SQL store's schema (every migration), a file store's directory.

    Safe to run again; nothing to do for memory://.
    """
    scheme = _scheme(store_url)
    if scheme in ("sqlite", "postgresql", "mysql", "mariadb"):
        _upgrade(store_url, prefix, schema, as_json, "initialised", "head")
        return
    if scheme not in ("memory", "file", ""):
        with opened_store(store_url):  # the store names what it does not support
            pass
    if scheme == "memory":
        action = "nothing to do (a memory store lives as long as its process)"
    else:
        with opened_store(store_url):  # creates the directory and the journal
            pass
        action = "initialised"
    if as_json:
        echo_json({"store": store_label(store_url), "revision": None, "action": action})
    else:
        click.echo(f"{action}: {store_label(store_url)}")


@click.group("db")
def db_group() -> None:
    """Schema migrations of SQL stores (Alembic, shipped in the package)."""


@db_group.command("upgrade")
@store_option
@_naming
@click.option("--revision", default="head", show_default=True, help="Target revision.")
@click.option(
    "--partition-by-province",
    is_flag=True,
    help="PostgreSQL: partition records, change log, attendance and problems by province.",
)
@json_option
@handle_errors()
def upgrade_cmd(
    store_url: str,
    prefix: str,
    schema: str | None,
    revision: str,
    partition_by_province: bool,
    as_json: bool,
) -> None:
    """Upgrade the schema to the latest (or the given) revision."""
    _upgrade(store_url, prefix, schema, as_json, "upgraded", revision, partition_by_province)


@db_group.command("current")
@store_option
@_naming
@json_option
@handle_errors()
def current_cmd(store_url: str, prefix: str, schema: str | None, as_json: bool) -> None:
    """Print the revision the database is at (``none`` before ``init``)."""
    from studentstatus.adapters.sql import current

    _check_sql(store_url)
    rev = current(store_url, prefix=prefix, schema=schema)
    if as_json:
        echo_json({"store": _safe(store_url), "revision": rev})
    else:
        click.echo(rev or "none")


def register(group: click.Group) -> None:
    """Attach ``init`` and ``db`` to the main command group."""
    group.add_command(init_cmd)
    group.add_command(db_group)
