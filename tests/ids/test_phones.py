"""Guardian phones."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from studentstatus import phones
from studentstatus.errors import InvalidFormat
from studentstatus.testing.strategies import mobile_phones


@pytest.mark.parametrize(
    "text", ["138 0013 8000", "+86 13800138000", "13800138000", "+86-138-0013-8000"]
)
def test_mobile_forms(text: str) -> None:
    assert phones.normalize(text) == "+8613800138000"
    assert phones.kind(text) is phones.PhoneKind.MOBILE


def test_fixed_line() -> None:
    assert phones.normalize("010-12345678") == "+861012345678"
    assert phones.kind("010-12345678") is phones.PhoneKind.FIXED_LINE


@pytest.mark.parametrize("text", ["10012345678", "12345678901", "abc", "", None, 13800138000])
def test_invalid(text: object) -> None:
    assert not phones.is_valid(text)
    with pytest.raises(InvalidFormat) as info:
        phones.normalize(text)
    assert info.value.field == "phone"


@given(mobile_phones())
def test_generated(text: str) -> None:
    assert phones.kind(text) is phones.PhoneKind.MOBILE


# ---- the CN mobile fast path gives libphonenumber's verdicts


def _reference(text: str) -> tuple[str | None, str | None]:
    """(E.164, kind) straight from libphonenumber, bypassing the fast path."""
    import phonenumbers

    try:
        number = phonenumbers.parse(text, "CN")
    except phonenumbers.NumberParseException:
        return None, None
    if not phonenumbers.is_valid_number(number):
        return None, None
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    t = phonenumbers.number_type(number)
    kind = {
        phonenumbers.PhoneNumberType.MOBILE: "mobile",
        phonenumbers.PhoneNumberType.FIXED_LINE: "fixed_line",
    }.get(t, "other")
    return e164, kind


def _ours(text: str) -> tuple[str | None, str | None]:
    try:
        return phones.normalize(text), phones.kind(text).value
    except InvalidFormat:
        assert not phones.is_valid(text)
        return None, None


_FORMS = ("{}", "+86{}", "+86 {}", "0086{}", "86{}", "{0} {1} {2}", "{0}-{1}-{2}")


def _forms(digits: str) -> list[str]:
    parts = (digits[:3], digits[3:7], digits[7:])
    return [f.format(*parts) if "{0}" in f else f.format(digits) for f in _FORMS]


def test_fast_path_agrees_on_every_prefix() -> None:
    # Every 4-digit prefix 1000..1999 (all mobile ranges and the 1x carrier/service ranges
    # around them) with two suffixes, in every written form.
    disagreements = []
    for prefix in range(1000, 2000):
        for suffix in ("0000000", "8765432"):
            for text in _forms(f"{prefix}{suffix}"):
                if _ours(text) != _reference(text):
                    disagreements.append(text)
    assert disagreements == []


@given(
    st.text(alphabet="0123456789+- ", min_size=0, max_size=18)
    | st.from_regex(r"\A(\+86|0086|86)?[ -]?1[0-9]{2}[ -]?[0-9]{4}[ -]?[0-9]{4}\Z")
)
def test_fast_path_agrees_on_generated_text(text: str) -> None:
    assert _ours(text) == _reference(text)


def test_fast_path_rejects_non_ascii_digits() -> None:
    # Full-width digits are not a mobile number for the fast path; libphonenumber decides.
    text = "１３８００１３８０００"
    assert _ours(text) == _reference(text)


# ---- the memo of the last number: a repeat, or its E.164 form, gives what a fresh call gives


@given(
    st.lists(
        st.sampled_from(
            [
                "13800138000",
                "+8613800138000",
                "010-12345678",
                "+861012345678",
                "+14155552671",
                "12345",
                "138 0013 8000",
                "４１５",
            ]
        )
        | st.from_regex(r"\A(\+86|0086)?1[3-9][0-9]{9}\Z"),
        max_size=8,
    ),
    st.sampled_from(["CN", "US"]),
)
def test_memo_answers_a_repeat_or_its_e164_form_as_a_fresh_call(
    texts: list[str], region: str
) -> None:
    def fresh(text: str) -> str | None:
        phones._LAST[0] = ("", "", "")
        try:
            return phones.normalize(text, region)
        except InvalidFormat:
            return None

    for text in texts:
        expected = fresh(text)
        if expected is not None:
            assert fresh(expected) == expected  # the E.164 form is its own normal form
        # text, then a repeat of it, then its E.164 form: each as a fresh call gives it
        phones._LAST[0] = ("", "", "")
        for again in (text, text, expected or text):
            assert _normalize_or_none(again, region) == fresh_kept(again, region)


def fresh_kept(text: str, region: str) -> str | None:
    """A fresh call that leaves the memo as it was."""
    saved = phones._LAST[0]
    phones._LAST[0] = ("", "", "")
    try:
        return _normalize_or_none(text, region)
    finally:
        phones._LAST[0] = saved


def _normalize_or_none(text: str, region: str) -> str | None:
    try:
        return phones.normalize(text, region)
    except InvalidFormat:
        return None


def test_memo_is_per_region() -> None:
    # The same text read for another region is another number: the memo must not answer it.
    assert phones.normalize("(415) 555-2671", "US") == "+14155552671"
    assert phones.normalize("(415) 555-2671", "CN") == "+864155552671"
    assert phones.normalize("(415) 555-2671", "US") == "+14155552671"
