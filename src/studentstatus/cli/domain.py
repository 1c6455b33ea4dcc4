"""``studentstatus diagram`` and ``studentstatus transitions``: the status machine's table.

Both read :data:`studentstatus.domain.machine.TABLE`; nothing is stored or
looked up.

>>> from click.testing import CliRunner
>>> import click
>>> group = click.Group()
>>> register(group)
>>> CliRunner().invoke(group, ["diagram"]).output.splitlines()[0]
'stateDiagram-v2'
"""

from __future__ import annotations

import json

import click

from studentstatus.domain import machine

__all__ = ["diagram", "register", "transitions"]


@click.command()
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["mermaid", "dot"]),
    default="mermaid",
    show_default=True,
    help="Mermaid stateDiagram-v2 or Graphviz dot.",
)
def diagram(fmt: str) -> None:
    """Print the status machine (学籍状态机) as a diagram."""
    click.echo(machine.to_mermaid() if fmt == "mermaid" else machine.to_dot(), nl=False)


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
def transitions(as_json: bool) -> None:
    """Print the transition table: change, from-states, to-state, approvals, guards."""
    rows = machine.transitions_table()
    if as_json:
        click.echo(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    for r in rows:
        sources = ",".join(r["from"]) or "—"
        approvals = "→".join(r["approvals"]) or "none"
        guards = ", ".join(r["guards"]) or "-"
        click.echo(
            f"{r['change']:<10} {r['label_zh']}\t{sources} → {r['to']}\t"
            f"approvals: {approvals}\tguards: {guards}"
        )


def register(group: click.Group) -> None:
    """Attach ``diagram`` and ``transitions`` to the ``studentstatus`` group."""
    group.add_command(diagram)
    group.add_command(transitions)
