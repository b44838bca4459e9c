"""The roles of issue 7. A role decides what *kind* of data a person sees; guardian object
permissions on hospitals and units decide *which* (see ``governance.access``)."""

from __future__ import annotations

import enum


class Role(enum.StrEnum):
    REGIONAL_OPERATOR = "regional_operator"  # every hospital's operational views, coordination
    ED_STAFF = "ed_staff"  # their own hospital's ED units only
    WARD_NURSE = "ward_nurse"  # their own ward (units granted one by one)
    EXECUTIVE = "executive"  # aggregates of their hospital(s) only; no record-level data
    GOVERNANCE_BOARD = "governance_board"  # policies, erasure, audit, retention (region-wide)
    AUDITOR = "auditor"  # read-only audit (region-wide)
    SITE_AGENT = "site_agent"  # service account: its own site, through the site API only

    @property
    def group_name(self) -> str:
        """The Django group that holds everyone with this role (and its model permissions)."""
        return f"role:{self.value}"


# Roles whose reach is the whole region: membership of the role group is the grant.
REGION_WIDE = frozenset({Role.REGIONAL_OPERATOR, Role.GOVERNANCE_BOARD, Role.AUDITOR})
# Roles that see nothing until granted hospitals or units.
SCOPED = frozenset(Role) - REGION_WIDE
