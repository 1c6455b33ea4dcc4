"""Dropout control: the three ledgers, comparisons, cases, persuasion, withdrawal, lost children."""

from __future__ import annotations

import io
from datetime import date, timedelta
from pathlib import Path

import pytest

from studentstatus.domain.calendar import school_days
from studentstatus.domain.enums import AttendanceStatus, ChangeKind, Grade, Sex
from studentstatus.domain.model import AttendanceEntry
from studentstatus.domain.monitoring import CaseStatus, CaseTrigger, ContactKind, PopulationPerson
from studentstatus.errors import NotFoundError, PermissionDenied
from studentstatus.services import changes as svc
from studentstatus.services.audit import verify
from studentstatus.services.dropout import (
    get_county_ledgers,
    open_case,
    read_population,
    record_contact,
    refresh_cases,
    request_withdrawal,
)

from ._changes_world import KG_A, KG_B, KG_D, OPS, make_store, runtime, seed

C105 = OPS["c105"]


def _absent(rt, record_id: str, end: date, n: int) -> None:  # type: ignore[no-untyped-def]
    days = school_days(end - timedelta(days=3 * n), end)[-n:]
    with rt.store.unit_of_work() as uow:
        uow.attendance.add_many(
            AttendanceEntry(record_id, d, AttendanceStatus.ABSENT) for d in days
        )
        uow.commit()


@pytest.mark.parametrize(
    "adapter",
    [
        "memory",
        "files",
        "sqlite",
        pytest.param("postgres", marks=pytest.mark.postgres),
        pytest.param("mysql", marks=pytest.mark.mysql),
    ],
)
def test_ledgers_comparisons_and_a_case_closed_by_an_approved_withdrawal(
    adapter: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    url = request.getfixturevalue(f"{adapter}_url") if adapter in ("postgres", "mysql") else None
    with make_store(adapter, tmp_path, url) as store:
        rt = runtime(store)
        recs = seed(rt, [(KG_A, Grade.MIDDLE), (KG_A, Grade.JUNIOR), (KG_B, Grade.SENIOR)])
        rt.clock.advance(days=30)  # type: ignore[attr-defined]
        today = rt.clock.today()
        # r0000 present lately, r0001 absent for 10 school days, r0002 has no attendance at all.
        with store.unit_of_work() as uow:
            uow.attendance.add_many([AttendanceEntry("r0000", today, AttendanceStatus.PRESENT)])
            uow.commit()
        _absent(rt, "r0001", today, 10)
        with store.unit_of_work() as uow:
            child0 = uow.children.get(recs[0].child_id)
        assert child0.document is not None
        people = [
            PopulationPerson(child0.document.number, child0.name, child0.sex, child0.birth_date),
            PopulationPerson("110105202101010011", "未入园", Sex.M, date(2021, 1, 1)),
            PopulationPerson("110105202501010011", "太小", Sex.M, date(2025, 1, 1)),
            # another county's child, in a city-wide extract: not this county's ledger
            PopulationPerson("110108202101010017", "别县", Sex.M, date(2021, 1, 1), "110108"),
            PopulationPerson("110105202101020016", "本县", Sex.M, date(2021, 1, 2), "110105"),
        ]
        from studentstatus.services.attendance import detect_absences

        opened, _ = detect_absences(rt, C105)
        assert len(opened) == 1
        led = get_county_ledgers(rt, C105, "110105", population=people)
        assert led.counts() == {
            "eligible": 3,
            "unenrolled": 2,
            "suspected": 1,
            "confirmed": 0,
            "absent_on_paper": 2,
            "lost_children": 0,
            "active_records": 3,
        }
        assert sorted(e.person.name for e in led.unenrolled) == ["未入园", "本县"]
        assert sorted(led.absent_on_paper) == ["r0001", "r0002"]
        doc = led.to_dict()
        assert "110105202101010011" not in str(doc)  # id numbers masked
        (case,) = led.suspected
        assert case.record_id == "r0001"
        assert case.trigger is CaseTrigger.ABSENCE_STREAK
        # Persuasion attempts are recorded, then the kindergarten applies for withdrawal.
        case = record_contact(rt, C105, case.id, "家访：家长表示将返园")
        case = record_contact(rt, C105, case.id, "电话联系未接通", kind=ContactKind.CONTACT)
        assert [c.kind for c in case.contacts] == [ContactKind.PERSUASION, ContactKind.CONTACT]
        with pytest.raises(ValueError, match="note"):
            record_contact(rt, C105, case.id, "  ")
        case = request_withdrawal(rt, OPS["kgA"], case.id, reason="随父母返乡 moved away")
        assert case.status is CaseStatus.SUSPECTED  # waits for the county's approval
        assert case.withdraw_request_id is not None
        rt.clock.advance(days=1)  # type: ignore[attr-defined]
        done = svc.approve_step(rt, C105, case.withdraw_request_id)
        assert done.applied
        led = get_county_ledgers(rt, C105, "110105")
        assert led.counts()["suspected"] == 0
        assert [c.id for c in led.confirmed] == [case.id]
        assert led.confirmed[0].status is CaseStatus.WITHDRAWN
        assert not led.eligible_known
        assert verify(store).ok


def test_scope_and_roles(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with make_store("memory", tmp_path) as store:
        rt = runtime(store)
        seed(rt, [(KG_A, Grade.MIDDLE)])
        case = open_case(rt, C105, "r0000", detail="教育部推送疑似辍学名单")
        with pytest.raises(ValueError, match="open case"):
            open_case(rt, C105, "r0000", detail="again")
        with pytest.raises(PermissionDenied):
            get_county_ledgers(rt, OPS["c305"], "110105")
        with pytest.raises(PermissionDenied):
            get_county_ledgers(rt, OPS["kgA"], "110105")
        with pytest.raises(NotFoundError):
            record_contact(rt, OPS["c108"], case.id, "not mine")
        assert any("refused" in r.getMessage() for r in caplog.records)
        assert get_county_ledgers(rt, OPS["p11"], "110105").counts()["suspected"] == 1
        assert get_county_ledgers(rt, OPS["city1101"], "110105").counts()["suspected"] == 1
        with pytest.raises(ValueError):
            get_county_ledgers(rt, OPS["p11"], "11")


def test_lost_transfer_opens_a_case(tmp_path: Path) -> None:
    with make_store("memory", tmp_path) as store:
        rt = runtime(store)
        seed(rt, [(KG_A, Grade.MIDDLE)])
        rt.clock.advance(days=1)  # type: ignore[attr-defined]
        out = svc.request_change(
            rt, OPS["kgD"], "r0000", ChangeKind.TRANSFER, to_kindergarten=KG_D.school_code
        )
        assert out.request is not None
        svc.approve_step(rt, OPS["kgA"], out.request.id)  # the source releases the child
        rt.clock.advance(days=120)  # type: ignore[attr-defined]
        changed = refresh_cases(rt, C105, "110105")
        assert len(changed) == 1
        led = get_county_ledgers(rt, C105, "110105")
        assert led.lost_children == ("r0000",)
        assert led.suspected[0].trigger is CaseTrigger.LOST_TRANSFER
        assert refresh_cases(rt, C105, "110105") == []  # not opened twice


def test_population_extract_reader_reports_bad_rows() -> None:
    data = (
        "id_number,name,sex,birth_date,hukou_region\n"
        "11010519491231002X,王,女,1949-12-31,110105\n"  # GB 11643 public example
        ",无号,男,2021-01-01,\n"
        "110105202101010011,错,X,2021/1/1,\n"
        "110105202101010011,错日,男,2021-02-30,\n"
    )
    people, bad = read_population(io.BytesIO(data.encode()))
    assert [p.name for p in people] == ["王"]
    assert [(row, v.code) for row, v in bad] == [
        (2, "id_missing"),
        (3, "sex_invalid"),
        (4, "date_invalid"),
    ]
    rows = [{"id_number": "A1", "name": "x", "sex": "M", "birth_date": "2021-01-01"}]
    assert read_population(rows)[0][0].hukou_region is None


def test_a_withdrawal_request_and_its_case_note_commit_together(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """If noting the request on the case fails, the request is not left behind either."""
    from studentstatus.services import dropout

    with make_store("memory", tmp_path) as store:
        rt = runtime(store)
        seed(rt, [(KG_A, Grade.MIDDLE)])
        case = open_case(rt, OPS["c105"], "r0000", detail="教育部推送疑似辍学名单")
        real = dropout.cases_of

        class Broken:
            def __init__(self, repo: object) -> None:
                self._repo = repo

            def __getattr__(self, name: str) -> object:
                return getattr(self._repo, name)

            def update(self, _case: object) -> object:
                raise RuntimeError("disk full")

        monkeypatch.setattr(dropout, "cases_of", lambda uow: Broken(real(uow)))
        with pytest.raises(RuntimeError):
            request_withdrawal(rt, OPS["kgA"], case.id, reason="moved")
        monkeypatch.setattr(dropout, "cases_of", real)
        with store.unit_of_work() as uow:
            assert uow.requests.open_for_record("r0000") is None
        done = request_withdrawal(rt, OPS["kgA"], case.id, reason="moved")
        assert done.withdraw_request_id is not None
        with store.unit_of_work() as uow:
            open_request = uow.requests.open_for_record("r0000")
        assert open_request is not None
        assert open_request.id == done.withdraw_request_id
        assert verify(store).ok
