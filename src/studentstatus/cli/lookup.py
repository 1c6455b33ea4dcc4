"""Look-up commands an operator lives in: ``kindergartens list|show`` and ``request show``.

Thin wrappers over :func:`studentstatus.services.kindergartens.list_kindergartens`
and :func:`studentstatus.services.changes.get_request`; each reads only what the
operator's scope covers (another scope's request or kindergarten answers as
absent).  ``requests --mine`` (the operator's own applications) lives with the
other queues in :mod:`studentstatus.cli.changes`, ``case list|show|close`` with
the dropout commands in :mod:`studentstatus.cli.monitoring`.

>>> g = click.Group("x")
>>> register(g)
>>> sorted(g.commands)
['kindergartens', 'request']
"""

from __future__ import annotations

from typing import Any

import click

from studentstatus.cli._common import (
    as_option,
    echo_json,
    handle_errors,
    json_option,
    opened_runtime,
    parse_operator,
    store_option,
)
from studentstatus.cli.records import table_of

__all__ = ["kindergarten_dict", "register", "request_lines"]


def kindergarten_dict(kg: Any) -> dict[str, Any]:
    """A kindergarten as JSON: its codes, name, region (with its name), type, licences."""
    from studentstatus import regions

    return {
        "school_code": kg.school_code,
        "uscc": kg.uscc,
        "name": kg.name,
        "region_code": kg.region_code,
        "region_name": regions.name(kg.region_code),
        "type": kg.type.value,
        "inclusive": kg.inclusive,
        "moving_to": kg.moving_to,
        "licences": [
            {
                "number": lic.number,
                "issuer": lic.issuer,
                "issued": lic.issued.isoformat(),
                "valid_until": lic.valid_until.isoformat(),
                "state": lic.state.value,
            }
            for lic in kg.licences
        ],
    }


@click.group("kindergartens")
def kindergartens_group() -> None:
    """The kindergartens in the operator's scope (list, show)."""


@kindergartens_group.command("list")
@as_option
@json_option
@store_option
@handle_errors()
def kindergartens_list(operator_text: str, as_json: bool, store_url: str) -> None:
    """List the kindergartens in scope, by school code, with region names and licence state."""
    from studentstatus.services.kindergartens import list_kindergartens

    operator = parse_operator(operator_text)
    with opened_runtime(store_url) as rt:
        kgs = list_kindergartens(rt, operator)
    docs = [kindergarten_dict(k) for k in kgs]
    if as_json:
        echo_json(docs)
        return
    if not docs:
        click.echo("no kindergartens")
        return
    rows = [
        {
            "school_code": d["school_code"],
            "name": d["name"],
            "region": f"{d['region_code']} {d['region_name'] or ''}".strip(),
            "type": d["type"],
            "licence": d["licences"][-1]["state"] if d["licences"] else "-",
        }
        for d in docs
    ]
    heads = (
        ("school_code", "SCHOOL CODE"),
        ("name", "NAME"),
        ("region", "REGION"),
        ("type", "TYPE"),
        ("licence", "LICENCE"),
    )
    for line in table_of(rows, heads):
        click.echo(line.rstrip())
    click.echo(f"{len(docs)} kindergartens", err=True)


@kindergartens_group.command("show")
@click.argument("school_code")
@as_option
@json_option
@store_option
@handle_errors()
def kindergartens_show(school_code: str, operator_text: str, as_json: bool, store_url: str) -> None:
    """Show one kindergarten in scope: codes, region, type, licences, a pending move."""
    from studentstatus.services.authority import kindergarten_in_scope, require_role

    operator = parse_operator(operator_text)
    require_role(operator, "view")
    with opened_runtime(store_url) as rt, rt.store.unit_of_work() as uow:
        found = uow.kindergartens.find(school_code.strip())
        kg = kindergarten_in_scope(operator, "view", found, school_code.strip())
    doc = kindergarten_dict(kg)
    if as_json:
        echo_json(doc)
        return
    click.echo(f"{doc['school_code']}  {doc['name']}")
    click.echo(
        f"USCC {doc['uscc']}  type {doc['type']}" + ("  inclusive" if doc["inclusive"] else "")
    )
    click.echo(f"region {doc['region_code']} {doc['region_name'] or ''}".rstrip())
    if doc["moving_to"]:
        click.echo(f"moving to {doc['moving_to']} (pending the other county's confirmation)")
    if not doc["licences"]:
        click.echo("licences: none")
    for lic in doc["licences"]:
        click.echo(
            f"licence {lic['number']} {lic['state']} {lic['issued']} – {lic['valid_until']}"
            f" ({lic['issuer']})"
        )


def request_lines(view: Any) -> list[str]:
    """A request as text: what, whose record, the state, each step and who acts next.

    >>> from datetime import date
    >>> from studentstatus.domain.enums import ChangeKind, RequestStatus, Role, StepDecision
    >>> from studentstatus.domain.model import ApprovalStep
    >>> from studentstatus.services.changes import RequestView
    >>> steps = (ApprovalStep(Role.KINDERGARTEN, "1111000001", date(2026, 3, 9),
    ...                       StepDecision.APPROVED, "kindergarten:1111000001"),
    ...          ApprovalStep(Role.COUNTY, "110105", date(2026, 3, 16)))
    >>> v = RequestView("q1", ChangeKind.TRANSFER, "r1", RequestStatus.OPEN, "county:110105",
    ...                 2, date(2026, 3, 16), "kindergarten:1111000002", steps=steps,
    ...                 to_kindergarten="1111000003", number="L**************0042")
    >>> print("\\n".join(request_lines(v)))
    request q1  TRANSFER  OPEN  applied by kindergarten:1111000002
    record r1 (L**************0042)  to 1111000003
      step 1 of 2  kindergarten:1111000001  APPROVED  by kindergarten:1111000001
      step 2 of 2  county:110105  PENDING  due 2026-03-16  <- acts next
    """
    from studentstatus.errors import mask_number

    head = (
        f"request {view.id}  {view.change.value}  {view.status.value}  applied by {view.applicant}"
    )
    number = mask_number(view.number) if view.number and "*" not in view.number else view.number
    what = f"record {view.record}" + (f" ({number})" if number else "")
    if view.child_name:
        what += f" {view.child_name}"
    if view.to_kindergarten:
        what += f"  to {view.to_kindergarten}"
    if view.effective_date:
        what += f"  effective {view.effective_date.isoformat()}"
    lines = [head, what]
    n = len(view.steps)
    for i, step in enumerate(view.steps, 1):
        line = f"  step {i} of {n}  {step.role.value}:{step.scope}  {step.decision.value}"
        if step.decided_by:
            line += f"  by {step.decided_by}"
        elif step.due:
            line += f"  due {step.due.isoformat()}"
        if view.step_index == i:
            line += "  <- acts next" + ("  OVERDUE" if view.overdue else "")
        if step.reason:
            line += f"  ({step.reason})"
        lines.append(line)
    if view.lost:
        lines.append("  LOST: released by the source, not completed in time")
    return lines


@click.group("request")
def request_group() -> None:
    """One change request (show)."""


@request_group.command("show")
@click.argument("request_id")
@as_option
@json_option
@store_option
@handle_errors()
def request_show(request_id: str, operator_text: str, as_json: bool, store_url: str) -> None:
    """Show REQUEST_ID: the change, the record, each step's state and who acts next.

    A request outside the operator's jurisdiction answers as absent (not_found).
    """
    from studentstatus.services.changes import get_request

    operator = parse_operator(operator_text)
    with opened_runtime(store_url) as rt:
        view = get_request(rt, operator, request_id)
    if as_json:
        echo_json(view.to_dict())
        return
    for line in request_lines(view):
        click.echo(line)


def register(group: click.Group) -> None:
    """Attach ``kindergartens`` and ``request`` to the ``studentstatus`` group."""
    group.add_command(kindergartens_group)
    group.add_command(request_group)
