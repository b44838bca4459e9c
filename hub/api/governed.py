"""The governed actions the hub API adds to governance's vocabulary.

Every other action a hub view declares ("read_hospitals", "read_census", "read_flow",
"read_aggregates", "coordinate", "site_push", "site_read") is one of governance's defaults.
"""

from __future__ import annotations

from governance.actions import Level, register_action
from governance.roles import Role

MANAGE_REGISTRY = "manage_registry"
SITE_ENROL = "site_enrol"


def register_actions() -> None:
    register_action(
        MANAGE_REGISTRY,
        roles={Role.REGIONAL_OPERATOR},
        level=Level.AGGREGATE,
        write=True,
        description="create and change regions, hospitals, units, travel times, site agents",
    )
    # Enrolment is authenticated by its one-time token, not by a user: the view checks the
    # token itself and is audited under this action. Site agents are its only role.
    register_action(
        SITE_ENROL,
        roles={Role.SITE_AGENT},
        level=Level.SITE,
        write=True,
        description="site API: exchange a one-time enrolment token for a credential",
    )
