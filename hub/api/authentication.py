"""Site agents authenticate with the credential they received at enrolment:
``Authorization: Bearer <credential>``. The request then runs as the agent's service
account (role: site agent, on its own hospital only) and ``request.auth`` is the SiteAgent."""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.request import Request

from hub.registry.selectors import agent_by_credential


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
        agent = agent_by_credential(credential)
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
