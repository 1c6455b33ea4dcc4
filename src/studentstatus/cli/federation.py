"""``studentstatus federation …``: provincial stores and the national hub (PostgreSQL only).

Set-up (idempotent; run again after a failure): ``publish --store URL --province 44`` on
each province, then ``subscribe --hub URL --province 44 --from URL`` for each province
(from anywhere that reaches both).  Daily work: ``apply`` on each province (the inbox
worker: run it from cron or a loop), ``dedupe --as ministry`` on the hub, ``report --as
ministry``, ``status``; transfers between provinces with ``request-transfer``,
``transfers`` and ``decide-transfer``.

The national key (the HMAC key of the identity hashes, the same in every province, never
on the hub) comes from ``--national-key-file`` or ``STUDENTSTATUS_NATIONAL_KEY_FILE``
(the file's bytes), or ``STUDENTSTATUS_NATIONAL_KEY`` (hex).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import click

from studentstatus.cli._common import (
    DATE,
    as_option,
    echo_json,
    handle_errors,
    json_option,
    opened_runtime,
    opened_store,
    parse_operator,
    store_option,
)

__all__ = ["national_key", "register"]

KEY_ENV = "STUDENTSTATUS_NATIONAL_KEY"
KEY_FILE_ENV = "STUDENTSTATUS_NATIONAL_KEY_FILE"


def national_key(path: str | None, environ: Any = None) -> bytes:
    """The national key: the bytes of ``path`` (or of ``STUDENTSTATUS_NATIONAL_KEY_FILE``),
    or ``STUDENTSTATUS_NATIONAL_KEY`` as hex; a usage error when none is given.

    >>> national_key(None, {"STUDENTSTATUS_NATIONAL_KEY": "00" * 32}) == bytes(32)
    True
    """
    env = os.environ if environ is None else environ
    path = path or env.get(KEY_FILE_ENV) or None
    if path:
        try:
            return Path(path).read_bytes().rstrip(b"\r\n")
        except OSError as exc:
            msg = f"cannot read the national key file: {exc.strerror}"
            raise click.BadParameter(msg, param_hint="--national-key-file") from None
    text = env.get(KEY_ENV, "").strip()
    if text:
        try:
            return bytes.fromhex(text)
        except ValueError:
            msg = f"{KEY_ENV} must be hex"
            raise click.UsageError(msg) from None
    msg = f"no national key: give --national-key-file, {KEY_FILE_ENV} or {KEY_ENV}"
    raise click.UsageError(msg)


def _hub_option(f: Any) -> Any:
    return click.option(
        "--hub",
        "hub_url",
        required=True,
        envvar="STUDENTSTATUS_HUB",
        metavar="URL",
        help="The national hub's PostgreSQL URL (env STUDENTSTATUS_HUB).",
    )(f)


def _link(store: Any) -> Any:
    from studentstatus.adapters.sql.federation import ProvinceLink

    return ProvinceLink(store)


@click.group("federation")
def federation_group() -> None:
    """Provincial stores and the national hub (PostgreSQL logical replication)."""


@federation_group.command("publish")
@click.option("--province", required=True, metavar="PP", help="This store's province (44).")
@click.option("--national-key-file", type=click.Path(dir_okay=False), help="The national key.")
@json_option
@store_option
@handle_errors()
def publish_cmd(
    province: str, national_key_file: str | None, as_json: bool, store_url: str
) -> None:
    """Set up this provincial store's feed and publication (idempotent)."""
    from studentstatus.adapters.sql.federation import publish

    key = national_key(national_key_file)
    with opened_store(store_url) as store:
        report = publish(store, province, key)
    if as_json:
        echo_json(
            {
                "province": report.province,
                "publication": report.publication,
                "created": report.created,
                "records": report.records,
            }
        )
        return
    done = "created" if report.created else "already there, checked"
    click.echo(
        f"province {report.province}: publication {report.publication} {done}; "
        f"feed holds {report.records} records"
    )


@federation_group.command("subscribe")
@_hub_option
@click.option("--province", required=True, metavar="PP", help="The province to subscribe to.")
@click.option("--from", "from_url", required=True, metavar="URL", help="The province's store URL.")
@click.option(
    "--province-conninfo",
    help="How the hub's server reaches the province (libpq string; default from --from).",
)
@click.option(
    "--hub-conninfo",
    help="How the province's server reaches the hub (libpq string; default from --hub).",
)
@json_option
@handle_errors()
def subscribe_cmd(
    hub_url: str,
    province: str,
    from_url: str,
    province_conninfo: str | None,
    hub_conninfo: str | None,
    as_json: bool,
) -> None:
    """Subscribe the hub to a published province, and the province to its mail."""
    from studentstatus.adapters.sql.federation import Hub

    hub = Hub(hub_url)
    try:
        made = hub.attach(
            province, from_url, province_conninfo=province_conninfo, hub_conninfo=hub_conninfo
        )
    finally:
        hub.close()
    if as_json:
        echo_json({"province": province, "created": made})
        return
    for name, created in made.items():
        click.echo(f"{name}: {'created' if created else 'already there, checked'}")


@federation_group.command("status")
@_hub_option
@json_option
@handle_errors()
def status_cmd(hub_url: str, as_json: bool) -> None:
    """Each province's replication in both directions, as the hub sees it."""
    import attrs

    from studentstatus.adapters.sql.federation import Hub

    hub = Hub(hub_url)
    try:
        nodes = hub.status()
    finally:
        hub.close()
    if as_json:
        echo_json([attrs.asdict(n) for n in nodes])
        return
    for n in nodes:
        lag = "—" if n.lag_bytes is None else f"{n.lag_bytes} B"
        click.echo(
            f"province {n.province}: to hub {n.inbound}, from hub {n.outbound} (lag {lag}), "
            f"unrouted {n.unrouted}"
        )


@federation_group.command("dedupe")
@_hub_option
@as_option
@json_option
@handle_errors()
def dedupe_cmd(hub_url: str, operator_text: str, as_json: bool) -> None:
    """Children live in two or more provinces: a notice to each province (ministry).

    Each run is audited in the hub database's own audit chain (the library's tables are
    created there on first use).
    """
    from studentstatus.adapters.sql.federation import Hub
    from studentstatus.services.federation import dedupe

    operator = parse_operator(operator_text)
    hub = Hub(hub_url)
    try:
        # The hub's database is also a store of its own: its audit chain records each run.
        with opened_runtime(hub_url, create=True) as rt:
            report = dedupe(hub, operator, rt=rt)
    finally:
        hub.close()
    if as_json:
        echo_json({"findings": report.findings, "notices": report.notices})
        return
    click.echo(f"children live in two or more provinces: {report.findings}; new notices sent: "
               f"{report.notices}")  # fmt: skip


@federation_group.command("report")
@_hub_option
@as_option
@json_option
@handle_errors()
def report_cmd(hub_url: str, operator_text: str, as_json: bool) -> None:
    """The national report from the hub (ministry)."""
    from studentstatus.adapters.sql.federation import Hub
    from studentstatus.services.federation import national_report

    operator = parse_operator(operator_text)
    hub = Hub(hub_url)
    try:
        report = national_report(hub, operator)
    finally:
        hub.close()
    if as_json:
        echo_json(report.to_dict())
        return
    click.echo(f"ACTIVE records 在籍: {report.total}")
    for province, n in report.by_province.items():
        click.echo(f"  province {province}: {n}")
    click.echo("by grade: " + ", ".join(f"{k} {n}" for k, n in report.by_grade.items()))
    click.echo("by sex: " + ", ".join(f"{k} {n}" for k, n in report.by_sex.items()))
    for kind, by_status in report.problems.items():
        click.echo(f"problems {kind}: " + ", ".join(f"{s} {n}" for s, n in by_status.items()))


@federation_group.command("apply")
@json_option
@store_option
@handle_errors()
def apply_cmd(as_json: bool, store_url: str) -> None:
    """Apply the messages waiting for this province (each exactly once).

    Exit 1 when a message could not be applied (it stays for the next run).
    """
    from studentstatus.services.federation import apply_inbox

    with opened_runtime(store_url) as rt:
        report = apply_inbox(rt, _link(rt.store))
    if as_json:
        doc: dict[str, Any] = {"applied": report.applied, "outcomes": dict(report.outcomes)}
        if report.failed:
            doc["failed"] = list(report.failed)
        echo_json(doc)
    else:
        outcomes = ", ".join(f"{k} {n}" for k, n in report.outcomes.items()) or "nothing waiting"
        click.echo(f"applied {report.applied}: {outcomes}")
        for mid in report.failed:
            click.echo(f"not applied (left for the next run; see the log): {mid}", err=True)
    if report.failed:
        sys.exit(1)


@federation_group.command("request-transfer")
@click.option("--from-province", required=True, metavar="PP", help="The child's province now.")
@click.option("--to-kindergarten", required=True, metavar="CODE", help="School code here.")
@click.option("--name", required=True)
@click.option("--sex", required=True, help="M/F or 男/女.")
@click.option("--birth-date", required=True, type=DATE)
@click.option("--id-type", default="resident", show_default=True)
@click.option("--id-number", default="", help="The child's document number.")
@click.option("--guardian-name", default="")
@click.option("--guardian-relation", default="", help="mother, father, …")
@click.option("--guardian-phone", required=True)
@click.option("--grade", help="The grade the child joins (default: the source's).")
@click.option("--effective", type=DATE, help="Date of the move (default today).")
@click.option("--reason", default="")
@as_option
@json_option
@store_option
@handle_errors()
def request_transfer_cmd(
    from_province: str,
    to_kindergarten: str,
    name: str,
    sex: str,
    birth_date: Any,
    id_type: str,
    id_number: str,
    guardian_name: str,
    guardian_relation: str,
    guardian_phone: str,
    grade: str | None,
    effective: Any,
    reason: str,
    operator_text: str,
    as_json: bool,
    store_url: str,
) -> None:
    """Ask another province for a child (跨省转入): the source's county decides."""
    from studentstatus.domain.child import build_child
    from studentstatus.domain.enums import Grade
    from studentstatus.errors import RuleViolations
    from studentstatus.services.federation import request_transfer_in

    operator = parse_operator(operator_text)
    with opened_runtime(store_url) as rt:
        child, problems = build_child(
            id=rt.new_id("c"),
            name=name,
            sex=sex,
            birth_date=birth_date.isoformat(),
            today=rt.clock.today(),
            document_type=id_type,
            document_number=id_number,
            guardians=[(guardian_name, guardian_relation, guardian_phone)],
        )
        if child is None:
            raise RuleViolations(problems)
        t = request_transfer_in(
            rt,
            _link(rt.store),
            operator,
            child,
            from_province=from_province,
            to_kindergarten=to_kindergarten,
            effective=effective,
            grade=Grade.parse(grade) if grade else None,
            reason=reason,
        )
    if as_json:
        echo_json(_transfer_doc(t))
        return
    click.echo(f"transfer {t.id}: {t.status.value} ({t.status.label_zh}), from province "
               f"{t.other_province}")  # fmt: skip


def _waiting(t: Any) -> str | None:
    from studentstatus.domain.federation import pending_step

    i = pending_step(t.steps)
    if i is None or t.status.value not in ("REQUESTED", "PENDING"):
        return None
    step = t.steps[i]
    return f"{step.role.value}:{step.scope}" if step.scope else step.role.value


def _transfer_doc(t: Any) -> dict[str, Any]:
    from studentstatus.errors import mask_number

    return {
        "id": t.id,
        "direction": t.direction,
        "status": t.status.value,
        "other_province": t.other_province,
        "kindergarten_code": t.kindergarten_code,
        "county_code": t.county_code,
        "record_id": t.record_id,
        "effective_date": t.effective_date.isoformat(),
        "national_number": mask_number(t.national_number) if t.national_number else None,
        "requested_by": t.requested_by,
        "decided_by": t.decided_by,
        "reason": t.reason,
        "steps": [
            {
                "role": step.role.value,
                "scope": step.scope,
                "side": side,
                "decision": step.decision.value,
                "decided_by": step.decided_by,
            }
            for step, side in zip(t.steps, t.sides, strict=True)
        ],
        "waiting": _waiting(t),
    }


@federation_group.command("transfers")
@click.option("--status", help="REQUESTED, PENDING, APPROVED, REFUSED or DONE.")
@as_option
@json_option
@store_option
@handle_errors()
def transfers_cmd(status: str | None, operator_text: str, as_json: bool, store_url: str) -> None:
    """Transfers between provinces in the operator's scope (both directions)."""
    from studentstatus.domain.federation import TransferStatus
    from studentstatus.services.federation import list_transfers

    operator = parse_operator(operator_text)
    wanted = TransferStatus.parse(status) if status else None
    with opened_runtime(store_url) as rt:
        found = list_transfers(rt, _link(rt.store), operator, status=wanted)  # type: ignore[arg-type]
    if as_json:
        echo_json([_transfer_doc(t) for t in found])
        return
    for t in found:
        arrow = "from" if t.direction == "in" else "to"
        waiting = _waiting(t)
        click.echo(
            f"{t.id} {t.direction} {arrow} province {t.other_province} {t.status.value} "
            f"county {t.county_code} record {t.record_id or '—'} effective {t.effective_date}"
            + (f" waiting for {waiting}" if waiting else "")
        )
    if not found:
        click.echo("no transfers")


@federation_group.command("decide-transfer")
@click.argument("transfer_id")
@click.option("--approve/--refuse", required=True, help="The decision on the step waiting.")
@click.option("--reason", default="", help="Required with --refuse.")
@as_option
@json_option
@store_option
@handle_errors()
def decide_transfer_cmd(
    transfer_id: str, approve: bool, reason: str, operator_text: str, as_json: bool, store_url: str
) -> None:
    """Decide the step of a transfer's approval chain that waits for this operator.

    Each step is decided in its own province; the decision travels to the other one.  After
    the last approval the source withdraws the record and the destination receives it.
    """
    from studentstatus.services.federation import decide_transfer

    operator = parse_operator(operator_text)
    with opened_runtime(store_url) as rt:
        t = decide_transfer(
            rt, _link(rt.store), operator, transfer_id, approve=approve, reason=reason
        )
    if as_json:
        echo_json(_transfer_doc(t))
        return
    click.echo(f"transfer {t.id}: {t.status.value} ({t.status.label_zh})")


def register(group: click.Group) -> None:
    """Attach ``federation`` to ``group``.

    >>> g = click.Group("x")
    >>> register(g)
    >>> sorted(g.commands["federation"].commands)[:4]
    ['apply', 'decide-transfer', 'dedupe', 'publish']
    """
    group.add_command(federation_group)
