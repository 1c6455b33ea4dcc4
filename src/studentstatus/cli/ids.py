"""``studentstatus check-id``: check identity, organisation and school numbers.

One result per number; every number is masked (human output, and
``normalized`` in ``--json``) unless ``--reveal``: the result prints the birth
date, sex and region beside it, so the mask is the rule of
``docs/concepts/privacy.md``.  Exit 0 when all are valid, 1 when any is
invalid, 2 on usage errors.
"""

from __future__ import annotations

import datetime
import json
from typing import Any

import click

from studentstatus import errors
from studentstatus.cli._common import DATE
from studentstatus.ids import (
    DocumentType,
    detect,
    foreign_pr,
    resident,
    school_code,
    uscc,
    validate_document,
)

__all__ = ["check_number", "register"]

_TYPES = [
    "auto",
    *(t.value for t in DocumentType if t is not DocumentType.NONE),
    "uscc",
    "school_code",
]


def check_number(
    number: str,
    type_: str = "auto",
    *,
    strict_region: bool = True,
    today: datetime.date | None = None,
    reveal: bool = True,
) -> dict[str, Any]:
    """Check one number and return the JSON-ready result.

    ``normalized`` is the compact number, masked
    (:func:`~studentstatus.errors.mask_number`) unless ``reveal``.

    >>> r = check_number("44011320141005001x")
    >>> r["valid"], r["type"], r["normalized"], r["birth_date"], r["sex"]
    (True, 'resident', '44011320141005001X', '2014-10-05', 'M')
    >>> check_number("44011320141005001x", reveal=False)["normalized"]
    '44****************'
    >>> check_number("36042619910102009X")["error"]["code"]
    'checksum'
    """
    result: dict[str, Any] = {
        "valid": False,
        "type": None if type_ == "auto" else type_,
        "normalized": None,
        "birth_date": None,
        "sex": None,
        "region_code": None,
        "error": None,
    }
    try:
        kind = type_
        if kind == "auto":
            # school codes before 台胞证 (both may be 10 digits), identity
            # documents before USCCs
            detected = detect(number)
            if school_code.is_valid(number, kindergarten=False):
                kind = "school_code"
            elif detected is not None and detected is not DocumentType.NONE:
                kind = detected.value
            elif uscc.is_valid(number):
                kind = "uscc"
            else:
                # report the resident-number diagnosis for ID-shaped input
                resident.validate(number, strict_region=strict_region, today=today)
                raise errors.InvalidFormat(
                    "the number fits no known document",
                    field="id_number",
                    message_zh="无法识别的证件号码",
                )
            result["type"] = kind
        if kind == "uscc":
            result["normalized"] = uscc.validate(number)
        elif kind == "school_code":
            result["normalized"] = school_code.validate(number, kindergarten=False)
        else:
            normalized = validate_document(kind, number, strict_region=strict_region, today=today)
            result["normalized"] = normalized
            if kind in ("resident", "hk_mo_permit", "tw_permit"):
                parsed = resident.parse(normalized, strict_region=strict_region, today=today)
                result.update(
                    birth_date=parsed.birth_date.isoformat(),
                    sex=parsed.sex,
                    region_code=parsed.region_code,
                )
            elif kind == "foreign_pr":
                fp = foreign_pr.parse(normalized, today=today)
                result.update(birth_date=fp.birth_date.isoformat(), sex=fp.sex)
        result["valid"] = True
    except errors.InvalidNumber as exc:
        result["error"] = {
            "code": exc.code,
            "message_zh": exc.message_zh,
            "message_en": exc.message_en,
        }
    if not reveal and result["normalized"] and result["type"] not in ("uscc", "school_code"):
        result["normalized"] = errors.mask_number(result["normalized"])
    return result


def _human(number: str, result: dict[str, Any], *, reveal: bool = False) -> str:
    shown = number.strip() if reveal else errors.mask_number(number)
    if result["valid"]:
        extra = " ".join(str(result[k]) for k in ("birth_date", "sex", "region_code") if result[k])
        return f"OK       {shown}  {result['type']}" + (f"  {extra}" if extra else "")
    err = result["error"]
    why = f"{err['code']}: {err['message_zh']} / {err['message_en']}"
    return f"INVALID  {shown}  {result['type'] or '?'}  {why}"


@click.command("check-id")
@click.argument("numbers", nargs=-1, required=True)
@click.option("--type", "type_", type=click.Choice(_TYPES), default="auto", show_default=True)
@click.option(
    "--lenient", is_flag=True, help="Accept any known region code, whatever the birth year."
)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array of results.")
@click.option("--reveal", is_flag=True, help="Print the numbers in full (masked by default).")
@click.option(
    "--today",
    type=DATE,
    default=None,
    help="Reference date, YYYY-MM-DD, YYYY/MM/DD or YYYYMMDD (default: today).",
)
def check_id(
    numbers: tuple[str, ...],
    type_: str,
    lenient: bool,
    as_json: bool,
    reveal: bool,
    today: datetime.date | None,
) -> None:
    """Check identity numbers (身份证件号码), USCCs and school codes (masked unless --reveal)."""
    ref = today if today is not None else datetime.date.today()
    results = [
        check_number(n, type_, strict_region=not lenient, today=ref, reveal=reveal) for n in numbers
    ]
    if as_json:
        click.echo(json.dumps(results, ensure_ascii=False, indent=2))
    else:
        for number, result in zip(numbers, results):
            click.echo(_human(number, result, reveal=reveal))
    if not all(r["valid"] for r in results):
        raise SystemExit(1)


def register(group: click.Group) -> None:
    """Add ``check-id`` to the main command group.

    >>> group = click.Group()
    >>> register(group)
    >>> sorted(group.commands)
    ['check-id']
    """
    group.add_command(check_id)
