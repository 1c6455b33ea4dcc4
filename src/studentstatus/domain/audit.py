"""A tamper-evident audit log: hash chains, one per writer scope, and an anchor over their heads.

Each :class:`~studentstatus.domain.model.AuditEntry` is hashed over a
canonical JSON text of its fields — ``seq``, ``at`` (ISO 8601), ``operator``,
``action``, ``subject``, ``reason``, ``before``, ``after``, ``prev_hash`` (the
hash of the entry before it in its chain; ``""`` for the first entry,
``seq == 1``) and ``chain`` (only when not empty).  Editing any field of an
entry, removing an entry or reordering entries breaks its chain, and
:func:`verify_chain` says where and how.

**Chains.**  The log is not one chain but one per writer scope: an entry goes
to the chain :func:`chain_of` its operator (``"county:110105"``,
``"kindergarten:1111000001"``, ``"ministry"``), and ``seq`` and ``prev_hash``
count and link within that chain.  Writers of different scopes therefore never
wait for one another, and two writers of one scope take turns on its head.
The chain's name is hashed, so an entry cannot be moved to another chain.  The
chain ``""`` is the single chain of logs written before chains existed: its
entries hash exactly as they always did.

**Heads and anchor.**  A chain's head is ``(seq, hash)`` of its last entry;
stores keep the heads next to the entries (``AuditLog.heads()``).  A hash
chain cannot show that its end was cut off; comparing each chain with its
stored head can (``verify_chain(..., heads=...)``).  :func:`anchor` is one
SHA-256 over every head: kept outside the store (a report, a print-out), it
shows later whether anything in any chain changed since, beyond appends.

**Keys.**  With a key the host supplies (:class:`AuditKey`, never stored beside the
log) an entry's hash is not the public SHA-256 of its text but an HMAC-SHA-256
under that key, written ``KEYID:MAC`` — :attr:`AuditKey.id` (the first 8 hex
digits of the key's SHA-256) and the 64 hex digits of the MAC — so that the
stored hash names the key that sealed it (:func:`key_id_of`).  Anyone can
recompute a SHA-256 chain after editing an entry; only the key's holder can
re-seal a keyed one.  Verifying with the key (``verify_chain(..., key=...)``)
finds an entry re-sealed without the key (``"unkeyed"``) or under another key
(``"other_key"``); verifying without it can only check the links of keyed
entries (``ChainReport.unchecked`` counts them).

Canonical JSON: keys sorted, no insignificant whitespace, UTF-8 text kept as
is (``ensure_ascii=False``), dates and datetimes in ISO 8601, enums as their
value.  An *aware* ``at`` is converted to UTC before formatting, so that a
store returning the same instant in another time zone still verifies; a
naive ``at`` is formatted as it is.  Stores must keep microseconds.

>>> from datetime import datetime, timezone
>>> t = datetime(2025, 9, 1, 8, 0, tzinfo=timezone.utc)
>>> c = chain_of("county:110105")
>>> first = seal(AuditEntry(1, t, "county:110105", "approve_record", "record:r1", chain=c), None)
>>> second = seal(
...     AuditEntry(2, t, "county:110105", "approve_record", "record:r2", chain=c), first
... )
>>> second.prev_hash == first.hash, len(first.hash)
(True, 64)
>>> verify_chain([first, second])
ChainReport(ok=True, checked=2, first_bad_seq=None, problem=None, chain=None, chains=1)
>>> import attrs
>>> verify_chain([first, attrs.evolve(second, reason="edited")]).problem
'altered'
>>> verify_chain([second]).problem, verify_chain([second]).first_bad_seq
('removed', 1)
>>> verify_chain([first], heads={c: (2, second.hash)}).problem  # the tail was cut off
'removed'
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import UTC, date, datetime
from typing import Any, Literal, TypeVar

import attrs

from studentstatus._json import encoder
from studentstatus.domain.model import AuditEntry
from studentstatus.errors import ValidationError

__all__ = [
    "CHAIN_MAX",
    "KEY_MIN",
    "PROBLEM_MESSAGES",
    "AuditFinding",
    "AuditKey",
    "ChainHead",
    "ChainProblem",
    "ChainReport",
    "SealedRow",
    "anchor",
    "canonical_json",
    "chain_hash",
    "chain_of",
    "entry_fields",
    "events_digest",
    "group_by_chain",
    "identity_digest",
    "key_id_of",
    "seal",
    "seal_events",
    "seal_rows",
    "verify_chain",
]

ChainProblem = Literal[
    "altered",
    "removed",
    "reordered",
    "added",
    "unkeyed",
    "other_key",
    "missing",
    "truncated",
    "rewritten",
]
"""How a chain is broken (see :func:`verify_chain`)."""

PROBLEM_MESSAGES: dict[str, tuple[str, str]] = {
    "altered": (
        "an entry's content no longer matches its hash",
        "审计记录内容与其哈希不符（被修改）",
    ),
    "removed": ("an entry is missing from its chain", "审计链中缺少记录（被删除或截断）"),
    "reordered": ("an entry is out of its place in its chain", "审计记录顺序被打乱"),
    "added": ("a chain goes on past its stored head", "审计链超出其存储的链头（有记录被添加）"),
    "unkeyed": (
        "an entry is sealed without the key (re-sealed with the public hash?)",
        "审计记录未用密钥封存（可能被改后用公开哈希重新封存）",
    ),
    "other_key": ("an entry is sealed under another key", "审计记录由另一把密钥封存"),
    "missing": ("a chain of the checkpoint has no entries any more", "检查点中的审计链已不存在"),
    "truncated": (
        "a chain is shorter than in the checkpoint (its end was cut off)",
        "审计链比检查点时短（末尾被截断）",
    ),
    "rewritten": (
        "a chain's entry at the checkpointed seq has another hash (rewritten)",
        "审计链在检查点序号处的哈希不同（被改写）",
    ),
}
"""For each :data:`ChainProblem`: ``(English, Chinese)`` message (the stable code is
``audit_`` + the problem: ``audit_altered``, ``audit_truncated``…)."""

KEY_MIN = 16
"""The shortest key :class:`AuditKey` accepts, in bytes."""

ChainHead = tuple[int, str]
"""A chain's head: ``(seq, hash)`` of its last entry."""

CHAIN_MAX = 64
"""The longest chain name (what stores must hold); :func:`chain_of` never returns more."""

_Event = TypeVar("_Event", bound=tuple[Any, ...])


@attrs.frozen(repr=False)
class AuditKey:
    """The host's secret for sealing audit entries (HMAC-SHA-256); never stored with the log.

    ``id`` is the first 8 hex digits of the key's SHA-256: stored hashes carry it
    (``KEYID:MAC``) so that verification can tell "sealed under another key" from
    "altered" without knowing the other key.  The repr shows the id only.  A key
    shorter than :data:`KEY_MIN` bytes raises
    :class:`~studentstatus.errors.ValidationError` (code ``audit_key_short``).

    >>> key = AuditKey(b"0123456789abcdef-demo")
    >>> key, key.id == hashlib.sha256(b"0123456789abcdef-demo").hexdigest()[:8]
    (AuditKey(id='ab927661'), True)
    >>> sealed = key.seal("text")
    >>> sealed[:9], len(sealed)
    ('ab927661:', 73)
    >>> AuditKey(b"short")
    Traceback (most recent call last):
    ...
    studentstatus.errors.ValidationError: audit_key_short [audit_key]: ...
    """

    secret: bytes = attrs.field(repr=False)
    id: str = attrs.field(init=False, repr=True)

    def __attrs_post_init__(self) -> None:
        if not isinstance(self.secret, bytes) or len(self.secret) < KEY_MIN:
            raise ValidationError(
                f"the audit key must be at least {KEY_MIN} bytes",
                field="audit_key",
                message_zh=f"审计密钥至少需要 {KEY_MIN} 个字节",
                code="audit_key_short",
            )
        object.__setattr__(self, "id", hashlib.sha256(self.secret).hexdigest()[:8])

    def __repr__(self) -> str:
        return f"AuditKey(id={self.id!r})"

    @classmethod
    def of(cls, value: AuditKey | bytes | str | None) -> AuditKey | None:
        """``value`` as a key: an :class:`AuditKey` as it is, bytes or text (UTF-8) made
        into one, ``None`` (no key) as ``None``.

        >>> AuditKey.of("0123456789abcdef-demo") == AuditKey(b"0123456789abcdef-demo")
        True
        >>> AuditKey.of(None) is None
        True
        """
        if value is None or isinstance(value, AuditKey):
            return value
        return cls(value.encode("utf-8") if isinstance(value, str) else value)

    def mac(self, data: bytes) -> str:
        """HMAC-SHA-256 of ``data`` under the key, 64 hex digits."""
        return hmac.digest(self.secret, data, "sha256").hex()

    def seal(self, text: str) -> str:
        """The stored hash of a canonical text sealed under the key: ``id:mac``."""
        return f"{self.id}:{self.mac(text.encode('utf-8'))}"


def key_id_of(digest: str) -> str:
    """The id of the key that sealed a stored hash (``""``: a plain SHA-256, no key).

    >>> key_id_of("ab927661:" + "0" * 64), key_id_of("ab" * 32)
    ('ab927661', '')
    """
    head, sep, _mac = digest.partition(":")
    return head if sep else ""


def identity_digest(key: AuditKey, number: str, name: str, birth_date: date) -> str:
    """A keyed digest of a child's identity (document number, name, birth date), for an
    audit entry that must record who was registered without holding the number: ``id:mac``
    over the three values joined by the unit separator.  Without the key it cannot be
    turned back into the number, nor checked against a guessed one.

    >>> key = AuditKey(b"0123456789abcdef-demo")
    >>> d = identity_digest(key, "11010520200315002X", "王小明", date(2020, 3, 15))
    >>> d == identity_digest(key, "11010520200315002X", "王小明", date(2020, 3, 15))
    True
    >>> d == identity_digest(key, "11010520200315002X", "王小红", date(2020, 3, 15))
    False
    >>> "11010520200315002X" in d
    False
    """
    return key.seal("\x1f".join((number, name, birth_date.isoformat())))


def _digest(text: str, key: AuditKey | None) -> str:
    """The stored hash of an entry's canonical text: SHA-256, or sealed under ``key``."""
    if key is None:
        return hashlib.sha256(text.encode("utf-8")).hexdigest()
    return key.seal(text)


def chain_of(operator: str) -> str:
    """The chain that ``operator``'s audit entries go to: its text as written.

    An operator is written ``role:scope`` (``"county:110105"``,
    ``"kindergarten:1111000001"``, ``"province:44"``) or as a bare role or name
    (``"ministry"``, ``"system"``); each such text is its own chain, so writers of
    different scopes never share one.  A text longer than :data:`CHAIN_MAX`
    characters is cut to 47 characters, ``~`` and the first 16 hex digits of its
    SHA-256 (still one chain per text).  ``""`` is the chain of logs written
    before chains existed.

    >>> chain_of("county:110105"), chain_of("kindergarten:1111000001"), chain_of("ministry")
    ('county:110105', 'kindergarten:1111000001', 'ministry')
    >>> long = chain_of("x" * 100)
    >>> len(long), long[:48]
    (64, 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx~')
    """
    if len(operator) <= CHAIN_MAX:
        return operator
    return f"{operator[:47]}~{hashlib.sha256(operator.encode('utf-8')).hexdigest()[:16]}"


def group_by_chain(events: Iterable[_Event]) -> dict[str, list[_Event]]:
    """``events`` — tuples whose first item is the operator, such as
    ``(operator, action, subject, reason, before, after)`` — by :func:`chain_of` their
    operator: chains in order of first appearance, events in their order within each.

    >>> group_by_chain([("county:1", "a"), ("ministry", "b"), ("county:1", "c")])
    {'county:1': [('county:1', 'a'), ('county:1', 'c')], 'ministry': [('ministry', 'b')]}
    """
    groups: dict[str, list[_Event]] = {}
    known: dict[str, str] = {}  # operator -> chain: bulk runs repeat a few operators
    for event in events:
        operator = event[0]
        chain = known.get(operator)
        if chain is None:
            if len(known) > 256:
                known.clear()
            chain = known[operator] = chain_of(operator)
        group = groups.get(chain)
        if group is None:
            group = groups[chain] = []
        group.append(event)
    return groups


def anchor(heads: Mapping[str, ChainHead]) -> str:
    r"""SHA-256 (hex) over every chain head: one value that names the whole log's state.

    Each head is the line ``chain``, a tab, ``seq``, a tab, ``hash``; the lines are
    sorted and each is hashed followed by a newline (UTF-8).  An anchor kept outside
    the store shows later whether the log changed: appending moves a head and so
    changes the anchor; so does any edit that a chain's verification would miss
    (the last entry re-sealed, a chain's end cut off together with its head).

    >>> a = anchor({"county:110105": (3, "ab"), "ministry": (1, "cd")})
    >>> a == anchor({"ministry": (1, "cd"), "county:110105": (3, "ab")}), len(a)
    (True, 64)
    >>> a == hashlib.sha256(b"county:110105\t3\tab\nministry\t1\tcd\n").hexdigest()
    True
    >>> anchor({}) == hashlib.sha256(b"").hexdigest()
    True
    """
    h = hashlib.sha256()
    for line in sorted(f"{chain}\t{seq}\t{digest}" for chain, (seq, digest) in heads.items()):
        h.update(f"{line}\n".encode())
    return h.hexdigest()


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
    """The fields of ``entry`` that the hash covers, with ``prev_hash`` as given
    (``chain`` only when it is not empty: entries of the chain ``""`` hash as before).

    >>> e = AuditEntry(1, datetime(2025, 9, 1), "ministry", "x", "y")
    >>> sorted(entry_fields(e, ""))
    ['action', 'after', 'at', 'before', 'operator', 'prev_hash', 'reason', 'seq', 'subject']
    >>> "chain" in entry_fields(attrs.evolve(e, chain="ministry"), "")
    True
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
        entry.chain,
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
    chain: str = "",
) -> dict[str, Any]:
    fields = {
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
    if chain:
        fields["chain"] = chain
    return fields


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
    chain: str = "",
) -> str:
    """``canonical_json`` of :func:`_hashed_fields`, the top level written out in its key
    order (the text hashed for every entry of a bulk import).

    >>> f = (3, "2025-09-01T00:00:00+00:00", "ministry", "x", "s", "", {}, {"b": [1], "名": 2}, "h")
    >>> _canonical_text(*f) == canonical_json(_hashed_fields(*f))
    True
    >>> _canonical_text(*f, "ministry") == canonical_json(_hashed_fields(*f, "ministry"))
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
        or type(chain) is not str
    ):
        return _CANONICAL(
            _hashed_fields(
                seq, at_text, operator, action, subject, reason, before, after, prev_hash, chain
            )
        )
    s = _CANONICAL  # a str is encoded as a JSON string, as inside a document
    return (
        f'{{"action":{s(action)},"after":{s(after) if after else "{}"},"at":{s(at_text)},'
        f'"before":{s(before) if before else "{}"},{_chain_text(chain)}"operator":{s(operator)},'
        f'"prev_hash":{s(prev_hash)},"reason":{s(reason)},"seq":{seq},"subject":{s(subject)}}}'
    )


def _chain_text(chain: str) -> str:
    """The ``"chain"`` member of the canonical text with its comma (nothing for ``""``)."""
    return f'"chain":{_CANONICAL(chain)},' if chain else ""


def chain_hash(prev_hash: str, entry: AuditEntry, key: AuditKey | None = None) -> str:
    """SHA-256 (hex) of the canonical JSON of ``entry`` linked to ``prev_hash`` — or, with
    ``key``, its HMAC under the key as stored: ``KEYID:MAC`` (see :class:`AuditKey`).

    ``entry.prev_hash`` and ``entry.hash`` are ignored: the link is the argument.

    >>> e = AuditEntry(1, datetime(2025, 9, 1), "ministry", "export", "all")
    >>> chain_hash("", e) == chain_hash("", attrs.evolve(e, hash="x"))
    True
    >>> chain_hash("", e) == chain_hash("0" * 64, e)
    False
    >>> key = AuditKey(b"0123456789abcdef-demo")
    >>> keyed = chain_hash("", e, key)
    >>> key_id_of(keyed) == key.id, keyed == chain_hash("", e)
    (True, False)
    """
    return _digest(canonical_json(entry_fields(entry, prev_hash)), key)


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


def seal(entry: AuditEntry, prev: AuditEntry | None, key: AuditKey | None = None) -> AuditEntry:
    """Link ``entry`` to ``prev`` (the current last entry of its chain, ``None`` for the
    first one), sealed under ``key`` when given (:func:`chain_hash`).

    Sets ``prev_hash`` and ``hash``; raises
    :class:`~studentstatus.errors.ValidationError` (code ``audit_sequence``)
    unless ``entry.seq`` is ``prev.seq + 1`` (``1`` for the first entry), and
    (code ``audit_chain``) when ``prev`` is of another chain.

    >>> seal(AuditEntry(2, datetime(2025, 9, 1), "ministry", "export", "all"), None)
    Traceback (most recent call last):
    ...
    studentstatus.errors.ValidationError: audit_sequence [seq]: ...
    >>> first = seal(AuditEntry(1, datetime(2025, 9, 1), "ministry", "x", "y"), None)
    >>> seal(AuditEntry(2, datetime(2025, 9, 1), "ministry", "x", "y", chain="ministry"), first)
    Traceback (most recent call last):
    ...
    studentstatus.errors.ValidationError: audit_chain [chain]: ...
    """
    if prev is not None and prev.chain != entry.chain:
        raise _other_chain(entry.chain, prev.chain)
    expected = prev.seq + 1 if prev is not None else 1
    if entry.seq != expected:
        raise ValidationError(
            f"the audit entry must have seq {expected}, not {entry.seq}",
            field="seq",
            message_zh=f"审计记录序号应为 {expected}，而不是 {entry.seq}",
            code="audit_sequence",
        )
    prev_hash = prev.hash if prev is not None else ""
    return attrs.evolve(entry, prev_hash=prev_hash, hash=chain_hash(prev_hash, entry, key))


def _other_chain(chain: str, prev_chain: str) -> ValidationError:
    return ValidationError(
        f"an entry of chain {chain!r} cannot follow an entry of chain {prev_chain!r}",
        field="chain",
        message_zh="审计记录不能接在另一条链之后",
        code="audit_chain",
    )


def _start(prev: AuditEntry | ChainHead | None, chain: str | None) -> tuple[int, str, str]:
    """``(seq, hash, chain)`` to seal after: ``prev`` as an entry or a head."""
    if prev is None:
        return 0, "", chain or ""
    if isinstance(prev, AuditEntry):
        if chain is not None and chain != prev.chain:
            raise _other_chain(chain, prev.chain)
        return prev.seq, prev.hash, prev.chain
    seq, digest = prev
    return seq, digest, chain or ""


def seal_events(
    prev: AuditEntry | ChainHead | None,
    at: datetime,
    events: Iterable[tuple[str, str, str, str, Mapping[str, Any], Mapping[str, Any]]],
    *,
    chain: str | None = None,
    key: AuditKey | None = None,
) -> Iterator[AuditEntry]:
    """Sealed entries for ``events`` — ``(operator, action, subject, reason, before, after)``
    tuples, all at ``at`` — appended to ONE chain after ``prev``: its last entry, its
    head ``(seq, hash)``, or ``None`` when the chain is empty.

    ``chain`` names the chain (default: ``prev``'s chain, else ``""``); ``key``
    seals the entries under the host's key (:class:`AuditKey`); a
    ``prev`` entry of another chain raises
    :class:`~studentstatus.errors.ValidationError`.  The events are not checked
    against the chain: give each chain the events of its operators
    (:func:`group_by_chain`), as ``services.audit.audit_fields`` does.

    The same entries, hashes included, as building each :class:`AuditEntry`
    with the next ``seq`` and passing it to :func:`seal`; made for bulk work
    (the time is formatted once, each entry is built once).

    >>> t = datetime(2025, 9, 1, 8, 0, tzinfo=UTC)
    >>> a, b = seal_events(None, t, [("ministry", "x", "s1", "", {}, {}),
    ...                              ("ministry", "y", "s2", "", {}, {"n": 1})], chain="ministry")
    >>> (a.seq, b.seq, b.prev_hash == a.hash, b.chain)
    (1, 2, True, 'ministry')
    >>> b == seal(AuditEntry(2, t, "ministry", "y", "s2", after={"n": 1}, chain="ministry"), a)
    True
    >>> [c] = seal_events((2, b.hash), t, [("ministry", "z", "s3", "", {}, {})], chain="ministry")
    >>> c == next(seal_events(b, t, [("ministry", "z", "s3", "", {}, {})]))
    True
    """
    for (
        seq, operator, action, subject, reason, before, after, prev_hash, digest, name
    ) in seal_rows(prev, at, events, chain=chain, key=key):  # fmt: skip
        yield AuditEntry(
            seq, at, operator, action, subject, reason, dict(before), dict(after), prev_hash,
            digest, name,
        )  # fmt: skip


SealedRow = tuple[int, str, str, str, str, dict[str, Any], dict[str, Any], str, str, str]
"""The fields of a sealed entry, in :class:`AuditEntry` order without ``at``: ``(seq,
operator, action, subject, reason, before, after, prev_hash, hash, chain)``."""


def seal_rows(
    prev: AuditEntry | ChainHead | None,
    at: datetime,
    events: Iterable[tuple[str, str, str, str, Mapping[str, Any], Mapping[str, Any]]],
    *,
    chain: str | None = None,
    key: AuditKey | None = None,
) -> Iterator[SealedRow]:
    """What :func:`seal_events` makes, as plain tuples (:data:`SealedRow`): for a storage
    adapter that writes the entries of a bulk run without building an object of each.

    ``before`` and ``after`` are the events' own dicts (not copies; any other
    mapping becomes a dict): write them before changing them.

    >>> t = datetime(2025, 9, 1, 8, 0, tzinfo=UTC)
    >>> events = [("ministry", "x", "s1", "", {}, {"n": 1})]
    >>> (row,) = seal_rows(None, t, events, chain="ministry")
    >>> row[:7], row[9], row[8] == next(seal_events(None, t, events, chain="ministry")).hash
    ((1, 'ministry', 'x', 's1', '', {}, {'n': 1}), 'ministry', True)
    """
    seq, prev_hash, name = _start(prev, chain)
    at_text = _at_text(at)
    sha256 = hashlib.sha256
    sealed = key.seal if key is not None else None
    s = _CANONICAL
    at_json = s(at_text)
    chain_json = _chain_text(name) if type(name) is str else None
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
            and chain_json is not None
        ):
            if len(known) > 256:
                known.clear()
            op = known.get(operator) or known.setdefault(operator, s(operator))
            act = known.get(action) or known.setdefault(action, s(action))
            why = known.get(reason) or known.setdefault(reason, s(reason))
            # _canonical_text, with the repeated parts' text at hand
            text = (
                f'{{"action":{act},"after":{s(after) if after else "{}"},"at":{at_json},'
                f'"before":{s(before) if before else "{}"},{chain_json}"operator":{op},'
                f'"prev_hash":{string(prev_hash)},"reason":{why},"seq":{seq},'
                f'"subject":{string(subject)}}}'
            )
        else:
            text = _canonical_text(
                seq, at_text, operator, action, subject, reason, before, after, prev_hash, name
            )
        digest = sha256(text.encode("utf-8")).hexdigest() if sealed is None else sealed(text)
        yield (seq, operator, action, subject, reason, before, after, prev_hash, digest, name)
        prev_hash = digest


@attrs.frozen
class AuditFinding:
    """One thing verification found beyond a broken chain — a checkpoint that does not
    match, a record that its change log does not give, an event without its audit entry:
    a stable ``code``, the ``field`` concerned, and messages in Chinese and English.

    ``record_id`` names the record concerned (never an identity number); ``chain`` and
    ``seq`` the audit entry, when there is one.

    >>> f = AuditFinding("replay_mismatch", "grade", "学籍与变动记录重放结果不符",
    ...                  "the record is not what its change log gives", record_id="r1")
    >>> f.to_dict()["code"], str(f)[:45]
    ('replay_mismatch', 'replay_mismatch [grade] record r1: the record')
    """

    code: str
    field: str
    message_zh: str
    message_en: str
    record_id: str | None = None
    chain: str | None = None
    seq: int | None = None
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping (every attribute)."""
        return {
            "code": self.code,
            "field": self.field,
            "message_zh": self.message_zh,
            "message_en": self.message_en,
            "record_id": self.record_id,
            "chain": self.chain,
            "seq": self.seq,
            "detail": self.detail,
        }

    def __str__(self) -> str:
        where = f" record {self.record_id}" if self.record_id is not None else ""
        if self.chain is not None:
            where += f" chain {self.chain!r}" + (f" seq {self.seq}" if self.seq else "")
        detail = f" ({self.detail})" if self.detail else ""
        return f"{self.code} [{self.field}]{where}: {self.message_en} / {self.message_zh}{detail}"


@attrs.frozen
class ChainReport:
    """Result of :func:`verify_chain` (and of ``services.audit.verify``).

    Attributes:
        ok: every chain verified (and matched its stored head, when heads were given,
            and the checkpoint, when one was given), and nothing was found.
        checked: entries verified good before the first problem (all of them when ok).
        first_bad_seq: where the broken chain first breaks: the seq of the altered
            entry, of the (first) missing entry, of the first entry out of its place,
            or of the first entry past the chain's stored head.
        problem: a :data:`ChainProblem` or ``None``.
        chain: the broken chain's name (``None`` when ok).
        chains: how many chains were verified (seen before the problem, when broken).
        heads: when ok, each chain's head ``(seq, hash)`` as verified.
        anchor: when ok, :func:`anchor` of ``heads``; else ``""``.
        key_id: the id of the key verified with (``""``: none given).
        keyed: entries whose MAC was checked under that key.
        unkeyed: entries sealed with the public SHA-256 (no key).
        unchecked: entries sealed under a key that was not given: their links were
            checked, their content could not be.
        key_ids: the ids of every key that sealed an entry seen.
        findings: what else verification found (:class:`AuditFinding`).
        replayed: records replayed from their change log (``None``: no replay).

    >>> ChainReport(True, 0).to_dict()["ok"]
    True
    >>> ChainReport(False, 2, 3, "removed", "c").code
    'audit_removed'
    """

    ok: bool
    checked: int
    first_bad_seq: int | None = None
    problem: ChainProblem | None = None
    chain: str | None = None
    chains: int = 0
    heads: Mapping[str, ChainHead] = attrs.field(factory=dict, repr=False)
    anchor: str = attrs.field(default="", repr=False)
    key_id: str = attrs.field(default="", repr=False)
    keyed: int = attrs.field(default=0, repr=False)
    unkeyed: int = attrs.field(default=0, repr=False)
    unchecked: int = attrs.field(default=0, repr=False)
    key_ids: tuple[str, ...] = attrs.field(default=(), repr=False)
    findings: tuple[AuditFinding, ...] = attrs.field(default=(), repr=False)
    replayed: int | None = attrs.field(default=None, repr=False)

    @property
    def code(self) -> str | None:
        """The stable code of the chain problem: ``audit_`` + :attr:`problem` (or ``None``)."""
        return f"audit_{self.problem}" if self.problem is not None else None

    @property
    def message_en(self) -> str:
        """What the chain problem means, in English (``""`` when none)."""
        return PROBLEM_MESSAGES[self.problem][0] if self.problem is not None else ""

    @property
    def message_zh(self) -> str:
        """What the chain problem means, in Chinese (``""`` when none)."""
        return PROBLEM_MESSAGES[self.problem][1] if self.problem is not None else ""

    def to_dict(self, *, with_heads: bool = False) -> dict[str, Any]:
        """A JSON-ready mapping of the report (``heads`` too with ``with_heads``: one
        member per chain, ``{"seq": …, "hash": …}``).

        >>> ChainReport(False, 2, 3, "removed", "county:110105").to_dict()["problem"]
        'removed'
        >>> ChainReport(True, 1, heads={"m": (1, "ab")}).to_dict(with_heads=True)["heads"]
        {'m': {'seq': 1, 'hash': 'ab'}}
        """
        out: dict[str, Any] = {
            "ok": self.ok,
            "checked": self.checked,
            "first_bad_seq": self.first_bad_seq,
            "problem": self.problem,
            "code": self.code,
            "message_zh": self.message_zh,
            "message_en": self.message_en,
            "chain": self.chain,
            "chains": self.chains,
            "anchor": self.anchor,
            "keyed": bool(self.key_ids),
            "key_id": self.key_id,
            "key_ids": list(self.key_ids),
            "entries_keyed": self.keyed,
            "entries_unkeyed": self.unkeyed,
            "entries_unchecked": self.unchecked,
            "replayed": self.replayed,
            "findings": [f.to_dict() for f in self.findings],
        }
        if with_heads:
            out["heads"] = {c: {"seq": s, "hash": h} for c, (s, h) in sorted(self.heads.items())}
        return out


def _seq_appears(rest: Iterator[AuditEntry], chain: str, seq: int) -> bool:
    return any(e.seq == seq and e.chain == chain for e in rest)


def verify_chain(
    entries: Iterable[AuditEntry],
    *,
    after: AuditEntry | None = None,
    head_hash: str | None = None,
    heads: Mapping[str, ChainHead] | None = None,
    heads_after: Mapping[str, ChainHead] | Callable[[], Mapping[str, ChainHead]] | None = None,
    key: AuditKey | None = None,
    checkpoint: Mapping[str, ChainHead] | None = None,
    unkeyed_until: Mapping[str, int] | int | None = None,
) -> ChainReport:
    """Check every chain in ``entries``; report the first break, its kind and its chain.

    Each entry is checked against the entry before it *in its chain* (chains are
    told apart by ``entry.chain``; a store lists them chain by chain, but any
    order that keeps each chain's own order verifies):

    * **altered** — an entry's hash does not match its content (any field edited,
      including ``seq``, ``chain``, ``prev_hash`` or ``hash``), or the next entry's
      ``prev_hash`` does not match an entry whose hash was recomputed after an edit;
    * **removed** — the expected seq is missing (the next entry of the chain skips it
      and it does not appear later), or the chain ends before its head (entries at its
      end were cut off);
    * **reordered** — an entry is out of place: the expected seq appears later
      (or a seq appears twice);
    * **added** — a chain goes on past its stored head, or has entries but no head;
    * with ``key``: **unkeyed** — an entry is sealed with the public SHA-256 (an entry
      edited and re-sealed by someone without the key), unless ``unkeyed_until`` lets
      its chain begin with unkeyed entries up to that seq (a log keyed only from some
      point on, vouched for by a checkpoint signed with the key: never after a keyed
      entry of the chain; an ``int``: that seq in every chain); **other_key** — an
      entry is sealed under another key (its id is not ``key.id``);
    * with ``checkpoint`` (chain → ``(seq, hash)`` kept earlier): **rewritten** — the
      chain's entry at that seq has another hash; **truncated** — the chain now ends
      before that seq; **missing** — the chain has no entries at all.

    Without ``key``, entries sealed under a key can only be checked for their place
    and links (``ChainReport.unchecked`` counts them).

    ``heads`` are the stored heads (``AuditLog.heads()``): each chain must end
    exactly at its head (``(seq, hash)``; a head of seq 0 is no head).  When the log
    may grow while it is read (a database that reads each statement afresh), read the
    heads before the entries and again after them, as ``heads_after`` (or pass a
    function that reads them: it is called after the last entry): a chain may then
    end anywhere from its first head to its second (and must match a head it ends
    at).  ``head_hash`` is the last hash you trust of the chain verified (the
    only one, or the last one in ``entries``): a chain cut off at its end is still a
    valid chain, and this catches it (as ``"removed"`` — or the last entry was
    edited and re-sealed, which a chain alone cannot tell apart).

    ``after`` verifies a segment continuing a trusted entry (of its chain); the
    entries are streamed, so a long log is never held in memory.

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
    ChainReport(ok=False, checked=2, first_bad_seq=3, problem='removed', chain='', chains=1)
    >>> verify_chain([c], after=b).ok
    True

    Two chains verify independently; the stored heads catch a cut-off end:

    >>> k = seal(AuditEntry(1, t, "kindergarten:1", "x", "s", chain="kindergarten:1"), None)
    >>> report = verify_chain([a, b, c, k])
    >>> report.chains, report.heads == {"": (3, c.hash), "kindergarten:1": (1, k.hash)}
    (2, True)
    >>> report.anchor == anchor(report.heads)
    True
    >>> verify_chain([a, b, k], heads=report.heads)
    ChainReport(ok=False, checked=3, first_bad_seq=3, problem='removed', chain='', chains=2)
    >>> verify_chain([a, b, c], heads=report.heads).problem  # a chain without its entries
    'removed'
    >>> verify_chain([a, b, c, k], heads={"": (2, b.hash), "kindergarten:1": (1, k.hash)}).problem
    'added'

    A keyed chain: an entry edited and re-sealed with the public hash, or under a wrong
    key, is found with the key; a checkpoint finds a chain cut back with its head:

    >>> key = AuditKey(b"0123456789abcdef-demo")
    >>> ka = seal(AuditEntry(1, t, "m", "x", "s1"), None, key)
    >>> kb = seal(AuditEntry(2, t, "m", "x", "s2"), ka, key)
    >>> verify_chain([ka, kb], key=key).ok, verify_chain([ka, kb]).unchecked
    (True, 2)
    >>> forged = seal(attrs.evolve(kb, reason="edited"), ka)  # re-sealed without the key
    >>> verify_chain([ka, forged]).ok, verify_chain([ka, forged], key=key).problem
    (True, 'unkeyed')
    >>> wrong = seal(attrs.evolve(kb, reason="edited"), ka, AuditKey(b"another key, guessed"))
    >>> verify_chain([ka, wrong], key=key).problem
    'other_key'
    >>> verify_chain([ka], key=key, checkpoint={"": (2, kb.hash)}).problem
    'truncated'
    """
    it = iter(entries)
    last: dict[str, ChainHead] = {}  # chain -> (seq, hash) of its last good entry
    counted: set[str] = set()  # chains whose last good entry is one of ``entries``
    current = ""
    if after is not None:
        last[after.chain] = (after.seq, after.hash)
        current = after.chain
    checked = 0
    tally = _Tally(key)
    vouched: Mapping[str, int] = unkeyed_until if isinstance(unkeyed_until, Mapping) else {}
    everywhere = unkeyed_until if isinstance(unkeyed_until, int) else 0
    marks = checkpoint or {}

    def broken(seq: int | None, problem: ChainProblem, chain: str, good: int) -> ChainReport:
        return tally.report(False, good, seq, problem, chain, len(last))

    for entry in it:
        chain = current = entry.chain
        prev_seq, prev_hash = last.get(chain, (0, ""))
        expected_seq = prev_seq + 1
        digest = entry.hash
        key_id = key_id_of(digest)
        if key_id:
            tally.ids.add(key_id)
            if key is not None and key_id == key.id:
                if chain_hash(entry.prev_hash, entry, key) != digest:
                    return broken(expected_seq, "altered", chain, checked)
            elif key is None:
                tally.unchecked += 1
        elif chain_hash(entry.prev_hash, entry) != digest:
            return broken(expected_seq, "altered", chain, checked)
        if entry.seq != expected_seq:
            if entry.seq > expected_seq and not _seq_appears(it, chain, expected_seq):
                return broken(expected_seq, "removed", chain, checked)
            return broken(expected_seq, "reordered", chain, checked)
        if entry.prev_hash != prev_hash:
            # In place and self-consistent, but linked to a different predecessor:
            # the predecessor was edited and its hash recomputed.
            bad = prev_seq if chain in last else entry.seq
            good = checked - 1 if chain in counted else checked
            return broken(bad, "altered", chain, good)
        if key is not None:
            if not key_id:
                # only a chain's unkeyed beginning (before its first keyed entry) can be vouched
                allowed = everywhere or vouched.get(chain, 0)
                if entry.seq > allowed or chain in tally.keyed_chains:
                    return broken(entry.seq, "unkeyed", chain, checked)
            elif key_id != key.id:
                return broken(entry.seq, "other_key", chain, checked)
            else:
                tally.keyed += 1
                tally.keyed_chains.add(chain)
        if not key_id:
            tally.unkeyed += 1
        mark = marks.get(chain)
        if mark is not None and mark[0] == entry.seq and mark[1] != digest:
            return broken(entry.seq, "rewritten", chain, checked)
        last[chain] = (entry.seq, digest)
        counted.add(chain)
        checked += 1
    if head_hash is not None:
        seq, digest = last.get(current, (0, ""))
        if digest != head_hash:
            return broken(seq + 1, "removed", current, checked)
    if heads is not None:
        later = heads_after() if callable(heads_after) else heads_after
        found = _against_heads(last, heads, heads if later is None else later)
        if found is not None:
            chain, seq, problem = found
            return broken(seq, problem, chain, checked)
    for chain, (seq, _digest) in sorted(marks.items()):
        if seq <= 0:
            continue
        if chain not in last:
            return broken(1, "missing", chain, checked)
        if last[chain][0] < seq:
            return broken(last[chain][0] + 1, "truncated", chain, checked)
    return tally.report(True, checked, None, None, None, len(last), heads=last)


class _Tally:
    """What :func:`verify_chain` counts of the keys while it reads."""

    __slots__ = ("ids", "key", "keyed", "keyed_chains", "unchecked", "unkeyed")

    def __init__(self, key: AuditKey | None) -> None:
        self.key = key
        self.ids: set[str] = set()
        self.keyed_chains: set[str] = set()
        self.keyed = 0
        self.unkeyed = 0
        self.unchecked = 0

    def report(
        self,
        ok: bool,
        checked: int,
        seq: int | None,
        problem: ChainProblem | None,
        chain: str | None,
        chains: int,
        *,
        heads: Mapping[str, ChainHead] | None = None,
    ) -> ChainReport:
        return ChainReport(
            ok,
            checked,
            seq,
            problem,
            chain,
            chains,
            heads=heads if heads is not None else {},
            anchor=anchor(heads) if heads is not None else "",
            key_id=self.key.id if self.key is not None else "",
            keyed=self.keyed,
            unkeyed=self.unkeyed,
            unchecked=self.unchecked,
            key_ids=tuple(sorted(self.ids)),
        )


def _against_heads(
    last: Mapping[str, ChainHead], low: Mapping[str, ChainHead], high: Mapping[str, ChainHead]
) -> tuple[str, int, ChainProblem] | None:
    """The first chain (by name) whose verified end does not fit its stored heads:
    ``(chain, first bad seq, problem)``; ``None`` when every chain fits."""
    for chain in sorted(set(last) | set(low) | set(high)):
        seq, digest = last.get(chain, (0, ""))
        lo = low.get(chain, (0, ""))
        hi = high.get(chain, lo)
        if seq < lo[0]:
            return chain, seq + 1, "removed"
        if seq > max(hi[0], lo[0]):
            return chain, max(hi[0], lo[0]) + 1, "added"
        if (seq == lo[0] and seq and digest != lo[1]) or (seq == hi[0] and seq and digest != hi[1]):
            return chain, seq, "altered"
    return None
