"""The governed actions coordination adds. Writes use governance's default ``coordinate``
(regional operators); reads use ``read_coordination``, which executives also hold for
their own hospitals (recommendations, decisions, surge levels, requests and alerts are
hospital-level operational summaries, not patient records)."""

from __future__ import annotations

from governance.actions import Level, register_action
from governance.roles import Role

COORDINATE = "coordinate"
READ_COORDINATION = "read_coordination"


def register_actions() -> None:
    register_action(
        READ_COORDINATION,
        roles={Role.REGIONAL_OPERATOR, Role.EXECUTIVE},
        level=Level.AGGREGATE,
        description="read diversion advice and decisions, surge levels, resource requests, alerts",
    )
