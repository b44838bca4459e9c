"""Shared answers answered as JSON rendered once (hub/api/renderers.SharedJSON): the same
bytes the renderer writes from the data, and the data for every other negotiated format."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any, cast

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from governance.models import AuditEvent, PolicyStatus, SharingPolicy
from hub.api.renderers import FastJSONRenderer, SharedJSON, plain_json_accepted, render_json
from hub.registry import services
from tests.hub.api.test_api_caching import session_client
from tests.hub.support import enrolled_site

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]

AgentClient = Callable[[str], APIClient]


def _same_json_every_way(get: Callable[..., object]) -> None:
    plain = get()
    again = get()  # the shared answer
    assert plain.status_code == again.status_code == 200  # type: ignore[attr-defined]
    assert plain["Content-Type"] == "application/json"  # type: ignore[index]
    assert again.content == plain.content  # type: ignore[attr-defined]
    # DRF's renderer from the data (an indented answer is rendered, not taken from the
    # bytes): the same document.
    indented = get(HTTP_ACCEPT="application/json; indent=4")
    assert b"\n    " in indented.content  # type: ignore[attr-defined]
    assert indented.json() == plain.json()  # type: ignore[attr-defined]
    # The same headers as an answer rendered by DRF (Allow, Vary, CSP, X-Frame-Options, …),
    # but for the length and the request id.
    varying = {"Content-Length", "X-Request-ID"}
    rendered = {k: v for k, v in indented.headers.items() if k not in varying}  # type: ignore[attr-defined]
    assert {k: v for k, v in plain.headers.items() if k not in varying} == rendered  # type: ignore[attr-defined]
    data = indented.json()  # type: ignore[attr-defined]
    assert plain.content == FastJSONRenderer().render(data)  # type: ignore[attr-defined]


def test_site_policy_and_directives_answer_the_renderers_bytes(agent_client: AgentClient) -> None:
    hospital, _, credential = enrolled_site()
    site = agent_client(credential)
    SharingPolicy.objects.create(
        hospital_id=hospital.pk,
        site_code=hospital.site_code,
        version=1,
        document={"census": {"regional_operations": {"fields": ["occupied_beds"]}}},
        status=PolicyStatus.PUBLISHED,
        effective_at=timezone.now() - timedelta(days=1),
        signed=b"\x00signed",
    )
    services.directive_issue(
        hospital=hospital, kind="notice", payload={"text": "Übung – drill"}, issued_by=None
    )
    _same_json_every_way(lambda **h: site.get("/api/v1/site/policy/", **h))
    _same_json_every_way(lambda **h: site.get("/api/v1/site/directives/", **h))
    assert [d["kind"] for d in site.get("/api/v1/site/directives/").json()] == ["notice"]


def test_the_hospital_list_answers_the_renderers_bytes_and_is_audited() -> None:
    hospital, _, _ = enrolled_site()
    client, user = session_client()
    user_id = cast(Any, user).pk
    url = f"/api/v1/hospitals/?region={hospital.region.code}"
    _same_json_every_way(lambda **h: client.get(url, **h))
    events = AuditEvent.objects.filter(actor_id=user_id, path="/api/v1/hospitals/")
    assert events.count() == 3
    assert {tuple(e.object_ids) for e in events} == {(str(hospital.pk),)}


def test_only_plain_json_takes_the_bytes() -> None:
    class Negotiated:
        def __init__(self, renderer: object, media_type: str) -> None:
            self.accepted_renderer = renderer
            self.accepted_media_type = media_type

    assert plain_json_accepted(Negotiated(FastJSONRenderer(), "application/json"))
    assert not plain_json_accepted(Negotiated(FastJSONRenderer(), "application/json; indent=2"))
    assert not plain_json_accepted(Negotiated(object(), "text/html"))
    assert not plain_json_accepted(object())
    shared = SharedJSON.of({"a": [1, None, "é"]})
    assert shared.json == render_json(shared.data) == b'{"a":[1,null,"\xc3\xa9"]}'
