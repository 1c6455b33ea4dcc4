"""Children: check_child and build_child."""

from __future__ import annotations

from datetime import date

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from studentstatus.domain.child import ETHNICITY_CODES, build_child, check_child, parse_date
from studentstatus.domain.enums import Sex
from studentstatus.domain.model import Child, DocumentKind, Guardian, IdentityDocument
from studentstatus.testing.strategies import BREAKAGES, children, resident_ids

TODAY = date(2024, 9, 1)
MOTHER = Guardian("王芳", "mother", "+8613800138000")
# Worked example of docs/reference/domain.md: 11010520200315002X, female, born 2020-03-15.
ID_F = "11010520200315002X"
# python-stdnum public vector: lower-case x, born 2014-10-05, sequence 001 → male.
STDNUM = "44011320141005001x"


def kid(**changes: object) -> Child:
    """A sound child, with some fields changed."""
    base = Child(
        "c1", "王小红", Sex.F, date(2020, 3, 15),
        IdentityDocument(DocumentKind.RESIDENT, ID_F), guardians=(MOTHER,),
    )  # fmt: skip
    return attrs.evolve(base, **changes)


def codes(child: Child, **kw: object) -> list[str]:
    """Codes check_child reports."""
    return [v.code for v in check_child(child, today=TODAY, **kw)]  # type: ignore[arg-type]


class TestCheckChild:
    """Every rule of check_child."""

    def test_sound(self) -> None:
        """The worked-example child is sound."""
        assert codes(kid()) == []

    def test_stdnum_vector(self) -> None:
        """The python-stdnum vector, lower-case x, is accepted with its birth date and sex."""
        doc = IdentityDocument(DocumentKind.RESIDENT, STDNUM)
        assert codes(kid(document=doc, birth_date=date(2014, 10, 5), sex=Sex.M)) == []

    def test_mismatches(self) -> None:
        """Birth date and sex must agree with the number."""
        assert codes(kid(birth_date=date(2020, 3, 16), sex=Sex.M)) == [
            "birth_date_mismatch",
            "sex_mismatch",
        ]

    @pytest.mark.parametrize(
        ("number", "code"),
        [
            ("36042619910102009X", "checksum"),  # python-stdnum test vector
            ("360426199113010079", "date"),  # month 13
            ("1101052020031500", "length"),
        ],
    )
    def test_bad_numbers(self, number: str, code: str) -> None:
        """Invalid numbers give the identity check's code on document.number, masked."""
        found = check_child(
            kid(document=IdentityDocument(DocumentKind.RESIDENT, number)), today=TODAY
        )
        assert [(v.code, v.field) for v in found] == [(code, "document.number")]
        for v in found:
            assert number not in v.message_en + v.message_zh + v.hint

    def test_permit(self) -> None:
        """A Taiwan residence permit (worked example) is checked like a resident ID."""
        doc = IdentityDocument(DocumentKind.TW_PERMIT, "830000202001010025")
        assert codes(kid(document=doc, birth_date=date(2020, 1, 1))) == []
        assert codes(kid(document=doc, birth_date=date(2020, 1, 2))) == ["birth_date_mismatch"]

    def test_none_document(self) -> None:
        """Type none: no number; no document at all is fine too."""
        assert codes(kid(document=IdentityDocument(DocumentKind.NONE, ""))) == []
        assert codes(kid(document=None)) == []
        assert codes(kid(document=IdentityDocument(DocumentKind.NONE, "x1"))) == [
            "document_number_unexpected"
        ]

    def test_future_number_and_birth(self) -> None:
        """A birth after today is refused (and so is the number with that date)."""
        found = codes(kid(birth_date=date(2025, 1, 1), document=None))
        assert found == ["birth_date_future"]

    @pytest.mark.parametrize(
        ("name", "code"),
        [("", "name_required"), ("  ", "name_required"), ("王" * 51, "name_too_long"),
         ("王\x07明", "control_character"), ("王\x00明", "control_character"),
         ("=1+1", "name_characters"), ("<script>alert(3)</script>", "name_characters"),
         ("王小明\U0001f476", "name_characters"), ("\u202e王小明", "name_characters")],
    )  # fmt: skip
    def test_names(self, name: str, code: str) -> None:
        """Names: present, at most 50 characters, only the characters of the name policy."""
        assert codes(kid(name=name)) == [code]

    def test_name_limit_inclusive(self) -> None:
        """Fifty characters are accepted."""
        assert codes(kid(name="王" * 50)) == []

    def test_ethnicity(self) -> None:
        """01–56, 97, 98 only."""
        assert sorted(ETHNICITY_CODES)[:2] == ["01", "02"]
        assert {"56", "97", "98"} <= ETHNICITY_CODES
        for good in ("01", "56", "97", "98"):
            assert codes(kid(ethnicity=good)) == []
        for bad in ("00", "57", "1", "汉族", "99"):
            assert codes(kid(ethnicity=bad)) == ["ethnicity_invalid"]

    def test_nationality_and_regions(self) -> None:
        """Three upper-case letters; known regions."""
        assert codes(kid(nationality="CN")) == ["nationality_invalid"]
        assert codes(kid(hukou_region="110103", residence_region="440306")) == []
        assert codes(kid(hukou_region="999999")) == ["region_unknown"]

    def test_guardians(self) -> None:
        """At least one valid phone; every given phone valid."""
        assert codes(kid(guardians=())) == ["guardian_phone_missing"]
        assert codes(kid(guardians=(Guardian("父", "father", ""),))) == ["guardian_phone_missing"]
        bad = Guardian("父", "father", "10012345678")
        assert codes(kid(guardians=(MOTHER, bad))) == ["guardian_phone_invalid"]
        assert [v.field for v in check_child(kid(guardians=(bad,)), today=TODAY)] == [
            "guardians[0].phone"
        ]

    def test_all_at_once(self) -> None:
        """Several problems come back together."""
        child = kid(name="", ethnicity="77", nationality="x", guardians=())
        assert codes(child) == [
            "name_required",
            "ethnicity_invalid",
            "nationality_invalid",
            "guardian_phone_missing",
        ]

    @given(children(valid=True))
    def test_valid_strategy(self, child: Child) -> None:
        """Generated valid children pass."""
        assert check_child(child, today=TODAY) == []

    @given(st.data())
    def test_breakages_are_reported(self, data: st.DataObject) -> None:
        """Each breakage of children(valid=False) is reported with its code."""
        child = data.draw(children(valid=False))
        assert codes(child)
        assert set(codes(child)) & set(BREAKAGES)

    @given(resident_ids(min_birth=date(2016, 1, 1), max_birth=date(2024, 1, 1)))
    def test_generated_ids_with_their_data(self, number: str) -> None:
        """Any valid number with its own birth date and sex is accepted."""
        born = date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
        sex = Sex.M if int(number[16]) % 2 else Sex.F
        doc = IdentityDocument(DocumentKind.RESIDENT, number)
        assert codes(kid(document=doc, birth_date=born, sex=sex)) == []


class TestParseDate:
    """Dates from forms and CSV cells."""

    @pytest.mark.parametrize(
        "text", ["2020-03-05", "2020/03/05", "20200305", "2020-3-5", " 2020/3/05 "]
    )
    def test_formats(self, text: str) -> None:
        """Three layouts, with or without leading zeros."""
        assert parse_date(text) == date(2020, 3, 5)

    @pytest.mark.parametrize("text", ["2021-02-29", "2020-13-01", "05/03/2020", "", "today"])
    def test_rejects(self, text: str) -> None:
        """Impossible dates and other layouts give None."""
        assert parse_date(text) is None


class TestBuildChild:
    """build_child never raises and never returns a partly built child."""

    def test_from_form_text(self) -> None:
        """Chinese sex, slashed date, spaced phone, lower-case x."""
        child, problems = build_child(
            id="c1", name=" 李四 ", sex="男", birth_date="2014/10/05",
            document_type="resident", document_number=STDNUM, ethnicity="1",
            guardians=[{"name": "李父", "relation": "father", "phone": "138 0013 8000"}],
            today=TODAY,
        )  # fmt: skip
        assert problems == []
        assert child is not None
        assert child.name == "李四"
        assert child.document == IdentityDocument(DocumentKind.RESIDENT, STDNUM.upper())
        assert child.ethnicity == "01"
        assert child.guardians[0].phone == "+8613800138000"
        assert child.birth_date == date(2014, 10, 5)

    def test_unknown_values(self) -> None:
        """Unknown sex and document type, impossible date: all reported, no child."""
        child, problems = build_child(
            id="c1", name="李四", sex="unknown", birth_date="2021-02-29",
            document_type="driver_licence", guardians=[("父", "father", "13800138000")],
            today=TODAY,
        )  # fmt: skip
        assert child is None
        assert [v.code for v in problems] == [
            "sex_invalid",
            "birth_date_invalid",
            "document_type_unknown",
        ]

    def test_checksum_invalid_id(self) -> None:
        """A checksum-invalid number is a violation, not an exception."""
        child, problems = build_child(
            id="c1", name="李四", sex="M", birth_date="1991-01-02",
            document_type="resident", document_number="36042619910102009X",
            guardians=[("父", "father", "13800138000")], today=TODAY,
        )  # fmt: skip
        assert child is None
        assert [v.code for v in problems] == ["checksum"]

    def test_mismatch_with_unparsed_sex(self) -> None:
        """When the sex does not parse, no sex_mismatch is invented."""
        _, problems = build_child(
            id="c1", name="王", sex="?", birth_date="2020-03-15", document_type="resident",
            document_number=ID_F, guardians=[("母", "mother", "13800138000")], today=TODAY,
        )  # fmt: skip
        assert [v.code for v in problems] == ["sex_invalid"]

    @given(
        name=st.text(max_size=60),
        sex=st.text(max_size=3),
        birth=st.text(max_size=12),
        doc_type=st.text(max_size=12) | st.sampled_from([t.value for t in DocumentKind]),
        number=st.text(max_size=20),
        phone=st.text(max_size=15),
        ethnicity=st.none() | st.text(max_size=3),
    )
    def test_junk_never_raises(
        self, name: str, sex: str, birth: str, doc_type: str, number: str, phone: str,
        ethnicity: str | None,
    ) -> None:  # fmt: skip
        """Arbitrary text gives (child, []) or (None, violations), never an exception."""
        child, problems = build_child(
            id="x", name=name, sex=sex, birth_date=birth, document_type=doc_type,
            document_number=number, ethnicity=ethnicity,
            guardians=[{"name": "g", "relation": "r", "phone": phone}], today=TODAY,
        )  # fmt: skip
        assert (child is None) == bool(problems)
        for v in problems:
            assert v.code
            assert v.field
            assert v.message_zh
            assert v.message_en
        if child is not None:
            assert check_child(child, today=TODAY) == []

    @given(children(valid=True))
    def test_round_trip(self, child: Child) -> None:
        """A valid child's fields as text build the same child (id given by the caller)."""
        doc = child.document
        built, problems = build_child(
            id=child.id, name=child.name, sex=child.sex.value,
            birth_date=child.birth_date.strftime("%Y%m%d"),
            document_type=doc.type.value if doc else "none",
            document_number=doc.number if doc else "",
            ethnicity=child.ethnicity, hukou_region=child.hukou_region,
            guardians=[attrs.asdict(g) for g in child.guardians],
            left_behind=child.left_behind, today=TODAY,
        )  # fmt: skip
        assert problems == []
        expected = child if doc is None or doc.type.value != "none" else attrs.evolve(
            child, document=None
        )  # fmt: skip
        assert built == expected
