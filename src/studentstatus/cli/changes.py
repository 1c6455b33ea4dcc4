"""Commands for status changes, approval queues, the audit chain, rollover and rolls.

``change``, ``requests``, ``approve-request``, ``reject-request``,
``withdraw-request``, ``lost-children``, ``audit verify``, ``audit checkpoint``, ``rollover`` and
``roll``: thin wrappers over :mod:`studentstatus.services.changes`,
:mod:`~studentstatus.services.rollover`, :mod:`~studentstatus.services.roll`
and :mod:`~studentstatus.services.audit`.

The clock is the system clock; ``STUDENTSTATUS_NOW`` (an ISO date-time, e.g.
``2026-09-01T09:00:00+08:00``) fixes it, for replays and tests.
"""

from __future__ import annotations

import sys
from datetime import date
from typing import Any

import click

from studentstatus.cli._common import (
    DATE,
    as_option,
    busy,
    echo_json,
    handle_errors,
    json_option,
    opened_runtime,
    opened_store,
    parse_operator,
    store_option,
)

__all__ = ["register"]

_DATE = DATE  # YYYY-MM-DD, YYYY/MM/DD or YYYYMMDD, as in the files


def _day(value: date | None) -> date | None:
    return value


def _change_kind(ctx: click.Context, param: click.Parameter, value: str) -> str:
    """An unknown change kind is a usage error (exit 2), listing the kinds."""
    from studentstatus.domain.enums import ChangeKind

    try:
        ChangeKind.parse(value)
    except ValueError:
        kinds = ", ".join(k.value for k in ChangeKind)
        msg = f"unknown change kind {value[:40]!r} (one of: {kinds})"
        raise click.BadParameter(msg, ctx, param) from None
    return value


def _print_violations(violations: Any) -> None:
    for v in violations:
        click.echo(f"  {v.code} [{v.field}]: {v.message_en} / {v.message_zh}")


@click.command("change")
@click.argument("kind", callback=_change_kind)
@click.argument("record")
@as_option
@click.option("--to", "to_kindergarten", metavar="SCHOOLCODE", help="Destination (TRANSFER).")
@click.option("--until", type=_DATE, help="End of a suspension (SUSPEND, EXTEND).")
@click.option("--effective", type=_DATE, help="Effective date (default: today).")
@click.option("--reason", default="", help="Reason (required by some changes).")
@click.option("--evidence", multiple=True, metavar="REF", help="Evidence reference (repeatable).")
@click.option("--grade", help="Grade after RESUME/RETURN/REENROLL (NURSERY…SENIOR or 托班…).")
@click.option("--dry-run", is_flag=True, help="Check only: exit 0 if allowed, 1 if not.")
@json_option
@store_option
@handle_errors()
def change_cmd(
    kind: str,
    record: str,
    operator_text: str,
    to_kindergarten: str | None,
    until: date | None,
    effective: date | None,
    reason: str,
    evidence: tuple[str, ...],
    grade: str | None,
    dry_run: bool,
    as_json: bool,
    store_url: str,
) -> None:
    """Ask for change KIND of RECORD (a national number, a former number or a record id)."""
    from studentstatus.domain.enums import Grade
    from studentstatus.services import changes

    operator = parse_operator(operator_text)
    parsed_grade = Grade.parse(grade) if grade else None
    kwargs: dict[str, Any] = {
        "effective": _day(effective),
        "to_kindergarten": to_kindergarten,
        "until": _day(until),
        "reason": reason,
        "evidence": evidence,
        "grade": parsed_grade,
    }
    with opened_runtime(store_url) as rt:
        if dry_run:
            result = changes.dry_run(rt, operator, record, kind, **kwargs)
            if as_json:
                echo_json(result.to_dict())
            else:
                click.echo("allowed" if result.allowed else "not allowed")
                _print_violations(result.violations)
                click.echo("approvals: " + (" → ".join(result.approvals) or "none"))
            sys.exit(0 if result.allowed else 1)
        outcome = changes.request_change(rt, operator, record, kind, **kwargs)
    doc: dict[str, Any] = {"applied": outcome.applied}
    if outcome.request is not None:
        doc["request"] = outcome.request.id
        doc["steps"] = [f"{s.role.value}:{s.scope}" for s in outcome.request.steps]
    if outcome.change is not None:
        doc["change"] = outcome.change.kind.value
        doc["record"] = outcome.change.record_id
        doc["seq"] = outcome.change.seq
    if as_json:
        echo_json(doc)
    elif outcome.applied:
        click.echo(f"applied {doc['change']} to {doc['record']}")
    else:
        click.echo(f"request {doc['request']} opened: " + " → ".join(doc["steps"]))


def _echo_views(views: Any, as_json: bool) -> None:
    if as_json:
        echo_json([v.to_dict() for v in views])
        return
    if not views:
        click.echo("no requests")
    for v in views:
        flags = " OVERDUE" if v.overdue else ""
        flags += " LOST" if v.lost else ""
        due = v.due.isoformat() if v.due else "-"
        click.echo(
            f"{v.id}  {v.change.value:<9} record {v.record}  step {v.step or '-'}  due {due}{flags}"
        )


@click.command("requests")
@as_option
@click.option("--overdue", is_flag=True, help="Overdue requests of the operator's jurisdiction.")
@click.option(
    "--mine",
    is_flag=True,
    help="The requests the operator applied for, with each step's state and who acts next.",
)
@click.option("--all", "include_closed", is_flag=True, help="With --mine: also decided ones.")
@json_option
@store_option
@handle_errors()
def requests_cmd(
    operator_text: str,
    overdue: bool,
    mine: bool,
    include_closed: bool,
    as_json: bool,
    store_url: str,
) -> None:
    """List the requests waiting for the operator (--overdue: the overdue ones of its
    jurisdiction; --mine: the ones it applied for). ``request show ID`` shows one."""
    from studentstatus.services import changes

    if mine and overdue:
        raise click.UsageError("--mine and --overdue are exclusive")
    if include_closed and not mine:
        raise click.UsageError("--all goes with --mine")
    operator = parse_operator(operator_text)
    with opened_runtime(store_url) as rt:
        if mine:
            views = changes.list_requests_by(rt, operator, include_closed=include_closed)
        elif overdue:
            views = changes.list_overdue_requests(rt, operator)
        else:
            views = changes.list_pending_requests(rt, operator)
    if mine and not as_json:
        from studentstatus.cli.lookup import request_lines

        if not views:
            click.echo("no requests")
        for v in views:
            for line in request_lines(v):
                click.echo(line)
        return
    _echo_views(views, as_json)


def _echo_outcome(outcome: Any, as_json: bool) -> None:
    request = outcome.request
    doc = {
        "request": request.id if request else None,
        "status": request.status.value if request else None,
        "applied": outcome.applied,
        "change": outcome.change.kind.value if outcome.change else None,
    }
    if as_json:
        echo_json(doc)
    else:
        click.echo(
            f"request {doc['request']}: {doc['status']}"
            + (f" — {doc['change']} applied" if outcome.applied else "")
        )


@click.command("approve-request")
@click.argument("request_id")
@as_option
@click.option("--reason", default="", help="Optional note.")
@json_option
@store_option
@handle_errors()
def approve_cmd(
    request_id: str, operator_text: str, reason: str, as_json: bool, store_url: str
) -> None:
    """Approve the pending step of REQUEST_ID (the last approval applies the change)."""
    from studentstatus.services import changes

    operator = parse_operator(operator_text)
    with opened_runtime(store_url) as rt:
        outcome = changes.approve_step(rt, operator, request_id, reason=reason)
    _echo_outcome(outcome, as_json)


@click.command("reject-request")
@click.argument("request_id")
@as_option
@click.option("--reason", required=True, help="Why (required).")
@json_option
@store_option
@handle_errors()
def reject_cmd(
    request_id: str, operator_text: str, reason: str, as_json: bool, store_url: str
) -> None:
    """Reject the pending step of REQUEST_ID; the request ends REJECTED."""
    from studentstatus.services import changes

    operator = parse_operator(operator_text)
    with opened_runtime(store_url) as rt:
        outcome = changes.reject_step(rt, operator, request_id, reason=reason)
    _echo_outcome(outcome, as_json)


@click.command("withdraw-request")
@click.argument("request_id")
@as_option
@json_option
@store_option
@handle_errors()
def withdraw_cmd(request_id: str, operator_text: str, as_json: bool, store_url: str) -> None:
    """Withdraw REQUEST_ID (its applicant only, before the last approval)."""
    from studentstatus.services import changes

    operator = parse_operator(operator_text)
    with opened_runtime(store_url) as rt:
        request = changes.withdraw_request(rt, operator, request_id)
    if as_json:
        echo_json({"request": request.id, "status": request.status.value})
    else:
        click.echo(f"request {request.id}: {request.status.value}")


@click.command("lost-children")
@as_option
@json_option
@store_option
@handle_errors()
def lost_cmd(operator_text: str, as_json: bool, store_url: str) -> None:
    """The county's lost-child queue: transfers released by the source but not completed."""
    from studentstatus.services import changes

    operator = parse_operator(operator_text)
    with opened_runtime(store_url) as rt:
        views = changes.list_lost_children(rt, operator)
    _echo_views(views, as_json)


@click.group("audit")
def audit_group() -> None:
    """The hash-chained audit log."""


_KEY_FILE = click.option(
    "--audit-key-file",
    type=click.Path(dir_okay=False, path_type=str),
    metavar="PATH",
    help="A file holding the audit key (default: STUDENTSTATUS_AUDIT_KEY, "
    "STUDENTSTATUS_AUDIT_KEY_FILE; never read from the store).",
)


def _audit_operator(operator_text: str | None) -> None:
    from studentstatus.services.records import refuse

    if operator_text:
        operator = parse_operator(operator_text)
        if not operator.can("audit_verify"):
            raise refuse(operator, "audit_verify", "audit log", code="role_not_allowed")


def _audit_key(key_file: str | None) -> Any:
    from studentstatus.services.audit import key_from_env, read_key_file

    return read_key_file(key_file) if key_file else key_from_env()


def _key_lines(report: Any) -> list[str]:
    """What the report says of the keys, for people."""
    ids = ", ".join(report.key_ids)
    if report.key_id:
        out = [f"keyed: {report.keyed} entries checked under key {report.key_id}"]
        if report.unkeyed:
            out.append(
                f"  {report.unkeyed} entries written before the key (vouched for by the "
                "signed checkpoint)"
            )
        return out
    if report.key_ids:
        return [
            f"keyed under {ids}, but NO KEY was given: {report.unchecked} keyed entries were "
            "checked for their place and links only, not their content (set "
            "STUDENTSTATUS_AUDIT_KEY or --audit-key-file) / 未提供审计密钥，未校验记录内容"
        ]
    return [
        "NOT KEYED: entries are sealed with the public SHA-256, so an entry edited and "
        "re-sealed together with the rest of its chain cannot be detected inside the store; "
        "seal with a host key (STUDENTSTATUS_AUDIT_KEY) and keep checkpoints / "
        "审计日志未使用密钥封存：改后重新封存无法发现"
    ]


@audit_group.command("verify")
@click.option("--as", "operator_text", metavar="ROLE:SCOPE", help="Operator (province/ministry).")
@click.option(
    "--expect-anchor",
    metavar="HEX",
    help="An anchor printed earlier: exit 1 if the log's anchor is not this one any more.",
)
@click.option(
    "--checkpoint",
    "checkpoint_file",
    type=click.Path(dir_okay=False, exists=True, path_type=str),
    metavar="FILE",
    help="A checkpoint written earlier (audit checkpoint): exit 1 if a chain in it is now "
    "missing, shorter, or holds another entry at its checkpointed seq.",
)
@_KEY_FILE
@click.option(
    "--replay/--no-replay",
    default=True,
    show_default=True,
    help="Also replay every record through its change log and match the change log with "
    "the audit entries.",
)
@json_option
@store_option
@handle_errors()
def audit_verify_cmd(
    operator_text: str | None,
    expect_anchor: str | None,
    checkpoint_file: str | None,
    audit_key_file: str | None,
    replay: bool,
    as_json: bool,
    store_url: str,
) -> None:
    """Recompute every chain (HMAC under the host's key when there is one) and check it
    against its stored head; replay the records through their change log; print the chains,
    the entries and the anchor (SHA-256 over all heads; keep it to compare later).  Exit 1
    and name the chain and its first altered/removed/reordered/added/unkeyed entry when one
    is broken, each record that does not replay, or when --expect-anchor or --checkpoint
    differs."""
    from pathlib import Path

    from studentstatus.services.audit import Checkpoint, verify

    _audit_operator(operator_text)
    key = _audit_key(audit_key_file)
    checkpoint = None
    signed = False
    if checkpoint_file is not None:
        checkpoint = Checkpoint.from_json(Path(checkpoint_file).read_bytes())
        signed = checkpoint.signed_by(key)
    with opened_store(store_url, key) as store, busy("verifying the audit log"):
        report = verify(store, key=key, checkpoint=checkpoint, replay=replay)
    expected = expect_anchor.strip().lower() if expect_anchor is not None else None
    changed = report.ok and expected is not None and report.anchor != expected
    if as_json:
        doc = report.to_dict()
        if expected is not None:
            doc["expected_anchor"] = expected
            doc["anchor_matches"] = report.ok and not changed
        if checkpoint is not None:
            doc["checkpoint"] = {
                "file": checkpoint_file,
                "at": checkpoint.at.isoformat(),
                "chains": len(checkpoint.heads),
                "anchor": checkpoint.anchor,
                "signed": bool(checkpoint.mac),
                "signature_checked": signed,
            }
        echo_json(doc)
        sys.exit(0 if report.ok and not changed else 1)
    if report.problem is None:
        click.echo(
            f"audit log ok: {report.chains} chains, {report.checked} entries; "
            f"anchor {report.anchor}"
        )
        if changed:
            click.echo(f"anchor CHANGED: expected {expected}; the log changed since")
    else:
        click.echo(
            f"audit chain {report.chain!r} BROKEN at entry {report.first_bad_seq}: "
            f"{report.problem} ({report.checked} entries verified before it) — "
            f"{report.code}: {report.message_en} / {report.message_zh}"
        )
    for line in _key_lines(report):
        click.echo(line)
    if checkpoint is not None:
        state = "signature checked" if signed else ("signed, NOT checked" if checkpoint.mac else
                                                    "unsigned")  # fmt: skip
        verdict = "ok" if report.problem is None else "see above"
        click.echo(
            f"checkpoint of {checkpoint.at.isoformat()} ({len(checkpoint.heads)} chains, "
            f"{state}): {verdict}"
        )
    if report.replayed is not None:
        click.echo(
            f"replay: {report.replayed} records replayed; "
            + (f"{len(report.findings)} findings" if report.findings else "ok")
        )
    for finding in report.findings:
        click.echo(f"  {finding}")
    sys.exit(0 if report.ok and not changed else 1)


@audit_group.command("checkpoint")
@click.option("--as", "operator_text", metavar="ROLE:SCOPE", help="Operator (province/ministry).")
@click.option(
    "--out",
    "out_file",
    required=True,
    type=click.Path(dir_okay=False, path_type=str),
    metavar="FILE",
    help="Where to write the checkpoint (JSON); keep it outside the store.",
)
@_KEY_FILE
@click.option(
    "--adopt-unkeyed",
    is_flag=True,
    help="The log was written before the key: accept its chains' unkeyed beginnings and "
    "vouch for them from now on (verify them first).",
)
@json_option
@store_option
@handle_errors()
def audit_checkpoint_cmd(
    operator_text: str | None,
    out_file: str,
    audit_key_file: str | None,
    adopt_unkeyed: bool,
    as_json: bool,
    store_url: str,
) -> None:
    """Verify the log and write a checkpoint: every chain's head, the anchor and the time,
    signed (HMAC) with the audit key when there is one.  Keep the file outside the store;
    audit verify --checkpoint FILE later fails when a chain was cut back or rewritten.
    Exit 1 (nothing written) when the log does not verify."""
    import os
    from pathlib import Path

    from studentstatus.services.audit import make_checkpoint

    _audit_operator(operator_text)
    key = _audit_key(audit_key_file)
    with opened_runtime(store_url) as rt:
        checkpoint = make_checkpoint(
            rt.store, at=rt.clock.now(), key=key, adopt_unkeyed=adopt_unkeyed
        )
    path = Path(out_file)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(checkpoint.to_json(), encoding="utf-8")
    os.replace(tmp, path)
    if as_json:
        echo_json(
            {
                "file": out_file,
                "at": checkpoint.at.isoformat(),
                "chains": len(checkpoint.heads),
                "anchor": checkpoint.anchor,
                "key_id": checkpoint.key_id,
                "signed": bool(checkpoint.mac),
            }
        )
        return
    signed = f"signed with key {checkpoint.key_id}" if checkpoint.mac else "NOT signed (no key)"
    click.echo(
        f"checkpoint written to {out_file}: {len(checkpoint.heads)} chains, anchor "
        f"{checkpoint.anchor}, {signed}"
    )


@click.command("rollover")
@click.option("--school-year", type=int, required=True, help="School year to roll into (2026).")
@as_option
@click.option("--dry-run", is_flag=True, help="Plan only: print the totals of what would happen.")
@click.option(
    "--items",
    "show_items",
    is_flag=True,
    help="Also list every record (one line each; blocked ones with the reasons).",
)
@json_option
@store_option
@handle_errors()
def rollover_cmd(
    school_year: int,
    operator_text: str,
    dry_run: bool,
    show_items: bool,
    as_json: bool,
    store_url: str,
) -> None:
    """Promote every ACTIVE child of the scope one grade and graduate the SENIORs."""
    from studentstatus.services import rollover

    operator = parse_operator(operator_text)
    with opened_runtime(store_url) as rt:
        if dry_run:
            with busy("planning the rollover"):
                report = rollover.plan_rollover(rt, operator, school_year)
        elif sys.stderr.isatty():
            from studentstatus.domain.enums import State

            with rt.store.unit_of_work() as uow:
                total = uow.records.count(states=(State.ACTIVE,), **operator.list_filter())
            with click.progressbar(length=total, label="rollover", file=sys.stderr) as bar:
                report = rollover.apply_rollover(
                    rt, operator, school_year, keep_items=True, progress=bar.update
                )
        else:
            report = rollover.apply_rollover(rt, operator, school_year, keep_items=True)
    if as_json:
        echo_json(report.to_dict())
        return
    for item in report.items:
        if not show_items and item.action != "blocked":
            continue  # the totals say it; --items lists every record
        line = f"{item.record_id}  {item.kindergarten_code}  {item.action}"
        if item.action == "promote" and item.grade and item.to_grade:
            line += f" {item.grade.value} → {item.to_grade.value}"
        click.echo(line)
        _print_violations(item.reasons)
    totals = ", ".join(f"{k} {v}" for k, v in report.totals.items())
    click.echo(("plan: " if dry_run else "applied: ") + totals)
    if not show_items and report.items:
        click.echo("(--items lists every record)", err=True)


@click.command("roll")
@click.option("--kindergarten", "kindergarten_code", required=True, metavar="SCHOOLCODE")
@click.option(
    "--as-of",
    "as_of",
    type=_DATE,
    required=True,
    help="The day (YYYY-MM-DD, YYYY/MM/DD, YYYYMMDD).",
)
@as_option
@json_option
@store_option
@handle_errors()
def roll_cmd(
    kindergarten_code: str, as_of: date, operator_text: str, as_json: bool, store_url: str
) -> None:
    """Who was on roll at a kindergarten on a day (from the change log)."""
    from studentstatus.services.roll import list_roll

    operator = parse_operator(operator_text)
    day = as_of
    with opened_runtime(store_url) as rt:
        entries = list_roll(rt, operator, kindergarten_code, day)
    if as_json:
        echo_json(
            {
                "kindergarten": kindergarten_code,
                "as_of": day.isoformat(),
                "count": len(entries),
                "children": [e.to_dict() for e in entries],
            }
        )
        return
    for e in entries:
        click.echo(f"{e.record_id}  {e.state.value}  {e.grade.value if e.grade else '-'}")
    click.echo(f"{len(entries)} on roll at {kindergarten_code} on {day.isoformat()}")


def register(group: click.Group) -> None:
    """Attach the change, request, audit, rollover and roll commands to ``group``."""
    for command in (
        change_cmd,
        requests_cmd,
        approve_cmd,
        reject_cmd,
        withdraw_cmd,
        lost_cmd,
        audit_group,
        rollover_cmd,
        roll_cmd,
    ):
        group.add_command(command)
