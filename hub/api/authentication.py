"""Site agents authenticate with the credential they received at enrolment:
``Authorization: Bearer <credential>``. The request then runs as the agent's service
account (role: site agent, on its own hospital only) and ``request.auth`` is the SiteAgent."""

from __future__ import annotations

import copy
from typing import Any

from django.contrib.auth.backends import ModelBackend
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.request import Request

from governance.versions import VersionedMemo
from hub.registry.models import SiteAgent
from hub.registry.selectors import agent_by_credential
from hub.registry.services import secret_digest

# Enrolled agents by credential digest and users by id, per grants version: revoking a
# credential, deactivating a user or changing a grant bumps the version (governance.versions,
# and ``site_agent_changed`` below), so the next request reads PostgreSQL again.
_agents = VersionedMemo()
_users = VersionedMemo()


def _agent_for(credential: str) -> SiteAgent | None:
    digest = secret_digest(credential)
    found = _agents.get_or_compute(("agent", digest), lambda: agent_by_credential(credential))
    if found is None:
        return None
    # Copies per request: views change and save their agent (heartbeat), and per-request
    # attributes are set on the user it runs as.
    agent = copy.copy(found)
    if found.service_user is not None:
        agent.service_user = copy.copy(found.service_user)
    return agent


def site_agent_changed(instance: SiteAgent, update_fields: Any = None, **_: Any) -> None:
    """post_save/post_delete of a SiteAgent: a change of what authenticates it (credential,
    revocation, enrolment, hospital, account) bumps the grants version; a heartbeat does not."""
    from governance.versions import bump_grants

    watched = {"credential_hash", "revoked_at", "enrolled_at", "hospital", "service_user"}
    if update_fields is None or watched & set(update_fields):
        bump_grants()


class CachedModelBackend(ModelBackend):
    """``ModelBackend`` whose per-request user look-up (session → user) is memoised per grants
    version; every save of a user (other than a login stamp) bumps that version."""

    def get_user(self, user_id: Any) -> Any:
        found = _users.get_or_compute(
            ("user", str(user_id)), lambda: super(CachedModelBackend, self).get_user(user_id)
        )
        return copy.copy(found) if found is not None else None


class SiteAgentAuthentication(BaseAuthentication):
    keyword = b"bearer"

    def authenticate(self, request: Request) -> tuple[Any, Any] | None:
        parts = get_authorization_header(request).split()
        if not parts or parts[0].lower() != self.keyword:
            return None
        if len(parts) != 2:
            raise AuthenticationFailed("use the header 'Authorization: Bearer <credential>'")
        try:
            credential = parts[1].decode("ascii")
        except UnicodeDecodeError:
            raise AuthenticationFailed("the credential is not ASCII") from None
        agent = _agent_for(credential)
        if agent is None or agent.service_user is None or not agent.service_user.is_active:
            raise AuthenticationFailed("unknown or revoked site agent credential")
        return agent.service_user, agent

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="site-api"'


class SiteAgentAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "hub.api.authentication.SiteAgentAuthentication"
    name = "siteAgentCredential"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {"type": "http", "scheme": "bearer", "description": "credential from enrolment"}
