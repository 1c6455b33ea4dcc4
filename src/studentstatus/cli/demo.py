"""``studentstatus demo``: generate a small province and run a whole school year on it.

The README's "run" command.  By default it writes a NEW SQLite file
``studentstatus-demo.db`` in the working directory (replaced when it exists)
and the files it generates and produces into ``studentstatus-demo/``.  With
``--store`` it runs on any store URL; on an SQL database that you name, the
demo's tables get the prefix ``demo_`` (dropped and re-created first), so it
never touches the tables of a real deployment.  Progress bars are shown only
when stderr is a terminal.  See ``docs/demo.md``.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from studentstatus.cli._common import handle_errors

__all__ = ["DEMO_DB", "DEMO_OUT", "demo_cmd", "open_demo_store", "register"]

DEMO_DB = "studentstatus-demo.db"
"""The SQLite file the demo writes by default (in the working directory)."""

DEMO_OUT = "studentstatus-demo"
"""The folder for the demo's generated inputs, charts and exports."""

DEMO_PREFIX = "demo_"
"""Table prefix of the demo on an SQL database named with ``--store``."""


def open_demo_store(url: str | None) -> tuple[Any, str]:
    """Open (and empty) the demo's store; returns ``(store, description)``.

    ``None`` means the default file :data:`DEMO_DB`, deleted first when it
    exists.  A ``memory://`` or ``file://`` URL is opened as it is; an SQL URL
    gets the tables prefixed :data:`DEMO_PREFIX`, dropped and re-created.

    >>> store, what = open_demo_store("memory://")
    >>> what
    'memory://'
    """
    from studentstatus.store import open_store

    if url is None:
        path = Path(DEMO_DB)
        if path.exists():
            path.unlink()
        return open_store(f"sqlite:///{path}", create=True), str(path.resolve())
    scheme = url.split("://", 1)[0].split("+", 1)[0].lower() if "://" in url else ""
    if scheme in ("sqlite", "postgresql", "mysql", "mariadb"):
        from studentstatus.adapters.sql import SqlStore

        store = SqlStore(url, prefix=DEMO_PREFIX, create=False)
        store.drop_schema()
        store.create_schema()
        return store, f"{_hide_password(url)} (tables {DEMO_PREFIX}*)"
    return open_store(url), url


def _hide_password(url: str) -> str:
    if "@" not in url or "://" not in url:
        return url
    scheme, rest = url.split("://", 1)
    creds, host = rest.rsplit("@", 1)
    user = creds.split(":", 1)[0]
    return f"{scheme}://{user}@{host}"


def _bars(enabled: bool) -> Callable[[str, int], Any]:
    @contextmanager
    def progress(label: str, total: int) -> Iterator[Callable[[int], None]]:
        if not enabled or total <= 0:
            yield lambda done: None
            return
        with click.progressbar(length=total, label=label, file=sys.stderr) as bar:

            def update(done: int) -> None:
                step = min(done, total) - bar.pos
                if step > 0:
                    bar.update(step)

            yield update

    return progress


@click.command("demo")
@click.option(
    "--store",
    "store_url",
    default=None,
    metavar="URL",
    help=f"Store URL (default: a new SQLite file {DEMO_DB} in the working directory).",
)
@click.option("--children", type=click.IntRange(40, 200_000), default=2000, show_default=True)
@click.option("--seed", type=int, default=None, help="Random seed (default: fixed, reproducible).")
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path(DEMO_OUT),
    show_default=True,
    help="Folder for generated files, charts and exports.",
)
@click.option("--no-charts", is_flag=True, help="Leave out the PNG charts (faster).")
@handle_errors()
def demo_cmd(
    store_url: str | None, children: int, seed: int | None, out_dir: Path, no_charts: bool
) -> None:
    """Generate a small province and run a whole school year through the services."""
    from studentstatus.demo import DEFAULT_SEED, run_demo

    started = time.perf_counter()
    store, where = open_demo_store(store_url)
    try:
        result = run_demo(
            store,
            children=children,
            seed=DEFAULT_SEED if seed is None else seed,
            out_dir=out_dir,
            echo=click.echo,
            progress=_bars(sys.stderr.isatty()),
            charts=not no_charts,
        )
    finally:
        store.close()
    click.echo("")
    click.echo(f"store: {where}")
    click.echo(f"files written in {out_dir}/:")
    for name in result.files:
        click.echo(
            f"   {Path(name).relative_to(out_dir) if Path(name).is_relative_to(out_dir) else name}"
        )
    if result.skipped:
        click.echo(f"skipped: {'; '.join(result.skipped)}")
    click.echo(f"done in {time.perf_counter() - started:.1f} s", err=True)
    if not result.audit_ok:
        sys.exit(1)


def register(group: click.Group) -> None:
    """Attach ``demo`` to the main command group."""
    group.add_command(demo_cmd)
