"""Audit trail: every change, approval step, problem action and number issue is logged.

Entries are hash-chained by :mod:`studentstatus.domain.audit`, one chain per
writer scope (the operator's ``role:scope``); this module appends them inside
the caller's unit of work (so an entry commits or rolls back together with what
it describes) and verifies the stored chains against their stored heads, a
checkpoint kept earlier and (``replay=True``) the tables next to them.

**Where the key lives.**  A keyed log seals each entry with HMAC-SHA-256 under
the host's key (:class:`~studentstatus.domain.audit.AuditKey`) instead of the
public SHA-256, so that nobody who can only write to the database can re-seal an
entry they edited.  The key belongs to the *store object* the host builds —
``MemoryStore(audit_key=…)``, ``FileStore(path, audit_key=…)``,
``SqlStore(url, audit_key=…)``, ``open_store(url, audit_key=…)`` — and is never
written to the store.  Every unit of work of that store hands it out as
``uow.audit.key`` (:class:`~studentstatus.ports.KeyedAuditLog`), so every
service that appends (:func:`audit_many`, :func:`audit_fields`, the SQL log's own
bulk sealing and its PostgreSQL ``COPY``) seals under it without being passed
it, and :func:`verify` checks with it.  The command line reads it from
``STUDENTSTATUS_AUDIT_KEY`` (the key's text) or ``STUDENTSTATUS_AUDIT_KEY_FILE``
(:func:`key_from_env`).  A store built without a key writes unkeyed entries, as
before.

>>> from datetime import UTC
>>> from studentstatus.adapters.memory import MemoryStore
>>> store = MemoryStore(audit_key=b"0123456789abcdef-demo")
>>> t = datetime(2025, 9, 1, 8, 0, tzinfo=UTC)
>>> with store.unit_of_work() as uow:
...     audit_many(uow, [AuditEvent("county:110105", "approve", "record:r1")], at=t)
...     uow.commit()
1
>>> report = verify(store)
>>> report.ok, report.key_id, report.keyed, report.unkeyed
(True, 'ab927661', 1, 0)
>>> verify(store, key=b"another key, not the host's").problem
'other_key'
"""

from __future__ import annotations

import hmac
import json
import os
from collections.abc import Iterable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import attrs

from studentstatus.domain.audit import (
    AuditKey,
    ChainHead,
    ChainReport,
    anchor,
    canonical_json,
    group_by_chain,
    identity_digest,
    seal_events,
    verify_chain,
)
from studentstatus.domain.model import Child
from studentstatus.errors import ValidationError
from studentstatus.ports import (
    AuditEventFields,
    KeyedAuditLog,
    KeyedStore,
    SealingAuditLog,
    Store,
    UnitOfWork,
)
from studentstatus.services import audit_replay

__all__ = [
    "CHECKPOINT_FORMAT",
    "KEY_ENV",
    "KEY_FILE_ENV",
    "AuditEvent",
    "AuditKey",
    "Checkpoint",
    "audit",
    "audit_fields",
    "audit_many",
    "child_digest",
    "key_from_env",
    "log_key",
    "make_checkpoint",
    "read_key_file",
    "store_key",
    "verify",
]

KEY_ENV = "STUDENTSTATUS_AUDIT_KEY"
"""The environment variable that holds the audit key's text (UTF-8)."""

KEY_FILE_ENV = "STUDENTSTATUS_AUDIT_KEY_FILE"
"""The environment variable that names a file holding the audit key."""

CHECKPOINT_FORMAT = "studentstatus-audit-checkpoint/1"
"""The ``format`` member of a checkpoint file."""


@attrs.frozen
class AuditEvent:
    """What to log, before sealing: operator, action, subject, reason, before/after."""

    operator: str
    action: str
    subject: str
    reason: str = ""
    before: Mapping[str, Any] = attrs.field(factory=dict)
    after: Mapping[str, Any] = attrs.field(factory=dict)


def log_key(uow: UnitOfWork) -> AuditKey | None:
    """The key ``uow``'s audit log seals under (``uow.audit.key``; ``None``: unkeyed).

    >>> from studentstatus.adapters.memory import MemoryStore
    >>> with MemoryStore().unit_of_work() as uow:
    ...     log_key(uow) is None
    True
    """
    key = uow.audit.key if isinstance(uow.audit, KeyedAuditLog) else None
    return key if isinstance(key, AuditKey) else None


def store_key(store: Store) -> AuditKey | None:
    """The key ``store`` was built with (its ``audit_key``; ``None``: unkeyed).

    >>> from studentstatus.adapters.memory import MemoryStore
    >>> store_key(MemoryStore(audit_key=b"0123456789abcdef-demo"))
    AuditKey(id='ab927661')
    """
    key = store.audit_key if isinstance(store, KeyedStore) else None
    return key if isinstance(key, AuditKey) else None


def child_digest(key: AuditKey | None, child: Child | None) -> dict[str, str]:
    """``{"child_digest": …}`` — the keyed digest of ``child``'s document number, name and
    birth date (:func:`~studentstatus.domain.audit.identity_digest`) — to merge into an
    audit entry's ``after``; ``{}`` without a key (an unkeyed digest of an identity
    number could be reversed by trying numbers) or a child.

    Replay (:mod:`~studentstatus.services.audit_replay`) compares the stored child with
    it.  Approvals (``approve``) and registrations (``register``) record it.

    >>> from datetime import date
    >>> from studentstatus.domain.enums import Sex
    >>> kid = Child("c1", "王小明", Sex.M, date(2020, 3, 15))
    >>> child_digest(None, kid), list(child_digest(AuditKey(b"0123456789abcdef-demo"), kid))
    ({}, ['child_digest'])
    """
    if key is None or child is None:
        return {}
    doc = child.document
    number = doc.number if doc is not None else ""
    return {"child_digest": identity_digest(key, number, child.name, child.birth_date)}


def read_key_file(path: str | os.PathLike[str]) -> AuditKey:
    """The key held in the file ``path`` (its bytes, without a trailing line break).

    A file that cannot be read raises :class:`~studentstatus.errors.ValidationError`
    (code ``audit_key_file``); a key too short, code ``audit_key_short``.
    """
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ValidationError(
            f"cannot read the audit key file: {exc.strerror or exc}",
            field="audit_key_file",
            message_zh="无法读取审计密钥文件",
            code="audit_key_file",
        ) from None
    return AuditKey(data.rstrip(b"\r\n"))


def key_from_env(environ: Mapping[str, str] | None = None) -> AuditKey | None:
    """The host's key from the environment: :data:`KEY_ENV` (the key's text) or
    :data:`KEY_FILE_ENV` (a file holding it); ``None`` when neither is set.

    >>> key_from_env({"STUDENTSTATUS_AUDIT_KEY": "0123456789abcdef-demo"})
    AuditKey(id='ab927661')
    >>> key_from_env({}) is None
    True
    """
    env = os.environ if environ is None else environ
    text = env.get(KEY_ENV, "")
    if text:
        return AuditKey(text.encode("utf-8"))
    path = env.get(KEY_FILE_ENV, "")
    return read_key_file(path) if path else None


def audit_many(uow: UnitOfWork, events: Iterable[AuditEvent], *, at: datetime) -> int:
    """Seal ``events`` onto the ends of their operators' chains and append them in ``uow``;
    returns the count.

    Units of different scopes append to different chains and never collide.  Two
    units that append to one chain concurrently either take turns (a store that
    locks the chain's head: the SQL store) or race on ``seq`` (the second commit
    raises :class:`~studentstatus.errors.ConflictError` and the caller retries).
    The entries are sealed under the store's key when it has one (see the module).
    """
    return audit_fields(
        uow, ((e.operator, e.action, e.subject, e.reason, e.before, e.after) for e in events), at=at
    )


def audit_fields(
    uow: UnitOfWork,
    events: Iterable[AuditEventFields],
    *,
    at: datetime,
    key: AuditKey | None = None,
) -> int:
    """:func:`audit_many` of events given as ``(operator, action, subject, reason, before,
    after)`` tuples (bulk runs: no :class:`AuditEvent` of each row).

    The entries are sealed under ``key``, by default the key of ``uow``'s log
    (:func:`log_key`: the host's key, given to the store), so bulk runs need not
    pass it.  A log that seals events itself
    (:class:`~studentstatus.ports.SealingAuditLog`) is handed them (unless ``key``
    is another key than its own); any other gets, chain by chain
    (:func:`~studentstatus.domain.audit.group_by_chain`, order kept within each),
    the entries of :func:`~studentstatus.domain.audit.seal_events` after the
    chain's last entry.

    >>> from datetime import UTC
    >>> from studentstatus.adapters.memory import MemoryStore
    >>> store = MemoryStore()
    >>> t = datetime(2025, 9, 1, 8, 0, tzinfo=UTC)
    >>> with store.unit_of_work() as uow:
    ...     audit_fields(uow, [("ministry", "export", "all", "", {}, {"rows": 3})], at=t)
    ...     uow.commit()
    1
    >>> verify(store).ok
    True
    """
    log = uow.audit
    own = log_key(uow)
    if key is None:
        key = own
    if isinstance(log, SealingAuditLog) and key == own:
        return log.seal_and_append(events, at=at)
    sealed = [
        entry
        for chain, group in group_by_chain(events).items()
        for entry in seal_events(log.last(chain), at, group, chain=chain, key=key)
    ]
    if not sealed:
        return 0
    return log.append_many(sealed)


def audit(uow: UnitOfWork, event: AuditEvent, *, at: datetime) -> None:
    """Append one audit entry (see :func:`audit_many`)."""
    audit_many(uow, [event], at=at)


def _invalid(detail: str) -> ValidationError:
    return ValidationError(
        f"not an audit checkpoint: {detail}",
        field="checkpoint",
        message_zh="不是有效的审计检查点文件",
        code="checkpoint_invalid",
    )


@attrs.frozen
class Checkpoint:
    """Every chain's head at one moment, kept outside the store: later verification
    (:func:`verify` with ``checkpoint=``) fails when a chain is now missing, shorter,
    or holds another entry at the checkpointed ``seq``.

    With a key, the checkpoint is signed (``mac``: HMAC-SHA-256 under the key of
    its canonical JSON, ``key_id`` naming the key), so that the file itself
    cannot be edited to match a cut-back log; :meth:`signed_by` checks it.

    >>> from datetime import UTC
    >>> key = AuditKey(b"0123456789abcdef-demo")
    >>> cp = Checkpoint.take({"ministry": (2, "ab")}, datetime(2025, 9, 1, tzinfo=UTC), key)
    >>> again = Checkpoint.from_json(cp.to_json())
    >>> again == cp, again.signed_by(key), again.anchor == anchor({"ministry": (2, "ab")})
    (True, True, True)
    >>> edited = cp.to_json().replace("2025-09-01", "2025-10-01")  # moved, not re-signed
    >>> Checkpoint.from_json(edited).signed_by(key)
    Traceback (most recent call last):
    ...
    studentstatus.errors.ValidationError: checkpoint_signature [checkpoint]: ...
    """

    at: datetime
    heads: Mapping[str, ChainHead]
    key_id: str = ""
    mac: str = ""

    @property
    def anchor(self) -> str:
        """The anchor over the checkpoint's heads (:func:`~studentstatus.domain.audit.anchor`)."""
        return anchor(self.heads)

    def body(self) -> dict[str, Any]:
        """The signed members (everything but ``mac``)."""
        return {
            "format": CHECKPOINT_FORMAT,
            "at": self.at.isoformat(),
            "anchor": self.anchor,
            "heads": {c: {"seq": s, "hash": h} for c, (s, h) in sorted(self.heads.items())},
            "key_id": self.key_id,
        }

    def to_json(self) -> str:
        """The checkpoint file's text (JSON, UTF-8, one member per chain)."""
        doc = {**self.body(), "mac": self.mac}
        return json.dumps(doc, ensure_ascii=False, indent=2, sort_keys=True) + "\n"

    @classmethod
    def take(
        cls, heads: Mapping[str, ChainHead], at: datetime, key: AuditKey | None = None
    ) -> Checkpoint:
        """A checkpoint of ``heads`` at ``at``, signed with ``key`` when given."""
        plain = cls(at, dict(heads), key.id if key is not None else "")
        if key is None:
            return plain
        return attrs.evolve(plain, mac=key.mac(canonical_json(plain.body()).encode("utf-8")))

    @classmethod
    def from_json(cls, text: str | bytes) -> Checkpoint:
        """Read a checkpoint file's text; a malformed one raises
        :class:`~studentstatus.errors.ValidationError` (code ``checkpoint_invalid``)."""
        try:
            doc = json.loads(text)
        except ValueError:
            raise _invalid("not JSON") from None
        if not isinstance(doc, dict) or doc.get("format") != CHECKPOINT_FORMAT:
            raise _invalid(f"no format {CHECKPOINT_FORMAT!r}")
        try:
            at = datetime.fromisoformat(doc["at"])
            heads: dict[str, ChainHead] = {}
            for chain, head in doc["heads"].items():
                seq, digest = head["seq"], head["hash"]
                if (
                    type(seq) is not int
                    or not isinstance(digest, str)
                    or not isinstance(chain, str)
                ):
                    raise _invalid(f"chain {chain!r}: bad head")
                heads[chain] = (seq, digest)
            key_id, mac = str(doc.get("key_id") or ""), str(doc.get("mac") or "")
        except (KeyError, TypeError, AttributeError, ValueError):
            raise _invalid("missing or malformed members") from None
        cp = cls(at, heads, key_id, mac)
        if doc.get("anchor") != cp.anchor:
            raise _invalid("its anchor is not the anchor of its heads")
        return cp

    def signed_by(self, key: AuditKey | None) -> bool:
        """Whether the checkpoint is signed and its signature checked with ``key``.

        ``False`` for an unsigned checkpoint, or a signed one and no key to check
        it with; a checkpoint signed under another key raises
        :class:`~studentstatus.errors.ValidationError` (code
        ``checkpoint_other_key``), one whose signature does not match (the file
        was edited) code ``checkpoint_signature``.
        """
        if not self.mac or key is None:
            return False
        if self.key_id != key.id:
            raise ValidationError(
                f"the checkpoint is signed under key {self.key_id}, not {key.id}",
                field="checkpoint",
                message_zh="检查点由另一把密钥签名",
                code="checkpoint_other_key",
            )
        expected = key.mac(canonical_json(self.body()).encode("utf-8"))
        if not hmac.compare_digest(expected, self.mac):
            raise ValidationError(
                "the checkpoint's signature does not match: the file was edited",
                field="checkpoint",
                message_zh="检查点签名不符：文件已被修改",
                code="checkpoint_signature",
            )
        return True


def make_checkpoint(
    store: Store, *, at: datetime, key: AuditKey | None = None, adopt_unkeyed: bool = False
) -> Checkpoint:
    """Verify the log and take a :class:`Checkpoint` of its heads (signed with ``key``, by
    default the store's key).  A broken log raises
    :class:`~studentstatus.errors.ValidationError` (code ``audit_broken``): a checkpoint
    must vouch only for a log that verifies.

    ``adopt_unkeyed``: the host has just started using a key on a log written without
    one; the chains' unkeyed beginnings are accepted (verify them first, without the
    key and against an anchor kept earlier), and the signed checkpoint vouches for
    them from now on (:func:`verify` with ``checkpoint=``).

    >>> from datetime import UTC
    >>> from studentstatus.adapters.memory import MemoryStore
    >>> store = MemoryStore(audit_key=b"0123456789abcdef-demo")
    >>> t = datetime(2025, 9, 1, 8, 0, tzinfo=UTC)
    >>> with store.unit_of_work() as uow:
    ...     audit_many(uow, [AuditEvent("ministry", "export", "all")], at=t)
    ...     uow.commit()
    1
    >>> cp = make_checkpoint(store, at=t)
    >>> sorted(cp.heads), cp.key_id, verify(store, checkpoint=cp).ok
    (['ministry'], 'ab927661', True)
    """
    if key is None:
        key = store_key(store)
    report = verify(store, key=key, unkeyed_ok=adopt_unkeyed)
    if not report.ok:
        raise ValidationError(
            f"the audit log does not verify (chain {report.chain!r}, entry "
            f"{report.first_bad_seq}: {report.problem}): no checkpoint taken",
            field="audit_log",
            message_zh="审计日志校验未通过，未生成检查点",
            code="audit_broken",
        )
    return Checkpoint.take(report.heads, at, key)


def verify(
    store: Store,
    *,
    key: AuditKey | bytes | str | None = None,
    checkpoint: Checkpoint | None = None,
    replay: bool = False,
    limit: int = 100,
    chunk: int = 1000,
    unkeyed_ok: bool = False,
    unsigned_checkpoint_ok: bool = False,
) -> ChainReport:
    """Recompute every stored chain and compare each with its stored head; the report
    names the broken chain and its first altered/removed/reordered/added entry, or
    (when ok) counts the chains and gives the :func:`~studentstatus.domain.audit.anchor`
    over their heads.

    ``key`` (default: the store's key, :func:`store_key`) checks each keyed entry's
    MAC and refuses entries sealed without it (``unkeyed``) or under another key
    (``other_key``); without a key, keyed entries are checked for their place and
    links only (``report.unchecked``).  ``checkpoint`` (a :class:`Checkpoint` kept
    earlier) makes a chain now missing, shorter, or holding another entry at the
    checkpointed ``seq`` a problem (``missing``, ``truncated``, ``rewritten``); a
    checkpoint signed with the key also vouches for the unkeyed entries up to its
    heads (a log keyed from some day on); with a key, an unsigned checkpoint is refused
    (``checkpoint_unsigned``) unless ``unsigned_checkpoint_ok``.  A checkpoint whose
    signature does not match raises :class:`~studentstatus.errors.ValidationError`.
    ``unkeyed_ok`` accepts every chain's unkeyed beginning (see
    :func:`make_checkpoint`'s ``adopt_unkeyed``).

    ``replay=True`` also replays the records through their change log and matches
    the change log with the audit entries
    (:mod:`studentstatus.services.audit_replay`): what it finds is in
    ``report.findings`` (at most ``limit``), and ``report.ok`` is false when it
    finds anything.

    The heads are read before the entries and again after them: entries appended
    while the log is read (a database that reads each statement afresh) are not
    taken for tampering.

    >>> from datetime import UTC
    >>> from studentstatus.adapters.memory import MemoryStore
    >>> store = MemoryStore()
    >>> t = datetime(2025, 9, 1, 8, 0, tzinfo=UTC)
    >>> with store.unit_of_work() as uow:
    ...     audit_many(uow, [AuditEvent("county:110105", "approve", "record:r1"),
    ...                      AuditEvent("kindergarten:1111000001", "register", "record:r2"),
    ...                      AuditEvent("county:110105", "approve", "record:r3")], at=t)
    ...     uow.commit()
    3
    >>> report = verify(store)
    >>> report.ok, report.checked, report.chains, len(report.anchor)
    (True, 3, 2, 64)
    >>> report.key_ids, report.unkeyed  # not keyed: re-sealing would not be detected
    ((), 3)
    """
    used = AuditKey.of(key) if key is not None else store_key(store)
    marks: dict[str, ChainHead] | None = None
    vouched: dict[str, int] | int | None = 2**62 if unkeyed_ok else None
    if checkpoint is not None:
        if used is not None and not checkpoint.signed_by(used) and not unsigned_checkpoint_ok:
            # anyone who can edit the file could move its heads back to a cut-back log
            raise ValidationError(
                "the checkpoint is not signed with the audit key: it cannot prove the log "
                "was not cut back (pass unsigned_checkpoint_ok=True to use it anyway)",
                field="checkpoint",
                message_zh="检查点未用审计密钥签名，无法证明日志未被截断",
                code="checkpoint_unsigned",
            )
        marks = dict(checkpoint.heads)
        if checkpoint.signed_by(used) and vouched is None:
            vouched = {chain: seq for chain, (seq, _h) in marks.items()}
    with store.unit_of_work() as uow:
        log = uow.audit
        before = log.heads()
        facts = audit_replay.AuditFacts() if replay else None
        entries = log.iter() if facts is None else audit_replay.tap(log.iter(), facts)
        report = verify_chain(
            entries,
            heads=before,
            heads_after=log.heads,
            key=used,
            checkpoint=marks,
            unkeyed_until=vouched,
        )
        if facts is None:
            return report
        for _rest in entries:  # the chain broke early: gather the rest's facts all the same
            pass
        result = audit_replay.replay(uow, facts, key=used, limit=limit, chunk=chunk)
    return attrs.evolve(
        report,
        ok=report.ok and not result.findings,
        findings=tuple(result.findings),
        replayed=result.records,
    )
