"""Shared hub fixtures."""

from tests.hub.fixtures import Client, agent_client, client_for

__all__ = ["Client", "agent_client", "client_for"]
