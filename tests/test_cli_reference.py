"""docs/reference/cli.md is generated from the click commands and must stay current.

Regenerate with ``UPDATE_DOCS=1 pytest tests/test_cli_reference.py``.
"""

from __future__ import annotations

import os
from pathlib import Path

import click

from studentstatus.cli import main

PAGE = Path(__file__).resolve().parents[1] / "docs" / "reference" / "cli.md"

HEADER = """# Command-line reference

Generated from the commands themselves (`tests/test_cli_reference.py` fails when this page is
stale). Conventions shared by every command that touches records: `--store URL` or
`STUDENTSTATUS_STORE` (default `sqlite:///studentstatus.db`), `--as ROLE:SCOPE`
(`kindergarten:SCHOOLCODE`, `county:CODE6`, `city:CODE4`, `province:CODE2`, `ministry`),
checked against the operator's role and scope, and `--json` for one JSON document on stdout.
Exit codes: 0 success, 1 when a check, a rule or a permission says no (with the reason), 2 on
usage errors.
"""


def _walk(cmd: click.Command, ctx: click.Context) -> list[tuple[click.Command, click.Context]]:
    out = [(cmd, ctx)]
    if isinstance(cmd, click.Group):
        for name in sorted(cmd.commands):
            sub = cmd.commands[name]
            # click caches a command's help option on first use; a test that invoked the
            # command without main's context would leave a ``--help``-only option behind.
            if hasattr(sub, "_help_option"):
                sub._help_option = None
            out.extend(_walk(sub, click.Context(sub, info_name=name, parent=ctx)))
    return out


def render() -> str:
    """The page's text."""
    parts = [HEADER]
    # The root context carries main's context_settings (``-h``/``--help``) down to every
    # command, as a real invocation does.
    root = click.Context(main, info_name="studentstatus", terminal_width=88, max_content_width=88)
    for cmd, ctx in _walk(main, root)[1:]:
        parts.append(f"\n## `{ctx.command_path}`\n\n```text\n{cmd.get_help(ctx).rstrip()}\n```\n")
    return "".join(parts)


def test_cli_reference_is_current() -> None:
    """The checked-in page equals the one generated from the commands."""
    text = render()
    if os.environ.get("UPDATE_DOCS"):
        PAGE.write_text(text, encoding="utf-8")
    assert PAGE.read_text(encoding="utf-8") == text


def test_every_command_is_documented() -> None:
    """Each top-level command has a section (so the page can fail when one is added)."""
    page = PAGE.read_text(encoding="utf-8")
    missing = [name for name in main.commands if f"## `studentstatus {name}`" not in page]
    assert missing == []
