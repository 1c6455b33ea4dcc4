"""Migrant flags and the transfer flow matrix, from transfers made through the changes service."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import attrs
import pytest

from studentstatus.domain.enums import ChangeKind, Grade
from studentstatus.domain.migration import MigrantStatus
from studentstatus.errors import NotFoundError
from studentstatus.services import changes as svc
from studentstatus.services.flows import get_migrant_flags, get_transfer_flows

from ._changes_world import KG_A, KG_B, KG_C, KG_D, OPS, make_store, runtime, seed


def _transfer(rt, record: str, dest) -> None:  # type: ignore[no-untyped-def]
    dest_op = next(op for op in OPS.values() if op.scope == dest.school_code)
    out = svc.request_change(
        rt, dest_op, record, ChangeKind.TRANSFER, to_kindergarten=dest.school_code
    )
    assert out.request is not None
    while True:
        pending = next((s for s in out.request.steps if s.decision.value == "PENDING"), None)
        if pending is None:
            break
        op = next(o for o in OPS.values() if o.role is pending.role and o.scope == pending.scope)
        out = svc.approve_step(rt, op, out.request.id)
        assert out.request is not None
    assert out.applied


@pytest.mark.parametrize("adapter", ["memory", "sqlite"])
def test_flow_matrix_at_province_and_county_level(adapter: str, tmp_path: Path) -> None:
    with make_store(adapter, tmp_path) as store:
        rt = runtime(store)
        seed(rt, [(KG_A, Grade.MIDDLE), (KG_A, Grade.JUNIOR), (KG_C, Grade.SENIOR)])
        rt.clock.advance(days=1)  # type: ignore[attr-defined]
        _transfer(rt, "r0000", KG_D)  # 110105 -> 440305: other province
        _transfer(rt, "r0001", KG_B)  # 110105 -> 110105: same county (no region in the event)
        _transfer(rt, "r0002", KG_A)  # 110108 -> 110105: other county, same province
        start, end = date(2025, 9, 1), date(2025, 9, 30)
        prov = get_transfer_flows(rt, OPS["ministry"], start, end)
        assert prov.flows == {"11": {"11": 2, "44": 1}}
        county = get_transfer_flows(rt, OPS["ministry"], start, end, level="county")
        assert county.flows == {"110105": {"110105": 1, "440305": 1}, "110108": {"110105": 1}}
        assert county.total == 3
        # Scope: a Guangdong county sees only the flow into it; kindergarten B its own.
        assert get_transfer_flows(rt, OPS["c305"], start, end, level="county").rows() == [
            ("110105", "440305", 1)
        ]
        assert get_transfer_flows(rt, OPS["kgB"], start, end).total == 1
        assert get_transfer_flows(rt, OPS["ministry"], start, end, region="44").rows() == [
            ("11", "44", 1)
        ]
        assert (
            get_transfer_flows(rt, OPS["ministry"], date(2025, 10, 1), date(2025, 12, 1)).total == 0
        )
        with pytest.raises(ValueError):
            get_transfer_flows(rt, OPS["ministry"], end, start)


def test_migrant_flags(tmp_path: Path) -> None:
    with make_store("memory", tmp_path) as store:
        rt = runtime(store)
        seed(rt, [(KG_A, Grade.MIDDLE), (KG_A, Grade.JUNIOR), (KG_A, Grade.SENIOR)])
        with store.unit_of_work() as uow:
            for cid, hukou, rural in (("c0000", "510104", True), ("c0001", "110108", False)):
                uow.children.update(
                    attrs.evolve(uow.children.get(cid), hukou_region=hukou, hukou_rural=rural)
                )
            uow.commit()
        f0 = get_migrant_flags(rt, OPS["c105"], "r0000")
        assert (f0.status, f0.rural_hukou, f0.rural_migrant) == (
            MigrantStatus.OTHER_PROVINCE,
            True,
            True,
        )
        assert (
            get_migrant_flags(rt, OPS["c105"], "r0001").status
            is MigrantStatus.OTHER_COUNTY_SAME_PROVINCE
        )
        assert get_migrant_flags(rt, OPS["c105"], "r0002").status is MigrantStatus.UNKNOWN
        assert f0.to_dict()["status_zh"] == "外省"
        with pytest.raises(NotFoundError):
            get_migrant_flags(rt, OPS["c305"], "r0000")
