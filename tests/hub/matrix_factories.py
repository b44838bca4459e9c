"""Objects of the hub's models for governance's permission matrix, and the site agent's
credential (the site API reads the SiteAgent from ``request.auth``)."""

from __future__ import annotations

import uuid
from typing import Any

from django.db import models
from django.utils import timezone

from deid.signing import generate_signing_key, key_id_for, public_key_b64
from governance.roles import Role
from governance.testing import (
    register_matrix_factory,
    register_matrix_token,
    register_url_kwarg,
)
from hub.registry.models import Directive, Hospital, Region, SiteAgent, TravelTime


@register_matrix_factory("registry.Region")
def region(hospital: Any, unit: Any) -> models.Model:
    return Region.objects.get(pk=hospital.region_id)


@register_matrix_factory("registry.TravelTime")
def travel_time(hospital: Any, unit: Any) -> models.Model:
    other = Hospital.objects.create(
        region_id=hospital.region_id,
        site_code=f"M{uuid.uuid4().hex[:10]}",
        name="matrix destination (synthetic)",
    )
    return TravelTime.objects.create(origin=hospital, destination=other, minutes=12)


@register_matrix_factory("registry.SiteAgent")
def site_agent(hospital: Any, unit: Any) -> models.Model:
    key = generate_signing_key()
    return SiteAgent.objects.create(
        hospital=hospital,
        name=f"matrix-{uuid.uuid4().hex[:8]}",
        public_key=public_key_b64(key),
        key_id=key_id_for(key),
        enrolled_at=timezone.now(),
    )


@register_matrix_factory("registry.Directive")
def directive(hospital: Any, unit: Any) -> models.Model:
    return Directive.objects.create(hospital=hospital, kind="notice", payload={})


def _agent_for(user: Any, hospital: Any) -> SiteAgent:
    existing = SiteAgent.objects.filter(service_user=user).first()
    if existing is not None:
        return existing
    agent = site_agent(hospital, None)
    assert isinstance(agent, SiteAgent)
    agent.service_user = user
    agent.save(update_fields=["service_user"])
    return agent


register_matrix_token(Role.SITE_AGENT, _agent_for)
register_url_kwarg("directive_id", lambda obj: directive(obj, None).pk)
