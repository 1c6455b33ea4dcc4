"""Public hypothesis strategies (needs the ``testing`` extra)."""

from __future__ import annotations

from studentstatus.testing._ids import *  # noqa: F403

# ruff: noqa: F405

__all__ = [
    "foreign_pr_numbers",
    "hk_mo_travel_numbers",
    "invalid_resident_ids",
    "mobile_phones",
    "passport_numbers",
    "region_codes",
    "residence_permits",
    "resident_ids",
    "school_codes",
    "tw_travel_numbers",
    "usccs",
]

# Domain strategies (kindergartens, children, records, changes): studentstatus.testing._domain
from studentstatus.testing._domain import *  # noqa: F403
from studentstatus.testing._domain import __all__ as _domain_all

__all__ += _domain_all
