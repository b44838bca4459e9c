"""Settings of the ingestion path. Each may be set in Django settings or in the environment
(the environment wins over the default, settings win over both); the defaults match the
DE-ID contracts, so a new user sets nothing."""

from __future__ import annotations

from django.conf import settings

from deid.contracts.topics import CONTROL_TOPIC, DEADLETTER_TOPIC, REGIONAL_TOPIC
from hub.env import env, env_int


def _setting(name: str, default: str) -> str:
    return str(getattr(settings, name, None) or env(name, default))


def regional_topic() -> str:
    return _setting("HUB_REGIONAL_TOPIC", REGIONAL_TOPIC)


def deadletter_topic() -> str:
    return _setting("HUB_DEADLETTER_TOPIC", DEADLETTER_TOPIC)


def control_topic() -> str:
    return _setting("HUB_CONTROL_TOPIC", CONTROL_TOPIC)


def consumer_group() -> str:
    return _setting("HUB_CONSUMER_GROUP", "hub.census")


def consumer_batch() -> int:
    return int(getattr(settings, "HUB_CONSUMER_BATCH", None) or env_int("HUB_CONSUMER_BATCH", 200))


def stale_after_seconds() -> int:
    """A unit's figures older than this are shown as stale (default 5 minutes: the site
    agents snapshot every minute, so five missed snapshots in a row)."""
    return int(
        getattr(settings, "HUB_STALE_AFTER_SECONDS", None)
        or env_int("HUB_STALE_AFTER_SECONDS", 300)
    )
