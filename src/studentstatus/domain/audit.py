"""A tamper-evident audit log: every entry carries the SHA-256 of itself and its predecessor.

Each :class:`~studentstatus.domain.model.AuditEntry` is hashed over a
canonical JSON text of its fields — ``seq``, ``at`` (ISO 8601), ``operator``,
``action``, ``subject``, ``reason``, ``before``, ``after`` and ``prev_hash``
(the hash of the entry before it; ``""`` for the first entry, ``seq == 1``).
Editing any field of an entry, removing an entry or reordering entries breaks
the chain, and :func:`verify_chain` says where and how.

Canonical JSON: keys sorted, no insignificant whitespace, UTF-8 text kept as
is (``ensure_ascii=False``), dates and datetimes in ISO 8601, enums as their
value.  An *aware* ``at`` is converted to UTC before formatting, so that a
store returning the same instant in another time zone still verifies; a
naive ``at`` is formatted as it is.  Stores must keep microseconds.

What a hash chain cannot show: a log cut short at its end is still a valid
chain.  Pass the last hash you trust (kept elsewhere, e.g. in a report) as
``head_hash`` to :func:`verify_chain` to catch that too.

>>> from datetime import datetime, timezone
>>> t = datetime(2025, 9, 1, 8, 0, tzinfo=timezone.utc)
>>> first = seal(AuditEntry(1, t, "county:110105", "approve_record", "record:r1"), None)
>>> second = seal(AuditEntry(2, t, "county:110105", "approve_record", "record:r2"), first)
>>> second.prev_hash == first.hash, len(first.hash)
(True, 64)
>>> verify_chain([first, second])
ChainReport(ok=True, checked=2, first_bad_seq=None, problem=None)
>>> import attrs
>>> verify_chain([first, attrs.evolve(second, reason="edited")])
ChainReport(ok=False, checked=1, first_bad_seq=2, problem='altered')
>>> verify_chain([second])
ChainReport(ok=False, checked=0, first_bad_seq=1, problem='removed')
"""

from __future__ import annotations

import enum
import hashlib
import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import UTC, date, datetime
from typing import Any, Literal

import attrs

from studentstatus._json import encoder
from studentstatus.domain.model import AuditEntry
from studentstatus.errors import ValidationError

__all__ = [
    "ChainProblem",
    "ChainReport",
    "SealedRow",
    "canonical_json",
    "chain_hash",
    "entry_fields",
    "events_digest",
    "seal",
    "seal_events",
    "seal_rows",
    "verify_chain",
]

ChainProblem = Literal["altered", "removed", "reordered"]
"""How a chain is broken."""


def _default(value: object) -> object:
    if isinstance(value, datetime):
        if value.tzinfo is not None and value.utcoffset() is not None:
            value = value.astimezone(UTC)
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, frozenset | set):
        return sorted(value, key=repr)
    msg = f"{type(value).__name__} is not JSON-ready"
    raise TypeError(msg)


def canonical_json(value: Any) -> str:
    """The canonical JSON text hashed by the chain (sorted keys, compact, UTF-8 kept).

    >>> canonical_json({"b": 1, "a": [True, None], "名": date(2025, 9, 1)})
    '{"a":[true,null],"b":1,"名":"2025-09-01"}'
    """
    return _CANONICAL(value)


# A str as canonical JSON writes it (ensure_ascii=False): the JSON string itself.
_STRING: Callable[[str], str] = json.encoder.encode_basestring

# One encoder for every entry, built once (json.dumps with options builds one per call).
_CANONICAL = encoder(
    sort_keys=True,
    separators=(",", ":"),
    ensure_ascii=False,
    allow_nan=False,
    default=_default,
)


def entry_fields(entry: AuditEntry, prev_hash: str) -> dict[str, Any]:
    """The fields of ``entry`` that the hash covers, with ``prev_hash`` as given.

    >>> sorted(entry_fields(AuditEntry(1, datetime(2025, 9, 1), "ministry", "x", "y"), ""))
    ['action', 'after', 'at', 'before', 'operator', 'prev_hash', 'reason', 'seq', 'subject']
    """
    return _hashed_fields(
        entry.seq,
        _at_text(entry.at),
        entry.operator,
        entry.action,
        entry.subject,
        entry.reason,
        dict(entry.before),
        dict(entry.after),
        prev_hash,
    )


def _at_text(at: datetime) -> str:
    """``at`` in ISO 8601, an aware value converted to UTC first."""
    if at.tzinfo is not None and at.utcoffset() is not None:
        at = at.astimezone(UTC)
    return at.isoformat()


def _hashed_fields(
    seq: int,
    at_text: str,
    operator: str,
    action: str,
    subject: str,
    reason: str,
    before: dict[str, Any],
    after: dict[str, Any],
    prev_hash: str,
) -> dict[str, Any]:
    return {
        "seq": seq,
        "at": at_text,
        "operator": operator,
        "action": action,
        "subject": subject,
        "reason": reason,
        "before": before,
        "after": after,
        "prev_hash": prev_hash,
    }


def _canonical_text(
    seq: int,
    at_text: str,
    operator: str,
    action: str,
    subject: str,
    reason: str,
    before: dict[str, Any],
    after: dict[str, Any],
    prev_hash: str,
) -> str:
    """``canonical_json`` of :func:`_hashed_fields`, the top level written out in its key
    order (the text hashed for every entry of a bulk import).

    >>> f = (3, "2025-09-01T00:00:00+00:00", "ministry", "x", "s", "", {}, {"b": [1], "名": 2}, "h")
    >>> _canonical_text(*f) == canonical_json(_hashed_fields(*f))
    True
    """
    if (
        type(seq) is not int
        or type(at_text) is not str
        or type(operator) is not str
        or type(action) is not str
        or type(subject) is not str
        or type(reason) is not str
        or type(prev_hash) is not str
    ):
        return _CANONICAL(
            _hashed_fields(
                seq, at_text, operator, action, subject, reason, before, after, prev_hash
            )
        )
    s = _CANONICAL  # a str is encoded as a JSON string, as inside a document
    return (
        f'{{"action":{s(action)},"after":{s(after) if after else "{}"},"at":{s(at_text)},'
        f'"before":{s(before) if before else "{}"},"operator":{s(operator)},'
        f'"prev_hash":{s(prev_hash)},"reason":{s(reason)},"seq":{seq},"subject":{s(subject)}}}'
    )


def chain_hash(prev_hash: str, entry: AuditEntry) -> str:
    """SHA-256 (hex) of the canonical JSON of ``entry`` linked to ``prev_hash``.

    ``entry.prev_hash`` and ``entry.hash`` are ignored: the link is the argument.

    >>> e = AuditEntry(1, datetime(2025, 9, 1), "ministry", "export", "all")
    >>> chain_hash("", e) == chain_hash("", attrs.evolve(e, hash="x"))
    True
    >>> chain_hash("", e) == chain_hash("0" * 64, e)
    False
    """
    text = canonical_json(entry_fields(entry, prev_hash))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def events_digest(pairs: Iterable[tuple[str, int]]) -> str:
    """SHA-256 (hex) over the sorted ``(record_id, seq)`` pairs of change-log events.

    One audit entry can stand for a whole bulk operation (the year-end rollover
    writes one per run): it carries this digest of the events it covers, which
    the change log keeps one by one.  Recomputing the digest from the stored
    change log shows whether an event of the operation was removed, added or
    renumbered.  Each pair is hashed as ``record_id``, a tab, ``seq`` and a
    newline (UTF-8), in sorted order, so the caller's order does not matter.

    >>> d = events_digest([("r2", 3), ("r1", 5)])
    >>> d == events_digest([("r1", 5), ("r2", 3)]), len(d)
    (True, 64)
    >>> d == events_digest([("r1", 5)])
    False
    >>> events_digest([]) == hashlib.sha256(b"").hexdigest()
    True
    """
    h = hashlib.sha256()
    for record_id, seq in sorted(pairs):
        h.update(f"{record_id}\t{seq}\n".encode())
    return h.hexdigest()


def seal(entry: AuditEntry, prev: AuditEntry | None) -> AuditEntry:
    """Link ``entry`` to ``prev`` (the current last entry, ``None`` for the first one).

    Sets ``prev_hash`` and ``hash``; raises
    :class:`~studentstatus.errors.ValidationError` (code ``audit_sequence``)
    unless ``entry.seq`` is ``prev.seq + 1`` (``1`` for the first entry).

    >>> seal(AuditEntry(2, datetime(2025, 9, 1), "ministry", "export", "all"), None)
    Traceback (most recent call last):
    ...
    studentstatus.errors.ValidationError: audit_sequence [seq]: ...
    """
    expected = prev.seq + 1 if prev is not None else 1
    if entry.seq != expected:
        raise ValidationError(
            f"the audit entry must have seq {expected}, not {entry.seq}",
            field="seq",
            message_zh=f"审计记录序号应为 {expected}，而不是 {entry.seq}",
            code="audit_sequence",
        )
    prev_hash = prev.hash if prev is not None else ""
    return attrs.evolve(entry, prev_hash=prev_hash, hash=chain_hash(prev_hash, entry))


def seal_events(
    prev: AuditEntry | None,
    at: datetime,
    events: Iterable[tuple[str, str, str, str, Mapping[str, Any], Mapping[str, Any]]],
) -> Iterator[AuditEntry]:
    """Sealed entries for ``events`` — ``(operator, action, subject, reason, before, after)``
    tuples, all at ``at`` — appended after ``prev`` (``None``: the chain is empty).

    The same entries, hashes included, as building each :class:`AuditEntry`
    with the next ``seq`` and passing it to :func:`seal`; made for bulk work
    (the time is formatted once, each entry is built once).

    >>> t = datetime(2025, 9, 1, 8, 0, tzinfo=UTC)
    >>> a, b = seal_events(None, t, [("ministry", "x", "s1", "", {}, {}),
    ...                              ("ministry", "y", "s2", "", {}, {"n": 1})])
    >>> (a.seq, b.seq, b.prev_hash == a.hash)
    (1, 2, True)
    >>> b == seal(AuditEntry(2, t, "ministry", "y", "s2", after={"n": 1}), a)
    True
    """
    for seq, operator, action, subject, reason, before, after, prev_hash, digest in seal_rows(
        prev, at, events
    ):
        yield AuditEntry(
            seq, at, operator, action, subject, reason, dict(before), dict(after), prev_hash,
            digest,
        )  # fmt: skip


SealedRow = tuple[int, str, str, str, str, dict[str, Any], dict[str, Any], str, str]
"""The fields of a sealed entry, in :class:`AuditEntry` order without ``at``: ``(seq,
operator, action, subject, reason, before, after, prev_hash, hash)``."""


def seal_rows(
    prev: AuditEntry | None,
    at: datetime,
    events: Iterable[tuple[str, str, str, str, Mapping[str, Any], Mapping[str, Any]]],
) -> Iterator[SealedRow]:
    """What :func:`seal_events` makes, as plain tuples (:data:`SealedRow`): for a storage
    adapter that writes the entries of a bulk run without building an object of each.

    ``before`` and ``after`` are the events' own dicts (not copies; any other
    mapping becomes a dict): write them before changing them.

    >>> t = datetime(2025, 9, 1, 8, 0, tzinfo=UTC)
    >>> events = [("ministry", "x", "s1", "", {}, {"n": 1})]
    >>> (row,) = seal_rows(None, t, events)
    >>> row[:7], row[8] == next(seal_events(None, t, events)).hash
    ((1, 'ministry', 'x', 's1', '', {}, {'n': 1}), True)
    """
    at_text = _at_text(at)
    seq = prev.seq if prev is not None else 0
    prev_hash = prev.hash if prev is not None else ""
    sha256 = hashlib.sha256
    s = _CANONICAL
    at_json = s(at_text)
    # JSON text of the strings a bulk run repeats (operators, actions, reasons), made once.
    known: dict[str, str] = {}
    string = _STRING
    for operator, action, subject, reason, before, after in events:
        seq += 1
        if type(before) is not dict:
            before = dict(before)
        if type(after) is not dict:
            after = dict(after)
        if (
            type(operator) is str
            and type(action) is str
            and type(reason) is str
            and type(subject) is str
            and type(prev_hash) is str
        ):
            if len(known) > 256:
                known.clear()
            op = known.get(operator) or known.setdefault(operator, s(operator))
            act = known.get(action) or known.setdefault(action, s(action))
            why = known.get(reason) or known.setdefault(reason, s(reason))
            # _canonical_text, with the repeated parts' text at hand
            text = (
                f'{{"action":{act},"after":{s(after) if after else "{}"},"at":{at_json},'
                f'"before":{s(before) if before else "{}"},"operator":{op},'
                f'"prev_hash":{string(prev_hash)},"reason":{why},"seq":{seq},'
                f'"subject":{string(subject)}}}'
            )
        else:
            text = _canonical_text(
                seq, at_text, operator, action, subject, reason, before, after, prev_hash
            )
        digest = sha256(text.encode("utf-8")).hexdigest()
        yield (seq, operator, action, subject, reason, before, after, prev_hash, digest)
        prev_hash = digest


@attrs.frozen
class ChainReport:
    """Result of :func:`verify_chain`.

    Attributes:
        ok: the whole chain verified.
        checked: entries verified good before the first problem (all of them when ok).
        first_bad_seq: where the chain first breaks: the seq of the altered entry,
            of the (first) missing entry, or of the first entry out of its place.
        problem: ``"altered"``, ``"removed"``, ``"reordered"`` or ``None``.

    >>> ChainReport(True, 0).to_dict()["ok"]
    True
    """

    ok: bool
    checked: int
    first_bad_seq: int | None = None
    problem: ChainProblem | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping of the report.

        >>> ChainReport(False, 2, 3, "removed").to_dict()["problem"]
        'removed'
        """
        return {
            "ok": self.ok,
            "checked": self.checked,
            "first_bad_seq": self.first_bad_seq,
            "problem": self.problem,
        }


def _seq_appears(rest: Iterator[AuditEntry], seq: int) -> bool:
    return any(e.seq == seq for e in rest)


def verify_chain(
    entries: Iterable[AuditEntry],
    *,
    after: AuditEntry | None = None,
    head_hash: str | None = None,
) -> ChainReport:
    """Check a chain in the order given; report the first break and its kind.

    * **altered** — an entry's hash does not match its content (any field edited,
      including ``seq``, ``prev_hash`` or ``hash``), or the next entry's
      ``prev_hash`` does not match an entry whose hash was recomputed after an edit;
    * **removed** — the expected seq is missing (the next entry skips it and it
      does not appear later), or the last hash differs from ``head_hash`` (entries
      after it were cut off — or the last entry was edited and re-sealed, which a
      chain alone cannot tell apart);
    * **reordered** — an entry is out of place: the expected seq appears later
      (or a seq appears twice).

    ``after`` verifies a segment continuing a trusted entry; the entries are
    streamed, so a long log is never held in memory.

    >>> from datetime import datetime
    >>> t = datetime(2025, 9, 1)
    >>> a = seal(AuditEntry(1, t, "m", "x", "s1"), None)
    >>> b = seal(AuditEntry(2, t, "m", "x", "s2"), a)
    >>> c = seal(AuditEntry(3, t, "m", "x", "s3"), b)
    >>> verify_chain([a, c, b]).problem, verify_chain([a, c, b]).first_bad_seq
    ('reordered', 2)
    >>> verify_chain([a, c]).problem
    'removed'
    >>> verify_chain([a, b], head_hash=c.hash)
    ChainReport(ok=False, checked=2, first_bad_seq=3, problem='removed')
    >>> verify_chain([c], after=b).ok
    True
    """
    it = iter(entries)
    prev = after
    checked = 0
    for entry in it:
        expected_seq = prev.seq + 1 if prev is not None else 1
        expected_prev = prev.hash if prev is not None else ""
        if chain_hash(entry.prev_hash, entry) != entry.hash:
            return ChainReport(False, checked, expected_seq, "altered")
        if entry.seq != expected_seq:
            if entry.seq > expected_seq and not _seq_appears(it, expected_seq):
                return ChainReport(False, checked, expected_seq, "removed")
            return ChainReport(False, checked, expected_seq, "reordered")
        if entry.prev_hash != expected_prev:
            # In place and self-consistent, but linked to a different predecessor:
            # the predecessor was edited and its hash recomputed.
            bad = prev.seq if prev is not None else entry.seq
            return ChainReport(False, max(checked - 1, 0), bad, "altered")
        prev = entry
        checked += 1
    if head_hash is not None and (prev.hash if prev is not None else "") != head_hash:
        return ChainReport(False, checked, (prev.seq if prev is not None else 0) + 1, "removed")
    return ChainReport(True, checked)
