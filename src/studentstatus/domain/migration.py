"""Migrant-child flags (随迁子女 / 流动儿童) and flow keys for reports.

The statistical definition (docs/reference/domain.md#monitoring) compares the child's household
registration (户口所在地) with the kindergarten's county: a child registered in
another county of the same province, or in another province, is a migrant
child.  Whether the hukou is rural (乡村) is a separate fact, kept on
:class:`~studentstatus.domain.model.Child` as ``hukou_rural`` and reported
alongside the status, never folded into it: the narrow statistical category
"进城务工人员随迁子女" is :func:`is_rural_migrant`.

Codes are compared as GB/T 2260 codes: the first two digits are the
province, six digits the county.  A missing or malformed code gives
``UNKNOWN`` rather than a guess.

>>> migrant_status("110105", "110105")
<MigrantStatus.LOCAL: 'LOCAL'>
>>> migrant_status("110108", "110105")
<MigrantStatus.OTHER_COUNTY_SAME_PROVINCE: 'OTHER_COUNTY_SAME_PROVINCE'>
>>> migrant_status("510107", "110105")
<MigrantStatus.OTHER_PROVINCE: 'OTHER_PROVINCE'>
>>> migrant_status(None, "110105")
<MigrantStatus.UNKNOWN: 'UNKNOWN'>
>>> flow_key("510107", "110105"), flow_key("510107", "110105", level="county")
('51->11', '510107->110105')
"""

from __future__ import annotations

import enum
from typing import Literal

__all__ = ["MigrantStatus", "flow_key", "is_migrant", "is_rural_migrant", "migrant_status"]


class MigrantStatus(enum.StrEnum):
    """Where a child's household registration lies relative to the kindergarten.

    >>> MigrantStatus("OTHER_PROVINCE") is MigrantStatus.OTHER_PROVINCE
    True
    """

    LOCAL = "LOCAL"
    """Household registration in the kindergarten's own county (本县)."""
    OTHER_COUNTY_SAME_PROVINCE = "OTHER_COUNTY_SAME_PROVINCE"
    """Another county of the same province (省内跨县)."""
    OTHER_PROVINCE = "OTHER_PROVINCE"
    """Another province (跨省)."""
    UNKNOWN = "UNKNOWN"
    """Household registration missing or not a six-digit code."""

    @property
    def label_zh(self) -> str:
        """Chinese label for reports.

        >>> MigrantStatus.OTHER_PROVINCE.label_zh
        '外省'
        """
        return _LABELS[self]


_LABELS = {
    MigrantStatus.LOCAL: "本县",
    MigrantStatus.OTHER_COUNTY_SAME_PROVINCE: "省内外县",
    MigrantStatus.OTHER_PROVINCE: "外省",
    MigrantStatus.UNKNOWN: "不明",
}


def _code(value: str | None) -> str | None:
    if value is None:
        return None
    text = value.strip()
    return text if len(text) == 6 and text.isascii() and text.isdigit() else None


def migrant_status(hukou_region: str | None, kindergarten_region: str | None) -> MigrantStatus:
    """Classify a child by household registration vs. the kindergarten's county.

    >>> migrant_status("1101", "110105")
    <MigrantStatus.UNKNOWN: 'UNKNOWN'>
    """
    hukou, school = _code(hukou_region), _code(kindergarten_region)
    if hukou is None or school is None:
        return MigrantStatus.UNKNOWN
    if hukou == school:
        return MigrantStatus.LOCAL
    if hukou[:2] == school[:2]:
        return MigrantStatus.OTHER_COUNTY_SAME_PROVINCE
    return MigrantStatus.OTHER_PROVINCE


def is_migrant(status: MigrantStatus) -> bool:
    """Whether the status counts as a migrant child (other county or other province).

    >>> is_migrant(MigrantStatus.OTHER_PROVINCE), is_migrant(MigrantStatus.UNKNOWN)
    (True, False)
    """
    return status in (MigrantStatus.OTHER_COUNTY_SAME_PROVINCE, MigrantStatus.OTHER_PROVINCE)


def is_rural_migrant(
    hukou_region: str | None, kindergarten_region: str | None, hukou_rural: bool
) -> bool:
    """The statistical 进城务工人员随迁子女 flag: migrant *and* a rural household registration.

    >>> is_rural_migrant("510107", "110105", True), is_rural_migrant("510107", "110105", False)
    (True, False)
    """
    return hukou_rural and is_migrant(migrant_status(hukou_region, kindergarten_region))


def flow_key(
    from_region: str | None,
    to_region: str | None,
    level: Literal["province", "county"] = "province",
) -> str:
    """A ``from->to`` key for counting flows, at province (2 digits) or county (6) level.

    An unknown side is written ``?``.

    >>> flow_key(None, "440306")
    '?->44'
    >>> flow_key("440306", "440306", level="county")
    '440306->440306'
    """
    if level not in ("province", "county"):
        msg = f"level must be 'province' or 'county', not {level!r}"
        raise ValueError(msg)
    width = 2 if level == "province" else 6

    def side(value: str | None) -> str:
        code = _code(value)
        return code[:width] if code is not None else "?"

    return f"{side(from_region)}->{side(to_region)}"
