"""The two-level federation's vocabulary: national identity hashes, messages, transfers.

Each province runs its own store; the national hub sees every province through
PostgreSQL logical replication (the adapter is
:mod:`studentstatus.adapters.sql.federation`, the services
:mod:`studentstatus.services.federation`).  This module holds what both sides
must agree on and what can be decided without a database:

* the **national identity hash** of a child (:func:`national_ident`): an
  HMAC-SHA256 of the child's identity key (:mod:`studentstatus.domain.claims`)
  under a national key that provinces hold and the hub does not.  Two provinces
  compute the same hash for the same child, so the hub can find a child live in
  two provinces by comparing hashes; without the key nobody can test a guessed
  ID number against a hash.  The database computes the same function
  (from PostgreSQL's own ``sha256``) in the province's feed triggers;
* the **messages** between provinces and the hub (:class:`Message`,
  :class:`MessageKind`), applied exactly once by id;
* the **transfer between provinces** (:class:`TransferStatus`,
  :func:`next_transfer_status`, :func:`side_of`, :func:`pending_step`): the
  destination asks; the approval chain of a transfer
  (:func:`studentstatus.domain.approvals.approval_chain`: kindergartens, counties
  and provinces of both sides) is decided step by step, each step in the province
  it belongs to, each decision sent to the other side; when the last step approves,
  the child leaves the source (WITHDRAWN) in the same transaction that sends the
  approval, and becomes ACTIVE at the destination only when the approval arrives —
  so a child is never ACTIVE in two provinces.

>>> key = bytes(32)
>>> national_ident(key, ("d", "11010520200315003X"))
'753951003203bbdd5c3c9d2c16f4351a'
>>> national_ident(key, ("d", "11010520200315003X")) == national_ident(b"x" * 32,
...                                                                   ("d", "11010520200315003X"))
False
>>> notice_id("44", "753951003203bbdd5c3c9d2c16f4351a", ("11", "44"))
'dup-44-d88d0c14f84896007e2f7857'
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import Any

import attrs

from studentstatus.domain.claims import IdentityKey
from studentstatus.domain.enums import Grade, Role, StepDecision, _Labelled
from studentstatus.domain.model import ApprovalStep, Child
from studentstatus.errors import ValidationError

__all__ = [
    "HUB",
    "IDENT_HEX",
    "KEY_MIN_BYTES",
    "Message",
    "MessageKind",
    "Transfer",
    "TransferStatus",
    "check_key",
    "check_province",
    "decided_count",
    "national_ident",
    "next_transfer_status",
    "notice_id",
    "open_number",
    "pending_step",
    "seal_number",
    "side_of",
]

HUB = "hub"
"""The ``source`` of messages the national hub writes itself (duplicate notices)."""

IDENT_HEX = 32
"""Hex digits kept of the HMAC (128 bits), as for the local claim keys."""

KEY_MIN_BYTES = 16
"""The shortest national key accepted (128 bits)."""

_PROVINCE = re.compile(r"[1-9][0-9]")


def check_province(code: str) -> str:
    """A two-digit province code (``11`` … ``82``), or :class:`ValidationError`.

    >>> check_province("44")
    '44'
    >>> check_province("440000")
    Traceback (most recent call last):
    ...
    studentstatus.errors.ValidationError: invalid_province [province]: ...
    """
    if not isinstance(code, str) or not _PROVINCE.fullmatch(code):
        raise ValidationError(
            f"a province is two digits such as 44, not {str(code)[:12]!r}",
            field="province",
            code="invalid_province",
            message_zh=f"省级代码应为两位数字（如 44），而不是 {str(code)[:12]!r}",
        )
    return code


def check_key(key: bytes) -> bytes:
    """The national key, refused when shorter than :data:`KEY_MIN_BYTES`.

    >>> len(check_key(bytes(32)))
    32
    >>> check_key(b"short")
    Traceback (most recent call last):
    ...
    studentstatus.errors.ValidationError: weak_national_key [national_key]: ...
    """
    if len(key) < KEY_MIN_BYTES:
        raise ValidationError(
            f"the national key must be at least {KEY_MIN_BYTES} bytes",
            field="national_key",
            code="weak_national_key",
            message_zh=f"全国密钥至少应为 {KEY_MIN_BYTES} 字节",
        )
    return key


def national_ident(key: bytes, identity_key: IdentityKey) -> str:
    """The national identity hash of an identity key: HMAC-SHA256 under ``key`` of the
    key's parts joined by U+001F, first :data:`IDENT_HEX` hex digits.

    The feed triggers compute the same value in SQL (the adapter's tests compare both).

    >>> national_ident(bytes(32), ("i", "李小红", "F", "2021-05-01"))
    'e5cf7e2608dd9e9af5f12f1571a5ae52'
    """
    text = "\x1f".join(identity_key).encode("utf-8")
    return hmac.new(key, text, hashlib.sha256).hexdigest()[:IDENT_HEX]


def _keystream(key: bytes, transfer_id: str, length: int) -> bytes:
    out = b""
    block = 0
    while len(out) < length:
        label = f"number:{transfer_id}:{block}".encode()
        out += hmac.new(key, label, hashlib.sha256).digest()
        block += 1
    return out[:length]


def seal_number(key: bytes, transfer_id: str, number: str) -> str:
    """A national number as a transfer's approval carries it through the hub: XORed with
    an HMAC-SHA256 keystream under the national key and the transfer's id (used once), hex.
    The hub, without the key, learns nothing of it; the destination opens it.

    >>> sealed = seal_number(bytes(32), "x1", "G11010520200315003X")
    >>> "110105" in sealed, open_number(bytes(32), "x1", sealed)
    (False, 'G11010520200315003X')
    """
    data = number.encode("ascii")
    stream = _keystream(key, transfer_id, len(data))
    return bytes(a ^ b for a, b in zip(data, stream, strict=True)).hex()


def open_number(key: bytes, transfer_id: str, sealed: str) -> str:
    """The number :func:`seal_number` sealed (see there)."""
    data = bytes.fromhex(sealed)
    stream = _keystream(key, transfer_id, len(data))
    return bytes(a ^ b for a, b in zip(data, stream, strict=True)).decode("ascii")


def notice_id(province: str, ident: str, provinces: Sequence[str]) -> str:
    """The id of the duplicate notice to ``province`` about ``ident`` live in ``provinces``:
    the same finding gives the same id, so a dedupe run twice sends nothing new.

    The hub's SQL builds the same id (``'dup-' || province || '-' || left(md5(…), 24)``).
    """
    digest = hashlib.md5(  # noqa: S324 - an id, not a secret
        (ident + ":" + ",".join(sorted(provinces))).encode("ascii")
    ).hexdigest()
    return f"dup-{province}-{digest[:24]}"


class MessageKind(_Labelled):
    """What a message between provinces (through the hub) asks or tells."""

    TRANSFER_REQUEST = "transfer_request", "跨省转园申请"
    TRANSFER_STEPS = "transfer_steps", "跨省转园审核进度"
    TRANSFER_APPROVED = "transfer_approved", "跨省转园已同意"
    TRANSFER_REFUSED = "transfer_refused", "跨省转园不同意"
    TRANSFER_FAILED = "transfer_failed", "跨省转园转入失败"
    DUPLICATE_NOTICE = "duplicate_notice", "跨省重复学籍通知"
    UNKNOWN = "unknown", "无法识别的消息"
    """A kind this version does not know (a newer node's, during an upgrade): never applied,
    left for a version that knows it."""


@attrs.frozen
class Message:
    """One message: ``source`` and ``destination`` are province codes (``source`` is
    :data:`HUB` for the hub's notices); ``body`` holds no name or document number.

    >>> m = Message("t1-req", "44", "11", MessageKind.TRANSFER_REQUEST, {"transfer": "t1"})
    >>> m.kind.label_zh, m.destination
    ('跨省转园申请', '11')
    """

    id: str
    source: str
    destination: str
    kind: MessageKind
    body: Mapping[str, Any]
    created_at: datetime | None = None


class TransferStatus(_Labelled):
    """A transfer between provinces, as each side records it.

    The destination's row goes REQUESTED → DONE or REFUSED; the source's row
    PENDING → APPROVED or REFUSED.
    """

    REQUESTED = "REQUESTED", "已申请（等待转出省）"
    PENDING = "PENDING", "待转出县审核"
    APPROVED = "APPROVED", "已同意转出"
    REFUSED = "REFUSED", "不同意"
    DONE = "DONE", "已转入"


_NEXT: dict[tuple[TransferStatus, MessageKind | str], TransferStatus] = {
    (TransferStatus.REQUESTED, MessageKind.TRANSFER_APPROVED): TransferStatus.DONE,
    (TransferStatus.REQUESTED, MessageKind.TRANSFER_REFUSED): TransferStatus.REFUSED,
    (TransferStatus.PENDING, "approve"): TransferStatus.APPROVED,
    (TransferStatus.PENDING, "refuse"): TransferStatus.REFUSED,
}


def next_transfer_status(status: TransferStatus, event: MessageKind | str) -> TransferStatus | None:
    """The status a transfer moves to on ``event`` (a message that arrived, or the source
    county's ``"approve"`` / ``"refuse"``), or ``None`` when the event does not apply
    (an answer to a transfer already answered: applied once, ignored after).

    >>> next_transfer_status(TransferStatus.REQUESTED, MessageKind.TRANSFER_APPROVED)
    <TransferStatus.DONE: 'DONE'>
    >>> next_transfer_status(TransferStatus.DONE, MessageKind.TRANSFER_APPROVED) is None
    True
    >>> next_transfer_status(TransferStatus.PENDING, "approve")
    <TransferStatus.APPROVED: 'APPROVED'>
    """
    return _NEXT.get((status, event))


def side_of(step: ApprovalStep, source_province: str, source_kindergarten: str) -> str:
    """Which province decides ``step`` of a transfer: ``"source"`` or ``"destination"``.

    >>> side_of(ApprovalStep(Role.COUNTY, "110105"), "11", "1100000001")
    'source'
    >>> side_of(ApprovalStep(Role.KINDERGARTEN, "4403000001"), "11", "1100000001")
    'destination'
    >>> side_of(ApprovalStep(Role.PROVINCE, "44"), "11", "1100000001")
    'destination'
    """
    if step.role is Role.KINDERGARTEN:
        return "source" if step.scope == source_kindergarten else "destination"
    return "source" if step.scope[:2] == source_province else "destination"


def pending_step(steps: Sequence[ApprovalStep]) -> int | None:
    """The index of the first undecided step, or ``None`` (all decided, or one rejected).

    >>> pending_step((ApprovalStep(Role.COUNTY, "110105", decision=StepDecision.APPROVED),
    ...               ApprovalStep(Role.COUNTY, "440303")))
    1
    """
    for i, step in enumerate(steps):
        if step.decision is StepDecision.REJECTED:
            return None
        if step.decision is StepDecision.PENDING:
            return i
    return None


def decided_count(steps: Sequence[ApprovalStep]) -> int:
    """How many steps are decided: a copy with more is the newer one.

    >>> decided_count((ApprovalStep(Role.COUNTY, "110105", decision=StepDecision.APPROVED),))
    1
    """
    return sum(1 for s in steps if s.decision is not StepDecision.PENDING)


def _masked_child(child: Child | None) -> str:
    return "None" if child is None else f"Child({child.id!r}, …)"


@attrs.frozen
class Transfer:
    """A transfer between provinces as one side keeps it.

    ``direction`` is ``"in"`` on the destination (which holds ``child``: what its
    kindergarten entered, never sent anywhere) and ``"out"`` on the source (which
    holds ``record_id``, the record that leaves).  ``steps`` is the approval chain
    (empty on the destination until the source has made it), ``sides`` says which
    province decides each step (:func:`side_of`).  ``other_province`` is the other
    side; ``county_code`` the county that decides (source) or receives
    (destination); ``national_number`` the number the child keeps, set on the
    destination when the approval arrives.  ``repr`` shows no child data and no
    number.

    >>> from datetime import date
    >>> t = Transfer("t1", "in", TransferStatus.REQUESTED, "11", "ab" * 16,
    ...              effective_date=date(2026, 3, 2), kindergarten_code="4403000001",
    ...              county_code="440303", national_number="G11010520200315003X")
    >>> "G11010520200315003X" in repr(t), t.status.label_zh
    (False, '已申请（等待转出省）')
    """

    id: str
    direction: str
    status: TransferStatus
    other_province: str
    ident: str = attrs.field(repr=False)
    effective_date: date
    kindergarten_code: str | None = None
    county_code: str | None = None
    record_id: str | None = None
    grade: Grade | None = None
    child: Child | None = attrs.field(default=None, repr=_masked_child)
    national_number: str | None = attrs.field(default=None, repr=False)
    requested_by: str = ""
    decided_by: str | None = None
    reason: str = ""
    created_at: datetime | None = None
    updated_at: datetime | None = None
    steps: tuple[ApprovalStep, ...] = ()
    sides: tuple[str, ...] = ()
