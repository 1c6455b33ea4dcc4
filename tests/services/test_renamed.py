"""The services' former names still work, warn, and call the new ones."""

from __future__ import annotations

import importlib

import pytest

RENAMES = {
    "changes": {
        "show_request": "get_request",
        "requests_for": "list_pending_requests",
        "overdue_requests": "list_overdue_requests",
        "lost_children": "list_lost_children",
        "requests_by": "list_requests_by",
    },
    "numbers": {"show": "get_record"},
    "dropout": {"county_ledgers": "get_county_ledgers"},
    "flows": {"migrant_flags": "get_migrant_flags", "transfer_flows": "get_transfer_flows"},
    "roll": {"roll_as_of": "list_roll"},
    "attendance": {
        "attendance_for": "list_attendance",
        "attendance_history": "list_attendance_history",
    },
    "stuck": {"stuck_records": "list_stuck_records", "stuck_counts": "count_stuck_records"},
}
CASES = [(m, old, new) for m, names in RENAMES.items() for old, new in names.items()]


@pytest.mark.parametrize(("module", "old", "new"), CASES)
def test_a_former_name_warns_and_calls_the_new_one(module: str, old: str, new: str) -> None:
    mod = importlib.import_module(f"studentstatus.services.{module}")
    assert new in mod.__all__
    assert old not in mod.__all__
    alias = getattr(mod, old)
    assert new in (alias.__doc__ or "")
    # no arguments: the new function's own refusal, after the warning
    with (
        pytest.warns(DeprecationWarning, match=f"{old} is deprecated: use {new}"),
        pytest.raises(TypeError),
    ):
        alias()
