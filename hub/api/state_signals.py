"""What bumps the state versions of the shared live answers (hub/api/live_cache.py) when a
model is saved or deleted through the ORM (the admin, services, seed commands). Writers that
bypass the ORM call ``governance.versions.state_changed`` themselves (the ingest's upserts in
``hub.census.services``); a ``QuerySet.update`` of these models must do the same."""

from __future__ import annotations

from typing import Any

from governance import versions

# model label -> the kinds of answer that read its table
KINDS: dict[str, tuple[str, ...]] = {
    "census.unitstate": ("live",),
    "census.feedstate": ("live",),
    "registry.directive": ("live", "directives"),
    "registry.hospital": ("live", "registry", "directives"),
    "registry.unit": ("live", "registry"),
    "registry.region": ("live", "registry"),
    "registry.siteagent": ("live",),
    "governance.sharingpolicy": ("policy",),
    # Not an answer's table: the memo of session rows (hub/api/sessions.py).
    "sessions.session": ("sessions",),
}

# A site agent's row is rewritten by every heartbeat; the live answer shows only these.
_AGENT_FIELDS = frozenset({"key_id", "name", "hospital", "hospital_id"})


def _changed(sender: Any, update_fields: Any = None, **_: Any) -> None:
    label = sender._meta.label_lower
    if (
        label == "registry.siteagent"
        and update_fields is not None
        and not set(update_fields) & _AGENT_FIELDS
    ):
        return
    versions.state_changed(*KINDS[label])


def connect() -> None:
    from django.apps import apps
    from django.db.models.signals import post_delete, post_save

    for label in KINDS:
        model = apps.get_model(label)
        post_save.connect(_changed, sender=model, dispatch_uid=f"state-save-{label}", weak=False)
        post_delete.connect(_changed, sender=model, dispatch_uid=f"state-del-{label}", weak=False)
