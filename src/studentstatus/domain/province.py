"""A province's rule set: which province, where the rules come from, and its :class:`Policy`.

:class:`ProvincePolicy` is the pure value a province file becomes
(:mod:`studentstatus.province_rules` reads and validates the files); the
runtime keeps one :class:`~studentstatus.domain.policy.Policy` per province
(:meth:`studentstatus.services.runtime.Runtime.policy_for`).

>>> from studentstatus.domain.enums import ChangeKind, Grade
>>> p = ProvincePolicy("44", "广东省", Policy())
>>> p.has_nursery, [k.value for k in p.allowed_changes()[:3]]
(True, ['REGISTER', 'APPROVE', 'REJECT'])
>>> import attrs
>>> no_nursery = {g: a for g, a in Policy().grade_ages.items() if g is not Grade.NURSERY}
>>> ProvincePolicy("11", "北京市", attrs.evolve(Policy(), grade_ages=no_nursery)).has_nursery
False
"""

from __future__ import annotations

import attrs

from studentstatus.domain.enums import ChangeKind, Grade
from studentstatus.domain.policy import Policy

__all__ = ["ProvincePolicy"]


@attrs.frozen
class ProvincePolicy:
    """The rules of one province.

    Attributes:
        province: the two-digit province code (GB/T 2260: ``"44"`` Guangdong).
        name: the province's name.
        policy: its rules (caps, cut-off, grade bands, approvals, deadlines, kinds allowed).
        sources: where the rules come from (public documents, for reviewers).
    """

    province: str
    name: str
    policy: Policy
    sources: tuple[str, ...] = ()

    @property
    def has_nursery(self) -> bool:
        """Whether the province keeps 托班 (NURSERY) records."""
        return Grade.NURSERY in self.policy.grade_ages

    def allowed_changes(self) -> tuple[ChangeKind, ...]:
        """The change kinds this province allows, in the table's order."""
        return tuple(k for k in ChangeKind if self.policy.allows(k))
