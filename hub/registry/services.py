"""Writes to the registry: hospitals, units, travel times, site agent enrolment and heartbeats,
directives. Keyword-only, typed; each is one transaction."""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db import DatabaseError, connections, router, transaction
from django.utils import timezone

from deid.signing import KeyFormatError, key_id_for, load_public_key, public_key_b64
from governance import durability
from hub.registry.models import (
    AgentComponent,
    Directive,
    Hospital,
    Region,
    SiteAgent,
    TravelTime,
    Unit,
)

ENROLMENT_TTL = timedelta(hours=24)


class RegistryError(ValueError):
    """A registry write was refused; the message is safe to show to the caller."""


def secret_digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


@transaction.atomic
def region_ensure(*, code: str, name: str, timezone_name: str = "America/New_York") -> Region:
    region, _ = Region.objects.update_or_create(
        code=code, defaults={"name": name, "timezone": timezone_name}
    )
    return region


@transaction.atomic
def hospital_upsert(*, region: Region, site_code: str, name: str, **fields: Any) -> Hospital:
    """Create or update a hospital by site code (idempotent: seeding twice changes nothing)."""
    hospital, _ = Hospital.objects.update_or_create(
        site_code=site_code, defaults={"region": region, "name": name, **fields}
    )
    hospital.full_clean()
    return hospital


@transaction.atomic
def unit_upsert(
    *,
    hospital: Hospital,
    code: str,
    name: str,
    unit_type: str,
    licensed_beds: int,
    staffed_beds: int,
    surge_beds: int = 0,
) -> Unit:
    unit, _ = Unit.objects.update_or_create(
        hospital=hospital,
        code=code,
        defaults={
            "name": name,
            "unit_type": unit_type,
            "licensed_beds": licensed_beds,
            "staffed_beds": staffed_beds,
            "surge_beds": surge_beds,
        },
    )
    unit.full_clean()
    return unit


@transaction.atomic
def travel_time_set(
    *,
    origin: Hospital,
    destination: Hospital,
    minutes: int,
    distance_km: float | None = None,
    source: str = "synthetic",
) -> TravelTime:
    if origin.pk == destination.pk:
        raise RegistryError("a travel time needs two different hospitals")
    travel, _ = TravelTime.objects.update_or_create(
        origin=origin,
        destination=destination,
        defaults={"minutes": minutes, "distance_km": distance_km, "source": source},
    )
    return travel


# --- Site agents ----------------------------------------------------------------------------


@dataclass(frozen=True)
class EnrolmentTicket:
    agent: SiteAgent
    token: str  # shown once; only its digest is stored
    expires_at: datetime


@dataclass(frozen=True)
class AgentCredential:
    agent: SiteAgent
    credential: str  # shown once; only its digest is stored


def _service_user(agent: SiteAgent) -> AbstractBaseUser:
    """Each agent acts as its own inactive-password service account, so the audit log names
    it and governance can give it the site-agent role for its hospital only."""
    user_model = get_user_model()
    username = f"agent:{agent.hospital.site_code}:{agent.pk}"
    user, created = user_model.objects.get_or_create(username=username)
    if created:
        user.set_unusable_password()
        user.save(update_fields=["password"])
    return user


def _register_key(agent: SiteAgent, public_key: str) -> None:
    try:
        key = load_public_key(public_key)
    except KeyFormatError as exc:
        raise RegistryError(f"public_key: {exc}") from None
    agent.public_key = public_key_b64(key)
    agent.key_id = key_id_for(key)


@transaction.atomic
def agent_enrolment_issue(
    *,
    hospital: Hospital,
    name: str,
    component: str = AgentComponent.DEID_WORKER,
    ttl: timedelta = ENROLMENT_TTL,
) -> EnrolmentTicket:
    """Create a pending agent and its one-time enrolment token (given to the site's admin
    out of band). Re-issuing for a pending agent replaces its token."""
    if component not in AgentComponent.values:
        raise RegistryError(f"component: one of {', '.join(AgentComponent.values)}")
    agent, _ = SiteAgent.objects.select_for_update().get_or_create(
        hospital=hospital, name=name, defaults={"component": component}
    )
    if agent.enrolled_at is not None and agent.revoked_at is None:
        raise RegistryError("this agent is already enrolled; revoke it or choose another name")
    token = secrets.token_urlsafe(32)
    agent.component = component
    agent.enrolment_token_hash = secret_digest(token)
    agent.enrolment_expires_at = timezone.now() + ttl
    agent.revoked_at = None
    agent.enrolled_at = None
    agent.credential_hash = None
    agent.save()
    return EnrolmentTicket(agent=agent, token=token, expires_at=agent.enrolment_expires_at)


@transaction.atomic
def agent_enrol(*, token: str, public_key: str, agent_version: str = "") -> AgentCredential:
    """Exchange a one-time enrolment token for a credential, registering the agent's public
    key. The row lock makes the token single-use even when two requests race with it."""
    agent = (
        SiteAgent.objects.select_for_update()
        .select_related("hospital")
        .filter(enrolment_token_hash=secret_digest(token))
        .first()
    )
    now = timezone.now()
    if (
        agent is None
        or agent.enrolment_expires_at is None
        or agent.enrolment_expires_at < now
        or agent.enrolled_at is not None
    ):
        raise RegistryError("the enrolment token is unknown, used or expired")
    _register_key(agent, public_key)
    credential = secrets.token_urlsafe(32)
    agent.credential_hash = secret_digest(credential)
    agent.enrolment_token_hash = None
    agent.enrolment_expires_at = None
    agent.enrolled_at = now
    agent.agent_version = agent_version[:64]
    agent.service_user = _service_user(agent)  # type: ignore[assignment]
    agent.save()
    _grant_agent_role(agent)
    return AgentCredential(agent=agent, credential=credential)


@transaction.atomic
def agent_register(
    *,
    hospital: Hospital,
    name: str,
    public_key: str,
    component: str = AgentComponent.DEID_WORKER,
) -> AgentCredential:
    """An administrator enrols an agent directly with its public key (the demo seeding does
    this); same result as token enrolment, without the token round trip."""
    ticket = agent_enrolment_issue(hospital=hospital, name=name, component=component)
    return agent_enrol(token=ticket.token, public_key=public_key)


@transaction.atomic
def agent_revoke(*, agent: SiteAgent) -> SiteAgent:
    """Revoke an agent: its credential stops working and its key stops verifying envelopes
    (consumers refresh their key cache within a minute)."""
    agent.revoked_at = timezone.now()
    agent.credential_hash = None
    agent.enrolment_token_hash = None
    agent.save(update_fields=["revoked_at", "credential_hash", "enrolment_token_hash"])
    return agent


# One statement in autocommit: a heartbeat writes only the agent's own liveness columns, and
# nothing listens for it (a heartbeat bumps no grants or state version: hub/api/apps.py,
# hub/api/state_signals.py), so neither a transaction (BEGIN, COMMIT) nor the ORM's save()
# (its compiled UPDATE, pre/post_save) is needed. The agent, revoked since or not, is updated
# exactly as ``save(update_fields=...)`` did, and a row gone meanwhile raises as it did.
# It commits without waiting for the disk (governance.durability): the next heartbeat
# replaces it, and a heartbeat lost in a crash of the database server only makes the site
# look a few seconds older.
_HEARTBEAT_UPDATE = (
    f"UPDATE {SiteAgent._meta.db_table} SET last_heartbeat_at = %s, agent_version = %s,"  # noqa: S608  # nosec B608
    " feed_status = %s::jsonb, policy_version = %s, outbox_backlog = %s WHERE id = %s"
)
_HEARTBEAT_UPDATE_UNFLUSHED = f"{_HEARTBEAT_UPDATE} AND {durability.UNFLUSHED}"


def agent_heartbeat_record(
    *,
    agent: SiteAgent,
    agent_version: str,
    feeds: list[Mapping[str, Any]],
    policy_version: int | None,
    outbox_backlog: int | None,
) -> SiteAgent:
    """Store the agent's heartbeat (one ``UPDATE``); the agent with the stored values."""
    agent.last_heartbeat_at = timezone.now()
    agent.agent_version = agent_version[:64]
    agent.feed_status = {"feeds": [dict(f) for f in feeds]}
    agent.policy_version = policy_version
    agent.outbox_backlog = outbox_backlog
    connection = connections[router.db_for_write(SiteAgent)]
    relaxed = durability.relaxable(connection)
    with connection.cursor() as cursor:
        cursor.execute(
            _HEARTBEAT_UPDATE_UNFLUSHED if relaxed else _HEARTBEAT_UPDATE,
            [
                agent.last_heartbeat_at,
                agent.agent_version,
                json.dumps(agent.feed_status),
                policy_version,
                outbox_backlog,
                agent.pk,
            ],
        )
        if cursor.rowcount != 1:
            raise DatabaseError(f"site agent {agent.pk} is gone: heartbeat not stored")
    return agent


def _grant_agent_role(agent: SiteAgent) -> None:
    """Give the agent's service account the site-agent role for its own hospital only."""
    from hub.registry import governance_bridge

    if agent.service_user is not None:
        governance_bridge.grant_site_agent(user=agent.service_user, hospital=agent.hospital)


# --- Directives -----------------------------------------------------------------------------


@transaction.atomic
def directive_issue(
    *,
    hospital: Hospital,
    kind: str,
    payload: Mapping[str, Any],
    issued_by: Any,
    expires_at: datetime | None = None,
) -> Directive:
    if kind not in Directive.Kind.values:
        raise RegistryError(f"kind: one of {', '.join(Directive.Kind.values)}")
    return Directive.objects.create(
        hospital=hospital,
        kind=kind,
        payload=dict(payload),
        issued_by=issued_by,
        effective_from=timezone.now(),
        expires_at=expires_at,
    )


@transaction.atomic
def directive_acknowledge(*, directive: Directive, agent: SiteAgent) -> Directive:
    if directive.hospital_id != agent.hospital_id:
        raise RegistryError("this directive is for another site")
    if directive.acknowledged_at is None:
        directive.acknowledged_at = timezone.now()
        directive.acknowledged_by = agent
        directive.save(update_fields=["acknowledged_at", "acknowledged_by"])
    return directive
