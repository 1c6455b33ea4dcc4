"""Audit hash chain: sealing, canonical JSON and tamper detection at the right seq."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from studentstatus.domain.audit import (
    ChainReport,
    canonical_json,
    chain_hash,
    entry_fields,
    seal,
    seal_events,
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
        assert verify_chain([]) == ChainReport(True, 0)
        assert verify_chain([], head_hash="ab").problem == "removed"

    def test_non_json_values_are_refused(self) -> None:
        """A value that has no canonical JSON form is an error, not a silent str()."""
        with pytest.raises(TypeError):
            canonical_json({"x": object()})

    def test_report_to_dict(self) -> None:
        """The report is JSON-ready."""
        assert ChainReport(False, 3, 4, "altered").to_dict() == {
            "ok": False,
            "checked": 3,
            "first_bad_seq": 4,
            "problem": "altered",
        }


def test_untouched_chains_verify() -> None:
    """A sealed chain verifies, with and without its head hash and as a continued segment."""

    @given(chains)
    def check(chain: list[AuditEntry]) -> None:
        assert verify_chain(chain) == ChainReport(True, len(chain))
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
)
def test_seal_events_equals_sealing_one_entry_at_a_time(
    events: list[tuple[str, str, str, str, dict[str, Any], dict[str, Any]]],
    start: int,
    offset_hours: int | None,
    micro: int,
) -> None:
    tz = None if offset_hours is None else timezone(timedelta(hours=offset_hours))
    at = datetime(2025, 9, 1, 8, 0, 0, micro, tzinfo=tz)
    prev: AuditEntry | None = None
    for i in range(start):  # an existing chain to append to
        prev = seal(AuditEntry(i + 1, T0, "ministry", "seed", f"s{i}"), prev)
    expected: list[AuditEntry] = []
    last = prev
    for operator, action, subject, reason, before, after in events:
        seq = last.seq + 1 if last is not None else 1
        entry = AuditEntry(seq, at, operator, action, subject, reason, before, after)
        last = seal(entry, last)
        expected.append(last)
    assert list(seal_events(prev, at, events)) == expected
