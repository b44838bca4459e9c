"""A heartbeat is one UPDATE of the agent's liveness columns, and moves no version."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import pytest
from django.db import DatabaseError, connection
from django.test.utils import CaptureQueriesContext

from governance import versions
from hub.registry import services
from hub.registry.models import SiteAgent
from tests.hub.support import enrolled_site

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]


def test_a_heartbeat_stores_the_agents_figures_in_one_statement() -> None:
    hospital, _, _ = enrolled_site()
    agent = SiteAgent.objects.get(hospital=hospital)
    before = versions.grants_version(), versions.state_version("live")
    feeds: list[Mapping[str, Any]] = [
        {"name": "adt", "source": "hl7-adt", "last_message_at": "2026-11-24T10:00:00+00:00"}
    ]
    with CaptureQueriesContext(connection) as queries:
        returned = services.agent_heartbeat_record(
            agent=agent, agent_version="v" * 80, feeds=feeds, policy_version=3, outbox_backlog=7
        )
    assert len(queries) == 1
    assert queries[0]["sql"].startswith("UPDATE")
    stored = SiteAgent.objects.get(pk=agent.pk)
    assert stored.agent_version == "v" * 64
    assert stored.feed_status == {"feeds": feeds}
    assert (stored.policy_version, stored.outbox_backlog) == (3, 7)
    assert stored.last_heartbeat_at == returned.last_heartbeat_at
    assert stored.last_heartbeat_at is not None
    assert stored.last_heartbeat_at > datetime(2026, 1, 1, tzinfo=UTC)
    # Liveness is not access nor live state: no memo or shared answer is dropped for it.
    assert (versions.grants_version(), versions.state_version("live")) == before


def test_a_heartbeat_for_an_agent_gone_meanwhile_is_an_error() -> None:
    hospital, _, _ = enrolled_site()
    agent = SiteAgent.objects.get(hospital=hospital)
    SiteAgent.objects.filter(pk=agent.pk).delete()
    with pytest.raises(DatabaseError):
        services.agent_heartbeat_record(
            agent=agent, agent_version="1", feeds=[], policy_version=None, outbox_backlog=None
        )
