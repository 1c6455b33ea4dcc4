"""Audit hash chains: sealing, canonical JSON, chains per scope, heads and the anchor, and
tamper detection at the right seq of the right chain."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from studentstatus.domain.audit import (
    CHAIN_MAX,
    ChainReport,
    anchor,
    canonical_json,
    chain_hash,
    chain_of,
    entry_fields,
    group_by_chain,
    seal,
    seal_events,
    seal_rows,
    verify_chain,
)
from studentstatus.domain.model import AuditEntry
from studentstatus.errors import ValidationError

T0 = datetime(2025, 9, 1, 8, 0, tzinfo=UTC)

json_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(10**9), 10**9), st.text(max_size=8)
)
field_values = st.dictionaries(st.text(min_size=1, max_size=6), json_scalars, max_size=3)
bodies = st.fixed_dictionaries(
    {
        "operator": st.sampled_from(["county:110105", "kindergarten:1111000001", "ministry"]),
        "action": st.sampled_from(["approve_record", "register", "issue_numbers", "导出"]),
        "subject": st.text(min_size=1, max_size=10),
        "reason": st.text(max_size=10),
        "before": field_values,
        "after": field_values,
        "minutes": st.integers(0, 10_000),
    }
)


def build_chain(items: list[dict[str, Any]]) -> list[AuditEntry]:
    """Seal a chain from generated bodies."""
    chain: list[AuditEntry] = []
    prev: AuditEntry | None = None
    for i, body in enumerate(items, start=1):
        entry = AuditEntry(
            seq=i,
            at=T0 + timedelta(minutes=body["minutes"]),
            operator=body["operator"],
            action=body["action"],
            subject=body["subject"],
            reason=body["reason"],
            before=body["before"],
            after=body["after"],
        )
        prev = seal(entry, prev)
        chain.append(prev)
    return chain


chains = st.lists(bodies, min_size=2, max_size=10).map(build_chain)


def _changed(entry: AuditEntry, field: str) -> AuditEntry:
    """``entry`` with one field given a different value."""
    value = getattr(entry, field)
    new: object
    if field == "seq":
        new = value + 7
    elif field == "at":
        new = value + timedelta(seconds=1)
    elif field in ("before", "after"):
        new = {**value, "\x00tampered": True}
    elif field in ("prev_hash", "hash"):
        new = ("0" if not value.startswith("0") else "1") + value[1:]
    else:
        new = value + "x"
    return attrs.evolve(entry, **{field: new})  # type: ignore[arg-type]


FIELDS = ["seq", "at", "operator", "action", "subject", "reason", "before", "after"]


class TestFixed:
    """Hand-checked properties of the hash."""

    def test_hash_is_sha256_of_the_canonical_json(self) -> None:
        """The documented recipe reproduces the hash, independently of this module."""
        e = seal(AuditEntry(1, T0, "ministry", "export", "全部", reason="年报"), None)
        text = (
            '{"action":"export","after":{},"at":"2025-09-01T08:00:00+00:00","before":{},'
            '"operator":"ministry","prev_hash":"","reason":"年报","seq":1,"subject":"全部"}'
        )
        assert canonical_json(entry_fields(e, "")) == text
        assert e.hash == hashlib.sha256(text.encode()).hexdigest()

    def test_same_instant_in_another_zone_verifies(self) -> None:
        """A store that returns the instant in UTC+8 still verifies."""
        e = seal(AuditEntry(1, T0, "ministry", "export", "all"), None)
        cst = timezone(timedelta(hours=8))
        moved = attrs.evolve(e, at=T0.astimezone(cst))
        assert verify_chain([moved]).ok

    def test_seal_checks_the_sequence(self) -> None:
        """seq must continue the chain; the first entry is seq 1."""
        first = seal(AuditEntry(1, T0, "m", "a", "s"), None)
        with pytest.raises(ValidationError) as info:
            seal(AuditEntry(3, T0, "m", "a", "s"), first)
        assert info.value.code == "audit_sequence"
        with pytest.raises(ValidationError):
            seal(AuditEntry(0, T0, "m", "a", "s"), None)

    def test_chain_hash_ignores_the_stored_link_fields(self) -> None:
        """Only the prev_hash argument links; stored prev_hash/hash are not hashed twice."""
        e = AuditEntry(1, T0, "m", "a", "s", prev_hash="zz", hash="yy")
        assert chain_hash("", e) == chain_hash("", attrs.evolve(e, prev_hash="", hash=""))

    def test_empty_chain_is_ok(self) -> None:
        """Nothing to check is not a failure (unless a head hash is expected)."""
        report = verify_chain([])
        assert (report.ok, report.checked, report.chains, report.heads) == (True, 0, 0, {})
        assert report.anchor == hashlib.sha256(b"").hexdigest()
        assert verify_chain([], head_hash="ab").problem == "removed"

    def test_non_json_values_are_refused(self) -> None:
        """A value that has no canonical JSON form is an error, not a silent str()."""
        with pytest.raises(TypeError):
            canonical_json({"x": object()})

    def test_report_to_dict(self) -> None:
        """The report is JSON-ready."""
        doc = ChainReport(False, 3, 4, "altered", "county:110105", 2).to_dict()
        assert {k: doc[k] for k in list(doc)[:5]} == {
            "ok": False,
            "checked": 3,
            "first_bad_seq": 4,
            "problem": "altered",
            "code": "audit_altered",
        }
        assert (doc["chain"], doc["chains"], doc["anchor"]) == ("county:110105", 2, "")
        assert (doc["keyed"], doc["key_id"], doc["findings"], doc["replayed"]) == (
            False, "", [], None,
        )  # fmt: skip
        assert doc["message_zh"]
        assert doc["message_en"]


def test_untouched_chains_verify() -> None:
    """A sealed chain verifies, with and without its head hash and as a continued segment."""

    @given(chains)
    def check(chain: list[AuditEntry]) -> None:
        report = verify_chain(chain)
        assert (report.ok, report.checked, report.chains) == (True, len(chain), 1)
        assert report.heads == {"": (len(chain), chain[-1].hash)}
        assert verify_chain(chain, heads=report.heads).ok
        assert verify_chain(chain, head_hash=chain[-1].hash).ok
        assert verify_chain(chain[1:], after=chain[0]).ok

    check()


def test_any_single_field_edit_is_detected_at_its_seq() -> None:
    """Editing one field of entry k (hash fields included) reports 'altered' at k."""

    @given(chains, st.data())
    def check(chain: list[AuditEntry], data: st.DataObject) -> None:
        k = data.draw(st.integers(1, len(chain)))
        field = data.draw(st.sampled_from([*FIELDS, "prev_hash", "hash"]))
        tampered = list(chain)
        tampered[k - 1] = _changed(chain[k - 1], field)
        report = verify_chain(tampered)
        assert (report.ok, report.problem, report.first_bad_seq) == (False, "altered", k)
        assert report.checked == k - 1

    check()


def test_an_edit_with_a_recomputed_hash_is_detected_at_its_seq() -> None:
    """Re-sealing an edited entry k < last breaks the next link: 'altered' at k."""

    @given(chains, st.data())
    def check(chain: list[AuditEntry], data: st.DataObject) -> None:
        k = data.draw(st.integers(1, len(chain) - 1))
        field = data.draw(st.sampled_from(["operator", "action", "subject", "reason", "after"]))
        edited = _changed(chain[k - 1], field)
        tampered = list(chain)
        tampered[k - 1] = seal(edited, chain[k - 2] if k > 1 else None)
        report = verify_chain(tampered)
        assert (report.problem, report.first_bad_seq) == ("altered", k)

    check()


def test_a_removed_entry_is_detected_at_its_seq() -> None:
    """Removing entry k reports 'removed' at k (the last one needs the head hash)."""

    @given(chains, st.data())
    def check(chain: list[AuditEntry], data: st.DataObject) -> None:
        k = data.draw(st.integers(1, len(chain)))
        shorter = chain[: k - 1] + chain[k:]
        report = verify_chain(shorter, head_hash=chain[-1].hash)
        assert (report.ok, report.problem, report.first_bad_seq) == (False, "removed", k)
        if k < len(chain):
            assert verify_chain(shorter).first_bad_seq == k

    check()


def test_swapped_entries_are_detected_at_the_first_displaced_seq() -> None:
    """Swapping entries i < j reports 'reordered' at i."""

    @given(chains, st.data())
    def check(chain: list[AuditEntry], data: st.DataObject) -> None:
        i = data.draw(st.integers(1, len(chain) - 1))
        j = data.draw(st.integers(i + 1, len(chain)))
        swapped = list(chain)
        swapped[i - 1], swapped[j - 1] = swapped[j - 1], swapped[i - 1]
        report = verify_chain(swapped)
        assert (report.ok, report.problem, report.first_bad_seq) == (False, "reordered", i)

    check()


def test_a_replayed_entry_is_detected() -> None:
    """An entry appended twice is out of sequence."""

    @given(chains, st.data())
    def check(chain: list[AuditEntry], data: st.DataObject) -> None:
        k = data.draw(st.integers(1, len(chain)))
        replayed = [*chain[:k], chain[k - 1], *chain[k:]]
        report = verify_chain(replayed)
        assert not report.ok
        assert report.first_bad_seq == k + 1

    check()


@given(
    events=st.lists(
        st.tuples(*[st.text(max_size=5)] * 4, field_values, field_values),
        max_size=6,
    ),
    start=st.integers(0, 3),
    offset_hours=st.sampled_from([None, 0, 8, -5]),
    micro=st.integers(0, 999_999),
    chain=st.sampled_from(["", "county:110105", "名\t\\"]),
)
def test_seal_events_equals_sealing_one_entry_at_a_time(
    events: list[tuple[str, str, str, str, dict[str, Any], dict[str, Any]]],
    start: int,
    offset_hours: int | None,
    micro: int,
    chain: str,
) -> None:
    tz = None if offset_hours is None else timezone(timedelta(hours=offset_hours))
    at = datetime(2025, 9, 1, 8, 0, 0, micro, tzinfo=tz)
    prev: AuditEntry | None = None
    for i in range(start):  # an existing chain to append to
        prev = seal(AuditEntry(i + 1, T0, "ministry", "seed", f"s{i}", chain=chain), prev)
    expected: list[AuditEntry] = []
    last = prev
    for operator, action, subject, reason, before, after in events:
        seq = last.seq + 1 if last is not None else 1
        entry = AuditEntry(seq, at, operator, action, subject, reason, before, after, chain=chain)
        last = seal(entry, last)
        expected.append(last)
    assert list(seal_events(prev, at, events, chain=chain)) == expected
    if prev is not None:  # after the chain's head: the same entries
        assert list(seal_events((prev.seq, prev.hash), at, events, chain=chain)) == expected
        assert list(seal_events(prev, at, events)) == expected  # the chain of prev


# ------------------------------------------------------------------ chains, heads, anchor


class TestChains:
    """One chain per writer scope: names, grouping, hashing and sealing."""

    def test_chain_of_is_the_operator_text(self) -> None:
        """role:scope and bare names are their own chain; long texts are cut and hashed."""
        for op in ("county:110105", "kindergarten:1111000001", "province:44", "ministry", ""):
            assert chain_of(op) == op
        a, b = chain_of("x" * 65), chain_of("x" * 66)
        assert len(a) == len(b) == CHAIN_MAX
        assert a != b
        assert chain_of("y" * CHAIN_MAX) == "y" * CHAIN_MAX

    def test_group_by_chain_keeps_the_order(self) -> None:
        """Chains in order of first appearance, events in their order within each."""
        events = [("county:1", 1), ("county:2", 2), ("county:1", 3), ("ministry", 4)]
        assert group_by_chain(events) == {
            "county:1": [("county:1", 1), ("county:1", 3)],
            "county:2": [("county:2", 2)],
            "ministry": [("ministry", 4)],
        }

    def test_the_chain_is_hashed_and_the_empty_chain_is_not(self) -> None:
        """A named chain adds its name to the canonical text; "" leaves it as it was."""
        e = AuditEntry(1, T0, "county:110105", "export", "all")
        named = attrs.evolve(e, chain="county:110105")
        text = canonical_json(entry_fields(named, ""))
        assert ',"before":{},"chain":"county:110105","operator":' in text
        assert "chain" not in canonical_json(entry_fields(e, ""))
        assert chain_hash("", named) == hashlib.sha256(text.encode()).hexdigest()
        assert chain_hash("", named) != chain_hash("", e)

    def test_an_entry_moved_to_another_chain_is_altered(self) -> None:
        """Changing an entry's chain breaks its hash."""
        a = seal(AuditEntry(1, T0, "county:1", "x", "s", chain="county:1"), None)
        moved = attrs.evolve(a, chain="county:2")
        report = verify_chain([moved])
        assert (report.problem, report.chain, report.first_bad_seq) == ("altered", "county:2", 1)

    def test_sealing_refuses_another_chain(self) -> None:
        """seal and seal_events refuse a predecessor of another chain."""
        a = seal(AuditEntry(1, T0, "county:1", "x", "s", chain="county:1"), None)
        with pytest.raises(ValidationError) as info:
            seal(AuditEntry(2, T0, "county:2", "x", "s", chain="county:2"), a)
        assert info.value.code == "audit_chain"
        with pytest.raises(ValidationError):
            list(seal_events(a, T0, [("county:2", "x", "s", "", {}, {})], chain="county:2"))

    def test_seal_rows_carry_the_chain(self) -> None:
        """The sealed rows end with the chain name; seq restarts at 1 in each chain."""
        rows = list(seal_rows(None, T0, [("m", "x", "s", "", {}, {})] * 2, chain="m"))
        assert [(r[0], r[9]) for r in rows] == [(1, "m"), (2, "m")]
        assert rows[1][7] == rows[0][8]


def _interleaved(draw: st.DrawFn) -> tuple[list[AuditEntry], dict[str, list[AuditEntry]]]:
    names = draw(st.lists(st.sampled_from(["", "county:110105", "county:110106", "ministry"]),
                          min_size=1, max_size=3, unique=True))  # fmt: skip
    per_chain: dict[str, list[AuditEntry]] = {}
    for name in names:
        n = draw(st.integers(1, 5))
        events = [(name or "legacy", "x", f"s{i}", "", {}, {"i": i}) for i in range(n)]
        per_chain[name] = list(seal_events(None, T0, events, chain=name))
    # any interleaving that keeps each chain's own order
    order = draw(st.permutations([c for c in names for _ in per_chain[c]]))
    cursors = dict.fromkeys(names, 0)
    merged: list[AuditEntry] = []
    for c in order:
        merged.append(per_chain[c][cursors[c]])
        cursors[c] += 1
    return merged, per_chain


interleavings = st.composite(_interleaved)()


def test_interleaved_chains_verify_independently() -> None:
    """Chains verify however they are interleaved; the report's heads are each chain's last
    entry; one tampered entry is reported in its chain at its seq."""

    @given(interleavings, st.data())
    def check(
        drawn: tuple[list[AuditEntry], dict[str, list[AuditEntry]]], data: st.DataObject
    ) -> None:
        merged, per_chain = drawn
        report = verify_chain(merged)
        heads = {c: (len(es), es[-1].hash) for c, es in per_chain.items()}
        assert (report.ok, report.checked, report.chains) == (True, len(merged), len(per_chain))
        assert report.heads == heads
        assert report.anchor == anchor(heads)
        assert verify_chain(merged, heads=heads).ok
        k = data.draw(st.integers(0, len(merged) - 1))
        tampered = list(merged)
        tampered[k] = attrs.evolve(merged[k], reason="edited")
        broken = verify_chain(tampered)
        assert (broken.problem, broken.chain, broken.first_bad_seq) == (
            "altered",
            merged[k].chain,
            merged[k].seq,
        )
        assert broken.checked == k

    check()


A_CHAIN = list(
    seal_events(None, T0, [("county:1", "x", f"s{i}", "", {}, {}) for i in range(3)],
                chain="county:1")
)  # fmt: skip
B_CHAIN = list(seal_events(None, T0, [("county:2", "x", "s", "", {}, {})], chain="county:2"))
HEADS = {"county:1": (3, A_CHAIN[-1].hash), "county:2": (1, B_CHAIN[-1].hash)}


class TestHeads:
    """The stored heads catch what a chain alone cannot."""

    def test_a_cut_off_end_is_removed(self) -> None:
        """The head names an entry past the chain's end: removed, at the first missing seq."""
        report = verify_chain([*A_CHAIN[:2], *B_CHAIN], heads=HEADS)
        assert (report.problem, report.chain, report.first_bad_seq) == ("removed", "county:1", 3)
        report = verify_chain(A_CHAIN, heads=HEADS)  # a whole chain gone
        assert (report.problem, report.chain, report.first_bad_seq) == ("removed", "county:2", 1)

    def test_a_resealed_last_entry_is_altered(self) -> None:
        """The last entry edited and sealed again: it no longer matches its head."""
        edited = attrs.evolve(A_CHAIN[2], reason="edited")
        resealed = attrs.evolve(edited, hash=chain_hash(edited.prev_hash, edited))
        report = verify_chain([*A_CHAIN[:2], resealed, *B_CHAIN], heads=HEADS)
        assert (report.problem, report.chain, report.first_bad_seq) == ("altered", "county:1", 3)

    def test_entries_past_the_head_are_added(self) -> None:
        """A chain going on past its head, or with no head, is reported as added."""
        heads = {"county:1": (2, A_CHAIN[1].hash), "county:2": (1, B_CHAIN[0].hash)}
        report = verify_chain([*A_CHAIN, *B_CHAIN], heads=heads)
        assert (report.problem, report.chain, report.first_bad_seq) == ("added", "county:1", 3)
        report = verify_chain([*A_CHAIN, *B_CHAIN], heads={"county:1": HEADS["county:1"]})
        assert (report.problem, report.chain, report.first_bad_seq) == ("added", "county:2", 1)

    def test_heads_read_before_and_after_allow_appends_in_between(self) -> None:
        """Between the heads read before and after the entries, a chain may end anywhere;
        a head of seq 0 (a chain locked but never written) is no head."""
        before = {"county:1": (2, A_CHAIN[1].hash), "county:2": (0, "")}
        after = dict(HEADS)
        entries = [*A_CHAIN, *B_CHAIN]
        assert verify_chain(entries, heads=before, heads_after=after).ok
        assert verify_chain(A_CHAIN[:2], heads=before, heads_after=lambda: after).ok
        report = verify_chain(A_CHAIN[:1], heads=before, heads_after=after)
        assert (report.problem, report.first_bad_seq) == ("removed", 2)

    def test_anchor_names_every_head(self) -> None:
        """The anchor changes with any head and ignores the order of the mapping."""
        base = anchor(HEADS)
        assert base == anchor(dict(reversed(HEADS.items())))
        assert base != anchor({**HEADS, "county:2": (2, "ab")})
        assert base != anchor({"county:1": HEADS["county:1"]})
